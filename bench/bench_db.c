/*
 * bench_db.c: the storage benchmark.  Builds a database of 10,000
 * conversations and 1,000,000 messages in a temporary folder (bulk insert
 * through the real schema, so the FTS5 and count triggers do their work),
 * then times what people wait for: `list` (the 50 most recent, with
 * message counts), `search` (20 newest hits with snippets) for words of
 * every frequency, loading a 100-message conversation, resolving an id
 * prefix, and one streaming-reply update.  Prints a table of milliseconds
 * (min / median / max over the repetitions) against the targets
 * (list < 20 ms, search < 50 ms).  The folder is removed at the end
 * unless --keep.
 *
 *   bench_db [--conversations N] [--messages-per M] [--reps R] [--keep]
 *
 * Message text is drawn from a 20,000-word made-up vocabulary with a Zipf
 * distribution (word k has weight 1/k), which is how word frequencies in
 * real text fall off, so common words have doclists of most messages and
 * rare ones of a handful.  A fixed seed makes every run build the same data.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/db_int.h"

#define VOCAB 20000

static uint64_t bench_rng = 0x9E3779B97F4A7C15ULL;

static uint64_t
bench_rand(void)
{
	/* xorshift64*: plenty for test data, and reproducible. */
	bench_rng ^= bench_rng >> 12;
	bench_rng ^= bench_rng << 25;
	bench_rng ^= bench_rng >> 27;
	return bench_rng * 2685821657736338717ULL;
}

static char *vocab[VOCAB];
static double zipf_cdf[VOCAB];

static void
bench_vocab(void)
{
	static const char *const syl[] = {
		"ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "da", "zu", "re", "an", "ol",
		"by", "fe", "gi", "hu", "ja", "ko", "le", "mo", "nu", "pa", "qui", "ri", "so", "tu",
	};
	const int ns = sizeof syl / sizeof syl[0];
	double sum = 0;
	for (int k = 0; k < VOCAB; k++) {
		/* Distinct words: the syllables spell k in base ns, plus one random one. */
		char w[32] = "";
		int x = k;
		do {
			strcat(w, syl[x % ns]);
			x /= ns;
		} while (x > 0);
		strcat(w, syl[bench_rand() % (uint64_t)ns]);
		vocab[k] = strdup(w);
		sum += 1.0 / (k + 1);
		zipf_cdf[k] = sum;
	}
	for (int k = 0; k < VOCAB; k++)
		zipf_cdf[k] /= sum;
}

static int
bench_word(void)
{
	double u = (double)(bench_rand() >> 11) / 9007199254740992.0;
	int lo = 0, hi = VOCAB - 1;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A message of lo..hi words into buf. */
static size_t
bench_text(char *buf, size_t size, int lo, int hi)
{
	int n = lo + (int)(bench_rand() % (uint64_t)(hi - lo + 1));
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		const char *w = vocab[bench_word()];
		size_t wl = strlen(w);
		if (len + wl + 2 >= size)
			break;
		if (i > 0)
			buf[len++] = (i % 12 == 0) ? '\n' : ' ';
		memcpy(buf + len, w, wl);
		len += wl;
	}
	buf[len] = '\0';
	return len;
}

static double
bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
bench_row(const char *what, double *t, int reps, double target, const char *note)
{
	char tgt[32] = "";
	qsort(t, (size_t)reps, sizeof *t, bench_cmp);
	if (target > 0)
		snprintf(tgt, sizeof tgt, "< %.0f %s", target, t[reps / 2] < target ? "ok" : "SLOW");
	printf("%-34s %8.2f %8.2f %8.2f  %-9s  %s\n", what, t[0], t[reps / 2], t[reps - 1], tgt, note);
}

static int
bench_fail(struct db *d, const char *what, char *err)
{
	fprintf(stderr, "bench_db: %s: %s\n", what, err != NULL ? err : sqlite3_errmsg(d->h));
	free(err);
	return 1;
}

int
main(int argc, char **argv)
{
	int n_conv = 10000, per = 100, reps = 20, keep = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--conversations") == 0 && i + 1 < argc)
			n_conv = atoi(argv[++i]);
		else if (strcmp(argv[i], "--messages-per") == 0 && i + 1 < argc)
			per = atoi(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--keep") == 0)
			keep = 1;
		else {
			fprintf(stderr, "usage: bench_db [--conversations N] [--messages-per M] "
			    "[--reps R] [--keep]\n");
			return 2;
		}
	}
	if (n_conv < 1 || per < 2 || reps < 1) {
		fprintf(stderr, "bench_db: sizes must be positive\n");
		return 2;
	}
	const char *base = getenv("TMPDIR");
	char dir[4096], path[4200];
	snprintf(dir, sizeof dir, "%s/l2c-bench-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("bench_db: mkdtemp");
		return 1;
	}
	snprintf(path, sizeof path, "%s/chats.db", dir);

	char *err = NULL;
	struct db *d = db_open(path, &err);
	if (d == NULL) {
		fprintf(stderr, "bench_db: %s\n", err);
		return 1;
	}
	bench_vocab();

	/* ---- build ---- */
	double t0 = bench_now();
	/* Bulk-load settings for this connection only: a big page cache so the
	 * FTS index is built in memory between commits, and no fsync (a crash
	 * here loses only test data). */
	sqlite3_exec(d->h, "PRAGMA cache_size = -262144; PRAGMA synchronous = OFF", NULL, NULL, NULL);
	/*
	 * Indexing row by row through the insert trigger costs ~50 us a message
	 * here (SQLite 3.40's FTS5 flushes its pending terms at every statement
	 * savepoint, so each insert makes a tiny segment that must be merged).
	 * For the bulk load only: take the trigger out, build the index and the
	 * counts once at the end, and put back the trigger text read from the
	 * schema itself, so what is measured afterwards is the real schema.
	 */
	char *trigger_sql = NULL;
	sqlite3_stmt *ts;
	if (sqlite3_prepare_v2(d->h, "SELECT sql FROM sqlite_schema WHERE name = 'messages_ai'", -1,
	    &ts, NULL) != SQLITE_OK || sqlite3_step(ts) != SQLITE_ROW)
		return bench_fail(d, "read trigger", NULL);
	trigger_sql = strdup((const char *)sqlite3_column_text(ts, 0));
	sqlite3_finalize(ts);
	if (sqlite3_exec(d->h, "DROP TRIGGER messages_ai", NULL, NULL, NULL) != SQLITE_OK)
		return bench_fail(d, "drop trigger", NULL);
	sqlite3_stmt *ic, *im;
	if (sqlite3_prepare_v2(d->h, "INSERT INTO conversations(pid, title, created, updated,"
	    " model_name, preset, params) VALUES (?, ?, ?, ?, 'llama-2-7b-chat.Q4_0.gguf',"
	    " 'assistant', '{\"temperature\":0.6,\"top_p\":0.9}')", -1, &ic, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(d->h, "INSERT INTO messages(conversation_id, position, role, content,"
	    " tokens, created, finish, seed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &im, NULL) != SQLITE_OK)
		return bench_fail(d, "prepare", NULL);
	int64_t start_ms = db_now_ms() - (int64_t)n_conv * per * 1000;
	int64_t clock_ms = start_ms;
	char text[4096], title[64];
	unsigned char blob[4 * 512];
	long long n_msgs = 0;
	size_t text_bytes = 0;
	for (int c = 0; c < n_conv; c++) {
		if (c % 1000 == 0 && sqlite3_exec(d->h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return bench_fail(d, "begin", NULL);
		char pid[DB_PID_LEN + 1];
		int rc;
		bench_text(title, sizeof title, 3, 6);
		do {
			db_pid_random(pid);
			sqlite3_reset(ic);
			sqlite3_bind_text(ic, 1, pid, -1, SQLITE_STATIC);
			sqlite3_bind_text(ic, 2, title, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ic, 3, clock_ms);
			sqlite3_bind_int64(ic, 4, clock_ms + (int64_t)per * 1000);
			rc = sqlite3_step(ic);
		} while (rc == SQLITE_CONSTRAINT);
		if (rc != SQLITE_DONE)
			return bench_fail(d, "insert conversation", NULL);
		int64_t cid = sqlite3_last_insert_rowid(d->h);
		for (int m = 0; m < per; m++) {
			int user = m % 2 == 0;
			size_t len = user ? bench_text(text, sizeof text, 5, 30) :
			    bench_text(text, sizeof text, 20, 120);
			/* About one token id per 4 bytes of text, as in LLaMA's tokenizer. */
			size_t nt = len / 4 < 512 ? len / 4 : 512;
			for (size_t k = 0; k < 4 * nt; k++)
				blob[k] = (unsigned char)bench_rand();
			sqlite3_reset(im);
			sqlite3_bind_int64(im, 1, cid);
			sqlite3_bind_int(im, 2, m);
			sqlite3_bind_text(im, 3, user ? "user" : "assistant", -1, SQLITE_STATIC);
			sqlite3_bind_text(im, 4, text, (int)len, SQLITE_STATIC);
			sqlite3_bind_blob(im, 5, blob, (int)(4 * nt), SQLITE_STATIC);
			sqlite3_bind_int64(im, 6, clock_ms);
			if (user) {
				sqlite3_bind_null(im, 7);
				sqlite3_bind_null(im, 8);
			} else {
				sqlite3_bind_text(im, 7, "eos", -1, SQLITE_STATIC);
				sqlite3_bind_int64(im, 8, (int64_t)(bench_rand() >> 1));
			}
			if (sqlite3_step(im) != SQLITE_DONE)
				return bench_fail(d, "insert message", NULL);
			clock_ms += 1000;
			n_msgs++;
			text_bytes += len;
		}
		if ((c % 1000 == 999 || c == n_conv - 1) &&
		    sqlite3_exec(d->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return bench_fail(d, "commit", NULL);
	}
	sqlite3_finalize(ic);
	sqlite3_finalize(im);
	double load_ms = bench_now() - t0;
	if (sqlite3_exec(d->h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(d->h, trigger_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(d->h, "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');"
	    "UPDATE conversations SET n_messages ="
	    " (SELECT count(*) FROM messages WHERE conversation_id = conversations.id);"
	    "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return bench_fail(d, "index", NULL);
	free(trigger_sql);
	sqlite3_exec(d->h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	double build_ms = bench_now() - t0;
	db_close(d);

	/* ---- measure, on a fresh connection ---- */
	d = db_open(path, &err);
	if (d == NULL)
		return bench_fail(d, "reopen", err);
	long long bytes = 0;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(d->h, "SELECT page_count * page_size FROM pragma_page_count,"
	    " pragma_page_size", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		bytes = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);

	printf("llama2-chat storage benchmark (SQLite %s)\n", sqlite3_libversion());
	printf("built %d conversations, %lld messages (%.0f MB of text), file %.0f MB, in %.1f s\n"
	    "(rows %.1f s, full-text index and counts %.1f s)\n\n", n_conv, n_msgs, text_bytes / 1e6,
	    bytes / 1e6, build_ms / 1e3, load_ms / 1e3, (build_ms - load_ms) / 1e3);
	printf("%-34s %8s %8s %8s  %-9s  %s\n", "operation (ms)", "min", "median", "max", "target",
	    "");

	double *t = calloc((size_t)reps, sizeof *t);
	struct db_conv *a;
	size_t n;
	for (int r = 0; r < reps; r++) {
		double s = bench_now();
		if (db_conv_list(d, 50, &a, &n, &err) != 0)
			return bench_fail(d, "list", err);
		t[r] = bench_now() - s;
		if (n != 50 || a[0].n_messages != per)
			return bench_fail(d, "list", strdup("wrong result"));
		db_conv_array_free(a, n);
	}
	bench_row("list (50 newest, with counts)", t, reps, 20, "");

	/* Queries by word rank: 1 is in nearly every message, 15000 in a few. */
	char q[6][128];
	snprintf(q[0], sizeof q[0], "%s", vocab[0]);
	snprintf(q[1], sizeof q[1], "%s", vocab[99]);
	snprintf(q[2], sizeof q[2], "%s", vocab[2999]);
	snprintf(q[3], sizeof q[3], "%s", vocab[14999]);
	snprintf(q[4], sizeof q[4], "%s %s", vocab[9], vocab[499]);
	snprintf(q[5], sizeof q[5], "\"%s %s\"", vocab[1], vocab[2]);
	const char *label[] = {
		"search: word rank 1", "search: word rank 100", "search: word rank 3000",
		"search: word rank 15000", "search: ranks 10 AND 500", "search: phrase ranks 2,3",
	};
	for (int k = 0; k < 6; k++) {
		size_t hits = 0;
		for (int r = 0; r < reps; r++) {
			struct db_hit *h;
			double s = bench_now();
			if (db_search(d, q[k], 20, "[", "]", &h, &n, &err) != 0)
				return bench_fail(d, "search", err);
			t[r] = bench_now() - s;
			hits = n;
			db_hits_free(h, n);
		}
		char note[160];
		snprintf(note, sizeof note, "%zu hits for %s", hits, q[k]);
		bench_row(label[k], t, reps, 50, note);
	}

	int64_t id;
	for (int r = 0; r < reps; r++) {
		double s = bench_now();
		if (db_conv_latest(d, &id, &err) != 1)
			return bench_fail(d, "latest", err);
		struct db_conv *c = db_conv_load(d, id, &err);
		if (c == NULL)
			return bench_fail(d, "load", err);
		t[r] = bench_now() - s;
		db_conv_free(c);
	}
	bench_row("continue: latest + load 100 msgs", t, reps, 0, "");

	struct db_conv *c = db_conv_load(d, id, &err);
	char pre[4] = { c->pid[0], c->pid[1], c->pid[2], 0 };
	db_conv_free(c);
	for (int r = 0; r < reps; r++) {
		double s = bench_now();
		int64_t got;
		int rc = db_conv_resolve(d, pre, &got, &err);
		t[r] = bench_now() - s;
		if (rc != 0) {
			free(err);      /* an ambiguous 3-letter prefix is a fine outcome too */
			err = NULL;
		}
	}
	bench_row("resolve a 3-character id prefix", t, reps, 0, "");

	int64_t rid;
	if (db_reply_begin(d, id, NULL, 1, 1, &rid, &err) != 0)
		return bench_fail(d, "reply", err);
	size_t len = bench_text(text, sizeof text, 300, 400);
	for (int r = 0; r < reps; r++) {
		double s = bench_now();
		if (db_reply_update(d, rid, text, NULL, 0, &err) != 0)
			return bench_fail(d, "update", err);
		t[r] = bench_now() - s;
	}
	char note[64];
	snprintf(note, sizeof note, "%zu bytes, one transaction", len);
	bench_row("streaming reply update", t, reps, 0, note);

	db_close(d);
	free(t);
	if (keep) {
		printf("\nkept %s\n", path);
	} else {
		char cmd[4200];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_db: could not remove %s\n", dir);
	}
	for (int k = 0; k < VOCAB; k++)
		free(vocab[k]);
	return 0;
}
