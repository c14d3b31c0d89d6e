/*
 * testutil.h: what every suite shares: where the shared fixtures are
 * (LLAMA2_CHAT_FIXTURES, default ../shared), how a test that needs them is
 * registered (skipped, and counted as skipped, when they are absent), golden
 * JSON loading, and temporary folders.
 */
#ifndef TESTS_TESTUTIL_H
#define TESTS_TESTUTIL_H

#include <check.h>
#include <jansson.h>

/* malloc'd "<fixtures>/<rel>", or NULL when that file does not exist. */
char *fixture_path(const char *rel);
/* Nonzero when the fixtures folder is present. */
int fixtures_present(void);
/* Add a test that needs the fixtures; when they are absent it is not run and
 * is counted in the runner's "skipped" total. */
#define tcase_add_fixture_test(tc, fn) testutil_add_fixture_test((tc), (fn), #fn)
void testutil_add_fixture_test(TCase *tc, const TTest *fn, const char *name);
extern int testutil_skipped;

/* Parsed golden/<name> (aborts the test if missing or unparsable). */
json_t *golden_load(const char *name);

/* A fresh 0700 temporary folder (malloc'd path); removed by tmpdir_remove. */
char *tmpdir_new(void);
void tmpdir_remove(char *path);

/* A 512-piece tokenizer.bin for the stories260K models, written into dir
 * (the first 512 pieces of models/tokenizer.bin: the model tests feed ids,
 * so any tokenizer of the model's size will do).  malloc'd path, or NULL
 * when the fixture is missing. */
char *fixture_tok512(const char *dir);

/* Path of the built binary (LLAMA2_CHAT_BIN), for end-to-end tests. */
const char *test_binary(void);

/*
 * Run the program argv[0] (a path) with argv, stdin from /dev/null, and
 * collect stdout and stderr (malloc'd; either pointer may be NULL to drop
 * it).  Returns the exit status, 128 + signal when killed, or -1 when it
 * could not be started.
 */
int run_program(const char *const *argv, char **out, char **err);
/* malloc'd path of peer program `name` (peers/llama.cpp-b4748/<name>) when
 * it is there and runs on this machine, else NULL (the caller skips). */
char *peer_program(const char *name);

#endif

/*
 * Run the built binary with argv (argv[0] is ignored: test_binary() is
 * run), feeding stdin_data (may be NULL) and collecting stdout and stderr
 * (malloc'd, NUL-terminated).  env: extra "NAME=value" strings (NULL-ended,
 * may be NULL) added to the environment.  No shell is involved.  Returns the
 * exit status, or -1 when it did not exit within timeout_s.
 */
int run_binary(const char *const *argv, const char *stdin_data, char **out, char **err,
    const char *const *env, int timeout_s);
