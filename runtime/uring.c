/*
 * The io_uring backend: the same waits as the epoll one, and transfers on
 * regular files that a context can interrupt (io.c sends them here).
 *
 * Chosen once per process: CTX_BACKEND=io_uring asks for it, and it is
 * used if a ring can be made (a kernel without io_uring, or a seccomp
 * filter or container that forbids it -- ENOSYS, EPERM -- falls back to
 * epoll silently, and ctx_backend() says "epoll").  The default is epoll,
 * which measured faster here for wake-ups (see README, Performance).
 *
 * Each thread that waits has a ring of its own, made on its first wait
 * and freed at thread exit; after fork() the child makes a fresh one.
 * One round of waiting submits, together: a poll on the descriptor, a
 * poll on the thread's wake-up eventfd (kept armed across rounds until it
 * fires), and an absolute CLOCK_MONOTONIC timeout for the earliest
 * deadline (kept armed across rounds until the time changes).  The poll on
 * the caller's descriptor is removed and waited for before the round
 * returns, since a pending poll holds the file open.  Stale completions
 * carry an older round number in their user data and are ignored.
 *
 * Quirks:
 *  a. A poll on an eventfd completes while its counter is non-zero, so the
 *     wake-up eventfd is read empty whenever its poll fires (the epoll
 *     backend never reads it).
 *  b. A transfer the context interrupts is cancelled with ASYNC_CANCEL and
 *     waited for: it may still complete, and then its byte count is the
 *     result, so no byte is lost.
 *  c. Every completion ends a round.  Requests that only clean up (poll
 *     and timeout removal, cancel) are marked IOSQE_CQE_SKIP_SUCCESS: a
 *     completion of theirs would end the next round at once, whose own
 *     clean-up would end the one after, and the thread would spin.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx-internal.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

enum { K_WAKE = 1, K_IO, K_TIMER, K_RW, K_CTL };
#define UD(n, kind) ((uint64_t)(n) << 8 | (kind))

struct ring {
	struct io_uring ring;
	bool ok;
	bool wake_armed;
	uint32_t round;           /* numbers rounds and transfers */
	struct ctx__uring_op *op; /* the transfer in flight, or NULL */
	int64_t timer_at;         /* the armed timeout's time, or NEVER */
	uint32_t timer_id;        /* and its number */
};

static __thread struct ring tr;
static bool on;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
	const char *b = getenv("CTX_BACKEND");
	struct io_uring probe;
	if (!b || strcmp(b, "io_uring") != 0)
		return;
	if (io_uring_queue_init(4, &probe, 0) == 0) {
		io_uring_queue_exit(&probe);
		on = true;
	}
}

bool ctx__uring_on(void)
{
	pthread_once(&once, choose);
	return on;
}

void ctx__uring_thread_exit(void)
{
	if (tr.ok)
		io_uring_queue_exit(&tr.ring);
	tr.ok = false;
	tr.wake_armed = false;
}

static int get_ring(struct io_uring **out)
{
	if (!tr.ok) {
		int e = io_uring_queue_init(16, &tr.ring, 0);
		if (e < 0)
			return -e;
		tr.ok = true;
		tr.wake_armed = false;
		tr.timer_at = CTX__NEVER;
	}
	*out = &tr.ring;
	return 0;
}

/* An SQE; when the ring is full, what is queued is submitted first. */
static struct io_uring_sqe *sqe_for(struct io_uring *ring, uint64_t data)
{
	struct io_uring_sqe *s = io_uring_get_sqe(ring);
	if (!s) {
		io_uring_submit(ring);
		s = io_uring_get_sqe(ring);
	}
	if (s)
		io_uring_sqe_set_data64(s, data);
	return s;
}

struct seen {
	bool io_done;  /* the poll on the descriptor completed */
	bool io;       /* ... with events (or an error the call will see) */
	bool timer;
};

static void on_cqe(struct io_uring_cqe *cqe, int wakefd, uint32_t round,
		   struct seen *seen)
{
	uint64_t d = io_uring_cqe_get_data64(cqe), v;
	int kind = d & 0xff;
	if (kind == K_WAKE) {
		tr.wake_armed = false;
		if (read(wakefd, &v, sizeof(v)) < 0) /* quirk a */
			v = 0;
	} else if (kind == K_RW && tr.op && d >> 8 == tr.op->id) {
		tr.op->done = true;
		tr.op->res = cqe->res;
	} else if (kind == K_IO && d >> 8 == round) {
		seen->io_done = true;
		seen->io = cqe->res != -ECANCELED;
	} else if (kind == K_TIMER && d >> 8 == tr.timer_id &&
		   cqe->res != -ECANCELED) {
		seen->timer = true;
		tr.timer_at = CTX__NEVER;
	}
}

/* Consume every completion there is. */
static void reap(struct io_uring *ring, int wakefd, uint32_t round,
		 struct seen *seen)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		on_cqe(cqe, wakefd, round, seen);
		io_uring_cqe_seen(ring, cqe);
	}
}

/* Wait for one completion (EINTR is a completion of nothing). */
static void wait_one(struct io_uring *ring, int wakefd, uint32_t round,
		     struct seen *seen)
{
	struct io_uring_cqe *cqe;
	if (io_uring_wait_cqe(ring, &cqe) == 0) {
		on_cqe(cqe, wakefd, round, seen);
		io_uring_cqe_seen(ring, cqe);
	}
	reap(ring, wakefd, round, seen);
}

static void arm_wake(struct io_uring *ring, int wakefd)
{
	struct io_uring_sqe *s;
	if (!tr.wake_armed && (s = sqe_for(ring, UD(0, K_WAKE)))) {
		io_uring_prep_poll_add(s, wakefd, POLLIN);
		tr.wake_armed = true;
	}
}

/* A request whose success need not be heard of: no completion at all,
 * which would otherwise end the next round early (and that round's own
 * clean-up the one after, for ever). */
static struct io_uring_sqe *quiet_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *s = sqe_for(ring, UD(0, K_CTL));
	if (s)
		s->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return s;
}

/* One timeout stays armed across rounds, as the epoll backend's timerfd
 * does; it is replaced only when the time changes. */
static void arm_timer(struct io_uring *ring, int64_t limit,
		      struct __kernel_timespec *ts, uint32_t round)
{
	struct io_uring_sqe *s;
	if (limit == tr.timer_at)
		return;
	if (tr.timer_at != CTX__NEVER && (s = quiet_sqe(ring)))
		io_uring_prep_timeout_remove(s, UD(tr.timer_id, K_TIMER), 0);
	tr.timer_at = CTX__NEVER;
	if (limit != CTX__NEVER && (s = sqe_for(ring, UD(round, K_TIMER)))) {
		io_uring_prep_timeout(s, ts, 0, IORING_TIMEOUT_ABS);
		tr.timer_at = limit;
		tr.timer_id = round;
	}
}

/* epoll's EPOLLIN and EPOLLOUT are poll's POLLIN and POLLOUT. */
static uint32_t poll_mask(uint32_t events)
{
	return events & (POLLIN | POLLOUT);
}

int ctx__uring_round(int wakefd, int fd, uint32_t events, int64_t limit,
		     bool *io)
{
	struct io_uring *ring;
	struct io_uring_sqe *s;
	struct seen seen = { 0 };
	int e = get_ring(&ring);
	if (e)
		return e;
	uint32_t round = ++tr.round;
	struct __kernel_timespec ts = {
		.tv_sec = limit / CTX_SEC, .tv_nsec = limit % CTX_SEC,
	};
	arm_wake(ring, wakefd);
	if (fd >= 0 && (s = sqe_for(ring, UD(round, K_IO))))
		io_uring_prep_poll_add(s, fd, poll_mask(events));
	arm_timer(ring, limit, &ts, round);
	e = io_uring_submit_and_wait(ring, 1);
	if (e < 0 && e != -EINTR)
		return -e;
	reap(ring, wakefd, round, &seen);
	if (fd >= 0 && !seen.io_done && (s = quiet_sqe(ring))) {
		io_uring_prep_poll_remove(s, UD(round, K_IO));
		io_uring_submit(ring);
		while (!seen.io_done)
			wait_one(ring, wakefd, round, &seen);
	}
	if (io)
		*io = seen.io;
	return 0;
}

int ctx__uring_start(struct ctx__uring_op *op, int wakefd)
{
	struct io_uring *ring;
	struct io_uring_sqe *s;
	int e = get_ring(&ring);
	if (e)
		return e;
	op->id = ++tr.round;
	op->done = false;
	if (!(s = sqe_for(ring, UD(op->id, K_RW))))
		return EAGAIN;
	if (op->write)
		io_uring_prep_write(s, op->fd, op->buf, (unsigned)op->len,
				    (uint64_t)-1);
	else
		io_uring_prep_read(s, op->fd, op->buf, (unsigned)op->len,
				   (uint64_t)-1);
	tr.op = op;
	arm_wake(ring, wakefd);
	io_uring_submit(ring);
	return 0;
}

/* Cancel op if it is still in flight, and wait until it is over. */
void ctx__uring_finish(struct ctx__uring_op *op, int wakefd)
{
	struct io_uring_sqe *s;
	struct seen seen = { 0 };
	struct io_uring *ring = &tr.ring;
	reap(ring, wakefd, 0, &seen);
	if (!op->done && (s = quiet_sqe(ring))) {
		io_uring_prep_cancel64(s, UD(op->id, K_RW), 0);
		io_uring_submit(ring);
	}
	while (!op->done)
		wait_one(ring, wakefd, 0, &seen);
	tr.op = NULL;
}

#else /* no liburing: there is no ring to choose */

bool ctx__uring_on(void) { return false; }
void ctx__uring_thread_exit(void) {}

int ctx__uring_round(int wakefd, int fd, uint32_t events, int64_t limit,
		     bool *io)
{
	(void)wakefd, (void)fd, (void)events, (void)limit, (void)io;
	return ENOSYS;
}

int ctx__uring_start(struct ctx__uring_op *op, int wakefd)
{
	(void)op, (void)wakefd;
	return ENOSYS;
}

void ctx__uring_finish(struct ctx__uring_op *op, int wakefd)
{
	(void)op, (void)wakefd;
}

#endif
