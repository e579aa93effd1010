/*
 * Cancellable I/O: read, write, recv, send, accept, connect.
 *
 * Every call follows one skeleton (run): refuse if the context is done;
 * try the call without blocking; on EAGAIN wait for the descriptor, the
 * context and its deadline together; try again.  With data ready the cost
 * is the system call plus the done check.
 *
 * Trying "without blocking" must not change the descriptor's own flags,
 * which other threads share.  The per-call forms used:
 *  - sockets: recv/send with MSG_DONTWAIT (the plain call's cost);
 *  - pipes, eventfds, regular files: preadv2/pwritev2 with RWF_NOWAIT;
 *  - descriptors that refuse RWF_NOWAIT (FIFOs, terminals, some character
 *    devices: EOPNOTSUPP): the plain call if the descriptor is already
 *    non-blocking; else (FIFOs and terminals that are not pty masters)
 *    the call goes to a private non-blocking open file description of the
 *    same file, opened through /proc/self/fd for the duration of the call
 *    (the caller's flags stay as they are).  Where
 *    that cannot be opened, wait for readiness first and then make the
 *    plain call, writing at most PIPE_BUF bytes at a time; a plain read
 *    there blocks like read(2) if another thread drains the descriptor
 *    first;
 *  - regular files are never "not ready" to epoll (it refuses them), so
 *    a read that would wait for the disk is made directly.
 * A per-thread hint remembers which descriptors are sockets; a stale hint
 * costs one failed call (ENOTSOCK), never a wrong result.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ctx-internal.h"

enum mode {
	M_GUESS,   /* not chosen yet: consult the socket hint */
	M_SOCK,    /* recv/send with MSG_DONTWAIT */
	M_NOWAIT,  /* preadv2/pwritev2 with RWF_NOWAIT */
	M_PLAIN,   /* the plain call: the fd is non-blocking, or ready */
};

struct op {
	int fd;               /* where calls and waits go */
	int own_fd;           /* a private reopened descriptor, or -1 */
	uint32_t events;      /* EPOLLIN or EPOLLOUT */
	enum mode mode;
	bool poll_first;      /* no non-blocking form: wait, then call */
	bool rw;              /* a read or write: the ring can do it */
	bool ring;            /* io_uring backend: transfer through the ring */
	size_t chunk;         /* poll_first writes: most bytes per call */
	ssize_t (*call)(struct op *o);
	void *buf;
	size_t len;
	int flags;
	struct sockaddr *addr;
	socklen_t *addrlen;
};

/* ---- the socket hint ------------------------------------------------- */

#define HINTS 64
static __thread int hints[HINTS]; /* (fd + 1) * 2 + is_socket; 0: none */

static enum mode hint_mode(int fd)
{
	if (fd < 0) /* the call itself reports EBADF */
		return M_GUESS;
	int h = hints[fd % HINTS];
	if (h >> 1 != fd + 1)
		return M_GUESS;
	return h & 1 ? M_SOCK : M_NOWAIT;
}

static void hint_set(int fd, bool sock)
{
	if (fd >= 0)
		hints[fd % HINTS] = (fd + 1) * 2 + sock;
}

/* A private non-blocking open file description of fd's file, or -1. */
static int reopen_nonblocking(int fd, int fl)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC |
				  O_NOCTTY);
}

/* Opening some character devices makes something new: /dev/ptmx a new
 * terminal pair, /dev/net/tun a new interface.  Only terminals proper
 * (virtual consoles, /dev/tty, /dev/console, pseudo-terminal slaves) open
 * the same thing again. */
static bool is_tty_slave(const struct stat *st)
{
	unsigned maj = major(st->st_rdev), min = minor(st->st_rdev);
	return S_ISCHR(st->st_mode) &&
	       (maj == 4 || (maj == 5 && min <= 1) ||
		(maj >= 136 && maj <= 143));
}

/* Any terminal, pty masters included: byte streams. */
static bool is_tty(const struct stat *st)
{
	unsigned maj = major(st->st_rdev);
	return S_ISCHR(st->st_mode) &&
	       (maj == 4 || maj == 5 || (maj >= 128 && maj <= 143));
}

/* The descriptor refuses RWF_NOWAIT.  A regular file never waits for
 * readiness: make the plain call.  Otherwise, if it is non-blocking the
 * plain call is the try; else try on a non-blocking reopening of it (only
 * FIFOs and character devices: they have no file offset to lose);
 * failing that, wait for readiness before each call. */
static ssize_t no_nowait(struct op *o)
{
	struct stat st;
	int fl = fcntl(o->fd, F_GETFL);
	if (fl < 0 || fstat(o->fd, &st) < 0)
		return -1;
	o->mode = M_PLAIN;
	bool reopenable = S_ISFIFO(st.st_mode) || is_tty_slave(&st);
	bool blocking = !(fl & O_NONBLOCK);
	if (o->rw && ctx__uring_on() && S_ISREG(st.st_mode)) {
		o->ring = true; /* cancellable there: see to_ring */
		errno = EAGAIN;
		return -1;
	}
	if (S_ISREG(st.st_mode) || !blocking)
		return o->call(o);
	if (reopenable && (o->own_fd = reopen_nonblocking(o->fd, fl)) >= 0) {
		o->fd = o->own_fd;
	} else {
		o->poll_first = true;
		o->chunk = S_ISFIFO(st.st_mode) ? PIPE_BUF :
			   is_tty(&st) ? 1 : 0; /* others: maybe messages */
	}
	if (o->poll_first) {
		errno = EAGAIN;
		return -1;
	}
	return o->call(o);
}

/* ---- one attempt per call -------------------------------------------- */

/* A plain write to a blocking descriptor that polled writable blocks if
 * it asks for more room than there is, until all of it fits.  PIPE_BUF
 * bytes fit in a writable FIFO; a writable terminal (a pty master)
 * promises one byte; other descriptors may take messages, not bytes,
 * and get the whole length.  Larger writes go in such chunks, with the
 * context checked between them (run_all). */
static size_t plain_chunk(struct op *o)
{
	size_t most = o->chunk ? o->chunk : o->len;
	return o->poll_first && o->len > most ? most : o->len;
}

/* The ring takes at most UINT_MAX bytes at a time; run_all goes on. */
static size_t plain_len(struct op *o)
{
	return o->len > UINT_MAX ? UINT_MAX : o->len;
}

static bool writing(const struct op *o) { return o->events == EPOLLOUT; }

/* One read or write, in the form o->mode says; a socket that turns out
 * not to be one, or a descriptor that refuses RWF_NOWAIT, moves o on to
 * the next form. */
static ssize_t call_rw(struct op *o)
{
	struct iovec v = { o->buf, o->len };
	ssize_t n;
	switch (o->mode) {
	case M_PLAIN:
		return writing(o) ? write(o->fd, o->buf, plain_chunk(o)) :
				    read(o->fd, o->buf, o->len);
	case M_GUESS:
	case M_SOCK:
		n = writing(o) ? send(o->fd, o->buf, o->len, MSG_DONTWAIT) :
				 recv(o->fd, o->buf, o->len, MSG_DONTWAIT);
		if (n >= 0 || errno != ENOTSOCK) {
			hint_set(o->fd, true);
			return n;
		}
		hint_set(o->fd, false);
		o->mode = M_NOWAIT;
		/* fall through */
	case M_NOWAIT:
		n = writing(o) ? pwritev2(o->fd, &v, 1, -1, RWF_NOWAIT) :
				 preadv2(o->fd, &v, 1, -1, RWF_NOWAIT);
		if (n < 0 && errno == EOPNOTSUPP)
			return no_nowait(o);
		return n;
	}
	return -1;
}

static ssize_t call_recv(struct op *o)
{
	return recv(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT);
}

static ssize_t call_send(struct op *o)
{
	return send(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT);
}

static ssize_t call_accept(struct op *o)
{
	return accept4(o->fd, o->addr, o->addrlen, o->flags);
}

/* ---- the skeleton ---------------------------------------------------- */

static ssize_t fail(int e)
{
	errno = e;
	return -1;
}

/* With the io_uring backend, a transfer on a regular file that would
 * wait for the storage goes through the ring, where a context can stop
 * it (the epoll backend can only make the call and wait it out).  Only
 * an RWF_NOWAIT try can have been on a regular file: a socket's EAGAIN
 * costs no fstat. */
static bool to_ring(struct op *o)
{
	struct stat st;
	if (!o->ring && o->rw && o->mode == M_NOWAIT && ctx__uring_on() &&
	    fstat(o->fd, &st) == 0 && S_ISREG(st.st_mode))
		o->ring = true;
	return o->ring;
}

static ssize_t attempt_and_wait(ctx_t *ctx, struct op *o)
{
	bool ready = false;
	for (;;) {
		if (!o->poll_first || ready) {
			ssize_t n = o->call(o);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (to_ring(o))
				return ctx__wait_rw(ctx, o->fd, o->buf,
						    plain_len(o), writing(o));
		}
		int e = ctx__wait_fd(ctx, o->fd, o->events, CTX__NEVER);
		if (e == CTX__BLOCKING) {
			o->mode = M_PLAIN; /* a regular file: just do it */
			o->poll_first = true;
		} else if (e != CTX__READY) {
			return fail(e);
		}
		ready = true;
	}
}

static ssize_t run(ctx_t *ctx, struct op *o)
{
	int e = ctx_err(ctx);
	if (e)
		return fail(e);
	int fd = o->fd;
	o->own_fd = -1;
	ssize_t n = attempt_and_wait(ctx, o);
	if (o->own_fd >= 0) {
		/* run_all's next round starts over from the caller's fd */
		e = errno;
		close(o->own_fd);
		o->fd = fd;
		o->mode = M_NOWAIT;
		errno = e;
	}
	return n;
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
		ssize_t n = run(ctx, o);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		if (n == 0 && left > 0 && o->events == EPOLLIN)
			break; /* end of stream: MSG_WAITALL returns short */
		done += (size_t)n;
		left -= (size_t)n;
	} while (left > 0);
	return (ssize_t)done;
}

ssize_t ctx_read(ctx_t *ctx, int fd, void *buf, size_t len)
{
	struct op o = { .fd = fd, .events = EPOLLIN, .mode = hint_mode(fd),
			.call = call_rw, .buf = buf, .len = len, .rw = true };
	return run(ctx, &o);
}

ssize_t ctx_write(ctx_t *ctx, int fd, const void *buf, size_t len)
{
	struct op o = { .fd = fd, .events = EPOLLOUT, .mode = hint_mode(fd),
			.call = call_rw, .buf = (void *)buf, .len = len,
			.rw = true };
	return run_all(ctx, &o);
}

/* The caller said MSG_DONTWAIT: one try, after the done check. */
static ssize_t dontwait(ctx_t *ctx, struct op *o)
{
	int e = ctx_err(ctx);
	return e ? fail(e) : o->call(o);
}

ssize_t ctx_recv(ctx_t *ctx, int fd, void *buf, size_t len, int flags)
{
	struct op o = { .fd = fd, .events = EPOLLIN, .call = call_recv,
			.buf = buf, .len = len, .flags = flags };
	if (flags & MSG_DONTWAIT) /* the caller asked not to wait */
		return dontwait(ctx, &o);
	if (flags & MSG_WAITALL) { /* the wait is ours: loop for all */
		o.flags &= ~MSG_WAITALL;
		return run_all(ctx, &o);
	}
	return run(ctx, &o);
}

ssize_t ctx_send(ctx_t *ctx, int fd, const void *buf, size_t len, int flags)
{
	struct op o = { .fd = fd, .events = EPOLLOUT, .call = call_send,
			.buf = (void *)buf, .len = len, .flags = flags };
	if (flags & MSG_DONTWAIT)
		return dontwait(ctx, &o);
	return run_all(ctx, &o);
}

/* accept4 has no per-call non-blocking form: a blocking listener is
 * waited on first (see the note at the top of this file). */
int ctx_accept(ctx_t *ctx, int fd, struct sockaddr *addr, socklen_t *addrlen,
	       int flags)
{
	int e = ctx_err(ctx);
	if (e)
		return (int)fail(e);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	/* Waiting before the call must not wait on what accept4 would
	 * refuse at once: a non-socket, or a socket that does not listen. */
	int listening = 0;
	socklen_t sl = sizeof(listening);
	if (!(fl & O_NONBLOCK) &&
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl) < 0)
		return -1;
	if (!(fl & O_NONBLOCK) && !listening)
		return (int)fail(EINVAL);
	struct op o = { .fd = fd, .events = EPOLLIN, .call = call_accept,
			.poll_first = !(fl & O_NONBLOCK), .addr = addr,
			.addrlen = addrlen, .flags = flags };
	return (int)run(ctx, &o);
}

/* Wait for a non-blocking connect to finish; the socket's own error
 * (ECONNREFUSED, ...) is the result. */
static int connect_wait(ctx_t *ctx, int fd)
{
	for (;;) {
		int e = ctx__wait_fd(ctx, fd, EPOLLOUT, CTX__NEVER);
		if (e != CTX__READY)
			return e == CTX__BLOCKING ? ENOTSOCK : e;
		socklen_t sl = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
			return errno;
		if (e != EINPROGRESS && e != EALREADY)
			return e;
	}
}

/* One connect, waited out.  A UNIX socket whose listener's backlog is
 * full says EAGAIN instead of EINPROGRESS, and there is nothing to poll
 * for: a caller that asked to block is made to wait by trying again at
 * growing intervals (1 ms up to 50 ms) until the context ends. */
static int connect_try(ctx_t *ctx, int fd, const struct sockaddr *addr,
		       socklen_t addrlen, bool blocking)
{
	int64_t step = CTX_MSEC;
	for (;;) {
		if (connect(fd, addr, addrlen) == 0)
			return 0;
		if (errno == EINPROGRESS || errno == EINTR)
			return connect_wait(ctx, fd);
		if (errno != EAGAIN || !blocking)
			return errno;
		int e = ctx_sleep(ctx, step);
		if (e)
			return e;
		step = step < 50 * CTX_MSEC ? 2 * step : step;
	}
}

/* connect(2) has no per-call non-blocking form either.  A blocking socket
 * is made non-blocking for the duration of the call and restored after:
 * a socket that is still connecting is of no use to another thread. */
int ctx_connect(ctx_t *ctx, int fd, const struct sockaddr *addr,
		socklen_t addrlen)
{
	int e = ctx_err(ctx);
	if (e)
		return (int)fail(e);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	e = connect_try(ctx, fd, addr, addrlen, !(fl & O_NONBLOCK));
	if (!(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl);
	return e ? (int)fail(e) : 0;
}
