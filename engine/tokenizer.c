/*
 * tokenizer.c: a model's vocabulary and its special tokens, shared by the
 * two encoders: tok_spm.c (SentencePiece, LLaMA-2,
 * Mistral, TinyLlama) and tok_bpe.c (byte-level BPE, Llama 3).
 *
 * A struct tokenizer (tok_int.h) owns one blob holding every piece's bytes
 * back to back (each also NUL-terminated, so tok_piece can hand out C
 * strings), per-id arrays of offset, length, score, type and byte value, and
 * an open-addressing hash table from piece bytes to id (linear probing, at
 * most half full; on duplicate pieces the lowest id wins).  It is immutable
 * after tok_new (and tok_set_bpe), so any number of threads may encode and
 * decode with it at once.
 *
 * Special tokens: text a user typed is never searched for them (tok_encode);
 * only the parts of a prompt that a chat template wrote are
 * (tok_encode_parts), as llama.cpp does with parse_special: every
 * CONTROL, USER_DEFINED or UNKNOWN piece, longest first, is cut out of those
 * parts, and the raw text between special tokens (template text and user
 * text together) is encoded as one run.  A reply ends at any
 * end-of-generation id: EOS and the pieces llama.cpp treats as ends of a turn.
 *
 * Decoding is tok_decode.c's, SentencePiece encoding (and llama2.c's
 * tokenizer.bin) tok_spm.c's, byte-level BPE tok_bpe.c's.
 *
 * Nothing here prints or exits; errors come back as malloc'd strings.
 */
#include "engine/tok_int.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Text SentencePiece shows for an unknown piece: U+2047 between spaces. */


void
tok_seterr(char **err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s != NULL) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	*err = s;
}

/* ---------------------------------------------------------------- UTF-8 */

static int
tok_trail(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/*
 * Classify the UTF-8 sequence at s (n > 0 bytes available) the way
 * SentencePiece's DecodeUTF8 does.  Returns 1 and its length in *mblen when
 * valid; 0 when s[0] must become U+FFFD (*mblen = 1); -1 when the bytes seen
 * so far are a proper prefix of a sequence and only more bytes can decide.
 * A valid sequence needs the right number of continuation bytes and a code
 * point that is not overlong, not a surrogate and at most U+10FFFF.
 */
int
tok_utf8(const unsigned char *s, size_t n, size_t *mblen)
{
	unsigned c = s[0];
	size_t need, i;
	uint32_t cp, min;

	*mblen = 1;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		need = 2; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		need = 3; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		need = 4; cp = c & 0x07; min = 0x10000;
	} else
		return 0;
	for (i = 1; i < need; i++) {
		if (i >= n)
			return -1;
		if (!tok_trail(s[i]))
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
		return 0;
	*mblen = need;
	return 1;
}

/*
 * Write n bytes of s to out as valid UTF-8: invalid bytes become U+FFFD, and
 * with unescape U+2581 becomes a space.  Unless final, an incomplete sequence
 * at the end is left unconsumed for a later call.  Returns the bytes written
 * (at most 3n) and stores the bytes consumed in *used.
 */
size_t
tok_put_text(const unsigned char *s, size_t n, int final, int unescape, char *out,
    size_t *used)
{
	size_t i = 0, w = 0, mblen;
	int r;

	while (i < n) {
		r = tok_utf8(s + i, n - i, &mblen);
		if (r < 0 && !final)
			break;
		if (r <= 0) {
			memcpy(out + w, TOK_REPLACEMENT, 3);
			w += 3;
			i++;
		} else if (unescape && mblen == 3 && memcmp(s + i, TOK_SPACE_SYM, 3) == 0) {
			out[w++] = ' ';
			i += 3;
		} else {
			memcpy(out + w, s + i, mblen);
			w += mblen;
			i += mblen;
		}
	}
	*used = i;
	return w;
}

/* ----------------------------------------------------------- vocabulary */

static uint32_t
tok_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;       /* FNV-1a */

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h ^ (h >> 15);
}

/* Id of the piece spelled by the n bytes at s, of any type, or -1. */
int
tok_lookup(const struct tokenizer *t, const char *s, size_t n)
{
	uint32_t i = tok_hash(s, n) & t->mask;
	int32_t id;

	while ((id = t->slot[i]) >= 0) {
		if (t->len[id] == n && memcmp(t->blob + t->off[id], s, n) == 0)
			return id;
		i = (i + 1) & t->mask;
	}
	return -1;
}

/* The byte a piece spelled exactly "<0xXX>" (upper-case hex, as SentencePiece
 * writes it) stands for, or -1. */
static int
tok_parse_byte(const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *hi, *lo;

	if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || s[3] == 0 || s[4] == 0)
		return -1;
	hi = strchr(hex, s[3]);
	lo = strchr(hex, s[4]);
	if (hi == NULL || lo == NULL)
		return -1;
	return (int)((hi - hex) * 16 + (lo - hex));
}

int
tok_mergeable(int type)
{
	return type == TOK_NORMAL || type == TOK_USER_DEFINED || type == TOK_UNUSED;
}

void
tok_free(struct tokenizer *t)
{
	if (t == NULL)
		return;
	free(t->blob);
	free(t->off);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->byte);
	free(t->slot);
	free(t->user_lens);
	free(t->special);
	tok_bpe_free(t->bpe);
	free(t);
}

static int
tok_cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int
tok_cmp_special(const void *a, const void *b, void *arg)
{
	const struct tokenizer *t = arg;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	if (t->len[x] != t->len[y])
		return t->len[x] < t->len[y] ? 1 : -1;
	return x < y ? -1 : x > y;
}

/* Pieces llama.cpp ends a reply at besides EOS (as control tokens). */
static const char *const tok_eog_names[] = {
	"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "</s>", "<|im_end|>", "<|endoftext|>",
	"<|end|>", "<end_of_turn>",
};

/* The special-token list (longest first) and the end-of-generation set. */
static int
tok_specials(struct tokenizer *t)
{
	int i, k = 0;

	t->add_bos = 1;
	for (i = 0; i < t->n; i++)
		if (t->len[i] > 0 && (t->type[i] == TOK_CONTROL || t->type[i] == TOK_USER_DEFINED ||
		    t->type[i] == TOK_UNKNOWN))
			k++;
	t->special = malloc((size_t)(k ? k : 1) * sizeof *t->special);
	if (t->special == NULL)
		return -1;
	for (i = 0, k = 0; i < t->n; i++)
		if (t->len[i] > 0 && (t->type[i] == TOK_CONTROL || t->type[i] == TOK_USER_DEFINED ||
		    t->type[i] == TOK_UNKNOWN))
			t->special[k++] = i;
	qsort_r(t->special, (size_t)k, sizeof *t->special, tok_cmp_special, t);
	t->n_special = k;
	t->eog[t->n_eog++] = t->eos;
	for (i = 0; i < (int)(sizeof tok_eog_names / sizeof *tok_eog_names); i++) {
		int id = tok_lookup(t, tok_eog_names[i], strlen(tok_eog_names[i]));
		if (id >= 0 && id != t->eos && (t->type[id] == TOK_CONTROL || t->type[id] == TOK_USER_DEFINED) &&
		    t->n_eog < TOK_MAX_EOG)
			t->eog[t->n_eog++] = id;
	}
	return 0;
}

/*
 * Checks everything before it allocates, so a hostile vocabulary costs no
 * more than its own size.  GGUF type 0 ("undefined" in llama.cpp) is read as
 * NORMAL.  A BYTE piece that is not spelled <0xXX> is rejected: its byte
 * would be unknowable.
 */
struct tokenizer *
tok_new(int n, const char *const *pieces, const uint32_t *lens, const float *scores,
    const int32_t *types, int bos, int eos, int unk, char **err)
{
	struct tokenizer *t;
	size_t total = 0, o, cap;
	int i, b, ty, nu = 0;

	if (err != NULL)
		*err = NULL;
	if (n <= 0) {
		tok_seterr(err, "vocabulary has %d pieces", n);
		return NULL;
	}
	if (pieces == NULL || lens == NULL || scores == NULL) {
		tok_seterr(err, "vocabulary without pieces, lengths or scores");
		return NULL;
	}
	if (bos < 0 || bos >= n || eos < 0 || eos >= n || unk < 0 || unk >= n) {
		tok_seterr(err, "special ids bos %d, eos %d, unk %d not all in 0..%d",
		    bos, eos, unk, n - 1);
		return NULL;
	}
	if ((size_t)n > (SIZE_MAX / 2 - 1) / sizeof(int32_t)) {
		tok_seterr(err, "vocabulary of %d pieces is too large", n);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (pieces[i] == NULL) {
			tok_seterr(err, "piece %d is missing", i);
			return NULL;
		}
		if (lens[i] > TOK_MAX_PIECE) {
			tok_seterr(err, "piece %d is %lu bytes (limit %u)", i,
			    (unsigned long)lens[i], TOK_MAX_PIECE);
			return NULL;
		}
		if (isnan(scores[i])) {
			tok_seterr(err, "piece %d has a NaN score", i);
			return NULL;
		}
		if (types != NULL) {
			ty = types[i];
			if (ty < 0 || ty > TOK_BYTE) {
				tok_seterr(err, "piece %d has unknown type %d", i, ty);
				return NULL;
			}
			if (ty == TOK_BYTE && tok_parse_byte(pieces[i], lens[i]) < 0) {
				tok_seterr(err, "piece %d is typed BYTE but is not <0xXX>", i);
				return NULL;
			}
		}
		total += (size_t)lens[i] + 1;
	}

	t = calloc(1, sizeof *t);
	if (t == NULL)
		goto oom;
	t->n = n;
	t->bos = bos;
	t->eos = eos;
	t->unk = unk;
	for (cap = 16; cap < 2 * (size_t)n; cap *= 2)
		;
	t->mask = (uint32_t)(cap - 1);
	t->blob = malloc(total);
	t->off = malloc((size_t)n * sizeof *t->off);
	t->len = malloc((size_t)n * sizeof *t->len);
	t->score = malloc((size_t)n * sizeof *t->score);
	t->type = malloc((size_t)n);
	t->byte = calloc((size_t)n, 1);
	t->slot = malloc(cap * sizeof *t->slot);
	if (!t->blob || !t->off || !t->len || !t->score || !t->type || !t->byte || !t->slot)
		goto oom;
	memset(t->slot, 0xff, cap * sizeof *t->slot);
	for (b = 0; b < 256; b++)
		t->byte_id[b] = -1;

	for (i = 0, o = 0; i < n; i++) {
		memcpy(t->blob + o, pieces[i], lens[i]);
		t->blob[o + lens[i]] = '\0';
		t->off[i] = o;
		t->len[i] = lens[i];
		t->score[i] = scores[i];
		o += (size_t)lens[i] + 1;

		b = tok_parse_byte(pieces[i], lens[i]);
		if (types != NULL)
			ty = types[i] == 0 ? TOK_NORMAL : types[i];
		else if (i == unk)
			ty = TOK_UNKNOWN;
		else if (i == bos || i == eos)
			ty = TOK_CONTROL;
		else if (b >= 0)
			ty = TOK_BYTE;
		else
			ty = TOK_NORMAL;
		t->type[i] = (unsigned char)ty;
		if (ty == TOK_BYTE) {
			t->byte[i] = (unsigned char)b;
			if (t->byte_id[b] < 0)
				t->byte_id[b] = i;
			t->byte_fallback = 1;
		}
		if (ty == TOK_UNUSED)
			t->has_unused = 1;
		if (ty == TOK_USER_DEFINED && lens[i] > 0)
			nu++;
		if (lens[i] > t->max_len)
			t->max_len = lens[i];
		if (tok_mergeable(ty) && lens[i] > t->max_merge)
			t->max_merge = lens[i];

		if (tok_lookup(t, pieces[i], lens[i]) < 0) {
			uint32_t h = tok_hash(pieces[i], lens[i]) & t->mask;
			while (t->slot[h] >= 0)
				h = (h + 1) & t->mask;
			t->slot[h] = i;
		}
	}

	/* Distinct user-defined lengths, longest first, for longest-match
	 * splitting; most vocabularies (LLaMA's included) have none. */
	if (nu > 0) {
		int k = 0, j;
		t->user_lens = malloc((size_t)nu * sizeof *t->user_lens);
		if (t->user_lens == NULL)
			goto oom;
		for (i = 0; i < n; i++)
			if (t->type[i] == TOK_USER_DEFINED && lens[i] > 0)
				t->user_lens[k++] = lens[i];
		qsort(t->user_lens, (size_t)k, sizeof *t->user_lens, tok_cmp_desc);
		for (i = 0, j = 0; i < k; i++)
			if (j == 0 || t->user_lens[j - 1] != t->user_lens[i])
				t->user_lens[j++] = t->user_lens[i];
		t->n_user_lens = j;
	}
	if (tok_specials(t) < 0)
		goto oom;
	return t;
oom:
	tok_free(t);
	tok_seterr(err, "out of memory for a vocabulary of %d pieces", n);
	return NULL;
}

int
tok_n_vocab(const struct tokenizer *t)
{
	return t->n;
}

int
tok_bos(const struct tokenizer *t)
{
	return t->bos;
}

int
tok_eos(const struct tokenizer *t)
{
	return t->eos;
}

const char *
tok_piece(const struct tokenizer *t, int id, size_t *len)
{
	if (id < 0 || id >= t->n)
		return NULL;
	if (len != NULL)
		*len = t->len[id];
	return t->blob + t->off[id];
}

/* ------------------------------------------------------------- encoding */

/*
 * Worst case per input byte: a malformed byte becomes U+FFFD, which can fall
 * back to three byte tokens; so can a space (U+2581).  Plus the dummy prefix
 * (three more) and BOS.
 */
size_t
tok_max_tokens(size_t len)
{
	if (len > (SIZE_MAX - 4) / 3)
		return SIZE_MAX;
	return 3 * len + 4;
}

int
tok_kind(const struct tokenizer *t)
{
	return t->kind;
}

int
tok_add_bos(const struct tokenizer *t)
{
	return t->add_bos;
}

void
tok_set_add_bos(struct tokenizer *t, int add_bos)
{
	t->add_bos = add_bos != 0;
}

int
tok_find(const struct tokenizer *t, const char *piece)
{
	return tok_lookup(t, piece, strlen(piece));
}

int
tok_is_eog(const struct tokenizer *t, int id)
{
	for (int i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return 1;
	return 0;
}

const int32_t *
tok_eog(const struct tokenizer *t, int *n)
{
	*n = t->n_eog;
	return t->eog;
}

/* Raw text of one run: SentencePiece adds its dummy prefix, BPE nothing. */
static int
tok_encode_raw(const struct tokenizer *t, const char *text, size_t len, int32_t *out)
{
	if (len == 0)
		return 0;
	return t->kind == TOK_KIND_BPE ? tok_bpe_encode(t, text, len, out) : tok_spm_encode(t, text, len, out);
}

/*
 * Returns the number of ids written, or -1 when memory runs out or the text
 * is too long for an int count of ids (over about 700 MB).
 */
int
tok_encode(const struct tokenizer *t, const char *text, size_t len, int add_bos, int32_t *out)
{
	int n = 0, r;

	if (len > ((size_t)INT_MAX - 4) / 3)
		return -1;
	if (add_bos)
		out[n++] = t->bos;
	r = tok_encode_raw(t, text, len, out + n);
	return r < 0 ? -1 : n + r;
}

/* A piece of the prompt: raw text (id -1; special: may hold special
 * tokens) or one special token. */
struct tok_frag {
	int32_t id;
	int special;
	size_t off, len;
};

struct tok_frags {
	struct tok_frag *f;
	size_t n, cap;
};

static int
tok_frags_add(struct tok_frags *v, int32_t id, int special, size_t off, size_t len)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		struct tok_frag *f = realloc(v->f, cap * sizeof *f);
		if (f == NULL)
			return -1;
		v->f = f;
		v->cap = cap;
	}
	v->f[v->n++] = (struct tok_frag){ id, special, off, len };
	return 0;
}

/*
 * llama.cpp's tokenizer_st_partition: for each special piece, longest first,
 * every template-written raw fragment is cut at each of its occurrences.
 * Then each run of adjacent raw fragments is encoded as one text.
 */
int
tok_encode_parts(const struct tokenizer *t, const struct tok_part *parts, int n, int32_t **ids)
{
	struct tok_frags a = { NULL, 0, 0 }, b = { NULL, 0, 0 }, tmp;
	size_t total = 0, off = 0, cap;
	char *all = NULL;
	int32_t *out = NULL;
	int nout = 0, i, r;

	*ids = NULL;
	for (i = 0; i < n; i++) {
		if (parts[i].len > ((size_t)INT_MAX - 4) / 6 - total)
			return -1;
		total += parts[i].len;
	}
	all = malloc(total + 1);
	if (all == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		memcpy(all + off, parts[i].s, parts[i].len);
		if (parts[i].len && tok_frags_add(&a, -1, parts[i].special, off, parts[i].len) < 0)
			goto fail;
		off += parts[i].len;
	}
	for (int k = 0; k < t->n_special; k++) {
		int32_t id = t->special[k];
		const char *p = t->blob + t->off[id];
		size_t pl = t->len[id];
		b.n = 0;
		for (size_t j = 0; j < a.n; j++) {
			struct tok_frag f = a.f[j];
			const char *hit;
			if (f.id >= 0 || !f.special || f.len < pl) {
				if (tok_frags_add(&b, f.id, f.special, f.off, f.len) < 0)
					goto fail;
				continue;
			}
			while (f.len > 0 && (hit = memmem(all + f.off, f.len, p, pl)) != NULL) {
				size_t before = (size_t)(hit - (all + f.off));
				if ((before && tok_frags_add(&b, -1, 1, f.off, before) < 0) ||
				    tok_frags_add(&b, id, 0, f.off + before, pl) < 0)
					goto fail;
				f.off += before + pl;
				f.len -= before + pl;
			}
			if (f.len && tok_frags_add(&b, -1, 1, f.off, f.len) < 0)
				goto fail;
		}
		tmp = a;
		a = b;
		b = tmp;
	}
	/* Each run can add a dummy prefix (three byte tokens) to its 3 ids a
	 * byte; each special token is one id. */
	cap = tok_max_tokens(total) + 4 * a.n;
	out = malloc(cap * sizeof *out);
	if (out == NULL)
		goto fail;
	for (size_t j = 0; j < a.n;) {
		if (a.f[j].id >= 0) {
			out[nout++] = a.f[j++].id;
			continue;
		}
		size_t s0 = a.f[j].off, e0 = s0;
		while (j < a.n && a.f[j].id < 0)
			e0 = a.f[j].off + a.f[j].len, j++;
		r = tok_encode_raw(t, all + s0, e0 - s0, out + nout);
		if (r < 0)
			goto fail;
		nout += r;
	}
	free(all);
	free(a.f);
	free(b.f);
	*ids = out;
	return nout;
fail:
	free(all);
	free(a.f);
	free(b.f);
	free(out);
	return -1;
}
