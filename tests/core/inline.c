/*
 * ctx_after_func_inline (fn runs in the thread that ends the context,
 * before the call that ends it returns) and ctx_after_stop_wait (once it
 * returns, fn is not running anywhere, so its argument may be freed).
 *
 * Waits for something a library thread does sleep with nanosleep and
 * read atomics, never entering the library.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

#define SLOW (2 * CTX_SEC)

/* What an inline fn saw: the thread it ran on and how often. */
struct rec {
	atomic_int runs;
	pthread_t thread;
	ctx_t *ctx;     /* if set, fn reads its error */
	int err_seen;
};

static void rec_fn(void *arg)
{
	struct rec *r = arg;
	r->thread = pthread_self();
	if (r->ctx)
		r->err_seen = ctx_err(r->ctx);
	atomic_fetch_add(&r->runs, 1);
}

static int wait_runs(atomic_int *runs, int want)
{
	int64_t end = ctx_now() + SLOW;
	while (atomic_load(runs) < want && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	return atomic_load(runs);
}

/* ---- ctx_after_func_inline -------------------------------------------- */

struct canceller {
	ctx_t *ctx;
	struct rec *r;
	int runs_after; /* fn's runs when ctx_cancel had returned */
};

static void *cancel_main(void *arg)
{
	struct canceller *k = arg;
	ctx_cancel(k->ctx);
	k->runs_after = atomic_load(&k->r->runs);
	return NULL;
}

/* In the cancelling thread, inside the cancel, for the context and for
 * one below the ancestor cancelled; it sees the context done. */
START_TEST(test_inline_in_canceller)
{
	struct rec r = { 0 }, rc = { 0 };
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_with_timeout(p, 60 * CTX_SEC);
	r.ctx = p;
	rc.ctx = c;
	ctx_after_t *a = ctx_after_func_inline(p, rec_fn, &r);
	ctx_after_t *b = ctx_after_func_inline(c, rec_fn, &rc);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(atomic_load(&r.runs), 0);
	struct canceller k = { p, &r, -1 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, cancel_main, &k), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(k.runs_after, 1);
	ck_assert_int_eq(atomic_load(&rc.runs), 1);
	ck_assert(pthread_equal(r.thread, t));
	ck_assert(pthread_equal(rc.thread, t));
	ck_assert_int_eq(r.err_seen, CTX_CANCELED);
	ck_assert_int_eq(rc.err_seen, CTX_CANCELED);
	ck_assert(!ctx_after_stop(a));
	ck_assert(!ctx_after_stop_wait(b));
	ctx_release(c);
	ctx_release(p);
}
END_TEST

/* Done already -- cancelled, or past a deadline nobody looked at -- it
 * runs in the caller before the call returns. */
START_TEST(test_inline_already_done)
{
	struct rec r = { 0 }, rd = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	ctx_after_t *a = ctx_after_func_inline(c, rec_fn, &r);
	ck_assert_int_eq(atomic_load(&r.runs), 1);
	ck_assert(pthread_equal(r.thread, pthread_self()));
	ctx_t *d = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
	tu_sleep_ns(30 * CTX_MSEC);
	rd.ctx = d;
	ctx_after_t *b = ctx_after_func_inline(d, rec_fn, &rd);
	ck_assert_int_eq(atomic_load(&rd.runs), 1);
	ck_assert(pthread_equal(rd.thread, pthread_self()));
	ck_assert_int_eq(rd.err_seen, CTX_DEADLINE_EXCEEDED);
	ck_assert(!ctx_after_stop(a));
	ck_assert(!ctx_after_stop(b));
	ctx_release(d);
	ctx_release(c);
}
END_TEST

/* A deadline with nobody waiting: it runs on the library's timer thread
 * (not this one), at the deadline. */
START_TEST(test_inline_deadline_unwatched)
{
	struct rec r = { 0 };
	int64_t t0 = ctx_now();
	ctx_t *d = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	ctx_after_t *a = ctx_after_func_inline(d, rec_fn, &r);
	ck_assert_int_eq(wait_runs(&r.runs, 1), 1);
	ck_assert(tu_ms_since(t0) >= 25);
	ck_assert(!pthread_equal(r.thread, pthread_self()));
	ck_assert(!ctx_after_stop(a));
	ctx_release(d);
}
END_TEST

/* Stopped first, it never runs; a context that never ends never runs
 * it; bad arguments are EINVAL. */
START_TEST(test_inline_stop_and_errors)
{
	struct rec r = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func_inline(c, rec_fn, &r);
	ck_assert(ctx_after_stop(a));
	ctx_cancel(c);
	ck_assert_int_eq(atomic_load(&r.runs), 0);
	a = ctx_after_func_inline(ctx_background(), rec_fn, &r);
	ck_assert_ptr_nonnull(a);
	ck_assert(ctx_after_stop_wait(a));
	errno = 0;
	ck_assert_ptr_null(ctx_after_func_inline(NULL, rec_fn, &r));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_after_func_inline(c, NULL, &r));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!ctx_after_stop_wait(NULL));
	ctx_release(c);
}
END_TEST

/* fn may cancel contexts and stop other handles: two handles on one
 * context, each stopping the other, whichever fires first.  Exactly
 * one runs, and its stop kept the other from running. */
struct stopper {
	ctx_after_t *victim;
	ctx_t *other;
	int runs;
	bool stopped;
};

static void stopper_fn(void *arg)
{
	struct stopper *s = arg;
	s->runs++;
	s->stopped = ctx_after_stop_wait(s->victim);
	ctx_cancel(s->other);
}

START_TEST(test_inline_fn_cancels_and_stops)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *other = ctx_with_cancel(ctx_background());
	struct stopper s1 = { .other = other }, s2 = { .other = other };
	ctx_after_t *h1 = ctx_after_func_inline(c, stopper_fn, &s1);
	ctx_after_t *h2 = ctx_after_func_inline(c, stopper_fn, &s2);
	s1.victim = h2;
	s2.victim = h1;
	ctx_cancel(c);
	ck_assert_int_eq(s1.runs + s2.runs, 1);
	struct stopper *ran = s1.runs ? &s1 : &s2;
	ck_assert(ran->stopped);
	ck_assert_int_eq(ctx_err(other), CTX_CANCELED);
	ck_assert(!ctx_after_stop(ran == &s1 ? h1 : h2));
	ctx_release(other);
	ctx_release(c);
}
END_TEST

/* ---- ctx_after_stop_wait ----------------------------------------------- */

/* An argument that fn uses after a pause; stop_wait must not return
 * while fn is inside. */
struct slow {
	atomic_int state; /* 0 not begun, 1 running, 2 returned */
	int64_t pause;
	_Atomic int64_t began; /* when fn began its pause */
};

static void slow_fn(void *arg)
{
	struct slow *s = arg;
	atomic_store(&s->began, ctx_now());
	atomic_store(&s->state, 1);
	tu_sleep_ns(s->pause);
	atomic_store(&s->state, 2);
}

static void await_state(struct slow *s, int want)
{
	int64_t end = ctx_now() + SLOW;
	while (atomic_load(&s->state) < want && ctx_now() < end)
		tu_sleep_ns(100 * CTX_USEC);
	ck_assert_int_ge(atomic_load(&s->state), want);
}

/* fn running on the runner thread: stop_wait returns once it returned,
 * where ctx_after_stop returns at once. */
START_TEST(test_stop_wait_runner)
{
	struct slow s = { .pause = 100 * CTX_MSEC };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func(c, slow_fn, &s);
	ctx_cancel(c);
	await_state(&s, 1);
	ck_assert(!ctx_after_stop_wait(a));
	ck_assert_int_eq(atomic_load(&s.state), 2);
	/* From fn's own start: a t0 read here, after await_state saw it
	 * running, could be late by any stall. */
	tu_assert_ms(tu_ms_since(atomic_load(&s.began)), 95, 2000);
	ctx_release(c);
}
END_TEST

struct inline_canceller {
	pthread_t thread;
	ctx_t *ctx;
};

static void *plain_cancel_main(void *arg)
{
	ctx_cancel(((struct inline_canceller *)arg)->ctx);
	return NULL;
}

/* fn running inline in another thread's cancel: the same. */
START_TEST(test_stop_wait_inline_elsewhere)
{
	struct slow s = { .pause = 100 * CTX_MSEC };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func_inline(c, slow_fn, &s);
	struct inline_canceller k = { .ctx = c };
	ck_assert_int_eq(pthread_create(&k.thread, NULL, plain_cancel_main,
					&k), 0);
	await_state(&s, 1);
	ck_assert(!ctx_after_stop_wait(a));
	ck_assert_int_eq(atomic_load(&s.state), 2);
	pthread_join(k.thread, NULL);
	ctx_release(c);
}
END_TEST

/* From inside fn itself it does not wait (it would wait forever). */
struct self_stop {
	ctx_after_t *_Atomic self;
	atomic_int done;
	bool ret;
};

static void self_stop_fn(void *arg)
{
	struct self_stop *s = arg;
	while (!atomic_load(&s->self))
		tu_sleep_ns(CTX_MSEC);
	s->ret = ctx_after_stop_wait(atomic_load(&s->self));
	atomic_store(&s->done, 1);
}

START_TEST(test_stop_wait_from_fn)
{
	for (int inl = 0; inl < 2; inl++) {
		struct self_stop s = { 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_after_t *a = inl ? ctx_after_func_inline(c, self_stop_fn, &s)
				     : ctx_after_func(c, self_stop_fn, &s);
		atomic_store(&s.self, a);
		if (inl) {
			struct inline_canceller k = { .ctx = c };
			ck_assert_int_eq(pthread_create(&k.thread, NULL,
							plain_cancel_main, &k),
					 0);
			pthread_join(k.thread, NULL);
		} else {
			ctx_cancel(c);
		}
		int64_t end = ctx_now() + SLOW;
		while (!atomic_load(&s.done) && ctx_now() < end)
			tu_sleep_ns(CTX_MSEC);
		ck_assert_int_eq(atomic_load(&s.done), 1);
		ck_assert(!s.ret);
		ctx_release(c);
	}
}
END_TEST

/* From inside one after-func on the runner thread, for another that is
 * queued behind it: the runner must not wait for itself.  The other's
 * fn has run when the stop returns. */
struct pair {
	ctx_after_t *_Atomic second;
	struct slow s2;
	atomic_int done;
	int state_seen; /* the second's, when the stop returned */
	bool ret;
};

static void first_fn(void *arg)
{
	struct pair *p = arg;
	ctx_after_t *second;
	while (!(second = atomic_load(&p->second)))
		tu_sleep_ns(CTX_MSEC);
	p->ret = ctx_after_stop_wait(second);
	p->state_seen = atomic_load(&p->s2.state);
	atomic_store(&p->done, 1);
}

START_TEST(test_stop_wait_queued_behind)
{
	struct pair p = { .s2 = { .pause = CTX_MSEC } };
	ctx_t *c1 = ctx_with_cancel(ctx_background());
	ctx_t *c2 = ctx_with_cancel(ctx_background());
	ctx_after_t *a1 = ctx_after_func(c1, first_fn, &p);
	ctx_after_t *a2 = ctx_after_func(c2, slow_fn, &p.s2);
	ctx_cancel(c1); /* queued first */
	ctx_cancel(c2);
	atomic_store(&p.second, a2);
	int64_t end = ctx_now() + SLOW;
	while (!atomic_load(&p.done) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&p.done), 1);
	ck_assert(!p.ret);
	ck_assert_int_eq(p.state_seen, 2);
	ck_assert(!ctx_after_stop(a1));
	ctx_release(c2);
	ctx_release(c1);
}
END_TEST

/* stop_wait racing the cancel, the argument freed right after: either
 * fn never runs (true) or it has returned (false).  A use after free
 * shows in the sanitizer builds. */
START_TEST(test_stop_wait_race_free)
{
	int rounds = tu_quick() ? 200 : 2000;
	for (int i = 0; i < rounds; i++) {
		struct slow *s = calloc(1, sizeof(*s));
		ck_assert_ptr_nonnull(s);
		s->pause = i % 7 == 0 ? 50 * CTX_USEC : 0;
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_after_t *a = i % 2 ? ctx_after_func(c, slow_fn, s)
				       : ctx_after_func_inline(c, slow_fn, s);
		struct inline_canceller k = { .ctx = c };
		ck_assert_int_eq(pthread_create(&k.thread, NULL,
						plain_cancel_main, &k), 0);
		if (i % 3)
			tu_spin((uint32_t)(i % 5) * 200);
		bool never = ctx_after_stop_wait(a);
		ck_assert_int_eq(atomic_load(&s->state), never ? 0 : 2);
		free(s);
		pthread_join(k.thread, NULL);
		ctx_release(c);
	}
}
END_TEST

Suite *suite_after_inline(void)
{
	Suite *s = suite_create("after_inline");
	TCase *tc = tu_tcase(s, "inline", 10);
	tcase_add_test(tc, test_inline_in_canceller);
	tcase_add_test(tc, test_inline_already_done);
	tcase_add_test(tc, test_inline_deadline_unwatched);
	tcase_add_test(tc, test_inline_stop_and_errors);
	tcase_add_test(tc, test_inline_fn_cancels_and_stops);
	tc = tu_tcase(s, "stop_wait", 10);
	tcase_add_test(tc, test_stop_wait_runner);
	tcase_add_test(tc, test_stop_wait_inline_elsewhere);
	tcase_add_test(tc, test_stop_wait_from_fn);
	tcase_add_test(tc, test_stop_wait_queued_behind);
	tc = tu_tcase(s, "stop_wait_races", 60);
	tcase_add_test(tc, test_stop_wait_race_free);
	return s;
}
