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
 * Threads: OpenMP over matrix rows inside matmul and over (token, head)
 * pairs in attention; nothing else runs in parallel.
 */
#include "engine/model.h"
#include "engine/attn.h"
#include "engine/gemm.h"
#include "engine/vecops.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Waking the OpenMP team costs microseconds (much more when the cores are
 * busy with something else); below this many multiply-adds one thread does
 * the work sooner. */
#define PARALLEL_WORTH(macs) ((int64_t)(macs) >= (1 << 16))

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

/* llama2.c int8 rows: activations quantized in the same groups, as runq.c. */
static void
q8g_quantize(const float *x, int8_t *q, float *sc, int64_t n, int gs)
{
	for (int64_t g = 0; g < n / gs; g++) {
		float wmax = 0;
		for (int i = 0; i < gs; i++) {
			float a = fabsf(x[g * gs + i]);
			if (a > wmax)
				wmax = a;
		}
		float scale = wmax / 127.0f;
		sc[g] = scale;
		for (int i = 0; i < gs; i++) {
			float v = scale != 0 ? x[g * gs + i] / scale : 0;
			/* A denormal scale is rounded, so v can pass 127: clamp;
			 * NaN (broken weights) gives 0.  Both would be UB in the cast. */
			q[g * gs + i] = (int8_t)(isnan(v) ? 0 : roundf(fminf(fmaxf(v, -127.0f), 127.0f)));
		}
	}
}

static void
matmul_q8g(float *out, const struct tensor *W, const float *x, int B, struct run_state *s)
{
	int64_t n = W->ne[0], rows = W->ne[1];
	int gs = W->group;
	size_t stride = (size_t)n + (size_t)(n / gs) * sizeof(float);
	uint8_t *buf = s->qbuf;
	for (int b = 0; b < B; b++)
		q8g_quantize(x + (size_t)b * n, (int8_t *)(buf + b * stride),
		    (float *)(buf + b * stride + n), n, gs);
	#pragma omp parallel for schedule(static) if (PARALLEL_WORTH(rows * n * B))
	for (int64_t r = 0; r < rows; r++) {
		const int8_t *wq = (const int8_t *)W->data + r * n;
		const float *ws = W->scales + r * (n / gs);
		for (int b = 0; b < B; b++) {
			const int8_t *xq = (const int8_t *)(buf + b * stride);
			const float *xs = (const float *)(buf + b * stride + n);
			float val = 0;
			for (int64_t g = 0; g < n / gs; g++) {
				int32_t iv = 0;
				for (int i = 0; i < gs; i++)
					iv += (int32_t)wq[g * gs + i] * (int32_t)xq[g * gs + i];
				val += (float)iv * ws[g] * xs[g];
			}
			out[(size_t)b * rows + r] = val;
		}
	}
}

/*
 * Several matrices applied to the same input (Q, K and V; gate and up): the
 * input is quantized once per activation type, and all their rows are
 * shared out in one parallel loop, so the threads meet once per group
 * rather than once per matrix.  Each thread takes one contiguous run of row
 * chunks (static schedule): handing chunks out one at a time from a shared
 * counter cost a third of the decode time on 2 cores (measured: 32 vs 57
 * tokens/s on the 1.1B Q4_0 shape).
 */
struct mm {
	float *out;                 /* (B, W->ne[1]) */
	const struct tensor *W;
};

#define MM_MAX 4

/* Room in s->qbuf for `need` more bytes after `used`, growing it (the
 * forward pass is single-threaded outside its parallel loops). */
static uint8_t *
qbuf_at(struct run_state *s, size_t used, size_t need)
{
	if (used + need > s->qbuf_size) {
		void *nb = realloc(s->qbuf, used + need);
		if (nb == NULL)
			return NULL;
		s->qbuf = nb;
		s->qbuf_size = used + need;
	}
	return (uint8_t *)s->qbuf + used;
}

static void mm_chunk(const struct mm *jobs, const int64_t *first_chunk, const uint8_t *const *act,
    const size_t *stride, const int *tiled, const int *dec, int64_t chunk, int B, int64_t c);

/* Returns 0, or -1 when the activation buffer cannot grow (outputs then
 * untouched: the caller must fail the pass, not use them). */
static int
matmul_group(const struct mm *jobs, int nj, const float *x, int B, struct run_state *s)
{
	const uint8_t *act[MM_MAX];
	size_t stride[MM_MAX], decoff[MM_MAX];
	int tiled[MM_MAX], dec[MM_MAX];
	int64_t first_chunk[MM_MAX + 1];
	/* Rows in chunks: whole 16-row tiles.  Taking a chunk is a locked
	 * add, which waits for the loads before it and keeps the next
	 * chunk's from starting: at 32 rows a token, that was 6% of decoding
	 * time (perf); 128 rows: tg128 1.1B Q4_0 68.5 -> 72.1 t/s, Q4_K_M
	 * 53.8 -> 56.0, Q8_0 29.8 -> 30.2 (3 alternating rounds; 256 no
	 * better). */
	const int64_t chunk = B == 1 ? 128 : 64;
	size_t offs[MM_MAX], used = 0;
	int64_t macs = 0;
	first_chunk[0] = 0;
	/* First decide each matrix's activation layout and where it goes: the
	 * buffer may grow, so pointers are taken only once all are sized. */
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		int64_t n = W->ne[0];
		int vdt = quant_type_get(W->type)->vec_dot_type;
		/* Packed matrices (model_pack) take the tiled layout for any B. */
		size_t gsz = W->packed ? gemm_pack_act_size(W->type, (int)n, B)
		    : B > 1 ? gemm_act_size(W->type, (int)n, B) : 0;
		tiled[j] = gsz > 0;
		if (vdt == QT_F32) {
			stride[j] = (size_t)n * sizeof(float);
			offs[j] = (size_t)-1;
		} else if (j > 0 && jobs[j - 1].W->type == W->type && !jobs[j - 1].W->packed == !W->packed) {
			stride[j] = stride[j - 1];
			offs[j] = offs[j - 1];
		} else if (tiled[j]) {
			stride[j] = 0;
			offs[j] = used;
			used += (gsz + 63) / 64 * 64;
		} else if (j > 0 && !tiled[j - 1] && (int)quant_type_get(jobs[j - 1].W->type)->vec_dot_type == vdt) {
			stride[j] = stride[j - 1];
			offs[j] = offs[j - 1];
		} else {
			stride[j] = quant_row_size(vdt, n);
			offs[j] = used;
			used += (stride[j] * (size_t)B + 63) / 64 * 64;
		}
		first_chunk[j + 1] = first_chunk[j] + (W->ne[1] + chunk - 1) / chunk;
		macs += W->ne[0] * W->ne[1] * B;
	}
	/* Decoding: types whose kernel reads a prepared activation row get it
	 * after the plain one (64-byte aligned: 64 bytes of slack each). */
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		size_t dsz = B == 1 && !tiled[j] && offs[j] != (size_t)-1 ? quant_dec_size(W->type, (int)W->ne[0]) : 0;
		dec[j] = dsz > 0;
		decoff[j] = used;
		if (dec[j] && j > 0 && dec[j - 1] && jobs[j - 1].W->type == W->type)
			decoff[j] = decoff[j - 1];
		else if (dec[j])
			used += (dsz + 127) / 64 * 64;
	}
	if (qbuf_at(s, 0, used) == NULL)
		return -1;
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		int64_t n = W->ne[0];
		if (offs[j] == (size_t)-1) {
			act[j] = (const uint8_t *)x;
			continue;
		}
		uint8_t *dst = (uint8_t *)s->qbuf + offs[j];
		act[j] = dst;
		if (j > 0 && offs[j] == offs[j - 1])
			continue;
		/* Quantize the activations once; every row's dot product reuses
		 * them, as llama.cpp does (which is why its quantized results and
		 * ours agree). */
		if (tiled[j]) {
			(W->packed ? gemm_pack_act_prepare : gemm_act_prepare)(W->type, (int)n, x, B, dst);
			continue;
		}
		const struct quant_type *vt = quant_type_get(quant_type_get(W->type)->vec_dot_type);
		#pragma omp parallel for schedule(static) if (B > 1 && PARALLEL_WORTH(n * B))
		for (int b = 0; b < B; b++)
			vt->from_float(x + (size_t)b * n, dst + (size_t)b * stride[j], n);
	}
	for (int j = 0; j < nj; j++) {
		if (!dec[j])
			continue;
		uint8_t *p = (uint8_t *)(((uintptr_t)s->qbuf + decoff[j] + 63) & ~(uintptr_t)63);
		if (!(j > 0 && dec[j - 1] && decoff[j] == decoff[j - 1]))
			quant_dec_prepare(jobs[j].W->type, (int)jobs[j].W->ne[0], act[j], p);
		act[j] = p;
	}
	/*
	 * Each thread owns one contiguous run of chunks and walks it in order
	 * (one sequential stream, which the hardware prefetcher follows); a
	 * thread that finishes early takes the next chunks of the others' runs
	 * from the same counters.  A static split alone left one core waiting
	 * for the other a sixth of the decode time (a core slowed by anything
	 * else on the machine holds up the whole pass); handing out every chunk
	 * from one shared counter broke the streams and cost a third.  Which
	 * thread computes a row changes no bit of it.
	 */
	const int64_t total = first_chunk[nj];
	/* Runs are laid out for the team size asked for; a smaller team (one
	 * thread when the work is too small to share) still walks every run. */
	const int nr = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
	struct steal {
		_Alignas(64) atomic_llong next;
	} cur[nr];
	for (int t = 0; t < nr; t++)
		atomic_init(&cur[t].next, total * t / nr);
	#pragma omp parallel if (PARALLEL_WORTH(macs))
	{
		const int id = omp_get_thread_num();
		for (int v = 0; v < nr; v++) {
			const int t = (id + v) % nr;
			const int64_t end = total * (t + 1) / nr;
			int64_t c;
			while ((c = atomic_fetch_add_explicit(&cur[t].next, 1, memory_order_relaxed)) < end)
				mm_chunk(jobs, first_chunk, act, stride, tiled, dec, chunk, B, c);
		}
	}
	return 0;
}

/* One chunk of rows of one of the group's matrices. */
static void
mm_chunk(const struct mm *jobs, const int64_t *first_chunk, const uint8_t *const *act, const size_t *stride,
    const int *tiled, const int *dec, int64_t chunk, int B, int64_t c)
{
	int j = 0;
	while (c >= first_chunk[j + 1])
		j++;
	const struct tensor *W = jobs[j].W;
	const struct quant_type *qt = quant_type_get(W->type);
	int64_t n = W->ne[0], rows = W->ne[1];
	int64_t r0 = (c - first_chunk[j]) * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
	const uint8_t *w = (const uint8_t *)W->data;
	if (W->packed) {
		/* One token or a batch: the tiled kernels (gemm_pack.c). */
		gemm_packed(W->type, (int)n, W->packed, (int)r0, (int)r1, act[j], B, jobs[j].out, (size_t)rows);
	} else if (B == 1) {
		quant_vec_dot_fn dot = dec[j] ? quant_dec_dot(W->type) : qt->vec_dot;
		for (int64_t r = r0; r < r1; r++)
			dot((int)n, &jobs[j].out[r], w + r * W->row_bytes, act[j]);
	} else if (tiled[j]) {
		/* Prompt processing: the tiled GEMM (gemm.c). */
		gemm(W->type, (int)n, w, W->row_bytes, (int)r0, (int)r1, act[j], B, jobs[j].out, (size_t)rows);
	} else {
		/* Other types: each weight row unpacked once for all B rows. */
		quant_vec_dot_n_fn dot_n = quant_vec_dot_n(W->type);
		for (int64_t r = r0; r < r1; r++)
			dot_n((int)n, &jobs[j].out[r], (size_t)rows, w + r * W->row_bytes, act[j], stride[j], B);
	}
}

int
matmul(float *out, const struct tensor *W, const float *x, int B, struct run_state *s)
{
	if (W->type == QT_Q8_G) {
		matmul_q8g(out, W, x, B, s);
		return 0;
	}
	struct mm job = { out, W };
	return matmul_group(&job, 1, x, B, s);
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

static void
rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
	/* As ggml: each square in float, summed in double, the mean in float. */
	double ss = 0;
	for (int i = 0; i < n; i++)
		ss += (double)(x[i] * x[i]);
	float mean = (float)(ss / n);
	float scale = 1.0f / sqrtf(mean + eps);
	for (int i = 0; i < n; i++)
		o[i] = x[i] * scale * w[i];
}

static void
embed(const struct model *m, int32_t tok, float *out)
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

/* A stop request is honoured between matrix products, so that even a large
 * prompt batch on a 7B model stops within a few tens of milliseconds. */
#define STOPPED(stop) ((stop) && atomic_load_explicit((stop), memory_order_relaxed))

int
model_forward(const struct model *m, struct kv_cache *kv, struct run_state *s,
    const int32_t *tokens, int n, int pos, int all_logits, atomic_int *stop)
{
	const struct model_config *c = &m->cfg;
	const int dim = c->dim, hd = c->head_dim, kv_dim = hd * c->n_kv_heads;
	const int hidden = c->hidden_dim, group = c->n_heads / c->n_kv_heads;
	const float att_scale = 1.0f / sqrtf((float)hd);

	/* Work per token outside the matrix products (norms, RoPE, the cache
	 * writes, SwiGLU, residuals) is split across the threads too: run on
	 * one thread it was a seventh of a prompt's time, a quarter on two
	 * cores.  A single decoded token stays on one thread (waking the team
	 * would cost more). */
	const int par = n >= 8;
	#pragma omp parallel for schedule(static) if (par)
	for (int t = 0; t < n; t++) {
		embed(m, tokens[t], s->x + (size_t)t * dim);
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
			rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->attn_norm.data, dim, c->norm_eps);
		if (matmul2or3(s, s->xb, n, s->q, &L->wq, s->k, &L->wk, s->v, &L->wv) != 0)
			return -1;
		size_t layer_off = (size_t)l * kv->n_ctx * kv_dim;
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++) {
			const float *cs = s->rope_cs + (size_t)t * c->rope_dim;
			vec_rope(s->q + (size_t)t * dim, c->n_heads, hd, c->rope_dim, cs);
			vec_rope(s->k + (size_t)t * kv_dim, c->n_kv_heads, hd, c->rope_dim, cs);
			kv_put(kv, kv->k, layer_off + (size_t)(pos + t) * kv_dim, s->k + (size_t)t * kv_dim, kv_dim);
			kv_put(kv, kv->v, layer_off + (size_t)(pos + t) * kv_dim, s->v + (size_t)t * kv_dim, kv_dim);
		}
		/* Work items: a KV head and a block of tokens; the queries of an
		 * item (the heads sharing that KV head, for tb tokens) read the
		 * same K/V rows, so they run side by side (attn_multi_f16), and
		 * past ATTN_EXACT_MAX positions share each conversion of a K/V
		 * block to float: about ATTN_SHARE queries an item (measured on
		 * the 1.1B shape, 3,000-token prompt: 8 queries an item spent a
		 * fifth of attention converting). */
		const int tb = group >= ATTN_SHARE ? 1 : ATTN_SHARE / group;
		const int n_blk = (n + tb - 1) / tb, n_items = n_blk * c->n_kv_heads;
		/* Items one by one in turn to each thread: a causal prompt's
		 * later tokens cost more, so contiguous runs would not balance.
		 * KV head major, so that the threads walk one head's K/V rows
		 * at a time, which stay in their caches from item to item (two
		 * heads in turn at 2,048 positions are the size of a core's L2). */
		#pragma omp parallel for schedule(static, 1) \
		    if (PARALLEL_WORTH((int64_t)n * c->n_heads * (pos + n) * hd))
		for (int it = 0; it < n_items; it++) {
			int g = it / n_blk, t0 = it % n_blk * tb;
			size_t koff = layer_off + (size_t)g * hd;
			float *o[ATTN_MULTI * 64];
			const float *q[ATTN_MULTI * 64];
			int nn[ATTN_MULTI * 64], nq = 0;
			for (int t = t0; t < t0 + tb && t < n; t++)
				for (int h = g * group; h < (g + 1) * group && nq < ATTN_MULTI * 64; h++) {
					q[nq] = s->q + (size_t)t * dim + h * hd;
					o[nq] = s->xb + (size_t)t * dim + h * hd;
					nn[nq++] = pos + t + 1;
				}
			int tid = omp_get_thread_num();
			float *att = s->att + (size_t)(tid < s->att_threads ? tid : 0) * kv->n_ctx;
			if (kv->type == KV_F16) {
				attn_multi_f16(nq, o, q, nn, (const fp16_t *)kv->k + koff, (const fp16_t *)kv->v + koff, kv_dim,
				    hd, att_scale, 0);
			} else if (kv->type == KV_Q8) {
				attn_flash_q8(nq, o, q, nn, (const block_q8_0 *)kv->k + koff / QK8_0,
				    (const block_q8_0 *)kv->v + koff / QK8_0, kv_dim / QK8_0, hd, att_scale);
			} else {
				for (int i = 0; i < nq; i++)
					attend_f32(o[i], q[i], (const float *)kv->k + koff, (const float *)kv->v + koff, kv_dim,
					    nn[i], hd, att_scale, att);
			}
		}
		if (STOPPED(stop))
			return 1;
		if (matmul(s->xb2, &L->wo, s->xb, n, s) != 0)
			return -1;

		/* Residual, then the feed-forward's norm, token by token. */
		#pragma omp parallel for schedule(static) if (par)
		for (int t = 0; t < n; t++) {
			vec_add(s->x + (size_t)t * dim, s->xb2 + (size_t)t * dim, (size_t)dim);
			rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)t * dim, L->ffn_norm.data, dim, c->norm_eps);
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
		rmsnorm(s->xb + (size_t)t * dim, s->x + (size_t)(first + t) * dim, m->out_norm.data, dim, c->norm_eps);
	return matmul(s->logits, &m->output, s->xb, rows, s);
}
