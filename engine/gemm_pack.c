/*
 * gemm_pack.c: Q4_0, Q8_0, Q4_K and Q6_K weights regrouped once, at load,
 * into the layout the AVX-512 VNNI kernels compute on, and the kernels
 * that read it: the prompt GEMM and the decode matrix-vector product.
 *
 * Why.  In the file a row is a run of blocks; the kernels want 16 rows
 * side by side, one row per 32-bit lane of a zmm.  gemm.c brings each K
 * chunk of 16 rows into that shape with 4x4 dword transposes (and 16
 * scalar fp16 loads per block), every time it meets the chunk, and the
 * one-row decode kernels (quant_avx512.c) spend most of their
 * instructions pairing and spreading a single row's bytes.  Done once
 * here, the GEMM's unpacking is loads and masks, and decoding is the
 * GEMM's own arithmetic on one column: a fraction of the instructions per
 * weight byte, which is what bounds a core streaming weights at 30 GB/s.
 *
 * The layout (gemm_pack_size bytes for a matrix): tiles of 16 rows, tile
 * t (rows 16t..16t+15) at t * tile_bytes, rows past the matrix's end all
 * zero.  A tile holds, for each of its nb blocks, V vectors (64 bytes,
 * lane r = row r) and the fp16 d of its 16 rows:
 *   Q4_0  V = 4: vector g lane r = dword g of row r's 16 qs bytes (low
 *         nibbles values 4g..4g+3, high ones 16+4g..16+4g+3);
 *   Q8_0  V = 8: dword g of the qs, each byte XOR 0x80 (q + 128 as
 *         unsigned, which vpdpbusd wants);
 *         for both, blocks go in groups of GB = 8: the group's d's (256
 *         bytes), then its blocks' vectors, so that decoding reads a
 *         tile as one stream;
 *   Q4_K  V = 36: dword v of the whole 144-byte block (d and dmin, the 12
 *         bytes of scales, the qs): the 6-bit scales stay packed, as in
 *         the file, so that the tile is no bigger than the rows;
 *   Q6_K  V = 52: dword v of the block's first 208 bytes (ql, qh, the
 *         int8 scales); the d's after all the vectors.
 * Every vector is 64-byte aligned.  The bytes are the file's bytes
 * rearranged (Q8_0's flipped sign bit aside): the matrix is the same,
 * only where each value lives changes.
 *
 * Bits.  The kernels run gemm.c's arithmetic (kern32, and kernq4k and
 * kernq6k of gemm_kern.h) in gemm.c's K chunks, so a packed matrix gives
 * the very bits gemm gives on the file's rows, for a batch and for one
 * token alike; tests hold them to that.
 *
 * Packing needs the avx512-vnni family (cpu_isa); elsewhere gemm_pack_size
 * is 0 and weights stay in the file's rows.
 */
#include "engine/gemm.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/gemm_int.h"
#include "engine/quant.h"

#define TR 16    /* rows per tile */
#define KC32 32  /* blocks per K chunk, as gemm.c's */
/*
 * Decoding asks for the weights this many bytes ahead of the block it
 * reads, and reads one tile at a time, each tile one stream.  Measured on
 * 1.1B at 2 threads (tg, 3 alternating rounds, t/s):
 *   Q4_K_M: no prefetching 47; two tiles at once 76; one tile 92-101;
 *           2048 and 8192 ahead no better than 4096;
 *   Q4_0 and Q8_0, after their d's moved beside their vectors (they were
 *           after all of a tile's vectors, a second stream) and one tile
 *           at a time with prefetching: Q4_0 85-87 -> 96-107, Q8_0
 *           50-57 -> 57-62.
 * The two families want different distances.  Time per token with the
 * distance switched on alternate tokens of one run (bench -p 0, 2 runs
 * each, ratio 8192 / 4096 ahead; the same build with 4096 on both sides
 * read 0.98-1.07):
 *   Q4_0 1.1B 0.941-0.951 (4 runs), 7B 0.901 and 0.945; Q8_0 1.1B 0.975
 *   and 0.993; 2048 ahead 1.11-1.17 on Q4_0;
 *   Q4_K_M 1.1B 1.028 and 1.071 (16384: 1.11, 1.18): K-quants stay at 4096.
 */
#define PF32 8192  /* Q4_0, Q8_0 */
#define PFK 4096   /* Q4_K, Q6_K */

static int
groups(int B)
{
	return (B + GEMM_NC - 1) / GEMM_NC;
}

static int
is_k(int type)
{
	return type == QT_Q4_K || type == QT_Q6_K;
}

/* Values a block; 0 for a type that is not packed. */
static int
blck(int type)
{
	return type == QT_Q4_0 || type == QT_Q8_0 ? 32 : is_k(type) ? QK_K : 0;
}

/* Vectors a block (the layout above). */
static int
vecs(int type)
{
	return type == QT_Q4_0 ? 4 : type == QT_Q8_0 ? 8 : type == QT_Q4_K ? 36 : 52;
}

/* Where a block's vector bytes start in the file, and its fp16 d kept
 * apart (-1: none). */
static size_t
qoff(int type)
{
	return type == QT_Q4_0 || type == QT_Q8_0 ? 2 : 0;
}

static int
doff(int type)
{
	return type == QT_Q4_K ? -1 : type == QT_Q6_K ? (int)offsetof(block_q6_K, d) : 0;
}

/* Q4_K and Q6_K: the d's of a tile (Q6_K's), after its vectors. */
static size_t
d_at(int type, int n)
{
	return (size_t)(n / blck(type)) * 64 * (size_t)vecs(type);
}

/* Q4_0 and Q8_0: blocks in groups of GB, each group its blocks' d's
 * (GB * 16 fp16, 256 bytes) then their vectors, so that a tile is one
 * stream.  Where block k's vectors and d's are in its tile (the K-quants:
 * vectors one block after another, the d's after them all): */
#define GB 8
static size_t
grp_bytes(int type)
{
	return (size_t)GB * 2 * TR + (size_t)GB * 64 * (size_t)vecs(type);
}

static size_t
qpos(int type, int k)
{
	if (is_k(type))
		return (size_t)k * 64 * (size_t)vecs(type);
	return (size_t)(k / GB) * grp_bytes(type) + (size_t)GB * 2 * TR + (size_t)(k % GB) * 64 * (size_t)vecs(type);
}

static size_t
dpos(int type, int n, int k)
{
	if (is_k(type))
		return d_at(type, n) + (size_t)k * 2 * TR;
	return (size_t)(k / GB) * grp_bytes(type) + (size_t)(k % GB) * 2 * TR;
}

static size_t
tile_bytes(int type, int n)
{
	const size_t nb = (size_t)(n / blck(type));
	if (!is_k(type))
		return (nb + GB - 1) / GB * (size_t)GB * 2 * TR + nb * 64 * (size_t)vecs(type);
	return (d_at(type, n) + (doff(type) >= 0 ? nb * 2 * TR : 0) + 63) / 64 * 64;
}

static int
packable(int type, int n)
{
	return blck(type) > 0 && n > 0 && n % blck(type) == 0;
}

size_t
gemm_pack_size(int type, int n, int rows)
{
	if (!packable(type, n) || rows <= 0 || cpu_isa() != CPU_AVX512)
		return 0;
	return (size_t)((rows + TR - 1) / TR) * tile_bytes(type, n);
}

void
gemm_pack(int type, int n, int rows, const void *w, size_t row_bytes, void *dst, int t0, int t1)
{
	const int nb = n / blck(type), V = vecs(type), dof = doff(type);
	const size_t bs = quant_row_size(type, blck(type)), qo = qoff(type);
	const size_t tb = tile_bytes(type, n);
	const uint8_t flip = type == QT_Q8_0 ? 0x80 : 0;
	for (int t = t0; t < t1; t++) {
		uint8_t *q = (uint8_t *)dst + (size_t)t * tb;
		memset(q, 0, tb);
		for (int r = 0; r < TR && TR * t + r < rows; r++) {
			const uint8_t *row = (const uint8_t *)w + (size_t)(TR * t + r) * row_bytes;
			for (int k = 0; k < nb; k++) {
				const uint8_t *blk = row + (size_t)k * bs;
				uint8_t *v = q + qpos(type, k) + 4 * (size_t)r;
				if (dof >= 0)
					memcpy(q + dpos(type, n, k) + 2 * (size_t)r, blk + dof, 2);
				for (int g = 0; g < V; g++)
					for (int i = 0; i < 4; i++)
						v[64 * g + i] = (uint8_t)(blk[qo + 4 * (size_t)g + (size_t)i] ^ flip);
			}
		}
	}
}

size_t
gemm_pack_act_size(int type, int n, int B)
{
	if (!packable(type, n) || B <= 0)
		return 0;
	const size_t es = is_k(type) ? sizeof(struct gemm_actk) : sizeof(struct gemm_act32);
	/* One column: its blocks one after another (the decode kernel reads
	 * nothing else); a batch: gemm.c's groups of GEMM_NC columns. */
	return (size_t)(B == 1 ? 1 : groups(B) * GEMM_NC) * (size_t)(n / blck(type)) * es;
}

#if defined(__x86_64__) || defined(__i386__)
static void pack_act32_row(int type, int n, const float *x, struct gemm_act32 *a);
#endif

void
gemm_pack_act_prepare(int type, int n, const float *x, int B, void *buf)
{
	if (gemm_pack_act_size(type, n, B) == 0)
		return;
	if (is_k(type) && B == 1)
		gemm_preparek_row(type, n, x, buf);
	else if (is_k(type))
		gemm_preparek(type, n, x, B, buf);
	else if (B == 1) {
#if defined(__x86_64__) || defined(__i386__)
		/* Matrices are packed on avx512 CPUs only, but a caller may
		 * prepare for them anywhere: the reference gives the same bits. */
		if (cpu_isa() == CPU_AVX512) {
			pack_act32_row(type, n, x, buf);
			return;
		}
#endif
		gemm_prepare32_row(type, n, x, buf);
	} else
		gemm_prepare32(type, n, x, B, buf);
}

#if defined(__x86_64__) || defined(__i386__)
#include "engine/gemm_kern.h"

/*
 * One token's activations for Q4_0 or Q8_0 weights: gemm_prepare32_row's
 * values (the q8_0 quants of q8_0_quant_avx2, rounded to nearest even; d
 * through fp16; corr = -off * the quants' sum), a block in two registers.
 * The reference goes through q8_0's quantizer one block at a time and sums
 * the quants again in scalar: on the 1.1B shape that was 2-3% of a decoded
 * token, spent by thread 0 while the other waited at the barrier.
 * test_packed holds the two to the same bits.
 */
static T512 void
pack_act32_row(int type, int n, const float *x, struct gemm_act32 *a)
{
	const int32_t off = type == QT_Q4_0 ? 8 : 128;
	for (int k = 0; k < n / 32; k++) {
		const __m512 v0 = _mm512_loadu_ps(x + 32 * k), v1 = _mm512_loadu_ps(x + 32 * k + 16);
		const float mx = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
		const float d = mx / 127;
		float id = mx != 0.0f ? 127.0f / mx : 0.0f;
		if (isinf(id))
			id = 0.0f;
		const __m512 mul = _mm512_set1_ps(id);
		const __m512i q0 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v0, mul),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		const __m512i q1 = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(v1, mul),
		    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		struct gemm_act32 *e = &a[k];
		_mm_storeu_si128((__m128i *)(void *)e->q, _mm512_cvtsepi32_epi8(q0));
		_mm_storeu_si128((__m128i *)(void *)(e->q + 4), _mm512_cvtsepi32_epi8(q1));
		e->d = fp16_to_fp32(fp32_to_fp16(d));
		e->corr = -off * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
	}
}

/* Tile rows [rt, rt + 16) against B columns (B >= 2). */
static T512 void
packed_gemm(int type, int n, const uint8_t *tile, int rows, const struct gemm_act32 *a, int B,
    float *out, size_t ldo)
{
	const int nb = n / 32;
	const __mmask16 m = (__mmask16)((1u << rows) - 1);
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512i wq[KC32 * 8];
	__m512 wd[KC32];
	__m512 f[GEMM_NC];
	for (int k0 = 0; k0 < nb; k0 += KC32) {
		const int kc = nb - k0 < KC32 ? nb - k0 : KC32;
		const __m512i *w = wq;
		for (int k = 0; k < kc; k++) {
			const __m512i *src = (const __m512i *)(const void *)(tile + qpos(type, k0 + k));
			wd[k] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(tile + dpos(type, n, k0 + k))));
			for (int g = 0; g < 4; g++) {
				if (type == QT_Q4_0) {
					const __m512i t = _mm512_load_si512(src + g);
					wq[8 * k + g] = _mm512_and_si512(t, m4);
					wq[8 * k + 4 + g] = _mm512_and_si512(_mm512_srli_epi16(t, 4), m4);
				} else {
					wq[8 * k + g] = _mm512_load_si512(src + g);
					wq[8 * k + 4 + g] = _mm512_load_si512(src + 4 + g);
				}
			}
		}
		/*
		 * The next K chunk (after the last one, the next tile's first:
		 * tiles follow each other) asked for, a slice per column group,
		 * so that its loads above find it in L1 instead of waiting on
		 * memory at every chunk's start: at 7B a chunk is 17 KB of Q8_0
		 * read cold, against ~9 us of arithmetic on a 128-token batch.
		 * Time per pp512 batch with it on alternate runs of one process
		 * (bench -p 512, on / off; the same build with it off on both
		 * sides read 1.006-1.031): Q8_0 7B 0.970, 0.979, 0.991, 0.970,
		 * 1.1B 0.982, 0.960; Q4_0 7B 0.969, 1.1B 0.961, 0.956.  Into L2
		 * only (_MM_HINT_T1) or two chunks ahead did no better.
		 */
		const uint8_t *next = tile + qpos(type, k0 + kc - 1) + 64 * (size_t)vecs(type);
		const size_t cb = (size_t)(next - (tile + dpos(type, n, k0)));
		const int G = groups(B);
		const size_t per = (cb / 64 + (size_t)G - 1) / (size_t)G * 64;
		for (int q = 0; q < G; q++) {
			const struct gemm_act32 *ag = a + ((size_t)q * nb + k0) * GEMM_NC;
			const int nc = B - q * GEMM_NC < GEMM_NC ? B - q * GEMM_NC : GEMM_NC;
			for (size_t l = 0; l < per; l += 64)
				_mm_prefetch((const char *)(next + (size_t)q * per + l), _MM_HINT_T0);
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
 * One column (decoding), one tile: kern32's arithmetic for ncol = 1, the
 * weights read in place and asked for PF32 bytes ahead (the tile is one
 * stream: d's and vectors in turn).  a: gemm_prepare32_row's layout.
 */
static T512 void
packed_dec(int type, int n, const uint8_t *tile, int rows, const struct gemm_act32 *a, float *out)
{
	const int nb = n / 32;
	const size_t qb = 64 * (size_t)vecs(type);
	__m512 o = _mm512_setzero_ps();
	for (int k0 = 0; k0 < nb; k0 += KC32) {
		const int k1 = nb - k0 < KC32 ? nb : k0 + KC32;
		__m512 f = _mm512_setzero_ps();
		for (int k = k0; k < k1; k++) {
			const struct gemm_act32 *e = a + k;
			__m512i y[8];
			for (int i = 0; i < 8; i++)
				y[i] = BC(e->q[i]);
			for (size_t l = 0; l < qb; l += 64)
				_mm_prefetch((const char *)(tile + qpos(type, k) + PF32 + l), _MM_HINT_T0);
			if (k % GB == 0)
				for (size_t l = 0; l < (size_t)GB * 2 * TR; l += 64)
					_mm_prefetch((const char *)(tile + dpos(type, n, k) + PF32 + l), _MM_HINT_T0);
			const __m512i acc = dec_block(type, (const __m512i *)(const void *)(tile + qpos(type, k)), y,
			    BC(e->corr));
			const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(tile + dpos(type, n, k))));
			f = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), BCF(e->d)), dw, f);
		}
		o = k0 == 0 ? f : _mm512_add_ps(f, o);
	}
	_mm512_mask_storeu_ps(out, (__mmask16)((1u << rows) - 1), o);
}

/* ---- Q4_K, Q6_K ---------------------------------------------------- */

/* Tile rows against B columns (B >= 2): gemm.c's K chunks, unpacked from
 * the tile by loads instead of transposes, then the same kchunk. */
static T512 void
packed_gemm_k(int type, int n, const uint8_t *tile, int rows, const struct gemm_actk *a, int B, float *out,
    size_t ldo)
{
	const int nb = n / QK_K, V = vecs(type);
	const __m512i *pk = (const __m512i *)(const void *)tile;
	const uint16_t *pd = (const uint16_t *)(const void *)(tile + d_at(type, n));
	union uk u;
	for (int k0 = 0; k0 < nb; k0 += GK_KCK) {
		const int kc = nb - k0 < GK_KCK ? nb - k0 : GK_KCK;
		if (type == QT_Q4_K)
			unpackq4k(NULL, pk + (size_t)k0 * (size_t)V, kc, u.q4);
		else
			unpackq6k(NULL, pk + (size_t)k0 * (size_t)V, pd + (size_t)k0 * TR, kc, u.q6);
		kchunk(type, &u, kc, nb, k0, a, B, out, ldo, rows);
	}
}

/*
 * One Q4_K super-block p of a tile against one column's e: kernq4k's
 * arithmetic for ncol = 1 (the same integer sums, the same float
 * operations in the same order), the unpacking fused into the products,
 * so that nothing goes through memory but the weights.  f + the result.
 */
static inline __attribute__((always_inline)) T512 __m512
dec_q4k(const __m512i *p, const struct gemm_actk *e, __m512 f)
{
	const __m512i m4 = _mm512_set1_epi8(0x0f);
	__m512i s[4], mins[4];
	__m512 dsc[8], ndmin;
	for (int i = 0; i < 4; i++)
		s[i] = _mm512_load_si512(p + i);
	q4k_scales(s, dsc, mins, &ndmin);
	__m512 t = _mm512_setzero_ps();
	/* 32 qs bytes gp: sub-block 2gp in the low nibbles, 2gp + 1 high */
	for (int gp = 0; gp < 4; gp++) {
		const __m512i *w = p + 4 + 8 * gp;
		__m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
		for (int g = 0; g < 8; g++) {
			const __m512i v = _mm512_load_si512(w + g);
			lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(v, m4), BC(e->q[16 * gp + g]));
			hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(v, 4), m4), BC(e->q[16 * gp + 8 + g]));
		}
		t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo), dsc[2 * gp], t);
		t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), dsc[2 * gp + 1], t);
	}
	__m512i ms = _mm512_dpwssd_epi32(_mm512_setzero_si512(), mins[0], BC(e->x[0]));
	ms = _mm512_dpwssd_epi32(ms, mins[1], BC(e->x[1]));
	ms = _mm512_dpwssd_epi32(ms, mins[2], BC(e->x[2]));
	ms = _mm512_dpwssd_epi32(ms, mins[3], BC(e->x[3]));
	t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ms), ndmin, t);
	return _mm512_fmadd_ps(t, BCF(e->d), f);
}

/* The same for Q6_K (kernq6k's arithmetic), pd: the super-block's 16 d's.
 * A half super-block's eight sub-block sums are kept in registers until
 * all their vectors are in, then scaled in sub-block order. */
static inline __attribute__((always_inline)) T512 __m512
dec_q6k(const __m512i *p, const uint16_t *pd, const struct gemm_actk *e, __m512 f)
{
	const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)pd));
	__m512 t = _mm512_setzero_ps();
	for (int h = 0; h < 2; h++) {
		__m512i acc[8];
		for (int jj = 0; jj < 8; jj++)
			acc[jj] = BC(e->x[8 * h + jj]);
		for (int gq = 0; gq < 2; gq++)
			for (int i = 0; i < 4; i++) {
				__m512i v[4];
				q6k_vals(_mm512_load_si512(p + 16 * h + 4 * gq + i), _mm512_load_si512(p + 16 * h + 8 + 4 * gq + i),
				    _mm512_load_si512(p + 32 + 8 * h + 4 * gq + i), v);
				for (int q = 0; q < 4; q++) {
					const int jj = 2 * q + gq;
					acc[jj] = _mm512_dpbusd_epi32(acc[jj], v[q], BC(e->q[4 * (8 * h + jj) + i]));
				}
			}
		for (int jj = 0; jj < 8; jj++) {
			const int j = 8 * h + jj;
			const __m512 dsc = q6k_dsc(d, _mm512_load_si512(p + 48 + j / 4), j % 4);
			t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[jj]), dsc, t);
		}
	}
	return _mm512_fmadd_ps(t, BCF(e->d), f);
}

/*
 * One column (decoding), one tile: the sums of a K chunk from zero, added
 * to the earlier chunks', as kchunk and flush do.  The weights are asked
 * for PFK bytes ahead.
 *
 * Q6_K's d's lie after a tile's vectors (32 bytes a super-block, 4 to 11
 * lines a tile on the 1.1B shape): a second stream, which the vectors'
 * prefetching never reaches and the hardware does not follow across
 * tiles, so every other super-block waited on memory for its d's.  A tile
 * asks for the next one's d's as it starts (past a matrix's last tile the
 * address is unused: a prefetch does not fault).  Per-token A/B, time per
 * token with it on alternate tokens of one run (bench -p 0 -n 128 -r 5;
 * the same build with it off on both sides read 1.001-1.005): 1.1B
 * Q4_K_M (a quarter of its bytes Q6_K) 0.995, 0.998, 0.995; 7B Q4_K_M
 * 0.997, 0.993 (control 1.002); 1.1B Q4_0, whose output matrix alone is
 * Q6_K, 0.9985 (control 1.002).
 */
static T512 void
packed_dec_k(int type, int n, const uint8_t *tile, int rows, const struct gemm_actk *a, float *out)
{
	const int nb = n / QK_K, V = vecs(type);
	const __m512i *pk = (const __m512i *)(const void *)tile;
	const uint16_t *pd = (const uint16_t *)(const void *)(tile + d_at(type, n));
	if (type == QT_Q6_K) {
		const uint8_t *next = (const uint8_t *)pd + tile_bytes(type, n);
		for (size_t l = 0; l < (size_t)nb * 2 * TR; l += 64)
			_mm_prefetch((const char *)(next + l), _MM_HINT_T0);
	}
	__m512 o = _mm512_setzero_ps();
	for (int k0 = 0; k0 < nb; k0 += GK_KCK) {
		const int k1 = nb - k0 < GK_KCK ? nb : k0 + GK_KCK;
		__m512 f = _mm512_setzero_ps();
		for (int k = k0; k < k1; k++) {
			const __m512i *p = pk + (size_t)k * (size_t)V;
			for (int l = 0; l < V; l++)
				_mm_prefetch((const char *)(p + l) + PFK, _MM_HINT_T0);
			if (type == QT_Q4_K)
				f = dec_q4k(p, a + k, f);
			else
				f = dec_q6k(p, pd + (size_t)k * TR, a + k, f);
		}
		o = k0 == 0 ? f : _mm512_add_ps(f, o);
	}
	_mm512_mask_storeu_ps(out, (__mmask16)((1u << rows) - 1), o);
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
			const int rows = left < TR ? left : TR;
			if (is_k(type))
				packed_dec_k(type, n, tile, rows, buf, out + rt);
			else
				packed_dec(type, n, tile, rows, buf, out + rt);
		} else {
			if (is_k(type))
				packed_gemm_k(type, n, tile, left < TR ? left : TR, buf, B, out + rt, ldo);
			else
				packed_gemm(type, n, tile, left < TR ? left : TR, buf, B, out + rt, ldo);
		}
		rt += TR;
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
