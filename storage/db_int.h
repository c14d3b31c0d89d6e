/*
 * db_int.h: storage internals shared by the storage/ sources, the storage tests and
 * bench/bench_db.c.  Not for app/, ui/ or engine/: they use db.h only.
 * The sqlite3 handle is reachable here so that tests can inject faults
 * (PRAGMA max_page_count, a second writer holding the lock) and the
 * benchmark can bulk-load.
 */
#ifndef STORAGE_DB_INT_H
#define STORAGE_DB_INT_H

#include <sqlite3.h>

#include "storage/db.h"

struct db {
	sqlite3 *h;
	char *path;             /* as given to db_open, for messages */
	int busy_ms;            /* busy timeout in force */
	int last_rc;            /* extended code of the last failure db_fail saw (tests) */
	int readonly;           /* opened by db_open_read on an unwritable file */
};

#define DB_BUSY_MS 5000

/* The schema, one SQL script per version: db_migrations[v - 1] takes the
 * database from user_version v - 1 to v. */
extern const char *const db_migrations[];
extern const int db_n_migrations;

/*
 * Bring d from its user_version up to n by running steps[v] for every
 * v >= user_version, each in its own transaction together with the
 * user_version bump, so a failing step leaves the previous version intact.
 * -1 with *err when the file is newer than n, is someone else's database,
 * or a step fails.
 */
int db_migrate_steps(struct db *d, const char *const *steps, int n, char **err);

/* Fill *err with "<path>: <what>: <explanation of the last SQLite error>"
 * and return -1.  what may be NULL. */
int db_fail(struct db *d, char **err, const char *what);
/* malloc'd printf into *err (if err is not NULL); returns -1. */
int db_errf(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Change the busy timeout (tests use a short one). */
void db_set_busy_timeout(struct db *d, int ms);
/* A fresh random public id into out (DB_PID_LEN + 1 bytes). */
void db_pid_random(char *out);
/* Now, Unix milliseconds. */
int64_t db_now_ms(void);
/* Title from the first user message: whitespace collapsed, about 50
 * characters cut at a word boundary, "…" when cut.  malloc'd. */
char *db_title_from(const char *text);

/* ---- helpers shared by the storage/db*.c files (defined in db.c) ---- */

/* Prepare sql; NULL with *err ("<what>: ...") on failure. */
sqlite3_stmt *db_prep(struct db *d, const char *sql, char **err, const char *what);
/* Run sql (no rows); -1 with *err. */
int db_exec(struct db *d, const char *sql, char **err, const char *what);
/* BEGIN IMMEDIATE (a write), BEGIN (a read snapshot), ROLLBACK, COMMIT. */
int db_begin(struct db *d, char **err, const char *what);
int db_begin_read(struct db *d, char **err, const char *what);
void db_rollback(struct db *d);
int db_commit(struct db *d, char **err, const char *what);
void db_end_read(struct db *d);
/* Bind s as text, NULL as SQL NULL. */
void db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A malloc'd copy of column i (NULL for SQL NULL; *oom set on failure). */
char *db_col_text(sqlite3_stmt *st, int i, int *oom);
/* Token ids as a little-endian int32 blob, and back. */
int db_bind_tokens(sqlite3_stmt *st, int i, const int32_t *t, size_t n);
int db_col_tokens(sqlite3_stmt *st, int i, int32_t **out, size_t *n);
/* Is text NULL or a JSON object (by SQLite's json functions)? */
int db_json_object_ok(struct db *d, const char *text);
/* Step a write statement that must change exactly one row: -1 with
 * "<what>: <none>" when it changed none. */
int db_step_one(struct db *d, sqlite3_stmt *st, char **err, const char *what, const char *none);
/* The end of a write transaction whose last statement st (bound) must
 * change exactly one row: db_step_one, finalize st, commit; on failure
 * roll back.  0, or -1 with *err. */
int db_step_commit(struct db *d, sqlite3_stmt *st, char **err, const char *what, const char *none);
/* Step st (bound; not finalized) to its end, one array element of size
 * bytes per row, zeroed and then filled by from_row (nonzero: out of
 * memory; the element must be left freeable).  0 with *out (malloc'd, NULL
 * without rows) and *n; -1 with *err ("<what>: out of memory", or the
 * database's error), *out and *n then holding the elements read so far
 * for the caller to free as it would on success. */
int db_rows(struct db *d, sqlite3_stmt *st, size_t size, int (*from_row)(sqlite3_stmt *st, void *elem),
    void **out, size_t *n, char **err, const char *what);

/* ---- db_msg.c ---- */

/*
 * Insert m as the next message of conv inside the caller's transaction, as
 * a child of parent (a message rowid; 0: a root; -1: the current leaf),
 * and make it the current leaf.  With DB_INSERT_IMPORT m->created is used
 * as given and the conversation's title, updated time and leaf are left
 * alone; with DB_INSERT_KEEP_POSITION m->position is used as given (it must
 * be past every position in use).  Fills m->id, position, created, parent.
 */
enum { DB_INSERT_IMPORT = 1, DB_INSERT_KEEP_POSITION = 2 };
int db_message_insert(struct db *d, int64_t conv, int64_t parent, struct db_message *m, int flags,
    char **err, const char *what);

/* SQL for the current leaf of conversation `conv` (an SQL expression such
 * as "?1"): the stored leaf, else the message written last, else NULL. */
#define DB_LEAF_SQL(conv) \
	"COALESCE((SELECT leaf FROM conversations WHERE id = " conv "), (SELECT id FROM messages" \
	" WHERE conversation_id = " conv " ORDER BY position DESC LIMIT 1))"

#endif
