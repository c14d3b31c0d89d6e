/*
 * quant_simd.c: which x86 SIMD kernels quant.c uses, chosen at run time.
 *
 * quant.c asks once (through quant_simd_vec_dot etc.) for the level of the
 * family cpu.c chose (the best this CPU runs, or LLAMA2_CHAT_ISA's;
 * "scalar" leaves the reference in place), and puts that level's kernels in
 * its table; the tests ask for a level by name.  Two levels:
 *   "avx2"         AVX2 + FMA + F16C (Haswell, Zen 1 and later);
 *   "avx512-vnni"  AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4): the same
 *                  algorithms, with vpdpbusd for the int8 sums and 512-bit
 *                  registers where the block layout allows.
 * The kernels live in quant_avx2.c and quant_avx512.c (their contract with
 * the reference is in quant_simd_int.h); this file holds only the tables,
 * so a level never hands out a kernel its CPU check did not cover.  A NULL
 * entry keeps the scalar reference for that type.  The vec_dot_n kernels
 * (Q4_0, Q8_0, Q4_K, Q6_K) unpack a weight block once for four activation
 * rows; they follow the same contract per row.
 */
#include "engine/quant_simd_int.h"
#include "engine/cpu.h"

#include <string.h>

#ifdef QUANT_X86


/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

struct level {
	const char *name;
	int (*supported)(void);
	quant_vec_dot_fn dot[QT_COUNT];
	quant_from_float_fn quant[QT_COUNT];
	quant_vec_dot_n_fn dot_n[QT_COUNT];
};

static int
have_avx2(void)
{
	return cpu_has(CPU_AVX2);
}

static int
have_avx512(void)
{
	return cpu_has(CPU_AVX512);
}

/* Best first. */
static const struct level levels[] = {
	{
		"avx512-vnni", have_avx512,
		.dot = {
			[QT_F32] = f32_dot_avx2, [QT_F16] = f16_dot_avx2, [QT_BF16] = bf16_dot_avx2,
			[QT_Q4_0] = q4_0_dot_avx512, [QT_Q4_1] = q4_1_dot_vnni,
			[QT_Q5_0] = q5_0_dot_vnni, [QT_Q5_1] = q5_1_dot_vnni,
			[QT_Q8_0] = q8_0_dot_avx512,
			[QT_Q2_K] = q2_K_dot_avx2, [QT_Q3_K] = q3_K_dot_avx2,
			[QT_Q4_K] = q4_K_dot_avx512, [QT_Q5_K] = q5_K_dot_avx2,
			[QT_Q6_K] = q6_K_dot_avx512, [QT_Q8_K] = q8_K_dot_avx2,
		},
		.quant = {
			[QT_Q8_0] = q8_0_quant_avx2, [QT_Q8_1] = q8_1_quant_avx2,
			[QT_Q8_K] = q8_K_quant_avx2,
		},
		.dot_n = {
			[QT_Q4_0] = q4_0_dot_n_avx2, [QT_Q8_0] = q8_0_dot_n_avx2,
			[QT_Q4_K] = q4_K_dot_n_avx2, [QT_Q6_K] = q6_K_dot_n_avx2,
		},
	},
	{
		"avx2", have_avx2,
		.dot = {
			[QT_F32] = f32_dot_avx2, [QT_F16] = f16_dot_avx2, [QT_BF16] = bf16_dot_avx2,
			[QT_Q4_0] = q4_0_dot_avx2, [QT_Q4_1] = q4_1_dot_avx2,
			[QT_Q5_0] = q5_0_dot_avx2, [QT_Q5_1] = q5_1_dot_avx2,
			[QT_Q8_0] = q8_0_dot_avx2,
			[QT_Q2_K] = q2_K_dot_avx2, [QT_Q3_K] = q3_K_dot_avx2,
			[QT_Q4_K] = q4_K_dot_avx2, [QT_Q5_K] = q5_K_dot_avx2,
			[QT_Q6_K] = q6_K_dot_avx2, [QT_Q8_K] = q8_K_dot_avx2,
		},
		.quant = {
			[QT_Q8_0] = q8_0_quant_avx2, [QT_Q8_1] = q8_1_quant_avx2,
			[QT_Q8_K] = q8_K_quant_avx2,
		},
		.dot_n = {
			[QT_Q4_0] = q4_0_dot_n_avx2, [QT_Q8_0] = q8_0_dot_n_avx2,
			[QT_Q4_K] = q4_K_dot_n_avx2, [QT_Q6_K] = q6_K_dot_n_avx2,
		},
	},
};

#define NLEVELS (int)(sizeof levels / sizeof levels[0])

static const struct level *
level_named(const char *name)
{
	for (int i = 0; i < NLEVELS; i++)
		if (name != NULL && strcmp(levels[i].name, name) == 0)
			return levels[i].supported() ? &levels[i] : NULL;
	return NULL;
}

/* The family cpu.c chose (LLAMA2_CHAT_ISA or the best the CPU has). */
static const struct level *
level_best(void)
{
	switch (cpu_isa()) {
	case CPU_AVX512: return &levels[0];
	case CPU_AVX2: return &levels[1];
	default: return NULL;
	}
}

static int
type_ok(int type)
{
	return type >= 0 && type < QT_COUNT;
}

quant_vec_dot_fn
quant_simd_vec_dot_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->dot[type] : NULL;
}

quant_from_float_fn
quant_simd_from_float_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->quant[type] : NULL;
}

quant_vec_dot_n_fn
quant_simd_vec_dot_n_at(const char *level, int type)
{
	const struct level *l = level_named(level);
	return l != NULL && type_ok(type) ? l->dot_n[type] : NULL;
}

quant_vec_dot_fn
quant_simd_vec_dot(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->dot[type] : NULL;
}

quant_from_float_fn
quant_simd_from_float(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->quant[type] : NULL;
}

quant_vec_dot_n_fn
quant_simd_vec_dot_n(int type)
{
	const struct level *l = level_best();
	return l != NULL && type_ok(type) ? l->dot_n[type] : NULL;
}

/* The prepared-activation decode kernels (quant.h), Q4_0 only: that is
 * where the per-row work on y was a fifth of the kernel (AVX-512) or more
 * (AVX2, whose vec_dot prepares each group of eight blocks on the fly). */
size_t
quant_dec_size(int type, int n)
{
	if (type != QT_Q4_0 || n % 32 != 0)
		return 0;
	const struct level *l = level_best();
	return l == &levels[0] ? q4_0_dec_size(n) : l == &levels[1] ? q4_0_dec2_size(n) : 0;
}

void
quant_dec_prepare(int type, int n, const void *y, void *prep)
{
	if (quant_dec_size(type, n) == 0)
		return;
	if (level_best() == &levels[0])
		q4_0_dec_prep_avx512(n, y, prep);
	else
		q4_0_dec2_prep(n, y, prep);
}

quant_vec_dot_fn
quant_dec_dot(int type)
{
	if (quant_dec_size(type, 32) == 0)
		return NULL;
	return level_best() == &levels[0] ? q4_0_dec_dot_avx512 : q4_0_dec2_dot;
}

const char *
quant_simd_name(void)
{
	const struct level *l = level_best();
	return l != NULL ? l->name : "scalar";
}

#else /* !QUANT_X86: the scalar reference is all there is. */

quant_vec_dot_fn quant_simd_vec_dot_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_from_float_fn quant_simd_from_float_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_vec_dot_n_fn quant_simd_vec_dot_n_at(const char *level, int type) { (void)level; (void)type; return NULL; }
quant_vec_dot_fn quant_simd_vec_dot(int type) { (void)type; return NULL; }
quant_from_float_fn quant_simd_from_float(int type) { (void)type; return NULL; }
quant_vec_dot_n_fn quant_simd_vec_dot_n(int type) { (void)type; return NULL; }
const char *quant_simd_name(void) { return "scalar"; }
size_t quant_dec_size(int type, int n) { (void)type; (void)n; return 0; }
void quant_dec_prepare(int type, int n, const void *y, void *prep) { (void)type; (void)n; (void)y; (void)prep; }
quant_vec_dot_fn quant_dec_dot(int type) { (void)type; return NULL; }

#endif
