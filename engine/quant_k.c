/*
 * quant_k.c: the scalar reference of the K-quants (256-weight
 * super-blocks): Q8_K, the activation type, with its quantizer, and the
 * dequantizer and dot product of Q2_K, Q3_K, Q4_K, Q5_K and Q6_K.  The
 * same invariants as quant.c: to_float follows ggml's dequantize_row_*
 * operation for operation, the dots sum as ggml's generic CPU code (eight
 * float lanes), and quant.c's table is the only way in.  The weight
 * quantizers are quantize_block.c's.
 */
#include "engine/quant_int.h"

/* ------------------------------------------------------------------ */
/* Q8_K: the activation type of the K-quants                           */
/* ------------------------------------------------------------------ */

/*
 * quantize_row_q8_K_ref: max is the signed value of largest magnitude (the
 * first one on a tie), iscale = -127/max, q = nearest_int(iscale*x) (ties to
 * even) capped at 127, d = 1/iscale as a float, bsums over each 16.  ggml
 * leaves bsums untouched for an all-zero block; we zero them.
 */
void
quant_k_q8_K_from_float(const float *x, void *vy, int64_t n)
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

void
quant_k_q8_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q8_K *x = vx;
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int j = 0; j < QK_K; j++)
			y[i * QK_K + j] = x[i].d * x[i].qs[j];
}

/* Not a ggml kernel (Q8_K is never a weight there); for a total table. */
REF_DOT void
quant_k_q8_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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

/* The 16 signed scales of Q3_K: 4 low bits in bytes 0..7 (low nibble for
 * 0..7, high for 8..15), 2 high bits in bytes 8..11; stored with +32. */
static inline void
q3_K_scales(const uint8_t *p, int8_t *sc)
{
	for (int j = 0; j < 16; j++) {
		int lo = j < 8 ? p[j] & 0x0f : p[j - 8] >> 4;
		int hi = (p[8 + j % 4] >> (2 * (j / 4))) & 3;
		sc[j] = (int8_t)((lo | (hi << 4)) - 32);
	}
}

/* ------------------------------------------------------------------ */
/* Q2_K                                                                */
/* ------------------------------------------------------------------ */

/* dequantize_row_q2_K: value 128k + 32s + l is bits 2s of qs[32k + l]. */
void
quant_k_q2_K_to_float(const void *vx, float *y, int64_t n)
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
REF_DOT void
quant_k_q2_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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

/* dequantize_row_q3_K: value e has low bits (qs[32k + l] >> 2s) & 3 and
 * its high bit in hmask[e % 32] bit e / 32; a clear high bit means -4. */
void
quant_k_q3_K_to_float(const void *vx, float *y, int64_t n)
{
	const block_q3_K *x = vx;
	int8_t sc[16];
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float d_all = FP16(x[i].d);
		const uint8_t *q = x[i].qs, *hm = x[i].hmask;
		uint8_t m = 1;
		int is = 0;
		q3_K_scales(x[i].scales, sc);
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
REF_DOT void
quant_k_q3_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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
		q3_K_scales(x[i].scales, sc);
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

/* dequantize_row_q4_K: sub-block 2k in the low nibbles of qs[32k..], 2k+1
 * in the high nibbles of the same bytes; w = d*sc*q - dmin*m. */
void
quant_k_q4_K_to_float(const void *vx, float *y, int64_t n)
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
REF_DOT void
quant_k_q4_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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

/* dequantize_row_q5_K: as Q4_K, the fifth bit of value 64k + l (+32) in
 * qh[l] bit 2k (2k+1). */
void
quant_k_q5_K_to_float(const void *vx, float *y, int64_t n)
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
REF_DOT void
quant_k_q5_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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

/* dequantize_row_q6_K: per 128 values, ql[0..63] hold the low nibbles of
 * values l, l+32 (low) and l+64, l+96 (high), qh[l] their top two bits. */
void
quant_k_q6_K_to_float(const void *vx, float *y, int64_t n)
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
REF_DOT void
quant_k_q6_K_vec_dot_ref(int n, float *s, const void *vx, const void *vy)
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
