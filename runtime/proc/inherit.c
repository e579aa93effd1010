/*
 * ctx_inherited: the child's side of pass_ctx (pass.c is the parent's;
 * ctx_proc_spawn(3) has the protocol).  The environment says how much
 * time the parent's context had left when it started this program
 * (CTX_TIMEOUT_NS, nanoseconds) and names a descriptor that polls
 * readable when that context ends or the parent dies (CTX_DONE_FD).
 *
 * The first call makes one context of them, under background, which
 * the library keeps until exit: every later call returns it, and the
 * program passes it on (or contexts derived from it) to its own
 * children with pass_ctx, as its parent did.  The budget is counted
 * from when the program was loaded (a constructor notes the time), not
 * from the first call, so a program that asks late still ends with its
 * parent's deadline.
 *
 * The descriptor is watched by the core's watcher (core/watch.c), as a
 * hang-up socket is.  When it turns readable the context ends: with
 * CTX_DEADLINE_EXCEEDED if a byte waits to be read (the parent sends
 * one when its deadline ended the context; FIONREAD looks without
 * taking it, so every program sharing the descriptor sees it), else
 * with CTX_CANCELED.
 *
 * Both variables describe this process alone, so the first call takes
 * them out of the environment and makes the descriptor close-on-exec:
 * a program started without pass_ctx then gets neither, rather than a
 * budget that is no longer true.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include "proc/pass.h"

static int64_t loaded;                /* when the program started */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static ctx_t *inherited;              /* made by the first call */

/* The ready hook (core/kind.h): the parent's end was closed. */
static void inherited_ready(ctx_t *c)
{
	int n = 0;
	if (ioctl(((struct ctx__watch *)c)->fd, FIONREAD, &n) == 0 && n > 0)
		ctx__cancel_by(c, CTX_DEADLINE_EXCEEDED, CTX_DEADLINE_EXCEEDED,
			       ctx__origin(CTX__BY_PARENT, 1, 0));
	else
		ctx__cancel_by(c, CTX_CANCELED, CTX_CANCELED,
			       ctx__origin(CTX__BY_PARENT, 0, 0));
}

static const struct ctx__kind_hooks inherited_kind = {
	.name = ".Inherited",
	.free = ctx__watch_free,
	.ready = inherited_ready,
};

__attribute__((constructor)) static void inherited_hooks(void)
{
	ctx__kinds[CTX__INHERITED] = &inherited_kind;
	loaded = ctx_now();
}

/* A whole decimal number from the environment variable name, else
 * false.  Too large saturates: a budget past any clock. */
static bool env_number(const char *name, int64_t *v)
{
	const char *s = getenv(name);
	if (!s || *s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (*end)
		return false;
	*v = errno == ERANGE ? INT64_MAX : n;
	return true;
}

/* The context the environment describes: a deadline, a descriptor to
 * watch, both, or NULL + errno.  A descriptor that is not open (the
 * variable outlived it) is not watched. */
static ctx_t *make(void)
{
	int64_t timeout, fd = -1, deadline = CTX__NEVER;
	if (env_number(CTX__ENV_TIMEOUT, &timeout))
		deadline = ctx__add_sat(loaded, timeout);
	if (env_number(CTX__ENV_DONE_FD, &fd) &&
	    (fd > INT32_MAX || fcntl((int)fd, F_SETFD, FD_CLOEXEC) < 0))
		fd = -1;
	if (fd < 0)
		return ctx__new_cancel(ctx_background(), CTX__INHERITED,
				       sizeof(struct ctx__watch), deadline,
				       0);
	return ctx__watch_new(ctx_background(), CTX__INHERITED, (int)fd,
			      EPOLLIN, deadline);
}

ctx_t *ctx_inherited(void)
{
	pthread_mutex_lock(&mu);
	ctx_t *c = inherited;
	if (!c && !getenv(CTX__ENV_TIMEOUT) && !getenv(CTX__ENV_DONE_FD))
		c = inherited = ctx_background();
	if (!c && (c = inherited = make())) {
		ctx__set_lifelong(c);
		unsetenv(CTX__ENV_TIMEOUT);
		unsetenv(CTX__ENV_DONE_FD);
	}
	int e = errno;
	pthread_mutex_unlock(&mu);
	errno = e;
	return c;
}
