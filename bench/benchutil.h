/*
 * What every benchmark program shares: the options, the one output
 * format, the clock, the interleaved runner, the machine description, and
 * the means to tell that a thread is really asleep before it is woken.
 *
 * Output, on stdout: "# " comment lines (the machine, notes), and one
 * line per number, the same for every program:
 *
 *	scenario,metric,impl,rep,value,unit
 *
 * scenario names what was done (wake/samecpu/read), metric which figure
 * of it (p50, p99, op, rate, ...), impl the implementation or variant
 * that did it, rep the repetition (0: all of them pooled, where a figure
 * is not the median of the reps).  Implementations compared in one
 * scenario take turns (A B A B ...), and rep k of each was measured in
 * the same stretch of time: bench/report.py sets them side by side as a
 * pair.  bench/run.sh collects these lines; bench/report.py makes the
 * tables from them.
 *
 * Everything here is static inline so that a program may use any subset.
 */
#ifndef CTX_BENCHUTIL_H
#define CTX_BENCHUTIL_H

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#define BENCH_MAX_REPS 16
#define BENCH_MAX_THREADS 64
#define BENCH_MAX_IMPLS 8

struct bench {
	bool quick;
	int reps;            /* interleaved runs per row */
	int run;             /* > 0: print each row's median as rep `run` */
	int64_t target_ns;   /* length of one timed run */
	const char *only;    /* comma-separated fnmatch patterns, or NULL */
	const char *impls;   /* comma-separated names, or NULL: all */
	const char *samples; /* directory for raw samples, or NULL */
	const char *plugin;  /* the stop_token shared object, or NULL */
};

static struct bench B __attribute__((unused));

static inline int64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A benchmark that did not measure what it claims is worse than none. */
__attribute__((format(printf, 1, 2), noreturn))
static inline void bench_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline void *bench_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (!p)
		bench_fail("out of memory (%zu bytes)", n);
	return p;
}

static inline void bench_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--quick] [--run K] [--only PATTERNS] "
		"[--impls NAMES] [--samples DIR] [--stoptoken LIB.so]\n", prog);
	exit(2);
}

static inline void bench_init(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--quick")) {
			B.quick = true;
			continue;
		}
		if (!v)
			bench_usage(argv[0]);
		i++;
		if (!strcmp(a, "--run"))
			B.run = atoi(v);
		else if (!strcmp(a, "--only"))
			B.only = v;
		else if (!strcmp(a, "--impls"))
			B.impls = v;
		else if (!strcmp(a, "--samples"))
			B.samples = v;
		else if (!strcmp(a, "--stoptoken"))
			B.plugin = v;
		else
			bench_usage(argv[0]);
	}
	/* 7 runs of 40 ms (each alone: 3): a median that holds still to a
	 * few percent on a quiet machine. */
	B.reps = B.run ? 3 : B.quick ? 5 : 7;
	B.target_ns = B.quick ? 2000000 : 40000000;
	alarm(B.quick ? 300 : 900); /* watchdog: a hang is a failure */
}

/* Whether name is in the comma-separated list (patterns: fnmatch). */
static inline bool bench_listed(const char *list, const char *name)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *p = strtok_r(buf, ",", &save); p;
	     p = strtok_r(NULL, ",", &save))
		if (!fnmatch(p, name, 0))
			return true;
	return false;
}

/* Whether --only asks for scenario `name` (everything without it). */
static inline bool bench_wanted(const char *name)
{
	return !B.only || bench_listed(B.only, name);
}

/* ---- output -------------------------------------------------------- */

static inline void bench_row(const char *scen, const char *metric,
			     const char *impl, int rep, double v,
			     const char *unit)
{
	printf(v < 10 && v > -10 ? "%s,%s,%s,%d,%.4f,%s\n" :
				   "%s,%s,%s,%d,%.1f,%s\n",
	       scen, metric, impl, rep, v, unit);
	fflush(stdout);
}

static inline int bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The nearest rank: the smallest of the n sorted samples with at least
 * pct% of them at or below it. */
static inline double bench_pct(const double *sorted, size_t n, unsigned pct)
{
	size_t r = (n * pct + 99) / 100;

	return sorted[r ? r - 1 : 0];
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	return v[(n - 1) / 2];
}

/* Raw samples (ns), for the picture: DIR/<scenario>__<impl>.dat. */
static inline void bench_dump(const char *scen, const char *impl,
			      const double *v, int n)
{
	char path[512], *p;
	FILE *f;

	if (!B.samples)
		return;
	p = path + snprintf(path, sizeof(path), "%s/", B.samples);
	snprintf(p, sizeof(path) - (size_t)(p - path), "%s__%s.dat", scen,
		 impl);
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

/*
 * n samples taken in order, in `reps` consecutive blocks: p50 and p99 of
 * each block as its rep (each block stands beside the same block of the
 * other implementations, taken in turn with it), and of all n as rep 0,
 * the figure shown.  v is sorted afterwards.
 */
static inline void bench_dist(const char *scen, const char *impl, double *v,
			      int n, int reps, const char *unit)
{
	if (reps > n)
		reps = n;
	for (int k = 0; k < reps; k++) {
		int lo = n * k / reps, len = n * (k + 1) / reps - lo;
		double *blk = bench_alloc((size_t)len * sizeof(*blk));

		memcpy(blk, v + lo, (size_t)len * sizeof(*blk));
		qsort(blk, (size_t)len, sizeof(*blk), bench_cmp_dbl);
		bench_row(scen, "p50", impl, k + 1,
			  bench_pct(blk, (size_t)len, 50), unit);
		bench_row(scen, "p99", impl, k + 1,
			  bench_pct(blk, (size_t)len, 99), unit);
		free(blk);
	}
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	bench_row(scen, "p50", impl, 0, bench_pct(v, (size_t)n, 50), unit);
	bench_row(scen, "p99", impl, 0, bench_pct(v, (size_t)n, 99), unit);
	bench_dump(scen, impl, v, n);
}

/* ---- the machine --------------------------------------------------- */

/* Busy and total jiffies of all CPUs, from the first line of /proc/stat. */
static inline bool bench_cpu_jiffies(unsigned long long *busy,
				     unsigned long long *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (!f)
		return false;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 5)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*busy = *total - v[3] - v[4]; /* idle and iowait */
	return true;
}

/* Other work on the machine slows every column, and not evenly: say how
 * busy the CPUs were for 200 ms before starting. */
static inline void bench_print_load(void)
{
	unsigned long long b0, t0, b1, t1;
	struct timespec pause = { 0, 200000000 };
	double busy;

	if (!bench_cpu_jiffies(&b0, &t0))
		return;
	nanosleep(&pause, NULL);
	if (!bench_cpu_jiffies(&b1, &t1) || t1 == t0)
		return;
	busy = 100.0 * (double)(b1 - b0) / (double)(t1 - t0);
	printf("# cpu busy before start: %.0f%%%s\n", busy,
	       busy >= 10 ? " (other work is running: numbers are skewed)"
			  : "");
}

static inline void bench_print_machine(const char *prog)
{
	struct utsname u;
	char line[512], cpu[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			char *m = strchr(line, ':') + 1;

			m += *m == ' ';
			m[strcspn(m, "\n")] = '\0';
			snprintf(cpu, sizeof(cpu), "%s", m);
			break;
		}
	if (f)
		fclose(f);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	printf("# %s\n# cpu: %s\n# cores: %ld online\n# kernel: %s %s\n",
	       prog, cpu, sysconf(_SC_NPROCESSORS_ONLN), u.sysname,
	       u.release);
#ifdef __clang__
	printf("# compiler: clang %s\n", __clang_version__);
#else
	printf("# compiler: gcc %s\n", __VERSION__);
#endif
	printf("# libc: glibc %s\n", gnu_get_libc_version());
	bench_print_load();
	printf("# rows: scenario,metric,impl,rep,value,unit\n");
	fflush(stdout);
}

/* ---- threads: pinning, futex words, "is it really asleep" ------------ */

#define BENCH_UNUSED __attribute__((unused))
static cpu_set_t bench_all_cpus BENCH_UNUSED; /* the mask at start */
static int cpu_a BENCH_UNUSED = -1, cpu_b BENCH_UNUSED = -1; /* its first two */

static inline void bench_cpus_init(void)
{
	if (sched_getaffinity(0, sizeof(bench_all_cpus), &bench_all_cpus))
		bench_fail("sched_getaffinity: %s", strerror(errno));
	for (int c = CPU_SETSIZE - 1; c >= 0; c--)
		if (CPU_ISSET(c, &bench_all_cpus)) {
			cpu_b = cpu_a;
			cpu_a = c;
		}
}

static inline pid_t bench_tid(void) { return (pid_t)syscall(SYS_gettid); }

static inline void bench_futex_wait(_Atomic uint32_t *w, uint32_t val,
				    const struct timespec *timeout)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, timeout, NULL, 0);
}

static inline void bench_futex_wake(_Atomic uint32_t *w, int n)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* The calling thread on cpu alone (-1: on every CPU it had at start). */
static inline void bench_pin(int cpu)
{
	cpu_set_t s = bench_all_cpus;
	int e;

	if (cpu >= 0) {
		CPU_ZERO(&s);
		CPU_SET(cpu, &s);
	}
	if ((e = pthread_setaffinity_np(pthread_self(), sizeof(s), &s)))
		bench_fail("pthread_setaffinity_np(cpu %d): %s", cpu,
			   strerror(e));
}

static inline void bench_nap_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000),
			       (long)(ns % 1000000000) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Give way while polling for another thread's progress: yield first (it
 * may share our CPU), then sleep a little.  Past limit (a bench_now()
 * time) the run fails: something is stuck. */
static inline void bench_give_way(int *spins, int64_t limit,
				  const char *what)
{
	if (bench_now() > limit)
		bench_fail("%s: stuck", what);
	if ((*spins)++ < 200)
		sched_yield();
	else
		bench_nap_ns(20000);
}

/* Wait until *w == want; *w is a futex word someone will wake. */
static inline void bench_await_word(_Atomic uint32_t *w, uint32_t want,
				    int64_t stuck_ns, const char *what)
{
	int64_t limit = bench_now() + stuck_ns;
	struct timespec second = { 1, 0 };
	uint32_t v;

	while ((v = atomic_load_explicit(w, memory_order_acquire)) != want) {
		if (bench_now() > limit)
			bench_fail("%s: no wake-up within %lld s", what,
				   (long long)(stuck_ns / 1000000000));
		bench_futex_wait(w, v, &second);
	}
}

/* A worker's wait for round r: the round word reaching r. */
static inline void bench_await_round(_Atomic uint32_t *go, uint32_t r)
{
	uint32_t g;

	while ((g = atomic_load_explicit(go, memory_order_acquire)) < r)
		bench_futex_wait(go, g, NULL);
}

static inline ssize_t bench_read_small(const char *path, char *buf,
				       size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* Whether /proc shows which system call a thread is in (not with every
 * kernel configuration); asked once. */
static inline bool bench_have_syscall_file(void)
{
	static int have = -1;
	char path[64], buf[256];

	if (have < 0) {
		snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
			 (int)bench_tid());
		have = bench_read_small(path, buf, sizeof(buf)) > 0;
	}
	return have;
}

/* The system calls a waiting thread of any implementation sleeps in:
 * futex (condvars, nsync, libctx's parked waits), poll/ppoll (slices,
 * libctx), epoll (the floor), io_uring_enter (libctx's other backend). */
static const long bench_wait_calls[] BENCH_UNUSED = {
	SYS_futex, SYS_ppoll, SYS_epoll_pwait, SYS_io_uring_enter,
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

/* Is thread tid asleep ('S') inside one of the waiting system calls?
 * How a blocked thread looks from outside: a benchmark wakes a waiter
 * only once it is. */
static inline bool bench_blocked(pid_t tid)
{
	char path[64], buf[512], *p;
	long call;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if (bench_read_small(path, buf, sizeof(buf)) <= 0)
		bench_fail("cannot read %s: %s", path, strerror(errno));
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] != 'S')
		return false;
	if (!bench_have_syscall_file())
		return true;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	if (bench_read_small(path, buf, sizeof(buf)) <= 0)
		bench_fail("cannot read %s: %s", path, strerror(errno));
	if (!isdigit((unsigned char)buf[0])) /* "running" or "-1 ..." */
		return false;
	call = strtol(buf, NULL, 10);
	for (int i = 0; bench_wait_calls[i] >= 0; i++)
		if (bench_wait_calls[i] == call)
			return true;
	return false;
}

static inline void bench_await_blocked(pid_t tid, int64_t stuck_ns,
				       const char *what)
{
	int64_t limit = bench_now() + stuck_ns;
	int spins = 0;

	while (!bench_blocked(tid))
		bench_give_way(&spins, limit, what);
}

/*
 * After a waiter is seen asleep and before the wake-up is timed: the
 * waker spins for a fixed 300 us, so that every variant's waiter has been
 * asleep for about as long.  On a VM how long a CPU has been idle decides
 * what waking it costs (the host polls a halted vCPU for a while before
 * it deschedules it): without this, an implementation that is slow to
 * fall asleep is woken from a shallower idle and looks faster.
 */
static inline void bench_settle(void)
{
	int64_t until = bench_now() + 300000;

	while (bench_now() < until)
		;
}

/* Run one part of a program and say how long it took (its scenarios
 * each ask bench_wanted first). */
static inline void bench_section(const char *name, void (*fn)(void))
{
	int64_t t0 = bench_now();

	fn();
	printf("# %s took %.1f s\n", name, (double)(bench_now() - t0) / 1e9);
	fflush(stdout);
}

/* ---- resources ----------------------------------------------------- */

/* Bytes malloc has handed out and not got back, malloc's own headers
 * included: what a live object really costs. */
static inline size_t bench_heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static inline int bench_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		bench_fail("cannot open /proc/self/fd");
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the DIR's own descriptor */
}

/* The soft descriptor limit raised to the hard one; fails below need. */
static inline void bench_raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("getrlimit: %s", strerror(errno));
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("setrlimit: %s", strerror(errno));
	if (rl.rlim_cur < need)
		bench_fail("need %llu descriptors; the hard limit is %llu",
			   (unsigned long long)need,
			   (unsigned long long)rl.rlim_cur);
}

/* A connected TCP pair on the loopback interface (fds[0] accepted), as
 * a server has; a UNIX socketpair where there is no network. */
static inline bool bench_tcp_pair(int fds[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l >= 0 && !bind(l, (struct sockaddr *)&a, sizeof(a)) &&
	    !listen(l, 1) && !getsockname(l, (struct sockaddr *)&a, &alen)) {
		fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[1] >= 0 &&
		    !connect(fds[1], (struct sockaddr *)&a, sizeof(a)) &&
		    (fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			close(l);
			return true;
		}
		if (fds[1] >= 0)
			close(fds[1]);
	}
	if (l >= 0)
		close(l);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
		bench_fail("socketpair: %s", strerror(errno));
	return false;
}

/* ---- timing: calibrated runs, the implementations in turn ----------- */

/*
 * One row: fn(arg, impl, tid, n) performs n iterations of implementation
 * `impl` (an index into names) on thread tid.  With threads > 1 every
 * thread runs n iterations at once and the time is wall time / (n *
 * threads), as Go's b.RunParallel reports it; per_iter > 1 when one
 * iteration holds several reported operations.
 */
struct bench_spec {
	const char *scenario;
	const char *const *names;  /* the implementations; NULL: "libctx" */
	int nimpls;                /* 0: 1 */
	void (*fn)(void *arg, int impl, int tid, uint64_t n);
	void *arg;
	int threads, per_iter;
	bool per_thread;           /* threads > 1: wall time / n, not / (n *
				    * threads): ns per operation per thread */
	const char *unit;          /* NULL: "ns/op" */
};

struct bench_worker {
	const struct bench_spec *spec;
	pthread_barrier_t *start;
	uint64_t n;
	int impl, tid;
	int64_t t0, t1;
};

static inline void *bench_worker_main(void *p)
{
	struct bench_worker *w = p;

	pthread_barrier_wait(w->start);
	w->t0 = bench_now();
	w->spec->fn(w->spec->arg, w->impl, w->tid, w->n);
	w->t1 = bench_now();
	return NULL;
}

/* Wall time of n iterations on each of `threads` threads, from the first
 * one's start to the last one's end; the threads are made first and
 * released together, so their creation is not timed. */
static inline int64_t bench_time(const struct bench_spec *s, int impl,
				 int threads, uint64_t n)
{
	struct bench_worker w[BENCH_MAX_THREADS];
	pthread_t t[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	int64_t t0 = INT64_MAX, t1 = INT64_MIN;

	if (threads <= 1) {
		t0 = bench_now();
		s->fn(s->arg, impl, 0, n);
		return bench_now() - t0;
	}
	if (threads > BENCH_MAX_THREADS)
		bench_fail("%s: too many threads", s->scenario);
	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++) {
		w[i] = (struct bench_worker){ s, &start, n, impl, i, 0, 0 };
		if (pthread_create(&t[i], NULL, bench_worker_main, &w[i]))
			bench_fail("%s: pthread_create", s->scenario);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
	}
	pthread_barrier_destroy(&start);
	return t1 - t0;
}

/* The iteration count that makes one run last about B.target_ns:
 * grow it until a run is long enough to extrapolate from.  On one
 * thread: calibrated on several, a start delayed by other work on the
 * machine could settle on a tiny n, and the delay would be the figure. */
static inline uint64_t bench_calibrate(const struct bench_spec *s, int impl)
{
	uint64_t n = 1;
	int64_t t;

	for (;;) {
		t = bench_time(s, impl, 1, n);
		if (t >= B.target_ns / 8)
			break;
		if (t < 1000)
			n *= 100;
		else
			n = n * (uint64_t)(B.target_ns / 4) / (uint64_t)t + 1;
	}
	n = n * (uint64_t)B.target_ns / (uint64_t)t;
	return n ? n : 1;
}

/*
 * Calibrate each implementation, then B.reps timed runs of each, in turn
 * (A B A B ...): rows "scenario,op,impl,rep,ns,unit".  With B.run set,
 * each implementation's median instead, as rep B.run (one run of the
 * program is then one side of a pair, the other side another program's).
 */
static inline void bench_measure(const struct bench_spec *s)
{
	static const char *const lib[] = { "libctx" };
	const char *const *names = s->names ? s->names : lib;
	int ni = s->nimpls ? s->nimpls : 1, th = s->threads > 1 ? s->threads : 1;
	double ns[BENCH_MAX_IMPLS][BENCH_MAX_REPS];
	uint64_t n[BENCH_MAX_IMPLS];

	if (!bench_wanted(s->scenario))
		return;
	for (int i = 0; i < ni; i++)
		n[i] = bench_calibrate(s, i);
	for (int r = 0; r < B.reps; r++)
		for (int i = 0; i < ni; i++)
			ns[i][r] = (double)bench_time(s, i, th, n[i]) /
				   ((double)n[i] * (s->per_thread ? 1 : th) *
				    (s->per_iter > 1 ? s->per_iter : 1));
	for (int i = 0; i < ni; i++)
		for (int r = 0; r < (B.run ? 1 : B.reps); r++)
			bench_row(s->scenario, "op", names[i],
				  B.run ? B.run : r + 1,
				  B.run ? bench_median(ns[i], B.reps) : ns[i][r],
				  s->unit ? s->unit : "ns/op");
}

/* Keep a result alive without a memory access the compiler could
 * reorder or drop: the value must exist in a register. */
#define bench_keep(x) __asm__ volatile("" : : "r"(x))
/* Make the compiler forget what it knows about x. */
#define bench_opaque(x) __asm__ volatile("" : "+r"(x))

#endif
