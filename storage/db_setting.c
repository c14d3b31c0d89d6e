/*
 * db_setting.c: the key/value settings table (remembered choices).
 */
#include "storage/db_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
