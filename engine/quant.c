/*
 * quant.c: the scalar reference for every tensor type: fp16/bf16
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
 * quantizers of Q4_0..Q5_1 are ggml's reference ones; those of the K-quants
 * are a plain min/max or abs-max fit per sub-block, not llama.cpp's search
 * (make_qkx2_quants etc.): they exist so the bench writer can make valid
 * blocks, and only promise dequantized values close to the input.
 *
 * The table is built once (pthread_once) from the reference entries; then
 * quant_simd.c may replace vec_dot, from_float and vec_dot_n with faster
 * kernels that the tests hold to the reference.  Nothing here prints,
 * allocates or fails: bad arguments are the caller's contract.
 */
#include "engine/quant.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/*
 * The reference dot products are kept out of GCC's loop vectorizer.  GCC
 * 12.2 with -march=native on an AVX512-VNNI machine turns
 * sum ((u8 & 15) - 8) * s8 into a u8 x s8 dot product with the subtraction
 * done in wrapping 8 bits (Q4_0 gave 4080 for -16; Q5_0 likewise, at -O2
 * and -O3).  A reference must be right before it is fast, and the SIMD
 * kernels are the fast path anyway.
 */
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define REF_DOT __attribute__((optimize("no-tree-vectorize")))
#else
#define REF_DOT
#endif

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

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

#define FP16(x) fp16_to_fp32(x)

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

/*
 * ggml's nearest_int: adding 1.5*2^23 leaves the integer, rounded to
 * nearest even, in the low mantissa bits.  ggml asserts |f| <= 2^22-1; the
 * clamp keeps our weight quantizers defined for any input.
 */
static inline int
nearest_int(float f)
{
	if (!(f > -4194303.f))
		f = -4194303.f;
	if (f > 4194303.f)
		f = 4194303.f;
	float v = f + 12582912.f;
	uint32_t i = f32_bits(v);
	return (int)(i & 0x007fffff) - 0x00400000;
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

/* quantize_row_q4_0_ref: d = max/-8 with max the signed value of largest
 * magnitude, so that value lands on -8 and the other side gets 7 steps. */
static void
q4_0_from_float(const float *x, void *vy, int64_t n)
{
	block_q4_0 *y = vy;
	for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
		float amax = 0, max = 0;
		for (int j = 0; j < QK4_0; j++) {
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		const float d = max / -8;
		const float id = inv_or_zero(d);
		y[i].d = fp32_to_fp16(d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			const float x0 = x[j] * id, x1 = x[j + QK4_0 / 2] * id;
			const uint8_t a = (uint8_t)MIN(15, (int8_t)(x0 + 8.5f));
			const uint8_t b = (uint8_t)MIN(15, (int8_t)(x1 + 8.5f));
			y[i].qs[j] = (uint8_t)(a | (b << 4));
		}
	}
}

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

/* quantize_row_q4_1_ref: d = (max - min)/15, m = min. */
static void
q4_1_from_float(const float *x, void *vy, int64_t n)
{
	block_q4_1 *y = vy;
	for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
		float min = x[0], max = x[0];
		for (int j = 1; j < QK4_1; j++) {
			if (x[j] < min)
				min = x[j];
			if (x[j] > max)
				max = x[j];
		}
		const float d = (max - min) / 15;
		const float id = inv_or_zero(d);
		y[i].d = fp32_to_fp16(d);
		y[i].m = fp32_to_fp16(min);
		for (int j = 0; j < QK4_1 / 2; j++) {
			const float x0 = (x[j] - min) * id, x1 = (x[j + QK4_1 / 2] - min) * id;
			const uint8_t a = (uint8_t)MIN(15, (int8_t)(x0 + 0.5f));
			const uint8_t b = (uint8_t)MIN(15, (int8_t)(x1 + 0.5f));
			y[i].qs[j] = (uint8_t)(a | (b << 4));
		}
	}
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

/* quantize_row_q5_0_ref: d = max/-16; bit 4 of quant j goes to bit j of qh. */
static void
q5_0_from_float(const float *x, void *vy, int64_t n)
{
	block_q5_0 *y = vy;
	for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
		float amax = 0, max = 0;
		for (int j = 0; j < QK5_0; j++) {
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		const float d = max / -16;
		const float id = inv_or_zero(d);
		y[i].d = fp32_to_fp16(d);
		uint32_t qh = 0;
		for (int j = 0; j < QK5_0 / 2; j++) {
			const float x0 = x[j] * id, x1 = x[j + QK5_0 / 2] * id;
			const uint8_t a = (uint8_t)MIN(31, (int8_t)(x0 + 16.5f));
			const uint8_t b = (uint8_t)MIN(31, (int8_t)(x1 + 16.5f));
			y[i].qs[j] = (uint8_t)((a & 0x0f) | ((b & 0x0f) << 4));
			qh |= (uint32_t)((a & 0x10u) >> 4) << j;
			qh |= (uint32_t)((b & 0x10u) >> 4) << (j + QK5_0 / 2);
		}
		memcpy(y[i].qh, &qh, sizeof qh);
	}
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

/* quantize_row_q5_1_ref: d = (max - min)/31, m = min. */
static void
q5_1_from_float(const float *x, void *vy, int64_t n)
{
	block_q5_1 *y = vy;
	for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
		float min = x[0], max = x[0];
		for (int j = 1; j < QK5_1; j++) {
			if (x[j] < min)
				min = x[j];
			if (x[j] > max)
				max = x[j];
		}
		const float d = (max - min) / 31;
		const float id = inv_or_zero(d);
		y[i].d = fp32_to_fp16(d);
		y[i].m = fp32_to_fp16(min);
		uint32_t qh = 0;
		for (int j = 0; j < QK5_1 / 2; j++) {
			const float x0 = (x[j] - min) * id, x1 = (x[j + QK5_1 / 2] - min) * id;
			const uint8_t a = (uint8_t)MIN(31, (int)(x0 + 0.5f));
			const uint8_t b = (uint8_t)MIN(31, (int)(x1 + 0.5f));
			y[i].qs[j] = (uint8_t)((a & 0x0f) | ((b & 0x0f) << 4));
			qh |= (uint32_t)((a & 0x10u) >> 4) << j;
			qh |= (uint32_t)((b & 0x10u) >> 4) << (j + QK5_1 / 2);
		}
		memcpy(y[i].qh, &qh, sizeof qh);
	}
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
/* Q8_K: the activation type of the K-quants                           */
/* ------------------------------------------------------------------ */

/*
 * quantize_row_q8_K_ref: max is the signed value of largest magnitude (the
 * first one on a tie), iscale = -127/max, q = nearest_int(iscale*x) (ties to
 * even) capped at 127, d = 1/iscale as a float, bsums over each 16.  ggml
 * leaves bsums untouched for an all-zero block; we zero them.
 */
static void
q8_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q8_K *y = vy;
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max = 0, amax = 0;
		for (int j = 0; j < QK_K; j++) {
			if (fabsf(x[j]) > amax) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		/* An overflowing iscale (max under ~1e-38) would make ggml store
		 * d = 0 over undefined quants; a zero block is the same value. */
		const float iscale = amax ? -127.f / max : 0.0f;
		if (!amax || isinf(iscale)) {
			memset(&y[i], 0, sizeof y[i]);
			continue;
		}
		for (int j = 0; j < QK_K; j++)
			y[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
		for (int j = 0; j < QK_K / 16; j++) {
			int sum = 0;
			for (int k = 0; k < 16; k++)
				sum += y[i].qs[j * 16 + k];
			y[i].bsums[j] = (int16_t)sum;
		}
		y[i].d = 1 / iscale;
	}
}

static void
q8_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q8_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++)
			y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

/* Not a ggml kernel (Q8_K is never a weight there); for a total table. */
static REF_DOT void
q8_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q8_K *x = vx, *y = vy;
	float sumf = 0;
	for (int i = 0; i < n / QK_K; i++) {
		int sumi = 0;
		for (int j = 0; j < QK_K; j++)
			sumi += x[i].qs[j] * y[i].qs[j];
		sumf += sumi * (x[i].d * y[i].d);
	}
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* K-quant helpers                                                     */
/* ------------------------------------------------------------------ */

/* Scale and min j (0..7) of the 12-byte, 6-bit packing of Q4_K and Q5_K. */
static inline void
scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

static inline void
pack_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t *q)
{
	if (j < 4) {
		q[j] = ls;
		q[j + 4] = lm;
	} else {
		q[j + 4] = (uint8_t)((ls & 0x0f) | ((lm & 0x0f) << 4));
		q[j - 4] |= (uint8_t)((ls >> 4) << 6);
		q[j] |= (uint8_t)((lm >> 4) << 6);
	}
}

/* The 16 signed scales of Q3_K: 4 low bits in bytes 0..7 (low nibble for
 * 0..7, high for 8..15), 2 high bits in bytes 8..11; stored with +32. */
void
quant_q3_K_scales(const uint8_t *p, int8_t *sc)
{
	for (int j = 0; j < 16; j++) {
		int lo = j < 8 ? p[j] & 0x0f : p[j - 8] >> 4;
		int hi = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
		sc[j] = (int8_t)((lo | (hi << 4)) - 32);
	}
}

/* Plain asymmetric fit of n values to 0..nmax: returns the step, sets
 * *neg_min to -min (min clamped to <= 0 as the K-quants store it). */
static float
fit_minmax(int n, int nmax, const float *x, float *neg_min)
{
	float min = x[0], max = x[0];
	for (int i = 1; i < n; i++) {
		min = MIN(min, x[i]);
		max = MAX(max, x[i]);
	}
	if (min > 0)
		min = 0;
	*neg_min = -min;
	return max > min ? (max - min) / nmax : 0.f;
}

/* Plain symmetric fit to -nmax..nmax-1: the value of largest magnitude maps
 * to -nmax, so the scale has the opposite sign of that value. */
static float
fit_absmax(int n, int nmax, const float *x)
{
	float amax = 0, max = 0;
	for (int i = 0; i < n; i++) {
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	}
	return amax ? max / -(float)nmax : 0.f;
}

/* ------------------------------------------------------------------ */
/* Q2_K                                                                */
/* ------------------------------------------------------------------ */

/* Simple fit (not ggml's search): 16 sub-blocks of 16, 2-bit quants,
 * 4-bit scale (low nibble) and min (high nibble) per sub-block. */
static void
q2_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q2_K *y = vy;
	uint8_t L[QK_K];
	float scales[16], mins[16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, max_min = 0;
		for (int j = 0; j < 16; j++) {
			scales[j] = fit_minmax(16, 3, x + 16 * j, &mins[j]);
			max_scale = MAX(max_scale, scales[j]);
			max_min = MAX(max_min, mins[j]);
		}
		memset(&y[i], 0, sizeof y[i]);
		if (max_scale > 0) {
			const float is = 15.f / max_scale;
			for (int j = 0; j < 16; j++)
				y[i].scales[j] = (uint8_t)MIN(15, nearest_int(is * scales[j]));
			y[i].d = fp32_to_fp16(max_scale / 15.f);
		}
		if (max_min > 0) {
			const float im = 15.f / max_min;
			for (int j = 0; j < 16; j++)
				y[i].scales[j] |= (uint8_t)(MIN(15, nearest_int(im * mins[j])) << 4);
			y[i].dmin = fp32_to_fp16(max_min / 15.f);
		}
		memset(L, 0, sizeof L);
		for (int j = 0; j < 16; j++) {
			const float d = FP16(y[i].d) * (y[i].scales[j] & 0x0f);
			if (!d)
				continue;
			const float dm = FP16(y[i].dmin) * (y[i].scales[j] >> 4);
			for (int k = 0; k < 16; k++)
				L[16 * j + k] = (uint8_t)MAX(0, MIN(3, nearest_int((x[16 * j + k] + dm) / d)));
		}
		for (int j = 0; j < QK_K; j += 128)
			for (int l = 0; l < 32; l++)
				y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
				    (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
	}
}

/* dequantize_row_q2_K: value 128k + 32s + l is bits 2s of qs[32k + l]. */
static void
q2_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q2_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = FP16(x[i].d), min = FP16(x[i].dmin);
		const uint8_t *q = x[i].qs;
		int is = 0;
		for (int k = 0; k < QK_K; k += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2) {
				for (int half = 0; half < 2; half++) {
					const uint8_t sc = x[i].scales[is++];
					const float dl = d * (sc & 0x0f), ml = min * (sc >> 4);
					for (int l = 0; l < 16; l++)
						*y++ = dl * (int8_t)((q[l + 16 * half] >> shift) & 3) - ml;
				}
			}
		}
	}
}

/* ggml_vec_dot_q2_K_q8_K: per super-block one integer sum for the scales
 * and one for the mins (through bsums), then dall*isum - dmin*summs. */
static REF_DOT void
q2_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q2_K *x = vx;
	const block_q8_K *y = vy;
	float sumf = 0;
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *q2 = x[i].qs;
		const int8_t *q8 = y[i].qs;
		const uint8_t *sc = x[i].scales;
		int summs = 0;
		for (int j = 0; j < 16; j++)
			summs += y[i].bsums[j] * (sc[j] >> 4);
		const float dall = y[i].d * FP16(x[i].d);
		const float dmin = y[i].d * FP16(x[i].dmin);
		int isum = 0, is = 0;
		for (int k = 0; k < QK_K / 128; k++, q2 += 32) {
			for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
				int s0 = 0, s1 = 0;
				for (int l = 0; l < 16; l++)
					s0 += q8[l] * ((q2[l] >> shift) & 3);
				for (int l = 16; l < 32; l++)
					s1 += q8[l] * ((q2[l] >> shift) & 3);
				isum += (sc[is] & 0x0f) * s0 + (sc[is + 1] & 0x0f) * s1;
				is += 2;
			}
		}
		sumf += dall * isum - dmin * summs;
	}
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* Q3_K                                                                */
/* ------------------------------------------------------------------ */

/* Simple fit: 16 sub-blocks of 16, quants -4..3 (2 low bits in qs, the
 * third in hmask), 6-bit signed scales relative to d. */
static void
q3_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q3_K *y = vy;
	int8_t L[QK_K];
	float scales[16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, amax = 0;
		for (int j = 0; j < 16; j++) {
			scales[j] = fit_absmax(16, 4, x + 16 * j);
			if (fabsf(scales[j]) > amax) {
				amax = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		memset(&y[i], 0, sizeof y[i]);
		if (max_scale) {
			const float iscale = -32.f / max_scale;
			for (int j = 0; j < 16; j++) {
				int l = MAX(-32, MIN(31, nearest_int(iscale * scales[j]))) + 32;
				if (j < 8)
					y[i].scales[j] = (uint8_t)(l & 0x0f);
				else
					y[i].scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
				y[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
			}
			y[i].d = fp32_to_fp16(1 / iscale);
		}
		int8_t sc[16];
		quant_q3_K_scales(y[i].scales, sc);
		for (int j = 0; j < 16; j++) {
			const float d = FP16(y[i].d) * sc[j];
			for (int k = 0; k < 16; k++)
				L[16 * j + k] = (int8_t)(d ? MAX(-4, MIN(3, nearest_int(x[16 * j + k] / d))) + 4 : 4);
		}
		for (int j = 0; j < QK_K; j++) {
			if (L[j] > 3) {
				y[i].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
				L[j] -= 4;
			}
		}
		for (int j = 0; j < QK_K; j += 128)
			for (int l = 0; l < 32; l++)
				y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
				    (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
	}
}

/* dequantize_row_q3_K: value e has low bits (qs[32k + l] >> 2s) & 3 and
 * its high bit in hmask[e % 32] bit e / 32; a clear high bit means -4. */
static void
q3_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q3_K *x = vx;
	int8_t sc[16];
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d_all = FP16(x[i].d);
		const uint8_t *q = x[i].qs, *hm = x[i].hmask;
		uint8_t m = 1;
		int is = 0;
		quant_q3_K_scales(x[i].scales, sc);
		for (int k = 0; k < QK_K; k += 128, q += 32) {
			for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
				for (int half = 0; half < 2; half++) {
					const float dl = d_all * sc[is++];
					for (int l = 16 * half; l < 16 * half + 16; l++)
						*y++ = dl * ((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
				}
			}
		}
	}
}

/* ggml_vec_dot_q3_K_q8_K (generic): eight integer lanes per super-block,
 * each scaled into a float lane; lanes summed at the end. */
static REF_DOT void
q3_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q3_K *x = vx;
	const block_q8_K *y = vy;
	int8_t aux8[QK_K], sc[16];
	float sums[8] = {0};
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *q3 = x[i].qs, *hm = x[i].hmask;
		int8_t *a = aux8;
		uint8_t m = 1;
		for (int j = 0; j < QK_K; j += 128, q3 += 32)
			for (int shift = 0; shift < 8; shift += 2, m <<= 1, a += 32)
				for (int l = 0; l < 32; l++)
					a[l] = (int8_t)(((q3[l] >> shift) & 3) - (hm[l] & m ? 0 : 4));
		quant_q3_K_scales(x[i].scales, sc);
		int32_t aux32[8] = {0};
		for (int j = 0; j < QK_K; j++)
			aux32[j % 8] += sc[j / 16] * (y[i].qs[j] * aux8[j]);
		const float d = FP16(x[i].d) * y[i].d;
		for (int l = 0; l < 8; l++)
			sums[l] += d * aux32[l];
	}
	float sumf = 0;
	for (int l = 0; l < 8; l++)
		sumf += sums[l];
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* Q4_K and Q5_K                                                       */
/* ------------------------------------------------------------------ */

/* Simple fit shared by Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block of
 * 32 a min/max step and min, both quantized to 6 bits against the largest;
 * then every value re-quantized against the stored scale and min. */
static void
k4_fit(const float *x, int nmax, fp16_t *pd, fp16_t *pdmin, uint8_t *scales, uint8_t *L)
{
	float sc[8], mn[8], max_scale = 0, max_min = 0;
	for (int j = 0; j < 8; j++) {
		sc[j] = fit_minmax(32, nmax, x + 32 * j, &mn[j]);
		max_scale = MAX(max_scale, sc[j]);
		max_min = MAX(max_min, mn[j]);
	}
	const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	memset(scales, 0, K_SCALE_SIZE);
	for (int j = 0; j < 8; j++)
		pack_scale_min_k4(j, (uint8_t)MIN(63, nearest_int(inv_scale * sc[j])),
		    (uint8_t)MIN(63, nearest_int(inv_min * mn[j])), scales);
	*pd = fp32_to_fp16(max_scale / 63.f);
	*pdmin = fp32_to_fp16(max_min / 63.f);
	memset(L, 0, QK_K);
	for (int j = 0; j < 8; j++) {
		uint8_t s6, m6;
		scale_min_k4(j, scales, &s6, &m6);
		const float d = FP16(*pd) * s6;
		if (!d)
			continue;
		const float dm = FP16(*pdmin) * m6;
		for (int k = 0; k < 32; k++)
			L[32 * j + k] = (uint8_t)MAX(0, MIN(nmax, nearest_int((x[32 * j + k] + dm) / d)));
	}
}

static void
q4_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q4_K *y = vy;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		k4_fit(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *q = y[i].qs;
		for (int j = 0; j < QK_K; j += 64, q += 32)
			for (int l = 0; l < 32; l++)
				q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
	}
}

/* dequantize_row_q4_K: sub-block 2k in the low nibbles of qs[32k..], 2k+1
 * in the high nibbles of the same bytes; w = d*sc*q - dmin*m. */
static void
q4_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q4_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *q = x[i].qs;
		const float d = FP16(x[i].d), min = FP16(x[i].dmin);
		uint8_t sc, m;
		for (int is = 0; is < 8; is += 2, q += 32) {
			scale_min_k4(is, x[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = min * m;
			scale_min_k4(is + 1, x[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = min * m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (q[l] & 0x0f) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (q[l] >> 4) - m2;
		}
	}
}

/* Unpack the 6-bit scales and mins of Q4_K/Q5_K into sc[8], mn[8]. */
static inline void
k4_scales(const uint8_t *p, uint8_t *sc, uint8_t *mn)
{
	for (int j = 0; j < 8; j++)
		scale_min_k4(j, p, &sc[j], &mn[j]);
}

/* The common tail of ggml's generic Q4_K/Q5_K dot: aux8 holds the 256
 * unsigned quants; eight integer lanes scaled into float lanes, the mins
 * through bsums subtracted from sumf per super-block. */
static inline REF_DOT void
k4_dot_block(const int8_t *aux8, const uint8_t *packed_scales, const block_q8_K *y,
    float d, float dmin, float *sums, float *sumf)
{
	uint8_t sc[8], mn[8];
	k4_scales(packed_scales, sc, mn);
	int sumi = 0;
	for (int j = 0; j < 16; j++)
		sumi += y->bsums[j] * mn[j / 2];
	int32_t aux32[8] = {0};
	for (int j = 0; j < QK_K; j++)
		aux32[j % 8] += sc[j / 32] * (y->qs[j] * aux8[j]);
	for (int l = 0; l < 8; l++)
		sums[l] += d * aux32[l];
	*sumf -= dmin * sumi;
}

/* ggml_vec_dot_q4_K_q8_K (generic) */
static REF_DOT void
q4_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q4_K *x = vx;
	const block_q8_K *y = vy;
	int8_t aux8[QK_K];
	float sums[8] = {0}, sumf = 0;
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *q4 = x[i].qs;
		int8_t *a = aux8;
		for (int j = 0; j < QK_K / 64; j++, q4 += 32, a += 64) {
			for (int l = 0; l < 32; l++) {
				a[l] = (int8_t)(q4[l] & 0x0f);
				a[l + 32] = (int8_t)(q4[l] >> 4);
			}
		}
		k4_dot_block(aux8, x[i].scales, &y[i], FP16(x[i].d) * y[i].d,
		    FP16(x[i].dmin) * y[i].d, sums, &sumf);
	}
	for (int l = 0; l < 8; l++)
		sumf += sums[l];
	*s = sumf;
}

static void
q5_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q5_K *y = vy;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		k4_fit(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *ql = y[i].qs, *qh = y[i].qh;
		memset(qh, 0, QK_K / 8);
		uint8_t m1 = 1, m2 = 2;
		for (int j = 0; j < QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
			for (int l = 0; l < 32; l++) {
				int l1 = L[j + l], l2 = L[j + l + 32];
				if (l1 > 15) {
					l1 -= 16;
					qh[l] |= m1;
				}
				if (l2 > 15) {
					l2 -= 16;
					qh[l] |= m2;
				}
				ql[l] = (uint8_t)(l1 | (l2 << 4));
			}
		}
	}
}

/* dequantize_row_q5_K: as Q4_K, the fifth bit of value 64k + l (+32) in
 * qh[l] bit 2k (2k+1). */
static void
q5_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q5_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const uint8_t *ql = x[i].qs, *qh = x[i].qh;
		const float d = FP16(x[i].d), min = FP16(x[i].dmin);
		uint8_t sc, m, u1 = 1, u2 = 2;
		for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
			scale_min_k4(is, x[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = min * m;
			scale_min_k4(is + 1, x[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = min * m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * ((ql[l] & 0x0f) + (qh[l] & u1 ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
		}
	}
}

/* ggml_vec_dot_q5_K_q8_K (generic) */
static REF_DOT void
q5_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q5_K *x = vx;
	const block_q8_K *y = vy;
	int8_t aux8[QK_K];
	float sums[8] = {0}, sumf = 0;
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *q4 = x[i].qs, *hm = x[i].qh;
		int8_t *a = aux8;
		uint8_t m = 1;
		for (int j = 0; j < QK_K / 64; j++, q4 += 32, a += 64, m <<= 2) {
			for (int l = 0; l < 32; l++) {
				a[l] = (int8_t)((q4[l] & 0x0f) + (hm[l] & m ? 16 : 0));
				a[l + 32] = (int8_t)((q4[l] >> 4) + (hm[l] & (m << 1) ? 16 : 0));
			}
		}
		k4_dot_block(aux8, x[i].scales, &y[i], FP16(x[i].d) * y[i].d,
		    FP16(x[i].dmin) * y[i].d, sums, &sumf);
	}
	for (int l = 0; l < 8; l++)
		sumf += sums[l];
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* Q6_K                                                                */
/* ------------------------------------------------------------------ */

/* Simple fit: 16 sub-blocks of 16, quants -32..31, int8 scales relative to
 * d = max_scale/-128 (as ggml stores them). */
static void
q6_K_from_float(const float *x, void *vy, int64_t n)
{
	block_q6_K *y = vy;
	uint8_t L[QK_K];
	float scales[16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, amax = 0;
		for (int j = 0; j < 16; j++) {
			scales[j] = fit_absmax(16, 32, x + 16 * j);
			if (fabsf(scales[j]) > amax) {
				amax = fabsf(scales[j]);
				max_scale = scales[j];
			}
		}
		memset(&y[i], 0, sizeof y[i]);
		if (!amax)
			continue;
		const float iscale = -128.f / max_scale;
		y[i].d = fp32_to_fp16(1 / iscale);
		for (int j = 0; j < 16; j++)
			y[i].scales[j] = (int8_t)MIN(127, nearest_int(iscale * scales[j]));
		for (int j = 0; j < 16; j++) {
			const float d = FP16(y[i].d) * y[i].scales[j];
			for (int k = 0; k < 16; k++)
				L[16 * j + k] = (uint8_t)(d ? MAX(-32, MIN(31, nearest_int(x[16 * j + k] / d))) + 32 : 32);
		}
		uint8_t *ql = y[i].ql, *qh = y[i].qh;
		for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
			for (int l = 0; l < 32; l++) {
				ql[l] = (uint8_t)((L[j + l] & 0x0f) | ((L[j + l + 64] & 0x0f) << 4));
				ql[l + 32] = (uint8_t)((L[j + l + 32] & 0x0f) | ((L[j + l + 96] & 0x0f) << 4));
				qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
				    ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
			}
		}
	}
}

/* dequantize_row_q6_K: per 128 values, ql[0..63] hold the low nibbles of
 * values l, l+32 (low) and l+64, l+96 (high), qh[l] their top two bits. */
static void
q6_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q6_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d = FP16(x[i].d);
		const uint8_t *ql = x[i].ql, *qh = x[i].qh;
		const int8_t *sc = x[i].scales;
		for (int k = 0; k < QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8) {
			for (int l = 0; l < 32; l++) {
				const int is = l / 16;
				const int8_t q1 = (int8_t)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
				const int8_t q2 = (int8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
				const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
				y[l] = d * sc[is] * q1;
				y[l + 32] = d * sc[is + 2] * q2;
				y[l + 64] = d * sc[is + 4] * q3;
				y[l + 96] = d * sc[is + 6] * q4;
			}
		}
	}
}

/* ggml_vec_dot_q6_K_q8_K (generic) */
static REF_DOT void
q6_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
{
	const block_q6_K *x = vx;
	const block_q8_K *y = vy;
	int8_t aux8[QK_K];
	float sums[8] = {0};
	for (int i = 0; i < n / QK_K; i++) {
		const uint8_t *ql = x[i].ql, *qh = x[i].qh;
		int8_t *a = aux8;
		for (int j = 0; j < QK_K; j += 128, a += 128, ql += 64, qh += 32) {
			for (int l = 0; l < 32; l++) {
				a[l] = (int8_t)((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
				a[l + 32] = (int8_t)((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
				a[l + 64] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				a[l + 96] = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
			}
		}
		int32_t aux32[8] = {0};
		for (int j = 0; j < QK_K; j++)
			aux32[j % 8] += x[i].scales[j / 16] * (y[i].qs[j] * aux8[j]);
		const float d = FP16(x[i].d) * y[i].d;
		for (int l = 0; l < 8; l++)
			sums[l] += d * aux32[l];
	}
	float sumf = 0;
	for (int l = 0; l < 8; l++)
		sumf += sums[l];
	*s = sumf;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

#define ENTRY(id, nm, bl, sz, vdt, pfx) \
	[id] = { nm, bl, sz, vdt, pfx##_to_float, pfx##_from_float, \
		 pfx##_vec_dot_ref, pfx##_vec_dot_ref }

static const struct quant_type ref_table[QT_COUNT] = {
	ENTRY(QT_F32, "F32", 1, sizeof(float), QT_F32, f32),
	ENTRY(QT_F16, "F16", 1, sizeof(fp16_t), QT_F16, f16),
	ENTRY(QT_BF16, "BF16", 1, sizeof(bf16_t), QT_BF16, bf16),
	ENTRY(QT_Q4_0, "Q4_0", QK4_0, sizeof(block_q4_0), QT_Q8_0, q4_0),
	ENTRY(QT_Q4_1, "Q4_1", QK4_1, sizeof(block_q4_1), QT_Q8_1, q4_1),
	ENTRY(QT_Q5_0, "Q5_0", QK5_0, sizeof(block_q5_0), QT_Q8_0, q5_0),
	ENTRY(QT_Q5_1, "Q5_1", QK5_1, sizeof(block_q5_1), QT_Q8_1, q5_1),
	ENTRY(QT_Q8_0, "Q8_0", QK8_0, sizeof(block_q8_0), QT_Q8_0, q8_0),
	ENTRY(QT_Q8_1, "Q8_1", QK8_1, sizeof(block_q8_1), QT_Q8_1, q8_1),
	ENTRY(QT_Q2_K, "Q2_K", QK_K, sizeof(block_q2_K), QT_Q8_K, q2_K),
	ENTRY(QT_Q3_K, "Q3_K", QK_K, sizeof(block_q3_K), QT_Q8_K, q3_K),
	ENTRY(QT_Q4_K, "Q4_K", QK_K, sizeof(block_q4_K), QT_Q8_K, q4_K),
	ENTRY(QT_Q5_K, "Q5_K", QK_K, sizeof(block_q5_K), QT_Q8_K, q5_K),
	ENTRY(QT_Q6_K, "Q6_K", QK_K, sizeof(block_q6_K), QT_Q8_K, q6_K),
	ENTRY(QT_Q8_K, "Q8_K", QK_K, sizeof(block_q8_K), QT_Q8_K, q8_K),
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
