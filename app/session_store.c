/*
 * session_store.c: what the session reads out of the database for the
 * interface and the command line: the conversation list, search hits,
 * presets, and exports.  Each result is the session's own type (the
 * interface never sees a db_ struct); strings are moved out of the
 * storage rows, not copied, and the caller frees the array with the
 * matching *_free.  Errors are -1 with the session's error set.
 */
#include "app/session_int.h"
#include "storage/db.h"
#include "storage/export.h"

#include <stdlib.h>
#include <string.h>

int
session_export(struct session *s, const char *format, const char *path, int force)
{
	enum export_format f;
	if (export_format_parse(format, &f) != 0)
		return session_fail(s, "unknown export format");
	if (session_need_conv(s) != 0)
		return -1;
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, s->conv_id, &err);
	if (c == NULL || export_file(c, f, path, force, &err) != 0) {
		db_conv_free(c);
		return session_fail_take(s, err);
	}
	db_conv_free(c);
	return 0;
}

/* ---- lists ------------------------------------------------------------------------ */

int
session_list(struct session *s, int limit, struct session_conv **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (s->db == NULL)
		return 0;
	struct db_conv *a;
	size_t cnt;
	char *err = NULL;
	if (db_conv_list(s->db, limit, &a, &cnt, &err) != 0)
		return session_fail_take(s, err);
	struct session_conv *r = calloc(cnt + 1, sizeof *r);
	for (size_t i = 0; r != NULL && i < cnt; i++) {
		r[i].id = a[i].id;
		snprintf(r[i].pid, sizeof r[i].pid, "%s", a[i].pid);
		r[i].title = a[i].title;
		a[i].title = NULL;       /* moved */
		r[i].updated = a[i].updated;
		r[i].n_messages = a[i].n_messages;
	}
	db_conv_array_free(a, cnt);
	if (r == NULL)
		return session_fail(s, "out of memory");
	*out = r;
	*n = cnt;
	return 0;
}

void
session_convs_free(struct session_conv *a, size_t n)
{
	for (size_t i = 0; a != NULL && i < n; i++)
		free(a[i].title);
	free(a);
}

int
session_search(struct session *s, const char *query, int limit, struct session_hit **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (session_need_db(s) != 0)
		return -1;
	struct db_hit *h;
	size_t cnt;
	char *err = NULL;
	if (db_search(s->db, query, limit, "\x01", "\x02", &h, &cnt, &err) != 0)
		return session_fail_take(s, err);
	struct session_hit *r = calloc(cnt + 1, sizeof *r);
	for (size_t i = 0; r != NULL && i < cnt; i++) {
		r[i].conv_id = h[i].conv_id;
		r[i].msg_id = h[i].msg_id;
		r[i].role = h[i].role;
		r[i].title = h[i].title;
		r[i].snippet = h[i].snippet;
		h[i].title = h[i].snippet = NULL;   /* moved */
	}
	db_hits_free(h, cnt);
	if (r == NULL)
		return session_fail(s, "out of memory");
	*out = r;
	*n = cnt;
	return 0;
}

void
session_hits_free(struct session_hit *a, size_t n)
{
	for (size_t i = 0; a != NULL && i < n; i++) {
		free(a[i].title);
		free(a[i].snippet);
	}
	free(a);
}

int
session_presets(struct session *s, struct session_preset **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (s->db == NULL)
		return 0;
	struct db_preset *p;
	size_t cnt;
	char *err = NULL;
	if (db_preset_list(s->db, &p, &cnt, &err) != 0)
		return session_fail_take(s, err);
	struct session_preset *r = calloc(cnt + 1, sizeof *r);
	for (size_t i = 0; r != NULL && i < cnt; i++) {
		r[i].name = p[i].name;
		r[i].system = p[i].system_prompt;
		p[i].name = p[i].system_prompt = NULL;   /* moved */
	}
	db_preset_array_free(p, cnt);
	if (r == NULL)
		return session_fail(s, "out of memory");
	*out = r;
	*n = cnt;
	return 0;
}

void
session_presets_free(struct session_preset *a, size_t n)
{
	for (size_t i = 0; a != NULL && i < n; i++) {
		free(a[i].name);
		free(a[i].system);
	}
	free(a);
}
