/*
 * errf.h: how every engine file reports a failure: a malloc'd one-line
 * message for the caller, with whatever was quoted from a file (names,
 * strings) made printable, so that a hostile model file can neither break
 * the line nor send control codes to the user's terminal.
 */
#ifndef ENGINE_ERRF_H
#define ENGINE_ERRF_H

#include <stdarg.h>

/* *err = the formatted message (when err is not NULL); returns -1. */
int eng_errf(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int eng_verrf(char **err, const char *fmt, va_list ap);

#endif
