/*
 * Wait groups (Go's sync.WaitGroup) with a wait a context can end.
 *
 * A counter that goes negative is a bug in the caller.  Go panics; here
 * the group is marked broken, a message goes to stderr, every waiter is
 * released and every later wait returns EINVAL, so the mistake is
 * reported without undefined behaviour.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "wait/wait.h"

struct ctx_wg {
	ctx__lock_t lock;
	long count;
	bool broken;
	struct ctx__waitq waiters;
};

ctx_wg_t *ctx_wg_new(void)
{
	ctx_wg_t *wg = ctx__malloc(sizeof(*wg));
	if (!wg) {
		errno = ENOMEM;
		return NULL;
	}
	*wg = (ctx_wg_t){ .count = 0 };
	ctx__waitq_init(&wg->waiters);
	return wg;
}

void ctx_wg_add(ctx_wg_t *wg, int delta)
{
	struct ctx__wakeups w = { 0 };
	if (!wg)
		return;
	ctx__lock(&wg->lock);
	wg->count += delta;
	if (wg->count < 0 && !wg->broken) {
		wg->broken = true;
		fprintf(stderr, "libctx: ctx_wg_add: negative wait group "
				"counter (%ld)\n", wg->count);
	}
	if (wg->count <= 0)
		ctx__waitq_finish_all(&wg->waiters, 0, &w);
	ctx__unlock(&wg->lock);
	ctx__wakeups_flush(&w);
}

void ctx_wg_done(ctx_wg_t *wg) { ctx_wg_add(wg, -1); }

/* The wait, on the skeleton of every blocking call (wait/call.h): the
 * try looks at the counter under the lock and, above zero, queues the
 * thread to park until a ctx_wg_add brings it down. */
struct wg_call {
	struct ctx__call c;     /* first: the try casts it back */
	ctx_wg_t *wg;
	bool locked;            /* the try took wg->lock */
	struct ctx__waitq_node me;
};

static int wg_try(struct ctx__call *c)
{
	struct wg_call *k = (struct wg_call *)c;
	if (!k->locked) {
		ctx__lock(&k->wg->lock);
		k->locked = true;
	} else { /* after a wake-up: out of the queue, if still in it */
		ctx__waitq_del(&k->wg->waiters, &k->me);
	}
	if (k->wg->count <= 0)
		return CTX__DONE;
	ctx__waitq_push(&k->wg->waiters, &k->me);
	return CTX__AGAIN;
}

/* A broken group (a negative count) answers EINVAL, done context or not. */
int ctx_wg_wait(ctx_t *ctx, ctx_wg_t *wg)
{
	if (!ctx || !wg)
		return EINVAL;
	struct wg_call k = {
		.c = { .try = wg_try, .fd = -1, .lock = &wg->lock,
		       .deadline = CTX__NEVER },
		.wg = wg,
	};
	int e = ctx__call_run(ctx, &k.c);
	if (!k.locked)
		ctx__lock(&wg->lock);
	ctx__waitq_del(&wg->waiters, &k.me);
	if (wg->broken)
		e = EINVAL;
	ctx__unlock(&wg->lock);
	return e;
}

/* ---- ctx_wg_go ------------------------------------------------------ */

struct wg_job {
	ctx_wg_t *wg;
	ctx_t *ctx;
	void (*fn)(ctx_t *ctx, void *arg);
	void *arg;
	bool known;             /* started under the manual clock */
};

/* The reference to ctx goes before the done: a waiter that returns, and
 * a program that exits after it, find no library work left for this
 * thread (its context released, its job freed).  Under the manual clock
 * the thread is known from before its creation until after its done
 * (wait/clock.c). */
static void *wg_job_main(void *p)
{
	struct wg_job j = *(struct wg_job *)p;
	free(p);
	if (j.known)
		ctx__clock_adopt();
	j.fn(j.ctx, j.arg);
	ctx_unref(j.ctx);
	ctx_wg_done(j.wg);
	if (j.known)
		ctx__clock_leave();
	return NULL;
}

int ctx_wg_go(ctx_wg_t *wg, ctx_t *ctx, void (*fn)(ctx_t *ctx, void *arg),
	      void *arg)
{
	if (!wg || !ctx || !fn)
		return EINVAL;
	struct wg_job *j = ctx__malloc(sizeof(*j));
	if (!j)
		return ENOMEM;
	*j = (struct wg_job){ .wg = wg, .ctx = ctx_ref(ctx), .fn = fn,
			      .arg = arg };
	pthread_attr_t attr;
	pthread_t t;
	int e = pthread_attr_init(&attr);
	if (!e) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ctx_wg_add(wg, 1); /* before the thread can be done */
		j->known = ctx__clock_spawning();
		e = pthread_create(&t, &attr, wg_job_main, j);
		pthread_attr_destroy(&attr);
		if (e && j->known)
			ctx__clock_unspawn();
		if (e)
			ctx_wg_add(wg, -1);
	}
	if (e) {
		ctx_unref(j->ctx);
		free(j);
	}
	return e;
}

void ctx_wg_free(ctx_wg_t *wg)
{
	CTX_ASSERT(!wg || ctx__waitq_empty(&wg->waiters)); /* none waiting */
	free(wg);
}
