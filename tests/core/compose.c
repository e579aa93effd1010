/*
 * Contexts made of two (ctx_with_merge, ctx_with_grace): a merge ends
 * when either of its parents does, with that one's error, cause, words
 * and origin, and leaves nothing on either once released; a grace ends
 * a fixed time after its parent, or at once when cancelled itself.
 *
 * Timed checks leave wide margins: the machines that run this are
 * shared.  Waits for an end that must not come yet sleep with nanosleep
 * and then ask ctx_err, so that nothing of the test's own wait can be
 * what ends a context.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

#define SLOW (2 * CTX_SEC)

static char key_a, key_b;

/* ---- merge: which parent ends it ------------------------------------- */

START_TEST(test_merge_parent_ends_it)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_t *m = ctx_with_merge(p, o);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(ctx_err(m), 0);
	ck_assert_ptr_null(ctx_origin(m));
	ctx_cancel_cause(p, EPIPE);
	ck_assert_int_eq(ctx_err(m), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(m), EPIPE);
	ck_assert_str_eq(ctx_origin(m), ctx_origin(p));
	ck_assert_int_eq(ctx_err(o), 0); /* the other is not touched */
	ctx_release(m);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

/* The other's end reaches the merge before the cancel returns, words
 * and origin included; the parent stays live. */
START_TEST(test_merge_other_ends_it)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_t *ov = ctx_with_value(o, &key_b, "b"); /* under a value node */
	ctx_t *m = ctx_with_merge(p, ov);
	ctx_cancel_msg(o, ECONNRESET, "client %d left", 7);
	ck_assert_int_eq(ctx_err(m), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(m), ECONNRESET);
	ck_assert_str_eq(ctx_cause_msg(m), "client 7 left");
	ck_assert_str_eq(ctx_origin(m), ctx_origin(o));
	ck_assert_ptr_nonnull(strstr(ctx_origin(m), "ctx_cancel_msg"));
	ck_assert_int_eq(ctx_err(p), 0);
	ctx_release(m);
	ctx_release(ov);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

/* Cancelled itself it ends alone; its children end with it. */
START_TEST(test_merge_cancel_itself)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_t *m = ctx_with_merge(p, o);
	ctx_t *child = ctx_with_cancel(m);
	ctx_cancel_cause(m, 99);
	ck_assert_int_eq(ctx_err(child), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(child), 99);
	ck_assert_int_eq(ctx_err(p), 0);
	ck_assert_int_eq(ctx_err(o), 0);
	ctx_release(child);
	ctx_release(m);
	ctx_cancel(o); /* after the merge's end: nothing of it is left there */
	ctx_release(o);
	ctx_release(p);
}
END_TEST

/* Done at creation: with the end of whichever is done, the parent's if
 * both are. */
START_TEST(test_merge_done_at_creation)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_cancel_cause(o, 11);
	ctx_t *m1 = ctx_with_merge(p, o);
	ck_assert_int_eq(ctx_err(m1), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(m1), 11);
	ck_assert_str_eq(ctx_origin(m1), ctx_origin(o));
	ctx_cancel_cause(p, 22);
	ctx_t *m2 = ctx_with_merge(p, o);
	ck_assert_int_eq(ctx_cause(m2), 22);
	ck_assert_str_eq(ctx_origin(m2), ctx_origin(p));
	ctx_release(m2);
	ctx_release(m1);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

START_TEST(test_merge_null)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	errno = 0;
	ck_assert_ptr_null(ctx_with_merge(NULL, p));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_with_merge(p, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ctx_release(p);
}
END_TEST

/* Values from the parent's chain only; a root as the other never ends
 * it. */
START_TEST(test_merge_values)
{
	ctx_t *p = ctx_with_value(ctx_background(), &key_a, "a");
	ctx_t *o = ctx_with_value(ctx_background(), &key_b, "b");
	ctx_t *m = ctx_with_merge(p, o);
	ck_assert_str_eq(ctx_value(m, &key_a), "a");
	ck_assert_ptr_null(ctx_value(m, &key_b));
	ck_assert_int_eq(ctx_err(m), 0);
	ck_assert(!ctx_deadline(m, NULL));
	ctx_release(m);
	ck_assert_int_eq(ctx_err(p), 0);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

/* ---- merge: deadlines ------------------------------------------------- */

/* The earlier of the two, and a _cause deadline of the other's gives
 * the merge that cause. */
START_TEST(test_merge_deadline)
{
	int64_t now = ctx_now(), d;
	ctx_t *p = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	ctx_t *o = ctx_with_deadline_cause(ctx_background(),
					   now + 100 * CTX_MSEC, 77);
	ctx_t *m = ctx_with_merge(p, o);
	ck_assert(ctx_deadline(m, &d));
	ck_assert_int_eq(d, now + 100 * CTX_MSEC);
	ctx_t *m2 = ctx_with_merge(o, p); /* the other way round */
	ck_assert(ctx_deadline(m2, &d));
	ck_assert_int_eq(d, now + 100 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(m), CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(now), 95, 2000);
	ck_assert_int_eq(ctx_cause(m), 77);
	ck_assert_ptr_nonnull(strstr(ctx_origin(m), "deadline"));
	ck_assert_int_eq(ctx_err(p), 0);
	ctx_release(m2);
	ctx_release(m);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

static void count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* The other's deadline passes with nobody looking at either: the merge
 * still ends (its after-func runs). */
START_TEST(test_merge_deadline_unwatched)
{
	atomic_int runs = 0;
	ctx_t *o = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	ctx_t *m = ctx_with_merge(ctx_background(), o);
	ctx_after_t *a = ctx_after_func(m, count_fn, &runs);
	ck_assert_ptr_nonnull(a);
	int64_t end = ctx_now() + SLOW;
	while (!atomic_load(&runs) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&runs), 1);
	ck_assert_int_eq(ctx_err(m), CTX_DEADLINE_EXCEEDED);
	ck_assert(!ctx_after_stop(a));
	ctx_release(m);
	ctx_release(o);
}
END_TEST

/* A thread blocked in a read under the merge wakes when the other ends. */
START_TEST(test_merge_wakes_reader)
{
	int sv[2];
	char c;
	struct tu_canceller k;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_t *m = ctx_with_merge(p, o);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, o, 30 * CTX_MSEC);
	ssize_t n = ctx_read(m, sv[0], &c, 1);
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 20, 2000);
	tu_canceller_join(&k);
	ctx_release(m);
	ctx_release(o);
	ctx_release(p);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ---- merge: release and races ---------------------------------------- */

/* Many merges made and released on two long-lived parents leave nothing
 * there: the parents' ends afterwards reach no freed merge (the
 * sanitizer builds see any that did), and a merge freed without a
 * cancel (its last reference dropped while live) leaves nothing either. */
START_TEST(test_merge_release_detaches)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *o = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	for (int i = 0; i < 1000; i++) {
		ctx_t *m = ctx_with_merge(p, o);
		ck_assert_ptr_nonnull(m);
		if (i % 2)
			ctx_release(m);
		else
			ctx_unref(m);
	}
	ctx_t *kept = ctx_with_merge(p, o);
	ctx_cancel(o);
	ck_assert_int_eq(ctx_err(kept), CTX_CANCELED);
	ctx_cancel(p);
	ctx_release(kept);
	ctx_release(o);
	ctx_release(p);
}
END_TEST

struct both {
	ctx_t *ctx;
	_Atomic uint32_t *go;
	uint32_t round;
	int cause;
};

static void *cancel_at_go(void *arg)
{
	struct both *b = arg;
	while (atomic_load(b->go) != b->round)
		;
	ctx_cancel_cause(b->ctx, b->cause);
	return NULL;
}

/* Both parents end at once, from two threads: the merge ends once (its
 * inline after-func runs once), with one parent's cause and that
 * parent's origin. */
START_TEST(test_merge_race_both_end)
{
	int rounds = tu_quick() ? 100 : 1000;
	_Atomic uint32_t go = 0;
	for (int r = 1; r <= rounds; r++) {
		atomic_int runs = 0;
		ctx_t *p = ctx_with_cancel(ctx_background());
		ctx_t *o = ctx_with_cancel(ctx_background());
		ctx_t *m = ctx_with_merge(p, o);
		ctx_after_t *a = ctx_after_func_inline(m, count_fn, &runs);
		struct both bp = { p, &go, (uint32_t)r, 1 };
		struct both bo = { o, &go, (uint32_t)r, 2 };
		pthread_t t1, t2;
		ck_assert_int_eq(pthread_create(&t1, NULL, cancel_at_go, &bp), 0);
		ck_assert_int_eq(pthread_create(&t2, NULL, cancel_at_go, &bo), 0);
		atomic_store(&go, (uint32_t)r);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		ck_assert_int_eq(atomic_load(&runs), 1);
		int cause = ctx_cause(m);
		ck_assert(cause == 1 || cause == 2);
		ck_assert_str_eq(ctx_origin(m), ctx_origin(cause == 1 ? p : o));
		ck_assert(!ctx_after_stop(a));
		ctx_release(m);
		ctx_release(o);
		ctx_release(p);
	}
}
END_TEST

struct rel {
	ctx_t *ctx;
	_Atomic uint32_t *go;
	uint32_t round;
};

static void *release_at_go(void *arg)
{
	struct rel *x = arg;
	while (atomic_load(x->go) != x->round)
		;
	ctx_release(x->ctx);
	return NULL;
}

/* The merge released while the other is being cancelled: neither waits
 * for the other forever, nothing is used after it is freed. */
START_TEST(test_merge_race_release)
{
	int rounds = tu_quick() ? 100 : 1000;
	_Atomic uint32_t go = 0;
	for (int r = 1; r <= rounds; r++) {
		ctx_t *o = ctx_with_cancel(ctx_background());
		ctx_t *m = ctx_with_merge(ctx_background(), o);
		struct rel x = { m, &go, (uint32_t)r };
		struct both bo = { o, &go, (uint32_t)r, 5 };
		pthread_t t1, t2;
		ck_assert_int_eq(pthread_create(&t1, NULL, release_at_go, &x), 0);
		ck_assert_int_eq(pthread_create(&t2, NULL, cancel_at_go, &bo), 0);
		atomic_store(&go, (uint32_t)r);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		ck_assert_int_eq(ctx_cause(o), 5);
		ctx_release(o);
	}
}
END_TEST

/* ---- grace ------------------------------------------------------------ */

/* Live through the grace after its parent ends, then done with the
 * parent's error, cause, words and origin. */
START_TEST(test_grace_after_parent)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *g = ctx_with_grace(p, 150 * CTX_MSEC);
	ck_assert_ptr_nonnull(g);
	int64_t t0 = ctx_now();
	ctx_cancel_msg(p, ESHUTDOWN, "stopping");
	ck_assert_int_eq(ctx_err(g), 0);
	ck_assert_int_eq(ctx_wait(g), CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 140, 2000);
	ck_assert_int_eq(ctx_cause(g), ESHUTDOWN);
	ck_assert_str_eq(ctx_cause_msg(g), "stopping");
	ck_assert_str_eq(ctx_origin(g), ctx_origin(p));
	ctx_release(g);
	ctx_release(p);
}
END_TEST

/* The second signal: cancelled during the grace it ends at once, with
 * its own cause. */
START_TEST(test_grace_cancel_itself)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *g = ctx_with_grace(p, 60 * CTX_SEC);
	ctx_cancel_cause(p, 1);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(g), 0);
	ctx_cancel_cause(g, 2);
	ck_assert_int_eq(ctx_err(g), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(g), 2);
	ck_assert_ptr_nonnull(strstr(ctx_origin(g), "ctx_cancel_cause"));
	ck_assert_str_ne(ctx_origin(g), ctx_origin(p));
	ctx_release(g);
	ctx_release(p);
}
END_TEST

/* A parent done already: the grace counts from the creation. */
START_TEST(test_grace_parent_done)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_cancel_cause(p, 3);
	int64_t t0 = ctx_now();
	ctx_t *g = ctx_with_grace(p, 100 * CTX_MSEC);
	int64_t d;
	ck_assert(ctx_deadline(g, &d));
	ck_assert(d >= t0 + 100 * CTX_MSEC && d <= ctx_now() + 100 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(g), 0);
	ck_assert_int_eq(ctx_wait(g), CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 90, 2000);
	ck_assert_int_eq(ctx_cause(g), 3);
	ctx_release(g);
	ctx_release(p);
}
END_TEST

/* grace_ns <= 0 is ctx_with_cancel. */
START_TEST(test_grace_none)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *g0 = ctx_with_grace(p, 0);
	ctx_t *gn = ctx_with_grace(p, -5);
	ck_assert_ptr_nonnull(g0);
	ck_assert_ptr_nonnull(gn);
	ctx_cancel_cause(p, 4);
	ck_assert_int_eq(ctx_cause(g0), 4);
	ck_assert_int_eq(ctx_cause(gn), 4);
	ctx_release(gn);
	ctx_release(g0);
	ctx_release(p);
	errno = 0;
	ck_assert_ptr_null(ctx_with_grace(NULL, CTX_SEC));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* Deadline and values from the parent; ended by the parent's deadline,
 * the grace ends the grace later with its error and cause. */
START_TEST(test_grace_deadline)
{
	int64_t d0 = ctx_now() + 80 * CTX_MSEC, d;
	ctx_t *p0 = ctx_with_value(ctx_background(), &key_a, "a");
	ctx_t *p = ctx_with_deadline_cause(p0, d0, 55);
	ctx_t *g = ctx_with_grace(p, 100 * CTX_MSEC);
	ck_assert_str_eq(ctx_value(g, &key_a), "a");
	ck_assert(ctx_deadline(g, &d));
	ck_assert_int_eq(d, d0 + 100 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(g), CTX_DEADLINE_EXCEEDED);
	ck_assert(ctx_now() >= d0 + 100 * CTX_MSEC);
	ck_assert_int_eq(ctx_cause(g), 55);
	ck_assert_str_eq(ctx_origin(g), ctx_origin(p));
	ctx_release(g);
	ctx_release(p);
	ctx_release(p0);
}
END_TEST

/* A child made during the grace is live until the grace ends; a thread
 * asleep under the grace since before the parent ended (so sleeping
 * with no deadline) wakes at the grace's end. */
START_TEST(test_grace_child_and_sleeper)
{
	struct tu_canceller k;
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *g = ctx_with_grace(p, 100 * CTX_MSEC);
	ctx_t *before = ctx_with_cancel(g);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, p, 30 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(before), CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 120, 2000);
	tu_canceller_join(&k);
	ctx_release(before);
	ctx_release(g);
	g = ctx_with_grace(p, 100 * CTX_MSEC);
	ctx_t *during = ctx_with_cancel(g);
	ck_assert_int_eq(ctx_err(during), 0);
	ck_assert_int_eq(ctx_wait(during), CTX_CANCELED);
	ctx_release(during);
	ctx_release(g);
	ctx_release(p);
}
END_TEST

/* With nobody waiting, the grace's end still comes (its after-func runs
 * from the timer thread). */
START_TEST(test_grace_unwatched)
{
	atomic_int runs = 0;
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *g = ctx_with_grace(p, 50 * CTX_MSEC);
	ctx_after_t *a = ctx_after_func_inline(g, count_fn, &runs);
	ctx_cancel(p);
	ck_assert_int_eq(atomic_load(&runs), 0);
	int64_t end = ctx_now() + SLOW;
	while (!atomic_load(&runs) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&runs), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(g);
	ctx_release(p);
}
END_TEST

/* The parent cancelled and the grace released at once, many times. */
START_TEST(test_grace_race_release)
{
	int rounds = tu_quick() ? 100 : 1000;
	_Atomic uint32_t go = 0;
	for (int r = 1; r <= rounds; r++) {
		ctx_t *p = ctx_with_cancel(ctx_background());
		ctx_t *g = ctx_with_grace(p, 10 * CTX_MSEC);
		struct rel x = { g, &go, (uint32_t)r };
		struct both bp = { p, &go, (uint32_t)r, 6 };
		pthread_t t1, t2;
		ck_assert_int_eq(pthread_create(&t1, NULL, release_at_go, &x), 0);
		ck_assert_int_eq(pthread_create(&t2, NULL, cancel_at_go, &bp), 0);
		atomic_store(&go, (uint32_t)r);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		ctx_release(p);
	}
}
END_TEST

Suite *suite_compose(void)
{
	Suite *s = suite_create("compose");
	TCase *tc = tu_tcase(s, "merge", 10);
	tcase_add_test(tc, test_merge_parent_ends_it);
	tcase_add_test(tc, test_merge_other_ends_it);
	tcase_add_test(tc, test_merge_cancel_itself);
	tcase_add_test(tc, test_merge_done_at_creation);
	tcase_add_test(tc, test_merge_null);
	tcase_add_test(tc, test_merge_values);
	tc = tu_tcase(s, "merge_deadline", 10);
	tcase_add_test(tc, test_merge_deadline);
	tcase_add_test(tc, test_merge_deadline_unwatched);
	tcase_add_test(tc, test_merge_wakes_reader);
	tc = tu_tcase(s, "merge_races", 60);
	tcase_add_test(tc, test_merge_release_detaches);
	tcase_add_test(tc, test_merge_race_both_end);
	tcase_add_test(tc, test_merge_race_release);
	tc = tu_tcase(s, "grace", 10);
	tcase_add_test(tc, test_grace_after_parent);
	tcase_add_test(tc, test_grace_cancel_itself);
	tcase_add_test(tc, test_grace_parent_done);
	tcase_add_test(tc, test_grace_none);
	tcase_add_test(tc, test_grace_deadline);
	tcase_add_test(tc, test_grace_child_and_sleeper);
	tcase_add_test(tc, test_grace_unwatched);
	tc = tu_tcase(s, "grace_races", 60);
	tcase_add_test(tc, test_grace_race_release);
	return s;
}
