/*
 * Error groups (Go's errgroup.WithContext and SetLimit).
 *
 * Each ctx_group_go runs fn on a new thread with the group's context.
 * The first non-zero result cancels that context with the result as its
 * cause.  ctx_group_wait waits for every thread, joins them all (so none
 * is left running) and returns the first error.  With a limit, go blocks
 * until fewer than `limit` functions run, or until the group's context
 * ends (then fn never runs and go returns the context's error): the
 * group's context is what every thread of a group watches, so a go at
 * the limit must watch it too.  The wait for the group's end is not
 * cancellable, as Go's: a group ends when its functions return.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "wait/wait.h"

struct ctx_group {
	ctx_t *ctx;
	ctx__lock_t lock;
	int first_err;
	int limit;          /* < 0: none */
	int active;         /* functions running */
	struct ctx__waitq slot_waiters, idle_waiters;
	ctx_thread_t **threads; /* started and not yet joined */
	size_t nthreads, cap;
	pthread_attr_t *attr;   /* ctx_group_set_attr's copy, or NULL */
};

/* The origins of the group's own ends of its context (ctx_origin). */
static const struct ctx__origin by_error = {
	.how = CTX__BY_LIBRARY,
	.text = "ctx_group_go: a function of the group returned an error",
}, by_wait = {
	.how = CTX__BY_LIBRARY,
	.text = "ctx_group_wait: every function of the group returned",
}, by_free = {
	.how = CTX__BY_LIBRARY,
	.text = "ctx_group_free",
};

/* The group's context is a plain cancel node (ctx_with_cancel). */
static void end(ctx_group_t *g, int cause, const struct ctx__origin *o)
{
	ctx__cancel_by(g->ctx, CTX_CANCELED, cause ? cause : CTX_CANCELED, o);
}

struct job {
	ctx_group_t *g;
	int (*fn)(ctx_t *ctx, void *arg);
	void *arg;
};

ctx_group_t *ctx_group_new(ctx_t *parent)
{
	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	ctx_group_t *g = ctx__malloc(sizeof(*g));
	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	*g = (ctx_group_t){ .limit = -1 };
	ctx__waitq_init(&g->slot_waiters);
	ctx__waitq_init(&g->idle_waiters);
	if (!(g->ctx = ctx_with_cancel(parent))) {
		free(g);
		return NULL;
	}
	ctx__set_borrowed(g->ctx); /* lent by ctx_group_ctx: not to release */
	return g;
}

ctx_t *ctx_group_ctx(ctx_group_t *g) { return g ? g->ctx : NULL; }

int ctx_group_set_limit(ctx_group_t *g, int n)
{
	if (!g)
		return EINVAL;
	struct ctx__wakeups w = { 0 };
	ctx__lock(&g->lock);
	g->limit = n < 0 ? -1 : n;
	ctx__waitq_finish_all(&g->slot_waiters, 0, &w); /* a raise frees slots */
	ctx__unlock(&g->lock);
	ctx__wakeups_flush(&w);
	return 0;
}

static void *job_main(ctx_t *ctx, void *p)
{
	struct job *j = p;
	ctx_group_t *g = j->g;
	int r = j->fn(ctx, j->arg);
	free(j);
	ctx__lock(&g->lock);
	bool first = r && !g->first_err;
	if (first)
		g->first_err = r;
	CTX_ASSERT(g->active > 0);
	g->active--;
	struct ctx__wakeups w = { 0 };
	ctx__waitq_finish_all(&g->slot_waiters, 0, &w);
	if (g->active == 0)
		ctx__waitq_finish_all(&g->idle_waiters, 0, &w);
	ctx__unlock(&g->lock);
	ctx__wakeups_flush(&w);
	if (first)
		end(g, r, &by_error);
	return NULL;
}

/* Park on q until woken or ctx ends; under g->lock. */
static int park(ctx_group_t *g, struct ctx__waitq *q, ctx_t *ctx)
{
	struct ctx__waitq_node me;
	ctx__waitq_push(q, &me);
	int e = ctx__park(ctx, &g->lock);
	ctx__waitq_del(q, &me);
	return e;
}

static int reserve_thread_slot(ctx_group_t *g)
{
	if (g->nthreads < g->cap)
		return 0;
	size_t cap = g->cap ? 2 * g->cap : 8;
	ctx_thread_t **t = realloc(g->threads, cap * sizeof(*t));
	if (!t)
		return ENOMEM;
	g->threads = t;
	g->cap = cap;
	return 0;
}

static bool at_limit(ctx_group_t *g)
{
	return g->limit >= 0 && g->active >= g->limit;
}

/* Under g->lock, with a free slot: start j on a new thread. */
static int start(ctx_group_t *g, struct job *j)
{
	int e = reserve_thread_slot(g);
	if (!e)
		e = ctx_thread_create_attr(&g->threads[g->nthreads],
					   g->attr,
					   g->ctx, job_main, j);
	if (!e) {
		g->nthreads++;
		g->active++;
	}
	return e;
}

static int go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg), void *arg,
	      bool wait)
{
	if (!g || !fn)
		return EINVAL;
	struct job *j = ctx__malloc(sizeof(*j));
	if (!j)
		return ENOMEM;
	*j = (struct job){ .g = g, .fn = fn, .arg = arg };
	int e = 0;
	ctx__lock(&g->lock);
	while (!e && at_limit(g))
		e = wait ? park(g, &g->slot_waiters, g->ctx) : EAGAIN;
	if (!e)
		e = start(g, j);
	ctx__unlock(&g->lock);
	if (e)
		free(j);
	return e;
}

int ctx_group_go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg), void *arg)
{
	return go(g, fn, arg, true);
}

int ctx_group_try_go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg),
		     void *arg)
{
	return go(g, fn, arg, false);
}

/* Whether a caller's stack was given.  glibc keeps the stack's top and
 * pthread_attr_getstack reports top - size, so with no stack given (top
 * NULL) it reports an address that wraps to zero when size is added. */
static bool stack_addr_set(const pthread_attr_t *a)
{
	void *addr = NULL;
	size_t sz = 0;
	if (pthread_attr_getstack(a, &addr, &sz))
		return false;
	return addr && (uintptr_t)addr + sz != 0;
}

/* Copy what a pthread_attr_t can carry into g->attr.  A fixed stack
 * address would be shared by every thread, and a detached thread could
 * not be joined by the group: both are refused. */
static int copy_attr(pthread_attr_t *to, const pthread_attr_t *from)
{
	size_t sz;
	int v, e;
	struct sched_param sp;
	cpu_set_t cpus;
	if (stack_addr_set(from) || (!pthread_attr_getdetachstate(from, &v) &&
				     v != PTHREAD_CREATE_JOINABLE))
		return EINVAL;
	if ((e = pthread_attr_init(to)))
		return e;
	if (!(e = pthread_attr_getstacksize(from, &sz)))
		e = pthread_attr_setstacksize(to, sz);
	if (!e && !(e = pthread_attr_getguardsize(from, &sz)))
		e = pthread_attr_setguardsize(to, sz);
	if (!e && !(e = pthread_attr_getinheritsched(from, &v)))
		e = pthread_attr_setinheritsched(to, v);
	if (!e && !(e = pthread_attr_getschedpolicy(from, &v)))
		e = pthread_attr_setschedpolicy(to, v);
	if (!e && !(e = pthread_attr_getschedparam(from, &sp)))
		e = pthread_attr_setschedparam(to, &sp);
	if (!e && !(e = pthread_attr_getscope(from, &v)))
		e = pthread_attr_setscope(to, v);
	if (!e && !pthread_attr_getaffinity_np(from, sizeof(cpus), &cpus) &&
	    CPU_COUNT(&cpus) > 0 && CPU_COUNT(&cpus) < CPU_SETSIZE)
		e = pthread_attr_setaffinity_np(to, sizeof(cpus), &cpus);
	if (e)
		pthread_attr_destroy(to);
	return e;
}

static void free_attr(pthread_attr_t *a)
{
	if (a)
		pthread_attr_destroy(a);
	free(a);
}

int ctx_group_set_attr(ctx_group_t *g, const pthread_attr_t *attr)
{
	if (!g)
		return EINVAL;
	pthread_attr_t *copy = NULL;
	if (attr) {
		if (!(copy = ctx__malloc(sizeof(*copy))))
			return ENOMEM;
		int e = copy_attr(copy, attr);
		if (e) {
			free(copy);
			return e;
		}
	}
	ctx__lock(&g->lock);
	pthread_attr_t *old = g->attr;
	g->attr = copy;
	ctx__unlock(&g->lock);
	free_attr(old);
	return 0;
}

/* Wait until no function runs, then join every thread started. */
static void drain(ctx_group_t *g)
{
	ctx__lock(&g->lock);
	while (g->active > 0)
		if (park(g, &g->idle_waiters, ctx_background()))
			break; /* no reactor: fall back to joining below */
	ctx_thread_t **ts = g->threads;
	size_t n = g->nthreads;
	g->threads = NULL;
	g->nthreads = g->cap = 0;
	ctx__unlock(&g->lock);
	for (size_t i = 0; i < n; i++)
		ctx_thread_join(ctx_background(), ts[i], NULL);
	free(ts);
}

int ctx_group_wait(ctx_group_t *g)
{
	if (!g)
		return EINVAL;
	drain(g);
	end(g, g->first_err, &by_wait);
	ctx__lock(&g->lock);
	int e = g->first_err;
	ctx__unlock(&g->lock);
	return e;
}

/* Cancel what still runs, wait for it, and free everything. */
void ctx_group_free(ctx_group_t *g)
{
	if (!g)
		return;
	end(g, CTX_CANCELED, &by_free);
	drain(g);
	ctx_unref(g->ctx);
	free_attr(g->attr);
	free(g);
}
