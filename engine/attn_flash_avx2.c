/*
 * attn_flash_avx2.c: the tiled attention of attn_flash.c for CPUs with
 * AVX2 but not AVX-512 (most laptops and desktops): the same 16 lanes as
 * a pair of ymm (positions 0-7, 8-15), so every lane does the arithmetic
 * described at the top of attn_flash.c and the scalar reference gives
 * these bits too (test_flash_equals_ref, under cpu_force).  Sixteen
 * registers: a score step is FG queries by one block, a P.V step two
 * queries by four vectors; one query alone (flash_one2) transposes K in
 * registers and reads V where it lies.  ldexpf(j, n) for n in [-126, 0]
 * (x >= -87) is j times the float 2^n.
 *
 * The Makefile builds this file with -mno-avx512f, as gemm_avx2.c, so
 * that -march=native on an AVX-512 machine cannot slip EVEX instructions
 * into the family an AVX2-only CPU runs.
 */
#include "engine/attn.h"
#include "engine/attn_flash_int.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define T2 __attribute__((target("avx2,f16c,fma")))

static AI T2 __m256
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

/* flash_lanes_reduce of the 16 lanes (lo, hi). */
static AI T2 float
flash_hsum2(__m256 lo, __m256 hi)
{
	__m256 t = _mm256_add_ps(hi, lo);
	__m128 u = _mm_add_ps(_mm256_extractf128_ps(t, 1), _mm256_castps256_ps128(t));
	__m128 w = _mm_add_ps(u, _mm_shuffle_ps(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(w, _mm_shuffle_ps(w, w, _MM_SHUFFLE(1, 1, 1, 1))));
}

/* r[i] = column i of the 8x8 matrix whose rows were r[0..7]. */
static AI T2 void
flash_tr8(__m256 *r)
{
	__m256 t[8], u[8];
	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
	/* u[4g + m]: in each 128-bit lane k, rows 4g..4g+3 of column 4k + m. */
	for (int g = 0; g < 2; g++) {
		u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
		u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
		u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
		u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
	}
	for (int m = 0; m < 4; m++) {
		r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
		r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
	}
}

/* flash_convert for the f16 cache, eight by eight. */
static AI T2 void
flash_convert2(const fp16_t *k, const fp16_t *v, size_t stride, int c0, int cnt, int nb, int nv, float *kt,
    float *vb)
{
	const int hd = 16 * nv;
	for (int b = 0; b < nb; b++)
		for (int c = 0; c < 2 * nv; c++)
			for (int half = 0; half < 2; half++) {
				__m256 r[8];
				for (int l = 0; l < 8; l++) {
					int p = b * FB + 8 * half + l, in = p < cnt;
					const fp16_t *kr = k + (size_t)(c0 + p) * stride + 8 * c, *vr = v + (size_t)(c0 + p) * stride + 8 * c;
					r[l] = in ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)kr)) : _mm256_setzero_ps();
					_mm256_store_ps(vb + (size_t)p * hd + 8 * c,
					    in ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vr)) : _mm256_setzero_ps());
				}
				flash_tr8(r);
				for (int i = 0; i < 8; i++)
					_mm256_store_ps(kt + ((size_t)b * hd + 8 * c + i) * FB + 8 * half, r[i]);
			}
}

/* Scores of G queries over one block: s[h*FCB*FB + l], scaled. */
static AI T2 void
flash_scores2(int G, int hd, const float *kt, struct flash_q *st, float scale, float *s)
{
	__m256 a[FG][2];
	for (int h = 0; h < G; h++) {
		__m256 qd = _mm256_set1_ps(st[h].q16[0]);
		a[h][0] = _mm256_mul_ps(_mm256_load_ps(kt), qd);
		a[h][1] = _mm256_mul_ps(_mm256_load_ps(kt + 8), qd);
	}
	for (int d = 1; d < hd; d++) {
		__m256 lo = _mm256_load_ps(kt + (size_t)d * FB), hi = _mm256_load_ps(kt + (size_t)d * FB + 8);
		FLASH_REG(lo);
		FLASH_REG(hi);
		for (int h = 0; h < G; h++) {
			__m256 qd = _mm256_set1_ps(st[h].q16[d]);
			a[h][0] = _mm256_fmadd_ps(lo, qd, a[h][0]);
			a[h][1] = _mm256_fmadd_ps(hi, qd, a[h][1]);
		}
	}
	for (int h = 0; h < G; h++) {
		_mm256_store_ps(s + h * FCB * FB, _mm256_mul_ps(a[h][0], _mm256_set1_ps(scale)));
		_mm256_store_ps(s + h * FCB * FB + 8, _mm256_mul_ps(a[h][1], _mm256_set1_ps(scale)));
	}
}

/* flash_softmax on the ymm pair. */
static AI T2 float
flash_softmax2(struct flash_q *st, float *sp, int valid)
{
	if (valid <= 0) {
		_mm256_store_ps(sp, _mm256_setzero_ps());
		_mm256_store_ps(sp + 8, _mm256_setzero_ps());
		return 1.0f;
	}
	__m256 s[2];
	for (int h = 0; h < 2; h++) {
		s[h] = _mm256_load_ps(sp + 8 * h);
		if (valid < FB) {
			const __m256i idx = _mm256_setr_epi32(8 * h, 8 * h + 1, 8 * h + 2, 8 * h + 3, 8 * h + 4, 8 * h + 5,
			    8 * h + 6, 8 * h + 7);
			s[h] = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), s[h],
			    _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx)));
		}
	}
	__m256 mx = _mm256_max_ps(s[0], s[1]);
	__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	const float mb = _mm_cvtss_f32(m4);
	float alpha = 1.0f;
	__m256 L[2] = { _mm256_load_ps(st->L), _mm256_load_ps(st->L + 8) };
	if (mb > st->M) {
		alpha = expf(st->M - mb);
		st->M = mb;
		L[0] = _mm256_mul_ps(L[0], _mm256_set1_ps(alpha));
		L[1] = _mm256_mul_ps(L[1], _mm256_set1_ps(alpha));
	}
	for (int h = 0; h < 2; h++) {
		__m256 p = flash_vexp8(_mm256_sub_ps(s[h], _mm256_set1_ps(st->M)));
		_mm256_store_ps(st->L + 8 * h, _mm256_add_ps(L[h], p));
		_mm256_store_ps(sp + 8 * h, p);
	}
	return alpha;
}

/* flash_pv, two queries by four ymm of the output at a time. */
static AI T2 void
flash_pv2(int G, int nb, int nv, const float *vb, const float *p, const float *alpha, struct flash_q *st)
{
	const int hd = 16 * nv, n8 = 2 * nv;
	for (int h0 = 0; h0 < G; h0 += 2) {
		const int g = G - h0 < 2 ? G - h0 : 2;
		for (int c0 = 0; c0 < n8; c0 += 4) {
			const int cw = n8 - c0 < 4 ? n8 - c0 : 4;
			__m256 acc[2][4];
			for (int h = 0; h < g; h++)
				for (int c = 0; c < cw; c++)
					acc[h][c] = _mm256_load_ps(st[h0 + h].o + 8 * (c0 + c));
			for (int b = 0; b < nb; b++) {
				for (int h = 0; h < g; h++) {
					float al = alpha[(h0 + h) * FCB + b];
					if (al != 1.0f)
						for (int c = 0; c < cw; c++)
							acc[h][c] = _mm256_mul_ps(acc[h][c], _mm256_set1_ps(al));
				}
				for (int l = 0; l < FB; l++) {
					const float *vr = vb + (size_t)(b * FB + l) * hd + 8 * c0;
					for (int c = 0; c < cw; c++) {
						__m256 x = _mm256_load_ps(vr + 8 * c);
						FLASH_REG(x);
						for (int h = 0; h < g; h++)
							acc[h][c] = _mm256_fmadd_ps(x, _mm256_set1_ps(p[(h0 + h) * FCB * FB + b * FB + l]),
							    acc[h][c]);
					}
				}
			}
			for (int h = 0; h < g; h++)
				for (int c = 0; c < cw; c++)
					_mm256_store_ps(st[h0 + h].o + 8 * (c0 + c), acc[h][c]);
		}
	}
}

static AI T2 void
flash_group2(int G, int nv, int c0, int nb, const float *kt, const float *vb, struct flash_q *st, const int *n,
    float scale)
{
	const int hd = 16 * nv;
	float s[FG * FCB * FB] __attribute__((aligned(64)));
	float alpha[FG * FCB];
	for (int b = 0; b < nb; b++)
		flash_scores2(G, hd, kt + (size_t)b * hd * FB, st, scale, s + b * FB);
	for (int b = 0; b < nb; b++)
		for (int h = 0; h < G; h++)
			alpha[h * FCB + b] = flash_softmax2(&st[h], s + h * FCB * FB + b * FB, n[h] - (c0 + b * FB));
	flash_pv2(G, nb, nv, vb, s, alpha, st);
}

static AI T2 void
flash_run2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int nv, float scale)
{
	const int hd = nv * 16, n8 = 2 * nv;
	const int cb = FBUF / (FB * hd);
	float kt[FBUF] __attribute__((aligned(64)));
	float vb[FBUF] __attribute__((aligned(64)));
	float qbuf[FQ * FHD] __attribute__((aligned(64)));
	float obuf[FQ * FHD] __attribute__((aligned(64)));
	struct flash_q st[FQ];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		st[h].q16 = qbuf + (size_t)h * hd;
		st[h].o = obuf + (size_t)h * hd;
		for (int c = 0; c < n8; c++) {
			_mm256_store_ps(st[h].q16 + 8 * c, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q[h] + 8 * c),
			    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
			_mm256_store_ps(st[h].o + 8 * c, _mm256_setzero_ps());
		}
		st[h].M = -INFINITY;
		_mm256_store_ps(st[h].L, _mm256_setzero_ps());
		_mm256_store_ps(st[h].L + 8, _mm256_setzero_ps());
		nmax = n[h] > nmax ? n[h] : nmax;
	}
	for (int c0 = 0; c0 < nmax; c0 += cb * FB) {
		int cnt = nmax - c0 < cb * FB ? nmax - c0 : cb * FB;
		int nb = (cnt + FB - 1) / FB;
		flash_convert2(k, v, stride, c0, cnt, nb, nv, kt, vb);
		flash_prefetch(0, k, v, stride, c0 + cb * FB, nmax, cb * FB, hd);
		for (int h0 = 0; h0 < nq;) {
			int G = nq - h0 >= 4 ? 4 : nq - h0 >= 2 ? 2 : 1, seen = 0;
			for (int h = h0; h < h0 + G; h++)
				seen |= n[h] > c0;
			if (seen) {
				switch (G) {
				case 4: flash_group2(4, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				case 2: flash_group2(2, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				default: flash_group2(1, nv, c0, nb, kt, vb, st + h0, n + h0, scale); break;
				}
			}
			h0 += G;
		}
	}
	for (int h = 0; h < nq; h++) {
		__m256 inv = _mm256_set1_ps(1.0f / flash_hsum2(_mm256_load_ps(st[h].L), _mm256_load_ps(st[h].L + 8)));
		for (int c = 0; c < n8; c++)
			_mm256_storeu_ps(o[h] + 8 * c, _mm256_mul_ps(_mm256_load_ps(st[h].o + 8 * c), inv));
	}
}

/* flash_one on ymm pairs: each 8x8 piece of K transposed and used at
 * once; P.V four ymm of the output at a time, its accumulators in ob
 * between blocks (sixteen registers cannot hold a 128-wide output). */
static AI T2 void
flash_one2(float *out, const float *q, int n, const fp16_t *k, const fp16_t *v, size_t stride, const int nv,
    float scale)
{
	const int hd = 16 * nv, n8 = 2 * nv;
	float qb[ATTN_MAX_HD] __attribute__((aligned(64)));
	float ob[ATTN_MAX_HD] __attribute__((aligned(64)));
	float s[FB] __attribute__((aligned(64)));
	struct flash_q st = { .q16 = qb, .o = ob, .M = -INFINITY };
	for (int c = 0; c < n8; c++) {
		_mm256_store_ps(qb + 8 * c, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + 8 * c),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
		_mm256_store_ps(ob + 8 * c, _mm256_setzero_ps());
	}
	_mm256_store_ps(st.L, _mm256_setzero_ps());
	_mm256_store_ps(st.L + 8, _mm256_setzero_ps());
	flash_prefetch(0, k, v, stride, 0, n, 2 * FB, hd);
	for (int j0 = 0; j0 < n; j0 += FB) {
		const int cnt = n - j0 < FB ? n - j0 : FB;
		flash_prefetch(0, k, v, stride, j0 + 2 * FB, n, FB, hd);
		for (int half = 0; half < 2; half++) {
			__m256 a = _mm256_setzero_ps();
			for (int c = 0; c < n8; c++) {
				__m256 r[8];
				for (int l = 0; l < 8; l++) {
					const int p = 8 * half + l;
					r[l] = p < cnt ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + (size_t)(j0 + p) * stride + 8 * c)))
						       : _mm256_setzero_ps();
				}
				flash_tr8(r);
				for (int i = 0; i < 8; i++)
					a = c == 0 && i == 0 ? _mm256_mul_ps(r[0], _mm256_set1_ps(qb[0]))
							     : _mm256_fmadd_ps(r[i], _mm256_set1_ps(qb[8 * c + i]), a);
			}
			_mm256_store_ps(s + 8 * half, _mm256_mul_ps(a, _mm256_set1_ps(scale)));
		}
		const float al = flash_softmax2(&st, s, cnt);
		for (int c0 = 0; c0 < n8; c0 += 4) {
			const int cw = n8 - c0 < 4 ? n8 - c0 : 4;
			__m256 acc[4];
			for (int c = 0; c < cw; c++) {
				acc[c] = _mm256_load_ps(ob + 8 * (c0 + c));
				if (al != 1.0f)
					acc[c] = _mm256_mul_ps(acc[c], _mm256_set1_ps(al));
			}
			for (int l = 0; l < cnt; l++) {
				const fp16_t *vr = v + (size_t)(j0 + l) * stride + 8 * c0;
				for (int c = 0; c < cw; c++)
					acc[c] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + 8 * c))),
					    _mm256_set1_ps(s[l]), acc[c]);
			}
			for (int c = 0; c < cw; c++)
				_mm256_store_ps(ob + 8 * (c0 + c), acc[c]);
		}
	}
	const __m256 inv = _mm256_set1_ps(1.0f / flash_hsum2(_mm256_load_ps(st.L), _mm256_load_ps(st.L + 8)));
	for (int c = 0; c < n8; c++)
		_mm256_storeu_ps(out + 8 * c, _mm256_mul_ps(_mm256_load_ps(ob + 8 * c), inv));
}

T2 void
attn_flash_avx2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale)
{
	if (nq == 1) {
		switch (hd) {
		case 64: flash_one2(o[0], q[0], n[0], k, v, stride, 4, scale); break;
		case 128: flash_one2(o[0], q[0], n[0], k, v, stride, 8, scale); break;
		default: flash_one2(o[0], q[0], n[0], k, v, stride, hd / 16, scale); break;
		}
		return;
	}
	const int qmax = hd <= FHD ? FQ : FQ * FHD / hd;
	for (int h0 = 0; h0 < nq; h0 += qmax) {
		int m = nq - h0 < qmax ? nq - h0 : qmax;
		switch (hd) {
		case 64: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, 4, scale); break;
		case 128: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, 8, scale); break;
		default: flash_run2(m, o + h0, q + h0, n + h0, k, v, stride, hd / 16, scale); break;
		}
	}
}
#endif
