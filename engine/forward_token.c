/*
 * forward_token.c: one decoded token through every layer in a single
 * parallel region.
 *
 * Why.  A decoded token is some 90 matrix products on the 1.1B shape, each
 * a few tens of microseconds at two cores.  Run as model_forward runs a
 * batch, each product is its own OpenMP parallel region: waking the team
 * and joining it cost about 3 us a region here (libgomp ends every barrier
 * with a futex system call), and the cores stood idle between regions.
 * Here the team is woken once per token and meets at a spinning barrier
 * (about 0.5 us) between the steps of a layer, and each thread ropes and
 * caches the heads it attends with.
 *
 * The small steps between products (residual adds, norms, SwiGLU,
 * quantizing the next product's input) are split by parts of the vector,
 * each thread its own, mostly the part of the previous output it computed
 * itself.  When thread 0 did them alone, the others waited (4% of a 1.1B
 * token) and it first had to fetch the half the other core had written;
 * a norm's sum of squares, which cannot be split and keep ggml's order,
 * is proved equal from the parts' sums instead (vec_mean_sq_from).
 * Per-token A/B (median time per token, this form / thread 0 alone, 3
 * rounds; the same build against itself 0.999-1.014): 1.1B Q4_0 0.988-
 * 0.999, Q4_K_M 0.982-0.989; 7B Q4_0 0.994-1.001.  Quantizing wo's input
 * head group by head group right after attention, without the barrier
 * between them, measured nothing more (1.0015-1.0045 against a control
 * of 1.0022-1.0048).
 *
 * Bits.  Every step is the one model_forward runs for n = 1 (the same
 * functions, from forward.c and matmul.c): a row of a matrix product or an
 * attention head does not depend on which thread computes it, so a token
 * gets the same bits at any number of threads, and the same as through
 * model_forward's batch path with one token.
 *
 * Invariant: every thread of the team passes the same barriers in the same
 * order (a norm's, inside ft_input, too, even with an empty part).  A stop
 * request or an out-of-memory error is seen by thread 0, published in
 * `status` before a barrier, and read by all after it, so that all leave
 * the loop together.
 */
#include "engine/forward_int.h"
#include "engine/vecops.h"

#include <omp.h>
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* A barrier for the n threads of a team: the last to arrive starts the
 * next generation.  A waiting thread spins, then yields its core, so that
 * a team larger than the free cores still makes progress; with more
 * threads than the process may use cores, it yields almost at once (a
 * spinning thread would then hold the core the others need), as libgomp
 * throttles its own spinning. */
struct ft_barrier {
	_Alignas(64) atomic_int count;
	_Alignas(64) atomic_int gen;
	unsigned spin;            /* pauses before yielding */
};

static void
ft_wait(struct ft_barrier *b, int n)
{
	if (n <= 1)
		return;
	const int g = atomic_load_explicit(&b->gen, memory_order_acquire);
	if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) == n - 1) {
		atomic_store_explicit(&b->count, 0, memory_order_relaxed);
		atomic_store_explicit(&b->gen, g + 1, memory_order_release);
		return;
	}
	for (unsigned spins = 0; atomic_load_explicit(&b->gen, memory_order_acquire) == g; spins++) {
		if (spins < b->spin)
			CPU_RELAX();
		else
			sched_yield();
	}
}

/* Cores this process may run on (its affinity mask), 0 if unknown. */
static int
ft_cores(void)
{
#ifdef CPU_COUNT
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		return CPU_COUNT(&set);
#endif
	return 0;
}

/* A barrier, then whether thread 0 asked everyone to stop before it. */
static int
ft_stopped(struct ft_barrier *b, int n, atomic_int *status)
{
	ft_wait(b, n);
	return atomic_load_explicit(status, memory_order_relaxed) != 0;
}

int
forward_token_ok(const struct model *m)
{
	const struct model_config *c = &m->cfg;
	/* (Past MM_RUNS threads, struct ft has no room for their parts.) */
	const int nt = omp_get_max_threads();
	if (nt < 2 || nt > MM_RUNS || !PARALLEL_WORTH((int64_t)c->dim * c->dim))
		return 0;
	/* llama2.c int8 files: every matrix is Q8_G, which has its own path. */
	return m->output.type != QT_Q8_G && (c->n_layers == 0 || m->layers[0].wq.type != QT_Q8_G);
}

/* What the team shares for one token. */
struct ft {
	struct mm_plan plan[2];   /* this product's, and the next one's being laid out */
	struct ft_barrier bar;
	atomic_int status;        /* 0, 1 (stop asked), -1 (out of memory) */
	struct {
		_Alignas(64) double ss;
	} part[MM_RUNS];          /* each thread's part of a norm's sum of squares */
};

/* Thread 0: a stop request ends the pass at the next product (an
 * out-of-memory status already set stays). */
static void
ft_check_stop(struct ft *f, atomic_int *stop)
{
	if (STOPPED(stop) && atomic_load_explicit(&f->status, memory_order_relaxed) == 0)
		atomic_store_explicit(&f->status, 1, memory_order_relaxed);
}

/* A token's products in order: four a layer, then the logits. */
enum { P_QKV, P_WO, P_GU, P_DOWN, P_PER_LAYER };

/* Product k's matrices (returns how many) and its input. */
static int
ft_jobs(const struct model *m, struct run_state *s, int k, struct mm *jobs, const float **x)
{
	const int l = k / P_PER_LAYER;
	if (l == m->cfg.n_layers) {
		jobs[0] = (struct mm){ s->logits, &m->output };
		*x = s->xb;
		return 1;
	}
	const struct layer *L = &m->layers[l];
	switch (k % P_PER_LAYER) {
	case P_QKV:
		jobs[0] = (struct mm){ s->q, &L->wq };
		jobs[1] = (struct mm){ s->k, &L->wk };
		jobs[2] = (struct mm){ s->v, &L->wv };
		*x = s->xb;
		return 3;
	case P_WO:
		jobs[0] = (struct mm){ s->xb2, &L->wo };
		*x = s->xb;
		return 1;
	case P_GU:
		jobs[0] = (struct mm){ s->hb, &L->w_gate };
		jobs[1] = (struct mm){ s->hb2, &L->w_up };
		*x = s->xb;
		return 2;
	default:
		jobs[0] = (struct mm){ s->xb2, &L->w_down };
		*x = s->hb;
		return 1;
	}
}

/* Lay out product k's plan; -1 if s->qbuf is too small (with grow, make
 * it large enough instead: single-threaded only). */
static int
ft_layout(const struct model *m, struct run_state *s, int k, struct mm_plan *p, int nth, int grow)
{
	struct mm jobs[MM_MAX];
	const float *x;
	const int nj = ft_jobs(m, s, k, jobs, &x);
	return matmul_plan_layout(p, jobs, nj, x, 1, s, nth, grow);
}

/* The norm before product k (NULL if it has none: wo, down). */
static const float *
ft_norm(const struct model *m, int k)
{
	const int l = k / P_PER_LAYER;
	if (l == m->cfg.n_layers)
		return m->out_norm.data;
	if (k % P_PER_LAYER == P_QKV)
		return m->layers[l].attn_norm.data;
	if (k % P_PER_LAYER == P_GU)
		return m->layers[l].ffn_norm.data;
	return NULL;
}

/*
 * Product k's input, values e0 .. e1 - 1 (this thread's part); a barrier
 * inside for a norm.  Before Q, K, V, before gate and up and before the
 * logits: the residual add (but for the embedding) and the norm.  Each
 * thread adds its own part, which is mostly the part of wo's or down's
 * output it computed (runs split the rows as the parts split the values),
 * and sums its squares; the parts' sums, added in thread order past a
 * barrier, decide the norm's mean (vec_mean_sq_sum), or all threads do
 * the sequential sum.  Before down: SwiGLU.  Before wo: nothing
 * (attention wrote the input).
 */
static void
ft_input(struct ft *f, const struct model *m, struct run_state *s, int k, int id, int nth, int e0, int e1)
{
	const struct model_config *c = &m->cfg;
	const float *w = ft_norm(m, k);
	if (w == NULL) {
		if (k % P_PER_LAYER == P_DOWN && e1 > e0)
			vec_swiglu(s->hb + e0, s->hb2 + e0, (size_t)(e1 - e0));
		return;
	}
	float *x = s->x;
	if (k > 0 && e1 > e0)
		vec_add(x + e0, s->xb2 + e0, (size_t)(e1 - e0));
	f->part[id].ss = e1 > e0 ? vec_sumsq(x + e0, (size_t)(e1 - e0)) : 0.0;
	ft_wait(&f->bar, nth);
	if (e1 <= e0)
		return;
	double ss = 0;
	for (int t = 0; t < nth; t++)
		ss += f->part[t].ss;
	forward_rmsnorm_apply(s->xb, x, w, vec_mean_sq_sum(ss, x, (size_t)c->dim), c->norm_eps, e0, e1);
}

int
forward_token(const struct model *m, struct kv_cache *kv, struct run_state *s, int32_t token, int pos,
    atomic_int *stop)
{
	const struct model_config *c = &m->cfg;
	const int nt = omp_get_max_threads(), np = c->n_layers * P_PER_LAYER + 1;
	struct ft f;
	atomic_init(&f.bar.count, 0);
	atomic_init(&f.bar.gen, 0);
	atomic_init(&f.status, 0);
	const int cores = ft_cores();
	f.bar.spin = cores > 0 && nt > cores ? 64 : 1u << 16;

	/* Plans are laid out while another thread reads s->qbuf, which must
	 * not move then: make it large enough for all of them first. */
	if (!s->qbuf_token) {
		for (int k = 0; k < np; k++)
			if (ft_layout(m, s, k, &f.plan[0], nt, 1) != 0)
				return -1;
		s->qbuf_token = 1;
	}
	forward_embed(m, token, s->x);
	vec_rope_table(s->rope_cs, c->rope_dim, pos, s->rope_scale, m->rope_freqs.data);
	if (ft_layout(m, s, 0, &f.plan[0], nt, 0) != 0)
		return -1;

	#pragma omp parallel num_threads(nt)
	{
		const int id = omp_get_thread_num(), nth = omp_get_num_threads();
		for (int k = 0; k < np; k++) {
			struct mm_plan *p = &f.plan[k & 1];
			int e0, e1;
			/* The input, each thread its part, quantized by the thread
			 * that wrote it; all of it is there past the barrier.  (A
			 * team smaller than the plans were laid out for fills and
			 * runs them all the same.) */
			if (id == 0)
				ft_check_stop(&f, stop);
			matmul_plan_part(p, id, nth, &e0, &e1);
			ft_input(&f, m, s, k, id, nth, e0, e1);
			matmul_plan_fill(p, e0, e1);
			if (ft_stopped(&f.bar, nth, &f.status))
				break;
			/* Thread 0 lays out the next product while the others start
			 * this one (that plan's last run ended at the barrier before
			 * this product's input). */
			if (id == 0 && k + 1 < np && ft_layout(m, s, k + 1, &f.plan[(k + 1) & 1], nth, 0) != 0)
				atomic_store_explicit(&f.status, -1, memory_order_relaxed);
			matmul_plan_run(p, id);
			ft_wait(&f.bar, nth);
			if (k % P_PER_LAYER == P_QKV && k / P_PER_LAYER < c->n_layers) {
				/* One KV head at a time, in turn to each thread: RoPE on
				 * its queries and key, its K and V cached, its attention
				 * (which reads no other head's, so needs no barrier
				 * before it). */
				const int l = k / P_PER_LAYER;
				for (int g = id; g < c->n_kv_heads; g += nth) {
					forward_rope_store(m, kv, s, l, 0, pos, g, g + 1);
					forward_attn_item(m, kv, s, l, g, 0, 1, 1, pos, id);
				}
				ft_wait(&f.bar, nth);
			}
		}
	}
	return atomic_load_explicit(&f.status, memory_order_relaxed);
}
