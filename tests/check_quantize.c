/*
 * check_quantize.c: the quantize module (engine/quantize*.c) and the
 * quantize command, against llama.cpp's llama-quantize b4748 from the
 * shared peers (those tests are skipped, and counted, when it cannot run):
 *   - for every TYPE, fixture-f32.gguf quantized by us and by the peer has
 *     the same tensors in the same order with the same types, the same
 *     general.file_type, and >= 99% byte-identical blocks;
 *   - llama-perplexity scores our Q4_K_M file within 0.5% of the peer's;
 *   - each block quantizer alone: the dequantized round trip of generated
 *     data stays within an error bound for its bit width;
 *   - the command's bad input: an unknown type (naming the list), an
 *     unreadable input, requantizing without --allow-requantize, a stop
 *     that leaves neither the output nor a temporary file behind.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/quantize.h"
#include "tests/testutil.h"

static const char *const qz_types[] = {
	"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
	"Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K",
};
#define QZ_NTYPES ((int)(sizeof qz_types / sizeof qz_types[0]))

static char *
qz_join(const char *dir, const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* Compare two GGUF files tensor by tensor: names, shapes and types must be
 * equal; returns the share of identical blocks. */
static double
qz_compare(const char *a_path, const char *b_path, int ti)
{
	char *err = NULL;
	struct gguf *a = gguf_open(a_path, &err), *b = gguf_open(b_path, &err);
	ck_assert_msg(a != NULL && b != NULL, "[%d] open: %s", ti, err ? err : "");
	ck_assert_uint_eq(a->n_tensors, b->n_tensors);
	int okf = 1;
	ck_assert_int_eq(gguf_get_int(a, "general.file_type", -1, &okf), gguf_get_int(b, "general.file_type", -2, &okf));
	uint64_t same = 0, total = 0;
	for (uint64_t i = 0; i < a->n_tensors; i++) {
		const struct gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
		ck_assert_msg(x->name.len == y->name.len && memcmp(x->name.s, y->name.s, x->name.len) == 0,
		    "[%s] tensor %llu: %.*s vs %.*s", qz_types[ti], (unsigned long long)i,
		    (int)x->name.len, x->name.s, (int)y->name.len, y->name.s);
		ck_assert_msg(x->type == y->type, "[%s] %.*s: type %s vs %s", qz_types[ti],
		    (int)x->name.len, x->name.s, quant_type_name(x->type), quant_type_name(y->type));
		ck_assert_uint_eq(x->nbytes, y->nbytes);
		const struct quant_type *qt = quant_type_get_ref(x->type);
		ck_assert_ptr_nonnull(qt);
		for (size_t o = 0; o + qt->type_size <= x->nbytes; o += qt->type_size) {
			same += memcmp((const char *)x->data + o, (const char *)y->data + o, qt->type_size) == 0;
			total++;
		}
	}
	gguf_close(a);
	gguf_close(b);
	return total ? (double)same / (double)total : 0;
}

static int
qz_run_ours(const char *in, const char *out, const char *type, char **err_out)
{
	const char *argv[] = { "llama2-chat", "quantize", in, out, type, NULL };
	char *o = NULL, *e = NULL;
	int rc = run_binary(argv, NULL, &o, &e, NULL, 120);
	free(o);
	if (err_out)
		*err_out = e;
	else
		free(e);
	return rc;
}

START_TEST(test_quantize_matches_peer)
{
	char *peer = peer_program("llama-quantize");
	char *in = fixture_path("models/fixture-f32.gguf");
	ck_assert_ptr_nonnull(peer);
	ck_assert_ptr_nonnull(in);
	char *dir = tmpdir_new();
	for (int t = 0; t < QZ_NTYPES; t++) {
		char *ours = qz_join(dir, "ours.gguf"), *theirs = qz_join(dir, "theirs.gguf");
		const char *pargv[] = { peer, in, theirs, qz_types[t], "2", NULL };
		char *pe = NULL;
		int prc = run_program(pargv, NULL, &pe);
		ck_assert_msg(prc == 0, "[%s] llama-quantize exit %d: %.300s", qz_types[t], prc, pe);
		free(pe);
		/* Lower case on purpose: the type is case-insensitive. */
		char lower[16];
		snprintf(lower, sizeof lower, "%s", qz_types[t]);
		for (char *c = lower; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		char *e = NULL;
		int rc = qz_run_ours(in, ours, lower, &e);
		ck_assert_msg(rc == 0, "[%s] quantize exit %d: %s", qz_types[t], rc, e);
		free(e);
		struct stat st;
		ck_assert_int_eq(stat(ours, &st), 0);
		const mode_t um = umask(0);
		umask(um);
		ck_assert_int_eq(st.st_mode & 0777, 0666 & ~um);
		double share = qz_compare(ours, theirs, t);
		ck_assert_msg(share >= 0.99, "[%s] only %.4f of the blocks are identical", qz_types[t], share);
		unlink(ours);
		unlink(theirs);
		free(ours);
		free(theirs);
	}
	tmpdir_remove(dir);
	free(in);
	free(peer);
}
END_TEST

/* A text long enough for several chunks at -c 128 (and the same every run). */
static char *
qz_write_text(const char *dir)
{
	static const char *const words[] = {
		"the", "a", "little", "cat", "dog", "sat", "on", "mat", "and", "ran", "to",
		"house", "tree", "big", "small", "red", "blue", "happy", "sad", "day", "night",
		"sun", "moon", "went", "saw", "played", "with", "friend", "girl", "boy",
	};
	char *path = qz_join(dir, "text.txt");
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	uint32_t s = 12345;
	for (int i = 0; i < 2500; i++) {
		s = s * 1103515245u + 12345u;
		fprintf(f, "%s%s", words[(s >> 16) % 30], (s >> 8) % 9 == 0 ? ". " : " ");
	}
	fclose(f);
	return path;
}

static double
qz_peer_ppl(const char *peer, const char *model, const char *text)
{
	const char *argv[] = { peer, "-m", model, "-f", text, "-c", "128", "-b", "128", "--chunks", "6",
		"-t", "2", NULL };
	char *out = NULL, *err = NULL;
	int rc = run_program(argv, &out, &err);
	ck_assert_msg(rc == 0, "llama-perplexity exit %d: %.300s", rc, err);
	const char *p = strstr(out, "Final estimate: PPL = ");
	if (p == NULL)
		p = strstr(err, "Final estimate: PPL = ");
	ck_assert_msg(p != NULL, "no final estimate from llama-perplexity");
	double v = atof(p + strlen("Final estimate: PPL = "));
	free(out);
	free(err);
	return v;
}

START_TEST(test_quantize_peer_scores_ours)
{
	char *peer = peer_program("llama-quantize"), *pp = peer_program("llama-perplexity");
	char *in = fixture_path("models/fixture-f32.gguf");
	ck_assert_ptr_nonnull(peer);
	ck_assert_ptr_nonnull(pp);
	char *dir = tmpdir_new();
	char *ours = qz_join(dir, "ours.gguf"), *theirs = qz_join(dir, "theirs.gguf");
	char *text = qz_write_text(dir);
	const char *pargv[] = { peer, in, theirs, "Q4_K_M", "2", NULL };
	ck_assert_int_eq(run_program(pargv, NULL, NULL), 0);
	ck_assert_int_eq(qz_run_ours(in, ours, "Q4_K_M", NULL), 0);
	double a = qz_peer_ppl(pp, ours, text), b = qz_peer_ppl(pp, theirs, text);
	ck_assert_msg(fabs(a - b) <= 0.005 * b, "PPL of our file %.4f, of theirs %.4f", a, b);
	free(ours);
	free(theirs);
	free(text);
	tmpdir_remove(dir);
	free(in);
	free(peer);
	free(pp);
}
END_TEST

/* Each block quantizer: relative RMS error of the round trip on smooth
 * plus noisy data, below a bound set by its bits (and above zero: a
 * quantizer that copied floats would be a bug in the test). */
START_TEST(test_quantize_block_roundtrip)
{
	static const struct { int type; double bound; } cases[] = {
		{ QT_Q4_0, 0.12 }, { QT_Q4_1, 0.10 }, { QT_Q5_0, 0.06 }, { QT_Q5_1, 0.05 },
		{ QT_Q8_0, 0.008 }, { QT_Q2_K, 0.45 }, { QT_Q3_K, 0.22 }, { QT_Q4_K, 0.10 },
		{ QT_Q5_K, 0.05 }, { QT_Q6_K, 0.025 },
	};
	enum { N = 4096 };
	float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
	uint8_t *q = malloc(N * 4);
	uint32_t s = 1;
	for (int i = 0; i < N; i++) {
		s = s * 1664525u + 1013904223u;
		float u = ((s >> 8) & 0xffff) / 65536.0f - 0.5f;
		x[i] = 0.3f * sinf((float)i * 0.05f) + u * (i % 512 < 256 ? 1.0f : 0.05f);
	}
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct quant_type *t = quant_type_get_ref(cases[c].type);
		quant_from_float_fn fn = quantize_block_fn(cases[c].type);
		ck_assert_ptr_nonnull(fn);
		/* The table's from_float is this quantizer, but for Q8_0 (activations). */
		if (cases[c].type != QT_Q8_0)
			ck_assert_msg(t->from_float == fn, "[%zu] table and quantize_block_fn differ", c);
		memset(q, 0xAA, N * 4);
		fn(x, q, N);
		t->to_float(q, y, N);
		double e2 = 0, x2 = 0;
		for (int i = 0; i < N; i++) {
			e2 += (double)(x[i] - y[i]) * (x[i] - y[i]);
			x2 += (double)x[i] * x[i];
		}
		const double rel = sqrt(e2 / x2);
		ck_assert_msg(rel < cases[c].bound && rel > 0, "[%zu] %s: relative RMS error %.4f (bound %.3f)",
		    c, t->name, rel, cases[c].bound);
		/* All-zero input: zero blocks, dequantized to zeros. */
		float z[QK_K] = { 0 };
		fn(z, q, QK_K);
		t->to_float(q, y, QK_K);
		for (int i = 0; i < QK_K; i++)
			ck_assert_msg(y[i] == 0.0f, "[%zu] %s: zero input gives %g", c, t->name, y[i]);
	}
	free(x);
	free(y);
	free(q);
}
END_TEST

START_TEST(test_quantize_mix_rules)
{
	/* 32 layers, as LLaMA-7B: Q4_K_M gives Q6_K to attn_v/ffn_down in
	 * layers 0-3, 6, 9, ..., 28-31 and Q4_K elsewhere; output Q6_K. */
	const char *names[] = { "output.weight", "token_embd.weight" };
	struct quantize_mix m;
	quantize_mix_init(&m, QF_Q4_K_M, 32, 1, names, 2);
	ck_assert_int_eq(quantize_mix_type(&m, "output.weight", 2, 4096, QT_F16), QT_Q6_K);
	ck_assert_int_eq(quantize_mix_type(&m, "token_embd.weight", 2, 4096, QT_F16), QT_Q4_K);
	ck_assert_int_eq(quantize_mix_type(&m, "output_norm.weight", 1, 4096, QT_F32), QT_F32);
	int want6[32] = { 0 };
	for (int i = 0; i < 32; i++)
		want6[i] = i < 4 || i >= 28 || (i - 4) % 3 == 2;
	for (int i = 0; i < 32; i++) {
		char n[64];
		snprintf(n, sizeof n, "blk.%d.ffn_down.weight", i);
		ck_assert_msg(quantize_mix_type(&m, n, 2, 11008, QT_F16) == (want6[i] ? QT_Q6_K : QT_Q4_K) ||
		    11008 % 256 != 0, "layer %d", i);
		snprintf(n, sizeof n, "blk.%d.attn_q.weight", i);
		ck_assert_int_eq(quantize_mix_type(&m, n, 2, 4096, QT_F16), QT_Q4_K);
	}
	/* A row that is not a multiple of 256: the fallback. */
	quantize_mix_init(&m, QF_Q4_K_S, 2, 1, names, 2);
	ck_assert_int_eq(quantize_mix_type(&m, "blk.0.attn_q.weight", 2, 288, QT_F32), QT_Q5_0);
	ck_assert_int_eq(quantize_mix_type(&m, "output.weight", 2, 288, QT_F32), QT_Q8_0);
	ck_assert_int_eq(quantize_mix_type(&m, "blk.0.attn_q.weight", 2, 80, QT_F32), QT_F16);
	ck_assert_int_eq(quantize_ftype_parse("q3_k_m"), QF_Q3_K_M);
	ck_assert_int_eq(quantize_ftype_parse("IQ4_NL"), -1);
	ck_assert_int_eq(quantize_ftype_parse("Q4_K"), -1);
}
END_TEST

static int
qz_dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.' || (e->d_name[1] != '\0' && strcmp(e->d_name, "..") != 0);
	closedir(d);
	return n;
}

START_TEST(test_quantize_bad_input)
{
	char *in = fixture_path("models/fixture-f32.gguf");
	char *q4 = fixture_path("models/fixture-q4_k_m.gguf");
	char *dir = tmpdir_new();
	char *out = qz_join(dir, "out.gguf");
	char *e = NULL;

	ck_assert_int_eq(qz_run_ours(in, out, "Q7_Z", &e), 2);
	ck_assert_msg(strstr(e, "Q7_Z") && strstr(e, "Q4_K_M") && strstr(e, "Q6_K"), "%s", e);
	free(e);

	ck_assert_int_eq(qz_run_ours("/nonexistent/m.gguf", out, "Q4_0", &e), 1);
	ck_assert_msg(strstr(e, "/nonexistent/m.gguf") != NULL && strchr(e, '\n') == e + strlen(e) - 1, "%s", e);
	free(e);

	/* A text file is not a GGUF. */
	char *bogus = qz_join(dir, "bogus.gguf");
	FILE *f = fopen(bogus, "w");
	fputs("not a model\n", f);
	fclose(f);
	ck_assert_int_eq(qz_run_ours(bogus, out, "Q4_0", &e), 1);
	ck_assert_msg(strstr(e, "bogus.gguf") != NULL, "%s", e);
	free(e);
	unlink(bogus);
	free(bogus);

	ck_assert_int_eq(qz_run_ours(q4, out, "Q4_0", &e), 1);
	ck_assert_msg(strstr(e, "--allow-requantize") != NULL, "%s", e);
	free(e);
	ck_assert_int_eq(access(out, F_OK), -1);
	ck_assert_int_eq(qz_dir_entries(dir), 0);

	const char *argv[] = { "llama2-chat", "quantize", "--allow-requantize", q4, out, "Q4_0", NULL };
	char *o = NULL;
	ck_assert_int_eq(run_binary(argv, NULL, &o, &e, NULL, 60), 0);
	ck_assert_msg(strstr(e, "warning") != NULL, "%s", e);
	free(o);
	free(e);
	ck_assert_int_eq(access(out, R_OK), 0);

	/* Too few arguments and --help. */
	const char *argv2[] = { "llama2-chat", "quantize", in, NULL };
	ck_assert_int_eq(run_binary(argv2, NULL, &o, &e, NULL, 10), 2);
	free(o);
	free(e);
	const char *argv3[] = { "llama2-chat", "quantize", "--help", NULL };
	ck_assert_int_eq(run_binary(argv3, NULL, &o, &e, NULL, 10), 0);
	ck_assert_msg(strstr(o, "usage: llama2-chat quantize") && strstr(o, "Q3_K_L"), "%s", o);
	free(o);
	free(e);

	free(out);
	tmpdir_remove(dir);
	free(in);
	free(q4);
}
END_TEST

/* A stop (what SIGINT raises) before the first tensor: status 1, no output,
 * no temporary file; an existing output is left as it was. */
START_TEST(test_quantize_stop_leaves_nothing)
{
	char *in = fixture_path("models/fixture-f32.gguf");
	char *dir = tmpdir_new();
	char *out = qz_join(dir, "out.gguf");
	FILE *f = fopen(out, "w");
	fputs("old", f);
	fclose(f);
	atomic_int stop = 1;
	struct quantize_params p = { .ftype = QF_Q4_0, .n_threads = 2, .stop = &stop };
	char *err = NULL;
	ck_assert_int_eq(quantize_file(in, out, &p, NULL, &err), 1);
	ck_assert_ptr_null(err);
	ck_assert_int_eq(qz_dir_entries(dir), 1);
	struct stat st;
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, 3);
	/* Without the stop: the same call replaces it; thread counts agree. */
	stop = 0;
	ck_assert_int_eq(quantize_file(in, out, &p, NULL, &err), 0);
	char *out1 = qz_join(dir, "one.gguf");
	p.n_threads = 1;
	ck_assert_int_eq(quantize_file(in, out1, &p, NULL, &err), 0);
	ck_assert_msg(qz_compare(out, out1, 0) == 1.0, "threads changed the bytes");
	ck_assert_int_eq(qz_dir_entries(dir), 2);
	free(out1);
	free(out);
	tmpdir_remove(dir);
	free(in);
}
END_TEST

/* extern: the Makefile finds suites by a line starting "Suite *". */
Suite *quantize_suite(void);

Suite *
quantize_suite(void)
{
	Suite *s = suite_create("quantize");
	TCase *tc = tcase_create("quantize");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_quantize_block_roundtrip);
	tcase_add_test(tc, test_quantize_mix_rules);
	tcase_add_fixture_test(tc, test_quantize_bad_input);
	tcase_add_fixture_test(tc, test_quantize_stop_leaves_nothing);
	char *peer = fixtures_present() ? peer_program("llama-quantize") : NULL;
	char *pp = fixtures_present() ? peer_program("llama-perplexity") : NULL;
	if (peer != NULL)
		tcase_add_test(tc, test_quantize_matches_peer);
	else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_quantize_matches_peer (llama-quantize cannot run here)\n");
	}
	if (peer != NULL && pp != NULL)
		tcase_add_test(tc, test_quantize_peer_scores_ours);
	else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_quantize_peer_scores_ours (llama-quantize/llama-perplexity cannot run here)\n");
	}
	free(peer);
	free(pp);
	suite_add_tcase(s, tc);
	return s;
}
