/*
 * command.c: the one table of subcommands and the order every run follows:
 * settings in order of precedence (built-in defaults, the config file, the
 * environment, the command line), then the subcommand.
 *
 * Invariant: the config file is read before any command runs, so its
 * settings (db = FILE above all) reach the storage commands too.  Commands
 * that run a model take their options through cli_parse into struct opts;
 * the storage commands parse their own (getopt_long over argv) and get the
 * database the config file and $LLAMA2_CHAT_DB chose as their default.
 */
#include "app/command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/cmd_chat.h"
#include "app/cmd_engine.h"
#include "app/cmd_store.h"
#include "app/cmd_tree.h"
#include "app/cmd_tools.h"
#include "app/config.h"
#include "app/kvcache.h"

/* chat, and no subcommand: -p runs one turn to stdout, a pipe on stdin is
 * chatted line by line, and a terminal gets the ncurses interface. */
static int
command_chat(struct opts *o)
{
	if (o->prompt)
		return cmd_oneshot(o);
	return isatty(STDIN_FILENO) ? cmd_chat_ui(o) : cmd_chat_pipe(o);
}

static int
command_help(struct opts *o)
{
	cli_help(stdout);
	return 0;
}

static const struct command {
	const char *name;
	int (*run)(struct opts *o);                           /* after cli_parse */
	int (*run_argv)(const char *db, int argc, char **argv); /* own options */
} command_table[] = {
	{ "chat", command_chat, NULL },
	{ "tokenize", cmd_tokenize, NULL },
	{ "complete", cmd_complete, NULL },
	{ "info", cmd_info, NULL },
	{ "render", cmd_render, NULL },
	{ "bench", cmd_bench, NULL },
	{ "cache", cmd_cache, NULL },
	{ "replay", cmd_replay, NULL },
	{ "regenerate", cmd_regenerate, NULL },
	{ "branch", cmd_branch, NULL },
	{ "help", command_help, NULL },
	{ "list", NULL, cmd_store_list },
	{ "show", NULL, cmd_store_show },
	{ "export", NULL, cmd_store_export },
	{ "import", NULL, cmd_store_import },
	{ "search", NULL, cmd_store_search },
	{ "rename", NULL, cmd_store_rename },
	{ "rm", NULL, cmd_store_rm },
	{ "presets", NULL, cmd_store_presets },
	{ "perplexity", NULL, cmd_tools_perplexity }, { "quantize", NULL, cmd_tools_quantize },
};

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof command_table / sizeof command_table[0]; i++)
		if (strcmp(name, command_table[i].name) == 0)
			return &command_table[i];
	return NULL;
}

int
command_run(int argc, char **argv)
{
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
	const struct command *c = sub != NULL ? command_find(sub) : NULL;

	struct opts o;
	memset(&o, 0, sizeof o);
	engine_sampling_default(&o.gen.samp);
	o.kv_cache_max = 2LL << 30;
	int rc = config_load(&o, config_flag(argc, argv));
	if (rc != 0) {
		opts_free(&o);
		return rc;
	}
	const char *env = getenv("LLAMA2_CHAT_MODEL");
	if (env && *env) {
		o.model = env;
		o.remote = NULL;   /* the environment beats the config file's remote */
	}
	env = getenv("LLAMA2_CHAT_DB");
	if (env && *env)
		o.db = env;

	if (c != NULL && c->run_argv != NULL) {
		rc = c->run_argv(o.db, argc - 1, argv + 1);
		opts_free(&o);
		return rc;
	}
	rc = sub ? cli_parse(&o, argc - 1, argv + 1, sub) : cli_parse(&o, argc, argv, NULL);
	if (rc == 0) {
		if (sub != NULL && c == NULL)
			rc = cli_usage_error("unknown command '%s'", sub);
		else if (sub == NULL && o.nargs > 0)
			rc = cli_usage_error("unknown command '%s'", o.args[0]);
		else
			rc = c != NULL ? c->run(&o) : command_chat(&o);
	}
	opts_free(&o);
	return rc;
}
