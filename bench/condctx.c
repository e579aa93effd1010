/*
 * condctx: the context a C programmer writes without libctx, the
 * "condvar" column of the benchmarks.  It is meant to be the best version
 * of that approach, not a straw man:
 *
 *  - each context is a mutex, a condition variable (CLOCK_MONOTONIC) and
 *    an error flag, in a tree: cancelling a context cancels its children
 *    with the same error, as Go's context package does;
 *  - the flag is also an atomic, so checking it takes no lock;
 *  - a deadline is a number compared with the clock; waiters sleep on
 *    the condvar up to it (pthread_cond_clockwait), so no timer thread is
 *    needed;
 *  - other condition variables (a thread's "finished" signal) can be hung
 *    on a context, which broadcasts them when it is cancelled: that is how
 *    a join becomes cancellable (std::condition_variable_any does the same
 *    with a stop_callback);
 *  - a read tries the call without blocking first (preadv2 RWF_NOWAIT),
 *    so data that is already there costs one system call; only then does
 *    it wait, in poll(2) slices, checking the flag between slices.  A
 *    condition variable cannot interrupt a thread in read(2): the slice
 *    is the price of this design.  Shorter slices stop a read sooner and
 *    burn more CPU while idle (condvar-1ms).
 *
 * Locking: a context's mutex guards its child list and its list of hung
 * condition variables; a parent's mutex also guards each child's
 * `linked` flag and sibling links.  Locks are taken top-down only
 * (parent, then child, then a hung condvar's mutex), as Go's context
 * package does: cancel holds a context's lock while it cancels the
 * children, so a child cannot be freed under it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "impl.h"

#define NO_DEADLINE INT64_MAX

/* A condition variable hung on a context by cond_wait.  The
 * list links are under the context's mutex; `hung` is written with both
 * the context's mutex and *mu held, so either lock may read it. */
struct condctx_waiter {
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	bool hung;
	struct condctx_waiter *prev, *next;
};

struct condctx {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* broadcast on cancel */
	_Atomic int err;            /* 0 until cancelled; read without mu */
	_Atomic int refs;
	int64_t deadline;           /* the earliest of the chain */
	bool root;
	struct condctx *parent;
	bool linked;                /* on parent's list; under parent->mu */
	struct condctx *prev, *next;        /* siblings; under parent->mu */
	struct condctx *children;           /* under mu */
	struct condctx_waiter *waiters;     /* under mu */
};

struct condctx_thread {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	void *result;
	void *(*fn)(void *arg);
	void *arg;
	struct condctx *ctx;
};

static struct condctx background = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.refs = 1,
	.deadline = NO_DEADLINE,
	.root = true,
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

static struct timespec to_ts(int64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000),
				  (long)(ns % 1000000000) };
}

/* Sleep on cv until woken or until `until` (NO_DEADLINE: untimed). */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
			    int64_t until)
{
	struct timespec ts;

	if (until == NO_DEADLINE) {
		pthread_cond_wait(cv, mu);
		return;
	}
	/* clockwait rather than timedwait: the clock is named here, so no
	 * condvar (the static root's, a caller's) needs a clock attribute. */
	ts = to_ts(until);
	pthread_cond_clockwait(cv, mu, CLOCK_MONOTONIC, &ts);
}

static void *cc_background(void)
{
	return &background;
}

static int err_of(struct condctx *c)
{
	int e = atomic_load_explicit(&c->err, memory_order_acquire);

	if (e)
		return e;
	/* No timer fires a deadline: it is a number, compared when asked. */
	if (c->deadline != NO_DEADLINE && now_ns() >= c->deadline)
		return ETIMEDOUT;
	return 0;
}

static void unlink_from_parent(struct condctx *c)
{
	struct condctx *p = c->parent;

	if (!p || p->root)
		return;
	pthread_mutex_lock(&p->mu);
	if (c->linked) {
		if (c->prev)
			c->prev->next = c->next;
		else
			p->children = c->next;
		if (c->next)
			c->next->prev = c->prev;
		c->linked = false;
	}
	pthread_mutex_unlock(&p->mu);
}

/* Recursive, as Go's is: the depth of a tree is the depth of the stack. */
static void cancel_with(struct condctx *c, int err)
{
	struct condctx *ch, *next;
	struct condctx_waiter *w, *wnext;

	pthread_mutex_lock(&c->mu);
	if (atomic_load_explicit(&c->err, memory_order_relaxed)) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	/* A deadline that has passed ended the context first. */
	if (c->deadline != NO_DEADLINE && now_ns() >= c->deadline)
		err = ETIMEDOUT;
	atomic_store_explicit(&c->err, err, memory_order_release);
	/*
	 * Each hung waiter checks the flag under its own mutex: taking that
	 * mutex after setting the flag means the broadcast cannot fall
	 * between its check and its sleep.  Unhooking it here, under its
	 * mutex, spares it our lock on the way out; and once that mutex is
	 * released we never touch the waiter again, so it may return (and
	 * its condvar go away) as soon as it wakes.
	 */
	w = c->waiters;
	c->waiters = NULL;
	for (; w; w = wnext) {
		wnext = w->next;
		pthread_mutex_lock(w->mu);
		w->hung = false;
		pthread_cond_broadcast(w->cv);
		pthread_mutex_unlock(w->mu);
	}
	for (ch = c->children; ch; ch = next) {
		next = ch->next;
		ch->linked = false;
		cancel_with(ch, err);
	}
	c->children = NULL;
	pthread_mutex_unlock(&c->mu);
	/* The context's own waiters re-take its mutex when they wake:
	 * broadcast after unlocking, so that they do not run into it held.
	 * Safe: whoever cancels holds a reference (or, for a child, its
	 * parent's lock, without which it cannot be freed). */
	pthread_cond_broadcast(&c->cv);
}

static void cc_cancel(void *p)
{
	struct condctx *c = p;

	if (c->root)
		return;
	cancel_with(c, ECANCELED);
	/* As Go's cancel does: a cancelled child leaves its parent's list,
	 * so that long-lived parents do not collect dead children. */
	unlink_from_parent(c);
}

static struct condctx *ref(struct condctx *c)
{
	if (!c->root)
		atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void unref(struct condctx *c)
{
	struct condctx *p;

	if (!c || c->root)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Every child holds a reference, so there are none left; waiters
	 * hold one too. */
	unlink_from_parent(c);
	p = c->parent;
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	unref(p);
}

static void cc_release(void *c)
{
	if (!c)
		return;
	cc_cancel(c);
	unref(c);
}

static void *cc_with_deadline(void *pp, int64_t deadline_ns)
{
	struct condctx *parent = pp, *c;
	int e;

	if (!parent) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	atomic_init(&c->refs, 1);
	atomic_init(&c->err, 0);
	c->deadline = deadline_ns < parent->deadline ? deadline_ns :
						      parent->deadline;
	c->parent = ref(parent);
	if (parent->root) {
		/* Nothing can cancel the root: no need to be on a list. */
		if (c->deadline != NO_DEADLINE && now_ns() >= c->deadline)
			atomic_init(&c->err, ETIMEDOUT);
		return c;
	}
	pthread_mutex_lock(&parent->mu);
	e = atomic_load_explicit(&parent->err, memory_order_relaxed);
	if (!e && c->deadline != NO_DEADLINE && now_ns() >= c->deadline)
		e = ETIMEDOUT;
	if (e) {
		atomic_init(&c->err, e); /* done at creation */
	} else {
		c->next = parent->children;
		if (c->next)
			c->next->prev = c;
		parent->children = c;
		c->linked = true;
	}
	pthread_mutex_unlock(&parent->mu);
	return c;
}

static void *cc_with_cancel(void *parent)
{
	return cc_with_deadline(parent, NO_DEADLINE);
}

static int cc_wait(void *p)
{
	struct condctx *c = p;
	int e;

	pthread_mutex_lock(&c->mu);
	while (!(e = err_of(c)))
		cond_wait_until(&c->cv, &c->mu, c->deadline);
	pthread_mutex_unlock(&c->mu);
	return e;
}

static int cc_sleep(void *p, int64_t duration_ns)
{
	struct condctx *c = p;
	int64_t end = add_sat(now_ns(), duration_ns);
	int e;

	pthread_mutex_lock(&c->mu);
	while (!(e = err_of(c)) && now_ns() < end)
		cond_wait_until(&c->cv, &c->mu,
				end < c->deadline ? end : c->deadline);
	pthread_mutex_unlock(&c->mu);
	return e;
}

/*
 * Wait until done(arg) is true, evaluated under mu, or c ends: 0 or the
 * context's error.  Whoever makes done(arg) true broadcasts cv under mu.
 */
static int cond_wait(struct condctx *c, pthread_mutex_t *mu,
		     pthread_cond_t *cv, bool (*done)(void *arg), void *arg)
{
	struct condctx_waiter w = { mu, cv, false, NULL, NULL };
	bool hung;
	int e;

	if ((e = err_of(c)))
		return e;
	/* Hang cv on the context before looking at the flag under mu, so
	 * that a cancel either sees it or happened before the check. */
	if (!c->root) {
		pthread_mutex_lock(&c->mu);
		if (!atomic_load_explicit(&c->err, memory_order_relaxed)) {
			w.next = c->waiters;
			if (w.next)
				w.next->prev = &w;
			c->waiters = &w;
			w.hung = true;
		}
		pthread_mutex_unlock(&c->mu);
	}
	pthread_mutex_lock(mu);
	while (!(e = err_of(c)) && !done(arg))
		cond_wait_until(cv, mu, c->deadline);
	hung = w.hung;
	pthread_mutex_unlock(mu);
	/* Still hung: nobody cancelled, unhook ourselves (unless a cancel
	 * did in the meantime). */
	if (hung) {
		pthread_mutex_lock(&c->mu);
		if (w.hung) {
			if (w.prev)
				w.prev->next = w.next;
			else
				c->waiters = w.next;
			if (w.next)
				w.next->prev = w.prev;
		}
		pthread_mutex_unlock(&c->mu);
	}
	return e;
}

static ssize_t cc_read(void *cp, int fd, void *buf, size_t len,
		       int64_t slice_ns)
{
	struct condctx *c = cp;
	struct iovec v = { buf, len };
	bool nowait = true;
	ssize_t n;
	int e;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		struct timespec ts;
		int64_t t = slice_ns;

		if ((e = err_of(c))) {
			errno = e;
			return -1;
		}
		/* Data already there costs this one call. */
		if (nowait) {
			n = preadv2(fd, &v, 1, -1, RWF_NOWAIT);
			if (n >= 0)
				return n;
			if (errno == EOPNOTSUPP || errno == EINVAL)
				nowait = false;
			else if (errno != EAGAIN && errno != EINTR)
				return -1;
		}
		/* Nothing can wake this poll but the descriptor: wait one
		 * slice at most, never past the deadline, then look at the
		 * flag again. */
		if (c->deadline != NO_DEADLINE) {
			int64_t left = c->deadline - now_ns();

			if (left < t)
				t = left > 0 ? left : 0;
		}
		ts = to_ts(t);
		n = ppoll(&p, 1, &ts, NULL);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0) {
			/* Ready (or hung up): read, which does not block now
			 * on a descriptor with one reader. */
			n = read(fd, buf, len);
			if (n >= 0 || (errno != EAGAIN && errno != EINTR))
				return n;
		}
	}
}

static void *thread_main(void *p)
{
	struct condctx_thread *t = p;
	void *r = t->fn(t->arg);

	unref(t->ctx);
	pthread_mutex_lock(&t->mu);
	t->result = r;
	t->done = true;
	pthread_cond_broadcast(&t->cv);
	/* The joiner may free t as soon as this unlock lets it look. */
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static int cc_thread_create(void **tp, void *ctx, void *(*fn)(void *arg),
			    void *arg)
{
	struct condctx_thread *t = calloc(1, sizeof(*t));
	int e;

	if (!t)
		return ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->fn = fn;
	t->arg = arg;
	t->ctx = ref(ctx);
	if ((e = pthread_create(&t->th, NULL, thread_main, t))) {
		unref(ctx);
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->cv);
		free(t);
		return e;
	}
	*tp = t;
	return 0;
}

static bool thread_done(void *p)
{
	return ((struct condctx_thread *)p)->done;
}

static int cc_thread_join(void *ctx, void *p, void **result)
{
	struct condctx_thread *t = p;
	int e = cond_wait(ctx, &t->mu, &t->cv, thread_done, t);

	if (e)
		return e;
	pthread_join(t->th, NULL);
	if (result)
		*result = t->result;
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
	return 0;
}

static int cc_err(void *c)
{
	return err_of(c);
}

const struct bench_impl bench_condvar = {
	.name = "condvar",
	.background = cc_background,
	.with_cancel = cc_with_cancel,
	.with_deadline = cc_with_deadline,
	.cancel = cc_cancel,
	.release = cc_release,
	.err = cc_err,
	.wait = cc_wait,
	.sleep = cc_sleep,
	.read = cc_read,
	.thread_create = cc_thread_create,
	.thread_join = cc_thread_join,
	.slice_ns = 10000000,
};

/* The same with 1 ms slices: a read stops sooner, idle costs more. */
const struct bench_impl bench_condvar_1ms = {
	.name = "condvar-1ms",
	.background = cc_background,
	.with_cancel = cc_with_cancel,
	.with_deadline = cc_with_deadline,
	.cancel = cc_cancel,
	.release = cc_release,
	.err = cc_err,
	.wait = cc_wait,
	.sleep = cc_sleep,
	.read = cc_read,
	.thread_create = cc_thread_create,
	.thread_join = cc_thread_join,
	.slice_ns = 1000000,
};
