/*
 * Descriptors exhausted (see faults.c): RLIMIT_NOFILE lowered mid-run,
 * with other threads waiting throughout, so that a new thread's first
 * timed wait cannot make its reactor's descriptors and ctx_done_fd
 * cannot make its eventfd.  Every call fails with EMFILE or completes as
 * it would have; nothing leaks; and once the limit is raised the very
 * same calls, in the very same thread, succeed.
 */
#include "faults.h"

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
	tu_start_services();
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
	tu_start_services();
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
	tu_release(vc, dc, cc);
	ck_assert_int_eq(tu_settle_fds(fds, 2 * CTX_SEC), fds);
	assert_no_notes();
}
END_TEST

void add_faults_emfile(Suite *s)
{
	TCase *tc = tu_tcase(s, "emfile", 60);

	tcase_add_loop_test(tc, test_emfile_new_thread, 0, 3);
	tcase_add_test(tc, test_emfile_done_fd);
}
