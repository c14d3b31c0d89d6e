/*
 * engine.h: the inference engine's public interface: models, tokenizing,
 * contexts (the KV cache), decoding, sampling, generating.  With
 * engine/chat.h (the chat format, one conversation's tokens) and
 * engine/worker.h (the engine on its own thread) it is all of the engine
 * that app/ and ui/ see.
 *
 *   engine_open(path)            the seed's from_pretrained(path)
 *   engine_ctx_new / _free       a KV cache and scratch for one conversation
 *   engine_generate(...)         the seed's generate(text, max_length): run a
 *                                prompt (reusing the cached prefix), then
 *                                sample, calling back with each token's text
 *
 * Errors come back as -1/NULL with *err set to a malloc'd one-line message
 * (the caller frees it); the engine never prints and never exits.
 */
#ifndef ENGINE_ENGINE_H
#define ENGINE_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct engine_model;
struct engine_ctx;

struct engine_info {
	const char *format;       /* "GGUF v3", "llama2.c v2 (int8)" */
	const char *name;         /* general.name or the file's name */
	const char *types;        /* "F32 65, Q4_K 193, Q6_K 33" */
	const char *main_type;    /* the type of most matrix bytes: "Q4_K" */
	const char *fingerprint;  /* "<size>-<hash>": tells model files apart */
	int n_vocab, n_ctx_train, dim, ffn_dim, n_layers, n_heads, n_kv_heads, head_dim, rope_dim;
	float norm_eps, rope_base;
	int bos, eos;
	uint64_t file_size, n_params, weight_bytes;
	uint64_t token_bytes;     /* weight bytes one decoded token reads */
};

/* Open a GGUF or llama2.c file.  tokenizer: llama2.c files only (NULL means
 * tokenizer.bin beside the model).  Error: "<what is wrong>" (no path). */
struct engine_model *engine_open(const char *path, const char *tokenizer, char **err);
/* A tokenizer alone (llama2.c tokenizer.bin), for tokenize and render:
 * tokenizing and detokenizing work; contexts cannot be made from it. */
struct engine_model *engine_open_tokenizer(const char *path, char **err);
void engine_close(struct engine_model *m);
const struct engine_info *engine_info(const struct engine_model *m);
/* Progress of engine_prefetch: done of total bytes; nonzero stops it. */
typedef int (*engine_load_fn)(void *ud, uint64_t done, uint64_t total);
/* Read the model's mapped file once, front to back, with read-ahead, so
 * that the first reply does not fault it in from disk piecemeal; cb (may
 * be NULL) hears the progress after every 64 MiB.  Then pack the matrices
 * the kernels want in another layout (model_pack; otherwise the first
 * forward pass does it).  Never prints.  Returns 0, or 1 when cb stopped
 * it (the model is usable either way).  Not while a pass runs on it. */
int engine_prefetch(const struct engine_model *m, engine_load_fn cb, void *ud);

/* Tokenize len bytes into a malloc'd array (*ids, freed by the caller).
 * Returns the count, or -1 on out of memory. */
int engine_tokenize(const struct engine_model *m, const char *text, size_t len, int add_bos, int32_t **ids);
/* Streaming detokenizer: feed ids, get complete UTF-8 text. */
struct engine_detok {
	unsigned char pend[4];
	int npend, strip_space;
};
void engine_detok_init(struct engine_detok *d, int strip_leading_space);
/* Text of id appended to out (cap >= engine_detok_max); returns bytes. */
size_t engine_detok_push(const struct engine_model *m, struct engine_detok *d, int32_t id, char *out);
size_t engine_detok_flush(struct engine_detok *d, char *out);
size_t engine_detok_max(const struct engine_model *m);
/* SentencePiece decode of a whole sequence (malloc'd). */
char *engine_detokenize(const struct engine_model *m, const int32_t *ids, int n);
/* An end-of-generation id: EOS, or one llama.cpp ends a turn at
 * (<|eot_id|>, <|end_of_text|>, <|eom_id|>, <|im_end|> ...). */
int engine_is_eog(const struct engine_model *m, int32_t id);
/* A token's raw piece, for display of special tokens ("<s>"); NULL if out of range. */
const char *engine_token_piece(const struct engine_model *m, int32_t id, size_t *len);

/* Prompt tokens per forward pass by default.  128: the GEMM unpacks a tile
 * of weights once per 8 columns of the batch, so a wider batch spreads that
 * work (pp512 1.1B, -t 2, against 64: Q4_0 +4%, Q4_K_M +5%, Q8_0 +8%); 256
 * gained nothing more and costs twice the activations (+40 MB at 1.1B). */
#define ENGINE_N_BATCH 128

struct engine_ctx_params {
	int n_ctx;                /* 0: the model's training context, at most 4096 */
	int n_threads;            /* 0: the physical cores */
	int n_batch;              /* prompt tokens per forward pass; 0: ENGINE_N_BATCH */
	int kv_f32;               /* KV cache in float32 instead of float16 */
	int kv_q8;                /* KV cache in q8_0 (wins over kv_f32; needs head size % 32 == 0) */
};
void engine_ctx_params_default(struct engine_ctx_params *p);
struct engine_ctx *engine_ctx_new(struct engine_model *m, const struct engine_ctx_params *p, char **err);
void engine_ctx_free(struct engine_ctx *c);
int engine_ctx_size(const struct engine_ctx *c);
int engine_ctx_threads(const struct engine_ctx *c);
/* The KV cache's element type ("f16", "f32", "q8_0") and its whole size in
 * bytes (for n_ctx positions, K and V, every layer). */
const char *engine_ctx_kv_type(const struct engine_ctx *c);
uint64_t engine_ctx_kv_bytes(const struct engine_ctx *c);
/* The tokens whose K/V are in the cache, in order. */
const int32_t *engine_ctx_tokens(const struct engine_ctx *c, int *n);
/* Forget cache positions from n on (kv_truncate). */
void engine_ctx_truncate(struct engine_ctx *c, int n);
/*
 * Save the cache (its tokens and their K/V) to path atomically (temporary
 * file, fsync, rename; mode 0600).  0, or -1 with *err.
 */
int engine_ctx_save(struct engine_ctx *c, const char *path, char **err);
/*
 * Load a snapshot made by engine_ctx_save for ids[0..n): returns how many
 * positions were restored (the snapshot's agreement with ids), or 0 with
 * *reason (malloc'd) when it is missing, corrupt, truncated, or made with
 * another model; the cache is then empty and the caller prefills.
 */
int engine_ctx_load(struct engine_ctx *c, const char *path, const int32_t *ids, int n, char **reason);
/* Length of the common prefix of the cache and ids[0..n). */
int engine_ctx_common_prefix(const struct engine_ctx *c, const int32_t *ids, int n);

/*
 * Append n tokens to the cache and compute logits: of every token with
 * all_logits, else of the last.  Runs in batches; checks *stop (may be
 * NULL) between layers.  Returns 0; 1 if stopped (the cache then holds what
 * finished before the stop); -1 with *err (e.g. context full).
 */
int engine_decode(struct engine_ctx *c, const int32_t *ids, int n, int all_logits, atomic_int *stop, char **err);
/* Logits of token i of the last engine_decode (i = 0 for the last one when
 * all_logits was off); n_vocab floats, valid until the next decode. */
const float *engine_logits(const struct engine_ctx *c, int i);

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * repeat penalty 1.0 over the last 64 tokens, a random seed. */
struct engine_sampling {
	float temp;               /* <= 0: greedy */
	int top_k;                /* <= 0: off */
	float top_p;              /* >= 1: off */
	float min_p;              /* <= 0: off */
	float repeat_penalty;     /* 1: off */
	int repeat_last_n;        /* the penalty looks at the last N tokens of the context; 0: all */
	uint64_t seed;            /* used as given; engine_sampling_default picks one */
	int ignore_eos;           /* never choose EOS (replies end at -n or the window) */
};
void engine_sampling_default(struct engine_sampling *s);
struct engine_sampler;
struct engine_sampler *engine_sampler_new(const struct engine_sampling *s);
void engine_sampler_free(struct engine_sampler *s);
const struct engine_sampling *engine_sampler_params(const struct engine_sampler *s);
/* Choose the next token from logits (n_vocab), with the recent tokens for
 * the repetition penalty.  Deterministic for a given seed and inputs. */
int32_t engine_sample(struct engine_sampler *s, const float *logits, int n_vocab,
    const int32_t *recent, int n_recent);

/* ERROR: the remote engine's fault after the request went out (the reply
 * so far is kept, marked interrupted; see engine/remote.h). */
enum engine_stop_reason { ENGINE_STOP_EOS, ENGINE_STOP_LENGTH, ENGINE_STOP_USER, ENGINE_STOP_CTX, ENGINE_STOP_ERROR };

struct engine_gen_stats {
	int n_prompt;             /* prompt tokens prefilled now */
	int n_reused;             /* prompt tokens found in the cache */
	int n_gen;                /* tokens generated (EOS included) */
	double prefill_ms, ttft_ms, gen_ms;
	double tg_tps, pp_tps;
	int ctx_used;
	enum engine_stop_reason reason;
};

/* Called for each generated token (not for EOS) with its text (possibly
 * empty while a UTF-8 sequence is incomplete); nonzero return stops. */
typedef int (*engine_token_fn)(void *ud, int32_t id, const char *text, size_t len);
/* Called while the prompt is processed: done of total tokens. */
typedef void (*engine_progress_fn)(void *ud, int done, int total);

struct engine_gen_params {
	int max_tokens;           /* <= 0: until EOS or the context is full */
	int strip_leading_space;  /* drop the first token's leading space */
	engine_token_fn on_token;
	engine_progress_fn on_progress;
	void *ud;
	atomic_int *stop;
};

/*
 * Make the cache hold prompt[0..n) (reusing the longest cached prefix,
 * recomputing only the rest), then sample until EOS, max_tokens, the end of
 * the context, a stop request or a callback's nonzero return.  The last
 * sampled token is not yet in the cache: the next call's prompt (which should
 * contain it) catches up.  Returns 0 (see st->reason) or -1 with *err.
 */
int engine_generate(struct engine_ctx *c, const int32_t *prompt, int n, struct engine_sampler *smp,
    const struct engine_gen_params *gp, struct engine_gen_stats *st, int32_t **out_ids, int *n_out, char **err);

/* The engine's numerics version, kept in every reply's replay record: bump
 * it with any change that can alter a generated token for the same inputs
 * (a kernel's summation order, the sampler chain). */
#define ENGINE_VERSION "1"

#endif
