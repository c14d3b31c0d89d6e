/*
 * check_e2e_ui.c: the interface as a person uses it (suite e2e_ui): the
 * real binary ($LLAMA2_CHAT_BIN) inside a private tmux server, driven with
 * send-keys and read back with capture-pane, on the fixture models with
 * the database and every XDG folder in a temporary folder.  Streaming and
 * the status bar, Esc and Ctrl-C stopping a reply, resizes mid-stream,
 * switching chats, search, export, quitting mid-reply and resuming with -c,
 * the history-only mode, and a 20x6 terminal.  Every wait polls the screen
 * with a deadline; nothing sleeps for long.  Skipped without tmux or the
 * fixtures.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "storage/db.h"
#include "tests/testutil.h"

#define MODEL "models/fixture-q4_0.gguf"

struct term {
	char sock[64];
	char *dir;         /* temporary folder: db, XDG folders, scripts */
	char *db;
	char *model;
	int runs;
	double t0;
	const char *env;   /* assignments put before the binary, or NULL */
};

static void
tm_init(struct term *t)
{
	static int counter;
	memset(t, 0, sizeof *t);
	t->t0 = clock_now_ms();
	snprintf(t->sock, sizeof t->sock, "l2c-e2e-%ld-%d", (long)getpid(), counter++);
	t->dir = tmpdir_new();
	ck_assert_ptr_nonnull(t->dir);
	ck_assert_int_ge(asprintf(&t->db, "%s/chats.db", t->dir), 0);
	char *rel = fixture_path(MODEL);
	ck_assert_ptr_nonnull(rel);
	t->model = realpath(rel, NULL);   /* the script runs in t->dir */
	ck_assert_ptr_nonnull(t->model);
	free(rel);
}

/* Start the binary with args (shell words) in a w x h window.  When it
 * exits, the pane shows "EXIT=<status>" and stays. */
static void
tm_start(struct term *t, int w, int h, const char *args)
{
	tmux_start(t->sock, t->dir, t->runs++, w, h, t->env, t->db, args);
}

static void
tm_stop_at(struct term *t, const char *name)
{
	fprintf(stderr, "e2e_ui: %s %.1f s\n", name, (clock_now_ms() - t->t0) / 1e3);
	tmux_kill(t->sock);
	free(t->db);
	free(t->model);
	tmpdir_remove(t->dir);
}

/* Literal text (no key names). */
static void
tm_type(struct term *t, const char *text)
{
	tmux_type(t->sock, text);
}

/* Key names, as tmux spells them: "Enter", "Escape", "C-o", "M-x", "F1". */
static void
tm_keys(struct term *t, const char *keys)
{
	tmux_keys(t->sock, keys);
}

static char *
tm_capture(struct term *t)
{
	return tmux_capture(t->sock);
}

/* E2E_TRACE=1: how long each wait took, on stderr. */
static void
trace(const char *what, const char *needle, double since)
{
	if (getenv("E2E_TRACE"))
		fprintf(stderr, "e2e_ui:   %-8s %-30.30s %6.0f ms\n", what, needle, clock_now_ms() - since);
}

/* Wait until the screen contains needle (or, with neg, no longer does). */
static int
tm_wait_for(struct term *t, const char *needle, int neg, int timeout_ms)
{
	double t0 = clock_now_ms();
	int ok = tmux_wait(t->sock, needle, 0, neg, timeout_ms);
	if (ok)
		trace(neg ? "gone" : "shown", needle, t0);
	return ok;
}

/* Wait until the status bar contains needle. */
static int
tm_wait_status(struct term *t, const char *needle, int timeout_ms)
{
	double t0 = clock_now_ms();
	int ok = tmux_wait(t->sock, needle, 1, 0, timeout_ms);
	if (ok)
		trace("status", needle, t0);
	return ok;
}

/* Wait until needle shows exactly n times. */
static int
tm_wait_count(struct term *t, const char *needle, int n, int timeout_ms)
{
	double end = clock_now_ms() + timeout_ms;
	for (;;) {
		char *s = tm_capture(t);
		int k = 0;
		for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
			k++;
		free(s);
		if (k == n)
			return 1;
		if (clock_now_ms() > end)
			return 0;
		usleep(15 * 1000);
	}
}

/* Wait until the input box's last row (the one above the status bar)
 * contains needle. */
static int
tm_wait_input(struct term *t, const char *needle, int timeout_ms)
{
	double end = clock_now_ms() + timeout_ms;
	for (;;) {
		char *s = tm_capture(t);
		/* capture-pane ends every row with a newline: the input row is
		 * the second to last. */
		size_t n = strlen(s);
		while (n > 0 && s[n - 1] == '\n')
			n--;
		s[n] = '\0';
		char *last = strrchr(s, '\n');
		int found = 0;
		if (last) {
			*last = '\0';
			char *prev = strrchr(s, '\n');
			found = strstr(prev ? prev + 1 : s, needle) != NULL;
		}
		free(s);
		if (found)
			return 1;
		if (clock_now_ms() > end)
			return 0;
		usleep(15 * 1000);
	}
}

#define WAIT(t, needle, ms) ck_assert_msg(tm_wait_for((t), (needle), 0, (ms)), "'%s' never showed; screen:\n%s", \
    (needle), tm_capture(t))
#define WAIT_GONE(t, needle, ms) ck_assert_msg(tm_wait_for((t), (needle), 1, (ms)), "'%s' stayed; screen:\n%s", \
    (needle), tm_capture(t))
#define WAIT_STATUS(t, needle, ms) ck_assert_msg(tm_wait_status((t), (needle), (ms)), \
    "status never said '%s'; screen:\n%s", (needle), tm_capture(t))

static char *
slurp_stderr(struct term *t)
{
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/stderr", t->dir), 0);
	char *buf = calloc(1, 8192);
	FILE *f = fopen(path, "r");
	if (f) {
		size_t n = fread(buf, 1, 8191, f);
		(void)n;
		fclose(f);
	}
	free(path);
	return buf;
}

static void
expect_exit0(struct term *t)
{
	WAIT(t, "EXIT=", 15000);
	char *s = tm_capture(t);
	char *err = slurp_stderr(t);
	ck_assert_msg(strstr(s, "EXIT=0") != NULL, "bad exit:\n%s\nstderr: %s", s, err);
	ck_assert_msg(err[0] == '\0', "stderr not empty: %s", err);
	free(err);
	free(s);
}

/* The pid of the running binary (the script wrote it). */
static pid_t
tm_pid(struct term *t)
{
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/pid", t->dir), 0);
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	long pid = 0;
	ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	free(path);
	ck_assert_int_gt(pid, 1);
	return (pid_t)pid;
}

/* The stored conversations, newest first (the caller frees). */
static struct db_conv *
stored(struct term *t, size_t *n)
{
	char *err = NULL;
	struct db *d = db_open(t->db, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_conv *c;
	ck_assert_int_eq(db_conv_list(d, 0, &c, n, &err), 0);
	db_close(d);
	return c;
}

static struct db_conv *
stored_load(struct term *t, int64_t id)
{
	char *err = NULL;
	struct db *d = db_open(t->db, &err);
	ck_assert_msg(d != NULL, "%s", err);
	struct db_conv *c = db_conv_load(d, id, &err);
	ck_assert_msg(c != NULL, "%s", err);
	db_close(d);
	return c;
}

/* Wait until the screen is no longer before (a key was acted on). */
static int
tm_wait_change(struct term *t, const char *before, int timeout_ms)
{
	double end = clock_now_ms() + timeout_ms;
	for (;;) {
		char *s = tm_capture(t);
		int same = strcmp(s, before) == 0;
		free(s);
		if (!same)
			return 1;
		if (clock_now_ms() > end)
			return 0;
		usleep(20 * 1000);
	}
}

/* Press keys and wait until the screen shows they were acted on. */
static void
tm_keys_sync(struct term *t, const char *keys)
{
	char *before = tm_capture(t);
	tm_keys(t, keys);
	ck_assert_msg(tm_wait_change(t, before, 5000), "nothing happened after %s", keys);
	free(before);
}

/* Wait for the reply of a request just made (tok/s is cleared when a
 * request starts and shown when it is done). */
static void
wait_reply(struct term *t)
{
	WAIT_STATUS(t, "tok/s", 30000);
	WAIT_STATUS(t, "idle", 20000);
}

/* Send a message and wait for the reply to finish. */
static void
chat_turn(struct term *t, const char *text)
{
	tm_type(t, text);
	WAIT(t, text, 3000);
	tm_keys_sync(t, "Enter");
	wait_reply(t);
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_stream_and_status)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' -n 2000 -t 1 --seed 1 --ctx-size 8192 --force --ignore-eos", t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, "idle", 10000);
	WAIT(&t, "llama2-chat-fixture Q4_0", 1000);
	WAIT(&t, "0/8192", 1000);
	tm_type(&t, "Hello there, 中文 and émoji \xf0\x9f\x98\x80");
	tm_keys(&t, "Enter");
	/* The reply's header shows as the turn starts, then the status leaves
	 * idle (prompt k/n or generating) and text streams.  The header is
	 * looked for first: a fast stream fills the 30 rows and scrolls it
	 * away within a second or two (seen once with 2,000 tokens at -t 1). */
	WAIT(&t, "Assistant \xe2\x80\xa6", 10000);
	WAIT_STATUS(&t, "generating", 10000);
	char *s1 = tm_capture(&t);
	WAIT_STATUS(&t, "tok/s", 30000);
	WAIT_STATUS(&t, "idle", 5000);
	char *s2 = tm_capture(&t);
	ck_assert_msg(strcmp(s1, s2) != 0, "the screen did not change while streaming");
	ck_assert_ptr_nonnull(strstr(s2, "Hello there, 中文"));
	ck_assert_ptr_null(strstr(s2, "Assistant \xe2\x80\xa6"));   /* no longer streaming */
	free(s1);
	free(s2);
	/* The input history went to the state folder, 0600. */
	char *hp;
	ck_assert_int_ge(asprintf(&hp, "%s/state/llama2-chat/history", t.dir), 0);
	struct stat st;
	ck_assert_int_eq(stat(hp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	free(hp);
	/* Up brings the message back from the history. */
	tm_keys(&t, "Up");
	ck_assert_msg(tm_wait_input(&t, "Hello there, 中文 and émoji", 2000), "history: %s", tm_capture(&t));
	tm_keys(&t, "C-u");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	size_t n;
	struct db_conv *c = stored(&t, &n);
	ck_assert_uint_eq(n, 1);
	struct db_conv *full = stored_load(&t, c[0].id);
	ck_assert_int_eq(full->n_messages, 2);
	ck_assert_str_eq(full->messages[0].content, "Hello there, 中文 and émoji \xf0\x9f\x98\x80");
	ck_assert(full->messages[1].finish == FINISH_EOS || full->messages[1].finish == FINISH_LENGTH);
	db_conv_free(full);
	db_conv_array_free(c, n);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

/*
 * A reply long enough to act on while it streams, however fast the engine
 * gets: EOS is never chosen, so only -n (or the large window) ends it, and
 * attention over a growing context keeps each token slower than the last.
 */
#define LONG_ARGS "-n 16000 --seed 1 --ctx-size 16384 --force --ignore-eos"
#define LONG_PROMPT "Hello"

/* Start the long reply in the current (new) chat. */
static void
long_reply(struct term *t)
{
	tm_type(t, LONG_PROMPT);
	tm_keys(t, "Enter");
	WAIT_STATUS(t, "generating", 10000);
}

START_TEST(test_stop_resize_quit)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' " LONG_ARGS, t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, "idle", 10000);
	long_reply(&t);
	/* Resize mid-stream: narrower than the list's 80 columns, then tiny,
	 * then back; it keeps streaming and re-wraps. */
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 60 -y 20", t.sock), 0);
	WAIT_GONE(&t, "Chats", 3000);
	WAIT_STATUS(&t, "generating", 3000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 20 -y 6", t.sock), 0);
	usleep(200 * 1000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 100 -y 30", t.sock), 0);
	WAIT(&t, "Chats", 3000);
	/* Esc stops; the partial reply stays, marked stopped. */
	tm_keys(&t, "Escape");
	WAIT_STATUS(&t, "stopped", 5000);
	tm_keys(&t, "Home");
	WAIT(&t, "Assistant \xc2\xb7 stopped", 2000);
	/* Scrollback in a view smaller than the text: PgUp leaves the end
	 * (and says there is more below), Home shows the first message, End
	 * comes back. */
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 100 -y 6", t.sock), 0);
	tm_keys(&t, "End");
	WAIT_GONE(&t, "\xe2\x94\x82 You", 2000);
	tm_keys(&t, "PPage");
	WAIT(&t, "\xe2\x86\x93 more", 2000);
	tm_keys(&t, "Home");
	WAIT(&t, "\xe2\x94\x82 You", 2000);
	tm_keys(&t, "End");
	WAIT_GONE(&t, "\xe2\x86\x93 more", 2000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 100 -y 30", t.sock), 0);
	/* In a new chat, Ctrl-C stops a reply too. */
	tm_keys(&t, "C-n");
	WAIT(&t, "(new chat)", 2000);
	long_reply(&t);
	tm_keys(&t, "C-c");
	WAIT_STATUS(&t, "stopped", 5000);
	/* Ctrl-C when idle asks; n keeps us here. */
	tm_keys(&t, "C-c");
	WAIT(&t, "Quit llama2-chat?", 2000);
	tm_keys(&t, "n");
	WAIT_GONE(&t, "Quit llama2-chat?", 2000);
	/* Quit with a reply in flight: stopped, kept, terminal restored. */
	tm_keys(&t, "C-n");
	WAIT(&t, "(new chat)", 2000);
	long_reply(&t);
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	char *s = tm_capture(&t);
	ck_assert_msg(strstr(s, "Chats") == NULL, "the interface is still on screen:\n%s", s);
	free(s);
	size_t n;
	struct db_conv *c = stored(&t, &n);
	ck_assert_uint_eq(n, 3);
	/* Newest first: quit mid-reply, Ctrl-C, Esc. */
	static const enum finish want[] = { FINISH_INTERRUPTED, FINISH_STOPPED, FINISH_STOPPED };
	for (size_t i = 0; i < n; i++) {
		struct db_conv *full = stored_load(&t, c[i].id);
		ck_assert_int_eq(full->n_messages, 2);
		ck_assert_msg(full->messages[1].finish == want[i], "chat %zu: finish %d", i, full->messages[1].finish);
		ck_assert_int_gt((int)strlen(full->messages[1].content), 0);
		db_conv_free(full);
	}
	db_conv_array_free(c, n);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

START_TEST(test_switch_search_export)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' -n 12 --seed 3", t.model), 0);
	tm_start(&t, 110, 32, args);
	WAIT_STATUS(&t, "idle", 10000);
	chat_turn(&t, "alpha apples");
	tm_keys(&t, "C-n");
	WAIT(&t, "(new chat)", 2000);
	chat_turn(&t, "bravo bananas");
	/* Both in the list; the view shows the second. */
	WAIT(&t, "alpha apples", 2000);
	/* Switch: type to filter, Enter opens. */
	tm_keys(&t, "C-o");
	WAIT(&t, "Switch chat", 2000);
	tm_type(&t, "alpha");
	WAIT(&t, "Filter: alpha", 2000);
	tm_keys(&t, "Enter");
	WAIT_GONE(&t, "Switch chat", 2000);
	WAIT(&t, "You\n", 2000);
	char *s = tm_capture(&t);
	/* The chat view (right of the list) shows alpha's messages only. */
	ck_assert_msg(strstr(s, "\xe2\x94\x82 alpha apples") != NULL, "alpha not shown:\n%s", s);
	ck_assert_msg(strstr(s, "\xe2\x94\x82 bravo bananas") == NULL, "bravo shown:\n%s", s);
	free(s);
	/* Search all chats: the hit opens its conversation. */
	tm_keys(&t, "C-f");
	WAIT(&t, "Search all chats", 2000);
	tm_type(&t, "bananas");
	tm_keys(&t, "Enter");
	WAIT(&t, "1 match for bananas", 3000);
	tm_keys(&t, "Enter");
	WAIT_GONE(&t, "match for", 2000);
	WAIT(&t, "\xe2\x94\x82 bravo bananas", 3000);
	/* Rename it. */
	tm_keys(&t, "M-r");
	WAIT(&t, "Rename this chat", 2000);
	tm_keys(&t, "C-u");
	tm_type(&t, "Fruit talk");
	tm_keys(&t, "Enter");
	WAIT(&t, "Fruit talk", 2000);
	/* Choose a preset for this chat: the status bar shows it. */
	tm_keys(&t, "M-p");
	WAIT(&t, "Preset or system prompt", 2000);
	tm_type(&t, "concise");
	WAIT(&t, "Filter: concise", 2000);
	tm_keys(&t, "Enter");
	WAIT_STATUS(&t, "concise", 2000);
	/* Export as Markdown to a path we type. */
	tm_keys(&t, "M-x");
	WAIT(&t, "Export this chat as", 2000);
	tm_keys(&t, "Enter");
	WAIT(&t, "Export to file", 2000);
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/out.md", t.dir), 0);
	tm_keys(&t, "C-u");
	tm_type(&t, path);
	tm_keys(&t, "Enter");
	WAIT(&t, "exported to", 3000);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_gt((int)st.st_size, 0);
	FILE *f = fopen(path, "r");
	char buf[4096] = { 0 };
	size_t nr = fread(buf, 1, sizeof buf - 1, f);
	(void)nr;
	fclose(f);
	ck_assert_msg(strstr(buf, "bravo bananas") != NULL, "export: %s", buf);
	/* Exporting again to the same path asks before replacing. */
	tm_keys(&t, "M-x");
	WAIT(&t, "Export this chat as", 2000);
	tm_keys(&t, "Enter");
	WAIT(&t, "Export to file", 2000);
	tm_keys(&t, "C-u");
	tm_type(&t, path);
	tm_keys(&t, "Enter");
	WAIT(&t, "Replace it?", 2000);
	tm_keys(&t, "y");
	WAIT(&t, "exported to", 3000);
	/* Delete the current chat (asks), which leaves a new one. */
	tm_keys(&t, "F8");
	WAIT(&t, "Delete chat", 2000);
	tm_keys(&t, "y");
	WAIT(&t, "(new chat)", 2000);
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	size_t n;
	struct db_conv *c = stored(&t, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(c[0].title, "alpha apples");
	ck_assert_ptr_null(c[0].preset);
	db_conv_array_free(c, n);
	free(path);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

START_TEST(test_resume_edit_regen)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' -n 10 --seed 5", t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, "idle", 10000);
	chat_turn(&t, "remember the zebra");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	/* -c: the same chat, on screen at once, and it goes on. */
	char *args2;
	ck_assert_int_ge(asprintf(&args2, "%s -c", args), 0);
	tm_start(&t, 100, 30, args2);
	WAIT(&t, "remember the zebra", 10000);
	WAIT_STATUS(&t, "idle", 10000);
	/* The input history came back from the last run. */
	tm_keys(&t, "Up");
	ck_assert_msg(tm_wait_count(&t, "remember the zebra", 3, 2000), "history: %s", tm_capture(&t));
	tm_keys(&t, "C-u");
	ck_assert_msg(tm_wait_count(&t, "remember the zebra", 2, 2000), "cleared: %s", tm_capture(&t));
	chat_turn(&t, "and the lion");
	/* Regenerate the last reply (the old one stays: "‹ 2/2 ›"), move to
	 * the first alternative and back, then edit the last message and
	 * resend. */
	tm_keys_sync(&t, "C-r");
	wait_reply(&t);
	WAIT(&t, "\xe2\x80\xb9 2/2 \xe2\x80\xba", 5000);
	tm_keys(&t, "M-,");
	WAIT(&t, "\xe2\x80\xb9 1/2 \xe2\x80\xba", 5000);
	WAIT_STATUS(&t, "idle", 10000);
	tm_keys(&t, "M-.");
	WAIT(&t, "\xe2\x80\xb9 2/2 \xe2\x80\xba", 5000);
	WAIT_STATUS(&t, "idle", 10000);
	tm_keys(&t, "M-e");
	WAIT(&t, "editing the last message (Esc cancels)", 2000);
	tm_keys(&t, "C-e");
	tm_type(&t, " too");
	WAIT(&t, "and the lion too", 5000);
	tm_keys_sync(&t, "Enter");
	wait_reply(&t);
	/* Copy the last reply: OSC 52 reaches tmux, which keeps it as a paste
	 * buffer when set-clipboard is on. */
	ck_assert_int_eq(test_sh("tmux -L %s set -g set-clipboard on", t.sock), 0);
	test_sh("tmux -L %s delete-buffer >/dev/null 2>&1", t.sock);
	tm_keys(&t, "M-c");
	WAIT(&t, "copied the last reply", 2000);
	char *clip = NULL;
	for (int i = 0; i < 50 && clip == NULL; i++) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "tmux -L %s show-buffer 2>/dev/null", t.sock);
		FILE *p = popen(cmd, "r");
		char buf[8192] = { 0 };
		size_t nr = fread(buf, 1, sizeof buf - 1, p);
		pclose(p);
		if (nr > 0)
			clip = strdup(buf);
		else
			usleep(15 * 1000);
	}
	ck_assert_msg(clip != NULL, "nothing reached the clipboard");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	size_t n;
	struct db_conv *c = stored(&t, &n);
	ck_assert_uint_eq(n, 1);
	struct db_conv *full = stored_load(&t, c[0].id);
	ck_assert_int_eq(full->n_messages, 4);
	ck_assert_str_eq(full->messages[0].content, "remember the zebra");
	ck_assert_str_eq(full->messages[2].content, "and the lion too");
	ck_assert_int_eq(full->messages[2].n_siblings, 2);   /* "and the lion" is kept */
	ck_assert_str_eq(clip, full->messages[3].content);
	free(clip);
	db_conv_free(full);
	db_conv_array_free(c, n);
	free(args2);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

START_TEST(test_tiny_terminal)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' " LONG_ARGS, t.model), 0);
	tm_start(&t, 20, 6, args);
	WAIT_STATUS(&t, "idle", 10000);
	tm_type(&t, "hi 中文中文中文中文中文 there");
	ck_assert_msg(tm_wait_for(&t, "中文", 0, 2000), "typed text: %s", tm_capture(&t));
	tm_keys(&t, "C-u");
	long_reply(&t);
	/* Help at 20x6 mid-stream (Esc closes it, the reply goes on), then
	 * smaller and back. */
	tm_keys(&t, "F1");
	WAIT(&t, "Keys", 2000);
	tm_keys(&t, "Escape");
	WAIT_GONE(&t, "Keys", 2000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 8 -y 3", t.sock), 0);
	usleep(150 * 1000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 1 -y 1", t.sock), 0);
	usleep(150 * 1000);
	ck_assert_int_eq(test_sh("tmux -L %s resize-window -x 20 -y 6", t.sock), 0);
	WAIT_STATUS(&t, "generating", 2000);
	tm_keys(&t, "Escape");
	WAIT_STATUS(&t, "stopped", 5000);
	/* The switcher and the sampling list at 20x6. */
	tm_keys(&t, "C-o");
	WAIT(&t, "Filter", 2000);
	tm_keys(&t, "Escape");
	tm_keys(&t, "M-s");
	WAIT(&t, "temperature", 2000);
	tm_keys(&t, "Escape");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

START_TEST(test_history_only)
{
	struct term t;
	tm_init(&t);
	char *args;
	/* A stored chat first, through the one-shot mode. */
	ck_assert_int_ge(asprintf(&args, "LLAMA2_CHAT_DB='%s' '%s' -m '%s' -n 5 -p 'stored question' >/dev/null 2>&1",
	    t.db, test_binary(), t.model), 0);
	ck_assert_int_eq(system(args), 0);
	free(args);
	t.env = "NO_COLOR=1";
	tm_start(&t, 100, 30, "-c");
	WAIT(&t, "stored question", 10000);
	WAIT_STATUS(&t, "no model", 2000);
	/* NO_COLOR: attributes only, no colour is ever set. */
	char cmd[160];
	snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -e -p", t.sock);
	FILE *p = popen(cmd, "r");
	char buf[16384] = { 0 };
	size_t nr = fread(buf, 1, sizeof buf - 1, p);
	pclose(p);
	ck_assert_uint_gt(nr, 0);
	for (const char *q = buf; (q = strstr(q, "\033[")) != NULL; q++) {
		/* SGR parameters 30-37 / 90-97 are foreground colours. */
		const char *e = q + 2;
		while (*e && *e != 'm' && (e - q) < 40)
			e++;
		if (*e != 'm')
			continue;
		char sgr[48] = { 0 };
		memcpy(sgr, q + 2, (size_t)(e - q - 2) < sizeof sgr - 1 ? (size_t)(e - q - 2) : sizeof sgr - 1);
		for (char *tok = strtok(sgr, ";"); tok; tok = strtok(NULL, ";")) {
			int v = atoi(tok);
			ck_assert_msg(!((v >= 30 && v <= 37) || (v >= 90 && v <= 97) || v == 38),
			    "a colour with NO_COLOR: %d", v);
		}
	}
	/* A bracketed paste keeps its newline and sends nothing. */
	ck_assert_int_eq(test_sh("tmux -L %s set-buffer 'pasted one\npasted two'", t.sock), 0);
	ck_assert_int_eq(test_sh("tmux -L %s paste-buffer -p", t.sock), 0);
	WAIT(&t, "pasted two", 2000);
	WAIT(&t, "pasted one", 2000);
	char *scr = tm_capture(&t);
	ck_assert_msg(strstr(scr, "no model is loaded") == NULL, "the paste was sent:\n%s", scr);
	free(scr);
	tm_keys(&t, "C-u");
	tm_keys(&t, "C-u");
	tm_keys(&t, "C-u");
	tm_type(&t, "hello");
	tm_keys(&t, "Enter");
	WAIT(&t, "no model is loaded", 2000);
	tm_keys(&t, "C-u");
	/* Search works without a model. */
	tm_keys(&t, "C-f");
	WAIT(&t, "Search all chats", 2000);
	tm_type(&t, "question");
	tm_keys(&t, "Enter");
	WAIT(&t, "1 match for question", 3000);
	tm_keys(&t, "Escape");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	tm_stop_at(&t, __func__);
}
END_TEST

START_TEST(test_signals)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' " LONG_ARGS, t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, "idle", 10000);
	long_reply(&t);
	/* SIGTERM mid-reply: a clean exit that keeps the partial reply. */
	ck_assert_int_eq(kill(tm_pid(&t), SIGTERM), 0);
	expect_exit0(&t);
	char *s = tm_capture(&t);
	ck_assert_msg(strstr(s, "Chats") == NULL, "the interface is still on screen:\n%s", s);
	free(s);
	size_t n;
	struct db_conv *c = stored(&t, &n);
	ck_assert_uint_eq(n, 1);
	struct db_conv *full = stored_load(&t, c[0].id);
	ck_assert_int_eq(full->n_messages, 2);
	ck_assert_int_eq(full->messages[1].finish, FINISH_INTERRUPTED);
	ck_assert_int_gt((int)strlen(full->messages[1].content), 0);
	db_conv_free(full);
	db_conv_array_free(c, n);
	/* A crash (SIGSEGV) still gives the terminal back. */
	tm_start(&t, 100, 30, "-c");
	WAIT(&t, "Chats", 10000);
	ck_assert_int_eq(kill(tm_pid(&t), SIGSEGV), 0);
	WAIT(&t, "EXIT=", 15000);
	s = tm_capture(&t);
	ck_assert_msg(strstr(s, "Chats") == NULL && strstr(s, "EXIT=0") == NULL, "after the crash:\n%s", s);
	free(s);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

/* What people bring from other tools: "?question" is a message, not
 * help; an Esc right before a resize still stops; the switch dialog keeps
 * "N msgs" whole; the input box wraps at words. */
START_TEST(test_conventions)
{
	struct term t;
	tm_init(&t);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' " LONG_ARGS, t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, "idle", 10000);
	tm_type(&t, "?what is");
	ck_assert_msg(tm_wait_input(&t, "?what is", 3000), "input lost the text:\n%s", tm_capture(&t));
	char *sc = tm_capture(&t);
	ck_assert_msg(strstr(sc, "Keys (Esc closes)") == NULL, "help opened:\n%s", sc);
	free(sc);
	/* A long message wraps between words, not inside them. */
	tm_type(&t, " this long question about the nature of the sky and the "
	    "reasons for its colour at dusk and at noon, asked by someone curious");
	WAIT(&t, "curious", 3000);
	sc = tm_capture(&t);
	ck_assert_msg(strstr(sc, "colou\n") == NULL && strstr(sc, "curio\n") == NULL, "cut a word:\n%s", sc);
	free(sc);
	tm_keys(&t, "Enter");
	WAIT_STATUS(&t, "generating", 10000);
	/* Esc and a resize at once: the Esc is not taken as Alt+resize. */
	ck_assert_int_eq(test_sh("tmux -L %s send-keys Escape && tmux -L %s resize-window -x 90 -y 28", t.sock, t.sock), 0);
	WAIT_STATUS(&t, "stopped", 5000);
	tm_keys(&t, "C-o");
	WAIT(&t, "2 msgs", 3000);
	tm_keys(&t, "Escape");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

/*
 * The model's file is read in on the worker's thread and the status bar
 * says so: "reading model k% of N" while it reads (too quick to catch on
 * a fixture), then the model's size beside its name.  Nothing goes to
 * stderr: the interface no longer prints a progress line before it
 * starts.
 */
START_TEST(test_model_read)
{
	struct term t;
	tm_init(&t);
	struct stat st;
	ck_assert_int_eq(stat(t.model, &st), 0);
	char want[64];
	snprintf(want, sizeof want, "Q4_0 (%.1f MiB loaded)", (double)(st.st_size >> 10) / 1024.0);
	char *args;
	ck_assert_int_ge(asprintf(&args, "-m '%s' -t 1", t.model), 0);
	tm_start(&t, 100, 30, args);
	WAIT_STATUS(&t, want, 10000);
	WAIT_STATUS(&t, "idle", 5000);
	/* The model answers as usual once it is in. */
	chat_turn(&t, "Hello");
	tm_keys(&t, "C-q");
	expect_exit0(&t);
	free(args);
	tm_stop_at(&t, __func__);
}
END_TEST

Suite *e2e_ui_suite(void);

Suite *
e2e_ui_suite(void)
{
	Suite *s = suite_create("e2e_ui");
	TCase *tc = tcase_create("tmux");
	tcase_set_timeout(tc, 90);
	if (!tmux_available()) {
		testutil_skipped += 9;
		fprintf(stderr, "skipped: e2e_ui (no tmux)\n");
	} else {
		tcase_add_fixture_test(tc, test_stream_and_status);
		tcase_add_fixture_test(tc, test_stop_resize_quit);
		tcase_add_fixture_test(tc, test_switch_search_export);
		tcase_add_fixture_test(tc, test_resume_edit_regen);
		tcase_add_fixture_test(tc, test_tiny_terminal);
		tcase_add_fixture_test(tc, test_history_only);
		tcase_add_fixture_test(tc, test_signals);
		tcase_add_fixture_test(tc, test_conventions);
		tcase_add_fixture_test(tc, test_model_read);
	}
	suite_add_tcase(s, tc);
	return s;
}

