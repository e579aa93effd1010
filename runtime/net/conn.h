/*
 * The transport under a ctx_conn_t (runtime/net/conn.c): how its bytes
 * come and go.  conn.c fills it for a plain descriptor; libctx-ssl
 * (glue/ssl/conn.c) fills it for TLS, which is why ctx__conn_new_ops is
 * exported (runtime/libctx.sym) though it is no part of the API.  This
 * header needs nothing but <ctx.h>, so that the glue library includes no
 * other internal header.
 */
#ifndef CTX_NET_CONN_H
#define CTX_NET_CONN_H

#include <ctx.h>

struct ctx__conn_ops {
	/* One read of at most len bytes from the transport t over fd: the
	 * count, 0 at the end of input, -1 with errno. */
	ssize_t (*read)(ctx_t *ctx, void *t, int fd, void *buf, size_t len);
	/* Every byte, or what ctx_write returns when stopped part-way. */
	ssize_t (*write)(ctx_t *ctx, void *t, int fd, const void *buf,
			 size_t len);
	/* Let t go (NULL: nothing to do); conn.c closes fd afterwards. */
	void (*close)(void *t, int fd);
};

/* A connection over fd through ops and t, which it takes: on failure
 * (NULL, errno ENOMEM) ops->close(t, fd) has run and fd is closed. */
CTX_API ctx_conn_t *ctx__conn_new_ops(int fd, const struct ctx__conn_ops *ops,
				      void *t);

#endif
