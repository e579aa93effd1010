/*
 * Helpers shared by the benchmark programs (bench_context, and later
 * bench_wait, ...): a clock, a calibrate-then-repeat runner that reports
 * the median of several timed runs, a parallel runner that reports ns/op
 * the way Go's b.RunParallel does (wall time over the operations of all
 * threads), heap and descriptor counters, and the machine description.
 *
 * Output, on stdout, one line per measurement:
 *	name,ns_per_op,min,max     timed rows (median of the repeats)
 *	name,value                 everything else (bytes, descriptors)
 * and "# " comment lines for the machine and notes.  bench/run.sh reads
 * these lines; keep the format stable.
 *
 * Everything here is static inline so that a program may use any subset
 * without unused-function warnings.
 */
#ifndef CTX_BENCHUTIL_H
#define CTX_BENCHUTIL_H

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <malloc.h>
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
#include <sys/syscall.h>
#include <sys/utsname.h>

#define BENCH_MAX_REPS 16
#define BENCH_MAX_THREADS 64

struct bench {
	bool quick;
	int reps;          /* timed runs per row; the median is reported */
	int64_t target_ns; /* length of one timed run */
};

/*
 * One row.  fn performs n iterations on thread tid (0 when single
 * threaded).  With threads > 1 every thread runs n iterations at once
 * and ns/op is wall time / (n * threads), as b.RunParallel reports it.
 * per_iter > 1 when one iteration holds several reported operations.
 */
struct bench_spec {
	const char *name;
	void (*fn)(void *arg, int tid, uint64_t n);
	void *arg;
	int threads;
	int per_iter;
};

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

static inline void bench_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [--quick]\n", prog);
	exit(2);
}

static inline void bench_init(struct bench *b, int argc, char **argv)
{
	b->quick = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			b->quick = true;
		else
			bench_usage(argv[0]);
	}
	/* 7 runs of 40 ms: a median that holds still to a few percent on
	 * a quiet machine, and about 20 s for a program of 25 rows. */
	b->reps = b->quick ? 5 : 7;
	b->target_ns = b->quick ? 2000000 : 40000000;
}

/* ---- the machine --------------------------------------------------- */

static inline void bench_cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 1 + (colon[1] == ' ');
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

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

/* Other work on the machine slows both columns, and not evenly: measure
 * how busy the CPUs are for 200 ms before starting, and say so. */
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
	char cpu[256];

	bench_cpu_model(cpu, sizeof(cpu));
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "unknown");
	printf("# %s\n", prog);
	printf("# cpu: %s\n", cpu);
	printf("# cores: %ld online\n", sysconf(_SC_NPROCESSORS_ONLN));
	printf("# kernel: %s %s\n", u.sysname, u.release);
#if defined(__clang__)
	printf("# compiler: clang %s\n", __clang_version__);
#elif defined(__GNUC__)
	printf("# compiler: gcc %s\n", __VERSION__);
#endif
	printf("# libc: glibc %s\n", gnu_get_libc_version());
	bench_print_load();
}

/* ---- threads: pinning, futex words, "is it really asleep" ------------ */

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

/* The calling thread on cpu alone; bench_unpin gives it the mask it had
 * (the caller keeps it, from sched_getaffinity at start). */
static inline void bench_pin(int cpu)
{
	cpu_set_t s;
	int e;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if ((e = pthread_setaffinity_np(pthread_self(), sizeof(s), &s)))
		bench_fail("pthread_setaffinity_np(cpu %d): %s", cpu,
			   strerror(e));
}

static inline void bench_unpin(const cpu_set_t *all)
{
	int e = pthread_setaffinity_np(pthread_self(), sizeof(*all), all);
	if (e)
		bench_fail("pthread_setaffinity_np: %s", strerror(e));
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

/* Is thread tid asleep ('S') inside one of the system calls in nr (a
 * list ending with -1)?  How a thread blocked in a wait looks from
 * outside: a benchmark wakes a waiter only once it is. */
static inline bool bench_blocked_in(pid_t tid, const long *nr)
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
	for (int i = 0; nr[i] >= 0; i++)
		if (nr[i] == call)
			return true;
	return false;
}

static inline void bench_await_blocked(pid_t tid, const long *nr,
				       int64_t stuck_ns, const char *what)
{
	int64_t limit = bench_now() + stuck_ns;
	int spins = 0;

	while (!bench_blocked_in(tid, nr))
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
#define BENCH_SETTLE_NS 300000
static inline void bench_settle(void)
{
	int64_t until = bench_now() + BENCH_SETTLE_NS;

	while (bench_now() < until)
		;
}

/* A worker's wait for round r to be started: the round word reaching r
 * (the starter stores it and wakes the futex). */
static inline void bench_await_round(_Atomic uint32_t *go, uint32_t r)
{
	uint32_t g;

	while ((g = atomic_load_explicit(go, memory_order_acquire)) < r)
		bench_futex_wait(go, g, NULL);
}

/* Run one part of a program and say how long it took. */
static inline void bench_section(const char *name, void (*fn)(void))
{
	int64_t t0 = bench_now();

	fn();
	printf("# %s took %.1f s\n", name, (double)(bench_now() - t0) / 1e9);
	fflush(stdout);
}

/* ---- statistics ---------------------------------------------------- */

/* qsort comparators, and the nearest rank: the index of the smallest
 * sample with at least pct% of the n sorted samples <= it. */
static inline int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static inline int bench_cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline size_t bench_rank(size_t n, unsigned pct)
{
	size_t r = (n * pct + 99) / 100;

	return r ? r - 1 : 0;
}

/* ---- live resources ------------------------------------------------ */

/* Bytes malloc has handed out and not got back, malloc's own headers
 * included: what a live object really costs.  mallinfo2 adds up every
 * arena; hblkhd counts blocks big enough to be mmapped. */
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

/* ---- timing -------------------------------------------------------- */

struct bench_worker {
	const struct bench_spec *spec;
	pthread_barrier_t *start;
	uint64_t n;
	int tid;
	int64_t t0, t1;
};

static inline void *bench_worker_main(void *p)
{
	struct bench_worker *w = p;

	pthread_barrier_wait(w->start);
	w->t0 = bench_now();
	w->spec->fn(w->spec->arg, w->tid, w->n);
	w->t1 = bench_now();
	return NULL;
}

/*
 * Wall time of n iterations on each of s->threads threads: from the
 * first thread's start to the last one's end.  The threads are made
 * first and released together by a barrier, so their creation is not
 * timed.  The workers read the clock themselves: with as many workers as
 * cores, the main thread may not run again until a worker is done.
 */
static inline int64_t bench_time_parallel(const struct bench_spec *s,
					  uint64_t n)
{
	struct bench_worker w[BENCH_MAX_THREADS];
	pthread_t t[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	int64_t t0 = INT64_MAX, t1 = INT64_MIN;

	if (s->threads > BENCH_MAX_THREADS)
		bench_fail("%s: too many threads", s->name);
	pthread_barrier_init(&start, NULL, (unsigned)s->threads);
	for (int i = 0; i < s->threads; i++) {
		w[i] = (struct bench_worker){ s, &start, n, i, 0, 0 };
		if (pthread_create(&t[i], NULL, bench_worker_main, &w[i]))
			bench_fail("%s: pthread_create", s->name);
	}
	for (int i = 0; i < s->threads; i++) {
		pthread_join(t[i], NULL);
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
	}
	pthread_barrier_destroy(&start);
	return t1 - t0;
}

static inline int64_t bench_time(const struct bench_spec *s, uint64_t n)
{
	int64_t t0;

	if (s->threads > 1)
		return bench_time_parallel(s, n);
	t0 = bench_now();
	s->fn(s->arg, 0, n);
	return bench_now() - t0;
}

/* The iteration count that makes one run last about b->target_ns:
 * grow it until a run is long enough to extrapolate from. */
static inline uint64_t bench_calibrate(const struct bench *b,
				       const struct bench_spec *s)
{
	uint64_t n = 1;
	int64_t t;

	for (;;) {
		t = bench_time(s, n);
		if (t >= b->target_ns / 8)
			break;
		if (t < 1000)
			n *= 100;
		else
			n = n * (uint64_t)(b->target_ns / 4) / (uint64_t)t + 1;
	}
	n = n * (uint64_t)b->target_ns / (uint64_t)t;
	return n ? n : 1;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Calibrate, time b->reps runs, print "name,median,min,max" in ns/op. */
static inline double bench_measure(const struct bench *b,
				   const struct bench_spec *s)
{
	double ns[BENCH_MAX_REPS];
	int threads = s->threads > 1 ? s->threads : 1;
	int per = s->per_iter > 1 ? s->per_iter : 1;
	uint64_t n = bench_calibrate(b, s);

	if (b->reps > BENCH_MAX_REPS)
		bench_fail("%s: too many repeats", s->name);
	for (int i = 0; i < b->reps; i++) {
		double ops = (double)n * threads * per;

		ns[i] = (double)bench_time(s, n) / ops;
	}
	qsort(ns, (size_t)b->reps, sizeof(ns[0]), bench_cmp_double);
	printf("%s,%.2f,%.2f,%.2f\n", s->name, ns[b->reps / 2], ns[0],
	       ns[b->reps - 1]);
	fflush(stdout);
	return ns[b->reps / 2];
}

static inline void bench_value(const char *name, double v)
{
	printf("%s,%.2f\n", name, v);
	fflush(stdout);
}

/* Keep a result alive without a memory access the compiler could
 * reorder or drop: the value must exist in a register. */
#define bench_keep(x) __asm__ volatile("" : : "r"(x))
/* Make the compiler forget what it knows about x. */
#define bench_opaque(x) __asm__ volatile("" : "+r"(x))

#endif
