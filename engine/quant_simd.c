/*
 * quant_simd.c: x86 SIMD kernels for the dot products and activation
 * quantizers of quant.c, chosen at run time.
 *
 * Every kernel is compiled with a target attribute rather than with the
 * build's -march, so a PORTABLE build carries them too; quant.c asks once
 * (through quant_simd_vec_dot etc.) for the level of the family cpu.c
 * chose (the best this CPU runs, or LLAMA2_CHAT_ISA's; "scalar" leaves the
 * reference in place), and puts those kernels in its table.  Two levels:
 *   "avx2"         AVX2 + FMA + F16C (Haswell, Zen 1 and later);
 *   "avx512-vnni"  AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4): the same
 *                  algorithms, with vpdpbusd for the int8 sums and 512-bit
 *                  registers where the block layout allows.
 *
 * Contract with the reference.  A dot-product kernel computes exactly the
 * same integer sums per block as the scalar reference next to whose name it
 * is written; only the order of the float operations that scale and add
 * those sums differs.  The tests hold them to
 *     |simd - ref| <= 1e-5 * sum_i |x_i * y_i| + 1e-6
 * (x, y the dequantized operands).  The activation quantizers are
 * bit-identical to the reference ones: same float operations in the same
 * order, and roundf's ties-away-from-zero rebuilt from a truncation.
 *
 * The kernels assume what the quantizers guarantee: activation quants lie
 * in [-127, 127] (vpmaddubsw and vpsignb are exact there), and n is a
 * multiple of the block size.  The vec_dot_n kernels (Q4_0, Q8_0, Q4_K,
 * Q6_K) unpack a weight block once for four activation rows; they follow
 * the same contract per row.  Which variant sits at which level was chosen
 * by measurement on a Zen-class AVX-512 machine (e.g. vpdpbusd + vpmulld
 * wins for Q6_K, loses badly for Q4_K).
 */
#include "engine/quant.h"
#include "engine/cpu.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define QUANT_X86 1
#include <immintrin.h>
#endif

#ifdef QUANT_X86

#define T_AVX2 __attribute__((target("avx2,fma,f16c")))
#define T_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static inline T_AVX2 float
hsum_ps(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline T_AVX2 int
hsum_epi32_128(__m128i v)
{
	v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
	v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
	return _mm_cvtsi128_si32(v);
}

static inline T_AVX2 int
hsum_epi32(__m256i v)
{
	return hsum_epi32_128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

static inline T_AVX2 float
h2f(fp16_t h)
{
	return _cvtsh_ss(h);
}

/* Eight int32 sums of x*y over groups of four, x and y int8 in
 * [-127, 127]: |x| as unsigned times y with x's sign, two products per
 * int16 (at most 2*127*127, no saturation), then pairs to int32. */
static inline T_AVX2 __m256i
dot_s8(__m256i x, __m256i y)
{
	const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static inline T_AVX512 __m256i
dot_s8_vnni(__m256i x, __m256i y)
{
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* Eight int32 sums of u*y over groups of four, u unsigned <= 63. */
static inline T_AVX2 __m256i
dot_u8(__m256i u, __m256i y)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

static inline T_AVX512 __m256i
dot_u8_vnni(__m256i u, __m256i y)
{
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y);
}

/* The 32 nibbles of a 32-weight block in weight order: bytes 0..15 the low
 * nibbles (weights 0..15), bytes 16..31 the high ones (weights 16..31). */
static inline T_AVX2 __m256i
nibbles32(const uint8_t *qs)
{
	const __m128i t = _mm_loadu_si128((const __m128i *)qs);
	const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* 0xff in byte j where bit j of the 32-bit qh is set. */
static inline T_AVX2 __m256i
bits32_to_bytes(const uint8_t *qh)
{
	uint32_t h;
	memcpy(&h, qh, sizeof h);
	const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
	    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
	const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), shuf);
	return _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
}

/* An int16 vector whose low 128 bits hold a and high 128 bits b: the
 * multiplier for two 16-weight sub-blocks after vpmaddubsw. */
static inline T_AVX2 __m256i
scale_pair(int a, int b)
{
	return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a));
}

/* Scalar copies of quant.c's unpacking of the K-quant scales (12 bytes,
 * run once per 256 weights, not worth vectorising). */
static inline void
k4_scales(const uint8_t *q, uint8_t *sc, uint8_t *mn)
{
	/* Four bytes at a time: scales 0..3 and mins 0..3 are the low six bits
	 * of bytes 0..3 and 4..7; scales/mins 4..7 take their low nibbles from
	 * bytes 8..11 and their top two bits from the top of bytes 0..7. */
	uint32_t u[3], v[4];
	memcpy(u, q, 12);
	v[0] = u[0] & 0x3f3f3f3f;
	v[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
	v[2] = u[1] & 0x3f3f3f3f;
	v[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
	memcpy(sc, v, 8);
	memcpy(mn, v + 2, 8);
}

/* ------------------------------------------------------------------ */
/* Dot products, one kernel body per type, instantiated per level      */
/* ------------------------------------------------------------------ */

/*
 * Each 32-weight body is a macro expanded twice, with the AVX2 int8 sums
 * and with the VNNI ones, so the two levels cannot drift apart.
 */

/*
 * The 32-weight kernels: STEP adds one block to an accumulator; blocks go
 * alternately to two accumulators so that consecutive FMAs do not wait on
 * each other (one chain would cost 4 cycles a block).
 */
#define TWO_ACC_LOOP(STEP) \
	__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(); \
	const int nb = n / 32; \
	int ib = 0; \
	for (; ib + 2 <= nb; ib += 2) { \
		STEP(acc0, ib); \
		STEP(acc1, ib + 1); \
	} \
	if (ib < nb) \
		STEP(acc0, ib); \
	const float sumv = hsum_ps(_mm256_add_ps(acc0, acc1));

/* ref: q8_0_vec_dot_ref (ggml_vec_dot_q8_0_q8_0) */
#define STEP_Q8_0(acc, b) do { \
	const __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs); \
	const __m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs); \
	const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DOT(qx, qy)), acc); \
} while (0)
#define BODY_Q8_0 \
	const block_q8_0 *x = vx, *y = vy; \
	TWO_ACC_LOOP(STEP_Q8_0) \
	*s = sumv;

/* ref: q4_0_vec_dot_ref (ggml_vec_dot_q4_0_q8_0): weights q - 8 */
#define STEP_Q4_0(acc, b) do { \
	const __m256i qx = _mm256_sub_epi8(nibbles32(x[b].qs), _mm256_set1_epi8(8)); \
	const __m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs); \
	const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DOT(qx, qy)), acc); \
} while (0)
#define BODY_Q4_0 \
	const block_q4_0 *x = vx; \
	const block_q8_0 *y = vy; \
	TWO_ACC_LOOP(STEP_Q4_0) \
	*s = sumv;

/* ref: q4_1_vec_dot_ref (ggml_vec_dot_q4_1_q8_1): unsigned q, plus m*s */
#define STEP_Q4_1(acc, b) do { \
	const __m256i qx = nibbles32(x[b].qs); \
	const __m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs); \
	const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DOT(qx, qy)), acc); \
	summ += h2f(x[b].m) * h2f(y[b].s); \
} while (0)
#define BODY_Q4_1 \
	const block_q4_1 *x = vx; \
	const block_q8_1 *y = vy; \
	float summ = 0; \
	TWO_ACC_LOOP(STEP_Q4_1) \
	*s = sumv + summ;

/* ref: q5_0_vec_dot_ref (ggml_vec_dot_q5_0_q8_0): a clear fifth bit makes
 * the byte nibble | 0xf0, which is nibble - 16 as int8. */
#define STEP_Q5_0(acc, b) do { \
	const __m256i qx = _mm256_or_si256(nibbles32(x[b].qs), \
	    _mm256_andnot_si256(bits32_to_bytes(x[b].qh), _mm256_set1_epi8((char)0xf0))); \
	const __m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs); \
	const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DOT(qx, qy)), acc); \
} while (0)
#define BODY_Q5_0 \
	const block_q5_0 *x = vx; \
	const block_q8_0 *y = vy; \
	TWO_ACC_LOOP(STEP_Q5_0) \
	*s = sumv;

/* ref: q5_1_vec_dot_ref (ggml_vec_dot_q5_1_q8_1) */
#define STEP_Q5_1(acc, b) do { \
	const __m256i qx = _mm256_or_si256(nibbles32(x[b].qs), \
	    _mm256_and_si256(bits32_to_bytes(x[b].qh), _mm256_set1_epi8(0x10))); \
	const __m256i qy = _mm256_loadu_si256((const __m256i *)y[b].qs); \
	const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)); \
	acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(DOT(qx, qy)), acc); \
	summ += h2f(x[b].m) * h2f(y[b].s); \
} while (0)
#define BODY_Q5_1 \
	const block_q5_1 *x = vx; \
	const block_q8_1 *y = vy; \
	float summ = 0; \
	TWO_ACC_LOOP(STEP_Q5_1) \
	*s = sumv + summ;

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

/* sum_j bsums[j] * m[j] over the 16 sub-blocks of 16, m as int16. */
static inline T_AVX2 __m256i
bsums_dot(const int16_t *bsums, __m256i m16)
{
	return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), m16);
}

/* ref: q2_K_vec_dot_ref (ggml_vec_dot_q2_K_q8_K): value 128k + 32s + l is
 * bits 2s of qs[32k + l]; mins through bsums. */
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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

/* The four 32-byte vectors of unsigned 6-bit Q6_K quants (q + 32) for one
 * half super-block: values l, l+32, l+64, l+96 of that half. */
static inline T_AVX2 void
q6_K_unpack(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const __m256i m30 = _mm256_set1_epi8(0x30);
	const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
	const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
	const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
	/* 16-bit shifts move bits across bytes; the 0x30 mask drops them. */
	q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
	q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
	q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
	q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
	    _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
}

/* ref: q6_K_vec_dot_ref (ggml_vec_dot_q6_K_q8_K): unsigned q = value + 32,
 * so sum sc*(q-32)*y = sum sc*q*y - 32*sum sc*bsum, all in int32. */
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void q8_0_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q8_0 }
static T_AVX2 void q4_0_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q4_0 }
static T_AVX2 void q5_0_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q5_0 }
#undef DOT
#define DOT dot_u8
static T_AVX2 void q4_1_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q4_1 }
static T_AVX2 void q5_1_dot_avx2(int n, float *s, const void *vx, const void *vy) { BODY_Q5_1 }
#undef DOT
#define DOT dot_s8_vnni
static T_AVX512 void q5_0_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q5_0 }
#undef DOT
#define DOT dot_u8_vnni
static T_AVX512 void q4_1_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q4_1 }
static T_AVX512 void q5_1_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q5_1 }
#undef DOT

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
static T_AVX2 void
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
static T_AVX2 void
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
static T_AVX2 void
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
/* AVX-512 versions of the hot K-quant kernels                         */
/* ------------------------------------------------------------------ */

/* Two 256-bit halves into one 512-bit register. */
static inline T_AVX512 __m512i
cat256(__m256i lo, __m256i hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline T_AVX512 float
hsum_ps512(__m512 v)
{
	return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

/* ref: q4_K_vec_dot_ref.  Per 512-bit step the 32 qs bytes of sub-blocks
 * 2k (low nibbles) and 2k+1 (high) are broadcast to both halves and the
 * high half shifted, so the 64 activations load straight; vpmaddubsw, then
 * vpdpwssd against the two sub-block scales (spread by one vpermw) sums
 * the whole super-block in int32 lanes; mins through bsums in four float
 * lanes; one reduction per row. */
static T_AVX512 void
q4_K_dot_avx512(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_K *x = vx;
	const block_q8_K *y = vy;
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	/* word j of the scale vector for 32 bytes j: sub-block 2k (low half),
	 * 2k + 1 (high half) */
	const __m512i sel = _mm512_set_epi64(0x0001000100010001LL, 0x0001000100010001LL,
	    0x0001000100010001LL, 0x0001000100010001LL, 0, 0, 0, 0);
	__m512 acc = _mm512_setzero_ps();
	__m128 accm = _mm_setzero_ps();
	uint8_t sc[8], mn[8];
	for (int i = 0; i < n / QK_K; i++) {
		k4_scales(x[i].scales, sc, mn);
		/* the mins as k4_min_sum, kept in four float lanes */
		const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)y[i].bsums),
		    _mm_loadu_si128((const __m128i *)(y[i].bsums + 8)));
		const __m128i m32 = _mm_madd_epi16(pairs, _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn)));
		accm = _mm_fmadd_ps(_mm_set1_ps(h2f(x[i].dmin) * y[i].d), _mm_cvtepi32_ps(m32), accm);
		const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc)));
		__m512i sumi = _mm512_setzero_si512();
		for (int k = 0; k < 4; k++) {
			/* qs[32k..32k+31] in both halves; the high half shifted
			 * down: sub-block 2k then 2k + 1, as the activations. */
			const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * k)));
			const __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xffff0000u, v, 4), m4);
			const __m512i qy = _mm512_loadu_si512((const void *)(y[i].qs + 64 * k));
			const __m512i sv = _mm512_permutexvar_epi16(_mm512_add_epi16(sel, _mm512_set1_epi16((short)(2 * k))), sc16);
			sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q, qy), sv);
		}
		acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(x[i].d) * y[i].d), _mm512_cvtepi32_ps(sumi), acc);
	}
	accm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
	accm = _mm_add_ss(accm, _mm_movehdup_ps(accm));
	*s = hsum_ps512(acc) - _mm_cvtss_f32(accm);
}

/* ref: q6_K_vec_dot_ref.  Each half super-block's four unpacked vectors
 * go two by two through 512-bit vpdpbusd; int32 lane l of a pair holds
 * four products of sub-block g + l/4, and is then times that scale (one
 * vpermd spreads the 16 scales; measured faster here than vpmaddubsw with
 * int16 scales). */
static T_AVX512 void
q6_K_dot_avx512(int n, float *s, const void *vx, const void *vy)
{
	const block_q6_K *x = vx;
	const block_q8_K *y = vy;
	__m256 acc = _mm256_setzero_ps();
	__m256i q[4];
	for (int i = 0; i < n / QK_K; i++) {
		const int8_t *sc = x[i].scales;
		const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
		const __m256i corr = bsums_dot(y[i].bsums, sc16);
		const __m512i sc32 = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sc));
		__m512i sumi = _mm512_setzero_si512();
		for (int h = 0; h < 2; h++) {
			q6_K_unpack(x[i].ql + 64 * h, x[i].qh + 32 * h, q);
			const int8_t *q8 = y[i].qs + 128 * h;
			for (int k = 0; k < 4; k += 2) {
				const int g = 8 * h + 2 * k;
				const __m512i qq = cat256(q[k], q[k + 1]);
				const __m512i yy = _mm512_loadu_si512((const void *)(q8 + 32 * k));
				const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qq, yy);
				const __m512i idx = _mm512_setr_epi32(g, g, g, g, g + 1, g + 1, g + 1, g + 1,
				    g + 2, g + 2, g + 2, g + 2, g + 3, g + 3, g + 3, g + 3);
				sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(p, _mm512_permutexvar_epi32(idx, sc32)));
			}
		}
		__m256i s256 = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
		s256 = _mm256_sub_epi32(s256, _mm256_slli_epi32(corr, 5));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(s256), acc);
	}
	*s = hsum_ps(acc);
}

/* |x| and y with x's sign, as dot_s8 does, for vpdpbusd at 512 bits. */
#define SIGNED_PAIR(qx, qy, ux, sy) \
	const __m512i ux = _mm512_abs_epi8(qx); \
	const __m512i sy = _mm512_mask_sub_epi8(qy, _mm512_movepi8_mask(qx), _mm512_setzero_si512(), qy)

/* Blocks b and b+1 of a 32-weight type: x quants (made by XQ), Q8_0 y. */
#define STEP512(acc, b, XQ) do { \
	const __m512i qx = cat256(XQ(b), XQ(b + 1)); \
	const __m512i qy = cat256(_mm256_loadu_si256((const __m256i *)y[b].qs), \
	    _mm256_loadu_si256((const __m256i *)y[b + 1].qs)); \
	SIGNED_PAIR(qx, qy, ux, sy); \
	const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ux, sy); \
	const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(h2f(x[b].d) * h2f(y[b].d)), \
	    _mm256_set1_ps(h2f(x[b + 1].d) * h2f(y[b + 1].d)), 1); \
	acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc); \
} while (0)

/* Four blocks per step into two accumulators; an odd pair and an odd
 * block at the end go through the same step / the 256-bit one. */
#define BODY512(XQ) \
	const int nb = n / 32; \
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(); \
	int ib = 0; \
	for (; ib + 4 <= nb; ib += 4) { \
		STEP512(acc0, ib, XQ); \
		STEP512(acc1, ib + 2, XQ); \
	} \
	if (ib + 2 <= nb) { \
		STEP512(acc0, ib, XQ); \
		ib += 2; \
	} \
	float sum = hsum_ps512(_mm512_add_ps(acc0, acc1)); \
	if (ib < nb) \
		sum += h2f(x[ib].d) * h2f(y[ib].d) * \
		    (float)hsum_epi32(dot_s8_vnni(XQ(ib), _mm256_loadu_si256((const __m256i *)y[ib].qs))); \
	*s = sum;

#define XQ_Q8_0(b) _mm256_loadu_si256((const __m256i *)x[b].qs)
#define XQ_Q4_0(b) _mm256_sub_epi8(nibbles32(x[b].qs), _mm256_set1_epi8(8))


/* The nibbles of blocks b and b+1 in weight order, 0..15 (unsigned):
 * [low b | high b | low b+1 | high b+1] by one lane shuffle. */
static inline T_AVX512 __m512i
nibbles64(const uint8_t *qs0, const uint8_t *qs1)
{
	const __m256i t = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)qs1),
	    _mm_loadu_si128((const __m128i *)qs0));
	const __m512i v = cat256(t, _mm256_srli_epi16(t, 4));
	return _mm512_and_si512(_mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0f));
}

/* ref: q4_0_vec_dot_ref: sum (q-8)*y = sum q*y - 8*sum y, two vpdpbusd. */
#define STEP512_Q4_0(acc, b) do { \
	const __m512i qx = nibbles64(x[b].qs, x[b + 1].qs); \
	const __m512i qy = cat256(_mm256_loadu_si256((const __m256i *)y[b].qs), \
	    _mm256_loadu_si256((const __m256i *)y[b + 1].qs)); \
	const __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx, qy), \
	    _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), qy)); \
	const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(h2f(x[b].d) * h2f(y[b].d)), \
	    _mm256_set1_ps(h2f(x[b + 1].d) * h2f(y[b + 1].d)), 1); \
	acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc); \
} while (0)

/*
 * Eight blocks a step for Q4_0 and Q8_0.  The fp16 scales of eight blocks
 * are picked out of 64-byte loads by vpermt2w (the block stride is 9 words
 * for Q4_0, 17 for Q8_0), converted together and multiplied, then spread
 * over each block's eight int32 lanes by vpermps; the products go into
 * float lanes with one reduction at the end of the row.
 */
static const short d_idx9[32] = { 0, 9, 18, 27, 36, 45, 54, 63 };
static const short d_idx17[32] = { 0, 17, 34, 51, 0, 17, 34, 51 };

/* d of Q8_0 blocks 0..7 at p (272 bytes): 0..3 from bytes 0..127, 4..7
 * from bytes 136..263. */
static inline T_AVX512 __m256
d8_q8_0(const void *p)
{
	const char *c = p;
	const __m512i idx = _mm512_loadu_si512((const void *)d_idx17);
	const __m512i lo = _mm512_permutex2var_epi16(_mm512_loadu_si512((const void *)c), idx,
	    _mm512_loadu_si512((const void *)(c + 64)));
	const __m512i hi = _mm512_permutex2var_epi16(_mm512_loadu_si512((const void *)(c + 136)), idx,
	    _mm512_loadu_si512((const void *)(c + 200)));
	return _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_mask_mov_epi16(lo, 0xf0, hi)));
}

/* Lanes 0..7 d[2k], lanes 8..15 d[2k+1]: dv is eight scales. */
static inline T_AVX512 __m512
d_pair(__m512 dv, int k)
{
	const __m512i idx = _mm512_add_epi32(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
	    _mm512_set1_epi32(2 * k));
	return _mm512_permutexvar_ps(idx, dv);
}

/*
 * Q4_0: the 16 qs bytes of blocks b and b+1 each go to both 128-bit lanes
 * of a half (one broadcast load), and one AND keeps the low nibbles in the
 * first lane and the high nibbles, still times 16, in the second: bytes
 * 0..15 of block b are weights 0..15, bytes 16..31 are 16 * weights
 * 16..31.  Against E (8 for low lanes, 128 for high ones) vpdpbusd gives
 * the -8 offset at the same scale, so each int32 lane is (q - 8) . y, times
 * 16 in the high lanes (|16 * 4 * 8 * 127| < 2^24: exact as float).  The
 * scales for the high lanes are d / 16, exact too, so the float products
 * are the ones without the factor.  dt holds d[0..7] then d[0..7] / 16.
 */
static inline T_AVX512 __m512
d_pair16(__m512 dt, int k)
{
	const __m512i idx = _mm512_add_epi32(_mm512_set_epi32(9, 9, 9, 9, 1, 1, 1, 1, 8, 8, 8, 8, 0, 0, 0, 0),
	    _mm512_set1_epi32(2 * k));
	return _mm512_permutexvar_ps(idx, dt);
}

#define Q4_0_PAIR(acc, b, k) do { \
	const __m512i qx = _mm512_and_si512(cat256( \
	    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x[b].qs)), \
	    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x[b + 1].qs))), mlh); \
	const __m512i qy = cat256(_mm256_loadu_si256((const __m256i *)y[b].qs), \
	    _mm256_loadu_si256((const __m256i *)y[b + 1].qs)); \
	const __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx, qy), \
	    _mm512_dpbusd_epi32(_mm512_setzero_si512(), e8, qy)); \
	acc = _mm512_fmadd_ps(d_pair16(dt, k), _mm512_cvtepi32_ps(p), acc); \
} while (0)

static T_AVX512 void
q4_0_dot_avx512(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_0 *x = vx;
	const block_q8_0 *y = vy;
	const int nb = n / 32;
	const __m512i mlh = _mm512_set_epi64(
	    (long long)0xf0f0f0f0f0f0f0f0ULL, (long long)0xf0f0f0f0f0f0f0f0ULL, 0x0f0f0f0f0f0f0f0fLL, 0x0f0f0f0f0f0f0f0fLL,
	    (long long)0xf0f0f0f0f0f0f0f0ULL, (long long)0xf0f0f0f0f0f0f0f0ULL, 0x0f0f0f0f0f0f0f0fLL, 0x0f0f0f0f0f0f0f0fLL);
	const __m512i e8 = _mm512_set_epi64(
	    (long long)0x8080808080808080ULL, (long long)0x8080808080808080ULL, 0x0808080808080808LL, 0x0808080808080808LL,
	    (long long)0x8080808080808080ULL, (long long)0x8080808080808080ULL, 0x0808080808080808LL, 0x0808080808080808LL);
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
	int ib = 0;
	for (; ib + 8 <= nb; ib += 8) {
		const char *xc = (const char *)(x + ib);
		const __m512i dx = _mm512_permutex2var_epi16(_mm512_loadu_si512((const void *)xc),
		    _mm512_loadu_si512((const void *)d_idx9), _mm512_loadu_si512((const void *)(xc + 64)));
		const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(dx)), d8_q8_0(y + ib));
		const __m512 dt = _mm512_insertf32x8(_mm512_castps256_ps512(d),
		    _mm256_mul_ps(d, _mm256_set1_ps(1.0f / 16)), 1);
		Q4_0_PAIR(acc0, ib, 0);
		Q4_0_PAIR(acc1, ib + 2, 1);
		Q4_0_PAIR(acc2, ib + 4, 2);
		Q4_0_PAIR(acc3, ib + 6, 3);
	}
	acc0 = _mm512_add_ps(acc0, acc2);
	acc1 = _mm512_add_ps(acc1, acc3);
	for (; ib + 2 <= nb; ib += 2)
		STEP512_Q4_0(acc0, ib);
	float sum = hsum_ps512(_mm512_add_ps(acc0, acc1));
	if (ib < nb)
		sum += h2f(x[ib].d) * h2f(y[ib].d) *
		    (float)hsum_epi32(dot_s8_vnni(XQ_Q4_0(ib), _mm256_loadu_si256((const __m256i *)y[ib].qs)));
	*s = sum;
}

#define Q8_0_PAIR(acc, b, dv, k) do { \
	const __m512i qx = cat256(_mm256_loadu_si256((const __m256i *)x[b].qs), \
	    _mm256_loadu_si256((const __m256i *)x[b + 1].qs)); \
	const __m512i qy = cat256(_mm256_loadu_si256((const __m256i *)y[b].qs), \
	    _mm256_loadu_si256((const __m256i *)y[b + 1].qs)); \
	SIGNED_PAIR(qx, qy, ux, sy); \
	const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ux, sy); \
	acc = _mm512_fmadd_ps(d_pair(dv, k), _mm512_cvtepi32_ps(p), acc); \
} while (0)

/* ref: q8_0_vec_dot_ref; eight blocks a step as q4_0_dot_avx512. */
static T_AVX512 void
q8_0_dot_avx512(int n, float *s, const void *vx, const void *vy)
{
	const block_q8_0 *x = vx, *y = vy;
	const int nb = n / 32;
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
	int ib = 0;
	for (; ib + 8 <= nb; ib += 8) {
		const __m512 dv = _mm512_castps256_ps512(_mm256_mul_ps(d8_q8_0(x + ib), d8_q8_0(y + ib)));
		Q8_0_PAIR(acc0, ib, dv, 0);
		Q8_0_PAIR(acc1, ib + 2, dv, 1);
		Q8_0_PAIR(acc2, ib + 4, dv, 2);
		Q8_0_PAIR(acc3, ib + 6, dv, 3);
	}
	acc0 = _mm512_add_ps(acc0, acc2);
	acc1 = _mm512_add_ps(acc1, acc3);
	for (; ib + 2 <= nb; ib += 2)
		STEP512(acc0, ib, XQ_Q8_0);
	float sum = hsum_ps512(_mm512_add_ps(acc0, acc1));
	if (ib < nb)
		sum += h2f(x[ib].d) * h2f(y[ib].d) *
		    (float)hsum_epi32(dot_s8_vnni(XQ_Q8_0(ib), _mm256_loadu_si256((const __m256i *)y[ib].qs)));
	*s = sum;
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
static T_AVX2 void \
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

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

struct level {
	const char *name;
	int (*supported)(void);
	quant_vec_dot_fn dot[QT_COUNT];
	quant_from_float_fn quant[QT_COUNT];
	quant_vec_dot_n_fn dot_n[QT_COUNT];
};

static int
have_avx2(void)
{
	return cpu_has(CPU_AVX2);
}

static int
have_avx512(void)
{
	return cpu_has(CPU_AVX512);
}

/* Best first. */
static const struct level levels[] = {
	{
		"avx512-vnni", have_avx512,
		.dot = {
			[QT_F32] = f32_dot_avx2, [QT_F16] = f16_dot_avx2, [QT_BF16] = bf16_dot_avx2,
			[QT_Q4_0] = q4_0_dot_avx512, [QT_Q4_1] = q4_1_dot_vnni,
			[QT_Q5_0] = q5_0_dot_vnni, [QT_Q5_1] = q5_1_dot_vnni,
			[QT_Q8_0] = q8_0_dot_avx512,
			[QT_Q2_K] = q2_K_dot_avx2, [QT_Q3_K] = q3_K_dot_avx2,
			[QT_Q4_K] = q4_K_dot_avx512, [QT_Q5_K] = q5_K_dot_avx2,
			[QT_Q6_K] = q6_K_dot_avx512, [QT_Q8_K] = q8_K_dot_avx2,
		},
		.quant = {
			[QT_Q8_0] = q8_0_quant_avx2, [QT_Q8_1] = q8_1_quant_avx2,
			[QT_Q8_K] = q8_K_quant_avx2,
		},
		.dot_n = {
			[QT_Q4_0] = q4_0_dot_n_avx2, [QT_Q8_0] = q8_0_dot_n_avx2,
			[QT_Q4_K] = q4_K_dot_n_avx2, [QT_Q6_K] = q6_K_dot_n_avx2,
		},
	},
	{
		"avx2", have_avx2,
		.dot = {
			[QT_F32] = f32_dot_avx2, [QT_F16] = f16_dot_avx2, [QT_BF16] = bf16_dot_avx2,
			[QT_Q4_0] = q4_0_dot_avx2, [QT_Q4_1] = q4_1_dot_avx2,
			[QT_Q5_0] = q5_0_dot_avx2, [QT_Q5_1] = q5_1_dot_avx2,
			[QT_Q8_0] = q8_0_dot_avx2,
			[QT_Q2_K] = q2_K_dot_avx2, [QT_Q3_K] = q3_K_dot_avx2,
			[QT_Q4_K] = q4_K_dot_avx2, [QT_Q5_K] = q5_K_dot_avx2,
			[QT_Q6_K] = q6_K_dot_avx2, [QT_Q8_K] = q8_K_dot_avx2,
		},
		.quant = {
			[QT_Q8_0] = q8_0_quant_avx2, [QT_Q8_1] = q8_1_quant_avx2,
			[QT_Q8_K] = q8_K_quant_avx2,
		},
		.dot_n = {
			[QT_Q4_0] = q4_0_dot_n_avx2, [QT_Q8_0] = q8_0_dot_n_avx2,
			[QT_Q4_K] = q4_K_dot_n_avx2, [QT_Q6_K] = q6_K_dot_n_avx2,
		},
	},
};

#define NLEVELS (int)(sizeof levels / sizeof levels[0])

static const struct level *
level_named(const char *name)
{
	for (int i = 0; i < NLEVELS; i++)
		if (name != NULL && strcmp(levels[i].name, name) == 0)
			return levels[i].supported() ? &levels[i] : NULL;
	return NULL;
}

/* The family cpu.c chose (LLAMA2_CHAT_ISA or the best the CPU has). */
static const struct level *
level_best(void)
{
	switch (cpu_isa()) {
	case CPU_AVX512: return &levels[0];
	case CPU_AVX2: return &levels[1];
	default: return NULL;
	}
}

static int
type_ok(int type)
{
	return type >= 0 && type < QT_COUNT;
}

quant_vec_dot_fn
quant_simd_vec_dot_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->dot[type] : NULL;
}

quant_from_float_fn
quant_simd_from_float_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->quant[type] : NULL;
}

quant_vec_dot_n_fn
quant_simd_vec_dot_n_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->dot_n[type] : NULL;
}

quant_vec_dot_fn
quant_simd_vec_dot(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->dot[type] : NULL;
}

quant_from_float_fn
quant_simd_from_float(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->quant[type] : NULL;
}

quant_vec_dot_n_fn
quant_simd_vec_dot_n(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->dot_n[type] : NULL;
}

const char *
quant_simd_name(void)
{
	const struct level *l = level_best();
	return l != NULL ? l->name : "scalar";
}

#else /* !QUANT_X86: the scalar reference is all there is. */

quant_vec_dot_fn quant_simd_vec_dot_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_from_float_fn quant_simd_from_float_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_vec_dot_n_fn quant_simd_vec_dot_n_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_vec_dot_fn quant_simd_vec_dot(int type) { (void)type; return NULL; }
quant_from_float_fn quant_simd_from_float(int type) { (void)type; return NULL; }
quant_vec_dot_n_fn quant_simd_vec_dot_n(int type) { (void)type; return NULL; }
const char *quant_simd_name(void) { return "scalar"; }

#endif
