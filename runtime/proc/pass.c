/*
 * pass_ctx, the parent's side: a child gets its context's remaining time
 * and a descriptor that ends with it, in its environment
 * (CTX_TIMEOUT_NS, CTX_DONE_FD).  inherit.c is the child's side, and
 * ctx_proc_spawn(3) gives the protocol for programs without libctx.
 *
 * The time is relative (the nanoseconds left at the spawn), since the
 * child's clock may not be the parent's: a time namespace moves
 * CLOCK_MONOTONIC.  It is left out when the context has no deadline.
 *
 * The descriptor is the read end of a pipe whose write end only the
 * parent holds: close-on-exec, so that no program it starts has it.
 * When the context ends, the spawner's cancel (proc.c) closes the write
 * end, having first written one byte if the deadline ended it; the read
 * end then polls readable and reads to end of file in the child.  If
 * the parent dies, the kernel closes the write end: the same end of
 * file, without the byte.  The child's own timer would see the deadline
 * as well, but a moment late (its count began when it started), and the
 * byte lets it report the deadline rather than a cancel.  The reap
 * closes the write end too: nobody is left to tell.  (A fork() of the
 * parent that does not exec holds a copy of the write end, and the end
 * of file waits for that copy too.)
 *
 * A pipe, not a socket pair, so that a shell script can read it: every
 * shell can open /dev/fd/N on a pipe, where opening a socket fails, and
 * dash's own redirections stop at descriptor 9.  The byte is written
 * with SIGPIPE held off, since the child may have closed its end.
 *
 * The read end reaches the child through posix_spawn's dup2 of the
 * descriptor onto itself, which clears its close-on-exec flag in the
 * child alone (POSIX.1-2024; glibc since 2.29), so no other program the
 * parent starts meanwhile inherits it.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc/pass.h"

extern char **environ;

int ctx__above_stdio(int fds[2])
{
	for (int i = 0; i < 2; i++) {
		if (fds[i] > 2)
			continue;
		int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (d < 0) {
			int e = errno;
			close(fds[0]);
			close(fds[1]);
			return e;
		}
		close(fds[i]);
		fds[i] = d;
	}
	return 0;
}

/* Whether entry sets one of the protocol's variables: the caller's own
 * (a program that was itself passed a context) must not reach the child
 * beside the new ones. */
static bool ours(const char *entry)
{
	static const char *const names[] = { CTX__ENV_TIMEOUT "=",
					     CTX__ENV_DONE_FD "=" };
	for (size_t i = 0; i < 2; i++)
		if (!strncmp(entry, names[i], strlen(names[i])))
			return true;
	return false;
}

/* "CTX_TIMEOUT_NS=..." into buf, or "" when ctx has no deadline. */
static void timeout_var(ctx_t *ctx, char *buf, size_t len)
{
	int64_t d;
	buf[0] = '\0';
	if (!ctx_deadline(ctx, &d))
		return;
	int64_t left = d - ctx_now();
	snprintf(buf, len, CTX__ENV_TIMEOUT "=%" PRId64, left > 0 ? left : 0);
}

/* The child's environment: envp without the protocol's variables, and
 * the two of them for this child.  One block: the pointers, then the
 * two strings.  NULL on ENOMEM. */
static char **child_env(ctx_t *ctx, const char *const *envp, int fd)
{
	size_t n = 0;
	while (envp[n])
		n++;
	enum { VAR = 48 };
	char **env = ctx__malloc((n + 3) * sizeof(char *) + 2 * VAR);
	if (!env)
		return NULL;
	char *tvar = (char *)(env + n + 3), *fvar = tvar + VAR;
	timeout_var(ctx, tvar, VAR);
	snprintf(fvar, VAR, CTX__ENV_DONE_FD "=%d", fd);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!ours(envp[i]))
			env[k++] = (char *)envp[i];
	if (tvar[0])
		env[k++] = tvar;
	env[k++] = fvar;
	env[k] = NULL;
	return env;
}

int ctx__pass_prepare(struct ctx__pass *ps, ctx_t *ctx,
		      const char *const *envp, posix_spawn_file_actions_t *fa)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return errno;
	int e = ctx__above_stdio(fds);
	if (e)
		return e;
	const char *const *from = envp ? envp : (const char *const *)environ;
	ps->envp = child_env(ctx, from, fds[0]);
	e = ps->envp ? posix_spawn_file_actions_adddup2(fa, fds[0], fds[0])
		     : ENOMEM;
	if (e) {
		free(ps->envp);
		ps->envp = NULL;
		close(fds[0]);
		close(fds[1]);
		return e;
	}
	ps->rd = fds[0];
	ps->wr = fds[1];
	return 0;
}

void ctx__pass_after(struct ctx__pass *ps)
{
	free(ps->envp);
	ps->envp = NULL;
	if (ps->rd >= 0)
		close(ps->rd);
	if (ps->wr >= 0)
		close(ps->wr);
	ps->rd = ps->wr = -1;
}

/* The byte, into a pipe whose reader may be gone: SIGPIPE is held off
 * on this thread for the write, and taken back if the write raised it
 * (unless one was pending already).  The pipe is empty (nothing else is
 * ever written), so the write never blocks. */
static void write_byte(int fd)
{
	sigset_t pipe_only, old, pending;
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	sigpending(&pending);
	bool had = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
	if (write(fd, "D", 1) < 0 && errno == EPIPE && !had) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_only, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void ctx__pass_end(int *wr, int err)
{
	if (*wr < 0)
		return;
	if (err == CTX_DEADLINE_EXCEEDED)
		write_byte(*wr);
	close(*wr);
	*wr = -1;
}
