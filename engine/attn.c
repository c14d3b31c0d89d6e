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

static int
has_avx512(void)
{
	static int v = -1;
	if (v < 0) {
		__builtin_cpu_init();
		v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
	}
	return v;
}
#endif

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
