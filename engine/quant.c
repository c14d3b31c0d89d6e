/*
 * quant.c: the scalar reference for every tensor type (the K-quants'
 * kernels are in quant_k.c, the weight quantizers in quantize_block.c): fp16/bf16
 * conversion, dequantization (to_float), quantization (from_float), the dot
 * product of a weight row with an activation row quantized to the type's
 * vec_dot_type, and the per-type table that the rest of the engine uses.
 *
 * Invariants.  to_float follows ggml's dequantize_row_* formulas exactly,
 * operation for operation, so a weight read here has the value llama.cpp
 * gives it.  The activation quantizers (Q8_0, Q8_1, Q8_K, F16, BF16) round
 * exactly as ggml's *_ref functions do, and the reference dot products sum
 * as ggml's generic CPU code does: integers within a block, then one float
 * scale per block (the K-quants keep ggml's eight float lanes).  The weight
 * quantizers of the block types (from_float of Q4_0..Q6_K) are
 * quantize_block.c's, ggml's reference ones; Q8_0's entry here is the
 * activation quantizer.
 *
 * The table is built once (pthread_once) from the reference entries; then
 * quant_simd.c may replace vec_dot, from_float and vec_dot_n with faster
 * kernels that the tests hold to the reference.  Nothing here prints,
 * allocates or fails: bad arguments are the caller's contract.
 */
#include "engine/quant.h"
#include "engine/quantize.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "engine/quant_int.h"

/* ------------------------------------------------------------------ */
/* fp16 and bf16                                                       */
/* ------------------------------------------------------------------ */

static inline uint32_t
f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static inline float
f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/*
 * Computed, not looked up: every fp16 value is exactly representable in
 * fp32, so a few integer operations give the bit-exact result with no table
 * to initialise or to pollute the cache.
 */
float
fp16_to_fp32(fp16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t man = h & 0x3ff;

	if (exp == 0x1f)                /* inf, nan (payload kept) */
		return f32_from_bits(sign | 0x7f800000 | (man << 13));
	if (exp == 0) {                 /* zero or subnormal: man * 2^-24 */
		float v = (float)man * 0x1p-24f;
		return sign ? -v : v;
	}
	return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round the dropped low `shift` bits of q's source to nearest, ties even. */
static inline uint32_t
round_shift_rne(uint32_t m, int shift)
{
	uint32_t q = m >> shift;
	uint32_t rem = m & ((1u << shift) - 1);
	uint32_t half = 1u << (shift - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	return q;
}

/*
 * Round to nearest even, as F16C's vcvtps2ph with imm 0 and ggml's software
 * path do: overflow goes to inf, values under half the smallest subnormal
 * to (signed) zero, NaN stays NaN and is made quiet.  A rounding carry out
 * of the mantissa moves into the exponent, which is what makes 65520 become
 * inf and the largest subnormal round up to the smallest normal.
 */
fp16_t
fp32_to_fp16(float f)
{
	uint32_t u = f32_bits(f);
	uint32_t sign = (u >> 16) & 0x8000;
	uint32_t a = u & 0x7fffffff;
	uint32_t e = a >> 23;

	if (a > 0x7f800000)
		return (fp16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
	if (e >= 143)                   /* >= 2^16: inf (also inf itself) */
		return (fp16_t)(sign | 0x7c00);
	if (e >= 113) {                 /* normal fp16 range */
		uint32_t m = ((e - 112) << 23) | (a & 0x7fffff);
		return (fp16_t)(sign | round_shift_rne(m, 13));
	}
	if (e < 102)                    /* < 2^-25, also fp32 subnormals */
		return (fp16_t)sign;
	/* fp16 subnormal: value / 2^-24 = m * 2^(e-126), shift >= 14. */
	return (fp16_t)(sign | round_shift_rne((a & 0x7fffff) | 0x800000, 126 - (int)e));
}

float
bf16_to_fp32(bf16_t h)
{
	return f32_from_bits((uint32_t)h << 16);
}

/* ggml's conversion: NaN forced quiet, subnormals kept (not flushed). */
bf16_t
fp32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (bf16_t)((u >> 16) | 64);
	return (bf16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/*
 * 1/d as ggml's reference quantizers take it, except that a d so small
 * that 1/d overflows gives 0: ggml then converts inf (or 0*inf) to int8,
 * which is undefined.  Such a block stores d as fp16 zero, so its quants
 * carry no weight either way; ours are 0, in the SIMD kernels too.
 */
static inline float
inv_or_zero(float d)
{
	const float id = d ? 1.0f / d : 0.0f;
	return isinf(id) ? 0.0f : id;
}


/* ------------------------------------------------------------------ */
/* F32, F16, BF16                                                      */
/* ------------------------------------------------------------------ */

static void
f32_to_float(const void *vx, float *y, int64_t n)
{
	memcpy(y, vx, (size_t)n * sizeof(float));
}

static void
f32_from_float(const float *x, void *vy, int64_t n)
{
	memcpy(vy, x, (size_t)n * sizeof(float));
}

/* ggml_vec_dot_f32's scalar path: float products, double sum. */
static REF_DOT void
f32_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const float *x = vx, *y = vy;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)(x[i] * y[i]);
	*s = (float)sum;
}

static void
f16_to_float(const void *vx, float *y, int64_t n)
{
	const fp16_t *x = vx;
	for (int64_t i = 0; i < n; i++)
		y[i] = FP16(x[i]);
}

static void
f16_from_float(const float *x, void *vy, int64_t n)
{
	fp16_t *y = vy;
	for (int64_t i = 0; i < n; i++)
		y[i] = fp32_to_fp16(x[i]);
}

static REF_DOT void
f16_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const fp16_t *x = vx, *y = vy;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)(FP16(x[i]) * FP16(y[i]));
	*s = (float)sum;
}

static void
bf16_to_float(const void *vx, float *y, int64_t n)
{
	const bf16_t *x = vx;
	for (int64_t i = 0; i < n; i++)
		y[i] = bf16_to_fp32(x[i]);
}

static void
bf16_from_float(const float *x, void *vy, int64_t n)
{
	bf16_t *y = vy;
	for (int64_t i = 0; i < n; i++)
		y[i] = fp32_to_bf16(x[i]);
}

static REF_DOT void
bf16_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const bf16_t *x = vx, *y = vy;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += (double)(bf16_to_fp32(x[i]) * bf16_to_fp32(y[i]));
	*s = (float)sum;
}

/* ------------------------------------------------------------------ */
/* Q8_0, Q8_1: the activation types of the 32-weight blocks            */
/* ------------------------------------------------------------------ */

/*
 * Activations to Q8_0 as llama.cpp does on x86 (its AVX2 quantize_row_q8_0,
 * which the CPU backend uses there instead of the _ref function): d =
 * amax/127 kept as fp16, q = round-half-even(x * (127/amax)).  The _ref
 * form (x * (1/d), ties away from zero) differs in a last bit or on exact
 * ties, which is enough to flip an activation now and then; matching the
 * code that produced the reference logits keeps our greedy tokens on them.
 */
static inline float
q8_inv_scale(float amax)
{
	float id = amax != 0.0f ? 127.0f / amax : 0.0f;
	return isinf(id) ? 0.0f : id;   /* a subnormal block: zeros, not UB */
}

/* One block of 32: the quants of x into qs, d into *d; returns sum(qs). */
static int
q8_block(const float *x, int8_t *qs, float *d)
{
	float amax = 0;
	for (int j = 0; j < QK8_0; j++)
		amax = MAX(amax, fabsf(x[j]));
	const float id = q8_inv_scale(amax);
	*d = amax / 127;
	int sum = 0;
	for (int j = 0; j < QK8_0; j++) {
		qs[j] = (int8_t)nearbyintf(x[j] * id);
		sum += qs[j];
	}
	return sum;
}

static void
q8_0_from_float(const float *x, void *vy, int64_t n)
{
	block_q8_0 *y = vy;
	for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
		float d;
		(void)q8_block(x, y[i].qs, &d);
		y[i].d = fp32_to_fp16(d);
	}
}

static void
q8_0_to_float(const void *vx, float *y, int64_t n)
{
	const block_q8_0 *x = vx;
	for (int64_t i = 0; i < n / QK8_0; i++) {
		const float d = FP16(x[i].d);
		for (int j = 0; j < QK8_0; j++)
			y[i * QK8_0 + j] = x[i].qs[j] * d;
	}
}

/* ggml_vec_dot_q8_0_q8_0 */
static REF_DOT void
q8_0_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q8_0 *x = vx, *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK8_0; ib++) {
		int sumi = 0;
		for (int j = 0; j < QK8_0; j++)
			sumi += x[ib].qs[j] * y[ib].qs[j];
		sumf += sumi * (FP16(x[ib].d) * FP16(y[ib].d));
	}
	*s = sumf;
}

/* quantize_row_q8_1 (x86): as q8_0, and s = fp16(d * sum(q)) from the
 * integer sum of the rounded quants, not from the float inputs. */
static void
q8_1_from_float(const float *x, void *vy, int64_t n)
{
	block_q8_1 *y = vy;
	for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
		float d;
		int sum = q8_block(x, y[i].qs, &d);
		y[i].d = fp32_to_fp16(d);
		y[i].s = fp32_to_fp16(sum * d);
	}
}

static void
q8_1_to_float(const void *vx, float *y, int64_t n)
{
	const block_q8_1 *x = vx;
	for (int64_t i = 0; i < n / QK8_1; i++) {
		const float d = FP16(x[i].d);
		for (int j = 0; j < QK8_1; j++)
			y[i * QK8_1 + j] = x[i].qs[j] * d;
	}
}

/* Not a ggml kernel (Q8_1 is never a weight there); for a total table. */
static REF_DOT void
q8_1_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q8_1 *x = vx, *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK8_1; ib++) {
		int sumi = 0;
		for (int j = 0; j < QK8_1; j++)
			sumi += x[ib].qs[j] * y[ib].qs[j];
		sumf += sumi * (FP16(x[ib].d) * FP16(y[ib].d));
	}
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* Q4_0, Q4_1, Q5_0, Q5_1 (ggml's reference quantizers)                */
/* ------------------------------------------------------------------ */

static void
q4_0_to_float(const void *vx, float *y, int64_t n)
{
	const block_q4_0 *x = vx;
	for (int64_t i = 0; i < n / QK4_0; i++) {
		const float d = FP16(x[i].d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			const int x0 = (x[i].qs[j] & 0x0f) - 8;
			const int x1 = (x[i].qs[j] >> 4) - 8;
			y[i * QK4_0 + j] = x0 * d;
			y[i * QK4_0 + j + QK4_0 / 2] = x1 * d;
		}
	}
}

/* ggml_vec_dot_q4_0_q8_0 */
static REF_DOT void
q4_0_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_0 *x = vx;
	const block_q8_0 *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK4_0; ib++) {
		int sumi0 = 0, sumi1 = 0;
		for (int j = 0; j < QK4_0 / 2; j++) {
			sumi0 += ((x[ib].qs[j] & 0x0f) - 8) * y[ib].qs[j];
			sumi1 += ((x[ib].qs[j] >> 4) - 8) * y[ib].qs[j + QK4_0 / 2];
		}
		sumf += (sumi0 + sumi1) * FP16(x[ib].d) * FP16(y[ib].d);
	}
	*s = sumf;
}

static void
q4_1_to_float(const void *vx, float *y, int64_t n)
{
	const block_q4_1 *x = vx;
	for (int64_t i = 0; i < n / QK4_1; i++) {
		const float d = FP16(x[i].d), m = FP16(x[i].m);
		for (int j = 0; j < QK4_1 / 2; j++) {
			y[i * QK4_1 + j] = (x[i].qs[j] & 0x0f) * d + m;
			y[i * QK4_1 + j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
		}
	}
}

/* ggml_vec_dot_q4_1_q8_1: the minimum term is m * s, s from the Q8_1 block. */
static REF_DOT void
q4_1_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_1 *x = vx;
	const block_q8_1 *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK4_1; ib++) {
		int sumi0 = 0, sumi1 = 0;
		for (int j = 0; j < QK4_1 / 2; j++) {
			sumi0 += (x[ib].qs[j] & 0x0f) * y[ib].qs[j];
			sumi1 += (x[ib].qs[j] >> 4) * y[ib].qs[j + QK4_1 / 2];
		}
		sumf += (FP16(x[ib].d) * FP16(y[ib].d)) * (sumi0 + sumi1) +
		    FP16(x[ib].m) * FP16(y[ib].s);
	}
	*s = sumf;
}

static void
q5_0_to_float(const void *vx, float *y, int64_t n)
{
	const block_q5_0 *x = vx;
	for (int64_t i = 0; i < n / QK5_0; i++) {
		const float d = FP16(x[i].d);
		uint32_t qh;
		memcpy(&qh, x[i].qh, sizeof qh);
		for (int j = 0; j < QK5_0 / 2; j++) {
			const uint8_t h0 = ((qh >> j) << 4) & 0x10;
			const uint8_t h1 = (qh >> (j + 12)) & 0x10;
			const int32_t x0 = ((x[i].qs[j] & 0x0f) | h0) - 16;
			const int32_t x1 = ((x[i].qs[j] >> 4) | h1) - 16;
			y[i * QK5_0 + j] = x0 * d;
			y[i * QK5_0 + j + QK5_0 / 2] = x1 * d;
		}
	}
}

/* ggml_vec_dot_q5_0_q8_0 */
static REF_DOT void
q5_0_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q5_0 *x = vx;
	const block_q8_0 *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK5_0; ib++) {
		uint32_t qh;
		memcpy(&qh, x[ib].qh, sizeof qh);
		int sumi0 = 0, sumi1 = 0;
		for (int j = 0; j < QK5_0 / 2; j++) {
			const int h0 = ((qh >> j) << 4) & 0x10;
			const int h1 = (qh >> (j + 12)) & 0x10;
			sumi0 += (((x[ib].qs[j] & 0x0f) | h0) - 16) * y[ib].qs[j];
			sumi1 += (((x[ib].qs[j] >> 4) | h1) - 16) * y[ib].qs[j + QK5_0 / 2];
		}
		sumf += (FP16(x[ib].d) * FP16(y[ib].d)) * (sumi0 + sumi1);
	}
	*s = sumf;
}

static void
q5_1_to_float(const void *vx, float *y, int64_t n)
{
	const block_q5_1 *x = vx;
	for (int64_t i = 0; i < n / QK5_1; i++) {
		const float d = FP16(x[i].d), m = FP16(x[i].m);
		uint32_t qh;
		memcpy(&qh, x[i].qh, sizeof qh);
		for (int j = 0; j < QK5_1 / 2; j++) {
			const uint8_t h0 = ((qh >> j) << 4) & 0x10;
			const uint8_t h1 = (qh >> (j + 12)) & 0x10;
			y[i * QK5_1 + j] = ((x[i].qs[j] & 0x0f) | h0) * d + m;
			y[i * QK5_1 + j + QK5_1 / 2] = ((x[i].qs[j] >> 4) | h1) * d + m;
		}
	}
}

/* ggml_vec_dot_q5_1_q8_1 */
static REF_DOT void
q5_1_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q5_1 *x = vx;
	const block_q8_1 *y = vy;
	float sumf = 0;
	for (int ib = 0; ib < n / QK5_1; ib++) {
		uint32_t qh;
		memcpy(&qh, x[ib].qh, sizeof qh);
		int sumi0 = 0, sumi1 = 0;
		for (int j = 0; j < QK5_1 / 2; j++) {
			const int h0 = ((qh >> j) << 4) & 0x10;
			const int h1 = (qh >> (j + 12)) & 0x10;
			sumi0 += ((x[ib].qs[j] & 0x0f) | h0) * y[ib].qs[j];
			sumi1 += ((x[ib].qs[j] >> 4) | h1) * y[ib].qs[j + QK5_1 / 2];
		}
		sumf += (FP16(x[ib].d) * FP16(y[ib].d)) * (sumi0 + sumi1) +
		    FP16(x[ib].m) * FP16(y[ib].s);
	}
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

#define ENTRY(id, nm, bl, sz, vdt, pfx) \
	[id] = { nm, bl, sz, vdt, pfx##_to_float, pfx##_from_float, \
		 pfx##_vec_dot_ref, pfx##_vec_dot_ref }
/* Weight-only types: their quantizer is quantize_block.c's reference. */
#define WENTRY(id, nm, bl, sz, vdt, pfx) \
	[id] = { nm, bl, sz, vdt, pfx##_to_float, quantize_block_##pfx, \
		 pfx##_vec_dot_ref, pfx##_vec_dot_ref }
/* The K-quants: kernels in quant_k.c. */
#define KENTRY(id, nm, pfx, ff) \
	[id] = { nm, QK_K, sizeof(block_##pfx), QT_Q8_K, quant_k_##pfx##_to_float, ff, \
		 quant_k_##pfx##_vec_dot_ref, quant_k_##pfx##_vec_dot_ref }

static const struct quant_type ref_table[QT_COUNT] = {
	ENTRY(QT_F32, "F32", 1, sizeof(float), QT_F32, f32),
	ENTRY(QT_F16, "F16", 1, sizeof(fp16_t), QT_F16, f16),
	ENTRY(QT_BF16, "BF16", 1, sizeof(bf16_t), QT_BF16, bf16),
	WENTRY(QT_Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), QT_Q8_0, q4_0),
	WENTRY(QT_Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), QT_Q8_1, q4_1),
	WENTRY(QT_Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), QT_Q8_0, q5_0),
	WENTRY(QT_Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), QT_Q8_1, q5_1),
	ENTRY(QT_Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), QT_Q8_0, q8_0),
	ENTRY(QT_Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), QT_Q8_1, q8_1),
	KENTRY(QT_Q2_K, "Q2_K", q2_K, quantize_block_q2_K),
	KENTRY(QT_Q3_K, "Q3_K", q3_K, quantize_block_q3_K),
	KENTRY(QT_Q4_K, "Q4_K", q4_K, quantize_block_q4_K),
	KENTRY(QT_Q5_K, "Q5_K", q5_K, quantize_block_q5_K),
	KENTRY(QT_Q6_K, "Q6_K", q6_K, quantize_block_q6_K),
	KENTRY(QT_Q8_K, "Q8_K", q8_K, quant_k_q8_K_from_float),
};

static struct quant_type best_table[QT_COUNT];
static quant_vec_dot_n_fn best_dot_n[QT_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* One vec_dot per activation row: the fallback behind quant_vec_dot_n.
 * The kernel is looked up per call since a plain function pointer cannot
 * carry the type. */
#define DOT_N_LOOP(id, pfx) \
	static void \
	pfx##_vec_dot_n_loop(int n, float *s, size_t bs, const void *x, \
	    const void *y, size_t by, int nrc) \
	{ \
		quant_vec_dot_fn dot = best_table[id].vec_dot; \
		for (int r = 0; r < nrc; r++) \
			dot(n, s + (size_t)r * bs, x, (const char *)y + (size_t)r * by); \
	}
DOT_N_LOOP(QT_F32, f32)
DOT_N_LOOP(QT_F16, f16)
DOT_N_LOOP(QT_BF16, bf16)
DOT_N_LOOP(QT_Q4_0, q4_0)
DOT_N_LOOP(QT_Q4_1, q4_1)
DOT_N_LOOP(QT_Q5_0, q5_0)
DOT_N_LOOP(QT_Q5_1, q5_1)
DOT_N_LOOP(QT_Q8_0, q8_0)
DOT_N_LOOP(QT_Q8_1, q8_1)
DOT_N_LOOP(QT_Q2_K, q2_K)
DOT_N_LOOP(QT_Q3_K, q3_K)
DOT_N_LOOP(QT_Q4_K, q4_K)
DOT_N_LOOP(QT_Q5_K, q5_K)
DOT_N_LOOP(QT_Q6_K, q6_K)
DOT_N_LOOP(QT_Q8_K, q8_K)

static const quant_vec_dot_n_fn loop_dot_n[QT_COUNT] = {
	[QT_F32] = f32_vec_dot_n_loop, [QT_F16] = f16_vec_dot_n_loop,
	[QT_BF16] = bf16_vec_dot_n_loop, [QT_Q4_0] = q4_0_vec_dot_n_loop,
	[QT_Q4_1] = q4_1_vec_dot_n_loop, [QT_Q5_0] = q5_0_vec_dot_n_loop,
	[QT_Q5_1] = q5_1_vec_dot_n_loop, [QT_Q8_0] = q8_0_vec_dot_n_loop,
	[QT_Q8_1] = q8_1_vec_dot_n_loop, [QT_Q2_K] = q2_K_vec_dot_n_loop,
	[QT_Q3_K] = q3_K_vec_dot_n_loop, [QT_Q4_K] = q4_K_vec_dot_n_loop,
	[QT_Q5_K] = q5_K_vec_dot_n_loop, [QT_Q6_K] = q6_K_vec_dot_n_loop,
	[QT_Q8_K] = q8_K_vec_dot_n_loop,
};

static void
table_init(void)
{
	for (int t = 0; t < QT_COUNT; t++) {
		best_table[t] = ref_table[t];
		if (ref_table[t].name == NULL)
			continue;
		quant_vec_dot_fn dot = quant_simd_vec_dot(t);
		quant_from_float_fn ff = quant_simd_from_float(t);
		quant_vec_dot_n_fn dn = quant_simd_vec_dot_n(t);
		if (dot != NULL)
			best_table[t].vec_dot = dot;
		if (ff != NULL)
			best_table[t].from_float = ff;
		best_dot_n[t] = dn != NULL ? dn : loop_dot_n[t];
	}
}

const struct quant_type *
quant_type_get(int type)
{
	if (type < 0 || type >= QT_COUNT || ref_table[type].name == NULL)
		return NULL;
	pthread_once(&table_once, table_init);
	return &best_table[type];
}

const struct quant_type *
quant_type_get_ref(int type)
{
	if (type < 0 || type >= QT_COUNT || ref_table[type].name == NULL)
		return NULL;
	return &ref_table[type];
}

quant_vec_dot_n_fn
quant_vec_dot_n(int type)
{
	if (quant_type_get(type) == NULL)
		return NULL;
	return best_dot_n[type];
}

size_t
quant_row_size(int type, int64_t n)
{
	const struct quant_type *t = quant_type_get_ref(type);
	if (t == NULL || n < 0 || n % t->blck != 0)
		return 0;
	return (size_t)(n / t->blck) * t->type_size;
}

const char *
quant_type_name(int type)
{
	const struct quant_type *t = quant_type_get_ref(type);
	if (t != NULL)
		return t->name;
	/* Not in the table (its scales live apart from the row), but a name
	 * for messages all the same. */
	return type == QT_Q8_G ? "Q8_G" : "?";
}
