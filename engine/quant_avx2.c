/*
 * quant_avx2.c: the AVX2 + FMA + F16C kernels (Haswell, Zen 1 and later):
 * one-row dot products for every weight type, the bit-identical activation
 * quantizers (Q8_0, Q8_1, Q8_K), and the four-row vec_dot_n kernels for
 * Q4_0, Q8_0, Q4_K and Q6_K.  The "avx512-vnni" level reuses most of them.
 *
 * Each function is compiled with T_AVX2 and must only be reached through
 * quant_simd.c's tables, which check the CPU first.  The contract with the
 * scalar reference (same integer sums, float order free; quantizers
 * bit-identical) is in quant_simd_int.h.
 */
#include "engine/quant_simd_int.h"

#include <math.h>

#ifdef QUANT_X86

/* ------------------------------------------------------------------ */
/* Dot products                                                        */
/* ------------------------------------------------------------------ */

/* vpmaddubsw of 32 unsigned quants (<= 63) with 32 activations, each
 * 16-weight half times its own sub-block scale: eight int32 sums. */
static inline T_AVX2 __m256i
scaled_pair_dot(__m256i q, const int8_t *y8, int sa, int sb)
{
	const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)y8));
	return _mm256_madd_epi16(p, scale_pair(sa, sb));
}

/* Same, for one 32-weight sub-block with one scale. */
static inline T_AVX2 __m256i
scaled_dot(__m256i q, const int8_t *y8, int sc)
{
	const __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)y8));
	return _mm256_madd_epi16(p, _mm256_set1_epi16((short)sc));
}

/* ref: q2_K_vec_dot_ref (ggml_vec_dot_q2_K_q8_K): value 128k + 32s + l is
 * bits 2s of qs[32k + l]; mins through bsums. */
T_AVX2 void
q2_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q2_K *x = vx;
	const block_q8_K *y = vy;
	const __m256i m3 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0;
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *sc = x[i].scales;
		const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
		const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0x0f)));
		const int summs = hsum_epi32(bsums_dot(y[i].bsums, mins));
		__m256i sumi = _mm256_setzero_si256();
		for (int k = 0; k < 2; k++) {
			const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * k));
			for (int sh = 0; sh < 4; sh++) {
				const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * sh), m3);
				const int is = 8 * k + 2 * sh;
				sumi = _mm256_add_epi32(sumi, scaled_pair_dot(q, y[i].qs + 128 * k + 32 * sh,
				    sc[is] & 0x0f, sc[is + 1] & 0x0f));
			}
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
		accm += y[i].d * h2f(x[i].dmin) * summs;
	}
	*s = hsum_ps(acc) - accm;
}

/* ref: q3_K_vec_dot_ref (ggml_vec_dot_q3_K_q8_K): q = low2 | high << 2 in
 * 0..7 stands for q - 4, so sum sc*(q-4)*y = sum sc*q*y - 4*sum sc*bsum. */
T_AVX2 void
q3_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q3_K *x = vx;
	const block_q8_K *y = vy;
	const __m256i m3 = _mm256_set1_epi8(3);
	const __m256i four = _mm256_set1_epi8(4);
	__m256 acc = _mm256_setzero_ps();
	int8_t sc[16];
	for (int i = 0; i < n / QK_K; i++) {
		quant_q3_K_scales(x[i].scales, sc);
		const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
		const __m256i corr = bsums_dot(y[i].bsums, sc16);
		const __m256i hm = _mm256_loadu_si256((const __m256i *)x[i].hmask);
		__m256i sumi = _mm256_setzero_si256();
		for (int k = 0; k < 2; k++) {
			const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * k));
			for (int sh = 0; sh < 4; sh++) {
				const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * k + sh)));
				const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
				const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 2 * sh), m3),
				    _mm256_and_si256(hb, four));
				const int is = 8 * k + 2 * sh;
				sumi = _mm256_add_epi32(sumi, scaled_pair_dot(q, y[i].qs + 128 * k + 32 * sh, sc[is], sc[is + 1]));
			}
		}
		sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 2));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
	}
	*s = hsum_ps(acc);
}

/* sum_j bsums[j] * mins[j/2] of Q4_K/Q5_K: pairs of bsums, then madd. */
static inline T_AVX2 int
k4_min_sum(const int16_t *bsums, const uint8_t *mn)
{
	const __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
	const __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
	const __m128i pairs = _mm_hadd_epi16(b0, b1);
	const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
	return hsum_epi32_128(_mm_madd_epi16(pairs, m16));
}

/* ref: q4_K_vec_dot_ref (ggml_vec_dot_q4_K_q8_K): sub-block 2j in the low
 * nibbles of qs[32j..], 2j+1 in the high ones; mins through bsums. */
T_AVX2 void
q4_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_K *x = vx;
	const block_q8_K *y = vy;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0;
	uint8_t sc[8], mn[8];
	for (int i = 0; i < n / QK_K; i++) {
		k4_scales(x[i].scales, sc, mn);
		accm += h2f(x[i].dmin) * y[i].d * k4_min_sum(y[i].bsums, mn);
		__m256i sumi = _mm256_setzero_si256();
		for (int j = 0; j < 4; j++) {
			const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
			const int8_t *q8 = y[i].qs + 64 * j;
			sumi = _mm256_add_epi32(sumi, scaled_dot(_mm256_and_si256(qv, m4), q8, sc[2 * j]));
			sumi = _mm256_add_epi32(sumi, scaled_dot(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4),
			    q8 + 32, sc[2 * j + 1]));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
	}
	*s = hsum_ps(acc) - accm;
}

/* ref: q5_K_vec_dot_ref (ggml_vec_dot_q5_K_q8_K): as Q4_K, with the fifth
 * bit of sub-block 2j (2j+1) in bit 2j (2j+1) of qh[l]. */
T_AVX2 void
q5_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q5_K *x = vx;
	const block_q8_K *y = vy;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i b4 = _mm256_set1_epi8(0x10);
	__m256 acc = _mm256_setzero_ps();
	float accm = 0;
	uint8_t sc[8], mn[8];
	for (int i = 0; i < n / QK_K; i++) {
		k4_scales(x[i].scales, sc, mn);
		accm += h2f(x[i].dmin) * y[i].d * k4_min_sum(y[i].bsums, mn);
		const __m256i hv = _mm256_loadu_si256((const __m256i *)x[i].qh);
		__m256i sumi = _mm256_setzero_si256();
		for (int j = 0; j < 4; j++) {
			const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
			const __m256i bl = _mm256_set1_epi8((char)(1 << (2 * j)));
			const __m256i bh = _mm256_set1_epi8((char)(2 << (2 * j)));
			const __m256i hl = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, bl), bl), b4);
			const __m256i hh = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, bh), bh), b4);
			const int8_t *q8 = y[i].qs + 64 * j;
			sumi = _mm256_add_epi32(sumi, scaled_dot(_mm256_or_si256(_mm256_and_si256(qv, m4), hl), q8, sc[2 * j]));
			sumi = _mm256_add_epi32(sumi, scaled_dot(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qv, 4), m4), hh),
			    q8 + 32, sc[2 * j + 1]));
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
	}
	*s = hsum_ps(acc) - accm;
}

/* ref: q6_K_vec_dot_ref (ggml_vec_dot_q6_K_q8_K): unsigned q = value + 32,
 * so sum sc*(q-32)*y = sum sc*q*y - 32*sum sc*bsum, all in int32. */
T_AVX2 void
q6_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q6_K *x = vx;
	const block_q8_K *y = vy;
	__m256 acc = _mm256_setzero_ps();
	__m256i q[4];
	for (int i = 0; i < n / QK_K; i++) {
		const int8_t *sc = x[i].scales;
		const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
		const __m256i corr = bsums_dot(y[i].bsums, sc16);
		__m256i sumi = _mm256_setzero_si256();
		for (int h = 0; h < 2; h++) {
			q6_K_unpack(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
			const int8_t *q8 = y[i].qs + 128 * h;
			for (int k = 0; k < 4; k++)
				sumi = _mm256_add_epi32(sumi, scaled_pair_dot(q[k], q8 + 32 * k,
				    sc[8 * h + 2 * k], sc[8 * h + 2 * k + 1]));
		}
		sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
	}
	*s = hsum_ps(acc);
}

/* ref: q8_K_vec_dot_ref */
T_AVX2 void
q8_K_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q8_K *x = vx, *y = vy;
	__m256 acc = _mm256_setzero_ps();
	for (int i = 0; i < n / QK_K; i++) {
		__m256i sumi = _mm256_setzero_si256();
		for (int j = 0; j < QK_K; j += 32)
			sumi = _mm256_add_epi32(sumi, dot_s8(_mm256_loadu_si256((const __m256i *)(x[i].qs + j)),
			    _mm256_loadu_si256((const __m256i *)(y[i].qs + j))));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
	}
	*s = hsum_ps(acc);
}

/* ref: f32_vec_dot_ref; float lanes instead of one double sum. */
T_AVX2 void
f32_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const float *x = vx, *y = vy;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int i = 0;
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
		a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
		a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
	}
	float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		sum += x[i] * y[i];
	*s = sum;
}

/* ref: f16_vec_dot_ref */
T_AVX2 void
f16_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const fp16_t *x = vx, *y = vy;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int i = 0;
#define LD16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
	for (; i + 32 <= n; i += 32) {
		a0 = _mm256_fmadd_ps(LD16(x + i), LD16(y + i), a0);
		a1 = _mm256_fmadd_ps(LD16(x + i + 8), LD16(y + i + 8), a1);
		a2 = _mm256_fmadd_ps(LD16(x + i + 16), LD16(y + i + 16), a2);
		a3 = _mm256_fmadd_ps(LD16(x + i + 24), LD16(y + i + 24), a3);
	}
#undef LD16
	float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < n; i++)
		sum += h2f(x[i]) * h2f(y[i]);
	*s = sum;
}

/* ref: bf16_vec_dot_ref; bf16 -> f32 is a 16-bit shift. */
T_AVX2 void
bf16_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const bf16_t *x = vx, *y = vy;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0;
	int i = 0;
#define LDB(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_fmadd_ps(LDB(x + i), LDB(y + i), a0);
		a1 = _mm256_fmadd_ps(LDB(x + i + 8), LDB(y + i + 8), a1);
	}
#undef LDB
	float sum = hsum_ps(_mm256_add_ps(a0, a1));
	for (; i < n; i++)
		sum += bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]);
	*s = sum;
}

/* Each body expanded per level with its int8 sum: DOT is the macro's
 * name for dot_s8 / dot_u8 (AVX2) or their vpdpbusd forms (VNNI). */
#define DOT dot_s8
T_AVX2 void q8_0_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q8_0 }
T_AVX2 void q5_0_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q5_0 }
#undef DOT
#define DOT dot_u8
T_AVX2 void q4_1_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q4_1 }
T_AVX2 void q5_1_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q5_1 }
#undef DOT

/*
 * Q4_0, AVX2.  A block's 16 bytes hold weight l in the low nibble of byte
 * l and weight l + 16 in the high one, so two blocks loaded side by side
 * (block b in the low lane, b + 1 in the high) give, after one mask and one
 * shift, the low-nibble and the high-nibble weights of both.  The nibbles
 * stay unsigned (0..15), the unsigned operand of vpmaddubsw, so the signs
 * need no vpsignb; the -8 offset comes off as 8 times y's sums, taken in
 * int16 before the pairs are widened (|sum of four (q-8)y| <= 4064).
 * Everything that depends on y alone (the halves of y matching the
 * nibbles, those sums, y's eight block scales) is one group of eight
 * blocks, struct q4_0_dec2: decoding prepares it once per activation row
 * (q4_0_dec2_prep), and q4_0_dot_avx2 makes each group on the stack as it
 * goes, so the two give the same bits.  Against vpsignb's form (llama.cpp's)
 * this halves the instructions per weight byte, which on two cores
 * streaming weights is what a decoded token's time is made of.
 */
struct q4_0_dec2 {
	float dy[8];            /* the eight blocks' y scales */
	__m256i ylo[4];         /* y[0..15] of blocks 2k (low lane), 2k + 1 */
	__m256i yhi[4];         /* y[16..31], likewise */
	__m256i e16[4];         /* 8 * (y[l] + y[l+1]) summed as vpmaddubsw pairs */
};

static inline T_AVX2 void
q4_0_dec2_group(const block_q8_0 *y, struct q4_0_dec2 *e)
{
	const __m256i eight = _mm256_set1_epi8(8);
	for (int k = 0; k < 4; k++) {
		const block_q8_0 *a = y + 2 * k, *b = a + 1;
		const __m256i lo = _mm256_loadu2_m128i((const __m128i *)b->qs, (const __m128i *)a->qs);
		const __m256i hi = _mm256_loadu2_m128i((const __m128i *)(b->qs + 16), (const __m128i *)(a->qs + 16));
		e->ylo[k] = lo;
		e->yhi[k] = hi;
		e->e16[k] = _mm256_add_epi16(_mm256_maddubs_epi16(eight, lo), _mm256_maddubs_epi16(eight, hi));
	}
	_mm256_store_ps(e->dy, _mm256_cvtph_ps(_mm_setr_epi16((short)y[0].d, (short)y[1].d, (short)y[2].d,
	    (short)y[3].d, (short)y[4].d, (short)y[5].d, (short)y[6].d, (short)y[7].d)));
}

/* Pair k of a group: blocks x[0], x[1] against e's pair k, into acc. */
#define Q4_0_DEC2_PAIR(acc, x, e, d8, k) do { \
	const __m256i v = _mm256_loadu2_m128i((const __m128i *)(x)[1].qs, (const __m128i *)(x)[0].qs); \
	const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4); \
	const __m256i p16 = _mm256_sub_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, (e)->ylo[k]), \
	    _mm256_maddubs_epi16(hi, (e)->yhi[k])), (e)->e16[k]); \
	const __m256i p = _mm256_madd_epi16(p16, _mm256_set1_epi16(1)); \
	const __m256 d = _mm256_permutevar8x32_ps(d8, _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, \
	    2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc); \
} while (0)

/* Eight blocks x[0..7] against group e. */
#define Q4_0_DEC2_GROUP(x, e) do { \
	const __m256 d8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_setr_epi16((short)(x)[0].d, (short)(x)[1].d, \
	    (short)(x)[2].d, (short)(x)[3].d, (short)(x)[4].d, (short)(x)[5].d, (short)(x)[6].d, \
	    (short)(x)[7].d)), _mm256_load_ps((e)->dy)); \
	Q4_0_DEC2_PAIR(acc0, (x), e, d8, 0); \
	Q4_0_DEC2_PAIR(acc1, (x) + 2, e, d8, 1); \
	Q4_0_DEC2_PAIR(acc2, (x) + 4, e, d8, 2); \
	Q4_0_DEC2_PAIR(acc3, (x) + 6, e, d8, 3); \
} while (0)

/* The blocks past the last group, one at a time, and the sum. */
static inline T_AVX2 float
q4_0_dec2_finish(const block_q4_0 *x, const block_q8_0 *y, int nb, int ib, __m256 acc0, __m256 acc1,
    __m256 acc2, __m256 acc3)
{
	for (; ib < nb; ib++) {
		const __m256i qx = _mm256_sub_epi8(nibbles32(x[ib].qs), _mm256_set1_epi8(8));
		const __m256i qy = _mm256_loadu_si256((const __m256i *)y[ib].qs);
		const __m256 d = _mm256_set1_ps(h2f(x[ib].d) * h2f(y[ib].d));
		acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_s8(qx, qy)), acc0);
	}
	return hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
}

size_t
q4_0_dec2_size(int n)
{
	return q4_0_dec_layout(n, sizeof(struct q4_0_dec2));
}

/* The prepared row: the groups, then the raw Q8_0 row for the tail. */
T_AVX2 void
q4_0_dec2_prep(int n, const void *vy, void *vp)
{
	const block_q8_0 *y = vy;
	const int nb = n / 32, ng = nb / 8;
	struct q4_0_dec2 *e = vp;
	for (int g = 0; g < ng; g++)
		q4_0_dec2_group(y + 8 * g, e + g);
	memcpy(e + ng, y, (size_t)nb * sizeof *y);
}

/* ref: q4_0_vec_dot_ref, against a prepared row (64-byte aligned). */
T_AVX2 void
q4_0_dec2_dot(int n, float *s, const void *vx, const void *vp)
{
	const block_q4_0 *x = vx;
	const int nb = n / 32, ng = nb / 8;
	const struct q4_0_dec2 *e = vp;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
	for (int g = 0; g < ng; g++)
		Q4_0_DEC2_GROUP(x + 8 * g, e + g);
	*s = q4_0_dec2_finish(x, (const block_q8_0 *)(e + ng), nb, 8 * ng, acc0, acc1, acc2, acc3);
}

/* ref: q4_0_vec_dot_ref (ggml_vec_dot_q4_0_q8_0): the same, each group
 * prepared as it comes. */
T_AVX2 void
q4_0_dot_avx2(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_0 *x = vx;
	const block_q8_0 *y = vy;
	const int nb = n / 32, ng = nb / 8;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
	struct q4_0_dec2 e;
	for (int g = 0; g < ng; g++) {
		q4_0_dec2_group(y + 8 * g, &e);
		Q4_0_DEC2_GROUP(x + 8 * g, &e);
	}
	*s = q4_0_dec2_finish(x, y, nb, 8 * ng, acc0, acc1, acc2, acc3);
}

/* ------------------------------------------------------------------ */
/* Activation quantizers (bit-identical to the reference)              */
/* ------------------------------------------------------------------ */

static inline T_AVX2 float
hmax_ps(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_movehdup_ps(m));
	return _mm_cvtss_f32(m);
}

/* Four vectors of eight int32 (each in int8 range) to 32 int8 in order. */
static inline T_AVX2 __m256i
pack_i32x32(__m256i i0, __m256i i1, __m256i i2, __m256i i3)
{
	const __m256i a = _mm256_packs_epi32(i0, i1);
	const __m256i b = _mm256_packs_epi32(i2, i3);
	const __m256i c = _mm256_packs_epi16(a, b);
	return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* One 32-value block as q8_0_from_float / q8_1_from_float do it; returns
 * the int sum of the quants and sets *dp to d. */
static inline T_AVX2 int
q8_block_avx2(const float *x, int8_t *qs, float *dp)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 v[4];
	__m256 amax = _mm256_setzero_ps();
	for (int k = 0; k < 4; k++) {
		v[k] = _mm256_loadu_ps(x + 8 * k);
		amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
	}
	const float mx = hmax_ps(amax);
	const float d = mx / 127;
	float id = mx != 0.0f ? 127.0f / mx : 0.0f;   /* as quant.c's q8_inv_scale */
	if (isinf(id))
		id = 0.0f;
	const __m256 mul = _mm256_set1_ps(id);
	__m256i q[4];
	for (int k = 0; k < 4; k++)
		q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], mul),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	_mm256_storeu_si256((__m256i *)qs, pack_i32x32(q[0], q[1], q[2], q[3]));
	*dp = d;
	return hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
}

/* ref: q8_0_from_float (quantize_row_q8_0_ref) */
T_AVX2 void
q8_0_quant_avx2(const float *x, void *vy, int64_t n)
{
	block_q8_0 *y = vy;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		float d;
		(void)q8_block_avx2(x + i * QK8_0, y[i].qs, &d);
		y[i].d = fp32_to_fp16(d);
	}
}

/* ref: q8_1_from_float (quantize_row_q8_1_ref): s from the int sum. */
T_AVX2 void
q8_1_quant_avx2(const float *x, void *vy, int64_t n)
{
	block_q8_1 *y = vy;
	for (int64_t i = 0; i < n / QK8_1; i++) {
		float d;
		const int sum = q8_block_avx2(x + i * QK8_1, y[i].qs, &d);
		y[i].d = fp32_to_fp16(d);
		y[i].s = fp32_to_fp16(sum * d);
	}
}

/* ref: q8_K_from_float (quantize_row_q8_K_ref).  max is the first value of
 * largest magnitude, found by comparing against the vector maximum. */
T_AVX2 void
q8_K_quant_avx2(const float *x, void *vy, int64_t n)
{
	block_q8_K *y = vy;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	const __m256i ones8 = _mm256_set1_epi8(1);
	const __m256i ones16 = _mm256_set1_epi16(1);
	const __m256i cap = _mm256_set1_epi32(127);
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		__m256 amaxv = _mm256_setzero_ps();
		for (int j = 0; j < QK_K; j += 8)
			amaxv = _mm256_max_ps(amaxv, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
		const float amax = hmax_ps(amaxv);
		float max = 0;
		const __m256 am = _mm256_set1_ps(amax);
		for (int j = 0; j < QK_K; j += 8) {
			const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
			const int m = _mm256_movemask_ps(_mm256_cmp_ps(a, am, _CMP_EQ_OQ));
			if (m) {
				max = x[j + __builtin_ctz((unsigned)m)];
				break;
			}
		}
		const float iscale = amax ? -127.f / max : 0.0f;
		if (!amax || isinf(iscale)) {   /* as the reference */
			memset(&y[i], 0, sizeof y[i]);
			continue;
		}
		const __m256 mul = _mm256_set1_ps(iscale);
		for (int j = 0; j < QK_K; j += 32) {
			__m256i q[4];
			for (int k = 0; k < 4; k++) {
				const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), mul);
				const __m256 r = _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
				q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(r), cap);
			}
			const __m256i qb = pack_i32x32(q[0], q[1], q[2], q[3]);
			_mm256_storeu_si256((__m256i *)(y[i].qs + j), qb);
			/* sums of four, then of sixteen: lanes 0 and 4 */
			__m256i t = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qb), ones16);
			t = _mm256_hadd_epi32(t, t);
			t = _mm256_hadd_epi32(t, t);
			y[i].bsums[j / 16] = (int16_t)_mm256_extract_epi32(t, 0);
			y[i].bsums[j / 16 + 1] = (int16_t)_mm256_extract_epi32(t, 4);
		}
		y[i].d = 1 / iscale;
	}
}

/* ------------------------------------------------------------------ */
/* Several activation rows against one weight row (vec_dot_n)          */
/* ------------------------------------------------------------------ */

/*
 * Rows go four at a time: each weight block is unpacked once and used for
 * four activation rows with four accumulators; leftover rows (nrc % 4) go
 * through the one-row kernel.  Per row the integer sums are the reference's;
 * only the float order differs, as for vec_dot.
 */
#define NR 4

#define DOT_N_FRAME(name, one_row, YT, BODY4) \
T_AVX2 void \
name(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nrc) \
{ \
	int r0 = 0; \
	for (; r0 + NR <= nrc; r0 += NR) { \
		const YT *y[NR]; \
		for (int r = 0; r < NR; r++) \
			y[r] = (const YT *)((const char *)vy + (size_t)(r0 + r) * by); \
		float out[NR]; \
		BODY4 \
		for (int r = 0; r < NR; r++) \
			s[(size_t)(r0 + r) * bs] = out[r]; \
	} \
	for (; r0 < nrc; r0++) \
		one_row(n, s + (size_t)r0 * bs, vx, (const char *)vy + (size_t)r0 * by); \
}

/* ref: q8_0_vec_dot_ref, per row */
#define BODY4_Q8_0 \
	const block_q8_0 *x = vx; \
	__m256 acc[NR]; \
	for (int r = 0; r < NR; r++) \
		acc[r] = _mm256_setzero_ps(); \
	for (int ib = 0; ib < n / QK8_0; ib++) { \
		const __m256i qx = _mm256_loadu_si256((const __m256i *)x[ib].qs); \
		const __m256i ax = _mm256_sign_epi8(qx, qx); \
		const float dx = h2f(x[ib].d); \
		for (int r = 0; r < NR; r++) { \
			const __m256i qy = _mm256_loadu_si256((const __m256i *)y[r][ib].qs); \
			const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)), \
			    _mm256_set1_epi16(1)); \
			acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[r][ib].d)), _mm256_cvtepi32_ps(p), acc[r]); \
		} \
	} \
	for (int r = 0; r < NR; r++) \
		out[r] = hsum_ps(acc[r]);

/* ref: q4_0_vec_dot_ref, per row */
#define BODY4_Q4_0 \
	const block_q4_0 *x = vx; \
	__m256 acc[NR]; \
	for (int r = 0; r < NR; r++) \
		acc[r] = _mm256_setzero_ps(); \
	for (int ib = 0; ib < n / QK4_0; ib++) { \
		const __m256i qx = _mm256_sub_epi8(nibbles32(x[ib].qs), _mm256_set1_epi8(8)); \
		const __m256i ax = _mm256_sign_epi8(qx, qx); \
		const float dx = h2f(x[ib].d); \
		for (int r = 0; r < NR; r++) { \
			const __m256i qy = _mm256_loadu_si256((const __m256i *)y[r][ib].qs); \
			const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(qy, qx)), \
			    _mm256_set1_epi16(1)); \
			acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(y[r][ib].d)), _mm256_cvtepi32_ps(p), acc[r]); \
		} \
	} \
	for (int r = 0; r < NR; r++) \
		out[r] = hsum_ps(acc[r]);

/* ref: q4_K_vec_dot_ref, per row (as q4_K_dot_avx2) */
#define BODY4_Q4_K \
	const block_q4_K *x = vx; \
	const __m256i m4 = _mm256_set1_epi8(0x0f); \
	__m256 acc[NR]; \
	float accm[NR]; \
	uint8_t sc[8], mn[8]; \
	for (int r = 0; r < NR; r++) { \
		acc[r] = _mm256_setzero_ps(); \
		accm[r] = 0; \
	} \
	for (int i = 0; i < n / QK_K; i++) { \
		k4_scales(x[i].scales, sc, mn); \
		const float xd = h2f(x[i].d), xm = h2f(x[i].dmin); \
		__m256i sumi[NR]; \
		for (int r = 0; r < NR; r++) { \
			sumi[r] = _mm256_setzero_si256(); \
			accm[r] += xm * y[r][i].d * k4_min_sum(y[r][i].bsums, mn); \
		} \
		for (int j = 0; j < 4; j++) { \
			const __m256i qv = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j)); \
			const __m256i lo = _mm256_and_si256(qv, m4); \
			const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), m4); \
			for (int r = 0; r < NR; r++) { \
				const int8_t *q8 = y[r][i].qs + 64 * j; \
				sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(scaled_dot(lo, q8, sc[2 * j]), \
				    scaled_dot(hi, q8 + 32, sc[2 * j + 1]))); \
			} \
		} \
		for (int r = 0; r < NR; r++) \
			acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(xd * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]); \
	} \
	for (int r = 0; r < NR; r++) \
		out[r] = hsum_ps(acc[r]) - accm[r];

/* ref: q6_K_vec_dot_ref, per row (as q6_K_dot_avx2) */
#define BODY4_Q6_K \
	const block_q6_K *x = vx; \
	__m256 acc[NR]; \
	__m256i q[4]; \
	for (int r = 0; r < NR; r++) \
		acc[r] = _mm256_setzero_ps(); \
	for (int i = 0; i < n / QK_K; i++) { \
		const int8_t *sc = x[i].scales; \
		const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)); \
		const float xd = h2f(x[i].d); \
		__m256i sumi[NR]; \
		for (int r = 0; r < NR; r++) \
			sumi[r] = _mm256_setzero_si256(); \
		for (int h = 0; h < 2; h++) { \
			q6_K_unpack(x[i].ql + 64 * h, x[i].qh + 32 * h, q); \
			for (int k = 0; k < 4; k++) { \
				const __m256i sv = scale_pair(sc[8 * h + 2 * k], sc[8 * h + 2 * k + 1]); \
				for (int r = 0; r < NR; r++) { \
					const __m256i p = _mm256_maddubs_epi16(q[k], \
					    _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 128 * h + 32 * k))); \
					sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, sv)); \
				} \
			} \
		} \
		for (int r = 0; r < NR; r++) { \
			const __m256i corr = _mm256_slli_epi32(bsums_dot(y[r][i].bsums, sc16), 5); \
			acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(xd * y[r][i].d), \
			    _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[r], corr)), acc[r]); \
		} \
	} \
	for (int r = 0; r < NR; r++) \
		out[r] = hsum_ps(acc[r]);

DOT_N_FRAME(q8_0_dot_n_avx2, q8_0_dot_avx2, block_q8_0, BODY4_Q8_0)
DOT_N_FRAME(q4_0_dot_n_avx2, q4_0_dot_avx2, block_q8_0, BODY4_Q4_0)
DOT_N_FRAME(q4_K_dot_n_avx2, q4_K_dot_avx2, block_q8_K, BODY4_Q4_K)
DOT_N_FRAME(q6_K_dot_n_avx2, q6_K_dot_avx2, block_q8_K, BODY4_Q6_K)

#endif /* QUANT_X86 */
