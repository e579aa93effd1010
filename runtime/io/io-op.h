/*
 * io.c's skeleton for the files that add calls to it (xfer.c): one
 * operation in flight, run by ctx__io_run (refuse when done, try without
 * blocking, wait, retry).  Only io.c changes a strategy (classify()).
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

#endif
