/*
 * gemm_pack.c: Q4_0 and Q8_0 weights regrouped once, at load, into the
 * layout the AVX-512 VNNI kernels compute on, and the two kernels that read
 * it: the prompt GEMM and the decode matrix-vector product.
 *
 * Why.  In the file a row is a run of blocks (fp16 scale + quants); the
 * kernels want 16 rows side by side, one row per 32-bit lane of a zmm.
 * gemm.c brings each K chunk of 16 rows into that shape with 4x4 dword
 * transposes and 16 scalar fp16 loads per block, every time it meets the
 * chunk, and the decode kernel (quant_avx512.c) reads 18- or 34-byte
 * blocks one row at a time with shuffles to pair them.  Done once here,
 * the GEMM's unpacking is a load and a mask (Q4_0) or nothing at all
 * (Q8_0), and decoding is the GEMM's own micro-kernel on one column: a
 * fraction of the instructions per weight byte, which is what bounds a
 * core streaming weights at 30 GB/s.
 *
 * The layout (gemm_pack_size bytes for a matrix): tiles of 16 rows, tile
 * t (rows 16t..16t+15) at t * tile_bytes, rows past the matrix's end all
 * zero.  A tile holds, for its nb blocks, first the quants then the scales:
 *   quants  nb * 64 * G bytes (G = 4 for Q4_0, 8 for Q8_0): block k's G
 *           zmm-sized vectors, vector g lane r = dword g of row r's qs
 *           (Q4_0: the 16 nibble bytes as stored, low nibbles values
 *           4g..4g+3, high ones 16+4g..16+4g+3; Q8_0: the bytes XOR 0x80,
 *           i.e. q + 128 as unsigned, which the kernel wants);
 *   scales  nb * 16 fp16: block k's d of rows 0..15.
 * tile_bytes rounds a tile up to 64 bytes, so every vector is aligned.
 * The bytes are the file's bytes rearranged: the matrix is the same, only
 * where each value lives changes.
 *
 * Bits.  Both kernels run kern32 (gemm_kern.h) in gemm.c's K chunks, so a
 * packed matrix gives the very bits gemm gives on the file's rows, for a
 * batch and for one token alike; tests hold them to that.
 *
 * Packing needs the avx512-vnni family (cpu_isa); elsewhere gemm_pack_size
 * is 0 and weights stay in the file's rows.
 */
#include "engine/gemm.h"

#include <stdint.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gemm_int.h"
#include "engine/quant.h"

#define TR 16    /* rows per tile */
#define KC32 32  /* blocks per K chunk, as gemm.c's */
/* Decoding Q4_0 asks for the weights this many bytes ahead of the block
 * it reads: 1.1B Q4_0 at 2 threads, 45.4 t/s without, 48.2 with (3
 * alternating rounds; 1024 to 16384 tried, 4096 best).  Q8_0 measured no
 * better with it, so it runs without. */
#define PF_Q4_0 4096

static int
groups(int B)
{
	return (B + GEMM_NC - 1) / GEMM_NC;
}

/* Dwords of quants per row and block. */
static int
qdwords(int type)
{
	return type == QT_Q4_0 ? 4 : 8;
}

static size_t
tile_bytes(int type, int n)
{
	const size_t nb = (size_t)(n / 32);
	return (nb * 64 * (size_t)qdwords(type) + nb * 2 * TR + 63) / 64 * 64;
}

size_t
gemm_pack_size(int type, int n, int rows)
{
	if ((type != QT_Q4_0 && type != QT_Q8_0) || n <= 0 || n % 32 != 0 || rows <= 0)
		return 0;
	if (cpu_isa() != CPU_AVX512)
		return 0;
	return (size_t)((rows + TR - 1) / TR) * tile_bytes(type, n);
}

void
gemm_pack(int type, int n, int rows, const void *w, size_t row_bytes, void *dst, int t0, int t1)
{
	const int nb = n / 32, G = qdwords(type);
	const size_t bs = type == QT_Q4_0 ? sizeof(block_q4_0) : sizeof(block_q8_0);
	const size_t tb = tile_bytes(type, n);
	for (int t = t0; t < t1; t++) {
		uint8_t *q = (uint8_t *)dst + (size_t)t * tb;
		uint8_t *sc = q + (size_t)nb * 64 * (size_t)G;
		memset(q, 0, tb);
		for (int r = 0; r < TR && TR * t + r < rows; r++) {
			const uint8_t *row = (const uint8_t *)w + (size_t)(TR * t + r) * row_bytes;
			for (int k = 0; k < nb; k++) {
				const uint8_t *blk = row + (size_t)k * bs;
				memcpy(sc + ((size_t)k * TR + (size_t)r) * 2, blk, 2);
				uint8_t *v = q + (size_t)k * 64 * (size_t)G + 4 * (size_t)r;
				for (int g = 0; g < G; g++)
					for (int i = 0; i < 4; i++)
						v[64 * g + i] = (uint8_t)(blk[2 + 4 * g + i] ^ (type == QT_Q8_0 ? 0x80 : 0));
			}
		}
	}
}

size_t
gemm_pack_act_size(int type, int n, int B)
{
	if ((type != QT_Q4_0 && type != QT_Q8_0) || n <= 0 || n % 32 != 0 || B <= 0)
		return 0;
	/* One column: its blocks one after another (the decode kernel reads
	 * nothing else); a batch: gemm.c's groups of GEMM_NC columns. */
	return (size_t)(B == 1 ? 1 : groups(B) * GEMM_NC) * (size_t)(n / 32) * sizeof(struct gemm_act32);
}

void
gemm_pack_act_prepare(int type, int n, const float *x, int B, void *buf)
{
	if (gemm_pack_act_size(type, n, B) == 0)
		return;
	if (B == 1)
		gemm_prepare32_row(type, n, x, buf);
	else
		gemm_prepare32(type, n, x, B, buf);
}

#if defined(__x86_64__) || defined(__i386__)
#include "engine/gemm_kern.h"

/* Tile rows [rt, rt + 16) against B columns (B >= 2). */
static T512 void
packed_gemm(int type, int n, const uint8_t *tile, int rows, const struct gemm_act32 *a, int B,
    float *out, size_t ldo)
{
	const int nb = n / 32;
	const size_t qb = 64 * (size_t)qdwords(type);
	const uint16_t *sc = (const uint16_t *)(const void *)(tile + (size_t)nb * qb);
	const __mmask16 m = (__mmask16)((1u << rows) - 1);
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512i wq[KC32 * 8];
	__m512 wd[KC32];
	__m512 f[GEMM_NC];
	for (int k0 = 0; k0 < nb; k0 += KC32) {
		const int kc = nb - k0 < KC32 ? nb - k0 : KC32;
		const __m512i *w;
		for (int k = 0; k < kc; k++)
			wd[k] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(sc + (size_t)(k0 + k) * TR)));
		if (type == QT_Q4_0) {
			const __m512i *src = (const __m512i *)(const void *)(tile + (size_t)k0 * qb);
			for (int k = 0; k < kc; k++)
				for (int g = 0; g < 4; g++) {
					const __m512i t = _mm512_load_si512(src + 4 * k + g);
					wq[8 * k + g] = _mm512_and_si512(t, m4);
					wq[8 * k + 4 + g] = _mm512_and_si512(_mm512_srli_epi16(t, 4), m4);
				}
			w = wq;
		} else {
			w = (const __m512i *)(const void *)(tile + (size_t)k0 * qb);
		}
		for (int q = 0; q < groups(B); q++) {
			const struct gemm_act32 *ag = a + ((size_t)q * nb + k0) * GEMM_NC;
			const int nc = B - q * GEMM_NC < GEMM_NC ? B - q * GEMM_NC : GEMM_NC;
			if (nc <= 4)
				kern32(w, wd, kc, ag, f, 4);
			else
				kern32(w, wd, kc, ag, f, 8);
			flush(f, nc, out + (size_t)q * GEMM_NC * ldo, ldo, m, k0 == 0);
		}
	}
}

/* Block k of a tile against one column's broadcast quants y[0..7] and
 * correction c: the exact integer sum kern32 forms, as two chains (the
 * same sum) so that consecutive blocks need not wait on one long chain. */
static inline __attribute__((always_inline)) T512 __m512i
dec_block(int type, const __m512i *t, const __m512i *y, __m512i c)
{
	__m512i x, z;
	if (type == QT_Q4_0) {
		const __m512i m4 = _mm512_set1_epi8(0x0f);
		const __m512i t0 = _mm512_load_si512(t), t1 = _mm512_load_si512(t + 1);
		const __m512i t2 = _mm512_load_si512(t + 2), t3 = _mm512_load_si512(t + 3);
		x = _mm512_dpbusd_epi32(c, _mm512_and_si512(t0, m4), y[0]);
		z = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(t2, m4), y[2]);
		x = _mm512_dpbusd_epi32(x, _mm512_and_si512(t1, m4), y[1]);
		z = _mm512_dpbusd_epi32(z, _mm512_and_si512(t3, m4), y[3]);
		x = _mm512_dpbusd_epi32(x, _mm512_and_si512(_mm512_srli_epi16(t0, 4), m4), y[4]);
		z = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(t2, 4), m4), y[6]);
		x = _mm512_dpbusd_epi32(x, _mm512_and_si512(_mm512_srli_epi16(t1, 4), m4), y[5]);
		z = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(t3, 4), m4), y[7]);
	} else {
		x = _mm512_dpbusd_epi32(c, _mm512_load_si512(t), y[0]);
		z = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_load_si512(t + 4), y[4]);
		x = _mm512_dpbusd_epi32(x, _mm512_load_si512(t + 1), y[1]);
		z = _mm512_dpbusd_epi32(z, _mm512_load_si512(t + 5), y[5]);
		x = _mm512_dpbusd_epi32(x, _mm512_load_si512(t + 2), y[2]);
		z = _mm512_dpbusd_epi32(z, _mm512_load_si512(t + 6), y[6]);
		x = _mm512_dpbusd_epi32(x, _mm512_load_si512(t + 3), y[3]);
		z = _mm512_dpbusd_epi32(z, _mm512_load_si512(t + 7), y[7]);
	}
	return _mm512_add_epi32(x, z);
}

/*
 * One column (decoding): kern32's arithmetic for ncol = 1, the weights
 * read in place, on nt (1 or 2) consecutive tiles at once so that each
 * activation broadcast serves both.  a: gemm_prepare32_row's layout.
 */
static inline __attribute__((always_inline)) T512 void
packed_dec(int type, int n, const uint8_t *tile, size_t tb, int nt, int rows, const struct gemm_act32 *a,
    float *out)
{
	const int nb = n / 32;
	const size_t qb = 64 * (size_t)qdwords(type);
	const uint16_t *sc = (const uint16_t *)(const void *)(tile + (size_t)nb * qb);
	__m512 o[2] = { _mm512_setzero_ps(), _mm512_setzero_ps() };
	for (int k0 = 0; k0 < nb; k0 += KC32) {
		const int k1 = nb - k0 < KC32 ? nb : k0 + KC32;
		__m512 f[2] = { _mm512_setzero_ps(), _mm512_setzero_ps() };
		for (int k = k0; k < k1; k++) {
			const struct gemm_act32 *e = a + k;
			__m512i y[8];
			for (int i = 0; i < 8; i++)
				y[i] = BC(e->q[i]);
			const __m512i c = BC(e->corr);
			const __m512 d = BCF(e->d);
			for (int i = 0; i < nt; i++) {
				const uint8_t *ti = tile + (size_t)i * tb;
				if (type == QT_Q4_0)
					for (size_t l = 0; l < qb; l += 64)
						_mm_prefetch((const char *)(ti + (size_t)k * qb + PF_Q4_0 + l), _MM_HINT_T0);
				const __m512i acc = dec_block(type, (const __m512i *)(const void *)(ti + (size_t)k * qb), y, c);
				const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(
				    (const __m256i *)(const void *)(sc + (size_t)i * tb / 2 + (size_t)k * TR)));
				f[i] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), d), dw, f[i]);
			}
		}
		for (int i = 0; i < nt; i++)
			o[i] = k0 == 0 ? f[i] : _mm512_add_ps(f[i], o[i]);
	}
	for (int i = 0; i < nt; i++) {
		const int ri = rows - TR * i < TR ? rows - TR * i : TR;
		_mm512_mask_storeu_ps(out + TR * i, (__mmask16)((1u << ri) - 1), o[i]);
	}
}

/* The four kernels packed_dec inlines into: type and tile count constant. */
static T512 void
packed_dec_run(int type, int n, const uint8_t *tile, size_t tb, int nt, int rows, const struct gemm_act32 *a,
    float *out)
{
	if (type == QT_Q4_0 && nt == 2)
		packed_dec(QT_Q4_0, n, tile, tb, 2, rows, a, out);
	else if (type == QT_Q4_0)
		packed_dec(QT_Q4_0, n, tile, tb, 1, rows, a, out);
	else if (nt == 2)
		packed_dec(QT_Q8_0, n, tile, tb, 2, rows, a, out);
	else
		packed_dec(QT_Q8_0, n, tile, tb, 1, rows, a, out);
}

void
gemm_packed(int type, int n, const void *wp, int r0, int r1, const void *buf, int B, float *out, size_t ldo)
{
	if (gemm_pack_act_size(type, n, B) == 0 || r0 >= r1 || r0 % TR != 0)
		return;
	const size_t tb = tile_bytes(type, n);
	for (int rt = r0; rt < r1;) {
		const uint8_t *tile = (const uint8_t *)wp + (size_t)(rt / TR) * tb;
		const int left = r1 - rt;
		if (B == 1) {
			const int nt = left > TR ? 2 : 1, rows = left < nt * TR ? left : nt * TR;
			packed_dec_run(type, n, tile, tb, nt, rows, buf, out + rt);
			rt += nt * TR;
		} else {
			packed_gemm(type, n, tile, left < TR ? left : TR, buf, B, out + rt, ldo);
			rt += TR;
		}
	}
}

#else

void
gemm_packed(int type, int n, const void *wp, int r0, int r1, const void *buf, int B, float *out, size_t ldo)
{
	/* gemm_pack_size is 0 off x86: nothing is ever packed. */
	(void)type, (void)n, (void)wp, (void)r0, (void)r1, (void)buf, (void)B, (void)out, (void)ldo;
}

#endif
