/*
 * Concurrency: cancels racing creation, trees cancelled from many
 * threads at once, causes seen whole, a shared parent churned by many
 * threads, deadlines and done descriptors raced.  Worker threads record
 * what they saw and the test's thread checks it after joining them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tree.h"
#include "suites.h"

/* ---- concurrency ------------------------------------------------------ */

#define RACE_KIDS 64

struct race_create {
	pthread_barrier_t bar;
	ctx_t *parent;
	ctx_t *kids[RACE_KIDS];
	int cause;
};

/* Children and grandchildren, as fast as possible, while the parent is
 * being cancelled. */
static void *race_make_kids(void *arg)
{
	struct race_create *r = arg;

	pthread_barrier_wait(&r->bar);
	for (int i = 0; i < RACE_KIDS; i++) {
		ctx_t *up = i % 2 && r->kids[i - 1] ? r->kids[i - 1]
						    : r->parent;

		r->kids[i] = make_kind(i % N_DONE_KINDS, up);
	}
	return NULL;
}

static void *race_cancel(void *arg)
{
	struct race_create *r = arg;

	pthread_barrier_wait(&r->bar);
	ctx_cancel_cause(r->parent, r->cause);
	return NULL;
}

/* Whichever side wins, a child ends done with the parent's cause: made
 * before the cancel, it is reached by it; made after, it is done at
 * creation. */
START_TEST(test_race_cancel_create)
{
	for (int round = 0; round < 3000; round++) {
		struct race_create r = {
			.parent = ctx_with_cancel(ctx_background()),
			.cause = 1000 + round,
		};
		pthread_t t[2];

		pthread_barrier_init(&r.bar, NULL, 2);
		ck_assert_int_eq(pthread_create(&t[0], NULL, race_make_kids,
						&r), 0);
		ck_assert_int_eq(pthread_create(&t[1], NULL, race_cancel,
						&r), 0);
		join_threads(t, 2);
		pthread_barrier_destroy(&r.bar);

		for (int i = 0; i < RACE_KIDS; i++) {
			ck_assert_ptr_nonnull(r.kids[i]);
			assert_state_at(r.kids[i], CTX_CANCELED, r.cause,
					round * RACE_KIDS + i);
		}
		for (int i = RACE_KIDS - 1; i >= 0; i--)
			ctx_release(r.kids[i]);
		ctx_release(r.parent);
	}
}
END_TEST

#define TREE_N 101

struct tree {
	pthread_barrier_t bar;
	ctx_t *node[TREE_N];
	int parent[TREE_N];
};

struct tree_job {
	struct tree *t;
	int node;
};

static int tree_cause(int node)
{
	return 2000 + node;
}

static void *tree_cancel(void *arg)
{
	struct tree_job *j = arg;

	pthread_barrier_wait(&j->t->bar);
	ctx_cancel_cause(j->t->node[j->node], tree_cause(j->node));
	return NULL;
}

/* A random tree; some links go through a value context that only the
 * child keeps alive. */
static void tree_build(struct tree *t, uint32_t *seed)
{
	t->node[0] = ctx_with_cancel(ctx_background());
	t->parent[0] = -1;
	for (int i = 1; i < TREE_N; i++) {
		int p = (int)(tu_rand(seed) % (uint32_t)i);
		ctx_t *up = t->node[p];

		t->parent[i] = p;
		if (tu_rand(seed) % 3 == 0)
			up = ctx_with_value(up, key_a, NULL);
		t->node[i] = tu_rand(seed) % 2 ? ctx_with_cancel(up)
					   : ctx_with_timeout(up, HOUR);
		ck_assert_ptr_nonnull(t->node[i]);
		if (up != t->node[p])
			ctx_unref(up);
	}
}

/* Whether cause is the own cause of node or of one of its ancestors. */
static bool tree_cause_ok(struct tree *t, int node, int cause)
{
	for (int n = node; n >= 0; n = t->parent[n])
		if (cause == tree_cause(n))
			return true;
	return false;
}

/*
 * Every node cancelled at once, each by its own thread with its own
 * cause: no deadlock, every node done, and a node's cause is its own or
 * its parent's (the parent's cancellation reached it first).
 */
START_TEST(test_race_tree)
{
	for (uint32_t round = 0; round < 10; round++) {
		uint32_t seed = 0x9e3779b9u * (round + 1);
		struct tree t;
		struct tree_job job[TREE_N];
		pthread_t th[TREE_N];

		tree_build(&t, &seed);
		for (int i = 0; i < TREE_N; i++)
			job[i] = (struct tree_job){ .t = &t, .node = i };
		for (int i = TREE_N - 1; i > 0; i--) { /* shuffle */
			int j = (int)(tu_rand(&seed) % (uint32_t)(i + 1));
			struct tree_job x = job[i];

			job[i] = job[j];
			job[j] = x;
		}
		pthread_barrier_init(&t.bar, NULL, TREE_N);
		start_threads(th, TREE_N, tree_cancel, job, sizeof(job[0]));
		join_threads(th, TREE_N);
		pthread_barrier_destroy(&t.bar);

		for (int i = 0; i < TREE_N; i++) {
			int e = ctx_err(t.node[i]), c = ctx_cause(t.node[i]);
			int pc = i ? ctx_cause(t.node[t.parent[i]]) : -1;

			ck_assert_msg(e == CTX_CANCELED,
				      "round %u node %d: err %d", round,
				      i, e);
			ck_assert_msg(c == tree_cause(i) || c == pc,
				      "round %u node %d: cause %d, own %d, "
				      "parent's %d", round, i, c,
				      tree_cause(i), pc);
			ck_assert(tree_cause_ok(&t, i, c));
		}
		for (int i = 0; i < TREE_N; i++)
			ctx_release(t.node[i]);
	}
}
END_TEST

#define SEERS 3

struct seer {
	pthread_barrier_t *bar;
	ctx_t *c;
	int err, cause;
};

/* Spin until the context is done; record the cause seen right then. */
static void *seer_watch(void *arg)
{
	struct seer *s = arg;
	int e;

	pthread_barrier_wait(s->bar);
	for (long spins = 1; !(e = ctx_err(s->c)); spins++)
		if (spins % 4096 == 0)
			sched_yield(); /* let the canceller run on a busy box */
	s->err = e;
	s->cause = ctx_cause(s->c);
	return NULL;
}

/* A thread that sees the error sees the cause with it, never 0 or a
 * stale value: on the cancelled node and on descendants. */
START_TEST(test_race_cause_visible)
{
	for (int round = 0; round < 300; round++) {
		pthread_barrier_t bar;
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_t *g = ctx_with_timeout(c, HOUR);
		ctx_t *v = ctx_with_value(g, key_a, NULL);
		struct seer s[SEERS] = {
			{ .bar = &bar, .c = c },
			{ .bar = &bar, .c = g },
			{ .bar = &bar, .c = v },
		};
		pthread_t t[SEERS];

		pthread_barrier_init(&bar, NULL, SEERS + 1);
		start_threads(t, SEERS, seer_watch, s, sizeof(s[0]));
		pthread_barrier_wait(&bar);
		ctx_cancel_cause(c, 3000 + round);
		join_threads(t, SEERS);
		pthread_barrier_destroy(&bar);

		for (int i = 0; i < SEERS; i++) {
			ck_assert_int_eq(s[i].err, CTX_CANCELED);
			ck_assert_int_eq(s[i].cause, 3000 + round);
		}
		tu_release(v, g, c);
	}
}
END_TEST

#define CHURNERS 8
#define CHURN_RING 16
#define CHURN_AFTER 2000
#define CHURN_CAUSE 4000

#define CHURN_BEFORE 100

struct churn {
	pthread_barrier_t bar;
	ctx_t *parent;
	atomic_int ready;   /* threads that made CHURN_BEFORE children */
	atomic_bool cancelled;
};

struct churner {
	struct churn *s;
	int id;
	long made, after;   /* children made; made after the cancel */
	long bad;           /* of those, not done as they should be */
	int bad_err, bad_cause;
};

static void churn_check(struct churner *w, ctx_t *c)
{
	int e = ctx_err(c), ca = ctx_cause(c);

	if (e != CTX_CANCELED || ca != CHURN_CAUSE) {
		w->bad++;
		w->bad_err = e;
		w->bad_cause = ca;
	}
}

/*
 * Make children of the shared parent, cancelling some, keeping a ring of
 * the latest alive so the parent's cancel meets live children, others
 * being detached and freed.  A child made after the cancel returned must
 * be done at creation; every ring member is done at the end.
 */
static void *churn_run(void *arg)
{
	struct churner *w = arg;
	ctx_t *ring[CHURN_RING] = { 0 };

	pthread_barrier_wait(&w->s->bar);
	for (long i = 0; w->after < CHURN_AFTER; i++) {
		bool was = atomic_load(&w->s->cancelled);
		ctx_t *c = make_kind((int)((i + w->id) % N_DONE_KINDS),
				     w->s->parent);

		if (!c) {
			w->bad++;
			continue;
		}
		if (++w->made == CHURN_BEFORE)
			atomic_fetch_add(&w->s->ready, 1);
		if (was) {
			w->after++;
			churn_check(w, c);
		}
		if (i % 3 == 0)
			ctx_cancel(c);
		ctx_release(ring[i % CHURN_RING]);
		ring[i % CHURN_RING] = c;
	}
	for (int i = 0; i < CHURN_RING; i++) {
		/* Ring members we cancelled ourselves have their own cause. */
		if (ring[i] && ctx_cause(ring[i]) != CTX_CANCELED)
			churn_check(w, ring[i]);
		ctx_release(ring[i]);
	}
	return NULL;
}

START_TEST(test_race_shared_parent)
{
	int fds = tu_count_fds();
	struct churn s = { .parent = ctx_with_cancel(ctx_background()) };
	struct churner w[CHURNERS];
	pthread_t t[CHURNERS];

	atomic_init(&s.ready, 0);
	atomic_init(&s.cancelled, false);
	for (int i = 0; i < CHURNERS; i++)
		w[i] = (struct churner){ .s = &s, .id = i };
	pthread_barrier_init(&s.bar, NULL, CHURNERS + 1);
	start_threads(t, CHURNERS, churn_run, w, sizeof(w[0]));
	pthread_barrier_wait(&s.bar);
	/* Cancel only once every thread is busy (valgrind runs one thread
	 * at a time, so a fixed sleep may not be enough). */
	for (int64_t t0 = ctx_now(); atomic_load(&s.ready) < CHURNERS &&
				     ctx_now() - t0 < 20 * CTX_SEC;)
		tu_sleep_ns(CTX_MSEC);
	ctx_cancel_cause(s.parent, CHURN_CAUSE);
	atomic_store(&s.cancelled, true);
	join_threads(t, CHURNERS);
	pthread_barrier_destroy(&s.bar);

	assert_state(s.parent, CTX_CANCELED, CHURN_CAUSE);
	for (int i = 0; i < CHURNERS; i++) {
		ck_assert_msg(w[i].bad == 0,
			      "thread %d: %ld bad children (last: err %d "
			      "cause %d)", i, w[i].bad, w[i].bad_err,
			      w[i].bad_cause);
		ck_assert_int_ge(w[i].after, CHURN_AFTER);
		ck_assert_int_ge(w[i].made - w[i].after, CHURN_BEFORE);
	}
	ctx_release(s.parent);
	ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

#define DL_SEERS 8

/* Many threads polling ctx_err across a deadline: one of them performs
 * the expiry, and all agree on the error and the cause. */
START_TEST(test_race_deadline)
{
	for (int round = 0; round < 30; round++) {
		pthread_barrier_t bar;
		ctx_t *c = ctx_with_timeout_cause(ctx_background(),
						  5 * CTX_MSEC, 91);
		ctx_t *g = ctx_with_cancel(c);
		ctx_t *v = ctx_with_value(g, key_a, NULL);
		ctx_t *watched[] = { c, g, v };
		struct seer s[DL_SEERS];
		pthread_t t[DL_SEERS];

		for (int i = 0; i < DL_SEERS; i++)
			s[i] = (struct seer){ .bar = &bar,
					      .c = watched[i % 3] };
		pthread_barrier_init(&bar, NULL, DL_SEERS);
		start_threads(t, DL_SEERS, seer_watch, s, sizeof(s[0]));
		join_threads(t, DL_SEERS);
		pthread_barrier_destroy(&bar);

		for (int i = 0; i < DL_SEERS; i++) {
			ck_assert_int_eq(s[i].err, CTX_DEADLINE_EXCEEDED);
			ck_assert_int_eq(s[i].cause, 91);
		}
		assert_state(c, CTX_DEADLINE_EXCEEDED, 91);
		tu_release(v, g, c);
	}
}
END_TEST

#define FD_CALLERS 8

struct fd_caller {
	pthread_barrier_t *bar;
	ctx_t *c;
	int fd, err;
};

static void *fd_call(void *arg)
{
	struct fd_caller *f = arg;

	pthread_barrier_wait(f->bar);
	errno = 0;
	f->fd = ctx_done_fd(f->c);
	f->err = errno;
	return NULL;
}

/* Racing first calls make one descriptor, which every caller gets (a
 * second one would also leak: the count checks that). */
START_TEST(test_race_done_fd)
{
	warm_done_fd();
	int fds = tu_count_fds();

	for (int round = 0; round < 100; round++) {
		pthread_barrier_t bar;
		ctx_t *c = round % 2 ? ctx_with_cancel(ctx_background())
				     : ctx_with_timeout(ctx_background(), HOUR);
		ctx_t *v = ctx_with_value(c, key_a, NULL);
		struct fd_caller f[FD_CALLERS];
		pthread_t t[FD_CALLERS];

		for (int i = 0; i < FD_CALLERS; i++)
			f[i] = (struct fd_caller){ .bar = &bar,
						   .c = i % 2 ? v : c };
		pthread_barrier_init(&bar, NULL, FD_CALLERS);
		start_threads(t, FD_CALLERS, fd_call, f, sizeof(f[0]));
		join_threads(t, FD_CALLERS);
		pthread_barrier_destroy(&bar);

		ck_assert_msg(f[0].fd >= 0, "errno %d", f[0].err);
		for (int i = 1; i < FD_CALLERS; i++)
			ck_assert_int_eq(f[i].fd, f[0].fd);
		ck_assert_int_eq(tu_count_fds(), fds + 1);
		ck_assert_int_eq(ctx_done_fd(c), f[0].fd);
		ctx_release(v);
		ctx_release(c);
		ck_assert_int_eq(tu_settle_fds(fds, 2 * CTX_SEC), fds);
	}
}
END_TEST

void add_context_races(Suite *s)
{
	TCase *tc;

	tc = tu_tcase(s, "concurrency", 60);
	tu_add_tests(tc, test_race_cancel_create, test_race_tree,
		     test_race_cause_visible, test_race_shared_parent,
		     test_race_deadline, test_race_done_fd);
}
