/*
 * tok_spm.c: the SentencePiece BPE encoder of LLaMA-2-style vocabularies
 * (tokenizer.ggml.model "llama", and llama2.c's tokenizer.bin).
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
 * The vocabulary (struct tokenizer) is tokenizer.c's; this file only reads
 * it, so any number of threads may encode at once.  tok_spm_load_bin reads
 * llama2.c's tokenizer.bin, which holds only SentencePiece vocabularies.
 */
#include "engine/tok_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct tok_spm_sym {
	int32_t prev, next;     /* neighbours in the list, -1 at the ends */
	uint32_t start, len;    /* slice of the normalized text; len 0: merged away */
	int frozen;             /* a USER_DEFINED match: never merged */
};

struct tok_spm_pair {
	float score;
	int32_t left, right;    /* symbol indices */
	uint32_t size;          /* len of left + right when pushed */
};

struct tok_spm_enc {
	const struct tokenizer *t;
	const char *norm;
	struct tok_spm_sym *sym;
	struct tok_spm_pair *heap;
	size_t nheap, capheap;
	int32_t *rev_left;      /* (n) for UNUSED ids: left length that formed it */
	uint32_t *stack;        /* resegmentation work list, (start, len) pairs */
	int32_t *out;
	int nout;
	int prev_unk;           /* the last id written came from an unknown symbol */
};

/* Heap order: higher score first, then the leftmost pair. */
static int
tok_spm_before(const struct tok_spm_pair *a, const struct tok_spm_pair *b)
{
	if (a->score != b->score)
		return a->score > b->score;
	return a->left < b->left;
}

static int
tok_spm_heap_push(struct tok_spm_enc *e, struct tok_spm_pair p)
{
	size_t i, parent;

	if (e->nheap == e->capheap) {
		size_t cap = e->capheap ? 2 * e->capheap : 64;
		struct tok_spm_pair *h = realloc(e->heap, cap * sizeof *h);
		if (h == NULL)
			return -1;
		e->heap = h;
		e->capheap = cap;
	}
	i = e->nheap++;
	while (i > 0) {
		parent = (i - 1) / 2;
		if (!tok_spm_before(&p, &e->heap[parent]))
			break;
		e->heap[i] = e->heap[parent];
		i = parent;
	}
	e->heap[i] = p;
	return 0;
}

static struct tok_spm_pair
tok_spm_heap_pop(struct tok_spm_enc *e)
{
	struct tok_spm_pair top = e->heap[0], last = e->heap[--e->nheap];
	size_t i = 0, c, n = e->nheap;

	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && tok_spm_before(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!tok_spm_before(&e->heap[c], &last))
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
tok_spm_try_pair(struct tok_spm_enc *e, int32_t l, int32_t r)
{
	const struct tokenizer *t = e->t;
	const struct tok_spm_sym *a, *b;
	struct tok_spm_pair p;
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
	return tok_spm_heap_push(e, p);
}

/* Write the ids of one final piece of text: its id, or its bytes. */
static void
tok_spm_emit_leaf(struct tok_spm_enc *e, const char *s, size_t n)
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
tok_spm_emit(struct tok_spm_enc *e, uint32_t start, uint32_t len)
{
	const struct tokenizer *t = e->t;
	size_t sp = 0;
	int id;

	if (!t->has_unused) {
		tok_spm_emit_leaf(e, e->norm + start, len);
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
			tok_spm_emit_leaf(e, e->norm + start, len);
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
tok_spm_symbol_len(const struct tokenizer *t, const char *norm, size_t i, size_t n, int *frozen)
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
tok_spm_encode(const struct tokenizer *t, const char *text, size_t len, int32_t *out)
{
	const unsigned char *s = (const unsigned char *)text;
	struct tok_spm_enc e;
	char *norm = NULL;
	size_t i, n, mblen;
	uint32_t nsym = 0, k;
	int ret = -1;

	if (len > ((size_t)INT_MAX - 4) / 3)
		return -1;
	memset(&e, 0, sizeof e);
	e.t = t;
	e.out = out;
	if (len == 0)
		return e.nout;

	/* Normalize: dummy prefix, spaces escaped, malformed bytes replaced. */
	norm = malloc(3 * len + 3);
	e.sym = malloc((len + 1) * sizeof *e.sym);
	if (norm == NULL || e.sym == NULL)
		goto done;
	memcpy(norm, TOK_SPACE_SYM, 3);
	n = 3;
	for (i = 0; i < len; i += mblen) {
		if (s[i] == ' ') {
			memcpy(norm + n, TOK_SPACE_SYM, 3);
			n += 3;
			mblen = 1;
		} else if (tok_utf8(s + i, len - i, &mblen) == 1) {
			memcpy(norm + n, s + i, mblen);
			n += mblen;
		} else {
			memcpy(norm + n, TOK_REPLACEMENT, 3);
			n += 3;
			mblen = 1;
		}
	}
	e.norm = norm;

	/* Split into symbols and queue every adjacent pair. */
	for (i = 0; i < n; i += e.sym[nsym++].len) {
		struct tok_spm_sym *y = &e.sym[nsym];
		y->start = (uint32_t)i;
		y->len = tok_spm_symbol_len(t, norm, i, n, &y->frozen);
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
		if (tok_spm_try_pair(&e, (int32_t)k, (int32_t)k + 1) < 0)
			goto done;

	/* Merge the best pair until none is left. */
	while (e.nheap > 0) {
		struct tok_spm_pair p = tok_spm_heap_pop(&e);
		struct tok_spm_sym *l = &e.sym[p.left], *r = &e.sym[p.right];

		if (l->len == 0 || r->len == 0 || l->len + r->len != p.size)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			e.sym[r->next].prev = p.left;
		if (tok_spm_try_pair(&e, l->prev, p.left) < 0 ||
		    tok_spm_try_pair(&e, p.left, l->next) < 0)
			goto done;
	}

	for (k = 0; k < nsym; k = e.sym[k].next >= 0 ? (uint32_t)e.sym[k].next : nsym)
		tok_spm_emit(&e, e.sym[k].start, e.sym[k].len);
	ret = e.nout;
done:
	free(norm);
	free(e.sym);
	free(e.heap);
	free(e.rev_left);
	free(e.stack);
	return ret;
}

/* ------------------------------------------------------ tokenizer.bin */

static int32_t
tok_spm_rd_i32(const unsigned char *p)
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
tok_spm_load_bin(const char *path, int n_vocab, char **err)
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
	maxlen = tok_spm_rd_i32(map);
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
		len = tok_spm_rd_i32(map + o + 4);
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
		len = tok_spm_rd_i32(map + o + 4);
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
