/*
 * ctx_open: open(2) that a context can end while a FIFO waits for its
 * other end.  A FIFO opened for reading alone, or writing alone, blocks
 * in open(2) until the other end is opened, and there is no descriptor
 * to poll for that.  The two directions differ:
 *
 *  a. A writer: open(O_WRONLY | O_NONBLOCK) fails with ENXIO while no
 *     reader has the FIFO open, and succeeds once one has, even one that
 *     is itself still blocked in open(2) (the kernel counts it at once).
 *     So the writer tries again after growing sleeps on the context
 *     (the schedule ctx__backoff_fifo, 100 us growing by half up to
 *     10 ms): nothing is disturbed.
 *  b. A reader: open(O_RDONLY | O_NONBLOCK) succeeds at once with or
 *     without a writer.  That descriptor already counts as a reader: a
 *     writer waiting in its own open(2) is let in by it at once, and may
 *     write and leave before this call looks again.  So it is the
 *     descriptor returned (its pipe buffer holds what such a writer
 *     wrote), once a writer has had the FIFO open since the call began:
 *       - one left bytes: the descriptor polls POLLIN;
 *       - one came and went: it polls POLLHUP (the kernel reports a
 *         hang-up on a read end once the writers it has seen are gone,
 *         never before the first one, as open(2) would not have
 *         returned either);
 *       - one has it open and has written nothing: nothing polls, but
 *         tee(2) of the empty FIFO into a pipe of the call's own fails
 *         with EAGAIN while a writer has it open, and returns 0 while
 *         none has.  tee copies without consuming, so it looks without
 *         taking a byte.
 *     The reader waits for POLLIN or POLLHUP on the context, and looks
 *     with tee after growing sleeps as the writer does (the same
 *     schedule), so a silent writer is seen within 10 ms of
 *     its arrival, and one that writes or leaves at once.  No other
 *     thread is involved and nothing is disturbed.  When the context
 *     ends first the call fails, unless bytes are waiting (a writer's
 *     bytes are never dropped with the descriptor).
 *
 * Both waits are the skeleton of every blocking call (wait/call.h): the
 * first open is its first try, and the try then looks for the other end
 * in the way its direction needs.
 *
 * The descriptor returned has exactly the flags asked for: the
 * non-blocking tries have O_NONBLOCK cleared (F_SETFL) when it was not
 * asked.  O_RDWR, O_NONBLOCK and O_PATH opens never wait for a FIFO:
 * they are plain opens, as are files that are not FIFOs (opened
 * non-blocking, then made blocking if asked: a device whose open(2)
 * itself waits, a modem line for its carrier, does not wait here).
 */
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wait/wait.h"

static int open_eintr(const char *path, int flags, mode_t mode)
{
	int fd;
	while ((fd = open(path, flags, mode)) < 0 && errno == EINTR)
		;
	return fd;
}

/* fd, made blocking if the caller did not ask for O_NONBLOCK.  F_SETFL
 * takes the status flags (it ignores the access mode and creation
 * flags) but not O_ASYNC, which open(2) ignores and F_SETFL would set. */
static int as_asked(int fd, int flags)
{
	if (!(flags & O_NONBLOCK) &&
	    fcntl(fd, F_SETFL, flags & ~O_ASYNC) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ENXIO from a non-blocking write open: a FIFO without a reader, or a
 * socket or device, for which ENXIO is the answer. */
static bool is_fifo_path(const char *path, int flags)
{
	struct stat st;
	int at = flags & O_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0;
	return fstatat(AT_FDCWD, path, &st, at) == 0 && S_ISFIFO(st.st_mode);
}

static short revents(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* Whether a writer has had the FIFO rfd reads open since rfd was
 * opened: it left bytes or has gone (POLLIN, POLLHUP), or has it open
 * now (tee into probe, a pipe's write end: EAGAIN; see the top). */
static bool writer_seen(int rfd, int probe)
{
	if (revents(rfd) & (POLLIN | POLLHUP))
		return true;
	ssize_t n = tee(rfd, probe, 1, SPLICE_F_NONBLOCK);
	return n > 0 || (n < 0 && errno == EAGAIN);
}

/* ---- the call ----------------------------------------------------- */

struct open_call {
	struct ctx__call c; /* first: the tries cast it back */
	const char *path;
	int flags;
	mode_t mode;
	int fd;             /* the result; a reader's descriptor meanwhile */
	bool reader;        /* a FIFO's read end, waiting for a writer */
	int probe[2];       /* the reader's tee target (see the top) */
};

/* A writer waits for a reader: another non-blocking open after each
 * pause. */
static int writer_try(struct ctx__call *c)
{
	struct open_call *o = (struct open_call *)c;
	o->fd = open_eintr(o->path, o->flags | O_NONBLOCK, 0);
	if (o->fd >= 0)
		return (o->fd = as_asked(o->fd, o->flags)) < 0 ? errno :
								  CTX__DONE;
	return errno == ENXIO ? CTX__AGAIN : errno;
}

/* A reader waits for a writer: its descriptor's POLLIN, or a look with
 * tee after each pause. */
static int reader_try(struct ctx__call *c)
{
	struct open_call *o = (struct open_call *)c;
	return writer_seen(o->fd, o->probe[1]) ? CTX__DONE : CTX__AGAIN;
}

/* The first try: the open itself, without waiting; then the wait that
 * the file and the direction need, if any. */
static int open_try(struct ctx__call *c)
{
	struct open_call *o = (struct open_call *)c;
	int acc = o->flags & O_ACCMODE;
	struct stat st;
	if (!o->path)
		return EINVAL;
	if ((o->flags & (O_NONBLOCK | O_PATH)) || acc == O_RDWR)
		return (o->fd = open_eintr(o->path, o->flags, o->mode)) < 0 ?
			       errno : CTX__DONE;
	o->fd = open_eintr(o->path, o->flags | O_NONBLOCK, o->mode);
	if (o->fd < 0 && errno == EWOULDBLOCK) /* a lease: open(2) waits */
		return (o->fd = open_eintr(o->path, o->flags, o->mode)) < 0 ?
			       errno : CTX__DONE;
	if (o->fd < 0 && errno == ENXIO && acc == O_WRONLY &&
	    is_fifo_path(o->path, o->flags)) {
		c->try = writer_try;
		c->backoff = &ctx__backoff_fifo;
		return CTX__AGAIN;
	}
	if (o->fd < 0)
		return errno;
	if (acc != O_RDONLY || fstat(o->fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return (o->fd = as_asked(o->fd, o->flags)) < 0 ? errno :
								  CTX__DONE;
	o->reader = true;
	if (pipe2(o->probe, O_CLOEXEC | O_NONBLOCK) < 0)
		return errno;
	c->try = reader_try;
	c->fd = o->fd;
	c->events = POLLIN;
	c->backoff = &ctx__backoff_fifo;
	return reader_try(c);
}

/* The reader's end: its descriptor once a writer was seen, or when the
 * context ended first but bytes are waiting (a writer's bytes are never
 * dropped with the descriptor); else it is closed. */
static int reader_end(struct open_call *o, int e)
{
	if (o->probe[0] >= 0) {
		close(o->probe[0]);
		close(o->probe[1]);
	}
	if (e && !(revents(o->fd) & POLLIN)) {
		close(o->fd);
		return ctx__fail(e);
	}
	return as_asked(o->fd, o->flags);
}

int ctx_open(ctx_t *ctx, const char *path, int flags, ...)
{
	struct open_call o = {
		.c = { .try = open_try, .fd = -1, .deadline = CTX__NEVER },
		.path = path, .flags = flags, .fd = -1, .probe = { -1, -1 },
	};
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		o.mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	int e = ctx__call_run(ctx, &o.c);
	if (o.reader)
		return reader_end(&o, e);
	return e ? ctx__fail(e) : o.fd;
}
