/*
 * engine_int.h: what engine.c shares with the other engine files that work
 * on a whole context (kvsnap.c), and nothing else includes.
 */
#ifndef ENGINE_ENGINE_INT_H
#define ENGINE_ENGINE_INT_H

#include "engine/engine.h"
#include "engine/model.h"

struct kv_cache *engine_ctx_kv(struct engine_ctx *c);
const struct engine_model *engine_ctx_model(const struct engine_ctx *c);
/* Declare that the cache holds K/V for ids[0..n) (after a snapshot load). */
void engine_ctx_set_tokens(struct engine_ctx *c, const int32_t *ids, int n);
/* The model behind em (chat_tmpl.c reads the tokenizer and the family). */
struct model *engine_model_of(const struct engine_model *em);

#endif
