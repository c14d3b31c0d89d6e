/*
 * check_crash.c: kill -9 of the real binary at the worst moments.  A
 * process is started (our own fork/exec: run_binary waits for the end), the
 * database is polled until the process is where we want it, and SIGKILL
 * follows at once.  Afterwards the file must pass PRAGMA integrity_check
 * (and the FTS index its own check), the user's message must be there and
 * the reply must be marked 'interrupted'; an export killed half-way must
 * leave the destination as it was.
 *
 *   prompt:     a few thousand characters, one token per forward pass, so
 *               prompt processing lasts seconds; killed as soon as the
 *               empty reply row is committed (before any token exists).
 *   generation: a random model that practically never says EOS; killed
 *               once the database holds a non-empty partial reply (the
 *               session saves about once a second).
 *   export:     a conversation of several megabytes exported with --force;
 *               killed when the temporary file beside the destination
 *               appears, i.e. while it is being written.
 *
 * Nothing sleeps for a fixed time: every wait polls with a deadline.
 */
#include "tests/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A running binary: stdout goes to a pipe we drain, stderr to a file. */
struct proc {
	pid_t pid;
	int out;
	char *text;
	size_t n;
	int exited, status;
};

static void
proc_start(struct proc *p, const char *const *argv, const char *dir)
{
	int o[2];
	ck_assert_int_eq(pipe(o), 0);
	char errpath[4096];
	snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int er = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(in, 0);
		dup2(o[1], 1);
		dup2(er, 2);
		close(o[0]);
		close(o[1]);
		char xdg[4][4200];
		const char *names[4] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
		for (int i = 0; i < 4; i++) {
			snprintf(xdg[i], sizeof xdg[i], "%s/xdg%d", dir, i);
			setenv(names[i], xdg[i], 1);
		}
		unsetenv("LLAMA2_CHAT_DB");
		unsetenv("LLAMA2_CHAT_MODEL");
		setenv("OMP_NUM_THREADS", "1", 1);
		int n = 0;
		while (argv[n])
			n++;
		char **av = calloc((size_t)n + 1, sizeof *av);
		av[0] = (char *)test_binary();
		for (int i = 1; i < n; i++)
			av[i] = (char *)argv[i];
		execv(av[0], av);
		_exit(127);
	}
	close(o[1]);
	fcntl(o[0], F_SETFL, O_NONBLOCK);
	memset(p, 0, sizeof *p);
	p->pid = pid;
	p->out = o[0];
	p->text = calloc(1, 1);
}

/* Drain stdout; 1 while the process runs. */
static int
proc_alive(struct proc *p)
{
	char buf[4096];
	ssize_t r;
	while ((r = read(p->out, buf, sizeof buf)) > 0) {
		p->text = realloc(p->text, p->n + (size_t)r + 1);
		memcpy(p->text + p->n, buf, (size_t)r);
		p->n += (size_t)r;
		p->text[p->n] = '\0';
	}
	if (!p->exited && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
		p->exited = 1;
	return !p->exited;
}

static void
proc_kill(struct proc *p)
{
	if (!p->exited) {
		kill(p->pid, SIGKILL);
		ck_assert_int_eq(waitpid(p->pid, &p->status, 0), p->pid);
		p->exited = 1;
		ck_assert_msg(WIFSIGNALED(p->status) && WTERMSIG(p->status) == SIGKILL, "not killed");
	}
	proc_alive(p);
	close(p->out);
}

static char *
stderr_of(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/stderr.txt", dir);
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 4097);
	if (f) {
		size_t n = fread(s, 1, 4096, f);
		s[n] = '\0';
		fclose(f);
	}
	return s;
}

/* ---- the database, through SQLite itself -------------------------------- */

static sqlite3 *
db_of(const char *path)
{
	sqlite3 *h = NULL;
	ck_assert_msg(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK, "%s: %s", path,
	    h ? sqlite3_errmsg(h) : "?");
	sqlite3_busy_timeout(h, 5000);
	return h;
}

/* First column of the first row as text (malloc'd; NULL for no row or NULL). */
static char *
q_text(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	ck_assert_msg(sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(h));
	char *r = NULL;
	int rc = sqlite3_step(st);
	ck_assert_msg(rc == SQLITE_ROW || rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(h));
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		r = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return r;
}

static long long
q_int(sqlite3 *h, const char *sql)
{
	char *s = q_text(h, sql);
	long long v = s ? atoll(s) : -1;
	free(s);
	return v;
}

/* The same query, -1 while the file or the table is not there yet. */
static long long
poll_int(const char *path, const char *sql)
{
	if (access(path, F_OK) != 0)
		return -1;
	sqlite3 *h = NULL;
	long long v = -1;
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 1000);
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int64(st, 0);
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(h);
	return v;
}

/* integrity_check and the FTS index's own check. */
static void
assert_db_sound(const char *path)
{
	sqlite3 *h = db_of(path);
	char *ic = q_text(h, "PRAGMA integrity_check");
	ck_assert_msg(ic && strcmp(ic, "ok") == 0, "integrity_check: %s", ic ? ic : "(null)");
	free(ic);
	char *fk = q_text(h, "PRAGMA foreign_key_check");
	ck_assert_msg(fk == NULL, "foreign_key_check: %s", fk);
	char *e = NULL;
	int rc = sqlite3_exec(h, "INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)", NULL,
	    NULL, &e);
	ck_assert_msg(rc == SQLITE_OK, "fts integrity-check: %s", e ? e : "?");
	sqlite3_free(e);
	ck_assert_int_eq(q_int(h, "SELECT count(*) FROM conversations c WHERE n_messages != "
	    "(SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"), 0);
	sqlite3_close(h);
}

static char *
model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "%s missing", rel);
	return p;
}

/* The database can still be used by the program itself. */
static void
assert_listable(const char *db, const char *dir)
{
	const char *argv[] = { "x", "list", "--db", db, NULL };
	char *xdg;
	ck_assert_int_ge(asprintf(&xdg, "XDG_CONFIG_HOME=%s/xdg1", dir), 0);
	const char *env[] = { xdg, "LLAMA2_CHAT_DB=", NULL };
	char *out, *err;
	int st = run_binary(argv, NULL, &out, &err, env, 30);
	ck_assert_msg(st == 0, "list after the crash: status %d: %s", st, err);
	free(out);
	free(err);
	free(xdg);
}

/* ---- the cases -------------------------------------------------------------- */

START_TEST(test_kill_during_prompt)
{
	char *m = model("fixture-f32.gguf");
	char *dir = tmpdir_new();
	char db[4096];
	snprintf(db, sizeof db, "%s/chats.db", dir);
	/* About 3200 tokens, one per forward pass: seconds of prompt work. */
	size_t plen = 0;
	char *prompt = malloc(8000);
	while (plen < 6900)
		plen += (size_t)sprintf(prompt + plen, "The quick brown fox %zu jumps over the lazy dog. ", plen);
	const char *argv[] = { "x", "-m", m, "--db", db, "-p", prompt, "--ctx-size", "4096", "--force", "--batch-size", "1",
		"-t", "1", "-n", "8", "--temp", "0", NULL };
	struct proc p;
	proc_start(&p, argv, dir);
	double end = now_s() + 60;
	long long rows = -1;
	while (proc_alive(&p) && now_s() < end &&
	    (rows = poll_int(db, "SELECT count(*) FROM messages WHERE role = 'assistant'")) < 1)
		nap_ms(5);
	int alive = proc_alive(&p);
	proc_kill(&p);
	char *se = stderr_of(dir);
	ck_assert_msg(alive, "the process ended before the reply row appeared (status %d): %s", p.status, se);
	ck_assert_msg(rows >= 1, "no reply row within 60 s");
	ck_assert_msg(p.n == 0, "killed too late: the reply had begun: '%s'", p.text);

	assert_db_sound(db);
	sqlite3 *h = db_of(db);
	ck_assert_int_eq(q_int(h, "SELECT count(*) FROM conversations"), 1);
	char *user = q_text(h, "SELECT content FROM messages WHERE role = 'user' AND position = 0");
	ck_assert_msg(user && strcmp(user, prompt) == 0, "the user's message is not there whole");
	char *fin = q_text(h, "SELECT finish FROM messages WHERE role = 'assistant' AND position = 1");
	ck_assert_msg(fin && strcmp(fin, "interrupted") == 0, "reply finish: %s", fin ? fin : "NULL");
	char *content = q_text(h, "SELECT content FROM messages WHERE position = 1");
	ck_assert_str_eq(content, "");
	sqlite3_close(h);
	assert_listable(db, dir);
	free(user);
	free(fin);
	free(content);
	free(se);
	free(p.text);
	free(prompt);
	free(m);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_kill_during_generation)
{
	/* Random weights over 32000 pieces: EOS is a 1 in 32000 chance. */
	char *m = model("llama-2-tiny-random.gguf");
	char *dir = tmpdir_new();
	char db[4096];
	snprintf(db, sizeof db, "%s/chats.db", dir);
	const char *argv[] = { "x", "-m", m, "--db", db, "-p", "Tell me a long story.", "--ctx-size", "4096", "--force",
		"-t", "1", "-n", "100000", "--temp", "1.5", "--seed", "1", NULL };
	struct proc p;
	proc_start(&p, argv, dir);
	double end = now_s() + 60;
	long long len = -1;
	while (proc_alive(&p) && now_s() < end &&
	    (len = poll_int(db, "SELECT length(content) FROM messages WHERE role = 'assistant'")) < 1)
		nap_ms(5);
	int alive = proc_alive(&p);
	proc_kill(&p);
	char *se = stderr_of(dir);
	ck_assert_msg(alive, "the reply ended before a partial save (status %d): %s", p.status, se);
	ck_assert_msg(len >= 1, "no partial reply saved within 60 s");

	assert_db_sound(db);
	sqlite3 *h = db_of(db);
	char *user = q_text(h, "SELECT content FROM messages WHERE role = 'user' AND position = 0");
	ck_assert_msg(user && strcmp(user, "Tell me a long story.") == 0, "user message: %s", user);
	char *fin = q_text(h, "SELECT finish FROM messages WHERE position = 1");
	ck_assert_msg(fin && strcmp(fin, "interrupted") == 0, "reply finish: %s", fin ? fin : "NULL");
	char *content = q_text(h, "SELECT content FROM messages WHERE position = 1");
	ck_assert_msg(content && content[0] != '\0', "the partial reply is empty");
	/* The saved part is what had been printed (stdout runs ahead). */
	ck_assert_msg(p.n >= strlen(content) && strncmp(p.text, content, strlen(content)) == 0,
	    "saved reply is not a prefix of what was printed:\nsaved:   %.80s\nprinted: %.80s", content, p.text);
	ck_assert_int_ge(q_int(h, "SELECT length(tokens) / 4 FROM messages WHERE position = 1"), 1);
	sqlite3_close(h);
	assert_listable(db, dir);
	free(user);
	free(fin);
	free(content);
	free(se);
	free(p.text);
	free(m);
	tmpdir_remove(dir);
}
END_TEST

/* A conversation of several megabytes, imported through the binary. */
static char *
big_conversation(const char *dir, const char *db)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/big.json", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"format\":\"llama2-chat\",\"version\":1,\"title\":\"big\",\"created\":0,\"updated\":0,"
	    "\"model\":{\"name\":null,\"fingerprint\":null},\"preset\":null,\"system_prompt\":null,"
	    "\"params\":null,\"messages\":[", f);
	for (int i = 0; i < 200; i++) {
		fprintf(f, "%s{\"role\":\"%s\",\"content\":\"", i ? "," : "", i % 2 ? "assistant" : "user");
		/* No letters: nothing for the full-text index, much to escape. */
		for (int k = 0; k < 6000; k++)
			fputs("<&>\\\"' ", f);
		fputs("\",\"tokens\":null,\"created\":0,\"finish\":null,\"stats\":null,\"sampler\":null,\"seed\":null}", f);
	}
	fputs("]}\n", f);
	ck_assert_int_eq(fclose(f), 0);
	const char *argv[] = { "x", "import", path, "--db", db, NULL };
	char *xdg;
	ck_assert_int_ge(asprintf(&xdg, "XDG_CONFIG_HOME=%s/xdg1", dir), 0);
	const char *env[] = { xdg, "LLAMA2_CHAT_DB=", NULL };
	char *out, *err;
	int st = run_binary(argv, NULL, &out, &err, env, 60);
	ck_assert_msg(st == 0, "import: %d: %s", st, err);
	free(out);
	free(err);
	free(xdg);
	/* Its public id: the only conversation. */
	sqlite3 *h = db_of(db);
	char *id = q_text(h, "SELECT pid FROM conversations");
	sqlite3_close(h);
	ck_assert_msg(id != NULL, "the import left no conversation");
	return id;
}

/* Is there a file named <prefix>* in dir?  Its name into found. */
static int
has_prefixed(const char *dir, const char *prefix, char *found, size_t cap)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *e;
	int hit = 0;
	while (!hit && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(found, cap, "%s/%s", dir, e->d_name);
			hit = 1;
		}
	}
	closedir(d);
	return hit;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = '\0';
	fclose(f);
	return b;
}

START_TEST(test_kill_during_export)
{
	char *dir = tmpdir_new();
	char db[4096], outdir[4096], out[4200];
	snprintf(db, sizeof db, "%s/chats.db", dir);
	snprintf(outdir, sizeof outdir, "%s/out", dir);
	ck_assert_int_eq(mkdir(outdir, 0700), 0);
	snprintf(out, sizeof out, "%s/conv.html", outdir);
	char *id = big_conversation(dir, db);
	sqlite3 *h = db_of(db);
	long long n_before = q_int(h, "SELECT count(*) FROM messages");
	sqlite3_close(h);
	ck_assert_int_eq(n_before, 200);

	static const char old[] = "the previous export\n";
	int caught = 0;
	for (int attempt = 0; attempt < 5 && !caught; attempt++) {
		FILE *f = fopen(out, "w");
		fputs(old, f);
		fclose(f);
		const char *argv[] = { "x", "export", id, "--format", "html", "-o", out, "--force", "--db", db, NULL };
		struct proc p;
		proc_start(&p, argv, dir);
		char tmp[8192] = "";
		double end = now_s() + 30;
		while (proc_alive(&p) && now_s() < end && !has_prefixed(outdir, "conv.html.", tmp, sizeof tmp))
			;   /* busy: the window is a few milliseconds */
		int during = proc_alive(&p) && tmp[0] != '\0';
		proc_kill(&p);
		char *now = slurp(out);
		if (during && strcmp(now, old) == 0 && access(tmp, F_OK) == 0) {
			caught = 1;
			/* The half-written file is private too. */
			struct stat sb;
			ck_assert_int_eq(stat(tmp, &sb), 0);
			ck_assert_int_eq(sb.st_mode & 0777, 0600);
		} else {
			/* Too late to catch it: then the export must be whole. */
			ck_assert_msg(strcmp(now, old) == 0 || strstr(now, "</html>") != NULL,
			    "attempt %d: the destination is neither the old file nor a whole export", attempt);
		}
		free(now);
		if (tmp[0])
			unlink(tmp);
		free(p.text);
		assert_db_sound(db);
	}
	ck_assert_msg(caught, "never killed an export while it was writing (5 attempts)");
	h = db_of(db);
	ck_assert_int_eq(q_int(h, "SELECT count(*) FROM messages"), n_before);
	sqlite3_close(h);
	assert_listable(db, dir);
	free(id);
	tmpdir_remove(dir);
}
END_TEST

Suite *crash_suite(void);

Suite *
crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("kill9");
	tcase_set_timeout(tc, 180);
	tcase_add_fixture_test(tc, test_kill_during_prompt);
	tcase_add_fixture_test(tc, test_kill_during_generation);
	tcase_add_test(tc, test_kill_during_export);
	suite_add_tcase(s, tc);
	return s;
}
