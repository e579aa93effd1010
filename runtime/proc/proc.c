/*
 * Child processes a context kills (Go's exec.CommandContext with Cancel
 * and WaitDelay).
 *
 * A process is spawned with posix_spawn, which reports a failed exec
 * (ENOENT, EACCES, a bad directory) as its own error since glibc 2.24,
 * and a pidfd is opened for it at once.  Signals to the process itself
 * go through the pidfd (pidfd_send_signal), which can never reach a
 * recycled pid even if the program reaps the child behind our back, and
 * the wait polls it.  Where pidfd_open is missing (kernels before 5.3,
 * valgrind before 3.20) or fails (EMFILE), the process is managed by its
 * pid alone: it is our child, and its pid cannot be reused before it is
 * reaped, so every signal is sent under p->mu with p->reaped false (and
 * after a look that the program did not reap it with a waitpid of its
 * own), while the reap itself happens under p->mu.  The wait then blocks
 * in waitid.  Nothing about a spawn can fail once the program runs: the
 * after-func that kills it is armed before the spawn, so a spawn never
 * runs the program and then reports failure.
 *
 * Kill on cancel: an after-func on ctx sends cancel_signal from the
 * library's runner thread, so it happens whether or not anyone waits.
 * The SIGKILL wait_delay later is a second after-func, on a fresh
 * context with that timeout: the existing timer thread ends it at its
 * deadline and the runner sends the SIGKILL, with no extra thread and no
 * sleeping in the runner (which would delay every other after-func).
 *
 * Process groups (new_group) have no pidfd, so their signals are
 * kill(-pgid).  The pgid is the leader's pid.  The kernel keeps a
 * number while any process still uses it as its pid or its group, a
 * zombie included, so an unreaped leader keeps the group's number ours;
 * once the leader is reaped and the last member has gone, the number
 * may name a stranger's group.  So the leader is reaped only when no
 * member of its group still runs (or the program reaped it itself: then
 * no group signal is sent any more), and until then ctx's end signals
 * the group whether or not the leader is alive.  A wait that finds the
 * leader gone but members running, with ctx still live, reports the
 * leader's status and leaves it a zombie; ctx_proc_free kills what runs
 * and reaps it.
 *
 * Whether members still run is read from /proc: kill(-pgid, 0) cannot
 * tell, since zombies count for it (the leader's own, and exited members
 * that init has not reaped yet, which some container inits never do).
 * A member of the group is any process whose stat names the pgid and
 * whose state is not Z (zombie) or X (dead).
 *
 * The object is shared by the caller and by each armed after-func (refs);
 * the last one closes the pidfd and frees it.  The library never installs
 * a SIGCHLD handler and reaps only the pid it spawned.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wait/wait.h"
#include "proc/pass.h"

extern char **environ;

struct ctx_proc {
	pid_t pid;            /* -1 until the spawn stores it under mu */
	int pidfd;            /* -1 without one: the pid alone then */
	int fd[3];            /* the parent's pipe ends, or -1 */
	int pass_fd;          /* pass_ctx: the parent's end (pass.c), or
				 -1; under mu */
	ctx_t *ctx;           /* held until the reap */
	int cancel_signal;
	int64_t wait_delay;
	bool group;
	pthread_mutex_t mu;   /* pid, reaped, cancelled, signalled, err,
				 kill_after */
	bool reaped;
	bool cancelled;       /* ctx ended and the library signalled */
	bool signalled;       /* ... while the process (leader) still ran */
	int err;              /* ctx's error, once signalled */
	int status;           /* waitpid's status, once it exited */
	ctx_after_t *cancel_after, *kill_after;
	_Atomic int refs;
};

static void put(ctx_proc_t *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* The status waitpid would give, from waitid's account of an exit. */
static int wstatus(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return W_EXITCODE(si->si_status, 0);
	if (si->si_code == CLD_DUMPED)
		return W_EXITCODE(0, si->si_status) | WCOREFLAG;
	return W_EXITCODE(0, si->si_status);
}

/* 1 if the process has exited (a zombie not yet reaped; its status in
 * *status if not NULL), 0 if not, or -errno (ECHILD: the program reaped
 * it itself).  WNOWAIT leaves it to be reaped, so the pid stays ours.
 * Linux 5.3 has pidfds but not P_PIDFD (5.4): EINVAL asks by pid. */
static int exited(ctx_proc_t *p, int *status)
{
	siginfo_t si = { .si_pid = 0 };
	int opts = WEXITED | WNOHANG | WNOWAIT, r = -1;
	if (p->pidfd >= 0)
		r = waitid(P_PIDFD, (id_t)p->pidfd, &si, opts);
	if (p->pidfd < 0 || (r < 0 && errno == EINVAL))
		r = waitid(P_PID, (id_t)p->pid, &si, opts);
	if (r < 0)
		return -errno;
	if (si.si_pid != 0 && status)
		*status = wstatus(&si);
	return si.si_pid != 0;
}

/* Signal the process, or its group; under p->mu with !p->reaped.  By
 * pid (a group, or no pidfd) only while the child is known unreaped: once
 * the program has reaped it itself (ECHILD), the number may be reused. */
static int send_locked(ctx_proc_t *p, int sig)
{
	if (p->pidfd >= 0 && !p->group)
		return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0
			       ? errno : 0;
	if (exited(p, NULL) < 0)
		return ESRCH;
	return kill(p->group ? -p->pid : p->pid, sig) < 0 ? errno : 0;
}

static void on_kill(void *arg)
{
	ctx_proc_t *p = arg;
	pthread_mutex_lock(&p->mu);
	if (!p->reaped)
		send_locked(p, SIGKILL);
	pthread_mutex_unlock(&p->mu);
	put(p);
}

/* Arm the SIGKILL wait_delay from now; under p->mu. */
static void arm_kill_locked(ctx_proc_t *p)
{
	if (p->wait_delay == 0) {
		send_locked(p, SIGKILL);
		return;
	}
	ctx_t *t = ctx_with_timeout(ctx_background(), p->wait_delay);
	if (t) {
		atomic_fetch_add(&p->refs, 1);
		p->kill_after = ctx_after_func(t, on_kill, p);
		ctx_unref(t); /* the after-func keeps the deadline alive */
		if (p->kill_after)
			return;
		atomic_fetch_sub(&p->refs, 1); /* not the last: caller's */
	}
	send_locked(p, SIGKILL); /* no timer to be had: kill now */
}

/* ctx ended: signal what still runs; under p->mu.  A process that ended
 * on its own is not "killed by ctx", but the rest of its group, if it
 * leads one, is still signalled (the unreaped leader keeps it ours). */
static void cancel_locked(ctx_proc_t *p)
{
	if (p->reaped) /* its reap ended the child's ctx and let go of ctx */
		return;
	ctx__pass_end(&p->pass_fd, ctx_err(p->ctx)); /* the child's ctx */
	if (p->cancelled)
		return;
	int x = exited(p, NULL);
	if (x < 0 || (x == 1 && !p->group))
		return;
	p->cancelled = true;
	if (x == 0) {
		p->signalled = true;
		p->err = ctx_err(p->ctx);
	}
	send_locked(p, p->cancel_signal);
	if (p->cancel_signal != SIGKILL)
		arm_kill_locked(p);
}

/* ctx ended (on the runner thread).  Before the spawn has stored the pid
 * there is nothing to signal: the spawn looks at ctx itself then. */
static void on_cancel(void *arg)
{
	ctx_proc_t *p = arg;
	pthread_mutex_lock(&p->mu);
	if (p->pid > 0)
		cancel_locked(p);
	pthread_mutex_unlock(&p->mu);
	put(p);
}

/* Stop an after-func; if it will not run, drop the share it held. */
static void stop_after(ctx_proc_t *p, ctx_after_t *a)
{
	if (a && ctx_after_stop(a))
		put(p);
}

/* Reap the exited process (it must have exited or be about to). */
static int reap(ctx_proc_t *p)
{
	pthread_mutex_lock(&p->mu);
	int r, e = 0;
	while ((r = waitpid(p->pid, &p->status, 0)) < 0 && errno == EINTR)
		;
	if (r < 0)
		e = errno; /* ECHILD: the program reaped it elsewhere */
	p->reaped = true;
	ctx__pass_end(&p->pass_fd, 0);
	ctx_after_t *ca = p->cancel_after, *ka = p->kill_after;
	p->cancel_after = p->kill_after = NULL;
	/* Taken under the lock: an after-func already running (stop_after
	 * cannot stop it) reads ctx under it, and sees reaped first. */
	ctx_t *ctx = p->ctx;
	p->ctx = NULL;
	pthread_mutex_unlock(&p->mu);
	stop_after(p, ca);
	stop_after(p, ka);
	ctx_unref(ctx);
	return e;
}

/* One look for the exit that wait_exit found not yet there. */
static int await_exit(ctx_proc_t *p)
{
	if (p->pidfd >= 0) {
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
		if (ctx_poll(ctx_background(), &pfd, 1, -1) < 0)
			return errno == EINTR ? 0 : errno;
		return 0;
	}
	siginfo_t si;
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0)
		return errno == EINTR ? 0 : errno;
	return 0;
}

/* Block until the process has exited, its status in p->status; it stays
 * unreaped.  The wait is not ended by p's context (that context kills
 * the process instead), so it polls the pidfd on the background context
 * through the public ctx_poll or, without a pidfd, blocks in waitid,
 * whose WNOWAIT leaves the reap to reap(). */
static int wait_exit(ctx_proc_t *p)
{
	int x, e;
	while ((x = exited(p, &p->status)) == 0)
		if ((e = await_exit(p)))
			return e;
	return x < 0 ? -x : 0;
}

/* Whether /proc/NAME/stat shows a running member of group pgid.  The
 * command name in parentheses may hold any byte, so the fields are read
 * after the last ')': state, parent, group. */
static bool member_runs(int procfd, const char *name, pid_t pgid)
{
	char path[64], buf[512], state;
	int ppid, pgrp;
	snprintf(path, sizeof(path), "%s/stat", name);
	int fd = openat(procfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false; /* gone meanwhile */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *end = strrchr(buf, ')');
	return end && sscanf(end + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
	       pgrp == pgid && state != 'Z' && state != 'X';
}

/* 1 if a process of group pgid still runs, 0 if none does, -1 if /proc
 * cannot say (not mounted). */
static int group_runs(pid_t pgid)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d)))
		found = de->d_name[0] >= '1' && de->d_name[0] <= '9' &&
			member_runs(dirfd(d), de->d_name, pgid);
	closedir(d);
	return found;
}

/* Block until no member of p's group runs, looking again after the
 * pauses of ctx__backoff_child (1 ms doubling up to 50 ms): nothing turns
 * readable when a group empties, and no context is to end the pause, so
 * it is a plain nanosleep, which needs no descriptor.  Without /proc it
 * returns at once; the signals were sent all the same. */
static void wait_group(ctx_proc_t *p)
{
	int64_t step = 0;
	while (group_runs(p->pid) > 0) {
		int64_t pause = ctx__backoff_next(&ctx__backoff_child, &step);
		struct timespec ts = { .tv_sec = pause / CTX_SEC,
				       .tv_nsec = pause % CTX_SEC };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* The leader has exited: whether it may be reaped now.  After a cancel
 * the group is on its way out (SIGKILL follows cancel_signal wait_delay
 * later), so the wait sees it go; before one, members that still run
 * keep the leader unreaped, and the group's number ours for ctx's end.
 * A ctx that ended is acted on here if the runner has not yet done so. */
static bool group_settled(ctx_proc_t *p)
{
	pthread_mutex_lock(&p->mu);
	if (ctx_err(p->ctx))
		cancel_locked(p);
	bool cancelled = p->cancelled;
	pthread_mutex_unlock(&p->mu);
	if (cancelled)
		wait_group(p);
	return cancelled || group_runs(p->pid) <= 0;
}

int ctx_proc_wait(ctx_proc_t *p, int *status)
{
	if (!p)
		return EINVAL;
	if (!p->reaped) {
		int e = wait_exit(p);
		if (!e && (!p->group || group_settled(p)))
			e = reap(p);
		if (e)
			return e;
	}
	if (status)
		*status = p->status;
	pthread_mutex_lock(&p->mu);
	int e = p->signalled ? p->err : 0;
	pthread_mutex_unlock(&p->mu);
	return e;
}

void ctx_proc_free(ctx_proc_t *p)
{
	if (!p)
		return;
	if (!p->reaped) {
		pthread_mutex_lock(&p->mu);
		send_locked(p, SIGKILL);
		pthread_mutex_unlock(&p->mu);
		/* Wait for it (and its group) to go without p->mu, which the
		 * after-funcs take, so that the reap's waitpid does not
		 * block; a leader reaped elsewhere leaves no group of ours. */
		if (wait_exit(p) == 0 && p->group)
			wait_group(p);
		reap(p);
	}
	for (int n = 0; n < 3; n++)
		if (p->fd[n] >= 0)
			close(p->fd[n]);
	put(p);
}

pid_t ctx_proc_pid(const ctx_proc_t *p)
{
	return p ? p->pid : -1;
}

int ctx_proc_stdio(const ctx_proc_t *p, int n)
{
	return p && n >= 0 && n < 3 ? p->fd[n] : -1;
}

int ctx_proc_close(ctx_proc_t *p, int n)
{
	if (!p || n < 0 || n > 2)
		return EINVAL;
	if (p->fd[n] < 0)
		return EBADF;
	close(p->fd[n]);
	p->fd[n] = -1;
	return 0;
}

int ctx_proc_signal(ctx_proc_t *p, int sig)
{
	if (!p || sig < 0 || sig >= NSIG)
		return EINVAL;
	pthread_mutex_lock(&p->mu);
	int e = p->reaped ? ESRCH : send_locked(p, sig);
	pthread_mutex_unlock(&p->mu);
	return e;
}

/* ---- spawning ------------------------------------------------------ */

/* The child's end of each pipe, closed in the parent after the spawn,
 * and what pass_ctx hands the child (pass.h). */
struct plumbing {
	int child[3];
	struct ctx__pass pass;
};

/* A pipe for stdio n: the parent's end in p->fd[n], the child's in
 * pl->child[n].  Both are close-on-exec (dup2 in the child clears it on
 * n) and at 3 or above, so no dup2 is a no-op that keeps the flag. */
static int make_pipe(ctx_proc_t *p, struct plumbing *pl, int n)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return errno;
	int e = ctx__above_stdio(fds);
	if (e)
		return e;
	int mine = n == 0 ? 1 : 0; /* the parent writes stdin, reads others */
	p->fd[n] = fds[mine];
	pl->child[n] = fds[!mine];
	return 0;
}

static int plumb(ctx_proc_t *p, struct plumbing *pl,
		 posix_spawn_file_actions_t *fa, const struct ctx_proc_attr *a)
{
	for (int n = 0; n < 3; n++) {
		int e = 0;
		switch (a->stdio[n]) {
		case CTX_STDIO_INHERIT:
			break;
		case CTX_STDIO_NULL:
			e = posix_spawn_file_actions_addopen(
				fa, n, "/dev/null", n ? O_WRONLY : O_RDONLY, 0);
			break;
		case CTX_STDIO_PIPE:
			e = make_pipe(p, pl, n);
			if (!e)
				e = posix_spawn_file_actions_adddup2(
					fa, pl->child[n], n);
			break;
		case CTX_STDIO_FD:
			e = a->fd[n] < 0 ? EBADF :
			    posix_spawn_file_actions_adddup2(fa, a->fd[n], n);
			break;
		default:
			e = EINVAL;
		}
		if (e)
			return e;
	}
	if (a->dir)
		return posix_spawn_file_actions_addchdir_np(fa, a->dir);
	return 0;
}

/* A clean signal mask and default dispositions in the child, and its
 * own process group if asked. */
static int set_attr(posix_spawnattr_t *sa, const struct ctx_proc_attr *a)
{
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (a->new_group)
		flags |= POSIX_SPAWN_SETPGROUP;
	int e = posix_spawnattr_setflags(sa, flags);
	if (!e)
		e = posix_spawnattr_setsigmask(sa, &none);
	if (!e)
		e = posix_spawnattr_setsigdefault(sa, &all);
	if (!e && a->new_group)
		e = posix_spawnattr_setpgroup(sa, 0);
	return e;
}

static int check_attr(const struct ctx_proc_attr *a)
{
	if (a->cancel_signal < 0 || a->cancel_signal >= NSIG ||
	    a->wait_delay < 0)
		return EINVAL;
	return 0;
}

/* posix_spawn, then the pidfd where the kernel has them (without one,
 * ENOSYS or EMFILE, the pid serves: see the top).  The pid, and with
 * pass_ctx the parent's end of the child's descriptor, are stored under
 * p->mu, and a ctx that ended before then is acted on here: its
 * after-func found no process to signal. */
static int start(ctx_proc_t *p, const char *file, char *const argv[],
		 const struct ctx_proc_attr *a, struct plumbing *pl,
		 posix_spawn_file_actions_t *fa, posix_spawnattr_t *sa)
{
	char *const *envp = pl->pass.envp ? pl->pass.envp :
			    a->envp ? (char *const *)a->envp : environ;
	pid_t pid;
	int e = strchr(file, '/') ? posix_spawn(&pid, file, fa, sa, argv, envp)
				  : posix_spawnp(&pid, file, fa, sa, argv, envp);
	if (e)
		return e;
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	pthread_mutex_lock(&p->mu);
	p->pid = pid;
	p->pidfd = pidfd;
	p->pass_fd = pl->pass.wr;
	pl->pass.wr = -1;
	if (ctx_err(p->ctx))
		cancel_locked(p);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int arm_cancel(ctx_proc_t *p)
{
	atomic_fetch_add(&p->refs, 1);
	p->cancel_after = ctx_after_func(p->ctx, on_cancel, p);
	if (p->cancel_after)
		return 0;
	atomic_fetch_sub(&p->refs, 1);
	return errno;
}

static ctx_proc_t *proc_new(ctx_t *ctx, const struct ctx_proc_attr *a)
{
	ctx_proc_t *p = ctx__malloc(sizeof(*p));
	if (!p)
		return NULL;
	*p = (ctx_proc_t){ .pid = -1, .pidfd = -1, .fd = { -1, -1, -1 },
			   .pass_fd = -1,
			   .cancel_signal = a->cancel_signal ? a->cancel_signal
							     : SIGKILL,
			   .wait_delay = a->wait_delay, .group = a->new_group };
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->mu, NULL);
	p->ctx = ctx_ref(ctx);
	return p;
}

/* Undo a spawn that failed before a process existed.  An after-func
 * that already fired finds no pid and only drops its share. */
static void proc_discard(ctx_proc_t *p)
{
	stop_after(p, p->cancel_after);
	for (int n = 0; n < 3; n++)
		if (p->fd[n] >= 0)
			close(p->fd[n]);
	ctx_unref(p->ctx);
	put(p);
}

static int spawn(ctx_proc_t *p, const char *file, char *const argv[],
		 const struct ctx_proc_attr *a)
{
	struct plumbing pl = { .child = { -1, -1, -1 },
			       .pass = { .rd = -1, .wr = -1 } };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	int e = posix_spawn_file_actions_init(&fa);
	if (e)
		return e;
	if (!(e = posix_spawnattr_init(&sa))) {
		e = plumb(p, &pl, &fa, a);
		if (!e)
			e = set_attr(&sa, a);
		if (!e && a->pass_ctx)
			e = ctx__pass_prepare(&pl.pass, p->ctx, a->envp, &fa);
		if (!e)
			e = start(p, file, argv, a, &pl, &fa, &sa);
		posix_spawnattr_destroy(&sa);
	}
	posix_spawn_file_actions_destroy(&fa);
	for (int n = 0; n < 3; n++)
		if (pl.child[n] >= 0)
			close(pl.child[n]);
	ctx__pass_after(&pl.pass);
	return e;
}

int ctx_proc_spawn(ctx_proc_t **pp, ctx_t *ctx, const char *file,
		   char *const argv[], const struct ctx_proc_attr *attr)
{
	static const struct ctx_proc_attr defaults;
	const struct ctx_proc_attr *a = attr ? attr : &defaults;
	if (!pp || !ctx || !file || !argv || !argv[0])
		return EINVAL;
	*pp = NULL;
	int e = check_attr(a);
	if (e)
		return e;
	if ((e = ctx_err(ctx)))
		return e; /* Go's Start refuses a done context too */
	ctx_proc_t *p = proc_new(ctx, a);
	if (!p)
		return ENOMEM;
	/* The kill on cancel is armed before the process exists: nothing
	 * that can fail is left once the program runs. */
	if ((e = arm_cancel(p)) || (e = spawn(p, file, argv, a))) {
		proc_discard(p);
		return e;
	}
	*pp = p;
	return 0;
}

/* ---- output -------------------------------------------------------- */

/* The output collected so far: malloc'd, NUL-terminated at n. */
struct outbuf {
	char *buf;
	size_t cap, n;
};

/* Room for at least 2 KiB more and the NUL. */
static int outbuf_room(struct outbuf *o)
{
	if (o->cap - o->n >= 2048)
		return 0;
	size_t cap = o->cap ? o->cap * 2 : 4096;
	char *b = realloc(o->buf, cap);
	if (!b)
		return ENOMEM;
	o->buf = b;
	o->cap = cap;
	return 0;
}

/* Read fd to its end, or until ctx ends or a read fails. */
static int slurp(ctx_t *ctx, int fd, struct outbuf *o)
{
	for (;;) {
		int e = outbuf_room(o);
		if (e)
			return e;
		ssize_t r = ctx_read(ctx, fd, o->buf + o->n, o->cap - o->n - 1);
		if (r <= 0)
			return r < 0 ? errno : 0;
		o->n += (size_t)r;
	}
}

/*
 * After ctx ended the read and the process was killed and reaped: what
 * it wrote before it died and the read had not taken yet is still in the
 * pipe.  The page promises it to the caller, so it is read without
 * waiting (ctx_read refuses a done context even with bytes there), and
 * only as much as is there now: a descendant that outlived the kill may
 * hold the pipe open and keep writing, and must not hold the call.
 * The descriptor is the library's own, so its flags may change.
 */
static void drain(int fd, struct outbuf *o)
{
	int fl = fcntl(fd, F_GETFL), avail = 0;
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    ioctl(fd, FIONREAD, &avail) < 0)
		return;
	for (size_t left = (size_t)avail; left && !outbuf_room(o);) {
		size_t room = o->cap - o->n - 1;
		ssize_t r = read(fd, o->buf + o->n, room < left ? room : left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		o->n += (size_t)r;
		left -= (size_t)r;
	}
}

int ctx_proc_output(ctx_t *ctx, char *const argv[], char **out,
		    size_t *outlen, int *status)
{
	if (!ctx || !argv || !argv[0] || !out)
		return EINVAL;
	*out = NULL;
	struct ctx_proc_attr a = { .stdio[1] = CTX_STDIO_PIPE };
	ctx_proc_t *p;
	int e = ctx_proc_spawn(&p, ctx, argv[0], argv, &a);
	if (e)
		return e;
	struct outbuf o = { 0 };
	/* A read ended by ctx is not the answer: ctx also kills the
	 * process, and the wait reports that. */
	int re = slurp(ctx, p->fd[1], &o);
	bool by_ctx = re && re == ctx_err(ctx);
	if (re && !by_ctx)
		ctx_proc_signal(p, SIGKILL); /* nobody will read the rest */
	e = ctx_proc_wait(p, status);
	if (by_ctx && o.buf)
		drain(p->fd[1], &o);
	ctx_proc_free(p);
	if (o.buf)
		o.buf[o.n] = '\0';
	*out = o.buf;
	if (outlen)
		*outlen = o.n;
	return e ? e : re; /* a short read is an error even if it exited */
}
