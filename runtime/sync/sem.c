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

/*
 * An acquire, on the skeleton of every blocking call (wait/call.h).  The
 * first try takes the tokens at once when they are free, with a short
 * spin while nobody queues: a holder that releases within a few hundred
 * nanoseconds costs no sleep and wake-up, which with FIFO hand-off would
 * otherwise come on every acquire once one thread queued (a convoy).
 * Else, under the lock, it counts itself in `waiting` and queues for n
 * tokens (granted by grant(), in order), and the thread parks.  Ended by
 * the context, it takes nothing: a grant that came as the context ended
 * is given back, as x/sync/semaphore does, and if it stood at the head,
 * those behind it that fit now are let go.
 */
struct sem_call {
	struct ctx__call c;     /* first: the try casts it back */
	ctx_sem_t *s;
	int64_t n;
	bool locked;            /* the try took s->lock */
	bool queued;
	struct ctx__waitq_node me; /* elem points at n */
};

static int sem_try(struct ctx__call *c)
{
	struct sem_call *k = (struct sem_call *)c;
	ctx_sem_t *s = k->s;
	if (k->queued) /* a wake-up: were we granted? */
		return k->me.done ? CTX__DONE : CTX__AGAIN;
	for (int i = 0; i < 64 && !atomic_load(&s->waiting); i++) {
		if (take(s, k->n))
			return CTX__DONE;
		ctx__cpu_relax();
	}
	ctx__lock(&s->lock);
	k->locked = true;
	atomic_fetch_add(&s->waiting, 1);
	if (ctx__waitq_empty(&s->q) && take(s, k->n)) {
		atomic_fetch_sub(&s->waiting, 1);
		return CTX__DONE;
	}
	ctx__waitq_push(&s->q, &k->me);
	k->me.elem = &k->n;
	k->queued = true;
	return CTX__AGAIN;
}

/* Under the lock, after the wait of a queued acquire: 0 once granted,
 * else the context's error with nothing taken. */
static int sem_end(ctx_t *ctx, struct sem_call *k, int e,
		   struct ctx__wakeups *w)
{
	ctx_sem_t *s = k->s;
	if (k->queued && k->me.done && (e = ctx_err(ctx))) {
		atomic_fetch_sub(&s->cur, k->n); /* granted as ctx ended */
		grant(s, w);
	} else if (k->queued && !k->me.done) { /* never granted */
		ctx__waitq_del(&s->q, &k->me);
		atomic_fetch_sub(&s->waiting, 1);
		grant(s, w); /* those behind us may fit now */
	}
	return e;
}

int ctx_sem_acquire(ctx_t *ctx, ctx_sem_t *s, int64_t n)
{
	if (!ctx || !s || n < 0 || n > s->size)
		return EINVAL;
	struct sem_call k = {
		.c = { .try = sem_try, .fd = -1, .lock = &s->lock,
		       .deadline = CTX__NEVER },
		.s = s, .n = n,
	};
	struct ctx__wakeups w = { 0 };
	int e = ctx__call_run(ctx, &k.c);
	if (!k.locked)
		return e; /* refused, or taken in the spin */
	e = sem_end(ctx, &k, e, &w);
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
