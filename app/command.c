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
/* The flags every way of chatting takes, and those of the ones that print
 * (-p, run, chat). */
#define USES_CHAT (U_MODEL | U_THREADS | U_CTX | U_GEN | U_TEMPLATE | U_CHAT | U_VERBOSE)
#define USES_PRINT (USES_CHAT | U_JSON | U_IDS | U_STATS)

static int
command_chat(struct opts *o)
{
	if (o->prompt && o->prompt_file)
		return cli_usage_error("-p and -f both give the message: use one");
	if (o->nargs > 0 && o->args[0][0] != '\0')
		return cli_usage_error("unknown command '%s' (to ask a question, use -p TEXT or "
		    PROG " run TEXT)", o->args[0]);
	int ui = !o->prompt && !o->prompt_file && isatty(STDIN_FILENO);
	if (o->json && ui)
		return cli_usage_error("--json is for -p, run and chat (the interface has no JSON output)");
	int rc = cli_check_uses(o, ui ? "the interface" : o->prompt || o->prompt_file ? "-p" : "chat",
	    ui ? USES_CHAT : USES_PRINT | U_PROMPT | U_FILE);
	if (rc != 0)
		return rc;
	if (o->ids && !o->json)
		return cli_usage_error("--ids: add --json (with -p, run and chat the ids go into each JSON object)");
	if (o->prompt || o->prompt_file)
		return cmd_oneshot(o);
	return ui ? cmd_chat_ui(o) : cmd_chat_pipe(o);
}

/* run QUESTION...: the positional words are the message, as in ollama run
 * and llm; "-" alone reads stdin. */
static int
command_run_prompt(struct opts *o)
{
	if (o->nargs == 0 && o->prompt == NULL && o->prompt_file == NULL)
		return cli_usage_error("run: what to ask? (" PROG " run [-m MODEL] QUESTION...)");
	if (o->nargs > 0 && (o->prompt != NULL || o->prompt_file != NULL))
		return cli_usage_error("run: the question is given twice (words and -p/-f)");
	char *joined = NULL;
	if (o->nargs > 0) {
		if ((joined = cli_join_args(o)) == NULL) {
			cli_error("out of memory");
			return 1;
		}
		o->prompt = joined;
		o->nargs = 0;
	}
	int rc = command_chat(o);
	free(joined);
	return rc;
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
	unsigned uses;            /* U_*: the kinds of flag it takes (others are refused) */
} command_table[] = {
	{ "chat", command_chat, NULL, ~0u },   /* it checks its own, by mode */
	{ "run", command_run_prompt, NULL, ~0u },
	{ "tokenize", cmd_tokenize, NULL, U_MODEL | U_NO_BOS },
	{ "complete", cmd_complete, NULL,
	  U_MODEL | U_THREADS | U_CTX | U_GEN | U_PROMPT | U_PROMPT_IDS | U_IDS | U_NO_BOS | U_VERBOSE },
	{ "info", cmd_info, NULL, U_MODEL | U_TEMPLATE | U_JSON },   /* it prints the chat format */
	{ "render", cmd_render, NULL, U_MODEL | U_TEMPLATE | U_IDS },
	{ "bench", cmd_bench, NULL, U_MODEL | U_THREADS | U_CTX | U_REPS | U_JSON },
	{ "cache", cmd_cache, NULL, 0 },
	{ "replay", cmd_replay, NULL, U_MODEL | U_THREADS },
	{ "regenerate", cmd_regenerate, NULL, USES_PRINT },
	{ "branch", cmd_branch, NULL, 0 },
	{ "help", command_help, NULL, ~0u },
	{ "list", NULL, cmd_store_list, 0 },
	{ "show", NULL, cmd_store_show, 0 },
	{ "export", NULL, cmd_store_export, 0 },
	{ "import", NULL, cmd_store_import, 0 },
	{ "search", NULL, cmd_store_search, 0 },
	{ "rename", NULL, cmd_store_rename, 0 },
	{ "rm", NULL, cmd_store_rm, 0 },
	{ "presets", NULL, cmd_store_presets, 0 },
	{ "perplexity", NULL, cmd_tools_perplexity, 0 }, { "quantize", NULL, cmd_tools_quantize, 0 },
};

static const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof command_table / sizeof command_table[0]; i++)
		if (strcmp(name, command_table[i].name) == 0)
			return &command_table[i];
	return NULL;
}

/*
 * The llama-cli spellings people type first.  Single-dash words of more
 * than one letter would reach getopt as bundles (-ngl 99 as -n gl), so
 * they are handled here, before it: an alias is rewritten, a flag with no
 * meaning here is refused with what to use instead.  Returns 0, or the
 * exit status after printing one line.
 */
static int
command_alias(char **argv, int i, int *drop)
{
	const char *a = argv[i];
	*drop = 0;
	if (strcmp(a, "-ngl") == 0 || strncmp(a, "--n-gpu-layers", 14) == 0 ||
	    strncmp(a, "--gpu-layers", 12) == 0 || strncmp(a, "-ngl=", 5) == 0)
		return cli_usage_error("%s: no GPU offload; this engine runs on the CPU (drop the flag, "
		    "-t N sets the threads)", a);
	if (strcmp(a, "--no-mmap") == 0 || strcmp(a, "--mlock") == 0)
		return cli_usage_error("%s: not supported; the model is always mapped read-only and "
		    "paged in on first use (drop the flag)", a);
	if (strcmp(a, "-sys") == 0 || strcmp(a, "--system-prompt") == 0) {
		argv[i] = (char *)"-s";
		return 0;
	}
	if (strcmp(a, "-cnv") == 0 || strcmp(a, "--conversation") == 0 || strcmp(a, "--color") == 0 ||
	    strcmp(a, "-co") == 0) {
		/* The interactive chat is what runs without -p, and colour is
		 * on whenever stdout is a terminal (NO_COLOR turns it off). */
		*drop = 1;
		return 0;
	}
	if (strcmp(a, "-c") == 0 && argv[i + 1] != NULL && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
		return cli_usage_error("-c is --continue here; for a context of %s tokens use --ctx-size %s",
		    argv[i + 1], argv[i + 1]);
	if (strncmp(a, "-c", 2) == 0 && a[2] >= '0' && a[2] <= '9')
		return cli_usage_error("-c is --continue here; for a context of %s tokens use --ctx-size %s",
		    a + 2, a + 2);
	return 0;
}

/* Does argv[i] take the next word as its value (our options and the
 * llama-cli spellings that do)? */
static int
command_takes_value(const char *a)
{
	return cli_option_takes_value(a) || strcmp(a, "-sys") == 0 || strcmp(a, "--system-prompt") == 0 ||
	    strcmp(a, "-ngl") == 0 || strcmp(a, "--n-gpu-layers") == 0 || strcmp(a, "--gpu-layers") == 0;
}

/*
 * Before getopt: rewrite the aliases, answer --version, and move the
 * subcommand to argv[1] when global options come first
 * (`llama2-chat --db x.db list`), skipping the values of options that take
 * one so that `-m list` is not read as the command.  argv is edited in
 * place (words dropped shift the rest down); *argc follows.
 */
static int
command_normalize(int *argc, char **argv, int *version)
{
	int sub = -1, cnv = 0, prompt = 0;
	*version = 0;
	/* The subcommand: the first word that is not an option or a value. */
	for (int i = 1; i < *argc && sub < 0; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			sub = i;
		else if (command_takes_value(argv[i]) && i + 1 < *argc)
			i++;
	}
	const struct command *c = sub > 0 ? command_find(argv[sub]) : NULL;
	/* Commands with options of their own (perplexity -c N, ...) see
	 * theirs untouched: the aliases apply before them only. */
	int end = c != NULL && c->run_argv != NULL ? sub : *argc;
	for (int i = 1; i < end; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (argv[i][0] != '-' || argv[i][1] == '\0')
			continue;
		if ((sub < 0 || i < sub) && (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0))
			*version = 1;
		if (strcmp(argv[i], "-cnv") == 0 || strcmp(argv[i], "--conversation") == 0)
			cnv = 1;
		if (strcmp(argv[i], "-p") == 0 || strncmp(argv[i], "--prompt=", 9) == 0 ||
		    strcmp(argv[i], "--prompt") == 0)
			prompt = 1;
		int drop, rc = command_alias(argv, i, &drop);
		if (rc != 0)
			return rc;
		if (drop) {
			memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
			(*argc)--;
			end--;
			if (sub > i)
				sub--;
			i--;
			continue;
		}
		if (command_takes_value(argv[i]) && i + 1 < *argc)
			i++;
	}
	if (cnv && prompt)
		return cli_usage_error("-cnv: the interactive chat is what runs without -p; -p sends one "
		    "message and exits (use one or the other)");
	if (sub > 1 && c != NULL) {
		char *name = argv[sub];
		memmove(&argv[2], &argv[1], (size_t)(sub - 1) * sizeof *argv);
		argv[1] = name;
	}
	return 0;
}

int
command_run(int argc, char **argv)
{
	int version;
	int rc0 = command_normalize(&argc, argv, &version);
	if (rc0 != 0)
		return rc0;
	if (version) {
		puts(PROG " " VERSION);
		return 0;
	}
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
			rc = cli_usage_error("unknown command '%s' (to ask a question, use -p TEXT or "
			    PROG " run TEXT)", sub);
		else if (c != NULL && (rc = cli_check_uses(&o, c->name, c->uses)) == 0)
			rc = c->run(&o);
		else if (c == NULL)
			rc = command_chat(&o);
	}
	opts_free(&o);
	return rc;
}
