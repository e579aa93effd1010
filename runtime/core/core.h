/*
 * The core layer: the context node and its tree (context.c), causes with
 * words (cause.c), printing (format.c), the debug modes (debug.c), the
 * timer thread (timer.c), after-funcs (after.c) and the watcher thread
 * that ends contexts on a descriptor's events (watch.c).  The core names no
 * feature: what it must do per kind of node (free a signal context, ask
 * an idle one for its deadline) goes through the kinds' hooks (kind.h).
 *
 * Lock order: a node's lock is the only lock held while its state,
 * its children list or its links change; no code path holds two node
 * locks at once.  Cancellation walks the tree iteratively: it detaches a
 * node's children under that node's lock, then visits them one by one
 * after unlocking.  The timer heap's lock (timer.c) is never taken while
 * a node lock is held.
 */
#ifndef CTX_CORE_H
#define CTX_CORE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <ctx.h>

#include "base/base.h"

/* The kinds of node.  The core knows them by number only; what is done
 * per kind lives with the feature, behind the hooks of kind.h. */
enum ctx__kind {
	CTX__ROOT_BACKGROUND,
	CTX__ROOT_TODO,
	CTX__CANCEL,    /* WithCancel, WithDeadline, WithTimeout */
	CTX__VALUE,     /* WithValue */
	CTX__WITHOUT,   /* WithoutCancel */
	CTX__SIGNALS,   /* WithSignals: a cancel node with a signal hook */
	CTX__IDLE,      /* WithIdle: a cancel node the timer ends */
	CTX__HANGUP,    /* WithHangup: a cancel node the watcher ends */
	CTX__PIDFD,     /* WithPidfd: the same, on a process's exit */
	CTX__INHERITED, /* Inherited: the same, on a parent's pipe */
	CTX__MERGE,     /* WithMerge: a cancel node with a second parent */
	CTX__GRACE,     /* WithGrace: a cancel node apart from its parent */
	CTX__KINDS
};

/* Flags of a cancel node, changed only under its own lock. */
enum {
	CTX__F_IN_HEAP = 1 << 0,      /* registered with the timer thread */
	CTX__F_FUTEX = 1 << 1,        /* a thread sleeps on err (wait/) */
};

/*
 * Something to notify when a node is done: a blocked thread, an
 * after-func, ...  Links sit in the node's list under the node's lock.
 * Cancelling unlinks them under the lock (state FIRING) and calls fire()
 * after unlocking, so a woken thread never finds the lock held by the
 * thread that woke it.  fire() must end with ctx__link_done(l), after
 * which the canceller no longer touches l; until then the link's owner
 * may not free it (ctx__link_del waits for that).
 */
enum { CTX__LINK_IDLE, CTX__LINK_LISTED, CTX__LINK_FIRING, CTX__LINK_FIRED };

struct ctx__link {
	struct ctx__link *next, **pprev; /* pprev NULL: not listed */
	void (*fire)(struct ctx__link *l);
	_Atomic int state;
};

static inline void ctx__link_done(struct ctx__link *l)
{
	atomic_store_explicit(&l->state, CTX__LINK_FIRED,
			      memory_order_release);
}

/* A place in the program's source, __FILE__ and __LINE__ in 8 bytes
 * (origin.c): every node keeps the one that created it, always. */
typedef uint64_t ctx__site_t;

/*
 * The node: 104 bytes for the cancel kinds, 64 for the others, as
 * malloc hands them out in 112 and 80.  The fields a kind does not use
 * are in the union: value and without-cancel nodes never hang in a
 * list, have no deadline and no end of their own, and a cancel node
 * finds its nearest cancel ancestor through its parent (ctx__anc).
 *
 * Deadlines.  c.own is the node's own deadline (ctx_with_deadline's,
 * ctx_set_deadline's), kept even while a deadline above is earlier;
 * c.deadline is the effective one as last worked out: the earliest of
 * its own, its ancestor's, and what its kind inherits from outside the
 * chain (kind.h: a merge's other parent, a grace's parent).  It is exact
 * until ctx_set_deadline moves a deadline above it: then it may be too
 * early or too late for a while.  Too early is seen when it passes:
 * whoever sees it (ctx__check) walks the chain, finds nothing passed,
 * and stores the true one.  Too late needs no one below: the node whose
 * deadline moved earlier is in the timer thread's heap, which ends it --
 * and so everything under it -- at the new time.
 */
struct ctx {
	_Atomic int err;      /* 0 while live; written once, under lock */
	int cause;            /* valid once err is seen non-zero (acquire) */
	_Atomic int refs;
	uint8_t kind;
	uint8_t flags;        /* CTX__F_*, under own lock */
	uint8_t attached;     /* in its ancestor's list; under that one's lock */
	uint8_t spare;
	ctx__lock_t lock;
	int done_fd;          /* eventfd made on demand; -1 until then */
	ctx_t *parent;        /* the context this one was derived from */
	ctx__site_t site;     /* where the program created it; 0: unknown */
	union {
		struct { /* the cancel kinds (ctx__is_cancel) */
			_Atomic int64_t deadline; /* effective: see above */
			_Atomic int64_t own;      /* CTX__NEVER: none */
			ctx_t *children;
			ctx_t *sib_next, **sib_pprev;
			struct ctx__link *links;
			uintptr_t end;      /* words and origin (ctx__end_*) */
			int deadline_cause; /* the cause its deadline ends it with */
			int heap_idx;       /* in the timer's heap, or -1 */
		} c;
		struct { /* CTX__VALUE, CTX__WITHOUT and the roots */
			ctx_t *anc;   /* nearest cancel node above (NULL: none) */
			const void *key;
			void *value;
		} v;
	};
};

/* The name of c's kind, as the create probe and ctx_dump give it:
 * "WithCancel", "WithDeadline" (a cancel node with a deadline of its
 * own: the timeout forms too), "WithValue"... (inspect.c). */
extern const char *const ctx__kind_names[CTX__KINDS];
static inline const char *ctx__kind_name(ctx_t *c)
{
	return c->kind == CTX__CANCEL &&
			       atomic_load_explicit(&c->c.own,
						    memory_order_relaxed) !=
				       CTX__NEVER ?
		       "WithDeadline" : ctx__kind_names[c->kind];
}

static inline bool ctx__is_root(const ctx_t *c)
{
	return c->kind <= CTX__ROOT_TODO;
}

static inline bool ctx__is_cancel(const ctx_t *c)
{
	return c->kind >= CTX__CANCEL && c->kind != CTX__VALUE &&
	       c->kind != CTX__WITHOUT;
}

/* Whether c is n or a context derived from it. */
static inline bool ctx__descends(const ctx_t *c, const ctx_t *n)
{
	for (; c; c = c->parent)
		if (c == n)
			return true;
	return false;
}

/* The cancel node whose state c reports: c itself, its anc, or NULL. */
static inline ctx_t *ctx__node(ctx_t *c)
{
	return ctx__is_cancel(c) ? c : c->v.anc;
}

/* The cancel node whose children list holds the cancel node c, and whose
 * end ends c: its parent's node.  A grace node hangs under none: its
 * parent's end only starts its grace (compose.c). */
static inline ctx_t *ctx__anc(const ctx_t *c)
{
	return c->kind == CTX__GRACE ? NULL : ctx__node(c->parent);
}

static inline int64_t ctx__load_deadline(ctx_t *n)
{
	return atomic_load_explicit(&n->c.deadline, memory_order_relaxed);
}

/* ---- how a node ended: words and origin --------------------------- */

/* What ended a context, for ctx_origin: a record that is never freed,
 * one per (how, arg, site), so that every node an end reached points to
 * the same one without counting (origin.c). */
enum ctx__how {
	CTX__BY_CANCEL = 1,  /* ctx_cancel at site */
	CTX__BY_CANCEL_CAUSE,
	CTX__BY_CANCEL_MSG,
	CTX__BY_RELEASE,
	CTX__BY_DEADLINE,    /* the deadline of the node created at site */
	CTX__BY_SIGNAL,      /* signal arg */
	CTX__BY_HANGUP,      /* the peer of the node created at site left */
	CTX__BY_IDLE,        /* the node created at site was idle too long */
	CTX__BY_EXIT,        /* the process of the node created at site */
	CTX__BY_PARENT,      /* the parent process (arg 1: its deadline) */
	CTX__BY_LIBRARY,     /* text says what (a static record) */
};

struct ctx__origin {
	struct ctx__origin *next; /* the intern table's chain */
	enum ctx__how how;
	int arg;
	ctx__site_t site;
	const char *text;
};

/* The record for (how, arg, site), made on first use; NULL without
 * memory.  A lookup takes no lock. */
const struct ctx__origin *ctx__origin(enum ctx__how how, int arg,
				      ctx__site_t site);

/* A site from a file name and line (NULL: unknown); sites that do not
 * fit 8 bytes go to a table, so this never fails but may say unknown. */
ctx__site_t ctx__site_make_slow(const char *file, int line);
static inline ctx__site_t ctx__site_make(const char *file, int line)
{
	uintptr_t f = (uintptr_t)file;
	if (__builtin_expect(f >> 48 == 0 && (unsigned)line < 0xffff, 1))
		return f ? (uint64_t)line << 48 | f : 0;
	return ctx__site_make_slow(file, line);
}
const char *ctx__site_file(ctx__site_t s); /* NULL: unknown */
int ctx__site_line(ctx__site_t s);

/* The words of a cause (ctx_cancel_msg), shared by every node the
 * cancellation ended; each holds a reference.  signo: the signal that
 * made it (ctx_with_signals), else 0.  origin: the end's. */
struct ctx__msg {
	_Atomic int refs;
	int signo;
	const struct ctx__origin *origin;
	char text[];
};
struct ctx__msg *ctx__msg_new(int signo, const char *fmt, va_list ap);
void ctx__msg_put(struct ctx__msg *m);

/*
 * A node's c.end: 0 (live, or ended where nobody could look), words (a
 * struct ctx__msg *, which holds the origin), or an origin alone (a
 * struct ctx__origin *, tagged with the low bit).  Written under the
 * node's lock with err; ctx_cause_msg may later turn an origin into
 * words that hold it, under the lock too.
 */
static inline uintptr_t ctx__end_of_origin(const struct ctx__origin *o)
{
	return o ? (uintptr_t)o | 1 : 0;
}

static inline struct ctx__msg *ctx__end_msg(uintptr_t end)
{
	return end & 1 ? NULL : (struct ctx__msg *)end;
}

static inline const struct ctx__origin *ctx__end_origin(uintptr_t end)
{
	if (end & 1)
		return (const struct ctx__origin *)(end - 1);
	return end ? ((struct ctx__msg *)end)->origin : NULL;
}

/* Another holder of end (words are counted), and giving one back. */
static inline uintptr_t ctx__end_get(uintptr_t end)
{
	struct ctx__msg *m = ctx__end_msg(end);
	if (m)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return end;
}

static inline void ctx__end_put(uintptr_t end)
{
	ctx__msg_put(ctx__end_msg(end));
}

/* The end of the done node n, counted for the caller, with its error
 * and cause: for a node that takes another's end (merge, grace). */
uintptr_t ctx__end_take(ctx_t *n, int *err, int *cause);

/* context.c */
ctx_t *ctx__new_cancel(ctx_t *parent, enum ctx__kind kind, size_t size,
		       int64_t deadline, int cause);
bool ctx__try_ref(ctx_t *c); /* false if c is already being freed */
/* End c and everything under it with err, cause and end (words and
 * origin, ctx__end_*; the call takes no count of the caller's).  The
 * first end wins; a node already done is left as it is. */
void ctx__cancel_end(ctx_t *c, int err, int cause, uintptr_t end);
static inline void ctx__cancel_by(ctx_t *c, int err, int cause,
				  const struct ctx__origin *o)
{
	ctx__cancel_end(c, err, cause, ctx__end_of_origin(o));
}
/* Add l to node n's list.  Returns 0, or n's error if n is already done
 * (l is then not added and not fired). */
int ctx__link_add(ctx_t *n, struct ctx__link *l);
/* Remove l if it is still listed; if it is being fired, wait until the
 * canceller is done with it.  Without the lock once it has fired. */
void ctx__link_del(ctx_t *n, struct ctx__link *l);
/* Remove l if it is still listed, and say so; never waits. */
bool ctx__link_unlist(ctx_t *n, struct ctx__link *l);

/* deadline.c */
int ctx__check_deadline(ctx_t *n); /* ctx__check's slow part */
/* The slow part whatever the cache says (for the timer, and the kinds'
 * expire hooks): end what passed, or mend the cache.  n's error. */
int ctx__expire(ctx_t *n);
/* ctx_err for a cancel node (n may be NULL): done, or no deadline to
 * look at, is answered here without a call. */
static inline int ctx__check(ctx_t *n)
{
	if (!n)
		return 0;
	int e = atomic_load_explicit(&n->err, memory_order_acquire);
	return e || ctx__load_deadline(n) == CTX__NEVER ?
		       e : ctx__check_deadline(n);
}
/* The effective deadline of n, worked out along the chain: what
 * c.deadline holds when it is exact.  The moving deadlines of kind.h
 * are left out: the timer thread, not the waiters, sees to those. */
int64_t ctx__fixed_deadline(ctx_t *n);
/* n's deadline as ctx_deadline reports it: the fixed one, or sooner the
 * moving deadline of a node at or above it (an idle context's). */
int64_t ctx__deadline_of(ctx_t *n);
/* End n by its own deadline: CTX_DEADLINE_EXCEEDED, the cause its
 * constructor gave, an origin that names where n was made. */
void ctx__end_by_deadline(ctx_t *n);
/* What n inherits changed (its own deadline, or a kind's inherit hook):
 * work c.deadline out again, and when it came earlier have the timer
 * thread end n in time.  0 or an error number (no timer thread). */
int ctx__deadline_changed(ctx_t *n);
int ctx__watch_deadline(ctx_t *n); /* have the timer thread end n */

/* compose.c: a merge's other parent (a reference it holds), else NULL. */
ctx_t *ctx__second_parent(ctx_t *c);

/* format.c: ctx_format, and without the origin (the leak report says it
 * apart). */
int ctx__format(ctx_t *c, char *buf, size_t len, bool origin);

/* Set before main by the wait layer (wait/reactor.c, "Sharing out"):
 * called at the end of every cancellation, once its walk has fired all
 * its links, to make the wake-ups the links put off. */
extern void (*ctx__links_flush)(void);

/* timer.c: the lazily started timer thread that ends contexts at their
 * deadlines when no waiting thread would see it (done fds, after-funcs).
 * The heap holds a reference to each node in it. */
int ctx__timer_add(ctx_t *n);
void ctx__timer_del(ctx_t *n);
void ctx__timer_rekey(ctx_t *n); /* n's due time moved */
int64_t ctx__timer_due(ctx_t *n); /* when the heap looks at n */

/* watch.c: a cancel node that the watcher thread ends when its
 * descriptor reports one of its events (EPOLLHUP and EPOLLERR always
 * count): the watcher calls its kind's ready hook (kind.h), which must
 * end it.  The fd must stay open while the node lives. */
struct ctx__watch {
	ctx_t base;             /* first: a watch node is a ctx_t */
	struct ctx__link ended; /* on itself: leaves the table */
	int fd;
	uint32_t events;        /* EPOLLRDHUP, EPOLLIN, ... */
	bool listed;            /* in its fd's list; under the table's lock */
	struct ctx__watch *next, *prev; /* not pprev: the table moves */
};
/* A node of `kind` under parent, with deadline (CTX__NEVER: none), that
 * ends when fd reports events; NULL + errno (ENOMEM, EPERM for a file
 * epoll cannot watch, ...). */
ctx_t *ctx__watch_new(ctx_t *parent, enum ctx__kind kind, int fd,
		      uint32_t events, int64_t deadline);
/* The free hook of every watched kind: leave the table. */
void ctx__watch_free(ctx_t *c);
/* The manual clock moved: fire, in the calling thread, every node due
 * by now.  And the earliest time a node is due, or CTX__NEVER. */
void ctx__timer_run_due(void);
int64_t ctx__timer_next(void);
/* The clock went back to the real one (a test hook): the thread, asleep
 * until signalled under the manual clock, looks at its times again. */
void ctx__timer_clock_changed(void);

/* debug.c: context nodes, with a header (site, magic) when CTX_DEBUG
 * names a mode.  The site is where the program called the constructor
 * (ctx__site); node_alloc takes it, as does ctx__site_take, and a call
 * refused before either must drop it.  A plain cancel node, the one made
 * and freed most, goes through the per-thread cache (base/alloc.c) when
 * no mode asks for headers. */
void *ctx__node_alloc(size_t size, ctx__site_t *site, bool plain);
void ctx__node_free(void *node, size_t size, bool plain);
void ctx__site_take(const char **file, int *line); /* and clear it */
void ctx__site_drop(void);

/* inspect.c: contexts in words, for ctx_dump and CTX_DEBUG=stuck; the
 * caller holds a reference to c.  A node: its kind, where it was made,
 * the deadline it brought.  Its error, 0 while live (never enforcing a
 * deadline).  How it ended, or "live".  The chain from c to its root,
 * one node a line after indent.  With CTX_DEBUG=leaks every live
 * context as a tree (else false, nothing added). */
void ctx__node_text(ctx_t *c, struct ctx__text *t);
int ctx__ended(ctx_t *c);
void ctx__end_text(ctx_t *c, struct ctx__text *t);
void ctx__chain_text(ctx_t *c, const char *indent, struct ctx__text *t);
bool ctx__tree_text(struct ctx__text *t);

/* CTX_DEBUG=checks.  Every check costs, when off, one branch on a flag
 * that is set before main and never changes. */
/* Hidden even in the declaration: read on every call, so a direct load
 * rather than one through the GOT. */
extern bool ctx__debug_leaks, ctx__debug_checks
	__attribute__((visibility("hidden")));
/* CTX_DEBUG=stuck[=MS]: MS, or 0 when off.  When it is on, the wait
 * layer (wait/stuck.c) sets the hook, which every cancellation calls
 * with the node it began at, once the walk is done and no lock held. */
extern _Atomic int ctx__debug_stuck_ms __attribute__((visibility("hidden")));
typedef void ctx__end_fn(ctx_t *n);
extern _Atomic(ctx__end_fn *) ctx__end_hook
	__attribute__((visibility("hidden")));
/* dumpsig.c: CTX_DUMP_SIGNAL, from debug.c's constructor. */
void ctx__dumpsig_init(void);
/* With CTX_DEBUG=leaks, every live node, each with a reference taken
 * (malloc'd; *n of them); else NULL, none. */
ctx_t **ctx__live_nodes(size_t *n);
#define CTX__CHECKING() __builtin_expect(ctx__debug_checks, 0)
#define CTX__POISON_BYTE 0xdb
#define CTX__DEAD 0xdbdbdbdbu           /* a poisoned magic */
#define CTX__MAGIC_NODE 0x4e787443u     /* a context */
#define CTX__MAGIC_BORROWED 0x42787443u /* a context lent out (groups) */
#define CTX__MAGIC_THREAD 0x54787443u
#define CTX__MAGIC_AFTER 0x41787443u
/* Report a misuse found in fn on stderr, then abort. */
__attribute__((noreturn)) void ctx__misuse(const char *fn, const char *what,
					   const char *file, int line);
/* c's magic is a live node's (and, releasing, not a borrowed one's). */
void ctx__check_ctx(ctx_t *c, const char *fn, bool releasing);
void ctx__check_parent(ctx_t *c, ctx_t *parent); /* before its unref */
void ctx__set_borrowed(ctx_t *c);
/* A context the library keeps until exit (ctx_inherited): borrowed, and
 * out of the leak report, as the roots are. */
void ctx__set_lifelong(ctx_t *c);
/* free(p); with checks, poison its size bytes and keep it from malloc
 * for a while, so that a late use finds the poison. */
void ctx__retire(void *p, size_t size);

/* A handle that the leak report lists from ctx__track_add (file and
 * line set) until ctx__track_del. */
struct ctx__track {
	struct ctx__track *next, **pprev;
	const char *file;
	int line;
};
void ctx__track_add(struct ctx__track *t);
void ctx__track_del(struct ctx__track *t);

#include "core/kind.h"

#endif
