/*
 * check_sse.c: the server-sent events parser (suite sse).  A recorded
 * llama-server stream, dressed with what other servers send (CRLF and bare
 * CR line ends, keep-alive comments, multi-line data, named events, a
 * BOM), is fed whole, byte by byte, and split at every position and at
 * every pair of positions; each way must give the same events.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sse.h"
#include "tests/testutil.h"

/* From llama-server b4748 (POST /v1/chat/completions, stream: true), with
 * comments, CRLF and CR line ends, a multi-line and a named event added. */
static const char rec[] =
    "\xef\xbb\xbf: keep-alive\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"G\"}}],"
    "\"model\":\"x\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"ound\"}}]}\r\n\r\n"
    ":ping\r\n"
    "data:{\"choices\":[{\"delta\":{\"content\":\" P\"}}]}\r\r"
    "id: 7\nretry: 1000\n"
    "data: first\ndata:  second\ndata\n\n"
    "event: error\ndata: {\"error\":{\"message\":\"x\"}}\n\n"
    "\n\n"
    "data: {\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],"
    "\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":59,\"total_tokens\":64}}\n\n"
    "data: [DONE]\n\n";

static const struct {
	const char *event, *data;
} want[] = {
	{ "", "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"G\"}}],"
	      "\"model\":\"x\",\"object\":\"chat.completion.chunk\"}" },
	{ "", "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"ound\"}}]}" },
	{ "", "{\"choices\":[{\"delta\":{\"content\":\" P\"}}]}" },
	{ "", "first\n second\n" },
	{ "error", "{\"error\":{\"message\":\"x\"}}" },
	{ "", "{\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],"
	      "\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":59,\"total_tokens\":64}}" },
	{ "", "[DONE]" },
};
#define N_WANT ((int)(sizeof want / sizeof want[0]))

struct got {
	int n, bad;
	char why[200];
};

static int
on_event(void *ud, const char *event, const char *data, size_t len)
{
	struct got *g = ud;
	if (g->n >= N_WANT) {
		if (!g->bad)
			snprintf(g->why, sizeof g->why, "event %d too many", g->n);
		g->bad = 1;
	} else if (strcmp(event, want[g->n].event) != 0 || len != strlen(want[g->n].data) ||
	    memcmp(data, want[g->n].data, len) != 0 || data[len] != '\0') {
		if (!g->bad)
			snprintf(g->why, sizeof g->why, "event %d: got [%s] \"%.*s\"", g->n, event, (int)len, data);
		g->bad = 1;
	}
	g->n++;
	return 0;
}

/* Feed rec cut at the given positions (sorted, within 0..n). */
static void
feed_cuts(const size_t *cuts, int ncuts, struct got *g)
{
	struct sse p;
	sse_init(&p);
	memset(g, 0, sizeof *g);
	size_t n = sizeof rec - 1, at = 0;
	for (int i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		ck_assert_int_eq(sse_feed(&p, rec + at, end - at, on_event, g), 0);
		at = end;
	}
	ck_assert_int_eq(sse_pending(&p), 0);
	sse_free(&p);
}

START_TEST(test_whole_and_bytewise)
{
	struct got g;
	feed_cuts(NULL, 0, &g);
	ck_assert_msg(!g.bad, "%s", g.why);
	ck_assert_int_eq(g.n, N_WANT);
	size_t n = sizeof rec - 1;
	size_t *cuts = malloc(n * sizeof *cuts);
	for (size_t i = 0; i < n; i++)
		cuts[i] = i;
	feed_cuts(cuts, (int)n, &g);
	free(cuts);
	ck_assert_msg(!g.bad, "byte by byte: %s", g.why);
	ck_assert_int_eq(g.n, N_WANT);
}
END_TEST

START_TEST(test_every_split)
{
	size_t n = sizeof rec - 1;
	struct got g;
	for (size_t i = 0; i <= n; i++) {
		feed_cuts(&i, 1, &g);
		ck_assert_msg(!g.bad && g.n == N_WANT, "split at %zu: %s (%d events)", i, g.why, g.n);
	}
	/* Every pair of cuts up to 4 bytes apart: a CRLF, a BOM, a "data:"
	 * split three ways, too. */
	for (size_t i = 0; i <= n; i++)
		for (size_t j = i; j <= n && j <= i + 4; j++) {
			size_t c[2] = { i, j };
			feed_cuts(c, 2, &g);
			ck_assert_msg(!g.bad && g.n == N_WANT, "split at %zu,%zu: %s (%d events)", i, j, g.why, g.n);
		}
}
END_TEST

static int
stop_at_second(void *ud, const char *event, const char *data, size_t len)
{
	int *n = ud;
	return ++*n == 2 ? 42 : 0;
}

START_TEST(test_callback_stops_and_pending)
{
	struct sse p;
	sse_init(&p);
	int n = 0;
	ck_assert_int_eq(sse_feed(&p, rec, sizeof rec - 1, stop_at_second, &n), 42);
	ck_assert_int_eq(n, 2);
	sse_free(&p);

	/* A stream cut inside an event leaves it pending, not dispatched. */
	sse_init(&p);
	n = 0;
	const char cut[] = "data: {\"a\":1}\n\ndata: {\"b\"";
	ck_assert_int_eq(sse_feed(&p, cut, sizeof cut - 1, stop_at_second, &n), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_ne(sse_pending(&p), 0);
	ck_assert_int_eq(sse_feed(&p, "\n", 1, stop_at_second, &n), 0);
	ck_assert_int_ne(sse_pending(&p), 0);   /* data seen, no blank line yet */
	sse_free(&p);
}
END_TEST

START_TEST(test_too_long)
{
	struct sse p;
	sse_init(&p);
	size_t chunk = 1u << 20;
	char *b = malloc(chunk);
	memset(b, 'x', chunk);
	memcpy(b, "data: ", 6);
	int rc = 0;
	for (int i = 0; i < 16 && rc == 0; i++)
		rc = sse_feed(&p, b, chunk, NULL, NULL);
	ck_assert_int_eq(rc, -1);
	free(b);
	sse_free(&p);
}
END_TEST

Suite *sse_suite(void);

Suite *
sse_suite(void)
{
	Suite *s = suite_create("sse");
	TCase *tc = tcase_create("parse");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_whole_and_bytewise);
	tcase_add_test(tc, test_every_split);
	tcase_add_test(tc, test_callback_stops_and_pending);
	tcase_add_test(tc, test_too_long);
	suite_add_tcase(s, tc);
	return s;
}
