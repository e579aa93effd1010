/*
 * libctx-ssl's connections: ctx_ssl_dial against a TLS echo server of
 * the test's on the loopback (a certificate made at test time), by name
 * and by address, SNI sent for a name and not for an address, the name
 * check (an address the certificate does not list is refused unless the
 * SSL_CTX verifies nothing), the library's own SSL_CTX refusing a
 * self-signed certificate, a server that never answers the handshake,
 * close_notify on close, and ctx_ssl_conn_new over an SSL handshaken by
 * ctx_ssl_connect.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/ssl.h"
#include "testutil.h"

Suite *suite_ssl_conn(void); /* run by tests.c */

struct cert {
	EVP_PKEY *key;
	X509 *x509;
};

static void add_san(X509 *x, const char *san)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3,
						NID_subject_alt_name, san);
	ck_assert_ptr_nonnull(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A self-signed certificate for CN=localhost with the given names. */
static struct cert make_cert(const char *san)
{
	struct cert c = { EVP_EC_gen("P-256"), X509_new() };
	ck_assert(c.key && c.x509);
	X509_set_version(c.x509, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c.x509), 1);
	X509_gmtime_adj(X509_getm_notBefore(c.x509), -60);
	X509_gmtime_adj(X509_getm_notAfter(c.x509), 3600);
	X509_set_pubkey(c.x509, c.key);
	X509_NAME *n = X509_get_subject_name(c.x509);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1,
				   0);
	X509_set_issuer_name(c.x509, n);
	add_san(c.x509, san);
	ck_assert_int_gt(X509_sign(c.x509, c.key, EVP_sha256()), 0);
	return c;
}

static void free_cert(struct cert *c)
{
	X509_free(c->x509);
	EVP_PKEY_free(c->key);
}

/* A client SSL_CTX that trusts c alone, verifying or not. */
static SSL_CTX *client_ctx(const struct cert *c, bool verify)
{
	SSL_CTX *s = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(s),
					     c->x509), 1);
	SSL_CTX_set_verify(s, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
			   NULL);
	return s;
}

/* ---- the server: one connection, lines echoed until close_notify ---- */

struct server {
	pthread_t t;
	SSL_CTX *sctx;
	int listener, port;
	bool answer;         /* false: accept nothing, answer no handshake */
	char sni[64];        /* the name the client sent, "" if none */
	bool handshaken;
	bool clean_close;    /* the client's close_notify arrived */
};

static void echo(struct server *s, SSL *ssl, ctx_t *c)
{
	char buf[256];
	ssize_t n;
	while ((n = ctx_ssl_read(c, ssl, buf, sizeof buf)) > 0)
		if (ctx_ssl_write(c, ssl, buf, (size_t)n) != n)
			return;
	s->clean_close = n == 0;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	int fd = ctx_accept(c, s->listener, NULL, NULL, SOCK_CLOEXEC);
	SSL *ssl = fd >= 0 ? SSL_new(s->sctx) : NULL;
	if (ssl && SSL_set_fd(ssl, fd) == 1 && ctx_ssl_accept(c, ssl) == 0) {
		const char *name =
			SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		snprintf(s->sni, sizeof s->sni, "%s", name ? name : "");
		s->handshaken = true;
		echo(s, ssl, c);
	}
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	ctx_release(c);
	return NULL;
}

static void server_start(struct server *s, const struct cert *c,
			 bool answer)
{
	*s = (struct server){ .sctx = SSL_CTX_new(TLS_server_method()),
			      .answer = answer };
	ck_assert_ptr_nonnull(s->sctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(s->sctx, c->x509), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(s->sctx, c->key), 1);
	s->listener = ctx_listen(ctx_background(), "127.0.0.1:0",
				 SOCK_STREAM, 8);
	ck_assert_int_ge(s->listener, 0);
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	ck_assert_int_eq(getsockname(s->listener, (struct sockaddr *)&sa,
				     &len), 0);
	s->port = ntohs(sa.sin_port);
	if (answer)
		ck_assert_int_eq(pthread_create(&s->t, NULL, server_main, s),
				 0);
}

/* Joins the server (which a failed handshake ends, as does the client's
 * close). */
static void server_stop(struct server *s)
{
	if (s->answer)
		pthread_join(s->t, NULL);
	close(s->listener);
	SSL_CTX_free(s->sctx);
}

static const char *addr(const char *host, const struct server *s)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "%s:%d", host, s->port);
	return buf;
}

/* A line there and back over c, then c closed. */
static void round_trip(ctx_conn_t *c)
{
	char buf[32];
	ck_assert_int_eq(ctx_conn_write(ctx_background(), c, "hello\n", 6), 6);
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 32), 6);
	ck_assert_str_eq(buf, "hello\n");
	ctx_conn_close(c);
}

/* By name (loop 0: SNI "localhost") and by address (loop 1: no SNI),
 * verified against the name or the address; close sends close_notify. */
START_TEST(dial_verified)
{
	struct cert crt = make_cert("DNS:localhost,IP:127.0.0.1");
	struct server s;
	server_start(&s, &crt, true);
	SSL_CTX *cc = client_ctx(&crt, true);
	ctx_t *k = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	ctx_conn_t *c = ctx_ssl_dial(k, addr(_i ? "127.0.0.1" : "localhost",
					      &s), cc);
	ck_assert_msg(c != NULL, "dial: %s", strerror(errno));
	round_trip(c);
	server_stop(&s);
	ck_assert(s.handshaken);
	ck_assert_str_eq(s.sni, _i ? "" : "localhost");
	ck_assert(s.clean_close);
	ctx_release(k);
	SSL_CTX_free(cc);
	free_cert(&crt);
}
END_TEST

/* The certificate names localhost alone: 127.0.0.1 is refused (EPROTO,
 * the queue saying why) by a verifying SSL_CTX, taken by one that
 * verifies nothing (loop 1). */
START_TEST(dial_name_check)
{
	struct cert crt = make_cert("DNS:localhost");
	struct server s;
	server_start(&s, &crt, true);
	SSL_CTX *cc = client_ctx(&crt, _i == 0);
	ERR_clear_error();
	errno = 0;
	ctx_conn_t *c = ctx_ssl_dial(ctx_background(), addr("127.0.0.1", &s),
				     cc);
	if (_i == 0) {
		ck_assert_ptr_null(c);
		ck_assert_int_eq(errno, EPROTO);
		ck_assert_int_eq(ERR_GET_REASON(ERR_peek_last_error()),
				 SSL_R_CERTIFICATE_VERIFY_FAILED);
	} else {
		ck_assert_ptr_nonnull(c);
		round_trip(c);
	}
	server_stop(&s);
	ck_assert(s.handshaken == (_i == 1));
	SSL_CTX_free(cc);
	free_cert(&crt);
}
END_TEST

/* No SSL_CTX: the library's verifies against the system's store, which
 * does not hold the test's self-signed certificate. */
START_TEST(dial_system_store)
{
	struct cert crt = make_cert("DNS:localhost,IP:127.0.0.1");
	struct server s;
	server_start(&s, &crt, true);
	errno = 0;
	ck_assert_ptr_null(ctx_ssl_dial(ctx_background(), addr("localhost", &s),
					NULL));
	ck_assert_int_eq(errno, EPROTO);
	server_stop(&s);
	ck_assert(!s.handshaken);
	free_cert(&crt);
}
END_TEST

/* A server that takes the connection and never answers the handshake:
 * the deadline ends the dial, and nothing is left open. */
START_TEST(dial_deadline)
{
	struct cert crt = make_cert("DNS:localhost");
	struct server s;
	server_start(&s, &crt, false);
	SSL_CTX *cc = client_ctx(&crt, true);
	ctx_t *k = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(k), CTX_DEADLINE_EXCEEDED); /* warm up */
	ctx_release(k);
	int fds0 = tu_count_fds();
	int64_t t0 = ctx_now();
	k = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	errno = 0;
	ck_assert_ptr_null(ctx_ssl_dial(k, addr("localhost", &s), cc));
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 90, 2000);
	ck_assert_int_eq(tu_count_fds(), fds0);
	ctx_release(k);
	server_stop(&s);
	SSL_CTX_free(cc);
	free_cert(&crt);
}
END_TEST

START_TEST(dial_errors)
{
	SSL_CTX *none = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(none, SSL_VERIFY_NONE, NULL);
	errno = 0;
	ck_assert_ptr_null(ctx_ssl_dial(NULL, "localhost:1", none));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_ssl_dial(ctx_background(), NULL, none));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_ssl_dial(ctx_background(), "localhost", none));
	ck_assert_int_eq(errno, EINVAL);
	/* No host to check the certificate against. */
	ck_assert_ptr_null(ctx_ssl_dial(ctx_background(), ":443", NULL));
	ck_assert_int_eq(errno, EINVAL);
	/* A port just freed: refused, as ctx_dial says. */
	int l = ctx_listen(ctx_background(), "127.0.0.1:0", SOCK_STREAM, 1);
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	close(l);
	char a[32];
	snprintf(a, sizeof a, "127.0.0.1:%d", ntohs(sa.sin_port));
	ck_assert_ptr_null(ctx_ssl_dial(ctx_background(), a, none));
	ck_assert_int_eq(errno, ECONNREFUSED);
	ctx_t *k = ctx_with_cancel(ctx_background());
	ctx_cancel(k);
	ck_assert_ptr_null(ctx_ssl_dial(k, a, none));
	ck_assert_int_eq(errno, CTX_CANCELED);
	ctx_release(k);
	SSL_CTX_free(none);
}
END_TEST

/* The server's side of a handshake on a socket pair, on a thread of
 * its own (on the client's thread it would wait for the client). */
struct handshake {
	pthread_t t;
	SSL *ssl;
	int rc;
};

static void *accept_main(void *arg)
{
	struct handshake *h = arg;
	h->rc = ctx_ssl_accept(ctx_background(), h->ssl);
	return NULL;
}

/* ctx_ssl_conn_new over an SSL that ctx_ssl_connect handshook on a
 * socket pair: SSL_get_fd still names the socket after libctx-ssl put
 * its own BIO in (it said -1 before), and the connection works.  NULL,
 * or an SSL with no socket, is EINVAL (and that SSL is freed). */
START_TEST(conn_new)
{
	struct cert crt = make_cert("DNS:localhost");
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate(sc, crt.x509), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(sc, crt.key), 1);
	struct handshake h = { .ssl = SSL_new(sc), .rc = -1 };
	ck_assert_int_eq(SSL_set_fd(h.ssl, sv[1]), 1);
	SSL_CTX *cc = client_ctx(&crt, false);
	SSL *cl = SSL_new(cc);
	ck_assert_int_eq(SSL_set_fd(cl, sv[0]), 1);
	ck_assert_int_eq(pthread_create(&h.t, NULL, accept_main, &h), 0);
	ck_assert_int_eq(ctx_ssl_connect(ctx_background(), cl), 0);
	pthread_join(h.t, NULL);
	ck_assert_int_eq(h.rc, 0);
	ck_assert_int_eq(SSL_get_fd(cl), sv[0]);
	ctx_conn_t *c = ctx_ssl_conn_new(cl);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ctx_conn_fd(c), sv[0]);
	ck_assert_int_eq(ctx_ssl_write(ctx_background(), h.ssl, "tls line\n",
				       9), 9);
	char buf[32];
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 32), 9);
	ck_assert_str_eq(buf, "tls line\n");
	ctx_conn_close(c); /* close_notify, then the socket closed */
	ck_assert_int_eq(ctx_ssl_read(ctx_background(), h.ssl, buf, 32), 0);
	SSL_free(h.ssl);
	close(sv[1]);
	errno = 0;
	ck_assert_ptr_null(ctx_ssl_conn_new(NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_ssl_conn_new(SSL_new(cc)));
	ck_assert_int_eq(errno, EINVAL);
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
	free_cert(&crt);
}
END_TEST

Suite *suite_ssl_conn(void)
{
	Suite *s = suite_create("ssl_conn");
	TCase *tc = tu_tcase(s, "ssl_conn", 20);
	tcase_add_loop_test(tc, dial_verified, 0, 2);
	tcase_add_loop_test(tc, dial_name_check, 0, 2);
	tcase_add_test(tc, dial_system_store);
	tcase_add_test(tc, dial_deadline);
	tcase_add_test(tc, dial_errors);
	tcase_add_test(tc, conn_new);
	return s;
}
