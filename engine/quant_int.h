/*
 * quant_int.h: between the files of the quant module only (quant.c,
 * quant_k.c): the helpers their scalar kernels share, and the K-quant
 * kernels quant.c's table points at.
 */
#ifndef ENGINE_QUANT_INT_H
#define ENGINE_QUANT_INT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/quant.h"

/*
 * The reference dot products are kept out of GCC's loop vectorizer.  GCC
 * 12.2 with -march=native on an AVX512-VNNI machine turns
 * sum ((u8 & 15) - 8) * s8 into a u8 x s8 dot product with the subtraction
 * done in wrapping 8 bits (Q4_0 gave 4080 for -16; Q5_0 likewise, at -O2
 * and -O3).  A reference must be right before it is fast, and the SIMD
 * kernels are the fast path anyway.
 */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define REF_DOT __attribute__((optimize("no-tree-vectorize")))
#else
#define REF_DOT
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define FP16(x) fp16_to_fp32(x)

/*
 * ggml's nearest_int: adding 1.5*2^23 leaves the integer, rounded to
 * nearest even, in the low mantissa bits.  ggml asserts |f| <= 2^22-1; the
 * clamp keeps our weight quantizers defined for any input.
 */
static inline int
nearest_int(float f)
{
	if (!(f > -4194303.f))
		f = -4194303.f;
	if (f > 4194303.f)
		f = 4194303.f;
	float v = f + 12582912.f;
	uint32_t i;
	memcpy(&i, &v, sizeof i);
	return (int)(i & 0x007fffff) - 0x00400000;
}

/* quant_k.c: Q8_K and the K-quants' dequantizers and reference dots. */
void quant_k_q8_K_from_float(const float *x, void *vy, int64_t n);
void quant_k_q8_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q8_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);
void quant_k_q2_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q2_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);
void quant_k_q3_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q3_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);
void quant_k_q4_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q4_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);
void quant_k_q5_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q5_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);
void quant_k_q6_K_to_float(const void *vx, float *y, int64_t n);
void quant_k_q6_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy);

#endif
