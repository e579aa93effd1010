/*
 * The implementations of impl.h besides condctx.c and stoptoken.cc:
 * libctx, the kernel floor, nsync's notes, and the loader of the
 * stop_token shared object.
 *
 * The floor is what any cancellable wait must at least do in the kernel,
 * with nothing on top: a context is an eventfd (written once by cancel),
 * a deadline a timerfd armed at it; a waiting thread sleeps in
 * epoll_wait on a set of its own (made once per thread, like libctx's
 * per-thread reactor) watching those and the descriptor it reads or the
 * thread it joins.  Every descriptor is added before the thread blocks,
 * and the wait returns as soon as epoll_wait does: no system call lies
 * between the wake-up and the return.  The floor has no tree: a child
 * shares its parent's eventfd, all a cancel of the parent needs, so the
 * scenarios that cancel a child alone leave the floor out.
 *
 * nsync's note is a one-shot bit with a deadline in a tree, waited on
 * with nsync_note_wait: it cannot stop a read or a join (NULL there).
 * Its clock is CLOCK_REALTIME: deadlines are converted from
 * CLOCK_MONOTONIC and rounded up by the uncertainty of the conversion
 * (tens of ns), so that no wait can end before its monotonic time.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#ifdef HAVE_NSYNC
#include <nsync.h>
#endif

#include "benchutil.h"
#include "ctx.h"
#include "impl.h"

/* ---- libctx ---------------------------------------------------------- */

/* A thread body and its argument: the benchmarks' threads do not use
 * the context they are given. */
struct body {
	void *(*fn)(void *arg);
	void *arg;
};

static void *lc_thread_main(ctx_t *c, void *p)
{
	struct body b = *(struct body *)p;

	(void)c;
	free(p);
	return b.fn(b.arg);
}

static int lc_thread_create(void **t, void *c, void *(*fn)(void *), void *a)
{
	struct body *b = malloc(sizeof(*b));
	int e;

	if (!b)
		return ENOMEM;
	*b = (struct body){ fn, a };
	if ((e = ctx_thread_create((ctx_thread_t **)t, c, lc_thread_main, b)))
		free(b);
	return e;
}

static ssize_t lc_read(void *c, int fd, void *buf, size_t len, int64_t s)
{
	(void)s; /* no slices: a cancel interrupts the wait itself */
	return ctx_read(c, fd, buf, len);
}

static void *lc_background(void) { return ctx_background(); }
static void *lc_with_cancel(void *p) { return ctx_with_cancel(p); }
static void *lc_with_deadline(void *p, int64_t d)
{
	return ctx_with_deadline(p, d);
}
static void lc_cancel(void *c) { ctx_cancel(c); }
static void lc_release(void *c) { ctx_release(c); }
static int lc_err(void *c) { return ctx_err(c); }
static int lc_wait(void *c) { return ctx_wait(c); }
static int lc_sleep(void *c, int64_t d) { return ctx_sleep(c, d); }
static int lc_thread_join(void *c, void *t, void **r)
{
	return ctx_thread_join(c, t, r);
}

const struct bench_impl bench_libctx = {
	.name = "libctx",
	.background = lc_background,
	.with_cancel = lc_with_cancel,
	.with_deadline = lc_with_deadline,
	.cancel = lc_cancel,
	.release = lc_release,
	.err = lc_err,
	.wait = lc_wait,
	.sleep = lc_sleep,
	.read = lc_read,
	.thread_create = lc_thread_create,
	.thread_join = lc_thread_join,
};

/* ---- the floor --------------------------------------------------------- */

struct floor_ctx {
	int efd;                /* -1: the background, never done */
	int tfd;                /* armed at the deadline; -1: none */
	int64_t deadline;
	_Atomic int err, refs;
	struct floor_ctx *parent; /* a child shares the parent's descriptors */
};

struct floor_thread {
	pthread_t th;
	int done;               /* eventfd written when fn has returned */
	void *(*fn)(void *arg);
	void *arg, *result;
};

static struct floor_ctx floor_bg = { .efd = -1, .tfd = -1,
				     .deadline = INT64_MAX };
static pthread_key_t floor_key;
static pthread_once_t floor_once = PTHREAD_ONCE_INIT;
static __thread int my_epfd = -1, my_tfd = -1;

static void floor_thread_exit(void *unused)
{
	(void)unused;
	close(my_epfd);
	close(my_tfd);
}

static void floor_key_init(void)
{
	if (pthread_key_create(&floor_key, floor_thread_exit))
		bench_fail("pthread_key_create");
}

/* The calling thread's epoll set and sleep timer, made on first use and
 * closed when the thread exits. */
static int my_epoll(void)
{
	if (my_epfd >= 0)
		return my_epfd;
	pthread_once(&floor_once, floor_key_init);
	my_epfd = epoll_create1(EPOLL_CLOEXEC);
	my_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (my_epfd < 0 || my_tfd < 0 ||
	    pthread_setspecific(floor_key, &my_epfd))
		bench_fail("floor: epoll/timerfd: %s", strerror(errno));
	return my_epfd;
}

/*
 * Sleep in epoll_wait until one of fds[0..n) (-1: none) is readable;
 * returns the first ready one's index.  Each is added before blocking
 * (EEXIST: still there from an earlier wait); one that was closed left
 * the set by itself, and any other left over that fires is taken out.
 */
static int floor_block(const int *fds, int n)
{
	struct epoll_event ev[8];
	int epfd = my_epoll(), k;

	for (int i = 0; i < n; i++) {
		struct epoll_event e = { .events = EPOLLIN,
					 .data.u64 = (uint64_t)fds[i] };

		if (fds[i] >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &e) &&
		    errno != EEXIST)
			bench_fail("floor: epoll_ctl: %s", strerror(errno));
	}
	for (;;) {
		while ((k = epoll_wait(epfd, ev, 8, -1)) < 0)
			if (errno != EINTR)
				bench_fail("floor: epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			for (int j = 0; j < k; j++)
				if (fds[i] >= 0 && ev[j].data.u64 == (uint64_t)fds[i])
					return i;
		for (int j = 0; j < k; j++)
			epoll_ctl(epfd, EPOLL_CTL_DEL, (int)ev[j].data.u64, NULL);
	}
}

static struct floor_ctx *fl_root(struct floor_ctx *c)
{
	return c->parent ? c->parent : c;
}

static void *fl_background(void) { return &floor_bg; }

static void *fl_with_deadline(void *pp, int64_t deadline)
{
	struct floor_ctx *p = pp, *c;
	struct itimerspec at = { .it_value = { (time_t)(deadline / 1000000000),
					       deadline % 1000000000 } };

	if (p != &floor_bg) {
		if (deadline != INT64_MAX)
			bench_fail("floor: no deadline below a parent");
		atomic_fetch_add(&fl_root(p)->refs, 1);
		c = calloc(1, sizeof(*c));
		if (c)
			*c = (struct floor_ctx){ .parent = fl_root(p), .efd = -1 };
		return c;
	}
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	*c = (struct floor_ctx){ .tfd = -1, .deadline = deadline, .refs = 1 };
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (deadline != INT64_MAX &&
	    ((c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) < 0 ||
	     timerfd_settime(c->tfd, TFD_TIMER_ABSTIME, &at, NULL)))
		bench_fail("floor: timerfd: %s", strerror(errno));
	if (c->efd < 0)
		bench_fail("floor: eventfd: %s", strerror(errno));
	return c;
}

static void *fl_with_cancel(void *p) { return fl_with_deadline(p, INT64_MAX); }

static void fl_cancel(void *p)
{
	struct floor_ctx *c = fl_root(p);
	int zero = 0;

	if (c != &floor_bg &&
	    atomic_compare_exchange_strong(&c->err, &zero, ECANCELED) &&
	    eventfd_write(c->efd, 1))
		bench_fail("floor: eventfd_write: %s", strerror(errno));
}

static void fl_unref(struct floor_ctx *c)
{
	if (c == &floor_bg || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->efd);
	if (c->tfd >= 0)
		close(c->tfd);
	free(c);
}

static void fl_release(void *p)
{
	struct floor_ctx *c = p;

	if (c->parent) {
		fl_unref(c->parent);
		free(c);
		return;
	}
	fl_cancel(c);
	fl_unref(c);
}

static int fl_err(void *p)
{
	struct floor_ctx *c = fl_root(p);
	int e = atomic_load(&c->err);
	struct timespec ts;

	if (e || c->deadline == INT64_MAX)
		return e;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec >= c->deadline ?
		       ETIMEDOUT : 0;
}

static int fl_wait(void *p)
{
	struct floor_ctx *c = fl_root(p);

	floor_block((int[]){ c->efd, c->tfd }, 2);
	return fl_err(c);
}

static int fl_sleep(void *p, int64_t d)
{
	struct floor_ctx *c = fl_root(p);
	struct itimerspec in = { .it_value = { (time_t)(d / 1000000000),
					       d % 1000000000 } };

	/* Armed before anything else, as close to the caller's clock
	 * reading as it can be. */
	my_epoll();
	if (timerfd_settime(my_tfd, 0, &in, NULL))
		bench_fail("floor: timerfd_settime: %s", strerror(errno));
	if (floor_block((int[]){ c->efd, c->tfd, my_tfd }, 3) == 2)
		return 0;
	return fl_err(c);
}

static ssize_t fl_read(void *p, int fd, void *buf, size_t len, int64_t s)
{
	struct floor_ctx *c = fl_root(p);

	(void)s;
	if (floor_block((int[]){ c->efd, c->tfd, fd }, 3) != 2) {
		errno = fl_err(c);
		return -1;
	}
	return read(fd, buf, len);
}

static void *fl_thread_main(void *p)
{
	struct floor_thread *t = p;

	t->result = t->fn(t->arg);
	if (eventfd_write(t->done, 1))
		bench_fail("floor: eventfd_write: %s", strerror(errno));
	return NULL;
}

static int fl_thread_create(void **tp, void *c, void *(*fn)(void *), void *a)
{
	struct floor_thread *t = calloc(1, sizeof(*t));
	int e;

	(void)c;
	if (!t)
		return ENOMEM;
	*t = (struct floor_thread){ .fn = fn, .arg = a };
	if ((t->done = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		bench_fail("floor: eventfd: %s", strerror(errno));
	if ((e = pthread_create(&t->th, NULL, fl_thread_main, t))) {
		close(t->done);
		free(t);
		return e;
	}
	*tp = t;
	return 0;
}

static int fl_thread_join(void *p, void *tp, void **r)
{
	struct floor_ctx *c = fl_root(p);
	struct floor_thread *t = tp;

	if (c != &floor_bg && floor_block((int[]){ c->efd, c->tfd, t->done },
					  3) != 2)
		return fl_err(c);
	pthread_join(t->th, NULL);
	if (r)
		*r = t->result;
	close(t->done);
	free(t);
	return 0;
}

const struct bench_impl bench_floor = {
	.name = "floor",
	.background = fl_background,
	.with_cancel = fl_with_cancel,
	.with_deadline = fl_with_deadline,
	.cancel = fl_cancel,
	.release = fl_release,
	.err = fl_err,
	.wait = fl_wait,
	.sleep = fl_sleep,
	.read = fl_read,
	.thread_create = fl_thread_create,
	.thread_join = fl_thread_join,
};

/* ---- the floor with a descriptor per waiter ---------------------------- */

/*
 * floor-each: the floor of a design that keeps one wake-up descriptor
 * per waiting thread, as libctx does, rather than one per tree.  A
 * child context has an eventfd of its own, listed in its root; a cancel
 * of the root writes every child's eventfd in turn, from the cancelling
 * thread alone.  A waiter sleeps in epoll_wait (floor_block) on its
 * child's eventfd and the descriptor it reads.  Only what the fan-out
 * scenarios use: children of a root made under the background, read,
 * cancel and release.
 */
struct fe_ctx {
	int efd;                   /* a child's own; -1 for a root */
	_Atomic int err, refs;
	struct fe_ctx *root;       /* a child's root; NULL for a root */
	struct fe_ctx *next;       /* a child in its root's list */
	struct fe_ctx *children;   /* a root's, under mu */
	_Atomic int fired;         /* a child: the cancel's walk is past it */
	pthread_mutex_t mu;
};

static char fe_bg; /* the background: no context, never done */

static void *fe_background(void) { return &fe_bg; }

static void *fe_with_cancel(void *pp)
{
	struct fe_ctx *p = pp, *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->refs, 1);
	c->efd = -1;
	if (pp == &fe_bg)
		return c;
	if (p->root)
		bench_fail("floor-each: a child under a child");
	if ((c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		bench_fail("floor-each: eventfd: %s", strerror(errno));
	c->root = p;
	atomic_fetch_add(&p->refs, 1);
	pthread_mutex_lock(&p->mu);
	if (atomic_load(&p->err)) { /* done already: nothing will write it */
		atomic_store(&c->err, atomic_load(&p->err));
		atomic_store(&c->fired, 1);
		if (eventfd_write(c->efd, 1))
			bench_fail("floor-each: eventfd_write: %s",
				   strerror(errno));
	} else {
		c->next = p->children;
		p->children = c;
	}
	pthread_mutex_unlock(&p->mu);
	return c;
}

/* A root: every child's descriptor written, one after the other.  The
 * list is taken under the lock and walked outside it, so that the
 * children woken first need not wait for the walk to release; a child
 * waits (fired) only until the walk is past it. */
static void fe_cancel(void *p)
{
	struct fe_ctx *c = p, *ch, *next;
	int zero = 0;

	if (p == &fe_bg || c->root)
		bench_fail("floor-each: only a root is cancelled");
	pthread_mutex_lock(&c->mu);
	if (!atomic_compare_exchange_strong(&c->err, &zero, ECANCELED)) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	ch = c->children;
	c->children = NULL;
	pthread_mutex_unlock(&c->mu);
	for (; ch; ch = next) {
		next = ch->next;
		atomic_store(&ch->err, ECANCELED);
		if (eventfd_write(ch->efd, 1))
			bench_fail("floor-each: eventfd_write: %s",
				   strerror(errno));
		atomic_store_explicit(&ch->fired, 1, memory_order_release);
	}
}

static void fe_unref(struct fe_ctx *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void fe_release(void *p)
{
	struct fe_ctx *c = p, **pp;

	if (p == &fe_bg)
		return;
	if (!c->root) {
		fe_cancel(c);
		fe_unref(c);
		return;
	}
	pthread_mutex_lock(&c->root->mu);
	bool listed = !atomic_load(&c->root->err);
	for (pp = &c->root->children; listed && *pp != c; pp = &(*pp)->next)
		;
	if (listed)
		*pp = c->next;
	pthread_mutex_unlock(&c->root->mu);
	while (!listed && !atomic_load_explicit(&c->fired,
						memory_order_acquire))
		sched_yield();
	close(c->efd);
	fe_unref(c->root);
	fe_unref(c);
}

static int fe_err(void *p)
{
	return p == &fe_bg ? 0 : atomic_load(&((struct fe_ctx *)p)->err);
}

static ssize_t fe_read(void *p, int fd, void *buf, size_t len, int64_t s)
{
	struct fe_ctx *c = p;

	(void)s;
	if (p == &fe_bg)
		bench_fail("floor-each: no read under the background");
	/* A root has no descriptor (-1: none to watch); only its children
	 * wait in the fan-out rows. */
	if (floor_block((int[]){ c->efd, fd }, 2) != 1) {
		errno = fe_err(c);
		return -1;
	}
	return read(fd, buf, len);
}

const struct bench_impl bench_floor_each = {
	.name = "floor-each",
	.background = fe_background,
	.with_cancel = fe_with_cancel,
	.cancel = fe_cancel,
	.release = fe_release,
	.err = fe_err,
	.read = fe_read,
};

/* ---- nsync ------------------------------------------------------------- */

#ifdef HAVE_NSYNC
static char ns_bg; /* the background: no note, never done */

/* A CLOCK_MONOTONIC time on nsync's clock (CLOCK_REALTIME), rounded up
 * by the time the two readings of the realtime clock took. */
static nsync_time ns_at(int64_t mono)
{
	struct timespec r0, m, r1;
	int64_t real;

	if (mono == INT64_MAX)
		return nsync_time_no_deadline;
	clock_gettime(CLOCK_REALTIME, &r0);
	clock_gettime(CLOCK_MONOTONIC, &m);
	clock_gettime(CLOCK_REALTIME, &r1);
	real = mono - ((int64_t)m.tv_sec * 1000000000 + m.tv_nsec) +
	       (int64_t)r1.tv_sec * 1000000000 + r1.tv_nsec;
	return nsync_time_s_ns((time_t)(real / 1000000000),
			       (unsigned)(real % 1000000000));
}

static void *ns_background(void) { return &ns_bg; }

static void *ns_with_deadline(void *p, int64_t d)
{
	return nsync_note_new(p == &ns_bg ? NULL : p, ns_at(d));
}

static void *ns_with_cancel(void *p) { return ns_with_deadline(p, INT64_MAX); }
static void ns_cancel(void *n) { nsync_note_notify(n); }

static void ns_release(void *n)
{
	nsync_note_notify(n);
	nsync_note_free(n);
}

/* A note says only that it was notified: by its deadline if that has
 * passed, else by a cancel. */
static int ns_err(void *n)
{
	if (!nsync_note_is_notified(n))
		return 0;
	return nsync_time_cmp(nsync_note_expiry(n), nsync_time_now()) <= 0 ?
		       ETIMEDOUT : ECANCELED;
}

static int ns_wait(void *n)
{
	nsync_note_wait(n, nsync_time_no_deadline);
	return ns_err(n);
}

static int ns_sleep(void *n, int64_t d)
{
	struct timespec m;

	clock_gettime(CLOCK_MONOTONIC, &m);
	if (!nsync_note_wait(n, ns_at((int64_t)m.tv_sec * 1000000000 +
				      m.tv_nsec + d)))
		return 0;
	return ns_err(n);
}

const struct bench_impl bench_nsync = {
	.name = "nsync",
	.background = ns_background,
	.with_cancel = ns_with_cancel,
	.with_deadline = ns_with_deadline,
	.cancel = ns_cancel,
	.release = ns_release,
	.err = ns_err,
	.wait = ns_wait,
	.sleep = ns_sleep,
};
#endif

/* ---- the list ---------------------------------------------------------- */

const struct bench_impl *const *bench_impls_load(const char *plugin)
{
	static const struct bench_impl *list[8];
	static struct bench_impl st;
	int n = 0;

	list[n++] = &bench_libctx;
	list[n++] = &bench_condvar;
	list[n++] = &bench_condvar_1ms;
	if (plugin) {
		void *h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
		bench_impl_getter get;

		if (!h)
			bench_fail("dlopen %s: %s", plugin, dlerror());
		get = (bench_impl_getter)dlsym(h, BENCH_STOPTOKEN_SYMBOL);
		if (!get)
			bench_fail("%s: no %s", plugin, BENCH_STOPTOKEN_SYMBOL);
		st = *get();
		st.slice_ns = bench_condvar.slice_ns;
		list[n++] = &st;
	}
#ifdef HAVE_NSYNC
	list[n++] = &bench_nsync;
#endif
	list[n++] = &bench_floor;
	return list;
}
