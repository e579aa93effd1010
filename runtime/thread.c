/*
 * Threads that carry a context, and a join that a context can interrupt.
 *
 * The pthread is joinable.  When fn returns, the thread drops its
 * reference to the context, records the result and wakes a joiner parked
 * on it.  ctx_thread_join waits for that (cancellably), then reaps the
 * pthread with pthread_join, which by then only waits for the thread's
 * last instructions.  A join the context interrupts leaves the thread
 * joinable.  A detached thread frees its handle itself when fn returns.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "ctx-internal.h"
#include "waitq.h"

struct ctx_thread {
	pthread_t tid;
	ctx_t *ctx;
	void *(*fn)(ctx_t *ctx, void *arg);
	void *arg;
	void *result;
	ctx__lock_t lock;
	bool finished;          /* fn returned; under lock */
	bool detached;          /* under lock */
	struct ctx__waitq joiners;
};

static void *thread_main(void *p)
{
	ctx_thread_t *t = p;
	void *res = t->fn(t->ctx, t->arg);
	struct ctx__wakeups w = { 0 };
	ctx_unref(t->ctx);
	ctx__lock(&t->lock);
	t->result = res;
	t->finished = true;
	bool detached = t->detached;
	ctx__waitq_finish_all(&t->joiners, 0, &w);
	ctx__unlock(&t->lock);
	ctx__wakeups_flush(&w); /* t may be gone: the joiner frees it */
	if (detached)
		free(t);
	return NULL;
}

/* A detached pthread could never be reaped by ctx_thread_join, and
 * ctx_thread_detach is how a handle lets go: refuse detached attributes. */
static bool joinable(const pthread_attr_t *attr)
{
	int state;
	return !attr || (!pthread_attr_getdetachstate(attr, &state) &&
			 state == PTHREAD_CREATE_JOINABLE);
}

int ctx_thread_create_attr(ctx_thread_t **out, const pthread_attr_t *attr,
			   ctx_t *ctx, void *(*fn)(ctx_t *ctx, void *arg),
			   void *arg)
{
	if (!out || !ctx || !fn || !joinable(attr))
		return EINVAL;
	ctx_thread_t *t = ctx__malloc(sizeof(*t));
	if (!t)
		return ENOMEM;
	*t = (ctx_thread_t){ .ctx = ctx_ref(ctx), .fn = fn, .arg = arg };
	ctx__waitq_init(&t->joiners);
	int e = pthread_create(&t->tid, attr, thread_main, t);
	if (e) {
		ctx_unref(t->ctx);
		free(t);
		return e;
	}
	*out = t;
	return 0;
}

int ctx_thread_create(ctx_thread_t **out, ctx_t *ctx,
		      void *(*fn)(ctx_t *ctx, void *arg), void *arg)
{
	return ctx_thread_create_attr(out, NULL, ctx, fn, arg);
}

/* Wait, cancellably, until fn has returned. */
static int wait_finished(ctx_t *ctx, ctx_thread_t *t)
{
	struct ctx__waitq_node me;
	int e = 0;
	ctx__lock(&t->lock);
	while (!t->finished && !e) {
		ctx__waitq_push(&t->joiners, &me);
		e = ctx__park(ctx, &t->lock);
		ctx__waitq_del(&t->joiners, &me);
	}
	if (t->finished)
		e = 0; /* it finished as the context ended: the join wins */
	ctx__unlock(&t->lock);
	return e;
}

int ctx_thread_join(ctx_t *ctx, ctx_thread_t *t, void **result)
{
	if (!ctx || !t)
		return EINVAL;
	int e = ctx_err(ctx);
	if (e)
		return e;
	/* A context that can never end needs no parking: join directly. */
	if (ctx__node(ctx) && (e = wait_finished(ctx, t)))
		return e;
	pthread_join(t->tid, NULL);
	if (result)
		*result = t->result;
	CTX_ASSERT(t->finished && ctx__waitq_empty(&t->joiners));
	free(t);
	return 0;
}

int ctx_thread_detach(ctx_thread_t *t)
{
	if (!t)
		return EINVAL;
	ctx__lock(&t->lock);
	bool finished = t->finished;
	t->detached = true;
	pthread_detach(t->tid);
	ctx__unlock(&t->lock);
	if (finished)
		free(t);
	return 0;
}

/* A detached thread of the library's own (timer, after-func runner,
 * signal dispatcher): every signal blocked, since signals are for the
 * program's threads, and a small stack. */
int ctx__spawn(void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return e;
}
