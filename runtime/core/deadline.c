/*
 * Deadlines: when a node ends by time, and ctx_set_deadline.
 *
 * A deadline is a number compared with the clock by whoever looks
 * (ctx_err, a waiting thread, the timer thread); the first to see it
 * passed ends the node, once.  Each cancel node caches its effective
 * deadline in c.deadline (core.h, "Deadlines"), so that a look costs one
 * load and one compare until the time comes.  When it has come, the look
 * walks the chain: the earliest own deadline that passed ends its node,
 * and so n, with that node's cause; a deadline a kind inherits from
 * outside the chain (a merge's other parent's, a grace's) is its hook's
 * to end (kind.h); and if nothing passed, a deadline above was moved
 * later, and the cache is set right.
 *
 * ctx_set_deadline changes one node's own deadline, and never walks the
 * nodes below it: what they cached may now be early, which the walk
 * above mends when they look, or late, which needs no one below to
 * notice, since a node whose deadline came earlier is handed to the
 * timer thread (timer.c), whose end of it at the new time reaches every
 * node under it, waking the threads that wait there.  The moving
 * deadlines of kind.h (an idle context's) are the timer thread's alone
 * and never cached.
 */
#include "core/core.h"

/* What a walk of a chain found: the earliest deadline of all, and the
 * earliest that had passed at `now`, with its node and whether it is a
 * deadline the node's kind inherits. */
struct walk {
	int64_t now, fixed, passed;
	ctx_t *owner;
	bool inherited;
};

static void note(struct walk *w, ctx_t *a, int64_t t, bool inherited)
{
	if (t < w->fixed)
		w->fixed = t;
	if (t <= w->now && t < w->passed) {
		w->passed = t;
		w->owner = a;
		w->inherited = inherited;
	}
}

static void walk(ctx_t *n, struct walk *w)
{
	for (ctx_t *a = n; a; a = ctx__anc(a)) {
		note(w, a, atomic_load_explicit(&a->c.own,
						memory_order_relaxed), false);
		const struct ctx__kind_hooks *k = ctx__kind_of(a);
		if (k && k->inherit)
			note(w, a, k->inherit(a), true);
	}
}

int64_t ctx__fixed_deadline(ctx_t *n)
{
	struct walk w = { .now = INT64_MIN, .fixed = CTX__NEVER,
			  .passed = CTX__NEVER };
	if (n)
		walk(n, &w);
	return w.fixed;
}

/* The earliest of the fixed deadline and the moving deadlines of the
 * kinds at or above n (kind.h). */
int64_t ctx__deadline_of(ctx_t *n)
{
	int64_t d = ctx__fixed_deadline(n);
	for (ctx_t *a = n; a; a = ctx__anc(a)) {
		const struct ctx__kind_hooks *k = ctx__kind_of(a);
		int64_t t = k && k->deadline ? k->deadline(a) : CTX__NEVER;
		d = t < d ? t : d;
	}
	return d;
}

void ctx__end_by_deadline(ctx_t *n)
{
	ctx__cancel_by(n, CTX_DEADLINE_EXCEEDED, n->c.deadline_cause,
		       ctx__origin(CTX__BY_DEADLINE, 0, n->site));
}

/* The node above n that ended it may still be walking its tree on
 * another thread: end n now with that node's state rather than report
 * it live. */
static void follow(ctx_t *n)
{
	for (ctx_t *a = ctx__anc(n); a && !atomic_load_explicit(
		     &n->err, memory_order_relaxed); a = ctx__anc(a)) {
		if (!atomic_load_explicit(&a->err, memory_order_acquire))
			continue;
		int err, cause;
		uintptr_t end = ctx__end_take(a, &err, &cause);
		ctx__cancel_end(n, err, cause, end);
		ctx__end_put(end);
	}
}

/* Look at n's chain now: end what passed, or, when nothing did, set the
 * cache right if it still holds `seen`. */
static int expire(ctx_t *n, int64_t seen)
{
	struct walk w = { .now = ctx_now(), .fixed = CTX__NEVER,
			  .passed = CTX__NEVER };
	walk(n, &w);
	if (!w.owner) {
		atomic_compare_exchange_strong(&n->c.deadline, &seen, w.fixed);
		return atomic_load_explicit(&n->err, memory_order_acquire);
	}
	if (w.inherited)
		ctx__kind_of(w.owner)->expire(w.owner);
	else
		ctx__end_by_deadline(w.owner);
	follow(n);
	return atomic_load_explicit(&n->err, memory_order_acquire);
}

/* A live node with a deadline: is it past? */
int ctx__check_deadline(ctx_t *n)
{
	int64_t seen = ctx__load_deadline(n);
	if (ctx__surely_before(seen) || ctx_now() < seen)
		return 0;
	return expire(n, seen);
}

/* For the timer thread and the kinds: the walk, whatever the cache says
 * (it may be late for a moment after a deadline moved). */
int ctx__expire(ctx_t *n)
{
	int e = atomic_load_explicit(&n->err, memory_order_acquire);
	return e ? e : expire(n, ctx__load_deadline(n));
}

/* Have the timer thread end n at its deadline, for those who must learn
 * of it with no thread of the program inside the library (done fds,
 * after-funcs), or who sleep until a time that is now too late (a
 * deadline moved earlier).  If it holds n already, it looks at n's new
 * time.  Returns 0 or an error number (the thread cannot start). */
int ctx__watch_deadline(ctx_t *n)
{
	ctx__node_lock(&n->lock);
	bool live = !atomic_load_explicit(&n->err, memory_order_relaxed) &&
		    ctx__timer_due(n) != CTX__NEVER;
	bool add = live && !(n->flags & CTX__F_IN_HEAP);
	if (add)
		n->flags |= CTX__F_IN_HEAP;
	ctx__node_unlock(&n->lock);
	if (!add) {
		if (live)
			ctx__timer_rekey(n);
		return 0;
	}
	int e = ctx__timer_add(n);
	if (e) {
		ctx__node_lock(&n->lock);
		n->flags &= (uint8_t)~CTX__F_IN_HEAP;
		ctx__node_unlock(&n->lock);
	}
	return e;
}

/* What n inherits, from its ancestor and through its kind. */
static int64_t inherited(ctx_t *n)
{
	const struct ctx__kind_hooks *k = ctx__kind_of(n);
	int64_t d = ctx__fixed_deadline(ctx__anc(n));
	int64_t t = k && k->inherit ? k->inherit(n) : CTX__NEVER;
	return t < d ? t : d;
}

/* Under n's lock, so that two moves of one node store their caches in
 * the order of their own deadlines: set the own deadline (unless keep)
 * and the cache.  The old cache in *old; n's error, if it is done. */
static int move(ctx_t *n, bool keep, int64_t own, int64_t *old)
{
	ctx__node_lock(&n->lock);
	int e = atomic_load_explicit(&n->err, memory_order_relaxed);
	if (!e) {
		if (!keep)
			atomic_store_explicit(&n->c.own, own,
					      memory_order_relaxed);
		own = atomic_load_explicit(&n->c.own, memory_order_relaxed);
		int64_t in = inherited(n);
		*old = ctx__load_deadline(n);
		atomic_store_explicit(&n->c.deadline, own < in ? own : in,
				      memory_order_relaxed);
	}
	ctx__node_unlock(&n->lock);
	return e;
}

int ctx__deadline_changed(ctx_t *n)
{
	int64_t old;
	if (move(n, true, 0, &old))
		return 0;
	return ctx__load_deadline(n) < old ? ctx__watch_deadline(n) : 0;
}

/* The kinds with a cancel of their own, that a program makes (not a
 * signal, hang-up or idle context, whose end is their feature's). */
static bool settable(const ctx_t *c)
{
	return c->kind == CTX__CANCEL || c->kind == CTX__MERGE ||
	       c->kind == CTX__GRACE;
}

/* A deadline already past ends the context here and now; one that came
 * earlier is the timer thread's to enforce, and if that thread cannot
 * start the old deadline is put back (nothing else changed). */
int ctx_set_deadline(ctx_t *ctx, int64_t deadline_ns)
{
	if (!ctx || !settable(ctx))
		return EINVAL;
	if (CTX__CHECKING())
		ctx__check_ctx(ctx, "ctx_set_deadline", false);
	int64_t was = atomic_load_explicit(&ctx->c.own, memory_order_relaxed);
	int64_t old;
	int e = ctx__check(ctx);
	if (e || (e = move(ctx, false, deadline_ns, &old)))
		return e;
	if (deadline_ns != CTX__NEVER && deadline_ns <= ctx_now()) {
		ctx__end_by_deadline(ctx);
		return 0;
	}
	if (ctx__load_deadline(ctx) >= old || !(e = ctx__watch_deadline(ctx)))
		return 0;
	move(ctx, false, was, &old);
	return e;
}
