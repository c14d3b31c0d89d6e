/*
 * errf.c: the engine's one error formatter (see errf.h), common/errf.c's.
 */
#include "engine/errf.h"
#include "common/errf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int
eng_verrf(char **err, const char *fmt, va_list ap)
{
	return errf_vset(err, fmt, ap);
}

int
eng_errf(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	eng_verrf(err, fmt, ap);
	va_end(ap);
	return -1;
}
