/*
 * check_conventions.c: the real binary as users of llama-cli, ollama and
 * `llm` drive it first: --version and per-command help, global options
 * before the subcommand, the llama-cli spellings, plain-text search,
 * read-only databases, one exit-status rule over several commands, JSON
 * replies, Ctrl-C during -p, and the checks on mismatched tokenizers and
 * oversized contexts.  Each test runs in its own folder (HOME and the XDG
 * folders inside it), so nothing of the user's is read or written.
 */
#include "tests/testutil.h"

#include "engine/engine.h"
#include "storage/db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct conv {
	char *dir;
	char *env[10];
	char *db;                /* dir/chats.db */
	char *tiny;              /* llama-2-tiny-random.gguf */
};

static void
conv_init(struct conv *c)
{
	memset(c, 0, sizeof *c);
	c->dir = tmpdir_new();
	ck_assert_ptr_nonnull(c->dir);
	const char *fmt[] = { "HOME=%s", "XDG_CONFIG_HOME=%s/cfg", "XDG_DATA_HOME=%s/data",
		"XDG_CACHE_HOME=%s/cache", "XDG_STATE_HOME=%s/state", NULL };
	int i = 0;
	for (; fmt[i] != NULL; i++)
		ck_assert_int_ge(asprintf(&c->env[i], fmt[i], c->dir), 0);
	c->env[i++] = strdup("LLAMA2_CHAT_MODEL=");
	c->env[i++] = strdup("LLAMA2_CHAT_DB=");
	c->env[i] = NULL;
	ck_assert_int_ge(asprintf(&c->db, "%s/chats.db", c->dir), 0);
	/* Absolute: the tests link to it and run the binary elsewhere. */
	char *rel = fixture_path("models/llama-2-tiny-random.gguf");
	c->tiny = rel != NULL ? realpath(rel, NULL) : NULL;
	free(rel);
}

static void
conv_done(struct conv *c)
{
	for (int i = 0; c->env[i] != NULL; i++)
		free(c->env[i]);
	free(c->db);
	free(c->tiny);
	tmpdir_remove(c->dir);
}

static int
lines(const char *s)
{
	int n = 0;
	for (const char *p = s; *p; p++)
		n += *p == '\n';
	return n + (s[0] && s[strlen(s) - 1] != '\n');
}

/* Run argv (NULL-ended) with c's environment; returns the status. */
static int
conv_run(struct conv *c, const char *const *argv, const char *in, char **out, char **err)
{
	return run_binary(argv, in, out, err, (const char *const *)c->env, 60);
}

START_TEST(test_version_and_help)
{
	struct conv c;
	conv_init(&c);
	char *out, *err;
	const char *v1[] = { "x", "--version", NULL }, *v2[] = { "x", "-V", NULL };
	ck_assert_int_eq(conv_run(&c, v1, NULL, &out, &err), 0);
	ck_assert_msg(strncmp(out, "llama2-chat ", 12) == 0 && lines(out) == 1, "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(conv_run(&c, v2, NULL, &out, &err), 0);
	ck_assert_msg(strncmp(out, "llama2-chat ", 12) == 0, "%s", out);
	free(out);
	free(err);
	static const char *const cmds[] = { "tokenize", "bench", "cache", "complete", "render", "info", "chat",
		"run", "list", "show", "export", "import", "search", "rename", "rm", "presets" };
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		const char *argv[] = { "x", cmds[i], "--help", NULL };
		char want[64];
		snprintf(want, sizeof want, "usage: llama2-chat %s", cmds[i]);
		ck_assert_int_eq(conv_run(&c, argv, NULL, &out, &err), 0);
		ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "%s --help: %s", cmds[i], out);
		free(out);
		free(err);
	}
	/* The global usage names what the issue found missing. */
	const char *h[] = { "x", "--help", NULL };
	ck_assert_int_eq(conv_run(&c, h, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "--json") && strstr(out, "-r,") && strstr(out, "-p -") &&
	    strstr(out, " run ") && strstr(out, "-f, --file"), "%s", out);
	free(out);
	free(err);
	conv_done(&c);
}
END_TEST

/* `llama2-chat --db X list`, and a --db folder that does not exist yet. */
START_TEST(test_global_options_first)
{
	struct conv c;
	conv_init(&c);
	char *db, *folder, *out, *err;
	ck_assert_int_ge(asprintf(&folder, "%s/new/sub", c.dir), 0);
	ck_assert_int_ge(asprintf(&db, "%s/x.db", folder), 0);
	const char *a1[] = { "x", "--db", db, "list", NULL };
	ck_assert_msg(conv_run(&c, a1, NULL, &out, &err) == 0, "%s", err);
	ck_assert_msg(strstr(out, "No conversations") != NULL, "%s", out);
	struct stat sb;
	ck_assert_int_eq(stat(folder, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(db, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	free(out);
	free(err);
	/* The same through the environment, and --json before the command. */
	char *envdb;
	ck_assert_int_ge(asprintf(&envdb, "LLAMA2_CHAT_DB=%s/env/e.db", c.dir), 0);
	free(c.env[6]);
	c.env[6] = envdb;
	const char *a2[] = { "x", "--json", "list", NULL };
	ck_assert_msg(conv_run(&c, a2, NULL, &out, &err) == 0, "%s", err);
	ck_assert_msg(out[0] == '[', "%s", out);
	free(out);
	free(err);
	/* A value is never mistaken for the command: -m list is a file. */
	if (c.tiny != NULL) {
		const char *a3[] = { "x", "-m", c.tiny, "tokenize", "--no-bos", "Hello", NULL };
		ck_assert_msg(conv_run(&c, a3, NULL, &out, &err) == 0, "%s", err);
		ck_assert_str_eq(out, "15043\n");
		free(out);
		free(err);
	}
	free(db);
	free(folder);
	conv_done(&c);
}
END_TEST

/* llama-cli spellings: aliases where they mean something, else refused
 * with what to use (never read as bundles: -ngl 99 is not -n gl). */
START_TEST(test_llama_cli_spellings)
{
	struct conv c;
	conv_init(&c);
	struct { const char *argv[8]; int status; const char *needle; } cases[] = {
		{ { "x", "-ngl", "99", "-p", "hi", NULL }, 2, "CPU" },
		{ { "x", "--n-gpu-layers", "99", NULL }, 2, "GPU" },
		{ { "x", "--no-mmap", "-p", "hi", NULL }, 2, "--no-mmap" },
		{ { "x", "-c", "4096", NULL }, 2, "--ctx-size 4096" },
		{ { "x", "-c2048", NULL }, 2, "--ctx-size 2048" },
		{ { "x", "-cnv", "-p", "hi", NULL }, 2, "-cnv" },
		{ { "x", "--color", "--version", NULL }, 0, "llama2-chat " },
		{ { "x", "hello", NULL }, 2, "run" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		int st = conv_run(&c, cases[i].argv, NULL, &out, &err);
		ck_assert_msg(st == cases[i].status, "case %zu: %d (%s)", i, st, err);
		const char *where = st == 0 ? out : err;
		ck_assert_msg(strstr(where, cases[i].needle) != NULL, "case %zu: %s", i, where);
		if (st != 0)
			ck_assert_msg(lines(err) == 1 && strncmp(err, "llama2-chat: ", 13) == 0, "case %zu: %s", i, err);
		free(out);
		free(err);
	}
	if (c.tiny != NULL) {
		/* -sys is -s: the system prompt reaches the stored conversation. */
		char *out, *err;
		const char *a[] = { "x", "-m", c.tiny, "--db", c.db, "-sys", "be brief", "-p", "hi", "-n", "1", NULL };
		ck_assert_msg(conv_run(&c, a, NULL, &out, &err) == 0, "%s", err);
		free(out);
		free(err);
		const char *s[] = { "x", "--db", c.db, "list", "--json", NULL };
		ck_assert_int_eq(conv_run(&c, s, NULL, &out, &err), 0);
		json_t *j = json_loads(out, 0, NULL);
		ck_assert_msg(json_array_size(j) == 1, "%s", out);
		const char *pid = json_string_value(json_object_get(json_array_get(j, 0), "id"));
		const char *sh[] = { "x", "show", pid, "--db", c.db, "--json", NULL };
		char *o2, *e2;
		ck_assert_int_eq(conv_run(&c, sh, NULL, &o2, &e2), 0);
		ck_assert_msg(strstr(o2, "be brief") != NULL, "%s", o2);
		free(o2);
		free(e2);
		json_decref(j);
		free(out);
		free(err);
	}
	conv_done(&c);
}
END_TEST

START_TEST(test_tokenize_input)
{
	struct conv c;
	conv_init(&c);
	char *tb = fixture_path("models/tokenizer.bin"), *out, *err;
	const char *none[] = { "x", "tokenize", "--tokenizer", tb, NULL };
	ck_assert_int_eq(conv_run(&c, none, NULL, &out, &err), 2);
	ck_assert_msg(out[0] == '\0' && strstr(err, "what text") != NULL, "%s|%s", out, err);
	free(out);
	free(err);
	const char *dash[] = { "x", "tokenize", "--tokenizer", tb, "-", NULL };
	ck_assert_int_eq(conv_run(&c, dash, "Hello world", &out, &err), 0);
	ck_assert_str_eq(out, "1 15043 3186\n");
	free(out);
	free(err);
	free(tb);
	conv_done(&c);
}
END_TEST

/* ~ in paths, and the comment rule: '#' after white space starts one. */
START_TEST(test_config_home_and_comments)
{
	struct conv c;
	conv_init(&c);
	char *cfgdir, *cfg, *link, *out, *err;
	ck_assert_int_ge(asprintf(&cfgdir, "%s/cfg/llama2-chat", c.dir), 0);
	ck_assert_int_ge(asprintf(&cfg, "%s/config", cfgdir), 0);
	ck_assert_int_ge(asprintf(&link, "%s/m#1.gguf", c.dir), 0);
	ck_assert_int_eq(symlink(c.tiny, link), 0);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cfgdir);
	ck_assert_int_eq(system(cmd), 0);
	FILE *f = fopen(cfg, "w");
	fputs("model = ~/m#1.gguf   # my model\n", f);
	fputs("db = \"~/my # chats.db\"  # quoted: the # inside stays\n", f);
	fputs("threads = 1 # one\n", f);
	fclose(f);
	const char *info[] = { "x", "info", NULL };
	ck_assert_msg(conv_run(&c, info, NULL, &out, &err) == 0, "%s", err);
	ck_assert_msg(strstr(out, link) != NULL, "%s", out);
	free(out);
	free(err);
	const char *list[] = { "x", "list", NULL };
	ck_assert_msg(conv_run(&c, list, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	char *db;
	ck_assert_int_ge(asprintf(&db, "%s/my # chats.db", c.dir), 0);
	ck_assert_msg(access(db, F_OK) == 0, "%s not created", db);
	free(db);
	free(link);
	free(cfg);
	free(cfgdir);
	conv_done(&c);
}
END_TEST

/* Say a message through -p so that the database holds it. */
static void
say(struct conv *c, const char *text)
{
	char *out, *err;
	const char *a[] = { "x", "-m", c->tiny, "--db", c->db, "-n", "1", "--temp", "0", "-p", text, NULL };
	ck_assert_msg(conv_run(c, a, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
}

START_TEST(test_search_plain_words)
{
	struct conv c;
	conv_init(&c);
	say(&c, "what's the sky? I write C++ by e-mail");
	say(&c, "東京は大きい都市です");
	struct { const char *q; const char *hit; } cases[] = {
		{ "what's", "sky" }, { "sky?", "sky" }, { "C++", "C++" }, { "e-mail", "mail" },
		{ "東", "東京" }, { "東京", "東京" }, { "大きい都市", "都市" }, { "\"the sky\"", "sky" },
		{ "wri*", "write" }, { "nothing OR sky", "sky" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		const char *a[] = { "x", "search", "--db", c.db, "--json", cases[i].q, NULL };
		int st = conv_run(&c, a, NULL, &out, &err);
		ck_assert_msg(st == 0, "case %zu (%s): %d %s", i, cases[i].q, st, err);
		json_t *j = json_loads(out, 0, NULL);
		ck_assert_msg(json_array_size(j) >= 1, "case %zu (%s): no hit: %s", i, cases[i].q, out);
		const char *snip = json_string_value(json_object_get(json_array_get(j, 0), "snippet"));
		ck_assert_msg(snip && strstr(snip, cases[i].hit), "case %zu: %s", i, snip);
		json_decref(j);
		free(out);
		free(err);
	}
	/* No match is no hit, not an error; --fts is FTS5's own syntax. */
	char *out, *err;
	const char *none[] = { "x", "search", "--db", c.db, "--json", "zebra", NULL };
	ck_assert_int_eq(conv_run(&c, none, NULL, &out, &err), 0);
	ck_assert_str_eq(out, "[]\n");
	free(out);
	free(err);
	const char *raw[] = { "x", "search", "--db", c.db, "--fts", "e-mail", NULL };
	ck_assert_int_eq(conv_run(&c, raw, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "--fts") != NULL && lines(err) == 1, "%s", err);
	free(out);
	free(err);
	conv_done(&c);
}
END_TEST

/* Make path unwritable even for root (chattr +i), or by mode otherwise. */
static int
lock_path(const char *path, int on)
{
	char cmd[1024];
	if (geteuid() != 0)
		return chmod(path, on ? 0500 : 0700);
	snprintf(cmd, sizeof cmd, "chattr %ci '%s' 2>/dev/null", on ? '+' : '-', path);
	return system(cmd) == 0 ? 0 : -1;
}

START_TEST(test_readonly_database)
{
	struct conv c;
	conv_init(&c);
	say(&c, "hello from a read-only file");
	if (lock_path(c.db, 1) != 0 || lock_path(c.dir, 1) != 0) {
		lock_path(c.db, 0);
		fprintf(stderr, "check_conventions: cannot make a file read-only here (no chattr?)\n");
		conv_done(&c);
		return;
	}
	char *out, *err;
	const char *list[] = { "x", "list", "--db", c.db, "--json", NULL };
	int st = conv_run(&c, list, NULL, &out, &err);
	json_t *j = json_loads(out, 0, NULL);
	const char *pid = json_string_value(json_object_get(json_array_get(j, 0), "id"));
	char *p = pid ? strdup(pid) : NULL;
	json_decref(j);
	free(out);
	int ok_list = st == 0 && p != NULL;
	char *list_err = err;
	const char *search[] = { "x", "search", "--db", c.db, "read-only", NULL };
	int st_search = conv_run(&c, search, NULL, &out, &err);
	int ok_search = st_search == 0 && strstr(out, "read-only") != NULL;
	free(out);
	free(err);
	const char *show[] = { "x", "show", p ? p : "zz", "--db", c.db, NULL };
	int st_show = conv_run(&c, show, NULL, &out, &err);
	free(out);
	free(err);
	const char *ren[] = { "x", "rename", p ? p : "zz", "new", "--db", c.db, NULL };
	int st_ren = conv_run(&c, ren, NULL, &out, &err);
	char *ren_err = err;
	free(out);
	lock_path(c.dir, 0);
	lock_path(c.db, 0);
	ck_assert_msg(ok_list, "list: %s", list_err);
	ck_assert_msg(ok_search, "search failed on a read-only file");
	ck_assert_int_eq(st_show, 0);
	ck_assert_int_eq(st_ren, 1);
	ck_assert_msg(strstr(ren_err, "read-only") != NULL && lines(ren_err) == 1, "%s", ren_err);
	free(ren_err);
	free(list_err);
	free(p);
	conv_done(&c);
}
END_TEST

/* One rule for every command: 0 done, 1 failed, 2 usage, 130 interrupted;
 * every message one line "llama2-chat: ...". */
START_TEST(test_exit_status_rule)
{
	struct conv c;
	conv_init(&c);
	char *tb = fixture_path("models/tokenizer.bin");
	struct { const char *argv[8]; int status; } cases[] = {
		{ { "x", "list", "--frob", NULL }, 2 },
		{ { "x", "tokenize", "--frob", NULL }, 2 },
		{ { "x", "search", NULL }, 2 },
		{ { "x", "export", NULL }, 2 },
		{ { "x", "info", NULL }, 2 },
		{ { "x", "run", NULL }, 2 },
		{ { "x", "bench", "-r", "0", NULL }, 2 },
		{ { "x", "import", "/nonexistent/file.json", NULL }, 1 },
		{ { "x", "info", "-m", "/nonexistent/model.gguf", NULL }, 1 },
		{ { "x", "-m", "/nonexistent/model.gguf", "-p", "hi", NULL }, 1 },
		{ { "x", "tokenize", "--tokenizer", "/nonexistent/tok.bin", "hi", NULL }, 1 },
		{ { "x", "show", "zzzzzz", NULL }, 1 },
		{ { "x", "-f", "/nonexistent/question.txt", NULL }, 1 },
		{ { "x", "--config", "/nonexistent/config", "list", NULL }, 1 },
		{ { "x", "export", "--all", "-o", "x.md", "--format", "json", NULL }, 2 },
		{ { "x", "-p", "hi", "-f", "/etc/hostname", NULL }, 2 },
		{ { "x", "tokenize", "--tokenizer", tb, "hi", NULL }, 0 },
		{ { "x", "list", NULL }, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		int st = conv_run(&c, cases[i].argv, NULL, &out, &err);
		ck_assert_msg(st == cases[i].status, "case %zu (%s): %d, want %d: %s", i, cases[i].argv[1], st,
		    cases[i].status, err);
		if (st != 0)
			ck_assert_msg(lines(err) == 1 && strncmp(err, "llama2-chat: ", 13) == 0, "case %zu: %s", i, err);
		free(out);
		free(err);
	}
	free(tb);
	conv_done(&c);
}
END_TEST

START_TEST(test_tokenizer_mismatch)
{
	struct conv c;
	conv_init(&c);
	char *m = fixture_path("models/stories260K.bin"), *spm = fixture_path("models/tokenizer.model");
	char *out, *err;
	/* The 32,000-piece tokenizer.bin beside a 512-token model. */
	const char *a[] = { "x", "info", "-m", m, NULL };
	ck_assert_int_eq(conv_run(&c, a, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "32000") && strstr(err, "512") && lines(err) == 1, "%s", err);
	free(out);
	free(err);
	const char *b[] = { "x", "tokenize", "--tokenizer", spm, "hi", NULL };
	ck_assert_int_eq(conv_run(&c, b, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "SentencePiece") && strstr(err, "tokenizer.py"), "%s", err);
	free(out);
	free(err);
	/* The right size is accepted; past the training context needs --force. */
	char *tok = fixture_tok512(c.dir);
	const char *d[] = { "x", "-m", m, "--tokenizer", tok, "--ctx-size", "100000", "-p", "hi", "--no-save", NULL };
	ck_assert_int_eq(conv_run(&c, d, NULL, &out, &err), 2);
	ck_assert_msg(strstr(err, "512") && strstr(err, "--force"), "%s", err);
	free(out);
	free(err);
	const char *e[] = { "x", "-m", m, "--tokenizer", tok, "--ctx-size", "1024", "--force", "-p", "hi", "-n", "1",
		"--no-save", NULL };
	ck_assert_msg(conv_run(&c, e, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	free(tok);
	free(m);
	free(spm);
	conv_done(&c);
}
END_TEST

/* run QUESTION, -f FILE, -p - and --json: one object per reply. */
START_TEST(test_run_and_json)
{
	struct conv c;
	conv_init(&c);
	char *out, *err, *file;
	const char *r[] = { "x", "run", "-m", c.tiny, "--no-save", "-n", "3", "--temp", "0", "--json", "--ids",
		"hello", NULL };
	ck_assert_msg(conv_run(&c, r, NULL, &out, &err) == 0, "%s", err);
	ck_assert_int_eq(lines(out), 1);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	ck_assert_msg(j != NULL, "%s: %s", je.text, out);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "text")));
	ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "finish")));
	ck_assert_int_le(json_array_size(json_object_get(j, "ids")), 3);
	ck_assert_int_ge(json_array_size(json_object_get(j, "ids")), 1);
	ck_assert(json_is_integer(json_object_get(json_object_get(j, "stats"), "gen_tokens")));
	json_decref(j);
	free(out);
	free(err);
	/* -f FILE and -p - send the whole text as one message. */
	ck_assert_int_ge(asprintf(&file, "%s/q.txt", c.dir), 0);
	FILE *f = fopen(file, "w");
	fputs("first line\nsecond line\n", f);
	fclose(f);
	const char *fa[] = { "x", "-m", c.tiny, "--db", c.db, "-n", "1", "-f", file, NULL };
	ck_assert_msg(conv_run(&c, fa, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	const char *pa[] = { "x", "-m", c.tiny, "--db", c.db, "-n", "1", "-p", "-", NULL };
	ck_assert_msg(conv_run(&c, pa, "third\nfourth\n", &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	const char *l[] = { "x", "list", "--db", c.db, "--json", NULL };
	ck_assert_int_eq(conv_run(&c, l, NULL, &out, &err), 0);
	j = json_loads(out, 0, NULL);
	ck_assert_int_eq(json_array_size(j), 2);
	for (size_t i = 0; i < 2; i++)
		ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(j, i), "messages")), 2);
	json_decref(j);
	free(out);
	free(err);
	free(file);
	conv_done(&c);
}
END_TEST

/* A bad line in piped chat is reported by number and skipped. */
START_TEST(test_chat_bad_line)
{
	struct conv c;
	conv_init(&c);
	char *out, *err;
	const char *a[] = { "x", "chat", "-m", c.tiny, "--no-save", "-n", "2", "--json", NULL };
	int st = conv_run(&c, a, "hi\n\xff\xfe bad\nhello\n", &out, &err);
	ck_assert_msg(st == 1, "status %d: %s", st, err);
	ck_assert_msg(strstr(err, "line 2") != NULL && lines(err) == 1, "%s", err);
	ck_assert_int_eq(lines(out), 2);
	char *second = strchr(out, '\n') + 1;
	json_t *j = json_loads(second, JSON_DISABLE_EOF_CHECK, NULL);
	ck_assert_msg(j != NULL && json_integer_value(json_object_get(j, "line")) == 3, "%s", out);
	json_decref(j);
	free(out);
	free(err);
	conv_done(&c);
}
END_TEST

/* Ctrl-C during -p: exit 130, the reply kept and marked stopped. */
START_TEST(test_interrupt_exit_130)
{
	struct conv c;
	conv_init(&c);
	int pipefd[2];
	ck_assert_int_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		for (int i = 0; c.env[i] != NULL; i++)
			putenv(c.env[i]);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 2);
		execl(test_binary(), "llama2-chat", "-m", c.tiny, "--db", c.db, "--ignore-eos", "-n", "1000000",
		    "-p", "tell me a long story", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	char buf[256];
	ssize_t got = read(pipefd[0], buf, sizeof buf);   /* the reply has begun */
	ck_assert_int_gt(got, 0);
	kill(pid, SIGINT);
	while (read(pipefd[0], buf, sizeof buf) > 0)
		;
	close(pipefd[0]);
	int ws;
	ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
	ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 130, "status %x", ws);
	char *out, *err;
	const char *l[] = { "x", "list", "--db", c.db, "--json", NULL };
	ck_assert_int_eq(conv_run(&c, l, NULL, &out, &err), 0);
	json_t *j = json_loads(out, 0, NULL);
	const char *id = json_string_value(json_object_get(json_array_get(j, 0), "id"));
	ck_assert_ptr_nonnull(id);
	const char *sh[] = { "x", "show", id, "--db", c.db, "--json", NULL };
	char *o2, *e2;
	ck_assert_int_eq(conv_run(&c, sh, NULL, &o2, &e2), 0);
	ck_assert_msg(strstr(o2, "\"stopped\"") != NULL, "%s", o2);
	free(o2);
	free(e2);
	json_decref(j);
	free(out);
	free(err);
	conv_done(&c);
}
END_TEST

/* export: the format from -o's extension, any case, conflicts refused;
 * --all as one JSON array; import: the plain and OpenAI shapes, and the
 * same conversation twice skipped with a message. */
START_TEST(test_export_import_formats)
{
	struct conv c;
	conv_init(&c);
	say(&c, "export me");
	char *out, *err, *path;
	const char *l[] = { "x", "list", "--db", c.db, "--json", NULL };
	ck_assert_int_eq(conv_run(&c, l, NULL, &out, &err), 0);
	json_t *j = json_loads(out, 0, NULL);
	char *pid = strdup(json_string_value(json_object_get(json_array_get(j, 0), "id")));
	json_decref(j);
	free(out);
	free(err);
	struct { const char *file; const char *format; int status; const char *head; } cases[] = {
		{ "a.htm", NULL, 0, "<!DOCTYPE html>" }, { "b.HTML", NULL, 0, "<!DOCTYPE html>" },
		{ "c.json", NULL, 0, "{" }, { "d.txt", "TXT", 0, "" }, { "e.html", "json", 2, NULL },
		{ "f.pdf", NULL, 2, NULL }, { "g.pdf", "md", 0, "# " }, { "h", "Html", 0, "<!DOCTYPE html>" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_assert_int_ge(asprintf(&path, "%s/%s", c.dir, cases[i].file), 0);
		const char *a[] = { "x", "export", pid, "--db", c.db, "-o", path, cases[i].format ? "--format" : NULL,
			cases[i].format, NULL };
		int st = conv_run(&c, a, NULL, &out, &err);
		ck_assert_msg(st == cases[i].status, "case %zu (%s): %d %s", i, cases[i].file, st, err);
		if (st == 0) {
			FILE *f = fopen(path, "r");
			char buf[64] = "";
			ck_assert_ptr_nonnull(f);
			ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
			fclose(f);
			ck_assert_msg(strncmp(buf, cases[i].head, strlen(cases[i].head)) == 0, "case %zu: %s", i, buf);
		} else {
			ck_assert_msg(access(path, F_OK) != 0, "case %zu: %s written anyway", i, path);
			ck_assert_int_eq(lines(err), 1);
		}
		free(out);
		free(err);
		free(path);
	}
	/* The same export imported again is skipped, and says which it is. */
	ck_assert_int_ge(asprintf(&path, "%s/c.json", c.dir), 0);
	const char *imp[] = { "x", "import", path, "--db", c.db, NULL };
	ck_assert_int_eq(conv_run(&c, imp, NULL, &out, &err), 0);
	ck_assert_msg(strstr(err, "already stored as") && strstr(err, pid), "%s", err);
	ck_assert_str_eq(out, "");
	free(out);
	free(err);
	free(path);
	/* A plain array and an OpenAI-style object; the plain one twice. */
	ck_assert_int_ge(asprintf(&path, "%s/plain.json", c.dir), 0);
	FILE *f = fopen(path, "w");
	fputs("[{\"role\": \"user\", \"content\": \"plain question\"},"
	    " {\"role\": \"assistant\", \"content\": \"plain answer\"}]", f);
	fclose(f);
	const char *p1[] = { "x", "import", path, "--db", c.db, NULL };
	ck_assert_msg(conv_run(&c, p1, NULL, &out, &err) == 0, "%s", err);
	ck_assert_msg(strncmp(out, "imported as ", 12) == 0, "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(conv_run(&c, p1, NULL, &out, &err), 0);
	ck_assert_msg(strstr(err, "already stored as") != NULL, "%s", err);
	free(out);
	free(err);
	free(path);
	const char *oa = "{\"messages\": [{\"role\": \"system\", \"content\": \"be kind\"},"
	    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"openai question\"}]}]}";
	const char *p2[] = { "x", "import", "-", "--db", c.db, NULL };
	ck_assert_msg(conv_run(&c, p2, oa, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	/* export --all: one array of the three, which imports into a new file. */
	const char *all[] = { "x", "export", "--all", "--db", c.db, NULL };
	ck_assert_int_eq(conv_run(&c, all, NULL, &out, &err), 0);
	j = json_loads(out, 0, NULL);
	ck_assert_msg(json_array_size(j) == 3, "%s", out);
	json_decref(j);
	char *db2;
	ck_assert_int_ge(asprintf(&db2, "%s/other.db", c.dir), 0);
	const char *p3[] = { "x", "import", "-", "--db", db2, NULL };
	char *o2, *e2;
	ck_assert_msg(conv_run(&c, p3, out, &o2, &e2) == 0, "%s", e2);
	ck_assert_int_eq(lines(o2), 3);
	free(o2);
	free(e2);
	const char *s2[] = { "x", "search", "openai", "--db", db2, NULL };
	ck_assert_int_eq(conv_run(&c, s2, NULL, &o2, &e2), 0);
	ck_assert_msg(strstr(o2, "openai question") != NULL, "%s", o2);
	free(o2);
	free(e2);
	free(out);
	free(err);
	free(db2);
	free(pid);
	conv_done(&c);
}
END_TEST

/* Built-in presets are compiled in: --no-save does not need the database. */
START_TEST(test_builtin_preset_no_save)
{
	struct conv c;
	conv_init(&c);
	char *out, *err;
	const char *a[] = { "x", "-m", c.tiny, "--no-save", "--preset", "concise", "-n", "1", "-p", "hi", NULL };
	ck_assert_msg(conv_run(&c, a, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	const char *b[] = { "x", "-m", c.tiny, "--no-save", "--preset", "mine", "-n", "1", "-p", "hi", NULL };
	ck_assert_int_eq(conv_run(&c, b, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "built-in") && strstr(err, "--no-save") && lines(err) == 1, "%s", err);
	free(out);
	free(err);
	/* Nothing was written anywhere. */
	ck_assert_int_ne(access(c.db, F_OK), 0);
	char *data;
	ck_assert_int_ge(asprintf(&data, "%s/data/llama2-chat/chats.db", c.dir), 0);
	ck_assert_int_ne(access(data, F_OK), 0);
	free(data);
	conv_done(&c);
}
END_TEST

struct load_seen {
	int calls;
	uint64_t last, total;
	int monotonic;
};

static int
load_cb(void *ud, uint64_t done, uint64_t total)
{
	struct load_seen *l = ud;
	l->monotonic &= done >= l->last && done <= total;
	l->calls++;
	l->last = done;
	l->total = total;
	return 0;
}

/* The engine reads a model in through a callback, never printing; the
 * last call is the whole file. */
START_TEST(test_model_prefetch_progress)
{
	char *path = fixture_path("models/fixture-f32.gguf"), *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	struct load_seen l = { 0, 0, 0, 1 };
	ck_assert_int_eq(engine_prefetch(m, load_cb, &l), 0);
	ck_assert_int_ge(l.calls, 1);
	ck_assert(l.monotonic);
	ck_assert_uint_eq(l.last, l.total);
	ck_assert_uint_eq(l.total, engine_info(m)->file_size);
	ck_assert_int_eq(engine_prefetch(m, NULL, NULL), 0);
	engine_close(m);
	free(path);
}
END_TEST

/* --verbose speaks when the cache folder cannot take snapshots. */
START_TEST(test_verbose_readonly_cache)
{
	struct conv c;
	conv_init(&c);
	char *cache;
	ck_assert_int_ge(asprintf(&cache, "%s/cache", c.dir), 0);
	ck_assert_int_eq(mkdir(cache, 0700), 0);
	if (lock_path(cache, 1) != 0) {
		fprintf(stderr, "check_conventions: cannot make a folder read-only here (no chattr?)\n");
		free(cache);
		conv_done(&c);
		return;
	}
	char *out, *err;
	const char *a[] = { "x", "-m", c.tiny, "--db", c.db, "-n", "1", "-p", "hi", "--verbose", NULL };
	int st = conv_run(&c, a, NULL, &out, &err);
	const char *b[] = { "x", "-m", c.tiny, "--db", c.db, "-n", "1", "-p", "hi", NULL };
	char *o2, *e2;
	int st2 = conv_run(&c, b, NULL, &o2, &e2);
	lock_path(cache, 0);
	ck_assert_msg(st == 0 && strstr(err, "KV snapshots are off") != NULL, "%d %s", st, err);
	ck_assert_msg(st2 == 0 && e2[0] == '\0', "without --verbose: %s", e2);
	free(out);
	free(err);
	free(o2);
	free(e2);
	free(cache);
	conv_done(&c);
}
END_TEST

/* A read-only database from an older llama2-chat cannot be upgraded:
 * said so, in one line, and nothing is touched. */
START_TEST(test_readonly_old_schema)
{
	struct conv c;
	conv_init(&c);
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(c.db, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, db_migrations[0], NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	if (db_n_migrations < 2 || lock_path(c.db, 1) != 0 || lock_path(c.dir, 1) != 0) {
		lock_path(c.db, 0);
		conv_done(&c);
		return;
	}
	char *out, *err;
	const char *a[] = { "x", "list", "--db", c.db, NULL };
	int st = conv_run(&c, a, NULL, &out, &err);
	lock_path(c.dir, 0);
	lock_path(c.db, 0);
	ck_assert_int_eq(st, 1);
	ck_assert_msg(strstr(err, "older") && strstr(err, "read-only") && lines(err) == 1, "%s", err);
	free(out);
	free(err);
	conv_done(&c);
}
END_TEST

Suite *conventions_suite(void);

Suite *
conventions_suite(void)
{
	Suite *s = suite_create("conventions");
	TCase *tc = tcase_create("binary");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_version_and_help);
	tcase_add_fixture_test(tc, test_global_options_first);
	tcase_add_fixture_test(tc, test_llama_cli_spellings);
	tcase_add_fixture_test(tc, test_tokenize_input);
	tcase_add_fixture_test(tc, test_config_home_and_comments);
	tcase_add_fixture_test(tc, test_search_plain_words);
	tcase_add_fixture_test(tc, test_readonly_database);
	tcase_add_fixture_test(tc, test_exit_status_rule);
	tcase_add_fixture_test(tc, test_tokenizer_mismatch);
	tcase_add_fixture_test(tc, test_run_and_json);
	tcase_add_fixture_test(tc, test_chat_bad_line);
	tcase_add_fixture_test(tc, test_interrupt_exit_130);
	tcase_add_fixture_test(tc, test_export_import_formats);
	tcase_add_fixture_test(tc, test_builtin_preset_no_save);
	tcase_add_fixture_test(tc, test_model_prefetch_progress);
	tcase_add_fixture_test(tc, test_verbose_readonly_cache);
	tcase_add_test(tc, test_readonly_old_schema);
	suite_add_tcase(s, tc);
	return s;
}
