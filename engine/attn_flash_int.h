/*
 * attn_flash_int.h: what the tiled attention's two files share
 * (attn_flash.c: the reference and the AVX-512 family; attn_flash_avx2.c:
 * the AVX2 family, compiled without AVX-512 so that it runs, and is
 * measured, as an AVX2-only CPU runs it).  The arithmetic both follow is
 * described at the top of attn_flash.c.
 */
#ifndef ENGINE_ATTN_FLASH_INT_H
#define ENGINE_ATTN_FLASH_INT_H

#include <stddef.h>

#include "engine/quant.h"

#define FB 16        /* positions per block = lanes of a zmm */
#define FQ 128       /* queries sharing one conversion of K/V (head size <= FHD) */
#define FHD 128      /* head size the per-query buffers are sized for */
#define FG 4         /* queries one step of the two GEMMs serves */
#define FBUF 4096    /* floats of K (and of V) converted at once: 4 blocks at hd 64 */
#define FCB (FBUF / (FB * 16))   /* most blocks a chunk can hold (hd 16) */

/* Ask for the K and V rows of the next chunk (positions j0 .. j0+cnt-1,
 * below n) while this one is computed: a row is a strided slice of the
 * cache (the other KV heads lie between), and loading it when converting
 * was a fifth of attention's time in perf at 2,048 positions. */
static inline void
flash_prefetch(int q8, const void *k, const void *v, size_t stride, int j0, int n, int cnt, int hd)
{
	size_t bytes = q8 ? (size_t)hd / QK8_0 * sizeof(block_q8_0) : (size_t)hd * sizeof(fp16_t);
	size_t rs = q8 ? stride * sizeof(block_q8_0) : stride * sizeof(fp16_t);
	for (int j = j0; j < j0 + cnt && j < n; j++)
		for (size_t o = 0; o < bytes; o += 64) {
			__builtin_prefetch((const char *)k + (size_t)j * rs + o);
			__builtin_prefetch((const char *)v + (size_t)j * rs + o);
		}
}

/* One query's running state: q16 its query in f16 precision, o the
 * unnormalized output (hd floats each, 64-byte aligned). */
struct flash_q {
	float L[FB] __attribute__((aligned(64)));
	float *q16, *o;
	float M;
};

#define AI inline __attribute__((always_inline))
/* Keep a loaded vector in a register: left alone, gcc folds the load into
 * each of the FG multiply-adds that use it, FG loads instead of one, and
 * the loads, not the multiply-adds, bound the kernel. */
#define FLASH_REG(x) __asm__("" : "+v"(x))

#if defined(__x86_64__)
/* attn_flash_avx2.c: attn_flash_f16 on AVX2 + FMA + F16C (the caller
 * checks the CPU has them; hd a multiple of 16, at most ATTN_MAX_HD). */
void attn_flash_avx2(int nq, float *const *o, const float *const *q, const int *n, const fp16_t *k,
    const fp16_t *v, size_t stride, int hd, float scale);
#endif

#endif
