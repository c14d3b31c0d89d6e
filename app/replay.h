/*
 * replay.h: what makes a reply reproducible, and reproducing it
 * (app/replay.c).
 *
 * Every reply stores a replay record in its `sampler` JSON (the seed is the
 * message's own seed field): the sampler settings, the reply's token limit
 * and --ignore-eos, the context size, batch size and KV type, the model's
 * name and fingerprint, the chat template, the engine version and the
 * system prompt in force.  With it, the same model file gives the same
 * tokens again whatever the thread count (the engine's kernels split work
 * by rows and keep every reduction in one order: tests/check_tree.c checks
 * 1 against 2 threads).
 *
 * Stored token ids are a cache of the text for the model that made them:
 * replay_ids_usable says whether they still stand for the message, and the
 * chat and replay code render the text again when they do not.
 */
#ifndef APP_REPLAY_H
#define APP_REPLAY_H

#include <stdint.h>

#include "engine/engine.h"

#define REPLAY_TEMPLATE "llama2"

struct replay_rec {
	struct engine_sampling samp;    /* seed: the message's */
	int n_predict;                  /* the reply's token limit (<= 0: none) */
	int n_ctx, n_batch, kv_f32, kv_q8;
	char *model, *fingerprint;      /* malloc'd or NULL */
	char *template_name, *engine;   /* malloc'd or NULL */
	char *system;                   /* malloc'd; NULL: no system prompt */
};

/* The record as JSON object text (malloc'd), or NULL when out of memory. */
char *replay_record_json(const struct engine_model *m, const struct engine_sampling *s,
    int n_predict, int n_ctx, int n_batch, int kv_f32, int kv_q8, const char *system);
/* Read a record (seed from the message).  0, or -1 with *err (malloc'd)
 * when json is missing or lacks what a replay needs (older replies). */
int replay_record_parse(const char *json, uint64_t seed, struct replay_rec *r, char **err);
void replay_rec_free(struct replay_rec *r);

/*
 * Do ids still stand for this message with model m?  A user turn's ids
 * must equal its rendering (system folded in when system is not NULL); a
 * reply's must be in the vocabulary and decode to its content.  1 or 0.
 */
int replay_ids_usable(const struct engine_model *m, int chat_role, const char *system,
    const char *content, const int32_t *ids, int n);

/* A context kept across replays, remade when a record needs other sizes. */
struct replay_ctx {
	struct engine_ctx *ctx;         /* owned; engine_ctx_free */
	int n_ctx, n_batch, kv_f32, kv_q8;
};

/*
 * Generate again the reply that followed messages[0..k) (roles CHAT_USER /
 * CHAT_ASSISTANT, contents, ids usable or NULL) under record r, in rc->ctx
 * (made or remade to r's sizes; the caller frees it).  max_tokens > 0
 * overrides r's limit (a reply that was stopped).  0 with *out (malloc'd,
 * closed by EOS) and *n_out, or -1 with *err.
 */
int replay_generate(struct engine_model *m, struct replay_ctx *rc, int n_threads,
    const struct replay_rec *r, const int *roles, const char *const *contents,
    const int32_t *const *ids, const int *n_ids, int k, int max_tokens, int32_t **out, int *n_out,
    char **err);

#endif
