/*
 * Weighted semaphores: bad input, try_acquire, FIFO (a large request at
 * the head is not passed by small ones behind it), an acquire ended by
 * its context takes nothing and lets those behind it go, and a mix of
 * threads that never holds more than the size.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

START_TEST(test_sem_bad_input)
{
	errno = 0;
	ck_assert_ptr_null(ctx_sem_new(-1));
	ck_assert_int_eq(errno, EINVAL);
	ctx_sem_t *s = ctx_sem_new(3);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(ctx_sem_acquire(NULL, s, 1), EINVAL);
	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), NULL, 1), EINVAL);
	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), s, 4), EINVAL);
	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), s, -1), EINVAL);
	ck_assert(!ctx_sem_try_acquire(NULL, 1));
	ck_assert(!ctx_sem_try_acquire(s, 4));
	ck_assert(!ctx_sem_try_acquire(s, -1));
	ctx_sem_release(NULL, 1);
	ctx_sem_free(NULL);
	ctx_sem_free(s);
}
END_TEST

START_TEST(test_sem_try)
{
	ctx_sem_t *s = ctx_sem_new(3);

	ck_assert(ctx_sem_try_acquire(s, 2));
	ck_assert(!ctx_sem_try_acquire(s, 2));
	ck_assert(ctx_sem_try_acquire(s, 1));
	ck_assert(ctx_sem_try_acquire(s, 0));
	ctx_sem_release(s, 3);
	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), s, 3), 0);
	ctx_sem_release(s, 3);
	ctx_sem_free(s);
}
END_TEST

/* An acquire on its own thread. */
struct acq {
	pthread_t t;
	ctx_sem_t *s;
	ctx_t *ctx;
	int64_t n;
	atomic_int state; /* 0 running, 1 returned */
	int err;
};

static void *acq_main(void *p)
{
	struct acq *a = p;

	a->err = ctx_sem_acquire(a->ctx, a->s, a->n);
	atomic_store(&a->state, 1);
	return NULL;
}

static void acq_start(struct acq *a, ctx_sem_t *s, ctx_t *ctx, int64_t n)
{
	*a = (struct acq){ .s = s, .ctx = ctx, .n = n, .err = -1 };
	ck_assert_int_eq(pthread_create(&a->t, NULL, acq_main, a), 0);
	tu_sleep_ns(30 * CTX_MSEC); /* let it queue, in this order */
}

static bool returned_within(struct acq *a, int64_t ns)
{
	int64_t end = ctx_now() + ns;
	while (!atomic_load(&a->state) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	return atomic_load(&a->state);
}

/* size 4, 3 held: a request for 4 queues, then one for 1, which would
 * fit but must not pass it.  Releasing the 3 lets the 4 go; releasing
 * those lets the 1 go. */
START_TEST(test_sem_fifo)
{
	ctx_sem_t *s = ctx_sem_new(4);
	struct acq big, small;

	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), s, 3), 0);
	acq_start(&big, s, ctx_background(), 4);
	acq_start(&small, s, ctx_background(), 1);
	ck_assert(!returned_within(&small, 50 * CTX_MSEC));
	ck_assert(!ctx_sem_try_acquire(s, 1)); /* no barging either */
	ctx_sem_release(s, 3);
	ck_assert(returned_within(&big, 5 * CTX_SEC));
	ck_assert_int_eq(big.err, 0);
	ck_assert(!returned_within(&small, 30 * CTX_MSEC));
	ctx_sem_release(s, 4);
	ck_assert(returned_within(&small, 5 * CTX_SEC));
	ck_assert_int_eq(small.err, 0);
	pthread_join(big.t, NULL);
	pthread_join(small.t, NULL);
	ctx_sem_release(s, 1);
	ck_assert(ctx_sem_try_acquire(s, 4));
	ctx_sem_free(s);
}
END_TEST

/* The large request at the head is cancelled: it takes nothing, and the
 * small one behind it, which fits, goes at once. */
START_TEST(test_sem_cancel_head)
{
	ctx_sem_t *s = ctx_sem_new(4);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct acq big, small;

	ck_assert_int_eq(ctx_sem_acquire(ctx_background(), s, 3), 0);
	acq_start(&big, s, c, 4);
	acq_start(&small, s, ctx_background(), 1);
	ck_assert(!returned_within(&small, 30 * CTX_MSEC));
	ctx_cancel(c);
	ck_assert(returned_within(&big, 5 * CTX_SEC));
	ck_assert_int_eq(big.err, CTX_CANCELED);
	ck_assert(returned_within(&small, 5 * CTX_SEC));
	ck_assert_int_eq(small.err, 0);
	pthread_join(big.t, NULL);
	pthread_join(small.t, NULL);
	ctx_sem_release(s, 4);
	ck_assert(ctx_sem_try_acquire(s, 4)); /* nothing left taken */
	ctx_release(c);
	ctx_sem_free(s);
}
END_TEST

/* Threads acquire random weights under contexts that end at random;
 * the holdings never exceed the size and all come back. */
#define MIX_SIZE 5
struct mix {
	ctx_sem_t *s;
	atomic_long held;
	atomic_long over;
	atomic_long ok, ended;
	uint32_t seed;
};

static void *mix_main(void *p)
{
	struct mix *m = p;
	uint32_t seed = (uint32_t)(uintptr_t)&seed | 1;
	int rounds = tu_quick() ? 300 : 2000;

	for (int i = 0; i < rounds; i++) {
		int64_t n = 1 + tu_rand(&seed) % MIX_SIZE;
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    (tu_rand(&seed) % 300) * CTX_USEC);
		int e = ctx_sem_acquire(c, m->s, n);
		ctx_release(c);
		if (e) {
			ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
			atomic_fetch_add(&m->ended, 1);
			continue;
		}
		if (atomic_fetch_add(&m->held, n) + n > MIX_SIZE)
			atomic_fetch_add(&m->over, 1);
		for (volatile int k = 0; k < 200; k++)
			;
		atomic_fetch_sub(&m->held, n);
		ctx_sem_release(m->s, n);
		atomic_fetch_add(&m->ok, 1);
	}
	return NULL;
}

START_TEST(test_sem_mix)
{
	struct mix m = { .s = ctx_sem_new(MIX_SIZE) };
	pthread_t t[6];

	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, mix_main, &m), 0);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&m.over), 0);
	ck_assert_int_gt(atomic_load(&m.ok), 0);
	ck_assert(ctx_sem_try_acquire(m.s, MIX_SIZE)); /* all came back */
	ctx_sem_free(m.s);
}
END_TEST

Suite *suite_sem(void)
{
	Suite *s = suite_create("sem");
	TCase *tc = tu_tcase(s, "api", 30);

	tu_add_tests(tc, test_sem_bad_input, test_sem_try, test_sem_fifo,
		     test_sem_cancel_head);
	tc = tu_tcase(s, "mix", 120);
	tcase_add_test(tc, test_sem_mix);
	return s;
}
