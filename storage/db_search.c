/*
 * db_search.c: full-text search over message contents (the FTS5 table of
 * db_schema.c), hits with a marked snippet.
 */
#include "storage/db_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	    " snippet(messages_fts, 0, ?2, ?3, '\xe2\x80\xa6', 16), m.id"
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
			h->role = ROLE_USER;
		h->created = sqlite3_column_int64(st, 5);
		h->snippet = db_col_text(st, 6, &oom);
		h->msg_id = sqlite3_column_int64(st, 7);
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
