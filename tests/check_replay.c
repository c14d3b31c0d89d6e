/*
 * check_replay.c: conversations with a real model, through the binary
 * (suite replay).  Ten replies at temperature 0.8 made with two threads
 * replay identical with one and two, a changed token is found, another
 * model file is not replayable; stored ids are used only while they stand
 * for their text (another vocabulary, edits); blank and too-long messages
 * leave nothing behind; regenerate twice gives three alternatives and
 * switching back prefills only what follows the fork; --resume goes on with
 * (and -s/--preset change) the conversation's prompt and settings, and
 * --no-save continues in memory; -s "" is folded in; rm takes the KV
 * snapshot, and cache list names each snapshot's conversation.
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
	const char *a[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "2048", "--force", "-n", "16",
		"--seed", "5", "-p", lng, NULL };
	ck_assert_msg(run(a, NULL, &out, &err) == 0, "%s", err);
	free(out);
	free(err);
	latest_pid(pid);
	for (int i = 0; i < 2; i++) {
		const char *r[] = { "llama2-chat", "regenerate", "--db", dbp, "-m", model, "--ctx-size", "2048", "--force",
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
	const char *c[] = { "llama2-chat", "--db", dbp, "-m", model, "--ctx-size", "2048", "--force", "-n", "4",
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

Suite *replay_suite(void);

Suite *
replay_suite(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("model");
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
