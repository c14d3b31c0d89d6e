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

/* ---- the interface in a private tmux server (e2e_ui, remote_ui) ---- */

/* system() of a printf-formatted command line; its status. */
int test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is tmux on PATH? */
int tmux_available(void);
/*
 * Run the built binary in tmux server sock: run 0 starts the server with a
 * w x h window, a later run respawns its pane and resizes the window.  A
 * script <dir>/run<run>.sh puts HOME and every XDG folder under dir,
 * unsets the settings the environment could carry (model, database, API
 * keys, NO_COLOR), and in dir runs `<env> binary --db <db> <args>` (env:
 * assignments, or NULL; args: shell words) with stderr appended to
 * <dir>/stderr and its pid in <dir>/pid; then the pane shows
 * "EXIT=<status>" and stays.  The server goes when the test process does.
 */
void tmux_start(const char *sock, const char *dir, int run, int w, int h, const char *env, const char *db,
    const char *args);
void tmux_kill(const char *sock);
/* The screen as text (malloc'd). */
char *tmux_capture(const char *sock);
/* Key names as tmux spells them ("Enter", "C-o"); after "Escape" the
 * escape delay passes, so that the next key is not read as Alt+key. */
void tmux_keys(const char *sock, const char *keys);
/* Literal text, quoted for the shell. */
void tmux_type(const char *sock, const char *text);
/* Wait until the screen (status: its last line with text, the status bar)
 * shows needle, or with gone no longer does: 1, or 0 after timeout_ms. */
int tmux_wait(const char *sock, const char *needle, int status, int gone, int timeout_ms);
/* The status bar of a captured screen: its last line with text (malloc'd). */
char *tmux_status_line(const char *screen);

/* The conversation written last in database file db (there must be one). */
struct db_conv;
struct db_conv *test_latest_conv(const char *db);

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
