/*
 * libctx-ssl's connections: ctx_ssl_dial (Go's tls.DialWithDialer: dial,
 * SNI, the name check, the handshake, all under one context) and
 * ctx_ssl_conn_new, which hands a handshaken SSL to a ctx_conn_t.
 *
 * The connection's transport (runtime/net/conn.h, the one internal
 * header this file includes) is ctx_ssl_read and ctx_ssl_write; closing
 * sends close_notify, as Go's tls.Conn.Close does, but waits at most
 * CLOSE_WAIT for the socket to take it, since ctx_conn_close has no
 * context of its own and a peer that reads nothing must not hold it.
 *
 * The name: SNI carries a host name, never an address literal (RFC 6066,
 * 3); the check (SSL_set1_host) matches a name against the certificate's
 * DNS names and an address against its IP addresses.  It is armed
 * whenever the SSL_CTX verifies the peer (SSL_VERIFY_PEER), so a caller
 * who set SSL_VERIFY_NONE gets no check, and one who verifies gets the
 * name checked too, as Go's InsecureSkipVerify decides both.  With no
 * SSL_CTX, one made once for the process verifies against the system's
 * store (SSL_CTX_set_default_verify_paths), TLS 1.2 at least.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ctx/ssl.h"
#include "net/conn.h"

#define CLOSE_WAIT (50 * CTX_MSEC)

static ssize_t tls_read(ctx_t *ctx, void *t, int fd, void *buf, size_t len)
{
	(void)fd;
	return ctx_ssl_read(ctx, t, buf, len);
}

static ssize_t tls_write(ctx_t *ctx, void *t, int fd, const void *buf,
			 size_t len)
{
	(void)fd;
	return ctx_ssl_write(ctx, t, buf, len);
}

static void tls_close(void *t, int fd)
{
	SSL *ssl = t;
	(void)fd;
	ctx_t *c = SSL_is_init_finished(ssl) ?
			   ctx_with_timeout(ctx_background(), CLOSE_WAIT) :
			   NULL;
	if (c)
		ctx_ssl_shutdown(c, ssl);
	ctx_release(c);
	SSL_free(ssl);
}

static const struct ctx__conn_ops tls_ops = { tls_read, tls_write,
					      tls_close };

CTX_API ctx_conn_t *ctx_ssl_conn_new(SSL *ssl)
{
	int fd = ssl ? SSL_get_fd(ssl) : -1;
	if (fd < 0) {
		SSL_free(ssl);
		errno = EINVAL;
		return NULL;
	}
	return ctx__conn_new_ops(fd, &tls_ops, ssl);
}

/* ---- dialing ----------------------------------------------------------- */

static SSL_CTX *system_ctx;
static pthread_once_t system_once = PTHREAD_ONCE_INIT;

static void system_init(void)
{
	SSL_CTX *s = SSL_CTX_new(TLS_client_method());
	if (!s)
		return;
	if (SSL_CTX_set_default_verify_paths(s) != 1 ||
	    SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(s);
		return;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
	system_ctx = s;
}

/* An address literal, which gets no SNI: IPv6 has colons, IPv4 parses. */
static bool is_literal(const char *host)
{
	struct in_addr a;
	return strchr(host, ':') || inet_pton(AF_INET, host, &a) == 1;
}

/* A client SSL on fd for host, the name armed: NULL with errno. */
static SSL *client(SSL_CTX *sc, int fd, const char *host)
{
	SSL *ssl = SSL_new(sc);
	bool verify = SSL_CTX_get_verify_mode(sc) & SSL_VERIFY_PEER;
	if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
	    (!is_literal(host) && SSL_set_tlsext_host_name(ssl, host) != 1) ||
	    (verify && SSL_set1_host(ssl, host) != 1)) {
		SSL_free(ssl);
		errno = ENOMEM;
		return NULL;
	}
	return ssl;
}

/* The SSL_CTX to use and the host to name: 0 or an errno. */
static int prepare(const char *address, SSL_CTX **sc, char *host,
		   size_t hostlen)
{
	if (!address || ctx_split_host_port(address, host, hostlen, NULL, 0))
		return EINVAL;
	if (!*sc) {
		pthread_once(&system_once, system_init);
		if (!(*sc = system_ctx))
			return ENOMEM;
	}
	/* A certificate names a host: with no host, nothing to check. */
	if (!host[0] && (SSL_CTX_get_verify_mode(*sc) & SSL_VERIFY_PEER))
		return EINVAL;
	return 0;
}

CTX_API ctx_conn_t *ctx_ssl_dial(ctx_t *ctx, const char *address,
				 SSL_CTX *sslctx)
{
	char host[NI_MAXHOST];
	int e = ctx ? prepare(address, &sslctx, host, sizeof host) : EINVAL;
	if (e) {
		errno = e;
		return NULL;
	}
	int fd = ctx_dial(ctx, address, SOCK_STREAM);
	if (fd < 0)
		return NULL;
	SSL *ssl = client(sslctx, fd, host);
	if (!ssl || ctx_ssl_connect(ctx, ssl) < 0) {
		e = errno;
		SSL_free(ssl);
		close(fd);
		errno = e;
		return NULL;
	}
	return ctx_ssl_conn_new(ssl);
}
