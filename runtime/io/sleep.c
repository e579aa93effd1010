/*
 * Cancellable waits that are not a single descriptor's I/O: waiting for
 * the context itself, sleeping, poll(2) over many descriptors, and
 * waiting for a child process.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wait/wait.h"

/* Wait with no descriptor until the context ends or `deadline` passes. */
static int wait_until(ctx_t *ctx, int64_t deadline)
{
	int e;
	do
		e = ctx__wait_fd(ctx, -1, 0, deadline);
	while (e == CTX__READY); /* a stray wake-up: look again */
	return e;
}

int ctx_wait(ctx_t *ctx)
{
	int e = ctx_err(ctx);
	return e ? e : wait_until(ctx, CTX__NEVER);
}

int ctx_sleep(ctx_t *ctx, int64_t duration)
{
	int e = ctx_err(ctx);
	if (e || duration <= 0)
		return e;
	e = wait_until(ctx, ctx__add_sat(ctx_now(), duration));
	return e == CTX__EXPIRED ? 0 : e;
}

/* An absolute sleep: the deadline is the caller's, so a ticker that adds
 * its period to the last deadline keeps no error from one tick to the
 * next.  A wake-up a little early (none should come) sleeps again. */
int ctx_sleep_until(ctx_t *ctx, int64_t deadline)
{
	int e = ctx_err(ctx);
	while (!e && ctx_now() < deadline) {
		e = wait_until(ctx, deadline);
		if (e == CTX__EXPIRED)
			e = 0;
	}
	return e;
}

/* ---- poll ------------------------------------------------------------ */

int ctx_poll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds, int64_t timeout)
{
	int e = ctx_err(ctx), n;
	if (e)
		goto fail;
	while ((n = poll(fds, nfds, 0)) < 0 && errno == EINTR)
		;
	if (n != 0 || timeout == 0)
		return n;
	int64_t deadline = timeout < 0 ? CTX__NEVER :
					 ctx__add_sat(ctx_now(), timeout);
	struct pollfd small[16];
	struct pollfd *all = nfds + 2 <= 16 ? small :
					     malloc((nfds + 2) * sizeof(*all));
	if (!all) {
		e = ENOMEM;
		goto fail;
	}
	if (nfds) /* fds may be NULL when there are none */
		memcpy(all, fds, nfds * sizeof(*fds));
	struct ctx__want want = { .fds = all, .nfds = nfds,
				  .deadline = deadline };
	e = ctx__wait_for(ctx, &want);
	n = want.ready;
	for (nfds_t i = 0; !e && i < nfds; i++)
		fds[i].revents = all[i].revents;
	if (all != small)
		free(all);
	if (e == CTX__EXPIRED)
		return 0;
	if (!e)
		return n;
fail:
	errno = e;
	return -1;
}

/* ---- waitpid --------------------------------------------------------- */

/* A pidfd turns readable when the child exits.  Stops and continues
 * (WUNTRACED, WCONTINUED) and "any child" (pid <= 0) have no descriptor,
 * so those are checked at growing intervals, from 1 ms up to 50 ms.
 * There is no prompt form that leaves SIGCHLD to the program: a pidfd
 * names one process and reports only its exit, the list of children in
 * /proc/PID/task/TID/children is documented as unreliable while the
 * process runs (and misses children started during the wait), and a
 * SIGCHLD handler or a signalfd would take the signal from the program. */
static pid_t waitpid_poll(ctx_t *ctx, pid_t pid, int *status, int options)
{
	int64_t step = CTX_MSEC;
	for (;;) {
		pid_t r = waitpid(pid, status, options | WNOHANG);
		if (r != 0)
			return r;
		int e = ctx_sleep(ctx, step);
		if (e) {
			errno = e;
			return -1;
		}
		step = step < 50 * CTX_MSEC ? step * 2 : step;
	}
}

pid_t ctx_waitpid(ctx_t *ctx, pid_t pid, int *status, int options)
{
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	pid_t r = waitpid(pid, status, options | WNOHANG);
	if (r != 0 || (options & WNOHANG))
		return r;
	if (pid <= 0 || (options & (WUNTRACED | WCONTINUED)))
		return waitpid_poll(ctx, pid, status, options);
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return waitpid_poll(ctx, pid, status, options);
	for (;;) {
		e = ctx__wait_fd(ctx, pfd, POLLIN, CTX__NEVER);
		if (e != CTX__READY)
			break;
		r = waitpid(pid, status, options | WNOHANG);
		if (r != 0)
			break;
	}
	close(pfd);
	if (e != CTX__READY) {
		errno = e;
		return -1;
	}
	return r;
}
