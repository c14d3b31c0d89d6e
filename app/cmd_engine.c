/*
 * cmd_engine.c: tokenize, complete and info, the commands for scripts and
 * for checking a model file by hand.
 */
#include "app/cmd_engine.h"
#include "engine/chat.h"
#include "engine/remote.h"
#include "engine/tokenizer.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
cli_join_args(const struct opts *o)
{
	size_t n = 1;
	for (int i = 0; i < o->nargs; i++)
		n += strlen(o->args[i]) + 1;
	char *s = malloc(n), *p = s;
	if (s == NULL)
		return NULL;
	*p = '\0';
	for (int i = 0; i < o->nargs; i++)
		p += sprintf(p, "%s%s", i ? " " : "", o->args[i]);
	return s;
}

int
cmd_tokenize(struct opts *o)
{
	if (o->nargs == 0)
		return cli_usage_error("tokenize: what text? (give it as arguments, or '-' to read stdin)");
	char *text = NULL;
	if (o->nargs == 1 && strcmp(o->args[0], "-") == 0) {
		/* All of stdin, exactly: a final newline is part of the text. */
		size_t cap = 4096, len = 0, r;
		text = malloc(cap);
		while (text != NULL && (r = fread(text + len, 1, cap - len - 1, stdin)) > 0) {
			len += r;
			char *nt = len + 1 < cap ? text : realloc(text, cap *= 2);
			if (nt == NULL)
				free(text);
			text = nt;
		}
		if (text == NULL || ferror(stdin)) {
			free(text);
			cli_error("tokenize: cannot read standard input");
			return 1;
		}
		text[len] = '\0';
	} else {
		text = cli_join_args(o);
	}
	int status = 0;
	struct engine_model *m = cli_open_model_or_tokenizer(o, &status);
	if (m == NULL) {
		free(text);
		return status;
	}
	int32_t *ids = NULL;
	int n = text ? engine_tokenize(m, text, strlen(text), !o->no_bos, &ids) : -1;
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? " " : "", ids[i]);
	if (n >= 0)
		putchar('\n');
	free(ids);
	free(text);
	engine_close(m);
	return n < 0 ? 1 : 0;
}

static int
parse_ids(const char *s, int32_t **ids, int *n)
{
	int cap = 16;
	*n = 0;
	*ids = malloc((size_t)cap * sizeof **ids);
	while (*ids && *s) {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || end == s || v < 0 || v > 0x7fffffff)
			return -1;
		if (*n == cap) {
			int32_t *ni = realloc(*ids, (size_t)(cap *= 2) * sizeof **ids);
			if (ni == NULL)
				return -1;
			*ids = ni;
		}
		(*ids)[(*n)++] = (int32_t)v;
		s = end;
		if (*s == ',' || *s == ' ')
			s++;
		else if (*s)
			return -1;
	}
	return *ids && *n > 0 ? 0 : -1;
}

static int
print_token(void *ud, int32_t id, const char *text, size_t len)
{
	const struct opts *o = ud;
	if (o->ids)
		return 0;
	fwrite(text, 1, len, stdout);
	fflush(stdout);
	return 0;
}

int
cmd_complete(struct opts *o)
{
	int status = 0;
	int32_t *ids = NULL;
	int n = 0;
	struct engine_model *m = cli_open_model(o, &status);
	if (m == NULL)
		return status;
	if (o->prompt_ids) {
		if (parse_ids(o->prompt_ids, &ids, &n) != 0) {
			free(ids);
			engine_close(m);
			return cli_usage_error("--prompt-ids: '%s' is not a comma-separated list of ids", o->prompt_ids);
		}
		int nv = engine_info(m)->n_vocab;
		for (int i = 0; i < n; i++) {
			if (ids[i] >= nv) {
				free(ids);
				engine_close(m);
				return cli_usage_error("--prompt-ids: id %d is outside the vocabulary of %d", ids[i], nv);
			}
		}
	} else {
		char *text = o->prompt ? strdup(o->prompt) : cli_join_args(o);
		if (text == NULL || (n = engine_tokenize(m, text, strlen(text), !o->no_bos, &ids)) < 0) {
			free(text);
			engine_close(m);
			return 1;
		}
		if (!o->ids) {
			fputs(text, stdout);
			fflush(stdout);
		}
		free(text);
	}
	struct engine_ctx *c = NULL;
	struct engine_sampler *smp = NULL;
	if (n == 0) {
		status = cli_usage_error("nothing to complete: the prompt is empty (and --no-bos was given)");
		goto out;
	}
	if ((c = cli_new_ctx(m, o, &status)) == NULL)
		goto out;
	smp = engine_sampler_new(&o->gen.samp);
	struct engine_gen_params gp = { .max_tokens = o->gen.n_predict, .on_token = print_token, .ud = o };
	struct engine_gen_stats st;
	int32_t *out = NULL;
	int n_out = 0;
	char *err = NULL;
	if (smp == NULL || engine_generate(c, ids, n, smp, &gp, &st, &out, &n_out, &err) != 0) {
		cli_error("%s", err ? err : "out of memory");
		free(err);
		status = 1;
	} else if (o->ids) {
		for (int i = 0; i < n_out; i++)
			printf("%s%d", i ? " " : "", out[i]);
		putchar('\n');
	} else {
		putchar('\n');
	}
	if (o->verbose)
		fprintf(stderr, "prompt %d tokens %.1f ms (%.1f t/s), %d generated %.2f t/s\n", st.n_prompt,
		    st.prefill_ms, st.pp_tps, st.n_gen, st.tg_tps);
	free(out);
out:
	engine_sampler_free(smp);
	engine_ctx_free(c);
	free(ids);
	engine_close(m);
	return status;
}

/* info --remote URL: the server's models (GET URL/models). */
static int
info_remote(const struct opts *o)
{
	struct remote_conf c = { .url = o->remote, .api_key = cli_api_key(), .timeout_s = o->remote_timeout };
	char **ids = NULL, *err = NULL;
	int n = 0;
	if (remote_models(&c, &ids, &n, &err) != 0) {
		cli_error("%s", err ? err : "cannot list the server's models");
		free(err);
		return 1;
	}
	if (o->json) {
		json_t *j = json_pack("{s:s,s:[]}", "server", o->remote, "models");
		for (int i = 0; j && i < n; i++)
			json_array_append_new(json_object_get(j, "models"), json_string(ids[i]));
		char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		if (s)
			puts(s);
		free(s);
		json_decref(j);
	} else {
		printf("server:       %s\n", o->remote);
		printf("models:       %d\n", n);
		for (int i = 0; i < n; i++)
			printf("  %s%s\n", ids[i], i == 0 ? "   (the default)" : "");
	}
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

int
cmd_info(struct opts *o)
{
	if (o->remote && o->remote[0])
		return info_remote(o);
	int status = 0;
	struct engine_model *m = cli_open_model(o, &status);
	if (m == NULL)
		return status;
	const struct engine_info *i = engine_info(m);
	/* The cache a chat with these options would use: the context the
	 * engine would pick (the model's, at most 4096) unless --ctx-size. */
	const char *kvt = cli_kv_type(o);
	int kvn = o->ctx_size > 0 ? o->ctx_size : i->n_ctx_train < 4096 ? i->n_ctx_train : 4096;
	if (o->json) {
		printf("{\"file\": \"%s\", \"format\": \"%s\", \"name\": \"%s\", \"file_size\": %llu, "
		    "\"params\": %llu, \"vocab\": %d, \"context\": %d, \"dim\": %d, \"ffn\": %d, \"layers\": %d, "
		    "\"heads\": %d, \"kv_heads\": %d, \"types\": \"%s\", \"chat_template\": \"%s\", "
		    "\"kv_cache\": \"%s\", \"kv_cache_bytes\": %llu, \"kv_cache_positions\": %d}\n", o->model,
		    i->format, i->name, (unsigned long long)i->file_size, (unsigned long long)i->n_params, i->n_vocab,
		    i->n_ctx_train, i->dim, i->ffn_dim, i->n_layers, i->n_heads, i->n_kv_heads, i->types,
		    chat_tmpl_name(m), kvt, cli_kv_bytes(i, kvt, kvn), kvn);
	} else {
		printf("file:         %s\n", o->model);
		printf("format:       %s\n", i->format);
		printf("name:         %s\n", i->name);
		printf("file size:    %llu bytes (%.2f GiB)\n", (unsigned long long)i->file_size,
		    i->file_size / 1073741824.0);
		printf("parameters:   %llu\n", (unsigned long long)i->n_params);
		printf("shape:        dim %d, ffn %d, layers %d, heads %d, kv heads %d, head dim %d\n", i->dim,
		    i->ffn_dim, i->n_layers, i->n_heads, i->n_kv_heads, i->head_dim);
		printf("rope:         dims %d, freq base %g\n", i->rope_dim, i->rope_base);
		printf("rms epsilon:  %g\n", i->norm_eps);
		printf("context:      %d\n", i->n_ctx_train);
		printf("vocabulary:   %d (bos %d, eos %d)\n", i->n_vocab, i->bos, i->eos);
		printf("tensor types: %s\n", i->types);
		printf("chat format:  %s%s\n", chat_tmpl_name(m), strcmp(chat_tmpl_name(m), "unknown") == 0
		    ? " (the file's chat template is not a known family: use --chat-template NAME)" : "");
		printf("kv cache:     %s, %.1f MiB for %d positions", kvt, cli_kv_bytes(i, kvt, kvn) / 1048576.0, kvn);
		if (strcmp(kvt, "q8_0") != 0)
			printf(" (q8_0 with --kv-q8: %.1f MiB)", cli_kv_bytes(i, "q8_0", kvn) / 1048576.0);
		printf("\n");
		printf("fingerprint:  %s\n", i->fingerprint);
	}
	engine_close(m);
	return 0;
}
