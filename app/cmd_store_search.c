/*
 * cmd_store_search.c: the search command: full-text hits with their
 * matches highlighted on a terminal (see cmd_store.h).
 */
#include "app/cmd_store_int.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "storage/db.h"
#include "storage/export.h"

/* ---- search ------------------------------------------------------------------ */

static const char cmd_search_help[] =
	"usage: " CMD_PROG " search [--fts] QUERY... [--limit N] [--json] [--db FILE]\n"
	"Find messages, newest first (default 20 hits).  QUERY is plain text: words\n"
	"(all must occur; punctuation is fine: what's, C++, e-mail), \"exact phrases\",\n"
	"prefix*, and OR/NOT/AND between words.  Chinese, Japanese and Korean text\n"
	"matches anywhere inside a word (東 finds 東京).  Several arguments are joined\n"
	"with spaces.  --fts: QUERY is SQLite FTS5 query syntax, passed as it is\n"
	"(columns, NEAR, ^, ...).\n";

int
cmd_store_search(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "search", db);
	static const struct option lo[] = {
		{ "limit", required_argument, NULL, 'n' }, { "fts", no_argument, NULL, 'F' },
		CMD_COMMON_OPTS, { 0 }
	};
	long limit = 20;
	int raw = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":n:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		switch (c) {
		case 'n':
			if (cmd_store_parse_int(optarg, 1, 100000, &limit) != 0)
				return cmd_store_usage(x, "--limit wants a whole number >= 1, not '%s'", optarg);
			break;
		case 'F':
			raw = 1;
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
	if ((raw ? db_search_fts : db_search)(d, query, (int)limit, CMD_MARK_ON, CMD_MARK_OFF, &h, &n,
	    &err) != 0) {
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
