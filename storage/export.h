/*
 * export.h: conversations out to files (export.c) and back in (import.c).
 *
 * Formats: Markdown (the default), plain text, JSON and one self-contained
 * HTML page (inline CSS, no scripts, no external resources, every piece of
 * text escaped).  The JSON is the exchange format: it holds everything
 * import needs to recreate the conversation exactly, every branch of it.
 * Layout (version 2):
 *
 *   { "format": "llama2-chat", "version": 2, "id": "9fzq2d",
 *     "title": ..., "created": "2024-05-01T12:00:00.123Z", "updated": ...,
 *     "model": { "name": ..., "fingerprint": ... }, "preset": ...,
 *     "system_prompt": ..., "params": { ... } | null, "leaf": 5 | null,
 *     "messages": [ { "id": 0, "parent": null | 0, "role": "user",
 *                     "content": ..., "tokens": [1, 2] | null,
 *                     "created": ..., "finish": null | "eos" | ...,
 *                     "stats": {...} | null, "sampler": {...} | null,
 *                     "seed": 42 | null }, ... ] }
 *
 * Times are UTC with milliseconds, which is the database's precision, so
 * they survive the trip.  Messages are in position order: "id" is the
 * message's number within the conversation (its position), "parent" the
 * number of the message it answers or follows (null for a root; siblings
 * are alternatives), "leaf" the last message of the current branch.
 * Version 1 (no "id", "parent", "leaf") is read as one branch in order.
 * Markdown, text and HTML show the current branch, marking each message
 * that has alternatives ("alternative 2 of 3").  A seed above
 * 2^63-1 is written as a decimal string (JSON readers lose such integers).
 * Real numbers inside params/stats/sampler are written with 15 significant
 * digits, which any value that was itself read from text keeps exactly.
 *
 * Round trip: import(export(c)) gives a new conversation whose export is
 * byte for byte the same apart from "id" (a fresh public id is drawn);
 * created/updated and every message field are kept as they were.
 */
#ifndef STORAGE_EXPORT_H
#define STORAGE_EXPORT_H

#include <stdio.h>

#include <jansson.h>

#include "storage/db.h"

enum export_format { EXPORT_MD, EXPORT_TXT, EXPORT_JSON, EXPORT_HTML };

#define EXPORT_JSON_FORMAT "llama2-chat"
#define EXPORT_JSON_VERSION 2

/* "md"/"markdown", "txt"/"text", "json", "html"/"htm", in any case: 0
 * with *f, or -1. */
int export_format_parse(const char *name, enum export_format *f);
const char *export_format_name(enum export_format f);

/* The JSON document for c (a loaded conversation); a new reference, or
 * NULL with *err set when a stored JSON field is unreadable or memory ran out. */
json_t *export_json(const struct db_conv *c, char **err);
/* Write c in format f to out.  -1 with *err on a write error. */
int export_write(const struct db_conv *c, enum export_format f, FILE *out, char **err);
/*
 * Write c to a new file at path, created 0600.  Without force an existing
 * file is an error and is left alone; with force it is replaced atomically
 * (written beside it, then renamed over it).  A failed export removes what
 * it wrote.  -1 with *err.
 */
int export_file(const struct db_conv *c, enum export_format f, const char *path, int force,
    char **err);

#define EXPORT_TIME_LEN 64
/* UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" for Unix ms t, into buf (EXPORT_TIME_LEN bytes). */
void export_time_iso(int64_t t, char *buf, size_t size);
/* Parse what export_time_iso writes (the "Z" and milliseconds may be left
 * out); 0 with *t, or -1. */
int export_time_parse(const char *s, int64_t *t);

/* ---- import.c ------------------------------------------------------------ */

/*
 * Turn an exported JSON document into a struct db_conv (with messages) for
 * db_conv_insert; the caller frees it with db_conv_free.  NULL with *err
 * naming the first field that is missing or has the wrong type.
 */
struct db_conv *import_conv(const json_t *doc, char **err);
/*
 * Read the JSON file at path ("-" is standard input) and insert it as a new
 * conversation; *id and pid (DB_PID_LEN + 1 bytes) receive its handle and
 * public id.  -1 with *err, nothing inserted.
 */
int import_file(struct db *d, const char *path, int64_t *id, char *pid, char **err);

/* ---- import_any.c --------------------------------------------------------- */

struct import_result {
	int64_t id;                     /* 0 when skipped */
	char pid[DB_PID_LEN + 1];       /* the new conversation's public id */
	char same_as[DB_PID_LEN + 1];   /* skipped: the stored one with the same messages */
};
/*
 * Import the JSON at path ("-": stdin): a llama2-chat export, an array of
 * them, {"messages": [...]} or [{"role", "content"}, ...].  A conversation
 * whose messages equal a stored one's is skipped (same_as) unless force.
 * 0 with *out (import_any_free) holding *n results in document order; -1
 * with *err: nothing written when the document is bad, and when a write
 * failed, *out and *n still list what was imported before it.
 */
int import_any_file(struct db *d, const char *path, int force, struct import_result **out, size_t *n,
    char **err);
void import_any_free(struct import_result *r, size_t n);

#endif
