/*
 * The readiness backend ("epoll" to ctx_backend() and CTX_BACKEND, the
 * name the API fixed): a thread sleeps in poll(2) on the descriptors it
 * waits for and its wake-up descriptor, which also times its deadlines
 * (readiness.c, which says why poll(2) and not epoll).  It has no
 * transfers: io/ does a regular file's read or write as the plain call,
 * which no context can end once it has started.  Usable everywhere; the
 * default.
 */
#include "wait/backend.h"

static bool usable(void)
{
	return true;
}

const struct ctx__backend ctx__backend_poll = {
	.name = "epoll",
	.usable = usable,
	.sleep = ctx__readiness_sleep,
	.settle = ctx__readiness_settle,
	.thread_exit = ctx__readiness_exit,
};
