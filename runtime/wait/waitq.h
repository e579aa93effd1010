/*
 * A FIFO of parked threads, for the objects threads wait on besides
 * contexts: thread joins, wait groups, groups, channels.
 *
 * The pattern, always under the object's lock:
 *
 *	struct ctx__waitq_node me;
 *	ctx__waitq_push(&obj->q, &me)          (me.r is this thread's reactor)
 *	e = ctx__park(ctx, &obj->lock)         (unlocks, waits, relocks)
 *	if (me.done) ...the waker completed the operation for us...
 *	ctx__waitq_del(&obj->q, &me)           (a no-op if a waker popped it)
 *
 * A waker pops a node, fills in its result and sets done under the lock,
 * so a waiter that was cancelled at the same moment sees done and knows
 * the operation happened; the wake-up itself comes after the unlock
 * (struct ctx__wakeups).  No wake-up is lost: the thread
 * took its wake-up token in ctx__waitq_push, before any waker could find
 * it (see reactor.c, "Waking").
 */
#ifndef CTX_WAITQ_H
#define CTX_WAITQ_H

/* Included by wait/wait.h, after the reactor's declarations. */
#include "wait/wait.h"

struct ctx__waitq_node {
	struct ctx__waitq_node *next, **pprev; /* pprev NULL: not queued */
	struct ctx__reactor *r;
	void *elem;   /* for channels: where to copy from or to */
	int result;   /* set by the waker together with done */
	bool done;
};

struct ctx__waitq {
	struct ctx__waitq_node *head, **tail;
};

static inline void ctx__waitq_init(struct ctx__waitq *q)
{
	q->head = NULL;
	q->tail = &q->head;
}

static inline bool ctx__waitq_empty(const struct ctx__waitq *q)
{
	return !q->head;
}

/* Queue the calling thread.  Its wake-up token is taken here, before a
 * waker can find it.  Nodes live on the waiter's stack and are always
 * removed before its frame returns, which GCC's dangling-pointer check
 * cannot see. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
static inline void ctx__waitq_push(struct ctx__waitq *q,
				   struct ctx__waitq_node *n)
{
	n->r = ctx__reactor_self();
	ctx__reactor_prepare(n->r);
	n->done = false;
	n->result = 0;
	n->next = NULL;
	n->pprev = q->tail;
	*q->tail = n;
	q->tail = &n->next;
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

static inline void ctx__waitq_del(struct ctx__waitq *q,
				  struct ctx__waitq_node *n)
{
	if (!n->pprev)
		return;
	CTX_ASSERT(*n->pprev == n); /* queued on this list, intact */
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	else
		q->tail = n->pprev;
	n->pprev = NULL;
}

static inline struct ctx__waitq_node *ctx__waitq_pop(struct ctx__waitq *q)
{
	struct ctx__waitq_node *n = q->head;
	if (n)
		ctx__waitq_del(q, n);
	return n;
}

/*
 * Wake-ups owed, made after the object's lock is dropped: a thread woken
 * under the lock runs at once on this CPU, finds the lock held by its
 * waker, and both lose two context switches.  Each reactor is held
 * (ctx__reactor_hold) from the moment its node is completed, so that the
 * thread, which may see `done` and leave before the wake-up, cannot take
 * the reactor with it.  More than fit are woken at once, under the lock.
 */
struct ctx__wakeups {
	int n;
	struct ctx__reactor *r[8];
};

/* Complete n's operation with `result`; its wake-up goes to *w. */
static inline void ctx__waitq_finish(struct ctx__waitq_node *n, int result,
				     struct ctx__wakeups *w)
{
	struct ctx__reactor *r = n->r; /* n may go once done is seen */
	n->result = result;
	ctx__reactor_hold(r);
	/* Release: a waiter may look at done without the lock (cond.c). */
	__atomic_store_n(&n->done, true, __ATOMIC_RELEASE);
	if (w->n < 8) {
		w->r[w->n++] = r;
	} else {
		ctx__reactor_wake(r);
		ctx__reactor_release(r);
	}
}

static inline void ctx__waitq_finish_all(struct ctx__waitq *q, int result,
					 struct ctx__wakeups *w)
{
	for (struct ctx__waitq_node *n; (n = ctx__waitq_pop(q));)
		ctx__waitq_finish(n, result, w);
}

/* After the unlock: make the wake-ups owed. */
static inline void ctx__wakeups_flush(struct ctx__wakeups *w)
{
	for (int i = 0; i < w->n; i++) {
		ctx__reactor_wake(w->r[i]);
		ctx__reactor_release(w->r[i]);
	}
	w->n = 0;
}

/* Drop `lock`, wait for a wake-up or the context's end, take `lock`
 * again.  Returns 0 after a wake-up (the caller looks at its state) or
 * the context's error.  call names the libctx call, or is NULL. */
static inline int ctx__park_call(ctx_t *ctx, ctx__lock_t *lock,
				 const char *call)
{
	/* The token must predate every wake-up that can follow the unlock.
	 * ctx__waitq_push took it for the first park; a park again (after
	 * a stray wake-up) takes a fresh one here, under the lock: taken
	 * after the unlock, it could already count the wake-up that
	 * completes us, and we would sleep through it. */
	struct ctx__want how = { .deadline = CTX__NEVER, .call = call,
				 .parked = true };
	ctx__reactor_prepare(ctx__reactor_self());
	ctx__unlock(lock);
	int e = ctx__wait_one(ctx, -1, 0, &how);
	ctx__lock(lock);
	return e == CTX__READY ? 0 : e;
}

static inline int ctx__park(ctx_t *ctx, ctx__lock_t *lock)
{
	return ctx__park_call(ctx, lock, NULL);
}

#endif
