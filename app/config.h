/*
 * config.h: the configuration file, "key = value" lines and # comments, at
 * $XDG_CONFIG_HOME/llama2-chat/config or --config FILE.  Precedence, lowest
 * first: built-in defaults, the file, the environment (LLAMA2_CHAT_MODEL,
 * LLAMA2_CHAT_DB), the command line.
 *
 * Keys: model, tokenizer, db, threads, ctx_size, batch_size, n_predict,
 * temp, top_k, top_p, min_p, repeat_penalty, repeat_last_n, seed, preset,
 * system, kv_f32, kv_q8, kv_cache_max (bytes, K/M/G suffixes allowed).
 */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include "app/cli.h"

/* The value of --config in argv, if any (before full parsing). */
const char *config_flag(int argc, char **argv);
/*
 * Read the file into o.  explicit_path: a file the user named (missing is
 * an error); otherwise the XDG file (missing is fine).  Returns 0, or
 * EXIT_USAGE after printing "llama2-chat: FILE:LINE: <problem>".
 * Strings in o point into storage owned by the config module until exit.
 */
int config_load(struct opts *o, const char *explicit_path);

#endif
