/*
 * sampler.c: choose the next token from logits.
 *
 * The chain is llama.cpp's: repetition penalty over recent tokens, top-k,
 * top-p (on the softmax of the untempered logits), min-p, temperature, then
 * a draw from the remaining distribution.  temp <= 0 is greedy (argmax,
 * ties to the lowest id).  The random stream is splitmix64 seeded by the
 * caller, so a reply can be replayed from its stored seed.  The
 * repetition penalty looks at the last repeat_last_n of the recent tokens
 * it is given (0: all of them).
 */
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cand {
	int32_t id;
	float logit;
	float p;
};

struct engine_sampler {
	struct engine_sampling s;
	uint64_t rng;
	struct cand *c;
	int cap;
};

void
engine_sampling_default(struct engine_sampling *s)
{
	s->temp = 0.8f;
	s->top_k = 40;
	s->top_p = 0.95f;
	s->min_p = 0.05f;
	s->repeat_penalty = 1.0f;
	s->repeat_last_n = 64;
	s->ignore_eos = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	s->seed &= 0xffffffffu;   /* short enough to type back with --seed */
}

struct engine_sampler *
engine_sampler_new(const struct engine_sampling *s)
{
	struct engine_sampler *sm = calloc(1, sizeof *sm);
	if (sm == NULL)
		return NULL;
	sm->s = *s;
	sm->rng = s->seed;
	return sm;
}

void
engine_sampler_free(struct engine_sampler *s)
{
	if (s == NULL)
		return;
	free(s->c);
	free(s);
}

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
cand_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->logit != y->logit)
		return x->logit < y->logit ? 1 : -1;
	return x->id - y->id;
}

/* Move the k largest to the front (a min-heap of size k), sorted. */
static void
top_k(struct cand *c, int n, int k)
{
	for (int i = k / 2 - 1; i >= 0; i--) {
		for (int p = i;;) {   /* sift down in a min-heap of k */
			int l = 2 * p + 1, m = p;
			if (l < k && cand_desc(&c[l], &c[m]) > 0) m = l;
			if (l + 1 < k && cand_desc(&c[l + 1], &c[m]) > 0) m = l + 1;
			if (m == p) break;
			struct cand t = c[p]; c[p] = c[m]; c[m] = t; p = m;
		}
	}
	for (int i = k; i < n; i++) {
		if (cand_desc(&c[i], &c[0]) >= 0)
			continue;     /* not better than the smallest kept */
		c[0] = c[i];
		for (int p = 0;;) {
			int l = 2 * p + 1, m = p;
			if (l < k && cand_desc(&c[l], &c[m]) > 0) m = l;
			if (l + 1 < k && cand_desc(&c[l + 1], &c[m]) > 0) m = l + 1;
			if (m == p) break;
			struct cand t = c[p]; c[p] = c[m]; c[m] = t; p = m;
		}
	}
	qsort(c, (size_t)k, sizeof *c, cand_desc);
}

static void
softmax(struct cand *c, int n)
{
	float mx = c[0].logit;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += c[i].p = expf(c[i].logit - mx);
	for (int i = 0; i < n; i++)
		c[i].p = (float)(c[i].p / sum);
}

int32_t
engine_sample(struct engine_sampler *sm, const float *logits, int n_vocab, const int32_t *recent, int n_recent)
{
	const struct engine_sampling *s = &sm->s;
	if (sm->cap < n_vocab) {
		struct cand *nc = realloc(sm->c, (size_t)n_vocab * sizeof *nc);
		if (nc == NULL)
			return -1;
		sm->c = nc;
		sm->cap = n_vocab;
	}
	struct cand *c = sm->c;
	for (int i = 0; i < n_vocab; i++)
		c[i] = (struct cand){ i, logits[i], 0 };

	if (s->repeat_penalty != 1.0f && n_recent > 0) {
		int from = s->repeat_last_n > 0 && n_recent > s->repeat_last_n ? n_recent - s->repeat_last_n : 0;
		for (int i = from; i < n_recent; i++) {
			int32_t id = recent[i];
			if (id < 0 || id >= n_vocab || c[id].p != 0)
				continue;
			/* Penalize each distinct token once (p marks it; it is
			 * recomputed below), in one pass however long the window. */
			c[id].p = 1;
			float *l = &c[id].logit;
			*l = *l > 0 ? *l / s->repeat_penalty : *l * s->repeat_penalty;
		}
	}

	if (s->temp <= 0) {
		int best = 0;
		for (int i = 1; i < n_vocab; i++)
			if (c[i].logit > c[best].logit)
				best = i;
		return c[best].id;
	}

	int n = n_vocab;
	if (s->top_k > 0 && s->top_k < n) {
		top_k(c, n, s->top_k);
		n = s->top_k;
	} else {
		qsort(c, (size_t)n, sizeof *c, cand_desc);
	}
	softmax(c, n);
	if (s->top_p < 1.0f) {
		double cum = 0;
		for (int i = 0; i < n; i++) {
			cum += c[i].p;
			if (cum >= s->top_p) {
				n = i + 1;
				break;
			}
		}
	}
	if (s->min_p > 0) {
		float floor = c[0].p * s->min_p;
		int keep = 1;
		while (keep < n && c[keep].p >= floor)
			keep++;
		n = keep;
	}
	for (int i = 0; i < n; i++)
		c[i].logit /= s->temp;
	softmax(c, n);
	double r = (double)(splitmix64(&sm->rng) >> 11) * (1.0 / 9007199254740992.0);
	double cum = 0;
	for (int i = 0; i < n; i++) {
		cum += c[i].p;
		if (r < cum)
			return c[i].id;
	}
	return c[n - 1].id;
}

const struct engine_sampling *
engine_sampler_params(const struct engine_sampler *s)
{
	return &s->s;
}
