/*
 * config.c: read the configuration file into struct opts.
 *
 * The file is small and read once at start-up; its string values are
 * copied into o->owned (o's pointers refer to them) and freed with the
 * options by opts_free.
 */
#include "app/config.h"
#include "app/paths.h"
#include "common/num.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
config_flag(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}

static char *
trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * The value part of `key = value  # comment`.  The rule: a '#' starts a
 * comment at the start of the value or after white space, so `a#b` and
 * `http://x/#y` keep their '#', and `"a # b"` (quoted, single or double)
 * keeps everything between the quotes; the quotes are removed.
 */
static char *
config_value(char *v)
{
	if (v[0] == '"' || v[0] == '\'') {
		char *q = strchr(v + 1, v[0]);
		if (q != NULL) {
			char *rest = q + 1;
			while (*rest == ' ' || *rest == '\t')
				rest++;
			if (*rest == '\0' || *rest == '#') {
				*q = '\0';
				return v + 1;
			}
		}
	}
	if (v[0] == '#')
		return v + strlen(v);
	for (char *p = v + 1; *p; p++)
		if (*p == '#' && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	return trim(v);
}

static int
to_int(const char *v, long lo, long hi, int *out)
{
	long long x;
	if (num_long(v, lo, hi, &x) != 0)
		return -1;
	*out = (int)x;
	return 0;
}

static int
to_bool(const char *v, int *out)
{
	if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int
to_bytes(const char *v, long long *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || x < 0)
		return -1;
	double mul = 1;
	switch (*end) {
	case 'k': case 'K': mul = 1024.0; end++; break;
	case 'm': case 'M': mul = 1048576.0; end++; break;
	case 'g': case 'G': mul = 1073741824.0; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'b' || *end == 'B')
		end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
	if (*end)
		return -1;
	*out = (long long)(x * mul);
	return 0;
}

int
config_load(struct opts *o, const char *explicit_path)
{
	char *path = explicit_path ? strdup(explicit_path) : path_for(PATH_CONFIG, "config", 0, NULL);
	if (path == NULL)
		return 0;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (explicit_path || errno != ENOENT) {
			/* A file that cannot be read is a runtime failure (1);
			 * a bad line in it is a usage error (2), like a bad flag. */
			cli_error("%s: %s", path, strerror(errno));
			free(path);
			return 1;
		}
		free(path);
		return 0;
	}
	char line[4096];
	int ln = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof line, f)) {
		ln++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			cli_error("%s:%d: expected 'key = value'", path, ln);
			rc = EXIT_USAGE;
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = config_value(trim(eq + 1));
		int bad = 0;
		const char **str = !strcmp(k, "model") ? &o->model : !strcmp(k, "tokenizer") ? &o->tokenizer :
		    !strcmp(k, "db") ? &o->db : !strcmp(k, "preset") ? &o->preset :
		    !strcmp(k, "system") ? &o->system : !strcmp(k, "chat_template") ? &o->chat_template :
		    !strcmp(k, "remote") ? &o->remote : !strcmp(k, "remote_model") ? &o->remote_model : NULL;
		if (str != NULL) {
			/* o points at the copy; o owns it (opts_free).  Paths may
			 * start with ~/ as in a shell. */
			int is_path = str == &o->model || str == &o->tokenizer || str == &o->db;
			const char *home = getenv("HOME");
			char *val = NULL;
			if (is_path && v[0] == '~' && (v[1] == '/' || v[1] == '\0') && home != NULL && *home) {
				if (asprintf(&val, "%s%s", home, v + 1) < 0)
					val = NULL;
			} else {
				val = strdup(v);
			}
			if (val == NULL || o->n_owned == OPTS_OWNED_MAX) {
				free(val);
				bad = 1;
			} else {
				*str = o->owned[o->n_owned++] = val;
			}
		} else if (!strcmp(k, "threads")) bad = to_int(v, 1, 512, &o->threads);
		else if (!strcmp(k, "remote_timeout")) bad = to_int(v, 1, 86400, &o->remote_timeout);
		else if (!strcmp(k, "ctx_size")) bad = to_int(v, 16, 1 << 20, &o->ctx_size);
		else if (!strcmp(k, "batch_size")) bad = to_int(v, 1, 4096, &o->batch);
		else if (settings_by_key(k) >= 0) {
			char *why = NULL;
			int id = settings_by_key(k);
			if (settings_parse(id, v, &o->gen, &why) != 0) {
				cli_error("%s:%d: %s: %s", path, ln, k, why ? why : "bad value");
				free(why);
				rc = EXIT_USAGE;
				break;
			}
			if (id == SET_SEED)
				o->seed_set = 1;
		} else if (!strcmp(k, "kv_f32")) bad = to_bool(v, &o->kv_f32);
		else if (!strcmp(k, "kv_q8")) bad = to_bool(v, &o->kv_q8);
		else if (!strcmp(k, "kv_cache_max")) {
			bad = to_bytes(v, &o->kv_cache_max);
		} else {
			cli_error("%s:%d: unknown key '%s'", path, ln, k);
			rc = EXIT_USAGE;
			break;
		}
		if (bad && rc == 0) {
			cli_error("%s:%d: bad value '%s' for %s", path, ln, v, k);
			rc = EXIT_USAGE;
		}
	}
	if (rc == 0 && ferror(f)) {
		/* A folder opens, and then reads as an error (EISDIR): not an
		 * empty config to go on without. */
		cli_error("%s: %s", path, strerror(errno));
		rc = 1;
	}
	fclose(f);
	free(path);
	return rc;
}
