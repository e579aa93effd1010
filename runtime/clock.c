/*
 * Time: int64_t nanoseconds on CLOCK_MONOTONIC.  Sums saturate so that
 * "now + a very long timeout" means "never" instead of wrapping negative.
 */
#include <time.h>

#include "ctx-internal.h"

int64_t ctx_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
}

int64_t ctx__add_sat(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}
