/*
 * Cancellable I/O: read, write, recv, send, accept, connect.
 *
 * Every call runs on the skeleton of every blocking call (wait/call.h):
 * refuse if the context is done; try the call without blocking; on
 * EAGAIN wait for the descriptor, the context and its deadline together;
 * try again.  With data ready the cost is the system call plus the done
 * check.
 *
 * Trying "without blocking" must not change the descriptor's own flags,
 * which other threads share.  So a descriptor is classified, once per
 * call and lazily (the first try says most of it), into a strategy:
 *
 *   S_SOCKET      recv/send with MSG_DONTWAIT (the plain call's cost);
 *   S_NOWAIT      preadv2/pwritev2 with RWF_NOWAIT: pipes, eventfds, ...;
 *   S_NONBLOCK    the descriptor is non-blocking already: the plain call;
 *   S_REOPEN      a blocking FIFO or terminal that refuses RWF_NOWAIT:
 *                 the plain call on a private non-blocking open file
 *                 description of the same file (through /proc/self/fd),
 *                 closed when the call ends;
 *   S_POLL_FIRST  no non-blocking form at all: wait for readiness, then
 *                 the plain call, writing at most what readiness promises
 *                 (PIPE_BUF on a FIFO, one byte on a terminal); a plain
 *                 read there blocks like read(2) if another thread
 *                 drains the descriptor first;
 *   S_FILE        a regular file or block device: never "not ready" to
 *                 poll, so the plain call, which waits for the storage;
 *   S_RING        the same through the backend's transfer (io_uring), so
 *                 that the context can end the wait.
 *
 * The transitions are in classify(), the only place that changes a
 * strategy.  A per-thread hint remembers which descriptors are sockets; a
 * stale hint costs one failed call (ENOTSOCK), never a wrong result.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/io-op.h"

/* ---- the socket hint ------------------------------------------------- */

#define HINTS 64
/* (fd + 1) * 4 + kind; 0: none.  Kinds: */
enum { H_OTHER, H_SOCKET, H_FILE_WRITE };
static __thread int hints[HINTS];

static int hint_kind(int fd)
{
	if (fd < 0) /* the call itself reports EBADF */
		return -1;
	int h = hints[fd % HINTS];
	return h >> 2 == fd + 1 ? h & 3 : -1;
}

static enum strategy hint(int fd)
{
	int k = hint_kind(fd);
	return k < 0 ? S_UNKNOWN : k == H_SOCKET ? S_SOCKET : S_NOWAIT;
}

static void hint_kind_set(int fd, int kind)
{
	if (fd >= 0)
		hints[fd % HINTS] = (fd + 1) * 4 + kind;
}

static void hint_set(int fd, bool sock)
{
	hint_kind_set(fd, sock ? H_SOCKET : H_OTHER);
}

/* The backend has no transfers (epoll): learnt from the first that came
 * back CTX__BLOCKING; the backend is chosen once per process. */
static _Atomic bool no_xfer;

static enum strategy file_strategy(void)
{
	return atomic_load_explicit(&no_xfer, memory_order_relaxed) ?
		       S_FILE : S_RING;
}

/* Positional writes: a regular file that refused a RWF_NOWAIT write is
 * remembered, so later writes skip the try that fails.  Only positional
 * calls use it: a stale hint (the number reused for a pipe) then costs a
 * plain pwrite that fails with ESPIPE, which is the right answer. */
static enum strategy hint_at(int fd, bool write)
{
	return write && hint_kind(fd) == H_FILE_WRITE ? file_strategy() :
							 S_NOWAIT;
}

/* ---- classification -------------------------------------------------- */

/* Character device majors (Documentation/admin-guide/devices.txt). */
enum {
	MAJ_TTY = 4,           /* virtual consoles, serial ports */
	MAJ_TTYAUX = 5,        /* 5:0 /dev/tty, 5:1 /dev/console, 5:2 ptmx */
	MAJ_PTY_MASTER = 128,  /* 128-135: Unix98 pty masters */
	MAJ_PTY_SLAVE = 136,   /* 136-143: Unix98 pty slaves */
	MAJ_PTY_LAST = 143,
};

/* Opening some character devices makes something new: /dev/ptmx a new
 * terminal pair, /dev/net/tun a new interface.  Only terminals proper
 * open the same thing again. */
static bool is_tty_slave(const struct stat *st)
{
	unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);
	return S_ISCHR(st->st_mode) &&
	       (maj == MAJ_TTY || (maj == MAJ_TTYAUX && min <= 1) ||
		(maj >= MAJ_PTY_SLAVE && maj <= MAJ_PTY_LAST));
}

/* Any terminal, pty masters included: byte streams. */
static bool is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) &&
	       (maj == MAJ_TTY || maj == MAJ_TTYAUX ||
		(maj >= MAJ_PTY_MASTER && maj <= MAJ_PTY_LAST));
}

/* A private non-blocking open file description of fd's file, or -1. */
static int reopen_nonblocking(int fd, int fl)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC |
				  O_NOCTTY);
}

/* The strategy for a descriptor that refused RWF_NOWAIT (EOPNOTSUPP). */
static enum strategy no_nowait(struct op *o, const struct stat *st)
{
	int fl = fcntl(o->fd, F_GETFL);
	if (fl < 0)
		return S_NONBLOCK; /* the call reports the error */
	if (fl & O_NONBLOCK)
		return S_NONBLOCK;
	if ((S_ISFIFO(st->st_mode) || is_tty_slave(st)) &&
	    (o->call_fd = reopen_nonblocking(o->fd, fl)) >= 0)
		return S_REOPEN;
	o->call_fd = o->fd;
	o->chunk = S_ISFIFO(st->st_mode) ? PIPE_BUF :
		   is_tty(st) ? 1 : 0; /* others: maybe messages */
	return S_POLL_FIRST;
}

/*
 * The one place a strategy changes, after the try in o->how failed with
 * `err`.  Returns false when err is the call's own result.
 */
static bool classify(struct op *o, int err)
{
	struct stat st;
	switch (o->how) {
	case S_UNKNOWN:
	case S_SOCKET:
		if (err != ENOTSOCK)
			return false;
		hint_set(o->fd, false);
		o->how = S_NOWAIT;
		return true;
	case S_NOWAIT:
		if (err != EOPNOTSUPP && err != EAGAIN)
			return false;
		if (fstat(o->fd, &st) < 0)
			return false;
		if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
			o->how = file_strategy(); /* storage, not readiness */
			if (o->at && o->events == POLLOUT)
				hint_kind_set(o->fd, H_FILE_WRITE);
		}
		else if (err == EAGAIN)
			return false; /* a pipe, eventfd, ...: wait for it */
		else
			o->how = no_nowait(o, &st);
		return true;
	case S_RING: /* the backend has no transfer */
		atomic_store_explicit(&no_xfer, true, memory_order_relaxed);
		o->how = S_FILE;
		return true;
	default:
		return false;
	}
}

/* ---- one attempt per call -------------------------------------------- */

static bool writing(const struct op *o) { return o->events == POLLOUT; }

/* A plain write to a blocking descriptor that polled writable blocks if
 * it asks for more room than there is; S_POLL_FIRST writes go in chunks
 * (run_all goes on, with the context checked between them). */
static size_t plain_len(const struct op *o)
{
	if (o->how == S_POLL_FIRST && o->chunk && o->len > o->chunk)
		return o->chunk;
	return o->len;
}

static ssize_t plain_rw(struct op *o)
{
	return writing(o) ? write(o->call_fd, o->buf, plain_len(o)) :
			    read(o->call_fd, o->buf, o->len);
}

/* Through the backend's transfer.  The ring takes at most UINT_MAX bytes
 * at a time (run_all goes on).  CTX__BLOCKING: the backend has none. */
static ssize_t ring_rw(ctx_t *ctx, struct op *o, int *err)
{
	struct iovec v = { o->buf, o->len > UINT_MAX ? UINT_MAX : o->len };
	bool vec = o->iov != NULL; /* the kernel caps its length */
	struct ctx__xfer x = { .fd = o->fd, .iov = vec ? o->iov : &v,
			       .iovcnt = vec ? o->iovcnt : 1,
			       .off = o->at ? o->off : -1, .op = writing(o) ?
				CTX__XFER_WRITE : CTX__XFER_READ };
	struct ctx__want want = { .xfer = &x, .deadline = CTX__NEVER };
	int e = ctx__wait_for(ctx, &want);
	if (!x.id) { /* nothing was submitted */
		*err = e;
		return -1;
	}
	if (x.res >= 0)
		return x.res;
	*err = x.res == -ECANCELED && e ? e : -x.res;
	return -1;
}

/* One read or write in the form the strategy says. */
static ssize_t call_rw(struct op *o)
{
	struct iovec v = { o->buf, o->len };
	ssize_t n;
	switch (o->how) {
	case S_UNKNOWN:
	case S_SOCKET:
		n = writing(o) ? send(o->fd, o->buf, o->len, MSG_DONTWAIT) :
				 recv(o->fd, o->buf, o->len, MSG_DONTWAIT);
		if (n >= 0 || errno != ENOTSOCK)
			hint_set(o->fd, true);
		return n;
	case S_NOWAIT:
		return writing(o) ? pwritev2(o->fd, &v, 1, -1, RWF_NOWAIT) :
				    preadv2(o->fd, &v, 1, -1, RWF_NOWAIT);
	default:
		return plain_rw(o);
	}
}

static ssize_t call_recv(struct op *o)
{
	return recv(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT);
}

static ssize_t call_send(struct op *o)
{
	return send(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT);
}

/* ---- the try --------------------------------------------------------- */

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

/* Wait for the descriptor the calls go to, then try again. */
static int wait_ready(struct op *o)
{
	o->c.fd = o->call_fd;
	o->c.events = o->events;
	o->waited = true;
	return CTX__AGAIN;
}

/* One try in the form the strategy says, classifying the descriptor
 * again where the answer says the strategy was wrong. */
static int io_try(struct ctx__call *c)
{
	struct op *o = (struct op *)c;
	for (;;) {
		int e = 0;
		if (o->how == S_RING) {
			if ((o->n = ring_rw(o->ctx, o, &e)) >= 0)
				return CTX__DONE;
			if (e != CTX__BLOCKING)
				return e;
			classify(o, 0);
			continue;
		}
		if (o->how == S_POLL_FIRST && !o->waited)
			return wait_ready(o);
		if ((o->n = o->call(o)) >= 0)
			return CTX__DONE;
		if (errno == EINTR || (o->rw && classify(o, errno)))
			continue;
		return would_block(errno) ? wait_ready(o) : errno;
	}
}

ssize_t ctx__io_run(ctx_t *ctx, struct op *o)
{
	o->c = (struct ctx__call){ .try = io_try, .fd = -1,
				   .deadline = CTX__NEVER };
	o->ctx = ctx;
	o->call_fd = o->fd;
	o->waited = false;
	int e = ctx__call_run(ctx, &o->c);
	if (o->how == S_REOPEN) {
		/* run_all's next round starts over from the caller's fd */
		close(o->call_fd);
		o->call_fd = o->fd;
		o->how = S_NOWAIT;
	}
	return e ? ctx__fail(e) : o->n;
}

static int once_try(struct ctx__call *c)
{
	struct op *o = (struct op *)c;
	o->n = o->call(o);
	return o->n < 0 ? errno : CTX__DONE;
}

ssize_t ctx__io_once(ctx_t *ctx, struct op *o)
{
	o->c = (struct ctx__call){ .try = once_try };
	int e = ctx__call_run(ctx, &o->c);
	return e ? ctx__fail(e) : o->n;
}

/* Writes go on until all bytes are out, as write(2) on a blocking
 * descriptor does, and so does recv with MSG_WAITALL; once some bytes
 * moved, an error or the context's end returns the count so far. */
static ssize_t run_all(ctx_t *ctx, struct op *o)
{
	const char *p = o->buf;
	size_t left = o->len, done = 0;
	do {
		o->buf = (void *)(p + done);
		o->len = left;
		ssize_t n = ctx__io_run(ctx, o);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		if (n == 0 && left > 0 && !writing(o))
			break; /* end of stream: MSG_WAITALL returns short */
		done += (size_t)n;
		left -= (size_t)n;
	} while (left > 0);
	return (ssize_t)done;
}

/* MSG_WAITALL means something only on a stream: a datagram socket
 * returns one message as it is. */
static bool is_stream(int fd)
{
	int type = 0;
	socklen_t sl = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) == 0 &&
	       type == SOCK_STREAM;
}

/*
 * MSG_PEEK with MSG_WAITALL: wait for all len bytes and copy them without
 * taking them.  A peek always starts at the front of the queue, so
 * run_all's loop (go on where the last call stopped) would copy the first
 * bytes again into the rest of the buffer.  Instead the whole peek is
 * made again until it sees len bytes or the end of the stream.  While
 * part of them is there the socket stays readable, so between tries the
 * thread pauses on the context (the schedule ctx__backoff_peek); a
 * context that ends meanwhile returns what the last peek saw (-1 if it
 * saw nothing).
 */
static int peek_try(struct ctx__call *c)
{
	struct op *o = (struct op *)c;
	while ((o->n = o->call(o)) < 0 && errno == EINTR)
		;
	if (o->n < 0 && would_block(errno)) {
		c->backoff = NULL; /* nothing there: wait for it */
		return wait_ready(o);
	}
	if (o->n < 0)
		return errno;
	if (o->n == 0 || (size_t)o->n >= o->len)
		return CTX__DONE;
	c->fd = -1; /* part of it: pause, and look again */
	c->backoff = &ctx__backoff_peek;
	return CTX__AGAIN;
}

static ssize_t peek_all(ctx_t *ctx, struct op *o)
{
	o->c = (struct ctx__call){ .try = peek_try, .fd = -1,
				   .deadline = CTX__NEVER };
	o->call_fd = o->fd;
	o->n = -1;
	int e = ctx__call_run(ctx, &o->c);
	return e && o->n <= 0 ? ctx__fail(e) : o->n;
}

ssize_t ctx_read(ctx_t *ctx, int fd, void *buf, size_t len)
{
	struct op o = { .fd = fd, .events = POLLIN, .how = hint(fd),
			.call = call_rw, .buf = buf, .len = len, .rw = true };
	return ctx__io_run(ctx, &o);
}

ssize_t ctx_write(ctx_t *ctx, int fd, const void *buf, size_t len)
{
	struct op o = { .fd = fd, .events = POLLOUT, .how = hint(fd),
			.call = call_rw, .buf = (void *)buf, .len = len,
			.rw = true };
	return run_all(ctx, &o);
}

ssize_t ctx_recv(ctx_t *ctx, int fd, void *buf, size_t len, int flags)
{
	struct op o = { .fd = fd, .events = POLLIN, .how = S_SOCKET,
			.call = call_recv, .buf = buf, .len = len,
			.flags = flags };
	if (flags & MSG_DONTWAIT) /* the caller asked not to wait */
		return ctx__io_once(ctx, &o);
	if ((flags & MSG_WAITALL) && is_stream(fd)) { /* ours: loop for all */
		o.flags &= ~MSG_WAITALL;
		return flags & MSG_PEEK ? peek_all(ctx, &o) : run_all(ctx, &o);
	}
	return ctx__io_run(ctx, &o);
}

ssize_t ctx_send(ctx_t *ctx, int fd, const void *buf, size_t len, int flags)
{
	struct op o = { .fd = fd, .events = POLLOUT, .how = S_SOCKET,
			.call = call_send, .buf = (void *)buf, .len = len,
			.flags = flags };
	if (flags & MSG_DONTWAIT)
		return ctx__io_once(ctx, &o);
	return run_all(ctx, &o);
}

/* accept4 has no per-call non-blocking form: a blocking listener is
 * waited on first (see the note at the top of this file).  The first try
 * says which; waiting before the call must not wait on what accept4
 * would refuse at once: a non-socket, or a socket that does not listen. */
static int accept_kind(struct op *o)
{
	int fl = fcntl(o->fd, F_GETFL), listening = 0;
	socklen_t sl = sizeof(listening);
	if (fl < 0)
		return -1;
	o->how = fl & O_NONBLOCK ? S_NONBLOCK : S_POLL_FIRST;
	if (o->how == S_NONBLOCK)
		return 0;
	if (getsockopt(o->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		       &sl) < 0)
		return -1;
	errno = listening ? EAGAIN : EINVAL; /* EAGAIN: wait, then accept */
	return -1;
}

static ssize_t call_accept(struct op *o)
{
	if (o->how == S_UNKNOWN && accept_kind(o) < 0)
		return -1;
	return accept4(o->fd, o->addr, o->addrlen, o->flags);
}

int ctx_accept(ctx_t *ctx, int fd, struct sockaddr *addr, socklen_t *addrlen,
	       int flags)
{
	struct op o = { .fd = fd, .events = POLLIN, .call = call_accept,
			.how = S_UNKNOWN, .addr = addr, .addrlen = addrlen,
			.flags = flags };
	return (int)ctx__io_run(ctx, &o);
}

/* connect(2) has no per-call non-blocking form either.  A blocking socket
 * is made non-blocking for the duration of the call and restored after:
 * a socket that is still connecting is of no use to another thread.  The
 * socket's own error (ECONNREFUSED, ...) is the result.  A UNIX socket
 * whose listener's backlog is full says EAGAIN instead of EINPROGRESS,
 * and there is nothing to poll for: a caller that asked to block is made
 * to wait by trying again after the pauses of ctx__backoff_child until
 * the context ends. */
struct connect_call {
	struct ctx__call c; /* first: the tries cast it back */
	int fd;
	const struct sockaddr *addr;
	socklen_t addrlen;
	int fl;             /* the socket's flags */
	bool restore;       /* made non-blocking here: blocking again after */
};

/* Started: wait until writable, then the socket's own error. */
static int connect_finished(struct ctx__call *c)
{
	struct connect_call *k = (struct connect_call *)c;
	int e;
	socklen_t sl = sizeof(e);
	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
		return errno;
	return e == EINPROGRESS || e == EALREADY ? CTX__AGAIN : e;
}

static int connect_try(struct ctx__call *c)
{
	struct connect_call *k = (struct connect_call *)c;
	if (connect(k->fd, k->addr, k->addrlen) == 0)
		return CTX__DONE;
	if (errno == EINPROGRESS || errno == EINTR) {
		c->try = connect_finished;
		c->fd = k->fd;
		c->events = POLLOUT;
		c->backoff = NULL;
		return CTX__AGAIN;
	}
	if (errno != EAGAIN || !k->restore)
		return errno;
	c->fd = -1;
	c->backoff = &ctx__backoff_child;
	return CTX__AGAIN;
}

static int connect_first(struct ctx__call *c)
{
	struct connect_call *k = (struct connect_call *)c;
	if ((k->fl = fcntl(k->fd, F_GETFL)) < 0)
		return errno;
	if (!(k->fl & O_NONBLOCK)) {
		if (fcntl(k->fd, F_SETFL, k->fl | O_NONBLOCK) < 0)
			return errno;
		k->restore = true;
	}
	c->try = connect_try;
	return connect_try(c);
}

int ctx_connect(ctx_t *ctx, int fd, const struct sockaddr *addr,
		socklen_t addrlen)
{
	struct connect_call k = {
		.c = { .try = connect_first, .fd = -1, .deadline = CTX__NEVER },
		.fd = fd, .addr = addr, .addrlen = addrlen,
	};
	int e = ctx__call_run(ctx, &k.c);
	if (k.restore)
		fcntl(fd, F_SETFL, k.fl);
	return e ? ctx__fail(e) : 0;
}

/* ---- vectored and positional reads and writes ------------------------ */

/* The plain vectored call.  An S_POLL_FIRST write sends at most `chunk`
 * bytes of the first element (see plain_len); the loop goes on. */
static ssize_t plain_rwv(struct op *o)
{
	const struct iovec *v = o->iov;
	if (writing(o) && o->how == S_POLL_FIRST && o->chunk && o->iovcnt &&
	    o->len > o->chunk) {
		size_t n = v->iov_len < o->chunk ? v->iov_len : o->chunk;
		return o->at ? pwrite(o->call_fd, v->iov_base, n, o->off) :
			       write(o->call_fd, v->iov_base, n);
	}
	if (o->at)
		return writing(o) ? pwritev(o->call_fd, v, o->iovcnt, o->off) :
				    preadv(o->call_fd, v, o->iovcnt, o->off);
	return writing(o) ? writev(o->call_fd, v, o->iovcnt) :
			    readv(o->call_fd, v, o->iovcnt);
}

static ssize_t call_rwv(struct op *o)
{
	struct msghdr m = { .msg_iov = (struct iovec *)o->iov,
			    .msg_iovlen = (size_t)o->iovcnt };
	ssize_t n;
	switch (o->how) {
	case S_UNKNOWN:
	case S_SOCKET:
		n = writing(o) ? sendmsg(o->fd, &m, MSG_DONTWAIT) :
				 recvmsg(o->fd, &m, MSG_DONTWAIT);
		if (n >= 0 || errno != ENOTSOCK)
			hint_set(o->fd, true);
		return n;
	case S_NOWAIT:
		return writing(o) ? pwritev2(o->fd, o->iov, o->iovcnt,
					     o->at ? o->off : -1, RWF_NOWAIT) :
				    preadv2(o->fd, o->iov, o->iovcnt,
					    o->at ? o->off : -1, RWF_NOWAIT);
	default:
		return plain_rwv(o);
	}
}

/* The total of an iovec, or -1 (EINVAL) where the call would refuse it
 * or we could not walk it. */
static ssize_t iov_total(const struct iovec *iov, int iovcnt)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
		return ctx__fail(EINVAL);
	size_t t = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - t)
			return ctx__fail(EINVAL);
		t += iov[i].iov_len;
	}
	return (ssize_t)t;
}

/* Drop the first n bytes of the (copied) vector *v of *cnt elements. */
static void iov_advance(struct iovec **v, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*v)->iov_len) {
		n -= (*v)->iov_len;
		(*v)++;
		(*cnt)--;
	}
	if (n) {
		(*v)->iov_base = (char *)(*v)->iov_base + n;
		(*v)->iov_len -= n;
	}
}

#define IOV_STACK 16

/*
 * run_all for vectors: the first try uses the caller's array; a short
 * transfer goes on with a copy (the caller's is const), at the advanced
 * offset for positional calls.  Reads stop at the end of the stream.
 */
static ssize_t run_allv(ctx_t *ctx, struct op *o)
{
	ssize_t n = ctx__io_run(ctx, o);
	if (n < 0 || (size_t)n == o->len || (n == 0 && !writing(o)))
		return n;
	struct iovec stack[IOV_STACK], *copy = stack;
	if (o->iovcnt > IOV_STACK &&
	    !(copy = malloc(sizeof(*copy) * (size_t)o->iovcnt)))
		return n; /* a short count is what we can give */
	memcpy(copy, o->iov, sizeof(*copy) * (size_t)o->iovcnt);
	struct iovec *v = copy;
	int cnt = o->iovcnt;
	size_t done = (size_t)n, total = o->len;
	while (done < total) {
		iov_advance(&v, &cnt, (size_t)n);
		o->iov = v;
		o->iovcnt = cnt;
		o->len = total - done;
		o->off += o->at ? n : 0;
		o->moved = true;
		n = ctx__io_run(ctx, o);
		if (n <= 0)
			break; /* an error or the end: the count so far */
		done += (size_t)n;
	}
	if (copy != stack)
		free(copy);
	return (ssize_t)done;
}

/* One vectored operation; all bytes when `all`. */
static ssize_t rwv(ctx_t *ctx, int fd, const struct iovec *iov, int iovcnt,
		   bool at, off_t off, short events, bool all)
{
	ssize_t t = iov_total(iov, iovcnt);
	if (t < 0)
		return -1;
	if (at && off < 0)
		return ctx__fail(EINVAL);
	struct op o = { .fd = fd, .events = events,
			.how = at ? hint_at(fd, events == POLLOUT) : hint(fd),
			.call = call_rwv,
			.iov = iov, .iovcnt = iovcnt, .len = (size_t)t,
			.rw = true, .at = at, .off = off };
	return all ? run_allv(ctx, &o) : ctx__io_run(ctx, &o);
}

ssize_t ctx_readv(ctx_t *ctx, int fd, const struct iovec *iov, int iovcnt)
{
	return rwv(ctx, fd, iov, iovcnt, false, 0, POLLIN, false);
}

ssize_t ctx_writev(ctx_t *ctx, int fd, const struct iovec *iov, int iovcnt)
{
	return rwv(ctx, fd, iov, iovcnt, false, 0, POLLOUT, true);
}

ssize_t ctx_preadv(ctx_t *ctx, int fd, const struct iovec *iov, int iovcnt,
		   off_t offset)
{
	return rwv(ctx, fd, iov, iovcnt, true, offset, POLLIN, false);
}

ssize_t ctx_pwritev(ctx_t *ctx, int fd, const struct iovec *iov, int iovcnt,
		    off_t offset)
{
	return rwv(ctx, fd, iov, iovcnt, true, offset, POLLOUT, true);
}

ssize_t ctx_pread(ctx_t *ctx, int fd, void *buf, size_t len, off_t offset)
{
	struct iovec v = { buf, len };
	return rwv(ctx, fd, &v, 1, true, offset, POLLIN, false);
}

ssize_t ctx_pwrite(ctx_t *ctx, int fd, const void *buf, size_t len,
		   off_t offset)
{
	struct iovec v = { (void *)buf, len };
	return rwv(ctx, fd, &v, 1, true, offset, POLLOUT, true);
}

/* ---- datagrams and messages ------------------------------------------ */

static ssize_t call_recvfrom(struct op *o)
{
	return recvfrom(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT,
			o->addr, o->addrlen);
}

static ssize_t call_sendto(struct op *o)
{
	return sendto(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT,
		      o->addr, o->addrlen ? *o->addrlen : 0);
}

/* The caller's message with the vector where the loop is; ancillary
 * data goes with the first bytes only. */
static struct msghdr msg_now(const struct op *o)
{
	struct msghdr m = *(const struct msghdr *)o->buf;
	m.msg_iov = (struct iovec *)o->iov;
	m.msg_iovlen = (size_t)o->iovcnt;
	if (o->moved) {
		m.msg_control = NULL;
		m.msg_controllen = 0;
	}
	return m;
}

static ssize_t call_sendmsg(struct op *o)
{
	struct msghdr m = msg_now(o);
	return sendmsg(o->fd, &m, o->flags | MSG_DONTWAIT);
}

static ssize_t call_recvmsg(struct op *o)
{
	struct msghdr m = msg_now(o), *out = o->buf;
	ssize_t n = recvmsg(o->fd, &m, o->flags | MSG_DONTWAIT);
	if (n >= 0 && !o->moved) { /* what recvmsg tells the caller */
		out->msg_namelen = m.msg_namelen;
		out->msg_controllen = m.msg_controllen;
		out->msg_flags = m.msg_flags;
	} else if (n >= 0) {
		out->msg_flags |= m.msg_flags & MSG_TRUNC;
	}
	return n;
}

static ssize_t call_recvmmsg(struct op *o)
{
	return recvmmsg(o->fd, o->buf, (unsigned)o->len,
			o->flags | MSG_DONTWAIT, NULL);
}

static ssize_t call_sendmmsg(struct op *o)
{
	return sendmmsg(o->fd, o->buf, (unsigned)o->len,
			o->flags | MSG_DONTWAIT);
}

ssize_t ctx_recvfrom(ctx_t *ctx, int fd, void *buf, size_t len, int flags,
		     struct sockaddr *src, socklen_t *srclen)
{
	struct op o = { .fd = fd, .events = POLLIN, .how = S_SOCKET,
			.call = call_recvfrom, .buf = buf, .len = len,
			.flags = flags, .addr = src, .addrlen = srclen };
	if (flags & MSG_DONTWAIT)
		return ctx__io_once(ctx, &o);
	if ((flags & MSG_WAITALL) && is_stream(fd)) {
		o.flags &= ~MSG_WAITALL;
		return flags & MSG_PEEK ? peek_all(ctx, &o) : run_all(ctx, &o);
	}
	return ctx__io_run(ctx, &o);
}

ssize_t ctx_sendto(ctx_t *ctx, int fd, const void *buf, size_t len,
		   int flags, const struct sockaddr *dst, socklen_t dstlen)
{
	struct op o = { .fd = fd, .events = POLLOUT, .how = S_SOCKET,
			.call = call_sendto, .buf = (void *)buf, .len = len,
			.flags = flags, .addr = (struct sockaddr *)dst,
			.addrlen = &dstlen };
	if (flags & MSG_DONTWAIT)
		return ctx__io_once(ctx, &o);
	return run_all(ctx, &o);
}

/* A message call: one try for MSG_DONTWAIT, else waited for; sends and
 * MSG_WAITALL receives go on after a short count (a stream socket). */
static ssize_t msg_op(ctx_t *ctx, int fd, struct msghdr *msg, int flags,
		      short events, ssize_t (*call)(struct op *o))
{
	if (!msg)
		return ctx__fail(EINVAL);
	if (msg->msg_iovlen > IOV_MAX) /* as sendmsg(2) says it */
		return ctx__fail(EMSGSIZE);
	ssize_t t = iov_total(msg->msg_iov, (int)msg->msg_iovlen);
	if (t < 0)
		return -1;
	struct op o = { .fd = fd, .events = events, .how = S_SOCKET,
			.call = call, .buf = msg, .len = (size_t)t,
			.iov = msg->msg_iov, .iovcnt = (int)msg->msg_iovlen,
			.flags = flags };
	if (flags & MSG_DONTWAIT)
		return ctx__io_once(ctx, &o);
	if (events == POLLOUT)
		return run_allv(ctx, &o);
	if ((flags & MSG_WAITALL) && is_stream(fd)) {
		o.flags &= ~MSG_WAITALL;
		return flags & MSG_PEEK ? peek_all(ctx, &o) : run_allv(ctx, &o);
	}
	return ctx__io_run(ctx, &o);
}

ssize_t ctx_recvmsg(ctx_t *ctx, int fd, struct msghdr *msg, int flags)
{
	return msg_op(ctx, fd, msg, flags, POLLIN, call_recvmsg);
}

ssize_t ctx_sendmsg(ctx_t *ctx, int fd, const struct msghdr *msg, int flags)
{
	return msg_op(ctx, fd, (struct msghdr *)msg, flags, POLLOUT,
		      call_sendmsg);
}

/* recvmmsg: waits for the first message, then takes what is there. */
int ctx_recvmmsg(ctx_t *ctx, int fd, struct mmsghdr *msgs, unsigned int n,
		 int flags)
{
	struct op o = { .fd = fd, .events = POLLIN, .how = S_SOCKET,
			.call = call_recvmmsg, .buf = msgs, .len = n,
			.flags = flags & ~MSG_WAITFORONE };
	if (flags & MSG_DONTWAIT)
		return (int)ctx__io_once(ctx, &o);
	return (int)ctx__io_run(ctx, &o);
}

/* sendmmsg: all n as the blocking call does; once some went, an error or
 * the context's end returns how many. */
int ctx_sendmmsg(ctx_t *ctx, int fd, struct mmsghdr *msgs, unsigned int n,
		 int flags)
{
	struct op o = { .fd = fd, .events = POLLOUT, .how = S_SOCKET,
			.call = call_sendmmsg, .flags = flags };
	if (flags & MSG_DONTWAIT) {
		o.buf = msgs;
		o.len = n;
		return (int)ctx__io_once(ctx, &o);
	}
	unsigned sent = 0;
	do {
		o.buf = msgs + sent;
		o.len = n - sent;
		ssize_t r = ctx__io_run(ctx, &o);
		if (r < 0)
			return sent ? (int)sent : -1;
		sent += (unsigned)r;
	} while (sent < n);
	return (int)sent;
}
