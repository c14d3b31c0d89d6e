/*
 * check_tree.c: conversations as trees of messages (suite tree).  A
 * version-1 database upgrades to single branches; alternatives are siblings
 * with their number and count; the current branch follows the leaf, and
 * choosing a sibling makes its newest descendant the leaf; deleting a
 * message takes its subtree and leaves the branch on its parent; a parent
 * from another conversation is refused; search sees every branch; the JSON
 * export carries the whole tree and import -> export gives it back byte for
 * byte; Markdown shows the current branch only.  What a conversation does
 * with a model (replay, branches, resuming) is check_replay.c's.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	return s;
}
