/*
 * Waiting for a child process: waitpid(2) and waitid(2) with a context,
 * on the skeleton of every blocking call (wait/call.h): refuse if the
 * context is done, look without waiting (WNOHANG), wait, look again.
 *
 * A pidfd turns readable when its process exits, so the wait for one
 * process's exit is a wait for its pidfd.  Stops and continues
 * (WUNTRACED, WSTOPPED, WCONTINUED), groups and "any child" have no
 * descriptor, so those are looked at again after the pauses of the
 * schedule ctx__backoff_child (1 ms doubling up to 50 ms), as is a
 * process whose pidfd cannot be had (kernels before 5.3, EMFILE).
 * There is no prompt form that leaves SIGCHLD to the program: a pidfd
 * names one process and reports only its exit, the list of children in
 * /proc/PID/task/TID/children is documented as unreliable while the
 * process runs (and misses children started during the wait), and a
 * SIGCHLD handler or a signalfd would take the signal from the program.
 */
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wait/wait.h"

/* After the first look found nothing: the wait for the next, on the
 * pidfd (which c->fd then holds, *own whether the call closes it) or by
 * the schedule. */
static void wait_by(struct ctx__call *c, int pidfd, bool *own, bool mine)
{
	c->fd = pidfd;
	c->events = POLLIN;
	*own = mine && pidfd >= 0;
	if (pidfd < 0)
		c->backoff = &ctx__backoff_child;
}

/* ---- waitpid --------------------------------------------------------- */

struct waitpid_call {
	struct ctx__call c; /* first: the try casts it back */
	pid_t pid, r;
	int *status;
	int options;
	bool looked;        /* the first look is made */
	bool own;           /* c.fd is a pidfd of ours */
};

static int waitpid_try(struct ctx__call *c)
{
	struct waitpid_call *w = (struct waitpid_call *)c;
	w->r = waitpid(w->pid, w->status, w->options | WNOHANG);
	if (w->r < 0)
		return errno;
	if (w->r != 0 || (w->options & WNOHANG))
		return CTX__DONE;
	if (!w->looked) {
		w->looked = true;
		bool exit_only = w->pid > 0 &&
				 !(w->options & (WUNTRACED | WCONTINUED));
		wait_by(c, exit_only ? (int)syscall(SYS_pidfd_open, w->pid, 0)
				     : -1, &w->own, true);
	}
	return CTX__AGAIN;
}

pid_t ctx_waitpid(ctx_t *ctx, pid_t pid, int *status, int options)
{
	struct waitpid_call w = {
		.c = { .try = waitpid_try, .fd = -1, .deadline = CTX__NEVER },
		.pid = pid, .status = status, .options = options,
	};
	int e = ctx__call_run(ctx, &w.c);
	if (w.own)
		close(w.c.fd);
	return e ? ctx__fail(e) : w.r;
}

/* ---- waitid ---------------------------------------------------------- */

struct waitid_call {
	struct ctx__call c; /* first: the try casts it back */
	idtype_t idtype;
	id_t id;
	siginfo_t *info;
	int options;
	bool looked, own;
};

/* The child's pidfd when one can stand for the wait: an exit of one
 * process (a pidfd turns readable only at exit).  -1 otherwise. */
static int waitid_pidfd(struct waitid_call *w, bool *mine)
{
	*mine = w->idtype == P_PID;
	if (w->options & (WSTOPPED | WCONTINUED))
		return -1;
	if (w->idtype == P_PIDFD)
		return (int)w->id;
	if (w->idtype != P_PID)
		return -1;
	return (int)syscall(SYS_pidfd_open, (pid_t)w->id, 0);
}

static int waitid_try(struct ctx__call *c)
{
	struct waitid_call *w = (struct waitid_call *)c;
	int r;
	if (w->idtype != P_PID && w->idtype != P_PIDFD &&
	    w->idtype != P_PGID && w->idtype != P_ALL)
		return EINVAL;
	memset(w->info, 0, sizeof(*w->info)); /* si_pid 0: nothing yet */
	while ((r = waitid(w->idtype, w->id, w->info,
			   w->options | WNOHANG)) < 0 && errno == EINTR)
		;
	if (r < 0)
		return errno;
	if (w->info->si_pid != 0 || (w->options & WNOHANG))
		return CTX__DONE;
	if (!w->looked) {
		bool mine;
		int pidfd = waitid_pidfd(w, &mine);
		w->looked = true;
		wait_by(c, pidfd, &w->own, mine);
	}
	return CTX__AGAIN;
}

int ctx_waitid(ctx_t *ctx, idtype_t idtype, id_t id, siginfo_t *info,
	       int options)
{
	siginfo_t dummy;
	struct waitid_call w = {
		.c = { .try = waitid_try, .fd = -1, .deadline = CTX__NEVER },
		.idtype = idtype, .id = id, .info = info ? info : &dummy,
		.options = options,
	};
	int e = ctx__call_run(ctx, &w.c);
	if (w.own)
		close(w.c.fd);
	return e ? ctx__fail(e) : 0;
}
