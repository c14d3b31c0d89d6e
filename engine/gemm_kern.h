/*
 * gemm_kern.h: the AVX-512 VNNI pieces that gemm.c (weights in the file's
 * rows) and gemm_pack.c (weights packed into 16-row tiles) share: the
 * target attribute, the broadcasts, the Q4_0/Q8_0 micro-kernel, the
 * K-quant (Q4_K, Q6_K) unpacking and micro-kernels, and the store of their
 * results.  Included by those two files only, on x86.  kern32, kernq4k and
 * kernq6k are the one definition of how a (row, column) pair's blocks are
 * scaled and summed, and q4k_scales and q6k_dsc of the scales, so every
 * layout and the decode kernels give the same bits.
 */
#ifndef ENGINE_GEMM_KERN_H
#define ENGINE_GEMM_KERN_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* ---- K-quants (Q4_K, Q6_K) ---------------------------------------- */

#define GK_TR 16   /* rows per tile */
#define GK_KCK 4   /* super-blocks per K chunk: 4 * ~5 KB unpacked */
/* A packed tile (gemm_pack.c) holds, per super-block, GK_V_* vectors:
 * vector v lane r = dword v of row r's block.  Q4_K's 144 bytes are 36
 * dwords; Q6_K's first 208 (ql, qh, scales) are 52, and its fp16 d is
 * kept apart, 16 to a super-block, after the tile's vectors. */
#define GK_V_Q4K 36
#define GK_V_Q6K 52

/* Lane r of t[g] (g < 4) = dword g of the 16 bytes at rp[r] + off: a 4x4
 * dword transpose in each 128-bit lane of [row i, i+4, i+8, i+12]. */
static inline T512 void
tr16x4(const uint8_t *const *rp, size_t off, __m512i *t)
{
	__m512i z[4];
	for (int i = 0; i < 4; i++) {
		__m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(rp[i] + off)));
		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(rp[i + 4] + off)), 1);
		v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(rp[i + 8] + off)), 2);
		z[i] = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(rp[i + 12] + off)), 3);
	}
	const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
	const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
	t[0] = _mm512_unpacklo_epi64(t0, t2);
	t[1] = _mm512_unpackhi_epi64(t0, t2);
	t[2] = _mm512_unpacklo_epi64(t1, t3);
	t[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The fp16 at rp[r] + off of each row, as floats. */
static inline T512 __m512
f16_rows(const uint8_t *const *rp, size_t off)
{
	uint16_t h[GK_TR];
	for (int r = 0; r < GK_TR; r++)
		memcpy(&h[r], rp[r] + off, sizeof h[r]);
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)h));
}

/* fp16 in the low (shift 0) or high (16) half of each lane, as floats. */
static inline T512 __m512
half_ps(__m512i v, int shift)
{
	const __m512i h = shift ? _mm512_srli_epi32(v, 16) : v;
	return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h));
}

/* Dwords 4c..4c+3 of a super-block of the tile's 16 rows into t (lane r:
 * row r): from the file's rows, the block at byte o of each (rp), or, if
 * rp is NULL, from a packed super-block (pk), where they are four loads.
 * Callers pass a constant NULL or an array, so the test folds away. */
static inline __attribute__((always_inline)) T512 void
quad(const uint8_t *const *rp, const __m512i *pk, size_t o, int c, __m512i *t)
{
	if (rp != NULL) {
		tr16x4(rp, o + 16 * (size_t)c, t);
	} else {
		for (int i = 0; i < 4; i++)
			t[i] = _mm512_load_si512(pk + 4 * c + i);
	}
}

/* Unpacked Q4_K super-block of a tile: q[8j + g] lane r = values 4g..4g+3
 * of sub-block j of row r (0..15); dsc[j] = d * scale_j; mins[t] =
 * m_2t | m_2t+1 << 16; ndmin = -dmin. */
struct uq4k {
	__m512i q[64];
	__m512 dsc[8];
	__m512i mins[4];
	__m512 ndmin;
};

/* From a Q4_K super-block's first four dwords of each row (s[0]: d and
 * dmin; s[1..3]: the 12 bytes of 6-bit scales and mins): uq4k's dsc,
 * mins and ndmin.  One definition for the batch and the decode kernels,
 * so that both scale by the same floats. */
static inline __attribute__((always_inline)) T512 void
q4k_scales(const __m512i *s, __m512 *dsc, __m512i *mins, __m512 *ndmin)
{
	const __m512i m6 = _mm512_set1_epi32(63);
	const __m512i m4d = _mm512_set1_epi32(15);
	const __m512i m2 = _mm512_set1_epi32(3);
	const __m512 d = half_ps(s[0], 0);
	*ndmin = _mm512_sub_ps(_mm512_setzero_ps(), half_ps(s[0], 16));
	const __m512i s0 = s[1], s1 = s[2], s2 = s[3];
	__m512i sc[8], mn[8];
	for (int j = 0; j < 4; j++) {
		const unsigned sh = (unsigned)(8 * j);
		sc[j] = _mm512_and_si512(_mm512_srli_epi32(s0, sh), m6);
		mn[j] = _mm512_and_si512(_mm512_srli_epi32(s1, sh), m6);
		sc[j + 4] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, sh), m4d),
		    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s0, sh + 6), m2), 4));
		mn[j + 4] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, sh + 4), m4d),
		    _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(s1, sh + 6), m2), 4));
	}
	for (int j = 0; j < 8; j++)
		dsc[j] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc[j]));
	for (int i = 0; i < 4; i++)
		mins[i] = _mm512_or_si512(mn[2 * i], _mm512_slli_epi32(mn[2 * i + 1], 16));
}

/* kc super-blocks of a tile, from the rows (rp) or packed (rp NULL, pk). */
static inline T512 void
unpackq4k(const uint8_t *const *rp, const __m512i *pk, int kc, struct uq4k *u)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512i t[4];
	for (int k = 0; k < kc; k++, u++) {
		const size_t o = (size_t)k * sizeof(block_q4_K);
		const __m512i *p = rp != NULL ? NULL : pk + (size_t)k * GK_V_Q4K;
		quad(rp, p, o, 0, t);
		q4k_scales(t, u->dsc, u->mins, &u->ndmin);
		/* dword g of qs (g < 32): 32-byte group p = g / 8 holds sub-block
		 * 2p in its low nibbles, 2p + 1 in its high ones */
		for (int h = 0; h < 8; h++) {
			quad(rp, p, o, 1 + h, t);
			for (int i = 0; i < 4; i++) {
				const int g = 4 * h + i, gp = g / 8;
				u->q[16 * gp + g % 8] = _mm512_and_si512(t[i], m4);
				u->q[16 * gp + 8 + g % 8] = _mm512_and_si512(_mm512_srli_epi16(t[i], 4), m4);
			}
		}
	}
}

static inline __attribute__((always_inline)) T512 void
kernq4k(const struct uq4k *u, int kc, const struct gemm_actk *a, __m512 *f, const int ncol)
{
	for (int c = 0; c < ncol; c++)
		f[c] = _mm512_setzero_ps();
	for (int k = 0; k < kc; k++, u++, a += GEMM_NC) {
		__m512 t[GEMM_NC];
		for (int c = 0; c < ncol; c++)
			t[c] = _mm512_setzero_ps();
		for (int j = 0; j < 8; j++) {
			const __m512i *wq = u->q + 8 * j;
			const __m512i w0 = wq[0], w1 = wq[1], w2 = wq[2], w3 = wq[3];
			const __m512i w4 = wq[4], w5 = wq[5], w6 = wq[6], w7 = wq[7];
			const __m512 dsc = u->dsc[j];
#pragma GCC unroll 8
			for (int c = 0; c < ncol; c++) {
				const __m512i acc = dp8(_mm512_setzero_si512(), w0, w1, w2, w3, w4, w5, w6, w7,
				    a[c].q + 8 * j);
				t[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), dsc, t[c]);
			}
		}
#pragma GCC unroll 8
		for (int c = 0; c < ncol; c++) {
			const int32_t *x = a[c].x;
			__m512i ms = _mm512_dpwssd_epi32(_mm512_setzero_si512(), u->mins[0], BC(x[0]));
			ms = _mm512_dpwssd_epi32(ms, u->mins[1], BC(x[1]));
			ms = _mm512_dpwssd_epi32(ms, u->mins[2], BC(x[2]));
			ms = _mm512_dpwssd_epi32(ms, u->mins[3], BC(x[3]));
			t[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ms), u->ndmin, t[c]);
			f[c] = _mm512_fmadd_ps(t[c], BCF(a[c].d), f[c]);
		}
	}
}

/* Unpacked Q6_K super-block: q[4j + g] lane r = values 4g..4g+3 of
 * sub-block j (16 values) of row r, 0..63; dsc[j] = d * scale_j. */
struct uq6k {
	__m512i q[64];
	__m512 dsc[16];
};

/* d * scale_j of a Q6_K sub-block j, where sv lane r holds scale bytes
 * 4(j / 4)..4(j / 4) + 3 of row r and b = j % 4. */
static inline __attribute__((always_inline)) T512 __m512
q6k_dsc(__m512 d, __m512i sv, int b)
{
	const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sv, (unsigned)(24 - 8 * b)), 24);
	return _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
}

/* The four 6-bit value vectors of one dword position of a half
 * super-block: ql dwords l0 (values l, l + 64 in its nibbles), l1 (l + 32,
 * l + 96) and qh's bit pairs; v[q] = values of 32-value group q. */
static inline __attribute__((always_inline)) T512 void
q6k_vals(__m512i l0, __m512i l1, __m512i qh, __m512i *v)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const __m512i m6 = _mm512_set1_epi8(0x3f);
	/* (low 4 bits from a) | (bits 4-5 from b), by a bit select on m4
	 * (0xca: m4 ? a : b) and a mask of 6 bits */
#define SEL6(a, b) _mm512_and_si512(_mm512_ternarylogic_epi32(m4, (a), (b), 0xca), m6)
	v[0] = SEL6(l0, _mm512_slli_epi16(qh, 4));
	v[1] = SEL6(l1, _mm512_slli_epi16(qh, 2));
	v[2] = SEL6(_mm512_srli_epi16(l0, 4), qh);
	v[3] = SEL6(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(qh, 2));
#undef SEL6
}

/* kc super-blocks of a tile, from the rows (rp) or packed (rp NULL; pk,
 * and pd: the fp16 d's of those super-blocks, 16 each). */
static inline T512 void
unpackq6k(const uint8_t *const *rp, const __m512i *pk, const uint16_t *pd, int kc, struct uq6k *u)
{
	__m512i t[4], l0[4], l1[4], qh[4];
	for (int k = 0; k < kc; k++, u++) {
		const size_t o = (size_t)k * sizeof(block_q6_K);
		const __m512i *p = rp != NULL ? NULL : pk + (size_t)k * GK_V_Q6K;
		const __m512 d = rp != NULL ? f16_rows(rp, o + offsetof(block_q6_K, d))
		    : _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(pd + 16 * k)));
		quad(rp, p, o, offsetof(block_q6_K, scales) / 16, t);
		for (int i = 0; i < 4; i++)
			for (int b = 0; b < 4; b++)
				u->dsc[4 * i + b] = q6k_dsc(d, t[i], b);
		/* Per half h, bytes l of ql (low nibbles: values l, l + 32 from
		 * ql[l], ql[l + 32]; high: l + 64, l + 96) and qh[l]'s bit pairs. */
		for (int h = 0; h < 2; h++) {
			for (int gq = 0; gq < 2; gq++) {
				quad(rp, p, o, 4 * h + gq, l0);
				quad(rp, p, o, 4 * h + 2 + gq, l1);
				quad(rp, p, o, 8 + 2 * h + gq, qh);
				for (int i = 0; i < 4; i++) {
					__m512i v[4];
					q6k_vals(l0[i], l1[i], qh[i], v);
					/* 32-value group q of this half: sub-blocks 8h + 2q
					 * (l < 16) and 8h + 2q + 1 */
					for (int q = 0; q < 4; q++)
						u->q[4 * (8 * h + 2 * q + gq) + i] = v[q];
				}
			}
		}
	}
}

static inline __attribute__((always_inline)) T512 void
kernq6k(const struct uq6k *u, int kc, const struct gemm_actk *a, __m512 *f, const int ncol)
{
	for (int c = 0; c < ncol; c++)
		f[c] = _mm512_setzero_ps();
	for (int k = 0; k < kc; k++, u++, a += GEMM_NC) {
		__m512 t[GEMM_NC];
		for (int c = 0; c < ncol; c++)
			t[c] = _mm512_setzero_ps();
		for (int j = 0; j < 16; j++) {
			const __m512i *wq = u->q + 4 * j;
			const __m512i w0 = wq[0], w1 = wq[1], w2 = wq[2], w3 = wq[3];
			const __m512 dsc = u->dsc[j];
#pragma GCC unroll 8
			for (int c = 0; c < ncol; c++) {
				const int32_t *q = a[c].q + 4 * j;
				__m512i acc = _mm512_dpbusd_epi32(BC(a[c].x[j]), w0, BC(q[0]));
				acc = _mm512_dpbusd_epi32(acc, w1, BC(q[1]));
				acc = _mm512_dpbusd_epi32(acc, w2, BC(q[2]));
				acc = _mm512_dpbusd_epi32(acc, w3, BC(q[3]));
				t[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), dsc, t[c]);
			}
		}
		for (int c = 0; c < ncol; c++)
			f[c] = _mm512_fmadd_ps(t[c], BCF(a[c].d), f[c]);
	}
}

static T512 void
kernq4k_8(const struct uq4k *u, int kc, const struct gemm_actk *a, __m512 *f)
{
	kernq4k(u, kc, a, f, 8);
}

static T512 void
kernq4k_4(const struct uq4k *u, int kc, const struct gemm_actk *a, __m512 *f)
{
	kernq4k(u, kc, a, f, 4);
}

static T512 void
kernq6k_8(const struct uq6k *u, int kc, const struct gemm_actk *a, __m512 *f)
{
	kernq6k(u, kc, a, f, 8);
}

static T512 void
kernq6k_4(const struct uq6k *u, int kc, const struct gemm_actk *a, __m512 *f)
{
	kernq6k(u, kc, a, f, 4);
}

/* A K chunk of a tile, unpacked: the size of the biggest (under 21 KB). */
union uk {
	struct uq4k q4[GK_KCK];
	struct uq6k q6[GK_KCK];
};

/* Every column group against a K chunk (kc super-blocks from k0, in u):
 * the results of `rows` rows added into out (stored, for k0 = 0). */
static T512 void
kchunk(int type, const union uk *u, int kc, int nb, int k0, const struct gemm_actk *a, int B, float *out,
    size_t ldo, int rows)
{
	const __mmask16 m = (__mmask16)((1u << rows) - 1);
	__m512 f[GEMM_NC];
	for (int q = 0; q < (B + GEMM_NC - 1) / GEMM_NC; q++) {
		const struct gemm_actk *ag = a + ((size_t)q * nb + k0) * GEMM_NC;
		const int nc = B - q * GEMM_NC < GEMM_NC ? B - q * GEMM_NC : GEMM_NC;
		if (type == QT_Q4_K && nc <= 4)
			kernq4k_4(u->q4, kc, ag, f);
		else if (type == QT_Q4_K)
			kernq4k_8(u->q4, kc, ag, f);
		else if (nc <= 4)
			kernq6k_4(u->q6, kc, ag, f);
		else
			kernq6k_8(u->q6, kc, ag, f);
		flush(f, nc, out + (size_t)q * GEMM_NC * ldo, ldo, m, k0 == 0);
	}
}

#endif
