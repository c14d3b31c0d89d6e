/*
 * gemm_bench.c: single-thread GMAC/s of engine/gemm.c against a loop of
 * quant_vec_dot_n over weight rows, per weight type, on synthetic data.
 * Build by hand:
 *   cc -O3 -march=native -fopenmp -D_GNU_SOURCE -I. -o build/gemm_bench \
 *       bench/gemm_bench.c engine/gemm.c engine/gemm_avx2.c engine/quant.c \
 *       engine/quant_k.c engine/quantize_*.c engine/quant_simd.c \
 *       engine/quant_avx2.c engine/quant_avx512.c engine/cpu.c common/[a-z]*.c \
 *       -lm -lpthread
 * (prepare runs on the OpenMP team: OMP_NUM_THREADS=1 for one core.)
 * Usage: gemm_bench [n rows B reps]   (defaults 4096 4096 64 5)
 * Environment: GEMM_TYPES=Q4_0,Q6_K to choose types; GEMM_LEVEL=generic to
 * force a level; GEMM_BENCH_WALL=1 to time by wall clock instead of thread
 * CPU time.
 * Prints the best of reps runs of each, and the largest relative difference
 * between the two results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gemm.h"
#include "engine/quant.h"

/* Thread CPU time by default, so that other processes on a busy machine
 * do not count; GEMM_BENCH_WALL=1 for wall-clock time. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(bench_clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ULL;

static float
frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) * 0x1p-53 * 2 - 1);
}

static void
bench_type(int type, int n, int rows, int B, int reps)
{
	const struct quant_type *qt = quant_type_get(type);
	const struct quant_type *yt = quant_type_get(qt->vec_dot_type);
	const size_t rb = quant_row_size(type, n), yrb = quant_row_size(qt->vec_dot_type, n);
	float *wf = malloc((size_t)n * sizeof *wf);
	float *x = malloc((size_t)n * B * sizeof *x);
	unsigned char *w = malloc(rb * rows);
	unsigned char *y = malloc(yrb * B);
	size_t asz = gemm_act_size(type, n, B);
	void *act = aligned_alloc(64, (asz + 63) / 64 * 64);
	float *o1 = malloc((size_t)rows * B * sizeof *o1);
	float *o2 = malloc((size_t)rows * B * sizeof *o2);
	/* Quantize one random row of weights per 64 and repeat it (the
	 * reference K-quant fitters are slow), varied by row. */
	for (int r = 0; r < rows; r++) {
		if (r < 64) {
			for (int i = 0; i < n; i++)
				wf[i] = frand();
			qt->from_float(wf, w + rb * r, n);
		} else {
			memcpy(w + rb * r, w + rb * (r % 64), rb);
		}
	}
	for (size_t i = 0; i < (size_t)n * B; i++)
		x[i] = frand();
	for (int b = 0; b < B; b++)
		yt->from_float(x + (size_t)b * n, y + yrb * b, n);
	const double macs = (double)n * rows * B;

	double tp = 1e30, tg = 1e30, tb = 1e30;
	for (int rep = 0; rep < reps; rep++) {
		double t0 = now();
		gemm_act_prepare(type, n, x, B, act);
		double t1 = now();
		/* In chunks of 64 rows, as forward.c hands them to its threads. */
		for (int r = 0; r < rows; r += 64)
			gemm(type, n, w, rb, r, r + 64 < rows ? r + 64 : rows, act, B, o1, rows);
		double t2 = now();
		if (t1 - t0 < tp)
			tp = t1 - t0;
		if (t2 - t1 < tg)
			tg = t2 - t1;
	}
	quant_vec_dot_n_fn dn = quant_vec_dot_n(type);
	for (int rep = 0; rep < (reps + 1) / 2; rep++) {
		double t0 = now();
		for (int r = 0; r < rows; r++)
			dn(n, o2 + r, rows, w + rb * r, y, yrb, B);
		double t1 = now();
		if (t1 - t0 < tb)
			tb = t1 - t0;
	}
	double maxrel = 0;
	for (size_t i = 0; i < (size_t)rows * B; i++) {
		double d = fabs(o1[i] - o2[i]) / (fabs(o2[i]) + 1e-3);
		if (d > maxrel)
			maxrel = d;
	}
	printf("%-5s n=%d rows=%d B=%d  gemm %7.1f GMAC/s (%6.2f ms, prepare %.2f ms)"
	    "  vec_dot_n %6.1f GMAC/s  x%.1f  maxrel %.1e\n",
	    qt->name, n, rows, B, macs / tg * 1e-9, tg * 1e3, tp * 1e3,
	    macs / tb * 1e-9, tb / tg, maxrel);
	free(wf);
	free(x);
	free(w);
	free(y);
	free(act);
	free(o1);
	free(o2);
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4096;
	int rows = argc > 2 ? atoi(argv[2]) : 4096;
	int B = argc > 3 ? atoi(argv[3]) : 64;
	int reps = argc > 4 ? atoi(argv[4]) : 5;
	const char *only = getenv("GEMM_TYPES");
	if (getenv("GEMM_BENCH_WALL") != NULL && atoi(getenv("GEMM_BENCH_WALL")) != 0)
		bench_clock = CLOCK_MONOTONIC;
	if (getenv("GEMM_LEVEL") != NULL && gemm_force_level(getenv("GEMM_LEVEL")) != 0) {
		fprintf(stderr, "gemm_bench: level %s not available\n", getenv("GEMM_LEVEL"));
		return 1;
	}
	printf("gemm level %s, quant simd %s\n", gemm_level(), quant_simd_name());
	const int types[] = { QT_Q4_0, QT_Q8_0, QT_Q4_K, QT_Q6_K };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (only != NULL && strstr(only, quant_type_name(types[i])) == NULL)
			continue;
		bench_type(types[i], n, rows, B, reps);
	}
	return 0;
}
