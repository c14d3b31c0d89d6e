/*
 * bench.c: `llama2-chat bench`, measured the way llama-bench measures, so
 * the two can be put side by side: pp = P prompt tokens processed from an
 * empty cache in batches; tg = N tokens decoded one at a time; each
 * repeated r times (after one warm-up run), reported as mean ± standard
 * deviation of tokens per second.  Token ids are fixed pseudo-random ones:
 * speed does not depend on which tokens they are.
 */
#include "app/cmd_engine.h"
#include "engine/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
mean_sd(const double *x, int n, double *mean, double *sd)
{
	double s = 0, ss = 0;
	for (int i = 0; i < n; i++)
		s += x[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		ss += (x[i] - *mean) * (x[i] - *mean);
	*sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* One pp run: tokens/s, or -1 on error. */
static double
run_pp(struct engine_ctx *c, const int32_t *ids, int n)
{
	engine_ctx_truncate(c, 0);
	double t = now_s();
	if (engine_decode(c, ids, n, 0, NULL, NULL) != 0)
		return -1;
	return n / (now_s() - t);
}

static double
run_tg(struct engine_ctx *c, const int32_t *ids, int n)
{
	engine_ctx_truncate(c, 0);
	double t = now_s();
	for (int i = 0; i < n; i++)
		if (engine_decode(c, &ids[i], 1, 0, NULL, NULL) != 0)
			return -1;
	return n / (now_s() - t);
}

int
cmd_bench(struct opts *o)
{
	/* As llama-bench: -p 0 or -n 0 leaves that test out; -p alone measures
	 * the prompt only. */
	int P = o->bench_p_set ? o->n_prompt_bench : 512;
	int N = o->bench_n_set ? o->n_gen_bench : o->bench_p_set ? 0 : 128;
	if (P == 0 && N == 0) {
		fprintf(stderr, "llama2-chat: bench: -p 0 with -n 0 leaves nothing to measure\n");
		return 2;
	}
	int R = o->reps > 0 ? o->reps : 5;
	int status = 0;
	struct engine_model *m = cli_open_model(o, &status);
	if (m == NULL)
		return status;
	const struct engine_info *in = engine_info(m);
	struct opts co = *o;
	if (co.ctx_size <= 0)
		co.ctx_size = (P > N ? P : N) + 8;
	struct engine_ctx *c = cli_new_ctx(m, &co, &status);
	if (c == NULL) {
		engine_close(m);
		return status;
	}
	int nmax = P > N ? P : N;
	int32_t *ids = malloc((size_t)nmax * sizeof *ids);
	uint32_t x = 42;
	for (int i = 0; i < nmax; i++) {
		x = x * 1664525u + 1013904223u;
		ids[i] = (int32_t)(3 + (x >> 8) % (uint32_t)(in->n_vocab - 3));
	}
	double *pp = calloc((size_t)R, sizeof *pp), *tg = calloc((size_t)R, sizeof *tg);
	double pp_m = 0, pp_sd = 0, tg_m = 0, tg_sd = 0;
	if (P > 0) {
		run_pp(c, ids, P < 16 ? P : 16);   /* warm-up: page in the weights */
		for (int r = 0; r < R; r++)
			pp[r] = run_pp(c, ids, P);
		mean_sd(pp, R, &pp_m, &pp_sd);
	}
	if (N > 0) {
		run_tg(c, ids, N < 4 ? N : 4);
		for (int r = 0; r < R; r++)
			tg[r] = run_tg(c, ids, N);
		mean_sd(tg, R, &tg_m, &tg_sd);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double gbs = tg_m * (double)in->token_bytes / 1e9;
	int threads = engine_ctx_threads(c);
	if (o->json) {
		printf("{\"model\": \"%s\", \"type\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"threads\": %d, "
		    "\"pp\": %d, \"tg\": %d, \"reps\": %d, \"pp_tps\": %.3f, \"pp_tps_sd\": %.3f, \"tg_tps\": %.3f, "
		    "\"tg_tps_sd\": %.3f, \"bytes_per_token\": %llu, \"tg_gbps\": %.2f, \"max_rss_kb\": %ld, \"isa\": \"%s\"}\n",
		    o->model, in->main_type, (unsigned long long)in->file_size, (unsigned long long)in->n_params, threads,
		    P, N, R, pp_m, pp_sd, tg_m, tg_sd, (unsigned long long)in->token_bytes, gbs, ru.ru_maxrss,
		    cpu_isa_name(cpu_isa()));
	} else {
		printf("| model | type | size | threads | test | t/s | read/token | GB/s |\n");
		printf("|---|---|---|---|---|---|---|---|\n");
		if (P > 0)
			printf("| %s | %s | %.2f GB | %d | pp%d | %.2f ± %.2f | | |\n", in->name, in->main_type,
			    in->file_size / 1e9, threads, P, pp_m, pp_sd);
		if (N > 0)
			printf("| %s | %s | %.2f GB | %d | tg%d | %.2f ± %.2f | %.2f GB | %.1f |\n", in->name, in->main_type,
			    in->file_size / 1e9, threads, N, tg_m, tg_sd, in->token_bytes / 1e9, gbs);
	}
	free(pp);
	free(tg);
	free(ids);
	engine_ctx_free(c);
	engine_close(m);
	return 0;
}
