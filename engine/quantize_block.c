/*
 * quantize_block.c: the weight quantizers, one per block type, following
 * ggml's reference ones (quantize_row_*_ref in ggml-quants.c) operation for
 * operation, so that a tensor quantized here has the bytes llama-quantize
 * gives it when no importance matrix is used: the same scale searches
 * (make_qx_quants for Q6_K, make_q3_quants for Q3_K, make_qkx2_quants for
 * Q2_K/Q4_K/Q5_K), the same rounding (nearest_int's magic-number trick,
 * ties to even) and the same packing.  Where a compiler fuses a multiply
 * and an add differently from llama.cpp's build a scale can move by an
 * ulp, which is why the tests ask for 99% identical blocks, not 100%.
 *
 * The functions are pure: n floats in, n / blck blocks out, no state, so
 * the driver runs them over rows on any number of threads.
 */
#include "engine/quantize.h"

#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
/* Below this a group is "all zero" (ggml's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

static inline float
f16r(fp16_t h)
{
	return fp16_to_fp32(h);
}

/* ggml's nearest_int: 1.5 * 2^23 added leaves the integer, rounded to
 * nearest even, in the low mantissa bits.  ggml asserts |f| < 2^22; we
 * clamp so that no input is undefined. */
static inline int
nearest_int(float f)
{
	if (!(f > -4194303.f))
		f = -4194303.f;
	if (f > 4194303.f)
		f = 4194303.f;
	float v = f + 12582912.f;
	int32_t i;
	memcpy(&i, &v, sizeof i);
	return (i & 0x007fffff) - 0x00400000;
}

/* ------------------------------------------------------------------ */
/* 32-weight blocks                                                    */
/* ------------------------------------------------------------------ */

/* d = max / -8 with max the signed value of largest magnitude: that value
 * lands on quant 0 (= -8) and the other side gets 7 steps. */
void
quantize_block_q4_0(const float *x, void *vy, int64_t n)
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
		const float id = d ? 1.0f / d : 0.0f;
		y[i].d = fp32_to_fp16(d);
		for (int j = 0; j < QK4_0 / 2; j++) {
			const float x0 = x[j] * id, x1 = x[j + QK4_0 / 2] * id;
			const uint8_t a = (uint8_t)MIN(15, (int8_t)(x0 + 8.5f));
			const uint8_t b = (uint8_t)MIN(15, (int8_t)(x1 + 8.5f));
			y[i].qs[j] = (uint8_t)(a | (b << 4));
		}
	}
}

/* d = (max - min) / 15, m = min; quants truncate x + 0.5. */
void
quantize_block_q4_1(const float *x, void *vy, int64_t n)
{
	block_q4_1 *y = vy;
	for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
		float min = INFINITY, max = -INFINITY;
		for (int j = 0; j < QK4_1; j++) {
			if (x[j] < min)
				min = x[j];
			if (x[j] > max)
				max = x[j];
		}
		const float d = (max - min) / 15;
		const float id = d ? 1.0f / d : 0.0f;
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

/* As Q4_0 with 16 steps a side; bit 4 of quant j goes to bit j of qh. */
void
quantize_block_q5_0(const float *x, void *vy, int64_t n)
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
		const float id = d ? 1.0f / d : 0.0f;
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

/* As Q4_1 with 31 steps. */
void
quantize_block_q5_1(const float *x, void *vy, int64_t n)
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
		const float id = d ? 1.0f / d : 0.0f;
		y[i].d = fp32_to_fp16(d);
		y[i].m = fp32_to_fp16(min);
		uint32_t qh = 0;
		for (int j = 0; j < QK5_1 / 2; j++) {
			const float x0 = (x[j] - min) * id, x1 = (x[j + QK5_1 / 2] - min) * id;
			const uint8_t a = (uint8_t)(x0 + 0.5f);
			const uint8_t b = (uint8_t)(x1 + 0.5f);
			y[i].qs[j] = (uint8_t)((a & 0x0f) | ((b & 0x0f) << 4));
			qh |= (uint32_t)((a & 0x10u) >> 4) << j;
			qh |= (uint32_t)((b & 0x10u) >> 4) << (j + QK5_1 / 2);
		}
		memcpy(y[i].qh, &qh, sizeof qh);
	}
}

/* quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d) (ties away from
 * zero), unlike the activation quantizer. */
void
quantize_block_q8_0(const float *x, void *vy, int64_t n)
{
	block_q8_0 *y = vy;
	for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
		float amax = 0;
		for (int j = 0; j < QK8_0; j++)
			amax = MAX(amax, fabsf(x[j]));
		const float d = amax / ((1 << 7) - 1);
		const float id = d ? 1.0f / d : 0.0f;
		y[i].d = fp32_to_fp16(d);
		for (int j = 0; j < QK8_0; j++)
			y[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

/* ------------------------------------------------------------------ */
/* The K-quant scale searches                                          */
/* ------------------------------------------------------------------ */

/*
 * make_qx_quants with rmse_type 1 and no importance: symmetric quants
 * -nmax..nmax-1 (stored + nmax in L); the scale that maximises
 * (sum w x l)^2 / sum w l^2 with w = x^2, over 19 trial inverse scales
 * around -nmax / max.
 */
static float
make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;
	for (int i = 0; i < n; i++) {
		const float ax = fabsf(x[i]);
		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < GROUP_MAX_EPS) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		l = MAX(-nmax, MIN(nmax - 1, l));
		L[i] = (int8_t)(l + nmax);
		const float w = x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	float scale = suml2 ? sumlx / suml2 : 0.0f;
	float best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		iscale = -(nmax + 0.1f * is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * x[i]);
			l = MAX(-nmax, MIN(nmax - 1, l));
			const float w = x[i] * x[i];
			sumlx += w * x[i] * l;
			suml2 += w * l * l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			for (int i = 0; i < n; i++) {
				const int l = nearest_int(iscale * x[i]);
				L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
			}
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/*
 * make_q3_quants with do_rmse: start from -nmax / max, then up to five
 * passes that move single quants to where the weighted fit improves.
 */
static float
make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
	float max = 0, amax = 0;
	for (int i = 0; i < n; i++) {
		const float ax = fabsf(x[i]);
		if (ax > amax) {
			amax = ax;
			max = x[i];
		}
	}
	if (amax < GROUP_MAX_EPS) {
		memset(L, 0, (size_t)n);
		return 0.f;
	}
	const float iscale = -nmax / max;
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = nearest_int(iscale * x[i]);
		l = MAX(-nmax, MIN(nmax - 1, l));
		L[i] = (int8_t)l;
		const float w = x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	for (int itry = 0; itry < 5; itry++) {
		int n_changed = 0;
		for (int i = 0; i < n; i++) {
			const float w = x[i] * x[i];
			float slx = sumlx - w * x[i] * L[i];
			if (slx > 0) {
				float sl2 = suml2 - w * L[i] * L[i];
				int new_l = nearest_int(x[i] * sl2 / slx);
				new_l = MAX(-nmax, MIN(nmax - 1, new_l));
				if (new_l != L[i]) {
					slx += w * x[i] * new_l;
					sl2 += w * new_l * new_l;
					if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (int8_t)new_l;
						sumlx = slx;
						suml2 = sl2;
						n_changed++;
					}
				}
			}
		}
		if (!n_changed)
			break;
	}
	for (int i = 0; i < n; i++)
		L[i] = (int8_t)(L[i] + nmax);
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/*
 * make_qkx2_quants: asymmetric quants 0..nmax with a min <= 0.  Starting
 * from the min/max fit, nstep + 1 trial inverse scales (rmin + rdelta*is +
 * nmax) / (max - min); for each the weighted least-squares scale and min,
 * kept when its weighted error (absolute with use_mad, else squared) is
 * lower.  Returns the scale, *the_min = -min.
 */
static float
make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
    float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad)
{
	float min = x[0], max = x[0];
	float sum_w = weights[0];
	float sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		if (x[i] < min)
			min = x[i];
		if (x[i] > max)
			max = x[i];
		const float w = weights[i];
		sum_w += w;
		sum_x += w * x[i];
	}
	if (min > 0)
		min = 0;
	if (max == min) {
		memset(L, 0, (size_t)n);
		*the_min = -min;
		return 0.f;
	}
	float iscale = nmax / (max - min);
	float scale = 1 / iscale;
	float best_error = 0;
	for (int i = 0; i < n; i++) {
		const int l = nearest_int(iscale * (x[i] - min));
		L[i] = (uint8_t)MAX(0, MIN(nmax, l));
		float diff = scale * L[i] + min - x[i];
		diff = use_mad ? fabsf(diff) : diff * diff;
		best_error += weights[i] * diff;
	}
	for (int is = 0; is <= nstep; is++) {
		iscale = (rmin + rdelta * is + nmax) / (max - min);
		float sum_l = 0, sum_l2 = 0, sum_xl = 0;
		for (int i = 0; i < n; i++) {
			int l = nearest_int(iscale * (x[i] - min));
			l = MAX(0, MIN(nmax, l));
			Laux[i] = (uint8_t)l;
			const float w = weights[i];
			sum_l += w * l;
			sum_l2 += w * l * l;
			sum_xl += w * l * x[i];
		}
		const float D = sum_w * sum_l2 - sum_l * sum_l;
		if (D > 0) {
			float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
			float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
			if (this_min > 0) {
				this_min = 0;
				this_scale = sum_xl / sum_l2;
			}
			float cur_error = 0;
			for (int i = 0; i < n; i++) {
				float diff = this_scale * Laux[i] + this_min - x[i];
				diff = use_mad ? fabsf(diff) : diff * diff;
				cur_error += weights[i] * diff;
			}
			if (cur_error < best_error) {
				memcpy(L, Laux, (size_t)n);
				best_error = cur_error;
				scale = this_scale;
				min = this_min;
			}
		}
	}
	*the_min = -min;
	return scale;
}

/* The 12-byte packing of eight 6-bit scales and mins (Q4_K, Q5_K). */
static void
get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
	if (j < 4) {
		*d = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*d = (uint8_t)((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

static void
put_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t *q)
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

/* Four 2-bit values 32 apart share a byte (Q2_K and the low bits of Q3_K). */
static void
pack_2bit(const uint8_t *L, uint8_t *qs)
{
	for (int j = 0; j < QK_K; j += 128)
		for (int l = 0; l < 32; l++)
			qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
			    (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ------------------------------------------------------------------ */
/* Q2_K                                                                */
/* ------------------------------------------------------------------ */

/* 16 groups of 16 fitted with weights |x| and absolute error; scales and
 * mins then quantized to 4 bits against the largest of each. */
void
quantize_block_q2_K(const float *x, void *vy, int64_t n)
{
	block_q2_K *y = vy;
	uint8_t L[QK_K], Laux[16];
	float weights[16], mins[QK_K / 16], scales[QK_K / 16];
	const float q4scale = 15.f;

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, max_min = 0;
		for (int j = 0; j < QK_K / 16; j++) {
			for (int l = 0; l < 16; l++)
				weights[l] = fabsf(x[16 * j + l]);
			scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j],
			    Laux, -0.5f, 0.1f, 15, 1);
			if (scales[j] > max_scale)
				max_scale = scales[j];
			if (mins[j] > max_min)
				max_min = mins[j];
		}
		if (max_scale > 0) {
			const float iscale = q4scale / max_scale;
			for (int j = 0; j < QK_K / 16; j++)
				y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
			y[i].d = fp32_to_fp16(max_scale / q4scale);
		} else {
			memset(y[i].scales, 0, sizeof y[i].scales);
			y[i].d = fp32_to_fp16(0.f);
		}
		if (max_min > 0) {
			const float iscale = q4scale / max_min;
			for (int j = 0; j < QK_K / 16; j++)
				y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
			y[i].dmin = fp32_to_fp16(max_min / q4scale);
		} else {
			y[i].dmin = fp32_to_fp16(0.f);
		}
		for (int j = 0; j < QK_K / 16; j++) {
			const float d = f16r(y[i].d) * (y[i].scales[j] & 0x0f);
			if (!d)
				continue;
			const float dm = f16r(y[i].dmin) * (y[i].scales[j] >> 4);
			for (int ii = 0; ii < 16; ii++) {
				const int l = nearest_int((x[16 * j + ii] + dm) / d);
				L[16 * j + ii] = (uint8_t)MAX(0, MIN(3, l));
			}
		}
		pack_2bit(L, y[i].qs);
	}
}

/* ------------------------------------------------------------------ */
/* Q3_K                                                                */
/* ------------------------------------------------------------------ */

void
quantize_block_q3_K(const float *x, void *vy, int64_t n)
{
	block_q3_K *y = vy;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, amax = 0;
		for (int j = 0; j < QK_K / 16; j++) {
			scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
			const float scale = fabsf(scales[j]);
			if (scale > amax) {
				amax = scale;
				max_scale = scales[j];
			}
		}
		memset(y[i].scales, 0, 12);
		if (max_scale) {
			const float iscale = -32.f / max_scale;
			for (int j = 0; j < QK_K / 16; j++) {
				int8_t l = (int8_t)nearest_int(iscale * scales[j]);
				l = (int8_t)(MAX(-32, MIN(31, l)) + 32);
				if (j < 8)
					y[i].scales[j] = (uint8_t)(l & 0x0f);
				else
					y[i].scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
				l >>= 4;
				y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
			}
			y[i].d = fp32_to_fp16(1 / iscale);
		} else {
			y[i].d = fp32_to_fp16(0.f);
		}
		for (int j = 0; j < QK_K / 16; j++) {
			int8_t sc = (int8_t)(j < 8 ? y[i].scales[j] & 0x0f : y[i].scales[j - 8] >> 4);
			sc = (int8_t)((sc | (((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
			const float d = f16r(y[i].d) * sc;
			if (!d)
				continue;
			for (int ii = 0; ii < 16; ii++) {
				const int l = nearest_int(x[16 * j + ii] / d);
				L[16 * j + ii] = (int8_t)(MAX(-4, MIN(3, l)) + 4);
			}
		}
		/* The high bit of quant j goes to bit j / 32 of hmask[j % 32]. */
		memset(y[i].hmask, 0, QK_K / 8);
		int m = 0;
		uint8_t hm = 1;
		for (int j = 0; j < QK_K; j++) {
			if (L[j] > 3) {
				y[i].hmask[m] |= hm;
				L[j] = (int8_t)(L[j] - 4);
			}
			if (++m == QK_K / 8) {
				m = 0;
				hm = (uint8_t)(hm << 1);
			}
		}
		pack_2bit((const uint8_t *)L, y[i].qs);
	}
}

/* ------------------------------------------------------------------ */
/* Q4_K and Q5_K                                                       */
/* ------------------------------------------------------------------ */

/* Shared by Q4_K (nmax 15, search -1 + 0.1 * 0..20) and Q5_K (nmax 31,
 * -0.5 + 0.1 * 0..15): eight groups of 32 with weights av_x + |x|, then
 * scales and mins to 6 bits, then every value requantized. */
static void
k45_block(const float *x, int nmax, float rmin, int nstep, fp16_t *pd, fp16_t *pdmin,
    uint8_t *packed, uint8_t *L)
{
	uint8_t Laux[32];
	float weights[32], mins[QK_K / 32], scales[QK_K / 32];
	float max_scale = 0, max_min = 0;
	for (int j = 0; j < QK_K / 32; j++) {
		float sum_x2 = 0;
		for (int l = 0; l < 32; l++)
			sum_x2 += x[32 * j + l] * x[32 * j + l];
		const float av_x = sqrtf(sum_x2 / 32);
		for (int l = 0; l < 32; l++)
			weights[l] = av_x + fabsf(x[32 * j + l]);
		scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j],
		    Laux, rmin, 0.1f, nstep, 0);
		if (scales[j] > max_scale)
			max_scale = scales[j];
		if (mins[j] > max_min)
			max_min = mins[j];
	}
	const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
	const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
		uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
		put_scale_min_k4(j, MIN(63, ls), MIN(63, lm), packed);
	}
	*pd = fp32_to_fp16(max_scale / 63.f);
	*pdmin = fp32_to_fp16(max_min / 63.f);
	for (int j = 0; j < QK_K / 32; j++) {
		uint8_t sc, m;
		get_scale_min_k4(j, packed, &sc, &m);
		const float d = f16r(*pd) * sc;
		if (!d)
			continue;
		const float dm = f16r(*pdmin) * m;
		for (int ii = 0; ii < 32; ii++) {
			const int l = nearest_int((x[32 * j + ii] + dm) / d);
			L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
		}
	}
}

void
quantize_block_q4_K(const float *x, void *vy, int64_t n)
{
	block_q4_K *y = vy;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		memset(y[i].scales, 0, K_SCALE_SIZE);
		k45_block(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *q = y[i].qs;
		for (int j = 0; j < QK_K; j += 64, q += 32)
			for (int l = 0; l < 32; l++)
				q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
	}
}

void
quantize_block_q5_K(const float *x, void *vy, int64_t n)
{
	block_q5_K *y = vy;
	uint8_t L[QK_K];
	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		memset(y[i].scales, 0, K_SCALE_SIZE);
		k45_block(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *ql = y[i].qs, *qh = y[i].qh;
		memset(qh, 0, QK_K / 8);
		uint8_t m1 = 1, m2 = 2;
		for (int j = 0; j < QK_K; j += 64, ql += 32) {
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
			m1 = (uint8_t)(m1 << 2);
			m2 = (uint8_t)(m2 << 2);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Q6_K                                                                */
/* ------------------------------------------------------------------ */

void
quantize_block_q6_K(const float *x, void *vy, int64_t n)
{
	block_q6_K *y = vy;
	int8_t L[QK_K];
	float scales[QK_K / 16];

	for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
		float max_scale = 0, max_abs_scale = 0;
		for (int ib = 0; ib < QK_K / 16; ib++) {
			const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
			scales[ib] = scale;
			if (fabsf(scale) > max_abs_scale) {
				max_abs_scale = fabsf(scale);
				max_scale = scale;
			}
		}
		if (max_abs_scale < GROUP_MAX_EPS) {
			memset(&y[i], 0, sizeof y[i]);
			y[i].d = fp32_to_fp16(0.f);
			continue;
		}
		const float iscale = -128.f / max_scale;
		y[i].d = fp32_to_fp16(1 / iscale);
		for (int ib = 0; ib < QK_K / 16; ib++)
			y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
		for (int j = 0; j < QK_K / 16; j++) {
			const float d = f16r(y[i].d) * y[i].scales[j];
			if (!d)
				continue;
			for (int ii = 0; ii < 16; ii++) {
				const int l = nearest_int(x[16 * j + ii] / d);
				L[16 * j + ii] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
			}
		}
		uint8_t *ql = y[i].ql, *qh = y[i].qh;
		for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
			for (int l = 0; l < 32; l++) {
				const uint8_t q1 = L[j + l] & 0x0f, q2 = L[j + l + 32] & 0x0f;
				const uint8_t q3 = L[j + l + 64] & 0x0f, q4 = L[j + l + 96] & 0x0f;
				ql[l] = (uint8_t)(q1 | (q3 << 4));
				ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
				qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
				    ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
			}
		}
	}
}

/* ------------------------------------------------------------------ */
/* Float types and the lookup                                          */
/* ------------------------------------------------------------------ */

static void
to_f32(const float *x, void *vy, int64_t n)
{
	memcpy(vy, x, (size_t)n * sizeof(float));
}

static void
to_f16(const float *x, void *vy, int64_t n)
{
	fp16_t *y = vy;
	for (int64_t i = 0; i < n; i++)
		y[i] = fp32_to_fp16(x[i]);
}

static void
to_bf16(const float *x, void *vy, int64_t n)
{
	bf16_t *y = vy;
	for (int64_t i = 0; i < n; i++)
		y[i] = fp32_to_bf16(x[i]);
}

quant_from_float_fn
quantize_block_fn(int type)
{
	switch (type) {
	case QT_F32: return to_f32;
	case QT_F16: return to_f16;
	case QT_BF16: return to_bf16;
	case QT_Q4_0: return quantize_block_q4_0;
	case QT_Q4_1: return quantize_block_q4_1;
	case QT_Q5_0: return quantize_block_q5_0;
	case QT_Q5_1: return quantize_block_q5_1;
	case QT_Q8_0: return quantize_block_q8_0;
	case QT_Q2_K: return quantize_block_q2_K;
	case QT_Q3_K: return quantize_block_q3_K;
	case QT_Q4_K: return quantize_block_q4_K;
	case QT_Q5_K: return quantize_block_q5_K;
	case QT_Q6_K: return quantize_block_q6_K;
	default: return NULL;
	}
}
