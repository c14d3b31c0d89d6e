/*
 * check_perplexity.c: the perplexity command against llama.cpp's
 * llama-perplexity b4748 (skipped, and counted, where it cannot run):
 *   - the final estimate on fixture-f32/f16 within 0.5% of the peer's, on
 *     fixture-q4_k_m within 1%, on a text the test writes (six chunks at
 *     -c 128), and the same number of chunks and the running-line form;
 *   - --save-logits then --kl-divergence: a model against itself has a
 *     KL divergence near zero and 100% top-token agreement; a quantized
 *     one a positive divergence;
 *   - bad input, one line each and a non-zero status: a text shorter than
 *     two chunks, a context larger than the model's, an unreadable text, a
 *     logits file from another text or from a model with another vocabulary.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testutil.h"

static char *
pp_join(const char *dir, const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* A text long enough for several chunks at -c 128; `seed` varies it. */
static char *
pp_write_text(const char *dir, const char *name, uint32_t seed, int words_n)
{
	static const char *const words[] = {
		"the", "a", "little", "cat", "dog", "sat", "on", "mat", "and", "ran", "to",
		"house", "tree", "big", "small", "red", "blue", "happy", "sad", "day", "night",
		"sun", "moon", "went", "saw", "played", "with", "friend", "girl", "boy",
	};
	char *path = pp_join(dir, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	uint32_t s = seed;
	for (int i = 0; i < words_n; i++) {
		s = s * 1103515245u + 12345u;
		fprintf(f, "%s%s", words[(s >> 16) % 30], (s >> 8) % 9 == 0 ? ". " : " ");
	}
	fclose(f);
	return path;
}

static double
pp_final(const char *out, const char *who)
{
	const char *p = strstr(out, "Final estimate: PPL = ");
	ck_assert_msg(p != NULL, "%s printed no final estimate", who);
	return atof(p + strlen("Final estimate: PPL = "));
}

static double
pp_peer(const char *peer, const char *model, const char *text)
{
	const char *argv[] = { peer, "-m", model, "-f", text, "-c", "128", "-b", "128", "--chunks", "6",
		"-t", "2", NULL };
	char *out = NULL, *err = NULL;
	int rc = run_program(argv, &out, &err);
	ck_assert_msg(rc == 0, "llama-perplexity exit %d: %.300s", rc, err);
	double v = strstr(out, "Final estimate") ? pp_final(out, "llama-perplexity") : pp_final(err, "llama-perplexity");
	free(out);
	free(err);
	return v;
}

static int
pp_ours(const char *const *args, char **out, char **err)
{
	const char *argv[32] = { "llama2-chat", "perplexity" };
	int n = 2;
	for (int i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return run_binary(argv, NULL, out, err, NULL, 120);
}

START_TEST(test_perplexity_matches_peer)
{
	static const struct { const char *model; double tol; } cases[] = {
		{ "models/fixture-f32.gguf", 0.005 },
		{ "models/fixture-f16.gguf", 0.005 },
		{ "models/fixture-q4_k_m.gguf", 0.01 },
		{ "models/fixture-q8_0.gguf", 0.01 },
	};
	char *peer = peer_program("llama-perplexity");
	ck_assert_ptr_nonnull(peer);
	char *dir = tmpdir_new();
	char *text = pp_write_text(dir, "text.txt", 12345, 2500);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char *model = fixture_path(cases[c].model);
		ck_assert_ptr_nonnull(model);
		const double theirs = pp_peer(peer, model, text);
		const char *args[] = { "-m", model, "-f", text, "-c", "128", "--chunks", "6", "-t", "2", NULL };
		char *out = NULL, *err = NULL;
		int rc = pp_ours(args, &out, &err);
		ck_assert_msg(rc == 0, "[%zu] exit %d: %s", c, rc, err);
		const double ours = pp_final(out, "llama2-chat");
		ck_assert_msg(fabs(ours - theirs) <= cases[c].tol * theirs, "[%zu] %s: ours %.4f, llama-perplexity %.4f",
		    c, cases[c].model, ours, theirs);
		ck_assert_msg(strstr(out, "[1]") == out && strstr(out, "[6]") != NULL && strstr(out, "[7]") == NULL,
		    "[%zu] running line: %s", c, out);
		ck_assert_msg(strstr(out, "+/- ") != NULL && strstr(out, "Mean NLL = ") != NULL, "[%zu] %s", c, out);
		free(out);
		free(err);
		free(model);
	}
	free(text);
	tmpdir_remove(dir);
	free(peer);
}
END_TEST

static double
pp_field(const char *out, const char *label)
{
	const char *p = strstr(out, label);
	ck_assert_msg(p != NULL, "no '%s' in: %s", label, out);
	return atof(p + strlen(label));
}

START_TEST(test_perplexity_kl_divergence)
{
	char *f32 = fixture_path("models/fixture-f32.gguf"), *q4 = fixture_path("models/fixture-q4_k_m.gguf");
	char *dir = tmpdir_new();
	char *text = pp_write_text(dir, "text.txt", 777, 1500);
	char *logits = pp_join(dir, "base.logits");
	char *out = NULL, *err = NULL;
	const char *save[] = { "-m", f32, "-f", text, "-c", "128", "--save-logits", logits, NULL };
	ck_assert_int_eq(pp_ours(save, &out, &err), 0);
	const double base_ppl = pp_final(out, "the reference run");
	free(out);
	free(err);
	struct stat st;
	ck_assert_int_eq(stat(logits, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	const char *self[] = { "-m", f32, "--kl-divergence", "--logits-base", logits, NULL };
	ck_assert_int_eq(pp_ours(self, &out, &err), 0);
	ck_assert_msg(pp_field(out, "Mean    KLD:") < 1e-3, "%s", out);
	/* The base file keeps each position's log-probabilities in 16 bits,
	 * as llama.cpp's does, so a top pair closer than that step can swap
	 * even against the same model (1 of 1,640 positions here since
	 * ATTN_EXACT_MAX went to 64); a real change of model moves far more. */
	ck_assert_msg(pp_field(out, "Same top p:") >= 99.5, "%s", out);
	ck_assert_msg(fabs(pp_field(out, "Mean PPL(base)                :") - base_ppl) <= 1e-3 * base_ppl, "%s", out);
	free(out);
	free(err);

	const char *q[] = { "-m", q4, "-f", text, "--kl-divergence", "--logits-base", logits, NULL };
	ck_assert_int_eq(pp_ours(q, &out, &err), 0);
	const double kld = pp_field(out, "Mean    KLD:");
	const double same = pp_field(out, "Same top p:");
	ck_assert_msg(kld > 1e-3 && same < 100.0 && same > 10.0, "KLD %g, same top %g: %s", kld, same, out);
	ck_assert_msg(strstr(out, "RMS Δp") != NULL && strstr(out, "99.0%   KLD") != NULL, "%s", out);
	free(out);
	free(err);

	/* Another text: the tokens differ. */
	char *other = pp_write_text(dir, "other.txt", 4242, 1500);
	const char *bad[] = { "-m", q4, "-f", other, "--kl-divergence", "--logits-base", logits, NULL };
	ck_assert_int_eq(pp_ours(bad, &out, &err), 1);
	ck_assert_msg(strstr(err, "another text") != NULL, "%s", err);
	free(out);
	free(err);
	/* Not a logits file. */
	const char *bad2[] = { "-m", q4, "--kl-divergence", "--logits-base", text, NULL };
	ck_assert_int_eq(pp_ours(bad2, &out, &err), 1);
	ck_assert_msg(strstr(err, "not a logits file") != NULL, "%s", err);
	free(out);
	free(err);
	/* A model with another vocabulary. */
	char *tiny = fixture_path("models/llama-2-tiny-random.gguf");
	if (tiny != NULL) {
		const char *bad3[] = { "-m", tiny, "--kl-divergence", "--logits-base", logits, NULL };
		int rc = pp_ours(bad3, &out, &err);
		ck_assert_msg(rc == 1 && strchr(err, '\n') == err + strlen(err) - 1, "exit %d: %s", rc, err);
		free(out);
		free(err);
		free(tiny);
	}
	free(other);
	free(logits);
	free(text);
	tmpdir_remove(dir);
	free(f32);
	free(q4);
}
END_TEST

START_TEST(test_perplexity_bad_input)
{
	char *model = fixture_path("models/fixture-f32.gguf");
	char *dir = tmpdir_new();
	char *shorter = pp_write_text(dir, "short.txt", 1, 30);
	char *out = NULL, *err = NULL;

	const char *a1[] = { "-m", model, "-f", shorter, "-c", "128", NULL };
	ck_assert_int_eq(pp_ours(a1, &out, &err), 1);
	ck_assert_msg(strstr(err, "short.txt") && strstr(err, "at least 256"), "%s", err);
	free(out);
	free(err);

	const char *a2[] = { "-m", model, "-f", shorter, "-c", "100000", NULL };
	ck_assert_int_eq(pp_ours(a2, &out, &err), 1);
	ck_assert_msg(strstr(err, "--ctx-size 100000") && strstr(err, "model's context"), "%s", err);
	free(out);
	free(err);

	const char *a3[] = { "-m", model, "-f", "/nonexistent/text.txt", NULL };
	ck_assert_int_eq(pp_ours(a3, &out, &err), 1);
	ck_assert_msg(strstr(err, "/nonexistent/text.txt") != NULL, "%s", err);
	free(out);
	free(err);

	const char *a4[] = { "-m", model, NULL };
	ck_assert_int_eq(pp_ours(a4, &out, &err), 2);
	free(out);
	free(err);
	const char *a5[] = { "-m", model, "-f", shorter, "-c", "zero", NULL };
	ck_assert_int_eq(pp_ours(a5, &out, &err), 2);
	ck_assert_msg(strstr(err, "--ctx-size") != NULL, "%s", err);
	free(out);
	free(err);
	const char *a6[] = { "--help", NULL };
	ck_assert_int_eq(pp_ours(a6, &out, &err), 0);
	ck_assert_msg(strstr(out, "usage: llama2-chat perplexity") && strstr(out, "--kl-divergence"), "%s", out);
	free(out);
	free(err);

	free(shorter);
	tmpdir_remove(dir);
	free(model);
}
END_TEST

/* The batch size changes how the chunk is cut into forward passes, not the
 * numbers; --chunks caps the count. */
START_TEST(test_perplexity_batches)
{
	char *model = fixture_path("models/fixture-f32.gguf");
	char *dir = tmpdir_new();
	char *text = pp_write_text(dir, "text.txt", 99, 1500);
	char *out = NULL, *err = NULL;
	const char *a[] = { "-m", model, "-f", text, "-c", "128", "--chunks", "3", NULL };
	ck_assert_int_eq(pp_ours(a, &out, &err), 0);
	const double one = pp_final(out, "-b 128");
	ck_assert_msg(strstr(out, "[3]") != NULL && strstr(out, "[4]") == NULL, "%s", out);
	free(out);
	free(err);
	const char *b[] = { "-m", model, "-f", text, "-c", "128", "--chunks", "3", "-b", "20", "-t", "1", NULL };
	ck_assert_int_eq(pp_ours(b, &out, &err), 0);
	const double many = pp_final(out, "-b 20");
	ck_assert_msg(fabs(one - many) <= 1e-4 * one, "-b 128: %.4f, -b 20: %.4f", one, many);
	free(out);
	free(err);
	free(text);
	tmpdir_remove(dir);
	free(model);
}
END_TEST

/* extern: the Makefile finds suites by a line starting "Suite *". */
Suite *perplexity_suite(void);

Suite *
perplexity_suite(void)
{
	Suite *s = suite_create("perplexity");
	TCase *tc = tcase_create("perplexity");
	tcase_set_timeout(tc, 300);
	tcase_add_fixture_test(tc, test_perplexity_bad_input);
	tcase_add_fixture_test(tc, test_perplexity_kl_divergence);
	tcase_add_fixture_test(tc, test_perplexity_batches);
	char *peer = fixtures_present() ? peer_program("llama-perplexity") : NULL;
	if (peer != NULL)
		tcase_add_test(tc, test_perplexity_matches_peer);
	else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_perplexity_matches_peer (llama-perplexity cannot run here)\n");
	}
	free(peer);
	suite_add_tcase(s, tc);
	return s;
}
