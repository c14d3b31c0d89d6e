/*
 * db_msg.c: messages of a conversation: append (as a child of the current
 * leaf or of any message: conversations are trees, see migration 2 in
 * db_schema.c), token ids, the assistant reply written as it streams
 * (begin, update, finish), siblings, the current branch and switching it,
 * and deleting.  Every write is one transaction (see db.c).
 *
 * Invariants.  A message's parent is in the same conversation and has a
 * smaller position (positions are handed out in writing order), so a
 * branch read in position order runs from the root to the leaf, and the
 * newest descendant of any message is a leaf.  Every write that adds a
 * message makes it the conversation's current leaf.
 */
#include "storage/db_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages ------------------------------------------------------------ */

int
db_message_insert(struct db *d, int64_t conv, int64_t parent, struct db_message *m, int flags,
    char **err, const char *what)
{
	int import = (flags & DB_INSERT_IMPORT) != 0;
	if (!db_json_object_ok(d, m->stats) || !db_json_object_ok(d, m->sampler))
		return db_errf(err, "%s: stats or sampler settings are not a JSON object", what);
	if (db_role_name(m->role) == NULL || (unsigned)m->finish > FINISH_INTERRUPTED)
		return db_errf(err, "%s: bad role or finish reason", what);

	sqlite3_stmt *st = db_prep(d, "SELECT title IS NULL, (SELECT COALESCE(max(position) + 1, 0)"
	    " FROM messages WHERE conversation_id = ?1), " DB_LEAF_SQL("?1")
	    " FROM conversations WHERE id = ?1", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, conv);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			db_errf(err, "%s: no such conversation", what);
		else
			db_fail(d, err, what);
		sqlite3_finalize(st);
		return -1;
	}
	int untitled = sqlite3_column_int(st, 0);
	int position = sqlite3_column_int(st, 1);
	if (parent < 0)
		parent = sqlite3_column_int64(st, 2);   /* NULL (no messages yet) reads as 0: a root */
	sqlite3_finalize(st);
	if (flags & DB_INSERT_KEEP_POSITION) {
		if (m->position < position)
			return db_errf(err, "%s: message positions must increase", what);
		position = m->position;
	}

	int64_t now = import ? m->created : db_now_ms();
	st = db_prep(d, "INSERT INTO messages(conversation_id, position, role, content, tokens,"
	    " created, finish, stats, sampler, seed, parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int(st, 2, position);
	sqlite3_bind_text(st, 3, db_role_name(m->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->content != NULL ? m->content : "", -1, SQLITE_STATIC);
	if (db_bind_tokens(st, 5, m->tokens, m->n_tokens) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_errf(err, "%s: out of memory", what);
	}
	sqlite3_bind_int64(st, 6, now);
	db_bind_text(st, 7, db_finish_name(m->finish));
	db_bind_text(st, 8, m->stats);
	db_bind_text(st, 9, m->sampler);
	if (m->has_seed)
		sqlite3_bind_int64(st, 10, (int64_t)m->seed);
	else
		sqlite3_bind_null(st, 10);
	if (parent > 0)
		sqlite3_bind_int64(st, 11, parent);
	else
		sqlite3_bind_null(st, 11);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(d->h) == SQLITE_CONSTRAINT_FOREIGNKEY)
			return db_errf(err, "%s: no such parent message", what);
		return db_fail(d, err, what);
	}
	m->id = sqlite3_last_insert_rowid(d->h);
	m->position = position;
	m->created = now;
	m->parent = parent > 0 ? parent : 0;
	if (import)
		return 0;

	char *title = NULL;
	if (untitled && m->role == ROLE_USER)
		title = db_title_from(m->content);
	st = db_prep(d, "UPDATE conversations SET updated = ?, title = COALESCE(title, ?), leaf = ?"
	    " WHERE id = ?", err, what);
	if (st == NULL) {
		free(title);
		return -1;
	}
	sqlite3_bind_int64(st, 1, now);
	db_bind_text(st, 2, title);
	sqlite3_bind_int64(st, 3, m->id);
	sqlite3_bind_int64(st, 4, conv);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(title);
	if (rc != SQLITE_DONE)
		return db_fail(d, err, what);
	return 0;
}

/* Append or add: one transaction around db_message_insert. */
static int
db_message_write(struct db *d, int64_t conv, int64_t parent, struct db_message *m, char **err)
{
	static const char what[] = "cannot save the message";
	if (db_begin(d, err, what) != 0)
		return -1;
	if (db_message_insert(d, conv, parent, m, 0, err, what) != 0) {
		db_rollback(d);
		return -1;
	}
	return db_commit(d, err, what);
}

int
db_message_append(struct db *d, int64_t conv, struct db_message *m, char **err)
{
	return db_message_write(d, conv, -1, m, err);
}

int
db_message_add(struct db *d, int64_t conv, int64_t parent, struct db_message *m, char **err)
{
	return db_message_write(d, conv, parent > 0 ? parent : 0, m, err);
}

int
db_message_set_tokens(struct db *d, int64_t msg_id, const int32_t *tokens, size_t n_tokens,
    char **err)
{
	static const char what[] = "cannot save the token ids";
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, "UPDATE messages SET tokens = ? WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	if (db_bind_tokens(st, 1, tokens, n_tokens) != SQLITE_OK) {
		sqlite3_finalize(st);
		db_errf(err, "%s: out of memory", what);
		goto fail;
	}
	sqlite3_bind_int64(st, 2, msg_id);
	return db_step_commit(d, st, err, what, "cannot save the token ids: no such message");
fail:
	db_rollback(d);
	return -1;
}

int
db_reply_begin(struct db *d, int64_t conv, const char *sampler, int has_seed, uint64_t seed,
    int64_t *msg_id, char **err)
{
	struct db_message m = {
		.role = ROLE_ASSISTANT,
		.content = "",
		.finish = FINISH_INTERRUPTED,
		.sampler = (char *)sampler,
		.has_seed = has_seed,
		.seed = seed,
	};
	if (db_message_append(d, conv, &m, err) != 0)
		return -1;
	*msg_id = m.id;
	return 0;
}

/* The body of update and finish: one transaction, the message row and the
 * conversation's updated time. */
static int
db_reply_write(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, int set_finish, enum finish finish, const char *stats, int64_t user_id,
    const int32_t *user_tokens, size_t n_user_tokens, char **err)
{
	static const char what[] = "cannot save the reply";
	if (set_finish && !db_json_object_ok(d, stats))
		return db_errf(err, "%s: stats are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st;
	int rc;
	if (user_id != 0) {
		st = db_prep(d, "UPDATE messages SET tokens = ? WHERE id = ? AND role = 'user'", err, what);
		if (st == NULL)
			goto fail;
		if (db_bind_tokens(st, 1, user_tokens, n_user_tokens) != SQLITE_OK) {
			sqlite3_finalize(st);
			db_errf(err, "%s: out of memory", what);
			goto fail;
		}
		sqlite3_bind_int64(st, 2, user_id);
		rc = db_step_one(d, st, err, what, "cannot save the token ids: no such user message");
		sqlite3_finalize(st);
		if (rc != 0)
			goto fail;
	}
	st = db_prep(d, set_finish ?
	    "UPDATE messages SET content = ?, tokens = ?, finish = ?, stats = ?"
	    " WHERE id = ? AND role = 'assistant'" :
	    "UPDATE messages SET content = ?, tokens = ? WHERE id = ? AND role = 'assistant'",
	    err, what);
	if (st == NULL)
		goto fail;
	int i = 1;
	sqlite3_bind_text(st, i++, content != NULL ? content : "", -1, SQLITE_STATIC);
	if (db_bind_tokens(st, i++, tokens, n_tokens) != SQLITE_OK) {
		sqlite3_finalize(st);
		db_errf(err, "%s: out of memory", what);
		goto fail;
	}
	if (set_finish) {
		db_bind_text(st, i++, db_finish_name(finish));
		db_bind_text(st, i++, stats);
	}
	sqlite3_bind_int64(st, i, msg_id);
	rc = db_step_one(d, st, err, what, "cannot save the reply: no such reply");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	st = db_prep(d, "UPDATE conversations SET updated = ?"
	    " WHERE id = (SELECT conversation_id FROM messages WHERE id = ?)", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, db_now_ms());
	sqlite3_bind_int64(st, 2, msg_id);
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
db_reply_update(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, char **err)
{
	return db_reply_write(d, msg_id, content, tokens, n_tokens, 0, FINISH_NONE, NULL, 0, NULL, 0, err);
}

int
db_reply_finish(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, enum finish finish, const char *stats, char **err)
{
	return db_turn_finish(d, msg_id, content, tokens, n_tokens, finish, stats, 0, NULL, 0, err);
}

int
db_turn_finish(struct db *d, int64_t reply_id, const char *content, const int32_t *tokens,
    size_t n_tokens, enum finish finish, const char *stats, int64_t user_id, const int32_t *user_tokens,
    size_t n_user_tokens, char **err)
{
	if ((unsigned)finish > FINISH_INTERRUPTED)
		return db_errf(err, "cannot save the reply: bad finish reason");
	return db_reply_write(d, reply_id, content, tokens, n_tokens, 1, finish, stats, user_id, user_tokens,
	    n_user_tokens, err);
}

int
db_message_delete_from(struct db *d, int64_t conv, int64_t msg_id, char **err)
{
	static const char what[] = "cannot delete messages";
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, "UPDATE conversations SET updated = ? WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, db_now_ms());
	sqlite3_bind_int64(st, 2, conv);
	int rc = db_step_one(d, st, err, what, "no such conversation");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	/* The message must be one of conv's: a stale id deletes nothing. */
	st = db_prep(d, "DELETE FROM messages WHERE conversation_id = ?1 AND position >="
	    " (SELECT position FROM messages WHERE id = ?2 AND conversation_id = ?1)", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int64(st, 2, msg_id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		db_fail(d, err, what);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	if (sqlite3_changes(d->h) == 0) {
		db_errf(err, "%s: no such message", what);
		goto fail;
	}
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}
