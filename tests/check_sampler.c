/*
 * check_sampler.c: the sampler (engine/sampler.c) against distributions
 * computed by hand (suite sampler): top-k, top-p, min-p, temperature and
 * the repetition penalty, alone and chained, on six logits.
 *
 * The draw is exact, not statistical: engine_sample's one random number
 * for a seed is the first splitmix64 output of that seed, r in [0, 1), and
 * the token is the first whose cumulative probability (candidates by
 * logit, highest first, ties to the lower id) passes r.  The test computes
 * r the same way and picks from the expected distribution; every seed must
 * agree (seeds whose r lies within 1e-6 of a boundary are left out, as
 * float rounding may go either way there).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#define NV 6
static const float logits[NV] = { 2.0f, 1.0f, 0.5f, 0.0f, -1.0f, 1.0f };

struct scase {
	const char *name;
	float temp;
	int top_k;
	float top_p, min_p, penalty;
	int last_n;
	int32_t recent[8];
	int n_recent;
	double p[NV];             /* by hand: softmax over what the filters keep */
};

/*
 * plain: softmax(2, 1, .5, 0, -1, 1): e^0 = 1, e^-1 = .36788 (twice),
 * e^-1.5 = .22313, e^-2 = .13534, e^-3 = .04979; sum 2.14402.
 * top-k 2: ids 0 and 1 (1 and 5 tie at 1.0: the lower id is kept):
 * 1/(1+e^-1) = .73106.  top-p .7: cumulative .46642, .63800 (id 1),
 * .80958 (id 5) >= .7: ids 0, 1, 5 renormalized.  min-p .3: floor
 * .3 * .46642 = .13993 keeps ids 0, 1, 5 (.17158), drops id 2 (.10407).
 * temp .5: softmax(4, 2, 1, 0, -2, 2).  penalty 2 on {0, 4, 0, 3}: id 0
 * 2 -> 1, id 4 -1 -> -2, id 3 stays 0 (0 * 2), each once however often it
 * occurs.  last-n 2 of {0, 1, 4, 4}: only id 4 is penalized.  chain:
 * penalty 1.5 on id 1 (1 -> .66667), top-k 4 (ids 0, 5, 1, 2), top-p .9
 * keeps all four (cumulative .880 after three), min-p .1 too, temp .7.
 */
static const struct scase cases[] = {
	{ "plain", 1, 0, 1, 0, 1, 0, { 0 }, 0,
	  { 0.466415432, 0.171584648, 0.104071350, 0.063122465, 0.023221457, 0.171584648 } },
	{ "top-k 2", 1, 2, 1, 0, 1, 0, { 0 }, 0, { 0.731058579, 0.268941421, 0, 0, 0, 0 } },
	{ "top-p 0.7", 1, 0, 0.7f, 0, 1, 0, { 0 }, 0, { 0.576116885, 0.211941558, 0, 0, 0, 0.211941558 } },
	{ "min-p 0.3", 1, 0, 1, 0.3f, 1, 0, { 0 }, 0, { 0.576116885, 0.211941558, 0, 0, 0, 0.211941558 } },
	{ "temp 0.5", 0.5f, 0, 1, 0, 1, 0, { 0 }, 0,
	  { 0.745572033, 0.100902202, 0.037119846, 0.013655628, 0.001848088, 0.100902202 } },
	{ "penalty 2", 1, 0, 1, 0, 2, 0, { 0, 4, 0, 3 }, 4,
	  { 0.248496770, 0.248496770, 0.150720910, 0.091416853, 0.012371926, 0.248496770 } },
	{ "penalty 2, last 2", 1, 0, 1, 0, 2, 2, { 0, 1, 4, 4 }, 4,
	  { 0.473363826, 0.174140820, 0.105621746, 0.064062827, 0.008669961, 0.174140820 } },
	{ "chain", 0.7f, 4, 0.9f, 0.1f, 1.5f, 0, { 1 }, 1,
	  { 0.664086344, 0.098854619, 0.077910056, 0, 0, 0.159148981 } },
};

/* The sampler's random number for a fresh sampler with this seed. */
static double
first_draw(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* The expected token for r, and whether r is too close to a boundary. */
static int
expected(const double *p, double r, int *edge)
{
	int order[NV];
	for (int i = 0; i < NV; i++)
		order[i] = i;
	/* Probability is monotonic in the (penalized) logit: its order is the
	 * sampler's, ties to the lower id. */
	for (int i = 0; i < NV; i++)
		for (int j = i + 1; j < NV; j++)
			if (p[order[j]] > p[order[i]] + 1e-12) {
				int t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
	double cum = 0;
	*edge = 0;
	for (int i = 0; i < NV; i++) {
		if (p[order[i]] == 0)
			break;
		cum += p[order[i]];
		if (fabs(r - cum) < 1e-6)
			*edge = 1;
		if (r < cum)
			return order[i];
	}
	return -1;
}

START_TEST(test_sampler_distributions)
{
	for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
		const struct scase *c = &cases[ci];
		double sum = 0;
		for (int i = 0; i < NV; i++)
			sum += c->p[i];
		ck_assert_msg(fabs(sum - 1) < 1e-8, "case %s: the hand-computed p sum to %g", c->name, sum);
		int checked = 0, count[NV] = { 0 };
		for (uint64_t seed = 1; seed <= 4000; seed++) {
			struct engine_sampling s;
			engine_sampling_default(&s);
			s.temp = c->temp;
			s.top_k = c->top_k;
			s.top_p = c->top_p;
			s.min_p = c->min_p;
			s.repeat_penalty = c->penalty;
			s.repeat_last_n = c->last_n;
			s.seed = seed;
			struct engine_sampler *sm = engine_sampler_new(&s);
			ck_assert_ptr_nonnull(sm);
			int32_t got = engine_sample(sm, logits, NV, c->recent, c->n_recent);
			engine_sampler_free(sm);
			ck_assert_msg(got >= 0 && got < NV, "case %s seed %llu: id %d", c->name, (unsigned long long)seed,
			    got);
			count[got]++;
			int edge;
			int want = expected(c->p, first_draw(seed), &edge);
			if (edge)
				continue;
			ck_assert_msg(got == want, "case %zu (%s) seed %llu: got %d, want %d", ci, c->name,
			    (unsigned long long)seed, got, want);
			checked++;
		}
		ck_assert_int_gt(checked, 3900);
		/* And the frequencies follow: nothing outside the kept set. */
		for (int i = 0; i < NV; i++)
			if (c->p[i] == 0)
				ck_assert_msg(count[i] == 0, "case %s: id %d drawn %d times", c->name, i, count[i]);
			else
				ck_assert_msg(fabs(count[i] / 4000.0 - c->p[i]) < 0.03, "case %s: id %d at %g, want %g",
				    c->name, i, count[i] / 4000.0, c->p[i]);
	}
}
END_TEST

START_TEST(test_sampler_greedy)
{
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	struct engine_sampler *sm = engine_sampler_new(&s);
	ck_assert_int_eq(engine_sample(sm, logits, NV, NULL, 0), 0);
	engine_sampler_free(sm);
	/* Penalized below the others, id 0 loses; of the tie at 1.0 the lower
	 * id wins. */
	s.repeat_penalty = 4;
	sm = engine_sampler_new(&s);
	int32_t rec[] = { 0 };
	ck_assert_int_eq(engine_sample(sm, logits, NV, rec, 1), 1);
	engine_sampler_free(sm);
}
END_TEST

/* The penalty window is repeat_last_n, however long (the generation loop
 * used to hand the sampler the last 256 tokens only). */
START_TEST(test_sampler_window)
{
	enum { N = 1000 };
	int32_t *rec = malloc(N * sizeof *rec);
	for (int i = 0; i < N; i++)
		rec[i] = 3;                 /* id 3 everywhere... */
	rec[0] = 0;                     /* ...and id 0 only 1000 tokens back */
	float l[NV] = { 1.1f, 1.0f, 0, 0, 0, 0 };
	struct engine_sampling s;
	engine_sampling_default(&s);
	s.temp = 0;
	s.repeat_penalty = 2;
	s.repeat_last_n = N;
	struct engine_sampler *sm = engine_sampler_new(&s);
	ck_assert_int_eq(engine_sample(sm, l, NV, rec, N), 1);     /* id 0 penalized: 0.55 */
	engine_sampler_free(sm);
	s.repeat_last_n = N - 1;
	sm = engine_sampler_new(&s);
	ck_assert_int_eq(engine_sample(sm, l, NV, rec, N), 0);     /* out of the window */
	engine_sampler_free(sm);
	s.repeat_last_n = 0;                                         /* all of them */
	sm = engine_sampler_new(&s);
	ck_assert_int_eq(engine_sample(sm, l, NV, rec, N), 1);
	engine_sampler_free(sm);
	free(rec);
}
END_TEST

Suite *sampler_suite(void);

Suite *
sampler_suite(void)
{
	Suite *s = suite_create("sampler");
	TCase *tc = tcase_create("sampler");
	tcase_add_test(tc, test_sampler_distributions);
	tcase_add_test(tc, test_sampler_greedy);
	tcase_add_test(tc, test_sampler_window);
	suite_add_tcase(s, tc);
	return s;
}
