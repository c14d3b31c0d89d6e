/*
 * tokenizer.c: LLaMA-2's SentencePiece BPE tokenizer: the vocabulary, the
 * encoder and the (streaming) decoder.
 *
 * A struct tokenizer owns one blob holding every piece's bytes back to back
 * (each also NUL-terminated, so tok_piece can hand out C strings), per-id
 * arrays of offset, length, score, type and byte value, and an
 * open-addressing hash table from piece bytes to id (linear probing, at most
 * half full; on duplicate pieces the lowest id wins).  It is immutable after
 * tok_new, so any number of threads may encode and decode with it at once.
 *
 * Encoding reproduces SentencePiece's bpe_model.cc as LLaMA-2's model is
 * configured: the text is normalized (identity rules; a U+2581 dummy prefix;
 * every ASCII space becomes U+2581; a malformed UTF-8 byte becomes U+FFFD and
 * consumes one byte), cut into characters (or whole USER_DEFINED pieces,
 * which are frozen), and adjacent symbols are merged by a max-heap of
 * candidate pairs, best score first and the leftmost pair on ties.  Symbols
 * form a doubly linked list over one array and are always contiguous slices
 * of the normalized text, so a candidate is looked up without copying.  A
 * popped pair whose symbols have changed since it was pushed is stale and
 * dropped (merged symbols only grow, so a size check is enough).  Only
 * NORMAL, USER_DEFINED and UNUSED pieces can be formed; an UNUSED result is
 * split back into the pair that formed it.  What is left and is not a piece
 * falls back to <0xXX> byte tokens.
 *
 * Decoding maps U+2581 to a space, byte tokens to raw bytes, control tokens to
 * nothing and UNKNOWN to " \u2047 ", drops the dummy-prefix space of the
 * first non-control piece, and replaces every byte that is not part of a
 * valid UTF-8 sequence by U+FFFD (SentencePiece's rule, which is stricter
 * than "any lead byte plus continuation bytes": overlong forms and
 * surrogates are invalid too).
 *
 * Nothing here prints or exits; errors come back as malloc'd strings.
 */
#include "engine/tokenizer.h"

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
static const char tok_replacement[] = "\xef\xbf\xbd";   /* U+FFFD */
static const char tok_space_sym[] = "\xe2\x96\x81";     /* U+2581 */

struct tokenizer {
	int n;                  /* number of pieces */
	int bos, eos, unk;
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
};

static void
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
static int
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
static size_t
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
			memcpy(out + w, tok_replacement, 3);
			w += 3;
			i++;
		} else if (unescape && mblen == 3 && memcmp(s + i, tok_space_sym, 3) == 0) {
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
static int
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

static int
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
	free(t);
}

static int
tok_cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
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
	/* A SentencePiece tokenizer.model is a protobuf whose first field is
	 * a piece (tag 0x0a, a varint length, then the piece's own 0x0a). */
	if (size > 3 && map[0] == 0x0a && (map[1] & 0x80 ? map[2] < 0x80 && map[3] == 0x0a : map[2] == 0x0a) &&
	    (maxlen <= 0 || (uint32_t)maxlen > TOK_MAX_PIECE)) {
		tok_seterr(err, "%s: a SentencePiece tokenizer.model (protobuf), not a llama2.c tokenizer.bin: "
		    "convert it with llama2.c's `python tokenizer.py -t FILE`, or use a GGUF model, which "
		    "holds its tokenizer", path);
		goto out;
	}
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
				memcpy(buf + bo, tok_space_sym, 3);
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

struct tok_sym {
	int32_t prev, next;     /* neighbours in the list, -1 at the ends */
	uint32_t start, len;    /* slice of the normalized text; len 0: merged away */
	int frozen;             /* a USER_DEFINED match: never merged */
};

struct tok_pair {
	float score;
	int32_t left, right;    /* symbol indices */
	uint32_t size;          /* len of left + right when pushed */
};

struct tok_enc {
	const struct tokenizer *t;
	const char *norm;
	struct tok_sym *sym;
	struct tok_pair *heap;
	size_t nheap, capheap;
	int32_t *rev_left;      /* (n) for UNUSED ids: left length that formed it */
	uint32_t *stack;        /* resegmentation work list, (start, len) pairs */
	int32_t *out;
	int nout;
	int prev_unk;           /* the last id written came from an unknown symbol */
};

/* Heap order: higher score first, then the leftmost pair. */
static int
tok_before(const struct tok_pair *a, const struct tok_pair *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	return a->left < b->left;
}

static int
tok_heap_push(struct tok_enc *e, struct tok_pair p)
{
	size_t i, parent;

	if (e->nheap == e->capheap) {
		size_t cap = e->capheap ? 2 * e->capheap : 64;
		struct tok_pair *h = realloc(e->heap, cap * sizeof *h);
		if (h == NULL)
			return -1;
		e->heap = h;
		e->capheap = cap;
	}
	i = e->nheap++;
	while (i > 0) {
		parent = (i - 1) / 2;
		if (!tok_before(&p, &e->heap[parent]))
			break;
		e->heap[i] = e->heap[parent];
		i = parent;
	}
	e->heap[i] = p;
	return 0;
}

static struct tok_pair
tok_heap_pop(struct tok_enc *e)
{
	struct tok_pair top = e->heap[0], last = e->heap[--e->nheap];
	size_t i = 0, c, n = e->nheap;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && tok_before(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!tok_before(&e->heap[c], &last))
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n > 0)
		e->heap[i] = last;
	return top;
}

/* Queue the merge of symbols l and r when it spells a mergeable piece. */
static int
tok_try_pair(struct tok_enc *e, int32_t l, int32_t r)
{
	const struct tokenizer *t = e->t;
	const struct tok_sym *a, *b;
	struct tok_pair p;
	int id;

	if (l < 0 || r < 0)
		return 0;
	a = &e->sym[l];
	b = &e->sym[r];
	if (a->frozen || b->frozen || (uint64_t)a->len + b->len > t->max_merge)
		return 0;
	id = tok_lookup(t, e->norm + a->start, (size_t)a->len + b->len);
	if (id < 0 || !tok_mergeable(t->type[id]))
		return 0;
	p.score = t->score[id];
	p.left = l;
	p.right = r;
	p.size = a->len + b->len;
	/* As in SentencePiece, the split recorded last is the one an UNUSED
	 * piece is resegmented into. */
	if (t->type[id] == TOK_UNUSED)
		e->rev_left[id] = (int32_t)a->len;
	return tok_heap_push(e, p);
}

/* Write the ids of one final piece of text: its id, or its bytes. */
static void
tok_emit_leaf(struct tok_enc *e, const char *s, size_t n)
{
	const struct tokenizer *t = e->t;
	int id = tok_lookup(t, s, n);
	size_t i;
	int b;

	if (id >= 0 && t->type[id] != TOK_UNKNOWN) {
		e->out[e->nout++] = id;
		e->prev_unk = 0;
	} else if (t->byte_fallback) {
		for (i = 0; i < n; i++) {
			b = t->byte_id[(unsigned char)s[i]];
			e->out[e->nout++] = b >= 0 ? b : t->unk;
		}
		e->prev_unk = 0;
	} else if (!e->prev_unk) {
		/* Without byte fallback SentencePiece folds a run of unknown
		 * symbols into one unknown token. */
		e->out[e->nout++] = t->unk;
		e->prev_unk = 1;
	}
}

/* Write the ids of a final symbol, splitting UNUSED pieces back into the
 * pairs that formed them, left part first. */
static void
tok_emit(struct tok_enc *e, uint32_t start, uint32_t len)
{
	const struct tokenizer *t = e->t;
	size_t sp = 0;
	int id;

	if (!t->has_unused) {
		tok_emit_leaf(e, e->norm + start, len);
		return;
	}
	e->stack[sp++] = start;
	e->stack[sp++] = len;
	while (sp > 0) {
		len = e->stack[--sp];
		start = e->stack[--sp];
		id = tok_lookup(t, e->norm + start, len);
		if (id < 0 || t->type[id] != TOK_UNUSED || e->rev_left[id] <= 0 ||
		    (uint32_t)e->rev_left[id] >= len) {
			tok_emit_leaf(e, e->norm + start, len);
			continue;
		}
		e->stack[sp++] = start + (uint32_t)e->rev_left[id];
		e->stack[sp++] = len - (uint32_t)e->rev_left[id];
		e->stack[sp++] = start;
		e->stack[sp++] = (uint32_t)e->rev_left[id];
	}
}

/* Length of the symbol starting at norm[i]: the longest USER_DEFINED piece
 * there, else one (already valid) UTF-8 character. */
static uint32_t
tok_symbol_len(const struct tokenizer *t, const char *norm, size_t i, size_t n, int *frozen)
{
	unsigned char c = (unsigned char)norm[i];
	size_t l;
	int k, id;

	*frozen = 0;
	for (k = 0; k < t->n_user_lens; k++) {
		l = t->user_lens[k];
		if (l > n - i)
			continue;
		id = tok_lookup(t, norm + i, l);
		if (id >= 0 && t->type[id] == TOK_USER_DEFINED) {
			*frozen = 1;
			return (uint32_t)l;
		}
	}
	l = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	return (uint32_t)(l < n - i ? l : n - i);
}

/*
 * Returns the number of ids written, or -1 when memory runs out or the text
 * is too long for an int count of ids (over about 700 MB).
 */
int
tok_encode(const struct tokenizer *t, const char *text, size_t len, int add_bos, int32_t *out)
{
	const unsigned char *s = (const unsigned char *)text;
	struct tok_enc e;
	char *norm = NULL;
	size_t i, n, mblen;
	uint32_t nsym = 0, k;
	int ret = -1;

	if (len > ((size_t)INT_MAX - 4) / 3)
		return -1;
	memset(&e, 0, sizeof e);
	e.t = t;
	e.out = out;
	if (add_bos)
		out[e.nout++] = t->bos;
	if (len == 0)
		return e.nout;

	/* Normalize: dummy prefix, spaces escaped, malformed bytes replaced. */
	norm = malloc(3 * len + 3);
	e.sym = malloc((len + 1) * sizeof *e.sym);
	if (norm == NULL || e.sym == NULL)
		goto done;
	memcpy(norm, tok_space_sym, 3);
	n = 3;
	for (i = 0; i < len; i += mblen) {
		if (s[i] == ' ') {
			memcpy(norm + n, tok_space_sym, 3);
			n += 3;
			mblen = 1;
		} else if (tok_utf8(s + i, len - i, &mblen) == 1) {
			memcpy(norm + n, s + i, mblen);
			n += mblen;
		} else {
			memcpy(norm + n, tok_replacement, 3);
			n += 3;
			mblen = 1;
		}
	}
	e.norm = norm;

	/* Split into symbols and queue every adjacent pair. */
	for (i = 0; i < n; i += e.sym[nsym++].len) {
		struct tok_sym *y = &e.sym[nsym];
		y->start = (uint32_t)i;
		y->len = tok_symbol_len(t, norm, i, n, &y->frozen);
		y->prev = (int32_t)nsym - 1;
		y->next = i + y->len < n ? (int32_t)nsym + 1 : -1;
	}
	if (t->has_unused) {
		e.rev_left = calloc((size_t)t->n, sizeof *e.rev_left);
		e.stack = malloc(2 * ((size_t)t->max_merge + 1) * sizeof *e.stack);
		if (e.rev_left == NULL || e.stack == NULL)
			goto done;
	}
	for (k = 0; k + 1 < nsym; k++)
		if (tok_try_pair(&e, (int32_t)k, (int32_t)k + 1) < 0)
			goto done;

	/* Merge the best pair until none is left. */
	while (e.nheap > 0) {
		struct tok_pair p = tok_heap_pop(&e);
		struct tok_sym *l = &e.sym[p.left], *r = &e.sym[p.right];

		if (l->len == 0 || r->len == 0 || l->len + r->len != p.size)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			e.sym[r->next].prev = p.left;
		if (tok_try_pair(&e, l->prev, p.left) < 0 ||
		    tok_try_pair(&e, p.left, l->next) < 0)
			goto done;
	}

	for (k = 0; k < nsym; k = e.sym[k].next >= 0 ? (uint32_t)e.sym[k].next : nsym)
		tok_emit(&e, e.sym[k].start, e.sym[k].len);
	ret = e.nout;
done:
	free(norm);
	free(e.sym);
	free(e.heap);
	free(e.rev_left);
	free(e.stack);
	return ret;
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
		if (d->strip_space && n >= 3 && memcmp(p, tok_space_sym, 3) == 0) {
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
			if (strip && len >= 3 && memcmp(p, tok_space_sym, 3) == 0) {
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
