/*
 * errf.h: the one way a failure becomes a message for the caller
 * (common/errf.c): a malloc'd line in *err.  Each layer names it its own
 * way (eng_errf in engine/errf.h, db_errf in storage/db_int.h), and both
 * are this.
 */
#ifndef COMMON_ERRF_H
#define COMMON_ERRF_H

#include <stdarg.h>

/*
 * *err = the formatted message as one printable line (when err is not
 * NULL): whatever it quotes from a file or from SQLite cannot break the
 * line or send control codes to a terminal (newlines and tabs become
 * spaces, other control bytes '?').  Returns -1, for `return errf_set(...)`.
 */
int errf_set(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int errf_vset(char **err, const char *fmt, va_list ap);

#endif
