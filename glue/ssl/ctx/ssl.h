/*
 * libctx-ssl: OpenSSL handshakes, reads and writes that a context ends.
 * Link with `pkg-config --libs libctx-ssl`.
 *
 * The SSL object must have been given its socket with SSL_set_fd (of
 * either blocking mode).  At the first call, libctx-ssl replaces that
 * socket BIO with its own, whose reads and writes are ctx_recv and
 * ctx_send with the context of the call in progress: the socket's flags
 * are never changed, and the descriptor stays the caller's to close.
 *
 * Each call returns 0 (or a byte count; 0 from ctx_ssl_read at the peer's
 * close_notify), or -1 with errno: the context's error, the socket's
 * error, or EPROTO for a TLS failure (OpenSSL's error queue says more).
 * A done context refuses at once, even when plaintext is buffered;
 * otherwise buffered plaintext (SSL_pending) is returned without waiting.
 */
#ifndef CTX_SSL_H
#define CTX_SSL_H

#include <openssl/ssl.h>
#include <sys/types.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API int ctx_ssl_connect(ctx_t *ctx, SSL *ssl) CTX_NOEXCEPT;
CTX_API int ctx_ssl_accept(ctx_t *ctx, SSL *ssl) CTX_NOEXCEPT;
CTX_API ssize_t ctx_ssl_read(ctx_t *ctx, SSL *ssl, void *buf,
			     size_t len) CTX_NOEXCEPT;
CTX_API ssize_t ctx_ssl_write(ctx_t *ctx, SSL *ssl, const void *buf,
			      size_t len) CTX_NOEXCEPT; /* all bytes */
/* Sends close_notify. */
CTX_API int ctx_ssl_shutdown(ctx_t *ctx, SSL *ssl) CTX_NOEXCEPT;

/* Connections (ctx_conn_t, <ctx.h>) over TLS.  ctx_ssl_dial dials
 * address as ctx_dial does, sends the host as SNI (not an address
 * literal), and with a verifying sslctx (SSL_VERIFY_PEER) checks the
 * peer's certificate against the host's name or address, then shakes
 * hands, all under ctx.  sslctx NULL: one of the library's that verifies
 * the chain against the system's store.  NULL with errno as ctx_dial's,
 * EINVAL (malformed address; no host to check), or EPROTO for a TLS
 * failure, a refused certificate included (OpenSSL's queue says more). */
CTX_API ctx_conn_t *ctx_ssl_dial(ctx_t *ctx, const char *address,
				 SSL_CTX *sslctx) CTX_NOEXCEPT;
/* A connection over a handshaken ssl and its socket (SSL_set_fd), taking
 * both: ctx_conn_close sends close_notify, frees ssl, closes the socket.
 * On failure both are let go too: NULL, errno EINVAL (NULL ssl, no
 * socket) or ENOMEM. */
CTX_API ctx_conn_t *ctx_ssl_conn_new(SSL *ssl) CTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
