/*
 * libctx-ssl over socket pairs, on both backends (check_ssl; see
 * glue/testing.h), blocking sockets: 300 KB both ways, a
 * read cancelled mid-wait, a handshake with a silent peer ended by the
 * deadline, a non-TLS peer (EPROTO), buffered plaintext (SSL_pending).
 * The certificate is made at test time: a self-signed P-256 key.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/ssl.h"
#include "runner.h"
#include "testutil.h"

static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	ck_assert(k && x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, n);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(SSL_CTX_use_certificate(s, x), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(s, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	return s;
}

static SSL *new_ssl(SSL_CTX *c, int fd)
{
	SSL *s = SSL_new(c);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(SSL_set_fd(s, fd), 1);
	return s;
}

struct peer {
	pthread_t t;
	SSL_CTX *sctx;
	int fd;
	size_t bytes;     /* read this many, then send them back */
	int64_t linger;   /* then wait this long before closing */
	int result;
};

static void *server_main(void *arg)
{
	struct peer *p = arg;
	SSL *s = new_ssl(p->sctx, p->fd);
	ctx_t *c = ctx_background();
	p->result = -1;
	if (ctx_ssl_accept(c, s))
		goto out;
	char *buf = malloc(p->bytes + 1);
	size_t got = 0;
	while (got < p->bytes) {
		ssize_t n = ctx_ssl_read(c, s, buf + got, p->bytes - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == p->bytes &&
	    ctx_ssl_write(c, s, buf, p->bytes) == (ssize_t)p->bytes)
		p->result = 0;
	free(buf);
	if (p->linger)
		tu_sleep_ns(p->linger);
	ctx_ssl_shutdown(c, s);
out:
	SSL_free(s);
	return NULL;
}

/* A client SSL connected to a server thread over a socket pair. */
static SSL *pair(struct peer *p, SSL_CTX **cctx, int *cfd, size_t bytes,
		 int64_t linger)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	*p = (struct peer){ .sctx = server_ctx(), .fd = sv[1],
			    .bytes = bytes, .linger = linger };
	ck_assert_int_eq(pthread_create(&p->t, NULL, server_main, p), 0);
	*cctx = SSL_CTX_new(TLS_client_method());
	*cfd = sv[0];
	SSL *s = new_ssl(*cctx, sv[0]);
	ck_assert_int_eq(ctx_ssl_connect(ctx_background(), s), 0);
	return s;
}

static void unpair(struct peer *p, SSL_CTX *cctx, int cfd, SSL *s)
{
	pthread_join(p->t, NULL);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(p->sctx);
	close(cfd);
	close(p->fd);
}

START_TEST(round_trip_300k)
{
	size_t len = 300 * 1024;
	struct peer p;
	SSL_CTX *cc;
	int fd;
	SSL *s = pair(&p, &cc, &fd, len, 0);
	unsigned char *out = malloc(len), *in = malloc(len);
	for (size_t i = 0; i < len; i++)
		out[i] = (unsigned char)(i * 7 + 3);
	ck_assert_int_eq(ctx_ssl_write(ctx_background(), s, out, len),
			 (ssize_t)len);
	size_t got = 0;
	while (got < len) {
		ssize_t n = ctx_ssl_read(ctx_background(), s, in + got,
					 len - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert(memcmp(in, out, len) == 0);
	/* The server's close_notify: a clean end. */
	ck_assert_int_eq(ctx_ssl_read(ctx_background(), s, in, 1), 0);
	unpair(&p, cc, fd, s);
	ck_assert_int_eq(p.result, 0);
	free(in), free(out);
}
END_TEST

/* Buffered plaintext comes back without a wait; then a read waits, and a
 * cancel from another thread ends it. */
START_TEST(read_cancel_and_pending)
{
	struct peer p;
	SSL_CTX *cc;
	int fd;
	SSL *s = pair(&p, &cc, &fd, 100, 2 * CTX_SEC);
	char buf[100];
	memset(buf, 'a', sizeof buf);
	ck_assert_int_eq(ctx_ssl_write(ctx_background(), s, buf, 100), 100);
	ck_assert_int_eq(ctx_ssl_read(ctx_background(), s, buf, 10), 10);
	ck_assert_int_eq(SSL_pending(s), 90);
	/* Pending bytes come without a wait: not at the deadline (2 s, so
	 * that a thread descheduled on a loaded machine does not find its
	 * context done before the call). */
	ctx_t *c = ctx_with_timeout(ctx_background(), 2 * CTX_SEC);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_ssl_read(c, s, buf, sizeof buf), 90);
	tu_assert_ms(tu_ms_since(t0), 0, 500);
	ctx_release(c);

	c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	tu_must_cancel_after(&k, c, 100 * CTX_MSEC);
	t0 = ctx_now();
	ssize_t n = ctx_ssl_read(c, s, buf, sizeof buf);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, 90, 100 + 1000);
	/* A done context refuses at once. */
	tu_assert_fail(ctx_ssl_read(c, s, buf, sizeof buf), CTX_CANCELED);
	ctx_release(c);
	/* The socket was left blocking. */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	unpair(&p, cc, fd, s);
}
END_TEST

START_TEST(silent_peer_deadline)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	SSL *s = new_ssl(cc, sv[0]);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 200 * CTX_MSEC);
	tu_assert_fail(ctx_ssl_connect(c, s), CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 199, 200 + 1000);
	ctx_release(c);
	SSL_free(s);
	SSL_CTX_free(cc);
	close(sv[0]), close(sv[1]);
}
END_TEST

START_TEST(not_tls_peer)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	const char *reply = "HTTP/1.0 400 Bad Request\r\n\r\n";
	ck_assert_int_eq(write(sv[1], reply, strlen(reply)),
			 (ssize_t)strlen(reply));
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	SSL *s = new_ssl(cc, sv[0]);
	tu_assert_fail(ctx_ssl_connect(ctx_background(), s), EPROTO);
	ck_assert_int_ne(ERR_peek_error(), 0); /* OpenSSL says more */
	SSL_free(s);
	SSL_CTX_free(cc);
	close(sv[0]), close(sv[1]);
}
END_TEST

START_TEST(bad_input)
{
	char b[4];
	SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
	SSL *s = SSL_new(cc); /* no descriptor */
	tu_assert_fail(ctx_ssl_connect(NULL, s), EINVAL);
	tu_assert_fail(ctx_ssl_connect(ctx_background(), NULL), EINVAL);
	tu_assert_fail(ctx_ssl_connect(ctx_background(), s), EINVAL);
	tu_assert_fail(ctx_ssl_read(ctx_background(), NULL, b, 4), EINVAL);
	tu_assert_fail(ctx_ssl_write(ctx_background(), s, NULL, 4), EINVAL);
	SSL_free(s);
	SSL_CTX_free(cc);
}
END_TEST

static Suite *suite_ssl(void)
{
	Suite *s = suite_create("ssl");
	TCase *tc = tu_tcase(s, "ssl", 20);
	tcase_add_test(tc, round_trip_300k);
	tcase_add_test(tc, read_cancel_and_pending);
	tcase_add_test(tc, silent_peer_deadline);
	tcase_add_test(tc, not_tls_peer);
	tcase_add_test(tc, bad_input);
	return s;
}

Suite *suite_ssl_conn(void); /* conn_tests.c */

/* suite_ssl_conn: conn_tests.c */
static tg_suite_fn *const suites[] = { suite_ssl, suite_ssl_conn, NULL };

int main(int argc, char **argv)
{
	(void)argc;
	return tg_run_backends(tg_run_suites, suites, argv);
}
