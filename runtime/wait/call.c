/*
 * The skeleton's wait (call.h) and the back-off schedules.
 *
 * A wait on a descriptor is the reactor's (ctx__wait_fd): the
 * descriptor, the context and its deadline together.  A parking wait is
 * ctx__park's (waitq.h): any wake-up makes the call try again, since
 * the try looks at what the waker left.  A pause is the
 * same wait with no descriptor, until its time: a wake-up that comes
 * early (none should: nothing else knows of the wait) only makes it
 * look again.  A pause never ends the call by itself: when its time
 * comes, or the descriptor turns ready first, the call tries again; only
 * the call's own deadline, the context or an error end it.
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

/* Wait with no descriptor until `until` or the context's end. */
static int pause_until(ctx_t *ctx, int64_t until)
{
	int e;
	do
		e = ctx__wait_fd(ctx, -1, 0, until);
	while (e == CTX__READY); /* a stray wake-up: look again */
	return e;
}

int ctx__call_wait(ctx_t *ctx, struct ctx__call *c)
{
	if (c->lock) /* queued on an object: until a waker completes us */
		return ctx__park(ctx, c->lock);
	int64_t until = c->deadline;
	if (c->backoff) {
		int64_t at = ctx__add_sat(ctx_now(),
					  ctx__backoff_next(c->backoff, &c->step));
		until = at < until ? at : until;
	}
	int e = c->fd < 0 ? pause_until(ctx, until) :
			    ctx__wait_fd(ctx, c->fd, (uint32_t)c->events, until);
	/* The pause's time, not the call's deadline: try again. */
	if (e == CTX__EXPIRED && until < c->deadline)
		e = CTX__READY;
	return e;
}
