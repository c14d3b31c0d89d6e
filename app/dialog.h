/*
 * dialog.h: the dialog JSON that `render` reads: an array of
 * {"role": "system"|"user"|"assistant", "content": "..."} objects.
 */
#ifndef APP_DIALOG_H
#define APP_DIALOG_H

#include <stddef.h>

#include <jansson.h>

/*
 * Parse len bytes of dialog JSON (need not be NUL-terminated).  On success
 * 0 with *doc the parsed document (the caller json_decref's it), *n the
 * message count and *roles (enum chat_role) and *contents malloc'd arrays of
 * n entries (at least one element each, so never NULL); contents point into
 * *doc.  On error -1, nothing to free, and *err a malloc'd one-line message
 * ("dialog JSON, line 3: ..." or "dialog JSON: message 2: ...").
 */
int dialog_parse(const char *json, size_t len, json_t **doc, int **roles, const char ***contents, size_t *n,
    char **err);

#endif
