/*
 * tok_bpe.c: the byte-level BPE encoder of GPT-2-style vocabularies
 * (tokenizer.ggml.model "gpt2"), as Llama 3 uses it (pre "llama-bpe").
 *
 * A text is first cut into pre-tokens by Llama 3's split expression
 * (contractions case-insensitively, letter runs with an optional leading
 * non-letter, digit runs of at most three, punctuation runs, newlines,
 * whitespace not followed by a non-space), matched by PCRE2 in UTF mode with
 * Unicode properties (\p{L}, \p{N}, \s), JIT-compiled where the library can.
 * Each pre-token's bytes are spelled in GPT-2's byte-to-unicode alphabet
 * (printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100 on); a pre-token that is a whole piece is taken as is (Llama 3's
 * ignore_merges), otherwise it starts as one symbol per byte and the
 * adjacent pair of lowest merge rank (the leftmost on ties) is merged until
 * no pair has a rank.  Malformed UTF-8 in the text is read as U+FFFD, one
 * byte each, as llama.cpp does.
 *
 * struct tok_bpe holds the compiled expression and an open-addressing hash
 * from a pair of piece ids to (rank, merged id), built once from
 * tokenizer.ggml.merges (at most half full, linear probing).  It is
 * immutable after tok_set_bpe, so threads may encode at once: each call
 * makes its own PCRE2 match data.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/tok_int.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/*
 * Llama 3's pre-tokenizer (tokenizer.json's Split pattern), written as
 * llama.cpp writes it: the contractions with explicit letter pairs rather
 * than (?i), whose Unicode case folding would also take U+017F for "s"; and
 * \s spelled out as Unicode's White_Space ([\t-\r\x{85}\p{Z}]), which is
 * what llama.cpp and Hugging Face mean by it, where PCRE2's own \s leaves
 * out U+0085.
 */
#define WS "\\t-\\r\\x{85}\\p{Z}"
static const char tok_bpe_llama3_re[] =
    "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|"
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";
#undef WS

struct tok_bpe {
	pcre2_code *re;
	uint64_t *key;          /* (mask + 1) left id << 32 | right id; ~0: empty */
	uint32_t *rank;         /* (mask + 1) merge rank, lower first */
	int32_t *res;           /* (mask + 1) id of the merged piece */
	uint32_t mask;
	int32_t byte_tok[256];  /* id of the one-character piece of byte b, -1 */
	int16_t uni_byte[324];  /* code point -> byte, -1 (inverse of the map) */
};

/* GPT-2's bytes_to_unicode: the code point that spells byte b. */
static unsigned
tok_bpe_byte_cp(unsigned b)
{
	unsigned n = 0;
	if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
		return b;
	/* The others, in byte order, from U+0100. */
	for (unsigned c = 0; c < b; c++)
		if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
			n++;
	return 256 + n;
}

static size_t
tok_bpe_put_cp(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

static uint32_t
tok_bpe_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (uint32_t)k;
}

void
tok_bpe_free(struct tok_bpe *b)
{
	if (b == NULL)
		return;
	pcre2_code_free(b->re);
	free(b->key);
	free(b->rank);
	free(b->res);
	free(b);
}

/* Slot of pair (l, r), or -1. */
static int64_t
tok_bpe_find(const struct tok_bpe *b, int32_t l, int32_t r)
{
	uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
	uint32_t i = tok_bpe_hash(k) & b->mask;
	while (b->key[i] != UINT64_MAX) {
		if (b->key[i] == k)
			return i;
		i = (i + 1) & b->mask;
	}
	return -1;
}

/*
 * A merge "A B" whose parts or result are not pieces can never apply (every
 * symbol is a piece from the start), so it is left out.  On a pair listed
 * twice the first (lowest) rank stays, as in llama.cpp's map.
 */
int
tok_set_bpe(struct tokenizer *t, const char *pre, const char *const *merges, const uint32_t *lens, int n,
    char **err)
{
	struct tok_bpe *b;
	char buf[512];
	size_t cap;
	int ec;
	PCRE2_SIZE eo;

	if (pre == NULL || strcmp(pre, "llama-bpe") != 0) {
		tok_seterr(err, "tokenizer.ggml.pre '%.40s' is not supported (only 'llama-bpe', Llama 3's)",
		    pre ? pre : "(missing)");
		return -1;
	}
	if (n <= 0) {
		tok_seterr(err, "tokenizer.ggml.merges is missing or empty");
		return -1;
	}
	b = calloc(1, sizeof *b);
	if (b == NULL)
		goto oom;
	for (cap = 16; cap < 2 * (size_t)n; cap *= 2)
		;
	b->mask = (uint32_t)(cap - 1);
	b->key = malloc(cap * sizeof *b->key);
	b->rank = malloc(cap * sizeof *b->rank);
	b->res = malloc(cap * sizeof *b->res);
	if (!b->key || !b->rank || !b->res)
		goto oom;
	memset(b->key, 0xff, cap * sizeof *b->key);
	for (int i = 0; i < 324; i++)
		b->uni_byte[i] = -1;
	for (unsigned c = 0; c < 256; c++) {
		unsigned cp = tok_bpe_byte_cp(c);
		size_t k = tok_bpe_put_cp(cp, buf);
		b->uni_byte[cp] = (int16_t)c;
		b->byte_tok[c] = tok_lookup(t, buf, k);
	}
	for (int i = 0; i < n; i++) {
		const char *m = merges[i], *sp;
		uint32_t len = lens[i];
		if (len < 3 || len >= sizeof buf)
			continue;
		/* The parts never hold a space (the alphabet spells it U+0120);
		 * search from the second byte as llama.cpp does. */
		sp = memchr(m + 1, ' ', len - 1);
		if (sp == NULL)
			continue;
		size_t ll = (size_t)(sp - m), rl = len - ll - 1;
		int l = tok_lookup(t, m, ll), r = tok_lookup(t, sp + 1, rl);
		memcpy(buf, m, ll);
		memcpy(buf + ll, sp + 1, rl);
		int res = tok_lookup(t, buf, ll + rl);
		if (l < 0 || r < 0 || res < 0 || tok_bpe_find(b, l, r) >= 0)
			continue;
		uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
		uint32_t h = tok_bpe_hash(k) & b->mask;
		while (b->key[h] != UINT64_MAX)
			h = (h + 1) & b->mask;
		b->key[h] = k;
		b->rank[h] = (uint32_t)i;
		b->res[h] = res;
	}
	b->re = pcre2_compile((PCRE2_SPTR)tok_bpe_llama3_re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
	    &ec, &eo, NULL);
	if (b->re == NULL) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(ec, msg, sizeof msg);
		tok_bpe_free(b);
		tok_seterr(err, "the pre-tokenizer expression does not compile: %s", (char *)msg);
		return -1;
	}
	/* JIT is an optimisation: without it (unsupported CPU) the
	 * interpreter gives the same matches. */
	(void)pcre2_jit_compile(b->re, PCRE2_JIT_COMPLETE);
	tok_bpe_free(t->bpe);
	t->bpe = b;
	t->kind = TOK_KIND_BPE;
	return 0;
oom:
	tok_bpe_free(b);
	tok_seterr(err, "out of memory for %d merges", n);
	return -1;
}

struct tok_bpe_sym {
	int32_t id;             /* the piece this symbol is now; -1: merged away */
	int32_t prev, next;
};

struct tok_bpe_pair {
	uint32_t rank;
	int32_t left, right;    /* symbol indices */
	int32_t lid, rid;       /* their ids when queued (stale if changed) */
	int32_t res;
};

struct tok_bpe_heap {
	struct tok_bpe_pair *h;
	size_t n, cap;
};

static int
tok_bpe_before(const struct tok_bpe_pair *a, const struct tok_bpe_pair *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank;
	return a->left < b->left;
}

static int
tok_bpe_push(struct tok_bpe_heap *q, struct tok_bpe_pair p)
{
	size_t i, parent;
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 64;
		struct tok_bpe_pair *h = realloc(q->h, cap * sizeof *h);
		if (h == NULL)
			return -1;
		q->h = h;
		q->cap = cap;
	}
	i = q->n++;
	while (i > 0) {
		parent = (i - 1) / 2;
		if (!tok_bpe_before(&p, &q->h[parent]))
			break;
		q->h[i] = q->h[parent];
		i = parent;
	}
	q->h[i] = p;
	return 0;
}

static struct tok_bpe_pair
tok_bpe_pop(struct tok_bpe_heap *q)
{
	struct tok_bpe_pair top = q->h[0], last = q->h[--q->n];
	size_t i = 0, c, n = q->n;
	while ((c = 2 * i + 1) < n) {
		if (c + 1 < n && tok_bpe_before(&q->h[c + 1], &q->h[c]))
			c++;
		if (!tok_bpe_before(&q->h[c], &last))
			break;
		q->h[i] = q->h[c];
		i = c;
	}
	if (n > 0)
		q->h[i] = last;
	return top;
}

static int
tok_bpe_try(const struct tok_bpe *b, struct tok_bpe_heap *q, const struct tok_bpe_sym *sym, int32_t l,
    int32_t r)
{
	if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0)
		return 0;
	int64_t s = tok_bpe_find(b, sym[l].id, sym[r].id);
	if (s < 0)
		return 0;
	struct tok_bpe_pair p = { b->rank[s], l, r, sym[l].id, sym[r].id, b->res[s] };
	return tok_bpe_push(q, p);
}

/* The ids of one pre-token (n bytes at s) appended at out; returns the
 * count or -1 (out of memory).  sym has room for n symbols. */
static int
tok_bpe_word(const struct tokenizer *t, const unsigned char *s, size_t n, struct tok_bpe_sym *sym,
    struct tok_bpe_heap *q, char *spell, int32_t *out)
{
	const struct tok_bpe *b = t->bpe;
	size_t k = 0;
	int nout = 0;

	for (size_t i = 0; i < n; i++)
		k += tok_bpe_put_cp(tok_bpe_byte_cp(s[i]), spell + k);
	int whole = tok_lookup(t, spell, k);
	if (whole >= 0) {
		out[0] = whole;
		return 1;
	}
	q->n = 0;
	for (size_t i = 0; i < n; i++) {
		sym[i].id = b->byte_tok[s[i]];
		sym[i].prev = (int32_t)i - 1;
		sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
	}
	for (size_t i = 0; i + 1 < n; i++)
		if (tok_bpe_try(b, q, sym, (int32_t)i, (int32_t)i + 1) < 0)
			return -1;
	while (q->n > 0) {
		struct tok_bpe_pair p = tok_bpe_pop(q);
		struct tok_bpe_sym *l = &sym[p.left], *r = &sym[p.right];
		if (l->id != p.lid || r->id != p.rid || l->next != p.right)
			continue;
		l->id = p.res;
		r->id = -1;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = p.left;
		if (tok_bpe_try(b, q, sym, l->prev, p.left) < 0 || tok_bpe_try(b, q, sym, p.left, l->next) < 0)
			return -1;
	}
	for (int32_t i = 0; i >= 0; i = sym[i].next)
		out[nout++] = sym[i].id >= 0 ? sym[i].id : t->unk;
	return nout;
}

/*
 * At most one id per input byte (U+FFFD replacing one byte can take three),
 * so tok_max_tokens(len) is room enough.
 */
int
tok_bpe_encode(const struct tokenizer *t, const char *text, size_t len, int32_t *out)
{
	const unsigned char *s = (const unsigned char *)text;
	unsigned char *clean = NULL;
	struct tok_bpe_sym *sym = NULL;
	struct tok_bpe_heap q = { NULL, 0, 0 };
	char *spell = NULL;
	pcre2_match_data *md = NULL;
	size_t i, n = 0, mblen;
	int nout = 0, r, ret = -1;

	if (len == 0)
		return 0;
	/* Malformed bytes become U+FFFD, so the matcher sees valid UTF-8. */
	clean = malloc(3 * len);
	if (clean == NULL)
		goto done;
	for (i = 0; i < len; i += mblen) {
		if (tok_utf8(s + i, len - i, &mblen) == 1) {
			memcpy(clean + n, s + i, mblen);
			n += mblen;
		} else {
			memcpy(clean + n, TOK_REPLACEMENT, 3);
			n += 3;
			mblen = 1;
		}
	}
	sym = malloc(n * sizeof *sym);
	spell = malloc(2 * n + 1);
	md = pcre2_match_data_create_from_pattern(t->bpe->re, NULL);
	if (sym == NULL || spell == NULL || md == NULL)
		goto done;
	for (i = 0; i < n;) {
		size_t end = n;
		r = pcre2_match(t->bpe->re, clean, n, i, PCRE2_NO_UTF_CHECK, md, NULL);
		/* The JIT's stack is small; the interpreter's frames are on the
		 * heap, so a run too long for one is matched by the other. */
		if (r < 0 && r != PCRE2_ERROR_NOMATCH)
			r = pcre2_match(t->bpe->re, clean, n, i, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
		if (r > 0) {
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
			/* Every character is matched by some branch, so a match
			 * starts here and is not empty; were it not so, the gap
			 * (or the rest) is taken as one pre-token. */
			end = ov[0] > i ? ov[0] : ov[1] > i ? ov[1] : n;
		}
		r = tok_bpe_word(t, clean + i, end - i, sym, &q, spell, out + nout);
		if (r < 0)
			goto done;
		nout += r;
		i = end;
	}
	ret = nout;
done:
	pcre2_match_data_free(md);
	free(clean);
	free(sym);
	free(spell);
	free(q.h);
	return ret;
}

size_t
tok_bpe_piece_bytes(const struct tokenizer *t, int id, unsigned char *out)
{
	const unsigned char *p = (const unsigned char *)t->blob + t->off[id];
	size_t n = t->len[id], i = 0, w = 0, mblen;

	while (i < n) {
		unsigned cp = 0x110000;   /* outside the alphabet: copied as is */
		if (tok_utf8(p + i, n - i, &mblen) != 1)
			mblen = 1;
		else if (mblen == 1)
			cp = p[i];
		else if (mblen == 2)
			cp = (unsigned)(p[i] & 0x1f) << 6 | (p[i + 1] & 0x3f);
		if (cp < 324 && t->bpe->uni_byte[cp] >= 0) {
			out[w++] = (unsigned char)t->bpe->uni_byte[cp];
		} else {
			memcpy(out + w, p + i, mblen);
			w += mblen;
		}
		i += mblen;
	}
	return w;
}
