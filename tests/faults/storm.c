/*
 * Signals (see faults.c): a handler installed without SA_RESTART and a
 * thread sending it to the waiting threads every ~100 us, while they
 * read, sleep, poll, wait, receive, join and wait for groups with
 * deadlines, cancels and data to come: each wait ends only by its data,
 * its cancel or its deadline, with the exact result, never EINTR and
 * never early.
 */
#include "faults.h"

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

/* Fill a non-blocking pipe to EAGAIN.  The storm may already be on:
 * a write that a signal interrupts is tried again, or the pipe was
 * left with room and the "full pipe" write would not wait (under
 * valgrind, which can end a non-blocking write with EINTR, it once
 * wrote its 8 bytes at once). */
static void fill_pipe(int fd, const char *buf, size_t len)
{
	for (;;) {
		ssize_t n = write(fd, buf, len);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && errno != EAGAIN)
			note("filling the pipe: %s", strerror(errno));
		return;
	}
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
		fill_pipe(p[1], buf, sizeof(buf));
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

void add_faults_storm(Suite *s)
{
	TCase *tc = tu_tcase(s, "signals", 60);

	tcase_add_test(tc, test_signal_storm);
}
