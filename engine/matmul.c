/*
 * matmul.c: matrix products for the forward pass, out = x (B rows) times
 * W's rows, for any weight type.
 *
 * What it owns.  The activations of a group of matrices applied to the
 * same input (Q, K and V; gate and up) are quantized once per activation
 * type, into the layout each matrix's kernel reads (s->qbuf, grown here),
 * and all the group's rows are shared out in one parallel pass, so the
 * threads meet once per group rather than once per matrix.
 *
 * Work sharing.  The rows of a group are numbered in units (16 rows, a
 * packed tile, for one token; 64 for a batch) and split into one
 * contiguous run per thread.  Each thread walks its own run in order (one
 * sequential stream, which the hardware prefetcher follows), taking units
 * from the run's counter (for one token, half of what is left at a time:
 * see matmul_plan_layout); a thread that finishes early takes units from
 * the others' runs through the same counters.  A static
 * split alone left one core waiting for the other a sixth of the decode
 * time (a core slowed by anything else on the machine holds up the whole
 * pass); handing out every unit from one shared counter broke the streams
 * and cost a third.  Which thread computes a row changes no bit of it.
 *
 * Invariant: a plan is laid out by one thread, its activations filled by
 * one or, part by part, by several, then only read (but for its counters)
 * by the threads that run it, with a barrier between each step.
 */
#include "engine/forward_int.h"
#include "engine/gemm.h"
#include "engine/quant.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* llama2.c int8 rows: activations quantized in the same groups, as runq.c. */
static void
q8g_quantize(const float *x, int8_t *q, float *sc, int64_t n, int gs)
{
	for (int64_t g = 0; g < n / gs; g++) {
		float wmax = 0;
		for (int i = 0; i < gs; i++) {
			float a = fabsf(x[g * gs + i]);
			if (a > wmax)
				wmax = a;
		}
		float scale = wmax / 127.0f;
		sc[g] = scale;
		for (int i = 0; i < gs; i++) {
			float v = scale != 0 ? x[g * gs + i] / scale : 0;
			/* A denormal scale is rounded, so v can pass 127: clamp;
			 * NaN (broken weights) gives 0.  Both would be UB in the cast. */
			q[g * gs + i] = (int8_t)(isnan(v) ? 0 : roundf(fminf(fmaxf(v, -127.0f), 127.0f)));
		}
	}
}

static void
matmul_q8g(float *out, const struct tensor *W, const float *x, int B, struct run_state *s)
{
	int64_t n = W->ne[0], rows = W->ne[1];
	int gs = W->group;
	size_t stride = (size_t)n + (size_t)(n / gs) * sizeof(float);
	uint8_t *buf = s->qbuf;
	for (int b = 0; b < B; b++)
		q8g_quantize(x + (size_t)b * n, (int8_t *)(buf + b * stride),
		    (float *)(buf + b * stride + n), n, gs);
	#pragma omp parallel for schedule(static) if (PARALLEL_WORTH(rows * n * B))
	for (int64_t r = 0; r < rows; r++) {
		const int8_t *wq = (const int8_t *)W->data + r * n;
		const float *ws = W->scales + r * (n / gs);
		for (int b = 0; b < B; b++) {
			const int8_t *xq = (const int8_t *)(buf + b * stride);
			const float *xs = (const float *)(buf + b * stride + n);
			float val = 0;
			for (int64_t g = 0; g < n / gs; g++) {
				int32_t iv = 0;
				for (int i = 0; i < gs; i++)
					iv += (int32_t)wq[g * gs + i] * (int32_t)xq[g * gs + i];
				val += (float)iv * ws[g] * xs[g];
			}
			out[(size_t)b * rows + r] = val;
		}
	}
}

/* Room in s->qbuf for `need` more bytes after `used`, growing it (called
 * by one thread, outside the parallel passes). */
static uint8_t *
qbuf_at(struct run_state *s, size_t used, size_t need)
{
	if (used + need > s->qbuf_size) {
		void *nb = realloc(s->qbuf, used + need);
		if (nb == NULL)
			return NULL;
		s->qbuf = nb;
		s->qbuf_size = used + need;
	}
	return (uint8_t *)s->qbuf + used;
}

int
matmul_plan_layout(struct mm_plan *p, const struct mm *jobs, int nj, const float *x, int B, struct run_state *s,
    int nr, int grow)
{
	size_t decoff[MM_MAX], offs[MM_MAX], used = 0;
	p->nj = 0;                  /* an empty plan until laid out */
	p->first[0] = 0;
	p->blk = 0;
	p->x = x;
	p->n = nj > 0 ? (int)jobs[0].W->ne[0] : 0;
	p->B = B;
	p->nr = nr < 1 ? 1 : nr > MM_RUNS ? MM_RUNS : nr;
	/*
	 * One token: units of one 16-row tile, taken guided: each take half
	 * of what is left of one's own run, a quarter of what is left of
	 * another's, never less than 2 units.  Taking units is a locked add,
	 * which waits for the weight loads in flight and keeps the next ones
	 * from starting (perf: 6% of decoding at 32 rows a take), so takes
	 * must be few; but a thread that finishes while the other holds a
	 * large take waits for all of it, so the last takes must be small.
	 * Halving gives both: 10 takes for a 352-unit run (gate and up on
	 * the 1.1B shape), and at any moment at most half of what was left
	 * is held.  The form before (three quarters of the run at once, then
	 * 8 units a take, 2 near the end) took 22, and a thread that finished
	 * first waited for the other's big take: 3-5% of a 1.1B token in
	 * barrier waits (per-thread profile).  Per-token A/B in one process
	 * (tokens alternating between two forms, median time per token,
	 * 1.1B Q4_K_M, 3 runs of 256 tokens each; the same form against
	 * itself 0.998-1.004), against the old form: guided 0.989-0.993,
	 * thieves a half instead of a quarter 0.989-0.992, a fixed 8 units
	 * a take 1.015-1.016, the owner a quarter 1.003-1.017; against
	 * guided, the owner a third 1.005-1.011.
	 * A batch: one unit of 64 rows a take.
	 */
	p->unit = B == 1 ? 16 : 64;
	p->guided = B == 1;
	p->tail = B == 1 ? 2 : 1;
	p->macs = 0;
	/* First decide each matrix's activation layout and where it goes: the
	 * buffer may grow, so pointers are taken only once all are sized. */
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		int64_t n = W->ne[0];
		int vdt = quant_type_get(W->type)->vec_dot_type;
		p->jobs[j] = jobs[j];
		/* Packed matrices (model_pack) take the tiled layout for any B. */
		size_t gsz = W->packed ? gemm_pack_act_size(W->type, (int)n, B)
		    : B > 1 ? gemm_act_size(W->type, (int)n, B) : 0;
		p->tiled[j] = gsz > 0;
		if (vdt == QT_F32) {
			p->stride[j] = (size_t)n * sizeof(float);
			offs[j] = (size_t)-1;
		} else if (j > 0 && jobs[j - 1].W->type == W->type && !jobs[j - 1].W->packed == !W->packed) {
			p->stride[j] = p->stride[j - 1];
			offs[j] = offs[j - 1];
		} else if (p->tiled[j]) {
			p->stride[j] = 0;
			offs[j] = used;
			used += (gsz + 63) / 64 * 64;
		} else if (j > 0 && !p->tiled[j - 1] && (int)quant_type_get(jobs[j - 1].W->type)->vec_dot_type == vdt) {
			p->stride[j] = p->stride[j - 1];
			offs[j] = offs[j - 1];
		} else {
			p->stride[j] = quant_row_size(vdt, n);
			offs[j] = used;
			used += (p->stride[j] * (size_t)B + 63) / 64 * 64;
		}
		p->first[j + 1] = p->first[j] + (W->ne[1] + p->unit - 1) / p->unit;
		p->macs += W->ne[0] * W->ne[1] * B;
	}
	/* Decoding: types whose kernel reads a prepared activation row get it
	 * after the plain one (64-byte aligned: 64 bytes of slack each). */
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		size_t dsz = B == 1 && !p->tiled[j] && offs[j] != (size_t)-1 ? quant_dec_size(W->type, (int)W->ne[0]) : 0;
		p->dec[j] = dsz > 0;
		decoff[j] = used;
		if (p->dec[j] && j > 0 && p->dec[j - 1] && jobs[j - 1].W->type == W->type)
			decoff[j] = decoff[j - 1];
		else if (p->dec[j])
			used += (dsz + 127) / 64 * 64;
	}
	if (used > s->qbuf_size && (!grow || qbuf_at(s, 0, used) == NULL))
		return -1;
	/* Where each matrix's activations go, and which matrix fills them
	 * (the first of those that share them).  Split in parts (blk > 0)
	 * only where every fill is a packed one-token layout, whose blocks
	 * are independent: a multiple of every block (256 values when a
	 * k-quant is among them, 32 otherwise) is then the unit of a part. */
	int blk = B == 1 ? 32 : 0;
	for (int j = 0; j < nj; j++) {
		const struct tensor *W = jobs[j].W;
		p->fill[j] = FILL_NONE;
		p->plain[j] = NULL;
		if (offs[j] == (size_t)-1) {
			p->act[j] = (const uint8_t *)x;
			continue;
		}
		p->plain[j] = (uint8_t *)s->qbuf + offs[j];
		p->act[j] = p->plain[j];
		if (j > 0 && offs[j] == offs[j - 1])
			continue;
		p->fill[j] = p->tiled[j] ? FILL_TILED : FILL_PLAIN;
		if (p->fill[j] == FILL_TILED && W->packed && B == 1) {
			const int bs = quant_type_get(W->type)->blck;
			blk = blk > 0 && blk % bs == 0 ? blk : blk > 0 && bs % blk == 0 ? bs : 0;
		} else
			blk = 0;
	}
	for (int j = 0; j < nj; j++) {
		p->decown[j] = 0;
		if (!p->dec[j])
			continue;
		p->act[j] = (uint8_t *)(((uintptr_t)s->qbuf + decoff[j] + 63) & ~(uintptr_t)63);
		p->decown[j] = !(j > 0 && p->dec[j - 1] && decoff[j] == decoff[j - 1]);
	}
	p->blk = blk > 0 && p->n % blk == 0 ? blk : 0;
	const int64_t total = p->first[nj];
	for (int t = 0; t < p->nr; t++)
		atomic_store_explicit(&p->run[t].next, total * t / p->nr, memory_order_relaxed);
	p->nj = nj;
	return 0;
}

void
matmul_plan_part(const struct mm_plan *p, int id, int nth, int *e0, int *e1)
{
	if (p->blk == 0) {
		*e0 = 0;
		*e1 = id == 0 ? p->n : 0;
		return;
	}
	const int64_t nb = p->n / p->blk;
	*e0 = (int)(nb * id / nth * p->blk);
	*e1 = (int)(nb * (id + 1) / nth * p->blk);
}

void
matmul_plan_fill(const struct mm_plan *p, int e0, int e1)
{
	if (e1 <= e0)
		return;
	const int B = p->B;
	const int n = p->n;
	for (int j = 0; j < p->nj; j++) {
		const struct tensor *W = p->jobs[j].W;
		/* Quantize the activations once; every row's dot product reuses
		 * them, as llama.cpp does (which is why its quantized results and
		 * ours agree). */
		if (p->fill[j] == FILL_TILED && p->blk > 0) {
			/* Blocks e0 / blk .. e1 / blk of one token's row. */
			gemm_pack_act_prepare(W->type, e1 - e0, p->x + e0, 1,
			    p->plain[j] + gemm_pack_act_size(W->type, e0, 1));
		} else if (p->fill[j] == FILL_TILED) {
			(W->packed ? gemm_pack_act_prepare : gemm_act_prepare)(W->type, n, p->x, B, p->plain[j]);
		} else if (p->fill[j] == FILL_PLAIN) {
			const struct quant_type *vt = quant_type_get(quant_type_get(W->type)->vec_dot_type);
			#pragma omp parallel for schedule(static) if (B > 1 && PARALLEL_WORTH((int64_t)n * B))
			for (int b = 0; b < B; b++)
				vt->from_float(p->x + (size_t)b * n, p->plain[j] + (size_t)b * p->stride[j], n);
		}
	}
	for (int j = 0; j < p->nj; j++)
		if (p->decown[j])
			quant_dec_prepare(p->jobs[j].W->type, n, p->plain[j], (uint8_t *)p->act[j]);
}

int
matmul_plan(struct mm_plan *p, const struct mm *jobs, int nj, const float *x, int B, struct run_state *s, int nr)
{
	if (matmul_plan_layout(p, jobs, nj, x, B, s, nr, 1) != 0)
		return -1;
	matmul_plan_fill(p, 0, p->n);
	return 0;
}

/* Rows r0 .. r1 - 1 of matrix j. */
static void
mm_rows(const struct mm_plan *p, int j, int64_t r0, int64_t r1)
{
	const struct tensor *W = p->jobs[j].W;
	const struct quant_type *qt = quant_type_get(W->type);
	const int64_t n = W->ne[0], rows = W->ne[1];
	const int B = p->B;
	float *out = p->jobs[j].out;
	const uint8_t *w = (const uint8_t *)W->data;
	if (W->packed) {
		/* One token or a batch: the tiled kernels (gemm_pack.c). */
		gemm_packed(W->type, (int)n, W->packed, (int)r0, (int)r1, p->act[j], B, out, (size_t)rows);
	} else if (B == 1) {
		quant_vec_dot_fn dot = p->dec[j] ? quant_dec_dot(W->type) : qt->vec_dot;
		for (int64_t r = r0; r < r1; r++)
			dot((int)n, &out[r], w + r * W->row_bytes, p->act[j]);
	} else if (p->tiled[j]) {
		/* Prompt processing: the tiled GEMM (gemm.c). */
		gemm(W->type, (int)n, w, W->row_bytes, (int)r0, (int)r1, p->act[j], B, out, (size_t)rows);
	} else {
		/* Other types: each weight row unpacked once for all B rows. */
		quant_vec_dot_n_fn dot_n = quant_vec_dot_n(W->type);
		for (int64_t r = r0; r < r1; r++)
			dot_n((int)n, &out[r], (size_t)rows, w + r * W->row_bytes, p->act[j], p->stride[j], B);
	}
}

/* Units u0 .. u1 - 1, which may span the end of one matrix. */
static void
mm_units(const struct mm_plan *p, int64_t u0, int64_t u1)
{
	int j = 0;
	while (u0 < u1) {
		while (u0 >= p->first[j + 1])
			j++;
		const int64_t rows = p->jobs[j].W->ne[1];
		const int64_t e = u1 < p->first[j + 1] ? u1 : p->first[j + 1];
		const int64_t r1 = (e - p->first[j]) * p->unit;
		mm_rows(p, j, (u0 - p->first[j]) * p->unit, r1 < rows ? r1 : rows);
		u0 = e;
	}
}

void
matmul_plan_run(struct mm_plan *p, int id)
{
	const int nr = p->nr;
	const int64_t total = p->first[p->nj];
	for (int v = 0; v < nr; v++) {
		const int t = (id + v) % nr;
		const int64_t end = total * (t + 1) / nr;
		/* Own run first (v = 0), then the others'.  Every take goes
		 * through the run's counter, so a team smaller than nr, whose
		 * runs others walk, loses no rows; what is left is read before
		 * the take, so another thread may have taken some meanwhile: the
		 * take is then larger than half, never past the run's end. */
		for (;;) {
			int64_t take = p->tail;
			if (p->guided) {
				const int64_t left = end - atomic_load_explicit(&p->run[t].next, memory_order_relaxed);
				const int64_t g = v == 0 ? left / 2 : left / 4;
				take = g > take ? g : take;
			}
			const int64_t u = atomic_fetch_add_explicit(&p->run[t].next, take, memory_order_relaxed);
			if (u >= end)
				break;
			mm_units(p, u, u + take < end ? u + take : end);
		}
	}
}

int
matmul_group(const struct mm *jobs, int nj, const float *x, int B, struct run_state *s)
{
	struct mm_plan p;
	/* Runs are laid out for the team size asked for; a smaller team (one
	 * thread when the work is too small to share) still walks every run. */
	if (matmul_plan(&p, jobs, nj, x, B, s, omp_get_max_threads()) != 0)
		return -1;
	#pragma omp parallel if (PARALLEL_WORTH(p.macs))
	matmul_plan_run(&p, omp_get_thread_num());
	return 0;
}

int
matmul(float *out, const struct tensor *W, const float *x, int B, struct run_state *s)
{
	if (W->type == QT_Q8_G) {
		matmul_q8g(out, W, x, B, s);
		return 0;
	}
	struct mm job = { out, W };
	return matmul_group(&job, 1, x, B, s);
}
