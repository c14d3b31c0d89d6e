/*
 * gemm.h: quantized weight matrix times a batch of activation rows, for
 * prompt processing.
 *
 * Use: size a buffer with gemm_act_size, fill it once per batch with
 * gemm_act_prepare (the activations quantized to the weight type's
 * vec_dot_type, bit for bit as the reference quantizer does, plus per-block
 * data the kernels want), then let each thread call gemm on its own row
 * range of the weights.  The caller owns every buffer; nothing here
 * allocates, prints or keeps state between calls.
 *
 * Results equal quant_type_get_ref(type)->vec_dot_ref of each weight row
 * against the reference-quantized activation row, within float summation
 * order: |gemm - ref| <= 1e-5 * sum_i |w_i * a_i| + 1e-6 (the integer sums
 * of a block are exact).
 *
 * Supported weight types: Q4_0, Q8_0 (activations Q8_0), Q4_K, Q6_K
 * (activations Q8_K).  For any other type gemm_act_size returns 0 and the
 * caller falls back to quant_vec_dot_n.
 */
#ifndef ENGINE_GEMM_H
#define ENGINE_GEMM_H

#include <stddef.h>

/*
 * Bytes needed to hold B activation rows of n values in the layout gemm
 * wants for weights of `type`; 0 if the type is unsupported or n is not a
 * multiple of its block size.  The buffer must be aligned to at least 16
 * bytes (malloc's alignment); 64 is best.
 */
size_t gemm_act_size(int type, int n, int B);

/*
 * Quantize B rows of x (row stride n floats) into buf (gemm_act_size bytes)
 * for weights of `type`.  Single-threaded; costs O(B * n).  Does nothing
 * for an unsupported type.
 */
void gemm_act_prepare(int type, int n, const float *x, int B, void *buf);

/*
 * out[b * ldo + r] = dot(weight row r, activation row b) for r in [r0, r1)
 * and b in [0, B).  w points at row 0 of a row-major matrix of `type` rows
 * of n values, row_bytes = quant_row_size(type, n) apart; it is only read.
 * buf is what gemm_act_prepare wrote for the same type, n and B.  Safe to
 * call from several threads at once on disjoint row ranges (every scratch
 * buffer is on the stack, well under 64 KB).
 */
void gemm(int type, int n, const void *w, size_t row_bytes, int r0, int r1,
    const void *buf, int B, float *out, size_t ldo);

/*
 * Activation row b of a prepared buffer, back in the plain vec_dot_type
 * layout (n values of Q8_0 or Q8_K blocks, quant_row_size bytes) in dst:
 * lets tests hold gemm_act_prepare to the reference quantizer.  Returns -1
 * for an unsupported type, else 0.
 */
int gemm_act_row(int type, int n, const void *buf, int B, int b, void *dst);

/*
 * Packed weights (gemm_pack.c): Q4_0, Q8_0, Q4_K and Q6_K matrices
 * regrouped once into 16-row tiles, which the AVX-512 VNNI kernels read
 * without transposing.
 *
 * gemm_pack_size: bytes of the packed form of a (rows x n) matrix, or 0 if
 * it cannot be packed (another type, n not a multiple of the type's block
 * (32, or 256 for the K-quants), or a CPU
 * family without AVX-512 VNNI: then keep the file's rows and call gemm).
 * gemm_pack: write tiles [t0, t1) (16 rows each; there are
 * ceil(rows / 16)) of the matrix at w (row_bytes apart) into dst, which
 * must be 64-byte aligned; disjoint tile ranges may be packed in parallel.
 * gemm_pack_act_size / gemm_pack_act_prepare: as gemm_act_size /
 * gemm_act_prepare, for gemm_packed and for any B, 1 included.
 * gemm_packed: gemm's contract on the packed matrix (r0 a multiple of 16),
 * B = 1 included; its results are the bits gemm gives on the file's rows
 * at the avx512-vnni level.
 */
size_t gemm_pack_size(int type, int n, int rows);
void gemm_pack(int type, int n, int rows, const void *w, size_t row_bytes, void *dst, int t0, int t1);
size_t gemm_pack_act_size(int type, int n, int B);
void gemm_pack_act_prepare(int type, int n, const float *x, int B, void *buf);
void gemm_packed(int type, int n, const void *wp, int r0, int r1, const void *buf, int B, float *out,
    size_t ldo);

/* Name of the kernel level in use: "avx512-vnni", "avx2" or "generic". */
const char *gemm_level(void);

/*
 * Tests and benchmarks: force a level by name ("avx512-vnni", "avx2", "generic"), or
 * back to the best one with NULL.  Returns -1 (and changes nothing) if this
 * CPU cannot run it.  Not thread-safe: call it only while no gemm runs, and
 * prepare buffers again after a change (layouts differ by level).
 */
int gemm_force_level(const char *level);

#endif
