/*
 * num.h: numbers from text, whole-string and range-checked, once
 * (common/num.c): the command line, the config file, the settings table
 * and the storage commands all read numbers this way.
 */
#ifndef COMMON_NUM_H
#define COMMON_NUM_H

/* s is all a decimal integer within [lo, hi]: 0 and *out, or -1 (*out
 * untouched). */
int num_long(const char *s, long long lo, long long hi, long long *out);
/* s is all a finite number within [lo, hi]: 0 and *out, or -1. */
int num_double(const char *s, double lo, double hi, double *out);

#endif
