/*
 * Error groups (Go's errgroup.WithContext and SetLimit).
 *
 * Each ctx_group_go runs fn on a new thread with the group's context.
 * The first non-zero result cancels that context with the result as its
 * cause.  ctx_group_wait waits for every thread, joins them all (so none
 * is left running) and returns the first error.  With a limit, go blocks
 * until fewer than `limit` functions run.  Like Go's, these waits are not
 * cancellable: a group ends when its functions return, and they are the
 * ones watching the group's context.
 */
#include <stdlib.h>

#include "ctx-internal.h"
#include "waitq.h"

struct ctx_group {
	ctx_t *ctx;
	ctx__lock_t lock;
	int first_err;
	int limit;          /* < 0: none */
	int active;         /* functions running */
	struct ctx__waitq slot_waiters, idle_waiters;
	ctx_thread_t **threads; /* started and not yet joined */
	size_t nthreads, cap;
};

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
		ctx_cancel_cause(g->ctx, r);
	return NULL;
}

/* Park on q (uncancellably) until woken; under g->lock. */
static int park(ctx_group_t *g, struct ctx__waitq *q)
{
	struct ctx__waitq_node me;
	ctx__waitq_push(q, &me);
	int e = ctx__park(ctx_background(), &g->lock);
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

int ctx_group_go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg), void *arg)
{
	if (!g || !fn)
		return EINVAL;
	struct job *j = ctx__malloc(sizeof(*j));
	if (!j)
		return ENOMEM;
	*j = (struct job){ .g = g, .fn = fn, .arg = arg };
	int e = 0;
	ctx__lock(&g->lock);
	while (!e && g->limit >= 0 && g->active >= g->limit)
		e = park(g, &g->slot_waiters);
	if (!e)
		e = reserve_thread_slot(g);
	if (!e) {
		e = ctx_thread_create(&g->threads[g->nthreads], g->ctx,
				      job_main, j);
		if (!e) {
			g->nthreads++;
			g->active++;
		}
	}
	ctx__unlock(&g->lock);
	if (e)
		free(j);
	return e;
}

/* Wait until no function runs, then join every thread started. */
static void drain(ctx_group_t *g)
{
	ctx__lock(&g->lock);
	while (g->active > 0)
		if (park(g, &g->idle_waiters))
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
	ctx_cancel_cause(g->ctx, g->first_err);
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
	ctx_cancel(g->ctx);
	drain(g);
	ctx_unref(g->ctx);
	free(g);
}
