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

static void
print_text(void *ud, const char *text, size_t len)
{
	struct session *s = ud;
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	if (g_interrupted)
		session_stop(s);
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

/* One reply to text, or (text NULL) the last reply made again. */
static int
one_turn(const struct opts *o, struct session *s, const char *text)
{
	/* Valid UTF-8 with no NUL: the only text we hand the tokenizer from people. */
	if (text != NULL && !utf8_valid(text, strlen(text))) {
		cli_error("the message is not valid UTF-8");
		return 1;
	}
	if ((text != NULL ? session_send(s, text) : session_regenerate(s)) != 0) {
		cli_error("%s", session_error(s));
		return 1;
	}
	if (session_wait(s, print_text, s) != 0) {
		fputc('\n', stdout);
		cli_error("%s", session_error(s) ? session_error(s) : "generation failed");
		return 1;
	}
	fputc('\n', stdout);
	fflush(stdout);
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

int
cmd_oneshot(struct opts *o)
{
	char *msg = NULL;
	if (strcmp(o->prompt, "-") == 0) {
		msg = read_all(stdin, NULL);
		if (msg == NULL) {
			cli_error("cannot read the message from standard input");
			return 1;
		}
	} else {
		msg = strdup(o->prompt);
	}
	/* Checked before anything is loaded or stored. */
	const char *p = msg;
	while (p != NULL && (*p == ' ' || (*p >= '\t' && *p <= '\r')))
		p++;
	if (p != NULL && *p == '\0') {
		free(msg);
		return cli_usage_error("-p: the message is empty");
	}
	struct engine_model *m = NULL;
	int status = cli_chat_engine(o, &m);   /* none with --remote */
	if (status != 0) {
		free(msg);
		return status;
	}
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		free(msg);
		engine_close(m);
		return status;
	}
	install_signals();
	status = one_turn(o, s, msg);
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
		status = one_turn(o, s, NULL);
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
	struct session *s = session_open(o, m, &status);
	if (s == NULL) {
		engine_close(m);
		return status;
	}
	install_signals();
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (!g_interrupted && (n = getline(&line, &cap, stdin)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
		    line[n - 1] == '\t'))
			line[--n] = '\0';
		if (n == 0)
			continue;   /* a blank line is no message */
		status = one_turn(o, s, line);
		if (status != 0)
			break;
		fputc('\n', stdout);   /* a blank line after each reply */
		fflush(stdout);
	}
	free(line);
	session_close(s);
	engine_close(m);
	return status;
}

int
cmd_chat_ui(struct opts *o)
{
	int status = 0;
	struct engine_model *m = NULL;
	/* A model or a server to chat with, or neither: history only. */
	if (((o->remote && *o->remote) || (o->model && *o->model)) && (status = cli_chat_engine(o, &m)) != 0)
		return status;
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
