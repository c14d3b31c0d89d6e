/*
 * db_preset.c: named presets (a system prompt and a JSON object of sampling
 * parameters): list, get, add, update, remove.  Built-in presets are
 * read-only.
 */
#include "storage/db_int.h"

#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* db_rows' callback. */
static int
db_preset_row(sqlite3_stmt *st, void *elem)
{
	return db_preset_from_row(st, elem);
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
	void *a;
	size_t cnt;
	int rc = db_rows(d, st, sizeof(struct db_preset), db_preset_row, &a, &cnt, err, what);
	sqlite3_finalize(st);
	if (rc != 0) {
		db_preset_array_free(a, cnt);
		return -1;
	}
	*out = a;
	*n = cnt;
	return 0;
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
	return db_step_commit(d, st, err, what, "no such preset");
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
	return db_step_commit(d, st, err, what, "no such preset");
fail:
	db_rollback(d);
	return -1;
}

/* The built-in presets are rows the schema's first step inserts: an
 * in-memory database built by the same steps reads them without touching
 * any file, so --no-save sessions get exactly what a stored database has. */
int
db_preset_builtin(const char *name, struct db_preset *p, char **err)
{
	struct db m;
	memset(&m, 0, sizeof m);
	memset(p, 0, sizeof *p);
	m.path = (char *)"(built-in presets)";
	if (sqlite3_open_v2(":memory:", &m.h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) != SQLITE_OK) {
		sqlite3_close(m.h);
		return db_errf(err, "cannot read the built-in presets: out of memory");
	}
	int rc = db_migrate_steps(&m, db_migrations, db_n_migrations, err);
	if (rc == 0)
		rc = db_preset_get(&m, name, p, err);
	if (rc == 0 && !p->builtin) {
		db_preset_clear(p);
		rc = db_errf(err, "no built-in preset named '%s'", name);
	}
	if (rc != 0 && err != NULL && *err != NULL && strncmp(*err, "no preset named", 15) == 0) {
		free(*err);
		*err = NULL;
		db_errf(err, "no built-in preset named '%s' (assistant, concise, storyteller, translator, "
		    "sentiment, summarizer, coder); stored presets need the database, which --no-save "
		    "turns off", name);
	}
	sqlite3_close(m.h);
	return rc;
}
