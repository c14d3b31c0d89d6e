/*
 * dialog.c: the dialog JSON reader behind `render` (and its fuzz target).
 * Everything is checked before anything is returned: the top level is an
 * array, every element an object with string "role" and "content", every
 * role a known one.  The order of roles is chat_render's business.
 */
#include "app/dialog.h"
#include "engine/chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
dialog_fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
dialog_fail(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	va_end(ap);
	/* A quoted role may hold anything: one line, no control codes. */
	for (char *p = err ? *err : NULL; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
}

int
dialog_parse(const char *json, size_t len, json_t **doc, int **roles, const char ***contents, size_t *n,
    char **err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, 0, &je);
	*doc = NULL;
	*roles = NULL;
	*contents = NULL;
	*n = 0;
	if (j == NULL)
		return dialog_fail(err, "dialog JSON, line %d: %s", je.line, je.text);
	if (!json_is_array(j)) {
		json_decref(j);
		return dialog_fail(err, "dialog JSON: expected an array of {\"role\", \"content\"} objects");
	}
	size_t count = json_array_size(j);
	int *r = calloc(count + 1, sizeof *r);
	const char **c = calloc(count + 1, sizeof *c);
	if (r == NULL || c == NULL) {
		free(r);
		free(c);
		json_decref(j);
		return dialog_fail(err, "out of memory");
	}
	for (size_t i = 0; i < count; i++) {
		json_t *e = json_array_get(j, i);
		const char *role = json_string_value(json_object_get(e, "role"));
		const char *content = json_string_value(json_object_get(e, "content"));
		int rc = 0;
		if (!json_is_object(e) || role == NULL || content == NULL)
			rc = dialog_fail(err, "dialog JSON: message %zu needs string \"role\" and \"content\"", i + 1);
		else if ((r[i] = chat_role_parse(role)) < 0)
			rc = dialog_fail(err, "dialog JSON: message %zu: unknown role '%s' (system, user or assistant)",
			    i + 1, role);
		if (rc != 0) {
			free(r);
			free(c);
			json_decref(j);
			return -1;
		}
		c[i] = content;
	}
	*doc = j;
	*roles = r;
	*contents = c;
	*n = count;
	return 0;
}
