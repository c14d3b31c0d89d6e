/*
 * check_kvsnap.c: KV snapshots: a resumed cache computes what a full
 * prefill computes; a snapshot from another model, a truncated one or one
 * with a flipped bit is refused with a reason; files are private; the
 * folder stays under its cap, least recently used first.
 */
#include "tests/testutil.h"
#include "engine/engine.h"
#include "app/kvcache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>

static struct engine_model *
open_fixture(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *p = fixture_path(rel);
	char *err = NULL;
	struct engine_model *m = engine_open(p, NULL, &err);
	ck_assert_msg(m != NULL, "%s: %s", rel, err);
	free(p);
	return m;
}

static struct engine_ctx *
ctx_kv(struct engine_model *m, int q8)
{
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = 256;
	p.kv_q8 = q8;
	char *err = NULL;
	struct engine_ctx *c = engine_ctx_new(m, &p, &err);
	ck_assert_ptr_nonnull(c);
	return c;
}

static struct engine_ctx *
ctx(struct engine_model *m)
{
	return ctx_kv(m, 0);
}

static void
seq(int32_t *ids, int n)
{
	ids[0] = 1;
	for (int i = 1; i < n; i++)
		ids[i] = (int32_t)(3 + (i * 131 + 17) % 1000);
}

START_TEST(test_resume_equals_prefill)
{
	struct engine_model *m = open_fixture("fixture-q4_k_m.gguf");
	char *dir = tmpdir_new(), *path;
	ck_assert_int_ge(asprintf(&path, "%s/c.kv", dir), 0);
	int32_t ids[120];
	seq(ids, 120);
	struct engine_ctx *a = ctx(m), *b = ctx(m);
	char *err = NULL;
	ck_assert_int_eq(engine_decode(a, ids, 100, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_ctx_save(a, path, &err), 0);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	char *why = NULL;
	ck_assert_int_eq(engine_ctx_load(b, path, ids, 120, &why), 100);
	/* Both continue with the same 20 tokens. */
	ck_assert_int_eq(engine_decode(a, ids + 100, 20, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_decode(b, ids + 100, 20, 0, NULL, &err), 0);
	double worst = 0;
	for (int i = 0; i < engine_info(m)->n_vocab; i++)
		worst = fmax(worst, fabs(engine_logits(a, 0)[i] - engine_logits(b, 0)[i]));
	ck_assert_msg(worst <= 1e-3, "resumed vs prefilled logits differ by %g", worst);
	/* A conversation that shares only a prefix gets only the prefix. */
	struct engine_ctx *c = ctx(m);
	int32_t other[120];
	memcpy(other, ids, sizeof other);
	other[60] = 999;
	ck_assert_int_eq(engine_ctx_load(c, path, other, 120, &why), 60);
	engine_ctx_free(c);
	engine_ctx_free(a);
	engine_ctx_free(b);
	engine_close(m);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

/* A q8_0 cache's snapshot resumes to what its prefill computes, and a
 * cache of the other type refuses it (and the reverse), naming both. */
START_TEST(test_kv_type_recorded)
{
	struct engine_model *m = open_fixture("fixture-q8_0.gguf");
	char *dir = tmpdir_new(), *p8, *p16;
	ck_assert_int_ge(asprintf(&p8, "%s/q8.kv", dir), 0);
	ck_assert_int_ge(asprintf(&p16, "%s/f16.kv", dir), 0);
	int32_t ids[90];
	seq(ids, 90);
	struct engine_ctx *a = ctx_kv(m, 1), *b = ctx_kv(m, 1), *h = ctx(m);
	char *err = NULL, *why = NULL;
	ck_assert_str_eq(engine_ctx_kv_type(a), "q8_0");
	ck_assert_int_eq(engine_decode(a, ids, 80, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_ctx_save(a, p8, &err), 0);
	ck_assert_int_eq(engine_decode(h, ids, 80, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_ctx_save(h, p16, &err), 0);
	ck_assert_int_eq(engine_ctx_load(b, p8, ids, 90, &why), 80);
	ck_assert_int_eq(engine_decode(a, ids + 80, 10, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_decode(b, ids + 80, 10, 0, NULL, &err), 0);
	ck_assert(memcmp(engine_logits(a, 0), engine_logits(b, 0), (size_t)engine_info(m)->n_vocab * sizeof(float)) == 0);
	struct engine_ctx *c = ctx(m);
	ck_assert_int_eq(engine_ctx_load(c, p8, ids, 90, &why), 0);
	ck_assert_msg(why && strstr(why, "q8_0") && strstr(why, "f16"), "reason: %s", why ? why : "(none)");
	free(why);
	why = NULL;
	engine_ctx_free(c);
	c = ctx_kv(m, 1);
	ck_assert_int_eq(engine_ctx_load(c, p16, ids, 90, &why), 0);
	ck_assert_msg(why && strstr(why, "made with a f16 KV cache, this one is q8_0"), "reason: %s", why ? why : "(none)");
	free(why);
	engine_ctx_free(c);
	engine_ctx_free(a);
	engine_ctx_free(b);
	engine_ctx_free(h);
	engine_close(m);
	free(p8);
	free(p16);
	tmpdir_remove(dir);
}
END_TEST

static void
expect_refused(struct engine_model *m, const char *path, const int32_t *ids, int n, const char *what)
{
	struct engine_ctx *c = ctx(m);
	char *why = NULL;
	ck_assert_msg(engine_ctx_load(c, path, ids, n, &why) == 0, "%s: snapshot accepted", what);
	ck_assert_msg(why != NULL, "%s: no reason", what);
	int np;
	engine_ctx_tokens(c, &np);
	ck_assert_int_eq(np, 0);
	free(why);
	engine_ctx_free(c);
}

START_TEST(test_refused_snapshots)
{
	struct engine_model *m = open_fixture("fixture-q4_0.gguf");
	struct engine_model *other = open_fixture("fixture-q5_0.gguf");
	char *dir = tmpdir_new(), *path, *bad;
	ck_assert_int_ge(asprintf(&path, "%s/c.kv", dir), 0);
	ck_assert_int_ge(asprintf(&bad, "%s/bad.kv", dir), 0);
	int32_t ids[64];
	seq(ids, 64);
	struct engine_ctx *a = ctx(m);
	char *err = NULL;
	ck_assert_int_eq(engine_decode(a, ids, 64, 0, NULL, &err), 0);
	ck_assert_int_eq(engine_ctx_save(a, path, &err), 0);
	expect_refused(other, path, ids, 64, "another model");
	int32_t diff[64];
	memcpy(diff, ids, sizeof diff);
	diff[0] = 5;
	expect_refused(m, path, diff, 64, "other text");
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n);
	ck_assert_int_eq((long)fread(buf, 1, (size_t)n, f), n);
	fclose(f);
	long cuts[] = { 0, 10, 87, 88, 200, n / 2, n - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		f = fopen(bad, "wb");
		fwrite(buf, 1, (size_t)cuts[i], f);
		fclose(f);
		expect_refused(m, bad, ids, 64, "truncated");
	}
	/* A flipped bit anywhere after the header is caught by the checksum,
	 * in the header by the checks. */
	long flips[] = { 3, 20, 50, 100, 300, n / 3, n - 2 };
	for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
		buf[flips[i]] ^= 0x10;
		f = fopen(bad, "wb");
		fwrite(buf, 1, (size_t)n, f);
		fclose(f);
		char what[32];
		snprintf(what, sizeof what, "bit flip at %ld", flips[i]);
		expect_refused(m, bad, ids, 64, what);
		buf[flips[i]] ^= 0x10;
	}
	expect_refused(m, "/nonexistent/x.kv", ids, 64, "missing");
	free(buf);
	engine_ctx_free(a);
	engine_close(other);
	engine_close(m);
	free(bad);
	free(path);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_evict_lru)
{
	char *dir = tmpdir_new(), *env;
	ck_assert_int_ge(asprintf(&env, "%s", dir), 0);
	setenv("XDG_CACHE_HOME", dir, 1);
	char *p[3];
	for (int i = 0; i < 3; i++) {
		char pid[16];
		snprintf(pid, sizeof pid, "c%d", i);
		p[i] = kvcache_path(NULL, pid);
		ck_assert_ptr_nonnull(p[i]);
		FILE *f = fopen(p[i], "wb");
		char block[1000] = { 0 };
		fwrite(block, 1, sizeof block, f);
		fclose(f);
		struct timespec ts[2] = { { 1000 + i * 10, 0 }, { 1000 + i * 10, 0 } };
		utimensat(AT_FDCWD, p[i], ts, 0);
	}
	struct stat st;
	char *kvdir;
	ck_assert_int_ge(asprintf(&kvdir, "%s/llama2-chat/kv", dir), 0);
	ck_assert_int_eq(stat(kvdir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	kvcache_touch(p[0]);               /* c0 is now the most recent */
	kvcache_evict(2000, p[2]);         /* keep c2 whatever its age */
	ck_assert_int_eq(access(p[0], F_OK), 0);
	ck_assert_int_ne(access(p[1], F_OK), 0);
	ck_assert_int_eq(access(p[2], F_OK), 0);
	kvcache_evict(0, NULL);
	ck_assert_int_ne(access(p[0], F_OK), 0);
	for (int i = 0; i < 3; i++)
		free(p[i]);
	unsetenv("XDG_CACHE_HOME");
	free(kvdir);
	free(env);
	tmpdir_remove(dir);
}
END_TEST

Suite *kvsnap_suite(void);

Suite *
kvsnap_suite(void)
{
	Suite *s = suite_create("kvsnap");
	TCase *tc = tcase_create("snapshots");
	tcase_set_timeout(tc, 120);
	tcase_add_fixture_test(tc, test_resume_equals_prefill);
	tcase_add_fixture_test(tc, test_refused_snapshots);
	tcase_add_fixture_test(tc, test_kv_type_recorded);
	tcase_add_test(tc, test_evict_lru);
	suite_add_tcase(s, tc);
	return s;
}
