/*
 * vecops.h: the element-wise steps of the forward pass (SwiGLU, residual
 * adds, float32 to float16 rows, RoPE from a per-batch angle table), each
 * with a scalar reference and AVX2 / AVX-512 kernels that give the
 * reference's bits exactly, chosen by cpu_isa().
 *
 * They are small next to the matrix products, but they ran on one thread
 * between them: on two cores a serial tenth of the work costs a fifth of
 * the time.  The callers split rows across threads; these functions are
 * single-threaded and reentrant.
 */
#ifndef ENGINE_VECOPS_H
#define ENGINE_VECOPS_H

#include <stddef.h>

#include "engine/quant.h"

/* exp(x) as ggml's vector SiLU computes it (see vecops.c). */
float vec_expf_ggml(float x);

/* g[i] = silu(g[i]) * u[i], silu(g) = g / (1 + exp(-g)). */
void vec_swiglu(float *g, const float *u, size_t n);
void vec_swiglu_ref(float *g, const float *u, size_t n);

/*
 * The mean of the squares of x[i] as ggml's rms_norm forms it: squares in
 * float, summed in double in order, the mean rounded to float.
 * vec_mean_sq gives those bits exactly, by a faster sum when that proves
 * the same result (see vecops.c); _ref is the sequential sum.  In parts:
 * vec_sumsq sums the squares of a part in any order, and
 * vec_mean_sq_sum, given the parts' sums added, returns the sequential
 * mean (proved from them by vec_mean_sq_from, which returns 0 when it
 * cannot; then from the sequential sum over x).
 */
float vec_mean_sq(const float *x, size_t n);
float vec_mean_sq_ref(const float *x, size_t n);
double vec_sumsq(const float *x, size_t n);
float vec_mean_sq_sum(double ss, const float *x, size_t n);
int vec_mean_sq_from(double ss, size_t n, float *mean);

/* x[i] += y[i] */
void vec_add(float *x, const float *y, size_t n);

/* d[i] = fp32_to_fp16(s[i]) (round to nearest even, as F16C). */
void vec_to_f16(fp16_t *d, const float *s, size_t n);
void vec_to_f16_ref(fp16_t *d, const float *s, size_t n);

/*
 * RoPE angle table for one position: cs[2i], cs[2i+1] = cos, sin of
 * theta_i, theta_0 = pos and theta_i+1 = theta_i * theta_scale in float
 * (as llama.cpp forms them), divided by ff[i] when ff (Llama 3.1's
 * rope_freqs) is given.  rope_dim/2 pairs.
 */
void vec_rope_table(float *cs, int rope_dim, int pos, float theta_scale, const float *ff);
/* Rotate the first rope_dim values of each of n_heads heads of v (head_dim
 * apart) by the table's angles, pairs (2i, 2i+1) as LLaMA does. */
void vec_rope(float *v, int n_heads, int head_dim, int rope_dim, const float *cs);

#endif
