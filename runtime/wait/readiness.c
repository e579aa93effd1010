/*
 * Sleeping until a descriptor is ready, the wake-up eventfd is written
 * or a time comes: one poll(2) on the descriptors waited for, the
 * thread's wake-up eventfd and, for a wait with a deadline, its timerfd.
 * The sleep of the readiness backend (poll.c), and of the io_uring
 * backend whenever no transfer is in flight (uring.c).  Descriptors per
 * blocked thread: one (the eventfd), two while the thread has ever
 * waited with a deadline.
 *
 * Why poll(2) and not a per-thread epoll set: a wait is one poll call,
 * where epoll needed epoll_ctl to re-arm the descriptor and epoll_wait;
 * the set needs no descriptor of its own; and a descriptor closed while
 * registered (epoll's stale-registration quirk) cannot exist.
 *
 * Quirks:
 *  a. poll(2) says a regular file is always ready.  io/ never waits for
 *     one: it classifies the descriptor and makes the plain call.
 *  b. The eventfd and the timerfd stay readable until read (or re-armed),
 *     so each is drained once poll reports it; a stale event costs one
 *     extra loop, never a lost wake-up (the wake-up counter is the truth,
 *     reactor.c).  The eventfd is drained not on the way out of the wait
 *     it ended but before the thread's next sleep (settle): the woken
 *     thread is back one system call sooner.  Not inside the sleep:
 *     there the thread counts as asleep, and the read could take a new
 *     wake-up's write that the loop has not seen.
 *  c. Timed waits sleep on the timerfd with an absolute expiry, not on
 *     poll's own timeout: that one adds the thread's timer slack (50 us
 *     by default) to the wake-up.
 */
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "wait/backend.h"

struct timer {
	int fd;         /* -1 until the thread first waits with a deadline */
	int64_t armed;  /* expiry set on fd; CTX__NEVER if none */
};

static __thread struct timer tt = { .fd = -1, .armed = CTX__NEVER };
static __thread bool wake_unread; /* the eventfd ended a sleep (quirk b) */

void ctx__readiness_exit(void)
{
	if (tt.fd >= 0)
		close(tt.fd);
	tt.fd = -1;
	tt.armed = CTX__NEVER;
	wake_unread = false;
}

/* Arm the timer for `at` unless it is armed for it already. */
static int arm(int64_t at)
{
	if (tt.fd < 0) {
		tt.fd = timerfd_create(CLOCK_MONOTONIC,
				       TFD_CLOEXEC | TFD_NONBLOCK);
		if (tt.fd < 0)
			return errno;
	}
	if (at == tt.armed)
		return 0;
	struct itimerspec its = {
		.it_value = { .tv_sec = at / CTX_SEC, .tv_nsec = at % CTX_SEC },
	};
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm it */
	if (timerfd_settime(tt.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return errno;
	tt.armed = at;
	return 0;
}

static void drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0)
		v = 0; /* EAGAIN: someone else's stale event */
}

int ctx__readiness_sleep(int wakefd, struct pollfd *fds, nfds_t n,
			 int64_t limit, int *ready)
{
	nfds_t all = n;
	int e = limit == CTX__NEVER ? 0 : arm(limit);
	if (e)
		return e;
	fds[all++] = (struct pollfd){ .fd = wakefd, .events = POLLIN };
	if (limit != CTX__NEVER)
		fds[all++] = (struct pollfd){ .fd = tt.fd, .events = POLLIN };
	*ready = 0;
	int got = poll(fds, all, -1);
	if (got < 0)
		return errno == EINTR ? 0 : errno;
	if (fds[n].revents)
		wake_unread = true;
	if (limit != CTX__NEVER && fds[n + 1].revents) {
		drain(tt.fd);
		tt.armed = CTX__NEVER;
	}
	for (nfds_t i = 0; i < n; i++)
		*ready += fds[i].revents != 0;
	return 0;
}

void ctx__readiness_settle(int wakefd)
{
	if (wake_unread) {
		drain(wakefd);
		wake_unread = false;
	}
}
