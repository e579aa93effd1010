/*
 * bench_scale: libctx with many threads, beside the condvar approach
 * (bench/condctx.c, whose reads poll in 10 ms slices).
 *
 *  rest/<what>     10,000 threads (--quick: 1,000), 64 KiB stacks, each
 *                  blocked in a read on its own silent socket (one end of
 *                  a UNIX socketpair; the other end stays open, unwritten)
 *                  under its own child context of one root -- a server's
 *                  connections at rest.  Measured once all are in the
 *                  read: rss_per_thread (bytes: /proc/self/statm resident
 *                  growth from before the first thread, / threads; each
 *                  variant runs in a process of its own, so that no
 *                  stack glibc cached from the other is already there),
 *                  fds_per_thread (descriptors beyond the two of each
 *                  socketpair, / threads), cpu_ms_per_s (getrusage
 *                  RUSAGE_SELF user + sys over 1 s at rest; --quick:
 *                  0.2 s), then stop_all (ns from one cancel of the root
 *                  until the last thread is back from its read; every
 *                  read must end with the context's ECANCELED).
 *                  libctx: every thread is seen asleep in a system call
 *                  (/proc/self/task/<tid>/stat and syscall) before the
 *                  rest begins.  condvar: its threads wake every 10 ms,
 *                  so one is often found running, and on a small machine
 *                  thousands of them keep every CPU busy: there each
 *                  thread has only said it entered condctx_read.
 *                  Needs about 4 descriptors a thread: RLIMIT_NOFILE is
 *                  raised to the hard limit (and, as root, the hard limit
 *                  with it); with too few the rows are skipped and a
 *                  "# rest: skipped: ..." line says why.
 *  sweep/<op>/T=<t>  the context operations on t threads at once, t = 1,
 *                  2, 4, ... up to the online CPUs (and that count
 *                  itself): "WithCancel" each thread repeatedly makes a
 *                  child of one shared parent, cancels and releases it;
 *                  "Err" each thread calls ctx_err on one shared live
 *                  context.  Value: ns per operation per thread (wall
 *                  time of n operations on each thread, / n), median of
 *                  runs: flat across t means the operation scales.
 *
 * Output: "# " comment lines, and one line per number,
 *
 *	name,variant,value
 *
 * (variant libctx or condvar), as bench_condvar's.  Exit status 1, with
 * a message on stderr, when something did not happen as measured.
 *
 *	bench_scale [--quick]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "condctx.h"
#include "ctx.h"

#define STACK (64 * 1024)
#define SLICE (10 * CTX_MSEC)   /* condctx_read's poll slice */
#define STUCK_NS (30 * CTX_SEC) /* 10,000 threads on 2 CPUs take a while */
#define CONDVAR_PER_CPU 500     /* condvar threads at rest, per CPU */
#define FDS_RESERVE 128         /* descriptors kept for everything else */

static struct bench B;

/* A thread blocked in libctx sleeps in poll (epoll backend), epoll or
 * io_uring_enter; never in futex for a read, but allow it. */
static const long wait_calls[] = {
#ifdef SYS_poll
	SYS_poll,
#endif
	SYS_ppoll, SYS_epoll_pwait,
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
	SYS_io_uring_enter, SYS_futex,
	-1,
};

static void put(const char *name, const char *variant, double v)
{
	printf(v < 10 && v > -10 ? "%s,%s,%.3f\n" : "%s,%s,%.1f\n", name,
	       variant, v);
	fflush(stdout);
}

/* ---- 1. many threads at rest ------------------------------------------- */

struct rest;
struct rest_thread {
	struct rest *s;
	pthread_t th;
	_Atomic pid_t tid;
	void *ctx;              /* ctx_t or struct condctx */
	int fds[2];             /* fds[0] is read; nothing is written */
	int64_t t1;             /* back from the read */
	bool ok;
};

struct rest {
	bool condvar;
	int n;
	_Atomic uint32_t ready, woke, done;
	struct rest_thread *t;
};

static void *rest_main(void *p)
{
	struct rest_thread *me = p;
	struct rest *s = me->s;
	ssize_t n;
	char b;

	atomic_store(&me->tid, bench_tid());
	atomic_fetch_add(&s->ready, 1);
	if (s->condvar) {
		n = condctx_read(me->ctx, me->fds[0], &b, 1, SLICE);
		me->ok = n == -1 && errno == ECANCELED;
	} else {
		n = ctx_read(me->ctx, me->fds[0], &b, 1);
		me->ok = n == -1 && errno == CTX_CANCELED;
	}
	me->t1 = ctx_now();
	if (atomic_fetch_add(&s->woke, 1) + 1 == (uint32_t)s->n) {
		atomic_store_explicit(&s->done, 1, memory_order_release);
		bench_futex_wake(&s->done, 1);
	}
	return NULL;
}

/* Resident bytes of the process, from /proc/self/statm. */
static size_t rss_bytes(void)
{
	char buf[128];
	unsigned long size, res;

	if (bench_read_small("/proc/self/statm", buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%lu %lu", &size, &res) != 2)
		bench_fail("cannot read /proc/self/statm");
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static int64_t cpu_ns(void)
{
	struct rusage r;

	if (getrusage(RUSAGE_SELF, &r))
		bench_fail("getrusage: %s", strerror(errno));
	return ((int64_t)r.ru_utime.tv_sec + r.ru_stime.tv_sec) * CTX_SEC +
	       ((int64_t)r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1000;
}

/*
 * The other ends of the sockets live in a keeper process, as a server's
 * clients do: each socketpair's far end is passed to it (SCM_RIGHTS) and
 * closed here, so that this process holds one descriptor per connection
 * and the limit goes further.  The keeper holds them, unwritten, until
 * the control socket closes, then exits.
 */
struct keeper {
	pid_t pid;
	int ctl;
};

static void keeper_main(int ctl)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (;;) {
		char b, cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(ctl, &m, 0);

		if (n <= 0 && !(n < 0 && errno == EINTR))
			_exit(0); /* closing its descriptors ends the reads */
		/* A descriptor the keeper had no room for is dropped by the
		 * kernel: its reader sees end-of-file, and the run fails. */
	}
}

static void keeper_start(struct keeper *k)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		bench_fail("keeper: socketpair: %s", strerror(errno));
	fflush(stdout);
	k->pid = fork();
	if (k->pid < 0)
		bench_fail("keeper: fork: %s", strerror(errno));
	if (k->pid == 0) {
		close(sv[0]);
		keeper_main(sv[1]);
	}
	close(sv[1]);
	k->ctl = sv[0];
}

static void keeper_give(struct keeper *k, int fd)
{
	char b = 0, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	memset(cbuf, 0, sizeof(cbuf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(k->ctl, &m, MSG_NOSIGNAL) != 1)
		bench_fail("keeper: sendmsg: %s", strerror(errno));
	close(fd);
}

static void keeper_stop(struct keeper *k)
{
	int st;

	close(k->ctl);
	if (waitpid(k->pid, &st, 0) != k->pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		bench_fail("keeper: did not exit cleanly");
}

/* How many threads the descriptor limit allows, at most `want`: each
 * holds its socket and libctx's reactor descriptors (an eventfd; the
 * ring too on io_uring).  Raises the soft limit to the hard one (and, as
 * root with the capability, the hard one with it). */
static int threads_that_fit(int want, rlim_t *limit)
{
	int per = strcmp(ctx_backend(), "io_uring") ? 2 : 3;
	rlim_t need = (rlim_t)want * (rlim_t)per + FDS_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_max < need) {
		struct rlimit up = { need, need };
		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			bench_fail("setrlimit: %s", strerror(errno));
	}
	*limit = rl.rlim_cur;
	if (rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur < FDS_RESERVE ? 0 :
	       (int)((rl.rlim_cur - FDS_RESERVE) / (rlim_t)per);
}

static void *rest_ctx(const struct rest *s, void *parent)
{
	void *c = s->condvar ? (void *)condctx_with_cancel(parent) :
			       (void *)ctx_with_cancel(parent);

	if (!c)
		bench_fail("with_cancel: %s", strerror(errno));
	return c;
}

static void rest_cancel(const struct rest *s, void *c)
{
	if (s->condvar)
		condctx_cancel(c);
	else
		ctx_cancel(c);
}

static void rest_release(const struct rest *s, void *c)
{
	if (s->condvar)
		condctx_release(c);
	else
		ctx_release(c);
}

/* Threads 0..made-1 were started: stop and free them all.  Returns how
 * many stopped with the context's error. */
static int rest_teardown(struct rest *s, void *root, int made)
{
	int good = 0;

	rest_cancel(s, root);
	for (int i = 0; i < made; i++) {
		struct rest_thread *t = &s->t[i];

		pthread_join(t->th, NULL);
		good += t->ok;
		rest_release(s, t->ctx);
		close(t->fds[0]);
	}
	rest_release(s, root);
	return good;
}

/* Returns false (with why) if the threads could not all be made. */
static bool rest_variant(bool condvar, int n, int64_t rest_ns, char *why,
			 size_t len)
{
	const char *variant = condvar ? "condvar" : "libctx";
	struct rest *s = calloc(1, sizeof(*s));
	size_t rss0, rss1;
	int fds0, fds1, spins = 0, good, e;
	int64_t c0, c1, w0, w1, t0, t1 = INT64_MIN, limit, start;
	pthread_attr_t attr;
	struct keeper k;
	void *root;
	char what[64];

	if (!s || !(s->t = calloc((size_t)n, sizeof(*s->t))))
		bench_fail("out of memory");
	/* Touch the array now, so that the resident growth is the
	 * threads'. */
	memset(s->t, 0, (size_t)n * sizeof(*s->t));
	snprintf(what, sizeof(what), "rest/%s", variant);
	s->condvar = condvar;
	s->n = n;
	start = ctx_now();
	keeper_start(&k);
	rss0 = rss_bytes();
	fds0 = bench_count_fds();
	root = rest_ctx(s, condvar ? (void *)condctx_background() :
				     (void *)ctx_background());
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK);
	for (int i = 0; i < n; i++) {
		struct rest_thread *t = &s->t[i];

		t->s = s;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t->fds))
			bench_fail("%s: socketpair #%d: %s", what, i,
				   strerror(errno));
		keeper_give(&k, t->fds[1]);
		t->fds[1] = -1;
		t->ctx = rest_ctx(s, root);
		if ((e = pthread_create(&t->th, &attr, rest_main, t))) {
			snprintf(why, len, "%s: pthread_create #%d of %d: %s "
				 "(threads-max, pids.max or memory)", what, i,
				 n, strerror(e));
			rest_release(s, t->ctx);
			close(t->fds[0]);
			s->n = i;
			pthread_attr_destroy(&attr);
			rest_teardown(s, root, i);
			keeper_stop(&k);
			free(s->t);
			free(s);
			return false;
		}
	}
	pthread_attr_destroy(&attr);
	limit = ctx_now() + STUCK_NS;
	while (atomic_load(&s->ready) != (uint32_t)n)
		bench_give_way(&spins, limit, what);
	if (!condvar)
		for (int i = 0; i < n; i++)
			bench_await_blocked(atomic_load(&s->t[i].tid),
					    wait_calls, STUCK_NS, what);
	printf("# %s: %d threads made and waiting in %.1f s\n", what, n,
	       (double)(ctx_now() - start) / CTX_SEC);
	rss1 = rss_bytes();
	fds1 = bench_count_fds();

	/* The rest: only the blocked threads can burn CPU now. */
	c0 = cpu_ns();
	w0 = ctx_now();
	bench_nap_ns(rest_ns);
	c1 = cpu_ns();
	w1 = ctx_now();
	if (atomic_load(&s->woke))
		bench_fail("%s: a read returned before the cancel", what);

	t0 = ctx_now();
	rest_cancel(s, root);
	bench_await_word(&s->done, 1, STUCK_NS, what);
	for (int i = 0; i < n; i++)
		if (s->t[i].t1 > t1)
			t1 = s->t[i].t1;
	if (t1 < t0)
		bench_fail("%s: back before the cancel", what);
	good = rest_teardown(s, root, n);
	keeper_stop(&k);
	if (good != n)
		bench_fail("%s: %d of %d reads ended with the context's error",
			   what, good, n);
	put("rest/rss_per_thread", variant,
	    ((double)rss1 - (double)rss0) / n);
	put("rest/fds_per_thread", variant,
	    ((double)(fds1 - fds0) - (double)n) / n);
	put("rest/cpu_ms_per_s", variant,
	    (double)(c1 - c0) / 1e6 / ((double)(w1 - w0) / CTX_SEC));
	put("rest/stop_all", variant, (double)(t1 - t0));
	free(s->t);
	free(s);
	return true;
}

/*
 * Each variant in a process of its own: glibc keeps the stacks of exited
 * threads for reuse, so a second variant in the same process would find
 * its stacks resident already, and its RSS growth would be too small.
 * Returns false when the variant was skipped (the child says why).
 */
static bool rest_in_child(bool condvar, int n, int64_t rest_ns)
{
	char why[256];
	pid_t pid;
	int st;

	fflush(stdout);
	if ((pid = fork()) < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		alarm(B.quick ? 120 : 600); /* alarms are not inherited */
		if (!rest_variant(condvar, n, rest_ns, why, sizeof(why))) {
			printf("# rest: skipped: %s\n", why);
			fprintf(stderr, "bench_scale: rest rows skipped: %s\n",
				why);
			fflush(stdout);
			_exit(3);
		}
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid)
		bench_fail("waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		return false;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		bench_fail("rest/%s did not finish right (status %#x)",
			   condvar ? "condvar" : "libctx", st);
	return true;
}

static void bench_rest(void)
{
	int want = B.quick ? 1000 : 10000, n, nc;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int cpus = online < 1 ? 1 : online > 1024 ? 1024 : (int)online;
	int64_t rest_ns = B.quick ? 200 * CTX_MSEC : CTX_SEC;
	rlim_t limit;
	char why[256];

	n = threads_that_fit(want, &limit);
	printf("# rest: %d threads (%d KiB stacks), each in a read on its own "
	       "silent UNIX socket (the far ends held by a keeper process) "
	       "under its own child of one root; RSS from /proc/self/statm; "
	       "CPU = getrusage user+sys over %.1f s; stop_all = one cancel "
	       "of the root until the last thread is back\n", n, STACK / 1024,
	       (double)rest_ns / CTX_SEC);
	printf("# rest threads: %d\n", n);
	if (n < want)
		printf("# rest: only %d of the %d threads asked for: the "
		       "descriptor limit (RLIMIT_NOFILE) is %llu and cannot be "
		       "raised here (each thread holds its socket and libctx's "
		       "eventfd)\n", n, want, (unsigned long long)limit);
	if (n < want / 10) {
		snprintf(why, sizeof(why), "the descriptor limit %llu allows "
			 "%d threads: raise it (ulimit -Hn) to run these rows",
			 (unsigned long long)limit, n);
		printf("# rest: skipped: %s\n", why);
		fprintf(stderr, "bench_scale: rest rows skipped: %s\n", why);
		return;
	}
	/* The condvar threads wake every slice: 100 wake-ups a second
	 * each.  Past about 500 of them per CPU the machine does little
	 * else (measured: 10,000 on 2 CPUs keep both busy, starve the main
	 * thread and did not finish in 10 minutes), so the condvar column
	 * is measured with at most that many; its per-thread figures
	 * compare, its stop_all is for that count. */
	nc = n;
	if (nc > CONDVAR_PER_CPU * cpus)
		nc = CONDVAR_PER_CPU * cpus;
	printf("# rest condvar threads: %d (at most %d per online CPU: each "
	       "polls %d times a second)\n", nc, CONDVAR_PER_CPU,
	       (int)(CTX_SEC / SLICE));
	for (int condvar = 0; condvar < 2; condvar++)
		if (!rest_in_child(condvar, condvar ? nc : n, rest_ns))
			return;
}

/* ---- 2. the thread sweep ------------------------------------------------- */

struct sweep_arg {
	const char *name;
	bool condvar;
	bool create;            /* WithCancel under shared; else Err */
	void *shared;
	_Atomic uint64_t bad;
};

static void run_sweep(void *p, int tid, uint64_t n)
{
	struct sweep_arg *a = p;
	uint64_t bad = 0;

	(void)tid;
	if (a->create && a->condvar) {
		for (uint64_t i = 0; i < n; i++) {
			struct condctx *c = condctx_with_cancel(a->shared);
			if (!c) {
				bad++;
				continue;
			}
			condctx_cancel(c);
			bad += condctx_err(c) != ECANCELED;
			condctx_release(c);
		}
	} else if (a->create) {
		for (uint64_t i = 0; i < n; i++) {
			ctx_t *c = ctx_with_cancel(a->shared);
			if (!c) {
				bad++;
				continue;
			}
			ctx_cancel(c);
			bad += ctx_err(c) != CTX_CANCELED;
			ctx_release(c);
		}
	} else if (a->condvar) {
		for (uint64_t i = 0; i < n; i++)
			bad += condctx_err(a->shared) != 0;
	} else {
		for (uint64_t i = 0; i < n; i++)
			bad += ctx_err(a->shared) != 0;
	}
	if (bad)
		atomic_fetch_add(&a->bad, bad);
}

/* ns per operation per thread: wall time of n operations on each of t
 * threads, / n; the median of B.reps runs.  n is calibrated on one
 * thread and kept for every t: calibrated on t threads, a start delayed
 * by other work on the machine could settle on a tiny n, and then the
 * delay would be most of the figure. */
static void sweep_row(struct sweep_arg *a, int t)
{
	struct bench_spec one = { .name = a->name, .fn = run_sweep, .arg = a,
				  .threads = 1 };
	struct bench_spec s = one;
	double ns[BENCH_MAX_REPS];
	uint64_t n = bench_calibrate(&B, &one);
	char name[64];

	s.threads = t;

	for (int i = 0; i < B.reps; i++)
		ns[i] = (double)bench_time(&s, n) / (double)n;
	qsort(ns, (size_t)B.reps, sizeof(ns[0]), bench_cmp_dbl);
	if (atomic_load(&a->bad))
		bench_fail("sweep/%s/%s: %llu operations had the wrong result",
			   a->name, a->condvar ? "condvar" : "libctx",
			   (unsigned long long)atomic_load(&a->bad));
	snprintf(name, sizeof(name), "sweep/%s/T=%d", a->name, t);
	put(name, a->condvar ? "condvar" : "libctx", ns[B.reps / 2]);
}

static void bench_sweep(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int max = online < 1 ? 1 :
		  online > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : (int)online;
	int ts[16], nt = 0;

	for (int t = 1; t <= max && nt < 15; t *= 2)
		ts[nt++] = t;
	if (ts[nt - 1] != max)
		ts[nt++] = max;
	printf("# sweep: WithCancel = with_cancel(shared parent) + cancel + "
	       "err + release on every thread; Err = err of one shared live "
	       "context; ns per operation per thread, median of %d runs of "
	       "~%lld ms\n", B.reps, (long long)(B.target_ns / 1000000));
	printf("# sweep threads:");
	for (int i = 0; i < nt; i++)
		printf(" %d", ts[i]);
	printf(" (online CPUs: %ld)\n", online);
	for (int condvar = 0; condvar < 2; condvar++) {
		void *shared = condvar ?
			(void *)condctx_with_cancel(condctx_background()) :
			(void *)ctx_with_cancel(ctx_background());

		if (!shared)
			bench_fail("with_cancel: %s", strerror(errno));
		for (int op = 0; op < 2; op++)
			for (int i = 0; i < nt; i++) {
				struct sweep_arg a = {
					.name = op ? "Err" : "WithCancel",
					.condvar = condvar,
					.create = !op,
					.shared = shared,
				};
				sweep_row(&a, ts[i]);
			}
		if (condvar) {
			if (condctx_err(shared))
				bench_fail("sweep: the shared parent ended");
			condctx_release(shared);
		} else {
			if (ctx_err(shared))
				bench_fail("sweep: the shared parent ended");
			ctx_release(shared);
		}
	}
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int64_t start;

	bench_init(&B, argc, argv);
	start = ctx_now();
	alarm(B.quick ? 120 : 600); /* watchdog: a hang is a failure */
	bench_print_machine("bench_scale: many threads at rest, and the "
			    "context operations on 1..CPUs threads");
	printf("# libctx backend: %s; condvar = bench/condctx.c (reads poll "
	       "in %lld ms slices)\n", ctx_backend(),
	       (long long)(SLICE / CTX_MSEC));
	printf("# rows: name,variant,value\n");
	fflush(stdout);
	bench_section("rest", bench_rest);
	bench_section("sweep", bench_sweep);
	printf("# checks passed: every read ended with the context's error, "
	       "every operation returned what it had to\n");
	printf("# run took %.1f s%s\n", (double)(ctx_now() - start) / CTX_SEC,
	       B.quick ? " (--quick)" : "");
	return 0;
}
