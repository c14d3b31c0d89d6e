/*
 * import_any.c: import what people have at hand, not only our own export:
 * one llama2-chat export (an object with "format": "llama2-chat"), an array
 * of them (export --all), an OpenAI-style {"messages": [...]} object, or a
 * plain [{"role", "content"}, ...] array.  Each becomes one conversation.
 *
 * Invariants.  The whole document is converted and checked before anything
 * is written, so a bad entry anywhere imports nothing; each conversation
 * is then one transaction (db_conv_insert), and a write that fails stops
 * there, the ones before it kept and reported.  A conversation
 * whose messages (roles and texts, in order) are those of one already
 * stored is not inserted again: importing the same file twice, or a file
 * exported from this database, says which conversation it already is and
 * skips it (unless the caller forces it).  The comparison is on content,
 * not on ids or times, because the plain formats carry neither.
 */
#include "storage/export.h"

#include <stdlib.h>
#include <string.h>

#include "storage/db_int.h"

/* A plain {"role", "content"} message: content a string or an array of
 * {"type": "text", "text"} parts (the OpenAI multi-part form). */
static int
import_any_message(const json_t *o, struct db_message *m, int64_t now, char **what)
{
	if (!json_is_object(o)) {
		*what = "is not an object";
		return -1;
	}
	const json_t *r = json_object_get(o, "role"), *c = json_object_get(o, "content");
	if (!json_is_string(r) || db_role_parse(json_string_value(r), &m->role) != 0) {
		*what = "has no \"role\" of system, user or assistant";
		return -1;
	}
	if (json_is_string(c)) {
		m->content = strndup(json_string_value(c), json_string_length(c));
	} else if (json_is_array(c)) {
		size_t len = 0, i;
		const json_t *part;
		json_array_foreach(c, i, part) {
			const json_t *t = json_object_get(part, "text");
			if (json_is_string(t))
				len += json_string_length(t) + 1;
		}
		m->content = calloc(1, len + 1);
		json_array_foreach(c, i, part) {
			const json_t *t = json_object_get(part, "text");
			if (json_is_string(t) && m->content != NULL) {
				if (m->content[0] != '\0')
					strcat(m->content, "\n");
				strcat(m->content, json_string_value(t));
			}
		}
	} else {
		*what = "has no \"content\" text";
		return -1;
	}
	if (m->content == NULL) {
		*what = ": out of memory";
		return -1;
	}
	if (json_is_string(c) && strlen(m->content) != json_string_length(c)) {
		*what = "holds a NUL character";
		return -1;
	}
	m->created = now;
	m->finish = m->role == ROLE_ASSISTANT ? FINISH_EOS : FINISH_NONE;
	return 0;
}

/* A conversation from a plain message array (title: the first user message). */
static struct db_conv *
import_any_plain(const json_t *msgs, const json_t *title, char **err)
{
	struct db_conv *c = calloc(1, sizeof *c);
	size_t n = json_array_size(msgs);
	if (c == NULL || (c->messages = calloc(n + 1, sizeof *c->messages)) == NULL) {
		free(c);
		db_errf(err, "out of memory");
		return NULL;
	}
	if (n == 0) {
		db_conv_free(c);
		db_errf(err, "no messages");
		return NULL;
	}
	int64_t now = db_now_ms();
	c->created = c->updated = now;
	for (size_t i = 0; i < n; i++) {
		char *what = "";
		c->n_messages = (int)i + 1;
		if (import_any_message(json_array_get(msgs, i), &c->messages[i], now, &what) != 0) {
			db_errf(err, "message %zu %s", i + 1, what);
			db_conv_free(c);
			return NULL;
		}
		c->messages[i].position = (int)i;
		if (c->title == NULL && c->messages[i].role == ROLE_USER)
			c->title = db_title_from(c->messages[i].content);
	}
	if (json_is_string(title)) {
		free(c->title);
		c->title = strdup(json_string_value(title));
	}
	return c;
}

/* One entry of the document as a conversation. */
static struct db_conv *
import_any_one(const json_t *v, char **err)
{
	if (json_is_object(v) && json_object_get(v, "format") != NULL)
		return import_conv(v, err);
	if (json_is_object(v) && json_is_array(json_object_get(v, "messages")))
		return import_any_plain(json_object_get(v, "messages"), json_object_get(v, "title"), err);
	if (json_is_array(v))
		return import_any_plain(v, NULL, err);
	db_errf(err, "not a conversation: expected a llama2-chat export, {\"messages\": [...]} "
	    "or [{\"role\": ..., \"content\": ...}, ...]");
	return NULL;
}

/* The stored conversation with exactly c's messages, or 0. */
static int64_t
import_any_same(struct db *d, const struct db_conv *c, char *pid)
{
	sqlite3_stmt *st = db_prep(d, "SELECT c.id, c.pid FROM conversations c JOIN messages m"
	    " ON m.conversation_id = c.id AND m.position = 0"
	    " WHERE c.n_messages = ?1 AND m.content = ?2 AND m.role = ?3", NULL, NULL);
	if (st == NULL || c->n_messages == 0) {
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_bind_int(st, 1, c->n_messages);
	db_bind_text(st, 2, c->messages[0].content != NULL ? c->messages[0].content : "");
	db_bind_text(st, 3, db_role_name(c->messages[0].role));
	int64_t found = 0;
	while (!found && sqlite3_step(st) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		struct db_conv *s = db_conv_load(d, id, NULL);
		int same = s != NULL && s->n_messages == c->n_messages;
		for (int i = 0; same && i < c->n_messages; i++)
			same = s->messages[i].role == c->messages[i].role &&
			    strcmp(s->messages[i].content ? s->messages[i].content : "",
			    c->messages[i].content ? c->messages[i].content : "") == 0;
		if (same) {
			found = id;
			snprintf(pid, DB_PID_LEN + 1, "%s", (const char *)sqlite3_column_text(st, 1));
		}
		db_conv_free(s);
	}
	sqlite3_finalize(st);
	return found;
}

void
import_any_free(struct import_result *r, size_t n)
{
	(void)n;
	free(r);
}

int
import_any_file(struct db *d, const char *path, int force, struct import_result **out, size_t *nout,
    char **err)
{
	json_error_t je;
	int from_stdin = strcmp(path, "-") == 0;
	const char *name = from_stdin ? "standard input" : path;
	*out = NULL;
	*nout = 0;
	json_t *doc = from_stdin ? json_loadf(stdin, 0, &je) : json_load_file(path, 0, &je);
	if (doc == NULL) {
		if (je.line <= 0)
			return db_errf(err, "%s: %s", name, je.text);
		return db_errf(err, "%s:%d: not valid JSON: %s", name, je.line, je.text);
	}
	/* An array of exports (or of {"messages"} objects) is many
	 * conversations; any other array is the messages of one. */
	size_t n = 1;
	const json_t *first = json_array_get(doc, 0);
	int many = json_is_array(doc) && json_is_object(first) &&
	    (json_object_get(first, "format") != NULL || json_is_array(json_object_get(first, "messages")));
	if (many)
		n = json_array_size(doc);
	struct db_conv **cs = calloc(n, sizeof *cs);
	struct import_result *r = calloc(n, sizeof *r);
	int rc = 0;
	if (cs == NULL || r == NULL)
		rc = db_errf(err, "%s: out of memory", name);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char *cerr = NULL;
		cs[i] = import_any_one(many ? json_array_get(doc, i) : doc, &cerr);
		if (cs[i] == NULL) {
			if (many)
				rc = db_errf(err, "%s: conversation %zu: %s", name, i + 1, cerr ? cerr : "");
			else
				rc = db_errf(err, "%s: %s", name, cerr ? cerr : "");
		}
		free(cerr);
	}
	json_decref(doc);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char same[DB_PID_LEN + 1] = "";
		if (!force && import_any_same(d, cs[i], same) != 0) {
			snprintf(r[i].same_as, sizeof r[i].same_as, "%s", same);
			continue;
		}
		if (db_conv_insert(d, cs[i], err) != 0) {
			rc = -1;
			break;
		}
		r[i].id = cs[i]->id;
		memcpy(r[i].pid, cs[i]->pid, DB_PID_LEN + 1);
		*nout = i + 1;
	}
	for (size_t i = 0; cs != NULL && i < n; i++)
		db_conv_free(cs[i]);
	free(cs);
	if (rc != 0 && *nout == 0) {
		free(r);
		return -1;
	}
	*out = r;
	*nout = rc == 0 ? n : *nout;
	return rc;
}
