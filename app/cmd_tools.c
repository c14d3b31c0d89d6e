/*
 * cmd_tools.c: the entry of the model tools (see cmd_tools.h) and the bits
 * they share: messages, number parsing, and a SIGINT handler that only
 * raises a flag, so that quantize can remove its temporary file and
 * perplexity can stop between chunks, each exiting 130.
 */
#include "app/cmd_tools.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic int cmd_tools_stop;

static void
cmd_tools_on_sigint(int sig)
{
	(void)sig;
	cmd_tools_stop = 1;
}

int
cmd_tools_fail(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("llama2-chat: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int
cmd_tools_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "llama2-chat: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'llama2-chat %s --help')\n", cmd);
	return 2;
}

int
cmd_tools_int(const char *s, int lo, int hi, int *v)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || n < lo || n > hi)
		return -1;
	*v = (int)n;
	return 0;
}

/* SIGINT and SIGTERM only raise the flag; getopt starts afresh (GNU
 * full reset) and prints nothing: the messages are ours. */
static void
cmd_tools_setup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = cmd_tools_on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	optind = 0;
	opterr = 0;
}

int
cmd_tools_perplexity(const char *db, int argc, char **argv)
{
	(void)db;
	cmd_tools_setup();
	return cmd_perplexity(argc, argv);
}

int
cmd_tools_quantize(const char *db, int argc, char **argv)
{
	(void)db;
	cmd_tools_setup();
	return cmd_quantize(argc, argv);
}
