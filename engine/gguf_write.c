/*
 * gguf_write.c: a GGUF v3 writer.  The header is serialized into a growing
 * byte buffer (the metadata part) plus a list of tensor infos whose offsets
 * are assigned at write time, each aligned to 32 bytes.
 */
#include "engine/gguf_write.h"
#include "engine/gguf.h"
#include "engine/quant.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct wtensor {
	char name[96];
	int type, n_dims;
	int64_t ne[4];
	size_t nbytes;
};

struct gguf_writer {
	uint8_t *kv;
	size_t kv_len, kv_cap;
	uint64_t n_kv;
	struct wtensor *t;
	int n_t, cap_t;
	int oom;
};

static void
put(struct gguf_writer *w, const void *p, size_t n)
{
	if (w->oom)
		return;
	if (w->kv_len + n > w->kv_cap) {
		size_t cap = w->kv_cap ? w->kv_cap * 2 : 4096;
		while (cap < w->kv_len + n)
			cap *= 2;
		uint8_t *nk = realloc(w->kv, cap);
		if (nk == NULL) {
			w->oom = 1;
			return;
		}
		w->kv = nk;
		w->kv_cap = cap;
	}
	memcpy(w->kv + w->kv_len, p, n);
	w->kv_len += n;
}

static void
put_u32(struct gguf_writer *w, uint32_t v) { put(w, &v, 4); }
static void
put_u64(struct gguf_writer *w, uint64_t v) { put(w, &v, 8); }
static void
put_str(struct gguf_writer *w, const char *s, size_t n)
{
	put_u64(w, n);
	put(w, s, n);
}

static void
put_key(struct gguf_writer *w, const char *key, uint32_t type)
{
	put_str(w, key, strlen(key));
	put_u32(w, type);
	w->n_kv++;
}

struct gguf_writer *
gguf_writer_new(void)
{
	return calloc(1, sizeof(struct gguf_writer));
}

void
gguf_writer_free(struct gguf_writer *w)
{
	if (w == NULL)
		return;
	free(w->kv);
	free(w->t);
	free(w);
}

void
gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
	put_key(w, key, GGUF_U32);
	put_u32(w, v);
}

void
gguf_w_f32(struct gguf_writer *w, const char *key, float v)
{
	put_key(w, key, GGUF_F32);
	put(w, &v, 4);
}

void
gguf_w_str(struct gguf_writer *w, const char *key, const char *v)
{
	put_key(w, key, GGUF_STRING);
	put_str(w, v, strlen(v));
}

void
gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, const uint32_t *lens, uint64_t n)
{
	put_key(w, key, GGUF_ARRAY);
	put_u32(w, GGUF_STRING);
	put_u64(w, n);
	for (uint64_t i = 0; i < n; i++)
		put_str(w, v[i], lens ? lens[i] : strlen(v[i]));
}

void
gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n)
{
	put_key(w, key, GGUF_ARRAY);
	put_u32(w, GGUF_F32);
	put_u64(w, n);
	put(w, v, n * 4);
}

void
gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
	put_key(w, key, GGUF_ARRAY);
	put_u32(w, GGUF_I32);
	put_u64(w, n);
	put(w, v, n * 4);
}

void
gguf_w_raw(struct gguf_writer *w, const char *key, int type, const void *value, size_t len)
{
	put_key(w, key, (uint32_t)type);
	put(w, value, len);
}

int
gguf_w_tensor(struct gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne)
{
	if (w->n_t == w->cap_t) {
		int cap = w->cap_t ? w->cap_t * 2 : 64;
		struct wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
		if (nt == NULL) {
			w->oom = 1;
			return -1;
		}
		w->t = nt;
		w->cap_t = cap;
	}
	struct wtensor *t = &w->t[w->n_t];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->type = type;
	t->n_dims = n_dims;
	uint64_t rows = 1;
	for (int d = 0; d < 4; d++) {
		t->ne[d] = d < n_dims ? ne[d] : 1;
		if (d > 0)
			rows *= (uint64_t)t->ne[d];
	}
	t->nbytes = quant_row_size(type, t->ne[0]) * rows;
	return w->n_t++;
}

size_t
gguf_w_tensor_bytes(const struct gguf_writer *w, int idx)
{
	return w->t[idx].nbytes;
}

static size_t
pad32(size_t n)
{
	return (n + 31) / 32 * 32;
}

int
gguf_writer_write(struct gguf_writer *w, const char *path, gguf_data_fn fn, void *ud, char **err)
{
	if (w->oom) {
		if (err)
			*err = strdup("out of memory");
		return -1;
	}
	FILE *f = fopen(path, "wb");
	if (f == NULL) {
		if (err && asprintf(err, "%s: %s", path, strerror(errno)) < 0)
			*err = NULL;
		return -1;
	}
	int rc = 0;
	uint32_t ver = 3;
	uint64_t nt = (uint64_t)w->n_t;
	fwrite("GGUF", 1, 4, f);
	fwrite(&ver, 4, 1, f);
	fwrite(&nt, 8, 1, f);
	fwrite(&w->n_kv, 8, 1, f);
	fwrite(w->kv, 1, w->kv_len, f);
	uint64_t off = 0;
	for (int i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		uint64_t nl = strlen(t->name);
		uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
		fwrite(&nl, 8, 1, f);
		fwrite(t->name, 1, nl, f);
		fwrite(&nd, 4, 1, f);
		for (int d = 0; d < t->n_dims; d++) {
			uint64_t ne = (uint64_t)t->ne[d];
			fwrite(&ne, 8, 1, f);
		}
		fwrite(&ty, 4, 1, f);
		fwrite(&off, 8, 1, f);
		off += pad32(t->nbytes);
	}
	static const uint8_t zeros[32];
	long pos = ftell(f);
	fwrite(zeros, 1, pad32((size_t)pos) - (size_t)pos, f);
	/* fn == NULL: the header alone (tests write deliberately broken files). */
	for (int i = 0; fn != NULL && i < w->n_t && rc == 0; i++) {
		if (fn(ud, i, f, w->t[i].nbytes) != 0) {
			rc = -1;
			break;
		}
		fwrite(zeros, 1, pad32(w->t[i].nbytes) - w->t[i].nbytes, f);
	}
	if (ferror(f))
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	if (rc != 0 && err && *err == NULL && asprintf(err, "%s: write failed", path) < 0)
		*err = NULL;
	return rc;
}
