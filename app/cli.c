/*
 * cli.c: option parsing shared by the subcommands, and the error formats.
 *
 * Every subcommand takes the same model and sampling options, so one table
 * serves them all; each flag given is recorded by its kind (U_*), and a
 * command refuses the kinds it has no use for (cli_check_uses) rather than
 * ignoring them silently.
 * getopt_long's own messages are turned off (opterr = 0) so that every
 * usage error is one line in our format.
 */
#include "app/cli.h"
#include "common/num.h"
#include "engine/chat.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	OPT_TOKENIZER = 1000, OPT_CONFIG, OPT_DB, OPT_PRESET, OPT_PROMPT_IDS, OPT_RESUME, OPT_CTX,
	OPT_IDS, OPT_NO_BOS,
	OPT_KV_F32, OPT_KV_Q8, OPT_JSON, OPT_STATS, OPT_NO_SAVE, OPT_FORCE, OPT_YES, OPT_FORMAT, OPT_BATCH, OPT_REPS,
	OPT_VERBOSE, OPT_IGNORE_EOS, OPT_REMOTE, OPT_REMOTE_MODEL, OPT_REMOTE_TIMEOUT, OPT_VERSION,
	OPT_CHAT_TEMPLATE,
	OPT_SETTING = 2000,       /* + enum setting_id: the settings table's flags */
};

static const struct option long_opts[] = {
	{ "model", required_argument, NULL, 'm' },
	{ "tokenizer", required_argument, NULL, OPT_TOKENIZER },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "db", required_argument, NULL, OPT_DB },
	{ "system", required_argument, NULL, 's' },
	{ "preset", required_argument, NULL, OPT_PRESET },
	{ "prompt", required_argument, NULL, 'p' },
	{ "prompt-ids", required_argument, NULL, OPT_PROMPT_IDS },
	{ "continue", no_argument, NULL, 'c' },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "n-predict", required_argument, NULL, 'n' },
	{ "ctx-size", required_argument, NULL, OPT_CTX },
	{ "threads", required_argument, NULL, 't' },
	{ "batch-size", required_argument, NULL, OPT_BATCH },
	{ "ids", no_argument, NULL, OPT_IDS },
	{ "no-bos", no_argument, NULL, OPT_NO_BOS },
	{ "kv-f32", no_argument, NULL, OPT_KV_F32 },
	{ "kv-q8", no_argument, NULL, OPT_KV_Q8 },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "no-save", no_argument, NULL, OPT_NO_SAVE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "yes", no_argument, NULL, OPT_YES },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "output", required_argument, NULL, 'o' },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "repetitions", required_argument, NULL, 'r' },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "ignore-eos", no_argument, NULL, OPT_IGNORE_EOS },
	{ "remote", required_argument, NULL, OPT_REMOTE },
	{ "remote-model", required_argument, NULL, OPT_REMOTE_MODEL },
	{ "remote-timeout", required_argument, NULL, OPT_REMOTE_TIMEOUT },
	{ "file", required_argument, NULL, 'f' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "chat-template", required_argument, NULL, OPT_CHAT_TEMPLATE },
	{ "help", no_argument, NULL, 'h' },
};
#define N_FIXED (sizeof long_opts / sizeof long_opts[0])

/* long_opts and one option per setting of the table (settings.h). */
static const struct option *
cli_options(void)
{
	static struct option all[N_FIXED + SET_COUNT + 1];
	if (all[0].name == NULL) {
		memcpy(all, long_opts, sizeof long_opts);
		for (int i = 0; i < SET_COUNT; i++)
			all[N_FIXED + i] = (struct option){ settings_table[i].flag, required_argument, NULL, OPT_SETTING + i };
	}
	return all;
}

/* A setting's value from the command line ("--temp", "-n"): 0 or a usage error. */
static int
cli_setting(struct opts *o, int id, const char *shown, const char *text)
{
	char *why = NULL;
	if (settings_parse(id, text, &o->gen, &why) != 0) {
		cli_usage_error("%s: %s", shown, why ? why : "bad value");
		free(why);
		return EXIT_USAGE;
	}
	o->gen_set |= 1u << id;
	if (id == SET_SEED)
		o->seed_set = 1;
	return 0;
}

void
cli_verror(const char *fmt, va_list ap)
{
	fflush(stdout);            /* what was printed so far comes first */
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_verror(fmt, ap);
	va_end(ap);
}

int
cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try '" PROG " --help')\n", stderr);
	return EXIT_USAGE;
}

static int
parse_int(const char *flag, const char *s, long lo, long hi, int *out)
{
	long long v;
	if (num_long(s, lo, hi, &v) != 0)
		return cli_usage_error("%s: '%s' is not a whole number from %ld to %ld", flag, s, lo, hi);
	*out = (int)v;
	return 0;
}

/* Record that a flag of kind u was given (flag: its name in --help; a
 * settings flag comes without its dashes). */
static void
cli_used(struct opts *o, unsigned u, const char *flag)
{
	int k = __builtin_ctz(u);
	o->used |= u;
	if (o->used_flag[k] == NULL)
		o->used_flag[k] = flag;
}

int
cli_check_uses(const struct opts *o, const char *cmd, unsigned uses)
{
	unsigned extra = o->used & ~uses;
	if (extra == 0)
		return 0;
	int k = __builtin_ctz(extra);
	const char *f = o->used_flag[k];
	const char *dash = f[0] == '-' ? "" : "--";
	if ((1u << k) == U_STORE)
		return cli_usage_error("%s%s is an option of export, rm and presets (after the command), not of %s",
		    dash, f, cmd);
	return cli_usage_error("%s%s does nothing for %s: drop it", dash, f, cmd);
}

int
cli_parse(struct opts *o, int argc, char **argv, const char *cmd)
{
	int c, bad = 0;
	opterr = 0;
	optind = 1;
	while (!bad && (c = getopt_long(argc, argv, ":m:s:p:f:cn:t:o:r:hV", cli_options(), NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; o->local_flags |= LOCAL_MODEL; cli_used(o, U_MODEL, "-m"); break;
		case OPT_TOKENIZER:
			o->tokenizer = optarg;
			o->local_flags |= LOCAL_TOKENIZER;
			cli_used(o, U_MODEL, "--tokenizer");
			break;
		case OPT_CONFIG: o->config = optarg; break;
		case OPT_DB: o->db = optarg; break;
		case 's': o->system = optarg; cli_used(o, U_CHAT, "-s"); break;
		case OPT_PRESET: o->preset = optarg; cli_used(o, U_CHAT, "--preset"); break;
		case 'p':
			/* bench's -p is the prompt length, as in llama-bench. */
			if (cmd && strcmp(cmd, "bench") == 0)
				bad = parse_int("-p", optarg, 0, 1 << 20, &o->n_prompt_bench), o->bench_p_set = 1;
			else
				o->prompt = optarg;
			if (!cmd || strcmp(cmd, "bench") != 0)
				cli_used(o, U_PROMPT, "-p");
			break;
		case OPT_PROMPT_IDS: o->prompt_ids = optarg; cli_used(o, U_PROMPT_IDS, "--prompt-ids"); break;
		case 'c': o->cont = 1; cli_used(o, U_CHAT, "-c"); break;
		case OPT_RESUME: o->resume = optarg; cli_used(o, U_CHAT, "--resume"); break;
		case 'n':
			if (cmd && strcmp(cmd, "bench") == 0)
				bad = parse_int("-n", optarg, 0, 1 << 20, &o->n_gen_bench), o->bench_n_set = 1;
			else
				bad = cli_setting(o, SET_N_PREDICT, "-n", optarg);
			if (!cmd || strcmp(cmd, "bench") != 0)
				cli_used(o, U_GEN, "-n");
			break;
		case OPT_CTX:
			bad = parse_int("--ctx-size", optarg, 16, 1 << 20, &o->ctx_size);
			o->local_flags |= LOCAL_CTX;
			cli_used(o, U_CTX, "--ctx-size");
			break;
		case 't':
			bad = parse_int("-t", optarg, 1, 512, &o->threads);
			o->local_flags |= LOCAL_THREADS;
			cli_used(o, U_THREADS, "-t");
			break;
		case OPT_BATCH:
			bad = parse_int("--batch-size", optarg, 1, 4096, &o->batch);
			o->local_flags |= LOCAL_BATCH;
			cli_used(o, U_CTX, "--batch-size");
			break;
		case OPT_IDS: o->ids = 1; cli_used(o, U_IDS, "--ids"); break;
		case OPT_NO_BOS: o->no_bos = 1; cli_used(o, U_NO_BOS, "--no-bos"); break;
		/* The command line beats the config file's kv_f32 / kv_q8. */
		case OPT_KV_F32: o->kv_f32 = 1; o->kv_q8 = 0; o->local_flags |= LOCAL_KV_F32; cli_used(o, U_CTX, "--kv-f32"); break;
		case OPT_KV_Q8: o->kv_q8 = 1; o->kv_f32 = 0; o->local_flags |= LOCAL_KV_Q8; cli_used(o, U_CTX, "--kv-q8"); break;
		case OPT_JSON: o->json = 1; cli_used(o, U_JSON, "--json"); break;
		case OPT_STATS: o->stats = 1; cli_used(o, U_STATS, "--stats"); break;
		case OPT_NO_SAVE: o->no_save = 1; cli_used(o, U_CHAT, "--no-save"); break;
		case OPT_FORCE: o->force = 1; break;
		case OPT_YES: o->yes = 1; cli_used(o, U_STORE, "--yes"); break;
		case OPT_FORMAT: o->format = optarg; cli_used(o, U_STORE, "--format"); break;
		case 'o': o->output = optarg; cli_used(o, U_STORE, "-o"); break;
		case 'r': case OPT_REPS:
			bad = parse_int("-r", optarg, 1, 1000, &o->reps);
			cli_used(o, U_REPS, "-r");
			break;
		case OPT_VERBOSE: o->verbose = 1; cli_used(o, U_VERBOSE, "--verbose"); break;
		case OPT_IGNORE_EOS: o->gen.samp.ignore_eos = 1; cli_used(o, U_GEN, "--ignore-eos"); break;
		case OPT_REMOTE: o->remote = optarg; o->remote_cli = 1; cli_used(o, U_MODEL, "--remote"); break;
		case OPT_REMOTE_MODEL:
			o->remote_model = optarg;
			o->remote_flag = "--remote-model";
			cli_used(o, U_MODEL, "--remote-model");
			break;
		case OPT_REMOTE_TIMEOUT:
			bad = parse_int("--remote-timeout", optarg, 1, 86400, &o->remote_timeout);
			o->remote_flag = "--remote-timeout";
			cli_used(o, U_MODEL, "--remote-timeout");
			break;
		case OPT_CHAT_TEMPLATE:
			o->chat_template = optarg;
			o->local_flags |= LOCAL_TEMPLATE;
			cli_used(o, U_TEMPLATE, "--chat-template");
			break;
		case 'f': o->prompt_file = optarg; cli_used(o, U_FILE, "-f"); break;
		case 'h': cli_help_command(stdout, cmd); exit(0);
		case 'V': case OPT_VERSION: puts(PROG " " VERSION); exit(0);
		case ':':
			bad = cli_usage_error("option '%s' needs a value", argv[optind - 1]);
			break;
		default:
			if (c >= OPT_SETTING && c < OPT_SETTING + SET_COUNT) {
				char shown[64];
				snprintf(shown, sizeof shown, "--%s", settings_table[c - OPT_SETTING].flag);
				bad = cli_setting(o, c - OPT_SETTING, shown, optarg);
				cli_used(o, U_GEN, settings_table[c - OPT_SETTING].flag);
				break;
			}
			if (optopt)
				bad = cli_usage_error("unknown option '-%c'", optopt);
			else
				bad = cli_usage_error("unknown option '%s'", argv[optind - 1]);
			break;
		}
	}
	if (bad)
		return EXIT_USAGE;
	if (o->cont && o->resume)
		return cli_usage_error("-c and --resume both say which conversation to continue: give one");
	if ((o->local_flags & LOCAL_KV_F32) && (o->local_flags & LOCAL_KV_Q8))
		return cli_usage_error("--kv-f32 and --kv-q8 both given: the KV cache has one type");
	/* Engines by precedence: -m on the command line beats a remote from
	 * the config file; both on the command line is a mistake. */
	if (o->remote_cli && (o->local_flags & LOCAL_MODEL))
		return cli_usage_error("-m and --remote both given: choose the local model or the server");
	if (o->local_flags & LOCAL_MODEL)
		o->remote = NULL;
	if (o->remote_cli && cmd && (!strcmp(cmd, "complete") || !strcmp(cmd, "tokenize") ||
	    !strcmp(cmd, "render") || !strcmp(cmd, "bench")))
		return cli_usage_error("%s needs a local model (-m); --remote serves chat and info", cmd);
	o->args = argv + optind;
	o->nargs = argc - optind;
	return 0;
}

void
cli_help(FILE *f)
{
	fputs(
"usage: " PROG " [-m MODEL] [options]            open the chat interface\n"
"       " PROG " -m MODEL [-s SYSTEM] -p MESSAGE  one reply to stdout (-p - sends all of stdin\n"
"                                                as one message, -f FILE a file's contents)\n"
"       " PROG " run [-m MODEL] [options] QUESTION...  the same, the words as the message\n"
"       " PROG " chat -m MODEL [--stats] [--json]  one message per line of stdin\n"
"       " PROG " complete -m MODEL [--ids] TEXT  continue TEXT, no chat template\n"
"       " PROG " tokenize (-m MODEL | --tokenizer FILE) [--no-bos] (TEXT | -)\n"
"       " PROG " render (-m MODEL | --tokenizer FILE) [--ids] < dialog.json\n"
"       " PROG " info (-m MODEL | --remote URL) [--json]\n"
"       " PROG " bench -m MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json]\n"
"       " PROG " list [--limit N] [--json] | show ID [--json] | export ID | import FILE\n"
"       " PROG " search QUERY | rename ID TITLE | rm ID...\n"
"       " PROG " presets [list | show NAME | add NAME --system TEXT | edit NAME ... | rm NAME]\n"
"       " PROG " cache [list | clear]                KV snapshots kept for instant resume\n"
"       " PROG " regenerate [ID] | show ID --tree | branch ID [N] | replay ID   branches, exact replay\n"
"       " PROG " perplexity -m MODEL -f TEXT [-c N]  the model's loss on a text (see --help)\n"
"       " PROG " quantize IN.gguf OUT.gguf TYPE  a smaller model file (see --help)\n"
"       " PROG " COMMAND --help                      each command's own options\n"
"\n"
"model:\n"
"  -m, --model FILE        GGUF (v2/v3) or llama2.c checkpoint; default $LLAMA2_CHAT_MODEL\n"
"      --tokenizer FILE    tokenizer.bin for llama2.c checkpoints\n"
"  -t, --threads N         threads (default: physical cores)\n"
"      --ctx-size N        context window in tokens (default: the model's, at most 4096;\n"
"                          more than the model was trained on needs --force)\n"
"      --batch-size N      prompt tokens per forward pass (default 128)\n"
"      --kv-f32            keep the KV cache in float32 (default float16)\n"
"      --kv-q8             keep the KV cache in Q8_0: about half the memory of float16\n"
"                          (as llama.cpp's -ctk q8_0 -ctv q8_0)\n"
"      --remote URL        run the model on an OpenAI-compatible server instead\n"
"                          (http://host:8000/v1; key from $LLAMA2_CHAT_API_KEY)\n"
"      --remote-model NAME the server's model (default: its first)\n"
"      --remote-timeout S  give up when the server sends nothing for S seconds (60)\n"
"generation:\n"
"  -n, --n-predict N       most tokens in one reply (default: until EOS)\n"
"      --temp T            temperature, 0 = greedy (0.8)\n"
"      --top-k K           (40)     --top-p P (0.95)     --min-p P (0.05)\n"
"      --repeat-penalty R  (1.0)    --repeat-last-n N (64)\n"
"      --seed S            random seed (default: random)\n"
"      --ignore-eos        never end a reply at EOS (-n or the window ends it)\n"
"      --chat-template NAME  llama2, llama3, llama3.1, mistral, zephyr or chatml\n"
"                          instead of the format the model file names\n"
"      --prompt-ids LIST   complete: comma-separated ids instead of text\n"
"      --ids               print ids instead of text (with --json: add them)\n"
"      --no-bos            tokenize/complete: no BOS token first\n"
"chat:\n"
"  -s, --system TEXT       system prompt      --preset NAME   a stored or built-in preset\n"
"  -p, --prompt TEXT       one message        -c, --continue  the last conversation\n"
"  -f, --file FILE         one message read from FILE\n"
"      --resume ID         a stored conversation     --no-save  keep nothing\n"
"      --json              -p, run, chat: one JSON object per reply on stdout\n"
"      --stats             per-turn statistics on stderr\n"
"      --verbose           KV snapshot use (and why not), history past the window\n"
"      --db FILE           database (default $XDG_DATA_HOME/llama2-chat/chats.db)\n"
"      --config FILE       config (default $XDG_CONFIG_HOME/llama2-chat/config)\n"
"bench:\n"
"  -p N, -n N              prompt and generated tokens   -r, --repetitions N  runs (5)\n"
"  -h, --help              this text          -V, --version   the version\n"
"Exit status: 0 done, 1 failed, 2 usage error, 130 interrupted.\n", f);
}

static const struct {
	const char *cmd, *usage;
} cli_command_usage[] = {
	{ "run", "usage: " PROG " run [-m MODEL] [-s SYSTEM] [--preset NAME] [--json] [options] QUESTION...\n"
	    "Send the words (joined by spaces) as one message and print the reply, as\n"
	    "'" PROG " -p' does; '-' alone reads the message from stdin.\n" },
	{ "chat", "usage: " PROG " chat [-m MODEL] [-s SYSTEM] [--preset NAME] [--stats] [--json] < lines\n"
	    "Each line of stdin is one message; each reply is printed followed by a blank\n"
	    "line (--json: one JSON object per line).  A line that is not UTF-8 is reported\n"
	    "with its number and skipped.  -p TEXT, -f FILE: one message instead.\n" },
	{ "tokenize", "usage: " PROG " tokenize (-m MODEL | --tokenizer FILE) [--no-bos] (TEXT... | -)\n"
	    "Print the token ids of TEXT (the words joined by spaces; '-' reads stdin).\n" },
	{ "complete", "usage: " PROG " complete -m MODEL [-n N] [--ids] [--no-bos] [--prompt-ids LIST] TEXT...\n"
	    "Continue TEXT with no chat template; sampling options as for chat.\n" },
	{ "render", "usage: " PROG " render (-m MODEL | --tokenizer FILE) [--ids] < dialog.json\n"
	    "Print the prompt the chat template makes of a [{\"role\",\"content\"}] array.\n" },
	{ "info", "usage: " PROG " info -m MODEL [--json]\n"
	    "Print the model's shape, vocabulary, context and tensor types.\n" },
	{ "bench", "usage: " PROG " bench -m MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json]\n"
	    "Prompt processing (-p tokens) and generation (-n tokens) speed, as llama-bench\n"
	    "measures them, averaged over -r runs (default 5).  -p 0 or -n 0 leaves that\n"
	    "test out; -p without -n measures the prompt alone.\n" },
	{ "regenerate", "usage: " PROG " regenerate [-m MODEL] [--json] [--stats] [options] [ID]\n"
	    "Generate the last reply of conversation ID (default: the last one) again with\n"
	    "a new seed and print it as -p does; the old reply stays as an alternative.\n" },
	{ "branch", "usage: " PROG " branch ID [N]\n"
	    "Make alternative N (1, 2, ...) at the last fork of the current branch current;\n"
	    "without N, say how many there are.\n" },
	{ "replay", "usage: " PROG " replay [-m MODEL] [-t N] ID\n"
	    "Generate each reply of the current branch again from its replay record and say\n"
	    "whether it is identical; exit status 0 when all are, 1 otherwise.\n" },
	{ "cache", "usage: " PROG " cache [list | clear]\n"
	    "List or remove the KV snapshots kept for instant resume\n"
	    "($XDG_CACHE_HOME/llama2-chat/kv, at most kv_cache_max bytes).\n" },
};

void
cli_help_command(FILE *f, const char *cmd)
{
	for (size_t i = 0; cmd != NULL && i < sizeof cli_command_usage / sizeof cli_command_usage[0]; i++)
		if (strcmp(cmd, cli_command_usage[i].cmd) == 0) {
			fputs(cli_command_usage[i].usage, f);
			fputs("Common options (model, generation): see '" PROG " --help'.\n", f);
			return;
		}
	cli_help(f);
}

int
cli_option_takes_value(const char *arg)
{
	if (arg[0] != '-' || arg[1] == '\0')
		return 0;
	if (arg[1] != '-')
		return arg[2] == '\0' && arg[1] != '\0' && strchr("mspfntor", arg[1]) != NULL;
	const char *name = arg + 2;
	if (strchr(name, '=') != NULL)
		return 0;
	/* getopt_long takes unambiguous prefixes: match the same way. */
	size_t len = strlen(name);
	int found = -1;
	const struct option *all = cli_options();
	for (int i = 0; all[i].name != NULL; i++) {
		if (strncmp(all[i].name, name, len) != 0)
			continue;
		if (strlen(all[i].name) == len)
			return all[i].has_arg == required_argument;
		found = found == -1 ? i : -2;
	}
	return found >= 0 && all[found].has_arg == required_argument;
}

/* --chat-template (or config chat_template) over the file's template;
 * $LLAMA2_CHAT_DATE pins Llama 3.1's "Today Date" (tests, reproducible runs). */
static int
cli_chat_format(struct engine_model *m, const struct opts *o, int *status)
{
	char *err = NULL;
	if (o->chat_template && chat_tmpl_set(m, o->chat_template, &err) != 0) {
		*status = cli_usage_error("--chat-template: %s", err ? err : "out of memory");
		free(err);
		return -1;
	}
	const char *date = getenv("LLAMA2_CHAT_DATE");
	if (date && *date)
		chat_tmpl_set_date(m, date);
	return 0;
}

struct engine_model *
cli_open_model(const struct opts *o, int *status)
{
	if (o->model == NULL || o->model[0] == '\0') {
		*status = cli_usage_error("no model: give -m FILE or set LLAMA2_CHAT_MODEL");
		return NULL;
	}
	/* A named file that is not there is a runtime failure (1), like
	 * cat(1); only a missing or malformed argument is a usage error. */
	struct stat st;
	if (stat(o->model, &st) != 0) {
		cli_error("%s: %s", o->model, strerror(errno));
		*status = 1;
		return NULL;
	}
	char *err = NULL;
	struct engine_model *m = engine_open(o->model, o->tokenizer, &err);
	if (m == NULL) {
		cli_error("%s: %s", o->model, err ? err : "cannot open");
		free(err);
		*status = 1;
		return NULL;
	}
	/* A GGUF file carries its own vocabulary: the flag would do nothing. */
	if (o->tokenizer && strncmp(engine_info(m)->format, "GGUF", 4) == 0) {
		*status = cli_usage_error("--tokenizer is for llama2.c checkpoints; %s (GGUF) has its own", o->model);
		engine_close(m);
		return NULL;
	}
	/* Past its training length a model's attention sees positions it
	 * never learned, and the text degrades: refuse unless asked for. */
	int train = engine_info(m)->n_ctx_train;
	if (o->ctx_size > train && train > 0 && !o->force) {
		*status = cli_usage_error("--ctx-size %d is more than the %d positions %s was trained on "
		    "(add --force to use it anyway)", o->ctx_size, train, o->model);
		engine_close(m);
		return NULL;
	}
	if (cli_chat_format(m, o, status) != 0) {
		engine_close(m);
		return NULL;
	}
	return m;
}

int
cli_chat_engine(const struct opts *o, struct engine_model **m)
{
	*m = NULL;
	if (o->remote == NULL || o->remote[0] == '\0') {
		if (o->remote_flag)
			return cli_usage_error("%s needs --remote URL (or remote = URL in the config)", o->remote_flag);
		int status = 0;
		*m = cli_open_model(o, &status);
		if (*m != NULL && strcmp(chat_tmpl_name(*m), "unknown") == 0) {
			/* Every message would fail the same way: say it once, now,
			 * before anything is sent or stored. */
			cli_error("%s: its chat template is not one " PROG " knows (llama2, llama3, llama3.1, mistral, "
			    "zephyr, chatml): choose one with --chat-template NAME", o->model);
			engine_close(*m);
			*m = NULL;
			return 1;
		}
		return *m ? 0 : status;
	}
	/* The server runs the model: flags that tune ours would do nothing,
	 * and silently ignoring a flag misleads. */
	static const struct { unsigned bit; const char *flag; } local[] = {
		{ LOCAL_TOKENIZER, "--tokenizer" }, { LOCAL_THREADS, "--threads" }, { LOCAL_CTX, "--ctx-size" },
		{ LOCAL_BATCH, "--batch-size" }, { LOCAL_KV_F32, "--kv-f32" }, { LOCAL_KV_Q8, "--kv-q8" },
		{ LOCAL_TEMPLATE, "--chat-template (the server applies its model's own)" },
	};
	for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
		if (o->local_flags & local[i].bit)
			return cli_usage_error("%s is for the local engine; with --remote the server runs the model",
			    local[i].flag);
	return 0;
}

const char *
cli_api_key(void)
{
	const char *k = getenv("LLAMA2_CHAT_API_KEY");
	if (k == NULL || k[0] == '\0')
		k = getenv("OPENAI_API_KEY");
	return k && k[0] ? k : NULL;
}

struct cli_progress {
	double last;     /* monotonic seconds of the last line */
	int shown;
};

static double
cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cli_show_load(void *ud, uint64_t done, uint64_t total)
{
	struct cli_progress *p = ud;
	double t = cli_now();
	if (done < total && t - p->last < 0.1)
		return 0;
	p->last = t;
	p->shown = 1;
	fprintf(stderr, "\r" PROG ": reading the model: %3d%% (%.1f of %.1f GiB)", (int)(100.0 * done / total),
	    done / 1073741824.0, total / 1073741824.0);
	fflush(stderr);
	return 0;
}

void
cli_prefetch(const struct engine_model *m)
{
	if (m == NULL)   /* --remote: no local file */
		return;
	/* Small files read in a blink: no line for them. */
	const uint64_t big = (uint64_t)256 << 20;
	struct cli_progress p = { cli_now(), 0 };
	int show = isatty(STDERR_FILENO) && engine_info(m)->file_size >= big;
	engine_prefetch(m, show ? cli_show_load : NULL, &p);
	if (p.shown)
		fputs("\r\033[K", stderr);   /* the line goes when the model is in */
}

const char *
cli_kv_type(const struct opts *o)
{
	return o->kv_q8 ? "q8_0" : o->kv_f32 ? "f32" : "f16";
}

unsigned long long
cli_kv_bytes(const struct engine_info *i, const char *type, int n_ctx)
{
	unsigned long long kv_dim = (unsigned long long)i->n_kv_heads * (unsigned long long)i->head_dim;
	/* q8_0: 34 bytes for each 32 values (a float16 scale and 32 int8). */
	unsigned long long row = !strcmp(type, "q8_0") ? kv_dim / 32 * 34 : kv_dim * (!strcmp(type, "f32") ? 4 : 2);
	return 2ull * (unsigned long long)i->n_layers * (unsigned long long)n_ctx * row;
}

struct engine_ctx *
cli_new_ctx(struct engine_model *m, const struct opts *o, int *status)
{
	struct engine_ctx_params p;
	engine_ctx_params_default(&p);
	p.n_ctx = o->ctx_size;
	p.n_threads = o->threads;
	p.n_batch = o->batch;
	p.kv_f32 = o->kv_f32;
	p.kv_q8 = o->kv_q8;
	char *err = NULL;
	struct engine_ctx *c = engine_ctx_new(m, &p, &err);
	if (c == NULL) {
		cli_error("%s", err ? err : "cannot create a context");
		free(err);
		*status = 1;
	}
	return c;
}

struct engine_model *
cli_open_model_or_tokenizer(const struct opts *o, int *status)
{
	if (o->model != NULL || o->tokenizer == NULL)
		return cli_open_model(o, status);
	char *err = NULL;
	struct engine_model *m = engine_open_tokenizer(o->tokenizer, &err);
	if (m == NULL) {
		cli_error("%s", err ? err : "cannot read the tokenizer");
		free(err);
		*status = 1;
		return NULL;
	}
	if (cli_chat_format(m, o, status) != 0) {
		engine_close(m);
		return NULL;
	}
	return m;
}

void
opts_free(struct opts *o)
{
	for (int i = 0; i < o->n_owned; i++)
		free(o->owned[i]);
	o->n_owned = 0;
}
