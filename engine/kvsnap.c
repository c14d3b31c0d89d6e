/*
 * kvsnap.c: a conversation's KV cache on disk, so that reopening a long
 * chat costs a file read instead of a prefill.
 *
 * File layout (little-endian):
 *   struct snap_header (below), then n_tokens int32 token ids, then for each
 *   layer K and V of positions 0..n_tokens-1 (kv_dim values each, in the
 *   cache's element type: f16, f32 or q8_0 blocks, as the header's elem).  checksum covers everything after the header.
 *
 * A snapshot is trusted only if the header matches this model and context
 * (fingerprint, layers, kv_dim, element type: a q8_0 snapshot is refused by
 * a float16 cache and the reverse, never converted), its sizes agree with the
 * file's, and the checksum matches what was read; otherwise it is ignored
 * with a reason, and the caller prefills as usual.  Writing goes to a
 * temporary file in the same folder (0600), fsync'd, then renamed over the
 * old one, so a crash leaves either the old snapshot or the new one.
 */
#include "common/afile.h"
#include "engine/engine.h"
#include "engine/engine_int.h"
#include "engine/errf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAP_MAGIC "L2CKVSN1"

struct snap_header {
	char magic[8];
	uint32_t version;
	uint32_t n_layers, kv_dim, n_tokens;
	uint32_t elem;            /* enum kv_type: 0 f16, 1 f32, 2 q8_0 */
	uint32_t pad;
	char fingerprint[48];
	uint64_t checksum;
};
_Static_assert(sizeof(struct snap_header) == 88, "snapshot header");

/* A fast 64-bit checksum over 8-byte words with four independent lanes:
 * it catches truncation and flipped bits; it is not a defence against
 * someone forging a file on purpose, who could write any cache anyway. */
struct csum {
	uint64_t h[4];
	uint64_t n;
	unsigned char tail[32];
	int ntail;
};

static void
csum_init(struct csum *c)
{
	memset(c, 0, sizeof *c);
	for (int i = 0; i < 4; i++)
		c->h[i] = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
}

static inline uint64_t
csum_mix(uint64_t h, uint64_t w)
{
	h ^= w * 0xff51afd7ed558ccdull;
	h = (h << 31) | (h >> 33);
	return h * 0x9e3779b97f4a7c15ull;
}

static void
csum_add(struct csum *c, const void *p, size_t n)
{
	const unsigned char *b = p;
	c->n += n;
	while (c->ntail > 0 && n > 0) {
		c->tail[c->ntail++] = *b++;
		n--;
		if (c->ntail == 32) {
			uint64_t w[4];
			memcpy(w, c->tail, 32);
			for (int i = 0; i < 4; i++)
				c->h[i] = csum_mix(c->h[i], w[i]);
			c->ntail = 0;
		}
	}
	for (; n >= 32; n -= 32, b += 32) {
		uint64_t w[4];
		memcpy(w, b, 32);
		for (int i = 0; i < 4; i++)
			c->h[i] = csum_mix(c->h[i], w[i]);
	}
	memcpy(c->tail + c->ntail, b, n);
	c->ntail += (int)n;
}

static uint64_t
csum_end(struct csum *c)
{
	uint64_t h = c->n;
	for (int i = 0; i < c->ntail; i++)
		h = csum_mix(h, c->tail[i]);
	for (int i = 0; i < 4; i++)
		h = csum_mix(h, c->h[i]);
	return h;
}

static int
write_all(int fd, const void *p, size_t n, struct csum *c)
{
	const char *b = p;
	if (c)
		csum_add(c, p, n);
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, void *p, size_t n)
{
	char *b = p;
	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int
engine_ctx_save(struct engine_ctx *c, const char *path, char **err)
{
	struct kv_cache *kv = engine_ctx_kv(c);
	int n_past;
	const int32_t *toks = engine_ctx_tokens(c, &n_past);
	struct afile a;
	if (afile_open(&a, path) != 0) {
		return eng_errf(err, "%s: %s", path, strerror(errno));
	}
	int fd = a.fd;
	struct snap_header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, SNAP_MAGIC, 8);
	h.version = 1;
	h.n_layers = (uint32_t)kv->n_layers;
	h.kv_dim = (uint32_t)kv->kv_dim;
	h.n_tokens = (uint32_t)n_past;
	h.elem = (uint32_t)kv->type;
	snprintf(h.fingerprint, sizeof h.fingerprint, "%s", engine_info(engine_ctx_model(c))->fingerprint);
	struct csum cs;
	csum_init(&cs);
	int rc = write_all(fd, &h, sizeof h, NULL);
	rc = rc || write_all(fd, toks, (size_t)n_past * sizeof *toks, &cs);
	size_t row = kv_row_bytes(kv);
	for (int l = 0; l < kv->n_layers && rc == 0; l++) {
		size_t off = (size_t)l * kv->n_ctx * row;
		rc = write_all(fd, (char *)kv->k + off, (size_t)n_past * row, &cs) ||
		    write_all(fd, (char *)kv->v + off, (size_t)n_past * row, &cs);
	}
	h.checksum = csum_end(&cs);
	if (rc == 0 && pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
		rc = -1;
	int saved_errno = errno;
	if (rc != 0)
		afile_abort(&a);
	else if (afile_commit(&a) != 0)
		rc = -1, saved_errno = errno;
	if (rc != 0)
		eng_errf(err, "%s: %s", path, strerror(saved_errno ? saved_errno : EIO));
	return rc;
}

static int
why(char **w, const char *fmt, const char *a)
{
	if (w && asprintf(w, fmt, a) < 0)
		*w = NULL;
	return 0;
}

int
engine_ctx_load(struct engine_ctx *c, const char *path, const int32_t *ids, int n, char **reason)
{
	struct kv_cache *kv = engine_ctx_kv(c);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return why(reason, "no snapshot (%s)", strerror(errno));
	struct stat st;
	struct snap_header h;
	int restored = 0;
	int32_t *toks = NULL;
	if (fstat(fd, &st) != 0 || read_all(fd, &h, sizeof h) != 0) {
		why(reason, "%s", "snapshot truncated");
		goto out;
	}
	if (memcmp(h.magic, SNAP_MAGIC, 8) != 0 || h.version != 1) {
		why(reason, "%s", "not a snapshot file");
		goto out;
	}
	h.fingerprint[sizeof h.fingerprint - 1] = '\0';
	if (strcmp(h.fingerprint, engine_info(engine_ctx_model(c))->fingerprint) != 0) {
		why(reason, "snapshot made with another model (%s)", h.fingerprint);
		goto out;
	}
	if ((int)h.n_layers != kv->n_layers || (int)h.kv_dim != kv->kv_dim) {
		why(reason, "%s", "snapshot made with another cache layout");
		goto out;
	}
	if (h.elem != (uint32_t)kv->type) {
		const char *t = h.elem <= KV_Q8 ? kv_type_name((enum kv_type)h.elem) : "unknown";
		if (reason && asprintf(reason, "snapshot made with a %s KV cache, this one is %s", t,
		    kv_type_name(kv->type)) < 0)
			*reason = NULL;
		goto out;
	}
	size_t row = kv_row_bytes(kv);
	uint64_t want = sizeof h + (uint64_t)h.n_tokens * 4 + (uint64_t)h.n_tokens * row * 2 * (uint64_t)kv->n_layers;
	if ((uint64_t)st.st_size != want) {
		why(reason, "%s", "snapshot size does not match its header (truncated or padded)");
		goto out;
	}
	if ((int)h.n_tokens > engine_ctx_size(c)) {
		why(reason, "%s", "snapshot longer than this context");
		goto out;
	}
	toks = malloc((size_t)h.n_tokens * sizeof *toks + 1);
	if (toks == NULL || read_all(fd, toks, (size_t)h.n_tokens * sizeof *toks) != 0) {
		why(reason, "%s", "snapshot unreadable");
		goto out;
	}
	/* Only the part that agrees with the conversation is useful. */
	int use = 0;
	while (use < (int)h.n_tokens && use < n && toks[use] == ids[use])
		use++;
	if (use == 0) {
		why(reason, "%s", "snapshot belongs to other text");
		goto out;
	}
	/* Read straight into the cache; it counts only once the checksum
	 * agrees (until then n_past says the cache holds nothing). */
	engine_ctx_truncate(c, 0);
	struct csum cs;
	csum_init(&cs);
	csum_add(&cs, toks, (size_t)h.n_tokens * sizeof *toks);
	kv_reserve(kv, (int)h.n_tokens);
	for (int l = 0; l < kv->n_layers; l++) {
		size_t off = (size_t)l * kv->n_ctx * row;
		if (read_all(fd, (char *)kv->k + off, (size_t)h.n_tokens * row) != 0 ||
		    read_all(fd, (char *)kv->v + off, (size_t)h.n_tokens * row) != 0) {
			why(reason, "%s", "snapshot truncated");
			goto out;
		}
		csum_add(&cs, (char *)kv->k + off, (size_t)h.n_tokens * row);
		csum_add(&cs, (char *)kv->v + off, (size_t)h.n_tokens * row);
	}
	if (csum_end(&cs) != h.checksum) {
		why(reason, "%s", "snapshot checksum mismatch (corrupt file)");
		goto out;
	}
	engine_ctx_set_tokens(c, toks, use);
	restored = use;
out:
	free(toks);
	close(fd);
	return restored;
}
