/*
 * worker.h: the engine on its own thread (engine/worker.c).
 */
#ifndef ENGINE_WORKER_H
#define ENGINE_WORKER_H

#include "engine/engine.h"

/*
 * The caller submits requests (each gets a sequence number) and receives
 * events through worker_poll; worker_fd() becomes readable when events are
 * waiting, so a UI can poll() it beside the terminal.  worker_stop() takes
 * effect within one matrix product, during prompt processing too.  The
 * worker owns the conversation's struct chat and the KV cache.
 */
enum worker_ev_type {
	WEV_PROGRESS,             /* prompt processing: done of total */
	WEV_TOKEN,                /* text (valid UTF-8, maybe empty) of token id */
	WEV_USER_IDS,             /* ids of the user turn just added; done of total:
	                           * the prompt's tokens kept in the cache, of its length */
	WEV_OVERFLOW,             /* dropped: messages moved out of the window */
	WEV_DONE,                 /* the reply: ids (closed by EOS), stats, seed;
	                           * text: the request's WEV_TOKEN texts joined,
	                           * byte for byte (what the worker keeps);
	                           * stats.reason ERROR: error says why (remote) */
	WEV_ERROR,                /* text: one line; the request had no effect
	                           * (also when a WEV_TOKEN could not be queued
	                           * or kept: no reply with a hole is finished) */
	WEV_LOADED,               /* a conversation was loaded (and prefilled) */
	WEV_READING,              /* worker_prefetch: done of total KiB read so far */
	WEV_READ,                 /* worker_prefetch ended: done of total KiB (less
	                           * when it was stopped; the model works either way) */
};

struct worker_event {
	enum worker_ev_type type;
	int seq;
	char *text;
	size_t len;
	int32_t id;
	int32_t *ids;
	int n_ids;
	int done, total, dropped;
	int restored;             /* WEV_LOADED: positions read from a snapshot */
	struct engine_gen_stats stats;
	uint64_t seed;
	char *error;              /* WEV_DONE with ENGINE_STOP_ERROR: one line */
};

struct worker;
/* Starts the thread; the model must outlive the worker. */
struct worker *worker_new(struct engine_model *m, const struct engine_ctx_params *p, char **err);
/* The remote engine (engine/remote.h): a worker whose requests go to an
 * OpenAI-compatible server.  NULL with *err (bad URL, server unreachable
 * when the model has to be asked for). */
struct remote_conf;
struct worker *worker_open_remote(const struct remote_conf *c, char **err);
/* The remote model's name / base URL, or NULL for the local engine. */
const char *worker_model(const struct worker *w);
const char *worker_url(const struct worker *w);
/* Stops any generation, joins the thread, frees everything. */
void worker_free(struct worker *w);
int worker_fd(const struct worker *w);
/* Nonzero while a request is queued or running. */
int worker_busy(struct worker *w);
int worker_ctx_size(const struct worker *w);

/* Replace the conversation (system prompt and messages, ids optional);
 * prefill: also bring its tokens into the cache now, from the snapshot file
 * when given and usable (WEV_LOADED says how much it restored, or in text
 * why it was ignored). */
int worker_load(struct worker *w, const char *system, const int *roles, const char *const *contents,
    const int32_t *const *ids, const int *n_ids, int n, int prefill, const char *snapshot);
/* Read the model's file in (engine_prefetch) on the worker's thread, before
 * the requests queued after it: WEV_READING after every chunk, WEV_READ at
 * the end.  For the interface, which must not wait for a cold 4 GB file.
 * The sequence number, or -1 (out of memory, or the remote engine: no file). */
int worker_prefetch(struct worker *w);
/* Save the cache to a snapshot file once the worker is idle. */
int worker_save(struct worker *w, const char *path);
int worker_set_system(struct worker *w, const char *system);
/* Add a user message and generate the reply. */
int worker_send(struct worker *w, const char *text, const struct engine_sampling *s, int max_tokens);
/* Drop the last reply and generate it again. */
int worker_regenerate(struct worker *w, const struct engine_sampling *s, int max_tokens);
/* Drop messages from index k (a user message) on, send text in its place. */
int worker_edit(struct worker *w, int k, const char *text, const struct engine_sampling *s, int max_tokens);
/* Drop messages from index k on (a request that failed half-way). */
int worker_truncate(struct worker *w, int k);
/* Stop whatever is queued or running, now. */
void worker_stop(struct worker *w);
/* 1 and *ev filled if an event was waiting, else 0.  Free with
 * worker_event_free. */
int worker_poll(struct worker *w, struct worker_event *ev);
void worker_event_free(struct worker_event *ev);
/* Tests only (fault injection): of the events of type (-1: any type) the
 * worker posts from now on, skip more are queued as usual, then the next
 * count find no memory, as when calloc fails (0 turns this off).  Set it
 * while the worker is idle. */
void worker_test_fail_events(struct worker *w, int type, int skip, int count);
/* Block until an event arrives (1), or timeout_ms passes (-1: forever) or
 * a signal interrupts the wait (0). */
int worker_wait(struct worker *w, struct worker_event *ev, int timeout_ms);

#endif
