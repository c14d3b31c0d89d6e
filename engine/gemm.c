/*
 * gemm.c: quantized weights times a batch of quantized activations, for
 * prompt processing (see gemm.h for the contract).
 *
 * Three levels, following the family cpu.c chose (LLAMA2_CHAT_ISA or CPUID):
 *   "avx512-vnni"  tiled kernels below (AVX-512 F/BW/VL/DQ + VNNI);
 *   "avx2"         the same design on 8-row tiles without VNNI
 *                  (gemm_avx2.c), reading the same activation layout;
 *   "generic"      activations as plain vec_dot_type rows and a loop of
 *                  quant_vec_dot_n over weight rows (any CPU).
 *
 * The avx512-vnni design.  A tile is 16 weight rows; every 32-bit lane of a
 * zmm register belongs to one of them.  The weights of a tile are unpacked
 * once per K chunk into a stack buffer (under 21 KB, so it stays in L1):
 * for each group of four consecutive values of a block, one zmm holding
 * those four bytes of each of the 16 rows, as unsigned bytes, plus per-row
 * float scales.  Rows are read with plain 16-byte loads and brought into
 * that layout by 4x4 dword transposes (tr16x4); dword gathers measured at
 * about half the speed on Zen 4.  Then for each group of NC (8; 4 for a
 * short last group) activation columns the micro-kernel runs over the
 * chunk, its accumulators in registers: vpdpbusd with the
 * weight zmm as the unsigned operand and the column's four activation bytes
 * broadcast from memory as the signed one, so one int32 lane accumulates
 * the exact integer dot of one (row, column) pair over a block; one
 * cvt + fma per block and column applies the scales to all 16 rows.  The
 * activation panel is read in the order the kernel walks it.  A K chunk's
 * results are added into out, so out holds partial sums between chunks.
 *
 * Making the weights unsigned, and putting the offset back exactly:
 *   Q4_0: q in 0..15, sum (q-8)a = sum qa - 8 sum a;
 *   Q8_0: q ^ 0x80 = q+128 in 0..255, sum qa = sum (q+128)a - 128 sum a;
 *   Q6_K: q in 0..63, sum (q-32)a = sum qa - 32 bsum (per 16 values);
 * the "- c sum a" term of each (block, column) is precomputed by
 * gemm_act_prepare and starts the int32 accumulator.  Q4_K's nibbles are
 * unsigned already; its minimum term, dmin * sum_j m_j * (sum a over
 * sub-block j), is four vpdpwssd per super-block and column (the m_j of
 * each row in int16 pairs, the sub-block sums of the column broadcast).
 * Integer sums of a block are the reference's exactly; only the order of
 * the float operations that scale and add them differs.
 *
 * Activation buffer (avx512-vnni and avx2, gemm_int.h): columns in groups of NC (the last padded
 * with zero columns, which are computed when the group is wider than 4 and
 * never stored); for group q, block k, column c the entry
 * ((q * nb + k) * NC + c) of struct gemm_act32 (Q4_0, Q8_0) or struct gemm_actk
 * (Q4_K, Q6_K).  Generic: B rows of quant_row_size(vec_dot_type, n) bytes.
 */
#include "engine/gemm.h"

#include <stdint.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gemm_int.h"
#include "engine/quant.h"

#if defined(__x86_64__) || defined(__i386__)
#define GEMM_X86 1
#include <immintrin.h>

#include "engine/gemm_kern.h"

#define KCK GK_KCK  /* K-quant super-blocks per K chunk */
_Static_assert(GK_TR == 16, "a tile is a zmm's lanes");
#endif

#define NC GEMM_NC
#define TR 16    /* weight rows per tile: the lanes of a zmm */
#define KC32 32  /* Q4_0/Q8_0 blocks per K chunk: 32 * 576 bytes unpacked */

enum { LV_GENERIC, LV_AVX2, LV_AVX512 };

static int forced_level = -1;

static int
supported(int type)
{
	return type == QT_Q4_0 || type == QT_Q8_0 || type == QT_Q4_K || type == QT_Q6_K;
}

static int
is_k(int type)
{
	return type == QT_Q4_K || type == QT_Q6_K;
}

static int
level(void)
{
	if (forced_level >= 0)
		return forced_level;
	switch (cpu_isa()) {
	case CPU_AVX512:
		return LV_AVX512;
	case CPU_AVX2:
		return LV_AVX2;
	default:
		return LV_GENERIC;
	}
}

/* The level for one matrix (all types and sizes go the same way today;
 * kept so that a shape the kernels cannot take falls back in one place). */
static int
level_for(int type, int n)
{
	(void)type;
	(void)n;
	return level();
}

const char *
gemm_level(void)
{
	static const char *const names[] = { "generic", "avx2", "avx512-vnni" };
	return names[level()];
}

int
gemm_force_level(const char *name)
{
	if (name == NULL) {
		forced_level = -1;
		return 0;
	}
	if (strcmp(name, "generic") == 0) {
		forced_level = LV_GENERIC;
		return 0;
	}
	if (strcmp(name, "avx2") == 0 && cpu_has(CPU_AVX2)) {
		forced_level = LV_AVX2;
		return 0;
	}
	if (strcmp(name, "avx512-vnni") == 0 && cpu_has(CPU_AVX512)) {
		forced_level = LV_AVX512;
		return 0;
	}
	return -1;
}

static int
blck(int type)
{
	return is_k(type) ? QK_K : 32;
}

static int
vdt(int type)
{
	return is_k(type) ? QT_Q8_K : QT_Q8_0;
}

static int
groups(int B)
{
	return (B + NC - 1) / NC;
}

size_t
gemm_act_size(int type, int n, int B)
{
	if (!supported(type) || n <= 0 || B <= 0 || n % blck(type) != 0)
		return 0;
	if (level_for(type, n) == LV_GENERIC)
		return (size_t)B * quant_row_size(vdt(type), n);
	const size_t nb = (size_t)(n / blck(type));
	const size_t es = is_k(type) ? sizeof(struct gemm_actk) : sizeof(struct gemm_act32);
	return (size_t)groups(B) * NC * nb * es;
}

/* Index of (column b, block k) in the avx512 layout. */
static size_t
act_index(int nb, int b, int k)
{
	return ((size_t)(b / NC) * (size_t)nb + (size_t)k) * NC + (size_t)(b % NC);
}

/* One block of 32 activations into e, for weights with offset off. */
static void
act32_block(quant_from_float_fn q8, int32_t off, const float *x, struct gemm_act32 *e)
{
	block_q8_0 blk;
	q8(x, &blk, QK8_0);
	int sum = 0;
	for (int j = 0; j < QK8_0; j++)
		sum += blk.qs[j];
	memcpy(e->q, blk.qs, sizeof e->q);
	e->d = fp16_to_fp32(blk.d);
	e->corr = -off * sum;
}

void
gemm_prepare32(int type, int n, const float *x, int B, struct gemm_act32 *a)
{
	const quant_from_float_fn q8 = quant_type_get(QT_Q8_0)->from_float;
	const int nb = n / QK8_0;
	const int32_t off = type == QT_Q4_0 ? 8 : 128;
	/* Columns are independent: shared among the threads (alone, this took
	 * 3% of a prompt on one core while the other waited). */
	#pragma omp parallel for schedule(static) if (B >= 16)
	for (int b = 0; b < groups(B) * NC; b++) {
		for (int k = 0; k < nb; k++) {
			struct gemm_act32 *e = &a[act_index(nb, b, k)];
			if (b >= B)
				memset(e, 0, sizeof *e);
			else
				act32_block(q8, off, x + (size_t)b * (size_t)n + (size_t)k * QK8_0, e);
		}
	}
}

void
gemm_prepare32_row(int type, int n, const float *x, struct gemm_act32 *a)
{
	const quant_from_float_fn q8 = quant_type_get(QT_Q8_0)->from_float;
	const int32_t off = type == QT_Q4_0 ? 8 : 128;
	for (int k = 0; k < n / QK8_0; k++)
		act32_block(q8, off, x + (size_t)k * QK8_0, &a[k]);
}

/* One super-block of 256 activations into e, for Q4_K or Q6_K weights. */
static void
actk_block(int type, quant_from_float_fn q8, const float *x, struct gemm_actk *e)
{
	block_q8_K blk;
	q8(x, &blk, QK_K);
	memset(e, 0, sizeof *e);
	memcpy(e->q, blk.qs, sizeof e->q);
	memcpy(e->bsums, blk.bsums, sizeof e->bsums);
	e->d = blk.d;
	if (type == QT_Q6_K) {
		for (int j = 0; j < 16; j++)
			e->x[j] = -32 * blk.bsums[j];
	} else {
		for (int t = 0; t < 4; t++) {
			const int s0 = blk.bsums[4 * t] + blk.bsums[4 * t + 1];
			const int s1 = blk.bsums[4 * t + 2] + blk.bsums[4 * t + 3];
			e->x[t] = (int32_t)((uint32_t)(uint16_t)s0 | (uint32_t)(uint16_t)s1 << 16);
		}
	}
}

void
gemm_preparek(int type, int n, const float *x, int B, struct gemm_actk *a)
{
	const quant_from_float_fn q8 = quant_type_get(QT_Q8_K)->from_float;
	const int nb = n / QK_K;
	#pragma omp parallel for schedule(static) if (B >= 16)
	for (int b = 0; b < groups(B) * NC; b++) {
		for (int k = 0; k < nb; k++) {
			struct gemm_actk *e = &a[act_index(nb, b, k)];
			if (b >= B)
				memset(e, 0, sizeof *e);
			else
				actk_block(type, q8, x + (size_t)b * (size_t)n + (size_t)k * QK_K, e);
		}
	}
}

void
gemm_preparek_row(int type, int n, const float *x, struct gemm_actk *a)
{
	const quant_from_float_fn q8 = quant_type_get(QT_Q8_K)->from_float;
	for (int k = 0; k < n / QK_K; k++)
		actk_block(type, q8, x + (size_t)k * QK_K, &a[k]);
}

void
gemm_act_prepare(int type, int n, const float *x, int B, void *buf)
{
	if (gemm_act_size(type, n, B) == 0)
		return;
	if (level_for(type, n) == LV_GENERIC) {
		const struct quant_type *t = quant_type_get(vdt(type));
		const size_t rs = quant_row_size(vdt(type), n);
		for (int b = 0; b < B; b++)
			t->from_float(x + (size_t)b * (size_t)n, (char *)buf + (size_t)b * rs, n);
		return;
	}
	if (is_k(type))
		gemm_preparek(type, n, x, B, buf);
	else
		gemm_prepare32(type, n, x, B, buf);
}

int
gemm_act_row(int type, int n, const void *buf, int B, int b, void *dst)
{
	if (gemm_act_size(type, n, B) == 0 || b < 0 || b >= B)
		return -1;
	const size_t rs = quant_row_size(vdt(type), n);
	if (level_for(type, n) == LV_GENERIC) {
		memcpy(dst, (const char *)buf + (size_t)b * rs, rs);
		return 0;
	}
	const int nb = n / blck(type);
	for (int k = 0; k < nb; k++) {
		if (is_k(type)) {
			const struct gemm_actk *e = (const struct gemm_actk *)buf + act_index(nb, b, k);
			block_q8_K *y = (block_q8_K *)dst + k;
			memcpy(y->qs, e->q, sizeof y->qs);
			memcpy(y->bsums, e->bsums, sizeof y->bsums);
			y->d = e->d;
		} else {
			const struct gemm_act32 *e = (const struct gemm_act32 *)buf + act_index(nb, b, k);
			block_q8_0 *y = (block_q8_0 *)dst + k;
			memcpy(y->qs, e->q, sizeof y->qs);
			y->d = fp32_to_fp16(e->d);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Generic level                                                       */
/* ------------------------------------------------------------------ */

static void
gemm_generic(int type, int n, const void *w, size_t row_bytes, int r0, int r1,
    const void *buf, int B, float *out, size_t ldo)
{
	const quant_vec_dot_n_fn dot_n = quant_vec_dot_n(type);
	const size_t rs = quant_row_size(vdt(type), n);
	for (int r = r0; r < r1; r++)
		dot_n(n, out + r, ldo, (const char *)w + (size_t)r * row_bytes, buf, rs, B);
}

#ifdef GEMM_X86

/* Read in place of rows past the end of a partial tile: every byte any
 * unpacking reads of a K chunk lies inside it, and zero scales make those
 * lanes zero. */
static const uint8_t zero_rows[1152];
_Static_assert(KC32 * sizeof(block_q8_0) <= sizeof zero_rows, "zero_rows");
_Static_assert(KCK * sizeof(block_q6_K) <= sizeof zero_rows, "zero_rows");
_Static_assert(KCK * sizeof(block_q4_K) <= sizeof zero_rows, "zero_rows");

/* rp[r]: the chunk's first byte (k0off) in row rt + r, or zero_rows. */
static void
row_ptrs(const uint8_t *w, size_t row_bytes, int rt, int r1, size_t k0off, const uint8_t **rp)
{
	for (int r = 0; r < TR; r++)
		rp[r] = rt + r < r1 ? w + (size_t)(rt + r) * row_bytes + k0off : zero_rows;
}

/*
 * Ask for the weights of the K chunk after (rt, k0) (the next one of the
 * tile, else the first of the next tile) before unpacking this one: 16
 * row streams are more than the hardware prefetcher keeps ahead of, and
 * this measured faster on Q6_K at B = 16 with the weights in DRAM.  A
 * prefetch past the end of the matrix is harmless (it never faults).
 */
static inline T512 void
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


/* ---- Q4_0, Q8_0 --------------------------------------------------- */

/* kc blocks of the tile's rows from rp: wq[8k + g] lane r = values
 * 4g..4g+3 of block k of row r, unsigned; wd[k] lane r = that block's d. */
static T512 void
unpack32(int type, const uint8_t *const *rp, int kc, __m512i *wq, __m512 *wd)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	const __m512i x80 = _mm512_set1_epi8((char)0x80);
	const size_t bs = type == QT_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
	__m512i t[4];
	for (int k = 0; k < kc; k++, wq += 8) {
		const size_t o = (size_t)k * bs;
		wd[k] = f16_rows(rp, o);
		if (type == QT_Q4_0) {
			tr16x4(rp, o + 2, t);
			for (int g = 0; g < 4; g++) {
				wq[g] = _mm512_and_si512(t[g], m4);
				wq[g + 4] = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), m4);
			}
		} else {
			for (int h = 0; h < 2; h++) {
				tr16x4(rp, o + 2 + 16 * (size_t)h, t);
				for (int g = 0; g < 4; g++)
					wq[4 * h + g] = _mm512_xor_si512(t[g], x80);
			}
		}
	}
}


static T512 void
kern32_8(const __m512i *wq, const __m512 *wd, int kc, const struct gemm_act32 *a, __m512 *f)
{
	kern32(wq, wd, kc, a, f, 8);
}

static T512 void
kern32_4(const __m512i *wq, const __m512 *wd, int kc, const struct gemm_act32 *a, __m512 *f)
{
	kern32(wq, wd, kc, a, f, 4);
}

static T512 void
gemm32_avx512(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_act32 *a, int B, float *out, size_t ldo)
{
	const int nb = n / 32;
	const size_t bs = type == QT_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
	const uint8_t *rp[TR];
	__m512i wq[KC32 * 8];
	__m512 wd[KC32];
	__m512 f[NC];
	for (int rt = r0; rt < r1; rt += TR) {
		const int rows = r1 - rt < TR ? r1 - rt : TR;
		const __mmask16 m = (__mmask16)((1u << rows) - 1);
		for (int k0 = 0; k0 < nb; k0 += KC32) {
			const int kc = nb - k0 < KC32 ? nb - k0 : KC32;
			row_ptrs(w, row_bytes, rt, r1, (size_t)k0 * bs, rp);
			prefetch_next(w, row_bytes, rt, r1, k0, KC32, bs);
			unpack32(type, rp, kc, wq, wd);
			for (int q = 0; q < groups(B); q++) {
				const struct gemm_act32 *ag = a + ((size_t)q * nb + k0) * NC;
				const int nc = B - q * NC < NC ? B - q * NC : NC;
				if (nc <= 4)
					kern32_4(wq, wd, kc, ag, f);
				else
					kern32_8(wq, wd, kc, ag, f);
				flush(f, nc, out + (size_t)q * NC * ldo + rt, ldo, m, k0 == 0);
			}
		}
	}
}

static T512 void
gemmk_avx512(int type, int n, const uint8_t *w, size_t row_bytes, int r0, int r1,
    const struct gemm_actk *a, int B, float *out, size_t ldo)
{
	const int nb = n / QK_K;
	const size_t bs = type == QT_Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K);
	const uint8_t *rp[TR];
	union uk u;
	for (int rt = r0; rt < r1; rt += TR) {
		const int rows = r1 - rt < TR ? r1 - rt : TR;
		for (int k0 = 0; k0 < nb; k0 += KCK) {
			const int kc = nb - k0 < KCK ? nb - k0 : KCK;
			row_ptrs(w, row_bytes, rt, r1, (size_t)k0 * bs, rp);
			prefetch_next(w, row_bytes, rt, r1, k0, KCK, bs);
			if (type == QT_Q4_K)
				unpackq4k(rp, NULL, kc, u.q4);
			else
				unpackq6k(rp, NULL, NULL, kc, u.q6);
			kchunk(type, &u, kc, nb, k0, a, B, out + rt, ldo, rows);
		}
	}
}

#endif /* GEMM_X86 */

void
gemm(int type, int n, const void *w, size_t row_bytes, int r0, int r1,
    const void *buf, int B, float *out, size_t ldo)
{
	if (gemm_act_size(type, n, B) == 0 || r0 >= r1)
		return;
#ifdef GEMM_X86
	if (level_for(type, n) == LV_AVX512) {
		if (is_k(type))
			gemmk_avx512(type, n, w, row_bytes, r0, r1, buf, B, out, ldo);
		else
			gemm32_avx512(type, n, w, row_bytes, r0, r1, buf, B, out, ldo);
		return;
	}
	if (level_for(type, n) == LV_AVX2) {
		if (is_k(type))
			gemm_avx2_k(type, n, w, row_bytes, r0, r1, buf, B, out, ldo);
		else
			gemm_avx2_32(type, n, w, row_bytes, r0, r1, buf, B, out, ldo);
		return;
	}
#endif
	gemm_generic(type, n, w, row_bytes, r0, r1, buf, B, out, ldo);
}
