/*
 * The manual clock (ctx_clock_manual, ctx_clock_advance,
 * ctx_clock_wait_idle, ctx_clock_auto): everything libctx times follows
 * it, waiters wake when an advance passes their time, ctx_clock_wait_idle
 * returns once every known thread is durably blocked, and the automatic
 * mode jumps from one due time to the next.
 *
 * Each test turns the manual clock on (Check runs it in a process of its
 * own) and a teardown turns it off again, for CK_FORK=no.  Real time is
 * read from CLOCK_MONOTONIC (tu_real_ns): ctx_now is the manual clock here.
 * What a test asserts about time is exact, in manual nanoseconds; the
 * only real-time figures are upper bounds far above the work (hours of
 * manual time in under a second) and pauses that show something did NOT
 * happen.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hooks.h"
#include "suites.h"
#include "testutil.h"

#define HOUR (3600 * CTX_SEC)

static void manual(void)
{
	ck_assert_int_eq(ctx_clock_manual(), 0);
}


/* ---- the clock itself ------------------------------------------------- */

START_TEST(test_manual_stands_still)
{
	int64_t r0 = ctx_now();
	manual();
	int64_t t0 = ctx_now();
	ck_assert_int_ge(t0, r0); /* starts at the real time: no step back */
	ck_assert_int_eq(ctx_clock_manual(), EBUSY);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(ctx_now(), t0);
	ctx_clock_advance(5 * CTX_SEC);
	ck_assert_int_eq(ctx_now(), t0 + 5 * CTX_SEC);
	ctx_clock_advance(-1); /* backwards: nothing */
	ctx_clock_advance(0);
	ck_assert_int_eq(ctx_now(), t0 + 5 * CTX_SEC);
	ctx_clock_advance(INT64_MAX); /* saturates */
	ck_assert_int_eq(ctx_now(), INT64_MAX);
}
END_TEST

/* With the real clock the calls change nothing. */
START_TEST(test_real_clock_untouched)
{
	int64_t t0 = ctx_now();
	ctx_clock_advance(HOUR);
	ck_assert_int_lt(ctx_now() - t0, HOUR);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	ck_assert_int_eq(ctx_clock_wait_idle(c), CTX_CANCELED);
	ctx_release(c);
	ck_assert_int_eq(ctx_clock_wait_idle(NULL), EINVAL);
	ctx_clock_auto(true);
	ck_assert_int_eq(ctx_sleep(ctx_background(), 20 * CTX_MSEC), 0);
	ck_assert_int_ge(ctx_now() - t0, 20 * CTX_MSEC);
	ctx_clock_auto(false);
}
END_TEST

/* A deadline is a number on the clock: advancing past it ends the
 * context, and its done descriptor is readable when the advance returns,
 * with no thread in the library. */
START_TEST(test_deadline_and_done_fd)
{
	manual();
	ctx_t *c = ctx_with_timeout(ctx_background(), 30 * CTX_SEC);
	int fd = ctx_done_fd(c);
	ck_assert_int_ge(fd, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ctx_clock_advance(30 * CTX_SEC - 1);
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_clock_advance(1);
	ck_assert_int_eq(poll(&p, 1, 0), 1);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}
END_TEST

/* The tests' way back to the real clock (the teardown of each test here,
 * for CK_FORK=no) leaves nothing on the manual one: a deadline the timer
 * holds is then kept in real time. */
START_TEST(test_reset_to_real)
{
	manual();
	ctx_t *c = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	struct pollfd p = { .fd = ctx_done_fd(c), .events = POLLIN };
	ck_assert_int_ge(p.fd, 0);
	tu_sleep_ns(100 * CTX_MSEC); /* the timer sleeps till signalled */
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ctx__clock_reset();
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}
END_TEST

/* ---- waiters wake when an advance passes their time ----------------- */

struct sleeper {
	int64_t ns;
	int rc;
	int64_t woke; /* ctx_now() when the sleep returned */
};

static void *sleep_main(ctx_t *ctx, void *arg)
{
	struct sleeper *s = arg;
	s->rc = ctx_sleep(ctx, s->ns);
	s->woke = ctx_now();
	return NULL;
}

START_TEST(test_advance_wakes_sleeper)
{
	manual();
	int64_t t0 = ctx_now();
	struct sleeper s = { .ns = 10 * CTX_SEC, .rc = -1 };
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), sleep_main,
					   &s), 0);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_clock_advance(10 * CTX_SEC - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	tu_sleep_ns(20 * CTX_MSEC); /* real time: it must still sleep */
	ck_assert_int_eq(s.rc, -1);
	ctx_clock_advance(1);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ck_assert_int_eq(s.rc, 0);
	ck_assert_int_eq(s.woke, t0 + 10 * CTX_SEC);
}
END_TEST

/* A context's deadline ends every kind of durable wait under it. */
struct waiter {
	int kind;
	ctx_t *ctx;
	int rc;
};

enum { W_WAIT, W_COND, W_CHAN, W_SEM, W_SELECT, W_KINDS };

static ctx_cond_t cond = CTX_COND_INIT;
static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;

static int wait_kind(struct waiter *w, ctx_chan_t *ch, ctx_sem_t *sem)
{
	int v;
	switch (w->kind) {
	case W_WAIT:
		return ctx_wait(w->ctx);
	case W_COND:
		pthread_mutex_lock(&cond_mu);
		v = ctx_cond_wait(w->ctx, &cond, &cond_mu);
		pthread_mutex_unlock(&cond_mu);
		return v;
	case W_CHAN:
		return ctx_chan_recv(w->ctx, ch, &v);
	case W_SEM:
		return ctx_sem_acquire(w->ctx, sem, 1);
	default: {
		struct ctx_case c = { .kind = CTX_CASE_RECV, .ch = ch,
				      .elem = &v };
		return ctx_select(w->ctx, &c, 1, -1) < 0 ? errno : 0;
	}
	}
}

static void *waiter_main(ctx_t *ctx, void *arg)
{
	(void)ctx;
	struct waiter *w = arg;
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 0);
	ctx_sem_t *sem = ctx_sem_new(1);
	ctx_sem_try_acquire(sem, 1); /* all taken: the next acquire waits */
	w->rc = wait_kind(w, ch, sem);
	ctx_chan_free(ch);
	ctx_sem_free(sem);
	return NULL;
}

START_TEST(test_deadline_ends_waits)
{
	manual();
	struct waiter w = { .kind = _i, .rc = -1 };
	w.ctx = ctx_with_timeout(ctx_background(), HOUR);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), waiter_main,
					   &w), 0);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_clock_advance(HOUR - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(w.rc, -1);
	ctx_clock_advance(1);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ck_assert_int_eq(w.rc, CTX_DEADLINE_EXCEEDED);
	ctx_release(w.ctx);
}
END_TEST

/* The calls' own timeouts: a timed condition wait and a select. */
struct timed {
	int rc;
	int64_t woke;
};

static void *cond_until_main(ctx_t *ctx, void *arg)
{
	struct timed *t = arg;
	pthread_mutex_lock(&cond_mu);
	t->rc = ctx_cond_wait_until(ctx, &cond, &cond_mu,
				    ctx_now() + 5 * CTX_SEC);
	pthread_mutex_unlock(&cond_mu);
	t->woke = ctx_now();
	return NULL;
}

static void *select_timeout_main(ctx_t *ctx, void *arg)
{
	struct timed *t = arg;
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 0);
	int v;
	struct ctx_case c = { .kind = CTX_CASE_RECV, .ch = ch, .elem = &v };
	t->rc = ctx_select(ctx, &c, 1, 5 * CTX_SEC) < 0 ? errno : 0;
	t->woke = ctx_now();
	ctx_chan_free(ch);
	return NULL;
}

START_TEST(test_call_timeouts)
{
	manual();
	int64_t t0 = ctx_now();
	struct timed a = { .rc = -1 }, b = { .rc = -1 };
	ctx_thread_t *ta, *tb;
	ck_assert_int_eq(ctx_thread_create(&ta, ctx_background(),
					   cond_until_main, &a), 0);
	ck_assert_int_eq(ctx_thread_create(&tb, ctx_background(),
					   select_timeout_main, &b), 0);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_clock_advance(4 * CTX_SEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(a.rc, -1);
	ck_assert_int_eq(b.rc, -1);
	ctx_clock_advance(CTX_SEC);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), ta, NULL), 0);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), tb, NULL), 0);
	ck_assert_int_eq(a.rc, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(b.rc, EAGAIN);
	ck_assert_int_eq(a.woke, t0 + 5 * CTX_SEC);
	ck_assert_int_eq(b.woke, t0 + 5 * CTX_SEC);
}
END_TEST

/* poll, ppoll and epoll_wait on a descriptor that never turns ready:
 * their timeouts are on the manual clock.  A thread waiting on a
 * descriptor is not durably blocked, so the test cannot know when the
 * call has begun: the thread reads the clock just before it, and the
 * test advances in steps of a second until the call returns.  The call
 * cannot return before its 3 s have passed on the manual clock, however
 * long the real wait; it returns at the step that passes them (one more
 * if an advance came between the thread's reading and the call's). */
struct poller {
	int kind; /* 0 poll, 1 ppoll, 2 epoll_wait */
	int fd;
	_Atomic int rc;
	_Atomic int64_t start; /* ctx_now() just before the call; 0: not yet */
	int64_t woke;
};

static int poll_kind(ctx_t *ctx, struct poller *p)
{
	struct pollfd pf = { .fd = p->fd, .events = POLLIN };
	if (p->kind == 0)
		return ctx_poll(ctx, &pf, 1, 3 * CTX_SEC);
	if (p->kind == 1)
		return ctx_ppoll(ctx, &pf, 1, 3 * CTX_SEC, NULL);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN }, out;
	int rc = epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
	if (rc == 0)
		rc = ctx_epoll_wait(ctx, ep, &out, 1, 3 * CTX_SEC);
	close(ep);
	return rc;
}

static void *poller_main(ctx_t *ctx, void *arg)
{
	struct poller *p = arg;
	atomic_store(&p->start, ctx_now());
	int rc = poll_kind(ctx, p);
	p->woke = ctx_now();
	atomic_store(&p->rc, rc);
	return NULL;
}

START_TEST(test_poll_timeouts)
{
	manual();
	int pp[2];
	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	struct poller p = { .kind = _i, .fd = pp[0] };
	atomic_init(&p.rc, -2);
	atomic_init(&p.start, 0);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), poller_main,
					   &p), 0);
	int64_t r0 = tu_real_ns();
	while (atomic_load(&p.start) == 0)
		tu_sleep_ns(CTX_MSEC);
	tu_sleep_ns(20 * CTX_MSEC); /* real time alone ends nothing */
	ck_assert_int_eq(atomic_load(&p.rc), -2);
	while (atomic_load(&p.rc) == -2 && tu_real_ns() - r0 < 20 * CTX_SEC) {
		ctx_clock_advance(CTX_SEC);
		/* Past its time: give it long to return before moving on. */
		bool due = ctx_now() >= atomic_load(&p.start) + 3 * CTX_SEC;
		int64_t r1 = tu_real_ns(), pause = due ? 2 * CTX_SEC : 5 * CTX_MSEC;
		while (atomic_load(&p.rc) == -2 && tu_real_ns() - r1 < pause)
			tu_sleep_ns(CTX_MSEC);
	}
	ck_assert_int_eq(atomic_load(&p.rc), 0);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	int64_t took = p.woke - atomic_load(&p.start);
	ck_assert_int_ge(took, 3 * CTX_SEC);
	ck_assert_int_le(took, 5 * CTX_SEC);
	close(pp[0]);
	close(pp[1]);
}
END_TEST

/* ---- what runs on the library's threads ------------------------------ */

static void set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

/* An after-func on a deadline runs once an advance passes it, and
 * ctx_clock_wait_idle waits until it has. */
START_TEST(test_after_func)
{
	manual();
	_Atomic int ran = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	ctx_after_t *a = ctx_after_func(c, set_flag, &ran);
	ck_assert_ptr_nonnull(a);
	ctx_clock_advance(59 * CTX_SEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&ran), 0);
	ctx_clock_advance(CTX_SEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
}
END_TEST

/* An idle context: ended by the timer once idle_ns of manual time pass
 * without a touch; a touch moves the end. */
START_TEST(test_idle_context)
{
	manual();
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_idle(ctx_background(), 30 * CTX_SEC);
	ctx_clock_advance(20 * CTX_SEC);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_touch(c);
	ctx_clock_advance(29 * CTX_SEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(ctx_err(c), 0);
	ctx_clock_advance(CTX_SEC);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	int64_t d;
	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, t0 + 50 * CTX_SEC);
	ctx_release(c);
}
END_TEST

/* A graceful stop's second phase and a moved deadline on manual time: a
 * grace of 30 s after its parent's end, and a 1 s timeout moved to 60 s
 * by ctx_set_deadline. */
START_TEST(test_grace_and_set_deadline)
{
	manual();
	ctx_t *stop = ctx_with_cancel(ctx_background());
	ctx_t *g = ctx_with_grace(stop, 30 * CTX_SEC);
	ctx_t *d = ctx_with_timeout(ctx_background(), CTX_SEC);
	ck_assert_int_eq(ctx_set_deadline(d, ctx_now() + 60 * CTX_SEC), 0);
	ctx_cancel(stop);
	ctx_clock_advance(29 * CTX_SEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(ctx_err(g), 0);
	ck_assert_int_eq(ctx_err(d), 0);
	ctx_clock_advance(CTX_SEC);
	ck_assert_int_eq(ctx_err(g), CTX_CANCELED);
	ck_assert_int_eq(ctx_err(d), 0);
	ctx_clock_advance(30 * CTX_SEC);
	ck_assert_int_eq(ctx_err(d), CTX_DEADLINE_EXCEEDED);
	ctx_release(d);
	ctx_release(g);
	ctx_release(stop);
}
END_TEST

/* A child process's kill delay: SIGKILL only once wait_delay of manual
 * time has passed after the cancel signal (an hour: on the real clock the
 * test would run out of time). */
START_TEST(test_wait_delay)
{
	manual();
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr attr = { .cancel_signal = SIGTERM,
				      .wait_delay = HOUR };
	char *argv[] = { "sh", "-c", "trap '' TERM; echo up; "
		"while :; do sleep 1; done", NULL };
	attr.stdio[1] = CTX_STDIO_PIPE;
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh", argv, &attr), 0);
	char buf[8];
	ck_assert_int_eq(ctx_read(ctx_background(), ctx_proc_stdio(p, 1), buf,
				  3), 3); /* its trap is set */
	ctx_cancel(c);
	/* The cancel queued the after-func that sends TERM and sets the
	 * kill delay going: wait until it has, then let real time show
	 * that TERM is ignored. */
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	tu_sleep_ns(50 * CTX_MSEC);
	ck_assert_int_eq(kill(ctx_proc_pid(p), 0), 0);
	ctx_clock_advance(HOUR - 1);
	tu_sleep_ns(50 * CTX_MSEC);
	ck_assert_int_eq(kill(ctx_proc_pid(p), 0), 0);
	ctx_clock_advance(1);
	int status;
	ck_assert_int_eq(ctx_proc_wait(p, &status), CTX_CANCELED);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* ---- known threads and durable blocks -------------------------------- */

struct spinner {
	_Atomic int go, passed;
};

static void *spin_then_sleep(ctx_t *ctx, void *arg)
{
	struct spinner *s = arg;
	while (!atomic_load(&s->go))
		tu_sleep_ns(CTX_MSEC); /* not in libctx: at work */
	atomic_store(&s->passed, 1);
	ctx_sleep(ctx, HOUR);
	return NULL;
}

static void *release_spinner(void *arg)
{
	tu_sleep_ns(100 * CTX_MSEC);
	atomic_store(&((struct spinner *)arg)->go, 1);
	return NULL;
}

/* ctx_clock_wait_idle waits for a known thread that is outside libctx,
 * and returns once it sleeps. */
START_TEST(test_wait_idle_waits_for_work)
{
	manual();
	struct spinner s = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_thread_t *t;
	pthread_t other; /* not known: started by the test, not libctx */
	ck_assert_int_eq(ctx_thread_create(&t, c, spin_then_sleep, &s), 0);
	ck_assert_int_eq(pthread_create(&other, NULL, release_spinner, &s), 0);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(atomic_load(&s.passed), 1);
	ctx_cancel(c);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	pthread_join(other, NULL);
	ctx_release(c);
}
END_TEST

static void *read_main(ctx_t *ctx, void *arg)
{
	char b;
	return (void *)(intptr_t)ctx_read(ctx, *(int *)arg, &b, 1);
}

/* A known thread waiting on a descriptor is not durably blocked: the
 * idle wait goes on until its own context ends it (cancelled here by a
 * thread that is no part of the test's time). */
START_TEST(test_descriptor_not_durable)
{
	manual();
	int pp[2];
	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), read_main,
					   &pp[0]), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	tu_must_cancel_after(&k, c, 100 * CTX_MSEC);
	int64_t r0 = tu_real_ns();
	ck_assert_int_eq(ctx_clock_wait_idle(c), CTX_CANCELED);
	ck_assert_int_ge(tu_real_ns() - r0, 90 * CTX_MSEC);
	tu_canceller_join(&k);
	ck_assert_int_eq(write(pp[1], "x", 1), 1);
	void *rc;
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &rc), 0);
	ck_assert_int_eq((intptr_t)rc, 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_release(c);
	close(pp[0]);
	close(pp[1]);
}
END_TEST

/* A back-off pause paces looks at something outside the process in real
 * time, and is not durably blocked; the call's deadline is manual. */
struct locker {
	int fd;
	ctx_t *ctx;
	_Atomic int rc, err;
};

static void *unlock_later(void *arg)
{
	tu_sleep_ns(100 * CTX_MSEC);
	flock(*(int *)arg, LOCK_UN);
	return NULL;
}

static void *flock_main(ctx_t *ctx, void *arg)
{
	(void)ctx;
	struct locker *l = arg;
	int rc = ctx_flock(l->ctx, l->fd, LOCK_EX);
	atomic_store(&l->err, errno);
	atomic_store(&l->rc, rc);
	return NULL;
}

START_TEST(test_backoff_deadline)
{
	manual();
	char path[] = "/tmp/ctx-clock-lock-XXXXXX";
	int a = mkostemp(path, O_CLOEXEC), b = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	unlink(path);
	/* Nothing advances the clock: the lock is looked at again in real
	 * time, and its holder letting go lets the call through. */
	ck_assert_int_eq(flock(a, LOCK_EX), 0);
	pthread_t u;
	ck_assert_int_eq(pthread_create(&u, NULL, unlock_later, &a), 0);
	ck_assert_int_eq(ctx_flock(ctx_background(), b, LOCK_EX), 0);
	pthread_join(u, NULL);
	ck_assert_int_eq(flock(b, LOCK_UN), 0);
	/* With the lock held, the manual deadline ends it, and nothing
	 * else: real time passing does not. */
	ck_assert_int_eq(flock(a, LOCK_EX), 0);
	struct locker l = { .fd = b };
	atomic_init(&l.rc, -2);
	l.ctx = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), flock_main,
					   &l), 0);
	tu_sleep_ns(50 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&l.rc), -2);
	ctx_clock_advance(5 * CTX_SEC);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ck_assert_int_eq(atomic_load(&l.rc), -1);
	ck_assert_int_eq(atomic_load(&l.err), CTX_DEADLINE_EXCEEDED);
	ctx_release(l.ctx);
	close(a);
	close(b);
}
END_TEST

/* ---- the automatic jump ----------------------------------------------- */

/* The "done when" of the issue: a 1-hour sleep three times over takes
 * three hours of manual time and well under a second of real time. */
START_TEST(test_auto_hour_sleeps)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now(), r0 = tu_real_ns();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(ctx_sleep(ctx_background(), HOUR), 0);
	ck_assert_int_eq(ctx_now() - t0, 3 * HOUR);
	ck_assert_int_lt(tu_real_ns() - r0, CTX_SEC);
}
END_TEST

/* Threads sleeping different times wake in order, each at its time. */
START_TEST(test_auto_order)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now(), r0 = tu_real_ns();
	struct sleeper s[4];
	ctx_thread_t *t[4];
	for (int i = 0; i < 4; i++) {
		s[i] = (struct sleeper){ .ns = (4 - i) * HOUR, .rc = -1 };
		ck_assert_int_eq(ctx_thread_create(&t[i], ctx_background(),
						   sleep_main, &s[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(ctx_thread_join(ctx_background(), t[i], NULL),
				 0);
		ck_assert_int_eq(s[i].rc, 0);
		ck_assert_int_eq(s[i].woke, t0 + (4 - i) * HOUR);
	}
	ck_assert_int_eq(ctx_now() - t0, 4 * HOUR);
	ck_assert_int_lt(tu_real_ns() - r0, CTX_SEC);
}
END_TEST

/* A ticker on ctx_sleep_until: a day of 1-second ticks. */
START_TEST(test_auto_ticker)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now(), next = t0, r0 = tu_real_ns();
	for (int i = 0; i < 86400; i++) {
		next += CTX_SEC;
		ck_assert_int_eq(ctx_sleep_until(ctx_background(), next), 0);
		ck_assert_int_eq(ctx_now(), next);
	}
	ck_assert_int_lt(tu_real_ns() - r0, 20 * CTX_SEC);
}
END_TEST

/* An idle timeout as a server has one: a client that sends every 10 s
 * for a minute and then goes quiet is cut 30 s after its last message;
 * the whole exchange, 90 s of manual time, takes no real time to speak
 * of. */
struct client {
	ctx_chan_t *ch;
	int sends;
};

static void *client_main(ctx_t *ctx, void *arg)
{
	struct client *c = arg;
	for (int i = 0; i < c->sends; i++) {
		ctx_sleep(ctx, 10 * CTX_SEC);
		ctx_chan_send(ctx, c->ch, &i);
	}
	return NULL;
}

START_TEST(test_auto_idle_timeout)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now(), r0 = tu_real_ns();
	struct client cl = { .ch = ctx_chan_new(sizeof(int), 0), .sends = 6 };
	ctx_t *idle = ctx_with_idle(ctx_background(), 30 * CTX_SEC);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, idle, client_main, &cl), 0);
	int got = 0, v;
	while (ctx_chan_recv(idle, cl.ch, &v) == 0) {
		ck_assert_int_eq(v, got++);
		ctx_touch(idle);
	}
	ck_assert_int_eq(got, 6);
	ck_assert_int_eq(ctx_err(idle), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_now() - t0, 90 * CTX_SEC);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ck_assert_int_lt(tu_real_ns() - r0, CTX_SEC);
	ctx_release(idle);
	ctx_chan_free(cl.ch);
}
END_TEST

/* Wait groups and groups: the work of known threads, joined. */
static void wg_sleep(ctx_t *ctx, void *arg)
{
	(void)arg;
	ctx_sleep(ctx, 2 * HOUR);
}

START_TEST(test_auto_wait_group)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now();
	ctx_wg_t *wg = ctx_wg_new();
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(ctx_wg_go(wg, ctx_background(), wg_sleep,
					   NULL), 0);
	ck_assert_int_eq(ctx_wg_wait(ctx_background(), wg), 0);
	ck_assert_int_eq(ctx_now() - t0, 2 * HOUR);
	ctx_wg_free(wg);
}
END_TEST

/* A known thread waiting on a descriptor holds the clock: the main
 * thread's hour-long sleep does not end until the byte that thread waits
 * for has come, in real time, from a thread outside the test's time. */
struct late_writer {
	int fd;
	_Atomic int64_t wrote; /* tu_real_ns() of the write */
};

static void *write_later(void *arg)
{
	struct late_writer *w = arg;
	tu_sleep_ns(100 * CTX_MSEC);
	atomic_store(&w->wrote, tu_real_ns());
	ck_assert_int_eq(write(w->fd, "x", 1), 1);
	return NULL;
}

START_TEST(test_auto_descriptor_holds)
{
	manual();
	ctx_clock_auto(true);
	int pp[2];
	ck_assert_int_eq(pipe2(pp, O_CLOEXEC), 0);
	int64_t t0 = ctx_now();
	struct late_writer w = { .fd = pp[1] };
	atomic_init(&w.wrote, 0);
	ctx_thread_t *t;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(), read_main,
					   &pp[0]), 0);
	pthread_t other;
	ck_assert_int_eq(pthread_create(&other, NULL, write_later, &w), 0);
	ck_assert_int_eq(ctx_sleep(ctx_background(), HOUR), 0);
	int64_t woke = tu_real_ns(), wrote = atomic_load(&w.wrote);
	ck_assert_int_eq(ctx_now() - t0, HOUR);
	ck_assert_int_ne(wrote, 0); /* the sleep did not end before */
	ck_assert_int_ge(woke, wrote);
	void *rc;
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &rc), 0);
	ck_assert_int_eq((intptr_t)rc, 1);
	pthread_join(other, NULL);
	close(pp[0]);
	close(pp[1]);
}
END_TEST

/* An error group: one function fails after an hour, which cancels the
 * group's context and ends the others' day-long sleeps then. */
static int group_fn(ctx_t *ctx, void *arg)
{
	int fail_after = (int)(intptr_t)arg;
	int e = ctx_sleep(ctx, fail_after ? fail_after * HOUR : 24 * HOUR);
	return fail_after && !e ? EIO : e;
}

START_TEST(test_auto_group)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now(), r0 = tu_real_ns();
	ctx_group_t *g = ctx_group_new(ctx_background());
	ck_assert_ptr_nonnull(g);
	ck_assert_int_eq(ctx_group_go(g, group_fn, (void *)(intptr_t)0), 0);
	ck_assert_int_eq(ctx_group_go(g, group_fn, (void *)(intptr_t)1), 0);
	ck_assert_int_eq(ctx_group_go(g, group_fn, (void *)(intptr_t)0), 0);
	ck_assert_int_eq(ctx_group_wait(g), EIO);
	ck_assert_int_eq(ctx_now() - t0, HOUR);
	ck_assert_int_lt(tu_real_ns() - r0, CTX_SEC);
	ctx_group_free(g);
}
END_TEST

/* A select over a channel nobody sends on and the end of a context with
 * a deadline: the jump goes to that deadline, and the DONE case wins. */
START_TEST(test_auto_select_done)
{
	manual();
	ctx_clock_auto(true);
	int64_t t0 = ctx_now();
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 0);
	ctx_t *d = ctx_with_timeout(ctx_background(), 2 * HOUR);
	int v;
	struct ctx_case c[2] = {
		{ .kind = CTX_CASE_RECV, .ch = ch, .elem = &v },
		{ .kind = CTX_CASE_DONE, .done = d },
	};
	ck_assert_int_eq(ctx_select(ctx_background(), c, 2, 3 * HOUR), 1);
	ck_assert_int_eq(c[1].result, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_now() - t0, 2 * HOUR);
	ctx_release(d);
	ctx_chan_free(ch);
}
END_TEST

Suite *suite_clock(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tu_tcase(s, "manual", 30);
	tcase_add_checked_fixture(tc, NULL, ctx__clock_reset);
	tcase_add_test(tc, test_manual_stands_still);
	tcase_add_test(tc, test_real_clock_untouched);
	tcase_add_test(tc, test_deadline_and_done_fd);
	tcase_add_test(tc, test_reset_to_real);
	tcase_add_test(tc, test_advance_wakes_sleeper);
	tcase_add_loop_test(tc, test_deadline_ends_waits, 0, W_KINDS);
	tcase_add_test(tc, test_call_timeouts);
	tcase_add_loop_test(tc, test_poll_timeouts, 0, 3);
	tcase_add_test(tc, test_after_func);
	tcase_add_test(tc, test_idle_context);
	tcase_add_test(tc, test_grace_and_set_deadline);
	tcase_add_test(tc, test_wait_delay);
	tcase_add_test(tc, test_wait_idle_waits_for_work);
	tcase_add_test(tc, test_descriptor_not_durable);
	tcase_add_test(tc, test_backoff_deadline);

	tc = tu_tcase(s, "auto", 60);
	tcase_add_checked_fixture(tc, NULL, ctx__clock_reset);
	tcase_add_test(tc, test_auto_hour_sleeps);
	tcase_add_test(tc, test_auto_order);
	tcase_add_test(tc, test_auto_ticker);
	tcase_add_test(tc, test_auto_idle_timeout);
	tcase_add_test(tc, test_auto_wait_group);
	tcase_add_test(tc, test_auto_descriptor_holds);
	tcase_add_test(tc, test_auto_group);
	tcase_add_test(tc, test_auto_select_done);
	return s;
}
