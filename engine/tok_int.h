/*
 * tok_int.h: the tokenizer's insides, shared by tokenizer.c (vocabulary,
 * special tokens), tok_decode.c (decoding), tok_spm.c (SentencePiece
 * encoder, tokenizer.bin) and tok_bpe.c (byte-level BPE encoder).  Nothing outside those files includes
 * it; the rest of the engine sees engine/tokenizer.h.
 */
#ifndef ENGINE_TOK_INT_H
#define ENGINE_TOK_INT_H

#include "engine/tokenizer.h"

#define TOK_SPACE_SYM "\xe2\x96\x81"     /* U+2581, SentencePiece's space */
#define TOK_REPLACEMENT "\xef\xbf\xbd"   /* U+FFFD */
#define TOK_MAX_EOG 16
/* Longest piece tok_new accepts: LLaMA's longest is 16 bytes (27 in a
 * llama2.c file, where U+2581 is stored as a 1-byte space), so anything near
 * this is a broken or hostile vocabulary, not a real one. */
#define TOK_MAX_PIECE (1u << 20)

struct tok_bpe;

struct tokenizer {
	int n;                  /* number of pieces */
	int bos, eos, unk;
	int kind;               /* enum tok_kind */
	int add_bos;            /* tokenizer.ggml.add_bos_token (absent: 1) */
	char *blob;             /* every piece, NUL-terminated */
	size_t *off;            /* (n) offset of piece id in blob */
	uint32_t *len;          /* (n) bytes of piece id */
	float *score;           /* (n) merge priority, higher first */
	unsigned char *type;    /* (n) enum tok_type */
	unsigned char *byte;    /* (n) the byte of a TOK_BYTE piece */
	int32_t *slot;          /* (mask + 1) ids, -1 for empty */
	uint32_t mask;
	int byte_id[256];       /* id of <0xXX>, -1 when absent */
	int byte_fallback;      /* some BYTE piece exists */
	int has_unused;         /* some UNUSED piece exists */
	uint32_t max_len;       /* longest piece */
	uint32_t max_merge;     /* longest piece a merge may form */
	uint32_t *user_lens;    /* distinct USER_DEFINED lengths, descending */
	int n_user_lens;
	int32_t *special;       /* CONTROL/USER_DEFINED/UNKNOWN ids, longest first:
	                         * what a template's text is searched for */
	int n_special;
	int32_t eog[TOK_MAX_EOG];  /* ids that end a reply */
	int n_eog;
	struct tok_bpe *bpe;    /* TOK_KIND_BPE: merges and the pre-tokenizer */
};

/* tokenizer.c */
void tok_seterr(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tok_utf8(const unsigned char *s, size_t n, size_t *mblen);
size_t tok_put_text(const unsigned char *s, size_t n, int final, int unescape, char *out, size_t *used);
int tok_lookup(const struct tokenizer *t, const char *s, size_t n);
int tok_mergeable(int type);

/* tok_spm.c: ids of len bytes of raw text, dummy prefix included (no BOS);
 * -1 when memory runs out.  out holds tok_max_tokens(len). */
int tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, int32_t *out);

/* tok_bpe.c */
void tok_bpe_free(struct tok_bpe *b);
/* ids of len bytes of raw text (no BOS); -1 when memory runs out. */
int tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, int32_t *out);
/* The bytes a NORMAL byte-level piece stands for (at most its own length)
 * written to out; returns the count. */
size_t tok_bpe_piece_bytes(const struct tokenizer *t, int id, unsigned char *out);

#endif
