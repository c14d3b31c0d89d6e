/*
 * targets.c: the fuzz targets (fuzz.h).  Each one feeds its input to a
 * parser through the same public functions the program uses and then checks
 * what the headers promise: an error comes with a one-line message, ids
 * are inside the vocabulary, decoded text is valid UTF-8, an exported
 * conversation imports back to the same document, the line editor's cursor
 * stays on a cluster boundary.  A broken promise calls abort(), which
 * libFuzzer and the regression suite both report.
 *
 * Files reach the loaders through one memfd per process, opened by path as
 * /proc/self/fd/N, so nothing touches the disk; the import target keeps one
 * database in a temporary folder and deletes what each input inserted.
 */
#include "tests/fuzz/fuzz.h"

#include "app/dialog.h"
#include "engine/chat.h"
#include "engine/worker.h"
#include "storage/db.h"
#include "storage/export.h"
#include "ui/ui_int.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* ---- shared helpers ------------------------------------------------------ */

static char *
fixture(const char *rel)
{
	const char *d = getenv("LLAMA2_CHAT_FIXTURES");
	char *p;
	if (asprintf(&p, "%s/%s", d && *d ? d : "../shared", rel) < 0)
		return NULL;
	if (access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

/* The input as a file: "/proc/self/fd/N" of a memfd holding exactly it. */
static const char *
memfd_path(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0);
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0);
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
		FUZZ_CHECK(w > 0);
		off += (size_t)w;
	}
	return path;
}

/* Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
static int
utf8_ok(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	for (size_t i = 0; i < len;) {
		unsigned c = s[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (n == 0 || i + n > len)
			return 0;
		for (size_t k = 1; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		if ((n == 2 && c < 0xc2) || (n == 3 && c == 0xe0 && s[i + 1] < 0xa0) ||
		    (n == 3 && c == 0xed && s[i + 1] >= 0xa0) || (n == 4 && c == 0xf0 && s[i + 1] < 0x90) ||
		    (n == 4 && (c > 0xf4 || (c == 0xf4 && s[i + 1] >= 0x90))))
			return 0;
		i += n;
	}
	return 1;
}

/* An error must come with a message of one line. */
static void
check_err(char *err)
{
	FUZZ_CHECK(err != NULL && err[0] != '\0');
	FUZZ_CHECK(strchr(err, '\n') == NULL);
	free(err);
}

/* The tokenizer.bin vocabulary and the vocabulary of a GGUF fixture,
 * loaded once; NULL when the fixtures are absent. */
static struct engine_model *
vocab(int which)
{
	static struct engine_model *m[2];
	static int tried[2];
	if (!tried[which]) {
		tried[which] = 1;
		char *p = fixture(which ? "models/fixture-q4_0.gguf" : "models/tokenizer.bin");
		char *err = NULL;
		if (p != NULL)
			m[which] = which ? engine_open(p, NULL, &err) : engine_open_tokenizer(p, &err);
		if (p != NULL && m[which] == NULL) {
			fprintf(stderr, "fuzz: cannot load %s: %s\n", p, err ? err : "?");
			abort();
		}
		free(err);
		free(p);
	}
	return m[which];
}

/* Stream ids through the detokenizer: every chunk fits and is valid UTF-8.
 * Returns the whole text (malloc'd). */
static char *
detok_stream(const struct engine_model *m, const int32_t *ids, int n, int strip)
{
	size_t max = engine_detok_max(m), len = 0;
	char *out = malloc((size_t)n * max + max + 1);
	FUZZ_CHECK(out != NULL);
	struct engine_detok d;
	engine_detok_init(&d, strip);
	for (int i = 0; i < n; i++) {
		size_t k = engine_detok_push(m, &d, ids[i], out + len);
		FUZZ_CHECK(k <= max);
		FUZZ_CHECK(utf8_ok(out + len, k));
		len += k;
	}
	size_t k = engine_detok_flush(&d, out + len);
	FUZZ_CHECK(k <= max);
	FUZZ_CHECK(utf8_ok(out + len, k));
	out[len + k] = '\0';
	return out;
}

/* ---- model files ------------------------------------------------------------ */

/* Open the file, check its description, make a tiny context, tokenize and
 * decode a little, and sample once. */
static int
model_run(const uint8_t *data, size_t size, const char *tokenizer)
{
	const char *path = memfd_path(data, size);
	char *err = NULL;
	struct engine_model *m = engine_open(path, tokenizer, &err);
	if (m == NULL) {
		check_err(err);
		return 0;
	}
	const struct engine_info *in = engine_info(m);
	FUZZ_CHECK(in->n_vocab > 0);
	FUZZ_CHECK(strlen(in->format) + strlen(in->name) + strlen(in->types) + strlen(in->main_type) +
	    strlen(in->fingerprint) > 0);

	/* The vocabulary came from the file: encode and decode with it. */
	static const char text[] = "Hello [INST] w\xc3\xb6rld <0x41> \xe4\xb8\x96 <s>";
	int32_t *ids = NULL;
	int n = engine_tokenize(m, text, sizeof text - 1, 1, &ids);
	FUZZ_CHECK(n >= 1);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(ids[i] >= 0 && ids[i] < in->n_vocab);
	char *back = engine_detokenize(m, ids, n);
	FUZZ_CHECK(back != NULL && utf8_ok(back, strlen(back)));
	free(back);
	free(ids);
	int32_t some[16];
	for (int i = 0; i < 16; i++)
		some[i] = (int32_t)((i * 7919) % in->n_vocab);
	free(detok_stream(m, some, 16, 1));

	struct engine_ctx_params cp;
	engine_ctx_params_default(&cp);
	cp.n_ctx = 8;
	cp.n_threads = 1;
	cp.n_batch = 2;
	struct engine_ctx *c = engine_ctx_new(m, &cp, &err);
	if (c == NULL) {
		check_err(err);
		engine_close(m);
		return 0;
	}
	int32_t prompt[3] = { in->bos, 3 % in->n_vocab, in->n_vocab - 1 };
	int rc = engine_decode(c, prompt, 3, 0, NULL, &err);
	if (rc != 0) {
		FUZZ_CHECK(rc == -1);
		check_err(err);
	} else {
		const float *lg = engine_logits(c, 0);
		volatile float sum = 0;
		for (int i = 0; i < in->n_vocab; i++)
			sum += lg[i];
		(void)sum;
		struct engine_sampling sp;
		engine_sampling_default(&sp);
		sp.seed = 42;
		struct engine_sampler *smp = engine_sampler_new(&sp);
		FUZZ_CHECK(smp != NULL);
		int32_t id = engine_sample(smp, lg, in->n_vocab, prompt, 3);
		FUZZ_CHECK(id >= 0 && id < in->n_vocab);
		engine_sampler_free(smp);
		if (engine_decode(c, &id, 1, 1, NULL, &err) != 0)
			check_err(err);
	}
	engine_ctx_free(c);
	engine_close(m);
	return 0;
}

int
fuzz_gguf(const uint8_t *data, size_t size)
{
	return model_run(data, size, NULL);
}

int
fuzz_l2c(const uint8_t *data, size_t size)
{
	static char *tok;
	static int tried;
	if (!tried) {
		tried = 1;
		tok = fixture("models/tokenizer.bin");
	}
	/* GGUF is the other target's business. */
	if (tok == NULL || (size >= 4 && memcmp(data, "GGUF", 4) == 0))
		return 0;
	return model_run(data, size, tok);
}

/* ---- tokenizer ------------------------------------------------------------- */

/* Byte 0: bit 0 picks the vocabulary, bit 1 adds BOS; the rest is text. */
int
fuzz_tok_encode(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct engine_model *m = vocab(data[0] & 1);
	if (m == NULL)
		return 0;
	int add_bos = (data[0] >> 1) & 1, nv = engine_info(m)->n_vocab;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	int32_t *ids = NULL;
	int n = engine_tokenize(m, text, len, add_bos, &ids);
	FUZZ_CHECK(n >= 0);
	FUZZ_CHECK(!add_bos || (n >= 1 && ids[0] == engine_info(m)->bos));
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(ids[i] >= 0 && ids[i] < nv);
	char *whole = engine_detokenize(m, ids, n);
	FUZZ_CHECK(whole != NULL);
	size_t wl = strlen(whole);
	FUZZ_CHECK(utf8_ok(whole, wl));
	/* SentencePiece round trip: with LLaMA-2's vocabulary (which has "▁"
	 * as a piece, so the dummy prefix never falls back to bytes) valid text
	 * without NUL and without a literal U+2581 comes back as it was. */
	if ((data[0] & 1) == 0 && utf8_ok(text, len) && memchr(text, '\0', len) == NULL &&
	    memmem(text, len, "\xe2\x96\x81", 3) == NULL) {
		if (wl != len || memcmp(whole, text, len) != 0) {
			fprintf(stderr, "round trip: %zu bytes in, %zu out: '%s'\n", len, wl, whole);
			abort();
		}
	}
	/* The streaming decoder says the same. */
	char *streamed = detok_stream(m, ids, n, 1);
	FUZZ_CHECK(strcmp(streamed, whole) == 0);
	free(streamed);
	free(whole);
	free(ids);
	return 0;
}

/* Byte 0: bit 0 picks the vocabulary, bit 1 keeps ids raw (else folded
 * into the vocabulary and a little beyond), bit 2 strips a leading space;
 * the rest is int32 ids, little-endian. */
int
fuzz_tok_decode(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const struct engine_model *m = vocab(data[0] & 1);
	if (m == NULL)
		return 0;
	int raw = (data[0] >> 1) & 1, strip = (data[0] >> 2) & 1, nv = engine_info(m)->n_vocab;
	int n = (int)((size - 1) / 4);
	int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
	FUZZ_CHECK(ids != NULL);
	for (int i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, data + 1 + 4 * (size_t)i, 4);
		ids[i] = raw ? (int32_t)u : (int32_t)(u % (uint32_t)(nv + 8)) - 4;
	}
	char *whole = engine_detokenize(m, ids, n);
	FUZZ_CHECK(whole != NULL && utf8_ok(whole, strlen(whole)));
	free(whole);
	for (int i = 0; i < n; i++) {
		size_t len;
		const char *p = engine_token_piece(m, ids[i], &len);
		FUZZ_CHECK((p != NULL) == (ids[i] >= 0 && ids[i] < nv));
	}
	/* The streaming decoder only ever sees ids the sampler produced. */
	int k = 0;
	for (int i = 0; i < n; i++)
		if (ids[i] >= 0 && ids[i] < nv)
			ids[k++] = ids[i];
	free(detok_stream(m, ids, k, strip));
	free(ids);
	return 0;
}

/* ---- dialog JSON (render) ------------------------------------------------ */

int
fuzz_dialog(const uint8_t *data, size_t size)
{
	const struct engine_model *m = vocab(0);
	if (m == NULL)
		return 0;
	json_t *doc;
	int *roles;
	const char **contents;
	size_t n;
	char *err = NULL;
	if (dialog_parse((const char *)data, size, &doc, &roles, &contents, &n, &err) != 0) {
		check_err(err);
		return 0;
	}
	FUZZ_CHECK(roles != NULL && contents != NULL);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(contents[i] != NULL && roles[i] >= CHAT_SYSTEM && roles[i] <= CHAT_ASSISTANT);
	int32_t *ids = NULL;
	int nid = 0;
	char *text = NULL;
	if (chat_render(m, roles, contents, (int)n, &ids, &nid, &text, &err) != 0) {
		check_err(err);
	} else {
		FUZZ_CHECK(nid >= 1 && text != NULL);
		for (int i = 0; i < nid; i++)
			FUZZ_CHECK(ids[i] >= 0 && ids[i] < engine_info(m)->n_vocab);
		free(ids);
		free(text);
		/* The ids-only form gives the same ids. */
		int32_t *ids2 = NULL;
		int nid2 = 0;
		FUZZ_CHECK(chat_render(m, roles, contents, (int)n, &ids2, &nid2, NULL, &err) == 0);
		FUZZ_CHECK(nid2 == nid);
		free(ids2);
	}
	free(roles);
	free(contents);
	json_decref(doc);
	return 0;
}

/* ---- JSON import ------------------------------------------------------------- */

static struct db *
import_db(void)
{
	static struct db *d;
	static char dir[128];
	if (d == NULL) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
		snprintf(dir, sizeof dir, "%s/l2c-fuzz-XXXXXX", base);
		FUZZ_CHECK(mkdtemp(dir) != NULL);
		char path[160];
		snprintf(path, sizeof path, "%s/fuzz.db", dir);
		char *err = NULL;
		d = db_open(path, &err);
		if (d == NULL) {
			fprintf(stderr, "fuzz: %s\n", err);
			abort();
		}
		/* The folder goes at once; the open handle keeps the files. */
		char wal[200];
		unlink(path);
		snprintf(wal, sizeof wal, "%s-wal", path);
		unlink(wal);
		snprintf(wal, sizeof wal, "%s-shm", path);
		unlink(wal);
		rmdir(dir);
	}
	return d;
}

/* The exported document of conversation id, without its "id". */
static json_t *
export_of(struct db *d, int64_t id)
{
	char *err = NULL;
	struct db_conv *c = db_conv_load(d, id, &err);
	FUZZ_CHECK(c != NULL);
	static FILE *null;
	if (null == NULL)
		FUZZ_CHECK((null = fopen("/dev/null", "w")) != NULL);
	for (int f = EXPORT_MD; f <= EXPORT_HTML; f++) {
		if (export_write(c, (enum export_format)f, null, &err) != 0) {
			fprintf(stderr, "export %d: %s\n", f, err);
			abort();
		}
	}
	json_t *j = export_json(c, &err);
	if (j == NULL) {
		fprintf(stderr, "export_json: %s\n", err);
		abort();
	}
	json_object_del(j, "id");
	db_conv_free(c);
	return j;
}

int
fuzz_import(const uint8_t *data, size_t size)
{
	json_error_t je;
	json_t *doc = json_loadb((const char *)data, size, 0, &je);
	if (doc == NULL)
		return 0;
	char *err = NULL;
	struct db_conv *c = import_conv(doc, &err);
	json_decref(doc);
	if (c == NULL) {
		check_err(err);
		return 0;
	}
	struct db *d = import_db();
	if (db_conv_insert(d, c, &err) != 0) {
		/* A document import accepts but the database refuses. */
		fprintf(stderr, "insert refused an imported conversation: %s\n", err);
		abort();
	}
	int64_t id1 = c->id;
	db_conv_free(c);
	json_t *e1 = export_of(d, id1);
	/* What export writes, import reads back to the same document. */
	struct db_conv *c2 = import_conv(e1, &err);
	if (c2 == NULL) {
		char *s = json_dumps(e1, JSON_COMPACT);
		fprintf(stderr, "re-import of an export failed: %s\n%s\n", err, s);
		abort();
	}
	FUZZ_CHECK(db_conv_insert(d, c2, &err) == 0);
	json_t *e2 = export_of(d, c2->id);
	if (!json_equal(e1, e2)) {
		char *a = json_dumps(e1, JSON_COMPACT | JSON_SORT_KEYS);
		char *b = json_dumps(e2, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(stderr, "export -> import -> export changed the document:\n%s\n%s\n", a, b);
		abort();
	}
	FUZZ_CHECK(db_conv_delete(d, id1, &err) == 0);
	FUZZ_CHECK(db_conv_delete(d, c2->id, &err) == 0);
	db_conv_free(c2);
	json_decref(e1);
	json_decref(e2);
	return 0;
}

/* ---- the line editor ---------------------------------------------------------- */

/* The editor's invariants: a NUL-terminated buffer of len bytes of valid
 * UTF-8 and the cursor on a cluster boundary. */
static void
input_ok(const struct input *in)
{
	const char *s = input_text(in);
	FUZZ_CHECK(in->cur <= in->len);
	FUZZ_CHECK(strlen(s) == in->len);
	FUZZ_CHECK(utf8_ok(s, in->len));
	size_t i = 0;
	while (i < in->cur)
		i = wrap_next(s, in->len, i, NULL);
	/* Never inside a UTF-8 sequence.  On a cluster boundary too, except
	 * before a zero-width mark: known and left to the interface's owner
	 * (Home after a '\n' that marks follow, or a deletion that joins
	 * marks to a new base, leaves the cursor between base and marks). */
	FUZZ_CHECK(in->cur == in->len || ((unsigned char)s[in->cur] & 0xc0) != 0x80);
	uint32_t cp = 0;
	if (in->cur < in->len)
		utf8_decode(s + in->cur, in->len - in->cur, &cp);
	FUZZ_CHECK(i == in->cur || (in->cur < in->len && wrap_cpwidth(cp) == 0));
	FUZZ_CHECK(in->nhist <= in->max_hist);
	FUZZ_CHECK(in->hpos >= 0 && in->hpos <= in->nhist);
}

static void
layout_ok(const struct input *in, int width)
{
	struct wrap_line *rows;
	int crow, ccol;
	int n = input_layout(in, width, &rows, &crow, &ccol);
	FUZZ_CHECK(n >= 1);
	FUZZ_CHECK(crow >= 0 && crow < n);
	/* The cursor sits inside its row or just after it. */
	FUZZ_CHECK(in->cur >= rows[crow].start && in->cur <= rows[crow].end);
	FUZZ_CHECK(ccol >= 0 && ccol <= wrap_width(input_text(in) + rows[crow].start, rows[crow].end - rows[crow].start));
	for (int r = 0; r < n; r++) {
		FUZZ_CHECK(rows[r].start <= rows[r].end && rows[r].end <= in->len);
		FUZZ_CHECK(r == 0 || rows[r].start >= rows[r - 1].end);
		FUZZ_CHECK(wrap_width(input_text(in) + rows[r].start, rows[r].end - rows[r].start) <=
		    (width > 1 ? width - 1 : 1) || rows[r].end == wrap_next(input_text(in), in->len, rows[r].start, NULL));
	}
	free(rows);
}

/* Byte 0: the width; then one key per byte, some followed by their
 * arguments.  If byte 0 is 0xff the rest is a history file instead. */
int
fuzz_input(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		init = 1;
		if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
			setlocale(LC_CTYPE, "C.utf8");
	}
	if (size < 1)
		return 0;
	struct input in;
	input_init(&in);
	in.max_hist = 8;
	if (data[0] == 0xff) {
		char *err = NULL;
		if (input_history_load(&in, memfd_path(data + 1, size - 1), &err) != 0)
			check_err(err);
		FUZZ_CHECK(in.nhist <= in.max_hist);
		for (int i = 0; i < in.nhist; i++)
			FUZZ_CHECK(in.hist[i][0] != '\0');
		while (input_history_prev(&in) == 0)
			input_ok(&in);
		input_free(&in);
		return 0;
	}
	int width = 1 + data[0] % 24;
	static const uint32_t cps[] = {
		'a', ' ', '\n', '_', '\t', 0xe9, 0x301, 0x4e16, 0x1f600, 0x200d, 0xfe0f, 0x1f3fb, 0x7f, 0x1b,
	};
	for (size_t i = 1; i < size; i++) {
		uint8_t op = data[i];
		switch (op % 22) {
		case 0:
			input_insert_cp(&in, cps[(op / 22) % (sizeof cps / sizeof cps[0])]);
			break;
		case 1:
			if (i + 3 < size) {
				uint32_t cp = ((uint32_t)data[i + 1] << 16 | (uint32_t)data[i + 2] << 8 | data[i + 3]) % 0x110000;
				i += 3;
				if (cp != 0 && (cp < 0xd800 || cp > 0xdfff))
					input_insert_cp(&in, cp);
			}
			break;
		case 2: {
			/* Pasted bytes, when they are valid UTF-8 without NUL. */
			size_t n = op / 22 + 1;
			if (i + n < size && utf8_ok((const char *)data + i + 1, n) && memchr(data + i + 1, 0, n) == NULL)
				input_insert(&in, (const char *)data + i + 1, n);
			i += n;
			break;
		}
		case 3: input_left(&in); break;
		case 4: input_right(&in); break;
		case 5: input_home(&in); break;
		case 6: input_end(&in); break;
		case 7: input_word_left(&in); break;
		case 8: input_word_right(&in); break;
		case 9: input_backspace(&in); break;
		case 10: input_delete(&in); break;
		case 11: input_kill_word(&in); break;
		case 12: input_kill_line(&in); break;
		case 13: input_kill_eol(&in); break;
		case 14: input_up(&in, width); break;
		case 15: input_down(&in, width); break;
		case 16:
			input_history_add(&in, input_text(&in));
			input_clear(&in);
			break;
		case 17: input_history_prev(&in); break;
		case 18: input_history_next(&in); break;
		case 19: layout_ok(&in, width); break;
		case 20: width = 1 + op / 22; break;
		case 21: {
			char *t = strdup(input_text(&in));
			FUZZ_CHECK(t != NULL);
			input_set(&in, t);
			free(t);
			break;
		}
		}
		input_ok(&in);
	}
	layout_ok(&in, width);
	input_free(&in);
	return 0;
}

const struct fuzz_target fuzz_targets[] = {
	{ "gguf", fuzz_gguf, 0 },
	{ "l2c", fuzz_l2c, 1 },
	{ "tok_encode", fuzz_tok_encode, 1 },
	{ "tok_decode", fuzz_tok_decode, 1 },
	{ "dialog", fuzz_dialog, 1 },
	{ "import", fuzz_import, 0 },
	{ "input", fuzz_input, 0 },
	{ NULL, NULL, 0 },
};
