/*
 * remote.c: chat completions from an OpenAI-compatible server (see
 * remote.h): the request body, the streamed answer, the one-line faults.
 *
 * The request is built with jansson, never by hand, and is a pure function
 * of the conversation and the settings: the messages go out byte for byte
 * as stored (the system prompt first), so every turn's prompt starts with
 * the previous turn's prompt and reply, and the server's prefix cache
 * (llama-server's cache_prompt, vLLM's prefix caching) reuses all of it.
 *
 * The answer is server-sent events (engine/sse.c) of chat.completion.chunk
 * objects: choices[0].delta.content is text, choices[0].finish_reason says
 * why it ended, a last chunk may hold usage (we ask for it with
 * stream_options.include_usage) and llama-server adds timings; the stream
 * ends with "data: [DONE]".  A stream that ends without [DONE] is a fault
 * (the server died or the connection was cut), as is an event that is not
 * JSON or carries an "error" object.  Timing is measured here: the time to
 * the first content delta, and tokens/s over the content deltas (one
 * delta is one token on llama-server and vLLM).
 */
#include "engine/remote.h"
#include "engine/http.h"
#include "engine/sse.h"

#include <jansson.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct remote {
	char *base;               /* the URL without trailing '/' */
	char *model;
	char *key;                /* NULL: none */
	int timeout_s;
	struct http *http;
};

static double
remote_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char *
remote_join(const char *base, const char *path)
{
	char *s;
	return asprintf(&s, "%s%s", base, path) < 0 ? NULL : s;
}

static void
remote_err(char **err, const char *s)
{
	if (err)
		*err = strdup(s ? s : "out of memory");
}

/* The error text in a server's answer: OpenAI's {"error":{"message":..}},
 * {"error":".."}, vLLM's {"message":..}, FastAPI's {"detail":..}, or the
 * first line of a plain body; control bytes dropped, at most 300 bytes.
 * Malloc'd, "" when there is none. */
static char *
remote_error_text(const char *body, size_t len)
{
	char *out = NULL;
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	if (json_is_object(j)) {
		json_t *e = json_object_get(j, "error");
		json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
		if (!json_is_string(m))
			m = json_object_get(j, "message");
		if (!json_is_string(m))
			m = json_object_get(j, "detail");
		if (json_is_string(m))
			out = strdup(json_string_value(m));
	}
	json_decref(j);
	if (out == NULL && body) {
		size_t i = 0;
		while (i < len && isspace((unsigned char)body[i]))
			i++;
		size_t e = i;
		while (e < len && body[e] != '\n' && body[e] != '\r')
			e++;
		out = strndup(body + i, e - i);
	}
	if (out == NULL)
		return strdup("");
	size_t k = 0;
	for (size_t i = 0; out[i] && k < 300; i++)
		if ((unsigned char)out[i] >= 0x20 && out[i] != 0x7f)
			out[k++] = out[i];
	/* Cut at 300: do not leave half a UTF-8 sequence at the end. */
	size_t lead = k;
	while (lead > 0 && ((unsigned char)out[lead - 1] & 0xc0) == 0x80)
		lead--;
	if (lead > 0) {
		unsigned char b = (unsigned char)out[lead - 1];
		size_t need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
		if (k - (lead - 1) < need)
			k = lead - 1;
	}
	while (k > 0 && isspace((unsigned char)out[k - 1]))
		k--;
	out[k] = '\0';
	return out;
}

/* The one-line message for a non-2xx answer to url. */
static void
remote_http_error(const struct http_resp *hr, const char *url, const char *model, char **err)
{
	if (err == NULL)
		return;
	char *host = http_host(url);
	char *msg = remote_error_text(hr->body, hr->body_len);
	const char *hs = host ? host : url;
	const char *sep = msg && msg[0] ? ": " : "";
	const char *m = msg ? msg : "";
	long st = hr->status;
	int rc;
	if (st == 401 || st == 403)
		rc = asprintf(err, "%s refused the request (HTTP %ld%s%s); check LLAMA2_CHAT_API_KEY", hs, st, sep, m);
	else if (st == 404)
		rc = asprintf(err, "%s answered HTTP 404%s%s (is the model \"%s\" served there, and is the URL "
		    "the API base, such as http://host:8000/v1?)", hs, sep, m, model ? model : "?");
	else if (st >= 300 && st < 400)
		rc = asprintf(err, "%s redirects (HTTP %ld) to %s; give that URL to --remote (redirects are not "
		    "followed)", hs, st, hr->location ? hr->location : "another place");
	else if (st == 429)
		rc = asprintf(err, "%s is rate-limiting (HTTP 429%s%s); try again later", hs, sep, m);
	else
		rc = asprintf(err, "%s answered HTTP %ld%s%s", hs, st, sep, m);
	if (rc < 0)
		*err = strdup("out of memory");
	free(msg);
	free(host);
}

/* ---- GET /models ---------------------------------------------------------- */

static int
remote_collect(void *ud, const char *p, size_t n)
{
	struct http_resp *b = ud;   /* reuses body/body_len as a growing buffer */
	if (b->body_len + n > (16u << 20))
		return 1;
	char *nb = realloc(b->body, b->body_len + n + 1);
	if (nb == NULL)
		return 1;
	memcpy(nb + b->body_len, p, n);
	b->body = nb;
	b->body_len += n;
	nb[b->body_len] = '\0';
	return 0;
}

static int
remote_models_with(struct http *h, const char *base, const char *key, int timeout_s, char ***ids, int *n,
    char **err)
{
	*ids = NULL;
	*n = 0;
	char *url = remote_join(base, "/models");
	if (url == NULL) {
		remote_err(err, NULL);
		return -1;
	}
	struct http_resp buf = { 0 }, hr;
	struct http_req q = { .url = url, .api_key = key, .timeout_s = timeout_s, .on_data = remote_collect,
		.ud = &buf };
	int rc = http_run(h, &q, &hr, err);
	int ret = -1;
	if (rc == HTTP_ABORTED)
		remote_err(err, "the model list from the server is too long");
	else if (rc == HTTP_OK && (hr.status < 200 || hr.status >= 300))
		remote_http_error(&hr, url, NULL, err);
	else if (rc == HTTP_OK) {
		json_error_t je;
		json_t *j = json_loadb(buf.body ? buf.body : "", buf.body_len, 0, &je);
		json_t *data = json_object_get(j, "data");
		if (!json_is_array(data)) {
			if (err && asprintf(err, "%s/models is not a model list (%s)", base,
			    j ? "no \"data\" array" : je.text) < 0)
				*err = NULL;
		} else {
			size_t k = json_array_size(data);
			char **v = calloc(k + 1, sizeof *v);
			int c = 0;
			for (size_t i = 0; v && i < k; i++) {
				json_t *id = json_object_get(json_array_get(data, i), "id");
				if (json_is_string(id) && (v[c] = strdup(json_string_value(id))) != NULL)
					c++;
			}
			if (v == NULL)
				remote_err(err, NULL);
			else {
				*ids = v;
				*n = c;
				ret = 0;
			}
		}
		json_decref(j);
	}
	free(buf.body);
	http_resp_free(&hr);
	free(url);
	return ret;
}

/* A base URL: http(s)://..., without trailing slashes.  NULL with *err. */
static char *
remote_base(const char *url, char **err)
{
	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		remote_err(err, "the server URL must start with http:// or https:// (such as http://host:8000/v1)");
		return NULL;
	}
	char *host = http_host(url);
	if (host == NULL || host[0] == '\0') {
		free(host);
		if (err && asprintf(err, "the server URL \"%s\" has no host name", url) < 0)
			*err = NULL;
		return NULL;
	}
	free(host);
	char *b = strdup(url);
	if (b == NULL) {
		remote_err(err, NULL);
		return NULL;
	}
	size_t n = strlen(b);
	while (n > 0 && b[n - 1] == '/')
		b[--n] = '\0';
	return b;
}

int
remote_url_insecure(const char *url)
{
	return url && strncmp(url, "http://", 7) == 0 && !http_is_loopback(url);
}

int
remote_models(const struct remote_conf *c, char ***ids, int *n, char **err)
{
	char *base = remote_base(c->url, err);
	if (base == NULL)
		return -1;
	struct http *h = http_new(err);
	int rc = h ? remote_models_with(h, base, c->api_key, c->timeout_s, ids, n, err) : -1;
	http_free(h);
	free(base);
	return rc;
}

struct remote *
remote_open(const struct remote_conf *c, char **err)
{
	struct remote *r = calloc(1, sizeof *r);
	if (r == NULL) {
		remote_err(err, NULL);
		return NULL;
	}
	r->timeout_s = c->timeout_s > 0 ? c->timeout_s : REMOTE_TIMEOUT_DEFAULT;
	if ((r->base = remote_base(c->url, err)) == NULL || (r->http = http_new(err)) == NULL)
		goto fail;
	if (c->api_key && c->api_key[0] && (r->key = strdup(c->api_key)) == NULL) {
		remote_err(err, NULL);
		goto fail;
	}
	if (c->model && c->model[0]) {
		if ((r->model = strdup(c->model)) == NULL) {
			remote_err(err, NULL);
			goto fail;
		}
		return r;
	}
	char **ids;
	int n;
	if (remote_models_with(r->http, r->base, r->key, r->timeout_s, &ids, &n, err) != 0)
		goto fail;
	if (n == 0) {
		if (err && asprintf(err, "%s/models lists no model; name one with --remote-model", r->base) < 0)
			*err = NULL;
	} else
		r->model = ids[0];
	for (int i = 1; i < n; i++)
		free(ids[i]);
	free(ids);
	if (r->model)
		return r;
fail:
	remote_close(r);
	return NULL;
}

void
remote_close(struct remote *r)
{
	if (r == NULL)
		return;
	http_free(r->http);
	free(r->base);
	free(r->model);
	if (r->key) {
		memset(r->key, 0, strlen(r->key));
		free(r->key);
	}
	free(r);
}

const char *
remote_model(const struct remote *r)
{
	return r->model;
}

const char *
remote_url(const struct remote *r)
{
	return r->base;
}

void
remote_wake(struct remote *r)
{
	if (r)
		http_wake(r->http);
}

void
remote_reply_free(struct remote_reply *out)
{
	free(out->text);
	free(out->model);
	memset(out, 0, sizeof *out);
}

/* ---- POST /chat/completions ----------------------------------------------- */

char *
remote_request_json(const struct remote *r, const struct chat *c, const struct engine_sampling *s, int max_tokens)
{
	json_t *msgs = json_array();
	int bad = msgs == NULL;
	if (!bad && c->system && c->system[0])
		bad |= json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", c->system));
	for (int i = 0; !bad && i < c->n; i++)
		bad |= json_array_append_new(msgs, json_pack("{s:s,s:s}", "role",
		    c->msgs[i].role == CHAT_USER ? "user" : "assistant", "content",
		    c->msgs[i].content ? c->msgs[i].content : ""));
	json_t *j = bad ? NULL : json_pack("{s:s,s:o,s:b,s:{s:b},s:f,s:f,s:f,s:f,s:I}",
	    "model", r->model, "messages", msgs, "stream", 1, "stream_options", "include_usage", 1,
	    "temperature", s->temp > 0 ? (double)s->temp : 0.0, "top_p", s->top_p < 1 ? (double)s->top_p : 1.0,
	    "min_p", s->min_p > 0 ? (double)s->min_p : 0.0, "repeat_penalty", (double)s->repeat_penalty,
	    "seed", (json_int_t)s->seed);
	if (j == NULL) {
		if (bad)
			json_decref(msgs);
		return NULL;
	}
	/* top_k off is 0 for llama-server but -1 for older vLLM: send it only
	 * when on, and the server's default otherwise. */
	if (s->top_k > 0)
		bad |= json_object_set_new(j, "top_k", json_integer(s->top_k));
	if (max_tokens > 0)
		bad |= json_object_set_new(j, "max_tokens", json_integer(max_tokens));
	/* vLLM calls it repetition_penalty; each server ignores the other's. */
	bad |= json_object_set_new(j, "repetition_penalty", json_real((double)s->repeat_penalty));
	if (s->ignore_eos)
		bad |= json_object_set_new(j, "ignore_eos", json_true());
	char *out = bad ? NULL : json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(j);
	return out;
}

/* The state of one streamed answer, for the SSE callback. */
struct remote_stream {
	struct remote_reply *out;
	size_t cap;
	engine_token_fn on_token;
	void *ud;
	double t0, t_first, t_last;
	int n_deltas, n_events;
	int got_done, user_stop;
	char finish[16];
	long prompt_tokens, completion_tokens, prompt_n;   /* -1: not told */
	char *fault;              /* malloc'd: why the stream is bad */
	const char *host;         /* for messages */
	struct sse sse;
};

static int
remote_append(struct remote_stream *x, const char *t, size_t n)
{
	struct remote_reply *o = x->out;
	if (o->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 1024;
		while (cap < o->len + n + 1)
			cap *= 2;
		char *nt = realloc(o->text, cap);
		if (nt == NULL)
			return -1;
		o->text = nt;
		x->cap = cap;
	}
	memcpy(o->text + o->len, t, n);
	o->len += n;
	o->text[o->len] = '\0';
	return 0;
}

static int
remote_fault(struct remote_stream *x, const char *what, const char *detail)
{
	free(x->fault);
	if (asprintf(&x->fault, "%s %s%s%s", x->host, what, detail && detail[0] ? ": " : "", detail ? detail : "") < 0)
		x->fault = NULL;
	return 1;
}

static long
remote_int(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static int
remote_on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct remote_stream *x = ud;
	x->n_events++;
	if (x->got_done)
		return 0;
	if (strcmp(data, "[DONE]") == 0) {
		x->got_done = 1;
		return 0;
	}
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	if (j == NULL)
		return remote_fault(x, "sent malformed JSON in an event", je.text);
	int rc = 0;
	json_t *e = json_object_get(j, "error");
	if (!json_is_object(j))
		rc = remote_fault(x, "sent an event that is not a JSON object", NULL);
	else if (e || strcmp(event, "error") == 0) {
		char *msg = remote_error_text(data, len);
		rc = remote_fault(x, "reported an error", msg);
		free(msg);
	} else {
		json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
		json_t *content = json_object_get(json_object_get(ch, "delta"), "content");
		json_t *fin = json_object_get(ch, "finish_reason");
		if (json_is_string(content) && json_string_length(content) > 0) {
			const char *t = json_string_value(content);
			size_t n = json_string_length(content);
			double now = remote_now_ms();
			if (x->n_deltas++ == 0)
				x->t_first = now;
			x->t_last = now;
			if (remote_append(x, t, n) != 0)
				rc = remote_fault(x, "sent more than fits in memory", NULL);
			else if (x->on_token && x->on_token(x->ud, -1, t, n) != 0) {
				x->user_stop = 1;
				rc = 1;
			}
		}
		if (json_is_string(fin))
			snprintf(x->finish, sizeof x->finish, "%s", json_string_value(fin));
		json_t *usage = json_object_get(j, "usage");
		if (json_is_object(usage)) {
			x->prompt_tokens = remote_int(usage, "prompt_tokens");
			x->completion_tokens = remote_int(usage, "completion_tokens");
		}
		json_t *tm = json_object_get(j, "timings");
		if (json_is_object(tm))
			x->prompt_n = remote_int(tm, "prompt_n");
		json_t *model = json_object_get(j, "model");
		if (x->out->model == NULL && json_is_string(model))
			x->out->model = strdup(json_string_value(model));
	}
	json_decref(j);
	return rc;
}

static int
remote_on_data(void *ud, const char *p, size_t n)
{
	struct remote_stream *x = ud;
	int rc = sse_feed(&x->sse, p, n, remote_on_event, x);
	if (rc < 0)
		remote_fault(x, "sent an event too long to read", NULL);
	return rc;
}

static void
remote_stats(const struct remote_stream *x, struct engine_gen_stats *st)
{
	memset(st, 0, sizeof *st);
	long pt = x->prompt_tokens > 0 ? x->prompt_tokens : 0;
	st->n_prompt = (int)(x->prompt_n >= 0 && x->prompt_n <= pt ? x->prompt_n : pt);
	st->n_reused = (int)(pt - st->n_prompt);
	st->n_gen = (int)(x->completion_tokens >= 0 ? x->completion_tokens : x->n_deltas);
	if (x->n_deltas > 0) {
		st->ttft_ms = x->t_first - x->t0;
		st->prefill_ms = st->ttft_ms;
		st->gen_ms = x->t_last - x->t_first;
	}
	st->pp_tps = st->prefill_ms > 0 ? st->n_prompt / (st->prefill_ms / 1e3) : 0;
	st->tg_tps = x->n_deltas > 1 && st->gen_ms > 0 ? (x->n_deltas - 1) / (st->gen_ms / 1e3) : 0;
	/* Deltas that came in one burst (a fast server flushing late) say
	 * nothing about speed between them: count the whole reply's time. */
	if (x->n_deltas > 1 && st->gen_ms < 1.0 && x->t_last > x->t0)
		st->tg_tps = x->n_deltas / ((x->t_last - x->t0) / 1e3);
	st->ctx_used = (int)pt + st->n_gen;
}

int
remote_chat(struct remote *r, const struct chat *c, const struct engine_sampling *s, int max_tokens,
    engine_token_fn on_token, void *ud, atomic_int *stop, struct remote_reply *out, char **err)
{
	memset(out, 0, sizeof *out);
	if ((out->text = strdup("")) == NULL) {
		remote_err(err, NULL);
		return -1;
	}
	char *body = remote_request_json(r, c, s, max_tokens);
	char *url = remote_join(r->base, "/chat/completions");
	if (body == NULL || url == NULL) {
		free(body);
		free(url);
		remote_err(err, NULL);
		return -1;
	}
	char *host = http_host(url);
	struct remote_stream x = { .out = out, .cap = 1, .on_token = on_token, .ud = ud, .prompt_tokens = -1,
		.completion_tokens = -1, .prompt_n = -1, .host = host ? host : url };
	sse_init(&x.sse);
	x.t0 = remote_now_ms();
	struct http_req q = { .url = url, .body = body, .api_key = r->key, .timeout_s = r->timeout_s,
		.stop = stop, .on_data = remote_on_data, .ud = &x };
	struct http_resp hr;
	char *herr = NULL;
	int rc = http_run(r->http, &q, &hr, &herr);
	int ret = 0;
	remote_stats(&x, &out->st);
	if (rc == HTTP_STOPPED || (rc == HTTP_ABORTED && x.user_stop)) {
		out->st.reason = ENGINE_STOP_USER;
	} else if (rc == HTTP_ABORTED) {
		remote_err(err, x.fault);
		ret = -1;
	} else if (rc == HTTP_FAIL && (hr.status < 200 || hr.status >= 300) && hr.status != 0) {
		/* An error status whose body broke off: the status says more. */
		remote_http_error(&hr, url, r->model, err);
		ret = -1;
	} else if (rc == HTTP_FAIL) {
		if (err) {
			*err = herr;
			herr = NULL;
		}
		ret = -1;
	} else if (hr.status < 200 || hr.status >= 300) {
		remote_http_error(&hr, url, r->model, err);
		ret = -1;
	} else if (!x.got_done) {
		/* Not one event, not even a started data line: no stream at all. */
		int none = x.n_events == 0 && !x.sse.has_data &&
		    !(x.sse.len >= 5 && memcmp(x.sse.line, "data:", 5) == 0);
		int rc2 = 0;
		if (err && none)
			rc2 = asprintf(err, "%s answered but did not stream (no server-sent events; is %s an "
			    "OpenAI-compatible API base?)", host ? host : url, r->base);
		else if (err)
			rc2 = asprintf(err, "the stream from %s ended without [DONE]%s", host ? host : url,
			    x.n_deltas ? " (the reply is cut short)" : "");
		if (err && rc2 < 0)
			*err = NULL;
		ret = -1;
	} else {
		out->st.reason = strcmp(x.finish, "length") == 0 ? ENGINE_STOP_LENGTH : ENGINE_STOP_EOS;
	}
	if (ret != 0)
		out->st.reason = ENGINE_STOP_ERROR;
	free(herr);
	free(host);
	free(x.fault);
	sse_free(&x.sse);
	http_resp_free(&hr);
	free(body);
	free(url);
	return ret;
}
