/*
 * http.h: one HTTP request at a time over libcurl, stoppable at once and
 * bounded by a no-data timeout.  Engine-internal (engine/remote.c).
 *
 *   http_new / http_free    a reusable handle (one per remote worker)
 *   http_run                one GET or POST; the body of a 2xx answer is
 *                           handed to on_data as it arrives, any other
 *                           answer's body is kept for the error message
 *   http_wake               make a running http_run look at *stop now
 *                           (any thread)
 *
 * Never prints; errors are one line (malloc'd) naming the URL's host,
 * never the API key.
 */
#ifndef ENGINE_HTTP_H
#define ENGINE_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

struct http;

/* Bytes of a 2xx body as they arrive; nonzero aborts the transfer
 * (http_run then returns HTTP_ABORTED). */
typedef int (*http_data_fn)(void *ud, const char *p, size_t n);

struct http_req {
	const char *url;          /* full URL */
	const char *body;         /* JSON to POST, or NULL for GET */
	const char *api_key;      /* sent as "Authorization: Bearer" when non-NULL */
	int timeout_s;            /* no byte for this long: HTTP_FAIL */
	atomic_int *stop;         /* raised: HTTP_STOPPED (may be NULL) */
	http_data_fn on_data;
	void *ud;
};

struct http_resp {
	long status;              /* 0 when no answer came */
	char *body;               /* non-2xx: the body (first 64 KiB, NUL-ended), else NULL */
	size_t body_len;
	char *location;           /* 3xx: the Location header, else NULL */
	double t_first_byte_ms;   /* from the start of http_run */
};

enum { HTTP_FAIL = -1, HTTP_OK = 0, HTTP_STOPPED = 1, HTTP_ABORTED = 2 };

struct http *http_new(char **err);
void http_free(struct http *h);
void http_wake(struct http *h);
/*
 * Run one request.  HTTP_OK: an answer came in full (look at r->status);
 * HTTP_STOPPED: *stop was raised; HTTP_ABORTED: on_data returned nonzero;
 * HTTP_FAIL: *err says why (cannot resolve, refused, TLS, no data for
 * timeout_s, the connection broke).  Redirects are not followed (the key
 * must reach only the configured host).  Free r with http_resp_free.
 */
int http_run(struct http *h, const struct http_req *q, struct http_resp *r, char **err);
void http_resp_free(struct http_resp *r);
/* "host" or "host:port" of url, malloc'd (for messages). */
char *http_host(const char *url);
/* 1 when url's host is a loopback name or address (localhost, 127.x, ::1). */
int http_is_loopback(const char *url);

#endif
