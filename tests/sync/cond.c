/*
 * Condition variables: bad input, signal and broadcast, waits that
 * their own deadline ends with the mutex held again (the context's end:
 * the contract test's), no syscall-free
 * promise broken (a signal with no waiter is a load), and a
 * multi-producer multi-consumer queue moving 100,000 items with signal
 * only while consumers' contexts are cancelled at random: every item
 * arrives exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

START_TEST(test_cond_bad_input)
{
	ctx_cond_t c = CTX_COND_INIT;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

	ck_assert_int_eq(ctx_cond_wait(NULL, &c, &m), EINVAL);
	ck_assert_int_eq(ctx_cond_wait(ctx_background(), NULL, &m), EINVAL);
	ck_assert_int_eq(ctx_cond_wait(ctx_background(), &c, NULL), EINVAL);
	ck_assert_int_eq(ctx_cond_wait_until(NULL, &c, &m, 0), EINVAL);
	ctx_cond_signal(NULL);
	ctx_cond_broadcast(NULL);
	ctx_cond_signal(&c); /* no waiter: nothing happens */
	ctx_cond_broadcast(&c);
}
END_TEST

/* A deadline already past: at once, mutex still held.  (A done context:
 * the contract test's.) */
START_TEST(test_cond_refuse)
{
	static ctx_cond_t c; /* zero-initialised */
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&m);
	ck_assert_int_eq(ctx_cond_wait_until(ctx_background(), &c, &m,
					     ctx_now() - 1),
			 CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
	pthread_mutex_unlock(&m);
}
END_TEST

START_TEST(test_cond_deadline)
{
	ctx_cond_t c = CTX_COND_INIT;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	int64_t t0 = ctx_now();

	pthread_mutex_lock(&m);
	int e = ctx_cond_wait_until(ctx_background(), &c, &m,
				    t0 + 50 * CTX_MSEC);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(pthread_mutex_trylock(&m), EBUSY);
	pthread_mutex_unlock(&m);
	tu_assert_ms(tu_ms_since(t0), 45, 2000);
	ctx_cond_signal(&c); /* the waiter left the queue */
}
END_TEST

/* ---- signal, broadcast ----------------------------------------------- */

struct waiters {
	ctx_cond_t c;
	pthread_mutex_t m;
	int go;        /* the predicate */
	int woke;
	int queued;
};

static void *waiter_main(void *p)
{
	struct waiters *w = p;

	pthread_mutex_lock(&w->m);
	w->queued++;
	while (!w->go)
		ck_assert_int_eq(ctx_cond_wait(ctx_background(), &w->c, &w->m),
				 0);
	w->go--; /* each signal lets one through */
	w->woke++;
	pthread_mutex_unlock(&w->m);
	return NULL;
}

static void start_waiters(struct waiters *w, pthread_t *t, int n)
{
	*w = (struct waiters){ .c = CTX_COND_INIT,
			       .m = PTHREAD_MUTEX_INITIALIZER };
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, waiter_main, w), 0);
	for (;;) {
		pthread_mutex_lock(&w->m);
		int q = w->queued;
		pthread_mutex_unlock(&w->m);
		if (q == n)
			break;
		tu_sleep_ns(CTX_MSEC);
	}
}

START_TEST(test_cond_signal_one)
{
	struct waiters w;
	pthread_t t[4];

	start_waiters(&w, t, 4);
	for (int i = 1; i <= 4; i++) {
		pthread_mutex_lock(&w.m);
		w.go++;
		pthread_mutex_unlock(&w.m);
		ctx_cond_signal(&w.c);
		for (int spin = 0; spin < 2000; spin++) {
			pthread_mutex_lock(&w.m);
			int woke = w.woke;
			pthread_mutex_unlock(&w.m);
			if (woke == i)
				break;
			tu_sleep_ns(CTX_MSEC);
		}
		pthread_mutex_lock(&w.m);
		ck_assert_int_eq(w.woke, i);
		pthread_mutex_unlock(&w.m);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}
END_TEST

START_TEST(test_cond_broadcast_all)
{
	struct waiters w;
	pthread_t t[8];

	start_waiters(&w, t, 8);
	pthread_mutex_lock(&w.m);
	w.go = 8;
	pthread_mutex_unlock(&w.m);
	ctx_cond_broadcast(&w.c);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(w.woke, 8);
}
END_TEST

/* ---- the MPMC queue ---------------------------------------------------- */

#define QCAP 64
#define NPROD 4
#define NCONS 4

struct queue {
	pthread_mutex_t m;
	ctx_cond_t not_empty, not_full;
	uint32_t buf[QCAP];
	size_t head, len;
	int items;             /* to move in all */
	int consumed;          /* under m */
	atomic_int cancels;    /* consumer waits ended by a cancel */
	unsigned char *seen;   /* per item: times received */
};

struct prod {
	struct queue *q;
	int first, count;
};

static void *producer(void *p)
{
	struct prod *pr = p;
	struct queue *q = pr->q;

	for (int i = pr->first; i < pr->first + pr->count; i++) {
		pthread_mutex_lock(&q->m);
		while (q->len == QCAP)
			ck_assert_int_eq(ctx_cond_wait(ctx_background(),
						       &q->not_full, &q->m), 0);
		q->buf[(q->head + q->len++) % QCAP] = (uint32_t)i;
		pthread_mutex_unlock(&q->m);
		ctx_cond_signal(&q->not_empty);
	}
	return NULL;
}

/* A consumer waits under short-lived contexts that another thread
 * cancels at random, and starts again after each cancel: a signal it was
 * given as its context ended must not be lost for the others. */
struct cons {
	struct queue *q;
	uint32_t seed;
	pthread_mutex_t cm;
	ctx_t *cur;            /* the context of the current wait */
	atomic_bool stop;
};

static void *consumer(void *p)
{
	struct cons *cs = p;
	struct queue *q = cs->q;

	for (;;) {
		ctx_t *c = ctx_with_cancel(ctx_background());
		ck_assert_ptr_nonnull(c);
		pthread_mutex_lock(&cs->cm);
		cs->cur = c;
		pthread_mutex_unlock(&cs->cm);
		pthread_mutex_lock(&q->m);
		int e = 0;
		while (!e && q->len == 0 && q->consumed < q->items)
			e = ctx_cond_wait(c, &q->not_empty, &q->m);
		if (e == CTX_CANCELED)
			atomic_fetch_add(&q->cancels, 1);
		else
			ck_assert_int_eq(e, 0);
		bool got = q->len > 0;
		uint32_t item = 0;
		int consumed = q->consumed;
		if (got) {
			item = q->buf[q->head];
			q->head = (q->head + 1) % QCAP;
			q->len--;
			consumed = ++q->consumed;
		}
		pthread_mutex_unlock(&q->m);
		pthread_mutex_lock(&cs->cm);
		cs->cur = NULL;
		pthread_mutex_unlock(&cs->cm);
		ctx_release(c);
		if (got) {
			ctx_cond_signal(&q->not_full);
			q->seen[item]++;
			if (consumed == q->items) /* wake the others to leave */
				ctx_cond_broadcast(&q->not_empty);
		}
		if (consumed >= q->items)
			return NULL;
	}
}

static void *chaos(void *p)
{
	struct cons *cs = p;

	while (!atomic_load(&cs[0].stop)) {
		struct cons *victim = &cs[tu_rand(&cs[0].seed) % NCONS];
		pthread_mutex_lock(&victim->cm);
		if (victim->cur)
			ctx_cancel(victim->cur);
		pthread_mutex_unlock(&victim->cm);
		tu_sleep_ns((tu_rand(&cs[0].seed) % 200) * CTX_USEC);
	}
	return NULL;
}

START_TEST(test_cond_mpmc)
{
	static struct queue q;
	static struct cons cs[NCONS];
	struct prod pr[NPROD];
	pthread_t pt[NPROD], ct[NCONS], kt;
	int items = tu_quick() ? 20000 : 100000;

	q = (struct queue){ .m = PTHREAD_MUTEX_INITIALIZER, .items = items };
	q.seen = calloc((size_t)items, 1);
	ck_assert_ptr_nonnull(q.seen);
	for (int i = 0; i < NCONS; i++) {
		cs[i] = (struct cons){ .q = &q, .seed = 0x9e3779b9u + (uint32_t)i,
				       .cm = PTHREAD_MUTEX_INITIALIZER };
		ck_assert_int_eq(pthread_create(&ct[i], NULL, consumer, &cs[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&kt, NULL, chaos, cs), 0);
	for (int i = 0; i < NPROD; i++) {
		pr[i] = (struct prod){ .q = &q, .first = i * (items / NPROD),
				       .count = items / NPROD };
		ck_assert_int_eq(pthread_create(&pt[i], NULL, producer, &pr[i]), 0);
	}
	for (int i = 0; i < NPROD; i++)
		pthread_join(pt[i], NULL);
	for (int i = 0; i < NCONS; i++)
		pthread_join(ct[i], NULL);
	atomic_store(&cs[0].stop, true);
	pthread_join(kt, NULL);
	ck_assert_int_eq(q.consumed, items);
	for (int i = 0; i < items; i++)
		ck_assert_msg(q.seen[i] == 1, "item %d received %d times", i,
			      q.seen[i]);
	ck_assert_int_gt(atomic_load(&q.cancels), 0);
	free(q.seen);
}
END_TEST

Suite *suite_cond(void)
{
	Suite *s = suite_create("cond");
	TCase *tc = tu_tcase(s, "api", 30);

	tu_add_tests(tc, test_cond_bad_input, test_cond_refuse,
		     test_cond_deadline, test_cond_signal_one,
		     test_cond_broadcast_all);
	tc = tu_tcase(s, "mpmc", 240);
	tcase_add_test(tc, test_cond_mpmc);
	return s;
}
