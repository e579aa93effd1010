/*
 * After-funcs (Go's context.AfterFunc): run a function once a context is
 * done, on a thread of the library's.
 *
 * The handle is a link on the context's cancel node.  When the node ends,
 * the link fires: it claims the handle (armed ->
 * fired) and queues it for the runner thread, which calls fn.  Stop
 * claims it the other way (armed -> stopped) and unlinks it; whichever
 * claim wins decides whether fn ever runs, so stop's answer is exact.
 * The handle is shared by the caller and the runner: each drops its
 * share, the last one frees it.
 *
 * One runner thread calls the functions in the order their contexts
 * ended; it is started by the first ctx_after_func, so programs that
 * never use after-funcs start no thread.  A function that blocks delays
 * the ones after it: start a thread from it for long work.  A deadline
 * nobody waits for still fires: the node is handed to the timer thread.
 *
 * A second ctx_after_stop on one handle is a misuse: the handle may be
 * gone.  While it still lives (fn running) it returns false rather than
 * give a share back twice; with CTX_DEBUG=checks it aborts with a
 * message, also once the handle is freed (its magic is poisoned).
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "core/core.h"

enum { ARMED, FIRED, STOPPED };

struct ctx_after {
	struct ctx__link link; /* first: fire() casts the link back */
	ctx_t *n;
	void (*fn)(void *arg);
	void *arg;
	_Atomic int state;
	_Atomic int shares;    /* caller's and runner's */
	struct ctx_after *next_queued;
	uint32_t magic;        /* CTX__MAGIC_AFTER; poisoned once freed */
	bool stop_called;      /* the caller's share is gone; caller's own */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct ctx_after *head, **tail = &head;
static bool running;

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

static void *runner_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!head)
			pthread_cond_wait(&cv, &mu);
		ctx_after_t *a = head;
		if (!(head = a->next_queued))
			tail = &head;
		pthread_mutex_unlock(&mu);
		a->fn(a->arg);
		put_share(a);
		pthread_mutex_lock(&mu);
	}
	return NULL;
}

/* The node ended: queue a for the runner unless it was stopped first. */
static void after_fire(struct ctx__link *l)
{
	ctx_after_t *a = (ctx_after_t *)l;
	int armed = ARMED;
	bool won = atomic_compare_exchange_strong(&a->state, &armed, FIRED);
	/* Done with the link before queueing: the runner may free a as
	 * soon as it is queued; the runner's share keeps it alive till then. */
	ctx__link_done(l);
	if (!won)
		return;
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

ctx_after_t *ctx_after_func(ctx_t *ctx, void (*fn)(void *arg), void *arg)
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
			    .link.fire = after_fire, .magic = CTX__MAGIC_AFTER };
	atomic_init(&a->state, ARMED);
	atomic_init(&a->shares, 2);
	if (!a->n) /* a context that never ends: fn never runs */
		return a;
	int e = start_runner();
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
		after_fire(&a->link); /* done already: run soon */
	return a;
}

/* Under checks: abort unless a is a live handle stopped for the first
 * time. */
static void check_handle(ctx_after_t *a)
{
	if (a->magic == CTX__DEAD || (a->magic == CTX__MAGIC_AFTER &&
				      a->stop_called))
		ctx__misuse("ctx_after_stop", "called twice on one handle",
			    NULL, 0);
	if (a->magic != CTX__MAGIC_AFTER)
		ctx__misuse("ctx_after_stop", "not an after-func handle (a "
			    "stray or corrupt pointer)", NULL, 0);
}

bool ctx_after_stop(ctx_after_t *a)
{
	if (!a)
		return false;
	if (CTX__CHECKING())
		check_handle(a);
	if (a->stop_called)
		return false; /* its share is given back already */
	a->stop_called = true;
	int armed = ARMED;
	bool stopped = atomic_compare_exchange_strong(&a->state, &armed,
						      STOPPED);
	if (stopped && a->n)
		ctx__link_del(a->n, &a->link);
	if (stopped)
		put_share(a); /* the runner's: it will never see a */
	put_share(a);
	return stopped;
}
