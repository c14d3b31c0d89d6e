/*
 * check_db.c: the storage suite, against real SQLite files in a temporary
 * folder.  Schema and migrations (a hand-made version-0 file, a runner
 * upgrade to a later step, a failing step that must leave the old version,
 * a file from the future, another program's database); conversations,
 * messages and streaming replies; titles; public ids and prefixes; FTS5
 * search including malformed queries; presets and settings; file modes.
 * Faults: SQLITE_FULL forced mid-reply with max_page_count, random bytes,
 * a text file, damaged pages, a writer holding the lock, two connections
 * taking turns, a read-only folder and file (as an unprivileged child when
 * run as root), and kill -9 of a child process while it streams a reply.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/db_int.h"
#include "tests/testutil.h"

/* ---- helpers -------------------------------------------------------------- */

static char *tdir;

static void
setup(void)
{
	tdir = tmpdir_new();
	ck_assert_ptr_nonnull(tdir);
}

static void
teardown(void)
{
	tmpdir_remove(tdir);
	tdir = NULL;
}

/* malloc'd "<tdir>/<name>" */
static char *
tpath(const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", tdir, name), 0);
	return p;
}

static struct db *
open_ok(const char *path)
{
	char *err = NULL;
	struct db *d = db_open(path, &err);
	ck_assert_msg(d != NULL, "db_open(%s): %s", path, err ? err : "?");
	return d;
}

/* One integer from a query on the raw handle. */
static long long
q_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(h));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row (%s)", sql, sqlite3_errmsg(h));
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One text value (malloc'd) from a query on the raw handle. */
static char *
q_text(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
	    sqlite3_errmsg(h));
	ck_assert_msg(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
	const unsigned char *t = sqlite3_column_text(st, 0);
	char *s = strdup(t ? (const char *)t : "");
	sqlite3_finalize(st);
	return s;
}

static void
exec_ok(sqlite3 *h, const char *sql)
{
	char *m = NULL;
	ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, &m) == SQLITE_OK, "%s: %s", sql, m ? m : "");
}

/* PRAGMA integrity_check and the FTS index's own check both pass. */
static void
assert_consistent(sqlite3 *h)
{
	char *ic = q_text(h, "PRAGMA integrity_check");
	ck_assert_str_eq(ic, "ok");
	free(ic);
	exec_ok(h, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)");
	ck_assert_int_eq(q_int(h, "SELECT count(*) FROM conversations c WHERE n_messages !="
	    " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"), 0);
}

static int64_t
new_conv(struct db *d, const char *title)
{
	struct db_conv c = { .title = (char *)title };
	char *err = NULL;
	ck_assert_msg(db_conv_create(d, &c, &err) == 0, "create: %s", err);
	return c.id;
}

static int64_t
add_msg(struct db *d, int64_t conv, enum role role, const char *text)
{
	struct db_message m = { .role = role, .content = (char *)text };
	char *err = NULL;
	ck_assert_msg(db_message_append(d, conv, &m, &err) == 0, "append: %s", err);
	return m.id;
}

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* ---- schema, migrations, files --------------------------------------- */

START_TEST(test_open_creates_0600)
{
	char *p = tpath("chats.db");
	mode_t old = umask(0);         /* the most permissive umask there is */
	struct db *d = open_ok(p);
	umask(old);
	add_msg(d, new_conv(d, NULL), ROLE_USER, "hello");   /* makes -wal and -shm */
	const char *suffix[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		char *f;
		ck_assert_int_ge(asprintf(&f, "%s%s", p, suffix[i]), 0);
		struct stat sb;
		ck_assert_msg(stat(f, &sb) == 0, "%s missing", f);
		ck_assert_msg((sb.st_mode & 0777) == 0600, "case %d: %s has mode %o", i, f,
		    sb.st_mode & 0777);
		free(f);
	}
	ck_assert_str_eq(db_path(d), p);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_schema_fresh)
{
	char *p = tpath("chats.db");
	struct db *d = open_ok(p);
	ck_assert_int_eq(q_int(d->h, "PRAGMA user_version"), db_n_migrations);
	char *jm = q_text(d->h, "PRAGMA journal_mode");
	ck_assert_str_eq(jm, "wal");
	free(jm);
	ck_assert_int_eq(q_int(d->h, "PRAGMA foreign_keys"), 1);
	static const char *const objects[] = {
		"conversations", "messages", "messages_fts", "presets", "settings",
		"conversations_by_updated", "messages_ai", "messages_ad", "messages_au",
		"presets_builtin_update", "presets_builtin_delete",
	};
	for (size_t i = 0; i < sizeof objects / sizeof objects[0]; i++) {
		char *sql;
		ck_assert_int_ge(asprintf(&sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
		    objects[i]), 0);
		ck_assert_msg(q_int(d->h, sql) == 1, "case %zu: %s missing", i, objects[i]);
		free(sql);
	}
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM presets WHERE builtin"), 7);
	/* A second open of an up-to-date file changes nothing. */
	db_close(d);
	d = open_ok(p);
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM presets"), 7);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_migrate_from_version_0)
{
	/* A version-0 file made by hand: a real SQLite database, no tables. */
	char *p = tpath("old.db");
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	exec_ok(h, "PRAGMA page_size = 8192; CREATE TABLE t(x); DROP TABLE t;");
	ck_assert_int_eq(q_int(h, "PRAGMA user_version"), 0);
	sqlite3_close(h);

	struct db *d = open_ok(p);
	ck_assert_int_eq(q_int(d->h, "PRAGMA user_version"), db_n_migrations);
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM presets WHERE builtin"), 7);
	ck_assert_int_eq(q_int(d->h, "PRAGMA page_size"), 8192);
	int64_t c = new_conv(d, "t");
	add_msg(d, c, ROLE_USER, "works after the upgrade");
	assert_consistent(d->h);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_migrate_runner)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t c = new_conv(d, "kept");
	add_msg(d, c, ROLE_USER, "kept through upgrades");

	/* An upgrade from this build's version N to a (test-only) N + 1,
	 * whatever N is: the real steps, then the test's. */
	const int N = db_n_migrations;
	const char *steps[16];
	ck_assert_int_le(N + 2, 16);
	for (int i = 0; i < N; i++)
		steps[i] = db_migrations[i];
	steps[N] = "ALTER TABLE conversations ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"
	    "CREATE INDEX conversations_pinned ON conversations(pinned);";
	steps[N + 1] = "CREATE TABLE extra(x); THIS IS NOT SQL;";
	ck_assert_msg(db_migrate_steps(d, steps, N + 1, &err) == 0, "%s", err);
	ck_assert_int_eq(q_int(d->h, "PRAGMA user_version"), N + 1);
	ck_assert_int_eq(q_int(d->h, "SELECT pinned FROM conversations WHERE title = 'kept'"), 0);
	ck_assert_int_eq(q_int(d->h, "SELECT n_messages FROM conversations WHERE title = 'kept'"), 1);
	/* Running it again is a no-op. */
	ck_assert_int_eq(db_migrate_steps(d, steps, N + 1, &err), 0);

	/* A step that fails half-way leaves version N + 1 and none of its changes. */
	ck_assert_int_eq(db_migrate_steps(d, steps, N + 2, &err), -1);
	ck_assert_ptr_nonnull(err);
	char want[32];
	snprintf(want, sizeof want, "version %d", N + 2);
	ck_assert_msg(strstr(err, want) != NULL && strstr(err, p) != NULL, "%s", err);
	free(err);
	err = NULL;
	ck_assert_int_eq(q_int(d->h, "PRAGMA user_version"), N + 1);
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM sqlite_schema WHERE name = 'extra'"), 0);
	db_close(d);

	/* This build knows up to N: a version N + 1 file is refused, untouched. */
	ck_assert_ptr_null(db_open(p, &err));
	ck_assert_msg(err != NULL && strstr(err, "newer") != NULL, "%s", err ? err : "");
	free(err);
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	ck_assert_int_eq(q_int(h, "PRAGMA user_version"), N + 1);
	sqlite3_close(h);
	free(p);
}
END_TEST

START_TEST(test_foreign_database_refused)
{
	char *p = tpath("other.db"), *err = NULL;
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	exec_ok(h, "CREATE TABLE accounts(id, balance); INSERT INTO accounts VALUES (1, 100);");
	sqlite3_close(h);
	ck_assert_ptr_null(db_open(p, &err));
	ck_assert_msg(err != NULL && strstr(err, "not a llama2-chat database") != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	ck_assert_int_eq(q_int(h, "SELECT count(*) FROM sqlite_schema"), 1);
	sqlite3_close(h);
	free(p);
}
END_TEST

/* ---- conversations and messages ---------------------------------------- */

START_TEST(test_crud)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	struct db_conv c = {
		.model_name = "llama-2-7b-chat.Q4_0.gguf", .model_fingerprint = "sha256:abc",
		.system_prompt = "Be brief.", .preset = "concise",
		.params = "{\"temperature\":0.3,\"top_k\":40}",
	};
	ck_assert_int_eq(db_conv_create(d, &c, &err), 0);
	ck_assert_int_gt(c.id, 0);
	ck_assert_uint_eq(strlen(c.pid), DB_PID_LEN);
	ck_assert_int_gt(c.created, 1600000000000LL);

	int32_t utok[] = { 1, 518, 25580, 29962 };
	struct db_message u = { .role = ROLE_USER, .content = "What is a llama?",
		.tokens = utok, .n_tokens = 4 };
	ck_assert_int_eq(db_message_append(d, c.id, &u, &err), 0);
	ck_assert_int_eq(u.position, 0);

	int64_t r;
	ck_assert_int_eq(db_reply_begin(d, c.id, "{\"temperature\":0.3,\"seed\":\"x\"}", 1,
	    UINT64_MAX - 5, &r, &err), 0);
	struct db_conv *l = db_conv_load(d, c.id, &err);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->n_messages, 2);
	ck_assert_int_eq(l->messages[1].finish, FINISH_INTERRUPTED);
	ck_assert_str_eq(l->messages[1].content, "");
	ck_assert_ptr_null(l->messages[1].tokens);
	db_conv_free(l);

	int32_t rtok[] = { 319, 11148, -7, INT32_MAX, INT32_MIN };
	ck_assert_int_eq(db_reply_update(d, r, "A llama", rtok, 2, &err), 0);
	ck_assert_int_eq(db_reply_finish(d, r, "A llama is a camelid.", rtok, 5, FINISH_EOS,
	    "{\"tokens_per_s\":12.5,\"n\":5}", &err), 0);

	l = db_conv_load(d, c.id, &err);
	ck_assert_ptr_nonnull(l);
	ck_assert_str_eq(l->pid, c.pid);
	ck_assert_str_eq(l->title, "What is a llama?");
	ck_assert_str_eq(l->model_name, c.model_name);
	ck_assert_str_eq(l->model_fingerprint, c.model_fingerprint);
	ck_assert_str_eq(l->system_prompt, c.system_prompt);
	ck_assert_str_eq(l->preset, c.preset);
	ck_assert_str_eq(l->params, c.params);
	ck_assert_int_eq(l->n_messages, 2);
	struct db_message *m0 = &l->messages[0], *m1 = &l->messages[1];
	ck_assert_int_eq(m0->role, ROLE_USER);
	ck_assert_uint_eq(m0->n_tokens, 4);
	ck_assert_mem_eq(m0->tokens, utok, sizeof utok);
	ck_assert_int_eq(m0->finish, FINISH_NONE);
	ck_assert_int_eq(m0->has_seed, 0);
	ck_assert_int_eq(m1->role, ROLE_ASSISTANT);
	ck_assert_int_eq(m1->position, 1);
	ck_assert_str_eq(m1->content, "A llama is a camelid.");
	ck_assert_uint_eq(m1->n_tokens, 5);
	ck_assert_mem_eq(m1->tokens, rtok, sizeof rtok);
	ck_assert_int_eq(m1->finish, FINISH_EOS);
	ck_assert_str_eq(m1->stats, "{\"tokens_per_s\":12.5,\"n\":5}");
	ck_assert_str_eq(m1->sampler, "{\"temperature\":0.3,\"seed\":\"x\"}");
	ck_assert_int_eq(m1->has_seed, 1);
	ck_assert(m1->seed == UINT64_MAX - 5);
	ck_assert_int_ge(l->updated, l->created);
	db_conv_free(l);
	/* Token ids can be set after the fact (the worker tokenizes later). */
	int32_t later[] = { 1, 2 };
	ck_assert_int_eq(db_message_set_tokens(d, u.id, later, 2, &err), 0);
	l = db_conv_load(d, c.id, &err);
	ck_assert_uint_eq(l->messages[0].n_tokens, 2);
	ck_assert_str_eq(l->messages[0].content, "What is a llama?");
	db_conv_free(l);
	ck_assert_int_eq(db_message_set_tokens(d, 999999, later, 2, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "no such message"));
	free(err);
	err = NULL;
	ck_assert_int_eq(db_message_set_tokens(d, u.id, utok, 4, &err), 0);
	/* Blobs are little-endian whatever the host. */
	ck_assert_int_eq(q_int(d->h, "SELECT hex(tokens) = '01000000' || '06020000' || 'EC630000'"
	    " || '0A750000' FROM messages WHERE position = 0"), 1);

	/* Regenerate: drop the reply, append a new one; positions continue. */
	int64_t first_reply = q_int(d->h, "SELECT id FROM messages WHERE position = 1");
	ck_assert_int_eq(db_message_delete_from(d, c.id, 999999, &err), -1);     /* not a message of c */
	ck_assert_ptr_nonnull(strstr(err, "no such message"));
	free(err);
	err = NULL;
	ck_assert_int_eq(q_int(d->h, "SELECT n_messages FROM conversations"), 2);
	ck_assert_int_eq(db_message_delete_from(d, c.id, first_reply, &err), 0);
	ck_assert_int_eq(q_int(d->h, "SELECT n_messages FROM conversations"), 1);
	ck_assert_int_eq(db_reply_begin(d, c.id, NULL, 0, 0, &r, &err), 0);
	/* The turn's end writes the user's ids and the reply together. */
	int32_t uids[] = { 7, 8, 9 };
	ck_assert_int_eq(db_turn_finish(d, r, "Again.", NULL, 0, FINISH_STOPPED, NULL, r, uids, 3, &err), -1);
	free(err);                               /* r is no user message: nothing written */
	err = NULL;
	ck_assert_int_eq(q_int(d->h, "SELECT finish = 'interrupted' FROM messages WHERE position = 1"), 1);
	ck_assert_int_eq(db_turn_finish(d, r, "Again.", NULL, 0, FINISH_STOPPED, NULL, u.id, uids, 3, &err), 0);
	ck_assert_int_eq(q_int(d->h, "SELECT hex(tokens) = '070000000800000009000000' FROM messages"
	    " WHERE position = 0"), 1);
	l = db_conv_load(d, c.id, &err);
	ck_assert_int_eq(l->n_messages, 2);
	ck_assert_int_eq(l->messages[1].position, 1);
	ck_assert_int_eq(l->messages[1].finish, FINISH_STOPPED);
	ck_assert_int_eq(l->messages[1].has_seed, 0);
	db_conv_free(l);

	/* Rename, update, and their errors. */
	ck_assert_int_eq(db_conv_rename(d, c.id, "Llamas", &err), 0);
	c.title = "Camelids";
	c.params = NULL;
	ck_assert_int_eq(db_conv_update(d, &c, &err), 0);
	l = db_conv_load(d, c.id, &err);
	ck_assert_str_eq(l->title, "Camelids");
	ck_assert_ptr_null(l->params);
	db_conv_free(l);
	c.params = "[1,2]";
	ck_assert_int_eq(db_conv_update(d, &c, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(db_conv_rename(d, 999999, "x", &err), -1);
	ck_assert_str_eq(err, "no such conversation");
	free(err);
	err = NULL;
	ck_assert_ptr_null(db_conv_load(d, 999999, &err));
	free(err);
	err = NULL;
	struct db_message bad = { .role = ROLE_USER, .content = "x" };
	ck_assert_int_eq(db_message_append(d, 999999, &bad, &err), -1);
	ck_assert_msg(strstr(err, "no such conversation") != NULL, "%s", err);
	free(err);
	err = NULL;
	ck_assert_int_eq(db_reply_update(d, 999999, "x", NULL, 0, &err), -1);
	free(err);
	err = NULL;
	/* A user message is not a reply. */
	ck_assert_int_eq(db_reply_update(d, u.id, "x", NULL, 0, &err), -1);
	free(err);
	err = NULL;

	/* List, newest first, with counts. */
	int64_t c2 = new_conv(d, NULL);
	add_msg(d, c2, ROLE_USER, "second");
	struct db_conv *a;
	size_t n;
	ck_assert_int_eq(db_conv_list(d, 0, &a, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(a[0].id, c2);
	ck_assert_int_eq(a[0].n_messages, 1);
	ck_assert_int_eq(a[1].n_messages, 2);
	ck_assert_ptr_null(a[0].messages);
	db_conv_array_free(a, n);
	ck_assert_int_eq(db_conv_list(d, 1, &a, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	db_conv_array_free(a, n);
	int64_t total;
	ck_assert_int_eq(db_conv_count(d, &total, &err), 0);
	ck_assert_int_eq(total, 2);

	/* Delete cascades to messages and the index. */
	ck_assert_int_eq(db_conv_delete(d, c.id, &err), 0);
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(db_conv_delete(d, c.id, &err), -1);
	free(err);
	assert_consistent(d->h);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_latest)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t id = -1;
	ck_assert_int_eq(db_conv_latest(d, &id, &err), 0);
	int64_t a = new_conv(d, "a");
	int64_t b = new_conv(d, "b");
	ck_assert_int_eq(db_conv_latest(d, &id, &err), 1);
	ck_assert_int_eq(id, b);
	/* Activity in a moves it to the front (times are ms: make them differ). */
	struct timespec ts = { 0, 3 * 1000000 };
	nanosleep(&ts, NULL);
	add_msg(d, a, ROLE_USER, "back to a");
	ck_assert_int_eq(db_conv_latest(d, &id, &err), 1);
	ck_assert_int_eq(id, a);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_titles)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "Hello", "Hello" },
		{ "  spaced \n\t out  ", "spaced out" },
		{ "", NULL },
		{ " \n ", NULL },
		{ "\x1b[31mred\x1b[0m", "[31mred [0m" },
		/* 50 characters exactly: kept whole. */
		{ "12345678901234567890123456789012345678901234567890",
		  "12345678901234567890123456789012345678901234567890" },
		/* Longer: cut at the last space after 30 characters, with an ellipsis. */
		{ "How do I make a sourdough starter from scratch at home without yeast?",
		  "How do I make a sourdough starter from scratch at\xe2\x80\xa6" },
		/* One long word: cut at 50 characters. */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe2\x80\xa6" },
		/* Multi-byte characters count once. */
		{ "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *t = db_title_from(cases[i].in);
		if (cases[i].want == NULL)
			ck_assert_msg(t == NULL, "case %zu: got '%s'", i, t);
		else
			ck_assert_msg(t != NULL && strcmp(t, cases[i].want) == 0,
			    "case %zu: got '%s' want '%s'", i, t ? t : "(null)", cases[i].want);
		free(t);
	}

	/* In the database: the first user message titles, later ones do not,
	 * and a given or renamed title is never replaced. */
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t c = new_conv(d, NULL);
	add_msg(d, c, ROLE_SYSTEM, "system text is not a title");
	add_msg(d, c, ROLE_USER, "First question");
	add_msg(d, c, ROLE_USER, "Second question");
	struct db_conv *l = db_conv_load(d, c, &err);
	ck_assert_str_eq(l->title, "First question");
	db_conv_free(l);
	int64_t c2 = new_conv(d, "Given");
	add_msg(d, c2, ROLE_USER, "not the title");
	l = db_conv_load(d, c2, &err);
	ck_assert_str_eq(l->title, "Given");
	db_conv_free(l);
	db_close(d);
	free(p);
}
END_TEST

/* ---- ids --------------------------------------------------------------- */

START_TEST(test_pid_alphabet)
{
	for (int i = 0; i < 2000; i++) {
		char pid[DB_PID_LEN + 1];
		db_pid_random(pid);
		ck_assert_uint_eq(strlen(pid), DB_PID_LEN);
		for (int k = 0; k < DB_PID_LEN; k++)
			ck_assert_msg(strchr(DB_PID_ALPHABET, pid[k]) != NULL, "iteration %d: '%s'", i, pid);
	}
	ck_assert_ptr_null(strpbrk(DB_PID_ALPHABET, "01ilo"));
}
END_TEST

START_TEST(test_id_prefixes)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	static const char *const pids[] = {
		"abc234", "abd234", "x23456", "m22222", "m23333", "m24444", "m25555", "m26666",
		"m27777", "m28888",
	};
	int64_t ids[10];
	for (int i = 0; i < 10; i++) {
		char title[16], *sql;
		snprintf(title, sizeof title, "t%d", i);
		ids[i] = new_conv(d, title);
		ck_assert_int_ge(asprintf(&sql, "UPDATE conversations SET pid = '%s' WHERE id = %lld",
		    pids[i], (long long)ids[i]), 0);
		exec_ok(d->h, sql);
		free(sql);
	}
	static const struct { const char *in; int want; const char *msg; } cases[] = {
		{ "abc234", 0, NULL },          /* whole id */
		{ "ABC", 0, NULL },             /* unique prefix, any case */
		{ "abd", 1, NULL },
		{ "x", 2, NULL },               /* one character while unique */
		{ "ab", -1, "ambiguous: abc234 (t0), abd234 (t1)" },
		{ "m2", -1, "and 2 more" },     /* 7 candidates: 5 listed */
		{ "zz", -1, "no conversation with id 'zz'" },
		{ "abc2345", -1, "no conversation" },
		{ "o", -1, "no conversation" }, /* not in the alphabet */
		{ "", -1, "empty" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t id = -42;
		err = NULL;
		int rc = db_conv_resolve(d, cases[i].in, &id, &err);
		if (cases[i].want >= 0) {
			ck_assert_msg(rc == 0 && id == ids[cases[i].want], "case %zu (%s): rc %d err %s",
			    i, cases[i].in, rc, err ? err : "");
		} else {
			ck_assert_msg(rc == -1 && id == -42, "case %zu (%s): rc %d", i, cases[i].in, rc);
			ck_assert_msg(err != NULL && strstr(err, cases[i].msg) != NULL,
			    "case %zu: '%s' lacks '%s'", i, err ? err : "(null)", cases[i].msg);
		}
		free(err);
	}
	db_close(d);
	free(p);
}
END_TEST

/* ---- search -------------------------------------------------------------- */

START_TEST(test_search)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t a = new_conv(d, "Bread");
	add_msg(d, a, ROLE_USER, "How do I bake sourdough bread?");
	int64_t r;
	ck_assert_int_eq(db_reply_begin(d, a, NULL, 0, 0, &r, &err), 0);
	ck_assert_int_eq(db_reply_update(d, r, "Feed the starter", NULL, 0, &err), 0);
	int64_t b = new_conv(d, "Café");
	add_msg(d, b, ROLE_USER, "Un café, s'il vous plaît. Sourdough too.");

	struct db_hit *h;
	size_t n;
	ck_assert_int_eq(db_search(d, "sourdough", 0, "[", "]", &h, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(h[0].conv_id, b);          /* newest first */
	ck_assert_int_eq(h[1].conv_id, a);
	ck_assert_msg(strstr(h[1].snippet, "[sourdough]") != NULL, "%s", h[1].snippet);
	ck_assert_str_eq(h[1].title, "Bread");
	ck_assert_int_eq(h[1].role, ROLE_USER);
	db_hits_free(h, n);
	/* Limit; diacritics folded ("cafe" finds "café"); prefix and phrase queries. */
	ck_assert_int_eq(db_search(d, "sourdough", 1, NULL, NULL, &h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	db_hits_free(h, n);
	static const struct { const char *q; size_t n; } ok[] = {
		{ "cafe", 1 }, { "sour*", 2 }, { "\"feed the starter\"", 1 }, { "bake AND bread", 1 },
		{ "bread OR cafe", 2 }, { "sourdough NOT bake", 1 }, { "nothingmatches", 0 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_msg(db_search(d, ok[i].q, 0, "", "", &h, &n, &err) == 0, "case %zu: %s", i, err);
		ck_assert_msg(n == ok[i].n, "case %zu (%s): %zu hits, want %zu", i, ok[i].q, n, ok[i].n);
		db_hits_free(h, n);
	}
	/* The streamed reply is indexed as it changes: old text gone, new found. */
	ck_assert_int_eq(db_reply_finish(d, r, "Mix flour and water", NULL, 0, FINISH_EOS, NULL,
	    &err), 0);
	ck_assert_int_eq(db_search(d, "starter", 0, "", "", &h, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	db_hits_free(h, n);
	ck_assert_int_eq(db_search(d, "flour", 0, "", "", &h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(h[0].position, 1);
	ck_assert_int_eq(h[0].role, ROLE_ASSISTANT);
	db_hits_free(h, n);

	/* Malformed FTS5 queries are errors with a message, not crashes; as
	 * plain text (db_search) the same strings are just words. */
	static const char *const bad[] = { "\"unterminated", "AND", "foo:bar", "(sourdough", "*", "NOT" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		ck_assert_msg(db_search(d, bad[i], 0, "", "", &h, &n, &err) == 0, "case %zu (%s): %s", i,
		    bad[i], err);
		db_hits_free(h, n);
		h = (struct db_hit *)1;
		ck_assert_msg(db_search_fts(d, bad[i], 0, "", "", &h, &n, &err) == -1, "case %zu (%s)", i,
		    bad[i]);
		ck_assert_msg(err != NULL && strstr(err, "bad search query") != NULL &&
		    strstr(err, bad[i]) != NULL, "case %zu: %s", i, err ? err : "(null)");
		ck_assert_ptr_null(h);
		free(err);
	}
	err = NULL;
	ck_assert_int_eq(db_search(d, "   ", 0, "", "", &h, &n, &err), -1);
	ck_assert_str_eq(err, "empty search query");
	free(err);
	err = NULL;

	/* Deleting a conversation removes its messages from the index. */
	ck_assert_int_eq(db_conv_delete(d, a, &err), 0);
	ck_assert_int_eq(db_search(d, "sourdough", 0, "", "", &h, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	db_hits_free(h, n);
	assert_consistent(d->h);
	db_close(d);
	free(p);
}
END_TEST

/* ---- presets and settings ----------------------------------------------- */

START_TEST(test_presets)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	struct db_preset *a;
	size_t n;
	ck_assert_int_eq(db_preset_list(d, &a, &n, &err), 0);
	static const char *const names[] = {
		"assistant", "concise", "storyteller", "translator", "sentiment", "summarizer", "coder",
	};
	ck_assert_uint_eq(n, 7);
	for (size_t i = 0; i < 7; i++) {
		ck_assert_msg(strcmp(a[i].name, names[i]) == 0 && a[i].builtin, "case %zu: %s", i,
		    a[i].name);
		ck_assert_msg(strlen(a[i].system_prompt) > 40, "case %zu: short prompt", i);
		ck_assert_msg(a[i].params[0] == '{', "case %zu: params %s", i, a[i].params);
	}
	db_preset_array_free(a, n);

	struct db_preset pr;
	ck_assert_int_eq(db_preset_get(d, "ASSISTANT", &pr, &err), 0);      /* any case */
	ck_assert_msg(strncmp(pr.system_prompt, "You are a helpful, respectful and honest "
	    "assistant. Always answer as helpfully as possible, while being safe. Your answers",
	    120) == 0, "%s", pr.system_prompt);
	ck_assert_ptr_nonnull(strstr(pr.system_prompt, "positive in nature.\n\nIf a question"));
	ck_assert_ptr_nonnull(strstr(pr.system_prompt, "please don't share false information."));
	db_preset_clear(&pr);
	ck_assert_int_eq(db_preset_get(d, "sentiment", &pr, &err), 0);
	ck_assert_ptr_nonnull(strstr(pr.system_prompt, "positive, negative or neutral"));
	db_preset_clear(&pr);
	ck_assert_int_eq(db_preset_get(d, "translator", &pr, &err), 0);
	ck_assert_ptr_nonnull(strstr(pr.system_prompt, "into English"));
	db_preset_clear(&pr);

	/* Built-ins cannot be removed or edited, by the API or by raw SQL. */
	ck_assert_int_eq(db_preset_remove(d, "assistant", &err), -1);
	ck_assert_msg(strstr(err, "built-in") && strstr(err, "presets add NAME --from assistant"),
	    "%s", err);
	free(err);
	err = NULL;
	ck_assert_int_eq(db_preset_update(d, "coder", "x", NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "--from coder"));
	free(err);
	err = NULL;
	ck_assert_int_ne(sqlite3_exec(d->h, "DELETE FROM presets WHERE name = 'coder'", NULL, NULL,
	    NULL), SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(d->h, "UPDATE presets SET system_prompt = '' WHERE builtin",
	    NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(q_int(d->h, "SELECT count(*) FROM presets WHERE builtin AND"
	    " length(system_prompt) > 40"), 7);

	/* Copy, edit, remove a user preset. */
	ck_assert_int_eq(db_preset_get(d, "coder", &pr, &err), 0);
	ck_assert_int_eq(db_preset_add(d, "my-coder", pr.system_prompt, pr.params, &err), 0);
	db_preset_clear(&pr);
	ck_assert_int_eq(db_preset_update(d, "my-coder", NULL, "{\"temperature\":0.1}", &err), 0);
	ck_assert_int_eq(db_preset_get(d, "my-coder", &pr, &err), 0);
	ck_assert_int_eq(pr.builtin, 0);
	ck_assert_str_eq(pr.params, "{\"temperature\":0.1}");
	ck_assert_ptr_nonnull(strstr(pr.system_prompt, "expert programmer"));  /* kept */
	db_preset_clear(&pr);
	ck_assert_int_eq(db_preset_update(d, "my-coder", "Terse.", NULL, &err), 0);
	ck_assert_int_eq(db_preset_get(d, "my-coder", &pr, &err), 0);
	ck_assert_str_eq(pr.system_prompt, "Terse.");
	ck_assert_str_eq(pr.params, "{\"temperature\":0.1}");
	db_preset_clear(&pr);

	static const struct { const char *name, *params, *msg; } bad[] = {
		{ "my-coder", NULL, "already exists" },
		{ "MY-CODER", NULL, "already exists" },
		{ "bad name", NULL, "bad preset name" },
		{ "", NULL, "bad preset name" },
		{ "ok", "[1]", "not a JSON object" },
		{ "ok", "{broken", "not a JSON object" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		ck_assert_msg(db_preset_add(d, bad[i].name, "x", bad[i].params, &err) == -1, "case %zu", i);
		ck_assert_msg(err && strstr(err, bad[i].msg), "case %zu: %s", i, err ? err : "(null)");
		free(err);
	}
	err = NULL;
	ck_assert_int_eq(db_preset_remove(d, "my-coder", &err), 0);
	ck_assert_int_eq(db_preset_remove(d, "my-coder", &err), -1);
	ck_assert_str_eq(err, "no preset named 'my-coder'");
	free(err);
	err = NULL;
	ck_assert_int_eq(db_preset_get(d, "nope", &pr, &err), -1);
	free(err);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_settings)
{
	char *p = tpath("chats.db"), *err = NULL, *v = NULL;
	struct db *d = open_ok(p);
	ck_assert_int_eq(db_setting_get(d, "theme", &v, &err), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(db_setting_set(d, "theme", "dark", &err), 0);
	ck_assert_int_eq(db_setting_set(d, "theme", "light", &err), 0);
	ck_assert_int_eq(db_setting_get(d, "theme", &v, &err), 1);
	ck_assert_str_eq(v, "light");
	free(v);
	ck_assert_int_eq(db_setting_set(d, "theme", NULL, &err), 0);
	ck_assert_int_eq(db_setting_get(d, "theme", &v, &err), 0);
	ck_assert_int_eq(db_setting_set(d, "", "x", &err), -1);
	free(err);
	db_close(d);
	free(p);
}
END_TEST

/* ---- faults ------------------------------------------------------------------ */

START_TEST(test_disk_full_mid_reply)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t c = new_conv(d, "full");
	add_msg(d, c, ROLE_USER, "Tell me a very long story.");
	int64_t r;
	ck_assert_int_eq(db_reply_begin(d, c, NULL, 1, 7, &r, &err), 0);

	/* From here on the file may grow by a few pages only. */
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
	    q_int(d->h, "PRAGMA page_count") + 3);
	exec_ok(d->h, sql);

	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap + 1), *saved = strdup("");
	int32_t *tok = malloc(cap * sizeof *tok);
	int failed = 0, updates = 0;
	for (int i = 0; i < 200 && !failed; i++) {
		/* Each "second" adds 2 KB of story and 500 tokens. */
		for (int k = 0; k < 2048 && len < cap; k++)
			text[len++] = (char)('a' + (i + k) % 26);
		text[len] = '\0';
		for (size_t k = 0; k < len / 4; k++)
			tok[k] = (int32_t)k;
		if (db_reply_update(d, r, text, tok, len / 4, &err) == 0) {
			free(saved);
			saved = strdup(text);
			updates++;
		} else {
			failed = 1;
		}
	}
	ck_assert_msg(failed, "the page limit never bit");
	ck_assert_int_gt(updates, 0);
	ck_assert_int_eq(d->last_rc & 0xff, SQLITE_FULL);
	ck_assert_msg(strstr(err, p) != NULL && strstr(err, "disk is full") != NULL &&
	    strchr(err, '\n') == NULL, "%s", err);
	free(err);
	err = NULL;
	/* The final write fails the same way and changes nothing. */
	ck_assert_int_eq(db_reply_finish(d, r, text, tok, len / 4, FINISH_EOS, NULL, &err), -1);
	free(err);
	err = NULL;
	/* Small writes still work, and no transaction was left open. */
	ck_assert_int_ne(sqlite3_get_autocommit(d->h), 0);
	db_close(d);

	/* Reopened without the limit: everything committed is there, intact. */
	d = open_ok(p);
	assert_consistent(d->h);
	struct db_conv *l = db_conv_load(d, c, &err);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->n_messages, 2);
	ck_assert_str_eq(l->messages[0].content, "Tell me a very long story.");
	ck_assert_str_eq(l->messages[1].content, saved);
	ck_assert_uint_eq(l->messages[1].n_tokens, strlen(saved) / 4);
	ck_assert_int_eq(l->messages[1].finish, FINISH_INTERRUPTED);
	db_conv_free(l);
	/* And the reply can be finished now that there is room. */
	ck_assert_int_eq(db_reply_finish(d, r, text, tok, len / 4, FINISH_EOS, NULL, &err), 0);
	db_close(d);
	free(text);
	free(saved);
	free(tok);
	free(p);
}
END_TEST

START_TEST(test_not_a_database)
{
	char *rnd = tpath("random.db"), *txt = tpath("notes.txt"), *err = NULL;
	unsigned char buf[16384];
	unsigned x = 12345;
	for (size_t i = 0; i < sizeof buf; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (unsigned char)(x >> 16);
	}
	write_file(rnd, buf, sizeof buf);
	const char text[] = "These are my notes.\nNot a database at all.\n";
	write_file(txt, text, sizeof text - 1);
	const char *paths[] = { rnd, txt };
	for (int i = 0; i < 2; i++) {
		err = NULL;
		ck_assert_ptr_null(db_open(paths[i], &err));
		ck_assert_msg(err != NULL && strstr(err, paths[i]) != NULL &&
		    strstr(err, "not an SQLite database") != NULL, "case %d: %s", i, err ? err : "");
		free(err);
	}
	/* The files were not touched. */
	FILE *f = fopen(txt, "r");
	char back[128] = { 0 };
	ck_assert_uint_eq(fread(back, 1, sizeof back, f), sizeof text - 1);
	fclose(f);
	ck_assert_str_eq(back, text);
	/* A folder is not a database either. */
	err = NULL;
	ck_assert_ptr_null(db_open(tdir, &err));
	ck_assert_ptr_nonnull(strstr(err, "folder"));
	free(err);
	free(rnd);
	free(txt);
}
END_TEST

START_TEST(test_damaged_pages)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	for (int i = 0; i < 30; i++) {
		int64_t c = new_conv(d, NULL);
		char msg[600];
		memset(msg, 'a' + i % 26, sizeof msg - 1);
		msg[sizeof msg - 1] = '\0';
		add_msg(d, c, ROLE_USER, msg);
	}
	db_close(d);                /* checkpoints: everything is in the main file now */

	/* Scribble over every page but the first (the header and schema stay). */
	int fd = open(p, O_RDWR);
	ck_assert_int_ge(fd, 0);
	off_t size = lseek(fd, 0, SEEK_END);
	unsigned char junk[512];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	for (off_t off = 4096; off < size; off += 1024)
		ck_assert_int_eq(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
	close(fd);

	/* Either the open or the first read must fail cleanly, naming the file. */
	d = db_open(p, &err);
	if (d != NULL) {
		struct db_conv *a = NULL;
		size_t n = 0;
		struct db_hit *h = NULL;
		int rc1 = db_conv_list(d, 0, &a, &n, &err);
		if (rc1 == 0) {
			db_conv_array_free(a, n);
			rc1 = db_search(d, "aaa", 0, "", "", &h, &n, &err);
			if (rc1 == 0)
				db_hits_free(h, n);
		}
		ck_assert_msg(rc1 == -1, "damaged pages went unnoticed");
		db_close(d);
	}
	ck_assert_msg(err != NULL && strstr(err, p) != NULL, "%s", err ? err : "(null)");
	free(err);
	free(p);
}
END_TEST

START_TEST(test_two_connections)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d1 = open_ok(p), *d2 = open_ok(p);
	int64_t c = new_conv(d1, "shared");
	for (int i = 0; i < 10; i++) {
		struct db *w = i % 2 ? d2 : d1;
		char text[32];
		snprintf(text, sizeof text, "turn %d", i);
		add_msg(w, c, i % 2 ? ROLE_ASSISTANT : ROLE_USER, text);
	}
	int64_t c2 = new_conv(d2, "second");
	for (int k = 0; k < 2; k++) {
		struct db_conv *l = db_conv_load(k ? d2 : d1, c, &err);
		ck_assert_ptr_nonnull(l);
		ck_assert_int_eq(l->n_messages, 10);
		for (int i = 0; i < 10; i++) {
			char text[32];
			snprintf(text, sizeof text, "turn %d", i);
			ck_assert_msg(strcmp(l->messages[i].content, text) == 0 &&
			    l->messages[i].position == i, "connection %d message %d", k, i);
		}
		db_conv_free(l);
	}
	int64_t id;
	ck_assert_int_eq(db_conv_resolve(d1, "", &id, &err), -1);
	free(err);
	err = NULL;
	ck_assert_int_eq(db_conv_latest(d1, &id, &err), 1);
	ck_assert_int_eq(id, c2);
	assert_consistent(d2->h);
	db_close(d1);
	db_close(d2);
	free(p);
}
END_TEST

START_TEST(test_locked_by_writer)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t c = new_conv(d, "locked");
	add_msg(d, c, ROLE_USER, "before");
	db_set_busy_timeout(d, 150);

	/* Another "process" holds the write lock. */
	sqlite3 *other;
	ck_assert_int_eq(sqlite3_open(p, &other), SQLITE_OK);
	exec_ok(other, "BEGIN IMMEDIATE");
	struct db_message m = { .role = ROLE_USER, .content = "blocked" };
	ck_assert_int_eq(db_message_append(d, c, &m, &err), -1);
	ck_assert_msg(strstr(err, p) && strstr(err, "locked by another process"), "%s", err);
	ck_assert_int_eq(d->last_rc & 0xff, SQLITE_BUSY);
	free(err);
	err = NULL;
	/* Reading still works while the other writes (WAL). */
	struct db_conv *l = db_conv_load(d, c, &err);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->n_messages, 1);
	db_conv_free(l);
	exec_ok(other, "COMMIT");
	sqlite3_close(other);
	/* Once the lock is gone the same call goes through. */
	ck_assert_int_eq(db_message_append(d, c, &m, &err), 0);
	ck_assert_int_eq(m.position, 1);
	db_close(d);
	free(p);
}
END_TEST

/* In a child: run the read-only checks and exit 0, or 1 + message. */
static int
readonly_checks(const char *dir, const char *db)
{
	char *err = NULL, *fresh;
	if (asprintf(&fresh, "%s/new.db", dir) < 0)
		return 1;
	/* A new database in a folder we cannot write: a clear error. */
	if (db_open(fresh, &err) != NULL || err == NULL || strstr(err, fresh) == NULL ||
	    strstr(err, "cannot create") == NULL) {
		fprintf(stderr, "read-only folder: %s\n", err ? err : "(opened!)");
		return 1;
	}
	free(err);
	err = NULL;
	/* An existing database we may read but not write. */
	struct db *d = db_open(db, &err);
	if (d == NULL) {
		/* Acceptable only as a clear, named error. */
		if (err == NULL || strstr(err, db) == NULL) {
			fprintf(stderr, "read-only db open: %s\n", err ? err : "(null)");
			return 1;
		}
		free(err);
		return 0;
	}
	struct db_conv *a;
	size_t n;
	if (db_conv_list(d, 0, &a, &n, &err) != 0 || n != 1) {
		fprintf(stderr, "read-only list: %s\n", err ? err : "wrong count");
		return 1;
	}
	db_conv_array_free(a, n);
	struct db_conv c;
	memset(&c, 0, sizeof c);
	if (db_conv_create(d, &c, &err) != -1 || err == NULL || strstr(err, db) == NULL ||
	    (strstr(err, "read-only") == NULL && strstr(err, "cannot open") == NULL)) {
		fprintf(stderr, "read-only write: %s\n", err ? err : "(succeeded!)");
		return 1;
	}
	free(err);
	db_close(d);
	free(fresh);
	return 0;
}

START_TEST(test_read_only)
{
	char *dir = tpath("ro"), *db = tpath("ro/chats.db"), *err = NULL;
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	struct db *d = open_ok(db);
	new_conv(d, "readable");
	db_close(d);
	/* Everyone may read and enter; nobody but root may write. */
	ck_assert_int_eq(chmod(tdir, 0755), 0);
	ck_assert_int_eq(chmod(dir, 0555), 0);
	ck_assert_int_eq(chmod(db, 0444), 0);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Root ignores permissions: test as an unprivileged user instead. */
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(2);
		_exit(readonly_checks(dir, db));
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	chmod(dir, 0700);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	(void)err;
	free(dir);
	free(db);
}
END_TEST

START_TEST(test_kill9_mid_reply)
{
	char *p = tpath("chats.db"), *err = NULL;
	struct db *d = open_ok(p);
	int64_t c = new_conv(d, "killed");
	add_msg(d, c, ROLE_USER, "Stream forever");
	db_close(d);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The chat loop: a reply updated over and over until killed. */
		char *cerr = NULL;
		struct db *w = db_open(p, &cerr);
		int64_t r;
		if (w == NULL || db_reply_begin(w, c, NULL, 1, 99, &r, &cerr) != 0)
			_exit(3);
		static char text[1 << 16];
		static int32_t tok[1 << 14];
		size_t len = 0;
		for (unsigned i = 0;; i++) {
			/* Grow until the buffer is full, then keep rewriting it. */
			if (len + 8 < sizeof text)
				len += (size_t)snprintf(text + len, 8, "w%05u ", i % 100000);
			tok[i % (1 << 14)] = (int32_t)i;
			size_t nt = i + 1 < (1u << 14) ? i + 1 : (1u << 14);
			if (db_reply_update(w, r, text, tok, nt, &cerr) != 0)
				_exit(4);
		}
	}
	/* Wait until some reply text is committed, then kill without warning. */
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	for (int i = 0; i < 500; i++) {
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
		if (q_int(h, "SELECT COALESCE(max(length(content)), 0) FROM messages WHERE role ="
		    " 'assistant'") > 2000)
			break;
	}
	sqlite3_close(h);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child ended on its own: %d",
	    status);

	d = open_ok(p);
	assert_consistent(d->h);
	struct db_conv *l = db_conv_load(d, c, &err);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(l->n_messages, 2);
	ck_assert_str_eq(l->messages[0].content, "Stream forever");
	ck_assert_int_eq(l->messages[1].finish, FINISH_INTERRUPTED);
	ck_assert_uint_gt(strlen(l->messages[1].content), 2000);
	ck_assert_ptr_nonnull(strstr(l->messages[1].content, "w00000 "));
	ck_assert_int_eq(l->messages[1].has_seed, 1);
	db_conv_free(l);
	db_close(d);
	free(p);
}
END_TEST

Suite *db_suite(void);

Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_creates_0600);
	tcase_add_test(tc, test_schema_fresh);
	tcase_add_test(tc, test_migrate_from_version_0);
	tcase_add_test(tc, test_migrate_runner);
	tcase_add_test(tc, test_foreign_database_refused);
	tcase_add_test(tc, test_crud);
	tcase_add_test(tc, test_latest);
	tcase_add_test(tc, test_titles);
	tcase_add_test(tc, test_pid_alphabet);
	tcase_add_test(tc, test_id_prefixes);
	tcase_add_test(tc, test_search);
	tcase_add_test(tc, test_presets);
	tcase_add_test(tc, test_settings);
	tcase_add_test(tc, test_disk_full_mid_reply);
	tcase_add_test(tc, test_not_a_database);
	tcase_add_test(tc, test_damaged_pages);
	tcase_add_test(tc, test_two_connections);
	tcase_add_test(tc, test_locked_by_writer);
	tcase_add_test(tc, test_read_only);
	tcase_add_test(tc, test_kill9_mid_reply);
	suite_add_tcase(s, tc);
	return s;
}
