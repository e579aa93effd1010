/*
 * Contexts made of two: ctx_with_merge (done when either of two is) and
 * ctx_with_grace (done a while after its parent is).
 *
 * A merge is a cancel node under its parent's node, like any child, with
 * a second parent: a link on the other's node ends the merge with the
 * other's error, cause, words and origin.  The link fires in the thread
 * that ends the other, so the merge ends before that ctx_cancel returns;
 * a link on the merge itself takes the first link off the other's node
 * when the merge ends, however it ends, so that a merge released leaves
 * nothing behind on either parent.  Its deadline is the earlier of the
 * two: the other's is what the kind inherits (kind.h).
 *
 * A grace node hangs under no node (ctx__anc): its parent's end does not
 * reach it.  A link on the parent's node notes the parent's end instead
 * and starts the grace; the node then ends at the end of the grace with
 * the parent's error, cause, words and origin.  Until the parent ends,
 * its deadline is the parent's plus the grace; after, the grace's end.
 * Both are what the kind inherits, so a waiter below sleeps until them
 * as it sleeps until an ancestor's deadline.  A grace that starts when a
 * parent is cancelled comes earlier than what the waiters below sleep
 * until: the node is then handed to the timer thread (deadline.c).
 *
 * Both take their second node's state with ctx__end_take, under that
 * node's lock, after its canceller has let its own lock go; no path
 * holds two node locks.
 */
#include <stdlib.h>

#include "core/core.h"

struct merge_ctx {
	ctx_t base;               /* first: a merge_ctx is a ctx_t */
	ctx_t *other;             /* a reference */
	ctx_t *onode;             /* the other's cancel node, or NULL */
	struct ctx__link on_other; /* on onode: ends the merge */
	struct ctx__link ended;   /* on the merge: takes on_other off */
};

struct grace_ctx {
	ctx_t base;               /* first: a grace_ctx is a ctx_t */
	ctx_t *pnode;             /* the parent's cancel node, or NULL */
	struct ctx__link on_parent; /* on pnode: starts the grace */
	struct ctx__link ended;   /* on the grace: takes on_parent off */
	int64_t grace;
	_Atomic int64_t until;    /* the grace's end; CTX__NEVER: not begun */
	int p_err, p_cause;       /* the parent's end, once until is set */
	uintptr_t p_end;
};

#define OF(type, field, p) ((type *)(void *)((char *)(p) - \
					     offsetof(type, field)))

/* ---- merge ----------------------------------------------------------- */

/* End n with the state of the done node from (a merge's other). */
static void end_like(ctx_t *n, ctx_t *from)
{
	int err, cause;
	uintptr_t end = ctx__end_take(from, &err, &cause);
	ctx__cancel_end(n, err, cause, end);
	ctx__end_put(end);
}

/* The other ended.  The merge is kept alive by a reference taken before
 * the link is let go: from then on a release of it may free it. */
static void other_fire(struct ctx__link *l)
{
	struct merge_ctx *m = OF(struct merge_ctx, on_other, l);
	bool live = ctx__try_ref(&m->base);
	ctx__link_done(l);
	if (!live)
		return; /* being freed: its free hook waits for nothing */
	end_like(&m->base, m->onode);
	ctx_unref(&m->base);
}

/* The merge ended, however: off the other's node, at once. */
static void merge_ended(struct ctx__link *l)
{
	struct merge_ctx *m = OF(struct merge_ctx, ended, l);
	ctx__link_del(m->onode, &m->on_other);
	ctx__link_done(l);
}

static int64_t merge_inherit(ctx_t *n)
{
	return ctx__fixed_deadline(((struct merge_ctx *)n)->onode);
}

/* The other's deadline passed: end it, which ends the merge. */
static void merge_expire(ctx_t *n)
{
	ctx__expire(((struct merge_ctx *)n)->onode);
}

/* Freed while live (unreferenced, never cancelled): both links go. */
static void merge_free(ctx_t *n)
{
	struct merge_ctx *m = (struct merge_ctx *)n;
	if (m->onode) {
		ctx__link_del(&m->base, &m->ended);
		ctx__link_del(m->onode, &m->on_other);
	}
	ctx_unref(m->other);
}

ctx_t *ctx__second_parent(ctx_t *c)
{
	return c->kind == CTX__MERGE ? ((struct merge_ctx *)c)->other : NULL;
}

static const struct ctx__kind_hooks merge_kind = {
	.name = ".WithMerge",
	.free = merge_free,
	.inherit = merge_inherit,
	.expire = merge_expire,
};

/* Hang the two links; the other being done already ends the merge now,
 * unless the parent's end came first (attach, at creation). */
static void link_other(struct merge_ctx *m)
{
	m->on_other.fire = other_fire;
	m->ended.fire = merge_ended;
	ctx__check(m->onode); /* a passed deadline ends it first */
	if (ctx__link_add(m->onode, &m->on_other))
		end_like(&m->base, m->onode);
	if (ctx__link_add(&m->base, &m->ended))
		merge_ended(&m->ended);
}

ctx_t *ctx_with_merge(ctx_t *parent, ctx_t *other)
{
	if (!parent || !other) {
		ctx__site_drop(); /* so that no later call takes it */
		errno = EINVAL;
		return NULL;
	}
	ctx_t *c = ctx__new_cancel(parent, CTX__MERGE, sizeof(struct merge_ctx),
				   CTX__NEVER, 0);
	if (!c)
		return NULL;
	struct merge_ctx *m = (struct merge_ctx *)c;
	m->other = ctx_ref(other);
	m->onode = ctx__node(other);
	if (!m->onode)
		return c; /* a root or under a without-cancel: never ends */
	int64_t d = ctx__fixed_deadline(m->onode);
	if (d < ctx__load_deadline(c))
		atomic_store_explicit(&c->c.deadline, d, memory_order_relaxed);
	link_other(m);
	return c;
}

/* ---- grace ----------------------------------------------------------- */

static int64_t grace_inherit(ctx_t *n)
{
	struct grace_ctx *g = (struct grace_ctx *)n;
	int64_t until = atomic_load(&g->until);
	if (until != CTX__NEVER || !g->pnode)
		return until;
	return ctx__add_sat(ctx__fixed_deadline(g->pnode), g->grace);
}

/* The grace is over: end with the parent's end, or, if the parent's
 * deadline passed unseen, end the parent, which starts the grace. */
static void grace_expire(ctx_t *n)
{
	struct grace_ctx *g = (struct grace_ctx *)n;
	int64_t until = atomic_load(&g->until);
	if (until == CTX__NEVER)
		ctx__expire(g->pnode);
	else if (until <= ctx_now())
		ctx__cancel_end(n, g->p_err, g->p_cause, g->p_end);
}

/* The parent's end, and when the grace ends: `from` plus the grace. */
static void note_parent_end(struct grace_ctx *g, int64_t from)
{
	g->p_end = ctx__end_take(g->pnode, &g->p_err, &g->p_cause);
	atomic_store(&g->until, ctx__add_sat(from, g->grace));
}

/* The parent ended: the grace runs from when it did (its deadline, if
 * that ended it unseen until now).  Waiters below may sleep until a
 * later time (the parent's deadline plus the grace, or none), so the
 * timer thread sees to the grace's end; if it cannot start, the grace
 * ends now rather than leave them asleep past it. */
static void parent_fire(struct ctx__link *l)
{
	struct grace_ctx *g = OF(struct grace_ctx, on_parent, l);
	bool live = ctx__try_ref(&g->base);
	ctx__link_done(l);
	if (!live)
		return;
	int64_t now = ctx_now(), d = ctx__fixed_deadline(g->pnode);
	note_parent_end(g, d < now ? d : now);
	if (ctx__deadline_changed(&g->base))
		ctx__cancel_end(&g->base, g->p_err, g->p_cause, g->p_end);
	ctx__check(&g->base); /* a grace already over ends it here */
	ctx_unref(&g->base);
}

/* The grace node ended, however: off the parent's node, at once. */
static void grace_ended(struct ctx__link *l)
{
	struct grace_ctx *g = OF(struct grace_ctx, ended, l);
	ctx__link_del(g->pnode, &g->on_parent);
	ctx__link_done(l);
}

static void grace_free(ctx_t *n)
{
	struct grace_ctx *g = (struct grace_ctx *)n;
	if (g->pnode) {
		ctx__link_del(&g->base, &g->ended);
		ctx__link_del(g->pnode, &g->on_parent);
	}
	ctx__end_put(g->p_end);
}

static const struct ctx__kind_hooks grace_kind = {
	.name = ".WithGrace",
	.free = grace_free,
	.inherit = grace_inherit,
	.expire = grace_expire,
};

__attribute__((constructor)) static void compose_hooks(void)
{
	ctx__kinds[CTX__MERGE] = &merge_kind;
	ctx__kinds[CTX__GRACE] = &grace_kind;
}

/* Hang the two links.  A parent done already starts the grace at
 * creation; nothing waits below yet, so the node's own deadline is all
 * that needs setting. */
static void link_parent(struct grace_ctx *g)
{
	g->on_parent.fire = parent_fire;
	g->ended.fire = grace_ended;
	ctx__check(g->pnode); /* a passed deadline ends it first */
	if (ctx__link_add(g->pnode, &g->on_parent))
		note_parent_end(g, ctx_now());
	atomic_store_explicit(&g->base.c.deadline, grace_inherit(&g->base),
			      memory_order_relaxed);
	if (ctx__link_add(&g->base, &g->ended))
		grace_ended(&g->ended);
}

/* grace_ns <= 0 is a plain child; it takes the site as this call would. */
ctx_t *ctx_with_grace(ctx_t *parent, int64_t grace_ns)
{
	if (grace_ns <= 0)
		return ctx_with_cancel(parent);
	ctx_t *c = ctx__new_cancel(parent, CTX__GRACE, sizeof(struct grace_ctx),
				   CTX__NEVER, 0);
	if (!c)
		return NULL;
	struct grace_ctx *g = (struct grace_ctx *)c;
	g->pnode = ctx__node(parent);
	g->grace = grace_ns;
	atomic_init(&g->until, CTX__NEVER);
	if (g->pnode)
		link_parent(g);
	return c;
}
