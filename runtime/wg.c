/*
 * Wait groups (Go's sync.WaitGroup) with a wait a context can end.
 *
 * A counter that goes negative is a bug in the caller.  Go panics; here
 * the group is marked broken, a message goes to stderr, every waiter is
 * released and every later wait returns EINVAL, so the mistake is
 * reported without undefined behaviour.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ctx-internal.h"
#include "waitq.h"

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

int ctx_wg_wait(ctx_t *ctx, ctx_wg_t *wg)
{
	if (!ctx || !wg)
		return EINVAL;
	int e = ctx_err(ctx);
	struct ctx__waitq_node me;
	ctx__lock(&wg->lock);
	while (!e && wg->count > 0) {
		ctx__waitq_push(&wg->waiters, &me);
		e = ctx__park(ctx, &wg->lock);
		ctx__waitq_del(&wg->waiters, &me);
	}
	if (wg->broken)
		e = EINVAL;
	ctx__unlock(&wg->lock);
	return e;
}

void ctx_wg_free(ctx_wg_t *wg)
{
	CTX_ASSERT(!wg || ctx__waitq_empty(&wg->waiters)); /* none waiting */
	free(wg);
}
