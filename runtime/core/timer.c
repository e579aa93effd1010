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
 * it out (ctx__timer_del).  Its entries carry their keys, so that a node
 * spends no bytes on them.  When an entry comes due the thread walks
 * the node's chain (ctx__expire), whatever the node's cached deadline
 * says: after a ctx_set_deadline (deadline.c) the cache may be late for
 * a moment, and the heap is what makes a deadline moved earlier hold.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/core.h"

struct entry {
	int64_t at; /* when to look at n next */
	ctx_t *n;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static struct entry *heap;
static int heap_len, heap_cap;
static bool running;

/* Ended by the heap itself: no memory to keep watching it. */
static const struct ctx__origin no_room = {
	.how = CTX__BY_LIBRARY,
	.text = "libctx's timer thread, out of memory for its heap",
};

static bool before(int i, int j)
{
	return heap[i].at < heap[j].at;
}

static void put(int i, struct entry e)
{
	heap[i] = e;
	e.n->c.heap_idx = i;
}

static void swap(int i, int j)
{
	struct entry t = heap[i];
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
	CTX_ASSERT(i >= 0 && i < heap_len && heap[i].n->c.heap_idx == i);
	heap[i].n->c.heap_idx = -1;
	if (--heap_len == i)
		return;
	put(i, heap[heap_len]);
	sift_down(i);
	sift_up(i);
}

static int grow(void);

/* When to look at n next: its deadline, or sooner the moving deadline of
 * its kind (an idle context's). */
int64_t ctx__timer_due(ctx_t *n)
{
	const struct ctx__kind_hooks *k = ctx__kind_of(n);
	int64_t t = k && k->deadline ? k->deadline(n) : CTX__NEVER;
	int64_t d = ctx__load_deadline(n);
	return t < d ? t : d;
}

/* n is due: end it if its deadline passed, else ask its kind.  True if
 * n is live and must be looked at again. */
static bool fire(ctx_t *n)
{
	ctx__expire(n); /* ends it, or finds its deadline moved */
	const struct ctx__kind_hooks *k = ctx__kind_of(n);
	if (atomic_load_explicit(&n->err, memory_order_acquire))
		return false;
	if (!k || !k->fire || !k->deadline || k->deadline(n) > ctx_now())
		return true;
	return k->fire(n);
}

/* After fire, without mu: whether n still has a time to be looked at.
 * A node that has none leaves the heap unmarked, under its lock, so
 * that a deadline given it later (ctx_set_deadline) adds it again. */
static bool keep(ctx_t *n)
{
	ctx__node_lock(&n->lock);
	bool live = !atomic_load_explicit(&n->err, memory_order_relaxed) &&
		    ctx__timer_due(n) != CTX__NEVER;
	if (!live)
		n->flags &= (uint8_t)~CTX__F_IN_HEAP;
	ctx__node_unlock(&n->lock);
	return live;
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
		ctx__cancel_by(n, CTX_DEADLINE_EXCEEDED, ENOMEM, &no_room);
		pthread_mutex_lock(&mu);
		return false;
	}
	put(heap_len++, (struct entry){ ctx__timer_due(n), n });
	sift_up(n->c.heap_idx);
	return true;
}

static void *timer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		if (heap_len == 0) {
			pthread_cond_wait(&cv, &mu);
			continue;
		}
		ctx_t *n = heap[0].n;
		int64_t at = heap[0].at;
		if (ctx_now() < at) {
			struct timespec ts = {
				.tv_sec = at / CTX_SEC,
				.tv_nsec = at % CTX_SEC,
			};
			pthread_cond_timedwait(&cv, &mu, &ts);
			continue;
		}
		heap_remove(0);
		pthread_mutex_unlock(&mu);
		/* Past its deadline: this cancels it, unless the deadline
		 * moved (an idle node that was touched, a deadline set
		 * later). */
		bool again = fire(n) && keep(n);
		pthread_mutex_lock(&mu);
		if (again && rearm(n))
			continue; /* the heap keeps the reference */
		pthread_mutex_unlock(&mu);
		ctx_unref(n);
		pthread_mutex_lock(&mu);
	}
	return NULL;
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

static void cv_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
}

/* The condition variable is made anew too: the child's copy still
 * counts the parent's thread as asleep on it, and glibc would give that
 * absent sleeper a signal meant for the child's thread, then wait for
 * it forever at the next. */
static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	cv_init();
	running = false;
	if (heap_len > 0)
		start_thread();
}

static void init(void)
{
	cv_init();
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

static int grow(void)
{
	if (heap_len < heap_cap)
		return 0;
	int cap = heap_cap ? 2 * heap_cap : 64;
	struct entry *h = realloc(heap, (size_t)cap * sizeof(*h));
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
	put(heap_len++, (struct entry){ ctx__timer_due(n), n });
	sift_up(n->c.heap_idx);
	if (n->c.heap_idx == 0)
		pthread_cond_signal(&cv);
out:
	pthread_mutex_unlock(&mu);
	return e;
}

/* A node in the heap whose due time moved: its entry's key follows.  A
 * node out of it for a moment (being fired) gets the new time when it is
 * put back, which reads it after this store. */
void ctx__timer_rekey(ctx_t *n)
{
	pthread_once(&once, init);
	CTX_ASSERT(ctx__node_locks() == 0);
	pthread_mutex_lock(&mu);
	int i = n->c.heap_idx;
	if (i >= 0) {
		heap[i].at = ctx__timer_due(n);
		sift_down(i);
		sift_up(i);
		if (n->c.heap_idx == 0)
			pthread_cond_signal(&cv);
	}
	pthread_mutex_unlock(&mu);
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
