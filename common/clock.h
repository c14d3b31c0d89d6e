/*
 * clock.h: the one clock for durations and timeouts (common/clock.c).
 */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

/* Milliseconds on the monotonic clock (never jumps with the wall clock). */
double clock_now_ms(void);

#endif
