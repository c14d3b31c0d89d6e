/*
 * check_model.c: the forward pass against the reference implementations.
 *
 * fixtures.json holds what llama.cpp computes on small random-weight models
 * in every GGUF type; stories260K.json what llama2.c's run.c/runq.c compute
 * on a trained checkpoint.  We compare greedy ids over each case's robust
 * prefix (where no near-tie can flip the argmax) and the logits of the
 * reference's top-5 tokens at every position, with a per-type tolerance:
 * float types must agree to 1e-3 relative; quantized types quantize the
 * activations inside the matmuls as llama.cpp does, so they land close too,
 * but summation order differs (SIMD vs SIMD), so the bound is looser.
 */
#include "tests/testutil.h"
#include "engine/model.h"
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Tolerances, measured and explained.  F32 and F16 files agree with
 * llama.cpp to about 1e-5 relative.  Quantized files agree to ~1e-6 at every
 * position until the first "flip": a value that lands within a rounding
 * error of a half-step of the 8-bit activation quantizer rounds the other
 * way because llama.cpp's kernels (repacked Q4_0/Q4_K GEMMs, tiled sgemm)
 * sum floats in another order.  One flipped activation step moves the
 * logits by up to ~0.3 (2.5e-2 relative at logits of 12-16); BF16's 8-bit
 * mantissa flips the same way, an order of magnitude smaller.  Greedy ids
 * are compared teacher-forced over the robust prefix wherever the
 * reference's margin exceeds what such a flip can move (FLIP_ABS).
 */
#define FLIP_ABS 0.35

static double
tolerance_for(const char *model)
{
	if (strstr(model, "bf16"))
		return 5e-3;
	if (strstr(model, "f32") || strstr(model, "f16"))
		return 1e-3;
	return 3e-2;
}

static int
argmax(const float *l, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[b])
			b = i;
	return b;
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

/* Max relative error of logits l against one top-5 list [[id, logit], ...]. */
static double
topk_err(const float *l, json_t *top)
{
	double worst = 0;
	for (size_t k = 0; k < json_array_size(top); k++) {
		json_t *e = json_array_get(top, k);
		int id = (int)json_integer_value(json_array_get(e, 0));
		double ref = json_number_value(json_array_get(e, 1));
		double err = fabs(l[id] - ref) / fmax(1.0, fabs(ref));
		if (err > worst)
			worst = err;
	}
	return worst;
}

/*
 * q8: the KV cache in q8_0 (--kv-q8).  Its K and V carry an 8-bit rounding
 * (a step of 1/127 of each 32-value block's largest) on top of whatever the
 * file's own type costs.  Measured on the float files (where nothing else
 * rounds): at most 7e-3 relative against llama.cpp's float16 cache, vs
 * 1e-3 for our own float16 cache.  So the bound is the file's own plus
 * KV_Q8_TOL, and the greedy rule is unchanged: no id differs where the
 * reference's margin is clear.
 */
#define KV_Q8_TOL 1e-2

static void
fixtures_golden(int q8)
{
	json_t *g = golden_load("fixtures.json");
	json_t *cases = json_object_get(g, "cases");
	ck_assert(json_array_size(cases) > 0);
	char last_model[128] = "";
	struct engine_model *em = NULL;
	int n_cases = 0, n_fail = 0, n_steps = 0, n_steps_match = 0, n_exact = 0, n_pos = 0;
	for (size_t ci = 0; ci < json_array_size(cases); ci++) {
		json_t *c = json_array_get(cases, ci);
		const char *model = json_string_value(json_object_get(c, "model"));
		if (strcmp(model, last_model) != 0) {
			engine_close(em);
			char rel[256];
			snprintf(rel, sizeof rel, "models/%s", model);
			char *path = fixture_path(rel);
			ck_assert_msg(path != NULL, "%s missing", rel);
			char *err = NULL;
			em = engine_open(path, NULL, &err);
			ck_assert_msg(em != NULL, "%s: %s", path, err);
			free(path);
			snprintf(last_model, sizeof last_model, "%s", model);
		}
		const char *prompt = json_string_value(json_object_get(c, "prompt"));
		int np, ng;
		int32_t *pids = json_ids(json_object_get(c, "prompt_ids"), &np);
		int32_t *gids = json_ids(json_object_get(c, "greedy_ids"), &ng);
		int robust = (int)json_integer_value(json_object_get(c, "n_greedy_robust"));
		double tol = tolerance_for(model) + (q8 ? KV_Q8_TOL : 0);

		/* Our tokenizer gives llama.cpp's prompt ids. */
		int32_t *ours;
		int no = engine_tokenize(em, prompt, strlen(prompt), 1, &ours);
		int tok_ok = no == np && memcmp(ours, pids, (size_t)np * sizeof *ours) == 0;
		free(ours);

		struct engine_ctx_params p;
		engine_ctx_params_default(&p);
		p.n_ctx = 256;
		/* golden/README.md says llama.cpp ran with a float32 cache, but
		 * its logits are reproduced to the last printed digit only with
		 * a float16 one (position 0, where attention is V itself, shows
		 * it plainly): llama.cpp rounds K and V to f16 on this path. */
		p.kv_f32 = 0;
		p.kv_q8 = q8;
		p.n_batch = 32;    /* several batches for the long prompt */
		char *err = NULL;
		struct engine_ctx *ctx = engine_ctx_new(em, &p, &err);
		ck_assert_msg(ctx != NULL, "%s", err);
		ck_assert_int_eq(engine_decode(ctx, pids, np, 1, NULL, &err), 0);
		json_t *tp = json_object_get(c, "topk_prompt");
		double worst_prompt = 0;
		for (int i = 0; i < np; i++) {
			double e = topk_err(engine_logits(ctx, i), json_array_get(tp, (size_t)i));
			worst_prompt = fmax(worst_prompt, e);
			n_exact += e < 1e-5;
			n_pos++;
		}
		/* Greedy, fed the reference's ids so every step is comparable. */
		json_t *tg = json_object_get(c, "topk_greedy");
		json_t *margins = json_object_get(c, "greedy_margins");
		int n_match = 0, diverged = 0, clear_wrong = 0;
		double worst_greedy = 0;
		int vocab = engine_info(em)->n_vocab;
		const float *l = engine_logits(ctx, np - 1);
		for (int k = 0; k < ng; k++) {
			int a = argmax(l, vocab);
			if (!diverged && a == gids[k])
				n_match++;
			else
				diverged = 1;
			if (k < robust) {
				n_steps++;
				n_steps_match += a == gids[k];
				if (a != gids[k] && json_number_value(json_array_get(margins, (size_t)k)) > FLIP_ABS)
					clear_wrong++;
			}
			worst_greedy = fmax(worst_greedy, topk_err(l, json_array_get(tg, (size_t)k)));
			if (k + 1 < ng) {
				ck_assert_int_eq(engine_decode(ctx, &gids[k], 1, 0, NULL, &err), 0);
				l = engine_logits(ctx, 0);
			}
		}
		int ok = tok_ok && clear_wrong == 0 && worst_prompt <= tol && worst_greedy <= tol;
		fprintf(stderr, "%-26s %-12.12s tok %s greedy %2d/%2d (robust %2d) max rel err prompt %.2e greedy %.2e%s\n",
		    model, prompt, tok_ok ? "ok" : "DIFF", n_match, ng, robust, worst_prompt, worst_greedy,
		    ok ? "" : "  <-- FAIL");
		n_cases++;
		n_fail += !ok;
		engine_ctx_free(ctx);
		free(pids);
		free(gids);
	}
	engine_close(em);
	json_decref(g);
	fprintf(stderr, "fixtures%s: %d cases, %d failed; robust greedy steps %d/%d equal (teacher-forced); "
	    "prompt positions within 1e-5 of llama.cpp: %d/%d\n", q8 ? " (q8_0 KV cache)" : "", n_cases, n_fail,
	    n_steps_match, n_steps, n_exact, n_pos);
	ck_assert_msg(n_fail == 0, "%d of %d fixture cases differ from llama.cpp", n_fail, n_cases);
}

START_TEST(test_fixtures_golden)
{
	fixtures_golden(0);
}
END_TEST

START_TEST(test_fixtures_golden_kv_q8)
{
	fixtures_golden(1);
}
END_TEST

static void
stories_check(const char *file, const char *key)
{
	json_t *g = golden_load("stories260K.json");
	json_t *ref = json_object_get(g, key);
	int ng;
	int32_t *gids = json_ids(json_object_get(ref, "greedy_ids"), &ng);
	json_t *margins = json_object_get(ref, "margins");
	int robust = (int)json_integer_value(json_object_get(ref, "n_greedy_robust"));
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", file);
	char *path = fixture_path(rel);
	ck_assert_msg(path != NULL, "%s missing", rel);
	char *err = NULL;
	char *dir = tmpdir_new(), *tok512 = fixture_tok512(dir);
	ck_assert_ptr_nonnull(tok512);
	struct engine_model *em = engine_open(path, tok512, &err);
	ck_assert_msg(em != NULL, "%s: %s", path, err);
	free(tok512);
	tmpdir_remove(dir);
	int vocab = engine_info(em)->n_vocab;
	ck_assert_int_eq(vocab, 512);
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 512;
	p.kv_f32 = 1;
	struct engine_ctx *ctx = engine_ctx_new(em, &p, &err);
	ck_assert_ptr_nonnull(ctx);

	/* Free-running greedy from BOS over the robust prefix. */
	int32_t tok = 1;
	int free_ok = 0;
	for (int k = 0; k < robust; k++) {
		ck_assert_int_eq(engine_decode(ctx, &tok, 1, 0, NULL, &err), 0);
		tok = argmax(engine_logits(ctx, 0), vocab);
		if (tok != gids[k])
			break;
		free_ok++;
	}
	/* Teacher-forced: one batched pass over BOS + all ids, argmax at each
	 * position where the reference's margin is clear. */
	engine_ctx_truncate(ctx, 0);
	int32_t *seq = malloc((size_t)(ng + 1) * sizeof *seq);
	seq[0] = 1;
	memcpy(seq + 1, gids, (size_t)ng * sizeof *seq);
	ck_assert_int_eq(engine_decode(ctx, seq, ng, 1, NULL, &err), 0);
	int checked = 0, wrong = 0;
	for (int k = 0; k < ng; k++) {
		if (json_number_value(json_array_get(margins, (size_t)k)) < 0.05)
			continue;
		checked++;
		if (argmax(engine_logits(ctx, k), vocab) != gids[k]) {
			wrong++;
			fprintf(stderr, "%s: step %d: argmax %d, reference %d\n", file, k,
			    argmax(engine_logits(ctx, k), vocab), gids[k]);
		}
	}
	fprintf(stderr, "%-20s free-running %d/%d robust ids, teacher-forced %d/%d clear steps\n", file, free_ok,
	    robust, checked - wrong, checked);
	ck_assert_int_eq(free_ok, robust);
	ck_assert_int_eq(wrong, 0);
	free(seq);
	free(gids);
	free(path);
	engine_ctx_free(ctx);
	engine_close(em);
	json_decref(g);
}

START_TEST(test_stories_legacy) { stories_check("stories260K.bin", "float32"); }
END_TEST
START_TEST(test_stories_v1) { stories_check("stories260K-v1.bin", "float32"); }
END_TEST
START_TEST(test_stories_v2) { stories_check("stories260K-v2.bin", "int8"); }
END_TEST

/*
 * Batched prefill and token-by-token decoding compute the same thing: to
 * float rounding on a float model; on a quantized one the tiled GEMM sums a
 * row's blocks in another order than the one-row kernel, so a last-bit
 * difference can flip an 8-bit activation (FLIP_ABS, as against llama.cpp).
 */
START_TEST(test_batch_equals_sequential)
{
	struct { const char *file; double tol; } cases[] = {
		{ "models/fixture-f32.gguf", 1e-4 },
		{ "models/fixture-q4_k_m.gguf", FLIP_ABS },
		{ "models/fixture-q4_0.gguf", FLIP_ABS },
		{ "models/fixture-q8_0.gguf", FLIP_ABS },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char *path = fixture_path(cases[k].file);
		char *err = NULL;
		struct engine_model *em = engine_open(path, NULL, &err);
		ck_assert_msg(em != NULL, "%s", err);
		int32_t ids[40];
		for (int i = 0; i < 40; i++)
			ids[i] = (int32_t)((i * 37 + 11) % 1000) + 3;
		struct engine_ctx_params p;
		engine_ctx_params_default(&p);
		p.n_ctx = 128;
		p.n_batch = 16;
		struct engine_ctx *a = engine_ctx_new(em, &p, &err), *b = engine_ctx_new(em, &p, &err);
		ck_assert_int_eq(engine_decode(a, ids, 40, 0, NULL, &err), 0);
		for (int i = 0; i < 40; i++)
			ck_assert_int_eq(engine_decode(b, &ids[i], 1, 0, NULL, &err), 0);
		const float *la = engine_logits(a, 0), *lb = engine_logits(b, 0);
		double worst = 0;
		for (int i = 0; i < engine_info(em)->n_vocab; i++)
			worst = fmax(worst, fabs(la[i] - lb[i]));
		ck_assert_msg(worst < cases[k].tol, "%s: batched vs sequential max diff %g", cases[k].file, worst);
		engine_ctx_free(a);
		engine_ctx_free(b);
		engine_close(em);
		free(path);
	}
}
END_TEST

/* The float16 cache stays close to the float32 one. */
START_TEST(test_kv_f16_close)
{
	char *path = fixture_path("models/fixture-f32.gguf");
	char *err = NULL;
	struct engine_model *em = engine_open(path, NULL, &err);
	ck_assert_ptr_nonnull(em);
	int32_t ids[24];
	for (int i = 0; i < 24; i++)
		ids[i] = (int32_t)((i * 53 + 7) % 1000) + 3;
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 64;
	struct engine_ctx *h = engine_ctx_new(em, &p, &err);
	p.kv_f32 = 1;
	struct engine_ctx *f = engine_ctx_new(em, &p, &err);
	ck_assert_int_eq(engine_decode(h, ids, 24, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_decode(f, ids, 24, 0, NULL, &err), 0);
	double worst = 0;
	for (int i = 0; i < engine_info(em)->n_vocab; i++)
		worst = fmax(worst, fabs(engine_logits(h, 0)[i] - engine_logits(f, 0)[i]));
	ck_assert_msg(worst < 5e-2, "f16 vs f32 cache max diff %g", worst);
	engine_ctx_free(h);
	engine_ctx_free(f);
	engine_close(em);
	free(path);
}
END_TEST

/*
 * A decoded token runs all its layers in one parallel region
 * (forward_token.c) when there is more than one thread: its logits are
 * the one-thread path's bit for bit, at 2 and at 3 threads (an odd team,
 * whose rows are stolen across runs), for each cache type, token after
 * token as the cache grows.
 */
START_TEST(test_token_threads_same_bits)
{
	struct { const char *file; int kv_f32, kv_q8; } cases[] = {
		{ "models/fixture-q4_0.gguf", 0, 0 },
		{ "models/fixture-q4_k_m.gguf", 0, 0 },
		{ "models/fixture-q8_0.gguf", 0, 1 },
		{ "models/fixture-f16.gguf", 1, 0 },
		{ "models/fixture-llama3-f16.gguf", 0, 0 },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char *path = fixture_path(cases[k].file);
		char *err = NULL;
		struct engine_model *em = engine_open(path, NULL, &err);
		ck_assert_msg(em != NULL, "%s", err);
		const int nv = engine_info(em)->n_vocab;
		struct engine_ctx *ctx[3];
		for (int t = 0; t < 3; t++) {
			struct engine_ctx_params p;
			engine_ctx_params_default(&p);
			p.n_ctx = 96;
			p.n_threads = t + 1;
			p.kv_f32 = cases[k].kv_f32;
			p.kv_q8 = cases[k].kv_q8;
			ctx[t] = engine_ctx_new(em, &p, &err);
			ck_assert_msg(ctx[t] != NULL, "%s", err);
		}
		for (int i = 0; i < 80; i++) {
			int32_t id = (int32_t)((i * 41 + 5) % 900) + 3;
			for (int t = 0; t < 3; t++)
				ck_assert_int_eq(engine_decode(ctx[t], &id, 1, 0, NULL, &err), 0);
			for (int t = 1; t < 3; t++)
				ck_assert_msg(memcmp(engine_logits(ctx[0], 0), engine_logits(ctx[t], 0), (size_t)nv * sizeof(float)) == 0,
				    "%s: token %d, %d threads and 1 differ", cases[k].file, i, t + 1);
		}
		for (int t = 0; t < 3; t++)
			engine_ctx_free(ctx[t]);
		engine_close(em);
		free(path);
	}
}
END_TEST

/* Whether the page holding p is mapped (mincore). */
static int
page_mapped(const void *p)
{
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	void *a = (void *)((uintptr_t)p & ~(uintptr_t)(pg - 1));
	return mincore(a, pg, &v) == 0 && (v & 1);
}

/* Whether this kernel has MADV_POPULATE_WRITE (Linux 5.14). */
static int
have_populate_write(void)
{
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *probe = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (probe == MAP_FAILED)
		return 0;
	int have = madvise(probe, pg, 23 /* MADV_POPULATE_WRITE */) == 0;
	munmap(probe, pg);
	return have;
}

/*
 * kv_reserve maps the pages of the positions about to be written (so that
 * writing them does not fault page by page) and no more than a chunk
 * beyond: a long context's cache still costs nothing until reached.
 */
START_TEST(test_kv_reserve_maps_ahead)
{
	char *path = fixture_path("models/fixture-q4_0.gguf");
	char *err = NULL;
	struct model *m = model_open(path, NULL, &err);
	ck_assert_msg(m != NULL, "%s", err);
	struct kv_cache kv;
	ck_assert_int_eq(kv_init(&kv, m, 8192, KV_F16, &err), 0);
	const size_t row = kv_row_bytes(&kv);
	const char *last_k = (const char *)kv.k + (size_t)(kv.n_layers - 1) * kv.n_ctx * row;
	const char *last_v = (const char *)kv.v + (size_t)(kv.n_layers - 1) * kv.n_ctx * row;
	ck_assert_msg(!page_mapped(last_k + 300 * row), "a fresh cache is already mapped");
	kv_reserve(&kv, 300);
	for (int p = 0; p < 300; p += 7) {
		ck_assert_msg(page_mapped((const char *)kv.k + (size_t)p * row), "layer 0 K position %d not mapped", p);
		ck_assert_msg(page_mapped(last_k + (size_t)p * row), "last layer K position %d not mapped", p);
		ck_assert_msg(page_mapped(last_v + (size_t)p * row), "last layer V position %d not mapped", p);
	}
	ck_assert_int_ge(kv.mapped, 300);
	ck_assert_int_le(kv.mapped, 300 + 4096);
	ck_assert_msg(!page_mapped(last_k + (size_t)8000 * row), "position 8000 mapped by a reserve to 300");
	kv_free(&kv);
	model_close(m);
	free(path);
}
END_TEST

Suite *model_suite(void);

Suite *
model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("golden");
	tcase_set_timeout(tc, 600);
	tcase_add_fixture_test(tc, test_fixtures_golden);
	tcase_add_fixture_test(tc, test_stories_legacy);
	tcase_add_fixture_test(tc, test_stories_v1);
	tcase_add_fixture_test(tc, test_stories_v2);
	tcase_add_fixture_test(tc, test_batch_equals_sequential);
	tcase_add_fixture_test(tc, test_kv_f16_close);
	tcase_add_fixture_test(tc, test_fixtures_golden_kv_q8);
	tcase_add_fixture_test(tc, test_token_threads_same_bits);
	/* Without MADV_POPULATE_WRITE the pages fault in as before: skipped. */
	if (have_populate_write())
		tcase_add_fixture_test(tc, test_kv_reserve_maps_ahead);
	else
		testutil_skipped++;
	suite_add_tcase(s, tc);
	return s;
}
