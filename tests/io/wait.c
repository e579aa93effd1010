/*
 * The waits of runtime/io/ that are not one descriptor's transfer, beyond
 * the contract every blocking call keeps (tests/contract.c: a done
 * context refuses, a cancel or the deadline ends the wait, what comes
 * ends it): ctx_wait of many threads, through descendants, under
 * signals; ctx_sleep's full length, short sleeps adding up, and the
 * thread's timer left set by an earlier wait; ctx_poll's results entry
 * by entry, its own timeout, bad descriptors and hang-ups.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define HOUR (3600 * CTX_SEC)
#define SHORT_MS 50
#define SHORT (SHORT_MS * CTX_MSEC)
#define LATE_MS 2000
#define AT_ONCE_MS 500          /* "at once", with room for a noisy machine */

static const char key[] = "key";

/* ---- helpers ---------------------------------------------------------- */

/* n pipes; fds[i] polls the read end of pipe i for POLLIN. */
static int (*open_pipes(struct pollfd *fds, int n))[2]
{
	int (*p)[2] = calloc((size_t)n, sizeof(*p));

	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(pipe2(p[i], O_CLOEXEC), 0);
		fds[i] = (struct pollfd){ .fd = p[i][0], .events = POLLIN };
	}
	return p;
}

/* Entries a test closed itself are -1. */
static void close_pipes(int (*p)[2], int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 2; j++)
			if (p[i][j] >= 0)
				close(p[i][j]);
	free(p);
}

/* ---- ctx_wait --------------------------------------------------------- */

/* Many threads in ctx_wait, on one context (_i 0) or each on its own
 * child of it (_i 1): one cancel ends every wait, with the error. */
#define WAITERS 64
struct waiter {
	pthread_t th;
	ctx_t *ctx;
	_Atomic int rc;
};

static void *waiter_main(void *p)
{
	struct waiter *w = p;
	atomic_store(&w->rc, ctx_wait(w->ctx));
	return NULL;
}

START_TEST(test_wait_many)
{
	struct waiter w[WAITERS];
	ctx_t *root = ctx_with_cancel(ctx_background());

	for (int i = 0; i < WAITERS; i++) {
		w[i].ctx = _i ? ctx_with_cancel(root) : ctx_ref(root);
		atomic_init(&w[i].rc, -1);
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, waiter_main,
						&w[i]), 0);
	}
	tu_sleep_ns(SHORT); /* most are asleep by now; the rest refuse */
	for (int i = 0; i < WAITERS; i++)
		ck_assert_int_eq(atomic_load(&w[i].rc), -1);
	int64_t t0 = ctx_now();
	ctx_cancel(root);
	for (int i = 0; i < WAITERS; i++) {
		ck_assert_int_eq(pthread_join(w[i].th, NULL), 0);
		ck_assert_int_eq(atomic_load(&w[i].rc), CTX_CANCELED);
		ctx_release(w[i].ctx);
	}
	tu_assert_ms(tu_ms_since(t0), 0, LATE_MS);
	ctx_release(root);
}
END_TEST

/* A signal that interrupts the wait does not end it. */
static void on_usr1(int sig) { (void)sig; }

START_TEST(test_wait_signal)
{
	struct waiter w = { .ctx = ctx_with_cancel(ctx_background()) };
	struct sigaction sa = { .sa_handler = on_usr1 }, old;

	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	atomic_init(&w.rc, -1);
	ck_assert_int_eq(pthread_create(&w.th, NULL, waiter_main, &w), 0);
	tu_sleep_ns(SHORT);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(pthread_kill(w.th, SIGUSR1), 0);
		tu_sleep_ns(SHORT / 5);
	}
	ck_assert_int_eq(atomic_load(&w.rc), -1);
	ctx_cancel(w.ctx);
	ck_assert_int_eq(pthread_join(w.th, NULL), 0);
	ck_assert_int_eq(atomic_load(&w.rc), CTX_CANCELED);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	ctx_release(w.ctx);
}
END_TEST

/* Waiting on a descendant ends when an ancestor is cancelled: through a
 * value context (loop index 0), and through a value context and a child
 * with a deadline of its own (1). */
START_TEST(test_wait_descendant)
{
	struct tu_canceller k;
	ctx_t *root = ctx_with_cancel(ctx_background());
	ctx_t *v = ctx_with_value(root, key, NULL);
	ctx_t *d = ctx_with_timeout(v, HOUR);

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, root, SHORT);
	int rc = ctx_wait(_i ? d : v);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ck_assert_int_eq(ctx_err(_i ? v : d), CTX_CANCELED);
	tu_release(d, v, root);
}
END_TEST

/* A deadline inherited from an ancestor ends the wait, with the
 * ancestor's cause. */
START_TEST(test_wait_inherited_deadline)
{
	int64_t t0 = ctx_now();
	ctx_t *p = ctx_with_timeout_cause(ctx_background(), SHORT, 77);
	ctx_t *c = ctx_with_cancel(p);
	ctx_t *v = ctx_with_value(c, key, NULL);

	int rc = ctx_wait(v);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(rc, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ck_assert_int_eq(ctx_cause(v), 77);
	tu_release(v, c, p);
}
END_TEST

START_TEST(test_wait_null)
{
	ck_assert_int_eq(ctx_wait(NULL), EINVAL);
}
END_TEST

/* ---- ctx_sleep -------------------------------------------------------- */

START_TEST(test_sleep_full)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *roots[] = { c, ctx_background(), ctx_todo() };

	for (int i = 0; i < 3; i++) {
		int64_t t0 = ctx_now();
		int rc = ctx_sleep(roots[i], SHORT);

		ck_assert_int_eq(rc, 0);
		tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);
	}
	ctx_release(c);
}
END_TEST

/* Short sleeps add up: none ends early. */
START_TEST(test_sleep_many)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int64_t t0 = ctx_now();

	for (int i = 0; i < 20; i++) {
		int64_t t1 = ctx_now();

		ck_assert_int_eq(ctx_sleep(c, 5 * CTX_MSEC), 0);
		ck_assert_int_ge(ctx_now() - t1, 5 * CTX_MSEC);
	}
	tu_assert_ms(tu_ms_since(t0), 100, 100 + LATE_MS);
	ctx_release(c);
}
END_TEST

/* A sleep shorter than the context's deadline is a full sleep. */
START_TEST(test_sleep_before_deadline)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * SHORT);
	int64_t t0 = ctx_now();
	int rc = ctx_sleep(c, SHORT);
	double ms = tu_ms_since(t0);

	ck_assert_int_eq(rc, 0);
	tu_assert_ms(ms, SHORT_MS, 10 * SHORT_MS);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_release(c);
}
END_TEST

START_TEST(test_sleep_nonpositive)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int64_t t0 = ctx_now();

	ck_assert_int_eq(ctx_sleep(c, 0), 0);
	ck_assert_int_eq(ctx_sleep(c, -1), 0);
	ck_assert_int_eq(ctx_sleep(c, INT64_MIN), 0);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(c);
}
END_TEST

START_TEST(test_sleep_null)
{
	ck_assert_int_eq(ctx_sleep(NULL, SHORT), EINVAL);
	ck_assert_int_eq(ctx_sleep(NULL, 0), EINVAL);
}
END_TEST

/*
 * The thread's timer outlives the wait that set it: a wait for a context
 * with a 300 ms deadline, cancelled early, leaves it set for 300 ms.  A
 * later shorter sleep must still end on time, and a later longer one not
 * at 300 ms.
 */
START_TEST(test_sleep_rearm)
{
	struct tu_canceller k;
	ctx_t *c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);

	tu_must_cancel_after(&k, c, 10 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(c), CTX_CANCELED);
	tu_canceller_join(&k);

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_sleep(ctx_background(), 20 * CTX_MSEC), 0);
	tu_assert_ms(tu_ms_since(t0), 20, 250);

	t0 = ctx_now();
	ck_assert_int_eq(ctx_sleep(ctx_background(), 400 * CTX_MSEC), 0);
	tu_assert_ms(tu_ms_since(t0), 400, 400 + LATE_MS);
	ctx_release(c);
}
END_TEST

/* ---- ctx_poll --------------------------------------------------------- */

/* The ready count and each entry's revents, as poll(2) gives them. */
START_TEST(test_poll_ready)
{
	struct pollfd fds[3];
	int (*p)[2] = open_pipes(fds, 2);
	ctx_t *c = ctx_with_cancel(ctx_background());

	ck_assert_int_eq(write(p[1][1], "x", 1), 1);
	fds[2] = (struct pollfd){ .fd = p[0][1], .events = POLLOUT };
	fds[0].revents = fds[1].revents = fds[2].revents = 0x7f;
	ck_assert_int_eq(ctx_poll(c, fds, 3, HOUR), 2);
	ck_assert_int_eq(fds[0].revents, 0);
	ck_assert_int_eq(fds[1].revents, POLLIN);
	ck_assert_int_eq(fds[2].revents, POLLOUT);
	ctx_release(c);
	close_pipes(p, 2);
}
END_TEST

/* Its own timeout: 0, not an error, and not before. */
START_TEST(test_poll_timeout)
{
	struct pollfd fds[2];
	int (*p)[2] = open_pipes(fds, 2);
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	int n = ctx_poll(c, fds, 2, SHORT);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(fds[0].revents, 0);
	ck_assert_int_eq(fds[1].revents, 0);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_release(c);
	close_pipes(p, 2);
}
END_TEST

START_TEST(test_poll_zero_timeout)
{
	struct pollfd fds[1];
	int (*p)[2] = open_pipes(fds, 1);
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, fds, 1, 0), 0);
	ck_assert_int_eq(write(p[0][1], "x", 1), 1);
	ck_assert_int_eq(ctx_poll(c, fds, 1, 0), 1);
	ck_assert_int_eq(fds[0].revents, POLLIN);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(c);
	close_pipes(p, 1);
}
END_TEST

/* The poll's timeout before the context's deadline: 0, context live. */
START_TEST(test_poll_timeout_first)
{
	struct pollfd fds[1];
	int (*p)[2] = open_pipes(fds, 1);
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * SHORT);

	int64_t t0 = ctx_now();
	int n = ctx_poll(c, fds, 1, SHORT);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(n, 0);
	tu_assert_ms(ms, SHORT_MS, 10 * SHORT_MS);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_release(c);
	close_pipes(p, 1);
}
END_TEST

/* A descriptor that is not open is POLLNVAL, as in poll(2). */
START_TEST(test_poll_nval)
{
	struct pollfd fds[2];
	int (*p)[2] = open_pipes(fds, 2);
	ctx_t *c = ctx_with_cancel(ctx_background());

	close(p[0][0]);
	close(p[0][1]);
	p[0][0] = p[0][1] = -1;
	ck_assert_int_eq(ctx_poll(c, fds, 2, HOUR), 1);
	ck_assert_int_eq(fds[0].revents, POLLNVAL);
	ck_assert_int_eq(fds[1].revents, 0);
	ck_assert_int_eq(write(p[1][1], "x", 1), 1);
	ck_assert_int_eq(ctx_poll(c, fds, 2, HOUR), 2);
	ck_assert_int_eq(fds[0].revents, POLLNVAL);
	ck_assert_int_eq(fds[1].revents, POLLIN);
	ctx_release(c);
	close_pipes(p, 2);
}
END_TEST

/* A negative fd is ignored, as in poll(2); the peer's close is POLLHUP
 * though nobody asked for it. */
START_TEST(test_poll_ignored_and_hup)
{
	struct pollfd fds[2];
	int (*p)[2] = open_pipes(fds, 2);
	ctx_t *c = ctx_with_cancel(ctx_background());

	fds[0].fd = -1;
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, fds, 1, SHORT), 0);
	tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);
	close(p[1][1]);
	p[1][1] = -1;
	ck_assert_int_eq(ctx_poll(c, fds, 2, HOUR), 1);
	ck_assert_int_eq(fds[0].revents, 0);
	ck_assert_int_eq(fds[1].revents, POLLHUP);
	ctx_release(c);
	close_pipes(p, 2);
}
END_TEST

/* No descriptors: a sleep, which its timeout ends (and the context:
 * the contract test's). */
START_TEST(test_poll_no_fds)
{
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, NULL, 0, SHORT), 0);
	tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);
	ctx_release(c);
}
END_TEST

/*
 * Around and beyond 16 entries (the library's on-stack array holds 16,
 * with its own descriptor): with nothing ready, the poll's own timeout
 * ends it.  (Data on the last entry and a cancel: the contract test's
 * rows of 16, 17 and 300 pipes.)
 */
static const int heap_sizes[] = { 15, 16, 17, 40, 300 };

START_TEST(test_poll_many)
{
	int n = heap_sizes[_i];
	struct pollfd *fds = calloc((size_t)n, sizeof(*fds));
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_ptr_nonnull(fds);
	int (*p)[2] = open_pipes(fds, n);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, fds, (nfds_t)n, SHORT), 0);
	tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);
	for (int i = 0; i < n; i++)
		ck_assert_msg(fds[i].revents == 0, "fds[%d].revents %#x", i,
			      fds[i].revents);
	ctx_release(c);
	close_pipes(p, n);
	free(fds);
}
END_TEST

START_TEST(test_poll_null)
{
	struct pollfd fds[1];
	int (*p)[2] = open_pipes(fds, 1);

	tu_assert_fail(ctx_poll(NULL, fds, 1, SHORT), EINVAL);
	tu_assert_fail(ctx_poll(NULL, fds, 1, 0), EINVAL);
	close_pipes(p, 1);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_wait(void)
{
	Suite *s = suite_create("wait");
	TCase *tc;

	tc = tu_tcase(s, "wait", 30);
	tcase_add_loop_test(tc, test_wait_many, 0, 2);
	tcase_add_test(tc, test_wait_signal);
	tcase_add_loop_test(tc, test_wait_descendant, 0, 2);
	tu_add_tests(tc, test_wait_inherited_deadline, test_wait_null);

	tc = tu_tcase(s, "sleep", 30);
	tu_add_tests(tc, test_sleep_full, test_sleep_many,
		     test_sleep_before_deadline, test_sleep_nonpositive,
		     test_sleep_null, test_sleep_rearm);

	tc = tu_tcase(s, "poll", 30);
	tu_add_tests(tc, test_poll_ready, test_poll_timeout,
		     test_poll_zero_timeout, test_poll_timeout_first,
		     test_poll_nval, test_poll_ignored_and_hup,
		     test_poll_no_fds);
	tcase_add_loop_test(tc, test_poll_many, 0,
			    sizeof(heap_sizes) / sizeof(heap_sizes[0]));
	tcase_add_test(tc, test_poll_null);

	return s;
}
