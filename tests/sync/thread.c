/*
 * Threads that carry a context (ctx_thread_*); wait groups are in wg.c.
 * (A join the context ends: the contract test's.)
 *
 * Assertions are made on the test's own thread only: workers record what
 * they saw and the test checks it after joining them, since a Check
 * failure must unwind the test's own thread.  Timing bounds are loose on
 * purpose (the machine is shared): a lower bound proves a wait waited, an
 * upper bound only that it did not hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define LONG_WAIT (10 * CTX_SEC) /* "forever", as far as a test goes */
#define SLOW_MS 2000.0           /* a wait that should be quick took this */

static const char key[] = "key";

/* ---- helpers --------------------------------------------------------- */

/* Returns at once with arg: a thread with nothing to do. */
static void *return_arg(ctx_t *ctx, void *arg)
{
	(void)ctx;
	return arg;
}

/* Blocks until the semaphore arg is posted; returns arg. */
static void *block_on_sem(ctx_t *ctx, void *arg)
{
	(void)ctx;
	while (sem_wait(arg) != 0)
		;
	return arg;
}

/* ---- threads --------------------------------------------------------- */

/* What fn saw of its context, from inside the thread. */
struct probe {
	ctx_t *seen;
	void *value;
	int err;
	pthread_t self;
};

static void *probe_fn(ctx_t *ctx, void *arg)
{
	struct probe *p = arg;

	p->seen = ctx;
	p->value = ctx_value(ctx, key);
	p->err = ctx_err(ctx);
	p->self = pthread_self();
	return p;
}

/* fn runs on a new thread with the given context; join returns fn's
 * result. */
START_TEST(test_thread_result)
{
	int x;
	ctx_t *v = ctx_with_value(ctx_background(), key, &x);
	struct probe p = { 0 };
	ctx_thread_t *t = NULL;
	void *res = NULL;

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(ctx_thread_create(&t, v, probe_fn, &p), 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	ck_assert_ptr_eq(res, &p);
	ck_assert_ptr_eq(p.seen, v);
	ck_assert_ptr_eq(p.value, &x);
	ck_assert_int_eq(p.err, 0);
	ck_assert(!pthread_equal(p.self, pthread_self()));

	/* A NULL result pointer is allowed. */
	ck_assert_int_eq(ctx_thread_create(&t, v, return_arg, NULL), 0);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_release(v);
}
END_TEST

/* A thread started on a context that is already done still runs, and
 * sees the context done. */
START_TEST(test_thread_done_context)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct probe p = { 0 };
	ctx_thread_t *t;
	void *res = NULL;

	ctx_cancel_cause(c, EIO);
	ck_assert_int_eq(ctx_thread_create(&t, c, probe_fn, &p), 0);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	ck_assert_ptr_eq(res, &p);
	ck_assert_int_eq(p.err, CTX_CANCELED);
	ctx_release(c);
}
END_TEST

struct holder {
	sem_t go;
	int err;        /* ctx_err, once the creator dropped its reference */
	void *value;    /* ctx_value(key), likewise */
	int slept;      /* ctx_sleep's result: 0 if the context stayed live */
};

static void *hold_fn(ctx_t *ctx, void *arg)
{
	struct holder *h = arg;

	while (sem_wait(&h->go) != 0)
		;
	h->err = ctx_err(ctx);
	h->value = ctx_value(ctx, key);
	h->slept = ctx_sleep(ctx, 5 * CTX_MSEC);
	return NULL;
}

/*
 * The thread holds its own reference: the creator drops its own at once
 * (ctx_unref, which does not cancel) and the thread still uses the
 * context.  The context's done descriptor shows when it is freed: it
 * stays open while the thread runs and is closed once fn has returned.
 */
START_TEST(test_thread_own_reference)
{
	int x;
	int fds = tu_count_fds();
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *v = ctx_with_value(c, key, &x);
	struct holder h = { 0 };
	ctx_thread_t *t;
	int fd;

	ck_assert_ptr_nonnull(v);
	fd = ctx_done_fd(v);
	ck_assert_int_ge(fd, 0);
	sem_init(&h.go, 0, 0);
	ck_assert_int_eq(ctx_thread_create(&t, v, hold_fn, &h), 0);
	ctx_unref(v);
	ctx_unref(c);
	ck_assert_int_ne(fcntl(fd, F_GETFD), -1); /* the thread keeps it */

	sem_post(&h.go);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ck_assert_int_eq(h.err, 0);
	ck_assert_ptr_eq(h.value, &x);
	ck_assert_int_eq(h.slept, 0);
	/* fn returned: the last reference went with it. */
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(tu_count_fds(), fds);
	sem_destroy(&h.go);
}
END_TEST

static void *wait_fn(ctx_t *ctx, void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ctx_wait(ctx);
}

/* ctx_release by the creator is a cancel: the thread sees it. */
START_TEST(test_thread_release_cancels)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	ctx_thread_t *t;
	void *res = NULL;
	int64_t t0 = ctx_now();

	ck_assert_int_eq(ctx_thread_create(&t, c, wait_fn, NULL), 0);
	tu_sleep_ns(20 * CTX_MSEC); /* let it block */
	ctx_release(c);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	ck_assert_int_eq((int)(intptr_t)res, CTX_CANCELED);
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
}
END_TEST

/* Detached threads free themselves: detached while fn runs or after it
 * returned, they leave no thread behind (and no handle: valgrind). */
struct detachee {
	sem_t *go;
	atomic_int *done;
};

static void *detachee_fn(ctx_t *ctx, void *arg)
{
	struct detachee *d = arg;

	(void)ctx;
	while (sem_wait(d->go) != 0)
		;
	atomic_fetch_add(d->done, 1);
	return NULL;
}

#define DETACHED 8

START_TEST(test_thread_detach)
{
	int base = tu_count_threads();
	sem_t go;
	atomic_int done = 0;
	struct detachee d = { .go = &go, .done = &done };
	ctx_thread_t *t[DETACHED];

	sem_init(&go, 0, 0);
	for (int i = 0; i < DETACHED; i++)
		ck_assert_int_eq(ctx_thread_create(&t[i], ctx_background(),
						   detachee_fn, &d), 0);
#ifndef TU_TSAN /* no thread counts there: see testutil.h */
	ck_assert_int_ge(tu_count_threads(), base + DETACHED);
#endif
	/* Half while fn still runs... */
	for (int i = 0; i < DETACHED / 2; i++)
		ck_assert_int_eq(ctx_thread_detach(t[i]), 0);
	for (int i = 0; i < DETACHED; i++)
		sem_post(&go);
	while (atomic_load(&done) < DETACHED)
		tu_sleep_ns(CTX_MSEC);
	tu_sleep_ns(20 * CTX_MSEC);
	/* ...half once it has returned. */
	for (int i = DETACHED / 2; i < DETACHED; i++)
		ck_assert_int_eq(ctx_thread_detach(t[i]), 0);
	ck_assert_int_eq(tu_settle_threads(base, 5 * CTX_SEC), base);
	sem_destroy(&go);
}
END_TEST

/* A thread whose join the context interrupted can still be detached. */
START_TEST(test_thread_detach_after_failed_join)
{
	int base = tu_count_threads();
	sem_t go;
	ctx_thread_t *t;
	ctx_t *j = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);

	sem_init(&go, 0, 0);
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), block_on_sem,
					   &go), 0);
	ck_assert_int_eq(ctx_thread_join(j, t, NULL), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_thread_detach(t), 0);
	sem_post(&go);
	ck_assert_int_eq(tu_settle_threads(base, 5 * CTX_SEC), base);
	ctx_release(j);
	sem_destroy(&go);
}
END_TEST

/* Joined threads are gone, not just finished. */
#define JOINED 16

START_TEST(test_thread_join_reaps)
{
	int base = tu_count_threads();
	ctx_thread_t *t[JOINED];

	for (intptr_t i = 0; i < JOINED; i++)
		ck_assert_int_eq(ctx_thread_create(&t[i], ctx_background(),
						   return_arg, (void *)i), 0);
	for (intptr_t i = 0; i < JOINED; i++) {
		void *res = NULL;

		ck_assert_int_eq(ctx_thread_join(ctx_background(), t[i], &res),
				 0);
		ck_assert_ptr_eq(res, (void *)i);
	}
	ck_assert_int_eq(tu_settle_threads(base, 2 * CTX_SEC), base);
}
END_TEST

/*
 * Join racing the thread's exit: fn cancels the joiner's context and
 * returns at about the same moment.  Each join either joins (0, with
 * fn's result) or reports the cancel and leaves the thread joinable.
 */
struct racer {
	ctx_t *c;
	uint32_t before, after;
};

static void *racer_fn(ctx_t *ctx, void *arg)
{
	struct racer *r = arg;

	(void)ctx;
	tu_spin(r->before);
	ctx_cancel(r->c);
	tu_spin(r->after);
	return r;
}

START_TEST(test_thread_join_race_exit)
{
	int rounds = tu_quick() ? 300 : 2000;
	uint32_t seed = 0x2545f491;
	int joined = 0, refused = 0;

	for (int i = 0; i < rounds; i++) {
		struct racer r = {
			.c = ctx_with_cancel(ctx_background()),
			.before = tu_rand(&seed) % 4000,
			.after = tu_rand(&seed) % 100000,
		};
		ctx_thread_t *t;
		void *res = NULL;
		int e;

		ck_assert_ptr_nonnull(r.c);
		ck_assert_int_eq(ctx_thread_create(&t, ctx_background(),
						   racer_fn, &r), 0);
		tu_spin(tu_rand(&seed) % 8000);
		e = ctx_thread_join(r.c, t, &res);
		if (e == 0) {
			joined++;
			ck_assert_msg(res == &r, "round %d: result %p", i, res);
		} else {
			refused++;
			ck_assert_msg(e == CTX_CANCELED, "round %d: join %d",
				      i, e);
			ck_assert_msg(res == NULL, "round %d: result set", i);
			e = ctx_thread_join(ctx_background(), t, &res);
			ck_assert_msg(e == 0 && res == &r,
				      "round %d: second join %d, %p", i, e,
				      res);
		}
		ctx_release(r.c);
	}
	ck_assert_int_eq(joined + refused, rounds);
}
END_TEST

START_TEST(test_thread_null)
{
	ctx_thread_t *t = NULL;
	sem_t go;

	ck_assert_int_eq(ctx_thread_create(NULL, ctx_background(), return_arg,
					   NULL), EINVAL);
	ck_assert_int_eq(ctx_thread_create(&t, NULL, return_arg, NULL),
			 EINVAL);
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), NULL, NULL),
			 EINVAL);
	ck_assert_ptr_null(t);

	sem_init(&go, 0, 0);
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), block_on_sem,
					   &go), 0);
	ck_assert_int_eq(ctx_thread_join(NULL, t, NULL), EINVAL);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), NULL, NULL), EINVAL);
	ck_assert_int_eq(ctx_thread_detach(NULL), EINVAL);
	sem_post(&go);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	sem_destroy(&go);
}
END_TEST

/* ---- threads with attributes ------------------------------------------ */

#define ATTR_STACK (256 * 1024)

/* What a thread made with attributes saw: its stack size and context. */
struct stack_probe {
	size_t stack;
	void *value;
	int rc;
};

static void *stack_fn(ctx_t *ctx, void *arg)
{
	struct stack_probe *p = arg;
	pthread_attr_t a;

	p->rc = pthread_getattr_np(pthread_self(), &a);
	if (!p->rc) {
		p->rc = pthread_attr_getstacksize(&a, &p->stack);
		pthread_attr_destroy(&a);
	}
	p->value = ctx_value(ctx, key);
	return p;
}

/* The attributes reach the thread (its stack is the size asked for), and
 * the thread still carries its context. */
START_TEST(test_thread_attr_stack)
{
	int x;
	ctx_t *v = ctx_with_value(ctx_background(), key, &x);
	struct stack_probe p = { .rc = -1 };
	pthread_attr_t attr;
	ctx_thread_t *t = NULL;
	void *res = NULL;

	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, ATTR_STACK), 0);
	ck_assert_int_eq(ctx_thread_create_attr(&t, &attr, v, stack_fn, &p),
			 0);
	pthread_attr_destroy(&attr); /* the thread does not need it */
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	ck_assert_ptr_eq(res, &p);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_ptr_eq(p.value, &x);

	/* NULL attributes: the defaults, as ctx_thread_create. */
	struct stack_probe d = { .rc = -1 };
	ck_assert_int_eq(ctx_thread_create_attr(&t, NULL, v, stack_fn, &d), 0);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	ck_assert_ptr_eq(res, &d);
	ck_assert_int_eq(d.rc, 0);
	ck_assert_ptr_eq(d.value, &x);

	/* The stack asked for, not the default one (which is megabytes).
	 * Only bounds: sanitizers add to every thread's stack. */
	ck_assert_uint_ge(p.stack, ATTR_STACK);
	ck_assert_uint_lt(p.stack, d.stack);
	ctx_release(v);
}
END_TEST

/* A thread made with attributes is joined cancellably like any other. */
START_TEST(test_thread_attr_join_interrupted)
{
	pthread_attr_t attr;
	ctx_thread_t *t = NULL;
	sem_t go;

	sem_init(&go, 0, 0);
	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, ATTR_STACK), 0);
	ck_assert_int_eq(ctx_thread_create_attr(&t, &attr, ctx_background(),
						block_on_sem, &go), 0);
	pthread_attr_destroy(&attr);
	int64_t t0 = ctx_now();
	ctx_t *d = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	ck_assert_int_eq(ctx_thread_join(d, t, NULL), CTX_DEADLINE_EXCEEDED);
	ck_assert_double_ge(tu_ms_since(t0), 15.0);
	ctx_release(d);
	sem_post(&go);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	sem_destroy(&go);
}
END_TEST

/* Detached attributes are refused, and nothing is started or kept. */
START_TEST(test_thread_attr_detached)
{
	pthread_attr_t attr;
	ctx_thread_t *t = NULL;
	int threads = tu_count_threads();
	ctx_t *c = ctx_with_cancel(ctx_background());

	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setdetachstate(&attr,
						     PTHREAD_CREATE_DETACHED),
			 0);
	ck_assert_int_eq(ctx_thread_create_attr(&t, &attr, c, return_arg,
						NULL), EINVAL);
	ck_assert_ptr_null(t);
	/* No more threads (fewer, if an earlier test's are still leaving). */
	ck_assert_int_le(tu_count_threads(), threads);
	ck_assert_int_eq(ctx_thread_create_attr(NULL, NULL, c, return_arg,
						NULL), EINVAL);
	ck_assert_int_eq(ctx_thread_create_attr(&t, NULL, NULL, return_arg,
						NULL), EINVAL);
	ck_assert_int_eq(ctx_thread_create_attr(&t, NULL, c, NULL, NULL),
			 EINVAL);
	ck_assert_ptr_null(t);
	pthread_attr_destroy(&attr);
	ctx_release(c); /* the refused calls took no reference: no leak */
}
END_TEST

/* ---- the suite ------------------------------------------------------- */


Suite *suite_thread(void)
{
	Suite *s = suite_create("thread");
	TCase *tc;

	tc = tu_tcase(s, "thread", 30);
	tu_add_tests(tc, test_thread_result, test_thread_done_context,
		     test_thread_own_reference, test_thread_release_cancels,
		     test_thread_detach, test_thread_detach_after_failed_join,
		     test_thread_join_reaps, test_thread_null,
		     test_thread_attr_stack, test_thread_attr_join_interrupted,
		     test_thread_attr_detached);

	tc = tu_tcase(s, "thread_race", 60);
	tcase_add_test(tc, test_thread_join_race_exit);

	return s;
}
