/*
 * ctx_split_host_port (Go's net.SplitHostPort cases, one by one) and
 * ctx_listen: families, the dual-stack wildcard, port 0, names, errors,
 * a datagram socket, and a name lookup that the context ends.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/resolve.h"
#include "../suites.h"
#include "../testutil.h"

struct split_case {
	const char *in, *host, *port; /* host NULL: EINVAL expected */
};

/* The cases of Go's net/ipsock_test.go (TestSplitHostPort). */
static const struct split_case split_cases[] = {
	{ "localhost:http", "localhost", "http" },
	{ "localhost:80", "localhost", "80" },
	{ "[localhost%lo0]:80", "localhost%lo0", "80" },
	{ "[::1]:80", "::1", "80" },
	{ "[fe80::1%lo0]:80", "fe80::1%lo0", "80" },
	{ ":0", "", "0" },
	{ "golang.org:", "golang.org", "" },
	{ ":", "", "" },
	{ "[::1]:", "::1", "" },
	{ "[]:80", "", "80" },
	{ "golang.org", NULL, NULL },
	{ "127.0.0.1", NULL, NULL },
	{ "[::1]", NULL, NULL },
	{ "[fe80::1%lo0]", NULL, NULL },
	{ "localhost%lo0", NULL, NULL },
	{ "::1", NULL, NULL },
	{ "fe80::1%lo0", NULL, NULL },
	{ "fe80::1%lo0:80", NULL, NULL },
	{ "[foo:bar]", NULL, NULL },
	{ "[foo:bar]baz", NULL, NULL },
	{ "[foo]bar:baz", NULL, NULL },
	{ "[foo]:[bar]:baz", NULL, NULL },
	{ "[foo]:[bar]baz", NULL, NULL },
	{ "foo[bar]:baz", NULL, NULL },
	{ "foo]bar:baz", NULL, NULL },
	{ "", NULL, NULL },
};

START_TEST(split_go_cases)
{
	const struct split_case *t = &split_cases[_i];
	char host[64] = "unchanged", port[64] = "unchanged";
	int e = ctx_split_host_port(t->in, host, sizeof host, port,
				    sizeof port);
	if (!t->host) {
		ck_assert_msg(e == EINVAL, "\"%s\": %d, want EINVAL", t->in, e);
		return;
	}
	ck_assert_msg(e == 0, "\"%s\": %s", t->in, strerror(e));
	ck_assert_str_eq(host, t->host);
	ck_assert_str_eq(port, t->port);
}
END_TEST

START_TEST(split_buffers)
{
	char host[10], port[3];
	/* Exactly fitting, then one byte short, on either side. */
	ck_assert_int_eq(ctx_split_host_port("123456789:12", host, 10, port, 3),
			 0);
	ck_assert_str_eq(host, "123456789");
	ck_assert_str_eq(port, "12");
	ck_assert_int_eq(ctx_split_host_port("1234567890:1", host, 10, port,
					     3), ERANGE);
	ck_assert_int_eq(ctx_split_host_port("h:123", host, 10, port, 3),
			 ERANGE);
	/* Either part may be left out. */
	ck_assert_int_eq(ctx_split_host_port("[::1]:443", NULL, 0, port, 3),
			 ERANGE);
	ck_assert_int_eq(ctx_split_host_port("[::1]:44", NULL, 0, port, 3), 0);
	ck_assert_str_eq(port, "44");
	ck_assert_int_eq(ctx_split_host_port("[::1]:44", host, 10, NULL, 0), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(ctx_split_host_port(NULL, host, 10, port, 3), EINVAL);
	ck_assert_int_eq(ctx_split_host_port("[::1]", NULL, 0, NULL, 0),
			 EINVAL);
}
END_TEST

/* The port and family a socket is bound to. */
static int bound_port(int fd, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*family = ss.ss_family;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A connection to host:port by plain connect(2): 0 or errno. */
static int try_connect(int family, const char *host, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		inet_pton(AF_INET, host, &s->sin_addr);
		len = sizeof *s;
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &s->sin6_addr);
		len = sizeof *s;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	int e = connect(fd, (struct sockaddr *)&ss, len) ? errno : 0;
	close(fd);
	return e;
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 s = { .sin6_family = AF_INET6,
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&s, sizeof s) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void assert_listener(int fd)
{
	int on = 0;
	socklen_t len = sizeof on;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len),
			 0);
	ck_assert_int_eq(on, 1);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len),
			 0);
	ck_assert_int_eq(on, 1);
}

START_TEST(listen_v4_and_port0)
{
	int l = ctx_listen(ctx_background(), "127.0.0.1:0", SOCK_STREAM, 8);
	assert_listener(l);
	int family, port = bound_port(l, &family);
	ck_assert_int_eq(family, AF_INET);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(try_connect(AF_INET, "127.0.0.1", port), 0);
	/* The same port again while it listens: the bind's error. */
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	tu_assert_fail(ctx_listen(ctx_background(), addr, SOCK_STREAM, 8),
		       EADDRINUSE);
	/* ctx_dial reaches it through the same form of address. */
	int d = ctx_dial(ctx_background(), addr, SOCK_STREAM);
	ck_assert_int_ge(d, 0);
	close(d);
	close(l);
	/* An empty port is port 0, as in Go. */
	l = ctx_listen(ctx_background(), "127.0.0.1:", SOCK_STREAM, -1);
	assert_listener(l);
	ck_assert_int_gt(bound_port(l, &family), 0);
	close(l);
}
END_TEST

/* No host: one socket that takes both families. */
START_TEST(listen_wildcard_dual_stack)
{
	if (!have_ipv6()) {
		fprintf(stderr, "listen: no IPv6 here, wildcard is IPv4\n");
		int l = ctx_listen(ctx_background(), ":0", SOCK_STREAM, 8);
		int family, port = bound_port(l, &family);
		ck_assert_int_eq(try_connect(AF_INET, "127.0.0.1", port), 0);
		close(l);
		return;
	}
	int l = ctx_listen(ctx_background(), ":0", SOCK_STREAM, 8);
	assert_listener(l);
	int family, port = bound_port(l, &family);
	ck_assert_int_eq(family, AF_INET6);
	ck_assert_int_eq(try_connect(AF_INET, "127.0.0.1", port), 0);
	ck_assert_int_eq(try_connect(AF_INET6, "::1", port), 0);
	close(l);
	/* [::1] is IPv6 alone. */
	l = ctx_listen(ctx_background(), "[::1]:0", SOCK_STREAM, 8);
	assert_listener(l);
	port = bound_port(l, &family);
	ck_assert_int_eq(family, AF_INET6);
	ck_assert_int_eq(try_connect(AF_INET6, "::1", port), 0);
	ck_assert_int_eq(try_connect(AF_INET, "127.0.0.1", port),
			 ECONNREFUSED);
	close(l);
}
END_TEST

/* A name listens on its IPv4 address first, as Go's Listen does. */
START_TEST(listen_name)
{
	int l = ctx_listen(ctx_background(), "localhost:0", SOCK_STREAM, 8);
	if (l < 0 && errno == EADDRNOTAVAIL) {
		fprintf(stderr, "listen: localhost does not resolve here\n");
		return;
	}
	assert_listener(l);
	int family, port = bound_port(l, &family);
	ck_assert_int_eq(family, AF_INET);
	ck_assert_int_eq(try_connect(AF_INET, "127.0.0.1", port), 0);
	close(l);
}
END_TEST

START_TEST(listen_dgram)
{
	int u = ctx_listen(ctx_background(), "127.0.0.1:0", SOCK_DGRAM, 0);
	ck_assert_int_ge(u, 0);
	int family, port = bound_port(u, &family);
	char addr[32], c = 0;
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int d = ctx_dial(ctx_background(), addr, SOCK_DGRAM);
	ck_assert_int_ge(d, 0);
	ck_assert_int_eq(send(d, "u", 1, 0), 1);
	ck_assert_int_eq(ctx_recv(ctx_background(), u, &c, 1, 0), 1);
	ck_assert_int_eq(c, 'u');
	close(d);
	close(u);
}
END_TEST

START_TEST(listen_errors)
{
	const char *bad[] = { "127.0.0.1", "::1:80", "[::1]80", "[::1",
			      "h:p:1", "", "127.0.0.1:nosuchservice" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		int fd = ctx_listen(ctx_background(), bad[i], SOCK_STREAM, 8);
		ck_assert_msg(fd == -1 && errno == EINVAL, "%s: %d, %s",
			      bad[i], fd, strerror(errno));
	}
	tu_assert_fail(ctx_listen(NULL, ":0", SOCK_STREAM, 8), EINVAL);
	tu_assert_fail(ctx_listen(ctx_background(), NULL, SOCK_STREAM, 8),
		       EINVAL);
	tu_assert_fail(ctx_listen(ctx_background(), ":0", SOCK_RAW, 8),
		       EINVAL);
	/* An address of no interface here. */
	tu_assert_fail(ctx_listen(ctx_background(), "192.0.2.1:0",
				  SOCK_STREAM, 8), EADDRNOTAVAIL);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	tu_assert_fail(ctx_listen(c, "127.0.0.1:0", SOCK_STREAM, 8),
		       CTX_CANCELED);
	ctx_release(c);
}
END_TEST

/* A lookup that never answers until the test lets it go: the context's
 * deadline ends the listen, and nothing is left open. */
static pthread_mutex_t hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static bool hang_released;

static int gai_hang(const char *node, const char *service,
		    const struct addrinfo *hints, struct addrinfo **res)
{
	(void)node, (void)service, (void)hints, (void)res;
	pthread_mutex_lock(&hang_mu);
	while (!hang_released)
		pthread_cond_wait(&hang_cv, &hang_mu);
	pthread_mutex_unlock(&hang_mu);
	return EAI_AGAIN;
}

static void hang_release(void)
{
	pthread_mutex_lock(&hang_mu);
	hang_released = true;
	pthread_cond_broadcast(&hang_cv);
	pthread_mutex_unlock(&hang_mu);
}

START_TEST(listen_lookup_deadline)
{
	hang_released = false;
	ck_assert(ctx__resolve_force(CTX__RESOLVE_THREADS));
	ctx__resolve_set_gai(gai_hang);
	ctx_t *c = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	int64_t t0 = ctx_now();
	int fd = ctx_listen(c, "somewhere.invalid:0", SOCK_STREAM, 8);
	int e = errno;
	double ms = tu_ms_since(t0);
	ctx_release(c);
	hang_release();
	ctx__resolve_set_gai(NULL);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, 40, 1000);
}
END_TEST

Suite *suite_listen(void)
{
	Suite *s = suite_create("listen");
	TCase *tc = tu_tcase(s, "split", 5);
	tcase_add_loop_test(tc, split_go_cases, 0,
			    sizeof split_cases / sizeof split_cases[0]);
	tcase_add_test(tc, split_buffers);
	tc = tu_tcase(s, "listen", 10);
	tcase_add_test(tc, listen_v4_and_port0);
	tcase_add_test(tc, listen_wildcard_dual_stack);
	tcase_add_test(tc, listen_name);
	tcase_add_test(tc, listen_dgram);
	tcase_add_test(tc, listen_errors);
	tcase_add_test(tc, listen_lookup_deadline);
	return s;
}
