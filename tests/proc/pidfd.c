/*
 * ctx_with_pidfd: a context ends (CTX_CANCELED, ESRCH) when its process
 * exits -- a child killed at a known moment (how soon), one that exits
 * on its own and is then still there to reap (nothing is reaped), a
 * process that is not our child, one already gone; its parent's end
 * wins; many contexts on one pidfd cost no descriptor and all end; a
 * context released before the exit leaves nothing behind, and the fd
 * number can serve again; an after-func runs on the exit with no thread
 * waiting; bad descriptors are refused.
 */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

extern char **environ;

/* Start argv; its pid, and a pidfd for it in *pidfd (close-on-exec). */
static pid_t start(char *const argv[], int *pidfd)
{
	pid_t pid;
	ck_assert_int_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ),
			 0);
	*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	ck_assert_msg(*pidfd >= 0, "pidfd_open: %s", strerror(errno));
	return pid;
}

static pid_t start_sleeper(int *pidfd)
{
	char *argv[] = { "/bin/sleep", "1000", NULL };
	return start(argv, pidfd);
}

/* Kill pid (if still there) and reap it. */
static void finish(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

START_TEST(pidfd_ends_on_kill)
{
	int pidfd;
	pid_t pid = start_sleeper(&pidfd);
	CTX_AUTO ctx_t *c = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tu_wait_done(c, 50 * CTX_MSEC), 0); /* it runs */
	int64_t t0 = ctx_now();
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(ctx_wait(c), CTX_CANCELED);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(ctx_cause(c), ESRCH);
	ck_assert_msg(ms < 500, "ended %.1f ms after the kill", ms);
	/* Nothing reaped it: the status is still ours to take. */
	int status;
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ctx_release(c);
	c = NULL;
	close(pidfd);
}
END_TEST

START_TEST(pidfd_own_exit_not_reaped)
{
	char *argv[] = { "/bin/sh", "-c", "sleep 0.1; exit 7", NULL };
	int pidfd;
	pid_t pid = start(argv, &pidfd);
	CTX_AUTO ctx_t *c = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tu_wait_done(c, 10 * CTX_SEC), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(c), ESRCH);
	ck_assert_str_eq(ctx_cause_msg(c), strerror(ESRCH));
	/* ctx_origin names the kind and where the context was made. */
	const char *o = ctx_origin(c);
	ck_assert_ptr_nonnull(o);
	ck_assert_msg(strstr(o, "ctx_with_pidfd") && strstr(o, "pidfd.c:"),
		      "origin: %s", o);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
	close(pidfd);
}
END_TEST

/* A process that is not our child: the shell's background sleep, left
 * to init (or a subreaper) when the shell exits. */
START_TEST(pidfd_not_a_child)
{
	FILE *f = popen("sleep 0.3 & echo $!", "r");
	ck_assert_ptr_nonnull(f);
	int pid = 0;
	ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
	pclose(f);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno == ESRCH)
		return; /* gone already (a very slow machine): nothing to see */
	ck_assert_msg(pidfd >= 0, "pidfd_open: %s", strerror(errno));
	CTX_AUTO ctx_t *c = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(tu_wait_done(c, 10 * CTX_SEC), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(c), ESRCH);
	ctx_release(c);
	c = NULL;
	close(pidfd);
}
END_TEST

START_TEST(pidfd_already_gone)
{
	char *argv[] = { "/bin/true", NULL };
	int pidfd;
	pid_t pid = start(argv, &pidfd);
	siginfo_t si;
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	/* A zombie, and then a process reaped: both have exited. */
	CTX_AUTO ctx_t *z = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(z);
	ck_assert_int_eq(tu_wait_done(z, 5 * CTX_SEC), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(z), ESRCH);
	finish(pid);
	CTX_AUTO ctx_t *r = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(tu_wait_done(r, 5 * CTX_SEC), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(r), ESRCH);
	close(pidfd);
}
END_TEST

START_TEST(pidfd_parent_wins)
{
	int pidfd;
	pid_t pid = start_sleeper(&pidfd);
	CTX_AUTO ctx_t *p = ctx_with_cancel(ctx_background());
	CTX_AUTO ctx_t *c = ctx_with_pidfd(p, pidfd);
	ck_assert_ptr_nonnull(c);
	ctx_cancel_cause(p, EPIPE);
	ck_assert_int_eq(ctx_err(c), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(c), EPIPE);
	/* Done at creation under a done parent; the exit changes nothing. */
	CTX_AUTO ctx_t *d = ctx_with_pidfd(p, pidfd);
	ck_assert_ptr_nonnull(d);
	ck_assert_int_eq(ctx_cause(d), EPIPE);
	finish(pid);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(ctx_cause(c), EPIPE);
	char name[256];
	ck_assert_int_gt(ctx_format(c, name, sizeof name), 0);
	ck_assert_ptr_nonnull(strstr(name, ".WithPidfd"));
	close(pidfd);
}
END_TEST

/* Many contexts on one pidfd, and children under them: no descriptor
 * each, and one exit ends them all. */
START_TEST(pidfd_many_no_descriptor)
{
	enum { N = 200 };
	int pidfd;
	pid_t pid = start_sleeper(&pidfd);
	ctx_t *first = ctx_with_pidfd(ctx_background(), pidfd);
	ck_assert_ptr_nonnull(first); /* the watcher's set exists now */
	int fds = tu_count_fds();
	ctx_t *c[N], *kid[N];
	for (int i = 0; i < N; i++) {
		c[i] = ctx_with_pidfd(i % 2 ? first : ctx_background(), pidfd);
		ck_assert_ptr_nonnull(c[i]);
		kid[i] = ctx_with_cancel(c[i]);
	}
	ck_assert_int_eq(tu_count_fds(), fds);
	kill(pid, SIGKILL);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(tu_wait_done(kid[i], 5 * CTX_SEC),
				 CTX_CANCELED);
		ck_assert_int_eq(ctx_cause(kid[i]), ESRCH);
		ctx_release(kid[i]);
		ctx_release(c[i]);
	}
	ctx_release(first);
	finish(pid);
	close(pidfd);
}
END_TEST

/* Released before the exit, the pidfd closed: the exit finds nothing,
 * and the same fd number, reused for another process, serves again. */
START_TEST(pidfd_release_then_reuse)
{
	int fd1, fd2;
	pid_t p1 = start_sleeper(&fd1);
	ctx_t *c = ctx_with_pidfd(ctx_background(), fd1);
	ck_assert_ptr_nonnull(c);
	ctx_release(c);
	close(fd1);
	finish(p1);
	pid_t p2 = start_sleeper(&fd2);
	if (fd2 != fd1) { /* the same number, for the test's sake */
		ck_assert_int_eq(dup3(fd2, fd1, O_CLOEXEC), fd1);
		close(fd2);
		fd2 = fd1;
	}
	CTX_AUTO ctx_t *d = ctx_with_pidfd(ctx_background(), fd2);
	ck_assert_ptr_nonnull(d);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(d), 0); /* p1's exit was not p2's */
	kill(p2, SIGKILL);
	ck_assert_int_eq(tu_wait_done(d, 5 * CTX_SEC), CTX_CANCELED);
	finish(p2);
	close(fd2);
}
END_TEST

static void note(void *arg)
{
	atomic_store((_Atomic int64_t *)arg, ctx_now());
}

/* Nobody waits: the after-func runs on the exit, as a supervisor's
 * clean-up would. */
START_TEST(pidfd_after_func)
{
	_Atomic int64_t ran = 0;
	int pidfd;
	pid_t pid = start_sleeper(&pidfd);
	CTX_AUTO ctx_t *c = ctx_with_pidfd(ctx_background(), pidfd);
	ctx_after_t *a = ctx_after_func(c, note, &ran);
	ck_assert_ptr_nonnull(a);
	int64_t t0 = ctx_now();
	kill(pid, SIGKILL);
	for (int i = 0; i < 5000 && !atomic_load(&ran); i++)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_msg(atomic_load(&ran), "no after-func in 5 s");
	ck_assert_int_lt(atomic_load(&ran) - t0, 500 * CTX_MSEC);
	ck_assert(!ctx_after_stop(a));
	finish(pid);
	close(pidfd);
}
END_TEST

START_TEST(pidfd_bad_input)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	errno = 0;
	ck_assert_ptr_null(ctx_with_pidfd(NULL, p[0]));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_with_pidfd(ctx_background(), -1));
	ck_assert_int_eq(errno, EBADF);
	errno = 0;
	ck_assert_ptr_null(ctx_with_pidfd(ctx_background(), p[0]));
	ck_assert_int_eq(errno, EBADF); /* a pipe is no pidfd */
	close(p[0]);
	close(p[1]);
	errno = 0;
	ck_assert_ptr_null(ctx_with_pidfd(ctx_background(), p[0]));
	ck_assert_int_eq(errno, EBADF); /* closed */
}
END_TEST

Suite *suite_pidfd(void)
{
	Suite *s = suite_create("pidfd");
	int probe = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (probe < 0 && errno == ENOSYS) {
		fprintf(stderr, "pidfd: skipped: pidfd_open is not implemented "
			"here (kernels before 5.3, valgrind 3.19)\n");
		return s;
	}
	if (probe >= 0)
		close(probe);
	TCase *tc = tu_tcase(s, "pidfd", 20);
	tcase_add_test(tc, pidfd_ends_on_kill);
	tcase_add_test(tc, pidfd_own_exit_not_reaped);
	tcase_add_test(tc, pidfd_not_a_child);
	tcase_add_test(tc, pidfd_already_gone);
	tcase_add_test(tc, pidfd_parent_wins);
	tcase_add_test(tc, pidfd_many_no_descriptor);
	tcase_add_test(tc, pidfd_release_then_reuse);
	tcase_add_test(tc, pidfd_after_func);
	tcase_add_test(tc, pidfd_bad_input);
	return s;
}
