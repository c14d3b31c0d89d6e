/*
 * db.h: the conversation store, one SQLite file per user.
 *
 * What lives here: conversations, their messages (text and token ids),
 * presets, settings and a full-text index over message text.  The file is
 * opened in WAL mode with foreign keys on and a 5 s busy timeout, so two
 * llama2-chat processes can share it: every write is one short
 * BEGIN IMMEDIATE transaction, and a process that cannot get the write lock
 * within the timeout gets an error rather than a half-done write.
 * A handle belongs to one thread at a time (open one per thread if two
 * need the database).
 * synchronous=NORMAL: a committed write survives kill -9 of the process;
 * after a power cut the last second or so of writes may be lost, never
 * the consistency of the file.
 *
 * Conversation ids.  Every conversation has a random public id of
 * DB_PID_LEN (6) characters from the 31-character alphabet
 * DB_PID_ALPHABET: digits 2-9 and lowercase letters without i, l and o, so
 * nothing on screen can be read two ways (0/o, 1/l/i).  31^6 is about 887
 * million ids, so collisions are rare and retried.  Wherever an id is
 * typed, any prefix of it that matches exactly one conversation will do
 * (one character is enough while it is unique); input is lower-cased
 * first.  A prefix matching several is an error that lists them; one
 * matching none is an error.  The integer rowid (db_conv.id) is the
 * handle inside the program and is never shown to people.
 *
 * Times are Unix milliseconds (UTC).  Token ids are stored as
 * little-endian int32 blobs.  Sampling parameters, sampler settings and
 * stats are JSON object text; the keys the program uses for sampling are
 * "temperature", "top_k", "top_p", "min_p", "repeat_penalty" (a key that
 * is absent means "the engine's default").  Integers inside these JSON
 * texts must fit in int64 (export reads them with jansson); a uint64 seed
 * belongs in the message's seed field, which takes the full range.
 *
 * Errors.  Nothing here prints or exits.  A function that can fail returns
 * -1 (or NULL) and, when err is not NULL, sets *err to a malloc'd one-line
 * message naming the database file and the problem ("chats.db: database is
 * locked by another process ..."); the caller frees it.  A failed write
 * leaves the database exactly as it was before the call.
 *
 * Ownership.  Structs filled by this module (db_conv_load, db_conv_list,
 * db_search, db_preset_*) own their strings and are released with the
 * matching *_free.  Structs the caller passes in (db_conv_create,
 * db_message_append) are only read, apart from the output fields named in
 * each comment.
 */
#ifndef STORAGE_DB_H
#define STORAGE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "common/msg.h"

#define DB_PID_LEN 6
#define DB_PID_ALPHABET "23456789abcdefghjkmnpqrstuvwxyz"

struct db;

/* Roles and finish reasons: common/msg.h (every reply is FINISH_INTERRUPTED
 * from db_reply_begin until db_reply_finish). */

struct db_message {
	int64_t id;             /* rowid; output of append */
	int position;           /* 0, 1, 2 ... within its conversation in writing order
	                         * (unique; a child's is larger than its parent's); output of append */
	int64_t parent;         /* rowid of the parent message, 0 for a root; output of append */
	int parent_position;    /* from load: the parent's position, -1 for a root; read by
	                         * db_conv_insert when the conversation is a tree */
	int n_siblings;         /* from load: alternatives under the same parent, itself included */
	int sibling;            /* from load: its index among them (0-based, in position order) */
	enum role role;
	char *content;          /* UTF-8 text; "" while a reply has produced nothing */
	int32_t *tokens;        /* (n_tokens) token ids, or NULL when not tokenized */
	size_t n_tokens;
	int64_t created;        /* Unix ms; output of append */
	enum finish finish;
	char *stats;            /* JSON object text (tokens/s, timings...) or NULL */
	char *sampler;          /* replies: the exact sampler settings, JSON, or NULL */
	int has_seed;           /* replies: seed is the RNG seed used */
	uint64_t seed;
};

struct db_conv {
	int64_t id;                     /* rowid, the handle for every call below */
	char pid[DB_PID_LEN + 1];       /* public id, NUL-terminated */
	char *title;                    /* NULL until the first user message sets one */
	int64_t created, updated;       /* Unix ms */
	char *model_name;               /* model file name, or NULL */
	char *model_fingerprint;        /* e.g. a hash of the model header, or NULL */
	char *system_prompt;            /* NULL or text */
	char *preset;                   /* name of the preset it started from, or NULL */
	char *params;                   /* sampling parameters, JSON object text, or NULL */
	int n_messages;                 /* list: every message; load: how many are in messages */
	struct db_message *messages;    /* (n_messages) in position order; only from db_conv_load */
	int tree;                       /* 1: messages holds every branch (db_conv_load_tree);
	                                 * 0: the current branch only, root first (db_conv_load) */
	int64_t leaf;                   /* from load: rowid of the current branch's last message, 0 if none */
	int leaf_position;              /* from load: its position, -1 if none; read by db_conv_insert */
};

struct db_hit {
	int64_t conv_id;
	char pid[DB_PID_LEN + 1];
	char *title;                    /* may be NULL */
	int64_t msg_id;                 /* the message that matched */
	int position;
	enum role role;
	int64_t created;
	char *snippet;                  /* text around the match, matches between the caller's marks */
};

struct db_preset {
	char *name;
	char *system_prompt;            /* never NULL */
	char *params;                   /* JSON object text, never NULL ("{}" when empty) */
	int builtin;                    /* 1: shipped with the program, read-only */
	int64_t created, updated;
};

/* ---- opening and closing ------------------------------------------------ */

/*
 * Open (creating it 0600 if missing) the database at path and bring its
 * schema up to date.  The folder must exist; making it is the caller's job.
 * Returns a handle for db_close, or NULL with *err set: the file cannot be
 * created or opened, is not an SQLite database, is corrupt, belongs to some
 * other program (tables but no llama2-chat schema), or was written by a
 * newer llama2-chat.
 */
struct db *db_open(const char *path, char **err);
/*
 * For the commands that only read (list, show, search, export): as
 * db_open, but when the file or its folder cannot be written (permissions,
 * a read-only mount, an immutable file) it is opened read-only instead,
 * with no migration and no journal change; a schema older than this
 * program's is then an error that says so.  Writes through such a handle
 * fail with "the database is read-only".
 */
struct db *db_open_read(const char *path, char **err);
/* Close the handle (NULL is fine).  Every result it returned stays valid. */
void db_close(struct db *d);
/* The path given to db_open (owned by d). */
const char *db_path(const struct db *d);

/* ---- conversations -------------------------------------------------------- */

/*
 * Create an empty conversation from c's title, model_name,
 * model_fingerprint, system_prompt, preset and params (any may be NULL;
 * params must be a JSON object when set).  On success fills c->id, c->pid,
 * c->created, c->updated and sets c->n_messages = 0; c's strings stay the
 * caller's.  -1 with *err on failure, nothing written.
 */
int db_conv_create(struct db *d, struct db_conv *c, char **err);
/*
 * Rewrite a conversation's title, model_name, model_fingerprint,
 * system_prompt, preset and params from c (by c->id) and touch its updated
 * time.  -1 with *err if it does not exist or the write fails.
 */
int db_conv_update(struct db *d, const struct db_conv *c, char **err);
/* Set the title (NULL or "" clears it).  -1 with *err when the id is unknown. */
int db_conv_rename(struct db *d, int64_t id, const char *title, char **err);
/* Delete a conversation and all its messages.  -1 with *err when unknown. */
int db_conv_delete(struct db *d, int64_t id, char **err);
/*
 * Resolve a typed id (any unique prefix of a public id, see the top of this
 * file) to the rowid in *id.  -1 with *err when nothing matches, when the
 * prefix is ambiguous (the message lists the candidates), or on a
 * database error.
 */
int db_conv_resolve(struct db *d, const char *prefix, int64_t *id, char **err);
/* The most recently updated conversation: 1 with *id set, 0 when there are none, -1 with *err. */
int db_conv_latest(struct db *d, int64_t *id, char **err);
/*
 * Load a conversation with the messages of its current branch, root first
 * (content, token ids, parent and sibling numbers), into a new struct for
 * db_conv_free.  NULL with *err when unknown or on error.
 */
struct db_conv *db_conv_load(struct db *d, int64_t id, char **err);
/* The same with every message of every branch, in position order (c->tree = 1). */
struct db_conv *db_conv_load_tree(struct db *d, int64_t id, char **err);
/* Free a struct from db_conv_load (NULL is fine). */
void db_conv_free(struct db_conv *c);
/*
 * The `limit` most recently updated conversations (newest first, limit <= 0
 * means all), without messages but with n_messages.  0 with *out (free with
 * db_conv_array_free) and *n set, or -1 with *err.
 */
int db_conv_list(struct db *d, int limit, struct db_conv **out, size_t *n, char **err);
void db_conv_array_free(struct db_conv *a, size_t n);
/* How many conversations there are: 0 with *n, or -1 with *err. */
int db_conv_count(struct db *d, int64_t *n, char **err);
/*
 * Insert a whole conversation as given (import): c's fields including
 * created/updated, and its n_messages messages with their roles, content,
 * tokens, created, finish, stats, sampler and seed.  With c->tree the
 * messages keep their positions (increasing, >= 0), each hangs under the
 * one at parent_position (-1: a root; it must come earlier) and the one
 * at leaf_position (-1: the last) becomes the current leaf; without, they
 * are one branch in array order, renumbered 0..n-1.  A new public id is
 * drawn.  Fills c->id, c->pid and the messages' id, position and parent.
 * All or nothing: -1 with *err and nothing written on failure.
 */
int db_conv_insert(struct db *d, struct db_conv *c, char **err);

/* ---- messages and streaming replies ----------------------------------- */

/*
 * Append m to conversation conv as a child of its current leaf, committed
 * before this returns (the chat code calls it for the user's message
 * before generation starts); m becomes the current leaf.  Reads m's role, content (NULL means ""), tokens,
 * finish, stats, sampler, has_seed/seed; fills m->id, m->position and
 * m->created.  The first user message of an untitled conversation gives it
 * its title (about 50 characters).  -1 with *err, nothing written.
 */
int db_message_append(struct db *d, int64_t conv, struct db_message *m, char **err);
/*
 * The same under the message parent (0: a new root) instead of the current
 * leaf: an alternative to parent's other children (regenerate, edit).
 * m becomes the current leaf.  -1 with *err when parent is not a message
 * of conv.
 */
int db_message_add(struct db *d, int64_t conv, int64_t parent, struct db_message *m, char **err);
/*
 * Set the token ids of an existing message (e.g. the user's, once the
 * worker has tokenized it after the text was committed); NULL tokens
 * clears them.  Content is untouched.  -1 with *err when msg_id is unknown.
 */
int db_message_set_tokens(struct db *d, int64_t msg_id, const int32_t *tokens, size_t n_tokens,
    char **err);
/*
 * Start a reply: append (as a child of the current leaf) an assistant message with empty content and finish
 * INTERRUPTED, remembering the sampler settings (JSON or NULL) and seed.
 * Sets *msg_id for the two calls below.  -1 with *err.
 */
int db_reply_begin(struct db *d, int64_t conv, const char *sampler, int has_seed, uint64_t seed,
    int64_t *msg_id, char **err);
/*
 * Replace the reply's content and token ids with what has been generated so
 * far (the whole text, not a delta).  Each call is one short transaction;
 * the chat code calls it about once a second while streaming.  On -1
 * (*err set; e.g. the disk is full) the previously saved text is intact.
 */
int db_reply_update(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, char **err);
/* The final update: content, token ids, why it ended and stats (JSON or NULL). */
int db_reply_finish(struct db *d, int64_t msg_id, const char *content, const int32_t *tokens,
    size_t n_tokens, enum finish finish, const char *stats, char **err);
/*
 * The final update of a turn in one transaction: the reply as
 * db_reply_finish writes it and, when user_id is not 0, the token ids of
 * the user message it answers (as db_message_set_tokens).  Either both are
 * written or neither; -1 with *err.
 */
int db_turn_finish(struct db *d, int64_t reply_id, const char *content, const int32_t *tokens,
    size_t n_tokens, enum finish finish, const char *stats, int64_t user_id, const int32_t *user_tokens,
    size_t n_user_tokens, char **err);
/*
 * Delete message msg_id of conv and every message after it (by position),
 * for regenerate, edit-and-resend and a failed request.  -1 with *err when
 * msg_id is not a message of conv.
 */
int db_message_delete_from(struct db *d, int64_t conv, int64_t msg_id, char **err);

/* ---- the tree of messages (db_tree.c) ------------------------------------ */

/*
 * The alternatives of msg_id: every message under the same parent (or
 * every root), itself included, in position order.  0 with *ids
 * (malloc'd), *n and *index (msg_id's place), or -1 with *err.
 */
int db_message_siblings(struct db *d, int64_t msg_id, int64_t **ids, size_t *n, size_t *index,
    char **err);
/* The current branch of conv, root first: 0 with *ids (malloc'd, NULL
 * when empty) and *n, or -1 with *err. */
int db_conv_branch(struct db *d, int64_t conv, int64_t **ids, size_t *n, char **err);
/*
 * Make the branch through msg_id current: the leaf becomes the newest
 * message under msg_id (msg_id itself when it has no children), whose rowid
 * goes to *leaf (may be NULL).  -1 with *err when msg_id is not in conv.
 */
int db_conv_select(struct db *d, int64_t conv, int64_t msg_id, int64_t *leaf, char **err);
/*
 * Delete msg_id and every message under it (a request that failed).  When
 * it was on the current branch its parent becomes the leaf.  -1 with *err.
 */
int db_message_delete(struct db *d, int64_t msg_id, char **err);
/* The parent of msg_id (0 for a root) in *parent; -1 with *err when unknown. */
int db_message_parent(struct db *d, int64_t msg_id, int64_t *parent, char **err);

/* ---- search ------------------------------------------------------------- */

/*
 * Search all message text, newest first, at most limit hits (<= 0: 20).
 * db_search takes plain text: words (all must occur, any punctuation in
 * them is fine), "phrases", prefix*, AND/OR/NOT between words; CJK terms
 * match as substrings (東 finds 東京).  db_search_fts takes FTS5's query
 * syntax as it is.  Each snippet has its matches between mark_open and
 * mark_close (either may be ""; NULL means "").  0 with *out
 * (db_hits_free) and *n, or -1 with *err, which for a malformed FTS5 query
 * says so and quotes it.
 */
int db_search(struct db *d, const char *query, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err);
int db_search_fts(struct db *d, const char *query, int limit, const char *mark_open,
    const char *mark_close, struct db_hit **out, size_t *n, char **err);
void db_hits_free(struct db_hit *h, size_t n);

/* ---- presets -------------------------------------------------------------- */

/*
 * Built-in presets (assistant, concise, storyteller, translator, sentiment,
 * summarizer, coder) are created by the schema and are read-only: update
 * and remove refuse them with a message suggesting
 * `presets add NAME --from <builtin>`.  Names are 1-64 characters of
 * letters, digits, '.', '_' and '-', compared without case.
 */
int db_preset_list(struct db *d, struct db_preset **out, size_t *n, char **err);
/* Fill *p (db_preset_clear) from the preset called name; -1 with *err when unknown. */
int db_preset_get(struct db *d, const char *name, struct db_preset *p, char **err);
/* A built-in preset by name, read without any database file (--no-save):
 * 0 with *p (db_preset_clear), or -1 with *err when there is no built-in
 * of that name. */
int db_preset_builtin(const char *name, struct db_preset *p, char **err);
/* Add a user preset; system NULL means "", params NULL means "{}".  -1 if the name is taken. */
int db_preset_add(struct db *d, const char *name, const char *system, const char *params, char **err);
/* Change a user preset; a NULL system or params keeps the old value. */
int db_preset_update(struct db *d, const char *name, const char *system, const char *params,
    char **err);
int db_preset_remove(struct db *d, const char *name, char **err);
void db_preset_clear(struct db_preset *p);
void db_preset_array_free(struct db_preset *a, size_t n);

/* ---- settings --------------------------------------------------------------- */

/* 1 with *value (malloc'd) when key is set, 0 when not, -1 with *err. */
int db_setting_get(struct db *d, const char *key, char **value, char **err);
/* Set key to value; a NULL value deletes the key.  -1 with *err. */
int db_setting_set(struct db *d, const char *key, const char *value, char **err);

/* ---- names --------------------------------------------------------------- */

const char *db_role_name(enum role r);             /* "system", "user", "assistant" */
int db_role_parse(const char *s, enum role *r);     /* 0, or -1 when unknown */
const char *db_finish_name(enum finish f);         /* NULL for NONE, else "eos"... */
int db_finish_parse(const char *s, enum finish *f); /* NULL -> NONE; -1 when unknown */

#endif
