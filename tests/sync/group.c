/*
 * Error groups (ctx_group_*): functions on threads with the group's
 * context, the first error cancelling it as its cause, wait, limits, and
 * no thread left behind.
 *
 * Functions record what they saw; the test's own thread asserts after
 * ctx_group_wait or ctx_group_free.  Thread counts come from
 * /proc/self/task, taken right before and after the group (library
 * threads started earlier by other tests, when they share the process,
 * are in both counts).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define LONG_WAIT (10 * CTX_SEC)
#define SLOW_MS 2000.0

/* ---- helpers --------------------------------------------------------- */


/* A group function that records its context, sleeps on it (cancellably)
 * for `delay`, then returns `ret`. */
struct job {
	int ret;
	int64_t delay;
	sem_t *gate;        /* if set, wait for it first */
	atomic_int *finished;
	ctx_t *seen;
	pthread_t self;
	int slept;          /* ctx_sleep's result */
	int cause;          /* ctx_cause(ctx) after the sleep */
};

static int job_fn(ctx_t *ctx, void *arg)
{
	struct job *j = arg;

	j->seen = ctx;
	j->self = pthread_self();
	if (j->gate)
		while (sem_wait(j->gate) != 0)
			;
	j->slept = j->delay ? ctx_sleep(ctx, j->delay) : 0;
	j->cause = ctx_cause(ctx);
	if (j->finished)
		atomic_fetch_add(j->finished, 1);
	return j->ret;
}

static ctx_group_t *group(ctx_t *parent)
{
	ctx_group_t *g = ctx_group_new(parent);

	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(ctx_group_ctx(g));
	return g;
}

/* ---- results --------------------------------------------------------- */

#define JOBS 4

/* All succeed: wait returns 0, each ran on its own thread with the
 * group's context, which wait then cancels (as Go's errgroup does). */
START_TEST(test_group_ok)
{
	ctx_group_t *g = group(ctx_background());
	ctx_t *gc = ctx_group_ctx(g);
	struct job j[JOBS];

	ck_assert_int_eq(ctx_err(gc), 0);
	for (int i = 0; i < JOBS; i++) {
		j[i] = (struct job){ .delay = 10 * CTX_MSEC, .slept = -1 };
		ck_assert_int_eq(ctx_group_go(g, job_fn, &j[i]), 0);
	}
	ck_assert_int_eq(ctx_group_wait(g), 0);
	for (int i = 0; i < JOBS; i++) {
		ck_assert_ptr_eq(j[i].seen, gc);
		ck_assert(!pthread_equal(j[i].self, pthread_self()));
		ck_assert_int_eq(j[i].slept, 0);
		ck_assert_int_eq(j[i].cause, 0);
	}
	ck_assert(!pthread_equal(j[0].self, j[1].self));
	ck_assert_int_eq(ctx_err(gc), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(gc), CTX_CANCELED);
	ctx_group_free(g);
}
END_TEST

/* The first error cancels the others through the group's context, with
 * itself as the cause; wait returns it, not the later ones. */
START_TEST(test_group_first_error)
{
	ctx_group_t *g = group(ctx_background());
	ctx_t *gc = ctx_group_ctx(g);
	struct job j[JOBS];
	int64_t t0 = ctx_now();

	j[0] = (struct job){ .ret = EIO, .delay = 20 * CTX_MSEC };
	for (int i = 1; i < JOBS; i++)
		j[i] = (struct job){ .ret = ECONNRESET, .delay = LONG_WAIT };
	for (int i = 0; i < JOBS; i++)
		ck_assert_int_eq(ctx_group_go(g, job_fn, &j[i]), 0);
	ck_assert_int_eq(ctx_group_wait(g), EIO);
	ck_assert_double_ge(tu_ms_since(t0), 15.0);
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
	ck_assert_int_eq(j[0].slept, 0);
	for (int i = 1; i < JOBS; i++) {
		ck_assert_int_eq(j[i].slept, CTX_CANCELED);
		ck_assert_int_eq(j[i].cause, EIO);
	}
	ck_assert_int_eq(ctx_err(gc), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(gc), EIO);
	ctx_group_free(g);
}
END_TEST

/* The group's context is a child of the parent: cancelling the parent
 * reaches the functions, and wait returns what they returned. */
START_TEST(test_group_parent_cancel)
{
	ctx_t *parent = ctx_with_cancel(ctx_background());
	ctx_group_t *g = group(parent);
	struct job j[JOBS];
	int64_t t0 = ctx_now();

	for (int i = 0; i < JOBS; i++) {
		j[i] = (struct job){ .delay = LONG_WAIT };
		ck_assert_int_eq(ctx_group_go(g, job_fn, &j[i]), 0);
	}
	tu_sleep_ns(20 * CTX_MSEC);
	ctx_cancel_cause(parent, EPERM);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
	for (int i = 0; i < JOBS; i++) {
		ck_assert_int_eq(j[i].slept, CTX_CANCELED);
		ck_assert_int_eq(j[i].cause, EPERM);
	}
	ck_assert_int_eq(ctx_cause(ctx_group_ctx(g)), EPERM);
	ctx_group_free(g);
	ctx_release(parent);
}
END_TEST

/* A group of a context already done still runs its functions, which see
 * the context done. */
START_TEST(test_group_done_parent)
{
	ctx_t *parent = ctx_with_cancel(ctx_background());
	ctx_group_t *g;
	struct job j = { .delay = LONG_WAIT, .slept = -1 };

	ctx_cancel_cause(parent, EPIPE);
	g = group(parent);
	ck_assert_int_eq(ctx_err(ctx_group_ctx(g)), CTX_CANCELED);
	ck_assert_int_eq(ctx_group_go(g, job_fn, &j), 0);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(j.slept, CTX_CANCELED);
	ck_assert_int_eq(j.cause, EPIPE);
	ctx_group_free(g);
	ctx_release(parent);
}
END_TEST

START_TEST(test_group_wait_empty)
{
	ctx_group_t *g = group(ctx_background());

	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(ctx_err(ctx_group_ctx(g)), CTX_CANCELED);
	ctx_group_free(g);
	ctx_group_free(group(ctx_background())); /* never waited */
}
END_TEST

/* A function may start more functions in its own group; wait waits for
 * them too. */
struct spawner {
	ctx_group_t *g;
	struct job child;
	int go_err;
};

static int spawner_fn(ctx_t *ctx, void *arg)
{
	struct spawner *s = arg;

	(void)ctx;
	s->go_err = ctx_group_go(s->g, job_fn, &s->child);
	return 0;
}

START_TEST(test_group_nested_go)
{
	atomic_int finished = 0;
	struct spawner s = {
		.g = group(ctx_background()),
		.child = { .ret = EEXIST, .delay = 30 * CTX_MSEC,
			   .finished = &finished },
		.go_err = -1,
	};

	ck_assert_int_eq(ctx_group_go(s.g, spawner_fn, &s), 0);
	ck_assert_int_eq(ctx_group_wait(s.g), EEXIST);
	ck_assert_int_eq(s.go_err, 0);
	ck_assert_int_eq(atomic_load(&finished), 1);
	ck_assert_int_eq(s.child.slept, 0);
	ctx_group_free(s.g);
}
END_TEST

/*
 * Two functions fail at once, many times over: whichever wins, wait's
 * result and the context's cause are the same error.
 */
struct racing_error {
	int ret;
	uint32_t spins;
};

static int racing_error_fn(ctx_t *ctx, void *arg)
{
	struct racing_error *r = arg;

	(void)ctx;
	tu_spin(r->spins);
	return r->ret;
}

START_TEST(test_group_race_errors)
{
	int rounds = tu_quick() ? 50 : 300;
	uint32_t seed = 0x51ed270b;
	int first[2] = { 0, 0 };

	for (int i = 0; i < rounds; i++) {
		ctx_group_t *g = group(ctx_background());
		struct racing_error r[2] = {
			{ .ret = EIO, .spins = tu_rand(&seed) % 20000 },
			{ .ret = EPERM, .spins = tu_rand(&seed) % 20000 },
		};
		int e;

		ck_assert_int_eq(ctx_group_go(g, racing_error_fn, &r[0]), 0);
		ck_assert_int_eq(ctx_group_go(g, racing_error_fn, &r[1]), 0);
		e = ctx_group_wait(g);
		ck_assert_msg(e == EIO || e == EPERM, "round %d: wait %d", i,
			      e);
		ck_assert_msg(ctx_cause(ctx_group_ctx(g)) == e,
			      "round %d: wait %d, cause %d", i, e,
			      ctx_cause(ctx_group_ctx(g)));
		first[e == EPERM]++;
		ctx_group_free(g);
	}
	ck_assert_int_eq(first[0] + first[1], rounds);
}
END_TEST

/* ---- limits ---------------------------------------------------------- */

/* Counts how many run at once and the most there ever were. */
struct concurrency {
	atomic_int now, max, ran;
	int64_t hold;
	sem_t *gate;        /* if set, wait for it after counting in */
};

static int counted_fn(ctx_t *ctx, void *arg)
{
	struct concurrency *c = arg;
	int n = atomic_fetch_add(&c->now, 1) + 1;
	int m = atomic_load(&c->max);

	(void)ctx;
	while (n > m && !atomic_compare_exchange_weak(&c->max, &m, n))
		;
	if (c->gate)
		while (sem_wait(c->gate) != 0)
			;
	tu_sleep_ns(c->hold);
	atomic_fetch_add(&c->ran, 1);
	atomic_fetch_sub(&c->now, 1);
	return 0;
}

#define LIMIT 3
#define LIMITED_JOBS 12

/* With a limit of n, never more than n run, go blocks for a free slot,
 * and all still run. */
START_TEST(test_group_limit)
{
	ctx_group_t *g = group(ctx_background());
	struct concurrency c = { .hold = 50 * CTX_MSEC };
	int64_t t0 = ctx_now();

	ck_assert_int_eq(ctx_group_set_limit(g, LIMIT), 0);
	for (int i = 0; i < LIMITED_JOBS; i++)
		ck_assert_int_eq(ctx_group_go(g, counted_fn, &c), 0);
	/* The last go waited for three rounds of 50 ms to finish. */
	ck_assert_double_ge(tu_ms_since(t0), 100.0);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&c.ran), LIMITED_JOBS);
	ck_assert_int_eq(atomic_load(&c.max), LIMIT);
	ctx_group_free(g);
}
END_TEST

/* A negative limit means none: every go returns while all the earlier
 * functions still run (they wait for a gate opened only after the last
 * go), and all of them run at once. */
START_TEST(test_group_no_limit)
{
	ctx_group_t *g = group(ctx_background());
	sem_t gate;
	struct concurrency c = { .gate = &gate };
	int64_t end;

	sem_init(&gate, 0, 0);
	ck_assert_int_eq(ctx_group_set_limit(g, 1), 0);
	ck_assert_int_eq(ctx_group_set_limit(g, -1), 0);
	for (int i = 0; i < LIMITED_JOBS; i++)
		ck_assert_int_eq(ctx_group_go(g, counted_fn, &c), 0);
	end = ctx_now() + 5 * CTX_SEC;
	while (atomic_load(&c.now) < LIMITED_JOBS && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	for (int i = 0; i < LIMITED_JOBS; i++)
		sem_post(&gate);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&c.ran), LIMITED_JOBS);
	ck_assert_int_eq(atomic_load(&c.max), LIMITED_JOBS);
	ctx_group_free(g);
	sem_destroy(&gate);
}
END_TEST

/* A go blocked on the limit proceeds when the limit is raised. */
struct blocked_go {
	pthread_t tid;
	ctx_group_t *g;
	struct job *j;
	atomic_int returned;
	int err;
};

static void *blocked_go_main(void *p)
{
	struct blocked_go *b = p;

	b->err = ctx_group_go(b->g, job_fn, b->j);
	atomic_store(&b->returned, 1);
	return NULL;
}

START_TEST(test_group_limit_raise)
{
	ctx_group_t *g = group(ctx_background());
	sem_t gate;
	atomic_int finished = 0;
	struct job a, b = { .finished = &finished };
	struct blocked_go bg = { .g = g, .j = &b, .err = -1 };
	int64_t end;

	sem_init(&gate, 0, 0);
	a = (struct job){ .gate = &gate, .finished = &finished };
	ck_assert_int_eq(ctx_group_set_limit(g, 1), 0);
	ck_assert_int_eq(ctx_group_go(g, job_fn, &a), 0);
	ck_assert_int_eq(pthread_create(&bg.tid, NULL, blocked_go_main, &bg),
			 0);
	tu_sleep_ns(30 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&bg.returned), 0);
	ck_assert_int_eq(ctx_group_set_limit(g, 2), 0);
	end = ctx_now() + 2 * CTX_SEC;
	while (!atomic_load(&bg.returned) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&bg.returned), 1);
	ck_assert_int_eq(pthread_join(bg.tid, NULL), 0);
	ck_assert_int_eq(bg.err, 0);
	sem_post(&gate);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&finished), 2);
	ctx_group_free(g);
	sem_destroy(&gate);
}
END_TEST

/* ---- threads --------------------------------------------------------- */

#define GATED 8

/* Every function has returned when wait returns, and no thread of the
 * group is left. */
START_TEST(test_group_wait_leaves_no_thread)
{
	int base = tu_count_threads();
	ctx_group_t *g = group(ctx_background());
	sem_t gate;
	atomic_int finished = 0;
	struct job j[GATED];

	sem_init(&gate, 0, 0);
	for (int i = 0; i < GATED; i++) {
		j[i] = (struct job){ .gate = &gate, .finished = &finished,
				     .delay = CTX_MSEC };
		ck_assert_int_eq(ctx_group_go(g, job_fn, &j[i]), 0);
	}
#ifndef TU_TSAN /* no thread counts there: see testutil.h */
	ck_assert_int_ge(tu_count_threads(), base + GATED);
#endif
	for (int i = 0; i < GATED; i++)
		sem_post(&gate);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ck_assert_int_eq(atomic_load(&finished), GATED);
	ck_assert_int_eq(tu_settle_threads(base, 2 * CTX_SEC), base);
	ctx_group_free(g);
	ck_assert_int_eq(tu_count_threads(), base);
	sem_destroy(&gate);
}
END_TEST

/* Free without wait cancels the group's context, waits for the
 * functions, and leaves no thread. */
START_TEST(test_group_free_cancels)
{
	int base = tu_count_threads();
	ctx_group_t *g = group(ctx_background());
	atomic_int finished = 0;
	struct job j[GATED];
	int64_t t0;

	for (int i = 0; i < GATED; i++) {
		j[i] = (struct job){ .delay = LONG_WAIT, .finished = &finished,
				     .slept = -1 };
		ck_assert_int_eq(ctx_group_go(g, job_fn, &j[i]), 0);
	}
	tu_sleep_ns(20 * CTX_MSEC);
	t0 = ctx_now();
	ctx_group_free(g);
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
	ck_assert_int_eq(atomic_load(&finished), GATED);
	for (int i = 0; i < GATED; i++)
		ck_assert_int_eq(j[i].slept, CTX_CANCELED);
	ck_assert_int_eq(tu_settle_threads(base, 2 * CTX_SEC), base);
}
END_TEST

START_TEST(test_group_null)
{
	ctx_group_t *g = group(ctx_background());

	errno = 0;
	ck_assert_ptr_null(ctx_group_new(NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_group_ctx(NULL));
	ck_assert_int_eq(ctx_group_set_limit(NULL, 1), EINVAL);
	ck_assert_int_eq(ctx_group_go(NULL, job_fn, NULL), EINVAL);
	ck_assert_int_eq(ctx_group_go(g, NULL, NULL), EINVAL);
	ck_assert_int_eq(ctx_group_wait(NULL), EINVAL);
	ctx_group_free(NULL);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ctx_group_free(g);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */


Suite *suite_group(void)
{
	Suite *s = suite_create("group");
	TCase *tc;

	tc = tu_tcase(s, "results", 30);
	tu_add_tests(tc, test_group_ok, test_group_first_error,
		     test_group_parent_cancel, test_group_done_parent,
		     test_group_wait_empty, test_group_nested_go,
		     test_group_race_errors, test_group_null);

	tc = tu_tcase(s, "limit", 30);
	tu_add_tests(tc, test_group_limit, test_group_no_limit,
		     test_group_limit_raise);

	tc = tu_tcase(s, "threads", 30);
	tu_add_tests(tc, test_group_wait_leaves_no_thread,
		     test_group_free_cancels);

	return s;
}
