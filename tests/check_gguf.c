/*
 * check_gguf.c: model files, good and bad.  A tiny llama model is written
 * with our GGUF writer, then cut at every length and corrupted field by
 * field; real fixture files are cut at many points; llama2.c checkpoints
 * likewise.  Every broken file must give an error message, never a crash,
 * and (under ASan) never an out-of-bounds read.
 */
#include "tests/testutil.h"
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { T_DIM = 32, T_FFN = 64, T_VOCAB = 262, T_HEADS = 4, T_KV = 2 };

static uint32_t rng_state = 12345;
static float
frand(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return ((rng_state >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

static int
tiny_data(void *ud, int idx, FILE *f, size_t nbytes)
{
	(void)ud;
	(void)idx;
	/* All tensors are F32 here: norms near 1, the rest small. */
	for (size_t i = 0; i < nbytes / 4; i++) {
		float v = frand();
		if (nbytes / 4 == T_DIM)
			v += 1.0f;
		fwrite(&v, 4, 1, f);
	}
	return 0;
}

/* Knobs for hostile variants. */
struct tiny_opts {
	const char *arch;
	uint32_t alignment;
	int bad_type;
	int missing_tensor;
	int64_t huge_dim;
};

static char *
write_tiny(const char *dir, const char *name, const struct tiny_opts *o)
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
	gguf_w_str(w, "general.architecture", o && o->arch ? o->arch : "llama");
	if (o && o->alignment)
		gguf_w_u32(w, "general.alignment", o->alignment);
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", T_DIM);
	gguf_w_u32(w, "llama.feed_forward_length", T_FFN);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", T_HEADS);
	gguf_w_u32(w, "llama.attention.head_count_kv", T_KV);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "llama");
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", pp, NULL, T_VOCAB);
	gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, T_VOCAB);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, T_VOCAB);
	int kvd = T_DIM / T_HEADS * T_KV;
	struct { const char *n; int64_t a, b; } ts[] = {
		{ "token_embd.weight", T_DIM, T_VOCAB }, { "output_norm.weight", T_DIM, 1 },
		{ "blk.0.attn_norm.weight", T_DIM, 1 }, { "blk.0.attn_q.weight", T_DIM, T_DIM },
		{ "blk.0.attn_k.weight", T_DIM, kvd }, { "blk.0.attn_v.weight", T_DIM, kvd },
		{ "blk.0.attn_output.weight", T_DIM, T_DIM }, { "blk.0.ffn_norm.weight", T_DIM, 1 },
		{ "blk.0.ffn_gate.weight", T_DIM, T_FFN }, { "blk.0.ffn_down.weight", T_FFN, T_DIM },
		{ "blk.0.ffn_up.weight", T_DIM, T_FFN },
	};
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		if (o && o->missing_tensor && i == 4)
			continue;
		int64_t ne[2] = { ts[i].a, ts[i].b };
		if (o && o->huge_dim && i == 3)
			ne[1] = o->huge_dim;
		gguf_w_tensor(w, ts[i].n, o && o->bad_type && i == 3 ? 99 : QT_F32, ts[i].b == 1 ? 1 : 2, ne);
	}
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	char *err = NULL;
	rng_state = 12345;
	/* A huge dimension is refused from the header: write no data for it. */
	gguf_data_fn fn = o && o->huge_dim ? NULL : tiny_data;
	ck_assert_msg(gguf_writer_write(w, path, fn, NULL, &err) == 0, "%s", err);
	gguf_writer_free(w);
	return path;
}

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc(*n ? *n : 1);
	ck_assert_uint_eq(fread(b, 1, *n, f), *n);
	fclose(f);
	return b;
}

static void
spit(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* engine_open must fail with a message. */
static void
expect_bad(const char *path, const char *what)
{
	char *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m == NULL, "%s: opened a broken file", what);
	ck_assert_msg(err != NULL && err[0] != '\0', "%s: no message", what);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: message is not one line: %s", what, err);
	free(err);
}

START_TEST(test_tiny_roundtrip)
{
	char *dir = tmpdir_new();
	char *path = write_tiny(dir, "tiny.gguf", NULL);
	char *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	const struct engine_info *i = engine_info(m);
	ck_assert_int_eq(i->dim, T_DIM);
	ck_assert_int_eq(i->n_kv_heads, T_KV);
	ck_assert_int_eq(i->n_vocab, T_VOCAB);
	ck_assert_str_eq(i->format, "GGUF v3");
	struct engine_ctx *c = engine_ctx_new(m, NULL, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(engine_ctx_size(c), 64);
	int32_t ids[3] = { 1, 260, 261 };
	ck_assert_int_eq(engine_decode(c, ids, 3, 0, NULL, &err), 0);
	/* Overflowing the context is an error, not a crash. */
	int32_t many[80] = { 0 };
	ck_assert_int_eq(engine_decode(c, many, 80, 0, NULL, &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "context"));
	free(err);
	engine_ctx_free(c);
	engine_close(m);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_tiny_truncated_everywhere)
{
	char *dir = tmpdir_new();
	char *path = write_tiny(dir, "tiny.gguf", NULL);
	size_t n;
	char *b = slurp(path, &n);
	char *cut;
	ck_assert_int_ge(asprintf(&cut, "%s/cut.gguf", dir), 0);
	for (size_t len = 0; len < n; len += len < 8192 ? 1 : 97) {
		spit(cut, b, len);
		char what[64];
		snprintf(what, sizeof what, "cut at %zu of %zu", len, n);
		expect_bad(cut, what);
	}
	free(cut);
	free(b);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_tiny_hostile_fields)
{
	char *dir = tmpdir_new();
	char *path = write_tiny(dir, "tiny.gguf", NULL);
	size_t n;
	char *good = slurp(path, &n);
	char *bad = malloc(n);
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/bad.gguf", dir), 0);
	struct { size_t off; uint64_t val; int width; const char *what; } muts[] = {
		{ 0, 0x46554747u ^ 1, 4, "magic" },
		{ 4, 1, 4, "version 1" },
		{ 4, 99, 4, "version 99" },
		{ 8, 1ull << 62, 8, "tensor count" },
		{ 16, 1ull << 62, 8, "kv count" },
		{ 16, 0, 8, "no metadata" },
		{ 24, 1ull << 60, 8, "first key length" },
		{ 24, 3, 8, "short first key" },
	};
	for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
		memcpy(bad, good, n);
		memcpy(bad + muts[i].off, &muts[i].val, (size_t)muts[i].width);
		spit(p, bad, n);
		expect_bad(p, muts[i].what);
	}
	/* Every byte of the metadata flipped, one at a time, and every 13th of
	 * the vocabulary and tensor infos. */
	const struct gguf *g;
	char *err = NULL;
	struct gguf *gg = gguf_open(path, &err);
	ck_assert_ptr_nonnull(gg);
	g = gg;
	size_t hdr = (size_t)g->data_off;
	gguf_close(gg);
	int opened = 0;
	struct engine_ctx_params cp;
	engine_ctx_params_default(&cp);
	cp.n_ctx = 16;
	for (size_t off = 0; off < hdr; off += off < 600 ? 1 : 13) {
		memcpy(bad, good, n);
		bad[off] ^= 0x80;
		spit(p, bad, n);
		err = NULL;
		struct engine_model *m = engine_open(p, NULL, &err);
		if (m) {
			opened++;      /* a flipped piece byte can still be a valid file */
			struct engine_ctx *c = engine_ctx_new(m, &cp, &err);
			int32_t ids[2] = { 1, 260 };
			if (c)
				engine_decode(c, ids, 2, 0, NULL, NULL);
			engine_ctx_free(c);
			engine_close(m);
		} else {
			ck_assert_ptr_nonnull(err);
			free(err);
		}
	}
	fprintf(stderr, "gguf: %zu header bytes flipped, %d still opened\n", hdr, opened);
	/* Structural problems written on purpose. */
	struct { struct tiny_opts o; const char *what, *expect; } var[] = {
		{ { .arch = "gpt2" }, "architecture", "architecture" },
		{ { .alignment = 3 }, "alignment", "alignment" },
		{ { .bad_type = 1 }, "tensor type", "type" },
		{ { .missing_tensor = 1 }, "missing tensor", "missing" },
		{ { .huge_dim = 1ll << 41 }, "huge dimension", "dimension" },
	};
	for (size_t i = 0; i < sizeof var / sizeof var[0]; i++) {
		char *vp = write_tiny(dir, "var.gguf", &var[i].o);
		err = NULL;
		ck_assert_ptr_null(engine_open(vp, NULL, &err));
		ck_assert_msg(err && strstr(err, var[i].expect), "%s: message '%s'", var[i].what, err);
		free(err);
		free(vp);
	}
	free(p);
	free(bad);
	free(good);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

static void
cut_real_file(const char *rel, int points)
{
	char *src = fixture_path(rel);
	ck_assert_ptr_nonnull(src);
	size_t n;
	char *b = slurp(src, &n);
	char *dir = tmpdir_new();
	char *cut;
	ck_assert_int_ge(asprintf(&cut, "%s/cut", dir), 0);
	for (int k = 0; k < points; k++) {
		size_t len = (size_t)((double)n * k / points);
		if (k < 16)
			len = (size_t)k * 7;   /* the very start too */
		spit(cut, b, len);
		char what[128];
		snprintf(what, sizeof what, "%s cut at %zu", rel, len);
		expect_bad(cut, what);
	}
	/* One byte short of whole. */
	spit(cut, b, n - 1);
	expect_bad(cut, "one byte short");
	free(cut);
	free(b);
	free(src);
	tmpdir_remove(dir);
}

START_TEST(test_real_gguf_truncated) { cut_real_file("models/fixture-q4_k_m.gguf", 64); }
END_TEST
START_TEST(test_real_l2c_truncated)
{
	cut_real_file("models/stories260K.bin", 48);
	cut_real_file("models/stories260K-v2.bin", 48);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	char *dir = tmpdir_new();
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/empty", dir), 0);
	spit(p, "", 0);
	char *err = NULL;
	ck_assert_ptr_null(engine_open(p, NULL, &err));
	ck_assert_str_eq(err, "empty file");
	free(err);
	err = NULL;
	ck_assert_ptr_null(engine_open(dir, NULL, &err));  /* a folder */
	ck_assert_ptr_nonnull(err);
	free(err);
	err = NULL;
	char *none;
	ck_assert_int_ge(asprintf(&none, "%s-none", p), 0);
	ck_assert_ptr_null(engine_open(none, NULL, &err));
	free(none);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	free(err);
	/* A llama2.c header with absurd sizes. */
	int32_t h[7] = { 1 << 30, 1 << 30, 1 << 20, 7, 7, 32000, 512 };
	spit(p, h, sizeof h);
	err = NULL;
	ck_assert_ptr_null(engine_open(p, NULL, &err));
	ck_assert_ptr_nonnull(err);
	free(err);
	free(p);
	tmpdir_remove(dir);
}
END_TEST

Suite *gguf_suite(void);

Suite *
gguf_suite(void)
{
	Suite *s = suite_create("gguf");
	TCase *tc = tcase_create("files");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_tiny_roundtrip);
	tcase_add_test(tc, test_tiny_truncated_everywhere);
	tcase_add_test(tc, test_tiny_hostile_fields);
	tcase_add_test(tc, test_empty_and_missing);
	tcase_add_fixture_test(tc, test_real_gguf_truncated);
	tcase_add_fixture_test(tc, test_real_l2c_truncated);
	suite_add_tcase(s, tc);
	return s;
}
