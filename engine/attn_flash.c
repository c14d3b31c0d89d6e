/*
 * attn_flash.c: attention over long contexts, tiled in the manner of flash
 * attention and computed as two small matrix products.  The cache is walked
 * in blocks of FB (16) positions; a chunk of blocks (FBUF values of K and of
 * V) is converted to float once per call and used by up to FQ (128) queries
 * (the heads sharing a KV head, several tokens of a prompt).  K is stored
 * transposed (for each dimension d, the 16 positions of a block side by
 * side), so that a position's score is a lane of a vector and needs no
 * horizontal sum: scores are an outer-product GEMM, FG queries by a chunk
 * of blocks, with each K vector loaded once for FG queries.  V stays in
 * rows, and the weighted sum of V rows is the second GEMM, FG queries at
 * a time, each V row loaded once for them.  Per query, an online softmax:
 * running maximum M, per-lane running sums L, the output rescaled when M
 * grows.
 *
 * The arithmetic of one query is fixed by this file alone, never by which
 * other queries share its call or where a prompt batch starts: blocks start
 * at multiples of FB from position 0; the score of position j is
 *   s_j = (fma chain over d = 1..hd-1 of k[j][d] * q16[d], from k[j][0] * q16[0]) * scale
 * (q16: q rounded to f16); the block maximum mb, alpha = expf(M - mb) when
 * mb > M (M, L and the output multiplied by alpha), the weights
 * P = e(s - M) with ggml's vector expf (e(x) = 0 below -87), L[j % 16] += P
 * and o[i] = fma(v[j][i], P_j, o[i]) for the block's positions in order;
 * the result is o * (1 / lanes_reduce(L)).  So a token decoded alone gets the
 * bits it got inside a prompt batch, and the scalar reference
 * attn_flash_f16_ref gives the vector kernels' bits.  (A position past the
 * query's end adds fma(v, 0, o) = o: o starts at +0 and a sum in
 * round-to-nearest never becomes -0, so skipping it and adding it agree.)
 *
 * A q8_0 cache (--kv-q8) goes through the same kernels at every length: its
 * blocks are dequantized (q * d) where f16 rows are converted, and from
 * there the arithmetic is the one above.
 *
 * One query alone (a decoded token of a model whose KV heads each serve
 * one query head: LLaMA-2 7B) has nothing to share a conversion with, so
 * flash_one does the same arithmetic without it: each block's K is
 * transposed in registers and used at once, V read where it lies.
 *
 * This file holds the scalar reference and the AVX-512 family;
 * attn_flash_avx2.c the AVX2 one; attn_flash_int.h what they share.
 */
#include "engine/attn.h"
#include "engine/attn_flash_int.h"
#include "engine/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FLASH_X86 1
#endif

static float
flash_lanes_reduce(const float *a)
{
	float t[8], u[4];
	for (int i = 0; i < 8; i++)
		t[i] = a[i + 8] + a[i];
	for (int i = 0; i < 4; i++)
		u[i] = t[i + 4] + t[i];
	return (u[0] + u[2]) + (u[1] + u[3]);
}

/* ggml_v_expf (Arm optimized-routines), one lane; 0 below -87. */
static float
flash_exp(float x)
{
	if (x < -87.0f)
		return 0.0f;
	const float r = 0x1.8p23f;
	float z = fmaf(x, 0x1.715476p+0f, r);
	float n = z - r;
	float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
	float u = b * b;
	float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
	    u, fmaf(0x1.ffffecp-1f, b, 1.0f));
	return ldexpf(j, (int)n);
}

/* Row j of a cache slice in float: f16 values (stride in values) or q8_0
 * blocks (stride in blocks; each value q * d, as dequantize_row_q8_0). */
static void
flash_row(int q8, const void *base, size_t stride, int j, int hd, float *out)
{
	if (q8) {
		const block_q8_0 *b = (const block_q8_0 *)base + (size_t)j * stride;
		for (int i = 0; i < hd; i++)
			out[i] = (float)b[i / QK8_0].qs[i % QK8_0] * fp16_to_fp32(b[i / QK8_0].d);
	} else {
		const fp16_t *r = (const fp16_t *)base + (size_t)j * stride;
		for (int i = 0; i < hd; i++)
			out[i] = fp16_to_fp32(r[i]);
	}
}

static void
flash_ref(int q8, float *o, const float *q, const void *k, const void *v, size_t stride, int n, int hd,
    float scale)
{
	float q16[ATTN_MAX_HD], acc[ATTN_MAX_HD], L[FB], kj[ATTN_MAX_HD], vj[ATTN_MAX_HD];
	for (int i = 0; i < hd; i++) {
		q16[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
		acc[i] = 0;
	}
	for (int l = 0; l < FB; l++)
		L[l] = 0;
	float M = -INFINITY;
	for (int j0 = 0; j0 < n; j0 += FB) {
		float s[FB], mb = -INFINITY;
		for (int l = 0; l < FB; l++) {
			int j = j0 + l;
			if (j >= n) {
				s[l] = -INFINITY;
				continue;
			}
			flash_row(q8, k, stride, j, hd, kj);
			float p = kj[0] * q16[0];
			for (int d = 1; d < hd; d++)
				p = fmaf(kj[d], q16[d], p);
			s[l] = p * scale;
			mb = s[l] > mb ? s[l] : mb;
		}
		if (mb > M) {
			float alpha = expf(M - mb);
			M = mb;
			for (int l = 0; l < FB; l++)
				L[l] *= alpha;
			for (int i = 0; i < hd; i++)
				acc[i] *= alpha;
		}
		for (int l = 0; l < FB; l++) {
			float pl = flash_exp(s[l] - M);
			L[l] += pl;
			int j = j0 + l;
			if (j >= n)
				continue;
			flash_row(q8, v, stride, j, hd, vj);
			for (int i = 0; i < hd; i++)
				acc[i] = fmaf(vj[i], pl, acc[i]);
		}
	}
	float inv = 1.0f / flash_lanes_reduce(L);
	for (int i = 0; i < hd; i++)
		o[i] = acc[i] * inv;
}

void
attn_flash_f16_ref(float *o, const float *q, const fp16_t *k, const fp16_t *v, size_t stride, int n, int hd,
    float scale)
{
	flash_ref(0, o, q, k, v, stride, n, hd, scale);
}

void
attn_flash_q8_ref(float *o, const float *q, const block_q8_0 *k, const block_q8_0 *v, size_t stride, int n,
    int hd, float scale)
{
	flash_ref(1, o, q, k, v, stride, n, hd, scale);
}

#ifdef FLASH_X86
#define T512 __attribute__((target("avx512f,f16c,fma")))

static AI T512 __m512
flash_vexp(__m512 x)
{
	const __m512 r = _mm512_set1_ps(0x1.8p23f);
	__m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
	__m512 n = _mm512_sub_ps(z, r);
	__m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
	    _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
	__m512 u = _mm512_mul_ps(b, b);
	__m512 j = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b,
	    _mm512_set1_ps(0x1.573e2ep-5f)), u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b,
	    _mm512_set1_ps(0x1.fffdb6p-2f))), u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
	__m512 res = _mm512_scalef_ps(j, n);
	__mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
	return _mm512_mask_mov_ps(res, tiny, _mm512_setzero_ps());
}

/* Horizontal sum in flash_lanes_reduce's order. */
static AI T512 float
flash_hsum(__m512 a)
{
	__m256 t = _mm256_add_ps(_mm512_castps512_ps256(_mm512_shuffle_f32x4(a, a, 0xee)), _mm512_castps512_ps256(a));
	__m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
	__m128 w = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, _MM_SHUFFLE(1, 1, 1, 1))));
}

/* Dimensions 16c .. 16c+15 of row j, in float (flash_row's values). */
static AI T512 __m512
flash_load16(int q8, const void *base, size_t stride, int j, int c)
{
	if (q8) {
		const block_q8_0 *b = (const block_q8_0 *)base + (size_t)j * stride + c / 2;
		__m512 x = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + (c & 1) * 16))));
		return _mm512_mul_ps(x, _mm512_set1_ps(fp16_to_fp32(b->d)));
	}
	const fp16_t *r = (const fp16_t *)base + (size_t)j * stride + 16 * c;
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)r));
}

#define PD(x) _mm512_castps_pd(x)
#define PS(x) _mm512_castpd_ps(x)

/* r[i] = column i of the 16x16 matrix whose rows were r[0..15]. */
static AI T512 void
flash_tr16(__m512 *r)
{
	__m512 t[16], u[16];
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	/* u[4g + m]: in each 128-bit lane k, rows 4g..4g+3 of column 4k + m. */
	for (int g = 0; g < 4; g++) {
		u[4 * g] = PS(_mm512_unpacklo_pd(PD(t[4 * g]), PD(t[4 * g + 2])));
		u[4 * g + 1] = PS(_mm512_unpackhi_pd(PD(t[4 * g]), PD(t[4 * g + 2])));
		u[4 * g + 2] = PS(_mm512_unpacklo_pd(PD(t[4 * g + 1]), PD(t[4 * g + 3])));
		u[4 * g + 3] = PS(_mm512_unpackhi_pd(PD(t[4 * g + 1]), PD(t[4 * g + 3])));
	}
	for (int m = 0; m < 4; m++) {
		__m512 a = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), b = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
		__m512 c = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd), d = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
		r[m] = _mm512_shuffle_f32x4(a, b, 0x88);
		r[8 + m] = _mm512_shuffle_f32x4(a, b, 0xdd);
		r[4 + m] = _mm512_shuffle_f32x4(c, d, 0x88);
		r[12 + m] = _mm512_shuffle_f32x4(c, d, 0xdd);
	}
}

/*
 * Positions c0 .. c0 + FB*nb - 1 in float: K transposed into kt (block b,
 * dimension d: the 16 positions at kt + (b*hd + d)*FB), V in rows into vb.
 * Positions at or past c0 + cnt are zero, so that masked lanes and the
 * rows a query does not see hold no NaN garbage.
 */
static AI T512 void
flash_convert(int q8, const void *k, const void *v, size_t stride, int c0, int cnt, int nb, int nv, float *kt,
    float *vb)
{
	const int hd = 16 * nv;
	for (int b = 0; b < nb; b++)
		for (int c = 0; c < nv; c++) {
			__m512 r[FB];
			if ((b + 1) * FB <= cnt) {
				for (int l = 0; l < FB; l++) {
					int p = b * FB + l;
					r[l] = flash_load16(q8, k, stride, c0 + p, c);
					_mm512_store_ps(vb + (size_t)p * hd + 16 * c, flash_load16(q8, v, stride, c0 + p, c));
				}
			} else {
				for (int l = 0; l < FB; l++) {
					int p = b * FB + l, in = p < cnt;
					r[l] = in ? flash_load16(q8, k, stride, c0 + p, c) : _mm512_setzero_ps();
					_mm512_store_ps(vb + (size_t)p * hd + 16 * c,
					    in ? flash_load16(q8, v, stride, c0 + p, c) : _mm512_setzero_ps());
				}
			}
			flash_tr16(r);
			for (int i = 0; i < FB; i++)
				_mm512_store_ps(kt + ((size_t)b * hd + 16 * c + i) * FB, r[i]);
		}
}

/* Scores of G queries over NB blocks: s[h*FCB*FB + b*FB + l], scaled. */
static AI T512 void
flash_scores(int G, int NB, int hd, const float *kt, struct flash_q *st, float scale, float *s)
{
	__m512 a[FG][4];
	for (int b = 0; b < NB; b++) {
		__m512 kv = _mm512_load_ps(kt + (size_t)b * hd * FB);
		for (int h = 0; h < G; h++)
			a[h][b] = _mm512_mul_ps(kv, _mm512_set1_ps(st[h].q16[0]));
	}
	for (int d = 1; d < hd; d++)
		for (int b = 0; b < NB; b++) {
			__m512 kv = _mm512_load_ps(kt + ((size_t)b * hd + d) * FB);
			FLASH_REG(kv);
			for (int h = 0; h < G; h++)
				a[h][b] = _mm512_fmadd_ps(kv, _mm512_set1_ps(st[h].q16[d]), a[h][b]);
		}
	for (int h = 0; h < G; h++)
		for (int b = 0; b < NB; b++)
			_mm512_store_ps(s + h * FCB * FB + b * FB, _mm512_mul_ps(a[h][b], _mm512_set1_ps(scale)));
}

/* The online softmax of one block's scores sp (valid of them the
 * query's): sp becomes the weights P; returns the factor the output must
 * be multiplied by first (1 when M did not grow). */
static AI T512 float
flash_softmax(struct flash_q *st, float *sp, int valid)
{
	if (valid <= 0) {
		_mm512_store_ps(sp, _mm512_setzero_ps());
		return 1.0f;
	}
	__m512 s = _mm512_load_ps(sp);
	if (valid < FB)
		s = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), (__mmask16)((1u << valid) - 1), s);
	float mb = _mm512_reduce_max_ps(s), alpha = 1.0f;
	__m512 L = _mm512_load_ps(st->L);
	if (mb > st->M) {
		alpha = expf(st->M - mb);
		st->M = mb;
		L = _mm512_mul_ps(L, _mm512_set1_ps(alpha));
	}
	__m512 p = flash_vexp(_mm512_sub_ps(s, _mm512_set1_ps(st->M)));
	_mm512_store_ps(st->L, _mm512_add_ps(L, p));
	_mm512_store_ps(sp, p);
	return alpha;
}

/* o += P . V for G queries over nb blocks (after each block's rescale),
 * four vectors of the output at a time, each V vector loaded once for the
 * G queries. */
static AI T512 void
flash_pv(int G, int nb, int nv, const float *vb, const float *p, const float *alpha, struct flash_q *st)
{
	const int hd = 16 * nv;
	for (int c0 = 0; c0 < nv; c0 += 4) {
		const int cw = nv - c0 < 4 ? nv - c0 : 4;
		__m512 acc[FG][4];
		for (int h = 0; h < G; h++)
			for (int c = 0; c < cw; c++)
				acc[h][c] = _mm512_load_ps(st[h].o + 16 * (c0 + c));
		for (int b = 0; b < nb; b++) {
			for (int h = 0; h < G; h++) {
				float al = alpha[h * FCB + b];
				if (al != 1.0f)
					for (int c = 0; c < cw; c++)
						acc[h][c] = _mm512_mul_ps(acc[h][c], _mm512_set1_ps(al));
			}
			for (int l = 0; l < FB; l++) {
				const float *vr = vb + (size_t)(b * FB + l) * hd + 16 * c0;
				for (int c = 0; c < cw; c++) {
					__m512 x = _mm512_load_ps(vr + 16 * c);
					FLASH_REG(x);
					for (int h = 0; h < G; h++)
						acc[h][c] = _mm512_fmadd_ps(x, _mm512_set1_ps(p[h * FCB * FB + b * FB + l]), acc[h][c]);
				}
			}
		}
		for (int h = 0; h < G; h++)
			for (int c = 0; c < cw; c++)
				_mm512_store_ps(st[h].o + 16 * (c0 + c), acc[h][c]);
	}
}

/* One chunk of nb blocks for G queries (their state st, lengths n). */
static AI T512 void
flash_group(int G, int NB, int nv, int c0, int nb, const float *kt, const float *vb, struct flash_q *st, const int *n,
    float scale)
{
	const int hd = 16 * nv;
	float s[FG * FCB * FB] __attribute__((aligned(64)));
	float alpha[FG * FCB];
	for (int b0 = 0; b0 < nb; b0 += NB)
		flash_scores(G, NB, hd, kt + (size_t)b0 * hd * FB, st, scale, s + b0 * FB);
	for (int b = 0; b < nb; b++)
		for (int h = 0; h < G; h++)
			alpha[h * FCB + b] = flash_softmax(&st[h], s + h * FCB * FB + b * FB, n[h] - (c0 + b * FB));
	flash_pv(G, nb, nv, vb, s, alpha, st);
}

static AI T512 void
flash_run(int nq, float *const *o, const float *const *q, const int *n, const void *k, const void *v,
    size_t stride, int nv, float scale, int q8)
{
	const int hd = nv * 16;
	const int cb = FBUF / (FB * hd);          /* blocks converted at once */
	const int NB = cb % 4 == 0 ? 4 : cb % 2 == 0 ? 2 : 1;   /* blocks a score step */
	float kt[FBUF] __attribute__((aligned(64)));
	float vb[FBUF] __attribute__((aligned(64)));
	float qbuf[FQ * FHD] __attribute__((aligned(64)));
	float obuf[FQ * FHD] __attribute__((aligned(64)));
	struct flash_q st[FQ];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		st[h].q16 = qbuf + (size_t)h * hd;
		st[h].o = obuf + (size_t)h * hd;
		for (int c = 0; c < nv; c++) {
			_mm512_store_ps(st[h].q16 + 16 * c, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q[h] + 16 * c),
			    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
			_mm512_store_ps(st[h].o + 16 * c, _mm512_setzero_ps());
		}
		st[h].M = -INFINITY;
		_mm512_store_ps(st[h].L, _mm512_setzero_ps());
		nmax = n[h] > nmax ? n[h] : nmax;
	}
	for (int c0 = 0; c0 < nmax; c0 += cb * FB) {
		int cnt = nmax - c0 < cb * FB ? nmax - c0 : cb * FB;
		int nb = (cnt + FB - 1) / FB;
		/* Whole score steps: the blocks up to the next multiple of NB
		 * are converted too (as zeros). */
		flash_convert(q8, k, v, stride, c0, cnt, (nb + NB - 1) / NB * NB, nv, kt, vb);
		flash_prefetch(q8, k, v, stride, c0 + cb * FB, nmax, cb * FB, hd);
		for (int h0 = 0; h0 < nq;) {
			int G = nq - h0 >= 4 ? 4 : nq - h0 >= 2 ? 2 : 1, seen = 0;
			for (int h = h0; h < h0 + G; h++)
				seen |= n[h] > c0;
			if (seen) {
				switch (G) {
				case 4: flash_group(4, NB, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				case 2: flash_group(2, NB, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				default: flash_group(1, NB, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				}
			}
			h0 += G;
		}
	}
	for (int h = 0; h < nq; h++) {
		__m512 inv = _mm512_set1_ps(1.0f / flash_hsum(_mm512_load_ps(st[h].L)));
		for (int c = 0; c < nv; c++)
			_mm512_storeu_ps(o[h] + 16 * c, _mm512_mul_ps(_mm512_load_ps(st[h].o + 16 * c), inv));
	}
}

/*
 * One query alone (a decoded token of a model whose KV heads each serve
 * one query head, as LLaMA-2 7B's): there is no other query to share a
 * conversion with, so each block's K is transposed in registers and used
 * at once, and V is read from the cache where it lies.  The same
 * operations in the same order as flash_run's for that query (the score
 * chain over d, the softmax of each block, the rescale then the
 * position-ordered multiply-adds of P.V), without storing kt and vb and
 * loading them back, which for one query was most of the work: perf put
 * attention at 9.6% of a 7B Q4_0 token over 256 positions.
 */
static AI T512 void
flash_one(float *out, const float *q, int n, const void *k, const void *v, size_t stride, const int nv, float scale,
    int q8)
{
	const int hd = 16 * nv;
	float qb[ATTN_MAX_HD] __attribute__((aligned(64)));
	float s[FB] __attribute__((aligned(64)));
	struct flash_q st = { .q16 = qb, .M = -INFINITY };
	__m512 acc[ATTN_MAX_HD / 16];
	for (int c = 0; c < nv; c++) {
		_mm512_store_ps(qb + 16 * c, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q + 16 * c),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
		acc[c] = _mm512_setzero_ps();
	}
	_mm512_store_ps(st.L, _mm512_setzero_ps());
	flash_prefetch(q8, k, v, stride, 0, n, 2 * FB, hd);
	for (int j0 = 0; j0 < n; j0 += FB) {
		const int cnt = n - j0 < FB ? n - j0 : FB;
		flash_prefetch(q8, k, v, stride, j0 + 2 * FB, n, FB, hd);
		__m512 a = _mm512_setzero_ps();
		for (int c = 0; c < nv; c++) {
			__m512 r[FB];
			for (int l = 0; l < FB; l++)
				r[l] = l < cnt ? flash_load16(q8, k, stride, j0 + l, c) : _mm512_setzero_ps();
			flash_tr16(r);
			for (int i = 0; i < FB; i++)
				a = c == 0 && i == 0 ? _mm512_mul_ps(r[0], _mm512_set1_ps(qb[0]))
						     : _mm512_fmadd_ps(r[i], _mm512_set1_ps(qb[16 * c + i]), a);
		}
		_mm512_store_ps(s, _mm512_mul_ps(a, _mm512_set1_ps(scale)));
		const float al = flash_softmax(&st, s, cnt);
		if (al != 1.0f)
			for (int c = 0; c < nv; c++)
				acc[c] = _mm512_mul_ps(acc[c], _mm512_set1_ps(al));
		for (int l = 0; l < cnt; l++)
			for (int c = 0; c < nv; c++)
				acc[c] = _mm512_fmadd_ps(flash_load16(q8, v, stride, j0 + l, c), _mm512_set1_ps(s[l]), acc[c]);
	}
	const __m512 inv = _mm512_set1_ps(1.0f / flash_hsum(_mm512_load_ps(st.L)));
	for (int c = 0; c < nv; c++)
		_mm512_storeu_ps(out + 16 * c, _mm512_mul_ps(acc[c], inv));
}

static T512 void
flash_avx512(int nq, float *const *o, const float *const *q, const int *n, const void *k, const void *v,
    size_t stride, int hd, float scale, int q8)
{
	if (nq == 1) {
		switch (hd) {
		case 64: flash_one(o[0], q[0], n[0], k, v, stride, 4, scale, q8); break;
		case 128: flash_one(o[0], q[0], n[0], k, v, stride, 8, scale, q8); break;
		default: flash_one(o[0], q[0], n[0], k, v, stride, hd / 16, scale, q8); break;
		}
		return;
	}
	const int qmax = hd <= FHD ? FQ : FQ * FHD / hd;
	for (int h0 = 0; h0 < nq; h0 += qmax) {
		int m = nq - h0 < qmax ? nq - h0 : qmax;
		if (q8) {
			switch (hd) {
			case 64: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, 4, scale, 1); break;
			case 128: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, 8, scale, 1); break;
			default: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, hd / 16, scale, 1); break;
			}
			continue;
		}
		switch (hd) {
		case 64: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, 4, scale, 0); break;
		case 128: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, 8, scale, 0); break;
		default: flash_run(m, o + h0, q + h0, n + h0, k, v, stride, hd / 16, scale, 0); break;
		}
	}
}

#endif

void
attn_flash_f16(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale)
{
#ifdef FLASH_X86
	if (hd % 16 == 0 && hd <= ATTN_MAX_HD && cpu_isa() == CPU_AVX512) {
		flash_avx512(nq, o, q, n, k, v, stride, hd, scale, 0);
		return;
	}
	if (hd % 16 == 0 && hd <= ATTN_MAX_HD && cpu_isa() == CPU_AVX2) {
		attn_flash_avx2(nq, o, q, n, k, v, stride, hd, scale);
		return;
	}
#endif
	for (int h = 0; h < nq; h++)
		attn_flash_f16_ref(o[h], q[h], k, v, stride, n[h], hd, scale);
}

void
attn_flash_q8(int nq, float *const *o, const float *const *q, const int *n, const block_q8_0 *k,
    const block_q8_0 *v, size_t stride, int hd, float scale)
{
#ifdef FLASH_X86
	if (hd % QK8_0 == 0 && hd <= ATTN_MAX_HD && cpu_isa() == CPU_AVX512) {
		flash_avx512(nq, o, q, n, k, v, stride, hd, scale, 1);
		return;
	}
#endif
	for (int h = 0; h < nq; h++)
		attn_flash_q8_ref(o[h], q[h], k, v, stride, n[h], hd, scale);
}
