/*
 * l2c.c: llama2.c checkpoints (Karpathy's run.c / runq.c formats).
 *
 *   legacy (v0): 7 int32 (dim, hidden, layers, heads, kv_heads, vocab, seq);
 *                vocab < 0 means a separate classifier; float32 weights in
 *                run.c's order, including the unused freq_cis tables.
 *   version 1:   256-byte header: u32 magic "ak42", i32 1, the 7 ints, u8
 *                shared_classifier; float32 weights, norms first.
 *   version 2:   as version 1 plus i32 group_size; norms float32, matrices
 *                int8 with one float scale per group (q then s, per tensor).
 *
 * The tokenizer is a separate tokenizer.bin (tok_spm_load_bin).  Every tensor
 * bound here is checked to lie inside the mapping.
 */
#include "engine/model.h"
#include "engine/errf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2C_MAGIC 0x616b3432u

/* A cursor over the mapping that binds consecutive tensors. */
struct cur {
	const uint8_t *base;
	size_t size, off;
	int group;                /* 0: float32 tensors; else int8 groups */
	int bad;
};

static void
take_f32(struct cur *c, struct tensor *t, int64_t cols, int64_t rows)
{
	uint64_t n = (uint64_t)cols * (uint64_t)rows * 4;
	if (c->bad || n > c->size - c->off) {
		c->bad = 1;
		return;
	}
	t->type = QT_F32;
	t->ne[0] = cols;
	t->ne[1] = rows;
	t->data = c->base + c->off;
	t->row_bytes = (size_t)cols * 4;
	c->off += n;
}

static void
take_q8(struct cur *c, struct tensor *t, int64_t cols, int64_t rows)
{
	uint64_t n = (uint64_t)cols * (uint64_t)rows;
	uint64_t ns = n / (uint64_t)c->group * 4;
	if (c->bad || n > c->size - c->off || ns > c->size - c->off - n) {
		c->bad = 1;
		return;
	}
	t->type = QT_Q8_G;
	t->ne[0] = cols;
	t->ne[1] = rows;
	t->data = c->base + c->off;
	t->row_bytes = (size_t)cols;
	t->scales = (const float *)(c->base + c->off + n);
	t->group = c->group;
	c->off += n + ns;
}

static void
take(struct cur *c, struct tensor *t, int64_t cols, int64_t rows)
{
	if (c->group)
		take_q8(c, t, cols, rows);
	else
		take_f32(c, t, cols, rows);
}

/* The same matrix of every layer, one after another. */
#define TAKE_LAYERS(c, m, field, cols, rows) \
	for (int l_ = 0; l_ < (m)->cfg.n_layers; l_++) \
		take((c), &(m)->layers[l_].field, (cols), (rows))
#define TAKE_NORMS(c, m, field) \
	for (int l_ = 0; l_ < (m)->cfg.n_layers; l_++) \
		take_f32((c), &(m)->layers[l_].field, (m)->cfg.dim, 1)

int
model_load_l2c(struct model *m, const char *path, const char *tokenizer_path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return eng_errf(err, "%s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return eng_errf(err, "not a regular file");
	}
	if (st.st_size < 28) {
		close(fd);
		return eng_errf(err, "not a model file (neither GGUF nor llama2.c: too short)");
	}
	m->map_size = (size_t)st.st_size;
	m->file_size = (uint64_t)st.st_size;
	m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		return eng_errf(err, "cannot map: %s", strerror(errno));
	}
	const uint8_t *b = m->map;
	int32_t h[7];
	uint32_t magic;
	memcpy(&magic, b, 4);
	int version = 0, shared, group = 0;
	size_t off;
	if (magic == L2C_MAGIC) {
		if (m->map_size < 256)
			return eng_errf(err, "truncated llama2.c header");
		memcpy(&version, b + 4, 4);
		if (version != 1 && version != 2)
			return eng_errf(err, "llama2.c checkpoint version %d is not supported (1 or 2)", version);
		memcpy(h, b + 8, sizeof h);
		shared = b[36];
		if (version == 2)
			memcpy(&group, b + 37, 4);
		off = 256;
	} else {
		memcpy(h, b, sizeof h);
		shared = h[5] > 0;
		if (h[5] < 0)   /* INT32_MIN has no negation: 0 is refused below */
			h[5] = h[5] == INT32_MIN ? 0 : -h[5];
		off = 28;
	}
	struct model_config *c = &m->cfg;
	c->dim = h[0];
	c->hidden_dim = h[1];
	c->n_layers = h[2];
	c->n_heads = h[3];
	c->n_kv_heads = h[4];
	c->vocab_size = h[5];
	c->seq_len = h[6];
	if (c->dim < 1 || c->dim > 65536 || c->hidden_dim < 1 || c->hidden_dim > 262144 ||
	    c->n_layers < 1 || c->n_layers > 1024 || c->n_heads < 1 || c->dim % c->n_heads != 0 ||
	    c->n_kv_heads < 1 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0 ||
	    c->vocab_size < 1 || c->vocab_size > (1 << 24) || c->seq_len < 1 || c->seq_len > (1 << 24) ||
	    (c->dim / c->n_heads) % 2 != 0)
		return eng_errf(err, "not a model file (neither GGUF nor a plausible llama2.c header)");
	c->head_dim = c->dim / c->n_heads;
	if (c->head_dim > 256 || c->n_heads / c->n_kv_heads > 64)
		return eng_errf(err, "head dimension %d or %d heads per KV head is not supported (at most 256, 64)",
		    c->head_dim, c->n_heads / c->n_kv_heads);
	c->rope_dim = c->head_dim;
	c->norm_eps = 1e-5f;
	c->rope_base = 10000.0f;
	if (version == 2) {
		if (group < 1 || group > 4096)
			return eng_errf(err, "llama2.c int8 group size %d is invalid", group);
		/* runq.c silently drops a row's tail when the group does not
		 * divide it; we refuse instead. */
		if (c->dim % group != 0 || c->hidden_dim % group != 0)
			return eng_errf(err, "llama2.c int8 group size %d does not divide dim %d and hidden %d",
			    group, c->dim, c->hidden_dim);
	}
	snprintf(m->format, sizeof m->format, "llama2.c %s", version == 0 ? "legacy" :
	    version == 1 ? "v1 (float32)" : "v2 (int8)");

	m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
	if (m->layers == NULL)
		return eng_errf(err, "out of memory");
	int kv_dim = c->head_dim * c->n_kv_heads;
	struct cur cu = { b, m->map_size, off, 0, 0 };
	if (version == 0) {
		take_f32(&cu, &m->tok_embd, c->dim, c->vocab_size);
		TAKE_NORMS(&cu, m, attn_norm);
		TAKE_LAYERS(&cu, m, wq, c->dim, c->dim);
		TAKE_LAYERS(&cu, m, wk, c->dim, kv_dim);
		TAKE_LAYERS(&cu, m, wv, c->dim, kv_dim);
		TAKE_LAYERS(&cu, m, wo, c->dim, c->dim);
		TAKE_NORMS(&cu, m, ffn_norm);
		TAKE_LAYERS(&cu, m, w_gate, c->dim, c->hidden_dim);
		TAKE_LAYERS(&cu, m, w_down, c->hidden_dim, c->dim);
		TAKE_LAYERS(&cu, m, w_up, c->dim, c->hidden_dim);
		take_f32(&cu, &m->out_norm, c->dim, 1);
		struct tensor skip;
		take_f32(&cu, &skip, c->head_dim, c->seq_len);   /* freq_cis real+imag */
	} else {
		TAKE_NORMS(&cu, m, attn_norm);
		TAKE_NORMS(&cu, m, ffn_norm);
		take_f32(&cu, &m->out_norm, c->dim, 1);
		cu.group = group;
		take(&cu, &m->tok_embd, c->dim, c->vocab_size);
		TAKE_LAYERS(&cu, m, wq, c->dim, c->dim);
		TAKE_LAYERS(&cu, m, wk, c->dim, kv_dim);
		TAKE_LAYERS(&cu, m, wv, c->dim, kv_dim);
		TAKE_LAYERS(&cu, m, wo, c->dim, c->dim);
		TAKE_LAYERS(&cu, m, w_gate, c->dim, c->hidden_dim);
		TAKE_LAYERS(&cu, m, w_down, c->hidden_dim, c->dim);
		TAKE_LAYERS(&cu, m, w_up, c->dim, c->hidden_dim);
	}
	if (shared)
		m->output = m->tok_embd;
	else
		take(&cu, &m->output, c->dim, c->vocab_size);
	if (cu.bad)
		return eng_errf(err, "truncated: the weights need more bytes than the file has");

	/* The tokenizer: given, or tokenizer.bin beside the model. */
	char *tpath = NULL;
	if (tokenizer_path) {
		tpath = strdup(tokenizer_path);
	} else {
		char *dup = strdup(path);
		if (dup && asprintf(&tpath, "%s/tokenizer.bin", dirname(dup)) < 0)
			tpath = NULL;
		free(dup);
	}
	if (tpath == NULL)
		return eng_errf(err, "out of memory");
	if (tokenizer_path == NULL && access(tpath, R_OK) != 0) {
		int rc = eng_errf(err, "no tokenizer: %s not found (give one with --tokenizer FILE)", tpath);
		free(tpath);
		return rc;
	}
	char *terr = NULL;
	/* Every piece in the file (n_vocab 0), so that a tokenizer made for
	 * another vocabulary (the 32,000-piece tokenizer.bin beside a 512-token
	 * model) is caught instead of silently cut to the model's size. */
	m->tok = tok_spm_load_bin(tpath, 0, &terr);
	if (m->tok == NULL) {
		free(tpath);
		eng_errf(err, "tokenizer %s", terr ? terr : "unusable");
		free(terr);
		return -1;
	}
	if (tok_n_vocab(m->tok) != c->vocab_size) {
		int rc = eng_errf(err, "tokenizer %s has %d pieces but the model's vocabulary is %d: "
		    "give the tokenizer made for this model with --tokenizer FILE", tpath,
		    tok_n_vocab(m->tok), c->vocab_size);
		free(tpath);
		return rc;
	}
	free(tpath);
	return 0;
}
