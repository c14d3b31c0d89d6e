/*
 * clock.c: monotonic milliseconds (see clock.h): timings of the engine,
 * the save interval of a streaming reply, the interface's frames and
 * notices.  Wall-clock times (what the database stores) are not this.
 */
#include "common/clock.h"

#include <time.h>

double
clock_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
