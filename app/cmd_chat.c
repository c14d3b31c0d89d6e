/*
 * cmd_chat.c: chat for scripts.  Both modes go through session.c, so they
 * save to the database exactly as the interface does (unless --no-save).
 */
#include "app/cmd_chat.h"
#include "app/dialog.h"
#include "app/paths.h"
#include "app/session.h"
#include "common/utf8.h"
#include "ui/ui.h"
#include "engine/chat.h"
#include "engine/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by SIGINT/SIGTERM: stop the reply, keep what was said. */
static volatile sig_atomic_t g_interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

/* What the token callback needs: the session to stop, and whether the
 * text goes out now (plain) or in one JSON object at the end. */
struct turn_out {
	struct session *s;
	int json;
};

static void
print_text(void *ud, const char *text, size_t len)
{
	struct turn_out *t = ud;
	if (!t->json) {
		fwrite(text, 1, len, stdout);
		fflush(stdout);
	}
	if (g_interrupted)
		session_stop(t->s);
}

static char *
read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	size_t r;
	while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n < 2) {
			char *nb = realloc(b, cap *= 2);
			if (nb == NULL) {
				free(b);
				return NULL;
			}
			b = nb;
		}
	}
	if (b)
		b[n] = '\0';
	if (len)
		*len = n;
	return b;
}

static void
print_stats(const struct session *s)
{
	const struct engine_gen_stats *st = session_stats(s);
	fprintf(stderr, "turn %d: prefill %d reused %d ttft_ms %.1f tg_tps %.2f ctx %d/%d\n", session_turn(s),
	    st->n_prompt, st->n_reused, st->ttft_ms, st->tg_tps, st->ctx_used, session_ctx_size(s));
}

static const char *
finish_name(enum engine_stop_reason r)
{
	switch (r) {
	case ENGINE_STOP_EOS: return "eos";
	case ENGINE_STOP_USER: return "stopped";
	case ENGINE_STOP_LENGTH: case ENGINE_STOP_CTX: return "length";
	case ENGINE_STOP_ERROR: return "error";
	}
	return "length";
}

/* --json: the reply as one JSON object on one line (jansson escapes the
 * text, so any reply is one line a script can read with a JSON parser). */
static int
print_json(const struct opts *o, const struct session *s, int line)
{
	const struct engine_gen_stats *st = session_stats(s);
	size_t tlen = 0;
	const char *text = session_reply_text(s, &tlen);
	json_t *j = json_pack("{s:s%, s:s, s:{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:i}}",
	    "text", text != NULL ? text : "", text != NULL ? tlen : 0,
	    "finish", finish_name(st->reason),
	    "stats", "prompt_tokens", st->n_prompt, "reused_tokens", st->n_reused, "gen_tokens", st->n_gen,
	    "ttft_ms", st->ttft_ms, "prefill_ms", st->prefill_ms, "tg_tps", st->tg_tps, "pp_tps", st->pp_tps,
	    "ctx_used", st->ctx_used, "ctx_size", session_ctx_size(s));
	if (j == NULL)
		return -1;
	if (session_pid(s)[0] != '\0')
		json_object_set_new(j, "conversation", json_string(session_pid(s)));
	if (line > 0)
		json_object_set_new(j, "line", json_integer(line));
	if (o->ids) {
		int n = 0;
		const int32_t *ids = session_reply_ids(s, &n);
		json_t *a = json_array();
		for (int i = 0; a != NULL && i < n; i++)
			json_array_append_new(a, json_integer(ids[i]));
		json_object_set_new(j, "ids", a);
	}
	int rc = json_dumpf(j, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
	json_decref(j);
	fputc('\n', stdout);
	fflush(stdout);
	return rc;
}

/* One message and its reply (text NULL: the last reply made again).  line > 0: the message is stdin's line
 * `line` (chat), named in messages about it.  Returns 0, 1 (failed),
 * TURN_SKIPPED (this line was refused, the session goes on) or
 * EXIT_INTERRUPTED. */
#define TURN_SKIPPED 3
static int
one_turn(const struct opts *o, struct session *s, const char *text, int line)
{
	/* Valid UTF-8 with no NUL: the only text we hand the tokenizer from people. */
	if (text != NULL && !utf8_valid(text, strlen(text))) {
		if (line > 0) {
			cli_error("line %d: not valid UTF-8 (skipped)", line);
			return TURN_SKIPPED;
		}
		cli_error("the message is not valid UTF-8");
		return 1;
	}
	if ((text != NULL ? session_send(s, text) : session_regenerate(s)) != 0) {
		cli_error("%s", session_error(s));
		return 1;
	}
	struct turn_out t = { s, o->json };
	if (session_wait(s, print_text, &t) != 0) {
		if (!o->json)
			fputc('\n', stdout);
		cli_error("%s", session_error(s) ? session_error(s) : "generation failed");
		return 1;
	}
	if (o->json) {
		if (print_json(o, s, line) != 0) {
			cli_error("cannot write to standard output");
			return 1;
		}
	} else {
		fputc('\n', stdout);
		fflush(stdout);
	}
	char *err = session_take_error(s);
	if (err) {      /* e.g. the disk filled while saving: say so */
		cli_error("%s", err);
		free(err);
		return 1;
	}
	if (o->stats)
		print_stats(s);
	int restored = session_kv_restored(s), prefilled = session_kv_prefilled(s);
	const char *kv = session_kv_path(s);
	char *notice = session_take_kv_notice(s);
	if (o->verbose && (restored || notice)) {
		if (restored)
			fprintf(stderr, "llama2-chat: resumed %d positions from %s, computed %d\n", restored, kv, prefilled);
		else
			fprintf(stderr, "llama2-chat: %s not used: %s\n", kv ? kv : "snapshot", notice);
	}
	free(notice);
	/* A resume whose history did not fit: say what the model no longer sees. */
	int dropped = session_dropped(s);
	static int told;
	if (o->verbose && dropped > told) {
		fprintf(stderr, "llama2-chat: %d earlier message%s did not fit the %d-token window and "
		    "%s left out of the model's view\n", dropped, dropped == 1 ? "" : "s",
		    session_ctx_size(s), dropped == 1 ? "was" : "were");
		told = dropped;
	}
	/* Stopped by Ctrl-C: the reply is saved as stopped; scripts see 130. */
	if (g_interrupted)
		return EXIT_INTERRUPTED;
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* --verbose: the KV cache in use, and when KV snapshots cannot be kept
 * (a read-only cache folder), which otherwise only shows as slower
 * resumes. */
static void
verbose_cache_check(const struct opts *o, const struct session *s)
{
	if (!o->verbose)
		return;
	const struct engine_info *in = session_model(s);
	if (in != NULL) {
		const char *t = cli_kv_type(o);
		fprintf(stderr, PROG ": KV cache %s, %.1f MiB for %d positions\n", t,
		    cli_kv_bytes(in, t, session_ctx_size(s)) / 1048576.0, session_ctx_size(s));
	}
	if (o->no_save)
		return;
	char *err = NULL;
	char *dir = path_for(PATH_CACHE, "kv", 1, &err);
	if (dir == NULL)
		fprintf(stderr, PROG ": KV snapshots are off: %s\n", err ? err : "no cache folder");
	else if (access(dir, W_OK) != 0)
		fprintf(stderr, PROG ": KV snapshots are off: %s: %s\n", dir, strerror(errno));
	free(dir);
	free(err);
}

/* The whole of a file (or stdin for "-") as one message; NULL after
 * printing why not. */
static char *
read_message(const char *path, const char *flag)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		cli_error("%s %s: %s", flag, path, strerror(errno));
		return NULL;
	}
	size_t len = 0;
	char *msg = read_all(f, &len);
	int bad = ferror(f);
	int is_stdin = f == stdin;
	if (!is_stdin)
		fclose(f);
	if (msg == NULL || bad) {
		cli_error("%s %s: cannot read it", flag, is_stdin ? "(standard input)" : path);
		free(msg);
		return NULL;
	}
	if (strlen(msg) != len) {
		cli_error("%s %s: holds a NUL byte; a message is text", flag, path);
		free(msg);
		return NULL;
	}
	return msg;
}

int
cmd_oneshot(struct opts *o)
{
	char *msg = NULL;
	if (o->prompt_file != NULL)
		msg = read_message(o->prompt_file, "-f");
	else if (strcmp(o->prompt, "-") == 0)
		msg = read_message("-", "-p");
	else
		msg = strdup(o->prompt);
	if (msg == NULL)
		return 1;
	/* Checked before anything is loaded or stored. */
	const char *p = msg;
	while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
		p++;
	if (*p == '\0') {
		free(msg);
		if (o->prompt_file != NULL)   /* said of the file: the text was well formed */
			return cli_usage_error("-f %s: the message is empty", o->prompt_file);
		return cli_usage_error("-p: the message is empty");
	}
	struct engine_model *m = NULL;
	int status = cli_chat_engine(o, &m);   /* none with --remote */
	if (status != 0) {
		free(msg);
		return status;
	}
	cli_prefetch(m);
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		free(msg);
		engine_close(m);
		return status;
	}
	install_signals();
	verbose_cache_check(o, s);
	status = one_turn(o, s, msg, 0);
	session_close(s);
	engine_close(m);
	free(msg);
	return status;
}

int
cmd_regenerate(struct opts *o)
{
	if (o->nargs > 1)
		return cli_usage_error("regenerate: one ID at a time, '%s' is extra", o->args[1]);
	if (o->no_save)
		return cli_usage_error("regenerate works on a stored conversation (not with --no-save)");
	if (o->prompt)
		return cli_usage_error("regenerate makes the last reply again; -p is for a new message");
	/* The conversation named, or the last one, continued as --resume does. */
	if (o->nargs == 1)
		o->resume = o->args[0];
	else
		o->cont = 1;
	struct engine_model *m = NULL;
	int status = cli_chat_engine(o, &m);   /* none with --remote */
	if (status != 0)
		return status;
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		engine_close(m);
		return status;
	}
	if (session_conv(s) == 0) {
		cli_error("there is no conversation to regenerate in");
		status = 1;
	} else {
		install_signals();
		status = one_turn(o, s, NULL, 0);
	}
	session_close(s);
	engine_close(m);
	return status;
}

int
cmd_chat_pipe(struct opts *o)
{
	if (isatty(STDIN_FILENO) && !o->prompt)
		return cli_usage_error("chat reads messages from a pipe; on a terminal run '" PROG "' for the interface");
	struct engine_model *m = NULL;
	int status = cli_chat_engine(o, &m);   /* none with --remote */
	if (status != 0)
		return status;
	cli_prefetch(m);
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		engine_close(m);
		return status;
	}
	install_signals();
	verbose_cache_check(o, s);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ln = 0, skipped = 0;
	while (!g_interrupted && (n = getline(&line, &cap, stdin)) > 0) {
		ln++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		size_t lead = strspn(line, " \t\v\f");
		if (line[lead] == '\0')
			continue;   /* a blank line is no message */
		if ((ssize_t)strlen(line) != n) {
			cli_error("line %d: holds a NUL byte (skipped)", ln);
			skipped = 1;
			continue;
		}
		status = one_turn(o, s, line, ln);
		if (status == TURN_SKIPPED) {     /* said so; go on with the next line */
			skipped = 1;
			status = 0;
			continue;
		}
		if (status != 0)
			break;
		if (!o->json)
			fputc('\n', stdout);   /* a blank line after each reply */
		fflush(stdout);
	}
	free(line);
	session_close(s);
	engine_close(m);
	if (status == 0 && g_interrupted)
		status = EXIT_INTERRUPTED;
	/* Lines were skipped: the run as a whole did not do everything asked. */
	return status != 0 ? status : skipped ? 1 : 0;
}

int
cmd_chat_ui(struct opts *o)
{
	int status = 0;
	struct engine_model *m = NULL;
	/* A model or a server to chat with, or neither: history only. */
	if (((o->remote && *o->remote) || (o->model && *o->model)) && (status = cli_chat_engine(o, &m)) != 0)
		return status;
	/* The worker reads the model in while the interface shows how far it
	 * got: a cold 4 GB file takes a minute on a slow disk. */
	o->prefetch = 1;
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		engine_close(m);
		return status;
	}
	char *err = NULL;
	char *hist = path_for(PATH_STATE, "history", 1, &err);
	free(err);   /* no home: the history lives for this run only */
	status = ui_run(s, hist);
	/* The terminal is back; now stop the reply in flight and keep it. */
	session_close(s);
	engine_close(m);
	free(hist);
	return status;
}

int
cmd_render(struct opts *o)
{
	size_t len = 0, n = 0;
	char *in = read_all(stdin, &len);
	if (in == NULL) {
		cli_error("cannot read the dialog from standard input");
		return 1;
	}
	json_t *j = NULL;
	int *roles = NULL;
	const char **contents = NULL;
	char *err = NULL;
	int rc = dialog_parse(in, len, &j, &roles, &contents, &n, &err);
	free(in);
	if (rc != 0) {
		cli_error("%s", err ? err : "dialog JSON: out of memory");
		free(err);
		return 1;
	}
	int status = 0;
	struct engine_model *m = NULL;
	if ((m = cli_open_model_or_tokenizer(o, &status)) == NULL)
		goto out;
	int32_t *ids = NULL;
	int nid = 0;
	char *text = NULL;
	if (chat_render(m, roles, contents, (int)n, &ids, &nid, o->ids ? NULL : &text, &err) != 0) {
		cli_error("dialog JSON: %s", err);
		free(err);
		status = 1;
	} else if (o->ids) {
		for (int i = 0; i < nid; i++)
			printf("%s%d", i ? " " : "", ids[i]);
		putchar('\n');
	} else {
		fputs(text, stdout);
		putchar('\n');
	}
	free(ids);
	free(text);
	engine_close(m);
out:
	free(roles);
	free(contents);
	json_decref(j);
	return status;
}
