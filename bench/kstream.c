/*
 * kstream.c: what the decode kernels stream when nothing else runs, the
 * yardstick for a decoded token's structure.
 *
 *   kstream TYPE BYTES [REPS [CHUNK]]
 *
 * Each thread of the OpenMP team packs its own matrix of TYPE (q4_0, q8_0,
 * q4_k, q6_k) at the 1.1B width (n = 2048), BYTES / threads of packed
 * weights, 2 MiB aligned with MADV_HUGEPAGE as model_pack.c lays a model
 * out, and runs the one-token kernel (gemm_packed, B = 1) over all of it,
 * REPS passes in a row: one long stream per thread.  With CHUNK, each
 * pass is cut into runs of CHUNK rows a thread with a barrier after each,
 * as a token cuts its stream at each product.  Prints the best of three
 * timed runs in GB/s of packed weights, every thread's together (1e9
 * bytes, wall clock from barrier to barrier).
 *
 * Why: bwprobe says what memory gives a plain stream of loads; this says
 * what our kernels take from it.  A token that streams far less than
 * kstream over the same bytes in the same minute loses its time between
 * products (barriers, attention, norms), not in the kernels (note of
 * issue 16, 2026-12-05: the token 81-91% of kstream on 1.1B Q4_K_M).
 * Not part of `make bench`: a tool for working on forward_token.c.
 * Needs the avx512-vnni family, as packing does (exits 1 elsewhere).
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/clock.h"
#include "common/num.h"
#include "engine/gemm.h"
#include "engine/quant.h"

#define KS_N 2048
#define KS_ALIGN ((size_t)2 << 20)

/* 64 rows of random weights quantized by the type's own quantizer (the
 * K-quant fitters are slow), repeated: what the rows hold does not change
 * how fast they stream, and every scale is one the format allows. */
static void
ks_fill(uint8_t *w, size_t rows, size_t row_bytes, int type, uint64_t seed)
{
	float wf[KS_N];
	for (size_t r = 0; r < rows; r++) {
		if (r >= 64) {
			memcpy(w + r * row_bytes, w + (r % 64) * row_bytes, row_bytes);
			continue;
		}
		for (int i = 0; i < KS_N; i++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			wf[i] = (float)((double)(seed >> 11) * 0x1p-53 * 2 - 1);
		}
		quant_type_get(type)->from_float(wf, w + r * row_bytes, KS_N);
	}
}

static int
ks_type(const char *s)
{
	static const struct {
		const char *name;
		int type;
	} types[] = { { "q4_0", QT_Q4_0 }, { "q8_0", QT_Q8_0 }, { "q4_k", QT_Q4_K }, { "q6_k", QT_Q6_K } };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(s, types[i].name) == 0)
			return types[i].type;
	return -1;
}

int
main(int argc, char **argv)
{
	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: kstream q4_0|q8_0|q4_k|q6_k BYTES [REPS [CHUNK]]\n");
		return 2;
	}
	const int type = ks_type(argv[1]);
	long long bytes = 0, reps = 10, chunk_arg = 0;
	const char *bad = type < 0 ? "TYPE: not one of q4_0, q8_0, q4_k, q6_k"
	    : num_long(argv[2], (long long)1 << 20, (long long)1 << 40, &bytes) != 0
		? "BYTES: not a whole number from 1 MiB (1048576) to 1 TiB"
	    : argc > 3 && num_long(argv[3], 1, 1000000, &reps) != 0 ? "REPS: not a whole number from 1 to 1000000"
	    : argc > 4 && num_long(argv[4], 0, 1 << 30, &chunk_arg) != 0
		? "CHUNK: not a whole number of rows (0: no chunks)" : NULL;
	if (bad != NULL) {
		fprintf(stderr, "kstream: %s\n", bad);
		return 2;
	}
	if (gemm_pack_size(type, KS_N, 16) == 0) {
		fprintf(stderr, "kstream: this CPU has no packed kernels for %s (they need avx512-vnni)\n", argv[1]);
		return 1;
	}
	const int nt = omp_get_max_threads();
	const size_t tile = gemm_pack_size(type, KS_N, 16);
	const int rows = (int)((size_t)bytes / (size_t)nt / tile * 16);
	const int chunk = chunk_arg > 0 && chunk_arg < rows ? ((int)chunk_arg + 15) / 16 * 16 : rows;
	const size_t row_bytes = quant_row_size(type, KS_N), packed = gemm_pack_size(type, KS_N, rows);
	double best = 1e30, t0 = 0;
	int failed = 0;

	#pragma omp parallel reduction(|:failed)
	{
		const int id = omp_get_thread_num();
		uint8_t *w = malloc((size_t)rows * row_bytes);
		void *p = aligned_alloc(KS_ALIGN, (packed + KS_ALIGN - 1) / KS_ALIGN * KS_ALIGN);
		float x[KS_N], *out = malloc((size_t)rows * sizeof(float));
		void *act = aligned_alloc(64, (gemm_pack_act_size(type, KS_N, 1) + 63) / 64 * 64);
		/* A thread that could not allocate computes nothing but passes
		 * the same barriers as the others. */
		failed = w == NULL || p == NULL || out == NULL || act == NULL;
		if (!failed) {
			madvise(p, (packed + KS_ALIGN - 1) / KS_ALIGN * KS_ALIGN, MADV_HUGEPAGE);
			ks_fill(w, (size_t)rows, row_bytes, type, 88172645463325252ULL + (uint64_t)id);
			gemm_pack(type, KS_N, rows, w, row_bytes, p, 0, (rows + 15) / 16);
			for (int i = 0; i < KS_N; i++)
				x[i] = (float)((i * 37 + id) % 200 - 100) / 100.0f;
			gemm_pack_act_prepare(type, KS_N, x, 1, act);
			gemm_packed(type, KS_N, p, 0, rows, act, 1, out, 0);   /* warm-up pass */
		}
		for (int it = 0; it < 3; it++) {
			#pragma omp barrier
			#pragma omp master
			t0 = clock_now_ms() / 1e3;
			for (int r = 0; r < reps; r++)
				for (int c = 0; c < rows; c += chunk) {
					if (!failed)
						gemm_packed(type, KS_N, p, c, c + chunk < rows ? c + chunk : rows, act, 1, out, 0);
					if (chunk < rows) {
						#pragma omp barrier
					}
				}
			#pragma omp barrier
			#pragma omp master
			{
				const double t = clock_now_ms() / 1e3 - t0;
				if (t < best)
					best = t;
			}
		}
		free(w);
		free(p);
		free(out);
		free(act);
	}
	if (failed) {
		fprintf(stderr, "kstream: out of memory for %lld bytes\n", bytes);
		return 1;
	}
	printf("%.2f\n", (double)packed * nt * (double)reps / best / 1e9);
	fprintf(stderr, "kstream: %s, %d threads x %zu bytes packed (%d rows), %lld passes, chunk %d rows\n", argv[1], nt,
	    packed, rows, reps, chunk);
	return 0;
}
