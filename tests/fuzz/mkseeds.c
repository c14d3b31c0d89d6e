/*
 * mkseeds.c: seed corpora for the fuzz targets, written at run time into
 * build/fuzz/corpus-<target>/ so that nothing derived from the shared
 * fixtures is ever committed.
 *
 *   mkseeds OUTDIR [FIXTURES]
 *
 * Writes tiny GGUF models (one per weight type, a few kilobytes each,
 * through engine/gguf_write.c and the reference quantizers), tiny llama2.c
 * checkpoints of all three versions, and, from the golden tokenizer data,
 * texts to encode, id sequences to decode and dialogs to render.  The
 * larger fixture models are copied in by the Makefile.
 */
#include "engine/gguf_write.h"
#include "engine/quant.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *outdir;
static uint32_t rng = 12345;

static float
frand(void)
{
	rng = rng * 1664525u + 1013904223u;
	return ((rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

static void
put(const char *target, const char *name, const void *data, size_t n)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/corpus-%s", outdir, target);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/corpus-%s/%s", outdir, target, name);
	FILE *f = fopen(p, "wb");
	if (f == NULL || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		perror(p);
		exit(1);
	}
}

/* ---- tiny GGUF models ------------------------------------------------------ */

#define T_VOCAB 262

struct tiny {
	int dim, ffn, heads, kv;
	int mtype;                /* matrices */
	int types[16];
	int64_t ne[16][2];
};

static int
tiny_data(void *ud, int idx, FILE *f, size_t nbytes)
{
	struct tiny *t = ud;
	int type = t->types[idx];
	int64_t cols = t->ne[idx][0], rows = t->ne[idx][1];
	const struct quant_type *q = quant_type_get(type);
	size_t rb = quant_row_size(type, cols);
	float *x = malloc((size_t)cols * sizeof *x);
	void *y = malloc(rb);
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++)
			x[c] = frand() + (rows == 1 ? 1.0f : 0.0f);
		q->from_float(x, y, cols);
		fwrite(y, 1, rb, f);
	}
	free(x);
	free(y);
	(void)nbytes;
	return 0;
}

static void
tiny_gguf(const char *name, int dim, int ffn, int heads, int kv, int mtype)
{
	static char pieces[T_VOCAB][16];
	const char *pp[T_VOCAB];
	float scores[T_VOCAB];
	int32_t types[T_VOCAB];
	for (int i = 0; i < T_VOCAB; i++) {
		if (i == 0) snprintf(pieces[i], 16, "<unk>");
		else if (i == 1) snprintf(pieces[i], 16, "<s>");
		else if (i == 2) snprintf(pieces[i], 16, "</s>");
		else if (i < 259) snprintf(pieces[i], 16, "<0x%02X>", i - 3);
		else if (i == 259) snprintf(pieces[i], 16, "\xe2\x96\x81");
		else if (i == 260) snprintf(pieces[i], 16, "a");
		else snprintf(pieces[i], 16, "\xe2\x96\x81" "a");
		pp[i] = pieces[i];
		scores[i] = i < 259 ? 0 : -(float)i;
		types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
	}
	struct gguf_writer *w = gguf_writer_new();
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_str(w, "general.name", name);
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", (uint32_t)dim);
	gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)ffn);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", (uint32_t)heads);
	gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)kv);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
	gguf_w_str(w, "tokenizer.ggml.model", "llama");
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", pp, NULL, T_VOCAB);
	gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, T_VOCAB);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, T_VOCAB);
	int kvd = dim / heads * kv;
	struct { const char *n; int64_t a, b; } ts[] = {
		{ "token_embd.weight", dim, T_VOCAB }, { "output_norm.weight", dim, 1 },
		{ "blk.0.attn_norm.weight", dim, 1 }, { "blk.0.attn_q.weight", dim, dim },
		{ "blk.0.attn_k.weight", dim, kvd }, { "blk.0.attn_v.weight", dim, kvd },
		{ "blk.0.attn_output.weight", dim, dim }, { "blk.0.ffn_norm.weight", dim, 1 },
		{ "blk.0.ffn_gate.weight", dim, ffn }, { "blk.0.ffn_down.weight", ffn, dim },
		{ "blk.0.ffn_up.weight", dim, ffn },
	};
	struct tiny t = { dim, ffn, heads, kv, mtype, { 0 }, { { 0 } } };
	for (int i = 0; i < (int)(sizeof ts / sizeof ts[0]); i++) {
		int64_t ne[2] = { ts[i].a, ts[i].b };
		int type = ts[i].b == 1 ? QT_F32 : mtype;
		t.types[i] = type;
		t.ne[i][0] = ne[0];
		t.ne[i][1] = ne[1];
		gguf_w_tensor(w, ts[i].n, type, ts[i].b == 1 ? 1 : 2, ne);
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s/tmp.gguf", outdir);
	char *err = NULL;
	if (gguf_writer_write(w, tmp, tiny_data, &t, &err) != 0) {
		fprintf(stderr, "mkseeds: %s: %s\n", name, err);
		exit(1);
	}
	gguf_writer_free(w);
	char dst[4096];
	snprintf(dst, sizeof dst, "%s/corpus-gguf", outdir);
	mkdir(dst, 0700);
	snprintf(dst, sizeof dst, "%s/corpus-gguf/%s.gguf", outdir, name);
	if (rename(tmp, dst) != 0) {
		perror(dst);
		exit(1);
	}
}

/* ---- tiny llama2.c checkpoints ---------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t n, cap;
};

static void
wb_put(struct wbuf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void
wb_f32(struct wbuf *b, size_t n, float bias)
{
	for (size_t i = 0; i < n; i++) {
		float v = frand() + bias;
		wb_put(b, &v, 4);
	}
}

/* int8 values then one float scale per group. */
static void
wb_q8(struct wbuf *b, size_t n, int group)
{
	for (size_t i = 0; i < n; i++) {
		int8_t q = (int8_t)(frand() * 1000);
		wb_put(b, &q, 1);
	}
	for (size_t i = 0; i < n / (size_t)group; i++) {
		float s = 0.001f;
		wb_put(b, &s, 4);
	}
}

static void
tiny_l2c(const char *name, int version, int shared)
{
	const int dim = 8, hidden = 16, layers = 1, heads = 2, kv = 2, vocab = 300, seq = 16, group = 8;
	const int kvd = dim / heads * kv, hd = dim / heads;
	struct wbuf b = { 0 };
	int32_t h[7] = { dim, hidden, layers, heads, kv, shared ? vocab : -vocab, seq };
	if (version == 0) {
		wb_put(&b, h, sizeof h);
		wb_f32(&b, (size_t)vocab * dim, 0);
		wb_f32(&b, (size_t)layers * dim, 1);
		wb_f32(&b, (size_t)layers * dim * dim, 0);
		wb_f32(&b, (size_t)layers * dim * kvd, 0);
		wb_f32(&b, (size_t)layers * dim * kvd, 0);
		wb_f32(&b, (size_t)layers * dim * dim, 0);
		wb_f32(&b, (size_t)layers * dim, 1);
		wb_f32(&b, (size_t)layers * dim * hidden, 0);
		wb_f32(&b, (size_t)layers * hidden * dim, 0);
		wb_f32(&b, (size_t)layers * dim * hidden, 0);
		wb_f32(&b, (size_t)dim, 1);
		wb_f32(&b, (size_t)seq * hd, 0);
		if (!shared)
			wb_f32(&b, (size_t)vocab * dim, 0);
	} else {
		uint8_t hdr[256] = { 0 };
		uint32_t magic = 0x616b3432u;
		int32_t v = version;
		h[5] = vocab;
		memcpy(hdr, &magic, 4);
		memcpy(hdr + 4, &v, 4);
		memcpy(hdr + 8, h, sizeof h);
		hdr[36] = (uint8_t)shared;
		if (version == 2)
			memcpy(hdr + 37, &group, 4);
		wb_put(&b, hdr, sizeof hdr);
		wb_f32(&b, (size_t)layers * dim, 1);
		wb_f32(&b, (size_t)layers * dim, 1);
		wb_f32(&b, (size_t)dim, 1);
		size_t mats[] = { (size_t)vocab * dim, (size_t)dim * dim, (size_t)dim * kvd, (size_t)dim * kvd,
			(size_t)dim * dim, (size_t)dim * hidden, (size_t)hidden * dim, (size_t)dim * hidden,
			shared ? 0 : (size_t)vocab * dim };
		for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
			if (mats[i] == 0)
				continue;
			if (version == 2)
				wb_q8(&b, mats[i], group);
			else
				wb_f32(&b, mats[i], 0);
		}
	}
	put("l2c", name, b.p, b.n);
	free(b.p);
}

/* ---- from the golden tokenizer data ----------------------------------------- */

static void
golden_seeds(const char *fixtures)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/golden/tokenizer.json", fixtures);
	json_error_t je;
	json_t *g = json_load_file(p, 0, &je);
	if (g == NULL) {
		fprintf(stderr, "mkseeds: %s: %s (no tokenizer seeds)\n", p, je.text);
		return;
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(g, "tokenizer"), i, e) {
		const char *t = json_string_value(json_object_get(e, "text"));
		size_t n = json_string_length(json_object_get(e, "text"));
		if (t == NULL)
			continue;
		char *b = malloc(n + 1);
		memcpy(b + 1, t, n);
		for (int v = 0; v < 4; v += 3) {
			char name[64];
			b[0] = (char)v;
			snprintf(name, sizeof name, "golden-%zu-%d", i, v);
			put("tok_encode", name, b, n + 1);
		}
		free(b);
		json_t *ids = json_object_get(e, "ids");
		size_t k, nid = json_array_size(ids);
		json_t *id;
		uint8_t *d = malloc(1 + 4 * nid);
		d[0] = 0;
		json_array_foreach(ids, k, id) {
			int32_t v = (int32_t)json_integer_value(id);
			memcpy(d + 1 + 4 * k, &v, 4);
		}
		char name[64];
		snprintf(name, sizeof name, "golden-%zu", i);
		put("tok_decode", name, d, 1 + 4 * nid);
		free(d);
	}
	json_array_foreach(json_object_get(g, "chat"), i, e) {
		char *s = json_dumps(json_object_get(e, "messages"), JSON_COMPACT);
		char name[64];
		snprintf(name, sizeof name, "golden-%zu.json", i);
		if (s)
			put("dialog", name, s, strlen(s));
		free(s);
	}
	json_decref(g);
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: mkseeds OUTDIR [FIXTURES]\n");
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0700);
	tiny_gguf("tiny-f32", 8, 16, 2, 1, QT_F32);
	tiny_gguf("tiny-f16", 32, 64, 4, 2, QT_F16);
	tiny_gguf("tiny-bf16", 32, 64, 4, 2, QT_BF16);
	tiny_gguf("tiny-q4_0", 32, 64, 4, 2, QT_Q4_0);
	tiny_gguf("tiny-q4_1", 32, 64, 4, 2, QT_Q4_1);
	tiny_gguf("tiny-q5_0", 32, 64, 4, 2, QT_Q5_0);
	tiny_gguf("tiny-q5_1", 32, 64, 4, 2, QT_Q5_1);
	tiny_gguf("tiny-q8_0", 32, 64, 4, 2, QT_Q8_0);
	tiny_gguf("tiny-q2_k", 256, 256, 4, 2, QT_Q2_K);
	tiny_gguf("tiny-q3_k", 256, 256, 4, 2, QT_Q3_K);
	tiny_gguf("tiny-q4_k", 256, 256, 4, 2, QT_Q4_K);
	tiny_gguf("tiny-q5_k", 256, 256, 4, 2, QT_Q5_K);
	tiny_gguf("tiny-q6_k", 256, 256, 4, 2, QT_Q6_K);
	tiny_l2c("legacy-shared.bin", 0, 1);
	tiny_l2c("legacy-sep.bin", 0, 0);
	tiny_l2c("v1-shared.bin", 1, 1);
	tiny_l2c("v1-sep.bin", 1, 0);
	tiny_l2c("v2-shared.bin", 2, 1);
	tiny_l2c("v2-sep.bin", 2, 0);
	golden_seeds(argc > 2 ? argv[2] : "../shared");
	return 0;
}
