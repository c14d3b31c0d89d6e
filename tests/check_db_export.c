/*
 * check_db_export.c: export and import (suite db_export).  All four formats
 * write files (0600, never over an existing file without force, replaced
 * whole with it); the HTML escapes everything and loads nothing from
 * outside; JSON export -> import -> export is byte-identical apart from the
 * id, for a conversation with awkward content (quotes, control characters,
 * emoji, empty and absent token lists, a seed above 2^63, nested params,
 * reals); invalid UTF-8 left by a cut-off reply still exports; malformed
 * import documents are refused with nothing inserted; and the time format
 * round-trips.
 */
#include <check.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/db_int.h"
#include "storage/export.h"
#include "tests/testutil.h"

static char *tdir;
static struct db *tdb;

static void
setup(void)
{
	tdir = tmpdir_new();
	ck_assert_ptr_nonnull(tdir);
	char *p, *err = NULL;
	ck_assert_int_ge(asprintf(&p, "%s/chats.db", tdir), 0);
	tdb = db_open(p, &err);
	ck_assert_msg(tdb != NULL, "%s", err ? err : "");
	free(p);
}

static void
teardown(void)
{
	db_close(tdb);
	tmpdir_remove(tdir);
}

static char *
tpath(const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", tdir, name), 0);
	return p;
}

/* Whole file (malloc'd, NUL-terminated). */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s missing", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* A conversation with everything awkward in it; returns its rowid. */
static int64_t
make_awkward(void)
{
	char *err = NULL;
	struct db_conv c = {
		.model_name = "llama-2-7b-chat.Q4_0.gguf", .model_fingerprint = "gguf:1f2e3d",
		.system_prompt = "Answer \"exactly\".\nTwo lines, a tab\there.",
		.preset = "assistant",
		.params = "{\"temperature\":0.7,\"top_p\":0.95,\"top_k\":40,\"nested\":{\"a\":[1,2.5,null,true]}}",
	};
	ck_assert_int_eq(db_conv_create(tdb, &c, &err), 0);
	int32_t ut[] = { 1, 518, 25580, 29962 };
	struct db_message u = {
		.role = ROLE_USER, .tokens = ut, .n_tokens = 4,
		.content = "<script>alert('x')</script> & \"quotes\" \\ back\x01slash \xf0\x9f\xa6\x99 llama",
	};
	ck_assert_int_eq(db_message_append(tdb, c.id, &u, &err), 0);
	int64_t r;
	ck_assert_int_eq(db_reply_begin(tdb, c.id, "{\"temperature\":0.7,\"penalty_last_n\":-1}",
	    1, UINT64_MAX - 5, &r, &err), 0);
	int32_t rt[] = { 29871, -1, INT32_MAX, INT32_MIN, 0 };
	ck_assert_int_eq(db_reply_finish(tdb, r, "A *llama* is a camelid.\n\n```c\nint x = 1 < 2;\n```",
	    rt, 5, FINISH_EOS, "{\"tokens_per_s\":12.345678,\"prompt_ms\":0.1,\"n\":5}", &err), 0);
	struct db_message sys = { .role = ROLE_SYSTEM, .content = "", .tokens = ut, .n_tokens = 0 };
	ck_assert_int_eq(db_message_append(tdb, c.id, &sys, &err), 0);
	ck_assert_int_eq(db_reply_begin(tdb, c.id, NULL, 1, 42, &r, &err), 0);
	ck_assert_int_eq(db_reply_update(tdb, r, "cut off mid-", NULL, 0, &err), 0);
	return c.id;
}

static char *
export_string(int64_t id, enum export_format f)
{
	char *err = NULL, *buf = NULL;
	size_t len = 0;
	struct db_conv *c = db_conv_load(tdb, id, &err);
	ck_assert_msg(c != NULL, "%s", err);
	FILE *m = open_memstream(&buf, &len);
	ck_assert_msg(export_write(c, f, m, &err) == 0, "%s", err);
	fclose(m);
	db_conv_free(c);
	return buf;
}

START_TEST(test_formats_to_files)
{
	int64_t id = make_awkward();
	char *err = NULL;
	struct db_conv *c = db_conv_load(tdb, id, &err);
	static const struct { enum export_format f; const char *name, *must[3]; } cases[] = {
		{ EXPORT_MD, "c.md", { "## You", "## Assistant", "*(interrupted, incomplete)*" } },
		{ EXPORT_TXT, "c.txt", { "You:\n", "Assistant:\n", "[interrupted, incomplete]" } },
		{ EXPORT_JSON, "c.json", { "\"format\": \"llama2-chat\"", "\"tokens\": [1,518,25580,29962]",
		    "\"seed\": \"18446744073709551610\"" } },
		{ EXPORT_HTML, "c.html", { "<!DOCTYPE html>", "&lt;script&gt;alert(&#39;x&#39;)",
		    "<style>" } },
	};
	mode_t old = umask(0);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *p = tpath(cases[i].name);
		ck_assert_msg(export_file(c, cases[i].f, p, 0, &err) == 0, "case %zu: %s", i, err);
		struct stat sb;
		ck_assert_int_eq(stat(p, &sb), 0);
		ck_assert_msg((sb.st_mode & 0777) == 0600, "case %zu: mode %o", i, sb.st_mode & 0777);
		char *s = slurp(p);
		for (int k = 0; k < 3; k++)
			ck_assert_msg(strstr(s, cases[i].must[k]) != NULL, "case %zu lacks '%s'", i,
			    cases[i].must[k]);
		ck_assert_msg(strstr(s, "camelid") != NULL, "case %zu lacks the reply", i);
		free(s);
		free(p);
	}
	umask(old);
	db_conv_free(c);
}
END_TEST

START_TEST(test_html_is_self_contained)
{
	int64_t id = make_awkward();
	char *h = export_string(id, EXPORT_HTML);
	/* Nothing from outside, nothing that runs, nothing unescaped. */
	static const char *const banned[] = {
		"<script", "src=", "href=", "@import", "url(", "http:", "https:", "\x01",
		"<link", "'x'", "\"quotes\"",
	};
	for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
		ck_assert_msg(strstr(h, banned[i]) == NULL, "case %zu: found '%s'", i, banned[i]);
	ck_assert_ptr_nonnull(strstr(h, "&quot;quotes&quot;"));
	ck_assert_ptr_nonnull(strstr(h, "1 &lt; 2"));
	ck_assert_ptr_nonnull(strstr(h, "\xf0\x9f\xa6\x99"));     /* UTF-8 kept */
	ck_assert_ptr_nonnull(strstr(h, "back\xe2\x90\x81slash"));  /* U+0001 shown as U+2401 */
	ck_assert_ptr_nonnull(strstr(h, "<meta charset=\"utf-8\">"));
	free(h);
}
END_TEST

START_TEST(test_no_overwrite_without_force)
{
	int64_t id = make_awkward();
	char *err = NULL, *p = tpath("out.md");
	struct db_conv *c = db_conv_load(tdb, id, &err);
	FILE *f = fopen(p, "w");
	fputs("precious", f);
	fclose(f);
	chmod(p, 0640);
	ck_assert_int_eq(export_file(c, EXPORT_MD, p, 0, &err), -1);
	ck_assert_msg(strstr(err, p) && strstr(err, "already exists"), "%s", err);
	free(err);
	err = NULL;
	char *s = slurp(p);
	ck_assert_str_eq(s, "precious");
	free(s);
	ck_assert_int_eq(export_file(c, EXPORT_MD, p, 1, &err), 0);
	s = slurp(p);
	ck_assert_ptr_nonnull(strstr(s, "camelid"));
	free(s);
	/* No temporary left beside it. */
	char *cmd;
	ck_assert_int_ge(asprintf(&cmd, "test $(ls '%s' | grep -c '^out[.]md[.]') -eq 0", tdir), 0);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	/* An export into a missing folder fails cleanly. */
	char *bad = tpath("missing/x.md");
	ck_assert_int_eq(export_file(c, EXPORT_MD, bad, 0, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot create"));
	free(err);
	err = NULL;
	ck_assert_int_eq(export_file(c, EXPORT_MD, bad, 1, &err), -1);
	free(err);
	free(bad);
	db_conv_free(c);
	free(p);
}
END_TEST

/* a and b equal except for the line holding "id". */
static void
assert_same_but_id(const char *a, const char *b)
{
	const char *ia = strstr(a, "\n  \"id\": \""), *ib = strstr(b, "\n  \"id\": \"");
	ck_assert_ptr_nonnull(ia);
	ck_assert_ptr_nonnull(ib);
	ck_assert_int_eq(ia - a, ib - b);
	ck_assert_msg(strncmp(a, b, (size_t)(ia - a)) == 0, "heads differ");
	const char *ea = strchr(ia + 1, '\n'), *eb = strchr(ib + 1, '\n');
	ck_assert_msg(strcmp(ea, eb) == 0, "bodies differ:\n%s\n---\n%s", ea, eb);
	ck_assert_msg(strcmp(a, b) != 0, "the ids should differ");
}

START_TEST(test_json_round_trip)
{
	int64_t id = make_awkward();
	char *j1 = export_string(id, EXPORT_JSON), *err = NULL;
	char *p = tpath("c.json");
	FILE *f = fopen(p, "w");
	fputs(j1, f);
	fclose(f);
	int64_t id2;
	char pid[DB_PID_LEN + 1];
	ck_assert_msg(import_file(tdb, p, &id2, pid, &err) == 0, "%s", err);
	ck_assert_int_ne(id2, id);
	char *j2 = export_string(id2, EXPORT_JSON);
	assert_same_but_id(j1, j2);
	ck_assert_ptr_nonnull(strstr(j2, pid));

	/* And the loaded structs agree field by field. */
	struct db_conv *a = db_conv_load(tdb, id, &err), *b = db_conv_load(tdb, id2, &err);
	ck_assert_int_eq(a->n_messages, 4);
	ck_assert_int_eq(b->n_messages, a->n_messages);
	ck_assert(a->created == b->created && a->updated == b->updated);
	ck_assert_str_eq(b->system_prompt, a->system_prompt);
	for (int i = 0; i < a->n_messages; i++) {
		struct db_message *x = &a->messages[i], *y = &b->messages[i];
		ck_assert_msg(x->role == y->role && strcmp(x->content, y->content) == 0 &&
		    x->n_tokens == y->n_tokens && (x->tokens == NULL) == (y->tokens == NULL) &&
		    x->created == y->created && x->finish == y->finish && x->has_seed == y->has_seed &&
		    x->seed == y->seed && x->position == y->position, "message %d differs", i);
		if (x->n_tokens)
			ck_assert_mem_eq(x->tokens, y->tokens, x->n_tokens * sizeof *x->tokens);
	}
	ck_assert_ptr_null(a->messages[3].tokens);              /* absent stays absent */
	ck_assert_ptr_nonnull(b->messages[2].tokens);           /* empty stays empty */
	ck_assert_uint_eq(b->messages[2].n_tokens, 0);
	ck_assert(b->messages[1].seed == UINT64_MAX - 5);
	db_conv_free(a);
	db_conv_free(b);

	/* Import from a file a second time: yet another new id. */
	int64_t id3;
	ck_assert_int_eq(import_file(tdb, p, &id3, pid, &err), 0);
	ck_assert(id3 != id2 && id3 != id);
	free(j1);
	free(j2);
	free(p);
}
END_TEST

START_TEST(test_invalid_utf8_reply)
{
	char *err = NULL;
	struct db_conv c = { 0 };
	ck_assert_int_eq(db_conv_create(tdb, &c, &err), 0);
	int64_t r;
	ck_assert_int_eq(db_reply_begin(tdb, c.id, NULL, 0, 0, &r, &err), 0);
	/* Killed after the first two bytes of a four-byte emoji. */
	int32_t t[] = { 243, 162 };
	ck_assert_int_eq(db_reply_update(tdb, r, "ok \xf0\x9f", t, 2, &err), 0);
	char *j = export_string(c.id, EXPORT_JSON);
	ck_assert_ptr_nonnull(strstr(j, "\"content\": \"ok \xef\xbf\xbd\xef\xbf\xbd\""));
	ck_assert_ptr_nonnull(strstr(j, "\"tokens\": [243,162]"));
	free(j);
}
END_TEST

START_TEST(test_import_rejects)
{
	char *err = NULL;
	int64_t id = make_awkward();
	char *good = export_string(id, EXPORT_JSON);
	static const struct { const char *from, *to, *msg; } cases[] = {
		{ NULL, "not json {", "not valid JSON" },
		{ NULL, "[1,2,3]", "not a llama2-chat export" },
		{ "\"format\": \"llama2-chat\"", "\"format\": \"other\"", "not a llama2-chat export" },
		{ "\"version\": 1", "\"version\": 99", "unsupported export version" },
		{ "\"messages\": [", "\"messagez\": [", "\"messages\"" },
		{ "\"role\": \"user\"", "\"role\": \"wizard\"", "message 1: field \"role\"" },
		{ "\"tokens\": [1,518,", "\"tokens\": [1,5180000000,", "message 1: field \"tokens\"" },
		{ "\"tokens\": [1,518,", "\"tokens\": [1,\"518\",", "message 1: field \"tokens\"" },
		{ "\"finish\": \"eos\"", "\"finish\": \"done\"", "message 2: field \"finish\"" },
		{ "\"created\": \"20", "\"created\": \"yesterday", "field \"created\"" },
		{ "\"params\": {", "\"params\": 5, \"x\": {", "field \"params\"" },
		{ "\"seed\": 42", "\"seed\": -42", "message 4: field \"seed\"" },
		{ "\"fingerprint\":\"gguf:1f2e3d\"", "\"fingerprint\":7", "model.fingerprint" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *doc;
		if (cases[i].from == NULL) {
			doc = strdup(cases[i].to);
		} else {
			const char *at = strstr(good, cases[i].from);
			ck_assert_msg(at != NULL, "case %zu: '%s' not in the export", i, cases[i].from);
			ck_assert_int_ge(asprintf(&doc, "%.*s%s%s", (int)(at - good), good, cases[i].to,
			    at + strlen(cases[i].from)), 0);
		}
		char *p = tpath("bad.json");
		FILE *f = fopen(p, "w");
		fputs(doc, f);
		fclose(f);
		int64_t before = 0, after = 0, nid;
		char pid[DB_PID_LEN + 1];
		ck_assert_int_eq(db_conv_count(tdb, &before, &err), 0);
		err = NULL;
		ck_assert_msg(import_file(tdb, p, &nid, pid, &err) == -1, "case %zu imported", i);
		ck_assert_msg(err != NULL && strstr(err, cases[i].msg) != NULL && strstr(err, p) != NULL,
		    "case %zu: '%s' lacks '%s'", i, err ? err : "(null)", cases[i].msg);
		free(err);
		err = NULL;
		ck_assert_int_eq(db_conv_count(tdb, &after, &err), 0);
		ck_assert_msg(after == before, "case %zu: something was inserted", i);
		free(doc);
		free(p);
	}
	err = NULL;
	int64_t nid;
	char pid[DB_PID_LEN + 1];
	char *missing = tpath("nope.json");
	ck_assert_int_eq(import_file(tdb, missing, &nid, pid, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, missing));
	free(err);
	free(missing);
	free(good);
}
END_TEST

START_TEST(test_time_format)
{
	static const struct { int64_t t; const char *s; } cases[] = {
		{ 0, "1970-01-01T00:00:00.000Z" },
		{ 1714564800123LL, "2024-05-01T12:00:00.123Z" },
		{ 4102444799999LL, "2099-12-31T23:59:59.999Z" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char buf[EXPORT_TIME_LEN];
		int64_t back = -1;
		export_time_iso(cases[i].t, buf, sizeof buf);
		ck_assert_msg(strcmp(buf, cases[i].s) == 0, "case %zu: %s", i, buf);
		ck_assert_int_eq(export_time_parse(buf, &back), 0);
		ck_assert_msg(back == cases[i].t, "case %zu: back %lld", i, (long long)back);
	}
	int64_t t;
	ck_assert_int_eq(export_time_parse("2024-05-01T12:00:00Z", &t), 0);
	ck_assert_int_eq(t, 1714564800000LL);
	static const char *const bad[] = { "", "2024-05-01", "2024-13-01T00:00:00Z",
		"2024-05-01T12:00:00.12Z", "2024-05-01T12:00:00Zjunk" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(export_time_parse(bad[i], &t) == -1, "case %zu accepted", i);
	enum export_format f;
	ck_assert_int_eq(export_format_parse("markdown", &f), 0);
	ck_assert_int_eq(f, EXPORT_MD);
	ck_assert_int_eq(export_format_parse("pdf", &f), -1);
}
END_TEST

Suite *db_export_suite(void);

Suite *db_export_suite(void)
{
	Suite *s = suite_create("db_export");
	TCase *tc = tcase_create("db_export");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_formats_to_files);
	tcase_add_test(tc, test_html_is_self_contained);
	tcase_add_test(tc, test_no_overwrite_without_force);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_invalid_utf8_reply);
	tcase_add_test(tc, test_import_rejects);
	tcase_add_test(tc, test_time_format);
	suite_add_tcase(s, tc);
	return s;
}
