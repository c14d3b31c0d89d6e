/*
 * quant_simd_int.h: what the x86 SIMD kernel files share, and nothing
 * else includes: the target attributes, the small inline helpers
 * (horizontal sums, fp16, int8 dot steps, nibble and scale unpacking), the
 * 32-weight kernel bodies that are expanded once per level, and the
 * prototypes of the kernels that quant_simd.c puts in its tables.
 *
 * Files: quant_avx2.c (AVX2 + FMA + F16C kernels and activation
 * quantizers), quant_avx512.c (AVX-512 + VNNI kernels), quant_simd.c (the
 * level choice and the dispatch tables).  Only those three include this.
 *
 * Every kernel is compiled with a target attribute (T_AVX2, T_AVX512)
 * rather than with the build's -march, so a PORTABLE build carries them
 * too; none may be called unless cpu.c says the CPU runs that level.
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
 * multiple of the block size.
 */
#ifndef ENGINE_QUANT_SIMD_INT_H
#define ENGINE_QUANT_SIMD_INT_H

#include "engine/quant.h"

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

/* Shared by the AVX2 and AVX-512 K-quant kernels. */

/* sum_j bsums[j] * m[j] over the 16 sub-blocks of 16, m as int16. */
static inline T_AVX2 __m256i
bsums_dot(const int16_t *bsums, __m256i m16)
{
	return _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)bsums), m16);
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


/* ------------------------------------------------------------------ */
/* The kernels, by file, as quant_simd.c's tables name them           */
/* ------------------------------------------------------------------ */

/* quant_avx2.c: one-row dot products (quant_vec_dot_fn) */
T_AVX2 void f32_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void f16_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void bf16_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q4_0_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q4_1_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q5_0_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q5_1_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q8_0_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q2_K_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q3_K_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q4_K_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q5_K_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q6_K_dot_avx2(int n, float *s, const void *vx, const void *vy);
T_AVX2 void q8_K_dot_avx2(int n, float *s, const void *vx, const void *vy);

/* quant_avx2.c: activation quantizers (quant_from_float_fn) */
T_AVX2 void q8_0_quant_avx2(const float *x, void *vy, int64_t n);
T_AVX2 void q8_1_quant_avx2(const float *x, void *vy, int64_t n);
T_AVX2 void q8_K_quant_avx2(const float *x, void *vy, int64_t n);

/* The prepared Q4_0 activation rows of both levels: whole groups of eight
 * blocks (group bytes each), then the raw Q8_0 row for the blocks past the
 * last group. */
static inline size_t
q4_0_dec_layout(int n, size_t group)
{
	const int nb = n / 32;
	return (size_t)(nb / 8) * group + (size_t)nb * sizeof(block_q8_0);
}

/* quant_avx2.c: Q4_0 decoding against a prepared activation row */
size_t q4_0_dec2_size(int n);
T_AVX2 void q4_0_dec2_prep(int n, const void *vy, void *vp);
T_AVX2 void q4_0_dec2_dot(int n, float *s, const void *vx, const void *vp);

/* quant_avx2.c: several activation rows (quant_vec_dot_n_fn) */
T_AVX2 void q8_0_dot_n_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nrc);
T_AVX2 void q4_0_dot_n_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nrc);
T_AVX2 void q4_K_dot_n_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nrc);
T_AVX2 void q6_K_dot_n_avx2(int n, float *s, size_t bs, const void *vx, const void *vy, size_t by, int nrc);

/* quant_avx512.c: one-row dot products (quant_vec_dot_fn) */
T_AVX512 void q4_1_dot_vnni(int n, float *s, const void *vx, const void *vy);
T_AVX512 void q5_0_dot_vnni(int n, float *s, const void *vx, const void *vy);
T_AVX512 void q5_1_dot_vnni(int n, float *s, const void *vx, const void *vy);
T_AVX512 void q4_0_dot_avx512(int n, float *s, const void *vx, const void *vy);
T_AVX512 void q8_0_dot_avx512(int n, float *s, const void *vx, const void *vy);
size_t q4_0_dec_size(int n);
T_AVX512 void q4_0_dec_prep_avx512(int n, const void *vy, void *vp);
T_AVX512 void q4_0_dec_dot_avx512(int n, float *s, const void *vx, const void *vp);
T_AVX512 void q4_K_dot_avx512(int n, float *s, const void *vx, const void *vy);
T_AVX512 void q6_K_dot_avx512(int n, float *s, const void *vx, const void *vy);

#endif /* QUANT_X86 */

#endif
