/*
 * bwprobe.c: the memory read bandwidth the decode bound is measured
 * against, the way a decoded token reads its weights: T threads (OpenMP)
 * each stream through their own contiguous share of one buffer, once per
 * pass, with 32-byte loads summed so that nothing is optimised away.  The
 * buffer is as large as the bytes one token reads (argument), so the
 * caches help the probe exactly as much as they help the token.  Prints
 * the best of several passes in GB/s (1e9 bytes).
 *
 *   bwprobe BYTES [PASSES]
 */
#include <errno.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
bw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((target("avx2"))) static uint64_t
bw_read(const uint8_t *p, size_t n)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
	for (size_t i = 0; i + 128 <= n; i += 128) {
		a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
		a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
		a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
		a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
	}
	a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
	uint64_t r[4];
	_mm256_storeu_si256((__m256i *)r, a0);
	return r[0] + r[1] + r[2] + r[3];
}

/* A whole decimal number, or -1 (with a message naming the argument). */
static long long
bw_arg(const char *s, const char *name)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < 0) {
		fprintf(stderr, "bwprobe: %s: not a whole number: %s\n", name, s);
		return -1;
	}
	return v;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bwprobe BYTES [PASSES [GROUP]]\n");
		return 2;
	}
	long long nb = bw_arg(argv[1], "BYTES");
	long long passes = argc > 2 ? bw_arg(argv[2], "PASSES") : 5;
	long long group = argc > 3 ? bw_arg(argv[3], "GROUP") : 0;     /* 0: best single pass */
	if (nb < 0 || passes < 0 || group < 0)
		return 2;
	if (passes == 0 || argc > 4) {
		fprintf(stderr, argc > 4 ? "usage: bwprobe BYTES [PASSES [GROUP]]\n" : "bwprobe: PASSES: must be at least 1\n");
		return 2;
	}
	size_t n = (size_t)nb;
	if (n < ((size_t)64 << 20))
		n = (size_t)64 << 20;
	n &= ~(size_t)4095;
	uint8_t *buf = aligned_alloc(4096, n);
	if (buf == NULL) {
		fprintf(stderr, "bwprobe: out of memory for %zu bytes\n", n);
		return 1;
	}
	/* Touch every page from the thread that will read it (first touch). */
	#pragma omp parallel
	{
		int t = omp_get_thread_num(), nt = omp_get_num_threads();
		size_t lo = n / (size_t)nt * (size_t)t & ~(size_t)127, hi = t == nt - 1 ? n : n / (size_t)nt * (size_t)(t + 1) & ~(size_t)127;
		memset(buf + lo, t + 1, hi - lo);
	}
	/* One warm-up pass when sustained (as bench's warm-up run), then
	 * `passes` timed runs: each a single pass, or `group` passes. */
	double best = 0, sum = 0;
	uint64_t sink = 0;
	for (long long r = group > 0 ? -1 : 0; r < passes; r++) {
		const long long k = r < 0 || group == 0 ? 1 : group;
		double t0 = bw_now();
		#pragma omp parallel reduction(+:sink)
		{
			int t = omp_get_thread_num(), nt = omp_get_num_threads();
			size_t lo = n / (size_t)nt * (size_t)t & ~(size_t)127, hi = t == nt - 1 ? n : n / (size_t)nt * (size_t)(t + 1) & ~(size_t)127;
			/* No barrier between passes: the bound is what memory
			 * gives when no thread ever waits for another. */
			/* The empty asm says memory may have changed: without it
			 * gcc may see bw_read as pure and read the buffer once for
			 * all k passes (built without -march=native, -O2 did, and
			 * reported 7,800 GB/s). */
			for (long long i = 0; i < k; i++) {
				sink += bw_read(buf + lo, hi - lo);
				__asm__ volatile("" ::: "memory");
			}
		}
		double gbs = (double)n * (double)k / (bw_now() - t0) / 1e9;
		if (r < 0)
			continue;
		sum += gbs;
		if (gbs > best)
			best = gbs;
	}
	printf("%.2f\n", group > 0 ? sum / (double)passes : best);
	fprintf(stderr, "bwprobe: %zu bytes, %d threads, %s, sink %llu\n", n, omp_get_max_threads(),
	    group > 0 ? "mean of runs" : "best pass", (unsigned long long)(sink & 1));
	free(buf);
	return 0;
}
