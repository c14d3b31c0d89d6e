/*
 * quantize.c: the file-level quantizer behind `llama2-chat quantize`.
 *
 * One pass: the input GGUF is mapped (gguf_open), every tensor's new type
 * is decided up front in file order (quantize_mix), the metadata is copied
 * key by key with general.file_type and general.quantization_version set
 * in place (appended when missing, as gguf_set_val does) and
 * general.alignment dropped (the writer aligns to 32), and the tensors are
 * written in input order by gguf_writer_write's data callback.
 *
 * Memory: beyond the mapping, one tensor's output buffer and one row of
 * floats per thread; rows are quantized in parallel (OpenMP, static
 * schedule), each row independent, so the bytes do not depend on the
 * thread count.  The output goes to "<out>.tmp<pid>" beside the target and
 * is renamed over it only when complete and synced: a failure or a stop
 * removes the temporary file and leaves `out` as it was.  The file is
 * created by fopen (0666 minus the umask), as llama-quantize's would be: a
 * model is not user data.
 */
#include "engine/quantize.h"
#include "engine/errf.h"
#include "engine/gguf.h"
#include "engine/gguf_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ggml's GGML_QNT_VERSION: the block layouts as of 2023. */
#define QUANT_VERSION 2

struct qjob {
	const struct gguf *g;
	const struct quantize_params *p;
	const int *order;          /* output position -> input tensor */
	const int *types;          /* new type per output position */
	char **err;
	int stopped;
	uint64_t out_bytes;
};

static int
is_float_type(int t)
{
	return t == QT_F32 || t == QT_F16 || t == QT_BF16;
}

/* Bytes of kv's serialized value (what follows its type in the file). */
static size_t
kv_value_size(const struct gguf_kv *kv)
{
	if (kv->type == GGUF_STRING)
		return 8 + kv->v.str.len;
	if (kv->type != GGUF_ARRAY)
		return gguf_vtype_size(kv->type);
	size_t n = 4 + 8;
	if (kv->arr_type == GGUF_STRING) {
		uint64_t pos = 0;
		size_t off = 0;
		struct gguf_str s;
		while (gguf_arr_str_next(kv, &pos, &off, &s))
			;
		return n + off;
	}
	return n + (size_t)kv->arr_n * gguf_vtype_size(kv->arr_type);
}

/* Where the value starts in the mapping: arrays start 12 bytes before their
 * first item, strings at their length, scalars at the value itself. */
static const void *
kv_value_ptr(const struct gguf_kv *kv)
{
	if (kv->type == GGUF_ARRAY)
		return kv->arr - 12;
	if (kv->type == GGUF_STRING)
		return kv->v.str.s - 8;
	return NULL;
}

static int
copy_metadata(const struct gguf *g, struct gguf_writer *w, int ftype)
{
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct gguf_kv *kv = &g->kv[i];
		char key[256];
		if (kv->key.len >= sizeof key)
			return -1;
		memcpy(key, kv->key.s, kv->key.len);
		key[kv->key.len] = 0;
		if (strcmp(key, "general.alignment") == 0)
			continue;
		/* Set by removing and appending, as gguf_set_val_u32 does. */
		if (strcmp(key, "general.file_type") == 0 ||
		    strcmp(key, "general.quantization_version") == 0)
			continue;
		const void *p = kv_value_ptr(kv);
		if (p != NULL) {
			gguf_w_raw(w, key, kv->type, p, kv_value_size(kv));
		} else {
			/* Scalars were decoded into the union; re-encode little-endian. */
			uint8_t b[8];
			uint64_t u = kv->v.u;
			if (kv->type == GGUF_F32) {
				float f = (float)kv->v.f;
				memcpy(b, &f, 4);
			} else if (kv->type == GGUF_F64) {
				memcpy(b, &kv->v.f, 8);
			} else {
				memcpy(b, &u, 8);
			}
			gguf_w_raw(w, key, kv->type, b, gguf_vtype_size(kv->type));
		}
	}
	gguf_w_u32(w, "general.quantization_version", QUANT_VERSION);
	gguf_w_u32(w, "general.file_type", (uint32_t)ftype);
	return 0;
}

/* The data callback: tensor idx converted (or copied) into f. */
static int
write_tensor(void *ud, int idx, FILE *f, size_t nbytes)
{
	struct qjob *j = ud;
	const struct gguf_tensor *t = &j->g->tensors[j->order[idx]];
	const int to = j->types[idx];
	if (j->p->stop != NULL && atomic_load(j->p->stop)) {
		j->stopped = 1;
		return -1;
	}
	if (j->p->progress != NULL)
		j->p->progress(j->p->ud, idx, (int)j->g->n_tensors, t->name.s, t->type, to);
	if (to == t->type) {
		if (fwrite(t->data, 1, nbytes, f) != nbytes)
			return eng_errf(j->err, "write failed: %s", strerror(errno));
		j->out_bytes += nbytes;
		return 0;
	}
	const int64_t ne0 = t->ne[0];
	const int64_t rows = (int64_t)(t->nbytes / quant_row_size(t->type, ne0));
	const size_t in_rb = quant_row_size(t->type, ne0), out_rb = quant_row_size(to, ne0);
	const struct quant_type *from = quant_type_get_ref(t->type);
	quant_from_float_fn q = quantize_block_fn(to);
	uint8_t *out = malloc(nbytes ? nbytes : 1);
	if (out == NULL)
		return eng_errf(j->err, "out of memory for %zu bytes", nbytes);
	int oom = 0;
	int nth = j->p->n_threads > 0 ? j->p->n_threads : 1;
#ifdef _OPENMP
	if (j->p->n_threads <= 0)
		nth = omp_get_max_threads();
#endif
	#pragma omp parallel num_threads(nth) if (rows > 1)
	{
		float *row = t->type == QT_F32 ? NULL : malloc((size_t)ne0 * sizeof(float));
		if (t->type != QT_F32 && row == NULL) {
			#pragma omp atomic write
			oom = 1;
		}
		#pragma omp for schedule(static)
		for (int64_t r = 0; r < rows; r++) {
			const uint8_t *src = (const uint8_t *)t->data + (size_t)r * in_rb;
			const float *x = (const float *)src;
			if (row != NULL) {
				from->to_float(src, row, ne0);
				x = row;
			}
			if (x != NULL)
				q(x, out + (size_t)r * out_rb, ne0);
		}
		free(row);
	}
	if (oom) {
		free(out);
		return eng_errf(j->err, "out of memory");
	}
	size_t wrote = fwrite(out, 1, nbytes, f);
	free(out);
	if (wrote != nbytes)
		return eng_errf(j->err, "write failed: %s", strerror(errno));
	j->out_bytes += nbytes;
	return 0;
}

/*
 * llama.cpp walks the tensors in its loader's map order (weight_name_
 * comparer): tensors outside a layer first, then by layer number, by name
 * within each; its output and its counters follow that order, so ours do.
 */
static int
tensor_layer(const struct gguf_str *s)
{
	int layer = -1;
	char buf[32];
	size_t n = s->len < sizeof buf - 1 ? s->len : sizeof buf - 1;
	memcpy(buf, s->s, n);
	buf[n] = 0;
	if (sscanf(buf, "blk.%d.", &layer) != 1)
		layer = -1;
	return layer;
}

static int
tensor_cmp(const void *pa, const void *pb, void *ud)
{
	const struct gguf *g = ud;
	const struct gguf_str *a = &g->tensors[*(const int *)pa].name;
	const struct gguf_str *b = &g->tensors[*(const int *)pb].name;
	int la = tensor_layer(a), lb = tensor_layer(b);
	if (la != lb)
		return la < lb ? -1 : 1;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->s, b->s, n);
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static int
mix_params(const struct gguf *g, int *n_layer, int *n_gqa)
{
	const struct gguf_kv *a = gguf_find(g, "general.architecture");
	char arch[64] = "llama", key[128];
	if (a != NULL && a->type == GGUF_STRING && a->v.str.len < sizeof arch) {
		memcpy(arch, a->v.str.s, a->v.str.len);
		arch[a->v.str.len] = 0;
	}
	int ok = 1;
	snprintf(key, sizeof key, "%s.block_count", arch);
	*n_layer = (int)gguf_get_int(g, key, 0, &ok);
	snprintf(key, sizeof key, "%s.attention.head_count", arch);
	int nh = (int)gguf_get_int(g, key, 0, &ok);
	snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
	int nkv = (int)gguf_get_int(g, key, nh, &ok);
	*n_gqa = nh > 0 && nkv > 0 ? nh / nkv : 1;
	return *n_layer > 0 ? 0 : -1;
}

/* Sync a finished file so that the rename publishes complete bytes. */
static int
sync_path(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int
quantize_file(const char *in, const char *out, const struct quantize_params *p,
    struct quantize_stats *st, char **err)
{
	struct quantize_stats dummy;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof *st);
	if (quantize_ftype_base(p->ftype) < 0)
		return eng_errf(err, "unknown file type %d", p->ftype);
	char *e = NULL;
	struct gguf *g = gguf_open(in, &e);
	if (g == NULL) {
		eng_errf(err, "%s: %s", in, e ? e : "cannot open");
		free(e);
		return -1;
	}
	int rc = -1, n_layer, n_gqa;
	int n = (int)g->n_tensors;
	int *types = calloc((size_t)n + 1, sizeof *types);
	int *order = calloc((size_t)n + 1, sizeof *order);
	char **names = calloc((size_t)n + 1, sizeof *names);
	struct gguf_writer *w = gguf_writer_new();
	char *tmp = NULL;
	if (types == NULL || order == NULL || names == NULL || w == NULL) {
		eng_errf(err, "out of memory");
		goto done;
	}
	if (mix_params(g, &n_layer, &n_gqa) != 0) {
		eng_errf(err, "%s: no block_count in the metadata: not a model this quantizer knows", in);
		goto done;
	}
	for (int i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, (size_t)n, sizeof *order, tensor_cmp, g);
	for (int i = 0; i < n; i++) {
		names[i] = strndup(g->tensors[order[i]].name.s, g->tensors[order[i]].name.len);
		if (names[i] == NULL) {
			eng_errf(err, "out of memory");
			goto done;
		}
	}
	struct quantize_mix mix;
	quantize_mix_init(&mix, p->ftype, n_layer, n_gqa, (const char *const *)names, n);
	for (int i = 0; i < n; i++) {
		const struct gguf_tensor *t = &g->tensors[order[i]];
		const int cur = t->type;
		types[i] = quantize_mix_type(&mix, names[i], (int)t->n_dims, t->ne[0], cur);
		st->in_bytes += t->nbytes;
		if (types[i] == cur)
			continue;
		if (quant_type_get_ref(cur) == NULL) {
			eng_errf(err, "%s: tensor %s has type %d, which this engine cannot read", in, names[i], cur);
			goto done;
		}
		if (!is_float_type(cur)) {
			if (!p->allow_requantize) {
				eng_errf(err, "%s: tensor %s is already %s; requantizing needs --allow-requantize",
				    in, names[i], quant_type_name(cur));
				goto done;
			}
			st->n_requantized++;
		}
		st->n_quantized++;
	}
	st->n_tensors = n;
	st->n_fallback = mix.n_fallback;

	if (copy_metadata(g, w, p->ftype) != 0) {
		eng_errf(err, "%s: a metadata key longer than 255 bytes", in);
		goto done;
	}
	for (int i = 0; i < n; i++)
		gguf_w_tensor(w, names[i], types[i], (int)g->tensors[order[i]].n_dims, g->tensors[order[i]].ne);

	if (asprintf(&tmp, "%s.tmp%ld", out, (long)getpid()) < 0) {
		tmp = NULL;
		eng_errf(err, "out of memory");
		goto done;
	}
	struct qjob job = { .g = g, .p = p, .order = order, .types = types, .err = err };
	if (gguf_writer_write(w, tmp, write_tensor, &job, err) != 0) {
		unlink(tmp);
		if (job.stopped) {
			free(*err);
			*err = NULL;
			rc = 1;
		}
		goto done;
	}
	if (sync_path(tmp) != 0 || rename(tmp, out) != 0) {
		eng_errf(err, "%s: %s", out, strerror(errno));
		unlink(tmp);
		goto done;
	}
	st->out_bytes = job.out_bytes;
	rc = 0;
done:
	free(tmp);
	gguf_writer_free(w);
	for (int i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	free(types);
	free(order);
	gguf_close(g);
	return rc;
}
