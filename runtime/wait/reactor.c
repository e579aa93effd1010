/*
 * The per-thread reactor, and the one wait every blocking call uses.
 *
 * Each thread that blocks has a reactor: a wake-up counter, and -- made
 * the first time the thread waits for a descriptor or a deadline -- a
 * descriptor that wakes it and also times its deadlines (readiness.c:
 * one timerfd).  How the thread sleeps on descriptors is the backend's
 * business (backend.h: poll.c or uring.c), chosen once per process in
 * this file, the only one that asks which backend runs.  The io_uring
 * backend adds a ring for a thread that makes transfers on regular
 * files; all are closed by a thread-exit destructor.
 *
 * A context is never registered with the kernel.  A waiting thread hangs a link
 * on the context (its nearest cancel node); cancelling the context fires
 * the link, which wakes the thread.  So a context needs no descriptor to
 * be waited on, waiting on it again costs no system call, and the process
 * holds no descriptor per context at rest.  (The brief's shape registers
 * a per-context eventfd instead: a descriptor per waited context and an
 * epoll_ctl per new context, for no faster a wake-up.)
 *
 * Waking.  A waker bumps the thread's counter and then looks at how the
 * thread sleeps: in futex_wait on the counter (a wait with no descriptor
 * and no deadline: joins, channels, wait groups, ctx_wait), in the
 * backend (the descriptor is written), or not at all yet (nothing more to
 * do).  The waiter took a token (the counter's value) before it made
 * itself known to any waker, and announces how it sleeps before it
 * checks the counter one last time; both sides use sequentially
 * consistent operations, so either the waker sees the announcement or
 * the waiter sees the bump.  No wake-up is lost and an early one costs
 * no system call.
 *
 * The stale-wake rule.  In a wait whose event is not a wake-up (a
 * descriptor, a transfer, a deadline), a wake-up can only have come from
 * the context, or be left over from an earlier wait; so one seen while
 * the context is live is stale, and is forgotten -- before the context is
 * looked at, never after, or a cancel in between would be forgotten too.
 * The one loop below, ctx__wait_for, is the only place that applies it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/probe.h"
#include "wait/backend.h"

enum { AWAKE, IN_FUTEX, IN_KERNEL };

/* One wait's hold on its context: the link that wakes the thread. */
struct ctx__wait {
	struct ctx__link link; /* first: fire() casts the link back */
	struct ctx__reactor *r;
	ctx_t *n;              /* the cancel node waited on, or NULL */
	int64_t limit;         /* min(context deadline, call deadline) */
	int64_t pace_at;       /* manual clock: a pause's end, real time */
	bool durable;          /* only time or another thread ends it */
};

/* Wake-ups that a cancellation shares out ("Sharing out", below). */
struct wake_list {
	_Atomic int refs;
	_Atomic int next;      /* the next entry to take */
	int n;
	struct ctx__reactor *r[]; /* each held (ctx__reactor_hold) */
};

enum { OWED_INLINE = 8 };

struct ctx__reactor {
	_Atomic uint32_t seq;  /* bumped by every wake-up */
	_Atomic int sleeping;  /* AWAKE, IN_FUTEX or IN_KERNEL */
	_Atomic int inflight;  /* wakers still holding it (ctx__reactor_hold) */
	uint32_t token;        /* seq when the current wait was published */
	bool prepared;         /* token taken for the current wait */
	bool registered;       /* in the registry */
	bool exiting;          /* thread-exit destructor set (see record_under) */
	int wakefd;            /* the eventfd a waker writes, or -1 */
	struct ctx__record rec; /* in the registry (wait.h) */
	struct wake_list *_Atomic help; /* handed over by a waker, or NULL */
	/* The wake-ups this thread's cancellation put off, each held. */
	struct ctx__reactor **owed, *owed_inline[OWED_INLINE];
	int n_owed, cap_owed;
};


static __thread struct ctx__reactor tls = { .wakefd = -1 };
static pthread_key_t exit_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The registry of every thread's record (wait.h). */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ctx__record *registry;

/* ---- the backend, chosen once --------------------------------------- */

static const struct ctx__backend *be = &ctx__backend_poll;
static pthread_once_t choose_once = PTHREAD_ONCE_INIT;

/* CTX_BACKEND=io_uring asks for the ring; it is used where the kernel
 * and liburing can give it (uring.c's usable() says what it needs), and
 * otherwise the process falls back to the readiness backend ("epoll"),
 * which ctx_backend() shows. */
static void choose(void)
{
	const char *b = getenv("CTX_BACKEND");
	if (b && strcmp(b, "io_uring") == 0 && ctx__backend_uring.usable())
		be = &ctx__backend_uring;
}

static const struct ctx__backend *backend(void)
{
	pthread_once(&choose_once, choose);
	return be;
}

const char *ctx_backend(void)
{
	return backend()->name;
}

/* ---- the descriptors ------------------------------------------------- */

static void close_fds(struct ctx__reactor *r)
{
	backend()->thread_exit();
	if (r->wakefd >= 0)
		close(r->wakefd);
	r->wakefd = -1;
}

/* ---- the registry ---------------------------------------------------- */

static void registry_add(struct ctx__record *rec)
{
	pthread_mutex_lock(&registry_mu);
	rec->next = registry;
	rec->pprev = &registry;
	if (registry)
		registry->pprev = &rec->next;
	registry = rec;
	pthread_mutex_unlock(&registry_mu);
}

static void registry_del(struct ctx__record *rec)
{
	pthread_mutex_lock(&registry_mu);
	*rec->pprev = rec->next;
	if (rec->next)
		rec->next->pprev = rec->pprev;
	pthread_mutex_unlock(&registry_mu);
}

void ctx__registry_each(void (*fn)(struct ctx__record *rec, void *arg),
			void *arg)
{
	pthread_mutex_lock(&registry_mu);
	for (struct ctx__record *rec = registry; rec; rec = rec->next)
		fn(rec, arg);
	pthread_mutex_unlock(&registry_mu);
}

/* Once per thread, with its reactor: the record, in the registry. */
static void record_init(struct ctx__reactor *r)
{
	struct ctx__record *rec = &r->rec;
	rec->r = r;
	rec->tid = (int)syscall(SYS_gettid);
	atomic_init(&rec->fd, -1);
	atomic_init(&rec->limit, CTX__NEVER);
	registry_add(rec);
}

/* ---- the reactor ----------------------------------------------------- */

static void list_put(struct wake_list *l);

static void drop_owed(struct ctx__reactor *r)
{
	if (r->owed != r->owed_inline)
		free(r->owed);
	r->owed = r->owed_inline;
	r->cap_owed = OWED_INLINE;
}

/* Out of the registry first, so that no reader finds the thread going;
 * a thread the library started and that left without returning
 * (pthread_exit) stops counting at work.  A canceller may still be
 * waking this thread, or hold it in a list of wake-ups it shares out:
 * let it finish before the memory and the descriptors go. */
static void on_thread_exit(void *p)
{
	struct ctx__reactor *r = p;
	if (atomic_load_explicit(&r->rec.known, memory_order_relaxed))
		ctx__clock_leave();
	registry_del(&r->rec);
	while (atomic_load(&r->inflight))
		sched_yield();
	struct wake_list *l = atomic_exchange(&r->help, NULL);
	if (l)
		list_put(l);
	drop_owed(r);
	close_fds(r);
}

static void before_fork(void)
{
	pthread_mutex_lock(&registry_mu);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&registry_mu);
}

/* In the child only the forking thread lives on: close its copies of the
 * parent's descriptors, so its next wait makes its own, and keep only
 * its record.  A list handed to it belongs to the parent's threads,
 * which stayed behind. */
static void after_fork_child(void)
{
	/* The lock before_fork took is this thread's: give it back rather
	 * than initialise it again (ThreadSanitizer would still see it
	 * held, and report the next lock as a double lock). */
	pthread_mutex_unlock(&registry_mu);
	registry = NULL;
	if (tls.registered)
		registry_add(&tls.rec);
	if (ctx__clock_is_manual())
		ctx__clock_forked(atomic_load(&tls.rec.known));
	close_fds(&tls);
	tls.prepared = false;
	atomic_store(&tls.sleeping, AWAKE);
	atomic_store(&tls.inflight, 0); /* its cancellers stayed behind */
	atomic_store(&tls.help, NULL);
	tls.n_owed = 0;
}

static void init(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	ctx__stuck_start(); /* CTX_DEBUG=stuck: from the first thread known */
}

static int need_wakefd(struct ctx__reactor *r)
{
	if (__builtin_expect(r->wakefd >= 0, 1))
		return 0;
	int fd = ctx__readiness_wakefd();
	if (fd < 0)
		return -fd;
	r->wakefd = fd;
	return 0;
}

/* The record in the registry; once, or again after ctx__record_under
 * took a record that never waited out. */
static void reactor_register(struct ctx__reactor *r)
{
	if (r->registered)
		return;
	pthread_once(&once, init);
	record_init(r);
	r->registered = true;
}

struct ctx__reactor *ctx__reactor_self(void)
{
	struct ctx__reactor *r = &tls;
	if (__builtin_expect(!r->exiting, 0)) {
		reactor_register(r);
		pthread_setspecific(exit_key, r);
		r->exiting = true;
		r->owed = r->owed_inline;
		r->cap_owed = OWED_INLINE;
	}
	return r;
}

struct ctx__record *ctx__record_self(void)
{
	return &ctx__reactor_self()->rec;
}

/* Take the token for a wait, before the thread is made known to any
 * waker.  Once per wait: a second call keeps the first token. */
void ctx__reactor_prepare(struct ctx__reactor *r)
{
	if (!r->prepared) {
		r->token = atomic_load(&r->seq);
		r->prepared = true;
	}
}

/* Give up a token that no wait used (a select that queued itself on
 * channels and was decided without sleeping). */
void ctx__reactor_unprepare(struct ctx__reactor *r)
{
	r->prepared = false;
}

static bool woken(struct ctx__reactor *r)
{
	return atomic_load(&r->seq) != r->token;
}

static void forget_stale_wake(struct ctx__reactor *r)
{
	r->token = atomic_load(&r->seq);
}

/*
 * The manual clock's count of known threads at work (base/clock.c).  A
 * known thread about to sleep in a durable wait stops counting, unless a
 * wake-up came already (then false: it must not sleep).  It sets its
 * flag before it reads the wake-up counter, and a waker bumps the
 * counter before it reads the flag, so either the thread sees the
 * wake-up or the waker sees the flag and counts the thread at work again
 * (unblock), before the waker itself can block: a thread woken by
 * another never goes uncounted between the two, and no jump of the clock
 * can come in between.
 */
static bool block(struct ctx__reactor *r)
{
	if (!atomic_load_explicit(&r->rec.known, memory_order_relaxed))
		return true;
	int n = 1;
	ctx__clock_lock();
	atomic_store(&r->rec.blocked, true);
	bool sleep = !woken(r);
	if (sleep)
		n = ctx__clock_count(-1);
	else
		atomic_store(&r->rec.blocked, false);
	ctx__clock_unlock();
	if (n == 0)
		ctx__clock_idle();
	return sleep;
}

/* The thread counts at work again: it woke, or a waker woke it. */
static void unblock(struct ctx__reactor *r)
{
	if (!atomic_load(&r->rec.blocked))
		return;
	ctx__clock_lock();
	if (atomic_load(&r->rec.blocked)) {
		atomic_store(&r->rec.blocked, false);
		ctx__clock_count(1);
	}
	ctx__clock_unlock();
}

void ctx__reactor_wake(struct ctx__reactor *r)
{
	CTX__PROBE1(wake, r->rec.tid);
	atomic_fetch_add(&r->seq, 1);
	if (ctx__clock_is_manual())
		unblock(r);
	switch (atomic_load(&r->sleeping)) {
	case IN_FUTEX:
		ctx__futex_wake(&r->seq, 1);
		break;
	case IN_KERNEL:
		ctx__readiness_wake(r->wakefd);
		break;
	}
}

/* Keep r (the memory, and the descriptor a wake-up writes) from going
 * away with its thread until ctx__reactor_release. */
void ctx__reactor_hold(struct ctx__reactor *r)
{
	atomic_fetch_add(&r->inflight, 1);
}

void ctx__reactor_release(struct ctx__reactor *r)
{
	atomic_fetch_sub(&r->inflight, 1);
}

/* ---- sharing out the wake-ups of a cancellation ---------------------- */

/*
 * One cancel can end the waits of many threads.  Each wake-up is a
 * system call on the woken thread's descriptor (or futex), and a woken
 * thread placed on the canceller's CPU preempts the canceller as that
 * call returns: the canceller then waits for a turn after each thread it
 * wakes, and on a host of few CPUs the woken threads run one by one
 * beside it, while it alone does the waking (issue 30: perf sched showed
 * every wake-up of a 256-thread fan-out made by the canceller, about half
 * of them preempting it).  So a cancellation puts its wake-ups off until
 * its walk of the tree is over (waiter_fire adds each thread to the
 * canceller's list; the core calls flush_owed at the end of the walk),
 * and then shares them out: each thread it wakes is handed the list, and
 * as soon as it runs it wakes one more from it, handing it on, before
 * it goes on with its own return; every CPU that runs a woken thread
 * takes part.  (Two each did worse: the first wake-up's thread, placed
 * on the helper's own CPU, preempts it before its second.  fanout-idle,
 * 1,024 threads, four runs each in turn, load average 1-3: libctx/condvar
 * 1.04-1.20 with one, 1.36-1.50 with two.)  The canceller goes on taking
 * from the list until it is empty: a thread handed the list may never
 * look at it (it was not asleep, or it is about to exit), so no wake-up
 * depends on anyone but the canceller.
 */
enum {
	SHARE_MIN = 4,  /* fewer wake-ups than this: the canceller's own */
	SHARE_EACH = 1, /* how many a woken thread takes from the list */
};

static void list_put(struct wake_list *l)
{
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

/* Hand l to r's thread, which takes from it when it next runs. */
static void hand(struct ctx__reactor *r, struct wake_list *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	struct wake_list *old = atomic_exchange(&r->help, l);
	if (old)
		list_put(old);
}

/* Take up to max entries of l and wake each, handing l on while
 * something is left in it. */
static void take(struct wake_list *l, int max)
{
	for (int k = 0; k < max; k++) {
		int i = atomic_fetch_add_explicit(&l->next, 1,
						  memory_order_relaxed);
		if (i >= l->n)
			return;
		struct ctx__reactor *r = l->r[i];
		if (i + 1 < l->n)
			hand(r, l);
		ctx__reactor_wake(r);
		ctx__reactor_release(r);
	}
}

/* A thread back from a sleep: wake its share of a list handed to it. */
static void help_out(struct ctx__reactor *r)
{
	if (!atomic_load_explicit(&r->help, memory_order_relaxed))
		return;
	struct wake_list *l = atomic_exchange(&r->help, NULL);
	if (l) {
		take(l, SHARE_EACH);
		list_put(l);
	}
}

/* Put off the wake-up of r (held) until the walk is over; false if there
 * is no room for it (it is then made at once). */
static bool owe(struct ctx__reactor *me, struct ctx__reactor *r)
{
	if (me->n_owed == me->cap_owed) {
		int cap = 2 * me->cap_owed;
		struct ctx__reactor **a = ctx__malloc((size_t)cap * sizeof(*a));
		if (!a)
			return false;
		memcpy(a, me->owed, (size_t)me->n_owed * sizeof(*a));
		if (me->owed != me->owed_inline)
			free(me->owed);
		me->owed = a;
		me->cap_owed = cap;
	}
	me->owed[me->n_owed++] = r;
	return true;
}

/* The list of n owed wake-ups, to share out; NULL if too short to be
 * worth it or if there is no memory for it. */
static struct wake_list *owed_list(struct ctx__reactor *me, int n)
{
	struct wake_list *l = NULL;
	if (n >= SHARE_MIN)
		l = ctx__malloc(sizeof(*l) + (size_t)n * sizeof(l->r[0]));
	if (l) {
		atomic_init(&l->refs, 1);
		atomic_init(&l->next, 0);
		l->n = n;
		memcpy(l->r, me->owed, (size_t)n * sizeof(l->r[0]));
	}
	return l;
}

/* The core's ctx__links_flush: the walk of a cancellation is over. */
static void flush_owed(void)
{
	struct ctx__reactor *me = &tls;
	int n = me->n_owed;
	if (!n)
		return;
	me->n_owed = 0;
	struct wake_list *l = owed_list(me, n);
	if (l) {
		take(l, n);
		list_put(l);
	} else {
		for (int i = 0; i < n; i++) {
			ctx__reactor_wake(me->owed[i]);
			ctx__reactor_release(me->owed[i]);
		}
	}
	if (me->cap_owed > 1024) /* a rare tree's worth: give it back */
		drop_owed(me);
}

__attribute__((constructor)) static void flush_hook(void)
{
	ctx__links_flush = flush_owed;
}

/* ---- the one wait ---------------------------------------------------- */

/* Runs after the node's lock is dropped.  The link is released before
 * the wake-up, so that a woken thread that runs at once (on this CPU) need
 * not wait for this one to come back; the in-flight count keeps its
 * reactor, and the descriptor written, alive until the wake is done.  The
 * wake-up itself is put off until the cancellation's walk is over (see
 * "Sharing out", above). */
static void waiter_fire(struct ctx__link *l)
{
	struct ctx__reactor *r = ((struct ctx__wait *)l)->r;
	ctx__reactor_hold(r);
	ctx__link_done(l);
	if (!owe(ctx__reactor_self(), r)) {
		ctx__reactor_wake(r);
		ctx__reactor_release(r);
	}
}

/* The earliest time the wait must end: the call's own deadline or the
 * context's.  Worked out before every sleep, since a look at the context
 * may have found its deadline moved later (ctx_set_deadline; a deadline
 * moved earlier ends the context through the timer thread instead). */
static void set_limit(struct ctx__wait *w, int64_t deadline)
{
	int64_t d = w->n ? ctx__load_deadline(w->n) : CTX__NEVER;
	int64_t limit = d < deadline ? d : deadline;
	if (limit != w->limit) /* the record's, for ctx_dump and the clock */
		atomic_store_explicit(&w->r->rec.limit, limit,
				      memory_order_release);
	w->limit = limit;
}

/* What the wait is, in the thread's record (wait.h), then gen turns odd.
 * Release stores, plain moves on x86: each is ordered after the last
 * wait's end, so a reader that finds gen unchanged around its reads has
 * read one wait's fields.  Under the manual clock the limit must be seen
 * by an advance that moves the time past it, or the thread must see the
 * new time (wait/clock.c): gen's store is then sequentially consistent,
 * as are the loop's reading of the clock and the advance's. */
static void record_begin(struct ctx__wait *w, ctx_t *ctx,
			 const struct ctx__want *want)
{
	struct ctx__record *rec = &w->r->rec;
	const memory_order rel = memory_order_release;
	int what = want->xfer ? CTX__WAIT_XFER : want->nfds ? CTX__WAIT_FD :
		   want->pace ? CTX__WAIT_PAUSE : want->parked ? CTX__WAIT_WAKE :
		   CTX__WAIT_TIME;
	int fd = want->xfer ? want->xfer->fd : want->nfds ? want->fds[0].fd : -1;
	atomic_store_explicit(&rec->call, want->call, rel);
	atomic_store_explicit(&rec->fd, fd, rel);
	atomic_store_explicit(&rec->what, what, rel);
	atomic_store_explicit(&rec->durable, w->durable, rel);
	atomic_store_explicit(&rec->since, ctx__now_coarse(), rel);
	atomic_store_explicit(&rec->limit, w->limit, rel);
	atomic_store_explicit(&rec->ctx, ctx, rel);
	uint32_t g = atomic_load_explicit(&rec->gen, memory_order_relaxed) | 1;
	if (ctx__clock_is_manual())
		atomic_store(&rec->gen, g);
	else
		atomic_store_explicit(&rec->gen, g, rel);
}

/* A reader in ctx__record_snap may be taking a reference to what the
 * record names: wait until it is done (a few instructions). */
static void wait_for_reader(struct ctx__record *rec)
{
	while (atomic_load(&rec->peek))
		sched_yield();
}

static void record_end(struct ctx__record *rec)
{
	uint32_t g = atomic_load_explicit(&rec->gen, memory_order_relaxed);
	atomic_store(&rec->gen, g + 1);
	if (__builtin_expect(atomic_load(&rec->peek), 0))
		wait_for_reader(rec);
}

void ctx__record_enter(ctx_t *ctx, const struct ctx__want *want)
{
	ctx_t *n = ctx__node(ctx);
	struct ctx__wait w = { .r = ctx__reactor_self() };
	int64_t d = n ? ctx__load_deadline(n) : CTX__NEVER;
	w.limit = d < want->deadline ? d : want->deadline;
	record_begin(&w, ctx, want);
	CTX__PROBE5(wait_begin, ctx, n, want->call, want->nfds ?
		    want->fds[0].fd : -1, w.limit);
}

void ctx__record_leave(ctx_t *ctx, const struct ctx__want *want,
			int result)
{
	record_end(&ctx__reactor_self()->rec);
	CTX__PROBE4(wait_end, ctx, ctx__node(ctx), want->call, result);
	(void)ctx, (void)want, (void)result; /* without probes */
}

/* ---- readers ------------------------------------------------------- */

/*
 * A thread libctx started is in the registry while it runs, for the
 * reports.  If it never waits it needs no thread-exit destructor: its
 * record goes when it says it no longer runs under its context.  (A
 * destructor of pthread_setspecific costs every thread that has one a
 * walk of glibc's key table at its exit: some 700 instructions, a third
 * of a thread's start and join besides its kernel work.)
 */
void ctx__record_under(ctx_t *ctx)
{
	struct ctx__reactor *r = &tls;
	reactor_register(r);
	atomic_store(&r->rec.under, ctx);
	if (ctx)
		return;
	if (atomic_load(&r->rec.peek))
		wait_for_reader(&r->rec);
	if (!r->exiting) {
		registry_del(&r->rec);
		r->registered = false;
	}
}

/* The wait's fields, read while gen said the wait is on: the thread
 * cannot end it before peek is down again (wait.h). */
static void snap_wait(struct ctx__record *rec, struct ctx__snap *s)
{
	const memory_order acq = memory_order_acquire;
	s->waiting = true;
	s->call = atomic_load_explicit(&rec->call, acq);
	s->fd = atomic_load_explicit(&rec->fd, acq);
	s->what = atomic_load_explicit(&rec->what, acq);
	s->since = atomic_load_explicit(&rec->since, acq);
	s->limit = atomic_load_explicit(&rec->limit, acq);
	s->ctx = ctx_ref(atomic_load_explicit(&rec->ctx, acq));
}

void ctx__record_snap(struct ctx__record *rec, struct ctx__snap *s)
{
	*s = (struct ctx__snap){ .tid = rec->tid, .fd = -1 };
	atomic_store(&rec->peek, true);
	if (atomic_load(&rec->gen) & 1)
		snap_wait(rec, s);
	s->under = ctx_ref(atomic_load(&rec->under));
	atomic_store(&rec->peek, false);
}

bool ctx__record_within(struct ctx__record *rec, ctx_t *n)
{
	bool in = false;
	atomic_store(&rec->peek, true);
	if (atomic_load(&rec->gen) & 1)
		in = ctx__descends(atomic_load_explicit(
			&rec->ctx, memory_order_acquire), n);
	in = in || ctx__descends(atomic_load(&rec->under), n);
	atomic_store(&rec->peek, false);
	return in;
}

void ctx__snap_put(struct ctx__snap *s)
{
	if (s->ctx)
		ctx_unref(s->ctx);
	if (s->under)
		ctx_unref(s->under);
	s->ctx = s->under = NULL;
}

/* Refuse if the context is done; else hang a link on it that wakes this
 * thread, work out the earliest time the wait must end, and say what the
 * wait is in the thread's record. */
static int wait_begin(struct ctx__wait *w, ctx_t *ctx,
		      const struct ctx__want *want)
{
	w->r = ctx__reactor_self();
	w->n = ctx__node(ctx);
	w->link.fire = waiter_fire;
	ctx__reactor_prepare(w->r);
	int e = ctx__check(w->n);
	if (!e && w->n)
		e = ctx__link_add(w->n, &w->link);
	if (e) {
		w->r->prepared = false;
		return e;
	}
	w->limit = CTX__NEVER;
	set_limit(w, want->deadline);
	w->durable = !want->nfds && !want->xfer && !want->pace;
	w->pace_at = want->pace && ctx__clock_is_manual() ?
			     ctx__add_sat(ctx__clock_real(), want->pace) :
			     CTX__NEVER;
	record_begin(w, ctx, want);
	CTX__PROBE5(wait_begin, ctx, w->n, want->call, atomic_load_explicit(
			    &w->r->rec.fd, memory_order_relaxed), w->limit);
	return 0;
}

static void wait_end(struct ctx__wait *w)
{
	record_end(&w->r->rec);
	if (w->n)
		ctx__link_del(w->n, &w->link);
	w->r->prepared = false;
}

static void sleep_futex(struct ctx__reactor *r)
{
	atomic_store(&r->sleeping, IN_FUTEX);
	if (!woken(r))
		ctx__futex_wait(&r->seq, r->token);
	atomic_store(&r->sleeping, AWAKE);
}

/*
 * ThreadSanitizer runs a signal's handler only once the thread that took
 * the signal enters a function it intercepts.  A raw futex wait is not
 * one: a thread parked there would hold a process signal (the SIGTERM of
 * a ctx_with_signals context) for as long as it sleeps, seen as a server
 * that never shut down.  Under TSan every sleep is a poll, which it
 * intercepts.
 */
#if defined(__SANITIZE_THREAD__)
#define FUTEX_SLEEP false
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FUTEX_SLEEP false
#endif
#endif
#ifndef FUTEX_SLEEP
#define FUTEX_SLEEP true
#endif

/* One sleep until `limit` (a time on the real clock): on the futex when
 * nothing but a wake-up can end it, else in the backend, which the
 * wake-up eventfd interrupts. */
static int sleep_until(struct ctx__wait *w, struct ctx__want *want,
		       int64_t limit)
{
	struct ctx__reactor *r = w->r;
	struct pollfd none[2];
	bool futex_will_do = !want->nfds && !want->xfer && limit == CTX__NEVER;
	if (FUTEX_SLEEP && futex_will_do) {
		sleep_futex(r);
		return 0;
	}
	int e = need_wakefd(r);
	if (e && futex_will_do) {
		/* Under TSan with no descriptor to spare: a wait that
		 * needs none must still work (signals are then late). */
		sleep_futex(r);
		return 0;
	}
	if (e)
		return e;
	if (backend()->settle && (e = backend()->settle(r->wakefd, limit)))
		return e;
	atomic_store(&r->sleeping, IN_KERNEL);
	if (!woken(r))
		e = backend()->sleep(r->wakefd, want->nfds ? want->fds : none,
			      want->nfds, limit, &want->ready);
	atomic_store(&r->sleeping, AWAKE);
	return e;
}

/* One sleep.  Under the manual clock no kernel timer stands for the
 * limit, which is on a clock the kernel does not know: the advance that
 * passes it wakes the thread (wait/clock.c).  Only a pause keeps a real
 * time (want->pace).  A durable sleep of a known thread is counted. */
static int sleep_once(struct ctx__wait *w, struct ctx__want *want)
{
	if (!ctx__clock_is_manual())
		return sleep_until(w, want, w->limit);
	if (w->durable && !block(w->r))
		return 0; /* a wake-up came already: look again */
	int e = sleep_until(w, want, w->pace_at);
	if (w->durable)
		unblock(w->r);
	return e;
}

/* The call's own deadline passed, or under the manual clock a pause's
 * real time. */
static bool expired(const struct ctx__wait *w, const struct ctx__want *want)
{
	if (want->deadline != CTX__NEVER && ctx_now() >= want->deadline)
		return true;
	return w->pace_at != CTX__NEVER && ctx__clock_real() >= w->pace_at;
}

static bool want_met(struct ctx__wait *w, struct ctx__want *want)
{
	return want->ready || (want->xfer && want->xfer->done) ||
	       (want->wakes && woken(w->r));
}

static int xfer_start(struct ctx__wait *w, struct ctx__xfer *x)
{
	if (!backend()->xfer_start)
		return CTX__BLOCKING;
	int e = need_wakefd(w->r);
	return e ? e : backend()->xfer_start(w->r->wakefd, x);
}

/*
 * A wait for nothing but the context, which has no deadline: sleep on the
 * node's err word itself.  The flag, set under the node's lock, tells
 * mark() (context.c) to wake every such sleeper with one futex call after
 * it stores err, so a cancel that ends N of these waits makes one system
 * call, not N, and the waiters touch no list and no reactor.  The lock
 * orders the flag against the store: a waiter that finds err 0 under it
 * is seen by the cancel, and the kernel's compare of err with 0 covers
 * the moments between the unlock and the sleep.  (Deadlines stay with
 * the backend's timer, which has no timer slack; futex timeouts have.)
 */
static bool node_wait_fits(ctx_t *n, const struct ctx__want *want)
{
	return FUTEX_SLEEP && n && !want->nfds && !want->xfer &&
	       !want->wakes && want->deadline == CTX__NEVER &&
	       ctx__load_deadline(n) == CTX__NEVER && !ctx__clock_is_manual();
}

static int node_sleep(ctx_t *n)
{
	ctx__node_lock(&n->lock);
	int e = atomic_load_explicit(&n->err, memory_order_relaxed);
	if (!e)
		n->flags |= CTX__F_FUTEX;
	ctx__node_unlock(&n->lock);
	while (!e) {
		ctx__futex_wait((_Atomic uint32_t *)(void *)&n->err, 0);
		e = atomic_load_explicit(&n->err, memory_order_acquire);
	}
	return e;
}

/* (The manual clock, which counts the threads that sleep, has every wake
 * go through the thread's reactor: this wait is not for it.) */
static int node_wait(ctx_t *ctx, ctx_t *n, const struct ctx__want *want)
{
	struct ctx__wait w = { .r = ctx__reactor_self(), .limit = CTX__NEVER,
			       .pace_at = CTX__NEVER, .durable = true };
	record_begin(&w, ctx, want);
	CTX__PROBE5(wait_begin, ctx, n, want->call, -1, CTX__NEVER);
	int e = node_sleep(n);
	record_end(&w.r->rec);
	CTX__PROBE4(wait_end, ctx, n, want->call, e);
	return e;
}

/*
 * The wait of every blocking call: until what `want` names happens (a
 * descriptor is ready, the transfer completed, or -- want->wakes -- a
 * wake-up came), the context ends, or want->deadline passes.  Returns
 *   CTX__READY     what was wanted happened (want->ready, xfer->done),
 *   CTX__EXPIRED   want->deadline, the call's own, passed,
 *   CTX__BLOCKING  a transfer was asked of a backend that has none,
 *   the context's error, or an errno value (EMFILE, ENOMEM, ...).
 * EINTR never comes out: a signal only makes the loop look again.
 */
int ctx__wait_for(ctx_t *ctx, struct ctx__want *want)
{
	ctx_t *n = ctx__node(ctx);
	if (node_wait_fits(n, want))
		return node_wait(ctx, n, want);
	struct ctx__wait w;
	int e = wait_begin(&w, ctx, want);
	if (e)
		return e;
	want->ready = 0;
	if (want->xfer && (e = xfer_start(&w, want->xfer)))
		goto out;
	for (;;) {
		if (!want->wakes && woken(w.r))
			forget_stale_wake(w.r); /* the stale-wake rule */
		if ((e = ctx__check(w.n)))
			break;
		if (want_met(&w, want)) {
			e = CTX__READY;
			break;
		}
		if (expired(&w, want)) {
			e = CTX__EXPIRED;
			break;
		}
		set_limit(&w, want->deadline);
		e = sleep_once(&w, want);
		help_out(w.r);
		if (e)
			break;
	}
	if (want->xfer)
		backend()->xfer_finish(w.r->wakefd, want->xfer);
out:
	wait_end(&w);
	CTX__PROBE4(wait_end, ctx, w.n, want->call, e);
	return e;
}

/* A wait for one descriptor, or (fd < 0) for a wake-up, as `how` says
 * (its deadline, pace, call and parked). */
int ctx__wait_one(ctx_t *ctx, int fd, uint32_t events,
		  const struct ctx__want *how)
{
	struct pollfd p[3] = { { .fd = fd, .events = (short)events } };
	struct ctx__want want = *how;
	want.fds = p;
	want.nfds = fd >= 0;
	want.wakes = fd < 0;
	int e = ctx__wait_for(ctx, &want);
	if (e == CTX__READY && fd >= 0 && (p[0].revents & POLLNVAL))
		e = EBADF;
	return e;
}

int ctx__wait_fd(ctx_t *ctx, int fd, uint32_t events, int64_t deadline)
{
	struct ctx__want how = { .deadline = deadline };
	return ctx__wait_one(ctx, fd, events, &how);
}
