/*
 * The wait layer: the per-thread reactor and the one wait loop of every
 * blocking call (reactor.c), the backends a thread sleeps in (backend.h:
 * poll.c, uring.c), the parking queue of the objects threads wait on
 * (waitq.h), and the one skeleton of every blocking call (call.h).  The
 * layers above include this header alone; backend.h is the wait layer's
 * own.
 */
#ifndef CTX_WAIT_H
#define CTX_WAIT_H

#include <poll.h>
#include <sys/uio.h>

#include "core/core.h"

/* What a wait returns besides a context error or an errno value. */
enum {
	CTX__READY = 0,     /* what was wanted happened */
	CTX__EXPIRED = -1,  /* the call's own deadline passed */
	CTX__BLOCKING = -2, /* no transfer through this backend: do the call */
};

/* A read or write the kernel performs while the thread sleeps, so that a
 * context can end the wait for it (the io_uring backend, regular files).
 * off is the file offset, or -1 for the descriptor's own position. */
struct ctx__xfer {
	int fd;
	const struct iovec *iov;
	int iovcnt;
	int64_t off;
	enum { CTX__XFER_READ, CTX__XFER_WRITE, CTX__XFER_FSYNC,
	       CTX__XFER_FDATASYNC } op;
	bool done;   /* completed: res is the call's result, or -errno */
	int res;
	uint32_t id;
};

/* What a wait waits for.  fds[0..nfds) get revents; the array has room
 * for two more entries, which the backend may use. */
struct ctx__want {
	struct pollfd *fds;
	nfds_t nfds;
	struct ctx__xfer *xfer;  /* a transfer through the kernel, or NULL */
	bool wakes;              /* a wake-up (ctx__reactor_wake) ends it */
	int64_t deadline;        /* the call's own; CTX__NEVER: none */
	/* A pause of a back-off schedule (wait/call.h), this long: it
	 * paces looks at something outside the process, which moves in
	 * real time, so with the manual clock it also ends once this long
	 * has passed on the real one, and the thread does not count as
	 * durably blocked.  0: not a pause. */
	int64_t pace;
	const char *call;        /* the libctx call that waits, or NULL */
	bool parked;             /* a parked thread's wait for its waker */
	int ready;               /* out: how many fds have revents */
};

/* reactor.c: the one wait: until what want names happens (CTX__READY),
 * want->deadline passes (CTX__EXPIRED), the context ends (its error), a
 * transfer is asked of a backend that has none (CTX__BLOCKING), or an
 * errno value (EMFILE, ENOMEM, ...).  Never EINTR. */
int ctx__wait_for(ctx_t *ctx, struct ctx__want *want);
/* One descriptor (POLLIN, POLLOUT), or fd < 0: until a wake-up.  EBADF
 * for a descriptor that is not open. */
int ctx__wait_fd(ctx_t *ctx, int fd, uint32_t events, int64_t deadline);
/* The same, with how's deadline, pace, call and parked. */
int ctx__wait_one(ctx_t *ctx, int fd, uint32_t events,
		  const struct ctx__want *how);

/*
 * The registry (reactor.c): every thread that has waited in libctx has a
 * record, registered once, when its reactor is first used, and taken out
 * at its exit.  Each wait writes into its own thread's record what it is
 * -- the call, the descriptor, whether only time or another known thread
 * can end it, since when, until when, under which context -- with
 * relaxed stores and no lock, and clears it at its end.  Readers (the
 * manual clock, wait/clock.c; anything that reports what threads wait
 * for) walk the registry under its lock, which keeps every record, and
 * its reactor, alive; the fields they read may change as they read them:
 * gen is odd while a wait is in progress and moves at its start and end,
 * so a reader that reads gen, then the fields, then gen again (acquire
 * loads) knows whether they belong to one wait.  The context is the
 * caller's, alive while the wait lasts and no longer: a reader must not
 * keep it.
 */
enum ctx__wait_what {
	CTX__WAIT_TIME,  /* nothing but the context and the time: a sleep */
	CTX__WAIT_WAKE,  /* a wake-up from another thread: a parked thread */
	CTX__WAIT_FD,    /* descriptors (fd: the first one) */
	CTX__WAIT_XFER,  /* a transfer the kernel performs (fd: its file) */
	CTX__WAIT_PAUSE, /* a pause of a back-off schedule (fd: -1 or one) */
};

struct ctx__record {
	struct ctx__record *next, **pprev; /* the registry's, under its lock */
	struct ctx__reactor *r;            /* the thread's reactor */
	int tid;                           /* the thread's id (gettid) */
	_Atomic uint32_t gen;              /* odd while waiting */
	_Atomic(const char *) call;        /* want->call; NULL: unnamed */
	_Atomic int fd;
	_Atomic int what;                  /* enum ctx__wait_what */
	_Atomic bool durable;              /* only time or a known thread */
	_Atomic int64_t since;             /* ctx__now_coarse() at the start */
	_Atomic int64_t limit;             /* when time ends it; CTX__NEVER */
	_Atomic(ctx_t *) ctx;              /* the context waited under */
	/* The manual clock's (wait/clock.c): the thread is known, and --
	 * under the clock's lock -- asleep in a durable wait, not counted
	 * at work. */
	_Atomic bool known;
	_Atomic bool blocked;
};

/* Call fn on every record, under the registry's lock: fn must not wait,
 * nor take a lock that is held while a thread registers or exits. */
void ctx__registry_each(void (*fn)(struct ctx__record *rec, void *arg),
			void *arg);
struct ctx__record *ctx__record_self(void); /* the caller's, registered */

/* clock.c: the manual clock's known threads.  A thread the library
 * starts is counted at work from before its creation (spawning, true
 * under the manual clock) until it ends (leave); adopt, first thing in
 * the new thread, makes its record known.  unspawn undoes a spawning
 * whose thread could not be created. */
bool ctx__clock_spawning(void);
void ctx__clock_unspawn(void);
void ctx__clock_adopt(void);
void ctx__clock_leave(void);
/* Test hook: back to the real clock, no thread known (only when no
 * thread waits: a test under CK_FORK=no ends with it). */
void ctx__clock_reset(void);

/* The calling thread's reactor, and its wake-ups (reactor.c, "Waking"). */
struct ctx__reactor;
struct ctx__reactor *ctx__reactor_self(void);
void ctx__reactor_prepare(struct ctx__reactor *r); /* before publishing */
void ctx__reactor_unprepare(struct ctx__reactor *r);
void ctx__reactor_wake(struct ctx__reactor *r);
void ctx__reactor_hold(struct ctx__reactor *r);    /* see waitq.h */
void ctx__reactor_release(struct ctx__reactor *r);

#include "wait/waitq.h"
#include "wait/call.h"

#endif
