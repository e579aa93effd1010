/*
 * bench_nsync: nsync's notes (Google's nsync, Debian's libnsync-dev) on
 * the rows of the table where they can stand beside libctx -- the nsync
 * column of bench/run.sh.  An nsync_note is a one-shot bit with an
 * optional deadline, in a tree: what a context is, without the blocking
 * calls (nsync cannot stop a read, a join or a channel).
 *
 * Every scenario is measured the way the libctx row it stands beside is
 * (the program named), with the same rounds, pinning and percentiles:
 *
 *  wake/<cpus>/<op>   (bench_wait's wake rows) cancel -> wake of one
 *                     thread blocked in nsync_note_wait: "wait" without a
 *                     deadline, "sleep" with one an hour away (as
 *                     ctx_sleep(1 h)).  From just before nsync_note_notify
 *                     to just after the wait returned; a fresh note per
 *                     round, made before the waiter blocks; the waiter is
 *                     seen asleep in futex first (/proc).  samecpu: both
 *                     on the first allowed CPU; crosscpu: the waiter on
 *                     the second; unpinned: neither pinned, and there the
 *                     libctx variant (ctx_wait + ctx_cancel) is measured
 *                     here too, as bench_wait has no unpinned rows.
 *  lateness/<d>/<how> (bench_wait's lateness rows) "deadline": a note
 *                     whose deadline is d away, waited on without one;
 *                     "sleep": nsync_note_wait on a note never notified,
 *                     with a deadline d away.  Lateness = return - due,
 *                     on CLOCK_REALTIME (nsync's clock); never negative.
 *  fanout/<N>         (bench_wait's fanout rows) N threads in
 *                     nsync_note_wait on one note, one notify, time until
 *                     the last is back.  Nothing pinned.
 *  create/<what>      (bench_condvar's and bench_context's create rows)
 *                     WithCancel: nsync_note_new(NULL, no deadline),
 *                     check, notify, free; WithTimeout: the same with a
 *                     deadline an hour ahead; CancelTree/depth=D: a chain
 *                     of D notes under a root note, notify the root,
 *                     check the leaf, free all leaf first.
 *  bytes/, fds/       (bench_condvar's and bench_context's memory rows)
 *                     heap growth (mallinfo2, malloc's headers included)
 *                     and descriptors per live note, 1,000 and 1,000,000,
 *                     without and with a deadline an hour ahead.
 *
 * Output: "# " comment lines, and one line per number,
 *
 *	name,variant,value
 *
 * as bench_condvar's (name ends in /p50 or /p99 for nearest-rank
 * percentiles in ns; variant nsync, or libctx for the unpinned wake).
 * Each scenario checks that what it timed happened (every wait returned
 * notified -- or, for a sleep, not -- every waiter woke, nothing ended
 * early, every note freed) and exits 1 if not.
 *
 *	bench_nsync [--quick]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <limits.h>
#include <nsync.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "ctx.h"

#define HOUR_S 3600
#define FAN_STACK (64 * 1024)
#define STUCK_NS (10 * CTX_SEC) /* a wait this long means something broke */
#define MAX_DEPTH 1000
#define MAX_LIVE 1000000

static struct bench B;
static cpu_set_t all_cpus;
static int cpus[CPU_SETSIZE], ncpus, cpu_a = -1, cpu_b = -1;

/* nsync sleeps in futex (its semaphore); libctx's ctx_wait on a context
 * without deadline too, or in poll/epoll on other backends. */
static const long wait_calls[] = {
	SYS_futex,
#ifdef SYS_futex_waitv
	SYS_futex_waitv,
#endif
#ifdef SYS_poll
	SYS_poll,
#endif
	SYS_ppoll, SYS_epoll_pwait,
#ifdef SYS_epoll_wait
	SYS_epoll_wait,
#endif
	SYS_io_uring_enter,
	-1,
};

/* ---- small helpers ------------------------------------------------------ */

static nsync_note must_note(nsync_note parent, nsync_time deadline,
			    const char *what)
{
	nsync_note n = nsync_note_new(parent, deadline);

	if (!n)
		bench_fail("%s: nsync_note_new failed", what);
	return n;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
}

/* An nsync_time (a struct timespec on Linux, CLOCK_REALTIME based) for
 * an absolute CLOCK_REALTIME time in ns. */
static nsync_time at_real(int64_t ns)
{
	return nsync_time_s_ns((time_t)(ns / CTX_SEC),
			       (unsigned)(ns % CTX_SEC));
}

static nsync_time hour_ahead(void)
{
	return nsync_time_add(nsync_time_now(), nsync_time_s_ns(HOUR_S, 0));
}

static void put(const char *name, const char *variant, double v)
{
	printf(v < 10 && v > -10 ? "%s,%s,%.3f\n" : "%s,%s,%.1f\n", name,
	       variant, v);
	fflush(stdout);
}

/* p50 and p99 rows of n samples (sorted here). */
static void dist(const char *scen, const char *variant, int64_t *v, int n)
{
	char name[128];

	qsort(v, (size_t)n, sizeof(*v), bench_cmp_i64);
	snprintf(name, sizeof(name), "%s/p50", scen);
	put(name, variant, (double)v[bench_rank((size_t)n, 50)]);
	snprintf(name, sizeof(name), "%s/p99", scen);
	put(name, variant, (double)v[bench_rank((size_t)n, 99)]);
}

/* ---- 1. one waiter: cancel -> wake ---------------------------------------- */

enum wvar { W_NSYNC_WAIT, W_NSYNC_SLEEP, W_CTX_WAIT };

struct wake {
	enum wvar v;
	int cpu;                /* -1: not pinned */
	_Atomic pid_t tid;
	_Atomic uint32_t go;    /* round to run (futex word) */
	_Atomic uint32_t ready; /* round about to block */
	_Atomic uint32_t done;  /* round finished (futex word) */
	bool quit;
	nsync_note note;        /* this round's note */
	ctx_t *ctx;             /* ... or context */
	int64_t t1;             /* back from the wait */
	bool ok;
};

static bool wake_block(struct wake *w)
{
	switch (w->v) {
	case W_NSYNC_WAIT:
		return nsync_note_wait(w->note, nsync_time_no_deadline) &&
		       nsync_note_is_notified(w->note);
	case W_NSYNC_SLEEP:
		return nsync_note_wait(w->note, hour_ahead()) &&
		       nsync_note_is_notified(w->note);
	case W_CTX_WAIT:
		return ctx_wait(w->ctx) == CTX_CANCELED;
	}
	return false;
}

static void *wake_main(void *p)
{
	struct wake *w = p;

	if (w->cpu >= 0)
		bench_pin(w->cpu);
	atomic_store(&w->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		bool ok;

		bench_await_round(&w->go, r);
		if (w->quit)
			break;
		atomic_store_explicit(&w->ready, r, memory_order_release);
		ok = wake_block(w);
		w->t1 = ctx_now();
		w->ok = ok;
		atomic_store_explicit(&w->done, r, memory_order_release);
		bench_futex_wake(&w->done, 1);
	}
	return NULL;
}

/* One scenario/variant: rounds of block, seen asleep, wake, timed. */
static void wake_variant(enum wvar v, int wcpu, int rounds, int warmup,
			 const char *scen, const char *op)
{
	struct wake *w = calloc(1, sizeof(*w));
	int64_t *lat = malloc((size_t)rounds * sizeof(*lat));
	const char *variant = v == W_CTX_WAIT ? "libctx" : "nsync";
	char what[96], name[64];
	pthread_t th;
	int e;

	if (!w || !lat)
		bench_fail("out of memory");
	snprintf(what, sizeof(what), "%s/%s/%s", scen, op, variant);
	w->v = v;
	w->cpu = wcpu;
	if ((e = pthread_create(&th, NULL, wake_main, w)))
		bench_fail("pthread_create: %s", strerror(e));
	for (int r = 1; r <= warmup + rounds; r++) {
		int64_t limit = ctx_now() + STUCK_NS, t0;
		int spins = 0;

		if (v == W_CTX_WAIT) {
			if (!(w->ctx = ctx_with_cancel(ctx_background())))
				bench_fail("ctx_with_cancel: %s",
					   strerror(errno));
		} else {
			w->note = must_note(NULL, nsync_time_no_deadline,
					    what);
		}
		atomic_store_explicit(&w->go, (uint32_t)r,
				      memory_order_release);
		bench_futex_wake(&w->go, 1);
		while (atomic_load_explicit(&w->ready, memory_order_acquire) !=
		       (uint32_t)r)
			bench_give_way(&spins, limit, what);
		bench_await_blocked(atomic_load(&w->tid), wait_calls, STUCK_NS,
				    what);
		bench_settle();
		t0 = ctx_now();
		if (v == W_CTX_WAIT)
			ctx_cancel(w->ctx);
		else
			nsync_note_notify(w->note);
		bench_await_word(&w->done, (uint32_t)r, STUCK_NS, what);
		if (!w->ok)
			bench_fail("%s round %d: the wait did not end notified",
				   what, r);
		if (w->t1 < t0)
			bench_fail("%s round %d: woke before the wake-up",
				   what, r);
		if (r > warmup)
			lat[r - warmup - 1] = w->t1 - t0;
		if (v == W_CTX_WAIT)
			ctx_release(w->ctx);
		else
			nsync_note_free(w->note);
		w->ctx = NULL;
		w->note = NULL;
	}
	w->quit = true;
	atomic_store_explicit(&w->go, (uint32_t)(warmup + rounds + 1),
			      memory_order_release);
	bench_futex_wake(&w->go, 1);
	pthread_join(th, NULL);
	snprintf(name, sizeof(name), "%s/%s", scen, op);
	dist(name, variant, lat, rounds);
	free(lat);
	free(w);
}

static void bench_wake(void)
{
	/* bench_wait's rounds. */
	int rounds = B.quick ? 100 : 2000, warmup = B.quick ? 10 : 50;

	bench_pin(cpu_a);
	wake_variant(W_NSYNC_WAIT, cpu_a, rounds, warmup, "wake/samecpu",
		     "wait");
	wake_variant(W_NSYNC_SLEEP, cpu_a, rounds, warmup, "wake/samecpu",
		     "sleep");
	if (cpu_b >= 0) {
		wake_variant(W_NSYNC_WAIT, cpu_b, rounds, warmup,
			     "wake/crosscpu", "wait");
		wake_variant(W_NSYNC_SLEEP, cpu_b, rounds, warmup,
			     "wake/crosscpu", "sleep");
	} else {
		printf("# wake/crosscpu skipped: one CPU allowed\n");
	}
	bench_unpin(&all_cpus);
	/* Unpinned: where the scheduler puts the two threads decides the
	 * figure, so both implementations, one after the other, here. */
	wake_variant(W_NSYNC_WAIT, -1, rounds, warmup, "wake/unpinned",
		     "wait");
	wake_variant(W_CTX_WAIT, -1, rounds, warmup, "wake/unpinned", "wait");
}

/* ---- 2. deadline lateness ------------------------------------------------ */

/* One wait of d; how late it returned (realtime, nsync's clock). */
static int64_t late_once(bool deadline, int64_t d)
{
	int64_t due, t1;
	nsync_note n;
	int notified;

	if (deadline) {
		due = real_ns() + d;
		n = must_note(NULL, at_real(due), "lateness");
		notified = nsync_note_wait(n, nsync_time_no_deadline);
		t1 = real_ns();
		if (!notified)
			bench_fail("lateness: a note with a deadline was "
				   "not notified by it");
	} else {
		n = must_note(NULL, nsync_time_no_deadline, "lateness");
		due = real_ns() + d;
		notified = nsync_note_wait(n, at_real(due));
		t1 = real_ns();
		if (notified)
			bench_fail("lateness: a note nobody notified was "
				   "notified");
	}
	nsync_note_free(n);
	if (t1 < due)
		bench_fail("lateness: %s ended %lld ns early",
			   deadline ? "deadline" : "sleep",
			   (long long)(due - t1));
	return t1 - due;
}

static void bench_lateness(void)
{
	static const int64_t durs[2] = { CTX_MSEC, 10 * CTX_MSEC };
	/* bench_wait's counts. */
	int counts[2] = { B.quick ? 20 : 500, B.quick ? 5 : 100 };

	bench_pin(cpu_a);
	for (int k = 0; k < 2; k++) {
		int n = counts[k];
		int64_t *v[2];
		char scen[64];

		for (int i = 0; i < 2; i++)
			if (!(v[i] = malloc((size_t)n * sizeof(int64_t))))
				bench_fail("out of memory");
		late_once(false, 100 * CTX_USEC); /* warm-up, untimed */
		late_once(true, 100 * CTX_USEC);
		for (int r = 0; r < n; r++)
			for (int i = 0; i < 2; i++)
				v[i][r] = late_once(i, durs[k]);
		for (int i = 0; i < 2; i++) {
			snprintf(scen, sizeof(scen), "lateness/%lldms/%s",
				 (long long)(durs[k] / CTX_MSEC),
				 i ? "deadline" : "sleep");
			dist(scen, "nsync", v[i], n);
			free(v[i]);
		}
	}
	bench_unpin(&all_cpus);
}

/* ---- 3. fan-out ------------------------------------------------------------ */

struct fan;
struct fan_waiter {
	struct fan *f;
	pthread_t th;
	_Atomic pid_t tid;
	int64_t t1;
	bool ok;
};

struct fan {
	int n;
	_Atomic uint32_t gen;   /* round to run (futex word) */
	_Atomic uint32_t ready; /* waiters about to block this round */
	_Atomic uint32_t woke;  /* waiters back this round */
	_Atomic uint32_t done;  /* round all came back from (futex word) */
	bool quit;
	nsync_note note;
	struct fan_waiter *w;
};

static void *fan_main(void *p)
{
	struct fan_waiter *me = p;
	struct fan *f = me->f;

	atomic_store(&me->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		int notified;

		bench_await_round(&f->gen, r);
		if (f->quit)
			break;
		atomic_fetch_add(&f->ready, 1);
		notified = nsync_note_wait(f->note, nsync_time_no_deadline);
		me->t1 = ctx_now();
		me->ok = notified;
		if (atomic_fetch_add(&f->woke, 1) + 1 == (uint32_t)f->n) {
			atomic_store_explicit(&f->done, r,
					      memory_order_release);
			bench_futex_wake(&f->done, 1);
		}
	}
	return NULL;
}

static void fan_variant(int n, int rounds)
{
	struct fan *f = calloc(1, sizeof(*f));
	int64_t *last = malloc((size_t)rounds * sizeof(*last));
	const int warmup = 1; /* as bench_wait's */
	pthread_attr_t attr;
	char scen[32], what[64];
	int e;

	if (!f || !last || !(f->w = calloc((size_t)n, sizeof(*f->w))))
		bench_fail("out of memory");
	snprintf(scen, sizeof(scen), "fanout/%d", n);
	snprintf(what, sizeof(what), "%s/nsync", scen);
	f->n = n;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FAN_STACK);
	for (int i = 0; i < n; i++) {
		f->w[i].f = f;
		if ((e = pthread_create(&f->w[i].th, &attr, fan_main,
					&f->w[i])))
			bench_fail("%s: pthread_create #%d: %s", what, i,
				   strerror(e));
	}
	pthread_attr_destroy(&attr);
	for (int r = 1; r <= warmup + rounds; r++) {
		int64_t limit = ctx_now() + STUCK_NS, t0, t1 = INT64_MIN;
		int spins = 0, woke = 0;

		f->note = must_note(NULL, nsync_time_no_deadline, what);
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
		nsync_note_notify(f->note);
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
			bench_fail("%s round %d: back before the notify", what,
				   r);
		if (r > warmup)
			last[r - warmup - 1] = t1 - t0;
		nsync_note_free(f->note);
	}
	f->quit = true;
	atomic_store_explicit(&f->gen, (uint32_t)(warmup + rounds + 1),
			      memory_order_release);
	bench_futex_wake(&f->gen, INT_MAX);
	for (int i = 0; i < n; i++)
		pthread_join(f->w[i].th, NULL);
	dist(scen, "nsync", last, rounds);
	free(f->w);
	free(f);
	free(last);
}

static void bench_fanout(void)
{
	static const int sizes[] = { 1, 16, 128, 256, 1024 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int n = sizes[k];
		/* bench_wait's unpinned rounds. */
		int rounds = B.quick ? (n >= 256 ? 2 : 3) :
			     (n >= 1024 ? 5 : n >= 256 ? 9 : 31);

		fan_variant(n, rounds);
	}
}

/* ---- 4. create + cancel ------------------------------------------------- */

struct create_arg {
	int depth;              /* 0: one note without parent */
	bool timeout;           /* with a deadline an hour ahead */
	nsync_note chain[MAX_DEPTH];
	const char *what;
};

/* bench_condvar's run_create, on notes. */
static void run_create(void *p, int tid, uint64_t n)
{
	struct create_arg *a = p;
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		nsync_note c;

		if (!a->depth) {
			c = must_note(NULL, a->timeout ? hour_ahead() :
						 nsync_time_no_deadline,
				      a->what);
			bad += nsync_note_is_notified(c) != 0;
			nsync_note_notify(c);
			nsync_note_free(c);
			continue;
		}
		nsync_note root = must_note(NULL, nsync_time_no_deadline,
					    a->what);
		c = root;
		for (int d = 0; d < a->depth; d++)
			c = a->chain[d] = must_note(c, nsync_time_no_deadline,
						    a->what);
		nsync_note_notify(root);
		bad += !nsync_note_is_notified(c);
		for (int d = a->depth; d-- > 0;)
			nsync_note_free(a->chain[d]);
		nsync_note_free(root);
	}
	if (bad)
		bench_fail("%s/nsync: %llu operations had the wrong result",
			   a->what, (unsigned long long)bad);
}

static void bench_create(void)
{
	static struct create_arg a;
	static const struct {
		const char *name;
		int depth;
		bool timeout;
	} rows[] = {
		{ "create/WithCancel", 0, false },
		{ "create/WithTimeout", 0, true },
		{ "create/CancelTree/depth=10", 10, false },
		{ "create/CancelTree/depth=1000", 1000, false },
	};

	printf("# create: median of %d runs of ~%lld ms; WithCancel and "
	       "WithTimeout(1 h): nsync_note_new, is_notified, notify, free; "
	       "CancelTree: a chain of notes under a root, notify the root, "
	       "check the leaf, free all leaf first\n", B.reps,
	       (long long)(B.target_ns / 1000000));
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		struct bench_spec s = { .name = rows[r].name,
					.fn = run_create, .arg = &a };
		double ns[BENCH_MAX_REPS];
		uint64_t n;

		a.depth = rows[r].depth;
		a.timeout = rows[r].timeout;
		a.what = rows[r].name;
		n = bench_calibrate(&B, &s);
		for (int i = 0; i < B.reps; i++)
			ns[i] = (double)bench_time(&s, n) / (double)n;
		qsort(ns, (size_t)B.reps, sizeof(ns[0]), bench_cmp_dbl);
		put(rows[r].name, "nsync", ns[B.reps / 2]);
	}
}

/* ---- 5. bytes and descriptors per live note ------------------------------ */

/* bench_condvar's live_row, on notes: n made and held on this thread,
 * heap growth and new descriptors per note. */
static void live_row(bool timeout, nsync_note *slot, int n)
{
	const char *kind = timeout ? "WithTimeout" : "WithCancel";
	size_t h0, h1, h2, slack = n > 16384 ? (size_t)n : 16384;
	int f0, f1;
	char name[96];

	/* One made and freed first: nsync's one-time allocations are not
	 * the note's. */
	nsync_note_free(must_note(NULL, hour_ahead(), kind));
	h0 = bench_heap_bytes();
	f0 = bench_count_fds();
	for (int i = 0; i < n; i++)
		slot[i] = must_note(NULL, timeout ? hour_ahead() :
					    nsync_time_no_deadline, kind);
	h1 = bench_heap_bytes();
	f1 = bench_count_fds();
	for (int i = 0; i < n; i++)
		if (nsync_note_is_notified(slot[i]))
			bench_fail("live note %s %d is notified", kind, i);
	for (int i = 0; i < n; i++)
		nsync_note_free(slot[i]);
	h2 = bench_heap_bytes();
	if (h2 > h0 + slack)
		bench_fail("nsync/%s: %zu bytes still held after free", kind,
			   h2 - h0);
	snprintf(name, sizeof(name), "bytes/%s/%d", kind, n);
	put(name, "nsync", ((double)h1 - (double)h0) / n);
	snprintf(name, sizeof(name), "fds/%s/%d", kind, n);
	put(name, "nsync", (double)(f1 - f0) / n);
}

static void bench_memory(void)
{
	static const int counts[2] = { 1000, MAX_LIVE };
	nsync_note *slot = calloc(MAX_LIVE, sizeof(*slot));

	if (!slot)
		bench_fail("out of memory");
	printf("# bytes: mallinfo2 heap growth / live notes (malloc's headers "
	       "included); fds: /proc/self/fd growth / live notes; notes "
	       "without parent; WithTimeout: deadline an hour ahead\n");
	for (int k = 0; k < 2; k++)
		for (int c = 0; c < 2; c++)
			live_row(k, slot, counts[c]);
	free(slot);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct rlimit rl;
	int64_t start;

	bench_init(&B, argc, argv);
	start = ctx_now();
	alarm(B.quick ? 120 : 600); /* watchdog: a hang is a failure */
	if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus))
		bench_fail("sched_getaffinity: %s", strerror(errno));
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all_cpus))
			cpus[ncpus++] = c;
	cpu_a = ncpus > 0 ? cpus[0] : -1;
	cpu_b = ncpus > 1 ? cpus[1] : -1;
	/* 1,024 fan-out threads need no descriptors; /proc reads need a
	 * few.  Raise the soft limit anyway, as the others do. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	bench_print_machine("bench_nsync: nsync notes on the rows of the "
			    "table they can do");
	printf("# libctx backend: %s (the unpinned wake's libctx variant)\n",
	       ctx_backend());
	printf("# cpus: waker on %d; waiter on %d (samecpu)", cpu_a, cpu_a);
	if (cpu_b >= 0)
		printf(", %d (crosscpu)", cpu_b);
	printf("; unpinned wake, fanout not pinned; lateness on %d\n", cpu_a);
	printf("# blocked check: /proc/self/task/<tid>/stat state S%s\n",
	       bench_have_syscall_file() ? " inside futex (or poll/epoll for "
					   "libctx)" :
					   " (no syscall file: state only)");
	printf("# rows: name,variant,value; /p50 and /p99: nearest-rank "
	       "percentiles in ns\n");
	fflush(stdout);

	bench_section("wake", bench_wake);
	bench_section("lateness", bench_lateness);
	bench_section("fanout", bench_fanout);
	bench_section("create", bench_create);
	bench_section("memory", bench_memory);

	printf("# checks passed: every wait ended notified (a sleep: not), "
	       "every waiter woke, every note was freed\n");
	printf("# run took %.1f s%s\n", (double)(ctx_now() - start) / CTX_SEC,
	       B.quick ? " (--quick)" : "");
	return 0;
}
