/*
 * Time: int64_t nanoseconds on CLOCK_MONOTONIC.  Sums saturate so that
 * "now + a very long timeout" means "never" instead of wrapping negative.
 */
#include <time.h>

#include "base/base.h"

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

/*
 * Whether `deadline` is certainly still ahead, from CLOCK_MONOTONIC_COARSE
 * (about 5 ns here, where CLOCK_MONOTONIC takes about 20).  The coarse
 * clock is CLOCK_MONOTONIC as of the last tick: never ahead of it, behind
 * by at most a tick or so.  A margin of a few ticks makes "coarse + margin
 * < deadline" imply "now < deadline"; near the deadline the caller reads
 * the precise clock.
 */
static _Atomic int64_t coarse_margin; /* 0 until measured */

static int64_t margin(void)
{
	int64_t m = atomic_load_explicit(&coarse_margin, memory_order_relaxed);
	if (__builtin_expect(m == 0, 0)) {
		struct timespec res = { 0, 10 * CTX_MSEC };
		clock_getres(CLOCK_MONOTONIC_COARSE, &res);
		m = 4 * ((int64_t)res.tv_sec * CTX_SEC + res.tv_nsec) + CTX_MSEC;
		atomic_store_explicit(&coarse_margin, m, memory_order_relaxed);
	}
	return m;
}

bool ctx__surely_before(int64_t deadline)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return false;
	int64_t coarse = (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
	return ctx__add_sat(coarse, margin()) < deadline;
}
