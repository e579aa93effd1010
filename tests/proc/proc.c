/*
 * Child processes a context kills: ctx_proc_spawn and friends.
 *
 * The "nopidfd" case runs the same bodies again in a process whose
 * seccomp filter makes pidfd_open, pidfd_send_signal and clone3 fail
 * with ENOSYS, as a kernel before 5.3 does (and valgrind 3.19, which
 * does not know the calls): a filter lasts for the process, so the case
 * runs only where Check forks one per test.
 */
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hooks.h"
#include "suites.h"
#include "testutil.h"

#define SH(script) ((char *[]){ "sh", "-c", (script), NULL })

/* Read p's pipe n to its end into buf (NUL-terminated); the length.
 * Bounded by `limit` so that a test never hangs on a stray writer. */
static size_t read_all(ctx_proc_t *p, int n, char *buf, size_t cap,
		       int64_t limit)
{
	ctx_t *t = ctx_with_timeout(ctx_background(), limit);
	size_t len = 0;
	ssize_t r;
	ck_assert_ptr_nonnull(t);
	while (len + 1 < cap &&
	       (r = ctx_read(t, ctx_proc_stdio(p, n), buf + len,
			     cap - 1 - len)) > 0)
		len += (size_t)r;
	ck_assert_int_eq(ctx_err(t), 0);
	ctx_release(t);
	buf[len] = '\0';
	return len;
}

/* Read one line ("ready\n") the script prints once its traps are set. */
static void read_ready(ctx_proc_t *p)
{
	char buf[8];
	ssize_t r = ctx_read(ctx_background(), ctx_proc_stdio(p, 1), buf, 6);
	ck_assert_int_eq(r, 6);
	ck_assert(memcmp(buf, "ready\n", 6) == 0);
}

/* Whether pid has exited (a zombie not reaped yet): it stays a zombie. */
static bool exited(pid_t pid)
{
	siginfo_t si = { .si_pid = 0 };
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid;
}

/* Whether pid has exited within timeout (real time). */
static bool gone_within(pid_t pid, int64_t timeout)
{
	int64_t end = tu_real_ns() + timeout;
	do {
		if (exited(pid))
			return true;
		tu_sleep_ns(5 * CTX_MSEC);
	} while (tu_real_ns() < end);
	return false;
}

/* The process ID a script printed as its first line ("echo $!"), read
 * a byte at a time so that nothing after the line is taken. */
static pid_t read_pid(ctx_proc_t *p)
{
	ctx_t *t = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	char buf[32];
	size_t n = 0;
	ck_assert_ptr_nonnull(t);
	while (n < sizeof(buf) - 1 &&
	       ctx_read(t, ctx_proc_stdio(p, 1), buf + n, 1) == 1 &&
	       buf[n] != '\n')
		n++;
	ctx_release(t);
	buf[n] = '\0';
	ck_assert_int_gt(atoi(buf), 0);
	return (pid_t)atoi(buf);
}

/* Whether pid still runs as a member of group pgid.  A zombie does not
 * count: an exited member waits for init, and some inits never reap. */
static bool member_runs(pid_t pid, pid_t pgid)
{
	char path[64], buf[512], state;
	int ppid, pgrp;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *end = strrchr(buf, ')');
	return end && sscanf(end + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
	       pgrp == pgid && state != 'Z' && state != 'X';
}

/* Whether the member stops running within timeout. */
static bool member_stops_within(pid_t pid, pid_t pgid, int64_t timeout)
{
	int64_t end = ctx_now() + timeout;
	while (member_runs(pid, pgid) && ctx_now() < end)
		tu_sleep_ns(5 * CTX_MSEC);
	return !member_runs(pid, pgid);
}

/* Whether pidfd_open works in this process. */
static bool pidfd_works(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

/* Make this process (every thread, and what it spawns) a kernel without
 * pidfds: 0 or an error number. */
static int hide_pidfd(void)
{
#ifdef NATIVE_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_open, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_send_signal, 2,
			 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    SECCOMP_FILTER_FLAG_TSYNC, &prog))
		return errno;
	return 0;
#else
	return ENOTSUP;
#endif
}

/* The checked fixture of the "nopidfd" case. */
static void setup_no_pidfd(void)
{
	ck_assert_int_eq(hide_pidfd(), 0);
	ck_assert(!pidfd_works());
}

/* Whether a filter can be had here: tried in a child, which exits. */
static bool can_hide_pidfd(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(hide_pidfd() == 0 && !pidfd_works() ? 0 : 1);
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	       WEXITSTATUS(st) == 0;
}

/* ---- pipes, exit codes, attributes ------------------------------------ */

START_TEST(test_proc_pipes)
{
	struct ctx_proc_attr a = { .stdio = { CTX_STDIO_PIPE, CTX_STDIO_PIPE,
					      CTX_STDIO_PIPE } };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sh",
					SH("cat; echo oops >&2"), &a), 0);
	ck_assert_int_gt(ctx_proc_pid(p), 0);
	ck_assert_int_eq(ctx_write(ctx_background(), ctx_proc_stdio(p, 0),
				   "hello\n", 6), 6);
	ck_assert_int_eq(ctx_proc_close(p, 0), 0);
	ck_assert_int_eq(ctx_proc_stdio(p, 0), -1);
	ck_assert_int_eq(ctx_proc_close(p, 0), EBADF);
	char buf[64];
	read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC);
	ck_assert_str_eq(buf, "hello\n");
	read_all(p, 2, buf, sizeof(buf), 10 * CTX_SEC);
	ck_assert_str_eq(buf, "oops\n");
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ctx_proc_free(p);
}
END_TEST

START_TEST(test_proc_exit_codes)
{
	ctx_proc_t *p;
	int st = -1;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sh",
					SH("exit 3"), NULL), 0);
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 3);
	/* A second wait reports the same; the pid is gone for signals. */
	st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert_int_eq(WEXITSTATUS(st), 3);
	ck_assert_int_eq(ctx_proc_signal(p, SIGTERM), ESRCH);
	ctx_proc_free(p);

	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sleep",
					(char *[]){ "sleep", "30", NULL },
					NULL), 0);
	ck_assert_int_eq(ctx_proc_signal(p, SIGTERM), 0);
	/* Signalled by the program, not by the library: 0. */
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	ctx_proc_free(p);
}
END_TEST

START_TEST(test_proc_env_dir)
{
	const char *env[] = { "FOO=bar", NULL };
	struct ctx_proc_attr a = { .envp = env, .dir = "/",
				   .stdio[1] = CTX_STDIO_PIPE,
				   .stdio[2] = CTX_STDIO_NULL };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "/bin/sh",
					SH("echo $FOO; pwd; echo x >&2"), &a),
			 0);
	char buf[64];
	read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC);
	ck_assert_str_eq(buf, "bar\n/\n");
	ck_assert_int_eq(ctx_proc_wait(p, NULL), 0);
	ctx_proc_free(p);

	/* CTX_STDIO_FD: stdout to a descriptor of ours. */
	int fds[2];
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	struct ctx_proc_attr b = { .stdio[1] = CTX_STDIO_FD, .fd[1] = fds[1] };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "echo",
					(char *[]){ "echo", "fd", NULL }, &b),
			 0);
	close(fds[1]);
	ck_assert_int_eq(ctx_proc_wait(p, NULL), 0);
	ctx_proc_free(p);
	ck_assert_int_eq(read(fds[0], buf, sizeof(buf)), 3);
	ck_assert(memcmp(buf, "fd\n", 3) == 0);
	close(fds[0]);
}
END_TEST

/* The child starts with no signal blocked or ignored, whatever the
 * parent's thread had, and without the library's descriptors. */
START_TEST(test_proc_clean_child)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
	struct sigaction ign = { .sa_handler = SIG_IGN }, was;
	ck_assert_int_eq(sigaction(SIGUSR2, &ign, &was), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	int dfd = ctx_done_fd(c);
	ck_assert_int_ge(dfd, 0);

	/* The parent's pipe ends are open in the parent at spawn time; the
	 * shell looks for those numbers and for the done fd in itself. */
	int probe[2];
	ck_assert_int_eq(pipe2(probe, O_CLOEXEC), 0);
	close(probe[0]);
	close(probe[1]); /* the numbers the parent's pipe ends will take */
	char script[256];
	snprintf(script, sizeof(script),
		 "grep -E '^Sig(Blk|Ign)' /proc/self/status; "
		 "for n in %d %d %d; do [ -e /proc/$$/fd/$n ] && echo leak $n; "
		 "done; true", dfd, probe[0], probe[1]);
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh", SH(script), &a), 0);
	char buf[4096];
	read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC);
	ck_assert_int_eq(ctx_proc_wait(p, NULL), 0);
	ck_assert_ptr_nonnull(strstr(buf, "SigBlk:\t0000000000000000\n"));
	/* glibc's posix_spawn leaves its two internal signals (32 and 33,
	 * below SIGRTMIN) ignored in the child; no program can use them. */
	const char *ig = strstr(buf, "SigIgn:\t");
	ck_assert_ptr_nonnull(ig);
	unsigned long long mask = strtoull(ig + 8, NULL, 16);
	ck_assert_uint_eq(mask & ~(3ULL << 31), 0);
	ck_assert_msg(!strstr(buf, "leak"), "%s", buf);
	ctx_proc_free(p);
	ctx_release(c);
	sigaction(SIGUSR2, &was, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

/* Valgrind runs posix_spawn's vfork as a fork, so the child's exec error
 * never reaches the parent: the program exits 127 there instead. */
static bool exec_errors_seen(void)
{
	if (!tu_valgrind())
		return true;
	fprintf(stderr, "proc: exec errors not checked: under valgrind, "
			"posix_spawn cannot report them\n");
	return false;
}

START_TEST(test_proc_exec_errors)
{
	ctx_proc_t *p = (ctx_proc_t *)1;
	char *argv[] = { "x", NULL };
	int base = tu_count_fds();
	struct ctx_proc_attr pipes = { .stdio = { CTX_STDIO_PIPE,
						  CTX_STDIO_PIPE,
						  CTX_STDIO_PIPE } };

	if (!exec_errors_seen())
		return;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(),
					"/nonexistent/prog", argv, &pipes),
			 ENOENT);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(),
					"no-such-program-libctx", argv,
					&pipes), ENOENT);

	/* A file without execute permission. */
	char path[] = "/tmp/libctx-proc-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), path, argv,
					&pipes), EACCES);
	unlink(path);

	struct ctx_proc_attr bad_dir = { .dir = "/nonexistent/dir" };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true",
					(char *[]){ "true", NULL }, &bad_dir),
			 ENOENT);
	ck_assert_int_eq(tu_count_fds(), base);
	/* No child was left behind to reap. */
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG) < 0 ? errno : 0, ECHILD);
}
END_TEST

START_TEST(test_proc_bad_input)
{
	ctx_proc_t *p;
	char *argv[] = { "true", NULL };
	ck_assert_int_eq(ctx_proc_spawn(NULL, ctx_background(), "true", argv,
					NULL), EINVAL);
	ck_assert_int_eq(ctx_proc_spawn(&p, NULL, "true", argv, NULL), EINVAL);
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), NULL, argv,
					NULL), EINVAL);
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true", NULL,
					NULL), EINVAL);
	struct ctx_proc_attr a = { .cancel_signal = -1 };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true", argv,
					&a), EINVAL);
	a = (struct ctx_proc_attr){ .wait_delay = -1 };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true", argv,
					&a), EINVAL);
	a = (struct ctx_proc_attr){ .stdio[0] = 42 };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true", argv,
					&a), EINVAL);
	a = (struct ctx_proc_attr){ .stdio[0] = CTX_STDIO_FD, .fd[0] = -1 };
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "true", argv,
					&a), EBADF);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_cancel(c);
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "true", argv, NULL),
			 CTX_CANCELED);
	ctx_release(c);
	ck_assert_int_eq(ctx_proc_pid(NULL), -1);
	ck_assert_int_eq(ctx_proc_stdio(NULL, 0), -1);
	ck_assert_int_eq(ctx_proc_close(NULL, 0), EINVAL);
	ck_assert_int_eq(ctx_proc_signal(NULL, SIGTERM), EINVAL);
	ck_assert_int_eq(ctx_proc_wait(NULL, NULL), EINVAL);
	ctx_proc_free(NULL);
	char *out;
	ck_assert_int_eq(ctx_proc_output(ctx_background(), NULL, &out, NULL,
					 NULL), EINVAL);
}
END_TEST

/* ---- kill on cancel ---------------------------------------------------- */

static char *sleep30[] = { "sleep", "30", NULL };

START_TEST(test_proc_deadline_kill)
{
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sleep", sleep30, NULL), 0);
	ctx_unref(c); /* the process holds its own reference */
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 90, 5000);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	ctx_proc_free(p);
}
END_TEST

/* Nobody waits: the deadline still kills the process, when it passes
 * on the manual clock and not before. */
START_TEST(test_proc_kill_no_waiter)
{
	tu_manual_clock(false);
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sleep", sleep30, NULL), 0);
	ctx_unref(c);
	ctx_clock_advance(100 * CTX_MSEC - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert(!exited(ctx_proc_pid(p)));
	ctx_clock_advance(1);
	ck_assert(gone_within(ctx_proc_pid(p), 10 * CTX_SEC));
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	ctx_proc_free(p);
}
END_TEST

/* A script that says "ready" once its traps are set, spawned with
 * SIGTERM as its cancel signal and wait_delay, then cancelled: its
 * status, and the milliseconds from the cancel to the end of the wait,
 * which returns the context's error. */
static double cancel_trapped(char *script, int64_t wait_delay, int *st)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .cancel_signal = SIGTERM,
				   .wait_delay = wait_delay };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh", SH(script), &a), 0);
	read_ready(p);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	*st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, st), CTX_CANCELED);
	double ms = tu_ms_since(t0);
	ctx_proc_free(p);
	ctx_release(c);
	return ms;
}

/* SIGTERM first; a process that ignores it gets SIGKILL wait_delay later,
 * to the nanosecond of the manual clock. */
START_TEST(test_proc_term_ignored)
{
	tu_manual_clock(false);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .cancel_signal = SIGTERM,
				   .wait_delay = 300 * CTX_MSEC };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh",
					SH("trap '' TERM; echo ready; "
					   "exec sleep 30"), &a), 0);
	read_ready(p);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	/* The runner has sent SIGTERM and set the delay going. */
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_clock_advance(300 * CTX_MSEC - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert(!exited(ctx_proc_pid(p))); /* TERM ignored */
	ctx_clock_advance(1);
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_CANCELED);
	ck_assert_int_eq(ctx_now() - t0, 300 * CTX_MSEC);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* A process that exits on SIGTERM: its own status, the context's error,
 * and no wait for wait_delay. */
START_TEST(test_proc_term_exits)
{
	int st;
	double ms = cancel_trapped("trap 'exit 7' TERM; echo ready; "
				   "while :; do sleep 0.05; done",
				   20 * CTX_SEC, &st);
	tu_assert_ms(ms, 0, 5000);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 7);

	struct ctx_proc_attr a = { .cancel_signal = SIGTERM,
				   .wait_delay = 20 * CTX_SEC };
	ctx_proc_t *p;
	ctx_t *c;
	/* And one that dies of it. */
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sleep", sleep30,
					&a), 0);
	ctx_proc_free(p); /* background never ends: free kills */
	c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sleep", sleep30, &a), 0);
	ctx_release(c);
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_CANCELED);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	ctx_proc_free(p);
}
END_TEST

/* A process that ended on its own before the context did: 0. */
START_TEST(test_proc_exit_before_cancel)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "true",
					(char *[]){ "true", NULL }, NULL), 0);
	ck_assert(gone_within(ctx_proc_pid(p), 10 * CTX_SEC));
	ctx_cancel(c);
	tu_sleep_ns(50 * CTX_MSEC); /* let the after-func look */
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* ---- process groups ----------------------------------------------------- */

/* Grandchildren hold the pipe; the group signal ends them too. */
START_TEST(test_proc_group)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .cancel_signal = SIGTERM,
				   .wait_delay = 20 * CTX_SEC,
				   .new_group = true };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh",
					SH("sleep 30 & sleep 30 & echo ready; "
					   "wait"), &a), 0);
	pid_t pid = ctx_proc_pid(p);
	ck_assert_int_eq(getpgid(pid), pid);
	read_ready(p);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	char buf[16];
	/* EOF long before wait_delay: every writer got SIGTERM. */
	ck_assert_uint_eq(read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC), 0);
	tu_assert_ms(tu_ms_since(t0), 0, 5000);
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_CANCELED);
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* A member that ignores SIGTERM gets SIGKILL wait_delay later (on the
 * manual clock), and the wait returns only once it is gone. */
START_TEST(test_proc_group_leftover)
{
	tu_manual_clock(false);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .cancel_signal = SIGTERM,
				   .wait_delay = CTX_SEC,
				   .new_group = true };
	ctx_proc_t *p;
	/* The member prints its pid once its trap is set. */
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh",
					SH("sh -c 'trap \"\" TERM; echo $$; "
					   "exec sleep 30' & wait"), &a), 0);
	pid_t pgid = ctx_proc_pid(p), kid = read_pid(p);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	/* The runner has signalled the group and set the delay going;
	 * the member is still there a nanosecond before it ends. */
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_clock_advance(CTX_SEC - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert(member_runs(kid, pgid));
	ctx_clock_advance(1);
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), CTX_CANCELED);
	ck_assert_int_eq(ctx_now() - t0, CTX_SEC);
	ck_assert(!member_runs(kid, pgid));
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	char buf[16];
	ck_assert_uint_eq(read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC), 0);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* The leader exits at once and leaves a member in its group (issue 21,
 * item 3): ctx's end still signals the group.  Loop 0 waits for the
 * leader before ctx ends (its own status, at once; the member stays),
 * then nobody waits as ctx ends; loop 1 waits only after ctx ended, and
 * the wait returns once the member is gone.  Either way the wait says 0:
 * the leader ended on its own. */
START_TEST(test_proc_group_outlives_leader)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .new_group = true };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sh",
					SH("sleep 100 & echo $!"), &a), 0);
	pid_t pgid = ctx_proc_pid(p), kid = read_pid(p);
	ck_assert(gone_within(pgid, 10 * CTX_SEC));
	ck_assert(member_runs(kid, pgid));
	int st = -1;
	if (_i == 0) {
		ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
		ck_assert(WIFEXITED(st));
		ck_assert_int_eq(WEXITSTATUS(st), 0);
		ck_assert(member_runs(kid, pgid));
	}
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	if (_i == 0)
		ck_assert(member_stops_within(kid, pgid, 10 * CTX_SEC));
	st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert(!member_runs(kid, pgid));
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	tu_assert_ms(tu_ms_since(t0), 0, 10000);
	char buf[16]; /* the member held the pipe: EOF now */
	ck_assert_uint_eq(read_all(p, 1, buf, sizeof(buf), 10 * CTX_SEC), 0);
	ctx_proc_free(p);
	ctx_release(c);
}
END_TEST

/* ctx_proc_free ends the group a waited-for leader left running, whose
 * context never ends: nothing of it outlives the handle. */
START_TEST(test_proc_group_free_after_wait)
{
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE,
				   .new_group = true };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sh",
					SH("sleep 100 & echo $!"), &a), 0);
	pid_t pgid = ctx_proc_pid(p), kid = read_pid(p);
	ck_assert_int_eq(ctx_proc_wait(p, NULL), 0);
	ck_assert(member_runs(kid, pgid));
	ck_assert_int_eq(ctx_proc_signal(p, 0), 0); /* still the group's */
	int64_t t0 = ctx_now();
	ctx_proc_free(p);
	ck_assert(!member_runs(kid, pgid));
	tu_assert_ms(tu_ms_since(t0), 0, 10000);
}
END_TEST

/* ---- free without wait -------------------------------------------------- */

START_TEST(test_proc_free_no_wait)
{
	/* A first wait makes this thread's reactor (descriptors of its
	 * own, which stay): count from there.  Its wake-up descriptor is
	 * made only by a wait that really sleeps, and on a loaded machine
	 * a 1 ms sleep could find its deadline gone before it got there. */
	ck_assert_int_eq(ctx_sleep(ctx_background(), 50 * CTX_MSEC), 0);
	int base = tu_count_fds();
	struct ctx_proc_attr a = { .stdio = { CTX_STDIO_PIPE, CTX_STDIO_PIPE,
					      CTX_STDIO_PIPE },
				   .new_group = true };
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sleep", sleep30,
					&a), 0);
	pid_t pid = ctx_proc_pid(p);
	/* 3 pipes, and a pidfd where the kernel has them */
	ck_assert_int_eq(tu_count_fds(), base + 3 + pidfd_works());
	ctx_proc_free(p);
	ck_assert_int_eq(tu_count_fds(), base);
	ck_assert_int_eq(waitpid(pid, NULL, WNOHANG) < 0 ? errno : 0, ECHILD);
	/* No zombie of any kind (only in a process of its own). */
	if (tu_forked())
		ck_assert_int_eq(waitpid(-1, NULL, WNOHANG) < 0 ? errno : 0,
				 ECHILD);

	/* Freed with a cancel pending: no after-func outlives it.  On the
	 * manual clock: the deadline passes (the runner sends SIGTERM and
	 * sets the SIGKILL going), the process is freed, then the SIGKILL's
	 * time passes, and whatever it queued has run. */
	tu_manual_clock(false);
	ctx_t *c = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	a = (struct ctx_proc_attr){ .cancel_signal = SIGTERM,
				    .wait_delay = 50 * CTX_MSEC };
	ck_assert_int_eq(ctx_proc_spawn(&p, c, "sleep", sleep30, &a), 0);
	ctx_unref(c);
	ctx_clock_advance(50 * CTX_MSEC);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ctx_proc_free(p);
	ctx_clock_advance(CTX_SEC); /* a late SIGKILL would find nothing */
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	ck_assert_int_eq(tu_settle_fds(base, CTX_SEC), base);
}
END_TEST

/* ---- many ---------------------------------------------------------------- */

#define MANY 50

/* Fifty children under one deadline, on the manual clock: however long
 * the spawns take on a loaded machine, none is killed a nanosecond before
 * the deadline, and each is killed at it. */
START_TEST(test_proc_many_one_deadline)
{
	int n = tu_quick() ? 10 : MANY;
	tu_manual_clock(false);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 2 * CTX_SEC);
	ctx_proc_t *p[MANY];
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(ctx_proc_spawn(&p[i], c, "sleep", sleep30,
						NULL), 0);
	ctx_unref(c);
	ctx_clock_advance(2 * CTX_SEC - 1);
	ck_assert_int_eq(ctx_clock_wait_idle(ctx_background()), 0);
	for (int i = 0; i < n; i++)
		ck_assert(!exited(ctx_proc_pid(p[i])));
	ctx_clock_advance(1);
	for (int i = 0; i < n; i++) {
		int st = -1;
		ck_assert_int_eq(ctx_proc_wait(p[i], &st),
				 CTX_DEADLINE_EXCEEDED);
		ck_assert_int_eq(WTERMSIG(st), SIGKILL);
		ctx_proc_free(p[i]);
	}
	ck_assert_int_eq(ctx_now() - t0, 2 * CTX_SEC);
}
END_TEST

/* ---- output ------------------------------------------------------------ */

START_TEST(test_proc_output)
{
	char *out;
	size_t len = 0;
	int st = -1;
	ck_assert_int_eq(ctx_proc_output(ctx_background(),
					 (char *[]){ "head", "-c", "3145728",
						     "/dev/zero", NULL },
					 &out, &len, &st), 0);
	ck_assert_uint_eq(len, 3145728);
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	size_t zeros = 0;
	for (size_t i = 0; i < len; i++)
		zeros += out[i] == 0;
	ck_assert_uint_eq(zeros, len);
	free(out);

	ck_assert_int_eq(ctx_proc_output(ctx_background(), SH("echo hi"),
					 &out, &len, &st), 0);
	ck_assert_str_eq(out, "hi\n");
	free(out);

	if (exec_errors_seen()) {
		ck_assert_int_eq(ctx_proc_output(ctx_background(),
						 (char *[]){
							 "no-such-program-libctx",
							 NULL },
						 &out, &len, &st), ENOENT);
		ck_assert_ptr_null(out);
	}
}
END_TEST

/*
 * What the process wrote before its context ended is the caller's, read
 * or not (ctx_proc_spawn(3)): the reader is parked in a signal handler
 * while the script writes OUT_UNREAD bytes (they fit the smallest pipe),
 * then the context ends (loop 0: a cancel; 1: its deadline moved to
 * now) and the reader resumes to a done context with every byte still
 * in the pipe.  Before the drain, ctx_proc_output returned none of them.
 * This replaced a 100 ms deadline after "echo part", which under
 * valgrind on a loaded machine passed before the shell had echoed.
 */
#define OUT_UNREAD 4000

static int park[2] = { -1, -1 };
static atomic_bool parked;

/* SIGUSR1, installed without SA_RESTART: the interrupted wait returns
 * EINTR to the library once the handler does. */
static void park_handler(int sig)
{
	int saved = errno;
	char b;
	(void)sig;
	atomic_store(&parked, true);
	while (read(park[0], &b, 1) < 0 && errno == EINTR)
		;
	errno = saved;
}

struct ender {
	pthread_t reader, thread;
	ctx_t *c;
	bool by_deadline;
	bool no_park; /* end the context once the script has started */
	char dir[40];
	const char *missed; /* what never happened, or NULL */
	/* ctx_proc_output's results, and how long it took */
	int rc, st;
	char *out;
	size_t len;
	double ms;
};

static bool await_mark(const char *dir, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int64_t end = ctx_now() + 20 * CTX_SEC;
	while (access(path, F_OK) != 0) {
		if (ctx_now() > end)
			return false;
		tu_sleep_ns(CTX_MSEC);
	}
	return true;
}

static void *end_unread(void *arg)
{
	struct ender *e = arg;
	char go[64];
	int64_t end = ctx_now() + 20 * CTX_SEC;

	if (!await_mark(e->dir, "started")) {
		e->missed = "the script's start";
		goto out;
	}
	if (e->no_park)
		goto out;
	pthread_kill(e->reader, SIGUSR1);
	while (!atomic_load(&parked) && ctx_now() < end)
		tu_sleep_ns(100 * CTX_USEC);
	if (!atomic_load(&parked)) {
		e->missed = "the reader's park";
		goto out;
	}
	snprintf(go, sizeof(go), "%s/go", e->dir);
	close(open(go, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	if (!await_mark(e->dir, "written"))
		e->missed = "the script's output";
out:
	if (e->by_deadline)
		ctx_set_deadline(e->c, ctx_now());
	else
		ctx_cancel(e->c);
	if (write(park[1], "x", 1) != 1) /* no assertion off the main thread */
		e->missed = "the reader's release";
	return NULL;
}

static void remove_marks(const char *dir)
{
	const char *names[] = { "started", "go", "written", "pid" };
	char path[64];
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* ctx_proc_output(e->c, sh -c script) with end_unread beside it, the
 * park handler installed for its length. */
static void run_output(struct ender *e, const char *script)
{
	ck_assert_int_eq(pipe2(park, O_CLOEXEC), 0);
	atomic_store(&parked, false);
	struct sigaction sa = { .sa_handler = park_handler }, old;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	ck_assert_int_eq(pthread_create(&e->thread, NULL, end_unread, e), 0);
	e->st = -1;
	int64_t t0 = ctx_now();
	e->rc = ctx_proc_output(e->c, SH((char *)script), &e->out, &e->len,
				&e->st);
	e->ms = tu_ms_since(t0);
	pthread_join(e->thread, NULL);
	sigaction(SIGUSR1, &old, NULL);
	close(park[0]);
	close(park[1]);
}

START_TEST(test_proc_output_unread)
{
	struct ender e = { .reader = pthread_self(), .by_deadline = _i,
			   .dir = "/tmp/ctx-output-XXXXXX" };
	char script[320];
	ck_assert_ptr_nonnull(mkdtemp(e.dir));
	snprintf(script, sizeof(script),
		 ": > %s/started; while [ ! -e %s/go ]; do sleep 0.01; done; "
		 "head -c %d /dev/zero; : > %s/written; exec sleep 30",
		 e.dir, e.dir, OUT_UNREAD, e.dir);
	e.c = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	run_output(&e, script);
	remove_marks(e.dir);

	ck_assert_msg(!e.missed, "waited in vain for %s", e.missed);
	ck_assert_int_eq(e.rc, _i ? CTX_DEADLINE_EXCEEDED : CTX_CANCELED);
	ck_assert_uint_eq(e.len, OUT_UNREAD);
	ck_assert_ptr_nonnull(e.out);
	for (size_t i = 0; i < e.len; i++)
		ck_assert_int_eq(e.out[i], 0); /* head's zeros */
	ck_assert_int_eq(e.out[e.len], 0);
	ck_assert(WIFSIGNALED(e.st));
	ck_assert_int_eq(WTERMSIG(e.st), SIGKILL);
	free(e.out);
	ctx_release(e.c);
}
END_TEST

/* A descendant that left the process group (setsid), so that the kill
 * misses it, keeps the pipe open and writes without pause: the call
 * still returns once the context ends, with what it had, and does not
 * wait for the pipe's end or read for as long as the writer writes.
 * (`timeout 20` bounds the writer if the test fails before its kill.) */
START_TEST(test_proc_output_survivor)
{
	struct ender e = { .reader = pthread_self(), .no_park = true,
			   .dir = "/tmp/ctx-output-XXXXXX" };
	char script[320], path[64];
	ck_assert_ptr_nonnull(mkdtemp(e.dir));
	snprintf(script, sizeof(script),
		 "setsid timeout 20 sh -c 'echo $$ > %s/pid; exec yes' & "
		 "while [ ! -s %s/pid ]; do sleep 0.01; done; "
		 ": > %s/started; exec sleep 30", e.dir, e.dir, e.dir);
	e.c = ctx_with_cancel(ctx_background());
	run_output(&e, script);
	snprintf(path, sizeof(path), "%s/pid", e.dir);
	FILE *f = fopen(path, "r");
	int pid = 0;
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (pid > 0)
		kill(pid, SIGKILL);
	remove_marks(e.dir);

	ck_assert_msg(!e.missed, "waited in vain for %s", e.missed);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(e.rc, CTX_CANCELED);
	tu_assert_ms(e.ms, 0, 15000); /* not the writer's 20 s */
	ck_assert_ptr_nonnull(e.out);
	ck_assert_int_eq(e.out[e.len], 0);
	ck_assert_int_eq(WTERMSIG(e.st), SIGKILL);
	free(e.out);
	ctx_release(e.c);
}
END_TEST

/* ---- without pidfds --------------------------------------------------- */

/* Issue 21, item 4: without pidfd_open the spawn ran the program, then
 * returned ENOSYS, and a retry ran it again.  It runs once and is
 * managed all the same (the other tests of the case show how). */
START_TEST(test_proc_no_pidfd_runs_once)
{
	ck_assert_int_eq(syscall(SYS_pidfd_open, getpid(), 0), -1);
	ck_assert_int_eq(errno, ENOSYS);
	char path[] = "/tmp/libctx-proc-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	char script[128];
	snprintf(script, sizeof(script), "echo ran >> %s", path);
	ctx_proc_t *p;
	ck_assert_int_eq(ctx_proc_spawn(&p, ctx_background(), "sh",
					SH(script), NULL), 0);
	int st = -1;
	ck_assert_int_eq(ctx_proc_wait(p, &st), 0);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	ctx_proc_free(p);
	char buf[16] = "";
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 4);
	ck_assert_str_eq(buf, "ran\n");
	close(fd);
	unlink(path);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */

/* The bodies that show a process managed without a pidfd. */
static void add_no_pidfd(Suite *s)
{
	if (!tu_forked() || !can_hide_pidfd()) {
		fprintf(stderr, "proc: nopidfd skipped: %s\n",
			tu_forked() ? "no seccomp filter can be installed here"
				    : "needs a process per test (CK_FORK)");
		return;
	}
	TCase *tc = tu_tcase(s, "nopidfd", 60);
	tcase_add_checked_fixture(tc, setup_no_pidfd, ctx__clock_reset);
	tu_add_tests(tc, test_proc_no_pidfd_runs_once, test_proc_pipes,
		     test_proc_exit_codes, test_proc_exec_errors,
		     test_proc_deadline_kill, test_proc_kill_no_waiter,
		     test_proc_term_ignored, test_proc_term_exits,
		     test_proc_exit_before_cancel, test_proc_group,
		     test_proc_group_leftover);
	tcase_add_loop_test(tc, test_proc_group_outlives_leader, 0, 2);
	tu_add_tests(tc, test_proc_free_no_wait, test_proc_many_one_deadline,
		     test_proc_output);
	tcase_add_loop_test(tc, test_proc_output_unread, 0, 2);
	tcase_add_test(tc, test_proc_output_survivor);
}

Suite *suite_proc(void)
{
	Suite *s = suite_create("proc");
	TCase *tc;

	tc = tu_tcase(s, "spawn", 30);
	tu_add_tests(tc, test_proc_pipes, test_proc_exit_codes,
		     test_proc_env_dir, test_proc_clean_child,
		     test_proc_exec_errors, test_proc_bad_input);

	tc = tu_tcase(s, "cancel", 60);
	tcase_add_checked_fixture(tc, NULL, ctx__clock_reset);
	tu_add_tests(tc, test_proc_deadline_kill, test_proc_kill_no_waiter,
		     test_proc_term_ignored, test_proc_term_exits,
		     test_proc_exit_before_cancel, test_proc_group,
		     test_proc_group_leftover);
	tcase_add_loop_test(tc, test_proc_group_outlives_leader, 0, 2);
	tu_add_tests(tc, test_proc_group_free_after_wait,
		     test_proc_free_no_wait, test_proc_many_one_deadline);

	tc = tu_tcase(s, "output", 60);
	tcase_add_test(tc, test_proc_output);
	tcase_add_loop_test(tc, test_proc_output_unread, 0, 2);
	tcase_add_test(tc, test_proc_output_survivor);

	add_no_pidfd(s);
	return s;
}
