/*
 * errf.c: the engine's one error formatter (see errf.h).
 */
#include "engine/errf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int
eng_verrf(char **err, const char *fmt, va_list ap)
{
	if (err == NULL)
		return -1;
	if (vasprintf(err, fmt, ap) < 0)
		*err = NULL;
	for (char *p = *err; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return -1;
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
