/*
 * session.h: one conversation being chatted: the engine's worker thread on
 * one side, the database on the other.  Every chat mode (the one-shot -p,
 * piped `chat`, the ncurses interface) goes through here, so all of them
 * save the same way:
 *
 *   session_submit   commits the user's message and an empty reply marked
 *                    interrupted, then asks the worker for the reply;
 *   session_event    applies a worker event to the database: the reply's
 *                    text and ids are written at most about a second apart
 *                    while it streams, and finished with its reason and
 *                    stats.  kill -9 at any moment leaves a consistent file
 *                    holding the partial reply, marked interrupted.
 */
#ifndef APP_SESSION_H
#define APP_SESSION_H

#include <stdint.h>

#include "app/cli.h"
#include "engine/chat.h"
#include "engine/worker.h"

struct db;
struct db_conv;

struct session {
	const struct opts *o;
	struct engine_model *m;       /* not owned */
	struct worker *w;             /* owned */
	struct db *db;                /* owned; NULL with --no-save */
	int64_t conv_id;              /* 0 until the first message is saved */
	char pid[8];
	char *system;                 /* the conversation's system prompt */
	char *preset;
	struct engine_sampling samp;
	int n_msgs;                   /* messages the worker holds */
	int turn;
	/* The reply in flight. */
	int busy;
	int seq;
	int64_t user_msg_id, reply_id;
	char *rtext;
	size_t rlen, rcap;
	int32_t *rids;
	int rn, rcap_ids;
	double last_save;
	struct engine_gen_stats last_stats;
	int last_reason;
	int failed;                   /* the last request ended in WEV_ERROR */
	int user_counted;             /* its user turn was counted in n_msgs */
	char *error;                  /* last error (malloc'd) */
	int dropped;                  /* messages moved out of the window, in total */
	int load_seq;                 /* the worker's request of the last load (switch, new chat) */
	char *kv_path;                /* the conversation's KV snapshot, or NULL */
	int restored, prefilled;      /* last load: positions from the snapshot / computed */
	char *notice;                 /* last load: why the snapshot was not used */
};

/* Open the model's worker and (unless --no-save) the database; resume a
 * conversation for -c/--resume.  Returns 0 or an exit status after printing
 * one line. */
int session_open(struct session *s, const struct opts *o, struct engine_model *m);
void session_close(struct session *s);
/* Start a reply to text.  0, or -1 with s->error set. */
int session_submit(struct session *s, const char *text);
/* Drop the last reply and generate it again / edit user message k. */
int session_regenerate(struct session *s);
int session_edit(struct session *s, int k, const char *text);
/* Apply ev (storage side); returns 1 when the reply in flight is finished. */
int session_event(struct session *s, const struct worker_event *ev);
/* Block until the reply finishes; on_token prints (may be NULL); it is
 * also called with empty text when nothing came for 100 ms or a signal
 * arrived, so that a stop flag set by a signal handler is seen at once. */
int session_wait(struct session *s, void (*on_token)(void *, const char *, size_t), void *ud);
/* Stop the reply in flight. */
void session_stop(struct session *s);

/*
 * For the interface, which keeps one session and moves between chats.
 * None of these may be called while a reply is in flight (they fail with
 * s->error set); errors are -1 with s->error set (malloc'd, kept until the
 * next error or session_close).
 */
/* A session without a model (history-only interface): the database alone
 * (none with --no-save), --preset and -s applied; the requests that need
 * the worker fail with "no model is loaded".  0 or an exit status after
 * printing one line. */
int session_open_store(struct session *s, const struct opts *o);
/* Make stored conversation id the current one: its system prompt, preset
 * and sampling become the session's, and the worker (if any) gets its
 * messages and prefills them (s->load_seq says which request).  With out,
 * the loaded conversation is handed to the caller (db_conv_free). */
int session_switch(struct session *s, int64_t id, struct db_conv **out);
/* Start a new, empty conversation keeping the system prompt, preset and
 * sampling; it is stored with its first message. */
int session_new_chat(struct session *s);
/* Set this chat's system prompt (NULL or "" for none) and preset name
 * (NULL for none); stored at once if the chat is. */
int session_set_system(struct session *s, const char *system, const char *preset);
/* Apply stored preset name: its system prompt, and its sampling keys over
 * the command line's (the seed stays). */
int session_apply_preset(struct session *s, const char *name);
/* Set this chat's sampling; stored in its params at once if the chat is. */
int session_set_sampling(struct session *s, const struct engine_sampling *p);

#endif
