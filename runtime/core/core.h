/*
 * The core layer: the context node and its tree (context.c), causes with
 * words (cause.c), printing (format.c), the debug modes (debug.c), the
 * timer thread (timer.c) and after-funcs (after.c).  The core names no
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

struct ctx {
	_Atomic int err;      /* 0 while live; written once, under lock */
	int cause;            /* valid once err is seen non-zero (acquire) */
	_Atomic int refs;
	uint8_t kind;
	uint8_t flags;        /* CTX__F_*, under own lock */
	uint8_t attached;     /* in anc's children list; under anc's lock */
	uint8_t own_deadline; /* deadline is its own, not inherited; const */
	ctx__lock_t lock;
	int done_fd;          /* eventfd made on demand; -1 until then */
	ctx_t *parent;        /* the context this one was derived from */
	ctx_t *anc;           /* nearest cancel node above (NULL: none) */
	int64_t deadline;     /* effective deadline; CTX__NEVER if none */
	union {
		struct { /* CTX__CANCEL, CTX__SIGNALS */
			ctx_t *children;
			ctx_t *sib_next, **sib_pprev;
			struct ctx__link *links;
			int deadline_cause;
			int heap_idx;
			int64_t timer_at;   /* the timer heap's key */
			struct ctx__msg *msg; /* words of the cause, or NULL */
		} c;
		struct { /* CTX__VALUE */
			const void *key;
			void *value;
		} v;
	};
};

static inline bool ctx__is_root(const ctx_t *c)
{
	return c->kind <= CTX__ROOT_TODO;
}

static inline bool ctx__is_cancel(const ctx_t *c)
{
	return c->kind >= CTX__CANCEL && c->kind != CTX__VALUE &&
	       c->kind != CTX__WITHOUT;
}

/* The cancel node whose state c reports: c itself, its anc, or NULL. */
static inline ctx_t *ctx__node(ctx_t *c)
{
	return ctx__is_cancel(c) ? c : c->anc;
}

/* The words of a cause (ctx_cancel_msg), shared by every node the
 * cancellation ended; each holds a reference.  signo: the signal that
 * made it (ctx_with_signals), else 0. */
struct ctx__msg {
	_Atomic int refs;
	int signo;
	char text[];
};
struct ctx__msg *ctx__msg_new(int signo, const char *fmt, va_list ap);
void ctx__msg_put(struct ctx__msg *m);

/* context.c */
ctx_t *ctx__new_cancel(ctx_t *parent, enum ctx__kind kind, size_t size,
		       int64_t deadline, int cause);
bool ctx__try_ref(ctx_t *c); /* false if c is already being freed */
void ctx__cancel(ctx_t *c, int err, int cause);
/* As ctx__cancel, with words (m may be NULL; the call takes no
 * reference of the caller's). */
void ctx__cancel_msg(ctx_t *c, int err, int cause, struct ctx__msg *m);
int ctx__check_deadline(ctx_t *n); /* ctx__check's slow part */
/* ctx_err for a cancel node (n may be NULL): done, or no deadline to
 * look at, is answered here without a call. */
static inline int ctx__check(ctx_t *n)
{
	if (!n)
		return 0;
	int e = atomic_load_explicit(&n->err, memory_order_acquire);
	return e || n->deadline == CTX__NEVER ? e : ctx__check_deadline(n);
}
/* Add l to node n's list.  Returns 0, or n's error if n is already done
 * (l is then not added and not fired). */
int ctx__link_add(ctx_t *n, struct ctx__link *l);
/* Remove l if it is still listed; if it is being fired, wait until the
 * canceller is done with it.  Without the lock once it has fired. */
void ctx__link_del(ctx_t *n, struct ctx__link *l);

int ctx__watch_deadline(ctx_t *n); /* have the timer thread end n */

/* Set before main by the wait layer (wait/reactor.c, "Sharing out"):
 * called at the end of every cancellation, once its walk has fired all
 * its links, to make the wake-ups the links put off. */
extern void (*ctx__links_flush)(void);

/* n's current deadline: its own field, or sooner the moving deadline of
 * a node at or above it (an idle context's, kind.h).  What a waiter
 * should sleep until. */
int64_t ctx__deadline_of(ctx_t *n);

/* timer.c: the lazily started timer thread that ends contexts at their
 * deadlines when no waiting thread would see it (done fds, after-funcs).
 * The heap holds a reference to each node in it. */
int ctx__timer_add(ctx_t *n);
void ctx__timer_del(ctx_t *n);

/* debug.c: context nodes, with a header (site, magic) when CTX_DEBUG
 * names a mode.  The site is where the program called the constructor
 * (ctx__site); node_alloc takes it, as does ctx__site_take, and a call
 * refused before either must drop it. */
void *ctx__node_alloc(size_t size);
void ctx__node_free(void *node);
void ctx__site_take(const char **file, int *line); /* and clear it */
void ctx__site_drop(void);

/* CTX_DEBUG=checks.  Every check costs, when off, one branch on a flag
 * that is set before main and never changes. */
/* Hidden even in the declaration: read on every call, so a direct load
 * rather than one through the GOT. */
extern bool ctx__debug_leaks, ctx__debug_checks
	__attribute__((visibility("hidden")));
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
