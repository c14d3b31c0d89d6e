/*
 * check_cli.c: the real binary, run as people and scripts run it: usage
 * errors, broken model files, tokenize/complete/render/info against the
 * golden data, one-shot and piped chat with the database, the config file,
 * and the modes of what the program creates.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lines in s (a final line without '\n' counts). */
static int
count_lines(const char *s)
{
	int n = 0;
	for (const char *p = s; *p; p++)
		n += *p == '\n';
	return n + (s[0] && s[strlen(s) - 1] != '\n');
}

static char *
model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "%s missing", rel);
	return p;
}

START_TEST(test_usage_errors)
{
	struct { const char *argv[8]; int status; const char *needle; } cases[] = {
		{ { "x", "--bogus", NULL }, 2, "--bogus" },
		{ { "x", "complete", "--frobnicate", NULL }, 2, "--frobnicate" },
		{ { "x", "complete", "-n", NULL }, 2, "-n" },
		{ { "x", "complete", "-n", "many", "-m", "x", NULL }, 2, "many" },
		{ { "x", "complete", "--temp", "-3", NULL }, 2, "--temp" },
		{ { "x", "info", "-m", "/nonexistent/model.gguf", NULL }, 1, "/nonexistent/model.gguf" },
		{ { "x", "info", NULL }, 2, "no model" },
		{ { "x", "frobnicate", NULL }, 2, "frobnicate" },
		{ { "x", "list", "--bogus", NULL }, 2, "--bogus" },
	};
	const char *env[] = { "LLAMA2_CHAT_MODEL=", "XDG_CONFIG_HOME=/nonexistent", NULL };
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		int st = run_binary(cases[i].argv, NULL, &out, &err, env, 30);
		ck_assert_msg(st == cases[i].status, "case %zu: status %d, want %d (%s)", i, st, cases[i].status, err);
		ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: '%s' not named in: %s", i,
		    cases[i].needle, err);
		ck_assert_msg(strncmp(err, "llama2-chat: ", 13) == 0, "case %zu: %s", i, err);
		ck_assert_msg(count_lines(err) <= 2, "case %zu: more than a line and a hint: %s", i, err);
		free(out);
		free(err);
	}
}
END_TEST

START_TEST(test_broken_model_file)
{
	char *src = model("fixture-q4_0.gguf");
	char *dir = tmpdir_new();
	char *cut;
	ck_assert_int_ge(asprintf(&cut, "%s/cut.gguf", dir), 0);
	FILE *f = fopen(src, "rb"), *g = fopen(cut, "wb");
	char buf[65536];
	size_t n = fread(buf, 1, sizeof buf, f);
	fwrite(buf, 1, n / 2, g);
	fclose(f);
	fclose(g);
	const char *argv[] = { "x", "complete", "-m", cut, "hello", NULL };
	char *out, *err;
	int st = run_binary(argv, NULL, &out, &err, NULL, 30);
	ck_assert_int_eq(st, 1);
	char *want;
	ck_assert_int_ge(asprintf(&want, "llama2-chat: %s: ", cut), 0);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	ck_assert_int_eq(count_lines(err), 1);
	free(want);
	free(out);
	free(err);
	free(cut);
	free(src);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_tokenize)
{
	char *tb = fixture_path("models/tokenizer.bin");
	char *tiny = model("llama-2-tiny-random.gguf");
	const char *a1[] = { "x", "tokenize", "--tokenizer", tb, "Hello world", NULL };
	const char *a2[] = { "x", "tokenize", "-m", tiny, "--no-bos", "--", "Hello world", NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(a1, NULL, &out, &err, NULL, 30), 0);
	ck_assert_str_eq(out, "1 15043 3186\n");
	free(out);
	free(err);
	ck_assert_int_eq(run_binary(a2, NULL, &out, &err, NULL, 30), 0);
	ck_assert_str_eq(out, "15043 3186\n");
	free(out);
	free(err);
	free(tb);
	free(tiny);
}
END_TEST

/* complete --ids, greedy, gives llama.cpp's greedy ids. */
START_TEST(test_complete_greedy_ids)
{
	json_t *g = golden_load("fixtures.json");
	json_t *c = json_array_get(json_object_get(g, "cases"), 0);   /* bf16 "Once upon a time" */
	for (size_t i = 0; i < json_array_size(json_object_get(g, "cases")); i++) {
		json_t *ci = json_array_get(json_object_get(g, "cases"), i);
		if (strcmp(json_string_value(json_object_get(ci, "model")), "fixture-f32.gguf") == 0) {
			c = ci;
			break;
		}
	}
	char *m = model("fixture-f32.gguf");
	const char *prompt = json_string_value(json_object_get(c, "prompt"));
	int robust = (int)json_integer_value(json_object_get(c, "n_greedy_robust"));
	char n[16];
	snprintf(n, sizeof n, "%d", robust);
	const char *argv[] = { "x", "complete", "-m", m, "--temp", "0", "-n", n, "--ids", "--", prompt, NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(argv, NULL, &out, &err, NULL, 60), 0);
	char want[1024] = "";
	json_t *ids = json_object_get(c, "greedy_ids");
	for (int k = 0; k < robust; k++)
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? " " : "",
		    (long long)json_integer_value(json_array_get(ids, (size_t)k)));
	strcat(want, "\n");
	ck_assert_str_eq(out, want);
	free(out);
	free(err);
	free(m);
	json_decref(g);
}
END_TEST

/* llama2.c's run.c from BOS, through --prompt-ids. */
START_TEST(test_complete_stories)
{
	json_t *g = golden_load("stories260K.json");
	json_t *f = json_object_get(g, "float32");
	int robust = (int)json_integer_value(json_object_get(f, "n_greedy_robust"));
	char *m = model("stories260K.bin");
	char n[16];
	snprintf(n, sizeof n, "%d", robust);
	char *dir = tmpdir_new(), *tok = fixture_tok512(dir);
	const char *argv[] = { "x", "complete", "-m", m, "--tokenizer", tok, "--temp", "0", "-n", n, "--ids",
		"--prompt-ids", "1", NULL };
	char *out, *err;
	ck_assert_msg(run_binary(argv, NULL, &out, &err, NULL, 60) == 0, "%s", err);
	free(tok);
	tmpdir_remove(dir);
	char *p = out;
	for (int k = 0; k < robust; k++) {
		long v = strtol(p, &p, 10);
		ck_assert_int_eq(v, json_integer_value(json_array_get(json_object_get(f, "greedy_ids"), (size_t)k)));
	}
	free(out);
	free(err);
	free(m);
	json_decref(g);
}
END_TEST

START_TEST(test_render_golden)
{
	json_t *g = golden_load("tokenizer.json");
	json_t *chats = json_object_get(g, "chat");
	char *m = model("llama-2-tiny-random.gguf");
	for (size_t i = 0; i < json_array_size(chats); i++) {
		json_t *c = json_array_get(chats, i);
		char *dialog = json_dumps(json_object_get(c, "messages"), 0);
		const char *argv[] = { "x", "render", "-m", m, "--ids", NULL };
		char *out, *err;
		ck_assert_msg(run_binary(argv, dialog, &out, &err, NULL, 30) == 0, "chat %zu: %s", i, err);
		char want[8192] = "";
		json_t *ids = json_object_get(c, "ids");
		for (size_t k = 0; k < json_array_size(ids); k++)
			snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", k ? " " : "",
			    (long long)json_integer_value(json_array_get(ids, k)));
		strcat(want, "\n");
		ck_assert_msg(strcmp(out, want) == 0, "chat %zu:\n got %s want %s", i, out, want);
		free(out);
		free(err);
		free(dialog);
	}
	/* The text form marks BOS/EOS. */
	const char *argv[] = { "x", "render", "-m", m, NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(argv, "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
	    "\"content\":\" Hello \"},{\"role\":\"user\",\"content\":\"Bye\"}]", &out, &err, NULL, 30), 0);
	ck_assert_str_eq(out, "<s>[INST] Hi [/INST] Hello </s><s>[INST] Bye [/INST]\n");
	free(out);
	free(err);
	/* Roles out of order, and bad JSON: one-line errors. */
	const char *bad[] = {
		"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]",
		"[{\"role\":\"assistant\",\"content\":\"a\"}]",
		"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"b\"}]",
		"[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]",
		"[{\"role\":\"wizard\",\"content\":\"a\"}]",
		"{\"role\":\"user\"}",
		"[{\"role\":\"user\",\"content\":",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(run_binary(argv, bad[i], &out, &err, NULL, 30) == 1, "bad %zu accepted", i);
		ck_assert_msg(count_lines(err) == 1 && strncmp(err, "llama2-chat: ", 13) == 0, "bad %zu: %s", i, err);
		free(out);
		free(err);
	}
	free(m);
	json_decref(g);
}
END_TEST

START_TEST(test_info)
{
	char *m = model("fixture-q4_k_m.gguf");
	const char *argv[] = { "x", "info", "-m", m, NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(argv, NULL, &out, &err, NULL, 30), 0);
	ck_assert_ptr_nonnull(strstr(out, "GGUF v3"));
	ck_assert_ptr_nonnull(strstr(out, "Q4_K 13"));
	ck_assert_ptr_nonnull(strstr(out, "Q6_K 3"));
	ck_assert_ptr_nonnull(strstr(out, "vocabulary:   1024"));
	free(out);
	free(err);
	free(m);
}
END_TEST

/* Piped chat: the second turn reuses the cache and prefills only itself;
 * both turns are saved; files are private. */
START_TEST(test_chat_pipe_reuse_and_save)
{
	char *m = model("fixture-q4_0.gguf");
	char *dir = tmpdir_new();
	char *xdg, *cfg;
	ck_assert_int_ge(asprintf(&xdg, "XDG_DATA_HOME=%s/data", dir), 0);
	ck_assert_int_ge(asprintf(&cfg, "XDG_CONFIG_HOME=%s/cfg", dir), 0);
	const char *env[] = { xdg, cfg, "LLAMA2_CHAT_DB=", NULL };
	const char *argv[] = { "x", "chat", "-m", m, "-n", "12", "--temp", "0", "--stats", "-s", "Be brief.", NULL };
	char *out, *err;
	int st = run_binary(argv, "Hello there\nAnd again\n", &out, &err, env, 120);
	ck_assert_msg(st == 0, "status %d: %s", st, err);
	int p1, r1, p2, r2;
	char *t2 = strstr(err, "turn 2:");
	ck_assert_msg(sscanf(err, "turn 1: prefill %d reused %d", &p1, &r1) == 2, "%s", err);
	ck_assert_msg(t2 && sscanf(t2, "turn 2: prefill %d reused %d", &p2, &r2) == 2, "%s", err);
	ck_assert_int_eq(r1, 0);
	/* Turn 2 reuses all of turn 1 (its prompt and reply) and prefills only
	 * the reply's last token, its EOS and the new user turn. */
	ck_assert_msg(r2 > p1 && p2 < p1, "turn 2 prefilled %d and reused %d (turn 1 had %d)", p2, r2, p1);
	/* Each reply is followed by a blank line. */
	ck_assert_ptr_nonnull(strstr(out, "\n\n"));
	free(out);
	free(err);

	char *db;
	ck_assert_int_ge(asprintf(&db, "%s/data/llama2-chat/chats.db", dir), 0);
	struct stat sb;
	ck_assert_int_eq(stat(db, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	char *fold;
	ck_assert_int_ge(asprintf(&fold, "%s/data/llama2-chat", dir), 0);
	ck_assert_int_eq(stat(fold, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	const char *ls[] = { "x", "list", "--json", NULL };
	ck_assert_int_eq(run_binary(ls, NULL, &out, &err, env, 30), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	ck_assert_msg(j != NULL, "list --json: %s", out);
	json_t *conv = json_is_array(j) ? json_array_get(j, 0) : json_array_get(json_object_get(j, "conversations"), 0);
	ck_assert_ptr_nonnull(conv);
	json_t *nm = json_object_get(conv, "messages");
	if (nm == NULL)
		nm = json_object_get(conv, "n_messages");
	ck_assert_int_eq(json_integer_value(nm), 4);
	json_decref(j);
	free(out);
	free(err);

	/* -c continues it: the third turn sees the first two. */
	const char *cont[] = { "x", "-m", m, "-c", "-n", "4", "--temp", "0", "--stats", "-p", "Third", NULL };
	ck_assert_int_eq(run_binary(cont, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strstr(err, "turn 1:") != NULL, "%s", err);
	free(out);
	free(err);
	ck_assert_int_eq(run_binary(ls, NULL, &out, &err, env, 30), 0);
	j = json_loads(out, 0, &je);
	conv = json_is_array(j) ? json_array_get(j, 0) : json_array_get(json_object_get(j, "conversations"), 0);
	nm = json_object_get(conv, "messages");
	if (nm == NULL)
		nm = json_object_get(conv, "n_messages");
	ck_assert_int_eq(json_integer_value(nm), 6);
	json_decref(j);
	free(out);
	free(err);
	free(db);
	free(fold);
	free(xdg);
	free(cfg);
	free(m);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_config_file)
{
	char *dir = tmpdir_new();
	char *cfg;
	ck_assert_int_ge(asprintf(&cfg, "%s/config", dir), 0);
	FILE *f = fopen(cfg, "w");
	fputs("# comment\nthreads = 1\n\ntemp = 0.5\nwarp_speed = 9\n", f);
	fclose(f);
	const char *argv[] = { "x", "info", "--config", cfg, NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(argv, NULL, &out, &err, NULL, 30), 2);
	ck_assert_msg(strstr(err, ":5:") && strstr(err, "warp_speed"), "%s", err);
	free(out);
	free(err);
	f = fopen(cfg, "w");
	fputs("top_p = 7\n", f);
	fclose(f);
	ck_assert_int_eq(run_binary(argv, NULL, &out, &err, NULL, 30), 2);
	ck_assert_msg(strstr(err, ":1:") && strstr(err, "top_p"), "%s", err);
	free(out);
	free(err);
	/* A model named in the config is used. */
	char *m = model("fixture-q8_0.gguf");
	f = fopen(cfg, "w");
	fprintf(f, "model = %s\nthreads = 1\n", m);
	fclose(f);
	const char *env[] = { "LLAMA2_CHAT_MODEL=", NULL };
	ck_assert_int_eq(run_binary(argv, NULL, &out, &err, env, 30), 0);
	ck_assert_ptr_nonnull(strstr(out, "GGUF v3"));
	free(out);
	free(err);
	free(m);
	free(cfg);
	tmpdir_remove(dir);
}
END_TEST

/* bench takes llama-bench's -p 0 / -n 0 (leave that test out), and
 * refuses both at once. */
START_TEST(test_bench_skip_tests)
{
	char *path = fixture_path("models/fixture-q4_0.gguf");
	struct { const char *p, *n; int rc, pp, tg; } cases[] = {
		{ "0", "4", 0, 0, 1 }, { "8", "0", 0, 1, 0 }, { "8", NULL, 0, 1, 0 }, { "0", "0", 2, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *argv[] = { "llama2-chat", "bench", "-m", path, "-r", "1", "-p", cases[i].p,
			cases[i].n ? "-n" : NULL, cases[i].n, NULL };
		char *out = NULL, *err = NULL;
		int rc = run_binary(argv, NULL, &out, &err, NULL, 60);
		ck_assert_msg(rc == cases[i].rc, "-p %s -n %s: exit %d, stderr %s", cases[i].p, cases[i].n, rc, err);
		ck_assert_msg((strstr(out, "| pp") != NULL) == cases[i].pp, "-p %s: %s", cases[i].p, out);
		ck_assert_msg((strstr(out, "| tg") != NULL) == cases[i].tg, "-n %s: %s", cases[i].n, out);
		if (cases[i].rc == 2)
			ck_assert_msg(strstr(err, "nothing to measure") != NULL, "stderr: %s", err);
		free(out);
		free(err);
	}
	free(path);
}
END_TEST

Suite *cli_suite(void);

Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("binary");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_fixture_test(tc, test_broken_model_file);
	tcase_add_fixture_test(tc, test_tokenize);
	tcase_add_fixture_test(tc, test_complete_greedy_ids);
	tcase_add_fixture_test(tc, test_complete_stories);
	tcase_add_fixture_test(tc, test_render_golden);
	tcase_add_fixture_test(tc, test_info);
	tcase_add_fixture_test(tc, test_bench_skip_tests);
	tcase_add_fixture_test(tc, test_chat_pipe_reuse_and_save);
	tcase_add_fixture_test(tc, test_config_file);   /* its last case opens a model */
	suite_add_tcase(s, tc);
	return s;
}
