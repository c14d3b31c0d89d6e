/*
 * check_chat.c: the chat engine: Meta's template, the cache reused across
 * turns (equal to a fresh prefill), regenerate, stop, context overflow and
 * the worker's events.
 */
#include "tests/testutil.h"
#include "engine/chat.h"
#include "engine/worker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct engine_model *
open_fixture(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "%s missing", rel);
	char *err = NULL;
	struct engine_model *m = engine_open(p, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	free(p);
	return m;
}

static struct engine_sampling
greedy(void)
{
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	return s;
}

START_TEST(test_render_golden_api)
{
	json_t *g = golden_load("tokenizer.json");
	json_t *chats = json_object_get(g, "chat");
	struct engine_model *m = open_fixture("llama-2-tiny-random.gguf");
	for (size_t i = 0; i < json_array_size(chats); i++) {
		json_t *msgs = json_object_get(json_array_get(chats, i), "messages");
		json_t *want = json_object_get(json_array_get(chats, i), "ids");
		int n = (int)json_array_size(msgs), roles[16];
		const char *contents[16];
		for (int k = 0; k < n; k++) {
			roles[k] = chat_role_parse(json_string_value(json_object_get(json_array_get(msgs, k), "role")));
			contents[k] = json_string_value(json_object_get(json_array_get(msgs, k), "content"));
		}
		int32_t *ids;
		int nid;
		char *err = NULL;
		ck_assert_msg(chat_render(m, roles, contents, n, &ids, &nid, NULL, &err) == 0, "%s", err);
		ck_assert_int_eq(nid, (int)json_array_size(want));
		for (int k = 0; k < nid; k++)
			ck_assert_msg(ids[k] == json_integer_value(json_array_get(want, (size_t)k)), "chat %zu token %d", i, k);
		free(ids);
	}
	/* Order errors name the message. */
	int bad_roles[][3] = { { CHAT_USER, CHAT_USER, -1 }, { CHAT_ASSISTANT, -1, -1 },
		{ CHAT_USER, CHAT_SYSTEM, -1 }, { CHAT_SYSTEM, -1, -1 }, { CHAT_USER, CHAT_ASSISTANT, -1 } };
	const char *c3[3] = { "a", "b", "c" };
	for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
		int n = bad_roles[i][1] < 0 ? 1 : bad_roles[i][2] < 0 ? 2 : 3;
		int32_t *ids = NULL;
		int nid;
		char *err = NULL;
		ck_assert_msg(chat_render(m, bad_roles[i], c3, n, &ids, &nid, NULL, &err) == -1, "case %zu accepted", i);
		ck_assert_ptr_nonnull(err);
		free(err);
	}
	engine_close(m);
	json_decref(g);
}
END_TEST

/*
 * Three turns with the cache reused; then the same conversation prefilled
 * from nothing.  The last position's logits must agree (1e-4).  The float
 * model shows it plainly; on a quantized one the one-token decode kernel and
 * the batched GEMM sum a row's blocks in different orders, and a last-bit
 * difference can flip an 8-bit activation (see check_model.c), so there the
 * bound is that of such a flip and the argmax must agree.
 */
static void
reuse_vs_fresh(const char *fixture, double tol)
{
	struct engine_model *m = open_fixture(fixture);
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	p.n_batch = 16;
	char *err = NULL;
	struct engine_ctx *c = engine_ctx_new(m, &p, &err);
	struct chat ch;
	chat_init(&ch);
	chat_set_system(&ch, "You are terse.");
	struct engine_sampling s = greedy();
	const char *turns[3] = { "Hello, who are you?", "Tell me about the sea.", "And the sky?" };
	int32_t *ids = NULL;
	int n = 0, dropped;
	for (int t = 0; t < 3; t++) {
		chat_push(&ch, CHAT_USER, turns[t], NULL, 0);
		free(ids);
		ck_assert_int_eq(chat_build(&ch, m, 512, 64, &ids, &n, &dropped, &err), 0);
		struct engine_sampler *smp = engine_sampler_new(&s);
		struct engine_gen_params gp = { .max_tokens = 10 };
		struct engine_gen_stats st;
		int32_t *out;
		int nout;
		ck_assert_int_eq(engine_generate(c, ids, n, smp, &gp, &st, &out, &nout, &err), 0);
		if (t > 0)
			ck_assert_msg(st.n_reused > 0 && st.n_prompt < n / 2, "turn %d: prefilled %d of %d", t + 1,
			    st.n_prompt, n);
		engine_sampler_free(smp);
		if (nout == 0 || out[nout - 1] != engine_info(m)->eos) {
			out = realloc(out, (size_t)(nout + 1) * sizeof *out);
			out[nout++] = engine_info(m)->eos;
		}
		chat_push(&ch, CHAT_ASSISTANT, "", out, nout);
		free(out);
	}
	/* Turn 4's prompt: the cache has all but its new tokens. */
	chat_push(&ch, CHAT_USER, "Thanks.", NULL, 0);
	free(ids);
	ck_assert_int_eq(chat_build(&ch, m, 512, 64, &ids, &n, &dropped, &err), 0);
	int common = engine_ctx_common_prefix(c, ids, n);
	ck_assert_int_gt(common, n / 2);
	engine_ctx_truncate(c, common);
	ck_assert_int_eq(engine_decode(c, ids + common, n - common, 0, NULL, &err), 0);
	int vocab = engine_info(m)->n_vocab;
	float *reused = malloc((size_t)vocab * sizeof *reused);
	memcpy(reused, engine_logits(c, 0), (size_t)vocab * sizeof *reused);

	struct engine_ctx *fresh = engine_ctx_new(m, &p, &err);
	ck_assert_int_eq(engine_decode(fresh, ids, n, 0, NULL, &err), 0);
	double worst = 0;
	for (int i = 0; i < vocab; i++)
		worst = fmax(worst, fabs(reused[i] - engine_logits(fresh, 0)[i]));
	ck_assert_msg(worst <= tol, "%s: reused vs fresh logits differ by %g", fixture, worst);
	free(reused);
	free(ids);
	chat_free(&ch);
	engine_ctx_free(fresh);
	engine_ctx_free(c);
	engine_close(m);
}

START_TEST(test_reuse_equals_fresh_prefill)
{
	reuse_vs_fresh("fixture-f32.gguf", 1e-4);
	reuse_vs_fresh("fixture-q4_k_m.gguf", 0.35);
}
END_TEST

/* Collect a worker's events until DONE/ERROR for seq. */
struct reply {
	int32_t ids[512];
	int n;
	char text[4096];
	int done, error, overflow, progress;
	struct engine_gen_stats st;
};

static void
await(struct worker *w, int seq, struct reply *r)
{
	memset(r, 0, sizeof *r);
	struct worker_event ev;
	while (!r->done && !r->error) {
		ck_assert_msg(worker_wait(w, &ev, 60000), "no event within 60 s");
		if (ev.seq == seq) {
			switch (ev.type) {
			case WEV_TOKEN:
				strncat(r->text, ev.text, sizeof r->text - strlen(r->text) - 1);
				break;
			case WEV_DONE:
				r->done = 1;
				r->n = ev.n_ids < 512 ? ev.n_ids : 512;
				memcpy(r->ids, ev.ids, (size_t)r->n * sizeof *r->ids);
				r->st = ev.stats;
				break;
			case WEV_ERROR:
				r->error = 1;
				snprintf(r->text, sizeof r->text, "%s", ev.text);
				break;
			case WEV_OVERFLOW:
				r->overflow += ev.dropped;
				break;
			case WEV_PROGRESS:
				r->progress++;
				break;
			default:
				break;
			}
		}
		worker_event_free(&ev);
	}
}

START_TEST(test_worker_regenerate_and_edit)
{
	struct engine_model *m = open_fixture("fixture-q8_0.gguf");
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	ck_assert_ptr_nonnull(w);
	struct engine_sampling s = greedy();
	struct reply a, b, c2, d;
	await(w, worker_send(w, "What is a fixture?", &s, 16), &a);
	ck_assert_msg(a.done && a.n > 0, "%s", a.text);
	ck_assert_int_eq(a.ids[a.n - 1], engine_info(m)->eos);   /* closed by EOS */
	/* Regenerate trims the reply and recomputes only after the user turn. */
	await(w, worker_regenerate(w, &s, 16), &b);
	ck_assert(b.done);
	ck_assert_int_eq(b.n, a.n);
	ck_assert_mem_eq(a.ids, b.ids, (size_t)a.n * sizeof a.ids[0]);
	ck_assert_str_eq(a.text, b.text);
	ck_assert_int_le(b.st.n_prompt, 1);
	/* A second turn, then edit the first message: equals a fresh worker
	 * sent the edited message. */
	await(w, worker_send(w, "And another?", &s, 8), &c2);
	ck_assert(c2.done);
	await(w, worker_edit(w, 0, "What is a test?", &s, 16), &d);
	ck_assert(d.done);
	struct worker *w2 = worker_new(m, &p, &err);
	struct reply e;
	await(w2, worker_send(w2, "What is a test?", &s, 16), &e);
	ck_assert_int_eq(d.n, e.n);
	ck_assert_mem_eq(d.ids, e.ids, (size_t)d.n * sizeof d.ids[0]);
	/* A reply cannot be sent while the last message is unanswered: errors
	 * are events, never crashes. */
	struct reply f;
	await(w2, worker_regenerate(w2, &s, 4), &f);
	ck_assert(f.done);
	worker_free(w2);
	worker_free(w);
	engine_close(m);
}
END_TEST

/* Out of memory for the finished reply's event (worker_test_fail_events):
 * the caller gets an error for that request, worker_wait returns, and the
 * worker's conversation is as before it: the same message sent again is
 * answered from the same prompt as by a fresh worker. */
START_TEST(test_worker_done_lost)
{
	struct engine_model *m = open_fixture("fixture-q8_0.gguf");
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	ck_assert_ptr_nonnull(w);
	struct engine_sampling s = greedy();
	struct reply a, b, ref;
	worker_test_fail_events(w, WEV_DONE, 0, 1);
	await(w, worker_send(w, "What is a fixture?", &s, 8), &a);
	ck_assert_msg(a.error && !a.done, "the lost end did not become an error");
	ck_assert_ptr_nonnull(strstr(a.text, "out of memory"));
	/* (The worker may still be taking the turn back: the next request
	 * queues behind that.) */
	await(w, worker_send(w, "What is a fixture?", &s, 8), &b);
	ck_assert_msg(b.done, "%s", b.text);
	struct worker *w2 = worker_new(m, &p, &err);
	ck_assert_ptr_nonnull(w2);
	await(w2, worker_send(w2, "What is a fixture?", &s, 8), &ref);
	ck_assert(ref.done);
	ck_assert_int_eq(b.st.n_prompt + b.st.n_reused, ref.st.n_prompt + ref.st.n_reused);
	ck_assert_int_eq(b.n, ref.n);
	ck_assert_mem_eq(b.ids, ref.ids, (size_t)b.n * sizeof b.ids[0]);
	worker_free(w2);
	worker_free(w);
	engine_close(m);
}
END_TEST

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Stop during generation and during prompt processing: the worker answers
 * with DONE (reason: user) within 50 ms of the request. */
START_TEST(test_worker_stop)
{
	struct engine_model *m = open_fixture("fixture-f32.gguf");
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 2048;
	p.n_batch = 1;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	struct engine_sampling s = greedy();
	/* Generation: wait for the first token, then stop. */
	int seq = worker_send(w, "Go on forever.", &s, 400);
	struct worker_event ev;
	int got_token = 0;
	while (!got_token) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_DONE && ev.type != WEV_ERROR, "reply ended before a token");
		got_token = ev.type == WEV_TOKEN;
		worker_event_free(&ev);
	}
	double t0 = now_ms();
	worker_stop(w);
	struct reply r;
	await(w, seq, &r);
	double dt = now_ms() - t0;
	ck_assert(r.done);
	ck_assert_int_eq(r.st.reason, ENGINE_STOP_USER);
	ck_assert_msg(dt < 50, "stop took %.1f ms", dt);
	ck_assert_int_lt(r.n, 400);
	/* Prompt processing: a long message, one token per forward pass. */
	char big[2400];
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = "abcdefgh "[i % 9];
	big[sizeof big - 1] = '\0';
	seq = worker_send(w, big, &s, 4);
	int progressed = 0;
	while (!progressed) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_DONE && ev.type != WEV_ERROR, "no prompt processing seen");
		progressed = ev.type == WEV_PROGRESS && ev.done < ev.total / 2;
		worker_event_free(&ev);
	}
	t0 = now_ms();
	worker_stop(w);
	await(w, seq, &r);
	dt = now_ms() - t0;
	ck_assert(r.done);
	ck_assert_int_eq(r.st.reason, ENGINE_STOP_USER);
	ck_assert_msg(dt < 50, "stop during prefill took %.1f ms", dt);
	/* The worker stays usable. */
	struct reply after;
	await(w, worker_send(w, "Short.", &s, 4), &after);
	ck_assert_msg(after.done || after.error, "worker stuck");
	worker_free(w);
	engine_close(m);
}
END_TEST

/* The window overflows: whole exchanges go, the system prompt stays. */
START_TEST(test_overflow_keeps_system)
{
	struct engine_model *m = open_fixture("fixture-q4_0.gguf");
	struct chat ch;
	chat_init(&ch);
	chat_set_system(&ch, "SYSTEM RULES");
	char *err = NULL;
	for (int i = 0; i < 12; i++) {
		char u[64];
		snprintf(u, sizeof u, "message number %d with some words", i);
		chat_push(&ch, CHAT_USER, u, NULL, 0);
		chat_push(&ch, CHAT_ASSISTANT, "a reply of several words to it", NULL, 0);
	}
	chat_push(&ch, CHAT_USER, "the last question", NULL, 0);
	int32_t *ids;
	int n, dropped;
	ck_assert_int_eq(chat_build(&ch, m, 256, 32, &ids, &n, &dropped, &err), 0);
	ck_assert_int_gt(dropped, 0);
	ck_assert_int_eq(dropped % 2, 0);
	ck_assert_int_le(n + 32, 256);
	/* It starts with the folded system prompt. */
	char *text = engine_detokenize(m, ids, n < 40 ? n : 40);
	ck_assert_msg(strncmp(text, "[INST] <<SYS>>\nSYSTEM RULES\n<</SYS>>", 34) == 0, "starts: %s", text);
	free(text);
	text = engine_detokenize(m, ids, n);
	ck_assert_ptr_nonnull(strstr(text, "the last question [/INST]"));
	ck_assert_ptr_null(strstr(text, "message number 0 "));
	free(text);
	free(ids);
	/* One message longer than the window: a clear error. */
	chat_truncate(&ch, 0);
	ch.first = 0;
	char huge[3000];
	memset(huge, 'x', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	chat_push(&ch, CHAT_USER, huge, NULL, 0);
	ck_assert_int_eq(chat_build(&ch, m, 256, 32, &ids, &n, &dropped, &err), -1);
	ck_assert_msg(strstr(err, "too long") != NULL, "%s", err);
	free(err);
	chat_free(&ch);
	engine_close(m);
}
END_TEST

Suite *chat_suite(void);

Suite *
chat_suite(void)
{
	Suite *s = suite_create("chat");
	TCase *tc = tcase_create("chat");
	tcase_set_timeout(tc, 300);
	tcase_add_fixture_test(tc, test_render_golden_api);
	tcase_add_fixture_test(tc, test_reuse_equals_fresh_prefill);
	tcase_add_fixture_test(tc, test_worker_regenerate_and_edit);
	tcase_add_fixture_test(tc, test_worker_done_lost);
	tcase_add_fixture_test(tc, test_worker_stop);
	tcase_add_fixture_test(tc, test_overflow_keeps_system);
	suite_add_tcase(s, tc);
	return s;
}
