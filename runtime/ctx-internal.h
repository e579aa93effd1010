/*
 * The context node and the internal interfaces between runtime files.
 *
 * Lock order: a node's lock is the only lock held while its state,
 * its children list or its links change; no code path holds two node
 * locks at once.  Cancellation walks the tree iteratively: it detaches a
 * node's children under that node's lock, then visits them one by one
 * after unlocking.  The timer heap's lock (timer.c) is never taken while
 * a node lock is held.
 */
#ifndef CTX_INTERNAL_H
#define CTX_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "assert.h"
#include "ctx.h"
#include "lock.h"

#define CTX__NEVER INT64_MAX

enum ctx__kind {
	CTX__ROOT_BACKGROUND,
	CTX__ROOT_TODO,
	CTX__CANCEL,    /* WithCancel, WithDeadline, WithTimeout */
	CTX__VALUE,     /* WithValue */
	CTX__WITHOUT,   /* WithoutCancel */
	CTX__SIGNALS,   /* WithSignals: a cancel node with a signal hook */
};

/* Flags of a cancel node, changed only under its own lock. */
enum {
	CTX__F_IN_HEAP = 1 << 0,      /* registered with the timer thread */
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
	return c->kind == CTX__CANCEL || c->kind == CTX__SIGNALS;
}

/* The cancel node whose state c reports: c itself, its anc, or NULL. */
static inline ctx_t *ctx__node(ctx_t *c)
{
	return ctx__is_cancel(c) ? c : c->anc;
}

int64_t ctx__add_sat(int64_t a, int64_t b);
bool ctx__surely_before(int64_t deadline); /* cheap, may say false */

/* context.c */
ctx_t *ctx__new_cancel(ctx_t *parent, enum ctx__kind kind, size_t size,
		       int64_t deadline, int cause);
bool ctx__try_ref(ctx_t *c); /* false if c is already being freed */
void ctx__signals_free(ctx_t *c); /* signals.c: give the signals back */
void ctx__cancel(ctx_t *c, int err, int cause);
int ctx__check(ctx_t *n); /* ctx_err for a cancel node; n may be NULL */
/* Add l to node n's list.  Returns 0, or n's error if n is already done
 * (l is then not added and not fired). */
int ctx__link_add(ctx_t *n, struct ctx__link *l);
/* Remove l if it is still listed; if it is being fired, wait until the
 * canceller is done with it.  Without the lock once it has fired. */
void ctx__link_del(ctx_t *n, struct ctx__link *l);

int ctx__watch_deadline(ctx_t *n); /* have the timer thread end n */

/* timer.c: the lazily started timer thread that ends contexts at their
 * deadlines when no waiting thread would see it (done fds, after-funcs).
 * The heap holds a reference to each node in it. */
int ctx__timer_add(ctx_t *n);
void ctx__timer_del(ctx_t *n);

/* reactor.c: the per-thread reactor and the wait of every blocking call.
 * Results of ctx__wait_fd besides a context error or an errno value: */
enum {
	CTX__READY = 0,     /* the fd is ready, or (fd < 0) a wake-up came */
	CTX__EXPIRED = -1,  /* the call's own deadline passed */
	CTX__BLOCKING = -2, /* the fd cannot be polled: perform the call */
};
struct ctx__reactor;
struct ctx__wait {
	struct ctx__link link; /* first: fire() casts the link back */
	struct ctx__reactor *r;
	ctx_t *n;              /* the cancel node waited on, or NULL */
	int64_t limit;         /* min(context deadline, call deadline) */
};
struct ctx__reactor *ctx__reactor_self(void);
void ctx__reactor_prepare(struct ctx__reactor *r); /* before publishing */
void ctx__reactor_wake(struct ctx__reactor *r);
void ctx__reactor_hold(struct ctx__reactor *r);    /* see waitq.h */
void ctx__reactor_release(struct ctx__reactor *r);
int ctx__wait_begin(struct ctx__wait *w, ctx_t *ctx, int64_t deadline);
void ctx__wait_end(struct ctx__wait *w);
int ctx__wait_fd(ctx_t *ctx, int fd, uint32_t events, int64_t deadline);
/* poll(2) over all[0..nfds) plus the reactor: 0 with *ready set, or as
 * ctx__wait_fd.  all has room for nfds + 1 entries. */
int ctx__wait_poll(struct ctx__wait *w, struct pollfd *all, nfds_t nfds,
		   int64_t deadline, int *ready);

/* thread.c: start a detached library thread, all signals blocked. */
int ctx__spawn(void *(*fn)(void *), void *arg);

/* uring.c: the io_uring backend (a ring per thread).  A transfer through
 * the ring: */
struct ctx__uring_op {
	int fd;
	void *buf;
	size_t len;
	bool write;
	bool done;   /* completed: res is read(2)'s result, or -errno */
	int res;
	uint32_t id;
};
bool ctx__uring_on(void); /* this process waits with io_uring */
int ctx__uring_round(int wakefd, int fd, uint32_t events, int64_t limit,
		     bool *io);
int ctx__uring_start(struct ctx__uring_op *op, int wakefd);
void ctx__uring_finish(struct ctx__uring_op *op, int wakefd);
void ctx__uring_thread_exit(void);
/* reactor.c: a read or write through the ring, which the context can
 * interrupt; as read(2)/write(2).  Only with ctx__uring_on(). */
ssize_t ctx__wait_rw(ctx_t *ctx, int fd, void *buf, size_t len, bool write);

/* debug.c: context nodes, tracked when CTX_DEBUG=leaks. */
void *ctx__node_alloc(size_t size);
void ctx__node_free(void *node);

/* Allocation, with a hook for fault injection in tests. */
void *ctx__malloc(size_t size);
void ctx__fail_malloc_after(long n); /* test hook; -1 turns it off */

#endif
