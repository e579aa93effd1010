/*
 * ctx_set_deadline: a context's own deadline moved earlier or later,
 * or taken away; the effective deadline stays the earliest along the
 * chain; threads waiting under the context or below it see the move at
 * once; a past deadline ends the context there and then; the kinds
 * that have no cancel of their own refuse it.
 *
 * The waits that must not end early are checked with ctx_err after a
 * nanosleep, or by the time a blocked call took; margins are wide.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

#define SLOW (2 * CTX_SEC)
#define FAR (60 * CTX_SEC)

static char key;

START_TEST(test_set_refused)
{
	sigset_t set;
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *refused[] = {
		ctx_background(),
		ctx_todo(),
		ctx_with_value(c, &key, "v"),
		ctx_without_cancel(c),
		ctx_with_signals(c, &set),
		ctx_with_hangup(c, sv[0]),
		ctx_with_idle(c, FAR),
	};
	int64_t d = ctx_now() + CTX_SEC;
	ck_assert_int_eq(ctx_set_deadline(NULL, d), EINVAL);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		ck_assert_ptr_nonnull(refused[i]);
		ck_assert_int_eq(ctx_set_deadline(refused[i], d), EINVAL);
		ck_assert_int_eq(ctx_err(refused[i]), 0);
	}
	ck_assert(!ctx_deadline(c, NULL)); /* nothing moved on the parent */
	for (size_t i = 2; i < sizeof(refused) / sizeof(*refused); i++)
		ctx_release(refused[i]);
	ctx_release(c);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Done already: its error, and nothing changes. */
START_TEST(test_set_done)
{
	int64_t d0 = ctx_now() + FAR, d;
	ctx_t *c = ctx_with_deadline(ctx_background(), d0);
	ctx_cancel(c);
	ck_assert_int_eq(ctx_set_deadline(c, ctx_now() + CTX_SEC),
			 CTX_CANCELED);
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, d0);
	ck_assert_int_eq(ctx_cause(c), CTX_CANCELED);
	ctx_release(c);
	c = ctx_with_timeout(ctx_background(), 1); /* past by now */
	tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(ctx_set_deadline(c, ctx_now() + FAR),
			 CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}
END_TEST

/* A past deadline ends it at once, with its constructor's cause. */
START_TEST(test_set_past)
{
	ctx_t *c = ctx_with_timeout_cause(ctx_background(), FAR, 42);
	ctx_t *child = ctx_with_cancel(c);
	ck_assert_int_eq(ctx_set_deadline(c, ctx_now() - 1), 0);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_cause(c), 42);
	ck_assert_int_eq(ctx_err(child), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_cause(child), 42);
	ctx_release(child);
	ctx_release(c);
	c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_set_deadline(c, 0), 0);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_cause(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}
END_TEST

/* Own deadlines replace each other; the effective one is the earliest
 * along the chain; INT64_MAX takes it away. */
START_TEST(test_set_effective)
{
	int64_t now = ctx_now(), d;
	ctx_t *p = ctx_with_deadline(ctx_background(), now + 10 * CTX_SEC);
	ctx_t *c = ctx_with_cancel(p);
	ck_assert_int_eq(ctx_set_deadline(c, now + 5 * CTX_SEC), 0);
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, now + 5 * CTX_SEC);
	ck_assert_int_eq(ctx_set_deadline(c, now + 20 * CTX_SEC), 0);
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, now + 10 * CTX_SEC); /* the parent's is earlier */
	ck_assert_int_eq(ctx_set_deadline(p, INT64_MAX), 0);
	ck_assert(!ctx_deadline(p, NULL));
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, now + 20 * CTX_SEC);
	ck_assert_int_eq(ctx_set_deadline(c, INT64_MAX), 0);
	ck_assert(!ctx_deadline(c, NULL));
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_release(c);
	ctx_release(p);
}
END_TEST

struct reader {
	pthread_t thread;
	ctx_t *ctx;
	int fd;
	ssize_t n;
	int err;
	double ms;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char c;
	int64_t t0 = ctx_now();
	r->n = ctx_read(r->ctx, r->fd, &c, 1);
	r->err = errno;
	r->ms = tu_ms_since(t0);
	return NULL;
}

static void *waiter_main(void *arg)
{
	struct reader *r = arg;
	int64_t t0 = ctx_now();
	r->err = ctx_wait(r->ctx);
	r->ms = tu_ms_since(t0);
	return NULL;
}

/* Moved earlier: a thread blocked below ends at the new time, in a read
 * (the reactor's wait) and in ctx_wait on a context with no deadline
 * (a futex sleep), both under a child of the context moved. */
START_TEST(test_set_earlier_wakes)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ctx_t *c = ctx_with_timeout(ctx_background(), FAR);
	ctx_t *free_c = ctx_with_cancel(ctx_background());
	struct reader r = { .ctx = ctx_with_cancel(c), .fd = sv[0] };
	struct reader w = { .ctx = ctx_with_cancel(free_c) };
	ck_assert_int_eq(pthread_create(&r.thread, NULL, reader_main, &r), 0);
	ck_assert_int_eq(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
	tu_sleep_ns(50 * CTX_MSEC); /* both asleep by now, most likely */
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_set_deadline(c, t0 + 100 * CTX_MSEC), 0);
	ck_assert_int_eq(ctx_set_deadline(free_c, t0 + 100 * CTX_MSEC), 0);
	pthread_join(r.thread, NULL);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(r.n, -1);
	ck_assert_int_eq(r.err, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(w.err, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 95, 2000);
	ctx_release(r.ctx);
	ctx_release(w.ctx);
	ctx_release(free_c);
	ctx_release(c);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Moved later, on the context and on an ancestor: nothing ends at the
 * old time, the waiter ends at the new one. */
START_TEST(test_set_later_holds)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ctx_t *p = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	ctx_t *c = ctx_with_timeout(p, 100 * CTX_MSEC);
	struct reader r = { .ctx = ctx_with_cancel(c), .fd = sv[0] };
	ck_assert_int_eq(pthread_create(&r.thread, NULL, reader_main, &r), 0);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_set_deadline(p, t0 + 400 * CTX_MSEC), 0);
	ck_assert_int_eq(ctx_set_deadline(c, t0 + 400 * CTX_MSEC), 0);
	tu_sleep_ns(250 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(r.ctx), 0);
	ck_assert_int_eq(ctx_err(p), 0);
	pthread_join(r.thread, NULL);
	ck_assert_int_eq(r.err, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 395, 3000);
	ctx_release(r.ctx);
	ctx_release(c);
	ctx_release(p);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Moved earlier on an ancestor: a waiter under its grandchild (which
 * cached the old time) ends at the new one. */
START_TEST(test_set_ancestor_earlier)
{
	ctx_t *p = ctx_with_timeout(ctx_background(), FAR);
	ctx_t *mid = ctx_with_value(p, &key, "v");
	struct reader w = { .ctx = ctx_with_cancel(mid) };
	ck_assert_int_eq(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(ctx_set_deadline(p, ctx_now() + 50 * CTX_MSEC), 0);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(w.err, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(w.ms, 40, 2000);
	ctx_release(w.ctx);
	ctx_release(mid);
	ctx_release(p);
}
END_TEST

static void count_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* With nobody waiting, the new, earlier time still ends it; merges and
 * graces take a deadline too. */
START_TEST(test_set_unwatched)
{
	atomic_int runs = 0;
	ctx_t *o = ctx_with_cancel(ctx_background());
	ctx_t *m = ctx_with_merge(ctx_background(), o);
	ctx_t *g = ctx_with_grace(o, FAR);
	ctx_after_t *am = ctx_after_func(m, count_fn, &runs);
	ctx_after_t *ag = ctx_after_func_inline(g, count_fn, &runs);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_set_deadline(m, t0 + 50 * CTX_MSEC), 0);
	ck_assert_int_eq(ctx_set_deadline(g, t0 + 50 * CTX_MSEC), 0);
	int64_t end = t0 + SLOW;
	while (atomic_load(&runs) < 2 && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&runs), 2);
	ck_assert(ctx_now() >= t0 + 50 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(m), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_err(g), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_err(o), 0);
	ck_assert(!ctx_after_stop(am));
	ck_assert(!ctx_after_stop(ag));
	ctx_release(g);
	ctx_release(m);
	ctx_release(o);
}
END_TEST

struct racer {
	ctx_t *ctx;
	_Atomic uint32_t *go;
	uint32_t round;
	int64_t deadline;
	int ret;
};

static void *set_at_go(void *arg)
{
	struct racer *x = arg;
	while (atomic_load(x->go) != x->round)
		;
	x->ret = ctx_set_deadline(x->ctx, x->deadline);
	return NULL;
}

static void *cancel_at_go(void *arg)
{
	struct racer *x = arg;
	while (atomic_load(x->go) != x->round)
		;
	ctx_cancel_cause(x->ctx, 9);
	return NULL;
}

/* ctx_set_deadline racing a cancel: either order is a consistent end.
 * A move that lost says so with the cancel's error; one that won with a
 * past time may still lose the end to the cancel, but the error, the
 * cause and the origin always agree with each other. */
START_TEST(test_set_race_cancel)
{
	int rounds = tu_quick() ? 100 : 1000;
	_Atomic uint32_t go = 0;
	for (int r = 1; r <= rounds; r++) {
		ctx_t *c = ctx_with_timeout(ctx_background(), FAR);
		ctx_t *child = ctx_with_cancel(c);
		int64_t d = r % 2 ? ctx_now() - 1 : ctx_now() + FAR / 2;
		struct racer s = { c, &go, (uint32_t)r, d, -1 };
		struct racer k = { c, &go, (uint32_t)r, 0, 0 };
		pthread_t t1, t2;
		ck_assert_int_eq(pthread_create(&t1, NULL, set_at_go, &s), 0);
		ck_assert_int_eq(pthread_create(&t2, NULL, cancel_at_go, &k), 0);
		atomic_store(&go, (uint32_t)r);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		int e = ctx_err(c);
		ck_assert(s.ret == 0 || s.ret == CTX_CANCELED);
		if (e == CTX_CANCELED) {
			ck_assert_int_eq(ctx_cause(c), 9);
			ck_assert_ptr_nonnull(strstr(ctx_origin(c),
						     "ctx_cancel_cause"));
		} else {
			ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
			ck_assert(r % 2 && s.ret == 0);
			ck_assert_int_eq(ctx_cause(c), CTX_DEADLINE_EXCEEDED);
			ck_assert_ptr_nonnull(strstr(ctx_origin(c), "deadline"));
		}
		ck_assert_int_eq(ctx_err(child), e);
		ck_assert_str_eq(ctx_origin(child), ctx_origin(c));
		ctx_release(child);
		ctx_release(c);
	}
}
END_TEST

/* One deadline moved back and forth, earlier and later, while a thread
 * waits under it: the wait ends at none of those times, but at the last
 * one, near. */
START_TEST(test_set_race_moves)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), FAR);
	struct reader w = { .ctx = ctx_with_cancel(c) };
	ck_assert_int_eq(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
	for (int i = 0; i < 200; i++) {
		int64_t d = ctx_now() + (i % 2 ? FAR : 5 * CTX_SEC);
		ck_assert_int_eq(ctx_set_deadline(c, d), 0);
	}
	ck_assert_int_eq(ctx_err(w.ctx), 0);
	ck_assert_int_eq(ctx_set_deadline(c, ctx_now() + 30 * CTX_MSEC), 0);
	pthread_join(w.thread, NULL);
	ck_assert_int_eq(w.err, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(w.ms, 20, 3000);
	ctx_release(w.ctx);
	ctx_release(c);
}
END_TEST

Suite *suite_set_deadline(void)
{
	Suite *s = suite_create("set_deadline");
	TCase *tc = tu_tcase(s, "basics", 10);
	tcase_add_test(tc, test_set_refused);
	tcase_add_test(tc, test_set_done);
	tcase_add_test(tc, test_set_past);
	tcase_add_test(tc, test_set_effective);
	tc = tu_tcase(s, "waiters", 15);
	tcase_add_test(tc, test_set_earlier_wakes);
	tcase_add_test(tc, test_set_later_holds);
	tcase_add_test(tc, test_set_ancestor_earlier);
	tcase_add_test(tc, test_set_unwatched);
	tc = tu_tcase(s, "races", 60);
	tcase_add_test(tc, test_set_race_cancel);
	tcase_add_test(tc, test_set_race_moves);
	return s;
}
