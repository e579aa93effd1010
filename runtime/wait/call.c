/*
 * The skeleton's wait (call.h) and the back-off schedules.
 *
 * A wait on a descriptor is the reactor's (ctx__wait_one): the
 * descriptor, the context and its deadline together.  A parking wait is
 * ctx__park's (waitq.h): any wake-up makes the call try again, since
 * the try looks at what the waker left.  A pause is the same wait with
 * no descriptor, until its time: a wake-up that comes early (only an
 * advance of the manual clock sends one) only makes it look again.  A
 * pause never ends the call by itself: when its time comes, on either
 * clock under the manual one (call.h), or the descriptor turns ready
 * first, the call tries again; only the call's own deadline, the
 * context or an error end it.
 */
#include "wait/wait.h"

const struct ctx__backoff ctx__backoff_child = {
	.first = CTX_MSEC, .max = 50 * CTX_MSEC, .grow_pct = 100,
};
const struct ctx__backoff ctx__backoff_fifo = {
	.first = 100 * CTX_USEC, .max = 10 * CTX_MSEC, .grow_pct = 50,
};
const struct ctx__backoff ctx__backoff_lock = {
	.first = 50 * CTX_USEC, .max = 5 * CTX_MSEC, .grow_pct = 50,
};
const struct ctx__backoff ctx__backoff_peek = {
	.first = 50 * CTX_USEC, .max = 5 * CTX_MSEC, .grow_pct = 100,
};

int64_t ctx__backoff_next(const struct ctx__backoff *b, int64_t *step)
{
	int64_t s = *step;
	s = s ? s + s * b->grow_pct / 100 : b->first;
	*step = s < b->max ? s : b->max;
	return *step;
}

/* Wait with no descriptor until `until` or the context's end.  Not a
 * wait for a wake-up (want.wakes): nothing but the context or the time
 * can end a pause, so a wake-up that comes is stale and the reactor's
 * loop forgets it, and a pause with no deadline on a context with none
 * (ctx_wait) can sleep on the context itself, one futex call waking
 * every such waiter (wait/reactor.c: node_wait). */
static int pause_until(ctx_t *ctx, const struct ctx__want *how)
{
	struct ctx__want want = *how;
	want.fds = NULL;
	want.nfds = 0;
	want.wakes = false;
	return ctx__wait_for(ctx, &want);
}

int ctx__call_wait(ctx_t *ctx, struct ctx__call *c)
{
	if (c->lock) /* queued on an object: until a waker completes us */
		return ctx__park_call(ctx, c->lock, c->call);
	struct ctx__want how = { .deadline = c->deadline, .call = c->call };
	if (c->backoff) {
		how.pace = ctx__backoff_next(c->backoff, &c->step);
		int64_t at = ctx__add_sat(ctx_now(), how.pace);
		how.deadline = at < how.deadline ? at : how.deadline;
	}
	int e = c->fd < 0 ? pause_until(ctx, &how) :
			    ctx__wait_one(ctx, c->fd, (uint32_t)c->events, &how);
	/* The pause's time (on either clock), not the call's deadline:
	 * try again. */
	if (e == CTX__EXPIRED &&
	    (c->deadline == CTX__NEVER || ctx_now() < c->deadline))
		e = CTX__READY;
	return e;
}
