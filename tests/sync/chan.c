/*
 * Channels: fixed-size elements, rendezvous and buffered, FIFO order,
 * many senders and receivers, close, and cancels racing sends and
 * receives.  (A send or receive that a done context refuses, or that a
 * cancel or a deadline ends, moves nothing: the contract test's.)
 *
 * Elements are 24-byte structs whose fields check each other, so a torn
 * or misplaced copy shows.  Workers record what they saw and the test's
 * own thread asserts after joining them.  Timing bounds are loose: the
 * lower ones prove a call waited, the upper ones only that it did not
 * hang.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define LONG_WAIT (10 * CTX_SEC)
#define SLOW_MS 2000.0

/* ---- elements -------------------------------------------------------- */

struct elem {
	uint64_t seq;
	uint32_t producer;
	uint32_t check;    /* a hash of seq and producer */
	uint64_t tail;     /* ~seq: the last bytes of the copy, checked too */
};

_Static_assert(sizeof(struct elem) == 24, "elements are 24 bytes");

static uint32_t elem_hash(uint64_t seq, uint32_t producer)
{
	return (uint32_t)(seq * 2654435761u) ^ (producer * 40503u) ^ 0x5bd1e995;
}

static struct elem mk(uint32_t producer, uint64_t seq)
{
	return (struct elem){ .seq = seq, .producer = producer,
			      .check = elem_hash(seq, producer),
			      .tail = ~seq };
}

static bool elem_ok(const struct elem *e)
{
	return e->check == elem_hash(e->seq, e->producer) &&
	       e->tail == ~e->seq;
}

/* A value no sender uses: shows whether a receive wrote its buffer. */
static struct elem sentinel(void)
{
	struct elem e;

	memset(&e, 0xa5, sizeof(e));
	return e;
}

#define assert_elem(e, p, s)                                                \
	do {                                                                \
		const struct elem *e__ = &(e);                              \
		ck_assert_msg(elem_ok(e__), "torn element");                \
		ck_assert_uint_eq(e__->producer, (p));                      \
		ck_assert_uint_eq(e__->seq, (s));                           \
	} while (0)

/* ---- helpers --------------------------------------------------------- */


static ctx_chan_t *chan(size_t cap)
{
	ctx_chan_t *ch = ctx_chan_new(sizeof(struct elem), cap);

	ck_assert_ptr_nonnull(ch);
	return ch;
}

/* A receive (or send) with a short timeout: the channel has nothing to
 * give (or no room) if it returns CTX_DEADLINE_EXCEEDED. */
static int recv_within(ctx_chan_t *ch, struct elem *e, int64_t timeout)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), timeout);
	int r = ctx_chan_recv(c, ch, e);

	ctx_release(c);
	return r;
}

static int send_within(ctx_chan_t *ch, const struct elem *e,
		       int64_t timeout)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), timeout);
	int r = ctx_chan_send(c, ch, e);

	ctx_release(c);
	return r;
}

/* One send or receive on its own thread, with its result and times. */
struct op {
	pthread_t tid;
	ctx_chan_t *ch;
	ctx_t *ctx;
	struct elem e;
	atomic_int started, finished;
	int err;
	int64_t start, end;
};

static void *send_main(void *p)
{
	struct op *o = p;

	o->start = ctx_now();
	atomic_store(&o->started, 1);
	o->err = ctx_chan_send(o->ctx, o->ch, &o->e);
	o->end = ctx_now();
	atomic_store(&o->finished, 1);
	return NULL;
}

static void *recv_main(void *p)
{
	struct op *o = p;

	o->start = ctx_now();
	o->err = ctx_chan_recv(o->ctx, o->ch, &o->e);
	o->end = ctx_now();
	atomic_store(&o->finished, 1);
	return NULL;
}

static void op_start(struct op *o, void *(*fn)(void *), ctx_chan_t *ch,
		     ctx_t *ctx, struct elem e)
{
	*o = (struct op){ .ch = ch, .ctx = ctx, .e = e, .err = -1 };
	ck_assert_int_eq(pthread_create(&o->tid, NULL, fn, o), 0);
}

/* Until o's thread is about to make its call: on a loaded machine a new
 * thread may first run long after it was made. */
static void op_await_start(struct op *o)
{
	while (!atomic_load(&o->started))
		tu_sleep_ns(CTX_MSEC);
}

static void op_join(struct op *o)
{
	ck_assert_int_eq(pthread_join(o->tid, NULL), 0);
}

/* ---- construction and bad input -------------------------------------- */

START_TEST(test_chan_new)
{
	ctx_chan_t *ch;

	errno = 0;
	ck_assert_ptr_null(ctx_chan_new(0, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_chan_new(0, 8));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0; /* elem_size * capacity overflows */
	ck_assert_ptr_null(ctx_chan_new(SIZE_MAX / 2, 3));
	ck_assert_int_eq(errno, EINVAL);

	ch = ctx_chan_new(sizeof(struct elem), 0);
	ck_assert_ptr_nonnull(ch);
	ctx_chan_free(ch);
	ch = ctx_chan_new(1, 1000);
	ck_assert_ptr_nonnull(ch);
	ctx_chan_free(ch);
	ctx_chan_free(NULL);
	ctx_chan_close(NULL);
}
END_TEST

START_TEST(test_chan_null)
{
	ctx_chan_t *ch = chan(1);
	struct elem e = mk(0, 1);

	ck_assert_int_eq(ctx_chan_send(NULL, ch, &e), EINVAL);
	ck_assert_int_eq(ctx_chan_send(ctx_background(), NULL, &e), EINVAL);
	ck_assert_int_eq(ctx_chan_send(ctx_background(), ch, NULL), EINVAL);
	ck_assert_int_eq(ctx_chan_recv(NULL, ch, &e), EINVAL);
	ck_assert_int_eq(ctx_chan_recv(ctx_background(), NULL, &e), EINVAL);
	ck_assert_int_eq(ctx_chan_recv(ctx_background(), ch, NULL), EINVAL);
	/* None of it moved anything. */
	ck_assert_int_eq(recv_within(ch, &e, 10 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	ctx_chan_free(ch);
}
END_TEST

/* ---- buffering and order --------------------------------------------- */

#define CAP 8

/* A buffered channel takes `capacity` elements without a receiver, then
 * blocks; elements come out whole and in order, across the ring's end. */
START_TEST(test_chan_buffered)
{
	ctx_chan_t *ch = chan(CAP);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct elem e = mk(0, 0), x;
	int64_t t0 = ctx_now();
	uint64_t next_in = 0, next_out = 0;

	for (int i = 0; i < CAP; i++) {
		e = mk(7, next_in++);
		ck_assert_int_eq(ctx_chan_send(c, ch, &e), 0);
	}
	ck_assert_double_lt(tu_ms_since(t0), SLOW_MS);
	e = mk(7, 999);
	t0 = ctx_now();
	ck_assert_int_eq(send_within(ch, &e, 20 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	ck_assert_double_ge(tu_ms_since(t0), 15.0);

	/* Take three, add three: the ring wraps. */
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
		assert_elem(x, 7, next_out++);
	}
	for (int i = 0; i < 3; i++) {
		e = mk(7, next_in++);
		ck_assert_int_eq(ctx_chan_send(c, ch, &e), 0);
	}
	for (int i = 0; i < CAP; i++) {
		ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
		assert_elem(x, 7, next_out++);
	}
	ck_assert_uint_eq(next_out, next_in);
	t0 = ctx_now();
	ck_assert_int_eq(recv_within(ch, &x, 20 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	ck_assert_double_ge(tu_ms_since(t0), 15.0);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/* Capacity 0 buffers nothing: a send with no receiver waits and fails. */
START_TEST(test_chan_unbuffered_holds_nothing)
{
	ctx_chan_t *ch = chan(0);
	struct elem e = mk(0, 1), x = sentinel(), s = sentinel();
	int64_t t0 = ctx_now();

	ck_assert_int_eq(send_within(ch, &e, 20 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	ck_assert_double_ge(tu_ms_since(t0), 15.0);
	ck_assert_int_eq(recv_within(ch, &x, 20 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	ck_assert_mem_eq(&x, &s, sizeof(x));
	ctx_chan_free(ch);
}
END_TEST

/* A rendezvous: the send returns only once a receiver took the element;
 * here the receiver comes 50 ms after the sender began its send. */
START_TEST(test_chan_rendezvous)
{
	ctx_chan_t *ch = chan(0);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct op s;
	struct elem x;
	int64_t t_recv;

	op_start(&s, send_main, ch, c, mk(3, 42));
	op_await_start(&s);
	tu_sleep_ns(50 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&s.finished), 0);
	t_recv = ctx_now();
	ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
	op_join(&s);
	assert_elem(x, 3, 42);
	ck_assert_int_eq(s.err, 0);
	ck_assert_int_ge(s.end, t_recv);
	ck_assert_double_ge((double)(s.end - s.start) / CTX_MSEC, 45.0);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/* The other way round: a parked receiver gets the element directly. */
START_TEST(test_chan_rendezvous_receiver_first)
{
	ctx_chan_t *ch = chan(0);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct op r;
	struct elem e = mk(4, 9);
	int64_t t_send;

	op_start(&r, recv_main, ch, c, sentinel());
	tu_sleep_ns(30 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&r.finished), 0);
	t_send = ctx_now();
	ck_assert_int_eq(ctx_chan_send(c, ch, &e), 0);
	op_join(&r);
	ck_assert_int_eq(r.err, 0);
	assert_elem(r.e, 4, 9);
	ck_assert_int_ge(r.end, t_send);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/*
 * A sender parked on a full buffer gets in line: the receive that makes
 * room takes its element into the buffer and lets it return, so a later
 * send finds the buffer full again and cannot overtake it.
 */
START_TEST(test_chan_parked_sender_in_line)
{
	ctx_chan_t *ch = chan(2);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct elem x;
	struct op s;
	int64_t end;

	for (uint64_t i = 0; i < 2; i++) {
		x = mk(0, i);
		ck_assert_int_eq(ctx_chan_send(c, ch, &x), 0);
	}
	op_start(&s, send_main, ch, c, mk(0, 2));
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&s.finished), 0);
	ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
	assert_elem(x, 0, 0);
	end = ctx_now() + 2 * CTX_SEC;
	while (!atomic_load(&s.finished) && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(atomic_load(&s.finished), 1);
	op_join(&s);
	ck_assert_int_eq(s.err, 0);
	x = mk(0, 3);
	ck_assert_int_eq(send_within(ch, &x, 10 * CTX_MSEC),
			 CTX_DEADLINE_EXCEEDED);
	for (uint64_t i = 1; i < 3; i++) {
		ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
		assert_elem(x, 0, i);
	}
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/* One producer, one consumer: values arrive in order, then EPIPE. */
static const size_t fifo_caps[] = { 0, 1, 4, 64 };

struct producer {
	pthread_t tid;
	ctx_chan_t *ch;
	uint32_t id;
	uint64_t n;
	int err;         /* first failed send, 0 if none */
	bool close;      /* close the channel when done */
};

static void *producer_main(void *p)
{
	struct producer *pr = p;

	for (uint64_t i = 0; i < pr->n; i++) {
		struct elem e = mk(pr->id, i);

		if ((pr->err = ctx_chan_send(ctx_background(), pr->ch, &e)))
			break;
	}
	if (pr->close)
		ctx_chan_close(pr->ch);
	return NULL;
}

START_TEST(test_chan_fifo)
{
	uint64_t n = tu_quick() ? 2000 : 20000;
	ctx_chan_t *ch = chan(fifo_caps[_i]);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct producer p = { .ch = ch, .id = 1, .n = n, .close = true };
	struct elem x;

	ck_assert_int_eq(pthread_create(&p.tid, NULL, producer_main, &p), 0);
	for (uint64_t i = 0; i < n; i++) {
		int r = ctx_chan_recv(c, ch, &x);

		ck_assert_msg(r == 0, "#%llu: recv %d", (unsigned long long)i,
			      r);
		ck_assert_msg(elem_ok(&x) && x.producer == 1 && x.seq == i,
			      "#%llu: got seq %llu", (unsigned long long)i,
			      (unsigned long long)x.seq);
	}
	ck_assert_int_eq(ctx_chan_recv(c, ch, &x), EPIPE);
	ck_assert_int_eq(pthread_join(p.tid, NULL), 0);
	ck_assert_int_eq(p.err, 0);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/*
 * Many senders and receivers: every element is received exactly once
 * (a bitmap of what arrived) and whole, and a receiver sees each
 * producer's elements in that producer's order.
 */
#define SENDERS 4
#define RECEIVERS 4

static const size_t mpmc_caps[] = { 0, 16 };

struct mpmc {
	ctx_chan_t *ch;
	uint64_t per_sender;
	_Atomic uint64_t *seen;   /* one bit per element */
	atomic_long received, dups, torn, disorder;
};

struct consumer {
	pthread_t tid;
	struct mpmc *m;
	int err;
};

static void *consumer_main(void *p)
{
	struct consumer *co = p;
	struct mpmc *m = co->m;
	int64_t last[SENDERS];
	struct elem x;

	for (int i = 0; i < SENDERS; i++)
		last[i] = -1;
	while (!(co->err = ctx_chan_recv(ctx_background(), m->ch, &x))) {
		uint64_t bit;

		if (!elem_ok(&x) || x.producer >= SENDERS ||
		    x.seq >= m->per_sender) {
			atomic_fetch_add(&m->torn, 1);
			continue;
		}
		if ((int64_t)x.seq <= last[x.producer])
			atomic_fetch_add(&m->disorder, 1);
		last[x.producer] = (int64_t)x.seq;
		bit = x.producer * m->per_sender + x.seq;
		if (atomic_fetch_or(&m->seen[bit / 64], 1ull << (bit % 64)) &
		    (1ull << (bit % 64)))
			atomic_fetch_add(&m->dups, 1);
		atomic_fetch_add(&m->received, 1);
	}
	return NULL;
}

START_TEST(test_chan_many)
{
	uint64_t total = tu_quick() ? 10000 : 100000;
	struct mpmc m = { .ch = chan(mpmc_caps[_i]),
			  .per_sender = total / SENDERS };
	struct producer p[SENDERS];
	struct consumer co[RECEIVERS];
	size_t words = (total + 63) / 64;

	m.seen = calloc(words, sizeof(*m.seen));
	ck_assert_ptr_nonnull(m.seen);
	for (int i = 0; i < RECEIVERS; i++) {
		co[i] = (struct consumer){ .m = &m, .err = -1 };
		ck_assert_int_eq(pthread_create(&co[i].tid, NULL,
						consumer_main, &co[i]), 0);
	}
	for (uint32_t i = 0; i < SENDERS; i++) {
		p[i] = (struct producer){ .ch = m.ch, .id = i,
					  .n = m.per_sender };
		ck_assert_int_eq(pthread_create(&p[i].tid, NULL,
						producer_main, &p[i]), 0);
	}
	for (int i = 0; i < SENDERS; i++) {
		ck_assert_int_eq(pthread_join(p[i].tid, NULL), 0);
		ck_assert_int_eq(p[i].err, 0);
	}
	ctx_chan_close(m.ch);
	for (int i = 0; i < RECEIVERS; i++) {
		ck_assert_int_eq(pthread_join(co[i].tid, NULL), 0);
		ck_assert_int_eq(co[i].err, EPIPE);
	}
	ck_assert_int_eq(atomic_load(&m.torn), 0);
	ck_assert_int_eq(atomic_load(&m.dups), 0);
	ck_assert_int_eq(atomic_load(&m.disorder), 0);
	ck_assert_int_eq(atomic_load(&m.received), (long)total);
	for (uint64_t b = 0; b < total; b++)
		ck_assert_msg(m.seen[b / 64] & (1ull << (b % 64)),
			      "element %llu never arrived",
			      (unsigned long long)b);
	free(m.seen);
	ctx_chan_free(m.ch);
}
END_TEST

/* ---- close ----------------------------------------------------------- */

#define PARKED 3

static const size_t close_caps[] = { 0, 2 };

/* Receivers parked on an empty channel all get EPIPE at close. */
START_TEST(test_chan_close_wakes_receivers)
{
	ctx_chan_t *ch = chan(close_caps[_i]);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct op r[PARKED];
	struct elem e = mk(0, 0), s = sentinel();
	int64_t t_close;

	for (int i = 0; i < PARKED; i++)
		op_start(&r[i], recv_main, ch, c, sentinel());
	tu_sleep_ns(30 * CTX_MSEC);
	for (int i = 0; i < PARKED; i++)
		ck_assert_int_eq(atomic_load(&r[i].finished), 0);
	t_close = ctx_now();
	ctx_chan_close(ch);
	for (int i = 0; i < PARKED; i++) {
		op_join(&r[i]);
		ck_assert_int_eq(r[i].err, EPIPE);
		ck_assert_mem_eq(&r[i].e, &s, sizeof(s));
		ck_assert_int_ge(r[i].end, t_close);
	}
	ck_assert_double_lt(tu_ms_since(t_close), SLOW_MS);
	ck_assert_int_eq(ctx_chan_send(c, ch, &e), EPIPE);
	ck_assert_int_eq(ctx_chan_recv(c, ch, &e), EPIPE);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/* Senders parked on a full channel all get EPIPE at close, and their
 * elements stay theirs: receivers drain what was buffered, then EPIPE. */
START_TEST(test_chan_close_wakes_senders)
{
	size_t cap = close_caps[_i];
	ctx_chan_t *ch = chan(cap);
	ctx_t *c = ctx_with_timeout(ctx_background(), LONG_WAIT);
	struct op s[PARKED];
	struct elem x;
	int64_t t_close;

	for (uint64_t i = 0; i < cap; i++) {
		x = mk(0, i);
		ck_assert_int_eq(ctx_chan_send(c, ch, &x), 0);
	}
	for (uint32_t i = 0; i < PARKED; i++)
		op_start(&s[i], send_main, ch, c, mk(1, i));
	tu_sleep_ns(30 * CTX_MSEC);
	for (int i = 0; i < PARKED; i++)
		ck_assert_int_eq(atomic_load(&s[i].finished), 0);
	t_close = ctx_now();
	ctx_chan_close(ch);
	for (int i = 0; i < PARKED; i++) {
		op_join(&s[i]);
		ck_assert_int_eq(s[i].err, EPIPE);
		ck_assert_int_ge(s[i].end, t_close);
	}
	ck_assert_double_lt(tu_ms_since(t_close), SLOW_MS);
	for (uint64_t i = 0; i < cap; i++) {
		ck_assert_int_eq(ctx_chan_recv(c, ch, &x), 0);
		assert_elem(x, 0, i);
	}
	ck_assert_int_eq(ctx_chan_recv(c, ch, &x), EPIPE);
	ck_assert_int_eq(ctx_chan_recv(c, ch, &x), EPIPE);
	ck_assert_int_eq(ctx_chan_send(c, ch, &x), EPIPE);
	ctx_release(c);
	ctx_chan_free(ch);
}
END_TEST

/* After close: sends fail at once; receives drain, then fail. */
START_TEST(test_chan_close_drains)
{
	ctx_chan_t *ch = chan(4);
	struct elem x;

	for (uint64_t i = 0; i < 3; i++) {
		x = mk(2, i);
		ck_assert_int_eq(ctx_chan_send(ctx_background(), ch, &x), 0);
	}
	ctx_chan_close(ch);
	x = mk(2, 3);
	ck_assert_int_eq(ctx_chan_send(ctx_background(), ch, &x), EPIPE);
	for (uint64_t i = 0; i < 3; i++) {
		ck_assert_int_eq(ctx_chan_recv(ctx_background(), ch, &x), 0);
		assert_elem(x, 2, i);
	}
	ck_assert_int_eq(ctx_chan_recv(ctx_background(), ch, &x), EPIPE);
	ctx_chan_free(ch);
}
END_TEST

/* ---- races ----------------------------------------------------------- */

/*
 * Close racing sends and receives.  Every send that returned 0 delivered
 * its element, including those still buffered at close, which the
 * receivers drain: what was sent is exactly what was received.
 */
struct close_side {
	pthread_t tid;
	ctx_chan_t *ch;
	uint32_t id;
	long n;             /* successful operations */
	uint64_t sum, xsum; /* of element hashes */
	int err;            /* how it ended */
	bool bad;           /* a torn element */
};

static void *close_sender(void *p)
{
	struct close_side *s = p;

	for (uint64_t i = 0;; i++) {
		struct elem e = mk(s->id, i);

		if ((s->err = ctx_chan_send(ctx_background(), s->ch, &e)))
			return NULL;
		s->n++;
		s->sum += e.check;
		s->xsum ^= e.check * 0x9e3779b97f4a7c15ull + i;
	}
}

static void *close_receiver(void *p)
{
	struct close_side *s = p;
	struct elem e;

	while (!(s->err = ctx_chan_recv(ctx_background(), s->ch, &e))) {
		s->bad |= !elem_ok(&e);
		s->n++;
		s->sum += e.check;
		s->xsum ^= e.check * 0x9e3779b97f4a7c15ull + e.seq;
	}
	return NULL;
}

#define RACERS 2

START_TEST(test_chan_race_close)
{
	int rounds = tu_quick() ? 40 : 250;
	uint32_t seed = 0x9e3779b9u + (uint32_t)_i;

	for (int round = 0; round < rounds; round++) {
		ctx_chan_t *ch = chan(mpmc_caps[_i]);
		struct close_side snd[RACERS], rcv[RACERS];
		long sent = 0, got = 0;
		uint64_t ssum = 0, rsum = 0, sx = 0, rx = 0;

		for (int i = 0; i < RACERS; i++) {
			snd[i] = (struct close_side){ .ch = ch,
						      .id = (uint32_t)i };
			rcv[i] = (struct close_side){ .ch = ch };
			ck_assert_int_eq(pthread_create(&snd[i].tid, NULL,
							close_sender, &snd[i]),
					 0);
			ck_assert_int_eq(pthread_create(&rcv[i].tid, NULL,
							close_receiver,
							&rcv[i]), 0);
		}
		tu_sleep_ns((int64_t)(tu_rand(&seed) % 1000) * CTX_USEC);
		ctx_chan_close(ch);
		for (int i = 0; i < RACERS; i++) {
			ck_assert_int_eq(pthread_join(snd[i].tid, NULL), 0);
			ck_assert_int_eq(pthread_join(rcv[i].tid, NULL), 0);
			ck_assert_int_eq(snd[i].err, EPIPE);
			ck_assert_int_eq(rcv[i].err, EPIPE);
			ck_assert(!rcv[i].bad);
			sent += snd[i].n;
			got += rcv[i].n;
			ssum += snd[i].sum;
			rsum += rcv[i].sum;
			sx ^= snd[i].xsum;
			rx ^= rcv[i].xsum;
		}
		ck_assert_msg(sent == got, "round %d: sent %ld, received %ld",
			      round, sent, got);
		ck_assert_msg(ssum == rsum && sx == rx,
			      "round %d: different elements", round);
		ctx_chan_free(ch);
	}
}
END_TEST

/*
 * Cancel racing a rendezvous handoff.  A receiver takes elements at
 * random moments; the sender's context is cancelled at a random moment
 * by another thread.  A send that returned 0 was received; one that
 * returned CTX_CANCELED never is.
 */
struct handoff_rx {
	pthread_t tid;
	ctx_chan_t *ch;
	uint8_t *got;       /* times each element was received */
	int n;
	bool bad;
	int err;
};

static void *handoff_receiver(void *p)
{
	struct handoff_rx *h = p;
	uint32_t seed = 0xdeadbeef;
	struct elem e;

	for (;;) {
		tu_spin(tu_rand(&seed) % 100000);
		if ((h->err = ctx_chan_recv(ctx_background(), h->ch, &e)))
			return NULL;
		if (!elem_ok(&e) || e.seq >= (uint64_t)h->n)
			h->bad = true;
		else
			h->got[e.seq]++;
	}
}

START_TEST(test_chan_race_cancel_send)
{
	int n = tu_quick() ? 300 : 2000;
	struct handoff_rx h = { .ch = chan(0), .n = n };
	uint8_t *sent = calloc((size_t)n, 1);
	uint32_t seed = 0x12345678;
	int delivered = 0, cancelled = 0;

	h.got = calloc((size_t)n, 1);
	ck_assert(sent && h.got);
	ck_assert_int_eq(pthread_create(&h.tid, NULL, handoff_receiver, &h),
			 0);
	for (int i = 0; i < n; i++) {
		ctx_t *c = ctx_with_cancel(ctx_background());
		struct tu_canceller k;
		struct elem e = mk(0, (uint64_t)i);
		int r;

		ck_assert_ptr_nonnull(c);
		tu_cancel_after_spin(&k, c, tu_rand(&seed) % 100000);
		r = ctx_chan_send(c, h.ch, &e);
		ck_assert_msg(r == 0 || r == CTX_CANCELED, "#%d: send %d", i,
			      r);
		sent[i] = r == 0;
		if (r == 0)
			delivered++;
		else
			cancelled++;
		tu_canceller_join(&k);
		ctx_release(c);
	}
	ctx_chan_close(h.ch);
	ck_assert_int_eq(pthread_join(h.tid, NULL), 0);
	ck_assert_int_eq(h.err, EPIPE);
	ck_assert(!h.bad);
	for (int i = 0; i < n; i++)
		ck_assert_msg(h.got[i] == sent[i],
			      "#%d: send returned %s, received %d times", i,
			      sent[i] ? "0" : "CTX_CANCELED", h.got[i]);
	ck_assert_int_eq(delivered + cancelled, n);
	free(sent);
	free(h.got);
	ctx_chan_free(h.ch);
}
END_TEST

/*
 * Deadlines racing receives: a producer sends 0..n-1 and closes; the
 * consumer receives with random short timeouts.  A receive that timed
 * out took nothing, so the consumer still sees every element, in order.
 */
START_TEST(test_chan_race_cancel_recv)
{
	uint64_t n = tu_quick() ? 300 : 2000;
	ctx_chan_t *ch = chan(_i ? 3 : 0);
	struct producer p = { .ch = ch, .id = 2, .n = n, .close = true };
	uint32_t seed = 0xcafef00d;
	uint64_t next = 0;
	long timeouts = 0;
	struct elem x;
	int r;

	ck_assert_int_eq(pthread_create(&p.tid, NULL, producer_main, &p), 0);
	for (;;) {
		int64_t t = (int64_t)(tu_rand(&seed) % 60) * CTX_USEC;

		x = sentinel();
		r = recv_within(ch, &x, t ? t : 1);
		if (r == CTX_DEADLINE_EXCEEDED) {
			struct elem s = sentinel();

			ck_assert_mem_eq(&x, &s, sizeof(x));
			timeouts++;
			continue;
		}
		if (r)
			break;
		ck_assert_msg(elem_ok(&x) && x.seq == next,
			      "expected %llu, got %llu",
			      (unsigned long long)next,
			      (unsigned long long)x.seq);
		next++;
	}
	ck_assert_int_eq(r, EPIPE);
	ck_assert_uint_eq(next, n);
	ck_assert_int_eq(pthread_join(p.tid, NULL), 0);
	ck_assert_int_eq(p.err, 0);
	ck_assert_int_gt(timeouts, 0);
	ctx_chan_free(ch);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */


#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *suite_chan(void)
{
	Suite *s = suite_create("chan");
	TCase *tc;

	tc = tu_tcase(s, "api", 30);
	tu_add_tests(tc, test_chan_new, test_chan_null, test_chan_buffered,
		     test_chan_unbuffered_holds_nothing, test_chan_rendezvous,
		     test_chan_rendezvous_receiver_first,
		     test_chan_parked_sender_in_line);

	tc = tu_tcase(s, "order", 60);
	tcase_add_loop_test(tc, test_chan_fifo, 0, N_OF(fifo_caps));
	tcase_add_loop_test(tc, test_chan_many, 0, N_OF(mpmc_caps));

	tc = tu_tcase(s, "close", 30);
	tcase_add_loop_test(tc, test_chan_close_wakes_receivers, 0,
			    N_OF(close_caps));
	tcase_add_loop_test(tc, test_chan_close_wakes_senders, 0,
			    N_OF(close_caps));
	tcase_add_test(tc, test_chan_close_drains);

	tc = tu_tcase(s, "race", 120);
	tcase_add_loop_test(tc, test_chan_race_close, 0, N_OF(mpmc_caps));
	tcase_add_test(tc, test_chan_race_cancel_send);
	tcase_add_loop_test(tc, test_chan_race_cancel_recv, 0, 2);

	return s;
}
