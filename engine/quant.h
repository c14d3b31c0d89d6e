/*
 * quant.h: tensor element types, the quantized block layouts of GGUF files,
 * and the per-type table of kernels.
 *
 * The block structs mirror the bytes in the file exactly (llama.cpp's ggml
 * layouts); each is followed by a static assert of its size so that a pointer
 * into a memory-mapped tensor can be indexed as an array of blocks.  fp16 and
 * bf16 values are kept as raw uint16_t.
 *
 * Every weight type has a scalar reference dot product against activations
 * quantized to its `vec_dot_type` (Q8_0 for the 32-weight types, Q8_1 for the
 * types with a minimum, Q8_K for the K-quants, F16/BF16/F32 for the float
 * types), exactly as llama.cpp pairs them, so greedy results agree with it.
 * SIMD kernels sit beside the reference and are tested against it.
 */
#ifndef ENGINE_QUANT_H
#define ENGINE_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Values are GGML's type ids, as stored in GGUF tensor infos. */
enum qtype {
	QT_F32  = 0,
	QT_F16  = 1,
	QT_Q4_0 = 2,
	QT_Q4_1 = 3,
	QT_Q5_0 = 6,
	QT_Q5_1 = 7,
	QT_Q8_0 = 8,
	QT_Q8_1 = 9,
	QT_Q2_K = 10,
	QT_Q3_K = 11,
	QT_Q4_K = 12,
	QT_Q5_K = 13,
	QT_Q6_K = 14,
	QT_Q8_K = 15,
	QT_BF16 = 30,
	QT_COUNT = 31,
	/* Not a GGUF type: llama2.c version-2 int8 weights, a row of int8 with
	 * one float scale per `group` values kept in a separate array. */
	QT_Q8_G = 100,
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef uint16_t fp16_t;
typedef uint16_t bf16_t;

typedef struct { fp16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0");
typedef struct { fp16_t d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1");
typedef struct { fp16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0");
typedef struct { fp16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1");
typedef struct { fp16_t d; int8_t qs[QK8_0]; } block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0");
/* s = d * sum(qs), so that the minimum term of q4_1/q5_1 costs one multiply. */
typedef struct { fp16_t d, s; int8_t qs[QK8_1]; } block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1");

/* K-quants: 256-weight super-blocks of 16 or 8 sub-blocks. */
typedef struct {
	uint8_t scales[QK_K / 16]; /* 4-bit scale (low) and min (high) per 16 */
	uint8_t qs[QK_K / 4];      /* 2-bit quants */
	fp16_t d, dmin;
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K");
typedef struct {
	uint8_t hmask[QK_K / 8];   /* high bit */
	uint8_t qs[QK_K / 4];      /* low 2 bits */
	uint8_t scales[12];        /* 16 six-bit scales */
	fp16_t d;
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K");
/* Q3_K's 16 signed scales from its 12 packed bytes (quant.c; one copy for
 * the reference and the SIMD kernels). */
void quant_q3_K_scales(const uint8_t *p, int8_t *sc);
typedef struct {
	fp16_t d, dmin;
	uint8_t scales[K_SCALE_SIZE]; /* 8 six-bit scales and 8 six-bit mins */
	uint8_t qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K");
typedef struct {
	fp16_t d, dmin;
	uint8_t scales[K_SCALE_SIZE];
	uint8_t qh[QK_K / 8];
	uint8_t qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K");
typedef struct {
	uint8_t ql[QK_K / 2];      /* low 4 bits */
	uint8_t qh[QK_K / 4];      /* high 2 bits */
	int8_t scales[QK_K / 16];
	fp16_t d;
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K");
/* Activations for the K-quants: float scale, 16 sums of 16 quants each. */
typedef struct {
	float d;
	int8_t qs[QK_K];
	int16_t bsums[QK_K / 16];
} block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K");

/*
 * One entry per supported type.  n is always a multiple of `blck`.
 *   to_float:   dequantize n values (x: blocks of this type).
 *   from_float: the reference quantizer (activations, and the bench model
 *               writer's weights); for Q8_0/Q8_1/Q8_K it rounds exactly as
 *               llama.cpp's reference does.
 *   vec_dot:    *s = dot(x, y) over n values, x of this type, y of
 *               vec_dot_type; the fastest kernel this build has.
 *   vec_dot_ref: the scalar reference of the same.
 */
typedef void (*quant_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*quant_from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*quant_vec_dot_fn)(int n, float *s, const void *x, const void *y);

struct quant_type {
	const char *name;          /* "Q4_K", as llama.cpp names it */
	int blck;                  /* values per block */
	size_t type_size;          /* bytes per block */
	enum qtype vec_dot_type;
	quant_to_float_fn to_float;
	quant_from_float_fn from_float;
	quant_vec_dot_fn vec_dot;
	quant_vec_dot_fn vec_dot_ref;
};

/* NULL for a type this engine does not support (or an id out of range). */
const struct quant_type *quant_type_get(int type);
/* Bytes of one row of n values, or 0 if n is not a multiple of the block. */
size_t quant_row_size(int type, int64_t n);
const char *quant_type_name(int type);
/* Name of the SIMD level compiled in ("avx512-vnni", "avx2", "scalar"). */
const char *quant_simd_name(void);

/*
 * The same entries with every kernel at its scalar reference (vec_dot ==
 * vec_dot_ref, from_float the scalar quantizer): for tests and for a bench
 * baseline.  NULL where quant_type_get is NULL.
 */
const struct quant_type *quant_type_get_ref(int type);

/*
 * Several activation rows against one weight row: for r < nrc,
 *   s[r * bs] = dot(x, (const char *)y + r * by)    (bs in floats, by in bytes)
 * x is one row of n values of `type`, each y row n values of its
 * vec_dot_type.  The weight block is unpacked once and used for every row,
 * which is what makes prompt processing cheaper than nrc vec_dot calls.
 * Results equal vec_dot's within the same float-summation tolerance.  Never
 * NULL for a type quant_type_get knows: types without a dedicated kernel get
 * a loop over vec_dot.
 */
typedef void (*quant_vec_dot_n_fn)(int n, float *s, size_t bs, const void *x,
    const void *y, size_t by, int nrc);
quant_vec_dot_n_fn quant_vec_dot_n(int type);

/*
 * Decoding, one activation row against many weight rows: for some types the
 * kernel reads a prepared form of the activation row (made once per row by
 * quant_dec_prepare from its vec_dot_type row y), which holds what each
 * weight row's dot would otherwise recompute.  quant_dec_size is 0 where
 * this CPU has no such kernel for the type (use vec_dot); otherwise the
 * bytes the prepared row takes, which must be 64-byte aligned.
 * quant_dec_dot(type)(n, s, x, prep) gives vec_dot's bits exactly.
 */
size_t quant_dec_size(int type, int n);
void quant_dec_prepare(int type, int n, const void *y, void *prep);
quant_vec_dot_fn quant_dec_dot(int type);

/*
 * Between quant.c and quant_simd.c only.  The fastest kernel this CPU runs
 * for a type, or NULL to keep the scalar reference; chosen once, by CPUID at
 * run time, so a PORTABLE build still uses AVX2/AVX-512 where present.
 */
quant_vec_dot_fn quant_simd_vec_dot(int type);
quant_from_float_fn quant_simd_from_float(int type);
quant_vec_dot_n_fn quant_simd_vec_dot_n(int type);
/*
 * The kernels of one named level ("avx2", "avx512-vnni"), NULL where that
 * level has no kernel for the type or this CPU cannot run it: lets the tests
 * hold every level to the reference, not only the one the table picked.
 */
quant_vec_dot_fn quant_simd_vec_dot_at(const char *level, int type);
quant_from_float_fn quant_simd_from_float_at(const char *level, int type);
quant_vec_dot_n_fn quant_simd_vec_dot_n_at(const char *level, int type);

float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);      /* round to nearest even, as F16C does */
float bf16_to_fp32(bf16_t h);
bf16_t fp32_to_bf16(float f);      /* round to nearest even, NaN kept quiet */

#endif
