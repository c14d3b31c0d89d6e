/*
 * gemm_avx2.c: the "avx2" level of gemm.c (AVX2 + FMA + F16C, no AVX-512,
 * no AVX-VNNI), for Q4_0, Q8_0, Q4_K and Q6_K weights.
 *
 * The design is gemm.c's avx512-vnni one at half the width: a tile is 8
 * weight rows, one per 32-bit lane of a ymm register; its weights are
 * unpacked once per K chunk into an L1-resident stack buffer (one ymm per
 * group of four consecutive values of a block: those four bytes of each of
 * the 8 rows, by 4x4 dword transposes of 16-byte row loads), then for each
 * group of GEMM_NC activation columns (gemm_int.h's layout, shared with the
 * avx512 level) a micro-kernel runs over the chunk with its float
 * accumulators in registers and adds its 8 x GEMM_NC results into out.
 *
 * The integer dot without VNNI: vpmaddubsw of the weight bytes (unsigned
 * operand) with the column's four activation bytes broadcast (signed),
 * giving two int16 pair sums per lane, then vpmaddwd to int32.  vpmaddubsw
 * saturates, so every int16 sum is kept in range (activations in
 * [-128, 127], Q8_0's in [-127, 127]):
 *   Q4_0, Q4_K  q in 0..15: a pair is at most 2*15*128 = 3840, so the eight
 *               groups of a 32-value block add in int16 (30720) before one
 *               vpmaddwd;
 *   Q6_K        q in 0..63: a pair is at most 16128, so two groups add in
 *               int16 (32256), and vpmaddwd multiplies by the sub-block's
 *               scale on the way to int32;
 *   Q8_0        signed weights: |w| as the unsigned operand and the
 *               activation with w's sign (vpsignb), |pair| <= 2*128*127 =
 *               32512; each group goes to int32 on its own.
 * Offsets are put back exactly: Q4_0 sum (q-8)a = sum qa - 8 sum a (the
 * -8 sum a of gemm_act32.corr); Q6_K sum_j s_j sum (q-32)a = sum_j s_j sum
 * qa - 32 sum_j s_j bsum_j (vpmaddwd of the row's scale pairs with the
 * column's bsums pairs); Q4_K's minimum term dmin * sum_j m_j S_j likewise
 * (gemm_actk.x).  So the integer sum of every block is the reference's;
 * only the order of the float operations that scale and add them differs.
 *
 * Every function carries the target attribute avx2,fma,f16c (so a PORTABLE
 * build has them), and the Makefile compiles this file with -mno-avx512f
 * -mno-avxvnni, so that a -march=native build on a larger CPU still runs
 * (and is measured as) what an AVX2-only machine runs: no EVEX encodings,
 * no ymm16-31.
 */
#include "engine/gemm_int.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TA __attribute__((target("avx2,fma,f16c")))

#define NC GEMM_NC
#define TR 8     /* weight rows per tile: the 32-bit lanes of a ymm */
#define KC32 32  /* Q4_0/Q8_0 blocks per K chunk: up to 32 * 544 bytes unpacked */
#define KCK 4    /* K-quant super-blocks per K chunk: 4 * ~3 KB */

#define BC(v) _mm256_set1_epi32(v)

/* Read in place of rows past the end of a partial tile: every byte any
 * unpacking reads of a K chunk lies inside it, and zero scales make those
 * lanes zero. */
static const uint8_t zero_rows[1152];
_Static_assert(KC32 * sizeof(block_q8_0) <= sizeof zero_rows, "zero_rows");
_Static_assert(KCK * sizeof(block_q6_K) <= sizeof zero_rows, "zero_rows");
_Static_assert(KCK * sizeof(block_q4_K) <= sizeof zero_rows, "zero_rows");

static int
groups(int B)
{
	return (B + NC - 1) / NC;
}

/* rp[r]: the chunk's first byte (k0off) in row rt + r, or zero_rows. */
static void
row_ptrs(const uint8_t *w, size_t row_bytes, int rt, int r1, size_t k0off, const uint8_t **rp)
{
	for (int r = 0; r < TR; r++)
		rp[r] = rt + r < r1 ? w + (size_t)(rt + r) * row_bytes + k0off : zero_rows;
}

static inline TA __m128i
load16(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Lane r of t[g] (g < 4) = dword g of the 16 bytes at rp[r] + off: a 4x4
 * dword transpose in each 128-bit lane of [row i, row i + 4]. */
static inline TA void
tr8x4(const uint8_t *const *rp, size_t off, __m256i *t)
{
	__m256i z[4];
	for (int i = 0; i < 4; i++)
		z[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(load16(rp[i] + off)), load16(rp[i + 4] + off), 1);
	const __m256i t0 = _mm256_unpacklo_epi32(z[0], z[1]), t1 = _mm256_unpackhi_epi32(z[0], z[1]);
	const __m256i t2 = _mm256_unpacklo_epi32(z[2], z[3]), t3 = _mm256_unpackhi_epi32(z[2], z[3]);
	t[0] = _mm256_unpacklo_epi64(t0, t2);
	t[1] = _mm256_unpackhi_epi64(t0, t2);
	t[2] = _mm256_unpacklo_epi64(t1, t3);
	t[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* The fp16 at rp[r] + off of each row, as floats. */
static inline TA __m256
f16_rows(const uint8_t *const *rp, size_t off)
{
	uint16_t h[TR];
	for (int r = 0; r < TR; r++)
		memcpy(&h[r], rp[r] + off, sizeof h[r]);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)h));
}

/* fp16 in the low (shift 0) or high (16) half of each lane, as floats. */
static inline TA __m256
half_ps(__m256i v, int shift)
{
	const __m256i h = shift ? _mm256_srli_epi32(v, 16) : _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
	/* the eight 16-bit values into the low 128 bits, in order */
	const __m256i p = _mm256_packus_epi32(h, h);
	const __m256i o = _mm256_permute4x64_epi64(p, 0x08);
	return _mm256_cvtph_ps(_mm256_castsi256_si128(o));
}

/* Ask for the weights of the K chunk after (rt, k0) before unpacking this
 * one (see gemm.c: 8 row streams outrun the hardware prefetcher too). */
static inline TA void
prefetch_next(const uint8_t *w, size_t row_bytes, int rt, int r1, int k0, int kstep, size_t bs)
{
	size_t from = (size_t)(k0 + kstep) * bs;
	if (from >= row_bytes) {
		from = 0;
		rt += TR;
	}
	for (int r = rt; r < rt + TR && r < r1; r++) {
		const uint8_t *p = w + (size_t)r * row_bytes + from;
		for (size_t o = 0; o < (size_t)kstep * bs; o += 64)
			_mm_prefetch((const char *)(p + o), _MM_HINT_T1);
	}
}

/* Add (or, on the first K chunk, store) the 8-row results of nc columns;
 * rows < TR: a partial tile, masked. */
static inline TA void
flush(const __m256 *f, int nc, float *o, size_t ldo, int rows, int first)
{
	if (rows == TR) {
		for (int c = 0; c < nc; c++) {
			float *p = o + (size_t)c * ldo;
			_mm256_storeu_ps(p, first ? f[c] : _mm256_add_ps(f[c], _mm256_loadu_ps(p)));
		}
		return;
	}
	const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	for (int c = 0; c < nc; c++) {
		float *p = o + (size_t)c * ldo;
		const __m256 v = first ? f[c] : _mm256_add_ps(f[c], _mm256_maskload_ps(p, m));
		_mm256_maskstore_ps(p, m, v);
	}
}

/* ---- Q4_0, Q8_0 --------------------------------------------------- */

/* kc blocks of the tile's rows from rp: wq[8k + g] lane r = values
 * 4g..4g+3 of block k of row r (Q4_0: the nibbles 0..15; Q8_0: |q|, with
 * q itself in ws[8k + g]); wd[k] lane r = that block's d. */
static TA void
unpack32(int type, const uint8_t *const *rp, int kc, __m256i *wq, __m256i *ws, __m256 *wd)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const size_t bs = type == QT_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
	__m256i t[4];
	for (int k = 0; k < kc; k++, wq += 8, ws += 8) {
		const size_t o = (size_t)k * bs;
		wd[k] = f16_rows(rp, o);
		if (type == QT_Q4_0) {
			tr8x4(rp, o + 2, t);
			for (int g = 0; g < 4; g++) {
				wq[g] = _mm256_and_si256(t[g], m4);
				wq[g + 4] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), m4);
			}
		} else {
			for (int h = 0; h < 2; h++) {
				tr8x4(rp, o + 2 + 16 * (size_t)h, t);
				for (int g = 0; g < 4; g++) {
					ws[4 * h + g] = t[g];
					wq[4 * h + g] = _mm256_abs_epi8(t[g]);
				}
			}
		}
	}
}

/* kc blocks of one tile against the first ncol (a constant) columns of a
 * group; a: the group's entry of the chunk's first block. */
static inline __attribute__((always_inline)) TA void
kern32(const int type, const __m256i *wq, const __m256i *ws, const __m256 *wd, int kc,
    const struct gemm_act32 *a, __m256 *f, const int ncol)
{
	const __m256i ones = _mm256_set1_epi16(1);
	for (int c = 0; c < ncol; c++)
		f[c] = _mm256_setzero_ps();
	for (int k = 0; k < kc; k++, wq += 8, ws += 8, a += NC) {
		const __m256 dw = wd[k];
#pragma GCC unroll 8
		for (int c = 0; c < ncol; c++) {
			const int32_t *q = a[c].q;
			__m256i acc;
			if (type == QT_Q4_0) {
				__m256i s = _mm256_maddubs_epi16(wq[0], BC(q[0]));
				for (int g = 1; g < 8; g++)
					s = _mm256_add_epi16(s, _mm256_maddubs_epi16(wq[g], BC(q[g])));
				acc = _mm256_add_epi32(_mm256_madd_epi16(s, ones), BC(a[c].corr));
			} else {
				__m256i p[8];
				for (int g = 0; g < 8; g++)
					p[g] = _mm256_madd_epi16(_mm256_maddubs_epi16(wq[g],
					    _mm256_sign_epi8(BC(q[g]), ws[g])), ones);
				acc = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(p[0], p[1]),
				    _mm256_add_epi32(p[2], p[3])), _mm256_add_epi32(_mm256_add_epi32(p[4], p[5]),
				    _mm256_add_epi32(p[6], p[7])));
			}
			f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(dw, _mm256_set1_ps(a[c].d)), f[c]);
		}
	}
}

static TA void
kq40_8(const __m256i *wq, const __m256i *ws, const __m256 *wd, int kc, const struct gemm_act32 *a, __m256 *f)
{
	kern32(QT_Q4_0, wq, ws, wd, kc, a, f, 8);
}

static TA void
kq40_4(const __m256i *wq, const __m256i *ws, const __m256 *wd, int kc, const struct gemm_act32 *a, __m256 *f)
{
	kern32(QT_Q4_0, wq, ws, wd, kc, a, f, 4);
}

static TA void
kq80_8(const __m256i *wq, const __m256i *ws, const __m256 *wd, int kc, const struct gemm_act32 *a, __m256 *f)
{
	kern32(QT_Q8_0, wq, ws, wd, kc, a, f, 8);
}

static TA void
kq80_4(const __m256i *wq, const __m256i *ws, const __m256 *wd, int kc, const struct gemm_act32 *a, __m256 *f)
{
	kern32(QT_Q8_0, wq, ws, wd, kc, a, f, 4);
}

TA void
gemm_avx2_32(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_act32 *a, int B, float *out, size_t ldo)
{
	const int nb = n / 32;
	const size_t bs = type == QT_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
	const uint8_t *rp[TR];
	__m256i wq[KC32 * 8], ws[KC32 * 8];
	__m256 wd[KC32];
	__m256 f[NC];
	for (int rt = r0; rt < r1; rt += TR) {
		const int rows = r1 - rt < TR ? r1 - rt : TR;
		for (int k0 = 0; k0 < nb; k0 += KC32) {
			const int kc = nb - k0 < KC32 ? nb - k0 : KC32;
			row_ptrs(w, row_bytes, rt, r1, (size_t)k0 * bs, rp);
			prefetch_next(w, row_bytes, rt, r1, k0, KC32, bs);
			unpack32(type, rp, kc, wq, ws, wd);
			for (int q = 0; q < groups(B); q++) {
				const struct gemm_act32 *ag = a + ((size_t)q * nb + k0) * NC;
				const int nc = B - q * NC < NC ? B - q * NC : NC;
				if (type == QT_Q4_0 && nc <= 4)
					kq40_4(wq, ws, wd, kc, ag, f);
				else if (type == QT_Q4_0)
					kq40_8(wq, ws, wd, kc, ag, f);
				else if (nc <= 4)
					kq80_4(wq, ws, wd, kc, ag, f);
				else
					kq80_8(wq, ws, wd, kc, ag, f);
				flush(f, nc, out + (size_t)q * NC * ldo + rt, ldo, rows, k0 == 0);
			}
		}
	}
}

/* ---- Q4_K ---------------------------------------------------------- */

/* Unpacked Q4_K super-block of a tile: q[8j + g] lane r = values 4g..4g+3
 * of sub-block j of row r (0..15); sc[j] = scale_j in both int16 halves;
 * mins[t] = m_2t | m_2t+1 << 16; d, ndmin = -dmin. */
struct uq4k {
	__m256i q[64];
	__m256i sc[8];
	__m256i mins[4];
	__m256 d, ndmin;
};

static TA void
unpackq4k(const uint8_t *const *rp, int kc, struct uq4k *u)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i m6 = _mm256_set1_epi32(63);
	const __m256i m4d = _mm256_set1_epi32(15);
	const __m256i m2 = _mm256_set1_epi32(3);
	__m256i t[4];
	for (int k = 0; k < kc; k++, u++) {
		const size_t o = (size_t)k * sizeof(block_q4_K);
		/* d and dmin, then the 12 bytes of scales and mins */
		tr8x4(rp, o, t);
		u->d = half_ps(t[0], 0);
		u->ndmin = _mm256_sub_ps(_mm256_setzero_ps(), half_ps(t[0], 16));
		const __m256i s0 = t[1], s1 = t[2], s2 = t[3];
		__m256i sc[8], mn[8];
		for (int j = 0; j < 4; j++) {
			const int sh = 8 * j;
			sc[j] = _mm256_and_si256(_mm256_srli_epi32(s0, sh), m6);
			mn[j] = _mm256_and_si256(_mm256_srli_epi32(s1, sh), m6);
			sc[j + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, sh), m4d),
			    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s0, sh + 6), m2), 4));
			mn[j + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, sh + 4), m4d),
			    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s1, sh + 6), m2), 4));
		}
		for (int j = 0; j < 8; j++)
			u->sc[j] = _mm256_or_si256(sc[j], _mm256_slli_epi32(sc[j], 16));
		for (int i = 0; i < 4; i++)
			u->mins[i] = _mm256_or_si256(mn[2 * i], _mm256_slli_epi32(mn[2 * i + 1], 16));
		/* dword g of qs (g < 32): 32-byte group p = g / 8 holds sub-block
		 * 2p in its low nibbles, 2p + 1 in its high ones */
		for (int h = 0; h < 8; h++) {
			tr8x4(rp, o + 16 + 16 * (size_t)h, t);
			for (int i = 0; i < 4; i++) {
				const int g = 4 * h + i, p = g / 8;
				u->q[16 * p + g % 8] = _mm256_and_si256(t[i], m4);
				u->q[16 * p + 8 + g % 8] = _mm256_and_si256(_mm256_srli_epi16(t[i], 4), m4);
			}
		}
	}
}

static inline __attribute__((always_inline)) TA void
kernq4k(const struct uq4k *u, int kc, const struct gemm_actk *a, __m256 *f, const int ncol)
{
	for (int c = 0; c < ncol; c++)
		f[c] = _mm256_setzero_ps();
	for (int k = 0; k < kc; k++, u++, a += NC) {
#pragma GCC unroll 8
		for (int c = 0; c < ncol; c++) {
			const int32_t *q = a[c].q;
			__m256i acc = _mm256_setzero_si256();
			for (int j = 0; j < 8; j++) {
				const __m256i *wq = u->q + 8 * j;
				__m256i s = _mm256_maddubs_epi16(wq[0], BC(q[8 * j]));
				for (int g = 1; g < 8; g++)
					s = _mm256_add_epi16(s, _mm256_maddubs_epi16(wq[g], BC(q[8 * j + g])));
				acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, u->sc[j]));
			}
			const int32_t *x = a[c].x;
			__m256i ms = _mm256_add_epi32(_mm256_madd_epi16(u->mins[0], BC(x[0])),
			    _mm256_madd_epi16(u->mins[1], BC(x[1])));
			ms = _mm256_add_epi32(ms, _mm256_add_epi32(_mm256_madd_epi16(u->mins[2], BC(x[2])),
			    _mm256_madd_epi16(u->mins[3], BC(x[3]))));
			const __m256 t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), u->d,
			    _mm256_mul_ps(_mm256_cvtepi32_ps(ms), u->ndmin));
			f[c] = _mm256_fmadd_ps(t, _mm256_set1_ps(a[c].d), f[c]);
		}
	}
}

/* ---- Q6_K ---------------------------------------------------------- */

/* Unpacked Q6_K super-block: q[4j + g] lane r = values 4g..4g+3 of
 * sub-block j (16 values) of row r, 0..63; sc[j] = scale_j in both int16
 * halves; scp[t] = scale_2t | scale_2t+1 << 16; d. */
struct uq6k {
	__m256i q[64];
	__m256i sc[16];
	__m256i scp[8];
	__m256 d;
};

static TA void
unpackq6k(const uint8_t *const *rp, int kc, struct uq6k *u)
{
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i m30 = _mm256_set1_epi8(0x30);
	const __m256i lo16 = _mm256_set1_epi32(0xffff);
	__m256i t[4], l0[4], l1[4], qh[4];
	for (int k = 0; k < kc; k++, u++) {
		const size_t o = (size_t)k * sizeof(block_q6_K);
		u->d = f16_rows(rp, o + offsetof(block_q6_K, d));
		tr8x4(rp, o + offsetof(block_q6_K, scales), t);
		__m256i sc[16];
		for (int i = 0; i < 4; i++)
			for (int b = 0; b < 4; b++)
				sc[4 * i + b] = _mm256_srai_epi32(_mm256_slli_epi32(t[i], 24 - 8 * b), 24);
		for (int j = 0; j < 16; j++)
			u->sc[j] = _mm256_or_si256(_mm256_and_si256(sc[j], lo16), _mm256_slli_epi32(sc[j], 16));
		for (int i = 0; i < 8; i++)
			u->scp[i] = _mm256_or_si256(_mm256_and_si256(sc[2 * i], lo16), _mm256_slli_epi32(sc[2 * i + 1], 16));
		/* Per half h, bytes l of ql (low nibbles: values l, l + 32 from
		 * ql[l], ql[l + 32]; high: l + 64, l + 96) and qh[l]'s bit pairs. */
		for (int h = 0; h < 2; h++) {
			for (int gq = 0; gq < 2; gq++) {
				tr8x4(rp, o + 64 * (size_t)h + 16 * (size_t)gq, l0);
				tr8x4(rp, o + 64 * (size_t)h + 32 + 16 * (size_t)gq, l1);
				tr8x4(rp, o + 128 + 32 * (size_t)h + 16 * (size_t)gq, qh);
				for (int i = 0; i < 4; i++) {
					const int g = 4 * gq + i;
					/* (low 4 bits from a) | (bits 4-5 from b) */
#define SEL6(a, b) _mm256_or_si256(_mm256_and_si256((a), m4), _mm256_and_si256((b), m30))
					__m256i v[4];
					v[0] = SEL6(l0[i], _mm256_slli_epi16(qh[i], 4));
					v[1] = SEL6(l1[i], _mm256_slli_epi16(qh[i], 2));
					v[2] = SEL6(_mm256_srli_epi16(l0[i], 4), qh[i]);
					v[3] = SEL6(_mm256_srli_epi16(l1[i], 4), _mm256_srli_epi16(qh[i], 2));
#undef SEL6
					/* 32-value group q of this half: sub-blocks 8h + 2q
					 * (l < 16) and 8h + 2q + 1 */
					for (int q = 0; q < 4; q++)
						u->q[4 * (8 * h + 2 * q + g / 4) + g % 4] = v[q];
				}
			}
		}
	}
}

static inline __attribute__((always_inline)) TA void
kernq6k(const struct uq6k *u, int kc, const struct gemm_actk *a, __m256 *f, const int ncol)
{
	for (int c = 0; c < ncol; c++)
		f[c] = _mm256_setzero_ps();
	for (int k = 0; k < kc; k++, u++, a += NC) {
#pragma GCC unroll 8
		for (int c = 0; c < ncol; c++) {
			const int32_t *q = a[c].q;
			__m256i acc = _mm256_setzero_si256();
			for (int j = 0; j < 16; j++) {
				const __m256i *wq = u->q + 4 * j;
				const __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(wq[0], BC(q[4 * j])),
				    _mm256_maddubs_epi16(wq[1], BC(q[4 * j + 1])));
				const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(wq[2], BC(q[4 * j + 2])),
				    _mm256_maddubs_epi16(wq[3], BC(q[4 * j + 3])));
				acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(s0, u->sc[j]),
				    _mm256_madd_epi16(s1, u->sc[j])));
			}
			/* - 32 sum_j scale_j bsum_j */
			__m256i bs = _mm256_setzero_si256();
			for (int i = 0; i < 8; i++) {
				int32_t pair;
				memcpy(&pair, &a[c].bsums[2 * i], sizeof pair);
				bs = _mm256_add_epi32(bs, _mm256_madd_epi16(u->scp[i], BC(pair)));
			}
			acc = _mm256_sub_epi32(acc, _mm256_slli_epi32(bs, 5));
			f[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(u->d, _mm256_set1_ps(a[c].d)), f[c]);
		}
	}
}

static TA void
kq4k_8(const struct uq4k *u, int kc, const struct gemm_actk *a, __m256 *f)
{
	kernq4k(u, kc, a, f, 8);
}

static TA void
kq4k_4(const struct uq4k *u, int kc, const struct gemm_actk *a, __m256 *f)
{
	kernq4k(u, kc, a, f, 4);
}

static TA void
kq6k_8(const struct uq6k *u, int kc, const struct gemm_actk *a, __m256 *f)
{
	kernq6k(u, kc, a, f, 8);
}

static TA void
kq6k_4(const struct uq6k *u, int kc, const struct gemm_actk *a, __m256 *f)
{
	kernq6k(u, kc, a, f, 4);
}

TA void
gemm_avx2_k(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_actk *a, int B, float *out, size_t ldo)
{
	const int nb = n / QK_K;
	const size_t bs = type == QT_Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K);
	const uint8_t *rp[TR];
	union {
		struct uq4k q4[KCK];
		struct uq6k q6[KCK];
	} u;
	__m256 f[NC];
	for (int rt = r0; rt < r1; rt += TR) {
		const int rows = r1 - rt < TR ? r1 - rt : TR;
		for (int k0 = 0; k0 < nb; k0 += KCK) {
			const int kc = nb - k0 < KCK ? nb - k0 : KCK;
			row_ptrs(w, row_bytes, rt, r1, (size_t)k0 * bs, rp);
			prefetch_next(w, row_bytes, rt, r1, k0, KCK, bs);
			if (type == QT_Q4_K)
				unpackq4k(rp, kc, u.q4);
			else
				unpackq6k(rp, kc, u.q6);
			for (int q = 0; q < groups(B); q++) {
				const struct gemm_actk *ag = a + ((size_t)q * nb + k0) * NC;
				const int nc = B - q * NC < NC ? B - q * NC : NC;
				if (type == QT_Q4_K && nc <= 4)
					kq4k_4(u.q4, kc, ag, f);
				else if (type == QT_Q4_K)
					kq4k_8(u.q4, kc, ag, f);
				else if (nc <= 4)
					kq6k_4(u.q6, kc, ag, f);
				else
					kq6k_8(u.q6, kc, ag, f);
				flush(f, nc, out + (size_t)q * NC * ldo + rt, ldo, rows, k0 == 0);
			}
		}
	}
}

#endif /* x86 */
