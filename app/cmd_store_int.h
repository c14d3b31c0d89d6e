/*
 * cmd_store_int.h: what the storage commands' files (cmd_store*.c) share.
 */
#ifndef APP_CMD_STORE_INT_H
#define APP_CMD_STORE_INT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "app/cmd_store.h"

struct db;


#define CMD_PROG "llama2-chat"
#define CMD_EXIT_USAGE 2
#define CMD_LIST_DEFAULT 50
/* Private marks around search matches, swapped for ANSI or dropped on output. */
#define CMD_MARK_ON "\x01"
#define CMD_MARK_OFF "\x02"

struct cmd_ctx {
	const char *name;       /* "list", "presets add", ... for messages */
	const char *db_opt;     /* --db */
	int json;
};

#define CMD_COMMON_OPTS \
	{ "db", required_argument, NULL, 'D' }, \
	{ "config", required_argument, NULL, 'C' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "help", no_argument, NULL, 'h' }

/* Fill x for the command name with the default database db (the config
 * file's or the environment's; --db overrides) and reset getopt. */
struct cmd_ctx *cmd_store_begin(struct cmd_ctx *x, const char *name, const char *db);

/* "llama2-chat: <what>" on stderr; returns 1. */
int cmd_store_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a malloc'd error from storage and free it; returns 1. */
int cmd_store_fail_err(char *err);
/* A usage error of x's command plus a hint to --help; returns 2. */
int cmd_store_usage(const struct cmd_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write s to f with control characters made harmless (see cmd_store.c). */
void cmd_store_put(FILE *f, const char *s, int lines, int max_chars, const char *on, const char *off);
/* The terminal's width when stdout is one, else 0. */
int cmd_store_columns(void);
/* Local "YYYY-MM-DD HH:MM" of Unix milliseconds t. */
void cmd_store_time(int64_t t, char *buf, size_t size);
/* JSON string or null; ISO 8601 time. */
json_t *cmd_store_jstr(const char *s);
json_t *cmd_store_jtime(int64_t t);
/* Print j indented on stdout and release it. */
int cmd_store_print_json(json_t *j);
/* Report a getopt failure (c is '?' or ':') as a usage error. */
int cmd_store_bad_opt(const struct cmd_ctx *x, int c, char **argv);
/* Handle the options every command shares; 1 when c was one of them. */
int cmd_store_common(struct cmd_ctx *x, int c);
/* A whole-string number within [lo, hi]: 0, or -1. */
int cmd_store_parse_int(const char *s, long lo, long hi, long *out);
/* The arguments from argv[from] on joined by spaces (malloc'd). */
char *cmd_store_join(int argc, char **argv, int from);
/* Open x's database or print why not (*status set). */
struct db *cmd_store_open(const struct cmd_ctx *x, int *status);
/* Resolve a typed id or print why not. */
int cmd_store_resolve(struct db *d, const char *prefix, int64_t *id);
/* Close d and check stdout; returns the final status. */
int cmd_store_done(struct db *d, int status);

#endif
