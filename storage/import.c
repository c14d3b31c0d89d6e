/*
 * import.c: a conversation exported as JSON (layout in export.h) read back
 * into the database as a new conversation.
 *
 * Invariants.  The document is checked completely before anything is
 * written: every field must be present with its type (null allowed where
 * export writes null), roles and finish reasons must be known names, and
 * token ids must fit in int32; in a version 2 export (a tree) message
 * numbers increase and every parent is an earlier message (db_conv_insert
 * checks that the parent exists).  The insert itself is one transaction
 * (db_conv_insert), so a bad file or a failed write imports nothing.
 * Embedded objects (params, stats, sampler) are stored as compact JSON
 * with the same real-number precision that export uses, which is what
 * makes export -> import -> export give the same bytes.
 */
#include "storage/export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_int.h"

#define IMPORT_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* Optional string field: 0 with *out (malloc'd or NULL for null), -1 when
 * the field is missing or not a string. */
static int
import_str(const json_t *o, const char *key, char **out, int nullable)
{
	const json_t *v = json_object_get(o, key);
	*out = NULL;
	if (v == NULL)
		return -1;
	if (json_is_null(v))
		return nullable ? 0 : -1;
	if (!json_is_string(v))
		return -1;
	*out = strndup(json_string_value(v), json_string_length(v));
	return *out != NULL ? 0 : -1;
}

/* Object field stored as JSON text: null -> NULL; anything else must be
 * an object. */
static int
import_obj(const json_t *o, const char *key, char **out)
{
	const json_t *v = json_object_get(o, key);
	*out = NULL;
	if (v == NULL)
		return -1;
	if (json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -1;
	*out = json_dumps(v, IMPORT_JSON_FLAGS);
	return *out != NULL ? 0 : -1;
}

/* Years 0000 to 9999: what export_time_iso can write and read back. */
#define IMPORT_TIME_MIN INT64_C(-62167219200000)   /* 0000-01-01T00:00:00.000Z */
#define IMPORT_TIME_MAX INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */

static int
import_time(const json_t *o, const char *key, int64_t *t)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		*t = json_integer_value(v);
	else if (!json_is_string(v) || export_time_parse(json_string_value(v), t) != 0)
		return -1;
	/* A time outside them would be exported as text no import accepts. */
	return *t >= IMPORT_TIME_MIN && *t <= IMPORT_TIME_MAX ? 0 : -1;
}

/* A message number of a version 2 export: a non-negative integer that fits
 * a position.  -1 when it is something else. */
static int
import_number(const json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
		return -1;
	return (int)json_integer_value(v);
}

static int
import_message(const json_t *o, struct db_message *m, const char **field)
{
	const json_t *v;
	char *role = NULL, *finish = NULL;
	int ret = -1;

	if (!json_is_object(o)) {
		*field = "(not an object)";
		return -1;
	}
	m->parent_position = -1;
	if (import_str(o, (*field = "role"), &role, 0) != 0 || db_role_parse(role, &m->role) != 0)
		goto out;
	if (import_str(o, (*field = "content"), &m->content, 0) != 0)
		goto out;
	*field = "tokens";
	v = json_object_get(o, "tokens");
	if (v == NULL || (!json_is_null(v) && !json_is_array(v)))
		goto out;
	if (json_is_array(v)) {
		size_t n = json_array_size(v);
		m->tokens = malloc((n + 1) * sizeof *m->tokens);
		if (m->tokens == NULL)
			goto out;
		for (size_t k = 0; k < n; k++) {
			const json_t *t = json_array_get(v, k);
			if (!json_is_integer(t) || json_integer_value(t) < INT32_MIN ||
			    json_integer_value(t) > INT32_MAX)
				goto out;
			m->tokens[k] = (int32_t)json_integer_value(t);
		}
		m->n_tokens = n;
	}
	if (import_time(o, (*field = "created"), &m->created) != 0)
		goto out;
	if (import_str(o, (*field = "finish"), &finish, 1) != 0 ||
	    db_finish_parse(finish, &m->finish) != 0)
		goto out;
	if (import_obj(o, (*field = "stats"), &m->stats) != 0 ||
	    import_obj(o, (*field = "sampler"), &m->sampler) != 0)
		goto out;
	*field = "seed";
	v = json_object_get(o, "seed");
	if (v == NULL)
		goto out;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			goto out;
		m->has_seed = 1;
		m->seed = (uint64_t)json_integer_value(v);
	} else if (json_is_string(v)) {
		/* Seeds above 2^63-1, written as decimal strings by export. */
		char *end;
		errno = 0;
		m->seed = strtoull(json_string_value(v), &end, 10);
		if (errno != 0 || *end != '\0' || end == json_string_value(v))
			goto out;
		m->has_seed = 1;
	} else if (!json_is_null(v)) {
		goto out;
	}
	ret = 0;
out:
	free(role);
	free(finish);
	return ret;
}

struct db_conv *
import_conv(const json_t *doc, char **err)
{
	const char *field = "format";
	const json_t *v, *model, *msgs;
	struct db_conv *c = calloc(1, sizeof *c);

	if (c == NULL) {
		db_errf(err, "out of memory");
		return NULL;
	}
	if (!json_is_object(doc)) {
		db_errf(err, "not a llama2-chat export (the top level is not an object)");
		goto fail_quiet;
	}
	v = json_object_get(doc, "format");
	if (!json_is_string(v) || strcmp(json_string_value(v), EXPORT_JSON_FORMAT) != 0) {
		db_errf(err, "not a llama2-chat export (no \"format\": \"%s\")", EXPORT_JSON_FORMAT);
		goto fail_quiet;
	}
	v = json_object_get(doc, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > EXPORT_JSON_VERSION) {
		db_errf(err, "unsupported export version (this llama2-chat reads version %d)",
		    EXPORT_JSON_VERSION);
		goto fail_quiet;
	}
	if (import_str(doc, (field = "title"), &c->title, 1) != 0 ||
	    import_time(doc, (field = "created"), &c->created) != 0 ||
	    import_time(doc, (field = "updated"), &c->updated) != 0 ||
	    import_str(doc, (field = "preset"), &c->preset, 1) != 0 ||
	    import_str(doc, (field = "system_prompt"), &c->system_prompt, 1) != 0 ||
	    import_obj(doc, (field = "params"), &c->params) != 0)
		goto fail;
	field = "model";
	model = json_object_get(doc, "model");
	if (!json_is_object(model) ||
	    (field = "model.name", import_str(model, "name", &c->model_name, 1)) != 0 ||
	    (field = "model.fingerprint",
	    import_str(model, "fingerprint", &c->model_fingerprint, 1)) != 0)
		goto fail;
	field = "messages";
	msgs = json_object_get(doc, "messages");
	if (!json_is_array(msgs) || json_array_size(msgs) > INT32_MAX)
		goto fail;
	size_t n = json_array_size(msgs);
	c->messages = calloc(n + 1, sizeof *c->messages);
	if (c->messages == NULL)
		goto fail;
	/* Version 2 is a tree: every message has a number ("id", increasing)
	 * and the number of its parent (an earlier message, or null for a
	 * root); "leaf" names the current branch's last message.  Version 1
	 * is one branch in order. */
	c->tree = json_integer_value(v) >= 2;
	c->leaf_position = -1;
	if (c->tree) {
		const json_t *leaf = json_object_get(doc, (field = "leaf"));
		if (leaf == NULL || (!json_is_null(leaf) && import_number(leaf) < 0))
			goto fail;
		c->leaf_position = json_is_null(leaf) ? -1 : import_number(leaf);
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *o = json_array_get(msgs, i);
		struct db_message *m = &c->messages[i];
		c->n_messages = (int)i + 1;     /* so db_conv_free frees this one too */
		if (import_message(o, m, &field) != 0)
			goto bad_message;
		m->position = (int)i;
		if (!c->tree)
			continue;
		const json_t *num = json_object_get(o, (field = "id"));
		const json_t *parent = json_object_get(o, "parent");
		m->position = import_number(num);
		if (m->position < 0 || (i > 0 && m->position <= c->messages[i - 1].position))
			goto bad_order;
		field = "parent";
		if (parent == NULL || (!json_is_null(parent) && import_number(parent) < 0))
			goto bad_message;
		m->parent_position = json_is_null(parent) ? -1 : import_number(parent);
		if (m->parent_position >= m->position)
			goto bad_order;
	}
	c->n_messages = (int)n;
	return c;
bad_message:
	db_errf(err, "bad export: message %zu: field \"%s\" is missing or wrong",
	    (size_t)c->n_messages, field);
	goto fail_quiet;
bad_order:
	db_errf(err, "bad export: message %zu: \"%s\" must be larger than the message before's "
	    "and its parent's", (size_t)c->n_messages, field);
	goto fail_quiet;
fail:
	db_errf(err, "bad export: field \"%s\" is missing or wrong", field);
fail_quiet:
	db_conv_free(c);
	return NULL;
}

int
import_file(struct db *d, const char *path, int64_t *id, char *pid, char **err)
{
	json_error_t je;
	json_t *doc;
	int from_stdin = strcmp(path, "-") == 0;

	doc = from_stdin ? json_loadf(stdin, 0, &je) : json_load_file(path, 0, &je);
	if (doc == NULL) {
		if (je.line <= 0)
			return db_errf(err, "%s: %s", from_stdin ? "standard input" : path, je.text);
		return db_errf(err, "%s:%d: not valid JSON: %s", from_stdin ? "standard input" : path,
		    je.line, je.text);
	}
	char *cerr = NULL;
	struct db_conv *c = import_conv(doc, &cerr);
	json_decref(doc);
	if (c == NULL) {
		db_errf(err, "%s: %s", from_stdin ? "standard input" : path, cerr != NULL ? cerr : "");
		free(cerr);
		return -1;
	}
	int rc = db_conv_insert(d, c, err);
	if (rc == 0) {
		*id = c->id;
		memcpy(pid, c->pid, DB_PID_LEN + 1);
	}
	db_conv_free(c);
	return rc;
}
