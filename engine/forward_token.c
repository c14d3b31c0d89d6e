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
 * (about 0.5 us) between the steps of a layer; thread 0 does the small
 * serial steps (norms, residuals, quantizing the next activations) while
 * the others wait at the barrier, and each thread ropes and caches the
 * heads it attends with.
 *
 * Bits.  Every step is the one model_forward runs for n = 1 (the same
 * functions, from forward.c and matmul.c): a row of a matrix product or an
 * attention head does not depend on which thread computes it, so a token
 * gets the same bits at any number of threads, and the same as through
 * model_forward's batch path with one token.
 *
 * Invariant: every thread of the team passes the same barriers in the same
 * order.  A stop request or an out-of-memory error is seen by thread 0,
 * published in `status` before a barrier, and read by all after it, so
 * that all leave the loop together.
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
	if (omp_get_max_threads() < 2 || !PARALLEL_WORTH((int64_t)c->dim * c->dim))
		return 0;
	/* llama2.c int8 files: every matrix is Q8_G, which has its own path. */
	return m->output.type != QT_Q8_G && (c->n_layers == 0 || m->layers[0].wq.type != QT_Q8_G);
}

/* What the team shares for one token. */
struct ft {
	struct mm_plan plan;
	struct ft_barrier bar;
	atomic_int status;        /* 0, 1 (stop asked), -1 (out of memory) */
	struct run_state *s;
};

/*
 * One matrix product of the token: thread 0 plans it on x (unless the pass
 * is already ending), then, past a barrier, the whole team runs it and
 * meets again.  Thread 0 does the step's serial work just before calling
 * this.  Returns nonzero when the pass must end (every thread alike).
 */
static int
ft_product(struct ft *f, int id, int nth, const struct mm *jobs, int nj, const float *x)
{
	if (id == 0 && atomic_load_explicit(&f->status, memory_order_relaxed) == 0 &&
	    matmul_plan(&f->plan, jobs, nj, x, 1, f->s, nth) != 0)
		atomic_store_explicit(&f->status, -1, memory_order_relaxed);
	if (ft_stopped(&f->bar, nth, &f->status))
		return 1;
	matmul_plan_run(&f->plan, id);
	ft_wait(&f->bar, nth);
	return 0;
}

/* Thread 0: a stop request ends the pass at the next product. */
static void
ft_check_stop(struct ft *f, atomic_int *stop)
{
	if (STOPPED(stop))
		atomic_store_explicit(&f->status, 1, memory_order_relaxed);
}

int
forward_token(const struct model *m, struct kv_cache *kv, struct run_state *s, int32_t token, int pos,
    atomic_int *stop)
{
	const struct model_config *c = &m->cfg;
	const int dim = c->dim, hidden = c->hidden_dim, nt = omp_get_max_threads();
	struct ft f;
	f.s = s;
	atomic_init(&f.bar.count, 0);
	atomic_init(&f.bar.gen, 0);
	atomic_init(&f.status, 0);
	const int cores = ft_cores();
	f.bar.spin = cores > 0 && nt > cores ? 64 : 1u << 16;

	forward_embed(m, token, s->x);
	vec_rope_table(s->rope_cs, c->rope_dim, pos, s->rope_scale, m->rope_freqs.data);

	#pragma omp parallel num_threads(nt)
	{
		const int id = omp_get_thread_num(), nth = omp_get_num_threads();
		int l;
		for (l = 0; l < c->n_layers; l++) {
			const struct layer *L = &m->layers[l];
			const struct mm qkv[3] = { { s->q, &L->wq }, { s->k, &L->wk }, { s->v, &L->wv } };
			const struct mm wo = { s->xb2, &L->wo }, down = { s->xb2, &L->w_down };
			const struct mm gu[2] = { { s->hb, &L->w_gate }, { s->hb2, &L->w_up } };
			/* Attention: its norm, then Q, K and V. */
			if (id == 0) {
				ft_check_stop(&f, stop);
				forward_rmsnorm(s->xb, s->x, L->attn_norm.data, dim, c->norm_eps);
			}
			if (ft_product(&f, id, nth, qkv, 3, s->xb))
				break;
			/* One KV head at a time, in turn to each thread: RoPE on its
			 * queries and key, its K and V cached, its attention (which
			 * reads no other head's, so needs no barrier before it). */
			for (int g = id; g < c->n_kv_heads; g += nth) {
				forward_rope_store(m, kv, s, l, 0, pos, g, g + 1);
				forward_attn_item(m, kv, s, l, g, 0, 1, 1, pos, id);
			}
			ft_wait(&f.bar, nth);
			if (id == 0)
				ft_check_stop(&f, stop);
			if (ft_product(&f, id, nth, &wo, 1, s->xb))
				break;
			/* Residual, the feed-forward's norm, gate and up, down. */
			if (id == 0) {
				vec_add(s->x, s->xb2, (size_t)dim);
				forward_rmsnorm(s->xb, s->x, L->ffn_norm.data, dim, c->norm_eps);
			}
			if (ft_product(&f, id, nth, gu, 2, s->xb))
				break;
			if (id == 0)
				vec_swiglu(s->hb, s->hb2, (size_t)hidden);
			if (ft_product(&f, id, nth, &down, 1, s->hb))
				break;
			if (id == 0)
				vec_add(s->x, s->xb2, (size_t)dim);
		}
		/* The logits, unless the loop was left early (all threads left
		 * it at the same barrier, so all agree on l). */
		if (l == c->n_layers) {
			const struct mm out = { s->logits, &m->output };
			if (id == 0)
				forward_rmsnorm(s->xb, s->x, m->out_norm.data, dim, c->norm_eps);
			ft_product(&f, id, nth, &out, 1, s->xb);
		}
	}
	return atomic_load_explicit(&f.status, memory_order_relaxed);
}
