/*
 * session_int.h: the session's state, shared by session.c (opening,
 * loading, the conversation's settings), session_store.c (lists, search,
 * presets, export) and session_reply.c (the requests to the worker, its
 * events, the view updates).  Nothing outside those files includes it.
 */
#ifndef APP_SESSION_INT_H
#define APP_SESSION_INT_H

#include "app/cli.h"
#include "app/session.h"
#include "engine/worker.h"

struct db;

/* What the request in flight is. */
enum session_req { SR_NONE, SR_SEND, SR_REGEN, SR_EDIT };

struct session {
	const struct opts *o;
	struct engine_model *m;       /* not owned; NULL: history only */
	struct worker *w;             /* owned; NULL without a model */
	struct db *db;                /* owned; NULL with --no-save */
	int64_t conv_id;              /* 0 until the first message is saved */
	char pid[8];
	char *system;                 /* the conversation's system prompt, NULL: none */
	char *preset;
	struct gen_settings gen;
	/* The window: ids of the messages the worker holds, in its order
	 * (win[k] is the worker's message k). */
	int64_t *win;
	int nwin, capwin;
	int64_t next_local;           /* ids made up without a database: -1, -2, ... */
	int turn;
	/* The request in flight. */
	int busy;
	enum session_req req;
	int seq;
	int base;                     /* window messages before the request's */
	int64_t user_id, reply_id;    /* its rows (reply_id: also the view's id) */
	int64_t alt_of;               /* SR_REGEN/SR_EDIT: the message it is an alternative to */
	int conv_fresh;               /* the stored conversation was made for the request in flight */
	char *user_text;              /* SR_SEND/SR_EDIT: given back when it fails */
	int32_t *user_ids;            /* the user turn's tokens (WEV_USER_IDS) */
	int n_user_ids;
	char *rtext;                  /* the reply so far: the app's one copy */
	size_t rlen, rcap;
	int rcut;                     /* a piece could not be kept: the request fails */
	int32_t *rids;
	int rn, rcap_ids;
	double last_save;
	struct engine_gen_stats last_stats;
	int failed;                   /* the last request ended in WEV_ERROR */
	char *error;
	int dropped;
	int load_seq;
	int read_seq;                 /* worker_prefetch's request, 0: none */
	char *kv_path;
	int restored, prefilled;
	char *notice;
	/* View updates not yet handed out (a FIFO). */
	struct session_update *q;
	size_t qhead, qn, qcap;
};

/* ---- session.c ---- */
/* Set s->error to msg (copied); returns -1. */
int session_fail(struct session *s, const char *msg);
/* The same with a malloc'd message, freed. */
int session_fail_take(struct session *s, char *err);
/* -1 with the error set when nothing is saved (--no-save). */
int session_need_db(struct session *s);
/* -1 with the error set when no conversation is open. */
int session_need_conv(struct session *s);
/* The snapshot file of the current conversation, or NULL. */
void session_set_kv_path(struct session *s);
/* Store the conversation now if it is not yet (before its first message). */
int session_ensure_conv(struct session *s);
/* Load the current branch of the stored conversation again (view and
 * worker; the worker keeps its cache up to where the branches part). */
int session_reload(struct session *s);

/* ---- session_reply.c ---- */
/* Queue a view update (text copied; NULL allowed). */
void session_push(struct session *s, enum su_type type, int64_t id, enum role role, const char *text,
    size_t len);
/* The update queued last (to fill in more fields), or NULL on out of memory. */
struct session_update *session_last_update(struct session *s);
/* Forget every queued update. */
void session_drop_updates(struct session *s);
/* Append id to the window. -1 on out of memory. */
int session_win_push(struct session *s, int64_t id);
/* A new message id without a database. */
int64_t session_local_id(struct session *s);

#endif
