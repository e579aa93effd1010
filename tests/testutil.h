/* Helpers shared by the test suites. */
#ifndef CTX_TESTUTIL_H
#define CTX_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "ctx.h"

/* The entries of a directory of /proc, less "." and ".."; -1 if it
 * cannot be read. */
static inline int tu_count_dir(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

/* The number of descriptors this process has open. */
static inline int tu_count_fds(void)
{
	return tu_count_dir("/proc/self/fd") - 1; /* the DIR's own */
}

/* CLOCK_MONOTONIC, also under the manual clock (ctx_clock_manual), where
 * ctx_now() stands still: for bounds on how long a test waits in real
 * time. */
static inline int64_t tu_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
}

/* The test runs on the manual clock (ctx_clock_manual(3)), jumping on
 * its own to the next due time whenever every known thread waits for
 * time if autojump.  The tcase turns it off again after each test with
 * the checked teardown ctx__clock_reset (hooks.h), for CK_FORK=no. */
static inline void tu_manual_clock(bool autojump)
{
	ck_assert_int_eq(ctx_clock_manual(), 0);
	ctx_clock_auto(autojump);
}

/* Milliseconds elapsed since t0 (a ctx_now() reading).  A test that
 * asserts a lower bound reads t0 before it starts what the wait waits
 * for (the timeout, the canceller thread, the timer): read after it, a
 * stall between the two (valgrind, a loaded machine) makes a wait that
 * ended on time look early -- test_select_done_deadline once measured
 * 23.9 ms of a 40 ms timeout under valgrind that way. */
static inline double tu_ms_since(int64_t t0)
{
	return (double)(ctx_now() - t0) / CTX_MSEC;
}

/* ---- sleeping, cancelling, counting ----------------------------------- */

/* Sleep without entering the library, so the sleep itself cannot be what
 * a test of the library observes. */
static inline void tu_sleep_ns(int64_t ns)
{
	struct timespec ts = {
		.tv_sec = ns / CTX_SEC,
		.tv_nsec = ns % CTX_SEC,
	};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* CTX_TEST_QUICK=1 (for valgrind) asks the heaviest tests to scale down. */
static inline bool tu_quick(void)
{
	const char *q = getenv("CTX_TEST_QUICK");

	return q && *q && strcmp(q, "0") != 0;
}

/* Burn n turns of an empty loop: a delay far below any sleep's, to move
 * one thread's step against another's. */
static inline void tu_spin(uint32_t n)
{
	for (volatile uint32_t i = 0; i < n; i++)
		;
}

/* Release each context of the list, in order (NULL is fine). */
#define tu_release(...)                                                     \
	tu__release((ctx_t *const[]){ __VA_ARGS__ },                        \
		    sizeof((ctx_t *const[]){ __VA_ARGS__ }) / sizeof(ctx_t *))

static inline void tu__release(ctx_t *const *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ctx_release(c[i]);
}

/*
 * A thread that cancels a context after a delay: the usual way to end a
 * call that the test's own thread is blocked in.  It holds a reference,
 * so the test may release the context before joining.  With spins set
 * it spins that long instead of sleeping, for a cancel that lands
 * anywhere in a wait that is just starting.
 */
struct tu_canceller {
	pthread_t thread;
	ctx_t *ctx;
	int64_t delay;
	uint32_t spins;
};

static inline void *tu__canceller_main(void *arg)
{
	struct tu_canceller *c = arg;

	if (c->spins)
		tu_spin(c->spins);
	else
		tu_sleep_ns(c->delay);
	ctx_cancel(c->ctx);
	return NULL;
}

static inline int tu__canceller_start(struct tu_canceller *c, ctx_t *ctx)
{
	c->ctx = ctx_ref(ctx);
	int e = pthread_create(&c->thread, NULL, tu__canceller_main, c);
	if (e)
		ctx_unref(ctx);
	return e;
}

/* 0 or pthread_create's error. */
static inline int tu_cancel_after(struct tu_canceller *c, ctx_t *ctx,
				  int64_t delay_ns)
{
	*c = (struct tu_canceller){ .delay = delay_ns };
	return tu__canceller_start(c, ctx);
}

/* The same after `spins` turns of tu_spin; the test fails if no thread
 * can be made. */
static inline void tu_cancel_after_spin(struct tu_canceller *c, ctx_t *ctx,
					uint32_t spins)
{
	*c = (struct tu_canceller){ .spins = spins };
	ck_assert_int_eq(tu__canceller_start(c, ctx), 0);
}

/* Keeps errno: callers join between a failed call and its check. */
static inline void tu_canceller_join(struct tu_canceller *c)
{
	int e = errno;
	pthread_join(c->thread, NULL);
	ctx_unref(c->ctx);
	errno = e;
}

/* Writes len bytes of buf to fd after a delay, from a thread of its own:
 * data that comes while a call waits.  It asserts nothing (a failed
 * write aborts): assertions belong to the test's own thread. */
struct tu_feeder {
	pthread_t thread;
	int fd;
	int64_t delay;
	const void *buf;
	size_t len;
};

static inline void *tu__feeder_main(void *arg)
{
	struct tu_feeder *f = arg;

	tu_sleep_ns(f->delay);
	if (write(f->fd, f->buf, f->len) != (ssize_t)f->len)
		abort();
	return NULL;
}

static inline void tu_feed_after(struct tu_feeder *f, int fd, const void *buf,
				 size_t len, int64_t delay)
{
	*f = (struct tu_feeder){ .fd = fd, .delay = delay, .buf = buf,
				 .len = len };
	ck_assert_int_eq(pthread_create(&f->thread, NULL, tu__feeder_main, f),
			 0);
}

static inline void tu_feeder_join(struct tu_feeder *f)
{
	ck_assert_int_eq(pthread_join(f->thread, NULL), 0);
}

/* Sends sig to the thread target after a delay, from a thread of its
 * own: a signal that comes while a call waits. */
struct tu_killer {
	pthread_t thread, target;
	int64_t delay;
	int sig;
};

static inline void *tu__killer_main(void *arg)
{
	struct tu_killer *k = arg;

	tu_sleep_ns(k->delay);
	pthread_kill(k->target, k->sig);
	return NULL;
}

static inline void tu_kill_after(struct tu_killer *k, pthread_t target,
				 int sig, int64_t delay)
{
	*k = (struct tu_killer){ .target = target, .delay = delay,
				 .sig = sig };
	ck_assert_int_eq(pthread_create(&k->thread, NULL, tu__killer_main, k),
			 0);
}

static inline void tu_killer_join(struct tu_killer *k)
{
	ck_assert_int_eq(pthread_join(k->thread, NULL), 0);
}

/* Leave the thread's signals as a test found them (CK_FORK=no runs every
 * test in one process): take what is still pending of sig, unblock it,
 * and give it back its default action. */
static inline void tu_sig_restore(int sig)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	while (sigtimedwait(&set, NULL, &zero) == sig)
		;
	ck_assert_int_eq(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
	signal(sig, SIG_DFL);
}

/* tu_cancel_after, or the test fails. */
static inline void tu_must_cancel_after(struct tu_canceller *k, ctx_t *c,
					int64_t delay_ns)
{
	ck_assert_int_eq(tu_cancel_after(k, c, delay_ns), 0);
}

/* A call that mirrors a system call failed with e. */
#define tu_assert_fail(rc, e)                                               \
	do {                                                                \
		long rc__ = (long)(rc);                                     \
		int errno__ = errno;                                        \
		ck_assert_msg(rc__ == -1 && errno__ == (e),                 \
			      "returned %ld, errno %d (%s); expected -1, "  \
			      "errno %d (%s)", rc__, errno__,               \
			      strerror(errno__), (int)(e), strerror(e));    \
	} while (0)

/* Timing assertions take the measured milliseconds and a half-open range;
 * the ranges are generous because the machines that run this are shared. */
#define tu_assert_ms(ms, lo, hi)                                            \
	do {                                                                \
		double ms__ = (ms);                                         \
		ck_assert_msg(ms__ >= (lo) && ms__ < (hi),                  \
			      "took %.1f ms, expected at least %g and "     \
			      "under %g", ms__, (double)(lo), (double)(hi)); \
	} while (0)

/* The number of threads of this process (-1 if /proc is unreadable). */
/* ThreadSanitizer's runtime starts a thread of its own, lazily and under
 * the program's name, so thread counts mean nothing under it: there the
 * counts are fixed at 1, and the plain, AddressSanitizer and valgrind
 * runs check them. */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif

static inline int tu_count_threads(void)
{
#ifdef TU_TSAN
	return 1;
#endif
	return tu_count_dir("/proc/self/task");
}

/* Poll until count() says want or timeout_ns passes; the last count. */
static inline int tu__settle(int (*count)(void), int want, int64_t timeout_ns)
{
	int64_t end = tu_real_ns() + timeout_ns;
	int n;

	while ((n = count()) != want && tu_real_ns() < end)
		tu_sleep_ns(CTX_MSEC);
	return n;
}

/* Poll until the process has `want` threads or timeout_ns passes; the
 * last count.  A joined thread can linger in /proc/self/task for a
 * moment after pthread_join returns (the kernel clears its tid before
 * it is reaped), so exact counts need a grace period. */
static inline int tu_settle_threads(int want, int64_t timeout_ns)
{
#ifdef TU_TSAN
	/* No count to watch: give exiting threads time to be gone, as the
	 * callers count on (some free what those threads still touch). */
	tu_sleep_ns(timeout_ns < 300 * CTX_MSEC ? timeout_ns : 300 * CTX_MSEC);
	return want;
#endif
	return tu__settle(tu_count_threads, want, timeout_ns);
}

/* Poll until the process has `want` descriptors or timeout_ns passes;
 * the last count.  A library thread may drop the last reference to a
 * context, and close its descriptor, a moment after the test's release. */
static inline int tu_settle_fds(int want, int64_t timeout_ns)
{
	return tu__settle(tu_count_fds, want, timeout_ns);
}

/* Lower the soft RLIMIT_NOFILE so that exactly `room` more descriptors
 * can be made (the numbers from the lowest free one up being free); the
 * lowest free number, and the old limit in *old, for setrlimit to put
 * back (before asserting, so that a failure leaves the limit alone). */
static inline int tu_limit_fds(int room, struct rlimit *old)
{
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
	struct rlimit low;

	ck_assert_int_ge(lowest, 0);
	close(lowest);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, old), 0);
	low = *old;
	low.rlim_cur = (rlim_t)lowest + (rlim_t)room;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	return lowest;
}

/* Whether Check runs each test in its own process (CK_FORK unset or not
 * "no"): only then does a test start with no thread but its own. */
static inline bool tu_forked(void)
{
	const char *f = getenv("CK_FORK");
	return !f || strcmp(f, "no") != 0;
}

/* Wait up to timeout_ns for c to be done; c's error then (0: not done). */
static inline int tu_wait_done(ctx_t *c, int64_t timeout_ns)
{
	ctx_t *t = ctx_with_timeout(c, timeout_ns);
	if (!t)
		return -1;
	ctx_wait(t);
	ctx_release(t);
	return ctx_err(c);
}

/* A child running a shell script, exec'd at once after the fork: safe
 * with threads around, and not followed by valgrind when the suite runs
 * under it (valgrind does not follow exec by default), so its leak
 * report for a child cannot change the exit status a test checks. */
static inline pid_t tu_spawn_sh(const char *script)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The thread's wait descriptors and the library's timer thread are made
 * at the first wait: a test that counts descriptors or threads makes
 * them first, so that its counts see only its own. */
static inline void tu_warm_up(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), CTX_MSEC);

	ck_assert_int_eq(ctx_wait(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}

static inline void tu__set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

/*
 * Start what the library starts once and keeps: the timer thread (a done
 * fd with a deadline), the after-func runner, and this thread's reactor
 * (a timed read of a pipe), so that the counts taken next are the
 * baseline to come back to.
 */
static inline void tu_start_services(void)
{
	_Atomic int ran = 0;
	int p[2];
	char ch;
	/* A deadline far enough that it is still ahead when the done fd is
	 * asked for, however slow the machine: the timer thread starts. */
	ctx_t *c = ctx_with_timeout(ctx_background(), 3600 * CTX_SEC);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_cancel(c);
	ctx_after_t *a = ctx_after_func(c, tu__set_flag, &ran);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; !atomic_load(&ran) && i < 5000; i++)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	c = ctx_with_timeout(ctx_background(), CTX_MSEC);
	tu_assert_fail(ctx_read(c, p[0], &ch, 1), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}

/* ---- added for the stress and faults suites -------------------------- */

/* Whether the process runs under valgrind, which preloads its own
 * libraries: timing tolerances and workloads scale down for it. */
static inline bool tu_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}


/* A test case of suite s with a time limit, added to the suite. */
static inline TCase *tu_tcase(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

/* Add the tests named (START_TEST's names) to tc, in that order. */
#define tu_add_tests(tc, ...)                                               \
	tu__add_tests((tc), (const TTest *const[]){ __VA_ARGS__, NULL })

static inline void tu__add_tests(TCase *tc, const TTest *const *t)
{
	for (; *t; t++)
		tcase_add_test(tc, *t);
}

/* xorshift32: a small seeded generator, so a failing run can be
 * repeated with its seed. */
static inline uint32_t tu_rand(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

#endif
