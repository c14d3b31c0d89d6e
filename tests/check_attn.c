/*
 * check_attn.c: the float16 attention kernels.  The vector version must give
 * the scalar version's bits exactly (it is what keeps us on llama.cpp's
 * numbers), for every head size, query count and causal length mix.
 */
#include "tests/testutil.h"
#include "engine/attn.h"
#include "engine/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float
frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return ((float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f) * 4.0f;
}

START_TEST(test_multi_equals_ref)
{
	int hds[] = { 8, 64, 96, 128, 256 };
	unsigned seed = 7;
	for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
		int hd = hds[hi], npos = 300;
		size_t stride = (size_t)hd * 2;
		fp16_t *k = malloc((size_t)npos * stride * sizeof *k), *v = malloc((size_t)npos * stride * sizeof *v);
		for (size_t i = 0; i < (size_t)npos * stride; i++) {
			k[i] = fp32_to_fp16(frand(&seed));
			v[i] = fp32_to_fp16(frand(&seed));
		}
		for (int nq = 1; nq <= 9; nq += 4) {
			float qs[9][256], os[9][256], ref[256];
			float *o[9];
			const float *q[9];
			int n[9];
			for (int h = 0; h < nq; h++) {
				for (int i = 0; i < hd; i++)
					qs[h][i] = frand(&seed);
				o[h] = os[h];
				q[h] = qs[h];
				n[h] = npos - 37 * h;       /* causal: later queries see less */
			}
			attn_multi_f16(nq, o, q, n, k, v, stride, hd, 0.125f, 1);
			for (int h = 0; h < nq; h++) {
				attn_head_f16_ref(ref, q[h], k, v, stride, n[h], hd, 0.125f);
				ck_assert_msg(memcmp(ref, os[h], (size_t)hd * sizeof(float)) == 0,
				    "hd %d, nq %d, query %d: vector and scalar attention differ", hd, nq, h);
			}
		}
		free(k);
		free(v);
	}
}
END_TEST

/* Past ATTN_EXACT_MAX positions the tiled path agrees with attention in
 * double far better than the exact order's f16 accumulator does. */
START_TEST(test_long_close_to_ref)
{
	unsigned seed = 11;
	int hd = 64, npos = 1500;
	size_t stride = 128;
	fp16_t *k = malloc((size_t)npos * stride * sizeof *k), *v = malloc((size_t)npos * stride * sizeof *v);
	for (size_t i = 0; i < (size_t)npos * stride; i++) {
		k[i] = fp32_to_fp16(frand(&seed));
		v[i] = fp32_to_fp16(frand(&seed));
	}
	int lens[] = { 257, 600, 1500 };
	for (size_t li = 0; li < 3; li++) {
		float q[64], out[64], ref[64];
		for (int i = 0; i < hd; i++)
			q[i] = frand(&seed);
		float *o[1] = { out };
		const float *qq[1] = { q };
		int n[1] = { lens[li] };
		attn_multi_f16(1, o, qq, n, k, v, stride, hd, 0.125f, 0);
		attn_head_f16_ref(ref, q, k, v, stride, n[0], hd, 0.125f);
		/* Against attention in double on the same f16 values: the two-pass
		 * float sum must be far closer than the f16 accumulator's error. */
		double *sc = malloc((size_t)n[0] * sizeof *sc), mx = -1e300, sum = 0, exact[64] = { 0 };
		for (int j = 0; j < n[0]; j++) {
			double d = 0;
			for (int i = 0; i < hd; i++)
				d += (double)fp16_to_fp32(fp32_to_fp16(q[i])) * fp16_to_fp32(k[(size_t)j * stride + i]);
			sc[j] = d * 0.125;
			mx = fmax(mx, sc[j]);
		}
		for (int j = 0; j < n[0]; j++) {
			double p = exp(sc[j] - mx);
			sum += p;
			for (int i = 0; i < hd; i++)
				exact[i] += p * fp16_to_fp32(v[(size_t)j * stride + i]);
		}
		double e_two = 0, e_ref = 0, mag = 0;
		for (int i = 0; i < hd; i++) {
			exact[i] /= sum;
			e_two = fmax(e_two, fabs(out[i] - exact[i]));
			e_ref = fmax(e_ref, fabs(ref[i] - exact[i]));
			mag = fmax(mag, fabs(exact[i]));
		}
		free(sc);
		ck_assert_msg(e_two <= 1e-4 * fmax(mag, 1e-3), "n %d: tiled off by %g (max %g)", n[0], e_two, mag);
		ck_assert_msg(e_ref <= 3e-2 * fmax(mag, 1e-3), "n %d: exact order off by %g (max %g)", n[0], e_ref, mag);
	}
	free(k);
	free(v);
}
END_TEST

/* The tiled kernel of every family this CPU runs gives its scalar
 * reference's bits, for block-aligned and ragged lengths, several head
 * sizes, and whatever other queries share the call (so a token decoded
 * alone matches the same token inside a prompt batch). */
START_TEST(test_flash_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa))
		return;
	int old = cpu_force(isa);
	int hds[] = { 16, 64, 128, 256 };
	unsigned seed = 23;
	for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
		int hd = hds[hi], npos = 700;
		size_t stride = (size_t)hd * 2;
		fp16_t *k = malloc((size_t)npos * stride * sizeof *k), *v = malloc((size_t)npos * stride * sizeof *v);
		for (size_t i = 0; i < (size_t)npos * stride; i++) {
			k[i] = fp32_to_fp16(frand(&seed));
			v[i] = fp32_to_fp16(frand(&seed));
		}
		enum { NQ = 11 };
		static float qs[NQ][256], os[NQ][256], alone[256], ref[256];
		float *o[NQ];
		const float *q[NQ];
		int n[NQ];
		for (int h = 0; h < NQ; h++) {
			for (int i = 0; i < hd; i++)
				qs[h][i] = frand(&seed) * (h == 3 ? 8.0f : 1.0f);   /* one peaked softmax */
			o[h] = os[h];
			q[h] = qs[h];
			n[h] = h == 0 ? 1 : h == 1 ? 16 : h == 2 ? 17 : npos - 41 * h;
		}
		attn_flash_f16(NQ, o, q, n, k, v, stride, hd, 0.125f);
		for (int h = 0; h < NQ; h++) {
			attn_flash_f16_ref(ref, q[h], k, v, stride, n[h], hd, 0.125f);
			ck_assert_msg(memcmp(ref, os[h], (size_t)hd * sizeof(float)) == 0,
			    "isa %s, hd %d, query %d (n %d): tiled kernel and its reference differ", cpu_isa_name(isa), hd, h,
			    n[h]);
			float *oa[1] = { alone };
			attn_flash_f16(1, oa, &q[h], &n[h], k, v, stride, hd, 0.125f);
			ck_assert_msg(memcmp(alone, os[h], (size_t)hd * sizeof(float)) == 0,
			    "isa %s, hd %d, query %d: alone and in a batch differ", cpu_isa_name(isa), hd, h);
		}
		free(k);
		free(v);
	}
	cpu_force((enum cpu_isa)old);
}
END_TEST

/* The q8_0 cache: the vector kernel gives its scalar reference's bits,
 * alone or in a batch, and lands within the cache's own rounding of
 * attention over the same values in float16. */
START_TEST(test_flash_q8_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa))
		return;
	int old = cpu_force(isa);
	int hds[] = { 32, 64, 128, 256 };
	unsigned seed = 31;
	for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
		int hd = hds[hi], npos = 300, nb = hd / QK8_0;
		size_t stride = (size_t)nb * 2;       /* two heads a position */
		block_q8_0 *k = malloc((size_t)npos * stride * sizeof *k), *v = malloc((size_t)npos * stride * sizeof *v);
		fp16_t *kh = malloc((size_t)npos * hd * sizeof *kh), *vh = malloc((size_t)npos * hd * sizeof *vh);
		for (int j = 0; j < npos; j++)
			for (int b = 0; b < nb; b++) {
				float kx[QK8_0], vx[QK8_0];
				for (int i = 0; i < QK8_0; i++) {
					kx[i] = frand(&seed);
					vx[i] = frand(&seed);
				}
				quant_type_get(QT_Q8_0)->from_float(kx, &k[(size_t)j * stride + b], QK8_0);
				quant_type_get(QT_Q8_0)->from_float(vx, &v[(size_t)j * stride + b], QK8_0);
				for (int i = 0; i < QK8_0; i++) {
					const block_q8_0 *kb = &k[(size_t)j * stride + b], *vb = &v[(size_t)j * stride + b];
					kh[(size_t)j * hd + b * QK8_0 + i] = fp32_to_fp16(kb->qs[i] * fp16_to_fp32(kb->d));
					vh[(size_t)j * hd + b * QK8_0 + i] = fp32_to_fp16(vb->qs[i] * fp16_to_fp32(vb->d));
				}
			}
		enum { NQ = 9 };
		static float qs[NQ][256], os[NQ][256], alone[256], ref[256], h16[256];
		float *o[NQ];
		const float *q[NQ];
		int n[NQ];
		for (int h = 0; h < NQ; h++) {
			for (int i = 0; i < hd; i++)
				qs[h][i] = frand(&seed) * 0.5f;
			o[h] = os[h];
			q[h] = qs[h];
			n[h] = h == 0 ? 1 : h == 1 ? 17 : npos - 29 * h;
		}
		attn_flash_q8(NQ, o, q, n, k, v, stride, hd, 0.125f);
		for (int h = 0; h < NQ; h++) {
			attn_flash_q8_ref(ref, q[h], k, v, stride, n[h], hd, 0.125f);
			ck_assert_msg(memcmp(ref, os[h], (size_t)hd * sizeof(float)) == 0,
			    "isa %s, hd %d, query %d: q8 kernel and its reference differ", cpu_isa_name(isa), hd, h);
			float *oa[1] = { alone };
			attn_flash_q8(1, oa, &q[h], &n[h], k, v, stride, hd, 0.125f);
			ck_assert(memcmp(alone, os[h], (size_t)hd * sizeof(float)) == 0);
			/* The dequantized values in float16 (exact up to f16
			 * rounding of q * d): the same attention to ~1e-3. */
			attn_flash_f16_ref(h16, q[h], kh, vh, (size_t)hd, n[h], hd, 0.125f);
			for (int i = 0; i < hd; i++)
				ck_assert_msg(fabsf(h16[i] - os[h][i]) <= 2e-3f, "hd %d query %d: %g vs %g", hd, h, os[h][i], h16[i]);
		}
		free(k);
		free(v);
		free(kh);
		free(vh);
	}
	cpu_force((enum cpu_isa)old);
}
END_TEST

/* Every kernel family this CPU runs, forced in turn (as LLAMA2_CHAT_ISA
 * would), gives the reference's bits up to ATTN_EXACT_MAX positions. */
START_TEST(test_each_isa_equals_ref)
{
	enum cpu_isa isa = (enum cpu_isa)_i;
	if (!cpu_has(isa)) {
		fprintf(stderr, "check_attn: %s not on this CPU, skipped\n", cpu_isa_name(isa));
		return;
	}
	int old = cpu_force(isa);
	ck_assert_int_ge(old, 0);
	ck_assert_int_eq(cpu_isa(), isa);
	unsigned seed = 5;
	int hd = 128, npos = 200;
	size_t stride = 256;
	fp16_t *k = malloc((size_t)npos * stride * sizeof *k), *v = malloc((size_t)npos * stride * sizeof *v);
	for (size_t i = 0; i < (size_t)npos * stride; i++) {
		k[i] = fp32_to_fp16(frand(&seed));
		v[i] = fp32_to_fp16(frand(&seed));
	}
	float qs[6][128], os[6][128], ref[128];
	float *o[6];
	const float *q[6];
	int n[6];
	for (int h = 0; h < 6; h++) {
		for (int i = 0; i < hd; i++)
			qs[h][i] = frand(&seed);
		o[h] = os[h];
		q[h] = qs[h];
		n[h] = npos - 30 * h;
	}
	attn_multi_f16(6, o, q, n, k, v, stride, hd, 0.1f, 1);
	cpu_force((enum cpu_isa)old);
	for (int h = 0; h < 6; h++) {
		attn_head_f16_ref(ref, q[h], k, v, stride, n[h], hd, 0.1f);
		ck_assert_msg(memcmp(ref, os[h], sizeof ref) == 0, "isa %s, query %d: differs from the reference",
		    cpu_isa_name(isa), h);
	}
	free(k);
	free(v);
}
END_TEST

/* A family the CPU lacks, or an unknown name, is refused by engine_open
 * with one line naming the variable (run through the binary, whose
 * environment is its own). */
START_TEST(test_isa_env_refused)
{
	char *path = fixture_path("models/fixture-q4_0.gguf");
	ck_assert_ptr_nonnull(path);
	const char *argv[] = { "llama2-chat", "bench", "-m", path, "-p", "4", "-n", "2", "-r", "1", "--json", NULL };
	const char *bad[] = { "LLAMA2_CHAT_ISA=avx9", NULL };
	char *out = NULL, *err = NULL;
	int rc = run_binary(argv, NULL, &out, &err, bad, 60);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(err, "LLAMA2_CHAT_ISA=avx9") != NULL, "stderr: %s", err);
	free(out);
	free(err);
	const char *sc[] = { "LLAMA2_CHAT_ISA=scalar", NULL };
	rc = run_binary(argv, NULL, &out, &err, sc, 60);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "\"isa\": \"scalar\"") != NULL, "stdout: %s", out);
	free(out);
	free(err);
	free(path);
}
END_TEST

Suite *attn_suite(void);

Suite *
attn_suite(void)
{
	Suite *s = suite_create("attn");
	TCase *tc = tcase_create("f16");
	tcase_add_test(tc, test_multi_equals_ref);
	tcase_add_test(tc, test_long_close_to_ref);
	tcase_add_loop_test(tc, test_each_isa_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_loop_test(tc, test_flash_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_loop_test(tc, test_flash_q8_equals_ref, CPU_SCALAR, CPU_NISA);
	tcase_add_fixture_test(tc, test_isa_env_refused);
	suite_add_tcase(s, tc);
	return s;
}
