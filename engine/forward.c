/*
 * forward.c: the LLaMA-2 transformer, run over a batch of tokens.
 *
 * Read top to bottom, one layer is: RMSNorm, Q/K/V projections, RoPE on Q
 * and K, K and V stored in the cache, causal grouped-query attention over
 * the cache, the output projection and residual; RMSNorm, the SwiGLU
 * feed-forward (silu(gate) * up, then down) and residual.  A batch of B
 * prompt tokens goes through each matrix together (matmul over B rows of
 * activations), so a prompt costs one pass over the weights per batch, not
 * per token.  Token t of the batch attends to cache positions 0..pos+t.
 *
 * Threads: OpenMP over matrix rows inside matmul (matmul.c), over (KV head,
 * tokens) items in attention, and over tokens for the small per-token steps
 * of a batch of 8 or more.  One decoded token runs all its layers in one
 * parallel region instead (forward_token.c), through the same steps, which
 * this file exports (forward_int.h).
 */
#include "engine/forward_int.h"
#include "engine/attn.h"
#include "engine/vecops.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
fw_fail(char **err, const char *msg)
{
	if (err)
		*err = strdup(msg);
	return -1;
}

int
kv_init(struct kv_cache *kv, const struct model *m, int n_ctx, enum kv_type type, char **err)
{
	memset(kv, 0, sizeof *kv);
	kv->type = type;
	kv->n_ctx = n_ctx;
	kv->n_layers = m->cfg.n_layers;
	kv->kv_dim = m->cfg.head_dim * m->cfg.n_kv_heads;
	if (type == KV_Q8 && (m->cfg.head_dim % QK8_0 != 0 || m->cfg.head_dim > ATTN_MAX_HD))
		return fw_fail(err, "a q8_0 KV cache needs a head size that is a multiple of 32 (at most 256)");
	size_t n = (size_t)kv->n_layers * (size_t)n_ctx * kv_row_bytes(kv);
	/* calloc of a large block is mmap'd and zero pages cost nothing until
	 * touched: a 4096-token cache does not use its memory up front. */
	kv->k = calloc(1, n);
	kv->v = calloc(1, n);
	if (kv->k == NULL || kv->v == NULL) {
		kv_free(kv);
		return fw_fail(err, "out of memory for the KV cache (try a smaller --ctx-size)");
	}
	return 0;
}

/*
 * The cache's pages are mapped as the conversation reaches them, not up
 * front (calloc: a 4,096-token cache costs nothing until used).  Left to
 * fault in one by one as positions are written, each page costs a fault:
 * about 12 us on the machines we measure on (a virtual machine), so that a
 * 512-token batch on the 1.1B shape spent 34 ms in 2,816 faults and a 7B
 * token 1.5 ms in 128.  MADV_POPULATE_WRITE maps a range in one call (0.14
 * us a page here), so the positions about to be written are mapped ahead,
 * a chunk of at least 64 KiB a layer at a time.  Where the kernel lacks it
 * (before Linux 5.14) the call fails and the pages fault in as before.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void
kv_reserve(struct kv_cache *kv, int end)
{
	if (end <= kv->mapped || kv->k == NULL)
		return;
	const size_t row = kv_row_bytes(kv), pg = (size_t)sysconf(_SC_PAGESIZE);
	const int ahead = (int)((size_t)65536 / row) > 16 ? (int)((size_t)65536 / row) : 16;
	const int to = end + ahead < kv->n_ctx ? end + ahead : kv->n_ctx;
	for (int l = 0; l < kv->n_layers; l++)
		for (int i = 0; i < 2; i++) {
			uintptr_t base = (uintptr_t)(i ? kv->v : kv->k) + (size_t)l * (size_t)kv->n_ctx * row;
			uintptr_t a = (base + (size_t)kv->mapped * row) & ~(uintptr_t)(pg - 1);
			uintptr_t b = (base + (size_t)to * row + pg - 1) & ~(uintptr_t)(pg - 1);
			/* Pages shared with a neighbouring allocation are only
			 * mapped, never written; failure leaves the lazy faults. */
			(void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
		}
	kv->mapped = to;
}

size_t
kv_row_bytes(const struct kv_cache *kv)
{
	switch (kv->type) {
	case KV_F16: return (size_t)kv->kv_dim * 2;
	case KV_Q8: return (size_t)kv->kv_dim / QK8_0 * sizeof(block_q8_0);
	default: return (size_t)kv->kv_dim * 4;
	}
}

const char *
kv_type_name(enum kv_type t)
{
	return t == KV_F16 ? "f16" : t == KV_Q8 ? "q8_0" : "f32";
}

void
kv_free(struct kv_cache *kv)
{
	free(kv->k);
	free(kv->v);
	kv->k = kv->v = NULL;
}

int
run_state_init(struct run_state *s, const struct model *m, int n_ctx, int n_batch, char **err)
{
	const struct model_config *c = &m->cfg;
	memset(s, 0, sizeof *s);
	s->n_batch = n_batch;
	size_t B = (size_t)n_batch;
	int kv_dim = c->head_dim * c->n_kv_heads;
	int widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
	s->att_threads = omp_get_max_threads();
	s->x = malloc(B * c->dim * sizeof(float));
	s->xb = malloc(B * c->dim * sizeof(float));
	s->xb2 = malloc(B * c->dim * sizeof(float));
	s->q = malloc(B * c->dim * sizeof(float));
	s->k = malloc(B * kv_dim * sizeof(float));
	s->v = malloc(B * kv_dim * sizeof(float));
	s->hb = malloc(B * c->hidden_dim * sizeof(float));
	s->hb2 = malloc(B * c->hidden_dim * sizeof(float));
	s->att = malloc((size_t)s->att_threads * (size_t)n_ctx * sizeof(float));
	s->logits = malloc(B * (size_t)c->vocab_size * sizeof(float));
	s->rope_cs = malloc(B * (size_t)c->rope_dim * sizeof(float));
	/* The widest quantized activation row is float32 (4 bytes a value) or
	 * int8 with a float per group (5 bytes a value at group 1). */
	s->qbuf_size = 2 * B * (size_t)widest * 5 + 4096;   /* two activation types at once */
	s->qbuf = malloc(s->qbuf_size);
	if (!s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->hb || !s->hb2 || !s->att ||
	    !s->logits || !s->qbuf || !s->rope_cs) {
		run_state_free(s);
		return fw_fail(err, "out of memory for the run state");
	}
	/* theta_i = pos * base^(-2i/d), formed as llama.cpp forms it: the
	 * ratio once, then repeated multiplication in float (vec_rope_table). */
	s->rope_scale = powf(c->rope_base, -2.0f / (float)c->rope_dim);
	return 0;
}

void
run_state_free(struct run_state *s)
{
	free(s->x); free(s->xb); free(s->xb2); free(s->q); free(s->k); free(s->v);
	free(s->hb); free(s->hb2); free(s->att); free(s->logits); free(s->qbuf); free(s->rope_cs);
	memset(s, 0, sizeof *s);
}

/* Q, K, V (or gate, up) from one input: grouped unless an int8 llama2.c
 * matrix is among them (its own path). */
static int
matmul2or3(struct run_state *s, const float *x, int B, float *o1, const struct tensor *w1, float *o2,
    const struct tensor *w2, float *o3, const struct tensor *w3)
{
	if (w1->type == QT_Q8_G) {
		matmul(o1, w1, x, B, s);
		matmul(o2, w2, x, B, s);
		if (o3)
			matmul(o3, w3, x, B, s);
		return 0;
	}
	struct mm jobs[3] = { { o1, w1 }, { o2, w2 }, { o3, w3 } };
	return matmul_group(jobs, o3 ? 3 : 2, x, B, s);
}

void
forward_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
	/* As ggml: each square in float, summed in double, the mean in float. */
	forward_rmsnorm_apply(o, x, w, vec_mean_sq(x, (size_t)n), eps, 0, n);
}

void
forward_rmsnorm_apply(float *o, const float *x, const float *w, float mean, float eps, int e0, int e1)
{
	float scale = 1.0f / sqrtf(mean + eps);
	for (int i = e0; i < e1; i++)
		o[i] = x[i] * scale * w[i];
}

void
forward_embed(const struct model *m, int32_t tok, float *out)
{
	const struct tensor *t = &m->tok_embd;
	const uint8_t *row = (const uint8_t *)t->data + (size_t)tok * t->row_bytes;
	if (t->type == QT_Q8_G) {
		const float *sc = t->scales + (size_t)tok * (t->ne[0] / t->group);
		for (int64_t i = 0; i < t->ne[0]; i++)
			out[i] = (float)((const int8_t *)row)[i] * sc[i / t->group];
		return;
	}
	quant_type_get(t->type)->to_float(row, out, t->ne[0]);
}

/* Store n values as element i of the cache (i and n multiples of 32 for
 * KV_Q8: a whole position). */
static void
kv_put(const struct kv_cache *kv, void *base, size_t i, const float *src, int n)
{
	if (kv->type == KV_Q8) {
		/* llama.cpp stores into a q8_0 cache with quantize_row_q8_0,
		 * the activation quantizer of the Q8_0 type. */
		quant_type_get(QT_Q8_0)->from_float(src, (block_q8_0 *)base + i / QK8_0, n);
	} else if (kv->type == KV_F16) {
		vec_to_f16((fp16_t *)base + i, src, (size_t)n);
	} else {
		memcpy((float *)base + i, src, (size_t)n * sizeof(float));
	}
}

/*
 * One head's attention over n cached positions, float32 cache: scores,
 * a softmax in double, the weighted sum of V.  k and v point at this head's
 * slice of position 0; positions are `stride` values apart.
 */
static void
attend_f32(float *o, const float *q, const float *k, const float *v, size_t stride, int n, int hd,
    float scale, float *att)
{
	float mx = -INFINITY;
	for (int j = 0; j < n; j++) {
		const float *kj = k + (size_t)j * stride;
		float d = 0;
		for (int i = 0; i < hd; i++)
			d += q[i] * kj[i];
		att[j] = d * scale;
		if (att[j] > mx)
			mx = att[j];
	}
	double sum = 0;
	for (int j = 0; j < n; j++)
		sum += att[j] = expf(att[j] - mx);
	float inv = (float)(1.0 / sum);
	memset(o, 0, (size_t)hd * sizeof(float));
	for (int j = 0; j < n; j++) {
		const float *vj = v + (size_t)j * stride;
		float a = att[j] * inv;
		for (int i = 0; i < hd; i++)
			o[i] += a * vj[i];
	}
}

/* Token t of the batch, layer l, KV heads g0 .. g1 - 1: RoPE on the query
 * heads sharing them and on their keys, then their K and V cached.  Heads
 * are independent, so a range gives the bits the whole does. */
void
forward_rope_store(const struct model *m, struct kv_cache *kv, struct run_state *s, int l, int t, int pos, int g0,
    int g1)
{
	const struct model_config *c = &m->cfg;
	const int dim = c->dim, hd = c->head_dim, kv_dim = hd * c->n_kv_heads, group = c->n_heads / c->n_kv_heads;
	const size_t at = (size_t)l * kv->n_ctx * kv_dim + (size_t)(pos + t) * kv_dim + (size_t)g0 * hd;
	const float *cs = s->rope_cs + (size_t)t * c->rope_dim;
	float *k = s->k + (size_t)t * kv_dim + (size_t)g0 * hd;
	vec_rope(s->q + (size_t)t * dim + (size_t)g0 * group * hd, (g1 - g0) * group, hd, c->rope_dim, cs);
	vec_rope(k, g1 - g0, hd, c->rope_dim, cs);
	kv_put(kv, kv->k, at, k, (g1 - g0) * hd);
	kv_put(kv, kv->v, at, s->v + (size_t)t * kv_dim + (size_t)g0 * hd, (g1 - g0) * hd);
}

/*
 * One work item of attention: KV head g and tokens t0 .. t0 + tb - 1.  The
 * queries of an item (the heads sharing that KV head, for tb tokens) read
 * the same K/V rows, so they run side by side (attn_multi_f16), and past
 * ATTN_EXACT_MAX positions share each conversion of a K/V block to float.
 */
void
forward_attn_item(const struct model *m, const struct kv_cache *kv, struct run_state *s, int l, int g, int t0,
    int tb, int n, int pos, int tid)
{
	const struct model_config *c = &m->cfg;
	const int dim = c->dim, hd = c->head_dim, kv_dim = hd * c->n_kv_heads;
	const int group = c->n_heads / c->n_kv_heads;
	const float att_scale = 1.0f / sqrtf((float)hd);
	size_t koff = (size_t)l * kv->n_ctx * kv_dim + (size_t)g * hd;
	float *o[ATTN_MULTI * 64];
	const float *q[ATTN_MULTI * 64];
	int nn[ATTN_MULTI * 64], nq = 0;
	for (int t = t0; t < t0 + tb && t < n; t++)
		for (int h = g * group; h < (g + 1) * group && nq < ATTN_MULTI * 64; h++) {
			q[nq] = s->q + (size_t)t * dim + h * hd;
			o[nq] = s->xb + (size_t)t * dim + h * hd;
			nn[nq++] = pos + t + 1;
		}
	float *att = s->att + (size_t)(tid < s->att_threads ? tid : 0) * kv->n_ctx;
	if (kv->type == KV_F16) {
		attn_multi_f16(nq, o, q, nn, (const fp16_t *)kv->k + koff, (const fp16_t *)kv->v + koff, kv_dim, hd,
		    att_scale, 0);
	} else if (kv->type == KV_Q8) {
		attn_flash_q8(nq, o, q, nn, (const block_q8_0 *)kv->k + koff / QK8_0,
		    (const block_q8_0 *)kv->v + koff / QK8_0, kv_dim / QK8_0, hd, att_scale);
	} else {
		for (int i = 0; i < nq; i++)
			attend_f32(o[i], q[i], (const float *)kv->k + koff, (const float *)kv->v + koff, kv_dim, nn[i], hd,
			    att_scale, att);
	}
}

int
model_forward(const struct model *m, struct kv_cache *kv, struct run_state *s,
    const int32_t *tokens, int n, int pos, int all_logits, atomic_int *stop)
{
	const struct model_config *c = &m->cfg;
	const int dim = c->dim, hidden = c->hidden_dim, group = c->n_heads / c->n_kv_heads;

	kv_reserve(kv, pos + n);
	/* One decoded token: every layer in one parallel region. */
	if (n == 1 && forward_token_ok(m))
		return forward_token(m, kv, s, tokens[0], pos, stop);

	/* Work per token outside the matrix products (norms, RoPE, the cache
	 * writes, SwiGLU, residuals) is split across the threads too: run on
	 * one thread it was a seventh of a prompt's time, a quarter on two
	 * cores.  A single decoded token stays on one thread (waking the team
	 * would cost more). */
	const int par = n >= 8;
	#pragma omp parallel for schedule(static) if (par)
	for (int t = 0; t < n; t++) {
		forward_embed(m, tokens[t], s->x + (size_t)t * dim);
		/* RoPE angles depend on the position alone: once per batch, not
		 * per layer and head. */
		vec_rope_table(s->rope_cs + (size_t)t * c->rope_dim, c->rope_dim, pos + t, s->rope_scale,
		    m->rope_freqs.data);
	}

	for (int l = 0; l < c->n_layers; l++) {
		if (STOPPED(stop))
			return 1;
		const struct layer *L = &m->layers[l];

		/* Attention. */
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++)
			forward_rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm.data, dim,
			    c->norm_eps);
		if (matmul2or3(s, s->xb, n, s->q, &L->wq, s->k, &L->wk, s->v, &L->wv) != 0)
			return -1;
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++)
			forward_rope_store(m, kv, s, l, t, pos, 0, c->n_kv_heads);
		/* Work items: a KV head and a block of tokens, about ATTN_SHARE
		 * queries an item (measured on the 1.1B shape, 3,000-token
		 * prompt: 8 queries an item spent a fifth of attention
		 * converting K/V blocks). */
		const int tb = group >= ATTN_SHARE ? 1 : ATTN_SHARE / group;
		const int n_blk = (n + tb - 1) / tb, n_items = n_blk * c->n_kv_heads;
		/* Items one by one in turn to each thread: a causal prompt's
		 * later tokens cost more, so contiguous runs would not balance.
		 * KV head major, so that the threads walk one head's K/V rows
		 * at a time, which stay in their caches from item to item (two
		 * heads in turn at 2,048 positions are the size of a core's L2). */
		#pragma omp parallel for schedule(static, 1) \
		    if (PARALLEL_WORTH((int64_t)n * c->n_heads * (pos + n) * c->head_dim))
		for (int it = 0; it < n_items; it++)
			forward_attn_item(m, kv, s, l, it / n_blk, it % n_blk * tb, tb, n, pos, omp_get_thread_num());
		if (STOPPED(stop))
			return 1;
		if (matmul(s->xb2, &L->wo, s->xb, n, s) != 0)
			return -1;

		/* Residual, then the feed-forward's norm, token by token. */
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++) {
			vec_add(s->x + (size_t)t * dim, s->xb2 + (size_t)t * dim, (size_t)dim);
			forward_rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm.data, dim,
			    c->norm_eps);
		}
		if (matmul2or3(s, s->xb, n, s->hb, &L->w_gate, s->hb2, &L->w_up, NULL, NULL) != 0)
			return -1;
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++)
			vec_swiglu(s->hb + (size_t)t * hidden, s->hb2 + (size_t)t * hidden, (size_t)hidden);
		if (matmul(s->xb2, &L->w_down, s->hb, n, s) != 0)
			return -1;
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++)
			vec_add(s->x + (size_t)t * dim, s->xb2 + (size_t)t * dim, (size_t)dim);
	}

	int first = all_logits ? 0 : n - 1;
	int rows = n - first;
	for (int t = 0; t < rows; t++)
		forward_rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)(first + t) * dim, m->out_norm.data, dim,
		    c->norm_eps);
	return matmul(s->logits, &m->output, s->xb, rows, s);
}
