/*
 * check_remote.c: the remote engine through the worker interface (suite
 * remote), as the session and the interface use it.
 *
 * Against the real llama-server (peers/, fixture-q8_0.gguf, a free
 * loopback port): the default model from GET /models, two turns streamed
 * with usage and our timing, the second reusing the first's prefix in the
 * server's cache (the same bytes every turn), and the server killed in
 * mid-stream.  Against a scripted listener on a thread (127.0.0.1): a good
 * stream cut into pieces, every fault the issue names (401, 403, 404, 429,
 * 500 with an OpenAI error body, 503 plain, a stream without [DONE],
 * malformed JSON, an error event, bytes that are not HTTP, silence past
 * --remote-timeout, a redirect that must not be followed with the key), a
 * closed port, and stop in mid-stream.  The llama-server cases are skipped,
 * and counted, when the peer binary cannot run.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/remote.h"
#include "tests/remote_peer.h"
#include "tests/testutil.h"

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct engine_sampling
samp(void)
{
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.seed = 42;
	return s;
}

/* One reply as the worker streamed it. */
struct turn {
	char text[16384];
	size_t len;
	int ntok;
	int got_done, got_error;
	enum engine_stop_reason reason;
	struct engine_gen_stats st;
	char *done_text, *error;
	double ms, stop_ms;       /* the whole turn; from worker_stop to WEV_DONE */
};

static void
turn_free(struct turn *t)
{
	free(t->done_text);
	free(t->error);
}

/* Wait (at most 30 s) for seq's WEV_DONE or WEV_ERROR.  stop_after > 0:
 * worker_stop after that many tokens; kill_pid: SIGKILL it after the
 * first token. */
static void
turn_wait(struct worker *w, int seq, struct turn *t, int stop_after, pid_t kill_pid)
{
	memset(t, 0, sizeof *t);
	double t0 = now_ms(), t_stop = 0;
	while (now_ms() - t0 < 30000) {
		struct worker_event ev;
		if (!worker_wait(w, &ev, 200))
			continue;
		if (ev.seq == seq && ev.type == WEV_TOKEN) {
			ck_assert_int_eq(ev.id, -1);
			if (t->len + ev.len < sizeof t->text) {
				memcpy(t->text + t->len, ev.text, ev.len);
				t->len += ev.len;
			}
			t->ntok++;
			if (stop_after > 0 && t->ntok == stop_after) {
				t_stop = now_ms();
				worker_stop(w);
			}
			if (kill_pid > 0 && t->ntok == 1)
				kill(kill_pid, SIGKILL);
		} else if (ev.seq == seq && (ev.type == WEV_DONE || ev.type == WEV_ERROR)) {
			t->got_done = ev.type == WEV_DONE;
			t->got_error = ev.type == WEV_ERROR;
			t->reason = ev.stats.reason;
			t->st = ev.stats;
			t->done_text = ev.text ? strdup(ev.text) : NULL;
			t->error = ev.error ? strdup(ev.error) : ev.type == WEV_ERROR && ev.text ? strdup(ev.text) : NULL;
			t->ms = now_ms() - t0;
			t->stop_ms = t_stop > 0 ? now_ms() - t_stop : 0;
			worker_event_free(&ev);
			return;
		}
		worker_event_free(&ev);
	}
	ck_abort_msg("no reply within 30 s");
}

static struct worker *
open_remote(const char *url, const char *model, const char *key, int timeout_s)
{
	struct remote_conf c = { .url = url, .model = model, .api_key = key, .timeout_s = timeout_s };
	char *err = NULL;
	struct worker *w = worker_open_remote(&c, &err);
	ck_assert_msg(w != NULL, "worker_open_remote(%s): %s", url, err ? err : "?");
	return w;
}

/* ---- the request body ---- */

START_TEST(test_request_body)
{
	struct remote_conf c = { .url = "http://127.0.0.1:9/v1/", .model = "big \"model\"" };
	char *err = NULL;
	struct remote *r = remote_open(&c, &err);
	ck_assert_msg(r != NULL, "%s", err ? err : "");
	ck_assert_str_eq(remote_url(r), "http://127.0.0.1:9/v1");
	struct chat ch;
	chat_init(&ch);
	ck_assert_int_eq(chat_set_system(&ch, "Be \"brief\".\n"), 0);
	ck_assert_int_eq(chat_push(&ch, CHAT_USER, "Hi \xc3\xa9", NULL, 0), 0);
	struct engine_sampling s = samp();
	s.temp = 0.7f;
	s.top_k = 0;
	char *b1 = remote_request_json(r, &ch, &s, 0);
	ck_assert_ptr_nonnull(b1);
	json_error_t je;
	json_t *j = json_loads(b1, 0, &je);
	ck_assert_msg(j != NULL, "%s: %s", b1, je.text);
	ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "big \"model\"");
	ck_assert(json_is_true(json_object_get(j, "stream")));
	ck_assert(json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")));
	ck_assert_double_eq_tol(json_number_value(json_object_get(j, "temperature")), 0.7, 1e-9);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "seed")), 42);
	ck_assert_ptr_null(json_object_get(j, "top_k"));        /* off: the server's default */
	ck_assert_ptr_null(json_object_get(j, "max_tokens"));   /* no limit asked */
	ck_assert_ptr_nonnull(json_object_get(j, "min_p"));
	ck_assert_ptr_nonnull(json_object_get(j, "repeat_penalty"));
	ck_assert_ptr_nonnull(json_object_get(j, "repetition_penalty"));
	json_t *m = json_object_get(j, "messages");
	ck_assert_int_eq(json_array_size(m), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 0), "content")), "Be \"brief\".\n");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 1), "content")), "Hi \xc3\xa9");
	json_decref(j);

	/* The next turn sends the same messages first, byte for byte. */
	ck_assert_int_eq(chat_push(&ch, CHAT_ASSISTANT, " Hello! ", NULL, 0), 0);
	ck_assert_int_eq(chat_push(&ch, CHAT_USER, "More", NULL, 0), 0);
	s.top_k = 40;
	char *b2 = remote_request_json(r, &ch, &s, 16);
	const char *m1 = strstr(b1, "\"messages\":[");
	const char *m2 = strstr(b2, "\"messages\":[");
	ck_assert(m1 && m2);
	size_t k = (size_t)(strchr(m1, ']') - m1);   /* no ']' inside these contents */
	ck_assert_msg(strncmp(m1, m2, k) == 0, "turn 1 %s\nturn 2 %s", b1, b2);
	ck_assert_ptr_nonnull(strstr(b2, "{\"role\":\"assistant\",\"content\":\" Hello! \"}"));
	ck_assert_ptr_nonnull(strstr(b2, "\"top_k\":40"));
	ck_assert_ptr_nonnull(strstr(b2, "\"max_tokens\":16"));
	free(b1);
	free(b2);
	chat_free(&ch);
	remote_close(r);

	ck_assert_int_eq(remote_url_insecure("http://gpu-box:8000/v1"), 1);
	ck_assert_int_eq(remote_url_insecure("http://10.0.0.7/v1"), 1);
	ck_assert_int_eq(remote_url_insecure("https://gpu-box/v1"), 0);
	ck_assert_int_eq(remote_url_insecure("http://127.0.0.1:8080/v1"), 0);
	ck_assert_int_eq(remote_url_insecure("http://localhost:8080/v1"), 0);
	ck_assert_int_eq(remote_url_insecure("http://[::1]:8080/v1"), 0);

	/* Bad URLs say so. */
	const char *bad[] = { "gpu-box:8000/v1", "ftp://x/v1", "http://", NULL };
	for (int i = 0; bad[i]; i++) {
		struct remote_conf bc = { .url = bad[i], .model = "m" };
		err = NULL;
		ck_assert_msg(remote_open(&bc, &err) == NULL, "%s accepted", bad[i]);
		ck_assert_msg(err && strstr(err, "URL"), "%s: %s", bad[i], err ? err : "(none)");
		free(err);
	}
}
END_TEST

/* ---- scripted answers ---- */

static const char SSE_HEAD[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

static void
chunk(const char *content, char *out, size_t cap)
{
	json_t *j = json_pack("{s:[{s:i,s:{s:s},s:n}],s:s}", "choices", "index", 0, "delta", "content", content,
	    "finish_reason", "object", "chat.completion.chunk");
	char *s = json_dumps(j, JSON_COMPACT);
	snprintf(out, cap, "data: %s\n\n", s);
	free(s);
	json_decref(j);
}

/* A good stream in awkward pieces: CRLF events, a keep-alive, a split
 * inside a line and inside a CRLF, usage last. */
static void
serve_good(struct fake *f, int fd)
{
	fake_write(fd, SSE_HEAD);
	fake_write(fd, ": keep-alive\r\n\r\n");
	fake_write(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n");
	fake_write(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel");
	fake_sleep(f, 30);
	fake_write(fd, "lo\"}}]}\r");
	fake_sleep(f, 30);
	fake_write(fd, "\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w\\u00f6rld\"}}]}\n\n");
	fake_write(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
	fake_write(fd, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2}}\n\n");
	fake_write(fd, "data: [DONE]\n\n");
}

START_TEST(test_good_stream)
{
	struct fake f;
	fake_start(&f, serve_good, NULL);
	struct worker *w = open_remote(f.url, "m1", "sekrit-key", 5);
	ck_assert_str_eq(worker_model(w), "m1");
	ck_assert_int_eq(worker_ctx_size(w), 0);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 8), &t, 0, 0);
	ck_assert_msg(t.got_done && t.reason == ENGINE_STOP_EOS, "error: %s", t.error ? t.error : "");
	ck_assert_str_eq(t.done_text, "Hello w\xc3\xb6rld");
	ck_assert_int_eq((int)t.len, (int)strlen(t.done_text));
	ck_assert_int_eq(memcmp(t.text, t.done_text, t.len), 0);
	ck_assert_int_eq(t.ntok, 2);
	ck_assert_int_eq(t.st.n_gen, 2);
	ck_assert_int_eq(t.st.n_prompt, 11);
	ck_assert_int_eq(t.st.ctx_used, 13);
	ck_assert(t.st.ttft_ms > 0);
	ck_assert(t.st.tg_tps > 0);   /* two deltas ~60 ms apart */
	char *rq = fake_requests(&f);
	ck_assert_msg(strncmp(rq, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0, "%s", rq);
	ck_assert_ptr_nonnull(strstr(rq, "Authorization: Bearer sekrit-key\r\n"));
	ck_assert_ptr_nonnull(strstr(rq, "\"stream\":true"));
	ck_assert_ptr_nonnull(strstr(rq, "\"max_tokens\":8"));
	ck_assert_ptr_nonnull(strstr(rq, "{\"role\":\"user\",\"content\":\"Hi\"}"));
	free(rq);
	turn_free(&t);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

/* Regenerate resends the same conversation, byte for byte (the server's
 * cache reuses all of it); edit resends it cut before the edited message. */
START_TEST(test_regenerate_and_edit)
{
	struct fake f;
	fake_start(&f, serve_good, NULL);
	struct worker *w = open_remote(f.url, "m1", NULL, 5);
	struct engine_sampling s = samp();
	ck_assert_int_gt(worker_set_system(w, "Sys"), 0);
	struct turn t;
	turn_wait(w, worker_send(w, "one", &s, 8), &t, 0, 0);
	turn_free(&t);
	turn_wait(w, worker_send(w, "two", &s, 8), &t, 0, 0);
	turn_free(&t);
	turn_wait(w, worker_regenerate(w, &s, 8), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_EOS);
	turn_free(&t);
	turn_wait(w, worker_edit(w, 2, "deux", &s, 8), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_EOS);
	turn_free(&t);
	char *rq = fake_requests(&f);
	/* The four bodies, in order. */
	const char *b[4];
	const char *p = rq;
	for (int i = 0; i < 4; i++) {
		p = strstr(p, "\r\n\r\n{");
		ck_assert_msg(p != NULL, "request %d missing: %s", i, rq);
		b[i] = p += 4;
	}
	const char *prefix = "\"messages\":[{\"role\":\"system\",\"content\":\"Sys\"},{\"role\":\"user\","
	    "\"content\":\"one\"},{\"role\":\"assistant\",\"content\":\"Hello w\u00f6rld\"}";
	for (int i = 1; i < 4; i++)
		ck_assert_msg(strstr(b[i], prefix) != NULL, "request %d: %.400s", i, b[i]);
	size_t l1 = (size_t)(strstr(b[1], "POST ") - b[1]), l2 = (size_t)(strstr(b[2], "POST ") - b[2]);
	ck_assert_msg(l1 == l2 && memcmp(b[1], b[2], l1) == 0, "regenerate changed the request:\n%.*s\n%.*s", (int)l1,
	    b[1], (int)l2, b[2]);
	ck_assert_ptr_nonnull(strstr(b[1], "{\"role\":\"user\",\"content\":\"two\"}]"));
	ck_assert_ptr_nonnull(strstr(b[3], "\"Hello w\u00f6rld\"},{\"role\":\"user\",\"content\":\"deux\"}]"));
	free(rq);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

static void
serve_status(struct fake *f, int fd)
{
	fake_write(fd, f->arg);
}

static void
serve_truncated(struct fake *f, int fd)
{
	char c[512];
	fake_write(fd, SSE_HEAD);
	chunk("Hel", c, sizeof c);
	fake_write(fd, c);
	chunk("lo", c, sizeof c);
	fake_write(fd, c);
	fake_write(fd, "data: {\"choices\":[{\"delta\":{\"cont");   /* and the connection closes */
}

static void
serve_malformed(struct fake *f, int fd)
{
	char c[512];
	fake_write(fd, SSE_HEAD);
	chunk("Par", c, sizeof c);
	fake_write(fd, c);
	fake_write(fd, "data: {\"choices\": [{\"delta\": {\"content\": tial}}]}\n\n");
	fake_sleep(f, 2000);   /* the client must not wait for more */
}

static void
serve_error_event(struct fake *f, int fd)
{
	char c[512];
	fake_write(fd, SSE_HEAD);
	chunk("Ab", c, sizeof c);
	fake_write(fd, c);
	fake_write(fd, "data: {\"error\":{\"code\":500,\"message\":\"the KV cache is full\",\"type\":\"server_error\"}}\n\n");
}

static void
serve_garbage(struct fake *f, int fd)
{
	fake_write(fd, "\x16\x03\x01 this is not HTTP at all\r\n\r\n");
}

/* A server that ignores "stream": one JSON answer. */
static void
serve_json_not_sse(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}");
}

static void
serve_silent(struct fake *f, int fd)
{
	fake_sleep(f, 8000);
}

static void
serve_silent_midstream(struct fake *f, int fd)
{
	char c[512];
	fake_write(fd, SSE_HEAD);
	chunk("Wait", c, sizeof c);
	fake_write(fd, c);
	fake_sleep(f, 8000);
}

struct fault_case {
	fake_fn serve;
	const char *arg;
	const char *want1, *want2;  /* in the message */
	const char *partial;        /* the reply kept */
	int timeout_s;
	double min_ms, max_ms;
};

/* The 401 body is 2 bytes shorter than its Content-Length says: the
 * status is reported even though the body broke off. */
static const struct fault_case faults[] = {
	{ serve_status, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 72\r\n"
	  "Connection: close\r\n\r\n{\"error\":{\"message\":\"Invalid API Key\",\"type\":\"authentication_error\"}}\n",
	  "HTTP 401: Invalid API Key", "check LLAMA2_CHAT_API_KEY", "", 5, 0, 3000 },
	{ serve_status, "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n",
	  "HTTP 403", "check LLAMA2_CHAT_API_KEY", "", 5, 0, 3000 },
	{ serve_status, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	  "{\"object\":\"error\",\"message\":\"The model `m1` does not exist.\",\"type\":\"NotFoundError\",\"code\":404}",
	  "HTTP 404: The model `m1` does not exist.", "\"m1\"", "", 5, 0, 3000 },
	{ serve_status, "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\n\r\n{\"error\":\"slow down\"}",
	  "(HTTP 429: slow down)", "try again later", "", 5, 0, 3000 },
	{ serve_status, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	  "{\"error\":{\"code\":500,\"message\":\"Failed to parse messages\",\"type\":\"server_error\"}}",
	  "answered HTTP 500: Failed to parse messages", NULL, "", 5, 0, 3000 },
	{ serve_status, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nLoading model\r\nplease wait\r\n",
	  "answered HTTP 503: Loading model", NULL, "", 5, 0, 3000 },
	{ serve_truncated, NULL, "ended without [DONE]", "cut short", "Hello", 5, 0, 3000 },
	{ serve_malformed, NULL, "127.0.0.1:", "sent malformed JSON in an event", "Par", 5, 0, 1500 },
	{ serve_error_event, NULL, "127.0.0.1:", "reported an error: the KV cache is full", "Ab", 5, 0, 3000 },
	{ serve_garbage, NULL, "does not answer in HTTP", "127.0.0.1:", "", 5, 0, 3000 },
	{ serve_json_not_sse, NULL, "did not stream", NULL, "", 5, 0, 3000 },
	{ serve_silent, NULL, "no data from 127.0.0.1", "for 1 s", "", 1, 900, 4000 },
	{ serve_silent_midstream, NULL, "no data from 127.0.0.1", "for 1 s", "Wait", 1, 900, 4000 },
};

START_TEST(test_faults)
{
	int i = _i;
	const struct fault_case *fc = &faults[i];
	struct fake f;
	fake_start(&f, fc->serve, (void *)fc->arg);
	struct worker *w = open_remote(f.url, "m1", NULL, fc->timeout_s);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 16), &t, 0, 0);
	ck_assert_msg(t.got_done && t.reason == ENGINE_STOP_ERROR, "case %d: not a fault (done %d reason %d)", i,
	    t.got_done, t.reason);
	ck_assert_msg(t.error && strstr(t.error, fc->want1), "case %d: \"%s\" lacks \"%s\"", i, t.error ? t.error : "",
	    fc->want1);
	ck_assert_msg(!fc->want2 || strstr(t.error, fc->want2), "case %d: \"%s\" lacks \"%s\"", i, t.error, fc->want2);
	ck_assert_msg(strchr(t.error, '\n') == NULL, "case %d: not one line: %s", i, t.error);
	ck_assert_msg(strcmp(t.done_text ? t.done_text : "", fc->partial) == 0, "case %d: kept \"%s\"", i,
	    t.done_text ? t.done_text : "");
	ck_assert_msg(t.ms >= fc->min_ms && t.ms <= fc->max_ms, "case %d: took %.0f ms", i, t.ms);
	if (getenv("REMOTE_TRACE"))
		fprintf(stderr, "remote: case %d: %s\n", i, t.error);
	turn_free(&t);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

/* After a fault the turn stays in the conversation: the next request
 * carries the user's message and the partial reply. */
START_TEST(test_fault_keeps_turn)
{
	struct fake f;
	fake_start(&f, serve_truncated, NULL);
	struct worker *w = open_remote(f.url, "m1", NULL, 5);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "first", &s, 16), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_ERROR);
	turn_free(&t);
	turn_wait(w, worker_send(w, "second", &s, 16), &t, 0, 0);
	turn_free(&t);
	char *rq = fake_requests(&f);
	ck_assert_ptr_nonnull(strstr(rq, "[{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"assistant\","
	    "\"content\":\"Hello\"},{\"role\":\"user\",\"content\":\"second\"}]"));
	free(rq);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

static void
serve_slow(struct fake *f, int fd)
{
	char c[512];
	fake_write(fd, SSE_HEAD);
	for (int i = 0; i < 200; i++) {
		char word[16];
		snprintf(word, sizeof word, " w%d", i);
		chunk(word, c, sizeof c);
		if (fake_write(fd, c) != 0 || fake_sleep(f, 50))
			return;
	}
	fake_write(fd, "data: [DONE]\n\n");
}

START_TEST(test_stop_at_once)
{
	struct fake f;
	fake_start(&f, serve_slow, NULL);
	struct worker *w = open_remote(f.url, "m1", NULL, 5);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Go on", &s, 0), &t, 3, 0);
	ck_assert_msg(t.got_done && t.reason == ENGINE_STOP_USER, "reason %d %s", t.reason, t.error ? t.error : "");
	ck_assert_msg(t.stop_ms < 150, "stop took %.0f ms", t.stop_ms);
	ck_assert_int_ge(t.ntok, 3);
	ck_assert_int_lt(t.ntok, 6);
	ck_assert_str_eq(t.done_text, t.text);
	ck_assert_ptr_nonnull(strstr(t.done_text, " w0 w1 w2"));
	ck_assert_ptr_null(t.error);
	turn_free(&t);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

START_TEST(test_closed_port)
{
	/* A port nobody listens on: bind one, then close it. */
	struct fake f;
	fake_start(&f, NULL, NULL);
	char url[64];
	snprintf(url, sizeof url, "%s", f.url);
	fake_stop(&f);
	struct remote_conf c = { .url = url, .timeout_s = 5 };
	char *err = NULL;
	double t0 = now_ms();
	ck_assert_ptr_null(worker_open_remote(&c, &err));
	ck_assert_msg(err && strstr(err, "cannot connect to 127.0.0.1") && strstr(err, "refused"), "%s", err);
	ck_assert(now_ms() - t0 < 3000);
	free(err);
	/* With the model named, the fault comes with the first message. */
	struct worker *w = open_remote(url, "m1", NULL, 5);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 16), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_ERROR);
	ck_assert_msg(strstr(t.error, "cannot connect to 127.0.0.1") && strstr(t.error, "refused"), "%s", t.error);
	turn_free(&t);
	worker_free(w);
}
END_TEST

/* https:// to something that does not speak TLS: the handshake fails. */
START_TEST(test_tls_failure)
{
	struct fake f;
	fake_start(&f, serve_garbage, NULL);
	char url[80];
	snprintf(url, sizeof url, "https://127.0.0.1:%d/v1", f.port);
	struct worker *w = open_remote(url, "m1", "k", 5);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 16), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_ERROR);
	ck_assert_msg(strstr(t.error, "TLS failure with 127.0.0.1:"), "%s", t.error);
	fprintf(stderr, "remote: TLS: %s\n", t.error);
	turn_free(&t);
	worker_free(w);
	fake_stop(&f);
}
END_TEST

static void
serve_models(struct fake *f, int fd)
{
	fake_write(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	    "{\"object\":\"list\",\"data\":[{\"id\":\"meta-llama/Llama-3.1-70B-Instruct\",\"object\":\"model\"},"
	    "{\"id\":\"second\",\"object\":\"model\"}]}");
}

START_TEST(test_models)
{
	struct fake f;
	fake_start(&f, serve_models, NULL);
	struct remote_conf c = { .url = f.url, .api_key = "k2" };
	char **ids = NULL, *err = NULL;
	int n = 0;
	ck_assert_msg(remote_models(&c, &ids, &n, &err) == 0, "%s", err);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(ids[0], "meta-llama/Llama-3.1-70B-Instruct");
	ck_assert_str_eq(ids[1], "second");
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	struct worker *w = open_remote(f.url, NULL, NULL, 5);
	ck_assert_str_eq(worker_model(w), "meta-llama/Llama-3.1-70B-Instruct");
	worker_free(w);
	char *rq = fake_requests(&f);
	ck_assert_msg(strncmp(rq, "GET /v1/models HTTP/1.1\r\n", 25) == 0, "%s", rq);
	ck_assert_ptr_nonnull(strstr(rq, "Authorization: Bearer k2\r\n"));
	free(rq);
	fake_stop(&f);
}
END_TEST

/* A redirect is reported, not followed: the key reaches no other host. */
START_TEST(test_redirect_not_followed)
{
	struct fake other;
	fake_start(&other, serve_good, NULL);
	char *resp;
	ck_assert_int_ge(asprintf(&resp, "HTTP/1.1 307 Temporary Redirect\r\nLocation: %s/chat/completions\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", other.url), 0);
	struct fake f;
	fake_start(&f, serve_status, resp);
	struct worker *w = open_remote(f.url, "m1", "sekrit", 5);
	struct engine_sampling s = samp();
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 16), &t, 0, 0);
	ck_assert_int_eq(t.reason, ENGINE_STOP_ERROR);
	ck_assert_msg(strstr(t.error, "redirects (HTTP 307)") && strstr(t.error, other.url), "%s", t.error);
	ck_assert_msg(strstr(t.error, "sekrit") == NULL, "the key is in the message: %s", t.error);
	ck_assert_int_eq(atomic_load(&other.conns), 0);
	turn_free(&t);
	worker_free(w);
	fake_stop(&f);
	fake_stop(&other);
	free(resp);
}
END_TEST

/* ---- the real llama-server ---- */

static struct lsrv g_srv;
static int g_srv_ok;

static void
lsrv_setup(void)
{
	g_srv_ok = lsrv_start(&g_srv) == 0;
}

static void
lsrv_teardown(void)
{
	lsrv_stop(&g_srv);
}

START_TEST(test_llama_server_turns)
{
	ck_assert_msg(g_srv_ok, "llama-server did not start");
	char **ids = NULL, *err = NULL;
	int n = 0;
	struct remote_conf c = { .url = g_srv.url };
	ck_assert_msg(remote_models(&c, &ids, &n, &err) == 0, "%s", err);
	ck_assert_int_ge(n, 1);
	ck_assert_ptr_nonnull(strstr(ids[0], "fixture-q8_0.gguf"));
	struct worker *w = open_remote(g_srv.url, NULL, NULL, 30);
	ck_assert_str_eq(worker_model(w), ids[0]);
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	struct engine_sampling s = samp();
	ck_assert_int_gt(worker_set_system(w, "You are terse."), 0);
	struct turn t;
	turn_wait(w, worker_send(w, "Hi", &s, 16), &t, 0, 0);
	ck_assert_msg(t.got_done && (t.reason == ENGINE_STOP_EOS || t.reason == ENGINE_STOP_LENGTH), "%s",
	    t.error ? t.error : "");
	ck_assert_int_gt(t.ntok, 0);
	ck_assert_int_le(t.st.n_gen, 16);
	ck_assert_int_gt(t.st.n_prompt, 0);
	ck_assert_int_eq(t.st.n_reused, 0);
	ck_assert(t.st.ttft_ms > 0);
	ck_assert_str_eq(t.done_text, t.text);
	int prompt1 = t.st.n_prompt, gen1 = t.st.n_gen;
	turn_free(&t);
	/* Turn two: the server finds turn one (prompt and reply, sent back
	 * byte for byte) in its cache and computes only the new part. */
	turn_wait(w, worker_send(w, "And then?", &s, 16), &t, 0, 0);
	ck_assert_msg(t.got_done && t.reason != ENGINE_STOP_ERROR, "%s", t.error ? t.error : "");
	ck_assert_msg(t.st.n_reused >= prompt1, "reused %d of turn one's %d prompt tokens (+%d generated)",
	    t.st.n_reused, prompt1, gen1);
	ck_assert_int_gt(t.st.n_prompt, 0);
	turn_free(&t);
	worker_free(w);
}
END_TEST

START_TEST(test_llama_server_killed)
{
	struct lsrv own;
	ck_assert_msg(lsrv_start(&own) == 0, "llama-server did not start");
	struct worker *w = open_remote(own.url, NULL, NULL, 30);
	struct engine_sampling s = samp();
	s.ignore_eos = 1;
	struct turn t;
	turn_wait(w, worker_send(w, "Tell a long story", &s, 1800), &t, 0, own.pid);
	ck_assert_int_eq(t.reason, ENGINE_STOP_ERROR);
	ck_assert_msg(strstr(t.error, "broke") || strstr(t.error, "without [DONE]"), "%s", t.error);
	ck_assert_msg(t.ms < 5000, "%.0f ms", t.ms);
	ck_assert_int_gt(strlen(t.done_text), 0);
	turn_free(&t);
	worker_free(w);
	lsrv_stop(&own);
}
END_TEST

Suite *remote_suite(void);

Suite *
remote_suite(void)
{
	Suite *s = suite_create("remote");
	TCase *tc = tcase_create("scripted");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_request_body);
	tcase_add_test(tc, test_good_stream);
	tcase_add_test(tc, test_regenerate_and_edit);
	tcase_add_loop_test(tc, test_faults, 0, (int)(sizeof faults / sizeof faults[0]));
	tcase_add_test(tc, test_fault_keeps_turn);
	tcase_add_test(tc, test_stop_at_once);
	tcase_add_test(tc, test_closed_port);
	tcase_add_test(tc, test_tls_failure);
	tcase_add_test(tc, test_models);
	tcase_add_test(tc, test_redirect_not_followed);
	suite_add_tcase(s, tc);

	TCase *ls = tcase_create("llama-server");
	tcase_set_timeout(ls, 120);
	if (lsrv_can_run()) {
		tcase_add_unchecked_fixture(ls, lsrv_setup, lsrv_teardown);
		tcase_add_test(ls, test_llama_server_turns);
		tcase_add_test(ls, test_llama_server_killed);
	} else {
		testutil_skipped += 2;
		fprintf(stderr, "skipped: remote llama-server tests (the peer binary cannot run)\n");
	}
	suite_add_tcase(s, ls);
	return s;
}
