/*
 * errf.c: formatting a failure into a malloc'd one-line message (see
 * errf.h).  On out of memory *err is NULL, which every caller already
 * reads as "out of memory".
 */
#include "common/errf.h"

#include <stdio.h>
#include <stdlib.h>

int
errf_vset(char **err, const char *fmt, va_list ap)
{
	if (err == NULL)
		return -1;
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	for (char *p = *err; p != NULL && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\n' || c == '\r' || c == '\t')
			*p = ' ';
		else if (c < 0x20 || c == 0x7f)
			*p = '?';
	}
	return -1;
}

int
errf_set(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errf_vset(err, fmt, ap);
	va_end(ap);
	return -1;
}
