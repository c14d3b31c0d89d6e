/*
 * paths.h: where llama2-chat keeps its files (XDG base directories).
 * Every folder it creates is mode 0700; files it creates are 0600.
 */
#ifndef APP_PATHS_H
#define APP_PATHS_H

enum path_kind { PATH_CONFIG, PATH_DATA, PATH_CACHE, PATH_STATE };

/*
 * malloc'd "<base>/llama2-chat/<name>" for the XDG base of kind
 * ($XDG_CONFIG_HOME or ~/.config, $XDG_DATA_HOME or ~/.local/share,
 * $XDG_CACHE_HOME or ~/.cache, $XDG_STATE_HOME or ~/.local/state).
 * With create, the folders are made (0700) if missing.  NULL with *err set
 * (malloc'd) when no home is known or a folder cannot be made.
 */
char *path_for(enum path_kind kind, const char *name, int create, char **err);
/*
 * The database: the --db flag when given, else $LLAMA2_CHAT_DB, else
 * $XDG_DATA_HOME/llama2-chat/chats.db (its folder created 0700).  malloc'd;
 * NULL with *err set when no data folder can be had.
 */
char *path_database(const char *flag, char **err);
/* mkdir -p with mode 0700 for every folder it creates; 0 or -1 with errno. */
int path_mkdirs(const char *dir);

#endif
