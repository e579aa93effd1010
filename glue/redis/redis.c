/*
 * libctx-redis: hiredis's protocol with libctx's waits.
 *
 * hiredis formats commands and parses replies without touching the
 * socket (redisvFormatCommand, the reader); the bytes go through
 * ctx_send and ctx_recv, which try first and wait under the context only
 * when the socket is not ready.  The socket stays blocking, as
 * redisConnect leaves it, so plain hiredis calls on the same context keep
 * working between ours.
 *
 * Commands queued by redisAppendCommand sit in c->obuf, whose length
 * only hiredis's own string functions know (their names differ between
 * hiredis 0.14 and 1.x); they are written with redisBufferWrite, with the
 * socket non-blocking and REDIS_BLOCK cleared for the duration, so that
 * it writes what fits and a wait under the context does the rest.
 *
 * When the context ends a command half way, the reply may still come and
 * would be taken for the next command's; a blocked BLPOP stays blocked on
 * the server until the client goes.  So the socket is closed and the
 * context marked bad, as hiredis marks one after an I/O error.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctx/redis.h"

static void set_error(redisContext *c, int type, const char *why)
{
	c->err = type;
	snprintf(c->errstr, sizeof c->errstr, "%s", why);
}

/* A transfer that failed with err, or that ctx ended: then the socket
 * is closed (see the top).  -1 with errno. */
static int failed(ctx_t *ctx, redisContext *c, int err)
{
	int e = ctx_err(ctx);
	if (e) {
		close(c->fd);
		c->fd = -1;
		c->flags &= ~REDIS_CONNECTED;
		set_error(c, REDIS_ERR_IO, ctx_strerror(e));
		err = e;
	} else {
		set_error(c, REDIS_ERR_IO, strerror(err));
	}
	errno = err;
	return -1;
}

static int connect_unix(ctx_t *ctx, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (ctx_connect(ctx, fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return fd;
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

static int connect_tcp(ctx_t *ctx, const char *address)
{
	int fd = ctx_dial(ctx, address, SOCK_STREAM), one = 1;
	/* As hiredis's own TCP connections: commands are small. */
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

CTX_API redisContext *ctx_redis_connect(ctx_t *ctx, const char *address)
{
	if (!ctx || !address) {
		errno = EINVAL;
		return NULL;
	}
	int fd = strchr(address, '/') ? connect_unix(ctx, address)
				      : connect_tcp(ctx, address);
	if (fd < 0)
		return NULL;
	redisContext *c = redisConnectFd(fd);
	if (!c || c->err) {
		if (c)
			redisFree(c); /* closes fd */
		else
			close(fd);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

/* Write the queued commands of c->obuf (see the top). */
static int flush_queued(ctx_t *ctx, redisContext *c)
{
	int fl = fcntl(c->fd, F_GETFL), block = c->flags & REDIS_BLOCK;
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return failed(ctx, c, errno);
	c->flags &= ~REDIS_BLOCK;
	int done = 0, rc = 0;
	while (!done && rc == 0) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		if (redisBufferWrite(c, &done) != REDIS_OK)
			rc = -1, errno = EIO; /* c->err says what */
		else if (!done && ctx_poll(ctx, &p, 1, -1) < 0)
			rc = failed(ctx, c, errno);
	}
	c->flags |= block;
	if (c->fd >= 0)
		fcntl(c->fd, F_SETFL, fl);
	return rc;
}

/* Send cmd, after whatever redisAppendCommand queued.  0 or -1. */
static int send_command(ctx_t *ctx, redisContext *c, const char *cmd,
			size_t len)
{
	if (c->obuf && c->obuf[0]) {
		if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
			errno = ENOMEM;
			return -1;
		}
		return flush_queued(ctx, c);
	}
	ssize_t n = ctx_send(ctx, c->fd, cmd, len, MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		return 0;
	return failed(ctx, c, n < 0 ? errno : EIO);
}

/* Read until the reader has a reply.  0 or -1. */
static int read_reply(ctx_t *ctx, redisContext *c, void **reply)
{
	char buf[16 * 1024];
	for (;;) {
		if (redisGetReplyFromReader(c, reply) != REDIS_OK) {
			errno = c->err == REDIS_ERR_OOM ? ENOMEM : EPROTO;
			return -1;
		}
		if (*reply)
			return 0;
		ssize_t n = ctx_recv(ctx, c->fd, buf, sizeof buf, 0);
		if (n < 0)
			return failed(ctx, c, errno);
		if (n == 0) {
			set_error(c, REDIS_ERR_EOF,
				  "Server closed the connection");
			errno = ECONNRESET;
			return -1;
		}
		if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
			set_error(c, REDIS_ERR_OOM, "Out of memory");
			errno = ENOMEM;
			return -1;
		}
	}
}

/* EINVAL, ENOTCONN or the context's error before anything is sent. */
static int refused(ctx_t *ctx, redisContext *c)
{
	int e = !ctx || !c ? EINVAL : c->err || c->fd < 0 ? ENOTCONN
							   : ctx_err(ctx);
	if (e)
		errno = e;
	return e;
}

CTX_API int ctx_redis_get_reply(ctx_t *ctx, redisContext *c, void **reply)
{
	if (!reply) {
		errno = EINVAL;
		return REDIS_ERR;
	}
	*reply = NULL;
	if (refused(ctx, c))
		return REDIS_ERR;
	/* Commands queued since the last reply must be sent first. */
	if (c->obuf && c->obuf[0] && flush_queued(ctx, c))
		return REDIS_ERR;
	return read_reply(ctx, c, reply) ? REDIS_ERR : REDIS_OK;
}

CTX_API redisReply *ctx_redis_vcommand(ctx_t *ctx, redisContext *c,
				       const char *fmt, va_list ap)
{
	if (refused(ctx, c))
		return NULL;
	char *cmd;
	int len = fmt ? redisvFormatCommand(&cmd, fmt, ap) : -1;
	if (len < 0) {
		errno = len == -1 ? EINVAL : ENOMEM;
		return NULL;
	}
	void *reply = NULL;
	if (send_command(ctx, c, cmd, (size_t)len) == 0)
		read_reply(ctx, c, &reply);
	redisFreeCommand(cmd);
	return reply;
}

CTX_API redisReply *ctx_redis_command(ctx_t *ctx, redisContext *c,
				      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = ctx_redis_vcommand(ctx, c, fmt, ap);
	va_end(ap);
	return r;
}
