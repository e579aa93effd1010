/*
 * Contexts that end when a process exits (ctx_with_pidfd): for a
 * supervisor whose work is for one process, and for a server whose
 * client is a local process (its pidfd from SO_PEERPIDFD, or
 * pidfd_open of SO_PEERCRED's pid).
 *
 * A pidfd polls readable once its process has exited, whether or not
 * it is our child and whether or not it has been reaped, so the core's
 * watcher (core/watch.c) serves these contexts as it serves hang-up
 * ones: one thread and one epoll set for all, no descriptor of their
 * own.  The pidfd is borrowed: it must stay open while the context
 * lives, and nothing here waits for or reaps the process, so a child's
 * status stays for its parent's wait.
 */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/* The ready hook (core/kind.h): the process exited. */
static void pidfd_ready(ctx_t *c)
{
	ctx__cancel_by(c, CTX_CANCELED, ESRCH,
		       ctx__origin(CTX__BY_EXIT, 0, c->site));
}

static const struct ctx__kind_hooks pidfd_kind = {
	.name = ".WithPidfd",
	.free = ctx__watch_free,
	.ready = pidfd_ready,
};

__attribute__((constructor)) static void pidfd_hooks(void)
{
	ctx__kinds[CTX__PIDFD] = &pidfd_kind;
}

/* 0 if fd is a pidfd, else EBADF (another descriptor, or none) or
 * ENOSYS (a kernel without pidfds), as pidfd_send_signal says.  Signal 0 sends nothing: the kernel
 * only checks the descriptor, the process and the permission; a process
 * that has exited (ESRCH) or that we may not signal (EPERM) is still
 * behind a pidfd. */
static int check_pidfd(int fd)
{
	if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) == 0 ||
	    errno == ESRCH || errno == EPERM)
		return 0;
	return errno;
}

ctx_t *ctx_with_pidfd(ctx_t *parent, int pidfd)
{
	int e = pidfd < 0 ? EBADF : parent ? check_pidfd(pidfd) : EINVAL;
	if (e) {
		ctx__site_drop();
		errno = e;
		return NULL;
	}
	return ctx__watch_new(parent, CTX__PIDFD, pidfd, EPOLLIN, CTX__NEVER);
}
