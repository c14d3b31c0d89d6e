/*
 * cmd_engine.h: the subcommands that drive the engine without a chat:
 * tokenize, complete, info.  Each returns the process exit status.
 */
#ifndef APP_CMD_ENGINE_H
#define APP_CMD_ENGINE_H

#include "app/cli.h"

int cmd_tokenize(struct opts *o);
int cmd_complete(struct opts *o);
int cmd_info(struct opts *o);
/* Benchmark pp and tg like llama-bench (bench.c). */
int cmd_bench(struct opts *o);
/* Text of the positional arguments joined by spaces (malloc'd). */
char *cli_join_args(const struct opts *o);

#endif
