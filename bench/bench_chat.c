/*
 * bench_chat.c: what a user feels in a conversation.
 *
 *   bench_chat ttft MODEL        time to first token of turns 1..20 of a
 *                                scripted chat, with the cache reused across
 *                                turns and with a fresh prefill every turn
 *   bench_chat resume MODEL DIR  a 3,000-token conversation reopened: time to
 *                                first token with its KV snapshot and without
 *   bench_chat stop MODEL        how long a stop takes during prompt
 *                                processing and during generation
 *
 * Threads: all physical cores (the engine's default).  Prints Markdown tables.
 */
#include "engine/chat.h"
#include "engine/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *questions[] = {
	"What is the capital of France, and why did it become the capital?",
	"Tell me about the history of the Eiffel Tower in a few sentences.",
	"How tall is it compared with other towers in Europe?",
	"What materials were used to build it, and where did they come from?",
	"Who designed it and what else did that engineer build?",
	"How many people visit it every year, roughly?",
	"Is it true that it grows in summer? Explain the physics.",
	"What is the best time of day to visit and why?",
	"Recommend three museums nearby with one line each.",
	"Summarize what we talked about so far in two sentences.",
	"Now translate that summary into Spanish, please.",
	"And into German, keeping the same tone.",
	"Which of those languages is closest to English, and why?",
	"Give me a short poem about the river that runs through the city.",
	"Make the poem rhyme and keep it to four lines.",
	"What food should I try there, on a small budget?",
	"How do I get from the airport to the city centre?",
	"What should I pack for a week in October?",
	"Any advice on tipping at restaurants?",
	"Thanks! One last tip for a first-time visitor?",
};

static struct engine_sampling
greedy(void)
{
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	return s;
}

/* One turn: build the prompt, generate `reply` tokens; returns the ttft. */
static double
turn(struct engine_ctx *c, struct engine_model *m, struct chat *ch, const char *q, int reply, int *prefill)
{
	int32_t *ids = NULL, *out = NULL;
	int n = 0, dropped = 0, nout = 0;
	char *err = NULL;
	chat_push(ch, CHAT_USER, q, NULL, 0);
	if (chat_build(ch, m, engine_ctx_size(c), reply + 8, &ids, &n, &dropped, &err) != 0) {
		fprintf(stderr, "bench_chat: %s\n", err);
		exit(1);
	}
	struct engine_sampling s = greedy();
	struct engine_sampler *smp = engine_sampler_new(&s);
	struct engine_gen_params gp = { .max_tokens = reply };
	struct engine_gen_stats st;
	if (engine_generate(c, ids, n, smp, &gp, &st, &out, &nout, &err) != 0) {
		fprintf(stderr, "bench_chat: %s\n", err);
		exit(1);
	}
	if (nout == 0 || out[nout - 1] != engine_info(m)->eos) {
		out = realloc(out, (size_t)(nout + 1) * sizeof *out);
		out[nout++] = engine_info(m)->eos;
	}
	chat_push(ch, CHAT_ASSISTANT, "", out, nout);
	*prefill = st.n_prompt;
	engine_sampler_free(smp);
	free(out);
	free(ids);
	return st.ttft_ms;
}

static int
bench_ttft(struct engine_model *m)
{
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 4096;
	char *err = NULL;
	struct engine_ctx *reuse = engine_ctx_new(m, &p, &err), *fresh = engine_ctx_new(m, &p, &err);
	if (!reuse || !fresh) {
		fprintf(stderr, "bench_chat: %s\n", err);
		return 1;
	}
	struct chat a, b;
	chat_init(&a);
	chat_init(&b);
	chat_set_system(&a, "You are a helpful travel assistant.");
	chat_set_system(&b, "You are a helpful travel assistant.");
	printf("| turn | prefill (reuse) | ttft reuse ms | prefill (fresh) | ttft fresh ms |\n|---|---|---|---|---|\n");
	for (int t = 0; t < 20; t++) {
		int pr, pf;
		double tr = turn(reuse, m, &a, questions[t], 16, &pr);
		engine_ctx_truncate(fresh, 0);      /* forget everything: the no-reuse case */
		double tf = turn(fresh, m, &b, questions[t], 16, &pf);
		printf("| %d | %d | %.0f | %d | %.0f |\n", t + 1, pr, tr, pf, tf);
		fflush(stdout);
	}
	chat_free(&a);
	chat_free(&b);
	engine_ctx_free(reuse);
	engine_ctx_free(fresh);
	return 0;
}

static int
bench_resume(struct engine_model *m, const char *dir)
{
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 4096;
	char *err = NULL, *path;
	if (asprintf(&path, "%s/resume-bench.kv", dir) < 0)
		return 1;
	/* A 3,000-token conversation (pseudo-random ids: the cost does not
	 * depend on them), then a new 20-token message. */
	int n = 3000, extra = 20;
	int32_t *ids = malloc((size_t)(n + extra) * sizeof *ids);
	ids[0] = 1;
	for (int i = 1; i < n + extra; i++)
		ids[i] = 3 + (int32_t)((i * 7919u) % (uint32_t)(engine_info(m)->n_vocab - 3));
	struct engine_ctx *c = engine_ctx_new(m, &p, &err);
	double t0 = now_ms();
	engine_decode(c, ids, n + extra, 0, NULL, &err);
	double full = now_ms() - t0;
	engine_ctx_truncate(c, n);
	if (engine_ctx_save(c, path, &err) != 0) {
		fprintf(stderr, "bench_chat: %s\n", err);
		return 1;
	}
	engine_ctx_free(c);
	/* Reopen: a fresh context, as after starting the program again. */
	struct engine_ctx *r = engine_ctx_new(m, &p, &err);
	t0 = now_ms();
	char *why = NULL;
	int got = engine_ctx_load(r, path, ids, n + extra, &why);
	double tl = now_ms() - t0;
	engine_decode(r, ids + got, n + extra - got, 0, NULL, &err);
	double with = now_ms() - t0;
	long long size = 0;
	FILE *f = fopen(path, "rb");
	if (f) {
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fclose(f);
	}
	printf("| resume of %d tokens + %d new | time to first token | snapshot |\n|---|---|---|\n", n, extra);
	printf("| without snapshot (prefill all) | %.0f ms | |\n", full);
	printf("| with snapshot (read %d, prefill %d) | %.0f ms | %.1f MiB, read in %.0f ms |\n", got,
	    n + extra - got, with, size / 1048576.0, tl);
	unlink(path);
	free(path);
	free(ids);
	engine_ctx_free(r);
	return got == n ? 0 : 1;
}

static int
bench_stop(struct engine_model *m)
{
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 2048;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	struct engine_sampling s = greedy();
	char big[4000];
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = "the quick brown fox "[i % 20];
	big[sizeof big - 1] = '\0';
	double lat[2] = { 0, 0 };
	for (int phase = 0; phase < 2; phase++) {
		int seq = worker_send(w, phase ? "Tell me a long story." : big, &s, 2000);
		struct worker_event ev;
		/* Stop once prompt processing is under way / the first token is out. */
		for (;;) {
			worker_wait(w, &ev, -1);
			int go = phase ? ev.type == WEV_TOKEN : ev.type == WEV_PROGRESS;
			int end = ev.type == WEV_DONE || ev.type == WEV_ERROR;
			worker_event_free(&ev);
			if (go || end)
				break;
		}
		double t0 = now_ms();
		worker_stop(w);
		for (;;) {
			worker_wait(w, &ev, -1);
			int end = ev.seq == seq && (ev.type == WEV_DONE || ev.type == WEV_ERROR);
			worker_event_free(&ev);
			if (end)
				break;
		}
		lat[phase] = now_ms() - t0;
	}
	printf("| stop during | latency |\n|---|---|\n| prompt processing | %.1f ms |\n| generation | %.1f ms |\n",
	    lat[0], lat[1]);
	worker_free(w);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_chat ttft|resume|stop MODEL [DIR]\n");
		return 2;
	}
	char *err = NULL;
	struct engine_model *m = engine_open(argv[2], NULL, &err);
	if (m == NULL) {
		fprintf(stderr, "bench_chat: %s: %s\n", argv[2], err);
		return 1;
	}
	int rc = !strcmp(argv[1], "ttft") ? bench_ttft(m) : !strcmp(argv[1], "resume") ?
	    bench_resume(m, argc > 3 ? argv[3] : "/tmp") : bench_stop(m);
	engine_close(m);
	return rc;
}
