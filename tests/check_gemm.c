/*
 * check_gemm.c: the gemm module's suite.  For every supported weight type
 * and every kernel level this CPU runs ("generic" always, "avx2" and
 * "avx512-vnni" where present), table-driven over (n, rows, B) shapes and row sub-ranges:
 * gemm against the scalar reference (vec_dot_ref of each weight row with
 * the reference-quantized activation row) within
 *     |gemm - ref| <= 1e-5 * sum_i |w_i * a_i| + 1e-6,
 * on weights from the reference quantizer and on random block bytes (sane
 * fp16 scales); outputs outside the row range and the batch untouched;
 * gemm_act_prepare's quants bit for bit those of the reference quantizer
 * (read back through gemm_act_row).  Failures name the level, type, case
 * and the (row, column).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm.h"
#include "engine/quant.h"
#include "tests/testutil.h"

static uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = s * 0x9e3779b97f4a7c15ULL + 1;
}

static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static double
rng_unit(void)
{
	return (double)(rng_next() >> 11) * 0x1p-53;
}

static float
rng_normal(void)
{
	double u = rng_unit(), v = rng_unit();
	return (float)(sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v));
}

/* Gaussian values with now and then an outlier, as real activations have. */
static void
fill_normal(float *x, size_t n, float scale)
{
	for (size_t i = 0; i < n; i++) {
		x[i] = rng_normal() * scale;
		if (rng_next() % 97 == 0)
			x[i] *= 8;
	}
}

static const int types[] = { QT_Q4_0, QT_Q8_0, QT_Q4_K, QT_Q6_K };
#define NTYPES (int)(sizeof types / sizeof types[0])

static const char *const levels[] = { "generic", "avx2", "avx512-vnni" };
#define NLEVELS (int)(sizeof levels / sizeof levels[0])

/* Offsets of the fp16 fields of a block, -1 ended. */
static void
f16_fields(int type, int off[3])
{
	off[0] = off[1] = off[2] = -1;
	switch (type) {
	case QT_Q4_0:
	case QT_Q8_0:
		off[0] = 0;
		break;
	case QT_Q4_K:
		off[0] = 0;
		off[1] = 2;
		break;
	case QT_Q6_K:
		off[0] = (int)offsetof(block_q6_K, d);
		break;
	}
}

/* rows weight rows of n values: quantized from Gaussian data, or random
 * bytes with every fp16 field a sane scale. */
static unsigned char *
make_weights(int type, int n, int rows, int random_bytes)
{
	const struct quant_type *qt = quant_type_get_ref(type);
	const size_t rb = quant_row_size(type, n);
	unsigned char *w = malloc(rb * (size_t)rows);
	ck_assert_ptr_nonnull(w);
	if (!random_bytes) {
		float *f = malloc((size_t)n * sizeof *f);
		ck_assert_ptr_nonnull(f);
		for (int r = 0; r < rows; r++) {
			fill_normal(f, (size_t)n, 0.02f);
			qt->from_float(f, w + rb * (size_t)r, n);
		}
		free(f);
		return w;
	}
	for (size_t i = 0; i < rb * (size_t)rows; i++)
		w[i] = (unsigned char)rng_next();
	int off[3];
	f16_fields(type, off);
	const size_t nblk = (size_t)rows * (size_t)(n / qt->blck);
	for (size_t i = 0; i < nblk; i++) {
		for (int f = 0; f < 3 && off[f] >= 0; f++) {
			fp16_t h = fp32_to_fp16((float)(rng_unit() * 0.01 + 1e-4));
			memcpy(w + i * qt->type_size + off[f], &h, sizeof h);
		}
	}
	return w;
}

struct shape {
	int n, rows, B;
	int r0, r1;   /* the row range to compute (r1 == 0: all rows) */
};

static const struct shape shapes[] = {
	{ 256, 16, 1, 0, 0 },
	{ 256, 37, 3, 0, 0 },
	{ 256, 5, 64, 0, 0 },
	{ 512, 33, 16, 0, 0 },
	{ 512, 40, 5, 3, 29 },
	{ 768, 48, 7, 16, 32 },
	{ 4096, 20, 16, 0, 0 },
	{ 4096, 17, 64, 1, 17 },
	{ 4096, 3, 3, 0, 0 },
	{ 11008, 9, 3, 0, 0 },
	{ 11008, 18, 16, 2, 18 },
	/* odd batches and row counts: partial 8- and 16-row tiles, 4- and
	 * 8-column groups with a remainder */
	{ 256, 7, 17, 0, 0 },
	{ 512, 23, 12, 1, 22 },
	{ 768, 13, 31, 5, 13 },
	/* 32-value blocks only: n not a multiple of 256, or of a K chunk */
	{ 32, 3, 2, 0, 0 },
	{ 96, 21, 9, 0, 0 },
	{ 1056, 19, 13, 4, 19 },
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* One level, one type, one shape, one kind of weights. */
static void
check_case(const char *lv, int type, int si, int random_bytes)
{
	const struct shape *sh = &shapes[si];
	const struct quant_type *qt = quant_type_get_ref(type);
	const struct quant_type *yt = quant_type_get_ref(qt->vec_dot_type);
	const int n = sh->n, rows = sh->rows, B = sh->B;
	if (n % qt->blck != 0)
		return;
	const int r0 = sh->r0, r1 = sh->r1 ? sh->r1 : rows;
	const size_t rb = quant_row_size(type, n), yrb = quant_row_size(qt->vec_dot_type, n);

	unsigned char *w = make_weights(type, n, rows, random_bytes);
	float *x = malloc((size_t)n * (size_t)B * sizeof *x);
	unsigned char *y = malloc(yrb * (size_t)B);
	unsigned char *yb = malloc(yrb);
	float *wf = malloc((size_t)n * sizeof *wf);
	float *yf = malloc((size_t)n * (size_t)B * sizeof *yf);
	ck_assert(x && y && yb && wf && yf);
	fill_normal(x, (size_t)n * (size_t)B, 1.0f);
	if (B > 2)  /* an all-zero row: d = 0 */
		memset(x + (size_t)n, 0, (size_t)n * sizeof *x);
	for (int b = 0; b < B; b++) {
		yt->from_float(x + (size_t)b * (size_t)n, y + yrb * (size_t)b, n);
		yt->to_float(y + yrb * (size_t)b, yf + (size_t)b * (size_t)n, n);
	}

	const size_t asz = gemm_act_size(type, n, B);
	ck_assert_msg(asz > 0, "%s %s n=%d: act size 0", lv, qt->name, n);
	void *act = aligned_alloc(64, (asz + 63) / 64 * 64);
	ck_assert_ptr_nonnull(act);
	gemm_act_prepare(type, n, x, B, act);
	for (int b = 0; b < B; b++) {
		memset(yb, 0x5a, yrb);
		ck_assert_int_eq(gemm_act_row(type, n, act, B, b, yb), 0);
		ck_assert_msg(memcmp(yb, y + yrb * (size_t)b, yrb) == 0,
		    "%s %s case %d: prepared row %d differs from the reference quantizer",
		    lv, qt->name, si, b);
	}

	/* Output with a margin column past B and rows outside [r0, r1). */
	const size_t ldo = (size_t)rows + 3;
	float *out = malloc(ldo * (size_t)(B + 1) * sizeof *out);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < ldo * (size_t)(B + 1); i++)
		out[i] = -12345.0f;
	gemm(type, n, w, rb, r0, r1, act, B, out, ldo);

	for (int r = 0; r < rows; r++) {
		const unsigned char *wr = w + rb * (size_t)r;
		qt->to_float(wr, wf, n);
		for (int b = 0; b < B + 1; b++) {
			const float got = out[(size_t)b * ldo + (size_t)r];
			if (r < r0 || r >= r1 || b == B) {
				ck_assert_msg(got == -12345.0f, "%s %s case %d: wrote outside (row %d, col %d)",
				    lv, qt->name, si, r, b);
				continue;
			}
			float ref;
			qt->vec_dot_ref(n, &ref, wr, y + yrb * (size_t)b);
			double mag = 0;
			for (int i = 0; i < n; i++)
				mag += fabs((double)wf[i] * yf[(size_t)b * (size_t)n + (size_t)i]);
			const double bound = 1e-5 * mag + 1e-6;
			ck_assert_msg(fabs((double)got - ref) <= bound,
			    "%s %s case %d (n=%d rows=%d B=%d, %s weights): row %d col %d: gemm %.9g ref %.9g "
			    "(diff %.3g > bound %.3g)", lv, qt->name, si, n, rows, B,
			    random_bytes ? "random" : "quantized", r, b, got, ref,
			    fabs((double)got - ref), bound);
		}
	}
	free(out);
	free(act);
	free(w);
	free(x);
	free(y);
	free(yb);
	free(wf);
	free(yf);
}

static void
check_level(const char *lv, int random_bytes)
{
	if (gemm_force_level(lv) != 0) {
		fprintf(stderr, "check_gemm: level %s not available on this CPU, skipped\n", lv);
		return;
	}
	ck_assert_str_eq(gemm_level(), lv);
	for (int t = 0; t < NTYPES; t++) {
		rng_seed((uint64_t)(1000 * t + random_bytes + 1));
		for (int s = 0; s < NSHAPES; s++)
			check_case(lv, types[t], s, random_bytes);
	}
	gemm_force_level(NULL);
}

START_TEST(test_gemm_vs_ref)
{
	check_level(levels[_i / 2], _i % 2);
}
END_TEST

START_TEST(test_unsupported)
{
	ck_assert_uint_eq(gemm_act_size(QT_F32, 256, 4), 0);
	ck_assert_uint_eq(gemm_act_size(QT_Q5_K, 256, 4), 0);
	ck_assert_uint_eq(gemm_act_size(QT_Q4_0, 48, 4), 0);   /* not whole blocks */
	ck_assert_uint_eq(gemm_act_size(QT_Q4_K, 4096 + 32, 4), 0);
	ck_assert_uint_eq(gemm_act_size(QT_Q4_0, 256, 0), 0);
	ck_assert_uint_eq(gemm_act_size(-1, 256, 4), 0);
	ck_assert_int_eq(gemm_force_level("no-such-level"), -1);
	unsigned char dst[sizeof(block_q8_K)];
	ck_assert_int_eq(gemm_act_row(QT_Q5_K, 256, dst, 1, 0, dst), -1);
	for (int t = 0; t < NTYPES; t++)
		ck_assert_uint_gt(gemm_act_size(types[t], 256, 1), 0);
}
END_TEST

/* Many threads at once on disjoint row ranges give what one call gives. */
START_TEST(test_threads)
{
	for (int t = 0; t < NTYPES; t++) {
		const int type = types[t], n = 512, rows = 100, B = 11;
		const size_t rb = quant_row_size(type, n);
		rng_seed(77 + (uint64_t)t);
		unsigned char *w = make_weights(type, n, rows, 0);
		float *x = malloc((size_t)n * B * sizeof *x);
		ck_assert_ptr_nonnull(x);
		fill_normal(x, (size_t)n * B, 1.0f);
		const size_t asz = gemm_act_size(type, n, B);
		void *act = aligned_alloc(64, (asz + 63) / 64 * 64);
		float *o1 = malloc((size_t)rows * B * sizeof *o1);
		float *o2 = malloc((size_t)rows * B * sizeof *o2);
		ck_assert(act && o1 && o2);
		gemm_act_prepare(type, n, x, B, act);
		gemm(type, n, w, rb, 0, rows, act, B, o1, rows);
		#pragma omp parallel for num_threads(4) schedule(dynamic, 1)
		for (int c = 0; c < (rows + 6) / 7; c++) {
			const int a = c * 7, e = a + 7 < rows ? a + 7 : rows;
			gemm(type, n, w, rb, a, e, act, B, o2, rows);
		}
		for (int i = 0; i < rows * B; i++)
			ck_assert_msg(o1[i] == o2[i], "%s: threaded result %d differs", quant_type_name(type), i);
		free(w);
		free(x);
		free(act);
		free(o1);
		free(o2);
	}
}
END_TEST

/*
 * Packed weights (gemm_pack.c): for every shape and both kinds of weights,
 * gemm_packed gives the bits gemm gives on the file's rows at the
 * avx512-vnni level (so the reference bound above holds for it too), for
 * the shape's batch and for one column (the decode kernel); rows outside
 * [r0, r1) and columns past B untouched; packing in two tile ranges writes
 * what one call writes.
 */
static void
check_packed(int type, int si, int random_bytes, int B)
{
	const struct shape *sh = &shapes[si];
	const int n = sh->n, rows = sh->rows;
	const int r0 = sh->r0 / 16 * 16, r1 = sh->r1 ? sh->r1 : rows;
	const size_t rb = quant_row_size(type, n);
	unsigned char *w = make_weights(type, n, rows, random_bytes);
	const size_t psz = gemm_pack_size(type, n, rows);
	const int tiles = (rows + 15) / 16;
	ck_assert_uint_gt(psz, 0);
	unsigned char *p1 = aligned_alloc(64, psz), *p2 = aligned_alloc(64, psz);
	ck_assert(p1 && p2);
	memset(p2, 0x77, psz);
	gemm_pack(type, n, rows, w, rb, p1, 0, tiles);
	gemm_pack(type, n, rows, w, rb, p2, tiles / 2, tiles);
	gemm_pack(type, n, rows, w, rb, p2, 0, tiles / 2);
	ck_assert_msg(memcmp(p1, p2, psz) == 0, "%s case %d: packing in two ranges differs", quant_type_name(type), si);

	float *x = malloc((size_t)n * (size_t)B * sizeof *x);
	ck_assert_ptr_nonnull(x);
	fill_normal(x, (size_t)n * (size_t)B, 1.0f);
	if (B > 2)
		memset(x + (size_t)n, 0, (size_t)n * sizeof *x);
	const size_t asz = gemm_act_size(type, n, B), psz_a = gemm_pack_act_size(type, n, B);
	void *act = aligned_alloc(64, (asz + 63) / 64 * 64), *pact = aligned_alloc(64, (psz_a + 63) / 64 * 64);
	const size_t ldo = (size_t)rows + 3;
	float *o1 = malloc(ldo * (size_t)(B + 1) * sizeof *o1), *o2 = malloc(ldo * (size_t)(B + 1) * sizeof *o2);
	ck_assert(act && pact && o1 && o2);
	for (size_t i = 0; i < ldo * (size_t)(B + 1); i++)
		o1[i] = o2[i] = -12345.0f;
	gemm_act_prepare(type, n, x, B, act);
	gemm_pack_act_prepare(type, n, x, B, pact);
	gemm(type, n, w, rb, r0, r1, act, B, o1, ldo);
	gemm_packed(type, n, p1, r0, r1, pact, B, o2, ldo);
	for (int b = 0; b < B + 1; b++)
		for (int r = 0; r < rows; r++) {
			const size_t i = (size_t)b * ldo + (size_t)r;
			ck_assert_msg(memcmp(&o1[i], &o2[i], sizeof o1[i]) == 0,
			    "%s case %d (n=%d rows=%d B=%d, %s weights): row %d col %d: packed %.9g, gemm %.9g",
			    quant_type_name(type), si, n, rows, B, random_bytes ? "random" : "quantized", r, b,
			    o2[i], o1[i]);
		}
	free(w);
	free(p1);
	free(p2);
	free(x);
	free(act);
	free(pact);
	free(o1);
	free(o2);
}

START_TEST(test_packed)
{
	static const int ptypes[] = { QT_Q4_0, QT_Q8_0, QT_Q4_K, QT_Q6_K };
	const int type = ptypes[_i / 2], random_bytes = _i % 2;
	const int blck = quant_type_get_ref(type)->blck;
	ck_assert_int_eq(gemm_force_level("avx512-vnni"), 0);
	rng_seed((uint64_t)(31 + _i));
	int checked = 0;
	for (int s = 0; s < NSHAPES; s++) {
		if (shapes[s].n % blck != 0)
			continue;
		check_packed(type, s, random_bytes, shapes[s].B);
		check_packed(type, s, random_bytes, 1);
		checked++;
	}
	ck_assert_int_ge(checked, 10);
	gemm_force_level(NULL);
	ck_assert_uint_eq(gemm_pack_size(QT_Q5_K, 256, 16), 0);
	ck_assert_uint_eq(gemm_pack_size(QT_Q4_0, 48, 16), 0);
	ck_assert_uint_eq(gemm_pack_size(QT_Q4_K, 288, 16), 0);
	ck_assert_uint_eq(gemm_pack_act_size(QT_Q5_K, 256, 1), 0);
}
END_TEST

/* extern: the Makefile finds suites by a line starting "Suite *". */
Suite *gemm_suite(void);

Suite *
gemm_suite(void)
{
	Suite *s = suite_create("gemm");
	TCase *tc = tcase_create("gemm");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_unsupported);
	tcase_add_loop_test(tc, test_gemm_vs_ref, 0, 2 * NLEVELS);
	tcase_add_test(tc, test_threads);
	/* Packing needs AVX-512 VNNI: elsewhere the test is counted skipped. */
	if (gemm_pack_size(QT_Q4_0, 32, 16) > 0)
		tcase_add_loop_test(tc, test_packed, 0, 8);
	else
		testutil_skipped++;
	suite_add_tcase(s, tc);
	return s;
}
