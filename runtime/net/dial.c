/*
 * ctx_dial: resolve a "host:port" and connect, racing the addresses as
 * Happy Eyeballs v2 (RFC 8305) does.
 *
 * The addresses are interleaved by family, IPv6 first.  Each attempt is a
 * non-blocking connect; the next one starts 250 ms after the last (the
 * RFC's recommended Connection Attempt Delay) or at once when an attempt
 * fails.  All the pending attempts are watched with one ctx_poll, so the
 * context ends the whole race; the first to connect wins, every other
 * socket is closed, and the winner is made blocking again.
 *
 * UDP has no handshake to race: connect(2) on a datagram socket only
 * picks a route, so the addresses are tried in order until one takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/addr.h"
#include "net/resolve.h"

#define ATTEMPT_DELAY (250 * CTX_MSEC)
#define MAX_ADDRS 64 /* more than any real name has; the rest are ignored */

/* The addresses of list, IPv6 first, alternating families: how many. */
static size_t interleave(struct addrinfo *list, struct addrinfo **out)
{
	struct addrinfo *v6[MAX_ADDRS], *other[MAX_ADDRS];
	size_t n6 = 0, no = 0, n = 0;
	for (struct addrinfo *p = list; p; p = p->ai_next) {
		if (p->ai_family == AF_INET6 && n6 < MAX_ADDRS)
			v6[n6++] = p;
		else if (p->ai_family != AF_INET6 && no < MAX_ADDRS)
			other[no++] = p;
	}
	for (size_t i = 0; (i < n6 || i < no) && n < MAX_ADDRS; i++) {
		if (i < n6)
			out[n++] = v6[i];
		if (i < no && n < MAX_ADDRS)
			out[n++] = other[i];
	}
	return n;
}

/* Start a non-blocking connect: the socket (connected or in progress,
 * *done says which), or -1 with errno. */
static int attempt(const struct addrinfo *a, int type, bool *done)
{
	int fd = socket(a->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
			a->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
		*done = true;
		return fd;
	}
	if (errno == EINPROGRESS) {
		*done = false;
		return fd;
	}
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* The winner: blocking again, or -1 with errno.  attempt() made the
 * socket, so O_NONBLOCK is its only status flag and no F_GETFL is
 * needed to clear it. */
static int finish(int fd)
{
	if (fcntl(fd, F_SETFL, 0) == -1) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct race {
	struct pollfd pf[MAX_ADDRS];
	nfds_t n;
	int last_err;
};

static void race_close(struct race *r, int keep)
{
	for (nfds_t i = 0; i < r->n; i++)
		if (r->pf[i].fd != keep)
			close(r->pf[i].fd);
	r->n = 0;
}

/* Look at the attempts poll marked: the connected socket, or -1 (the
 * failed ones closed and dropped, *failed set if any). */
static int race_reap(struct race *r, bool *failed)
{
	for (nfds_t i = 0; i < r->n;) {
		if (!r->pf[i].revents) {
			i++;
			continue;
		}
		/* Writable with no error or hang-up: connected, without
		 * asking SO_ERROR (a failed connect always sets POLLERR). */
		int err = 0;
		socklen_t len = sizeof err;
		if (!(r->pf[i].revents & (POLLERR | POLLHUP)))
			return r->pf[i].fd;
		if (getsockopt(r->pf[i].fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		if (err == 0)
			err = ECONNREFUSED; /* hung up with no error to say */
		close(r->pf[i].fd);
		r->last_err = err;
		r->pf[i] = r->pf[--r->n];
		*failed = true;
	}
	return -1;
}

/* What race_start and race_wait say besides a socket. */
enum { RACE_PENDING = -2, RACE_FAILED = -3 };

/* Start an attempt on a: the socket if it connected at once, else
 * RACE_PENDING (it joins the race; the next may start after the delay)
 * or RACE_FAILED (the next may start at once). */
static int race_start(struct race *r, const struct addrinfo *a, int64_t now,
		      int64_t *start_at)
{
	bool done;
	int fd = attempt(a, SOCK_STREAM, &done);
	if (fd >= 0 && done)
		return fd;
	if (fd < 0) {
		r->last_err = errno;
		*start_at = now;
		return RACE_FAILED;
	}
	r->pf[r->n++] = (struct pollfd){ fd, POLLOUT, 0 };
	*start_at = now + ATTEMPT_DELAY;
	return RACE_PENDING;
}

/* Wait for the pending attempts, t ns at most (-1: no limit): the
 * winner, made blocking, the others closed; RACE_PENDING if none won
 * yet (after a failure the next may start at once); -1 with errno when
 * the context ended the race (every socket closed). */
static int race_wait(ctx_t *ctx, struct race *r, int64_t t, int64_t *start_at)
{
	if (ctx_poll(ctx, r->pf, r->n, t) < 0) {
		int e = errno;
		race_close(r, -1);
		errno = e;
		return -1;
	}
	bool failed = false;
	int won = race_reap(r, &failed);
	if (won >= 0) {
		race_close(r, won);
		return finish(won);
	}
	if (failed)
		*start_at = ctx_now();
	return RACE_PENDING;
}

static int dial_stream(ctx_t *ctx, struct addrinfo **addrs, size_t n)
{
	struct race r = { .n = 0, .last_err = EADDRNOTAVAIL };
	size_t next = 0;
	int64_t start_at = 0; /* when the next attempt may start */
	for (;;) {
		int64_t now = ctx_now();
		if (next < n && (now >= start_at || r.n == 0)) {
			int fd = race_start(&r, addrs[next++], now, &start_at);
			if (fd >= 0) {
				race_close(&r, -1);
				return finish(fd);
			}
			if (fd == RACE_FAILED)
				continue;
		}
		if (r.n == 0) { /* nothing pending, nothing left to try */
			errno = r.last_err;
			return -1;
		}
		int won = race_wait(ctx, &r, next < n ? start_at - now : -1,
				    &start_at);
		if (won != RACE_PENDING)
			return won;
	}
}

static int dial_dgram(ctx_t *ctx, struct addrinfo **addrs, size_t n)
{
	int last = EADDRNOTAVAIL;
	for (size_t i = 0; i < n; i++) {
		int e = ctx_err(ctx);
		if (e) {
			errno = e;
			return -1;
		}
		bool done;
		int fd = attempt(addrs[i], SOCK_DGRAM, &done);
		if (fd >= 0)
			return finish(fd); /* a datagram connect never waits */
		last = errno;
	}
	errno = last;
	return -1;
}

int ctx__dial_addrs(ctx_t *ctx, struct addrinfo *list, int type)
{
	struct addrinfo *addrs[MAX_ADDRS];
	size_t n = interleave(list, addrs);
	if (n == 0) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	return type == SOCK_DGRAM ? dial_dgram(ctx, addrs, n)
				  : dial_stream(ctx, addrs, n);
}

CTX_API int ctx_dial(ctx_t *ctx, const char *address, int type)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (!ctx || (type != SOCK_STREAM && type != SOCK_DGRAM) ||
	    ctx_split_host_port(address, host, sizeof host, port,
				sizeof port) ||
	    !port[0]) {
		errno = EINVAL;
		return -1;
	}
	/* A done context is refused by the lookup: EAI_SYSTEM, its error
	 * in errno. */
	struct addrinfo hints = { .ai_socktype = type }, *res;
	/* ":80": this host, as Go's net.Dial */
	int rc = ctx_getaddrinfo(ctx, host[0] ? host : NULL, port, &hints,
				 &res);
	if (rc) {
		errno = ctx__eai_errno(rc);
		return -1;
	}
	int fd = ctx__dial_addrs(ctx, res, type), e = errno;
	ctx_freeaddrinfo(res);
	errno = e;
	return fd;
}
