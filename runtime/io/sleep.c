/*
 * Waiting for the context itself and sleeping: the skeleton of a
 * blocking call (wait/call.h) with nothing to try and no descriptor, so
 * that its wait is a pause until the time comes or the context ends.
 */
#include "wait/wait.h"

/* The time has come: a sleep until an absolute time looks at the clock
 * before its first pause and after it. */
static int time_came(struct ctx__call *c)
{
	return ctx_now() >= c->deadline ? CTX__DONE : CTX__AGAIN;
}

int ctx_wait(ctx_t *ctx)
{
	struct ctx__call c = { .fd = -1, .wait_first = true,
			       .deadline = CTX__NEVER };
	return ctx__call_run(ctx, &c);
}

int ctx_sleep(ctx_t *ctx, int64_t duration)
{
	if (duration <= 0)
		return ctx_err(ctx);
	struct ctx__call c = { .fd = -1, .wait_first = true,
			       .deadline = ctx__add_sat(ctx_now(), duration) };
	int e = ctx__call_run(ctx, &c);
	return e == CTX__EXPIRED ? 0 : e;
}

/* An absolute sleep: the deadline is the caller's, so a ticker that adds
 * its period to the last deadline keeps no error from one tick to the
 * next. */
int ctx_sleep_until(ctx_t *ctx, int64_t deadline)
{
	struct ctx__call c = { .try = time_came, .fd = -1,
			       .deadline = deadline };
	int e = ctx__call_run(ctx, &c);
	return e == CTX__EXPIRED ? 0 : e;
}
