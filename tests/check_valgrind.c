/*
 * check_valgrind.c: valgrind memcheck over a short scripted chat (two
 * messages piped into `chat` with a fixture model and a fresh database)
 * and an export of the result: no invalid reads or writes, no use of
 * uninitialised values, no definitely-lost memory.
 *
 * The binary: $LLAMA2_CHAT_VALGRIND_BIN, else build/portable/llama2-chat
 * when it exists, else the binary under test.  A -march=native build may
 * use AVX-512, which valgrind cannot execute; such a binary is detected by
 * a probe run and the test is then skipped (and counted) with a hint:
 * `make check-valgrind` builds the portable binary and runs this suite.
 * Skipped as well without valgrind, and in sanitizer builds (ASan and
 * valgrind do not mix).  OpenMP runs with one thread; tests/valgrind.supp
 * holds suppressions for the runtime's own allocations, never ours.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *
valgrind_path(void)
{
	static const char *const cands[] = { "/usr/bin/valgrind", "/usr/local/bin/valgrind", NULL };
	for (int i = 0; cands[i]; i++)
		if (access(cands[i], X_OK) == 0)
			return cands[i];
	return NULL;
}

static const char *
vg_binary(void)
{
	const char *b = getenv("LLAMA2_CHAT_VALGRIND_BIN");
	if (b && *b)
		return b;
	if (access("build/portable/llama2-chat", X_OK) == 0)
		return "build/portable/llama2-chat";
	return test_binary();
}

/* Run the binary under valgrind with args (after the binary), stdin_data,
 * in dir; returns the status, *log valgrind's report. */
static int
run_vg(const char *dir, const char *const *args, const char *stdin_data, char **log)
{
	const char *bin = vg_binary();
	char logpath[4096], supp[4200], logopt[4200], suppopt[4300];
	snprintf(logpath, sizeof logpath, "%s/valgrind.log", dir);
	snprintf(logopt, sizeof logopt, "--log-file=%s", logpath);
	ck_assert_ptr_nonnull(realpath("tests/valgrind.supp", supp));
	snprintf(suppopt, sizeof suppopt, "--suppressions=%s", supp);
	const char *argv[64] = { "x", "--error-exitcode=9", "--leak-check=full", "--errors-for-leak-kinds=definite",
		"--show-leak-kinds=definite", "--track-origins=yes", "--num-callers=30", suppopt, logopt, bin };
	int n = 10;
	for (int i = 0; args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char *xc, *xd, *xs, *xk;
	ck_assert_int_ge(asprintf(&xc, "XDG_CONFIG_HOME=%s/config", dir), 0);
	ck_assert_int_ge(asprintf(&xd, "XDG_DATA_HOME=%s/data", dir), 0);
	ck_assert_int_ge(asprintf(&xs, "XDG_STATE_HOME=%s/state", dir), 0);
	ck_assert_int_ge(asprintf(&xk, "XDG_CACHE_HOME=%s/cache", dir), 0);
	const char *env[] = { xc, xd, xs, xk, "OMP_NUM_THREADS=1", "LLAMA2_CHAT_DB=", "LLAMA2_CHAT_MODEL=", NULL };
	/* run_binary runs LLAMA2_CHAT_BIN: point it at valgrind for this call. */
	char *saved = getenv("LLAMA2_CHAT_BIN") ? strdup(getenv("LLAMA2_CHAT_BIN")) : NULL;
	setenv("LLAMA2_CHAT_BIN", valgrind_path(), 1);
	char *out, *err;
	int st = run_binary(argv, stdin_data, &out, &err, env, 300);
	if (saved) {
		setenv("LLAMA2_CHAT_BIN", saved, 1);
		free(saved);
	} else {
		unsetenv("LLAMA2_CHAT_BIN");
	}
	free(out);
	free(err);
	free(xc);
	free(xd);
	free(xs);
	free(xk);
	FILE *f = fopen(logpath, "r");
	char *b = calloc(1, 1 << 20);
	if (f) {
		size_t r = fread(b, 1, (1 << 20) - 1, f);
		b[r] = '\0';
		fclose(f);
	}
	*log = b;
	return st;
}

/* Can valgrind run this build at all?  (Decided when the suite is made, so
 * that a skip is counted.)  The probe runs the kernels (one token of a
 * fixture): whether --help alone meets an AVX-512 instruction depends on
 * how the compiler vectorized the option parsing, so it decided nothing. */
static int
vg_runnable(void)
{
	char *m = fixture_path("models/fixture-q4_0.gguf");
	if (m == NULL)
		return 0;
	const char *argv[] = { "x", "-q", vg_binary(), "complete", "-m", m, "-n", "1", "--temp", "0", "hi", NULL };
	char *saved = getenv("LLAMA2_CHAT_BIN") ? strdup(getenv("LLAMA2_CHAT_BIN")) : NULL;
	setenv("LLAMA2_CHAT_BIN", valgrind_path(), 1);
	char *out = NULL, *err = NULL;
	int st = run_binary(argv, NULL, &out, &err, NULL, 60);
	if (saved) {
		setenv("LLAMA2_CHAT_BIN", saved, 1);
		free(saved);
	} else {
		unsetenv("LLAMA2_CHAT_BIN");
	}
	int ok = !(err && (strstr(err, "unhandled instruction") || strstr(err, "SIGILL"))) && st != 132;
	free(m);
	free(out);
	free(err);
	return ok;
}

START_TEST(test_valgrind_chat)
{
	char *m = fixture_path("models/fixture-q4_0.gguf");
	ck_assert_ptr_nonnull(m);
	char *dir = tmpdir_new();
	char db[4096], exp[4200];
	snprintf(db, sizeof db, "%s/x.db", dir);
	snprintf(exp, sizeof exp, "%s/conv.json", dir);

	char *log;
	int st;
	const char *chat[] = { "chat", "-m", m, "-n", "8", "--db", db, "--temp", "0", NULL };
	st = run_vg(dir, chat, "hi\nmore\n", &log);
	ck_assert_msg(st == 0, "chat under valgrind: status %d\n%s", st, log);
	ck_assert_msg(strstr(log, "ERROR SUMMARY: 0 errors") != NULL, "chat: valgrind reports errors:\n%s", log);
	free(log);

	const char *ex[] = { "export", "1", "--db", db, "-o", exp, NULL };
	/* The public id is random: take it from `list`. */
	const char *ls[] = { "x", "list", "--db", db, "--json", NULL };
	char *out, *err;
	ck_assert_int_eq(run_binary(ls, NULL, &out, &err, NULL, 30), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	ck_assert_msg(j != NULL, "list --json: %s", out);
	ex[1] = json_string_value(json_object_get(json_array_get(j, 0), "id"));
	ck_assert_ptr_nonnull(ex[1]);
	st = run_vg(dir, ex, NULL, &log);
	ck_assert_msg(st == 0, "export under valgrind: status %d\n%s", st, log);
	ck_assert_msg(strstr(log, "ERROR SUMMARY: 0 errors") != NULL, "export: valgrind reports errors:\n%s", log);
	free(log);
	json_decref(j);
	free(out);
	free(err);
	free(m);
	tmpdir_remove(dir);
}
END_TEST

Suite *valgrind_suite(void);

Suite *
valgrind_suite(void)
{
	Suite *s = suite_create("valgrind");
	TCase *tc = tcase_create("memcheck");
	tcase_set_timeout(tc, 600);
	const char *why = NULL;
#if defined(__SANITIZE_ADDRESS__)
	why = "a sanitizer build";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	why = "a sanitizer build";
#endif
#endif
	if (why == NULL && valgrind_path() == NULL)
		why = "no valgrind";
	if (why == NULL && fixtures_present() && !vg_runnable())
		why = "the binary uses instructions valgrind cannot run (-march=native); "
		    "make check-valgrind builds a portable one";
	if (why == NULL) {
		tcase_add_fixture_test(tc, test_valgrind_chat);
	} else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_valgrind_chat (%s)\n", why);
	}
	suite_add_tcase(s, tc);
	return s;
}
