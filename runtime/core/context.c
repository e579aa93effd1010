/*
 * The context tree: creation, cancellation, reference counting, queries.
 *
 * Creating and cancelling a context is user-space work only: a malloc, a
 * lock, a list splice.  A deadline is a number compared with the clock by
 * whoever looks (ctx_err, a waiting thread, the timer thread); the first
 * to see it passed performs the cancellation, once, under the node lock.
 *
 * Only cancel nodes (WithCancel, WithDeadline, WithTimeout, WithSignals,
 * ...) carry state and children.  A value or without-cancel context
 * reports the state of its nearest cancel ancestor (c->v.anc), so a done
 * check on any context is one pointer hop and one atomic load.
 * Deadlines are deadline.c's; how an end is described, origin.c's.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <unistd.h>

#include "base/probe.h"
#include "core/core.h"

const struct ctx__kind_hooks *ctx__kinds[CTX__KINDS];
void (*ctx__links_flush)(void);

static ctx_t background = { .kind = CTX__ROOT_BACKGROUND, .done_fd = -1 };
static ctx_t todo = { .kind = CTX__ROOT_TODO, .done_fd = -1 };

/* CTX_DEBUG=checks: is c a live node (roots always are)?  When off, one
 * predictable branch.  CHECK_AS names the public call. */
#define CHECK_AS(c, fn)                                                 \
	do {                                                            \
		if (CTX__CHECKING() && (c))                             \
			ctx__check_ctx((c), (fn), false);               \
	} while (0)
#define CHECK(c) CHECK_AS(c, __func__)

ctx_t *ctx_background(void) { return &background; }
ctx_t *ctx_todo(void) { return &todo; }

/* ---- reference counting ---------------------------------------------- */

ctx_t *ctx_ref(ctx_t *c)
{
	CHECK(c);
	if (c && !ctx__is_root(c))
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

/* Take a reference unless the count already reached zero (being freed). */
bool ctx__try_ref(ctx_t *c)
{
	int r = atomic_load_explicit(&c->refs, memory_order_relaxed);
	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(
			    &c->refs, &r, r + 1, memory_order_relaxed,
			    memory_order_relaxed))
			return true;
	return false;
}

static bool drop_ref(ctx_t *c)
{
	if (!c || ctx__is_root(c))
		return false;
	/* acq_rel rather than release plus a fence: the same order, and one
	 * that ThreadSanitizer can follow. */
	int old = atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel);
	CTX_ASSERT(old > 0); /* an unref without its ref */
	return old == 1;
}

static void detach(ctx_t *c)
{
	ctx_t *a = ctx__anc(c);
	if (!a)
		return;
	ctx__node_lock(&a->lock);
	if (c->attached) {
		*c->c.sib_pprev = c->c.sib_next;
		if (c->c.sib_next)
			c->c.sib_next->c.sib_pprev = c->c.sib_pprev;
		c->attached = 0;
	}
	ctx__node_unlock(&a->lock);
}

/* Free c, then every ancestor whose last reference c held.  A loop, not
 * recursion, so a long chain cannot overflow the stack. */
static void free_chain(ctx_t *c)
{
	while (c) {
		ctx_t *p = c->parent;
		/* A done node is out of its parent's list already: its
		 * canceller unhooked it before dropping the reference that
		 * kept it alive.  Only a live one takes the parent's lock. */
		if (ctx__is_cancel(c) &&
		    !atomic_load_explicit(&c->err, memory_order_acquire))
			detach(c);
		const struct ctx__kind_hooks *k = ctx__kind_of(c);
		if (k && k->free)
			k->free(c); /* its links on itself go too */
		CTX_ASSERT(!ctx__is_cancel(c) || !c->c.children);
		CTX_ASSERT(!ctx__is_cancel(c) || !c->c.links);
		if (ctx__is_cancel(c))
			ctx__end_put(c->c.end);
		if (c->done_fd >= 0)
			close(c->done_fd);
		ctx__node_free(c, sizeof(ctx_t), c->kind == CTX__CANCEL);
		if (CTX__CHECKING() && p)
			ctx__check_parent(c, p);
		c = drop_ref(p) ? p : NULL;
	}
}

static void unref(ctx_t *c)
{
	if (drop_ref(c))
		free_chain(c);
}

void ctx_unref(ctx_t *c)
{
	CHECK(c);
	unref(c);
}

/* ---- cancellation ---------------------------------------------------- */

/*
 * Mark n done, fire its links, and move its children to *work (each with
 * a reference, linked through sib_next).  A child whose count already hit
 * zero is being freed and has no descendants (they would hold it), so it
 * is only unhooked.  Returns false if n was done already.
 */
/* Under n's lock: take its links off, marked FIRING, to be fired once
 * the lock is dropped. */
static struct ctx__link *take_links(ctx_t *n)
{
	struct ctx__link *fired = n->c.links;
	for (struct ctx__link *l = fired; l; l = l->next) {
		l->pprev = NULL;
		atomic_store_explicit(&l->state, CTX__LINK_FIRING,
				      memory_order_relaxed);
	}
	n->c.links = NULL;
	return fired;
}

/* Under n's lock: move its children to *work (see mark). */
static void take_children(ctx_t *n, ctx_t **work)
{
	for (ctx_t *ch = n->c.children, *next; ch; ch = next) {
		next = ch->c.sib_next;
		ch->attached = 0;
		if (ctx__try_ref(ch)) {
			ch->c.sib_next = *work;
			*work = ch;
		}
	}
	n->c.children = NULL;
}

/* The words of ctx_origin for an end, for the cancel probe. */
static inline const char *origin_text(uintptr_t end)
{
	const struct ctx__origin *o = ctx__end_origin(end);
	return o ? o->text : NULL;
}

/* One cancellation's walk: what it ends nodes with, the nodes left to
 * mark, and whether any link fired (then the wake-ups its links put off
 * are made once the walk is over: ctx__links_flush). */
struct walk {
	int err, cause;
	uintptr_t end;
	ctx_t *top, *work;
	bool fired;
};

static bool mark(ctx_t *n, struct walk *w)
{
	ctx__node_lock(&n->lock);
	if (atomic_load_explicit(&n->err, memory_order_relaxed)) {
		ctx__node_unlock(&n->lock);
		return false;
	}
	n->cause = w->cause;
	n->c.end = ctx__end_get(w->end);
	atomic_store_explicit(&n->err, w->err, memory_order_release);
	if (n->done_fd >= 0)
		eventfd_write(n->done_fd, 1);
	/* Before any waiter is woken, so that a tracer sees the end come
	 * before the returns it causes. */
	CTX__PROBE5(cancel, n, w->err, w->cause, origin_text(w->end), w->top);
	struct ctx__link *fired = take_links(n);
	take_children(n, &w->work);
	bool timed = n->flags & CTX__F_IN_HEAP;
	bool sleepers = n->flags & CTX__F_FUTEX;
	ctx__node_unlock(&n->lock);
	if (sleepers) /* every thread in ctx_wait on n, in one call */
		ctx__futex_wake((_Atomic uint32_t *)(void *)&n->err, INT_MAX);
	w->fired |= fired != NULL;
	for (struct ctx__link *l = fired, *next; l; l = next) {
		next = l->next; /* l may be gone once fire() is done */
		l->fire(l);
	}
	if (timed)
		ctx__timer_del(n);
	return true;
}

void ctx__cancel_end(ctx_t *c, int err, int cause, uintptr_t end)
{
	struct walk w = { .err = err, .cause = cause, .end = end, .top = c };
	if (atomic_load_explicit(&c->err, memory_order_relaxed) ||
	    !mark(c, &w))
		return;
	detach(c);
	while (w.work) {
		ctx_t *ch = w.work;
		w.work = ch->c.sib_next;
		mark(ch, &w);
		unref(ch);
	}
	if (w.fired && ctx__links_flush)
		ctx__links_flush();
	ctx__end_fn *hook = atomic_load_explicit(&ctx__end_hook,
						 memory_order_relaxed);
	if (__builtin_expect(hook != NULL, 0))
		hook(c);
}

/* A cancel by the program's call `how` made at file:line.  The origin is
 * looked up only when there is a live node to end: a cancel of a done
 * context, or of one that cannot be cancelled, costs nothing more. */
static void cancel_at(ctx_t *c, int cause, enum ctx__how how,
		      const char *file, int line)
{
	if (!c || !ctx__is_cancel(c) ||
	    atomic_load_explicit(&c->err, memory_order_relaxed))
		return;
	ctx__cancel_by(c, CTX_CANCELED, cause ? cause : CTX_CANCELED,
		       ctx__origin(how, 0, ctx__site_make(file, line)));
}

CTX_API void ctx__cancel_cause_at(ctx_t *c, int cause, const char *file,
				  int line)
{
	CHECK_AS(c, "ctx_cancel_cause");
	cancel_at(c, cause, CTX__BY_CANCEL_CAUSE, file, line);
}

CTX_API void ctx__cancel_at(ctx_t *c, const char *file, int line)
{
	CHECK_AS(c, "ctx_cancel");
	cancel_at(c, CTX_CANCELED, CTX__BY_CANCEL, file, line);
}

/* Called through a pointer, or from C++ (no macros there): the site
 * ctx_set_site gave, if the caller gave one, else none. */
void ctx_cancel_cause(ctx_t *c, int cause)
{
	const char *file;
	int line;
	ctx__site_take(&file, &line);
	ctx__cancel_cause_at(c, cause, file, line);
}

void ctx_cancel(ctx_t *c)
{
	const char *file;
	int line;
	ctx__site_take(&file, &line);
	ctx__cancel_at(c, file, line);
}

/*
 * The common end of a context: a plain cancel node without deadline that
 * its caller alone holds.  Once it is out of its ancestor's list no walk
 * can reach it, and with one reference there is no child (each holds its
 * parent), no waiter and no after-func that could see it end: mark()'s
 * lock and walk would tell no one.  Its err is still set, for the free.
 * Anything else (another reference, a link, a done fd that a poll may be
 * watching) takes the full cancel.  About a fifth of a WithCancel +
 * release pair (callgrind).
 */
static bool held_alone(ctx_t *c)
{
	return atomic_load_explicit(&c->refs, memory_order_acquire) == 1 &&
	       c->done_fd < 0;
}

/* No link and no thread asleep on its err word.  (Such a thread holds a
 * reference of its own, as every thread that shares a context must;
 * the flag is looked at so that a program that breaks that rule does
 * not also leave the thread asleep for good.) */
static bool alone(ctx_t *c)
{
	return held_alone(c) && !c->c.links && !(c->flags & CTX__F_FUTEX);
}

/*
 * Before the detach only the count and the done fd are asked
 * (held_alone): until then
 * an ancestor's cancel can take a reference to c and run mark() on it,
 * which rewrites the links under c's lock, so reading them here would
 * race.  After the detach no walk can reach c; a cancel already under way
 * holds a reference until its mark() is done, so a count of one (read
 * with acquire, against that cancel's acq_rel unref) means the links are
 * settled and may be read.
 */
static bool release_alone(ctx_t *c)
{
	if (!c || c->kind != CTX__CANCEL || ctx__load_deadline(c) != CTX__NEVER)
		return false;
	/* Done already, and held by the caller alone: whoever ended it
	 * took it out of its ancestor's list before it dropped the
	 * reference its walk held, so the parent's lock (which every child
	 * of a cancelled root would take in turn) is not needed.  err is
	 * read before the count: a walk takes its reference before it
	 * marks the node, so the count read after its mark is seen is that
	 * walk's or later. */
	if (atomic_load_explicit(&c->err, memory_order_acquire))
		return held_alone(c);
	if (!held_alone(c))
		return false;
	detach(c);
	if (!alone(c))
		return false;
	c->cause = CTX_CANCELED;
	atomic_store_explicit(&c->err, CTX_CANCELED, memory_order_relaxed);
	return true;
}

/* Checked once, here: the parts below are the unchecked internals.
 * A node released alone ends where nobody can look, so its origin is
 * never worked out. */
CTX_API void ctx__release_at(ctx_t *c, const char *file, int line)
{
	if (CTX__CHECKING() && c)
		ctx__check_ctx(c, "ctx_release", true);
	const struct ctx__kind_hooks *k = c ? ctx__kind_of(c) : NULL;
	if (k && k->release)
		k->release(c); /* a signal context's handling is back now */
	/* A node released alone is ours only: no walk can reach it and no
	 * one else holds it, so its one reference goes without the atomic
	 * decrement, a locked instruction (with ctx__cancel_end's skipped
	 * flush, Go's CancelTree ClosedCanceler, which releases two such
	 * nodes, went from 72 to 60 ns on an AMD EPYC host). */
	if (release_alone(c)) {
		/* Except under CTX_DEBUG=leaks, whose list of live nodes
		 * lets ctx_dump take a reference to any of them at any
		 * time (ctx__live_nodes). */
		if (__builtin_expect(ctx__debug_leaks, 0))
			unref(c);
		else
			free_chain(c);
		return;
	}
	cancel_at(c, CTX_CANCELED, CTX__BY_RELEASE, file, line);
	unref(c);
}

void ctx_release(ctx_t *c)
{
	const char *file;
	int line;
	ctx__site_take(&file, &line);
	ctx__release_at(c, file, line);
}

/* ---- links ----------------------------------------------------------- */

int ctx__link_add(ctx_t *n, struct ctx__link *l)
{
	ctx__node_lock(&n->lock);
	int e = atomic_load_explicit(&n->err, memory_order_relaxed);
	if (!e) {
		l->next = n->c.links;
		if (l->next)
			l->next->pprev = &l->next;
		l->pprev = &n->c.links;
		n->c.links = l;
		atomic_store_explicit(&l->state, CTX__LINK_LISTED,
				      memory_order_relaxed);
	}
	ctx__node_unlock(&n->lock);
	return e;
}

bool ctx__link_unlist(ctx_t *n, struct ctx__link *l)
{
	bool was = false;
	int s = atomic_load_explicit(&l->state, memory_order_acquire);
	if (s == CTX__LINK_LISTED) {
		ctx__node_lock(&n->lock);
		if ((was = l->pprev)) {
			*l->pprev = l->next;
			if (l->next)
				l->next->pprev = l->pprev;
			l->pprev = NULL;
			atomic_store_explicit(&l->state, CTX__LINK_IDLE,
					      memory_order_relaxed);
		}
		ctx__node_unlock(&n->lock);
	}
	return was;
}

void ctx__link_del(ctx_t *n, struct ctx__link *l)
{
	ctx__link_unlist(n, l);
	/* Fired by a canceller that may still be using it: a few
	 * instructions, unless the canceller was preempted. */
	for (int i = 0; atomic_load_explicit(&l->state, memory_order_acquire) ==
			CTX__LINK_FIRING; i++)
		if (i < 100)
			ctx__cpu_relax();
		else
			sched_yield();
	CTX_ASSERT(!l->pprev); /* the caller may free l now */
}

/* ---- construction ---------------------------------------------------- */

static ctx_t *alloc_node(ctx_t *parent, enum ctx__kind kind, size_t size)
{
	if (!parent) {
		ctx__site_drop(); /* so that no later call takes it */
		errno = EINVAL;
		return NULL;
	}
	if (CTX__CHECKING())
		ctx__check_ctx(parent, "deriving a context", false);
	ctx__site_t site;
	/* (takes the site) A plain cancel node is a ctx_t and nothing more,
	 * as free_chain assumes when it gives one back. */
	CTX_ASSERT(kind != CTX__CANCEL || size == sizeof(ctx_t));
	ctx_t *c = ctx__node_alloc(size, &site, kind == CTX__CANCEL);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	memset(c, 0, size);
	atomic_init(&c->refs, 1);
	c->kind = kind;
	c->done_fd = -1;
	c->parent = ctx_ref(parent);
	c->site = site;
	return c;
}

/* Hang c under its cancel ancestor, or end it now if that one is done. */
static void attach(ctx_t *c)
{
	ctx_t *a = ctx__anc(c);
	if (!a)
		return;
	ctx__check(a); /* an expired deadline ends a before c can join it */
	ctx__node_lock(&a->lock);
	int e = atomic_load_explicit(&a->err, memory_order_relaxed);
	if (e) {
		c->cause = a->cause;
		c->c.end = ctx__end_get(a->c.end);
		atomic_store_explicit(&c->err, e, memory_order_relaxed);
	} else {
		c->c.sib_next = a->c.children;
		if (c->c.sib_next)
			c->c.sib_next->c.sib_pprev = &c->c.sib_next;
		c->c.sib_pprev = &a->c.children;
		a->c.children = c;
		c->attached = 1;
	}
	ctx__node_unlock(&a->lock);
}

/* The create probe (base/probe.h), once the node is what it will be. */
static inline ctx_t *created(ctx_t *c)
{
	if (c)
		CTX__PROBE5(create, c, c->parent, ctx__kind_name(c),
			    ctx__site_file(c->site), ctx__site_line(c->site));
	return c;
}

ctx_t *ctx__new_cancel(ctx_t *parent, enum ctx__kind kind, size_t size,
		       int64_t deadline, int cause)
{
	ctx_t *c = alloc_node(parent, kind, size);
	if (!c)
		return NULL;
	c->c.heap_idx = -1;
	c->c.deadline_cause = cause ? cause : CTX_DEADLINE_EXCEEDED;
	ctx_t *a = ctx__anc(c);
	int64_t above = a ? ctx__load_deadline(a) : CTX__NEVER;
	atomic_init(&c->c.own, deadline);
	atomic_init(&c->c.deadline, deadline < above ? deadline : above);
	/* As Go does: join the parent first, so a done parent's error and
	 * cause win over a deadline that is already past. */
	attach(c);
	created(c);
	/* CTX_DEBUG=stuck sees ends as they come: a deadline too. */
	if (deadline != CTX__NEVER &&
	    __builtin_expect(atomic_load_explicit(&ctx__debug_stuck_ms,
						  memory_order_relaxed), 0))
		ctx__watch_deadline(c);
	if (deadline != CTX__NEVER && deadline <= ctx_now())
		ctx__end_by_deadline(c);
	return c;
}

ctx_t *ctx_with_cancel(ctx_t *parent)
{
	return ctx__new_cancel(parent, CTX__CANCEL, sizeof(ctx_t),
			       CTX__NEVER, 0);
}

ctx_t *ctx_with_deadline_cause(ctx_t *parent, int64_t deadline, int cause)
{
	return ctx__new_cancel(parent, CTX__CANCEL, sizeof(ctx_t), deadline,
			       cause);
}

ctx_t *ctx_with_deadline(ctx_t *parent, int64_t deadline)
{
	return ctx_with_deadline_cause(parent, deadline, 0);
}

/* A timeout <= 0 is already expired; now itself is a past deadline. */
static int64_t timeout_deadline(int64_t timeout)
{
	int64_t now = ctx_now();
	return timeout <= 0 ? now : ctx__add_sat(now, timeout);
}

ctx_t *ctx_with_timeout_cause(ctx_t *parent, int64_t timeout, int cause)
{
	return ctx_with_deadline_cause(parent, timeout_deadline(timeout),
				       cause);
}

ctx_t *ctx_with_timeout(ctx_t *parent, int64_t timeout)
{
	return ctx_with_timeout_cause(parent, timeout, 0);
}

/* Value and without-cancel contexts need only the fields up to the
 * union's value member: they never sit in a list. */
#define SMALL_NODE_SIZE (offsetof(ctx_t, v) + sizeof(((ctx_t *)0)->v))

ctx_t *ctx_with_value(ctx_t *parent, const void *key, void *value)
{
	ctx_t *c = alloc_node(parent, CTX__VALUE, SMALL_NODE_SIZE);
	if (c) {
		c->v.anc = ctx__node(parent);
		c->v.key = key;
		c->v.value = value;
	}
	return created(c);
}

/* Its v.anc stays NULL: nothing above reaches it. */
ctx_t *ctx_without_cancel(ctx_t *parent)
{
	return created(alloc_node(parent, CTX__WITHOUT, SMALL_NODE_SIZE));
}

/* ---- queries --------------------------------------------------------- */

int ctx_err(ctx_t *c)
{
	if (!c)
		return EINVAL;
	CHECK(c);
	return ctx__check(ctx__node(c));
}

int ctx_cause(ctx_t *c)
{
	int e = ctx_err(c);
	if (!e || e == EINVAL)
		return e;
	return ctx__node(c)->cause; /* ordered after err by ctx__check */
}

bool ctx_deadline(ctx_t *c, int64_t *deadline)
{
	CHECK(c);
	ctx_t *n = c ? ctx__node(c) : NULL;
	int64_t d = n ? ctx__deadline_of(n) : CTX__NEVER;
	if (d == CTX__NEVER)
		return false;
	if (deadline)
		*deadline = d;
	return true;
}

void *ctx_value(ctx_t *c, const void *key)
{
	CHECK(c);
	for (; c; c = c->parent)
		if (c->kind == CTX__VALUE && c->v.key == key)
			return c->v.value;
	return NULL;
}

/* Make n's eventfd, or return the one it has. */
static int make_done_fd(ctx_t *n)
{
	ctx__node_lock(&n->lock);
	if (n->done_fd < 0) {
		n->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->done_fd >= 0 &&
		    atomic_load_explicit(&n->err, memory_order_relaxed))
			eventfd_write(n->done_fd, 1);
	}
	int fd = n->done_fd, e = errno;
	ctx__node_unlock(&n->lock);
	errno = e;
	return fd;
}

bool ctx_can_end(ctx_t *c)
{
	CHECK(c);
	return c && ctx__node(c);
}

int ctx_done_fd(ctx_t *c)
{
	CHECK(c);
	ctx_t *n = c ? ctx__node(c) : NULL;
	if (!n) {
		errno = c ? 0 : EINVAL;
		return -1;
	}
	ctx__check(n);
	int fd = make_done_fd(n);
	if (fd < 0)
		return -1;
	int e = ctx__watch_deadline(n);
	if (e) {
		errno = e;
		return -1;
	}
	return fd;
}

const char *ctx_strerror(int err)
{
	switch (err) {
	case CTX_CANCELED:
		return "context canceled";
	case CTX_DEADLINE_EXCEEDED:
		return "context deadline exceeded";
	default:
		return strerror(err);
	}
}
