/*
 * After-funcs (ctx_after_func, ctx_after_stop): fn runs once, on a
 * library thread, after the context is done -- at its deadline even with
 * no thread waiting -- and stop says exactly whether it kept fn from
 * running.  Also: a program that never asks for after-funcs (or done
 * descriptors at deadlines) starts no thread at all.
 *
 * While waiting for fn the tests sleep with nanosleep and read atomics,
 * never entering the library, so nothing of the test's own can be what
 * notices a deadline.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define SLOW (2 * CTX_SEC)

/* ---- helpers --------------------------------------------------------- */


/* What an after-func saw when it ran.  The fields are written before
 * the run count, so a reader that sees the count sees them too. */
struct rec {
	atomic_int runs;
	pthread_t thread;
	int64_t at;
	ctx_t *ctx;       /* if set, fn reads its error */
	int err_seen;
};

static void rec_fn(void *arg)
{
	struct rec *r = arg;

	r->thread = pthread_self();
	r->at = ctx_now();
	if (r->ctx)
		r->err_seen = ctx_err(r->ctx);
	atomic_fetch_add(&r->runs, 1);
}

/* Wait (outside the library) until r ran `want` times; its run count. */
static int wait_runs(struct rec *r, int want, int64_t timeout)
{
	int64_t end = ctx_now() + timeout;

	while (atomic_load(&r->runs) < want && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	return atomic_load(&r->runs);
}

static ctx_after_t *after(ctx_t *c, struct rec *r)
{
	ctx_after_t *a = ctx_after_func(c, rec_fn, r);

	ck_assert_ptr_nonnull(a);
	return a;
}

/* ---- when fn runs ---------------------------------------------------- */

/* Not before the cancel; once after it, on another thread, with the
 * context already done; stop then reports that fn ran. */
START_TEST(test_after_cancel)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct rec r = { .ctx = c };
	ctx_after_t *a = after(c, &r);

	tu_sleep_ns(30 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&r.runs), 0);
	ctx_cancel(c);
	ck_assert_int_eq(wait_runs(&r, 1, SLOW), 1);
	ck_assert(!pthread_equal(r.thread, pthread_self()));
	ck_assert_int_eq(r.err_seen, CTX_CANCELED);
	ctx_cancel(c);
	tu_sleep_ns(30 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&r.runs), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
}
END_TEST

/* A deadline that nobody waits for still runs fn, at the deadline. */
START_TEST(test_after_deadline_no_waiter)
{
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	struct rec r = { .ctx = c };
	ctx_after_t *a = after(c, &r);

	ck_assert_int_eq(wait_runs(&r, 1, SLOW), 1);
	ck_assert_int_ge(r.at - t0, 25 * CTX_MSEC);
	ck_assert_int_eq(r.err_seen, CTX_DEADLINE_EXCEEDED);
	ck_assert(!pthread_equal(r.thread, pthread_self()));
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
}
END_TEST

/* A context already done runs fn soon after creation -- on the library's
 * thread, not inside ctx_after_func. */
START_TEST(test_after_already_done)
{
	ctx_t *c[3];
	struct rec r[3] = { { 0 } };
	ctx_after_t *a[3];

	c[0] = ctx_with_cancel(ctx_background());
	ctx_cancel(c[0]);
	c[1] = ctx_with_timeout(ctx_background(), 0);
	/* Expired, but nobody has looked yet. */
	c[2] = ctx_with_timeout(ctx_background(), 5 * CTX_MSEC);
	tu_sleep_ns(15 * CTX_MSEC);
	for (int i = 0; i < 3; i++)
		a[i] = after(c[i], &r[i]);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(wait_runs(&r[i], 1, SLOW), 1);
		ck_assert(!pthread_equal(r[i].thread, pthread_self()));
		ck_assert(!ctx_after_stop(a[i]));
		ctx_release(c[i]);
	}
}
END_TEST

/* Contexts derived from the one that ends: a value context and a child
 * that inherits its parent's deadline. */
START_TEST(test_after_derived)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *v = ctx_with_value(c, &c, NULL);
	ctx_t *t = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	ctx_t *tc = ctx_with_cancel(t);
	struct rec rv = { .ctx = v }, rt = { .ctx = tc }, rp = { 0 };
	ctx_after_t *av = after(v, &rv), *at = after(tc, &rt);
	ctx_t *child = ctx_with_cancel(c);
	ctx_after_t *ap = after(c, &rp);

	/* A child's end does not reach its parent's after-funcs. */
	ctx_cancel(child);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&rp.runs), 0);
	ck_assert_int_eq(atomic_load(&rv.runs), 0);

	ctx_cancel(c);
	ck_assert_int_eq(wait_runs(&rv, 1, SLOW), 1);
	ck_assert_int_eq(rv.err_seen, CTX_CANCELED);
	ck_assert_int_eq(wait_runs(&rp, 1, SLOW), 1);
	ck_assert_int_eq(wait_runs(&rt, 1, SLOW), 1);
	ck_assert_int_eq(rt.err_seen, CTX_DEADLINE_EXCEEDED);
	ck_assert(!ctx_after_stop(av));
	ck_assert(!ctx_after_stop(at));
	ck_assert(!ctx_after_stop(ap));
	tu_release(child, v, c, tc, t);
}
END_TEST

/* Many after-funcs on one context each run exactly once. */
#define MANY_AFTER 100

START_TEST(test_after_many)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct rec *r = calloc(MANY_AFTER, sizeof(*r));
	ctx_after_t *a[MANY_AFTER];

	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < MANY_AFTER; i++)
		a[i] = after(c, &r[i]);
	ctx_cancel(c);
	for (int i = 0; i < MANY_AFTER; i++)
		ck_assert_int_eq(wait_runs(&r[i], 1, SLOW), 1);
	tu_sleep_ns(20 * CTX_MSEC);
	for (int i = 0; i < MANY_AFTER; i++) {
		ck_assert_int_eq(atomic_load(&r[i].runs), 1);
		ck_assert(!ctx_after_stop(a[i]));
	}
	ctx_release(c);
	free(r);
}
END_TEST

/* ---- stop ------------------------------------------------------------ */

/* Stopped first, fn never runs, though the context then ends. */
START_TEST(test_after_stop_before)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *t = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	struct rec rc = { 0 }, rt = { 0 };
	ctx_after_t *ac = after(c, &rc), *at = after(t, &rt);

	ck_assert(ctx_after_stop(ac));
	ck_assert(ctx_after_stop(at));
	ctx_cancel(c);
	tu_sleep_ns(60 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(t), CTX_DEADLINE_EXCEEDED);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&rc.runs), 0);
	ck_assert_int_eq(atomic_load(&rt.runs), 0);
	ctx_release(c);
	ctx_release(t);
}
END_TEST

/* A context that can never end never runs fn; stop says it kept it from
 * running. */
START_TEST(test_after_never_done)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *w = ctx_without_cancel(c);
	struct rec rb = { 0 }, rw = { 0 };
	ctx_after_t *ab = after(ctx_background(), &rb), *aw = after(w, &rw);

	ctx_cancel(c);
	tu_sleep_ns(30 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&rb.runs), 0);
	ck_assert_int_eq(atomic_load(&rw.runs), 0);
	ck_assert(ctx_after_stop(ab));
	ck_assert(ctx_after_stop(aw));
	ctx_release(w);
	ctx_release(c);
}
END_TEST

/*
 * Stop racing the context's end: one thread cancels while another stops,
 * many times over.  Exactly one of "stop returned true" and "fn ran"
 * holds in every round.
 *
 * The two sides start each round by spinning on a shared counter rather
 * than through a barrier or a futex, so that they leave within a few
 * nanoseconds of each other and the random spins, not wake-up latency,
 * decide which comes first.
 */
struct stop_race {
	atomic_int round;       /* bumped by the test to start a round */
	atomic_int finished;    /* the last round the canceller finished */
	atomic_bool quit;
	ctx_t *_Atomic c;
	_Atomic uint32_t spins;
};

/* Spin until *v reaches want (or quit is set); false if quit.  Past
 * 100 us of spinning, yield now and then: only a slow machine (or
 * valgrind, whose scheduler lock a spinning thread can hog) gets there. */
static bool await(atomic_int *v, int want, atomic_bool *quit)
{
	int64_t yield_after = ctx_now() + 100 * CTX_USEC;

	for (unsigned i = 0; atomic_load(v) < want; i++) {
		if (quit && atomic_load(quit))
			return false;
		if (i % 256 == 255 && ctx_now() > yield_after)
			sched_yield();
	}
	return true;
}

static void *stop_race_canceller(void *p)
{
	struct stop_race *s = p;

	for (int r = 1; await(&s->round, r, &s->quit); r++) {
		tu_spin(atomic_load(&s->spins));
		ctx_cancel(atomic_load(&s->c));
		atomic_store(&s->finished, r);
	}
	return NULL;
}

static void flag_fn(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

START_TEST(test_after_race_stop)
{
	int rounds = tu_quick() ? 300 : 3000;
	atomic_int *ran = calloc((size_t)rounds, sizeof(*ran));
	bool *stopped = calloc((size_t)rounds, sizeof(*stopped));
	struct stop_race s = { .quit = false };
	uint32_t seed = 0x6b43a9b5;
	int n_stopped = 0, want, total;
	pthread_t tid;
	int64_t end;

	ck_assert(ran && stopped);
	ck_assert_int_eq(pthread_create(&tid, NULL, stop_race_canceller, &s),
			 0);
	for (int i = 0; i < rounds; i++) {
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_after_t *a = ctx_after_func(c, flag_fn, &ran[i]);

		ck_assert_ptr_nonnull(a);
		atomic_store(&s.c, c);
		atomic_store(&s.spins, tu_rand(&seed) % 1500);
		atomic_store(&s.round, i + 1);
		tu_spin(tu_rand(&seed) % 1500);
		stopped[i] = ctx_after_stop(a);
		n_stopped += stopped[i];
		await(&s.finished, i + 1, NULL);
		ctx_release(c);
	}
	atomic_store(&s.quit, true);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);

	/* Let the runner catch up, then a little longer for strays. */
	want = rounds - n_stopped;
	end = ctx_now() + 5 * CTX_SEC;
	do {
		tu_sleep_ns(CTX_MSEC);
		total = 0;
		for (int i = 0; i < rounds; i++)
			total += atomic_load(&ran[i]);
	} while (total < want && ctx_now() < end);
	tu_sleep_ns(50 * CTX_MSEC);
	for (int i = 0; i < rounds; i++)
		ck_assert_msg(atomic_load(&ran[i]) == !stopped[i],
			      "round %d: stop returned %d, fn ran %d times",
			      i, stopped[i], atomic_load(&ran[i]));
	free(ran);
	free(stopped);
}
END_TEST

START_TEST(test_after_null)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct rec r = { 0 };

	errno = 0;
	ck_assert_ptr_null(ctx_after_func(NULL, rec_fn, &r));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_after_func(c, NULL, &r));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert(!ctx_after_stop(NULL));
	ctx_release(c);
	tu_sleep_ns(10 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&r.runs), 0);
}
END_TEST

/* ---- threads --------------------------------------------------------- */

/*
 * Contexts, cancels, deadlines, sleeps and reads with deadlines -- all of
 * it without after-funcs or done descriptors at deadlines -- start no
 * thread.  In a forked test the process has only the test's thread.
 */
START_TEST(test_after_no_thread_without_use)
{
	int base = tu_count_threads();
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *d = ctx_with_timeout(c, 20 * CTX_MSEC);
	ctx_t *v = ctx_with_value(d, &base, NULL);
	ctx_t *e = ctx_with_timeout(ctx_background(), 5 * CTX_MSEC);
	ctx_t *w;
	int p[2];
	char b;

	if (tu_forked())
		ck_assert_int_eq(base, 1);
	ck_assert_int_eq(ctx_sleep(c, 5 * CTX_MSEC), 0);
	ck_assert_int_eq(ctx_sleep(v, 10 * CTX_SEC), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_ge(ctx_done_fd(c), 0); /* no deadline: no timer */
	tu_sleep_ns(10 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(e), CTX_DEADLINE_EXCEEDED);

	ck_assert_int_eq(pipe(p), 0);
	w = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
	ck_assert_int_eq(ctx_read(w, p[0], &b, 1), -1);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_wait(w), CTX_DEADLINE_EXCEEDED);
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < 100; i++)
		ctx_release(ctx_with_timeout(c, CTX_SEC));
	tu_release(w, e, v, d, c);
	ck_assert_int_eq(tu_count_threads(), base);
}
END_TEST

/* After-funcs run on a few library threads, not one per function. */
START_TEST(test_after_threads_bounded)
{
	int base = tu_count_threads();
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct rec *r = calloc(2 * MANY_AFTER, sizeof(*r));
	ctx_after_t *a[2 * MANY_AFTER];
	ctx_t *t[MANY_AFTER];

	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < MANY_AFTER; i++) {
		t[i] = ctx_with_timeout(c, (10 + i % 10) * CTX_MSEC);
		a[i] = after(t[i], &r[i]);
		a[MANY_AFTER + i] = after(c, &r[MANY_AFTER + i]);
	}
	for (int i = 0; i < MANY_AFTER; i++)
		ck_assert_int_eq(wait_runs(&r[i], 1, SLOW), 1);
	ck_assert_int_le(tu_count_threads(), base + 2);
	ctx_cancel(c);
	for (int i = 0; i < 2 * MANY_AFTER; i++) {
		ck_assert_int_eq(wait_runs(&r[i], 1, SLOW), 1);
		ck_assert(!ctx_after_stop(a[i]));
	}
	ck_assert_int_le(tu_count_threads(), base + 2);
	for (int i = 0; i < MANY_AFTER; i++)
		ctx_release(t[i]);
	ctx_release(c);
	free(r);
}
END_TEST

/* ---- fork while the library's threads sleep ------------------------- */

/*
 * A process forked while the timer thread or the after-func runner
 * sleeps on its condition variable: the child's copy of the variable
 * still counts the parent's sleeper, who is not there.  glibc then gives
 * a signal to that ghost rather than to the child's own thread, and a
 * later signal waits for the ghost to wake, forever.  So the child
 * signals each variable several times: deadlines each sooner than the
 * last, after-funcs one after another; each must be seen within five
 * seconds.
 */
static bool child_timer(void)
{
	bool ok = true;
	for (int i = 0; i < 4 && ok; i++) {
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    (40 - 10 * i) * CTX_MSEC);
		struct pollfd p = { .fd = ctx_done_fd(c), .events = POLLIN };
		ok = p.fd >= 0 && poll(&p, 1, 5000) == 1;
		ctx_release(c);
	}
	return ok;
}

static bool child_runner(void)
{
	bool ok = true;
	for (int i = 0; i < 4 && ok; i++) {
		struct rec r = { .runs = 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_after_t *a = ctx_after_func(c, rec_fn, &r);
		ctx_cancel(c);
		ok = a && wait_runs(&r, 1, 5 * CTX_SEC) == 1;
		if (a)
			ctx_after_stop(a);
		ctx_release(c);
	}
	return ok;
}

/* A child's status when all went well: not 0 or 1, so that valgrind's
 * error exit code cannot pass for it. */
#define CHILD_FINE 64

/* Fork with both threads asleep; the child runs fn; its exit status,
 * or -1 if it did not exit within ten seconds (it is killed then). */
static int fork_and_run(bool (*fn)(void))
{
	int status;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn() ? CHILD_FINE : CHILD_FINE + 1);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		tu_sleep_ns(10 * CTX_MSEC);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* The parent holds nothing but c (which the timer's heap holds too)
 * when it forks, so that a child that exits leaks nothing. */
START_TEST(test_after_fork_while_asleep)
{
#ifdef TU_TSAN
	/* ThreadSanitizer stops a child that starts a thread after a fork
	 * of a process with threads (die_after_fork), which this is. */
	fprintf(stderr, "after/fork: skipped under ThreadSanitizer\n");
	return;
#endif
	struct rec r = { .runs = 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	ctx_t *d = ctx_with_cancel(ctx_background());
	ctx_after_t *a = after(d, &r);

	ck_assert_int_ge(ctx_done_fd(c), 0); /* the timer: 60 s to sleep */
	ctx_cancel(d); /* the runner: one to run, then asleep */
	ck_assert_int_eq(wait_runs(&r, 1, SLOW), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(d);
	tu_sleep_ns(20 * CTX_MSEC);
	int st = fork_and_run(child_timer);
	ck_assert_msg(st == CHILD_FINE, "the child's done descriptors: "
		      "status %d (%d: all turned readable)", st, CHILD_FINE);
	st = fork_and_run(child_runner);
	ck_assert_msg(st == CHILD_FINE, "the child's after-funcs: status %d "
		      "(%d: all ran)", st, CHILD_FINE);
	ctx_release(c);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */


Suite *suite_after(void)
{
	Suite *s = suite_create("after");
	TCase *tc;

	tc = tu_tcase(s, "run", 30);
	tu_add_tests(tc, test_after_cancel, test_after_deadline_no_waiter,
		     test_after_already_done, test_after_derived,
		     test_after_many);

	tc = tu_tcase(s, "stop", 60);
	tu_add_tests(tc, test_after_stop_before, test_after_never_done,
		     test_after_race_stop, test_after_null);

	tc = tu_tcase(s, "threads", 30);
	tu_add_tests(tc, test_after_no_thread_without_use,
		     test_after_threads_bounded);

	tc = tu_tcase(s, "fork", 30);
	tu_add_tests(tc, test_after_fork_while_asleep);

	return s;
}
