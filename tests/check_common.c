/*
 * check_common.c: the leaf utilities of common/ (suite common): UTF-8
 * validity at its edges (overlong forms, surrogates, past U+10FFFF,
 * truncation), whole-string numbers, atomic file replacement (the old
 * file survives an abort, the new one is 0600), one-line error messages.
 * Table-driven; a failure names its case.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/afile.h"
#include "common/errf.h"
#include "common/num.h"
#include "common/utf8.h"
#include "tests/testutil.h"

START_TEST(test_utf8)
{
	static const struct { const char *s; size_t len, want; } cases[] = {
		{ "a", 1, 1 }, { "\xc3\xa9", 2, 2 }, { "\xe4\xb8\xad", 3, 3 }, { "\xf0\x9f\x98\x80", 4, 4 },
		{ "\xc0\x80", 2, 0 },              /* overlong NUL */
		{ "\xe0\x80\xaf", 3, 0 },          /* overlong '/' */
		{ "\xed\xa0\x80", 3, 0 },          /* a surrogate */
		{ "\xf4\x90\x80\x80", 4, 0 },      /* past U+10FFFF */
		{ "\xe4\xb8", 2, 0 },              /* truncated */
		{ "\x80", 1, 0 }, { "\xff", 1, 0 }, { "", 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(utf8_seq_len(cases[i].s, cases[i].len) == cases[i].want, "case %zu", i);
	uint32_t cp;
	ck_assert_int_eq(utf8_decode("\xf0\x9f\x98\x80", 4, &cp), 4);
	ck_assert_uint_eq(cp, 0x1f600);
	ck_assert_int_eq(utf8_decode("\xed\xa0\x80", 3, &cp), 1);
	ck_assert_uint_eq(cp, 0xfffd);
	char out[4];
	ck_assert_int_eq(utf8_encode(0xe9, out), 2);
	ck_assert_mem_eq(out, "\xc3\xa9", 2);
	ck_assert_int_eq(utf8_encode(0xd800, out), 3);            /* not a character */
	ck_assert_mem_eq(out, "\xef\xbf\xbd", 3);
	ck_assert(utf8_valid("h\xc3\xa9llo", 6));
	ck_assert(!utf8_valid("a\0b", 3));                      /* NUL is refused */
	ck_assert(!utf8_valid("ab\xe4\xb8", 4));
	for (uint32_t c = 0; c <= 0x10ffff; c += 0x101) {     /* encode, then decode */
		size_t n = utf8_encode(c, out);
		ck_assert_int_eq(utf8_decode(out, n, &cp), n);
		ck_assert_uint_eq(cp, c >= 0xd800 && c <= 0xdfff ? 0xfffd : c);
	}
}
END_TEST

START_TEST(test_num)
{
	static const struct { const char *s; int ok; long long v; } ints[] = {
		{ "0", 1, 0 }, { "-5", 1, -5 }, { "100", 1, 100 }, { "101", 0, 0 }, { "-6", 0, 0 },
		{ " 5", 0, 0 }, { "5 ", 0, 0 }, { "5x", 0, 0 }, { "", 0, 0 }, { "99999999999999999999", 0, 0 },
		{ "0x10", 0, 0 },
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		long long v = 42;
		int rc = num_long(ints[i].s, -5, 100, &v);
		ck_assert_msg(rc == (ints[i].ok ? 0 : -1), "int case %zu", i);
		ck_assert_msg(v == (ints[i].ok ? ints[i].v : 42), "int case %zu: %lld", i, v);
	}
	static const struct { const char *s; int ok; } reals[] = {
		{ "0.5", 1 }, { "1", 1 }, { "1e0", 1 }, { "1.01", 0 }, { "nan", 0 }, { "inf", 0 }, { "", 0 },
		{ "0.5.", 0 }, { " 0.5", 0 },
	};
	for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
		double v;
		ck_assert_msg(num_double(reals[i].s, 0, 1, &v) == (reals[i].ok ? 0 : -1), "real case %zu", i);
	}
}
END_TEST

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char buf[256];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strdup(buf);
}

START_TEST(test_afile)
{
	char *dir = tmpdir_new();
	char path[4096];
	snprintf(path, sizeof path, "%s/file", dir);
	FILE *f = fopen(path, "w");
	fputs("old", f);
	fclose(f);
	struct afile a;
	ck_assert_int_eq(afile_open(&a, path), 0);
	ck_assert_int_eq(write(a.fd, "half", 4), 4);
	afile_abort(&a);                                  /* the old file stays */
	char *s = slurp(path);
	ck_assert_str_eq(s, "old");
	free(s);
	ck_assert_int_eq(afile_open(&a, path), 0);
	ck_assert_int_eq(write(a.fd, "new", 3), 3);
	ck_assert_int_eq(afile_commit(&a), 0);
	s = slurp(path);
	ck_assert_str_eq(s, "new");
	free(s);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* Nothing is left beside it. */
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof path, "%s/no/such/dir/file", dir);
	ck_assert_int_eq(afile_open(&a, path), -1);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_errf)
{
	char *e = NULL;
	ck_assert_int_eq(errf_set(&e, "bad %s", "na\nme\x1b[31m"), -1);
	ck_assert_str_eq(e, "bad na me?[31m");
	free(e);
	ck_assert_int_eq(errf_set(NULL, "ignored %d", 1), -1);
}
END_TEST

Suite *common_suite(void);

Suite *
common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("common");
	tcase_add_test(tc, test_utf8);
	tcase_add_test(tc, test_num);
	tcase_add_test(tc, test_afile);
	tcase_add_test(tc, test_errf);
	suite_add_tcase(s, tc);
	return s;
}
