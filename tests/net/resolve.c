/*
 * ctx_getaddrinfo: numeric hosts, the hosts file, a DNS server that never
 * answers (c-ares: CTX_DNS_SERVER points it at a silent UDP socket of the
 * test's), and what abandoned lookups leave behind, on c-ares and on
 * helper threads that hang (a getaddrinfo replaced through the test
 * hook: hang.h).  A done context, a cancel and a deadline on the helper
 * threads: the contract test's.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hang.h"
#include "net/resolve.h"
#include "suites.h"
#include "testutil.h"

static bool has_v4(struct addrinfo *r, const char *want)
{
	for (; r; r = r->ai_next) {
		char buf[INET_ADDRSTRLEN];
		struct sockaddr_in *sin = (struct sockaddr_in *)r->ai_addr;
		if (r->ai_family == AF_INET &&
		    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) &&
		    strcmp(buf, want) == 0)
			return true;
	}
	return false;
}

START_TEST(numeric_host)
{
	struct addrinfo h = { .ai_socktype = SOCK_STREAM }, *r;
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "127.0.0.1", "8080",
					 &h, &r), 0);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->ai_family, AF_INET);
	ck_assert_int_eq(r->ai_socktype, SOCK_STREAM);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)r->ai_addr)->sin_port),
			 8080);
	ctx_freeaddrinfo(r);
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "::1", NULL, NULL,
					 &r), 0);
	ck_assert_int_eq(r->ai_family, AF_INET6);
	ctx_freeaddrinfo(r);
	ctx_freeaddrinfo(NULL);
}
END_TEST

START_TEST(bad_input)
{
	struct addrinfo *r = (void *)1;
	errno = 0;
	ck_assert_int_eq(ctx_getaddrinfo(NULL, "localhost", "80", NULL, &r),
			 EAI_SYSTEM);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "localhost", "80",
					 NULL, NULL), EAI_SYSTEM);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), NULL, NULL, NULL,
					 &r), EAI_NONAME);
	ck_assert_ptr_null(r);
}
END_TEST

/* "localhost" from /etc/hosts by the mechanism of the loop index. */
START_TEST(localhost)
{
	enum ctx__resolver m = _i ? CTX__RESOLVE_CARES : CTX__RESOLVE_THREADS;
	ck_assert(ctx__resolve_force(m));
	struct addrinfo h = { .ai_family = AF_INET,
			      .ai_socktype = SOCK_STREAM }, *r;
	int rc = ctx_getaddrinfo(ctx_background(), "localhost", "80", &h, &r);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_msg(rc == 0, "localhost: %s", gai_strerror(rc));
	ck_assert(has_v4(r, "127.0.0.1"));
	ctx_freeaddrinfo(r);
}
END_TEST

/* Port 0 by name (issue 31, item 1): what a listener on "localhost:0"
 * asks.  c-ares refused it with EAI_SERVICE. */
START_TEST(zero_port_by_name)
{
	enum ctx__resolver m = _i ? CTX__RESOLVE_CARES : CTX__RESOLVE_THREADS;
	ck_assert(ctx__resolve_force(m));
	struct addrinfo h = { .ai_family = AF_INET,
			      .ai_socktype = SOCK_STREAM }, *r;
	int rc = ctx_getaddrinfo(ctx_background(), "localhost", "0", &h, &r);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_msg(rc == 0, "localhost/0: %s", gai_strerror(rc));
	ck_assert(has_v4(r, "127.0.0.1"));
	ck_assert_int_eq(((struct sockaddr_in *)r->ai_addr)->sin_port, 0);
	ctx_freeaddrinfo(r);
}
END_TEST

/* Two answers the same, node by node: 0, or a description. */
static const char *differ(const struct addrinfo *a, const struct addrinfo *b)
{
	for (; a && b; a = a->ai_next, b = b->ai_next) {
		if (a->ai_family != b->ai_family ||
		    a->ai_socktype != b->ai_socktype ||
		    a->ai_protocol != b->ai_protocol)
			return "family, socket type or protocol";
		if (a->ai_flags != b->ai_flags)
			return "flags";
		if (a->ai_addrlen != b->ai_addrlen ||
		    memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) != 0)
			return "address or port";
		if (!a->ai_canonname != !b->ai_canonname ||
		    (a->ai_canonname &&
		     strcmp(a->ai_canonname, b->ai_canonname) != 0))
			return "canonical name";
	}
	return a || b ? "number of nodes" : NULL;
}

/* ctx_getaddrinfo answers as getaddrinfo(3) for a table of services and
 * socket types on a name from the hosts file, by the mechanism of the
 * loop index: numeric services (port 0, leading zeros, past 65535,
 * malformed), named ones (glibc keeps to the protocols /etc/services
 * lists; c-ares paired a name with every socket type), and no service. */
START_TEST(same_as_getaddrinfo)
{
	static const char *services[] = { "0", "80", "010", "65535", "65536",
					  "", "0x50", "80x", "-1", "http",
					  "domain", NULL };
	static const int types[] = { 0, SOCK_STREAM, SOCK_DGRAM };
	static const int flags[] = { 0, AI_NUMERICSERV, AI_CANONNAME };
	enum ctx__resolver m = _i ? CTX__RESOLVE_CARES : CTX__RESOLVE_THREADS;
	ck_assert(ctx__resolve_force(m));
	for (size_t s = 0; s < sizeof(services) / sizeof(*services); s++)
		for (size_t t = 0; t < 3; t++)
			for (size_t f = 0; f < 3; f++) {
				struct addrinfo h = { .ai_family = AF_INET,
						      .ai_socktype = types[t],
						      .ai_flags = flags[f] };
				struct addrinfo *want = NULL, *got = NULL;
				int rw = getaddrinfo("localhost", services[s],
						     &h, &want);
				int rg = ctx_getaddrinfo(ctx_background(),
							 "localhost",
							 services[s], &h, &got);
				const char *d = rw != rg ? "result" :
						differ(want, got);
				ck_assert_msg(!d, "localhost/%s type %d flags "
					      "%#x: %s differs (%s, %s)",
					      services[s] ? services[s] : "NULL",
					      types[t], flags[f], d,
					      rw ? gai_strerror(rw) : "0",
					      rg ? gai_strerror(rg) : "0");
				if (want)
					freeaddrinfo(want);
				ctx_freeaddrinfo(got);
			}
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
}
END_TEST

#ifdef HAVE_CARES
/* A hosts file of the test's (c-ares reads CARES_HOSTS), with aliases,
 * both families and AI_CANONNAME. */
START_TEST(hosts_file)
{
	char path[] = "/tmp/ctx-hosts-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char *text = "192.0.2.7 ctx-test.example alias.example\n"
			   "2001:db8::7 ctx-test.example\n";
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("CARES_HOSTS", path, 1);
	ck_assert(ctx__resolve_force(CTX__RESOLVE_CARES));
	struct addrinfo h = { .ai_socktype = SOCK_STREAM,
			      .ai_flags = AI_CANONNAME }, *r;
	int rc = ctx_getaddrinfo(ctx_background(), "alias.example", "http",
				 &h, &r);
	ck_assert_msg(rc == 0, "%s", gai_strerror(rc));
	ck_assert(has_v4(r, "192.0.2.7"));
	ck_assert_ptr_nonnull(r->ai_canonname);
	bool v6 = false;
	for (struct addrinfo *p = r; p; p = p->ai_next) {
		v6 |= p->ai_family == AF_INET6;
		ck_assert_int_eq(ntohs(((struct sockaddr_in *)p->ai_addr)->sin_port), 80);
	}
	ctx_freeaddrinfo(r);
	struct addrinfo h6 = { .ai_family = AF_INET6 };
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "ctx-test.example",
					 NULL, &h6, &r), 0);
	ck_assert_int_eq(r->ai_family, AF_INET6);
	ctx_freeaddrinfo(r);
	(void)v6;
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	unsetenv("CARES_HOSTS");
	unlink(path);
}
END_TEST

/* A UDP socket that never answers, named by CTX_DNS_SERVER. */
static int silent_server(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	char env[64];
	snprintf(env, sizeof env, "127.0.0.1:%d", ntohs(sa.sin_port));
	setenv("CTX_DNS_SERVER", env, 1);
	ck_assert(ctx__resolve_force(CTX__RESOLVE_CARES));
	return s;
}

static void silent_done(int s)
{
	/* The query really went to the silent server. */
	char buf[512];
	ck_assert_int_gt(recv(s, buf, sizeof buf, MSG_DONTWAIT), 0);
	close(s);
	unsetenv("CTX_DNS_SERVER");
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
}

/* c-ares asking a server that never answers: the deadline (loop index
 * 0) or a cancel (1) ends the lookup, after the query really went out. */
START_TEST(silent_dns)
{
	int s = silent_server();
	ctx_t *c = _i ? ctx_with_cancel(ctx_background()) :
			ctx_with_timeout(ctx_background(), 200 * CTX_MSEC);
	struct tu_canceller k;
	struct addrinfo *r;
	if (_i)
		tu_must_cancel_after(&k, c, 200 * CTX_MSEC);
	int64_t t0 = ctx_now();
	errno = 0;
	int rc = ctx_getaddrinfo(c, "never.example", "80", NULL, &r);
	int err = errno;
	double ms = tu_ms_since(t0);
	if (_i)
		tu_canceller_join(&k);
	ck_assert_int_eq(rc, EAI_SYSTEM);
	ck_assert_int_eq(err, _i ? CTX_CANCELED : CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, 180, 200 + 1000);
	ctx_release(c);
	silent_done(s);
}
END_TEST

/* c-ares: an abandoned lookup closes its sockets and uses no thread. */
START_TEST(cares_abandoned)
{
	int s = silent_server();
	tu_warm_up();
	int fds = tu_count_fds(), threads = tu_count_threads();
	for (int i = 0; i < 20; i++) {
		ctx_t *c = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
		struct addrinfo *r;
		ck_assert_int_eq(ctx_getaddrinfo(c, "never.example", "80",
						 NULL, &r), EAI_SYSTEM);
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		ctx_release(c);
	}
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	ck_assert_int_le(tu_count_threads(), threads + 1); /* + a timer thread */
	silent_done(s);
}
END_TEST
#endif

/* A lookup in a child forked while the parent's helper threads sat
 * idle: the child has none of them, so it must start its own rather
 * than queue for one that the child's copy of the pool still counts. */
START_TEST(threads_after_fork)
{
#ifdef TU_TSAN
	/* ThreadSanitizer stops a child that starts a thread after a fork
	 * of a process with threads (die_after_fork), which this is. */
	fprintf(stderr, "resolve/threads_after_fork: skipped under "
		"ThreadSanitizer\n");
	return;
#endif
	ck_assert(ctx__resolve_force(CTX__RESOLVE_THREADS));
	struct addrinfo h = { .ai_family = AF_INET,
			      .ai_socktype = SOCK_STREAM }, *r;
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "localhost", "80",
					 &h, &r), 0);
	ctx_freeaddrinfo(r);
	tu_sleep_ns(50 * CTX_MSEC); /* the helper is back, idle */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		ctx_t *c = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
		int rc = ctx_getaddrinfo(c, "localhost", "80", &h, &r);
		_exit(rc == 0 && has_v4(r, "127.0.0.1") ? 0 :
		      errno == CTX_DEADLINE_EXCEEDED ? 2 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the child's lookup failed (exit %d; 2: it waited out "
		      "its 5 s deadline)", WEXITSTATUS(status));
}
END_TEST

/* 20 abandoned lookups cost at most the cap of helper threads and no
 * descriptor; once getaddrinfo returns, the helpers drop the queued jobs
 * whose callers left. */
START_TEST(threads_abandoned_bounded)
{
	hang_arm();
	tu_warm_up();
	int fds = tu_count_fds(), threads = tu_count_threads();
	for (int i = 0; i < 20; i++) {
		ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
		struct addrinfo *r;
		ck_assert_int_eq(ctx_getaddrinfo(c, "hung.example", "80",
						 NULL, &r), EAI_SYSTEM);
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		ctx_release(c);
	}
	ck_assert_int_le(ctx__resolve_helpers(), CTX__RESOLVE_MAX_HELPERS);
	ck_assert_int_ge(ctx__resolve_helpers(), 1);
	ck_assert_int_le(tu_count_threads(),
			 threads + CTX__RESOLVE_MAX_HELPERS + 1);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	hang_disarm();
	/* Released, the helpers finish and a real lookup still works. */
	struct addrinfo h = { .ai_family = AF_INET }, *r;
	ck_assert(ctx__resolve_force(CTX__RESOLVE_THREADS));
	ck_assert_int_eq(ctx_getaddrinfo(ctx_background(), "localhost", NULL,
					 &h, &r), 0);
	ctx_freeaddrinfo(r);
	ctx__resolve_force(CTX__RESOLVE_DEFAULT);
}
END_TEST

Suite *suite_resolve(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc = tu_tcase(s, "basics", 10);
	tu_add_tests(tc, numeric_host, bad_input);
#ifdef HAVE_CARES
	tcase_add_loop_test(tc, localhost, 0, 2);
	tcase_add_loop_test(tc, zero_port_by_name, 0, 2);
	tcase_add_loop_test(tc, same_as_getaddrinfo, 0, 2);
#else
	tcase_add_loop_test(tc, localhost, 0, 1);
	tcase_add_loop_test(tc, zero_port_by_name, 0, 1);
	tcase_add_loop_test(tc, same_as_getaddrinfo, 0, 1);
#endif
#ifdef HAVE_CARES
	tc = tu_tcase(s, "cares", 20);
	tcase_add_test(tc, hosts_file);
	tcase_add_loop_test(tc, silent_dns, 0, 2);
	tcase_add_test(tc, cares_abandoned);
#endif
	tc = tu_tcase(s, "threads", 20);
	tcase_add_test(tc, threads_abandoned_bounded);
	tcase_add_test(tc, threads_after_fork);
	return s;
}
