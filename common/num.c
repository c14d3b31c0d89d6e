/*
 * num.c: whole-string, range-checked number parsing (see num.h).  strtoll
 * and strtod accept leading white space and stop at the first stray byte;
 * both are refused here, as are overflow, NaN and infinities.
 */
#include "common/num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

int
num_long(const char *s, long long lo, long long hi, long long *out)
{
	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int
num_double(const char *s, double lo, double hi, double *out)
{
	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}
