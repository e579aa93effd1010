/*
 * More of the system-call surface: the waits that are neither a
 * descriptor's transfer (io.c) nor a lock (flock.c) nor an open
 * (fifo.c) -- syncing, ppoll, a program's own epoll set, waitid and
 * sigwait.  Each is built on the public waits (ctx_poll, ctx_sleep,
 * ctx_done_fd), so the wait loop can change beneath them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "wait/wait.h"

static int fail(int e)
{
	errno = e;
	return -1;
}

/* ---- fsync, fdatasync -------------------------------------------------- */

/* On the epoll backend a sync is the plain call: the kernel has no
 * pollable or interruptible form of it, so once started nothing ends it
 * early.  The io_uring backend does it as a ring transfer
 * (IORING_OP_FSYNC, IORING_FSYNC_DATASYNC for fdatasync). */
/* Through the backend's transfer where it has one (io_uring), so that
 * the context ends the wait; CTX__BLOCKING: none, the plain call. */
static int sync_fd(ctx_t *ctx, int fd, bool datasync)
{
	struct ctx__xfer x = { .fd = fd, .off = -1, .op = datasync ?
				CTX__XFER_FDATASYNC : CTX__XFER_FSYNC };
	struct ctx__want want = { .xfer = &x, .deadline = CTX__NEVER };
	int e = ctx__wait_for(ctx, &want);
	if (x.id) { /* submitted: the kernel's result */
		if (x.res >= 0)
			return 0;
		return fail(x.res == -ECANCELED && e ? e : -x.res);
	}
	if (e != CTX__BLOCKING)
		return fail(e);
	int r;
	while ((r = datasync ? fdatasync(fd) : fsync(fd)) < 0 &&
	       errno == EINTR)
		;
	return r;
}

int ctx_fsync(ctx_t *ctx, int fd)
{
	int e = ctx_err(ctx);
	return e ? fail(e) : sync_fd(ctx, fd, false);
}

int ctx_fdatasync(ctx_t *ctx, int fd)
{
	int e = ctx_err(ctx);
	return e ? fail(e) : sync_fd(ctx, fd, true);
}

/* ---- epoll_wait ------------------------------------------------------- */

/* An epoll descriptor is itself pollable: readable while its set has an
 * event.  So the wait is ctx_poll on it, then a non-blocking collect; if
 * another thread collected first, wait again for what time is left. */
int ctx_epoll_wait(ctx_t *ctx, int epfd, struct epoll_event *events,
		   int maxevents, int64_t timeout)
{
	int e = ctx_err(ctx), n;
	if (e)
		return fail(e);
	int64_t deadline = timeout < 0 ? CTX__NEVER :
					 ctx__add_sat(ctx_now(), timeout);
	for (;;) {
		while ((n = epoll_wait(epfd, events, maxevents, 0)) < 0 &&
		       errno == EINTR)
			;
		if (n != 0 || timeout == 0)
			return n;
		struct pollfd p = { .fd = epfd, .events = POLLIN };
		int64_t left = deadline == CTX__NEVER ? -1 :
							deadline - ctx_now();
		if (deadline != CTX__NEVER && left <= 0)
			return 0;
		n = ctx_poll(ctx, &p, 1, left);
		if (n <= 0)
			return n;
		if (p.revents & POLLNVAL)
			return fail(EBADF);
	}
}

/* ---- ppoll ------------------------------------------------------------ */

/*
 * The mask must be in force exactly while the thread sleeps, or a signal
 * arriving between a pthread_sigmask and the sleep is handled and the
 * sleep never ends: that race is why ppoll(2) exists.  So the kernel does
 * it: one ppoll over the caller's descriptors and the context's done
 * descriptor, with the timeout cut at the context's deadline.  The done
 * descriptor stays with the context (one eventfd, made on first use).
 */
static int ppoll_wait(ctx_t *ctx, struct pollfd *all, nfds_t nfds,
		      int64_t deadline, const sigset_t *mask)
{
	int64_t cdl, limit = deadline;
	if (ctx_deadline(ctx, &cdl) && cdl < limit)
		limit = cdl;
	int64_t left = limit - ctx_now();
	if (left < 0)
		left = 0;
	struct timespec ts = { .tv_sec = left / CTX_SEC,
			       .tv_nsec = left % CTX_SEC };
	return ppoll(all, nfds + 1, limit == CTX__NEVER ? NULL : &ts, mask);
}

int ctx_ppoll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds, int64_t timeout,
	      const sigset_t *sigmask)
{
	int e = ctx_err(ctx), n;
	if (e)
		return fail(e);
	while ((n = poll(fds, nfds, 0)) < 0 && errno == EINTR)
		;
	if (n != 0 || timeout == 0)
		return n;
	errno = 0;
	int dfd = ctx_done_fd(ctx);
	if (dfd < 0 && errno)
		return -1;
	int64_t deadline = timeout < 0 ? CTX__NEVER :
					 ctx__add_sat(ctx_now(), timeout);
	struct pollfd small[16];
	struct pollfd *all = nfds < 16 ? small :
					 malloc((nfds + 1) * sizeof(*all));
	if (!all)
		return fail(ENOMEM);
	if (nfds)
		memcpy(all, fds, nfds * sizeof(*fds));
	all[nfds] = (struct pollfd){ .fd = dfd, .events = POLLIN };
	for (;;) {
		n = ppoll_wait(ctx, all, nfds, deadline, sigmask);
		if (n < 0) {
			e = errno; /* EINTR too: the mask is for that */
			break;
		}
		if ((e = ctx_err(ctx)))
			break;
		if (n > 0 || ctx_now() >= deadline)
			break;
	}
	for (nfds_t i = 0; !e && i < nfds; i++)
		fds[i].revents = all[i].revents;
	if (all != small)
		free(all);
	return e ? fail(e) : n;
}

/* ---- sigwait ---------------------------------------------------------- */

/*
 * A signalfd of the set turns readable while one of its signals is
 * pending for this thread or the process -- the ones sigwaitinfo would
 * take -- so the wait is ctx_poll on it.  The signal itself is taken
 * with a zero-timeout sigtimedwait, one at a time, so nothing is
 * consumed unless it is returned: a context that ends the wait leaves
 * every pending signal pending.  (Waiting in sigtimedwait slices instead
 * would make each wake-up late by up to a slice, or cost a wake-up per
 * slice; the signalfd is one descriptor for the length of the call.)
 */
static int sigwait_take(const sigset_t *set, siginfo_t *info)
{
	static const struct timespec zero = { 0, 0 };
	int s;
	while ((s = sigtimedwait(set, info, &zero)) < 0 && errno == EINTR)
		;
	return s;
}

int ctx_sigwait(ctx_t *ctx, const sigset_t *set, siginfo_t *info)
{
	int e = ctx_err(ctx);
	if (e || !set)
		return fail(e ? e : EINVAL);
	siginfo_t dummy;
	if (!info)
		info = &dummy;
	int s = sigwait_take(set, info);
	if (s >= 0 || errno != EAGAIN)
		return s;
	int sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		return -1;
	struct pollfd p = { .fd = sfd, .events = POLLIN };
	do {
		s = ctx_poll(ctx, &p, 1, -1);
		if (s > 0)
			s = sigwait_take(set, info);
	} while (s < 0 && errno == EAGAIN); /* another thread took it */
	e = errno;
	close(sfd);
	errno = e;
	return s;
}

/* ---- waitid ----------------------------------------------------------- */

static int waitid_try(idtype_t idtype, id_t id, siginfo_t *info,
		      int options)
{
	memset(info, 0, sizeof(*info)); /* si_pid 0: nothing to report */
	int r;
	while ((r = waitid(idtype, id, info, options | WNOHANG)) < 0 &&
	       errno == EINTR)
		;
	return r;
}

/* The child's pidfd when one can stand for the wait: an exit of one
 * process (a pidfd turns readable only at exit).  -1 otherwise; *own
 * says whether the caller closes it. */
static int waitid_pidfd(idtype_t idtype, id_t id, int options, bool *own)
{
	*own = false;
	if (options & (WSTOPPED | WCONTINUED))
		return -1;
	if (idtype == P_PIDFD)
		return (int)id;
	if (idtype != P_PID)
		return -1;
	*own = true;
	return (int)syscall(SYS_pidfd_open, (pid_t)id, 0);
}

/* The wait once a first check found nothing.  With a pidfd, for its
 * readiness; otherwise (a group, any child, stops and continues) there
 * is nothing to wait on, so it checks again at growing intervals, from
 * 1 ms up to 50 ms, as ctx_waitpid does. */
static int waitid_wait(ctx_t *ctx, idtype_t idtype, id_t id,
		       siginfo_t *info, int options)
{
	bool own;
	int pfd = waitid_pidfd(idtype, id, options, &own), r, e;
	int64_t step = CTX_MSEC;
	struct pollfd p = { .fd = pfd, .events = POLLIN };
	for (;;) {
		if (pfd >= 0)
			e = ctx_poll(ctx, &p, 1, -1) < 0 ? errno : 0;
		else
			e = ctx_sleep(ctx, step);
		if (e) {
			r = -1;
			break;
		}
		step = step < 50 * CTX_MSEC ? step * 2 : step;
		r = waitid_try(idtype, id, info, options);
		e = errno;
		if (r < 0 || info->si_pid != 0)
			break;
	}
	if (own && pfd >= 0)
		close(pfd);
	errno = e;
	return r;
}

int ctx_waitid(ctx_t *ctx, idtype_t idtype, id_t id, siginfo_t *info,
	       int options)
{
	int e = ctx_err(ctx);
	if (e)
		return fail(e);
	if (idtype != P_PID && idtype != P_PIDFD && idtype != P_PGID &&
	    idtype != P_ALL)
		return fail(EINVAL);
	siginfo_t dummy;
	if (!info)
		info = &dummy;
	int r = waitid_try(idtype, id, info, options);
	if (r < 0 || info->si_pid != 0 || (options & WNOHANG))
		return r;
	return waitid_wait(ctx, idtype, id, info, options);
}
