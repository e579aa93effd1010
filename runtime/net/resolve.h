/*
 * The net layer's internal header: the resolver's interface (resolve.c)
 * for dial.c and the tests.
 */
#ifndef CTX_RESOLVE_H
#define CTX_RESOLVE_H

#include <netdb.h>
#include <stdbool.h>

#include <ctx.h>

/* The two mechanisms behind ctx_getaddrinfo. */
enum ctx__resolver {
	CTX__RESOLVE_DEFAULT = 0, /* c-ares if built in, unless CTX_RESOLVER says */
	CTX__RESOLVE_CARES,       /* c-ares on the caller's thread */
	CTX__RESOLVE_THREADS,     /* glibc getaddrinfo on a helper thread */
};

/* Test hooks: force a mechanism (DEFAULT restores the normal choice);
 * replace the function the helper threads call (NULL: getaddrinfo).
 * Returns false for CARES when c-ares is not built in. */
bool ctx__resolve_force(enum ctx__resolver r);
void ctx__resolve_set_gai(int (*fn)(const char *, const char *,
				    const struct addrinfo *,
				    struct addrinfo **));

/* The cap on concurrent helper threads, and how many run now. */
#define CTX__RESOLVE_MAX_HELPERS 8
int ctx__resolve_helpers(void);

/* One result node of ctx_getaddrinfo's single malloc layout. */
struct addrinfo *ctx__ai_new(int family, int socktype, int protocol,
			     const struct sockaddr *sa, socklen_t salen,
			     const char *canon);

/* ctx_dial's race over addresses already resolved (dial.c; the tests
 * call it directly): a connected blocking socket or -1 with errno. */
int ctx__dial_addrs(ctx_t *ctx, struct addrinfo *list, int type);

#endif
