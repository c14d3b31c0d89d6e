/*
 * model.c: open a model file and bind its tensors.
 *
 * A model is weights that point into a read-only mapping of the file (GGUF,
 * or a llama2.c checkpoint, see l2c.c) plus the tokenizer.  Nothing is read
 * before it is used, so opening a 4 GB file costs a header parse.  Shapes of
 * every tensor are checked against the configuration here, once, so that the
 * forward pass can index without checks.
 */
#include "engine/model.h"
#include "engine/chat_tmpl.h"
#include "engine/errf.h"
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Bind GGUF tensor `name`, which must have shape (ne0, ne1). */
static int
bind(struct model *m, const char *name, int64_t ne0, int64_t ne1, struct tensor *t, char **err)
{
	const struct gguf_tensor *gt = gguf_find_tensor(m->gguf, name);
	if (gt == NULL)
		return eng_errf(err, "tensor '%s' is missing", name);
	int64_t rows = 1;
	for (uint32_t d = 1; d < gt->n_dims; d++)
		rows *= gt->ne[d];
	if (gt->ne[0] != ne0 || rows != ne1)
		return eng_errf(err, "tensor '%s' has shape %lldx%lld, expected %lldx%lld", name,
		    (long long)gt->ne[0], (long long)rows, (long long)ne0, (long long)ne1);
	if (ne1 == 1 && gt->type != QT_F32)
		return eng_errf(err, "tensor '%s' must be F32", name);
	t->type = gt->type;
	t->ne[0] = ne0;
	t->ne[1] = ne1;
	t->data = gt->data;
	t->row_bytes = quant_row_size(gt->type, ne0);
	return 0;
}

static int
gguf_str_is(const struct gguf *g, const char *key, const char *want, struct gguf_str *got)
{
	const struct gguf_kv *kv = gguf_find(g, key);
	if (kv == NULL || kv->type != GGUF_STRING)
		return -1;
	*got = kv->v.str;
	return gguf_str_eq(kv->v.str, want) ? 1 : 0;
}

/* Llama 3's byte-level BPE: tokenizer.ggml.pre and tokenizer.ggml.merges. */
static int
load_gguf_merges(struct model *m, char **err)
{
	const struct gguf *g = m->gguf;
	const struct gguf_kv *pre = gguf_find(g, "tokenizer.ggml.pre");
	const struct gguf_kv *mg = gguf_find(g, "tokenizer.ggml.merges");
	char prebuf[64] = "";
	if (pre && pre->type == GGUF_STRING)
		snprintf(prebuf, sizeof prebuf, "%.*s", (int)(pre->v.str.len > 48 ? 48 : pre->v.str.len), pre->v.str.s);
	if (mg == NULL || mg->type != GGUF_ARRAY || mg->arr_type != GGUF_STRING || mg->arr_n == 0 ||
	    mg->arr_n > (1u << 24))
		return eng_errf(err, "tokenizer.ggml.merges is missing or not a string array");
	const char **ms = malloc(mg->arr_n * sizeof *ms);
	uint32_t *ml = malloc(mg->arr_n * sizeof *ml);
	if (ms == NULL || ml == NULL) {
		free(ms);
		free(ml);
		return eng_errf(err, "out of memory");
	}
	uint64_t pos = 0, i = 0;
	size_t off = 0;
	struct gguf_str p;
	for (; i < mg->arr_n && gguf_arr_str_next(mg, &pos, &off, &p); i++) {
		ms[i] = p.s;
		ml[i] = p.len > UINT32_MAX ? UINT32_MAX : (uint32_t)p.len;
	}
	char *terr = NULL;
	int rc = tok_set_bpe(m->tok, pre && pre->type == GGUF_STRING ? prebuf : NULL, ms, ml, (int)i, &terr);
	if (rc != 0) {
		eng_errf(err, "%s", terr ? terr : "out of memory");
		free(terr);
	}
	free(ms);
	free(ml);
	return rc;
}

static int
load_gguf_vocab(struct model *m, char **err)
{
	const struct gguf *g = m->gguf;
	struct gguf_str s;
	int r = gguf_str_is(g, "tokenizer.ggml.model", "llama", &s);
	if (r < 0)
		return eng_errf(err, "no tokenizer in the file (tokenizer.ggml.model missing)");
	int bpe = r == 0 && gguf_str_eq(s, "gpt2");
	if (r == 0 && !bpe)
		return eng_errf(err, "tokenizer '%.*s' is not supported (only SentencePiece 'llama' and byte-level "
		    "BPE 'gpt2')", (int)(s.len > 32 ? 32 : s.len), s.s);
	const struct gguf_kv *tokens = gguf_find(g, "tokenizer.ggml.tokens");
	const struct gguf_kv *scores = gguf_find(g, "tokenizer.ggml.scores");
	const struct gguf_kv *types = gguf_find(g, "tokenizer.ggml.token_type");
	if (tokens == NULL || tokens->type != GGUF_ARRAY || tokens->arr_type != GGUF_STRING)
		return eng_errf(err, "tokenizer.ggml.tokens is missing or not a string array");
	uint64_t n = tokens->arr_n;
	if (n == 0 || n > (1u << 24))
		return eng_errf(err, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)n);
	if (scores && (scores->type != GGUF_ARRAY || scores->arr_type != GGUF_F32 || scores->arr_n != n))
		return eng_errf(err, "tokenizer.ggml.scores does not match the tokens");
	if (types && (types->type != GGUF_ARRAY || types->arr_type != GGUF_I32 || types->arr_n != n))
		return eng_errf(err, "tokenizer.ggml.token_type does not match the tokens");

	const char **pieces = malloc(n * sizeof *pieces);
	uint32_t *lens = malloc(n * sizeof *lens);
	float *sc = calloc(n, sizeof *sc);
	int32_t *ty = types ? malloc(n * sizeof *ty) : NULL;
	int rc = -1;
	if (!pieces || !lens || !sc || (types && !ty)) {
		eng_errf(err, "out of memory");
		goto out;
	}
	uint64_t pos = 0;
	size_t off = 0;
	struct gguf_str p;
	for (uint64_t i = 0; gguf_arr_str_next(tokens, &pos, &off, &p); i++) {
		if (p.len > (1u << 20)) {
			eng_errf(err, "token %llu is too long", (unsigned long long)i);
			goto out;
		}
		pieces[i] = p.s;
		lens[i] = (uint32_t)p.len;
	}
	if (scores)
		memcpy(sc, scores->arr, n * sizeof *sc);
	if (ty)
		memcpy(ty, types->arr, n * sizeof *ty);
	int ok = 1;
	int64_t bos = gguf_get_int(g, "tokenizer.ggml.bos_token_id", 1, &ok);
	int64_t eos = gguf_get_int(g, "tokenizer.ggml.eos_token_id", 2, &ok);
	/* Byte-level vocabularies have no <unk>: id 0 stands in (never made). */
	int64_t unk = gguf_get_int(g, "tokenizer.ggml.unknown_token_id", 0, &ok);
	if (!ok || bos < 0 || eos < 0 || unk < 0 || bos >= (int64_t)n || eos >= (int64_t)n || unk >= (int64_t)n) {
		eng_errf(err, "tokenizer special token ids are out of range");
		goto out;
	}
	char *terr = NULL;
	m->tok = tok_new((int)n, pieces, lens, sc, ty, (int)bos, (int)eos, (int)unk, &terr);
	if (m->tok == NULL) {
		eng_errf(err, "tokenizer: %s", terr ? terr : "unusable vocabulary");
		free(terr);
		goto out;
	}
	int64_t add_bos = gguf_get_int(g, "tokenizer.ggml.add_bos_token", 1, &ok);
	tok_set_add_bos(m->tok, ok ? add_bos != 0 : 1);
	if (bpe && load_gguf_merges(m, err) != 0)
		goto out;
	rc = 0;
out:
	free(pieces);
	free(lens);
	free(sc);
	free(ty);
	return rc;
}

int
model_load_gguf(struct model *m, const char *path, char **err)
{
	char *gerr = NULL;
	m->gguf = gguf_open(path, &gerr);
	if (m->gguf == NULL) {
		eng_errf(err, "%s", gerr ? gerr : "cannot read GGUF");
		free(gerr);
		return -1;
	}
	const struct gguf *g = m->gguf;
	snprintf(m->format, sizeof m->format, "GGUF v%u", g->version);
	struct gguf_str arch;
	int r = gguf_str_is(g, "general.architecture", "llama", &arch);
	if (r < 0)
		return eng_errf(err, "general.architecture is missing");
	if (r == 0)
		return eng_errf(err, "architecture '%.*s' is not supported (only llama)",
		    (int)(arch.len > 32 ? 32 : arch.len), arch.s);
	const struct gguf_kv *nm = gguf_find(g, "general.name");
	if (nm && nm->type == GGUF_STRING)
		snprintf(m->name, sizeof m->name, "%.*s", (int)(nm->v.str.len > 90 ? 90 : nm->v.str.len), nm->v.str.s);
	for (char *p = m->name; *p; p++)   /* shown by info and stored: no control codes */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	struct model_config *c = &m->cfg;
	int ok = 1;
	int64_t dim = gguf_get_int(g, "llama.embedding_length", -1, &ok);
	int64_t hidden = gguf_get_int(g, "llama.feed_forward_length", -1, &ok);
	int64_t layers = gguf_get_int(g, "llama.block_count", -1, &ok);
	int64_t heads = gguf_get_int(g, "llama.attention.head_count", -1, &ok);
	int64_t kv_heads = gguf_get_int(g, "llama.attention.head_count_kv", heads, &ok);
	int64_t ctx = gguf_get_int(g, "llama.context_length", 2048, &ok);
	double eps = gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5, &ok);
	double base = gguf_get_float(g, "llama.rope.freq_base", 10000.0, &ok);
	if (!ok)
		return eng_errf(err, "a llama.* hyperparameter has the wrong type");
	if (dim < 1 || dim > 65536 || hidden < 1 || hidden > 262144 || layers < 1 || layers > 1024 ||
	    heads < 1 || heads > dim || dim % heads != 0 || kv_heads < 1 || kv_heads > heads ||
	    heads % kv_heads != 0 || ctx < 1 || ctx > (1 << 24) || !(eps > 0 && eps < 1) || !(base > 0))
		return eng_errf(err, "implausible hyperparameters (dim %lld, ffn %lld, layers %lld, heads %lld/%lld)",
		    (long long)dim, (long long)hidden, (long long)layers, (long long)heads, (long long)kv_heads);
	c->dim = (int)dim;
	c->hidden_dim = (int)hidden;
	c->n_layers = (int)layers;
	c->n_heads = (int)heads;
	c->n_kv_heads = (int)kv_heads;
	c->seq_len = (int)ctx;
	c->head_dim = (int)(dim / heads);
	if (c->head_dim > 256 || c->n_heads / c->n_kv_heads > 64)
		return eng_errf(err, "head dimension %d or %d heads per KV head is not supported (at most 256, 64)",
		    c->head_dim, c->n_heads / c->n_kv_heads);
	int64_t rope = gguf_get_int(g, "llama.rope.dimension_count", c->head_dim, &ok);
	if (!ok || rope < 2 || rope > c->head_dim || rope % 2 != 0)
		return eng_errf(err, "llama.rope.dimension_count is invalid");
	c->rope_dim = (int)rope;
	c->norm_eps = (float)eps;
	c->rope_base = (float)base;

	if (load_gguf_vocab(m, err) != 0)
		return -1;
	/* The chat format: the file's template, LLaMA-2's when it has none. */
	const struct gguf_kv *tmpl = gguf_find(g, "tokenizer.chat_template");
	m->chat_family = CHAT_FAM_LLAMA2;
	snprintf(m->chat_date_fmt, sizeof m->chat_date_fmt, "%%d %%b %%Y");
	if (tmpl && tmpl->type == GGUF_STRING) {
		m->chat_family = chat_tmpl_detect(tmpl->v.str.s, tmpl->v.str.len);
		chat_tmpl_date_format(tmpl->v.str.s, tmpl->v.str.len, m->chat_date_fmt, sizeof m->chat_date_fmt);
	}
	c->vocab_size = tok_n_vocab(m->tok);

	int kv_dim = c->head_dim * c->n_kv_heads;
	if (bind(m, "token_embd.weight", dim, c->vocab_size, &m->tok_embd, err) ||
	    bind(m, "output_norm.weight", dim, 1, &m->out_norm, err))
		return -1;
	if (gguf_find_tensor(g, "output.weight")) {
		if (bind(m, "output.weight", dim, c->vocab_size, &m->output, err))
			return -1;
	} else {
		m->output = m->tok_embd;
	}
	/* Llama 3.1's rope scaling: one divisor per rotated pair. */
	if (gguf_find_tensor(g, "rope_freqs.weight") &&
	    bind(m, "rope_freqs.weight", c->rope_dim / 2, 1, &m->rope_freqs, err))
		return -1;
	m->layers = calloc((size_t)layers, sizeof *m->layers);
	if (m->layers == NULL)
		return eng_errf(err, "out of memory");
	for (int l = 0; l < c->n_layers; l++) {
		struct layer *L = &m->layers[l];
		char n[9][64];
		static const char *suffix[9] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
			"ffn_norm", "ffn_gate", "ffn_down", "ffn_up" };
		for (int i = 0; i < 9; i++)
			snprintf(n[i], sizeof n[i], "blk.%d.%s.weight", l, suffix[i]);
		if (bind(m, n[0], dim, 1, &L->attn_norm, err) ||
		    bind(m, n[1], dim, dim, &L->wq, err) ||
		    bind(m, n[2], dim, kv_dim, &L->wk, err) ||
		    bind(m, n[3], dim, kv_dim, &L->wv, err) ||
		    bind(m, n[4], dim, dim, &L->wo, err) ||
		    bind(m, n[5], dim, 1, &L->ffn_norm, err) ||
		    bind(m, n[6], dim, hidden, &L->w_gate, err) ||
		    bind(m, n[7], hidden, dim, &L->w_down, err) ||
		    bind(m, n[8], dim, hidden, &L->w_up, err))
			return -1;
	}
	m->map_size = g->size;
	m->file_size = g->size;
	return 0;
}

static int
file_magic(const char *path, uint8_t magic[4], char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return eng_errf(err, "%s", strerror(errno));
	ssize_t n = read(fd, magic, 4);
	close(fd);
	if (n < 0)
		return eng_errf(err, "%s", strerror(errno));
	if (n == 0)
		return eng_errf(err, "empty file");
	if (n < 4)
		memset(magic + n, 0, (size_t)(4 - n));
	return 0;
}

struct model *
model_open(const char *path, const char *tokenizer_path, char **err)
{
	uint8_t magic[4];
	if (file_magic(path, magic, err) != 0)
		return NULL;
	struct model *m = calloc(1, sizeof *m);
	if (m == NULL) {
		eng_errf(err, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->pack_lock, NULL);
	int rc = memcmp(magic, "GGUF", 4) == 0 ? model_load_gguf(m, path, err)
	    : model_load_l2c(m, path, tokenizer_path, err);
	if (rc != 0) {
		model_close(m);
		return NULL;
	}
	if (m->name[0] == '\0') {
		char *dup = strdup(path);
		if (dup) {
			snprintf(m->name, sizeof m->name, "%s", basename(dup));
			free(dup);
		}
	}
	model_finish(m);
	return m;
}

static void
count_tensor(struct model *m, const struct tensor *t)
{
	m->type_count[t->type == QT_Q8_G ? QT_COUNT : t->type]++;
	m->n_params += (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
	m->weight_bytes += t->row_bytes * (uint64_t)t->ne[1] +
	    (t->scales ? (uint64_t)(t->ne[0] / t->group) * (uint64_t)t->ne[1] * 4 : 0);
}

/* FNV-1a, enough to tell model files apart; not a security measure. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

void
model_finish(struct model *m)
{
	count_tensor(m, &m->tok_embd);
	count_tensor(m, &m->out_norm);
	if (m->output.data != m->tok_embd.data)
		count_tensor(m, &m->output);
	for (int l = 0; l < m->cfg.n_layers; l++) {
		const struct tensor *ts[9] = { &m->layers[l].attn_norm, &m->layers[l].wq, &m->layers[l].wk,
			&m->layers[l].wv, &m->layers[l].wo, &m->layers[l].ffn_norm, &m->layers[l].w_gate,
			&m->layers[l].w_down, &m->layers[l].w_up };
		for (int i = 0; i < 9; i++)
			count_tensor(m, ts[i]);
	}
	/* Decoding a token reads every matrix once but only one row of the
	 * embedding table (unless the output layer is that same table). */
	m->token_bytes = m->weight_bytes;
	if (m->output.data != m->tok_embd.data) {
		uint64_t emb = m->tok_embd.row_bytes * (uint64_t)m->tok_embd.ne[1] +
		    (m->tok_embd.scales ? (uint64_t)(m->tok_embd.ne[0] / m->tok_embd.group) * (uint64_t)m->tok_embd.ne[1] * 4 : 0);
		m->token_bytes -= emb - m->tok_embd.row_bytes;
	}
	/* Fingerprint: size, the first 64 KiB (header), and 4 KiB from each of
	 * 16 places spread over the file: cheap, and a different model or a
	 * re-quantized file changes it. */
	const uint8_t *base = m->gguf ? m->gguf->map : m->map;
	size_t size = m->map_size;
	uint64_t h = 0xcbf29ce484222325ull;
	h = fnv(h, &size, sizeof size);
	h = fnv(h, base, size < 65536 ? size : 65536);
	for (int i = 0; i < 16 && size > 4096; i++) {
		size_t off = (size - 4096) / 16 * (size_t)i;
		h = fnv(h, base + off, 4096);
	}
	snprintf(m->fingerprint, sizeof m->fingerprint, "%llu-%016llx", (unsigned long long)size,
	    (unsigned long long)h);
}

void
model_close(struct model *m)
{
	if (m == NULL)
		return;
	gguf_close(m->gguf);
	if (m->map)
		munmap(m->map, m->map_size);
	tok_free(m->tok);
	free(m->layers);
	free(m->pack_mem);
	pthread_mutex_destroy(&m->pack_lock);
	free(m);
}
