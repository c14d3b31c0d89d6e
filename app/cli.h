/*
 * cli.h: the command line shared by every subcommand that runs a model:
 * option table, parsing into struct opts, usage errors (exit status 2) and
 * the one-line error format "llama2-chat: <what>".
 */
#ifndef APP_CLI_H
#define APP_CLI_H

#include <stdarg.h>
#include <stdio.h>

#include "app/settings.h"
#include "engine/engine.h"

#define PROG "llama2-chat"
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130
#ifndef VERSION
#define VERSION "0.1.0"
#endif

/* Flags of the local engine, refused beside --remote. */
enum { LOCAL_MODEL = 1, LOCAL_TOKENIZER = 2, LOCAL_THREADS = 4, LOCAL_CTX = 8, LOCAL_BATCH = 16, LOCAL_KV_F32 = 32,
       LOCAL_TEMPLATE = 64, LOCAL_KV_Q8 = 128 };

/* What a flag is for, so that a command refuses the flags it would ignore
 * (cli_check_uses). */
enum {
	U_MODEL = 1 << 0,         /* -m, --tokenizer, --remote... */
	U_THREADS = 1 << 1,       /* -t */
	U_CTX = 1 << 2,           /* --ctx-size, --batch-size, --kv-f32 */
	U_GEN = 1 << 3,           /* -n and the sampling flags, --ignore-eos */
	U_TEMPLATE = 1 << 4,      /* --chat-template */
	U_CHAT = 1 << 5,          /* -s, --preset, -c, --resume, --no-save */
	U_PROMPT = 1 << 6,        /* -p TEXT */
	U_JSON = 1 << 7,
	U_IDS = 1 << 8,
	U_NO_BOS = 1 << 9,
	U_PROMPT_IDS = 1 << 10,
	U_STATS = 1 << 11,
	U_VERBOSE = 1 << 12,
	U_REPS = 1 << 13,         /* bench -r */
	U_STORE = 1 << 14,        /* --format, -o, --yes: export's, rm's (their own parsers) */
	U_FILE = 1 << 15,         /* -f FILE */
	U_COUNT = 16
};

struct opts {
	const char *model;        /* -m, $LLAMA2_CHAT_MODEL, config "model" */
	const char *tokenizer;
	const char *config;
	const char *db;
	const char *system;       /* -s */
	const char *preset;
	const char *prompt;       /* -p, or run's words */
	const char *prompt_file;  /* -f FILE: its contents as one message */
	const char *prompt_ids;   /* --prompt-ids 1,2,3 */
	const char *resume;       /* --resume ID */
	const char *format;
	const char *chat_template; /* --chat-template, config "chat_template" */
	const char *output;
	int ctx_size;
	int threads;
	int batch;
	int kv_f32;
	int kv_q8;                /* --kv-q8, config "kv_q8": the KV cache in q8_0 */
	long long kv_cache_max;   /* KV snapshot folder cap in bytes */
	const char *remote;       /* --remote URL, config "remote": the remote engine */
	const char *remote_model; /* --remote-model, config "remote_model"; NULL: the server's first */
	int remote_timeout;       /* --remote-timeout, config "remote_timeout" (s); 0: 60 */
	unsigned local_flags;     /* LOCAL_*: local-engine flags given on the command line */
	unsigned used;            /* U_*: the kinds of flag given on the command line */
	const char *used_flag[U_COUNT];   /* the first flag given of each kind, as named in --help */
	int remote_cli;           /* --remote given on the command line */
	const char *remote_flag;  /* --remote-model/--remote-timeout as given on the command line */
	int ids, no_bos, verbose, json, stats, no_save, cont, force, yes;
	int prefetch;             /* the session reads the model in on its worker (the interface) */
	int n_prompt_bench, n_gen_bench, reps;   /* bench -p -n -r */
	int bench_p_set, bench_n_set;             /* bench -p / -n given (0 means skip that test) */
	struct gen_settings gen;  /* sampling and -n (settings.h) */
	int seed_set;
	unsigned gen_set;         /* bits 1 << SET_*: given on the command line (beat a preset) */
	char **args;              /* what is left after the options */
	int nargs;
	char *owned[12];          /* strings from the config file (opts_free) */
	int n_owned;
};

#define OPTS_OWNED_MAX 12
void opts_free(struct opts *o);

/* Parse argv (argv[0] is the subcommand or program name).  `allowed` is a
 * string of the option names this command takes ("m,n,temp,...", NULL for
 * all).  Returns 0, or EXIT_USAGE after printing one line. */
int cli_parse(struct opts *o, int argc, char **argv, const char *cmd);
/* One line "llama2-chat: <fmt>" on stderr (after flushing stdout): the one
 * way app/ reports an error to people. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_verror(const char *fmt, va_list ap);
/* 0 when every flag given on the command line is of a kind in `uses`
 * (U_*), else a usage error naming the first one that cmd would ignore. */
int cli_check_uses(const struct opts *o, const char *cmd, unsigned uses);
/* Usage error: the line plus a hint; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_help(FILE *f);
/* The usage of one subcommand (cmd NULL or without one of its own: the
 * global usage). */
void cli_help_command(FILE *f, const char *cmd);
/* Does the option word arg (as typed: "-m", "--model", "--model=x")
 * take the next word as its value?  For scanning argv before getopt. */
int cli_option_takes_value(const char *arg);

/* Open opts->model (usage error if none or missing, exit 1 if unreadable).
 * Returns NULL and sets *status on failure. */
struct engine_model *cli_open_model(const struct opts *o, int *status);
/* -m MODEL, or --tokenizer FILE alone when no model is given. */
struct engine_model *cli_open_model_or_tokenizer(const struct opts *o, int *status);
/* The chat engine: with o->remote none is opened here (*m = NULL; the
 * session starts the remote worker) after refusing the local engine's
 * flags; otherwise the model, as cli_open_model, refused (1) when its chat
 * template is none we know and --chat-template names none.  0 or an exit
 * status after printing one line. */
int cli_chat_engine(const struct opts *o, struct engine_model **m);
/* The API key for the remote engine: $LLAMA2_CHAT_API_KEY, else
 * $OPENAI_API_KEY, else NULL (never a flag, never the database). */
const char *cli_api_key(void);
/* Read the model file in before the first reply (engine_prefetch), with
 * a progress line on stderr when it is a terminal and the file is big. */
void cli_prefetch(const struct engine_model *m);
/* The KV cache o asks for, as a type name ("f16", "f32", "q8_0"), and its
 * bytes for n_ctx positions of model i (K and V, every layer). */
const char *cli_kv_type(const struct opts *o);
unsigned long long cli_kv_bytes(const struct engine_info *i, const char *type, int n_ctx);
struct engine_ctx *cli_new_ctx(struct engine_model *m, const struct opts *o, int *status);

#endif
