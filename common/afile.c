/*
 * afile.c: atomic replacement of a file (see afile.h).  The temporary name
 * is mkstemp's, beside the target so that rename(2) stays on one file
 * system; mkstemp creates it 0600, which is the mode every file the
 * program writes must have.
 */
#include "common/afile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
afile_open(struct afile *a, const char *path)
{
	a->fd = -1;
	a->path = strdup(path);
	a->tmp = NULL;
	if (a->path == NULL || asprintf(&a->tmp, "%s.XXXXXX", path) < 0) {
		free(a->path);
		a->tmp = a->path = NULL;
		errno = ENOMEM;
		return -1;
	}
	a->fd = mkostemp(a->tmp, O_CLOEXEC);
	if (a->fd < 0) {
		int e = errno;
		free(a->tmp);
		free(a->path);
		a->tmp = a->path = NULL;
		errno = e;
		return -1;
	}
	return 0;
}

static void
afile_release(struct afile *a)
{
	free(a->tmp);
	free(a->path);
	a->tmp = a->path = NULL;
	a->fd = -1;
}

int
afile_commit(struct afile *a)
{
	int rc = fsync(a->fd);
	int e = errno;
	if (close(a->fd) != 0 && rc == 0)
		rc = -1, e = errno;
	if (rc == 0 && rename(a->tmp, a->path) != 0)
		rc = -1, e = errno;
	if (rc != 0)
		unlink(a->tmp);
	afile_release(a);
	errno = e;
	return rc;
}

void
afile_abort(struct afile *a)
{
	int e = errno;
	if (a->fd >= 0)
		close(a->fd);
	if (a->tmp != NULL)
		unlink(a->tmp);
	afile_release(a);
	errno = e;
}
