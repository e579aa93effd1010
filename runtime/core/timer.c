/*
 * The timer thread: ends contexts at their deadlines when no waiting
 * thread would notice, so that a done fd turns readable on time.
 *
 * Most deadlines never get here: a deadline is a number, checked by
 * ctx_err and by the waiting thread's own timerfd.  Only nodes whose done
 * fd was asked for are added, so a program that never asks starts no
 * thread.  The thread is started on the first add, blocks every signal,
 * sleeps on a CLOCK_MONOTONIC condition variable until the earliest
 * deadline of a binary heap, and is started again after fork() in the
 * child when it has work.
 *
 * The heap holds a reference to each node in it; cancelling a node takes
 * it out (ctx__timer_del).
 *
 * Under the manual clock (wait/clock.c) the thread sleeps until it is
 * signalled, never until a time, and each advance of the clock fires
 * what is due in the advancing thread, before the advance returns.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static ctx_t **heap;
static int heap_len, heap_cap;
static bool running;

static bool before(int i, int j)
{
	return heap[i]->c.timer_at < heap[j]->c.timer_at;
}

static void put(int i, ctx_t *n)
{
	heap[i] = n;
	n->c.heap_idx = i;
}

static void swap(int i, int j)
{
	ctx_t *t = heap[i];
	put(i, heap[j]);
	put(j, t);
}

static void sift_up(int i)
{
	while (i > 0 && before(i, (i - 1) / 2)) {
		swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void sift_down(int i)
{
	for (;;) {
		int m = i, l = 2 * i + 1, r = l + 1;
		if (l < heap_len && before(l, m))
			m = l;
		if (r < heap_len && before(r, m))
			m = r;
		if (m == i)
			return;
		swap(i, m);
		i = m;
	}
}

static void heap_remove(int i)
{
	CTX_ASSERT(i >= 0 && i < heap_len && heap[i]->c.heap_idx == i);
	heap[i]->c.heap_idx = -1;
	if (--heap_len == i)
		return;
	put(i, heap[heap_len]);
	sift_down(i);
	sift_up(i);
}

static int grow(void);
static void init(void);

/* When to look at n next: its deadline, or sooner the moving deadline of
 * its kind (an idle context's). */
static int64_t due(ctx_t *n)
{
	const struct ctx__kind_hooks *k = ctx__kind_of(n);
	int64_t t = k && k->deadline ? k->deadline(n) : CTX__NEVER;
	return t < n->deadline ? t : n->deadline;
}

/* n is due: end it if its deadline passed, else ask its kind.  True if
 * n is live and must be looked at again at due(n). */
static bool fire(ctx_t *n)
{
	ctx__check(n); /* its own deadline, if that is what passed */
	const struct ctx__kind_hooks *k = ctx__kind_of(n);
	if (!k || !k->fire ||
	    atomic_load_explicit(&n->err, memory_order_acquire))
		return false;
	return k->fire(n);
}

/* Under mu: put n back for its next due time, unless a cancel ran since
 * it left the heap (that cancel's ctx__timer_del found nothing to drop,
 * so the reference is still ours to drop).  False: not put back. */
static bool rearm(ctx_t *n)
{
	if (atomic_load(&n->err))
		return false;
	if (grow()) { /* no room: end it rather than let it live on */
		pthread_mutex_unlock(&mu);
		ctx__cancel(n, CTX_DEADLINE_EXCEEDED, ENOMEM);
		pthread_mutex_lock(&mu);
		return false;
	}
	n->c.timer_at = due(n);
	put(heap_len++, n);
	sift_up(n->c.heap_idx);
	return true;
}

/* Under mu, which it drops while it works: take the earliest node out
 * of the heap and fire it.  Past its deadline: this cancels it, unless
 * the deadline moved (an idle node that was touched). */
static void fire_first(void)
{
	ctx_t *n = heap[0];
	heap_remove(0);
	pthread_mutex_unlock(&mu);
	bool again = fire(n);
	pthread_mutex_lock(&mu);
	if (again && rearm(n))
		return; /* the heap keeps the reference */
	pthread_mutex_unlock(&mu);
	ctx_unref(n);
	pthread_mutex_lock(&mu);
}

/* Under mu: sleep until `at`.  The manual clock's time is no time the
 * kernel knows: its advances fire what is due themselves
 * (ctx__timer_run_due), and this thread only waits to be signalled. */
static void sleep_until(int64_t at)
{
	if (ctx__clock_is_manual()) {
		pthread_cond_wait(&cv, &mu);
		return;
	}
	struct timespec ts = { .tv_sec = at / CTX_SEC,
			       .tv_nsec = at % CTX_SEC };
	pthread_cond_timedwait(&cv, &mu, &ts);
}

static void *timer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		if (heap_len == 0)
			pthread_cond_wait(&cv, &mu);
		else if (ctx_now() < heap[0]->c.timer_at)
			sleep_until(heap[0]->c.timer_at);
		else
			fire_first();
	}
	return NULL;
}

void ctx__timer_run_due(void)
{
	pthread_once(&once, init);
	CTX_ASSERT(ctx__node_locks() == 0);
	pthread_mutex_lock(&mu);
	while (heap_len > 0 && heap[0]->c.timer_at <= ctx_now())
		fire_first();
	pthread_mutex_unlock(&mu);
}

int64_t ctx__timer_next(void)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	int64_t at = heap_len > 0 ? heap[0]->c.timer_at : CTX__NEVER;
	pthread_mutex_unlock(&mu);
	return at;
}

void ctx__timer_clock_changed(void)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* Called with mu held. */
static int start_thread(void)
{
	int e = ctx__spawn(timer_main, NULL, CTX__STACK_SMALL);
	if (!e)
		running = true;
	return e;
}

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }

static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	running = false;
	if (heap_len > 0)
		start_thread();
}

static void init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static int grow(void)
{
	if (heap_len < heap_cap)
		return 0;
	int cap = heap_cap ? 2 * heap_cap : 64;
	ctx_t **h = realloc(heap, (size_t)cap * sizeof(*h));
	if (!h)
		return ENOMEM;
	heap = h;
	heap_cap = cap;
	return 0;
}

int ctx__timer_add(ctx_t *n)
{
	pthread_once(&once, init);
	CTX_ASSERT(ctx__node_locks() == 0); /* the heap's lock is never under one */
	pthread_mutex_lock(&mu);
	int e = 0;
	/* A cancel that ran before this lock also ran its timer_del before
	 * it: seeing err here keeps a done node out of the heap for good. */
	if (atomic_load(&n->err) || n->c.heap_idx >= 0)
		goto out;
	if (!running && (e = start_thread()))
		goto out;
	if ((e = grow()))
		goto out;
	ctx_ref(n);
	n->c.timer_at = due(n);
	put(heap_len++, n);
	sift_up(n->c.heap_idx);
	if (n->c.heap_idx == 0)
		pthread_cond_signal(&cv);
out:
	pthread_mutex_unlock(&mu);
	return e;
}

void ctx__timer_del(ctx_t *n)
{
	pthread_once(&once, init);
	CTX_ASSERT(ctx__node_locks() == 0); /* the heap's lock is never under one */
	pthread_mutex_lock(&mu);
	bool found = n->c.heap_idx >= 0;
	if (found)
		heap_remove(n->c.heap_idx);
	pthread_mutex_unlock(&mu);
	if (found)
		ctx_unref(n);
}
