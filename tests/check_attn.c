/*
 * check_attn.c: the float16 attention kernels.  The vector version must give
 * the scalar version's bits exactly (it is what keeps us on llama.cpp's
 * numbers), for every head size, query count and causal length mix.
 */
#include "tests/testutil.h"
#include "engine/attn.h"

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
			attn_multi_f16(nq, o, q, n, k, v, stride, hd, 0.125f);
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

Suite *attn_suite(void);

Suite *
attn_suite(void)
{
	Suite *s = suite_create("attn");
	TCase *tc = tcase_create("f16");
	tcase_add_test(tc, test_multi_equals_ref);
	suite_add_tcase(s, tc);
	return s;
}
