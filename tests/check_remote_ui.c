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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "storage/db.h"
#include "tests/remote_peer.h"
#include "tests/testutil.h"

struct rterm {
	char sock[64];
	char *dir, *db;
};

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
	tmux_start(t->sock, t->dir, 0, 120, 30, NULL, t->db, args);
}

static void
rt_stop(struct rterm *t)
{
	tmux_kill(t->sock);
	free(t->db);
	tmpdir_remove(t->dir);
}

/* Quit with Ctrl-Q and wait for the exit status line. */
static void
rt_quit(struct rterm *t)
{
	tmux_keys(t->sock, "C-q");
	ck_assert_msg(tmux_wait(t->sock, "EXIT=0", 0, 0, 10000), "did not quit: %s", tmux_capture(t->sock));
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
	ck_assert_msg(tmux_wait(t.sock, "fixture-q8_0.gguf remote", 1, 0, 15000), "status: %s", tmux_capture(t.sock));
	tmux_type(t.sock, "Hi there");
	tmux_keys(t.sock, "Enter");
	ck_assert_msg(tmux_wait(t.sock, "tok/s", 1, 0, 20000), "no tok/s: %s", tmux_capture(t.sock));
	ck_assert_msg(tmux_wait(t.sock, "idle", 1, 0, 5000), "not idle: %s", tmux_capture(t.sock));
	rt_quit(&t);
	struct db_conv *c = test_latest_conv(t.db);
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
	ck_assert_msg(tmux_wait(t.sock, "slow-model remote", 1, 0, 15000), "status: %s", tmux_capture(t.sock));
	tmux_type(t.sock, "Go on");
	tmux_keys(t.sock, "Enter");
	ck_assert_msg(tmux_wait(t.sock, " w3", 0, 0, 10000), "no stream: %s", tmux_capture(t.sock));
	double t0 = clock_now_ms();
	tmux_keys(t.sock, "Escape");
	ck_assert_msg(tmux_wait(t.sock, "stopped", 1, 0, 3000), "not stopped: %s", tmux_capture(t.sock));
	double stop_ms = clock_now_ms() - t0;
	fprintf(stderr, "remote_ui: Esc to \"stopped\" on screen: %.0f ms\n", stop_ms);
	ck_assert_msg(stop_ms < 1000, "stop took %.0f ms", stop_ms);
	rt_quit(&t);
	struct db_conv *c = test_latest_conv(t.db);
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
	ck_assert_msg(tmux_wait(t.sock, "m1 remote", 1, 0, 15000), "status: %s", tmux_capture(t.sock));
	tmux_type(t.sock, "Hi");
	tmux_keys(t.sock, "Enter");
	ck_assert_msg(tmux_wait(t.sock, "HTTP 500: CUDA error: out of memory", 1, 0, 10000), "no notice: %s", tmux_capture(t.sock));
	rt_quit(&t);
	struct db_conv *c = test_latest_conv(t.db);
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
	if (!tmux_available()) {
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
