/*
 * session_reply.c: the requests that make a reply (send, regenerate,
 * edit), the worker's events applied to the database, and the view
 * updates the interface takes with session_poll.
 *
 * Invariants.  The rows of a request exist from the moment it is asked
 * for: the user's message (send, edit) and an empty reply marked
 * interrupted, with its replay record (app/replay.h).  Nothing is deleted
 * to make room: a regenerated reply is a sibling of the old one, an edited
 * message a sibling of the original (storage/db_tree.c), and the new one is
 * on the current branch.  While the reply streams its text and ids are rewritten at
 * most about a second apart; at the end one transaction writes the reply
 * (text, ids, reason, stats) and the user's token ids.  A request the
 * worker fails deletes its rows again by id (the branch goes back to where
 * it was), and the worker is brought back to the window (win), so what the
 * worker holds and what the file holds stay the same.  rtext is the one
 * copy of the reply on this side, from its first piece to the end: the
 * database (while streaming and at the end), the view's end and --json
 * (session_reply_text) take it.  WEV_DONE's text is not used: the worker
 * builds it from the same pieces, so it could only be the same bytes.  A
 * piece lost to out of memory, on either side, fails the request (the
 * worker sends WEV_ERROR; here rcut turns the end into a failure), so no
 * reply is stored with a hole.
 */
#include "app/session_int.h"
#include "common/clock.h"
#include "app/kvcache.h"
#include "app/replay.h"
#include "storage/db.h"

#include <jansson.h>

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the update queue ------------------------------------------------------------ */

void
session_push(struct session *s, enum su_type type, int64_t id, enum role role, const char *text, size_t len)
{
	if (s->qhead + s->qn == s->qcap) {
		if (s->qhead > 0) {
			memmove(s->q, s->q + s->qhead, s->qn * sizeof *s->q);
			s->qhead = 0;
		}
		if (s->qn == s->qcap) {
			size_t cap = s->qcap ? s->qcap * 2 : 64;
			struct session_update *nq = realloc(s->q, cap * sizeof *nq);
			if (nq == NULL)
				return;      /* the view misses it; the database has it */
			s->q = nq;
			s->qcap = cap;
		}
	}
	struct session_update *u = &s->q[s->qhead + s->qn];
	memset(u, 0, sizeof *u);
	u->type = type;
	u->id = id;
	u->role = role;
	if (text != NULL) {
		if ((u->text = malloc(len + 1)) == NULL)
			return;
		memcpy(u->text, text, len);
		u->text[len] = '\0';
		u->len = len;
	}
	s->qn++;
}

struct session_update *
session_last_update(struct session *s)
{
	return s->qn > 0 ? &s->q[s->qhead + s->qn - 1] : NULL;
}

void
session_update_free(struct session_update *u)
{
	free(u->text);
	free(u->back);
	u->text = u->back = NULL;
}

void
session_drop_updates(struct session *s)
{
	for (size_t i = 0; i < s->qn; i++)
		session_update_free(&s->q[s->qhead + i]);
	s->qhead = s->qn = 0;
}

int
session_win_push(struct session *s, int64_t id)
{
	if (s->nwin == s->capwin) {
		int cap = s->capwin ? s->capwin * 2 : 16;
		int64_t *nw = realloc(s->win, (size_t)cap * sizeof *nw);
		if (nw == NULL)
			return -1;
		s->win = nw;
		s->capwin = cap;
	}
	s->win[s->nwin++] = id;
	return 0;
}

int64_t
session_local_id(struct session *s)
{
	return s->next_local--;
}

static void
session_notice(struct session *s, int err, const char *text)
{
	session_push(s, SU_NOTICE, 0, ROLE_USER, text, strlen(text));
	struct session_update *u = session_last_update(s);
	if (u != NULL)
		u->err = err;
}

/* ---- requests -------------------------------------------------------------------- */

static int
session_can_ask(struct session *s)
{
	if (s->w == NULL)
		return session_fail(s, "no model is loaded");
	if (s->busy)
		return session_fail(s, "a reply is still being generated");
	return 0;
}

static void
session_reply_reset(struct session *s, enum session_req req)
{
	s->req = req;
	s->alt_of = 0;
	s->failed = 0;
	s->rlen = 0;
	s->rcut = 0;
	s->rn = 0;
	if (s->rtext)
		s->rtext[0] = '\0';
	free(s->user_ids);
	s->user_ids = NULL;
	s->n_user_ids = 0;
	free(s->user_text);
	s->user_text = NULL;
	s->user_id = s->reply_id = 0;
	s->last_save = clock_now_ms();
}

/* Where message id stands among its alternatives, for the view. */
static void
session_siblings(struct session *s, int64_t id, struct session_update *u)
{
	int64_t *ids = NULL;
	size_t n = 0, at = 0;
	u->n_siblings = 1;
	if (s->db != NULL && id > 0 && db_message_siblings(s->db, id, &ids, &n, &at, NULL) == 0) {
		u->sibling = (int)at;
		u->n_siblings = (int)n;
	}
	free(ids);
}

/* The request's rows (the user's message when text is given, under parent:
 * -1 the current leaf, 0 a new root; and the empty reply under the user's
 * message s->user_id) and its view messages. */
static int
session_begin_rows(struct session *s, const char *text, int64_t parent)
{
	char *err = NULL;
	if (s->db != NULL) {
		if (session_ensure_conv(s) != 0)
			return -1;
		if (text) {
			struct db_message m = { .role = ROLE_USER, .content = (char *)text };
			int rc = parent < 0 ? db_message_append(s->db, s->conv_id, &m, &err) :
			    db_message_add(s->db, s->conv_id, parent, &m, &err);
			if (rc != 0)
				return session_fail_take(s, err);
			s->user_id = m.id;
		}
		/* The replay record: all that makes this reply reproducible. */
		char *sj = replay_record_json(s->m, &s->gen.samp, s->gen.n_predict, worker_ctx_size(s->w),
		    s->o->batch, s->o->kv_f32, s->o->kv_q8, s->system);
		struct db_message r = { .role = ROLE_ASSISTANT, .content = "", .finish = FINISH_INTERRUPTED,
			.sampler = sj, .has_seed = 1, .seed = s->gen.samp.seed };
		int rc = sj != NULL ? db_message_add(s->db, s->conv_id, s->user_id, &r, &err) : -1;
		free(sj);
		if (rc != 0) {
			if (text)
				db_message_delete(s->db, s->user_id, NULL);
			return session_fail_take(s, err != NULL ? err : strdup("out of memory"));
		}
		s->reply_id = r.id;
	} else {
		if (text)
			s->user_id = session_local_id(s);
		s->reply_id = session_local_id(s);
	}
	if (text && (s->user_text = strdup(text)) == NULL)
		return session_fail(s, "out of memory");
	struct session_update *u;
	if (text) {
		session_push(s, SU_MESSAGE, s->user_id, ROLE_USER, text, strlen(text));
		if ((u = session_last_update(s)) != NULL)
			session_siblings(s, s->user_id, u);
	}
	session_push(s, SU_MESSAGE, s->reply_id, ROLE_ASSISTANT, "", 0);
	if ((u = session_last_update(s)) != NULL) {
		u->streaming = 1;
		u->finish = FINISH_INTERRUPTED;
		session_siblings(s, s->reply_id, u);
	}
	return 0;
}

/* Message id and what follows it leave the view (the file keeps them: they
 * are another branch now). */
static void
session_hide_from(struct session *s, int64_t id)
{
	session_push(s, SU_REMOVE, id, ROLE_USER, NULL, 0);
}

/* Nothing but white space (or nothing at all)? */
static int
session_blank(const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; p != NULL && *p; p++)
		if (*p != ' ' && (*p < '\t' || *p > '\r'))
			return 0;
	return 1;
}

/* A request that made the conversation failed before anything was said:
 * the conversation goes too, so nothing is left behind. */
static void
session_drop_fresh(struct session *s)
{
	if (!s->conv_fresh || s->db == NULL || s->conv_id == 0)
		return;
	s->conv_fresh = 0;
	if (db_conv_delete(s->db, s->conv_id, NULL) != 0)
		return;
	kvcache_remove(db_path(s->db), s->pid);
	s->conv_id = 0;
	s->pid[0] = '\0';
	session_set_kv_path(s);
}

int
session_send(struct session *s, const char *text)
{
	if (session_can_ask(s) != 0)
		return -1;
	if (session_blank(text))
		return session_fail(s, "the message is empty");
	session_reply_reset(s, SR_SEND);
	s->base = s->nwin;
	if (session_begin_rows(s, text, -1) != 0) {
		session_drop_fresh(s);
		return -1;
	}
	s->seq = worker_send(s->w, text, &s->gen.samp, s->gen.n_predict);
	s->busy = 1;
	return 0;
}

int
session_regenerate(struct session *s)
{
	if (session_can_ask(s) != 0)
		return -1;
	if (s->nwin < 2)
		return session_fail(s, "there is no reply to regenerate");
	session_reply_reset(s, SR_REGEN);
	s->alt_of = s->win[s->nwin - 1];
	s->base = s->nwin - 1;       /* the user message stays */
	s->user_id = s->win[s->nwin - 2];
	if (session_begin_rows(s, NULL, -1) != 0) {
		s->user_id = 0;          /* nothing changed: the old reply is still there */
		return -1;
	}
	session_hide_from(s, s->alt_of);
	s->nwin--;
	/* The view lost the new reply with the old one: show it again. */
	session_push(s, SU_MESSAGE, s->reply_id, ROLE_ASSISTANT, "", 0);
	struct session_update *u = session_last_update(s);
	if (u != NULL) {
		u->streaming = 1;
		u->finish = FINISH_INTERRUPTED;
		session_siblings(s, s->reply_id, u);
	}
	s->gen.samp.seed += 1;   /* a regenerated reply should differ */
	s->seq = worker_regenerate(s->w, &s->gen.samp, s->gen.n_predict);
	s->busy = 1;
	return 0;
}

int
session_edit(struct session *s, int64_t id, const char *text)
{
	if (session_can_ask(s) != 0)
		return -1;
	int k = s->nwin - 1;
	while (k >= 0 && s->win[k] != id)
		k--;
	if (k < 0 || k % 2 != 0)   /* the window alternates user (even), reply (odd) */
		return session_fail(s, "no such message to edit");
	session_reply_reset(s, SR_EDIT);
	int64_t parent = 0;
	char *err = NULL;
	if (s->db != NULL && db_message_parent(s->db, id, &parent, &err) != 0)
		return session_fail_take(s, err);
	s->alt_of = id;
	session_hide_from(s, id);
	s->nwin = k;
	s->base = k;
	if (session_begin_rows(s, text, s->db != NULL ? parent : -1) != 0) {
		/* The original is still there: back to it. */
		if (s->db != NULL)
			session_reload(s);
		return -1;
	}
	s->seq = worker_edit(s->w, k, text, &s->gen.samp, s->gen.n_predict);
	s->busy = 1;
	return 0;
}

void
session_stop(struct session *s)
{
	if (s->w)
		worker_stop(s->w);
}

/* ---- the worker's events ---------------------------------------------------------- */

static int
session_reply_append(struct session *s, const struct worker_event *ev)
{
	if (s->rlen + ev->len + 1 > s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 1024;
		while (cap < s->rlen + ev->len + 1)
			cap *= 2;
		char *nt = realloc(s->rtext, cap);
		if (nt == NULL)
			return -1;
		s->rtext = nt;
		s->rcap = cap;
	}
	memcpy(s->rtext + s->rlen, ev->text, ev->len);
	s->rlen += ev->len;
	s->rtext[s->rlen] = '\0';
	if (ev->id >= 0) {
		if (s->rn == s->rcap_ids) {
			int cap = s->rcap_ids ? s->rcap_ids * 2 : 256;
			int32_t *ni = realloc(s->rids, (size_t)cap * sizeof *ni);
			if (ni == NULL)
				return -1;
			s->rids = ni;
			s->rcap_ids = cap;
		}
		s->rids[s->rn++] = ev->id;
	}
	return 0;
}

static enum finish
session_finish_of(enum engine_stop_reason r)
{
	switch (r) {
	case ENGINE_STOP_EOS: return FINISH_EOS;
	case ENGINE_STOP_USER: return FINISH_STOPPED;
	case ENGINE_STOP_ERROR: return FINISH_INTERRUPTED;   /* a remote fault */
	default: return FINISH_LENGTH;
	}
}

/* The reply's stats: counts, timing, and which engine and model wrote it
 * (show and list print them). */
static char *
session_stats_json(const struct session *s, const struct engine_gen_stats *st, int ctx_size)
{
	const char *remote = worker_model(s->w);
	const char *model = remote ? remote : s->m ? engine_info(s->m)->name : NULL;
	json_t *j = json_pack("{s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:i, s:i, s:s}", "prompt_tokens", st->n_prompt,
	    "reused_tokens", st->n_reused, "generated", st->n_gen, "ttft_ms", st->ttft_ms, "prefill_ms",
	    st->prefill_ms, "tg_tps", st->tg_tps, "pp_tps", st->pp_tps, "ctx_used", st->ctx_used, "ctx_size",
	    ctx_size, "engine", remote ? "remote" : "local");
	if (j && model)
		json_object_set_new(j, "model", json_string(model));
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(j);
	return text;
}

static void session_failed(struct session *s, const char *why);

static void
session_done(struct session *s, const struct worker_event *ev)
{
	if (s->rcut) {
		/* rtext has a hole: keep nothing of it. */
		session_failed(s, "out of memory: the reply could not be kept");
		return;
	}
	const struct engine_gen_stats *st = &ev->stats;
	s->last_stats = *st;
	s->busy = 0;
	s->conv_fresh = 0;
	s->turn++;
	s->nwin = s->base;
	if (s->req != SR_REGEN)
		session_win_push(s, s->user_id);
	session_win_push(s, s->reply_id);
	/* Keep the cache for instant resume; the worker writes it once idle,
	 * before the next request. */
	if (s->kv_path) {
		worker_save(s->w, s->kv_path);
		kvcache_evict(s->o->kv_cache_max, s->kv_path);
	}
	const char *text = s->rtext ? s->rtext : "";
	size_t len = s->rtext ? s->rlen : 0;
	if (s->db) {
		char *err = NULL;
		char *stats = session_stats_json(s, st, worker_ctx_size(s->w));
		int64_t uid = s->user_id > 0 && s->n_user_ids > 0 ? s->user_id : 0;
		if (stats == NULL || db_turn_finish(s->db, s->reply_id, text, ev->ids, (size_t)ev->n_ids,
		    session_finish_of(st->reason), stats, uid, s->user_ids, (size_t)s->n_user_ids, &err) != 0) {
			session_fail_take(s, err);
			session_notice(s, 1, s->error);   /* e.g. the disk filled while saving */
		}
		free(stats);
	}
	session_push(s, SU_FINISH, s->reply_id, ROLE_ASSISTANT, text, len);
	struct session_update *u = session_last_update(s);
	if (u != NULL) {
		u->finish = session_finish_of(st->reason);
		u->stats = *st;
	}
	if (st->reason == ENGINE_STOP_ERROR) {
		/* A remote fault: the turn stays, its reply marked interrupted;
		 * the request still failed, and says why. */
		session_fail(s, ev->error ? ev->error : "the server failed");
		s->failed = 1;
		session_notice(s, 1, s->error);
	}
	s->req = SR_NONE;
}

/* The request failed (the worker dropped it, or its reply lost a piece
 * here): drop its rows, bring the worker back to the window, give the
 * user's text back. */
static void
session_failed(struct session *s, const char *why)
{
	session_fail(s, why != NULL ? why : "the request failed");
	s->busy = 0;
	s->failed = 1;
	s->nwin = s->base;
	int64_t first = s->req == SR_REGEN ? s->reply_id : s->user_id;
	if (s->db && first > 0)
		db_message_delete(s->db, first, NULL);
	session_drop_fresh(s);
	session_push(s, SU_REMOVE, first, ROLE_USER, NULL, 0);
	if (s->req != SR_SEND && s->db && s->alt_of > 0 &&
	    db_conv_select(s->db, s->conv_id, s->alt_of, NULL, NULL) == 0) {
		/* The alternative it was to is current again: the view and the
		 * worker get that branch back (the cache is kept up to it). */
		session_reload(s);
	} else {
		if (s->req == SR_REGEN && s->nwin > 0) {
			/* The worker dropped the old reply: its question leaves
			 * the window. */
			s->nwin--;
		}
		/* Whatever the worker kept of the request goes (a request whose
		 * end was lost to out of memory may have finished in the worker). */
		worker_truncate(s->w, s->nwin);
	}
	session_push(s, SU_FAILED, 0, ROLE_USER, s->error, strlen(s->error));
	struct session_update *u = session_last_update(s);
	if (u != NULL && s->req != SR_REGEN && s->user_text) {
		u->back = s->user_text;
		s->user_text = NULL;
	}
	s->req = SR_NONE;
}

/* Apply one worker event. */
static void
session_event(struct session *s, const struct worker_event *ev)
{
	char *err = NULL;
	struct session_update *u;
	switch (ev->type) {
	case WEV_PROGRESS:
		if (ev->seq != s->seq || !s->busy)
			return;
		session_push(s, SU_PROGRESS, s->reply_id, ROLE_ASSISTANT, NULL, 0);
		if ((u = session_last_update(s)) != NULL) {
			u->done = ev->done;
			u->total = ev->total;
		}
		return;
	case WEV_TOKEN:
		if (ev->seq != s->seq || !s->busy || s->rcut)
			return;
		if (session_reply_append(s, ev) != 0) {
			s->rcut = 1;
			session_stop(s);
			return;
		}
		session_push(s, SU_TEXT, s->reply_id, ROLE_ASSISTANT, ev->text, ev->len);
		if (s->db && s->reply_id > 0 && clock_now_ms() - s->last_save >= 1000) {
			if (db_reply_update(s->db, s->reply_id, s->rtext, s->rids, (size_t)s->rn, &err) != 0) {
				session_fail_take(s, err);   /* shown; the reply goes on */
				session_notice(s, 1, s->error);
			}
			s->last_save = clock_now_ms();
		}
		return;
	case WEV_USER_IDS:
		if (ev->seq != s->seq || !s->busy)
			return;
		if (ev->total > 0) {   /* the local engine: the context the reply starts from */
			session_push(s, SU_PROMPT, s->reply_id, ROLE_ASSISTANT, NULL, 0);
			if ((u = session_last_update(s)) != NULL) {
				u->done = ev->done;
				u->total = ev->total;
			}
		}
		if (ev->n_ids <= 0)
			return;
		free(s->user_ids);
		s->user_ids = malloc((size_t)ev->n_ids * sizeof *s->user_ids);
		s->n_user_ids = s->user_ids ? ev->n_ids : 0;
		if (s->user_ids)
			memcpy(s->user_ids, ev->ids, (size_t)ev->n_ids * sizeof *s->user_ids);
		return;
	case WEV_LOADED:
		if (ev->seq != s->load_seq)
			return;
		/* Say how much came from the snapshot, or why it was not used. */
		s->restored = ev->restored;
		s->prefilled = ev->done;
		free(s->notice);
		s->notice = ev->text ? strdup(ev->text) : NULL;
		if (ev->restored > 0)
			kvcache_touch(s->kv_path);
		session_push(s, SU_LOADED, 0, ROLE_USER, NULL, 0);
		if ((u = session_last_update(s)) != NULL)
			u->total = ev->total;
		/* The interface hears why a snapshot was not used only with
		 * --verbose, and never for one that was simply not made yet
		 * (a chat's first load): that is the normal case, not news. */
		if (s->notice && s->o->verbose && strstr(s->notice, strerror(ENOENT)) == NULL)
			session_notice(s, 0, s->notice);
		return;
	case WEV_OVERFLOW:
		if (ev->seq != s->seq)
			return;
		s->dropped += ev->dropped;
		session_push(s, SU_OVERFLOW, 0, ROLE_USER, NULL, 0);
		if ((u = session_last_update(s)) != NULL)
			u->done = ev->dropped;
		return;
	case WEV_READING:
	case WEV_READ:
		if (ev->seq != s->read_seq)
			return;
		session_push(s, ev->type == WEV_READ ? SU_READ : SU_READING, 0, ROLE_USER, NULL, 0);
		if ((u = session_last_update(s)) != NULL) {
			u->done = ev->done;
			u->total = ev->total;
		}
		if (ev->type == WEV_READ)
			s->read_seq = 0;
		return;
	case WEV_DONE:
		if (ev->seq == s->seq && s->busy)
			session_done(s, ev);
		return;
	case WEV_ERROR:
		if (ev->seq == s->read_seq) {
			/* The read's end was lost to out of memory: it ended all
			 * the same. */
			s->read_seq = 0;
			session_push(s, SU_READ, 0, ROLE_USER, NULL, 0);
			session_notice(s, 1, ev->text ? ev->text : "out of memory");
		} else if (ev->seq == s->seq && s->busy) {
			session_failed(s, ev->text);
		} else if (ev->text) {
			/* Not the reply's: a snapshot that could not be saved, a
			 * system prompt that did not fit in memory. */
			session_notice(s, 1, ev->text);
		}
		return;
	}
}

int
session_poll(struct session *s, struct session_update *u)
{
	struct worker_event ev;
	while (s->w && worker_poll(s->w, &ev)) {
		session_event(s, &ev);
		worker_event_free(&ev);
	}
	if (s->qn == 0)
		return 0;
	*u = s->q[s->qhead++];
	s->qn--;
	if (s->qn == 0)
		s->qhead = 0;
	return 1;
}

int
session_wait(struct session *s, void (*on_token)(void *, const char *, size_t), void *ud)
{
	struct worker_event ev;
	while (s->busy) {
		if (!worker_wait(s->w, &ev, 100)) {
			/* Nothing yet (a server thinking, a long prompt, a signal):
			 * the caller gets to look at its stop flag now. */
			if (on_token)
				on_token(ud, "", 0);
			continue;
		}
		if (ev.type == WEV_TOKEN && ev.seq == s->seq && on_token)
			on_token(ud, ev.text, ev.len);
		session_event(s, &ev);
		worker_event_free(&ev);
		/* Who waits does not draw: the view updates are not kept. */
		session_drop_updates(s);
	}
	return s->failed ? -1 : 0;
}
