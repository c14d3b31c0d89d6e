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
 * One block for one query, in three steps.  kb, vb: the block's rows in
 * float, hd apart; `valid` of them are this query's.  Inlined with nv
 * constant for the common head sizes, so the accumulators live in
 * registers.  flash_pair runs two queries' steps side by side: each
 * query's step ends in a chain of dependent reductions (scores -> block
 * maximum -> exp), and two independent chains fill each other's waits.
 */
static inline __attribute__((always_inline)) T512 __m512
flash_scores(const __m512 *qv, const float *kb, int valid, int nv, float scale)
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
	return _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), keep, s);
}

/* The online softmax of one block's scores s: the weights P. */
static inline __attribute__((always_inline)) T512 __m512
flash_softmax(struct flash_state *st, __m512 s, int nv)
{
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
	return p;
}

/* V rows weighted by P into the even and odd accumulators. */
static inline __attribute__((always_inline)) T512 void
flash_accum(struct flash_state *st, __m512 p, const float *vb, int valid, int nv)
{
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
flash_block(struct flash_state *st, const __m512 *qv, const float *kb, const float *vb, int valid, int nv,
    float scale)
{
	__m512 s = flash_scores(qv, kb, valid, nv, scale);
	flash_accum(st, flash_softmax(st, s, nv), vb, valid, nv);
}

/* Two queries that both see the whole block: their steps interleaved, and
 * each V row loaded once for both. */
static inline __attribute__((always_inline)) T512 void
flash_pair(struct flash_state *sa, struct flash_state *sb, const __m512 *qa, const __m512 *qb, const float *kb,
    const float *vb, int nv, float scale)
{
	__m512 s0 = flash_scores(qa, kb, FB, nv, scale);
	__m512 s1 = flash_scores(qb, kb, FB, nv, scale);
	__m512 p0 = flash_softmax(sa, s0, nv);
	__m512 p1 = flash_softmax(sb, s1, nv);
	float w0[FB], w1[FB];
	_mm512_storeu_ps(w0, p0);
	_mm512_storeu_ps(w1, p1);
	__m512 ae[ATTN_MAX_HD / 16], ao[ATTN_MAX_HD / 16], be[ATTN_MAX_HD / 16], bo[ATTN_MAX_HD / 16];
	for (int c = 0; c < nv; c++) {
		ae[c] = sa->oe[c];
		ao[c] = sa->oo[c];
		be[c] = sb->oe[c];
		bo[c] = sb->oo[c];
	}
	for (int l = 0; l < FB; l += 2) {
		const __m512 xe = _mm512_set1_ps(w0[l]), xo = _mm512_set1_ps(w0[l + 1]);
		const __m512 ye = _mm512_set1_ps(w1[l]), yo = _mm512_set1_ps(w1[l + 1]);
		const float *ve = vb + (size_t)l * (size_t)nv * 16, *vo = ve + (size_t)nv * 16;
		for (int c = 0; c < nv; c++) {
			const __m512 e = _mm512_loadu_ps(ve + 16 * c), o = _mm512_loadu_ps(vo + 16 * c);
			ae[c] = _mm512_fmadd_ps(e, xe, ae[c]);
			ao[c] = _mm512_fmadd_ps(o, xo, ao[c]);
			be[c] = _mm512_fmadd_ps(e, ye, be[c]);
			bo[c] = _mm512_fmadd_ps(o, yo, bo[c]);
		}
	}
	for (int c = 0; c < nv; c++) {
		sa->oe[c] = ae[c];
		sa->oo[c] = ao[c];
		sb->oe[c] = be[c];
		sb->oo[c] = bo[c];
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
			for (int h = 0; h < nq; h++) {
				if (h + 1 < nq && n[h] >= j0 + FB && n[h + 1] >= j0 + FB) {
					flash_pair(&st[h], &st[h + 1], qv[h], qv[h + 1], kb + off, vb + off, nv, scale);
					h++;
				} else if (n[h] > j0) {
					flash_block(&st[h], qv[h], kb + off, vb + off, n[h] - j0 < FB ? n[h] - j0 : FB, nv, scale);
				}
			}
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
/*
 * The AVX2 family: the same 16 lanes as a pair of ymm (lanes 0-7, 8-15),
 * so every lane does the arithmetic above; the score tree adds the pair
 * first (lane l + lane l+8) and then reduces eight positions at a time.
 * ldexpf(j, n) for n in [-126, 0] (x >= -87) is j times the float 2^n.
 */
#define T2 __attribute__((target("avx2,f16c,fma")))

static inline T2 __m256
flash_vexp8(__m256 x)
{
	const __m256 r = _mm256_set1_ps(0x1.8p23f);
	__m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
	__m256 n = _mm256_sub_ps(z, r);
	__m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
	    _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
	__m256 u = _mm256_mul_ps(b, b);
	__m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b,
	    _mm256_set1_ps(0x1.573e2ep-5f)), u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b,
	    _mm256_set1_ps(0x1.fffdb6p-2f))), u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	__m256 res = _mm256_mul_ps(j, _mm256_castsi256_ps(e));
	__m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
	return _mm256_andnot_ps(tiny, res);
}

/* t[i]: the (lane l + lane l+8) sums of position i / 2 + 4 * (i % 2); the
 * result's lane j is flash_lanes_reduce of position j's vector. */
static inline T2 __m256
flash_reduce8(const __m256 *t)
{
	__m256 c[4], d[2];
	for (int i = 0; i < 4; i++)        /* u = t l + t l+4 */
		c[i] = _mm256_add_ps(_mm256_permute2f128_ps(t[2 * i], t[2 * i + 1], 0x20),
		    _mm256_permute2f128_ps(t[2 * i], t[2 * i + 1], 0x31));
	for (int i = 0; i < 2; i++)        /* v = u 0 + u 2, u 1 + u 3 */
		d[i] = _mm256_add_ps(_mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
		    _mm256_shuffle_ps(c[2 * i], c[2 * i + 1], 0xee));
	return _mm256_add_ps(_mm256_shuffle_ps(d[0], d[1], 0x88), _mm256_shuffle_ps(d[0], d[1], 0xdd));
}

/* flash_lanes_reduce of the 16 lanes (lo, hi). */
static inline T2 float
flash_hsum2(__m256 lo, __m256 hi)
{
	__m256 t = _mm256_add_ps(hi, lo);
	__m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
	__m128 w = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, _MM_SHUFFLE(1, 1, 1, 1))));
}

struct flash_state2 {
	float M;
	__m256 L[2];
	__m256 oe[ATTN_MAX_HD / 8], oo[ATTN_MAX_HD / 8];
};

static inline __attribute__((always_inline)) T2 void
flash_block2(struct flash_state2 *st, const __m256 *qv, const float *kb, const float *vb, int valid, int nv,
    float scale)
{
	const int hd = 16 * nv, n8 = 2 * nv;
	__m256 t[FB];
	for (int i = 0; i < FB; i++) {
		const float *kr = kb + (size_t)(8 * (i / 8) + (i % 8) / 2 + 4 * (i % 2)) * (size_t)hd;
		__m256 lo = _mm256_mul_ps(_mm256_loadu_ps(kr), qv[0]);
		__m256 hi = _mm256_mul_ps(_mm256_loadu_ps(kr + 8), qv[1]);
		for (int c = 1; c < nv; c++) {
			lo = _mm256_fmadd_ps(_mm256_loadu_ps(kr + 16 * c), qv[2 * c], lo);
			hi = _mm256_fmadd_ps(_mm256_loadu_ps(kr + 16 * c + 8), qv[2 * c + 1], hi);
		}
		t[i] = _mm256_add_ps(hi, lo);
	}
	const __m256 vsc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
	const __m256i vv = _mm256_set1_epi32(valid);
	__m256 s[2];
	for (int h = 0; h < 2; h++) {
		const __m256i idx = _mm256_setr_epi32(8 * h, 8 * h + 1, 8 * h + 2, 8 * h + 3, 8 * h + 4, 8 * h + 5,
		    8 * h + 6, 8 * h + 7);
		s[h] = _mm256_blendv_ps(ninf, _mm256_mul_ps(flash_reduce8(t + 8 * h), vsc),
		    _mm256_castsi256_ps(_mm256_cmpgt_epi32(vv, idx)));
	}
	__m256 mx = _mm256_max_ps(s[0], s[1]);
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	const float mb = _mm_cvtss_f32(m4);
	if (mb > st->M) {
		float alpha = expf(st->M - mb);
		st->M = mb;
		__m256 va = _mm256_set1_ps(alpha);
		st->L[0] = _mm256_mul_ps(st->L[0], va);
		st->L[1] = _mm256_mul_ps(st->L[1], va);
		for (int c = 0; c < n8; c++) {
			st->oe[c] = _mm256_mul_ps(st->oe[c], va);
			st->oo[c] = _mm256_mul_ps(st->oo[c], va);
		}
	}
	float pw[FB];
	for (int h = 0; h < 2; h++) {
		__m256 p = flash_vexp8(_mm256_sub_ps(s[h], _mm256_set1_ps(st->M)));
		st->L[h] = _mm256_add_ps(st->L[h], p);
		_mm256_storeu_ps(pw + 8 * h, p);
	}
	__m256 oe[ATTN_MAX_HD / 8], oo[ATTN_MAX_HD / 8];
	for (int c = 0; c < n8; c++) {
		oe[c] = st->oe[c];
		oo[c] = st->oo[c];
	}
	int l = 0;
	for (; l + 1 < valid; l += 2) {
		__m256 we = _mm256_set1_ps(pw[l]), wo = _mm256_set1_ps(pw[l + 1]);
		const float *ve = vb + (size_t)l * (size_t)hd, *vo = ve + hd;
		for (int c = 0; c < n8; c++) {
			oe[c] = _mm256_fmadd_ps(_mm256_loadu_ps(ve + 8 * c), we, oe[c]);
			oo[c] = _mm256_fmadd_ps(_mm256_loadu_ps(vo + 8 * c), wo, oo[c]);
		}
	}
	if (l < valid) {
		__m256 we = _mm256_set1_ps(pw[l]);
		const float *ve = vb + (size_t)l * (size_t)hd;
		for (int c = 0; c < n8; c++)
			oe[c] = _mm256_fmadd_ps(_mm256_loadu_ps(ve + 8 * c), we, oe[c]);
	}
	for (int c = 0; c < n8; c++) {
		st->oe[c] = oe[c];
		st->oo[c] = oo[c];
	}
}

static inline __attribute__((always_inline)) T2 void
flash_run2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int nv, float scale)
{
	const int hd = nv * 16, n8 = 2 * nv;
	float kb[FB * ATTN_MAX_HD] __attribute__((aligned(32)));
	float vb[FB * ATTN_MAX_HD] __attribute__((aligned(32)));
	struct flash_state2 st[FQ];
	__m256 qv[FQ][ATTN_MAX_HD / 8];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		for (int c = 0; c < n8; c++) {
			qv[h][c] = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q[h] + 8 * c),
			    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
			st[h].oe[c] = st[h].oo[c] = _mm256_setzero_ps();
		}
		st[h].M = -INFINITY;
		st[h].L[0] = st[h].L[1] = _mm256_setzero_ps();
		nmax = n[h] > nmax ? n[h] : nmax;
	}
	for (int j0 = 0; j0 < nmax; j0 += FB) {
		int cnt = nmax - j0 < FB ? nmax - j0 : FB;
		for (int l = 0; l < FB; l++) {
			float *kr = kb + (size_t)l * hd, *vr = vb + (size_t)l * hd;
			if (l >= cnt) {
				memset(kr, 0, (size_t)hd * sizeof *kr);
				continue;
			}
			const fp16_t *ks = k + (size_t)(j0 + l) * stride, *vs = v + (size_t)(j0 + l) * stride;
			for (int c = 0; c < n8; c++) {
				_mm256_store_ps(kr + 8 * c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ks + 8 * c))));
				_mm256_store_ps(vr + 8 * c, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vs + 8 * c))));
			}
		}
		for (int h = 0; h < nq; h++)
			if (n[h] > j0)
				flash_block2(&st[h], qv[h], kb, vb, n[h] - j0 < FB ? n[h] - j0 : FB, nv, scale);
	}
	for (int h = 0; h < nq; h++) {
		__m256 inv = _mm256_set1_ps(1.0f / flash_hsum2(st[h].L[0], st[h].L[1]));
		for (int c = 0; c < n8; c++)
			_mm256_storeu_ps(o[h] + 8 * c, _mm256_mul_ps(_mm256_add_ps(st[h].oe[c], st[h].oo[c]), inv));
	}
}

static T2 void
flash_avx2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale)
{
	for (int h0 = 0; h0 < nq; h0 += FQ) {
		int m = nq - h0 < FQ ? nq - h0 : FQ;
		switch (hd) {
		case 64: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, 4, scale); break;
		case 128: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, 8, scale); break;
		default: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, hd / 16, scale); break;
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
		flash_avx2(nq, o, q, n, k, v, stride, hd, scale);
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
