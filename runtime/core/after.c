/*
 * After-funcs (Go's context.AfterFunc): run a function once a context is
 * done, on a thread of the library's (ctx_after_func), or in the thread
 * that ends the context (ctx_after_func_inline, as C++'s stop_callback).
 *
 * The handle is a link on the context's cancel node.  When the node ends,
 * the link fires: it claims the handle (armed -> fired) and either queues
 * it for the runner thread, which calls fn, or calls fn there and then.
 * Stop claims it the other way (armed -> stopped) and unlinks it;
 * whichever claim wins decides whether fn ever runs, so stop's answer is
 * exact.  When fn has returned the handle says so (ran), and a
 * ctx_after_stop_wait that found it fired sleeps on that word until
 * then -- unless fn is running on its own thread, up its own stack
 * (each thread keeps the handles whose fn it is running), where the wait
 * would never end.  For the same reason a ctx_after_stop_wait made on
 * the runner thread (from inside another fn) for a handle still in the
 * queue takes it out and runs its fn there and then.
 *
 * The handle is shared by the caller and the runner (the thread that
 * fires or runs fn): each drops its share, the last one frees it.  A
 * stop that wins while a canceller already holds the link (fired in the
 * same batch as an inline fn that stops it) leaves the runner's share to
 * that canceller, which finds the handle stopped when it comes to it:
 * so stop never waits for a canceller, which may be the very thread it
 * runs on.
 *
 * One runner thread calls the queued functions in the order their
 * contexts ended; it is started by the first ctx_after_func, so programs
 * that never use after-funcs start no thread.  A function that blocks
 * delays the ones after it: start a thread from it for long work.  A
 * deadline nobody waits for still fires: the node is handed to the timer
 * thread, which is then the thread that ends it.
 *
 * A second ctx_after_stop on one handle is a misuse: the handle may be
 * gone.  While it still lives (fn running) it returns false rather than
 * give a share back twice; with CTX_DEBUG=checks it aborts with a
 * message, also once the handle is freed (its magic is poisoned).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <limits.h>

#include "core/core.h"

/* WAITED: fired, and a ctx_after_stop_wait sleeps until it has run. */
enum { ARMED, FIRED, STOPPED, WAITED, RAN };

struct ctx_after {
	struct ctx__link link; /* first: fire() casts the link back */
	ctx_t *n;
	void (*fn)(void *arg);
	void *arg;
	_Atomic uint32_t state; /* a futex word, for the waits */
	_Atomic int shares;    /* caller's and runner's */
	struct ctx_after *next_queued;
	struct ctx_after *outer; /* running on this thread before it */
	uint32_t magic;        /* CTX__MAGIC_AFTER; poisoned once freed */
	bool stop_called;      /* the caller's share is gone; caller's own */
	bool in_place;         /* ctx_after_func_inline */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct ctx_after *head, **tail = &head;
static bool running;
/* The handles whose fn this thread is running, innermost first. */
static __thread struct ctx_after *running_here;
static __thread bool on_runner; /* this thread is the runner */

static void put_share(ctx_after_t *a)
{
	int old = atomic_fetch_sub(&a->shares, 1);
	CTX_ASSERT(old > 0);
	if (old == 1) {
		CTX_ASSERT(!a->link.pprev); /* not freed while listed */
		ctx_unref(a->n);
		ctx__retire(a, sizeof(*a));
	}
}

/* Call fn, say it ran (waking a ctx_after_stop_wait), and drop the
 * runner's share. */
static void run(ctx_after_t *a)
{
	a->outer = running_here;
	running_here = a;
	a->fn(a->arg);
	running_here = a->outer;
	if (atomic_exchange(&a->state, RAN) == WAITED)
		ctx__futex_wake(&a->state, INT_MAX);
	put_share(a);
}

static void *runner_main(void *arg)
{
	(void)arg;
	on_runner = true;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!head)
			pthread_cond_wait(&cv, &mu);
		ctx_after_t *a = head;
		if (!(head = a->next_queued))
			tail = &head;
		pthread_mutex_unlock(&mu);
		run(a);
		pthread_mutex_lock(&mu);
	}
	return NULL;
}

/* The node ended: run fn here, or queue a for the runner, unless it was
 * stopped first.  Stopped, the runner's share is this canceller's to
 * drop (the stop found the link taken). */
static void after_fire(struct ctx__link *l)
{
	ctx_after_t *a = (ctx_after_t *)l;
	uint32_t armed = ARMED;
	bool won = atomic_compare_exchange_strong(&a->state, &armed, FIRED);
	/* Done with the link first: the runner's share keeps a alive
	 * until run() drops it. */
	ctx__link_done(l);
	if (!won) {
		put_share(a);
		return;
	}
	if (a->in_place) {
		run(a);
		return;
	}
	pthread_mutex_lock(&mu);
	a->next_queued = NULL;
	*tail = a;
	tail = &a->next_queued;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }
/* The condition variable anew as well: the child's copy counts the
 * parent's runner as asleep on it (see the timer's, core/timer.c). */
static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	pthread_cond_init(&cv, NULL);
	running = false; /* the next ctx_after_func starts one again */
}

static void init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static int start_runner(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	int e = running ? 0 :
			  ctx__spawn(runner_main, NULL, CTX__STACK_SMALL);
	running = !e;
	pthread_mutex_unlock(&mu);
	return e;
}

static ctx_after_t *make(ctx_t *ctx, void (*fn)(void *arg), void *arg,
			 bool in_place)
{
	if (!ctx || !fn) {
		errno = EINVAL;
		return NULL;
	}
	ctx_after_t *a = ctx__malloc(sizeof(*a));
	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	*a = (ctx_after_t){ .fn = fn, .arg = arg, .n = ctx__node(ctx),
			    .link.fire = after_fire, .magic = CTX__MAGIC_AFTER,
			    .in_place = in_place };
	atomic_init(&a->state, ARMED);
	atomic_init(&a->shares, 2);
	if (!a->n) /* a context that never ends: fn never runs */
		return a;
	int e = in_place ? 0 : start_runner();
	if (!e)
		e = ctx__watch_deadline(a->n);
	if (e) {
		free(a);
		errno = e;
		return NULL;
	}
	ctx_ref(a->n);
	ctx__check(a->n); /* a passed deadline ends it now */
	if (ctx__link_add(a->n, &a->link))
		after_fire(&a->link); /* done already: run soon, or now */
	return a;
}

ctx_after_t *ctx_after_func(ctx_t *ctx, void (*fn)(void *arg), void *arg)
{
	return make(ctx, fn, arg, false);
}

ctx_after_t *ctx_after_func_inline(ctx_t *ctx, void (*fn)(void *arg),
				   void *arg)
{
	return make(ctx, fn, arg, true);
}

/* Under checks: abort unless a is a live handle stopped for the first
 * time. */
static void check_handle(ctx_after_t *a, const char *fn)
{
	if (a->magic == CTX__DEAD || (a->magic == CTX__MAGIC_AFTER &&
				      a->stop_called))
		ctx__misuse(fn, "called twice on one handle", NULL, 0);
	if (a->magic != CTX__MAGIC_AFTER)
		ctx__misuse(fn, "not an after-func handle (a stray or corrupt "
			    "pointer)", NULL, 0);
}

/* Is a's fn running on this thread, here or further up the stack? */
static bool mine(ctx_after_t *a)
{
	for (ctx_after_t *r = running_here; r; r = r->outer)
		if (r == a)
			return true;
	return false;
}

/* a fired: sleep until its fn has returned. */
static void wait_ran(ctx_after_t *a)
{
	uint32_t s = atomic_load(&a->state);
	while (s != RAN) {
		uint32_t fired = FIRED;
		if (s == FIRED && !atomic_compare_exchange_strong(
					  &a->state, &fired, WAITED)) {
			s = fired;
			continue;
		}
		ctx__futex_wait(&a->state, WAITED);
		s = atomic_load(&a->state);
	}
}

/* On the runner, from inside another fn: a queued behind it would wait
 * for this very thread.  Take it out of the queue and run it here, so
 * that the wait ends as it would have: after fn has returned. */
static bool run_queued(ctx_after_t *a)
{
	pthread_mutex_lock(&mu);
	ctx_after_t **p = &head;
	while (*p && *p != a)
		p = &(*p)->next_queued;
	bool queued = *p;
	if (queued && !(*p = a->next_queued))
		tail = p;
	pthread_mutex_unlock(&mu);
	if (queued)
		run(a);
	return queued;
}

static bool stop(ctx_after_t *a, bool wait, const char *fn)
{
	if (!a)
		return false;
	if (CTX__CHECKING())
		check_handle(a, fn);
	if (a->stop_called)
		return false; /* its share is given back already */
	a->stop_called = true;
	uint32_t armed = ARMED;
	bool stopped = atomic_compare_exchange_strong(&a->state, &armed,
						      STOPPED);
	/* The runner's share: ours when no canceller has the link. */
	if (stopped && (!a->n || ctx__link_unlist(a->n, &a->link)))
		put_share(a);
	if (!stopped && wait && !mine(a) && !(on_runner && run_queued(a)))
		wait_ran(a);
	put_share(a);
	return stopped;
}

bool ctx_after_stop(ctx_after_t *a)
{
	return stop(a, false, "ctx_after_stop");
}

bool ctx_after_stop_wait(ctx_after_t *a)
{
	return stop(a, true, "ctx_after_stop_wait");
}
