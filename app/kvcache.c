/*
 * kvcache.c: the snapshot folder.  Recency is the file's modification time:
 * saving writes it, resuming touches it, so eviction by oldest mtime is
 * least-recently-used.  Only names ending in ".kv" are ever listed or
 * removed, so nothing else that happens to be in the folder is touched
 * (kv/databases, the index of database files, included).
 */
#include "app/kvcache.h"
#include "app/paths.h"
#include "storage/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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

/* "<16 hex digits>": FNV-1a 64 of the database file's absolute path. */
static void
kv_db_key(const char *db, char *out, size_t size)
{
	char *abs = db != NULL ? realpath(db, NULL) : NULL;
	const char *p = abs != NULL ? abs : db != NULL ? db : "";
	uint64_t h = 1469598103934665603ULL;
	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	snprintf(out, size, "%016llx", (unsigned long long)h);
	free(abs);
}

/* Note in kv/databases which file key stands for (once). */
static void
kv_db_note(const char *dir, const char *key, const char *db)
{
	char *idx = NULL, *abs = realpath(db, NULL);
	if (abs == NULL || asprintf(&idx, "%s/databases", dir) < 0) {
		free(abs);
		return;
	}
	FILE *f = fopen(idx, "r");
	char line[4200];
	int found = 0;
	while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
		found = strncmp(line, key, strlen(key)) == 0;
	if (f != NULL)
		fclose(f);
	if (!found) {
		int fd = open(idx, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dprintf(fd, "%s %s\n", key, abs);
			close(fd);
		}
	}
	free(idx);
	free(abs);
}

/* The database file key stands for, from kv/databases (malloc'd), or NULL. */
static char *
kv_db_name(const char *dir, const char *key)
{
	char *idx = NULL, *name = NULL;
	if (asprintf(&idx, "%s/databases", dir) < 0)
		return NULL;
	FILE *f = fopen(idx, "r");
	free(idx);
	char line[4200];
	size_t kl = strlen(key);
	while (f != NULL && name == NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			line[strcspn(line, "\n")] = '\0';
			name = strdup(line + kl + 1);
		}
	if (f != NULL)
		fclose(f);
	return name;
}

char *
kvcache_path(const char *db, const char *pid)
{
	char *d = kv_dir(1), *p = NULL;
	char key[24];
	kv_db_key(db, key, sizeof key);
	if (d && asprintf(&p, "%s/%s.%s.kv", d, pid, key) < 0)
		p = NULL;
	if (p != NULL && db != NULL)
		kv_db_note(d, key, db);
	free(d);
	return p;
}

void
kvcache_remove(const char *db, const char *pid)
{
	char *d = kv_dir(0), *p = NULL;
	char key[24];
	kv_db_key(db, key, sizeof key);
	if (d && asprintf(&p, "%s/%s.%s.kv", d, pid, key) >= 0)
		unlink(p);
	free(p);
	free(d);
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
		/* Titles come from the database in use; a snapshot of another
		 * one is named by its file, never taken for this one's. */
		char *dbpath = path_database(o->db, NULL), *dir = kv_dir(0);
		struct db *d = dbpath != NULL ? db_open(dbpath, NULL) : NULL;
		char mine[24];
		kv_db_key(dbpath, mine, sizeof mine);
		for (int i = n - 1; i >= 0; i--) {
			const char *base = strrchr(e[i].path, '/') + 1;
			char when[32], pid[16] = "", key[24] = "";
			strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&e[i].mtime));
			const char *dot = strchr(base, '.');
			size_t pl = dot != NULL ? (size_t)(dot - base) : 0;
			if (pl > 0 && pl < sizeof pid) {
				memcpy(pid, base, pl);
				snprintf(key, sizeof key, "%.*s", (int)(strlen(dot + 1) > 3 ? strlen(dot + 1) - 3 : 0),
				    dot + 1);
			}
			printf("%-8s %8.1f MiB  %s  ", pid[0] ? pid : "?", e[i].size / 1048576.0, when);
			int64_t id;
			struct db_conv *c = NULL;
			if (d != NULL && strcmp(key, mine) == 0 && db_conv_resolve(d, pid, &id, NULL) == 0)
				c = db_conv_load(d, id, NULL);
			if (c != NULL) {
				printf("%s\n", c->title != NULL ? c->title : "(untitled)");
			} else if (strcmp(key, mine) == 0) {
				printf("(no longer in %s)\n", dbpath);
			} else {
				char *other = dir != NULL && key[0] ? kv_db_name(dir, key) : NULL;
				printf("(database %s)\n", other != NULL ? other : "unknown, an older snapshot");
				free(other);
			}
			db_conv_free(c);
		}
		db_close(d);
		free(dbpath);
		free(dir);
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
