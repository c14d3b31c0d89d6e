/*
 * worker_int.h: the worker's state, shared by worker.c (the thread, its
 * requests and the generation) and worker_ev.c (the event queue to the
 * caller).  Nothing outside those two files includes it.
 *
 * Locking: mu guards the request and event lists, running, next_seq and
 * lost_seq; chat, ctx, rem, cur_seq and the reply buffer belong to the
 * worker thread alone; stop, stop_upto and the fault-injection counters
 * are atomics.
 */
#ifndef ENGINE_WORKER_INT_H
#define ENGINE_WORKER_INT_H

#include "engine/worker.h"
#include "engine/chat.h"

#include <pthread.h>
#include <stdatomic.h>

struct req;
struct remote;

struct ev_node {
	struct worker_event ev;
	struct ev_node *next;
};

struct worker {
	struct engine_model *m;    /* NULL for the remote engine */
	struct engine_ctx *ctx;    /* NULL for the remote engine */
	struct remote *rem;        /* the remote engine, or NULL */
	struct chat chat;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct req *rq_head, *rq_tail;
	struct ev_node *ev_head, *ev_tail;
	int efd;
	int next_seq;
	int running;               /* a request is being worked on */
	atomic_int stop;
	atomic_int stop_upto;
	int cur_seq;
	int read_done, read_total;  /* REQ_PREFETCH: KiB read so far, of */
	/* Requests whose last event could not be queued (out of memory): the
	 * caller gets an error event for each instead (see post). */
	int lost_seq[16];
	int n_lost;
	/* The reply of the request being generated, as streamed: the text of
	 * every WEV_TOKEN posted, in order (worker thread only).  It becomes
	 * the reply's text in the worker's conversation and in WEV_DONE, so the
	 * stream and the finished reply are the same bytes by construction.
	 * rlost: a piece could not be kept or posted; the request fails. */
	char *rtext;
	size_t rlen, rcap;
	int rlost;
	/* Fault injection, set by tests only (worker_test_fail_events): of the
	 * events of type fail_type (-1: any), fail_skip more are queued, then
	 * fail_count find no memory.  Read and counted down by the worker. */
	atomic_int fail_type, fail_skip, fail_count;
};

/* ---- worker_ev.c ---- */
/* Make the eventfd readable. */
void worker_ev_wake(struct worker *w);
/* Queue ev for the caller (its contents taken either way): 0, or -1 when it
 * could not be queued (see worker_ev.c for what happens then). */
int worker_ev_post(struct worker *w, struct worker_event *ev);
/* Queue WEV_ERROR with msg (NULL: "error") for the current request. */
void worker_ev_error(struct worker *w, const char *msg);

#endif
