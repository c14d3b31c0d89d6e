/*
 * tokenizer.h: a model's tokenizer, built from a vocabulary read out of a
 * GGUF file or a llama2.c tokenizer.bin: SentencePiece BPE (LLaMA-2,
 * Mistral, TinyLlama: tok_spm.c) or byte-level BPE (Llama 3: tok_bpe.c,
 * after tok_set_bpe).
 *
 * SentencePiece:
 * Encoding follows SentencePiece (bpe_model.cc) as LLaMA-2's tokenizer.model
 * configures it: identity normalization, spaces escaped as U+2581 with a dummy
 * prefix, pieces merged pairwise by highest score (ties to the left), only
 * NORMAL/USER_DEFINED pieces may be formed by merges, and a symbol that is not
 * in the vocabulary falls back to its UTF-8 bytes as <0xXX> tokens.  Malformed
 * UTF-8 input bytes are read as U+FFFD, one byte each, as SentencePiece does.
 *
 * Decoding is streaming: a decoder holds the bytes of a UTF-8 sequence that a
 * token left incomplete until a later token completes it, so every chunk it
 * returns is valid UTF-8.
 */
#ifndef ENGINE_TOKENIZER_H
#define ENGINE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* SentencePiece piece types, the values of GGUF tokenizer.ggml.token_type. */
enum tok_type {
	TOK_NORMAL = 1,
	TOK_UNKNOWN = 2,
	TOK_CONTROL = 3,
	TOK_USER_DEFINED = 4,
	TOK_UNUSED = 5,
	TOK_BYTE = 6,
};

enum tok_kind { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 };

struct tokenizer;

/*
 * Build a tokenizer from n pieces (piece i has lens[i] bytes, not
 * NUL-terminated; copied) with scores and types.  types may be NULL: then
 * types are inferred as llama2.c files need (the unk id is UNKNOWN, bos/eos
 * are CONTROL, pieces spelled <0xXX> are BYTE, the rest NORMAL).  Returns NULL
 * and sets *err (malloc'd) on a vocabulary it cannot use.  Free with tok_free.
 */
struct tokenizer *tok_new(int n, const char *const *pieces, const uint32_t *lens,
    const float *scores, const int32_t *types, int bos, int eos, int unk, char **err);
/*
 * Load a llama2.c tokenizer.bin: int32 max_token_length, then per piece a
 * float score, an int32 length and the bytes.  n_vocab > 0 reads exactly that
 * many pieces; 0 reads until end of file.  bos=1, eos=2, unk=0.  NULL with
 * *err = "<path>: <what is wrong>" on a missing, truncated or hostile file.
 */
struct tokenizer *tok_spm_load_bin(const char *path, int n_vocab, char **err);
void tok_free(struct tokenizer *t);
/*
 * Make t a byte-level BPE tokenizer (GGUF tokenizer.ggml.model "gpt2"):
 * pre is tokenizer.ggml.pre (only "llama-bpe" is known), merges[i] the i-th
 * "A B" of tokenizer.ggml.merges (lens[i] bytes; read, not kept).  -1 with
 * *err naming the problem (an unknown pre is named); t is then unchanged.
 */
int tok_set_bpe(struct tokenizer *t, const char *pre, const char *const *merges, const uint32_t *lens, int n,
    char **err);
int tok_kind(const struct tokenizer *t);
/* tokenizer.ggml.add_bos_token (1 unless the file says otherwise). */
int tok_add_bos(const struct tokenizer *t);
void tok_set_add_bos(struct tokenizer *t, int add_bos);
/* Id of the piece spelled exactly piece, or -1. */
int tok_find(const struct tokenizer *t, const char *piece);
/* End-of-generation ids: EOS plus the control pieces llama.cpp ends a turn
 * at (<|eot_id|>, <|end_of_text|>, <|eom_id|>, </s>, <|im_end|> ...). */
int tok_is_eog(const struct tokenizer *t, int id);
const int32_t *tok_eog(const struct tokenizer *t, int *n);

int tok_n_vocab(const struct tokenizer *t);
int tok_bos(const struct tokenizer *t);
int tok_eos(const struct tokenizer *t);
/* Raw piece bytes of id (U+2581 not replaced); NULL for an id out of range. */
const char *tok_piece(const struct tokenizer *t, int id, size_t *len);

/* Most ids tok_encode can write for len bytes of text (with BOS). */
size_t tok_max_tokens(size_t len);
/*
 * Encode len bytes of text, BOS first if add_bos.  out must hold
 * tok_max_tokens(len) ids.  Returns the number of ids written (-1: out of
 * memory).  Special tokens are never parsed: "<|eot_id|>" is ordinary text.
 */
int tok_encode(const struct tokenizer *t, const char *text, size_t len, int add_bos, int32_t *out);

/* One piece of a prompt: text a template wrote (special = 1: special tokens
 * in it become their ids) or that a user wrote (special = 0). */
struct tok_part {
	const char *s;
	size_t len;
	int special;
};
/*
 * Encode the concatenation of n parts as llama.cpp tokenizes a chat prompt
 * with parse_special, except that only parts marked special are searched for
 * special tokens.  No BOS is added.  *ids is malloc'd; returns the count or
 * -1 (out of memory).
 */
int tok_encode_parts(const struct tokenizer *t, const struct tok_part *parts, int n, int32_t **ids);

struct tok_decoder {
	unsigned char pend[4];   /* bytes of an incomplete UTF-8 sequence */
	int npend;
	int strip_space;         /* drop the leading space of the next piece */
};
/* strip_leading_space: drop one leading space from the first piece, as
 * SentencePiece's decode does at the start of a text. */
void tok_decoder_init(struct tok_decoder *d, int strip_leading_space);
/* Most bytes one push or flush can write. */
size_t tok_decoder_max(const struct tokenizer *t);
/*
 * Append the text of token id to out (at least tok_decoder_max bytes) and
 * return the number of bytes written: always complete, valid UTF-8.  Control
 * tokens give nothing, UNK gives " \u2047 ", byte tokens give their byte,
 * invalid bytes become U+FFFD.
 */
size_t tok_decoder_push(const struct tokenizer *t, struct tok_decoder *d, int id, char *out);
/* Emit what is still held (as U+FFFD per byte) and reset. */
size_t tok_decoder_flush(struct tok_decoder *d, char *out);
/* SentencePiece decode(ids): a malloc'd NUL-terminated string (or NULL on OOM). */
char *tok_decode(const struct tokenizer *t, const int32_t *ids, int n);

#endif
