/*
 * Stress: many threads doing everything at once, at random, with every
 * result and the length of every wait checked as it happens.
 *
 *  soak  Random workers (seeded: STRESS_SEED=n repeats a seed, which is
 *        printed with any failure) build context chains and trees, under
 *        the background or under a shared root that the test thread
 *        cancels and replaces at random ("epochs"), with deadlines from 0
 *        to 50 ms, and wait on them in every way the library offers:
 *        ctx_read on pipes, ctx_recv on socketpairs, channels (buffered
 *        and not) both ways, wait groups, error groups, thread joins,
 *        ctx_sleep, ctx_wait, ctx_poll, after-funcs and done fds.  Helper
 *        threads write, send, receive, close, count down and cancel at
 *        random moments.  Each wait must end by the earliest of its
 *        deadline and the events that must end it, plus TOL_MS (the
 *        machines that run this are shared; an overshoot is a lost
 *        wake-up), and return a result the API allows, consistent with
 *        its context's state and with what the helpers did.  Workers
 *        retire after a random number of operations and are replaced, so
 *        reactors are made and torn down throughout.  At the end
 *        descriptors and threads are back to their baseline (the
 *        library's timer and after-func threads are started before the
 *        baseline is taken).  STRESS_SECONDS sets the soak's length (5 s
 *        by default, 2 s with CTX_TEST_QUICK: the CI-sized run; `make
 *        soak` runs 600 s).  Durations are those above divided by
 *        STRESS_SCALE (25 by default, 1 under valgrind), which keeps a few
 *        thousand operations a second going on two cores; STRESS_WORKERS
 *        sets the number of workers (6; make soak runs 10);
 *        STRESS_VERBOSE=1 prints the count, mean time and rate per kind.
 *  race  A wait that starts at the moment its context is cancelled, for
 *        RACE_MS per kind of wait (some thousands of times, at least
 *        RACE_MIN however slow the machine): each must return promptly.
 *  exit  Batches of short-lived threads wait, are cancelled together and
 *        exit the moment their wait returns, while the canceller is still
 *        waking the others and the next batch opens pipes on the numbers
 *        the exited threads' reactors freed: no wake-up may land in
 *        another file, and none may be lost.
 *
 * Failures found in a thread other than the test's are recorded (failf)
 * and asserted by the test's thread, so the suite works with CK_FORK=no.
 * The soak is in soak.c (its machinery) and soak_ops.c (its operations);
 * this file has the shared helpers and the other tests.
 */
#include "hooks.h"
#include "stress.h"
#include "suites.h"

/* ---- helpers ---------------------------------------------------------- */

int64_t tol(void)
{
	return (tu_valgrind() ? 10 : 1) * (int64_t)TOL_MS * CTX_MSEC;
}

/*
 * When a call's own time (a sleep, a poll's timeout) and its context's
 * end have both passed by the time the thread looks, either result is
 * right (as in a Go select), and a thread descheduled between its two
 * looks sees them so.  A call that completes although its context ended
 * this much earlier than the call's own time is wrong.
 */
int64_t slack(void)
{
	return (tu_valgrind() ? 10 : 1) * 20 * CTX_MSEC;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Back off in a spin loop: spin, then yield, then sleep a little. */
static void backoff(long i)
{
	if (i < 64)
		cpu_relax();
	else if (i < 2000)
		sched_yield();
	else
		tu_sleep_ns(20 * CTX_USEC);
}

static void spin_until(int64_t t)
{
	while (ctx_now() < t)
		cpu_relax();
}

/* The soak's time scale: its random durations are divided by this
 * (STRESS_SCALE; 1 is the original 0-50 ms scale). */
unsigned stress_time_div = 1;

/* A random duration from 0 to max_us microseconds (divided by stress_time_div). */
int64_t rus(struct rng *r, unsigned max_us)
{
	return (int64_t)rn(r, max_us / stress_time_div + 1) * CTX_USEC;
}

unsigned long long stress_seed;

void pick_seed(void)
{
	const char *s = getenv("STRESS_SEED");
	if (s && *s)
		stress_seed = strtoull(s, NULL, 0);
	else
		stress_seed = (unsigned long long)ctx_now() ^
		       ((unsigned long long)getpid() << 32);
}

/* The first failure, for the test's thread to assert; all go to stderr. */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[1024];
static _Atomic bool failed;

__attribute__((format(printf, 1, 2)))
void failf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_mu);
	if (!atomic_load(&failed))
		snprintf(fail_msg, sizeof(fail_msg), "%s", msg);
	atomic_store(&failed, true);
	pthread_mutex_unlock(&fail_mu);
	fprintf(stderr, "stress (seed %llu): %s\n", stress_seed, msg);
}

void reset_failures(void)
{
	pthread_mutex_lock(&fail_mu);
	fail_msg[0] = '\0';
	atomic_store(&failed, false);
	pthread_mutex_unlock(&fail_mu);
}

void assert_no_failure(void)
{
	char msg[1024];

	pthread_mutex_lock(&fail_mu);
	snprintf(msg, sizeof(msg), "%s", fail_msg);
	pthread_mutex_unlock(&fail_mu);
	ck_assert_msg(!atomic_load(&failed), "%s [seed %llu: STRESS_SEED=%llu "
		      "repeats the choices]", msg, stress_seed, stress_seed);
}

bool stress_failing(void)
{
	return atomic_load(&failed);
}

/* ======================================================================
 * Cancel racing the start of a wait
 * ==================================================================== */

enum {
	R_READ, R_RECV, R_POLL, R_WAIT, R_WAIT_DL, R_SLEEP, R_CHAN_RECV,
	R_CHAN_SEND, R_WG, R_JOIN, R_COUNT
};

static const char *const race_names[R_COUNT] = {
	"ctx_read", "ctx_recv", "ctx_poll", "ctx_wait", "ctx_wait(deadline)",
	"ctx_sleep", "ctx_chan_recv", "ctx_chan_send", "ctx_wg_wait",
	"ctx_thread_join",
};

struct race {
	int op;
	_Atomic unsigned go, done;
	_Atomic bool quit;
	ctx_t *_Atomic c;
	int fd, sock;
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	ctx_thread_t *t;
	long rc;   /* the waiter's result, published by done */
	int err;
	int64_t end;
};

static void *blocker(ctx_t *ctx, void *arg)
{
	(void)arg;
	ctx_wait(ctx);
	return NULL;
}

static void *race_waiter(void *arg)
{
	struct race *r = arg;
	unsigned seen = 0;
	char buf[8];
	long v = 0;

	for (;;) {
		unsigned g;
		for (long i = 0; (g = atomic_load(&r->go)) == seen; i++)
			backoff(i);
		if (atomic_load(&r->quit))
			break;
		seen = g;
		ctx_t *c = atomic_load(&r->c);
		struct pollfd pf = { .fd = r->fd, .events = POLLIN };
		long rc = -1;
		int err = 0;
		switch (r->op) {
		case R_READ:
			rc = ctx_read(c, r->fd, buf, sizeof(buf));
			err = errno;
			break;
		case R_RECV:
			rc = ctx_recv(c, r->sock, buf, sizeof(buf), 0);
			err = errno;
			break;
		case R_POLL:
			rc = ctx_poll(c, &pf, 1, -1);
			err = errno;
			break;
		case R_WAIT:
		case R_WAIT_DL:
			err = ctx_wait(c);
			break;
		case R_SLEEP:
			err = ctx_sleep(c, 3600 * CTX_SEC);
			break;
		case R_CHAN_RECV:
			err = ctx_chan_recv(c, r->ch, &v);
			break;
		case R_CHAN_SEND:
			err = ctx_chan_send(c, r->ch, &v);
			break;
		case R_WG:
			err = ctx_wg_wait(c, r->wg);
			break;
		default:
			err = ctx_thread_join(c, r->t, NULL);
			break;
		}
		if (r->op >= R_WAIT)
			rc = err ? -1 : 0;
		r->rc = rc;
		r->err = err;
		r->end = ctx_now();
		atomic_store(&r->done, g);
	}
	return NULL;
}

/*
 * The waiter starts its wait the moment the iteration is published; this
 * thread cancels after a random 0 to 8 us (sometimes before publishing,
 * sometimes through a parent), then wants the wait over within tol.
 */
START_TEST(test_race_start)
{
	struct race r = { .op = _i };
	struct rng g = { 0 };
	pthread_t th;
	int p[2], s[2];
	ctx_t *tctx = ctx_with_cancel(ctx_background());
	int64_t budget = (tu_quick() || tu_valgrind() ? QUICK_RACE_MS :
			  RACE_MS) * CTX_MSEC;
	unsigned i;

	reset_failures();
	pick_seed();
	g.s = stress_seed;
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s),
			 0);
	r.fd = p[0];
	r.sock = s[0];
	r.ch = ctx_chan_new(sizeof(long), 0);
	r.wg = ctx_wg_new();
	ck_assert_ptr_nonnull(r.ch);
	ck_assert_ptr_nonnull(r.wg);
	ctx_wg_add(r.wg, 1);
	ck_assert_int_eq(ctx_thread_create(&r.t, tctx, blocker, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, race_waiter, &r), 0);

	int64_t end = ctx_now() + budget;
	char msg[256] = "";
	for (i = 1; i <= RACE_MAX && (ctx_now() < end || i <= RACE_MIN);
	     i++) {
		ctx_t *pc = r.op == R_WAIT_DL ?
				    ctx_with_timeout(ctx_background(),
						     3600 * CTX_SEC) :
				    ctx_with_cancel(ctx_background());
		ctx_t *c = pc;
		unsigned shape = rn(&g, 4);
		if (shape == 1)
			c = ctx_with_cancel(pc);
		else if (shape == 2)
			c = ctx_with_value(pc, value_key, NULL);
		ck_assert_ptr_nonnull(c);
		/* A value node cannot be cancelled: its parent can. */
		ctx_t *target = shape == 2 || chance(&g, 50) ? pc : c;
		bool before = rn(&g, 16) == 0;
		int64_t delay = rn(&g, 3) == 0 ? 0 : rus(&g, 8);

		if (before)
			ctx_cancel(target);
		atomic_store(&r.c, c);
		int64_t pub = ctx_now();
		atomic_store(&r.go, i);
		if (delay)
			spin_until(pub + delay);
		ctx_cancel(target);
		int64_t tc = ctx_now();
		for (long j = 0; atomic_load(&r.done) != i; j++) {
			backoff(j);
			if ((j & 63) == 0 && ctx_now() > tc + tol())
				break;
		}
		if (atomic_load(&r.done) != i) {
			snprintf(msg, sizeof(msg), "%s, iteration %u: still "
				 "blocked %lld ms after ctx_cancel (cancelled "
				 "%s%lld ns after publishing, shape %u): "
				 "lost wake-up", race_names[r.op], i,
				 (long long)((ctx_now() - tc) / CTX_MSEC),
				 before ? "before publishing and " : "",
				 (long long)delay, shape);
			break;
		}
		if (r.rc != -1 || r.err != CTX_CANCELED) {
			snprintf(msg, sizeof(msg), "%s, iteration %u: returned "
				 "%ld, error %d (%s); expected %s",
				 race_names[r.op], i, r.rc, r.err,
				 strerror(r.err), ctx_strerror(CTX_CANCELED));
			break;
		}
		if (c != pc)
			ctx_release(c);
		ctx_release(pc);
	}
	ck_assert_msg(!msg[0], "%s (seed %llu)", msg, stress_seed);
	atomic_store(&r.quit, true);
	atomic_store(&r.go, i);
	pthread_join(th, NULL);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: race %s: %u iterations\n",
			race_names[r.op], i - 1);

	ctx_cancel(tctx);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), r.t, NULL), 0);
	ctx_release(tctx);
	ctx_wg_done(r.wg);
	ctx_wg_free(r.wg);
	ctx_chan_free(r.ch);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}
END_TEST

/* ======================================================================
 * Cancel racing thread exit
 * ==================================================================== */

enum { X_READ, X_POLL, X_WAIT, X_SLEEP, X_CHAN, X_COUNT };

struct exiter {
	pthread_t th;
	ctx_t *c;
	int kind;
	ctx_chan_t *ch;
	_Atomic int *started;
	long rc;
	int err;
	int64_t end;
};

static void *exiter_main(void *arg)
{
	struct exiter *x = arg;
	int p[2] = { -1, -1 };
	uint64_t v = 0;
	long lv;

	if ((x->kind == X_READ || x->kind == X_POLL) &&
	    pipe2(p, O_CLOEXEC) < 0) {
		x->rc = -2;
		x->err = errno;
		atomic_fetch_add(x->started, 1);
		return NULL;
	}
	atomic_fetch_add(x->started, 1);
	switch (x->kind) {
	case X_READ:
		x->rc = ctx_read(x->c, p[0], &v, sizeof(v));
		x->err = errno;
		break;
	case X_POLL: {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		x->rc = ctx_poll(x->c, &pf, 1, -1);
		x->err = errno;
		break;
	}
	case X_WAIT:
		x->err = ctx_wait(x->c);
		x->rc = -1;
		break;
	case X_SLEEP:
		x->err = ctx_sleep(x->c, 3600 * CTX_SEC);
		x->rc = -1;
		break;
	default:
		x->err = ctx_chan_recv(x->c, x->ch, &lv);
		x->rc = -1;
		break;
	}
	x->end = ctx_now();
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	return NULL; /* at once: the canceller may still be waking others */
}

struct batch {
	ctx_t *root;
	int n;
	_Atomic int started;
	struct exiter xs[EXIT_BATCH];
};

/* The canceller: cancels each batch handed to it, at once or after a
 * moment, while the test's thread starts the next batch. */
struct canceller {
	pthread_t th;
	struct batch *_Atomic job;
	_Atomic bool quit;
	_Atomic int64_t cancelled_at;
	uint64_t seed;
};

static void *canceller_main(void *arg)
{
	struct canceller *k = arg;
	struct rng r = { k->seed };

	for (;;) {
		struct batch *b;
		for (long i = 0; !(b = atomic_load(&k->job)); i++) {
			if (atomic_load(&k->quit))
				return NULL;
			backoff(i);
		}
		int64_t d = rus(&r, 100);
		if (d)
			spin_until(ctx_now() + d);
		ctx_cancel(b->root);
		atomic_store(&k->cancelled_at, ctx_now());
		atomic_store(&k->job, NULL);
	}
}

static void batch_start(struct batch *b, struct rng *r, int variant,
			ctx_chan_t *ch, pthread_attr_t *attr, int max)
{
	b->root = ctx_with_cancel(ctx_background());
	ck_assert_ptr_nonnull(b->root);
	b->n = max / 2 + (int)rn(r, (unsigned)(max / 2 + 1));
	atomic_store(&b->started, 0);
	for (int i = 0; i < b->n; i++) {
		struct exiter *x = &b->xs[i];
		*x = (struct exiter){ .c = b->root, .ch = ch,
				      .started = &b->started };
		x->kind = variant == 0 ? (int)rn(r, 2) : (int)rn(r, X_COUNT);
		ck_assert_int_eq(pthread_create(&x->th, attr, exiter_main, x),
				 0);
	}
}

static void batch_finish(struct batch *b, int64_t tc, char *msg, size_t len)
{
	for (int i = 0; i < b->n; i++) {
		struct exiter *x = &b->xs[i];
		pthread_join(x->th, NULL);
		if (msg[0])
			continue;
		if (x->rc == -2)
			snprintf(msg, len, "pipe2: %s", strerror(x->err));
		else if (x->rc > 0)
			snprintf(msg, len, "kind %d: returned %ld: data on a "
				 "pipe nobody wrote to -- a wake-up written to "
				 "a descriptor number that an exited thread's "
				 "reactor had, and a new pipe took",
				 x->kind, x->rc);
		else if (x->rc != -1 || x->err != CTX_CANCELED)
			snprintf(msg, len, "kind %d: returned %ld, error %d "
				 "(%s)", x->kind, x->rc, x->err,
				 strerror(x->err));
		else if (x->end > tc + tol())
			snprintf(msg, len, "kind %d: returned %.1f ms after "
				 "the cancel", x->kind,
				 (double)(x->end - tc) / CTX_MSEC);
	}
	ctx_release(b->root);
}

START_TEST(test_race_exit)
{
	struct batch *b[2];
	struct canceller k = { 0 };
	struct rng r;
	pthread_attr_t attr;
	ctx_chan_t *ch = ctx_chan_new(sizeof(long), 0);
	int max = tu_quick() || tu_valgrind() ? QUICK_EXIT_BATCH : EXIT_BATCH;
	char msg[512] = "";
	long batches = 0;

	reset_failures();
	pick_seed();
	r.s = stress_seed;
	k.seed = stress_seed + 1;
	ck_assert_ptr_nonnull(ch);
	int fds = tu_count_fds(), threads = tu_count_threads();
	b[0] = calloc(1, sizeof(*b[0]));
	b[1] = calloc(1, sizeof(*b[1]));
	ck_assert_ptr_nonnull(b[0]);
	ck_assert_ptr_nonnull(b[1]);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, EXIT_STACK);
	ck_assert_int_eq(pthread_create(&k.th, NULL, canceller_main, &k), 0);

	/* Two batches in flight: while the canceller wakes one, the next
	 * one's threads start and open pipes, and the one before is
	 * joined. */
	int64_t end = ctx_now() + EXIT_MS * CTX_MSEC;
	int cur = 0;
	struct batch *prev = NULL;
	while (ctx_now() < end && !msg[0]) {
		struct batch *nb = b[cur];
		batch_start(nb, &r, _i, ch, &attr, max);
		for (long i = 0; atomic_load(&nb->started) < nb->n; i++)
			backoff(i);
		int64_t tc = 0;
		if (prev) {
			for (long i = 0; atomic_load(&k.job); i++)
				backoff(i);
			tc = atomic_load(&k.cancelled_at);
		}
		atomic_store(&k.job, nb); /* the canceller takes it now */
		if (prev)
			batch_finish(prev, tc, msg, sizeof(msg));
		prev = nb;
		cur = 1 - cur;
		batches++;
	}
	if (prev) {
		for (long i = 0; atomic_load(&k.job); i++)
			backoff(i);
		batch_finish(prev, atomic_load(&k.cancelled_at), msg,
			     sizeof(msg));
	}
	atomic_store(&k.quit, true);
	pthread_join(k.th, NULL);
	pthread_attr_destroy(&attr);
	free(b[0]);
	free(b[1]);
	ctx_chan_free(ch);
	ck_assert_msg(!msg[0], "%s (seed %llu, batch %ld)", msg, stress_seed, batches);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: exit variant %d: %ld batches\n", _i,
			batches);
	ck_assert_int_gt(batches, 2);
	int tn = tu_settle_threads(threads, 5 * CTX_SEC);
	ck_assert_msg(tn == threads, "%d threads, %d before", tn, threads);
	int fn = tu_settle_fds(fds, 2 * CTX_SEC);
	ck_assert_msg(fn == fds, "%d descriptors, %d before", fn, fds);
}
END_TEST

/* ======================================================================
 * Late wake-ups and channels
 * ==================================================================== */

/*
 * The reactor's internal wake-up (runtime/reactor.c).  waiter_fire()
 * releases a cancelled wait's link before it bumps the thread's wake-up
 * counter, so a canceller that is descheduled between the two delivers
 * its wake-up after the thread has left that wait, into whatever the
 * thread waits for next: a stale wake-up, which every wait must survive.
 * That window is a few instructions wide; calling the wake-up directly
 * is how this test opens it on demand (a test hook: hooks.h).
 */
#define LATE_PEERS 3          /* receivers, and as many senders */
#define LATE_MS 1000
#define LATE_DL_MS 300        /* each operation's deadline */
#define LATE_MARGIN_MS 200    /* "well before the deadline" */

struct late {
	ctx_chan_t *ch;
	struct ctx__reactor *_Atomic rs[2 * LATE_PEERS];
	_Atomic bool stop;
	_Atomic long ops, lost;
};

/* What goes through the channel: a record where each side notes when
 * its own call returned. */
struct late_elem {
	_Atomic int64_t ret[2]; /* 0: the receiver's, 1: the sender's */
	_Atomic int refs;
};

struct late_peer {
	struct late *l;
	int idx;
	pthread_t th;
};

static void late_put(struct late_elem *m)
{
	if (atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

/* Side `me` of an exchange that succeeded returned at `end`, at or past
 * its deadline d: lost if the other side had returned well before d. */
static void late_check(struct late *l, struct late_elem *m, int me,
		       int64_t t, int64_t end, int64_t d)
{
	int64_t other = 0, until = ctx_now() + 200 * CTX_MSEC;

	if (end < d)
		return;
	while (!(other = atomic_load(&m->ret[1 - me])) && ctx_now() < until)
		tu_sleep_ns(100 * CTX_USEC);
	if (!other || other + LATE_MARGIN_MS * CTX_MSEC >= d)
		return;
	atomic_fetch_add(&l->lost, 1);
	failf("%s completed (its peer's call returned at %+.1f ms) but "
	      "returned only at its %d ms deadline (%+.1f ms): the peer's "
	      "wake-up was lost after a stale wake-up -- runtime/chan.c "
	      "park(): a second round takes its token only after dropping "
	      "the channel lock", me ? "ctx_chan_send" : "ctx_chan_recv",
	      (double)(other - t) / CTX_MSEC, LATE_DL_MS,
	      (double)(end - t) / CTX_MSEC);
}

static void *late_peer_main(void *arg)
{
	struct late_peer *p = arg;
	struct late *l = p->l;
	int me = p->idx < LATE_PEERS ? 0 : 1;

	atomic_store(&l->rs[p->idx], ctx__reactor_self());
	while (!atomic_load(&l->stop)) {
		struct late_elem *m = NULL;
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    LATE_DL_MS * CTX_MSEC);
		int64_t t = ctx_now(), d = 0;
		int e;

		ck_assert_ptr_nonnull(c);
		ctx_deadline(c, &d);
		if (me == 1) {
			m = calloc(1, sizeof(*m));
			ck_assert_ptr_nonnull(m);
			atomic_init(&m->refs, 2);
			e = ctx_chan_send(c, l->ch, &m);
		} else {
			e = ctx_chan_recv(c, l->ch, &m);
		}
		int64_t end = ctx_now();
		ctx_release(c);
		atomic_fetch_add(&l->ops, 1);
		if (e == 0) {
			atomic_store(&m->ret[me], end);
			late_check(l, m, me, t, end, d);
			late_put(m);
		} else {
			if (e != CTX_DEADLINE_EXCEEDED)
				failf("ctx_chan_%s: %d", me ? "send" : "recv",
				      e);
			if (me == 1)
				free(m); /* nobody took it */
		}
	}
	return NULL;
}

START_TEST(test_chan_late_wake)
{
	struct late l = { .ch = ctx_chan_new(sizeof(struct late_elem *), 0) };
	struct late_peer ps[2 * LATE_PEERS];

	reset_failures();
	ck_assert_ptr_nonnull(l.ch);
	for (int i = 0; i < 2 * LATE_PEERS; i++) {
		ps[i] = (struct late_peer){ .l = &l, .idx = i };
		ck_assert_int_eq(pthread_create(&ps[i].th, NULL, late_peer_main,
						&ps[i]), 0);
	}
	int64_t end = ctx_now() + LATE_MS * CTX_MSEC;
	while (ctx_now() < end && !atomic_load(&l.lost))
		for (int i = 0; i < 2 * LATE_PEERS; i++) {
			struct ctx__reactor *r = atomic_load(&l.rs[i]);
			if (r)
				ctx__reactor_wake(r);
			cpu_relax();
		}
	/* No stale wake-up may reach a reactor whose thread is gone: the
	 * peers stop only after this loop. */
	atomic_store(&l.stop, true);
	for (int i = 0; i < 2 * LATE_PEERS; i++)
		pthread_join(ps[i].th, NULL);
	ctx_chan_free(l.ch);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: late wake-ups: %ld channel operations"
			", %ld lost\n", atomic_load(&l.ops),
			atomic_load(&l.lost));
	assert_no_failure();
	ck_assert_int_gt(atomic_load(&l.ops), 0);
}
END_TEST

/* ---- releases racing a cancel ------------------------------------------- */

/*
 * Workers make and release children of a shared parent as fast as they
 * can while the test thread cancels the parent and puts up a new one.  A
 * release that finds its child alone takes a short path (no lock of its
 * own, no walk), and the parent's cancel may be marking that child at the
 * same moment: ThreadSanitizer sees any access the two do not order, and
 * every child made under a parent that was already done must itself be
 * done, with the parent's cause.
 */
#define RR_WORKERS 3
#define RR_MS 300
#define RR_CAUSE 4242

struct rr {
	pthread_mutex_t mu;
	ctx_t *parent; /* the current one, with a reference for each taker */
	_Atomic bool stop;
	_Atomic long made, done_born;
};

static ctx_t *rr_take(struct rr *r)
{
	pthread_mutex_lock(&r->mu);
	ctx_t *p = ctx_ref(r->parent);
	pthread_mutex_unlock(&r->mu);
	return p;
}

static void *rr_main(void *arg)
{
	struct rr *r = arg;
	unsigned n = 0;
	while (!atomic_load(&r->stop)) {
		ctx_t *p = rr_take(r);
		bool was_done = ctx_err(p) != 0;
		ctx_t *c = ctx_with_cancel(p);
		ctx_t *g = n % 3 == 0 ? ctx_with_cancel(c) : NULL;
		if (!c) {
			failf("ctx_with_cancel: NULL");
		} else if (was_done) {
			atomic_fetch_add(&r->done_born, 1);
			if (ctx_err(c) != CTX_CANCELED ||
			    ctx_cause(c) != RR_CAUSE)
				failf("child of a done parent: err %d cause %d",
				      ctx_err(c), ctx_cause(c));
		}
		/* Children released first, last, or with the parent between. */
		if (n % 2)
			ctx_release(g);
		ctx_release(c);
		if (!(n % 2))
			ctx_release(g);
		ctx_unref(p); /* a release would cancel the shared parent */
		atomic_fetch_add(&r->made, 1);
		n++;
	}
	return NULL;
}

START_TEST(test_release_race)
{
	struct rr r = { .mu = PTHREAD_MUTEX_INITIALIZER,
			.parent = ctx_with_cancel(ctx_background()) };
	pthread_t th[RR_WORKERS];

	reset_failures();
	ck_assert_ptr_nonnull(r.parent);
	for (int i = 0; i < RR_WORKERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, rr_main, &r), 0);
	int64_t end = ctx_now() + RR_MS * CTX_MSEC;
	long rounds = 0;
	while (ctx_now() < end) {
		ctx_t *fresh = ctx_with_cancel(ctx_background());
		ck_assert_ptr_nonnull(fresh);
		ctx_cancel_cause(r.parent, RR_CAUSE);
		/* Leave the done parent up a moment, so that some children
		 * are born under it. */
		for (int i = 0; i < 50; i++)
			cpu_relax();
		pthread_mutex_lock(&r.mu);
		ctx_t *old = r.parent;
		r.parent = fresh;
		pthread_mutex_unlock(&r.mu);
		ctx_release(old);
		rounds++;
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < RR_WORKERS; i++)
		pthread_join(th[i], NULL);
	ctx_release(r.parent);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: release race: %ld children, %ld born "
			"done, %ld cancels\n", atomic_load(&r.made),
			atomic_load(&r.done_born), rounds);
	assert_no_failure();
	ck_assert_int_gt(atomic_load(&r.made), 0);
	ck_assert_int_gt(rounds, 0);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */

Suite *suite_stress(void)
{
	Suite *s = suite_create("stress");
	TCase *tc;

	add_stress_soak(s);

	tc = tu_tcase(s, "race", 60);
	tcase_add_loop_test(tc, test_race_start, 0, R_COUNT);

	tc = tu_tcase(s, "exit", 60);
	tcase_add_loop_test(tc, test_race_exit, 0, 2);

	tc = tu_tcase(s, "late_wake", 60);
	tcase_add_test(tc, test_chan_late_wake);

	tc = tu_tcase(s, "release_race", 60);
	tcase_add_test(tc, test_release_race);

	return s;
}

