/*
 * cmd_store.c: what the storage commands (list, show, export, import,
 * search, rename, rm in cmd_store_conv.c and cmd_store_search.c, presets in
 * cmd_store_preset.c) share: output, option parsing, opening the database.
 * They are the terminal face of storage/ (see cmd_store.h for the exit
 * statuses).
 *
 * Invariants.  Everything these commands print from the database goes
 * through cmd_store_put when it may reach a terminal, which turns control
 * characters into '?' so that a stored message can never move the cursor
 * or retitle the window; `export` to a pipe or file is the one exact,
 * unfiltered output.  Normal output goes to stdout, the one-line errors
 * and the rm question to stderr.  Colour (search highlights) only when
 * stdout is a terminal and NO_COLOR is unset.  Every id is resolved before
 * anything is changed, so `rm a b c` with one bad id deletes nothing.
 */
#include "app/cmd_store_int.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "app/cli.h"
#include "common/num.h"
#include "app/paths.h"
#include "storage/db.h"
#include "storage/export.h"

int
cmd_store_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_verror(fmt, ap);
	va_end(ap);
	return 1;
}

/* Print a malloc'd error from storage and free it. */
int
cmd_store_fail_err(char *err)
{
	cmd_store_fail("%s", err != NULL ? err : "unknown error");
	free(err);
	return 1;
}

int
cmd_store_usage(const struct cmd_ctx *x, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, CMD_PROG ": %s: ", x->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* One line, as every usage error (cli_usage_error). */
	fprintf(stderr, " (try '" CMD_PROG " %s --help')\n", x->name);
	return CMD_EXIT_USAGE;
}

/*
 * Write s to f with control characters made harmless: with `lines`,
 * newlines and tabs pass; without, every run of white space becomes one
 * space (list and search show one line per item).  With marks, the private
 * search marks become `on`/`off` (either may be "").  At most max_chars
 * code points when max_chars > 0, ending in "…" if cut.
 */
void
cmd_store_put(FILE *f, const char *s, int lines, int max_chars, const char *on, const char *off)
{
	int chars = 0, space = 0;
	for (const unsigned char *p = (const unsigned char *)s; p != NULL && *p; p++) {
		unsigned char ch = *p;
		int mark = (on != NULL && ch == CMD_MARK_ON[0]) || (off != NULL && ch == CMD_MARK_OFF[0]);
		if (!lines && (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')) {
			space = 1;
			continue;
		}
		/* A pending space goes out before whatever follows it, marks included. */
		if (space) {
			space = 0;
			if (chars > 0) {
				if (max_chars > 0 && chars >= max_chars - 1) {
					fputs("\xe2\x80\xa6", f);
					return;
				}
				fputc(' ', f);
				chars++;
			}
		}
		if (mark) {
			fputs(ch == CMD_MARK_ON[0] ? on : off, f);
			continue;
		}
		if ((ch & 0xC0) != 0x80) {
			if (max_chars > 0 && chars >= max_chars - 1 && p[1] != '\0') {
				/* Room for the ellipsis only if more is coming. */
				fputs("\xe2\x80\xa6", f);
				if (off != NULL)
					fputs(off, f);      /* never leave a highlight open */
				return;
			}
			chars++;
		}
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
			fputc('?', f);
		else
			fputc(ch, f);
	}
}

int
cmd_store_columns(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}

void
cmd_store_time(int64_t t, char *buf, size_t size)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;
	localtime_r(&s, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

json_t *
cmd_store_jstr(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
cmd_store_jtime(int64_t t)
{
	char buf[EXPORT_TIME_LEN];
	export_time_iso(t, buf, sizeof buf);
	return json_string(buf);
}

int
cmd_store_print_json(json_t *j)
{
	if (j == NULL)
		return cmd_store_fail("out of memory");
	int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	json_decref(j);
	fputc('\n', stdout);
	return rc == 0 ? 0 : cmd_store_fail("cannot write to standard output");
}

struct cmd_ctx *
cmd_store_begin(struct cmd_ctx *x, const char *name, const char *db)
{
	x->name = name;
	x->db_opt = db;
	x->json = 0;
	/* Full re-initialisation of getopt (GNU): each command parses afresh,
	 * and opterr = 0 because the messages are ours. */
	optind = 0;
	opterr = 0;
	return x;
}

/* ---- options ------------------------------------------------------------------ */

/* Report a getopt failure (c is '?' or ':') as a usage error. */
int
cmd_store_bad_opt(const struct cmd_ctx *x, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	if (c == ':')
		return cmd_store_usage(x, "option '%s' needs a value", arg);
	if (optopt != 0)
		return cmd_store_usage(x, "unknown option '-%c'", optopt);
	return cmd_store_usage(x, "unknown option '%s'", arg);
}

/* Handle the options every command shares; 1 when c was one of them. */
int
cmd_store_common(struct cmd_ctx *x, int c)
{
	switch (c) {
	case 'D':
		x->db_opt = optarg;
		return 1;
	case 'j':
		x->json = 1;
		return 1;
	case 'C':
		return 1;               /* --config: read before the command ran */
	}
	return 0;
}

int
cmd_store_parse_int(const char *s, long lo, long hi, long *out)
{
	long long v;
	if (num_long(s, lo, hi, &v) != 0)
		return -1;
	*out = (long)v;
	return 0;
}

/* The arguments from argv[from] on joined by spaces (malloc'd). */
char *
cmd_store_join(int argc, char **argv, int from)
{
	size_t len = 1;
	for (int i = from; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *s = malloc(len), *p = s;
	if (s == NULL)
		return NULL;
	*p = '\0';
	for (int i = from; i < argc; i++)
		p += sprintf(p, "%s%s", i > from ? " " : "", argv[i]);
	return s;
}

struct db *
cmd_store_open(const struct cmd_ctx *x, int *status)
{
	char *err = NULL;
	char *path = path_database(x->db_opt, &err);
	if (path == NULL) {
		*status = cmd_store_fail_err(err != NULL ? err : strdup("cannot find the data folder"));
		return NULL;
	}
	/* The commands that only read work on a read-only file too. */
	static const char *const readers[] = { "list", "show", "export", "search", "presets list",
		"presets show", "presets" };
	int reader = 0;
	for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++)
		reader |= strcmp(x->name, readers[i]) == 0;
	struct db *d = reader ? db_open_read(path, &err) : db_open(path, &err);
	free(path);
	if (d == NULL)
		*status = cmd_store_fail_err(err);
	return d;
}

/* Resolve a typed id or print why not. */
int
cmd_store_resolve(struct db *d, const char *prefix, int64_t *id)
{
	char *err = NULL;
	if (db_conv_resolve(d, prefix, id, &err) != 0)
		return cmd_store_fail_err(err);
	return 0;
}

/* Finish a command: a write error on stdout (a full disk, a closed pipe
 * that did not kill us) is a runtime error too. */
int
cmd_store_done(struct db *d, int status)
{
	db_close(d);
	if (fflush(stdout) != 0 || ferror(stdout))
		return status != 0 ? status : cmd_store_fail("cannot write to standard output");
	return status;
}
