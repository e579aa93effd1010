/*
 * Time that tests control (Go's testing/synctest, tokio's time::pause,
 * Trio's autojump clock): ctx_clock_manual stops libctx's clock, which
 * then moves only when ctx_clock_advance moves it, or -- ctx_clock_auto
 * -- when every known thread is durably blocked, straight to the next
 * time something is due.
 *
 * What reads the clock.  ctx_now reads the manual time (base/clock.c), so
 * every deadline, sleep and timeout follows it.  What waits for a time
 * is asleep in one of two places, neither of which may keep a kernel
 * timer, since the kernel knows no manual time: a thread in the one wait
 * (reactor.c), whose limit its record holds (the registry, wait.h), and
 * the timer thread (core/timer.c), whose heap holds the nodes it ends at
 * their deadlines (done descriptors, after-funcs, idle contexts).  An
 * advance moves the time, then fires every node of the heap now due, in
 * the advancing thread, and wakes every thread whose wait's limit has
 * passed, so that each looks at the clock again.  Both are done before
 * ctx_clock_advance returns; what the woken threads then do is theirs
 * (ctx_clock_wait_idle waits for it).
 *
 * Known threads and durable blocks.  The caller of ctx_clock_manual and
 * every thread libctx starts from then on (ctx_thread_create and what is
 * built on it, ctx_wg_go) are known; each counts as at work, in the
 * count kept by base/clock.c, except while it sleeps in a wait that only
 * time or another known thread can end -- one with no descriptor, no
 * transfer and no back-off pause (reactor.c's block) -- and after it
 * has finished.  An after-func queued counts as at work until it
 * returns.  A waker counts the thread it wakes at work again before it
 * can block itself, so the count reaches zero only when every known
 * thread is durably blocked at once; whoever brings it there calls
 * on_idle, which wakes the threads in ctx_clock_wait_idle or, with none
 * and ctx_clock_auto on, makes the jump.  A thread the library did not
 * start is not known: it may read and wait on the manual clock, but
 * nothing waits for it, and a test that runs its work on such threads
 * should not use the automatic jump.
 *
 * One advance or jump at a time (step_mu): a jump looks at the count
 * again under it, so two threads that each saw the count reach zero do
 * not jump twice over one idle moment.
 */
#include <pthread.h>

#include "wait/wait.h"

static pthread_mutex_t step_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool auto_on;
static ctx__lock_t idle_lock;          /* the waiters of wait_idle */
static struct ctx__waitq idle_q = { NULL, &idle_q.head };

/* ---- advancing -------------------------------------------------------- */

static void wake_due(struct ctx__record *rec, void *arg)
{
	int64_t now = *(int64_t *)arg;
	if ((atomic_load(&rec->gen) & 1) &&
	    atomic_load_explicit(&rec->limit, memory_order_acquire) <= now)
		ctx__reactor_wake(rec->r);
}

/* With step_mu held.  The time is stored before any wait is looked at:
 * a waiter publishes its wait before it reads the time (reactor.c), all
 * four sequentially consistent, so either it sees the new time or this
 * sees its limit. */
static int64_t advance_to(int64_t t)
{
	int64_t now = ctx__clock_move(t);
	ctx__timer_run_due();
	ctx__registry_each(wake_due, &now);
	return now;
}

void ctx_clock_advance(int64_t ns)
{
	if (!ctx__clock_is_manual() || ns < 0)
		return;
	pthread_mutex_lock(&step_mu);
	advance_to(ctx__add_sat(ctx_now(), ns));
	pthread_mutex_unlock(&step_mu);
}

static void min_limit(struct ctx__record *rec, void *arg)
{
	int64_t *at = arg;
	if (!(atomic_load(&rec->gen) & 1))
		return;
	int64_t l = atomic_load_explicit(&rec->limit, memory_order_acquire);
	if (l < *at)
		*at = l;
}

/* The next time anything is due: a waiting thread's limit or a node of
 * the timer's heap.  CTX__NEVER: nothing will ever be. */
static int64_t next_due(void)
{
	int64_t at = ctx__timer_next();
	ctx__registry_each(min_limit, &at);
	return at;
}

static bool may_jump(void)
{
	return atomic_load(&auto_on) && ctx__clock_is_manual() &&
	       ctx__clock_at_work() == 0;
}

/*
 * Every known thread is durably blocked: jump to the next due time.  A
 * jump that woke no thread (a touched idle context's node, which only
 * goes back into the heap for later) leaves every thread blocked and
 * nobody to call again, so this looks again after each jump, and stops
 * once a thread is at work, nothing is due, or the due time is the
 * present (the woken have yet to run; a waiter of its own later).
 */
static void jump(void)
{
	pthread_mutex_lock(&step_mu);
	while (may_jump()) {
		int64_t at = next_due(), now = ctx_now();
		if (at == CTX__NEVER)
			break; /* all blocked for ever: a deadlock, left be */
		advance_to(at);
		if (at <= now)
			break;
	}
	pthread_mutex_unlock(&step_mu);
}

/* base/clock.c's hook: the count of work reached zero. */
static void on_idle(void)
{
	struct ctx__wakeups w = { 0 };
	ctx__lock(&idle_lock);
	bool waiters = !ctx__waitq_empty(&idle_q);
	ctx__waitq_finish_all(&idle_q, 0, &w);
	ctx__unlock(&idle_lock);
	ctx__wakeups_flush(&w);
	if (!waiters)
		jump();
}

__attribute__((constructor)) static void clock_hook(void)
{
	ctx__clock_idle_hook = on_idle;
}

/* ---- the calls -------------------------------------------------------- */

int ctx_clock_manual(void)
{
	if (!ctx__clock_start())
		return EBUSY;
	atomic_store(&ctx__record_self()->known, true);
	return 0;
}

void ctx_clock_auto(bool on)
{
	atomic_store(&auto_on, on);
	if (on && may_jump())
		on_idle();
}

/* The skeleton of a blocking call (call.h): the try looks at the count
 * under idle_lock and queues the thread to park until on_idle. */
struct idle_call {
	struct ctx__call c; /* first: the try casts it back */
	bool locked;        /* the try took idle_lock */
	struct ctx__waitq_node me;
};

/* Every known thread but the caller is durably blocked (the caller, if
 * known, is at work: it runs this). */
static bool all_idle(void)
{
	struct ctx__record *me = ctx__record_self();
	int self = atomic_load_explicit(&me->known, memory_order_relaxed);
	return ctx__clock_at_work() <= self;
}

static int idle_try(struct ctx__call *c)
{
	struct idle_call *k = (struct idle_call *)c;
	if (!k->locked) {
		ctx__lock(&idle_lock);
		k->locked = true;
	} else { /* after a wake-up: out of the queue, if still in it */
		ctx__waitq_del(&idle_q, &k->me);
	}
	if (!ctx__clock_is_manual() || all_idle())
		return CTX__DONE;
	ctx__waitq_push(&idle_q, &k->me);
	return CTX__AGAIN;
}

int ctx_clock_wait_idle(ctx_t *ctx)
{
	if (!ctx)
		return EINVAL;
	struct idle_call k = {
		.c = { .try = idle_try, .fd = -1, .lock = &idle_lock,
		       .deadline = CTX__NEVER, .call = "ctx_clock_wait_idle" },
	};
	int e = ctx__call_run(ctx, &k.c);
	if (k.locked) {
		ctx__waitq_del(&idle_q, &k.me);
		ctx__unlock(&idle_lock);
	}
	return e;
}

/* ---- known threads ---------------------------------------------------- */

bool ctx__clock_spawning(void)
{
	return ctx__clock_work_begin();
}

void ctx__clock_unspawn(void)
{
	ctx__clock_work_end();
}

void ctx__clock_adopt(void)
{
	atomic_store(&ctx__record_self()->known, true);
}

void ctx__clock_leave(void)
{
	if (atomic_exchange(&ctx__record_self()->known, false))
		ctx__clock_work_end();
}

static void forget(struct ctx__record *rec, void *arg)
{
	(void)arg;
	atomic_store(&rec->known, false);
	atomic_store(&rec->blocked, false);
}

void ctx__clock_reset(void)
{
	atomic_store(&auto_on, false);
	ctx__registry_each(forget, NULL);
	ctx__clock_stop();
	ctx__timer_clock_changed();
}
