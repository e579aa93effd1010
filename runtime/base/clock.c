/*
 * Time: int64_t nanoseconds on CLOCK_MONOTONIC.  Sums saturate so that
 * "now + a very long timeout" means "never" instead of wrapping negative.
 *
 * The manual clock (ctx_clock_manual, wait/clock.c): once it is on,
 * ctx_now reads a number that only ctx_clock_advance moves, so every
 * deadline, sleep and timeout of the library follows it.  With the real
 * clock a reading costs one relaxed load and a branch more than the
 * clock_gettime it always was.  The manual clock starts at the real
 * clock's reading and only moves forward, so time stays monotonic
 * across the switch.
 *
 * The manual clock's count of work in progress lives here too, below
 * everything that counts: the known threads that are not durably
 * blocked (wait/reactor.c) and the after-funcs queued for their runner
 * (core/after.c).  When it falls to zero, the hook that the wait layer
 * set (wait/clock.c) wakes ctx_clock_wait_idle's waiters or makes the
 * automatic jump.  The count changes under a lock of its own, a leaf:
 * nothing else is taken while it is held, and with the real clock it is
 * never taken at all.
 */
#include <time.h>

#include "base/base.h"

_Atomic bool ctx__manual;
static _Atomic int64_t manual_now;

static ctx__lock_t work_lock;
static _Atomic int at_work;
void (*ctx__clock_idle_hook)(void);

int64_t ctx__clock_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
}

int64_t ctx_now(void)
{
	/* Sequentially consistent where it counts: a waiter publishes its
	 * limit and then reads the time, an advance stores the time and
	 * then reads the limits (wait/clock.c). */
	if (__builtin_expect(ctx__clock_is_manual(), 0))
		return atomic_load(&manual_now);
	return ctx__clock_real();
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
 * the precise clock.  The manual clock is exact and as cheap: it answers.
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

static int64_t coarse(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) < 0)
		return INT64_MIN;
	return (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
}

bool ctx__surely_before(int64_t deadline)
{
	if (__builtin_expect(ctx__clock_is_manual(), 0))
		return atomic_load(&manual_now) < deadline;
	int64_t c = coarse();
	return c != INT64_MIN && ctx__add_sat(c, margin()) < deadline;
}

int64_t ctx__now_coarse(void)
{
	if (__builtin_expect(ctx__clock_is_manual(), 0))
		return atomic_load(&manual_now);
	return coarse();
}

/* ---- the manual clock ------------------------------------------------- */

bool ctx__clock_start(void)
{
	ctx__lock(&work_lock);
	bool was = atomic_load(&ctx__manual);
	if (!was) {
		atomic_store(&manual_now, ctx__clock_real());
		atomic_store(&at_work, 1); /* the caller */
		atomic_store(&ctx__manual, true);
	}
	ctx__unlock(&work_lock);
	return !was;
}

void ctx__clock_stop(void)
{
	ctx__lock(&work_lock);
	atomic_store(&ctx__manual, false);
	atomic_store(&at_work, 0);
	ctx__unlock(&work_lock);
}

void ctx__clock_forked(bool known)
{
	atomic_store(&work_lock.v, 0); /* another thread may have held it */
	atomic_store(&at_work, known ? 1 : 0);
}

int64_t ctx__clock_move(int64_t t)
{
	int64_t now = atomic_load(&manual_now);
	while (now < t && !atomic_compare_exchange_weak(&manual_now, &now, t))
		;
	return now < t ? t : now;
}

/* ---- the count of work in progress ------------------------------------ */

void ctx__clock_lock(void)
{
	ctx__lock(&work_lock);
}

void ctx__clock_unlock(void)
{
	ctx__unlock(&work_lock);
}

int ctx__clock_count(int delta)
{
	return atomic_fetch_add(&at_work, delta) + delta;
}

int ctx__clock_at_work(void)
{
	return atomic_load(&at_work);
}

bool ctx__clock_work_begin(void)
{
	if (!ctx__clock_is_manual())
		return false;
	ctx__lock(&work_lock);
	ctx__clock_count(1);
	ctx__unlock(&work_lock);
	return true;
}

void ctx__clock_work_end(void)
{
	ctx__lock(&work_lock);
	int n = ctx__clock_count(-1);
	ctx__unlock(&work_lock);
	if (n == 0)
		ctx__clock_idle();
}

void ctx__clock_idle(void)
{
	if (ctx__clock_idle_hook)
		ctx__clock_idle_hook();
}
