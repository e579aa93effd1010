/*
 * ctx_select and the non-blocking channel calls: bad input, default
 * (timeout 0), uniform choice among ready cases, nil channels and
 * negative descriptors never ready, closed channels ready with EPIPE,
 * descriptor and context cases, a wake-up by a peer, no descriptor made
 * for channels only, two selectors racing over shared channels with
 * timeouts in between (every element received exactly once), and
 * context cases ended as the select parks.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "hooks.h"
#include "suites.h"
#include "testutil.h"

static struct ctx_case recv_case(ctx_chan_t *ch, void *elem)
{
	return (struct ctx_case){ .kind = CTX_CASE_RECV, .ch = ch,
				  .elem = elem, .fd = -1 };
}

static struct ctx_case send_case(ctx_chan_t *ch, void *elem)
{
	return (struct ctx_case){ .kind = CTX_CASE_SEND, .ch = ch,
				  .elem = elem, .fd = -1 };
}

START_TEST(test_chan_try)
{
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 2), *u = ctx_chan_new(4, 0);
	int v = 1, out = 0;

	ck_assert_uint_eq(ctx_chan_cap(ch), 2);
	ck_assert_uint_eq(ctx_chan_cap(u), 0);
	ck_assert_uint_eq(ctx_chan_len(ch), 0);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &out), EAGAIN);
	ck_assert_int_eq(ctx_chan_try_send(ch, &v), 0);
	v = 2;
	ck_assert_int_eq(ctx_chan_try_send(ch, &v), 0);
	ck_assert_int_eq(ctx_chan_try_send(ch, &v), EAGAIN);
	ck_assert_uint_eq(ctx_chan_len(ch), 2);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &out), 0);
	ck_assert_int_eq(out, 1);
	ctx_chan_close(ch);
	ck_assert_int_eq(ctx_chan_try_send(ch, &v), EPIPE);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &out), 0);
	ck_assert_int_eq(out, 2);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &out), EPIPE);
	ck_assert_int_eq(ctx_chan_try_send(u, &v), EAGAIN); /* nobody */
	ck_assert_int_eq(ctx_chan_try_recv(u, &out), EAGAIN);
	ck_assert_int_eq(ctx_chan_try_send(NULL, &v), EINVAL);
	ck_assert_int_eq(ctx_chan_try_recv(ch, NULL), EINVAL);
	ck_assert_uint_eq(ctx_chan_len(NULL), 0);
	ctx_chan_free(ch);
	ctx_chan_free(u);
}
END_TEST

START_TEST(test_select_bad_input)
{
	int v = 0;
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 1);
	struct ctx_case c = recv_case(ch, NULL);

	tu_assert_fail(ctx_select(NULL, NULL, 0, 0), EINVAL);
	tu_assert_fail(ctx_select(ctx_background(), NULL, 1, 0), EINVAL);
	tu_assert_fail(ctx_select(ctx_background(), &c, 1, 0), EINVAL);
	c = recv_case(ch, &v);
	c.kind = 99;
	tu_assert_fail(ctx_select(ctx_background(), &c, 1, 0), EINVAL);
	ctx_chan_free(ch);
}
END_TEST

START_TEST(test_select_default)
{
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 1);
	int v = 7;
	struct ctx_case cs[3] = { recv_case(ch, &v), recv_case(NULL, &v),
				  { .kind = CTX_CASE_FD, .fd = -1,
				    .events = POLLIN } };

	tu_assert_fail(ctx_select(ctx_background(), cs, 3, 0), EAGAIN);
	tu_assert_fail(ctx_select(ctx_background(), NULL, 0, 0), EAGAIN);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_select(ctx_background(), cs, 3, 30 * CTX_MSEC),
		       EAGAIN);
	tu_assert_ms(tu_ms_since(t0), 25, 2000);
	ctx_chan_free(ch);
}
END_TEST

/* Four ready buffered channels: each chosen about a quarter of the
 * time over 4000 selects, and exactly one element moves per select. */
START_TEST(test_select_uniform)
{
	enum { K = 4, N = 4000 };
	ctx_chan_t *ch[K];
	int v[K], hits[K] = { 0 };
	struct ctx_case cs[K];

	for (int i = 0; i < K; i++) {
		ch[i] = ctx_chan_new(sizeof(int), 1);
		cs[i] = recv_case(ch[i], &v[i]);
	}
	for (int n = 0; n < N; n++) {
		for (int i = 0; i < K; i++)
			if (ctx_chan_len(ch[i]) == 0)
				ck_assert_int_eq(ctx_chan_try_send(ch[i], &i), 0);
		int got = ctx_select(ctx_background(), cs, K, 0);
		ck_assert_int_ge(got, 0);
		ck_assert_int_lt(got, K);
		ck_assert_int_eq(cs[got].result, 0);
		ck_assert_int_eq(v[got], got);
		hits[got]++;
		int left = 0;
		for (int i = 0; i < K; i++)
			left += (int)ctx_chan_len(ch[i]);
		ck_assert_int_eq(left, K - 1);
	}
	for (int i = 0; i < K; i++) {
		ck_assert_msg(hits[i] > N / K * 8 / 10 && hits[i] < N / K * 12 / 10,
			      "case %d chosen %d times of %d", i, hits[i], N);
		ctx_chan_free(ch[i]);
	}
}
END_TEST

START_TEST(test_select_closed)
{
	ctx_chan_t *a = ctx_chan_new(sizeof(int), 0), *b = ctx_chan_new(sizeof(int), 0);
	int v = 0;
	struct ctx_case cs[2] = { recv_case(a, &v), send_case(b, &v) };

	ctx_chan_close(a);
	int got = ctx_select(ctx_background(), cs, 1, -1);
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(cs[0].result, EPIPE);
	ctx_chan_close(b);
	got = ctx_select(ctx_background(), &cs[1], 1, -1);
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(cs[1].result, EPIPE);
	ctx_chan_free(a);
	ctx_chan_free(b);
}
END_TEST

/* A peer on another thread. */
struct peer {
	pthread_t t;
	ctx_chan_t *ch;
	int v;
	int64_t delay;
	int how; /* 0 send, 1 recv, 2 close, 3 cancel ctx, 4 write fd */
	ctx_t *ctx;
	int fd;
	int err;
};

static void *peer_main(void *p)
{
	struct peer *pe = p;

	tu_sleep_ns(pe->delay);
	switch (pe->how) {
	case 0: pe->err = ctx_chan_send(ctx_background(), pe->ch, &pe->v); break;
	case 1: pe->err = ctx_chan_recv(ctx_background(), pe->ch, &pe->v); break;
	case 2: ctx_chan_close(pe->ch); break;
	case 3: ctx_cancel(pe->ctx); break;
	case 4: pe->err = (int)write(pe->fd, "x", 1); break;
	}
	return NULL;
}

static void peer_start(struct peer *pe)
{
	ck_assert_int_eq(pthread_create(&pe->t, NULL, peer_main, pe), 0);
}

/* Parked selects woken by each kind of peer; cases loop over them. */
START_TEST(test_select_wake)
{
	ctx_chan_t *a = ctx_chan_new(sizeof(int), 0), *b = ctx_chan_new(sizeof(int), 0);
	ctx_t *other = ctx_with_cancel(ctx_background());
	int fds[2], in = -1, out = 42;
	ck_assert_int_eq(pipe(fds), 0);
	struct ctx_case cs[4] = {
		recv_case(a, &in), send_case(b, &out),
		{ .kind = CTX_CASE_FD, .fd = fds[0], .events = POLLIN },
		{ .kind = CTX_CASE_DONE, .done = other, .fd = -1 },
	};
	/* Loop 0-4: each kind of peer; 5-7: the channel peers again with
	 * the descriptor case present (the ctx_poll wait, not the futex). */
	int how = _i < 5 ? _i : _i - 5;
	struct peer pe = { .delay = 30 * CTX_MSEC, .how = how, .v = 5,
			   .ctx = other, .fd = fds[1] };
	int want = 0;
	switch (how) {
	case 0: pe.ch = a; want = 0; break;
	case 1: pe.ch = b; want = 1; break;
	case 2: pe.ch = a; want = 0; break;
	case 3: want = 3; break;
	case 4: want = 2; break;
	}
	size_t n = how >= 3 || _i >= 5 ? 4 : 2;
	int64_t t0 = ctx_now();
	peer_start(&pe);
	int got = ctx_select(ctx_background(), cs, n, 5 * CTX_SEC);
	pthread_join(pe.t, NULL);
	ck_assert_int_eq(got, want);
	tu_assert_ms(tu_ms_since(t0), 20, 4000);
	switch (how) {
	case 0: ck_assert_int_eq(cs[0].result, 0); ck_assert_int_eq(in, 5); break;
	case 1: ck_assert_int_eq(cs[1].result, 0); ck_assert_int_eq(pe.v, 42); break;
	case 2: ck_assert_int_eq(cs[0].result, EPIPE); break;
	case 3: ck_assert_int_eq(cs[3].result, CTX_CANCELED); break;
	case 4: ck_assert(cs[2].revents & POLLIN); break;
	}
	close(fds[0]);
	close(fds[1]);
	ctx_release(other);
	ctx_chan_free(a);
	ctx_chan_free(b);
}
END_TEST

/* Waiting on channels only makes no descriptor (here on a thread that
 * has already waited once, so the reactor's own are counted). */
static void *count_main(void *p)
{
	int *delta = p;
	ctx_chan_t *a = ctx_chan_new(sizeof(int), 0);
	int v = 0;
	struct ctx_case cs[1] = { recv_case(a, &v) };
	ctx_sleep(ctx_background(), CTX_MSEC);
	struct peer pe = { .delay = 50 * CTX_MSEC, .how = 0, .ch = a, .v = 9 };
	int before = tu_count_fds();
	peer_start(&pe);
	int got = ctx_select(ctx_background(), cs, 1, -1);
	int after = tu_count_fds();
	pthread_join(pe.t, NULL);
	*delta = got == 0 && v == 9 ? after - before : -100;
	ctx_chan_free(a);
	return NULL;
}

START_TEST(test_select_no_fd)
{
	pthread_t t;
	int delta = -1;

	ck_assert_int_eq(pthread_create(&t, NULL, count_main, &delta), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(delta, 0);
}
END_TEST

/* ---- two selectors racing over shared channels ------------------------ */

#define RACE_CH 3
struct race {
	ctx_chan_t *ch[RACE_CH];
	int per_sender;
	unsigned char *seen;
	atomic_int received, timeouts;
	atomic_int senders_left;
	ctx_chan_t *quit;
};

struct sender { struct race *r; int id; };

static void *race_sender(void *p)
{
	struct sender *s = p;
	struct race *r = s->r;
	uint32_t seed = 77u + (uint32_t)s->id;

	for (int i = 0; i < r->per_sender; i++) {
		int v = s->id * r->per_sender + i;
		ctx_chan_t *ch = r->ch[tu_rand(&seed) % RACE_CH];
		ck_assert_int_eq(ctx_chan_send(ctx_background(), ch, &v), 0);
		if (tu_rand(&seed) % 64 == 0)
			tu_sleep_ns(200 * CTX_USEC); /* let selectors time out */
	}
	if (atomic_fetch_sub(&r->senders_left, 1) == 1)
		ctx_chan_close(r->quit);
	return NULL;
}

static void *race_selector(void *p)
{
	struct race *r = p;
	int v[RACE_CH], q;
	struct ctx_case cs[RACE_CH + 1];

	for (int i = 0; i < RACE_CH; i++)
		cs[i] = recv_case(r->ch[i], &v[i]);
	cs[RACE_CH] = recv_case(r->quit, &q);
	for (;;) {
		int got = ctx_select(ctx_background(), cs, RACE_CH + 1,
				     100 * CTX_USEC);
		if (got < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			atomic_fetch_add(&r->timeouts, 1);
			continue;
		}
		if (got == RACE_CH) /* closed: drain what is left */
			break;
		ck_assert_int_eq(cs[got].result, 0);
		r->seen[v[got]]++;
		atomic_fetch_add(&r->received, 1);
	}
	for (int i = 0; i < RACE_CH; i++)
		for (int x; ctx_chan_try_recv(r->ch[i], &x) == 0;) {
			r->seen[x]++;
			atomic_fetch_add(&r->received, 1);
		}
	return NULL;
}

START_TEST(test_select_race)
{
	static struct race r;
	enum { NS = 3, NSEL = 2 };
	struct sender s[NS];
	pthread_t st[NS], sel[NSEL];
	int per = tu_quick() ? 3000 : 20000;

	r = (struct race){ .per_sender = per, .senders_left = NS };
	for (int i = 0; i < RACE_CH; i++)
		r.ch[i] = ctx_chan_new(sizeof(int), (size_t)i); /* 0, 1, 2 */
	r.quit = ctx_chan_new(sizeof(int), 0);
	r.seen = calloc((size_t)(NS * per), 1);
	for (int i = 0; i < NSEL; i++)
		ck_assert_int_eq(pthread_create(&sel[i], NULL, race_selector, &r), 0);
	for (int i = 0; i < NS; i++) {
		s[i] = (struct sender){ .r = &r, .id = i };
		ck_assert_int_eq(pthread_create(&st[i], NULL, race_sender, &s[i]), 0);
	}
	for (int i = 0; i < NS; i++)
		pthread_join(st[i], NULL);
	for (int i = 0; i < NSEL; i++)
		pthread_join(sel[i], NULL);
	ck_assert_int_eq(atomic_load(&r.received), NS * per);
	for (int i = 0; i < NS * per; i++)
		ck_assert_msg(r.seen[i] == 1, "element %d received %d times",
			      i, r.seen[i]);
	ck_assert_int_gt(atomic_load(&r.timeouts), 0);
	free(r.seen);
	for (int i = 0; i < RACE_CH; i++)
		ctx_chan_free(r.ch[i]);
	ctx_chan_free(r.quit);
}
END_TEST

/* Two selects that send to and receive from each other on unbuffered
 * channels: every rendezvous pairs exactly one case of each. */
struct pair { ctx_chan_t *a, *b; int n; int sum; };

static void *pair_main(void *p)
{
	struct pair *pr = p;
	int out = 1, in = 0;
	struct ctx_case cs[2] = { send_case(pr->a, &out), recv_case(pr->b, &in) };

	for (int i = 0; i < pr->n; i++) {
		int got = ctx_select(ctx_background(), cs, 2, -1);
		ck_assert_int_ge(got, 0);
		pr->sum += got == 1 ? in : 0;
	}
	return NULL;
}

START_TEST(test_select_pairs)
{
	ctx_chan_t *a = ctx_chan_new(sizeof(int), 0);
	int n = tu_quick() ? 500 : 5000;
	struct pair p = { .a = a, .n = n };
	pthread_t t;
	int in = 0, out = 2, got_in = 0, sum = 0;
	/* The other side: receives on a, sends on its own b. */
	ctx_chan_t *b = ctx_chan_new(sizeof(int), 0);
	p.b = b;
	struct ctx_case cs[2] = { recv_case(a, &in), send_case(b, &out) };

	ck_assert_int_eq(pthread_create(&t, NULL, pair_main, &p), 0);
	for (int i = 0; i < n; i++) {
		int got = ctx_select(ctx_background(), cs, 2, -1);
		ck_assert_int_ge(got, 0);
		if (got == 0) {
			sum += in;
			got_in++;
		}
	}
	pthread_join(t, NULL);
	/* Each rendezvous: one side's send met the other's receive. */
	ck_assert_int_eq(sum, got_in);
	ck_assert_int_eq(p.sum, 2 * (n - got_in));
	ctx_chan_free(a);
	ctx_chan_free(b);
}
END_TEST

/* More cases than fit on the stack; never-ready kinds among them. */
START_TEST(test_select_many)
{
	enum { K = 40 };
	struct ctx_case cs[K];
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 1);
	int v = 3, out = 0;

	for (int i = 0; i < K; i++) {
		switch (i % 4) {
		case 0: cs[i] = recv_case(NULL, &out); break;
		case 1: cs[i] = (struct ctx_case){ .kind = CTX_CASE_FD,
						   .fd = -1, .events = POLLIN };
			break;
		case 2: cs[i] = (struct ctx_case){ .kind = CTX_CASE_DONE,
						   .done = ctx_background(),
						   .fd = -1 };
			break;
		default: cs[i] = (struct ctx_case){ .kind = CTX_CASE_DONE,
						    .fd = -1 };
		}
	}
	tu_assert_fail(ctx_select(ctx_background(), cs, K, 10 * CTX_MSEC),
		       EAGAIN);
	cs[K - 1] = recv_case(ch, &out);
	ck_assert_int_eq(ctx_chan_try_send(ch, &v), 0);
	ck_assert_int_eq(ctx_select(ctx_background(), cs, K, -1), K - 1);
	ck_assert_int_eq(out, 3);
	ctx_chan_free(ch);
}
END_TEST

/* A context case whose deadline nobody else waits for: the select
 * itself sees it pass.  Loop 1 adds a descriptor case (ctx_poll). */
START_TEST(test_select_done_deadline)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int64_t t0 = ctx_now();
	ctx_t *d = ctx_with_timeout(ctx_background(), 40 * CTX_MSEC);
	struct ctx_case cs[2] = {
		{ .kind = CTX_CASE_DONE, .done = d, .fd = -1 },
		{ .kind = CTX_CASE_FD, .fd = fds[0], .events = POLLIN },
	};
	ck_assert_int_eq(ctx_select(ctx_background(), cs, (size_t)1 + (size_t)_i,
				    5 * CTX_SEC), 0);
	ck_assert_int_eq(cs[0].result, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 35, 2000);
	ctx_release(d);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* Two context cases with deadlines nobody else waits for: an idle one
 * that a thread keeps touching, whose deadline keeps moving, and a plain
 * timeout behind it.  The select must still see the timeout pass, not
 * sleep to its own 3 s after the idle case's first deadline came and
 * went without ending it.  On the manual clock, jumping: the toucher (a
 * known thread, sleeping 5 ms between touches) cannot be starved, and
 * the timeout ends the select at exactly 400 ms. */
struct toucher {
	ctx_thread_t *t;
	ctx_t *c;
};

static void *toucher_main(ctx_t *ctx, void *p)
{
	struct toucher *k = p;
	do
		ctx_touch(k->c);
	while (ctx_sleep(ctx, 5 * CTX_MSEC) == 0);
	return NULL;
}

START_TEST(test_select_moving_deadline)
{
	tu_manual_clock(true);
	struct toucher k = { .c = ctx_with_idle(ctx_background(),
						100 * CTX_MSEC) };
	ctx_t *stop = ctx_with_cancel(ctx_background());
	ctx_t *b = ctx_with_timeout(ctx_background(), 400 * CTX_MSEC);
	ck_assert_ptr_nonnull(k.c);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(ctx_thread_create(&k.t, stop, toucher_main, &k), 0);
	struct ctx_case cs[2] = {
		{ .kind = CTX_CASE_DONE, .done = k.c, .fd = -1 },
		{ .kind = CTX_CASE_DONE, .done = b, .fd = -1 },
	};
	int64_t t0 = ctx_now();
	int got = ctx_select(ctx_background(), cs, 2, 3 * CTX_SEC);
	int64_t took = ctx_now() - t0;
	ctx_cancel(stop);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), k.t, NULL), 0);
	ck_assert_int_eq(got, 1);
	ck_assert_int_eq(cs[1].result, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(took, 400 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(k.c), 0);
	ctx_release(stop);
	ctx_release(b);
	ctx_release(k.c);
}
END_TEST

/*
 * A context case ended at about the moment the select parks: the wake-up
 * must reach it however the two interleave (before its look, between the
 * look and the sleep, or during the sleep).  A lost one would sit out the
 * 5 s timeout.  Loop 1 adds a descriptor case that never gets ready.
 */
START_TEST(test_select_done_race)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int64_t end = ctx_now() + 500 * CTX_MSEC;
	int rounds = 0;
	for (; rounds < 2000 && ctx_now() < end; rounds++) {
		ctx_t *c = ctx_with_cancel(ctx_background());
		ck_assert_ptr_nonnull(c);
		struct ctx_case cs[2] = {
			{ .kind = CTX_CASE_DONE, .done = c, .fd = -1 },
			{ .kind = CTX_CASE_FD, .fd = fds[0], .events = POLLIN },
		};
		struct tu_canceller k;
		tu_cancel_after_spin(&k, c, (uint32_t)(rounds * 7919) % 60000);
		int64_t t0 = ctx_now();
		int got = ctx_select(ctx_background(), cs, (size_t)1 + (size_t)_i,
				     5 * CTX_SEC);
		double ms = tu_ms_since(t0);
		tu_canceller_join(&k);
		ck_assert_int_eq(got, 0);
		ck_assert_int_eq(cs[0].result, CTX_CANCELED);
		ck_assert_double_lt(ms, 3000.0);
		ctx_release(c);
	}
	ck_assert_int_gt(rounds, 0);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

Suite *suite_select(void)
{
	Suite *s = suite_create("select");
	TCase *tc = tu_tcase(s, "api", 30);

	tu_add_tests(tc, test_chan_try, test_select_bad_input,
		     test_select_default, test_select_uniform,
		     test_select_closed);
	tcase_add_loop_test(tc, test_select_wake, 0, 8);
	tu_add_tests(tc, test_select_no_fd, test_select_many);
	tcase_add_loop_test(tc, test_select_done_deadline, 0, 2);
	tc = tu_tcase(s, "manual", 30);
	tcase_add_checked_fixture(tc, NULL, ctx__clock_reset);
	tcase_add_test(tc, test_select_moving_deadline);
	tc = tu_tcase(s, "race", 240);
	tu_add_tests(tc, test_select_race, test_select_pairs);
	tcase_add_loop_test(tc, test_select_done_race, 0, 2);
	return s;
}
