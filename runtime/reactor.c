/*
 * The per-thread reactor, and the one wait every blocking call uses.
 *
 * Each thread that blocks has a reactor: a wake-up counter, and -- made
 * the first time the thread waits for a descriptor or a deadline -- an
 * epoll descriptor, an eventfd that wakes it and a timerfd for the
 * earliest deadline it waits for.  Those stay registered for the thread's
 * life and are closed by a thread-exit destructor.
 *
 * A context is never registered with epoll.  A waiting thread hangs a link
 * on the context (its nearest cancel node); cancelling the context fires
 * the link, which wakes the thread.  So a context needs no descriptor to
 * be waited on, waiting on it again costs no epoll_ctl, and the process
 * holds no descriptor per context at rest.  (The brief's shape registers
 * a per-context eventfd instead: a descriptor per waited context and an
 * epoll_ctl per new context, for no faster a wake-up.)
 *
 * Waking.  A waker bumps the thread's counter and then looks at how the
 * thread sleeps: in futex_wait on the counter (a wait with no descriptor
 * and no deadline: joins, channels, wait groups, ctx_wait), in epoll_wait
 * (the eventfd is written), or not at all yet (nothing more to do).  The
 * waiter took a token (the counter's value) before it made itself known
 * to any waker, and announces how it sleeps before it checks the counter
 * one last time; both sides use sequentially consistent operations, so
 * either the waker sees the announcement or the waiter sees the bump.
 * No wake-up is lost and an early one costs no system call.
 *
 * Kernel quirks handled here:
 *  a. epoll refuses regular files (EPERM): they are always "ready", so the
 *     caller performs the call directly (CTX__BLOCKING).
 *  b. A closed descriptor leaves the epoll set only when its file is
 *     closed everywhere, and its number may come back as another file.
 *     The I/O descriptor is registered EPOLLONESHOT and re-armed with
 *     EPOLL_CTL_MOD, falling back to ADD on ENOENT, so a stale cache entry
 *     costs one failed call; each ADD gets a new generation in the event
 *     data, so a registration left behind by a file still open elsewhere
 *     cannot pass its events off as the new descriptor's.
 *  c. The wake eventfd and the timerfd are edge-triggered and never read:
 *     every write or expiry queues a new event, and timerfd_settime resets
 *     the timer.  A stale event only causes one extra loop.
 *  d. After fork() the child shares the parent's epoll instance; the
 *     child drops the forking thread's descriptors and makes fresh ones.
 *  e. Timed waits sleep on the timerfd, not on a futex or epoll timeout:
 *     those add the thread's timer slack (50 us by default) to the wake-up.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ctx-internal.h"

/* epoll data: the wake-up and the timer have fixed tags; an I/O
 * registration carries the descriptor and a generation, so an event
 * from a stale registration (quirk b) is told apart from a real one. */
enum { TAG_WAKE = 1, TAG_TIMER = 2 };
#define IO_TAG(gen, fd) ((uint64_t)(gen) << 32 | (uint32_t)(fd))
enum { AWAKE, IN_FUTEX, IN_EPOLL };

struct ctx__reactor {
	_Atomic uint32_t seq;  /* bumped by every wake-up */
	_Atomic int sleeping;  /* AWAKE, IN_FUTEX or IN_EPOLL */
	_Atomic int inflight;  /* wakers still holding it (ctx__reactor_hold) */
	uint32_t token;        /* seq when the current wait was published */
	bool prepared;         /* token taken for the current wait */
	bool registered;       /* thread-exit destructor set */
	int epfd, wakefd, timerfd;
	int io_fd;             /* last descriptor registered, or -1 */
	uint32_t io_gen;       /* its generation, in its epoll data */
	int64_t armed;         /* expiry set on timerfd; NEVER if none */
};

#define NO_FDS .epfd = -1, .wakefd = -1, .timerfd = -1, .io_fd = -1, \
	       .armed = CTX__NEVER

static __thread struct ctx__reactor tls = { NO_FDS };
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void close_fds(struct ctx__reactor *r)
{
	int fds[] = { r->epfd, r->wakefd, r->timerfd };
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	r->epfd = r->wakefd = r->timerfd = r->io_fd = -1;
	r->armed = CTX__NEVER;
}

/* A canceller may still be inside waiter_fire for this thread's last
 * wait: let it finish before the memory and the descriptors go. */
static void on_thread_exit(void *p)
{
	struct ctx__reactor *r = p;
	while (atomic_load(&r->inflight))
		sched_yield();
	ctx__uring_thread_exit();
	close_fds(r);
}

/* In the child only the forking thread lives on: close its copies of the
 * parent's reactor descriptors, so its next wait makes its own. */
static void after_fork_child(void)
{
	ctx__uring_thread_exit(); /* the parent's ring is not ours */
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

static int add(int epfd, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Make the epoll descriptor, the eventfd and the timerfd, or none. */
static int open_fds(struct ctx__reactor *r)
{
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->timerfd = timerfd_create(CLOCK_MONOTONIC,
				    TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->epfd < 0 || r->wakefd < 0 || r->timerfd < 0 ||
	    add(r->epfd, r->wakefd, EPOLLIN | EPOLLET, TAG_WAKE) < 0 ||
	    add(r->epfd, r->timerfd, EPOLLIN | EPOLLET, TAG_TIMER) < 0) {
		int e = errno;
		close_fds(r);
		return e;
	}
	return 0;
}

static int need_fds(struct ctx__reactor *r)
{
	return __builtin_expect(r->epfd >= 0, 1) ? 0 : open_fds(r);
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

static bool woken(struct ctx__reactor *r)
{
	return atomic_load(&r->seq) != r->token;
}

void ctx__reactor_wake(struct ctx__reactor *r)
{
	atomic_fetch_add(&r->seq, 1);
	switch (atomic_load(&r->sleeping)) {
	case IN_FUTEX:
		ctx__futex_wake(&r->seq, 1);
		break;
	case IN_EPOLL:
		eventfd_write(r->wakefd, 1);
		break;
	}
}

/* Keep r (the memory, and the descriptors a wake-up writes) from going
 * away with its thread until ctx__reactor_release. */
void ctx__reactor_hold(struct ctx__reactor *r)
{
	atomic_fetch_add(&r->inflight, 1);
}

void ctx__reactor_release(struct ctx__reactor *r)
{
	atomic_fetch_sub(&r->inflight, 1);
}

static void sleep_futex(struct ctx__reactor *r)
{
	atomic_store(&r->sleeping, IN_FUTEX);
	if (!woken(r))
		ctx__futex_wait(&r->seq, r->token);
	atomic_store(&r->sleeping, AWAKE);
}

/* Arm the timer for `at` unless it is armed for it already. */
static int arm(struct ctx__reactor *r, int64_t at)
{
	if (at == CTX__NEVER || at == r->armed)
		return 0;
	struct itimerspec its = {
		.it_value = { .tv_sec = at / CTX_SEC, .tv_nsec = at % CTX_SEC },
	};
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm it */
	if (timerfd_settime(r->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return errno;
	r->armed = at;
	return 0;
}

/* Re-arm the one-shot registration of fd, or add it (quirk b). */
static int watch(struct ctx__reactor *r, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events | EPOLLONESHOT };
	int rc = -1;
	errno = ENOENT;
	if (fd == r->io_fd) {
		ev.data.u64 = IO_TAG(r->io_gen, fd);
		rc = epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev);
	}
	if (rc < 0 && errno == ENOENT) {
		ev.data.u64 = IO_TAG(++r->io_gen, fd);
		rc = epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
		if (rc < 0 && errno == EEXIST) /* cache lost: still ours */
			rc = epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev);
	}
	if (rc < 0) {
		r->io_fd = -1;
		return errno == EPERM ? CTX__BLOCKING : errno;
	}
	r->io_fd = fd;
	return 0;
}

/* Collect epoll events; true in *io if fd fired. */
static int collect(struct ctx__reactor *r, int fd, int timeout_ms, bool *io)
{
	struct epoll_event evs[8];
	int n = epoll_wait(r->epfd, evs, 8, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == TAG_TIMER)
			r->armed = CTX__NEVER;
		else if (fd >= 0 && evs[i].data.u64 == IO_TAG(r->io_gen, fd))
			*io = true;
	}
	return 0;
}

/* Sleep on the descriptors: epoll's, or the ring's (io_uring backend),
 * in which case `limit` is the ring's timeout instead of the timerfd's. */
static int sleep_fds(struct ctx__reactor *r, int fd, uint32_t events,
		     int64_t limit, bool *io)
{
	int e = 0;
	atomic_store(&r->sleeping, IN_EPOLL);
	if (!woken(r))
		e = ctx__uring_on() ?
			ctx__uring_round(r->wakefd, fd, events, limit, io) :
			collect(r, fd, -1, io);
	atomic_store(&r->sleeping, AWAKE);
	return e;
}

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
int ctx__wait_begin(struct ctx__wait *w, ctx_t *ctx, int64_t deadline)
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

void ctx__wait_end(struct ctx__wait *w)
{
	if (w->n)
		ctx__link_del(w->n, &w->link);
	w->r->prepared = false;
}

/* A wake-up with the context still live, in a wait where wake-ups can
 * only come from the context: a stale one.  Take a fresh token. */
static void forget_stale_wake(struct ctx__reactor *r)
{
	r->token = atomic_load(&r->seq);
}

/* One round of waiting; the caller checks what happened. */
static int wait_round(struct ctx__wait *w, int fd, uint32_t events,
		      bool *io)
{
	if (fd < 0 && w->limit == CTX__NEVER) {
		sleep_futex(w->r);
		return 0;
	}
	int e = need_fds(w->r);
	if (!e && !ctx__uring_on())
		e = arm(w->r, w->limit);
	if (!e)
		e = sleep_fds(w->r, fd, events, w->limit, io);
	return e;
}

/*
 * The wait of every blocking call.  Returns
 *   CTX__READY     fd is ready for `events` (fd < 0: the thread was woken
 *                  by ctx__reactor_wake; the caller re-checks its state),
 *   CTX__EXPIRED   `deadline`, the call's own, passed,
 *   CTX__BLOCKING  fd cannot be polled (a regular file): do the call,
 *   the context's error, or an errno value (EBADF, EMFILE, ...).
 * EINTR never comes out: a signal only makes the loop look again.
 */
int ctx__wait_fd(ctx_t *ctx, int fd, uint32_t events, int64_t deadline)
{
	struct ctx__wait w;
	int e = ctx__wait_begin(&w, ctx, deadline);
	if (e)
		return e;
	if (fd >= 0 && !(e = need_fds(w.r)) && !ctx__uring_on())
		e = watch(w.r, fd, events);
	for (bool io = false; !e;) {
		/* Only the context wakes a descriptor wait: a wake-up with
		 * the context live is stale.  Forget it before looking at
		 * the context, never after, or a cancel in between would be
		 * forgotten too. */
		if (fd >= 0 && woken(w.r))
			forget_stale_wake(w.r);
		if ((e = ctx__check(w.n)))
			break;
		if (io || (fd < 0 && woken(w.r))) {
			e = CTX__READY;
			break;
		}
		if (deadline != CTX__NEVER && ctx_now() >= deadline) {
			e = CTX__EXPIRED;
			break;
		}
		e = wait_round(&w, fd, events, &io);
	}
	ctx__wait_end(&w);
	return e;
}

/*
 * poll(2) with a context: the caller's descriptors go to poll together
 * with the thread's epoll descriptor, which turns readable when the
 * wake-up eventfd or the timer fires.  Events pending in the epoll set
 * are collected before each poll, so that a stale one does not end it.
 * `all` has room for nfds + 1 entries.  *ready is poll's count.
 */
int ctx__wait_poll(struct ctx__wait *w, struct pollfd *all, nfds_t nfds,
		   int64_t deadline, int *ready)
{
	struct ctx__reactor *r = w->r;
	int e = need_fds(r);
	all[nfds] = (struct pollfd){ .fd = r->epfd, .events = POLLIN };
	for (*ready = 0; !e && !*ready;) {
		bool io = false;
		forget_stale_wake(r); /* before the check: see ctx__wait_fd */
		if ((e = arm(r, w->limit)) || (e = collect(r, -1, 0, &io)) ||
		    (e = ctx__check(w->n)))
			break;
		if (deadline != CTX__NEVER && ctx_now() >= deadline)
			return CTX__EXPIRED;
		atomic_store(&r->sleeping, IN_EPOLL);
		int n = woken(r) ? 0 : poll(all, nfds + 1, -1);
		atomic_store(&r->sleeping, AWAKE);
		if (n < 0 && errno != EINTR)
			e = errno;
		for (nfds_t i = 0; n > 0 && i < nfds; i++)
			*ready += all[i].revents != 0;
		if (*ready)
			e = ctx__check(w->n);
	}
	return e;
}

/*
 * A read or write through the ring.  Submitted once; each round then
 * waits for it, the wake-up and the deadline.  When the context ends
 * first the transfer is cancelled and waited for: if it completed after
 * all, its count is the result (uring.c, quirk b).
 */
ssize_t ctx__wait_rw(ctx_t *ctx, int fd, void *buf, size_t len, bool write)
{
	struct ctx__wait w;
	struct ctx__uring_op op = { .fd = fd, .buf = buf, .len = len,
				    .write = write };
	int e = ctx__wait_begin(&w, ctx, CTX__NEVER);
	if (!e && !(e = need_fds(w.r)))
		e = ctx__uring_start(&op, w.r->wakefd);
	if (e && !op.id) {
		if (w.r->prepared)
			ctx__wait_end(&w);
		errno = e;
		return -1;
	}
	while (!op.done) {
		if (woken(w.r))
			forget_stale_wake(w.r);
		if ((e = ctx__check(w.n)))
			break;
		if ((e = sleep_fds(w.r, -1, 0, w.limit, NULL)))
			break;
	}
	ctx__uring_finish(&op, w.r->wakefd);
	ctx__wait_end(&w);
	if (op.res >= 0)
		return op.res;
	errno = op.res == -ECANCELED && e ? e : -op.res;
	return -1;
}

const char *ctx_backend(void)
{
	return ctx__uring_on() ? "io_uring" : "epoll";
}
