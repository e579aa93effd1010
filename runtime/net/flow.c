/*
 * A flow: one direction of a copy, moved without blocking, on the public
 * calls and plain system calls only (flow.h says what a step promises).
 *
 * Two ways to move the bytes:
 *
 *   splice   where one end is a pipe, splice(2) moves them inside the
 *            kernel, through ctx_splice with SPLICE_F_NONBLOCK (one try,
 *            which knows how to keep a blocking socket on the other side
 *            from blocking).  A pair that splice refuses (EINVAL: an
 *            O_APPEND file, a terminal) falls back to the buffer.
 *   buffer   everything else, sockets to sockets included: read into a
 *            buffer, write it out.  splice between two sockets needs a
 *            pipe in the middle, two descriptors more per direction;
 *            proxy.c says why that does not pay here.
 *
 * The non-blocking try of each end, chosen once from fstat(2) and
 * F_GETFL, never changes the descriptor's flags, which other threads
 * share: a socket takes MSG_DONTWAIT, a pipe RWF_NOWAIT, a descriptor
 * already non-blocking the plain call, and a regular file the plain call
 * (it is never "not ready"; the step's budget keeps it in rounds).  An
 * end that refuses RWF_NOWAIT (a terminal, some devices) is polled with a
 * zero timeout first, and then written at most PIPE_BUF bytes (a FIFO:
 * what POLLOUT promises) or one byte (anything else) at a time.
 *
 * Every transfer the kernel makes touches the context (ctx_touch): each
 * read, and each write, partial ones included, so a peer that reads
 * slowly but steadily keeps an idle context alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/flow.h"

/* The most bytes one step writes, so that the other flow of a proxy
 * gets its turn on a busy connection and the context is looked at. */
#define STEP_BUDGET ((uint64_t)256 << 10)
/* The most one splice call is asked to move. */
#define SPLICE_LEN ((size_t)1 << 20)

static int end_init(struct ctx__end *e, int fd)
{
	struct stat st;
	e->fd = fd;
	if (fstat(fd, &st) < 0)
		return -1;
	e->pipe = S_ISFIFO(st.st_mode);
	if (S_ISSOCK(st.st_mode)) {
		e->how = CTX__END_SOCKET;
		return 0;
	}
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		e->how = CTX__END_FILE;
		return 0;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	e->how = fl & O_NONBLOCK ? CTX__END_NONBLOCK : CTX__END_NOWAIT;
	return 0;
}

static bool ready(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };
	return poll(&p, 1, 0) == 1;
}

/* One try: the bytes, 0 at the end, -1 with errno (EAGAIN: not now). */
static ssize_t try_read(struct ctx__end *e, void *buf, size_t len)
{
	struct iovec v = { buf, len };
	switch (e->how) {
	case CTX__END_SOCKET:
		return recv(e->fd, buf, len, MSG_DONTWAIT);
	case CTX__END_NOWAIT:
		return preadv2(e->fd, &v, 1, -1, RWF_NOWAIT);
	case CTX__END_POLLED:
		if (!ready(e->fd, POLLIN)) {
			errno = EAGAIN;
			return -1;
		}
		/* fall through */
	default:
		return read(e->fd, buf, len);
	}
}

static ssize_t try_write(struct ctx__end *e, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };
	switch (e->how) {
	case CTX__END_SOCKET:
		return send(e->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	case CTX__END_NOWAIT:
		return pwritev2(e->fd, &v, 1, -1, RWF_NOWAIT);
	case CTX__END_POLLED:
		if (!ready(e->fd, POLLOUT)) {
			errno = EAGAIN;
			return -1;
		}
		if (len > (e->pipe ? PIPE_BUF : 1))
			len = e->pipe ? PIPE_BUF : 1;
		/* fall through */
	default:
		return write(e->fd, buf, len);
	}
}

/* try_read or try_write until it is not EINTR, learning that an end
 * refuses RWF_NOWAIT. */
static ssize_t transfer(struct ctx__end *e, void *buf, size_t len,
			bool write)
{
	for (;;) {
		ssize_t n = write ? try_write(e, buf, len)
				  : try_read(e, buf, len);
		if (n >= 0)
			return n;
		if (errno == EOPNOTSUPP && e->how == CTX__END_NOWAIT)
			e->how = CTX__END_POLLED;
		else if (errno != EINTR)
			return -1;
	}
}

static bool would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK;
}

int ctx__flow_init(struct ctx__flow *f, ctx_t *ctx, int dst, int src,
		   uint64_t max, size_t cap)
{
	*f = (struct ctx__flow){ .ctx = ctx, .left = max, .cap = cap };
	if (end_init(&f->src, src) < 0 || end_init(&f->dst, dst) < 0)
		return -1;
	f->splice = f->src.pipe || f->dst.pipe;
	f->eof = max == 0;
	if (!f->splice && !(f->buf = malloc(cap))) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void ctx__flow_free(struct ctx__flow *f)
{
	free(f->buf);
	f->buf = NULL;
}

/* The buffer's half of a step: write what is buffered, read more. */
static int step_buffer(struct ctx__flow *f)
{
	uint64_t budget = STEP_BUDGET;
	while (budget > 0 && !ctx__flow_done(f)) {
		bool out = f->head < f->tail;
		uint64_t most = f->left < f->cap ? f->left : f->cap;
		size_t len = out ? f->tail - f->head : (size_t)most;
		ssize_t n = transfer(out ? &f->dst : &f->src,
				     f->buf + (out ? f->head : 0), len, out);
		if (n < 0 && would_block(errno)) {
			*(out ? &f->wait_dst : &f->wait_src) = true;
			return 0;
		}
		if (n < 0)
			return -1;
		if (n == 0 && !out) {
			f->eof = true;
			return 0;
		}
		ctx_touch(f->ctx);
		if (out) {
			f->head += (size_t)n;
			f->moved += (uint64_t)n;
			budget -= (uint64_t)n < budget ? (uint64_t)n : budget;
			if (f->head == f->tail)
				f->head = f->tail = 0;
		} else {
			f->tail = (size_t)n;
			f->left -= (uint64_t)n;
			f->eof = f->left == 0;
		}
	}
	return 0;
}

/* splice refused this pair: go on through a buffer. */
static int unsplice(struct ctx__flow *f)
{
	f->splice = false;
	if (!(f->buf = malloc(f->cap))) {
		errno = ENOMEM;
		return -1;
	}
	return step_buffer(f);
}

/* The splice half: what it ran out on, when it would block, is src if
 * src has nothing, else dst. */
static int step_splice(struct ctx__flow *f)
{
	uint64_t budget = STEP_BUDGET;
	while (budget > 0 && !f->eof) {
		size_t len = f->left < SPLICE_LEN ? (size_t)f->left
						  : SPLICE_LEN;
		ssize_t n = ctx_splice(f->ctx, f->src.fd, NULL, f->dst.fd, NULL,
				       len, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0 && would_block(errno)) {
			bool in = ready(f->src.fd, POLLIN);
			*(in ? &f->wait_dst : &f->wait_src) = true;
			return 0;
		}
		if (n < 0)
			return errno == EINVAL && !f->moved ? unsplice(f) : -1;
		if (n == 0) {
			f->eof = true;
			return 0;
		}
		ctx_touch(f->ctx);
		f->moved += (uint64_t)n;
		f->left -= (uint64_t)n;
		f->eof = f->left == 0;
		budget -= (uint64_t)n < budget ? (uint64_t)n : budget;
	}
	return 0;
}

int ctx__flow_step(struct ctx__flow *f)
{
	f->wait_src = f->wait_dst = false;
	return f->splice ? step_splice(f) : step_buffer(f);
}
