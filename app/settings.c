/*
 * settings.c: the table of sampling and generation settings and the
 * conversions every door uses (see settings.h).
 *
 * Invariant: a value in a struct gen_settings that came through here is
 * within its setting's range; the JSON this writes reads back to the same
 * values (reals with 15 significant digits, as float round-trips need
 * fewer).
 */
#include "app/settings.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct setting settings_table[SET_COUNT] = {
	[SET_TEMP] = { "temperature", "temp", "temp", "temperature", SET_REAL, 0, 100, 0.8 },
	[SET_TOP_K] = { "top-k", "top-k", "top_k", "top_k", SET_INT, 0, 1 << 24, 40 },
	[SET_TOP_P] = { "top-p", "top-p", "top_p", "top_p", SET_REAL, 0, 1, 0.95 },
	[SET_MIN_P] = { "min-p", "min-p", "min_p", "min_p", SET_REAL, 0, 1, 0.05 },
	[SET_REPEAT_PENALTY] = { "repeat penalty", "repeat-penalty", "repeat_penalty", "repeat_penalty",
		SET_REAL, 0.01, 100, 1.0 },
	[SET_REPEAT_LAST_N] = { "repeat last n", "repeat-last-n", "repeat_last_n", "repeat_last_n", SET_INT,
		0, 1 << 20, 64 },
	[SET_SEED] = { "seed", "seed", "seed", NULL, SET_U64, 0, 0, 0 },
	[SET_N_PREDICT] = { "max tokens per reply", "n-predict", "n_predict", NULL, SET_INT, -1, INT_MAX, 0 },
};

static int
settings_find(const char *s, size_t off)
{
	for (int i = 0; s != NULL && i < SET_COUNT; i++) {
		const char *v = *(const char *const *)((const char *)&settings_table[i] + off);
		if (v != NULL && strcmp(v, s) == 0)
			return i;
	}
	return -1;
}

int
settings_by_flag(const char *flag)
{
	return settings_find(flag, offsetof(struct setting, flag));
}

int
settings_by_key(const char *key)
{
	return settings_find(key, offsetof(struct setting, key));
}

int
settings_by_json(const char *json)
{
	return settings_find(json, offsetof(struct setting, json));
}

double
settings_get(int id, const struct gen_settings *g)
{
	const struct engine_sampling *p = &g->samp;
	switch (id) {
	case SET_TEMP: return p->temp;
	case SET_TOP_K: return p->top_k;
	case SET_TOP_P: return p->top_p;
	case SET_MIN_P: return p->min_p;
	case SET_REPEAT_PENALTY: return p->repeat_penalty;
	case SET_REPEAT_LAST_N: return p->repeat_last_n;
	case SET_SEED: return (double)p->seed;
	default: return g->n_predict;
	}
}

static int
settings_in_range(int id, double v)
{
	const struct setting *s = &settings_table[id];
	if (!isfinite(v) || v < s->lo || v > s->hi)
		return 0;
	return s->type == SET_REAL || v == floor(v);
}

int
settings_set(int id, double v, struct gen_settings *g)
{
	if (id < 0 || id >= SET_COUNT || id == SET_SEED || !settings_in_range(id, v))
		return -1;
	struct engine_sampling *p = &g->samp;
	switch (id) {
	case SET_TEMP: p->temp = (float)v; break;
	case SET_TOP_K: p->top_k = (int)v; break;
	case SET_TOP_P: p->top_p = (float)v; break;
	case SET_MIN_P: p->min_p = (float)v; break;
	case SET_REPEAT_PENALTY: p->repeat_penalty = (float)v; break;
	case SET_REPEAT_LAST_N: p->repeat_last_n = (int)v; break;
	default: g->n_predict = (int)v; break;
	}
	return 0;
}

static int
settings_why(char **why, const char *fmt, const char *text, double lo, double hi)
{
	if (why != NULL && asprintf(why, fmt, text, lo, hi) < 0)
		*why = NULL;
	return -1;
}

int
settings_parse(int id, const char *text, struct gen_settings *g, char **why)
{
	const struct setting *s = &settings_table[id];
	char *end;
	errno = 0;
	if (s->type == SET_U64) {
		unsigned long long v = strtoull(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || text[0] == '+' || text[0] == ' ')
			return settings_why(why, "'%s' is not a whole number from 0 to 2^64-1", text, 0, 0);
		g->samp.seed = v;
		return 0;
	}
	if (s->type == SET_INT) {
		long long v = strtoll(text, &end, 10);
		if (errno != 0 || end == text || *end != '\0' || !settings_in_range(id, (double)v))
			return settings_why(why, "'%s' is not a whole number from %.0f to %.0f", text, s->lo, s->hi);
		return settings_set(id, (double)v, g);
	}
	double v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !settings_in_range(id, v))
		return settings_why(why, "'%s' is not a number from %g to %g", text, s->lo, s->hi);
	return settings_set(id, v, g);
}

/* The shortest decimal that reads back as the float f into buf: the JSON
 * and the form say 0.8, not 0.800000011920929. */
static void
settings_real_text(float f, char *buf, size_t size)
{
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(buf, size, "%.*g", prec, (double)f);
		if ((float)strtod(buf, NULL) == f)
			return;
	}
}

char *
settings_format(int id, const struct gen_settings *g)
{
	char *out;
	int rc;
	if (id == SET_SEED)
		rc = asprintf(&out, "%llu", (unsigned long long)g->samp.seed);
	else if (settings_table[id].type == SET_INT)
		rc = asprintf(&out, "%.0f", settings_get(id, g));
	else {
		char buf[32];
		settings_real_text((float)settings_get(id, g), buf, sizeof buf);
		rc = asprintf(&out, "%s", buf);
	}
	return rc < 0 ? NULL : out;
}

static json_t *
settings_json_real(float f)
{
	char buf[32];
	settings_real_text(f, buf, sizeof buf);
	return json_real(strtod(buf, NULL));
}

json_t *
settings_value_json(int id, const struct gen_settings *g)
{
	double v = settings_get(id, g);
	return settings_table[id].type == SET_INT ? json_integer((json_int_t)v) : settings_json_real((float)v);
}

json_t *
settings_to_json(const struct gen_settings *g)
{
	json_t *o = json_object();
	for (int i = 0; o != NULL && i < SET_COUNT; i++) {
		const struct setting *s = &settings_table[i];
		if (s->json == NULL)
			continue;
		json_t *j = settings_value_json(i, g);
		if (j == NULL || json_object_set_new(o, s->json, j) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

char *
settings_json_text(const struct gen_settings *g)
{
	json_t *o = settings_to_json(g);
	if (o == NULL)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(o);
	return s;
}

/* One JSON value as setting id: 0, or -1 when of the wrong type or range. */
static int
settings_json_value(int id, json_t *v, struct gen_settings *g)
{
	if (settings_table[id].type == SET_INT ? !json_is_integer(v) : !json_is_number(v))
		return -1;
	return settings_set(id, json_number_value(v), g);
}

int
settings_from_json(struct gen_settings *g, const char *text, unsigned skip)
{
	if (text == NULL)
		return 0;
	json_t *o = json_loads(text, 0, NULL);
	int n = 0;
	const char *key;
	json_t *v;
	if (json_is_object(o)) {
		json_object_foreach(o, key, v) {
			int id = settings_by_json(key);
			if (id >= 0 && !(skip & (1u << id)) && settings_json_value(id, v, g) == 0)
				n++;
		}
	}
	json_decref(o);
	return n;
}

int
settings_from_json_strict(struct gen_settings *g, json_t *obj, char **why)
{
	struct gen_settings t = *g;
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		int id = settings_by_json(key);
		if (id < 0) {
			if (why != NULL && asprintf(why, "unknown setting '%s'", key) < 0)
				*why = NULL;
			return -1;
		}
		if (settings_json_value(id, v, &t) != 0) {
			const struct setting *s = &settings_table[id];
			if (why != NULL && asprintf(why, "%s wants %s from %g to %g", key,
			    s->type == SET_INT ? "a whole number" : "a number", s->lo, s->hi) < 0)
				*why = NULL;
			return -1;
		}
	}
	*g = t;
	return 0;
}
