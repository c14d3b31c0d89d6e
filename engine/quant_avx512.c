/*
 * quant_avx512.c: the AVX-512 F/BW/VL/DQ + VNNI kernels (Ice Lake, Zen 4):
 * vpdpbusd forms of the Q4_1, Q5_0 and Q5_1 bodies, and 512-bit kernels
 * for the hot types Q4_0, Q8_0, Q4_K and Q6_K.  The "avx512-vnni" level in
 * quant_simd.c takes these and the AVX2 kernels for every other type.
 *
 * Each function is compiled with T_AVX512 and must only be reached through
 * quant_simd.c's tables, which check the CPU first.  Which variant sits at
 * which level was chosen by measurement on a Zen-class AVX-512 machine
 * (e.g. vpdpbusd + vpmulld wins for Q6_K, loses badly for Q4_K).
 */
#include "engine/quant_simd_int.h"

#ifdef QUANT_X86

/* The 32-weight bodies of quant_simd_int.h with the vpdpbusd int8 sums. */

#define DOT dot_s8_vnni
T_AVX512 void q5_0_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q5_0 }
#undef DOT
#define DOT dot_u8_vnni
T_AVX512 void q4_1_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q4_1 }
T_AVX512 void q5_1_dot_vnni(int n, float *s, const void *vx, const void *vy) { BODY_Q5_1 }
#undef DOT

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
T_AVX512 void
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
T_AVX512 void
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

/* dt for eight Q4_0 blocks at x: d = dx * dy, then d / 16 (see d_pair16). */
static inline T_AVX512 __m512
q4_0_dt(const block_q4_0 *x, __m256 dy)
{
	const char *xc = (const char *)x;
	const __m512i dx = _mm512_permutex2var_epi16(_mm512_loadu_si512((const void *)xc),
	    _mm512_loadu_si512((const void *)d_idx9), _mm512_loadu_si512((const void *)(xc + 64)));
	const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(dx)), dy);
	return _mm512_insertf32x8(_mm512_castps256_ps512(d), _mm256_mul_ps(d, _mm256_set1_ps(1.0f / 16)), 1);
}

/* The end of a Q4_0 row from block ib: the four accumulators, the pairs
 * and the odd block left, as one float. */
static inline T_AVX512 float
q4_0_finish(const block_q4_0 *x, const block_q8_0 *y, int nb, int ib, __m512 acc0, __m512 acc1, __m512 acc2,
    __m512 acc3)
{
	acc0 = _mm512_add_ps(acc0, acc2);
	acc1 = _mm512_add_ps(acc1, acc3);
	for (; ib + 2 <= nb; ib += 2)
		STEP512_Q4_0(acc0, ib);
	float sum = hsum_ps512(_mm512_add_ps(acc0, acc1));
	if (ib < nb)
		sum += h2f(x[ib].d) * h2f(y[ib].d) *
		    (float)hsum_epi32(dot_s8_vnni(XQ_Q4_0(ib), _mm256_loadu_si256((const __m256i *)y[ib].qs)));
	return sum;
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

T_AVX512 void
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
		const __m512 dt = q4_0_dt(x + ib, d8_q8_0(y + ib));
		Q4_0_PAIR(acc0, ib, 0);
		Q4_0_PAIR(acc1, ib + 2, 1);
		Q4_0_PAIR(acc2, ib + 4, 2);
		Q4_0_PAIR(acc3, ib + 6, 3);
	}
	*s = q4_0_finish(x, y, nb, ib, acc0, acc1, acc2, acc3);
}

/*
 * Decoding reads one activation row against thousands of weight rows, and
 * q4_0_dot_avx512 redoes for each row what depends on y alone: the y
 * scales of eight blocks (two vpermt2w and a conversion), the quants of
 * each pair of blocks put together, and the -8 offset's dot E . y.  That
 * is a fifth of the kernel's instructions, and on a core that streams
 * weights at 20 GB/s the instructions per weight byte are what bound it.
 * q4_0_dec_prep does them once per activation row, into groups of eight
 * blocks (struct q4_0_dec, 576 bytes, 64-aligned), followed by the raw
 * Q8_0 row for the blocks past the last whole group; q4_0_dec_dot then
 * performs q4_0_dot_avx512's own operations in its order, with those
 * values loaded instead of computed, so the bits are the same.
 */
struct q4_0_dec {
	float dy[8];            /* the eight blocks' y scales */
	float pad[8];
	__m512i qy[4];          /* quants of blocks 2k, 2k+1 */
	__m512i ey[4];          /* E . y for the same pair (q4_0_dot_avx512's e8) */
};
_Static_assert(sizeof(struct q4_0_dec) == 576, "q4_0_dec");

size_t
q4_0_dec_size(int n)
{
	return q4_0_dec_layout(n, sizeof(struct q4_0_dec));
}

T_AVX512 void
q4_0_dec_prep_avx512(int n, const void *vy, void *vp)
{
	const block_q8_0 *y = vy;
	const int nb = n / 32, ng = nb / 8;
	struct q4_0_dec *e = vp;
	const __m512i e8 = _mm512_set_epi64(
	    (long long)0x8080808080808080ULL, (long long)0x8080808080808080ULL, 0x0808080808080808LL, 0x0808080808080808LL,
	    (long long)0x8080808080808080ULL, (long long)0x8080808080808080ULL, 0x0808080808080808LL, 0x0808080808080808LL);
	for (int g = 0; g < ng; g++) {
		_mm256_store_ps(e[g].dy, d8_q8_0(y + 8 * g));
		for (int k = 0; k < 4; k++) {
			const int b = 8 * g + 2 * k;
			const __m512i qy = cat256(_mm256_loadu_si256((const __m256i *)y[b].qs),
			    _mm256_loadu_si256((const __m256i *)y[b + 1].qs));
			e[g].qy[k] = qy;
			e[g].ey[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), e8, qy);
		}
	}
	memcpy(e + ng, y, (size_t)nb * sizeof *y);
}

#define Q4_0_DEC_PAIR(acc, b, k) do { \
	const __m512i qx = _mm512_and_si512(cat256( \
	    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x[b].qs)), \
	    _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)x[b + 1].qs))), mlh); \
	const __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), qx, e->qy[k]), e->ey[k]); \
	acc = _mm512_fmadd_ps(d_pair16(dt, k), _mm512_cvtepi32_ps(p), acc); \
} while (0)

T_AVX512 void
q4_0_dec_dot_avx512(int n, float *s, const void *vx, const void *vp)
{
	const block_q4_0 *x = vx;
	const int nb = n / 32, ng = nb / 8;
	const struct q4_0_dec *e = vp;
	const block_q8_0 *y = (const block_q8_0 *)(e + ng);
	const __m512i mlh = _mm512_set_epi64(
	    (long long)0xf0f0f0f0f0f0f0f0ULL, (long long)0xf0f0f0f0f0f0f0f0ULL, 0x0f0f0f0f0f0f0f0fLL, 0x0f0f0f0f0f0f0f0fLL,
	    (long long)0xf0f0f0f0f0f0f0f0ULL, (long long)0xf0f0f0f0f0f0f0f0ULL, 0x0f0f0f0f0f0f0f0fLL, 0x0f0f0f0f0f0f0f0fLL);
	__m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
	__m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
	int ib = 0;
	for (; ib + 8 <= nb; ib += 8, e++) {
		const __m512 dt = q4_0_dt(x + ib, _mm256_load_ps(e->dy));
		Q4_0_DEC_PAIR(acc0, ib, 0);
		Q4_0_DEC_PAIR(acc1, ib + 2, 1);
		Q4_0_DEC_PAIR(acc2, ib + 4, 2);
		Q4_0_DEC_PAIR(acc3, ib + 6, 3);
	}
	*s = q4_0_finish(x, y, nb, ib, acc0, acc1, acc2, acc3);
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
T_AVX512 void
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

#endif /* QUANT_X86 */
