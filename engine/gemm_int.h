/*
 * gemm_int.h: between gemm.c and gemm_avx2.c only.  The activation layout
 * gemm_act_prepare writes for the tiled levels (avx512-vnni and avx2 read
 * the same buffer: columns in groups of GEMM_NC, for group q, block k,
 * column c the entry (q * nb + k) * GEMM_NC + c), and the AVX2 kernels.
 */
#ifndef ENGINE_GEMM_INT_H
#define ENGINE_GEMM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/quant.h"

#define GEMM_NC 8  /* activation columns per group (a micro-kernel call) */

/* One (block, column) of Q8_0 activations: the quants as dwords, the fp16
 * scale widened, and -c * sum(qs) for the type's offset c (avx512-vnni's
 * unsigned weights: c = 8 for Q4_0, 128 for Q8_0). */
struct gemm_act32 {
	int32_t q[8];
	float d;
	int32_t corr;
};
_Static_assert(sizeof(struct gemm_act32) == 40, "gemm_act32");

/* One (super-block, column) of Q8_K activations.  x: for Q6_K the sixteen
 * -32 * bsums[j]; for Q4_K x[t] = S(2t) | S(2t+1) << 16 (int16 halves) with
 * S(j) the sum over sub-block j of 32 values.  bsums: the reference's
 * (gemm_act_row gives them back; the avx2 Q6_K kernel reads them in
 * pairs). */
struct gemm_actk {
	int32_t q[QK_K / 4];
	float d;
	int32_t x[16];
	int16_t bsums[16];
};
_Static_assert(sizeof(struct gemm_actk) == 356, "gemm_actk");

/* gemm.c: B activation rows of n values (x, row stride n) into the layout
 * above for Q4_0 or Q8_0 weights; gemm_act_prepare at the tiled levels.
 * Runs on the OpenMP team when B >= 16. */
void gemm_prepare32(int type, int n, const float *x, int B, struct gemm_act32 *a);
/* One row of n activations, its n / 32 blocks one after another (the
 * packed decode kernel's layout: no columns to interleave). */
void gemm_prepare32_row(int type, int n, const float *x, struct gemm_act32 *a);
/* The same for Q4_K or Q6_K weights (struct gemm_actk, 256 values each). */
void gemm_preparek(int type, int n, const float *x, int B, struct gemm_actk *a);
void gemm_preparek_row(int type, int n, const float *x, struct gemm_actk *a);

/* gemm_avx2.c: gemm's contract for Q4_0/Q8_0 and for Q4_K/Q6_K, on the
 * layout above (callers check the CPU runs AVX2 + FMA + F16C). */
void gemm_avx2_32(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_act32 *a, int B, float *out, size_t ldo);
void gemm_avx2_k(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_actk *a, int B, float *out, size_t ldo);

#endif
