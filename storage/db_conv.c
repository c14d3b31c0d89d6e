/*
 * db_conv.c: conversations: create, update, rename, delete, resolve a public
 * id prefix, load one with its current branch or its whole tree of
 * messages, list, count, and import a whole conversation (db_conv_insert).
 * Every write is one transaction (see db.c).
 */
#include "storage/db_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- conversations -------------------------------------------------------- */

int
db_conv_create(struct db *d, struct db_conv *c, char **err)
{
	static const char what[] = "cannot create a conversation";
	if (!db_json_object_ok(d, c->params))
		return db_errf(err, "%s: parameters are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d,
	    "INSERT INTO conversations(pid, title, created, updated, model_name, model_fingerprint,"
	    " system_prompt, preset, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", err, what);
	if (st == NULL)
		goto fail;
	int64_t now = db_now_ms();
	char pid[DB_PID_LEN + 1];
	int rc = SQLITE_CONSTRAINT_UNIQUE;
	/* A clash of random ids is rare; draw again a few times. */
	for (int tries = 0; tries < 16 && rc == SQLITE_CONSTRAINT_UNIQUE; tries++) {
		db_pid_random(pid);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
		db_bind_text(st, 2, c->title != NULL && *c->title ? c->title : NULL);
		sqlite3_bind_int64(st, 3, now);
		sqlite3_bind_int64(st, 4, now);
		db_bind_text(st, 5, c->model_name);
		db_bind_text(st, 6, c->model_fingerprint);
		db_bind_text(st, 7, c->system_prompt);
		db_bind_text(st, 8, c->preset);
		db_bind_text(st, 9, c->params);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			rc = sqlite3_extended_errcode(d->h);
	}
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	int64_t id = sqlite3_last_insert_rowid(d->h);
	if (db_commit(d, err, what) != 0)
		return -1;
	c->id = id;
	memcpy(c->pid, pid, sizeof pid);
	c->created = c->updated = now;
	c->n_messages = 0;
	return 0;
fail:
	db_rollback(d);
	return -1;
}

int
db_conv_update(struct db *d, const struct db_conv *c, char **err)
{
	static const char what[] = "cannot update the conversation";
	if (!db_json_object_ok(d, c->params))
		return db_errf(err, "%s: parameters are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d,
	    "UPDATE conversations SET title = ?, model_name = ?, model_fingerprint = ?,"
	    " system_prompt = ?, preset = ?, params = ?, updated = ? WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	db_bind_text(st, 1, c->title != NULL && *c->title ? c->title : NULL);
	db_bind_text(st, 2, c->model_name);
	db_bind_text(st, 3, c->model_fingerprint);
	db_bind_text(st, 4, c->system_prompt);
	db_bind_text(st, 5, c->preset);
	db_bind_text(st, 6, c->params);
	sqlite3_bind_int64(st, 7, db_now_ms());
	sqlite3_bind_int64(st, 8, c->id);
	return db_step_commit(d, st, err, what, "no such conversation");
fail:
	db_rollback(d);
	return -1;
}

int
db_conv_rename(struct db *d, int64_t id, const char *title, char **err)
{
	static const char what[] = "cannot rename the conversation";
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, "UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
	    err, what);
	if (st == NULL)
		goto fail;
	db_bind_text(st, 1, title != NULL && *title ? title : NULL);
	sqlite3_bind_int64(st, 2, db_now_ms());
	sqlite3_bind_int64(st, 3, id);
	return db_step_commit(d, st, err, what, "no such conversation");
fail:
	db_rollback(d);
	return -1;
}

int
db_conv_delete(struct db *d, int64_t id, char **err)
{
	static const char what[] = "cannot delete the conversation";
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, "DELETE FROM conversations WHERE id = ?", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	return db_step_commit(d, st, err, what, "no such conversation");
fail:
	db_rollback(d);
	return -1;
}

int
db_conv_resolve(struct db *d, const char *prefix, int64_t *id, char **err)
{
	enum { SHOW = 5 };
	static const char what[] = "cannot look up the conversation";
	char p[DB_PID_LEN + 2];
	size_t len = prefix != NULL ? strlen(prefix) : 0;

	if (len == 0)
		return db_errf(err, "empty conversation id");
	if (len > DB_PID_LEN)
		return db_errf(err, "no conversation with id '%s' (ids are %d characters)", prefix,
		    DB_PID_LEN);
	for (size_t i = 0; i < len; i++) {
		p[i] = (char)tolower((unsigned char)prefix[i]);
		if (strchr(DB_PID_ALPHABET, p[i]) == NULL)
			return db_errf(err, "no conversation with id '%s'", prefix);
	}
	p[len] = '\0';

	/* Every id with this prefix sorts in [p, p + "~"): the unique index on
	 * pid answers it without a scan. */
	sqlite3_stmt *st = db_prep(d,
	    "SELECT id, pid, title, (SELECT count(*) FROM conversations"
	    "  WHERE pid >= ?1 AND pid < ?1 || '~')"
	    " FROM conversations WHERE pid >= ?1 AND pid < ?1 || '~' ORDER BY pid LIMIT ?2",
	    err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, p, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, SHOW);

	char *list = NULL;
	size_t listlen = 0;
	FILE *f = open_memstream(&list, &listlen);
	int n = 0, total = 0, rc;
	int64_t found = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == 0)
			found = sqlite3_column_int64(st, 0);
		total = sqlite3_column_int(st, 3);
		const char *t = (const char *)sqlite3_column_text(st, 2);
		if (f != NULL)
			fprintf(f, "%s%s (%s)", n > 0 ? ", " : "", sqlite3_column_text(st, 1),
			    t != NULL ? t : "untitled");
		n++;
	}
	if (f != NULL)
		fclose(f);
	int ret = 0;
	if (rc != SQLITE_DONE)
		ret = db_fail(d, err, what);
	else if (n == 0)
		ret = db_errf(err, "no conversation with id '%s'", prefix);
	else if (n > 1) {
		if (total > n)
			ret = db_errf(err, "id '%s' is ambiguous: %s and %d more", prefix,
			    list != NULL ? list : "", total - n);
		else
			ret = db_errf(err, "id '%s' is ambiguous: %s", prefix, list != NULL ? list : "");
	}
	free(list);
	sqlite3_finalize(st);
	if (ret == 0)
		*id = found;
	return ret;
}

int
db_conv_latest(struct db *d, int64_t *id, char **err)
{
	static const char what[] = "cannot find the last conversation";
	sqlite3_stmt *st = db_prep(d,
	    "SELECT id FROM conversations ORDER BY updated DESC, id DESC LIMIT 1", err, what);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = db_fail(d, err, what);
	}
	sqlite3_finalize(st);
	return ret;
}

#define CONV_COLUMNS \
	"id, pid, title, created, updated, model_name, model_fingerprint, system_prompt, preset," \
	" params, n_messages"

/* Fill c from a row of CONV_COLUMNS; -1 when out of memory. */
static int
db_conv_from_row(sqlite3_stmt *st, struct db_conv *c)
{
	int oom = 0;
	memset(c, 0, sizeof *c);
	c->id = sqlite3_column_int64(st, 0);
	const unsigned char *pid = sqlite3_column_text(st, 1);
	snprintf(c->pid, sizeof c->pid, "%s", pid != NULL ? (const char *)pid : "");
	c->title = db_col_text(st, 2, &oom);
	c->created = sqlite3_column_int64(st, 3);
	c->updated = sqlite3_column_int64(st, 4);
	c->model_name = db_col_text(st, 5, &oom);
	c->model_fingerprint = db_col_text(st, 6, &oom);
	c->system_prompt = db_col_text(st, 7, &oom);
	c->preset = db_col_text(st, 8, &oom);
	c->params = db_col_text(st, 9, &oom);
	c->n_messages = sqlite3_column_int(st, 10);
	return oom ? -1 : 0;
}

static void
db_message_clear(struct db_message *m)
{
	free(m->content);
	free(m->tokens);
	free(m->stats);
	free(m->sampler);
}

/* Free what c owns, not c itself. */
static void
db_conv_clear(struct db_conv *c)
{
	free(c->title);
	free(c->model_name);
	free(c->model_fingerprint);
	free(c->system_prompt);
	free(c->preset);
	free(c->params);
	if (c->messages != NULL)
		for (int i = 0; i < c->n_messages; i++)
			db_message_clear(&c->messages[i]);
	free(c->messages);
}

void
db_conv_free(struct db_conv *c)
{
	if (c == NULL)
		return;
	db_conv_clear(c);
	free(c);
}

void
db_conv_array_free(struct db_conv *a, size_t n)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_conv_clear(&a[i]);
	free(a);
}

/* Columns of a message row, in the order db_conv_message_from_row reads them. */
#define MSG_COLUMNS \
	"m.id, m.position, m.role, m.content, m.tokens, m.created, m.finish, m.stats, m.sampler," \
	" m.seed, COALESCE(m.parent, 0), COALESCE((SELECT p.position FROM messages p" \
	" WHERE p.id = m.parent), -1), (SELECT count(*) FROM messages s" \
	" WHERE s.conversation_id = m.conversation_id AND s.parent IS m.parent)," \
	" (SELECT count(*) FROM messages s WHERE s.conversation_id = m.conversation_id" \
	" AND s.parent IS m.parent AND s.position < m.position)"

/* Fill m (zeroed first) from a row of MSG_COLUMNS; -1 when out of memory
 * (what was read is freed by the caller's db_conv_free). */
static int
db_conv_message_from_row(sqlite3_stmt *st, struct db_message *m)
{
	int oom = 0;
	memset(m, 0, sizeof *m);
	m->id = sqlite3_column_int64(st, 0);
	m->position = sqlite3_column_int(st, 1);
	if (db_role_parse((const char *)sqlite3_column_text(st, 2), &m->role) != 0)
		m->role = ROLE_USER;
	m->content = db_col_text(st, 3, &oom);
	if (m->content == NULL && !oom)
		m->content = strdup("");
	if (m->content == NULL || db_col_tokens(st, 4, &m->tokens, &m->n_tokens) != 0)
		return -1;
	m->created = sqlite3_column_int64(st, 5);
	if (db_finish_parse((const char *)sqlite3_column_text(st, 6), &m->finish) != 0)
		m->finish = FINISH_NONE;
	m->stats = db_col_text(st, 7, &oom);
	m->sampler = db_col_text(st, 8, &oom);
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		m->has_seed = 1;
		m->seed = (uint64_t)sqlite3_column_int64(st, 9);
	}
	m->parent = sqlite3_column_int64(st, 10);
	m->parent_position = sqlite3_column_int(st, 11);
	m->n_siblings = sqlite3_column_int(st, 12);
	m->sibling = sqlite3_column_int(st, 13);
	return oom ? -1 : 0;
}

/* db_rows' callbacks. */
static int
db_conv_row(sqlite3_stmt *st, void *elem)
{
	return db_conv_from_row(st, elem);
}

static int
db_conv_message_row(sqlite3_stmt *st, void *elem)
{
	return db_conv_message_from_row(st, elem);
}

/* The body of db_conv_load and db_conv_load_tree. */
static struct db_conv *
db_conv_read(struct db *d, int64_t id, int tree, char **err)
{
	static const char what[] = "cannot load the conversation";
	struct db_conv *c = calloc(1, sizeof *c);
	sqlite3_stmt *st = NULL;
	int rc;

	if (c == NULL) {
		db_errf(err, "out of memory");
		return NULL;
	}
	if (db_begin_read(d, err, what) != 0) {
		free(c);
		return NULL;
	}
	st = db_prep(d, "SELECT " CONV_COLUMNS ", " DB_LEAF_SQL("?1")
	    " FROM conversations WHERE id = ?1", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		db_errf(err, "no such conversation");
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		db_fail(d, err, what);
		goto fail;
	}
	if (db_conv_from_row(st, c) != 0)
		goto oom;
	c->leaf = sqlite3_column_int64(st, 11);
	c->leaf_position = -1;
	c->tree = tree;
	sqlite3_finalize(st);
	c->n_messages = 0;

	if (tree)
		st = db_prep(d, "SELECT " MSG_COLUMNS " FROM messages m WHERE m.conversation_id = ?1"
		    " ORDER BY m.position", err, what);
	else
		st = db_prep(d, "WITH RECURSIVE b(id) AS (SELECT ?2 UNION ALL SELECT p.parent"
		    " FROM messages p JOIN b ON p.id = b.id WHERE p.parent IS NOT NULL)"
		    " SELECT " MSG_COLUMNS " FROM messages m JOIN b ON m.id = b.id"
		    " WHERE m.conversation_id = ?1 ORDER BY m.position", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (!tree)
		sqlite3_bind_int64(st, 2, c->leaf);
	void *ms;
	size_t nm;
	rc = db_rows(d, st, sizeof(struct db_message), db_conv_message_row, &ms, &nm, err, what);
	c->messages = ms;
	c->n_messages = (int)nm;
	if (rc != 0)
		goto fail;
	for (int i = 0; i < c->n_messages; i++)
		if (c->messages[i].id == c->leaf)
			c->leaf_position = c->messages[i].position;
	sqlite3_finalize(st);
	db_end_read(d);
	return c;
oom:
	db_errf(err, "%s: out of memory", what);
fail:
	sqlite3_finalize(st);
	db_end_read(d);
	db_conv_free(c);
	return NULL;
}

struct db_conv *
db_conv_load(struct db *d, int64_t id, char **err)
{
	return db_conv_read(d, id, 0, err);
}

struct db_conv *
db_conv_load_tree(struct db *d, int64_t id, char **err)
{
	return db_conv_read(d, id, 1, err);
}

int
db_conv_list(struct db *d, int limit, struct db_conv **out, size_t *n, char **err)
{
	static const char what[] = "cannot list conversations";
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st = db_prep(d, "SELECT " CONV_COLUMNS " FROM conversations"
	    " ORDER BY updated DESC, id DESC LIMIT ?", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, limit > 0 ? limit : -1);
	void *a;
	size_t cnt;
	int rc = db_rows(d, st, sizeof(struct db_conv), db_conv_row, &a, &cnt, err, what);
	sqlite3_finalize(st);
	if (rc != 0) {
		db_conv_array_free(a, cnt);
		return -1;
	}
	*out = a;
	*n = cnt;
	return 0;
}

int
db_conv_count(struct db *d, int64_t *n, char **err)
{
	static const char what[] = "cannot count conversations";
	sqlite3_stmt *st = db_prep(d, "SELECT count(*) FROM conversations", err, what);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(st, 0);
	else
		ret = db_fail(d, err, what);
	sqlite3_finalize(st);
	return ret;
}


/* Index of the message at position pos among the first n of a (sorted by
 * position), or -1. */
static int
db_conv_find_position(const struct db_message *a, int n, int pos)
{
	int lo = 0, hi = n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		if (a[mid].position == pos)
			return mid;
		if (a[mid].position < pos)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

int
db_conv_insert(struct db *d, struct db_conv *c, char **err)
{
	static const char what[] = "cannot import the conversation";
	if (!db_json_object_ok(d, c->params))
		return db_errf(err, "%s: parameters are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d,
	    "INSERT INTO conversations(pid, title, created, updated, model_name, model_fingerprint,"
	    " system_prompt, preset, params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", err, what);
	if (st == NULL)
		goto fail;
	char pid[DB_PID_LEN + 1];
	int rc = SQLITE_CONSTRAINT_UNIQUE;
	for (int tries = 0; tries < 16 && rc == SQLITE_CONSTRAINT_UNIQUE; tries++) {
		db_pid_random(pid);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
		db_bind_text(st, 2, c->title != NULL && *c->title ? c->title : NULL);
		sqlite3_bind_int64(st, 3, c->created);
		sqlite3_bind_int64(st, 4, c->updated);
		db_bind_text(st, 5, c->model_name);
		db_bind_text(st, 6, c->model_fingerprint);
		db_bind_text(st, 7, c->system_prompt);
		db_bind_text(st, 8, c->preset);
		db_bind_text(st, 9, c->params);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			rc = sqlite3_extended_errcode(d->h);
	}
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	int64_t id = sqlite3_last_insert_rowid(d->h);
	int64_t leaf = 0;
	for (int i = 0; i < c->n_messages; i++) {
		struct db_message *m = &c->messages[i];
		/* A tree names each parent by its position; anything else (an
		 * older export, another program's) is one branch in order. */
		int64_t parent = i > 0 ? c->messages[i - 1].id : 0;
		if (c->tree) {
			parent = 0;
			if (m->parent_position >= 0) {
				int k = db_conv_find_position(c->messages, i, m->parent_position);
				if (k < 0) {
					db_errf(err, "%s: message %d: its parent %d is not an earlier message",
					    what, i + 1, m->parent_position);
					goto fail;
				}
				parent = c->messages[k].id;
			}
		}
		if (db_message_insert(d, id, parent, m, DB_INSERT_IMPORT |
		    (c->tree ? DB_INSERT_KEEP_POSITION : 0), err, what) != 0)
			goto fail;
		if (!c->tree || c->leaf_position < 0 ? i == c->n_messages - 1 :
		    m->position == c->leaf_position)
			leaf = m->id;
	}
	if (c->tree && c->leaf_position >= 0 && leaf == 0) {
		db_errf(err, "%s: the current leaf %d is not a message", what, c->leaf_position);
		goto fail;
	}
	if (leaf != 0) {
		st = db_prep(d, "UPDATE conversations SET leaf = ? WHERE id = ?", err, what);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, leaf);
		sqlite3_bind_int64(st, 2, id);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE)
			db_fail(d, err, what);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (db_commit(d, err, what) != 0)
		return -1;
	c->id = id;
	memcpy(c->pid, pid, sizeof pid);
	return 0;
fail:
	db_rollback(d);
	return -1;
}

