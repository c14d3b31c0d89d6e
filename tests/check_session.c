/*
 * check_session.c: the session (app/session.h) as the interface and the
 * chat commands use it (suite session): every action against a real
 * database file in a temporary folder and a fixture model, the view
 * updates it hands out, and what ends up in the file.  The imported
 * conversation with a system row and repeated roles is the case that
 * regenerate and edit used to get wrong (they deleted by the worker's
 * position, which is not the row's position once rows were skipped).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "app/cli.h"
#include "app/session.h"
#include "app/session_int.h"
#include "storage/db_int.h"
#include "tests/testutil.h"
#include "ui/ui_int.h"

static char *tdir, *tdb;
static struct opts o;
static struct engine_model *model;

static void
setup(void)
{
	tdir = tmpdir_new();
	ck_assert_ptr_nonnull(tdir);
	ck_assert_int_ge(asprintf(&tdb, "%s/chats.db", tdir), 0);
	/* Snapshots and the like go under the temporary folder. */
	setenv("XDG_CACHE_HOME", tdir, 1);
	setenv("XDG_STATE_HOME", tdir, 1);
	memset(&o, 0, sizeof o);
	engine_sampling_default(&o.gen.samp);
	o.gen.samp.temp = 0;          /* greedy: the same reply every time */
	o.gen.samp.seed = 7;
	o.gen.n_predict = 4;
	o.ctx_size = 256;
	o.threads = 1;
	o.kv_cache_max = 1LL << 30;
	o.db = tdb;
	model = NULL;
}

static void
teardown(void)
{
	engine_close(model);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("XDG_STATE_HOME");
	free(tdb);
	tmpdir_remove(tdir);
}

static struct engine_model *
open_model_file(const char *rel)
{
	char *p = fixture_path(rel);
	ck_assert_ptr_nonnull(p);
	char *err = NULL;
	struct engine_model *m = engine_open(p, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	free(p);
	return m;
}

static struct engine_model *
open_model(void)
{
	return open_model_file("models/fixture-q4_0.gguf");
}

static struct session *
open_session(void)
{
	int status = -1;
	struct session *s = session_open(&o, model, &status);
	ck_assert_msg(s != NULL, "session_open: status %d", status);
	ck_assert_int_eq(status, 0);
	return s;
}

/* The view updates, recorded. */
struct seen {
	int n;
	enum su_type type[256];
	int64_t id[256];
	enum role role[256];
	char text[256][128];
	char *back;
};

static void
drain(struct session *s, struct seen *v)
{
	struct session_update u;
	while (session_poll(s, &u)) {
		if (v != NULL && v->n < 256) {
			v->type[v->n] = u.type;
			v->id[v->n] = u.id;
			v->role[v->n] = u.role;
			snprintf(v->text[v->n], sizeof v->text[0], "%s", u.text ? u.text : "");
			v->n++;
			if (u.back) {
				free(v->back);
				v->back = strdup(u.back);
			}
		}
		session_update_free(&u);
	}
}

/* Poll (not wait: the interface's way) until the request ends. */
static void
poll_until_idle(struct session *s, struct seen *v)
{
	for (int i = 0; i < 6000 && session_busy(s); i++) {
		drain(s, v);
		usleep(5000);
	}
	ck_assert_msg(!session_busy(s), "the reply did not end");
	drain(s, v);
}

static int
find(const struct seen *v, enum su_type t, int from)
{
	for (int i = from; i < v->n; i++)
		if (v->type[i] == t)
			return i;
	return -1;
}

/* The conversation's rows as "role:content|role:content|..." (contents
 * cut to 12 bytes; a generated reply, which has a seed, as "*"), read
 * straight from the file. */
static char *
rows(int64_t conv)
{
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_conv *c = db_conv_load(d, conv, &err);
	ck_assert_msg(c != NULL, "%s", err);
	size_t cap = 64 + (size_t)c->n_messages * 32, len = 0;
	char *out = calloc(1, cap);
	for (int i = 0; i < c->n_messages; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%c:%.12s", i ? "|" : "",
		    "sua"[c->messages[i].role], c->messages[i].has_seed ? "*" : c->messages[i].content);
	db_conv_free(c);
	db_close(d);
	return out;
}

static int64_t
q_int(const char *sql)
{
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	ck_assert_msg(d != NULL, "%s", err);
	sqlite3_stmt *st;
	ck_assert_int_eq(sqlite3_prepare_v2(d->h, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	db_close(d);
	return v;
}

/* An imported conversation (as `import` accepts it): a system row, two
 * user messages in a row, two replies in a row, then a normal exchange.
 * Returns its public id in pid. */
static int64_t
import_skipped(char *pid, int64_t *ids)
{
	static const struct { enum role r; const char *t; } m[] = {
		{ ROLE_SYSTEM, "sys row" }, { ROLE_USER, "u1" }, { ROLE_ASSISTANT, "a1" },
		{ ROLE_USER, "u2a" }, { ROLE_USER, "u2b" }, { ROLE_ASSISTANT, "a2" },
		{ ROLE_ASSISTANT, "a2b" }, { ROLE_USER, "u3" }, { ROLE_ASSISTANT, "a3" },
	};
	enum { N = sizeof m / sizeof m[0] };
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_message msgs[N];
	memset(msgs, 0, sizeof msgs);
	for (int i = 0; i < N; i++) {
		msgs[i].role = m[i].r;
		msgs[i].content = (char *)m[i].t;
		msgs[i].created = 1000 + i;
		msgs[i].finish = m[i].r == ROLE_ASSISTANT ? FINISH_EOS : FINISH_NONE;
	}
	struct db_conv c = { .title = "imported", .created = 1000, .updated = 2000, .n_messages = N, .messages = msgs };
	ck_assert_msg(db_conv_insert(d, &c, &err) == 0, "%s", err);
	snprintf(pid, 8, "%s", c.pid);
	for (int i = 0; i < N; i++)
		ids[i] = msgs[i].id;
	db_close(d);
	return c.id;
}

START_TEST(test_session_send_store)
{
	model = open_model();
	struct session *s = open_session();
	ck_assert(session_has_model(s) && session_saves(s));
	ck_assert_int_eq(session_conv(s), 0);
	struct seen v = { 0 };
	ck_assert_int_eq(session_send(s, "Hello there"), 0);
	ck_assert(session_busy(s));
	ck_assert_int_eq(session_send(s, "again"), -1);          /* one request at a time */
	ck_assert_ptr_nonnull(strstr(session_error(s), "still"));
	poll_until_idle(s, &v);
	/* The view: the user's message, the empty streaming reply, its text,
	 * its end, all named by the rows' ids. */
	int um = find(&v, SU_MESSAGE, 0), rm = find(&v, SU_MESSAGE, um + 1), fin = find(&v, SU_FINISH, 0);
	ck_assert(um >= 0 && rm > um && fin > rm);
	ck_assert_int_eq(v.role[um], ROLE_USER);
	ck_assert_str_eq(v.text[um], "Hello there");
	ck_assert_int_eq(v.role[rm], ROLE_ASSISTANT);
	ck_assert_int_gt(v.id[um], 0);
	ck_assert_int_eq(v.id[fin], v.id[rm]);
	int64_t conv = session_conv(s);
	ck_assert_int_gt(conv, 0);
	ck_assert_int_eq(strlen(session_pid(s)), DB_PID_LEN);
	ck_assert_int_eq(session_turn(s), 1);
	ck_assert_int_eq(session_last_user(s), v.id[um]);
	/* The file: both rows; the user's token ids came with the reply's end;
	 * the reply's text is what the view was given at its end. */
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 2);
	ck_assert_int_gt(q_int("SELECT length(tokens) FROM messages WHERE role = 'user'"), 0);
	ck_assert_int_eq(q_int("SELECT finish IN ('eos', 'length') FROM messages WHERE role = 'assistant'"), 1);
	char sql[256];
	json_t *j;
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	struct db_conv *c = db_conv_load(d, conv, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->messages[1].content, v.text[fin]);
	/* The stored settings are the table's JSON (jansson), and read back. */
	j = json_loads(c->params, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert(json_real_value(json_object_get(j, "temperature")) == 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "top_k")), 40);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "repeat_last_n")), 64);
	json_decref(j);
	j = json_loads(c->messages[1].stats, 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "ctx_size")), 256);
	json_decref(j);
	db_conv_free(c);
	db_close(d);
	snprintf(sql, sizeof sql, "SELECT seed FROM messages WHERE role = 'assistant'");
	ck_assert_int_eq(q_int(sql), 7);
	session_close(s);
}
END_TEST

START_TEST(test_session_skipped_rows)
{
	model = open_model();
	char pid[8];
	int64_t id[9];
	int64_t conv = import_skipped(pid, id);
	char *r0 = rows(conv);
	ck_assert_str_eq(r0, "s:sys row|u:u1|a:a1|u:u2a|u:u2b|a:a2|a:a2b|u:u3|a:a3");
	free(r0);
	o.resume = pid;
	struct session *s = open_session();
	struct seen v = { 0 };
	drain(s, &v);
	/* The view shows every row; loading wrote none. */
	ck_assert_int_eq(v.type[0], SU_CLEAR);
	ck_assert_int_eq(v.n >= 10, 1);
	ck_assert_int_eq(v.id[1], id[0]);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 9);
	/* The worker holds u1 a1 u2b a2 u3 a3: the last user message is u3. */
	ck_assert_int_eq(session_last_user(s), id[7]);
	/* Only a user message the worker holds can be edited. */
	ck_assert_int_eq(session_edit(s, id[3], "not this"), -1);
	ck_assert_int_eq(session_edit(s, id[0], "not this"), -1);

	/* Regenerate deletes a3, and nothing else. */
	memset(&v, 0, sizeof v);
	ck_assert_msg(session_regenerate(s) == 0, "%s", session_error(s));
	drain(s, &v);
	int rem = find(&v, SU_REMOVE, 0);
	ck_assert_int_ge(rem, 0);
	ck_assert_int_eq(v.id[rem], id[8]);
	poll_until_idle(s, &v);
	char *r1 = rows(conv);
	ck_assert_str_eq(r1, "s:sys row|u:u1|a:a1|u:u2a|u:u2b|a:a2|a:a2b|u:u3|a:*");
	free(r1);
	/* Edit u3: u3 and the new reply go, the new question and its reply come. */
	memset(&v, 0, sizeof v);
	ck_assert_msg(session_edit(s, session_last_user(s), "u3 edited") == 0, "%s", session_error(s));
	poll_until_idle(s, &v);
	rem = find(&v, SU_REMOVE, 0);
	ck_assert_int_eq(v.id[rem], id[7]);
	char *r2 = rows(conv);
	ck_assert_str_eq(r2, "s:sys row|u:u1|a:a1|u:u2a|u:u2b|a:a2|a:a2b|u:u3 edited|a:*");
	free(r2);
	/* Edit again, now the edited message (an id made by the session). */
	int64_t edited = session_last_user(s);
	ck_assert_msg(session_edit(s, edited, "u3 twice") == 0, "%s", session_error(s));
	poll_until_idle(s, NULL);
	char *r3 = rows(conv);
	ck_assert_str_eq(r3, "s:sys row|u:u1|a:a1|u:u2a|u:u2b|a:a2|a:a2b|u:u3 twice|a:*");
	free(r3);
	session_close(s);
}
END_TEST

/* A conversation whose last row is a question without its answer (the
 * process died in between): loading it writes nothing, and the next
 * message follows it. */
START_TEST(test_session_load_writes_nothing)
{
	model = open_model();
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	struct db_conv c = { 0 };
	ck_assert_int_eq(db_conv_create(d, &c, &err), 0);
	struct db_message m = { .role = ROLE_USER, .content = "lost question" };
	ck_assert_int_eq(db_message_append(d, c.id, &m, &err), 0);
	db_close(d);
	int64_t before = q_int("SELECT updated FROM conversations");
	o.cont = 1;
	struct session *s = open_session();
	poll_until_idle(s, NULL);
	ck_assert_int_eq(session_conv(s), c.id);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 1);
	ck_assert_int_eq(q_int("SELECT updated FROM conversations"), before);
	ck_assert_int_eq(session_last_user(s), 0);
	ck_assert_int_eq(session_regenerate(s), -1);
	ck_assert_int_eq(session_send(s, "new question"), 0);
	poll_until_idle(s, NULL);
	char *r = rows(c.id);
	ck_assert_str_eq(r, "u:lost questio|u:new question|a:*");
	free(r);
	session_close(s);
	/* Loading it again keeps the alternation: the later question is the
	 * one with the answer. */
	s = open_session();
	ck_assert_int_eq(session_last_user(s), q_int("SELECT id FROM messages WHERE position = 1"));
	session_close(s);
}
END_TEST

/* A request the worker fails (the message does not fit in the context):
 * its rows go again, the view gets the text back, the session goes on. */
START_TEST(test_session_failed_request)
{
	model = open_model();
	o.ctx_size = 64;
	struct session *s = open_session();
	ck_assert_int_eq(session_send(s, "hi"), 0);
	poll_until_idle(s, NULL);
	int64_t conv = session_conv(s);
	char big[4096];
	memset(big, 0, sizeof big);
	for (size_t i = 0; i + 6 < sizeof big; i += 6)
		memcpy(big + i, "llama ", 6);
	struct seen v = { 0 };
	ck_assert_int_eq(session_send(s, big), 0);
	poll_until_idle(s, &v);
	int f = find(&v, SU_FAILED, 0);
	ck_assert_int_ge(f, 0);
	ck_assert_ptr_nonnull(v.back);
	ck_assert_str_eq(v.back, big);
	free(v.back);
	ck_assert_ptr_nonnull(session_error(s));
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 2);
	/* Regenerate and edit still work on what is left. */
	ck_assert_msg(session_regenerate(s) == 0, "%s", session_error(s));
	poll_until_idle(s, NULL);
	ck_assert_msg(!session_error(s) || !strstr(session_error(s), "regen"), "%s", session_error(s));
	ck_assert_msg(session_last_user(s) != 0, "regenerate: %s", session_error(s));
	ck_assert_msg(session_edit(s, session_last_user(s), "hello") == 0, "%s", session_error(s));
	poll_until_idle(s, NULL);
	char *r = rows(conv);
	ck_assert_str_eq(r, "u:hello|a:*");
	free(r);
	session_close(s);
}
END_TEST

/* Everything the interface does besides chatting. */
START_TEST(test_session_actions)
{
	model = open_model();
	struct session *s = open_session();
	/* Before anything is stored. */
	ck_assert_int_eq(session_rename(s, "x"), -1);
	ck_assert_int_eq(session_export(s, "md", "/nonexistent", 0), -1);
	ck_assert_int_eq(session_send(s, "What is a llama?"), 0);
	poll_until_idle(s, NULL);
	int64_t conv = session_conv(s);
	ck_assert_int_eq(session_rename(s, "Llamas"), 0);
	struct session_conv *cv;
	size_t n;
	ck_assert_int_eq(session_list(s, 10, &cv, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(cv[0].title, "Llamas");
	ck_assert_int_eq(cv[0].n_messages, 2);
	session_convs_free(cv, n);
	struct session_hit *h;
	ck_assert_int_eq(session_search(s, "llama", 10, &h, &n), 0);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(h[0].conv_id, conv);
	ck_assert_int_eq(h[n - 1].msg_id, q_int("SELECT id FROM messages WHERE position = 0"));
	ck_assert_ptr_nonnull(strstr(h[n - 1].snippet, "\x01"));
	session_hits_free(h, n);
	/* Plain words: an unclosed quote is just text, not an error. */
	ck_assert_int_eq(session_search(s, "\"unclosed", 10, &h, &n), 0);
	session_hits_free(h, n);
	/* System prompt and settings are stored with the conversation. */
	ck_assert_int_eq(session_set_system(s, "Be brief."), 0);
	ck_assert_int_eq(q_int("SELECT system_prompt = 'Be brief.' FROM conversations"), 1);
	/* Presets: listed, applied (system prompt and settings). */
	struct session_preset *p;
	ck_assert_int_eq(session_presets(s, &p, &n), 0);
	ck_assert_int_ge(n, 1);
	int found = 0;
	for (size_t i = 0; i < n; i++)
		found |= strcmp(p[i].name, "concise") == 0;
	session_presets_free(p, n);
	ck_assert(found);
	ck_assert_int_eq(session_apply_preset(s, "concise"), 0);
	ck_assert_str_eq(session_preset(s), "concise");
	ck_assert_int_eq(q_int("SELECT preset = 'concise' FROM conversations"), 1);
	ck_assert_int_eq(session_apply_preset(s, "no-such-preset"), -1);
	ck_assert_int_eq(session_set_system(s, "Mine."), 0);
	ck_assert_ptr_null(session_preset(s));
	struct gen_settings g = *session_settings(s);
	g.samp.top_k = 12;
	g.n_predict = 3;
	ck_assert_int_eq(session_set_settings(s, &g), 0);
	ck_assert_int_eq(q_int("SELECT json_extract(params, '$.top_k') FROM conversations"), 12);
	/* Export. */
	char path[4096];
	snprintf(path, sizeof path, "%s/out.json", tdir);
	ck_assert_int_eq(session_export(s, "json", path, 0), 0);
	ck_assert_int_eq(session_export(s, "json", path, 0), -1);   /* exists */
	ck_assert_int_eq(session_export(s, "json", path, 1), 0);
	ck_assert_int_eq(session_export(s, "pdf", path, 1), -1);
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* A new chat, then back: switch gives the stored messages by id. */
	ck_assert_int_eq(session_new_chat(s), 0);
	ck_assert_int_eq(session_conv(s), 0);
	drain(s, NULL);
	ck_assert_int_eq(session_switch(s, conv), 0);
	struct seen v = { 0 };
	drain(s, &v);
	ck_assert_int_eq(v.type[0], SU_CLEAR);
	ck_assert_int_eq(v.type[1], SU_MESSAGE);
	ck_assert_int_eq(v.id[1], q_int("SELECT id FROM messages WHERE position = 0"));
	ck_assert_str_eq(session_system(s), "Mine.");
	ck_assert_int_eq(session_settings(s)->samp.top_k, 12);
	ck_assert_int_eq(session_switch(s, 999999), -1);
	/* Delete: gone from the file, and a new chat begins. */
	ck_assert_int_eq(session_delete(s), 0);
	ck_assert_int_eq(session_conv(s), 0);
	ck_assert_int_eq(q_int("SELECT count(*) FROM conversations"), 0);
	ck_assert_int_eq(q_int("SELECT count(*) FROM messages"), 0);
	session_close(s);
}
END_TEST

/* --no-save: nothing written, ids made up, every action still coherent. */
START_TEST(test_session_no_save)
{
	model = open_model();
	o.no_save = 1;
	struct session *s = open_session();
	ck_assert(!session_saves(s));
	struct seen v = { 0 };
	ck_assert_int_eq(session_send(s, "hi"), 0);
	poll_until_idle(s, &v);
	int um = find(&v, SU_MESSAGE, 0);
	ck_assert_int_lt(v.id[um], 0);
	ck_assert_int_eq(session_last_user(s), v.id[um]);
	ck_assert_int_eq(session_regenerate(s), 0);
	poll_until_idle(s, NULL);
	ck_assert_int_eq(session_edit(s, session_last_user(s), "hello"), 0);
	poll_until_idle(s, NULL);
	ck_assert_int_eq(session_switch(s, 1), -1);
	ck_assert_int_eq(session_apply_preset(s, "concise"), -1);
	ck_assert_int_eq(access(tdb, F_OK), -1);
	session_close(s);
	/* A built-in preset works without the database; a stored one does not. */
	o.preset = "concise";
	int status = 0;
	s = session_open(&o, model, &status);
	ck_assert_ptr_nonnull(s);
	session_close(s);
	o.preset = "nonesuch";
	ck_assert_ptr_null(session_open(&o, model, &status));
}
END_TEST

/* History only (no model): the stored conversation is shown, the requests
 * that need a model fail with a reason. */
START_TEST(test_session_history_only)
{
	char pid[8];
	int64_t id[9];
	int64_t conv = import_skipped(pid, id);
	o.resume = pid;
	struct session *s = open_session();
	ck_assert(!session_has_model(s));
	ck_assert_int_eq(session_fd(s), -1);
	ck_assert_int_eq(session_conv(s), conv);
	struct seen v = { 0 };
	drain(s, &v);
	ck_assert_int_eq(v.n, 10);
	ck_assert_int_eq(session_send(s, "hi"), -1);
	ck_assert_ptr_nonnull(strstr(session_error(s), "no model"));
	ck_assert_int_eq(session_rename(s, "kept"), 0);
	session_close(s);
	/* An unknown id to resume is one clear error. */
	o.resume = "zzzzzz";
	int status = 0;
	ck_assert_ptr_null(session_open(&o, NULL, &status));
	ck_assert_int_eq(status, 1);
}
END_TEST

/* ---- the reply's text, once ----------------------------------------------------- */

/* What session_wait streamed, as `-p` prints it; stop_after > 0: the
 * request is stopped after that many non-empty pieces. */
struct stream {
	struct session *s;
	char text[8192];
	size_t len;
	int pieces, stop_after;
};

static void
on_piece(void *ud, const char *t, size_t n)
{
	struct stream *st = ud;
	if (n == 0)
		return;   /* session_wait's idle call */
	ck_assert_msg(st->len + n < sizeof st->text, "reply longer than the test's buffer");
	memcpy(st->text + st->len, t, n);
	st->len += n;
	st->text[st->len] = '\0';
	if (++st->pieces == st->stop_after)
		session_stop(st->s);
}

/* Replay ids through the streaming decoder: *straddles counts characters
 * whose bytes came from more than one token; returns 1 when the last
 * token left bytes held (a character cut by the end of the reply). */
static int
detok_straddles(const int32_t *ids, int n, int *straddles)
{
	struct engine_detok d;
	char *buf = malloc(engine_detok_max(model) + 1);
	ck_assert_ptr_nonnull(buf);
	engine_detok_init(&d, 1);
	int held = 0;
	for (int i = 0; i < n; i++) {
		int before = d.npend;
		size_t w = engine_detok_push(model, &d, ids[i], buf);
		if (before > 0 && w > 0 && (unsigned char)buf[0] >= 0xc0)
			(*straddles)++;
		held = d.npend > 0;
	}
	free(buf);
	return held;
}

/*
 * A reply's text lives once: what the stream gave (stdout of `-p`), what
 * session_reply_text hands to --json, what the file keeps and the decoding
 * of the ids the file keeps (which decides whether a resume may reuse
 * them) are the same bytes.  Random-weight models at temperature 1 emit
 * byte-level BPE pieces (Llama 3) and SentencePiece byte tokens that split
 * characters over tokens; some replies are stopped mid-way, one ends (by
 * its length limit) on a token that leaves a character unfinished.
 */
static const struct once_case {
	const char *model;
	uint64_t seed;
	int n_predict, stop_after;
} once_cases[] = {
	{ "models/fixture-llama3-f16.gguf", 1, 48, 0 }, { "models/fixture-llama3-f16.gguf", 2, 48, 3 },
	{ "models/fixture-llama3-f16.gguf", 3, 48, 0 }, { "models/fixture-llama3-f16.gguf", 4, 48, 5 },
	{ "models/fixture-q4_0.gguf", 1, 48, 0 }, { "models/fixture-q4_0.gguf", 2, 48, 4 },
	/* seed 1's fifth token is a byte token that starts a character: the
	 * length limit cuts the reply there */
	{ "models/fixture-q4_0.gguf", 1, 5, 0 },
};
enum { N_ONCE = sizeof once_cases / sizeof once_cases[0] };

START_TEST(test_session_reply_once)
{
	int straddles = 0, cut = 0, stopped = 0;
	for (int i = 0; i < N_ONCE; i++) {
		const struct once_case *c = &once_cases[i];
		char *p = fixture_path(c->model);
		ck_assert_ptr_nonnull(p);
		char *err = NULL;
		engine_close(model);
		model = engine_open(p, NULL, &err);
		ck_assert_msg(model != NULL, "case %d: %s", i, err);
		free(p);
		o.gen.samp.temp = 1;
		o.gen.samp.top_k = 0;
		o.gen.samp.top_p = 1;
		o.gen.samp.min_p = 0;
		o.gen.samp.ignore_eos = 1;
		o.gen.samp.seed = c->seed;
		o.gen.n_predict = c->n_predict;
		struct session *s = open_session();
		struct stream st = { .s = s, .stop_after = c->stop_after };
		ck_assert_msg(session_send(s, "Say something.") == 0, "case %d: %s", i, session_error(s));
		ck_assert_msg(session_wait(s, on_piece, &st) == 0, "case %d: %s", i, session_error(s));
		size_t jlen;
		const char *jtext = session_reply_text(s, &jlen);
		ck_assert_msg(jlen == st.len && memcmp(jtext ? jtext : "", st.text, st.len) == 0,
		    "case %d: --json text differs from the stream", i);
		int64_t conv = session_conv(s);
		session_close(s);
		struct db *d = db_open(tdb, &err);
		ck_assert_msg(d != NULL, "%s", err);
		struct db_conv *cv = db_conv_load(d, conv, &err);
		ck_assert_msg(cv != NULL && cv->n_messages == 2, "case %d: %s", i, err ? err : "not two rows");
		const struct db_message *r = &cv->messages[1];
		ck_assert_msg(strlen(r->content) == st.len && memcmp(r->content, st.text, st.len) == 0,
		    "case %d: stored \"%s\" but streamed \"%s\"", i, r->content, st.text);
		ck_assert_msg(r->n_tokens > 0, "case %d: no ids stored", i);
		char *dt = engine_detokenize(model, r->tokens, (int)r->n_tokens);
		ck_assert_msg(dt != NULL && strcmp(dt, r->content) == 0,
		    "case %d: the stored ids decode to \"%s\", the stored text is \"%s\"", i, dt, r->content);
		free(dt);
		if (c->stop_after > 0 && r->finish == FINISH_STOPPED)
			stopped++;
		/* The ids without the closing end token: was a character cut? */
		if (detok_straddles(r->tokens, (int)r->n_tokens - 1, &straddles))
			cut++;
		db_conv_free(cv);
		db_close(d);
	}
	/* The cases above must exercise what they are here for. */
	ck_assert_msg(straddles > 0, "no reply had a character split over tokens");
	ck_assert_msg(stopped > 0, "no reply was stopped mid-way");
	ck_assert_msg(cut > 0, "no reply ended inside a character");
	if (getenv("SESSION_TRACE"))
		fprintf(stderr, "reply_once: %d split characters, %d cut at the end, %d stopped\n", straddles, cut,
		    stopped);
}
END_TEST

/* ---- out of memory in the worker ----------------------------------------------- */

/* One exchange: send text (or regenerate when text is NULL) and wait. */
struct turn_out {
	int rc;
	char text[256];
	int prompt;               /* the prompt's tokens, reused ones included */
};

static void
turn(struct session *s, const char *text, struct turn_out *t)
{
	ck_assert_msg((text ? session_send(s, text) : session_regenerate(s)) == 0, "%s", session_error(s));
	t->rc = session_wait(s, NULL, NULL);
	size_t len;
	const char *r = session_reply_text(s, &len);
	snprintf(t->text, sizeof t->text, "%.*s", (int)len, r ? r : "");
	t->prompt = session_stats(s)->n_prompt + session_stats(s)->n_reused;
}

/*
 * The worker's events find no memory (worker_test_fail_events; the real
 * fixture model, nothing mocked).  Whichever event is lost, the request
 * ends in an error that session_wait returns (a hang fails the test by its
 * timeout), the file keeps nothing of it, and the worker is back at the
 * window: the next message is answered from the same prompt, with the same
 * greedy reply, as in a session where nothing failed.  A lost user-ids
 * event costs only the stored ids of the user's message.
 */
static const struct oom_case {
	const char *what;
	int type, skip, count;
	int regen;                /* the request that fails regenerates the first reply */
	int fails;
} oom_cases[] = {
	{ "the reply's end", WEV_DONE, 0, 1, 0, 1 },
	{ "its second token", WEV_TOKEN, 1, 1, 0, 1 },
	{ "every event", -1, 0, 1000, 0, 1 },
	{ "its user ids", WEV_USER_IDS, 0, 1, 0, 0 },
	{ "a regenerated reply's end", WEV_DONE, 0, 1, 1, 1 },
	{ "a regenerated reply's first token", WEV_TOKEN, 0, 1, 1, 1 },
	{ "every event of a regenerate", -1, 0, 1000, 1, 1 },
};
enum { N_OOM = sizeof oom_cases / sizeof oom_cases[0] };

START_TEST(test_session_worker_oom)
{
	model = open_model();
	/* What a session where nothing fails says. */
	struct turn_out ref1, ref2, t;
	free(tdb);
	ck_assert_int_ge(asprintf(&tdb, "%s/ref.db", tdir), 0);
	o.db = tdb;
	struct session *s = open_session();
	turn(s, "Hello", &ref1);
	turn(s, "How are you?", &ref2);
	ck_assert(ref1.rc == 0 && ref2.rc == 0);
	session_close(s);
	for (int i = 0; i < N_OOM; i++) {
		const struct oom_case *c = &oom_cases[i];
		free(tdb);
		ck_assert_int_ge(asprintf(&tdb, "%s/oom%d.db", tdir, i), 0);
		o.db = tdb;
		s = open_session();
		struct turn_out first = { 0 };
		if (c->regen)
			turn(s, "Hello", &first);
		worker_test_fail_events(s->w, c->type, c->skip, c->count);
		turn(s, c->regen ? NULL : "Hello", &t);
		worker_test_fail_events(s->w, -1, 0, 0);
		ck_assert_msg(!session_busy(s), "case %d (%s): still busy", i, c->what);
		if (c->fails) {
			ck_assert_msg(t.rc == -1, "case %d (%s): the request did not fail", i, c->what);
			ck_assert_msg(session_error(s) && strstr(session_error(s), "out of memory"), "case %d (%s): %s", i,
			    c->what, session_error(s) ? session_error(s) : "no error");
			/* Nothing of the request is left: no rows (the conversation
			 * made for it goes too), or the first exchange alone. */
			ck_assert_msg(q_int("SELECT count(*) FROM messages") == (c->regen ? 2 : 0), "case %d (%s): %lld rows",
			    i, c->what, (long long)q_int("SELECT count(*) FROM messages"));
			if (!c->regen)
				turn(s, "Hello", &first);
		} else {
			first = t;
		}
		ck_assert_msg(first.rc == 0 && strcmp(first.text, ref1.text) == 0 && first.prompt == ref1.prompt,
		    "case %d (%s): first reply \"%s\" from %d tokens, want \"%s\" from %d", i, c->what, first.text,
		    first.prompt, ref1.text, ref1.prompt);
		turn(s, "How are you?", &t);
		ck_assert_msg(t.rc == 0 && strcmp(t.text, ref2.text) == 0 && t.prompt == ref2.prompt,
		    "case %d (%s): second reply \"%s\" from %d tokens, want \"%s\" from %d", i, c->what, t.text,
		    t.prompt, ref2.text, ref2.prompt);
		int64_t conv = session_conv(s);
		session_close(s);
		char *r = rows(conv);
		ck_assert_msg(strcmp(r, "u:Hello|a:*|u:How are you?|a:*") == 0, "case %d (%s): rows %s", i, c->what, r);
		free(r);
	}
}
END_TEST

/* A conversation of one exchange, stored; its public id in pid. */
static void
store_one_exchange(char *pid)
{
	struct session *s = open_session();
	ck_assert_int_eq(session_send(s, "Tell me a story"), 0);
	poll_until_idle(s, NULL);
	snprintf(pid, 8, "%s", session_pid(s));
	session_close(s);
	o.resume = pid;
}

/* Apply the session's updates to a view model (the interface's way) until
 * one of type `until` has been applied; returns its stats. */
static struct engine_gen_stats
vm_until(struct session *s, struct viewmodel *vm, enum su_type until, int *max_streaming)
{
	struct session_update u;
	struct engine_gen_stats st = { 0 };
	for (int i = 0; i < 6000; i++) {
		int seen = 0;
		while (session_poll(s, &u)) {
			ck_assert_int_ge(viewmodel_apply(vm, &u), 0);
			if (u.type == SU_TEXT && max_streaming && vm->ctx_used > *max_streaming)
				*max_streaming = vm->ctx_used;
			if (u.type == until) {
				seen = 1;
				st = u.stats;
			}
			session_update_free(&u);
		}
		if (seen)
			return st;
		usleep(5000);
	}
	ck_abort_msg("update %d never came", until);
	return st;
}

/* Ctrl-R on a conversation resumed from the file: while the new reply
 * streams, the context gauge counts the prompt and the new reply only,
 * never the old reply (whose tokens the prompt drops from the cache).
 * The view has no figures of its own for a loaded reply, so only the
 * worker can say where the prompt ends. */
START_TEST(test_session_regen_gauge_resumed)
{
	model = open_model();
	o.gen.n_predict = 8;
	o.gen.samp.ignore_eos = 1;   /* the old reply is 8 tokens long */
	char pid[8];
	store_one_exchange(pid);
	struct session *s = open_session();
	struct viewmodel vm;
	viewmodel_init(&vm);
	vm_until(s, &vm, SU_LOADED, NULL);
	int before = vm.ctx_used;   /* the question and the old reply */
	ck_assert_int_gt(before, 8);
	ck_assert_msg(session_regenerate(s) == 0, "%s", session_error(s));
	int max_streaming = 0;
	struct engine_gen_stats st = vm_until(s, &vm, SU_FINISH, &max_streaming);
	ck_assert_int_eq(st.n_gen, 8);
	/* The same prompt and as long a reply: the context ends where it was. */
	ck_assert_int_le(st.ctx_used, before);
	/* While streaming the gauge counts every token shown; the last one
	 * sampled is never run through the model, so the end is one less. */
	ck_assert_msg(max_streaming > 0 && max_streaming <= st.ctx_used + 1,
	    "the gauge showed %d while streaming, %d at the end (%d before Ctrl-R)", max_streaming, st.ctx_used,
	    before);
	ck_assert_int_eq(vm.ctx_used, st.ctx_used);
	viewmodel_free(&vm);
	session_close(s);
}
END_TEST

/* With o->prefetch (the interface) the worker reads the model's file in
 * first, with its progress as view updates, and a resumed conversation is
 * prefilled only after it. */
START_TEST(test_session_prefetch)
{
	model = open_model();
	char pid[8];
	store_one_exchange(pid);
	o.prefetch = 1;
	struct session *s = open_session();
	int reading = -1, read = -1, loaded = -1, n = 0, done = -1, total = -1;
	for (int i = 0; i < 6000 && (read < 0 || loaded < 0); i++) {
		struct session_update u;
		while (session_poll(s, &u)) {
			if (u.type == SU_READING && reading < 0)
				reading = n;
			if (u.type == SU_READ) {
				read = n;
				done = u.done;
				total = u.total;
			}
			if (u.type == SU_LOADED)
				loaded = n;
			n++;
			session_update_free(&u);
		}
		usleep(5000);
	}
	ck_assert_msg(reading >= 0 && read > reading, "reading %d, read %d", reading, read);
	ck_assert_msg(loaded > read, "the conversation was loaded (%d) before the file was read (%d)", loaded, read);
	int kib = (int)(engine_info(model)->file_size >> 10);
	ck_assert_int_eq(total, kib);
	ck_assert_int_eq(done, kib);
	session_close(s);
}
END_TEST

/* A stopped or cut reply is stored closed by the family's end token; one
 * that ends on another end token (Llama 3's <|end_of_text|> beside its
 * EOS <|eot_id|>) is closed too, and resuming it must not add EOS after
 * it (one token more in the cache, and a sequence the model never saw). */
START_TEST(test_session_resume_other_end_token)
{
	model = open_model_file("models/fixture-llama3-f16.gguf");
	int32_t end_of_text = 128001;
	ck_assert(engine_is_eog(model, end_of_text) && engine_info(model)->eos != end_of_text);
	o.gen.n_predict = 3;
	o.gen.samp.ignore_eos = 1;
	char pid[8];
	store_one_exchange(pid);
	char *err = NULL;
	struct db *d = db_open(tdb, &err);
	ck_assert_msg(d != NULL, "%s", err);
	int64_t conv;
	ck_assert_int_eq(db_conv_resolve(d, pid, &conv, &err), 0);
	struct db_conv *c = db_conv_load(d, conv, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->n_messages, 2);
	struct db_message *r = &c->messages[1];
	ck_assert(r->n_tokens == 4 && engine_is_eog(model, r->tokens[3]));
	r->tokens[3] = end_of_text;
	ck_assert_int_eq(db_message_set_tokens(d, r->id, r->tokens, r->n_tokens, &err), 0);
	int stored = (int)(c->messages[0].n_tokens + r->n_tokens);
	db_conv_free(c);
	db_close(d);
	struct session *s = open_session();
	struct viewmodel vm;
	viewmodel_init(&vm);
	vm_until(s, &vm, SU_LOADED, NULL);
	ck_assert_int_eq(vm.ctx_used, stored);   /* the stored ids, and nothing added */
	viewmodel_free(&vm);
	session_close(s);
}
END_TEST

Suite *session_suite(void);

Suite *
session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_fixture_test(tc, test_session_send_store);
	tcase_add_fixture_test(tc, test_session_skipped_rows);
	tcase_add_fixture_test(tc, test_session_load_writes_nothing);
	tcase_add_fixture_test(tc, test_session_failed_request);
	tcase_add_fixture_test(tc, test_session_actions);
	tcase_add_fixture_test(tc, test_session_no_save);
	tcase_add_test(tc, test_session_history_only);
	tcase_add_fixture_test(tc, test_session_reply_once);
	tcase_add_fixture_test(tc, test_session_worker_oom);
	tcase_add_fixture_test(tc, test_session_regen_gauge_resumed);
	tcase_add_fixture_test(tc, test_session_prefetch);
	tcase_add_fixture_test(tc, test_session_resume_other_end_token);
	suite_add_tcase(s, tc);
	return s;
}
