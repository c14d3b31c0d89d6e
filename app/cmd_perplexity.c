/*
 * cmd_perplexity.c: `llama2-chat perplexity -m MODEL -f TEXT`: a model's
 * loss on a text, computed as llama.cpp b4748's llama-perplexity does so
 * that the numbers compare with the ones people publish:
 *
 *   the text is tokenized once with BOS in front; it is cut into
 *   floor(n_tokens / N) chunks of N = --ctx-size tokens (at most --chunks),
 *   each run from an empty cache with its first token replaced by BOS;
 *   only the second half is scored: the logits at positions N/2 .. N-2
 *   against the tokens that follow them (N - N/2 - 1 per chunk), so every
 *   scored token has at least N/2 tokens of context.  nll = -log softmax,
 *   summed in double; after each chunk "[i]exp(mean nll)," is printed; at
 *   the end PPL = exp(mean) with the standard error ppl * sqrt(var / (n-1))
 *   of the per-token nll (llama.cpp's formula).
 *
 * --save-logits FILE keeps, for every scored token, the model's log-
 * probabilities (uint16 over the 16 nats below the top one, as llama.cpp's
 * --kl-divergence-base does; anything lower is clipped) with the tokens
 * and the shape; --kl-divergence --logits-base FILE compares the model
 * with that reference on the same tokens: KL divergence, the change in the
 * probability of the right token, and how often the top token agrees.
 * The file starts "L2CLOGIT", u32 version 1, u32 n_vocab, u32 n_ctx, u32
 * n_chunk, then n_ctx * n_chunk int32 tokens, then per scored token three
 * floats (lo, hi, the exact log-probability of the right token) and
 * n_vocab uint16 (lo + (hi - lo) * q / 65535).
 */
#include "app/cmd_tools.h"
#include "engine/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PPL_MAGIC "L2CLOGIT"
#define PPL_VERSION 1
#define PPL_LOG_RANGE 16.0f

struct ppl_opts {
	const char *model, *text, *save, *base;
	int n_ctx, n_batch, n_chunks, n_threads, kld;
};

static void
ppl_help(FILE *f)
{
	fputs("usage: llama2-chat perplexity -m MODEL -f TEXT [options]\n"
	    "\n"
	    "The model's perplexity on a text, computed as llama.cpp's llama-perplexity\n"
	    "does: chunks of --ctx-size tokens, each scored on its second half.\n"
	    "\n"
	    "options:\n"
	    "  -m, --model FILE        the model (GGUF or llama2.c)\n"
	    "  -f, --file FILE         the text (at least two chunks of tokens)\n"
	    "  -c, --ctx-size N        tokens per chunk (default 512)\n"
	    "  -b, --batch-size N      tokens per forward pass (default: the chunk)\n"
	    "      --chunks K          score at most K chunks (default: all)\n"
	    "  -t, --threads N         threads (default: the physical cores)\n"
	    "      --save-logits FILE  keep this run's probabilities, as the reference\n"
	    "                          for a later --kl-divergence run\n"
	    "      --kl-divergence     compare with --logits-base: KL divergence,\n"
	    "                          token probability change, top-token agreement\n"
	    "      --logits-base FILE  the file --save-logits wrote (-f may then be left out)\n"
	    "  -h, --help              this help\n", f);
}

static double
ppl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The whole file, NUL-terminated; NULL with errno. */
static char *
ppl_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf != NULL && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			char *nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (buf == NULL || bad) {
		free(buf);
		errno = bad ? EIO : ENOMEM;
		return NULL;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* log softmax of logits at tok, the way llama.cpp sums it: float max,
 * double sum of expf(l - max). */
static double
ppl_log_softmax(const float *logits, int n_vocab, int tok, double *log_sum, float *max_out)
{
	float max = logits[0];
	for (int i = 1; i < n_vocab; i++)
		if (logits[i] > max)
			max = logits[i];
	double sum = 0;
	for (int i = 0; i < n_vocab; i++)
		sum += expf(logits[i] - max);
	*log_sum = log(sum);
	*max_out = max;
	return logits[tok] - max - *log_sum;
}

/* ---- the logits file ---- */

struct ppl_base {
	FILE *f;
	uint32_t n_vocab, n_ctx, n_chunk;
	int32_t *tokens;
	uint16_t *q;              /* one token's row */
};

static int
ppl_base_open(struct ppl_base *b, const char *path)
{
	memset(b, 0, sizeof *b);
	b->f = fopen(path, "rb");
	if (b->f == NULL)
		return cmd_tools_fail("%s: %s", path, strerror(errno));
	char magic[8];
	uint32_t h[4];
	if (fread(magic, 1, 8, b->f) != 8 || memcmp(magic, PPL_MAGIC, 8) != 0 ||
	    fread(h, 4, 4, b->f) != 4)
		return cmd_tools_fail("%s: not a logits file written by 'llama2-chat perplexity --save-logits'", path);
	if (h[0] != PPL_VERSION)
		return cmd_tools_fail("%s: logits file version %u, this program reads version %d", path, h[0], PPL_VERSION);
	b->n_vocab = h[1];
	b->n_ctx = h[2];
	b->n_chunk = h[3];
	if (b->n_vocab == 0 || b->n_vocab > (1u << 24) || b->n_ctx < 4 || b->n_ctx > (1u << 20) ||
	    b->n_chunk == 0 || (uint64_t)b->n_ctx * b->n_chunk > (1u << 28))
		return cmd_tools_fail("%s: corrupt logits file header", path);
	size_t nt = (size_t)b->n_ctx * b->n_chunk;
	b->tokens = malloc(nt * sizeof *b->tokens);
	b->q = malloc(b->n_vocab * sizeof *b->q);
	if (b->tokens == NULL || b->q == NULL)
		return cmd_tools_fail("out of memory");
	if (fread(b->tokens, sizeof *b->tokens, nt, b->f) != nt)
		return cmd_tools_fail("%s: truncated logits file", path);
	return 0;
}

static void
ppl_base_close(struct ppl_base *b)
{
	if (b->f)
		fclose(b->f);
	free(b->tokens);
	free(b->q);
}

/* The next token's log-probabilities into lp (renormalised, so that the
 * clipping and rounding do not bias the KL divergence) and the exact one of
 * the right token into *lp_tok; -1 when the file is short. */
static int
ppl_base_next(struct ppl_base *b, float *lp, float *lp_tok)
{
	float r[3];
	if (fread(r, 4, 3, b->f) != 3 || fread(b->q, 2, b->n_vocab, b->f) != b->n_vocab)
		return -1;
	const float step = (r[1] - r[0]) / 65535.0f;
	double sum = 0;
	for (uint32_t i = 0; i < b->n_vocab; i++) {
		lp[i] = r[0] + step * b->q[i];
		sum += exp(lp[i]);
	}
	const float shift = (float)log(sum);
	for (uint32_t i = 0; i < b->n_vocab; i++)
		lp[i] -= shift;
	*lp_tok = r[2];
	return 0;
}

static int
ppl_save_row(FILE *f, const float *logits, int n_vocab, float max, double log_sum, int tok, uint16_t *q)
{
	const float hi = (float)(-log_sum), lo = hi - PPL_LOG_RANGE;
	const float inv = 65535.0f / PPL_LOG_RANGE;
	for (int i = 0; i < n_vocab; i++) {
		float lp = (float)(logits[i] - max - log_sum);
		float v = (lp - lo) * inv;
		q[i] = (uint16_t)(v <= 0 ? 0 : v >= 65535.0f ? 65535 : lrintf(v));
	}
	const float r[3] = { lo, hi, (float)(logits[tok] - max - log_sum) };
	return fwrite(r, 4, 3, f) == 3 && fwrite(q, 2, (size_t)n_vocab, f) == (size_t)n_vocab ? 0 : -1;
}

/* ---- statistics ---- */

static int
ppl_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
ppl_pct(const double *v, size_t n, double f)
{
	size_t i = (size_t)(f * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void
ppl_mean_err(const double *v, size_t n, double *mean, double *err)
{
	double s = 0, s2 = 0;
	for (size_t i = 0; i < n; i++) {
		s += v[i];
		s2 += v[i] * v[i];
	}
	*mean = s / (double)n;
	double var = s2 / (double)n - *mean * *mean;
	*err = n > 1 && var > 0 ? sqrt(var / (double)(n - 1)) : 0;
}

struct ppl_kld {
	double *kld, *dp, *nll_base;
	size_t n, same_top;
};

static void
ppl_kld_report(struct ppl_kld *k, const double *nll, size_t n)
{
	double m, e, mb, eb;
	ppl_mean_err(nll, n, &m, &e);
	ppl_mean_err(k->nll_base, n, &mb, &eb);
	double *ratio = malloc(n * sizeof *ratio);
	if (ratio == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		ratio[i] = nll[i] - k->nll_base[i];
	double mr, er;
	ppl_mean_err(ratio, n, &mr, &er);
	free(ratio);
	printf("\n====== Perplexity statistics ======\n");
	printf("Mean PPL(Q)                   : %10.6f +/- %10.6f\n", exp(m), exp(m) * e);
	printf("Mean PPL(base)                : %10.6f +/- %10.6f\n", exp(mb), exp(mb) * eb);
	printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f +/- %10.6f\n", mr, er);
	printf("Mean PPL(Q)/PPL(base)         : %10.6f +/- %10.6f\n", exp(mr), exp(mr) * er);

	double km, ke;
	ppl_mean_err(k->kld, n, &km, &ke);
	qsort(k->kld, n, sizeof *k->kld, ppl_cmp_double);
	printf("\n====== KL divergence statistics ======\n");
	printf("Mean    KLD: %10.6f +/- %10.6f\n", km, ke);
	printf("Maximum KLD: %10.6f\n", k->kld[n - 1]);
	printf("99.9%%   KLD: %10.6f\n", ppl_pct(k->kld, n, 0.999));
	printf("99.0%%   KLD: %10.6f\n", ppl_pct(k->kld, n, 0.99));
	printf("Median  KLD: %10.6f\n", ppl_pct(k->kld, n, 0.5));
	printf("10.0%%   KLD: %10.6f\n", ppl_pct(k->kld, n, 0.1));
	printf(" 5.0%%   KLD: %10.6f\n", ppl_pct(k->kld, n, 0.05));
	printf(" 1.0%%   KLD: %10.6f\n", ppl_pct(k->kld, n, 0.01));
	printf("Minimum KLD: %10.6f\n", k->kld[0]);

	double pm, pe, s2 = 0;
	ppl_mean_err(k->dp, n, &pm, &pe);
	for (size_t i = 0; i < n; i++)
		s2 += k->dp[i] * k->dp[i];
	const double rms = sqrt(s2 / (double)n);
	qsort(k->dp, n, sizeof *k->dp, ppl_cmp_double);
	static const struct { const char *label; double f; } pcts[] = {
		{ "99.9%  ", 0.999 }, { "99.0%  ", 0.99 }, { "95.0%  ", 0.95 }, { "90.0%  ", 0.90 },
		{ "75.0%  ", 0.75 }, { "Median ", 0.5 }, { "25.0%  ", 0.25 }, { "10.0%  ", 0.10 },
		{ " 5.0%  ", 0.05 }, { " 1.0%  ", 0.01 }, { " 0.1%  ", 0.001 },
	};
	printf("\n====== Token probability statistics ======\n");
	printf("Mean    Δp: %8.3f +/- %6.3f %%\n", 100 * pm, 100 * pe);
	printf("Maximum Δp: %8.3f%%\n", 100 * k->dp[n - 1]);
	for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
		printf("%s Δp: %8.3f%%\n", pcts[i].label, 100 * ppl_pct(k->dp, n, pcts[i].f));
	printf("Minimum Δp: %8.3f%%\n", 100 * k->dp[0]);
	printf("RMS Δp    : %8.3f %%\n", 100 * rms);
	const double p = (double)k->same_top / (double)n;
	printf("Same top p: %8.3f +/- %6.3f %%\n", 100 * p, n > 1 ? 100 * sqrt(p * (1 - p) / (double)(n - 1)) : 0.0);
}

/* ---- the command ---- */

static int
ppl_parse(struct ppl_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "file", required_argument, NULL, 'f' },
		{ "ctx-size", required_argument, NULL, 'c' },
		{ "batch-size", required_argument, NULL, 'b' },
		{ "chunks", required_argument, NULL, 'K' },
		{ "threads", required_argument, NULL, 't' },
		{ "save-logits", required_argument, NULL, 'S' },
		{ "kl-divergence", no_argument, NULL, 'D' },
		{ "logits-base", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "+:m:f:c:b:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'f': o->text = optarg; break;
		case 'S': o->save = optarg; break;
		case 'B': o->base = optarg; break;
		case 'D': o->kld = 1; break;
		case 'c':
			if (cmd_tools_int(optarg, 4, 1 << 20, &o->n_ctx) != 0)
				return cmd_tools_usage("perplexity", "--ctx-size: '%s' is not a number from 4 up", optarg);
			break;
		case 'b':
			if (cmd_tools_int(optarg, 1, 1 << 20, &o->n_batch) != 0)
				return cmd_tools_usage("perplexity", "--batch-size: '%s' is not a positive number", optarg);
			break;
		case 'K':
			if (cmd_tools_int(optarg, 1, 1 << 30, &o->n_chunks) != 0)
				return cmd_tools_usage("perplexity", "--chunks: '%s' is not a positive number", optarg);
			break;
		case 't':
			if (cmd_tools_int(optarg, 1, 1024, &o->n_threads) != 0)
				return cmd_tools_usage("perplexity", "--threads: '%s' is not a number from 1 to 1024", optarg);
			break;
		case 'h':
			ppl_help(stdout);
			return -1;
		case ':':
			return cmd_tools_usage("perplexity", "%s needs a value", argv[optind - 1]);
		default:
			return cmd_tools_usage("perplexity", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_tools_usage("perplexity", "unexpected argument '%s'", argv[optind]);
	if (o->model == NULL)
		return cmd_tools_usage("perplexity", "-m MODEL is required");
	if (o->kld && o->base == NULL)
		return cmd_tools_usage("perplexity", "--kl-divergence needs --logits-base FILE");
	if (o->base != NULL && !o->kld)
		return cmd_tools_usage("perplexity", "--logits-base is for --kl-divergence");
	if (o->kld && o->save != NULL)
		return cmd_tools_usage("perplexity", "--save-logits and --kl-divergence do not go together");
	if (o->text == NULL && !o->kld)
		return cmd_tools_usage("perplexity", "-f TEXT is required");
	return 0;
}

int
cmd_perplexity(int argc, char **argv)
{
	struct ppl_opts o = { .n_ctx = 0 };
	int rc = ppl_parse(&o, argc, argv);
	if (rc != 0)
		return rc < 0 ? 0 : rc;

	struct ppl_base base = { 0 };
	struct engine_model *m = NULL;
	struct engine_ctx *c = NULL;
	char *text = NULL, *err = NULL;
	int32_t *tokens = NULL, *chunk = NULL;
	float *lp_base = NULL;
	double *nll_v = NULL;
	struct ppl_kld k = { 0 };
	FILE *save = NULL;
	uint16_t *qrow = NULL;
	rc = 1;

	if (o.kld && ppl_base_open(&base, o.base) != 0)
		goto done;
	if (o.kld) {
		if (o.n_ctx != 0 && (uint32_t)o.n_ctx != base.n_ctx) {
			cmd_tools_fail("%s: made with --ctx-size %u, not %d", o.base, base.n_ctx, o.n_ctx);
			goto done;
		}
		o.n_ctx = (int)base.n_ctx;
	}
	if (o.n_ctx == 0)
		o.n_ctx = 512;

	m = engine_open(o.model, NULL, &err);
	if (m == NULL) {
		cmd_tools_fail("%s: %s", o.model, err ? err : "cannot open");
		goto done;
	}
	const struct engine_info *info = engine_info(m);
	const int n_vocab = info->n_vocab;
	if (info->n_ctx_train > 0 && o.n_ctx > info->n_ctx_train) {
		cmd_tools_fail("--ctx-size %d is larger than the model's context (%d tokens)", o.n_ctx, info->n_ctx_train);
		goto done;
	}

	int n_tok;
	if (o.text != NULL) {
		size_t len;
		text = ppl_read_file(o.text, &len);
		if (text == NULL) {
			cmd_tools_fail("%s: %s", o.text, strerror(errno));
			goto done;
		}
		n_tok = engine_tokenize(m, text, len, 1, &tokens);
		if (n_tok < 0) {
			cmd_tools_fail("out of memory");
			goto done;
		}
	} else {
		n_tok = (int)(base.n_ctx * base.n_chunk);
		tokens = malloc((size_t)n_tok * sizeof *tokens);
		if (tokens == NULL) {
			cmd_tools_fail("out of memory");
			goto done;
		}
		memcpy(tokens, base.tokens, (size_t)n_tok * sizeof *tokens);
	}
	if (n_tok < 2 * o.n_ctx) {
		cmd_tools_fail("%s: %d tokens, but --ctx-size %d needs at least %d (two chunks)",
		    o.text ? o.text : o.base, n_tok, o.n_ctx, 2 * o.n_ctx);
		goto done;
	}
	int n_chunk = n_tok / o.n_ctx;
	if (o.n_chunks > 0 && o.n_chunks < n_chunk)
		n_chunk = o.n_chunks;
	if (o.kld) {
		if ((uint32_t)n_vocab != base.n_vocab) {
			cmd_tools_fail("%s: made with a model of %u tokens, this one has %d", o.base, base.n_vocab, n_vocab);
			goto done;
		}
		if ((uint32_t)n_chunk > base.n_chunk)
			n_chunk = (int)base.n_chunk;
		if (memcmp(tokens, base.tokens, (size_t)n_chunk * (size_t)o.n_ctx * sizeof *tokens) != 0) {
			cmd_tools_fail("%s: made from another text (or tokenizer): the tokens differ", o.base);
			goto done;
		}
	}

	struct engine_ctx_params cp;
	engine_ctx_params_default(&cp);
	cp.n_ctx = o.n_ctx;
	cp.n_threads = o.n_threads;
	cp.n_batch = o.n_batch > 0 && o.n_batch < o.n_ctx ? o.n_batch : o.n_ctx;
	c = engine_ctx_new(m, &cp, &err);
	if (c == NULL) {
		cmd_tools_fail("%s: %s", o.model, err ? err : "cannot make a context");
		goto done;
	}
	const int first = o.n_ctx / 2;
	const int per_chunk = o.n_ctx - first - 1;
	const size_t n_scored = (size_t)n_chunk * (size_t)per_chunk;
	chunk = malloc((size_t)o.n_ctx * sizeof *chunk);
	nll_v = malloc(n_scored * sizeof *nll_v);
	if (chunk == NULL || nll_v == NULL) {
		cmd_tools_fail("out of memory");
		goto done;
	}
	if (o.kld) {
		lp_base = malloc((size_t)n_vocab * sizeof *lp_base);
		k.kld = malloc(n_scored * sizeof *k.kld);
		k.dp = malloc(n_scored * sizeof *k.dp);
		k.nll_base = malloc(n_scored * sizeof *k.nll_base);
		if (lp_base == NULL || k.kld == NULL || k.dp == NULL || k.nll_base == NULL) {
			cmd_tools_fail("out of memory");
			goto done;
		}
	}
	if (o.save != NULL) {
		/* The tokens of the user's text: 0600, like every file we keep. */
		int fd = open(o.save, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		save = fd >= 0 ? fdopen(fd, "wb") : NULL;
		if (fd >= 0 && save == NULL)
			close(fd);
		qrow = malloc((size_t)n_vocab * sizeof *qrow);
		if (save == NULL || qrow == NULL) {
			cmd_tools_fail("%s: %s", o.save, strerror(errno));
			goto done;
		}
		uint32_t h[4] = { PPL_VERSION, (uint32_t)n_vocab, (uint32_t)o.n_ctx, (uint32_t)n_chunk };
		fwrite(PPL_MAGIC, 1, 8, save);
		fwrite(h, 4, 4, save);
		fwrite(tokens, sizeof *tokens, (size_t)n_chunk * (size_t)o.n_ctx, save);
	}

	const int tty = isatty(STDERR_FILENO);
	fprintf(stderr, "perplexity: %d tokens, %d chunks of %d, %d scored per chunk\n",
	    n_tok, n_chunk, o.n_ctx, per_chunk);
	double nll = 0, nll2 = 0;
	size_t count = 0;
	const double t0 = ppl_now();
	for (int i = 0; i < n_chunk; i++) {
		const int start = i * o.n_ctx;
		memcpy(chunk, tokens + start, (size_t)o.n_ctx * sizeof *chunk);
		chunk[0] = info->bos;
		engine_ctx_truncate(c, 0);
		int d = engine_decode(c, chunk, o.n_ctx, 1, &cmd_tools_stop, &err);
		if (d == 1 || cmd_tools_stop) {
			fprintf(stderr, "\nllama2-chat: perplexity: interrupted after %d of %d chunks\n", i, n_chunk);
			rc = 130;
			goto done;
		}
		if (d != 0) {
			cmd_tools_fail("%s: %s", o.model, err ? err : "decode failed");
			goto done;
		}
		for (int j = first; j < o.n_ctx - 1; j++) {
			const float *lg = engine_logits(c, j);
			const int tok = tokens[start + j + 1];
			double log_sum;
			float max;
			const double v = -ppl_log_softmax(lg, n_vocab, tok, &log_sum, &max);
			nll += v;
			nll2 += v * v;
			nll_v[count] = v;
			if (save != NULL && ppl_save_row(save, lg, n_vocab, max, log_sum, tok, qrow) != 0) {
				cmd_tools_fail("%s: write failed: %s", o.save, strerror(errno));
				goto done;
			}
			if (o.kld) {
				float lp_tok;
				if (ppl_base_next(&base, lp_base, &lp_tok) != 0) {
					cmd_tools_fail("%s: truncated logits file", o.base);
					goto done;
				}
				double kl = 0;
				int top_b = 0, top_q = 0;
				for (int t = 0; t < n_vocab; t++) {
					const double lq = lg[t] - max - log_sum;
					const double pb = exp(lp_base[t]);
					kl += pb * (lp_base[t] - lq);
					if (lp_base[t] > lp_base[top_b])
						top_b = t;
					if (lg[t] > lg[top_q])
						top_q = t;
				}
				k.kld[count] = kl;
				k.dp[count] = exp(-v) - exp(lp_tok);
				k.nll_base[count] = -lp_tok;
				if (top_b == top_q)
					k.same_top++;
			}
			count++;
		}
		if (i == 0 && tty) {
			const double per = ppl_now() - t0;
			fprintf(stderr, "perplexity: %.2f s per chunk, ETA %.0f s\n", per, per * (n_chunk - 1));
		}
		printf("[%d]%.4lf,", i + 1, exp(nll / (double)count));
		fflush(stdout);
	}
	printf("\n");
	{
		const double mean = nll / (double)count;
		const double ppl = exp(mean);
		double var = nll2 / (double)count - mean * mean;
		if (var > 0)
			printf("Final estimate: PPL = %.4lf +/- %.5lf\n", ppl, sqrt(var / (double)(count - 1)) * ppl);
		else
			printf("Final estimate: PPL = %.4lf (no spread in the log-probabilities)\n", ppl);
		printf("Mean NLL = %.6lf over %zu tokens (%.2f s)\n", mean, count, ppl_now() - t0);
	}
	if (o.kld) {
		k.n = count;
		ppl_kld_report(&k, nll_v, count);
	}
	if (save != NULL) {
		int bad = fclose(save) != 0;
		save = NULL;
		if (bad) {
			cmd_tools_fail("%s: write failed", o.save);
			goto done;
		}
	}
	rc = 0;
done:
	if (save != NULL) {
		fclose(save);
		unlink(o.save);
	}
	free(qrow);
	free(err);
	free(text);
	free(tokens);
	free(chunk);
	free(nll_v);
	free(lp_base);
	free(k.kld);
	free(k.dp);
	free(k.nll_base);
	ppl_base_close(&base);
	engine_ctx_free(c);
	engine_close(m);
	return rc;
}
