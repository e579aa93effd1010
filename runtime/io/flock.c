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
 * The tries are the skeleton of every blocking call (wait/call.h) with
 * nothing to wait on: paced by the schedule ctx__backoff_lock, 50 us
 * growing by half up to 5 ms (about 200 tries a second, idle), so a
 * contended lock is taken within 5 ms of its release.
 */
#include <fcntl.h>
#include <sys/file.h>

#include "wait/wait.h"

/* One lock call: try(fd, arg), without waiting, until it succeeds,
 * fails otherwise than with a conflict (busy() says which errors are),
 * or -- unless once -- the context ends. */
struct lock_call {
	struct ctx__call c; /* first: the try casts it back */
	int fd;
	int (*lock)(int fd, void *arg);
	void *arg;
	bool (*busy)(int err);
	bool once;
};

static int lock_try(struct ctx__call *c)
{
	struct lock_call *l = (struct lock_call *)c;
	int r;
	if (!l->arg) /* a bad operation or lock: refused after the context */
		return EINVAL;
	while ((r = l->lock(l->fd, l->arg)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return CTX__DONE;
	return l->busy(errno) && !l->once ? CTX__AGAIN : errno;
}

static int lock_run(ctx_t *ctx, struct lock_call *l)
{
	l->c = (struct ctx__call){ .try = lock_try, .fd = -1,
				   .backoff = &ctx__backoff_lock,
				   .deadline = CTX__NEVER };
	int e = ctx__call_run(ctx, &l->c);
	return e ? ctx__fail(e) : 0;
}

static int flock_try(int fd, void *arg)
{
	return flock(fd, *(int *)arg | LOCK_NB);
}

static bool flock_busy(int e)
{
	return e == EWOULDBLOCK;
}

/* LOCK_NB is the caller's: one try; an unlock never conflicts. */
int ctx_flock(ctx_t *ctx, int fd, int operation)
{
	int kind = operation & ~LOCK_NB;
	bool bad = kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN;
	struct lock_call l = { .fd = fd, .lock = flock_try,
			       .arg = bad ? NULL : &kind, .busy = flock_busy,
			       .once = (operation & LOCK_NB) ||
				       kind == LOCK_UN };
	return lock_run(ctx, &l);
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
	struct lock_call l = { .fd = fd, .lock = ofd_try, .arg = lock,
			       .busy = ofd_busy,
			       .once = lock && lock->l_type == F_UNLCK };
	return lock_run(ctx, &l);
}
