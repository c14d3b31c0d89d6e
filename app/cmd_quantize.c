/*
 * cmd_quantize.c: `llama2-chat quantize IN.gguf OUT.gguf TYPE`: the
 * options and the terminal face of engine/quantize.c.  A progress line per
 * tensor when stderr is a terminal; a one-line summary on stdout at the
 * end.
 */
#include "app/cmd_tools.h"
#include "engine/quantize.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
cmd_quantize_help(FILE *f)
{
	fprintf(f,
	    "usage: llama2-chat quantize [options] IN.gguf OUT.gguf TYPE\n"
	    "\n"
	    "Write a quantized copy of a GGUF model, with the per-tensor type choices\n"
	    "and block quantizers of llama.cpp's llama-quantize (no importance matrix).\n"
	    "TYPE (any case): %s.\n"
	    "The input holds F32, F16 or BF16 tensors; OUT is written to a temporary\n"
	    "file beside it and renamed when complete.\n"
	    "\n"
	    "options:\n"
	    "  -t, --threads N         threads over the rows of a tensor (default: all)\n"
	    "      --allow-requantize  accept already quantized input (it loses quality)\n"
	    "  -h, --help              this help\n", quantize_ftype_list());
}

struct cmd_quantize_prog {
	int tty;
};

static void
cmd_quantize_progress(void *ud, int i, int n, const char *name, int from, int to)
{
	struct cmd_quantize_prog *pr = ud;
	if (!pr->tty)
		return;
	fprintf(stderr, "\r\033[K[%d/%d] %.60s %s -> %s", i + 1, n, name,
	    quant_type_name(from), quant_type_name(to));
	fflush(stderr);
}

int
cmd_quantize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "allow-requantize", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct quantize_params p;
	memset(&p, 0, sizeof p);
	int c;
	while ((c = getopt_long(argc, argv, "+:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cmd_tools_int(optarg, 1, 1024, &p.n_threads) != 0)
				return cmd_tools_usage("quantize", "--threads: '%s' is not a number from 1 to 1024", optarg);
			break;
		case 'R':
			p.allow_requantize = 1;
			break;
		case 'h':
			cmd_quantize_help(stdout);
			return 0;
		case ':':
			return cmd_tools_usage("quantize", "%s needs a value", argv[optind - 1]);
		default:
			return cmd_tools_usage("quantize", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 3)
		return cmd_tools_usage("quantize", "expected IN.gguf OUT.gguf TYPE, got %d argument%s",
		    argc - optind, argc - optind == 1 ? "" : "s");
	const char *in = argv[optind], *out = argv[optind + 1], *tname = argv[optind + 2];
	p.ftype = quantize_ftype_parse(tname);
	if (p.ftype < 0)
		return cmd_tools_usage("quantize", "unknown type '%s' (one of %s)", tname, quantize_ftype_list());
	if (access(in, R_OK) != 0)
		return cmd_tools_fail("%s: cannot read: %m", in);

	struct cmd_quantize_prog pr = { .tty = isatty(STDERR_FILENO) };
	p.progress = cmd_quantize_progress;
	p.ud = &pr;
	p.stop = &cmd_tools_stop;
	if (p.allow_requantize)
		fprintf(stderr, "llama2-chat: warning: requantizing a quantized model loses more quality than quantizing its F16/F32 original\n");
	struct quantize_stats st;
	char *err = NULL;
	int rc = quantize_file(in, out, &p, &st, &err);
	if (pr.tty)
		fputs("\r\033[K", stderr);
	if (rc == 1) {
		fprintf(stderr, "llama2-chat: quantize: interrupted; %s not written\n", out);
		return 130;
	}
	if (rc != 0) {
		cmd_tools_fail("quantize: %s", err ? err : "failed");
		free(err);
		return 1;
	}
	printf("%s: %s, %d tensors (%d quantized%s), %.2f MiB -> %.2f MiB\n", out,
	    quantize_ftype_name(p.ftype), st.n_tensors, st.n_quantized,
	    st.n_fallback ? ", some with a fallback type" : "",
	    st.in_bytes / 1048576.0, st.out_bytes / 1048576.0);
	return 0;
}
