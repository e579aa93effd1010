/*
 * Contract rows: runtime/proc/ -- ctx_waitpid and ctx_waitid (by pid,
 * as any child, by pidfd, and WNOHANG, which never waits but is refused
 * all the same), ctx_sigwait, and a child process the context kills
 * (ctx_proc_spawn then ctx_proc_wait).
 *
 * The children are forked (not exec'd) and make only async-signal-safe
 * calls: each waits for the end of a pipe the test holds, then exits
 * with CODE.  Kept means: the child is untouched and still the test's to
 * reap, with its status; the signal is still pending; a process the
 * context ended was killed by SIGKILL, and a refused spawn started none.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../contract.h"

#define CODE 5
#define UNTOUCHED (-1)

enum { BY_PID, ANY, BY_PIDFD };

struct st {
	pid_t pid;
	int how;               /* BY_PID, ANY, BY_PIDFD */
	int pidfd;
	int gate[2];           /* the child exits when gate[1] closes */
	bool gate_closed;
	bool reaped;
	int status;
	siginfo_t si;
	sigset_t set, old;     /* ctx_sigwait's */
	pthread_t self;
	bool spawned;          /* ctx_proc_spawn started a process */
};

/* ---- a child waiting for the test --------------------------------------- */

static void child_setup(void *v, int how)
{
	struct st *s = v;
	char c;

	s->how = how;
	s->pidfd = -1;
	s->status = UNTOUCHED;
	ck_assert_int_eq(pipe2(s->gate, O_CLOEXEC), 0);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		close(s->gate[1]);
		_exit(read(s->gate[0], &c, 1) == 0 ? CODE : 1);
	}
	close(s->gate[0]);
	/* An old kernel, or valgrind, has no pidfd_open: then by pid. */
	if (how == BY_PIDFD)
		s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
}

static int child_ready(void *v)
{
	struct st *s = v;

	s->gate_closed = true;
	return close(s->gate[1]) ? errno : 0;
}

/* Exited, not reaped: a refusal refuses a child that is there. */
static void child_settle(void *v)
{
	struct st *s = v;
	siginfo_t si;

	ck_assert_int_eq(waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOWAIT),
			 0);
}

/* For WNOHANG, which only looks, ready waits for the exit itself. */
static int exited_ready(void *v)
{
	struct st *s = v;
	siginfo_t si;

	if (child_ready(v))
		return errno;
	return waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOWAIT) ? errno : 0;
}

static pid_t child_id(struct st *s)
{
	return s->how == ANY ? -1 : s->pid;
}

static long waitpid_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_waitpid(c, child_id(s), &s->status, 0);
}

static long waitpid_nohang_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_waitpid(c, child_id(s), &s->status, WNOHANG);
}

/* Reaped, with its status: nothing is left to wait for. */
static void waitpid_check(void *v, long rc)
{
	struct st *s = v;
	int st;

	ck_assert_int_eq(rc, s->pid);
	s->reaped = true;
	ck_assert_msg(WIFEXITED(s->status) && WEXITSTATUS(s->status) == CODE,
		      "status %#x", s->status);
	tu_assert_fail(waitpid(s->pid, &st, WNOHANG), ECHILD);
}

/* The refused or ended wait reaped nothing and wrote nothing. */
static void child_kept(void *v)
{
	struct st *s = v;
	int st;

	ck_assert_int_eq(s->status, UNTOUCHED);
	ck_assert_int_eq(waitpid(s->pid, &st, 0), s->pid);
	s->reaped = true;
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == CODE);
}

static long waitid_call(ctx_t *c, void *v)
{
	struct st *s = v;
	idtype_t type = s->how == ANY ? P_ALL : s->pidfd >= 0 ? P_PIDFD : P_PID;
	id_t id = s->how == ANY ? 0 : s->pidfd >= 0 ? (id_t)s->pidfd :
						       (id_t)s->pid;

	s->si = (siginfo_t){ .si_pid = UNTOUCHED };
	return ctx_waitid(c, type, id, &s->si, WEXITED);
}

static long waitid_nohang_call(ctx_t *c, void *v)
{
	struct st *s = v;

	s->si = (siginfo_t){ .si_pid = UNTOUCHED };
	return ctx_waitid(c, P_PID, (id_t)s->pid, &s->si, WEXITED | WNOHANG);
}

static void waitid_check(void *v, long rc)
{
	struct st *s = v;
	int st;

	ck_assert_int_eq(rc, 0);
	s->reaped = true;
	ck_assert_int_eq(s->si.si_pid, s->pid);
	ck_assert_int_eq(s->si.si_code, CLD_EXITED);
	ck_assert_int_eq(s->si.si_status, CODE);
	tu_assert_fail(waitpid(s->pid, &st, WNOHANG), ECHILD);
}

static void child_teardown(void *v)
{
	struct st *s = v;

	if (!s->reaped) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
	}
	if (!s->gate_closed)
		close(s->gate[1]);
	if (s->pidfd >= 0)
		close(s->pidfd);
}

/* ---- ctx_sigwait ------------------------------------------------------------ */

/* SIGUSR2 blocked in this thread; it comes to this thread alone, so that
 * no other thread of the process can take it. */
static void sig_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	sigemptyset(&s->set);
	sigaddset(&s->set, SIGUSR2);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &s->set, &s->old), 0);
	s->self = pthread_self();
}

static int sig_ready(void *v)
{
	struct st *s = v;

	return pthread_kill(s->self, SIGUSR2);
}

static long sigwait_call(ctx_t *c, void *v)
{
	struct st *s = v;

	s->si = (siginfo_t){ .si_signo = UNTOUCHED };
	return ctx_sigwait(c, &s->set, &s->si);
}

static void sig_check(void *v, long rc)
{
	struct st *s = v;
	static const struct timespec zero = { 0, 0 };

	ck_assert_int_eq(rc, SIGUSR2);
	ck_assert_int_eq(s->si.si_signo, SIGUSR2);
	tu_assert_fail(sigtimedwait(&s->set, NULL, &zero), EAGAIN);
}

/* Nothing consumed: the signal is still pending here. */
static void sig_kept(void *v)
{
	struct st *s = v;
	static const struct timespec zero = { 0, 0 };

	ck_assert_int_eq(s->si.si_signo, UNTOUCHED);
	ck_assert_int_eq(sigtimedwait(&s->set, NULL, &zero), SIGUSR2);
}

/* The thread's signals as the test found them (CK_FORK=no runs every
 * test in one process). */
static void sig_teardown(void *v)
{
	struct st *s = v;
	static const struct timespec zero = { 0, 0 };

	while (sigtimedwait(&s->set, NULL, &zero) == SIGUSR2)
		;
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &s->old, NULL), 0);
}

/* ---- a child process the context kills ---------------------------------------- */

static void proc_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	ck_assert_int_eq(pipe2(s->gate, O_CLOEXEC), 0);
	s->status = UNTOUCHED;
}

/* cat, its input the gate: it exits 0 when the test closes the gate. */
static long proc_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct ctx_proc_attr a = { .stdio[0] = CTX_STDIO_FD,
				   .fd[0] = s->gate[0] };
	ctx_proc_t *p;
	int e = ctx_proc_spawn(&p, c, "cat", (char *[]){ "cat", NULL }, &a);

	if (e)
		return e;
	s->spawned = true;
	e = ctx_proc_wait(p, &s->status);
	ctx_proc_free(p);
	return e;
}

static void proc_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_msg(WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0,
		      "status %#x", s->status);
}

/* The context ended the process (SIGKILL), or a refused spawn started
 * none. */
static void proc_kept(void *v)
{
	struct st *s = v;

	if (!s->spawned) {
		ck_assert_int_eq(s->status, UNTOUCHED);
		return;
	}
	ck_assert_msg(WIFSIGNALED(s->status) && WTERMSIG(s->status) == SIGKILL,
		      "status %#x", s->status);
}

static void proc_teardown(void *v)
{
	struct st *s = v;

	close(s->gate[0]);
	if (!s->gate_closed)
		close(s->gate[1]);
}

/* ---- the rows ------------------------------------------------------------------ */

#define ROW .style = CT_ERRNO, .size = sizeof(struct st)
#define CHILD .setup = child_setup, .teardown = child_teardown
#define WAITS .ready = child_ready, .settle = child_settle,                 \
	.flags = CT_NOT_PARTIAL | CT_FORKS
#define LOOKS .ready = exited_ready, .flags = CT_NEVER_WAITS | CT_FORKS

const struct ct_row ct_rows_proc[] = {
	{ .name = "ctx_waitpid by pid", .arg = BY_PID, ROW, CHILD, WAITS,
	  .call = waitpid_call, .check = waitpid_check, .kept = child_kept },
	{ .name = "ctx_waitpid for any child", .arg = ANY, ROW, CHILD, WAITS,
	  .call = waitpid_call, .check = waitpid_check, .kept = child_kept },
	{ .name = "ctx_waitpid WNOHANG", .arg = BY_PID, ROW, CHILD, LOOKS,
	  .call = waitpid_nohang_call, .check = waitpid_check,
	  .kept = child_kept },
	{ .name = "ctx_waitid P_PID", .arg = BY_PID, ROW, CHILD, WAITS,
	  .call = waitid_call, .check = waitid_check, .kept = child_kept },
	{ .name = "ctx_waitid P_ALL", .arg = ANY, ROW, CHILD, WAITS,
	  .call = waitid_call, .check = waitid_check, .kept = child_kept },
	{ .name = "ctx_waitid P_PIDFD (P_PID without pidfd_open)",
	  .arg = BY_PIDFD, ROW, CHILD, WAITS, .call = waitid_call,
	  .check = waitid_check, .kept = child_kept },
	{ .name = "ctx_waitid WNOHANG", .arg = BY_PID, ROW, CHILD, LOOKS,
	  .call = waitid_nohang_call, .check = waitid_check,
	  .kept = child_kept },
	{ .name = "ctx_sigwait", ROW, .setup = sig_setup, .ready = sig_ready,
	  .call = sigwait_call, .check = sig_check, .kept = sig_kept,
	  .teardown = sig_teardown, .flags = CT_NOT_PARTIAL },
	{ .name = "ctx_proc_spawn and ctx_proc_wait", .style = CT_RETURN,
	  .size = sizeof(struct st), .setup = proc_setup,
	  .ready = child_ready, .call = proc_call, .check = proc_check,
	  .kept = proc_kept, .teardown = proc_teardown,
	  .flags = CT_NOT_PARTIAL },
	{ .name = NULL },
};
