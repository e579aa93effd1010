/*
 * The per-thread epoll reactor, and the one wait every blocking call uses.
 *
 * A thread's reactor is made on its first blocking call and closed by a
 * thread-exit destructor: an epoll descriptor, an eventfd that wakes the
 * thread, and a timerfd for the earliest deadline the thread waits for.
 * Both stay registered for the thread's life.
 *
 * A context is never registered with epoll.  A waiting thread hangs a link
 * on the context (its nearest cancel node); cancelling the context fires
 * the link, which writes the waiting thread's eventfd.  So a context needs
 * no descriptor to be waited on, waiting on it again costs no epoll_ctl,
 * and the process holds no descriptor per context at rest -- only one
 * eventfd per thread that ever blocked.  (The brief's shape registers a
 * per-context eventfd instead; that costs a descriptor per waited context
 * and an epoll_ctl per new context, and wakes no faster: the cancel side
 * writes one eventfd per waiting thread here, where the kernel would walk
 * one wait queue entry per thread there.)
 *
 * Kernel quirks handled here:
 *  a. epoll refuses regular files (EPERM): they are always "ready", so the
 *     caller performs the call directly (CTX__BLOCKING).
 *  b. A closed descriptor silently leaves the epoll set, and its number
 *     may come back as another file.  The I/O descriptor is registered
 *     EPOLLONESHOT and re-armed with EPOLL_CTL_MOD, falling back to ADD on
 *     ENOENT, so a stale cache entry costs one failed call, not a hang.
 *  c. The wake eventfd and the timerfd are edge-triggered and never read:
 *     every write or expiry queues a new event, and a timerfd_settime
 *     resets the timer.  A stale event only causes one extra loop.
 *  d. After fork() the child shares the parent's epoll instance; the
 *     child drops the forking thread's reactor and makes a fresh one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "ctx-internal.h"

enum { TAG_WAKE = -1, TAG_TIMER = -2 };

struct ctx__reactor {
	int epfd, wakefd, timerfd;
	int io_fd;         /* last descriptor registered, or -1 */
	int64_t armed;     /* absolute expiry set on timerfd; NEVER if none */
};

static __thread struct ctx__reactor tls = {
	.epfd = -1, .wakefd = -1, .timerfd = -1, .io_fd = -1,
};
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void reactor_close(struct ctx__reactor *r)
{
	if (r->epfd < 0)
		return;
	close(r->epfd);
	close(r->wakefd);
	close(r->timerfd);
	*r = (struct ctx__reactor){ -1, -1, -1, -1, CTX__NEVER };
}

static void on_thread_exit(void *p) { reactor_close(p); }

/* In the child only the forking thread lives on: close its copies of the
 * parent's reactor descriptors, so its next wait builds its own. */
static void after_fork_child(void) { reactor_close(&tls); }

static void init(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
	pthread_atfork(NULL, NULL, after_fork_child);
}

static int add(int epfd, int fd, uint32_t events, int tag)
{
	struct epoll_event ev = { .events = events, .data.fd = tag };
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int reactor_open(struct ctx__reactor *r)
{
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->timerfd = timerfd_create(CLOCK_MONOTONIC,
				    TFD_CLOEXEC | TFD_NONBLOCK);
	r->io_fd = -1;
	r->armed = CTX__NEVER;
	if (r->epfd < 0 || r->wakefd < 0 || r->timerfd < 0 ||
	    add(r->epfd, r->wakefd, EPOLLIN | EPOLLET, TAG_WAKE) < 0 ||
	    add(r->epfd, r->timerfd, EPOLLIN | EPOLLET, TAG_TIMER) < 0) {
		int e = errno;
		int fds[] = { r->epfd, r->wakefd, r->timerfd };
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		*r = (struct ctx__reactor){ -1, -1, -1, -1, CTX__NEVER };
		return e;
	}
	pthread_setspecific(exit_key, r);
	return 0;
}

struct ctx__reactor *ctx__reactor_self(void)
{
	struct ctx__reactor *r = &tls;
	if (__builtin_expect(r->epfd >= 0, 1))
		return r;
	pthread_once(&once, init);
	int e = reactor_open(r);
	if (e) {
		errno = e;
		return NULL;
	}
	return r;
}

void ctx__reactor_wake(struct ctx__reactor *r)
{
	eventfd_write(r->wakefd, 1);
}

int ctx__reactor_epfd(struct ctx__reactor *r) { return r->epfd; }

/* Arm the timer for `at` unless it is armed for it already.  A timer
 * armed for a later time by an earlier wait must be re-armed; one armed
 * for an earlier time would only cause a spurious wake-up, but re-arming
 * keeps the state simple. */
int ctx__reactor_arm(struct ctx__reactor *r, int64_t at)
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
	struct epoll_event ev = {
		.events = events | EPOLLONESHOT, .data.fd = fd,
	};
	int op = fd == r->io_fd ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	int rc = epoll_ctl(r->epfd, op, fd, &ev);
	if (rc < 0 && (errno == ENOENT || errno == EEXIST)) {
		op = errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
		rc = epoll_ctl(r->epfd, op, fd, &ev);
	}
	if (rc < 0)
		return errno == EPERM ? CTX__BLOCKING : errno;
	r->io_fd = fd;
	return 0;
}

/* Collect events: which of fd, the wake-up and the timer fired. */
struct fired {
	bool io, wake, timer;
};

static int collect(struct ctx__reactor *r, int fd, int timeout_ms,
		   struct fired *f)
{
	struct epoll_event evs[8];
	int n = epoll_wait(r->epfd, evs, 8, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : errno;
	for (int i = 0; i < n; i++) {
		int tag = evs[i].data.fd;
		if (tag == TAG_TIMER) {
			f->timer = true;
			r->armed = CTX__NEVER;
		} else if (tag == TAG_WAKE) {
			f->wake = true;
		} else if (tag == fd) {
			f->io = true;
		}
	}
	return 0;
}

int ctx__reactor_drain(struct ctx__reactor *r)
{
	struct fired f = { 0 };
	return collect(r, -1, 0, &f);
}

static void waiter_fire(struct ctx__link *l)
{
	ctx__reactor_wake(((struct ctx__wait *)l)->r);
}

/* Refuse if the context is done; else hang a link on it that wakes this
 * thread, and work out the earliest time the wait must end. */
int ctx__wait_begin(struct ctx__wait *w, ctx_t *ctx, int64_t deadline)
{
	ctx_t *n = ctx__node(ctx);
	int e = ctx__check(n);
	if (e)
		return e;
	w->r = ctx__reactor_self();
	if (!w->r)
		return errno;
	w->link.fire = waiter_fire;
	w->n = n;
	if (n && (e = ctx__link_add(n, &w->link)))
		return e;
	w->limit = n && n->deadline < deadline ? n->deadline : deadline;
	return 0;
}

void ctx__wait_end(struct ctx__wait *w)
{
	if (w->n)
		ctx__link_del(w->n, &w->link);
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
	if (fd >= 0 && (e = watch(w.r, fd, events))) {
		ctx__wait_end(&w);
		return e;
	}
	for (;;) {
		struct fired f = { 0 };
		if ((e = ctx__reactor_arm(w.r, w.limit)) ||
		    (e = collect(w.r, fd, -1, &f)))
			break;
		if ((e = ctx__check(w.n)))
			break;
		if (f.io || (fd < 0 && f.wake)) {
			e = CTX__READY;
			break;
		}
		if (deadline != CTX__NEVER && ctx_now() >= deadline) {
			e = CTX__EXPIRED;
			break;
		}
	}
	ctx__wait_end(&w);
	return e;
}

const char *ctx_backend(void) { return "epoll"; }
