/*
 * db.c: the conversation store on SQLite (see db.h for the contract and
 * db_schema.c for the tables).
 *
 * Invariants.  Every write is one BEGIN IMMEDIATE ... COMMIT: taking the
 * write lock up front lets the busy timeout do its job (a deferred
 * transaction that upgrades to a writer in WAL mode fails at once instead
 * of waiting), and an error anywhere inside rolls the whole call back, so
 * a caller never sees half a write.  The error message is composed from
 * SQLite's state *before* the rollback, which would reset it.  Reads that
 * take more than one statement run inside a plain BEGIN so they see one
 * snapshot while another process writes.  Statements are prepared per
 * call: each call is a handful of statements and the cost is noise next to
 * the fsync of a commit.
 */
#include "storage/db_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors, time, ids ---------------------------------------------------- */

int
db_errf(char **err, const char *fmt, ...)
{
	if (err == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	/* One line, whatever SQLite or the user's text put into it. */
	for (char *s = *err; s != NULL && *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
	return -1;
}

int
db_fail(struct db *d, char **err, const char *what)
{
	int rc = d->h != NULL ? sqlite3_extended_errcode(d->h) : SQLITE_NOMEM;
	const char *msg = d->h != NULL ? sqlite3_errmsg(d->h) : "out of memory";
	char buf[256];
	const char *why = msg;

	d->last_rc = rc;
	switch (rc & 0xff) {
	case SQLITE_FULL:
		why = "the disk is full (or the database reached its size limit)";
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(buf, sizeof buf,
		    "the database is locked by another process (gave up after %.1f s)",
		    d->busy_ms / 1000.0);
		why = buf;
		break;
	case SQLITE_READONLY:
		why = "the database is read-only (check the permissions of the file and its folder)";
		break;
	case SQLITE_NOTADB:
		why = "not an SQLite database (or it is encrypted)";
		break;
	case SQLITE_CORRUPT:
		why = "the database file is corrupt (`sqlite3 FILE .recover` may save its contents)";
		break;
	case SQLITE_CANTOPEN:
		snprintf(buf, sizeof buf, "cannot open the file (%s)",
		    d->h != NULL && sqlite3_system_errno(d->h) != 0 ?
		    strerror(sqlite3_system_errno(d->h)) : msg);
		why = buf;
		break;
	case SQLITE_IOERR:
		snprintf(buf, sizeof buf, "I/O error (%s%s%s)", msg,
		    d->h != NULL && sqlite3_system_errno(d->h) != 0 ? ": " : "",
		    d->h != NULL && sqlite3_system_errno(d->h) != 0 ?
		    strerror(sqlite3_system_errno(d->h)) : "");
		why = buf;
		break;
	case SQLITE_NOMEM:
		why = "out of memory";
		break;
	default:
		break;
	}
	if (what != NULL)
		return db_errf(err, "%s: %s: %s", d->path, what, why);
	return db_errf(err, "%s: %s", d->path, why);
}

int64_t
db_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
db_pid_random(char *out)
{
	static const char alphabet[] = DB_PID_ALPHABET;
	const unsigned n = sizeof alphabet - 1;
	/* Largest multiple of n below 256: bytes above it are redrawn so that
	 * every character is equally likely. */
	const unsigned lim = 256 - 256 % n;
	unsigned char b[32];
	int i = 0;

	while (i < DB_PID_LEN) {
		ssize_t got = getrandom(b, sizeof b, 0);
		if (got <= 0) {
			/* No entropy source: time and address are good enough for
			 * ids that only need to be distinct, not secret. */
			unsigned long long x = (unsigned long long)db_now_ms() ^
			    (unsigned long long)(uintptr_t)out ^ ((unsigned long long)getpid() << 32);
			for (size_t k = 0; k < sizeof b; k++) {
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
				b[k] = (unsigned char)(x >> 56);
			}
			got = sizeof b;
		}
		for (ssize_t k = 0; k < got && i < DB_PID_LEN; k++)
			if (b[k] < lim)
				out[i++] = alphabet[b[k] % n];
	}
	out[DB_PID_LEN] = '\0';
}

char *
db_title_from(const char *text)
{
	enum { TITLE_CHARS = 50, TITLE_MIN_CUT = 30 };
	size_t len = text != NULL ? strlen(text) : 0;
	char *t = malloc(len + 4);
	if (t == NULL)
		return NULL;

	/* Collapse runs of white space into one space, trim both ends, and
	 * stop after TITLE_CHARS code points. */
	size_t o = 0, chars = 0, last_space = 0, space_chars = 0;
	int cut = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		/* Control characters (escape sequences included) count as space:
		 * a title is shown in lists and must not drive the terminal. */
		if (isspace(ch) || ch < 0x20 || ch == 0x7f) {
			if (o > 0 && t[o - 1] != ' ') {
				if (chars >= TITLE_CHARS) {
					cut = 1;
					break;
				}
				last_space = o;
				space_chars = chars;
				t[o++] = ' ';
				chars++;
			}
			continue;
		}
		if ((ch & 0xC0) != 0x80) {
			if (chars >= TITLE_CHARS) {
				cut = 1;
				break;
			}
			chars++;
		}
		t[o++] = (char)ch;
	}
	if (o > 0 && t[o - 1] == ' ')
		o--;
	if (cut) {
		/* Cut at the last word boundary when that keeps most of it. */
		if (space_chars >= TITLE_MIN_CUT)
			o = last_space;
		memcpy(t + o, "\xe2\x80\xa6", 3);       /* … */
		o += 3;
	}
	t[o] = '\0';
	if (o == 0) {
		free(t);
		return NULL;
	}
	return t;
}

void
db_set_busy_timeout(struct db *d, int ms)
{
	d->busy_ms = ms;
	sqlite3_busy_timeout(d->h, ms);
}

const char *
db_path(const struct db *d)
{
	return d->path;
}

/* ---- small helpers over the SQLite API ------------------------------------ */

static sqlite3_stmt *
db_prep(struct db *d, const char *sql, char **err, const char *what)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(d, err, what);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static int
db_exec(struct db *d, const char *sql, char **err, const char *what)
{
	if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(d, err, what);
	return 0;
}

static int
db_begin(struct db *d, char **err, const char *what)
{
	return db_exec(d, "BEGIN IMMEDIATE", err, what);
}

static int
db_begin_read(struct db *d, char **err, const char *what)
{
	return db_exec(d, "BEGIN", err, what);
}

/* Roll back whatever is open.  SQLite may already have rolled back by
 * itself (after SQLITE_FULL, for example), hence the autocommit check. */
static void
db_rollback(struct db *d)
{
	if (!sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
}

static int
db_commit(struct db *d, char **err, const char *what)
{
	if (sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(d, err, what);
		db_rollback(d);
		return -1;
	}
	return 0;
}

/* End a read transaction; a failure here cannot lose anything. */
static void
db_end_read(struct db *d)
{
	if (!sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL);
}

static void
db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static char *
db_col_text(sqlite3_stmt *st, int i, int *oom)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	const unsigned char *s = sqlite3_column_text(st, i);
	char *c = strdup(s != NULL ? (const char *)s : "");
	if (c == NULL)
		*oom = 1;
	return c;
}

/* Token ids as a little-endian int32 blob, whatever the host's order.
 * NULL tokens bind NULL ("not tokenized"); zero tokens bind an empty blob. */
static int
db_bind_tokens(sqlite3_stmt *st, int i, const int32_t *t, size_t n)
{
	if (t == NULL)
		return sqlite3_bind_null(st, i);
	if (n == 0)
		return sqlite3_bind_zeroblob(st, i, 0);
	unsigned char *b = malloc(n * 4);
	if (b == NULL)
		return SQLITE_NOMEM;
	for (size_t k = 0; k < n; k++) {
		uint32_t v = (uint32_t)t[k];
		b[4 * k] = (unsigned char)v;
		b[4 * k + 1] = (unsigned char)(v >> 8);
		b[4 * k + 2] = (unsigned char)(v >> 16);
		b[4 * k + 3] = (unsigned char)(v >> 24);
	}
	return sqlite3_bind_blob64(st, i, b, n * 4, free);
}

static int
db_col_tokens(sqlite3_stmt *st, int i, int32_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	const unsigned char *b = sqlite3_column_blob(st, i);
	size_t bytes = (size_t)sqlite3_column_bytes(st, i);
	/* One spare element so that an empty list is a non-NULL pointer. */
	int32_t *t = malloc((bytes / 4 + 1) * sizeof *t);
	if (t == NULL)
		return -1;
	for (size_t k = 0; k < bytes / 4; k++)
		t[k] = (int32_t)((uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 |
		    (uint32_t)b[4 * k + 2] << 16 | (uint32_t)b[4 * k + 3] << 24);
	*out = t;
	*n = bytes / 4;
	return 0;
}

/* ---- names ------------------------------------------------------------------- */

static const char *const db_role_names[] = { "system", "user", "assistant" };
static const char *const db_finish_names[] = { NULL, "eos", "length", "stopped", "interrupted" };

const char *
db_role_name(enum db_role r)
{
	return (unsigned)r < 3 ? db_role_names[r] : "user";
}

int
db_role_parse(const char *s, enum db_role *r)
{
	for (int i = 0; s != NULL && i < 3; i++)
		if (strcmp(s, db_role_names[i]) == 0) {
			*r = (enum db_role)i;
			return 0;
		}
	return -1;
}

const char *
db_finish_name(enum db_finish f)
{
	return (unsigned)f < 5 ? db_finish_names[f] : NULL;
}

int
db_finish_parse(const char *s, enum db_finish *f)
{
	if (s == NULL) {
		*f = DB_FINISH_NONE;
		return 0;
	}
	for (int i = 1; i < 5; i++)
		if (strcmp(s, db_finish_names[i]) == 0) {
			*f = (enum db_finish)i;
			return 0;
		}
	return -1;
}

/* Is text NULL or a JSON object?  (Checked before writing so that the
 * caller gets "not a JSON object" rather than "CHECK constraint failed".) */
static int
db_json_object_ok(struct db *d, const char *text)
{
	if (text == NULL)
		return 1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(d->h, "SELECT json_valid(?1) AND json_type(?1) = 'object'", -1,
	    &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	int ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 1;
	sqlite3_finalize(st);
	return ok;
}

/* ---- opening, migrations ------------------------------------------------- */

static int
db_user_version(struct db *d, int *v, char **err)
{
	sqlite3_stmt *st = db_prep(d, "PRAGMA user_version", err, "cannot read the schema version");
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_fail(d, err, "cannot read the schema version");
		sqlite3_finalize(st);
		return -1;
	}
	*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int
db_count_objects(struct db *d, int *n, char **err)
{
	sqlite3_stmt *st = db_prep(d, "SELECT count(*) FROM sqlite_schema", err,
	    "cannot read the schema");
	if (st == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_fail(d, err, "cannot read the schema");
		sqlite3_finalize(st);
		return -1;
	}
	*n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int
db_migrate_steps(struct db *d, const char *const *steps, int n, char **err)
{
	int v;
	if (db_user_version(d, &v, err) != 0)
		return -1;
	/* Up to date: no write lock, so read-only files can still be read. */
	if (v == n)
		return 0;
	for (;;) {
		if (v > n)
			return db_errf(err, "%s: written by a newer llama2-chat (schema version %d, "
			    "this one knows up to %d); not touching it", d->path, v, n);
		if (db_begin(d, err, "cannot upgrade the schema") != 0)
			return -1;
		/* Another process may have upgraded while we waited for the lock. */
		if (db_user_version(d, &v, err) != 0)
			goto fail;
		if (v >= n) {
			db_rollback(d);
			if (v == n)
				return 0;
			continue;
		}
		if (v == 0) {
			int objects;
			if (db_count_objects(d, &objects, err) != 0)
				goto fail;
			if (objects > 0) {
				db_errf(err, "%s: not a llama2-chat database (it holds tables of "
				    "another program)", d->path);
				goto fail;
			}
		}
		char what[64];
		snprintf(what, sizeof what, "cannot upgrade the schema to version %d", v + 1);
		if (db_exec(d, steps[v], err, what) != 0)
			goto fail;
		char bump[48];
		snprintf(bump, sizeof bump, "PRAGMA user_version = %d", v + 1);
		if (db_exec(d, bump, err, what) != 0)
			goto fail;
		if (db_commit(d, err, what) != 0)
			return -1;
		v++;
		if (v == n)
			return 0;
	}
fail:
	db_rollback(d);
	return -1;
}

struct db *
db_open(const char *path, char **err)
{
	if (path == NULL || *path == '\0') {
		db_errf(err, "no database file given");
		return NULL;
	}
	struct stat sb;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT) {
			db_errf(err, "%s: cannot open: %s", path, strerror(errno));
			return NULL;
		}
		/* Create it ourselves so it is 0600 whatever the umask; SQLite
		 * gives the -wal and -shm files the same mode.  An empty file is
		 * an empty database. */
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			db_errf(err, "%s: cannot create the database: %s", path, strerror(errno));
			return NULL;
		}
		if (fd >= 0)
			close(fd);
	} else if (S_ISDIR(sb.st_mode)) {
		db_errf(err, "%s: is a folder, not a database file", path);
		return NULL;
	}

	struct db *d = calloc(1, sizeof *d);
	if (d == NULL || (d->path = strdup(path)) == NULL) {
		free(d);
		db_errf(err, "%s: out of memory", path);
		return NULL;
	}
	d->busy_ms = DB_BUSY_MS;
	if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		db_fail(d, err, "cannot open");
		db_close(d);
		return NULL;
	}
	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_timeout(d->h, d->busy_ms);
	/* journal_mode is the first statement that reads the file, so a file
	 * that is not a database fails here. */
	if (db_exec(d, "PRAGMA foreign_keys = ON", err, "cannot open") != 0 ||
	    db_exec(d, "PRAGMA journal_mode = WAL", err, "cannot open") != 0 ||
	    db_exec(d, "PRAGMA synchronous = NORMAL", err, "cannot open") != 0 ||
	    db_migrate_steps(d, db_migrations, db_n_migrations, err) != 0) {
		db_close(d);
		return NULL;
	}
	return d;
}

void
db_close(struct db *d)
{
	if (d == NULL)
		return;
	if (d->h != NULL)
		sqlite3_close_v2(d->h);
	free(d->path);
	free(d);
}

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

/* Run a one-row write (id bound as the last parameter by the caller) and
 * report "no conversation" when it touched nothing. */
static int
db_step_one(struct db *d, sqlite3_stmt *st, char **err, const char *what, const char *none)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		return -1;
	}
	if (sqlite3_changes(d->h) == 0)
		return db_errf(err, "%s", none);
	return 0;
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
	int rc = db_step_one(d, st, err, what, "no such conversation");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
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
	int rc = db_step_one(d, st, err, what, "no such conversation");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
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
	int rc = db_step_one(d, st, err, what, "no such conversation");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
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

struct db_conv *
db_conv_load(struct db *d, int64_t id, char **err)
{
	static const char what[] = "cannot load the conversation";
	struct db_conv *c = calloc(1, sizeof *c);
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	if (c == NULL) {
		db_errf(err, "out of memory");
		return NULL;
	}
	if (db_begin_read(d, err, what) != 0) {
		free(c);
		return NULL;
	}
	st = db_prep(d, "SELECT " CONV_COLUMNS " FROM conversations WHERE id = ?", err, what);
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
	sqlite3_finalize(st);
	c->n_messages = 0;

	st = db_prep(d, "SELECT id, position, role, content, tokens, created, finish, stats,"
	    " sampler, seed FROM messages WHERE conversation_id = ? ORDER BY position", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((size_t)c->n_messages == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct db_message *nm = realloc(c->messages, ncap * sizeof *nm);
			if (nm == NULL)
				goto oom;
			c->messages = nm;
			cap = ncap;
		}
		struct db_message *m = &c->messages[c->n_messages];
		int oom = 0;
		memset(m, 0, sizeof *m);
		c->n_messages++;
		m->id = sqlite3_column_int64(st, 0);
		m->position = sqlite3_column_int(st, 1);
		if (db_role_parse((const char *)sqlite3_column_text(st, 2), &m->role) != 0)
			m->role = DB_ROLE_USER;
		m->content = db_col_text(st, 3, &oom);
		if (m->content == NULL && !oom)
			m->content = strdup("");
		if (m->content == NULL || db_col_tokens(st, 4, &m->tokens, &m->n_tokens) != 0)
			goto oom;
		m->created = sqlite3_column_int64(st, 5);
		if (db_finish_parse((const char *)sqlite3_column_text(st, 6), &m->finish) != 0)
			m->finish = DB_FINISH_NONE;
		m->stats = db_col_text(st, 7, &oom);
		m->sampler = db_col_text(st, 8, &oom);
		if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
			m->has_seed = 1;
			m->seed = (uint64_t)sqlite3_column_int64(st, 9);
		}
		if (oom)
			goto oom;
	}
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		goto fail;
	}
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
	struct db_conv *a = NULL;
	size_t cnt = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct db_conv *na = realloc(a, ncap * sizeof *na);
			if (na == NULL)
				goto oom;
			a = na;
			cap = ncap;
		}
		if (db_conv_from_row(st, &a[cnt++]) != 0)
			goto oom;
	}
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		sqlite3_finalize(st);
		db_conv_array_free(a, cnt);
		return -1;
	}
	sqlite3_finalize(st);
	*out = a;
	*n = cnt;
	return 0;
oom:
	sqlite3_finalize(st);
	db_conv_array_free(a, cnt);
	return db_errf(err, "%s: out of memory", what);
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

/* ---- messages ------------------------------------------------------------ */

/*
 * Insert m as the next message of conv inside the caller's transaction.
 * With keep_created (import) m->created is used as given and the
 * conversation's title and updated time are left alone.
 */
static int
db_message_insert(struct db *d, int64_t conv, struct db_message *m, int keep_created,
    char **err, const char *what)
{
	if (!db_json_object_ok(d, m->stats) || !db_json_object_ok(d, m->sampler))
		return db_errf(err, "%s: stats or sampler settings are not a JSON object", what);
	if (db_role_name(m->role) == NULL || (unsigned)m->finish > DB_FINISH_INTERRUPTED)
		return db_errf(err, "%s: bad role or finish reason", what);

	sqlite3_stmt *st = db_prep(d, "SELECT title IS NULL, (SELECT COALESCE(max(position) + 1, 0)"
	    " FROM messages WHERE conversation_id = ?1) FROM conversations WHERE id = ?1", err, what);
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
	sqlite3_finalize(st);

	int64_t now = keep_created ? m->created : db_now_ms();
	st = db_prep(d, "INSERT INTO messages(conversation_id, position, role, content, tokens,"
	    " created, finish, stats, sampler, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err, what);
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
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(d, err, what);
	m->id = sqlite3_last_insert_rowid(d->h);
	m->position = position;
	m->created = now;
	if (keep_created)
		return 0;

	char *title = NULL;
	if (untitled && m->role == DB_ROLE_USER)
		title = db_title_from(m->content);
	st = db_prep(d, "UPDATE conversations SET updated = ?, title = COALESCE(title, ?) WHERE id = ?",
	    err, what);
	if (st == NULL) {
		free(title);
		return -1;
	}
	sqlite3_bind_int64(st, 1, now);
	db_bind_text(st, 2, title);
	sqlite3_bind_int64(st, 3, conv);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(title);
	if (rc != SQLITE_DONE)
		return db_fail(d, err, what);
	return 0;
}

int
db_message_append(struct db *d, int64_t conv, struct db_message *m, char **err)
{
	static const char what[] = "cannot save the message";
	if (db_begin(d, err, what) != 0)
		return -1;
	if (db_message_insert(d, conv, m, 0, err, what) != 0) {
		db_rollback(d);
		return -1;
	}
	return db_commit(d, err, what);
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
	int rc = db_step_one(d, st, err, what, "cannot save the token ids: no such message");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}

int
db_reply_begin(struct db *d, int64_t conv, const char *sampler, int has_seed, uint64_t seed,
    int64_t *msg_id, char **err)
{
	struct db_message m = {
		.role = DB_ROLE_ASSISTANT,
		.content = "",
		.finish = DB_FINISH_INTERRUPTED,
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
    size_t n_tokens, int set_finish, enum db_finish finish, const char *stats, char **err)
{
	static const char what[] = "cannot save the reply";
	if (set_finish && !db_json_object_ok(d, stats))
		return db_errf(err, "%s: stats are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, set_finish ?
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
	int rc = db_step_one(d, st, err, what, "cannot save the reply: no such reply");
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
	return db_reply_write(d, msg_id, content, tokens, n_tokens, 0, DB_FINISH_NONE, NULL, err);
}

int
db_reply_finish(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, enum db_finish finish, const char *stats, char **err)
{
	if ((unsigned)finish > DB_FINISH_INTERRUPTED)
		return db_errf(err, "cannot save the reply: bad finish reason");
	return db_reply_write(d, msg_id, content, tokens, n_tokens, 1, finish, stats, err);
}

int
db_message_delete_after(struct db *d, int64_t conv, int position, char **err)
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
	st = db_prep(d, "DELETE FROM messages WHERE conversation_id = ? AND position > ?", err, what);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, conv);
	sqlite3_bind_int(st, 2, position);
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
	for (int i = 0; i < c->n_messages; i++)
		if (db_message_insert(d, id, &c->messages[i], 1, err, what) != 0)
			goto fail;
	if (db_commit(d, err, what) != 0)
		return -1;
	c->id = id;
	memcpy(c->pid, pid, sizeof pid);
	return 0;
fail:
	db_rollback(d);
	return -1;
}

/* ---- search ------------------------------------------------------------------ */

void
db_hits_free(struct db_hit *h, size_t n)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].title);
		free(h[i].snippet);
	}
	free(h);
}

int
db_search(struct db *d, const char *query, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	static const char what[] = "cannot search";
	*out = NULL;
	*n = 0;
	const char *q = query != NULL ? query : "";
	while (isspace((unsigned char)*q))
		q++;
	if (*q == '\0')
		return db_errf(err, "empty search query");

	/* Newest first (rowid order): FTS5 walks its doclists backwards and
	 * stops at the limit, where ordering by rank would score every match. */
	sqlite3_stmt *st = db_prep(d,
	    "SELECT c.id, c.pid, c.title, m.position, m.role, m.created,"
	    " snippet(messages_fts, 0, ?2, ?3, '\xe2\x80\xa6', 16)"
	    " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
	    " JOIN conversations c ON c.id = m.conversation_id"
	    " WHERE messages_fts MATCH ?1 ORDER BY messages_fts.rowid DESC LIMIT ?4", err, what);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, query, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, mark_open != NULL ? mark_open : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, mark_close != NULL ? mark_close : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, limit > 0 ? limit : 20);

	struct db_hit *a = NULL;
	size_t cnt = 0, cap = 0;
	int rc, oom = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct db_hit *na = realloc(a, ncap * sizeof *na);
			if (na == NULL) {
				oom = 1;
				break;
			}
			a = na;
			cap = ncap;
		}
		struct db_hit *h = &a[cnt++];
		memset(h, 0, sizeof *h);
		h->conv_id = sqlite3_column_int64(st, 0);
		const unsigned char *pid = sqlite3_column_text(st, 1);
		snprintf(h->pid, sizeof h->pid, "%s", pid != NULL ? (const char *)pid : "");
		h->title = db_col_text(st, 2, &oom);
		h->position = sqlite3_column_int(st, 3);
		if (db_role_parse((const char *)sqlite3_column_text(st, 4), &h->role) != 0)
			h->role = DB_ROLE_USER;
		h->created = sqlite3_column_int64(st, 5);
		h->snippet = db_col_text(st, 6, &oom);
		if (h->snippet == NULL && !oom)
			h->snippet = strdup("");
		if (h->snippet == NULL)
			oom = 1;
		if (oom)
			break;
	}
	int ret = 0;
	if (oom) {
		ret = db_errf(err, "%s: out of memory", what);
	} else if (rc != SQLITE_DONE) {
		/* A plain SQLITE_ERROR here is FTS5 rejecting the query text. */
		if (sqlite3_extended_errcode(d->h) == SQLITE_ERROR)
			ret = db_errf(err, "bad search query '%s': %s (put words with special "
			    "characters in double quotes)", query, sqlite3_errmsg(d->h));
		else
			ret = db_fail(d, err, what);
	}
	sqlite3_finalize(st);
	if (ret != 0) {
		db_hits_free(a, cnt);
		return -1;
	}
	*out = a;
	*n = cnt;
	return 0;
}

/* ---- presets ------------------------------------------------------------- */

static int
db_preset_name_ok(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return 0;
	}
	return 1;
}

void
db_preset_clear(struct db_preset *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->system_prompt);
	free(p->params);
	memset(p, 0, sizeof *p);
}

void
db_preset_array_free(struct db_preset *a, size_t n)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		db_preset_clear(&a[i]);
	free(a);
}

static int
db_preset_from_row(sqlite3_stmt *st, struct db_preset *p)
{
	int oom = 0;
	memset(p, 0, sizeof *p);
	p->name = db_col_text(st, 0, &oom);
	p->system_prompt = db_col_text(st, 1, &oom);
	p->params = db_col_text(st, 2, &oom);
	p->builtin = sqlite3_column_int(st, 3);
	p->created = sqlite3_column_int64(st, 4);
	p->updated = sqlite3_column_int64(st, 5);
	if (!oom && p->system_prompt == NULL && (p->system_prompt = strdup("")) == NULL)
		oom = 1;
	if (!oom && p->params == NULL && (p->params = strdup("{}")) == NULL)
		oom = 1;
	if (oom || p->name == NULL) {
		db_preset_clear(p);
		return -1;
	}
	return 0;
}

#define PRESET_COLUMNS "name, system_prompt, params, builtin, created, updated"

int
db_preset_list(struct db *d, struct db_preset **out, size_t *n, char **err)
{
	static const char what[] = "cannot list presets";
	*out = NULL;
	*n = 0;
	/* Built-ins first, in the order the schema made them, then the user's by name. */
	sqlite3_stmt *st = db_prep(d, "SELECT " PRESET_COLUMNS " FROM presets"
	    " ORDER BY builtin DESC, CASE WHEN builtin THEN id END, name", err, what);
	if (st == NULL)
		return -1;
	struct db_preset *a = NULL;
	size_t cnt = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct db_preset *na = realloc(a, ncap * sizeof *na);
			if (na == NULL)
				goto oom;
			a = na;
			cap = ncap;
		}
		if (db_preset_from_row(st, &a[cnt]) != 0)
			goto oom;
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		db_fail(d, err, what);
		sqlite3_finalize(st);
		db_preset_array_free(a, cnt);
		return -1;
	}
	sqlite3_finalize(st);
	*out = a;
	*n = cnt;
	return 0;
oom:
	sqlite3_finalize(st);
	db_preset_array_free(a, cnt);
	return db_errf(err, "%s: out of memory", what);
}

int
db_preset_get(struct db *d, const char *name, struct db_preset *p, char **err)
{
	static const char what[] = "cannot read the preset";
	memset(p, 0, sizeof *p);
	sqlite3_stmt *st = db_prep(d, "SELECT " PRESET_COLUMNS " FROM presets WHERE name = ?",
	    err, what);
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, name);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		if (db_preset_from_row(st, p) != 0)
			ret = db_errf(err, "%s: out of memory", what);
	} else if (rc == SQLITE_DONE) {
		ret = db_errf(err, "no preset named '%s'", name != NULL ? name : "");
	} else {
		ret = db_fail(d, err, what);
	}
	sqlite3_finalize(st);
	return ret;
}

int
db_preset_add(struct db *d, const char *name, const char *system, const char *params, char **err)
{
	static const char what[] = "cannot add the preset";
	if (!db_preset_name_ok(name))
		return db_errf(err, "bad preset name '%s' (1-64 letters, digits, '.', '_' or '-')",
		    name != NULL ? name : "");
	if (params != NULL && !db_json_object_ok(d, params))
		return db_errf(err, "%s: parameters are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, "INSERT INTO presets(name, system_prompt, params, builtin,"
	    " created, updated) VALUES (?, ?, ?, 0, ?, ?)", err, what);
	if (st == NULL)
		goto fail;
	int64_t now = db_now_ms();
	db_bind_text(st, 1, name);
	db_bind_text(st, 2, system != NULL ? system : "");
	db_bind_text(st, 3, params != NULL ? params : "{}");
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, now);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(d->h) == SQLITE_CONSTRAINT_UNIQUE)
			db_errf(err, "a preset named '%s' already exists", name);
		else
			db_fail(d, err, what);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}

/* Inside a transaction: 0 when name is a user preset, else -1 with the
 * message for "unknown" or "built-in". */
static int
db_preset_writable(struct db *d, const char *name, char **err, const char *what)
{
	sqlite3_stmt *st = db_prep(d, "SELECT builtin, name FROM presets WHERE name = ?", err, what);
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, name);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_DONE)
		ret = db_errf(err, "no preset named '%s'", name != NULL ? name : "");
	else if (rc != SQLITE_ROW)
		ret = db_fail(d, err, what);
	else if (sqlite3_column_int(st, 0))
		ret = db_errf(err, "'%s' is a built-in preset and cannot be changed or removed; "
		    "copy it instead: presets add NAME --from %s", sqlite3_column_text(st, 1),
		    sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	return ret;
}

int
db_preset_update(struct db *d, const char *name, const char *system, const char *params,
    char **err)
{
	static const char what[] = "cannot change the preset";
	if (params != NULL && !db_json_object_ok(d, params))
		return db_errf(err, "%s: parameters are not a JSON object", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	if (db_preset_writable(d, name, err, what) != 0)
		goto fail;
	sqlite3_stmt *st = db_prep(d, "UPDATE presets SET system_prompt = COALESCE(?, system_prompt),"
	    " params = COALESCE(?, params), updated = ? WHERE name = ?", err, what);
	if (st == NULL)
		goto fail;
	db_bind_text(st, 1, system);
	db_bind_text(st, 2, params);
	sqlite3_bind_int64(st, 3, db_now_ms());
	db_bind_text(st, 4, name);
	int rc = db_step_one(d, st, err, what, "no such preset");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}

int
db_preset_remove(struct db *d, const char *name, char **err)
{
	static const char what[] = "cannot remove the preset";
	if (db_begin(d, err, what) != 0)
		return -1;
	if (db_preset_writable(d, name, err, what) != 0)
		goto fail;
	sqlite3_stmt *st = db_prep(d, "DELETE FROM presets WHERE name = ?", err, what);
	if (st == NULL)
		goto fail;
	db_bind_text(st, 1, name);
	int rc = db_step_one(d, st, err, what, "no such preset");
	sqlite3_finalize(st);
	if (rc != 0)
		goto fail;
	return db_commit(d, err, what);
fail:
	db_rollback(d);
	return -1;
}

/* ---- settings --------------------------------------------------------------- */

int
db_setting_get(struct db *d, const char *key, char **value, char **err)
{
	static const char what[] = "cannot read a setting";
	*value = NULL;
	sqlite3_stmt *st = db_prep(d, "SELECT value FROM settings WHERE key = ?", err, what);
	if (st == NULL)
		return -1;
	db_bind_text(st, 1, key);
	int rc = sqlite3_step(st), ret = 0, oom = 0;
	if (rc == SQLITE_ROW) {
		*value = db_col_text(st, 0, &oom);
		ret = oom ? db_errf(err, "%s: out of memory", what) : 1;
	} else if (rc != SQLITE_DONE) {
		ret = db_fail(d, err, what);
	}
	sqlite3_finalize(st);
	return ret;
}

int
db_setting_set(struct db *d, const char *key, const char *value, char **err)
{
	static const char what[] = "cannot save a setting";
	if (key == NULL || *key == '\0')
		return db_errf(err, "%s: empty key", what);
	if (db_begin(d, err, what) != 0)
		return -1;
	sqlite3_stmt *st = db_prep(d, value != NULL ?
	    "INSERT INTO settings(key, value) VALUES (?1, ?2)"
	    " ON CONFLICT(key) DO UPDATE SET value = excluded.value" :
	    "DELETE FROM settings WHERE key = ?1", err, what);
	if (st == NULL)
		goto fail;
	db_bind_text(st, 1, key);
	if (value != NULL)
		db_bind_text(st, 2, value);
	int rc = sqlite3_step(st);
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
