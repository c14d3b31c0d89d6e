/*
 * remote_peer.h: the servers the remote-engine suites talk to, all on
 * 127.0.0.1: the real llama-server from the peers folder (started on a
 * free port with the fixture model, stopped with SIGTERM), and a small TCP
 * listener on a thread that answers each connection with a scripted
 * reply (HTTP errors, broken streams, garbage, silence).
 */
#ifndef TESTS_REMOTE_PEER_H
#define TESTS_REMOTE_PEER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

/* ---- llama-server ---- */
struct lsrv {
	pid_t pid;
	int port;
	char url[64];             /* "http://127.0.0.1:PORT/v1" */
	char *dir;                /* its log */
};
/* 1 when the peer binary and the fixture model are there and it runs. */
int lsrv_can_run(void);
/* Start it and wait for GET /health 200 (at most 60 s).  0 or -1. */
int lsrv_start(struct lsrv *s);
/* SIGTERM, wait (SIGKILL after 5 s). */
void lsrv_stop(struct lsrv *s);
/* HTTP status of GET path on 127.0.0.1:port, -1 when no answer. */
int peer_http_status(int port, const char *path);

/* ---- the scripted listener ---- */
struct fake;
/* Called for each accepted connection after its request was read. */
typedef void (*fake_fn)(struct fake *f, int fd);
struct fake {
	int lfd, port;
	char url[64];
	pthread_t th;
	fake_fn serve;
	void *arg;                /* for serve */
	atomic_int quit;
	atomic_int conns;         /* connections accepted */
	pthread_mutex_t mu;
	char *reqs;               /* every request received, concatenated */
	size_t reqs_len;
};
void fake_start(struct fake *f, fake_fn serve, void *arg);
void fake_stop(struct fake *f);
/* A copy of the requests so far (malloc'd). */
char *fake_requests(struct fake *f);
/* Write all of s; 0 or -1. */
int fake_write(int fd, const char *s);
/* Sleep ms unless quit is raised first; 1 when quit. */
int fake_sleep(struct fake *f, int ms);

#endif
