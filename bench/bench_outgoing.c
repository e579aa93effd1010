/*
 * bench_outgoing: outgoing calls beside the plain libraries (issue 15),
 * libctx and plain in turn, each turn a rep:
 *   outgoing/dial          ctx_dial to a loopback listener vs getaddrinfo
 *                          + connect
 *   outgoing/tls_echo_64k  64 KiB echo through ctx_ssl_* vs blocking
 *                          SSL_read/SSL_write (built with libctx-ssl)
 *   outgoing/curl_get      ctx_curl_perform of a small loopback GET vs
 *                          curl_easy_perform (built with libctx-curl)
 * Each row checks that what it timed happened (connected, every byte
 * back, every body read).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctx.h>
#include "benchutil.h"
#ifdef HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "ctx/ssl.h"
#endif
#ifdef HAVE_LIBCURL
#include "ctx/curl.h"
#endif

static const char *const lp[] = { "libctx", "plain" };

static void die(const char *what)
{
	bench_fail("bench_outgoing: %s failed", what);
}

static void row(const char *name, void (*fn)(void *, int, int, uint64_t),
		void *arg)
{
	bench_measure(&(struct bench_spec){ .scenario = name, .names = lp,
		.nimpls = 2, .fn = fn, .arg = arg });
}

static int tcp_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) ||
	    listen(l, 1024) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		die("listener");
	*port = ntohs(sa.sin_port);
	return l;
}

/* ---- dial ------------------------------------------------------------ */

static void *accept_close(void *arg)
{
	int l = *(int *)arg, c;
	while ((c = accept(l, NULL, NULL)) >= 0)
		close(c);
	return NULL;
}

static void dial_fn(void *arg, int side, int tid, uint64_t n)
{
	const int *port = arg;
	char addr[32], svc[8];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", *port);
	snprintf(svc, sizeof svc, "%d", *port);
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		int fd;
		if (side == 0) {
			fd = ctx_dial(ctx_background(), addr, SOCK_STREAM);
		} else {
			struct addrinfo h = { .ai_socktype = SOCK_STREAM }, *r;
			if (getaddrinfo("127.0.0.1", svc, &h, &r))
				die("getaddrinfo");
			fd = socket(r->ai_family, r->ai_socktype | SOCK_CLOEXEC,
				    r->ai_protocol);
			if (fd >= 0 && connect(fd, r->ai_addr, r->ai_addrlen))
				die("connect");
			freeaddrinfo(r);
		}
		if (fd < 0)
			die("dial");
		close(fd);
	}
}

static void bench_dial(void)
{
	int port, l = tcp_listener(&port);
	pthread_t t;
	pthread_create(&t, NULL, accept_close, &l);
	row("outgoing/dial", dial_fn, &port);
	shutdown(l, SHUT_RDWR);
	pthread_join(t, NULL);
	close(l);
}

/* ---- tls_echo -------------------------------------------------------- */
#ifdef HAVE_OPENSSL
#define ECHO_LEN (64 * 1024)

static SSL_CTX *server_ctx(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, k, EVP_sha256());
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());
	if (!s || SSL_CTX_use_certificate(s, x) != 1 ||
	    SSL_CTX_use_PrivateKey(s, k) != 1)
		die("certificate");
	X509_free(x);
	EVP_PKEY_free(k);
	return s;
}

struct tls {
	SSL *c[2];  /* the client of each side */
	int fd[4];
	pthread_t t[2];
	SSL_CTX *sctx, *cctx;
	char out[ECHO_LEN], in[ECHO_LEN];
};

/* The echo server: blocking OpenSSL, the same for both sides. */
static void *echo_main(void *arg)
{
	SSL *s = arg;
	char buf[16384];
	if (SSL_accept(s) != 1)
		die("SSL_accept");
	int n;
	while ((n = SSL_read(s, buf, sizeof buf)) > 0)
		if (SSL_write(s, buf, n) != n)
			die("SSL_write (server)");
	SSL_free(s);
	return NULL;
}

static void tls_fn(void *arg, int side, int tid, uint64_t n)
{
	struct tls *t = arg;
	SSL *s = t->c[side];
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		size_t got = 0;
		if (side == 0) {
			if (ctx_ssl_write(ctx_background(), s, t->out,
					  ECHO_LEN) != ECHO_LEN)
				die("ctx_ssl_write");
			while (got < ECHO_LEN) {
				ssize_t r = ctx_ssl_read(ctx_background(), s,
							 t->in + got,
							 ECHO_LEN - got);
				if (r <= 0)
					die("ctx_ssl_read");
				got += (size_t)r;
			}
		} else {
			if (SSL_write(s, t->out, ECHO_LEN) != ECHO_LEN)
				die("SSL_write");
			while (got < ECHO_LEN) {
				int r = SSL_read(s, t->in + got,
						 (int)(ECHO_LEN - got));
				if (r <= 0)
					die("SSL_read");
				got += (size_t)r;
			}
		}
		if (memcmp(t->in, t->out, ECHO_LEN))
			die("echo check");
	}
}

static void bench_tls(void)
{
	static struct tls t;
	t.sctx = server_ctx();
	t.cctx = SSL_CTX_new(TLS_client_method());
	for (int i = 0; i < ECHO_LEN; i++)
		t.out[i] = (char)(i * 13);
	for (int side = 0; side < 2; side++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
			       &t.fd[2 * side]))
			die("socketpair");
		SSL *srv = SSL_new(t.sctx);
		SSL_set_fd(srv, t.fd[2 * side + 1]);
		pthread_create(&t.t[side], NULL, echo_main, srv);
		t.c[side] = SSL_new(t.cctx);
		SSL_set_fd(t.c[side], t.fd[2 * side]);
		if (SSL_connect(t.c[side]) != 1)
			die("SSL_connect");
	}
	row("outgoing/tls_echo_64k", tls_fn, &t);
	for (int side = 0; side < 2; side++) {
		SSL_shutdown(t.c[side]);
		shutdown(t.fd[2 * side], SHUT_WR);
		pthread_join(t.t[side], NULL);
		SSL_free(t.c[side]);
		close(t.fd[2 * side]);
		close(t.fd[2 * side + 1]);
	}
	SSL_CTX_free(t.sctx);
	SSL_CTX_free(t.cctx);
}
#endif

/* ---- curl_get -------------------------------------------------------- */
#ifdef HAVE_LIBCURL
/* A keep-alive server: one small answer per request. */
static void *http_conn(void *arg)
{
	int c = (int)(intptr_t)arg;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	{
		char buf[4096];
		size_t n = 0;
		ssize_t r;
		while ((r = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
			n += (size_t)r;
			buf[n] = '\0';
			char *end;
			while ((end = strstr(buf, "\r\n\r\n"))) {
				if (write(c, resp, sizeof resp - 1) < 0)
					break;
				size_t used = (size_t)(end + 4 - buf);
				memmove(buf, end + 4, n - used + 1);
				n -= used;
			}
		}
		close(c);
	}
	return NULL;
}

/* One thread per connection: a connection may stay open while the next
 * one is made. */
static void *http_main(void *arg)
{
	int l = *(int *)arg, c;
	while ((c = accept(l, NULL, NULL)) >= 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, http_conn, (void *)(intptr_t)c))
			die("pthread_create");
		pthread_detach(t);
	}
	return NULL;
}

struct get {
	CURL *e[2];
	size_t bytes;
};

static size_t count(char *p, size_t size, size_t nmemb, void *arg)
{
	(void)p;
	*(size_t *)arg += size * nmemb;
	return size * nmemb;
}

static void curl_fn(void *arg, int side, int tid, uint64_t n)
{
	struct get *g = arg;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		g->bytes = 0;
		CURLcode rc = side == 0 ? ctx_curl_perform(ctx_background(),
							   g->e[0])
					: curl_easy_perform(g->e[1]);
		if (rc != CURLE_OK || g->bytes != 5)
			die("GET");
	}
}

static void bench_curl(void)
{
	int port, l = tcp_listener(&port);
	pthread_t t;
	char url[64];
	struct get g;
	pthread_create(&t, NULL, http_main, &l);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	for (int i = 0; i < 2; i++) {
		g.e[i] = curl_easy_init();
		curl_easy_setopt(g.e[i], CURLOPT_URL, url);
		curl_easy_setopt(g.e[i], CURLOPT_WRITEFUNCTION, count);
		curl_easy_setopt(g.e[i], CURLOPT_WRITEDATA, &g.bytes);
		curl_easy_setopt(g.e[i], CURLOPT_NOSIGNAL, 1L);
	}
	row("outgoing/curl_get", curl_fn, &g);
	for (int i = 0; i < 2; i++)
		curl_easy_cleanup(g.e[i]);
	shutdown(l, SHUT_RDWR);
	pthread_join(t, NULL);
	close(l);
}
#endif

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_print_machine("bench_outgoing: outgoing calls beside the plain "
			    "libraries");
	printf("# libctx backend: %s\n", ctx_backend());
	bench_dial();
#ifdef HAVE_OPENSSL
	bench_tls();
#endif
#ifdef HAVE_LIBCURL
	curl_global_init(CURL_GLOBAL_DEFAULT);
	bench_curl();
	curl_global_cleanup();
#endif
	return 0;
}
