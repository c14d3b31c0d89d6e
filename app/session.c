/*
 * session.c: a conversation between the worker thread and the database.
 *
 * Invariant: what the worker holds (messages 0..n_msgs-1, with token ids)
 * is what the database holds for the conversation, apart from the reply in
 * flight, whose row exists from the moment it was asked for (empty and
 * marked interrupted) and is rewritten as it streams.  If the worker fails a
 * request, the rows made for it are deleted again.
 */
#include "app/session.h"
#include "app/kvcache.h"
#include "app/paths.h"
#include "engine/remote.h"
#include "storage/db.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
set_error(struct session *s, const char *msg)
{
	free(s->error);
	s->error = strdup(msg ? msg : "error");
}

/* The conversation's snapshot file (see kvcache.c), or NULL when nothing
 * is saved (--no-save, no conversation yet, no cache folder). */
static void
set_kv_path(struct session *s)
{
	free(s->kv_path);
	s->kv_path = s->db && s->m && s->pid[0] ? kvcache_path(s->pid) : NULL;
}

/*
 * Take a preset's system prompt and sampling parameters, except what the
 * command line set itself (flags beat the preset, the preset beats the
 * config file and the defaults).
 */
static void
preset_apply(struct session *s, const struct db_preset *pr)
{
	const struct opts *o = s->o;
	if (!o->system) {
		free(s->system);
		s->system = strdup(pr->system_prompt);
	}
	free(s->preset);
	s->preset = strdup(pr->name);
	json_t *j = json_loads(pr->params ? pr->params : "{}", 0, NULL);
	json_t *v;
	if ((v = json_object_get(j, "temperature")) && json_is_number(v) && !(o->samp_flags & SAMP_TEMP))
		s->samp.temp = (float)json_number_value(v);
	if ((v = json_object_get(j, "top_k")) && json_is_integer(v) && !(o->samp_flags & SAMP_TOP_K))
		s->samp.top_k = (int)json_integer_value(v);
	if ((v = json_object_get(j, "top_p")) && json_is_number(v) && !(o->samp_flags & SAMP_TOP_P))
		s->samp.top_p = (float)json_number_value(v);
	if ((v = json_object_get(j, "min_p")) && json_is_number(v) && !(o->samp_flags & SAMP_MIN_P))
		s->samp.min_p = (float)json_number_value(v);
	if ((v = json_object_get(j, "repeat_penalty")) && json_is_number(v) && !(o->samp_flags & SAMP_REPEAT))
		s->samp.repeat_penalty = (float)json_number_value(v);
	json_decref(j);
}

static char *
sampler_json(const struct engine_sampling *p)
{
	char *s;
	if (asprintf(&s, "{\"temperature\": %g, \"top_k\": %d, \"top_p\": %g, \"min_p\": %g, "
	    "\"repeat_penalty\": %g, \"repeat_last_n\": %d}", p->temp, p->top_k, p->top_p, p->min_p,
	    p->repeat_penalty, p->repeat_last_n) < 0)
		return NULL;
	return s;
}

/* Sampling keys of a stored params/preset JSON object over *p (a key
 * that is absent keeps its value; unreadable JSON changes nothing). */
static void
params_apply(struct engine_sampling *p, const char *params)
{
	if (params == NULL)
		return;
	json_t *j = json_loads(params, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	json_t *v;
	if (json_is_number(v = json_object_get(j, "temperature")))
		p->temp = (float)json_number_value(v);
	if (json_is_integer(v = json_object_get(j, "top_k")))
		p->top_k = (int)json_integer_value(v);
	if (json_is_number(v = json_object_get(j, "top_p")))
		p->top_p = (float)json_number_value(v);
	if (json_is_number(v = json_object_get(j, "min_p")))
		p->min_p = (float)json_number_value(v);
	if (json_is_number(v = json_object_get(j, "repeat_penalty")))
		p->repeat_penalty = (float)json_number_value(v);
	if (json_is_integer(v = json_object_get(j, "repeat_last_n")))
		p->repeat_last_n = (int)json_integer_value(v);
	json_decref(j);
}

/*
 * Make c the session's conversation and hand the worker its finished
 * exchanges (prefilled).  Resuming at start-up keeps a -s given on the
 * command line; switching takes the conversation's own system prompt,
 * preset and sampling.
 */
static void
load_conv(struct session *s, struct db_conv *c, int switching)
{
	s->conv_id = c->id;
	snprintf(s->pid, sizeof s->pid, "%s", c->pid);
	set_kv_path(s);
	if (switching) {
		free(s->system);
		s->system = c->system_prompt ? strdup(c->system_prompt) : NULL;
		free(s->preset);
		s->preset = c->preset ? strdup(c->preset) : NULL;
		s->samp = s->o->samp;
		params_apply(&s->samp, c->params);
		s->n_msgs = 0;
		s->turn = 0;
		s->dropped = 0;
		if (s->w == NULL)
			return;
	} else if (!s->o->system && c->system_prompt) {
		free(s->system);
		s->system = strdup(c->system_prompt);
	}
	/* Hand the worker the finished exchanges; a trailing user message
	 * without a reply (the process died before asking) stays in the file
	 * but not in the window. */
	int n = c->n_messages;
	int *roles = calloc((size_t)n + 1, sizeof *roles);
	const char **contents = calloc((size_t)n + 1, sizeof *contents);
	int32_t **ids = calloc((size_t)n + 1, sizeof *ids);
	int *n_ids = calloc((size_t)n + 1, sizeof *n_ids);
	int k = 0;
	/* The remote engine has no token ids: messages go as text. */
	int eos = s->m ? engine_info(s->m)->eos : -1;
	for (int i = 0; i < n && roles && contents && ids && n_ids; i++) {
		struct db_message *msg = &c->messages[i];
		if (msg->role == DB_ROLE_SYSTEM)
			continue;
		int role = msg->role == DB_ROLE_USER ? CHAT_USER : CHAT_ASSISTANT;
		if (k > 0 && roles[k - 1] == role)
			continue;   /* keep the alternation the format needs */
		roles[k] = role;
		contents[k] = msg->content;
		if (s->m && msg->tokens && msg->n_tokens > 0) {
			/* A partial reply was cut before its EOS: close it. */
			int add = role == CHAT_ASSISTANT && msg->tokens[msg->n_tokens - 1] != eos;
			ids[k] = malloc((msg->n_tokens + 1) * sizeof(int32_t));
			if (ids[k]) {
				memcpy(ids[k], msg->tokens, msg->n_tokens * sizeof(int32_t));
				if (add)
					ids[k][msg->n_tokens] = eos;
				n_ids[k] = (int)msg->n_tokens + add;
			}
		}
		k++;
	}
	if (k > 0 && roles[k - 1] == CHAT_USER && k == n) {
		/* The process died between the user's message and its reply row:
		 * give it an empty reply (marked interrupted) so the rows and the
		 * window stay aligned. */
		int64_t rid;
		if (db_reply_begin(s->db, c->id, NULL, 0, 0, &rid, NULL) == 0) {
			roles[k] = CHAT_ASSISTANT;
			contents[k] = "";
			ids[k] = s->m ? malloc(sizeof(int32_t)) : NULL;
			if (ids[k]) {
				ids[k][0] = eos;
				n_ids[k] = 1;
			}
			k++;
		}
	}
	if (k > 0 && roles[k - 1] == CHAT_USER) {
		free(ids[k - 1]);
		k--;
	}
	s->load_seq = worker_load(s->w, s->system, roles, contents, (const int32_t *const *)ids, n_ids, k, 1, s->kv_path);
	s->n_msgs = k;
	for (int i = 0; i < k; i++)
		free(ids[i]);
	free(ids);
	free(n_ids);
	free(roles);
	free(contents);
}

static int
resume(struct session *s, const char *which, int *status)
{
	char *err = NULL;
	int64_t id = 0;
	if (which) {
		if (db_conv_resolve(s->db, which, &id, &err) != 0) {
			cli_error("%s", err);
			free(err);
			*status = 1;
			return -1;
		}
	} else {
		int r = db_conv_latest(s->db, &id, &err);
		if (r < 0) {
			cli_error("%s", err);
			free(err);
			*status = 1;
			return -1;
		}
		if (r == 0)
			return 0;   /* nothing to continue: start a new one */
	}
	struct db_conv *c = db_conv_load(s->db, id, &err);
	if (c == NULL) {
		cli_error("%s", err);
		free(err);
		*status = 1;
		return -1;
	}
	load_conv(s, c, 0);
	db_conv_free(c);
	return 0;
}

/* The remote engine's worker (m is NULL): the server at o->remote. */
static struct worker *
open_remote(const struct opts *o, char **err)
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

int
session_open(struct session *s, const struct opts *o, struct engine_model *m)
{
	int status = session_open_store(s, o);
	if (status != 0)
		return status;
	s->m = m;
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = o->ctx_size;
	p.n_threads = o->threads;
	p.n_batch = o->batch;
	p.kv_f32 = o->kv_f32;
	char *err = NULL;
	s->w = m ? worker_new(m, &p, &err) : open_remote(o, &err);
	if (s->w == NULL) {
		cli_error("%s", err ? err : "cannot start the engine");
		free(err);
		session_close(s);
		return 1;
	}
	if (s->db && (o->cont || o->resume) && resume(s, o->resume, &status) != 0) {
		session_close(s);
		return status;
	}
	if (s->n_msgs == 0 && s->system)
		worker_set_system(s->w, s->system);
	return 0;
}

void
session_close(struct session *s)
{
	if (s->w)
		worker_free(s->w);   /* stops a reply in flight first */
	if (s->busy && s->db && s->reply_id) {
		/* Keep what was streamed; it stays marked interrupted. */
		db_reply_update(s->db, s->reply_id, s->rtext ? s->rtext : "", s->rids, (size_t)s->rn, NULL);
	}
	db_close(s->db);
	free(s->kv_path);
	free(s->notice);
	free(s->system);
	free(s->preset);
	free(s->rtext);
	free(s->rids);
	free(s->error);
	memset(s, 0, sizeof *s);
}

static int
ensure_conv(struct session *s)
{
	if (s->db == NULL || s->conv_id)
		return 0;
	const struct engine_info *in = s->m ? engine_info(s->m) : NULL;
	char *params = sampler_json(&s->samp);
	struct db_conv c = { 0 };
	/* Remote: the server's model name, and "remote" for the fingerprint
	 * (there is no file here to tell apart; list marks these chats). */
	c.model_name = (char *)(in ? in->name : worker_model(s->w));
	c.model_fingerprint = in ? (char *)in->fingerprint : "remote";
	c.system_prompt = s->system;
	c.preset = s->preset;
	c.params = params;
	char *err = NULL;
	int rc = db_conv_create(s->db, &c, &err);
	free(params);
	if (rc != 0) {
		set_error(s, err);
		free(err);
		return -1;
	}
	s->conv_id = c.id;
	snprintf(s->pid, sizeof s->pid, "%s", c.pid);
	set_kv_path(s);
	return 0;
}

static void
reply_reset(struct session *s)
{
	s->failed = 0;
	s->user_counted = 0;
	s->rlen = 0;
	s->rn = 0;
	if (s->rtext)
		s->rtext[0] = '\0';
	s->last_save = mono_ms();
}

/* Commit the user message (if any) and the empty reply row. */
static int
begin_rows(struct session *s, const char *text)
{
	if (s->db == NULL)
		return 0;
	if (ensure_conv(s) != 0)
		return -1;
	char *err = NULL;
	if (text) {
		struct db_message m = { .role = DB_ROLE_USER, .content = (char *)text };
		if (db_message_append(s->db, s->conv_id, &m, &err) != 0)
			goto fail;
		s->user_msg_id = m.id;
	}
	char *sj = sampler_json(&s->samp);
	int rc = db_reply_begin(s->db, s->conv_id, sj, 1, s->samp.seed, &s->reply_id, &err);
	free(sj);
	if (rc != 0) {
		if (text)
			db_message_delete_after(s->db, s->conv_id, s->n_msgs - 1, NULL);
		goto fail;
	}
	return 0;
fail:
	set_error(s, err);
	free(err);
	return -1;
}

int
session_submit(struct session *s, const char *text)
{
	if (s->w == NULL) {
		set_error(s, "no model is loaded");
		return -1;
	}
	if (s->busy) {
		set_error(s, "a reply is still being generated");
		return -1;
	}
	reply_reset(s);
	if (begin_rows(s, text) != 0)
		return -1;
	s->seq = worker_send(s->w, text, &s->samp, s->o->n_predict);
	s->busy = 1;
	s->turn++;
	return 0;
}

int
session_regenerate(struct session *s)
{
	if (s->w == NULL) {
		set_error(s, "no model is loaded");
		return -1;
	}
	if (s->busy || s->n_msgs < 2) {
		set_error(s, s->busy ? "a reply is still being generated" : "there is no reply to regenerate");
		return -1;
	}
	reply_reset(s);
	char *err = NULL;
	if (s->db && db_message_delete_after(s->db, s->conv_id, s->n_msgs - 2, &err) != 0) {
		set_error(s, err);
		free(err);
		return -1;
	}
	/* The reply goes; the user turn is counted again by WEV_USER_IDS. */
	s->n_msgs -= 2;
	if (s->db && begin_rows(s, NULL) != 0)
		return -1;
	s->samp.seed += 1;   /* a regenerated reply should differ */
	s->seq = worker_regenerate(s->w, &s->samp, s->o->n_predict);
	s->busy = 1;
	return 0;
}

int
session_edit(struct session *s, int k, const char *text)
{
	if (s->w == NULL) {
		set_error(s, "no model is loaded");
		return -1;
	}
	if (s->busy || k < 0 || k >= s->n_msgs) {
		set_error(s, s->busy ? "a reply is still being generated" : "no such message");
		return -1;
	}
	reply_reset(s);
	char *err = NULL;
	if (s->db && db_message_delete_after(s->db, s->conv_id, k - 1, &err) != 0) {
		set_error(s, err);
		free(err);
		return -1;
	}
	s->n_msgs = k;
	if (begin_rows(s, text) != 0)
		return -1;
	s->seq = worker_edit(s->w, k, text, &s->samp, s->o->n_predict);
	s->busy = 1;
	return 0;
}

void
session_stop(struct session *s)
{
	if (s->w)
		worker_stop(s->w);
}

static void
reply_append(struct session *s, const struct worker_event *ev)
{
	if (s->rlen + ev->len + 1 > s->rcap) {
		size_t cap = s->rcap ? s->rcap * 2 : 1024;
		while (cap < s->rlen + ev->len + 1)
			cap *= 2;
		char *nt = realloc(s->rtext, cap);
		if (nt == NULL)
			return;
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
				return;
			s->rids = ni;
			s->rcap_ids = cap;
		}
		s->rids[s->rn++] = ev->id;
	}
}

static double
round_to(double v, double unit)
{
	return (double)(long long)(v / unit + 0.5) * unit;
}

/* The reply's stats, JSON (malloc'd or NULL): counts, timing, and which
 * engine and model wrote it (list and show print them). */
static char *
reply_stats(const struct session *s, const struct engine_gen_stats *st)
{
	const char *remote = worker_model(s->w);
	const char *model = remote ? remote : s->m ? engine_info(s->m)->name : NULL;
	json_t *j = json_pack("{s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:i,s:i,s:s}", "prompt_tokens", st->n_prompt,
	    "reused_tokens", st->n_reused, "generated", st->n_gen, "ttft_ms", round_to(st->ttft_ms, 0.1),
	    "prefill_ms", round_to(st->prefill_ms, 0.1), "tg_tps", round_to(st->tg_tps, 0.01), "pp_tps",
	    round_to(st->pp_tps, 0.01), "ctx_used", st->ctx_used, "ctx_size", worker_ctx_size(s->w), "engine",
	    remote ? "remote" : "local");
	if (j && model)
		json_object_set_new(j, "model", json_string(model));
	char *out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	return out;
}

static enum db_finish
finish_of(enum engine_stop_reason r)
{
	switch (r) {
	case ENGINE_STOP_EOS: return DB_FINISH_EOS;
	case ENGINE_STOP_USER: return DB_FINISH_STOPPED;
	case ENGINE_STOP_ERROR: return DB_FINISH_INTERRUPTED;
	default: return DB_FINISH_LENGTH;
	}
}

int
session_event(struct session *s, const struct worker_event *ev)
{
	char *err = NULL;
	switch (ev->type) {
	case WEV_TOKEN:
		if (ev->seq != s->seq)
			return 0;
		reply_append(s, ev);
		if (s->db && s->reply_id && mono_ms() - s->last_save >= 1000) {
			if (db_reply_update(s->db, s->reply_id, s->rtext, s->rids, (size_t)s->rn, &err) != 0) {
				set_error(s, err);   /* shown; the reply goes on */
				free(err);
			}
			s->last_save = mono_ms();
		}
		return 0;
	case WEV_USER_IDS:
		if (s->db && s->user_msg_id && ev->n_ids > 0)
			db_message_set_tokens(s->db, s->user_msg_id, ev->ids, (size_t)ev->n_ids, NULL);
		if (ev->seq == s->seq) {
			s->n_msgs++;
			s->user_counted = 1;
		}
		return 0;
	case WEV_LOADED:
		/* A resumed conversation: say how much came from its snapshot. */
		s->restored = ev->restored;
		s->prefilled = ev->done;
		free(s->notice);
		s->notice = ev->text ? strdup(ev->text) : NULL;
		if (ev->restored > 0)
			kvcache_touch(s->kv_path);
		return 0;
	case WEV_OVERFLOW:
		s->dropped += ev->dropped;
		return 0;
	case WEV_DONE: {
		if (ev->seq != s->seq)
			return 0;
		s->last_stats = ev->stats;
		s->last_reason = ev->stats.reason;
		s->n_msgs++;
		s->busy = 0;
		/* Keep the cache for instant resume; the worker writes it once
		 * idle, before the next request. */
		if (s->kv_path) {
			worker_save(s->w, s->kv_path);
			kvcache_evict(s->o->kv_cache_max, s->kv_path);
		}
		if (ev->stats.reason == ENGINE_STOP_ERROR) {
			/* A remote fault: the turn stays, marked interrupted. */
			set_error(s, ev->error ? ev->error : "the server failed");
			s->failed = 1;
		}
		if (s->db && s->reply_id) {
			char *stats = reply_stats(s, &ev->stats);
			if (db_reply_finish(s->db, s->reply_id, ev->text ? ev->text : "", ev->ids, (size_t)ev->n_ids,
			    finish_of(ev->stats.reason), stats, &err) != 0) {
				set_error(s, err);
				free(err);
			}
			free(stats);
		}
		s->reply_id = 0;
		s->user_msg_id = 0;
		return 1;
	}
	case WEV_ERROR:
		if (ev->seq != s->seq)
			return 0;
		set_error(s, ev->text);
		s->busy = 0;
		s->failed = 1;
		if (s->user_counted)
			s->n_msgs--;
		/* The worker dropped the request: drop its rows too. */
		if (s->db && s->conv_id)
			db_message_delete_after(s->db, s->conv_id, s->n_msgs - 1, NULL);
		s->reply_id = 0;
		s->user_msg_id = 0;
		return 1;
	default:
		return 0;
	}
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
	}
	return s->failed ? -1 : 0;
}

/* ---- the interface's extras: history-only mode, several chats, settings ---- */

int
session_open_store(struct session *s, const struct opts *o)
{
	memset(s, 0, sizeof *s);
	s->o = o;
	s->samp = o->samp;
	if (o->system)
		s->system = strdup(o->system);
	char *err = NULL;
	if (!o->no_save) {
		char *path = path_database(o->db, &err);
		if (path == NULL || (s->db = db_open(path, &err)) == NULL) {
			cli_error("%s", err ? err : "cannot open the database");
			free(err);
			free(path);
			return 1;
		}
		free(path);
	}
	if (o->preset) {
		if (s->db == NULL) {
			cli_error("--preset needs the database (it cannot be used with --no-save)");
			session_close(s);
			return EXIT_USAGE;
		}
		struct db_preset pr;
		if (db_preset_get(s->db, o->preset, &pr, &err) != 0) {
			cli_error("%s", err);
			free(err);
			session_close(s);
			return 1;
		}
		preset_apply(s, &pr);
		db_preset_clear(&pr);
	}
	return 0;
}

int
session_switch(struct session *s, int64_t id, struct db_conv **out)
{
	if (out)
		*out = NULL;
	if (s->busy) {
		set_error(s, "a reply is still being generated");
		return -1;
	}
	if (s->db == NULL) {
		set_error(s, "nothing is saved in this session (--no-save)");
		return -1;
	}
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, id, &err);
	if (c == NULL) {
		set_error(s, err);
		free(err);
		return -1;
	}
	load_conv(s, c, 1);
	if (out)
		*out = c;
	else
		db_conv_free(c);
	return 0;
}

int
session_new_chat(struct session *s)
{
	if (s->busy) {
		set_error(s, "a reply is still being generated");
		return -1;
	}
	s->conv_id = 0;
	s->pid[0] = '\0';
	set_kv_path(s);
	s->n_msgs = 0;
	s->turn = 0;
	s->dropped = 0;
	s->user_msg_id = s->reply_id = 0;
	if (s->w)
		s->load_seq = worker_load(s->w, s->system, NULL, NULL, NULL, NULL, 0, 0, NULL);
	return 0;
}

/* Write the session's system prompt, preset and sampling to its stored
 * conversation (if it has one yet). */
static int
save_meta(struct session *s)
{
	if (s->db == NULL || s->conv_id == 0)
		return 0;
	char *err = NULL;
	struct db_conv *c = db_conv_load(s->db, s->conv_id, &err);
	if (c == NULL) {
		set_error(s, err);
		free(err);
		return -1;
	}
	char *params = sampler_json(&s->samp);
	free(c->system_prompt);
	c->system_prompt = s->system ? strdup(s->system) : NULL;
	free(c->preset);
	c->preset = s->preset ? strdup(s->preset) : NULL;
	free(c->params);
	c->params = params;
	int rc = db_conv_update(s->db, c, &err);
	db_conv_free(c);
	if (rc != 0) {
		set_error(s, err);
		free(err);
		return -1;
	}
	return 0;
}

int
session_set_system(struct session *s, const char *system, const char *preset)
{
	if (s->busy) {
		set_error(s, "a reply is still being generated");
		return -1;
	}
	free(s->system);
	s->system = system && *system ? strdup(system) : NULL;
	if (preset != s->preset) {
		free(s->preset);
		s->preset = preset ? strdup(preset) : NULL;
	}
	if (s->w)
		worker_set_system(s->w, s->system ? s->system : "");
	return save_meta(s);
}

int
session_apply_preset(struct session *s, const char *name)
{
	if (s->db == NULL) {
		set_error(s, "presets live in the database, which is off (--no-save)");
		return -1;
	}
	if (s->busy) {
		set_error(s, "a reply is still being generated");
		return -1;
	}
	struct db_preset pr;
	char *err = NULL;
	if (db_preset_get(s->db, name, &pr, &err) != 0) {
		set_error(s, err);
		free(err);
		return -1;
	}
	uint64_t seed = s->samp.seed;
	s->samp = s->o->samp;
	s->samp.seed = seed;
	params_apply(&s->samp, pr.params);
	char *pname = strdup(pr.name);
	if (pname == NULL) {
		db_preset_clear(&pr);
		set_error(s, "out of memory");
		return -1;
	}
	free(s->preset);
	s->preset = pname;
	int rc = session_set_system(s, pr.system_prompt, s->preset);
	db_preset_clear(&pr);
	return rc;
}

int
session_set_sampling(struct session *s, const struct engine_sampling *p)
{
	s->samp = *p;
	return save_meta(s);
}
