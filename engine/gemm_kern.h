/*
 * gemm_kern.h: the AVX-512 VNNI pieces that gemm.c (weights in the file's
 * rows) and gemm_pack.c (weights packed into 16-row tiles) share: the
 * target attribute, the broadcasts, the Q4_0/Q8_0 micro-kernel and the
 * store of its results.  Included by those two files only, after
 * <immintrin.h>, on x86.  kern32 is the one definition of how a (row,
 * column) pair's blocks are scaled and summed, so both layouts give the
 * same bits.
 */
#ifndef ENGINE_GEMM_KERN_H
#define ENGINE_GEMM_KERN_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gemm_int.h"

#define T512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* Broadcast one int32 / float from memory (folded into the instruction). */
#define BC(v) _mm512_set1_epi32(v)
#define BCF(v) _mm512_set1_ps(v)

/* Add (or, on the first K chunk, store) the 16-row results of nc columns. */
static inline T512 void
flush(const __m512 *f, int nc, float *o, size_t ldo, __mmask16 m, int first)
{
	for (int c = 0; c < nc; c++) {
		float *p = o + (size_t)c * ldo;
		const __m512 v = first ? f[c] : _mm512_add_ps(f[c], _mm512_maskz_loadu_ps(m, p));
		_mm512_mask_storeu_ps(p, m, v);
	}
}

/* acc + the dot of eight weight vectors with eight broadcast activation
 * dwords, in that order (vpdpbusd: unsigned weights, signed activations). */
static inline __attribute__((always_inline)) T512 __m512i
dp8(__m512i acc, __m512i w0, __m512i w1, __m512i w2, __m512i w3, __m512i w4, __m512i w5, __m512i w6,
    __m512i w7, const int32_t *q)
{
	acc = _mm512_dpbusd_epi32(acc, w0, BC(q[0]));
	acc = _mm512_dpbusd_epi32(acc, w1, BC(q[1]));
	acc = _mm512_dpbusd_epi32(acc, w2, BC(q[2]));
	acc = _mm512_dpbusd_epi32(acc, w3, BC(q[3]));
	acc = _mm512_dpbusd_epi32(acc, w4, BC(q[4]));
	acc = _mm512_dpbusd_epi32(acc, w5, BC(q[5]));
	acc = _mm512_dpbusd_epi32(acc, w6, BC(q[6]));
	return _mm512_dpbusd_epi32(acc, w7, BC(q[7]));
}

/*
 * kc blocks of one 16-row tile against the first ncol (a constant: 8, or 4
 * for a short last group) columns of a group.  wq[8k + g] lane r = values
 * 4g..4g+3 of block k of row r as unsigned bytes; wd[k] lane r = that
 * block's scale; a: the group's entry of the chunk's first block.  f[c]
 * lane r = sum over the blocks of (int dot + corr) * d_a * d_w, added in
 * block order from zero.
 */
static inline __attribute__((always_inline)) T512 void
kern32(const __m512i *wq, const __m512 *wd, int kc, const struct gemm_act32 *a, __m512 *f,
    const int ncol)
{
	for (int c = 0; c < ncol; c++)
		f[c] = _mm512_setzero_ps();
	for (int k = 0; k < kc; k++, wq += 8, a += GEMM_NC) {
		const __m512i w0 = wq[0], w1 = wq[1], w2 = wq[2], w3 = wq[3];
		const __m512i w4 = wq[4], w5 = wq[5], w6 = wq[6], w7 = wq[7];
		const __m512 dw = wd[k];
#pragma GCC unroll 8
		for (int c = 0; c < ncol; c++) {
			const __m512i acc = dp8(BC(a[c].corr), w0, w1, w2, w3, w4, w5, w6, w7, a[c].q);
			f[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), BCF(a[c].d)), dw, f[c]);
		}
	}
}

#endif
