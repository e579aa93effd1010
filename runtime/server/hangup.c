/*
 * Hang-up contexts (Go's r.Context()): a cancel node that ends with
 * CTX_CANCELED, cause ECONNRESET, when the peer of a socket goes away,
 * with no thread of the program reading it.
 *
 * The core's watcher (core/watch.c) serves them: one thread and one
 * epoll set for every context that a descriptor ends.  A socket is
 * registered for EPOLLRDHUP only (EPOLLHUP and EPOLLERR come anyway),
 * never EPOLLIN, so data that arrives wakes nobody and stays for the
 * socket's reader.  The fd must stay open while the context lives;
 * closing it after releasing the context is always fine.
 */
#include <sys/epoll.h>

#include "core/core.h"

/* The ready hook (core/kind.h): the peer went away. */
static void hangup_ready(ctx_t *c)
{
	ctx__cancel_by(c, CTX_CANCELED, ECONNRESET,
		       ctx__origin(CTX__BY_HANGUP, 0, c->site));
}

static const struct ctx__kind_hooks hangup_kind = {
	.name = ".WithHangup",
	.free = ctx__watch_free,
	.ready = hangup_ready,
};

__attribute__((constructor)) static void hangup_hooks(void)
{
	ctx__kinds[CTX__HANGUP] = &hangup_kind;
}

ctx_t *ctx_with_hangup(ctx_t *parent, int fd)
{
	if (fd < 0) {
		ctx__site_drop();
		errno = EINVAL;
		return NULL;
	}
	return ctx__watch_new(parent, CTX__HANGUP, fd, EPOLLRDHUP,
			      CTX__NEVER);
}
