/*
 * File locks: flock(2) and open-file-description record locks
 * (F_OFD_SETLKW).  Neither has a pollable form, and io_uring has no lock
 * operation, so a blocked lock call is something no descriptor can end.
 *
 * The choices, and why this file takes the last:
 *  a. A helper thread blocked in the lock on a dup of the descriptor,
 *     unlocking when the caller has gone.  Both kinds of lock belong to
 *     the open file description, which the dup shares: a late helper's
 *     unlock would drop a lock the caller took meanwhile by another call
 *     (a retry with a fresh context), and a conversion (shared to
 *     exclusive) cannot be undone at all.  A lock held after an error
 *     would be possible.
 *  b. A signal that interrupts the blocked call: the library would have
 *     to own a signal and a handler installed without SA_RESTART (with
 *     it, flock and F_SETLKW restart), in every program.
 *  c. Trying with the non-blocking form (LOCK_NB, F_OFD_SETLK) and, while
 *     it conflicts, sleeping on the context between tries.  The context
 *     ends a sleep at once, and no lock is ever taken except by the
 *     caller's own successful try.  The cost is the delay between the
 *     holder's release and the next try, and fairness: a waiter blocked
 *     in the kernel is woken at the release and may win every time.
 * The sleeps grow from 50 us by half up to 5 ms (about 200 tries a
 * second, idle), so a contended lock is taken within 5 ms of its release.
 */
#include <fcntl.h>
#include <sys/file.h>

#include "wait/wait.h"

#define STEP_FIRST (50 * CTX_USEC)
#define STEP_MAX (5 * CTX_MSEC)

/* Call try(fd, arg) until it succeeds, fails otherwise than with a
 * conflict (busy() says which errors are), or the context ends. */
static int lock_retry(ctx_t *ctx, int fd, int (*try)(int fd, void *arg),
		      void *arg, bool (*busy)(int err), bool once)
{
	int64_t step = STEP_FIRST;
	for (;;) {
		int r, e;
		while ((r = try(fd, arg)) < 0 && errno == EINTR)
			;
		if (r == 0 || !busy(errno) || once)
			return r;
		if ((e = ctx_sleep(ctx, step))) {
			errno = e;
			return -1;
		}
		step += step / 2;
		if (step > STEP_MAX)
			step = STEP_MAX;
	}
}

static int flock_try(int fd, void *arg)
{
	return flock(fd, *(int *)arg | LOCK_NB);
}

static bool flock_busy(int e)
{
	return e == EWOULDBLOCK;
}

int ctx_flock(ctx_t *ctx, int fd, int operation)
{
	int e = ctx_err(ctx);
	int kind = operation & ~LOCK_NB;
	if (!e && kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
		e = EINVAL;
	if (e) {
		errno = e;
		return -1;
	}
	return lock_retry(ctx, fd, flock_try, &kind, flock_busy,
			  (operation & LOCK_NB) || kind == LOCK_UN);
}

static int ofd_try(int fd, void *arg)
{
	return fcntl(fd, F_OFD_SETLK, (struct flock *)arg);
}

static bool ofd_busy(int e)
{
	return e == EAGAIN || e == EACCES;
}

int ctx_lock_range(ctx_t *ctx, int fd, struct flock *lock)
{
	int e = ctx_err(ctx);
	if (!e && !lock)
		e = EINVAL;
	if (e) {
		errno = e;
		return -1;
	}
	return lock_retry(ctx, fd, ofd_try, lock, ofd_busy,
			  lock->l_type == F_UNLCK);
}
