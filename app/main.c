/*
 * main.c: the program's entry: settings in order of precedence (built-in
 * defaults, the config file, the environment, the command line), then the
 * subcommand.
 *
 * Without a subcommand: -p runs one chat turn to stdout, a pipe on stdin is
 * chatted line by line, and a terminal gets the ncurses interface.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/cmd_chat.h"
#include "app/cmd_engine.h"
#include "app/cmd_store.h"
#include "app/cmd_tools.h"
#include "app/config.h"
#include "app/kvcache.h"
#include "ui/ui.h"

static int
dispatch(const char *sub, struct opts *o)
{
	if (sub == NULL) {
		if (o->nargs > 0)
			return cli_usage_error("unknown command '%s'", o->args[0]);
		if (o->prompt)
			return cmd_oneshot(o);
		if (!isatty(STDIN_FILENO))
			return cmd_chat_pipe(o);
		return ui_run(o);
	}
	if (strcmp(sub, "chat") == 0)
		return o->prompt ? cmd_oneshot(o) : isatty(STDIN_FILENO) ? ui_run(o) : cmd_chat_pipe(o);
	if (strcmp(sub, "tokenize") == 0)
		return cmd_tokenize(o);
	if (strcmp(sub, "complete") == 0)
		return cmd_complete(o);
	if (strcmp(sub, "info") == 0)
		return cmd_info(o);
	if (strcmp(sub, "render") == 0)
		return cmd_render(o);
	if (strcmp(sub, "bench") == 0)
		return cmd_bench(o);
	if (strcmp(sub, "cache") == 0)
		return cmd_cache(o);
	if (strcmp(sub, "help") == 0) {
		cli_help(stdout);
		return 0;
	}
	return cli_usage_error("unknown command '%s'", sub);
}

int
main(int argc, char **argv)
{
	const char *sub = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
	if (sub && cmd_store_is_command(sub))
		return cmd_store_run(argc - 1, argv + 1);
	if (sub && cmd_tools_is_command(sub))
		return cmd_tools_run(argc - 1, argv + 1);

	struct opts o;
	memset(&o, 0, sizeof o);
	engine_sampling_default(&o.samp);
	o.kv_cache_max = 2LL << 30;
	int rc = config_load(&o, config_flag(argc, argv));
	if (rc != 0) {
		opts_free(&o);
		return rc;
	}
	const char *env = getenv("LLAMA2_CHAT_MODEL");
	if (env && *env)
		o.model = env;
	rc = sub ? cli_parse(&o, argc - 1, argv + 1, sub) : cli_parse(&o, argc, argv, NULL);
	if (rc != 0) {
		opts_free(&o);
		return rc;
	}

	rc = dispatch(sub, &o);
	opts_free(&o);
	return rc;
}
