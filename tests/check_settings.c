/*
 * check_settings.c: the one table of sampling and generation settings
 * (app/settings.h) and the doors that use it (suite settings): for every
 * setting, the edge of its range is accepted and one step past it refused
 * alike by the table's parser, the command line (cli_parse), the config
 * file (config_load) and the presets command; the stored JSON reads back
 * to the same values.
 */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "app/cli.h"
#include "app/command.h"
#include "app/config.h"
#include "app/settings.h"
#include "tests/testutil.h"

/* stderr to /dev/null around calls that print a usage error. */
static int saved_err = -1;

static void
quiet(int on)
{
	fflush(stderr);
	if (on) {
		saved_err = dup(2);
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		close(fd);
	} else {
		dup2(saved_err, 2);
		close(saved_err);
	}
}

static void
fresh(struct opts *o)
{
	memset(o, 0, sizeof *o);
	engine_sampling_default(&o->gen.samp);
}

/* The text of the range's edge (hi) and one past it. */
static void
edges(int id, char *ok, char *bad, size_t n)
{
	const struct setting *s = &settings_table[id];
	if (s->type == SET_INT) {
		snprintf(ok, n, "%.0f", s->hi);
		snprintf(bad, n, "%.0f", s->hi + 1);
	} else {
		snprintf(ok, n, "%g", s->hi);
		snprintf(bad, n, "%g", s->hi * 1.5 + 0.5);
	}
}

START_TEST(test_settings_table)
{
	/* Every setting has the names every door needs, and they are unique. */
	for (int i = 0; i < SET_COUNT; i++) {
		const struct setting *s = &settings_table[i];
		ck_assert_msg(s->name && s->flag && s->key, "setting %d", i);
		ck_assert_int_eq(settings_by_flag(s->flag), i);
		ck_assert_int_eq(settings_by_key(s->key), i);
		if (s->json)
			ck_assert_int_eq(settings_by_json(s->json), i);
		if (s->type != SET_U64)
			ck_assert_msg(s->def >= s->lo && s->def <= s->hi, "%s default", s->name);
	}
	/* The table's defaults are the engine's. */
	struct gen_settings g = { 0 };
	engine_sampling_default(&g.samp);
	for (int i = 0; i < SET_COUNT; i++)
		if (i != SET_SEED)
			ck_assert_msg(fabs(settings_get(i, &g) - settings_table[i].def) < 1e-6, "%s", settings_table[i].name);
	ck_assert_int_eq(settings_by_flag("nope"), -1);
}
END_TEST

START_TEST(test_settings_parse)
{
	struct gen_settings g = { 0 };
	char *why = NULL;
	ck_assert_int_eq(settings_parse(SET_TEMP, "0.5", &g, &why), 0);
	ck_assert(g.samp.temp == 0.5f);
	ck_assert_int_eq(settings_parse(SET_TEMP, "abc", &g, &why), -1);
	ck_assert_str_eq(why, "'abc' is not a number from 0 to 100");
	free(why);
	ck_assert(g.samp.temp == 0.5f);                  /* unchanged */
	ck_assert_int_eq(settings_parse(SET_TOP_K, "2.5", &g, &why), -1);
	free(why);
	ck_assert_int_eq(settings_parse(SET_TOP_K, "-1", &g, &why), -1);
	free(why);
	ck_assert_int_eq(settings_parse(SET_TOP_P, "nan", &g, &why), -1);
	free(why);
	ck_assert_int_eq(settings_parse(SET_N_PREDICT, "-1", &g, NULL), 0);
	ck_assert_int_eq(g.n_predict, -1);
	ck_assert_int_eq(settings_parse(SET_SEED, "18446744073709551615", &g, NULL), 0);
	ck_assert(g.samp.seed == UINT64_MAX);
	ck_assert_int_eq(settings_parse(SET_SEED, "-3", &g, &why), -1);
	free(why);
	ck_assert_int_eq(settings_parse(SET_SEED, "18446744073709551616", &g, &why), -1);
	free(why);
	char *t = settings_format(SET_TEMP, &g);
	ck_assert_str_eq(t, "0.5");
	free(t);
}
END_TEST

/* The same edge, accepted or refused by the command line and the config
 * file alike. */
START_TEST(test_settings_doors_agree)
{
	char *dir = tmpdir_new();
	char cfg[4096];
	snprintf(cfg, sizeof cfg, "%s/config", dir);
	for (int i = 0; i < SET_COUNT; i++) {
		const struct setting *s = &settings_table[i];
		if (s->type == SET_U64)
			continue;
		char ok[64], bad[64], flag[80];
		edges(i, ok, bad, sizeof ok);
		snprintf(flag, sizeof flag, "--%s", s->flag);
		for (int b = 0; b < 2; b++) {
			const char *val = b ? bad : ok;
			struct opts o;
			fresh(&o);
			char *argv[] = { "llama2-chat", flag, (char *)val, NULL };
			quiet(1);
			int rc = cli_parse(&o, 3, argv, NULL);
			quiet(0);
			ck_assert_msg(rc == (b ? EXIT_USAGE : 0), "%s %s: cli %d", flag, val, rc);
			if (!b) {
				ck_assert_msg(fabs(settings_get(i, &o.gen) - s->hi) < 1e-6, "%s", flag);
				ck_assert(o.gen_set & (1u << i));
			}
			FILE *f = fopen(cfg, "w");
			fprintf(f, "%s = %s\n", s->key, val);
			fclose(f);
			fresh(&o);
			quiet(1);
			rc = config_load(&o, cfg);
			quiet(0);
			ck_assert_msg(rc == (b ? EXIT_USAGE : 0), "%s = %s: config %d", s->key, val, rc);
			opts_free(&o);
		}
	}
	tmpdir_remove(dir);
}
END_TEST

/* The presets command takes the stored settings with the same flags and
 * ranges, top-k included (it used to stop at 1000000). */
START_TEST(test_settings_presets)
{
	char *dir = tmpdir_new();
	char db[4096], cfg[4096];
	snprintf(db, sizeof db, "%s/chats.db", dir);
	snprintf(cfg, sizeof cfg, "%s/cfg", dir);
	setenv("LLAMA2_CHAT_DB", db, 1);
	setenv("XDG_CONFIG_HOME", cfg, 1);
	int n = 0;
	for (int i = 0; i < SET_COUNT; i++) {
		const struct setting *s = &settings_table[i];
		if (s->json == NULL)
			continue;
		char ok[64], bad[64], flag[80], name[32];
		edges(i, ok, bad, sizeof ok);
		snprintf(flag, sizeof flag, "--%s", s->flag);
		snprintf(name, sizeof name, "p%d", n++);
		char *good[] = { "llama2-chat", "presets", "add", name, "--system", "x", flag, ok, NULL };
		char *wrong[] = { "llama2-chat", "presets", "add", "other", "--system", "x", flag, bad, NULL };
		quiet(1);
		int fo = dup(1), nul = open("/dev/null", O_WRONLY);
		fflush(stdout);
		dup2(nul, 1);
		close(nul);
		int rc_ok = command_run(8, good), rc_bad = command_run(8, wrong);
		fflush(stdout);
		dup2(fo, 1);
		close(fo);
		quiet(0);
		ck_assert_msg(rc_ok == 0, "presets add %s %s: %d", flag, ok, rc_ok);
		ck_assert_msg(rc_bad == 2, "presets add %s %s: %d", flag, bad, rc_bad);
	}
	unsetenv("LLAMA2_CHAT_DB");
	unsetenv("XDG_CONFIG_HOME");
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_settings_json)
{
	struct gen_settings g = { 0 }, back = { 0 };
	engine_sampling_default(&g.samp);
	g.samp.temp = 0.7f;
	g.samp.top_p = 0.123456789f;
	g.samp.top_k = 1 << 24;
	g.samp.repeat_last_n = 17;
	char *text = settings_json_text(&g);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\"temperature\":0.7,"));   /* shortest, not 0.69999998 */
	ck_assert_ptr_null(strstr(text, "seed"));                      /* stored apart */
	engine_sampling_default(&back.samp);
	ck_assert_int_eq(settings_from_json(&back, text, 0), 6);
	ck_assert(back.samp.temp == g.samp.temp && back.samp.top_p == g.samp.top_p);
	ck_assert_int_eq(back.samp.top_k, 1 << 24);
	ck_assert_int_eq(back.samp.repeat_last_n, 17);
	/* Skipped keys (the command line's own) stay; bad values are ignored. */
	struct gen_settings h = { 0 };
	engine_sampling_default(&h.samp);
	ck_assert_int_eq(settings_from_json(&h, "{\"temperature\": 0.1, \"top_k\": 5, \"top_p\": 7, \"min_p\": \"x\"}",
	    1u << SET_TEMP), 1);
	ck_assert(h.samp.temp == 0.8f);
	ck_assert_int_eq(h.samp.top_k, 5);
	ck_assert(h.samp.top_p == 0.95f);
	ck_assert_int_eq(settings_from_json(&h, "not json", 0), 0);
	ck_assert_int_eq(settings_from_json(&h, NULL, 0), 0);
	free(text);
}
END_TEST

Suite *settings_suite(void);

Suite *
settings_suite(void)
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("settings");
	tcase_add_test(tc, test_settings_table);
	tcase_add_test(tc, test_settings_parse);
	tcase_add_test(tc, test_settings_doors_agree);
	tcase_add_test(tc, test_settings_presets);
	tcase_add_test(tc, test_settings_json);
	suite_add_tcase(s, tc);
	return s;
}
