/*
 * sse.c: server-sent events, parsed incrementally (see sse.h).
 *
 * Rules followed, from the WHATWG HTML standard's "event stream
 * interpretation": the stream is lines ending in CRLF, LF or CR; a leading
 * UTF-8 BOM is dropped; a line starting with ':' is a comment; otherwise the
 * text before the first ':' is the field name and the rest its value, minus
 * one leading space (a line without ':' is a field with an empty value);
 * "data" values are joined with '\n'; "event" names the event; "id" and
 * "retry" are accepted and ignored (we never reconnect: a retry would
 * repeat a generation); a blank line dispatches the event when it has data.
 *
 * Invariant: p->line holds the bytes of the current, unfinished line and
 * nothing else; p->after_cr is set when the previous byte ended a line with
 * CR, so that the LF of a CRLF split across two feeds ends no second line.
 */
#include "engine/sse.h"

#include <stdlib.h>
#include <string.h>

void
sse_init(struct sse *p)
{
	memset(p, 0, sizeof *p);
}

void
sse_free(struct sse *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof *p);
}

int
sse_pending(const struct sse *p)
{
	return p->len > 0 || p->has_data;
}

/* Make room for n more bytes (and a NUL) in *buf. */
static int
sse_grow(char **buf, size_t *cap, size_t len, size_t n)
{
	if (len + n + 1 > SSE_MAX)
		return -1;
	if (len + n + 1 <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 256;
	while (nc < len + n + 1)
		nc *= 2;
	char *nb = realloc(*buf, nc);
	if (nb == NULL)
		return -1;
	*buf = nb;
	*cap = nc;
	return 0;
}

static void
sse_reset_event(struct sse *p)
{
	p->dlen = 0;
	p->has_data = 0;
	p->event[0] = '\0';
}

/* One complete line (p->line[0..len)): a field, a comment, or the blank
 * line that dispatches. */
static int
sse_line(struct sse *p, sse_event_fn fn, void *ud)
{
	char *l = p->line ? p->line : "";
	size_t n = p->len;
	if (!p->started) {
		p->started = 1;
		if (n >= 3 && memcmp(l, "\xef\xbb\xbf", 3) == 0) {
			l += 3;
			n -= 3;
		}
	}
	if (n == 0) {
		if (!p->has_data) {
			sse_reset_event(p);
			return 0;
		}
		/* The data ends with the '\n' added after its last line. */
		if (p->dlen > 0)
			p->dlen--;
		p->data[p->dlen] = '\0';
		int rc = fn ? fn(ud, p->event, p->data, p->dlen) : 0;
		sse_reset_event(p);
		return rc;
	}
	if (l[0] == ':')
		return 0;
	const char *colon = memchr(l, ':', n);
	size_t fl = colon ? (size_t)(colon - l) : n;
	const char *v = colon ? colon + 1 : l + n;
	size_t vl = (size_t)(l + n - v);
	if (vl > 0 && v[0] == ' ') {
		v++;
		vl--;
	}
	if (fl == 4 && memcmp(l, "data", 4) == 0) {
		if (sse_grow(&p->data, &p->dcap, p->dlen, vl + 1) != 0)
			return -1;
		memcpy(p->data + p->dlen, v, vl);
		p->dlen += vl;
		p->data[p->dlen++] = '\n';
		p->data[p->dlen] = '\0';
		p->has_data = 1;
	} else if (fl == 5 && memcmp(l, "event", 5) == 0) {
		size_t k = vl < sizeof p->event - 1 ? vl : sizeof p->event - 1;
		memcpy(p->event, v, k);
		p->event[k] = '\0';
	}
	return 0;
}

int
sse_feed(struct sse *p, const char *buf, size_t n, sse_event_fn fn, void *ud)
{
	size_t i = 0;
	while (i < n) {
		if (p->after_cr) {
			p->after_cr = 0;
			if (buf[i] == '\n') {
				i++;
				continue;
			}
		}
		/* The run of bytes up to the next line end goes in at once. */
		size_t j = i;
		while (j < n && buf[j] != '\n' && buf[j] != '\r')
			j++;
		if (j > i) {
			if (sse_grow(&p->line, &p->cap, p->len, j - i) != 0)
				return -1;
			memcpy(p->line + p->len, buf + i, j - i);
			p->len += j - i;
		}
		if (j == n)
			break;
		p->after_cr = buf[j] == '\r';
		int rc = sse_line(p, fn, ud);
		p->len = 0;
		if (rc != 0)
			return rc;
		i = j + 1;
	}
	return 0;
}
