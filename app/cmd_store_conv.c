/*
 * cmd_store_conv.c: the conversation commands: list, show, export, import,
 * rename, rm (see cmd_store.h).  Every id is resolved before anything is
 * changed, so `rm a b c` with one bad id deletes nothing.
 */
#include "app/kvcache.h"
#include "app/cmd_tree.h"
#include "app/cmd_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "storage/db.h"
#include "storage/export.h"

/* ---- list ------------------------------------------------------------------ */

static const char cmd_list_help[] =
	"usage: " CMD_PROG " list [--limit N] [--json] [--db FILE]\n"
	"The stored conversations, most recently active first: id, last activity,\n"
	"message count, title.  --limit N shows N of them (default 50, 0 = all).\n"
	"Any unique prefix of an id names a conversation in the other commands.\n";

int
cmd_store_list(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "list", db);
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
			/* Chats with a remote server name its model after the title. */
			char *title = NULL;
			const char *t = a[i].title != NULL ? a[i].title : "(untitled)";
			if (a[i].model_fingerprint && strcmp(a[i].model_fingerprint, "remote") == 0 && a[i].model_name &&
			    asprintf(&title, "%s  [remote: %s]", t, a[i].model_name) < 0)
				title = NULL;
			cmd_store_put(stdout, title ? title : t, 0, cols > fixed + 10 ? cols - fixed : 0, NULL, NULL);
			free(title);
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
	"usage: " CMD_PROG " show ID [--tree] [--json] [--db FILE]\n"
	"Print a stored conversation: its current branch, each message that has\n"
	"alternatives marked.  --tree prints every branch as an outline; --json\n"
	"prints the full export document (every branch).\n";

int
cmd_store_show(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "show", db);
	static const struct option lo[] = { { "tree", no_argument, NULL, 'T' }, CMD_COMMON_OPTS, { 0 } };
	int c, tree = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'T') {
			tree = 1;
			continue;
		}
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
	/* The whole tree: JSON carries every branch, text shows the current one. */
	struct db_conv *conv = db_conv_load_tree(d, id, &err);
	if (conv == NULL) {
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (tree && !x->json) {
		cmd_tree_print(conv, stdout);
	} else if (x->json || !isatty(STDOUT_FILENO)) {
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
	"       " CMD_PROG " export --all [-o FILE] [--force] [--db FILE]\n"
	"Write a conversation as Markdown (default), plain text, JSON (for import) or\n"
	"one self-contained HTML page; to standard output, or to FILE (created 0600).\n"
	"The format follows FILE's extension (.md .txt .json .html .htm, any case);\n"
	"an extension that is none of these needs --format, and --format must agree\n"
	"with the extension.  --all writes every conversation as one JSON array,\n"
	"which import reads back.  An existing FILE is kept unless --force.\n";

/* Create path 0600 for writing (an existing file only with force). */
static FILE *
cmd_export_create(const char *path, int force)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			cmd_store_fail("%s: already exists (--force overwrites it)", path);
		else
			cmd_store_fail("%s: cannot create: %s", path, strerror(errno));
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		cmd_store_fail("%s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

/* export --all: every conversation, one JSON array. */
static int
cmd_export_all(struct db *d, const char *out, int force)
{
	char *err = NULL;
	struct db_conv *list;
	size_t n;
	if (db_conv_list(d, 0, &list, &n, &err) != 0)
		return cmd_store_fail_err(err);
	json_t *arr = json_array();
	int status = arr == NULL ? cmd_store_fail("out of memory") : 0;
	/* Oldest first, so that importing recreates them in their order. */
	for (size_t i = n; status == 0 && i-- > 0;) {
		struct db_conv *c = db_conv_load(d, list[i].id, &err);
		json_t *j = c != NULL ? export_json(c, &err) : NULL;
		db_conv_free(c);
		if (j == NULL)
			status = cmd_store_fail_err(err);
		else
			json_array_append_new(arr, j);
	}
	db_conv_array_free(list, n);
	FILE *f = NULL;
	if (status == 0)
		f = out != NULL && strcmp(out, "-") != 0 ? cmd_export_create(out, force) : stdout;
	if (status == 0 && f == NULL)
		status = 1;
	if (status == 0) {
		int rc = json_dumpf(arr, f, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
		fputc('\n', f);
		if (f != stdout && fclose(f) != 0)
			rc = -1;
		if (rc != 0)
			status = cmd_store_fail("%s: cannot write the export", f == stdout ? "standard output" : out);
	}
	json_decref(arr);
	return status;
}

int
cmd_store_export(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "export", db);
	static const struct option lo[] = {
		{ "format", required_argument, NULL, 'f' }, { "output", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'F' }, { "all", no_argument, NULL, 'a' }, CMD_COMMON_OPTS, { 0 }
	};
	const char *out = NULL;
	int force = 0, have_format = 0, all = 0;
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
		case 'a':
			all = 1;
			break;
		case 'h':
			fputs(cmd_export_help, stdout);
			return 0;
		default:
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (all && optind < argc)
		return cmd_store_usage(x, "--all or an ID, not both ('%s')", argv[optind]);
	if (!all && optind >= argc)
		return cmd_store_usage(x, "which conversation? (an ID from '" CMD_PROG " list', or --all)");
	if (optind + 1 < argc)
		return cmd_store_usage(x, "one ID at a time, '%s' is extra (--all exports every one)",
		    argv[optind + 1]);
	if (x->json && have_format && fmt != EXPORT_JSON)
		return cmd_store_usage(x, "--json and --format %s disagree", export_format_name(fmt));
	if (x->json) {
		fmt = EXPORT_JSON;
		have_format = 1;
	}
	/* The extension of -o FILE names the format; a disagreement, or an
	 * extension that names none, is refused rather than guessed. */
	const char *base = out != NULL ? strrchr(out, '/') : NULL;
	const char *dot = out != NULL && strcmp(out, "-") != 0 ? strrchr(base != NULL ? base : out, '.') : NULL;
	if (dot != NULL && dot[1] != '\0' && !(base == NULL && dot == out)) {
		enum export_format ext;
		if (export_format_parse(dot + 1, &ext) != 0) {
			if (!have_format && !all)
				return cmd_store_usage(x, "cannot tell the format from '%s' (.md .txt .json .html): "
				    "give --format", dot);
		} else if (have_format && ext != fmt) {
			return cmd_store_usage(x, "--format %s and the extension of '%s' disagree",
			    export_format_name(fmt), out);
		} else {
			fmt = ext;
		}
	}
	if (all && fmt != EXPORT_JSON && (have_format || dot != NULL))
		return cmd_store_usage(x, "--all writes one JSON array (import reads it back), not %s",
		    export_format_name(fmt));

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	if (all)
		return cmd_store_done(d, cmd_export_all(d, out, force));
	int64_t id;
	char *err = NULL;
	if (cmd_store_resolve(d, argv[optind], &id) != 0)
		return cmd_store_done(d, 1);
	struct db_conv *conv = db_conv_load_tree(d, id, &err);
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
	"usage: " CMD_PROG " import FILE [--force] [--json] [--db FILE]\n"
	"Add conversations from JSON ('-' reads standard input): a llama2-chat export,\n"
	"an array of them (export --all), an OpenAI-style {\"messages\": [...]} object,\n"
	"or a plain [{\"role\": ..., \"content\": ...}] array.  Each gets a new id;\n"
	"everything else is kept as exported.  A conversation whose messages are those\n"
	"of a stored one is skipped, with a message naming it (--force imports it\n"
	"again).\n";

int
cmd_store_import(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "import", db);
	static const struct option lo[] = { { "force", no_argument, NULL, 'F' }, CMD_COMMON_OPTS, { 0 } };
	int c, force = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'F') {
			force = 1;
			continue;
		}
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
	/* A missing file is said before the database is created or opened. */
	if (strcmp(argv[optind], "-") != 0 && access(argv[optind], R_OK) != 0)
		return cmd_store_fail("%s: %s", argv[optind], strerror(errno));

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	char *err = NULL;
	struct import_result *r = NULL;
	size_t n = 0;
	int rc = import_any_file(d, argv[optind], force, &r, &n, &err);
	json_t *arr = x->json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		if (r[i].id == 0)
			fprintf(stderr, CMD_PROG ": %s%s: already stored as %s (same messages): skipped "
			    "(--force imports it again)\n", argv[optind], n > 1 ? "" : "", r[i].same_as);
		if (arr != NULL)
			json_array_append_new(arr, r[i].id != 0 ? json_pack("{s:s}", "id", r[i].pid) :
			    json_pack("{s:s, s:s}", "skipped", "duplicate", "same_as", r[i].same_as));
		else if (r[i].id != 0)
			printf("imported as %s\n", r[i].pid);
	}
	import_any_free(r, n);
	if (rc != 0) {
		json_decref(arr);
		db_close(d);
		return cmd_store_fail_err(err);
	}
	if (arr != NULL)
		status = cmd_store_print_json(n == 1 ? json_incref(json_array_get(arr, 0)) : json_incref(arr));
	json_decref(arr);
	return cmd_store_done(d, status);
}

/* ---- rename, rm ------------------------------------------------------------------ */

static const char cmd_rename_help[] =
	"usage: " CMD_PROG " rename ID TITLE... [--json] [--db FILE]\n"
	"Give a conversation a new title (the words of TITLE joined by spaces).\n";

int
cmd_store_rename(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "rename", db);
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

int
cmd_store_rm(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "rm", db);
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
		/* Its KV snapshot goes with it: the token ids are its text. */
		kvcache_remove(db_path(d), convs[k]->pid);
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
