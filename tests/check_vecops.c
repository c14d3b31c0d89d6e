/*
 * check_vecops.c: the forward pass's element-wise kernels.  Each family's
 * kernel must give its scalar reference's bits (the fidelity against
 * llama.cpp rests on them), over ordinary values, the edges of exp's range
 * where lanes fall back to the reference, and every special value.
 */
#include "tests/testutil.h"
#include "engine/cpu.h"
#include "engine/vecops.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t
next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static float
bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* Inputs: a sweep of -120..120 (past both ends of exp's fast range), small
 * values, random bit patterns (NaN, inf, subnormals among them), in odd
 * lengths so that every tail path runs. */
static size_t
inputs(float *g, float *u, size_t cap, uint32_t seed)
{
	size_t n = 0;
	for (float x = -120.0f; x <= 120.0f && n < cap; x += 0.0371f)
		g[n++] = x;
	for (int i = 0; i < 4000 && n < cap; i++)
		g[n++] = ((float)(next(&seed) % 20001) - 10000.0f) * 1e-3f;
	for (int i = 0; i < 4000 && n < cap; i++)
		g[n++] = bits_f(next(&seed));
	g[n++] = INFINITY;
	g[n++] = -INFINITY;
	g[n++] = NAN;
	g[n++] = 0.0f;
	g[n++] = -0.0f;
	for (size_t i = 0; i < n; i++)
		u[i] = ((float)(next(&seed) % 2001) - 1000.0f) * 1e-2f;
	return n;
}

START_TEST(test_swiglu_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa))
		return;
	int old = cpu_force(isa);
	enum { CAP = 16384 };
	float *g = malloc(CAP * sizeof *g), *u = malloc(CAP * sizeof *u);
	float *a = malloc(CAP * sizeof *a), *b = malloc(CAP * sizeof *b);
	size_t n = inputs(g, u, CAP - 8, 99);
	size_t lens[] = { n, n - 1, 15, 17, 7, 1 };
	for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
		for (size_t off = 0; off < 3; off++) {
			size_t m = lens[li] - (lens[li] > off ? off : 0);
			memcpy(a, g + off, m * sizeof *a);
			memcpy(b, g + off, m * sizeof *b);
			vec_swiglu(a, u + off, m);
			vec_swiglu_ref(b, u + off, m);
			for (size_t i = 0; i < m; i++) {
				uint32_t x, y;
				memcpy(&x, &a[i], 4);
				memcpy(&y, &b[i], 4);
				/* NaN payloads may differ; NaN-ness may not. */
				if (isnan(a[i]) && isnan(b[i]))
					continue;
				ck_assert_msg(x == y, "isa %s: swiglu(%a, %a) = %a, reference %a", cpu_isa_name(isa),
				    (double)g[off + i], (double)u[off + i], (double)a[i], (double)b[i]);
			}
		}
	}
	/* The reference is what forward.c computed before: exp by ldexpf. */
	ck_assert_float_eq(vec_expf_ggml(0.0f), 1.0f);
	ck_assert(vec_expf_ggml(-200.0f) == 0.0f);
	ck_assert(isinf(vec_expf_ggml(200.0f)));
	free(g); free(u); free(a); free(b);
	cpu_force((enum cpu_isa)old);
}
END_TEST

/* The mean of squares must be the sequential double sum's, to the bit, in
 * every family, whole or from parts: over random vectors at several scales
 * (squares that are subnormal, that overflow), in lengths with and
 * without a tail; and where the mean is exactly halfway between two
 * floats, which the unordered sum must not decide. */
START_TEST(test_mean_sq_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa))
		return;
	int old = cpu_force(isa);
	enum { CAP = 5632 };
	float *x = malloc(CAP * sizeof *x);
	const size_t lens[] = { 32, 33, 64, 100, 256, 2048, 4096, 5632 };
	const float scales[] = { 1.0f, 1e-3f, 1e3f, 1e-22f, 1e19f, 3e-39f };
	uint32_t seed = 7;
	int trials = 0, decided = 0;
	for (int t = 0; t < 6000; t++) {
		const size_t n = lens[t % 8];
		const float sc = scales[(t / 8) % 6];
		for (size_t i = 0; i < n; i++)
			x[i] = ((float)(next(&seed) % 200001) - 100000.0f) * 1e-5f * sc;
		const float a = vec_mean_sq(x, n), b = vec_mean_sq_ref(x, n);
		/* In three parts, as threads sum them. */
		const size_t h = n / 3 / 32 * 32, h2 = 2 * h;
		float m = 0.0f;
		const double ss = vec_sumsq(x, h) + vec_sumsq(x + h, h2 - h) + vec_sumsq(x + h2, n - h2);
		const int ok = vec_mean_sq_from(ss, n, &m);
		const float c = vec_mean_sq_sum(ss, x, n);
		trials++;
		decided += ok;
		if (isnan(a) && isnan(b))
			continue;
		ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "isa %s, n %zu, scale %g: %a, reference %a",
		    cpu_isa_name(isa), n, (double)sc, (double)a, (double)b);
		ck_assert_msg(memcmp(&c, &b, sizeof c) == 0, "isa %s, n %zu, scale %g, from parts: %a, reference %a",
		    cpu_isa_name(isa), n, (double)sc, (double)c, (double)b);
		if (ok)
			ck_assert_msg(memcmp(&m, &b, sizeof m) == 0, "isa %s, n %zu, scale %g, in parts: %a, reference %a",
			    cpu_isa_name(isa), n, (double)sc, (double)m, (double)b);
	}
	/* The unordered sum decides nearly every case (all but the scale
	 * whose squares are all zero, and those that overflow). */
	ck_assert_msg(decided > trials * 3 / 5, "decided %d of %d", decided, trials);
	/* 63 ones and (1 + 2^-19)^2, which rounds to 1 + 2^-18: the sum is
	 * exactly 64 + 2^-18, the mean 1 + 2^-24, halfway between 1 and the
	 * next float; the sequential sum gives 1 (to even). */
	for (size_t i = 0; i < 64; i++)
		x[i] = 1.0f;
	x[37] = 1.0f + 0x1p-19f;
	float m = 0.0f;
	ck_assert_int_eq(vec_mean_sq_from(vec_sumsq(x, 64), 64, &m), 0);
	ck_assert(vec_mean_sq(x, 64) == 1.0f);
	ck_assert(vec_mean_sq_ref(x, 64) == 1.0f);
	x[5] = INFINITY;
	ck_assert(isinf(vec_mean_sq(x, 64)));
	free(x);
	cpu_force((enum cpu_isa)old);
}
END_TEST

START_TEST(test_to_f16_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa))
		return;
	int old = cpu_force(isa);
	enum { N = 1 << 16 };
	float *x = malloc(N * sizeof *x);
	fp16_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
	uint32_t seed = 3;
	for (int i = 0; i < N; i++)
		x[i] = bits_f(next(&seed));
	/* The rounding edges: every value near the fp16 normal, subnormal and
	 * overflow limits. */
	for (int i = 0; i < 4096; i++) {
		x[i] = bits_f(0x477fe000u - 2048 + (uint32_t)i);     /* ~65504..65520 */
		x[4096 + i] = bits_f(0x38800000u - 2048 + (uint32_t)i);   /* 2^-14 */
		x[8192 + i] = bits_f(0x33000000u - 2048 + (uint32_t)i);   /* 2^-25 */
	}
	for (size_t m = N; m > N - 9; m--) {
		vec_to_f16(a, x, m);
		vec_to_f16_ref(b, x, m);
		size_t i = 0;
		while (i < m && a[i] == b[i])
			i++;
		ck_assert_msg(i == m, "isa %s: fp16 of %08x is %04x, reference %04x", cpu_isa_name(isa),
		    ((const uint32_t *)(const void *)x)[i], a[i], b[i]);
	}
	free(x); free(a); free(b);
	cpu_force((enum cpu_isa)old);
}
END_TEST

/* RoPE from the table rotates as the angle formula does: position 0 is the
 * identity, and a rotation keeps each pair's length. */
START_TEST(test_rope_table)
{
	float cs[128], v[2 * 64], w[2 * 64];
	vec_rope_table(cs, 64, 0, 0.9f, NULL);
	for (int i = 0; i < 128; i++)
		v[i] = w[i] = (float)(i % 7) - 3.0f;
	vec_rope(v, 2, 64, 64, cs);
	ck_assert(memcmp(v, w, sizeof v) == 0);
	vec_rope_table(cs, 64, 37, 0.9f, NULL);
	vec_rope(v, 2, 64, 64, cs);
	for (int i = 0; i < 64; i++) {
		float a = hypotf(v[2 * i], v[2 * i + 1]), b = hypotf(w[2 * i], w[2 * i + 1]);
		ck_assert_float_eq_tol(a, b, 1e-5f * (1 + b));
	}
	ck_assert_float_eq(cs[0], cosf(37.0f));
	ck_assert_float_eq(cs[1], sinf(37.0f));
}
END_TEST

Suite *vecops_suite(void);

Suite *
vecops_suite(void)
{
	Suite *s = suite_create("vecops");
	TCase *tc = tcase_create("kernels");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_swiglu_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_loop_test(tc, test_to_f16_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_loop_test(tc, test_mean_sq_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_test(tc, test_rope_table);
	suite_add_tcase(s, tc);
	return s;
}
