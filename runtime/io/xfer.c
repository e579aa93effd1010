/*
 * Cancellable kernel-side copies: sendfile, splice, copy_file_range, as
 * io.c's operations (ctx__io_run, on the skeleton of every blocking
 * call).  Each moves data until the count, the end of the input, an
 * error or the context, and returns the bytes moved.
 *
 * The non-blocking try:
 *   - splice has SPLICE_F_NONBLOCK, which makes the pipe side never
 *     block; a blocking pipe as sendfile's output goes the same way.
 *   - A socket side honours only its own O_NONBLOCK, which we never
 *     change.  A blocking socket is polled (without waiting) first; when
 *     sending, each call moves at most half of the room left in its send
 *     buffer (SO_SNDBUF less SIOCOUTQ), which the kernel takes without
 *     sleeping, so the call returns and the context is looked at between
 *     calls.  Half, because the buffer's accounting includes overhead
 *     beyond the payload.
 *   - Regular files have no "not ready": the plain call, at most STEP
 *     bytes at a time, with the context checked between steps (no ring
 *     operation does these copies).
 */
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "io/io-op.h"

#define STEP ((size_t)1 << 20) /* a plain call's most bytes at a time */

/* What a descriptor is, for the try. */
struct side {
	int fd;
	bool block_sock; /* a socket without O_NONBLOCK */
	bool pipe_or_sock;
	bool pipe;
};

/* fstat always (a socket or a FIFO?); F_GETFL only for a socket, whose
 * O_NONBLOCK decides.  A side that is not looked at (need false) is
 * taken for a file: sendfile's input, copy_file_range's two. */
static int side_of(int fd, struct side *s, bool need)
{
	struct stat st;
	int fl;
	s->fd = fd;
	if (!need)
		return 0;
	if (fstat(fd, &st) < 0)
		return -1;
	s->pipe = S_ISFIFO(st.st_mode);
	if (S_ISSOCK(st.st_mode)) {
		if ((fl = fcntl(fd, F_GETFL)) < 0)
			return -1;
		s->block_sock = !(fl & O_NONBLOCK);
	}
	/* Others (character devices, ...) are waited for on EAGAIN. */
	s->pipe_or_sock = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode);
	return 0;
}

/* The state of one copy; o.buf points here. */
struct copy {
	struct side in, out;
	off_t *off_in, *off_out;
	unsigned flags;
	int kind; /* K_SENDFILE, K_SPLICE, K_COPY */
	bool known; /* the sides were looked at (the first try) */
};
enum { K_SENDFILE, K_SPLICE, K_COPY };

static bool ready_now(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };
	return poll(&p, 1, 0) == 1;
}

/* Half the free room in a blocking socket's send buffer (at least one
 * byte: it polled writable). */
static size_t sock_room(int fd)
{
	int sndbuf = 0, outq = 0;
	socklen_t sl = sizeof(sndbuf);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0 ||
	    ioctl(fd, SIOCOUTQ, &outq) < 0)
		return 1;
	long room = ((long)sndbuf - outq) / 2;
	return room > 0 ? (size_t)room : 1;
}

/* Ask the wait loop to wait for fd (the call "would block"). */
static ssize_t wait_on(struct op *o, int fd, short ev)
{
	o->call_fd = fd;
	o->events = ev;
	errno = EAGAIN;
	return -1;
}

/* The sides, looked at once, by the first try: after the refusal. */
static int know_sides(struct copy *c)
{
	if (c->known)
		return 0;
	if (side_of(c->in.fd, &c->in, c->kind == K_SPLICE) < 0 ||
	    side_of(c->out.fd, &c->out, c->kind != K_COPY) < 0)
		return -1;
	c->known = true;
	return 0;
}

static ssize_t call_copy(struct op *o)
{
	struct copy *c = o->buf;
	size_t len = o->len;
	if (know_sides(c) < 0)
		return -1;
	if (len == 0) /* a copy of nothing: the sides looked at, no call */
		return 0;
	if (c->in.block_sock && !ready_now(c->in.fd, POLLIN))
		return wait_on(o, c->in.fd, POLLIN);
	if (c->out.block_sock) {
		if (!ready_now(c->out.fd, POLLOUT))
			return wait_on(o, c->out.fd, POLLOUT);
		size_t room = sock_room(c->out.fd);
		len = len < room ? len : room;
	}
	if (!c->in.pipe_or_sock && !c->out.pipe_or_sock && len > STEP)
		len = STEP;
	ssize_t n;
	switch (c->kind) {
	case K_SENDFILE:
		n = c->out.pipe ? /* the pipe's side never blocks */
			splice(c->in.fd, c->off_in, c->out.fd, NULL, len,
			       SPLICE_F_NONBLOCK) :
			sendfile(c->out.fd, c->in.fd, c->off_in, len);
		break;
	case K_SPLICE:
		n = splice(c->in.fd, c->off_in, c->out.fd, c->off_out, len,
			   c->flags | SPLICE_F_NONBLOCK);
		break;
	default:
		n = copy_file_range(c->in.fd, c->off_in, c->out.fd,
				    c->off_out, len, c->flags);
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return ready_now(c->in.fd, POLLIN) ?
			       wait_on(o, c->out.fd, POLLOUT) :
			       wait_on(o, c->in.fd, POLLIN);
	return n;
}

/* Until count, the end of input (0), an error or the context. */
static ssize_t move(ctx_t *ctx, struct copy *c, size_t count, bool once)
{
	struct op o = { .fd = c->out.fd, .events = POLLOUT, .how = S_NONBLOCK,
			.call = call_copy, .buf = c };
	size_t done = 0;
	do {
		o.len = count - done;
		o.fd = c->out.fd;
		o.events = POLLOUT;
		ssize_t n = once ? ctx__io_once(ctx, &o) : ctx__io_run(ctx, &o);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		if (n == 0 || once)
			return (ssize_t)(done + (size_t)n);
		done += (size_t)n;
	} while (done < count);
	return (ssize_t)done;
}

ssize_t ctx_sendfile(ctx_t *ctx, int out_fd, int in_fd, off_t *offset,
		     size_t count)
{
	struct copy c = { .in.fd = in_fd, .out.fd = out_fd, .off_in = offset,
			  .kind = K_SENDFILE };
	return move(ctx, &c, count, false);
}

/* SPLICE_F_NONBLOCK from the caller: one try, as splice(2) would. */
ssize_t ctx_splice(ctx_t *ctx, int fd_in, off_t *off_in, int fd_out,
		   off_t *off_out, size_t len, unsigned int flags)
{
	struct copy c = { .in.fd = fd_in, .out.fd = fd_out, .off_in = off_in,
			  .off_out = off_out, .flags = flags,
			  .kind = K_SPLICE };
	return move(ctx, &c, len, flags & SPLICE_F_NONBLOCK);
}

ssize_t ctx_copy_file_range(ctx_t *ctx, int fd_in, off_t *off_in,
			    int fd_out, off_t *off_out, size_t len,
			    unsigned int flags)
{
	struct copy c = { .in.fd = fd_in, .out.fd = fd_out, .off_in = off_in,
			  .off_out = off_out, .flags = flags, .kind = K_COPY };
	return move(ctx, &c, len, false);
}
