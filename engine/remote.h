/*
 * remote.h: the remote engine, an OpenAI-compatible server (llama-server,
 * vLLM, TGI, SGLang, ollama) doing the forward pass over HTTP.
 *
 * For app/: worker_open_remote gives a struct worker (engine.h) whose
 * requests go to the server, so the session and the interface drive it
 * exactly as the local engine; remote_models lists a server's models.
 * Below that, remote_open/remote_chat are what engine/worker.c calls.
 *
 * What differs from the local worker: replies carry no token ids (WEV_TOKEN
 * has id -1, WEV_DONE no ids), there is no KV snapshot (worker_save does
 * nothing, worker_ctx_size is 0), and a fault after the request was made
 * (refused, DNS, TLS, HTTP error, broken or malformed stream, timeout) is a
 * WEV_DONE with reason ENGINE_STOP_ERROR and the message in ev.error: the
 * user's message and the partial reply stay in the conversation.
 */
#ifndef ENGINE_REMOTE_H
#define ENGINE_REMOTE_H

#include <stdatomic.h>

#include "engine/chat.h"
#include "engine/engine.h"
#include "engine/worker.h"

struct remote_conf {
	const char *url;          /* the API base, e.g. "http://gpu-box:8000/v1" */
	const char *model;        /* NULL: the first model of GET {url}/models */
	const char *api_key;      /* NULL or "": none (the caller reads it from the environment) */
	int timeout_s;            /* no data for this long is a fault; <= 0: 60 */
};

#define REMOTE_TIMEOUT_DEFAULT 60

/*
 * worker_open_remote (worker.h) gives a worker for the server at c->url:
 * it checks the URL, asks GET /models for the default model when c->model
 * is NULL (a server that cannot be reached fails there, with the reason),
 * and starts the thread.
 */

/* 1 when url is plain http:// to a host other than this one (the key and
 * the conversation cross the network unencrypted), else 0. */
int remote_url_insecure(const char *url);

/* The ids of GET {c->url}/models, in the server's order, as a malloc'd
 * array of malloc'd strings (*n of them).  0, or -1 with *err. */
int remote_models(const struct remote_conf *c, char ***ids, int *n, char **err);

/* ---- engine-internal: the worker thread's side ---- */
struct remote;
struct remote *remote_open(const struct remote_conf *c, char **err);
void remote_close(struct remote *r);
const char *remote_model(const struct remote *r);
const char *remote_url(const struct remote *r);
/* Make a running remote_chat look at its stop flag now (any thread). */
void remote_wake(struct remote *r);

struct remote_reply {
	char *text;               /* the reply so far (malloc'd, NUL-ended; also on error) */
	size_t len;
	struct engine_gen_stats st;
	char *model;              /* the model that answered, as the server named it (malloc'd or NULL) */
};

/*
 * Stream a reply to conversation c (system prompt, then every message; the
 * last is the user's) with sampling s and at most max_tokens (<= 0: the
 * server's limit).  on_token gets each content delta (id -1).  Returns 0
 * with st.reason EOS, LENGTH or USER (stop raised); -1 with *err on a
 * fault, out->text holding what arrived before it.  Free out with
 * remote_reply_free.
 */
int remote_chat(struct remote *r, const struct chat *c, const struct engine_sampling *s, int max_tokens,
    engine_token_fn on_token, void *ud, atomic_int *stop, struct remote_reply *out, char **err);
void remote_reply_free(struct remote_reply *out);
/* The request body remote_chat sends (malloc'd JSON), for tests. */
char *remote_request_json(const struct remote *r, const struct chat *c, const struct engine_sampling *s,
    int max_tokens);

#endif
