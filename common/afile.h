/*
 * afile.h: replacing a file atomically, once (common/afile.c): write a
 * temporary file beside it (mode 0600), fsync it, rename it over the
 * target.  A reader sees the old file or the new one, never half of one,
 * and a crash at any moment leaves the old file intact.
 */
#ifndef COMMON_AFILE_H
#define COMMON_AFILE_H

struct afile {
	int fd;                   /* write here */
	char *tmp;                /* the temporary file's path (owned) */
	char *path;               /* the target (owned) */
};

/* Start replacing path.  0, or -1 with errno (nothing created). */
int afile_open(struct afile *a, const char *path);
/* fsync, close and rename over the target.  0, or -1 with errno; either
 * way the temporary file is gone and a is released. */
int afile_commit(struct afile *a);
/* Give up: the temporary file is removed, the target untouched. */
void afile_abort(struct afile *a);

#endif
