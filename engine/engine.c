/*
 * engine.c: the public face of the engine (engine.h) over model.c,
 * forward.c, tokenizer.c and sampler.c.
 *
 * An engine_ctx owns one KV cache and remembers which tokens it holds
 * (tokens[0..n_past)); every operation keeps that list and the cache in
 * step, which is what lets a conversation reuse its cached prefix.
 */
#include "engine/engine.h"
#include "common/clock.h"
#include "engine/errf.h"
#include "engine/cpu.h"
#include "engine/model.h"
#include "engine/engine_int.h"
#include "engine/gguf.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct engine_detok) == sizeof(struct tok_decoder), "detok mirrors tok_decoder");

struct engine_model {
	struct model *m;
	struct engine_info info;
	char types[256];
	char main_type[16];
};

struct engine_ctx {
	struct engine_model *em;
	struct kv_cache kv;
	struct run_state rs;
	int n_threads;
	int32_t *tokens;          /* n_ctx: what the cache holds */
	int n_past;
	float *all_logits;        /* (n, vocab) of the last decode with all_logits */
	size_t all_cap;
	int last_all;
};

/* Physical cores: distinct (package, core) pairs of the online CPUs. */
static int
physical_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	int seen[1024][2], ns = 0;
	for (long i = 0; i < n && i < 1024; i++) {
		char p[128];
		int pk = 0, co = -1;
		snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%ld/topology/core_id", i);
		FILE *f = fopen(p, "r");
		if (f == NULL)
			return n > 0 ? (int)n : 1;
		if (fscanf(f, "%d", &co) != 1)
			co = (int)i;
		fclose(f);
		snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id", i);
		if ((f = fopen(p, "r")) != NULL) {
			if (fscanf(f, "%d", &pk) != 1)
				pk = 0;
			fclose(f);
		}
		int dup = 0;
		for (int j = 0; j < ns && !dup; j++)
			dup = seen[j][0] == pk && seen[j][1] == co;
		if (!dup) {
			seen[ns][0] = pk;
			seen[ns][1] = co;
			ns++;
		}
	}
	return ns > 0 ? ns : 1;
}

static struct engine_model *engine_wrap(struct model *m, char **err);

struct engine_model *
engine_open(const char *path, const char *tokenizer, char **err)
{
	/* The kernel family (LLAMA2_CHAT_ISA), fixed before any thread runs. */
	if (cpu_init(err) != 0)
		return NULL;
	struct model *m = model_open(path, tokenizer, err);
	if (m == NULL)
		return NULL;
	return engine_wrap(m, err);
}

struct engine_model *
engine_open_tokenizer(const char *path, char **err)
{
	struct model *m = calloc(1, sizeof *m);
	if (m == NULL) {
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->pack_lock, NULL);
	if ((m->tok = tok_spm_load_bin(path, 0, err)) == NULL) {
		pthread_mutex_destroy(&m->pack_lock);
		free(m);
		return NULL;
	}
	m->cfg.vocab_size = tok_n_vocab(m->tok);
	snprintf(m->format, sizeof m->format, "tokenizer only");
	return engine_wrap(m, err);
}

static struct engine_model *
engine_wrap(struct model *m, char **err)
{
	struct engine_model *em = calloc(1, sizeof *em);
	if (em == NULL) {
		model_close(m);
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	em->m = m;
	struct engine_info *i = &em->info;
	const struct model_config *c = &m->cfg;
	i->format = m->format;
	i->name = m->name;
	i->fingerprint = m->fingerprint;
	i->n_vocab = c->vocab_size;
	i->n_ctx_train = c->seq_len;
	i->dim = c->dim;
	i->ffn_dim = c->hidden_dim;
	i->n_layers = c->n_layers;
	i->n_heads = c->n_heads;
	i->n_kv_heads = c->n_kv_heads;
	i->head_dim = c->head_dim;
	i->rope_dim = c->rope_dim;
	i->norm_eps = c->norm_eps;
	i->rope_base = c->rope_base;
	i->bos = tok_bos(m->tok);
	i->eos = tok_eos(m->tok);
	i->file_size = m->file_size;
	i->n_params = m->n_params;
	i->weight_bytes = m->weight_bytes;
	i->token_bytes = m->token_bytes;
	size_t off = 0;
	int best = -1, best_n = -1;
	for (int t = 0; t <= QT_COUNT; t++) {
		if (m->type_count[t] == 0)
			continue;
		const char *nm = t == QT_COUNT ? "Q8_G" : quant_type_name(t);
		off += (size_t)snprintf(em->types + off, sizeof em->types - off, "%s%s %d", off ? ", " : "", nm,
		    m->type_count[t]);
		if (off >= sizeof em->types)
			off = sizeof em->types - 1;
		if (t != QT_F32 && m->type_count[t] > best_n) {
			best = t;
			best_n = m->type_count[t];
		}
	}
	snprintf(em->main_type, sizeof em->main_type, "%s",
	    best < 0 ? "F32" : best == QT_COUNT ? "Q8_G" : quant_type_name(best));
	i->types = em->types;
	i->main_type = em->main_type;
	return em;
}

void
engine_close(struct engine_model *m)
{
	if (m == NULL)
		return;
	model_close(m->m);
	free(m);
}

struct model *
engine_model_of(const struct engine_model *em)
{
	return em->m;
}

int
engine_is_eog(const struct engine_model *m, int32_t id)
{
	return tok_is_eog(m->m->tok, id);
}

const struct engine_info *
engine_info(const struct engine_model *m)
{
	return &m->info;
}

/*
 * The first use of a big mapped file reads it from disk page by page as
 * the forward pass faults them in, in whatever order the tensors are
 * used.  Reading it here once, front to back, lets the kernel read ahead
 * in large sequential requests (MADV_WILLNEED a chunk ahead of the pages
 * being touched) and lets the caller show how far it got.  The pages
 * stay in the page cache, shared with other processes; then model_pack
 * copies the matrices it packs (while the user is still typing, rather
 * than in the first reply) and lets go of their pages.
 */
int
engine_prefetch(const struct engine_model *em, engine_load_fn cb, void *ud)
{
	struct model *m = em->m;
	const uint8_t *base = m->gguf ? m->gguf->map : m->map;
	size_t size = m->map_size;
	if (base == NULL || size == 0)
		return 0;
	/* Packed already (a pass ran first): reading would only bring back
	 * the pages model_pack let go of. */
	if (atomic_load(&m->pack_done) && m->pack_mem != NULL) {
		if (cb != NULL)
			cb(ud, (uint64_t)size, (uint64_t)size);
		return 0;
	}
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	const size_t chunk = (size_t)64 << 20;
	volatile uint8_t sink = 0;
	uintptr_t aligned = (uintptr_t)base & ~(uintptr_t)(page - 1);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		/* Ask for the next chunk while this one is read. */
		if (off + chunk < size) {
			size_t ahead = size - off - chunk < chunk ? size - off - chunk : chunk;
			uintptr_t a = ((uintptr_t)(base + off + chunk)) & ~(uintptr_t)(page - 1);
			madvise((void *)a, ahead + page, MADV_WILLNEED);
		} else if (off == 0) {
			madvise((void *)aligned, n + page, MADV_WILLNEED);
		}
		for (size_t k = 0; k < n; k += page)
			sink ^= base[off + k];
		if (cb != NULL && cb(ud, (uint64_t)(off + n), (uint64_t)size) != 0)
			return 1;
	}
	(void)sink;
	/* In memory now: the packing reads it at memory speed (a fraction of
	 * a second per GB), here rather than in the first reply. */
	model_pack(m);
	return 0;
}

int
engine_tokenize(const struct engine_model *m, const char *text, size_t len, int add_bos, int32_t **ids)
{
	*ids = malloc(tok_max_tokens(len) * sizeof **ids);
	if (*ids == NULL)
		return -1;
	return tok_encode(m->m->tok, text, len, add_bos, *ids);
}

void
engine_detok_init(struct engine_detok *d, int strip_leading_space)
{
	tok_decoder_init((struct tok_decoder *)d, strip_leading_space);
}

size_t
engine_detok_push(const struct engine_model *m, struct engine_detok *d, int32_t id, char *out)
{
	return tok_decoder_push(m->m->tok, (struct tok_decoder *)d, id, out);
}

size_t
engine_detok_flush(struct engine_detok *d, char *out)
{
	return tok_decoder_flush((struct tok_decoder *)d, out);
}

size_t
engine_detok_max(const struct engine_model *m)
{
	return tok_decoder_max(m->m->tok);
}

char *
engine_detokenize(const struct engine_model *m, const int32_t *ids, int n)
{
	return tok_decode(m->m->tok, ids, n);
}

const char *
engine_token_piece(const struct engine_model *m, int32_t id, size_t *len)
{
	return tok_piece(m->m->tok, id, len);
}

void
engine_ctx_params_default(struct engine_ctx_params *p)
{
	memset(p, 0, sizeof *p);
}

struct engine_ctx *
engine_ctx_new(struct engine_model *em, const struct engine_ctx_params *p, char **err)
{
	const struct model_config *c = &em->m->cfg;
	struct engine_ctx *ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL) {
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	if (em->m->layers == NULL) {
		if (err)
			*err = strdup("a tokenizer alone cannot run: give a model");
		free(ctx);
		return NULL;
	}
	ctx->em = em;
	int n_ctx = p && p->n_ctx > 0 ? p->n_ctx : (c->seq_len < 4096 ? c->seq_len : 4096);
	int n_batch = p && p->n_batch > 0 ? p->n_batch : ENGINE_N_BATCH;
	ctx->n_threads = p && p->n_threads > 0 ? p->n_threads : physical_cores();
	omp_set_num_threads(ctx->n_threads);
	if (n_ctx > (1 << 20)) {
		if (err)
			*err = strdup("context size too large");
		free(ctx);
		return NULL;
	}
	ctx->tokens = malloc((size_t)n_ctx * sizeof *ctx->tokens);
	if (ctx->tokens == NULL || kv_init(&ctx->kv, em->m, n_ctx,
	    p && p->kv_q8 ? KV_Q8 : p && p->kv_f32 ? KV_F32 : KV_F16, err) != 0) {
		free(ctx->tokens);
		free(ctx);
		return NULL;
	}
	if (run_state_init(&ctx->rs, em->m, n_ctx, n_batch, err) != 0) {
		kv_free(&ctx->kv);
		free(ctx->tokens);
		free(ctx);
		return NULL;
	}
	return ctx;
}

void
engine_ctx_free(struct engine_ctx *c)
{
	if (c == NULL)
		return;
	kv_free(&c->kv);
	run_state_free(&c->rs);
	free(c->tokens);
	free(c->all_logits);
	free(c);
}

int
engine_ctx_size(const struct engine_ctx *c)
{
	return c->kv.n_ctx;
}

int
engine_ctx_threads(const struct engine_ctx *c)
{
	return c->n_threads;
}

const int32_t *
engine_ctx_tokens(const struct engine_ctx *c, int *n)
{
	*n = c->n_past;
	return c->tokens;
}

void
engine_ctx_truncate(struct engine_ctx *c, int n)
{
	if (n < c->n_past && n >= 0)
		c->n_past = n;    /* positions >= n are overwritten before use */
}

int
engine_ctx_common_prefix(const struct engine_ctx *c, const int32_t *ids, int n)
{
	int i = 0;
	while (i < n && i < c->n_past && c->tokens[i] == ids[i])
		i++;
	return i;
}

static int
decode_progress(struct engine_ctx *c, const int32_t *ids, int n, int all_logits, atomic_int *stop,
    engine_progress_fn progress, void *ud, char **err)
{
	const int vocab = c->em->m->cfg.vocab_size;
	if (n <= 0) {
		if (err)
			*err = strdup("nothing to decode");
		return -1;
	}
	if (c->n_past + n > c->kv.n_ctx) {
		eng_errf(err, "context full: %d + %d tokens exceed the context of %d", c->n_past, n,
		    c->kv.n_ctx);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (ids[i] < 0 || ids[i] >= vocab) {
			eng_errf(err, "token id %d is out of range (vocabulary %d)", ids[i], vocab);
			return -1;
		}
	}
	if (all_logits) {
		size_t need = (size_t)n * vocab;
		if (need > c->all_cap) {
			float *nl = realloc(c->all_logits, need * sizeof(float));
			if (nl == NULL) {
				if (err)
					*err = strdup("out of memory");
				return -1;
			}
			c->all_logits = nl;
			c->all_cap = need;
		}
	}
	omp_set_num_threads(c->n_threads);
	/* The first pass packs the matrices, if engine_prefetch has not. */
	model_pack(c->em->m);
	for (int done = 0; done < n;) {
		int b = n - done < c->rs.n_batch ? n - done : c->rs.n_batch;
		int last = done + b == n;
		int rc = model_forward(c->em->m, &c->kv, &c->rs, ids + done, b, c->n_past, all_logits || last, stop);
		if (rc < 0) {
			if (err)
				*err = strdup("out of memory for the activations of a batch");
			return -1;
		}
		if (rc)
			return 1;
		memcpy(c->tokens + c->n_past, ids + done, (size_t)b * sizeof *ids);
		c->n_past += b;
		if (all_logits)
			memcpy(c->all_logits + (size_t)done * vocab, c->rs.logits, (size_t)b * vocab * sizeof(float));
		else if (last)
			memmove(c->rs.logits, c->rs.logits + (size_t)(b - 1) * vocab, (size_t)vocab * sizeof(float));
		done += b;
		if (progress)
			progress(ud, done, n);
	}
	c->last_all = all_logits;
	return 0;
}

int
engine_decode(struct engine_ctx *c, const int32_t *ids, int n, int all_logits, atomic_int *stop, char **err)
{
	return decode_progress(c, ids, n, all_logits, stop, NULL, NULL, err);
}

const float *
engine_logits(const struct engine_ctx *c, int i)
{
	const int vocab = c->em->m->cfg.vocab_size;
	return c->last_all ? c->all_logits + (size_t)i * vocab : c->rs.logits;
}

int
engine_generate(struct engine_ctx *c, const int32_t *prompt, int n, struct engine_sampler *smp,
    const struct engine_gen_params *gp, struct engine_gen_stats *st, int32_t **out_ids, int *n_out, char **err)
{
	const struct engine_model *em = c->em;
	const int vocab = em->m->cfg.vocab_size;
	int n_eog;
	const int32_t *eog = tok_eog(em->m->tok, &n_eog);
	struct engine_gen_stats dummy;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof *st);
	if (out_ids)
		*out_ids = NULL;
	if (n_out)
		*n_out = 0;
	if (n <= 0) {
		if (err)
			*err = strdup("empty prompt");
		return -1;
	}
	if (n >= c->kv.n_ctx) {
		eng_errf(err, "prompt of %d tokens does not fit the context of %d", n, c->kv.n_ctx);
		return -1;
	}
	double t0 = clock_now_ms();
	/* Reuse the cached prefix; the last prompt token is always run again
	 * so that its logits are fresh. */
	int common = engine_ctx_common_prefix(c, prompt, n);
	if (common == n)
		common = n - 1;
	engine_ctx_truncate(c, common);
	st->n_reused = common;
	st->n_prompt = n - common;
	int rc = decode_progress(c, prompt + common, n - common, 0, gp->stop, gp->on_progress, gp->ud, err);
	st->prefill_ms = clock_now_ms() - t0;
	st->pp_tps = st->prefill_ms > 0 ? st->n_prompt / (st->prefill_ms / 1e3) : 0;
	st->ctx_used = c->n_past;
	if (rc < 0)
		return -1;
	if (rc == 1) {
		st->reason = ENGINE_STOP_USER;
		return 0;
	}
	int cap = 256, ng = 0;
	int32_t *out = malloc((size_t)cap * sizeof *out);
	char *text = malloc(tok_decoder_max(em->m->tok) + 8);
	if (out == NULL || text == NULL) {
		free(out);
		free(text);
		if (err)
			*err = strdup("out of memory");
		return -1;
	}
	struct tok_decoder dec;
	tok_decoder_init(&dec, gp->strip_leading_space);
	double t_first = 0;
	for (;;) {
		if (engine_sampler_params(smp)->ignore_eos)
			for (int e = 0; e < n_eog; e++)   /* our buffer: valid until the next decode */
				c->rs.logits[eog[e]] = -INFINITY;
		/* The whole context: the sampler takes the last repeat_last_n of it. */
		int32_t id = engine_sample(smp, engine_logits(c, 0), vocab, c->tokens, c->n_past);
		if (id < 0) {
			if (err)
				*err = strdup("out of memory in the sampler");
			rc = -1;
			break;
		}
		if (ng == cap) {
			int32_t *no = realloc(out, (size_t)(cap *= 2) * sizeof *out);
			if (no == NULL) {
				if (err)
					*err = strdup("out of memory");
				rc = -1;
				break;
			}
			out = no;
		}
		out[ng++] = id;
		if (ng == 1) {
			t_first = clock_now_ms();
			st->ttft_ms = t_first - t0;
		}
		if (tok_is_eog(em->m->tok, id)) {   /* EOS, <|eot_id|>, <|im_end|> ... */
			st->reason = ENGINE_STOP_EOS;
			break;
		}
		size_t len = tok_decoder_push(em->m->tok, &dec, id, text);
		if (gp->on_token && gp->on_token(gp->ud, id, text, len)) {
			st->reason = ENGINE_STOP_USER;
			break;
		}
		if (gp->max_tokens > 0 && ng >= gp->max_tokens) {
			st->reason = ENGINE_STOP_LENGTH;
			break;
		}
		if (gp->stop && atomic_load(gp->stop)) {
			st->reason = ENGINE_STOP_USER;
			break;
		}
		if (c->n_past + 1 >= c->kv.n_ctx) {
			st->reason = ENGINE_STOP_CTX;
			break;
		}
		rc = decode_progress(c, &id, 1, 0, gp->stop, NULL, NULL, err);
		if (rc < 0)
			break;
		if (rc == 1) {
			rc = 0;
			st->reason = ENGINE_STOP_USER;
			break;
		}
	}
	size_t len = tok_decoder_flush(&dec, text);
	if (len && gp->on_token)
		gp->on_token(gp->ud, -1, text, len);
	free(text);
	double t_end = clock_now_ms();
	st->n_gen = ng;
	st->gen_ms = ng ? t_end - t_first : 0;
	st->tg_tps = ng > 1 && st->gen_ms > 0 ? (ng - 1) / (st->gen_ms / 1e3) : 0;
	st->ctx_used = c->n_past;
	if (out_ids) {
		*out_ids = out;
		if (n_out)
			*n_out = ng;
	} else {
		free(out);
	}
	return rc < 0 ? -1 : 0;
}

const char *
engine_ctx_kv_type(const struct engine_ctx *c)
{
	return kv_type_name(c->kv.type);
}

uint64_t
engine_ctx_kv_bytes(const struct engine_ctx *c)
{
	return 2 * (uint64_t)c->kv.n_layers * (uint64_t)c->kv.n_ctx * kv_row_bytes(&c->kv);
}

struct kv_cache *
engine_ctx_kv(struct engine_ctx *c)
{
	return &c->kv;
}

const struct engine_model *
engine_ctx_model(const struct engine_ctx *c)
{
	return c->em;
}

void
engine_ctx_set_tokens(struct engine_ctx *c, const int32_t *ids, int n)
{
	memcpy(c->tokens, ids, (size_t)n * sizeof *ids);
	c->n_past = n;
}
