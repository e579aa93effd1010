/*
 * The context tree: constructors, cancellation, deadlines.  The suite's
 * other cases are in done_fd.c (done descriptors), values.c (values,
 * resources, bad input, formatting) and races.c (concurrency).
 *
 * Every test runs in a forked child by default, so one crash fails one
 * test; CK_FORK=no runs them all in this process, for valgrind:
 *
 *     CTX_TEST_QUICK=1 CK_FORK=no valgrind --leak-check=full \
 *         --error-exitcode=1 ./tests/check_ctx
 *
 * Assertions are made on the test's own thread only: worker threads
 * record what they saw and the test checks it after joining them, since
 * a Check failure must unwind the test's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
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

/* ---- API: every function, one at a time ------------------------------ */

START_TEST(test_now_monotonic)
{
	int64_t prev = ctx_now();

	ck_assert_int_gt(prev, 0);
	for (int i = 0; i < 100000; i++) {
		int64_t t = ctx_now();

		ck_assert_int_ge(t, prev);
		prev = t;
	}

	/* It is CLOCK_MONOTONIC, in nanoseconds. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t mono = (int64_t)ts.tv_sec * CTX_SEC + ts.tv_nsec;
	int64_t now = ctx_now();
	ck_assert_int_ge(now, mono);
	ck_assert_int_lt(now - mono, CTX_SEC);

	/* And it advances with real time. */
	int64_t t0 = ctx_now();
	tu_sleep_ns(20 * CTX_MSEC);
	int64_t dt = ctx_now() - t0;
	ck_assert_int_ge(dt, 20 * CTX_MSEC);
	ck_assert_int_lt(dt, 2 * CTX_SEC);
}
END_TEST

START_TEST(test_roots)
{
	ctx_t *roots[] = { ctx_background(), ctx_todo() };

	ck_assert_ptr_nonnull(roots[0]);
	ck_assert_ptr_nonnull(roots[1]);
	ck_assert_ptr_ne(roots[0], roots[1]);
	/* Each is one object, whoever asks. */
	ck_assert_ptr_eq(ctx_background(), roots[0]);
	ck_assert_ptr_eq(ctx_todo(), roots[1]);

	for (int i = 0; i < 2; i++) {
		int64_t d = 1234;

		assert_live(roots[i]);
		ck_assert(!ctx_deadline(roots[i], &d));
		ck_assert_int_eq(d, 1234);
		ck_assert_ptr_null(ctx_value(roots[i], key_a));
		errno = EBADF;
		ck_assert_int_eq(ctx_done_fd(roots[i]), -1);
		ck_assert_int_eq(errno, 0);
	}
}
END_TEST

/* The roots live forever: refcounting and cancelling them does nothing
 * (freeing a static root would crash here or under valgrind). */
START_TEST(test_roots_noop)
{
	ctx_t *roots[] = { ctx_background(), ctx_todo() };

	for (int i = 0; i < 2; i++) {
		ctx_t *r = roots[i];

		ck_assert_ptr_eq(ctx_ref(r), r);
		for (int j = 0; j < 3; j++) {
			ctx_unref(r);
			ctx_cancel(r);
			ctx_cancel_cause(r, 5);
			ctx_release(r);
		}
		assert_live(r);

		/* Still a working parent. */
		ctx_t *c = ctx_with_cancel(r);
		ck_assert_ptr_nonnull(c);
		assert_live(c);
		ctx_release(c);
		assert_live(r);
	}
}
END_TEST

START_TEST(test_with_cancel)
{
	int64_t d = 99;
	ctx_t *c = ctx_with_cancel(ctx_background());

	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_ne(c, ctx_background());
	assert_live(c);
	ck_assert(!ctx_deadline(c, &d));
	ck_assert_int_eq(d, 99);

	ctx_cancel(c);
	assert_state(c, CTX_CANCELED, CTX_CANCELED);

	/* Idempotent: later cancellations change nothing. */
	ctx_cancel(c);
	ctx_cancel_cause(c, 9);
	assert_state(c, CTX_CANCELED, CTX_CANCELED);
	ctx_release(c);
}
END_TEST

START_TEST(test_with_deadline)
{
	int64_t want = ctx_now() + HOUR, got = 0;
	ctx_t *c = ctx_with_deadline(ctx_background(), want);

	ck_assert_ptr_nonnull(c);
	assert_live(c);
	ck_assert(ctx_deadline(c, &got));
	ck_assert_int_eq(got, want);

	ctx_t *soon = ctx_with_deadline(ctx_background(),
					ctx_now() + 30 * CTX_MSEC);
	ck_assert_ptr_nonnull(soon);
	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(soon, CTX_DEADLINE_EXCEEDED, CTX_DEADLINE_EXCEEDED);
	assert_live(c);

	ctx_release(soon);
	ctx_release(c);
}
END_TEST

START_TEST(test_with_timeout)
{
	int64_t got = 0, t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	int64_t t1 = ctx_now();

	ck_assert_ptr_nonnull(c);
	assert_live(c);
	/* Relative to the clock read during the call. */
	ck_assert(ctx_deadline(c, &got));
	ck_assert_int_ge(got, t0 + HOUR);
	ck_assert_int_le(got, t1 + HOUR);

	ctx_t *soon = ctx_with_timeout(ctx_background(), 30 * CTX_MSEC);
	ck_assert_ptr_nonnull(soon);
	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(soon, CTX_DEADLINE_EXCEEDED, CTX_DEADLINE_EXCEEDED);
	assert_live(c);

	ctx_release(soon);
	ctx_release(c);
}
END_TEST

START_TEST(test_cause_constructors)
{
	int64_t want = ctx_now() + 30 * CTX_MSEC, got = 0;
	ctx_t *dl = ctx_with_deadline_cause(ctx_background(), want, 77);
	ctx_t *to = ctx_with_timeout_cause(ctx_background(), 30 * CTX_MSEC, 78);
	/* The cause is for expiry only; an explicit cancel has its own. */
	ctx_t *c1 = ctx_with_timeout_cause(ctx_background(), HOUR, 79);
	ctx_t *c2 = ctx_with_deadline_cause(ctx_background(),
					    ctx_now() + HOUR, 80);

	ck_assert_ptr_nonnull(dl);
	ck_assert_ptr_nonnull(to);
	ck_assert_ptr_nonnull(c1);
	ck_assert_ptr_nonnull(c2);
	ck_assert(ctx_deadline(dl, &got));
	ck_assert_int_eq(got, want);

	ctx_cancel(c1);
	ctx_cancel_cause(c2, 81);
	assert_state(c1, CTX_CANCELED, CTX_CANCELED);
	assert_state(c2, CTX_CANCELED, 81);

	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(dl, CTX_DEADLINE_EXCEEDED, 77);
	assert_state(to, CTX_DEADLINE_EXCEEDED, 78);

	tu_release(dl, to, c1, c2);
}
END_TEST

START_TEST(test_with_value)
{
	static int other_key;
	int val;
	ctx_t *v = ctx_with_value(ctx_background(), key_a, &val);

	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_ne(v, ctx_background());
	ck_assert_ptr_eq(ctx_value(v, key_a), &val);
	ck_assert_ptr_null(ctx_value(v, &other_key));
	/* Over a root it is as a root: never done, no deadline. */
	assert_live(v);
	ck_assert(!has_deadline(v));

	/* Over a cancel context it reports that context's state. */
	int64_t d1 = 0, d2 = 0;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *cv = ctx_with_value(c, &other_key, &val);
	ck_assert_ptr_nonnull(cv);
	ck_assert(ctx_deadline(c, &d1));
	ck_assert(ctx_deadline(cv, &d2));
	ck_assert_int_eq(d2, d1);
	assert_live(cv);
	ctx_cancel_cause(c, 3);
	assert_state(cv, CTX_CANCELED, 3);

	tu_release(cv, c, v);
}
END_TEST

START_TEST(test_without_cancel)
{
	int val;
	ctx_t *v = ctx_with_value(ctx_background(), key_a, &val);
	ctx_t *p = ctx_with_timeout(v, HOUR);
	ctx_t *w = ctx_without_cancel(p);
	ctx_t *wc = ctx_with_cancel(w);

	ck_assert_ptr_nonnull(w);
	ck_assert_ptr_nonnull(wc);
	assert_live(w);
	ck_assert(!has_deadline(w));
	ck_assert(!has_deadline(wc));
	ck_assert_ptr_eq(ctx_value(w, key_a), &val);

	/* Cancelling the parent reaches neither it nor what hangs below. */
	ctx_cancel_cause(p, 4);
	assert_state(p, CTX_CANCELED, 4);
	assert_live(w);
	assert_live(wc);
	ck_assert_ptr_eq(ctx_value(wc, key_a), &val);

	tu_release(wc, w, p, v);
}
END_TEST

START_TEST(test_cancel_cause)
{
	ctx_t *a = ctx_with_cancel(ctx_background());
	ctx_t *b = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_with_cancel(ctx_background());

	ctx_cancel_cause(a, 1234);
	assert_state(a, CTX_CANCELED, 1234);
	/* No cause (0) means "the error itself", as Go's cancel(nil). */
	ctx_cancel_cause(b, 0);
	assert_state(b, CTX_CANCELED, CTX_CANCELED);
	/* A cancel is CTX_CANCELED whatever the cause says. */
	ctx_cancel_cause(c, CTX_DEADLINE_EXCEEDED);
	assert_state(c, CTX_CANCELED, CTX_DEADLINE_EXCEEDED);

	tu_release(a, b, c);
}
END_TEST

/* The context's done descriptor tells when it is freed: it is closed
 * then, and not before. */
START_TEST(test_ref_unref)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = ctx_done_fd(c);

	ck_assert_int_ge(fd, 0);
	int base = tu_count_fds();
	ck_assert_ptr_eq(ctx_ref(c), c);
	ck_assert_ptr_eq(ctx_ref(c), c);

	/* Unref drops a reference and does not cancel. */
	ctx_unref(c);
	assert_live(c);
	ck_assert(fd_open(fd));

	/* The creator's release cancels; our reference keeps it. */
	ctx_release(c);
	assert_state(c, CTX_CANCELED, CTX_CANCELED);
	ck_assert(fd_open(fd));
	ck_assert_int_eq(tu_count_fds(), base);

	/* The last reference frees it. */
	ctx_unref(c);
	ck_assert(!fd_open(fd));
	ck_assert_int_eq(tu_count_fds(), base - 1);
}
END_TEST

START_TEST(test_release)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *held = ctx_ref(c);
	ctx_t *child = ctx_with_cancel(c);

	ctx_release(c);
	assert_state(held, CTX_CANCELED, CTX_CANCELED);
	assert_state(child, CTX_CANCELED, CTX_CANCELED);
	ctx_unref(held);
	ctx_release(child);
}
END_TEST

/* A CTX_AUTO context is released (cancelled and unreferenced) when its
 * scope ends; our own reference lets us look at it afterwards. */
START_TEST(test_auto)
{
	ctx_t *held;
	int fd, base;

	{
		CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
		CTX_AUTO ctx_t *failed = ctx_with_cancel(NULL); /* NULL-safe */

		ck_assert_ptr_nonnull(c);
		ck_assert_ptr_null(failed);
		held = ctx_ref(c);
		fd = ctx_done_fd(c);
		ck_assert_int_ge(fd, 0);
		base = tu_count_fds();
		assert_live(c);
	}
	assert_state(held, CTX_CANCELED, CTX_CANCELED);
	ck_assert_int_eq(poll_in(fd, 0), 1);
	ck_assert_int_eq(tu_count_fds(), base);
	ctx_unref(held);
	ck_assert_int_eq(tu_count_fds(), base - 1);
}
END_TEST

START_TEST(test_strerror)
{
	ck_assert_str_eq(ctx_strerror(CTX_CANCELED), "context canceled");
	ck_assert_str_eq(ctx_strerror(CTX_DEADLINE_EXCEEDED),
			 "context deadline exceeded");
	ck_assert_str_eq(ctx_strerror(ECANCELED), "context canceled");
	ck_assert_str_eq(ctx_strerror(ETIMEDOUT), "context deadline exceeded");

	int others[] = { 0, EINVAL, ENOMEM, EMFILE, ENOENT, EPIPE };
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		char want[256];

		/* Copied: strerror may reuse one buffer. */
		snprintf(want, sizeof(want), "%s", strerror(others[i]));
		ck_assert_str_eq(ctx_strerror(others[i]), want);
	}
}
END_TEST

/* ---- semantics ------------------------------------------------------- */

#define DEEP 1000

/* A deep chain of every cancellable kind, with value contexts between:
 * cancelling the top ends every node before ctx_cancel returns. */
START_TEST(test_deep_chain)
{
	ctx_t *chain[DEEP];

	chain[0] = ctx_with_cancel(ctx_background());
	for (int i = 1; i < DEEP; i++) {
		if (i % 4 == 1)
			chain[i] = ctx_with_value(chain[i - 1], key_a,
						  (void *)(intptr_t)i);
		else if (i % 4 == 2)
			chain[i] = ctx_with_timeout(chain[i - 1], HOUR - i);
		else
			chain[i] = ctx_with_cancel(chain[i - 1]);
		ck_assert_ptr_nonnull(chain[i]);
	}
	ck_assert_ptr_eq(ctx_value(chain[DEEP - 1], key_a),
			 (void *)(intptr_t)(DEEP - 3));

	ctx_cancel_cause(chain[0], 31);
	for (int i = 0; i < DEEP; i++)
		assert_state_at(chain[i], CTX_CANCELED, 31, i);

	/* Top first: each child keeps its parent alive until the leaf goes. */
	for (int i = 0; i < DEEP; i++)
		ctx_release(chain[i]);
}
END_TEST

/* Freeing a long chain must not recurse once per level. */
START_TEST(test_very_deep_chain)
{
	enum { N = 100000 };
	ctx_t *top = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_ref(top);

	for (int i = 0; i < N; i++) {
		ctx_t *next = i % 2 ? ctx_with_cancel(c)
				    : ctx_with_value(c, key_a, NULL);

		ck_assert_ptr_nonnull(next);
		ctx_unref(c); /* the child keeps it */
		c = next;
	}
	ctx_cancel_cause(top, 32);
	assert_state(c, CTX_CANCELED, 32);
	ctx_release(top);
	ctx_release(c);
}
END_TEST

START_TEST(test_wide_tree)
{
	enum { KIDS = 100, GRAND = 10 };
	static ctx_t *kid[KIDS], *grand[KIDS][GRAND];
	ctx_t *root = ctx_with_cancel(ctx_background());

	for (int i = 0; i < KIDS; i++) {
		kid[i] = make_kind(i % N_DONE_KINDS, root);
		ck_assert_ptr_nonnull(kid[i]);
		for (int j = 0; j < GRAND; j++) {
			grand[i][j] = make_kind(j % N_DONE_KINDS, kid[i]);
			ck_assert_ptr_nonnull(grand[i][j]);
		}
	}
	ctx_cancel_cause(root, 33);
	assert_state(root, CTX_CANCELED, 33);
	for (int i = 0; i < KIDS; i++) {
		assert_state_at(kid[i], CTX_CANCELED, 33, i);
		for (int j = 0; j < GRAND; j++)
			assert_state_at(grand[i][j], CTX_CANCELED, 33,
					i * GRAND + j);
	}
	for (int i = 0; i < KIDS; i++) {
		for (int j = 0; j < GRAND; j++)
			ctx_release(grand[i][j]);
		ctx_release(kid[i]);
	}
	ctx_release(root);
}
END_TEST

START_TEST(test_first_cancel_wins)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *t = ctx_with_timeout_cause(ctx_background(), 30 * CTX_MSEC, 50);

	ctx_cancel_cause(c, 7);
	ctx_cancel_cause(c, 9);
	assert_state(c, CTX_CANCELED, 7);
	ctx_cancel(c);
	assert_state(c, CTX_CANCELED, 7);

	/* A deadline passing later does not overwrite a cancel. */
	ctx_cancel_cause(t, 7);
	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(t, CTX_CANCELED, 7);

	ctx_release(c);
	ctx_release(t);
}
END_TEST

START_TEST(test_parent_after_child)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_with_cancel(p);
	ctx_t *g = ctx_with_value(c, key_a, NULL);
	ctx_t *s = ctx_with_cancel(p);

	ctx_cancel_cause(c, 5);
	ctx_cancel_cause(p, 6);
	assert_state(c, CTX_CANCELED, 5);
	assert_state(g, CTX_CANCELED, 5);
	assert_state(p, CTX_CANCELED, 6);
	assert_state(s, CTX_CANCELED, 6);

	tu_release(s, g, c, p);
}
END_TEST

/* Every kind made under a cancelled parent is done at creation. */
START_TEST(test_child_of_cancelled_parent)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *v = ctx_with_value(p, key_b, NULL);

	ctx_cancel_cause(p, 21);
	for (int k = 0; k < N_DONE_KINDS; k++) {
		ctx_t *c = make_kind(k, p);
		ctx_t *cv = make_kind(k, v);

		ck_assert_ptr_nonnull(c);
		ck_assert_ptr_nonnull(cv);
		assert_state_at(c, CTX_CANCELED, 21, k);
		assert_state_at(cv, CTX_CANCELED, 21, k);
		ctx_release(cv);
		ctx_release(c);
	}
	ctx_release(v);
	ctx_release(p);
}
END_TEST

/* A parent whose deadline passed is done, even if nobody looked yet. */
START_TEST(test_child_of_expired_parent)
{
	ctx_t *p = ctx_with_deadline_cause(ctx_background(),
					   ctx_now() + 20 * CTX_MSEC, 22);

	tu_sleep_ns(60 * CTX_MSEC);
	for (int k = 0; k < N_DONE_KINDS; k++) {
		ctx_t *c = make_kind(k, p);

		ck_assert_ptr_nonnull(c);
		assert_state_at(c, CTX_DEADLINE_EXCEEDED, 22, k);
		ctx_release(c);
	}
	assert_state(p, CTX_DEADLINE_EXCEEDED, 22);
	ctx_release(p);
}
END_TEST

/*
 * The header: "A child of a context that is already done is done at
 * creation with the parent's error and cause" -- also when the child's
 * own deadline is already past (Go's WithDeadlineCause propagates the
 * parent's cancellation before it looks at the deadline).
 */
START_TEST(test_child_of_cancelled_parent_past_deadline)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_cancel_cause(p, 23);

	ctx_t *a = ctx_with_timeout(p, 0);
	ctx_t *b = ctx_with_deadline_cause(p, ctx_now() - CTX_SEC, 99);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	/* Read, release, then assert: a failure leaks nothing (CK_FORK=no). */
	int ea = ctx_err(a), ca = ctx_cause(a);
	int eb = ctx_err(b), cb = ctx_cause(b);
	tu_release(a, b, p);
	ck_assert_int_eq(ea, CTX_CANCELED);
	ck_assert_int_eq(ca, 23);
	ck_assert_int_eq(eb, CTX_CANCELED);
	ck_assert_int_eq(cb, 23);
}
END_TEST

START_TEST(test_later_deadline_ignored)
{
	char buf[256];
	int64_t pd = ctx_now() + HOUR, d = 0;
	ctx_t *p = ctx_with_deadline(ctx_background(), pd);
	ctx_t *a = ctx_with_deadline(p, pd + HOUR);
	ctx_t *b = ctx_with_timeout(p, 3 * HOUR);
	ctx_t *c = ctx_with_deadline_cause(p, pd + 1, 5);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ctx_t *kids[] = { a, b, c };
	for (int i = 0; i < 3; i++) {
		ck_assert(ctx_deadline(kids[i], &d));
		ck_assert_int_eq(d, pd);
		ck_assert_int_gt(ctx_format(kids[i], buf, sizeof(buf)), 0);
		assert_suffix(buf, ").WithCancel");
	}
	/* Cancelled as the parent is: the given cause is not used. */
	ctx_cancel_cause(p, 6);
	assert_state(c, CTX_CANCELED, 6);

	/* When the parent's deadline passes, its cause holds. */
	ctx_t *q = ctx_with_timeout_cause(ctx_background(), 30 * CTX_MSEC, 61);
	ctx_t *qc = ctx_with_timeout_cause(q, HOUR, 62);
	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(qc, CTX_DEADLINE_EXCEEDED, 61);

	tu_release(qc, q, a, b, c, p);
}
END_TEST

START_TEST(test_earlier_deadline_used)
{
	char buf[256];
	int64_t pd = ctx_now() + HOUR, cd = pd - HOUR / 2, d = 0;
	ctx_t *p = ctx_with_deadline(ctx_background(), pd);
	ctx_t *c = ctx_with_deadline(p, cd);
	ctx_t *g = ctx_with_cancel(c);

	ck_assert(ctx_deadline(c, &d));
	ck_assert_int_eq(d, cd);
	ck_assert(ctx_deadline(g, &d));
	ck_assert_int_eq(d, cd);
	ck_assert(ctx_deadline(p, &d));
	ck_assert_int_eq(d, pd);
	ck_assert_int_gt(ctx_format(c, buf, sizeof(buf)), 0);
	assert_prefix(buf, "context.Background.WithDeadline(");
	ck_assert_ptr_nonnull(strstr(buf, ").WithDeadline("));

	/* The child's deadline ends the child, with its cause, not the parent. */
	ctx_t *e = ctx_with_timeout_cause(p, 30 * CTX_MSEC, 63);
	tu_sleep_ns(80 * CTX_MSEC);
	assert_state(e, CTX_DEADLINE_EXCEEDED, 63);
	assert_live(p);

	tu_release(e, g, c, p);
}
END_TEST

START_TEST(test_past_deadline)
{
	ctx_t *bg = ctx_background();
	int64_t now = ctx_now();
	ctx_t *plain[] = {
		ctx_with_deadline(bg, now - CTX_SEC),
		ctx_with_deadline(bg, now),
		ctx_with_deadline(bg, 0),
		ctx_with_deadline(bg, INT64_MIN),
		ctx_with_timeout(bg, 0),
		ctx_with_timeout(bg, -1),
		ctx_with_timeout(bg, INT64_MIN),
	};
	ctx_t *caused[] = {
		ctx_with_deadline_cause(bg, now - 1, 64),
		ctx_with_deadline_cause(bg, INT64_MIN, 64),
		ctx_with_timeout_cause(bg, 0, 64),
		ctx_with_timeout_cause(bg, -5 * CTX_SEC, 64),
	};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		ck_assert_ptr_nonnull(plain[i]);
		ck_assert(has_deadline(plain[i]));
		assert_state_at(plain[i], CTX_DEADLINE_EXCEEDED,
				CTX_DEADLINE_EXCEEDED, i);
		ctx_t *child = ctx_with_cancel(plain[i]);
		assert_state_at(child, CTX_DEADLINE_EXCEEDED,
				CTX_DEADLINE_EXCEEDED, i);
		ctx_release(child);
		ctx_release(plain[i]);
	}
	for (size_t i = 0; i < sizeof(caused) / sizeof(caused[0]); i++) {
		ck_assert_ptr_nonnull(caused[i]);
		assert_state_at(caused[i], CTX_DEADLINE_EXCEEDED, 64, i);
		ctx_t *child = ctx_with_value(caused[i], key_a, NULL);
		assert_state_at(child, CTX_DEADLINE_EXCEEDED, 64, i);
		ctx_release(child);
		ctx_release(caused[i]);
	}
}
END_TEST

START_TEST(test_value_between_cancels)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *v = ctx_with_value(p, key_a, NULL);
	ctx_t *c = ctx_with_cancel(v);
	ctx_t *w = ctx_with_value(c, key_b, NULL);
	ctx_t *g = ctx_with_timeout(w, HOUR);

	ctx_cancel_cause(p, 70);
	assert_state(v, CTX_CANCELED, 70);
	assert_state(c, CTX_CANCELED, 70);
	assert_state(w, CTX_CANCELED, 70);
	assert_state(g, CTX_CANCELED, 70);

	tu_release(g, w, c, v, p);
}
END_TEST

/*
 * No thread is inside the library while the deadline passes (nanosleep
 * only); the first ctx_err after it, on a child that inherited the
 * deadline, must see it, and so must the whole subtree -- but not what
 * hangs under a WithoutCancel.
 */
START_TEST(test_expiry_without_waiter)
{
	ctx_t *a = ctx_with_timeout_cause(ctx_background(), 50 * CTX_MSEC, 42);
	ctx_t *b = ctx_with_cancel(a);
	ctx_t *g = ctx_with_cancel(b);
	ctx_t *v = ctx_with_value(b, key_a, NULL);
	ctx_t *w = ctx_without_cancel(b);
	ctx_t *wc = ctx_with_cancel(w);

	tu_sleep_ns(100 * CTX_MSEC);
	ck_assert_int_eq(ctx_err(b), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_cause(b), 42);
	assert_state(a, CTX_DEADLINE_EXCEEDED, 42);
	assert_state(g, CTX_DEADLINE_EXCEEDED, 42);
	assert_state(v, CTX_DEADLINE_EXCEEDED, 42);
	assert_live(w);
	assert_live(wc);

	tu_release(wc, w, v, g, b, a);
}
END_TEST

START_TEST(test_cancel_child_only)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c1 = ctx_with_timeout(p, HOUR);
	ctx_t *c2 = ctx_with_cancel(p);
	ctx_t *g1 = ctx_with_cancel(c1);
	ctx_t *g2 = ctx_with_cancel(c2);

	ctx_cancel_cause(c1, 8);
	assert_state(c1, CTX_CANCELED, 8);
	assert_state(g1, CTX_CANCELED, 8);
	assert_live(p);
	assert_live(c2);
	assert_live(g2);

	/* The cancelled child left its parent's list: the parent still
	 * cancels what remains, and the cancelled child keeps its cause. */
	ctx_cancel_cause(p, 9);
	assert_state(c2, CTX_CANCELED, 9);
	assert_state(g2, CTX_CANCELED, 9);
	assert_state(c1, CTX_CANCELED, 8);

	tu_release(g1, g2, c1, c2, p);
}
END_TEST

/* Without a cause, ctx_cause is ctx_err: for a cancel and for a deadline;
 * 0 while live. */
START_TEST(test_cause_defaults_to_err)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *t = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	ctx_t *tc = ctx_with_cancel(t);

	ck_assert_int_eq(ctx_cause(c), 0);
	ctx_cancel(c);
	ck_assert_int_eq(ctx_cause(c), ctx_err(c));
	ck_assert_int_eq(ctx_cause(c), CTX_CANCELED);

	tu_sleep_ns(60 * CTX_MSEC);
	ck_assert_int_eq(ctx_cause(tc), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_err(tc), CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_cause(t), ctx_err(t));

	tu_release(tc, t, c);
}
END_TEST

START_TEST(test_deadline_cause_expiry)
{
	ctx_t *d = ctx_with_deadline_cause(ctx_background(),
					   ctx_now() + 30 * CTX_MSEC, 44);
	ctx_t *c = ctx_with_cancel(d);
	ctx_t *v = ctx_with_value(c, key_a, NULL);

	tu_sleep_ns(80 * CTX_MSEC);
	/* Asked through the grandchild first: the cause is still d's. */
	assert_state(v, CTX_DEADLINE_EXCEEDED, 44);
	assert_state(c, CTX_DEADLINE_EXCEEDED, 44);
	assert_state(d, CTX_DEADLINE_EXCEEDED, 44);

	tu_release(v, c, d);
}
END_TEST

/* now + INT64_MAX saturates to "never", not to a wrapped past. */
START_TEST(test_timeout_saturates)
{
	int64_t pd = ctx_now() + HOUR, d = 0;
	ctx_t *a = ctx_with_timeout(ctx_background(), INT64_MAX);
	ctx_t *b = ctx_with_timeout_cause(ctx_background(), INT64_MAX - 1, 5);
	ctx_t *c = ctx_with_deadline(ctx_background(), INT64_MAX);
	ctx_t *p = ctx_with_deadline(ctx_background(), pd);
	ctx_t *pc = ctx_with_timeout(p, INT64_MAX);

	ctx_t *never[] = { a, b, c };
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_nonnull(never[i]);
		ck_assert(!has_deadline(never[i]));
		assert_state_at(never[i], 0, 0, i);
	}
	/* Under a parent with a deadline, the parent's holds. */
	ck_assert(ctx_deadline(pc, &d));
	ck_assert_int_eq(d, pd);
	assert_live(pc);

	tu_release(pc, p, c, b, a);
}
END_TEST

/* ---- the node cache --------------------------------------------------- */

enum { CHURN_THREADS = 8, CHURN_LIVE = 24 };

/* Contexts made and released in batches, so that the thread's cache of
 * freed nodes (base/alloc.c) is full when it exits. */
static void *churn_main(void *arg)
{
	ctx_t *c[CHURN_LIVE];

	(void)arg;
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < CHURN_LIVE; i++)
			c[i] = ctx_with_cancel(ctx_background());
		for (int i = 0; i < CHURN_LIVE; i++)
			ctx_release(c[i]);
	}
	return NULL;
}

static void churn(void)
{
	pthread_t t[CHURN_THREADS];

	for (int i = 0; i < CHURN_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn_main, NULL),
				 0);
	for (int i = 0; i < CHURN_THREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}

/*
 * A thread's cached nodes go back to the heap when it exits: after eight
 * threads that each left a full cache have exited, the heap in use
 * (mallinfo2, every arena) is where it was before them, within less
 * than one thread's cache (16 nodes of 112 bytes).  A first round makes
 * the threads' arenas, which stay.
 */
START_TEST(test_node_cache_exit)
{
#if defined(__SANITIZE_ADDRESS__) || defined(TU_TSAN)
	fprintf(stderr, "test_node_cache_exit: SKIPPED: under a sanitizer "
		"the library caches no node and mallinfo2 counts nothing\n");
	return;
#endif
	if (tu_valgrind()) {
		fprintf(stderr, "test_node_cache_exit: SKIPPED: valgrind's "
			"heap is not glibc's (mallinfo2)\n");
		return;
	}
	const char *debug = getenv("CTX_DEBUG");
	if (debug && *debug && strcmp(debug, "off") != 0) {
		fprintf(stderr, "test_node_cache_exit: SKIPPED: CTX_DEBUG=%s "
			"caches no node (and checks keeps freed ones back)\n",
			debug);
		return;
	}
	churn();
	size_t before = mallinfo2().uordblks;
	churn();
	size_t after = mallinfo2().uordblks;
	ck_assert_msg(after <= before + 1024, "heap in use %zu bytes before "
		      "%d threads, %zu after they exited", before,
		      CHURN_THREADS, after);
}
END_TEST

/* ---- the suite -------------------------------------------------------- */

Suite *suite_context(void)
{
	Suite *s = suite_create("context");
	TCase *tc;

	tc = tu_tcase(s, "api", 30);
	tu_add_tests(tc, test_now_monotonic, test_roots, test_roots_noop,
		     test_with_cancel, test_with_deadline, test_with_timeout,
		     test_cause_constructors, test_with_value,
		     test_without_cancel, test_cancel_cause, test_ref_unref,
		     test_release, test_auto, test_strerror,
		     test_node_cache_exit);

	tc = tu_tcase(s, "semantics", 30);
	tu_add_tests(tc, test_deep_chain, test_very_deep_chain, test_wide_tree,
		     test_first_cancel_wins, test_parent_after_child,
		     test_child_of_cancelled_parent,
		     test_child_of_expired_parent,
		     test_child_of_cancelled_parent_past_deadline,
		     test_later_deadline_ignored, test_earlier_deadline_used,
		     test_past_deadline, test_value_between_cancels,
		     test_expiry_without_waiter, test_cancel_child_only,
		     test_cause_defaults_to_err, test_deadline_cause_expiry,
		     test_timeout_saturates);

	add_context_done_fd(s);
	add_context_values(s);
	add_context_races(s);
	return s;
}
