/*
 * The per-thread reactor: the backend's name; its descriptors' life (made
 * by the first wait of a thread that needs them -- a wait for a
 * descriptor surely does -- freed when the thread exits, close-on-exec,
 * none per context); fork; one cancellation waking a thousand threads;
 * and descriptor numbers that come back as other files.  Signals that
 * interrupt waits are in storm.c.
 *
 * Descriptor counts are taken in fresh threads where it matters, so that
 * the tests hold under CK_FORK=no too, where the runner's own thread has
 * a reactor from earlier tests.  CTX_TEST_QUICK=1 (for valgrind) shrinks
 * the 1,024-thread fan-out to QUICK_FANOUT threads: valgrind serialises
 * threads and refuses more than 500 by default; the test still runs and
 * asserts, on fewer threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define HOUR (3600 * CTX_SEC)
#define LATE_MS 2000
#define FANOUT 1024
#define QUICK_FANOUT 64
#define FAN_STACK (64 * 1024)
#define EXIT_THREADS 600
#define EXIT_BATCH 100
#define BUDGET 1000

static const char key[] = "key";

/* ---- helpers ---------------------------------------------------------- */

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	ck_assert_int_eq(pthread_create(t, NULL, fn, arg), 0);
}

static void join(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* How many descriptors a program exec'd from here starts with. */
static int exec_fd_count(void)
{
	int status;
	pid_t pid = tu_spawn_sh("set -- /proc/self/fd/*; exit $#");

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	return WEXITSTATUS(status);
}

/* Wait for a descriptor briefly (an empty pipe, until a deadline), so
 * that this thread has a reactor.  A wait for nothing but time or a
 * context may need none (a futex will do; a sleep short enough ends
 * before it waits); a wait for a descriptor needs epoll.  The deadline
 * leaves room for valgrind to reach the wait before it passes. */
static void touch_reactor(void)
{
	int p[2];
	char ch;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_t *c = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	tu_assert_fail(ctx_read(c, p[0], &ch, 1), CTX_DEADLINE_EXCEEDED);
	close(p[0]);
	close(p[1]);
	ctx_release(c);
}

/* Wait (bounded) until the process has want descriptors; the count then. */
static int await_fds(int want, int ms)
{
	int64_t t0 = ctx_now();
	int n;

	while ((n = tu_count_fds()) != want && tu_ms_since(t0) < ms)
		tu_sleep_ns(CTX_MSEC);
	return n;
}

/* The scheduler state of thread tid of this process: 'R', 'S', ...; '?'
 * once it is gone. */
static char task_state(pid_t tid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* after the name, which may hold anything */
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Wait (bounded) until all n threads sleep in the kernel, which is how a
 * thread blocked in the library looks from outside; whether they did. */
static bool await_asleep(const pid_t *tids, int n, int ms)
{
	int64_t t0 = ctx_now();
	int i = 0;

	while (i < n) {
		if (task_state(tids[i]) == 'S') {
			i++;
			continue;
		}
		if (tu_ms_since(t0) >= ms)
			return false;
		tu_sleep_ns(CTX_MSEC);
	}
	return true;
}

/* How many descriptors one thread's reactor holds: measured in a fresh
 * thread, which must give them all back when it exits. */
static void *measure_main(void *arg)
{
	int *r = arg, before = tu_count_fds();

	touch_reactor();
	*r = tu_count_fds() - before;
	return NULL;
}

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* Whether the kernel lets a timerfd be made readable by hand, which
 * gives a reactor its one descriptor (runtime/wait/readiness.c). */
static bool have_set_ticks(void)
{
	uint64_t one = 1;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	bool ok = fd >= 0 && ioctl(fd, TFD_IOC_SET_TICKS, &one) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static int reactor_size(void)
{
	pthread_t t;
	int r = -1, before = tu_count_fds();

	start(&t, measure_main, &r);
	join(t);
	/* A reactor after a timed wait for a descriptor: one timerfd that
	 * wakes it and times it; where the kernel cannot wake a timerfd,
	 * an eventfd beside it.  (io_uring adds a ring only for transfers
	 * on regular files.) */
	ck_assert_int_eq(r, have_set_ticks() ? 1 : 2);
	ck_assert_int_eq(tu_count_fds(), before);
	return r;
}

/* ---- backend ---------------------------------------------------------- */

static void *backend_main(void *arg)
{
	*(const char **)arg = ctx_backend();
	return NULL;
}

static bool known_backend(const char *b)
{
	return b && (!strcmp(b, "epoll") || !strcmp(b, "io_uring"));
}

START_TEST(test_backend)
{
	const char *here = ctx_backend(), *there = NULL;
	pthread_t t;

	ck_assert_msg(known_backend(here), "ctx_backend() is \"%s\"",
		      here ? here : "(null)");
	touch_reactor();
	ck_assert_str_eq(ctx_backend(), here);
	start(&t, backend_main, &there);
	join(t);
	ck_assert_msg(known_backend(there), "ctx_backend() is \"%s\"",
		      there ? there : "(null)");
}
END_TEST

/* ---- lazy: calls that need not wait make no descriptor ---------------- */

struct lazy {
	int before, after_ready, after_wait;
	int rc[8];
};

static void *lazy_main(void *arg)
{
	struct lazy *z = arg;
	int p[2], s[2], e = 0;
	char buf[8] = "abc";
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *done = ctx_with_cancel(ctx_background());

	if (pipe2(p, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM |
					      SOCK_CLOEXEC, 0, s))
		abort();
	ctx_cancel(done);
	struct pollfd pfd = { .fd = p[1], .events = POLLOUT };
	z->before = tu_count_fds();
	z->rc[e++] = (int)ctx_write(c, p[1], buf, 3);
	z->rc[e++] = (int)ctx_read(c, p[0], buf, 3);
	z->rc[e++] = (int)ctx_send(c, s[0], buf, 3, 0);
	z->rc[e++] = (int)ctx_recv(c, s[1], buf, 3, 0);
	z->rc[e++] = ctx_poll(c, &pfd, 1, HOUR);
	z->rc[e++] = ctx_sleep(c, 0);
	z->rc[e++] = ctx_wait(done);
	z->rc[e++] = ctx_poll(c, NULL, 0, 0);
	z->after_ready = tu_count_fds();
	touch_reactor();
	z->after_wait = tu_count_fds();
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
	ctx_release(done);
	ctx_release(c);
	return NULL;
}

/* "When the data is ready the cost is the plain system call": a thread
 * whose calls never have to wait never gets a reactor. */
START_TEST(test_ready_makes_nothing)
{
	static const int want[8] = { 3, 3, 3, 3, 1, 0, CTX_CANCELED, 0 };
	struct lazy z;
	pthread_t t;
	int r = reactor_size();

	start(&t, lazy_main, &z);
	join(t);
	for (int i = 0; i < 8; i++)
		ck_assert_msg(z.rc[i] == want[i], "call %d returned %d, not %d",
			      i, z.rc[i], want[i]);
	ck_assert_int_eq(z.after_ready, z.before);
	/* ... and the count would have shown one. */
	ck_assert_int_eq(z.after_wait, z.before + r);
}
END_TEST

/* ---- descriptors freed at thread exit --------------------------------- */

/* A read of an empty pipe under a context: a wait for a descriptor,
 * which gives the thread a reactor.  Returns errno, or 0 if it read.
 * Tests keep the argument in static storage: under CK_FORK=no a failed
 * check leaves the reader blocked, and it must not read a dead stack
 * frame afterwards. */
struct blocked_read {
	ctx_t *ctx;
	int fd;
};

static void *read_main(void *arg)
{
	struct blocked_read *b = arg;
	char ch;

	return (void *)(intptr_t)(ctx_read(b->ctx, b->fd, &ch, 1) < 0 ? errno :
									0);
}

/*
 * EXIT_THREADS threads, EXIT_BATCH at a time, each waits once (reading
 * one empty pipe) and exits.  While a batch waits, its reactors are all
 * there; once joined, all are gone.
 */
START_TEST(test_thread_exit_frees)
{
	static pthread_t t[EXIT_BATCH];
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	int r = reactor_size(), base = tu_count_fds();
	for (int b = 0; b < EXIT_THREADS / EXIT_BATCH; b++) {
		/* A deadline, so that each waiter makes its whole reactor
		 * (a second descriptor, where the kernel needs one, is made
		 * for timed waits only). */
		ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
		static struct blocked_read br;
		br = (struct blocked_read){ .ctx = c, .fd = p[0] };
		int want = base + EXIT_BATCH * r;

		for (int i = 0; i < EXIT_BATCH; i++)
			start(&t[i], read_main, &br);
		ck_assert_int_eq(await_fds(want, 20000), want);
		ctx_cancel(c);
		for (int i = 0; i < EXIT_BATCH; i++) {
			void *rc;

			ck_assert_int_eq(pthread_join(t[i], &rc), 0);
			ck_assert_int_eq((intptr_t)rc, CTX_CANCELED);
		}
		ck_assert_int_eq(tu_count_fds(), base);
		ctx_release(c);
	}
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ---- close-on-exec ---------------------------------------------------- */

#define MAX_FD 65536

/* The open descriptors, as a bitmap. */
static void snapshot(unsigned char *open_fds)
{
	memset(open_fds, 0, MAX_FD / 8);
	for (int fd = 0; fd < MAX_FD; fd++) {
		if (fcntl(fd, F_GETFD) != -1)
			open_fds[fd / 8] |= 1 << (fd % 8);
	}
}

struct scan {
	int fresh;      /* descriptors opened since the baseline */
	int leaky;      /* of which not close-on-exec */
	int first;      /* the first leaky one */
	char what[64];  /* and what it is */
};

/* Look at every descriptor opened since base. */
static void scan_since(const unsigned char *base, struct scan *s)
{
	*s = (struct scan){ .first = -1 };
	for (int fd = 0; fd < MAX_FD; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl == -1 || (base[fd / 8] & (1 << (fd % 8))))
			continue;
		s->fresh++;
		if (fl & FD_CLOEXEC)
			continue;
		if (s->leaky++ == 0) {
			char path[32];
			ssize_t n;

			s->first = fd;
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			n = readlink(path, s->what, sizeof(s->what) - 1);
			s->what[n > 0 ? n : 0] = '\0';
		}
	}
}

#define assert_cloexec(s)                                                   \
	ck_assert_msg((s).leaky == 0, "%d of %d new descriptors are not "   \
		      "close-on-exec, the first %d (%s)", (s).leaky,       \
		      (s).fresh, (s).first, (s).what)

/* Scans while the test's thread is blocked in ctx_waitpid, so that
 * descriptors that live only during a wait are seen. */
struct scanner {
	pthread_t thread;
	const unsigned char *base;
	struct scan result;
};

static void *scanner_main(void *arg)
{
	struct scanner *s = arg;

	tu_sleep_ns(50 * CTX_MSEC);
	scan_since(s->base, &s->result);
	return NULL;
}

/*
 * Every descriptor opened since a baseline is checked (the test's own are
 * O_CLOEXEC too); then a program exec'd from here must start with as
 * many descriptors as one exec'd before the library made any.  Done
 * descriptors are asked of contexts without a deadline: with one, the
 * library also starts its timer thread, which makes no descriptor but
 * is still running at exit, where valgrind (run on this suite) reports
 * its thread-local storage as possibly lost.
 */
START_TEST(test_cloexec)
{
	static unsigned char base[MAX_FD / 8];
	struct scanner sc = { .base = base };
	struct scan s;
	char buf[8];
	int p[2], status;
	pthread_t waiter;
	int r = reactor_size();
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *c2 = ctx_with_cancel(ctx_background());
	ctx_t *soon = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	int exec_base = exec_fd_count();
	snapshot(base);

	/* This thread's reactor, a descriptor registered with it, a poll,
	 * two done descriptors, and another thread's reactor. */
	touch_reactor();
	tu_assert_fail(ctx_read(soon, p[0], buf, sizeof(buf)),
		       CTX_DEADLINE_EXCEEDED);
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	ck_assert_int_eq(ctx_poll(c, &pfd, 1, CTX_MSEC), 0);
	ck_assert_int_ge(ctx_done_fd(c), 0);
	ck_assert_int_ge(ctx_done_fd(c2), 0);
	static struct blocked_read br;
	br = (struct blocked_read){ .ctx = c, .fd = p[0] };
	start(&waiter, read_main, &br);
	/* Waiting for the waiter's reactor, not timing it: a scan is
	 * MAX_FD fcntl calls, and under valgrind, which runs one thread at
	 * a time, scanning without pause can starve the waiter. */
	/* Fresh for certain: the two done descriptors and the waiter's
	 * wake-up descriptor (its read has no deadline).  This thread's
	 * reactor (r) is fresh too unless an earlier test of the same
	 * process (CK_FORK=no) made it already. */
	int want = 2 + 1;
	(void)r;
	int64_t t0 = ctx_now();
	for (;;) {
		scan_since(base, &s);
		if (s.fresh >= want || tu_ms_since(t0) >= 10 * LATE_MS)
			break;
		tu_sleep_ns(2 * CTX_MSEC);
	}
	ck_assert_int_ge(s.fresh, want);
	assert_cloexec(s);

	/* Whatever lives only while a thread waits for a child. */
	pid_t pid = tu_spawn_sh("sleep 0.2");
	start(&sc.thread, scanner_main, &sc);
	ck_assert_int_eq(ctx_waitpid(c2, pid, &status, 0), pid);
	join(sc.thread);
	assert_cloexec(sc.result);

	/* With all of it alive (the waiter still waits), exec drops it. */
	ck_assert_int_eq(exec_fd_count(), exec_base);

	ctx_cancel(c);
	join(waiter);
	close(p[0]);
	close(p[1]);
	tu_release(soon, c2, c);
}
END_TEST

/* ---- fork ------------------------------------------------------------- */

/* What the child checks, one exit status bit each, over CHILD_OK (so that
 * a child that dies another way, or valgrind's error exit code, cannot
 * pass for success). */
enum {
	F_SLEEP = 1, F_CANCEL = 2, F_CANCEL_TIME = 4, F_DEADLINE = 8,
	F_DATA = 16, F_SPLIT_FDS = 32, CHILD_OK = 64,
};

static int child_checks(void)
{
	struct tu_canceller k;
	int p[2], fail = CHILD_OK;
	char buf[8];

	int64_t t0 = ctx_now();
	if (ctx_sleep(ctx_background(), 20 * CTX_MSEC) != 0 ||
	    tu_ms_since(t0) < 20)
		fail |= F_SLEEP;

	if (pipe2(p, O_CLOEXEC))
		return 255;
	ctx_t *c = ctx_with_cancel(ctx_background());
	t0 = ctx_now();
	if (tu_cancel_after(&k, c, 30 * CTX_MSEC))
		return 255;
	ssize_t n = ctx_read(c, p[0], buf, sizeof(buf));
	if (n != -1 || errno != CTX_CANCELED)
		fail |= F_CANCEL;
	double ms = tu_ms_since(t0);
	if (ms < 24 || ms >= LATE_MS)
		fail |= F_CANCEL_TIME;
	tu_canceller_join(&k);
	ctx_release(c);

	c = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	if (ctx_read(c, p[0], buf, sizeof(buf)) != -1 ||
	    errno != CTX_DEADLINE_EXCEEDED)
		fail |= F_DEADLINE;
	ctx_release(c);

	c = ctx_with_timeout(ctx_background(), HOUR);
	if (write(p[1], "x", 1) != 1 || ctx_read(c, p[0], buf, 1) != 1 ||
	    buf[0] != 'x')
		fail |= F_DATA;
	ctx_release(c);
	return fail;
}

/*
 * A child forked by a thread that has a reactor gets one of its own:
 * its waits work, and the parent's go on undisturbed meanwhile (a child
 * still on the parent's epoll instance would take its wake-ups).
 */
START_TEST(test_fork_child)
{
	struct tu_canceller k;
	int status;
	char buf[8];
	int p[2];
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);

	/* Give this thread a reactor, with a descriptor registered. */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	tu_assert_fail(ctx_read(c, p[0], buf, sizeof(buf)),
		       CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_checks());

	/* Meanwhile, a wait on this thread's epoll instance. */
	c = ctx_with_cancel(ctx_background());
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, 100 * CTX_MSEC);
	tu_assert_fail(ctx_read(c, p[0], buf, sizeof(buf)), CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 80, LATE_MS);
	tu_canceller_join(&k);
	ctx_release(c);

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child status %#x", status);
	ck_assert_msg(WEXITSTATUS(status) == CHILD_OK, "child exited %#x: over "
		      "%#x, failed 1 sleep, 2 cancel, 4 cancel timing, "
		      "8 deadline, 16 data", WEXITSTATUS(status), CHILD_OK);
	close(p[0]);
	close(p[1]);
}
END_TEST

/*
 * A kernel without TFD_IOC_SET_TICKS (readiness.c): wake-ups go through
 * an eventfd, deadlines through a timerfd of the thread's own, two
 * descriptors once a thread has waited with a deadline.  Forced in a
 * child, whose reactors are all made after the switch; the child runs
 * the fork test's checks, then counts a fresh thread's descriptors.
 */
void ctx__readiness_force_split(void);

static void *split_size_main(void *arg)
{
	int *r = arg, p[2], before = tu_count_fds();
	char ch;

	if (pipe2(p, O_CLOEXEC))
		return NULL;
	ctx_t *c = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	if (ctx_read(c, p[0], &ch, 1) == -1 && errno == CTX_DEADLINE_EXCEEDED)
		*r = tu_count_fds() - before - 2;
	ctx_release(c);
	close(p[0]);
	close(p[1]);
	return NULL;
}

START_TEST(test_split_wakeups)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		pthread_t t;
		int r = -1;

		ctx__readiness_force_split();
		int fail = child_checks();
		if (pthread_create(&t, NULL, split_size_main, &r) ||
		    pthread_join(t, NULL))
			_exit(255);
		_exit(r == 2 ? fail : fail | F_SPLIT_FDS);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child status %#x", status);
	ck_assert_msg(WEXITSTATUS(status) == CHILD_OK, "child exited %#x: over "
		      "%#x, failed 1 sleep, 2 cancel, 4 cancel timing, "
		      "8 deadline, 16 data, 32 two descriptors",
		      WEXITSTATUS(status), CHILD_OK);
}
END_TEST

/* ---- the descriptor budget -------------------------------------------- */

/* Cancels whatever is put in its slot, a moment after. */
struct slot_canceller {
	pthread_t thread;
	_Atomic(ctx_t *) slot;
	atomic_bool stop;
};

static void *slot_main(void *arg)
{
	struct slot_canceller *sc = arg;

	while (!atomic_load(&sc->stop)) {
		ctx_t *c = atomic_load(&sc->slot);

		if (!c) {
			sched_yield();
			continue;
		}
		tu_sleep_ns(50 * CTX_USEC);
		ctx_cancel(c);
		atomic_store(&sc->slot, NULL);
	}
	return NULL;
}

struct budget {
	int base, first, alive, released;
	int wrong;      /* waits that returned the wrong result */
};

/* BUDGET contexts, each waited on once from this thread, in turn: slept
 * on to the end (through a value context), waited on until it expires,
 * waited on until another thread cancels it, and read under until
 * another thread cancels it. */
static void *budget_main(void *arg)
{
	static ctx_t *c[BUDGET];
	struct budget *b = arg;
	struct slot_canceller sc;
	int p[2];
	char ch;
	ctx_t *parent = ctx_with_timeout(ctx_background(), HOUR);

	atomic_init(&sc.slot, NULL);
	atomic_init(&sc.stop, false);
	if (pthread_create(&sc.thread, NULL, slot_main, &sc) ||
	    pipe2(p, O_CLOEXEC))
		abort();
	b->base = tu_count_fds();
	touch_reactor();
	b->first = tu_count_fds();
	for (int i = 0; i < BUDGET; i++) {
		switch (i % 4) {
		case 0: {
			c[i] = ctx_with_cancel(parent);
			ctx_t *v = ctx_with_value(c[i], key, NULL);

			b->wrong += ctx_sleep(v, 100 * CTX_USEC) != 0;
			ctx_release(v);
			break;
		}
		case 1:
			c[i] = ctx_with_timeout(parent, 200 * CTX_USEC);
			b->wrong += ctx_wait(c[i]) != CTX_DEADLINE_EXCEEDED;
			break;
		case 2:
			c[i] = ctx_with_cancel(parent);
			atomic_store(&sc.slot, c[i]);
			b->wrong += ctx_wait(c[i]) != CTX_CANCELED;
			while (atomic_load(&sc.slot))
				sched_yield();
			break;
		default:
			c[i] = ctx_with_cancel(parent);
			atomic_store(&sc.slot, c[i]);
			b->wrong += ctx_read(c[i], p[0], &ch, 1) != -1 ||
				    errno != CTX_CANCELED;
			while (atomic_load(&sc.slot))
				sched_yield();
			break;
		}
	}
	b->alive = tu_count_fds();
	for (int i = 0; i < BUDGET; i++)
		ctx_release(c[i]);
	ctx_release(parent);
	b->released = tu_count_fds();
	atomic_store(&sc.stop, true);
	pthread_join(sc.thread, NULL);
	close(p[0]);
	close(p[1]);
	return NULL;
}

/*
 * At rest a waited-on context holds no descriptor: a thousand of them,
 * alive, cost nothing beyond the waiting thread's own reactor, and that
 * goes when the thread does.
 */
START_TEST(test_budget)
{
	struct budget b = { 0 };
	pthread_t t;
	int r = reactor_size(), base = tu_count_fds();

	start(&t, budget_main, &b);
	join(t);
	ck_assert_int_eq(b.wrong, 0);
	ck_assert_int_eq(b.base, base + 2); /* its pipe */
	ck_assert_int_eq(b.first, base + 2 + r);
	ck_assert_int_eq(b.alive, base + 2 + r);
	ck_assert_int_eq(b.released, base + 2 + r);
	ck_assert_int_eq(tu_count_fds(), base);
}
END_TEST

/* One context waited on again and again from one thread grows nothing:
 * sleeps, polls that time out, and reads that wait for a byte another
 * thread writes. */
struct repeat {
	int first, after;
	int wrong;
	int p[2];
};

#define REPEAT_READS 100

static void *trickle_main(void *arg)
{
	struct repeat *rp = arg;

	for (int i = 0; i < REPEAT_READS; i++) {
		tu_sleep_ns(200 * CTX_USEC);
		if (write(rp->p[1], "x", 1) != 1)
			abort();
	}
	return NULL;
}

static void *repeat_main(void *arg)
{
	struct repeat *rp = arg;
	pthread_t t;
	char ch;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	struct pollfd pfd = { .fd = rp->p[0], .events = POLLIN };

	touch_reactor();
	rp->first = tu_count_fds();
	for (int i = 0; i < BUDGET; i++) {
		rp->wrong += ctx_sleep(c, CTX_USEC) != 0;
		rp->wrong += ctx_poll(c, &pfd, 1, CTX_USEC) != 0;
	}
	if (pthread_create(&t, NULL, trickle_main, rp))
		abort();
	for (int i = 0; i < REPEAT_READS; i++)
		rp->wrong += ctx_read(c, rp->p[0], &ch, 1) != 1;
	pthread_join(t, NULL);
	rp->after = tu_count_fds();
	ctx_release(c);
	return NULL;
}

START_TEST(test_same_ctx_repeat)
{
	struct repeat rp = { 0 };
	pthread_t t;

	ck_assert_int_eq(pipe2(rp.p, O_CLOEXEC), 0);
	int base = tu_count_fds();
	start(&t, repeat_main, &rp);
	join(t);
	ck_assert_int_eq(rp.wrong, 0);
	ck_assert_int_eq(rp.after, rp.first);
	ck_assert_int_eq(tu_count_fds(), base);
	close(rp.p[0]);
	close(rp.p[1]);
}
END_TEST

/* ---- fan-out ---------------------------------------------------------- */

struct fan {
	pthread_t thread;
	pid_t tid;
	ctx_t *ctx;
	int fd;         /* a pipe's read end to ctx_read, or -1: ctx_wait */
	long rc;
	int err;
	atomic_int *started, *finished;
};

static void *fan_main(void *arg)
{
	struct fan *f = arg;
	char ch;

	f->tid = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(f->started, 1);
	if (f->fd >= 0) {
		f->rc = ctx_read(f->ctx, f->fd, &ch, 1);
		f->err = errno;
	} else {
		f->rc = -1;
		f->err = ctx_wait(f->ctx);
	}
	atomic_fetch_add(f->finished, 1);
	return NULL;
}

/* The system call thread tid sleeps in and its first argument, from
 * /proc (the futex word, for a futex); false if it runs or is gone. */
static bool task_syscall(pid_t tid, long *nr, unsigned long *arg0)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return sscanf(buf, "%ld %lx", nr, arg0) == 2;
}

/*
 * Threads in ctx_wait on one context with no deadline sleep on one word
 * of the context, so that its cancel wakes them all with one futex call
 * rather than one per thread.  (Until this test, ctx_wait asked the
 * reactor for a wait that ends on any wake-up, which ruled that out: each
 * thread slept on its own word and the cancel woke them one by one, 2x
 * the condvar broadcast at 1,024 threads in bench fanout/1024.)  Beside
 * them one thread in ctx_wait on a child with a deadline: that one is
 * timed, so it sleeps in the reactor, and ends with the rest.
 */
enum { ONE_WORD = 8 };

START_TEST(test_wait_one_word)
{
#ifdef TU_TSAN
	fprintf(stderr, "test_wait_one_word: SKIPPED: under ThreadSanitizer "
		"every sleep is a poll (wait/reactor.c: FUTEX_SLEEP)\n");
	return;
#endif
	if (tu_valgrind()) {
		fprintf(stderr, "test_wait_one_word: SKIPPED: under valgrind "
			"/proc shows valgrind's own system calls\n");
		return;
	}
	struct fan f[ONE_WORD + 1];
	atomic_int started, finished;
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *timed = ctx_with_timeout(c, HOUR);
	unsigned long word = 0, a0;
	long nr = -1;

	atomic_init(&started, 0);
	atomic_init(&finished, 0);
	for (int i = 0; i <= ONE_WORD; i++) {
		f[i] = (struct fan){ .ctx = i < ONE_WORD ? c : timed,
				     .fd = -1, .started = &started,
				     .finished = &finished };
		ck_assert_int_eq(pthread_create(&f[i].thread, NULL, fan_main,
						&f[i]), 0);
	}
	int64_t t0 = ctx_now();
	while (atomic_load(&started) < ONE_WORD + 1 && tu_ms_since(t0) < 30000)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&started), ONE_WORD + 1);
	/* Each of the eight, once asleep in futex_wait, on the same word. */
	for (int i = 0; i < ONE_WORD; i++) {
		while (!(task_syscall(f[i].tid, &nr, &a0) &&
			 nr == SYS_futex) && tu_ms_since(t0) < 30000)
			tu_sleep_ns(CTX_MSEC);
		ck_assert_int_eq(nr, SYS_futex);
		if (i == 0)
			word = a0;
		ck_assert_msg(a0 == word, "thread %d sleeps on %#lx, thread 0 "
			      "on %#lx", i, a0, word);
	}
	ck_assert_int_eq(atomic_load(&finished), 0);
	ctx_cancel(c);
	for (int i = 0; i <= ONE_WORD; i++) {
		ck_assert_int_eq(pthread_join(f[i].thread, NULL), 0);
		ck_assert_int_eq(f[i].err, CTX_CANCELED);
	}
	ctx_release(timed);
	ctx_release(c);
}
END_TEST

/* Raise the soft descriptor limit to need if the hard one allows. */
static bool enough_fds(rlim_t need)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
			return false;
		rl.rlim_cur = need;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	return true;
}

/* Descendants of root of every kind, some deep. */
#define N_DESC 16

static void make_descendants(ctx_t *root, ctx_t **d)
{
	d[0] = ctx_ref(root);
	d[1] = ctx_with_cancel(root);
	d[2] = ctx_with_timeout(root, HOUR);
	d[3] = ctx_with_value(d[1], key, NULL);
	d[4] = ctx_with_deadline(d[3], ctx_now() + HOUR);
	d[5] = ctx_with_value(root, key, NULL);
	d[6] = ctx_with_timeout_cause(d[2], HOUR, 42);
	d[7] = ctx_with_cancel(d[5]);
	for (int i = 8; i < N_DESC; i++)
		d[i] = ctx_with_cancel(d[i - 1]);
	for (int i = 0; i < N_DESC; i++)
		ck_assert_ptr_nonnull(d[i]);
}

/*
 * Cancelling a root wakes every thread blocked on any descendant: half
 * read their own empty pipe, half wait on the context itself.
 */
START_TEST(test_fanout)
{
	int n = tu_quick() ? QUICK_FANOUT : FANOUT;
	struct fan *f = calloc((size_t)n, sizeof(*f));
	ctx_t *d[N_DESC];
	atomic_int started, finished;
	pthread_attr_t attr;
	int (*pipes)[2] = calloc((size_t)n, sizeof(*pipes));
	int npipes = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(pipes);
	int r = reactor_size(), base = tu_count_fds();
	rlim_t need = (rlim_t)(base + 64 + n * (r + 2));
	if (!enough_fds(need)) {
		fprintf(stderr, "test_fanout: SKIPPED: %d threads need %lu "
			"descriptors, above the hard RLIMIT_NOFILE\n", n,
			(unsigned long)need);
		free(pipes);
		free(f);
		return;
	}
	atomic_init(&started, 0);
	atomic_init(&finished, 0);
	ctx_t *root = ctx_with_cancel(ctx_background());
	make_descendants(root, d);
	ck_assert_int_eq(pthread_attr_init(&attr), 0);
	ck_assert_int_eq(pthread_attr_setstacksize(&attr, FAN_STACK), 0);
	for (int i = 0; i < n; i++) {
		f[i] = (struct fan){ .ctx = d[i / 2 % N_DESC], .fd = -1,
				     .started = &started,
				     .finished = &finished };
		if (i % 2 == 0) {
			ck_assert_int_eq(pipe2(pipes[npipes], O_CLOEXEC), 0);
			f[i].fd = pipes[npipes++][0];
		}
		ck_assert_int_eq(pthread_create(&f[i].thread, &attr, fan_main,
						&f[i]), 0);
	}
	pthread_attr_destroy(&attr);

	/* Every thread started, and sleeps in the kernel: it waits. */
	int64_t t1 = ctx_now();
	while (atomic_load(&started) < n && tu_ms_since(t1) < 30000)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&started), n);
	pid_t *tids = calloc((size_t)n, sizeof(*tids));
	ck_assert_ptr_nonnull(tids);
	for (int i = 0; i < n; i++)
		tids[i] = f[i].tid;
	ck_assert_msg(await_asleep(tids, n, 30000), "not all %d threads "
		      "went to sleep", n);
	free(tids);
	ck_assert_int_eq(atomic_load(&finished), 0);

	int64_t t0 = ctx_now();
	ctx_cancel(root);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(f[i].thread, NULL), 0);
	tu_assert_ms(tu_ms_since(t0), 0, 10000);
	for (int i = 0; i < n; i++)
		ck_assert_msg(f[i].rc == -1 && f[i].err == CTX_CANCELED,
			      "thread %d (%s on d[%d]): %ld, errno %d", i,
			      f[i].fd >= 0 ? "ctx_read" : "ctx_wait",
			      i / 2 % N_DESC, f[i].rc, f[i].err);
	for (int i = 0; i < N_DESC; i++)
		ck_assert_int_eq(ctx_err(d[i]), CTX_CANCELED);

	for (int i = 0; i < npipes; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	ck_assert_int_eq(tu_count_fds(), base);
	for (int i = 0; i < N_DESC; i++)
		ctx_release(d[i]);
	ctx_release(root);
	free(pipes);
	free(f);
}
END_TEST

/*
 * A deadline and a cancel at the same moment: RACE_THREADS threads, each
 * under its own child of one root whose deadline is the same instant,
 * half in ctx_read on a pipe, half in ctx_sleep_until that instant; the
 * test's thread cancels the root at the instant, give or take a little.
 * So each thread's one descriptor gets its timer's expiry and a wake-up
 * together, and the cancel's wake-ups are shared out among the threads
 * (runtime/wait/reactor.c).  Every wait ends with one of the two
 * results, soon after the instant, in every round.
 */
#define RACE_THREADS 32
#define RACE_ROUNDS 40

struct race {
	pthread_t thread;
	ctx_t *ctx;
	int fd;        /* a pipe's read end, or -1: sleep until `at` */
	int64_t at;
	long rc;
	int err;
	double late_ms; /* how long after `at` it returned */
};

static void *race_main(void *arg)
{
	struct race *r = arg;
	char ch;

	if (r->fd >= 0) {
		r->rc = ctx_read(r->ctx, r->fd, &ch, 1);
		r->err = r->rc < 0 ? errno : 0;
	} else {
		r->rc = 0;
		r->err = ctx_sleep_until(r->ctx, r->at);
	}
	r->late_ms = (double)(ctx_now() - r->at) / CTX_MSEC;
	return NULL;
}

static void race_check(const struct race *r, int round, int i)
{
	bool read = r->fd >= 0;
	bool ended = r->err == CTX_CANCELED ||
		     r->err == CTX_DEADLINE_EXCEEDED || (!read && !r->err);

	ck_assert_msg(ended && (!read || r->rc == -1), "round %d, thread %d "
		      "(%s): %ld, error %d", round, i, read ? "read" : "sleep",
		      r->rc, r->err);
	ck_assert_msg(r->late_ms < LATE_MS, "round %d, thread %d ended %.1f "
		      "ms after the instant", round, i, r->late_ms);
}

static void race_round(struct race *r, int n, int round, int (*p)[2])
{
	int64_t at = ctx_now() + 20 * CTX_MSEC;
	ctx_t *root = ctx_with_deadline(ctx_background(), at);

	ck_assert_ptr_nonnull(root);
	for (int i = 0; i < n; i++) {
		r[i] = (struct race){ .ctx = ctx_with_cancel(root), .at = at,
				      .fd = i % 2 ? -1 : p[i][0] };
		ck_assert_ptr_nonnull(r[i].ctx);
		start(&r[i].thread, race_main, &r[i]);
	}
	/* The cancel falls from 100 us before the instant to 100 us after. */
	int64_t when = at - 100 * CTX_USEC + (round % 9) * 25 * CTX_USEC;
	int64_t nap = when - 2 * CTX_MSEC - ctx_now();
	if (nap > 0)
		tu_sleep_ns(nap);
	while (ctx_now() < when)
		;
	ctx_cancel(root);
	for (int i = 0; i < n; i++) {
		join(r[i].thread);
		race_check(&r[i], round, i);
		ctx_release(r[i].ctx);
	}
	ctx_release(root);
}

START_TEST(test_deadline_cancel_race)
{
	int n = tu_quick() ? 8 : RACE_THREADS;
	int rounds = tu_quick() ? 10 : RACE_ROUNDS;
	static struct race r[RACE_THREADS];
	int p[RACE_THREADS][2];

	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pipe2(p[i], O_CLOEXEC), 0);
	for (int round = 0; round < rounds; round++)
		race_round(r, n, round, p);
	for (int i = 0; i < n; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
}
END_TEST


/* ---- descriptor numbers that come back as other files ----------------- */

/*
 * A thread's ctx_read on fd N was cancelled, so N's registration with
 * the thread's epoll instance is still armed.  N is then closed, but the
 * file lives on in a duplicate (as it does when a child inherited it),
 * so the kernel keeps that registration; and N comes back as a blocking
 * FIFO.  Data written to the old pipe must not end, or wedge, a ctx_read
 * on the FIFO: it has a 300 ms deadline and must return ETIMEDOUT then.
 * Runs on a worker: if its read is stuck, the test writes to the FIFO to
 * free it, and fails.
 */
struct stale {
	pthread_t thread;
	int pipe_rd;            /* becomes the FIFO's number */
	int fifo;
	atomic_bool ready, done;
	long n;
	int err;
	double ms;
};

static void *stale_main(void *arg)
{
	struct stale *s = arg;
	char buf[8];
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);

	if (ctx_read(c, s->pipe_rd, buf, sizeof(buf)) != -1)
		abort();
	ctx_release(c);
	/* N is now the FIFO; the pipe's file lives on in a duplicate. */
	if (dup3(s->fifo, s->pipe_rd, O_CLOEXEC) != s->pipe_rd)
		abort();
	int64_t t0 = ctx_now();
	c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	atomic_store(&s->ready, true);
	s->n = ctx_read(c, s->pipe_rd, buf, sizeof(buf));
	s->err = errno;
	s->ms = tu_ms_since(t0);
	ctx_release(c);
	atomic_store(&s->done, true);
	return NULL;
}

START_TEST(test_stale_registration)
{
	struct stale s;
	char dir[] = "/tmp/ctx-test-XXXXXX", path[64];
	int p[2];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	s.fifo = open(path, O_RDWR | O_CLOEXEC);
	unlink(path);
	rmdir(dir);
	ck_assert_int_ge(s.fifo, 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	int keep = fcntl(p[0], F_DUPFD_CLOEXEC, 0);
	ck_assert_int_ge(keep, 0);
	s.pipe_rd = p[0];
	atomic_init(&s.ready, false);
	atomic_init(&s.done, false);

	start(&s.thread, stale_main, &s);
	while (!atomic_load(&s.ready))
		tu_sleep_ns(CTX_MSEC);
	tu_sleep_ns(50 * CTX_MSEC);
	ck_assert_int_eq(write(p[1], "old", 3), 3);
	int64_t t0 = ctx_now();
	while (!atomic_load(&s.done) && tu_ms_since(t0) < 3000)
		tu_sleep_ns(CTX_MSEC);
	bool stuck = !atomic_load(&s.done);
	if (stuck)
		ck_assert_int_eq(write(s.fifo, "unstick", 7), 7);
	join(s.thread);
	close(p[0]); /* the FIFO's duplicate at N */
	close(p[1]);
	close(keep);
	close(s.fifo);
	ck_assert_msg(!stuck, "ctx_read on a blocking FIFO was stuck past "
		      "its 300 ms deadline after data came on the closed "
		      "pipe whose number it reuses (%ld bytes, %.0f ms)",
		      s.n, s.ms);
	errno = s.err;
	tu_assert_fail(s.n, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(s.ms, 300, 300 + LATE_MS);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_reactor(void)
{
	Suite *s = suite_create("reactor");
	TCase *tc;

	tc = tu_tcase(s, "backend", 30);
	tcase_add_test(tc, test_backend);

	tc = tu_tcase(s, "lifecycle", 120);
	tu_add_tests(tc, test_ready_makes_nothing, test_thread_exit_frees,
		     test_cloexec, test_fork_child, test_split_wakeups,
		     test_budget, test_same_ctx_repeat);

	tc = tu_tcase(s, "fanout", 120);
	tu_add_tests(tc, test_fanout, test_deadline_cancel_race,
		     test_wait_one_word);

	add_reactor_storm(s);

	tc = tu_tcase(s, "stale", 30);
	tcase_add_test(tc, test_stale_registration);

	return s;
}
