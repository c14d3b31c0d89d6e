/*
 * cmd_store_preset.c: the presets command: list, show, add, edit, rm (see
 * cmd_store.h).
 */
#include "app/cmd_store_int.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "app/settings.h"
#include "storage/db.h"
#include "storage/export.h"

/* ---- presets ------------------------------------------------------------------- */

static const char cmd_presets_help[] =
	"usage: " CMD_PROG " presets [list] [--json] [--db FILE]\n"
	"       " CMD_PROG " presets show NAME [--json]\n"
	"       " CMD_PROG " presets add NAME (--system TEXT | --from NAME) [PARAMS]\n"
	"       " CMD_PROG " presets edit NAME [--system TEXT] [PARAMS]\n"
	"       " CMD_PROG " presets rm NAME\n"
	"PARAMS: --temp T  --top-k K  --top-p P  --min-p P  --repeat-penalty R\n"
	"        --repeat-last-n N (the same flags and ranges as the chat's)\n"
	"Built-in presets (assistant, concise, storyteller, translator, sentiment,\n"
	"summarizer, coder) cannot be changed or removed; copy one with\n"
	"`presets add NAME --from assistant` and edit the copy.\n";

/* One-line summary of a params object: "temperature 0.6, top_p 0.9". */
static void
cmd_store_params_line(FILE *f, const char *params)
{
	json_t *p = json_loads(params != NULL ? params : "{}", 0, NULL);
	const char *key;
	json_t *v;
	int first = 1;
	json_object_foreach(p, key, v) {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		fprintf(f, "%s%s %s", first ? "" : ", ", key, s != NULL ? s : "?");
		free(s);
		first = 0;
	}
	if (first)
		fputs("defaults", f);
	json_decref(p);
}

static json_t *
cmd_store_preset_json(const struct db_preset *p)
{
	json_t *params = json_loads(p->params, 0, NULL);
	return json_pack("{s:s, s:b, s:s, s:o}", "name", p->name, "builtin", p->builtin,
	    "system_prompt", p->system_prompt, "params", params != NULL ? params : json_object());
}

static int
cmd_store_presets_list(struct cmd_ctx *x, struct db *d)
{
	struct db_preset *a;
	size_t n;
	char *err = NULL;
	if (db_preset_list(d, &a, &n, &err) != 0)
		return cmd_store_fail_err(err);
	int status = 0;
	if (x->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr != NULL && i < n; i++)
			json_array_append_new(arr, cmd_store_preset_json(&a[i]));
		status = cmd_store_print_json(arr);
	} else {
		int namew = 4, cols = cmd_store_columns();
		for (size_t i = 0; i < n; i++)
			if ((int)strlen(a[i].name) > namew)
				namew = (int)strlen(a[i].name);
		printf("%-*s  %-8s  %s\n", namew, "NAME", "KIND", "SYSTEM PROMPT");
		for (size_t i = 0; i < n; i++) {
			printf("%-*s  %-8s  ", namew, a[i].name, a[i].builtin ? "built-in" : "user");
			int fixed = namew + 2 + 8 + 2;
			cmd_store_put(stdout, *a[i].system_prompt ? a[i].system_prompt : "(none)", 0,
			    cols > fixed + 10 ? cols - fixed : 72, NULL, NULL);
			fputc('\n', stdout);
		}
	}
	db_preset_array_free(a, n);
	return status;
}

static int
cmd_store_presets_show(struct cmd_ctx *x, struct db *d, const char *name)
{
	struct db_preset p;
	char *err = NULL;
	if (db_preset_get(d, name, &p, &err) != 0)
		return cmd_store_fail_err(err);
	int status = 0;
	if (x->json) {
		status = cmd_store_print_json(cmd_store_preset_json(&p));
	} else {
		printf("%s (%s)\nparameters: ", p.name, p.builtin ? "built-in" : "user");
		cmd_store_params_line(stdout, p.params);
		fputs("\nsystem prompt:\n", stdout);
		cmd_store_put(stdout, *p.system_prompt ? p.system_prompt : "(none)", 1, 0, NULL, NULL);
		fputc('\n', stdout);
	}
	db_preset_clear(&p);
	return status;
}

/*
 * presets add / edit: parse --system, --from (add only) and the sampling
 * options, then write.  Params given on the command line are merged into
 * the base (the --from preset's, or the edited preset's own).
 */
static int
cmd_store_presets_write(struct cmd_ctx *x, int argc, char **argv, int add)
{
	enum { OPT_SETTING = 1000 };
	static const struct option fixed[] = {
		{ "system", required_argument, NULL, 's' }, { "from", required_argument, NULL, 'f' },
		{ "temperature", required_argument, NULL, OPT_SETTING + SET_TEMP }, CMD_COMMON_OPTS,
	};
	/* The fixed options and the stored settings of the table (settings.h). */
	struct option lo[sizeof fixed / sizeof fixed[0] + SET_COUNT + 1];
	size_t nlo = sizeof fixed / sizeof fixed[0];
	memcpy(lo, fixed, sizeof fixed);
	for (int i = 0; i < SET_COUNT; i++)
		if (settings_table[i].json != NULL)
			lo[nlo++] = (struct option){ settings_table[i].flag, required_argument, NULL, OPT_SETTING + i };
	lo[nlo] = (struct option){ 0 };
	const char *system = NULL, *from = NULL;
	json_t *set = json_object();
	int c, status = 0;
	if (set == NULL)
		return cmd_store_fail("out of memory");
	while ((c = getopt_long(argc, argv, ":s:h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c >= OPT_SETTING && c < OPT_SETTING + SET_COUNT) {
			int id = c - OPT_SETTING;
			struct gen_settings g = { 0 };
			char *why = NULL;
			if (settings_parse(id, optarg, &g, &why) != 0) {
				json_decref(set);
				cmd_store_usage(x, "--%s: %s", settings_table[id].flag, why ? why : "bad value");
				free(why);
				return CMD_EXIT_USAGE;
			}
			json_object_set_new(set, settings_table[id].json, settings_value_json(id, &g));
			continue;
		}
		switch (c) {
		case 's':
			system = optarg;
			break;
		case 'f':
			if (!add) {
				json_decref(set);
				return cmd_store_usage(x, "--from is for 'presets add'");
			}
			from = optarg;
			break;
		case 'h':
			json_decref(set);
			fputs(cmd_presets_help, stdout);
			return 0;
		default:
			json_decref(set);
			return cmd_store_bad_opt(x, c, argv);
		}
	}
	if (optind >= argc) {
		json_decref(set);
		return cmd_store_usage(x, "which preset? (a NAME)");
	}
	if (optind + 1 < argc) {
		json_decref(set);
		return cmd_store_usage(x, "unexpected argument '%s' (quote the system prompt: "
		    "--system \"...\")", argv[optind + 1]);
	}
	if (add && system == NULL && from == NULL) {
		json_decref(set);
		return cmd_store_usage(x, "a new preset needs --system TEXT or --from NAME");
	}
	if (!add && system == NULL && json_object_size(set) == 0) {
		json_decref(set);
		return cmd_store_usage(x, "nothing to change (give --system or a parameter)");
	}
	const char *name = argv[optind];

	struct db *d = cmd_store_open(x, &status);
	if (d == NULL) {
		json_decref(set);
		return status;
	}
	char *err = NULL, *params = NULL;
	struct db_preset base = { 0 };
	const char *base_name = add ? from : name;
	json_t *merged = NULL;
	if (base_name != NULL && db_preset_get(d, base_name, &base, &err) != 0) {
		status = cmd_store_fail_err(err);
		goto out;
	}
	merged = json_loads(base.params != NULL ? base.params : "{}", 0, NULL);
	if (merged == NULL || !json_is_object(merged))
		merged = (json_decref(merged), json_object());
	json_object_update(merged, set);
	params = json_dumps(merged, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (params == NULL) {
		status = cmd_store_fail("out of memory");
		goto out;
	}
	if (add) {
		if (db_preset_add(d, name, system != NULL ? system : base.system_prompt, params,
		    &err) != 0)
			status = cmd_store_fail_err(err);
	} else if (db_preset_update(d, name, system, json_object_size(set) ? params : NULL,
	    &err) != 0) {
		status = cmd_store_fail_err(err);
	}
	if (status == 0) {
		if (x->json) {
			struct db_preset now;
			if (db_preset_get(d, name, &now, &err) != 0) {
				status = cmd_store_fail_err(err);
			} else {
				status = cmd_store_print_json(cmd_store_preset_json(&now));
				db_preset_clear(&now);
			}
		} else {
			printf("%s preset %s: ", add ? "added" : "changed", name);
			cmd_store_params_line(stdout, params);
			fputc('\n', stdout);
		}
	}
out:
	free(params);
	json_decref(merged);
	json_decref(set);
	db_preset_clear(&base);
	return cmd_store_done(d, status);
}

int
cmd_store_presets(const char *db, int argc, char **argv)
{
	struct cmd_ctx ctx, *x = cmd_store_begin(&ctx, "presets", db);
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : "list";
	int shift = argc > 1 && argv[1][0] != '-';

	if (strcmp(sub, "add") == 0 || strcmp(sub, "edit") == 0) {
		x->name = strcmp(sub, "add") == 0 ? "presets add" : "presets edit";
		return cmd_store_presets_write(x, argc - 1, argv + 1, sub[0] == 'a');
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 && strcmp(sub, "rm") != 0)
		return cmd_store_usage(x, "unknown presets command '%s' (list, show, add, edit, rm)",
		    sub);
	x->name = strcmp(sub, "list") == 0 ? "presets list" :
	    strcmp(sub, "show") == 0 ? "presets show" : "presets rm";

	static const struct option lo[] = { CMD_COMMON_OPTS, { 0 } };
	int c;
	argc -= shift;
	argv += shift;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (cmd_store_common(x, c))
			continue;
		if (c == 'h') {
			fputs(cmd_presets_help, stdout);
			return 0;
		}
		return cmd_store_bad_opt(x, c, argv);
	}
	int want = strcmp(sub, "list") == 0 ? 0 : 1;
	if (argc - optind < want)
		return cmd_store_usage(x, "which preset? (a NAME)");
	if (argc - optind > want)
		return cmd_store_usage(x, "unexpected argument '%s'", argv[optind + want]);

	int status = 0;
	struct db *d = cmd_store_open(x, &status);
	if (d == NULL)
		return status;
	if (want == 0) {
		status = cmd_store_presets_list(x, d);
	} else if (strcmp(sub, "show") == 0) {
		status = cmd_store_presets_show(x, d, argv[optind]);
	} else {
		char *err = NULL;
		if (db_preset_remove(d, argv[optind], &err) != 0)
			status = cmd_store_fail_err(err);
		else if (x->json)
			status = cmd_store_print_json(json_pack("{s:s}", "removed", argv[optind]));
		else
			printf("removed preset %s\n", argv[optind]);
	}
	return cmd_store_done(d, status);
}
