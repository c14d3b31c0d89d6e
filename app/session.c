/*
 * session.c: a conversation between the worker thread and the database:
 * opening (database, preset, resume), loading a stored conversation into
 * the worker, the conversation's system prompt, preset and settings, and
 * what the interface lists (conversations, search hits, presets) and
 * exports.  The requests and the worker's events are session_reply.c's.
 *
 * Invariant: the worker holds messages win[0..nwin), rows of the stored
 * conversation (or made-up ids with --no-save) in position order, apart
 * from the request in flight.  Loading picks the rows the chat format can
 * hold (no system rows; user and assistant alternating, starting with a
 * user message and ending with a reply) and writes nothing; the rows it
 * leaves out stay in the file and in the view.
 */
#include "app/session_int.h"
#include "app/kvcache.h"
#include "app/paths.h"
#include "app/replay.h"
#include "engine/chat.h"
#include "engine/remote.h"
#include "storage/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
session_fail(struct session *s, const char *msg)
{
	free(s->error);
	s->error = strdup(msg != NULL ? msg : "error");
	return -1;
}

int
session_fail_take(struct session *s, char *err)
{
	session_fail(s, err != NULL ? err : "out of memory");
	free(err);
	return -1;
}

/* The snapshot file (see kvcache.c), or NULL when nothing is saved
 * (--no-save, no conversation yet, no cache folder). */
void
session_set_kv_path(struct session *s)
{
	free(s->kv_path);
	s->kv_path = s->db && s->m && s->pid[0] ? kvcache_path(db_path(s->db), s->pid) : NULL;
}

static int
session_idle(struct session *s)
{
	if (s->busy)
		return session_fail(s, "a reply is still being generated");
	return 0;
}

int
session_need_db(struct session *s)
{
	if (s->db == NULL)
		return session_fail(s, "nothing is saved in this session (--no-save)");
	return 0;
}

/* ---- loading ---------------------------------------------------------------- */

/*
 * Which rows of c the worker can hold, as indices into c->messages: no
 * system rows; of a run of user messages the last (the one a reply
 * answers), of a run of replies the first; no reply before the first user
 * message, and no user message without a reply at the end.  Returns the
 * count; keep is (n_messages) ints.
 */
static int
session_pick(const struct db_conv *c, int *keep)
{
	int k = 0;
	for (int i = 0; i < c->n_messages; i++) {
		enum role r = c->messages[i].role;
		if (r == ROLE_SYSTEM)
			continue;
		int last = k > 0 ? (int)c->messages[keep[k - 1]].role : -1;
		if (r == ROLE_USER && last == (int)ROLE_USER)
			keep[k - 1] = i;             /* a later user message replaces it */
		else if (r == ROLE_ASSISTANT && last != (int)ROLE_USER)
			continue;                    /* no question before it */
		else
			keep[k++] = i;
	}
	if (k > 0 && c->messages[keep[k - 1]].role == ROLE_USER)
		k--;
	return k;
}

/* The view: every row of c, as it is stored. */
static void
session_show(struct session *s, const struct db_conv *c, int loading)
{
	session_push(s, SU_CLEAR, 0, ROLE_USER, NULL, 0);
	struct session_update *u = session_last_update(s);
	if (u != NULL)
		u->done = loading;
	for (int i = 0; c != NULL && i < c->n_messages; i++) {
		const struct db_message *m = &c->messages[i];
		session_push(s, SU_MESSAGE, m->id, m->role, m->content, strlen(m->content));
		if ((u = session_last_update(s)) != NULL) {
			u->finish = m->finish;
			u->sibling = m->sibling;
			u->n_siblings = m->n_siblings;
		}
	}
}

/*
 * Make c the session's conversation: the view gets its rows and the
 * worker the ones it can hold (prefilled, from the snapshot when usable).
 * Resuming at start-up keeps a -s given on the command line; switching
 * takes the conversation's own system prompt, preset and settings.
 * switching 2: another branch of the same conversation, settings kept; the
 * worker's cache (the old branch) is a better start than the snapshot.
 */
static int
session_load(struct session *s, const struct db_conv *c, int switching)
{
	int *keep = calloc((size_t)c->n_messages + 1, sizeof *keep);
	int *roles = calloc((size_t)c->n_messages + 1, sizeof *roles);
	const char **contents = calloc((size_t)c->n_messages + 1, sizeof *contents);
	int32_t **ids = calloc((size_t)c->n_messages + 1, sizeof *ids);
	int *n_ids = calloc((size_t)c->n_messages + 1, sizeof *n_ids);
	int64_t *win = calloc((size_t)c->n_messages + 1, sizeof *win);
	int rc = -1;
	if (!keep || !roles || !contents || !ids || !n_ids || !win) {
		session_fail(s, "out of memory");
		goto out;
	}
	s->conv_id = c->id;
	snprintf(s->pid, sizeof s->pid, "%s", c->pid);
	session_set_kv_path(s);
	if (switching == 1) {
		free(s->system);
		s->system = c->system_prompt ? strdup(c->system_prompt) : NULL;
		free(s->preset);
		s->preset = c->preset ? strdup(c->preset) : NULL;
		s->gen = s->o->gen;
		settings_from_json(&s->gen, c->params, 0);
		s->turn = 0;
		s->dropped = 0;
	} else if (switching == 0) {
		/* Resuming: the conversation's own system prompt, preset and
		 * settings (as chosen last, in the interface too), except what
		 * the command line says: -s and --preset change the
		 * conversation from now on (session_open stores them), sampling
		 * flags beat its settings. */
		if (!s->o->system && !s->o->preset) {
			free(s->system);
			s->system = c->system_prompt ? strdup(c->system_prompt) : NULL;
		}
		if (!s->o->preset) {
			free(s->preset);   /* a prompt of one's own (-s) is no preset's */
			s->preset = c->preset && !s->o->system ? strdup(c->preset) : NULL;
			settings_from_json(&s->gen, c->params, s->o->gen_set);
		}
	}
	int k = session_pick(c, keep);
	for (int j = 0; j < k; j++) {
		const struct db_message *m = &c->messages[keep[j]];
		roles[j] = m->role == ROLE_USER ? CHAT_USER : CHAT_ASSISTANT;
		contents[j] = m->content;
		win[j] = m->id;
		/* Stored ids are a cache of the text for the model that made
		 * them: with another vocabulary, an edited import or another
		 * system prompt they no longer stand for it, and the text is
		 * tokenized again. */
		if (m->tokens && m->n_tokens > 0 && s->m && replay_ids_usable(s->m, roles[j],
		    j == 0 ? s->system : NULL, m->content, m->tokens, (int)m->n_tokens)) {
			/* A partial reply was cut before its end: close it as the
			 * worker closes one, with the family's end token; one that
			 * ends on any end token (EOS, <|eot_id|>, <|end_of_text|>)
			 * is closed already. */
			int add = m->role == ROLE_ASSISTANT && !engine_is_eog(s->m, m->tokens[m->n_tokens - 1]);
			if ((ids[j] = malloc((m->n_tokens + 1) * sizeof(int32_t))) == NULL) {
				session_fail(s, "out of memory");
				goto out;
			}
			memcpy(ids[j], m->tokens, m->n_tokens * sizeof(int32_t));
			if (add)
				ids[j][m->n_tokens] = chat_tmpl_reply_end(s->m);
			n_ids[j] = (int)m->n_tokens + add;
		}
	}
	free(s->win);
	s->win = win;
	s->nwin = s->capwin = k;
	win = NULL;
	session_show(s, c, s->w != NULL);
	if (s->w != NULL) {
		s->load_seq = worker_load(s->w, s->system, roles, contents, (const int32_t *const *)ids, n_ids, k, 1,
		    switching == 2 ? NULL : s->kv_path);
		if (s->load_seq < 0) {
			session_fail(s, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	for (int j = 0; ids && j < c->n_messages; j++)
		free(ids[j]);
	free(keep);
	free(roles);
	free(contents);
	free(ids);
	free(n_ids);
	free(win);
	return rc;
}

/* -c / --resume: the one way a conversation is continued at start-up. */
static int
session_resume(struct session *s, const char *which)
{
	char *err = NULL;
	int64_t id = 0;
	if (which) {
		if (db_conv_resolve(s->db, which, &id, &err) != 0)
			return session_fail_take(s, err);
	} else {
		int r = db_conv_latest(s->db, &id, &err);
		if (r < 0)
			return session_fail_take(s, err);
		if (r == 0)
			return 0;   /* nothing to continue: start a new one */
	}
	struct db_conv *c = db_conv_load(s->db, id, &err);
	if (c == NULL)
		return session_fail_take(s, err);
	int rc = session_load(s, c, 0);
	db_conv_free(c);
	return rc;
}

/* Take a preset's system prompt and settings, except what the command line
 * set itself (flags beat the preset, the preset beats the config file and
 * the defaults). */
static int
session_preset_at_open(struct session *s, const char *name)
{
	struct db_preset pr;
	char *err = NULL;
	/* Without the database (--no-save) the built-in presets still work. */
	if ((s->db != NULL ? db_preset_get(s->db, name, &pr, &err) : db_preset_builtin(name, &pr, &err)) != 0)
		return session_fail_take(s, err);
	if (!s->o->system) {
		free(s->system);
		s->system = strdup(pr.system_prompt);
	}
	free(s->preset);
	s->preset = strdup(pr.name);
	settings_from_json(&s->gen, pr.params, s->o->gen_set);
	db_preset_clear(&pr);
	return 0;
}

/* The remote engine's worker (no model here): the server at o->remote. */
static struct worker *
session_open_remote(const struct opts *o, char **err)
{
	static int warned;
	if (remote_url_insecure(o->remote) && !warned) {
		warned = 1;   /* once per run */
		fprintf(stderr, PROG ": warning: %s is plain http:// to another machine: the conversation%s crosses "
		    "the network unencrypted\n", o->remote, cli_api_key() ? " and the API key" : "");
	}
	struct remote_conf c = { .url = o->remote, .model = o->remote_model, .api_key = cli_api_key(),
		.timeout_s = o->remote_timeout };
	return worker_open_remote(&c, err);
}
static int session_save_meta(struct session *s);

struct session *
session_open(const struct opts *o, struct engine_model *m, int *status)
{
	struct session *s = calloc(1, sizeof *s);
	if (s == NULL) {
		cli_error("out of memory");
		*status = 1;
		return NULL;
	}
	s->o = o;
	s->m = m;
	s->gen = o->gen;
	s->next_local = -1;
	if (o->system)
		s->system = strdup(o->system);
	char *err = NULL;
	*status = 1;
	if (!o->no_save) {
		char *path = path_database(o->db, &err);
		if (path == NULL || (s->db = db_open(path, &err)) == NULL) {
			cli_error("%s", err ? err : "cannot open the database");
			free(err);
			free(path);
			goto fail;
		}
		free(path);
	}
	if (o->preset && session_preset_at_open(s, o->preset) != 0) {
		cli_error("%s", s->error);
		goto fail;
	}
	if (m != NULL) {
		struct engine_ctx_params p;
		engine_ctx_params_default(&p);
		p.n_ctx = o->ctx_size;
		p.n_threads = o->threads;
		p.n_batch = o->batch;
		p.kv_f32 = o->kv_f32;
		p.kv_q8 = o->kv_q8;
		s->w = worker_new(m, &p, &err);
		if (s->w == NULL) {
			cli_error("%s", err ? err : "cannot start the engine");
			free(err);
			goto fail;
		}
		/* First of all, before a resumed chat's prefill faults the
		 * file in page by page. */
		if (o->prefetch && (s->read_seq = worker_prefetch(s->w)) < 0)
			s->read_seq = 0;   /* out of memory: the pages come as used */
	} else if (o->remote && o->remote[0]) {
		if ((s->w = session_open_remote(o, &err)) == NULL) {
			cli_error("%s", err ? err : "cannot reach the server");
			free(err);
			goto fail;
		}
	}
	if (o->no_save && (o->cont || o->resume)) {
		/* Continue a stored chat in memory: read it, then let go of the
		 * database, so nothing of this run is written. */
		char *path = path_database(o->db, &err);
		if (path == NULL || (s->db = db_open(path, &err)) == NULL) {
			cli_error("%s", err ? err : "cannot open the database");
			free(err);
			free(path);
			goto fail;
		}
		free(path);
		int rc = session_resume(s, o->resume);
		db_close(s->db);
		s->db = NULL;
		if (rc != 0) {
			cli_error("%s", s->error);
			goto fail;
		}
		s->conv_id = 0;
		s->pid[0] = '\0';
		session_set_kv_path(s);
	} else if (s->db && (o->cont || o->resume)) {
		if (session_resume(s, o->resume) != 0) {
			cli_error("%s", s->error);
			goto fail;
		}
		/* -s or --preset given with it: the conversation's from now on. */
		if (s->conv_id && (o->system || o->preset) && session_save_meta(s) != 0) {
			cli_error("%s", s->error);
			goto fail;
		}
	}
	if (s->w && s->nwin == 0 && s->system)
		worker_set_system(s->w, s->system);
	*status = 0;
	return s;
fail:
	session_close(s);
	return NULL;
}

void
session_close(struct session *s)
{
	if (s == NULL)
		return;
	if (s->w)
		worker_free(s->w);   /* stops a reply in flight first */
	if (s->busy && s->db && s->reply_id > 0) {
		/* Keep what was streamed; it stays marked interrupted. */
		db_reply_update(s->db, s->reply_id, s->rtext ? s->rtext : "", s->rids, (size_t)s->rn, NULL);
	}
	db_close(s->db);
	session_drop_updates(s);
	free(s->q);
	free(s->win);
	free(s->kv_path);
	free(s->notice);
	free(s->system);
	free(s->preset);
	free(s->user_text);
	free(s->user_ids);
	free(s->rtext);
	free(s->rids);
	free(s->error);
	free(s);
}

/* ---- state ---------------------------------------------------------------------- */

int session_busy(const struct session *s) { return s->busy; }
int session_has_model(const struct session *s) { return s->w != NULL; }
const struct engine_info *session_model(const struct session *s) { return s->m ? engine_info(s->m) : NULL; }
const char *session_remote_model(const struct session *s) { return s->w ? worker_model(s->w) : NULL; }
int session_saves(const struct session *s) { return s->db != NULL; }
int64_t session_conv(const struct session *s) { return s->conv_id; }
const char *session_pid(const struct session *s) { return s->pid; }
const char *session_system(const struct session *s) { return s->system; }
const char *session_preset(const struct session *s) { return s->preset; }
const struct gen_settings *session_settings(const struct session *s) { return &s->gen; }
int session_ctx_size(const struct session *s) { return s->w ? worker_ctx_size(s->w) : 0; }
int session_fd(const struct session *s) { return s->w ? worker_fd(s->w) : -1; }
int session_turn(const struct session *s) { return s->turn; }
const struct engine_gen_stats *session_stats(const struct session *s) { return &s->last_stats; }
const char *session_error(const struct session *s) { return s->error; }
const char *session_kv_path(const struct session *s) { return s->kv_path; }
int session_kv_restored(const struct session *s) { return s->restored; }
int session_kv_prefilled(const struct session *s) { return s->prefilled; }
int session_dropped(const struct session *s) { return s->dropped; }

const char *
session_reply_text(const struct session *s, size_t *len)
{
	*len = s->rlen;
	return s->rtext;
}

const int32_t *
session_reply_ids(const struct session *s, int *n)
{
	*n = s->rn;
	return s->rids;
}

char *
session_take_error(struct session *s)
{
	char *e = s->error;
	s->error = NULL;
	return e;
}

char *
session_take_kv_notice(struct session *s)
{
	char *n = s->notice;
	s->notice = NULL;
	s->restored = 0;
	return n;
}

int64_t
session_last_user(const struct session *s)
{
	/* The window alternates user, reply: the last user message is the
	 * one before the last reply. */
	return s->nwin >= 2 ? s->win[s->nwin - 2] : 0;
}

/* ---- the conversation and its settings ----------------------------------------------- */

int
session_ensure_conv(struct session *s)
{
	if (s->db == NULL || s->conv_id)
		return 0;
	const struct engine_info *in = s->m ? engine_info(s->m) : NULL;
	char *params = settings_json_text(&s->gen);
	struct db_conv c = { 0 };
	/* Remote: the server's model name, and "remote" for the fingerprint
	 * (there is no file here to tell apart; list marks these chats). */
	const char *remote = s->w ? worker_model(s->w) : NULL;
	c.model_name = in ? (char *)in->name : (char *)remote;
	c.model_fingerprint = in ? (char *)in->fingerprint : remote ? "remote" : NULL;
	c.system_prompt = s->system;
	c.preset = s->preset;
	c.params = params;
	char *err = NULL;
	int rc = params ? db_conv_create(s->db, &c, &err) : -1;
	free(params);
	if (rc != 0)
		return session_fail_take(s, err);
	s->conv_id = c.id;
	snprintf(s->pid, sizeof s->pid, "%s", c.pid);
	session_set_kv_path(s);
	s->conv_fresh = 1;
	return 0;
}

int
session_switch(struct session *s, int64_t id)
{
	if (session_idle(s) != 0 || session_need_db(s) != 0)
		return -1;
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, id, &err);
	if (c == NULL)
		return session_fail_take(s, err);
	int rc = session_load(s, c, 1);
	db_conv_free(c);
	return rc;
}

int
session_select(struct session *s, int64_t id, int step)
{
	if (session_idle(s) != 0 || session_need_db(s) != 0)
		return -1;
	char *err = NULL;
	int64_t *ids = NULL;
	size_t n = 0, at = 0;
	if (db_message_siblings(s->db, id, &ids, &n, &at, &err) != 0)
		return session_fail_take(s, err);
	long to = (long)at + step;
	if (to < 0)
		to = 0;
	if (to >= (long)n)
		to = (long)n - 1;
	int64_t target = ids[to];
	free(ids);
	if ((size_t)to == at)
		return 0;
	if (db_conv_select(s->db, s->conv_id, target, NULL, &err) != 0)
		return session_fail_take(s, err);
	struct db_conv *c = db_conv_load(s->db, s->conv_id, &err);
	if (c == NULL)
		return session_fail_take(s, err);
	int rc = session_load(s, c, 2);
	db_conv_free(c);
	return rc < 0 ? -1 : 1;
}

int
session_reload(struct session *s)
{
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, s->conv_id, &err);
	if (c == NULL)
		return session_fail_take(s, err);
	int rc = session_load(s, c, 2);
	db_conv_free(c);
	return rc;
}

int
session_new_chat(struct session *s)
{
	if (session_idle(s) != 0)
		return -1;
	s->conv_id = 0;
	s->pid[0] = '\0';
	session_set_kv_path(s);
	s->nwin = 0;
	s->turn = 0;
	s->dropped = 0;
	s->user_id = s->reply_id = 0;
	/* A new chat starts from what the command line and config asked for
	 * (-s, --preset, the settings), not from the chat that was open: a
	 * preset picked for one chat does not leak into the next. */
	free(s->system);
	s->system = s->o->system ? strdup(s->o->system) : NULL;
	free(s->preset);
	s->preset = NULL;
	s->gen = s->o->gen;
	if (s->o->preset && session_preset_at_open(s, s->o->preset) != 0)
		session_push(s, SU_NOTICE, 1, ROLE_USER, s->error, strlen(s->error));
	session_push(s, SU_CLEAR, 0, ROLE_USER, NULL, 0);
	if (s->w)
		s->load_seq = worker_load(s->w, s->system, NULL, NULL, NULL, NULL, 0, 0, NULL);
	return 0;
}

int
session_need_conv(struct session *s)
{
	if (session_need_db(s) != 0)
		return -1;
	if (s->conv_id == 0)
		return session_fail(s, "this chat is not stored yet: send a message first");
	return 0;
}

int
session_rename(struct session *s, const char *title)
{
	if (session_need_conv(s) != 0)
		return -1;
	char *err = NULL;
	if (db_conv_rename(s->db, s->conv_id, title, &err) != 0)
		return session_fail_take(s, err);
	return 0;
}

int
session_delete(struct session *s)
{
	if (session_idle(s) != 0 || session_need_conv(s) != 0)
		return -1;
	char *err = NULL;
	if (db_conv_delete(s->db, s->conv_id, &err) != 0)
		return session_fail_take(s, err);
	kvcache_remove(db_path(s->db), s->pid);   /* its token ids are its text */
	return session_new_chat(s);
}

/* Write the system prompt, preset and settings to the stored conversation
 * (if it has one yet). */
static int
session_save_meta(struct session *s)
{
	if (s->db == NULL || s->conv_id == 0)
		return 0;
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, s->conv_id, &err);
	if (c == NULL)
		return session_fail_take(s, err);
	char *params = settings_json_text(&s->gen);
	free(c->system_prompt);
	c->system_prompt = s->system ? strdup(s->system) : NULL;
	free(c->preset);
	c->preset = s->preset ? strdup(s->preset) : NULL;
	free(c->params);
	c->params = params;
	int rc = params ? db_conv_update(s->db, c, &err) : -1;
	db_conv_free(c);
	return rc != 0 ? session_fail_take(s, err) : 0;
}

/* The system prompt to the worker and the file. */
static int
session_system_store(struct session *s, const char *system)
{
	free(s->system);
	s->system = system && *system ? strdup(system) : NULL;
	if (s->w)
		worker_set_system(s->w, s->system);
	return session_save_meta(s);
}

int
session_set_system(struct session *s, const char *system)
{
	if (session_idle(s) != 0)
		return -1;
	free(s->preset);             /* a prompt of one's own is no preset's */
	s->preset = NULL;
	return session_system_store(s, system);
}

int
session_apply_preset(struct session *s, const char *name)
{
	if (s->db == NULL)
		return session_fail(s, "presets live in the database, which is off (--no-save)");
	if (session_idle(s) != 0)
		return -1;
	struct db_preset pr;
	char *err = NULL;
	if (db_preset_get(s->db, name, &pr, &err) != 0)
		return session_fail_take(s, err);
	char *pname = strdup(pr.name);
	if (pname == NULL) {
		db_preset_clear(&pr);
		return session_fail(s, "out of memory");
	}
	uint64_t seed = s->gen.samp.seed;
	s->gen = s->o->gen;
	s->gen.samp.seed = seed;
	settings_from_json(&s->gen, pr.params, 0);
	free(s->preset);
	s->preset = pname;
	int rc = session_system_store(s, pr.system_prompt);
	db_preset_clear(&pr);
	return rc;
}

int
session_set_settings(struct session *s, const struct gen_settings *g)
{
	s->gen = *g;
	return session_save_meta(s);
}
