/*
 * mkmodel.c: write a synthetic LLaMA model of a real shape for the
 * benchmarks, with our own GGUF writer and quantizers.  Weights are random
 * (speed does not depend on their values); the vocabulary is the real
 * LLaMA-2 one when a tokenizer.bin is given, else 32000 placeholder pieces.
 *
 *   mkmodel OUT.gguf 7b|1b q4_0|q8_0|q4_k_m [tokenizer.bin]
 *
 * Type mixes follow llama.cpp's: Q4_0 and Q4_K_M put output.weight in Q6_K,
 * and Q4_K_M also uses Q6_K for attn_v and ffn_down in the layers its
 * use_more_bits() picks (the first and last eighth, and every third).
 */
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "engine/quantize.h"
#include "engine/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shape {
	int dim, layers, heads, kv_heads, ffn, vocab;
};

struct job {
	struct shape sh;
	int *types;               /* per tensor */
	int64_t (*ne)[2];
};

static uint64_t
mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static int
write_tensor(void *ud, int idx, FILE *f, size_t nbytes)
{
	struct job *j = ud;
	int64_t cols = j->ne[idx][0], rows = j->ne[idx][1];
	int type = j->types[idx];
	size_t rb = quant_row_size(type, cols);
	const int chunk = 256;
	uint8_t *out = malloc(rb * chunk);
	if (out == NULL)
		return -1;
	for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
		int nr = rows - r0 < chunk ? (int)(rows - r0) : chunk;
		#pragma omp parallel for schedule(static)
		for (int r = 0; r < nr; r++) {
			float *row = malloc((size_t)cols * sizeof *row);
			uint64_t s = mix((uint64_t)idx * 0x9e3779b97f4a7c15ull + (uint64_t)(r0 + r));
			for (int64_t c = 0; c < cols; c++) {
				s = mix(s + (uint64_t)c);
				float v = ((float)(s >> 40) / 16777216.0f - 0.5f) * 0.04f;
				row[c] = rows == 1 ? 1.0f + v : v;
			}
			if (type == QT_F32)
				memcpy(out + (size_t)r * rb, row, rb);
			else
				quantize_block_fn(type)(row, out + (size_t)r * rb, cols);
			free(row);
		}
		if (fwrite(out, rb, (size_t)nr, f) != (size_t)nr) {
			free(out);
			return -1;
		}
	}
	free(out);
	(void)nbytes;
	return 0;
}

static int
more_bits(int i, int n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

int
main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: mkmodel OUT.gguf 7b|1b q4_0|q8_0|q4_k_m|f16 [tokenizer.bin]\n");
		return 2;
	}
	struct shape sh = strcmp(argv[2], "7b") == 0 ? (struct shape){ 4096, 32, 32, 32, 11008, 32000 }
	    : (struct shape){ 2048, 22, 32, 4, 5632, 32000 };
	/* f16: the input of the quantize benchmark (bench/tools.sh). */
	int base = !strcmp(argv[3], "q8_0") ? QT_Q8_0 : !strcmp(argv[3], "q4_0") ? QT_Q4_0
	    : !strcmp(argv[3], "f16") ? QT_F16 : QT_Q4_K;
	int kquant = base == QT_Q4_K;

	struct gguf_writer *w = gguf_writer_new();
	char name[64];
	snprintf(name, sizeof name, "synthetic %s %s", argv[2], argv[3]);
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_str(w, "general.name", name);
	gguf_w_u32(w, "llama.context_length", 4096);
	gguf_w_u32(w, "llama.embedding_length", (uint32_t)sh.dim);
	gguf_w_u32(w, "llama.feed_forward_length", (uint32_t)sh.ffn);
	gguf_w_u32(w, "llama.block_count", (uint32_t)sh.layers);
	gguf_w_u32(w, "llama.attention.head_count", (uint32_t)sh.heads);
	gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)sh.kv_heads);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "llama");

	/* Vocabulary: the real one if we can read it. */
	char **pieces = calloc((size_t)sh.vocab, sizeof *pieces);
	uint32_t *lens = calloc((size_t)sh.vocab, sizeof *lens);
	float *scores = calloc((size_t)sh.vocab, sizeof *scores);
	int32_t *types = calloc((size_t)sh.vocab, sizeof *types);
	struct tokenizer *tok = argc > 4 ? tok_spm_load_bin(argv[4], sh.vocab, NULL) : NULL;
	for (int i = 0; i < sh.vocab; i++) {
		size_t len = 0;
		const char *p = tok ? tok_piece(tok, i, &len) : NULL;
		if (p) {
			pieces[i] = malloc(len + 1);
			memcpy(pieces[i], p, len);
			lens[i] = (uint32_t)len;
		} else {
			pieces[i] = malloc(16);
			lens[i] = (uint32_t)(i == 0 ? snprintf(pieces[i], 16, "<unk>") : i == 1 ? snprintf(pieces[i], 16, "<s>")
			    : i == 2 ? snprintf(pieces[i], 16, "</s>") : i < 259 ? snprintf(pieces[i], 16, "<0x%02X>", i - 3)
			    : snprintf(pieces[i], 16, "tok%d", i));
		}
		scores[i] = i < 259 ? 0 : -(float)i;
		types[i] = i == 0 ? TOK_UNKNOWN : i < 3 ? TOK_CONTROL : i < 259 ? TOK_BYTE : TOK_NORMAL;
	}
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, lens, (uint64_t)sh.vocab);
	gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)sh.vocab);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)sh.vocab);
	gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
	gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);

	int kvd = sh.dim / sh.heads * sh.kv_heads;
	int nt = 3 + 9 * sh.layers;
	struct job j = { sh, calloc((size_t)nt, sizeof(int)), calloc((size_t)nt, sizeof(int64_t[2])) };
	int k = 0;
#define T(nm, a, b, ty) do { int64_t ne_[2] = { (a), (b) }; j.types[k] = (ty); \
	j.ne[k][0] = (a); j.ne[k][1] = (b); gguf_w_tensor(w, (nm), (ty), (b) == 1 ? 1 : 2, ne_); k++; } while (0)
	T("token_embd.weight", sh.dim, sh.vocab, base);
	T("output_norm.weight", sh.dim, 1, QT_F32);
	T("output.weight", sh.dim, sh.vocab, base == QT_Q8_0 || base == QT_F16 ? base : QT_Q6_K);
	for (int l = 0; l < sh.layers; l++) {
		char n[64];
		int mb = kquant && more_bits(l, sh.layers) ? QT_Q6_K : base;
#define L(suffix, a, b, ty) snprintf(n, sizeof n, "blk.%d." suffix ".weight", l); T(n, a, b, ty)
		L("attn_norm", sh.dim, 1, QT_F32);
		L("attn_q", sh.dim, sh.dim, base);
		L("attn_k", sh.dim, kvd, base);
		L("attn_v", sh.dim, kvd, mb);
		L("attn_output", sh.dim, sh.dim, base);
		L("ffn_norm", sh.dim, 1, QT_F32);
		L("ffn_gate", sh.dim, sh.ffn, base);
		L("ffn_down", sh.ffn, sh.dim, mb);
		L("ffn_up", sh.dim, sh.ffn, base);
	}
	char *tmp;
	if (asprintf(&tmp, "%s.tmp", argv[1]) < 0)
		return 1;
	char *err = NULL;
	int rc = gguf_writer_write(w, tmp, write_tensor, &j, &err);
	if (rc != 0 || rename(tmp, argv[1]) != 0) {
		fprintf(stderr, "mkmodel: %s: %s\n", argv[1], err ? err : "write failed");
		remove(tmp);
		return 1;
	}
	return 0;
}
