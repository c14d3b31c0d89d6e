/*
 * check_quant.c: the quant module's suite.  Table-driven over every type:
 * block sizes; dequantization of blocks built by hand from the format
 * facts; quantize/dequantize round-trip error on seeded random data; the
 * reference dot product against a double-precision dot of the dequantized
 * operands; every SIMD level's kernels against the reference within the
 * stated bound (on quantizer output and on random block bytes); the SIMD
 * activation quantizers bit for bit against the reference; fp16/bf16 edge
 * values.  Failures name the type, level, size and row.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------------ */
/* Seeded data                                                         */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = s * 0x9e3779b97f4a7c15ULL + 1;
}

static uint64_t
rng_next(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* uniform in [0, 1) */
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

/* Gaussian values, with now and then an outlier as real activations have. */
static void
fill_normal(float *x, int64_t n, float scale)
{
	for (int64_t i = 0; i < n; i++) {
		x[i] = rng_normal() * scale;
		if (rng_next() % 97 == 0)
			x[i] *= 8;
	}
}

/* ------------------------------------------------------------------ */
/* The types                                                           */
/* ------------------------------------------------------------------ */

struct tinfo {
	int type;
	const char *name;
	int blck;
	size_t size;
	int vdt;
	double rt_bound;        /* relative RMS error of a round trip */
	int nf16;               /* fp16 fields to make sane in random bytes */
	int f16off[2];
};

static const struct tinfo types[] = {
	{ QT_F32,  "F32",  1,    4,   QT_F32,  0,      0, {0} },
	{ QT_F16,  "F16",  1,    2,   QT_F16,  3e-4,   0, {0} },
	{ QT_BF16, "BF16", 1,    2,   QT_BF16, 2.5e-3, 0, {0} },
	{ QT_Q4_0, "Q4_0", 32,   18,  QT_Q8_0, 0.16,   1, {0} },
	{ QT_Q4_1, "Q4_1", 32,   20,  QT_Q8_1, 0.12,   2, {0, 2} },
	{ QT_Q5_0, "Q5_0", 32,   22,  QT_Q8_0, 0.09,   1, {0} },
	{ QT_Q5_1, "Q5_1", 32,   24,  QT_Q8_1, 0.06,   2, {0, 2} },
	{ QT_Q8_0, "Q8_0", 32,   34,  QT_Q8_0, 0.012,  1, {0} },
	{ QT_Q8_1, "Q8_1", 32,   36,  QT_Q8_1, 0.012,  0, {0} },
	{ QT_Q2_K, "Q2_K", 256,  84,  QT_Q8_K, 0.45,   2, {80, 82} },
	{ QT_Q3_K, "Q3_K", 256,  110, QT_Q8_K, 0.25,   1, {108} },
	{ QT_Q4_K, "Q4_K", 256,  144, QT_Q8_K, 0.12,   2, {0, 2} },
	{ QT_Q5_K, "Q5_K", 256,  176, QT_Q8_K, 0.06,   2, {0, 2} },
	{ QT_Q6_K, "Q6_K", 256,  210, QT_Q8_K, 0.033,   1, {208} },
	{ QT_Q8_K, "Q8_K", 256,  292, QT_Q8_K, 0.024,  0, {0} },
};
#define NTYPES (int)(sizeof types / sizeof types[0])

static const char *const levels[] = { "avx2", "avx512-vnni" };
#define NLEVELS (int)(sizeof levels / sizeof levels[0])

/* Dequantized x and y; the reference's tolerance for summation order. */
static double
dot_bound(const float *xf, const float *yf, int n, double *exact)
{
	double e = 0, a = 0;
	for (int i = 0; i < n; i++) {
		e += (double)xf[i] * yf[i];
		a += fabs((double)xf[i] * yf[i]);
	}
	*exact = e;
	return 1e-5 * a + 1e-6;
}

/* One weight row of `ti` with n values: from the quantizer (mode 0) or from
 * random bytes with sane fp16 scales (mode 1; not for the activation-only
 * layouts whose sums must agree with their quants). */
static void
make_weights(const struct tinfo *ti, int n, int mode, void *buf, float scale)
{
	const struct quant_type *ref = quant_type_get_ref(ti->type);
	size_t rs = quant_row_size(ti->type, n);
	if (mode == 0 || ti->blck == 1 || ti->type == QT_Q8_1 || ti->type == QT_Q8_K) {
		float *f = malloc((size_t)n * sizeof *f);
		fill_normal(f, n, scale);
		ref->from_float(f, buf, n);
		free(f);
		return;
	}
	uint8_t *b = buf;
	for (size_t i = 0; i < rs; i++)
		b[i] = (uint8_t)rng_next();
	for (size_t blk = 0; blk < rs / ti->size; blk++) {
		for (int k = 0; k < ti->nf16; k++) {
			float v = (float)(rng_unit() * 0.1 + 1e-3);
			if (rng_next() & 1)
				v = -v;
			fp16_t h = fp32_to_fp16(v);
			memcpy(b + blk * ti->size + ti->f16off[k], &h, sizeof h);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Table and sizes                                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_table)
{
	for (int i = 0; i < NTYPES; i++) {
		const struct tinfo *ti = &types[i];
		const struct quant_type *t = quant_type_get(ti->type);
		const struct quant_type *r = quant_type_get_ref(ti->type);
		ck_assert_msg(t != NULL && r != NULL, "%s: missing", ti->name);
		ck_assert_msg(strcmp(t->name, ti->name) == 0, "%s: name %s", ti->name, t->name);
		ck_assert_msg(strcmp(quant_type_name(ti->type), ti->name) == 0, "%s: quant_type_name", ti->name);
		ck_assert_msg(t->blck == ti->blck, "%s: blck %d", ti->name, t->blck);
		ck_assert_msg(t->type_size == ti->size, "%s: type_size %zu", ti->name, t->type_size);
		ck_assert_msg((int)t->vec_dot_type == ti->vdt, "%s: vec_dot_type %d", ti->name, t->vec_dot_type);
		ck_assert_msg(t->to_float && t->from_float && t->vec_dot && t->vec_dot_ref,
		    "%s: null kernel", ti->name);
		ck_assert_msg(r->vec_dot == r->vec_dot_ref, "%s: ref table vec_dot", ti->name);
		ck_assert_msg(t->vec_dot_ref == r->vec_dot_ref, "%s: vec_dot_ref differs", ti->name);
		ck_assert_msg(quant_vec_dot_n(ti->type) != NULL, "%s: vec_dot_n", ti->name);
		ck_assert_msg(quant_row_size(ti->type, 11264) == (size_t)(11264 / ti->blck) * ti->size,
		    "%s: row size", ti->name);
		if (ti->blck > 1)
			ck_assert_msg(quant_row_size(ti->type, ti->blck + 1) == 0, "%s: partial block", ti->name);
	}
	const int bad[] = { -1, 4, 5, 16, 29, QT_COUNT, QT_Q8_G, 1000 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(quant_type_get(bad[i]) == NULL, "type %d should be unknown", bad[i]);
		ck_assert_msg(quant_row_size(bad[i], 256) == 0, "type %d row size", bad[i]);
	}
	ck_assert_str_eq(quant_type_name(QT_Q8_G), "Q8_G");
	const char *sn = quant_simd_name();
	ck_assert(strcmp(sn, "avx512-vnni") == 0 || strcmp(sn, "avx2") == 0 || strcmp(sn, "scalar") == 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* fp16 and bf16                                                       */
/* ------------------------------------------------------------------ */

static float
fbits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

START_TEST(test_fp16)
{
	static const struct { float f; uint16_t h; } cases[] = {
		{ 0.0f, 0x0000 }, { -0.0f, 0x8000 }, { 1.0f, 0x3c00 }, { -2.0f, 0xc000 },
		{ 0.5f, 0x3800 }, { 65504.0f, 0x7bff }, { 65519.0f, 0x7bff },
		{ 65520.0f, 0x7c00 },                   /* tie, to even: inf */
		{ 1e6f, 0x7c00 }, { -1e6f, 0xfc00 }, { INFINITY, 0x7c00 }, { -INFINITY, 0xfc00 },
		{ 0x1p-24f, 0x0001 }, { -0x1p-24f, 0x8001 },
		{ 0x1p-25f, 0x0000 },                   /* tie, to even: 0 */
		{ 0x1.000002p-25f, 0x0001 }, { 0x1.8p-24f, 0x0002 }, /* 1.5 ulp: tie to 2 */
		{ 0x1p-14f, 0x0400 }, { 0x1.ff8p-15f, 0x03ff }, /* largest subnormal */
		{ 0x1.ffcp-15f, 0x0400 },               /* tie, carries into the exponent */
		{ 1.0f + 0x1p-11f, 0x3c00 },            /* tie, to even */
		{ 1.0f + 3 * 0x1p-11f, 0x3c02 },        /* tie, to even */
		{ 1.0f + 0x1p-11f + 0x1p-20f, 0x3c01 }, /* above the tie */
		{ 0x1p-149f, 0x0000 }, { -0x1p-149f, 0x8000 }, { 0x1p-126f, 0x0000 },
		{ 3.140625f, 0x4248 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint16_t h = fp32_to_fp16(cases[i].f);
		ck_assert_msg(h == cases[i].h, "fp32_to_fp16 case %zu (%a): 0x%04x, want 0x%04x",
		    i, (double)cases[i].f, h, cases[i].h);
	}
	/* NaN in, quiet NaN out, sign kept */
	uint16_t hn = fp32_to_fp16(fbits(0x7f800001));
	ck_assert_msg((hn & 0x7c00) == 0x7c00 && (hn & 0x200), "sNaN -> 0x%04x", hn);
	hn = fp32_to_fp16(fbits(0xffc00000));
	ck_assert_msg((hn & 0xfc00) == 0xfc00 && (hn & 0x3ff), "-qNaN -> 0x%04x", hn);

	/* every half: exact value, and back again */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = fp16_to_fp32((fp16_t)h);
		uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
		double want;
		if (e == 0x1f) {
			ck_assert_msg(m ? isnan(f) : isinf(f), "fp16 0x%04x", h);
			if (!m)
				ck_assert(!!signbit(f) == !!(h & 0x8000));
			continue;
		}
		want = e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
		if (h & 0x8000)
			want = -want;
		ck_assert_msg((double)f == want && !!signbit(f) == !!(h & 0x8000),
		    "fp16_to_fp32(0x%04x) = %a, want %a", h, (double)f, want);
		ck_assert_msg(fp32_to_fp16(f) == h, "round trip 0x%04x", h);
	}
}
END_TEST

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t
hw_fp16(float f)
{
	return (uint16_t)_cvtss_sh(f, 0);
}

/* Random bit patterns against the F16C instruction, where present. */
START_TEST(test_fp16_vs_f16c)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2"))
		return;
	rng_seed(16);
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = (uint32_t)rng_next();
		if (i & 1)       /* concentrate on the fp16 range */
			u = (u & 0x80000000u) | (((u >> 23) % 40 + 98) << 23) | (u & 0x7fffff);
		float f = fbits(u);
		uint16_t a = fp32_to_fp16(f), b = hw_fp16(f);
		if (isnan(f))
			ck_assert_msg((a & 0x7c00) == 0x7c00 && (a & 0x3ff), "nan 0x%08x", u);
		else
			ck_assert_msg(a == b, "fp32_to_fp16(0x%08x) = 0x%04x, F16C 0x%04x", u, a, b);
	}
}
END_TEST
#endif

START_TEST(test_bf16)
{
	static const struct { uint32_t f; uint16_t h; } cases[] = {
		{ 0x00000000, 0x0000 }, { 0x80000000, 0x8000 }, { 0x3f800000, 0x3f80 },
		{ 0x3f808000, 0x3f80 },         /* tie, to even */
		{ 0x3f818000, 0x3f82 },         /* tie, to even */
		{ 0x3f808001, 0x3f81 },
		{ 0x7f800000, 0x7f80 }, { 0xff800000, 0xff80 },
		{ 0x7f7fffff, 0x7f80 },         /* rounds to inf */
		{ 0x00000001, 0x0000 },         /* subnormals kept, rounded */
		{ 0x00008000, 0x0000 }, { 0x00018000, 0x0002 }, { 0x00400000, 0x0040 },
		{ 0xc0400000, 0xc040 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint16_t h = fp32_to_bf16(fbits(cases[i].f));
		ck_assert_msg(h == cases[i].h, "fp32_to_bf16 case %zu: 0x%04x, want 0x%04x", i, h, cases[i].h);
	}
	uint16_t hn = fp32_to_bf16(fbits(0x7f800001));
	ck_assert_msg((hn & 0x7f80) == 0x7f80 && (hn & 0x40), "sNaN -> 0x%04x", hn);
	for (uint32_t h = 0; h < 65536; h++) {
		float f = bf16_to_fp32((bf16_t)h);
		uint32_t u;
		memcpy(&u, &f, sizeof u);
		ck_assert_msg(u == h << 16, "bf16_to_fp32(0x%04x)", h);
		if (!isnan(f))
			ck_assert_msg(fp32_to_bf16(f) == h, "bf16 round trip 0x%04x", h);
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* Blocks built by hand                                                */
/* ------------------------------------------------------------------ */

static void
put16(void *p, uint16_t v)
{
	memcpy(p, &v, sizeof v);
}

/* Dequantize one block of `type` and compare with want[0..n). */
static void
expect_block(int type, const void *blk, const float *want, int n)
{
	const struct quant_type *t = quant_type_get(type);
	float got[QK_K];
	t->to_float(blk, got, n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(got[i] == want[i], "%s hand block: value %d is %g, want %g",
		    t->name, i, (double)got[i], (double)want[i]);
}

START_TEST(test_handmade_32)
{
	float w[QK_K];

	/* Q4_0: d = 0.5; byte j = j | (15-j) << 4: w[j] = (j-8)/2, w[j+16] = (7-j)/2 */
	block_q4_0 a;
	put16(&a.d, 0x3800);
	for (int j = 0; j < 16; j++) {
		a.qs[j] = (uint8_t)(j | ((15 - j) << 4));
		w[j] = (j - 8) * 0.5f;
		w[j + 16] = (7 - j) * 0.5f;
	}
	expect_block(QT_Q4_0, &a, w, 32);

	/* Q4_1: d = 1, m = -2: w = q - 2 */
	block_q4_1 b;
	put16(&b.d, 0x3c00);
	put16(&b.m, 0xc000);
	for (int j = 0; j < 16; j++) {
		b.qs[j] = (uint8_t)(j | ((j ^ 15) << 4));
		w[j] = j - 2.0f;
		w[j + 16] = (15 - j) - 2.0f;
	}
	expect_block(QT_Q4_1, &b, w, 32);

	/* Q5_0: d = 1, fifth bits set for weights 0..15 only: w = q - 16 */
	block_q5_0 c;
	put16(&c.d, 0x3c00);
	const uint32_t qh = 0x0000ffff;
	memcpy(c.qh, &qh, 4);
	for (int j = 0; j < 16; j++) {
		c.qs[j] = (uint8_t)(j | (j << 4));
		w[j] = (float)j;          /* (j | 16) - 16 */
		w[j + 16] = j - 16.0f;
	}
	expect_block(QT_Q5_0, &c, w, 32);

	/* Q5_1: d = 0.5, m = 1, fifth bits of weights 0 and 31 */
	block_q5_1 e;
	put16(&e.d, 0x3800);
	put16(&e.m, 0x3c00);
	const uint32_t qh1 = 0x80000001;
	memcpy(e.qh, &qh1, 4);
	for (int j = 0; j < 16; j++) {
		e.qs[j] = 0x21;
		w[j] = 1 * 0.5f + 1;
		w[j + 16] = 2 * 0.5f + 1;
	}
	w[0] = 17 * 0.5f + 1;
	w[31] = 18 * 0.5f + 1;
	expect_block(QT_Q5_1, &e, w, 32);

	/* Q8_0: d = 2 */
	block_q8_0 f;
	put16(&f.d, 0x4000);
	for (int j = 0; j < 32; j++) {
		f.qs[j] = (int8_t)(j - 16);
		w[j] = 2.0f * (j - 16);
	}
	expect_block(QT_Q8_0, &f, w, 32);

	/* Q8_1: d = 0.25, s plays no part in the values */
	block_q8_1 g;
	put16(&g.d, 0x3400);
	put16(&g.s, 0x7bff);
	for (int j = 0; j < 32; j++) {
		g.qs[j] = (int8_t)-j;
		w[j] = -0.25f * j;
	}
	expect_block(QT_Q8_1, &g, w, 32);

	/* F16, BF16 */
	const uint16_t hv[] = { 0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x8000 };
	const float fv[] = { 1, -2, 0x1p-24f, 65504, INFINITY, -0.0f };
	expect_block(QT_F16, hv, fv, 6);
	const uint16_t bv[] = { 0x3f80, 0xc040, 0x4780 };
	const float fbv[] = { 1, -3, 65536 };
	expect_block(QT_BF16, bv, fbv, 3);
}
END_TEST

START_TEST(test_handmade_k)
{
	float w[QK_K];

	/* Q2_K: d = 1, dmin = 0.5; sub-block j has scale j and min 15-j; every
	 * qs byte 0xe4 so value 128k + 32s + l has quant s. */
	block_q2_K a;
	put16(&a.d, 0x3c00);
	put16(&a.dmin, 0x3800);
	for (int j = 0; j < 16; j++)
		a.scales[j] = (uint8_t)(j | ((15 - j) << 4));
	memset(a.qs, 0xe4, sizeof a.qs);
	for (int e = 0; e < QK_K; e++)
		w[e] = (float)(e / 16) * (float)((e % 128) / 32) - 0.5f * (float)(15 - e / 16);
	expect_block(QT_Q2_K, &a, w, QK_K);

	/* Q3_K: d = 1; scale of sub-block j = j - 8 (stored j + 24 in 6 bits);
	 * high bits set for values 0..127; quants s as for Q2_K. */
	block_q3_K b;
	put16(&b.d, 0x3c00);
	memset(b.scales, 0, sizeof b.scales);
	for (int j = 0; j < 16; j++) {
		int l = j + 24;
		if (j < 8)
			b.scales[j] = (uint8_t)(l & 0xf);
		else
			b.scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
		b.scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
	}
	memset(b.hmask, 0x0f, sizeof b.hmask);
	memset(b.qs, 0xe4, sizeof b.qs);
	for (int e = 0; e < QK_K; e++)
		w[e] = (float)(e / 16 - 8) * (float)((e % 128) / 32 - (e < 128 ? 0 : 4));
	expect_block(QT_Q3_K, &b, w, QK_K);

	/* Q4_K and Q5_K: d = 1, dmin = 0.25, sub-block j scale 10+7j, min 63-5j;
	 * byte l of each 32 = (l & 15) | (15 - (l & 15)) << 4. */
	block_q4_K c;
	block_q5_K d;
	uint8_t sc[8], mn[8];
	put16(&c.d, 0x3c00);
	put16(&c.dmin, 0x3400);
	memset(c.scales, 0, sizeof c.scales);
	for (int j = 0; j < 8; j++) {
		sc[j] = (uint8_t)(10 + 7 * j);
		mn[j] = (uint8_t)(63 - 5 * j);
		if (j < 4) {
			c.scales[j] |= sc[j];
			c.scales[j + 4] |= mn[j];
		} else {
			c.scales[j + 4] = (uint8_t)((sc[j] & 0xf) | ((mn[j] & 0xf) << 4));
			c.scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
			c.scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
		}
	}
	for (int i = 0; i < QK_K / 2; i++)
		c.qs[i] = (uint8_t)((i & 15) | ((15 - (i & 15)) << 4));
	for (int e = 0; e < QK_K; e++) {
		int sb = e / 32, l = e % 32;
		int q = sb % 2 == 0 ? (l & 15) : 15 - (l & 15);
		w[e] = (float)sc[sb] * q - 0.25f * mn[sb];
	}
	expect_block(QT_Q4_K, &c, w, QK_K);

	/* Q5_K: the same, fifth bits: qh[l] = 0x55 for even l, 0xa0 for odd */
	d.d = c.d;
	d.dmin = c.dmin;
	memcpy(d.scales, c.scales, sizeof d.scales);
	memcpy(d.qs, c.qs, sizeof d.qs);
	for (int l = 0; l < 32; l++)
		d.qh[l] = l % 2 ? 0xa0 : 0x55;
	for (int e = 0; e < QK_K; e++) {
		int sb = e / 32, l = e % 32;
		int q = sb % 2 == 0 ? (l & 15) : 15 - (l & 15);
		q += (d.qh[l] >> sb) & 1 ? 16 : 0;
		w[e] = (float)sc[sb] * q - 0.25f * mn[sb];
	}
	expect_block(QT_Q5_K, &d, w, QK_K);

	/* Q6_K: d = 0.5, scale j - 8; value e has unsigned quant (7e) % 64,
	 * placed by the layout rule: per 128, group g = (e%128)/32, l = e%32:
	 * g0 low nibble of ql[l], g1 low of ql[l+32], g2 high of ql[l], g3 high
	 * of ql[l+32]; qh[l] bits 2g..2g+1. */
	block_q6_K f;
	memset(&f, 0, sizeof f);
	put16(&f.d, 0x3800);
	for (int j = 0; j < 16; j++)
		f.scales[j] = (int8_t)(j - 8);
	for (int e = 0; e < QK_K; e++) {
		int q = (7 * e) % 64, h = e / 128, g = (e % 128) / 32, l = e % 32;
		uint8_t *ql = f.ql + 64 * h + l + (g % 2 ? 32 : 0);
		*ql |= (uint8_t)((q & 15) << (g >= 2 ? 4 : 0));
		f.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * g));
		w[e] = 0.5f * (float)(e / 16 - 8) * (float)(q - 32);
	}
	expect_block(QT_Q6_K, &f, w, QK_K);

	/* Q8_K: float d */
	block_q8_K g;
	memset(&g, 0, sizeof g);
	g.d = 0.5f;
	for (int e = 0; e < QK_K; e++) {
		g.qs[e] = (int8_t)(e - 128);
		w[e] = 0.5f * (e - 128);
	}
	expect_block(QT_Q8_K, &g, w, QK_K);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Activation quantizers: ggml's rounding, by hand                     */
/* ------------------------------------------------------------------ */

/* Every from_float for an activation type: the reference, the table's and
 * each SIMD level's. */
static int
activation_quantizers(int type, quant_from_float_fn *fn, const char **name)
{
	int k = 0;
	fn[k] = quant_type_get_ref(type)->from_float;
	name[k++] = "ref";
	fn[k] = quant_type_get(type)->from_float;
	name[k++] = "table";
	for (int l = 0; l < NLEVELS; l++) {
		quant_from_float_fn f = quant_simd_from_float_at(levels[l], type);
		if (f != NULL) {
			fn[k] = f;
			name[k++] = levels[l];
		}
	}
	return k;
}

START_TEST(test_q8_rounding)
{
	quant_from_float_fn fn[8];
	const char *nm[8];
	float x[QK_K];

	/* Q8_0 / Q8_1: amax 127 makes d = 1, so q = x rounded half to even,
	 * as llama.cpp's x86 quantizer rounds (see quant.c). */
	memset(x, 0, sizeof x);
	x[0] = 127;
	x[1] = 2.5f;
	x[2] = -2.5f;
	x[3] = 0.49999997f;
	x[4] = 126.5f;
	x[5] = -0.5f;
	for (int j = 6; j < 32; j++)
		x[j] = 0.4f;    /* float sum differs from the quant sum */
	int nq = activation_quantizers(QT_Q8_0, fn, nm);
	for (int k = 0; k < nq; k++) {
		block_q8_0 b;
		fn[k](x, &b, 32);
		ck_assert_msg(b.d == 0x3c00, "Q8_0 %s: d 0x%04x", nm[k], b.d);
		const int want[] = { 127, 2, -2, 0, 126, 0, 0 };
		for (int j = 0; j < 7; j++)
			ck_assert_msg(b.qs[j] == want[j], "Q8_0 %s: q[%d] = %d, want %d", nm[k], j, b.qs[j], want[j]);
	}
	nq = activation_quantizers(QT_Q8_1, fn, nm);
	for (int k = 0; k < nq; k++) {
		block_q8_1 b;
		fn[k](x, &b, 32);
		ck_assert_msg(b.d == 0x3c00, "Q8_1 %s: d", nm[k]);
		ck_assert_msg(b.qs[1] == 2 && b.qs[2] == -2 && b.qs[5] == 0, "Q8_1 %s: rounding", nm[k]);
		/* s = d * (127 + 2 - 2 + 0 + 126 + 0) = 253 from the quants */
		ck_assert_msg(b.s == fp32_to_fp16(253.0f), "Q8_1 %s: s = %g", nm[k], (double)fp16_to_fp32(b.s));
	}

	/* Q8_K: the first value of largest magnitude is -127, so iscale = 1 and
	 * q = nearest_int(x): ties to even.  The later +127 must not win. */
	memset(x, 0, sizeof x);
	x[0] = 1;
	x[3] = -127;
	x[4] = 2.5f;
	x[5] = 3.5f;
	x[6] = -2.5f;
	x[7] = 127;
	x[20] = 5;
	nq = activation_quantizers(QT_Q8_K, fn, nm);
	for (int k = 0; k < nq; k++) {
		block_q8_K b;
		fn[k](x, &b, QK_K);
		ck_assert_msg(b.d == 1.0f, "Q8_K %s: d %g", nm[k], (double)b.d);
		const int want[] = { 1, 0, 0, -127, 2, 4, -2, 127 };
		for (int j = 0; j < 8; j++)
			ck_assert_msg(b.qs[j] == want[j], "Q8_K %s: q[%d] = %d, want %d", nm[k], j, b.qs[j], want[j]);
		ck_assert_msg(b.bsums[0] == 1 - 127 + 2 + 4 - 2 + 127 && b.bsums[1] == 5,
		    "Q8_K %s: bsums %d %d", nm[k], b.bsums[0], b.bsums[1]);
		for (int j = 2; j < 16; j++)
			ck_assert_msg(b.bsums[j] == 0, "Q8_K %s: bsums[%d]", nm[k], j);
	}
	/* A positive max: iscale = -127/100 < 0, quants of the opposite sign,
	 * d = 1/iscale. */
	memset(x, 0, sizeof x);
	x[9] = 100;
	x[10] = -50;
	for (int k = 0; k < nq; k++) {
		block_q8_K b;
		fn[k](x, &b, QK_K);
		ck_assert_msg(b.d == 1 / (-127.f / 100), "Q8_K %s: d %g", nm[k], (double)b.d);
		ck_assert_msg(b.qs[9] == -127 && b.qs[10] == 64, "Q8_K %s: q %d %d", nm[k], b.qs[9], b.qs[10]);
	}
	/* All zero: d = 0, quants and sums 0. */
	memset(x, 0, sizeof x);
	for (int k = 0; k < nq; k++) {
		block_q8_K b;
		memset(&b, 0x5a, sizeof b);
		fn[k](x, &b, QK_K);
		block_q8_K z;
		memset(&z, 0, sizeof z);
		ck_assert_msg(memcmp(&b, &z, sizeof b) == 0, "Q8_K %s: zero block", nm[k]);
	}
}
END_TEST

/* The SIMD quantizers, byte for byte, on data meant to find differences:
 * random scales, exact .5 ties, tiny and huge values, signed zeros. */
START_TEST(test_q8_simd_exact)
{
	static const int act[] = { QT_Q8_0, QT_Q8_1, QT_Q8_K };
	const int n = 4096;
	float *x = malloc(n * sizeof *x);
	uint8_t *a = malloc(quant_row_size(QT_Q8_K, n) + 64);
	uint8_t *b = malloc(quant_row_size(QT_Q8_K, n) + 64);
	quant_from_float_fn fn[8];
	const char *nm[8];
	rng_seed(8);
	for (int rep = 0; rep < 300; rep++) {
		int mode = rep % 5;
		for (int i = 0; i < n; i++) {
			switch (mode) {
			case 0: x[i] = rng_normal() * (float)ldexp(1, (int)(rng_next() % 40) - 20); break;
			case 1: x[i] = (float)((int)(rng_next() % 255) - 127) + 0.5f; break;
			case 2: x[i] = (float)((int)(rng_next() % 255) - 127); break;
			case 3: x[i] = rng_normal() * 1e-38f; break;
			default: x[i] = (rng_next() & 1) ? -0.0f : rng_normal() * 3e4f; break;
			}
		}
		if (mode == 1 || mode == 2)     /* pin amax of each block to 127 */
			for (int i = 0; i < n; i += 32)
				x[i + (int)(rng_next() % 32)] = (rng_next() & 1) ? 127 : -127;
		for (size_t t = 0; t < sizeof act / sizeof act[0]; t++) {
			size_t rs = quant_row_size(act[t], n);
			int nq = activation_quantizers(act[t], fn, nm);
			fn[0](x, a, n);
			for (int k = 1; k < nq; k++) {
				memset(b, 0xa5, rs);
				fn[k](x, b, n);
				for (size_t i = 0; i < rs; i++)
					ck_assert_msg(a[i] == b[i], "%s %s: rep %d (mode %d) byte %zu: 0x%02x, ref 0x%02x",
					    quant_type_name(act[t]), nm[k], rep, mode, i, b[i], a[i]);
			}
		}
	}
	free(x);
	free(a);
	free(b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Round trips and the reference dot product                           */
/* ------------------------------------------------------------------ */

START_TEST(test_roundtrip)
{
	const int n = 8192;
	float *x = malloc(n * sizeof *x), *z = malloc(n * sizeof *z);
	void *q = malloc(quant_row_size(QT_F32, n));
	for (int i = 0; i < NTYPES; i++) {
		const struct tinfo *ti = &types[i];
		const struct quant_type *t = quant_type_get(ti->type);
		rng_seed(100 + (uint64_t)i);
		fill_normal(x, n, 0.7f);
		/* a block of zeros and a constant block must survive too */
		memset(x, 0, 256 * sizeof *x);
		for (int j = 256; j < 512; j++)
			x[j] = -0.25f;
		t->from_float(x, q, n);
		t->to_float(q, z, n);
		double se = 0, sx = 0;
		for (int j = 0; j < n; j++) {
			ck_assert_msg(isfinite(z[j]), "%s: value %d not finite", ti->name, j);
			se += ((double)x[j] - z[j]) * ((double)x[j] - z[j]);
			sx += (double)x[j] * x[j];
		}
		for (int j = 0; j < 256; j++)
			ck_assert_msg(z[j] == 0, "%s: zero block value %d = %g", ti->name, j, (double)z[j]);
		double rel = sqrt(se / sx);
		if (getenv("QUANT_VERBOSE"))
			fprintf(stderr, "%s round trip %.4g\n", ti->name, rel);
		ck_assert_msg(rel <= ti->rt_bound, "%s: round-trip relative RMS error %.4g > %.4g",
		    ti->name, rel, ti->rt_bound);
		ck_assert_msg(ti->rt_bound == 0 || rel > ti->rt_bound / 20,
		    "%s: round trip suspiciously exact (%.3g)", ti->name, rel);
	}
	free(x);
	free(z);
	free(q);
}
END_TEST

/*
 * vec_dot_ref equals the double-precision dot of the dequantized operands,
 * up to float rounding.  Q8_1's s is d*sum rounded to fp16, so the Q4_1 and
 * Q5_1 minimum terms may be off by |m*s| * 2^-11 per block on top.
 */
START_TEST(test_ref_vs_dequant)
{
	const int n = 4096;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
	float *xf = malloc(n * sizeof *xf), *yf = malloc(n * sizeof *yf);
	void *qx = malloc(quant_row_size(QT_F32, n)), *qy = malloc(quant_row_size(QT_F32, n));
	for (int i = 0; i < NTYPES; i++) {
		const struct tinfo *ti = &types[i];
		const struct quant_type *t = quant_type_get_ref(ti->type);
		const struct quant_type *v = quant_type_get_ref(ti->vdt);
		rng_seed(200 + (uint64_t)i);
		for (int rep = 0; rep < 8; rep++) {
			fill_normal(x, n, 0.05f);
			fill_normal(y, n, 2.0f);
			t->from_float(x, qx, n);
			v->from_float(y, qy, n);
			t->to_float(qx, xf, n);
			v->to_float(qy, yf, n);
			double exact, tol = dot_bound(xf, yf, n, &exact);
			if (ti->vdt == QT_Q8_1) {
				for (int b = 0; b < n / 32; b++) {
					fp16_t m, s;
					memcpy(&m, (const char *)qx + b * ti->size + 2, 2);
					memcpy(&s, (const char *)qy + b * sizeof(block_q8_1) + 2, 2);
					tol += fabs((double)fp16_to_fp32(m) * fp16_to_fp32(s)) * 0x1p-11;
				}
			}
			float got;
			t->vec_dot_ref(n, &got, qx, qy);
			ck_assert_msg(fabs(got - exact) <= tol, "%s rep %d: vec_dot_ref %.9g, dequantized dot %.9g (tol %.3g)",
			    ti->name, rep, (double)got, exact, tol);
		}
	}
	free(x);
	free(y);
	free(xf);
	free(yf);
	free(qx);
	free(qy);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SIMD against the reference                                          */
/* ------------------------------------------------------------------ */

static void
check_dot(const struct tinfo *ti, const char *what, quant_vec_dot_fn fn, int n, int rows)
{
	const struct quant_type *t = quant_type_get_ref(ti->type);
	const struct quant_type *v = quant_type_get_ref(ti->vdt);
	float *y = malloc((size_t)n * sizeof *y);
	float *xf = malloc((size_t)n * sizeof *xf), *yf = malloc((size_t)n * sizeof *yf);
	void *qx = malloc(quant_row_size(QT_F32, n)), *qy = malloc(quant_row_size(QT_F32, n));
	for (int r = 0; r < rows; r++) {
		make_weights(ti, n, r % 2, qx, 0.05f);
		fill_normal(y, n, (float)ldexp(1, (int)(rng_next() % 8) - 3));
		v->from_float(y, qy, n);
		t->to_float(qx, xf, n);
		v->to_float(qy, yf, n);
		double exact, tol = dot_bound(xf, yf, n, &exact);
		float ref, got;
		t->vec_dot_ref(n, &ref, qx, qy);
		fn(n, &got, qx, qy);
		ck_assert_msg(fabsf(got - ref) <= tol, "%s %s: n %d row %d (%s): simd %.9g ref %.9g (tol %.3g)",
		    ti->name, what, n, r, r % 2 ? "random bytes" : "quantized", (double)got, (double)ref, tol);
	}
	free(y);
	free(xf);
	free(yf);
	free(qx);
	free(qy);
}

static const int sizes[] = { 1, 7, 32, 33, 64, 256, 352, 512, 1000, 4096, 11008 };

START_TEST(test_simd_dot)
{
	int checked = 0;
	rng_seed(300);
	for (int l = -1; l < NLEVELS; l++) {
		for (int i = 0; i < NTYPES; i++) {
			const struct tinfo *ti = &types[i];
			quant_vec_dot_fn fn = l < 0 ? quant_type_get(ti->type)->vec_dot
			    : quant_simd_vec_dot_at(levels[l], ti->type);
			if (fn == NULL)
				continue;
			for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
				int n = sizes[k];
				if (n % ti->blck != 0)
					continue;
				check_dot(ti, l < 0 ? "table" : levels[l], fn, n, n >= 4096 ? 6 : 40);
				checked++;
			}
		}
	}
	ck_assert(checked > 0);
}
END_TEST

/* vec_dot_n: each row as vec_dot computes it. */
START_TEST(test_dot_n)
{
	const int n = 4096, nrc = 5;
	rng_seed(400);
	for (int i = 0; i < NTYPES; i++) {
		const struct tinfo *ti = &types[i];
		const struct quant_type *t = quant_type_get(ti->type);
		const struct quant_type *v = quant_type_get_ref(ti->vdt);
		size_t by = quant_row_size(ti->vdt, n) + 64;      /* a stride wider than a row */
		void *qx = malloc(quant_row_size(ti->type, n));
		char *qy = malloc(by * nrc);
		float *y = malloc(n * sizeof *y), *xf = malloc(n * sizeof *xf), *yf = malloc(n * sizeof *yf);
		float s[2 * nrc];
		for (int r = 0; r < nrc; r++) {
			fill_normal(y, n, 1.0f);
			v->from_float(y, qy + r * by, n);
		}
		for (int mode = 0; mode < 2; mode++)
		for (int lv = -1; lv < NLEVELS; lv++) {
			make_weights(ti, n, mode, qx, 0.05f);
			t->to_float(qx, xf, n);
			quant_vec_dot_n_fn dn = lv < 0 ? quant_vec_dot_n(ti->type)
			    : quant_simd_vec_dot_n_at(levels[lv], ti->type);
			if (dn == NULL)
				continue;
			for (int c = 1; c <= nrc; c++) {
				for (int r = 0; r < 2 * nrc; r++)
					s[r] = NAN;
				dn(n, s, 2, qx, qy, by, c);
				for (int r = 0; r < c; r++) {
					float one;
					double exact;
					t->vec_dot(n, &one, qx, qy + r * by);
					v->to_float(qy + r * by, yf, n);
					double tol = dot_bound(xf, yf, n, &exact);
					ck_assert_msg(fabsf(s[2 * r] - one) <= tol, "%s vec_dot_n %s (%s): nrc %d row %d: %.9g vs %.9g",
					    ti->name, lv < 0 ? "table" : levels[lv], mode ? "random bytes" : "quantized",
					    c, r, (double)s[2 * r], (double)one);
				}
				for (int r = 0; r < 2 * nrc; r++)
					if (r % 2 || r / 2 >= c)
						ck_assert_msg(isnan(s[r]), "%s vec_dot_n: wrote s[%d]", ti->name, r);
			}
		}
		free(qx);
		free(qy);
		free(y);
		free(xf);
		free(yf);
	}
}
END_TEST

/* The decode kernels that read a prepared activation row give vec_dot's
 * bits exactly, with the prepared row at any 64-byte-aligned place, for
 * lengths with and without a tail past the last group of eight blocks;
 * a type or CPU without one says so with size 0 and no kernel. */
START_TEST(test_dec_dot)
{
	int checked = 0;
	rng_seed(500);
	for (int i = 0; i < NTYPES; i++) {
		const struct tinfo *ti = &types[i];
		const struct quant_type *t = quant_type_get(ti->type);
		for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
			int n = sizes[k];
			if (n % ti->blck != 0)
				continue;
			size_t dsz = quant_dec_size(ti->type, n);
			if (dsz == 0) {
				if (n == 4096)
					ck_assert_ptr_null(quant_dec_dot(ti->type));
				continue;
			}
			quant_vec_dot_fn dot = quant_dec_dot(ti->type);
			ck_assert_ptr_nonnull(dot);
			const struct quant_type *v = quant_type_get_ref(ti->vdt);
			void *qx = malloc(quant_row_size(ti->type, n)), *qy = malloc(quant_row_size(ti->vdt, n));
			void *prep = aligned_alloc(64, (dsz + 63) / 64 * 64);
			float *y = malloc((size_t)n * sizeof *y);
			for (int r = 0; r < 8; r++) {
				make_weights(ti, n, r % 2, qx, 0.05f);
				fill_normal(y, n, (float)ldexp(1, (int)(rng_next() % 8) - 3));
				v->from_float(y, qy, n);
				quant_dec_prepare(ti->type, n, qy, prep);
				float a, b;
				t->vec_dot(n, &a, qx, qy);
				dot(n, &b, qx, prep);
				ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "%s n %d row %d: prepared %.9g, vec_dot %.9g",
				    ti->name, n, r, (double)b, (double)a);
				checked++;
			}
			free(qx);
			free(qy);
			free(prep);
			free(y);
		}
	}
	/* On a CPU with the kernel, Q4_0 must have been among those checked. */
	if (quant_dec_size(QT_Q4_0, 4096) > 0)
		ck_assert_int_ge(checked, 8);
}
END_TEST

/* extern: the Makefile finds suites by a line starting "Suite *". */
Suite *quant_suite(void);

Suite *
quant_suite(void)
{
	Suite *s = suite_create("quant");
	TCase *tc = tcase_create("quant");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_table);
	tcase_add_test(tc, test_fp16);
#if defined(__x86_64__) || defined(__i386__)
	tcase_add_test(tc, test_fp16_vs_f16c);
#endif
	tcase_add_test(tc, test_bf16);
	tcase_add_test(tc, test_handmade_32);
	tcase_add_test(tc, test_handmade_k);
	tcase_add_test(tc, test_q8_rounding);
	tcase_add_test(tc, test_q8_simd_exact);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_ref_vs_dequant);
	tcase_add_test(tc, test_simd_dot);
	tcase_add_test(tc, test_dot_n);
	tcase_add_test(tc, test_dec_dot);
	suite_add_tcase(s, tc);
	return s;
}
