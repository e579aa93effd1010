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
 *     (100 us growing by half up to 10 ms): nothing is disturbed.
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
 *     with tee after growing sleeps as the writer does (100 us growing
 *     by half up to 10 ms), so a silent writer is seen within 10 ms of
 *     its arrival, and one that writes or leaves at once.  No other
 *     thread is involved and nothing is disturbed.  When the context
 *     ends first the call fails, unless bytes are waiting (a writer's
 *     bytes are never dropped with the descriptor).
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

/* ---- a writer waits for a reader ------------------------------------ */

static int fifo_writer_wait(ctx_t *ctx, const char *path, int flags)
{
	int64_t step = 100 * CTX_USEC;
	for (;;) {
		int e = ctx_sleep(ctx, step);
		if (e) {
			errno = e;
			return -1;
		}
		int fd = open_eintr(path, flags | O_NONBLOCK, 0);
		if (fd >= 0)
			return as_asked(fd, flags);
		if (errno != ENXIO)
			return -1;
		step += step / 2;
		step = step < 10 * CTX_MSEC ? step : 10 * CTX_MSEC;
	}
}

/* ENXIO from a non-blocking write open: a FIFO without a reader, or a
 * socket or device, for which ENXIO is the answer. */
static bool is_fifo_path(const char *path, int flags)
{
	struct stat st;
	int at = flags & O_NOFOLLOW ? AT_SYMLINK_NOFOLLOW : 0;
	return fstatat(AT_FDCWD, path, &st, at) == 0 && S_ISFIFO(st.st_mode);
}

/* ---- a reader waits for a writer ------------------------------------ */

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

/* Wait on the context until writer_seen; 0 or the context's error. */
static int await_writer(ctx_t *ctx, int rfd, int probe)
{
	int64_t step = 100 * CTX_USEC;
	while (!writer_seen(rfd, probe)) {
		int e = ctx__wait_fd(ctx, rfd, POLLIN, ctx_now() + step);
		if (e != CTX__READY && e != CTX__EXPIRED)
			return e;
		step += step / 2;
		step = step < 10 * CTX_MSEC ? step : 10 * CTX_MSEC;
	}
	return 0;
}

/* rfd, a non-blocking read end of the FIFO, once a writer has had it
 * open since the call began; rfd is closed on failure. */
static int fifo_reader_wait(ctx_t *ctx, int rfd, int flags)
{
	int probe[2], e;
	if (pipe2(probe, O_CLOEXEC | O_NONBLOCK) < 0) {
		e = errno;
	} else {
		e = await_writer(ctx, rfd, probe[1]);
		close(probe[0]);
		close(probe[1]);
	}
	if (e && !(revents(rfd) & POLLIN)) {
		close(rfd);
		errno = e;
		return -1;
	}
	return as_asked(rfd, flags);
}

int ctx_open(ctx_t *ctx, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	int e = ctx_err(ctx);
	if (e || !path) {
		errno = e ? e : EINVAL;
		return -1;
	}
	int acc = flags & O_ACCMODE;
	if ((flags & (O_NONBLOCK | O_PATH)) || acc == O_RDWR)
		return open_eintr(path, flags, mode);
	int fd = open_eintr(path, flags | O_NONBLOCK, mode);
	if (fd < 0) {
		if (errno == EWOULDBLOCK) /* a lease: only open(2) waits */
			return open_eintr(path, flags, mode);
		if (errno == ENXIO && acc == O_WRONLY &&
		    is_fifo_path(path, flags))
			return fifo_writer_wait(ctx, path, flags);
		return -1;
	}
	struct stat st;
	if (acc == O_RDONLY && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
		return fifo_reader_wait(ctx, fd, flags);
	return as_asked(fd, flags);
}
