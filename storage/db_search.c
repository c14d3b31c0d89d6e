/*
 * db_search.c: full-text search over message contents, hits with a marked
 * snippet.  Two indexes (db_schema.c): messages_fts (unicode61 words) and
 * messages_tri (trigrams, for scripts without spaces between words).
 *
 * A plain query is made safe for FTS5 here: each word or "phrase" becomes
 * an FTS5 string, so what's, sky?, C++ and e-mail mean the words they
 * contain instead of FTS5 syntax errors; prefix* and AND/OR/NOT between
 * words keep their meaning.  A query holding CJK text (no spaces between
 * words, so unicode61 sees a whole sentence as one token) is matched as
 * substrings instead: through the trigram index for terms of 3 or more
 * characters, LIKE for shorter ones (which scans: no index helps one or
 * two characters), with the snippet cut and marked here.  db_search_fts
 * passes the query to FTS5 as it is.
 */
#include "storage/db_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- search ------------------------------------------------------------------ */

static char *db_search_snippet(const char *content, char **terms, int n, const char *on, const char *off);

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

/* Run st (bound; column 6 the snippet, or with terms the whole content
 * to cut a snippet from) and collect the hits. */
static int
db_search_collect(struct db *d, sqlite3_stmt *st, const char *query, char **terms, int nterms,
    const char *mark_open, const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	static const char what[] = "cannot search";

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
		h->snippet = terms != NULL ?
		    db_search_snippet((const char *)sqlite3_column_text(st, 6), terms, nterms,
		    mark_open != NULL ? mark_open : "", mark_close != NULL ? mark_close : "") :
		    db_col_text(st, 6, &oom);
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
			ret = db_errf(err, "bad search query '%s': %s (FTS5 syntax: put words with "
			    "special characters in double quotes, or search without --fts)", query, sqlite3_errmsg(d->h));
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

/* Is code point c from a script written without spaces between words
 * (CJK ideographs, kana, hangul, their compatibility and extension
 * blocks)? */
static int
db_search_cjk_cp(uint32_t c)
{
	return (c >= 0x2e80 && c <= 0x9fff) || (c >= 0xa960 && c <= 0xa97f) ||
	    (c >= 0xac00 && c <= 0xd7ff) || (c >= 0xf900 && c <= 0xfaff) ||
	    (c >= 0xff00 && c <= 0xffef) || (c >= 0x20000 && c <= 0x3ffff);
}

/* Decode one UTF-8 sequence (invalid bytes count as one code point). */
static uint32_t
db_search_cp(const unsigned char *s, size_t *len)
{
	if (s[0] >= 0xf0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		*len = 4;
		return (uint32_t)(s[0] & 7) << 18 | (uint32_t)(s[1] & 0x3f) << 12 | (uint32_t)(s[2] & 0x3f) << 6 |
		    (s[3] & 0x3f);
	}
	if (s[0] >= 0xe0 && (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
		*len = 3;
		return (uint32_t)(s[0] & 0xf) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	}
	if (s[0] >= 0xc0 && (s[1] & 0xc0) == 0x80) {
		*len = 2;
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	}
	*len = 1;
	return s[0];
}

static int
db_search_is_cjk(const char *t, int *chars)
{
	int cjk = 0;
	*chars = 0;
	for (const unsigned char *p = (const unsigned char *)t; *p;) {
		size_t l;
		cjk |= db_search_cjk_cp(db_search_cp(p, &l));
		p += l;
		(*chars)++;
	}
	return cjk;
}

/* Split a plain query into terms: words, and "phrases" without their
 * quotes.  malloc'd array of malloc'd strings, or NULL (out of memory). */
static char **
db_search_terms(const char *q, int *n)
{
	size_t len = strlen(q);
	char **t = calloc(len / 2 + 2, sizeof *t);
	*n = 0;
	if (t == NULL)
		return NULL;
	const char *p = q;
	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		const char *b = p, *e;
		if (*p == '"' && strchr(p + 1, '"') != NULL) {
			b = p + 1;
			e = strchr(b, '"');
			p = e + 1;
		} else {
			while (*p && !isspace((unsigned char)*p))
				p++;
			e = p;
		}
		if (e > b && (t[*n] = strndup(b, (size_t)(e - b))) == NULL) {
			for (int i = 0; i < *n; i++)
				free(t[i]);
			free(t);
			return NULL;
		}
		*n += e > b;
	}
	return t;
}

static void
db_search_terms_free(char **t, int n)
{
	for (int i = 0; t != NULL && i < n; i++)
		free(t[i]);
	free(t);
}

/* Append s to the growing buffer *b (NULL stays NULL on out of memory). */
static void
db_search_cat(char **b, size_t *len, const char *s, size_t n)
{
	if (*b == NULL)
		return;
	char *nb = realloc(*b, *len + n + 1);
	if (nb == NULL) {
		free(*b);
		*b = NULL;
		return;
	}
	memcpy(nb + *len, s, n);
	*len += n;
	nb[*len] = '\0';
	*b = nb;
}

/* FTS5 text for the terms: each an FTS5 string ("" doubles a quote),
 * a trailing * kept as a prefix search, AND/OR/NOT between terms kept. */
static char *
db_search_fts_text(char **t, int n)
{
	size_t len = 0;
	char *b = calloc(1, 1);
	for (int i = 0; i < n; i++) {
		size_t tl = strlen(t[i]);
		if (i > 0)
			db_search_cat(&b, &len, " ", 1);
		if (i > 0 && i < n - 1 && (!strcmp(t[i], "AND") || !strcmp(t[i], "OR") || !strcmp(t[i], "NOT"))) {
			db_search_cat(&b, &len, t[i], tl);
			continue;
		}
		int prefix = tl > 1 && t[i][tl - 1] == '*';
		db_search_cat(&b, &len, "\"", 1);
		for (size_t k = 0; k < tl - (size_t)prefix; k++)
			db_search_cat(&b, &len, t[i][k] == '"' ? "\"\"" : &t[i][k], t[i][k] == '"' ? 2 : 1);
		db_search_cat(&b, &len, prefix ? "\"*" : "\"", prefix ? 2 : 1);
	}
	return b;
}

/* Where term occurs in s (ASCII letters compared without case, as
 * unicode61 and the trigram index do), or NULL. */
static const char *
db_search_find(const char *s, const char *term)
{
	size_t tl = strlen(term);
	for (const char *p = s; *p; p++)
		if (strncasecmp(p, term, tl) == 0)
			return p;
	return NULL;
}

/* A snippet of content around the first match: about 16 code points
 * before it and 48 after, every occurrence of a term marked. */
static char *
db_search_snippet(const char *content, char **terms, int n, const char *on, const char *off)
{
	if (content == NULL)
		return strdup("");
	const char *first = NULL;
	for (int i = 0; i < n; i++) {
		const char *f = db_search_find(content, terms[i]);
		if (f != NULL && (first == NULL || f < first))
			first = f;
	}
	if (first == NULL)
		first = content;
	const char *b = first;
	for (int k = 0; k < 16 && b > content; k++)
		do
			b--;
		while (b > content && ((unsigned char)*b & 0xc0) == 0x80);
	const char *e = first;
	for (int k = 0; k < 64 && *e; k++) {
		size_t l;
		db_search_cp((const unsigned char *)e, &l);
		for (size_t j = 0; j < l && *e; j++)
			e++;
	}
	size_t len = 0;
	char *out = calloc(1, 1);
	if (b > content)
		db_search_cat(&out, &len, "\xe2\x80\xa6", 3);
	for (const char *p = b; p < e;) {
		size_t hit = 0;
		for (int i = 0; i < n && hit == 0; i++) {
			size_t tl = strlen(terms[i]);
			if (tl > 0 && (size_t)(e - p) >= tl && strncasecmp(p, terms[i], tl) == 0)
				hit = tl;
		}
		if (hit > 0) {
			db_search_cat(&out, &len, on, strlen(on));
			db_search_cat(&out, &len, p, hit);
			db_search_cat(&out, &len, off, strlen(off));
			p += hit;
		} else {
			db_search_cat(&out, &len, p, 1);
			p++;
		}
	}
	if (*e)
		db_search_cat(&out, &len, "\xe2\x80\xa6", 3);
	return out;
}

static int
db_search_empty(const char *query, char **err)
{
	const char *q = query != NULL ? query : "";
	while (isspace((unsigned char)*q))
		q++;
	return *q == '\0' ? db_errf(err, "empty search query") : 0;
}

/* FTS5's own syntax over messages_fts.  Newest first (rowid order): FTS5
 * walks its doclists backwards and stops at the limit, where ordering by
 * rank would score every match. */
static int
db_search_match(struct db *d, const char *fts, const char *shown, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	sqlite3_stmt *st = db_prep(d,
	    "SELECT c.id, c.pid, c.title, m.position, m.role, m.created,"
	    " snippet(messages_fts, 0, ?2, ?3, '\xe2\x80\xa6', 16), m.id"
	    " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
	    " JOIN conversations c ON c.id = m.conversation_id"
	    " WHERE messages_fts MATCH ?1 ORDER BY messages_fts.rowid DESC LIMIT ?4", err, "cannot search");
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, fts, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, mark_open != NULL ? mark_open : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, mark_close != NULL ? mark_close : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, limit > 0 ? limit : 20);
	return db_search_collect(d, st, shown, NULL, 0, mark_open, mark_close, out, n, err);
}

int
db_search_fts(struct db *d, const char *query, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	*out = NULL;
	*n = 0;
	if (db_search_empty(query, err) != 0)
		return -1;
	return db_search_match(d, query, query, limit, mark_open, mark_close, out, n, err);
}

/* Substrings: every term must occur (trigram index for 3+ characters). */
static int
db_search_substrings(struct db *d, const char *query, char **t, int nt, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	size_t len = 0;
	char *sql = strdup("SELECT c.id, c.pid, c.title, m.position, m.role, m.created, m.content, m.id"
	    " FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE 1");
	if (sql != NULL)
		len = strlen(sql);
	char **pat = calloc((size_t)nt + 1, sizeof *pat);
	for (int i = 0; sql != NULL && pat != NULL && i < nt; i++) {
		int chars;
		db_search_is_cjk(t[i], &chars);
		char frag[96];
		if (chars >= 3) {
			snprintf(frag, sizeof frag, " AND m.id IN (SELECT rowid FROM messages_tri"
			    " WHERE messages_tri MATCH ?%d)", i + 2);
			/* One FTS5 string: the trigram tokenizer matches it anywhere. */
			char *one[1] = { t[i] };
			pat[i] = db_search_fts_text(one, 1);
		} else {
			snprintf(frag, sizeof frag, " AND m.content LIKE ?%d ESCAPE '\\'", i + 2);
			size_t tl = strlen(t[i]), o = 0;
			pat[i] = malloc(2 * tl + 3);
			if (pat[i] != NULL) {
				pat[i][o++] = '%';
				for (size_t k = 0; k < tl; k++) {
					if (t[i][k] == '%' || t[i][k] == '_' || t[i][k] == '\\')
						pat[i][o++] = '\\';
					pat[i][o++] = t[i][k];
				}
				pat[i][o++] = '%';
				pat[i][o] = '\0';
			}
		}
		if (pat[i] == NULL) {
			free(sql);
			sql = NULL;
		}
		db_search_cat(&sql, &len, frag, strlen(frag));
	}
	db_search_cat(&sql, &len, " ORDER BY m.id DESC LIMIT ?1", 28);
	int rc = -1;
	sqlite3_stmt *st = sql != NULL ? db_prep(d, sql, err, "cannot search") : NULL;
	if (sql == NULL)
		db_errf(err, "cannot search: out of memory");
	if (st != NULL) {
		sqlite3_bind_int(st, 1, limit > 0 ? limit : 20);
		for (int i = 0; i < nt; i++)
			sqlite3_bind_text(st, i + 2, pat[i], -1, SQLITE_STATIC);
		rc = db_search_collect(d, st, query, t, nt, mark_open, mark_close, out, n, err);
	}
	for (int i = 0; pat != NULL && i < nt; i++)
		free(pat[i]);
	free(pat);
	free(sql);
	return rc;
}

int
db_search(struct db *d, const char *query, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err)
{
	*out = NULL;
	*n = 0;
	if (db_search_empty(query, err) != 0)
		return -1;
	int nt, cjk = 0;
	char **t = db_search_terms(query, &nt);
	if (t == NULL)
		return db_errf(err, "cannot search: out of memory");
	for (int i = 0; i < nt; i++) {
		int chars;
		cjk |= db_search_is_cjk(t[i], &chars);
	}
	int rc;
	if (cjk) {
		rc = db_search_substrings(d, query, t, nt, limit, mark_open, mark_close, out, n, err);
	} else {
		char *fts = db_search_fts_text(t, nt);
		rc = fts != NULL ? db_search_match(d, fts, query, limit, mark_open, mark_close, out, n, err) :
		    db_errf(err, "cannot search: out of memory");
		free(fts);
	}
	db_search_terms_free(t, nt);
	return rc;
}
