/*
 * More of the system-call surface, on the skeleton of every blocking
 * call (wait/call.h): syncing a file to its storage, and waiting for a
 * signal.
 */
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "wait/wait.h"

/* ---- fsync, fdatasync -------------------------------------------------- */

/* Through the backend's transfer where it has one (io_uring:
 * IORING_OP_FSYNC, IORING_FSYNC_DATASYNC for fdatasync), so that the
 * context ends the wait; on the readiness backend the plain call, which
 * the kernel has no pollable or interruptible form of: once started,
 * nothing ends it early.  The try never says "not yet". */
struct sync_call {
	struct ctx__call c; /* first: the try casts it back */
	ctx_t *ctx;
	int fd;
	bool datasync;
};

static int sync_try(struct ctx__call *c)
{
	struct sync_call *s = (struct sync_call *)c;
	struct ctx__xfer x = { .fd = s->fd, .off = -1, .op = s->datasync ?
				CTX__XFER_FDATASYNC : CTX__XFER_FSYNC };
	struct ctx__want want = { .xfer = &x, .deadline = CTX__NEVER };
	int e = ctx__wait_for(s->ctx, &want), r;
	if (x.id) /* submitted: the kernel's result */
		return x.res >= 0 ? CTX__DONE :
		       x.res == -ECANCELED && e ? e : -x.res;
	if (e != CTX__BLOCKING)
		return e;
	while ((r = s->datasync ? fdatasync(s->fd) : fsync(s->fd)) < 0 &&
	       errno == EINTR)
		;
	return r < 0 ? errno : CTX__DONE;
}

static int sync_fd(ctx_t *ctx, int fd, bool datasync)
{
	struct sync_call s = { .c = { .try = sync_try }, .ctx = ctx,
			       .fd = fd, .datasync = datasync };
	int e = ctx__call_run(ctx, &s.c);
	return e ? ctx__fail(e) : 0;
}

int ctx_fsync(ctx_t *ctx, int fd)
{
	return sync_fd(ctx, fd, false);
}

int ctx_fdatasync(ctx_t *ctx, int fd)
{
	return sync_fd(ctx, fd, true);
}

/* ---- sigwait ---------------------------------------------------------- */

/*
 * A signalfd of the set turns readable while one of its signals is
 * pending for this thread or the process -- the ones sigwaitinfo would
 * take -- so the wait is one for the signalfd's readiness.  The signal
 * itself is taken with a zero-timeout sigtimedwait, one at a time, so
 * nothing is consumed unless it is returned: a context that ends the
 * wait leaves every pending signal pending.  (Waiting in sigtimedwait
 * slices instead would make each wake-up late by up to a slice, or cost
 * a wake-up per slice; the signalfd is one descriptor for the length of
 * the call, made at the first look that finds nothing.)
 */
struct sigwait_call {
	struct ctx__call c; /* first: the try casts it back */
	const sigset_t *set;
	siginfo_t *info;
	int signo;
};

static int sigwait_try(struct ctx__call *c)
{
	static const struct timespec zero = { 0, 0 };
	struct sigwait_call *w = (struct sigwait_call *)c;
	if (!w->set)
		return EINVAL;
	while ((w->signo = sigtimedwait(w->set, w->info, &zero)) < 0 &&
	       errno == EINTR)
		;
	if (w->signo >= 0)
		return CTX__DONE;
	if (errno != EAGAIN) /* EAGAIN: none pending, or another took it */
		return errno;
	if (c->fd < 0 &&
	    (c->fd = signalfd(-1, w->set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return errno;
	c->events = POLLIN;
	return CTX__AGAIN;
}

int ctx_sigwait(ctx_t *ctx, const sigset_t *set, siginfo_t *info)
{
	siginfo_t dummy;
	struct sigwait_call w = {
		.c = { .try = sigwait_try, .fd = -1, .deadline = CTX__NEVER },
		.set = set, .info = info ? info : &dummy,
	};
	int e = ctx__call_run(ctx, &w.c);
	if (w.c.fd >= 0)
		close(w.c.fd);
	return e ? ctx__fail(e) : w.signo;
}
