/*
 * model.h: the engine's shared internal types: a loaded model (weights
 * pointing into a memory-mapped file), the KV cache, and the forward pass.
 * Only engine/ includes this; app/ and ui/ see engine/engine.h.
 */
#ifndef ENGINE_MODEL_H
#define ENGINE_MODEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/quant.h"
#include "engine/tokenizer.h"

struct gguf;

/* A matrix or vector in the mapping: ne[0] values per row, ne[1] rows. */
struct tensor {
	int type;                 /* enum qtype */
	int64_t ne[2];            /* (columns, rows) */
	const void *data;
	size_t row_bytes;
	const float *scales;      /* QT_Q8_G: one per `group` values, row-major */
	int group;                /* QT_Q8_G only */
	const void *packed;       /* NULL, or the same matrix in gemm_pack's
	                           * layout (model_pack), which matmul reads
	                           * instead of data */
};

struct model_config {
	int dim;                  /* embedding size */
	int hidden_dim;           /* feed-forward size */
	int n_layers;
	int n_heads;
	int n_kv_heads;           /* < n_heads: grouped-query attention */
	int vocab_size;
	int seq_len;              /* training context length */
	int head_dim;             /* dim / n_heads */
	int rope_dim;             /* dimensions rotated per head */
	float norm_eps;
	float rope_base;          /* llama.rope.freq_base: 1e4, CodeLlama 1e6 */
};

struct layer {
	struct tensor attn_norm;  /* (dim) F32 */
	struct tensor wq;         /* (dim -> n_heads*head_dim) */
	struct tensor wk;         /* (dim -> n_kv_heads*head_dim) */
	struct tensor wv;         /* (dim -> n_kv_heads*head_dim) */
	struct tensor wo;         /* (n_heads*head_dim -> dim) */
	struct tensor ffn_norm;   /* (dim) F32 */
	struct tensor w_gate;     /* w1 (dim -> hidden) */
	struct tensor w_down;     /* w2 (hidden -> dim) */
	struct tensor w_up;       /* w3 (dim -> hidden) */
};

struct model {
	struct model_config cfg;
	struct tensor tok_embd;   /* (dim, vocab) */
	struct tensor out_norm;   /* (dim) F32 */
	struct tensor output;     /* (dim -> vocab); tok_embd when tied */
	struct tensor rope_freqs; /* (rope_dim/2) F32 frequency divisors (Llama 3.1); data NULL: none */
	struct layer *layers;     /* n_layers */
	struct tokenizer *tok;
	int chat_family;          /* enum chat_family: from tokenizer.chat_template or --chat-template */
	int chat_family_set;      /* chosen by the user, not the file */
	char chat_date_fmt[24];   /* strftime format of the template's "Today Date" */
	char chat_date[40];       /* a pinned date ("26 Jul 2024"); "": today */

	struct gguf *gguf;        /* GGUF files: the parsed header + mapping */
	void *map;                /* llama2.c files: the mapping */
	size_t map_size;
	uint64_t file_size;
	char format[32];          /* "GGUF v3", "llama2.c v2 (int8)" */
	char name[96];            /* general.name or the file's base name */
	int type_count[QT_COUNT + 1];  /* tensors per type; [QT_COUNT] = Q8_G */
	uint64_t n_params;
	uint64_t weight_bytes;    /* bytes of all weights in the mapping */
	uint64_t token_bytes;     /* bytes one decoded token reads: all but the
	                           * embedding table, of which one row */
	char fingerprint[40];     /* file size + hash of header and sampled data */

	/* model_pack.c: the packed copy of the matrices, made once. */
	pthread_mutex_t pack_lock;
	atomic_int pack_done;
	void *pack_mem;           /* NULL: nothing packed */
};

/* Open a GGUF or llama2.c file (the magic decides).  tokenizer_path is for
 * llama2.c files (NULL: tokenizer.bin beside the model).  On error NULL and
 * *err = "<what is wrong>" (malloc'd; the caller names the file). */
struct model *model_open(const char *path, const char *tokenizer_path, char **err);
void model_close(struct model *m);
int model_load_gguf(struct model *m, const char *path, char **err);
int model_load_l2c(struct model *m, const char *path, const char *tokenizer_path, char **err);
/* Fill m->type_count, n_params, weight_bytes and fingerprint. */
void model_finish(struct model *m);

/*
 * Rewrite the matrices the CPU's kernels read faster in another layout
 * (gemm_pack: Q4_0, Q8_0, Q4_K and Q6_K on AVX-512 VNNI) into one
 * anonymous block, and let go of their pages in the mapping, so that the
 * memory used stays the weights' size.  Idempotent and thread-safe: the first call does the work
 * (on the OpenMP team), later ones return at once.  If the block cannot be
 * allocated, nothing changes and the file's rows are used.
 */
void model_pack(struct model *m);

/* The values are the element codes of KV snapshots (kvsnap.c): never
 * renumber them. */
enum kv_type { KV_F16 = 0, KV_F32 = 1, KV_Q8 = 2 };

/* The KV cache: for each layer, K and V of n_ctx positions (kv_dim each).
 * KV_Q8 rows are kv_dim / 32 block_q8_0 (34 bytes for 32 values, as
 * llama.cpp's -ctk q8_0 -ctv q8_0); a head's slice starts on a block, since
 * the head size is a multiple of 32 (kv_init refuses other models). */
struct kv_cache {
	enum kv_type type;
	int n_ctx;
	int n_layers, kv_dim;
	void *k, *v;              /* (layer, n_ctx, kv_dim) in `type` */
	int mapped;               /* positions 0..mapped-1 have their pages (kv_reserve) */
};

/* Scratch of the forward pass for batches of up to n_batch tokens. */
struct run_state {
	int n_batch;
	float *x, *xb, *xb2;      /* (n_batch, dim) */
	float *q;                 /* (n_batch, dim) */
	float *k, *v;             /* (n_batch, kv_dim) */
	float *hb, *hb2;          /* (n_batch, hidden) */
	float *att;               /* (threads, n_ctx) */
	int att_threads;
	float *logits;            /* (n_batch, vocab) */
	void *qbuf;               /* activations quantized for the matmuls */
	size_t qbuf_size;
	int qbuf_token;           /* qbuf holds any of forward_token's plans */
	float rope_scale;         /* base^(-2/rope_dim): theta_i+1 = theta_i * this */
	float *rope_cs;           /* (n_batch, rope_dim): cos, sin of each pair's angle */
};

int kv_init(struct kv_cache *kv, const struct model *m, int n_ctx, enum kv_type type, char **err);
void kv_free(struct kv_cache *kv);
/* Bytes of one position's K (or V) in one layer. */
size_t kv_row_bytes(const struct kv_cache *kv);
/* Have the pages of positions 0..end-1 (and a little beyond) mapped
 * before they are written; see forward.c. */
void kv_reserve(struct kv_cache *kv, int end);
/* "f16", "f32", "q8_0". */
const char *kv_type_name(enum kv_type t);
int run_state_init(struct run_state *s, const struct model *m, int n_ctx, int n_batch, char **err);
void run_state_free(struct run_state *s);

/*
 * Run n tokens (n <= s->n_batch) at positions pos..pos+n-1, writing their K/V
 * into the cache.  With all_logits the logits of every token are computed
 * (s->logits row i), otherwise only the last one's (row 0).  Returns 0, or
 * 1 when *stop became nonzero between layers, -1 when a scratch buffer could
 * not grow (out of memory); after 1 or -1 the cache beyond pos is
 * meaningless and the caller must not count these tokens.
 */
int model_forward(const struct model *m, struct kv_cache *kv, struct run_state *s,
    const int32_t *tokens, int n, int pos, int all_logits, atomic_int *stop);

/* out (B, W->ne[1]) = x (B, W->ne[0]) times W's rows; scratch from s.
 * Returns 0, or -1 on out of memory (out then unwritten). */
int matmul(float *out, const struct tensor *W, const float *x, int B, struct run_state *s);

#endif
