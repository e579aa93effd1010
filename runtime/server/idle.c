/*
 * Idle contexts (Go's conn.SetDeadline for idle timeouts, as a context):
 * a cancel node that ends with CTX_DEADLINE_EXCEEDED once idle_ns pass
 * without a ctx_touch.
 *
 * A touch must be cheap enough to follow every read and write, so it is
 * one atomic store of the time; nothing else learns of it.  The deadline
 * that moves is therefore not the node's `deadline` field, which waiting
 * threads copy once into their wait limit (reactor.c) and children copy
 * at creation: that field keeps the inherited deadline only.  The idle
 * deadline is enforced by the timer thread alone: it holds every idle
 * node, wakes at the deadline it last computed, re-reads the last touch,
 * and either ends the node or sleeps again until the new deadline.  A
 * waiter under the node sleeps with no limit of its own for it and is
 * woken through its link when the timer ends the node, so no waiter can
 * end early, and none spins when the deadline moves.
 *
 * The last touch is frozen when the node ends (a negative value), so a
 * touch after the end changes nothing and ctx_deadline keeps reporting
 * the deadline the node ended at.
 */
#include <stdlib.h>

#include "core/core.h"

struct idle_ctx {
	ctx_t base; /* first: an idle_ctx is a ctx_t */
	struct ctx__link ended; /* on itself: freezes `last` */
	_Atomic int64_t last;   /* the last touch; -1 - t once frozen */
	int64_t idle;
};

static int64_t last_touch(struct idle_ctx *i)
{
	int64_t v = atomic_load_explicit(&i->last, memory_order_relaxed);
	return v < 0 ? -1 - v : v;
}

static int64_t idle_due(struct idle_ctx *i)
{
	return ctx__add_sat(last_touch(i), i->idle);
}

/* The deadline hook (core/kind.h): the one that moves with each touch. */
static int64_t idle_deadline(ctx_t *n)
{
	return idle_due((struct idle_ctx *)n);
}

/* Freeze the last touch at v: false if a touch came after v was read. */
static bool freeze(struct idle_ctx *i, int64_t v)
{
	return v < 0 || atomic_compare_exchange_strong(&i->last, &v, -1 - v);
}

/* Ended by its idle time: the origin names where it was made. */
static void end_idle(ctx_t *n)
{
	ctx__cancel_by(n, CTX_DEADLINE_EXCEEDED, CTX_DEADLINE_EXCEEDED,
		       ctx__origin(CTX__BY_IDLE, 0, n->site));
}

/* The fire hook: the timer thread found the live node n at its idle
 * deadline, as last computed.  End it, unless a touch moved the
 * deadline since: then true, to be looked at again. */
static bool idle_fire(ctx_t *n)
{
	struct idle_ctx *i = (struct idle_ctx *)n;
	int64_t v = atomic_load(&i->last);
	if (v < 0 || ctx_now() < ctx__add_sat(v, i->idle) || !freeze(i, v))
		return true; /* touched since: sleep until the new deadline */
	end_idle(n);
	return false;
}

/* The node ended, whoever ended it: no touch moves its deadline now. */
static void ended_fire(struct ctx__link *l)
{
	struct idle_ctx *i = (struct idle_ctx *)((char *)l -
						 offsetof(struct idle_ctx, ended));
	int64_t v = atomic_load(&i->last);
	while (!freeze(i, v))
		;
	ctx__link_done(l);
}

static const struct ctx__kind_hooks idle_kind = {
	.name = ".WithIdle",
	.deadline = idle_deadline,
	.fire = idle_fire,
};

__attribute__((constructor)) static void idle_hooks(void)
{
	ctx__kinds[CTX__IDLE] = &idle_kind;
}

ctx_t *ctx_with_idle(ctx_t *parent, int64_t idle_ns)
{
	ctx_t *c = ctx__new_cancel(parent, CTX__IDLE, sizeof(struct idle_ctx),
				   CTX__NEVER, 0);
	if (!c)
		return NULL;
	struct idle_ctx *i = (struct idle_ctx *)c;
	i->idle = idle_ns > 0 ? idle_ns : 0;
	atomic_init(&i->last, ctx_now());
	i->ended.fire = ended_fire;
	if (ctx__link_add(c, &i->ended))
		ended_fire(&i->ended); /* the parent was done already */
	if (idle_ns <= 0) {
		end_idle(c);
		return c;
	}
	ctx__lock(&c->lock); /* a cancel of the parent may read flags */
	c->flags |= CTX__F_IN_HEAP;
	ctx__unlock(&c->lock);
	int e = atomic_load(&c->err) ? 0 : ctx__timer_add(c);
	if (e) {
		ctx_release(c);
		errno = e;
		return NULL;
	}
	return c;
}

void ctx_touch(ctx_t *ctx)
{
	ctx_t *c = ctx;
	while (c && c->kind != CTX__IDLE && c->kind != CTX__WITHOUT)
		c = c->parent;
	if (c && c->kind == CTX__WITHOUT)
		return; /* cut off from what is above, deadlines included */
	if (!c || atomic_load_explicit(&c->err, memory_order_acquire))
		return;
	struct idle_ctx *i = (struct idle_ctx *)c;
	int64_t now = ctx_now();
	int64_t v = atomic_load_explicit(&i->last, memory_order_relaxed);
	/* A store, unless another touch is later or the node just ended. */
	while (v >= 0 && v < now &&
	       !atomic_compare_exchange_weak_explicit(&i->last, &v, now,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}
