/*
 * check_tree.c: conversations as trees of messages (suite tree).  A
 * version-1 database upgrades to single branches; alternatives are siblings
 * with their number and count; the current branch follows the leaf, and
 * choosing a sibling makes its newest descendant the leaf; deleting a
 * message takes its subtree and leaves the branch on its parent; a parent
 * from another conversation is refused; search sees every branch; the JSON
 * export carries the whole tree and import -> export gives it back byte for
 * byte; Markdown shows the current branch only.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/replay.h"
#include "engine/chat.h"
#include "storage/db_int.h"
#include "storage/export.h"
#include "tests/testutil.h"

static char *tdir;
static struct db *tdb;

static char *
tpath(const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", tdir, name), 0);
	return p;
}

static void
setup(void)
{
	tdir = tmpdir_new();
	ck_assert_ptr_nonnull(tdir);
	char *p = tpath("chats.db"), *err = NULL;
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

static int64_t
new_conv(void)
{
	struct db_conv c = { .model_name = "m.gguf" };
	char *err = NULL;
	ck_assert_msg(db_conv_create(tdb, &c, &err) == 0, "%s", err);
	return c.id;
}

/* Add a message under parent (-1: the current leaf). */
static int64_t
add(int64_t conv, int64_t parent, enum role role, const char *text)
{
	struct db_message m = { .role = role, .content = (char *)text };
	char *err = NULL;
	int rc = parent < 0 ? db_message_append(tdb, conv, &m, &err) :
	    db_message_add(tdb, conv, parent, &m, &err);
	ck_assert_msg(rc == 0, "%s", err);
	return m.id;
}

/* The current branch's contents joined by "|". */
static char *
branch_text(int64_t conv)
{
	char *err = NULL, *out = NULL;
	size_t len = 0;
	struct db_conv *c = db_conv_load(tdb, conv, &err);
	ck_assert_msg(c != NULL, "%s", err);
	FILE *f = open_memstream(&out, &len);
	for (int i = 0; i < c->n_messages; i++)
		fprintf(f, "%s%s", i ? "|" : "", c->messages[i].content);
	fclose(f);
	/* The same as db_conv_branch, which lists ids only. */
	int64_t *ids;
	size_t n;
	ck_assert_int_eq(db_conv_branch(tdb, conv, &ids, &n, &err), 0);
	ck_assert_int_eq((int)n, c->n_messages);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ids[i], c->messages[i].id);
	free(ids);
	db_conv_free(c);
	return out;
}

static long long
q_int(const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_msg(sqlite3_prepare_v2(tdb->h, sql, -1, &st, NULL) == SQLITE_OK, "%s", sql);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	long long v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

START_TEST(test_upgrade_makes_branches)
{
	/* A database written by the version-1 schema, with two chats. */
	char *p = tpath("old.db"), *err = NULL;
	sqlite3 *h;
	ck_assert_int_eq(sqlite3_open(p, &h), SQLITE_OK);
	struct db raw = { .h = h, .path = p };
	const char *const v1[] = { db_migrations[0] };
	ck_assert_msg(db_migrate_steps(&raw, v1, 1, &err) == 0, "%s", err);
	ck_assert_int_eq(sqlite3_exec(h,
	    "INSERT INTO conversations(id, pid, title, created, updated) VALUES (1, 'aaaaaa', 'a', 1, 1),"
	    " (2, 'bbbbbb', 'b', 1, 1);"
	    "INSERT INTO messages(conversation_id, position, role, content, created) VALUES"
	    " (1, 0, 'user', 'q1', 1), (1, 1, 'assistant', 'r1', 1), (1, 2, 'user', 'q2', 1),"
	    " (1, 3, 'assistant', 'r2', 1), (2, 0, 'user', 'other', 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);

	struct db *d = db_open(p, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_conv *c = db_conv_load(d, 1, &err);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(c->n_messages, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(c->messages[i].parent, i ? c->messages[i - 1].id : 0);
		ck_assert_int_eq(c->messages[i].n_siblings, 1);
	}
	ck_assert_int_eq(c->leaf, c->messages[3].id);
	ck_assert_str_eq(c->messages[3].content, "r2");
	db_conv_free(c);
	c = db_conv_load(d, 2, &err);
	ck_assert_int_eq(c->n_messages, 1);
	ck_assert_int_eq(c->messages[0].parent, 0);
	db_conv_free(c);
	/* And it goes on growing as a tree. */
	struct db_message m = { .role = ROLE_USER, .content = "q3" };
	ck_assert_msg(db_message_append(d, 1, &m, &err) == 0, "%s", err);
	ck_assert_int_eq(m.position, 4);
	db_close(d);
	free(p);
}
END_TEST

START_TEST(test_siblings_and_switching)
{
	char *err = NULL;
	int64_t c = new_conv();
	int64_t u1 = add(c, -1, ROLE_USER, "q1");
	int64_t a1 = add(c, -1, ROLE_ASSISTANT, "r1");
	/* Regenerate twice: two more replies under the same question. */
	int64_t a2 = add(c, u1, ROLE_ASSISTANT, "r2");
	int64_t a3 = add(c, u1, ROLE_ASSISTANT, "r3");
	char *b = branch_text(c);
	ck_assert_str_eq(b, "q1|r3");
	free(b);

	int64_t *ids;
	size_t n, idx = 99;
	ck_assert_int_eq(db_message_siblings(tdb, a2, &ids, &n, &idx, &err), 0);
	ck_assert_int_eq((int)n, 3);
	ck_assert_int_eq((int)idx, 1);
	ck_assert(ids[0] == a1 && ids[1] == a2 && ids[2] == a3);
	free(ids);
	struct db_conv *cv = db_conv_load(tdb, c, &err);
	ck_assert_int_eq(cv->messages[1].n_siblings, 3);
	ck_assert_int_eq(cv->messages[1].sibling, 2);
	ck_assert_int_eq(cv->messages[0].n_siblings, 1);
	db_conv_free(cv);

	/* Going on from the first reply, then back to the second and first. */
	int64_t leaf;
	ck_assert_int_eq(db_conv_select(tdb, c, a1, &leaf, &err), 0);
	ck_assert_int_eq(leaf, a1);
	int64_t u2 = add(c, -1, ROLE_USER, "q2");
	b = branch_text(c);
	ck_assert_str_eq(b, "q1|r1|q2");
	free(b);
	ck_assert_int_eq(db_conv_select(tdb, c, a2, &leaf, &err), 0);
	ck_assert_int_eq(leaf, a2);
	b = branch_text(c);
	ck_assert_str_eq(b, "q1|r2");
	free(b);
	/* Choosing r1 again comes back to where that branch ended. */
	ck_assert_int_eq(db_conv_select(tdb, c, a1, &leaf, &err), 0);
	ck_assert_int_eq(leaf, u2);

	/* Editing the first question: a second root. */
	int64_t e1 = add(c, 0, ROLE_USER, "q1 edited");
	add(c, -1, ROLE_ASSISTANT, "r edited");
	b = branch_text(c);
	ck_assert_str_eq(b, "q1 edited|r edited");
	free(b);
	ck_assert_int_eq(db_message_siblings(tdb, e1, &ids, &n, &idx, &err), 0);
	ck_assert(n == 2 && idx == 1 && ids[0] == u1);
	free(ids);
	/* Nothing was deleted: 7 messages, n_messages counts them all. */
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 7);
	ck_assert_int_eq(q_int("SELECT n_messages FROM conversations"), 7);
	cv = db_conv_load_tree(tdb, c, &err);
	ck_assert_int_eq(cv->n_messages, 7);
	ck_assert_int_eq(cv->tree, 1);
	db_conv_free(cv);

	/* Search sees every branch, not only the current one. */
	struct db_hit *hits;
	ck_assert_int_eq(db_search(tdb, "r2", 10, "", "", &hits, &n, &err), 0);
	ck_assert_int_eq((int)n, 1);
	db_hits_free(hits, n);

	/* A message of another conversation is no parent here, nor a branch. */
	int64_t other = new_conv();
	struct db_message m = { .role = ROLE_USER, .content = "x" };
	ck_assert_int_eq(db_message_add(tdb, other, a1, &m, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "another conversation"));
	free(err);
	err = NULL;
	ck_assert_int_eq(db_conv_select(tdb, other, a1, NULL, &err), -1);
	free(err);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 7);
}
END_TEST

START_TEST(test_delete_subtree)
{
	char *err = NULL;
	int64_t c = new_conv();
	int64_t u1 = add(c, -1, ROLE_USER, "q1");
	int64_t a1 = add(c, -1, ROLE_ASSISTANT, "r1");
	add(c, -1, ROLE_USER, "q2");
	add(c, -1, ROLE_ASSISTANT, "r2");
	int64_t a2 = add(c, u1, ROLE_ASSISTANT, "r1b");
	/* Deleting a message off the current branch leaves the branch alone. */
	ck_assert_int_eq(db_conv_select(tdb, c, a1, NULL, &err), 0);
	ck_assert_int_eq(db_message_delete(tdb, a2, &err), 0);
	char *b = branch_text(c);
	ck_assert_str_eq(b, "q1|r1|q2|r2");
	free(b);
	/* Deleting one on it takes its subtree and stops at its parent. */
	ck_assert_int_eq(db_message_delete(tdb, a1, &err), 0);
	b = branch_text(c);
	ck_assert_str_eq(b, "q1");
	free(b);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(q_int("SELECT n_messages FROM conversations"), 1);
	ck_assert_int_eq(db_message_delete(tdb, a1, &err), -1);
	free(err);
	/* rm takes the whole tree. */
	ck_assert_int_eq(db_conv_delete(tdb, c, &err), 0);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 0);
}
END_TEST

static char *
export_string(int64_t id, enum export_format f)
{
	char *err = NULL, *out = NULL;
	size_t len = 0;
	struct db_conv *c = db_conv_load_tree(tdb, id, &err);
	ck_assert_msg(c != NULL, "%s", err);
	FILE *fp = open_memstream(&out, &len);
	ck_assert_int_eq(export_write(c, f, fp, &err), 0);
	fclose(fp);
	db_conv_free(c);
	return out;
}

START_TEST(test_export_import_tree)
{
	char *err = NULL;
	int64_t c = new_conv();
	int64_t u1 = add(c, -1, ROLE_USER, "question");
	int64_t a1 = add(c, -1, ROLE_ASSISTANT, "first answer");
	add(c, u1, ROLE_ASSISTANT, "second answer");
	add(c, u1, ROLE_ASSISTANT, "third answer");
	ck_assert_int_eq(db_conv_select(tdb, c, a1, NULL, &err), 0);
	add(c, -1, ROLE_USER, "follow-up");

	char *j1 = export_string(c, EXPORT_JSON);
	ck_assert_ptr_nonnull(strstr(j1, "\"version\": 2"));
	ck_assert_ptr_nonnull(strstr(j1, "\"leaf\": 4"));
	ck_assert_ptr_nonnull(strstr(j1, "second answer"));
	ck_assert_ptr_nonnull(strstr(j1, "third answer"));
	ck_assert_ptr_nonnull(strstr(j1, "\"parent\": null"));
	/* Three replies under message 0, and the follow-up under reply 1. */
	json_t *doc = json_loads(j1, 0, NULL);
	json_t *msgs = json_object_get(doc, "messages");
	ck_assert_int_eq((int)json_array_size(msgs), 5);
	int under0 = 0;
	for (size_t i = 0; i < 5; i++) {
		json_t *par = json_object_get(json_array_get(msgs, i), "parent");
		under0 += json_is_integer(par) && json_integer_value(par) == 0;
	}
	ck_assert_int_eq(under0, 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, 4), "parent")), 1);
	json_decref(doc);

	char *p = tpath("t.json");
	FILE *f = fopen(p, "w");
	fputs(j1, f);
	fclose(f);
	int64_t c2;
	char pid[DB_PID_LEN + 1];
	ck_assert_msg(import_file(tdb, p, &c2, pid, &err) == 0, "%s", err);
	char *j2 = export_string(c2, EXPORT_JSON);
	/* Byte for byte, apart from the public id line. */
	char *ia = strstr(j1, "\n  \"id\": \""), *ib = strstr(j2, "\n  \"id\": \"");
	ck_assert(ia && ib && ia - j1 == ib - j2);
	ck_assert_str_eq(strchr(ia + 1, '\n'), strchr(ib + 1, '\n'));
	char *b1 = branch_text(c), *b2 = branch_text(c2);
	ck_assert_str_eq(b1, "question|first answer|follow-up");
	ck_assert_str_eq(b2, b1);
	free(b1);
	free(b2);

	/* Markdown shows the current branch and says where there are others. */
	char *md = export_string(c, EXPORT_MD);
	ck_assert_ptr_nonnull(strstr(md, "first answer"));
	ck_assert_ptr_null(strstr(md, "second answer"));
	ck_assert_ptr_nonnull(strstr(md, "alternative 1 of 3"));
	ck_assert_ptr_nonnull(strstr(md, "3 messages"));
	free(md);

	/* A parent that is not an earlier message is refused, nothing added. */
	long long before = q_int("SELECT count(*) FROM conversations");
	char *bad = strdup(j1), *at = strstr(bad, "\"parent\": 1");
	ck_assert_ptr_nonnull(at);
	at[10] = '7';
	f = fopen(p, "w");
	fputs(bad, f);
	fclose(f);
	ck_assert_int_eq(import_file(tdb, p, &c2, pid, &err), -1);
	ck_assert_msg(strstr(err, "parent") != NULL, "%s", err);
	free(err);
	ck_assert_int_eq(q_int("SELECT count(*) FROM conversations"), before);
	free(bad);
	free(p);
	free(j1);
	free(j2);
}
END_TEST

/* ---- with the binary and a real model ------------------------------------ */

/* Run the binary on the suite's database with the XDG folders in tdir. */
static int
run(const char *const *argv, const char *in, char **out, char **err)
{
	char *env[5];
	const char *names[4] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
	for (int i = 0; i < 4; i++)
		ck_assert_int_ge(asprintf(&env[i], "%s=%s", names[i], tdir), 0);
	env[4] = NULL;
	int st = run_binary(argv, in, out, err, (const char *const *)env, 120);
	for (int i = 0; i < 4; i++)
		free(env[i]);
	return st;
}

static char *
db_file(void)
{
	return tpath("chats.db");
}

/* The public id of the newest conversation. */
static void
latest_pid(char *pid)
{
	int64_t id;
	char *err = NULL;
	ck_assert_int_eq(db_conv_latest(tdb, &id, &err), 1);
	struct db_conv *c = db_conv_load(tdb, id, &err);
	memcpy(pid, c->pid, DB_PID_LEN + 1);
	db_conv_free(c);
}

START_TEST(test_replay_ten_replies)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *other = fixture_path("models/fixture-q8_0.gguf");
	char *dbp = db_file(), *out, *err;
	const char *chat[] = { "llama2-chat", "chat", "--db", dbp, "-m", model, "--seed", "11",
		"--temp", "0.8", "-n", "16", "-t", "2", NULL };
	int st = run(chat, "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n", &out, &err);
	ck_assert_msg(st == 0, "status %d: %s", st, err);
	free(out);
	free(err);
	char pid[DB_PID_LEN + 1];
	latest_pid(pid);

	/* Generated with two threads, replayed with one and with two. */
	for (int t = 1; t <= 2; t++) {
		const char *rp[] = { "llama2-chat", "replay", "--db", dbp, "-m", model, "-t",
			t == 1 ? "1" : "2", pid, NULL };
		st = run(rp, NULL, &out, &err);
		ck_assert_msg(st == 0 && strstr(out, "replay: 10/10 identical\n") != NULL,
		    "threads %d: status %d: %s%s", t, st, out, err);
		free(out);
		free(err);
	}

	/* A changed token is found where it is (in the last reply: a changed
	 * earlier one changes the prompts after it too). */
	char *e = NULL;
	int64_t id;
	ck_assert_int_eq(db_conv_resolve(tdb, pid, &id, &e), 0);
	struct db_conv *c = db_conv_load(tdb, id, &e);
	ck_assert_int_eq(c->n_messages, 20);
	struct db_message *r3 = &c->messages[19];
	ck_assert(r3->role == ROLE_ASSISTANT && r3->n_tokens > 6);
	r3->tokens[4] = r3->tokens[4] == 300 ? 301 : 300;
	ck_assert_int_eq(db_message_set_tokens(tdb, r3->id, r3->tokens, r3->n_tokens, &e), 0);
	db_conv_free(c);
	const char *rp[] = { "llama2-chat", "replay", "--db", dbp, "-m", model, pid, NULL };
	ck_assert_int_eq(run(rp, NULL, &out, &err), 1);
	ck_assert_msg(strstr(out, "reply 10 (message 19): differs at token 5: stored") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "replay: 9/10 identical") != NULL, "%s", out);
	free(out);
	free(err);

	/* Another model file: said so, for each reply. */
	const char *ro[] = { "llama2-chat", "replay", "--db", dbp, "-m", other, pid, NULL };
	ck_assert_int_eq(run(ro, NULL, &out, &err), 1);
	ck_assert_msg(strstr(out, "not replayable: made with another model file") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "replay: 0/10 identical") != NULL, "%s", out);
	free(out);
	free(err);
	free(dbp);
	free(model);
	free(other);
}
END_TEST

/* Stored ids are used only while they stand for the text (import, edits,
 * another vocabulary): replay_ids_usable with a real model. */
START_TEST(test_ids_usable)
{
	char *path = fixture_path("models/fixture-q4_0.gguf"), *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	int roles[2] = { CHAT_SYSTEM, CHAT_USER };
	const char *contents[2] = { "Be brief.", "Hello there" };
	int32_t *ids;
	int n;
	/* The open turn with and without a system prompt folded in. */
	ck_assert_int_eq(chat_render(m, roles + 1, contents + 1, 1, &ids, &n, NULL, &err), 0);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_USER, NULL, "Hello there", ids, n), 1);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_USER, NULL, "Hello where", ids, n), 0);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_USER, "Be brief.", "Hello there", ids, n), 0);
	free(ids);
	ck_assert_int_eq(chat_render(m, roles, contents, 2, &ids, &n, NULL, &err), 0);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_USER, "Be brief.", "Hello there", ids, n), 1);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_USER, "Be kind.", "Hello there", ids, n), 0);
	free(ids);
	/* A reply: its ids decode to its text; an id past the vocabulary never passes. */
	n = engine_tokenize(m, "Once upon a time", 16, 0, &ids);
	ck_assert_int_gt(n, 1);
	char *text = engine_detokenize(m, ids, n);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_ASSISTANT, NULL, text, ids, n), 1);
	ck_assert_int_eq(replay_ids_usable(m, CHAT_ASSISTANT, NULL, "Once upon a dime", ids, n), 0);
	ids[0] = 25580;
	ck_assert_int_eq(replay_ids_usable(m, CHAT_ASSISTANT, NULL, text, ids, n), 0);
	free(text);
	free(ids);
	engine_close(m);
	free(path);
}
END_TEST

static long long
count_convs(void)
{
	return q_int("SELECT count(*) FROM conversations");
}

/* `--resume ID -m other.gguf -p hi` with a vocabulary the stored ids do not
 * fit used to fail with "token id 25580 is out of range (vocabulary 1024)". */
START_TEST(test_other_vocabulary)
{
	char *big = fixture_path("models/llama-2-tiny-random.gguf");
	char *small = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *out, *err, pid[DB_PID_LEN + 1];
	const char *a[] = { "llama2-chat", "--db", dbp, "-m", big, "-n", "12", "--seed", "3", "-p",
		"Hello there, how are you?", NULL };
	ck_assert_msg(run(a, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	latest_pid(pid);
	ck_assert_int_gt(q_int("SELECT max(length(tokens)) FROM messages"), 0);
	const char *b[] = { "llama2-chat", "--db", dbp, "-m", small, "-n", "12", "--resume", pid, "-p",
		"hi", NULL };
	int st = run(b, NULL, &out, &err);
	ck_assert_msg(st == 0 && strstr(err, "out of range") == NULL, "status %d: %s", st, err);
	free(out);
	free(err);
	ck_assert_int_eq(q_int("SELECT n_messages FROM conversations"), 4);
	free(dbp);
	free(big);
	free(small);
}
END_TEST

/* Blank messages and one too long for the window leave nothing behind. */
START_TEST(test_nothing_left_behind)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *out, *err;
	const char *blanks[] = { "", "   ", "\n\t " };
	for (size_t i = 0; i < 3; i++) {
		const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "-p", blanks[i], NULL };
		ck_assert_int_eq(run(a, NULL, &out, &err), 2);
		ck_assert_msg(strstr(err, "empty") != NULL, "case %zu: %s", i, err);
		free(out);
		free(err);
	}
	ck_assert_int_eq(count_convs(), 0);
	char *lng = malloc(20001);
	for (int i = 0; i < 20000; i++)
		lng[i] = i % 5 == 4 ? ' ' : 'a' + i % 7;
	lng[20000] = '\0';
	const char *b[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "128", "-p", lng, NULL };
	ck_assert_int_eq(run(b, NULL, &out, &err), 1);
	ck_assert_msg(strstr(err, "too long") != NULL, "%s", err);
	free(out);
	free(err);
	ck_assert_int_eq(count_convs(), 0);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 0);
	/* In a conversation that exists, only the failed turn goes. */
	const char *c[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "-p", "hi", NULL };
	ck_assert_int_eq(run(c, NULL, &out, &err), 0);
	free(out);
	free(err);
	const char *d[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "128", "-c", "-p", lng,
		NULL };
	ck_assert_int_eq(run(d, NULL, &out, &err), 1);
	free(out);
	free(err);
	ck_assert_int_eq(count_convs(), 1);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 2);
	free(lng);
	free(dbp);
	free(model);
}
END_TEST

/* Regenerate twice: three alternatives, all in the JSON export; switching
 * back to the first prefills only what follows the fork. */
START_TEST(test_regenerate_and_switch)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *out, *err, pid[DB_PID_LEN + 1];
	char *lng = malloc(8000);
	size_t o = 0;
	for (int i = 0; o < 2400; i++)
		o += (size_t)snprintf(lng + o, 8000 - o, "word%d is here. ", i);
	const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "2048", "-n", "16",
		"--seed", "5", "-p", lng, NULL };
	ck_assert_msg(run(a, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	latest_pid(pid);
	for (int i = 0; i < 2; i++) {
		const char *r[] = { "llama2-chat", "regenerate", "--db", dbp, "-m", model, "--ctx-size", "2048",
			"-n", "16", pid, NULL };
		ck_assert_msg(run(r, NULL, &out, &err) == 0, "%s", err);
		ck_assert_int_gt((int)strlen(out), 1);
		free(out);
		free(err);
	}
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages WHERE role = 'assistant'"), 3);
	const char *x[] = { "llama2-chat", "export", "--db", dbp, "--format", "json", pid, NULL };
	ck_assert_int_eq(run(x, NULL, &out, &err), 0);
	json_t *doc = json_loads(out, 0, NULL);
	ck_assert_int_eq((int)json_array_size(json_object_get(doc, "messages")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "leaf")), 3);
	json_decref(doc);
	free(out);
	free(err);

	const char *br[] = { "llama2-chat", "branch", "--db", dbp, pid, "1", NULL };
	ck_assert_int_eq(run(br, NULL, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "alternative 1 of 3"));
	free(out);
	free(err);
	const char *t[] = { "llama2-chat", "show", "--tree", "--db", dbp, pid, NULL };
	ck_assert_int_eq(run(t, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "[1/3]") && strstr(out, "[3/3]"), "%s", out);
	free(out);
	free(err);
	/* The snapshot holds the third reply's branch; the first shares the
	 * question (about 1,000 tokens) with it. */
	const char *c[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "2048", "-n", "4",
		"--resume", pid, "-p", "next", "--verbose", "--stats", NULL };
	ck_assert_msg(run(c, NULL, &out, &err) == 0, "%s", err);
	int restored = 0, computed = -1;
	const char *at = strstr(err, "resumed ");
	ck_assert_msg(at != NULL, "%s", err);
	ck_assert_int_eq(sscanf(at, "resumed %d positions from %*s computed %d", &restored, &computed), 2);
	ck_assert_msg(restored > 1000 && computed > 0 && computed <= 18, "restored %d computed %d: %s",
	    restored, computed, err);
	free(out);
	free(err);
	free(lng);
	free(dbp);
	free(model);
}
END_TEST

/* The replay record of the newest reply, parsed. */
static json_t *
last_record(void)
{
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(tdb->h, "SELECT sampler FROM messages WHERE role = 'assistant'"
	    " ORDER BY id DESC LIMIT 1", -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	sqlite3_finalize(st);
	ck_assert_ptr_nonnull(j);
	return j;
}

static char *
q_text(const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(tdb->h, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	const unsigned char *t = sqlite3_column_text(st, 0);
	char *r = t != NULL ? strdup((const char *)t) : NULL;
	sqlite3_finalize(st);
	return r;
}

/* What a conversation was given (in the interface, or with -s / --preset
 * on --resume) is what it goes on with; --no-save continues in memory. */
START_TEST(test_resume_keeps_and_applies)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *out, *err, pid[DB_PID_LEN + 1];
	const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "-p", "hello", NULL };
	ck_assert_int_eq(run(a, NULL, &out, &err), 0);
	free(out);
	free(err);
	latest_pid(pid);
	/* The interface's preset dialog stores the preset's prompt and settings. */
	char *e = NULL;
	struct db_preset pr;
	ck_assert_int_eq(db_preset_get(tdb, "concise", &pr, &e), 0);
	int64_t id;
	ck_assert_int_eq(db_conv_resolve(tdb, pid, &id, &e), 0);
	struct db_conv *c = db_conv_load(tdb, id, &e);
	free(c->system_prompt);
	c->system_prompt = strdup(pr.system_prompt);
	free(c->preset);
	c->preset = strdup("concise");
	free(c->params);
	c->params = strdup("{\"temperature\":0.3,\"top_p\":0.9}");
	ck_assert_int_eq(db_conv_update(tdb, c, &e), 0);
	db_conv_free(c);

	const char *b[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "--resume", pid, "-p",
		"again", NULL };
	ck_assert_int_eq(run(b, NULL, &out, &err), 0);
	free(out);
	free(err);
	json_t *r = last_record();
	ck_assert_str_eq(json_string_value(json_object_get(r, "system_prompt")), pr.system_prompt);
	ck_assert(json_real_value(json_object_get(r, "temperature")) == 0.3);
	json_decref(r);
	db_preset_clear(&pr);

	/* --preset with --resume: the conversation's preset from now on. */
	ck_assert_int_eq(db_preset_get(tdb, "coder", &pr, &e), 0);
	const char *p[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "--resume", pid,
		"--preset", "coder", "-p", "code", NULL };
	ck_assert_int_eq(run(p, NULL, &out, &err), 0);
	free(out);
	free(err);
	r = last_record();
	ck_assert_str_eq(json_string_value(json_object_get(r, "system_prompt")), pr.system_prompt);
	json_decref(r);
	char *t = q_text("SELECT preset FROM conversations");
	ck_assert_str_eq(t, "coder");
	free(t);
	const char *sh[] = { "llama2-chat", "show", "--db", dbp, pid, NULL };
	ck_assert_int_eq(run(sh, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "preset coder") != NULL, "%s", out);
	free(out);
	free(err);
	db_preset_clear(&pr);

	/* -s with --resume: the conversation's system prompt from now on. */
	const char *s2[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "--resume", pid, "-s",
		"Be brief.", "-p", "more", NULL };
	ck_assert_int_eq(run(s2, NULL, &out, &err), 0);
	free(out);
	free(err);
	t = q_text("SELECT system_prompt FROM conversations");
	ck_assert_str_eq(t, "Be brief.");
	free(t);
	ck_assert_ptr_null(q_text("SELECT preset FROM conversations"));
	r = last_record();
	ck_assert_str_eq(json_string_value(json_object_get(r, "system_prompt")), "Be brief.");
	json_decref(r);

	/* --no-save with --resume or -c: the history is there, nothing is written. */
	long long before = q_int("SELECT count(*) FROM messages");
	const char *n1[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "--resume", pid,
		"--no-save", "--stats", "-p", "more", NULL };
	const char *n2[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "-c", "--no-save",
		"--stats", "-p", "more", NULL };
	const char *const *cases[] = { n1, n2 };
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(run(cases[i], NULL, &out, &err), 0);
		int prefill = -1, reused = -1;
		const char *at = strstr(err, "prefill ");
		ck_assert_msg(at && sscanf(at, "prefill %d reused %d", &prefill, &reused) == 2, "%s", err);
		ck_assert_msg(reused > 40, "case %d: the history was not used: %s", i, err);
		free(out);
		free(err);
	}
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), before);
	ck_assert_int_eq(count_convs(), 1);
	free(dbp);
	free(model);
}
END_TEST

/* -s "" is an empty system prompt, folded in as Meta's reference does;
 * no -s is none. */
START_TEST(test_empty_system_prompt)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *out, *err, *e = NULL;
	struct engine_model *m = engine_open(model, NULL, &e);
	ck_assert_ptr_nonnull(m);
	for (int with = 0; with < 2; with++) {
		const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "2", "-p", "Hi", "-s", "",
			NULL };
		if (!with)
			a[9] = NULL;
		ck_assert_int_eq(run(a, NULL, &out, &err), 0);
		free(out);
		free(err);
		sqlite3_stmt *st;
		ck_assert_int_eq(sqlite3_prepare_v2(tdb->h, "SELECT tokens FROM messages WHERE role = 'user'"
		    " ORDER BY id DESC LIMIT 1", -1, &st, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
		int n = sqlite3_column_bytes(st, 0) / 4;
		const unsigned char *b = sqlite3_column_blob(st, 0);
		int roles[2] = { CHAT_SYSTEM, CHAT_USER };
		const char *contents[2] = { "", "Hi" };
		int32_t *ids;
		int nw;
		char *text;
		ck_assert_int_eq(chat_render(m, roles + !with, contents + !with, 1 + with, &ids, &nw, &text,
		    &e), 0);
		ck_assert_int_eq(strstr(text, "<<SYS>>\n\n<</SYS>>\n\nHi") != NULL, with);
		ck_assert_msg(n == nw && memcmp(b, ids, (size_t)n * 4) == 0, "with %d: %d ids, want %d", with,
		    n, nw);
		sqlite3_finalize(st);
		free(ids);
		free(text);
	}
	engine_close(m);
	free(dbp);
	free(model);
}
END_TEST

/* A conversation's KV snapshot is its text: rm deletes it, and `cache list`
 * names each snapshot's conversation or the other database it is from. */
START_TEST(test_snapshot_follows_conversation)
{
	char *model = fixture_path("models/fixture-q4_0.gguf");
	char *dbp = db_file(), *other = tpath("other.db"), *out, *err, pid[DB_PID_LEN + 1];
	const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "-n", "4", "-p", "Snapshot me", NULL };
	ck_assert_int_eq(run(a, NULL, &out, &err), 0);
	free(out);
	free(err);
	latest_pid(pid);
	const char *l[] = { "llama2-chat", "cache", "list", "--db", dbp, NULL };
	ck_assert_int_eq(run(l, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, pid) != NULL && strstr(out, "Snapshot me") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "1 snapshot,") != NULL, "%s", out);
	free(out);
	free(err);
	/* Seen from another database: named by its own database, no title. */
	struct db *o = db_open(other, &err);
	ck_assert_ptr_nonnull(o);
	db_close(o);
	const char *l2[] = { "llama2-chat", "cache", "list", "--db", other, NULL };
	ck_assert_int_eq(run(l2, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "Snapshot me") == NULL && strstr(out, "(database ") != NULL &&
	    strstr(out, "chats.db") != NULL, "%s", out);
	free(out);
	free(err);
	const char *r[] = { "llama2-chat", "rm", "--db", dbp, pid, NULL };
	ck_assert_int_eq(run(r, NULL, &out, &err), 0);
	free(out);
	free(err);
	ck_assert_int_eq(run(l, NULL, &out, &err), 0);
	ck_assert_msg(strstr(out, "0 snapshots,") != NULL && strstr(out, pid) == NULL, "%s", out);
	free(out);
	free(err);
	free(other);
	free(dbp);
	free(model);
}
END_TEST

Suite *tree_suite(void);

Suite *
tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc = tcase_create("storage");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_upgrade_makes_branches);
	tcase_add_test(tc, test_siblings_and_switching);
	tcase_add_test(tc, test_delete_subtree);
	tcase_add_test(tc, test_export_import_tree);
	suite_add_tcase(s, tc);
	tc = tcase_create("model");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_fixture_test(tc, test_replay_ten_replies);
	tcase_add_fixture_test(tc, test_ids_usable);
	tcase_add_fixture_test(tc, test_other_vocabulary);
	tcase_add_fixture_test(tc, test_nothing_left_behind);
	tcase_add_fixture_test(tc, test_regenerate_and_switch);
	tcase_add_fixture_test(tc, test_resume_keeps_and_applies);
	tcase_add_fixture_test(tc, test_empty_system_prompt);
	tcase_add_fixture_test(tc, test_snapshot_follows_conversation);
	suite_add_tcase(s, tc);
	return s;
}
