/*
 * testutil.c: fixtures, golden data and temporary folders for the suites,
 * running programs, and the interface in a private tmux server.
 */
#include "tests/testutil.h"
#include "common/clock.h"
#include "storage/db.h"

#include <stdarg.h>
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

/* ---- the interface in a private tmux server ------------------------------------ */

int
test_sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	va_start(ap, fmt);
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	int rc = system(cmd);
	free(cmd);
	return rc;
}

int
tmux_available(void)
{
	return system("command -v tmux >/dev/null 2>&1") == 0;
}

void
tmux_start(const char *sock, const char *dir, int run, int w, int h, const char *env, const char *db,
    const char *args)
{
	/* The script runs in dir: the binary by its absolute path. */
	char *bin = realpath(test_binary(), NULL);
	ck_assert_msg(bin != NULL, "no binary at %s", test_binary());
	char *script;
	ck_assert_int_ge(asprintf(&script, "%s/run%d.sh", dir, run), 0);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "export XDG_CONFIG_HOME='%s/config' XDG_DATA_HOME='%s/data' XDG_STATE_HOME='%s/state' "
	    "XDG_CACHE_HOME='%s/cache' HOME='%s' LANG=C.UTF-8 LC_ALL=C.UTF-8\n"
	    "unset LLAMA2_CHAT_MODEL LLAMA2_CHAT_DB LLAMA2_CHAT_API_KEY OPENAI_API_KEY NO_COLOR\n"
	    "cd '%s'\n"
	    /* If the test dies (a failed assertion exits at once), the server
	     * goes too instead of lingering with its sleep. */
	    "(while kill -0 %ld 2>/dev/null; do sleep 1; done; tmux -L %s kill-server) >/dev/null 2>&1 &\n"
	    "%s sh -c 'echo $$ >pid; exec \"$0\" \"$@\"' '%s' --db '%s' %s 2>>'%s/stderr'\n"
	    "echo EXIT=$?\n"
	    "exec sleep 600\n", dir, dir, dir, dir, dir, dir, (long)getpid(), sock, env ? env : "", bin, db, args,
	    dir);
	fclose(f);
	free(bin);
	if (run == 0)
		ck_assert_int_eq(test_sh("tmux -L %s -f /dev/null new-session -d -x %d -y %d 'sh %s'", sock, w, h,
		    script), 0);
	else
		ck_assert_int_eq(test_sh("tmux -L %s respawn-pane -k 'sh %s' && tmux -L %s resize-window -x %d -y %d",
		    sock, script, sock, w, h), 0);
	free(script);
}

void
tmux_kill(const char *sock)
{
	test_sh("tmux -L %s kill-server >/dev/null 2>&1", sock);
}

char *
tmux_capture(const char *sock)
{
	char *cmd;
	ck_assert_int_ge(asprintf(&cmd, "tmux -L %s capture-pane -p 2>/dev/null", sock), 0);
	FILE *p = popen(cmd, "r");
	free(cmd);
	ck_assert_ptr_nonnull(p);
	size_t cap = 8192, n = 0, r;
	char *b = malloc(cap);
	ck_assert_ptr_nonnull(b);
	while ((r = fread(b + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (cap - n < 2) {
			b = realloc(b, cap *= 2);
			ck_assert_ptr_nonnull(b);
		}
	}
	b[n] = '\0';
	pclose(p);
	return b;
}

void
tmux_keys(const char *sock, const char *keys)
{
	ck_assert_int_eq(test_sh("tmux -L %s send-keys %s", sock, keys), 0);
	/* Esc and the next key within the escape delay read as Alt+key. */
	if (strcmp(keys, "Escape") == 0)
		usleep(60 * 1000);
}

void
tmux_type(const char *sock, const char *text)
{
	char *q = malloc(strlen(text) * 4 + 3);
	ck_assert_ptr_nonnull(q);
	size_t j = 0;
	q[j++] = '\'';
	for (const char *p = text; *p; p++) {
		if (*p == '\'') {
			memcpy(q + j, "'\\''", 4);
			j += 4;
		} else {
			q[j++] = *p;
		}
	}
	q[j++] = '\'';
	q[j] = '\0';
	ck_assert_int_eq(test_sh("tmux -L %s send-keys -l -- %s", sock, q), 0);
	free(q);
}

char *
tmux_status_line(const char *screen)
{
	const char *end = screen + strlen(screen);
	while (end > screen && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *st = end;
	while (st > screen && st[-1] != '\n')
		st--;
	char *line = strndup(st, (size_t)(end - st));
	ck_assert_ptr_nonnull(line);
	return line;
}

int
tmux_wait(const char *sock, const char *needle, int status, int gone, int timeout_ms)
{
	double end = clock_now_ms() + timeout_ms;
	for (;;) {
		char *s = tmux_capture(sock);
		char *line = status ? tmux_status_line(s) : NULL;
		int found = strstr(line ? line : s, needle) != NULL;
		free(line);
		free(s);
		if (found != gone)
			return 1;
		if (clock_now_ms() > end)
			return 0;
		usleep(15 * 1000);
	}
}

struct db_conv *
test_latest_conv(const char *db)
{
	char *err = NULL;
	struct db *d = db_open(db, &err);
	ck_assert_msg(d != NULL, "%s", err);
	int64_t id = 0;
	ck_assert_int_eq(db_conv_latest(d, &id, &err), 1);
	struct db_conv *c = db_conv_load(d, id, &err);
	ck_assert_msg(c != NULL, "%s", err);
	db_close(d);
	return c;
}
