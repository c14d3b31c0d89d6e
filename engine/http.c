/*
 * http.c: one libcurl transfer at a time on a multi handle (see http.h).
 *
 * Why a multi handle for one transfer: curl_easy_perform blocks inside
 * libcurl, and a stop request would have to wait for the next progress
 * callback.  Here the thread itself loops over curl_multi_poll with a short
 * timeout, so it sees *stop within that timeout, and http_wake (any thread)
 * ends the poll at once through curl_multi_wakeup.  The same loop measures
 * the time since the last byte, which is the "no data" timeout: libcurl's
 * own CURLOPT_TIMEOUT would bound the whole reply, and a long reply is fine.
 *
 * Security: redirects are never followed (CURLOPT_FOLLOWLOCATION off), so
 * the Authorization header reaches only the host of the configured URL;
 * only http and https are allowed; the key never appears in a message.
 */
#include "engine/http.h"

#include <curl/curl.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_BODY_MAX (64u << 10)

struct http {
	CURLM *multi;
	CURL *easy;
};

/* One run's state, shared with the callbacks. */
struct http_run {
	struct http *h;
	const struct http_req *q;
	struct http_resp *r;
	double t0, last;
	int ok2xx;                /* -1 not known yet, 0 no, 1 yes */
	int aborted;
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static int http_global_rc;

static void
http_global(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static double
http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
http_seterr(char **err, const char *fmt, const char *a, const char *b)
{
	if (err == NULL)
		return;
	char *s;
	if (asprintf(&s, fmt, a, b) < 0)
		s = NULL;
	*err = s ? s : strdup("out of memory");
}

struct http *
http_new(char **err)
{
	pthread_once(&http_once, http_global);
	struct http *h = calloc(1, sizeof *h);
	if (http_global_rc != 0 || h == NULL || (h->multi = curl_multi_init()) == NULL ||
	    (h->easy = curl_easy_init()) == NULL) {
		if (h && h->multi)
			curl_multi_cleanup(h->multi);
		free(h);
		if (err)
			*err = strdup("cannot start libcurl");
		return NULL;
	}
	return h;
}

void
http_free(struct http *h)
{
	if (h == NULL)
		return;
	curl_easy_cleanup(h->easy);
	curl_multi_cleanup(h->multi);
	free(h);
}

void
http_wake(struct http *h)
{
	if (h)
		curl_multi_wakeup(h->multi);
}

void
http_resp_free(struct http_resp *r)
{
	free(r->body);
	free(r->location);
	memset(r, 0, sizeof *r);
}

static size_t
http_on_write(char *p, size_t size, size_t n, void *ud)
{
	struct http_run *x = ud;
	size_t len = size * n;
	x->last = http_now_ms();
	if (x->ok2xx < 0) {
		long st = 0;
		curl_easy_getinfo(x->h->easy, CURLINFO_RESPONSE_CODE, &st);
		x->r->status = st;
		x->r->t_first_byte_ms = x->last - x->t0;
		x->ok2xx = st >= 200 && st < 300;
	}
	if (x->ok2xx) {
		if (x->q->on_data && x->q->on_data(x->q->ud, p, len) != 0) {
			x->aborted = 1;
			return 0;   /* less than len: libcurl ends the transfer */
		}
		return len;
	}
	/* An error answer: keep its start for the message. */
	size_t room = HTTP_BODY_MAX - x->r->body_len;
	size_t k = len < room ? len : room;
	if (k > 0) {
		char *nb = realloc(x->r->body, x->r->body_len + k + 1);
		if (nb == NULL)
			return len;
		memcpy(nb + x->r->body_len, p, k);
		x->r->body = nb;
		x->r->body_len += k;
		nb[x->r->body_len] = '\0';
	}
	return len;
}

static size_t
http_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct http_run *x = ud;
	size_t len = size * n;
	x->last = http_now_ms();
	if (len > 9 && strncasecmp(p, "location:", 9) == 0) {
		size_t i = 9, e = len;
		while (i < e && isspace((unsigned char)p[i]))
			i++;
		while (e > i && isspace((unsigned char)p[e - 1]))
			e--;
		free(x->r->location);
		x->r->location = strndup(p + i, e - i);
	}
	return len;
}

static int
http_is_tls(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_USE_SSL_FAILED:
		return 1;
	default:
		return 0;
	}
}

/* The one-line message for a failed transfer. */
static void
http_fail_msg(struct http *h, CURLcode c, const char *errbuf, const char *url, int timeout_s, char **err)
{
	char *host = http_host(url);
	const char *hs = host ? host : url;
	char detail[CURL_ERROR_SIZE + 1];
	snprintf(detail, sizeof detail, "%s", errbuf[0] ? errbuf : curl_easy_strerror(c));
	size_t dl = strlen(detail);
	while (dl > 0 && isspace((unsigned char)detail[dl - 1]))
		detail[--dl] = '\0';
	long oserr = 0;
	curl_easy_getinfo(h->easy, CURLINFO_OS_ERRNO, &oserr);
	char tbuf[32];
	if (c == CURLE_COULDNT_RESOLVE_HOST)
		http_seterr(err, "cannot resolve the host name %s (DNS lookup failed)", hs, "");
	else if (c == CURLE_COULDNT_CONNECT)
		http_seterr(err, "cannot connect to %s: %s", hs, oserr ? strerror((int)oserr) : detail);
	else if (http_is_tls(c))
		http_seterr(err, "TLS failure with %s: %s", hs, detail);
	else if (c == CURLE_OPERATION_TIMEDOUT) {
		snprintf(tbuf, sizeof tbuf, "%d", timeout_s);
		http_seterr(err, "no answer from %s within %s s (--remote-timeout)", hs, tbuf);
	} else if (c == CURLE_RECV_ERROR || c == CURLE_PARTIAL_FILE || c == CURLE_GOT_NOTHING ||
	    c == CURLE_SEND_ERROR)
		http_seterr(err, "the connection to %s broke: %s", hs, detail);
	else if (c == CURLE_UNSUPPORTED_PROTOCOL || c == CURLE_WEIRD_SERVER_REPLY)
		http_seterr(err, "%s does not answer in HTTP: %s", hs, detail);
	else if (c == CURLE_URL_MALFORMAT)
		http_seterr(err, "bad server URL (%s): %s", hs, detail);
	else
		http_seterr(err, "the request to %s failed: %s", hs, detail);
	free(host);
}

int
http_run(struct http *h, const struct http_req *q, struct http_resp *r, char **err)
{
	memset(r, 0, sizeof *r);
	CURL *e = h->easy;
	char errbuf[CURL_ERROR_SIZE];
	errbuf[0] = '\0';
	struct http_run x = { .h = h, .q = q, .r = r, .ok2xx = -1 };
	x.t0 = x.last = http_now_ms();
	int timeout_s = q->timeout_s > 0 ? q->timeout_s : 60;

	struct curl_slist *hd = NULL, *t;
	char *auth = NULL;
	int bad = 0;
	if (q->body) {
		bad |= (t = curl_slist_append(hd, "Content-Type: application/json")) == NULL;
		hd = t ? t : hd;
		bad |= (t = curl_slist_append(hd, "Accept: text/event-stream")) == NULL;
		hd = t ? t : hd;
	}
	if (q->api_key && q->api_key[0]) {
		if (asprintf(&auth, "Authorization: Bearer %s", q->api_key) < 0) {
			auth = NULL;
			bad = 1;
		} else {
			bad |= (t = curl_slist_append(hd, auth)) == NULL;
			hd = t ? t : hd;
		}
	}
	if (bad) {
		curl_slist_free_all(hd);
		free(auth);
		if (err)
			*err = strdup("out of memory");
		return HTTP_FAIL;
	}

	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "llama2-chat");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
	if (q->body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
	else
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);

	int rc = HTTP_OK;
	CURLcode cc = CURLE_OK;
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		curl_slist_free_all(hd);
		free(auth);
		if (err)
			*err = strdup("cannot start the request (libcurl)");
		return HTTP_FAIL;
	}
	for (;;) {
		if (q->stop && atomic_load(q->stop)) {
			rc = HTTP_STOPPED;
			break;
		}
		int running = 0;
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			rc = HTTP_FAIL;
			cc = CURLE_FAILED_INIT;
			break;
		}
		if (!running) {
			int left;
			CURLMsg *m;
			while ((m = curl_multi_info_read(h->multi, &left)) != NULL)
				if (m->msg == CURLMSG_DONE)
					cc = m->data.result;
			break;
		}
		if (http_now_ms() - x.last > timeout_s * 1e3) {
			char tbuf[32];
			snprintf(tbuf, sizeof tbuf, "%d", timeout_s);
			char *host = http_host(q->url);
			http_seterr(err, "no data from %s for %s s (--remote-timeout)", host ? host : q->url, tbuf);
			free(host);
			rc = HTTP_FAIL;
			cc = CURLE_OK;
			goto out;
		}
		curl_multi_poll(h->multi, NULL, 0, 100, NULL);
	}
	if (rc == HTTP_OK && x.aborted)
		rc = HTTP_ABORTED;
	else if (rc == HTTP_OK && cc != CURLE_OK) {
		rc = HTTP_FAIL;
		http_fail_msg(h, cc, errbuf, q->url, timeout_s, err);
	} else if (rc == HTTP_FAIL)
		http_fail_msg(h, cc, errbuf, q->url, timeout_s, err);
	if (r->status == 0)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
out:
	curl_multi_remove_handle(h->multi, e);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hd);
	if (auth) {
		memset(auth, 0, strlen(auth));   /* the key does not linger in freed memory */
		free(auth);
	}
	return rc;
}

char *
http_host(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK) {
			if (asprintf(&out, "%s:%s", host, port) < 0)
				out = NULL;
		} else
			out = strdup(host);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

int
http_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int lo = 0;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		lo = strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
		    strcmp(host, "[::1]") == 0;
	curl_free(host);
	curl_url_cleanup(u);
	return lo;
}
