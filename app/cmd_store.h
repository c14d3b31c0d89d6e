/*
 * cmd_store.h: the subcommands that manage stored conversations and
 * presets: list, show, export, import, search, rename, rm, presets.
 *
 * Each parses its own options (getopt_long; argv[0] is the subcommand
 * name) and takes --db FILE (else $LLAMA2_CHAT_DB, else
 * $XDG_DATA_HOME/llama2-chat/chats.db), --json for scripts and --help.
 */
#ifndef APP_CMD_STORE_H
#define APP_CMD_STORE_H

/* Nonzero when name is one of the subcommands above. */
int cmd_store_is_command(const char *name);
/*
 * Run the subcommand argv[0] with its arguments.  Returns the process exit
 * status: 0 done, 1 a runtime error (unknown or ambiguous id, unreadable
 * database, file exists, cancelled...) after one line "llama2-chat: <what>"
 * on stderr, 2 a usage error after that line and a hint to --help.
 */
int cmd_store_run(int argc, char **argv);

#endif
