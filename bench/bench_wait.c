/*
 * bench_wait: how fast libctx's blocking calls wake up, how late its
 * timers fire, what cancellability costs when data is ready, and how long
 * one cancel takes to wake many threads -- each beside the raw kernel
 * mechanism that does the same job.  One process, one run, this machine.
 *
 *  wake/<cpus>      cancel -> wake latency of one thread blocked in
 *                   ctx_read (empty pipe), ctx_wait or ctx_sleep (1 h),
 *                   beside the raw floor (epoll_wait on an eventfd that
 *                   the other thread writes), a raw futex and a condvar.
 *                   The waker reads ctx_now() just before ctx_cancel (or
 *                   the raw wake-up), the woken thread just after its
 *                   call returns; latency = the difference.  A fresh
 *                   ctx_with_cancel(background) per round, made before the
 *                   waiter blocks.  "samecpu": both threads pinned to the
 *                   first allowed CPU; "crosscpu": waker on the first,
 *                   waiter on the second.  A comment block after the rows
 *                   says in how many rounds the woken thread preempted the
 *                   waker (was back before the waker's call returned).
 *  lateness/<d>     a sleep of d (ctx_sleep; ctx_wait on a context with
 *                   that deadline; timerfd; clock_nanosleep; condvar
 *                   timedwait): lateness = when it returned - when it was
 *                   due (never negative, or the run fails).
 *  hotpath/<fd>     ns per 1-byte read with the data already there: N
 *                   bytes are written (untimed), then N reads are timed;
 *                   p50/p99 over batches of N reads.  ctx_* on a
 *                   ctx_with_cancel context and ("-deadline") on a
 *                   ctx_with_timeout(1 h) one, which pays a clock read.
 *                   On the pipe also preadv2(RWF_NOWAIT) itself: the
 *                   cheapest read that cannot block a blocking pipe,
 *                   which is what ctx_read tries first.
 *  fanout/<N>       N threads blocked on one thing, one wake-up: time from
 *                   just before the wake-up call to the moment the last
 *                   of the N threads is back from its wait: ctx_wait on one
 *                   context + ctx_cancel, pthread_cond_wait on one condvar
 *                   + pthread_cond_broadcast, epoll_wait on N epoll fds
 *                   watching one eventfd + one write; and ctx_read of
 *                   a silent socket of its own under its own child of
 *                   the context cancelled (ctx_read-child).  Nothing pinned;
 *                   fanout-pinned/<N> repeats it with fixed placement
 *                   (shown, not judged).
 *
 * Before any wake-up the waiting thread must really be asleep: it posts
 * "about to block" and the canceller then polls
 * /proc/self/task/<tid>/stat until the state is 'S' AND
 * /proc/self/task/<tid>/syscall shows the thread inside the system call it
 * should be sleeping in (epoll_wait/epoll_pwait for libctx and the eventfd
 * floor, futex for futex and condvar).  No fixed sleeps are used.
 *
 * Output on stdout: "# " comment lines (the machine, notes, summary), and
 * one line per measurement, always with these nine fields:
 *
 *	scenario,variant,p50_ns,p99_ns,n,p50_ratio,p99_ratio,target,verdict
 *
 * p50/p99 are nearest-rank percentiles of n samples, in nanoseconds (for
 * hotpath: ns per read, per batch).  The ratios are this row over the
 * row it is judged against in the same scenario ("-" for none).  target
 * names the bound, e.g. "<=1.25x eventfd-epoll"; verdict is "ok" or
 * "MISSED" (judged on p50 only), "reference" for the row others are
 * measured against, or "info" for rows shown but not judged.
 *
 * Exit status: 0 when everything measured what it claims (misses are
 * results, not failures); 1, with a message on stderr, when a wait ended
 * the wrong way, a byte was wrong, a waiter did not wake, ...
 *
 *	bench_wait [--quick]    --quick: a few rounds of everything (CI)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "ctx.h"

#define HOUR (3600 * CTX_SEC)
#define FAN_STACK (64 * 1024)
#define STUCK_NS (10 * CTX_SEC) /* a wait this long means something broke */

static struct bench B;
static cpu_set_t all_cpus;      /* the main thread's mask at start */
static int cpus[CPU_SETSIZE], ncpus; /* the CPUs of that mask */
static int cpu_a = -1, cpu_b = -1; /* the first two of them */
static int missed;
static char missed_list[2048];

/* ---- small helpers --------------------------------------------------- */

/* The system calls a thread may be found sleeping in. */
static const long epoll_calls[] = {
	SYS_epoll_wait, SYS_epoll_pwait,
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
	-1,
};
static const long futex_calls[] = {
	SYS_futex,
#ifdef SYS_futex_waitv
	SYS_futex_waitv,
#endif
#ifdef SYS_futex_wait
	SYS_futex_wait,
#endif
	-1,
};

/* libctx sleeps in poll(2) when a descriptor or a deadline is involved
 * (epoll_wait before 0.2), and in futex for waits with neither (ctx_wait
 * on a context without deadline). */
static const long libctx_calls[] = {
#ifdef SYS_poll
	SYS_poll,
#endif
	SYS_ppoll,
	SYS_epoll_wait, SYS_epoll_pwait,
#ifdef SYS_epoll_pwait2
	SYS_epoll_pwait2,
#endif
	SYS_futex,
	SYS_io_uring_enter, /* the io_uring backend (CTX_BACKEND=io_uring) */
	-1,
};

/* ---- statistics and rows ---------------------------------------------- */

enum role { R_REF, R_JUDGED, R_INFO };

struct row {
	const char *variant;
	double p50, p99;
	int n;
	enum role role;
	const char *ref; /* variant judged against (R_JUDGED, R_INFO) */
	double limit;    /* p50 <= limit * ref's p50 (R_JUDGED) */
};

#define MAX_ROWS 16
struct group {
	char scenario[48];
	struct row rows[MAX_ROWS];
	int n;
};

static struct row *group_add(struct group *g, const char *variant,
			     enum role role, const char *ref, double limit)
{
	struct row *r;

	if (g->n == MAX_ROWS)
		bench_fail("%s: too many rows", g->scenario);
	r = &g->rows[g->n++];
	*r = (struct row){ variant, 0, 0, 0, role, ref, limit };
	return r;
}

static void row_set_i64(struct row *r, int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_i64);
	r->p50 = (double)v[bench_rank((size_t)n, 50)];
	r->p99 = (double)v[bench_rank((size_t)n, 99)];
	r->n = n;
}

static void row_set_dbl(struct row *r, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_dbl);
	r->p50 = v[bench_rank((size_t)n, 50)];
	r->p99 = v[bench_rank((size_t)n, 99)];
	r->n = n;
}

static const struct row *group_find(const struct group *g, const char *v)
{
	for (int i = 0; i < g->n; i++)
		if (!strcmp(g->rows[i].variant, v))
			return &g->rows[i];
	return NULL;
}

static void group_print(const struct group *g)
{
	for (int i = 0; i < g->n; i++) {
		const struct row *r = &g->rows[i];
		const struct row *ref = r->ref ? group_find(g, r->ref) : NULL;
		char r50[32] = "-", r99[32] = "-", target[64] = "-";
		const char *verdict = "info";

		if (r->role != R_REF && !ref)
			bench_fail("%s/%s: no row %s", g->scenario, r->variant,
				   r->ref ? r->ref : "(none)");
		if (r->role == R_REF) {
			snprintf(r50, sizeof(r50), "1.00");
			snprintf(r99, sizeof(r99), "1.00");
			snprintf(target, sizeof(target), "reference");
			verdict = "reference";
		} else {
			if (ref->p50 > 0)
				snprintf(r50, sizeof(r50), "%.2f",
					 r->p50 / ref->p50);
			if (ref->p99 > 0)
				snprintf(r99, sizeof(r99), "%.2f",
					 r->p99 / ref->p99);
		}
		if (r->role == R_JUDGED) {
			bool ok = r->p50 <= r->limit * ref->p50;

			snprintf(target, sizeof(target), "<=%.2fx %s",
				 r->limit, ref->variant);
			verdict = ok ? "ok" : "MISSED";
			if (!ok) {
				size_t l = strlen(missed_list);
				missed++;
				snprintf(missed_list + l,
					 sizeof(missed_list) - l,
					 "#   %s/%s: %s x%s\n", g->scenario,
					 r->variant, target, r50);
			}
		} else if (r->role == R_INFO) {
			snprintf(target, sizeof(target), "info vs %s",
				 ref->variant);
		}
		printf("%s,%s,%.1f,%.1f,%d,%s,%s,%s,%s\n", g->scenario,
		       r->variant, r->p50, r->p99, r->n, r50, r99, target,
		       verdict);
	}
	fflush(stdout);
}

/* ---- 1. cancel -> wake latency ------------------------------------------ */

enum wvar { W_CTX_READ, W_CTX_WAIT, W_CTX_SLEEP, W_EVENTFD, W_FUTEX,
	    W_CONDVAR, W_NVAR };
static const char *const wvar_name[W_NVAR] = {
	"ctx_read", "ctx_wait", "ctx_sleep", "eventfd-epoll", "futex",
	"condvar",
};

struct wake {
	enum wvar v;
	int cpu;
	_Atomic pid_t tid;
	_Atomic uint32_t go;    /* round to run (futex word) */
	_Atomic uint32_t ready; /* round about to block */
	_Atomic uint32_t done;  /* round finished (futex word) */
	bool quit;
	ctx_t *ctx;             /* this round's context */
	int pipefd[2];          /* ctx_read: an empty pipe */
	int efd, epfd;          /* eventfd-epoll */
	_Atomic uint32_t word;  /* futex */
	pthread_mutex_t mu;     /* condvar */
	pthread_cond_t cv;
	int flag;
	int64_t t1;             /* back from the wait */
	bool ok;
	char why[96];           /* what went wrong if !ok */
};

static void *wake_main(void *p)
{
	struct wake *w = p;

	bench_pin(w->cpu);
	atomic_store(&w->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		bench_await_round(&w->go, r);
		if (w->quit)
			break;
		atomic_store_explicit(&w->ready, r, memory_order_release);
		int64_t t1 = 0;
		bool ok = false;
		switch (w->v) {
		case W_CTX_READ: {
			char b;
			ssize_t n = ctx_read(w->ctx, w->pipefd[0], &b, 1);
			t1 = ctx_now();
			int e = errno;
			ok = n == -1 && e == CTX_CANCELED;
			if (!ok)
				snprintf(w->why, sizeof(w->why),
					 "ctx_read returned %zd (%s)", n,
					 ctx_strerror(e));
			break;
		}
		case W_CTX_WAIT: {
			int e = ctx_wait(w->ctx);
			t1 = ctx_now();
			ok = e == CTX_CANCELED;
			if (!ok)
				snprintf(w->why, sizeof(w->why),
					 "ctx_wait returned %d (%s)", e,
					 ctx_strerror(e));
			break;
		}
		case W_CTX_SLEEP: {
			int e = ctx_sleep(w->ctx, HOUR);
			t1 = ctx_now();
			ok = e == CTX_CANCELED;
			if (!ok)
				snprintf(w->why, sizeof(w->why),
					 "ctx_sleep returned %d (%s)", e,
					 ctx_strerror(e));
			break;
		}
		case W_EVENTFD: {
			struct epoll_event ev;
			int n = epoll_wait(w->epfd, &ev, 1, -1);
			t1 = ctx_now();
			uint64_t v = 0;
			ok = n == 1 && (ev.events & EPOLLIN) &&
			     read(w->efd, &v, sizeof(v)) == sizeof(v) &&
			     v == 1;
			if (!ok)
				snprintf(w->why, sizeof(w->why),
					 "epoll_wait %d, eventfd %llu", n,
					 (unsigned long long)v);
			break;
		}
		case W_FUTEX:
			while (!atomic_load_explicit(&w->word,
						     memory_order_acquire))
				bench_futex_wait(&w->word, 0, NULL);
			t1 = ctx_now();
			ok = atomic_load(&w->word) == 1;
			break;
		case W_CONDVAR:
			pthread_mutex_lock(&w->mu);
			while (!w->flag)
				pthread_cond_wait(&w->cv, &w->mu);
			t1 = ctx_now();
			ok = w->flag == 1;
			pthread_mutex_unlock(&w->mu);
			break;
		case W_NVAR:
			break;
		}
		w->t1 = t1;
		w->ok = ok;
		atomic_store_explicit(&w->done, r, memory_order_release);
		bench_futex_wake(&w->done, 1);
	}
	return NULL;
}

/* The wake-up a round ends with, timed from just before it. */
static int64_t wake_trigger(struct wake *w)
{
	int64_t t0 = ctx_now();

	switch (w->v) {
	case W_CTX_READ:
	case W_CTX_WAIT:
	case W_CTX_SLEEP:
		ctx_cancel(w->ctx);
		break;
	case W_EVENTFD:
		if (eventfd_write(w->efd, 1))
			bench_fail("eventfd_write: %s", strerror(errno));
		break;
	case W_FUTEX:
		atomic_store_explicit(&w->word, 1, memory_order_release);
		bench_futex_wake(&w->word, 1);
		break;
	case W_CONDVAR:
		pthread_mutex_lock(&w->mu);
		w->flag = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		break;
	case W_NVAR:
		break;
	}
	return t0;
}

/* Rounds in which the woken thread was back before the waker's call
 * returned: it preempted the waker (same CPU), so whatever the waker
 * still does after the wake-up -- unlocking, say -- is in the latency. */
static char wake_notes[2048];

static void wake_variant(struct row *row, enum wvar v, int wcpu, int rounds,
			 int warmup, const char *scen)
{
	int before = 0;
	struct wake *w = calloc(1, sizeof(*w));
	int64_t *lat = malloc((size_t)rounds * sizeof(*lat));
	const long *calls = v == W_FUTEX || v == W_CONDVAR ? futex_calls :
			    v == W_EVENTFD ? epoll_calls : libctx_calls;
	char what[96];
	pthread_t th;
	int e;

	if (!w || !lat)
		bench_fail("out of memory");
	snprintf(what, sizeof(what), "%s/%s", scen, wvar_name[v]);
	w->v = v;
	w->cpu = wcpu;
	w->pipefd[0] = w->pipefd[1] = w->efd = w->epfd = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (v == W_CTX_READ && pipe2(w->pipefd, O_CLOEXEC))
		bench_fail("pipe2: %s", strerror(errno));
	if (v == W_EVENTFD) {
		struct epoll_event ev = { .events = EPOLLIN };
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->efd < 0 || w->epfd < 0 ||
		    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev))
			bench_fail("eventfd/epoll: %s", strerror(errno));
	}
	if ((e = pthread_create(&th, NULL, wake_main, w)))
		bench_fail("pthread_create: %s", strerror(e));

	for (int r = 1; r <= warmup + rounds; r++) {
		int64_t limit = ctx_now() + STUCK_NS;
		int spins = 0;

		if (v <= W_CTX_SLEEP && !(w->ctx = ctx_with_cancel(
						  ctx_background())))
			bench_fail("ctx_with_cancel: %s", strerror(errno));
		atomic_store(&w->word, 0);
		w->flag = 0;
		atomic_store_explicit(&w->go, (uint32_t)r,
				      memory_order_release);
		bench_futex_wake(&w->go, 1);
		while (atomic_load_explicit(&w->ready, memory_order_acquire) !=
		       (uint32_t)r)
			bench_give_way(&spins, limit, what);
		bench_await_blocked(atomic_load(&w->tid), calls, STUCK_NS,
				    what);
		bench_settle();
		int64_t t0 = wake_trigger(w);
		int64_t t_back = ctx_now();
		bench_await_word(&w->done, (uint32_t)r, STUCK_NS, what);
		if (r > warmup && w->t1 < t_back)
			before++;
		if (!w->ok)
			bench_fail("%s round %d: %s", what, r,
				   w->why[0] ? w->why : "wrong wake-up");
		if (w->t1 < t0)
			bench_fail("%s round %d: woke before the wake-up",
				   what, r);
		if (r > warmup)
			lat[r - warmup - 1] = w->t1 - t0;
		if (w->ctx) {
			ctx_release(w->ctx);
			w->ctx = NULL;
		}
	}
	w->quit = true;
	atomic_store_explicit(&w->go, (uint32_t)(warmup + rounds + 1),
			      memory_order_release);
	bench_futex_wake(&w->go, 1);
	pthread_join(th, NULL);
	row_set_i64(row, lat, rounds);
	size_t l = strlen(wake_notes);
	snprintf(wake_notes + l, sizeof(wake_notes) - l,
		 "#   %s: %.0f%%\n", what, 100.0 * before / rounds);
	for (int i = 0; i < 2; i++) {
		if (w->pipefd[i] >= 0)
			close(w->pipefd[i]);
	}
	if (w->efd >= 0)
		close(w->efd);
	if (w->epfd >= 0)
		close(w->epfd);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(lat);
	free(w);
}

static void bench_wake(void)
{
	int rounds = B.quick ? 100 : 2000, warmup = B.quick ? 10 : 50;

	for (int cross = 0; cross < 2; cross++) {
		struct group g = { .n = 0 };
		int wcpu = cross ? cpu_b : cpu_a;

		if (cross && cpu_b < 0) {
			printf("# wake/crosscpu skipped: one CPU allowed\n");
			continue;
		}
		snprintf(g.scenario, sizeof(g.scenario), "wake/%s",
			 cross ? "crosscpu" : "samecpu");
		bench_pin(cpu_a);
		/* The reference first, then the rest, in the table's order. */
		static const enum wvar order[W_NVAR] = {
			W_EVENTFD, W_CTX_READ, W_CTX_WAIT, W_CTX_SLEEP,
			W_FUTEX, W_CONDVAR,
		};
		for (int i = 0; i < W_NVAR; i++) {
			enum wvar v = order[i];
			struct row *r;

			if (v == W_EVENTFD)
				r = group_add(&g, wvar_name[v], R_REF, NULL,
					      0);
			else if (v <= W_CTX_SLEEP)
				r = group_add(&g, wvar_name[v], R_JUDGED,
					      "eventfd-epoll", 1.25);
			else
				r = group_add(&g, wvar_name[v], R_INFO,
					      "eventfd-epoll", 0);
			wake_variant(r, v, wcpu, rounds, warmup, g.scenario);
		}
		bench_unpin(&all_cpus);
		group_print(&g);
	}
	printf("# woken thread back before the waker's call returned (it "
	       "preempted the waker), share of rounds:\n%s", wake_notes);
	fflush(stdout);
}

/* ---- 2. deadline lateness ------------------------------------------------ */

enum lvar { L_TIMERFD, L_CTX_SLEEP, L_CTX_DEADLINE, L_NANOSLEEP,
	    L_CONDVAR, L_NVAR };
static const char *const lvar_name[L_NVAR] = {
	"timerfd", "ctx_sleep", "ctx_wait-deadline", "clock_nanosleep",
	"condvar-timedwait",
};

struct late {
	int tfd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* One sleep of d; returns how late it ended. */
static int64_t late_once(struct late *L, enum lvar v, int64_t d)
{
	int64_t t0, due, t1 = 0;
	int e;

	switch (v) {
	case L_TIMERFD: {
		struct itimerspec its = {
			.it_value = { (time_t)(d / CTX_SEC),
				      (long)(d % CTX_SEC) },
		};
		uint64_t n = 0;
		t0 = ctx_now();
		if (timerfd_settime(L->tfd, 0, &its, NULL))
			bench_fail("timerfd_settime: %s", strerror(errno));
		ssize_t k = read(L->tfd, &n, sizeof(n));
		t1 = ctx_now();
		if (k != sizeof(n) || n != 1)
			bench_fail("timerfd read: %zd, %llu expiries", k,
				   (unsigned long long)n);
		due = t0 + d;
		break;
	}
	case L_CTX_SLEEP: {
		ctx_t *c = ctx_with_cancel(ctx_background());
		if (!c)
			bench_fail("ctx_with_cancel: %s", strerror(errno));
		t0 = ctx_now();
		e = ctx_sleep(c, d);
		t1 = ctx_now();
		if (e)
			bench_fail("ctx_sleep: %s", ctx_strerror(e));
		ctx_release(c);
		due = t0 + d;
		break;
	}
	case L_CTX_DEADLINE: {
		due = ctx_now() + d;
		ctx_t *c = ctx_with_deadline(ctx_background(), due);
		if (!c)
			bench_fail("ctx_with_deadline: %s", strerror(errno));
		e = ctx_wait(c);
		t1 = ctx_now();
		if (e != CTX_DEADLINE_EXCEEDED)
			bench_fail("ctx_wait on a deadline: %s",
				   ctx_strerror(e));
		ctx_release(c);
		break;
	}
	case L_NANOSLEEP: {
		struct timespec ts = { (time_t)(d / CTX_SEC),
				       (long)(d % CTX_SEC) };
		t0 = ctx_now();
		e = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		t1 = ctx_now();
		if (e)
			bench_fail("clock_nanosleep: %s", strerror(e));
		due = t0 + d;
		break;
	}
	case L_CONDVAR: {
		due = ctx_now() + d;
		struct timespec ts = { (time_t)(due / CTX_SEC),
				       (long)(due % CTX_SEC) };
		e = 0;
		pthread_mutex_lock(&L->mu);
		while (e != ETIMEDOUT) {
			e = pthread_cond_timedwait(&L->cv, &L->mu, &ts);
			if (e && e != ETIMEDOUT)
				bench_fail("pthread_cond_timedwait: %s",
					   strerror(e));
		}
		t1 = ctx_now();
		pthread_mutex_unlock(&L->mu);
		break;
	}
	default:
		bench_fail("bad variant");
	}
	if (t1 < due)
		bench_fail("%s: ended %lld ns early", lvar_name[v],
			   (long long)(due - t1));
	return t1 - due;
}

static void bench_lateness(void)
{
	static const int64_t durs[2] = { CTX_MSEC, 10 * CTX_MSEC };
	int counts[2] = { B.quick ? 20 : 500, B.quick ? 5 : 100 };
	struct late L;
	pthread_condattr_t ca;

	L.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (L.tfd < 0)
		bench_fail("timerfd_create: %s", strerror(errno));
	pthread_mutex_init(&L.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&L.cv, &ca);
	pthread_condattr_destroy(&ca);
	bench_pin(cpu_a);
	for (int k = 0; k < 2; k++) {
		struct group g = { .n = 0 };
		int n = counts[k];
		int64_t *v[L_NVAR];

		snprintf(g.scenario, sizeof(g.scenario), "lateness/%lldms",
			 (long long)(durs[k] / CTX_MSEC));
		for (int i = 0; i < L_NVAR; i++)
			if (!(v[i] = malloc((size_t)n * sizeof(int64_t))))
				bench_fail("out of memory");
		/* Warm up every path once (reactor, timerfd), untimed. */
		for (int i = 0; i < L_NVAR; i++)
			late_once(&L, (enum lvar)i, 100 * CTX_USEC);
		/* Round robin, so that drift hits every variant alike. */
		for (int r = 0; r < n; r++)
			for (int i = 0; i < L_NVAR; i++)
				v[i][r] = late_once(&L, (enum lvar)i, durs[k]);
		for (int i = 0; i < L_NVAR; i++) {
			struct row *row;
			if (i == L_TIMERFD)
				row = group_add(&g, lvar_name[i], R_REF,
						NULL, 0);
			else if (i == L_CTX_SLEEP || i == L_CTX_DEADLINE)
				row = group_add(&g, lvar_name[i], R_JUDGED,
						"timerfd", 1.25);
			else
				row = group_add(&g, lvar_name[i], R_INFO,
						"timerfd", 0);
			row_set_i64(row, v[i], n);
			free(v[i]);
		}
		group_print(&g);
	}
	bench_unpin(&all_cpus);
	close(L.tfd);
	pthread_mutex_destroy(&L.mu);
	pthread_cond_destroy(&L.cv);
}

/* ---- 3. hot path: reads with the data already there -------------------- */

#define HOT_N 4096 /* bytes per batch: within a pipe's and a socket's buffer */

enum hvar { H_READ, H_PREADV2, H_CTX_READ, H_CTX_READ_DL, H_RECV,
	    H_CTX_RECV, H_CTX_RECV_DL };
struct hot {
	const char *scenario;
	const char *name;
	enum hvar v;
	int rfd, wfd;
	enum role role;
	const char *ref;
};

static char hot_pattern[HOT_N];

/* One batch: fill (untimed), then HOT_N timed 1-byte reads; ns per read.
 * Every read must return the next byte of the pattern. */
static double hot_batch(const struct hot *h, ctx_t *cc, ctx_t *cd)
{
	unsigned bad = 0;
	int64_t t0 = 0, t1 = 0;
	char b = 0;

	if (write(h->wfd, hot_pattern, HOT_N) != HOT_N)
		bench_fail("%s: fill: %s", h->scenario, strerror(errno));
#define HOT_LOOP(CALL)                                                    \
	do {                                                              \
		t0 = ctx_now();                                           \
		for (int i = 0; i < HOT_N; i++) {                         \
			ssize_t n_ = CALL;                                \
			bad += (n_ != 1) | (b != hot_pattern[i]);         \
		}                                                         \
		t1 = ctx_now();                                           \
	} while (0)
	switch (h->v) {
	case H_READ:
		HOT_LOOP(read(h->rfd, &b, 1));
		break;
	case H_PREADV2: {
		struct iovec iov = { &b, 1 };
		HOT_LOOP(preadv2(h->rfd, &iov, 1, -1, RWF_NOWAIT));
		break;
	}
	case H_CTX_READ:
		HOT_LOOP(ctx_read(cc, h->rfd, &b, 1));
		break;
	case H_CTX_READ_DL:
		HOT_LOOP(ctx_read(cd, h->rfd, &b, 1));
		break;
	case H_RECV:
		HOT_LOOP(recv(h->rfd, &b, 1, 0));
		break;
	case H_CTX_RECV:
		HOT_LOOP(ctx_recv(cc, h->rfd, &b, 1, 0));
		break;
	case H_CTX_RECV_DL:
		HOT_LOOP(ctx_recv(cd, h->rfd, &b, 1, 0));
		break;
	}
#undef HOT_LOOP
	if (bad)
		bench_fail("%s/%s: %u of %d reads did not return their byte",
			   h->scenario, h->name, bad, HOT_N);
	/* Nothing may be left over: a short read would show up here. */
	struct pollfd pfd = { h->rfd, POLLIN, 0 };
	if (poll(&pfd, 1, 0) != 0)
		bench_fail("%s/%s: data left after the batch", h->scenario,
			   h->name);
	return (double)(t1 - t0) / HOT_N;
}

static void bench_hotpath(void)
{
	int batches = B.quick ? 10 : 200;
	int p[2], s[2];
	ctx_t *cc, *cd;

	for (int i = 0; i < HOT_N; i++)
		hot_pattern[i] = (char)(i * 7 + 1);
	if (pipe2(p, O_CLOEXEC) || socketpair(AF_UNIX, SOCK_STREAM |
						SOCK_CLOEXEC, 0, s))
		bench_fail("pipe/socketpair: %s", strerror(errno));
	/* Blocking descriptors, as most programs have them: the data is
	 * always there, and a read that would block is caught by the
	 * watchdog in main. */
	cc = ctx_with_cancel(ctx_background());
	cd = ctx_with_timeout(ctx_background(), HOUR);
	if (!cc || !cd)
		bench_fail("contexts: %s", strerror(errno));

	const struct hot hs[] = {
		{ "hotpath/pipe", "read", H_READ, p[0], p[1], R_REF, NULL },
		/* The cheapest read that cannot block a blocking pipe, and
		 * what ctx_read does first: shown, not judged. */
		{ "hotpath/pipe", "preadv2-nowait", H_PREADV2, p[0], p[1],
		  R_INFO, "read" },
		{ "hotpath/pipe", "ctx_read", H_CTX_READ, p[0], p[1],
		  R_JUDGED, "read" },
		{ "hotpath/pipe", "ctx_read-deadline", H_CTX_READ_DL, p[0],
		  p[1], R_JUDGED, "read" },
		{ "hotpath/socketpair", "read", H_READ, s[0], s[1], R_REF,
		  NULL },
		{ "hotpath/socketpair", "ctx_read", H_CTX_READ, s[0], s[1],
		  R_JUDGED, "read" },
		{ "hotpath/socketpair", "ctx_read-deadline", H_CTX_READ_DL,
		  s[0], s[1], R_JUDGED, "read" },
		{ "hotpath/socketpair-recv", "recv", H_RECV, s[0], s[1],
		  R_REF, NULL },
		{ "hotpath/socketpair-recv", "ctx_recv", H_CTX_RECV, s[0],
		  s[1], R_JUDGED, "recv" },
		{ "hotpath/socketpair-recv", "ctx_recv-deadline",
		  H_CTX_RECV_DL, s[0], s[1], R_JUDGED, "recv" },
	};
	enum { NH = sizeof(hs) / sizeof(hs[0]) };
	double *v[NH];

	bench_pin(cpu_a);
	for (int i = 0; i < NH; i++)
		if (!(v[i] = malloc((size_t)batches * sizeof(double))))
			bench_fail("out of memory");
	for (int w = 0; w < 3; w++) /* warm-up: caches, socket hint */
		for (int i = 0; i < NH; i++)
			hot_batch(&hs[i], cc, cd);
	for (int r = 0; r < batches; r++)
		for (int i = 0; i < NH; i++)
			v[i][r] = hot_batch(&hs[i], cc, cd);
	bench_unpin(&all_cpus);
	if (ctx_err(cc) || ctx_err(cd))
		bench_fail("hot path: a context ended");

	for (int i = 0; i < NH;) {
		struct group g = { .n = 0 };
		snprintf(g.scenario, sizeof(g.scenario), "%s", hs[i].scenario);
		for (; i < NH && !strcmp(hs[i].scenario, g.scenario); i++) {
			struct row *row = group_add(&g, hs[i].name,
						    hs[i].role, hs[i].ref,
						    1.05);
			row_set_dbl(row, v[i], batches);
			free(v[i]);
		}
		group_print(&g);
	}
	ctx_release(cc);
	ctx_release(cd);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}

/* ---- 4. fan-out ------------------------------------------------------------ */

/* F_CTX_READ: each waiter in ctx_read on its own silent socket, under
 * its own child of the context that is cancelled (made each round). */
enum fvar { F_CONDVAR, F_CTX_WAIT, F_EVENTFD, F_CTX_READ, F_NVAR };
static const char *const fvar_name[F_NVAR] = {
	"condvar-broadcast", "ctx_wait", "eventfd-epoll", "ctx_read-child",
};

struct fan;
struct fan_waiter {
	struct fan *f;
	pthread_t th;
	_Atomic pid_t tid;
	int epfd;
	int sock[2];
	int64_t t1;
	bool ok;
};

struct fan {
	enum fvar v;
	int n;
	_Atomic uint32_t gen;   /* round to run (futex word) */
	_Atomic uint32_t ready; /* waiters about to block this round */
	_Atomic uint32_t woke;  /* waiters back this round */
	_Atomic uint32_t done;  /* round all came back from (futex word) */
	bool quit;
	ctx_t *ctx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int flag;
	int efd;
	struct fan_waiter *w;
};

static void *fan_main(void *p)
{
	struct fan_waiter *me = p;
	struct fan *f = me->f;

	atomic_store(&me->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		bench_await_round(&f->gen, r);
		if (f->quit)
			break;
		int64_t t1 = 0;
		bool ok = false;
		switch (f->v) {
		case F_CTX_WAIT: {
			atomic_fetch_add(&f->ready, 1);
			int e = ctx_wait(f->ctx);
			t1 = ctx_now();
			ok = e == CTX_CANCELED;
			break;
		}
		case F_CONDVAR:
			pthread_mutex_lock(&f->mu);
			atomic_fetch_add(&f->ready, 1);
			while (!f->flag)
				pthread_cond_wait(&f->cv, &f->mu);
			t1 = ctx_now();
			ok = f->flag == 1;
			pthread_mutex_unlock(&f->mu);
			break;
		case F_EVENTFD: {
			struct epoll_event ev;
			atomic_fetch_add(&f->ready, 1);
			int n = epoll_wait(me->epfd, &ev, 1, -1);
			t1 = ctx_now();
			ok = n == 1 && (ev.events & EPOLLIN);
			break;
		}
		case F_CTX_READ: {
			ctx_t *child = ctx_with_cancel(f->ctx);
			char b;
			atomic_fetch_add(&f->ready, 1);
			ssize_t got = child ? ctx_read(child, me->sock[0], &b, 1)
					    : 0;
			t1 = ctx_now();
			ok = got < 0 && errno == CTX_CANCELED;
			ctx_release(child);
			break;
		}
		case F_NVAR:
			break;
		}
		me->t1 = t1;
		me->ok = ok;
		if (atomic_fetch_add(&f->woke, 1) + 1 == (uint32_t)f->n) {
			atomic_store_explicit(&f->done, r,
					      memory_order_release);
			bench_futex_wake(&f->done, 1);
		}
	}
	return NULL;
}

/* Median etc. of the time until the last of n waiters is back. */
static void fan_variant(struct row *row, enum fvar v, int n, int rounds,
			bool pinned, const char *scen)
{
	struct fan *f = calloc(1, sizeof(*f));
	int64_t *last = malloc((size_t)rounds * sizeof(*last));
	const long *calls = v == F_CONDVAR ? futex_calls :
			    v == F_EVENTFD ? epoll_calls : libctx_calls;
	const int warmup = 1; /* the first round builds the reactors */
	pthread_attr_t attr;
	char what[96];
	int e;

	if (!f || !last || !(f->w = calloc((size_t)n, sizeof(*f->w))))
		bench_fail("out of memory");
	snprintf(what, sizeof(what), "%s/%s", scen, fvar_name[v]);
	f->v = v;
	f->n = n;
	f->efd = -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (v == F_EVENTFD &&
	    (f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		bench_fail("eventfd: %s", strerror(errno));
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, FAN_STACK);
	for (int i = 0; i < n; i++) {
		struct fan_waiter *w = &f->w[i];
		cpu_set_t one;

		/* Pinned: waiter i on CPU i+1 (mod the CPUs), so that a lone
		 * waiter sits on the other CPU than the waker's. */
		CPU_ZERO(&one);
		CPU_SET(cpus[(i + 1) % ncpus], &one);
		if (pinned && (e = pthread_attr_setaffinity_np(
				       &attr, sizeof(one), &one)))
			bench_fail("%s: pthread_attr_setaffinity_np: %s", what,
				   strerror(e));
		w->f = f;
		w->epfd = -1;
		w->sock[0] = w->sock[1] = -1;
		if (v == F_CTX_READ &&
		    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, w->sock))
			bench_fail("%s: socketpair: %s", what, strerror(errno));
		if (v == F_EVENTFD) {
			struct epoll_event ev = { .events = EPOLLIN };
			w->epfd = epoll_create1(EPOLL_CLOEXEC);
			if (w->epfd < 0 ||
			    epoll_ctl(w->epfd, EPOLL_CTL_ADD, f->efd, &ev))
				bench_fail("%s: epoll: %s", what,
					   strerror(errno));
		}
		if ((e = pthread_create(&w->th, &attr, fan_main, w)))
			bench_fail("%s: pthread_create #%d: %s", what, i,
				   strerror(e));
	}
	pthread_attr_destroy(&attr);

	for (int r = 1; r <= warmup + rounds; r++) {
		int64_t limit = ctx_now() + STUCK_NS;
		int spins = 0;

		if ((v == F_CTX_WAIT || v == F_CTX_READ) &&
		    !(f->ctx = ctx_with_cancel(ctx_background())))
			bench_fail("ctx_with_cancel: %s", strerror(errno));
		f->flag = 0;
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
		/* For the condvar: each waiter counted itself under the
		 * mutex, and pthread_cond_wait releases it only once the
		 * waiter is queued; all n asleep in futex with all n
		 * counted means all n wait on the condvar (none can be
		 * queued on the mutex: nobody running holds it). */
		for (int i = 0; i < n; i++)
			bench_await_blocked(atomic_load(&f->w[i].tid),
					    calls, STUCK_NS, what);
		bench_settle();

		int64_t t0 = ctx_now();
		switch (v) {
		case F_CTX_WAIT:
		case F_CTX_READ:
			ctx_cancel(f->ctx);
			break;
		case F_CONDVAR:
			pthread_mutex_lock(&f->mu);
			f->flag = 1;
			pthread_cond_broadcast(&f->cv);
			pthread_mutex_unlock(&f->mu);
			break;
		case F_EVENTFD:
			if (eventfd_write(f->efd, 1))
				bench_fail("eventfd_write: %s",
					   strerror(errno));
			break;
		case F_NVAR:
			break;
		}
		bench_await_word(&f->done, (uint32_t)r, STUCK_NS, what);

		int64_t t1 = INT64_MIN;
		int woke = 0;
		for (int i = 0; i < n; i++) {
			woke += f->w[i].ok;
			if (f->w[i].t1 > t1)
				t1 = f->w[i].t1;
		}
		if (woke != n)
			bench_fail("%s round %d: %d of %d waiters woke right",
				   what, r, woke, n);
		if (t1 < t0)
			bench_fail("%s round %d: woke before the wake-up",
				   what, r);
		if (r > warmup)
			last[r - warmup - 1] = t1 - t0;
		if (v == F_EVENTFD) {
			eventfd_t val = 0;
			if (eventfd_read(f->efd, &val) || val != 1)
				bench_fail("%s: eventfd held %llu", what,
					   (unsigned long long)val);
		}
		if (f->ctx) {
			ctx_release(f->ctx);
			f->ctx = NULL;
		}
	}
	f->quit = true;
	atomic_store_explicit(&f->gen, (uint32_t)(warmup + rounds + 1),
			      memory_order_release);
	bench_futex_wake(&f->gen, INT_MAX);
	for (int i = 0; i < n; i++) {
		pthread_join(f->w[i].th, NULL);
		if (f->w[i].epfd >= 0)
			close(f->w[i].epfd);
		if (f->w[i].sock[0] >= 0) {
			close(f->w[i].sock[0]);
			close(f->w[i].sock[1]);
		}
	}
	row_set_i64(row, last, rounds);
	if (f->efd >= 0)
		close(f->efd);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f->w);
	free(f);
	free(last);
}

static void bench_fanout(void)
{
	static const int sizes[] = { 1, 16, 128, 256, 1024 };
	struct rlimit rl;
	/* Per libctx waiter: a socket pair and a wake-up eventfd; per
	 * eventfd-epoll waiter: one epoll; plus slack for everything else. */
	rlim_t need = 3 * 1024 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			bench_fail("setrlimit: %s", strerror(errno));
	}
	if (rl.rlim_cur < need)
		bench_fail("fanout needs %llu descriptors; the hard limit is "
			   "%llu", (unsigned long long)need,
			   (unsigned long long)rl.rlim_cur);
	/* First as programs run, nothing pinned: judged.  Then with fixed
	 * placement (waker on the first CPU, waiters round robin from the
	 * second): shown, not judged -- it moves the condvar's numbers a
	 * lot, and either way would be choosing the favourable one. */
	for (int pinned = 0; pinned < 2; pinned++) {
		if (pinned && ncpus < 2)
			break;
		if (pinned)
			bench_pin(cpu_a);
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			int n = sizes[k];
			/* Unpinned, a lone waiter shares the waker's CPU in
			 * some rounds and not in others: more rounds. */
			int rounds = B.quick ? (n >= 256 ? 2 : 3) :
				     pinned ? (n >= 256 ? 3 : 9) :
				     (n >= 1024 ? 5 : n >= 256 ? 9 : 31);
			struct group g = { .n = 0 };

			snprintf(g.scenario, sizeof(g.scenario), "fanout%s/%d",
				 pinned ? "-pinned" : "", n);
			for (int v = 0; v < F_NVAR; v++) {
				struct row *r;
				if (v == F_CONDVAR)
					r = group_add(&g, fvar_name[v], R_REF,
						      NULL, 0);
				else if ((v == F_CTX_WAIT || v == F_CTX_READ) &&
					 !pinned)
					r = group_add(&g, fvar_name[v],
						      R_JUDGED,
						      "condvar-broadcast", 1.0);
				else
					r = group_add(&g, fvar_name[v], R_INFO,
						      "condvar-broadcast", 0);
				fan_variant(r, (enum fvar)v, n, rounds, pinned,
					    g.scenario);
			}
			group_print(&g);
		}
		if (pinned)
			bench_unpin(&all_cpus);
	}
}

/* ---- main -------------------------------------------------------------- */

static void print_notes(void)
{
	char buf[256];
	int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);

	if (bench_read_small("/sys/devices/system/clocksource/clocksource0/"
		       "current_clocksource", buf, sizeof(buf)) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		printf("# clocksource: %s\n", buf);
	}
	printf("# timer slack: %d ns (clock_nanosleep, condvar timedwait and "
	       "epoll_wait timeouts get it; timerfd does not)\n", slack);
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# cpus used: %d (samecpu, canceller, lateness, hotpath)", cpu_a);
	if (cpu_b >= 0)
		printf(", %d (crosscpu waiter)", cpu_b);
	printf("; fanout: nothing pinned (as programs run; a lone waiter "
	       "may share the waker's CPU or not); fanout-pinned: waker on "
	       "%d, waiter i on the (i+1)th CPU of %d\n", cpu_a, ncpus);
	printf("# blocked check: /proc/self/task/<tid>/stat state S%s, "
	       "polled after the waiter posts \"about to block\"\n",
	       bench_have_syscall_file() ? " and /proc/self/task/<tid>/syscall in "
				   "poll/ppoll, epoll_wait/epoll_pwait or futex" :
				   " (no syscall file: state only)");
	printf("# futex: raw SYS_futex FUTEX_WAIT_PRIVATE/FUTEX_WAKE_PRIVATE;"
	       " condvar: pthread_cond_wait on a flag, signal under the "
	       "mutex\n");
	printf("# hotpath: %d 1-byte reads per batch on blocking fds, data "
	       "written first (untimed); p50/p99 over batches\n", HOT_N);
	printf("# fanout: time until the last waiter is back, median "
	       "(p50) and max (p99 with few rounds) over rounds\n");
	printf("# percentiles: nearest rank; verdicts judge p50\n");
	printf("# columns: scenario,variant,p50_ns,p99_ns,n,p50_ratio,"
	       "p99_ratio,target,verdict\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
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

	bench_print_machine("bench_wait: wake-up latency, timer lateness, "
			    "hot-path reads, fan-out");
	print_notes();

	bench_wake();
	bench_lateness();
	bench_hotpath();
	bench_fanout();

	printf("# targets missed: %d\n%s", missed, missed_list);
	printf("# run took %.1f s%s\n",
	       (double)(ctx_now() - start) / CTX_SEC,
	       B.quick ? " (--quick)" : "");
	return 0;
}
