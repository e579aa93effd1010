/*
 * Condition variables whose waits a context can end, used with an
 * ordinary pthread_mutex_t.
 *
 * A ctx_cond_t is a FIFO of parked threads (waitq.h) behind a small lock
 * of its own, plus a count of the queued threads.  A waiter queues itself
 * and takes its wake-up token while it still holds the caller's mutex,
 * and only then releases the mutex: a signal that follows the waiter's
 * predicate check (which needs the mutex, or comes after a change made
 * under it) finds the waiter queued, so it cannot be lost.  Signal pops
 * one node and broadcast all; with nobody queued both are one load.
 *
 * The struct is public so that it can be embedded and zero-initialised;
 * the queue's tail pointer is NULL until the first waiter comes, which
 * this file reads as "empty".
 *
 * Lock order: the caller's mutex before the condition's own lock.  A
 * waiter takes its mutex again only after dropping the condition's lock.
 */
#include <stdlib.h>

#include "wait/wait.h"

_Static_assert(sizeof(ctx__lock_t) == sizeof(unsigned int),
	       "ctx_cond_t's lock field holds a ctx__lock_t");
_Static_assert(sizeof(struct ctx__waitq) == 2 * sizeof(void *),
	       "ctx_cond_t's queue fields hold a struct ctx__waitq");

static ctx__lock_t *lock_of(ctx_cond_t *c)
{
	return (ctx__lock_t *)(void *)&c->ctx__lock;
}

static _Atomic unsigned int *waiters_of(ctx_cond_t *c)
{
	return (_Atomic unsigned int *)(void *)&c->ctx__waiters;
}

/* The queue, made valid on first use (zero-initialised: tail NULL). */
static struct ctx__waitq *queue_of(ctx_cond_t *c)
{
	struct ctx__waitq *q = (struct ctx__waitq *)(void *)&c->ctx__head;
	if (!q->tail)
		ctx__waitq_init(q);
	return q;
}

/* Queued, with no lock held: sleep until our node is completed, ctx
 * ends or `deadline` passes.  A completed node is seen without the lock:
 * the waker does not touch it once done is set (waitq.h), and a woken
 * thread that queued behind the waker for the lock would cost a futex
 * round trip for nothing.  The token of the first sleep was taken when
 * we queued; the one for a sleep after a stray wake-up is taken under
 * the lock, as in ctx__park.  If we leave unsignalled, we take ourselves
 * off the queue. */
static int park(ctx_t *ctx, ctx_cond_t *c, struct ctx__waitq_node *me,
		int64_t deadline)
{
	ctx__lock_t *l = lock_of(c);
	for (;;) {
		struct ctx__want how = { .deadline = deadline,
					 .call = "ctx_cond_wait" };
		int e = ctx__wait_one(ctx, -1, 0, &how);
		if (__atomic_load_n(&me->done, __ATOMIC_ACQUIRE))
			return 0;
		ctx__lock(l);
		if (me->done)
			e = 0;
		else if (e && e != CTX__READY)
			ctx__waitq_del(queue_of(c), me);
		if (me->done || (e && e != CTX__READY)) {
			if (!me->done)
				atomic_fetch_sub(waiters_of(c), 1);
			ctx__unlock(l);
			return e == CTX__EXPIRED ? CTX_DEADLINE_EXCEEDED : e;
		}
		ctx__reactor_prepare(ctx__reactor_self());
		ctx__unlock(l);
	}
}

static int wait_until(ctx_t *ctx, ctx_cond_t *c, pthread_mutex_t *m,
		      int64_t deadline)
{
	if (!ctx || !c || !m)
		return EINVAL;
	int e = ctx_err(ctx);
	if (e)
		return e;
	if (deadline != CTX__NEVER && ctx_now() >= deadline)
		return CTX_DEADLINE_EXCEEDED;
	struct ctx__waitq_node me;
	ctx__lock(lock_of(c));
	ctx__waitq_push(queue_of(c), &me);
	atomic_fetch_add(waiters_of(c), 1);
	/* Queued, so a signal that follows the caller's check of its
	 * predicate finds us; the mutex goes after our own lock, not under
	 * it: a thread that the unlock wakes runs at once on this CPU, and
	 * its signal would find our lock held by a thread that cannot run. */
	ctx__unlock(lock_of(c));
	pthread_mutex_unlock(m);
	/* A signal that reached us counts even if ctx ended as it came:
	 * reporting the error would lose it for the other waiters. */
	e = park(ctx, c, &me, deadline);
	pthread_mutex_lock(m);
	return e;
}

int ctx_cond_wait(ctx_t *ctx, ctx_cond_t *c, pthread_mutex_t *m)
{
	return wait_until(ctx, c, m, CTX__NEVER);
}

int ctx_cond_wait_until(ctx_t *ctx, ctx_cond_t *c, pthread_mutex_t *m,
			int64_t deadline)
{
	return wait_until(ctx, c, m, deadline);
}

/* Complete up to `max` queued waiters. */
static void wake(ctx_cond_t *c, unsigned int max)
{
	if (!c || atomic_load(waiters_of(c)) == 0)
		return;
	struct ctx__wakeups w = { 0 };
	ctx__lock_t *l = lock_of(c);
	ctx__lock(l);
	struct ctx__waitq *q = queue_of(c);
	struct ctx__waitq_node *n;
	for (unsigned int i = 0; i < max && (n = ctx__waitq_pop(q)); i++) {
		atomic_fetch_sub(waiters_of(c), 1);
		ctx__waitq_finish(n, 0, &w);
	}
	ctx__unlock(l);
	ctx__wakeups_flush(&w);
}

void ctx_cond_signal(ctx_cond_t *c) { wake(c, 1); }

void ctx_cond_broadcast(ctx_cond_t *c) { wake(c, ~0u); }
