/*
 * Weighted semaphores, as Go's golang.org/x/sync/semaphore.Weighted.
 *
 * Waiters form a FIFO and are granted strictly in order: a large request
 * at the head is not passed by small ones behind it, even when those
 * would fit.  An acquire that its context ends takes nothing, and if it
 * stood at the head, the waiters behind it that now fit are let go.
 *
 * The fast path takes no lock: while nobody waits, acquire is a
 * compare-and-swap on `cur` and release a subtraction.  Queueing and
 * granting happen under the lock.  A thread about to queue counts itself
 * in `waiting` and then reads `cur`; a releaser subtracts from `cur` and
 * then reads `waiting`; both are sequentially consistent, so either the
 * waiter sees the tokens come back or the releaser sees the waiter (and
 * grants under the lock).  Granting uses the same compare-and-swap, since
 * a fast acquirer that looked before the waiter came may still be
 * taking tokens.
 */
#include <stdio.h>
#include <stdlib.h>

#include "wait/wait.h"

struct ctx_sem {
	int64_t size;
	_Atomic int64_t cur;     /* tokens held */
	_Atomic int waiting;     /* threads queued or about to queue */
	ctx__lock_t lock;
	struct ctx__waitq q;     /* nodes' elem points at their int64_t n */
};

ctx_sem_t *ctx_sem_new(int64_t size)
{
	if (size < 0) {
		errno = EINVAL;
		return NULL;
	}
	ctx_sem_t *s = ctx__malloc(sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	*s = (ctx_sem_t){ .size = size };
	ctx__waitq_init(&s->q);
	return s;
}

/* Take n tokens if they are free; false otherwise. */
static bool take(ctx_sem_t *s, int64_t n)
{
	int64_t c = atomic_load(&s->cur);
	while (s->size - c >= n)
		if (atomic_compare_exchange_weak(&s->cur, &c, c + n))
			return true;
	return false;
}

/* Under the lock: grant the head while it fits, in order. */
static void grant(ctx_sem_t *s, struct ctx__wakeups *w)
{
	struct ctx__waitq_node *h;
	while ((h = s->q.head) && take(s, *(int64_t *)h->elem)) {
		ctx__waitq_pop(&s->q);
		atomic_fetch_sub(&s->waiting, 1);
		ctx__waitq_finish(h, 0, w);
	}
}

bool ctx_sem_try_acquire(ctx_sem_t *s, int64_t n)
{
	if (!s || n < 0 || n > s->size || atomic_load(&s->waiting))
		return false;
	return take(s, n);
}

/* Queue for n tokens (under the lock) and wait.  0 once granted, else
 * the context's error with nothing taken. */
static int wait_grant(ctx_t *ctx, ctx_sem_t *s, int64_t n,
		      struct ctx__wakeups *w)
{
	struct ctx__waitq_node me = { 0 };
	int e = 0;
	ctx__waitq_push(&s->q, &me); /* counted in waiting by the caller */
	me.elem = &n;
	while (!e && !me.done)
		e = ctx__park(ctx, &s->lock);
	if (me.done && (e = ctx_err(ctx))) {
		/* Granted as the context ended: give it back, as
		 * x/sync/semaphore does, so the ended acquire took nothing. */
		atomic_fetch_sub(&s->cur, n);
		grant(s, w);
	} else if (!me.done) {
		ctx__waitq_del(&s->q, &me);
		atomic_fetch_sub(&s->waiting, 1);
		grant(s, w); /* those behind us may fit now */
	}
	return e;
}

int ctx_sem_acquire(ctx_t *ctx, ctx_sem_t *s, int64_t n)
{
	if (!ctx || !s || n < 0 || n > s->size)
		return EINVAL;
	int e = ctx_err(ctx);
	if (e)
		return e;
	/* A short spin while nobody queues: a holder that releases within
	 * a few hundred nanoseconds costs no sleep and wake-up, which with
	 * FIFO hand-off would otherwise come on every acquire once one
	 * thread queued (a convoy). */
	for (int i = 0; i < 64 && !atomic_load(&s->waiting); i++) {
		if (take(s, n))
			return 0;
		ctx__cpu_relax();
	}
	struct ctx__wakeups w = { 0 };
	ctx__lock(&s->lock);
	atomic_fetch_add(&s->waiting, 1);
	if (ctx__waitq_empty(&s->q) && take(s, n)) {
		atomic_fetch_sub(&s->waiting, 1);
		e = 0;
	} else {
		e = wait_grant(ctx, s, n, &w);
	}
	ctx__unlock(&s->lock);
	ctx__wakeups_flush(&w);
	return e;
}

void ctx_sem_release(ctx_sem_t *s, int64_t n)
{
	if (!s || n <= 0)
		return;
	if (atomic_fetch_sub(&s->cur, n) < n) {
		fprintf(stderr, "libctx: ctx_sem_release: released more "
				"than held\n");
		atomic_store(&s->cur, 0);
	}
	if (!atomic_load(&s->waiting))
		return;
	struct ctx__wakeups w = { 0 };
	ctx__lock(&s->lock);
	grant(s, &w);
	ctx__unlock(&s->lock);
	ctx__wakeups_flush(&w);
}

void ctx_sem_free(ctx_sem_t *s) { free(s); }
