/*
 * poll(2), ppoll(2) and epoll_wait(2) with a context.
 *
 * ctx_poll and ctx_ppoll share one frame: the skeleton's refusal and
 * try (wait/call.h), the try being poll(2) with no timeout, which always
 * finishes; then, with nothing ready and time allowed, a wait on a copy
 * of the caller's array with room for what the wait adds to it, and the
 * revents copied back.  Only that wait differs: the reactor's for
 * ctx_poll (its backend adds two entries), ppoll(2) under the caller's
 * signal mask for ctx_ppoll (one: the context's done descriptor).
 *
 * An epoll descriptor is itself pollable, readable while its set has an
 * event, so ctx_epoll_wait is the skeleton with a descriptor: collect
 * without waiting, wait for the epoll descriptor, collect again (another
 * thread may have collected first).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wait/wait.h"

struct frame {
	struct ctx__call c; /* first: the try casts it back */
	struct pollfd *fds;
	nfds_t nfds;
	int n;              /* what the try's poll returned */
	int64_t deadline;
	nfds_t spare;       /* entries the wait adds after the caller's */
	const sigset_t *mask;
	/* Wait on all (the caller's entries, then room for spare more):
	 * how many are ready, 0 at the deadline, -1 with errno. */
	int (*wait)(ctx_t *ctx, struct frame *f, struct pollfd *all);
};

static int poll_now(struct ctx__call *c)
{
	struct frame *f = (struct frame *)c;
	while ((f->n = poll(f->fds, f->nfds, 0)) < 0 && errno == EINTR)
		;
	return f->n < 0 ? errno : CTX__DONE;
}

/* The wait on a copy of the caller's array; its revents go back to the
 * caller's when something is ready. */
static int wait_on_copy(ctx_t *ctx, struct frame *f)
{
	struct pollfd small[16];
	size_t len = f->nfds + f->spare;
	struct pollfd *all = len <= 16 ? small : malloc(len * sizeof(*all));
	if (!all)
		return ctx__fail(ENOMEM);
	if (f->nfds) /* fds may be NULL when there are none */
		memcpy(all, f->fds, f->nfds * sizeof(*all));
	int n = f->wait(ctx, f, all), e = errno;
	for (nfds_t i = 0; n > 0 && i < f->nfds; i++)
		f->fds[i].revents = all[i].revents;
	if (all != small)
		free(all);
	errno = e;
	return n;
}

static int run_frame(ctx_t *ctx, struct frame *f, int64_t timeout)
{
	f->c.try = poll_now;
	int e = ctx__call_run(ctx, &f->c);
	if (e)
		return ctx__fail(e);
	if (f->n != 0 || timeout == 0)
		return f->n;
	f->deadline = timeout < 0 ? CTX__NEVER :
				    ctx__add_sat(ctx_now(), timeout);
	return wait_on_copy(ctx, f);
}

/* ---- poll -------------------------------------------------------------- */

static int reactor_wait(ctx_t *ctx, struct frame *f, struct pollfd *all)
{
	struct ctx__want want = { .fds = all, .nfds = f->nfds,
				  .deadline = f->deadline };
	int e = ctx__wait_for(ctx, &want);
	if (e == CTX__EXPIRED)
		return 0;
	return e ? ctx__fail(e) : want.ready;
}

int ctx_poll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds, int64_t timeout)
{
	struct frame f = { .fds = fds, .nfds = nfds, .spare = 2,
			   .wait = reactor_wait };
	return run_frame(ctx, &f, timeout);
}

/* ---- ppoll ------------------------------------------------------------- */

/*
 * The mask must be in force exactly while the thread sleeps, or a signal
 * arriving between a pthread_sigmask and the sleep is handled and the
 * sleep never ends: that race is why ppoll(2) exists.  So the kernel does
 * it: one ppoll over the caller's descriptors and the context's done
 * descriptor, with the timeout cut at the context's deadline.  The done
 * descriptor stays with the context (one eventfd, made on first use).
 *
 * Under the manual clock the kernel's timeout would run on the real
 * one: the wait has none, and its own deadline is a child context's,
 * whose done descriptor the advance that passes it makes readable.
 */
static int ppoll_once(ctx_t *ctx, struct pollfd *all, nfds_t nfds,
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
	bool none = limit == CTX__NEVER || ctx__clock_is_manual();
	return ppoll(all, nfds + 1, none ? NULL : &ts, mask);
}

static int ppoll_wait(ctx_t *ctx, struct frame *f, struct pollfd *all)
{
	errno = 0;
	ctx_t *w = ctx__clock_is_manual() && f->deadline != CTX__NEVER ?
			   ctx_with_deadline(ctx, f->deadline) : NULL;
	int dfd = ctx_done_fd(w ? w : ctx), n = -1, e;
	if (dfd < 0 && errno)
		goto out;
	all[f->nfds] = (struct pollfd){ .fd = dfd, .events = POLLIN };
	do {
		n = ppoll_once(ctx, all, f->nfds, f->deadline, f->mask);
		if (n < 0)
			goto out; /* EINTR too: the mask is for that */
		n -= all[f->nfds].revents != 0; /* the done descriptor's */
		if ((e = ctx_err(ctx))) {
			n = ctx__fail(e);
			goto out;
		}
	} while (n == 0 && ctx_now() < f->deadline);
out:
	e = errno;
	if (w)
		ctx_release(w);
	errno = e;
	return n;
}

int ctx_ppoll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds, int64_t timeout,
	      const sigset_t *sigmask)
{
	struct frame f = { .fds = fds, .nfds = nfds, .spare = 1,
			   .mask = sigmask, .wait = ppoll_wait };
	return run_frame(ctx, &f, timeout);
}

/* ---- epoll_wait -------------------------------------------------------- */

struct collect {
	struct ctx__call c; /* first: the try casts it back */
	int epfd;
	struct epoll_event *events;
	int maxevents;
	int64_t timeout;
	int n;
};

static int collect_now(struct ctx__call *c)
{
	struct collect *w = (struct collect *)c;
	while ((w->n = epoll_wait(w->epfd, w->events, w->maxevents, 0)) < 0 &&
	       errno == EINTR)
		;
	if (w->n < 0)
		return errno;
	return w->n != 0 || w->timeout == 0 ? CTX__DONE : CTX__AGAIN;
}

int ctx_epoll_wait(ctx_t *ctx, int epfd, struct epoll_event *events,
		   int maxevents, int64_t timeout)
{
	struct collect w = {
		.c = { .try = collect_now, .fd = epfd, .events = POLLIN,
		       .deadline = timeout < 0 ? CTX__NEVER :
				   ctx__add_sat(ctx_now(), timeout) },
		.epfd = epfd, .events = events, .maxevents = maxevents,
		.timeout = timeout,
	};
	int e = ctx__call_run(ctx, &w.c);
	if (e == CTX__EXPIRED)
		return 0;
	return e ? ctx__fail(e) : w.n;
}
