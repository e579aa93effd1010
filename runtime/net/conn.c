/*
 * ctx_conn_t: a connection with a read buffer, Go's bufio.Reader over a
 * net.Conn, plain or TLS alike.  The transport (conn.h) moves the bytes:
 * ctx_recv and ctx_send on a socket (MSG_NOSIGNAL: a peer that left is
 * EPIPE, never a signal), ctx_read and ctx_write on anything else, and
 * ctx_ssl_read and ctx_ssl_write for libctx-ssl's connections.
 *
 * The buffer is 4 KiB, as bufio's default.  Reads of at least that much
 * with nothing buffered go straight to the caller's memory, as bufio
 * does.  ctx_conn_read_line keeps a line in the buffer until it has the
 * whole of it (or len - 1 bytes), growing the buffer to len - 1 where the
 * line needs it: a read that fails or that the context ends leaves every
 * byte of the line where it was, for the next call.
 *
 * Every call refuses a done context at once, even when what it asks for
 * is already buffered, as every wait of the library does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/conn.h"

#define CONN_BUF 4096

struct ctx_conn {
	int fd;
	const struct ctx__conn_ops *ops;
	void *t;
	char *buf; /* bytes [off, off + len) read and not yet returned */
	size_t cap, off, len;
};

/* ---- the plain transports ---------------------------------------------- */

static ssize_t sock_read(ctx_t *ctx, void *t, int fd, void *buf, size_t len)
{
	(void)t;
	return ctx_recv(ctx, fd, buf, len, 0);
}

static ssize_t sock_write(ctx_t *ctx, void *t, int fd, const void *buf,
			  size_t len)
{
	(void)t;
	return ctx_send(ctx, fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t fd_read(ctx_t *ctx, void *t, int fd, void *buf, size_t len)
{
	(void)t;
	return ctx_read(ctx, fd, buf, len);
}

static ssize_t fd_write(ctx_t *ctx, void *t, int fd, const void *buf,
			size_t len)
{
	(void)t;
	return ctx_write(ctx, fd, buf, len);
}

static const struct ctx__conn_ops sock_ops = { sock_read, sock_write, NULL };
static const struct ctx__conn_ops fd_ops = { fd_read, fd_write, NULL };

/* ---- making and closing ------------------------------------------------ */

static void drop(int fd, const struct ctx__conn_ops *ops, void *t)
{
	int e = errno;
	if (ops->close)
		ops->close(t, fd);
	close(fd);
	errno = e;
}

CTX_API ctx_conn_t *ctx__conn_new_ops(int fd, const struct ctx__conn_ops *ops,
				      void *t)
{
	ctx_conn_t *c = malloc(sizeof *c);
	char *buf = malloc(CONN_BUF);
	if (!c || !buf) {
		free(c);
		free(buf);
		errno = ENOMEM;
		drop(fd, ops, t);
		return NULL;
	}
	*c = (ctx_conn_t){ .fd = fd, .ops = ops, .t = t, .buf = buf,
			   .cap = CONN_BUF };
	return c;
}

CTX_API ctx_conn_t *ctx_conn_new(int fd)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		errno = EBADF;
		return NULL;
	}
	return ctx__conn_new_ops(fd, S_ISSOCK(st.st_mode) ? &sock_ops : &fd_ops,
				 NULL);
}

CTX_API int ctx_conn_fd(const ctx_conn_t *c)
{
	return c ? c->fd : -1;
}

CTX_API void ctx_conn_close(ctx_conn_t *c)
{
	if (!c)
		return;
	drop(c->fd, c->ops, c->t);
	free(c->buf);
	free(c);
}

/* ---- reading ----------------------------------------------------------- */

/* The checks every call makes: 0, or -1 with errno. */
static int check(ctx_t *ctx, const ctx_conn_t *c, const void *buf,
		 size_t len)
{
	int e = !ctx || !c || (!buf && len) ? EINVAL : ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

/* Up to len buffered bytes into buf: how many. */
static size_t take(ctx_conn_t *c, void *buf, size_t len)
{
	size_t n = len < c->len ? len : c->len;
	memcpy(buf, c->buf + c->off, n);
	c->off += n;
	c->len -= n;
	if (c->len == 0)
		c->off = 0;
	return n;
}

/* One read from the transport after the buffered bytes, moved to the
 * front: the count, 0 at the end, -1 with errno. */
static ssize_t fill(ctx_t *ctx, ctx_conn_t *c)
{
	if (c->off) {
		memmove(c->buf, c->buf + c->off, c->len);
		c->off = 0;
	}
	ssize_t n = c->ops->read(ctx, c->t, c->fd, c->buf + c->len,
				 c->cap - c->len);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

CTX_API ssize_t ctx_conn_read(ctx_t *ctx, ctx_conn_t *c, void *buf,
			      size_t len)
{
	if (check(ctx, c, buf, len) < 0)
		return -1;
	if (len == 0)
		return 0;
	if (c->len)
		return (ssize_t)take(c, buf, len);
	if (len >= c->cap) /* nothing to gain from the buffer */
		return c->ops->read(ctx, c->t, c->fd, buf, len);
	ssize_t n = fill(ctx, c);
	return n <= 0 ? n : (ssize_t)take(c, buf, len);
}

CTX_API ssize_t ctx_conn_read_full(ctx_t *ctx, ctx_conn_t *c, void *buf,
				   size_t len)
{
	if (check(ctx, c, buf, len) < 0)
		return -1;
	size_t got = 0;
	while (got < len) {
		ssize_t n = ctx_conn_read(ctx, c, (char *)buf + got, len - got);
		if (n < 0)
			return got ? (ssize_t)got : -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	errno = 0;
	return (ssize_t)got;
}

/* Room for want bytes in the buffer (want > cap: grown): 0 or -1. */
static int reserve(ctx_conn_t *c, size_t want)
{
	if (want <= c->cap)
		return 0;
	size_t cap = c->cap * 2 > want ? c->cap * 2 : want;
	char *b = realloc(c->buf, cap);
	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	c->buf = b;
	c->cap = cap;
	return 0;
}

/* The bytes through the first '\n' among the first `most` buffered, 0
 * if none; `from`: how many were looked at already. */
static size_t line_end(const ctx_conn_t *c, size_t from, size_t most)
{
	size_t n = c->len < most ? c->len : most;
	const char *nl = memchr(c->buf + c->off + from, '\n', n - from);
	return nl ? (size_t)(nl - (c->buf + c->off)) + 1 : 0;
}

CTX_API ssize_t ctx_conn_read_line(ctx_t *ctx, ctx_conn_t *c, char *buf,
				   size_t len)
{
	if (check(ctx, c, buf, len) < 0)
		return -1;
	if (len < 2) {
		errno = EINVAL;
		return -1;
	}
	size_t most = len - 1, seen = 0, n;
	while (!(n = line_end(c, seen, most)) && c->len < most) {
		seen = c->len;
		if (c->off + c->len == c->cap && reserve(c, c->len * 2 < most ?
					       c->len * 2 : most) < 0)
			return -1;
		ssize_t r = fill(ctx, c);
		if (r < 0)
			return -1;
		if (r == 0) { /* the end: a last line without '\n', or none */
			most = c->len;
			break;
		}
	}
	n = n ? n : most;
	take(c, buf, n);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* ---- writing ----------------------------------------------------------- */

CTX_API ssize_t ctx_conn_write(ctx_t *ctx, ctx_conn_t *c, const void *buf,
			       size_t len)
{
	if (check(ctx, c, buf, len) < 0)
		return -1;
	if (len == 0)
		return 0;
	return c->ops->write(ctx, c->t, c->fd, buf, len);
}
