/*
 * Cancellable waits that are not one descriptor's I/O: ctx_wait,
 * ctx_sleep, ctx_poll and ctx_waitpid.  Each is ended by cancellation
 * from another thread, by the context's deadline, by its own timeout or
 * event, and refuses at once when the context is already done.
 *
 * Children are small shell scripts, exec'd at once after fork: safe to
 * fork from a process with threads, and not run under valgrind when the
 * suite is (valgrind does not follow exec by default), so its leak report
 * for a child cannot change the exit status the test checks.
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

/* Writes one byte to fd after a delay. */
struct feeder {
	pthread_t thread;
	int fd;
	int64_t delay;
};

static void *feeder_main(void *arg)
{
	struct feeder *f = arg;

	tu_sleep_ns(f->delay);
	if (write(f->fd, "x", 1) != 1)
		abort();
	return NULL;
}

static void feed_after(struct feeder *f, int fd, int64_t delay)
{
	f->fd = fd;
	f->delay = delay;
	ck_assert_int_eq(pthread_create(&f->thread, NULL, feeder_main, f), 0);
}

static void feeder_join(struct feeder *f)
{
	ck_assert_int_eq(pthread_join(f->thread, NULL), 0);
}

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

START_TEST(test_wait_cancel)
{
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int rc = ctx_wait(c);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
}
END_TEST

START_TEST(test_wait_deadline)
{
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	int rc = ctx_wait(c);
	double ms = tu_ms_since(t0);

	ck_assert_int_eq(rc, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ctx_release(c);
}
END_TEST

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

/* The error comes back, not the cause. */
START_TEST(test_wait_done)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *e = ctx_with_timeout(ctx_background(), 0);
	ctx_t *with_cause = ctx_with_cancel(ctx_background());

	ctx_cancel(c);
	ctx_cancel_cause(with_cause, 77);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_wait(c), CTX_CANCELED);
	ck_assert_int_eq(ctx_wait(e), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_wait(with_cause), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(with_cause), 77);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(with_cause);
	ctx_release(e);
	ctx_release(c);
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
	ctx_release(d);
	ctx_release(v);
	ctx_release(root);
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
	ctx_release(v);
	ctx_release(c);
	ctx_release(p);
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

START_TEST(test_sleep_cancel)
{
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int rc = ctx_sleep(c, HOUR);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
}
END_TEST

/* A sleep so long its end saturates is still cancellable. */
START_TEST(test_sleep_forever)
{
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int rc = ctx_sleep(c, INT64_MAX);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
}
END_TEST

/* The context's deadline ends a longer sleep, and not before. */
START_TEST(test_sleep_ctx_deadline)
{
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	int rc = ctx_sleep(c, HOUR);
	double ms = tu_ms_since(t0);

	ck_assert_int_eq(rc, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
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

/* A done context ends a sleep before it starts, of any length. */
START_TEST(test_sleep_done)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *e = ctx_with_timeout(ctx_background(), 0);

	ctx_cancel(c);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_sleep(c, 0), CTX_CANCELED);
	ck_assert_int_eq(ctx_sleep(c, HOUR), CTX_CANCELED);
	ck_assert_int_eq(ctx_sleep(e, 0), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_sleep(e, HOUR), CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(e);
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

START_TEST(test_poll_later)
{
	struct pollfd fds[3];
	struct feeder f;
	int (*p)[2] = open_pipes(fds, 3);
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	feed_after(&f, p[2][1], SHORT);
	int n = ctx_poll(c, fds, 3, -1);
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(fds[0].revents, 0);
	ck_assert_int_eq(fds[1].revents, 0);
	ck_assert_int_eq(fds[2].revents, POLLIN);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
	close_pipes(p, 3);
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

START_TEST(test_poll_cancel)
{
	struct pollfd fds[2];
	struct tu_canceller k;
	int (*p)[2] = open_pipes(fds, 2);
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int n = ctx_poll(c, fds, 2, -1);
	int err = errno;
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	errno = err;
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
	close_pipes(p, 2);
}
END_TEST

/* The context's deadline before the poll's timeout: -1, ETIMEDOUT. */
START_TEST(test_poll_ctx_deadline)
{
	struct pollfd fds[1];
	int (*p)[2] = open_pipes(fds, 1);

	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	int n = ctx_poll(c, fds, 1, HOUR);
	int err = errno;
	double ms = tu_ms_since(t0);
	errno = err;
	tu_assert_fail(n, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
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

/* A done context: -1 at once, with the data ready and left alone. */
START_TEST(test_poll_done_first)
{
	struct pollfd fds[1];
	char ch;
	int (*p)[2] = open_pipes(fds, 1);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *e = ctx_with_timeout(ctx_background(), 0);

	ck_assert_int_eq(write(p[0][1], "x", 1), 1);
	ctx_cancel(c);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_poll(c, fds, 1, HOUR), CTX_CANCELED);
	tu_assert_fail(ctx_poll(c, fds, 1, 0), CTX_CANCELED);
	tu_assert_fail(ctx_poll(e, fds, 1, -1), CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ck_assert_int_eq(read(p[0][0], &ch, 1), 1);
	ctx_release(e);
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

/* No descriptors: a sleep that the context can end. */
START_TEST(test_poll_no_fds)
{
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, NULL, 0, SHORT), 0);
	tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);
	t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int n = ctx_poll(c, NULL, 0, -1);
	int err = errno;
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	errno = err;
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
}
END_TEST

/*
 * Around and beyond 16 entries (the library's on-stack array holds 16,
 * with its own descriptor): data on the last entry, a timeout and a
 * cancellation all behave the same.
 */
static const int heap_sizes[] = { 15, 16, 17, 40, 300 };

START_TEST(test_poll_many)
{
	int n = heap_sizes[_i];
	struct pollfd *fds = calloc((size_t)n, sizeof(*fds));
	struct feeder f;
	struct tu_canceller k;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_ptr_nonnull(fds);
	int (*p)[2] = open_pipes(fds, n);

	/* Data on the last entry only. */
	int64_t t0 = ctx_now();
	feed_after(&f, p[n - 1][1], SHORT);
	ck_assert_int_eq(ctx_poll(c, fds, (nfds_t)n, -1), 1);
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	for (int i = 0; i < n - 1; i++)
		ck_assert_msg(fds[i].revents == 0, "fds[%d].revents %#x", i,
			      fds[i].revents);
	ck_assert_int_eq(fds[n - 1].revents, POLLIN);

	/* Nothing ready: the timeout. */
	fds[n - 1].fd = -1;
	t0 = ctx_now();
	ck_assert_int_eq(ctx_poll(c, fds, (nfds_t)n, SHORT), 0);
	tu_assert_ms(tu_ms_since(t0), SHORT_MS, LATE_MS);

	/* Cancelled. */
	t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int rc = ctx_poll(c, fds, (nfds_t)n, -1);
	int err = errno;
	ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	errno = err;
	tu_assert_fail(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);

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

/* ---- ctx_waitpid ------------------------------------------------------ */

/* A child running a shell script; "exec sleep" keeps a long-lived child
 * a single process, so that killing it leaves nothing behind. */
static pid_t spawn(const char *script)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

#define FOREVER "exec sleep 3600"

static void kill_and_reap(pid_t pid)
{
	int status;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}

/* Wait, without reaping it, until pid has exited. */
static void await_exit(pid_t pid)
{
	siginfo_t si;

	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

/* By pid (loop index 0), as any child (1), in our process group (2). */
START_TEST(test_waitpid_status)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	pid_t pid = spawn("sleep 0.05; exit 42");
	pid_t arg = _i == 0 ? pid : _i == 1 ? -1 : 0;
	pid_t got = ctx_waitpid(c, arg, &status, 0);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(got, pid);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	ck_assert_int_eq(WEXITSTATUS(status), 42);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	/* Reaped: nothing is left to wait for. */
	tu_assert_fail(waitpid(pid, &status, WNOHANG), ECHILD);
	ctx_release(c);
}
END_TEST

/* A child that has exited already: returned at once. */
START_TEST(test_waitpid_exited)
{
	int status = 0;
	ctx_t *c = ctx_with_cancel(ctx_background());
	pid_t pid = spawn("exit 3");

	await_exit(pid);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, 0), pid);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ck_assert_int_eq(WEXITSTATUS(status), 3);
	ctx_release(c);
}
END_TEST

/* Cancelled while the child runs on (by pid, and as any child); the
 * child is untouched and still ours to reap. */
START_TEST(test_waitpid_cancel)
{
	struct tu_canceller k;
	int status;
	ctx_t *c = ctx_with_cancel(ctx_background());
	pid_t pid = spawn(FOREVER);

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	pid_t got = ctx_waitpid(c, _i ? -1 : pid, &status, 0);
	int err = errno;
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	errno = err;
	tu_assert_fail(got, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);
	kill_and_reap(pid);
	ctx_release(c);
}
END_TEST

START_TEST(test_waitpid_deadline)
{
	int status;
	pid_t pid = spawn(FOREVER);

	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	pid_t got = ctx_waitpid(c, _i ? -1 : pid, &status, 0);
	int err = errno;
	double ms = tu_ms_since(t0);
	errno = err;
	tu_assert_fail(got, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	kill_and_reap(pid);
	ctx_release(c);
}
END_TEST

/* WNOHANG is a plain check: 0 while the child runs, never a wait. */
START_TEST(test_waitpid_wnohang)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	pid_t pid = spawn(FOREVER);

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WNOHANG), 0);
	ck_assert_int_eq(ctx_waitpid(c, -1, &status, WNOHANG), 0);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	await_exit(pid);
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WNOHANG), pid);
	ck_assert(WIFSIGNALED(status));
	ctx_release(c);
}
END_TEST

/* No such child: ECHILD at once, as waitpid(2) says. */
START_TEST(test_waitpid_echild)
{
	int status;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_waitpid(c, -1, &status, 0), ECHILD);
	tu_assert_fail(ctx_waitpid(c, getpid(), &status, 0), ECHILD);
	tu_assert_fail(ctx_waitpid(c, 1, &status, 0), ECHILD);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(c);
}
END_TEST

/* A done context refuses though the child has exited, which stays
 * unreaped for the next wait. */
START_TEST(test_waitpid_done_first)
{
	int status = 0;
	ctx_t *c = ctx_with_cancel(ctx_background());
	pid_t pid = spawn("exit 5");

	ctx_cancel(c);
	await_exit(pid);
	tu_assert_fail(ctx_waitpid(c, pid, &status, 0), CTX_CANCELED);
	tu_assert_fail(ctx_waitpid(c, -1, &status, 0), CTX_CANCELED);
	tu_assert_fail(ctx_waitpid(c, pid, &status, WNOHANG), CTX_CANCELED);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 5);
	ctx_release(c);
}
END_TEST

/* Killed by a signal, and stopped (WUNTRACED), as waitpid(2) reports. */
START_TEST(test_waitpid_signaled_stopped)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	pid_t pid = spawn("sleep 0.05; kill -STOP $$; " FOREVER);

	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WUNTRACED), pid);
	ck_assert_msg(WIFSTOPPED(status), "status %#x", status);
	ck_assert_int_eq(WSTOPSIG(status), SIGSTOP);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status), "status %#x", status);
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	ctx_release(c);
}
END_TEST

START_TEST(test_waitpid_null)
{
	int status = 0;
	pid_t pid = spawn("exit 9");

	await_exit(pid);
	tu_assert_fail(ctx_waitpid(NULL, pid, &status, 0), EINVAL);
	tu_assert_fail(ctx_waitpid(NULL, pid, &status, WNOHANG), EINVAL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 9);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_wait(void)
{
	Suite *s = suite_create("wait");
	TCase *tc;

	tc = tu_tcase(s, "wait", 30);
	tcase_add_test(tc, test_wait_cancel);
	tcase_add_test(tc, test_wait_deadline);
	tcase_add_test(tc, test_wait_done);
	tcase_add_loop_test(tc, test_wait_many, 0, 2);
	tcase_add_test(tc, test_wait_signal);
	tcase_add_loop_test(tc, test_wait_descendant, 0, 2);
	tcase_add_test(tc, test_wait_inherited_deadline);
	tcase_add_test(tc, test_wait_null);

	tc = tu_tcase(s, "sleep", 30);
	tcase_add_test(tc, test_sleep_full);
	tcase_add_test(tc, test_sleep_many);
	tcase_add_test(tc, test_sleep_cancel);
	tcase_add_test(tc, test_sleep_forever);
	tcase_add_test(tc, test_sleep_ctx_deadline);
	tcase_add_test(tc, test_sleep_before_deadline);
	tcase_add_test(tc, test_sleep_nonpositive);
	tcase_add_test(tc, test_sleep_done);
	tcase_add_test(tc, test_sleep_null);
	tcase_add_test(tc, test_sleep_rearm);

	tc = tu_tcase(s, "poll", 30);
	tcase_add_test(tc, test_poll_ready);
	tcase_add_test(tc, test_poll_later);
	tcase_add_test(tc, test_poll_timeout);
	tcase_add_test(tc, test_poll_zero_timeout);
	tcase_add_test(tc, test_poll_cancel);
	tcase_add_test(tc, test_poll_ctx_deadline);
	tcase_add_test(tc, test_poll_timeout_first);
	tcase_add_test(tc, test_poll_done_first);
	tcase_add_test(tc, test_poll_nval);
	tcase_add_test(tc, test_poll_ignored_and_hup);
	tcase_add_test(tc, test_poll_no_fds);
	tcase_add_loop_test(tc, test_poll_many, 0,
			    sizeof(heap_sizes) / sizeof(heap_sizes[0]));
	tcase_add_test(tc, test_poll_null);

	tc = tu_tcase(s, "waitpid", 30);
	tcase_add_loop_test(tc, test_waitpid_status, 0, 3);
	tcase_add_test(tc, test_waitpid_exited);
	/* Loop index: 0 waits by pid, 1 as any child. */
	tcase_add_loop_test(tc, test_waitpid_cancel, 0, 2);
	tcase_add_loop_test(tc, test_waitpid_deadline, 0, 2);
	tcase_add_test(tc, test_waitpid_wnohang);
	tcase_add_test(tc, test_waitpid_echild);
	tcase_add_test(tc, test_waitpid_done_first);
	tcase_add_test(tc, test_waitpid_signaled_stopped);
	tcase_add_test(tc, test_waitpid_null);

	return s;
}
