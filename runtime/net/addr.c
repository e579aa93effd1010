/*
 * Addresses as Go writes them: ctx_split_host_port ("host:port",
 * "[v6]:port", ":port"), and ctx_listen, which resolves such an address
 * under a context and returns a bound (and, for a stream, listening)
 * socket.
 *
 * ctx_split_host_port follows Go's net.SplitHostPort rule for rule, so
 * that an address a Go program accepts is accepted here and one it
 * refuses is refused: the port follows the last colon; a host with a
 * colon must be bracketed; a bracket anywhere else is an error.  An
 * empty host or port is not an error here; the callers decide (ctx_dial
 * wants a port, ctx_listen takes none as port 0, as Go's Listen does).
 *
 * ctx_listen picks the address Go's Listen picks: for a host name, the
 * first IPv4 address (a listener on ::1 alone would refuse the clients
 * of "localhost" that come over IPv4), then the others in order; for no
 * host, the IPv6 wildcard with IPV6_V6ONLY off, which takes both
 * families, and the IPv4 wildcard where the system has no IPv6.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctx.h>
#include "net/addr.h"

#define MAX_ADDRS 64 /* more than any real name has; the rest are ignored */

/* Copy n bytes of s into buf (len bytes, NUL-terminated): 0 or ERANGE.
 * A NULL buf asks for nothing. */
static int put(char *buf, size_t len, const char *s, size_t n)
{
	if (!buf)
		return 0;
	if (n >= len)
		return ERANGE;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

/* Where host and port lie in a (Go's rules): 0 or EINVAL. */
static int locate(const char *a, size_t *h0, size_t *h1, size_t *p0)
{
	const char *colon = strrchr(a, ':');
	size_t j = 0, k = 0;
	if (!colon)
		return EINVAL; /* no port */
	size_t i = (size_t)(colon - a);
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		if (!close || (size_t)(close - a) + 1 != i)
			return EINVAL; /* no ']', or not "]:" before the port */
		*h0 = 1;
		*h1 = (size_t)(close - a);
		j = 1;
		k = *h1 + 1;
	} else {
		*h0 = 0;
		*h1 = i;
		if (memchr(a, ':', i))
			return EINVAL; /* an IPv6 address needs brackets */
	}
	if (strchr(a + j, '[') || strchr(a + k, ']'))
		return EINVAL;
	*p0 = i + 1;
	return 0;
}

CTX_API int ctx_split_host_port(const char *address, char *host,
				size_t hostlen, char *port, size_t portlen)
{
	size_t h0, h1, p0;
	if (!address)
		return EINVAL;
	int e = locate(address, &h0, &h1, &p0);
	if (!e)
		e = put(host, hostlen, address + h0, h1 - h0);
	if (!e)
		e = put(port, portlen, address + p0, strlen(address + p0));
	return e;
}

int ctx__eai_errno(int rc)
{
	switch (rc) {
	case EAI_SYSTEM:
		return errno;
	case EAI_MEMORY:
		return ENOMEM;
	case EAI_SERVICE:
	case EAI_BADFLAGS:
	case EAI_SOCKTYPE:
		return EINVAL;
	case EAI_AGAIN:
		return EAGAIN;
	default: /* EAI_NONAME, EAI_NODATA, EAI_FAIL, EAI_FAMILY, ... */
		return EADDRNOTAVAIL;
	}
}

/* The IPv6 wildcard, which takes IPv4 too once IPV6_V6ONLY is off. */
static bool any6(const struct addrinfo *a)
{
	const struct sockaddr_in6 *s = (const void *)a->ai_addr;
	return a->ai_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr);
}

/* A socket bound to a (listening, for a stream), or -1 with errno. */
static int bind_one(const struct addrinfo *a, int type, int backlog)
{
	int fd = socket(a->ai_family, type | SOCK_CLOEXEC, a->ai_protocol);
	int one = 1, zero = 0;
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    (any6(a) && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				   sizeof zero)) ||
	    bind(fd, a->ai_addr, a->ai_addrlen) ||
	    (type == SOCK_STREAM && listen(fd, backlog))) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The addresses of list in the order they are tried: the family first
 * (IPv6 for the wildcard, else IPv4), then the rest; how many. */
static size_t order(struct addrinfo *list, bool wildcard,
		    struct addrinfo **out)
{
	int first = wildcard ? AF_INET6 : AF_INET;
	size_t n = 0;
	for (struct addrinfo *p = list; p && n < MAX_ADDRS; p = p->ai_next)
		if (p->ai_family == first)
			out[n++] = p;
	for (struct addrinfo *p = list; p && n < MAX_ADDRS; p = p->ai_next)
		if (p->ai_family != first)
			out[n++] = p;
	return n;
}

static int bind_first(struct addrinfo *list, bool wildcard, int type,
		      int backlog)
{
	struct addrinfo *addrs[MAX_ADDRS];
	size_t n = order(list, wildcard, addrs);
	int last = EADDRNOTAVAIL;
	for (size_t i = 0; i < n; i++) {
		int fd = bind_one(addrs[i], type, backlog);
		if (fd >= 0)
			return fd;
		last = errno;
	}
	errno = last;
	return -1;
}

CTX_API int ctx_listen(ctx_t *ctx, const char *address, int type,
		       int backlog)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	if (!ctx || (type != SOCK_STREAM && type != SOCK_DGRAM) ||
	    ctx_split_host_port(address, host, sizeof host, port,
				sizeof port)) {
		errno = EINVAL;
		return -1;
	}
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	struct addrinfo hints = { .ai_socktype = type, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int rc = ctx_getaddrinfo(ctx, host[0] ? host : NULL,
				 port[0] ? port : "0", &hints, &res);
	if (rc) {
		errno = ctx__eai_errno(rc);
		return -1;
	}
	int fd = bind_first(res, !host[0], type, backlog < 0 ? SOMAXCONN
							     : backlog);
	e = errno;
	ctx_freeaddrinfo(res);
	errno = e;
	return fd;
}
