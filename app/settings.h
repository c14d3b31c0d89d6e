/*
 * settings.h: the one table of sampling and generation settings.  Every
 * place that reads or writes one of them goes through this table: the
 * command line (cli.c), the config file (config.c), presets (the presets
 * command and session.c), the interface's sampling form (ui/sampling.c)
 * and the JSON stored with conversations and replies (session.c).  A
 * setting's range is checked in one place, so a value the command line
 * refuses is refused by every other door too.
 */
#ifndef APP_SETTINGS_H
#define APP_SETTINGS_H

#include <stdint.h>

#include <jansson.h>

#include "engine/engine.h"

enum setting_id {
	SET_TEMP, SET_TOP_K, SET_TOP_P, SET_MIN_P, SET_REPEAT_PENALTY, SET_REPEAT_LAST_N, SET_SEED,
	SET_N_PREDICT, SET_COUNT,
};
enum setting_type { SET_REAL, SET_INT, SET_U64 };

struct setting {
	const char *name;         /* for people: "temperature", "top-k" (the form, messages) */
	const char *flag;         /* command line, without the dashes: "temp" */
	const char *key;          /* config file: "temp" */
	const char *json;         /* stored JSON (conversation params, presets, reply sampler); NULL: not stored */
	enum setting_type type;
	double lo, hi;            /* the range, inclusive (SET_U64: unbounded) */
	double def;               /* the default (engine_sampling_default's; the seed is random) */
};

extern const struct setting settings_table[SET_COUNT];

/* What the settings live in: the sampler's parameters and the reply length. */
struct gen_settings {
	struct engine_sampling samp;
	int n_predict;            /* <= 0: until EOS or the context is full */
};

/* The setting with this flag / config key / JSON key, or -1. */
int settings_by_flag(const char *flag);
int settings_by_key(const char *key);
int settings_by_json(const char *json);

/*
 * Parse text as setting id (the whole string, within the range) into g.
 * 0, or -1 with *why (malloc'd, may be NULL) like "'x' is not a number
 * from 0 to 100"; g is unchanged on error.
 */
int settings_parse(int id, const char *text, struct gen_settings *g, char **why);
/* Setting id of g as a number, and set from a number (range-checked: -1
 * and nothing changed when out of range). */
double settings_get(int id, const struct gen_settings *g);
int settings_set(int id, double v, struct gen_settings *g);
/* The value as text ("0.8", "40"); malloc'd, NULL on out of memory. */
char *settings_format(int id, const struct gen_settings *g);

/* Setting id of g as a JSON number (a new reference; NULL on out of memory). */
json_t *settings_value_json(int id, const struct gen_settings *g);
/* A JSON object of g's stored settings (those with a JSON key); NULL on out
 * of memory.  settings_json_text: the same, compact text (malloc'd). */
json_t *settings_to_json(const struct gen_settings *g);
char *settings_json_text(const struct gen_settings *g);
/*
 * Apply the stored settings found in a JSON object (text; NULL or
 * unreadable changes nothing) over g, except those whose bit (1 << id) is
 * in skip (what the command line set itself).  A key of the wrong type or
 * out of range is ignored.  Returns how many were applied.
 */
int settings_from_json(struct gen_settings *g, const char *text, unsigned skip);
/* The same from a json_t object; -1 with *why (malloc'd) naming the first
 * key that is unknown, of the wrong type or out of range (strict: for
 * input people typed, such as presets). */
int settings_from_json_strict(struct gen_settings *g, json_t *obj, char **why);

#endif
