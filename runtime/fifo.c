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
 *     without a writer, and nothing tells a reader that a writer has
 *     arrived until it writes.  That first descriptor already counts as
 *     a reader: a writer waiting in its own open(2) is let in by it at
 *     once, and may write and leave before this call's next step.  So
 *     the first descriptor is the one returned (its pipe buffer holds
 *     what such a writer wrote), and the call waits for the moment a
 *     writer has had the FIFO open since it began, which is either
 *       - now: a blocking open(2) of the same FIFO (through
 *         /proc/self/fd, so a rename cannot swap the file) returns at
 *         once while a writer has it open, or when one opens it; or
 *       - past: a writer came and left.  The first descriptor then
 *         polls POLLHUP (the kernel reports a hang-up on a read end
 *         once the writers it has seen are gone, never before the first
 *         writer, as open(2) would not have returned either).
 *     The blocking open covers the first; a hang-up context on the
 *     first descriptor (ctx_with_hangup: its watcher thread polls it)
 *     covers the second, and also ends with the caller's context.
 *     When it ends, an after-function (ctx_after_func) opens the FIFO
 *     for writing, which ends the blocked open, and keeps that writer
 *     open until the reader has seen it, so that a kick that comes
 *     before the reader blocks is not lost.  A kick by the caller's
 *     context fails the call, unless bytes are waiting (never dropped).
 *     The cost: other readers blocked on the same FIFO see a writer
 *     come and go, and the first FIFO opened for reading starts the
 *     hang-up watcher thread.
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
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx-internal.h"

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

struct kick {
	pthread_mutex_t mu;
	_Atomic int refs;
	bool finished; /* the reader's open returned */
	bool kicked;   /* hc ended it: the context, or a writer left */
	int writer;    /* the kick's write end, held until finished */
	const char *name; /* the FIFO: buf, or the caller's path */
	char buf[40];
};

static void kick_put(struct kick *k)
{
	if (atomic_fetch_sub(&k->refs, 1) == 1) {
		pthread_mutex_destroy(&k->mu);
		free(k);
	}
}

/* After-function: hc is done; end the reader's blocked open. */
static void kick_fire(void *arg)
{
	struct kick *k = arg;
	pthread_mutex_lock(&k->mu);
	if (!k->finished) {
		k->writer = open(k->name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		k->kicked = true;
	}
	pthread_mutex_unlock(&k->mu);
	kick_put(k);
}

/* Whether a writer left bytes in the FIFO rfd reads. */
static bool has_bytes(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The kick for hc (which ends with ctx, or when a writer has come and
 * gone), or NULL with errno.  It names the FIFO through /proc, so a
 * rename cannot swap the file; without /proc, by path (kick_fire only
 * opens it while the caller is inside its open). */
static struct kick *kick_new(ctx_t *hc, int rfd, const char *path,
			     ctx_after_t **a)
{
	struct kick *k = ctx__malloc(sizeof(*k));
	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	*k = (struct kick){ .writer = -1 };
	pthread_mutex_init(&k->mu, NULL);
	atomic_init(&k->refs, 2);
	snprintf(k->buf, sizeof(k->buf), "/proc/self/fd/%d", rfd);
	k->name = access(k->buf, F_OK) == 0 ? k->buf : path;
	if (!(*a = ctx_after_func(hc, kick_fire, k))) {
		int e = errno;
		pthread_mutex_destroy(&k->mu);
		free(k);
		errno = e;
		return NULL;
	}
	return k;
}

/* Open the FIFO again, blocking: it returns at once while a writer has
 * it open, else when one opens it or the kick comes.  Returns whether
 * the caller's open succeeds: not kicked, or kicked by a writer that
 * left (hc hung up, ctx live), or bytes are there to read whatever
 * ended hc.  Else errno is set. */
static bool meet_writer(ctx_t *ctx, struct kick *k, ctx_after_t *a, int rfd)
{
	int fd = open_eintr(k->name, O_RDONLY | O_CLOEXEC, 0);
	int e = errno;
	pthread_mutex_lock(&k->mu);
	k->finished = true;
	bool kicked = k->kicked;
	/* Asked while the kick's writer is still open: once it closes,
	 * the FIFO hangs up on rfd whatever real writers did. */
	bool bytes = kicked && has_bytes(rfd);
	if (k->writer >= 0)
		close(k->writer);
	pthread_mutex_unlock(&k->mu);
	if (ctx_after_stop(a))
		kick_put(k); /* kick_fire will never run */
	kick_put(k);
	if (fd >= 0)
		close(fd);
	if (!kicked) {
		errno = e;
		return fd >= 0;
	}
	if (bytes || !(e = ctx_err(ctx)))
		return true;
	errno = e;
	return false;
}

/* rfd, a non-blocking read end of the FIFO, once a writer has had it
 * open since the call began; rfd is closed on failure. */
static int fifo_reader_wait(ctx_t *ctx, int rfd, const char *path,
			    int flags)
{
	ctx_after_t *a = NULL;
	struct kick *k = NULL;
	ctx_t *hc = ctx_with_hangup(ctx, rfd);
	bool met = hc && (k = kick_new(hc, rfd, path, &a)) &&
		   meet_writer(ctx, k, a, rfd);
	int e = errno;
	ctx_release(hc); /* before rfd may close: the watcher holds it */
	if (met)
		return as_asked(rfd, flags);
	close(rfd);
	errno = e;
	return -1;
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
		return fifo_reader_wait(ctx, fd, path, flags);
	return as_asked(fd, flags);
}
