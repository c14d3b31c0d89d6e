/*
 * attn_flash.c: attention over long float16 contexts, tiled in the manner
 * of flash attention: the cache is walked in blocks of FB (16) positions,
 * a few blocks' K and V rows converted to float at once (FBUF values) and
 * used by up to FQ (32) queries of the call (the heads sharing a KV head,
 * several tokens of a prompt), with an online softmax per query (running
 * maximum M, per-lane running sums L, the V accumulator rescaled when M
 * grows).  The queries take a block in turn, so that one query's softmax
 * (a dependent chain) overlaps the next one's products.
 *
 * The arithmetic of one query is fixed by this file alone, never by which
 * other queries share its call or where a prompt batch starts: blocks start
 * at multiples of FB from position 0; the score of position j is
 *   lanes_reduce(p) * scale,  p[l] = fma chain over c of k[j][16c+l] * q16[16c+l]
 * (q16: q rounded to f16; lanes_reduce: the tree (l, l+8), (l, l+4),
 * (0, 2)/(1, 3), then the pair); the block maximum mb, alpha = expf(M - mb)
 * when mb > M (M, L and the accumulators multiplied by alpha), the weights
 * P = e(s - M) with ggml's vector expf (e(x) = 0 below -87), L += P lane by
 * lane, and V rows added into two accumulators (even and odd positions) by
 * fused multiply-adds; the output is (even + odd) / lanes_reduce(L).  So a
 * token decoded alone gets the bits it got inside a prompt batch, and the
 * scalar reference attn_flash_f16_ref gives the vector kernel's bits.
 *
 * Registers: sixteen positions' score vectors are reduced together by a
 * transposing tree (shuffles of 128-bit quarters, then within quarters),
 * which yields one vector of sixteen scores for about three instructions a
 * position instead of a full horizontal sum each.
 *
 * A q8_0 cache (--kv-q8) goes through the same kernel at every length: its
 * blocks are dequantized (q * d) where f16 rows are converted, and from
 * there the arithmetic is the one above.
 */
#include "engine/attn.h"
#include "engine/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FLASH_X86 1
#endif

#define FB 16        /* positions per block = lanes of a zmm */
#define FQ 32        /* queries sharing one conversion of K/V */
#define FBUF 4096    /* floats of K (and of V) converted at once: 4 blocks at hd 64 */

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
	float q16[ATTN_MAX_HD], oe[ATTN_MAX_HD], oo[ATTN_MAX_HD], L[FB], kj[ATTN_MAX_HD], vj[ATTN_MAX_HD];
	for (int i = 0; i < hd; i++) {
		q16[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
		oe[i] = oo[i] = 0;
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
			float p[16];
			for (int ln = 0; ln < 16; ln++)
				p[ln] = kj[ln] * q16[ln];
			for (int c = 1; c < hd / 16; c++)
				for (int ln = 0; ln < 16; ln++)
					p[ln] = fmaf(kj[16 * c + ln], q16[16 * c + ln], p[ln]);
			s[l] = flash_lanes_reduce(p) * scale;
			mb = s[l] > mb ? s[l] : mb;
		}
		if (mb > M) {
			float alpha = expf(M - mb);
			M = mb;
			for (int l = 0; l < FB; l++)
				L[l] *= alpha;
			for (int i = 0; i < hd; i++) {
				oe[i] *= alpha;
				oo[i] *= alpha;
			}
		}
		for (int l = 0; l < FB; l++) {
			float pl = flash_exp(s[l] - M);
			L[l] += pl;
			int j = j0 + l;
			if (j >= n)
				continue;
			flash_row(q8, v, stride, j, hd, vj);
			float *acc = l & 1 ? oo : oe;
			for (int i = 0; i < hd; i++)
				acc[i] = fmaf(vj[i], pl, acc[i]);
		}
	}
	float inv = 1.0f / flash_lanes_reduce(L);
	for (int i = 0; i < hd; i++)
		o[i] = (oe[i] + oo[i]) * inv;
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

static inline T512 __m512
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

/* a[i] holds the lane sums of position 4 * (i % 4) + i / 4; the result's
 * lane j is flash_lanes_reduce of position j's vector. */
static inline T512 __m512
flash_reduce16(const __m512 *a)
{
	__m512 b[8], c[4], d[2];
	for (int i = 0; i < 8; i++)        /* t = lane l + lane l+8 */
		b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
		    _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
	for (int i = 0; i < 4; i++)        /* u = t l + t l+4 */
		c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
		    _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
	for (int i = 0; i < 2; i++)        /* v = u 0 + u 2, u 1 + u 3 */
		d[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
		    _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xee));
	return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xdd));
}

/* Horizontal sum in flash_lanes_reduce's order. */
static inline T512 float
flash_hsum(__m512 a)
{
	__m256 t = _mm256_add_ps(_mm512_castps512_ps256(_mm512_shuffle_f32x4(a, a, 0xee)), _mm512_castps512_ps256(a));
	__m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
	__m128 w = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, _MM_SHUFFLE(1, 1, 1, 1))));
}

struct flash_state {
	float M;
	__m512 L;
	__m512 oe[ATTN_MAX_HD / 16], oo[ATTN_MAX_HD / 16];
};

/*
 * One block for one query.  kb, vb: the block's rows in float, hd apart;
 * `valid` of them are this query's.  Inlined with nv constant for the
 * common head sizes, so the accumulators live in registers.
 */
static inline __attribute__((always_inline)) T512 void
flash_block(struct flash_state *st, const __m512 *qv, const float *kb, const float *vb, int valid, int nv,
    float scale)
{
	__m512 a[FB];
	for (int i = 0; i < FB; i++) {
		const float *kr = kb + (size_t)(4 * (i % 4) + i / 4) * (size_t)nv * 16;
		a[i] = _mm512_mul_ps(_mm512_loadu_ps(kr), qv[0]);
		for (int c = 1; c < nv; c++)
			a[i] = _mm512_fmadd_ps(_mm512_loadu_ps(kr + 16 * c), qv[c], a[i]);
	}
	__m512 s = _mm512_mul_ps(flash_reduce16(a), _mm512_set1_ps(scale));
	__mmask16 keep = (__mmask16)(valid >= FB ? 0xffff : (1u << valid) - 1);
	s = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), keep, s);
	float mb = _mm512_reduce_max_ps(s);
	if (mb > st->M) {
		float alpha = expf(st->M - mb);
		st->M = mb;
		__m512 va = _mm512_set1_ps(alpha);
		st->L = _mm512_mul_ps(st->L, va);
		for (int c = 0; c < nv; c++) {
			st->oe[c] = _mm512_mul_ps(st->oe[c], va);
			st->oo[c] = _mm512_mul_ps(st->oo[c], va);
		}
	}
	__m512 p = flash_vexp(_mm512_sub_ps(s, _mm512_set1_ps(st->M)));
	st->L = _mm512_add_ps(st->L, p);
	float pw[FB];
	_mm512_storeu_ps(pw, p);
	__m512 oe[ATTN_MAX_HD / 16], oo[ATTN_MAX_HD / 16];
	for (int c = 0; c < nv; c++) {
		oe[c] = st->oe[c];
		oo[c] = st->oo[c];
	}
	int l = 0;
	for (; l + 1 < valid; l += 2) {
		__m512 we = _mm512_set1_ps(pw[l]), wo = _mm512_set1_ps(pw[l + 1]);
		const float *ve = vb + (size_t)l * (size_t)nv * 16, *vo = ve + (size_t)nv * 16;
		for (int c = 0; c < nv; c++) {
			oe[c] = _mm512_fmadd_ps(_mm512_loadu_ps(ve + 16 * c), we, oe[c]);
			oo[c] = _mm512_fmadd_ps(_mm512_loadu_ps(vo + 16 * c), wo, oo[c]);
		}
	}
	if (l < valid) {
		__m512 we = _mm512_set1_ps(pw[l]);
		const float *ve = vb + (size_t)l * (size_t)nv * 16;
		for (int c = 0; c < nv; c++)
			oe[c] = _mm512_fmadd_ps(_mm512_loadu_ps(ve + 16 * c), we, oe[c]);
	}
	for (int c = 0; c < nv; c++) {
		st->oe[c] = oe[c];
		st->oo[c] = oo[c];
	}
}

static inline __attribute__((always_inline)) T512 void
flash_run(int nq, float *const *o, const float *const *q, const int *n, const void *k, const void *v,
    size_t stride, int nv, float scale, int q8)
{
	const int hd = nv * 16;
	const int cb = FBUF / (FB * hd);          /* blocks converted at once */
	float kb[FBUF] __attribute__((aligned(64)));
	float vb[FBUF] __attribute__((aligned(64)));
	struct flash_state st[FQ];
	__m512 qv[FQ][ATTN_MAX_HD / 16];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		for (int c = 0; c < nv; c++) {
			qv[h][c] = _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(q[h] + 16 * c),
			    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
			st[h].oe[c] = st[h].oo[c] = _mm512_setzero_ps();
		}
		st[h].M = -INFINITY;
		st[h].L = _mm512_setzero_ps();
		nmax = n[h] > nmax ? n[h] : nmax;
	}
	for (int c0 = 0; c0 < nmax; c0 += cb * FB) {
		/* Convert cb blocks once; rows past the last position get a zero K
		 * (their scores are masked, but must not be NaN garbage). */
		int cnt = nmax - c0 < cb * FB ? nmax - c0 : cb * FB;
		int rows = (cnt + FB - 1) / FB * FB;
		for (int l = 0; l < rows; l++) {
			float *kr = kb + (size_t)l * hd, *vr = vb + (size_t)l * hd;
			if (l >= cnt) {
				memset(kr, 0, (size_t)hd * sizeof *kr);
				continue;
			}
			if (q8) {
				const block_q8_0 *ks = (const block_q8_0 *)k + (size_t)(c0 + l) * stride;
				const block_q8_0 *vs = (const block_q8_0 *)v + (size_t)(c0 + l) * stride;
				for (int c = 0; c < nv; c++) {
					const block_q8_0 *kbk = &ks[c / 2], *vbk = &vs[c / 2];
					int h16 = (c & 1) * 16;
					__m512 kd = _mm512_set1_ps(fp16_to_fp32(kbk->d)), vd = _mm512_set1_ps(fp16_to_fp32(vbk->d));
					__m512 kx = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(kbk->qs + h16))));
					__m512 vx = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(vbk->qs + h16))));
					_mm512_store_ps(kr + 16 * c, _mm512_mul_ps(kx, kd));
					_mm512_store_ps(vr + 16 * c, _mm512_mul_ps(vx, vd));
				}
				continue;
			}
			const fp16_t *ks = (const fp16_t *)k + (size_t)(c0 + l) * stride;
			const fp16_t *vs = (const fp16_t *)v + (size_t)(c0 + l) * stride;
			for (int c = 0; c < nv; c++) {
				_mm512_store_ps(kr + 16 * c, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(ks + 16 * c))));
				_mm512_store_ps(vr + 16 * c, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vs + 16 * c))));
			}
		}
		/* Block by block, the queries in turn: consecutive calls are
		 * independent, so one query's softmax overlaps the next one's
		 * products. */
		for (int j0 = c0; j0 < c0 + rows; j0 += FB) {
			size_t off = (size_t)(j0 - c0) * hd;
			for (int h = 0; h < nq; h++)
				if (n[h] > j0)
					flash_block(&st[h], qv[h], kb + off, vb + off, n[h] - j0 < FB ? n[h] - j0 : FB, nv, scale);
		}
	}
	for (int h = 0; h < nq; h++) {
		__m512 inv = _mm512_set1_ps(1.0f / flash_hsum(st[h].L));
		for (int c = 0; c < nv; c++)
			_mm512_storeu_ps(o[h] + 16 * c, _mm512_mul_ps(_mm512_add_ps(st[h].oe[c], st[h].oo[c]), inv));
	}
}

static T512 void
flash_avx512(int nq, float *const *o, const float *const *q, const int *n, const void *k, const void *v,
    size_t stride, int hd, float scale, int q8)
{
	for (int h0 = 0; h0 < nq; h0 += FQ) {
		int m = nq - h0 < FQ ? nq - h0 : FQ;
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
