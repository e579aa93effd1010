/*
 * Wait groups (ctx_wg_*), beyond the contract every blocking call keeps
 * (tests/contract.c): a counter at zero, one that is still up after a
 * done, many waiters woken or cancelled together, many workers, and a
 * counter driven below zero.
 *
 * Assertions are made on the test's own thread only: waiters record what
 * they saw and the test checks it after joining them.  Timing bounds are
 * loose on purpose (the machine is shared).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

#define LONG_WAIT (10 * CTX_SEC) /* "forever", as far as a test goes */
#define SLOW_MS 2000.0           /* a wait that should be quick took this */

/* ---- wait groups ----------------------------------------------------- */

/* A counter at zero: wait returns 0 at once. */
START_TEST(test_wg_zero)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	int64_t t0 = ctx_now();

	ck_assert_ptr_nonnull(wg);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ck_assert_int_eq(ctx_wg_wait(c, wg), 0);
	ctx_wg_add(wg, 3);
	ctx_wg_add(wg, -3);
	ck_assert_int_eq(ctx_wg_wait(c, wg), 0);
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

/* A wait with a timeout while the counter is up ends with the deadline;
 * once the counter reaches zero it returns 0. */
START_TEST(test_wg_timeout)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c;
	int64_t t0;

	ctx_wg_add(wg, 2);
	t0 = ctx_now();
	c = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	ck_assert_int_eq(ctx_wg_wait(c, wg), CTX_DEADLINE_EXCEEDED);
	ck_assert_double_ge(tu_ms_since(t0), 25.0);
	ctx_release(c);

	ctx_wg_done(wg);
	c = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	ck_assert_int_eq(ctx_wg_wait(c, wg), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	ctx_wg_done(wg);
	c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	ck_assert_int_eq(ctx_wg_wait(c, wg), 0);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

/* Waiters parked on a wait group, each recording its result and time. */
struct wg_waiter {
	pthread_t tid;
	ctx_wg_t *wg;
	ctx_t *ctx;
	int64_t t0;
	int err;
	double ms;
};

static void *wg_waiter_main(void *p)
{
	struct wg_waiter *w = p;

	w->err = ctx_wg_wait(w->ctx, w->wg);
	w->ms = tu_ms_since(w->t0);
	return NULL;
}

#define WAITERS 4

static void start_waiters(struct wg_waiter *w, ctx_wg_t *wg, ctx_t *ctx)
{
	int64_t t0 = ctx_now();

	for (int i = 0; i < WAITERS; i++) {
		w[i] = (struct wg_waiter){ .wg = wg, .ctx = ctx, .t0 = t0,
					   .err = -1 };
		ck_assert_int_eq(pthread_create(&w[i].tid, NULL,
						wg_waiter_main, &w[i]), 0);
	}
}

static void join_waiters(struct wg_waiter *w)
{
	for (int i = 0; i < WAITERS; i++)
		ck_assert_int_eq(pthread_join(w[i].tid, NULL), 0);
}

/* Every parked waiter wakes when the counter reaches zero. */
START_TEST(test_wg_wakes_all)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct wg_waiter w[WAITERS];

	ctx_wg_add(wg, 2);
	start_waiters(w, wg, c);
	tu_sleep_ns(30 * CTX_MSEC);
	ctx_wg_done(wg);
	tu_sleep_ns(10 * CTX_MSEC);
	ctx_wg_done(wg);
	join_waiters(w);
	for (int i = 0; i < WAITERS; i++) {
		ck_assert_int_eq(w[i].err, 0);
		ck_assert_double_ge(w[i].ms, 35.0);
		ck_assert_double_lt(w[i].ms, SLOW_MS);
	}
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

/* Cancelling the waiters' context releases them; the counter is kept. */
START_TEST(test_wg_cancel_wait)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *short_ctx;
	struct wg_waiter w[WAITERS];

	ctx_wg_add(wg, 1);
	start_waiters(w, wg, c);
	tu_sleep_ns(20 * CTX_MSEC);
	ctx_cancel(c);
	join_waiters(w);
	for (int i = 0; i < WAITERS; i++) {
		ck_assert_int_eq(w[i].err, CTX_CANCELED);
		ck_assert_double_ge(w[i].ms, 15.0);
		ck_assert_double_lt(w[i].ms, SLOW_MS);
	}
	short_ctx = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
	ck_assert_int_eq(ctx_wg_wait(short_ctx, wg), CTX_DEADLINE_EXCEEDED);
	ctx_wg_done(wg);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ctx_release(short_ctx);
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

/* Many workers, each counting itself before it calls done: the wait
 * returns only after every increment. */
struct wg_work {
	ctx_wg_t *wg;
	atomic_int count;
};

static void *wg_worker(ctx_t *ctx, void *arg)
{
	struct wg_work *w = arg;

	ctx_sleep(ctx, CTX_MSEC);
	atomic_fetch_add(&w->count, 1);
	ctx_wg_done(w->wg);
	return NULL;
}

#define WORKERS 64

START_TEST(test_wg_many_workers)
{
	int base = tu_count_threads();
	struct wg_work w = { .wg = ctx_wg_new() };
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);

	ctx_wg_add(w.wg, WORKERS);
	for (int i = 0; i < WORKERS; i++) {
		ctx_thread_t *t;

		ck_assert_int_eq(ctx_thread_create(&t, c, wg_worker, &w), 0);
		ck_assert_int_eq(ctx_thread_detach(t), 0);
	}
	ck_assert_int_eq(ctx_wg_wait(c, w.wg), 0);
	ck_assert_int_eq(atomic_load(&w.count), WORKERS);
	ck_assert_int_eq(tu_settle_threads(base, 5 * CTX_SEC), base);
	ctx_release(c);
	ctx_wg_free(w.wg);
}
END_TEST

/* Run fn with stderr going to a pipe; what it wrote, in buf. */
static void capture_stderr(void (*fn)(void *), void *arg, char *buf,
			   size_t len)
{
	int p[2], saved;
	ssize_t n;

	fflush(stderr);
	ck_assert_int_eq(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
	close(p[1]);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO); /* the pipe's last writer is gone */
	close(saved);
	n = read(p[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(p[0]);
}

static void wg_underflow(void *wg)
{
	ctx_wg_add(wg, -2);
}

/* A counter driven below zero is reported, wakes the waiters with EINVAL
 * and makes every later wait fail with EINVAL. */
START_TEST(test_wg_negative)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct wg_waiter w[WAITERS];
	char msg[256];

	ctx_wg_add(wg, 1);
	start_waiters(w, wg, c);
	tu_sleep_ns(20 * CTX_MSEC);
	capture_stderr(wg_underflow, wg, msg, sizeof(msg));
	join_waiters(w);
	for (int i = 0; i < WAITERS; i++) {
		ck_assert_int_eq(w[i].err, EINVAL);
		ck_assert_double_lt(w[i].ms, SLOW_MS);
	}
	ck_assert_msg(strstr(msg, "negative") != NULL, "stderr: \"%s\"", msg);
	ck_assert_int_eq(ctx_wg_wait(c, wg), EINVAL);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), EINVAL);
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

static void wg_done_at_zero(void *wg)
{
	ctx_wg_done(wg);
}

/* done on a fresh group is the same mistake. */
START_TEST(test_wg_done_at_zero)
{
	ctx_wg_t *wg = ctx_wg_new();
	char msg[256];

	capture_stderr(wg_done_at_zero, wg, msg, sizeof(msg));
	ck_assert_msg(strstr(msg, "negative") != NULL, "stderr: \"%s\"", msg);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), EINVAL);
	ctx_wg_free(wg);
}
END_TEST

START_TEST(test_wg_null)
{
	ctx_wg_t *wg = ctx_wg_new();

	ck_assert_int_eq(ctx_wg_wait(NULL, wg), EINVAL);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), NULL), EINVAL);
	ctx_wg_add(NULL, 1); /* these must simply do nothing */
	ctx_wg_done(NULL);
	ctx_wg_free(NULL);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ctx_wg_free(wg);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */

Suite *suite_wg(void)
{
	Suite *s = suite_create("wg");
	TCase *tc;

	tc = tu_tcase(s, "wg", 30);
	tu_add_tests(tc, test_wg_zero, test_wg_timeout, test_wg_wakes_all,
		     test_wg_cancel_wait, test_wg_many_workers,
		     test_wg_negative, test_wg_done_at_zero, test_wg_null);

	return s;
}
