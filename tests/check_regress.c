/*
 * check_regress.c: every input a fuzzer ever crashed on, replayed through
 * the same entry points (tests/fuzz/targets.c) in the normal build, plus
 * the hand-written seeds.  Inputs live in tests/fuzz/regress/<target>/ and
 * tests/fuzz/seeds/<target>/ (relative to the project root, where make
 * check runs; $LLAMA2_CHAT_REGRESS overrides the tests/fuzz folder).
 *
 * Each file runs in a child process of its own, so a crash names its file
 * and the engine's OpenMP threads never cross a fork.
 */
#include "tests/testutil.h"
#include "tests/fuzz/fuzz.h"

/* The targets are compiled into this suite directly: the Makefile builds
 * tests/check_*.c only, and the fuzzers build the same file with clang. */
#include "tests/fuzz/targets.c"

#include <dirent.h>
#include <sys/wait.h>

static const char *
fuzz_dir(void)
{
	const char *d = getenv("LLAMA2_CHAT_REGRESS");
	return d && *d ? d : "tests/fuzz";
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn over every file of <fuzz_dir>/<kind>/<target>/; returns how many. */
static int
replay_dir(const struct fuzz_target *t, const char *kind)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/%s/%s", fuzz_dir(), kind, t->name);
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		ck_assert_ptr_nonnull(names);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		FILE *f = fopen(path, "rb");
		ck_assert_msg(f != NULL, "%s: cannot open", path);
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0, r;
		do {
			if (len + 65536 > cap) {
				cap = (len + 65536) * 2;
				buf = realloc(buf, cap);
				ck_assert_ptr_nonnull(buf);
			}
			r = fread(buf + len, 1, cap - len, f);
			len += r;
		} while (r > 0);
		fclose(f);
		fflush(NULL);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			/* An exact-size copy, so that reading past the input is caught. */
			uint8_t *exact = malloc(len ? len : 1);
			memcpy(exact, buf, len);
			t->fn(exact, len);
			free(exact);
			_exit(0);
		}
		int st = 0;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s target: %s: %s %d", t->name, path,
		    WIFSIGNALED(st) ? "killed by signal" : "exit status",
		    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		free(buf);
		free(names[i]);
	}
	free(names);
	return (int)n;
}

static void
replay(int with_fixtures)
{
	int total = 0;
	for (const struct fuzz_target *t = fuzz_targets; t->name; t++) {
		if (t->needs_fixtures != with_fixtures)
			continue;
		total += replay_dir(t, "regress");
		total += replay_dir(t, "seeds");
	}
	fprintf(stderr, "regress: %d inputs replayed (%s)\n", total, with_fixtures ? "fixture targets" : "others");
}

START_TEST(test_regress_plain)
{
	replay(0);
}
END_TEST

START_TEST(test_regress_fixtures)
{
	replay(1);
}
END_TEST

/* The regression folders are where the suite looks: an empty or moved
 * folder would make the replay pass without testing anything. */
START_TEST(test_regress_present)
{
	int n = 0;
	for (const struct fuzz_target *t = fuzz_targets; t->name; t++) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/regress/%s", fuzz_dir(), t->name);
		DIR *d = opendir(dir);
		if (d == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL)
			n += e->d_name[0] != '.';
		closedir(d);
	}
	ck_assert_msg(n > 0, "no regression inputs under %s/regress", fuzz_dir());
}
END_TEST

Suite *regress_suite(void);

Suite *
regress_suite(void)
{
	Suite *s = suite_create("regress");
	TCase *tc = tcase_create("fuzz");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_regress_present);
	tcase_add_test(tc, test_regress_plain);
	tcase_add_fixture_test(tc, test_regress_fixtures);
	suite_add_tcase(s, tc);
	return s;
}
