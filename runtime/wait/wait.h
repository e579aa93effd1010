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
