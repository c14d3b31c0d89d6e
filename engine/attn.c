/*
 * attn.c: float16 attention primitives, bit-compatible with ggml.
 *
 * ggml_vec_dot_f16 on AVX-512 walks the vectors in steps of 64 values with
 * four 16-lane accumulators (acc[j] += x*y, fused), then reduces them as
 * (acc0 + acc2) + (acc1 + acc3) and sums the 16 lanes by halving
 * (lane i + lane i+8, then i+4, then i+2, then the last pair); values past
 * the last full step are summed one by one in double.  ggml_vec_mad_f16 and
 * ggml_vec_scale_f16 work per element: the fused part converts, computes in
 * float and rounds back to f16; the tail is unfused.  The scalar functions
 * below follow that order exactly, so every build gives the same bits; the
 * AVX-512 ones are the same arithmetic, faster.
 */
#include "engine/attn.h"
#include "engine/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define ATTN_X86 1
#endif

#define STEP 64    /* values per step */
#define LANES 16

static float
lanes_reduce(const float *a)      /* 16 lanes, as _mm512_reduce_add_ps */
{
	float t3[8], t6[4];
	for (int i = 0; i < 8; i++)
		t3[i] = a[i + 8] + a[i];
	for (int i = 0; i < 4; i++)
		t6[i] = t3[i + 4] + t3[i];
	float t8_0 = t6[0] + t6[2], t8_1 = t6[1] + t6[3];
	return t8_0 + t8_1;
}

static float
dot_scalar(const fp16_t *x, const fp16_t *y, int n)
{
	int np = n & ~(STEP - 1);
	double sumf = 0;
	if (np > 0) {
		float acc[4][LANES] = { { 0 } };
		for (int i = 0; i < np; i += STEP)
			for (int j = 0; j < 4; j++)
				for (int l = 0; l < LANES; l++)
					acc[j][l] = fmaf(fp16_to_fp32(x[i + j * LANES + l]), fp16_to_fp32(y[i + j * LANES + l]),
					    acc[j][l]);
		float r[LANES];
		for (int l = 0; l < LANES; l++) {
			float a0 = acc[0][l] + acc[2][l], a1 = acc[1][l] + acc[3][l];
			r[l] = a0 + a1;
		}
		sumf = lanes_reduce(r);
	}
	for (int i = np; i < n; i++)
		sumf += (double)(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
	return (float)sumf;
}

static void
mad_scalar(fp16_t *y, const fp16_t *x, float s, int n)
{
	int np = n & ~(STEP - 1);
	for (int i = 0; i < np; i++)
		y[i] = fp32_to_fp16(fmaf(fp16_to_fp32(x[i]), s, fp16_to_fp32(y[i])));
	for (int i = np; i < n; i++)
		y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) + fp16_to_fp32(x[i]) * s);
}

static void
scale_scalar(fp16_t *y, float s, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) * s);
}

#ifdef ATTN_X86
__attribute__((target("avx512f,f16c,fma"))) static float
dot_avx512(const fp16_t *x, const fp16_t *y, int n)
{
	int np = n & ~(STEP - 1);
	double sumf = 0;
	if (np > 0) {
		__m512 a[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
		for (int i = 0; i < np; i += STEP)
			for (int j = 0; j < 4; j++) {
				__m512 vx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i + j * LANES)));
				__m512 vy = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i + j * LANES)));
				a[j] = _mm512_fmadd_ps(vx, vy, a[j]);
			}
		a[0] = _mm512_add_ps(a[0], a[2]);
		a[1] = _mm512_add_ps(a[1], a[3]);
		a[0] = _mm512_add_ps(a[0], a[1]);
		float r[LANES];
		_mm512_storeu_ps(r, a[0]);
		sumf = lanes_reduce(r);
	}
	for (int i = np; i < n; i++)
		sumf += (double)(fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]));
	return (float)sumf;
}

__attribute__((target("avx512f,f16c,fma"))) static void
mad_avx512(fp16_t *y, const fp16_t *x, float s, int n)
{
	int np = n & ~(STEP - 1);
	__m512 vs = _mm512_set1_ps(s);
	for (int i = 0; i < np; i += LANES) {
		__m512 vx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i)));
		__m512 vy = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i)));
		vy = _mm512_fmadd_ps(vx, vs, vy);
		_mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(vy, _MM_FROUND_TO_NEAREST_INT));
	}
	for (int i = np; i < n; i++)
		y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) + fp16_to_fp32(x[i]) * s);
}

__attribute__((target("avx512f,f16c"))) static void
scale_avx512(fp16_t *y, float s, int n)
{
	int np = n & ~(LANES - 1);
	__m512 vs = _mm512_set1_ps(s);
	for (int i = 0; i < np; i += LANES) {
		__m512 vy = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(y + i)));
		_mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_mul_ps(vy, vs), _MM_FROUND_TO_NEAREST_INT));
	}
	for (int i = np; i < n; i++)
		y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) * s);
}

/* The AVX-512 family (cpu.c) includes DQ and F16C/FMA; probed once, before
 * any thread runs, so the kernels only read it. */
static int
has_avx512(void)
{
	return cpu_isa() == CPU_AVX512;
}
#endif

/*
 * One head over n cached positions, in the order of llama.cpp's CPU flash
 * attention (see forward.c): Q in f16, scores one position at a time with a
 * running maximum M and sum S, the V accumulator kept in f16.  The scalar
 * version is built from the primitives above; the AVX-512 one keeps Q and
 * the accumulator in registers and does exactly the same roundings.
 */
static void
head_scalar(float *o, const float *q, const fp16_t *k, const fp16_t *v, size_t stride, int n, int hd, float scale)
{
	fp16_t q16[ATTN_MAX_HD], acc[ATTN_MAX_HD];
	attn_to_f16(q16, q, hd);
	memset(acc, 0, (size_t)hd * sizeof acc[0]);
	float M = -INFINITY, S = 0;
	for (int j = 0; j < n; j++) {
		const fp16_t *kj = k + (size_t)j * stride, *vj = v + (size_t)j * stride;
		float sc = dot_scalar(kj, q16, hd) * scale;
		float ms = 1.0f, vs = 1.0f;
		if (sc > M) {
			float old = M;
			M = sc;
			ms = expf(old - M);
			scale_scalar(acc, ms, hd);
		} else {
			vs = expf(sc - M);
		}
		mad_scalar(acc, vj, vs, hd);
		S = S * ms + vs;
	}
	float inv = 1.0f / S;
	for (int i = 0; i < hd; i++)
		o[i] = fp16_to_fp32(acc[i]) * inv;
}

#ifdef ATTN_X86
/* lanes_reduce in registers: the same tree (hi 8 + lo 8, hi 4 + lo 4, then
 * lanes 0+2 and 1+3, then the pair), spelled out so that no compiler's
 * choice of order for _mm512_reduce_add_ps can change the bits. */
__attribute__((target("avx512f"))) static inline float
reduce16(__m512 a)
{
	__m256 t3 = _mm256_add_ps(_mm512_castps512_ps256(_mm512_shuffle_f32x4(a, a, 0xee)), _mm512_castps512_ps256(a));
	__m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
	__m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(t8, _mm_shuffle_ps(t8, t8, _MM_SHUFFLE(1, 1, 1, 1))));
}

/* f16 rounding of 16 floats, kept as floats. */
#define R16(x) _mm512_cvtph_ps(_mm512_cvtps_ph((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))

/*
 * Up to ATTN_MULTI queries over the same K/V rows at once (the heads that
 * share a KV head, or consecutive tokens of one head): query i sees
 * positions 0..n[i]-1.  Each query's arithmetic is exactly head_scalar's;
 * running several side by side only hides the latency of each one's
 * dot -> max -> exp -> accumulate chain behind the others'.
 */
__attribute__((target("avx512f,f16c,fma"))) static void
multi_avx512(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale)
{
	const int nv = hd / LANES;                   /* hd is a multiple of 64 here */
	__m512 qv[ATTN_MULTI][ATTN_MAX_HD / LANES], acc[ATTN_MULTI][ATTN_MAX_HD / LANES];
	float M[ATTN_MULTI], S[ATTN_MULTI];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		for (int i = 0; i < nv; i++) {
			qv[h][i] = R16(_mm512_loadu_ps(q[h] + i * LANES));
			acc[h][i] = _mm512_setzero_ps();
		}
		M[h] = -INFINITY;
		S[h] = 0;
		if (n[h] > nmax)
			nmax = n[h];
	}
	for (int j = 0; j < nmax; j++) {
		const fp16_t *kj = k + (size_t)j * stride, *vj = v + (size_t)j * stride;
		__m512 kx[ATTN_MAX_HD / LANES];
		for (int i = 0; i < nv; i++)
			kx[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(kj + i * LANES)));
		for (int h = 0; h < nq; h++) {
			if (j >= n[h])
				continue;
			/* ggml_vec_dot_f16: four accumulators over steps of 64. */
			__m512 a[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
			for (int i = 0; i < nv; i++)
				a[i & 3] = _mm512_fmadd_ps(kx[i], qv[h][i], a[i & 3]);
			a[0] = _mm512_add_ps(a[0], a[2]);
			a[1] = _mm512_add_ps(a[1], a[3]);
			float sc = reduce16(_mm512_add_ps(a[0], a[1])) * scale;
			float ms = 1.0f, vs = 1.0f;
			if (sc > M[h]) {
				float old = M[h];
				M[h] = sc;
				ms = expf(old - sc);
				__m512 m = _mm512_set1_ps(ms);
				for (int i = 0; i < nv; i++)
					acc[h][i] = R16(_mm512_mul_ps(acc[h][i], m));
			} else {
				vs = expf(sc - M[h]);
			}
			__m512 w = _mm512_set1_ps(vs);
			for (int i = 0; i < nv; i++) {
				__m512 vx = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vj + i * LANES)));
				acc[h][i] = R16(_mm512_fmadd_ps(vx, w, acc[h][i]));
			}
			S[h] = S[h] * ms + vs;
		}
	}
	for (int h = 0; h < nq; h++) {
		__m512 inv = _mm512_set1_ps(1.0f / S[h]);
		for (int i = 0; i < nv; i++)
			_mm512_storeu_ps(o[h] + i * LANES, _mm512_mul_ps(acc[h][i], inv));
	}
}

/*
 * multi_avx512's arithmetic on AVX2: each 16-lane vector a pair of ymm
 * (lanes 0-7, 8-15), so every lane does the same operations and the
 * reduction tree starts with the pair (lane l + lane l+8).
 */
#define T2 __attribute__((target("avx2,f16c,fma")))
#define R16Y(x) _mm256_cvtph_ps(_mm256_cvtps_ph((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))

static inline T2 float
reduce16_avx2(__m256 lo, __m256 hi)
{
	__m256 t3 = _mm256_add_ps(hi, lo);
	__m128 t6 = _mm_add_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
	__m128 t8 = _mm_add_ps(t6, _mm_shuffle_ps(t6, t6, _MM_SHUFFLE(1, 0, 3, 2)));
	return _mm_cvtss_f32(_mm_add_ss(t8, _mm_shuffle_ps(t8, t8, _MM_SHUFFLE(1, 1, 1, 1))));
}

static inline T2 __m256
ld16(const fp16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static T2 void
multi_avx2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale)
{
	const int n8 = hd / 8;                       /* hd is a multiple of 64 here */
	__m256 qv[ATTN_MULTI][ATTN_MAX_HD / 8], acc[ATTN_MULTI][ATTN_MAX_HD / 8];
	float M[ATTN_MULTI], S[ATTN_MULTI];
	int nmax = 0;
	for (int h = 0; h < nq; h++) {
		for (int i = 0; i < n8; i++) {
			qv[h][i] = R16Y(_mm256_loadu_ps(q[h] + i * 8));
			acc[h][i] = _mm256_setzero_ps();
		}
		M[h] = -INFINITY;
		S[h] = 0;
		if (n[h] > nmax)
			nmax = n[h];
	}
	for (int j = 0; j < nmax; j++) {
		const fp16_t *kj = k + (size_t)j * stride, *vj = v + (size_t)j * stride;
		__m256 kx[ATTN_MAX_HD / 8];
		for (int i = 0; i < n8; i++)
			kx[i] = ld16(kj + i * 8);
		for (int h = 0; h < nq; h++) {
			if (j >= n[h])
				continue;
			/* four 16-lane accumulators: a[2m] lanes 0-7, a[2m+1] 8-15 */
			__m256 a[8];
			for (int m = 0; m < 8; m++)
				a[m] = _mm256_setzero_ps();
			for (int i = 0; i < n8; i += 2) {
				const int m = (i / 2) & 3;
				a[2 * m] = _mm256_fmadd_ps(kx[i], qv[h][i], a[2 * m]);
				a[2 * m + 1] = _mm256_fmadd_ps(kx[i + 1], qv[h][i + 1], a[2 * m + 1]);
			}
			for (int m = 0; m < 2; m++) {
				a[2 * 0 + m] = _mm256_add_ps(a[2 * 0 + m], a[2 * 2 + m]);
				a[2 * 1 + m] = _mm256_add_ps(a[2 * 1 + m], a[2 * 3 + m]);
				a[2 * 0 + m] = _mm256_add_ps(a[2 * 0 + m], a[2 * 1 + m]);
			}
			float sc = reduce16_avx2(a[0], a[1]) * scale;
			float ms = 1.0f, vs = 1.0f;
			if (sc > M[h]) {
				float old = M[h];
				M[h] = sc;
				ms = expf(old - sc);
				__m256 mm = _mm256_set1_ps(ms);
				for (int i = 0; i < n8; i++)
					acc[h][i] = R16Y(_mm256_mul_ps(acc[h][i], mm));
			} else {
				vs = expf(sc - M[h]);
			}
			__m256 w = _mm256_set1_ps(vs);
			for (int i = 0; i < n8; i++)
				acc[h][i] = R16Y(_mm256_fmadd_ps(ld16(vj + i * 8), w, acc[h][i]));
			S[h] = S[h] * ms + vs;
		}
	}
	for (int h = 0; h < nq; h++) {
		__m256 inv = _mm256_set1_ps(1.0f / S[h]);
		for (int i = 0; i < n8; i++)
			_mm256_storeu_ps(o[h] + i * 8, _mm256_mul_ps(acc[h][i], inv));
	}
}

#endif

void
attn_multi_f16(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k, const fp16_t *v,
    size_t stride, int hd, float scale, int exact)
{
	/* Long queries through the tiled kernel (attn_flash.c), all at once so
	 * that they share its K/V blocks; the rest in the exact order. */
	float *oo[ATTN_MULTI * 64];
	const float *qq[ATTN_MULTI * 64];
	int nn[ATTN_MULTI * 64], nl = 0;
	if (!exact && hd % 16 == 0 && hd <= ATTN_MAX_HD) {
		for (int i = 0; i < nq && nl < ATTN_MULTI * 64; i++)
			if (n[i] > ATTN_EXACT_MAX) {
				oo[nl] = o[i];
				qq[nl] = q[i];
				nn[nl++] = n[i];
			}
		if (nl > 0)
			attn_flash_f16(nl, oo, qq, nn, k, v, stride, hd, scale);
	}
	int skip_long = nl > 0;
#ifdef ATTN_X86
	if (hd % STEP == 0 && hd <= ATTN_MAX_HD && has_avx512()) {
		int h = 0;
		for (int i = 0; i < nq; i++) {
			if (skip_long && n[i] > ATTN_EXACT_MAX)
				continue;
			oo[h] = o[i];
			qq[h] = q[i];
			nn[h++] = n[i];
			if (h == ATTN_MULTI) {
				multi_avx512(h, oo, qq, nn, k, v, stride, hd, scale);
				h = 0;
			}
		}
		if (h > 0)
			multi_avx512(h, oo, qq, nn, k, v, stride, hd, scale);
		return;
	}
	if (hd % STEP == 0 && hd <= ATTN_MAX_HD && cpu_isa() == CPU_AVX2) {
		int h = 0;
		for (int i = 0; i < nq; i++) {
			if (skip_long && n[i] > ATTN_EXACT_MAX)
				continue;
			oo[h] = o[i];
			qq[h] = q[i];
			nn[h++] = n[i];
			if (h == ATTN_MULTI) {
				multi_avx2(h, oo, qq, nn, k, v, stride, hd, scale);
				h = 0;
			}
		}
		if (h > 0)
			multi_avx2(h, oo, qq, nn, k, v, stride, hd, scale);
		return;
	}
#endif
	for (int h = 0; h < nq; h++)
		if (!(skip_long && n[h] > ATTN_EXACT_MAX))
			head_scalar(o[h], q[h], k, v, stride, n[h], hd, scale);
}

void
attn_head_f16_ref(float *o, const float *q, const fp16_t *k, const fp16_t *v, size_t stride, int n, int hd,
    float scale)
{
	head_scalar(o, q, k, v, stride, n, hd, scale);
}

float
attn_dot_f16(const fp16_t *x, const fp16_t *y, int n)
{
#ifdef ATTN_X86
	if (has_avx512())
		return dot_avx512(x, y, n);
#endif
	return dot_scalar(x, y, n);
}

void
attn_mad_f16(fp16_t *y, const fp16_t *x, float s, int n)
{
#ifdef ATTN_X86
	if (has_avx512()) {
		mad_avx512(y, x, s, n);
		return;
	}
#endif
	mad_scalar(y, x, s, n);
}

void
attn_scale_f16(fp16_t *y, float s, int n)
{
#ifdef ATTN_X86
	if (has_avx512()) {
		scale_avx512(y, s, n);
		return;
	}
#endif
	scale_scalar(y, s, n);
}

void
attn_to_f16(fp16_t *y, const float *x, int n)
{
	for (int i = 0; i < n; i++)
		y[i] = fp32_to_fp16(x[i]);
}
