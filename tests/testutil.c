/*
 * testutil.c: fixtures, golden data and temporary folders for the suites.
 */
#include "tests/testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/stat.h>

int testutil_skipped;

static const char *
fixtures_dir(void)
{
	const char *d = getenv("LLAMA2_CHAT_FIXTURES");
	return d && *d ? d : "../shared";
}

int
fixtures_present(void)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/models", fixtures_dir());
	return access(p, R_OK | X_OK) == 0;
}

char *
fixture_path(const char *rel)
{
	char *p;
	if (asprintf(&p, "%s/%s", fixtures_dir(), rel) < 0)
		return NULL;
	if (access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

void
testutil_add_fixture_test(TCase *tc, const TTest *fn, const char *name)
{
	if (fixtures_present()) {
		tcase_add_test(tc, fn);
		return;
	}
	testutil_skipped++;
	fprintf(stderr, "skipped: %s (no fixtures at %s)\n", name, fixtures_dir());
}

json_t *
golden_load(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, "golden/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "golden file %s missing", rel);
	json_error_t e;
	json_t *j = json_load_file(p, 0, &e);
	ck_assert_msg(j != NULL, "%s: %s", p, e.text);
	free(p);
	return j;
}

char *
tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *t;
	if (asprintf(&t, "%s/l2c-test-XXXXXX", base && *base ? base : "/tmp") < 0)
		return NULL;
	if (mkdtemp(t) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void
tmpdir_remove(char *path)
{
	if (path == NULL)
		return;
	/* Depth-first, without following links: only what we made. */
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "could not remove %s\n", path);
	free(path);
}

const char *
test_binary(void)
{
	const char *b = getenv("LLAMA2_CHAT_BIN");
	return b && *b ? b : "./llama2-chat";
}

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct buf {
	char *p;
	size_t n, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

int
run_binary(const char *const *argv, const char *stdin_data, char **out, char **err, const char *const *env,
    int timeout_s)
{
	int in[2], o[2], e[2];
	if (pipe(in) || pipe(o) || pipe(e))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		close(in[0]); close(in[1]); close(o[0]); close(o[1]); close(e[0]); close(e[1]);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		int n = 0;
		while (argv[n])
			n++;
		char **av = calloc((size_t)n + 1, sizeof *av);
		av[0] = (char *)test_binary();
		for (int i = 1; i < n; i++)
			av[i] = (char *)argv[i];
		execv(av[0], av);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	close(e[1]);
	signal(SIGPIPE, SIG_IGN);
	if (stdin_data) {
		size_t len = strlen(stdin_data), off = 0;
		while (off < len) {
			ssize_t w = write(in[1], stdin_data + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	close(in[1]);
	struct buf bo = { 0 }, be = { 0 };
	buf_add(&bo, "", 0);
	buf_add(&be, "", 0);
	struct pollfd p[2] = { { o[0], POLLIN, 0 }, { e[0], POLLIN, 0 } };
	time_t end = time(NULL) + timeout_s;
	int open_fds = 2, timed_out = 0;
	while (open_fds > 0) {
		int left = (int)(end - time(NULL));
		if (left <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, left * 1000) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			char tmp[4096];
			ssize_t r = read(p[i].fd, tmp, sizeof tmp);
			if (r <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			} else {
				buf_add(i ? &be : &bo, tmp, (size_t)r);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	int st = 0;
	waitpid(pid, &st, 0);
	if (out)
		*out = bo.p;
	else
		free(bo.p);
	if (err)
		*err = be.p;
	else
		free(be.p);
	if (timed_out)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *
fixture_tok512(const char *dir)
{
	char *src = fixture_path("models/tokenizer.bin"), *dst = NULL;
	if (src == NULL || asprintf(&dst, "%s/tok512.bin", dir) < 0) {
		free(src);
		return NULL;
	}
	FILE *f = fopen(src, "rb"), *g = fopen(dst, "wb");
	unsigned char hdr[8], buf[4096];
	int ok = f != NULL && g != NULL && fread(hdr, 1, 4, f) == 4 && fwrite(hdr, 1, 4, g) == 4;
	for (int i = 0; ok && i < 512; i++) {
		ok = fread(hdr, 1, 8, f) == 8 && fwrite(hdr, 1, 8, g) == 8;
		int32_t len;
		memcpy(&len, hdr + 4, 4);
		ok = ok && len >= 0 && (size_t)len <= sizeof buf && fread(buf, 1, (size_t)len, f) == (size_t)len &&
		    fwrite(buf, 1, (size_t)len, g) == (size_t)len;
	}
	if (f != NULL)
		fclose(f);
	if (g != NULL && fclose(g) != 0)
		ok = 0;
	free(src);
	if (!ok) {
		free(dst);
		return NULL;
	}
	return dst;
}

/* ---- other programs (the peers) ---- */

static char *
slurp_fd(int fd)
{
	struct buf b = { 0 };
	buf_add(&b, "", 0);
	char tmp[8192];
	ssize_t r;
	lseek(fd, 0, SEEK_SET);
	while ((r = read(fd, tmp, sizeof tmp)) > 0)
		buf_add(&b, tmp, (size_t)r);
	return b.p;
}

int
run_program(const char *const *argv, char **out, char **err)
{
	char o_name[] = "/tmp/l2c-out-XXXXXX", e_name[] = "/tmp/l2c-err-XXXXXX";
	int o = mkstemp(o_name), e = mkstemp(e_name);
	if (o < 0 || e < 0)
		return -1;
	unlink(o_name);
	unlink(e_name);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		dup2(nul, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st = -1;
	if (pid > 0)
		waitpid(pid, &st, 0);
	if (out)
		*out = slurp_fd(o);
	if (err)
		*err = slurp_fd(e);
	close(o);
	close(e);
	if (pid < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *
peer_program(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, "peers/llama.cpp-b4748/%s", name);
	char *p = fixture_path(rel);
	if (p == NULL)
		return NULL;
	/* --version: starts, prints, exits; a missing loader or an illegal
	 * instruction shows as 127 or a signal. */
	const char *argv[] = { p, "--version", NULL };
	int rc = run_program(argv, NULL, NULL);
	if (rc == 127 || rc == 126 || rc >= 128 || rc < 0) {
		free(p);
		return NULL;
	}
	return p;
}
