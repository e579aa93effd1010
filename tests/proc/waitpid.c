/*
 * Waiting for children and signals beyond the contract every blocking
 * call keeps (tests/contract.c): ctx_waitpid's statuses (exited,
 * signalled, stopped), by pid, as any child and in the process group,
 * WNOHANG while the child runs, ECHILD; ctx_waitid's id types and
 * WSTOPPED; ctx_sigwait on a signal sent to the process, and queued
 * signals with their values.
 *
 * Children are small shell scripts, exec'd at once after fork, or forks
 * that sleep and exit: safe to fork from a process with threads, and not
 * run under valgrind when the suite is (valgrind does not follow exec by
 * default), so its leak report for a child cannot change the exit
 * status the test checks.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

#define HOUR (3600 * CTX_SEC)
#define SHORT_MS 50
#define LATE_MS 2000
#define AT_ONCE_MS 500          /* "at once", with room for a noisy machine */

/* ---- ctx_waitpid ------------------------------------------------------ */

/* "exec sleep" keeps a long-lived child a single process, so that
 * killing it leaves nothing behind. */
#define FOREVER "exec sleep 3600"

/* Wait, without reaping it, until pid has exited. */
static void await_exit(pid_t pid)
{
	siginfo_t si;

	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

/* By pid (loop index 0), as any child (1), in our process group (2). */
START_TEST(test_waitpid_status)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	pid_t pid = tu_spawn_sh("sleep 0.05; exit 42");
	pid_t arg = _i == 0 ? pid : _i == 1 ? -1 : 0;
	pid_t got = ctx_waitpid(c, arg, &status, 0);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(got, pid);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	ck_assert_int_eq(WEXITSTATUS(status), 42);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	/* Reaped: nothing is left to wait for. */
	tu_assert_fail(waitpid(pid, &status, WNOHANG), ECHILD);
	ctx_release(c);
}
END_TEST

/* A child that has exited already: returned at once. */
START_TEST(test_waitpid_exited)
{
	int status = 0;
	ctx_t *c = ctx_with_cancel(ctx_background());
	pid_t pid = tu_spawn_sh("exit 3");

	await_exit(pid);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, 0), pid);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ck_assert_int_eq(WEXITSTATUS(status), 3);
	ctx_release(c);
}
END_TEST

/* WNOHANG is a plain check: 0 while the child runs, never a wait. */
START_TEST(test_waitpid_wnohang)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	pid_t pid = tu_spawn_sh(FOREVER);

	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WNOHANG), 0);
	ck_assert_int_eq(ctx_waitpid(c, -1, &status, WNOHANG), 0);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	await_exit(pid);
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WNOHANG), pid);
	ck_assert(WIFSIGNALED(status));
	ctx_release(c);
}
END_TEST

/* No such child: ECHILD at once, as waitpid(2) says. */
START_TEST(test_waitpid_echild)
{
	int status;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_waitpid(c, -1, &status, 0), ECHILD);
	tu_assert_fail(ctx_waitpid(c, getpid(), &status, 0), ECHILD);
	tu_assert_fail(ctx_waitpid(c, 1, &status, 0), ECHILD);
	tu_assert_ms(tu_ms_since(t0), 0, AT_ONCE_MS);
	ctx_release(c);
}
END_TEST

/* Killed by a signal, and stopped (WUNTRACED), as waitpid(2) reports. */
START_TEST(test_waitpid_signaled_stopped)
{
	int status = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	pid_t pid = tu_spawn_sh("sleep 0.05; kill -STOP $$; " FOREVER);

	ck_assert_int_eq(ctx_waitpid(c, pid, &status, WUNTRACED), pid);
	ck_assert_msg(WIFSTOPPED(status), "status %#x", status);
	ck_assert_int_eq(WSTOPSIG(status), SIGSTOP);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(ctx_waitpid(c, pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status), "status %#x", status);
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	ctx_release(c);
}
END_TEST

START_TEST(test_waitpid_null)
{
	int status = 0;
	pid_t pid = tu_spawn_sh("exit 9");

	await_exit(pid);
	tu_assert_fail(ctx_waitpid(NULL, pid, &status, 0), EINVAL);
	tu_assert_fail(ctx_waitpid(NULL, pid, &status, WNOHANG), EINVAL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 9);
}
END_TEST

/* ---- waitid ---------------------------------------------------------- */

/* A child that sleeps ms milliseconds, then exits with code. */
static pid_t child(int ms, int code, bool own_group)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (own_group)
			setpgid(0, 0);
		tu_sleep_ns(ms * CTX_MSEC);
		_exit(code);
	}
	if (own_group)
		setpgid(pid, pid); /* either side may win; both set it */
	return pid;
}

static void check_exit(const siginfo_t *si, pid_t pid, int code)
{
	ck_assert_int_eq(si->si_pid, pid);
	ck_assert_int_eq(si->si_code, CLD_EXITED);
	ck_assert_int_eq(si->si_status, code);
}

START_TEST(test_waitid_kinds)
{
	siginfo_t si;
	pid_t pid = child(50, 3, false);
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_PID, pid, &si,
				    WEXITED | WNOHANG), 0);
	ck_assert_int_eq(si.si_pid, 0); /* nothing yet */
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_PID, pid, &si,
				    WEXITED), 0);
	check_exit(&si, pid, 3);

	pid = child(50, 4, false);
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		ck_assert_int_eq(ctx_waitid(ctx_background(), P_PIDFD, pfd,
					    &si, WEXITED), 0);
		check_exit(&si, pid, 4);
		close(pfd);
	} else {
		ck_assert_int_eq(waitpid(pid, NULL, 0), pid); /* old kernel */
	}

	pid = child(50, 5, true);
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_PGID, pid, &si,
				    WEXITED), 0);
	check_exit(&si, pid, 5);

	pid = child(50, 6, false);
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_ALL, 0, &si,
				    WEXITED), 0);
	check_exit(&si, pid, 6);
	tu_assert_fail(ctx_waitid(ctx_background(), P_ALL, 0, &si, WEXITED),
		       ECHILD);
	tu_assert_fail(ctx_waitid(ctx_background(), (idtype_t)42, 0, &si,
				  WEXITED), EINVAL);
	tu_assert_fail(ctx_waitid(ctx_background(), P_ALL, 0, &si, 0),
		       EINVAL);
}
END_TEST

START_TEST(test_waitid_stopped)
{
	siginfo_t si;
	pid_t pid = child(5000, 0, false);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_PID, pid, &si,
				    WSTOPPED), 0);
	ck_assert_int_eq(si.si_pid, pid);
	ck_assert_int_eq(si.si_code, CLD_STOPPED);
	kill(pid, SIGKILL);
	ck_assert_int_eq(ctx_waitid(ctx_background(), P_PID, pid, &si,
				    WEXITED), 0);
	ck_assert_int_eq(si.si_code, CLD_KILLED);
}
END_TEST

/* ---- sigwait --------------------------------------------------------- */

static void block_sig(int sig, sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, sig);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, set, NULL), 0);
}

/* Sent to the process, not the thread; info may be NULL.  Only while
 * this is the process's one thread: under CK_FORK=no, threads of earlier
 * tests that do not block the signal would take it.  (Sent to the
 * thread while it waits: the contract test's.) */
START_TEST(test_sigwait)
{
	sigset_t set;
	block_sig(SIGUSR2, &set);
	if (tu_count_threads() == 1) {
		kill(getpid(), SIGUSR2);
		ck_assert_int_eq(ctx_sigwait(ctx_background(), &set, NULL),
				 SIGUSR2);
	}
	tu_assert_fail(ctx_sigwait(ctx_background(), NULL, NULL), EINVAL);
	tu_sig_restore(SIGUSR2);
}
END_TEST

/* Queued signals come one by one, each with its value; a wait the
 * context ends leaves no descriptor behind. */
START_TEST(test_sigwait_no_loss)
{
	int sig = SIGRTMIN + 1;
	sigset_t set;
	block_sig(sig, &set);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_sigqueue(pthread_self(), sig,
					  (union sigval){ .sival_int = i }), 0);
	for (int i = 0; i < 3; i++) {
		siginfo_t si;
		ck_assert_int_eq(ctx_sigwait(ctx_background(), &set, &si), sig);
		ck_assert_int_eq(si.si_value.sival_int, i);
		ck_assert_int_eq(si.si_code, SI_QUEUE);
	}
	tu_warm_up();
	int fds = tu_count_fds();
	ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
	tu_assert_fail(ctx_sigwait(c, &set, NULL), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	tu_sig_restore(sig);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */

Suite *suite_waitpid(void)
{
	Suite *s = suite_create("waitpid");
	TCase *tc;

	tc = tu_tcase(s, "waitpid", 30);
	tcase_add_loop_test(tc, test_waitpid_status, 0, 3);
	tu_add_tests(tc, test_waitpid_exited, test_waitpid_wnohang,
		     test_waitpid_echild, test_waitpid_signaled_stopped,
		     test_waitpid_null);

	tc = tu_tcase(s, "waitid", 30);
	tu_add_tests(tc, test_waitid_kinds, test_waitid_stopped);

	tc = tu_tcase(s, "sigwait", 20);
	tu_add_tests(tc, test_sigwait, test_sigwait_no_loss);
	return s;
}
