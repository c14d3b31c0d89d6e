/*
 * tokenizer.c: a model's vocabulary, its special tokens and the (streaming)
 * decoder, shared by the two encoders: tok_spm.c (SentencePiece, LLaMA-2,
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
 * Decoding maps U+2581 to a space (SentencePiece) or byte-level pieces back
 * to their bytes (BPE), byte tokens to raw bytes, control tokens to nothing
 * and UNKNOWN to " \u2047 ", drops the dummy-prefix space of the first
 * non-control SentencePiece piece, and replaces every byte that is not part
 * of a valid UTF-8 sequence by U+FFFD (SentencePiece's rule, which is
 * stricter than "any lead byte plus continuation bytes": overlong forms and
 * surrogates are invalid too).  A UTF-8 sequence a token leaves unfinished
 * is held until a later token completes it.
 *
 * Nothing here prints or exits; errors come back as malloc'd strings.
 */
#include "engine/tok_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest piece tok_new accepts: LLaMA's longest is 16 bytes (27 in a
 * llama2.c file, where U+2581 is stored as a 1-byte space), so anything near
 * this is a broken or hostile vocabulary, not a real one. */
#define TOK_MAX_PIECE (1u << 20)

/* Text SentencePiece shows for an unknown piece: U+2047 between spaces. */
static const char tok_unk_surface[] = " \xe2\x81\x87 ";

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

static int32_t
tok_rd_i32(const unsigned char *p)
{
	int32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/*
 * The file is mapped read-only and walked twice: once to validate every
 * record against the file size (so nothing is allocated from a length the
 * file merely claims), once to build the pieces.  llama2.c's export wrote
 * U+2581 as a plain space and BOS/EOS as "\n<s>\n" and "\n</s>\n"; both are
 * undone here so the vocabulary is the same as tokenizer.model's and GGUF's
 * (a real SentencePiece piece never holds a space: the normalizer escapes
 * them all).  The host is assumed little-endian, as llama2.c assumes.
 */
struct tokenizer *
tok_load_bin(const char *path, int n_vocab, char **err)
{
	struct tokenizer *t = NULL;
	struct stat st;
	unsigned char *map = NULL;
	const char **pieces = NULL;
	uint32_t *lens = NULL;
	float *scores = NULL;
	char *buf = NULL, *e = NULL;
	size_t size = 0, o, extra = 0, bo, j;
	int fd, count, maxlen, len, i;

	if (err != NULL)
		*err = NULL;
	if (n_vocab < 0) {
		tok_seterr(err, "%s: vocabulary size %d is negative", path, n_vocab);
		return NULL;
	}
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		tok_seterr(err, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0) {
		tok_seterr(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		tok_seterr(err, "%s: not a regular file", path);
		goto out;
	}
	size = (size_t)st.st_size;
	if (size < 4) {
		tok_seterr(err, "%s: truncated: %zu bytes, no header", path, size);
		goto out;
	}
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		tok_seterr(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	maxlen = tok_rd_i32(map);
	if (maxlen <= 0 || (uint32_t)maxlen > TOK_MAX_PIECE) {
		tok_seterr(err, "%s: max_token_length %d is not in 1..%u", path, maxlen,
		    TOK_MAX_PIECE);
		goto out;
	}

	for (count = 0, o = 4; n_vocab > 0 ? count < n_vocab : o < size; count++) {
		if (size - o < 8) {
			tok_seterr(err, "%s: truncated in the header of piece %d (byte %zu of %zu)",
			    path, count, o, size);
			goto out;
		}
		len = tok_rd_i32(map + o + 4);
		if (len < 0) {
			tok_seterr(err, "%s: piece %d has negative length %d", path, count, len);
			goto out;
		}
		if (len > maxlen) {
			tok_seterr(err, "%s: piece %d is %d bytes, over max_token_length %d",
			    path, count, len, maxlen);
			goto out;
		}
		if (size - o - 8 < (size_t)len) {
			tok_seterr(err, "%s: truncated in piece %d (%d bytes at byte %zu of %zu)",
			    path, count, len, o + 8, size);
			goto out;
		}
		for (j = 0; j < (size_t)len; j++)
			if (map[o + 8 + j] == ' ')
				extra += 2;
		o += 8 + (size_t)len;
	}
	if (count == 0) {
		tok_seterr(err, "%s: no pieces", path);
		goto out;
	}

	pieces = malloc((size_t)count * sizeof *pieces);
	lens = malloc((size_t)count * sizeof *lens);
	scores = malloc((size_t)count * sizeof *scores);
	buf = malloc(size + extra);
	if (!pieces || !lens || !scores || !buf) {
		tok_seterr(err, "%s: out of memory for %d pieces", path, count);
		goto out;
	}
	for (i = 0, o = 4, bo = 0; i < count; i++) {
		const unsigned char *p = map + o + 8;

		memcpy(&scores[i], map + o, sizeof(float));
		len = tok_rd_i32(map + o + 4);
		o += 8 + (size_t)len;
		if ((i == 1 && len == 5 && memcmp(p, "\n<s>\n", 5) == 0) ||
		    (i == 2 && len == 6 && memcmp(p, "\n</s>\n", 6) == 0)) {
			p++;
			len -= 2;
		}
		pieces[i] = buf + bo;
		for (j = 0; j < (size_t)len; j++) {
			if (p[j] == ' ') {
				memcpy(buf + bo, TOK_SPACE_SYM, 3);
				bo += 3;
			} else
				buf[bo++] = (char)p[j];
		}
		lens[i] = (uint32_t)(buf + bo - pieces[i]);
	}
	t = tok_new(count, pieces, lens, scores, NULL, 1, 2, 0, &e);
	if (t == NULL) {
		tok_seterr(err, "%s: %s", path, e != NULL ? e : "out of memory");
		free(e);
	}
out:
	free(pieces);
	free(lens);
	free(scores);
	free(buf);
	if (map != NULL)
		munmap(map, size);
	close(fd);
	return t;
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
	cap = tok_max_tokens(total) + a.n;
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
