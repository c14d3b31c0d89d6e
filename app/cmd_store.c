/*
 * cmd_store.c: list, show, export, import, search, rename, rm and presets:
 * the terminal face of storage/ (see cmd_store.h for the exit statuses).
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
#include "app/cmd_store.h"

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

#include "app/paths.h"
#include "storage/db.h"
#include "storage/export.h"

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

/* ---- output helpers ------------------------------------------------------- */

static int cmd_store_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cmd_store_usage(const struct cmd_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
cmd_store_fail(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs(CMD_PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Print a malloc'd error from storage and free it. */
static int
cmd_store_fail_err(char *err)
{
	cmd_store_fail("%s", err != NULL ? err : "unknown error");
	free(err);
	return 1;
}

static int
cmd_store_usage(const struct cmd_ctx *x, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, CMD_PROG ": %s: ", x->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CMD_PROG " %s --help'.\n", x->name);
	return CMD_EXIT_USAGE;
}

/*
 * Write s to f with control characters made harmless: with `lines`,
 * newlines and tabs pass; without, every run of white space becomes one
 * space (list and search show one line per item).  With marks, the private
 * search marks become `on`/`off` (either may be "").  At most max_chars
 * code points when max_chars > 0, ending in "…" if cut.
 */
static void
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

static int
cmd_store_columns(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 0;
}

static void
cmd_store_time(int64_t t, char *buf, size_t size)
{
	time_t s = (time_t)(t / 1000);
	struct tm tm;
	localtime_r(&s, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
}

static json_t *
cmd_store_jstr(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *
cmd_store_jtime(int64_t t)
{
	char buf[EXPORT_TIME_LEN];
	export_time_iso(t, buf, sizeof buf);
	return json_string(buf);
}

static int
cmd_store_print_json(json_t *j)
{
	if (j == NULL)
		return cmd_store_fail("out of memory");
	int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	json_decref(j);
	fputc('\n', stdout);
	return rc == 0 ? 0 : cmd_store_fail("cannot write to standard output");
}

/* ---- options ------------------------------------------------------------------ */

#define CMD_COMMON_OPTS \
	{ "db", required_argument, NULL, 'D' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "help", no_argument, NULL, 'h' }

/* Report a getopt failure (c is '?' or ':') as a usage error. */
static int
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
static int
cmd_store_common(struct cmd_ctx *x, int c)
{
	switch (c) {
	case 'D':
		x->db_opt = optarg;
		return 1;
	case 'j':
		x->json = 1;
		return 1;
	}
	return 0;
}

static int
cmd_store_parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_store_parse_real(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* The arguments from argv[from] on joined by spaces (malloc'd). */
static char *
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

static struct db *
cmd_store_open(const struct cmd_ctx *x, int *status)
{
	char *err = NULL;
	char *path = path_database(x->db_opt, &err);
	if (path == NULL) {
		*status = cmd_store_fail_err(err != NULL ? err : strdup("cannot find the data folder"));
		return NULL;
	}
	struct db *d = db_open(path, &err);
	free(path);
	if (d == NULL)
		*status = cmd_store_fail_err(err);
	return d;
}

/* Resolve a typed id or print why not. */
static int
cmd_store_resolve(struct db *d, const char *prefix, int64_t *id)
{
	char *err = NULL;
	if (db_conv_resolve(d, prefix, id, &err) != 0)
		return cmd_store_fail_err(err);
	return 0;
}

/* Finish a command: a write error on stdout (a full disk, a closed pipe
 * that did not kill us) is a runtime error too. */
static int
cmd_store_done(struct db *d, int status)
{
	db_close(d);
	if (fflush(stdout) != 0 || ferror(stdout))
		return status != 0 ? status : cmd_store_fail("cannot write to standard output");
	return status;
}

/* ---- list ------------------------------------------------------------------ */

static const char cmd_list_help[] =
	"usage: " CMD_PROG " list [--limit N] [--json] [--db FILE]\n"
	"The stored conversations, most recently active first: id, last activity,\n"
	"message count, title.  --limit N shows N of them (default 50, 0 = all).\n"
	"Any unique prefix of an id names a conversation in the other commands.\n";

static int
cmd_store_list(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "limit", required_argument, NULL, 'n' }, CMD_COMMON_OPTS, { 0 }
	};
	long limit = CMD_LIST_DEFAULT;
	int c;
	while ((c = getopt_long(argc, argv, ":n:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		switch (c) {
		case 'n':
			if (cmd_store_parse_int(optarg, 0, INT_MAX, &limit) != 0)
				return cmd_store_usage(x, "--limit wants a whole number >= 0, not '%s'", optarg);
			break;
		case 'h':
			fputs(cmd_list_help, stdout);
			return 0;
		default:
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (optind < argc)
		return cmd_store_usage(x, "unexpected argument '%s'", argv[optind]);

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	char *err = NULL;
	struct db_conv *a;
	size_t n;
	int64_t total = 0;
	if (db_conv_list(d, (int)limit, &a, &n, &err) != 0 || db_conv_count(d, &total, &err) != 0) {
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (x->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr != NULL && i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:o, s:o, s:o, s:i, s:o, s:o}",
			    "id", a[i].pid, "title", cmd_store_jstr(a[i].title),
			    "created", cmd_store_jtime(a[i].created),
			    "updated", cmd_store_jtime(a[i].updated), "messages", a[i].n_messages,
			    "model", cmd_store_jstr(a[i].model_name),
			    "preset", cmd_store_jstr(a[i].preset)));
		status = cmd_store_print_json(arr);
	} else if (n == 0) {
		fputs("No conversations yet.\n", stdout);
	} else {
		int cols = cmd_store_columns();
		int msgw = 4;
		for (size_t i = 0; i < n; i++) {
			char buf[16];
			int w = snprintf(buf, sizeof buf, "%d", a[i].n_messages);
			if (w > msgw)
				msgw = w;
		}
		/* id, two spaces, 16-column date, two, count, two, title. */
		int fixed = DB_PID_LEN + 2 + 16 + 2 + msgw + 2;
		printf("%-*s  %-16s  %*s  %s\n", DB_PID_LEN, "ID", "UPDATED", msgw, "MSGS", "TITLE");
		for (size_t i = 0; i < n; i++) {
			char when[32];
			cmd_store_time(a[i].updated, when, sizeof when);
			printf("%-*s  %-16s  %*d  ", DB_PID_LEN, a[i].pid, when, msgw, a[i].n_messages);
			cmd_store_put(stdout, a[i].title != NULL ? a[i].title : "(untitled)", 0,
			    cols > fixed + 10 ? cols - fixed : 0, NULL, NULL);
			fputc('\n', stdout);
		}
		if ((int64_t)n < total)
			printf("(%zu of %lld shown; --limit 0 shows all)\n", n, (long long)total);
	}
	db_conv_array_free(a, n);
	return cmd_store_done(d, status);
}

/* ---- show / export ------------------------------------------------------------ */

static const char cmd_show_help[] =
	"usage: " CMD_PROG " show ID [--json] [--db FILE]\n"
	"Print a stored conversation.  --json prints the full export document.\n";

static int
cmd_store_show(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = { CMD_COMMON_OPTS, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'h') {
			fputs(cmd_show_help, stdout);
			return 0;
		}
		return cmd_store_bad_opt(x, c, argv);
	}
	if (optind >= argc)
		return cmd_store_usage(x, "which conversation? (an ID from '" CMD_PROG " list')");
	if (optind + 1 < argc)
		return cmd_store_usage(x, "one ID at a time, '%s' is extra", argv[optind + 1]);

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	int64_t id;
	char *err = NULL;
	if (cmd_store_resolve(d, argv[optind], &id) != 0)
		return cmd_store_done(d, 1);
	struct db_conv *conv = db_conv_load(d, id, &err);
	if (conv == NULL) {
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (x->json || !isatty(STDOUT_FILENO)) {
		if (export_write(conv, x->json ? EXPORT_JSON : EXPORT_TXT, stdout, &err) != 0)
			status = cmd_store_fail_err(err);
	} else {
		/* For a terminal: render, then print with control characters defused. */
		char *text = NULL;
		size_t len = 0;
		FILE *mf = open_memstream(&text, &len);
		if (mf == NULL || export_write(conv, EXPORT_TXT, mf, &err) != 0) {
			status = cmd_store_fail_err(err != NULL ? err : strdup("out of memory"));
			if (mf != NULL)
				fclose(mf);
		} else {
			fclose(mf);
			cmd_store_put(stdout, text, 1, 0, NULL, NULL);
		}
		free(text);
	}
	db_conv_free(conv);
	return cmd_store_done(d, status);
}

static const char cmd_export_help[] =
	"usage: " CMD_PROG " export ID [--format md|txt|json|html] [-o FILE] [--force] [--db FILE]\n"
	"Write a conversation as Markdown (default), plain text, JSON (for import) or\n"
	"one self-contained HTML page; to standard output, or to FILE (created 0600;\n"
	"the format follows FILE's extension unless --format says otherwise).  An\n"
	"existing FILE is kept unless --force.\n";

static int
cmd_store_export(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' }, { "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' }, CMD_COMMON_OPTS, { 0 }
	};
	const char *out = NULL;
	int force = 0, have_format = 0;
	enum export_format fmt = EXPORT_MD;
	int c;
	while ((c = getopt_long(argc, argv, ":f:o:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		switch (c) {
		case 'f':
			if (export_format_parse(optarg, &fmt) != 0)
				return cmd_store_usage(x, "unknown format '%s' (md, txt, json or html)", optarg);
			have_format = 1;
			break;
		case 'o':
			out = optarg;
			break;
		case 'F':
			force = 1;
			break;
		case 'h':
			fputs(cmd_export_help, stdout);
			return 0;
		default:
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (optind >= argc)
		return cmd_store_usage(x, "which conversation? (an ID from '" CMD_PROG " list')");
	if (optind + 1 < argc)
		return cmd_store_usage(x, "one ID at a time, '%s' is extra", argv[optind + 1]);
	if (x->json && have_format && fmt != EXPORT_JSON)
		return cmd_store_usage(x, "--json and --format %s disagree", export_format_name(fmt));
	if (x->json)
		fmt = EXPORT_JSON;
	else if (!have_format && out != NULL) {
		const char *dot = strrchr(out, '.');
		if (dot != NULL && strchr(dot, '/') == NULL)
			export_format_parse(dot + 1, &fmt);
	}

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	int64_t id;
	char *err = NULL;
	if (cmd_store_resolve(d, argv[optind], &id) != 0)
		return cmd_store_done(d, 1);
	struct db_conv *conv = db_conv_load(d, id, &err);
	if (conv == NULL) {
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (out != NULL && strcmp(out, "-") != 0)
		status = export_file(conv, fmt, out, force, &err);
	else
		status = export_write(conv, fmt, stdout, &err);
	if (status != 0)
		status = cmd_store_fail_err(err);
	db_conv_free(conv);
	return cmd_store_done(d, status);
}

/* ---- import ------------------------------------------------------------------- */

static const char cmd_import_help[] =
	"usage: " CMD_PROG " import FILE [--json] [--db FILE]\n"
	"Add a conversation from a JSON export ('-' reads standard input).  It gets\n"
	"a new id; everything else is kept as exported.\n";

static int
cmd_store_import(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = { CMD_COMMON_OPTS, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'h') {
			fputs(cmd_import_help, stdout);
			return 0;
		}
		return cmd_store_bad_opt(x, c, argv);
	}
	if (optind >= argc)
		return cmd_store_usage(x, "which file? (a JSON export)");
	if (optind + 1 < argc)
		return cmd_store_usage(x, "one file at a time, '%s' is extra", argv[optind + 1]);

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	char *err = NULL, pid[DB_PID_LEN + 1];
	int64_t id;
	if (import_file(d, argv[optind], &id, pid, &err) != 0) {
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (x->json)
		status = cmd_store_print_json(json_pack("{s:s}", "id", pid));
	else
		printf("imported as %s\n", pid);
	return cmd_store_done(d, status);
}

/* ---- search ------------------------------------------------------------------ */

static const char cmd_search_help[] =
	"usage: " CMD_PROG " search QUERY... [--limit N] [--json] [--db FILE]\n"
	"Find messages, newest first (default 20 hits).  QUERY is FTS5 syntax: words\n"
	"(all must occur), \"exact phrases\", OR, NOT, prefix*.  Several arguments are\n"
	"joined with spaces.\n";

static int
cmd_store_search(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "limit", required_argument, NULL, 'n' }, CMD_COMMON_OPTS, { 0 }
	};
	long limit = 20;
	int c;
	while ((c = getopt_long(argc, argv, ":n:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		switch (c) {
		case 'n':
			if (cmd_store_parse_int(optarg, 1, 100000, &limit) != 0)
				return cmd_store_usage(x, "--limit wants a whole number >= 1, not '%s'", optarg);
			break;
		case 'h':
			fputs(cmd_search_help, stdout);
			return 0;
		default:
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (optind >= argc)
		return cmd_store_usage(x, "search for what?");
	char *query = cmd_store_join(argc, argv, optind);
	if (query == NULL)
		return cmd_store_fail("out of memory");

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL) {
		free(query);
		return status;
	}
	int color = !x->json && isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
	char *err = NULL;
	struct db_hit *h;
	size_t n;
	if (db_search(d, query, (int)limit, CMD_MARK_ON, CMD_MARK_OFF, &h, &n, &err) != 0) {
		free(query);
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (x->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr != NULL && i < n; i++) {
			/* Scripts get the snippet without marks. */
			char *plain = strdup(h[i].snippet);
			if (plain != NULL) {
				char *o = plain;
				for (const char *s = h[i].snippet; *s; s++)
					if (*s != CMD_MARK_ON[0] && *s != CMD_MARK_OFF[0])
						*o++ = *s;
				*o = '\0';
			}
			json_array_append_new(arr, json_pack("{s:s, s:o, s:i, s:s, s:o, s:o}",
			    "id", h[i].pid, "title", cmd_store_jstr(h[i].title),
			    "position", h[i].position, "role", db_role_name(h[i].role),
			    "created", cmd_store_jtime(h[i].created), "snippet", cmd_store_jstr(plain)));
			free(plain);
		}
		status = cmd_store_print_json(arr);
	} else if (n == 0) {
		printf("No messages match '%s'.\n", query);
	} else {
		int cols = cmd_store_columns();
		const char *on = color ? "\x1b[1;7m" : "", *off = color ? "\x1b[0m" : "";
		for (size_t i = 0; i < n; i++) {
			char when[32];
			cmd_store_time(h[i].created, when, sizeof when);
			printf("%s%s%s  %s  #%d %-9s  ", color ? "\x1b[1m" : "", h[i].pid,
			    color ? "\x1b[0m" : "", when, h[i].position + 1, db_role_name(h[i].role));
			cmd_store_put(stdout, h[i].title != NULL ? h[i].title : "(untitled)", 0,
			    cols > 60 ? cols - (DB_PID_LEN + 2 + 16 + 2 + 13 + 2) : 0, NULL, NULL);
			fputs("\n    ", stdout);
			cmd_store_put(stdout, h[i].snippet, 0, 0, on, off);
			fputc('\n', stdout);
		}
	}
	db_hits_free(h, n);
	free(query);
	return cmd_store_done(d, status);
}

/* ---- rename, rm ------------------------------------------------------------------ */

static const char cmd_rename_help[] =
	"usage: " CMD_PROG " rename ID TITLE... [--json] [--db FILE]\n"
	"Give a conversation a new title (the words of TITLE joined by spaces).\n";

static int
cmd_store_rename(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = { CMD_COMMON_OPTS, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'h') {
			fputs(cmd_rename_help, stdout);
			return 0;
		}
		return cmd_store_bad_opt(x, c, argv);
	}
	if (optind + 2 > argc)
		return cmd_store_usage(x, "needs an ID and a title");
	char *title = cmd_store_join(argc, argv, optind + 1);
	if (title == NULL)
		return cmd_store_fail("out of memory");
	if (title[strspn(title, " \t\n")] == '\0') {
		free(title);
		return cmd_store_usage(x, "the title is empty");
	}

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL) {
		free(title);
		return status;
	}
	int64_t id;
	char *err = NULL;
	if (cmd_store_resolve(d, argv[optind], &id) != 0) {
		free(title);
		return cmd_store_done(d, 1);
	}
	if (db_conv_rename(d, id, title, &err) != 0) {
		status = cmd_store_fail_err(err);
	} else {
		struct db_conv *conv = db_conv_load(d, id, &err);
		if (conv == NULL) {
			status = cmd_store_fail_err(err);
		} else if (x->json) {
			status = cmd_store_print_json(json_pack("{s:s, s:s}", "id", conv->pid,
			    "title", title));
		} else {
			printf("%s is now titled: ", conv->pid);
			cmd_store_put(stdout, title, 0, 0, NULL, NULL);
			fputc('\n', stdout);
		}
		db_conv_free(conv);
	}
	free(title);
	return cmd_store_done(d, status);
}

static const char cmd_rm_help[] =
	"usage: " CMD_PROG " rm ID... [--yes] [--json] [--db FILE]\n"
	"Delete conversations and all their messages.  On a terminal it asks first\n"
	"unless --yes; otherwise it goes ahead.  If any ID is unknown or ambiguous,\n"
	"nothing is deleted.\n";

static int
cmd_store_rm(struct cmd_ctx *x, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "yes", no_argument, NULL, 'y' }, CMD_COMMON_OPTS, { 0 }
	};
	int yes = 0, c;
	while ((c = getopt_long(argc, argv, ":yh", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		switch (c) {
		case 'y':
			yes = 1;
			break;
		case 'h':
			fputs(cmd_rm_help, stdout);
			return 0;
		default:
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (optind >= argc)
		return cmd_store_usage(x, "which conversations? (IDs from '" CMD_PROG " list')");

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	int n = 0;
	struct db_conv **convs = calloc((size_t)(argc - optind), sizeof *convs);
	char *err = NULL;
	if (convs == NULL) {
		db_close(d);
		return cmd_store_fail("out of memory");
	}
	/* Resolve and load all first: one bad id and nothing is touched. */
	for (int i = optind; i < argc && status == 0; i++) {
		int64_t id;
		if (cmd_store_resolve(d, argv[i], &id) != 0) {
			status = 1;
			break;
		}
		int dup = 0;
		for (int k = 0; k < n; k++)
			dup |= convs[k]->id == id;
		if (dup)
			continue;
		if ((convs[n] = db_conv_load(d, id, &err)) == NULL) {
			status = cmd_store_fail_err(err);
			break;
		}
		n++;
	}
	if (status == 0 && !yes && isatty(STDIN_FILENO)) {
		for (int k = 0; k < n; k++) {
			fprintf(stderr, "  %s  %3d msg%s  ", convs[k]->pid, convs[k]->n_messages,
			    convs[k]->n_messages == 1 ? " " : "s");
			cmd_store_put(stderr, convs[k]->title != NULL ? convs[k]->title : "(untitled)",
			    0, 60, NULL, NULL);
			fputc('\n', stderr);
		}
		fprintf(stderr, "Delete %s? [y/N] ", n == 1 ? "this conversation" : "these conversations");
		fflush(stderr);
		char line[32];
		if (fgets(line, sizeof line, stdin) == NULL ||
		    (strcmp(line, "y\n") != 0 && strcmp(line, "yes\n") != 0 &&
		    strcmp(line, "Y\n") != 0 && strcmp(line, "YES\n") != 0 && strcmp(line, "Yes\n") != 0))
			status = cmd_store_fail("nothing deleted");
	}
	json_t *done = x->json ? json_array() : NULL;
	for (int k = 0; k < n && status == 0; k++) {
		if (db_conv_delete(d, convs[k]->id, &err) != 0) {
			status = cmd_store_fail_err(err);
			break;
		}
		if (done != NULL)
			json_array_append_new(done, json_string(convs[k]->pid));
		else
			printf("deleted %s\n", convs[k]->pid);
	}
	if (done != NULL)
		status = status == 0 ? cmd_store_print_json(json_pack("{s:o}", "deleted", done)) :
		    (json_decref(done), status);
	for (int k = 0; k < n; k++)
		db_conv_free(convs[k]);
	free(convs);
	return cmd_store_done(d, status);
}

/* ---- presets ------------------------------------------------------------------- */

static const char cmd_presets_help[] =
	"usage: " CMD_PROG " presets [list] [--json] [--db FILE]\n"
	"       " CMD_PROG " presets show NAME [--json]\n"
	"       " CMD_PROG " presets add NAME (--system TEXT | --from NAME) [PARAMS]\n"
	"       " CMD_PROG " presets edit NAME [--system TEXT] [PARAMS]\n"
	"       " CMD_PROG " presets rm NAME\n"
	"PARAMS: --temp T  --top-k K  --top-p P  --min-p P  --repeat-penalty R\n"
	"Built-in presets (assistant, concise, storyteller, translator, sentiment,\n"
	"summarizer, coder) cannot be changed or removed; copy one with\n"
	"`presets add NAME --from assistant` and edit the copy.\n";

/* One-line summary of a params object: "temperature 0.6, top_p 0.9". */
static void
cmd_store_params_line(FILE *f, const char *params)
{
	json_t *p = json_loads(params != NULL ? params : "{}", 0, NULL);
	const char *key;
	json_t *v;
	int first = 1;
	json_object_foreach(p, key, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		fprintf(f, "%s%s %s", first ? "" : ", ", key, s != NULL ? s : "?");
		free(s);
		first = 0;
	}
	if (first)
		fputs("defaults", f);
	json_decref(p);
}

static json_t *
cmd_store_preset_json(const struct db_preset *p)
{
	json_t *params = json_loads(p->params, 0, NULL);
	return json_pack("{s:s, s:b, s:s, s:o}", "name", p->name, "builtin", p->builtin,
	    "system_prompt", p->system_prompt, "params", params != NULL ? params : json_object());
}

static int
cmd_store_presets_list(struct cmd_ctx *x, struct db *d)
{
	struct db_preset *a;
	size_t n;
	char *err = NULL;
	if (db_preset_list(d, &a, &n, &err) != 0)
		return cmd_store_fail_err(err);
	int status = 0;
	if (x->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr != NULL && i < n; i++)
			json_array_append_new(arr, cmd_store_preset_json(&a[i]));
		status = cmd_store_print_json(arr);
	} else {
		int namew = 4, cols = cmd_store_columns();
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(a[i].name) > namew)
				namew = (int)strlen(a[i].name);
		printf("%-*s  %-8s  %s\n", namew, "NAME", "KIND", "SYSTEM PROMPT");
		for (size_t i = 0; i < n; i++) {
			printf("%-*s  %-8s  ", namew, a[i].name, a[i].builtin ? "built-in" : "user");
			int fixed = namew + 2 + 8 + 2;
			cmd_store_put(stdout, *a[i].system_prompt ? a[i].system_prompt : "(none)", 0,
			    cols > fixed + 10 ? cols - fixed : 72, NULL, NULL);
			fputc('\n', stdout);
		}
	}
	db_preset_array_free(a, n);
	return status;
}

static int
cmd_store_presets_show(struct cmd_ctx *x, struct db *d, const char *name)
{
	struct db_preset p;
	char *err = NULL;
	if (db_preset_get(d, name, &p, &err) != 0)
		return cmd_store_fail_err(err);
	int status = 0;
	if (x->json) {
		status = cmd_store_print_json(cmd_store_preset_json(&p));
	} else {
		printf("%s (%s)\nparameters: ", p.name, p.builtin ? "built-in" : "user");
		cmd_store_params_line(stdout, p.params);
		fputs("\nsystem prompt:\n", stdout);
		cmd_store_put(stdout, *p.system_prompt ? p.system_prompt : "(none)", 1, 0, NULL, NULL);
		fputc('\n', stdout);
	}
	db_preset_clear(&p);
	return status;
}

/*
 * presets add / edit: parse --system, --from (add only) and the sampling
 * options, then write.  Params given on the command line are merged into
 * the base (the --from preset's, or the edited preset's own).
 */
static int
cmd_store_presets_write(struct cmd_ctx *x, int argc, char **argv, int add)
{
	static const struct option lo[] = {
		{ "system", required_argument, NULL, 's' }, { "from", required_argument, NULL, 'f' },
		{ "temp", required_argument, NULL, 't' }, { "temperature", required_argument, NULL, 't' },
		{ "top-k", required_argument, NULL, 'k' }, { "top-p", required_argument, NULL, 'p' },
		{ "min-p", required_argument, NULL, 'm' },
		{ "repeat-penalty", required_argument, NULL, 'r' }, CMD_COMMON_OPTS, { 0 }
	};
	const char *system = NULL, *from = NULL;
	json_t *set = json_object();
	int c, status = 0;
	if (set == NULL)
		return cmd_store_fail("out of memory");
	while ((c = getopt_long(argc, argv, ":s:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		double v;
		long k;
		switch (c) {
		case 's':
			system = optarg;
			break;
		case 'f':
			if (!add) {
				json_decref(set);
				return cmd_store_usage(x, "--from is for 'presets add'");
			}
			from = optarg;
			break;
		case 't':
			if (cmd_store_parse_real(optarg, 0, 100, &v) != 0)
				goto bad_value;
			json_object_set_new(set, "temperature", json_real(v));
			break;
		case 'k':
			if (cmd_store_parse_int(optarg, 0, 1000000, &k) != 0)
				goto bad_value;
			json_object_set_new(set, "top_k", json_integer(k));
			break;
		case 'p':
			if (cmd_store_parse_real(optarg, 0, 1, &v) != 0)
				goto bad_value;
			json_object_set_new(set, "top_p", json_real(v));
			break;
		case 'm':
			if (cmd_store_parse_real(optarg, 0, 1, &v) != 0)
				goto bad_value;
			json_object_set_new(set, "min_p", json_real(v));
			break;
		case 'r':
			if (cmd_store_parse_real(optarg, 0.01, 100, &v) != 0)
				goto bad_value;
			json_object_set_new(set, "repeat_penalty", json_real(v));
			break;
		case 'h':
			json_decref(set);
			fputs(cmd_presets_help, stdout);
			return 0;
		default:
			json_decref(set);
			return cmd_store_bad_opt(x, c, argv);
		}
		continue;
bad_value:
		json_decref(set);
		return cmd_store_usage(x, "%s wants %s, not '%s'",
		    c == 't' ? "--temp" : c == 'k' ? "--top-k" : c == 'p' ? "--top-p" :
		    c == 'm' ? "--min-p" : "--repeat-penalty",
		    c == 't' ? "a number from 0 to 100" : c == 'k' ? "a whole number >= 0" :
		    c == 'r' ? "a number from 0.01 to 100" : "a number from 0 to 1", optarg);
	}
	if (optind >= argc) {
		json_decref(set);
		return cmd_store_usage(x, "which preset? (a NAME)");
	}
	if (optind + 1 < argc) {
		json_decref(set);
		return cmd_store_usage(x, "unexpected argument '%s' (quote the system prompt: "
		    "--system \"...\")", argv[optind + 1]);
	}
	if (add && system == NULL && from == NULL) {
		json_decref(set);
		return cmd_store_usage(x, "a new preset needs --system TEXT or --from NAME");
	}
	if (!add && system == NULL && json_object_size(set) == 0) {
		json_decref(set);
		return cmd_store_usage(x, "nothing to change (give --system or a parameter)");
	}
	const char *name = argv[optind];

	struct db *d = cmd_store_open(x, &status);
	if (d == NULL) {
		json_decref(set);
		return status;
	}
	char *err = NULL, *params = NULL;
	struct db_preset base = { 0 };
	const char *base_name = add ? from : name;
	json_t *merged = NULL;
	if (base_name != NULL && db_preset_get(d, base_name, &base, &err) != 0) {
		status = cmd_store_fail_err(err);
		goto out;
	}
	merged = json_loads(base.params != NULL ? base.params : "{}", 0, NULL);
	if (merged == NULL || !json_is_object(merged))
		merged = (json_decref(merged), json_object());
	json_object_update(merged, set);
	params = json_dumps(merged, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (params == NULL) {
		status = cmd_store_fail("out of memory");
		goto out;
	}
	if (add) {
		if (db_preset_add(d, name, system != NULL ? system : base.system_prompt, params,
		    &err) != 0)
			status = cmd_store_fail_err(err);
	} else if (db_preset_update(d, name, system, json_object_size(set) ? params : NULL,
	    &err) != 0) {
		status = cmd_store_fail_err(err);
	}
	if (status == 0) {
		if (x->json) {
			struct db_preset now;
			if (db_preset_get(d, name, &now, &err) != 0) {
				status = cmd_store_fail_err(err);
			} else {
				status = cmd_store_print_json(cmd_store_preset_json(&now));
				db_preset_clear(&now);
			}
		} else {
			printf("%s preset %s: ", add ? "added" : "changed", name);
			cmd_store_params_line(stdout, params);
			fputc('\n', stdout);
		}
	}
out:
	free(params);
	json_decref(merged);
	json_decref(set);
	db_preset_clear(&base);
	return cmd_store_done(d, status);
}

static int
cmd_store_presets(struct cmd_ctx *x, int argc, char **argv)
{
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : "list";
	int shift = argc > 1 && argv[1][0] != '-';

	if (strcmp(sub, "add") == 0 || strcmp(sub, "edit") == 0) {
		x->name = strcmp(sub, "add") == 0 ? "presets add" : "presets edit";
		return cmd_store_presets_write(x, argc - 1, argv + 1, sub[0] == 'a');
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "rm") != 0)
		return cmd_store_usage(x, "unknown presets command '%s' (list, show, add, edit, rm)",
		    sub);
	x->name = strcmp(sub, "list") == 0 ? "presets list" :
	    strcmp(sub, "show") == 0 ? "presets show" : "presets rm";

	static const struct option lo[] = { CMD_COMMON_OPTS, { 0 } };
	int c;
	argc -= shift;
	argv += shift;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'h') {
			fputs(cmd_presets_help, stdout);
			return 0;
		}
		return cmd_store_bad_opt(x, c, argv);
	}
	int want = strcmp(sub, "list") == 0 ? 0 : 1;
	if (argc - optind < want)
		return cmd_store_usage(x, "which preset? (a NAME)");
	if (argc - optind > want)
		return cmd_store_usage(x, "unexpected argument '%s'", argv[optind + want]);

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	if (want == 0) {
		status = cmd_store_presets_list(x, d);
	} else if (strcmp(sub, "show") == 0) {
		status = cmd_store_presets_show(x, d, argv[optind]);
	} else {
		char *err = NULL;
		if (db_preset_remove(d, argv[optind], &err) != 0)
			status = cmd_store_fail_err(err);
		else if (x->json)
			status = cmd_store_print_json(json_pack("{s:s}", "removed", argv[optind]));
		else
			printf("removed preset %s\n", argv[optind]);
	}
	return cmd_store_done(d, status);
}

/* ---- dispatch -------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*run)(struct cmd_ctx *, int, char **);
} cmd_store_cmds[] = {
	{ "list", cmd_store_list },
	{ "show", cmd_store_show },
	{ "export", cmd_store_export },
	{ "import", cmd_store_import },
	{ "search", cmd_store_search },
	{ "rename", cmd_store_rename },
	{ "rm", cmd_store_rm },
	{ "presets", cmd_store_presets },
};

int
cmd_store_is_command(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof cmd_store_cmds / sizeof cmd_store_cmds[0]; i++)
		if (strcmp(name, cmd_store_cmds[i].name) == 0)
			return 1;
	return 0;
}

int
cmd_store_run(int argc, char **argv)
{
	for (size_t i = 0; argc > 0 && i < sizeof cmd_store_cmds / sizeof cmd_store_cmds[0]; i++) {
		if (strcmp(argv[0], cmd_store_cmds[i].name) != 0)
			continue;
		struct cmd_ctx x = { .name = cmd_store_cmds[i].name };
		/* Full re-initialisation of getopt (GNU): each command parses afresh,
		 * and opterr = 0 because the messages are ours. */
		optind = 0;
		opterr = 0;
		return cmd_store_cmds[i].run(&x, argc, argv);
	}
	fprintf(stderr, CMD_PROG ": unknown command '%s'\n", argc > 0 ? argv[0] : "");
	return CMD_EXIT_USAGE;
}
