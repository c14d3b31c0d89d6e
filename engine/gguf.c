/*
 * gguf.c: parse and validate a GGUF header in place.
 *
 * Layout: "GGUF", u32 version, u64 tensor count, u64 key/value count, the
 * key/value pairs (u64-length strings, typed scalars, typed arrays), then the
 * tensor infos (name, u32 n_dims, u64 dims, u32 type, u64 offset), padding to
 * general.alignment, and the tensor data.  Version 1 used u32 counts and is
 * refused.
 *
 * Invariant: every read goes through struct rd, which never reads past the
 * end of the mapping; any failure sets rd.err and all later reads fail too.
 * Counts are bounded by what could possibly fit in the remaining bytes before
 * anything is allocated, so a hostile header cannot ask for a huge malloc.
 */
#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/errf.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct rd {
	const uint8_t *p;
	size_t size, off;
	const char *err;
};

static int
rd_need(struct rd *r, uint64_t n, const char *what)
{
	if (r->err)
		return -1;
	if (n > r->size - r->off) {
		r->err = what;
		return -1;
	}
	return 0;
}

static uint64_t
rd_uint(struct rd *r, size_t n, const char *what)
{
	uint64_t v = 0;
	if (rd_need(r, n, what) != 0)
		return 0;
	memcpy(&v, r->p + r->off, n);   /* GGUF is little-endian, as are we */
	r->off += n;
	return v;
}

static struct gguf_str
rd_str(struct rd *r, const char *what)
{
	struct gguf_str s = { 0, NULL };
	uint64_t n = rd_uint(r, 8, what);
	if (rd_need(r, n, what) != 0)
		return s;
	s.len = n;
	s.s = (const char *)r->p + r->off;
	r->off += n;
	return s;
}

size_t
gguf_vtype_size(enum gguf_vtype t)
{
	switch (t) {
	case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
	case GGUF_U16: case GGUF_I16: return 2;
	case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
	case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
	default: return 0;
	}
}

static void
rd_scalar(struct rd *r, struct gguf_kv *kv)
{
	uint64_t raw = rd_uint(r, gguf_vtype_size(kv->type), "truncated value");
	switch (kv->type) {
	case GGUF_I8: kv->v.i = (int8_t)raw; break;
	case GGUF_I16: kv->v.i = (int16_t)raw; break;
	case GGUF_I32: kv->v.i = (int32_t)raw; break;
	case GGUF_I64: kv->v.i = (int64_t)raw; break;
	case GGUF_F32: { float f; uint32_t u = (uint32_t)raw; memcpy(&f, &u, 4); kv->v.f = f; break; }
	case GGUF_F64: memcpy(&kv->v.f, &raw, 8); break;
	default: kv->v.u = raw; break;
	}
}

static int
rd_kv(struct rd *r, struct gguf_kv *kv)
{
	kv->key = rd_str(r, "truncated key");
	uint32_t t = (uint32_t)rd_uint(r, 4, "truncated value type");
	if (r->err)
		return -1;
	if (t >= GGUF_NTYPES) {
		r->err = "unknown metadata value type";
		return -1;
	}
	kv->type = t;
	if (t == GGUF_STRING) {
		kv->v.str = rd_str(r, "truncated string value");
	} else if (t == GGUF_ARRAY) {
		uint32_t at = (uint32_t)rd_uint(r, 4, "truncated array type");
		uint64_t n = rd_uint(r, 8, "truncated array length");
		if (r->err)
			return -1;
		if (at >= GGUF_NTYPES || at == GGUF_ARRAY) {
			r->err = "unsupported metadata array type";
			return -1;
		}
		kv->arr_type = at;
		kv->arr_n = n;
		kv->arr = r->p + r->off;
		if (at == GGUF_STRING) {
			/* Each string is at least its 8-byte length. */
			if (n > (r->size - r->off) / 8) {
				r->err = "metadata string array longer than the file";
				return -1;
			}
			for (uint64_t k = 0; k < n && !r->err; k++)
				rd_str(r, "truncated string in array");
		} else {
			size_t es = gguf_vtype_size(at);
			if (n > (r->size - r->off) / es) {
				r->err = "metadata array longer than the file";
				return -1;
			}
			r->off += n * es;
		}
	} else {
		rd_scalar(r, kv);
	}
	return r->err ? -1 : 0;
}

int
gguf_str_eq(struct gguf_str s, const char *c)
{
	size_t n = strlen(c);
	return s.len == n && memcmp(s.s, c, n) == 0;
}

const struct gguf_kv *
gguf_find(const struct gguf *g, const char *key)
{
	for (uint64_t i = 0; i < g->n_kv; i++)
		if (gguf_str_eq(g->kv[i].key, key))
			return &g->kv[i];
	return NULL;
}

const struct gguf_tensor *
gguf_find_tensor(const struct gguf *g, const char *name)
{
	for (uint64_t i = 0; i < g->n_tensors; i++)
		if (gguf_str_eq(g->tensors[i].name, name))
			return &g->tensors[i];
	return NULL;
}

int64_t
gguf_get_int(const struct gguf *g, const char *key, int64_t def, int *ok)
{
	const struct gguf_kv *kv = gguf_find(g, key);
	if (kv == NULL)
		return def;
	switch (kv->type) {
	case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
		return kv->v.i;
	case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_BOOL:
		return (int64_t)kv->v.u;
	case GGUF_U64:
		if (kv->v.u <= INT64_MAX)
			return (int64_t)kv->v.u;
		/* FALLTHROUGH */
	default:
		if (ok)
			*ok = 0;
		return -1;
	}
}

double
gguf_get_float(const struct gguf *g, const char *key, double def, int *ok)
{
	const struct gguf_kv *kv = gguf_find(g, key);
	if (kv == NULL)
		return def;
	if (kv->type == GGUF_F32 || kv->type == GGUF_F64)
		return kv->v.f;
	int iok = 1;
	int64_t v = gguf_get_int(g, key, 0, &iok);
	if (!iok) {
		if (ok)
			*ok = 0;
		return -1;
	}
	return (double)v;
}

int
gguf_arr_str_next(const struct gguf_kv *kv, uint64_t *pos, size_t *byteoff, struct gguf_str *out)
{
	if (kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || *pos >= kv->arr_n)
		return 0;
	/* Bounds were checked by gguf_open. */
	uint64_t n;
	memcpy(&n, kv->arr + *byteoff, 8);
	out->len = n;
	out->s = (const char *)kv->arr + *byteoff + 8;
	*byteoff += 8 + n;
	(*pos)++;
	return 1;
}

/* Report (the message may quote g's fields), then free what was built so
 * far; returns -1. */
static int
gguf_fail(struct gguf *g, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
gguf_fail(struct gguf *g, char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	eng_verrf(err, fmt, ap);
	va_end(ap);
	gguf_close(g);
	return -1;
}

struct gguf *
gguf_open(const char *path, char **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (err && asprintf(err, "%s", strerror(errno)) < 0)
			*err = NULL;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		if (err)
			*err = strdup("not a regular file");
		return NULL;
	}
	if (st.st_size < 24) {
		close(fd);
		if (err)
			*err = strdup(st.st_size == 0 ? "empty file" : "file too short for a GGUF header");
		return NULL;
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		if (err && asprintf(err, "cannot map: %s", strerror(errno)) < 0)
			*err = NULL;
		return NULL;
	}
	struct gguf *g = calloc(1, sizeof *g);
	if (g == NULL) {
		munmap(map, (size_t)st.st_size);
		if (err)
			*err = strdup("out of memory");
		return NULL;
	}
	g->map = map;
	g->size = (size_t)st.st_size;

	struct rd r = { g->map, g->size, 0, NULL };
	if (memcmp(g->map, "GGUF", 4) != 0) {
		gguf_fail(g, err, "not a GGUF file (bad magic)");
		return NULL;
	}
	r.off = 4;
	g->version = (uint32_t)rd_uint(&r, 4, "truncated header");
	if (g->version == 1) {
		gguf_fail(g, err, "GGUF version 1 is not supported (convert the file again with a current llama.cpp)");
		return NULL;
	}
	if (g->version != 2 && g->version != 3) {
		gguf_fail(g, err, "unsupported GGUF version %u", g->version);
		return NULL;
	}
	g->n_tensors = rd_uint(&r, 8, "truncated header");
	g->n_kv = rd_uint(&r, 8, "truncated header");
	/* A key/value needs >= 13 bytes, a tensor info >= 28: bound the counts. */
	if (g->n_kv > g->size / 13 || g->n_tensors > g->size / 28) {
		gguf_fail(g, err, "header counts (%llu tensors, %llu keys) larger than the file",
		    (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv);
		return NULL;
	}
	g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
	g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
	if (g->kv == NULL || g->tensors == NULL) {
		gguf_fail(g, err, "out of memory");
		return NULL;
	}
	for (uint64_t i = 0; i < g->n_kv; i++) {
		if (rd_kv(&r, &g->kv[i]) != 0) {
			gguf_fail(g, err, "metadata entry %llu: %s", (unsigned long long)i, r.err);
			return NULL;
		}
	}
	int ok = 1;
	int64_t align = gguf_get_int(g, "general.alignment", 32, &ok);
	if (!ok || align < 1 || align > (1 << 20) || (align & (align - 1)) != 0) {
		gguf_fail(g, err, "general.alignment is not a power of two");
		return NULL;
	}
	g->alignment = (uint64_t)align;

	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		t->name = rd_str(&r, "truncated tensor name");
		t->n_dims = (uint32_t)rd_uint(&r, 4, "truncated tensor info");
		if (r.err) {
			gguf_fail(g, err, "tensor %llu: %s", (unsigned long long)i, r.err);
			return NULL;
		}
		if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
			gguf_fail(g, err, "tensor '%.*s': %u dimensions", (int)(t->name.len > 64 ? 64 : t->name.len),
			    t->name.s, t->n_dims);
			return NULL;
		}
		uint64_t nel = 1;
		for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
			uint64_t ne = d < t->n_dims ? rd_uint(&r, 8, "truncated tensor dims") : 1;
			if (ne == 0 || ne > (1ull << 40) || nel > (1ull << 46) / ne) {
				gguf_fail(g, err, "tensor '%.*s': implausible dimension",
				    (int)(t->name.len > 64 ? 64 : t->name.len), t->name.s);
				return NULL;
			}
			t->ne[d] = (int64_t)ne;
			nel *= ne;
		}
		t->type = (int)rd_uint(&r, 4, "truncated tensor type");
		t->offset = rd_uint(&r, 8, "truncated tensor offset");
		if (r.err) {
			gguf_fail(g, err, "tensor %llu: %s", (unsigned long long)i, r.err);
			return NULL;
		}
		const struct quant_type *qt = quant_type_get(t->type);
		if (qt == NULL) {
			gguf_fail(g, err, "tensor '%.*s': unsupported tensor type %d",
			    (int)(t->name.len > 64 ? 64 : t->name.len), t->name.s, t->type);
			return NULL;
		}
		size_t row = quant_row_size(t->type, t->ne[0]);
		if (row == 0) {
			gguf_fail(g, err, "tensor '%.*s': row of %lld is not a whole number of %s blocks",
			    (int)(t->name.len > 64 ? 64 : t->name.len), t->name.s, (long long)t->ne[0], qt->name);
			return NULL;
		}
		t->nbytes = row * (nel / (uint64_t)t->ne[0]);
	}
	g->data_off = (r.off + g->alignment - 1) / g->alignment * g->alignment;
	if (g->data_off > g->size) {
		gguf_fail(g, err, "truncated before tensor data");
		return NULL;
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		struct gguf_tensor *t = &g->tensors[i];
		if (t->offset % g->alignment != 0) {
			gguf_fail(g, err, "tensor '%.*s': misaligned data offset",
			    (int)(t->name.len > 64 ? 64 : t->name.len), t->name.s);
			return NULL;
		}
		if (t->offset > g->size - g->data_off || t->nbytes > g->size - g->data_off - t->offset) {
			gguf_fail(g, err, "truncated: tensor '%.*s' extends past the end of the file",
			    (int)(t->name.len > 64 ? 64 : t->name.len), t->name.s);
			return NULL;
		}
		t->data = g->map + g->data_off + t->offset;
	}
	return g;
}

void
gguf_close(struct gguf *g)
{
	if (g == NULL)
		return;
	if (g->map)
		munmap((void *)g->map, g->size);
	free(g->kv);
	free(g->tensors);
	free(g);
}
