/*
 * check_flags.c: no flag is accepted and then ignored (suite flags).  The
 * real binary with a flag its command has no use for must refuse it with
 * one line naming the flag, exit 2, and touch nothing; the same command
 * without that flag must work, so that each row tests the flag and not a
 * broken command.  Every row failed before the commands checked their
 * flags (the flag was silently dropped and the command exited 0).  Runs in
 * a temporary HOME; skipped without the fixtures.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXARG 16

struct row {
	const char *args[MAXARG];  /* after the binary; "M" is the fixture model, "T" the tokenizer,
	                            * "O" a file in the temporary folder */
	const char *bad;           /* the flag (and value) to add: words separated by one space */
	const char *says;          /* in the one line on stderr */
};

static const struct row rows[] = {
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--ids", "--ids: add --json" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--no-bos", "--no-bos does nothing for -p" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--prompt-ids 1,2", "--prompt-ids does nothing" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "-o O", "-o is an option of export" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--format md", "--format is an option of export" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--yes", "--yes is an option of export" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "--tokenizer T", "--tokenizer is for llama2.c" },
	{ { "-m", "M", "-p", "hi", "-n", "2", "--no-save" }, "-r 3", "-r does nothing for -p" },
	{ { "chat", "-m", "M", "-n", "2", "--no-save" }, "--no-bos", "--no-bos does nothing for chat" },
	{ { "tokenize", "-m", "M", "hello" }, "--temp 0.5", "--temp does nothing for tokenize" },
	{ { "tokenize", "-m", "M", "hello" }, "-s sys", "-s does nothing for tokenize" },
	{ { "tokenize", "-m", "M", "hello" }, "--json", "--json does nothing for tokenize" },
	{ { "info", "-m", "M" }, "-n 5", "-n does nothing for info" },
	{ { "info", "-m", "M" }, "--ctx-size 64", "--ctx-size does nothing for info" },
	{ { "complete", "-m", "M", "-n", "2", "hello" }, "-f /dev/null", "-f does nothing for complete" },
	{ { "complete", "-m", "M", "-n", "2", "hello" }, "--no-save", "--no-save does nothing for complete" },
	{ { "complete", "-m", "M", "-n", "2", "hello" }, "--chat-template chatml", "--chat-template does nothing" },
	{ { "bench", "-m", "M", "-p", "4", "-n", "2", "-r", "1" }, "--seed 3", "--seed does nothing for bench" },
	{ { "cache", "list" }, "-m M", "-m does nothing for cache" },
};

static int
run(char **env, const char *const *argv, const char *in, char **out, char **err)
{
	return run_binary(argv, in, out, err, (const char *const *)env, 60);
}

START_TEST(test_flags_refused)
{
	char *dir = tmpdir_new();
	ck_assert_ptr_nonnull(dir);
	char *env[8];
	ck_assert_int_ge(asprintf(&env[0], "HOME=%s", dir), 0);
	ck_assert_int_ge(asprintf(&env[1], "XDG_CONFIG_HOME=%s/cfg", dir), 0);
	ck_assert_int_ge(asprintf(&env[2], "XDG_DATA_HOME=%s/data", dir), 0);
	ck_assert_int_ge(asprintf(&env[3], "XDG_CACHE_HOME=%s/cache", dir), 0);
	ck_assert_int_ge(asprintf(&env[4], "XDG_STATE_HOME=%s/state", dir), 0);
	env[5] = strdup("LLAMA2_CHAT_MODEL=");
	env[6] = strdup("LLAMA2_CHAT_DB=");
	env[7] = NULL;
	char *mrel = fixture_path("models/fixture-q4_0.gguf"), *trel = fixture_path("models/tokenizer.bin");
	ck_assert(mrel != NULL && trel != NULL);
	char *model = realpath(mrel, NULL), *tok = realpath(trel, NULL);
	ck_assert(model != NULL && tok != NULL);
	char *xmd;
	ck_assert_int_ge(asprintf(&xmd, "%s/x.md", dir), 0);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		const char *argv[2 * MAXARG + 2];
		char bad[64];
		snprintf(bad, sizeof bad, "%s", r->bad);
		int n = 0;
		argv[n++] = test_binary();
		for (int k = 0; k < MAXARG && r->args[k]; k++)
			argv[n++] = !strcmp(r->args[k], "M") ? model : !strcmp(r->args[k], "T") ? tok : r->args[k];
		int good_n = n;
		for (char *w = strtok(bad, " "); w; w = strtok(NULL, " "))
			argv[n++] = !strcmp(w, "M") ? model : !strcmp(w, "T") ? tok : !strcmp(w, "O") ? xmd : w;
		argv[n] = NULL;
		char *out = NULL, *err = NULL;
		int st = run(env, argv, "", &out, &err);
		ck_assert_msg(st == 2, "row %zu (%s): exit %d, stderr: %s", i, r->bad, st, err);
		ck_assert_msg(strstr(err, r->says) != NULL, "row %zu: stderr says: %s", i, err);
		ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "row %zu: not one line: %s", i, err);
		ck_assert_msg(out[0] == '\0', "row %zu: printed: %s", i, out);
		free(out);
		free(err);
		/* Without the flag the command works. */
		argv[good_n] = NULL;
		st = run(env, argv, "", &out, &err);
		ck_assert_msg(st == 0, "row %zu without %s: exit %d, stderr: %s", i, r->bad, st, err);
		free(out);
		free(err);
	}
	ck_assert_int_ne(access(xmd, F_OK), 0);   /* -o was not obeyed either */
	free(xmd);
	for (int i = 0; env[i]; i++)
		free(env[i]);
	free(model);
	free(tok);
	free(mrel);
	free(trel);
	tmpdir_remove(dir);
}
END_TEST

/* Every command has its own --help (regenerate, branch and replay printed
 * the global usage). */
START_TEST(test_every_command_help)
{
	static const char *const cmds[] = { "run", "chat", "complete", "tokenize", "render", "info", "bench", "cache",
		"regenerate", "branch", "replay", "list", "show", "export", "import", "search", "rename", "rm",
		"presets", "perplexity", "quantize" };
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		const char *argv[] = { test_binary(), cmds[i], "--help", NULL };
		char *out = NULL, *err = NULL;
		ck_assert_int_eq(run_binary(argv, NULL, &out, &err, NULL, 30), 0);
		char want[64];
		snprintf(want, sizeof want, "usage: llama2-chat %s", cmds[i]);
		ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "%s --help: %.80s", cmds[i], out);
		free(out);
		free(err);
	}
}
END_TEST

/* Two flags that contradict each other, and a flag whose value is the
 * wrong kind of file, are refused in one line naming them (one of the two
 * was silently dropped, the folder read as an empty config). */
START_TEST(test_contradictions)
{
	char *dir = tmpdir_new();
	char *home;
	ck_assert_int_ge(asprintf(&home, "HOME=%s", dir), 0);
	const char *env[] = { home, "LLAMA2_CHAT_MODEL=", "LLAMA2_CHAT_DB=", NULL };
	char *mrel = fixture_path("models/fixture-q4_0.gguf");
	static const struct { const char *a[8]; int st; const char *says; } t[] = {
		{ { "-m", "M", "-p", "hi", "-c", "--resume", "abc" }, 2, "-c and --resume" },
		{ { "-m", "M", "-p", "hi", "--config", "D" }, 1, "Is a directory" },
		{ { "-m", "M", "-f", "/dev/null" }, 2, "-f /dev/null: the message is empty" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		const char *argv[12];
		int n = 0;
		argv[n++] = test_binary();
		for (int k = 0; k < 8 && t[i].a[k]; k++)
			argv[n++] = !strcmp(t[i].a[k], "M") ? mrel : !strcmp(t[i].a[k], "D") ? dir : t[i].a[k];
		argv[n] = NULL;
		char *out = NULL, *err = NULL;
		int st = run_binary(argv, "", &out, &err, env, 60);
		ck_assert_msg(st == t[i].st && strstr(err, t[i].says) && strchr(err, '\n') == err + strlen(err) - 1,
		    "case %zu: exit %d, stderr: %s", i, st, err);
		free(out);
		free(err);
	}
	free(mrel);
	free(home);
	tmpdir_remove(dir);
}
END_TEST

Suite *flags_suite(void);

Suite *
flags_suite(void)
{
	Suite *s = suite_create("flags");
	TCase *tc = tcase_create("flags");
	tcase_set_timeout(tc, 300);
	tcase_add_fixture_test(tc, test_flags_refused);
	tcase_add_test(tc, test_every_command_help);
	tcase_add_fixture_test(tc, test_contradictions);
	suite_add_tcase(s, tc);
	return s;
}
