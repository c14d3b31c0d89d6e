/*
 * session.h: one conversation being chatted, and the only door from the
 * interface (ui/) and the chat commands (cmd_chat.c) to the database and
 * the engine's worker thread.  struct session is opaque.
 *
 * Messages are named by id everywhere: the database row's id, or, with
 * --no-save, an id the session makes up (negative).  The session keeps the
 * ids of the messages the worker holds (the window) in order, so that
 * regenerate, edit and a failed request delete exactly the rows they
 * should, also when loading skipped rows (system rows, repeated roles)
 * that the chat format cannot hold.  A conversation is a list today; each
 * message will have a parent and the conversation a current leaf
 * (issue 13), which is why every call takes or returns ids, never
 * positions.
 *
 * Saving, as every chat mode does it:
 *   session_send     commits the user's message and an empty reply marked
 *                    interrupted, then asks the worker for the reply;
 *   session_poll     applies the worker's events to the database (the
 *                    reply's text and ids at most about a second apart
 *                    while it streams; at the end, in one transaction, the
 *                    reply with its reason and stats and the user's token
 *                    ids) and turns them into view updates.  kill -9 at any
 *                    moment leaves a consistent file holding the partial
 *                    reply, marked interrupted.
 *
 * Errors: calls that can fail return -1 and keep a one-line message for
 * session_error / session_take_error.  None of the calls that change the
 * conversation may be made while a reply is in flight (they fail).
 */
#ifndef APP_SESSION_H
#define APP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "app/settings.h"
#include "common/msg.h"
#include "engine/engine.h"

struct opts;
struct session;

/*
 * Open a session: the database (unless --no-save), --preset and -s, the
 * worker when m is given (m NULL: history only, and the requests that need
 * a model fail with "no model is loaded"), and for -c / --resume the
 * conversation to continue.  NULL after printing one line, with *status
 * the exit status.  The model must outlive the session.  With o->prefetch
 * the worker first reads the model's file in (SU_READING, SU_READ), and
 * the requests made meanwhile wait behind it.
 */
struct session *session_open(const struct opts *o, struct engine_model *m, int *status);
/* Stop a reply in flight (keeping its partial text, marked interrupted),
 * join the worker, close the database, free s.  NULL is fine. */
void session_close(struct session *s);

/* ---- state ---------------------------------------------------------------- */

int session_busy(const struct session *s);         /* a reply is in flight */
int session_has_model(const struct session *s);
const struct engine_info *session_model(const struct session *s);   /* NULL: none */
/* The remote engine's model (--remote), NULL for the local engine or none. */
const char *session_remote_model(const struct session *s);
int session_saves(const struct session *s);        /* the database is on */
int64_t session_conv(const struct session *s);     /* 0: not stored yet */
const char *session_pid(const struct session *s);  /* "" when not stored */
const char *session_system(const struct session *s);   /* NULL: none */
const char *session_preset(const struct session *s);   /* NULL: none */
const struct gen_settings *session_settings(const struct session *s);
int session_ctx_size(const struct session *s);     /* 0 without a model */
/* Readable when session_poll has something (-1 without a model). */
int session_fd(const struct session *s);
/* Replies finished in this session, and the last one's figures. */
int session_turn(const struct session *s);
const struct engine_gen_stats *session_stats(const struct session *s);
/* The last error (NULL: none); _take hands it over (malloc'd) and forgets it. */
const char *session_error(const struct session *s);
char *session_take_error(struct session *s);
/* The last load's KV snapshot: its file (NULL: none), the positions read
 * from it and computed, and why it was not used (take: malloc'd or NULL). */
const char *session_kv_path(const struct session *s);
int session_kv_restored(const struct session *s);
int session_kv_prefilled(const struct session *s);
char *session_take_kv_notice(struct session *s);
/* The last reply's text and token ids (owned by s, valid until the next
 * request), and how many messages have left the window so far. */
const char *session_reply_text(const struct session *s, size_t *len);
const int32_t *session_reply_ids(const struct session *s, int *n);
int session_dropped(const struct session *s);
/* The id of the last user message the worker holds (what edit edits), or 0. */
int64_t session_last_user(const struct session *s);

/* ---- view updates -------------------------------------------------------- */

enum su_type {
	SU_CLEAR,                 /* another conversation: forget every message */
	SU_MESSAGE,               /* a message at the end: id, role, text, finish, streaming */
	SU_TEXT,                  /* text (len bytes) streamed onto reply id */
	SU_FINISH,                /* reply id ended: text (the whole reply), finish, stats */
	SU_REMOVE,                /* message id and every one after it are gone */
	SU_PROGRESS,              /* prompt processing: done of total */
	SU_LOADED,                /* the conversation is in the cache: total = context used */
	SU_FAILED,                /* the request failed: text why; back = the user's text, if it went */
	SU_NOTICE,                /* text to show (err: an error) */
	SU_OVERFLOW,              /* done messages moved out of the context window */
	SU_PROMPT,                /* the reply's prompt: done tokens kept in the cache, of total */
	SU_READING,               /* the model's file is being read: done of total KiB */
	SU_READ,                  /* the file was read: done of total KiB (less: stopped) */
};

struct session_update {
	enum su_type type;
	int64_t id;
	enum role role;
	enum finish finish;
	int streaming;
	char *text;               /* owned (session_update_free) */
	size_t len;
	char *back;               /* owned */
	int done, total, err;
	struct engine_gen_stats stats;
	int sibling, n_siblings;  /* SU_MESSAGE: its place among its alternatives (0-based), how many */
};

/* Apply the worker's waiting events (database side) and hand out the next
 * view update: 1 and *u filled, or 0 when there is none.  Never blocks. */
int session_poll(struct session *s, struct session_update *u);
void session_update_free(struct session_update *u);
/* Block until the reply in flight ends; on_token (may be NULL) gets its
 * text as it streams, and empty text when nothing came for 100 ms or a
 * signal arrived (so a stop flag set by a signal handler is seen at once).  Updates stay queued for session_poll.  0, or -1
 * when the request failed (session_error says why). */
int session_wait(struct session *s, void (*on_token)(void *, const char *, size_t), void *ud);

/* ---- the conversation ---------------------------------------------------- */

/* Start a reply to text: 0, or -1. */
int session_send(struct session *s, const char *text);
/* Stop the reply in flight (its text so far is kept, finish STOPPED). */
void session_stop(struct session *s);
/* Generate the last reply again (a new seed) as an alternative to it: the
 * old one stays, a sibling, and the new one is current. */
int session_regenerate(struct session *s);
/* Send text as an alternative to user message id (one the worker holds):
 * the old message and what followed it stay as another branch. */
int session_edit(struct session *s, int64_t id, const char *text);
/*
 * Move from message id to its alternative `step` places on (-1: the one
 * before, 1: the one after; clamped): the branch through it becomes
 * current (down to its newest message), the view gets it and the worker
 * keeps its cache up to the fork and prefills only the rest.  1 when it
 * moved, 0 when there was nowhere to go, -1 on error.
 */
int session_select(struct session *s, int64_t id, int step);
/* Make stored conversation id the current one: its messages (as updates),
 * system prompt, preset and settings; the worker, if any, prefills it.
 * Writes nothing. */
int session_switch(struct session *s, int64_t id);
/* A new, empty conversation with the system prompt, preset and settings
 * the command line and config gave (not the previous chat's); it is
 * stored with its first message. */
int session_new_chat(struct session *s);
/* Rename / delete the current stored conversation (delete then starts a
 * new chat).  An empty title clears it. */
int session_rename(struct session *s, const char *title);
int session_delete(struct session *s);
/* This chat's system prompt (NULL or "" for none; the chat then has no
 * preset); stored at once if the chat is. */
int session_set_system(struct session *s, const char *system);
/* Apply stored preset name: its system prompt and its settings over the
 * command line's defaults (the seed stays). */
int session_apply_preset(struct session *s, const char *name);
/* This chat's settings (sampling, reply length); stored at once if the
 * chat is. */
int session_set_settings(struct session *s, const struct gen_settings *g);
/* Write the current stored conversation to path as format ("md", "txt",
 * "json", "html"); without force an existing file is an error. */
int session_export(struct session *s, const char *format, const char *path, int force);

/* ---- lists ----------------------------------------------------------------- */

struct session_conv {
	int64_t id;
	char pid[8];
	char *title;              /* NULL: untitled */
	int64_t updated;          /* Unix ms */
	int n_messages;
};
/* The newest limit stored conversations: 0 with *out (session_convs_free)
 * and *n, or -1. */
int session_list(struct session *s, int limit, struct session_conv **out, size_t *n);
void session_convs_free(struct session_conv *a, size_t n);

struct session_hit {
	int64_t conv_id, msg_id;
	char *title;              /* NULL: untitled */
	enum role role;
	char *snippet;            /* matches between \x01 and \x02 */
};
int session_search(struct session *s, const char *query, int limit, struct session_hit **out, size_t *n);
void session_hits_free(struct session_hit *a, size_t n);

struct session_preset {
	char *name, *system;
};
int session_presets(struct session *s, struct session_preset **out, size_t *n);
void session_presets_free(struct session_preset *a, size_t n);

#endif
