/*
 * attn.h: the three float16 vector operations of attention over a float16
 * KV cache, computed in exactly the order of ggml's AVX-512 code (the
 * engine the golden logits come from): a dot product of f16 vectors, y += x*s
 * and y *= s on an f16 accumulator.  A scalar version reproduces the same
 * bits with fmaf and the same reduction tree; an AVX-512 version is chosen
 * at run time where the CPU has it.
 */
#ifndef ENGINE_ATTN_H
#define ENGINE_ATTN_H

#include <stdint.h>

#include "engine/quant.h"

/* dot(x, y) of n f16 values, summed as ggml_vec_dot_f16. */
float attn_dot_f16(const fp16_t *x, const fp16_t *y, int n);
/* y = f16(y + x * s) for n f16 values (fused where ggml fuses). */
void attn_mad_f16(fp16_t *y, const fp16_t *x, float s, int n);
/* y = f16(y * s). */
void attn_scale_f16(fp16_t *y, float s, int n);
#define ATTN_MAX_HD 256
#define ATTN_MULTI 4
/* Queries a caller should give one call for the tiled kernel to share its
 * conversion of each K/V block among (at most ATTN_MULTI * 64).  1.1B
 * shape, 2,048 positions, one core, ns a query and position: 1.80 at 32,
 * 1.61 at 64 (cache warm); 1.91 at 64, 1.72 at 128 (the cache of 22 layers
 * in turn, as a forward pass reads it). */
#define ATTN_SHARE 128
/* Up to this many positions a query is computed in llama.cpp's exact order;
 * beyond, tiled (attn_flash.c).  64 covers every position of the golden
 * fixtures (the same 1227/5100 prompt positions within 1e-5 of llama.cpp as
 * at 256) and the start of a chat; the exact order is a sequential chain a
 * position at a time with a scalar expf, about five times the tiled
 * kernel's cost a product, and at 256 it took a fifth of a 512-token
 * prompt's time (pp512 1.1B Q4_0, -t 2: 318 -> 343 t/s at 64). */
#define ATTN_EXACT_MAX 64

/*
 * nq attention queries over the same K/V rows (k, v: the KV head's slice of
 * position 0, positions `stride` values apart); query i sees positions
 * 0..n[i]-1 and o[i] gets hd floats.  Up to ATTN_EXACT_MAX positions (or
 * always, when `exact`), computed as llama.cpp's CPU flash attention does
 * over an f16 cache; longer queries (hd a multiple of 16) by
 * attn_flash_f16.  attn_head_f16_ref is the scalar version of one
 * exact-order query, bit-identical by construction (tests hold them to it).
 */
void attn_multi_f16(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k,
    const fp16_t *v, size_t stride, int hd, float scale, int exact);
void attn_head_f16_ref(float *o, const float *q, const fp16_t *k, const fp16_t *v, size_t stride, int n, int hd,
    float scale);

/*
 * attn_flash.c: the same queries, tiled over blocks of 16 positions with an
 * online softmax, as two small matrix products (see that file for the
 * exact arithmetic).  hd must be a multiple of 16, at most ATTN_MAX_HD.
 * A query's result depends on its own q, n and the cache only, not on the
 * other queries of the call; the vector kernels give attn_flash_f16_ref's
 * bits.  The result agrees with the exact order to f16 rounding (the
 * accumulator here is float).
 */
void attn_flash_f16(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k,
    const fp16_t *v, size_t stride, int hd, float scale);
void attn_flash_f16_ref(float *o, const float *q, const fp16_t *k, const fp16_t *v, size_t stride, int n, int hd,
    float scale);

/*
 * The same tiled attention over a q8_0 cache (k, v: the KV head's first
 * block of position 0; positions `stride` blocks apart): each row
 * dequantized, then attn_flash_f16's arithmetic.  hd a multiple of 32, at
 * most ATTN_MAX_HD.  Used at every length: a quantized cache has no
 * llama.cpp order to follow bit for bit.
 */
void attn_flash_q8(int nq, float *const *o, const float *const *q, const int *n, const block_q8_0 *k,
    const block_q8_0 *v, size_t stride, int hd, float scale);
void attn_flash_q8_ref(float *o, const float *q, const block_q8_0 *k, const block_q8_0 *v, size_t stride, int n,
    int hd, float scale);

/* Convert n floats to f16 (round to nearest even). */
void attn_to_f16(fp16_t *y, const float *x, int n);

#endif
