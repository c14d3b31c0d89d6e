/*
 * forward_int.h: what the forward pass's three files share.
 *
 *   forward.c        the layers over a batch of tokens, and the steps of a
 *                    layer that the one-token pass reuses;
 *   forward_token.c  one decoded token, all its layers in one parallel
 *                    region;
 *   matmul.c         matrix products: activations quantized once per
 *                    group of matrices, rows shared out by work stealing.
 *
 * Not part of the engine's interface (model.h is).
 */
#ifndef ENGINE_FORWARD_INT_H
#define ENGINE_FORWARD_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/model.h"

/* Waking the OpenMP team costs microseconds (much more when the cores are
 * busy with something else); below this many multiply-adds one thread does
 * the work sooner. */
#define PARALLEL_WORTH(macs) ((int64_t)(macs) >= (1 << 16))

/* A stop request is honoured between matrix products, so that even a large
 * prompt batch on a 7B model stops within a few tens of milliseconds. */
#define STOPPED(stop) ((stop) && atomic_load_explicit((stop), memory_order_relaxed))

/* ------------------------------------------------------------------ */
/* matmul.c                                                            */
/* ------------------------------------------------------------------ */

/* One matrix of a group applied to the same input. */
struct mm {
	float *out;                 /* (B, W->ne[1]) */
	const struct tensor *W;
};

#define MM_MAX 4                /* matrices in a group */
#define MM_RUNS 64              /* runs of units the rows are split into */

/* One thread's run: the next unit to take (its own cache line, since the
 * owner takes from it while another thread may steal from it). */
struct mm_run {
	_Alignas(64) atomic_llong next;
};

/* How a matrix's activations are made (matmul_plan_fill). */
enum { FILL_NONE, FILL_TILED, FILL_PLAIN };

/*
 * A group of matrix products made ready to run: the activations quantized
 * (once per activation type), the rows of all matrices numbered in units,
 * and the units split into nr runs.  Laid out by one thread
 * (matmul_plan_layout), its activations filled by one thread or, in parts,
 * by several (matmul_plan_fill), then run by any number of threads at once
 * (matmul_plan_run), each starting on its own run and stealing from the
 * others' when done.
 */
struct mm_plan {
	int nj, B, nr;
	const float *x;                 /* the input, B rows of n */
	int n;
	int blk;                        /* values a part of the input is a multiple of; 0: one part */
	struct mm jobs[MM_MAX];
	int fill[MM_MAX];               /* FILL_*: what this matrix fills (NONE: shared or float input) */
	uint8_t *plain[MM_MAX];         /* where it quantizes the input */
	int decown[MM_MAX];             /* it also prepares the decode row act[j] from plain[j] */
	const uint8_t *act[MM_MAX];     /* each matrix's prepared activations */
	size_t stride[MM_MAX];          /* bytes between activation rows (plain layout) */
	int tiled[MM_MAX], dec[MM_MAX];
	int64_t first[MM_MAX + 1];      /* matrix j's first unit; first[nj]: all units */
	int unit;                       /* rows a unit */
	int guided;                     /* takes of half what is left of one's run, a quarter of another's */
	int tail;                       /* units a take at least (guided) or exactly */
	int64_t macs;
	struct mm_run run[MM_RUNS];
};

/*
 * Plan the products out_j = x (B rows) times W_j for nj <= MM_MAX matrices
 * (none of type Q8_G), for a team of up to nr threads.  Single-threaded:
 * quantizes x into s->qbuf, growing it.  Returns 0, or -1 when s->qbuf
 * cannot grow (nothing computed).
 */
int matmul_plan(struct mm_plan *p, const struct mm *jobs, int nj, const float *x, int B, struct run_state *s,
    int nr);
/*
 * matmul_plan in steps.  The layout decides where each activation goes in
 * s->qbuf (growing it only if grow; returns -1, the plan left empty, when
 * it is too small or cannot grow) and reads nothing of x, which may still
 * be being written.  Fill then quantizes input values e0 .. e1 - 1; a
 * plan's parts (matmul_plan_part: thread id's share of a team of nth) may
 * be filled by different threads at once, each from the values it has
 * just written itself, and a barrier after the last before the run.
 */
int matmul_plan_layout(struct mm_plan *p, const struct mm *jobs, int nj, const float *x, int B,
    struct run_state *s, int nr, int grow);
void matmul_plan_part(const struct mm_plan *p, int id, int nth, int *e0, int *e1);
void matmul_plan_fill(const struct mm_plan *p, int e0, int e1);
/* Thread `id` of a team computes rows of the plan until none are left.
 * Every thread of the team must call it; the products are complete once
 * all have returned (the caller's barrier). */
void matmul_plan_run(struct mm_plan *p, int id);
/* Plan and run in a parallel region.  Returns 0 or -1 (out of memory). */
int matmul_group(const struct mm *jobs, int nj, const float *x, int B, struct run_state *s);

/* ------------------------------------------------------------------ */
/* forward.c: steps of a layer                                         */
/* ------------------------------------------------------------------ */

void forward_rmsnorm(float *o, const float *x, const float *w, int n, float eps);
/* Its values e0 .. e1 - 1, given the mean of the squares (vec_mean_sq). */
void forward_rmsnorm_apply(float *o, const float *x, const float *w, float mean, float eps, int e0, int e1);
/* Token tok's embedding row, as floats. */
void forward_embed(const struct model *m, int32_t tok, float *out);
/* Token t of the batch (at position pos + t), layer l, KV heads g0 .. g1 - 1
 * (all: 0 .. n_kv_heads): RoPE on the query heads sharing them (s->q) and
 * on their keys (s->k), then their K and V stored in the cache (a q8_0
 * cache: head size % 32 = 0, as kv_init requires). */
void forward_rope_store(const struct model *m, struct kv_cache *kv, struct run_state *s, int l, int t, int pos,
    int g0, int g1);
/* Attention of layer l for KV head g and the tokens t0 .. t0 + tb - 1 of a
 * batch of n at position pos (every query head sharing g), into s->xb; tid
 * picks the thread's scratch row. */
void forward_attn_item(const struct model *m, const struct kv_cache *kv, struct run_state *s, int l, int g,
    int t0, int tb, int n, int pos, int tid);

/* ------------------------------------------------------------------ */
/* forward_token.c                                                     */
/* ------------------------------------------------------------------ */

/* Whether forward_token can run this model (more than one thread, no
 * llama2.c int8 matrices, a model large enough to share). */
int forward_token_ok(const struct model *m);
/* model_forward for one token; the same bits, the same returns. */
int forward_token(const struct model *m, struct kv_cache *kv, struct run_state *s, int32_t token, int pos,
    atomic_int *stop);

#endif
