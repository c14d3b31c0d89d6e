/*
 * gguf.h: a read-only view of a GGUF file (versions 2 and 3).
 *
 * The file is memory-mapped; keys, strings and arrays point into the mapping
 * and are valid until gguf_close.  gguf_open checks every count, length and
 * offset against the file size before anything else looks at it, so the rest
 * of the engine may trust what a struct gguf says.
 */
#ifndef ENGINE_GGUF_H
#define ENGINE_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
	GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
	GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8,
	GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
	GGUF_NTYPES
};

struct gguf_str {
	uint64_t len;
	const char *s;            /* into the mapping, not NUL-terminated */
};

struct gguf_kv {
	struct gguf_str key;
	enum gguf_vtype type;
	union {
		uint64_t u;
		int64_t i;
		double f;
		struct gguf_str str;
	} v;                      /* scalars and strings */
	enum gguf_vtype arr_type; /* arrays: element type, count, first byte */
	uint64_t arr_n;
	const uint8_t *arr;
};

#define GGUF_MAX_DIMS 4

struct gguf_tensor {
	struct gguf_str name;
	uint32_t n_dims;
	int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension */
	int type;                  /* enum qtype */
	uint64_t offset;           /* from the start of the data section */
	const void *data;          /* into the mapping */
	size_t nbytes;
};

struct gguf {
	const uint8_t *map;
	size_t size;
	uint32_t version;
	uint64_t n_kv, n_tensors;
	struct gguf_kv *kv;           /* n_kv */
	struct gguf_tensor *tensors;  /* n_tensors */
	uint64_t alignment;
	uint64_t data_off;
};

/* NULL with *err = "<what is wrong>" (malloc'd; the caller adds the path). */
struct gguf *gguf_open(const char *path, char **err);
void gguf_close(struct gguf *g);

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);
/* Integer value of key (any integer type, bool); def when missing; -1 and
 * *ok = 0 when present but not an integer. */
int64_t gguf_get_int(const struct gguf *g, const char *key, int64_t def, int *ok);
double gguf_get_float(const struct gguf *g, const char *key, double def, int *ok);
/* Size in bytes of one scalar of type t, 0 for strings and arrays. */
size_t gguf_vtype_size(enum gguf_vtype t);
/* Walk a string array: *pos starts at 0; returns 0 at the end. */
int gguf_arr_str_next(const struct gguf_kv *kv, uint64_t *pos, size_t *byteoff, struct gguf_str *out);
int gguf_str_eq(struct gguf_str s, const char *c);

#endif
