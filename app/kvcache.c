/*
 * kvcache.c: the snapshot folder.  Recency is the file's modification time:
 * saving writes it, resuming touches it, so eviction by oldest mtime is
 * least-recently-used.  Only names ending in ".kv" are ever listed or
 * removed, so nothing else that happens to be in the folder is touched.
 */
#include "app/kvcache.h"
#include "app/paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct entry {
	char *path;
	long long size;
	time_t mtime;
};

static char *
kv_dir(int create)
{
	char *d = path_for(PATH_CACHE, "kv", create, NULL);
	if (d && create && path_mkdirs(d) != 0) {
		free(d);
		return NULL;
	}
	return d;
}

char *
kvcache_path(const char *pid)
{
	char *d = kv_dir(1), *p = NULL;
	if (d && asprintf(&p, "%s/%s.kv", d, pid) < 0)
		p = NULL;
	free(d);
	return p;
}

static int
is_kv(const char *name)
{
	size_t n = strlen(name);
	return n > 3 && strcmp(name + n - 3, ".kv") == 0;
}

/* The snapshots, oldest first. */
static int
list(struct entry **out, long long *total)
{
	*out = NULL;
	*total = 0;
	char *d = kv_dir(0);
	if (d == NULL)
		return 0;
	DIR *dir = opendir(d);
	if (dir == NULL) {
		free(d);
		return 0;
	}
	int n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(dir)) != NULL) {
		if (!is_kv(de->d_name))
			continue;
		char *p;
		struct stat st;
		if (asprintf(&p, "%s/%s", d, de->d_name) < 0)
			continue;
		if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(p);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct entry *ne = realloc(*out, (size_t)cap * sizeof *ne);
			if (ne == NULL) {
				free(p);
				break;
			}
			*out = ne;
		}
		(*out)[n++] = (struct entry){ p, (long long)st.st_size, st.st_mtime };
		*total += st.st_size;
	}
	closedir(dir);
	free(d);
	for (int i = 1; i < n; i++)       /* insertion sort by mtime: few files */
		for (int j = i; j > 0 && (*out)[j].mtime < (*out)[j - 1].mtime; j--) {
			struct entry t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return n;
}

static void
free_list(struct entry *e, int n)
{
	for (int i = 0; i < n; i++)
		free(e[i].path);
	free(e);
}

void
kvcache_evict(long long cap, const char *keep)
{
	struct entry *e;
	long long total;
	int n = list(&e, &total);
	for (int i = 0; i < n && total > cap; i++) {
		if (keep && strcmp(e[i].path, keep) == 0)
			continue;
		if (unlink(e[i].path) == 0)
			total -= e[i].size;
	}
	free_list(e, n);
}

void
kvcache_touch(const char *path)
{
	if (path)
		utimensat(AT_FDCWD, path, NULL, 0);
}

int
cmd_cache(struct opts *o)
{
	const char *what = o->nargs > 0 ? o->args[0] : "list";
	struct entry *e;
	long long total;
	if (strcmp(what, "list") == 0) {
		int n = list(&e, &total);
		for (int i = n - 1; i >= 0; i--) {
			const char *base = strrchr(e[i].path, '/') + 1;
			char when[32];
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&e[i].mtime));
			printf("%-10.*s %10.1f MiB  %s\n", (int)(strlen(base) - 3), base, e[i].size / 1048576.0, when);
		}
		printf("%d snapshot%s, %.1f MiB (cap %.0f MiB)\n", n, n == 1 ? "" : "s", total / 1048576.0,
		    o->kv_cache_max / 1048576.0);
		free_list(e, n);
		return 0;
	}
	if (strcmp(what, "clear") == 0) {
		int n = list(&e, &total), removed = 0;
		for (int i = 0; i < n; i++)
			removed += unlink(e[i].path) == 0;
		printf("removed %d snapshot%s (%.1f MiB)\n", removed, removed == 1 ? "" : "s", total / 1048576.0);
		free_list(e, n);
		return 0;
	}
	return cli_usage_error("cache: unknown action '%s' (list or clear)", what);
}
