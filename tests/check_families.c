/*
 * check_families.c: the model families beyond LLaMA-2 (Llama 3, Llama 3.1,
 * Mistral, Zephyr/TinyLlama) against golden/families.json.
 *
 * - tokenizer: llama.cpp's ids for every text with the Llama 3 vocabulary
 *   (byte-level BPE), exactly; decoding them gives the text back, whole and
 *   streamed one token at a time.
 * - chat: every dialog rendered by chat_render (the API) and by
 *   `llama2-chat render --ids` (the binary) equals the golden input_ids and
 *   text (Jinja's rendering of the file's own template), Llama 3.1's date
 *   pinned to the template's default; a case with `error` is refused.  A
 *   conversation built turn by turn (chat_build, as the worker does) gives
 *   the same ids as the whole dialog, also after an overflow drops the
 *   oldest exchanges (the system prompt stays, in the family's format).
 * - logits: llama.cpp's greedy ids over the robust prefix and its top-5
 *   logits at every position, within check_model.c's tolerances.
 * - special tokens: "<|eot_id|>" typed by a user is text; replies end at
 *   every end-of-generation id; an unknown tokenizer.ggml.pre and an unknown
 *   chat template are refused with one clear line.
 * - end to end: `llama2-chat -m fixture-llama3-f16.gguf -p Hi -n 8` streams
 *   and saves; a stopped reply is closed with <|eot_id|>; the next turn
 *   resumes from the snapshot.
 */
#include "tests/testutil.h"
#include "engine/chat.h"
#include "engine/worker.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATE_PIN "26 Jul 2024"
#define EOT_ID 128009   /* <|eot_id|> in the Llama 3 vocabulary */

static struct engine_model *
open_model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *path = fixture_path(rel);
	ck_assert_msg(path != NULL, "%s missing", rel);
	char *err = NULL;
	struct engine_model *m = engine_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s: %s", path, err);
	free(path);
	chat_tmpl_set_date(m, DATE_PIN);
	return m;
}

static int32_t *
json_ids(json_t *a, int *n)
{
	*n = (int)json_array_size(a);
	int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
	for (int i = 0; i < *n; i++)
		ids[i] = (int32_t)json_integer_value(json_array_get(a, (size_t)i));
	return ids;
}

static int
ids_equal(const int32_t *a, int na, const int32_t *b, int nb)
{
	return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* roles and contents of a golden "messages" array (pointers into j). */
static int
json_dialog(json_t *msgs, int **roles, const char ***contents)
{
	int n = (int)json_array_size(msgs);
	*roles = calloc((size_t)n + 1, sizeof **roles);
	*contents = calloc((size_t)n + 1, sizeof **contents);
	for (int i = 0; i < n; i++) {
		json_t *m = json_array_get(msgs, (size_t)i);
		(*roles)[i] = chat_role_parse(json_string_value(json_object_get(m, "role")));
		(*contents)[i] = json_string_value(json_object_get(m, "content"));
		ck_assert_int_ge((*roles)[i], 0);
	}
	return n;
}

START_TEST(test_bpe_tokenizer_golden)
{
	json_t *g = golden_load("families.json");
	json_t *cases = json_object_get(g, "tokenizer");
	ck_assert(json_array_size(cases) > 0);
	struct engine_model *m = open_model("fixture-llama3-f16.gguf");
	int bad = 0;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		const char *text = json_string_value(json_object_get(c, "text"));
		int nw;
		int32_t *want = json_ids(json_object_get(c, "ids"), &nw), *got;
		int ng = engine_tokenize(m, text, strlen(text), 0, &got);
		int ok = ids_equal(got, ng, want, nw);
		/* Back to the same text: whole, and streamed token by token. */
		char *whole = engine_detokenize(m, got, ng);
		char *stream = calloc(1, strlen(text) * 3 + engine_detok_max(m) + 16), *buf = malloc(engine_detok_max(m));
		struct engine_detok d;
		engine_detok_init(&d, 0);
		for (int k = 0; k < ng; k++) {
			size_t l = engine_detok_push(m, &d, got[k], buf);
			ck_assert_msg(l == strlen(buf), "case %zu: a chunk holds a NUL", i);
			strcat(stream, buf);
		}
		engine_detok_flush(&d, buf);
		strcat(stream, buf);
		if (!ok || strcmp(whole, text) != 0 || strcmp(stream, text) != 0) {
			fprintf(stderr, "families tokenizer case %zu (%s): ids %s, decode '%s', stream '%s'\n", i, text,
			    ok ? "ok" : "DIFF", whole, stream);
			bad++;
		}
		free(whole);
		free(stream);
		free(buf);
		free(want);
		free(got);
	}
	fprintf(stderr, "families: %zu/%zu Llama 3 tokenizer cases match\n", json_array_size(cases) - (size_t)bad,
	    json_array_size(cases));
	ck_assert_msg(bad == 0, "%d tokenizer cases differ", bad);
	engine_close(m);
	json_decref(g);
}
END_TEST

/* Hostile and long input: malformed UTF-8 reads as U+FFFD (as llama.cpp
 * does), long runs of one class stay fast, valid text always decodes back
 * to itself. */
START_TEST(test_bpe_hostile_input)
{
	struct engine_model *m = open_model("fixture-llama3-f16.gguf");
	int32_t *ids, *ref;
	int n = engine_tokenize(m, "a\xff\xc3z", 4, 0, &ids);
	int nr = engine_tokenize(m, "a\xef\xbf\xbd\xef\xbf\xbdz", 8, 0, &ref);
	ck_assert_msg(ids_equal(ids, n, ref, nr), "malformed bytes are not read as U+FFFD");
	free(ids);
	free(ref);
	static char big[30001];
	const char *fill[] = { "a", " ", "7", "!", "\n", "\xe4\xb8\x96", "ab " };
	for (size_t f = 0; f < sizeof fill / sizeof *fill; f++) {
		size_t fl = strlen(fill[f]), k = 0;
		while (k + fl < sizeof big) {
			memcpy(big + k, fill[f], fl);
			k += fl;
		}
		big[k] = '\0';
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		n = engine_tokenize(m, big, k, 0, &ids);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		ck_assert_int_gt(n, 0);
		char *back = engine_detokenize(m, ids, n);
		ck_assert_msg(strcmp(back, big) == 0, "fill %zu does not decode back", f);
		ck_assert_msg(ms < 2000, "30 kB of one class took %.0f ms", ms);
		free(back);
		free(ids);
	}
	uint32_t r = 99;
	for (int it = 0; it < 300; it++) {
		char b[64];
		size_t len = 1 + it % 63;
		for (size_t i = 0; i < len; i++) {
			r = r * 1664525u + 1013904223u;
			b[i] = (char)(r >> 24);
		}
		n = engine_tokenize(m, b, len, 0, &ids);
		ck_assert_int_gt(n, 0);
		char *back = engine_detokenize(m, ids, n);
		ck_assert_ptr_nonnull(back);
		free(back);
		free(ids);
	}
	engine_close(m);
}
END_TEST

START_TEST(test_chat_render_golden_api)
{
	json_t *g = golden_load("families.json");
	json_t *cases = json_object_get(g, "chat");
	ck_assert(json_array_size(cases) > 0);
	int bad = 0, n_err = 0;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		struct engine_model *m = open_model(json_string_value(json_object_get(c, "model")));
		int *roles;
		const char **contents;
		int n = json_dialog(json_object_get(c, "messages"), &roles, &contents);
		int32_t *ids = NULL;
		int nid = 0;
		char *text = NULL, *err = NULL;
		int rc = chat_render(m, roles, contents, n, &ids, &nid, &text, &err);
		if (json_object_get(c, "error")) {
			n_err++;
			if (rc == 0 || err == NULL || strlen(err) < 10) {
				fprintf(stderr, "families chat case %zu: not refused\n", i);
				bad++;
			}
		} else {
			int nw;
			int32_t *want = json_ids(json_object_get(c, "input_ids"), &nw);
			const char *wt = json_string_value(json_object_get(c, "text"));
			if (rc != 0 || !ids_equal(ids, nid, want, nw) || strcmp(text, wt) != 0) {
				fprintf(stderr, "families chat case %zu (%s): %s\n", i, chat_tmpl_name(m),
				    rc ? err : "ids or text differ");
				bad++;
			}
			free(want);
		}
		free(ids);
		free(text);
		free(err);
		free(roles);
		free(contents);
		engine_close(m);
	}
	fprintf(stderr, "families: %zu chat cases (%d refusals) through chat_render, %d differ\n",
	    json_array_size(cases), n_err, bad);
	ck_assert_msg(bad == 0, "%d chat cases differ", bad);
	json_decref(g);
}
END_TEST

/* The same dialogs built as a conversation, a turn at a time (what the
 * worker feeds the model): the same ids as rendering the dialog whole. */
START_TEST(test_chat_build_equals_render)
{
	json_t *g = golden_load("families.json");
	json_t *cases = json_object_get(g, "chat");
	int checked = 0;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		if (json_object_get(c, "error"))
			continue;
		int *roles;
		const char **contents;
		int n = json_dialog(json_object_get(c, "messages"), &roles, &contents);
		int k = n > 0 && roles[0] == CHAT_SYSTEM ? 1 : 0, shape = n > k && roles[n - 1] == CHAT_USER;
		for (int j = k; j < n; j++)
			shape = shape && roles[j] == ((j - k) % 2 ? CHAT_ASSISTANT : CHAT_USER);
		if (!shape) {
			free(roles);
			free(contents);
			continue;
		}
		struct engine_model *m = open_model(json_string_value(json_object_get(c, "model")));
		struct chat ch;
		chat_init(&ch);
		if (k)
			chat_set_system(&ch, contents[0]);
		for (int j = k; j < n; j++)
			chat_push(&ch, roles[j], contents[j], NULL, 0);
		int32_t *ids;
		int nid, dropped;
		char *err = NULL;
		ck_assert_msg(chat_build(&ch, m, 4096, 64, &ids, &nid, &dropped, &err) == 0, "case %zu: %s", i, err);
		int nw;
		int32_t *want = json_ids(json_object_get(c, "input_ids"), &nw);
		ck_assert_msg(ids_equal(ids, nid, want, nw), "case %zu (%s): chat_build differs from the dialog", i,
		    chat_tmpl_name(m));
		checked++;
		free(want);
		free(ids);
		chat_free(&ch);
		free(roles);
		free(contents);
		engine_close(m);
	}
	ck_assert_int_gt(checked, 0);
	json_decref(g);
}
END_TEST

/* The window overflows: whole exchanges go and the system prompt stays, in
 * each family's own format: the window is exactly the fresh rendering of
 * the system prompt and the messages left. */
START_TEST(test_overflow_each_family)
{
	const char *files[] = { "fixture-llama3-f16.gguf", "fixture-llama31-q4_k_m.gguf", "fixture-mistral-v1-q8_0.gguf",
		"fixture-zephyr-q8_0.gguf" };
	for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
		struct engine_model *m = open_model(files[f]);
		struct chat ch;
		chat_init(&ch);
		chat_set_system(&ch, "SYSTEM RULES");
		int roles[40];
		const char *contents[40];
		char texts[40][64];
		int n = 0;
		for (int i = 0; i < 12; i++) {
			snprintf(texts[n], 64, "message number %d with some words", i);
			chat_push(&ch, CHAT_USER, texts[n], NULL, 0);
			snprintf(texts[n + 1], 64, "a reply of several words to %d", i);
			chat_push(&ch, CHAT_ASSISTANT, texts[n + 1], NULL, 0);
			n += 2;
		}
		chat_push(&ch, CHAT_USER, "the last question", NULL, 0);
		int32_t *ids, *want;
		int nid, nw, dropped;
		char *err = NULL;
		ck_assert_msg(chat_build(&ch, m, 256, 32, &ids, &nid, &dropped, &err) == 0, "%s: %s", files[f], err);
		ck_assert_int_gt(dropped, 0);
		ck_assert_int_eq(dropped % 2, 0);
		ck_assert_int_le(nid + 32, 256);
		int k = 0;
		roles[k] = CHAT_SYSTEM;
		contents[k++] = "SYSTEM RULES";
		for (int i = dropped; i < n; i++) {
			roles[k] = i % 2 ? CHAT_ASSISTANT : CHAT_USER;
			contents[k++] = texts[i];
		}
		roles[k] = CHAT_USER;
		contents[k++] = "the last question";
		ck_assert_int_eq(chat_render(m, roles, contents, k, &want, &nw, NULL, &err), 0);
		ck_assert_msg(ids_equal(ids, nid, want, nw), "%s: the window after dropping %d messages is not the "
		    "system prompt and the rest", files[f], dropped);
		free(ids);
		free(want);
		chat_free(&ch);
		engine_close(m);
	}
}
END_TEST

START_TEST(test_chat_render_golden_binary)
{
	json_t *g = golden_load("families.json");
	json_t *cases = json_object_get(g, "chat");
	const char *env[] = { "LLAMA2_CHAT_DATE=" DATE_PIN, NULL };
	int bad = 0;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		json_t *c = json_array_get(cases, i);
		char rel[128];
		snprintf(rel, sizeof rel, "models/%s", json_string_value(json_object_get(c, "model")));
		char *path = fixture_path(rel);
		char *dialog = json_dumps(json_object_get(c, "messages"), 0);
		const char *argv[] = { "llama2-chat", "render", "--ids", "-m", path, NULL };
		char *out = NULL, *err = NULL;
		int rc = run_binary(argv, dialog, &out, &err, env, 60);
		if (json_object_get(c, "error")) {
			if (rc != 1 || strncmp(err, "llama2-chat: ", 13) != 0 || strchr(err, '\n') != strrchr(err, '\n')) {
				fprintf(stderr, "families render case %zu: exit %d, stderr '%s'\n", i, rc, err);
				bad++;
			}
		} else {
			int nw;
			int32_t *want = json_ids(json_object_get(c, "input_ids"), &nw);
			char *p = out;
			int k = 0, same = rc == 0;
			for (; same && k < nw; k++) {
				char *end;
				long v = strtol(p, &end, 10);
				same = end != p && v == want[k];
				p = end;
			}
			same = same && strspn(p, " \n") == strlen(p);
			if (!same) {
				fprintf(stderr, "families render case %zu: exit %d, '%.200s' %s\n", i, rc, out, err);
				bad++;
			}
			free(want);
		}
		free(out);
		free(err);
		free(dialog);
		free(path);
	}
	ck_assert_msg(bad == 0, "%d render cases differ", bad);
	json_decref(g);
}
END_TEST

/* ------------------------------------------------------------- logits */

#define FLIP_ABS 0.35

static int
argmax(const float *l, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
}

static double
topk_err(const float *l, json_t *top)
{
	double worst = 0;
	for (size_t k = 0; k < json_array_size(top); k++) {
		json_t *e = json_array_get(top, k);
		int id = (int)json_integer_value(json_array_get(e, 0));
		double ref = json_number_value(json_array_get(e, 1));
		worst = fmax(worst, fabs(l[id] - ref) / fmax(1.0, fabs(ref)));
	}
	return worst;
}

/*
 * As check_model.c: teacher-forced greedy over the robust prefix (the
 * first margin under 0.05 for F16, under 0.35 for the Q4_K_M file: one 8-bit
 * activation rounding can move a logit by ~0.3), and the top-5 logits at
 * every prompt and greedy position within 1e-3 relative (F16) or 3e-2
 * (Q4_K_M), the tolerances check_model.c uses for the LLaMA-2 fixtures.
 */
START_TEST(test_logits_golden)
{
	json_t *g = golden_load("families.json");
	json_t *cases = json_object_get(g, "cases");
	ck_assert(json_array_size(cases) > 0);
	int fails = 0;
	for (size_t ci = 0; ci < json_array_size(cases); ci++) {
		json_t *c = json_array_get(cases, ci);
		const char *model = json_string_value(json_object_get(c, "model"));
		int quant = strstr(model, "f16") == NULL;
		double tol = quant ? 3e-2 : 1e-3, robust_margin = quant ? 0.35 : 0.05;
		struct engine_model *m = open_model(model);
		const char *prompt = json_string_value(json_object_get(c, "prompt"));
		int np, ng;
		int32_t *pids = json_ids(json_object_get(c, "prompt_ids"), &np);
		int32_t *gids = json_ids(json_object_get(c, "greedy_ids"), &ng);
		json_t *margins = json_object_get(c, "greedy_margins");
		int robust = 0;
		while (robust < ng && json_number_value(json_array_get(margins, (size_t)robust)) >= robust_margin)
			robust++;
		int32_t *ours;
		int no = engine_tokenize(m, prompt, strlen(prompt), 1, &ours);
		int tok_ok = ids_equal(ours, no, pids, np);
		free(ours);

		struct engine_ctx_params p;
		engine_ctx_params_default(&p);
		p.n_ctx = 256;
		p.n_batch = 16;
		/* families.json was made with a float32 cache (golden/README.md),
		 * and it shows: with one, the Q4_K_M file agrees to ~4e-7, with a
		 * float16 one only to ~1e-2. */
		p.kv_f32 = 1;
		char *err = NULL;
		struct engine_ctx *ctx = engine_ctx_new(m, &p, &err);
		ck_assert_msg(ctx != NULL, "%s", err);
		ck_assert_int_eq(engine_decode(ctx, pids, np, 1, NULL, &err), 0);
		double worst_prompt = 0, worst_greedy = 0;
		for (int i = 0; i < np; i++)
			worst_prompt = fmax(worst_prompt, topk_err(engine_logits(ctx, i),
			    json_array_get(json_object_get(c, "topk_prompt"), (size_t)i)));
		int vocab = engine_info(m)->n_vocab, wrong = 0;
		const float *l = engine_logits(ctx, np - 1);
		for (int k = 0; k < ng; k++) {
			if (k < robust && argmax(l, vocab) != gids[k])
				wrong++;
			worst_greedy = fmax(worst_greedy, topk_err(l, json_array_get(json_object_get(c, "topk_greedy"),
			    (size_t)k)));
			if (k + 1 < ng) {
				ck_assert_int_eq(engine_decode(ctx, &gids[k], 1, 0, NULL, &err), 0);
				l = engine_logits(ctx, 0);
			}
		}
		int ok = tok_ok && wrong == 0 && worst_prompt <= tol && worst_greedy <= tol;
		fprintf(stderr, "%-28s %-12.12s tok %s robust greedy %2d wrong %d, max rel err prompt %.2e greedy %.2e%s\n",
		    model, prompt, tok_ok ? "ok" : "DIFF", robust, wrong, worst_prompt, worst_greedy, ok ? "" : "  <-- FAIL");
		fails += !ok;
		engine_ctx_free(ctx);
		engine_close(m);
		free(pids);
		free(gids);
	}
	ck_assert_msg(fails == 0, "%d family logit cases differ from llama.cpp", fails);
	json_decref(g);
}
END_TEST

/* ------------------------------------------------------ special tokens */

START_TEST(test_eot_typed_is_text)
{
	struct engine_model *m = open_model("fixture-llama3-f16.gguf");
	const char *typed = "stop <|eot_id|> here <|start_header_id|>";
	int roles[] = { CHAT_USER };
	const char *contents[] = { typed };
	int32_t *ids, *plain;
	int n;
	char *err = NULL;
	ck_assert_int_eq(chat_render(m, roles, contents, 1, &ids, &n, NULL, &err), 0);
	/* The template's own specials: BOS, two headers and one <|eot_id|>. */
	int n_eot = 0, n_hdr = 0;
	for (int i = 0; i < n; i++) {
		n_eot += ids[i] == EOT_ID;
		n_hdr += ids[i] == 128006;
	}
	ck_assert_int_eq(n_eot, 1);
	ck_assert_int_eq(n_hdr, 2);
	/* The typed text is tokenized as ordinary text, in place. */
	int np = engine_tokenize(m, typed, strlen(typed), 0, &plain);
	ck_assert_int_gt(np, 6);
	int found = 0;
	for (int i = 0; i + np <= n && !found; i++)
		found = memcmp(ids + i, plain, (size_t)np * sizeof *ids) == 0;
	ck_assert_msg(found, "the typed special text is not encoded as text");
	free(ids);
	free(plain);
	engine_close(m);
	/* SentencePiece files too: "</s>" typed into a Zephyr turn is text. */
	m = open_model("fixture-zephyr-q8_0.gguf");
	contents[0] = "a</s>b";
	ck_assert_int_eq(chat_render(m, roles, contents, 1, &ids, &n, NULL, &err), 0);
	int n_eos = 0;
	for (int i = 0; i < n; i++)
		n_eos += ids[i] == engine_info(m)->eos;
	ck_assert_int_eq(n_eos, 1);   /* only the template's */
	free(ids);
	engine_close(m);
}
END_TEST

START_TEST(test_end_of_generation)
{
	/* The fixtures carry Llama 3.0's vocabulary, where <|eom_id|> (3.1's)
	 * is still a reserved slot: the two others must end a reply. */
	struct engine_model *m = open_model("fixture-llama31-q4_k_m.gguf");
	const char *eog[] = { "<|eot_id|>", "<|end_of_text|>" };
	for (int i = 0; i < 2; i++) {
		int n = -1;
		for (int id = 128000; id < engine_info(m)->n_vocab && n < 0; id++) {
			size_t len;
			const char *p = engine_token_piece(m, id, &len);
			if (p && len == strlen(eog[i]) && memcmp(p, eog[i], len) == 0)
				n = id;
		}
		ck_assert_msg(n >= 0, "%s not in the vocabulary", eog[i]);
		ck_assert_msg(engine_is_eog(m, n), "%s does not end a reply", eog[i]);
	}
	ck_assert(!engine_is_eog(m, 128000));
	ck_assert(!engine_is_eog(m, 128002));   /* <|reserved_special_token_0|> */
	ck_assert(!engine_is_eog(m, 9906));
	ck_assert_int_eq(chat_tmpl_reply_end(m), EOT_ID);
	engine_close(m);
	m = open_model("fixture-mistral-v1-q8_0.gguf");
	ck_assert(engine_is_eog(m, 2));
	ck_assert_int_eq(chat_tmpl_reply_end(m), 2);
	engine_close(m);
}
END_TEST

/* A header-only GGUF with a byte-level vocabulary and pre-tokenizer pre. */
static char *
write_bpe_header(const char *dir, const char *pre)
{
	const char *tokens[] = { "a", "b", "ab", "<|begin_of_text|>" };
	const char *merges[] = { "a b" };
	int32_t types[] = { 1, 1, 1, 3 };
	struct gguf_writer *w = gguf_writer_new();
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", 8);
	gguf_w_u32(w, "llama.feed_forward_length", 16);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", 2);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
	gguf_w_str(w, "tokenizer.ggml.pre", pre);
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", tokens, NULL, 4);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, 4);
	gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 1);
	gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 3);
	gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 3);
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/bpe-%s.gguf", dir, pre), 0);
	char *err = NULL;
	ck_assert_msg(gguf_writer_write(w, path, NULL, NULL, &err) == 0, "%s", err);
	gguf_writer_free(w);
	return path;
}

START_TEST(test_unknown_pre_refused)
{
	char *dir = tmpdir_new();
	char *path = write_bpe_header(dir, "qwen2");
	char *err = NULL;
	ck_assert_ptr_null(engine_open(path, NULL, &err));
	ck_assert_msg(err && strstr(err, "'qwen2'") && strstr(err, "tokenizer.ggml.pre"), "%s", err);
	free(err);
	const char *argv[] = { "llama2-chat", "info", "-m", path, NULL };
	char *out = NULL, *serr = NULL;
	ck_assert_int_eq(run_binary(argv, NULL, &out, &serr, NULL, 30), 1);
	ck_assert_msg(strstr(serr, path) && strstr(serr, "qwen2") && strchr(serr, '\n') == strrchr(serr, '\n'),
	    "stderr: %s", serr);
	free(out);
	free(serr);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

static uint32_t rng = 7;

static int
tiny_data(void *ud, int idx, FILE *f, size_t nbytes)
{
	for (size_t i = 0; i < nbytes / 4; i++) {
		rng = rng * 1664525u + 1013904223u;
		float v = ((rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
		fwrite(&v, 4, 1, f);
	}
	return 0;
}

/* A complete tiny SentencePiece model whose chat template is tmpl. */
static char *
write_tiny_with_template(const char *dir, const char *tmpl)
{
	enum { V = 261, D = 8, F = 16 };
	static char pieces[V][16];
	const char *pp[V];
	float scores[V];
	int32_t types[V];
	for (int i = 0; i < V; i++) {
		snprintf(pieces[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : i == 2 ? "</s>" : "");
		if (i >= 3 && i < 259)
			snprintf(pieces[i], 16, "<0x%02X>", i - 3);
		if (i == 259)
			snprintf(pieces[i], 16, "\xe2\x96\x81");
		if (i == 260)
			snprintf(pieces[i], 16, "a");
		pp[i] = pieces[i];
		scores[i] = 0;
		types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
	}
	struct gguf_writer *w = gguf_writer_new();
	gguf_w_str(w, "general.architecture", "llama");
	gguf_w_u32(w, "llama.context_length", 64);
	gguf_w_u32(w, "llama.embedding_length", D);
	gguf_w_u32(w, "llama.feed_forward_length", F);
	gguf_w_u32(w, "llama.block_count", 1);
	gguf_w_u32(w, "llama.attention.head_count", 2);
	gguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gguf_w_str(w, "tokenizer.ggml.model", "llama");
	gguf_w_arr_str(w, "tokenizer.ggml.tokens", pp, NULL, V);
	gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, V);
	gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, V);
	gguf_w_str(w, "tokenizer.chat_template", tmpl);
	struct { const char *n; int64_t a, b; } ts[] = {
		{ "token_embd.weight", D, V }, { "output_norm.weight", D, 1 }, { "blk.0.attn_norm.weight", D, 1 },
		{ "blk.0.attn_q.weight", D, D }, { "blk.0.attn_k.weight", D, D }, { "blk.0.attn_v.weight", D, D },
		{ "blk.0.attn_output.weight", D, D }, { "blk.0.ffn_norm.weight", D, 1 },
		{ "blk.0.ffn_gate.weight", D, F }, { "blk.0.ffn_down.weight", F, D }, { "blk.0.ffn_up.weight", D, F },
	};
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		int64_t ne[2] = { ts[i].a, ts[i].b };
		gguf_w_tensor(w, ts[i].n, QT_F32, ts[i].b == 1 ? 1 : 2, ne);
	}
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/tiny-tmpl.gguf", dir), 0);
	char *err = NULL;
	ck_assert_msg(gguf_writer_write(w, path, tiny_data, NULL, &err) == 0, "%s", err);
	gguf_writer_free(w);
	return path;
}

START_TEST(test_unknown_template)
{
	char *dir = tmpdir_new();
	char *path = write_tiny_with_template(dir, "{{ messages | made_up_format }}");
	const char *dialog = "[{\"role\": \"user\", \"content\": \"a\"}]";
	char *out = NULL, *err = NULL;
	/* Not a known family: refused, naming --chat-template. */
	const char *argv[] = { "llama2-chat", "render", "-m", path, NULL };
	ck_assert_int_eq(run_binary(argv, dialog, &out, &err, NULL, 30), 1);
	ck_assert_msg(strstr(err, "--chat-template") && strchr(err, '\n') == strrchr(err, '\n'), "stderr: %s", err);
	free(out);
	free(err);
	const char *info[] = { "llama2-chat", "info", "-m", path, NULL };
	ck_assert_int_eq(run_binary(info, NULL, &out, &err, NULL, 30), 0);
	ck_assert_msg(strstr(out, "chat format:  unknown"), "%s", out);
	free(out);
	free(err);
	/* Asked for by name, a format is used. */
	const char *forced[] = { "llama2-chat", "render", "-m", path, "--chat-template", "llama2", NULL };
	ck_assert_int_eq(run_binary(forced, dialog, &out, &err, NULL, 30), 0);
	ck_assert_msg(strcmp(out, "<s>[INST] a [/INST]\n") == 0, "%s", out);
	free(out);
	free(err);
	/* ... and a name that is none is a usage error. */
	const char *bogus[] = { "llama2-chat", "render", "-m", path, "--chat-template", "vicuna", NULL };
	ck_assert_int_eq(run_binary(bogus, dialog, &out, &err, NULL, 30), 2);
	ck_assert_msg(strstr(err, "--chat-template") && strstr(err, "vicuna"), "stderr: %s", err);
	free(out);
	free(err);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

/* --chat-template and the config key override the file's template. */
START_TEST(test_template_override)
{
	char *path = fixture_path("models/fixture-llama3-f16.gguf");
	char *dir = tmpdir_new(), *cfg;
	ck_assert_int_ge(asprintf(&cfg, "%s/config", dir), 0);
	FILE *f = fopen(cfg, "w");
	fputs("chat_template = chatml\n", f);
	fclose(f);
	const char *dialog = "[{\"role\": \"user\", \"content\": \"Hi\"}]";
	char *out = NULL, *err = NULL;
	const char *a1[] = { "llama2-chat", "render", "-m", path, "--config", cfg, NULL };
	ck_assert_int_eq(run_binary(a1, dialog, &out, &err, NULL, 30), 0);
	ck_assert_msg(strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n\n") == 0, "%s", out);
	free(out);
	free(err);
	const char *a2[] = { "llama2-chat", "info", "-m", path, "--chat-template", "mistral", NULL };
	ck_assert_int_eq(run_binary(a2, NULL, &out, &err, NULL, 30), 0);
	ck_assert_msg(strstr(out, "chat format:  mistral"), "%s", out);
	free(out);
	free(err);
	free(cfg);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

/* Llama 3.1's "Today Date" is today's unless pinned. */
START_TEST(test_llama31_today)
{
	struct engine_model *m = open_model("fixture-llama31-q4_k_m.gguf");
	chat_tmpl_set_date(m, NULL);
	int roles[] = { CHAT_USER };
	const char *contents[] = { "Hi" };
	int32_t *ids;
	int n;
	char *text, *err = NULL, want[64], line[80];
	ck_assert_int_eq(chat_render(m, roles, contents, 1, &ids, &n, &text, &err), 0);
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(want, sizeof want, "%d %b %Y", &tm);
	snprintf(line, sizeof line, "Today Date: %s\n", want);
	ck_assert_msg(strstr(text, line), "%s", text);
	free(ids);
	free(text);
	engine_close(m);
}
END_TEST

/* ---------------------------------------------------------- end to end */

/* Stopped mid-reply, the reply is closed with <|eot_id|> and the next turn
 * reuses the cache up to it. */
START_TEST(test_worker_stop_resume_llama3)
{
	struct engine_model *m = open_model("fixture-llama3-f16.gguf");
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	char *err = NULL;
	struct worker *w = worker_new(m, &p, &err);
	ck_assert_msg(w != NULL, "%s", err);
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	s.ignore_eos = 1;
	int seq = worker_send(w, "Go on.", &s, 300), ntok = 0, done = 0;
	struct worker_event ev, fin = { 0 };
	while (!done) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_ERROR, "%s", ev.text);
		if (ev.seq == seq && ev.type == WEV_TOKEN && ++ntok == 3)
			worker_stop(w);
		if (ev.seq == seq && ev.type == WEV_DONE) {
			done = 1;
			fin = ev;
			continue;
		}
		worker_event_free(&ev);
	}
	ck_assert_int_eq(fin.stats.reason, ENGINE_STOP_USER);
	ck_assert_int_lt(fin.n_ids, 300);
	ck_assert_int_eq(fin.ids[fin.n_ids - 1], EOT_ID);
	worker_event_free(&fin);
	seq = worker_send(w, "And then?", &s, 4);
	done = 0;
	while (!done) {
		ck_assert(worker_wait(w, &ev, 60000));
		ck_assert_msg(ev.type != WEV_ERROR, "%s", ev.text);
		if (ev.seq == seq && ev.type == WEV_DONE) {
			done = 1;
			/* Everything before the new user turn was in the cache. */
			ck_assert_int_gt(ev.stats.n_reused, 10);
			ck_assert_int_lt(ev.stats.n_prompt, 20);
		}
		worker_event_free(&ev);
	}
	worker_free(w);
	engine_close(m);
}
END_TEST

/* Run the binary with env, wait until it has written at least `want` bytes
 * to stdout, interrupt it (SIGINT, as Ctrl-C) and return its exit status
 * (128 + signal if it died of one, -1 on timeout). */
static int
run_and_interrupt(const char *const *argv, const char *const *env, size_t want, int timeout_s)
{
	int o[2];
	ck_assert_int_eq(pipe(o), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(o[1], 1);
		close(o[0]);
		close(o[1]);
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(devnull, 2);
		for (int i = 0; env[i]; i++)
			putenv((char *)env[i]);
		execv(test_binary(), (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	size_t got = 0;
	char buf[256];
	time_t t0 = time(NULL);
	while (got < want && time(NULL) - t0 < timeout_s) {
		ssize_t r = read(o[0], buf, sizeof buf);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	kill(pid, SIGINT);
	while (read(o[0], buf, sizeof buf) > 0)
		;
	close(o[0]);
	int st;
	waitpid(pid, &st, 0);
	if (got < want)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(test_oneshot_llama3_binary)
{
	char *path = fixture_path("models/fixture-llama3-f16.gguf");
	char *dir = tmpdir_new();
	char e1[512], e2[512], e3[512], e4[512];
	snprintf(e1, sizeof e1, "XDG_DATA_HOME=%s/data", dir);
	snprintf(e2, sizeof e2, "XDG_CONFIG_HOME=%s/config", dir);
	snprintf(e3, sizeof e3, "XDG_CACHE_HOME=%s/cache", dir);
	snprintf(e4, sizeof e4, "HOME=%s", dir);
	const char *env[] = { e1, e2, e3, e4, "LLAMA2_CHAT_MODEL=", NULL };
	char *out = NULL, *err = NULL;
	const char *a1[] = { "llama2-chat", "-m", path, "-p", "Hi", "-n", "8", "--seed", "1", NULL };
	ck_assert_int_eq(run_binary(a1, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strlen(out) > 0, "no reply; stderr: %s", err);
	free(out);
	free(err);
	const char *a2[] = { "llama2-chat", "list", NULL };
	ck_assert_int_eq(run_binary(a2, NULL, &out, &err, env, 30), 0);
	ck_assert_msg(strstr(out, "Hi") != NULL, "not saved: %s", out);
	free(out);
	free(err);
	const char *a3[] = { "llama2-chat", "-m", path, "-c", "-p", "again", "-n", "4", "--verbose", NULL };
	ck_assert_int_eq(run_binary(a3, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strstr(err, "resumed") != NULL, "no resume from the snapshot: %s", err);
	free(out);
	free(err);
	/* Ctrl-C mid-reply: exit 130, the partial reply kept as stopped,
	 * and the conversation resumes after it. */
	const char *a4[] = { test_binary(), "-m", path, "-c", "-p", "Tell me more", "--ignore-eos", "-n", "3000", NULL };
	ck_assert_int_eq(run_and_interrupt(a4, env, 24, 120), 130);
	const char *a5[] = { "llama2-chat", "-m", path, "-c", "-p", "after the stop", "-n", "4", "--verbose", NULL };
	ck_assert_int_eq(run_binary(a5, NULL, &out, &err, env, 120), 0);
	ck_assert_msg(strstr(err, "resumed") != NULL, "no resume after the stop: %s", err);
	free(out);
	free(err);
	const char *a6[] = { "llama2-chat", "list", NULL };
	ck_assert_int_eq(run_binary(a6, NULL, &out, &err, env, 30), 0);
	char id[16] = "";
	const char *nl = strchr(out, '\n');
	ck_assert_ptr_nonnull(nl);
	sscanf(nl + 1, "%15s", id);
	free(out);
	free(err);
	const char *a7[] = { "llama2-chat", "export", id, NULL };
	ck_assert_int_eq(run_binary(a7, NULL, &out, &err, env, 30), 0);
	ck_assert_msg(strstr(out, "(stopped)") && strstr(out, "after the stop"), "%s", out);
	free(out);
	free(err);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

Suite *families_suite(void);

Suite *
families_suite(void)
{
	Suite *s = suite_create("families");
	TCase *tc = tcase_create("families");
	tcase_set_timeout(tc, 600);
	tcase_add_fixture_test(tc, test_bpe_tokenizer_golden);
	tcase_add_fixture_test(tc, test_bpe_hostile_input);
	tcase_add_fixture_test(tc, test_chat_render_golden_api);
	tcase_add_fixture_test(tc, test_chat_build_equals_render);
	tcase_add_fixture_test(tc, test_chat_render_golden_binary);
	tcase_add_fixture_test(tc, test_overflow_each_family);
	tcase_add_fixture_test(tc, test_logits_golden);
	tcase_add_fixture_test(tc, test_eot_typed_is_text);
	tcase_add_fixture_test(tc, test_end_of_generation);
	tcase_add_test(tc, test_unknown_pre_refused);
	tcase_add_test(tc, test_unknown_template);
	tcase_add_fixture_test(tc, test_template_override);
	tcase_add_fixture_test(tc, test_llama31_today);
	tcase_add_fixture_test(tc, test_worker_stop_resume_llama3);
	tcase_add_fixture_test(tc, test_oneshot_llama3_binary);
	suite_add_tcase(s, tc);
	return s;
}
