/*
 * slowloris: a test client that opens many connections, sends half a
 * request header on each, trickles a byte now and then, and never
 * finishes.  A server with a header deadline closes them all when it
 * passes; this program measures when.
 *
 *	usage: slowloris -p PORT [-n CONNS] [-k TRICKLE_MS] [-t LIMIT_MS]
 *	       (127.0.0.1 only; defaults: 200 connections, a byte every
 *	       100 ms, give up after 10000 ms)
 *
 * Prints "open N" once every connection is up (a test acts on that line
 * while they hang), then "closed C/N min A ms max B ms": how many the
 * server closed, and how long after its connect the first and the last
 * one went.  Exit 0 if the server closed all of them within LIMIT_MS.
 *
 * The client side uses libctx as well: one deadline bounds the whole
 * run, connects and sends included.
 */
#include <arpa/inet.h>
#include <ctx.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char half[] = "GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

struct victim {
	int64_t opened, closed;   /* 0: not yet */
};

static int port, nconns = 200;
static int64_t trickle = 100 * CTX_MSEC, limit = 10000 * CTX_MSEC;

static long long number(const char *s, long long min, long long max)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "slowloris: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	int o;

	while ((o = getopt(argc, argv, "p:n:k:t:")) != -1) {
		switch (o) {
		case 'p': port = (int)number(optarg, 1, 65535); break;
		case 'n': nconns = (int)number(optarg, 1, 100000); break;
		case 'k': trickle = number(optarg, 1, 3600000) * CTX_MSEC; break;
		case 't': limit = number(optarg, 1, 3600000) * CTX_MSEC; break;
		default:
			fprintf(stderr, "usage: slowloris -p PORT [-n CONNS] "
					"[-k TRICKLE_MS] [-t LIMIT_MS]\n");
			exit(2);
		}
	}
	if (!port) {
		fprintf(stderr, "slowloris: -p PORT is required\n");
		exit(2);
	}
}

/* Connect and send the first half of a header.  Returns the socket. */
static int open_one(ctx_t *ctx)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (ctx_connect(ctx, fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    ctx_send(ctx, fd, half, sizeof(half) - 1, MSG_NOSIGNAL) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The server answered or hung up on p: read what is there; a close
 * (EOF or reset) marks the victim closed. */
static void on_event(ctx_t *ctx, struct pollfd *p, struct victim *v)
{
	char buf[512];
	ssize_t n = ctx_recv(ctx, p->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
		return; /* an answer (408?) or nothing yet: wait for the close */
	v->closed = ctx_now();
	close(p->fd);
	p->fd = -1;
}

/* One more header byte on every connection still open: the deadline
 * must not move for it. */
static void drip(ctx_t *ctx, struct pollfd *p, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0)
			ctx_send(ctx, p[i].fd, "x", 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Wait until every connection is closed, or the deadline. */
static int watch(ctx_t *ctx, struct pollfd *p, struct victim *v, int n)
{
	int left = n;

	while (left > 0) {
		int r = ctx_poll(ctx, p, (nfds_t)n, trickle);

		if (r < 0)
			return errno;
		if (r == 0)
			drip(ctx, p, n);
		for (int i = 0; r > 0 && i < n; i++)
			if (p[i].fd >= 0 && p[i].revents) {
				on_event(ctx, &p[i], &v[i]);
				left -= p[i].fd < 0;
			}
	}
	return 0;
}

static void report(struct victim *v, int n)
{
	int64_t lo = INT64_MAX, hi = 0;
	int closed = 0;

	for (int i = 0; i < n; i++) {
		if (!v[i].closed)
			continue;
		int64_t d = v[i].closed - v[i].opened;
		closed++;
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	printf("closed %d/%d min %lld ms max %lld ms\n", closed, n,
	       (long long)(closed ? lo / CTX_MSEC : -1),
	       (long long)(closed ? hi / CTX_MSEC : -1));
}

/* Room for the sockets, as the server does for its own. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	raise_nofile();
	struct pollfd *p = calloc((size_t)nconns, sizeof(*p));
	struct victim *v = calloc((size_t)nconns, sizeof(*v));
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), limit);
	int e = 0, n;

	if (!p || !v || !ctx) {
		perror("slowloris");
		return 1;
	}
	for (n = 0; n < nconns; n++) {
		p[n] = (struct pollfd){ .fd = open_one(ctx), .events = POLLIN };
		if (p[n].fd < 0) {
			e = errno;
			fprintf(stderr, "slowloris: connection %d: %s\n", n,
				ctx_strerror(e));
			break;
		}
		v[n].opened = ctx_now();
	}
	printf("open %d\n", n);
	fflush(stdout);
	if (!e && (e = watch(ctx, p, v, n)))
		fprintf(stderr, "slowloris: %s\n", ctx_strerror(e));
	report(v, n);
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
	free(v);
	return e != 0;
}
