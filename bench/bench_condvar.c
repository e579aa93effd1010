/*
 * bench_condvar: libctx beside what users write without it -- a context
 * on a mutex, a condition variable and a flag (condctx.c) and, when a
 * C++20 compiler built it, std::stop_token (stoptoken.cc) -- and beside
 * the raw kernel floor (a thread in epoll_wait on an eventfd that the
 * canceller writes, with nothing on top).
 *
 * bench_wait and bench_context already measure libctx and the floor for
 * many of these scenarios; bench/run.sh folds their rows into the same
 * table.  This program measures what they do not: the condvar and
 * stop_token columns (but for fan-out's condvar, which bench_wait has),
 * and every column of the scenarios that are new here.  Every implementation goes through the same code (the
 * table of impl.h), so that only the implementation differs.
 *
 *  wake/<cpus>/<op>    cancel -> wake latency of one thread blocked in a
 *                      sleep (1 h), a wait, a read (empty pipe) or a join
 *                      (of a thread that does not finish): from just
 *                      before the cancel to just after the call returned.
 *                      samecpu: both threads on the first allowed CPU;
 *                      crosscpu: the waiter on the second.  The waiter is
 *                      seen asleep in a system call first (/proc).  A
 *                      polling read is stopped at a random moment of its
 *                      slice (uniform over one slice): cancelling just as
 *                      it began to sleep would always cost a whole slice.
 *  stopread            a thread blocked in read on a silent TCP socket
 *                      for a random 1..21 ms is cancelled; time until its
 *                      read returns.  Nothing pinned.  condvar and
 *                      stop_token poll in 10 ms slices; condvar-1ms in
 *                      1 ms slices.
 *  fanout/<N>          N threads wait on one context; one cancel; time
 *                      until the last is back (stop_token: bench_wait
 *                      has the rest).
 *  lateness/<d>/<how>  a sleep of d, and a wait on a context whose
 *                      deadline is d away: how late the call returned.
 *  hotpath/<fd>        ns per 1-byte read with the data already there.
 *  create/<what>       ns to create and cancel+release contexts.
 *  idle                1,000 threads, each blocked in read on its own
 *                      silent socket under its own context (children of
 *                      one root), for 1 s (--quick: 0.1 s): CPU time the
 *                      process burned meanwhile (getrusage RUSAGE_SELF,
 *                      user + sys) and wake-ups (context switches), then
 *                      the time one cancel of the root takes to stop all
 *                      of them.  No condvar-1ms here (see bench_idle).
 *  bytes/, fds/        heap bytes (malloc's headers included) and
 *                      descriptors per live context, 1,000 and 1,000,000.
 *
 * Output on stdout: "# " comment lines (the machine, notes), and one
 * line per number:
 *
 *	name,variant,value
 *
 * where name ends in /p50 or /p99 for distributions (nearest-rank
 * percentiles, ns), and variant is libctx, condvar, condvar-1ms,
 * stop_token or floor.  With --samples DIR every distribution's raw
 * samples (ns, sorted) also go to DIR/<name>__<variant>.dat, for the
 * plot.
 *
 * Every scenario checks that what it timed happened: each wait ended
 * with the error it had to (ECANCELED, ETIMEDOUT, or 0 after a full
 * sleep), no wait ended early, every waiter woke, every byte read was
 * the one written, descriptors still carry data afterwards, joined
 * threads return their argument.  If not, it says so on stderr and
 * exits 1.
 *
 *	bench_condvar [--quick] [--stoptoken LIB.so] [--samples DIR]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "condctx.h"
#include "ctx.h"
#include "impl.h"

#define HOUR (3600 * CTX_SEC)
#define SLICE (10 * CTX_MSEC)      /* the polling approaches' slice */
#define SLICE_SHORT (1 * CTX_MSEC) /* ... and a shorter one, for contrast */
#define STUCK_NS (10 * CTX_SEC)    /* a wait this long means a bug */
#define THREAD_STACK (128 * 1024)
#define IDLE_THREADS 1000
#define FAN_MAX 1024

static struct bench B;
static const char *samples_dir;
static cpu_set_t all_cpus;
static int cpus[CPU_SETSIZE], ncpus, cpu_a = -1, cpu_b = -1;
static uint64_t rng = 0x9E3779B97F4A7C15ull; /* fixed: runs repeat */

/* ---- the implementations --------------------------------------------- */

/* A thread body with its argument, for the adapters below: the
 * benchmark's threads do not use the context they are given. */
struct body {
	void *(*fn)(void *arg);
	void *arg;
};

static struct body *body_new(void *(*fn)(void *), void *arg)
{
	struct body *b = malloc(sizeof(*b));

	if (b)
		*b = (struct body){ fn, arg };
	return b;
}

static void *body_run(struct body *p)
{
	struct body b = *p;

	free(p);
	return b.fn(b.arg);
}

static void *lc_background(void) { return ctx_background(); }
static void *lc_with_cancel(void *p) { return ctx_with_cancel(p); }
static void *lc_with_deadline(void *p, int64_t d)
{
	return ctx_with_deadline(p, d);
}
static void lc_cancel(void *c) { ctx_cancel(c); }
static void lc_release(void *c) { ctx_release(c); }
static int lc_err(void *c) { return ctx_err(c); }
static int lc_wait(void *c) { return ctx_wait(c); }
static int lc_sleep(void *c, int64_t d) { return ctx_sleep(c, d); }
static ssize_t lc_read(void *c, int fd, void *buf, size_t len, int64_t s)
{
	(void)s; /* no slices: a cancel interrupts the wait itself */
	return ctx_read(c, fd, buf, len);
}
static void *lc_thread_main(ctx_t *c, void *b)
{
	(void)c;
	return body_run(b);
}
static int lc_thread_create(void **t, void *c, void *(*fn)(void *), void *a)
{
	struct body *b = body_new(fn, a);
	int e;

	if (!b)
		return ENOMEM;
	if ((e = ctx_thread_create((ctx_thread_t **)t, c, lc_thread_main, b)))
		free(b);
	return e;
}
static int lc_thread_join(void *c, void *t, void **r)
{
	return ctx_thread_join(c, t, r);
}

static const struct bench_impl libctx_impl = {
	.name = "libctx",
	.background = lc_background,
	.with_cancel = lc_with_cancel,
	.with_deadline = lc_with_deadline,
	.cancel = lc_cancel,
	.release = lc_release,
	.err = lc_err,
	.wait = lc_wait,
	.sleep = lc_sleep,
	.read = lc_read,
	.thread_create = lc_thread_create,
	.thread_join = lc_thread_join,
};

static void *cc_background(void) { return condctx_background(); }
static void *cc_with_cancel(void *p) { return condctx_with_cancel(p); }
static void *cc_with_deadline(void *p, int64_t d)
{
	return condctx_with_deadline(p, d);
}
static void cc_cancel(void *c) { condctx_cancel(c); }
static void cc_release(void *c) { condctx_release(c); }
static int cc_err(void *c) { return condctx_err(c); }
static int cc_wait(void *c) { return condctx_wait(c); }
static int cc_sleep(void *c, int64_t d) { return condctx_sleep(c, d); }
static ssize_t cc_read(void *c, int fd, void *buf, size_t len, int64_t s)
{
	return condctx_read(c, fd, buf, len, s);
}
static void *cc_thread_main(struct condctx *c, void *b)
{
	(void)c;
	return body_run(b);
}
static int cc_thread_create(void **t, void *c, void *(*fn)(void *), void *a)
{
	struct body *b = body_new(fn, a);
	int e;

	if (!b)
		return ENOMEM;
	if ((e = condctx_thread_create((struct condctx_thread **)t, c,
				       cc_thread_main, b)))
		free(b);
	return e;
}
static int cc_thread_join(void *c, void *t, void **r)
{
	return condctx_thread_join(c, t, r);
}

static const struct bench_impl condvar_impl = {
	.name = "condvar",
	.background = cc_background,
	.with_cancel = cc_with_cancel,
	.with_deadline = cc_with_deadline,
	.cancel = cc_cancel,
	.release = cc_release,
	.err = cc_err,
	.wait = cc_wait,
	.sleep = cc_sleep,
	.read = cc_read,
	.thread_create = cc_thread_create,
	.thread_join = cc_thread_join,
};

/* What a row measures: an implementation (NULL: the floor) and, for the
 * polling ones, the slice. */
struct variant {
	const char *name;
	const struct bench_impl *impl;
	int64_t slice;
};

static const struct variant V_FLOOR = { "floor", NULL, 0 };
static const struct variant V_LIBCTX = { "libctx", &libctx_impl, 0 };
static const struct variant V_CONDVAR = { "condvar", &condvar_impl, SLICE };
static const struct variant V_CONDVAR_1MS = { "condvar-1ms", &condvar_impl,
					      SLICE_SHORT };
static struct variant V_STOPTOKEN = { "stop_token", NULL, SLICE };

static void *must_ctx(void *c, const char *what)
{
	if (!c)
		bench_fail("%s: %s", what, strerror(errno));
	return c;
}

/* ---- small helpers ------------------------------------------------------ */

/* xorshift64*: a reproducible spread of cancel moments. */
static uint64_t rand_below(uint64_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return n ? (rng * 0x2545F4914F6CDD1Dull) % n : 0;
}

/* The system calls any of the implementations sleeps in: futex
 * (condvars, libctx's parked waits), poll/ppoll (the slices), epoll
 * (libctx's reactor, the floor). */
static const long wait_calls[] = {
	SYS_futex, SYS_ppoll, SYS_epoll_pwait,
#ifdef SYS_poll
	SYS_poll,
#endif
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
#ifdef SYS_futex_waitv
	SYS_futex_waitv,
#endif
	-1,
};

static void raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			bench_fail("setrlimit: %s", strerror(errno));
	}
	if (rl.rlim_cur < need)
		bench_fail("need %llu descriptors; the hard limit is %llu",
			   (unsigned long long)need,
			   (unsigned long long)rl.rlim_cur);
}

static int make_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int e;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	e = pthread_create(th, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return e;
}

/* A connected TCP pair on the loopback interface: a socket as a server
 * has one.  Falls back to a UNIX socketpair where there is no network. */
static void tcp_pair(int fds[2], bool *was_tcp)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*was_tcp = false;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l >= 0 && !bind(l, (struct sockaddr *)&a, sizeof(a)) &&
	    !listen(l, 1) && !getsockname(l, (struct sockaddr *)&a, &alen)) {
		fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[1] >= 0 &&
		    !connect(fds[1], (struct sockaddr *)&a, sizeof(a)) &&
		    (fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			close(l);
			*was_tcp = true;
			return;
		}
		if (fds[1] >= 0)
			close(fds[1]);
	}
	if (l >= 0)
		close(l);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
		bench_fail("socketpair: %s", strerror(errno));
}

/* The descriptor still carries data after the waits on it: write a byte
 * at the other end, read it back through the implementation. */
static void check_still_reads(const struct variant *v, int rfd, int wfd,
			      const char *what)
{
	char out = 'z', in = 0;
	ssize_t n;

	if (write(wfd, &out, 1) != 1)
		bench_fail("%s: write: %s", what, strerror(errno));
	if (v->impl) {
		void *c = must_ctx(v->impl->with_cancel(v->impl->background()),
				   "with_cancel");
		n = v->impl->read(c, rfd, &in, 1, v->slice);
		v->impl->release(c);
	} else {
		n = read(rfd, &in, 1);
	}
	if (n != 1 || in != out)
		bench_fail("%s: the byte written after the waits did not "
			   "arrive (%zd)", what, n);
}

/* ---- statistics and output ---------------------------------------------- */

static void put(const char *name, const char *variant, double v)
{
	/* Small values (descriptors per context) need the decimals. */
	printf(v < 10 && v > -10 ? "%s,%s,%.3f\n" : "%s,%s,%.1f\n", name,
	       variant, v);
	fflush(stdout);
}

static void dump(const char *scen, const char *variant, const double *v,
		 int n)
{
	char path[512], *p;
	FILE *f;

	if (!samples_dir)
		return;
	p = path + snprintf(path, sizeof(path), "%s/", samples_dir);
	snprintf(p, sizeof(path) - (size_t)(p - path), "%s__%s.dat", scen,
		 variant);
	for (; *p; p++)
		if (*p == '/')
			*p = '_';
	if (!(f = fopen(path, "w")))
		bench_fail("cannot write %s: %s", path, strerror(errno));
	for (int i = 0; i < n; i++)
		fprintf(f, "%.1f\n", v[i]);
	if (fclose(f))
		bench_fail("cannot write %s", path);
}

/* p50 and p99 rows of n samples (sorted here), and the raw samples. */
static void dist_dbl(const char *scen, const char *variant, double *v, int n)
{
	char name[128];

	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	snprintf(name, sizeof(name), "%s/p50", scen);
	put(name, variant, v[bench_rank((size_t)n, 50)]);
	snprintf(name, sizeof(name), "%s/p99", scen);
	put(name, variant, v[bench_rank((size_t)n, 99)]);
	dump(scen, variant, v, n);
}

static void dist(const char *scen, const char *variant, const int64_t *v,
		 int n)
{
	double *d = malloc((size_t)n * sizeof(*d));

	if (!d)
		bench_fail("out of memory");
	for (int i = 0; i < n; i++)
		d[i] = (double)v[i];
	dist_dbl(scen, variant, d, n);
	free(d);
}

/* ---- 1. one waiter: cancel -> wake ---------------------------------------- */

enum op { OP_SLEEP, OP_WAIT, OP_READ, OP_JOIN };
static const char *const op_name[] = { "sleep", "wait", "read", "join" };

struct waiter {
	const struct variant *v;
	enum op op;
	int cpu;                    /* -1: not pinned */
	_Atomic pid_t tid;
	_Atomic uint32_t go;        /* round to run (futex word) */
	_Atomic uint32_t ready;     /* round about to block */
	_Atomic uint32_t done;      /* round finished (futex word) */
	bool quit;
	void *ctx;                  /* this round's context */
	int rfd, wfd;               /* read: nothing arrives on rfd */
	int efd, epfd;              /* the floor */
	void *joined;               /* join: a thread that does not finish */
	_Atomic uint32_t joined_quit; /* ... until this is set */
	int64_t t1;                 /* back from the call */
	int cpu_back;               /* ... on this CPU */
	bool ok;
	char why[128];
};

static void *joined_main(void *p)
{
	_Atomic uint32_t *quit = p;

	while (!atomic_load_explicit(quit, memory_order_acquire))
		bench_futex_wait(quit, 0, NULL);
	return p;
}

/* One blocking call of the round; sets w->t1, w->ok, w->why. */
static void waiter_call(struct waiter *w)
{
	const struct bench_impl *im = w->v->impl;
	int e = 0;

	if (!im) {
		struct epoll_event ev;
		eventfd_t val = 0;
		int n = epoll_wait(w->epfd, &ev, 1, -1);

		w->t1 = ctx_now();
		w->ok = n == 1 && ev.data.fd == w->efd &&
			!eventfd_read(w->efd, &val) && val == 1;
		if (!w->ok)
			snprintf(w->why, sizeof(w->why),
				 "epoll_wait %d, eventfd %llu", n,
				 (unsigned long long)val);
		return;
	}
	switch (w->op) {
	case OP_SLEEP:
		e = im->sleep(w->ctx, HOUR);
		break;
	case OP_WAIT:
		e = im->wait(w->ctx);
		break;
	case OP_READ: {
		char b;
		ssize_t n = im->read(w->ctx, w->rfd, &b, 1, w->v->slice);

		e = errno;
		if (n != -1) {
			w->t1 = ctx_now();
			w->ok = false;
			snprintf(w->why, sizeof(w->why), "read returned %zd",
				 n);
			return;
		}
		break;
	}
	case OP_JOIN: {
		void *r = NULL;

		e = im->thread_join(w->ctx, w->joined, &r);
		break;
	}
	}
	w->t1 = ctx_now();
	w->ok = e == ECANCELED;
	if (!w->ok)
		snprintf(w->why, sizeof(w->why), "%s returned %d (%s)",
			 op_name[w->op], e, ctx_strerror(e));
}

static void *waiter_main(void *p)
{
	struct waiter *w = p;

	if (w->cpu >= 0)
		bench_pin(w->cpu);
	atomic_store(&w->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		bench_await_round(&w->go, r);
		if (w->quit)
			break;
		atomic_store_explicit(&w->ready, r, memory_order_release);
		waiter_call(w);
		w->cpu_back = sched_getcpu();
		atomic_store_explicit(&w->done, r, memory_order_release);
		bench_futex_wake(&w->done, 1);
	}
	return NULL;
}

static void waiter_start(struct waiter *w, pthread_t *th, bool tcp)
{
	const struct bench_impl *im = w->v->impl;
	int fds[2], e;

	w->rfd = w->wfd = w->efd = w->epfd = -1;
	if (w->op == OP_READ) {
		bool was_tcp = false;

		if (tcp)
			tcp_pair(fds, &was_tcp);
		else if (pipe2(fds, O_CLOEXEC))
			bench_fail("pipe2: %s", strerror(errno));
		w->rfd = fds[0];
		w->wfd = fds[1];
	}
	if (!im) {
		struct epoll_event ev = { .events = EPOLLIN };

		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		ev.data.fd = w->efd;
		if (w->efd < 0 || w->epfd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev))
			bench_fail("eventfd/epoll: %s", strerror(errno));
		/* The floor of a read watches the silent descriptor too. */
		ev.data.fd = w->rfd;
		if (w->rfd >= 0 &&
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->rfd, &ev))
			bench_fail("epoll_ctl: %s", strerror(errno));
	}
	if (w->op == OP_JOIN && im &&
	    (e = im->thread_create(&w->joined, im->background(), joined_main,
				   &w->joined_quit)))
		bench_fail("%s thread_create: %s", im->name, strerror(e));
	if ((e = pthread_create(th, NULL, waiter_main, w)))
		bench_fail("pthread_create: %s", strerror(e));
}

static void waiter_stop(struct waiter *w, pthread_t th, uint32_t last,
			const char *what)
{
	const struct bench_impl *im = w->v->impl;

	w->quit = true;
	atomic_store_explicit(&w->go, last + 1, memory_order_release);
	bench_futex_wake(&w->go, 1);
	pthread_join(th, NULL);
	if (w->op == OP_JOIN && im) {
		void *r = NULL;
		int e;

		/* Every cancelled join left the thread joinable. */
		atomic_store_explicit(&w->joined_quit, 1,
				      memory_order_release);
		bench_futex_wake(&w->joined_quit, 1);
		e = im->thread_join(im->background(), w->joined, &r);
		if (e || r != &w->joined_quit)
			bench_fail("%s: final join: %d, result %p", what, e, r);
	}
	if (w->op == OP_READ) {
		check_still_reads(w->v, w->rfd, w->wfd, what);
		close(w->rfd);
		close(w->wfd);
	}
	if (w->efd >= 0)
		close(w->efd);
	if (w->epfd >= 0)
		close(w->epfd);
}

/*
 * One variant's share of a scenario: its waiter thread, the latencies of
 * its timed rounds, and how often the waiter came back on the CPU the
 * cancel was issued from.
 */
struct wake_run {
	const struct variant *v;
	struct waiter *w;
	pthread_t th;
	int64_t *lat;
	int n, same_cpu;
	int64_t phase_lo, phase_hi;
	char what[128];
};

static void wake_setup(struct wake_run *run, const char *scen,
		       const struct variant *v, enum op op, int cpu, bool tcp,
		       int rounds, int64_t phase_lo, int64_t phase_hi)
{
	*run = (struct wake_run){ .v = v, .phase_lo = phase_lo,
				  .phase_hi = phase_hi };
	run->w = calloc(1, sizeof(*run->w));
	run->lat = malloc((size_t)rounds * sizeof(*run->lat));
	if (!run->w || !run->lat)
		bench_fail("out of memory");
	snprintf(run->what, sizeof(run->what), "%s/%s", scen, v->name);
	run->w->v = v;
	run->w->op = op;
	run->w->cpu = cpu;
	waiter_start(run->w, &run->th, tcp);
}

/*
 * Round r: let the waiter block, see it asleep in a wait call, pause a
 * random time in [phase_lo, phase_hi) if asked, cancel, and time how
 * long until the call returned.
 */
static void wake_round(struct wake_run *run, uint32_t r, bool timed)
{
	struct waiter *w = run->w;
	const struct bench_impl *im = run->v->impl;
	int64_t limit = ctx_now() + STUCK_NS, t0;
	int spins = 0, cpu;

	if (im)
		w->ctx = must_ctx(im->with_cancel(im->background()),
				  "with_cancel");
	w->why[0] = '\0';
	atomic_store_explicit(&w->go, r, memory_order_release);
	bench_futex_wake(&w->go, 1);
	while (atomic_load_explicit(&w->ready, memory_order_acquire) != r)
		bench_give_way(&spins, limit, run->what);
	bench_await_blocked(atomic_load(&w->tid), wait_calls, STUCK_NS,
			    run->what);
	bench_settle();
	if (run->phase_hi > run->phase_lo)
		bench_nap_ns(run->phase_lo + (int64_t)rand_below(
				(uint64_t)(run->phase_hi - run->phase_lo)));
	cpu = sched_getcpu();
	t0 = ctx_now();
	if (im)
		im->cancel(w->ctx);
	else if (eventfd_write(w->efd, 1))
		bench_fail("eventfd_write: %s", strerror(errno));
	bench_await_word(&w->done, r, STUCK_NS, run->what);
	if (!w->ok)
		bench_fail("%s round %u: %s", run->what, r,
			   w->why[0] ? w->why : "wrong wake-up");
	if (w->t1 < t0)
		bench_fail("%s round %u: back before the cancel", run->what, r);
	if (timed) {
		run->lat[run->n++] = w->t1 - t0;
		run->same_cpu += w->cpu_back == cpu;
	}
	if (im)
		im->release(w->ctx);
	w->ctx = NULL;
}

static void wake_finish(struct wake_run *run, const char *scen, uint32_t last)
{
	waiter_stop(run->w, run->th, last, run->what);
	dist(scen, run->v->name, run->lat, run->n);
	free(run->lat);
	free(run->w);
}

/*
 * The variants of one scenario, round by round in turn rather than one
 * after the other: what the machine does meanwhile (a virtual CPU that
 * slows down for a while, another program, where the scheduler puts an
 * unpinned thread) then falls on all of them alike.
 */
static void wake_scenario(const char *scen, const struct variant *const *vs,
			  int nv, enum op op, int cpu, bool tcp, int warmup,
			  int rounds, int64_t phase_lo, const int64_t *phase_hi)
{
	struct wake_run run[8];

	if (nv > 8)
		bench_fail("%s: too many variants", scen);
	for (int i = 0; i < nv; i++)
		wake_setup(&run[i], scen, vs[i], op, cpu, tcp, rounds,
			   phase_hi ? phase_lo : 0, phase_hi ? phase_hi[i] : 0);
	for (int r = 1; r <= warmup + rounds; r++)
		for (int i = 0; i < nv; i++)
			wake_round(&run[i], (uint32_t)r, r > warmup);
	if (cpu < 0) {
		printf("# %s: waiter back on the canceller's CPU in", scen);
		for (int i = 0; i < nv; i++)
			printf("%s %.0f%% (%s)", i ? "," : "",
			       100.0 * run[i].same_cpu / rounds, vs[i]->name);
		printf(" of rounds\n");
	}
	for (int i = 0; i < nv; i++)
		wake_finish(&run[i], scen, (uint32_t)(warmup + rounds));
}

static void bench_wake(void)
{
	int rounds = B.quick ? 100 : 2000, warmup = B.quick ? 10 : 50;
	/* A polling read costs a slice per round: fewer rounds. */
	int prounds = B.quick ? 10 : 100, pwarmup = 2;

	for (int cross = 0; cross < 2; cross++) {
		int wcpu = cross ? cpu_b : cpu_a;

		if (cross && cpu_b < 0) {
			printf("# wake/crosscpu skipped: one CPU allowed\n");
			continue;
		}
		bench_pin(cpu_a);
		for (int op = OP_SLEEP; op <= OP_JOIN; op++) {
			const struct variant *vs[4];
			int64_t slices[4];
			int nv = 0;
			char scen[64];

			snprintf(scen, sizeof(scen), "wake/%s/%s",
				 cross ? "crosscpu" : "samecpu", op_name[op]);
			/* bench_wait measures libctx and the floor for the
			 * other three; the join is new here. */
			if (op == OP_JOIN) {
				vs[nv++] = &V_FLOOR;
				vs[nv++] = &V_LIBCTX;
			}
			vs[nv++] = &V_CONDVAR;
			if (V_STOPTOKEN.impl)
				vs[nv++] = &V_STOPTOKEN;
			for (int i = 0; i < nv; i++)
				slices[i] = vs[i]->slice;
			/* A polling read is cancelled at a random moment of
			 * its slice. */
			if (op == OP_READ)
				wake_scenario(scen, vs, nv, (enum op)op, wcpu,
					      false, pwarmup, prounds, 0,
					      slices);
			else
				wake_scenario(scen, vs, nv, (enum op)op, wcpu,
					      false, warmup, rounds, 0, NULL);
		}
		bench_unpin(&all_cpus);
	}
}

/* ---- 2. stop a thread blocked in read on a silent socket ---------------- */

static void bench_stopread(void)
{
	const struct variant *vs[5] = { &V_FLOOR, &V_LIBCTX, &V_CONDVAR,
					&V_CONDVAR_1MS, NULL };
	const int64_t blocked[5] = { 21 * CTX_MSEC, 21 * CTX_MSEC,
				     21 * CTX_MSEC, 21 * CTX_MSEC,
				     21 * CTX_MSEC };
	int rounds = B.quick ? 8 : 100, nv = 4;
	int fds[2];
	bool tcp;

	if (V_STOPTOKEN.impl)
		vs[nv++] = &V_STOPTOKEN;
	tcp_pair(fds, &tcp);
	close(fds[0]);
	close(fds[1]);
	printf("# stopread: %s, blocked 1..21 ms (uniform) before the "
	       "cancel, %d rounds, variants in turn, nothing pinned; "
	       "slices: condvar and stop_token %lld ms, condvar-1ms %lld "
	       "ms\n", tcp ? "TCP over loopback" :
			     "UNIX socketpair (no loopback)",
	       rounds, (long long)(SLICE / CTX_MSEC),
	       (long long)(SLICE_SHORT / CTX_MSEC));
	wake_scenario("stopread", vs, nv, OP_READ, -1, true, 2, rounds,
		      CTX_MSEC, blocked);
}

/* ---- 3. fan-out: N waiters, one cancel ---------------------------------- */

struct fan;
struct fan_waiter {
	struct fan *f;
	pthread_t th;
	_Atomic pid_t tid;
	int64_t t1;
	bool ok;
};

struct fan {
	const struct bench_impl *im;
	int n;
	_Atomic uint32_t gen;   /* round to run (futex word) */
	_Atomic uint32_t ready; /* waiters about to block this round */
	_Atomic uint32_t woke;  /* waiters back this round */
	_Atomic uint32_t done;  /* round all came back from (futex word) */
	bool quit;
	void *ctx;
	struct fan_waiter w[FAN_MAX];
};

static void *fan_main(void *p)
{
	struct fan_waiter *me = p;
	struct fan *f = me->f;

	atomic_store(&me->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		int e;

		bench_await_round(&f->gen, r);
		if (f->quit)
			break;
		atomic_fetch_add(&f->ready, 1);
		e = f->im->wait(f->ctx);
		me->t1 = ctx_now();
		me->ok = e == ECANCELED;
		if (atomic_fetch_add(&f->woke, 1) + 1 == (uint32_t)f->n) {
			atomic_store_explicit(&f->done, r,
					      memory_order_release);
			bench_futex_wake(&f->done, 1);
		}
	}
	return NULL;
}

static void fan_variant(const struct variant *v, int n, int rounds)
{
	struct fan *f = calloc(1, sizeof(*f));
	int64_t *last = malloc((size_t)rounds * sizeof(*last));
	const int warmup = 1;
	char what[96], scen[32];
	int e;

	if (!f || !last)
		bench_fail("out of memory");
	snprintf(scen, sizeof(scen), "fanout/%d", n);
	snprintf(what, sizeof(what), "%s/%s", scen, v->name);
	f->im = v->impl;
	f->n = n;
	for (int i = 0; i < n; i++) {
		f->w[i].f = f;
		if ((e = make_thread(&f->w[i].th, fan_main, &f->w[i])))
			bench_fail("%s: pthread_create #%d: %s", what, i,
				   strerror(e));
	}
	for (int r = 1; r <= warmup + rounds; r++) {
		int64_t limit = ctx_now() + STUCK_NS, t0, t1 = INT64_MIN;
		int spins = 0, woke = 0;

		f->ctx = must_ctx(f->im->with_cancel(f->im->background()),
				  "with_cancel");
		atomic_store(&f->ready, 0);
		atomic_store(&f->woke, 0);
		for (int i = 0; i < n; i++) {
			f->w[i].ok = false;
			f->w[i].t1 = 0;
		}
		atomic_store_explicit(&f->gen, (uint32_t)r,
				      memory_order_release);
		bench_futex_wake(&f->gen, INT_MAX);
		while (atomic_load(&f->ready) != (uint32_t)n)
			bench_give_way(&spins, limit, what);
		for (int i = 0; i < n; i++)
			bench_await_blocked(atomic_load(&f->w[i].tid),
					    wait_calls, STUCK_NS, what);
		bench_settle();
		t0 = ctx_now();
		f->im->cancel(f->ctx);
		bench_await_word(&f->done, (uint32_t)r, STUCK_NS, what);
		for (int i = 0; i < n; i++) {
			woke += f->w[i].ok;
			if (f->w[i].t1 > t1)
				t1 = f->w[i].t1;
		}
		if (woke != n)
			bench_fail("%s round %d: %d of %d waiters woke right",
				   what, r, woke, n);
		if (t1 < t0)
			bench_fail("%s round %d: back before the cancel", what,
				   r);
		if (r > warmup)
			last[r - warmup - 1] = t1 - t0;
		f->im->release(f->ctx);
	}
	f->quit = true;
	atomic_store_explicit(&f->gen, (uint32_t)(warmup + rounds + 1),
			      memory_order_release);
	bench_futex_wake(&f->gen, INT_MAX);
	for (int i = 0; i < n; i++)
		pthread_join(f->w[i].th, NULL);
	dist(scen, v->name, last, rounds);
	free(last);
	free(f);
}

static void bench_fanout(void)
{
	static const int sizes[] = { 1, 16, 128, 256, 1024 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int n = sizes[k];
		/* As bench_wait's unpinned fan-out, for comparable noise. */
		int rounds = B.quick ? (n >= 256 ? 2 : 3) :
			     (n >= 1024 ? 5 : n >= 256 ? 9 : 31);

		/* bench_wait has the condvar (a broadcast to N condvar
		 * waiters is all condctx_cancel does), libctx and the floor. */
		if (V_STOPTOKEN.impl)
			fan_variant(&V_STOPTOKEN, n, rounds);
	}
}

/* ---- 4. deadline lateness ------------------------------------------------ */

/* One sleep of d (deadline: one wait on a context d from its deadline);
 * how late it returned. */
static int64_t late_once(const struct bench_impl *im, bool deadline,
			 int64_t d)
{
	int64_t due, t1;
	void *c;
	int e;

	if (deadline) {
		due = ctx_now() + d;
		c = must_ctx(im->with_deadline(im->background(), due),
			     "with_deadline");
		e = im->wait(c);
		t1 = ctx_now();
		if (e != ETIMEDOUT)
			bench_fail("%s: wait on a deadline returned %d",
				   im->name, e);
	} else {
		c = must_ctx(im->with_cancel(im->background()), "with_cancel");
		due = ctx_now() + d;
		e = im->sleep(c, d);
		t1 = ctx_now();
		if (e)
			bench_fail("%s: sleep returned %d", im->name, e);
	}
	im->release(c);
	if (t1 < due)
		bench_fail("%s: %s ended %lld ns early", im->name,
			   deadline ? "deadline" : "sleep",
			   (long long)(due - t1));
	return t1 - due;
}

static void bench_lateness(void)
{
	static const int64_t durs[2] = { CTX_MSEC, 10 * CTX_MSEC };
	const int counts[2] = { B.quick ? 20 : 500, B.quick ? 5 : 100 };
	const struct variant *vs[2] = { &V_CONDVAR, &V_STOPTOKEN };
	int nv = V_STOPTOKEN.impl ? 2 : 1;

	bench_pin(cpu_a);
	for (int k = 0; k < 2; k++) {
		int n = counts[k];
		int64_t *v[2][2];

		for (int i = 0; i < nv; i++)
			for (int dl = 0; dl < 2; dl++) {
				if (!(v[i][dl] = malloc((size_t)n *
							sizeof(int64_t))))
					bench_fail("out of memory");
				late_once(vs[i]->impl, dl, 100 * CTX_USEC);
			}
		/* Round robin, so that drift hits every variant alike. */
		for (int r = 0; r < n; r++)
			for (int i = 0; i < nv; i++)
				for (int dl = 0; dl < 2; dl++)
					v[i][dl][r] = late_once(vs[i]->impl,
								dl, durs[k]);
		for (int i = 0; i < nv; i++)
			for (int dl = 0; dl < 2; dl++) {
				char scen[64];

				snprintf(scen, sizeof(scen),
					 "lateness/%lldms/%s",
					 (long long)(durs[k] / CTX_MSEC),
					 dl ? "deadline" : "sleep");
				dist(scen, vs[i]->name, v[i][dl], n);
				free(v[i][dl]);
			}
	}
	bench_unpin(&all_cpus);
}

/* ---- 5. hot path: reads with the data already there ---------------------- */

#define HOT_N 4096 /* bytes per batch: within a pipe's and a socket's buffer */

static char hot_pattern[HOT_N];

/* Fill (untimed), then HOT_N timed 1-byte reads; ns per read.  Every
 * read must return the next byte of the pattern. */
static double hot_batch(const struct variant *v, void *c, int rfd, int wfd)
{
	const struct bench_impl *im = v->impl;
	unsigned bad = 0;
	int64_t t0, t1;
	char b = 0;
	struct pollfd pfd = { rfd, POLLIN, 0 };

	if (write(wfd, hot_pattern, HOT_N) != HOT_N)
		bench_fail("hotpath: fill: %s", strerror(errno));
	t0 = ctx_now();
	for (int i = 0; i < HOT_N; i++) {
		ssize_t n = im->read(c, rfd, &b, 1, v->slice);

		bad += (n != 1) | (b != hot_pattern[i]);
	}
	t1 = ctx_now();
	if (bad)
		bench_fail("hotpath/%s: %u of %d reads did not return their "
			   "byte", v->name, bad, HOT_N);
	if (poll(&pfd, 1, 0) != 0)
		bench_fail("hotpath/%s: data left after the batch", v->name);
	return (double)(t1 - t0) / HOT_N;
}

static void bench_hotpath(void)
{
	int batches = B.quick ? 10 : 200;
	const struct variant *vs[2] = { &V_CONDVAR, &V_STOPTOKEN };
	int nv = V_STOPTOKEN.impl ? 2 : 1;
	int fds[2][2];
	static const char *const fd_name[2] = { "pipe", "socketpair" };

	for (int i = 0; i < HOT_N; i++)
		hot_pattern[i] = (char)(i * 7 + 1);
	if (pipe2(fds[0], O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds[1]))
		bench_fail("pipe/socketpair: %s", strerror(errno));
	bench_pin(cpu_a);
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < nv; i++) {
			const struct bench_impl *im = vs[i]->impl;
			void *c = must_ctx(im->with_cancel(im->background()),
					   "with_cancel");
			double *v = malloc((size_t)batches * sizeof(*v));
			char scen[64];

			if (!v)
				bench_fail("out of memory");
			for (int w = 0; w < 3; w++)
				hot_batch(vs[i], c, fds[k][0], fds[k][1]);
			for (int r = 0; r < batches; r++)
				v[r] = hot_batch(vs[i], c, fds[k][0],
						 fds[k][1]);
			if (im->err(c))
				bench_fail("hotpath: a context ended");
			im->release(c);
			snprintf(scen, sizeof(scen), "hotpath/%s", fd_name[k]);
			dist_dbl(scen, vs[i]->name, v, batches);
			free(v);
		}
	}
	bench_unpin(&all_cpus);
	for (int k = 0; k < 2; k++) {
		close(fds[k][0]);
		close(fds[k][1]);
	}
}

/* ---- 6. create + cancel -------------------------------------------------- */

#define MAX_DEPTH 1000

struct create_arg {
	const struct bench_impl *im;
	int depth;              /* 0: one context of the background */
	bool timeout;           /* with a deadline an hour ahead */
	void *chain[MAX_DEPTH];
	const char *what;
};

/* bench_context's operations: WithCancel (+ release), and CancelTree
 * with an open root (build a chain under a cancellable root, cancel the
 * root, check the leaf, release everything leaf first). */
static void run_create(void *p, int tid, uint64_t n)
{
	struct create_arg *a = p;
	const struct bench_impl *im = a->im;
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		void *c;

		if (!a->depth) {
			c = a->timeout ?
				    im->with_deadline(im->background(),
						      ctx_now() + HOUR) :
				    im->with_cancel(im->background());
			must_ctx(c, a->what);
			bad += im->err(c) != 0;
			im->release(c);
			continue;
		}
		void *root = must_ctx(im->with_cancel(im->background()),
				      a->what);
		c = root;
		for (int d = 0; d < a->depth; d++)
			c = a->chain[d] = must_ctx(im->with_cancel(c),
						   a->what);
		im->cancel(root);
		bad += im->err(c) != ECANCELED;
		for (int d = a->depth; d-- > 0;)
			im->release(a->chain[d]);
		im->release(root);
	}
	if (bad)
		bench_fail("%s/%s: %llu operations had the wrong result",
			   a->what, im->name, (unsigned long long)bad);
}

/* benchutil's calibrated median of B.reps runs, in our row format. */
static void measure(const char *name, const char *variant,
		    struct create_arg *a)
{
	struct bench_spec s = { .name = name, .fn = run_create, .arg = a };
	double ns[BENCH_MAX_REPS];
	uint64_t n = bench_calibrate(&B, &s);

	for (int i = 0; i < B.reps; i++)
		ns[i] = (double)bench_time(&s, n) / (double)n;
	qsort(ns, (size_t)B.reps, sizeof(ns[0]), bench_cmp_dbl);
	put(name, variant, ns[B.reps / 2]);
}

static void bench_create(void)
{
	static struct create_arg a;
	const struct variant *vs[3] = { &V_LIBCTX, &V_CONDVAR, &V_STOPTOKEN };
	int nv = V_STOPTOKEN.impl ? 3 : 2;
	static const struct {
		const char *name;
		int depth;
		bool timeout;
		bool libctx; /* bench_context has no such row */
	} rows[] = {
		{ "create/WithCancel", 0, false, false },
		{ "create/WithTimeout", 0, true, true },
		{ "create/CancelTree/depth=10", 10, false, false },
		{ "create/CancelTree/depth=1000", 1000, false, false },
	};

	printf("# create: median of %d runs of ~%lld ms; WithCancel and "
	       "WithTimeout(1 h): create, check err, release; CancelTree: "
	       "a chain under a cancellable root, cancel the root, check "
	       "the leaf, release all\n", B.reps,
	       (long long)(B.target_ns / 1000000));
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
		for (int i = 0; i < nv; i++) {
			if (vs[i] == &V_LIBCTX && !rows[r].libctx)
				continue;
			a.im = vs[i]->impl;
			a.depth = rows[r].depth;
			a.timeout = rows[r].timeout;
			a.what = rows[r].name;
			measure(rows[r].name, vs[i]->name, &a);
		}
}

/* ---- 7. CPU burned while idle --------------------------------------------- */

struct idle;
struct idle_thread {
	struct idle *s;
	pthread_t th;
	_Atomic pid_t tid;
	void *ctx;
	int fds[2];             /* fds[0] is read, nothing is written */
	int epfd;               /* floor */
	int64_t t1;
	bool ok;
};

struct idle {
	const struct variant *v;
	int n;
	void *root;
	int efd;                /* floor: the shared "cancel" */
	_Atomic uint32_t ready, woke, done;
	struct idle_thread t[IDLE_THREADS];
};

static void *idle_main(void *p)
{
	struct idle_thread *me = p;
	struct idle *s = me->s;
	const struct bench_impl *im = s->v->impl;

	atomic_store(&me->tid, bench_tid());
	atomic_fetch_add(&s->ready, 1);
	if (im) {
		char b;
		ssize_t n = im->read(me->ctx, me->fds[0], &b, 1, s->v->slice);

		me->ok = n == -1 && errno == ECANCELED;
	} else {
		struct epoll_event ev;
		int n = epoll_wait(me->epfd, &ev, 1, -1);

		me->ok = n == 1 && ev.data.fd == s->efd;
	}
	me->t1 = ctx_now();
	if (atomic_fetch_add(&s->woke, 1) + 1 == (uint32_t)s->n) {
		atomic_store_explicit(&s->done, 1, memory_order_release);
		bench_futex_wake(&s->done, 1);
	}
	return NULL;
}

static int64_t ru_ns(const struct rusage *r)
{
	return ((int64_t)r->ru_utime.tv_sec + r->ru_stime.tv_sec) * CTX_SEC +
	       ((int64_t)r->ru_utime.tv_usec + r->ru_stime.tv_usec) * 1000;
}

static void idle_variant(const struct variant *v, int64_t idle_ns)
{
	const struct bench_impl *im = v->impl;
	struct idle *s = calloc(1, sizeof(*s));
	struct rusage r0, r1;
	int64_t w0, w1, t0, t1 = INT64_MIN, limit;
	int spins = 0, woke = 0, e;
	char what[64];

	if (!s)
		bench_fail("out of memory");
	snprintf(what, sizeof(what), "idle/%s", v->name);
	s->v = v;
	s->n = IDLE_THREADS;
	s->efd = -1;
	if (im)
		s->root = must_ctx(im->with_cancel(im->background()),
				   "with_cancel");
	else if ((s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		bench_fail("eventfd: %s", strerror(errno));
	for (int i = 0; i < s->n; i++) {
		struct idle_thread *t = &s->t[i];

		t->s = s;
		t->epfd = -1;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, t->fds))
			bench_fail("%s: socketpair #%d: %s", what, i,
				   strerror(errno));
		if (im) {
			/* One context per connection, under the server's. */
			t->ctx = must_ctx(im->with_cancel(s->root),
					  "with_cancel");
		} else {
			struct epoll_event ev = { .events = EPOLLIN };

			t->epfd = epoll_create1(EPOLL_CLOEXEC);
			ev.data.fd = s->efd;
			if (t->epfd < 0 ||
			    epoll_ctl(t->epfd, EPOLL_CTL_ADD, s->efd, &ev))
				bench_fail("epoll: %s", strerror(errno));
			ev.data.fd = t->fds[0];
			if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->fds[0], &ev))
				bench_fail("epoll_ctl: %s", strerror(errno));
		}
		if ((e = make_thread(&t->th, idle_main, t)))
			bench_fail("%s: pthread_create #%d: %s", what, i,
				   strerror(e));
	}
	limit = ctx_now() + STUCK_NS;
	while (atomic_load(&s->ready) != (uint32_t)s->n)
		bench_give_way(&spins, limit, what);
	for (int i = 0; i < s->n; i++)
		bench_await_blocked(atomic_load(&s->t[i].tid), wait_calls,
				    STUCK_NS, what);

	/* The idle stretch: only the waiting threads can burn CPU now. */
	getrusage(RUSAGE_SELF, &r0);
	w0 = ctx_now();
	bench_nap_ns(idle_ns);
	getrusage(RUSAGE_SELF, &r1);
	w1 = ctx_now();

	t0 = ctx_now();
	if (im)
		im->cancel(s->root);
	else if (eventfd_write(s->efd, 1))
		bench_fail("eventfd_write: %s", strerror(errno));
	bench_await_word(&s->done, 1, STUCK_NS, what);
	for (int i = 0; i < s->n; i++) {
		struct idle_thread *t = &s->t[i];

		pthread_join(t->th, NULL);
		woke += t->ok;
		if (t->t1 > t1)
			t1 = t->t1;
		check_still_reads(v, t->fds[0], t->fds[1], what);
	}
	if (woke != s->n)
		bench_fail("%s: %d of %d threads stopped right", what, woke,
			   s->n);
	put("idle/cpu_ms_per_s", v->name,
	    (double)(ru_ns(&r1) - ru_ns(&r0)) / 1e6 /
		    ((double)(w1 - w0) / CTX_SEC));
	put("idle/wakeups_per_s", v->name,
	    (double)(r1.ru_nvcsw + r1.ru_nivcsw - r0.ru_nvcsw -
		     r0.ru_nivcsw) / ((double)(w1 - w0) / CTX_SEC));
	put("idle/stop_all", v->name, (double)(t1 - t0));
	for (int i = 0; i < s->n; i++) {
		struct idle_thread *t = &s->t[i];

		if (im)
			im->release(t->ctx);
		if (t->epfd >= 0)
			close(t->epfd);
		close(t->fds[0]);
		close(t->fds[1]);
	}
	if (im)
		im->release(s->root);
	if (s->efd >= 0)
		close(s->efd);
	free(s);
}

static void bench_idle(void)
{
	int64_t idle_ns = B.quick ? 100 * CTX_MSEC : CTX_SEC;
	const struct variant *vs[4] = { &V_FLOOR, &V_LIBCTX, &V_CONDVAR,
					NULL };
	int nv = 3;

	/* No condvar-1ms here: 1,000 threads polling every millisecond ask
	 * for a million wake-ups a second, more than a small machine can
	 * serve -- it would measure the machine's saturation. */
	if (V_STOPTOKEN.impl)
		vs[nv++] = &V_STOPTOKEN;
	/* Per thread: a socketpair, and libctx's reactor (epoll, eventfd,
	 * timerfd) or the floor's epoll. */
	raise_nofile(5 * IDLE_THREADS + 256);
	printf("# idle: %d threads, each in read on its own silent UNIX "
	       "socket under its own context (children of one root), for "
	       "%.1f s; CPU = getrusage(RUSAGE_SELF) user+sys over that "
	       "time, per second; wake-ups = context switches per second; "
	       "stop_all = cancel of the root until the last thread is "
	       "back\n", IDLE_THREADS, (double)idle_ns / CTX_SEC);
	for (int i = 0; i < nv; i++)
		idle_variant(vs[i], idle_ns);
}

/* ---- 8. bytes and descriptors per live context --------------------------- */

static void live_row(const struct variant *v, bool timeout, void **slot,
		     int n)
{
	const struct bench_impl *im = v->impl;
	const char *kind = timeout ? "WithTimeout" : "WithCancel";
	size_t h0, h1, h2, slack = n > 16384 ? (size_t)n : 16384;
	int f0, f1;
	char name[96];

	/* One made and freed first, so that one-time allocations (a
	 * library's first use) are not counted. */
	im->release(must_ctx(im->with_cancel(im->background()), kind));
	h0 = bench_heap_bytes();
	f0 = bench_count_fds();
	for (int i = 0; i < n; i++)
		slot[i] = must_ctx(timeout ?
				   im->with_deadline(im->background(),
						     ctx_now() + HOUR) :
				   im->with_cancel(im->background()), kind);
	h1 = bench_heap_bytes();
	f1 = bench_count_fds();
	for (int i = 0; i < n; i++)
		if (im->err(slot[i]))
			bench_fail("live %s %d is done", kind, i);
	for (int i = 0; i < n; i++)
		im->release(slot[i]);
	h2 = bench_heap_bytes();
	/* Less than a byte a context (malloc's caches) may stay behind; a
	 * leaked context would leave dozens. */
	if (h2 > h0 + slack)
		bench_fail("%s/%s: %zu bytes still held after release",
			   v->name, kind, h2 - h0);
	snprintf(name, sizeof(name), "bytes/%s/%d", kind, n);
	put(name, v->name, ((double)h1 - (double)h0) / n);
	snprintf(name, sizeof(name), "fds/%s/%d", kind, n);
	put(name, v->name, (double)(f1 - f0) / n);
}

static void bench_memory(void)
{
	const struct variant *vs[3] = { &V_LIBCTX, &V_CONDVAR, &V_STOPTOKEN };
	int nv = V_STOPTOKEN.impl ? 3 : 2;
	static const int counts[2] = { 1000, 1000000 };
	void **slot = calloc((size_t)counts[1], sizeof(*slot));

	if (!slot)
		bench_fail("out of memory");
	printf("# bytes: mallinfo2 heap growth / live contexts (malloc's "
	       "headers included); fds: /proc/self/fd growth / live "
	       "contexts; contexts are children of the background\n");
	for (int k = 0; k < 2; k++)
		for (int c = 0; c < 2; c++)
			for (int i = 0; i < nv; i++) {
				/* bench_context has libctx at 1,000,000. */
				if (vs[i] == &V_LIBCTX && c == 1)
					continue;
				live_row(vs[i], k, slot, counts[c]);
			}
	free(slot);
}

/* ---- main ---------------------------------------------------------------- */

static void load_stoptoken(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	bench_impl_getter get;

	if (!h)
		bench_fail("dlopen %s: %s", path, dlerror());
	get = (bench_impl_getter)dlsym(h, BENCH_STOPTOKEN_SYMBOL);
	if (!get)
		bench_fail("%s: no %s", path, BENCH_STOPTOKEN_SYMBOL);
	V_STOPTOKEN.impl = get();
}

static void print_notes(void)
{
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# variants: libctx; condvar = bench/condctx.c (mutex + "
	       "condvar + flag per context, reads poll in %lld ms slices; "
	       "condvar-1ms: 1 ms slices); stop_token = bench/stoptoken.cc "
	       "(std::stop_source + condition_variable_any, %lld ms "
	       "slices)%s; floor = epoll_wait on an eventfd the canceller "
	       "writes\n", (long long)(SLICE / CTX_MSEC),
	       (long long)(SLICE / CTX_MSEC),
	       V_STOPTOKEN.impl ? "" : " -- not built, left out");
	printf("# cpus: canceller on %d; waiter on %d (samecpu)", cpu_a,
	       cpu_a);
	if (cpu_b >= 0)
		printf(", %d (crosscpu)", cpu_b);
	printf("; stopread, fanout and idle not pinned\n");
	printf("# blocked check: /proc/self/task/<tid>/stat state S%s\n",
	       bench_have_syscall_file() ? " inside futex, poll, ppoll or epoll "
				   "(/proc/self/task/<tid>/syscall)" :
				   " (no syscall file: state only)");
	printf("# rows: name,variant,value; /p50 and /p99: nearest-rank "
	       "percentiles in ns\n");
	fflush(stdout);
}

/* Run one scenario and say how long it took, to keep the total in
 * check (make bench has 5 minutes for everything). */
int main(int argc, char **argv)
{
	char *args[2] = { argv[0], NULL };
	int nargs = 1;
	int64_t start;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--stoptoken") && i + 1 < argc)
			load_stoptoken(argv[++i]);
		else if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			samples_dir = argv[++i];
		else if (!strcmp(argv[i], "--quick"))
			args[nargs++] = argv[i];
		else {
			fprintf(stderr, "usage: %s [--quick] [--stoptoken "
				"LIB.so] [--samples DIR]\n", argv[0]);
			return 2;
		}
	}
	bench_init(&B, nargs, args);
	start = ctx_now();
	alarm(B.quick ? 120 : 600); /* watchdog: a hang is a failure */
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		bench_fail("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all_cpus))
			cpus[ncpus++] = c;
	cpu_a = ncpus > 0 ? cpus[0] : -1;
	cpu_b = ncpus > 1 ? cpus[1] : -1;

	bench_print_machine("bench_condvar: libctx beside a condvar context, "
			    "std::stop_token and the kernel floor");
	print_notes();

	bench_section("wake", bench_wake);
	bench_section("stopread", bench_stopread);
	bench_section("fanout", bench_fanout);
	bench_section("lateness", bench_lateness);
	bench_section("hotpath", bench_hotpath);
	bench_section("create", bench_create);
	bench_section("idle", bench_idle);
	bench_section("memory", bench_memory);

	printf("# checks passed: every wait ended as it had to, every "
	       "waiter woke, every byte arrived\n");
	printf("# run took %.1f s%s\n", (double)(ctx_now() - start) / CTX_SEC,
	       B.quick ? " (--quick)" : "");
	return 0;
}
