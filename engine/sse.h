/*
 * sse.h: an incremental parser for server-sent events (the WHATWG
 * "text/event-stream" format), as OpenAI-compatible servers stream chat
 * completions.  Feed it the bytes as they arrive, in pieces of any size;
 * it calls back once per complete event with the event's data.
 *
 *   struct sse p;  sse_init(&p);
 *   sse_feed(&p, buf, n, on_event, ud);   as often as bytes arrive
 *   sse_free(&p);
 *
 * Engine-internal (engine/remote.c and the tests); never prints.
 */
#ifndef ENGINE_SSE_H
#define ENGINE_SSE_H

#include <stddef.h>

/* Longest line or event data kept (bytes); longer is an error. */
#define SSE_MAX (8u << 20)

struct sse {
	char *line;               /* the line being read (no terminator) */
	size_t len, cap;
	char *data;               /* the event's data lines, joined by '\n' */
	size_t dlen, dcap;
	int has_data;             /* a data field was seen in this event */
	char event[32];           /* the event's "event:" name ("" for "message") */
	int after_cr;             /* the last byte was CR: a following LF ends nothing */
	int started;              /* past the optional leading BOM */
};

/* Called with the event's data (NUL-terminated, without the last '\n') and
 * its type ("" unless an "event:" line named one).  Nonzero stops the feed
 * and is returned by sse_feed. */
typedef int (*sse_event_fn)(void *ud, const char *event, const char *data, size_t len);

void sse_init(struct sse *p);
void sse_free(struct sse *p);
/*
 * Parse n more bytes.  Lines may end in LF, CR or CRLF (also split across
 * calls); lines starting with ':' are comments (keep-alives); a blank line
 * dispatches the event if it had data.  Returns 0, the callback's nonzero
 * value, or -1 when a line or an event grows past SSE_MAX or memory runs
 * out (the parser is then unusable until sse_init).
 */
int sse_feed(struct sse *p, const char *buf, size_t n, sse_event_fn fn, void *ud);
/* Nonzero when bytes of an unfinished event are pending (the stream
 * stopped in the middle of one). */
int sse_pending(const struct sse *p);

#endif
