/*
 * The io_uring backend: the same waits as the readiness one, and
 * transfers on regular files that a context can interrupt (io/ sends
 * them here).
 *
 * Chosen once per process (reactor.c): CTX_BACKEND=io_uring asks for it,
 * and it is used if a ring can be made and the kernel has what this file
 * relies on (IORING_FEAT_CQE_SKIP, 5.17; IORING_FEAT_RW_CUR_POS, 5.6).
 * A kernel without io_uring, one too old, or a seccomp filter or container
 * that forbids it (ENOSYS, EPERM) falls back to the readiness backend
 * silently, and ctx_backend() says "epoll".  The default is the
 * readiness backend, which measured faster here for wake-ups (see
 * README, Performance).
 *
 * Only a transfer waits in the ring.  A wait for readiness or a deadline
 * alone sleeps in poll(2), the sleep both backends share (readiness.c,
 * its timerfd too): the ring has nothing to add there and costs more per
 * wake-up.  A round on the ring submits the polls, waits, and must then remove the
 * polls still pending (each holds its file open) before it returns: the
 * woken thread made two io_uring_enter calls where poll(2) makes one, and
 * a same-CPU wake-up from ctx_read measured 1.21-1.30x epoll's (three
 * full `make bench` runs).  libuv chose the same split: the ring for file
 * operations, epoll for readiness.
 *
 * Each thread that makes a transfer has a ring of its own, made on its
 * first one and freed at thread exit; after fork() the child makes a
 * fresh one.
 * One round of waiting submits, together: a poll on each descriptor, a
 * poll on the thread's wake-up descriptor (readiness.c; kept armed
 * across the rounds of one transfer until it fires), and an absolute
 * CLOCK_MONOTONIC timeout
 * for the earliest deadline (kept armed across them until the time
 * changes).  Both are removed when the transfer ends (quirk e).  The poll on
 * the caller's descriptor is removed and waited for before the round
 * returns, since a pending poll holds the file open.  Stale completions
 * carry an older round number in their user data and are ignored.
 *
 * Quirks:
 *  a. A poll on the wake-up descriptor completes while its count is
 *     non-zero, so it is read empty whenever its poll fires.  The read is
 *     a ring request too, submitted with the removal of the round's polls
 *     in the one io_uring_enter that ends the round: a wake-up costs the
 *     woken thread no read(2) of its own.  Its completion is waited for
 *     before the round returns, so that it can never be in flight to
 *     take a later wake-up's write (and see quirk d).
 *  b. A transfer the context interrupts is cancelled with ASYNC_CANCEL and
 *     waited for: it may still complete, and then its byte count is the
 *     result, so no byte is lost.
 *  c. Every completion ends a round.  Requests that only clean up (poll
 *     and timeout removal, cancel) are marked IOSQE_CQE_SKIP_SUCCESS: a
 *     completion of theirs would end the next round at once, whose own
 *     clean-up would end the one after, and the thread would spin.
 *  d. The ring does not honour an eventfd's O_NONBLOCK (the wake-up
 *     descriptor is one where the kernel lacks TFD_IOC_SET_TICKS,
 *     readiness.c): a read of an empty one is parked on an internal
 *     poll until the next write
 *     (6.18 here), where read(2) fails with EAGAIN.  So the read of
 *     quirk a asks RWF_NOWAIT, which makes it fail at once instead: a
 *     read that finds the descriptor empty can never hold the round.
 *  e. Nothing of a transfer outlives it: its end removes the wake-up
 *     poll and the timeout and consumes every completion, so the ring is
 *     empty whenever the thread sleeps in poll(2) or starts the next
 *     transfer.  (Issue 21: the wake-up poll, left armed by one transfer,
 *     fired again while a later ctx_select slept in poll(2); the select
 *     read the eventfd empty itself, and the next transfer, finding the
 *     poll's completion, read the empty eventfd through the ring and
 *     waited for that read, past its deadline, for ever.)  It costs one
 *     io_uring_enter at the end of a transfer that had to wait; one the
 *     kernel completed inside its submission arms nothing and pays
 *     nothing.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wait/backend.h"

#ifdef HAVE_LIBURING
#include <liburing.h>

/* User data: the round (or transfer) number, the index of the descriptor
 * in the caller's set, and the kind of request. */
enum { K_WAKE = 1, K_IO, K_TIMER, K_RW, K_CTL, K_DRAIN };
#define UD(n, idx, kind) \
	((uint64_t)(n) << 32 | (uint64_t)(idx) << 8 | (kind))
#define UD_N(d) ((uint32_t)((d) >> 32))
#define UD_IDX(d) ((uint32_t)((d) >> 8) & 0xffffff)

struct ring {
	struct io_uring ring;
	bool ok;
	bool wake_armed;
	bool wake_unread;         /* the wake-up poll fired; read it empty */
	bool draining;            /* that read is submitted, not completed */
	int timers;               /* timeouts submitted, not yet completed */
	uint64_t wake_buf;        /* where that read puts the count */
	uint32_t round;           /* numbers rounds and transfers */
	struct ctx__xfer *op;     /* the transfer in flight, or NULL */
	int64_t timer_at;         /* the armed timeout's time, or NEVER */
	uint32_t timer_id;        /* and its number */
};

static __thread struct ring tr;

static bool usable(void)
{
#ifdef IORING_FEAT_CQE_SKIP
	struct io_uring probe;
	if (io_uring_queue_init(4, &probe, 0) != 0)
		return false;
	unsigned need = IORING_FEAT_CQE_SKIP | IORING_FEAT_RW_CUR_POS;
	bool ok = (probe.features & need) == need;
	io_uring_queue_exit(&probe);
	return ok;
#else
	return false; /* headers older than the kernel features we use */
#endif
}

/* The ring and everything in it go; the next transfer makes a new one. */
static void drop_ring(void)
{
	if (tr.ok)
		io_uring_queue_exit(&tr.ring);
	tr.ok = false;
	tr.wake_armed = false;
	tr.wake_unread = false;
	tr.draining = false;
	tr.timers = 0;
	tr.op = NULL;
}

static void thread_exit(void)
{
	ctx__readiness_exit();
	drop_ring();
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
		tr.timers = 0;
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

/* What one round is waiting for and what it saw. */
struct round {
	uint32_t n;
	struct pollfd *fds;
	nfds_t nfds;
	nfds_t pending;  /* polls submitted and not yet completed */
	int ready;
};

static void on_cqe(struct io_uring_cqe *cqe, struct round *rd)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	int kind = d & 0xff;
	if (kind == K_WAKE) {
		tr.wake_armed = false;
		/* Fired, not removed: read it empty (quirk a). */
		tr.wake_unread |= cqe->res > 0;
		if (cqe->res > 0)
			ctx__readiness_woke();
	} else if (kind == K_DRAIN) {
		tr.draining = false;
	} else if (kind == K_RW && tr.op && UD_N(d) == tr.op->id) {
		tr.op->done = true;
		tr.op->res = cqe->res;
	} else if (kind == K_IO && rd && UD_N(d) == rd->n &&
		   UD_IDX(d) < rd->nfds) {
		struct pollfd *p = &rd->fds[UD_IDX(d)];
		rd->pending--;
		if (cqe->res == -EBADF)
			p->revents = POLLNVAL;
		else if (cqe->res > 0)
			p->revents = (short)(cqe->res & (p->events | POLLERR |
							  POLLHUP | POLLNVAL));
		rd->ready += p->revents != 0;
	} else if (kind == K_TIMER) {
		tr.timers--;
		if (UD_N(d) == tr.timer_id && cqe->res != -ECANCELED)
			tr.timer_at = CTX__NEVER;
	}
}

/* Consume every completion there is. */
static void reap(struct io_uring *ring, struct round *rd)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		on_cqe(cqe, rd);
		io_uring_cqe_seen(ring, cqe);
	}
}

/* Wait for one completion (EINTR is a completion of nothing). */
static void wait_one(struct io_uring *ring, struct round *rd)
{
	struct io_uring_cqe *cqe;
	if (io_uring_wait_cqe(ring, &cqe) == 0) {
		on_cqe(cqe, rd);
		io_uring_cqe_seen(ring, cqe);
	}
	reap(ring, rd);
}

static void arm_wake(struct io_uring *ring, int wakefd)
{
	struct io_uring_sqe *s;
	if (!tr.wake_armed && (s = sqe_for(ring, UD(0, 0, K_WAKE)))) {
		io_uring_prep_poll_add(s, wakefd, POLLIN);
		tr.wake_armed = true;
	}
}

/* A request whose success need not be heard of: no completion at all,
 * which would otherwise end the next round early (quirk c). */
static struct io_uring_sqe *quiet_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *s = sqe_for(ring, UD(0, 0, K_CTL));
	if (s)
		s->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return s;
}

/* One timeout stays armed across rounds, as readiness.c's timerfd
 * does; it is replaced only when the time changes. */
static void arm_timer(struct io_uring *ring, int64_t limit,
		      struct __kernel_timespec *ts, uint32_t round)
{
	struct io_uring_sqe *s;
	if (limit == tr.timer_at)
		return;
	if (tr.timer_at != CTX__NEVER && (s = quiet_sqe(ring)))
		io_uring_prep_timeout_remove(s, UD(tr.timer_id, 0, K_TIMER),
					     0);
	tr.timer_at = CTX__NEVER;
	if (limit != CTX__NEVER &&
	    (s = sqe_for(ring, UD(round, 0, K_TIMER)))) {
		io_uring_prep_timeout(s, ts, 0, IORING_TIMEOUT_ABS);
		tr.timer_at = limit;
		tr.timer_id = round;
		tr.timers++;
	}
}

/* A poll on each descriptor of the set (poll(2) skips negative ones). */
static void add_polls(struct io_uring *ring, struct round *rd)
{
	struct io_uring_sqe *s;
	for (nfds_t i = 0; i < rd->nfds; i++) {
		rd->fds[i].revents = 0;
		if (rd->fds[i].fd < 0 ||
		    !(s = sqe_for(ring, UD(rd->n, i, K_IO))))
			continue;
		io_uring_prep_poll_add(s, rd->fds[i].fd,
				       (unsigned)rd->fds[i].events);
		rd->pending++;
	}
}

/* The end of a round, in one submission: read the wake-up descriptor
 * empty if its poll fired (quirk a), and remove the polls still pending,
 * each of which holds its file open; then wait until they are gone. */
static void end_round(struct io_uring *ring, int wakefd, struct round *rd)
{
	struct io_uring_sqe *s;
	bool queued = false;
	if (tr.wake_unread && (s = sqe_for(ring, UD(0, 0, K_DRAIN)))) {
		io_uring_prep_read(s, wakefd, &tr.wake_buf,
				   sizeof(tr.wake_buf), 0);
		s->rw_flags = RWF_NOWAIT; /* quirk d */
		tr.wake_unread = false;
		tr.draining = queued = true;
	}
	for (nfds_t i = 0; rd && rd->pending && i < rd->nfds; i++)
		if (rd->fds[i].fd >= 0 && !rd->fds[i].revents &&
		    (s = quiet_sqe(ring))) {
			io_uring_prep_poll_remove(s, UD(rd->n, i, K_IO));
			queued = true;
		}
	if (queued)
		io_uring_submit(ring);
	while ((rd && rd->pending) || tr.draining)
		wait_one(ring, rd);
}

static int sleep_ring(int wakefd, struct pollfd *fds, nfds_t n,
		      int64_t limit, int *ready)
{
	struct io_uring *ring;
	int e = get_ring(&ring);
	if (e)
		return e;
	struct round rd = { .n = ++tr.round, .fds = fds, .nfds = n };
	struct __kernel_timespec ts = {
		.tv_sec = limit / CTX_SEC, .tv_nsec = limit % CTX_SEC,
	};
	arm_wake(ring, wakefd);
	add_polls(ring, &rd);
	arm_timer(ring, limit, &ts, rd.n);
	e = io_uring_submit_and_wait(ring, 1);
	if (e >= 0 || e == -EINTR) {
		reap(ring, &rd);
		e = 0;
	}
	end_round(ring, wakefd, &rd);
	*ready = rd.ready;
	return -e;
}

/* The poll(2) sleeps leave the wake-up descriptor as the readiness
 * backend's do: they are the same sleep (readiness.c).  The ring's own
 * rounds read it empty themselves (quirk a). */
static int settle(int wakefd, int64_t limit)
{
	/* A round on the ring times itself (arm_timer). */
	return ctx__readiness_settle(wakefd, tr.op ? CTX__NEVER : limit);
}

/* Whether nothing of an earlier transfer is left on the ring: no request
 * in flight, no completion unread, no wake-up read owed (quirk e). */
static bool ring_quiet(void)
{
	return !tr.ok || (!tr.op && !tr.wake_armed && !tr.wake_unread &&
			  !tr.draining && !tr.timers &&
			  !io_uring_cq_ready(&tr.ring));
}

/* The ring while a transfer is in flight (its completion is one of the
 * things the round waits for); poll(2) otherwise (see the top). */
static int sleep_any(int wakefd, struct pollfd *fds, nfds_t n, int64_t limit,
		     int *ready)
{
	if (!tr.op) {
		CTX_ASSERT(ring_quiet());
		return ctx__readiness_sleep(wakefd, fds, n, limit, ready);
	}
	return sleep_ring(wakefd, fds, n, limit, ready);
}

static void prep_xfer(struct io_uring_sqe *s, struct ctx__xfer *x)
{
	switch (x->op) {
	case CTX__XFER_READ:
		io_uring_prep_readv(s, x->fd, x->iov, (unsigned)x->iovcnt,
				    (uint64_t)x->off);
		break;
	case CTX__XFER_WRITE:
		io_uring_prep_writev(s, x->fd, x->iov, (unsigned)x->iovcnt,
				     (uint64_t)x->off);
		break;
	case CTX__XFER_FSYNC:
		io_uring_prep_fsync(s, x->fd, 0);
		break;
	case CTX__XFER_FDATASYNC:
		io_uring_prep_fsync(s, x->fd, IORING_FSYNC_DATASYNC);
		break;
	}
}

/* The transfer's number is set only once it is really submitted, so a
 * failure here leaves nothing for xfer_finish to wait for.  A transfer
 * the kernel completes inside the submission (most buffered writes) is
 * seen at once, and the wait needs no round: nothing else is armed. */
static int xfer_start(int wakefd, struct ctx__xfer *x)
{
	struct io_uring *ring;
	struct io_uring_sqe *s;
	(void)wakefd; /* its poll is armed by a round, if one is needed */
	int e = get_ring(&ring);
	if (e)
		return e;
	uint32_t id = ++tr.round;
	if (!(s = sqe_for(ring, UD(id, 0, K_RW))))
		return EAGAIN;
	prep_xfer(s, x);
	x->done = false;
	tr.op = x;
	e = io_uring_submit(ring);
	if (e < 0) {
		/* The SQE stays queued, and a later submission would send
		 * it in: the ring goes with it (quirk e). */
		tr.op = NULL;
		drop_ring();
		return -e;
	}
	x->id = id;
	reap(ring, NULL);
	return 0;
}

/* The end of a transfer leaves the ring empty (quirk e): the wake-up
 * poll and the timeout, kept armed across its rounds, are removed, and
 * their completions, the wake-up descriptor's read and any other are
 * waited for and consumed. */
/* Queue the removal of what stays armed across rounds; false if there
 * was no SQE for it. */
static bool queue_removals(struct io_uring *ring)
{
	struct io_uring_sqe *s;
	if (tr.wake_armed) {
		if (!(s = quiet_sqe(ring)))
			return false;
		io_uring_prep_poll_remove(s, UD(0, 0, K_WAKE));
	}
	if (tr.timer_at != CTX__NEVER) {
		if (!(s = quiet_sqe(ring)))
			return false;
		io_uring_prep_timeout_remove(s, UD(tr.timer_id, 0, K_TIMER),
					     0);
		tr.timer_at = CTX__NEVER;
	}
	return true;
}

static void quiesce(struct io_uring *ring, int wakefd)
{
	/* Without removals sure to complete, waiting for them could last
	 * for ever: the ring goes instead, and what it held with it. */
	if (!queue_removals(ring) || io_uring_submit(ring) < 0) {
		drop_ring();
		return;
	}
	while (tr.wake_armed || tr.timers)
		wait_one(ring, NULL);
	end_round(ring, wakefd, NULL);
	reap(ring, NULL);
}

/* Cancel x if it is still in flight, and wait until it is over: it may
 * still complete, and then its count is the result (quirk b). */
static void xfer_finish(int wakefd, struct ctx__xfer *x)
{
	struct io_uring_sqe *s;
	struct io_uring *ring = &tr.ring;
	reap(ring, NULL);
	if (!x->done && (s = quiet_sqe(ring))) {
		io_uring_prep_cancel64(s, UD(x->id, 0, K_RW), 0);
		io_uring_submit(ring);
	}
	while (!x->done)
		wait_one(ring, NULL);
	tr.op = NULL;
	quiesce(ring, wakefd);
	CTX_ASSERT(ring_quiet());
}

const struct ctx__backend ctx__backend_uring = {
	.name = "io_uring",
	.usable = usable,
	.sleep = sleep_any,
	.settle = settle,
	.xfer_start = xfer_start,
	.xfer_finish = xfer_finish,
	.thread_exit = thread_exit,
};

#else /* no liburing: there is no ring to choose */

static bool usable(void) { return false; }

const struct ctx__backend ctx__backend_uring = {
	.name = "io_uring",
	.usable = usable,
};

#endif
