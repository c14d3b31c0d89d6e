/*
 * check_db_cmd.c: the storage subcommands as a person or a script sees
 * them (suite db_cmd): command_run (the program's entry) with stdout, stderr and stdin
 * redirected to files.  Exit statuses (0, 1 runtime, 2 usage) and the
 * one-line error format; list/show/export/import/search/rename/rm/presets
 * on a real database; --json output parsed back; where the database is
 * found (--db, $LLAMA2_CHAT_DB, the config file's db, $XDG_DATA_HOME); no escape sequences
 * reach a non-terminal.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app/command.h"
#include "app/paths.h"
#include "storage/db_int.h"
#include "tests/testutil.h"

static char *tdir, *tdbpath;

static void
setup(void)
{
	tdir = tmpdir_new();
	ck_assert_ptr_nonnull(tdir);
	ck_assert_int_ge(asprintf(&tdbpath, "%s/chats.db", tdir), 0);
	setenv("LLAMA2_CHAT_DB", tdbpath, 1);
	unsetenv("NO_COLOR");
	/* No config file but the ones a test writes. */
	char *cfg;
	ck_assert_int_ge(asprintf(&cfg, "%s/config-home", tdir), 0);
	setenv("XDG_CONFIG_HOME", cfg, 1);
	free(cfg);
}

static void
teardown(void)
{
	unsetenv("LLAMA2_CHAT_DB");
	unsetenv("XDG_CONFIG_HOME");
	free(tdbpath);
	tmpdir_remove(tdir);
}

static char *
tpath(const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", tdir, name), 0);
	return p;
}

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

struct run {
	int rc;
	char *out, *err;
};

static void
run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* Run command_run on "llama2-chat" and the NULL-terminated argv, stdin from `in` (NULL:
 * /dev/null), and collect both outputs. */
static struct run
run(const char *in, const char *const *argv)
{
	char *po = tpath(".stdout"), *pe = tpath(".stderr"), *pi = tpath(".stdin");
	FILE *f = fopen(pi, "w");
	fputs(in != NULL ? in : "", f);
	fclose(f);
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2), si = dup(0);
	int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int fi = open(pi, O_RDONLY);
	ck_assert(fo >= 0 && fe >= 0 && fi >= 0);
	dup2(fo, 1);
	dup2(fe, 2);
	dup2(fi, 0);
	close(fo);
	close(fe);
	close(fi);
	clearerr(stdin);

	int argc = 0;
	while (argv[argc] != NULL)
		argc++;
	char **av = calloc((size_t)argc + 2, sizeof *av);
	av[0] = strdup("llama2-chat");
	for (int i = 0; i < argc; i++)
		av[i + 1] = strdup(argv[i]);    /* getopt may permute */
	struct run r;
	r.rc = command_run(argc + 1, av);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	dup2(si, 0);
	close(so);
	close(se);
	close(si);
	for (int i = 0; i <= argc; i++)
		free(av[i]);
	free(av);
	r.out = slurp(po);
	r.err = slurp(pe);
	free(po);
	free(pe);
	free(pi);
	return r;
}

#define RUN(in, ...) run((in), (const char *const[]){ __VA_ARGS__, NULL })

static int
count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Two conversations through the storage API; their public ids in a and b. */
static void
seed(char *a, char *b)
{
	char *err = NULL;
	struct db *d = db_open(tdbpath, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_conv c1 = { .model_name = "llama-2-7b-chat.Q4_0.gguf", .preset = "assistant" };
	ck_assert_int_eq(db_conv_create(d, &c1, &err), 0);
	struct db_message m = { .role = ROLE_USER, .content = "How do I bake sourdough bread?" };
	ck_assert_int_eq(db_message_append(d, c1.id, &m, &err), 0);
	int64_t r;
	ck_assert_int_eq(db_reply_begin(d, c1.id, NULL, 1, 5, &r, &err), 0);
	ck_assert_int_eq(db_reply_finish(d, r, "Feed the starter \x1b[31mtwice\x1b[0m a day.", NULL, 0,
	    FINISH_EOS, NULL, &err), 0);
	struct db_conv c2 = { 0 };
	ck_assert_int_eq(db_conv_create(d, &c2, &err), 0);
	struct db_message m2 = { .role = ROLE_USER, .content = "Translate: un caf\xc3\xa9" };
	ck_assert_int_eq(db_message_append(d, c2.id, &m2, &err), 0);
	strcpy(a, c1.pid);
	strcpy(b, c2.pid);
	db_close(d);
}

START_TEST(test_usage_errors)
{
	static const char *const cases[][8] = {
		{ "list", "--frob" },
		{ "list", "--limit", "many" },
		{ "list", "--limit" },
		{ "list", "extra" },
		{ "show" },
		{ "show", "a", "b" },
		{ "export", "abc", "--format", "pdf" },
		{ "export", "abc", "--json", "--format", "html" },
		{ "import" },
		{ "search" },
		{ "search", "x", "--limit", "0" },
		{ "rename", "abc" },
		{ "rename", "abc", " " },
		{ "rm" },
		{ "rm", "-q", "abc" },
		{ "presets", "frob" },
		{ "presets", "show" },
		{ "presets", "add", "x" },
		{ "presets", "add", "x", "--system", "y", "--top-p", "2" },
		{ "presets", "add", "x", "--system", "y", "--temp", "hot" },
		{ "presets", "edit", "x" },
		{ "presets", "edit", "x", "--from", "coder" },
		{ "presets", "rm", "a", "b" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct run r = run(NULL, cases[i]);
		ck_assert_msg(r.rc == 2, "case %zu (%s %s): rc %d, %s", i, cases[i][0],
		    cases[i][1] ? cases[i][1] : "", r.rc, r.err);
		ck_assert_msg(count_lines(r.err) == 1 && strncmp(r.err, "llama2-chat: ", 13) == 0 &&
		    strstr(r.err, " (try 'llama2-chat ") != NULL, "case %zu: stderr '%s'", i, r.err);
		ck_assert_msg(r.out[0] == '\0', "case %zu: stdout '%s'", i, r.out);
		run_free(&r);
	}
	/* Nothing was created by a command that stopped at its options. */
	ck_assert_int_eq(access(tdbpath, F_OK), -1);
	struct run r = RUN(NULL, "frobnicate");
	ck_assert_int_eq(r.rc, 2);
	run_free(&r);
	r = RUN(NULL, "export", "--help");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: llama2-chat export ID"));
	run_free(&r);
}
END_TEST

START_TEST(test_runtime_errors)
{
	char a[8], b[8];
	seed(a, b);
	char *exists = tpath("exists.md"), *garbage = tpath("garbage.db");
	FILE *f = fopen(exists, "w");
	fputs("keep", f);
	fclose(f);
	f = fopen(garbage, "w");
	fputs("this is not a database, just text that is long enough to have a header\n", f);
	fclose(f);
	char amb[2] = { a[0], 0 };
	/* Make a one-letter prefix ambiguous whatever the random ids are. */
	{
		char *err = NULL;
		struct db *d = db_open(tdbpath, &err);
		char *sql;
		ck_assert_int_ge(asprintf(&sql, "UPDATE conversations SET pid = '%c' || substr(pid, 2)",
		    a[0]), 0);
		ck_assert_int_eq(sqlite3_exec(d->h, sql, NULL, NULL, NULL), SQLITE_OK);
		free(sql);
		b[0] = a[0];
		db_close(d);
	}
	const struct { const char *argv[8]; const char *msg; } cases[] = {
		{ { "show", "zzzzzz" }, "no conversation with id 'zzzzzz'" },
		{ { "show", amb }, "is ambiguous" },
		{ { "rm", "--yes", "zzzzzz" }, "no conversation" },
		{ { "show", "x", "--db", "@garbage" }, "not an SQLite database" },
		{ { "list", "--db", "@garbage" }, "not an SQLite database" },
		{ { "presets", "rm", "assistant" }, "presets add NAME --from assistant" },
		{ { "presets", "edit", "coder", "--temp", "1" }, "built-in" },
		{ { "presets", "show", "nope" }, "no preset named 'nope'" },
		{ { "presets", "add", "dup", "--from", "nope" }, "no preset named 'nope'" },
		{ { "search", "--fts", "\"unterminated" }, "bad search query" },
		{ { "export", a, "-o", "@exists" }, "already exists (--force overwrites it)" },
		{ { "import", "/nonexistent/x.json" }, "/nonexistent/x.json" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *argv[9] = { 0 };
		for (int k = 0; k < 8 && cases[i].argv[k] != NULL; k++) {
			argv[k] = cases[i].argv[k];
			if (strcmp(argv[k], "@garbage") == 0)
				argv[k] = garbage;
			else if (strcmp(argv[k], "@exists") == 0)
				argv[k] = exists;
		}
		struct run r = run(NULL, argv);
		ck_assert_msg(r.rc == 1, "case %zu (%s): rc %d, %s", i, argv[0], r.rc, r.err);
		ck_assert_msg(count_lines(r.err) == 1 && strncmp(r.err, "llama2-chat: ", 13) == 0 &&
		    strstr(r.err, cases[i].msg) != NULL, "case %zu: stderr '%s' lacks '%s'", i, r.err,
		    cases[i].msg);
		run_free(&r);
	}
	char *s = slurp(exists);
	ck_assert_str_eq(s, "keep");
	free(s);
	/* rm with one bad id deletes nothing. */
	struct run r = RUN(NULL, "rm", "--yes", a, "zzzzzz");
	ck_assert_int_eq(r.rc, 1);
	run_free(&r);
	r = RUN(NULL, "show", a);
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	free(exists);
	free(garbage);
}
END_TEST

START_TEST(test_list_show_search)
{
	struct run r = RUN(NULL, "list");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.out, "No conversations yet.\n");
	run_free(&r);
	char a[8], b[8];
	seed(a, b);

	r = RUN(NULL, "list");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(count_lines(r.out), 3);
	ck_assert_msg(strncmp(r.out, "ID      UPDATED           MSGS  TITLE\n", 37) == 0, "%s", r.out);
	const char *l1 = strchr(r.out, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
	ck_assert_msg(strncmp(l1, b, 6) == 0 && strstr(l1, "     1  Translate: un caf\xc3\xa9\n") != NULL,
	    "%s", l1);
	ck_assert_msg(strncmp(l2, a, 6) == 0 && strstr(l2, "     2  How do I bake sourdough bread?\n"),
	    "%s", l2);
	run_free(&r);
	r = RUN(NULL, "list", "--limit", "1");
	ck_assert_int_eq(count_lines(r.out), 3);
	ck_assert_ptr_nonnull(strstr(r.out, "(1 of 2 shown; --limit 0 shows all)"));
	run_free(&r);

	r = RUN(NULL, "list", "--json");
	json_error_t je;
	json_t *j = json_loads(r.out, 0, &je);
	ck_assert_msg(json_is_array(j) && json_array_size(j) == 2, "%s", r.out);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 1), "id")), a);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(j, 1), "messages")), 2);
	json_decref(j);
	run_free(&r);

	char pre[4] = { a[0], a[1], a[2], 0 };
	r = RUN(NULL, "show", pre);
	ck_assert_msg(r.rc == 0 && strstr(r.out, "You:\nHow do I bake sourdough bread?\n") &&
	    strstr(r.out, "Assistant:\nFeed the starter"), "%s", r.out);
	run_free(&r);
	r = RUN(NULL, "show", a, "--json");
	j = json_loads(r.out, 0, &je);
	ck_assert_msg(j != NULL, "%s", je.text);
	ck_assert_int_eq(json_array_size(json_object_get(j, "messages")), 2);
	json_decref(j);
	run_free(&r);

	/* Search: not a terminal, so no escape sequence of ours or the message's. */
	r = RUN(NULL, "search", "starter");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(count_lines(r.out), 2);
	ck_assert_msg(strncmp(r.out, a, 6) == 0 && strstr(r.out, "#2 assistant") &&
	    strstr(r.out, "\n    Feed the starter ?[31mtwice?[0m a day.\n"), "%s", r.out);
	ck_assert_ptr_null(strchr(r.out, '\x1b'));
	ck_assert_ptr_null(strchr(r.out, '\x01'));
	run_free(&r);
	r = RUN(NULL, "search", "cafe", "--json");
	j = json_loads(r.out, 0, &je);
	ck_assert_msg(json_is_array(j) && json_array_size(j) == 1, "%s", r.out);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "snippet")),
	    "Translate: un caf\xc3\xa9");
	json_decref(j);
	run_free(&r);
	r = RUN(NULL, "search", "nomatch");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.out, "No messages match 'nomatch'.\n");
	run_free(&r);
}
END_TEST

START_TEST(test_export_import_rename_rm)
{
	char a[8], b[8];
	seed(a, b);
	char *md = tpath("a.md"), *html = tpath("a.html"), *js = tpath("a.json");
	struct run r = RUN(NULL, "export", a, "-o", md);
	ck_assert_msg(r.rc == 0 && r.out[0] == '\0', "%s", r.err);
	run_free(&r);
	struct stat sb;
	ck_assert_int_eq(stat(md, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	r = RUN(NULL, "export", a, "-o", md);
	ck_assert_int_eq(r.rc, 1);
	run_free(&r);
	/* A --format that the extension contradicts is refused, file kept. */
	r = RUN(NULL, "export", a, "-o", md, "--force", "--format", "txt");
	ck_assert_int_eq(r.rc, 2);
	run_free(&r);
	char *s = slurp(md);
	ck_assert_msg(strncmp(s, "# How do I bake", 15) == 0, "%s", s);
	free(s);
	r = RUN(NULL, "export", a, "-o", md, "--force", "--format", "MD");
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	r = RUN(NULL, "export", a, "-o", html);                /* format from the extension */
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	s = slurp(html);
	ck_assert(strncmp(s, "<!DOCTYPE html>", 15) == 0);
	free(s);
	r = RUN(NULL, "export", a);                            /* Markdown to stdout */
	ck_assert_msg(r.rc == 0 && strncmp(r.out, "# How do I bake", 15) == 0, "%s", r.out);
	/* export is the exact output: the message's own bytes pass through. */
	ck_assert_ptr_nonnull(strstr(r.out, "\x1b[31mtwice"));
	run_free(&r);

	r = RUN(NULL, "export", a, "--format", "json", "-o", js);
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	/* The export of a stored conversation is that conversation: skipped,
	 * unless --force asks for a copy. */
	r = RUN(NULL, "import", js);
	ck_assert_msg(r.rc == 0 && r.out[0] == '\0' && strstr(r.err, "already stored as"), "%s", r.err);
	run_free(&r);
	r = RUN(NULL, "import", js, "--force");
	ck_assert_msg(r.rc == 0 && strncmp(r.out, "imported as ", 12) == 0, "%s", r.err);
	char c[8];
	snprintf(c, sizeof c, "%.6s", r.out + 12);
	run_free(&r);
	s = slurp(js);
	r = RUN(s, "import", "-", "--json", "--force");        /* from standard input */
	ck_assert_msg(r.rc == 0 && strstr(r.out, "\"id\": \""), "%s %s", r.out, r.err);
	run_free(&r);
	free(s);
	r = RUN(NULL, "list", "--json");
	json_t *j = json_loads(r.out, 0, NULL);
	ck_assert_int_eq(json_array_size(j), 4);
	json_decref(j);
	run_free(&r);

	r = RUN(NULL, "rename", c, "Bread,", "imported");
	ck_assert_msg(r.rc == 0 && strstr(r.out, "Bread, imported"), "%s", r.err);
	run_free(&r);
	r = RUN(NULL, "list");
	ck_assert_ptr_nonnull(strstr(r.out, "Bread, imported\n"));
	run_free(&r);

	/* rm: no terminal on stdin, so no question; repeated ids count once. */
	r = RUN(NULL, "rm", c, c, b);
	ck_assert_msg(r.rc == 0 && count_lines(r.out) == 2 && strstr(r.out, "deleted "), "%s %s",
	    r.out, r.err);
	run_free(&r);
	r = RUN(NULL, "rm", "--json", a);
	j = json_loads(r.out, 0, NULL);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "deleted"), 0)), a);
	json_decref(j);
	run_free(&r);
	r = RUN(NULL, "list", "--json");
	j = json_loads(r.out, 0, NULL);
	ck_assert_int_eq(json_array_size(j), 1);
	json_decref(j);
	run_free(&r);
	free(md);
	free(html);
	free(js);
}
END_TEST

START_TEST(test_presets_cmd)
{
	struct run r = RUN(NULL, "presets");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(count_lines(r.out), 8);
	ck_assert_ptr_nonnull(strstr(r.out, "assistant    built-in  You are a helpful, respectful"));
	run_free(&r);
	r = RUN(NULL, "presets", "show", "assistant");
	ck_assert_msg(r.rc == 0 && strstr(r.out, "parameters: temperature 0.6, top_p 0.9") &&
	    strstr(r.out, "don't share false information."), "%s", r.out);
	run_free(&r);
	r = RUN(NULL, "presets", "add", "mine", "--from", "assistant", "--temp", "0.2", "--top-k", "40");
	ck_assert_msg(r.rc == 0, "%s", r.err);
	run_free(&r);
	r = RUN(NULL, "presets", "edit", "mine", "--system", "Be brief.", "--repeat-penalty", "1.1");
	ck_assert_msg(r.rc == 0, "%s", r.err);
	run_free(&r);
	r = RUN(NULL, "presets", "show", "mine", "--json");
	json_t *j = json_loads(r.out, 0, NULL);
	ck_assert_msg(j != NULL, "%s", r.out);
	json_t *p = json_object_get(j, "params");
	ck_assert(json_real_value(json_object_get(p, "temperature")) == 0.2);
	ck_assert(json_real_value(json_object_get(p, "top_p")) == 0.9);     /* from assistant */
	ck_assert_int_eq(json_integer_value(json_object_get(p, "top_k")), 40);
	ck_assert(json_real_value(json_object_get(p, "repeat_penalty")) == 1.1);
	ck_assert_str_eq(json_string_value(json_object_get(j, "system_prompt")), "Be brief.");
	ck_assert(json_is_false(json_object_get(j, "builtin")));
	json_decref(j);
	run_free(&r);
	r = RUN(NULL, "presets", "list", "--json");
	j = json_loads(r.out, 0, NULL);
	ck_assert_int_eq(json_array_size(j), 8);
	json_decref(j);
	run_free(&r);
	r = RUN(NULL, "presets", "rm", "mine");
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	r = RUN(NULL, "presets", "rm", "mine");
	ck_assert_int_eq(r.rc, 1);
	run_free(&r);
}
END_TEST

START_TEST(test_db_location)
{
	char *env = tpath("env.db"), *opt = tpath("opt.db"), *xdg = tpath("xdg");
	setenv("LLAMA2_CHAT_DB", env, 1);
	struct run r = RUN(NULL, "list");
	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	ck_assert_int_eq(access(env, F_OK), 0);
	r = RUN(NULL, "list", "--db", opt);                     /* --db wins */
	run_free(&r);
	ck_assert_int_eq(access(opt, F_OK), 0);
	unsetenv("LLAMA2_CHAT_DB");
	setenv("XDG_DATA_HOME", xdg, 1);
	r = RUN(NULL, "list");
	ck_assert_msg(r.rc == 0, "%s", r.err);
	run_free(&r);
	char *def = tpath("xdg/llama2-chat/chats.db"), *dir = tpath("xdg/llama2-chat");
	struct stat sb;
	ck_assert_int_eq(stat(def, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	unsetenv("XDG_DATA_HOME");
	free(env);
	free(opt);
	free(xdg);
	free(def);
	free(dir);
}
END_TEST

/* "db = FILE" in the config file reaches every storage command, below
 * $LLAMA2_CHAT_DB and --db; --config FILE is accepted by them too. */
START_TEST(test_db_from_config)
{
	char *cfgdir = tpath("config-home/llama2-chat"), *cfg = tpath("config-home/llama2-chat/config");
	char *cdb = tpath("conf.db"), *other = tpath("other.cfg"), *odb = tpath("other.db");
	char *env = tpath("env.db");
	ck_assert_int_eq(path_mkdirs(cfgdir), 0);
	FILE *f = fopen(cfg, "w");
	fprintf(f, "# test\ndb = %s\n", cdb);
	fclose(f);
	f = fopen(other, "w");
	fprintf(f, "db = %s\n", odb);
	fclose(f);
	unsetenv("LLAMA2_CHAT_DB");

	struct run r = RUN("", "import", "-");
	ck_assert_int_ne(r.rc, 0);      /* empty input; the file is opened all the same */
	run_free(&r);
	static const char *const cmds[][4] = {
		{ "list", NULL, NULL }, { "search", "word", NULL }, { "presets", NULL, NULL },
		{ "show", "zz", NULL }, { "rm", "zz", NULL }, { "rename", "zz", "t" }, { "export", "zz", NULL },
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		unlink(cdb);
		r = run(NULL, cmds[i]);
		ck_assert_msg(access(cdb, F_OK) == 0, "case %zu (%s): config db not used: %s", i, cmds[i][0], r.err);
		ck_assert_msg(access(tdbpath, F_OK) != 0, "case %zu: default db used", i);
		run_free(&r);
	}
	r = RUN(NULL, "list", "--config", other);
	ck_assert_msg(r.rc == 0, "%s", r.err);
	ck_assert_int_eq(access(odb, F_OK), 0);
	run_free(&r);
	setenv("LLAMA2_CHAT_DB", env, 1);       /* the environment beats the file */
	r = RUN(NULL, "list");
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(access(env, F_OK), 0);
	run_free(&r);
	unlink(cdb);
	f = fopen(cfg, "w");
	fputs("db = \ntop_k = nope\n", f);     /* a bad file stops every command */
	fclose(f);
	r = RUN(NULL, "list");
	ck_assert_int_eq(r.rc, 2);
	ck_assert_ptr_nonnull(strstr(r.err, "config"));
	run_free(&r);
	free(cfgdir);
	free(cfg);
	free(cdb);
	free(other);
	free(odb);
	free(env);
}
END_TEST

Suite *db_cmd_suite(void);

Suite *db_cmd_suite(void)
{
	Suite *s = suite_create("db_cmd");
	TCase *tc = tcase_create("db_cmd");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_runtime_errors);
	tcase_add_test(tc, test_list_show_search);
	tcase_add_test(tc, test_export_import_rename_rm);
	tcase_add_test(tc, test_presets_cmd);
	tcase_add_test(tc, test_db_location);
	tcase_add_test(tc, test_db_from_config);
	suite_add_tcase(s, tc);
	return s;
}
