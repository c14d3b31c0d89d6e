/*
 * prefetch_cold.c: how long the first use of a model file takes when none
 * of it is in the page cache, with each way of reading it in.
 *
 *   prefetch_cold MODE FILE     MODE: none, willneed, sequential, pread,
 *                               thread, warm
 *
 *   none        open the model and generate at once: the forward pass
 *               faults the mapped file in page by page, in the order the
 *               tensors are used (the kernel's default read-ahead)
 *   willneed    engine_prefetch (what -p, chat and the interface do): one
 *               pass front to back, MADV_WILLNEED a 64 MiB chunk ahead
 *   sequential  a pass front to back over a mapping with MADV_SEQUENTIAL
 *               (the kernel's larger read-ahead), no WILLNEED
 *   pread       read(2) the file front to back in 8 MiB requests
 *   thread      a thread pread()s the file front to back while the first
 *               token is generated at once
 *   warm        as none, but the cache is not dropped first (the floor)
 *
 * Before timing, the file's pages are dropped from the page cache
 * (posix_fadvise DONTNEED; it must not be mapped by another process), and
 * the pages still resident are counted (mincore) and printed: a run that
 * did not start cold says so.  Prints one line: mode, resident pages
 * before, ms to "model ready" (open and read-in done), ms to the first
 * token (from the start), and MB/s over the whole file.
 *
 * Only for files you own: dropping the cache of a shared file slows the
 * next user of it (copy it first).
 */
#include "engine/engine.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Pages of path in the page cache, of *total. */
static long
resident(const char *path, long *total)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	long pg = sysconf(_SC_PAGESIZE);
	size_t n = ((size_t)st.st_size + (size_t)pg - 1) / (size_t)pg;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	unsigned char *v = malloc(n);
	long r = 0;
	if (p != MAP_FAILED && v && mincore(p, (size_t)st.st_size, v) == 0)
		for (size_t i = 0; i < n; i++)
			r += v[i] & 1;
	if (p != MAP_FAILED)
		munmap(p, (size_t)st.st_size);
	free(v);
	*total = (long)n;
	return r;
}

static int
drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	fdatasync(fd);
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return rc;
}

static void
pread_all(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	const size_t chunk = (size_t)8 << 20;
	char *buf = malloc(chunk);
	off_t off = 0;
	ssize_t r;
	while (buf && (r = pread(fd, buf, chunk, off)) > 0)
		off += r;
	free(buf);
	close(fd);
}

static void
touch_sequential(const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return;
	size_t size = (size_t)st.st_size;
	const volatile unsigned char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return;
	madvise((void *)p, size, MADV_SEQUENTIAL);
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char sink = 0;
	for (size_t k = 0; k < size; k += (size_t)pg)
		sink ^= p[k];
	(void)sink;
	munmap((void *)p, size);
}

static void *
reader(void *arg)
{
	pread_all(arg);
	return NULL;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: prefetch_cold none|willneed|sequential|pread|thread|warm FILE\n");
		return 2;
	}
	const char *mode = argv[1], *path = argv[2];
	if (strcmp(mode, "none") && strcmp(mode, "willneed") && strcmp(mode, "sequential") && strcmp(mode, "pread") &&
	    strcmp(mode, "thread") && strcmp(mode, "warm")) {
		fprintf(stderr, "prefetch_cold: unknown mode '%s'\n", mode);
		return 2;
	}
	if (strcmp(mode, "warm") != 0 && drop_cache(path) != 0) {
		fprintf(stderr, "prefetch_cold: %s: cannot drop it from the page cache\n", path);
		return 1;
	}
	long total = 0, before = resident(path, &total);
	double t0 = now_ms();
	pthread_t th;
	int threaded = strcmp(mode, "thread") == 0 && pthread_create(&th, NULL, reader, (void *)path) == 0;
	char *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	if (m == NULL) {
		fprintf(stderr, "prefetch_cold: %s: %s\n", path, err);
		return 1;
	}
	if (strcmp(mode, "willneed") == 0)
		engine_prefetch(m, NULL, NULL);
	else if (strcmp(mode, "sequential") == 0)
		touch_sequential(path);
	else if (strcmp(mode, "pread") == 0)
		pread_all(path);
	double t_ready = now_ms() - t0;
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 256;
	struct engine_ctx *c = engine_ctx_new(m, &p, &err);
	int32_t *ids = NULL;
	int n = c ? engine_tokenize(m, "Hello", 5, 1, &ids) : -1;
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	struct engine_sampler *smp = engine_sampler_new(&s);
	struct engine_gen_params gp = { .max_tokens = 1 };
	struct engine_gen_stats st;
	int32_t *out = NULL;
	int nout = 0;
	if (n <= 0 || engine_generate(c, ids, n, smp, &gp, &st, &out, &nout, &err) != 0) {
		fprintf(stderr, "prefetch_cold: %s\n", err ? err : "cannot generate");
		return 1;
	}
	double t_first = now_ms() - t0;
	if (threaded)
		pthread_join(th, NULL);
	double t_all = now_ms() - t0;
	long after = resident(path, &total);
	printf("%-10s cold %ld/%ld pages  ready %8.0f ms  first token %8.0f ms  all read %8.0f ms (%ld/%ld pages "
	       "resident after)\n",
	    mode, before, total, t_ready, t_first, t_all, after, total);
	free(out);
	free(ids);
	engine_sampler_free(smp);
	engine_ctx_free(c);
	engine_close(m);
	return 0;
}
