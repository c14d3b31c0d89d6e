/*
 * worker_ev.c: the events from the inference thread to its caller.
 *
 * The worker thread posts (worker_ev_post) into a list under w->mu and
 * writes the eventfd; the caller takes them with worker_poll or
 * worker_wait, which never block while an event is waiting.  Every
 * request ends with exactly one of WEV_DONE, WEV_ERROR or WEV_LOADED, also
 * when memory runs out: an end that cannot be queued is remembered by its
 * sequence number (lost_seq) and handed out as WEV_ERROR by worker_poll.
 * The test hook (worker_test_fail_events) makes chosen allocations fail so
 * that the tests can walk those paths on a real model.
 */
#include "engine/worker_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
worker_ev_wake(struct worker *w)
{
	uint64_t one = 1;
	while (write(w->efd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* Whether the test hook says that ev's allocation fails. */
static int
worker_ev_fault(struct worker *w, const struct worker_event *ev)
{
	if (atomic_load(&w->fail_count) <= 0)
		return 0;
	int type = atomic_load(&w->fail_type);
	if (type >= 0 && type != (int)ev->type)
		return 0;
	if (atomic_load(&w->fail_skip) > 0) {
		atomic_fetch_sub(&w->fail_skip, 1);
		return 0;
	}
	atomic_fetch_sub(&w->fail_count, 1);
	return 1;
}

/*
 * Queue ev for the caller.  When there is no memory for it, a progress
 * event is dropped; a token event is not dropped silently, since the
 * caller's text would have a hole: the reply is stopped and its request
 * fails (rlost in worker.c).  The event that ends a request (DONE, ERROR,
 * LOADED) must not be lost, or the caller waits for ever: its request is
 * remembered in lost_seq, and worker_poll hands out an error for it (the
 * worker takes back what the request did: done_lost in worker.c).  0 when
 * ev was queued, -1 when it was not; either way ev's contents are taken.
 */
int
worker_ev_post(struct worker *w, struct worker_event *ev)
{
	struct ev_node *n = worker_ev_fault(w, ev) ? NULL : calloc(1, sizeof *n);
	if (n == NULL) {
		int final = ev->type == WEV_DONE || ev->type == WEV_ERROR || ev->type == WEV_LOADED ||
		    ev->type == WEV_READ;
		worker_event_free(ev);
		if (final) {
			pthread_mutex_lock(&w->mu);
			if (w->n_lost < (int)(sizeof w->lost_seq / sizeof w->lost_seq[0]))
				w->lost_seq[w->n_lost++] = ev->seq;
			pthread_mutex_unlock(&w->mu);
			worker_ev_wake(w);
		} else if (ev->type == WEV_TOKEN) {
			w->rlost = 1;
			atomic_store(&w->stop, 1);
		}
		return -1;
	}
	n->ev = *ev;
	pthread_mutex_lock(&w->mu);
	if (w->ev_tail)
		w->ev_tail->next = n;
	else
		w->ev_head = n;
	w->ev_tail = n;
	pthread_mutex_unlock(&w->mu);
	worker_ev_wake(w);
	return 0;
}

void
worker_ev_error(struct worker *w, const char *msg)
{
	struct worker_event ev = { .type = WEV_ERROR, .seq = w->cur_seq };
	ev.text = strdup(msg ? msg : "error");
	ev.len = ev.text ? strlen(ev.text) : 0;
	worker_ev_post(w, &ev);
}

void
worker_test_fail_events(struct worker *w, int type, int skip, int count)
{
	atomic_store(&w->fail_count, 0);
	atomic_store(&w->fail_type, type);
	atomic_store(&w->fail_skip, skip);
	atomic_store(&w->fail_count, count);
}

int
worker_poll(struct worker *w, struct worker_event *ev)
{
	uint64_t cnt;
	/* Clear the eventfd before looking, so an event posted after we look
	 * makes it readable again. */
	while (read(w->efd, &cnt, sizeof cnt) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&w->mu);
	struct ev_node *n = w->ev_head;
	if (n) {
		w->ev_head = n->next;
		if (w->ev_head == NULL)
			w->ev_tail = NULL;
	}
	int lost = 0;
	if (n == NULL && w->n_lost > 0) {
		lost = w->lost_seq[0];
		memmove(w->lost_seq, w->lost_seq + 1, (size_t)--w->n_lost * sizeof w->lost_seq[0]);
	}
	int more = w->ev_head != NULL || w->n_lost > 0;
	pthread_mutex_unlock(&w->mu);
	if (more)
		worker_ev_wake(w);   /* keep the fd readable for the rest */
	if (lost) {
		memset(ev, 0, sizeof *ev);
		ev->type = WEV_ERROR;
		ev->seq = lost;
		ev->text = strdup("out of memory in the inference thread");
		ev->len = ev->text ? strlen(ev->text) : 0;
		return 1;
	}
	if (n == NULL)
		return 0;
	*ev = n->ev;
	free(n);
	return 1;
}

int
worker_wait(struct worker *w, struct worker_event *ev, int timeout_ms)
{
	for (;;) {
		if (worker_poll(w, ev))
			return 1;
		struct pollfd p = { .fd = w->efd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		if (r <= 0)
			return 0;   /* timeout, or a signal: the caller may want to stop */
	}
}

void
worker_event_free(struct worker_event *ev)
{
	free(ev->text);
	free(ev->ids);
	free(ev->error);
	ev->text = NULL;
	ev->ids = NULL;
	ev->error = NULL;
}
