/*
 * testutil.c: fixtures, golden data and temporary folders for the suites.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int testutil_skipped;

static const char *
fixtures_dir(void)
{
	const char *d = getenv("LLAMA2_CHAT_FIXTURES");
	return d && *d ? d : "../shared";
}

int
fixtures_present(void)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/models", fixtures_dir());
	return access(p, R_OK | X_OK) == 0;
}

char *
fixture_path(const char *rel)
{
	char *p;
	if (asprintf(&p, "%s/%s", fixtures_dir(), rel) < 0)
		return NULL;
	if (access(p, R_OK) != 0) {
		free(p);
		return NULL;
	}
	return p;
}

void
testutil_add_fixture_test(TCase *tc, const TTest *fn, const char *name)
{
	if (fixtures_present()) {
		tcase_add_test(tc, fn);
		return;
	}
	testutil_skipped++;
	fprintf(stderr, "skipped: %s (no fixtures at %s)\n", name, fixtures_dir());
}

json_t *
golden_load(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof rel, "golden/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "golden file %s missing", rel);
	json_error_t e;
	json_t *j = json_load_file(p, 0, &e);
	ck_assert_msg(j != NULL, "%s: %s", p, e.text);
	free(p);
	return j;
}

char *
tmpdir_new(void)
{
	const char *base = getenv("TMPDIR");
	char *t;
	if (asprintf(&t, "%s/l2c-test-XXXXXX", base && *base ? base : "/tmp") < 0)
		return NULL;
	if (mkdtemp(t) == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void
tmpdir_remove(char *path)
{
	if (path == NULL)
		return;
	char *cmd;
	/* Test-only cleanup of a folder we made ourselves. */
	if (strncmp(path, "/tmp/", 5) == 0 || getenv("TMPDIR") != NULL) {
		if (asprintf(&cmd, "rm -rf '%s'", path) >= 0) {
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n", path);
			free(cmd);
		}
	}
	free(path);
}

const char *
test_binary(void)
{
	const char *b = getenv("LLAMA2_CHAT_BIN");
	return b && *b ? b : "./llama2-chat";
}
