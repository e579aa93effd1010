/*
 * Signals that interrupt waits: a handler installed without SA_RESTART,
 * and a thread that signals the test's thread every millisecond, so that
 * every blocking system call in the wait returns EINTR over and over.
 * The wait must still end only by data, cancellation, its own timeout or
 * its length, on time, and never with EINTR.  (Every blocking call at
 * its deadline under the same storm: the contract test's.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "storm.h"
#include "suites.h"

#define HOUR (3600 * CTX_SEC)
#define LATE_MS 2000
#define STORM_MS 200            /* how long a wait under the storm lasts */
#define STORM_NS (STORM_MS * CTX_MSEC)
#define STORM_MIN_HITS 10       /* the handler must have run this often */

static atomic_int hits;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&hits, 1);
}

static void *storm_main(void *arg)
{
	struct storm *s = arg;

	while (!atomic_load(&s->stop)) {
		pthread_kill(s->target, SIGUSR1);
		tu_sleep_ns(CTX_MSEC);
	}
	return NULL;
}

void storm_start(struct storm *s)
{
	struct sigaction sa = { .sa_handler = on_usr1 }; /* no SA_RESTART */

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &s->old), 0);
	atomic_store(&hits, 0);
	atomic_init(&s->stop, false);
	s->target = pthread_self();
	ck_assert_int_eq(pthread_create(&s->thread, NULL, storm_main, s), 0);
	s->t0 = ctx_now();
}

/* Signals sent before the join are delivered by the time it returns, so
 * the old disposition can come back safely.  errno is kept for the
 * caller's check. */
int storm_stop(struct storm *s)
{
	int e = errno;

	atomic_store(&s->stop, true);
	ck_assert_int_eq(pthread_join(s->thread, NULL), 0);
	ck_assert_int_eq(sigaction(SIGUSR1, &s->old, NULL), 0);
	errno = e;
	return atomic_load(&hits);
}

/* Stop, and check that the storm was one and that the wait took about
 * STORM_MS. */
static void storm_end(struct storm *s)
{
	double ms = tu_ms_since(s->t0);
	int e = errno, n = storm_stop(s);

	tu_assert_ms(ms, STORM_MS * 0.9, STORM_MS + LATE_MS);
	ck_assert_msg(n >= STORM_MIN_HITS, "the handler ran only %d times", n);
	errno = e;
}

/* Data that comes ends the read. */
START_TEST(test_storm_read_data)
{
	struct storm s;
	struct tu_feeder f;
	int p[2];
	char buf[8];
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	storm_start(&s);
	tu_feed_after(&f, p[1], "x", 1, STORM_NS);
	ssize_t n = ctx_read(c, p[0], buf, sizeof(buf));
	storm_end(&s);
	tu_feeder_join(&f);
	ck_assert_int_eq(n, 1);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A cancel ends a read, and a wait for nothing but the context, with no
 * deadline anywhere (the loop index). */
START_TEST(test_storm_cancel)
{
	struct storm s;
	struct tu_canceller k;
	int p[2];
	char buf[8];
	ctx_t *c = ctx_with_cancel(ctx_background());

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	storm_start(&s);
	tu_must_cancel_after(&k, c, STORM_NS);
	long rc = _i ? ctx_wait(c) : ctx_read(c, p[0], buf, sizeof(buf));
	storm_end(&s);
	tu_canceller_join(&k);
	if (_i)
		ck_assert_int_eq(rc, CTX_CANCELED);
	else
		tu_assert_fail(rc, CTX_CANCELED);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A sleep sleeps its whole length. */
START_TEST(test_storm_sleep)
{
	struct storm s;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	storm_start(&s);
	int rc = ctx_sleep(c, STORM_NS);
	storm_end(&s);
	ck_assert_int_eq(rc, 0);
	ctx_release(c);
}
END_TEST

/* ctx_poll's own timeout: 0. */
START_TEST(test_storm_poll)
{
	struct storm s;
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	storm_start(&s);
	int rc = ctx_poll(c, &pfd, 1, STORM_NS);
	storm_end(&s);
	ck_assert_int_eq(rc, 0);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A child that exits with 7 after STORM_MS; the loop index waits for it
 * by its pid (0) or as any child (1). */
START_TEST(test_storm_waitpid)
{
	struct storm s;
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	pid_t pid = tu_spawn_sh("sleep 0.2; exit 7"); /* STORM_MS */
	storm_start(&s);
	pid_t got = ctx_waitpid(c, _i ? -1 : pid, &status, 0);
	int err = errno;
	storm_end(&s);
	ck_assert_msg(got == pid, "ctx_waitpid: %d, errno %d (%s)", (int)got,
		      err, strerror(err));
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 7);
	ctx_release(c);
}
END_TEST

void add_reactor_storm(Suite *s)
{
	TCase *tc = tu_tcase(s, "eintr", 30);

	tcase_add_test(tc, test_storm_read_data);
	tcase_add_loop_test(tc, test_storm_cancel, 0, 2);
	tu_add_tests(tc, test_storm_sleep, test_storm_poll);
	tcase_add_loop_test(tc, test_storm_waitpid, 0, 2);
}
