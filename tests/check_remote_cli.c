/*
 * check_remote_cli.c: the real binary with --remote (suite remote_cli):
 * one-shot and piped chat against the real llama-server, saved and shown
 * like local chats (engine and model in each reply's stats, no token ids);
 * info --remote; the interface in tmux streaming from llama-server and
 * stopped with Esc in mid-stream (from the scripted listener, which streams
 * slowly enough to stop); faults as one line with the turn kept (HTTP 500,
 * a cut stream, a closed port, a DNS failure that never leaves the
 * machine); the key from the environment only; flags the remote engine
 * has no use for refused.  Only 127.0.0.1.  The llama-server cases are
 * skipped, and counted, when the peer binary cannot run.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/db.h"
#include "tests/remote_peer.h"
#include "tests/testutil.h"

struct env {
	char *dir, *db;
	char *e[8];
};

static void
env_init(struct env *v, const char *key)
{
	memset(v, 0, sizeof *v);
	v->dir = tmpdir_new();
	ck_assert_ptr_nonnull(v->dir);
	ck_assert_int_ge(asprintf(&v->db, "%s/chats.db", v->dir), 0);
	ck_assert_int_ge(asprintf(&v->e[0], "XDG_CONFIG_HOME=%s/cfg", v->dir), 0);
	ck_assert_int_ge(asprintf(&v->e[1], "XDG_CACHE_HOME=%s/cache", v->dir), 0);
	ck_assert_int_ge(asprintf(&v->e[2], "XDG_STATE_HOME=%s/state", v->dir), 0);
	ck_assert_int_ge(asprintf(&v->e[3], "LLAMA2_CHAT_API_KEY=%s", key ? key : ""), 0);
	v->e[4] = strdup("OPENAI_API_KEY=");
	v->e[5] = strdup("LLAMA2_CHAT_MODEL=");
}

static void
env_free(struct env *v)
{
	for (int i = 0; i < 8; i++)
		free(v->e[i]);
	free(v->db);
	tmpdir_remove(v->dir);
}

/* Run the binary with the words of argv (NULL-ended) after --db DB. */
static int
run(struct env *v, const char *stdin_data, char **out, char **err, ...)
{
	const char *argv[32] = { "llama2-chat" };
	int n = 1;
	va_list ap;
	va_start(ap, err);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 28)
		argv[n++] = a;
	va_end(ap);
	/* store commands take --db after the subcommand too */
	argv[n++] = "--db";
	argv[n++] = v->db;
	argv[n] = NULL;
	return run_binary(argv, stdin_data, out, err, (const char *const *)v->e, 60);
}

static struct db_conv *
latest(struct env *v)
{
	return test_latest_conv(v->db);
}

static struct lsrv g_srv;
static int g_srv_ok;

static void
srv_setup(void)
{
	g_srv_ok = lsrv_start(&g_srv) == 0;
}

static void
srv_teardown(void)
{
	lsrv_stop(&g_srv);
}

START_TEST(test_oneshot_saved)
{
	ck_assert_msg(g_srv_ok, "llama-server did not start");
	struct env v;
	env_init(&v, NULL);
	char *out, *err;
	int st = run(&v, NULL, &out, &err, "--remote", g_srv.url, "-p", "Hi", "-n", "16", "--seed", "7", NULL);
	ck_assert_msg(st == 0, "exit %d: %s", st, err);
	ck_assert_int_gt(strlen(out), 1);
	struct db_conv *c = latest(&v);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_str_eq(c->messages[0].content, "Hi");
	struct db_message *r = &c->messages[1];
	ck_assert_int_eq(r->role, ROLE_ASSISTANT);
	ck_assert_msg(r->finish == FINISH_EOS || r->finish == FINISH_LENGTH, "finish %d", r->finish);
	/* stdout is the reply and a newline */
	ck_assert_int_eq(strlen(out), strlen(r->content) + 1);
	ck_assert_int_eq(strncmp(out, r->content, strlen(r->content)), 0);
	ck_assert_ptr_null(r->tokens);
	ck_assert_int_eq(r->has_seed, 1);
	ck_assert_int_eq((int)r->seed, 7);
	json_t *js = json_loads(r->stats, 0, NULL);
	ck_assert_msg(js != NULL, "stats: %s", r->stats ? r->stats : "(null)");
	ck_assert_str_eq(json_string_value(json_object_get(js, "engine")), "remote");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(js, "model")), "fixture-q8_0.gguf"));
	ck_assert_int_gt(json_integer_value(json_object_get(js, "prompt_tokens")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(js, "generated")), 0);
	json_decref(js);
	ck_assert_ptr_nonnull(strstr(c->model_name, "fixture-q8_0.gguf"));
	char pid[8];
	snprintf(pid, sizeof pid, "%s", c->pid);
	db_conv_free(c);
	free(out);
	free(err);

	/* show and list name the engine and the model. */
	ck_assert_int_eq(run(&v, NULL, &out, &err, "show", pid, NULL), 0);
	ck_assert_msg(strstr(out, "remote") && strstr(out, "fixture-q8_0.gguf"), "%s", out);
	free(out);
	free(err);
	ck_assert_int_eq(run(&v, NULL, &out, &err, "list", NULL), 0);
	ck_assert_msg(strstr(out, "[remote: ") && strstr(out, "fixture-q8_0.gguf"), "%s", out);
	free(out);
	free(err);

	/* -c continues it through the server: the stored turn goes as text. */
	st = run(&v, NULL, &out, &err, "--remote", g_srv.url, "-c", "-p", "More", "-n", "8", "--stats", NULL);
	ck_assert_msg(st == 0, "exit %d: %s", st, err);
	int prefill = 0, reused = 0;
	ck_assert_msg(sscanf(err, "turn 1: prefill %d reused %d", &prefill, &reused) == 2 && reused > 0, "%s", err);
	c = latest(&v);
	ck_assert_str_eq(c->pid, pid);
	ck_assert_int_eq(c->n_messages, 4);
	ck_assert_str_eq(c->messages[2].content, "More");
	db_conv_free(c);
	free(out);
	free(err);
	env_free(&v);
}
END_TEST

START_TEST(test_pipe_two_lines)
{
	ck_assert_msg(g_srv_ok, "llama-server did not start");
	struct env v;
	env_init(&v, NULL);
	char *out, *err;
	int st = run(&v, "Hello there\nAnd again\n", &out, &err, "chat", "--remote", g_srv.url, "-n", "8", "--stats",
	    NULL);
	ck_assert_msg(st == 0, "exit %d: %s", st, err);
	ck_assert_msg(strstr(err, "turn 1: ") && strstr(err, "turn 2: "), "%s", err);
	/* Turn two reuses turn one from the server's cache. */
	const char *t2 = strstr(err, "turn 2: prefill ");
	int prefill = 0, reused = 0;
	ck_assert_int_eq(sscanf(t2, "turn 2: prefill %d reused %d", &prefill, &reused), 2);
	ck_assert_msg(reused > 0, "%s", err);
	struct db_conv *c = latest(&v);
	ck_assert_int_eq(c->n_messages, 4);
	ck_assert_str_eq(c->messages[0].content, "Hello there");
	ck_assert_str_eq(c->messages[2].content, "And again");
	for (int i = 1; i < 4; i += 2)
		ck_assert_msg(c->messages[i].finish == FINISH_EOS || c->messages[i].finish == FINISH_LENGTH,
		    "reply %d finish %d", i, c->messages[i].finish);
	db_conv_free(c);
	free(out);
	free(err);
	env_free(&v);
}
END_TEST

START_TEST(test_info_remote)
{
	ck_assert_msg(g_srv_ok, "llama-server did not start");
	struct env v;
	env_init(&v, NULL);
	char *out, *err;
	int st = run(&v, NULL, &out, &err, "info", "--remote", g_srv.url, NULL);
	ck_assert_msg(st == 0, "exit %d: %s", st, err);
	ck_assert_msg(strstr(out, g_srv.url) && strstr(out, "fixture-q8_0.gguf"), "%s", out);
	free(out);
	free(err);
	env_free(&v);
}
END_TEST

/* ---- faults, from the scripted listener ---- */

static void
serve_500(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	    "{\"error\":{\"code\":500,\"message\":\"out of memory on GPU 3\",\"type\":\"server_error\"}}");
}

static void
serve_cut(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half a\"}}]}\n\n"
	    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" reply\"}}]}\n\n");
}

/* One line on stderr, exit 1, the user's message and the partial reply
 * kept, marked interrupted. */
static void
fault_case(fake_fn serve, const char *want, const char *partial)
{
	struct fake f;
	fake_start(&f, serve, NULL);
	struct env v;
	env_init(&v, "sekrit-123");
	char *out, *err;
	int st = run(&v, NULL, &out, &err, "--remote", f.url, "--remote-model", "m1", "-p", "Hi", NULL);
	ck_assert_msg(st == 1, "exit %d: %s", st, err);
	ck_assert_msg(strstr(err, want), "stderr lacks \"%s\": %s", want, err);
	ck_assert_msg(strncmp(err, "llama2-chat: ", 13) == 0 && strchr(err, '\n') == err + strlen(err) - 1,
	    "not one line: %s", err);
	ck_assert_msg(strstr(err, "sekrit") == NULL, "the key is shown: %s", err);
	struct db_conv *c = latest(&v);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_str_eq(c->messages[0].content, "Hi");
	ck_assert_str_eq(c->messages[1].content, partial);
	ck_assert_int_eq(c->messages[1].finish, FINISH_INTERRUPTED);
	db_conv_free(c);
	char *rq = fake_requests(&f);
	ck_assert_ptr_nonnull(strstr(rq, "Authorization: Bearer sekrit-123\r\n"));
	free(rq);
	free(out);
	free(err);
	env_free(&v);
	fake_stop(&f);
}

START_TEST(test_fault_500)
{
	fault_case(serve_500, "answered HTTP 500: out of memory on GPU 3", "");
}
END_TEST

START_TEST(test_fault_cut)
{
	fault_case(serve_cut, "ended without [DONE]", "Half a reply");
}
END_TEST

START_TEST(test_closed_port_and_dns)
{
	struct fake f;
	fake_start(&f, NULL, NULL);
	char url[64];
	snprintf(url, sizeof url, "%s", f.url);
	fake_stop(&f);
	struct env v;
	env_init(&v, NULL);
	char *out, *err;
	/* Without a model name the server is asked first: nothing to keep. */
	int st = run(&v, NULL, &out, &err, "--remote", url, "-p", "Hi", NULL);
	ck_assert_msg(st == 1 && strstr(err, "cannot connect to 127.0.0.1") && strstr(err, "refused"), "%d %s", st,
	    err);
	free(out);
	free(err);
	/* The same from the config file's remote = URL; a bad remote_timeout
	 * there names its line. */
	char *cfgdir, *cfg;
	ck_assert_int_ge(asprintf(&cfgdir, "%s/cfg/llama2-chat", v.dir), 0);
	ck_assert_int_ge(asprintf(&cfg, "%s/config", cfgdir), 0);
	char *mk;
	ck_assert_int_ge(asprintf(&mk, "mkdir -p '%s'", cfgdir), 0);
	ck_assert_int_eq(system(mk), 0);
	free(mk);
	FILE *cf = fopen(cfg, "w");
	ck_assert_ptr_nonnull(cf);
	fprintf(cf, "remote = %s\nremote_model = m1\n", url);
	fclose(cf);
	st = run(&v, NULL, &out, &err, "-p", "Hi", NULL);
	ck_assert_msg(st == 1 && strstr(err, "cannot connect to 127.0.0.1"), "%d %s", st, err);
	free(out);
	free(err);
	cf = fopen(cfg, "a");
	fprintf(cf, "remote_timeout = never\n");
	fclose(cf);
	st = run(&v, NULL, &out, &err, "-p", "Hi", NULL);
	ck_assert_msg(st != 0 && strstr(err, ":3:") && strstr(err, "never"), "%d %s", st, err);
	free(out);
	free(err);
	unlink(cfg);
	free(cfg);
	free(cfgdir);

	/* A 70-letter label: the resolver refuses it without asking anyone;
	 * and plain http to a host that is not this one gets the warning. */
	char host[128];
	memset(host, 'a', 70);
	snprintf(host + 70, sizeof host - 70, ".invalid");
	char bad[160];
	snprintf(bad, sizeof bad, "http://%s:8000/v1", host);
	st = run(&v, NULL, &out, &err, "--remote", bad, "--remote-model", "m", "-p", "Hi", NULL);
	ck_assert_msg(st == 1 && strstr(err, "cannot resolve"), "%d %s", st, err);
	ck_assert_msg(strstr(err, "warning") && strstr(err, "http://"), "%s", err);
	free(out);
	free(err);
	env_free(&v);
}
END_TEST

static void
serve_silent(struct fake *f, int fd)
{
	fake_sleep(f, 20000);
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Ctrl-C while the server says nothing: the reply stops at once, kept as
 * stopped, instead of waiting for --remote-timeout. */
START_TEST(test_sigint_while_silent)
{
	struct fake f;
	fake_start(&f, serve_silent, NULL);
	struct env v;
	env_init(&v, NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(nul, 2);
		for (int i = 0; v.e[i]; i++)
			putenv(v.e[i]);
		execl(test_binary(), test_binary(), "--db", v.db, "--remote", f.url, "--remote-model", "m1", "-p", "Hi",
		    (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	/* Wait for the request to reach the server, then interrupt. */
	for (int i = 0; i < 500 && atomic_load(&f.conns) == 0; i++)
		usleep(10000);
	ck_assert_int_eq(atomic_load(&f.conns), 1);
	usleep(200000);
	double t0 = now_ms();
	kill(pid, SIGINT);
	int status = 0, done = 0;
	while (!done && now_ms() - t0 < 5000) {
		done = waitpid(pid, &status, WNOHANG) == pid;
		if (!done)
			usleep(5000);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	double ms = now_ms() - t0;
	fprintf(stderr, "remote_cli: SIGINT to exit while the server is silent: %.0f ms\n", ms);
	ck_assert_msg(done && ms < 1000, "took %.0f ms", ms);
	ck_assert(WIFEXITED(status));
	struct db_conv *c = latest(&v);
	ck_assert_int_eq(c->n_messages, 2);
	ck_assert_str_eq(c->messages[0].content, "Hi");
	ck_assert_int_eq(c->messages[1].finish, FINISH_STOPPED);
	db_conv_free(c);
	env_free(&v);
	fake_stop(&f);
}
END_TEST

START_TEST(test_refused_flags)
{
	struct env v;
	env_init(&v, NULL);
	static const struct {
		const char *a, *b, *want;
	} cases[] = {
		{ "-t", "2", "--threads" },
		{ "--ctx-size", "512", "--ctx-size" },
		{ "--kv-f32", NULL, "--kv-f32" },
		{ "--kv-q8", NULL, "--kv-q8" },
		{ "--batch-size", "8", "--batch-size" },
		{ "-m", "x.gguf", "-m" },
		{ "--remote-timeout", "0", "--remote-timeout" },
		{ "--remote-timeout", "5s", "--remote-timeout" },
		{ "--tokenizer", "t.bin", "--tokenizer" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *out, *err;
		int st = cases[i].b ? run(&v, NULL, &out, &err, "--remote", "http://127.0.0.1:9/v1", cases[i].a,
		    cases[i].b, "-p", "Hi", NULL) : run(&v, NULL, &out, &err, "--remote", "http://127.0.0.1:9/v1",
		    cases[i].a, "-p", "Hi", NULL);
		ck_assert_msg(st == 2, "case %zu: exit %d %s", i, st, err);
		ck_assert_msg(strstr(err, cases[i].want), "case %zu: %s", i, err);
		free(out);
		free(err);
	}
	/* The remote flags without a server, and --remote where a local model
	 * is needed. */
	char *out, *err;
	ck_assert_int_eq(run(&v, NULL, &out, &err, "--remote-model", "m", "-p", "Hi", NULL), 2);
	ck_assert_msg(strstr(err, "--remote-model needs --remote"), "%s", err);
	free(out);
	free(err);
	ck_assert_int_eq(run(&v, NULL, &out, &err, "complete", "--remote", "http://127.0.0.1:9/v1", "Hi", NULL), 2);
	ck_assert_msg(strstr(err, "complete needs a local model"), "%s", err);
	free(out);
	free(err);
	ck_assert_int_eq(run(&v, NULL, &out, &err, "-m", "x.gguf", "--remote", "http://127.0.0.1:9/v1", "-p", "Hi", NULL), 2);
	ck_assert_msg(strstr(err, "both given"), "%s", err);
	free(out);
	free(err);
	env_free(&v);
}
END_TEST

Suite *remote_cli_suite(void);

Suite *
remote_cli_suite(void)
{
	Suite *s = suite_create("remote_cli");
	TCase *tc = tcase_create("scripted");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fault_500);
	tcase_add_test(tc, test_fault_cut);
	tcase_add_test(tc, test_closed_port_and_dns);
	tcase_add_test(tc, test_refused_flags);
	tcase_add_test(tc, test_sigint_while_silent);
	suite_add_tcase(s, tc);
	TCase *ls = tcase_create("llama-server");
	tcase_set_timeout(ls, 120);
	if (lsrv_can_run()) {
		tcase_add_unchecked_fixture(ls, srv_setup, srv_teardown);
		tcase_add_test(ls, test_oneshot_saved);
		tcase_add_test(ls, test_pipe_two_lines);
		tcase_add_test(ls, test_info_remote);
	} else {
		testutil_skipped += 3;
		fprintf(stderr, "skipped: remote_cli llama-server tests (the peer binary cannot run)\n");
	}
	suite_add_tcase(s, ls);
	return s;
}
