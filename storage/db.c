/*
 * db.c: the conversation store on SQLite, opening and migrating the file,
 * and the helpers the other storage/db_*.c files share (errors, ids, titles,
 * statement and transaction wrappers, role and finish names).  See db.h for
 * the contract, db_schema.c for the tables; conversations are in db_conv.c,
 * messages and replies in db_msg.c, search in db_search.c, presets in
 * db_preset.c and settings in db_setting.c.
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
#include "common/errf.h"

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
	va_list ap;
	va_start(ap, fmt);
	errf_vset(err, fmt, ap);   /* one line, whatever SQLite or the user's text put into it */
	va_end(ap);
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

sqlite3_stmt *
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

int
db_exec(struct db *d, const char *sql, char **err, const char *what)
{
	if (sqlite3_exec(d->h, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(d, err, what);
	return 0;
}

int
db_begin(struct db *d, char **err, const char *what)
{
	return db_exec(d, "BEGIN IMMEDIATE", err, what);
}

int
db_begin_read(struct db *d, char **err, const char *what)
{
	return db_exec(d, "BEGIN", err, what);
}

/* Roll back whatever is open.  SQLite may already have rolled back by
 * itself (after SQLITE_FULL, for example), hence the autocommit check. */
void
db_rollback(struct db *d)
{
	if (!sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
}

int
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
void
db_end_read(struct db *d)
{
	if (!sqlite3_get_autocommit(d->h))
		sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL);
}

void
db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

char *
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
int
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

int
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

/* Run a one-row write (id bound as the last parameter by the caller) and
 * report "no conversation" when it touched nothing. */
int
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
db_step_commit(struct db *d, sqlite3_stmt *st, char **err, const char *what, const char *none)
{
	int rc = db_step_one(d, st, err, what, none);
	sqlite3_finalize(st);
	if (rc != 0) {
		db_rollback(d);
		return -1;
	}
	return db_commit(d, err, what);
}

int
db_rows(struct db *d, sqlite3_stmt *st, size_t size, int (*from_row)(sqlite3_stmt *st, void *elem),
    void **out, size_t *n, char **err, const char *what)
{
	char *a = NULL;
	size_t cnt = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char *na = realloc(a, ncap * size);
			if (na == NULL)
				break;
			a = na;
			cap = ncap;
		}
		void *e = a + cnt++ * size;
		memset(e, 0, size);
		if (from_row(st, e) != 0)
			break;
	}
	*out = a;
	*n = cnt;
	if (rc == SQLITE_ROW)
		return db_errf(err, "%s: out of memory", what);
	if (rc != SQLITE_DONE)
		return db_fail(d, err, what);
	return 0;
}

/* ---- names ------------------------------------------------------------------- */

static const char *const db_role_names[] = { "system", "user", "assistant" };
static const char *const db_finish_names[] = { NULL, "eos", "length", "stopped", "interrupted" };

const char *
db_role_name(enum role r)
{
	return (unsigned)r < 3 ? db_role_names[r] : "user";
}

int
db_role_parse(const char *s, enum role *r)
{
	for (int i = 0; s != NULL && i < 3; i++)
		if (strcmp(s, db_role_names[i]) == 0) {
			*r = (enum role)i;
			return 0;
		}
	return -1;
}

const char *
db_finish_name(enum finish f)
{
	return (unsigned)f < 5 ? db_finish_names[f] : NULL;
}

int
db_finish_parse(const char *s, enum finish *f)
{
	if (s == NULL) {
		*f = FINISH_NONE;
		return 0;
	}
	for (int i = 1; i < 5; i++)
		if (strcmp(s, db_finish_names[i]) == 0) {
			*f = (enum finish)i;
			return 0;
		}
	return -1;
}

/* Is text NULL or a JSON object?  (Checked before writing so that the
 * caller gets "not a JSON object" rather than "CHECK constraint failed".) */
int
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

/* Can neither the file nor its folder be written?  (access() also says
 * EPERM for an immutable file and EROFS on a read-only mount, for root
 * too.)  SQLite in WAL mode needs both: the -wal and -shm files live
 * beside the database. */
static int
db_unwritable(const char *path)
{
	if (access(path, W_OK) != 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
		return 1;
	char *dir = strdup(path);
	if (dir == NULL)
		return 0;
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, 2, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	int ro = access(dir, W_OK) != 0 && (errno == EACCES || errno == EPERM || errno == EROFS);
	free(dir);
	return ro;
}

/* "file:" URI of path with its query flags; '%', '?' and '#' escaped. */
static char *
db_uri(const char *path, const char *query)
{
	size_t n = strlen(path);
	char *u = malloc(3 * n + strlen(query) + 8), *o = u;
	if (u == NULL)
		return NULL;
	o += sprintf(o, "file:");
	for (const char *p = path; *p; p++) {
		if (*p == '%' || *p == '?' || *p == '#')
			o += sprintf(o, "%%%02X", (unsigned char)*p);
		else
			*o++ = *p;
	}
	sprintf(o, "?%s", query);
	return u;
}

/* Open path read-only.  mode=ro first; a WAL database whose folder cannot
 * take the -shm file needs immutable=1 (nobody can be writing it then:
 * we could not either). */
static struct db *
db_open_ro(const char *path, char **err)
{
	struct db *d = calloc(1, sizeof *d);
	if (d == NULL || (d->path = strdup(path)) == NULL) {
		free(d);
		db_errf(err, "%s: out of memory", path);
		return NULL;
	}
	d->busy_ms = DB_BUSY_MS;
	d->readonly = 1;
	static const char *const modes[] = { "mode=ro", "mode=ro&immutable=1" };
	int v = -1;
	for (int i = 0; i < 2 && v < 0; i++) {
		char *uri = db_uri(path, modes[i]);
		if (d->h != NULL)
			sqlite3_close_v2(d->h);
		d->h = NULL;
		if (uri == NULL || sqlite3_open_v2(uri, &d->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
		    NULL) != SQLITE_OK) {
			free(uri);
			continue;
		}
		free(uri);
		sqlite3_extended_result_codes(d->h, 1);
		sqlite3_busy_timeout(d->h, d->busy_ms);
		char *e = NULL;
		if (db_user_version(d, &v, i == 1 ? err : &e) != 0)
			v = -1;
		free(e);
	}
	if (v < 0) {
		if (err != NULL && *err == NULL)
			db_fail(d, err, "cannot open read-only");
		db_close(d);
		return NULL;
	}
	if (v != db_n_migrations) {
		if (v > db_n_migrations)
			db_errf(err, "%s: written by a newer llama2-chat (schema version %d, this one knows "
			    "up to %d); not touching it", path, v, db_n_migrations);
		else
			db_errf(err, "%s: read-only, and its schema (version %d) is older than this "
			    "llama2-chat's (%d): open it once where it can be written to upgrade it", path, v,
			    db_n_migrations);
		db_close(d);
		return NULL;
	}
	sqlite3_exec(d->h, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	return d;
}

struct db *
db_open_read(const char *path, char **err)
{
	struct stat sb;
	if (path != NULL && *path != '\0' && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    db_unwritable(path))
		return db_open_ro(path, err);
	return db_open(path, err);
}

struct db *
db_open(const char *path, char **err)
{
	if (path == NULL || *path == '\0') {
		db_errf(err, "no database file given");
		return NULL;
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && db_unwritable(path)) {
		db_errf(err, "%s: the database is read-only (the file or its folder cannot be written "
		    "to), so nothing can be saved; list, show, search and export still work", path);
		return NULL;
	}
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

