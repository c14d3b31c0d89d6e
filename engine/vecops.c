/*
 * vecops.c: element-wise kernels of the forward pass (see vecops.h).
 *
 * Every vector kernel computes exactly what its scalar reference computes,
 * operation for operation: the same fused multiply-adds where the
 * reference writes fmaf, plain multiplies and adds elsewhere (the tree is
 * built with -std=c11, so the compiler contracts nothing on its own),
 * IEEE division.  The one change of form is 2^n: the reference scales by
 * ldexpf, the kernels multiply by the float whose exponent field is n+127,
 * which is the same single rounding for every n the kernels see
 * (|n| <= 126: 2^n is a normal float, and j * 2^n is exact unless it is
 * subnormal, where both round the same product once).  A lane outside
 * that range sends its whole group of lanes to the reference.  The one
 * kernel whose order is free is vec_sumsq: its sums go only to
 * vec_mean_sq_from, which keeps the sequential sum's bits (see there).
 */
#include "engine/vecops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VEC_X86 1
#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#endif

/*
 * exp(x) as ggml computes it in its vector SiLU (an Arm optimized-routines
 * polynomial, max error about 1.5 ulp): n = round(x / ln 2) by the
 * 1.5 * 2^23 trick, the reduced argument in two fused steps, a degree-5
 * polynomial, scaled by 2^n.  llama.cpp feeds the result to an 8-bit
 * quantizer, so using libm's expf instead (correctly rounded) would differ
 * in the last bit often enough to flip activations; this keeps the bits.
 */
float
vec_expf_ggml(float x)
{
	const float r = 0x1.8p23f;
	float z = fmaf(x, 0x1.715476p+0f, r);
	float n = z - r;
	float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
	if (!(fabsf(n) <= 126.0f))
		return expf(x);   /* overflow or underflow: the same inf or 0; NaN stays NaN */
	float u = b * b;
	float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
	    u, fmaf(0x1.ffffecp-1f, b, 1.0f));
	return ldexpf(j, (int)n);
}

void
vec_swiglu_ref(float *g, const float *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		g[i] = g[i] / (1.0f + vec_expf_ggml(0.0f - g[i])) * u[i];
}

void
vec_to_f16_ref(fp16_t *d, const float *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = fp32_to_fp16(s[i]);
}

#ifdef VEC_X86
/* The polynomial of vec_expf_ggml on eight lanes; *ok gets the lanes
 * whose n is within +-126 (the others must be redone by the reference). */
static inline T_AVX2 __m256
exp8(__m256 x, int *ok)
{
	const __m256 r = _mm256_set1_ps(0x1.8p23f);
	const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
	const __m256 n = _mm256_sub_ps(z, r);
	const __m256 nn = _mm256_sub_ps(_mm256_setzero_ps(), n);
	const __m256 b = _mm256_fmadd_ps(nn, _mm256_set1_ps(0x1.7f7d1cp-20f),
	    _mm256_fmadd_ps(nn, _mm256_set1_ps(0x1.62e4p-1f), x));
	const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
	*ok = _mm256_movemask_ps(_mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_LE_OQ)) == 0xff;
	const __m256 u = _mm256_mul_ps(b, b);
	const __m256 j = _mm256_fmadd_ps(
	    _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
	        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
	    u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
	/* 2^n for |n| <= 126; lanes outside are redone, whatever this gives. */
	const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(j, _mm256_castsi256_ps(e));
}

static T_AVX2 void
swiglu_avx2(float *g, const float *u, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		const __m256 gv = _mm256_loadu_ps(g + i);
		int ok;
		const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), gv), &ok);
		if (!ok) {
			vec_swiglu_ref(g + i, u + i, 8);
			continue;
		}
		const __m256 s = _mm256_div_ps(gv, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
		_mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
	}
	vec_swiglu_ref(g + i, u + i, n - i);
}

static inline T_AVX512 __m512
exp16(__m512 x, int *ok)
{
	const __m512 r = _mm512_set1_ps(0x1.8p23f);
	const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
	const __m512 n = _mm512_sub_ps(z, r);
	const __m512 nn = _mm512_sub_ps(_mm512_setzero_ps(), n);
	const __m512 b = _mm512_fmadd_ps(nn, _mm512_set1_ps(0x1.7f7d1cp-20f),
	    _mm512_fmadd_ps(nn, _mm512_set1_ps(0x1.62e4p-1f), x));
	*ok = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(126.0f), _CMP_LE_OQ) == 0xffff;
	const __m512 u = _mm512_mul_ps(b, b);
	const __m512 j = _mm512_fmadd_ps(
	    _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
	        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
	    u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
	const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
	return _mm512_mul_ps(j, _mm512_castsi512_ps(e));
}

static T_AVX512 void
swiglu_avx512(float *g, const float *u, size_t n)
{
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		const __m512 gv = _mm512_loadu_ps(g + i);
		int ok;
		const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv), &ok);
		if (!ok) {
			vec_swiglu_ref(g + i, u + i, 16);
			continue;
		}
		const __m512 s = _mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
		_mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
	}
	vec_swiglu_ref(g + i, u + i, n - i);
}

/* vcvtps2ph with imm 0 rounds to nearest even, quiets NaN keeping the top
 * payload bits, and saturates to inf: fp32_to_fp16's definition. */
static T_AVX2 void
to_f16_avx2(fp16_t *d, const float *s, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
	vec_to_f16_ref(d + i, s + i, n - i);
}
#endif

void
vec_swiglu(float *g, const float *u, size_t n)
{
#ifdef VEC_X86
	switch (cpu_isa()) {
	case CPU_AVX512: swiglu_avx512(g, u, n); return;
	case CPU_AVX2: swiglu_avx2(g, u, n); return;
	default: break;
	}
#endif
	vec_swiglu_ref(g, u, n);
}

void
vec_to_f16(fp16_t *d, const float *s, size_t n)
{
#ifdef VEC_X86
	if (cpu_isa() >= CPU_AVX2) {
		to_f16_avx2(d, s, n);
		return;
	}
#endif
	vec_to_f16_ref(d, s, n);
}

/*
 * The mean of the squares as ggml's rms_norm forms it: each square in
 * float, summed in double one after another, the mean rounded to float.
 * That sum is a chain of n dependent adds (1.7 us at 2,048 values here, on
 * every norm of every token), and it cannot be split between threads.
 *
 * Any sum of the same n nonnegative terms, in any order or in parts, is
 * within (n-1) u of the exact sum (u = 2^-53), and so within 2 n u of the
 * sequential one.  Rounded to float, the mean keeps 2^29 times less than
 * that: the two agree unless the sequential mean lies that close to the
 * middle between two floats.  So vec_mean_sq_from takes the interval the
 * sequential sum must lie in (with a margin of four), and when the whole
 * of it rounds to one float, that float is the sequential result; when
 * not (about once in 2^16 norms), the caller does the sequential sum.
 * The bits are the reference's in every case.
 */
float
vec_mean_sq_ref(const float *x, size_t n)
{
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += (double)(x[i] * x[i]);
	return (float)(ss / (double)n);
}

#ifdef VEC_X86
static T_AVX512 double
sumsq_avx512(const float *x, size_t n)
{
	__m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
		const __m512 s0 = _mm512_mul_ps(v0, v0), s1 = _mm512_mul_ps(v1, v1);
		a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(s0)));
		a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(s0, 1)));
		a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(s1)));
		a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm512_extractf32x8_ps(s1, 1)));
	}
	double ss = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
	for (; i < n; i++)
		ss += (double)(x[i] * x[i]);
	return ss;
}
#endif

double
vec_sumsq(const float *x, size_t n)
{
#ifdef VEC_X86
	if (cpu_isa() == CPU_AVX512)
		return sumsq_avx512(x, n);
#endif
	/* Four chains instead of one: the order is free (see above). */
	double a[4] = { 0, 0, 0, 0 };
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			a[j] += (double)(x[i + j] * x[i + j]);
	for (; i < n; i++)
		a[0] += (double)(x[i] * x[i]);
	return (a[0] + a[1]) + (a[2] + a[3]);
}

int
vec_mean_sq_from(double ss, size_t n, float *mean)
{
	if (!(isfinite(ss) && ss > 0) || n == 0 || n > ((size_t)1 << 30))
		return 0;
	/* |sequential - ss| <= 2 (n + parts) u ss (1 + tiny); take 8 (n + 16)
	 * u ss, which also covers the roundings of ss -+ d and of the
	 * divisions (monotone, so the interval's ends bound it). */
	const double d = ss * (double)(n + 16) * 0x1p-50;
	const float lo = (float)((ss - d) / (double)n), hi = (float)((ss + d) / (double)n);
	if (lo != hi)
		return 0;
	*mean = lo;
	return 1;
}

float
vec_mean_sq_sum(double ss, const float *x, size_t n)
{
	float m;
	if (vec_mean_sq_from(ss, n, &m))
		return m;
	return vec_mean_sq_ref(x, n);
}

float
vec_mean_sq(const float *x, size_t n)
{
	return vec_mean_sq_sum(vec_sumsq(x, n), x, n);
}

/* Plain adds: the compiler vectorizes this loop, and a sum is a sum in any
 * width. */
void
vec_add(float *x, const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] += y[i];
}

void
vec_rope_table(float *cs, int rope_dim, int pos, float theta_scale, const float *ff)
{
	float theta = (float)pos;
	for (int i = 0; i < rope_dim / 2; i++, theta *= theta_scale) {
		float th = ff ? theta / ff[i] : theta;
		cs[2 * i] = cosf(th);
		cs[2 * i + 1] = sinf(th);
	}
}

void
vec_rope(float *v, int n_heads, int head_dim, int rope_dim, const float *cs)
{
	for (int h = 0; h < n_heads; h++) {
		float *hv = v + h * head_dim;
		for (int i = 0; i < rope_dim / 2; i++) {
			float c = cs[2 * i], s = cs[2 * i + 1];
			float a = hv[2 * i], b = hv[2 * i + 1];
			hv[2 * i] = a * c - b * s;
			hv[2 * i + 1] = a * s + b * c;
		}
	}
}
