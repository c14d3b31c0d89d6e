/*
 * check_tok.c: the tokenizer suite.  Golden encode and decode cases from
 * golden/tokenizer.json (SentencePiece on LLaMA-2's tokenizer.model) through
 * models/tokenizer.bin; a table of edge cases measured with the same
 * SentencePiece library (malformed UTF-8, byte runs broken by control
 * tokens, the unknown surface, the leading-space rule); the streaming decoder
 * against tok_decode on golden and random id sequences; round trips on
 * golden, random and malformed text; merge rules on a hand-made vocabulary
 * with every piece type; and hostile or truncated tokenizer.bin files.
 * Random data comes from a fixed-seed PRNG so a failure repeats.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tokenizer.h"
#include "tests/testutil.h"

static uint64_t rng_state;

static void
rng_seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

static uint32_t
rng_next(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static uint32_t
rng_below(uint32_t n)
{
	return rng_next() % n;
}

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0.
 * Written from the table, apart from the engine's decoder, so the two check
 * each other.
 */
static size_t
wf_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < need)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

static int
utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, l;

	while (i < n) {
		l = wf_len(s + i, n - i);
		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

/* SentencePiece's reading of bytes: every byte outside a well-formed
 * sequence becomes U+FFFD on its own.  malloc'd, NUL-terminated. */
static char *
sanitize(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	char *o = malloc(3 * n + 1);
	size_t i = 0, w = 0, l;

	while (i < n) {
		l = wf_len(s + i, n - i);
		if (l == 0) {
			memcpy(o + w, "\xef\xbf\xbd", 3);
			w += 3;
			i++;
		} else {
			memcpy(o + w, s + i, l);
			w += l;
			i += l;
		}
	}
	o[w] = '\0';
	return o;
}

static struct tokenizer *
load_llama(void)
{
	char *p = fixture_path("models/tokenizer.bin"), *err = NULL;
	struct tokenizer *t;

	ck_assert_msg(p != NULL, "models/tokenizer.bin missing");
	t = tok_spm_load_bin(p, 0, &err);
	ck_assert_msg(t != NULL, "tok_spm_load_bin: %s", err ? err : "(no message)");
	ck_assert_int_eq(tok_n_vocab(t), 32000);
	free(p);
	return t;
}

/* Encode into a malloc'd array; *n gets the count. */
static int32_t *
encode(const struct tokenizer *t, const char *s, size_t len, int bos, int *n)
{
	int32_t *ids = malloc(tok_max_tokens(len) * sizeof *ids);

	ck_assert_ptr_nonnull(ids);
	*n = tok_encode(t, s, len, bos, ids);
	ck_assert_msg(*n >= 0 && (size_t)*n <= tok_max_tokens(len), "tok_encode returned %d", *n);
	return ids;
}

static int32_t *
json_ids(json_t *a, int *n)
{
	size_t i;
	json_t *v;
	int32_t *ids = malloc((json_array_size(a) + 1) * sizeof *ids);

	json_array_foreach(a, i, v)
		ids[i] = (int32_t)json_integer_value(v);
	*n = (int)json_array_size(a);
	return ids;
}

static void
fmt_ids(char *buf, size_t cap, const int32_t *ids, int n)
{
	size_t w = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n && w + 16 < cap; i++)
		w += (size_t)snprintf(buf + w, cap - w, "%s%d", i ? "," : "", ids[i]);
}

/*
 * Decode ids with the streaming decoder (each chunk checked for valid UTF-8)
 * and compare the whole with tok_decode.  Returns the streamed text.
 */
static char *
stream_decode(const struct tokenizer *t, const int32_t *ids, int n, const char *what)
{
	struct tok_decoder d;
	size_t max = tok_decoder_max(t), w, total = 0;
	char *chunk = malloc(max), *all = malloc((size_t)n * max + max + 1), *ref;
	int i;

	tok_decoder_init(&d, 1);
	for (i = 0; i <= n; i++) {
		w = i < n ? tok_decoder_push(t, &d, ids[i], chunk) : tok_decoder_flush(&d, chunk);
		ck_assert_msg(w < max, "%s: chunk of %zu bytes, max %zu", what, w, max);
		ck_assert_msg(utf8_valid(chunk, w), "%s: chunk %d is not valid UTF-8", what, i);
		memcpy(all + total, chunk, w);
		total += w;
	}
	all[total] = '\0';
	ref = tok_decode(t, ids, n);
	ck_assert_ptr_nonnull(ref);
	ck_assert_msg(strlen(ref) == total && memcmp(ref, all, total) == 0,
	    "%s: stream \"%s\" != tok_decode \"%s\"", what, all, ref);
	free(ref);
	free(chunk);
	return all;
}

START_TEST(test_golden_encode)
{
	struct tokenizer *t = load_llama();
	json_t *g = golden_load("tokenizer.json"), *cases = json_object_get(g, "tokenizer"), *c;
	size_t i;
	int matched = 0, first = -1;
	char got[512], want[512];

	ck_assert_msg(json_array_size(cases) > 0, "no tokenizer cases");
	json_array_foreach(cases, i, c) {
		json_t *jt = json_object_get(c, "text");
		const char *text = json_string_value(jt);
		size_t len = json_string_length(jt);
		int n, nw;
		int32_t *want_ids = json_ids(json_object_get(c, "ids"), &nw);
		int32_t *ids = encode(t, text, len, 0, &n);

		if (n == nw && memcmp(ids, want_ids, (size_t)n * sizeof *ids) == 0)
			matched++;
		else {
			fmt_ids(got, sizeof got, ids, n);
			fmt_ids(want, sizeof want, want_ids, nw);
			fprintf(stderr, "tok encode case %zu \"%s\": got [%s] want [%s]\n",
			    i, text, got, want);
			if (first < 0)
				first = (int)i;
		}
		free(ids);
		free(want_ids);
	}
	printf("tok: %d/%zu golden encode cases match\n", matched, json_array_size(cases));
	ck_assert_msg((size_t)matched == json_array_size(cases),
	    "%zu golden encode cases differ, first is case %d",
	    json_array_size(cases) - (size_t)matched, first);
	json_decref(g);
	tok_free(t);
}
END_TEST

START_TEST(test_golden_decode)
{
	struct tokenizer *t = load_llama();
	json_t *g = golden_load("tokenizer.json"), *cases = json_object_get(g, "decode"), *c;
	size_t i;
	int matched = 0, first = -1;

	ck_assert_msg(json_array_size(cases) > 0, "no decode cases");
	json_array_foreach(cases, i, c) {
		int n;
		int32_t *ids = json_ids(json_object_get(c, "ids"), &n);
		const char *want = json_string_value(json_object_get(c, "text"));
		char *got = tok_decode(t, ids, n);
		char what[64];

		ck_assert_ptr_nonnull(got);
		if (strcmp(got, want) == 0)
			matched++;
		else {
			fprintf(stderr, "tok decode case %zu: got \"%s\" want \"%s\"\n", i, got, want);
			if (first < 0)
				first = (int)i;
		}
		/* The streaming decoder must give the same text. */
		snprintf(what, sizeof what, "decode case %zu", i);
		free(stream_decode(t, ids, n, what));
		free(got);
		free(ids);
	}
	printf("tok: %d/%zu golden decode cases match\n", matched, json_array_size(cases));
	ck_assert_msg((size_t)matched == json_array_size(cases),
	    "%zu golden decode cases differ, first is case %d",
	    json_array_size(cases) - (size_t)matched, first);
	json_decref(g);
	tok_free(t);
}
END_TEST

/* Measured with SentencePiece (python3-sentencepiece) on tokenizer.model. */
static const struct {
	const char *text;
	size_t len;
	int n;
	int32_t ids[8];
} enc_ref[] = {
	{ "\xff", 1, 2, { 29871, 30140 } },
	{ "a\xff" "b", 3, 3, { 263, 30140, 29890 } },
	{ "\xe4\xb8", 2, 2, { 29871, 26308 } },
	{ "\xe4\xb8" "a", 3, 3, { 29871, 26308, 29874 } },
	{ "\xe0\x80\x80", 3, 3, { 29871, 26308, 30140 } },
	{ "\xed\xa0\x80", 3, 3, { 29871, 26308, 30140 } },
	{ "\xef\xbf\xbd", 3, 2, { 29871, 30140 } },
	{ "\xc0\x80", 2, 2, { 29871, 26308 } },
	{ "a\0b", 3, 3, { 263, 3, 29890 } },
	{ "\0", 1, 2, { 29871, 3 } },
	{ "\xf4\x90\x80\x80", 4, 3, { 29871, 26308, 26308 } },
	{ "\xf0\x9f\xa6", 3, 3, { 29871, 26308, 30140 } },
	{ "  ", 2, 1, { 1678 } },
	{ "\xe2\x96\x81", 3, 1, { 259 } },
	{ "\xe2\x96\x81\xe2\x96\x81x", 7, 2, { 259, 921 } },
	{ "<0x41>", 6, 6, { 529, 29900, 29916, 29946, 29896, 29958 } },
	{ " <s>", 4, 4, { 29871, 529, 29879, 29958 } },
	{ "\t", 1, 2, { 29871, 12 } },
	{ "\xc2\xa0", 2, 1, { 20246 } },
};

START_TEST(test_encode_reference)
{
	struct tokenizer *t = load_llama();
	size_t i;
	char got[256], want[256];

	for (i = 0; i < sizeof enc_ref / sizeof enc_ref[0]; i++) {
		int n;
		int32_t *ids = encode(t, enc_ref[i].text, enc_ref[i].len, 0, &n);

		fmt_ids(got, sizeof got, ids, n);
		fmt_ids(want, sizeof want, enc_ref[i].ids, enc_ref[i].n);
		ck_assert_msg(strcmp(got, want) == 0, "encode reference case %zu: got [%s] want [%s]",
		    i, got, want);
		free(ids);
	}
	tok_free(t);
}
END_TEST

/* Measured with SentencePiece's decode on tokenizer.model. */
static const struct {
	int n;
	int32_t ids[5];
	const char *text;
} dec_ref[] = {
	{ 2, { 1, 15043 }, "Hello" },
	{ 1, { 15043 }, "Hello" },
	{ 2, { 29871, 15043 }, " Hello" },
	{ 3, { 1, 29871, 15043 }, " Hello" },
	{ 1, { 0 }, " \xe2\x81\x87 " },
	{ 2, { 0, 0 }, " \xe2\x81\x87  \xe2\x81\x87 " },
	{ 3, { 15043, 0, 15043 }, "Hello \xe2\x81\x87  Hello" },
	{ 3, { 1, 2, 15043 }, "Hello" },
	{ 2, { 2, 15043 }, "Hello" },
	{ 2, { 35, 15043 }, "  Hello" },
	{ 1, { 229 }, "\xef\xbf\xbd" },
	{ 2, { 229, 15043 }, "\xef\xbf\xbd Hello" },
	{ 3, { 231, 187, 131 }, "\xe4\xb8\x80" },
	{ 3, { 227, 131, 131 }, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ 3, { 240, 163, 131 }, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ 3, { 243, 162, 68 }, "\xef\xbf\xbd\xef\xbf\xbd" "A" },
	{ 2, { 195, 131 }, "\xef\xbf\xbd\xef\xbf\xbd" },
	{ 4, { 247, 147, 131, 131 }, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ 2, { 259, 15043 }, "  Hello" },
	{ 1, { 259 }, " " },
	{ 1, { 29871 }, "" },
	{ 2, { 29871, 29871 }, " " },
	{ 2, { 1, 259 }, " " },
	{ 3, { 242, 194, 192 }, "\xef\xbf\xbd" },
	{ 3, { 231, 187, 15043 }, "\xef\xbf\xbd\xef\xbf\xbd Hello" },
	{ 2, { 0, 15043 }, " \xe2\x81\x87  Hello" },
	{ 3, { 1, 0, 15043 }, " \xe2\x81\x87  Hello" },
	{ 2, { 35, 35 }, "  " },
	{ 4, { 229, 153, 132, 15043 }, "\xe2\x96\x81 Hello" },
	{ 1, { 30122 }, "\xc3\x97" },
	{ 4, { 231, 187, 1, 131 }, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ 0, { 0 }, "" },
};

START_TEST(test_decode_reference)
{
	struct tokenizer *t = load_llama();
	size_t i;
	char what[64];

	for (i = 0; i < sizeof dec_ref / sizeof dec_ref[0]; i++) {
		char *got = tok_decode(t, dec_ref[i].ids, dec_ref[i].n);

		ck_assert_ptr_nonnull(got);
		ck_assert_msg(strcmp(got, dec_ref[i].text) == 0,
		    "decode reference case %zu: got \"%s\" want \"%s\"", i, got, dec_ref[i].text);
		snprintf(what, sizeof what, "decode reference case %zu", i);
		free(stream_decode(t, dec_ref[i].ids, dec_ref[i].n, what));
		free(got);
	}
	tok_free(t);
}
END_TEST

START_TEST(test_bos)
{
	struct tokenizer *t = load_llama();
	int32_t ids[16];
	int n;

	ck_assert_int_eq(tok_bos(t), 1);
	ck_assert_int_eq(tok_eos(t), 2);
	n = tok_encode(t, "Hello", 5, 1, ids);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(ids[1], 15043);
	n = tok_encode(t, "Hello", 5, 0, ids);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ids[0], 15043);
	ck_assert_int_eq(tok_encode(t, "", 0, 1, ids), 1);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(tok_encode(t, "", 0, 0, ids), 0);
	tok_free(t);
}
END_TEST

START_TEST(test_pieces)
{
	struct tokenizer *t = load_llama();
	size_t len;
	const char *p;

	/* llama2.c stores U+2581 as a space and BOS as "\n<s>\n": both are
	 * read back to SentencePiece's spelling. */
	p = tok_piece(t, 15043, &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_mem_eq(p, "\xe2\x96\x81Hello", 8);
	p = tok_piece(t, 1, &len);
	ck_assert_str_eq(p, "<s>");
	p = tok_piece(t, 2, &len);
	ck_assert_str_eq(p, "</s>");
	p = tok_piece(t, 3 + 0x41, &len);
	ck_assert_str_eq(p, "<0x41>");
	ck_assert_ptr_null(tok_piece(t, -1, &len));
	ck_assert_ptr_null(tok_piece(t, 32000, &len));
	tok_free(t);
}
END_TEST

START_TEST(test_stream_llama)
{
	struct tokenizer *t = load_llama();
	struct tok_decoder d;
	char *out = malloc(tok_decoder_max(t));
	static const int32_t bytes[] = { 243, 162, 169, 156 };
	size_t w;
	int i;

	tok_decoder_init(&d, 1);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(tok_decoder_push(t, &d, bytes[i], out), 0);
	w = tok_decoder_push(t, &d, bytes[3], out);
	ck_assert_uint_eq(w, 4);
	ck_assert_mem_eq(out, "\xf0\x9f\xa6\x99", 4);
	ck_assert_uint_eq(tok_decoder_flush(&d, out), 0);

	/* An unfinished sequence comes out as U+FFFD per byte on flush. */
	tok_decoder_push(t, &d, 243, out);
	ck_assert_uint_eq(tok_decoder_push(t, &d, 162, out), 0);
	w = tok_decoder_flush(&d, out);
	ck_assert_uint_eq(w, 6);
	ck_assert_mem_eq(out, "\xef\xbf\xbd\xef\xbf\xbd", 6);

	/* Without strip_leading_space the first space stays. */
	tok_decoder_init(&d, 0);
	w = tok_decoder_push(t, &d, 15043, out);
	ck_assert_uint_eq(w, 6);
	ck_assert_mem_eq(out, " Hello", 6);
	free(out);
	tok_free(t);
}
END_TEST

START_TEST(test_stream_random)
{
	struct tokenizer *t = load_llama();
	int32_t ids[48];
	char what[64];
	int k, i, n;

	rng_seed(0x5eed1);
	for (k = 0; k < 3000; k++) {
		n = (int)rng_below(48);
		for (i = 0; i < n; i++) {
			uint32_t r = rng_below(100);
			if (r < 35)     /* byte tokens, avoiding <0x00> (tok_decode is a C string) */
				ids[i] = 4 + (int32_t)rng_below(255);
			else if (r < 55)  /* bytes of lead/continuation kind */
				ids[i] = 3 + 0x80 + (int32_t)rng_below(0x78);
			else if (r < 65)
				ids[i] = (int32_t)rng_below(3);
			else if (r < 75)
				ids[i] = (int32_t[]){ 29871, 259, 1678, 15043, 30140 }[rng_below(5)];
			else if (r < 77)
				ids[i] = rng_below(2) ? -1 : 32000;
			else
				ids[i] = 259 + (int32_t)rng_below(32000 - 259);
		}
		snprintf(what, sizeof what, "random sequence %d", k);
		free(stream_decode(t, ids, n, what));
	}
	tok_free(t);
}
END_TEST

static void
check_roundtrip(const struct tokenizer *t, const char *s, size_t len, const char *what)
{
	int n;
	int32_t *ids = encode(t, s, len, 0, &n);
	char *back = tok_decode(t, ids, n);

	ck_assert_ptr_nonnull(back);
	ck_assert_msg(strlen(back) == len && memcmp(back, s, len) == 0,
	    "%s: \"%s\" came back as \"%s\"", what, s, back);
	free(back);
	free(ids);
}

START_TEST(test_roundtrip_golden)
{
	struct tokenizer *t = load_llama();
	json_t *g = golden_load("tokenizer.json"), *cases = json_object_get(g, "tokenizer"), *c;
	size_t i;
	char what[64];

	json_array_foreach(cases, i, c) {
		json_t *jt = json_object_get(c, "text");
		snprintf(what, sizeof what, "golden text %zu", i);
		check_roundtrip(t, json_string_value(jt), json_string_length(jt), what);
	}
	json_decref(g);
	tok_free(t);
}
END_TEST

/* Append code point cp as UTF-8. */
static size_t
put_cp(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static uint32_t
random_cp(void)
{
	static const char ascii[] = "  \n\tabcdefghijklmnopqrstuvwxyzTHE.,!?'\"()[]<>0123456789-_/";
	uint32_t r = rng_below(100), cp;

	if (r < 55)
		return (unsigned char)ascii[rng_below(sizeof ascii - 1)];
	if (r < 65)
		return 0xa0 + rng_below(0x600);          /* Latin, Greek, Cyrillic */
	if (r < 80)
		return 0x4e00 + rng_below(0x5000);       /* CJK */
	if (r < 88)
		return 0x1f300 + rng_below(0x300);       /* emoji */
	do
		cp = 1 + rng_below(0x10ffff);
	while ((cp >= 0xd800 && cp < 0xe000) || cp == 0x2581);
	return cp;
}

START_TEST(test_roundtrip_random)
{
	struct tokenizer *t = load_llama();
	char s[64 * 4 + 1], what[64];
	size_t len;
	int k, i, n;

	rng_seed(0xc0ffee);
	for (k = 0; k < 1000; k++) {
		n = (int)rng_below(64);
		for (i = 0, len = 0; i < n; i++)
			len += put_cp(s + len, random_cp());
		s[len] = '\0';
		snprintf(what, sizeof what, "random text %d", k);
		check_roundtrip(t, s, len, what);
	}
	tok_free(t);
}
END_TEST

/* Random bytes: ids in range, and the text comes back with every malformed
 * byte as U+FFFD. */
START_TEST(test_malformed_random)
{
	struct tokenizer *t = load_llama();
	char s[80];
	size_t len, i;
	int k, j, n;

	rng_seed(0xbadbed);
	for (k = 0; k < 2000; k++) {
		len = rng_below(sizeof s);
		for (i = 0; i < len; i++) {
			uint32_t r = rng_below(4);
			s[i] = (char)(r == 0 ? 1 + rng_below(0x7f) : 0x80 + rng_below(0x80));
		}
		if (memmem(s, len, "\xe2\x96\x81", 3) != NULL)
			continue;       /* U+2581 decodes as a space */
		int32_t *ids = encode(t, s, len, 1, &n);
		for (j = 0; j < n; j++)
			ck_assert_msg(ids[j] >= 0 && ids[j] < 32000, "malformed %d: id %d", k, ids[j]);
		char *back = tok_decode(t, ids, n), *want = sanitize(s, len);
		ck_assert_ptr_nonnull(back);
		ck_assert_msg(strcmp(back, want) == 0, "malformed %d: \"%s\" want \"%s\"", k, back, want);
		free(back);
		free(want);
		free(ids);
	}
	tok_free(t);
}
END_TEST

START_TEST(test_long_input)
{
	struct tokenizer *t = load_llama();
	json_t *g = golden_load("tokenizer.json"), *cases = json_object_get(g, "tokenizer");
	size_t cap = 100 * 1024, len = 0, i = 0;
	char *s = malloc(cap + 64);
	int n;
	int32_t *ids;

	/* Golden texts over and over: realistic text with every script. */
	while (len < cap) {
		json_t *jt = json_object_get(json_array_get(cases, i++ % json_array_size(cases)), "text");
		size_t l = json_string_length(jt);
		if (len + l + 1 > cap)
			break;
		memcpy(s + len, json_string_value(jt), l);
		len += l;
		s[len++] = ' ';
	}
	check_roundtrip(t, s, len, "100 KB of golden text");

	/* One long word that merges a great deal. */
	memset(s, 'a', cap);
	ids = encode(t, s, cap, 0, &n);
	ck_assert_int_gt(n, 0);
	free(ids);
	/* Nothing but spaces, and nothing but bytes that fall back. */
	memset(s, ' ', cap);
	check_roundtrip(t, s, cap, "100 KB of spaces");
	for (i = 0; i + 4 <= cap; i += 4)
		memcpy(s + i, "\xf0\x9f\xa6\x99", 4);
	check_roundtrip(t, s, i, "100 KB of llamas");
	free(s);
	json_decref(g);
	tok_free(t);
}
END_TEST

/*
 * A small vocabulary with every piece type, to pin down the merge rules:
 * ties go to the left pair, CONTROL pieces are never formed, USER_DEFINED
 * pieces are matched whole and never merged further, UNUSED pieces are split
 * back into the pair that formed them, and leftovers fall back to bytes.
 */
enum { V_SP = 259, V_A, V_B, V_AB, V_BA, V_C, V_D, V_CD, V_E, V_CDE, V_TAG, V_ATAG,
	V_XY, V_X, V_Y, V_N };

static struct tokenizer *
small_vocab(float ba_score, int bytes)
{
	static char names[256][8];
	const char *pieces[V_N];
	uint32_t lens[V_N];
	float scores[V_N];
	int32_t types[V_N];
	char *err = NULL;
	struct tokenizer *t;
	int i;
	static const struct { const char *s; float score; int type; } extra[V_N - V_SP] = {
		{ "\xe2\x96\x81", -1, TOK_NORMAL }, { "a", -1, TOK_NORMAL },
		{ "b", -1, TOK_NORMAL }, { "ab", -5, TOK_NORMAL }, { "ba", -5, TOK_NORMAL },
		{ "c", -1, TOK_NORMAL }, { "d", -1, TOK_NORMAL }, { "cd", 0, TOK_UNUSED },
		{ "e", -1, TOK_NORMAL }, { "cde", -3, TOK_NORMAL },
		{ "<t>", 0, TOK_USER_DEFINED }, { "a<t>", 10, TOK_NORMAL },
		{ "xy", 10, TOK_CONTROL }, { "x", -1, TOK_NORMAL }, { "y", -1, TOK_NORMAL },
	};

	pieces[0] = "<unk>"; types[0] = TOK_UNKNOWN;
	pieces[1] = "<s>"; types[1] = TOK_CONTROL;
	pieces[2] = "</s>"; types[2] = TOK_CONTROL;
	for (i = 0; i < 256; i++) {
		snprintf(names[i], sizeof names[i], "<0x%02X>", i);
		pieces[3 + i] = names[i];
		/* Without byte pieces the slots hold unreachable normal pieces. */
		types[3 + i] = bytes ? TOK_BYTE : TOK_NORMAL;
		if (!bytes)
			names[i][1] = 'q';
	}
	for (i = V_SP; i < V_N; i++) {
		pieces[i] = extra[i - V_SP].s;
		types[i] = extra[i - V_SP].type;
	}
	for (i = 0; i < V_N; i++) {
		lens[i] = (uint32_t)strlen(pieces[i]);
		scores[i] = i < V_SP ? 0 : extra[i - V_SP].score;
	}
	scores[V_BA] = ba_score;
	t = tok_new(V_N, pieces, lens, scores, types, 1, 2, 0, &err);
	ck_assert_msg(t != NULL, "tok_new: %s", err);
	return t;
}

static void
check_ids(const struct tokenizer *t, const char *text, const int32_t *want, int nwant)
{
	int n;
	int32_t *ids = encode(t, text, strlen(text), 0, &n);
	char got[256], exp[256];

	fmt_ids(got, sizeof got, ids, n);
	fmt_ids(exp, sizeof exp, want, nwant);
	ck_assert_msg(strcmp(got, exp) == 0, "\"%s\": got [%s] want [%s]", text, got, exp);
	free(ids);
}

#define CHECK_IDS(t, text, ...) do { \
	static const int32_t w_[] = { __VA_ARGS__ }; \
	check_ids((t), (text), w_, (int)(sizeof w_ / sizeof w_[0])); \
} while (0)

START_TEST(test_merge_rules)
{
	struct tokenizer *t = small_vocab(-5, 1);
	char *s;

	CHECK_IDS(t, "aba", V_SP, V_AB, V_A);           /* tie: left pair first */
	CHECK_IDS(t, "cd", V_SP, V_C, V_D);             /* UNUSED split back */
	CHECK_IDS(t, "cde", V_SP, V_CDE);               /* ...but may be merged on */
	CHECK_IDS(t, "a<t>b", V_SP, V_A, V_TAG, V_B);   /* USER_DEFINED frozen */
	CHECK_IDS(t, "xy", V_SP, V_X, V_Y);             /* CONTROL never formed */
	CHECK_IDS(t, "a\xc3\xa9", V_SP, V_A, 3 + 0xc3, 3 + 0xa9);
	CHECK_IDS(t, "\xff", V_SP, 3 + 0xef, 3 + 0xbf, 3 + 0xbd);  /* U+FFFD as bytes */
	CHECK_IDS(t, "<s>", V_SP, 3 + '<', 3 + 's', 3 + '>');

	/* Decoding: USER_DEFINED and UNUSED pieces are text. */
	s = tok_decode(t, (const int32_t[]){ V_SP, V_TAG, V_CD, V_SP, V_XY, 0 }, 6);
	ck_assert_str_eq(s, "<t>cd  \xe2\x81\x87 ");
	free(s);
	tok_free(t);

	t = small_vocab(-4, 1);
	CHECK_IDS(t, "aba", V_SP, V_A, V_BA);           /* higher score wins */
	tok_free(t);

	/* Without byte pieces an unknown run is one <unk>. */
	t = small_vocab(-5, 0);
	CHECK_IDS(t, "zzq", V_SP, 0);
	CHECK_IDS(t, "z z", V_SP, 0, V_SP, 0);
	tok_free(t);
}
END_TEST

START_TEST(test_new_rejects)
{
	const char *pieces[4] = { "<unk>", "<s>", "</s>", "a" };
	uint32_t lens[4] = { 5, 3, 4, 1 };
	float scores[4] = { 0, 0, 0, -1 };
	int32_t types[4] = { 2, 3, 3, 1 };
	char *err;
	struct tokenizer *t;

#define REJECT(call, what) do { \
	err = NULL; \
	t = (call); \
	ck_assert_msg(t == NULL, "accepted: %s", what); \
	ck_assert_msg(err != NULL && *err, "no message: %s", what); \
	free(err); \
} while (0)
	REJECT(tok_new(0, pieces, lens, scores, NULL, 1, 2, 0, &err), "n = 0");
	REJECT(tok_new(-3, pieces, lens, scores, NULL, 1, 2, 0, &err), "n < 0");
	REJECT(tok_new(4, NULL, lens, scores, NULL, 1, 2, 0, &err), "no pieces");
	REJECT(tok_new(4, pieces, lens, scores, NULL, 4, 2, 0, &err), "bos out of range");
	REJECT(tok_new(4, pieces, lens, scores, NULL, 1, -1, 0, &err), "eos out of range");
	REJECT(tok_new(4, pieces, lens, scores, NULL, 1, 2, 9, &err), "unk out of range");
	pieces[3] = NULL;
	REJECT(tok_new(4, pieces, lens, scores, NULL, 1, 2, 0, &err), "NULL piece");
	pieces[3] = "a";
	lens[3] = 2u << 20;
	REJECT(tok_new(4, pieces, lens, scores, NULL, 1, 2, 0, &err), "2 MiB piece");
	lens[3] = 1;
	scores[3] = NAN;
	REJECT(tok_new(4, pieces, lens, scores, NULL, 1, 2, 0, &err), "NaN score");
	scores[3] = -1;
	types[3] = 7;
	REJECT(tok_new(4, pieces, lens, scores, types, 1, 2, 0, &err), "type 7");
	types[3] = TOK_BYTE;
	REJECT(tok_new(4, pieces, lens, scores, types, 1, 2, 0, &err), "BYTE not <0xXX>");
#undef REJECT
	types[3] = TOK_NORMAL;
	err = NULL;
	t = tok_new(4, pieces, lens, scores, types, 1, 2, 0, &err);
	ck_assert_msg(t != NULL, "tok_new: %s", err);
	ck_assert_int_eq(tok_n_vocab(t), 4);
	tok_free(t);
}
END_TEST

static char *
write_file(const char *dir, const char *name, const void *data, size_t n)
{
	char *p;
	FILE *f;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	f = fopen(p, "wb");
	ck_assert_msg(f != NULL, "cannot write %s", p);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
	return p;
}

/* tok_spm_load_bin must fail with a message that starts "<path>: ". */
static void
expect_load_error(const char *path, int n_vocab, const char *what)
{
	char *err = NULL;
	struct tokenizer *t = tok_spm_load_bin(path, n_vocab, &err);
	size_t pl = strlen(path);

	ck_assert_msg(t == NULL, "%s: loaded", what);
	ck_assert_msg(err != NULL, "%s: no message", what);
	ck_assert_msg(strncmp(err, path, pl) == 0 && strncmp(err + pl, ": ", 2) == 0 &&
	    err[pl + 2] != '\0', "%s: message \"%s\" does not name %s", what, err, path);
	free(err);
}

struct rec {
	unsigned char b[64];
	size_t n;
};

static void
rec_i32(struct rec *r, int32_t v)
{
	memcpy(r->b + r->n, &v, 4);
	r->n += 4;
}

static void
rec_piece(struct rec *r, float score, int32_t len, const char *s)
{
	memcpy(r->b + r->n, &score, 4);
	r->n += 4;
	rec_i32(r, len);
	if (s != NULL) {
		memcpy(r->b + r->n, s, strlen(s));
		r->n += strlen(s);
	}
}

START_TEST(test_hostile_files)
{
	char *dir = tmpdir_new(), *p, *err = NULL;
	struct rec r;
	struct tokenizer *t;
	int k;

	ck_assert_ptr_nonnull(dir);
	for (k = 0; k < 13; k++) {
		memset(&r, 0, sizeof r);
		switch (k) {
		case 0: break;                                  /* empty */
		case 1: r.n = 2; break;                         /* half a header */
		case 2: rec_i32(&r, -1); rec_piece(&r, 0, 1, "a"); break;
		case 3: rec_i32(&r, 0); rec_piece(&r, 0, 1, "a"); break;
		case 4: rec_i32(&r, INT32_MAX); rec_piece(&r, 0, 1, "a"); break;
		case 5: rec_i32(&r, 10); rec_piece(&r, 0, -5, "abcde"); break;
		case 6: rec_i32(&r, 10); rec_piece(&r, 0, INT32_MAX, "a"); break;
		case 7: rec_i32(&r, 1 << 20); rec_piece(&r, 0, 1 << 20, "a"); break;
		case 8: rec_i32(&r, 2); rec_piece(&r, 0, 5, "hello"); break;
		case 9: rec_i32(&r, 8); break;                  /* no pieces */
		case 10: rec_i32(&r, 8); rec_piece(&r, 0, 1, "a"); rec_piece(&r, 0, 1, "b"); break;
		case 11: rec_i32(&r, 8); rec_piece(&r, 0, 1, "a"); rec_piece(&r, NAN, 1, "b");
			rec_piece(&r, 0, 1, "c"); break;
		case 12: rec_i32(&r, 8); rec_piece(&r, 0, 1, "a"); r.n += 3; break;
		}
		char name[32];
		snprintf(name, sizeof name, "hostile-%d.bin", k);
		p = write_file(dir, name, r.b, r.n);
		expect_load_error(p, 0, name);
		expect_load_error(p, 3, name);
		free(p);
	}

	/* A sound three-piece file loads, and n_vocab is honoured. */
	memset(&r, 0, sizeof r);
	rec_i32(&r, 8);
	rec_piece(&r, 0, 5, "<unk>");
	rec_piece(&r, 0, 5, "\n<s>\n");
	rec_piece(&r, 0, 6, "\n</s>\n");
	p = write_file(dir, "ok.bin", r.b, r.n);
	t = tok_spm_load_bin(p, 0, &err);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_int_eq(tok_n_vocab(t), 3);
	tok_free(t);
	expect_load_error(p, 4, "n_vocab past the end");
	expect_load_error(p, -1, "negative n_vocab");
	free(p);

	ck_assert_int_ge(asprintf(&p, "%s/missing.bin", dir), 0);
	expect_load_error(p, 0, "missing file");
	free(p);
	expect_load_error(dir, 0, "a directory");
	tmpdir_remove(dir);
}
END_TEST

/* Cut tokenizer.bin at many places: with n_vocab = 32000 every cut fails;
 * reading to end of file, a cut on a record boundary is a smaller valid
 * vocabulary and any other cut fails. */
START_TEST(test_truncated_files)
{
	char *src = fixture_path("models/tokenizer.bin"), *dir = tmpdir_new(), *p, *err;
	FILE *f;
	unsigned char *data;
	size_t size, o, cuts[400], ncut = 0, i, *bound;
	int nrec = 0, k;

	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(dir);
	f = fopen(src, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	size = (size_t)ftell(f);
	rewind(f);
	data = malloc(size);
	ck_assert_uint_eq(fread(data, 1, size, f), size);
	fclose(f);

	bound = malloc((size / 8 + 2) * sizeof *bound);
	for (o = 4; o + 8 <= size; nrec++) {
		int32_t len;
		memcpy(&len, data + o + 4, 4);
		o += 8 + (size_t)len;
		bound[nrec] = o;
	}
	ck_assert_int_eq(nrec, 32000);
	ck_assert_uint_eq(o, size);

	rng_seed(0x7e57);
	for (i = 0; i < 48; i++)
		cuts[ncut++] = i;
	for (i = 1; i < 200; i++)
		cuts[ncut++] = size * i / 200;
	for (k = 0; k < 40; k++) {      /* on, just before and just after boundaries */
		size_t b = bound[rng_below(32000 - 1)];
		cuts[ncut++] = b;
		cuts[ncut++] = b - 1;
		cuts[ncut++] = b + 1;
	}
	for (i = 1; i <= 8; i++)
		cuts[ncut++] = size - i;
	for (i = 0; i < ncut; i++) {
		size_t c = cuts[i];
		int whole = -1, j;
		char name[48];

		snprintf(name, sizeof name, "cut-%zu.bin", c);
		p = write_file(dir, name, data, c);
		expect_load_error(p, 32000, name);
		for (j = 0; j < nrec; j++)
			if (bound[j] == c)
				whole = j + 1;
		if (whole >= 3) {
			struct tokenizer *t;
			err = NULL;
			t = tok_spm_load_bin(p, 0, &err);
			ck_assert_msg(t != NULL, "%s: %s", name, err);
			ck_assert_int_eq(tok_n_vocab(t), whole);
			tok_free(t);
		} else
			expect_load_error(p, 0, name);
		remove(p);
		free(p);
	}
	free(bound);
	free(data);
	free(src);
	tmpdir_remove(dir);
}
END_TEST

/*
 * A prompt in parts (tok_encode_parts): special tokens are cut only out of
 * what the template wrote, the raw text between them is one run with its
 * own dummy prefix (llama.cpp's parse_special for SentencePiece), and typed
 * "<s>" / "</s>" stay text.
 */
START_TEST(test_encode_parts)
{
	struct tokenizer *t = load_llama();
	struct tok_part p1[] = { { "<s>", 3, 1 }, { "[INST] ", 7, 1 }, { "Hi </s> <s>", 11, 0 }, { " [/INST]", 8, 1 } };
	int32_t *ids;
	int n = tok_encode_parts(t, p1, 4, &ids);
	int nw;
	int32_t *want = encode(t, "[INST] Hi </s> <s> [/INST]", 26, 1, &nw);
	ck_assert_msg(n == nw && memcmp(ids, want, (size_t)n * sizeof *ids) == 0, "typed specials were parsed");
	free(ids);
	free(want);
	/* After a template's </s>, the next run starts with its own prefix. */
	struct tok_part p2[] = { { "a</s>b", 6, 1 } };
	n = tok_encode_parts(t, p2, 1, &ids);
	int na, nb;
	int32_t *a = encode(t, "a", 1, 0, &na), *b = encode(t, "b", 1, 0, &nb);
	ck_assert_int_eq(n, na + 1 + nb);
	ck_assert_int_eq(ids[na], tok_eos(t));
	ck_assert(memcmp(ids, a, (size_t)na * sizeof *ids) == 0 && memcmp(ids + na + 1, b, (size_t)nb * sizeof *ids) == 0);
	ck_assert(tok_is_eog(t, tok_eos(t)) && !tok_is_eog(t, tok_bos(t)));
	free(ids);
	free(a);
	free(b);
	tok_free(t);
}
END_TEST

Suite *tok_suite(void);

Suite *tok_suite(void)
{
	Suite *s = suite_create("tok");
	TCase *tc = tcase_create("tok");

	tcase_set_timeout(tc, 120);
	tcase_add_fixture_test(tc, test_golden_encode);
	tcase_add_fixture_test(tc, test_golden_decode);
	tcase_add_fixture_test(tc, test_encode_reference);
	tcase_add_fixture_test(tc, test_decode_reference);
	tcase_add_fixture_test(tc, test_bos);
	tcase_add_fixture_test(tc, test_pieces);
	tcase_add_fixture_test(tc, test_stream_llama);
	tcase_add_fixture_test(tc, test_stream_random);
	tcase_add_fixture_test(tc, test_roundtrip_golden);
	tcase_add_fixture_test(tc, test_roundtrip_random);
	tcase_add_fixture_test(tc, test_malformed_random);
	tcase_add_fixture_test(tc, test_long_input);
	tcase_add_fixture_test(tc, test_truncated_files);
	tcase_add_test(tc, test_merge_rules);
	tcase_add_fixture_test(tc, test_encode_parts);
	tcase_add_test(tc, test_new_rejects);
	tcase_add_test(tc, test_hostile_files);
	suite_add_tcase(s, tc);
	return s;
}
