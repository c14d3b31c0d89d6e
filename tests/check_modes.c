/*
 * check_modes.c: what the program leaves on disk is private, and nothing
 * it does runs a shell.
 *
 * Modes: the real binary runs with umask 0 (so a file created without an
 * explicit mode would show up as 0666) and no XDG folders made in advance;
 * a piped chat with the default database, a long reply watched while the
 * database's -wal and -shm files exist, exports in every format, then a
 * walk over everything under the XDG folders and the export folder: every
 * folder 0700, every file 0600.
 *
 * Shells: the sources of engine/ storage/ ui/ app/ are scanned for
 * system(), popen(), the exec family, posix_spawn and "/bin/sh"; and a chat
 * and an export are run under strace -f -e trace=execve, where the only
 * program executed must be the binary itself (skipped without strace).
 */
#include "tests/testutil.h"

#include <ctype.h>
#include <dirent.h>
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

static char *
model(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "models/%s", name);
	char *p = fixture_path(rel);
	ck_assert_msg(p != NULL, "%s missing", rel);
	return p;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Run prog (argv[0] is the program's path) with umask 0, the XDG folders
 * under dir, stdin_data on stdin (NULL: /dev/null), stdout into *out.
 * until_exists: kill the process as soon as every path in it exists (after
 * calling on_exist), else wait for it.  Returns the exit status, 128+signal
 * when killed, -1 on timeout.
 */
static int
run_in(const char *dir, const char *const *argv, const char *stdin_data, char **out,
    const char *const *until_exists, void (*on_exist)(void), int timeout_s)
{
	char inpath[4096], outpath[4096];
	snprintf(inpath, sizeof inpath, "%s/stdin.txt", dir);
	snprintf(outpath, sizeof outpath, "%s/stdout.txt", dir);
	FILE *f = fopen(inpath, "w");
	ck_assert_ptr_nonnull(f);
	if (stdin_data)
		fputs(stdin_data, f);
	fclose(f);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open(inpath, O_RDONLY);
		int o = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open("/dev/null", O_WRONLY);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		static const char *names[4] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
		for (int i = 0; i < 4; i++) {
			char v[4200];
			snprintf(v, sizeof v, "%s/xdg/%s", dir, names[i]);
			setenv(names[i], v, 1);
		}
		setenv("HOME", dir, 1);
		unsetenv("LLAMA2_CHAT_DB");
		unsetenv("LLAMA2_CHAT_MODEL");
		setenv("OMP_NUM_THREADS", "1", 1);
		umask(0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	double end = now_s() + timeout_s;
	int st = 0, done = 0, killed = 0;
	while (!done && now_s() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			done = 1;
			break;
		}
		if (until_exists) {
			int all = 1;
			for (int i = 0; until_exists[i] && all; i++)
				all = access(until_exists[i], F_OK) == 0;
			if (all) {
				on_exist();
				kill(pid, SIGKILL);
				killed = 1;
				waitpid(pid, &st, 0);
				done = 1;
				break;
			}
		}
		struct timespec ts = { 0, 5000000L };
		nanosleep(&ts, NULL);
	}
	if (!done) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	if (out) {
		FILE *o = fopen(outpath, "r");
		char *b = calloc(1, 65537);
		if (o) {
			size_t n = fread(b, 1, 65536, o);
			b[n] = '\0';
			fclose(o);
		}
		*out = b;
	}
	unlink(inpath);
	unlink(outpath);
	if (!done)
		return -1;
	if (killed || WIFSIGNALED(st))
		return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

/* Every folder under (and including) root 0700, every file 0600; returns
 * how many entries were looked at. */
static int
walk_modes(const char *root, const char *skip)
{
	struct stat sb;
	if (lstat(root, &sb) != 0)
		return 0;
	if (skip && strcmp(root, skip) == 0)
		return 0;
	int n = 1;
	if (S_ISDIR(sb.st_mode)) {
		ck_assert_msg((sb.st_mode & 0777) == 0700, "folder %s has mode %03o", root, sb.st_mode & 0777);
		DIR *d = opendir(root);
		ck_assert_ptr_nonnull(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char p[8192];
			snprintf(p, sizeof p, "%s/%s", root, e->d_name);
			n += walk_modes(p, skip);
		}
		closedir(d);
	} else {
		ck_assert_msg(S_ISREG(sb.st_mode), "%s is not a regular file", root);
		ck_assert_msg((sb.st_mode & 0777) == 0600, "file %s has mode %03o", root, sb.st_mode & 0777);
	}
	return n;
}

static char g_db[4096];
static int g_wal_checked;

/* While the reply streams: the database and its -wal and -shm are 0600. */
static void
check_live_files(void)
{
	const char *sfx[] = { "", "-wal", "-shm" };
	for (int i = 0; i < 3; i++) {
		char p[4200];
		struct stat sb;
		snprintf(p, sizeof p, "%s%s", g_db, sfx[i]);
		ck_assert_msg(stat(p, &sb) == 0, "%s missing while the reply streams", p);
		ck_assert_msg((sb.st_mode & 0777) == 0600, "%s has mode %03o", p, sb.st_mode & 0777);
	}
	g_wal_checked = 1;
}

START_TEST(test_created_files_are_private)
{
	char *m = model("fixture-q4_0.gguf");
	char *slow = model("llama-2-tiny-random.gguf");
	char *dir = tmpdir_new();
	const char *bin = test_binary();

	/* A piped chat: creates the XDG folders and the database itself. */
	const char *chat[] = { bin, "chat", "-m", m, "-n", "8", "--temp", "0", NULL };
	char *out;
	int st = run_in(dir, chat, "hi\nmore\n", &out, NULL, NULL, 120);
	ck_assert_msg(st == 0, "chat: status %d", st);
	free(out);
	snprintf(g_db, sizeof g_db, "%s/xdg/XDG_DATA_HOME/llama2-chat/chats.db", dir);
	ck_assert_msg(access(g_db, F_OK) == 0, "no database at %s", g_db);

	/* A long reply: look at the -wal and -shm files while they exist. */
	char wal[4200], shm[4200];
	snprintf(wal, sizeof wal, "%s-wal", g_db);
	snprintf(shm, sizeof shm, "%s-shm", g_db);
	const char *both[] = { wal, shm, NULL };
	const char *gen[] = { bin, "-m", slow, "-c", "-p", "go on", "-n", "100000", "--ctx-size", "4096", "--force", "--temp", "1.5",
		"--seed", "1", NULL };
	g_wal_checked = 0;
	st = run_in(dir, gen, NULL, NULL, both, check_live_files, 120);
	ck_assert_msg(g_wal_checked, "the -wal/-shm files never appeared (status %d)", st);

	/* Exports in every format (the folder is ours; the files are the
	 * program's), then again with --force, which writes a temporary file
	 * and renames it over the first. */
	const char *ls[] = { bin, "list", "--json", NULL };
	char *lj;
	ck_assert_int_eq(run_in(dir, ls, NULL, &lj, NULL, NULL, 30), 0);
	json_error_t je;
	json_t *j = json_loads(lj, 0, &je);
	ck_assert_msg(j != NULL, "list --json: %s", lj);
	const char *id = json_string_value(json_object_get(json_array_get(j, 0), "id"));
	ck_assert_msg(id != NULL, "no id in: %s", lj);
	char exdir[4200];
	snprintf(exdir, sizeof exdir, "%s/exports", dir);
	ck_assert_int_eq(mkdir(exdir, 0700), 0);
	const char *fmts[] = { "md", "txt", "json", "html" };
	for (int i = 0; i < 4; i++) {
		char file[4300];
		snprintf(file, sizeof file, "%s/conv.%s", exdir, fmts[i]);
		const char *ex[] = { bin, "export", id, "-o", file, NULL };
		st = run_in(dir, ex, NULL, NULL, NULL, NULL, 30);
		ck_assert_msg(st == 0, "export %s: status %d", fmts[i], st);
		const char *exf[] = { bin, "export", id, "-o", file, "--force", NULL };
		st = run_in(dir, exf, NULL, NULL, NULL, NULL, 30);
		ck_assert_msg(st == 0, "export --force %s: status %d", fmts[i], st);
	}
	json_decref(j);
	free(lj);

	/* Everything the program made. */
	char xdg[4200];
	snprintf(xdg, sizeof xdg, "%s/xdg", dir);
	int n = 0;
	const char *bases[] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
	for (int i = 0; i < 4; i++) {
		char b[4300];
		snprintf(b, sizeof b, "%s/%s", xdg, bases[i]);
		n += walk_modes(b, NULL);
	}
	ck_assert_msg(n >= 3, "only %d entries under the XDG folders", n);
	ck_assert_int_eq(walk_modes(exdir, NULL), 5);
	free(m);
	free(slow);
	tmpdir_remove(dir);
}
END_TEST

/* ---- the interface (tmux): its history file ------------------------------------ */

static int
have_tmux(void)
{
	return access("/usr/bin/tmux", X_OK) == 0 || access("/bin/tmux", X_OK) == 0;
}

/* tmux -L sock -f /dev/null args...; the server it starts inherits umask 0
 * and the XDG folders under dir.  Returns the exit status. */
static int
tmux(const char *dir, const char *sock, const char *const *args)
{
	const char *argv[32] = { "tmux", "-L", sock, "-f", "/dev/null" };
	int n = 5;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int e = open("/dev/null", O_WRONLY);
		dup2(e, 1);
		dup2(e, 2);
		static const char *names[4] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
		for (int i = 0; i < 4; i++) {
			char v[4200];
			snprintf(v, sizeof v, "%s/xdg/%s", dir, names[i]);
			setenv(names[i], v, 1);
		}
		setenv("HOME", dir, 1);
		setenv("LANG", "C.UTF-8", 1);
		setenv("LC_ALL", "C.UTF-8", 1);
		unsetenv("LLAMA2_CHAT_DB");
		unsetenv("LLAMA2_CHAT_MODEL");
		unsetenv("TMUX");
		umask(0);
		execvp("tmux", (char *const *)argv);
		_exit(127);
	}
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
count_rows(const char *db, const char *sql)
{
	if (access(db, F_OK) != 0)
		return 0;
	sqlite3 *h = NULL;
	int v = 0;
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(h, 1000);
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				v = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
	}
	sqlite3_close(h);
	return v;
}

static void
nap(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* The interface with its default files: a message, a reply, quit; then the
 * history file (and everything else) is private. */
START_TEST(test_ui_files_are_private)
{
	char *m = model("fixture-q4_0.gguf");
	char *dir = tmpdir_new();
	char sock[64], cmd[8192], db[4200], hist[4200];
	snprintf(sock, sizeof sock, "l2c-modes-%ld", (long)getpid());
	snprintf(db, sizeof db, "%s/xdg/XDG_DATA_HOME/llama2-chat/chats.db", dir);
	snprintf(hist, sizeof hist, "%s/xdg/XDG_STATE_HOME/llama2-chat/history", dir);
	snprintf(cmd, sizeof cmd, "exec '%s' -m '%s' -n 4 --temp 0 2>/dev/null", test_binary(), m);
	const char *start[] = { "new-session", "-d", "-x", "100", "-y", "30", cmd, NULL };
	ck_assert_int_eq(tmux(dir, sock, start), 0);
	double end = now_s() + 60;
	while (access(db, F_OK) != 0 && now_s() < end)
		nap(20);
	ck_assert_msg(access(db, F_OK) == 0, "the interface never opened its database");
	/* Type until the message is taken (the interface may still be starting). */
	const char *typ[] = { "send-keys", "-l", "--", "hello modes", NULL };
	const char *ent[] = { "send-keys", "Enter", NULL };
	int sent = 0;
	for (int attempt = 0; attempt < 5 && !sent; attempt++) {
		tmux(dir, sock, typ);
		tmux(dir, sock, ent);
		double t = now_s() + 5;
		while (!(sent = count_rows(db, "SELECT count(*) FROM messages WHERE role = 'user'") > 0) && now_s() < t)
			nap(20);
	}
	ck_assert_msg(sent, "the message never reached the database");
	while (count_rows(db, "SELECT count(*) FROM messages WHERE role = 'assistant' AND finish IS NOT NULL "
	    "AND finish != 'interrupted'") == 0 && now_s() < end)
		nap(20);
	const char *quit[] = { "send-keys", "C-q", NULL };
	tmux(dir, sock, quit);
	while (access(hist, F_OK) != 0 && now_s() < end)
		nap(20);
	const char *kill_srv[] = { "kill-server", NULL };
	tmux(dir, sock, kill_srv);
	ck_assert_msg(access(hist, F_OK) == 0, "no history file at %s after quitting", hist);

	const char *bases[] = { "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME" };
	for (int i = 0; i < 4; i++) {
		char b[4300];
		snprintf(b, sizeof b, "%s/xdg/%s", dir, bases[i]);
		walk_modes(b, NULL);
	}
	free(m);
	tmpdir_remove(dir);
}
END_TEST

/* ---- no shell ------------------------------------------------------------------ */

/* Calls that run another program, as they appear in C source. */
static const char *const shell_calls[] = {
	"system", "popen", "execl", "execle", "execlp", "execv", "execve", "execvp", "execvpe", "fexecve",
	"posix_spawn", "posix_spawnp", "wordexp", NULL,
};

/* Occurrences in text of a call to one of shell_calls, or of "/bin/sh":
 * the name must not continue an identifier or follow '.' or "->", and must
 * be followed by '(' (spaces allowed).  Comments are not skipped. */
static int
scan_shell(const char *text, const char *file, char *report, size_t cap)
{
	int hits = 0;
	int line = 1;
	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			line++;
		if (strncmp(p, "/bin/sh", 7) == 0 || strncmp(p, "\"sh\"", 4) == 0) {
			hits++;
			snprintf(report + strlen(report), cap - strlen(report), "%s:%d: shell path\n", file, line);
			continue;
		}
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.' || p[-1] == '>'))
			continue;
		for (int i = 0; shell_calls[i]; i++) {
			size_t l = strlen(shell_calls[i]);
			if (strncmp(p, shell_calls[i], l) != 0)
				continue;
			const char *q = p + l;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '(') {
				hits++;
				snprintf(report + strlen(report), cap - strlen(report), "%s:%d: %s(\n", file, line,
				    shell_calls[i]);
			}
		}
	}
	return hits;
}

START_TEST(test_scanner_finds_calls)
{
	char r[1024] = "";
	struct { const char *src; int hits; } cases[] = {
		{ "int x = system(\"ls\");", 1 },
		{ "FILE *f = popen (cmd, \"r\");", 1 },
		{ "execvp(argv[0], argv);", 1 },
		{ "char *sh = \"/bin/sh\";", 1 },
		{ "chat_set_system(c, s); s->system = x; o.system(1); my_popen(x);", 0 },
		{ "the system prompt (folded)", 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r[0] = '\0';
		ck_assert_msg(scan_shell(cases[i].src, "case", r, sizeof r) == cases[i].hits, "case %zu: %s", i, r);
	}
}
END_TEST

START_TEST(test_sources_run_no_shell)
{
	const char *dirs[] = { "engine", "storage", "ui", "app" };
	char report[8192] = "";
	int hits = 0, files = 0;
	for (int i = 0; i < 4; i++) {
		DIR *d = opendir(dirs[i]);
		ck_assert_msg(d != NULL, "%s/ not found (run from the project root)", dirs[i]);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			size_t l = strlen(e->d_name);
			if (l < 3 || (strcmp(e->d_name + l - 2, ".c") != 0 && strcmp(e->d_name + l - 2, ".h") != 0))
				continue;
			char p[4096];
			snprintf(p, sizeof p, "%s/%s", dirs[i], e->d_name);
			FILE *f = fopen(p, "r");
			ck_assert_ptr_nonnull(f);
			fseek(f, 0, SEEK_END);
			long n = ftell(f);
			fseek(f, 0, SEEK_SET);
			char *b = calloc(1, (size_t)n + 1);
			ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
			fclose(f);
			hits += scan_shell(b, p, report, sizeof report);
			free(b);
			files++;
		}
		closedir(d);
	}
	ck_assert_msg(files >= 10, "only %d source files found", files);
	ck_assert_msg(hits == 0, "code that can run another program:\n%s", report);
}
END_TEST

static int
have_strace(void)
{
	return access("/usr/bin/strace", X_OK) == 0 || access("/bin/strace", X_OK) == 0;
}

/* Every execve in the strace log runs bin (the first one), and the log
 * holds at least one. */
static void
assert_only_binary(const char *log, const char *bin, const char *what)
{
	FILE *f = fopen(log, "r");
	ck_assert_msg(f != NULL, "%s: no strace log", what);
	char line[8192];
	int n = 0;
	char want[4200];
	snprintf(want, sizeof want, "execve(\"%s\"", bin);
	while (fgets(line, sizeof line, f)) {
		char *e = strstr(line, "execve(");
		if (e == NULL)
			continue;
		n++;
		ck_assert_msg(strncmp(e, want, strlen(want)) == 0, "%s: another program was run: %s", what, line);
	}
	fclose(f);
	ck_assert_msg(n >= 1, "%s: strace saw no execve at all", what);
}

START_TEST(test_no_program_but_itself)
{
	char *m = model("fixture-q4_0.gguf");
	char *dir = tmpdir_new();
	const char *st_path = access("/usr/bin/strace", X_OK) == 0 ? "/usr/bin/strace" : "/bin/strace";
	char bin[4096];
	ck_assert_ptr_nonnull(realpath(test_binary(), bin));
	char log[4200], file[4200];
	snprintf(log, sizeof log, "%s/strace.log", dir);
	/* LeakSanitizer cannot run under ptrace (sanitizer builds). */
	char *asan = getenv("ASAN_OPTIONS") ? strdup(getenv("ASAN_OPTIONS")) : NULL;
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	const char *chat[] = { st_path, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "chat", "-m", m, "-n", "6",
		"--temp", "0", NULL };
	int st = run_in(dir, chat, "hello\n", NULL, NULL, NULL, 120);
	ck_assert_msg(st == 0, "chat under strace: status %d", st);
	assert_only_binary(log, bin, "chat");

	snprintf(file, sizeof file, "%s/conv.html", dir);
	const char *ls[] = { bin, "list", "--json", NULL };
	char *lj;
	ck_assert_int_eq(run_in(dir, ls, NULL, &lj, NULL, NULL, 30), 0);
	json_error_t je;
	json_t *j = json_loads(lj, 0, &je);
	const char *id = json_string_value(json_object_get(json_array_get(j, 0), "id"));
	ck_assert_msg(id != NULL, "no id in: %s", lj);
	const char *ex[] = { st_path, "-f", "-qq", "-e", "trace=execve", "-o", log, bin, "export", id, "-o", file, NULL };
	ck_assert_int_eq(run_in(dir, ex, NULL, NULL, NULL, NULL, 30), 0);
	assert_only_binary(log, bin, "export");
	if (asan) {
		setenv("ASAN_OPTIONS", asan, 1);
		free(asan);
	} else {
		unsetenv("ASAN_OPTIONS");
	}
	json_decref(j);
	free(lj);
	free(m);
	tmpdir_remove(dir);
}
END_TEST

Suite *modes_suite(void);

Suite *
modes_suite(void)
{
	Suite *s = suite_create("modes");
	TCase *tc = tcase_create("private");
	tcase_set_timeout(tc, 180);
	tcase_add_fixture_test(tc, test_created_files_are_private);
	if (have_tmux()) {
		tcase_add_fixture_test(tc, test_ui_files_are_private);
	} else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_ui_files_are_private (no tmux)\n");
	}
	suite_add_tcase(s, tc);
	tc = tcase_create("shell");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_scanner_finds_calls);
	tcase_add_test(tc, test_sources_run_no_shell);
	if (have_strace()) {
		tcase_add_fixture_test(tc, test_no_program_but_itself);
	} else {
		testutil_skipped++;
		fprintf(stderr, "skipped: test_no_program_but_itself (no strace)\n");
	}
	suite_add_tcase(s, tc);
	return s;
}
