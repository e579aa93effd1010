/*
 * Faults: the library when the world says no.
 *
 *  emfile   RLIMIT_NOFILE lowered mid-run, with other threads waiting
 *           throughout, so that a new thread's first timed wait cannot
 *           make its reactor's descriptors (0, 1 or 2 of the 3 it needs
 *           are left) and ctx_done_fd cannot make its eventfd.  Every call
 *           fails with EMFILE or completes as it would have; nothing
 *           leaks (a reactor half made is closed again); the waits that
 *           need no descriptor work as before; and once the limit is
 *           raised the very same calls, in the very same thread, succeed.
 *  enomem   ctx__fail_malloc_after at every allocation index of a
 *           scenario (n = 0, 1, 2, ... until the scenario runs with no
 *           injected failure): constructors return NULL with ENOMEM, the
 *           calls that report an error number report ENOMEM, exactly one
 *           call fails when one allocation does, nothing is half built
 *           (every context is freed: its done fd closes; valgrind), and
 *           the parent works afterwards.  A probe after each run tells
 *           whether the injected failure was consumed, so no failing
 *           allocation goes unnoticed and the loop ends exactly.
 *  signals  A handler installed without SA_RESTART and a thread sending
 *           it to the waiting threads every ~100 us, while they read,
 *           sleep, poll, wait, receive, join and wait for groups with
 *           deadlines, cancels and data to come: each wait ends only by
 *           its data, its cancel or its deadline, with the exact result,
 *           never EINTR and never early.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

/* Test hook of runtime/alloc.c: the allocation after the next n fails,
 * once; -1 turns it off. */
void ctx__fail_malloc_after(long n);

#define HOUR (3600 * CTX_SEC)
#define TOL_MS 2000
#define SHORT_MS 10           /* deadlines of the emfile calls */
#define STORM_ROUNDS 3
#define STORM_DL_MS 60        /* deadlines under the storm */
#define STORM_EVENT_MS 40     /* data, cancels, dones under the storm */
#define STORM_PERIOD_US 100

static const char key[] = "faults";

static int64_t tol(void)
{
	return (tu_valgrind() ? 10 : 1) * (int64_t)TOL_MS * CTX_MSEC;
}

/* Problems found where a Check assertion must not be made (another
 * thread; an injected failure still armed): the first is kept. */
static pthread_mutex_t note_mu = PTHREAD_MUTEX_INITIALIZER;
static char note_msg[1024];

__attribute__((format(printf, 1, 2)))
static void note(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "faults: %s\n", msg);
	pthread_mutex_lock(&note_mu);
	if (!note_msg[0])
		snprintf(note_msg, sizeof(note_msg), "%s", msg);
	pthread_mutex_unlock(&note_mu);
}

static void notes_reset(void)
{
	pthread_mutex_lock(&note_mu);
	note_msg[0] = '\0';
	pthread_mutex_unlock(&note_mu);
}

static void assert_no_notes(void)
{
	char msg[1024];

	pthread_mutex_lock(&note_mu);
	snprintf(msg, sizeof(msg), "%s", note_msg);
	pthread_mutex_unlock(&note_mu);
	ck_assert_msg(!msg[0], "%s", msg);
}

static void set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

static bool wait_flag(_Atomic int *f)
{
	int64_t end = ctx_now() + tol();

	while (!atomic_load(f) && ctx_now() < end)
		tu_sleep_ns(200 * CTX_USEC);
	return atomic_load(f) != 0;
}

/* Start the library's long-lived threads (timer, after-func runner) and
 * this thread's reactor, so that counts taken next are a baseline. */
static void warm_up(void)
{
	_Atomic int ran = 0;
	int p[2];
	char ch;
	/* A deadline far enough that it is still ahead when the done fd is
	 * asked for, however slow the machine: the timer thread starts. */
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_cancel(c);
	ctx_after_t *a = ctx_after_func(c, set_flag, &ran);
	ck_assert_ptr_nonnull(a);
	ck_assert(wait_flag(&ran));
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	c = ctx_with_timeout(ctx_background(), CTX_MSEC);
	ck_assert_int_eq(ctx_read(c, p[0], &ch, 1), -1);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}

/* ======================================================================
 * Descriptors exhausted
 * ==================================================================== */

/* The soft limit that leaves exactly `room` descriptor numbers free. */
static rlim_t limit_for_room(int room)
{
	int free_seen = 0;
	rlim_t n = 0;

	for (;; n++) {
		if (fcntl((int)n, F_GETFD) < 0 && errno == EBADF) {
			if (free_seen == room)
				return n;
			free_seen++;
		}
	}
}

struct lowered {
	struct rlimit old;
	bool on;
};

static void lower(struct lowered *l, int room)
{
	struct rlimit low;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &l->old), 0);
	low = l->old;
	low.rlim_cur = limit_for_room(room);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	l->on = true;
}

static void raise_again(struct lowered *l)
{
	if (l->on)
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &l->old), 0);
	l->on = false;
}

/* Threads that wait and wake all through the test: their reactors exist,
 * so a low limit must not touch them. */
struct pinger {
	pthread_t th;
	int fd;
	bool writer;
	_Atomic bool stop;
	_Atomic bool ready;
	_Atomic long rounds;
};

static void *pinger_main(void *arg)
{
	struct pinger *p = arg;
	char buf[16] = "ping";

	while (!atomic_load(&p->stop)) {
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    SHORT_MS * CTX_MSEC);
		if (!c) {
			note("pinger: ctx_with_timeout: errno %d", errno);
			break;
		}
		ssize_t n = p->writer ? ctx_write(c, p->fd, buf, 4) :
					ctx_read(c, p->fd, buf, sizeof(buf));
		int e = errno;
		ctx_release(c);
		if (n < 0 && e != CTX_DEADLINE_EXCEEDED)
			note("pinger (%s, reactor made): error %d (%s) under "
			     "the low limit", p->writer ? "ctx_write" :
			     "ctx_read", e, strerror(e));
		if (p->writer)
			tu_sleep_ns(2 * CTX_MSEC);
		atomic_fetch_add(&p->rounds, 1);
		atomic_store(&p->ready, true);
	}
	return NULL;
}

struct emfile {
	int room;
	int phase;              /* 0: limit low; 1: raised */
	_Atomic int step;       /* the test's thread lets a phase begin */
	_Atomic int finished;   /* phases the new thread completed */
	int p[2], s[2], fifo;
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	ctx_thread_t *blocked;
	char fifo_path[64];
};

/* A call's result: EMFILE, or what it returns with descriptors. */
static void expect(struct emfile *x, const char *what, long rc, int err,
		   long ok_rc, int ok_err)
{
	bool emfile = rc == -1 && err == EMFILE;
	bool normal = rc == ok_rc && (ok_rc != -1 || err == ok_err);

	if (x->phase == 1 && !normal)
		note("room %d, limit raised again: %s returned %ld, error %d "
		     "(%s); expected %ld, error %d", x->room, what, rc, err,
		     strerror(err), ok_rc, ok_err);
	else if (x->phase == 0 && x->room == 0 && !emfile)
		note("room 0: %s returned %ld, error %d (%s); expected "
		     "EMFILE", what, rc, err, strerror(err));
	else if (x->phase == 0 && !emfile && !normal)
		note("room %d: %s returned %ld, error %d (%s); expected "
		     "EMFILE or %ld", x->room, what, rc, err, strerror(err),
		     ok_rc);
}

/* As expect(), for calls that return an error number. */
static void expect_e(struct emfile *x, const char *what, int e, int ok)
{
	expect(x, what, e ? -1 : 0, e, ok ? -1 : 0, ok);
}

static ctx_t *short_ctx(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT_MS * CTX_MSEC);
	if (!c)
		note("ctx_with_timeout: NULL, errno %d", errno);
	return c;
}

struct later {
	pthread_t th;
	int64_t delay;
	ctx_t *cancel;
	ctx_chan_t *ch;
	int fd;
};

static void *later_main(void *arg)
{
	struct later *l = arg;
	long v = 7;

	tu_sleep_ns(l->delay);
	if (l->cancel)
		ctx_cancel(l->cancel);
	if (l->ch) {
		ctx_t *c = ctx_with_timeout(ctx_background(), tol());
		int e = c ? ctx_chan_send(c, l->ch, &v) : ENOMEM;
		if (e)
			note("later: ctx_chan_send: %d", e);
		ctx_release(c);
	}
	if (l->fd >= 0 && write(l->fd, "fifo", 4) != 4)
		note("later: write: %s", strerror(errno));
	return NULL;
}

static void later(struct later *l, ctx_t *cancel, ctx_chan_t *ch, int fd)
{
	*l = (struct later){ .delay = 5 * CTX_MSEC, .cancel = cancel,
			     .ch = ch, .fd = fd };
	if (pthread_create(&l->th, NULL, later_main, l))
		note("pthread_create: %s", strerror(errno));
}

static void *sleep_1ms(ctx_t *ctx, void *arg)
{
	(void)arg;
	return (void *)(intptr_t)ctx_sleep(ctx, CTX_MSEC);
}

static int group_sleep_1ms(ctx_t *ctx, void *arg)
{
	(void)arg;
	return ctx_sleep(ctx, CTX_MSEC);
}

static void *wait_ctx(ctx_t *ctx, void *arg)
{
	(void)arg;
	ctx_wait(ctx);
	return NULL;
}

/* Everything a new thread might do first, with the limit low (phase 0)
 * and then raised again (phase 1). */
static void emfile_calls(struct emfile *x)
{
	char buf[8];
	long v;
	int e;
	ctx_t *c;
	struct pollfd pf = { .fd = x->p[0], .events = POLLIN };

	e = ctx_sleep(ctx_background(), CTX_MSEC);
	expect_e(x, "ctx_sleep(1 ms)", e, 0);

	c = short_ctx();
	long rc = ctx_read(c, x->p[0], buf, sizeof(buf));
	expect(x, "ctx_read(pipe)", rc, errno, -1, CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	c = short_ctx();
	rc = ctx_recv(c, x->s[0], buf, sizeof(buf), 0);
	expect(x, "ctx_recv(socket)", rc, errno, -1, CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	c = short_ctx();
	expect_e(x, "ctx_wait(deadline)", ctx_wait(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	c = short_ctx();
	rc = ctx_poll(c, &pf, 1, -1);
	expect(x, "ctx_poll(context deadline)", rc, errno, -1,
	       CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	rc = ctx_poll(ctx_background(), &pf, 1, CTX_MSEC);
	expect(x, "ctx_poll(1 ms timeout)", rc, errno, 0, 0);

	c = short_ctx();
	expect_e(x, "ctx_chan_recv(deadline)", ctx_chan_recv(c, x->ch, &v),
		 CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	c = short_ctx();
	expect_e(x, "ctx_wg_wait(deadline)", ctx_wg_wait(c, x->wg),
		 CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	c = short_ctx();
	expect_e(x, "ctx_thread_join(deadline)",
		 ctx_thread_join(c, x->blocked, NULL), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);

	/* A blocking FIFO: the private non-blocking reopening cannot be
	 * made either. */
	struct later l;
	c = ctx_with_timeout(ctx_background(), tol());
	later(&l, NULL, NULL, x->fifo < 0 ? -1 : x->fifo + 0);
	rc = ctx_read(c, x->fifo, buf, sizeof(buf));
	e = errno;
	pthread_join(l.th, NULL);
	expect(x, "ctx_read(blocking FIFO, data in 5 ms)", rc, e, 4, 0);
	if (rc < 0) { /* take the data, to leave the FIFO empty */
		struct pollfd ff = { .fd = x->fifo, .events = POLLIN };
		if (poll(&ff, 1, 1000) == 1 && read(x->fifo, buf, 4) != 4)
			note("FIFO: %s", strerror(errno));
	}
	ctx_release(c);

	/* A done fd: an eventfd. */
	c = ctx_with_timeout(ctx_background(), HOUR);
	errno = 0;
	int fd = ctx_done_fd(c);
	e = errno;
	if (fd >= 0) {
		if (x->phase == 0 && x->room == 0)
			note("room 0: ctx_done_fd made a descriptor (%d)", fd);
		ctx_cancel(c);
		struct pollfd dp = { .fd = fd, .events = POLLIN };
		if (poll(&dp, 1, 0) != 1)
			note("done fd not readable after ctx_cancel");
	} else if (x->phase == 1 || e != EMFILE) {
		note("room %d, phase %d: ctx_done_fd: -1, errno %d (%s)",
		     x->room, x->phase, e, strerror(e));
	}
	if (ctx_err(c) == 0 && fd < 0)
		ctx_cancel(c); /* the context itself is unharmed */
	if (ctx_err(c) != CTX_CANCELED)
		note("ctx_err after ctx_done_fd failed and a cancel: %d",
		     ctx_err(c));
	ctx_release(c);

	/* Waits that need no descriptor: a futex, woken by a cancel or by
	 * a sender. */
	c = ctx_with_cancel(ctx_background());
	later(&l, c, NULL, -1);
	e = ctx_wait(c);
	pthread_join(l.th, NULL);
	if (e != CTX_CANCELED)
		note("room %d: ctx_wait(cancel, no deadline): %d", x->room, e);
	ctx_release(c);

	c = ctx_with_cancel(ctx_background());
	later(&l, NULL, x->ch, -1);
	v = 0;
	e = ctx_chan_recv(c, x->ch, &v);
	pthread_join(l.th, NULL);
	if (e != 0 || v != 7)
		note("room %d: ctx_chan_recv(no deadline) with a sender: %d, "
		     "%ld", x->room, e, v);
	ctx_release(c);

	/* Threads start; their first timed wait is in the same spot. */
	ctx_thread_t *t;
	void *res = NULL;
	e = ctx_thread_create(&t, ctx_background(), sleep_1ms, NULL);
	if (e) {
		note("ctx_thread_create: %d", e);
	} else {
		e = ctx_thread_join(ctx_background(), t, &res);
		if (e)
			note("ctx_thread_join: %d", e);
		expect_e(x, "a new thread's ctx_sleep", (int)(intptr_t)res, 0);
	}

	ctx_group_t *g = ctx_group_new(ctx_background());
	if (!g) {
		note("ctx_group_new: errno %d", errno);
	} else {
		e = ctx_group_go(g, group_sleep_1ms, NULL);
		if (e)
			note("ctx_group_go: %d", e);
		expect_e(x, "a group's ctx_sleep", ctx_group_wait(g), 0);
		ctx_group_free(g);
	}

	/* An after-func needs no descriptor: the timer thread ends its
	 * context at the deadline. */
	_Atomic int ran = 0;
	c = ctx_with_timeout(ctx_background(), CTX_MSEC);
	ctx_after_t *a = ctx_after_func(c, set_flag, &ran);
	if (!a) {
		note("room %d: ctx_after_func: NULL, errno %d", x->room, errno);
	} else {
		if (!wait_flag(&ran))
			note("room %d: after-func did not run", x->room);
		if (ctx_after_stop(a))
			note("ctx_after_stop: true after fn ran");
	}
	ctx_release(c);
}

static void *emfile_main(void *arg)
{
	struct emfile *x = arg;

	for (int phase = 0; phase < 2; phase++) {
		while (atomic_load(&x->step) < phase)
			tu_sleep_ns(CTX_MSEC);
		x->phase = phase;
		emfile_calls(x);
		atomic_store(&x->finished, phase + 1);
	}
	return NULL;
}

/*
 * A new thread runs every kind of call with 0, 1 or 2 descriptor numbers
 * free (its reactor takes up to 2), while two threads with reactors ping
 * along; then with the limit raised again, in the same thread.
 */
START_TEST(test_emfile_new_thread)
{
	struct emfile x = { .room = _i };
	struct pinger pr = { .writer = false }, pw = { .writer = true };
	struct lowered lim = { .on = false };
	int sp[2];
	pthread_t th;
	ctx_t *bctx = ctx_with_cancel(ctx_background());

	notes_reset();
	warm_up();
	int fds0 = tu_count_fds(), threads0 = tu_count_threads();
	atomic_init(&x.step, -1);
	ck_assert_int_eq(pipe2(x.p, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    x.s), 0);
	snprintf(x.fifo_path, sizeof(x.fifo_path), "/tmp/ctx-faults-%d-%d",
		 (int)getpid(), _i);
	unlink(x.fifo_path);
	ck_assert_int_eq(mkfifo(x.fifo_path, 0600), 0);
	x.fifo = open(x.fifo_path, O_RDWR | O_CLOEXEC); /* blocking */
	ck_assert_int_ge(x.fifo, 0);
	unlink(x.fifo_path);
	x.ch = ctx_chan_new(sizeof(long), 0);
	x.wg = ctx_wg_new();
	ck_assert_ptr_nonnull(x.ch);
	ck_assert_ptr_nonnull(x.wg);
	ctx_wg_add(x.wg, 1);
	ck_assert_ptr_nonnull(bctx);
	ck_assert_int_eq(ctx_thread_create(&x.blocked, bctx, wait_ctx, NULL),
			 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sp), 0);
	pr.fd = sp[0];
	pw.fd = sp[1];
	ck_assert_int_eq(pthread_create(&pr.th, NULL, pinger_main, &pr), 0);
	ck_assert_int_eq(pthread_create(&pw.th, NULL, pinger_main, &pw), 0);
	while (!atomic_load(&pr.ready) || !atomic_load(&pw.ready))
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(pthread_create(&th, NULL, emfile_main, &x), 0);
	/* The new thread is there, and has made nothing yet. */
	int fds = tu_count_fds(), threads = tu_count_threads();

	lower(&lim, x.room);
	long pings = atomic_load(&pr.rounds);
	atomic_store(&x.step, 0);
	while (atomic_load(&x.finished) < 1)
		tu_sleep_ns(CTX_MSEC);
	long pings_low = atomic_load(&pr.rounds) - pings;
	raise_again(&lim);

	/* Nothing made or half made stays open, no thread is left. */
	int fn = tu_settle_fds(fds, 2 * CTX_SEC);
	int tn = tu_settle_threads(threads, 2 * CTX_SEC);
	atomic_store(&x.step, 1);
	while (atomic_load(&x.finished) < 2)
		tu_sleep_ns(CTX_MSEC);
	pthread_join(th, NULL);
	atomic_store(&pr.stop, true);
	atomic_store(&pw.stop, true);
	pthread_join(pr.th, NULL);
	pthread_join(pw.th, NULL);
	assert_no_notes();
	/* The thread's reactor is made a descriptor at a time (its wake-up
	 * descriptor first and, where the kernel needs one, a timerfd for
	 * its first timed wait), and what it could make it keeps until it
	 * exits: at most `room` more, checked to be gone once it has
	 * exited, at the end. */
	ck_assert_msg(fn >= fds && fn - fds <= x.room, "room %d: %d "
		      "descriptors open with the limit low, %d before",
		      x.room, fn, fds);
	ck_assert_msg(tn == threads, "room %d: %d threads, %d expected",
		      x.room, tn, threads);
	ck_assert_msg(pings_low > 0, "the reading pinger made no round while "
		      "the limit was low");

	ctx_cancel(bctx);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), x.blocked, NULL),
			 0);
	ctx_release(bctx);
	ctx_wg_done(x.wg);
	ctx_wg_free(x.wg);
	ctx_chan_free(x.ch);
	close(x.p[0]);
	close(x.p[1]);
	close(x.s[0]);
	close(x.s[1]);
	close(x.fifo);
	close(sp[0]);
	close(sp[1]);
	int tn0 = tu_settle_threads(threads0, 2 * CTX_SEC);
	ck_assert_msg(tn0 == threads0, "%d threads at the end, %d at the "
		      "start", tn0, threads0);
	ck_assert_int_eq(tu_settle_fds(fds0, 2 * CTX_SEC), fds0);
}
END_TEST

/*
 * ctx_done_fd with no descriptor to spare: -1 with EMFILE for each kind
 * of context, each left as it was; with room again, the same calls give
 * descriptors that turn readable on cancel and at the deadline (from the
 * timer thread, with nobody else in the library).
 */
START_TEST(test_emfile_done_fd)
{
	struct lowered lim = { .on = false };
	int fd[3], err[3];

	notes_reset();
	warm_up();
	int fds = tu_count_fds();
	ctx_t *cc = ctx_with_cancel(ctx_background());
	ctx_t *dc = ctx_with_timeout(ctx_background(), 200 * CTX_MSEC);
	ctx_t *vc = ctx_with_value(cc, key, NULL);
	ctx_t *cs[3] = { cc, dc, vc };
	lower(&lim, 0);
	for (int i = 0; i < 3; i++) {
		errno = 0;
		fd[i] = ctx_done_fd(cs[i]);
		err[i] = errno;
	}
	errno = 0;
	int bg = ctx_done_fd(ctx_background());
	int bge = errno;
	raise_again(&lim);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(fd[i] == -1 && err[i] == EMFILE, "context %d: "
			      "ctx_done_fd gave %d, errno %d", i, fd[i],
			      err[i]);
		ck_assert_int_eq(ctx_err(cs[i]), 0);
	}
	ck_assert_int_eq(bg, -1);
	ck_assert_int_eq(bge, 0);
	ck_assert_int_eq(tu_count_fds(), fds);

	for (int i = 0; i < 3; i++) {
		fd[i] = ctx_done_fd(cs[i]);
		ck_assert_int_ge(fd[i], 0);
	}
	ck_assert_int_eq(fd[0], fd[2]); /* the value's is its parent's */
	struct pollfd pf = { .fd = fd[1], .events = POLLIN };
	int64_t t = ctx_now();
	ck_assert_int_eq(poll(&pf, 1, (int)(tol() / CTX_MSEC) + 100), 1);
	ck_assert_msg(ctx_now() - t < 200 * CTX_MSEC + tol(), "done fd late");
	ck_assert_int_eq(ctx_err(dc), CTX_DEADLINE_EXCEEDED);
	pf.fd = fd[0];
	ck_assert_int_eq(poll(&pf, 1, 0), 0);
	ctx_cancel_cause(cc, 21);
	ck_assert_int_eq(poll(&pf, 1, 0), 1);
	ck_assert_int_eq(ctx_cause(vc), 21);
	ctx_release(vc);
	ctx_release(dc);
	ctx_release(cc);
	ck_assert_int_eq(tu_settle_fds(fds, 2 * CTX_SEC), fds);
	assert_no_notes();
}
END_TEST

/* ======================================================================
 * Memory exhausted
 * ==================================================================== */

/* Whether an armed injection is still waiting for its allocation; it is
 * consumed (and disarmed) here either way. */
static bool injection_pending(void)
{
	enum { PROBES = 4096 };
	ctx_wg_t **w = malloc(PROBES * sizeof(*w));
	bool pending = false;
	int n;

	ck_assert_ptr_nonnull(w);
	for (n = 0; n < PROBES; n++)
		if (!(w[n] = ctx_wg_new())) {
			pending = true;
			break;
		}
	ctx__fail_malloc_after(-1);
	for (int i = 0; i < n; i++)
		ctx_wg_free(w[i]);
	free(w);
	return pending;
}

struct run {
	long n;         /* the injection index of this run */
	int failed;     /* calls that reported ENOMEM */
};

/* A constructor's result: NULL must come with ENOMEM. */
static bool got(struct run *r, const char *what, const void *p)
{
	if (p)
		return true;
	if (errno != ENOMEM)
		note("n=%ld: %s returned NULL with errno %d (%s), not ENOMEM",
		     r->n, what, errno, strerror(errno));
	r->failed++;
	return false;
}

/* A call's error number: 0, or ENOMEM counted. */
static bool ok(struct run *r, const char *what, int e)
{
	if (!e)
		return true;
	if (e != ENOMEM)
		note("n=%ld: %s returned %d (%s), not ENOMEM", r->n, what, e,
		     strerror(e));
	r->failed++;
	return false;
}

static void state(struct run *r, const char *what, ctx_t *c, int err,
		  int cause)
{
	if (ctx_err(c) != err || ctx_cause(c) != cause)
		note("n=%ld: %s: err %d cause %d, expected %d and %d", r->n,
		     what, ctx_err(c), ctx_cause(c), err, cause);
}

/* A chain of every kind; the parent of a failed one is used instead. */
static void sc_tree(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *n[7] = { NULL };
	static int val;

	if (!got(r, "ctx_with_cancel(background)", p))
		return;
	if (ctx_done_fd(p) < 0) /* closed only when p is freed */
		note("ctx_done_fd: errno %d", errno);
	ctx_t *at = p;
	n[0] = ctx_with_timeout(at, HOUR);
	at = got(r, "ctx_with_timeout", n[0]) ? n[0] : at;
	n[1] = ctx_with_value(at, key, &val);
	at = got(r, "ctx_with_value", n[1]) ? n[1] : at;
	ctx_t *above_without = at;
	n[2] = ctx_without_cancel(at);
	at = got(r, "ctx_without_cancel", n[2]) ? n[2] : at;
	n[3] = ctx_with_deadline_cause(at, ctx_now() + HOUR, 77);
	at = got(r, "ctx_with_deadline_cause", n[3]) ? n[3] : at;
	n[4] = ctx_with_cancel(at);
	at = got(r, "ctx_with_cancel", n[4]) ? n[4] : at;
	n[5] = ctx_with_timeout_cause(p, HOUR, 5);
	got(r, "ctx_with_timeout_cause", n[5]);
	n[6] = ctx_with_deadline(above_without, ctx_now() - 1);
	if (got(r, "ctx_with_deadline(past)", n[6]))
		state(r, "past deadline", n[6], CTX_DEADLINE_EXCEEDED,
		      CTX_DEADLINE_EXCEEDED);

	if (n[1] && ctx_value(at, key) != &val)
		note("n=%ld: ctx_value lost along the chain", r->n);
	/* The parent works: a new child, and a cancel that reaches every
	 * node above the without-cancel, and none below. */
	ctx_t *extra = ctx_with_cancel(p);
	got(r, "ctx_with_cancel(p) after", extra);
	ctx_cancel_cause(p, 9);
	state(r, "p", p, CTX_CANCELED, 9);
	if (extra)
		state(r, "new child", extra, CTX_CANCELED, 9);
	for (int i = 0; i < 2; i++)
		if (n[i])
			state(r, "node above without_cancel", n[i],
			      CTX_CANCELED, 9);
	if (n[5])
		state(r, "sibling", n[5], CTX_CANCELED, 9);
	for (int i = 2; i < 5; i++) {
		if (!n[i])
			continue;
		if (n[2] && ctx_err(n[i]))
			note("n=%ld: node %d below without_cancel ended", r->n,
			     i);
		else if (!n[2]) /* without_cancel failed: under p directly */
			state(r, "node under the failed without_cancel", n[i],
			      CTX_CANCELED, 9);
	}
	ctx_release(extra);
	for (int i = 6; i >= 0; i--)
		ctx_release(n[i]);
	ctx_release(p);
}

static void sc_chan(struct run *r)
{
	ctx_chan_t *b = ctx_chan_new(sizeof(long), 4);
	ctx_chan_t *u = ctx_chan_new(sizeof(long), 0);
	long v = 5, w = 0;

	if (got(r, "ctx_chan_new(8, 4)", b)) {
		if (ctx_chan_send(ctx_background(), b, &v) ||
		    ctx_chan_recv(ctx_background(), b, &w) || w != 5)
			note("n=%ld: buffered channel unusable", r->n);
		ctx_chan_close(b);
		if (ctx_chan_recv(ctx_background(), b, &w) != EPIPE)
			note("n=%ld: closed channel: no EPIPE", r->n);
		ctx_chan_free(b);
	}
	if (got(r, "ctx_chan_new(8, 0)", u)) {
		ctx_chan_close(u);
		ctx_chan_free(u);
	}
}

static void sc_wg(struct run *r)
{
	ctx_wg_t *wg = ctx_wg_new();

	if (!got(r, "ctx_wg_new", wg))
		return;
	ctx_wg_add(wg, 2);
	ctx_wg_done(wg);
	ctx_wg_done(wg);
	if (ctx_wg_wait(ctx_background(), wg))
		note("n=%ld: ctx_wg_wait on zero", r->n);
	ctx_wg_free(wg);
}

static void *thread_fn(ctx_t *ctx, void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
	ctx_wait(ctx);
	return arg;
}

static void sc_thread(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	_Atomic int ran = 0;
	ctx_thread_t *t = NULL;
	void *res = NULL;

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	bool started = ok(r, "ctx_thread_create",
			  ctx_thread_create(&t, p, thread_fn, &ran));
	ctx_cancel(p);
	if (started && (ctx_thread_join(ctx_background(), t, &res) ||
			res != &ran))
		note("n=%ld: join", r->n);
	if (atomic_load(&ran) != (started ? 1 : 0))
		note("n=%ld: fn ran %d times, thread %s", r->n,
		     atomic_load(&ran), started ? "started" : "not started");
	ctx_release(p);
}

struct gj {
	_Atomic int runs;
	int ret;
};

static int group_fn(ctx_t *ctx, void *arg)
{
	struct gj *j = arg;

	(void)ctx;
	atomic_fetch_add(&j->runs, 1);
	return j->ret;
}

static void sc_group(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	struct gj jobs[3] = { { .ret = 0 }, { .ret = 7 }, { .ret = 0 } };
	bool started[3];

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	ctx_group_t *g = ctx_group_new(p);
	if (got(r, "ctx_group_new", g)) {
		ctx_group_set_limit(g, 2);
		for (int i = 0; i < 3; i++) {
			int e = ctx_group_go(g, group_fn, &jobs[i]);
			/* At the limit, go ends with the group's context,
			 * which job 1's error cancels (issue 13). */
			if (e && e == ctx_err(ctx_group_ctx(g)))
				started[i] = false;
			else
				started[i] = ok(r, "ctx_group_go", e);
		}
		int e = ctx_group_wait(g);
		if (e != (started[1] ? 7 : 0))
			note("n=%ld: ctx_group_wait: %d", r->n, e);
		for (int i = 0; i < 3; i++)
			if (atomic_load(&jobs[i].runs) != (started[i] ? 1 : 0))
				note("n=%ld: job %d ran %d times", r->n, i,
				     atomic_load(&jobs[i].runs));
		ctx_group_free(g);
	}
	ctx_t *c = ctx_with_cancel(p);
	got(r, "ctx_with_cancel(p) after", c);
	ctx_release(c);
	ctx_release(p);
}

static void sc_after(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	_Atomic int ran[2] = { 0, 0 };

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	ctx_after_t *a = ctx_after_func(p, set_flag, &ran[0]);
	got(r, "ctx_after_func", a);
	ctx_after_t *b = ctx_after_func(p, set_flag, &ran[1]);
	bool bok = got(r, "ctx_after_func", b);
	if (bok && !ctx_after_stop(b))
		note("n=%ld: ctx_after_stop of a live context's after-func",
		     r->n);
	ctx_cancel(p);
	if (a) {
		if (!wait_flag(&ran[0]))
			note("n=%ld: after-func did not run", r->n);
		if (ctx_after_stop(a))
			note("n=%ld: ctx_after_stop true after fn ran", r->n);
	}
	tu_sleep_ns(CTX_MSEC);
	if (atomic_load(&ran[1]))
		note("n=%ld: a stopped after-func ran", r->n);
	ctx_release(p);
}

static _Atomic int usr2_hits;

static void on_usr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr2_hits, 1);
}

static void sc_signals(struct run *r)
{
	sigset_t set;
	ctx_t *p = ctx_with_cancel(ctx_background());

	if (!got(r, "ctx_with_cancel", p))
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	int before = atomic_load(&usr2_hits);
	ctx_t *s = ctx_with_signals(p, &set);
	if (got(r, "ctx_with_signals", s)) {
		struct pollfd pf = { .fd = ctx_done_fd(s), .events = POLLIN };
		raise(SIGUSR2);
		/* Waiting must not allocate: a poll on the done fd. */
		if (pf.fd < 0 || poll(&pf, 1, (int)(tol() / CTX_MSEC)) != 1 ||
		    ctx_err(s) != CTX_CANCELED)
			note("n=%ld: the signal did not end its context",
			     r->n);
		if (atomic_load(&usr2_hits) != before)
			note("n=%ld: the signal reached the old handler",
			     r->n);
		ctx_release(s);
	}
	raise(SIGUSR2); /* the previous handling, whole */
	if (atomic_load(&usr2_hits) != before + 1)
		note("n=%ld: the old SIGUSR2 handler is gone", r->n);
	ctx_release(p);
}

static void sc_all(struct run *r)
{
	sc_tree(r);
	sc_chan(r);
	sc_wg(r);
	sc_thread(r);
	sc_group(r);
	sc_after(r);
	sc_signals(r);
}

static void (*const scenarios[])(struct run *) = {
	sc_tree, sc_chan, sc_wg, sc_thread, sc_group, sc_after, sc_signals,
	sc_all,
};

static const char *const scenario_names[] = {
	"tree", "chan", "wg", "thread", "group", "after", "signals", "all",
};

/*
 * Each allocation of the scenario fails in turn.  When the probe finds
 * the injection consumed, exactly one call must have reported ENOMEM;
 * when it finds it still pending, the scenario made fewer than n + 1
 * allocations and every call must have succeeded: the last run.
 */
START_TEST(test_enomem)
{
	struct sigaction sa = { .sa_handler = on_usr2 }, old;
	long n;

	notes_reset();
	warm_up();
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
	{ /* the signal dispatcher too is started once and stays */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		ctx_t *s = ctx_with_signals(ctx_background(), &set);
		ck_assert_ptr_nonnull(s);
		ctx_release(s);
	}
	int fds = tu_count_fds(), threads = tu_count_threads();

	for (n = 0; n < 1000; n++) {
		struct run r = { .n = n };
		ctx__fail_malloc_after(n);
		scenarios[_i](&r);
		bool consumed = !injection_pending(); /* also disarms */
		if (consumed && r.failed != 1)
			note("%s, n=%ld: the failing allocation made %d calls "
			     "report ENOMEM (expected 1)", scenario_names[_i],
			     n, r.failed);
		if (!consumed && r.failed)
			note("%s, n=%ld: %d calls reported ENOMEM with no "
			     "allocation failing", scenario_names[_i], n,
			     r.failed);
		int tn = tu_settle_threads(threads, 2 * CTX_SEC);
		int fn = tu_settle_fds(fds, 2 * CTX_SEC);
		if (tn != threads || fn != fds)
			note("%s, n=%ld: %d threads and %d descriptors after, "
			     "%d and %d before: something half built or never "
			     "freed (a context that is never freed keeps its "
			     "done fd)", scenario_names[_i], n, tn, fn,
			     threads, fds);
		if (!consumed)
			break;
	}
	ck_assert_int_eq(sigaction(SIGUSR2, &old, NULL), 0);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "faults: enomem %s: %ld allocations, each "
			"failed in turn\n", scenario_names[_i], n);
	assert_no_notes();
	ck_assert_msg(n > 0 && n < 1000, "%s: %ld runs", scenario_names[_i], n);
}
END_TEST

/* ======================================================================
 * Signal storms
 * ==================================================================== */

enum {
	W_READ_DL, W_READ_DATA, W_RECV_DL, W_WRITE_DL, W_SLEEP, W_SLEEP_CANCEL,
	W_WAIT_DL, W_WAIT_CANCEL, W_POLL, W_POLL_DATA, W_CHAN_DL, W_CHAN_DATA,
	W_WG_DL, W_WG_DONE, W_JOIN_DL, W_JOIN_DONE, W_GROUP, W_COUNT
};

static const char *const w_names[W_COUNT] = {
	"ctx_read (deadline)", "ctx_read (data)", "ctx_recv (deadline)",
	"ctx_write (full pipe, deadline)", "ctx_sleep", "ctx_sleep (cancel)",
	"ctx_wait (deadline)", "ctx_wait (cancel)", "ctx_poll (timeout)",
	"ctx_poll (data)", "ctx_chan_recv (deadline)",
	"ctx_chan_recv (sender)", "ctx_wg_wait (deadline)",
	"ctx_wg_wait (done)", "ctx_thread_join (deadline)",
	"ctx_thread_join (exit)", "ctx_group_wait",
};

static _Atomic long storm_hits[W_COUNT];
static __thread int storm_idx = -1;

static void on_storm(int sig)
{
	int e = errno;

	(void)sig;
	if (storm_idx >= 0)
		atomic_fetch_add(&storm_hits[storm_idx], 1);
	errno = e;
}

struct stormer {
	int kind;
	pthread_t th;
	_Atomic bool rounds_done;
	_Atomic bool *release;
};

/* What happens at STORM_EVENT_MS, from an unsignalled thread; `at` is
 * when it began, the earliest a wait it ends may end. */
struct event {
	pthread_t th;
	int kind;
	ctx_t *c;
	int fd;
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	_Atomic int64_t at;
};

static void *event_main(void *arg)
{
	struct event *ev = arg;
	long v = 99;

	tu_sleep_ns(STORM_EVENT_MS * CTX_MSEC);
	atomic_store(&ev->at, ctx_now());
	switch (ev->kind) {
	case W_READ_DATA:
	case W_POLL_DATA:
		if (write(ev->fd, "storm", 5) != 5)
			note("event: write: %s", strerror(errno));
		break;
	case W_CHAN_DATA: {
		ctx_t *c = ctx_with_timeout(ctx_background(), tol());
		int e = ctx_chan_send(c, ev->ch, &v);
		if (e)
			note("event: ctx_chan_send: %d", e);
		ctx_release(c);
		break;
	}
	case W_WG_DONE:
		ctx_wg_done(ev->wg);
		break;
	default:
		ctx_cancel(ev->c);
		break;
	}
	return NULL;
}

static void event_start(struct event *ev, sigset_t *all)
{
	sigset_t old;

	/* Started with every signal blocked: the storm is for the
	 * waiters only. */
	pthread_sigmask(SIG_SETMASK, all, &old);
	if (pthread_create(&ev->th, NULL, event_main, ev))
		note("pthread_create: %s", strerror(errno));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A thread, or a group's job, that ends after STORM_EVENT_MS and notes
 * when its work was over. */
static void *finisher(ctx_t *ctx, void *arg)
{
	(void)ctx;
	tu_sleep_ns(STORM_EVENT_MS * CTX_MSEC);
	atomic_store((_Atomic int64_t *)arg, ctx_now());
	return arg;
}

static int group_job(ctx_t *ctx, void *arg)
{
	int e = ctx_sleep(ctx, STORM_EVENT_MS * CTX_MSEC);
	atomic_store((_Atomic int64_t *)arg, ctx_now());
	return e;
}

/* One round of a waiter's wait: the exact result, ending no sooner than
 * the deadline or event that ends it and no later than that plus tol. */
static void storm_round(int kind, sigset_t *all)
{
	const int64_t dl = STORM_DL_MS * CTX_MSEC;
	struct event ev = { .kind = kind, .fd = -1 };
	bool has_event = false;
	int p[2] = { -1, -1 };
	char buf[8] = "stormed";
	long rc = 0, want_rc = -1, v = 0;
	int err = 0, want_err = CTX_DEADLINE_EXCEEDED;
	_Atomic int64_t fin = 0, *from_at = NULL;
	_Atomic int dummy = 0;
	int64_t from = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), dl);
	ctx_t *cc = ctx_with_cancel(ctx_background());
	ctx_thread_t *t = NULL;
	ctx_group_t *g = NULL;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 || !c || !cc) {
		note("storm setup: %s", strerror(errno));
		return;
	}
	ctx_deadline(c, &from); /* for the kinds that end at c's deadline */
	fcntl(p[0], F_SETFL, 0); /* a blocking reader: EINTR is possible */
	ev.c = cc;
	ev.fd = p[1];
	ev.ch = ctx_chan_new(sizeof(long), 0);
	ev.wg = ctx_wg_new();
	if (!ev.ch || !ev.wg) {
		note("storm setup: no channel or wait group");
		return;
	}
	ctx_wg_add(ev.wg, 1);
	switch (kind) {
	case W_READ_DATA:
	case W_POLL_DATA:
	case W_CHAN_DATA:
	case W_WG_DONE:
	case W_SLEEP_CANCEL:
	case W_WAIT_CANCEL:
		has_event = true;
		from_at = &ev.at;
		break;
	case W_WRITE_DL:
		while (write(p[1], buf, sizeof(buf)) > 0)
			;
		fcntl(p[1], F_SETFL, 0);
		break;
	case W_JOIN_DL:
		if (ctx_thread_create(&t, cc, thread_fn, &dummy))
			note("ctx_thread_create");
		break;
	case W_JOIN_DONE:
		if (ctx_thread_create(&t, ctx_background(), finisher, &fin))
			note("ctx_thread_create");
		from_at = &fin;
		break;
	case W_GROUP:
		g = ctx_group_new(ctx_background());
		if (!g || ctx_group_go(g, group_job, &fin))
			note("group setup");
		from_at = &fin;
		break;
	}
	if (has_event)
		event_start(&ev, all);
	struct pollfd pf = { .fd = p[0], .events = POLLIN };
	int64_t t0 = ctx_now();
	if (kind == W_SLEEP || kind == W_POLL)
		from = t0 + dl;
	switch (kind) {
	case W_READ_DL:
		rc = ctx_read(c, p[0], buf, sizeof(buf));
		err = errno;
		break;
	case W_READ_DATA:
		rc = ctx_read(cc, p[0], buf, sizeof(buf));
		err = errno;
		want_rc = 5;
		break;
	case W_RECV_DL: {
		int s[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0) {
			note("socketpair: %s", strerror(errno));
			break;
		}
		rc = ctx_recv(c, s[0], buf, sizeof(buf), 0);
		err = errno;
		close(s[0]);
		close(s[1]);
		break;
	}
	case W_WRITE_DL:
		rc = ctx_write(c, p[1], buf, sizeof(buf));
		err = errno;
		break;
	case W_SLEEP:
		err = ctx_sleep(ctx_background(), dl);
		rc = err ? -1 : 0;
		want_rc = 0;
		break;
	case W_SLEEP_CANCEL:
		err = ctx_sleep(cc, HOUR);
		rc = err ? -1 : 0;
		want_err = CTX_CANCELED;
		break;
	case W_WAIT_DL:
		err = ctx_wait(c);
		rc = -1;
		break;
	case W_WAIT_CANCEL:
		err = ctx_wait(cc);
		rc = -1;
		want_err = CTX_CANCELED;
		break;
	case W_POLL:
		rc = ctx_poll(ctx_background(), &pf, 1, dl);
		err = errno;
		want_rc = 0;
		break;
	case W_POLL_DATA:
		rc = ctx_poll(cc, &pf, 1, -1);
		err = errno;
		want_rc = 1;
		break;
	case W_CHAN_DL:
		err = ctx_chan_recv(c, ev.ch, &v);
		rc = err ? -1 : 0;
		break;
	case W_CHAN_DATA:
		err = ctx_chan_recv(cc, ev.ch, &v);
		rc = err ? -1 : v;
		want_rc = 99;
		break;
	case W_WG_DL:
		err = ctx_wg_wait(c, ev.wg);
		rc = err ? -1 : 0;
		break;
	case W_WG_DONE:
		err = ctx_wg_wait(cc, ev.wg);
		rc = err ? -1 : 0;
		want_rc = 0;
		break;
	case W_JOIN_DL:
		err = ctx_thread_join(c, t, NULL);
		rc = err ? -1 : 0;
		break;
	case W_JOIN_DONE:
		err = ctx_thread_join(cc, t, NULL);
		rc = err ? -1 : 0;
		want_rc = 0;
		if (!err)
			t = NULL;
		break;
	default:
		err = g ? ctx_group_wait(g) : EINVAL;
		rc = err ? -1 : 0;
		want_rc = 0;
		break;
	}
	int64_t end = ctx_now();
	if (has_event)
		pthread_join(ev.th, NULL);
	if (from_at)
		from = atomic_load(from_at);
	if (rc != want_rc || (rc == -1 && err != want_err))
		note("%s under a signal storm: returned %ld, error %d (%s); "
		     "expected %ld%s%s", w_names[kind], rc, err, strerror(err),
		     want_rc, want_rc == -1 ? ", " : "",
		     want_rc == -1 ? ctx_strerror(want_err) : "");
	else if (!from || end < from)
		note("%s under a signal storm: ended %.3f ms before what "
		     "ends it", w_names[kind],
		     from ? (double)(from - end) / CTX_MSEC : -1.0);
	else if (end > from + tol())
		note("%s under a signal storm: ended %.1f ms after what ends "
		     "it", w_names[kind], (double)(end - from) / CTX_MSEC);
	if (t) {
		ctx_cancel(cc);
		if (ctx_thread_join(ctx_background(), t, NULL))
			note("join after the round");
	}
	ctx_group_free(g);
	if (kind != W_WG_DONE)
		ctx_wg_done(ev.wg);
	ctx_wg_free(ev.wg);
	ctx_chan_free(ev.ch);
	ctx_release(c);
	ctx_release(cc);
	close(p[0]);
	close(p[1]);
}

static sigset_t all_signals;

static void *stormer_main(void *arg)
{
	struct stormer *s = arg;

	storm_idx = s->kind;
	for (int i = 0; i < STORM_ROUNDS; i++)
		storm_round(s->kind, &all_signals);
	atomic_store(&s->rounds_done, true);
	while (!atomic_load(s->release))
		tu_sleep_ns(CTX_MSEC); /* EINTR: it sleeps on */
	return NULL;
}

START_TEST(test_signal_storm)
{
	struct sigaction sa = { .sa_handler = on_storm }, old; /* no SA_RESTART */
	struct stormer ss[W_COUNT];
	_Atomic bool release = false;
	long sent = 0;

	notes_reset();
	sigfillset(&all_signals);
	for (int i = 0; i < W_COUNT; i++)
		atomic_store(&storm_hits[i], 0);
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	for (int i = 0; i < W_COUNT; i++) {
		ss[i] = (struct stormer){ .kind = i, .release = &release };
		ck_assert_int_eq(pthread_create(&ss[i].th, NULL, stormer_main,
						&ss[i]), 0);
	}
	/* The storm: every waiter, every ~100 us, until all are done. */
	for (bool done = false; !done;) {
		done = true;
		for (int i = 0; i < W_COUNT; i++) {
			done &= atomic_load(&ss[i].rounds_done);
			if (pthread_kill(ss[i].th, SIGUSR1) == 0)
				sent++;
		}
		tu_sleep_ns(STORM_PERIOD_US * CTX_USEC);
	}
	atomic_store(&release, true);
	for (int i = 0; i < W_COUNT; i++)
		pthread_join(ss[i].th, NULL);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);
	assert_no_notes();
	long min = tu_valgrind() ? 1 : 10;
	if (getenv("STRESS_VERBOSE"))
		for (int i = 0; i < W_COUNT; i++)
			fprintf(stderr, "faults: storm: %s: %ld signals handled\n",
				w_names[i], atomic_load(&storm_hits[i]));
	for (int i = 0; i < W_COUNT; i++)
		ck_assert_msg(atomic_load(&storm_hits[i]) >= min,
			      "%s: the handler ran %ld times (of %ld sent)",
			      w_names[i], atomic_load(&storm_hits[i]), sent);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_faults(void)
{
	Suite *s = suite_create("faults");
	TCase *tc;

	tc = tu_tcase(s, "emfile", 60);
	tcase_add_loop_test(tc, test_emfile_new_thread, 0, 3);
	tcase_add_test(tc, test_emfile_done_fd);

	tc = tu_tcase(s, "enomem", 120);
	tcase_add_loop_test(tc, test_enomem, 0,
			    (int)(sizeof(scenarios) / sizeof(scenarios[0])));

	tc = tu_tcase(s, "signals", 60);
	tcase_add_test(tc, test_signal_storm);

	return s;
}
