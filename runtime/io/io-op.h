/*
 * The io layer's internal header: one operation in flight, for the files
 * that add calls to io.c's (xfer.c).  ctx__io_run runs it on the
 * skeleton of every blocking call (wait/call.h): refuse when done, try
 * without blocking in the form the descriptor's strategy says, wait for
 * it, retry.  Only io.c changes a strategy (classify()).
 */
#ifndef CTX_IO_OP_H
#define CTX_IO_OP_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "wait/wait.h"

enum strategy {
	S_UNKNOWN, S_SOCKET, S_NOWAIT, S_NONBLOCK, S_REOPEN, S_POLL_FIRST,
	S_FILE, S_RING,
};

struct op {
	struct ctx__call c;   /* first: the tries cast it back */
	ctx_t *ctx;           /* the call's, for a transfer in the backend */
	ssize_t n;            /* what the last try returned */
	bool waited;          /* a wait came before this try */
	int fd;               /* the caller's descriptor */
	int call_fd;          /* where calls go: fd, or a private reopening */
	short events;         /* POLLIN or POLLOUT */
	enum strategy how;
	bool rw;              /* a read or write (strategies apply) */
	size_t chunk;         /* S_POLL_FIRST writes: most bytes per call */
	ssize_t (*call)(struct op *o);
	void *buf;            /* or a msghdr / mmsghdr array: see the call */
	size_t len;           /* bytes; or how many mmsghdrs */
	int flags;
	struct sockaddr *addr;
	socklen_t *addrlen;
	const struct iovec *iov; /* vectored: the array, len its total */
	int iovcnt;
	bool at;              /* positional: at off, the offset unmoved */
	off_t off;
	bool moved;           /* a message call moved bytes already */
};

/* One operation; -1 with errno (a context error or the call's). */
ssize_t ctx__io_run(ctx_t *ctx, struct op *o);
/* The caller asked not to wait (MSG_DONTWAIT, SPLICE_F_NONBLOCK): the
 * refusal and one call. */
ssize_t ctx__io_once(ctx_t *ctx, struct op *o);

#endif
