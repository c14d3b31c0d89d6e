/*
 * tok_decode.c: ids back to text, whole (tok_decode) or streaming
 * (tok_decoder_*), for both kinds of vocabulary.
 *
 * SentencePiece: U+2581 becomes a space, byte tokens raw bytes, control
 * tokens nothing and UNKNOWN " \u2047 "; the dummy-prefix space of the first
 * non-control piece is dropped.  Byte-level BPE: every piece is spelled in
 * GPT-2's byte alphabet and turns back into its bytes (tok_bpe.c); control
 * tokens write nothing.  Either way every byte that is not part of a valid
 * UTF-8 sequence becomes U+FFFD (SentencePiece's rule, which is stricter than
 * "any lead byte plus continuation bytes": overlong forms and surrogates are
 * invalid too), and a sequence a token leaves unfinished is held in the
 * decoder until a later token completes it, so every chunk is valid UTF-8.
 */
#include "engine/tok_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Text SentencePiece shows for an unknown piece: U+2047 between spaces. */
static const char tok_unk_surface[] = " \xe2\x81\x87 ";

/* ------------------------------------------------------------- decoding */

void
tok_decoder_init(struct tok_decoder *d, int strip_leading_space)
{
	memset(d, 0, sizeof *d);
	d->strip_space = strip_leading_space != 0;
}

/*
 * One push may release up to 3 held bytes as U+FFFD (9 bytes) and then
 * write a piece (each byte at most 3), the unknown surface (5) or up to 4
 * buffered bytes as U+FFFD (12).  One byte more leaves room for the NUL
 * that push and flush write after the text.
 */
size_t
tok_decoder_max(const struct tokenizer *t)
{
	size_t piece = 3 * (size_t)t->max_len;

	return 9 + (piece > 12 ? piece : 12) + 1;
}

size_t
tok_decoder_flush(struct tok_decoder *d, char *out)
{
	size_t used, w;

	w = tok_put_text(d->pend, (size_t)d->npend, 1, 0, out, &used);
	d->npend = 0;
	out[w] = '\0';
	return w;
}

/* Bytes of a byte-level piece joined to what is held; complete UTF-8 goes
 * to out, an unfinished sequence at the end is held again. */
static size_t
tok_decoder_bytes(struct tok_decoder *d, const unsigned char *b, size_t n, char *out)
{
	unsigned char buf[4 + 256];
	size_t w = 0, k, tot, used;

	while (n > 0) {
		k = n < 256 ? n : 256;
		memcpy(buf, d->pend, (size_t)d->npend);
		memcpy(buf + d->npend, b, k);
		tot = (size_t)d->npend + k;
		w += tok_put_text(buf, tot, 0, 0, out + w, &used);
		d->npend = (int)(tot - used);
		memcpy(d->pend, buf + used, (size_t)d->npend);
		b += k;
		n -= k;
	}
	out[w] = '\0';
	return w;
}

/* BPE: every piece is bytes; control tokens end nothing and write nothing
 * (a multi-byte character may be split over several pieces). */
static size_t
tok_decoder_push_bpe(const struct tokenizer *t, struct tok_decoder *d, int id, char *out)
{
	unsigned char small[512], *b = small;
	size_t n, w;
	int type;

	out[0] = '\0';
	if (id < 0 || id >= t->n)
		return 0;
	type = t->type[id];
	if (type == TOK_CONTROL || type == TOK_UNKNOWN || type == TOK_UNUSED)
		return 0;
	if (type == TOK_USER_DEFINED)
		return tok_decoder_bytes(d, (const unsigned char *)t->blob + t->off[id], t->len[id], out);
	if (type == TOK_BYTE)
		return tok_decoder_bytes(d, &t->byte[id], 1, out);
	if (t->len[id] > sizeof small && (b = malloc(t->len[id])) == NULL)
		return 0;
	n = tok_bpe_piece_bytes(t, id, b);
	w = tok_decoder_bytes(d, b, n, out);
	if (b != small)
		free(b);
	return w;
}

/*
 * An id out of range is treated like a control token: it writes nothing but,
 * like any non-byte token, ends the run of byte tokens before it.
 */
size_t
tok_decoder_push(const struct tokenizer *t, struct tok_decoder *d, int id, char *out)
{
	const unsigned char *p;
	size_t w, used, n;
	int type;

	if (t->kind == TOK_KIND_BPE)
		return tok_decoder_push_bpe(t, d, id, out);
	if (id >= 0 && id < t->n && t->type[id] == TOK_BYTE) {
		d->pend[d->npend++] = t->byte[id];
		d->strip_space = 0;
		w = tok_put_text(d->pend, (size_t)d->npend, 0, 0, out, &used);
		memmove(d->pend, d->pend + used, (size_t)d->npend - used);
		d->npend -= (int)used;
		out[w] = '\0';
		return w;
	}
	w = tok_decoder_flush(d, out);
	if (id < 0 || id >= t->n)
		return w;
	type = t->type[id];
	if (type == TOK_CONTROL)
		return w;
	if (type == TOK_UNKNOWN) {
		memcpy(out + w, tok_unk_surface, sizeof tok_unk_surface - 1);
		w += sizeof tok_unk_surface - 1;
	} else {
		p = (const unsigned char *)t->blob + t->off[id];
		n = t->len[id];
		if (d->strip_space && n >= 3 && memcmp(p, TOK_SPACE_SYM, 3) == 0) {
			p += 3;
			n -= 3;
		}
		w += tok_put_text(p, n, 1, 1, out + w, &used);
	}
	d->strip_space = 0;
	out[w] = '\0';
	return w;
}

struct tok_buf {
	char *s;
	size_t n, cap;
};

/* Make room for more bytes; 0 or -1 when memory runs out. */
static int
tok_buf_reserve(struct tok_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->cap - b->n >= more)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap - b->n < more) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	s = realloc(b->s, cap);
	if (s == NULL)
		return -1;
	b->s = s;
	b->cap = cap;
	return 0;
}

/* Write the collected run of byte tokens out as text. */
static int
tok_buf_bytes(struct tok_buf *out, struct tok_buf *run)
{
	size_t used;

	if (tok_buf_reserve(out, 3 * run->n + 1) < 0)
		return -1;
	out->n += tok_put_text((const unsigned char *)run->s, run->n, 1, 0, out->s + out->n, &used);
	run->n = 0;
	return 0;
}

/* BPE: the streaming decoder over the whole sequence. */
static char *
tok_decode_bpe(const struct tokenizer *t, const int32_t *ids, int n)
{
	struct tok_buf out = { NULL, 0, 0 };
	struct tok_decoder d;
	size_t max = tok_decoder_max(t);

	tok_decoder_init(&d, 0);
	for (int i = 0; i <= n; i++) {
		if (tok_buf_reserve(&out, max + 1) < 0) {
			free(out.s);
			return NULL;
		}
		out.n += i < n ? tok_decoder_push(t, &d, ids[i], out.s + out.n) : tok_decoder_flush(&d, out.s + out.n);
	}
	out.s[out.n] = '\0';
	return out.s;
}

/*
 * Written the way SentencePiece's decoder works rather than on top of the
 * streaming decoder, so the tests can hold the two against each other: a
 * whole run of byte tokens is collected and converted at once.
 */
char *
tok_decode(const struct tokenizer *t, const int32_t *ids, int n)
{
	struct tok_buf out = { NULL, 0, 0 }, run = { NULL, 0, 0 };
	const unsigned char *p;
	size_t len, used;
	int i, id, strip = 1;

	if (t->kind == TOK_KIND_BPE)
		return tok_decode_bpe(t, ids, n);
	for (i = 0; i < n; i++) {
		id = ids[i];
		if (id >= 0 && id < t->n && t->type[id] == TOK_BYTE) {
			if (tok_buf_reserve(&run, 1) < 0)
				goto oom;
			run.s[run.n++] = (char)t->byte[id];
			strip = 0;
			continue;
		}
		if (tok_buf_bytes(&out, &run) < 0)
			goto oom;
		if (id < 0 || id >= t->n || t->type[id] == TOK_CONTROL)
			continue;
		if (t->type[id] == TOK_UNKNOWN) {
			if (tok_buf_reserve(&out, sizeof tok_unk_surface) < 0)
				goto oom;
			memcpy(out.s + out.n, tok_unk_surface, sizeof tok_unk_surface - 1);
			out.n += sizeof tok_unk_surface - 1;
		} else {
			p = (const unsigned char *)t->blob + t->off[id];
			len = t->len[id];
			if (strip && len >= 3 && memcmp(p, TOK_SPACE_SYM, 3) == 0) {
				p += 3;
				len -= 3;
			}
			if (tok_buf_reserve(&out, 3 * len + 1) < 0)
				goto oom;
			out.n += tok_put_text(p, len, 1, 1, out.s + out.n, &used);
		}
		strip = 0;
	}
	if (tok_buf_bytes(&out, &run) < 0 || tok_buf_reserve(&out, 1) < 0)
		goto oom;
	out.s[out.n] = '\0';
	free(run.s);
	return out.s;
oom:
	free(out.s);
	free(run.s);
	return NULL;
}
