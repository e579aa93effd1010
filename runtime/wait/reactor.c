/*
 * The per-thread reactor, and the one wait every blocking call uses.
 *
 * Each thread that blocks has a reactor: a wake-up counter, and -- made
 * the first time the thread waits for a descriptor or a deadline -- a
 * descriptor that wakes it and also times its deadlines (readiness.c:
 * one timerfd).  How the thread sleeps on descriptors is the backend's
 * business (backend.h: poll.c or uring.c), chosen once per process in
 * this file, the only one that asks which backend runs.  The io_uring
 * backend adds a ring for a thread that makes transfers on regular
 * files; all are closed by a thread-exit destructor.
 *
 * A context is never registered with the kernel.  A waiting thread hangs a link
 * on the context (its nearest cancel node); cancelling the context fires
 * the link, which wakes the thread.  So a context needs no descriptor to
 * be waited on, waiting on it again costs no system call, and the process
 * holds no descriptor per context at rest.  (The brief's shape registers
 * a per-context eventfd instead: a descriptor per waited context and an
 * epoll_ctl per new context, for no faster a wake-up.)
 *
 * Waking.  A waker bumps the thread's counter and then looks at how the
 * thread sleeps: in futex_wait on the counter (a wait with no descriptor
 * and no deadline: joins, channels, wait groups, ctx_wait), in the
 * backend (the descriptor is written), or not at all yet (nothing more to
 * do).  The waiter took a token (the counter's value) before it made
 * itself known to any waker, and announces how it sleeps before it
 * checks the counter one last time; both sides use sequentially
 * consistent operations, so either the waker sees the announcement or
 * the waiter sees the bump.  No wake-up is lost and an early one costs
 * no system call.
 *
 * The stale-wake rule.  In a wait whose event is not a wake-up (a
 * descriptor, a transfer, a deadline), a wake-up can only have come from
 * the context, or be left over from an earlier wait; so one seen while
 * the context is live is stale, and is forgotten -- before the context is
 * looked at, never after, or a cancel in between would be forgotten too.
 * The one loop below, ctx__wait_for, is the only place that applies it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wait/backend.h"

enum { AWAKE, IN_FUTEX, IN_KERNEL };

/* One wait's hold on its context: the link that wakes the thread. */
struct ctx__wait {
	struct ctx__link link; /* first: fire() casts the link back */
	struct ctx__reactor *r;
	ctx_t *n;              /* the cancel node waited on, or NULL */
	int64_t limit;         /* min(context deadline, call deadline) */
};

struct ctx__reactor {
	_Atomic uint32_t seq;  /* bumped by every wake-up */
	_Atomic int sleeping;  /* AWAKE, IN_FUTEX or IN_KERNEL */
	_Atomic int inflight;  /* wakers still holding it (ctx__reactor_hold) */
	uint32_t token;        /* seq when the current wait was published */
	bool prepared;         /* token taken for the current wait */
	bool registered;       /* thread-exit destructor set */
	int wakefd;            /* the descriptor a waker writes, or -1 */
};

static __thread struct ctx__reactor tls = { .wakefd = -1 };
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- the backend, chosen once --------------------------------------- */

static const struct ctx__backend *be = &ctx__backend_poll;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

/* CTX_BACKEND=io_uring asks for the ring; it is used where the kernel
 * and liburing can give it (uring.c's usable() says what it needs), and
 * otherwise the process falls back to the readiness backend ("epoll"),
 * which ctx_backend() shows. */
static void choose(void)
{
	const char *b = getenv("CTX_BACKEND");
	if (b && strcmp(b, "io_uring") == 0 && ctx__backend_uring.usable())
		be = &ctx__backend_uring;
}

static const struct ctx__backend *backend(void)
{
	pthread_once(&choose_once, choose);
	return be;
}

const char *ctx_backend(void)
{
	return backend()->name;
}

/* ---- the reactor ----------------------------------------------------- */

static void close_fds(struct ctx__reactor *r)
{
	backend()->thread_exit();
	if (r->wakefd >= 0)
		close(r->wakefd);
	r->wakefd = -1;
}

/* A canceller may still be inside waiter_fire for this thread's last
 * wait: let it finish before the memory and the descriptors go. */
static void on_thread_exit(void *p)
{
	struct ctx__reactor *r = p;
	while (atomic_load(&r->inflight))
		sched_yield();
	close_fds(r);
}

/* In the child only the forking thread lives on: close its copies of the
 * parent's descriptors, so its next wait makes its own. */
static void after_fork_child(void)
{
	close_fds(&tls);
	tls.prepared = false;
	atomic_store(&tls.sleeping, AWAKE);
	atomic_store(&tls.inflight, 0); /* its cancellers stayed behind */
}

static void init(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
	pthread_atfork(NULL, NULL, after_fork_child);
}

static int need_wakefd(struct ctx__reactor *r)
{
	if (__builtin_expect(r->wakefd >= 0, 1))
		return 0;
	int fd = ctx__readiness_wakefd();
	if (fd < 0)
		return -fd;
	r->wakefd = fd;
	return 0;
}

struct ctx__reactor *ctx__reactor_self(void)
{
	struct ctx__reactor *r = &tls;
	if (__builtin_expect(!r->registered, 0)) {
		pthread_once(&once, init);
		pthread_setspecific(exit_key, r);
		r->registered = true;
	}
	return r;
}

/* Take the token for a wait, before the thread is made known to any
 * waker.  Once per wait: a second call keeps the first token. */
void ctx__reactor_prepare(struct ctx__reactor *r)
{
	if (!r->prepared) {
		r->token = atomic_load(&r->seq);
		r->prepared = true;
	}
}

/* Give up a token that no wait used (a select that queued itself on
 * channels and was decided without sleeping). */
void ctx__reactor_unprepare(struct ctx__reactor *r)
{
	r->prepared = false;
}

static bool woken(struct ctx__reactor *r)
{
	return atomic_load(&r->seq) != r->token;
}

static void forget_stale_wake(struct ctx__reactor *r)
{
	r->token = atomic_load(&r->seq);
}

void ctx__reactor_wake(struct ctx__reactor *r)
{
	atomic_fetch_add(&r->seq, 1);
	switch (atomic_load(&r->sleeping)) {
	case IN_FUTEX:
		ctx__futex_wake(&r->seq, 1);
		break;
	case IN_KERNEL:
		ctx__readiness_wake(r->wakefd);
		break;
	}
}

/* Keep r (the memory, and the descriptor a wake-up writes) from going
 * away with its thread until ctx__reactor_release. */
void ctx__reactor_hold(struct ctx__reactor *r)
{
	atomic_fetch_add(&r->inflight, 1);
}

void ctx__reactor_release(struct ctx__reactor *r)
{
	atomic_fetch_sub(&r->inflight, 1);
}

/* ---- the one wait ---------------------------------------------------- */

/* Runs after the node's lock is dropped.  The link is released before
 * the wake-up, so that a woken thread that runs at once (on this CPU) need
 * not wait for this one to come back; the in-flight count keeps its
 * reactor, and the descriptor written, alive until the wake is done. */
static void waiter_fire(struct ctx__link *l)
{
	struct ctx__reactor *r = ((struct ctx__wait *)l)->r;
	ctx__reactor_hold(r);
	ctx__link_done(l);
	ctx__reactor_wake(r);
	ctx__reactor_release(r);
}

/* Refuse if the context is done; else hang a link on it that wakes this
 * thread, and work out the earliest time the wait must end. */
static int wait_begin(struct ctx__wait *w, ctx_t *ctx, int64_t deadline)
{
	w->r = ctx__reactor_self();
	w->n = ctx__node(ctx);
	w->link.fire = waiter_fire;
	ctx__reactor_prepare(w->r);
	int e = ctx__check(w->n);
	if (!e && w->n)
		e = ctx__link_add(w->n, &w->link);
	if (e) {
		w->r->prepared = false;
		return e;
	}
	w->limit = w->n && w->n->deadline < deadline ? w->n->deadline :
						     deadline;
	return 0;
}

static void wait_end(struct ctx__wait *w)
{
	if (w->n)
		ctx__link_del(w->n, &w->link);
	w->r->prepared = false;
}

static void sleep_futex(struct ctx__reactor *r)
{
	atomic_store(&r->sleeping, IN_FUTEX);
	if (!woken(r))
		ctx__futex_wait(&r->seq, r->token);
	atomic_store(&r->sleeping, AWAKE);
}

/*
 * ThreadSanitizer runs a signal's handler only once the thread that took
 * the signal enters a function it intercepts.  A raw futex wait is not
 * one: a thread parked there would hold a process signal (the SIGTERM of
 * a ctx_with_signals context) for as long as it sleeps, seen as a server
 * that never shut down.  Under TSan every sleep is a poll, which it
 * intercepts.
 */
#if defined(__SANITIZE_THREAD__)
#define FUTEX_SLEEP false
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FUTEX_SLEEP false
#endif
#endif
#ifndef FUTEX_SLEEP
#define FUTEX_SLEEP true
#endif

/* One sleep: on the futex when nothing but a wake-up can end it, else in
 * the backend, which the wake-up descriptor interrupts. */
static int sleep_once(struct ctx__wait *w, struct ctx__want *want)
{
	struct ctx__reactor *r = w->r;
	struct pollfd none[2];
	bool futex_will_do = !want->nfds && !want->xfer &&
			     w->limit == CTX__NEVER;
	if (FUTEX_SLEEP && futex_will_do) {
		sleep_futex(r);
		return 0;
	}
	int e = need_wakefd(r);
	if (e && futex_will_do) {
		/* Under TSan with no descriptor to spare: a wait that
		 * needs none must still work (signals are then late). */
		sleep_futex(r);
		return 0;
	}
	if (e)
		return e;
	if (backend()->settle && (e = backend()->settle(r->wakefd, w->limit)))
		return e;
	atomic_store(&r->sleeping, IN_KERNEL);
	if (!woken(r))
		e = backend()->sleep(r->wakefd, want->nfds ? want->fds : none,
			      want->nfds, w->limit, &want->ready);
	atomic_store(&r->sleeping, AWAKE);
	return e;
}

static bool want_met(struct ctx__wait *w, struct ctx__want *want)
{
	return want->ready || (want->xfer && want->xfer->done) ||
	       (want->wakes && woken(w->r));
}

static int xfer_start(struct ctx__wait *w, struct ctx__xfer *x)
{
	if (!backend()->xfer_start)
		return CTX__BLOCKING;
	int e = need_wakefd(w->r);
	return e ? e : backend()->xfer_start(w->r->wakefd, x);
}

/*
 * A wait for nothing but the context, which has no deadline: sleep on the
 * node's err word itself.  The flag, set under the node's lock, tells
 * mark() (context.c) to wake every such sleeper with one futex call after
 * it stores err, so a cancel that ends N of these waits makes one system
 * call, not N, and the waiters touch no list and no reactor.  The lock
 * orders the flag against the store: a waiter that finds err 0 under it
 * is seen by the cancel, and the kernel's compare of err with 0 covers
 * the moments between the unlock and the sleep.  (Deadlines stay with
 * the backend's timer, which has no timer slack; futex timeouts have.)
 */
static bool node_wait_fits(ctx_t *n, const struct ctx__want *want)
{
	return FUTEX_SLEEP && n && !want->nfds && !want->xfer &&
	       !want->wakes && want->deadline == CTX__NEVER &&
	       n->deadline == CTX__NEVER;
}

static int node_wait(ctx_t *n)
{
	ctx__node_lock(&n->lock);
	int e = atomic_load_explicit(&n->err, memory_order_relaxed);
	if (!e)
		n->flags |= CTX__F_FUTEX;
	ctx__node_unlock(&n->lock);
	while (!e) {
		ctx__futex_wait((_Atomic uint32_t *)(void *)&n->err, 0);
		e = atomic_load_explicit(&n->err, memory_order_acquire);
	}
	return e;
}

/*
 * The wait of every blocking call: until what `want` names happens (a
 * descriptor is ready, the transfer completed, or -- want->wakes -- a
 * wake-up came), the context ends, or want->deadline passes.  Returns
 *   CTX__READY     what was wanted happened (want->ready, xfer->done),
 *   CTX__EXPIRED   want->deadline, the call's own, passed,
 *   CTX__BLOCKING  a transfer was asked of a backend that has none,
 *   the context's error, or an errno value (EMFILE, ENOMEM, ...).
 * EINTR never comes out: a signal only makes the loop look again.
 */
int ctx__wait_for(ctx_t *ctx, struct ctx__want *want)
{
	ctx_t *n = ctx__node(ctx);
	if (node_wait_fits(n, want))
		return node_wait(n);
	struct ctx__wait w;
	int e = wait_begin(&w, ctx, want->deadline);
	if (e)
		return e;
	want->ready = 0;
	if (want->xfer && (e = xfer_start(&w, want->xfer))) {
		wait_end(&w);
		return e;
	}
	for (;;) {
		if (!want->wakes && woken(w.r))
			forget_stale_wake(w.r); /* the stale-wake rule */
		if ((e = ctx__check(w.n)))
			break;
		if (want_met(&w, want)) {
			e = CTX__READY;
			break;
		}
		if (want->deadline != CTX__NEVER && ctx_now() >= want->deadline) {
			e = CTX__EXPIRED;
			break;
		}
		if ((e = sleep_once(&w, want)))
			break;
	}
	if (want->xfer)
		backend()->xfer_finish(w.r->wakefd, want->xfer);
	wait_end(&w);
	return e;
}

/* A wait for one descriptor, or (fd < 0) for a wake-up. */
int ctx__wait_fd(ctx_t *ctx, int fd, uint32_t events, int64_t deadline)
{
	struct pollfd p[3] = { { .fd = fd, .events = (short)events } };
	struct ctx__want want = { .fds = p, .nfds = fd >= 0,
				  .wakes = fd < 0, .deadline = deadline };
	int e = ctx__wait_for(ctx, &want);
	if (e == CTX__READY && fd >= 0 && (p[0].revents & POLLNVAL))
		e = EBADF;
	return e;
}
