/*
 * replay.c: the replay record a reply stores (see replay.h), checking that
 * stored token ids still stand for their text, and generating a reply again
 * from its record.
 *
 * The record is one JSON object built with jansson.  Floats are written as
 * the shortest decimal that reads back as the same float, so "temperature":
 * 0.8 is what people see and exactly what the sampler gets again.  A replay
 * builds the prompt the way the worker does (chat_build with the same
 * reserve for the reply), so the window and any overflow come out the same.
 */
#include "app/replay.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/chat.h"

/* The shortest "%.*g" of f that reads back as f, as a JSON real. */
static json_t *
replay_real(float f)
{
	char buf[32];
	for (int p = 1; p <= 9; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, (double)f);
		if ((float)strtod(buf, NULL) == f)
			break;
	}
	return json_real(strtod(buf, NULL));
}

static json_t *
replay_str(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

char *
replay_record_json(const struct engine_model *m, const struct engine_sampling *s,
    int n_predict, int n_ctx, int n_batch, int kv_f32, int kv_q8, const char *system)
{
	/* m is NULL for the remote engine: no model file here to name. */
	const struct engine_info *in = m != NULL ? engine_info(m) : NULL;
	json_t *o = json_object();
	int bad = o == NULL;
	bad |= json_object_set_new(o, "temperature", replay_real(s->temp));
	bad |= json_object_set_new(o, "top_k", json_integer(s->top_k));
	bad |= json_object_set_new(o, "top_p", replay_real(s->top_p));
	bad |= json_object_set_new(o, "min_p", replay_real(s->min_p));
	bad |= json_object_set_new(o, "repeat_penalty", replay_real(s->repeat_penalty));
	bad |= json_object_set_new(o, "repeat_last_n", json_integer(s->repeat_last_n));
	bad |= json_object_set_new(o, "ignore_eos", json_boolean(s->ignore_eos));
	bad |= json_object_set_new(o, "n_predict", json_integer(n_predict > 0 ? n_predict : 0));
	bad |= json_object_set_new(o, "ctx_size", json_integer(n_ctx));
	bad |= json_object_set_new(o, "batch_size", json_integer(n_batch > 0 ? n_batch : ENGINE_N_BATCH));
	bad |= json_object_set_new(o, "kv_f32", json_boolean(kv_f32 && !kv_q8));
	/* Only when set, so that records of a float16 cache read as before. */
	if (kv_q8)
		bad |= json_object_set_new(o, "kv_q8", json_true());
	bad |= json_object_set_new(o, "model", replay_str(in ? in->name : NULL));
	bad |= json_object_set_new(o, "model_fingerprint", replay_str(in ? in->fingerprint : NULL));
	bad |= json_object_set_new(o, "template", json_string(REPLAY_TEMPLATE));
	bad |= json_object_set_new(o, "engine", json_string(ENGINE_VERSION));
	bad |= json_object_set_new(o, "system_prompt", replay_str(system));
	char *text = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	return text;
}

static char *
replay_dup(const json_t *v)
{
	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

int
replay_record_parse(const char *json, uint64_t seed, struct replay_rec *r, char **err)
{
	memset(r, 0, sizeof *r);
	json_t *o = json != NULL ? json_loads(json, 0, NULL) : NULL;
	static const char *const need[] = {
		"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n",
		"ctx_size", "batch_size", "model_fingerprint", "engine",
	};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
		if (json_object_get(o, need[i]) == NULL) {
			json_decref(o);
			if (err != NULL)
				*err = strdup(json == NULL ? "no replay record (the reply predates them)" :
				    "the replay record is incomplete (the reply predates them)");
			return -1;
		}
	r->samp.temp = (float)json_number_value(json_object_get(o, "temperature"));
	r->samp.top_k = (int)json_integer_value(json_object_get(o, "top_k"));
	r->samp.top_p = (float)json_number_value(json_object_get(o, "top_p"));
	r->samp.min_p = (float)json_number_value(json_object_get(o, "min_p"));
	r->samp.repeat_penalty = (float)json_number_value(json_object_get(o, "repeat_penalty"));
	r->samp.repeat_last_n = (int)json_integer_value(json_object_get(o, "repeat_last_n"));
	r->samp.ignore_eos = json_is_true(json_object_get(o, "ignore_eos"));
	r->samp.seed = seed;
	r->n_predict = (int)json_integer_value(json_object_get(o, "n_predict"));
	r->n_ctx = (int)json_integer_value(json_object_get(o, "ctx_size"));
	r->n_batch = (int)json_integer_value(json_object_get(o, "batch_size"));
	r->kv_f32 = json_is_true(json_object_get(o, "kv_f32"));
	r->kv_q8 = json_is_true(json_object_get(o, "kv_q8"));
	r->model = replay_dup(json_object_get(o, "model"));
	r->fingerprint = replay_dup(json_object_get(o, "model_fingerprint"));
	r->template_name = replay_dup(json_object_get(o, "template"));
	r->engine = replay_dup(json_object_get(o, "engine"));
	r->system = replay_dup(json_object_get(o, "system_prompt"));
	json_decref(o);
	return 0;
}

void
replay_rec_free(struct replay_rec *r)
{
	free(r->model);
	free(r->fingerprint);
	free(r->template_name);
	free(r->engine);
	free(r->system);
	memset(r, 0, sizeof *r);
}

int
replay_ids_usable(const struct engine_model *m, int chat_role, const char *system,
    const char *content, const int32_t *ids, int n)
{
	const struct engine_info *in = engine_info(m);
	if (ids == NULL || n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= in->n_vocab)
			return 0;
	if (chat_role == CHAT_ASSISTANT) {
		/* The worker stores a reply's text as the decoding of its ids. */
		char *text = engine_detokenize(m, ids, n);
		int ok = text != NULL && strcmp(text, content != NULL ? content : "") == 0;
		free(text);
		return ok;
	}
	int roles[2] = { CHAT_SYSTEM, CHAT_USER };
	const char *contents[2] = { system, content != NULL ? content : "" };
	int32_t *want = NULL;
	int n_want = 0;
	int off = system != NULL ? 0 : 1;
	if (chat_render(m, roles + off, contents + off, 2 - off, &want, &n_want, NULL, NULL) != 0)
		return 0;
	int ok = n_want == n && memcmp(want, ids, (size_t)n * sizeof *ids) == 0;
	free(want);
	return ok;
}

int
replay_generate(struct engine_model *m, struct replay_ctx *rx, int n_threads,
    const struct replay_rec *r, const int *roles, const char *const *contents,
    const int32_t *const *ids, const int *n_ids, int k, int max_tokens, int32_t **out, int *n_out,
    char **err)
{
	*out = NULL;
	*n_out = 0;
	if (rx->ctx == NULL || rx->n_ctx != r->n_ctx || rx->n_batch != r->n_batch ||
	    rx->kv_f32 != r->kv_f32 || rx->kv_q8 != r->kv_q8) {
		struct engine_ctx_params p;
		engine_ctx_params_default(&p);
		p.n_ctx = r->n_ctx;
		p.n_batch = r->n_batch;
		p.kv_f32 = r->kv_f32;
		p.kv_q8 = r->kv_q8;
		p.n_threads = n_threads;
		engine_ctx_free(rx->ctx);
		if ((rx->ctx = engine_ctx_new(m, &p, err)) == NULL)
			return -1;
		rx->n_ctx = r->n_ctx;
		rx->n_batch = r->n_batch;
		rx->kv_f32 = r->kv_f32;
		rx->kv_q8 = r->kv_q8;
	}
	struct engine_ctx *ctx = rx->ctx;
	struct chat c;
	chat_init(&c);
	int rc = -1;
	if (chat_set_system(&c, r->system) != 0)
		goto oom;
	for (int i = 0; i < k; i++)
		if (chat_push(&c, roles[i], contents[i], ids[i], n_ids[i]) != 0)
			goto oom;
	/* The room the worker keeps for a reply (engine/worker.c, generate). */
	int n_ctx = engine_ctx_size(ctx);
	int reserve = r->n_predict > 0 ? r->n_predict : 256;
	if (reserve > n_ctx / 4)
		reserve = n_ctx / 4;
	int32_t *prompt = NULL;
	int n = 0, dropped = 0;
	if (chat_build(&c, m, n_ctx, reserve, &prompt, &n, &dropped, err) != 0)
		goto out;
	struct engine_sampler *smp = engine_sampler_new(&r->samp);
	struct engine_gen_params gp = {
		.max_tokens = max_tokens > 0 ? max_tokens : r->n_predict, .strip_leading_space = 1,
	};
	struct engine_gen_stats st;
	rc = smp != NULL ? engine_generate(ctx, prompt, n, smp, &gp, &st, out, n_out, err) : -1;
	engine_sampler_free(smp);
	free(prompt);
	if (rc != 0) {
		if (smp == NULL)
			goto oom;
		goto out;
	}
	/* Closed as the worker closes a reply (engine/worker.c). */
	if (*n_out == 0 || !engine_is_eog(m, (*out)[*n_out - 1])) {
		int32_t *no = realloc(*out, (size_t)(*n_out + 1) * sizeof *no);
		if (no == NULL) {
			free(*out);
			*out = NULL;
			goto oom;
		}
		*out = no;
		(*out)[(*n_out)++] = chat_tmpl_reply_end(m);
	}
	rc = 0;
	goto out;
oom:
	if (err != NULL)
		*err = strdup("out of memory");
	rc = -1;
out:
	chat_free(&c);
	return rc;
}
