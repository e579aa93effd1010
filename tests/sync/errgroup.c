/*
 * The rest of errgroup and WaitGroup.Go: ctx_group_try_go at the limit
 * (ctx_group_go there: the contract test's), ctx_group_set_attr reaching the threads (stack size), and ctx_wg_go,
 * whose done comes after the thread's reference to the context is gone.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

static int block_fn(ctx_t *ctx, void *arg)
{
	(void)arg;
	ctx_wait(ctx);
	return 0;
}

static int quick_fn(ctx_t *ctx, void *arg)
{
	(void)ctx;
	atomic_fetch_add((atomic_int *)arg, 1);
	return 0;
}

START_TEST(test_group_try_go)
{
	ctx_group_t *g = ctx_group_new(ctx_background());
	atomic_int ran = 0;

	ck_assert_int_eq(ctx_group_try_go(NULL, quick_fn, &ran), EINVAL);
	ck_assert_int_eq(ctx_group_try_go(g, NULL, &ran), EINVAL);
	ck_assert_int_eq(ctx_group_set_limit(g, 1), 0);
	ck_assert_int_eq(ctx_group_try_go(g, block_fn, NULL), 0);
	ck_assert_int_eq(ctx_group_try_go(g, quick_fn, &ran), EAGAIN);
	ctx_cancel(ctx_group_ctx(g));
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&ran), 0); /* refused: never ran */
	ctx_group_free(g);
}
END_TEST

static int stack_fn(ctx_t *ctx, void *arg)
{
	(void)ctx;
	pthread_attr_t a;
	size_t sz = 0;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, &sz);
		pthread_attr_destroy(&a);
	}
	*(size_t *)arg = sz;
	return 0;
}

/* The stack size set reaches the thread; compared with a thread of the
 * defaults, since sanitizers enlarge every stack. */
START_TEST(test_group_set_attr)
{
	ctx_group_t *g = ctx_group_new(ctx_background());
	size_t dflt = 0, small = 0;
	pthread_attr_t a;

	ck_assert_int_eq(ctx_group_set_attr(NULL, NULL), EINVAL);
	ck_assert_int_eq(ctx_group_go(g, stack_fn, &dflt), 0);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ctx_group_free(g);

	g = ctx_group_new(ctx_background());
	pthread_attr_init(&a);
	ck_assert_int_eq(pthread_attr_setstacksize(&a, 256 * 1024), 0);
	ck_assert_int_eq(ctx_group_set_attr(g, &a), 0);
	pthread_attr_destroy(&a); /* the group keeps its own copy */
	ck_assert_int_eq(ctx_group_go(g, stack_fn, &small), 0);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_uint_gt(small, 0);
	ck_assert_uint_lt(small, dflt);

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	ck_assert_int_eq(ctx_group_set_attr(g, &a), EINVAL);
	pthread_attr_destroy(&a);
	static char stack[1 << 16] __attribute__((aligned(4096)));
	pthread_attr_init(&a);
	ck_assert_int_eq(pthread_attr_setstack(&a, stack, sizeof(stack)), 0);
	ck_assert_int_eq(ctx_group_set_attr(g, &a), EINVAL); /* shared stack */
	pthread_attr_destroy(&a);
	ck_assert_int_eq(ctx_group_set_attr(g, NULL), 0); /* defaults */
	ctx_group_free(g);
}
END_TEST

/* ---- ctx_wg_go --------------------------------------------------------- */

struct wgrec {
	atomic_int ran;
	atomic_int live; /* the context was live in fn */
};

static void wg_fn(ctx_t *ctx, void *arg)
{
	struct wgrec *r = arg;
	tu_sleep_ns(20 * CTX_MSEC);
	if (ctx_err(ctx) == 0)
		atomic_fetch_add(&r->live, 1);
	atomic_fetch_add(&r->ran, 1);
}

START_TEST(test_wg_go)
{
	ctx_wg_t *wg = ctx_wg_new();
	struct wgrec r = { 0 };

	ck_assert_int_eq(ctx_wg_go(NULL, ctx_background(), wg_fn, &r), EINVAL);
	ck_assert_int_eq(ctx_wg_go(wg, NULL, wg_fn, &r), EINVAL);
	ck_assert_int_eq(ctx_wg_go(wg, ctx_background(), NULL, &r), EINVAL);
	ctx_t *c = ctx_with_cancel(ctx_background());
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(ctx_wg_go(wg, c, wg_fn, &r), 0);
	ctx_unref(c); /* the threads hold their own references */
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ck_assert_int_eq(atomic_load(&r.ran), 8);
	ck_assert_int_eq(atomic_load(&r.live), 8);
	ctx_wg_free(wg);
}
END_TEST

/* The done comes after the thread dropped its reference: once the wait
 * returns, the caller's reference is the last one. */
static atomic_int freed_marker;

static void wg_check_fn(ctx_t *ctx, void *arg)
{
	(void)arg;
	(void)ctx;
	atomic_store(&freed_marker, 1);
}

START_TEST(test_wg_go_order)
{
	ctx_wg_t *wg = ctx_wg_new();
	ctx_t *c = ctx_with_cancel(ctx_background());

	for (int round = 0; round < 50; round++) {
		ck_assert_int_eq(ctx_wg_go(wg, c, wg_check_fn, NULL), 0);
		ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
		ck_assert_int_eq(atomic_load(&freed_marker), 1);
		atomic_store(&freed_marker, 0);
	}
	/* With CTX_DEBUG=leaks a context freed late would show; here the
	 * reference count must be back to ours alone: ctx_release frees it
	 * now, which ASan checks against any later use by a thread. */
	ctx_release(c);
	ctx_wg_free(wg);
}
END_TEST

Suite *suite_errgroup(void)
{
	Suite *s = suite_create("errgroup");
	TCase *tc = tu_tcase(s, "api", 30);

	tu_add_tests(tc, test_group_try_go, test_group_set_attr, test_wg_go,
		     test_wg_go_order);
	return s;
}
