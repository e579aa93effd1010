/*
 * Stress: many threads doing everything at once, at random, with every
 * result and the length of every wait checked as it happens.
 *
 *  soak  Random workers (seeded: STRESS_SEED=n repeats a seed, which is
 *        printed with any failure) build context chains and trees, under
 *        the background or under a shared root that the test thread
 *        cancels and replaces at random ("epochs"), with deadlines from 0
 *        to 50 ms, and wait on them in every way the library offers:
 *        ctx_read on pipes, ctx_recv on socketpairs, channels (buffered
 *        and not) both ways, wait groups, error groups, thread joins,
 *        ctx_sleep, ctx_wait, ctx_poll, after-funcs and done fds.  Helper
 *        threads write, send, receive, close, count down and cancel at
 *        random moments.  Each wait must end by the earliest of its
 *        deadline and the events that must end it, plus TOL_MS (the
 *        machines that run this are shared; an overshoot is a lost
 *        wake-up), and return a result the API allows, consistent with
 *        its context's state and with what the helpers did.  Workers
 *        retire after a random number of operations and are replaced, so
 *        reactors are made and torn down throughout.  At the end
 *        descriptors and threads are back to their baseline (the
 *        library's timer and after-func threads are started before the
 *        baseline is taken).  STRESS_SECONDS sets the soak's length (5 s
 *        by default, 2 s with CTX_TEST_QUICK: the CI-sized run; `make
 *        soak` runs 600 s).  Durations are those above divided by
 *        STRESS_SCALE (25 by default, 1 under valgrind), which keeps a few
 *        thousand operations a second going on two cores; STRESS_WORKERS
 *        sets the number of workers (6; make soak runs 10);
 *        STRESS_VERBOSE=1 prints the count, mean time and rate per kind.
 *  race  A wait that starts at the moment its context is cancelled, for
 *        RACE_MS per kind of wait (some thousands of times, at least
 *        RACE_MIN however slow the machine): each must return promptly.
 *  exit  Batches of short-lived threads wait, are cancelled together and
 *        exit the moment their wait returns, while the canceller is still
 *        waking the others and the next batch opens pipes on the numbers
 *        the exited threads' reactors freed: no wake-up may land in
 *        another file, and none may be lost.
 *
 * Failures found in a thread other than the test's are recorded (failf)
 * and asserted by the test's thread, so the suite works with CK_FORK=no.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define TOL_MS 2000           /* how late a wait may end on a busy machine */
#define MAX_DL_US 50000       /* deadlines and delays: 0 to 50 ms */
#define SOAK_S 5              /* default soak; STRESS_SECONDS overrides */
#define SOAK_SCALE 25         /* durations / 25: 0-2 ms; STRESS_SCALE */
#define WORKERS 6             /* STRESS_WORKERS overrides (make soak: 10) */
#define MAX_WORKERS 64
#define MAX_CHAIN 6
#define MAX_ACTS 4
#define TREE_MAX 40
#define CHAN_PEER_MS 200      /* a helper's own send/receive timeout */
#define RACE_MS 200           /* per kind of wait */
#define QUICK_RACE_MS 100
#define RACE_MAX 20000
#define RACE_MIN 10           /* iterations however slow the machine: a
			       * loaded one ran 8 in RACE_MS */
#define EXIT_MS 750           /* per variant */
#define EXIT_BATCH 32
#define QUICK_EXIT_BATCH 8
#define EXIT_STACK (128 * 1024)

/* Causes, so that an error can be traced to who caused it. */
enum {
	CAUSE_HELPER = 1001, /* a helper cancelled a node above the leaf */
	CAUSE_EPOCH,         /* the test thread cancelled the epoch root */
	CAUSE_SELF,          /* the worker cancelled before waiting */
	CAUSE_DL,            /* a deadline made with a _cause constructor */
	CAUSE_TREE,          /* the tree operation's own cancels */
};

static const char value_key[] = "stress";

/* ---- helpers ---------------------------------------------------------- */

static int64_t tol(void)
{
	return (tu_valgrind() ? 10 : 1) * (int64_t)TOL_MS * CTX_MSEC;
}

/*
 * When a call's own time (a sleep, a poll's timeout) and its context's
 * end have both passed by the time the thread looks, either result is
 * right (as in a Go select), and a thread descheduled between its two
 * looks sees them so.  A call that completes although its context ended
 * this much earlier than the call's own time is wrong.
 */
static int64_t slack(void)
{
	return (tu_valgrind() ? 10 : 1) * 20 * CTX_MSEC;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Back off in a spin loop: spin, then yield, then sleep a little. */
static void backoff(long i)
{
	if (i < 64)
		cpu_relax();
	else if (i < 2000)
		sched_yield();
	else
		tu_sleep_ns(20 * CTX_USEC);
}

static void spin_until(int64_t t)
{
	while (ctx_now() < t)
		cpu_relax();
}

/* splitmix64: one generator per thread. */
struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned rn(struct rng *r, unsigned n)
{
	return n ? (unsigned)(rnd(r) % n) : 0;
}

static bool chance(struct rng *r, unsigned pct)
{
	return rn(r, 100) < pct;
}

/* The soak's time scale: its random durations are divided by this
 * (STRESS_SCALE; 1 is the original 0-50 ms scale). */
static unsigned time_div = 1;

/* A random duration from 0 to max_us microseconds (divided by time_div). */
static int64_t rus(struct rng *r, unsigned max_us)
{
	return (int64_t)rn(r, max_us / time_div + 1) * CTX_USEC;
}

static unsigned long long seed;

static void pick_seed(void)
{
	const char *s = getenv("STRESS_SEED");
	if (s && *s)
		seed = strtoull(s, NULL, 0);
	else
		seed = (unsigned long long)ctx_now() ^
		       ((unsigned long long)getpid() << 32);
}

/* The first failure, for the test's thread to assert; all go to stderr. */
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[1024];
static _Atomic bool failed;

__attribute__((format(printf, 1, 2)))
static void failf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&fail_mu);
	if (!atomic_load(&failed))
		snprintf(fail_msg, sizeof(fail_msg), "%s", msg);
	atomic_store(&failed, true);
	pthread_mutex_unlock(&fail_mu);
	fprintf(stderr, "stress (seed %llu): %s\n", seed, msg);
}

/* For library results checked in threads other than the test's, where a
 * Check assertion must not fail (with CK_FORK=no it would jump into the
 * test's thread): recorded instead. */
#define expect_eq(a, b)                                                     \
	do {                                                                \
		long a__ = (long)(a), b__ = (long)(b);                      \
		if (a__ != b__)                                             \
			failf("%s:%d: %s is %ld, expected %ld", __FILE__,   \
			      __LINE__, #a, a__, b__);                      \
	} while (0)

static void reset_failures(void)
{
	pthread_mutex_lock(&fail_mu);
	fail_msg[0] = '\0';
	atomic_store(&failed, false);
	pthread_mutex_unlock(&fail_mu);
}

static void assert_no_failure(void)
{
	char msg[1024];

	pthread_mutex_lock(&fail_mu);
	snprintf(msg, sizeof(msg), "%s", fail_msg);
	pthread_mutex_unlock(&fail_mu);
	ck_assert_msg(!atomic_load(&failed), "%s [seed %llu: STRESS_SEED=%llu "
		      "repeats the choices]", msg, seed, seed);
}

static void set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

/*
 * Start what the library starts once and keeps: the timer thread (a done
 * fd with a deadline), the after-func runner, and this thread's reactor,
 * so that the counts taken next are the baseline to come back to.
 */
static void warm_up(void)
{
	_Atomic int ran = 0;
	int p[2];
	char ch;
	/* A deadline far enough that it is still ahead when the done fd is
	 * asked for, however slow the machine: the timer thread starts. */
	ctx_t *c = ctx_with_timeout(ctx_background(), 3600 * CTX_SEC);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_cancel(c);
	ctx_after_t *a = ctx_after_func(c, set_flag, &ran);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; !atomic_load(&ran) && i < 5000; i++)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&ran), 1);
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	c = ctx_with_timeout(ctx_background(), CTX_MSEC);
	ck_assert_int_eq(ctx_read(c, p[0], &ch, 1), -1);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}

/* ======================================================================
 * The soak
 * ==================================================================== */

enum {
	OP_READ, OP_RECV, OP_POLL, OP_CHAN_RECV, OP_CHAN_SEND, OP_WG,
	OP_GROUP, OP_JOIN, OP_SLEEP, OP_WAIT, OP_AFTER, OP_DONE_FD, OP_TREE,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"ctx_read(pipe)", "ctx_recv(socketpair)", "ctx_poll", "ctx_chan_recv",
	"ctx_chan_send", "ctx_wg_wait", "ctx_group", "ctx_thread_join",
	"ctx_sleep", "ctx_wait", "ctx_after_func", "ctx_done_fd", "tree",
};

enum { K_CANCEL, K_TIMEOUT, K_DLCAUSE, K_VALUE, K_WITHOUT };

static const char *const kind_names[] = {
	"cancel", "timeout", "timeout_cause", "value", "without_cancel",
};

static bool is_cancel_kind(int k)
{
	return k == K_CANCEL || k == K_TIMEOUT || k == K_DLCAUSE;
}

/* A root shared by the workers, cancelled and replaced by the test's
 * thread at random moments. */
struct epoch {
	ctx_t *c;
	_Atomic int refs;
	_Atomic bool issued;          /* set just before the cancel */
	_Atomic int64_t cancelled_at; /* once ctx_cancel_cause returned */
	int64_t dl;                   /* its deadline, INT64_MAX if none */
};

static pthread_mutex_t epoch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct epoch *epoch_cur;

static struct epoch *epoch_new(struct rng *r)
{
	struct epoch *e = calloc(1, sizeof(*e));
	int64_t d;

	ck_assert_ptr_nonnull(e);
	e->c = chance(r, 30) ?
		       ctx_with_timeout(ctx_background(), rus(r, 100000)) :
		       ctx_with_cancel(ctx_background());
	ck_assert_ptr_nonnull(e->c);
	e->dl = ctx_deadline(e->c, &d) ? d : INT64_MAX;
	atomic_init(&e->refs, 1);
	return e;
}

static struct epoch *epoch_get(void)
{
	pthread_mutex_lock(&epoch_mu);
	struct epoch *e = epoch_cur;
	if (e)
		atomic_fetch_add(&e->refs, 1);
	pthread_mutex_unlock(&epoch_mu);
	return e;
}

static void epoch_put(struct epoch *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
		ctx_release(e->c);
		free(e);
	}
}

/* Replace the current epoch; cancel and drop the old one. */
static void epoch_rotate(struct rng *r, bool last)
{
	struct epoch *n = last ? NULL : epoch_new(r);

	pthread_mutex_lock(&epoch_mu);
	struct epoch *old = epoch_cur;
	epoch_cur = n;
	pthread_mutex_unlock(&epoch_mu);
	if (!old)
		return;
	atomic_store(&old->issued, true);
	ctx_cancel_cause(old->c, CAUSE_EPOCH);
	atomic_store(&old->cancelled_at, ctx_now());
	epoch_put(old);
}

struct node {
	ctx_t *c;
	int kind;
	int64_t us;          /* timeouts */
	int64_t made_before; /* ctx_now() before and after it was made */
	int64_t made_after;
	bool affects;        /* cancelling it ends the leaf */
};

enum {
	A_CANCEL, A_WRITE, A_CLOSE, A_CHAN_SEND, A_CHAN_RECV, A_CHAN_CLOSE,
	A_WG_DONE,
};

static const char *const act_names[] = {
	"cancel", "write", "close", "chan_send", "chan_recv", "chan_close",
	"wg_done",
};

struct action {
	int kind;
	int64_t at;      /* after the op's t0 */
	int arg;         /* bytes, elements, counts, node index */
	int which;       /* A_WRITE: 0 first pipe, 1 second */
	ctx_t *ref;      /* A_CANCEL: the helper's own reference */
	bool affects;    /* A_CANCEL: ends the leaf */
};

struct worker;

struct op {
	struct worker *w;
	struct rng hr;              /* the helper's generator */
	int kind;
	char what[480];
	struct epoch *ep;
	bool ep_affects;
	struct node chain[MAX_CHAIN];
	int n;
	ctx_t *leaf;
	int64_t t0;                 /* when the plan's clock started */
	int64_t dl;                 /* the leaf's deadline; INT64_MAX: none */
	int64_t sure_end;           /* planned: the wait is over by then */
	struct action acts[MAX_ACTS];
	int nacts;
	ctx_thread_t *helper;
	bool self_cancelled;
	/* what the helper did */
	_Atomic int64_t event_at;   /* an event that must end the wait */
	_Atomic int64_t helper_end;
	_Atomic bool cancelled;     /* a helper cancel that ends the leaf */
	_Atomic int wrote[2];
	_Atomic bool closed;
	_Atomic int moved;          /* elements sent or received */
	_Atomic int dones;
	_Atomic bool seq_bad;
	/* resources */
	int rfd[2], wfd[2];
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	int k;
};

struct worker {
	int idx;
	unsigned gen;
	struct rng r;
	pthread_t th;
	long ops_left;
	_Atomic bool exited;
	_Atomic int64_t busy_since; /* 0: between operations */
	_Atomic int64_t must_end;   /* the watchdog's limit */
	pthread_mutex_t what_mu;
	char what[480];
};

static _Atomic bool soak_stop;
static _Atomic long soak_ops[OP_COUNT];
static _Atomic int64_t soak_ns[OP_COUNT]; /* time spent, per kind */

/* Stopped after-funcs' arguments: checked at the end that fn never ran. */
struct aft {
	_Atomic int ran;
	_Atomic int64_t at;
	_Atomic int err_seen;
	ctx_t *target;
	struct aft *next;
};

static pthread_mutex_t grave_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aft *graveyard;

__attribute__((format(printf, 2, 3)))
static void say(struct op *o, const char *fmt, ...)
{
	size_t len = strlen(o->what);
	va_list ap;

	if (len + 1 >= sizeof(o->what))
		return;
	va_start(ap, fmt);
	vsnprintf(o->what + len, sizeof(o->what) - len, fmt, ap);
	va_end(ap);
}

/* Milliseconds from the op's start, for messages. */
static double rel(struct op *o, int64_t t)
{
	return t == INT64_MAX ? 1e9 : (double)(t - o->t0) / CTX_MSEC;
}

static void min_store(_Atomic int64_t *v, int64_t t)
{
	int64_t cur = atomic_load(v);
	while ((cur == 0 || t < cur) &&
	       !atomic_compare_exchange_weak(v, &cur, t))
		;
}

static void mark_event(struct op *o)
{
	min_store(&o->event_at, ctx_now());
}

/* The earliest moment from which the leaf's waits must end within tol. */
static int64_t bound(struct op *o)
{
	int64_t by = o->dl, ev = atomic_load(&o->event_at);

	if (ev && ev < by)
		by = ev;
	if (o->ep_affects) {
		ev = atomic_load(&o->ep->cancelled_at);
		if (ev && ev < by)
			by = ev;
	}
	return by;
}

/* The moment the leaf was certainly cancelled by someone (or INT64_MAX). */
static int64_t cancelled_by(struct op *o)
{
	int64_t by = INT64_MAX, ev;

	if (atomic_load(&o->cancelled) && (ev = atomic_load(&o->event_at)))
		by = ev;
	if (o->ep_affects && (ev = atomic_load(&o->ep->cancelled_at)) &&
	    ev < by)
		by = ev;
	return by;
}

/* ctx_err reports an expired deadline as soon as it has passed, whether
 * or not anyone waits: read the clock, then the error. */
static void check_expired(struct op *o, const char *call)
{
	int64_t now = ctx_now();
	int e = ctx_err(o->leaf);

	if (o->dl != INT64_MAX && now >= o->dl && !e)
		failf("after %s: ctx_err(leaf) is 0 at %+.3f ms, %.3f ms past "
		      "its deadline [%s]", call, rel(o, now),
		      (double)(now - o->dl) / CTX_MSEC, o->what);
}

static void check_late(struct op *o, const char *call, int64_t start,
		       int64_t end, int64_t own_by)
{
	int64_t by = bound(o);

	check_expired(o, call);

	if (own_by < by)
		by = own_by;
	if (by != INT64_MAX && end > by + tol())
		failf("%s returned at %+.1f ms, %.1f ms after it had to "
		      "(began %+.1f ms, deadline %+.1f ms, own limit %+.1f "
		      "ms, events %+.1f ms): lost wake-up [%s]", call,
		      rel(o, end), (double)(end - by) / CTX_MSEC,
		      rel(o, start), rel(o, o->dl), rel(o, own_by),
		      rel(o, atomic_load(&o->event_at) ?
				     atomic_load(&o->event_at) : INT64_MAX),
		      o->what);
}

/*
 * A wait on the leaf returned error err: it must be the leaf's own, with
 * a cause that someone really gave, and a deadline error must not come
 * before the deadline.
 */
static void check_err(struct op *o, const char *call, int err)
{
	int le = ctx_err(o->leaf), cause = ctx_cause(o->leaf);
	int64_t now = ctx_now();

	if (err != CTX_CANCELED && err != CTX_DEADLINE_EXCEEDED) {
		failf("%s: error %d (%s), not a context error [%s]", call, err,
		      strerror(err), o->what);
		return;
	}
	if (le != err) {
		failf("%s returned %s but ctx_err(leaf) is %d [%s]", call,
		      ctx_strerror(err), le, o->what);
		return;
	}
	if (err == CTX_DEADLINE_EXCEEDED) {
		if (now < o->dl)
			failf("%s: deadline exceeded %.3f ms before the "
			      "deadline [%s]", call,
			      (double)(o->dl - now) / CTX_MSEC, o->what);
		if (cause != CTX_DEADLINE_EXCEEDED && cause != CAUSE_DL)
			failf("%s: deadline exceeded with cause %d [%s]", call,
			      cause, o->what);
		return;
	}
	bool ok = (cause == CAUSE_HELPER && atomic_load(&o->cancelled)) ||
		  (cause == CAUSE_EPOCH && o->ep_affects &&
		   atomic_load(&o->ep->issued)) ||
		  (cause == CAUSE_SELF && o->self_cancelled);
	if (!ok)
		failf("%s: canceled with cause %d, which nobody gave to a "
		      "context above the leaf [%s]", call, cause, o->what);
}

static bool make_node(struct op *o, ctx_t *p, struct node *nd)
{
	nd->made_before = ctx_now();
	switch (nd->kind) {
	case K_CANCEL:
		nd->c = ctx_with_cancel(p);
		break;
	case K_TIMEOUT:
		nd->c = ctx_with_timeout(p, nd->us);
		break;
	case K_DLCAUSE:
		nd->c = ctx_with_timeout_cause(p, nd->us, CAUSE_DL);
		break;
	case K_VALUE:
		nd->c = ctx_with_value(p, value_key, nd);
		break;
	default:
		nd->c = ctx_without_cancel(p);
		break;
	}
	nd->made_after = ctx_now();
	if (!nd->c)
		failf("%s constructor returned NULL, errno %d [%s]",
		      kind_names[nd->kind], errno, o->what);
	return nd->c != NULL;
}

/* Work out the leaf, which nodes end it, its deadline; check the
 * deadline and value the chain must give it. */
static void finish_chain(struct op *o)
{
	int last_without = -1;
	bool a = true;
	void *want_value = NULL;
	int64_t lo = INT64_MAX, hi = INT64_MAX, d;

	o->leaf = o->n ? o->chain[o->n - 1].c :
			 (o->ep ? o->ep->c : ctx_background());
	for (int i = o->n - 1; i >= 0; i--) {
		o->chain[i].affects = a && is_cancel_kind(o->chain[i].kind);
		if (o->chain[i].kind == K_WITHOUT)
			a = false;
	}
	o->ep_affects = o->ep && a;
	for (int i = 0; i < o->n; i++) {
		if (o->chain[i].kind == K_WITHOUT)
			last_without = i;
		if (o->chain[i].kind == K_VALUE)
			want_value = &o->chain[i];
	}
	if (last_without < 0 && o->ep && o->ep->dl != INT64_MAX)
		lo = hi = o->ep->dl;
	for (int i = last_without + 1; i < o->n; i++) {
		struct node *nd = &o->chain[i];
		if (nd->kind != K_TIMEOUT && nd->kind != K_DLCAUSE)
			continue;
		int64_t l = nd->made_before + nd->us, h = nd->made_after + nd->us;
		lo = l < lo ? l : lo;
		hi = h < hi ? h : hi;
	}
	o->dl = ctx_deadline(o->leaf, &d) ? d : INT64_MAX;
	if (hi == INT64_MAX && o->dl != INT64_MAX)
		failf("ctx_deadline gives the leaf a deadline (%+.1f ms) "
		      "that no context above it has [%s]", rel(o, o->dl),
		      o->what);
	else if (hi != INT64_MAX && (o->dl < lo || o->dl > hi))
		failf("ctx_deadline gives the leaf %+.3f ms; the chain says "
		      "between %+.3f and %+.3f ms [%s]", rel(o, o->dl),
		      rel(o, lo), rel(o, hi), o->what);
	if (ctx_value(o->leaf, value_key) != want_value)
		failf("ctx_value(leaf) is not the nearest value [%s]",
		      o->what);
}

static bool build(struct op *o)
{
	struct rng *r = &o->w->r;
	ctx_t *p = o->ep ? o->ep->c : ctx_background();
	int n = 1 + (int)rn(r, MAX_CHAIN - 2);

	say(o, " chain=%s", o->ep ? "epoch" : "background");
	for (int i = 0; i < n; i++) {
		struct node *nd = &o->chain[i];
		unsigned x = rn(r, 100);
		nd->kind = x < 30 ? K_CANCEL : x < 58 ? K_TIMEOUT :
			   x < 66 ? K_DLCAUSE : x < 92 ? K_VALUE : K_WITHOUT;
		nd->us = rus(r, MAX_DL_US);
		if (nd->kind == K_TIMEOUT || nd->kind == K_DLCAUSE)
			say(o, ">%s(%.1fms)", kind_names[nd->kind],
			    (double)nd->us / CTX_MSEC);
		else
			say(o, ">%s", kind_names[nd->kind]);
		if (!make_node(o, p, nd))
			return false;
		o->n = i + 1;
		p = nd->c;
	}
	finish_chain(o);
	return true;
}

/* One more node under the leaf, which becomes the new leaf. */
static bool extend(struct op *o, int kind, int64_t us)
{
	struct node *nd = &o->chain[o->n];

	nd->kind = kind;
	nd->us = us;
	say(o, "+%s(%.1fms)", kind_names[kind], (double)us / CTX_MSEC);
	if (!make_node(o, o->leaf, nd))
		return false;
	o->n++;
	finish_chain(o);
	return true;
}

static void add_act(struct op *o, int kind, int64_t at, int arg, bool ends)
{
	struct action a = { .kind = kind, .at = at, .arg = arg };
	int i;

	if (o->nacts == MAX_ACTS)
		return;
	for (i = o->nacts; i > 0 && o->acts[i - 1].at > at; i--)
		o->acts[i] = o->acts[i - 1];
	o->acts[i] = a;
	o->nacts++;
	if (ends && o->t0 + at < o->sure_end)
		o->sure_end = o->t0 + at;
	say(o, " %s(%d)@%.1fms", act_names[kind], arg,
	    (double)at / CTX_MSEC);
}

/*
 * Maybe have the helper cancel a node: one that ends the leaf, or (now
 * and then) one that must not.  With `must`, the wait has no other end:
 * cancel a node that ends it, or give the leaf a deadline when none can.
 */
static bool add_cancel(struct op *o, bool must)
{
	struct rng *r = &o->w->r;
	int cand[MAX_CHAIN], nc = 0, any[MAX_CHAIN], na = 0;

	for (int i = 0; i < o->n; i++) {
		if (o->chain[i].affects)
			cand[nc++] = i;
		if (is_cancel_kind(o->chain[i].kind))
			any[na++] = i;
	}
	if (must && !nc) {
		if (!extend(o, K_TIMEOUT, rus(r, MAX_DL_US)))
			return false;
		if (o->dl < o->sure_end)
			o->sure_end = o->dl;
		return true;
	}
	if (!must && !chance(r, 45))
		return true;
	int idx = must || !na || chance(r, 80) ? (nc ? cand[rn(r, nc)] : -1) :
						  any[rn(r, na)];
	if (idx < 0 || o->nacts == MAX_ACTS)
		return true;
	struct node *nd = &o->chain[idx];
	add_act(o, A_CANCEL, rus(r, MAX_DL_US), idx, nd->affects);
	for (int i = 0; i < o->nacts; i++)
		if (o->acts[i].kind == A_CANCEL && !o->acts[i].ref) {
			o->acts[i].ref = ctx_ref(nd->c);
			o->acts[i].affects = nd->affects;
		}
	return true;
}

/* Now and then cancel a node above the leaf before waiting. */
static void maybe_self_cancel(struct op *o)
{
	struct rng *r = &o->w->r;

	if (!chance(r, 5))
		return;
	for (int i = o->n - 1; i >= 0; i--)
		if (o->chain[i].affects) {
			o->self_cancelled = true;
			say(o, " self-cancel#%d", i);
			ctx_cancel_cause(o->chain[i].c, CAUSE_SELF);
			return;
		}
}

static void fill(char *buf, int n)
{
	for (int i = 0; i < n; i++)
		buf[i] = (char)('a' + i % 26);
}

/* The helper waits in two ways: the library's (checked) or nanosleep. */
static void helper_sleep_until(struct op *o, int64_t t)
{
	int64_t now = ctx_now();

	if (t <= now)
		return;
	if (!chance(&o->hr, 50)) {
		tu_sleep_ns(t - now);
		return;
	}
	int e = ctx_sleep(ctx_background(), t - now);
	int64_t end = ctx_now();
	if (e != 0)
		failf("helper: ctx_sleep(background) returned %d [%s]", e,
		      o->what);
	else if (end < t)
		failf("helper: ctx_sleep(background) ended %.3f ms early [%s]",
		      (double)(t - end) / CTX_MSEC, o->what);
	else if (end > t + tol())
		failf("helper: ctx_sleep(background) ended %.1f ms late [%s]",
		      (double)(end - t) / CTX_MSEC, o->what);
}

/* A helper's own channel operation, with its own short deadline. */
static int helper_chan(struct op *o, bool send, long *v)
{
	ctx_t *c = ctx_with_timeout(ctx_background(),
				    CHAN_PEER_MS * CTX_MSEC);
	int64_t d = 0, start = ctx_now();
	int e;

	if (!c) {
		failf("helper: ctx_with_timeout: errno %d", errno);
		return ENOMEM;
	}
	ctx_deadline(c, &d);
	e = send ? ctx_chan_send(c, o->ch, v) : ctx_chan_recv(c, o->ch, v);
	int64_t end = ctx_now();
	if (e != 0 && e != CTX_DEADLINE_EXCEEDED && e != EPIPE)
		failf("helper: ctx_chan_%s returned %d [%s]",
		      send ? "send" : "recv", e, o->what);
	if (e == CTX_DEADLINE_EXCEEDED && end < d)
		failf("helper: ctx_chan_%s deadline exceeded early [%s]",
		      send ? "send" : "recv", o->what);
	if (end > (start > d ? start : d) + tol())
		failf("helper: ctx_chan_%s returned %.1f ms after its "
		      "deadline [%s]", send ? "send" : "recv",
		      (double)(end - d) / CTX_MSEC, o->what);
	ctx_release(c);
	return e;
}

static void act(struct op *o, struct action *a)
{
	char buf[64];
	long v;

	switch (a->kind) {
	case A_CANCEL:
		if (a->affects)
			atomic_store(&o->cancelled, true);
		ctx_cancel_cause(a->ref, CAUSE_HELPER);
		if (a->affects)
			mark_event(o);
		ctx_unref(a->ref);
		a->ref = NULL;
		break;
	case A_WRITE:
		fill(buf, a->arg);
		atomic_fetch_add(&o->wrote[a->which], a->arg);
		if (write(o->wfd[a->which], buf, (size_t)a->arg) != a->arg)
			failf("helper: write: %s [%s]", strerror(errno),
			      o->what);
		mark_event(o);
		break;
	case A_CLOSE:
		atomic_store(&o->closed, true);
		close(o->wfd[0]);
		o->wfd[0] = -1;
		mark_event(o);
		break;
	case A_CHAN_SEND:
		for (int i = 0; i < a->arg; i++) {
			v = atomic_load(&o->moved);
			if (helper_chan(o, true, &v))
				break;
			if (atomic_fetch_add(&o->moved, 1) + 1 == o->k)
				mark_event(o);
		}
		break;
	case A_CHAN_RECV:
		for (int i = 0; i < a->arg; i++) {
			if (helper_chan(o, false, &v))
				break;
			if (v != atomic_load(&o->moved))
				atomic_store(&o->seq_bad, true);
			atomic_fetch_add(&o->moved, 1);
		}
		break;
	case A_CHAN_CLOSE:
		atomic_store(&o->closed, true);
		ctx_chan_close(o->ch);
		mark_event(o);
		break;
	case A_WG_DONE:
		for (int i = 0; i < a->arg; i++) {
			if (chance(&o->hr, 30))
				tu_sleep_ns(rus(&o->hr, 2000));
			int d = atomic_fetch_add(&o->dones, 1) + 1;
			ctx_wg_done(o->wg);
			if (d == o->k)
				mark_event(o);
		}
		break;
	}
}

static void *helper_main(ctx_t *ctx, void *arg)
{
	struct op *o = arg;

	(void)ctx;
	for (int i = 0; i < o->nacts; i++) {
		helper_sleep_until(o, o->t0 + o->acts[i].at);
		act(o, &o->acts[i]);
	}
	atomic_store(&o->helper_end, ctx_now());
	return o;
}

/* Publish the op to the watchdog and start its helper. */
static void start(struct op *o)
{
	struct worker *w = o->w;
	int64_t lim = o->sure_end < o->dl ? o->sure_end : o->dl;

	if (lim == INT64_MAX) /* nothing ends it: it must not block */
		lim = o->t0 + 10 * CTX_SEC;
	else if (lim < o->t0 + 2 * CTX_SEC)
		lim = o->t0 + 2 * CTX_SEC;
	pthread_mutex_lock(&w->what_mu);
	snprintf(w->what, sizeof(w->what), "%s", o->what);
	pthread_mutex_unlock(&w->what_mu);
	atomic_store(&w->must_end, lim + tol() + CTX_SEC);
	atomic_store(&w->busy_since, o->t0);
	o->hr.s = rnd(&w->r);
	if (o->nacts == 0)
		return;
	int e = ctx_thread_create(&o->helper, ctx_background(), helper_main, o);
	if (e) {
		failf("ctx_thread_create(helper): %d [%s]", e, o->what);
		o->helper = NULL;
	}
}

/* Join the helper in short, checked, cancellable rounds. */
static void join_helper(struct op *o)
{
	struct rng *r = &o->w->r;

	while (o->helper) {
		ctx_t *jc = ctx_with_timeout(ctx_background(),
					     rus(r, MAX_DL_US));
		int64_t jdl = 0, start = ctx_now(), he;
		void *res = NULL;

		ck_assert_ptr_nonnull(jc);
		ctx_deadline(jc, &jdl);
		int e = ctx_thread_join(jc, o->helper, &res);
		int64_t end = ctx_now();
		he = atomic_load(&o->helper_end);
		if (e == 0) {
			o->helper = NULL;
			if (res != o)
				failf("ctx_thread_join(helper): result %p, "
				      "not %p [%s]", res, (void *)o, o->what);
			if (end > (start > he ? start : he) + tol())
				failf("ctx_thread_join(helper) returned %.1f "
				      "ms after the helper finished [%s]",
				      (double)(end - he) / CTX_MSEC, o->what);
		} else if (e == CTX_DEADLINE_EXCEEDED) {
			if (end < jdl)
				failf("ctx_thread_join: deadline exceeded "
				      "early [%s]", o->what);
			if (end > jdl + tol())
				failf("ctx_thread_join: returned %.1f ms after "
				      "its deadline [%s]",
				      (double)(end - jdl) / CTX_MSEC, o->what);
			if (he && he + tol() < start)
				failf("ctx_thread_join: deadline exceeded "
				      "joining a thread that finished %.1f ms "
				      "before [%s]",
				      (double)(start - he) / CTX_MSEC, o->what);
		} else {
			failf("ctx_thread_join(helper): %d [%s]", e, o->what);
			ctx_release(jc);
			expect_eq(ctx_thread_join(ctx_background(), o->helper,
						  NULL), 0);
			o->helper = NULL;
			return;
		}
		ctx_release(jc);
	}
}

/* Every wait on a done context fails at once with its error. */
static void check_pre(struct op *o, const char *call, int pre, long rc,
		      int err)
{
	if (pre && !(rc == -1 && err == pre))
		failf("%s on a context already done (%s) returned %ld, error "
		      "%d [%s]", call, ctx_strerror(pre), rc, err, o->what);
}

/* ---- the operations ---------------------------------------------------- */

static void op_io(struct op *o, bool sock)
{
	struct rng *r = &o->w->r;
	const char *call = sock ? "ctx_recv" : "ctx_read";
	char buf[64];
	int p[2];
	bool ends = false;

	if (sock)
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, p), 0);
	else
		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	if (chance(r, 30))
		ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	o->rfd[0] = p[0];
	o->wfd[0] = p[1];
	if (!build(o))
		return;
	o->t0 = ctx_now();
	if (chance(r, 55)) {
		add_act(o, A_WRITE, rus(r, MAX_DL_US + 10000),
			1 + (int)rn(r, 32), true);
		ends = true;
	} else if (chance(r, 25)) {
		add_act(o, A_CLOSE, rus(r, MAX_DL_US), 0, true);
		ends = true;
	}
	if (!add_cancel(o, !ends && o->dl == INT64_MAX))
		return;
	start(o);
	maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	ssize_t n = sock ? ctx_recv(o->leaf, p[0], buf, sizeof(buf), 0) :
			   ctx_read(o->leaf, p[0], buf, sizeof(buf));
	int e = errno;
	int64_t end = ctx_now();
	check_pre(o, call, pre, (long)n, e);
	if (n > 0) {
		char want[64];
		fill(want, (int)n);
		if (n > atomic_load(&o->wrote[0]) || memcmp(buf, want, (size_t)n))
			failf("%s returned %zd bytes, not what was written "
			      "(%d) [%s]", call, n, atomic_load(&o->wrote[0]),
			      o->what);
	} else if (n == 0) {
		if (!atomic_load(&o->closed))
			failf("%s returned 0 (end of file) with the writer "
			      "open [%s]", call, o->what);
	} else {
		check_err(o, call, e);
	}
	check_late(o, call, t, end, INT64_MAX);
	join_helper(o);
}

static void op_poll(struct op *o)
{
	struct rng *r = &o->w->r;
	struct pollfd fds[2];
	int p[2], q[2], nf = chance(r, 50) ? 2 : 1;
	bool ends = false;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(pipe2(q, O_CLOEXEC | O_NONBLOCK), 0);
	o->rfd[0] = p[0];
	o->wfd[0] = p[1];
	o->rfd[1] = q[0];
	o->wfd[1] = q[1];
	fds[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = q[0], .events = POLLIN };
	int64_t timeout = chance(r, 40) ? -1 : rus(r, MAX_DL_US + 10000);
	if (!build(o))
		return;
	o->t0 = ctx_now();
	say(o, " timeout=%.1fms", (double)timeout / CTX_MSEC);
	if (timeout >= 0)
		o->sure_end = o->t0 + timeout;
	if (chance(r, 55)) {
		add_act(o, A_WRITE, rus(r, MAX_DL_US), 1 + (int)rn(r, 8), true);
		o->acts[0].which = (int)rn(r, (unsigned)nf);
		ends = true;
	}
	if (!add_cancel(o, !ends && o->dl == INT64_MAX && timeout < 0))
		return;
	start(o);
	maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int n = ctx_poll(o->leaf, fds, (nfds_t)nf, timeout);
	int e = errno;
	int64_t end = ctx_now();
	check_pre(o, "ctx_poll", pre, n, e);
	if (n > 0) {
		int ready = 0;
		for (int i = 0; i < nf; i++) {
			if (!fds[i].revents)
				continue;
			ready++;
			if (fds[i].revents != POLLIN ||
			    !atomic_load(&o->wrote[i]))
				failf("ctx_poll: entry %d has revents %#x, "
				      "%d bytes written to it [%s]", i,
				      fds[i].revents, atomic_load(&o->wrote[i]),
				      o->what);
		}
		if (ready != n)
			failf("ctx_poll returned %d, %d entries ready [%s]", n,
			      ready, o->what);
	} else if (n == 0) {
		if (timeout < 0)
			failf("ctx_poll with no timeout returned 0 [%s]",
			      o->what);
		else if (end - t < timeout)
			failf("ctx_poll timed out after %.3f ms of %.3f [%s]",
			      (double)(end - t) / CTX_MSEC,
			      (double)timeout / CTX_MSEC, o->what);
		else if (timeout > 0 && o->dl != INT64_MAX &&
			 o->dl + slack() < t + timeout)
			failf("ctx_poll timed out at %+.1f ms although its "
			      "context's deadline %+.1f ms came first [%s]",
			      rel(o, t + timeout), rel(o, o->dl), o->what);
		else if (timeout > 0 && cancelled_by(o) != INT64_MAX &&
			 cancelled_by(o) + slack() < t + timeout)
			failf("ctx_poll timed out at %+.1f ms although its "
			      "context was cancelled at %+.1f ms [%s]",
			      rel(o, t + timeout), rel(o, cancelled_by(o)),
			      o->what);
	} else {
		check_err(o, "ctx_poll", e);
	}
	check_late(o, "ctx_poll", t, end,
		   timeout >= 0 ? t + timeout : INT64_MAX);
	join_helper(o);
}

/* Take the `left` elements the channel must still hold, in order from
 * `next`, then check that it holds no more. */
static void drain(struct op *o, long next, int left)
{
	long v;

	if (left < 0) {
		failf("channel: %d more elements received than sent [%s]",
		      -left, o->what);
		return;
	}
	for (int i = 0; i <= left; i++) {
		/* The last try only looks: a context already done refuses
		 * at once, which is as good as an empty channel. */
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    i < left ? tol() : CTX_MSEC);
		ck_assert_ptr_nonnull(c);
		int e = ctx_chan_recv(c, o->ch, &v);
		ctx_release(c);
		if (i == left) {
			if (e == 0)
				failf("channel: element %ld received beyond the "
				      "%d sent: a send the context ended moved "
				      "it [%s]", v, (int)(next + left), o->what);
			else if (e != CTX_DEADLINE_EXCEEDED && e != EPIPE)
				failf("drain: ctx_chan_recv: %d [%s]", e,
				      o->what);
		} else if (e) {
			failf("channel: %d elements sent, only %ld received "
			      "(then %d): a receive the context ended moved "
			      "one [%s]", (int)(next + left), next + i, e,
			      o->what);
			return;
		} else if (v != next + i) {
			failf("drain: element %ld, expected %ld [%s]", v,
			      next + i, o->what);
		}
	}
}

static void op_chan_recv(struct op *o)
{
	struct rng *r = &o->w->r;
	size_t cap = chance(r, 35) ? 0 : 1 + rn(r, 4);
	int e = 0, got = 0;
	long v;

	o->k = 1 + (int)rn(r, 6);
	o->ch = ctx_chan_new(sizeof(long), cap);
	ck_assert_ptr_nonnull(o->ch);
	say(o, " cap=%zu k=%d", cap, o->k);
	if (!build(o))
		return;
	o->t0 = ctx_now();
	int64_t at = rus(r, MAX_DL_US);
	add_act(o, A_CHAN_SEND, at, o->k, true);
	if (chance(r, 25))
		add_act(o, A_CHAN_CLOSE, at + rus(r, 20000), 0, true);
	if (!add_cancel(o, false))
		return;
	start(o);
	maybe_self_cancel(o);
	while (got < o->k) {
		int pre = ctx_err(o->leaf);
		int64_t t = ctx_now();
		e = ctx_chan_recv(o->leaf, o->ch, &v);
		int64_t end = ctx_now();
		check_pre(o, "ctx_chan_recv", pre, e ? -1 : 0, e);
		check_late(o, "ctx_chan_recv", t, end, INT64_MAX);
		if (e)
			break;
		if (v != got)
			failf("ctx_chan_recv: element %ld, expected %d [%s]", v,
			      got, o->what);
		got++;
	}
	if (e == EPIPE) {
		if (!atomic_load(&o->closed))
			failf("ctx_chan_recv: EPIPE on an open channel [%s]",
			      o->what);
	} else if (e) {
		check_err(o, "ctx_chan_recv", e);
	}
	/* Done: the helper's remaining sends fail now (EPIPE) rather than
	 * wait out their own deadline; what it moved stays countable. */
	ctx_chan_close(o->ch);
	join_helper(o);
	drain(o, got, atomic_load(&o->moved) - got);
}

static void op_chan_send(struct op *o)
{
	struct rng *r = &o->w->r;
	size_t cap = chance(r, 35) ? 0 : 1 + rn(r, 4);
	bool closing = chance(r, 20);
	int e = 0, sent = 0;

	o->k = 1 + (int)rn(r, 6);
	o->ch = ctx_chan_new(sizeof(long), cap);
	ck_assert_ptr_nonnull(o->ch);
	say(o, " cap=%zu k=%d", cap, o->k);
	if (!build(o))
		return;
	o->t0 = ctx_now();
	int64_t at = rus(r, MAX_DL_US);
	add_act(o, A_CHAN_RECV, at, o->k, (size_t)o->k <= cap);
	if (closing)
		add_act(o, A_CHAN_CLOSE, at + rus(r, 20000), 0, true);
	if (!add_cancel(o, o->dl == INT64_MAX && !closing &&
				   (size_t)o->k > cap))
		return;
	start(o);
	maybe_self_cancel(o);
	for (long i = 0; i < o->k; i++) {
		int pre = ctx_err(o->leaf);
		int64_t t = ctx_now();
		e = ctx_chan_send(o->leaf, o->ch, &i);
		int64_t end = ctx_now();
		check_pre(o, "ctx_chan_send", pre, e ? -1 : 0, e);
		check_late(o, "ctx_chan_send", t, end, INT64_MAX);
		if (e)
			break;
		sent++;
	}
	if (e == EPIPE) {
		if (!atomic_load(&o->closed))
			failf("ctx_chan_send: EPIPE on an open channel [%s]",
			      o->what);
	} else if (e) {
		check_err(o, "ctx_chan_send", e);
	}
	ctx_chan_close(o->ch); /* as in op_chan_recv; buffered ones drain */
	join_helper(o);
	int taken = atomic_load(&o->moved);
	if (atomic_load(&o->seq_bad))
		failf("channel: the receiver got elements out of order [%s]",
		      o->what);
	drain(o, taken, sent - taken);
}

static void op_wg(struct op *o)
{
	struct rng *r = &o->w->r;
	bool all = chance(r, 70);

	o->k = 1 + (int)rn(r, 4);
	o->wg = ctx_wg_new();
	ck_assert_ptr_nonnull(o->wg);
	ctx_wg_add(o->wg, o->k);
	say(o, " k=%d all=%d", o->k, all);
	if (!build(o))
		return;
	o->t0 = ctx_now();
	if (all || o->k > 1)
		add_act(o, A_WG_DONE, rus(r, MAX_DL_US), all ? o->k : o->k - 1,
			all);
	if (!add_cancel(o, !all && o->dl == INT64_MAX))
		return;
	start(o);
	maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int e = ctx_wg_wait(o->leaf, o->wg);
	int64_t end = ctx_now();
	check_pre(o, "ctx_wg_wait", pre, e ? -1 : 0, e);
	if (e == 0 && atomic_load(&o->dones) != o->k)
		failf("ctx_wg_wait returned 0 after %d of %d dones [%s]",
		      atomic_load(&o->dones), o->k, o->what);
	else if (e)
		check_err(o, "ctx_wg_wait", e);
	check_late(o, "ctx_wg_wait", t, end, INT64_MAX);
	join_helper(o);
	int left = o->k - atomic_load(&o->dones);
	if (left)
		ctx_wg_add(o->wg, -left);
	expect_eq(ctx_wg_wait(ctx_background(), o->wg), 0);
}

struct gjob {
	struct op *o;
	int64_t sleep;
	int ret;
	_Atomic int result;
	_Atomic bool ran;
};

static int gjob_main(ctx_t *ctx, void *arg)
{
	struct gjob *j = arg;
	int64_t t = ctx_now(), d = INT64_MAX;
	int e = ctx_sleep(ctx, j->sleep);
	int64_t end = ctx_now();

	if (!ctx_deadline(ctx, &d))
		d = INT64_MAX;
	if (e == 0 && end - t < j->sleep)
		failf("group: ctx_sleep returned 0 after %.3f of %.3f ms [%s]",
		      (double)(end - t) / CTX_MSEC,
		      (double)j->sleep / CTX_MSEC, j->o->what);
	else if (e == CTX_DEADLINE_EXCEEDED && end < d)
		failf("group: ctx_sleep: deadline exceeded early [%s]",
		      j->o->what);
	else if (e && e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		failf("group: ctx_sleep: %d [%s]", e, j->o->what);
	else if (end > t + j->sleep + tol())
		failf("group: ctx_sleep of %.1f ms took %.1f ms [%s]",
		      (double)j->sleep / CTX_MSEC, (double)(end - t) / CTX_MSEC,
		      j->o->what);
	int r = e ? e : j->ret;
	atomic_store(&j->result, r);
	atomic_store(&j->ran, true);
	return r;
}

static void op_group(struct op *o)
{
	struct rng *r = &o->w->r;
	struct gjob jobs[4];
	bool started[4] = { false };
	int m = 1 + (int)rn(r, 4), lim = (int)rn(r, 3) - 1;
	int64_t total = 0;

	if (lim == 0)
		lim = 2;
	if (!build(o))
		return;
	o->t0 = ctx_now();
	ctx_group_t *g = ctx_group_new(o->leaf);
	ck_assert_ptr_nonnull(g);
	expect_eq(ctx_group_set_limit(g, lim), 0);
	say(o, " limit=%d jobs=%d", lim, m);
	for (int i = 0; i < m; i++) {
		jobs[i] = (struct gjob){ .o = o, .sleep = rus(r, 30000),
					 .ret = chance(r, 25) ? 3000 + i : 0 };
		total += jobs[i].sleep;
		say(o, " [%.1fms->%d]", (double)jobs[i].sleep / CTX_MSEC,
		    jobs[i].ret);
	}
	o->sure_end = o->t0 + total;
	if (!add_cancel(o, false))
		return;
	start(o);
	for (int i = 0; i < m; i++) {
		int e = ctx_group_go(g, gjob_main, &jobs[i]);
		/* At the limit, go ends with the group's context (issue 13). */
		if (e && e != EAGAIN && e != ctx_err(ctx_group_ctx(g)))
			failf("ctx_group_go: %d [%s]", e, o->what);
		started[i] = e == 0;
	}
	int e = ctx_group_wait(g);
	int64_t end = ctx_now();
	bool any = false, match = false;
	for (int i = 0; i < m; i++) {
		if (!started[i])
			continue;
		if (!atomic_load(&jobs[i].ran)) {
			failf("ctx_group_wait returned with job %d not run "
			      "[%s]", i, o->what);
			continue;
		}
		int jr = atomic_load(&jobs[i].result);
		any |= jr != 0;
		match |= jr != 0 && jr == e;
	}
	if (e == 0 && any)
		failf("ctx_group_wait returned 0 though a job failed [%s]",
		      o->what);
	if (e != 0 && !match)
		failf("ctx_group_wait returned %d, which no job returned [%s]",
		      e, o->what);
	if (!ctx_err(ctx_group_ctx(g)))
		failf("group context still live after ctx_group_wait [%s]",
		      o->what);
	if (end > o->t0 + total + tol())
		failf("ctx_group_wait returned %.1f ms after its jobs' total "
		      "time [%s]", (double)(end - o->t0 - total) / CTX_MSEC,
		      o->what);
	ctx_group_free(g);
	join_helper(o);
}

struct jarg {
	_Atomic int refs;
	int64_t d;
	_Atomic int64_t end;
	struct op *o;
};

static void jarg_put(struct jarg *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

static void *join_target(ctx_t *ctx, void *arg)
{
	struct jarg *j = arg;
	int e = ctx_sleep(ctx, j->d);

	if (e && e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		failf("join target: ctx_sleep: %d", e);
	atomic_store(&j->end, ctx_now());
	jarg_put(j);
	return (void *)(intptr_t)(0x100 + e);
}

static bool good_join_result(void *res)
{
	intptr_t v = (intptr_t)res - 0x100;
	return v == 0 || v == CTX_CANCELED || v == CTX_DEADLINE_EXCEEDED;
}

static void op_join(struct op *o)
{
	struct rng *r = &o->w->r;
	struct jarg *j = malloc(sizeof(*j));
	ctx_thread_t *t;
	void *res = NULL;

	ck_assert_ptr_nonnull(j);
	if (!build(o)) {
		free(j);
		return;
	}
	o->t0 = ctx_now();
	*j = (struct jarg){ .d = rus(r, MAX_DL_US), .o = o };
	atomic_init(&j->refs, 2);
	bool on_leaf = chance(r, 50);
	say(o, " target sleeps %.1fms on %s", (double)j->d / CTX_MSEC,
	    on_leaf ? "leaf" : "background");
	o->sure_end = o->t0 + j->d;
	if (!add_cancel(o, false)) {
		free(j);
		return;
	}
	start(o);
	int ce = ctx_thread_create(&t, on_leaf ? o->leaf : ctx_background(),
				   join_target, j);
	if (ce) {
		failf("ctx_thread_create: %d [%s]", ce, o->what);
		free(j);
		join_helper(o);
		return;
	}
	maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t st = ctx_now();
	int e = ctx_thread_join(o->leaf, t, &res);
	int64_t end = ctx_now(), te = atomic_load(&j->end);
	check_pre(o, "ctx_thread_join", pre, e ? -1 : 0, e);
	check_late(o, "ctx_thread_join", st, end,
		   te ? te : o->t0 + j->d + tol());
	if (e == 0) {
		if (!good_join_result(res))
			failf("ctx_thread_join: result %p [%s]", res, o->what);
	} else {
		check_err(o, "ctx_thread_join", e);
		if (!pre && te && te + tol() < st)
			failf("ctx_thread_join failed (%d) on a thread that "
			      "had finished %.1f ms before [%s]", e,
			      (double)(st - te) / CTX_MSEC, o->what);
		if (chance(r, 50)) {
			expect_eq(ctx_thread_detach(t), 0);
		} else {
			expect_eq(ctx_thread_join(ctx_background(), t, &res),
				  0);
			if (!good_join_result(res))
				failf("ctx_thread_join: result %p [%s]", res,
				      o->what);
		}
	}
	jarg_put(j);
	join_helper(o);
}

static void op_sleep(struct op *o)
{
	struct rng *r = &o->w->r;
	int64_t d = rus(r, MAX_DL_US + 10000);

	if (!build(o))
		return;
	o->t0 = ctx_now();
	say(o, " sleep=%.1fms", (double)d / CTX_MSEC);
	o->sure_end = o->t0 + d;
	if (!add_cancel(o, false))
		return;
	start(o);
	maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int e = ctx_sleep(o->leaf, d);
	int64_t end = ctx_now();
	if (pre && e != pre)
		failf("ctx_sleep on a done context returned %d [%s]", e,
		      o->what);
	if (e == 0) {
		if (end - t < d)
			failf("ctx_sleep returned 0 after %.3f of %.3f ms [%s]",
			      (double)(end - t) / CTX_MSEC,
			      (double)d / CTX_MSEC, o->what);
		if (d > 0 && o->dl != INT64_MAX && o->dl + slack() < t + d)
			failf("ctx_sleep slept its %.1f ms past its context's "
			      "deadline %+.1f ms [%s]", (double)d / CTX_MSEC,
			      rel(o, o->dl), o->what);
		if (d > 0 && cancelled_by(o) != INT64_MAX &&
		    cancelled_by(o) + slack() < t + d)
			failf("ctx_sleep slept on past its context's cancel "
			      "at %+.1f ms [%s]", rel(o, cancelled_by(o)),
			      o->what);
	} else {
		check_err(o, "ctx_sleep", e);
	}
	check_late(o, "ctx_sleep", t, end, t + d);
	join_helper(o);
}

static void op_wait(struct op *o)
{
	if (!build(o))
		return;
	o->t0 = ctx_now();
	if (!add_cancel(o, o->dl == INT64_MAX))
		return;
	start(o);
	maybe_self_cancel(o);
	int64_t t = ctx_now();
	int e = ctx_wait(o->leaf);
	int64_t end = ctx_now();
	if (e == 0)
		failf("ctx_wait returned 0 [%s]", o->what);
	else
		check_err(o, "ctx_wait", e);
	check_late(o, "ctx_wait", t, end, INT64_MAX);
	join_helper(o);
}

static void aft_main(void *arg)
{
	struct aft *a = arg;
	int e = a->target ? ctx_err(a->target) : -1;
	int64_t at = ctx_now();

	if (atomic_load(&a->ran) == 0) {
		atomic_store(&a->err_seen, e);
		atomic_store(&a->at, at);
	}
	/* Last: the test frees a as soon as it sees ran. */
	atomic_fetch_add(&a->ran, 1);
}

/* Wait up to tol for an after-func that must run to have run. */
static bool aft_wait(struct aft *a, int64_t from)
{
	while (!atomic_load(&a->ran) && ctx_now() < from + tol())
		tu_sleep_ns(200 * CTX_USEC);
	return atomic_load(&a->ran) != 0;
}

static void op_after(struct op *o)
{
	struct rng *r = &o->w->r;
	struct aft *fa = calloc(1, sizeof(*fa));
	bool stop_mode = chance(r, 50);

	ck_assert_ptr_nonnull(fa);
	if (!build(o)) {
		free(fa);
		return;
	}
	o->t0 = ctx_now();
	say(o, stop_mode ? " stop" : " wait");
	if (!add_cancel(o, !stop_mode && o->dl == INT64_MAX)) {
		free(fa);
		return;
	}
	fa->target = o->leaf;
	start(o);
	ctx_after_t *a = ctx_after_func(o->leaf, aft_main, fa);
	if (!a) {
		failf("ctx_after_func: NULL, errno %d [%s]", errno, o->what);
		free(fa);
		join_helper(o);
		return;
	}
	if (stop_mode) {
		tu_sleep_ns(rus(r, 30000));
		int64_t t = ctx_now();
		if (ctx_after_stop(a)) {
			if (atomic_load(&fa->ran))
				failf("ctx_after_stop returned true, but fn "
				      "ran [%s]", o->what);
			fa->target = NULL;
			pthread_mutex_lock(&grave_mu);
			fa->next = graveyard;
			graveyard = fa;
			pthread_mutex_unlock(&grave_mu);
			fa = NULL;
		} else if (!aft_wait(fa, t)) {
			failf("ctx_after_stop returned false, but fn did not "
			      "run within %lld ms [%s]",
			      (long long)(tol() / CTX_MSEC), o->what);
			fa = NULL; /* it may still run: leak rather than free */
		}
	} else {
		int64_t t = ctx_now();
		int e = ctx_wait(o->leaf);
		int64_t end = ctx_now();
		check_err(o, "ctx_wait", e);
		check_late(o, "ctx_wait", t, end, INT64_MAX);
		if (!aft_wait(fa, end))
			failf("after-func did not run within %lld ms of its "
			      "context's end [%s]",
			      (long long)(tol() / CTX_MSEC), o->what);
		if (ctx_after_stop(a))
			failf("ctx_after_stop returned true after fn ran "
			      "[%s]", o->what);
	}
	if (fa) {
		if (atomic_load(&fa->ran) != 1)
			failf("after-func ran %d times [%s]",
			      atomic_load(&fa->ran), o->what);
		else if (atomic_load(&fa->err_seen) != CTX_CANCELED &&
			 atomic_load(&fa->err_seen) != CTX_DEADLINE_EXCEEDED)
			failf("after-func ran with its context's error %d "
			      "[%s]", atomic_load(&fa->err_seen), o->what);
		free(fa);
	}
	join_helper(o);
}

static void op_done_fd(struct op *o)
{
	if (!build(o))
		return;
	o->t0 = ctx_now();
	if (!add_cancel(o, o->dl == INT64_MAX))
		return;
	start(o);
	errno = 0;
	int fd = ctx_done_fd(o->leaf);
	if (fd < 0) {
		failf("ctx_done_fd: -1, errno %d [%s]", errno, o->what);
		join_helper(o);
		return;
	}
	if (ctx_done_fd(o->leaf) != fd)
		failf("ctx_done_fd gave another descriptor [%s]", o->what);
	/* Wait without entering the library: the timer thread must make
	 * the descriptor readable at the deadline. */
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int64_t t = ctx_now(), end;
	int n;
	for (;;) {
		n = poll(&pf, 1, 5);
		end = ctx_now();
		if (n != 0)
			break;
		int64_t by = bound(o);
		if (by != INT64_MAX && end > by + tol())
			break;
	}
	if (n != 1 || pf.revents != POLLIN) {
		failf("done fd not readable %.1f ms after the context had "
		      "to end (poll %d, revents %#x) [%s]",
		      (double)(end - bound(o)) / CTX_MSEC, n, pf.revents,
		      o->what);
	} else {
		check_err(o, "done fd", ctx_err(o->leaf));
		check_late(o, "done fd", t, end, INT64_MAX);
		if (poll(&pf, 1, 0) != 1)
			failf("done fd readable once, then not [%s]", o->what);
	}
	join_helper(o);
}

/* A random tree: cancels here and there, by the worker and a helper;
 * every cancel reaches every descendant it should, and values resolve
 * to the nearest. */
struct tnode {
	ctx_t *c;
	int parent; /* index, -1: the base */
	int kind;
	bool held;
};

static bool tree_reaches(struct tnode *t, int from, int to)
{
	for (int i = to; i >= 0; i = t[i].parent) {
		if (i == from)
			return true;
		if (t[i].kind == K_WITHOUT)
			return false;
	}
	return false;
}

static void *tree_value(struct tnode *t, int i)
{
	for (; i >= 0; i = t[i].parent)
		if (t[i].kind == K_VALUE)
			return &t[i];
	return NULL;
}

/* y descends from the done node x: y must be done, at once or (when
 * another thread's cancel is still walking the tree) within tol. */
static void tree_expect_done(struct op *o, struct tnode *t, int y, int x)
{
	int64_t until = ctx_now() + tol();

	while (!ctx_err(t[y].c) && ctx_now() < until)
		tu_sleep_ns(100 * CTX_USEC);
	if (!ctx_err(t[y].c))
		failf("tree: #%d (%s) still live %lld ms after its ancestor "
		      "#%d (%s) was done [%s]", y, kind_names[t[y].kind],
		      (long long)(tol() / CTX_MSEC), x, kind_names[t[x].kind],
		      o->what);
}

static void op_tree(struct op *o)
{
	struct rng *r = &o->w->r;
	struct tnode t[TREE_MAX];
	int n = 8 + (int)rn(r, TREE_MAX - 7);
	ctx_t *base = o->ep ? o->ep->c : ctx_background();

	say(o, " nodes=%d", n);
	for (int i = 0; i < n; i++) {
		unsigned x = rn(r, 100);
		t[i].parent = i == 0 || chance(r, 10) ? -1 : (int)rn(r, (unsigned)i);
		t[i].kind = x < 35 ? K_CANCEL : x < 55 ? K_TIMEOUT :
			    x < 60 ? K_DLCAUSE : x < 90 ? K_VALUE : K_WITHOUT;
		ctx_t *p = t[i].parent < 0 ? base : t[t[i].parent].c;
		int64_t us = rus(r, MAX_DL_US);
		switch (t[i].kind) {
		case K_CANCEL:
			t[i].c = ctx_with_cancel(p);
			break;
		case K_TIMEOUT:
			t[i].c = ctx_with_timeout(p, us);
			break;
		case K_DLCAUSE:
			t[i].c = ctx_with_timeout_cause(p, us, CAUSE_DL);
			break;
		case K_VALUE:
			t[i].c = ctx_with_value(p, value_key, &t[i]);
			break;
		default:
			t[i].c = ctx_without_cancel(p);
			break;
		}
		ck_assert_ptr_nonnull(t[i].c);
		t[i].held = true;
	}
	o->t0 = ctx_now();
	for (int i = 0, m = (int)rn(r, 4); i < m && o->nacts < MAX_ACTS; i++) {
		int x = (int)rn(r, (unsigned)n);
		add_act(o, A_CANCEL, rus(r, 20000), x, false);
		for (int j = 0; j < o->nacts; j++)
			if (!o->acts[j].ref)
				o->acts[j].ref = ctx_ref(t[x].c);
	}
	o->sure_end = o->t0;
	start(o);
	for (int step = 0; step < n; step++) {
		int x = (int)rn(r, (unsigned)n);
		if (!t[x].held)
			continue;
		if (tree_value(t, x) != ctx_value(t[x].c, value_key))
			failf("tree: ctx_value(#%d) is not the nearest value "
			      "[%s]", x, o->what);
		switch (rn(r, 4)) {
		case 0:
			ctx_unref(t[x].c);
			t[x].held = false;
			break;
		case 1:
			if (!is_cancel_kind(t[x].kind))
				break;
			ctx_cancel_cause(t[x].c, CAUSE_TREE);
			if (!ctx_err(t[x].c))
				failf("tree: #%d live after ctx_cancel [%s]", x,
				      o->what);
			for (int y = 0; y < n; y++)
				if (t[y].held && tree_reaches(t, x, y))
					tree_expect_done(o, t, y, x);
			break;
		case 2:
			if (chance(r, 30))
				tu_sleep_ns(rus(r, 2000));
			break;
		default:
			break;
		}
	}
	join_helper(o);
	/* A done parent has done children: at once if this thread ended
	 * it, soon if another thread is still walking the tree. */
	for (int y = 0; y < n; y++) {
		int p = t[y].parent;
		if (!t[y].held || p < 0 || !t[p].held || t[y].kind == K_WITHOUT)
			continue;
		if (ctx_err(t[p].c))
			tree_expect_done(o, t, y, p);
	}
	for (int i = n - 1; i >= 0; i--) {
		int x = (int)rn(r, (unsigned)(i + 1));
		for (int j = 0; j < n; j++)
			if (t[(x + j) % n].held) {
				x = (x + j) % n;
				break;
			}
		if (!t[x].held)
			break;
		if (chance(r, 50))
			ctx_release(t[x].c);
		else
			ctx_unref(t[x].c);
		t[x].held = false;
	}
}

static void cleanup(struct op *o)
{
	struct rng *r = &o->w->r;

	for (int i = 0; i < o->nacts; i++)
		if (o->acts[i].ref) { /* the helper never ran */
			ctx_unref(o->acts[i].ref);
			o->acts[i].ref = NULL;
		}
	/* Drop the chain in a random order: each holds its parent. */
	for (int left = o->n; left > 0; left--) {
		int i = (int)rn(r, (unsigned)o->n);
		while (!o->chain[i].c)
			i = (i + 1) % o->n;
		if (chance(r, 50))
			ctx_release(o->chain[i].c);
		else
			ctx_unref(o->chain[i].c);
		o->chain[i].c = NULL;
	}
	for (int i = 0; i < 2; i++) {
		if (o->rfd[i] >= 0)
			close(o->rfd[i]);
		if (o->wfd[i] >= 0)
			close(o->wfd[i]);
	}
	if (o->ch)
		ctx_chan_free(o->ch);
	if (o->wg)
		ctx_wg_free(o->wg);
	epoch_put(o->ep);
}

static void run_op(struct worker *w, struct op *o)
{
	memset(o, 0, sizeof(*o));
	o->w = w;
	o->rfd[0] = o->rfd[1] = o->wfd[0] = o->wfd[1] = -1;
	o->sure_end = INT64_MAX;
	o->kind = (int)rn(&w->r, OP_COUNT);
	o->ep = chance(&w->r, 60) ? epoch_get() : NULL;
	o->t0 = ctx_now();
	snprintf(o->what, sizeof(o->what), "worker %d.%u op=%s", w->idx,
		 w->gen, op_names[o->kind]);
	switch (o->kind) {
	case OP_READ:
		op_io(o, false);
		break;
	case OP_RECV:
		op_io(o, true);
		break;
	case OP_POLL:
		op_poll(o);
		break;
	case OP_CHAN_RECV:
		op_chan_recv(o);
		break;
	case OP_CHAN_SEND:
		op_chan_send(o);
		break;
	case OP_WG:
		op_wg(o);
		break;
	case OP_GROUP:
		op_group(o);
		break;
	case OP_JOIN:
		op_join(o);
		break;
	case OP_SLEEP:
		op_sleep(o);
		break;
	case OP_WAIT:
		op_wait(o);
		break;
	case OP_AFTER:
		op_after(o);
		break;
	case OP_DONE_FD:
		op_done_fd(o);
		break;
	default:
		op_tree(o);
		break;
	}
	join_helper(o); /* an op that gave up early */
	atomic_store(&w->busy_since, 0);
	cleanup(o);
	atomic_fetch_add(&soak_ops[o->kind], 1);
	atomic_fetch_add(&soak_ns[o->kind], ctx_now() - o->t0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct op *o = malloc(sizeof(*o));

	ck_assert_ptr_nonnull(o);
	while (w->ops_left-- > 0 && !atomic_load(&soak_stop) &&
	       !atomic_load(&failed))
		run_op(w, o);
	free(o);
	atomic_store(&w->exited, true);
	return NULL;
}

static void worker_start(struct worker *w)
{
	w->gen++;
	w->r.s = seed ^ ((uint64_t)w->idx << 48) ^ ((uint64_t)w->gen << 32);
	rnd(&w->r);
	w->ops_left = 10 + rn(&w->r, 200);
	atomic_store(&w->exited, false);
	atomic_store(&w->busy_since, 0);
	ck_assert_int_eq(pthread_create(&w->th, NULL, worker_main, w), 0);
}

static int soak_seconds(void)
{
	const char *s = getenv("STRESS_SECONDS");
	if (s && *s && atoi(s) > 0)
		return atoi(s);
	return tu_quick() || tu_valgrind() ? 2 : SOAK_S;
}

/* Workers of the soak: make check keeps it light beside the suites
 * that run in parallel; make soak asks for more. */
static int nworkers = WORKERS;

static int soak_workers(void)
{
	const char *s = getenv("STRESS_WORKERS");
	int n = s && *s ? atoi(s) : 0;
	return n > 0 && n <= MAX_WORKERS ? n : WORKERS;
}

static unsigned soak_scale(void)
{
	const char *s = getenv("STRESS_SCALE");
	if (s && *s && atoi(s) > 0)
		return (unsigned)atoi(s);
	return tu_valgrind() ? 1 : SOAK_SCALE;
}

/* The test's thread as watchdog: a worker past its limit is stuck. */
static bool watchdog(struct worker *ws)
{
	int64_t now = ctx_now();

	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &ws[i];
		int64_t bs = atomic_load(&w->busy_since);
		if (!bs || now <= atomic_load(&w->must_end))
			continue;
		char what[480];
		pthread_mutex_lock(&w->what_mu);
		snprintf(what, sizeof(what), "%s", w->what);
		pthread_mutex_unlock(&w->what_mu);
		/* Look again: it may have finished meanwhile. */
		if (atomic_load(&w->busy_since) != bs)
			continue;
		failf("worker %d stuck: operation running for %.0f ms, past "
		      "every deadline and event plus %lld ms: lost wake-up "
		      "[%s]", i, (double)(now - bs) / CTX_MSEC,
		      (long long)(tol() / CTX_MSEC), what);
		return true;
	}
	return false;
}

START_TEST(test_soak)
{
	static struct worker ws[MAX_WORKERS]; /* outlives a stuck worker */
	struct rng r;
	int secs = soak_seconds();
	bool stuck = false;

	reset_failures();
	pick_seed();
	r.s = seed;
	time_div = soak_scale();
	nworkers = soak_workers();
	atomic_store(&soak_stop, false);
	for (int i = 0; i < OP_COUNT; i++) {
		atomic_store(&soak_ops[i], 0);
		atomic_store(&soak_ns[i], 0);
	}
	warm_up();
	int fds = tu_count_fds(), threads = tu_count_threads();

	epoch_rotate(&r, false);
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < nworkers; i++) {
		ws[i].idx = i;
		pthread_mutex_init(&ws[i].what_mu, NULL);
		worker_start(&ws[i]);
	}
	int64_t end = ctx_now() + secs * CTX_SEC, next = 0;
	while (ctx_now() < end && !atomic_load(&failed)) {
		tu_sleep_ns(CTX_MSEC);
		if (ctx_now() >= next) {
			epoch_rotate(&r, false);
			next = ctx_now() + rus(&r, 100000);
		}
		for (int i = 0; i < nworkers; i++)
			if (atomic_load(&ws[i].exited)) {
				pthread_join(ws[i].th, NULL);
				worker_start(&ws[i]);
			}
		if ((stuck = watchdog(ws)))
			break;
	}
	atomic_store(&soak_stop, true);
	for (bool all = false; !all && !stuck;) {
		all = true;
		for (int i = 0; i < nworkers; i++)
			all &= atomic_load(&ws[i].exited);
		if (!all) {
			tu_sleep_ns(CTX_MSEC);
			stuck = watchdog(ws);
		}
	}
	time_div = 1; /* the other tests keep their own scale */
	if (stuck)
		assert_no_failure(); /* a stuck worker cannot be joined */
	for (int i = 0; i < nworkers; i++) {
		pthread_join(ws[i].th, NULL);
		pthread_mutex_destroy(&ws[i].what_mu);
	}
	epoch_rotate(&r, true);

	/* Stopped after-funcs never ran, even now. */
	tu_sleep_ns(20 * CTX_MSEC);
	pthread_mutex_lock(&grave_mu);
	struct aft *g = graveyard;
	graveyard = NULL;
	pthread_mutex_unlock(&grave_mu);
	int ran = 0;
	for (struct aft *next_a; g; g = next_a) {
		next_a = g->next;
		ran += atomic_load(&g->ran) != 0;
		free(g);
	}
	ck_assert_msg(ran == 0, "%d after-funcs ran after ctx_after_stop "
		      "returned true (seed %llu)", ran, seed);
	assert_no_failure();

	long total = 0;
	for (int i = 0; i < OP_COUNT; i++)
		total += atomic_load(&soak_ops[i]);
	if (getenv("STRESS_VERBOSE")) {
		fprintf(stderr, "stress: soak %d s, seed %llu, %ld operations:",
			secs, seed, total);
		for (int i = 0; i < OP_COUNT; i++) {
			long n = atomic_load(&soak_ops[i]);
			fprintf(stderr, " %s %ld (%.2f ms)", op_names[i], n,
				n ? (double)atomic_load(&soak_ns[i]) / n /
				    CTX_MSEC : 0.0);
		}
		fprintf(stderr, "; %.0f operations/s, time scale 1/%u\n",
			(double)total / secs, soak_scale());
	}
	ck_assert_int_gt(total, 0);
	int tn = tu_settle_threads(threads, 5 * CTX_SEC);
	ck_assert_msg(tn == threads, "%d threads after the soak, %d before "
		      "(seed %llu)", tn, threads, seed);
	int fn = tu_settle_fds(fds, 2 * CTX_SEC);
	ck_assert_msg(fn == fds, "%d descriptors after the soak, %d before "
		      "(seed %llu)", fn, fds, seed);
}
END_TEST

/* ======================================================================
 * Cancel racing the start of a wait
 * ==================================================================== */

enum {
	R_READ, R_RECV, R_POLL, R_WAIT, R_WAIT_DL, R_SLEEP, R_CHAN_RECV,
	R_CHAN_SEND, R_WG, R_JOIN, R_COUNT
};

static const char *const race_names[R_COUNT] = {
	"ctx_read", "ctx_recv", "ctx_poll", "ctx_wait", "ctx_wait(deadline)",
	"ctx_sleep", "ctx_chan_recv", "ctx_chan_send", "ctx_wg_wait",
	"ctx_thread_join",
};

struct race {
	int op;
	_Atomic unsigned go, done;
	_Atomic bool quit;
	ctx_t *_Atomic c;
	int fd, sock;
	ctx_chan_t *ch;
	ctx_wg_t *wg;
	ctx_thread_t *t;
	long rc;   /* the waiter's result, published by done */
	int err;
	int64_t end;
};

static void *blocker(ctx_t *ctx, void *arg)
{
	(void)arg;
	ctx_wait(ctx);
	return NULL;
}

static void *race_waiter(void *arg)
{
	struct race *r = arg;
	unsigned seen = 0;
	char buf[8];
	long v = 0;

	for (;;) {
		unsigned g;
		for (long i = 0; (g = atomic_load(&r->go)) == seen; i++)
			backoff(i);
		if (atomic_load(&r->quit))
			break;
		seen = g;
		ctx_t *c = atomic_load(&r->c);
		struct pollfd pf = { .fd = r->fd, .events = POLLIN };
		long rc = -1;
		int err = 0;
		switch (r->op) {
		case R_READ:
			rc = ctx_read(c, r->fd, buf, sizeof(buf));
			err = errno;
			break;
		case R_RECV:
			rc = ctx_recv(c, r->sock, buf, sizeof(buf), 0);
			err = errno;
			break;
		case R_POLL:
			rc = ctx_poll(c, &pf, 1, -1);
			err = errno;
			break;
		case R_WAIT:
		case R_WAIT_DL:
			err = ctx_wait(c);
			break;
		case R_SLEEP:
			err = ctx_sleep(c, 3600 * CTX_SEC);
			break;
		case R_CHAN_RECV:
			err = ctx_chan_recv(c, r->ch, &v);
			break;
		case R_CHAN_SEND:
			err = ctx_chan_send(c, r->ch, &v);
			break;
		case R_WG:
			err = ctx_wg_wait(c, r->wg);
			break;
		default:
			err = ctx_thread_join(c, r->t, NULL);
			break;
		}
		if (r->op >= R_WAIT)
			rc = err ? -1 : 0;
		r->rc = rc;
		r->err = err;
		r->end = ctx_now();
		atomic_store(&r->done, g);
	}
	return NULL;
}

/*
 * The waiter starts its wait the moment the iteration is published; this
 * thread cancels after a random 0 to 8 us (sometimes before publishing,
 * sometimes through a parent), then wants the wait over within tol.
 */
START_TEST(test_race_start)
{
	struct race r = { .op = _i };
	struct rng g = { 0 };
	pthread_t th;
	int p[2], s[2];
	ctx_t *tctx = ctx_with_cancel(ctx_background());
	int64_t budget = (tu_quick() || tu_valgrind() ? QUICK_RACE_MS :
			  RACE_MS) * CTX_MSEC;
	unsigned i;

	reset_failures();
	pick_seed();
	g.s = seed;
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s),
			 0);
	r.fd = p[0];
	r.sock = s[0];
	r.ch = ctx_chan_new(sizeof(long), 0);
	r.wg = ctx_wg_new();
	ck_assert_ptr_nonnull(r.ch);
	ck_assert_ptr_nonnull(r.wg);
	ctx_wg_add(r.wg, 1);
	ck_assert_int_eq(ctx_thread_create(&r.t, tctx, blocker, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, race_waiter, &r), 0);

	int64_t end = ctx_now() + budget;
	char msg[256] = "";
	for (i = 1; i <= RACE_MAX && (ctx_now() < end || i <= RACE_MIN);
	     i++) {
		ctx_t *pc = r.op == R_WAIT_DL ?
				    ctx_with_timeout(ctx_background(),
						     3600 * CTX_SEC) :
				    ctx_with_cancel(ctx_background());
		ctx_t *c = pc;
		unsigned shape = rn(&g, 4);
		if (shape == 1)
			c = ctx_with_cancel(pc);
		else if (shape == 2)
			c = ctx_with_value(pc, value_key, NULL);
		ck_assert_ptr_nonnull(c);
		/* A value node cannot be cancelled: its parent can. */
		ctx_t *target = shape == 2 || chance(&g, 50) ? pc : c;
		bool before = rn(&g, 16) == 0;
		int64_t delay = rn(&g, 3) == 0 ? 0 : rus(&g, 8);

		if (before)
			ctx_cancel(target);
		atomic_store(&r.c, c);
		int64_t pub = ctx_now();
		atomic_store(&r.go, i);
		if (delay)
			spin_until(pub + delay);
		ctx_cancel(target);
		int64_t tc = ctx_now();
		for (long j = 0; atomic_load(&r.done) != i; j++) {
			backoff(j);
			if ((j & 63) == 0 && ctx_now() > tc + tol())
				break;
		}
		if (atomic_load(&r.done) != i) {
			snprintf(msg, sizeof(msg), "%s, iteration %u: still "
				 "blocked %lld ms after ctx_cancel (cancelled "
				 "%s%lld ns after publishing, shape %u): "
				 "lost wake-up", race_names[r.op], i,
				 (long long)((ctx_now() - tc) / CTX_MSEC),
				 before ? "before publishing and " : "",
				 (long long)delay, shape);
			break;
		}
		if (r.rc != -1 || r.err != CTX_CANCELED) {
			snprintf(msg, sizeof(msg), "%s, iteration %u: returned "
				 "%ld, error %d (%s); expected %s",
				 race_names[r.op], i, r.rc, r.err,
				 strerror(r.err), ctx_strerror(CTX_CANCELED));
			break;
		}
		if (c != pc)
			ctx_release(c);
		ctx_release(pc);
	}
	ck_assert_msg(!msg[0], "%s (seed %llu)", msg, seed);
	atomic_store(&r.quit, true);
	atomic_store(&r.go, i);
	pthread_join(th, NULL);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: race %s: %u iterations\n",
			race_names[r.op], i - 1);

	ctx_cancel(tctx);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), r.t, NULL), 0);
	ctx_release(tctx);
	ctx_wg_done(r.wg);
	ctx_wg_free(r.wg);
	ctx_chan_free(r.ch);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}
END_TEST

/* ======================================================================
 * Cancel racing thread exit
 * ==================================================================== */

enum { X_READ, X_POLL, X_WAIT, X_SLEEP, X_CHAN, X_COUNT };

struct exiter {
	pthread_t th;
	ctx_t *c;
	int kind;
	ctx_chan_t *ch;
	_Atomic int *started;
	long rc;
	int err;
	int64_t end;
};

static void *exiter_main(void *arg)
{
	struct exiter *x = arg;
	int p[2] = { -1, -1 };
	uint64_t v = 0;
	long lv;

	if ((x->kind == X_READ || x->kind == X_POLL) &&
	    pipe2(p, O_CLOEXEC) < 0) {
		x->rc = -2;
		x->err = errno;
		atomic_fetch_add(x->started, 1);
		return NULL;
	}
	atomic_fetch_add(x->started, 1);
	switch (x->kind) {
	case X_READ:
		x->rc = ctx_read(x->c, p[0], &v, sizeof(v));
		x->err = errno;
		break;
	case X_POLL: {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		x->rc = ctx_poll(x->c, &pf, 1, -1);
		x->err = errno;
		break;
	}
	case X_WAIT:
		x->err = ctx_wait(x->c);
		x->rc = -1;
		break;
	case X_SLEEP:
		x->err = ctx_sleep(x->c, 3600 * CTX_SEC);
		x->rc = -1;
		break;
	default:
		x->err = ctx_chan_recv(x->c, x->ch, &lv);
		x->rc = -1;
		break;
	}
	x->end = ctx_now();
	if (p[0] >= 0) {
		close(p[0]);
		close(p[1]);
	}
	return NULL; /* at once: the canceller may still be waking others */
}

struct batch {
	ctx_t *root;
	int n;
	_Atomic int started;
	struct exiter xs[EXIT_BATCH];
};

/* The canceller: cancels each batch handed to it, at once or after a
 * moment, while the test's thread starts the next batch. */
struct canceller {
	pthread_t th;
	struct batch *_Atomic job;
	_Atomic bool quit;
	_Atomic int64_t cancelled_at;
	uint64_t seed;
};

static void *canceller_main(void *arg)
{
	struct canceller *k = arg;
	struct rng r = { k->seed };

	for (;;) {
		struct batch *b;
		for (long i = 0; !(b = atomic_load(&k->job)); i++) {
			if (atomic_load(&k->quit))
				return NULL;
			backoff(i);
		}
		int64_t d = rus(&r, 100);
		if (d)
			spin_until(ctx_now() + d);
		ctx_cancel(b->root);
		atomic_store(&k->cancelled_at, ctx_now());
		atomic_store(&k->job, NULL);
	}
}

static void batch_start(struct batch *b, struct rng *r, int variant,
			ctx_chan_t *ch, pthread_attr_t *attr, int max)
{
	b->root = ctx_with_cancel(ctx_background());
	ck_assert_ptr_nonnull(b->root);
	b->n = max / 2 + (int)rn(r, (unsigned)(max / 2 + 1));
	atomic_store(&b->started, 0);
	for (int i = 0; i < b->n; i++) {
		struct exiter *x = &b->xs[i];
		*x = (struct exiter){ .c = b->root, .ch = ch,
				      .started = &b->started };
		x->kind = variant == 0 ? (int)rn(r, 2) : (int)rn(r, X_COUNT);
		ck_assert_int_eq(pthread_create(&x->th, attr, exiter_main, x),
				 0);
	}
}

static void batch_finish(struct batch *b, int64_t tc, char *msg, size_t len)
{
	for (int i = 0; i < b->n; i++) {
		struct exiter *x = &b->xs[i];
		pthread_join(x->th, NULL);
		if (msg[0])
			continue;
		if (x->rc == -2)
			snprintf(msg, len, "pipe2: %s", strerror(x->err));
		else if (x->rc > 0)
			snprintf(msg, len, "kind %d: returned %ld: data on a "
				 "pipe nobody wrote to -- a wake-up written to "
				 "a descriptor number that an exited thread's "
				 "reactor had, and a new pipe took",
				 x->kind, x->rc);
		else if (x->rc != -1 || x->err != CTX_CANCELED)
			snprintf(msg, len, "kind %d: returned %ld, error %d "
				 "(%s)", x->kind, x->rc, x->err,
				 strerror(x->err));
		else if (x->end > tc + tol())
			snprintf(msg, len, "kind %d: returned %.1f ms after "
				 "the cancel", x->kind,
				 (double)(x->end - tc) / CTX_MSEC);
	}
	ctx_release(b->root);
}

START_TEST(test_race_exit)
{
	struct batch *b[2];
	struct canceller k = { 0 };
	struct rng r;
	pthread_attr_t attr;
	ctx_chan_t *ch = ctx_chan_new(sizeof(long), 0);
	int max = tu_quick() || tu_valgrind() ? QUICK_EXIT_BATCH : EXIT_BATCH;
	char msg[512] = "";
	long batches = 0;

	reset_failures();
	pick_seed();
	r.s = seed;
	k.seed = seed + 1;
	ck_assert_ptr_nonnull(ch);
	int fds = tu_count_fds(), threads = tu_count_threads();
	b[0] = calloc(1, sizeof(*b[0]));
	b[1] = calloc(1, sizeof(*b[1]));
	ck_assert_ptr_nonnull(b[0]);
	ck_assert_ptr_nonnull(b[1]);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, EXIT_STACK);
	ck_assert_int_eq(pthread_create(&k.th, NULL, canceller_main, &k), 0);

	/* Two batches in flight: while the canceller wakes one, the next
	 * one's threads start and open pipes, and the one before is
	 * joined. */
	int64_t end = ctx_now() + EXIT_MS * CTX_MSEC;
	int cur = 0;
	struct batch *prev = NULL;
	while (ctx_now() < end && !msg[0]) {
		struct batch *nb = b[cur];
		batch_start(nb, &r, _i, ch, &attr, max);
		for (long i = 0; atomic_load(&nb->started) < nb->n; i++)
			backoff(i);
		int64_t tc = 0;
		if (prev) {
			for (long i = 0; atomic_load(&k.job); i++)
				backoff(i);
			tc = atomic_load(&k.cancelled_at);
		}
		atomic_store(&k.job, nb); /* the canceller takes it now */
		if (prev)
			batch_finish(prev, tc, msg, sizeof(msg));
		prev = nb;
		cur = 1 - cur;
		batches++;
	}
	if (prev) {
		for (long i = 0; atomic_load(&k.job); i++)
			backoff(i);
		batch_finish(prev, atomic_load(&k.cancelled_at), msg,
			     sizeof(msg));
	}
	atomic_store(&k.quit, true);
	pthread_join(k.th, NULL);
	pthread_attr_destroy(&attr);
	free(b[0]);
	free(b[1]);
	ctx_chan_free(ch);
	ck_assert_msg(!msg[0], "%s (seed %llu, batch %ld)", msg, seed, batches);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: exit variant %d: %ld batches\n", _i,
			batches);
	ck_assert_int_gt(batches, 2);
	int tn = tu_settle_threads(threads, 5 * CTX_SEC);
	ck_assert_msg(tn == threads, "%d threads, %d before", tn, threads);
	int fn = tu_settle_fds(fds, 2 * CTX_SEC);
	ck_assert_msg(fn == fds, "%d descriptors, %d before", fn, fds);
}
END_TEST

/* ======================================================================
 * Late wake-ups and channels
 * ==================================================================== */

/*
 * The reactor's internal wake-up (runtime/reactor.c).  waiter_fire()
 * releases a cancelled wait's link before it bumps the thread's wake-up
 * counter, so a canceller that is descheduled between the two delivers
 * its wake-up after the thread has left that wait, into whatever the
 * thread waits for next: a stale wake-up, which every wait must survive.
 * That window is a few instructions wide; calling the wake-up directly
 * is how this test opens it on demand.
 */
struct ctx__reactor;
struct ctx__reactor *ctx__reactor_self(void);
void ctx__reactor_wake(struct ctx__reactor *r);

#define LATE_PEERS 3          /* receivers, and as many senders */
#define LATE_MS 1000
#define LATE_DL_MS 300        /* each operation's deadline */
#define LATE_MARGIN_MS 200    /* "well before the deadline" */

struct late {
	ctx_chan_t *ch;
	struct ctx__reactor *_Atomic rs[2 * LATE_PEERS];
	_Atomic bool stop;
	_Atomic long ops, lost;
};

/* What goes through the channel: a record where each side notes when
 * its own call returned. */
struct late_elem {
	_Atomic int64_t ret[2]; /* 0: the receiver's, 1: the sender's */
	_Atomic int refs;
};

struct late_peer {
	struct late *l;
	int idx;
	pthread_t th;
};

static void late_put(struct late_elem *m)
{
	if (atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

/* Side `me` of an exchange that succeeded returned at `end`, at or past
 * its deadline d: lost if the other side had returned well before d. */
static void late_check(struct late *l, struct late_elem *m, int me,
		       int64_t t, int64_t end, int64_t d)
{
	int64_t other = 0, until = ctx_now() + 200 * CTX_MSEC;

	if (end < d)
		return;
	while (!(other = atomic_load(&m->ret[1 - me])) && ctx_now() < until)
		tu_sleep_ns(100 * CTX_USEC);
	if (!other || other + LATE_MARGIN_MS * CTX_MSEC >= d)
		return;
	atomic_fetch_add(&l->lost, 1);
	failf("%s completed (its peer's call returned at %+.1f ms) but "
	      "returned only at its %d ms deadline (%+.1f ms): the peer's "
	      "wake-up was lost after a stale wake-up -- runtime/chan.c "
	      "park(): a second round takes its token only after dropping "
	      "the channel lock", me ? "ctx_chan_send" : "ctx_chan_recv",
	      (double)(other - t) / CTX_MSEC, LATE_DL_MS,
	      (double)(end - t) / CTX_MSEC);
}

static void *late_peer_main(void *arg)
{
	struct late_peer *p = arg;
	struct late *l = p->l;
	int me = p->idx < LATE_PEERS ? 0 : 1;

	atomic_store(&l->rs[p->idx], ctx__reactor_self());
	while (!atomic_load(&l->stop)) {
		struct late_elem *m = NULL;
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    LATE_DL_MS * CTX_MSEC);
		int64_t t = ctx_now(), d = 0;
		int e;

		ck_assert_ptr_nonnull(c);
		ctx_deadline(c, &d);
		if (me == 1) {
			m = calloc(1, sizeof(*m));
			ck_assert_ptr_nonnull(m);
			atomic_init(&m->refs, 2);
			e = ctx_chan_send(c, l->ch, &m);
		} else {
			e = ctx_chan_recv(c, l->ch, &m);
		}
		int64_t end = ctx_now();
		ctx_release(c);
		atomic_fetch_add(&l->ops, 1);
		if (e == 0) {
			atomic_store(&m->ret[me], end);
			late_check(l, m, me, t, end, d);
			late_put(m);
		} else {
			if (e != CTX_DEADLINE_EXCEEDED)
				failf("ctx_chan_%s: %d", me ? "send" : "recv",
				      e);
			if (me == 1)
				free(m); /* nobody took it */
		}
	}
	return NULL;
}

START_TEST(test_chan_late_wake)
{
	struct late l = { .ch = ctx_chan_new(sizeof(struct late_elem *), 0) };
	struct late_peer ps[2 * LATE_PEERS];

	reset_failures();
	ck_assert_ptr_nonnull(l.ch);
	for (int i = 0; i < 2 * LATE_PEERS; i++) {
		ps[i] = (struct late_peer){ .l = &l, .idx = i };
		ck_assert_int_eq(pthread_create(&ps[i].th, NULL, late_peer_main,
						&ps[i]), 0);
	}
	int64_t end = ctx_now() + LATE_MS * CTX_MSEC;
	while (ctx_now() < end && !atomic_load(&l.lost))
		for (int i = 0; i < 2 * LATE_PEERS; i++) {
			struct ctx__reactor *r = atomic_load(&l.rs[i]);
			if (r)
				ctx__reactor_wake(r);
			cpu_relax();
		}
	/* No stale wake-up may reach a reactor whose thread is gone: the
	 * peers stop only after this loop. */
	atomic_store(&l.stop, true);
	for (int i = 0; i < 2 * LATE_PEERS; i++)
		pthread_join(ps[i].th, NULL);
	ctx_chan_free(l.ch);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: late wake-ups: %ld channel operations"
			", %ld lost\n", atomic_load(&l.ops),
			atomic_load(&l.lost));
	assert_no_failure();
	ck_assert_int_gt(atomic_load(&l.ops), 0);
}
END_TEST

/* ---- releases racing a cancel ------------------------------------------- */

/*
 * Workers make and release children of a shared parent as fast as they
 * can while the test thread cancels the parent and puts up a new one.  A
 * release that finds its child alone takes a short path (no lock of its
 * own, no walk), and the parent's cancel may be marking that child at the
 * same moment: ThreadSanitizer sees any access the two do not order, and
 * every child made under a parent that was already done must itself be
 * done, with the parent's cause.
 */
#define RR_WORKERS 3
#define RR_MS 300
#define RR_CAUSE 4242

struct rr {
	pthread_mutex_t mu;
	ctx_t *parent; /* the current one, with a reference for each taker */
	_Atomic bool stop;
	_Atomic long made, done_born;
};

static ctx_t *rr_take(struct rr *r)
{
	pthread_mutex_lock(&r->mu);
	ctx_t *p = ctx_ref(r->parent);
	pthread_mutex_unlock(&r->mu);
	return p;
}

static void *rr_main(void *arg)
{
	struct rr *r = arg;
	unsigned n = 0;
	while (!atomic_load(&r->stop)) {
		ctx_t *p = rr_take(r);
		bool was_done = ctx_err(p) != 0;
		ctx_t *c = ctx_with_cancel(p);
		ctx_t *g = n % 3 == 0 ? ctx_with_cancel(c) : NULL;
		if (!c) {
			failf("ctx_with_cancel: NULL");
		} else if (was_done) {
			atomic_fetch_add(&r->done_born, 1);
			if (ctx_err(c) != CTX_CANCELED ||
			    ctx_cause(c) != RR_CAUSE)
				failf("child of a done parent: err %d cause %d",
				      ctx_err(c), ctx_cause(c));
		}
		/* Children released first, last, or with the parent between. */
		if (n % 2)
			ctx_release(g);
		ctx_release(c);
		if (!(n % 2))
			ctx_release(g);
		ctx_unref(p); /* a release would cancel the shared parent */
		atomic_fetch_add(&r->made, 1);
		n++;
	}
	return NULL;
}

START_TEST(test_release_race)
{
	struct rr r = { .mu = PTHREAD_MUTEX_INITIALIZER,
			.parent = ctx_with_cancel(ctx_background()) };
	pthread_t th[RR_WORKERS];

	reset_failures();
	ck_assert_ptr_nonnull(r.parent);
	for (int i = 0; i < RR_WORKERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, rr_main, &r), 0);
	int64_t end = ctx_now() + RR_MS * CTX_MSEC;
	long rounds = 0;
	while (ctx_now() < end) {
		ctx_t *fresh = ctx_with_cancel(ctx_background());
		ck_assert_ptr_nonnull(fresh);
		ctx_cancel_cause(r.parent, RR_CAUSE);
		/* Leave the done parent up a moment, so that some children
		 * are born under it. */
		for (int i = 0; i < 50; i++)
			cpu_relax();
		pthread_mutex_lock(&r.mu);
		ctx_t *old = r.parent;
		r.parent = fresh;
		pthread_mutex_unlock(&r.mu);
		ctx_release(old);
		rounds++;
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < RR_WORKERS; i++)
		pthread_join(th[i], NULL);
	ctx_release(r.parent);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "stress: release race: %ld children, %ld born "
			"done, %ld cancels\n", atomic_load(&r.made),
			atomic_load(&r.done_born), rounds);
	assert_no_failure();
	ck_assert_int_gt(atomic_load(&r.made), 0);
	ck_assert_int_gt(rounds, 0);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_stress(void)
{
	Suite *s = suite_create("stress");
	TCase *tc;

	tc = tu_tcase(s, "soak", soak_seconds() + 60);
	tcase_add_test(tc, test_soak);

	tc = tu_tcase(s, "race", 60);
	tcase_add_loop_test(tc, test_race_start, 0, R_COUNT);

	tc = tu_tcase(s, "exit", 60);
	tcase_add_loop_test(tc, test_race_exit, 0, 2);

	tc = tu_tcase(s, "late_wake", 60);
	tcase_add_test(tc, test_chan_late_wake);

	tc = tu_tcase(s, "release_race", 60);
	tcase_add_test(tc, test_release_race);

	return s;
}
