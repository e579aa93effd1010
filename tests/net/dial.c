/*
 * ctx_dial: address forms, errors, UDP, and the Happy Eyeballs race.
 *
 * An IPv6 listener "whose SYNs go unanswered" needs no namespace or
 * firewall here: a listener with backlog 0 whose accept queue already
 * holds one connection drops every further SYN (Linux does so whenever
 * the accept queue is full), so a connect to it hangs until the 1 s SYN
 * retry, as a black-holed route would.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/resolve.h"
#include "suites.h"
#include "testutil.h"

static socklen_t sa_of(int family, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof *s;
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	s->sin6_addr = in6addr_loopback;
	return sizeof *s;
}

/* A loopback listener of family on port (0: any); its port in *port, or
 * -1 if it cannot bind. */
static int listener(int family, int type, int *port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(family, *port, &ss);
	int s = socket(family, type | SOCK_CLOEXEC, 0);
	int one = 1;
	ck_assert_int_ge(s, 0);
	if (family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(s, backlog))) {
		close(s);
		return -1;
	}
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return s;
}

/* A listener whose accept queue is full: SYNs to it go unanswered.  The
 * filler connection's socket in *filler. */
static int full_listener(int family, int *port, int *filler)
{
	int l = listener(family, SOCK_STREAM, port, 0);
	if (l < 0)
		return -1;
	struct sockaddr_storage ss;
	socklen_t len = sa_of(family, *port, &ss);
	*filler = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(*filler, (struct sockaddr *)&ss, len), 0);
	struct pollfd pf = { l, POLLIN, 0 };
	ck_assert_int_eq(poll(&pf, 1, 1000), 1); /* queued: the queue is full */
	return l;
}

static void assert_blocking_cloexec(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

START_TEST(dial_v4_v6)
{
	int port = 0, l = listener(AF_INET, SOCK_STREAM, &port, 8);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int fd = ctx_dial(ctx_background(), addr, SOCK_STREAM);
	ck_assert_int_ge(fd, 0);
	assert_blocking_cloexec(fd);
	int a = accept(l, NULL, NULL);
	ck_assert_int_ge(a, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	char c;
	ck_assert_int_eq(read(a, &c, 1), 1);
	close(a), close(fd), close(l);

	port = 0;
	l = listener(AF_INET6, SOCK_STREAM, &port, 8);
	if (l < 0) {
		fprintf(stderr, "dial: no IPv6 loopback, [::1] not tried\n");
		return;
	}
	snprintf(addr, sizeof addr, "[::1]:%d", port);
	fd = ctx_dial(ctx_background(), addr, SOCK_STREAM);
	ck_assert_int_ge(fd, 0);
	assert_blocking_cloexec(fd);
	close(fd), close(l);
}
END_TEST

START_TEST(dial_malformed)
{
	const char *bad[] = { "127.0.0.1", "127.0.0.1:", "::1:80", "[::1]80",
			      "[::1", "host:port:1", "127.0.0.1:nosuchservice" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		errno = 0;
		int fd = ctx_dial(ctx_background(), bad[i], SOCK_STREAM);
		ck_assert_msg(fd == -1 && errno == EINVAL, "%s: %d, %s",
			      bad[i], fd, strerror(errno));
	}
	tu_assert_fail(ctx_dial(NULL, "127.0.0.1:1", SOCK_STREAM), EINVAL);
	tu_assert_fail(ctx_dial(ctx_background(), NULL, SOCK_STREAM), EINVAL);
	tu_assert_fail(ctx_dial(ctx_background(), "127.0.0.1:1", SOCK_RAW),
		       EINVAL);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	tu_assert_fail(ctx_dial(c, "127.0.0.1:1", SOCK_STREAM), CTX_CANCELED);
	ctx_release(c);
}
END_TEST

START_TEST(dial_refused)
{
	int port = 0, l = listener(AF_INET, SOCK_STREAM, &port, 8);
	close(l); /* nobody listens there now */
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	tu_warm_up();
	int fds = tu_count_fds();
	tu_assert_fail(ctx_dial(ctx_background(), addr, SOCK_STREAM),
		       ECONNREFUSED);
	ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

/* Service names work; a name without addresses is EADDRNOTAVAIL. */
static int nonames(const char *n, const char *s, const struct addrinfo *h,
		   struct addrinfo **r)
{
	(void)n, (void)s, (void)h, (void)r;
	return EAI_NONAME;
}

START_TEST(dial_names)
{
	if (getservbyname("http", "tcp")) {
		int fd = ctx_dial(ctx_background(), "127.0.0.1:http",
				  SOCK_STREAM);
		ck_assert_msg(fd >= 0 || errno != EINVAL, "127.0.0.1:http: %s",
			      strerror(errno));
		if (fd >= 0)
			close(fd);
	} else {
		fprintf(stderr, "dial: no /etc/services entry for http\n");
	}
	ck_assert(ctx__resolve_force(CTX__RESOLVE_THREADS));
	ctx__resolve_set_gai(nonames);
	tu_assert_fail(ctx_dial(ctx_background(), "nowhere.example:80",
				SOCK_STREAM), EADDRNOTAVAIL);
	ctx__resolve_set_gai(NULL);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
}
END_TEST

START_TEST(dial_udp)
{
	int port = 0, s = listener(AF_INET, SOCK_DGRAM, &port, 0);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	int fd = ctx_dial(ctx_background(), addr, SOCK_DGRAM);
	ck_assert_int_ge(fd, 0);
	assert_blocking_cloexec(fd);
	int type;
	socklen_t len = sizeof type;
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	ck_assert_int_eq(type, SOCK_DGRAM);
	ck_assert_int_eq(send(fd, "ping", 4, 0), 4);
	char buf[8];
	ck_assert_int_eq(recv(s, buf, sizeof buf, 0), 4);
	close(fd), close(s);
}
END_TEST

/* Two addresses, IPv6 first, built by hand for ctx__dial_addrs. */
static struct addrinfo *two(int port6, int port4)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_of(AF_INET6, port6, &ss);
	struct addrinfo *a = ctx__ai_new(AF_INET6, SOCK_STREAM, 0,
					 (struct sockaddr *)&ss, len, NULL);
	len = sa_of(AF_INET, port4, &ss);
	/* Given in the "wrong" order: the race must still start with IPv6. */
	struct addrinfo *b = ctx__ai_new(AF_INET, SOCK_STREAM, 0,
					 (struct sockaddr *)&ss, len, NULL);
	ck_assert(a && b);
	b->ai_next = a;
	return b;
}

/* IPv6 SYNs unanswered, IPv4 answers: connected over IPv4 after the
 * 250 ms attempt delay, long before the 1 s SYN retry. */
START_TEST(happy_eyeballs)
{
	int p6 = 0, filler, l6 = full_listener(AF_INET6, &p6, &filler);
	if (l6 < 0) {
		fprintf(stderr, "dial: no IPv6 loopback: skipped\n");
		exit(77);
	}
	int p4 = 0, l4 = listener(AF_INET, SOCK_STREAM, &p4, 8);
	struct addrinfo *list = two(p6, p4);
	tu_warm_up();
	int fds = tu_count_fds();
	int64_t t0 = ctx_now();
	int fd = ctx__dial_addrs(ctx_background(), list, SOCK_STREAM);
	double ms = tu_ms_since(t0);
	ck_assert_int_ge(fd, 0);
	tu_assert_ms(ms, 240, 950); /* under the 1 s SYN retry */
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &len), 0);
	ck_assert_int_eq(peer.ss_family, AF_INET);
	assert_blocking_cloexec(fd);
	close(fd);
	ck_assert_int_eq(tu_count_fds(), fds); /* the IPv6 attempt closed */
	ctx_freeaddrinfo(list);
	close(l4), close(l6), close(filler);
}
END_TEST

/* Every address hangs: the context ends the race and no socket is left. */
START_TEST(all_hang)
{
	int p6 = 0, f6, l6 = full_listener(AF_INET6, &p6, &f6);
	if (l6 < 0) {
		fprintf(stderr, "dial: no IPv6 loopback: skipped\n");
		exit(77);
	}
	int p4 = 0, f4, l4 = full_listener(AF_INET, &p4, &f4);
	struct addrinfo *list = two(p6, p4);
	tu_warm_up();
	int fds = tu_count_fds();
	ctx_t *c = ctx_with_timeout(ctx_background(), 600 * CTX_MSEC);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx__dial_addrs(c, list, SOCK_STREAM),
		       CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 599, 600 + 1000);
	ctx_release(c);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);

	c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	tu_must_cancel_after(&k, c, 400 * CTX_MSEC);
	t0 = ctx_now();
	int fd = ctx__dial_addrs(c, list, SOCK_STREAM);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(fd, CTX_CANCELED);
	tu_assert_ms(ms, 360, 400 + 1000);
	ctx_release(c);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	ctx_freeaddrinfo(list);
	close(l4), close(l6), close(f4), close(f6);
}
END_TEST

/* Out of descriptors (issue 21, item 5): a name fails with EMFILE as an
 * address literal does, not EAGAIN or EADDRNOTAVAIL, and ctx_getaddrinfo
 * says EAI_SYSTEM with EMFILE, by the mechanism of the loop index (0:
 * helper threads, 1: c-ares).  With room again, the name dials. */
START_TEST(dial_out_of_fds)
{
	enum ctx__resolver m = _i ? CTX__RESOLVE_CARES : CTX__RESOLVE_THREADS;
	int port = 0, l = listener(AF_INET, SOCK_STREAM, &port, 8);
	ck_assert_int_ge(l, 0);
	char name[32], literal[32];
	snprintf(name, sizeof(name), "localhost:%d", port);
	snprintf(literal, sizeof(literal), "127.0.0.1:%d", port);
	ck_assert(ctx__resolve_force(m));
	tu_warm_up();
	struct rlimit old;
	tu_limit_fds(0, &old);
	struct addrinfo h = { .ai_socktype = SOCK_STREAM }, *r = NULL;
	errno = 0;
	int rc = ctx_getaddrinfo(ctx_background(), "localhost", "80", &h, &r);
	int rc_errno = errno;
	errno = 0;
	int by_name = ctx_dial(ctx_background(), name, SOCK_STREAM);
	int name_errno = errno;
	errno = 0;
	int by_literal = ctx_dial(ctx_background(), literal, SOCK_STREAM);
	int literal_errno = errno;
	/* Restored before asserting, so a failure leaves the limit alone. */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_msg(rc == EAI_SYSTEM, "localhost: %s", gai_strerror(rc));
	ck_assert_int_eq(rc_errno, EMFILE);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(by_name, -1);
	ck_assert_int_eq(name_errno, EMFILE);
	ck_assert_int_eq(by_literal, -1);
	ck_assert_int_eq(literal_errno, EMFILE);
	ck_assert(ctx__resolve_force(m));
	int fd = ctx_dial(ctx_background(), name, SOCK_STREAM);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_int_ge(fd, 0);
	close(fd);
	close(l);
}
END_TEST

Suite *suite_dial(void)
{
	Suite *s = suite_create("dial");
	TCase *tc = tu_tcase(s, "basics", 10);
	tu_add_tests(tc, dial_v4_v6, dial_malformed, dial_refused, dial_names,
		     dial_udp);
#ifdef HAVE_CARES
	tcase_add_loop_test(tc, dial_out_of_fds, 0, 2);
#else
	tcase_add_loop_test(tc, dial_out_of_fds, 0, 1);
#endif
	tc = tu_tcase(s, "happy_eyeballs", 10);
	tu_add_tests(tc, happy_eyeballs, all_hang);
	return s;
}
