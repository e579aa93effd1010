/*
 * tls.c: --tls CERT KEY, HTTPS through libctx-ssl.  The same transport
 * table as plain TCP (transport.c), with ctx_ssl_read and ctx_ssl_write
 * for ctx_read and ctx_send, so every context that ends a plain wait ends
 * a TLS one.  As in Go's crypto/tls, the handshake is run by the first
 * read (or write): it waits under the first request's contexts (the
 * header deadline from the accept, stop, idle) and needs no context or
 * bound of its own.  A build without OpenSSL keeps only tls_setup, which
 * says so and exits 2, as for any option that cannot be honoured.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"

#ifdef HAVE_OPENSSL
#include <ctx/ssl.h>
#include <openssl/err.h>

#define BUSY_WAIT (100 * CTX_MSEC)  /* for a 503 over TLS to go out */
#define CLOSE_WAIT (100 * CTX_MSEC) /* for TLS's close_notify to go out */

/* TLS through libctx-ssl.  The handshake is the first read's or write's
 * (ctx's) business, as in Go's tls.Conn: nothing to call after accept. */
static int tls_start(ctx_t *ctx, struct link *l)
{
	if (l->up)
		return 0;
	if (l->ssl) { /* a handshake failed already: never a second */
		errno = ENOTCONN;
		return -1;
	}
	if (!(l->ssl = SSL_new(srv.tls)) || SSL_set_fd(l->ssl, l->fd) != 1) {
		errno = ENOMEM;
		return -1;
	}
	if (ctx_ssl_accept(ctx, l->ssl) < 0)
		return -1;
	l->up = true;
	return 0;
}

/* After a failed call: words for the log from OpenSSL's error queue;
 * the session is kept for sending only after a wait the context ended
 * (a shutting-down server still answers 503).  Returns errno's value. */
static int tls_failed(struct link *l, bool handshake)
{
	int e = errno;
	unsigned long oe = ERR_peek_last_error();

	if (e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		l->up = false;
	if (e == EPROTO && oe)
		snprintf(l->why, sizeof(l->why), ": TLS%s: %s",
			 handshake ? " handshake" : "",
			 ERR_reason_error_string(oe) ?
			 ERR_reason_error_string(oe) : "error");
	errno = e;
	return e;
}

static ssize_t tls_read(ctx_t *ctx, struct link *l, void *buf, size_t len)
{
	bool handshake = tls_start(ctx, l) < 0;
	ssize_t n = handshake ? -1 : ctx_ssl_read(ctx, l->ssl, buf, len);

	if (n >= 0)
		return n;
	/* A TCP close without close_notify is EPROTO with nothing in the
	 * error queue: to the server the client's close, as over TCP. */
	if (errno == EPROTO && !ERR_peek_error()) {
		l->up = false;
		return 0;
	}
	tls_failed(l, handshake);
	return -1;
}

static int tls_write(ctx_t *ctx, struct link *l, const void *buf,
		     size_t len, size_t *sent)
{
	bool handshake = tls_start(ctx, l) < 0;
	ssize_t n = handshake ? -1 : ctx_ssl_write(ctx, l->ssl, buf, len);

	*sent = n > 0 ? (size_t)n : 0;
	if (n == (ssize_t)len)
		return 0;
	/* Short or failed, a record may be half out: nothing can follow. */
	tls_failed(l, handshake);
	l->up = false;
	return -1;
}

static void tls_close(ctx_t *ctx, struct link *l)
{
	if (l->up && ctx) {
		CTX_AUTO ctx_t *t = ctx_with_timeout(ctx, CLOSE_WAIT);
		if (t)
			(void)ctx_ssl_shutdown(t, l->ssl);
	}
	l->up = false;
	SSL_free(l->ssl);
	l->ssl = NULL;
}

/* The 503 over a session that is up, the wait bounded by BUSY_WAIT
 * (from now: the connection's own context may be over already);
 * without one there is no way to say it but the close. */
static void tls_busy(struct link *l)
{
	drain_now(l->fd); /* ciphertext nobody will read: no reset */
	if (l->up) {
		CTX_AUTO ctx_t *w = ctx_with_timeout(ctx_background(),
						      BUSY_WAIT);
		if (w && !send_busy(w, l))
			tls_close(w, l);
	}
	shutdown(l->fd, SHUT_WR);
	drain_now(l->fd);
}

static const struct transport tls_transport = {
	.read = tls_read, .write = tls_write,
	.busy = tls_busy, .close = tls_close,
};

/* --tls CERT KEY: the server's TLS context, or exit 2 (as for any bad
 * option) with what is wrong. */
static __attribute__((noreturn)) void tls_fail(const char *what,
					       const char *file)
{
	unsigned long oe = ERR_peek_error(); /* the first: the cause */
	const char *r = oe ? ERR_reason_error_string(oe) : NULL;

	fprintf(stderr, "httpd: --tls: %s: %s%s%s\n", file, what,
		r ? ": " : "", r ? r : "");
	exit(2);
}

void tls_setup(void)
{
	const char *files[] = { opt.cert, opt.key };

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (!f) {
			fprintf(stderr, "httpd: --tls: %s: %s\n", files[i],
				strerror(errno));
			exit(2);
		}
		fclose(f);
	}
	srv.tls = SSL_CTX_new(TLS_server_method());
	if (!srv.tls) {
		fprintf(stderr, "httpd: --tls: no TLS context\n");
		exit(1);
	}
	SSL_CTX_set_min_proto_version(srv.tls, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(srv.tls, opt.cert) != 1)
		tls_fail("not a PEM certificate", opt.cert);
	if (SSL_CTX_use_PrivateKey_file(srv.tls, opt.key,
					SSL_FILETYPE_PEM) != 1)
		tls_fail(ERR_GET_REASON(ERR_peek_error()) ==
			 X509_R_KEY_VALUES_MISMATCH ?
			 "not the key of the certificate" :
			 "not a PEM private key", opt.key);
	if (SSL_CTX_check_private_key(srv.tls) != 1) {
		/* (OpenSSL's reason, "no certificate assigned" when the key
		 * is of another type, says less than this.) */
		ERR_clear_error();
		tls_fail("not the key of the certificate", opt.key);
	}
	srv.io = &tls_transport;
}

void tls_teardown(void)
{
	SSL_CTX_free(srv.tls); /* each SSL left holds a reference */
}
#else
void tls_setup(void)
{
	fprintf(stderr, "httpd: --tls: built without TLS (configure found "
			"no OpenSSL 3: --with-openssl)\n");
	exit(2);
}

void tls_teardown(void)
{
}
#endif
