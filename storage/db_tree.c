/*
 * db_tree.c: a conversation as a tree of messages: the siblings of a
 * message, the current branch (root to leaf), making another branch
 * current, and deleting a message with everything under it.
 *
 * Invariants (see migration 2 in db_schema.c and db_msg.c): a child has a
 * larger position than its parent, so a branch sorted by position runs from
 * the root to the leaf and the newest descendant of a message is a leaf.
 * Siblings are ordered by position (the order they were written); the
 * first alternative is number 1 for people, index 0 here.
 */
#include "storage/db_int.h"

#include <stdlib.h>
#include <string.h>

/* db_rows' callback: column 0 as an int64. */
static int
db_tree_id_row(sqlite3_stmt *st, void *elem)
{
	*(int64_t *)elem = sqlite3_column_int64(st, 0);
	return 0;
}

/* The rows of st's first column as an int64 array: 0 with *ids (malloc'd,
 * NULL when empty) and *n, or -1 with *err.  Finalizes st. */
static int
db_tree_ids(struct db *d, sqlite3_stmt *st, int64_t **ids, size_t *n, char **err,
    const char *what)
{
	void *a;
	size_t cnt;
	int rc = db_rows(d, st, sizeof(int64_t), db_tree_id_row, &a, &cnt, err, what);
	sqlite3_finalize(st);
	if (rc != 0) {
		free(a);
		*ids = NULL;
		*n = 0;
		return -1;
	}
	*ids = a;
	*n = cnt;
	return 0;
}

int
db_message_siblings(struct db *d, int64_t msg_id, int64_t **ids, size_t *n, size_t *index,
    char **err)
{
	static const char what[] = "cannot read the alternatives";
	*ids = NULL;
	*n = 0;
	sqlite3_stmt *st = db_prep(d, "SELECT s.id FROM messages m JOIN messages s"
	    " ON s.conversation_id = m.conversation_id AND s.parent IS m.parent"
	    " WHERE m.id = ? ORDER BY s.position", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	if (db_tree_ids(d, st, ids, n, err, what) != 0)
		return -1;
	if (*n == 0)
		return db_errf(err, "%s: no such message", what);
	for (size_t i = 0; i < *n; i++)
		if ((*ids)[i] == msg_id)
			*index = i;
	return 0;
}

int
db_conv_branch(struct db *d, int64_t conv, int64_t **ids, size_t *n, char **err)
{
	static const char what[] = "cannot read the current branch";
	sqlite3_stmt *st = db_prep(d, "WITH RECURSIVE b(id) AS (SELECT " DB_LEAF_SQL("?1")
	    " UNION ALL SELECT m.parent FROM messages m JOIN b ON m.id = b.id"
	    " WHERE m.parent IS NOT NULL)"
	    " SELECT m.id FROM messages m JOIN b ON m.id = b.id ORDER BY m.position", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, conv);
	return db_tree_ids(d, st, ids, n, err, what);
}

int
db_conv_select(struct db *d, int64_t conv, int64_t msg_id, int64_t *leaf, char **err)
{
	static const char what[] = "cannot switch the branch";
	if (db_begin(d, err, what) != 0)
		return -1;
	/* The newest message of the subtree under msg_id (itself included). */
	sqlite3_stmt *st = db_prep(d, "WITH RECURSIVE t(id) AS (SELECT id FROM messages"
	    " WHERE id = ?1 AND conversation_id = ?2"
	    " UNION ALL SELECT m.id FROM messages m JOIN t ON m.parent = t.id)"
	    " SELECT m.id FROM messages m JOIN t ON m.id = t.id ORDER BY m.position DESC LIMIT 1",
	    err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_int64(st, 2, conv);
	int rc = sqlite3_step(st);
	int64_t newest = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		db_fail(d, err, what);
	else if (rc == SQLITE_DONE)
		db_errf(err, "%s: no such message in this conversation", what);
	sqlite3_finalize(st);
	if (newest == 0)
		goto fail;
	st = db_prep(d, "UPDATE conversations SET leaf = ?, updated = ? WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, newest);
	sqlite3_bind_int64(st, 2, db_now_ms());
	sqlite3_bind_int64(st, 3, conv);
	rc = db_step_one(d, st, err, what, "no such conversation");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	if (db_commit(d, err, what) != 0)
		return -1;
	if (leaf != NULL)
		*leaf = newest;
	return 0;
fail:
	db_rollback(d);
	return -1;
}

int
db_message_delete(struct db *d, int64_t msg_id, char **err)
{
	static const char what[] = "cannot delete the message";
	if (db_begin(d, err, what) != 0)
		return -1;
	/* Is the message on the current branch?  Then its parent becomes the
	 * leaf, so the branch stays where it was instead of jumping. */
	sqlite3_stmt *st = db_prep(d, "WITH RECURSIVE b(id) AS (SELECT " DB_LEAF_SQL("m.conversation_id")
	    " FROM messages m WHERE m.id = ?1"
	    " UNION ALL SELECT p.parent FROM messages p JOIN b ON p.id = b.id"
	    " WHERE p.parent IS NOT NULL)"
	    " SELECT m.conversation_id, m.parent, ?1 IN (SELECT id FROM b)"
	    " FROM messages m WHERE m.id = ?1", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			db_errf(err, "%s: no such message", what);
		else
			db_fail(d, err, what);
		sqlite3_finalize(st);
		goto fail;
	}
	int64_t conv = sqlite3_column_int64(st, 0), parent = sqlite3_column_int64(st, 1);
	int on_branch = sqlite3_column_int(st, 2);
	sqlite3_finalize(st);
	/* Children go with it (ON DELETE CASCADE on parent). */
	st = db_prep(d, "DELETE FROM messages WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, msg_id);
	rc = db_step_one(d, st, err, what, "no such message");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	st = db_prep(d, on_branch ? "UPDATE conversations SET leaf = ?1, updated = ?2 WHERE id = ?3" :
	    "UPDATE conversations SET updated = ?2 WHERE id = ?3", err, what);
	if (st == NULL)
		goto fail;
	if (parent > 0)
		sqlite3_bind_int64(st, 1, parent);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_int64(st, 2, db_now_ms());
	sqlite3_bind_int64(st, 3, conv);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		db_fail(d, err, what);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}

int
db_message_parent(struct db *d, int64_t msg_id, int64_t *parent, char **err)
{
	static const char what[] = "cannot read the message";
	sqlite3_stmt *st = db_prep(d, "SELECT COALESCE(parent, 0) FROM messages WHERE id = ?", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW)
		*parent = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		ret = db_errf(err, "%s: no such message", what);
	else
		ret = db_fail(d, err, what);
	sqlite3_finalize(st);
	return ret;
}
