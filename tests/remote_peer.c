/*
 * remote_peer.c: llama-server and the scripted TCP listener for the remote
 * suites (see remote_peer.h).  Everything binds or connects to 127.0.0.1
 * only; every wait has a deadline.
 */
#include "tests/remote_peer.h"
#include "tests/testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LSRV_BIN "peers/llama.cpp-b4748/llama-server"
#define LSRV_MODEL "models/fixture-q8_0.gguf"

static void
peer_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int
peer_listen(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int
peer_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

int
peer_http_status(int port, const char *path)
{
	int fd = peer_connect(port);
	if (fd < 0)
		return -1;
	char req[256];
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	int st = -1;
	if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		struct pollfd p = { fd, POLLIN, 0 };
		char buf[64] = { 0 };
		if (poll(&p, 1, 2000) == 1 && read(fd, buf, sizeof buf - 1) > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
			st = atoi(buf + 9);
	}
	close(fd);
	return st;
}

int
lsrv_can_run(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	char *bin = fixture_path(LSRV_BIN), *model = fixture_path(LSRV_MODEL);
	known = 0;
	if (bin && model && access(bin, X_OK) == 0) {
		char *cmd;
		if (asprintf(&cmd, "'%s' --version >/dev/null 2>&1", bin) >= 0) {
			known = system(cmd) == 0;
			free(cmd);
		}
	}
	free(bin);
	free(model);
	return known;
}

int
lsrv_start(struct lsrv *s)
{
	memset(s, 0, sizeof *s);
	char *bin = fixture_path(LSRV_BIN), *model = fixture_path(LSRV_MODEL);
	s->dir = tmpdir_new();
	if (bin == NULL || model == NULL || s->dir == NULL)
		goto fail;
	for (int attempt = 0; attempt < 3; attempt++) {
		int lfd = peer_listen(&s->port);
		if (lfd < 0)
			goto fail;
		close(lfd);   /* a free port; the server binds it next */
		char port[16], log[512];
		snprintf(port, sizeof port, "%d", s->port);
		snprintf(log, sizeof log, "%s/server.log", s->dir);
		pid_t parent = getpid();
		s->pid = fork();
		if (s->pid == 0) {
			/* Goes with the test process, whatever kills it. */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(1);
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
				close(fd);
			}
			execl(bin, bin, "-m", model, "--host", "127.0.0.1", "--port", port, "-c", "2048", "-t", "1",
			    (char *)NULL);
			_exit(127);
		}
		if (s->pid < 0)
			goto fail;
		for (int i = 0; i < 600; i++) {   /* 60 s */
			int status;
			if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
				s->pid = 0;
				break;
			}
			if (peer_http_status(s->port, "/health") == 200) {
				snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/v1", s->port);
				free(bin);
				free(model);
				return 0;
			}
			peer_sleep_ms(100);
		}
		if (s->pid > 0)
			lsrv_stop(s);
	}
fail:
	free(bin);
	free(model);
	return -1;
}

void
lsrv_stop(struct lsrv *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		int status;
		for (int i = 0; i < 50 && waitpid(s->pid, &status, WNOHANG) != s->pid; i++)
			peer_sleep_ms(100);
		if (kill(s->pid, 0) == 0) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
		}
	}
	s->pid = 0;
	if (s->dir) {
		tmpdir_remove(s->dir);
		s->dir = NULL;
	}
}

/* ---- the scripted listener ---- */

int
fake_write(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

int
fake_sleep(struct fake *f, int ms)
{
	for (int t = 0; t < ms; t += 10) {
		if (atomic_load(&f->quit))
			return 1;
		peer_sleep_ms(10);
	}
	return atomic_load(&f->quit) != 0;
}

/* Read one request (headers and a Content-Length body), at most 5 s. */
static void
fake_read_request(struct fake *f, int fd)
{
	char buf[1 << 16];
	size_t n = 0, need = 0;
	char *hdr_end = NULL;
	double deadline = time(NULL) + 5;
	while (n < sizeof buf - 1 && time(NULL) < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		/* A TLS handshake record (https:// to this plain server): no HTTP
		 * request will follow, and waiting for one raced the client's own
		 * timeout (test_tls_failure). */
		if ((unsigned char)buf[0] == 0x16)
			break;
		if (hdr_end == NULL && (hdr_end = strstr(buf, "\r\n\r\n")) != NULL) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");
			need = (size_t)(hdr_end + 4 - buf) + (cl && cl < hdr_end ? (size_t)atol(cl + 17) : 0);
		}
		if (hdr_end && n >= need)
			break;
	}
	pthread_mutex_lock(&f->mu);
	char *nr = realloc(f->reqs, f->reqs_len + n + 1);
	if (nr) {
		memcpy(nr + f->reqs_len, buf, n);
		f->reqs = nr;
		f->reqs_len += n;
		nr[f->reqs_len] = '\0';
	}
	pthread_mutex_unlock(&f->mu);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	while (!atomic_load(&f->quit)) {
		struct pollfd p = { f->lfd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		atomic_fetch_add(&f->conns, 1);
		fake_read_request(f, fd);
		if (f->serve)
			f->serve(f, fd);
		close(fd);
	}
	return NULL;
}

void
fake_start(struct fake *f, fake_fn serve, void *arg)
{
	memset(f, 0, sizeof *f);
	f->serve = serve;
	f->arg = arg;
	pthread_mutex_init(&f->mu, NULL);
	f->lfd = peer_listen(&f->port);
	ck_assert_int_ge(f->lfd, 0);
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/v1", f->port);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_main, f), 0);
}

void
fake_stop(struct fake *f)
{
	atomic_store(&f->quit, 1);
	pthread_join(f->th, NULL);
	close(f->lfd);
	free(f->reqs);
	f->reqs = NULL;
	pthread_mutex_destroy(&f->mu);
}

char *
fake_requests(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	char *s = strdup(f->reqs ? f->reqs : "");
	pthread_mutex_unlock(&f->mu);
	return s;
}
