/*
 * worker.c: the engine's inference thread.
 *
 * DESIGN.  Two queues under one mutex: requests (caller -> worker, with a
 * condition variable) and events (worker -> caller, with an eventfd the
 * caller can poll()).  The worker alone touches the engine_ctx and the
 * struct chat, so neither needs a lock.  Stopping must not wait for the
 * queue: worker_stop() records the newest sequence number submitted so far
 * in stop_upto and raises the engine's stop flag; the worker, on starting a
 * request, lowers the flag and raises it again at once if that request is
 * covered by stop_upto.  Either order of the two threads' stores ends with
 * the flag up for a stopped request (see begin_request).  The event queue
 * is engine/worker_ev.c; the state both files share is worker_int.h.
 *
 * REQ_PREFETCH (worker_prefetch) reads the model's file in on this thread,
 * with its progress as events, so that the interface never waits for a
 * cold file; the requests queued behind it wait instead, and a stop ends
 * it at the next 64 MiB chunk.
 *
 * The same thread and queues drive the remote engine (engine/remote.c):
 * with w->rem set there is no model and no cache (m and ctx are NULL),
 * generate_remote streams the reply from the server, and worker_stop also
 * wakes the transfer so that it ends at once.
 */
#include "engine/worker_int.h"
#include "engine/remote.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum req_type { REQ_LOAD, REQ_SYSTEM, REQ_SEND, REQ_REGEN, REQ_EDIT, REQ_TRUNCATE, REQ_SAVE, REQ_PREFETCH, REQ_QUIT };

struct req {
	enum req_type type;
	int seq;
	char *text;
	int k, max_tokens, prefill;
	char *path;                /* REQ_LOAD: snapshot to try; REQ_SAVE: where */
	struct engine_sampling samp;
	struct chat load;          /* REQ_LOAD: the conversation, moved in */
	struct req *next;
};


/* Keep a piece of the reply in w->rtext; -1 on out of memory. */
static int
reply_append(struct worker *w, const char *text, size_t len)
{
	if (w->rlen + len + 1 > w->rcap) {
		size_t cap = w->rcap ? w->rcap * 2 : 1024;
		while (cap < w->rlen + len + 1)
			cap *= 2;
		char *nt = realloc(w->rtext, cap);
		if (nt == NULL)
			return -1;
		w->rtext = nt;
		w->rcap = cap;
	}
	memcpy(w->rtext + w->rlen, text, len);
	w->rlen += len;
	w->rtext[w->rlen] = '\0';
	return 0;
}

/* A new reply: nothing streamed yet. */
static void
reply_begin(struct worker *w)
{
	w->rlen = 0;
	w->rlost = 0;
	if (w->rtext)
		w->rtext[0] = '\0';
}

/* The streamed reply, handed over (malloc'd; "" when nothing came); NULL
 * on out of memory. */
static char *
reply_take(struct worker *w)
{
	char *t = w->rtext ? w->rtext : strdup("");
	w->rtext = NULL;
	w->rlen = w->rcap = 0;
	return t;
}

static int
on_token(void *ud, int32_t id, const char *text, size_t len)
{
	struct worker *w = ud;
	if (w->rlost)
		return 1;   /* a piece is missing: stop here */
	if (reply_append(w, text, len) != 0) {
		w->rlost = 1;
		return 1;
	}
	struct worker_event ev = { .type = WEV_TOKEN, .seq = w->cur_seq, .id = id, .len = len };
	if ((ev.text = malloc(len + 1)) == NULL) {
		w->rlost = 1;   /* an event without its text would leave a hole */
		return 1;
	}
	memcpy(ev.text, text, len);
	ev.text[len] = '\0';
	worker_ev_post(w, &ev);
	return w->rlost;
}

static void
on_progress(void *ud, int done, int total)
{
	struct worker *w = ud;
	struct worker_event ev = { .type = WEV_PROGRESS, .seq = w->cur_seq, .done = done, .total = total };
	worker_ev_post(w, &ev);
}

/* WEV_DONE could not be queued, so the caller hears of an error: the reply
 * just pushed goes again, with the user message the request added, as for
 * any failed request. */
static void
done_lost(struct worker *w, int user_added)
{
	int k = w->chat.n - (user_added ? 2 : 1);
	chat_truncate(&w->chat, k > 0 ? k : 0);
}

/* The request fails: the worker's conversation goes back to before it
 * (its user message goes when the request added one), and the caller gets
 * msg in WEV_ERROR. */
static void
fail_request(struct worker *w, int user_added, const char *msg)
{
	if (user_added && w->chat.n > 0)
		chat_truncate(&w->chat, w->chat.n - 1);
	worker_ev_error(w, msg);
}

/*
 * The remote engine's reply.  Unlike a local error, a remote fault (the
 * server died, answered an HTTP error, sent garbage) keeps the user's
 * message and the partial reply in the conversation, as the session keeps
 * them in the database (marked interrupted): WEV_DONE with reason ERROR.
 * Out of memory on this side fails the request as a local one does.
 */
static void
generate_remote(struct worker *w, const struct req *r, int user_added)
{
	reply_begin(w);
	/* No local token ids: the session still counts the user turn. */
	struct worker_event ue = { .type = WEV_USER_IDS, .seq = w->cur_seq };
	worker_ev_post(w, &ue);
	struct remote_reply rep;
	char *err = NULL;
	int rc = remote_chat(w->rem, &w->chat, &r->samp, r->max_tokens, on_token, w, &w->stop, &rep, &err);
	/* rep.text holds the same pieces as w->rtext; the worker's is the one
	 * that was streamed. */
	struct engine_gen_stats st = rep.st;
	remote_reply_free(&rep);
	size_t len = w->rlen;
	char *text = w->rlost ? NULL : reply_take(w);
	if (text == NULL || chat_push(&w->chat, CHAT_ASSISTANT, text, NULL, 0) != 0) {
		free(text);
		free(err);
		fail_request(w, user_added, "out of memory: the reply could not be kept");
		return;
	}
	struct worker_event done = { .type = WEV_DONE, .seq = w->cur_seq, .stats = st, .seed = r->samp.seed,
		.text = text, .len = len };
	if (rc != 0) {
		done.stats.reason = ENGINE_STOP_ERROR;
		done.error = err ? err : strdup("out of memory");
		err = NULL;
	}
	free(err);
	if (worker_ev_post(w, &done) != 0)
		done_lost(w, user_added);
}

/* Generate a reply to the conversation as it stands (ending with a user
 * message).  On error the caller's user message is removed again. */
static void
generate(struct worker *w, const struct req *r, int user_added)
{
	if (w->rem) {
		generate_remote(w, r, user_added);
		return;
	}
	int n_ctx = engine_ctx_size(w->ctx);
	/* Room kept for the reply: what was asked, within a quarter window. */
	int reserve = r->max_tokens > 0 ? r->max_tokens : 256;
	if (reserve > n_ctx / 4)
		reserve = n_ctx / 4;
	int32_t *ids = NULL;
	int n = 0, dropped = 0;
	char *err = NULL;
	/* chat_build may move the window's start before it finds that the
	 * last message cannot fit: a failed request leaves the window as it
	 * was. */
	int first = w->chat.first;
	if (chat_build(&w->chat, w->m, n_ctx, reserve, &ids, &n, &dropped, &err) != 0) {
		w->chat.first = first;
		if (user_added)
			chat_truncate(&w->chat, w->chat.n - 1);
		worker_ev_error(w, err);
		free(err);
		return;
	}
	struct chat_msg *u = &w->chat.msgs[w->chat.n - 1];
	/* done/total: the context the prompt keeps from the cache (as
	 * engine_generate reuses it: the last prompt token is always run
	 * again) and the prompt's length, so that a context gauge never counts
	 * what the prompt drops from the cache (the reply being regenerated). */
	int keep = engine_ctx_common_prefix(w->ctx, ids, n);
	struct worker_event ev = { .type = WEV_USER_IDS, .seq = w->cur_seq, .n_ids = u->n_ids,
		.done = keep < n ? keep : n - 1, .total = n };
	ev.ids = malloc((size_t)(u->n_ids ? u->n_ids : 1) * sizeof *ev.ids);
	if (ev.ids)
		memcpy(ev.ids, u->ids, (size_t)u->n_ids * sizeof *ev.ids);
	else
		ev.n_ids = 0;   /* the caller tokenizes again when it needs them */
	worker_ev_post(w, &ev);
	if (dropped) {
		struct worker_event ov = { .type = WEV_OVERFLOW, .seq = w->cur_seq, .dropped = dropped };
		worker_ev_post(w, &ov);
	}
	struct engine_sampler *smp = engine_sampler_new(&r->samp);
	struct engine_gen_params gp = {
		.max_tokens = r->max_tokens, .strip_leading_space = 1, .on_token = on_token,
		.on_progress = on_progress, .ud = w, .stop = &w->stop,
	};
	struct engine_gen_stats st;
	int32_t *out = NULL;
	int n_out = 0;
	reply_begin(w);
	int rc = smp ? engine_generate(w->ctx, ids, n, smp, &gp, &st, &out, &n_out, &err) : -1;
	engine_sampler_free(smp);
	free(ids);
	if (rc != 0 || w->rlost) {
		fail_request(w, user_added, rc != 0 && err ? err : "out of memory: the reply could not be kept");
		free(err);
		free(out);
		return;
	}
	/* A reply is always closed by an end-of-generation token (the
	 * family's: EOS, <|eot_id|>, <|im_end|>), also when stopped or cut
	 * short, so the next turn follows a finished exchange. */
	if (n_out == 0 || !engine_is_eog(w->m, out[n_out - 1])) {
		int32_t *no = realloc(out, (size_t)(n_out + 1) * sizeof *no);
		if (no == NULL) {
			free(out);
			fail_request(w, user_added, "out of memory");
			return;
		}
		out = no;
		out[n_out++] = chat_tmpl_reply_end(w->m);
	}
	/* The text is the streamed pieces (the end token writes none): what the
	 * caller showed is what the conversation keeps. */
	size_t len = w->rlen;
	char *text = reply_take(w);
	if (text == NULL || chat_push(&w->chat, CHAT_ASSISTANT, text, out, n_out) != 0) {
		free(text);
		free(out);
		fail_request(w, user_added, "out of memory: the reply could not be kept");
		return;
	}
	struct worker_event done = { .type = WEV_DONE, .seq = w->cur_seq, .ids = out, .n_ids = n_out,
		.stats = st, .seed = r->samp.seed, .text = text, .len = len };
	if (worker_ev_post(w, &done) != 0)
		done_lost(w, user_added);
}

static void
load(struct worker *w, struct req *r)
{
	chat_free(&w->chat);
	w->chat = r->load;
	chat_init(&r->load);
	struct worker_event ev = { .type = WEV_LOADED, .seq = w->cur_seq };
	if (r->prefill && w->ctx && w->chat.n > 0 && w->chat.msgs[w->chat.n - 1].role == CHAT_ASSISTANT) {
		/* Bring the finished conversation into the cache, so the next
		 * message prefills only itself.  chat_build wants a trailing user
		 * turn: build with an empty one and leave its tokens out. */
		int32_t *ids = NULL;
		int n = 0, dropped = 0;
		char *err = NULL;
		if (chat_push(&w->chat, CHAT_USER, "", NULL, 0) == 0) {
			int nctx = engine_ctx_size(w->ctx);
			if (chat_build(&w->chat, w->m, nctx, nctx / 4, &ids, &n, &dropped, &err) == 0) {
				int nu = w->chat.msgs[w->chat.n - 1].n_ids;
				int want = n - nu;
				int keep = engine_ctx_common_prefix(w->ctx, ids, want);
				if (r->path && keep < want) {
					int got = engine_ctx_load(w->ctx, r->path, ids, want, &ev.text);
					if (got > keep) {
						ev.restored = got;
						keep = got;
					} else {
						engine_ctx_truncate(w->ctx, 0);
						keep = 0;
					}
				}
				engine_ctx_truncate(w->ctx, keep);
				int rc = 0;
				char *derr = NULL;
				if (want > keep)
					rc = engine_decode(w->ctx, ids + keep, want - keep, 0, &w->stop, &derr);
				if (rc != 0) {
					/* Stopped or failed: the cache holds what it holds, and
					 * the next request computes the rest. */
					int n_in;
					engine_ctx_tokens(w->ctx, &n_in);
					if (rc < 0 && ev.text == NULL)
						ev.text = derr;
					else
						free(derr);
					ev.done = n_in > keep ? n_in - keep : 0;
					ev.total = n_in;
				} else {
					ev.done = want - keep;
					ev.total = want;
				}
			}
			chat_truncate(&w->chat, w->chat.n - 1);
		}
		free(ids);
		free(err);
	}
	if (ev.text)
		ev.len = strlen(ev.text);
	worker_ev_post(w, &ev);
}

/* engine_prefetch's progress, in KiB (an int holds 2 TiB of them); a stop
 * request (worker_stop, worker_free) ends the read at the next chunk. */
static int
on_read(void *ud, uint64_t done, uint64_t total)
{
	struct worker *w = ud;
	w->read_done = (int)(done >> 10);
	w->read_total = (int)(total >> 10);
	struct worker_event ev = { .type = WEV_READING, .seq = w->cur_seq, .done = w->read_done,
		.total = w->read_total };
	worker_ev_post(w, &ev);
	return atomic_load(&w->stop);
}

static void
prefetch(struct worker *w)
{
	/* Say at once that the read has begun: the first chunk of a cold
	 * file takes a second. */
	w->read_done = 0;
	w->read_total = (int)(engine_info(w->m)->file_size >> 10);
	struct worker_event start = { .type = WEV_READING, .seq = w->cur_seq, .total = w->read_total };
	worker_ev_post(w, &start);
	engine_prefetch(w->m, on_read, w);
	struct worker_event ev = { .type = WEV_READ, .seq = w->cur_seq, .done = w->read_done,
		.total = w->read_total };
	worker_ev_post(w, &ev);
}

static void
save(struct worker *w, const char *path)
{
	char *err = NULL;
	if (w->ctx == NULL)
		return;   /* remote: the server keeps its own cache */
	if (engine_ctx_save(w->ctx, path, &err) != 0) {
		worker_ev_error(w, err ? err : "cannot save the cache");
		free(err);
	}
}

static void
begin_request(struct worker *w, int seq)
{
	w->cur_seq = seq;
	atomic_store(&w->stop, 0);
	if (atomic_load(&w->stop_upto) >= seq)
		atomic_store(&w->stop, 1);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->rq_head == NULL)
			pthread_cond_wait(&w->cv, &w->mu);
		struct req *r = w->rq_head;
		w->rq_head = r->next;
		if (w->rq_head == NULL)
			w->rq_tail = NULL;
		w->running = 1;
		pthread_mutex_unlock(&w->mu);

		if (r->type == REQ_QUIT) {
			free(r);
			break;
		}
		begin_request(w, r->seq);
		switch (r->type) {
		case REQ_LOAD:
			load(w, r);
			break;
		case REQ_SYSTEM:
			if (chat_set_system(&w->chat, r->text) != 0)
				worker_ev_error(w, "out of memory");
			break;
		case REQ_SEND:
			if (w->chat.n > 0 && w->chat.msgs[w->chat.n - 1].role == CHAT_USER) {
				worker_ev_error(w, "the last message has no reply yet");
				break;
			}
			if (chat_push(&w->chat, CHAT_USER, r->text, NULL, 0) != 0) {
				worker_ev_error(w, "out of memory");
				break;
			}
			generate(w, r, 1);
			break;
		case REQ_REGEN:
			if (w->chat.n == 0 || w->chat.msgs[w->chat.n - 1].role != CHAT_ASSISTANT) {
				worker_ev_error(w, "there is no reply to regenerate");
				break;
			}
			chat_truncate(&w->chat, w->chat.n - 1);
			generate(w, r, 0);
			break;
		case REQ_EDIT:
			if (r->k < 0 || r->k >= w->chat.n || w->chat.msgs[r->k].role != CHAT_USER) {
				worker_ev_error(w, "only a user message can be edited");
				break;
			}
			chat_truncate(&w->chat, r->k);
			if (chat_push(&w->chat, CHAT_USER, r->text, NULL, 0) != 0) {
				worker_ev_error(w, "out of memory");
				break;
			}
			generate(w, r, 0);
			break;
		case REQ_TRUNCATE:
			if (r->k < w->chat.n)
				chat_truncate(&w->chat, r->k);
			break;
		case REQ_SAVE:
			save(w, r->path);
			break;
		case REQ_PREFETCH:
			prefetch(w);
			break;
		case REQ_QUIT:
			break;
		}
		chat_free(&r->load);
		free(r->path);
		free(r->text);
		free(r);
		pthread_mutex_lock(&w->mu);
		w->running = 0;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* The eventfd, the locks and the thread of a worker whose engine (ctx or
 * rem) is set; on failure frees w and its engine. */
static struct worker *
worker_start(struct worker *w, char **err)
{
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (w->efd < 0 || pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		if (err)
			*err = strdup("cannot start the inference thread");
		if (w->efd >= 0)
			close(w->efd);
		engine_ctx_free(w->ctx);
		remote_close(w->rem);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		free(w);
		return NULL;
	}
	return w;
}

struct worker *
worker_new(struct engine_model *m, const struct engine_ctx_params *p, char **err)
{
	struct worker *w = calloc(1, sizeof *w);
	if (w == NULL) {
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	w->m = m;
	chat_init(&w->chat);
	w->ctx = engine_ctx_new(m, p, err);
	if (w->ctx == NULL) {
		free(w);
		return NULL;
	}
	return worker_start(w, err);
}

struct worker *
worker_open_remote(const struct remote_conf *c, char **err)
{
	struct worker *w = calloc(1, sizeof *w);
	if (w == NULL) {
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	chat_init(&w->chat);
	w->rem = remote_open(c, err);
	if (w->rem == NULL) {
		free(w);
		return NULL;
	}
	return worker_start(w, err);
}

const char *
worker_model(const struct worker *w)
{
	return w->rem ? remote_model(w->rem) : NULL;
}

const char *
worker_url(const struct worker *w)
{
	return w->rem ? remote_url(w->rem) : NULL;
}

static int
submit(struct worker *w, struct req *r)
{
	pthread_mutex_lock(&w->mu);
	/* Keep the number: once the lock is released the worker may take r
	 * and free it. */
	int seq = r->seq = ++w->next_seq;
	if (w->rq_tail)
		w->rq_tail->next = r;
	else
		w->rq_head = r;
	w->rq_tail = r;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return seq;
}

static struct req *
req_new(enum req_type t, const char *text)
{
	struct req *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->type = t;
	chat_init(&r->load);
	if (text && (r->text = strdup(text)) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
worker_stop(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	int upto = w->next_seq;
	pthread_mutex_unlock(&w->mu);
	atomic_store(&w->stop_upto, upto);
	atomic_store(&w->stop, 1);
	if (w->rem)
		remote_wake(w->rem);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	worker_stop(w);
	struct req *q = req_new(REQ_QUIT, NULL);
	if (q) {
		submit(w, q);
		pthread_join(w->thread, NULL);
	} else {
		pthread_cancel(w->thread);
		pthread_join(w->thread, NULL);
	}
	for (struct req *r = w->rq_head, *nx; r; r = nx) {
		nx = r->next;
		chat_free(&r->load);
		free(r->path);
		free(r->text);
		free(r);
	}
	for (struct ev_node *e = w->ev_head, *nx; e; e = nx) {
		nx = e->next;
		worker_event_free(&e->ev);
		free(e);
	}
	chat_free(&w->chat);
	free(w->rtext);
	engine_ctx_free(w->ctx);
	remote_close(w->rem);
	close(w->efd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

int
worker_fd(const struct worker *w)
{
	return w->efd;
}

int
worker_busy(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	int b = w->running || w->rq_head != NULL;
	pthread_mutex_unlock(&w->mu);
	return b;
}

int
worker_ctx_size(const struct worker *w)
{
	return w->ctx ? engine_ctx_size(w->ctx) : 0;
}

int
worker_load(struct worker *w, const char *system, const int *roles, const char *const *contents,
    const int32_t *const *ids, const int *n_ids, int n, int prefill, const char *snapshot)
{
	struct req *r = req_new(REQ_LOAD, NULL);
	if (r == NULL)
		return -1;
	r->prefill = prefill;
	if (snapshot && (r->path = strdup(snapshot)) == NULL)
		goto oom;
	if (chat_set_system(&r->load, system) != 0)
		goto oom;
	for (int i = 0; i < n; i++)
		if (chat_push(&r->load, roles[i], contents[i], ids ? ids[i] : NULL, ids ? n_ids[i] : 0) != 0)
			goto oom;
	return submit(w, r);
oom:
	chat_free(&r->load);
	free(r->path);
	free(r);
	return -1;
}

int
worker_save(struct worker *w, const char *path)
{
	struct req *r = req_new(REQ_SAVE, NULL);
	if (r == NULL || (r->path = strdup(path)) == NULL) {
		free(r);
		return -1;
	}
	return submit(w, r);
}

int
worker_prefetch(struct worker *w)
{
	if (w->m == NULL)
		return -1;   /* remote: the server has the file */
	struct req *r = req_new(REQ_PREFETCH, NULL);
	return r ? submit(w, r) : -1;
}

int
worker_set_system(struct worker *w, const char *system)
{
	struct req *r = req_new(REQ_SYSTEM, system);   /* NULL: none; "": an empty one */
	return r ? submit(w, r) : -1;
}

static int
submit_gen(struct worker *w, enum req_type t, int k, const char *text, const struct engine_sampling *s,
    int max_tokens)
{
	struct req *r = req_new(t, text);
	if (r == NULL)
		return -1;
	r->k = k;
	r->samp = *s;
	r->max_tokens = max_tokens;
	return submit(w, r);
}

int
worker_send(struct worker *w, const char *text, const struct engine_sampling *s, int max_tokens)
{
	return submit_gen(w, REQ_SEND, 0, text, s, max_tokens);
}

int
worker_regenerate(struct worker *w, const struct engine_sampling *s, int max_tokens)
{
	return submit_gen(w, REQ_REGEN, 0, NULL, s, max_tokens);
}

int
worker_edit(struct worker *w, int k, const char *text, const struct engine_sampling *s, int max_tokens)
{
	return submit_gen(w, REQ_EDIT, k, text, s, max_tokens);
}

int
worker_truncate(struct worker *w, int k)
{
	struct req *r = req_new(REQ_TRUNCATE, NULL);
	if (r == NULL)
		return -1;
	r->k = k;
	return submit(w, r);
}
