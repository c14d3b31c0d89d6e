/*
 * paths.c: XDG base directories for the config file, the database, the KV
 * snapshots and the input history.  Folders are created 0700 so that
 * conversations stay private even under a permissive umask.
 */
#include "app/paths.h"
#include "common/errf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int
path_mkdirs(const char *dir)
{
	char *p = strdup(dir);
	if (p == NULL)
		return -1;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return 0;
}

static char *
path_join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
	char *s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "%s/%s%s%s", a, b, *c ? "/" : "", c);
	return s;
}

char *
path_for(enum path_kind kind, const char *name, int create, char **err)
{
	static const struct { const char *env, *fallback; } bases[] = {
		[PATH_CONFIG] = { "XDG_CONFIG_HOME", ".config" },
		[PATH_DATA] = { "XDG_DATA_HOME", ".local/share" },
		[PATH_CACHE] = { "XDG_CACHE_HOME", ".cache" },
		[PATH_STATE] = { "XDG_STATE_HOME", ".local/state" },
	};
	char *base;
	const char *env = getenv(bases[kind].env);
	if (env != NULL && env[0] == '/') {
		base = strdup(env);
	} else {
		const char *home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			if (err)
				*err = strdup("neither $HOME nor $" "XDG_*_HOME is set");
			return NULL;
		}
		base = path_join(home, bases[kind].fallback, "");
	}
	if (base == NULL)
		return NULL;
	char *dir = path_join(base, "llama2-chat", "");
	free(base);
	if (dir == NULL)
		return NULL;
	if (create && path_mkdirs(dir) != 0) {
		errf_set(err, "%s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	char *full = name && *name ? path_join(dir, name, "") : strdup(dir);
	free(dir);
	return full;
}

/* The folder of a database named by --db or $LLAMA2_CHAT_DB is created
 * (0700) as the default one is: `--db ~/notes/new/chats.db` just works. */
static char *
path_with_folder(const char *file, char **err)
{
	char *p = strdup(file);
	if (p == NULL)
		return NULL;
	char *slash = strrchr(p, '/');
	if (slash != NULL && slash != p) {
		*slash = '\0';
		struct stat sb;
		if (stat(p, &sb) != 0 && errno == ENOENT && path_mkdirs(p) != 0) {
			if (err && asprintf(err, "%s: cannot create the folder: %s", p, strerror(errno)) < 0)
				*err = NULL;
			free(p);
			return NULL;
		}
		*slash = '/';
	}
	return p;
}

char *
path_database(const char *flag, char **err)
{
	if (flag && *flag)
		return path_with_folder(flag, err);
	const char *env = getenv("LLAMA2_CHAT_DB");
	if (env && *env)
		return path_with_folder(env, err);
	return path_for(PATH_DATA, "chats.db", 1, err);
}
