/*
 * transport.c: how a connection's bytes move over plain TCP, and the 503
 * that every transport sends when there is no room.  A transport is a
 * small table of calls (read, write, busy, close; httpd.h); the rest of
 * httpd moves bytes only through it, so TLS (tls.c) is the same table
 * with other calls, and every deadline, signal and hangup ends its waits
 * as it ends these.  Plain TCP is the libctx calls on the socket.
 */
#include <errno.h>
#include <sys/socket.h>

#include "httpd.h"

static const char busy[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 12\r\n"
	"Retry-After: 1\r\n"
	"Connection: close\r\n"
	"\r\n"
	"server busy\n";

/* Read what the client has sent so far without waiting: a close with
 * unread bytes would reset the connection and lose the answer. */
void drain_now(int fd)
{
	char junk[4096];

	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

/* 503 with no waits and no new descriptors (so it works at EMFILE):
 * a fresh socket's send buffer takes it whole. */
static void busy_reply(int fd)
{
	drain_now(fd);
	(void)!send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	drain_now(fd);
}

/* Through l's transport: over TLS, inside the session. */
int send_busy(ctx_t *ctx, struct link *l)
{
	size_t sent;

	return l->t->write(ctx, l, busy, sizeof(busy) - 1, &sent);
}

/* Plain TCP: the libctx calls on the socket. */
static ssize_t tcp_read(ctx_t *ctx, struct link *l, void *buf, size_t len)
{
	return ctx_read(ctx, l->fd, buf, len);
}

static int tcp_write(ctx_t *ctx, struct link *l, const void *buf,
		     size_t len, size_t *sent)
{
	ssize_t k = 0;

	*sent = 0;
	/* MSG_NOSIGNAL: a client gone is an error to see, not a SIGPIPE. */
	while (*sent < len &&
	       (k = ctx_send(ctx, l->fd, (const char *)buf + *sent,
			     len - *sent, MSG_NOSIGNAL)) > 0)
		*sent += (size_t)k;
	if (*sent == len)
		return 0;
	if (k >= 0) /* after a partial send the next call said why */
		errno = EPIPE;
	return -1;
}

static void tcp_busy(struct link *l)
{
	busy_reply(l->fd);
}

static void tcp_close(ctx_t *ctx, struct link *l)
{
	(void)ctx, (void)l;
}

const struct transport tcp_transport = {
	.read = tcp_read, .write = tcp_write,
	.busy = tcp_busy, .close = tcp_close,
};
