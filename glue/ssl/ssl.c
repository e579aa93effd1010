/*
 * libctx-ssl: a BIO whose reads and writes are ctx_recv and ctx_send.
 *
 * OpenSSL calls the BIO from inside SSL_read, SSL_write and the
 * handshake; the context of the ctx_ssl_ call in progress is stored in
 * the BIO for that call only.  Since ctx_recv and ctx_send wait
 * themselves (cancellably, on blocking and non-blocking sockets alike),
 * the BIO never asks OpenSSL to retry: a wait the context ends comes back
 * as a BIO error, which the call maps back to the context's error.
 * WANT_READ/WANT_WRITE can still come from OpenSSL itself (post-handshake
 * messages, renegotiation) and are simply retried.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "ctx/ssl.h"

struct cbio {
	int fd;
	ctx_t *ctx; /* the current call's, NULL between calls */
	int err;    /* errno of the last failed transfer */
};

static BIO_METHOD *method;
static int method_type;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int cbio_write(BIO *b, const char *buf, int len)
{
	struct cbio *c = BIO_get_data(b);
	if (!c->ctx) {
		c->err = EINVAL;
		return -1;
	}
	ssize_t n = ctx_send(c->ctx, c->fd, buf, (size_t)len, MSG_NOSIGNAL);
	if (n < 0)
		c->err = errno;
	return (int)n;
}

static int cbio_read(BIO *b, char *buf, int len)
{
	struct cbio *c = BIO_get_data(b);
	if (!c->ctx) {
		c->err = EINVAL;
		return -1;
	}
	ssize_t n = ctx_recv(c->ctx, c->fd, buf, (size_t)len, 0);
	if (n < 0)
		c->err = errno;
	return (int)n;
}

/* A descriptor BIO to OpenSSL, so that SSL_get_fd still names the
 * socket after the swap (ctx_ssl_conn_new relies on it). */
static long cbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	if (cmd == BIO_C_GET_FD) {
		struct cbio *c = BIO_get_data(b);
		if (ptr)
			*(int *)ptr = c->fd;
		return c->fd;
	}
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int cbio_destroy(BIO *b)
{
	OPENSSL_free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static void method_init(void)
{
	int t = BIO_get_new_index();
	if (t == -1)
		return;
	t |= BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
	BIO_METHOD *m = BIO_meth_new(t, "libctx socket");
	if (!m)
		return;
	BIO_meth_set_write(m, cbio_write);
	BIO_meth_set_read(m, cbio_read);
	BIO_meth_set_ctrl(m, cbio_ctrl);
	BIO_meth_set_destroy(m, cbio_destroy);
	method_type = t;
	method = m;
}

/* The libctx BIO of ssl, installed in place of its socket BIO at the
 * first call; NULL with errno set. */
static struct cbio *cbio_of(SSL *ssl)
{
	pthread_once(&method_once, method_init);
	if (!method) {
		errno = ENOMEM;
		return NULL;
	}
	BIO *rb = SSL_get_rbio(ssl);
	if (rb && BIO_method_type(rb) == method_type)
		return BIO_get_data(rb);
	int fd = SSL_get_fd(ssl);
	if (fd < 0) {
		errno = EINVAL; /* no SSL_set_fd */
		return NULL;
	}
	struct cbio *c = OPENSSL_zalloc(sizeof *c);
	BIO *b = c ? BIO_new(method) : NULL;
	if (!b) {
		OPENSSL_free(c);
		errno = ENOMEM;
		return NULL;
	}
	c->fd = fd;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	/* One BIO both ways: SSL_set_bio takes the one reference. It frees
	 * the socket BIO, not the socket. */
	SSL_set_bio(ssl, b, b);
	return c;
}

enum op { OP_CONNECT, OP_ACCEPT, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* One OpenSSL call: its result, retried on WANT_READ/WANT_WRITE. */
static int ssl_op(SSL *ssl, enum op op, void *buf, size_t len, size_t *done)
{
	switch (op) {
	case OP_CONNECT:
		return SSL_connect(ssl);
	case OP_ACCEPT:
		return SSL_accept(ssl);
	case OP_READ:
		return SSL_read_ex(ssl, buf, len, done);
	case OP_WRITE:
		return SSL_write_ex(ssl, buf, len, done);
	case OP_SHUTDOWN:
		return SSL_shutdown(ssl) >= 0 ? 1 : -1;
	}
	return -1;
}

/* Run op with ctx: 1 done (*done bytes), 0 clean end (read), -1 errno. */
static int run(ctx_t *ctx, SSL *ssl, enum op op, void *buf, size_t len,
	       size_t *done)
{
	if (!ctx || !ssl || (!buf && len)) {
		errno = EINVAL;
		return -1;
	}
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	struct cbio *c = cbio_of(ssl);
	if (!c)
		return -1;
	for (;;) {
		c->ctx = ctx;
		c->err = 0;
		ERR_clear_error();
		int r = ssl_op(ssl, op, buf, len, done);
		c->ctx = NULL;
		if (r > 0)
			return 1;
		int se = SSL_get_error(ssl, r);
		if (se == SSL_ERROR_ZERO_RETURN)
			return 0;
		if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
			if ((e = ctx_err(ctx)))
				break;
			continue;
		}
		/* A failed transfer says why (the context, the socket);
		 * otherwise TLS itself failed, or the peer left mid-record. */
		e = c->err ? c->err : EPROTO;
		break;
	}
	errno = e;
	return -1;
}

CTX_API int ctx_ssl_connect(ctx_t *ctx, SSL *ssl)
{
	return run(ctx, ssl, OP_CONNECT, NULL, 0, NULL) > 0 ? 0 : -1;
}

CTX_API int ctx_ssl_accept(ctx_t *ctx, SSL *ssl)
{
	return run(ctx, ssl, OP_ACCEPT, NULL, 0, NULL) > 0 ? 0 : -1;
}

/* A transfer of no bytes: 0, or -1 for bad arguments or a done ctx. */
static ssize_t zero_len(ctx_t *ctx, SSL *ssl)
{
	if (!ctx || !ssl) {
		errno = EINVAL;
		return -1;
	}
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

CTX_API ssize_t ctx_ssl_read(ctx_t *ctx, SSL *ssl, void *buf, size_t len)
{
	size_t n = 0;
	if (len == 0) /* nothing to move: only the checks */
		return zero_len(ctx, ssl);
	int r = run(ctx, ssl, OP_READ, buf, len, &n);
	return r < 0 ? -1 : (ssize_t)n;
}

CTX_API ssize_t ctx_ssl_write(ctx_t *ctx, SSL *ssl, const void *buf,
			      size_t len)
{
	if (!ctx || !ssl || (!buf && len)) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return zero_len(ctx, ssl);
	size_t off = 0;
	do {
		size_t n = 0;
		int r = run(ctx, ssl, OP_WRITE, (char *)buf + off, len - off,
			    &n);
		if (r <= 0)
			return off ? (ssize_t)off : -1;
		off += n;
	} while (off < len);
	return (ssize_t)off;
}

/* Sends close_notify and returns without waiting for the peer's, as Go's
 * tls.Conn.Close does. */
CTX_API int ctx_ssl_shutdown(ctx_t *ctx, SSL *ssl)
{
	return run(ctx, ssl, OP_SHUTDOWN, NULL, 0, NULL) > 0 ? 0 : -1;
}
