/*
 * check_remote_ui.c: the interface with --remote, in a private tmux server
 * (suite remote_ui): a reply streamed from the real llama-server with the
 * remote model and tok/s in the status bar, and saved; Esc in mid-stream
 * (from the scripted listener, which sends a word every 50 ms) stopping at
 * once with the partial reply kept as stopped; an HTTP 500 shown as a
 * notice with the turn kept, marked interrupted.  Every wait polls the
 * screen with a deadline.  Skipped without tmux; the llama-server case is
 * skipped, and counted, when the peer binary cannot run.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/db.h"
#include "tests/remote_peer.h"
#include "tests/testutil.h"

struct rterm {
	char sock[64];
	char *dir, *db;
};

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	int rc = system(cmd);
	free(cmd);
	return rc;
}

/* Start the binary with args (shell words) in a 120x30 window. */
static void
rt_start(struct rterm *t, const char *args)
{
	static int counter;
	memset(t, 0, sizeof *t);
	snprintf(t->sock, sizeof t->sock, "l2c-remote-%ld-%d", (long)getpid(), counter++);
	t->dir = tmpdir_new();
	ck_assert_ptr_nonnull(t->dir);
	ck_assert_int_ge(asprintf(&t->db, "%s/chats.db", t->dir), 0);
	char *script;
	ck_assert_int_ge(asprintf(&script, "%s/run.sh", t->dir), 0);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "export XDG_CONFIG_HOME='%s/config' XDG_DATA_HOME='%s/data' XDG_STATE_HOME='%s/state' "
	    "XDG_CACHE_HOME='%s/cache' HOME='%s' LANG=C.UTF-8 LC_ALL=C.UTF-8\n"
	    "unset LLAMA2_CHAT_MODEL LLAMA2_CHAT_DB LLAMA2_CHAT_API_KEY OPENAI_API_KEY NO_COLOR\n"
	    "(while kill -0 %ld 2>/dev/null; do sleep 1; done; tmux -L %s kill-server) >/dev/null 2>&1 &\n"
	    "'%s' --db '%s' %s 2>>'%s/stderr'\n"
	    "echo EXIT=$?\n"
	    "exec sleep 600\n", t->dir, t->dir, t->dir, t->dir, t->dir, (long)getpid(), t->sock, test_binary(), t->db,
	    args, t->dir);
	fclose(f);
	ck_assert_int_eq(sh("tmux -L %s -f /dev/null new-session -d -x 120 -y 30 'sh %s'", t->sock, script), 0);
	free(script);
}

static void
rt_stop(struct rterm *t)
{
	sh("tmux -L %s kill-server >/dev/null 2>&1", t->sock);
	free(t->db);
	tmpdir_remove(t->dir);
}

static char *
rt_capture(struct rterm *t)
{
	char *cmd;
	ck_assert_int_ge(asprintf(&cmd, "tmux -L %s capture-pane -p 2>/dev/null", t->sock), 0);
	FILE *p = popen(cmd, "r");
	free(cmd);
	ck_assert_ptr_nonnull(p);
	size_t cap = 16384, n = 0, r;
	char *b = malloc(cap);
	while ((r = fread(b + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (cap - n < 2)
			b = realloc(b, cap *= 2);
	}
	b[n] = '\0';
	pclose(p);
	return b;
}

/* Wait until the screen (or, with status, its last non-blank line) shows
 * needle; 1, or 0 after timeout_ms. */
static int
rt_wait(struct rterm *t, const char *needle, int status, int timeout_ms)
{
	double end = now_ms() + timeout_ms;
	for (;;) {
		char *s = rt_capture(t);
		const char *hay = s;
		if (status) {
			char *e = s + strlen(s);
			while (e > s && (e[-1] == '\n' || e[-1] == ' '))
				*--e = '\0';
			char *nl = strrchr(s, '\n');
			hay = nl ? nl + 1 : s;
		}
		int found = strstr(hay, needle) != NULL;
		free(s);
		if (found)
			return 1;
		if (now_ms() > end)
			return 0;
		usleep(15 * 1000);
	}
}

static void
rt_keys(struct rterm *t, const char *keys)
{
	ck_assert_int_eq(sh("tmux -L %s send-keys %s", t->sock, keys), 0);
}

static void
rt_type(struct rterm *t, const char *text)
{
	ck_assert_int_eq(sh("tmux -L %s send-keys -l -- '%s'", t->sock, text), 0);   /* no quotes in text */
}

/* Quit with Ctrl-Q and wait for the exit status line. */
static void
rt_quit(struct rterm *t)
{
	rt_keys(t, "C-q");
	ck_assert_msg(rt_wait(t, "EXIT=0", 0, 10000), "did not quit: %s", rt_capture(t));
}

static struct db_conv *
rt_latest(struct rterm *t)
{
	char *err = NULL;
	struct db *d = db_open(t->db, &err);
	ck_assert_msg(d != NULL, "%s", err);
	int64_t id = 0;
	ck_assert_int_eq(db_conv_latest(d, &id, &err), 1);
	struct db_conv *c = db_conv_load(d, id, &err);
	ck_assert_msg(c != NULL, "%s", err);
	db_close(d);
	return c;
}

START_TEST(test_ui_llama_server)
{
	struct lsrv srv;
	ck_assert_msg(lsrv_start(&srv) == 0, "llama-server did not start");
	struct rterm t;
	char *args;
	ck_assert_int_ge(asprintf(&args, "--remote %s -n 24", srv.url), 0);
	rt_start(&t, args);
	free(args);
	ck_assert_msg(rt_wait(&t, "fixture-q8_0.gguf remote", 1, 15000), "status: %s", rt_capture(&t));
	rt_type(&t, "Hi there");
	rt_keys(&t, "Enter");
	ck_assert_msg(rt_wait(&t, "tok/s", 1, 20000), "no tok/s: %s", rt_capture(&t));
	ck_assert_msg(rt_wait(&t, "idle", 1, 5000), "not idle: %s", rt_capture(&t));
	rt_quit(&t);
	struct db_conv *c = rt_latest(&t);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_str_eq(c->messages[0].content, "Hi there");
	ck_assert_msg(c->messages[1].finish == FINISH_EOS || c->messages[1].finish == FINISH_LENGTH, "%d",
	    c->messages[1].finish);
	ck_assert_ptr_nonnull(strstr(c->messages[1].stats, "\"engine\":\"remote\""));
	db_conv_free(c);
	rt_stop(&t);
	lsrv_stop(&srv);
}
END_TEST

static void
serve_slow(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
	for (int i = 0; i < 400; i++) {
		char ev[160];
		snprintf(ev, sizeof ev, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w%d\"}}]}\n\n", i);
		if (fake_write(fd, ev) != 0 || fake_sleep(f, 50))
			return;
	}
	fake_write(fd, "data: [DONE]\n\n");
}

START_TEST(test_ui_stop_midstream)
{
	struct fake f;
	fake_start(&f, serve_slow, NULL);
	struct rterm t;
	char *args;
	ck_assert_int_ge(asprintf(&args, "--remote %s --remote-model slow-model", f.url), 0);
	rt_start(&t, args);
	free(args);
	ck_assert_msg(rt_wait(&t, "slow-model remote", 1, 15000), "status: %s", rt_capture(&t));
	rt_type(&t, "Go on");
	rt_keys(&t, "Enter");
	ck_assert_msg(rt_wait(&t, " w3", 0, 10000), "no stream: %s", rt_capture(&t));
	double t0 = now_ms();
	rt_keys(&t, "Escape");
	ck_assert_msg(rt_wait(&t, "stopped", 1, 3000), "not stopped: %s", rt_capture(&t));
	double stop_ms = now_ms() - t0;
	fprintf(stderr, "remote_ui: Esc to \"stopped\" on screen: %.0f ms\n", stop_ms);
	ck_assert_msg(stop_ms < 1000, "stop took %.0f ms", stop_ms);
	rt_quit(&t);
	struct db_conv *c = rt_latest(&t);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_int_eq(c->messages[1].finish, FINISH_STOPPED);
	ck_assert_msg(strncmp(c->messages[1].content, " w0 w1 w2 w3", 12) == 0, "%s", c->messages[1].content);
	ck_assert_msg(strlen(c->messages[1].content) < 200, "not stopped at once: %s", c->messages[1].content);
	db_conv_free(c);
	rt_stop(&t);
	fake_stop(&f);
}
END_TEST

static void
serve_500(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	    "{\"error\":{\"message\":\"CUDA error: out of memory\"}}");
}

START_TEST(test_ui_fault_notice)
{
	struct fake f;
	fake_start(&f, serve_500, NULL);
	struct rterm t;
	char *args;
	ck_assert_int_ge(asprintf(&args, "--remote %s --remote-model m1", f.url), 0);
	rt_start(&t, args);
	free(args);
	ck_assert_msg(rt_wait(&t, "m1 remote", 1, 15000), "status: %s", rt_capture(&t));
	rt_type(&t, "Hi");
	rt_keys(&t, "Enter");
	ck_assert_msg(rt_wait(&t, "HTTP 500: CUDA error: out of memory", 1, 10000), "no notice: %s", rt_capture(&t));
	rt_quit(&t);
	struct db_conv *c = rt_latest(&t);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_str_eq(c->messages[0].content, "Hi");
	ck_assert_int_eq(c->messages[1].finish, FINISH_INTERRUPTED);
	db_conv_free(c);
	rt_stop(&t);
	fake_stop(&f);
}
END_TEST

Suite *remote_ui_suite(void);

Suite *
remote_ui_suite(void)
{
	Suite *s = suite_create("remote_ui");
	TCase *tc = tcase_create("tmux");
	tcase_set_timeout(tc, 90);
	if (system("command -v tmux >/dev/null 2>&1") != 0) {
		testutil_skipped += 3;
		fprintf(stderr, "skipped: remote_ui (no tmux)\n");
	} else {
		tcase_add_test(tc, test_ui_stop_midstream);
		tcase_add_test(tc, test_ui_fault_notice);
		if (lsrv_can_run()) {
			tcase_add_test(tc, test_ui_llama_server);
		} else {
			testutil_skipped++;
			fprintf(stderr, "skipped: test_ui_llama_server (the peer binary cannot run)\n");
		}
	}
	suite_add_tcase(s, tc);
	return s;
}
