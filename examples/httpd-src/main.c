/*
 * httpd: a small HTTP/1.1 server in which every blocking call is a libctx
 * call, so every wait has a context that can end it.
 *
 *	httpd [--addr A] [--port N] [--timeout MS] [--slow MS] [--grace MS]
 *	      [--header-timeout MS] [--idle-timeout MS] [--write-timeout MS]
 *	      [--max-conns N] [--log FILE] [--quiet] [--tls CERT KEY]
 *	      [--upstream URL] [--deadline-margin MS]
 *
 *	GET /fast   200 at once
 *	GET /slow   --slow ms of work under a --timeout per-request deadline:
 *	            200 if the work wins, 504 if the deadline does (and the
 *	            work stops then: it does not run on after the answer);
 *	            a client that goes away ends the work at once, logged 499
 *	GET /proxy  GET --upstream URL through libctx-curl, the time left
 *	            (less --deadline-margin, 10 ms) sent on in grpc-timeout:
 *	            the upstream's 504 comes back before this request's
 *
 * A request that says how long its caller will wait (grpc-timeout,
 * x-envoy-expected-rq-timeout-ms) has that deadline when it is sooner
 * than --timeout, so httpd's behind one another (--upstream) all stop at
 * the first one's deadline, or as soon as its client goes.
 *
 * The contexts, as a Go server would have them:
 *
 *	background
 *	 `- stop            ctx_with_signals(SIGINT, SIGTERM): ends accept(),
 *	     |              waits for the next request, and header reads
 *	     |- idle        ctx_with_idle, touched by every read: keep-alive
 *	     |   |          idle time between requests
 *	     |   `- header deadline: fixed from the request's start
 *	     `~ base        ctx_with_grace(stop, --grace): stop's end starts
 *	         |          its grace, a second SIGINT or SIGTERM ends it
 *	         `- connection  (a value: the connection) -- one thread each
 *	             `- request (a value: the request ID, logged on every line)
 *	                 `- hangup  ctx_with_hangup on the socket: ends when
 *	                     |      the client goes (logged 499)
 *	                     |- per-request timeout: the handler's work
 *	                     `- write deadline: the answer
 *
 * SIGHUP (a reload: the log is reopened) and the second SIGINT or
 * SIGTERM come on a channel (ctx_signal_notify), read by a thread.
 * So a signal stops accepting and closes idle connections at once, while
 * requests being handled go on (they hang under base, which stop does
 * not end) until the grace period ends; a second SIGINT or SIGTERM
 * cancels base at once; clients still in the accept queue then, and
 * requests cut off by the grace with nothing sent, get 503.  At
 * --max-conns the longest-idle keep-alive connection is closed to make
 * room (an idle list; its idle context is cancelled), else the new client
 * gets 503 with Retry-After; out of descriptors, a spare one is given up
 * to answer 503.  One thread per connection
 * (detached; a wait group counts them, a channel of slots bounds them), HTTP
 * parsed by http-parser, the port printed as the first line of stdout,
 * the log on stderr.
 *
 * --tls CERT KEY serves HTTPS instead (PEM files; needs a build with
 * OpenSSL, libctx-ssl).  A connection's bytes go through a transport, a
 * small table of calls (read, write, busy, close): plain TCP is ctx_read
 * and ctx_send as before, TLS is ctx_ssl_read and ctx_ssl_write.  As in
 * Go's crypto/tls, the handshake is run by the first read (or write), so
 * it waits under the first request's contexts: the header deadline from
 * the accept, stop, idle; no context of its own, nothing else to bound.
 *
 * This file holds the options and the order of the server's life: parse
 * the options, set up, listen, accept until a signal, stop.  httpd.h
 * lists the other files and what each is for.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "httpd.h"

struct options opt = {
	.port = 8080,
	.timeout = 2000 * CTX_MSEC,
	.slow = 3000 * CTX_MSEC,
	.grace = 5000 * CTX_MSEC,
	.header_timeout = 5000 * CTX_MSEC,
	.idle_timeout = 30000 * CTX_MSEC,
	.write_timeout = 10000 * CTX_MSEC,
	.max_conns = 1000,
	.deadline_margin = 10 * CTX_MSEC,
};

struct server srv = { .lfd = -1, .spare = -1 };

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: httpd [--addr A] [--port N] [--timeout MS] [--slow MS]"
		" [--grace MS]\n"
		"             [--header-timeout MS] [--idle-timeout MS]"
		" [--write-timeout MS]\n"
		"             [--max-conns N] [--log FILE] [--quiet]"
		" [--tls CERT KEY]\n"
		"             [--upstream URL] [--deadline-margin MS]\n");
}

static long long number(const char *name, long long max)
{
	char *end;
	long long v = strtoll(optarg, &end, 10);

	if (*optarg == '\0' || *end != '\0' || v < 0 || v > max) {
		fprintf(stderr, "httpd: --%s: bad value '%s' (want a whole "
				"number from 0 to %lld)\n", name, optarg, max);
		exit(2);
	}
	return v;
}

/* A duration option, in milliseconds.  --timeout and --slow may be 0
 * (an instant deadline, no work); a zero deadline for the header, the
 * idle time, the write or the grace would fail every request, so those
 * are refused. */
static int64_t msec(const char *name, bool positive)
{
	int64_t v = number(name, INT64_MAX / CTX_MSEC) * CTX_MSEC;

	if (positive && v <= 0) {
		fprintf(stderr, "httpd: --%s: must be at least 1 ms, not "
				"'%s'\n", name, optarg);
		exit(2);
	}
	return v;
}

static void parse_addr(void)
{
	if (inet_pton(AF_INET, optarg, &opt.addr) != 1) {
		fprintf(stderr, "httpd: --addr: not an IPv4 address: '%s'\n",
			optarg);
		exit(2);
	}
}

static void parse_max_conns(void)
{
	opt.max_conns = (int)number("max-conns", 1 << 20);
	if (opt.max_conns < 1) {
		fprintf(stderr, "httpd: --max-conns: must be at least 1, not "
				"'%s'\n", optarg);
		exit(2);
	}
}

/* --tls CERT KEY: getopt gives the first; the second is the next word. */
static void parse_tls(int argc, char **argv)
{
	if (optind >= argc || argv[optind][0] == '-') {
		fprintf(stderr, "httpd: --tls: wants two files: --tls CERT "
				"KEY\n");
		exit(2);
	}
	opt.cert = optarg;
	opt.key = argv[optind++];
}

/* --upstream URL: an http or https URL, in a build with libcurl. */
static void parse_upstream(void)
{
#ifndef HAVE_LIBCURL
	fprintf(stderr, "httpd: --upstream: built without libcurl\n");
	exit(2);
#endif
	if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) {
		fprintf(stderr, "httpd: --upstream: not an http:// or "
				"https:// URL: '%s'\n", optarg);
		exit(2);
	}
	opt.upstream = optarg;
}

static const struct option longopts[] = {
	{ "addr", required_argument, NULL, 'a' },
	{ "port", required_argument, NULL, 'p' },
	{ "timeout", required_argument, NULL, 't' },
	{ "slow", required_argument, NULL, 's' },
	{ "grace", required_argument, NULL, 'g' },
	{ "header-timeout", required_argument, NULL, 'H' },
	{ "idle-timeout", required_argument, NULL, 'i' },
	{ "write-timeout", required_argument, NULL, 'w' },
	{ "max-conns", required_argument, NULL, 'm' },
	{ "log", required_argument, NULL, 'l' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "tls", required_argument, NULL, 'T' },
	{ "upstream", required_argument, NULL, 'u' },
	{ "deadline-margin", required_argument, NULL, 'M' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void parse_options(int argc, char **argv)
{
	int o;

	opt.addr.s_addr = htonl(INADDR_LOOPBACK);
	/* "+": no reordering, so that --tls can take the word after its
	 * argument as its second (no other words are taken anyway). */
	while ((o = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
		switch (o) {
		case 'a': parse_addr(); break;
		case 'p': opt.port = (int)number("port", 65535); break;
		case 't': opt.timeout = msec("timeout", false); break;
		case 's': opt.slow = msec("slow", false); break;
		case 'g': opt.grace = msec("grace", true); break;
		case 'H': opt.header_timeout = msec("header-timeout", true); break;
		case 'i': opt.idle_timeout = msec("idle-timeout", true); break;
		case 'w': opt.write_timeout = msec("write-timeout", true); break;
		case 'm': parse_max_conns(); break;
		case 'l': opt.log = optarg; break;
		case 'q': opt.quiet = true; break;
		case 'T': parse_tls(argc, argv); break;
		case 'u': parse_upstream(); break;
		case 'M': opt.deadline_margin = msec("deadline-margin", false); break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc || opt.max_conns < 1) {
		usage(stderr);
		exit(2);
	}
}

/* ---- start -------------------------------------------------------------- */

/* Go raises the soft descriptor limit to the hard one at start; a
 * thread per connection needs room for its socket and its waits. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* The port on stdout's first line (tests and scripts wait for it), and
 * what the server is about in the log.  The log's times count from the
 * start; the start on CLOCK_MONOTONIC, which every process of a machine
 * shares, lets a test line up the logs of several servers. */
static void announce(void)
{
	char addr[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &opt.addr, addr, sizeof(addr));
	printf("listening on %d\n", opt.port);
	fflush(stdout);
	hlog(NULL, "listening on %s:%d%s (timeout %lld ms, slow %lld ms, "
		   "header %lld ms, idle %lld ms, grace %lld ms)",
	     addr, opt.port, opt.cert ? " over TLS" : "", ms(opt.timeout),
	     ms(opt.slow),
	     ms(opt.header_timeout), ms(opt.idle_timeout), ms(opt.grace));
	hlog(NULL, "started at %.6f s on the monotonic clock%s%s",
	     (double)srv.started / CTX_SEC, opt.upstream ? "; upstream " : "",
	     opt.upstream ? opt.upstream : "");
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	srv.io = &tcp_transport;
	if (opt.cert)
		tls_setup(); /* exits 2 if the files will not do */
	srv.started = ctx_now();
	raise_nofile();
	/* Before the first line: the test sends SIGINT once it reads it. */
	srv.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* libcurl's global set-up, before any thread. */
	if (opt.upstream && upstream_setup() < 0) {
		fprintf(stderr, "httpd: start: libcurl's set-up failed\n");
		return 1;
	}
	if (setup() < 0 || listen_on() < 0) {
		perror("httpd: start");
		teardown();
		return 1;
	}
	announce();

	int e = accept_loop();
	shut_down(e);
	if (opt.upstream)
		upstream_teardown();
	return e != CTX_CANCELED;
}
