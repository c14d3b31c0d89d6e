/*
 * quantize.h: turning float weights into GGUF quantized tensors, as
 * llama.cpp's llama-quantize does without an importance matrix.
 *
 *   quantize_block.c  the reference block quantizers (ggml's
 *                     quantize_row_*_ref, K-quant scale searches included)
 *   quantize_mix.c    the file types (Q4_K_M ...) and the per-tensor type
 *                     each of them picks (llama_tensor_get_type)
 *   quantize.c        the file-level driver: read a GGUF, write another
 *
 * Nothing here prints or exits: failures come back as -1 with a malloc'd
 * one-line *err.
 */
#ifndef ENGINE_QUANTIZE_H
#define ENGINE_QUANTIZE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/quant.h"

/* ---- quantize_block.c ---- */

/*
 * The weight quantizer of a type: n floats (a multiple of the block) to
 * n / blck blocks, byte for byte what ggml's quantize_row_<type>_ref gives
 * (for F32/F16/BF16 a plain conversion, round to nearest even).  NULL for a
 * type without one.  Q8_0 here is the weight rounding (x / d, ties away
 * from zero), not the activation one quant.h's table uses.
 */
quant_from_float_fn quantize_block_fn(int type);
void quantize_block_q4_0(const float *x, void *y, int64_t n);
void quantize_block_q4_1(const float *x, void *y, int64_t n);
void quantize_block_q5_0(const float *x, void *y, int64_t n);
void quantize_block_q5_1(const float *x, void *y, int64_t n);
void quantize_block_q8_0(const float *x, void *y, int64_t n);
void quantize_block_q2_K(const float *x, void *y, int64_t n);
void quantize_block_q3_K(const float *x, void *y, int64_t n);
void quantize_block_q4_K(const float *x, void *y, int64_t n);
void quantize_block_q5_K(const float *x, void *y, int64_t n);
void quantize_block_q6_K(const float *x, void *y, int64_t n);

/* ---- quantize_mix.c ---- */

/* llama.cpp's llama_ftype values, stored as general.file_type. */
enum quantize_ftype {
	QF_ALL_F32 = 0, QF_F16 = 1, QF_Q4_0 = 2, QF_Q4_1 = 3, QF_Q8_0 = 7,
	QF_Q5_0 = 8, QF_Q5_1 = 9, QF_Q2_K = 10, QF_Q3_K_S = 11, QF_Q3_K_M = 12,
	QF_Q3_K_L = 13, QF_Q4_K_S = 14, QF_Q4_K_M = 15, QF_Q5_K_S = 16,
	QF_Q5_K_M = 17, QF_Q6_K = 18, QF_BF16 = 32,
};

/* The ftype of a name ("q4_k_m", any case) the quantize command accepts,
 * or -1.  quantize_ftype_name: its canonical name ("Q4_K_M"). */
int quantize_ftype_parse(const char *name);
const char *quantize_ftype_name(int ftype);
/* "Q4_0 Q4_1 ... Q6_K": the accepted names, for messages. */
const char *quantize_ftype_list(void);
/* The type most tensors of a file type get (Q3_K for Q3_K_M). */
int quantize_ftype_base(int ftype);

/*
 * The per-tensor choice, with the counters llama.cpp keeps while it walks
 * the tensors in file order (attention V and FFN down are numbered by
 * layer).  quantize_mix_init counts from the tensor names; then call
 * quantize_mix_type once per tensor, in file order.
 */
struct quantize_mix {
	int ftype, base;
	int n_layer;              /* <arch>.block_count */
	int n_gqa;                /* n_head / n_head_kv, 1 when unknown */
	int has_output;           /* output.weight present (else tied to token_embd) */
	int n_attention_wv, i_attention_wv;
	int n_ffn_down, i_ffn_down;
	int n_fallback;           /* tensors whose rows did not fit the block */
};
void quantize_mix_init(struct quantize_mix *m, int ftype, int n_layer, int n_gqa,
    const char *const *names, int n_tensors);
/* Type for tensor `name` of n_dims dims, row length ne0, now of type
 * cur_type: cur_type itself for tensors that stay as they are. */
int quantize_mix_type(struct quantize_mix *m, const char *name, int n_dims, int64_t ne0, int cur_type);

/* ---- quantize.c ---- */

struct quantize_params {
	int ftype;                /* enum quantize_ftype */
	int n_threads;            /* 0: all */
	int allow_requantize;     /* quantized input tensors are dequantized first */
	atomic_int *stop;         /* may be NULL; checked between tensors */
	/* Called before each tensor (may be NULL): i of n, its name, types. */
	void (*progress)(void *ud, int i, int n, const char *name, int from, int to);
	void *ud;
};

struct quantize_stats {
	int n_tensors, n_quantized, n_requantized, n_fallback;
	uint64_t in_bytes, out_bytes;
};

/*
 * Read GGUF `in`, write `out` with every tensor of the chosen type, the
 * metadata copied and general.file_type / general.quantization_version
 * set.  The file is written to a temporary name beside `out` and renamed
 * at the end; on error or stop the temporary file is removed and `out` is
 * untouched.  Returns 0, 1 if stopped, -1 with *err.  Quantized input
 * tensors without allow_requantize are an error ("requantizing from Q4_K
 * needs --allow-requantize").
 */
int quantize_file(const char *in, const char *out, const struct quantize_params *p,
    struct quantize_stats *st, char **err);

#endif
