/*
 * model_pack.c: a model's matrices in the layout the CPU's kernels read
 * fastest (gemm_pack.c), made once per model.
 *
 * Which: the projections of every layer and the output matrix, where
 * gemm_pack_size says the type and CPU allow (Q4_0, Q8_0, Q4_K and Q6_K
 * on AVX-512 VNNI); not the token embeddings, which are read a row at a time, nor an
 * output matrix tied to them.  All of them, and the small vectors read
 * between them (see vectors()), go into one block, 2 MiB
 * aligned so the kernel can back it with huge pages (fewer TLB misses on
 * a stream of gigabytes per second).
 *
 * Memory: a matrix's pages in the mapping are dropped (MADV_DONTNEED) as
 * soon as it is packed, a slab of 8 MiB at a time, so the resident size
 * peaks at the weights plus a slab, and stays the weights' size.  The page cache keeps the file;
 * tensor.data still points at it, and a read of it would fault it back in,
 * unchanged.  Nothing reads it but the fingerprint, taken at open.
 *
 * Threads: m->pack_lock makes one caller do the work; pack_done (release
 * after the last tensor.packed is set, acquire in the check) lets the
 * others skip the lock once it is done.  Callers are engine_prefetch and
 * the start of every forward pass, never a pass in flight on this model.
 */
#include "engine/model.h"
#include "engine/gemm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PACK_ALIGN ((size_t)2 << 20)
#define PACK_SLAB ((size_t)8 << 20)

/* The matrices a pass multiplies by: n_layers * 7, then the output. */
static int
matrices(struct model *m, struct tensor **out)
{
	int k = 0;
	for (int l = 0; l < m->cfg.n_layers; l++) {
		struct layer *L = &m->layers[l];
		struct tensor *t[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
		for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
			out[k++] = t[i];
	}
	if (m->output.data != m->tok_embd.data)
		out[k++] = &m->output;
	return k;
}

/*
 * The vectors a pass reads from the mapping between the matrices (the
 * norms, RoPE's frequencies): copied into the block too.  The page cache
 * holds a file in large folios, and a fault on one page of a folio maps
 * all of it: reading an 8 KB norm would bring back up to 2 MB of the
 * packed matrices around it (74 MB in all on 1.1B Q8_0, measured).
 */
static int
vectors(struct model *m, struct tensor **out)
{
	int k = 0;
	for (int l = 0; l < m->cfg.n_layers; l++) {
		out[k++] = &m->layers[l].attn_norm;
		out[k++] = &m->layers[l].ffn_norm;
	}
	out[k++] = &m->out_norm;
	if (m->rope_freqs.data != NULL)
		out[k++] = &m->rope_freqs;
	return k;
}

static size_t
vec_bytes(const struct tensor *t)
{
	return (t->row_bytes + 63) / 64 * 64;
}

static size_t
pack_bytes(const struct tensor *t)
{
	if (t->data == NULL || t->ne[0] > INT32_MAX || t->ne[1] > INT32_MAX)
		return 0;
	return (gemm_pack_size(t->type, (int)t->ne[0], (int)t->ne[1]) + 63) / 64 * 64;
}

/* Drop the whole pages of [p, p + n) from this process's mapping. */
static void
drop_pages(const void *p, size_t n)
{
	long pg = sysconf(_SC_PAGESIZE);
	const uintptr_t page = pg > 0 ? (uintptr_t)pg : 4096;
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t b = ((uintptr_t)p + n) & ~(page - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

void
model_pack(struct model *m)
{
	if (atomic_load_explicit(&m->pack_done, memory_order_acquire))
		return;
	pthread_mutex_lock(&m->pack_lock);
	size_t total = 0;
	if (atomic_load_explicit(&m->pack_done, memory_order_relaxed) || m->gguf == NULL || m->layers == NULL)
		goto done;
	struct tensor **ts = malloc(((size_t)m->cfg.n_layers * 9 + 3) * sizeof *ts);
	if (ts == NULL)
		goto done;
	const int nt = matrices(m, ts);
	for (int i = 0; i < nt; i++)
		total += pack_bytes(ts[i]);
	if (total == 0) {
		free(ts);
		goto done;
	}
	const int nv = vectors(m, ts + nt);
	size_t vbytes = 0;
	for (int i = 0; i < nv; i++)
		vbytes += vec_bytes(ts[nt + i]);
	size_t size = (total + vbytes + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
	void *mem = NULL;
	if (posix_memalign(&mem, PACK_ALIGN, size) != 0) {
		free(ts);
		goto done;
	}
	madvise(mem, size, MADV_HUGEPAGE);
	size_t off = 0;
	for (int i = 0; i < nt; i++) {
		struct tensor *t = ts[i];
		const size_t sz = pack_bytes(t);
		if (sz == 0)
			continue;
		uint8_t *dst = (uint8_t *)mem + off;
		const int n = (int)t->ne[0], rows = (int)t->ne[1], tiles = (rows + 15) / 16;
		/* In slabs of about PACK_SLAB, each let go of once packed: a
		 * whole output matrix would be a second copy of 70 MB (1.1B
		 * Q8_0) to 140 MB (7B) at the peak. */
		const size_t tile_src = t->row_bytes * 16;
		const int slab = tile_src >= PACK_SLAB ? 1 : (int)(PACK_SLAB / tile_src);
		for (int k0 = 0; k0 < tiles; k0 += slab) {
			const int k1 = tiles - k0 < slab ? tiles : k0 + slab;
			#pragma omp parallel for schedule(static)
			for (int k = k0; k < k1; k++)
				gemm_pack(t->type, n, rows, t->data, t->row_bytes, dst, k, k + 1);
			const int r1 = 16 * k1 < rows ? 16 * k1 : rows;
			drop_pages((const uint8_t *)t->data + (size_t)k0 * tile_src, t->row_bytes * (size_t)(r1 - 16 * k0));
		}
		t->packed = dst;
		off += sz;
	}
	for (int i = 0; i < nv; i++) {
		struct tensor *t = ts[nt + i];
		const size_t sz = vec_bytes(t);
		memcpy((uint8_t *)mem + off, t->data, t->row_bytes);
		drop_pages(t->data, t->row_bytes);
		t->data = (uint8_t *)mem + off;
		off += sz;
	}
	free(ts);
	m->pack_mem = mem;
done:
	atomic_store_explicit(&m->pack_done, 1, memory_order_release);
	pthread_mutex_unlock(&m->pack_lock);
}
