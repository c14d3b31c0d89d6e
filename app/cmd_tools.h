/*
 * cmd_tools.h: the model tools: `perplexity` (a model's loss on a text, as
 * llama.cpp's llama-perplexity measures it) and `quantize` (a smaller GGUF
 * from an F32/F16/BF16 one, as llama-quantize makes it).
 *
 * Each parses its own options (getopt_long; argv[0] is the subcommand
 * name) and has its own --help.  Exit status: 0 done, 1 a runtime error
 * (unreadable file, text too short, ...) after one line
 * "llama2-chat: <what>" on stderr, 2 a usage error, 130 interrupted.
 */
#ifndef APP_CMD_TOOLS_H
#define APP_CMD_TOOLS_H

/* The command table's entries (app/command.c): argv[0] is the command's
 * name; db is unused (the tools keep no conversations). */
int cmd_tools_perplexity(const char *db, int argc, char **argv);
int cmd_tools_quantize(const char *db, int argc, char **argv);

/* The two commands (argv[0] is the command's name). */
int cmd_quantize(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);

/* Shared by the two files: "llama2-chat: <msg>" on stderr; returns 1. */
int cmd_tools_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "llama2-chat: <cmd>: <msg>" and the --help hint; returns 2. */
int cmd_tools_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse a positive int option value into *v; 0, or -1 when it is not one. */
int cmd_tools_int(const char *s, int lo, int hi, int *v);
/* The SIGINT flag the commands share, installed by the entries above. */
extern _Atomic int cmd_tools_stop;

#endif
