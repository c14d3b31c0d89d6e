/*
 * cmd_store.h: the subcommands that manage stored conversations and
 * presets: list, show, export, import, search, rename, rm, presets
 * (cmd_store_conv.c, cmd_store_search.c, cmd_store_preset.c; the shared
 * helpers in cmd_store.c).  app/command.c's table runs them.
 *
 * Each parses its own options (getopt_long; argv[0] is the subcommand
 * name) and takes --db FILE (else db, which is $LLAMA2_CHAT_DB or the
 * config file's "db" as app/command.c resolved them, else
 * $XDG_DATA_HOME/llama2-chat/chats.db), --json for scripts and --help;
 * --config FILE is accepted (the file was read before the command ran).
 *
 * Each returns the process exit status: 0 done, 1 a runtime error (unknown
 * or ambiguous id, unreadable database, file exists, cancelled...) after
 * one line "llama2-chat: <what>" on stderr, 2 a usage error after that line
 * and a hint to --help.
 */
#ifndef APP_CMD_STORE_H
#define APP_CMD_STORE_H

int cmd_store_list(const char *db, int argc, char **argv);
int cmd_store_show(const char *db, int argc, char **argv);
int cmd_store_export(const char *db, int argc, char **argv);
int cmd_store_import(const char *db, int argc, char **argv);
int cmd_store_search(const char *db, int argc, char **argv);
int cmd_store_rename(const char *db, int argc, char **argv);
int cmd_store_rm(const char *db, int argc, char **argv);
int cmd_store_presets(const char *db, int argc, char **argv);

#endif
