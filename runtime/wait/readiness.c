/*
 * The thread's wake-up descriptor, and sleeping until a descriptor is
 * ready, the wake-up descriptor is written or a time comes: one poll(2)
 * on the descriptors waited for and the wake-up descriptor.  The sleep of
 * the readiness backend (poll.c), and of the io_uring backend whenever no
 * transfer is in flight (uring.c).
 *
 * One descriptor per blocked thread.  The wake-up descriptor is a
 * timerfd, and it does both jobs: a waker makes it readable with the
 * TFD_IOC_SET_TICKS ioctl (which stores a count and wakes its pollers,
 * as a write to an eventfd does), and a timed wait arms it for its
 * deadline.  A timerfd's expiry is exact: the hrtimer behind it has no
 * slack, where poll's own timeout gets the thread's timer slack or 0.1%
 * of the timeout, whichever is more (50 us, or 60 ms on a one-minute
 * wait), and the lateness rows would pay it.  The ioctl needs
 * CONFIG_CHECKPOINT_RESTORE; where a kernel lacks it (ENOTTY, probed once
 * per process), the thread keeps an eventfd for wake-ups and makes a
 * timerfd of its own at its first timed wait: two descriptors.
 *
 * Why poll(2) and not a per-thread epoll set: a wait is one poll call,
 * where epoll needed epoll_ctl to re-arm the descriptor and epoll_wait;
 * the set needs no descriptor of its own; and a descriptor closed while
 * registered (epoll's stale-registration quirk) cannot exist.
 *
 * Quirks:
 *  a. poll(2) says a regular file is always ready.  io/ never waits for
 *     one: it classifies the descriptor and makes the plain call.
 *  b. The wake-up descriptor stays readable until read (or re-armed), so
 *     it is drained once poll reports it; a stale event costs one extra
 *     loop, never a lost wake-up (the wake-up counter is the truth,
 *     reactor.c).  It is drained not on the way out of the wait it ended
 *     but before the thread's next sleep (settle): the woken thread is
 *     back one system call sooner.  Not inside the sleep: there the
 *     thread counts as asleep, and the read could take a new wake-up's
 *     write that the loop has not seen.
 *  c. timerfd_settime clears a count the ioctl stored.  The thread arms
 *     its timer only while it counts as awake (settle), before it
 *     announces its sleep and looks at the counter one last time
 *     (reactor.c): a waker that writes finds the thread announced, so
 *     its write comes after the arming and survives it.  (Armed inside
 *     the sleep, after the announcement, a wake-up written in between
 *     was wiped out, and the thread slept to its deadline: a channel
 *     ping-pong under a 10 s context, tests/chan.c's order case.)
 *  d. Readable tells a wake-up from an expiry no better than a read's
 *     count does.  Once the descriptor was readable, the arming is
 *     forgotten if its time has come (the timer fired and is disarmed;
 *     the next timed sleep arms it again), and kept otherwise (a
 *     wake-up: the timer still runs, and a wait under the same deadline
 *     needs no system call to arm it).  The time is read from the
 *     timer's own clock, CLOCK_MONOTONIC.  A timer left armed past the
 *     wait it was for ends some later sleep early: one extra loop.
 */
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "wait/backend.h"

/* <linux/timerfd.h> clashes with <fcntl.h>; the number is the ABI's. */
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

enum { PROBE, TICKS, SPLIT };
static _Atomic int mode = PROBE; /* the same for every thread */

struct timer {
	int fd;         /* SPLIT: -1 until the thread first waits with a
			 * deadline; TICKS: unused (the wake-up fd is it) */
	int64_t armed;  /* expiry set on the timer; CTX__NEVER if none */
};

static __thread struct timer tt = { .fd = -1, .armed = CTX__NEVER };
static __thread bool wake_unread; /* the wake fd ended a sleep (quirk b) */

void ctx__readiness_exit(void)
{
	if (tt.fd >= 0)
		close(tt.fd);
	tt.fd = -1;
	tt.armed = CTX__NEVER;
	wake_unread = false;
}

static int kick(int fd)
{
	uint64_t one = 1;
	return ioctl(fd, TFD_IOC_SET_TICKS, &one);
}

static void drain(int fd)
{
	uint64_t v;
	if (read(fd, &v, sizeof(v)) < 0)
		v = 0; /* EAGAIN: someone else's stale event */
}

/* A timerfd that the ioctl makes readable, or -1 (errno) where the
 * kernel has no such ioctl: the process then uses eventfds. */
static int open_ticks(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0 || atomic_load_explicit(&mode, memory_order_relaxed) ==
			      TICKS)
		return fd;
	if (kick(fd) == 0) {
		drain(fd);
		atomic_store_explicit(&mode, TICKS, memory_order_relaxed);
		return fd;
	}
	close(fd);
	atomic_store_explicit(&mode, SPLIT, memory_order_relaxed);
	return -1;
}

int ctx__readiness_wakefd(void)
{
	int fd = -1;
	if (atomic_load_explicit(&mode, memory_order_relaxed) != SPLIT)
		fd = open_ticks();
	if (fd < 0 && atomic_load_explicit(&mode, memory_order_relaxed) ==
			      SPLIT)
		fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Test hook: wake-up descriptors made from now on are eventfds, as on a
 * kernel without the ioctl (tests/reactor.c, in a child of its own). */
void ctx__readiness_force_split(void)
{
	atomic_store_explicit(&mode, SPLIT, memory_order_relaxed);
}

void ctx__readiness_wake(int wakefd)
{
	if (atomic_load_explicit(&mode, memory_order_relaxed) == TICKS)
		kick(wakefd);
	else
		eventfd_write(wakefd, 1);
}

void ctx__readiness_woke(void)
{
	struct timespec ts;
	if (tt.armed == CTX__NEVER || clock_gettime(CLOCK_MONOTONIC, &ts) ||
	    (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec >= tt.armed)
		tt.armed = CTX__NEVER; /* quirk d */
}

/* The descriptor a timed sleep arms: the wake-up fd itself, or (SPLIT)
 * the thread's own timerfd, made on first need. */
static int timer_fd(int wakefd)
{
	if (atomic_load_explicit(&mode, memory_order_relaxed) == TICKS)
		return wakefd;
	if (tt.fd < 0)
		tt.fd = timerfd_create(CLOCK_MONOTONIC,
				       TFD_CLOEXEC | TFD_NONBLOCK);
	return tt.fd;
}

/* Arm the timer for `at` unless it is armed for it already. */
static int arm(int fd, int64_t at)
{
	if (fd < 0)
		return errno;
	if (at == tt.armed)
		return 0;
	struct itimerspec its = {
		.it_value = { .tv_sec = at / CTX_SEC, .tv_nsec = at % CTX_SEC },
	};
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm it */
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return errno;
	tt.armed = at;
	return 0;
}

/* The sleep: settle armed the timer already (quirk c). */
int ctx__readiness_sleep(int wakefd, struct pollfd *fds, nfds_t n,
			 int64_t limit, int *ready)
{
	nfds_t all = n;
	int tfd = limit == CTX__NEVER ? -1 : timer_fd(wakefd);
	fds[all++] = (struct pollfd){ .fd = wakefd, .events = POLLIN };
	if (tfd >= 0 && tfd != wakefd)
		fds[all++] = (struct pollfd){ .fd = tfd, .events = POLLIN };
	*ready = 0;
	int got = poll(fds, all, -1);
	if (got < 0)
		return errno == EINTR ? 0 : errno;
	if (fds[n].revents) {
		wake_unread = true;
		ctx__readiness_woke();
	}
	if (all == n + 2 && fds[n + 1].revents) {
		drain(tfd);
		tt.armed = CTX__NEVER;
	}
	for (nfds_t i = 0; i < n; i++)
		*ready += fds[i].revents != 0;
	return 0;
}

int ctx__readiness_settle(int wakefd, int64_t limit)
{
	if (wake_unread) {
		drain(wakefd);
		wake_unread = false;
	}
	return limit == CTX__NEVER ? 0 : arm(timer_fd(wakefd), limit);
}
