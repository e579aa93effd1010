/*
 * The context tree: constructors, cancellation, deadlines, values, done
 * descriptors, formatting, bad input and concurrency.
 *
 * Every test runs in a forked child by default, so one crash fails one
 * test; CK_FORK=no runs them all in this process, for valgrind:
 *
 *     CTX_TEST_QUICK=1 CK_FORK=no valgrind --leak-check=full \
 *         --error-exitcode=1 ./tests/check_ctx
 *
 * CTX_TEST_QUICK=1 shrinks the million-context test to QUICK_MANY
 * contexts (a million allocations take minutes under valgrind); the test
 * still runs and asserts, only on fewer contexts.
 *
 * Assertions are made on the test's own thread only: worker threads
 * record what they saw and the test checks it after joining them, since
 * a Check failure must unwind the test's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

/* Test hook of runtime/alloc.c, not in the public header: the allocation
 * after the next n fails, once; -1 turns it off. */
void ctx__fail_malloc_after(long n);

#define HOUR (3600 * CTX_SEC)
#define MANY 1000000L
#define QUICK_MANY 20000L

/* Two keys with equal contents: keys compare by address, so they differ. */
static const char key_a[] = "key";
static const char key_b[] = "key";

/* ---- helpers --------------------------------------------------------- */

/* Macros rather than functions so that a failure names the caller's line. */
#define assert_state(c, e, ca)                                              \
	do {                                                                \
		ctx_t *c__ = (c);                                           \
		ck_assert_int_eq(ctx_err(c__), (e));                        \
		ck_assert_int_eq(ctx_cause(c__), (ca));                     \
	} while (0)

#define assert_live(c) assert_state(c, 0, 0)

/* The same inside loops, naming the element that failed. */
#define assert_state_at(c, e, ca, i)                                        \
	do {                                                                \
		ctx_t *c__ = (c);                                           \
		int err__ = ctx_err(c__), cause__ = ctx_cause(c__);         \
		ck_assert_msg(err__ == (e) && cause__ == (ca),              \
			      "#%ld: err %d cause %d, expected %d and %d",  \
			      (long)(i), err__, cause__, (int)(e),          \
			      (int)(ca));                                   \
	} while (0)

#define assert_prefix(s, p)                                                 \
	ck_assert_msg(strncmp((s), (p), strlen(p)) == 0,                    \
		      "\"%s\" does not start with \"%s\"", (s), (p))

#define assert_suffix(s, x)                                                 \
	ck_assert_msg(strlen(s) >= strlen(x) &&                             \
			      !strcmp((s) + strlen(s) - strlen(x), (x)),    \
		      "\"%s\" does not end with \"%s\"", (s), (x))

/* poll(2) for POLLIN on one descriptor: poll's result, or -2 if it
 * reported the descriptor ready for something other than reading. */
static int poll_in(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n == 1 && !(p.revents & POLLIN))
		return -2;
	return n;
}

/* The number of threads of this process. */
static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2; /* "." and ".." */
}

/* ctx_deadline without caring for the value. */
static bool has_deadline(ctx_t *c)
{
	int64_t d;

	return ctx_deadline(c, &d);
}

/* Whether fd is an open descriptor. */
static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * Ask once for the done fd of a context with a deadline, so whatever the
 * library makes once per process on that path (a timer thread, and any
 * descriptor of its own) exists before a test counts descriptors.
 */
static void warm_up(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_release(c);
}

/* A small deterministic PRNG, so a failing tree shape can be replayed. */

/* Every constructor, by number, so a test can cover them all in a loop. */
enum {
	K_CANCEL,
	K_DEADLINE,
	K_TIMEOUT,
	K_DEADLINE_CAUSE,
	K_TIMEOUT_CAUSE,
	K_VALUE,
	K_WITHOUT,
	N_KINDS,
	N_DONE_KINDS = K_WITHOUT, /* the kinds that follow their parent */
};

#define KIND_CAUSE 4242

static ctx_t *make_kind(int kind, ctx_t *parent)
{
	switch (kind) {
	case K_CANCEL:
		return ctx_with_cancel(parent);
	case K_DEADLINE:
		return ctx_with_deadline(parent, ctx_now() + HOUR);
	case K_TIMEOUT:
		return ctx_with_timeout(parent, HOUR);
	case K_DEADLINE_CAUSE:
		return ctx_with_deadline_cause(parent, ctx_now() + HOUR,
					       KIND_CAUSE);
	case K_TIMEOUT_CAUSE:
		return ctx_with_timeout_cause(parent, HOUR, KIND_CAUSE);
	case K_VALUE:
		return ctx_with_value(parent, key_a, (void *)key_b);
	default:
		return ctx_without_cancel(parent);
	}
}

/* Start n threads running fn(args + i * size); attr keeps stacks small
 * so that a hundred threads stay cheap. */
static void start_threads(pthread_t *t, int n, void *(*fn)(void *),
			  void *args, size_t size)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&t[i], &attr, fn,
						(char *)args + (size_t)i * size),
				 0);
	pthread_attr_destroy(&attr);
}

static void join_threads(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}

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

	ctx_release(dl);
	ctx_release(to);
	ctx_release(c1);
	ctx_release(c2);
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

	ctx_release(cv);
	ctx_release(c);
	ctx_release(v);
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

	ctx_release(wc);
	ctx_release(w);
	ctx_release(p);
	ctx_release(v);
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

	ctx_release(a);
	ctx_release(b);
	ctx_release(c);
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

	ctx_release(s);
	ctx_release(g);
	ctx_release(c);
	ctx_release(p);
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
	ctx_release(a);
	ctx_release(b);
	ctx_release(p);
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

	ctx_release(qc);
	ctx_release(q);
	ctx_release(a);
	ctx_release(b);
	ctx_release(c);
	ctx_release(p);
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

	ctx_release(e);
	ctx_release(g);
	ctx_release(c);
	ctx_release(p);
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

	ctx_release(g);
	ctx_release(w);
	ctx_release(c);
	ctx_release(v);
	ctx_release(p);
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

	ctx_release(wc);
	ctx_release(w);
	ctx_release(v);
	ctx_release(g);
	ctx_release(b);
	ctx_release(a);
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

	ctx_release(g1);
	ctx_release(g2);
	ctx_release(c1);
	ctx_release(c2);
	ctx_release(p);
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

	ctx_release(tc);
	ctx_release(t);
	ctx_release(c);
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

	ctx_release(v);
	ctx_release(c);
	ctx_release(d);
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

	ctx_release(pc);
	ctx_release(p);
	ctx_release(c);
	ctx_release(b);
	ctx_release(a);
}
END_TEST

/* ---- done descriptors ------------------------------------------------- */

/* Level-triggered: readable on every poll, as we never read it. */
START_TEST(test_done_fd_level)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = ctx_done_fd(c);

	ck_assert_int_ge(fd, 0);
	ctx_cancel(c);
	ck_assert_int_eq(poll_in(fd, 0), 1);
	ck_assert_int_eq(poll_in(fd, 0), 1);
	ck_assert_int_eq(poll_in(fd, 1000), 1);
	ctx_release(c);
}
END_TEST

START_TEST(test_done_fd_cancel)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_with_timeout(p, HOUR);
	int pfd = ctx_done_fd(p), cfd = ctx_done_fd(c);

	ck_assert_int_ge(pfd, 0);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_ne(pfd, cfd);
	ck_assert_int_eq(poll_in(pfd, 0), 0);
	ck_assert_int_eq(poll_in(cfd, 0), 0);

	/* Readable as soon as the cancel returns, down the tree. */
	ctx_cancel(p);
	ck_assert_int_eq(poll_in(pfd, 0), 1);
	ck_assert_int_eq(poll_in(cfd, 0), 1);

	/* A descriptor asked for after the end is readable at once. */
	ctx_t *late = ctx_with_cancel(p);
	ck_assert_int_eq(poll_in(ctx_done_fd(late), 0), 1);

	ctx_release(late);
	ctx_release(c);
	ctx_release(p);
}
END_TEST

/* The descriptor turns readable at the deadline while the program only
 * sits in poll(2): the library must do it on its own.  A 50 ms deadline
 * may fire late on a loaded machine, but not early.  Returns the fd. */
static int expect_fires(ctx_t *c, int64_t t0, int cause)
{
	int fd = ctx_done_fd(c);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(poll_in(fd, 10000), 1);
	int64_t dt = ctx_now() - t0;
	ck_assert_int_ge(dt, 40 * CTX_MSEC);
	ck_assert_int_le(dt, 2 * CTX_SEC);
	assert_state(c, CTX_DEADLINE_EXCEEDED, cause);
	return fd;
}

/*
 * The library's timer thread holds a reference while it ends a context,
 * so the last one dropped (and the close) may be its own, a moment after
 * our release.  Wait for it: the descriptor must go, and must be gone
 * before the next test counts descriptors (CK_FORK=no).
 */
static void expect_closed(int fd)
{
	int64_t t0 = ctx_now();

	while (fd_open(fd) && ctx_now() - t0 < 2 * CTX_SEC)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_msg(!fd_open(fd), "fd %d still open", fd);
}

START_TEST(test_done_fd_deadline)
{
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	int fd = expect_fires(c, t0, CTX_DEADLINE_EXCEEDED);

	ctx_release(c);
	expect_closed(fd);
}
END_TEST

/* The same through a child that inherits the deadline and through a
 * value context: the one that owns the deadline is ended. */
START_TEST(test_done_fd_deadline_inherited)
{
	int64_t t0 = ctx_now();
	ctx_t *t = ctx_with_timeout_cause(ctx_background(), 50 * CTX_MSEC, 45);
	ctx_t *c = ctx_with_cancel(t);
	ctx_t *v = ctx_with_value(c, key_a, NULL);

	int fd = expect_fires(v, t0, 45);
	assert_state(t, CTX_DEADLINE_EXCEEDED, 45);
	ctx_release(v);
	ctx_release(c);
	ctx_release(t);
	expect_closed(fd);
}
END_TEST

START_TEST(test_done_fd_same)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *v = ctx_with_value(c, key_a, NULL);
	ctx_t *vv = ctx_with_value(v, key_b, NULL);
	int fd = ctx_done_fd(c);

	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(ctx_done_fd(c), fd);
	/* A value context has no state of its own: its ancestor's fd. */
	ck_assert_int_eq(ctx_done_fd(v), fd);
	ck_assert_int_eq(ctx_done_fd(vv), fd);
	ctx_cancel(c);
	ck_assert_int_eq(ctx_done_fd(c), fd);
	ck_assert_int_eq(ctx_done_fd(vv), fd);

	ctx_release(vv);
	ctx_release(v);
	ctx_release(c);
}
END_TEST

/* A context that can never be done has no descriptor, like Go's nil
 * channel: -1 with errno 0. */
START_TEST(test_done_fd_never)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *w = ctx_without_cancel(c);
	ctx_t *never[] = {
		ctx_background(),
		ctx_todo(),
		ctx_with_value(ctx_background(), key_a, NULL),
		ctx_with_value(ctx_todo(), key_a, NULL),
		w,
		ctx_with_value(w, key_b, NULL),
	};
	int base = tu_count_fds();

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		ck_assert_ptr_nonnull(never[i]);
		errno = EBADF;
		ck_assert_int_eq(ctx_done_fd(never[i]), -1);
		ck_assert_msg(errno == 0, "#%zu: errno %d", i, errno);
	}
	ck_assert_int_eq(tu_count_fds(), base);
	for (size_t i = 2; i < sizeof(never) / sizeof(never[0]); i++)
		ctx_release(never[i]);
	ctx_release(c);
}
END_TEST

/* ctx_can_end tells the same contexts apart, without a descriptor:
 * false for those that can never be done, true for every other, done
 * or live (a value context over one that can end, too). */
START_TEST(test_can_end)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *w = ctx_without_cancel(c);
	ctx_t *never[] = { ctx_background(), ctx_todo(), w,
			   ctx_with_value(ctx_todo(), key_a, NULL),
			   ctx_with_value(w, key_b, NULL) };
	ctx_t *can[] = { c, ctx_with_timeout(w, HOUR),
			 ctx_with_value(c, key_a, NULL),
			 ctx_with_cancel(ctx_todo()) };
	int base = tu_count_fds();

	ck_assert(!ctx_can_end(NULL));
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		ck_assert_msg(!ctx_can_end(never[i]), "never #%zu", i);
	for (size_t i = 0; i < sizeof(can) / sizeof(can[0]); i++)
		ck_assert_msg(ctx_can_end(can[i]), "can #%zu", i);
	ctx_cancel(can[3]);
	ck_assert(ctx_can_end(can[3])); /* done: it could end, and did */
	ck_assert_int_eq(tu_count_fds(), base);
	for (size_t i = 3; i < sizeof(never) / sizeof(never[0]); i++)
		ctx_release(never[i]);
	for (size_t i = 1; i < sizeof(can) / sizeof(can[0]); i++)
		ctx_release(can[i]);
	ctx_release(w);
	ctx_release(c);
}
END_TEST

START_TEST(test_done_fd_cloexec)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	int fd = ctx_done_fd(c);

	ck_assert_int_ge(fd, 0);
	int flags = fcntl(fd, F_GETFD);
	ck_assert_int_ne(flags, -1);
	ck_assert_int_eq(flags & FD_CLOEXEC, FD_CLOEXEC);
	ctx_release(c);
}
END_TEST

/* Freed contexts close their descriptors: plain, with a deadline (the
 * library's timer holds it until cancelled) and inheriting one. */
START_TEST(test_done_fd_closed_on_free)
{
	warm_up();
	int base = tu_count_fds();
	ctx_t *p = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *c[] = {
		ctx_with_cancel(ctx_background()),
		ctx_with_timeout(ctx_background(), HOUR),
		ctx_with_cancel(p),
	};
	int fd[3];

	for (int i = 0; i < 3; i++) {
		fd[i] = ctx_done_fd(c[i]);
		ck_assert_int_ge(fd[i], 0);
	}
	ck_assert_int_eq(tu_count_fds(), base + 3);
	for (int i = 0; i < 3; i++) {
		ctx_release(c[i]);
		expect_closed(fd[i]);
		ck_assert_int_eq(tu_settle_fds(base + 2 - i, 2 * CTX_SEC),
				 base + 2 - i);
	}
	ctx_release(p);

	/* Many, to catch a leak per context. */
	enum { N = 500 };
	static ctx_t *many[N];
	for (int i = 0; i < N; i++) {
		many[i] = make_kind(i % N_DONE_KINDS, ctx_background());
		ck_assert_ptr_nonnull(many[i]);
		if (i % N_DONE_KINDS != K_VALUE)
			ck_assert_int_ge(ctx_done_fd(many[i]), 0);
	}
	for (int i = 0; i < N; i++)
		ctx_release(many[i]);
	ck_assert_int_eq(tu_settle_fds(base, 2 * CTX_SEC), base);
}

/* When no descriptor can be made: -1 with errno set, the context
 * unharmed, and a later call with room again works. */
START_TEST(test_done_fd_emfile)
{
	struct rlimit old, low;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	warm_up();
	/* Every descriptor below the lowest free one is taken: a limit
	 * there leaves no room for one more. */
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_gt(lowest, 0);
	close(lowest);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	errno = 0;
	int fd = ctx_done_fd(c);
	int e = errno;
	/* Restored before asserting, so a failure leaves the limit alone. */
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(e, EMFILE);
	assert_live(c);

	fd = ctx_done_fd(c);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(poll_in(fd, 0), 0);
	ctx_cancel(c);
	ck_assert_int_eq(poll_in(fd, 0), 1);
	ctx_release(c);
}
END_TEST

/* ---- values ---------------------------------------------------------- */

START_TEST(test_value_nearest_wins)
{
	static int k, other;
	int v1, v2, v3;
	ctx_t *a = ctx_with_value(ctx_background(), &k, &v1);
	ctx_t *b = ctx_with_value(a, &k, &v2);
	ctx_t *c = ctx_with_cancel(b);
	ctx_t *d = ctx_with_value(c, &other, &v3);
	ctx_t *e = ctx_with_value(d, &k, NULL);

	ck_assert_ptr_eq(ctx_value(a, &k), &v1);
	ck_assert_ptr_eq(ctx_value(b, &k), &v2);
	ck_assert_ptr_eq(ctx_value(c, &k), &v2);
	ck_assert_ptr_eq(ctx_value(d, &k), &v2);
	ck_assert_ptr_eq(ctx_value(d, &other), &v3);
	ck_assert_ptr_null(ctx_value(b, &other));
	/* A NULL value is a value: it hides the ones further up. */
	ck_assert_ptr_null(ctx_value(e, &k));
	ck_assert_ptr_eq(ctx_value(e, &other), &v3);

	ctx_release(e);
	ctx_release(d);
	ctx_release(c);
	ctx_release(b);
	ctx_release(a);
}
END_TEST

START_TEST(test_value_key_by_address)
{
	int va, vb;
	ctx_t *a = ctx_with_value(ctx_background(), key_a, &va);
	ctx_t *b = ctx_with_value(ctx_background(), key_b, &vb);

	ck_assert_ptr_ne(key_a, key_b);
	ck_assert_str_eq(key_a, key_b);
	ck_assert_ptr_eq(ctx_value(a, key_a), &va);
	ck_assert_ptr_null(ctx_value(a, key_b));
	ck_assert_ptr_eq(ctx_value(b, key_b), &vb);
	ck_assert_ptr_null(ctx_value(b, key_a));
	/* A NULL key is an address too. */
	ck_assert_ptr_null(ctx_value(a, NULL));

	ctx_release(a);
	ctx_release(b);
}
END_TEST

START_TEST(test_value_survives_cancel)
{
	int val;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *v = ctx_with_value(c, key_a, &val);
	ctx_t *g = ctx_with_cancel(v);

	ctx_cancel(c);
	ck_assert_ptr_eq(ctx_value(v, key_a), &val);
	ck_assert_ptr_eq(ctx_value(g, key_a), &val);
	ctx_release(g);
	ck_assert_ptr_eq(ctx_value(v, key_a), &val);

	ctx_release(v);
	ctx_release(c);
}
END_TEST

/* WithoutCancel over an already cancelled parent: values kept, never
 * done, no deadline, no descriptor, and cancelling it is a no-op. */
START_TEST(test_without_cancel_of_cancelled)
{
	int val;
	ctx_t *v = ctx_with_value(ctx_background(), key_a, &val);
	ctx_t *p = ctx_with_timeout(v, HOUR);

	ctx_cancel_cause(p, 12);
	ctx_t *w = ctx_without_cancel(p);
	ck_assert_ptr_nonnull(w);
	assert_live(w);
	ck_assert(!has_deadline(w));
	ck_assert_ptr_eq(ctx_value(w, key_a), &val);
	errno = EBADF;
	ck_assert_int_eq(ctx_done_fd(w), -1);
	ck_assert_int_eq(errno, 0);
	ctx_cancel(w);
	assert_live(w);

	ctx_t *c = ctx_with_cancel(w);
	assert_live(c);
	ck_assert_ptr_eq(ctx_value(c, key_a), &val);

	ctx_release(c);
	ctx_release(w);
	ctx_release(p);
	ctx_release(v);
}
END_TEST

/* A child keeps its parent alive after the parent's creator lets go
 * (valgrind reports a use-after-free otherwise); the parent's done fd
 * shows when it is finally freed. */
START_TEST(test_child_keeps_parent)
{
	char buf[256];
	int val;
	ctx_t *v = ctx_with_value(ctx_background(), key_a, &val);
	ctx_t *c = ctx_with_cancel(v);

	ctx_release(v);
	assert_live(c);
	ck_assert_ptr_eq(ctx_value(c, key_a), &val);
	ck_assert_int_gt(ctx_format(c, buf, sizeof(buf)), 0);
	assert_prefix(buf, "context.Background.WithValue(");
	assert_suffix(buf, ").WithCancel");
	ctx_release(c);

	ctx_t *p = ctx_with_cancel(ctx_background());
	int pfd = ctx_done_fd(p);
	ctx_t *pv = ctx_with_value(p, key_b, &val);
	ctx_t *g = ctx_with_cancel(pv);
	int base = tu_count_fds();

	ctx_unref(p); /* unref, not release: p stays live */
	ctx_unref(pv);
	assert_live(g);
	ck_assert_ptr_eq(ctx_value(g, key_b), &val);
	ck_assert(fd_open(pfd));
	ck_assert_int_eq(poll_in(pfd, 0), 0);
	ctx_cancel(g);
	ck_assert_int_eq(poll_in(pfd, 0), 0); /* g's cancel stays below p */

	ctx_release(g); /* frees g, pv and p */
	ck_assert(!fd_open(pfd));
	ck_assert_int_eq(tu_count_fds(), base - 1);
}
END_TEST

/* ---- resources -------------------------------------------------------- */

/* Creating and cancelling contexts with deadlines is user-space work:
 * no descriptor, no thread. */
START_TEST(test_no_fd_no_thread)
{
	enum { N = 10000 };
	static ctx_t *c[N];
	int fds = tu_count_fds(), tasks = count_tasks();
	ctx_t *root = ctx_with_cancel(ctx_background());

	ck_assert_int_gt(tasks, 0);
	for (int i = 0; i < N; i++) {
		c[i] = i % 2 ? ctx_with_timeout(root, HOUR + i)
			     : ctx_with_deadline_cause(root, ctx_now() + HOUR,
						       i);
		ck_assert_ptr_nonnull(c[i]);
	}
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(count_tasks(), tasks);

	/* Half one by one, half through the root. */
	for (int i = 0; i < N / 2; i++)
		ctx_cancel(c[i]);
	ctx_cancel(root);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(ctx_err(c[i]), CTX_CANCELED);
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(count_tasks(), tasks);

	for (int i = 0; i < N; i++)
		ctx_release(c[i]);
	ctx_release(root);
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(count_tasks(), tasks);
}
END_TEST

/*
 * A million live contexts with deadlines under a 1024-descriptor limit:
 * a deadline must cost no descriptor.  Half are released one by one
 * (unhooked from the root's list), the rest cancelled through the root.
 */
START_TEST(test_million_contexts)
{
	long n = tu_quick() ? QUICK_MANY : MANY;
	struct rlimit old, low;
	ctx_t **c = malloc((size_t)n * sizeof(*c));

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	if (low.rlim_cur == RLIM_INFINITY || low.rlim_cur > 1024)
		low.rlim_cur = 1024;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);

	int fds = tu_count_fds(), tasks = count_tasks();
	ctx_t *root = ctx_with_cancel(ctx_background());
	for (long i = 0; i < n; i++) {
		c[i] = ctx_with_timeout(root, HOUR);
		if (!c[i])
			ck_abort_msg("context #%ld: errno %d", i, errno);
	}
	ck_assert_int_eq(tu_count_fds(), fds);
	ck_assert_int_eq(count_tasks(), tasks);
	for (long i = 0; i < n; i += n / 100)
		assert_state_at(c[i], 0, 0, i);

	for (long i = 0; i < n / 2; i++)
		ctx_release(c[i]);
	ctx_cancel_cause(root, 17);
	for (long i = n / 2; i < n; i += n / 100)
		assert_state_at(c[i], CTX_CANCELED, 17, i);
	for (long i = n / 2; i < n; i++)
		ctx_release(c[i]);
	ctx_release(root);
	ck_assert_int_eq(tu_count_fds(), fds);

	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	free(c);
}
END_TEST

/* ---- bad input -------------------------------------------------------- */

START_TEST(test_null_parent)
{
	errno = 0;
	ck_assert_ptr_null(make_kind(_i, NULL));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/*
 * A failed allocation leaves nothing behind: NULL with ENOMEM, and the
 * parent as it was.  Were a half-built child hung on the parent, the
 * cancel below would touch freed memory (valgrind); were a reference
 * taken on the parent, its release would not free it, and its done fd
 * would stay open.
 */
START_TEST(test_out_of_memory)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	int fd = ctx_done_fd(p);
	int base = tu_count_fds();

	ck_assert_int_ge(fd, 0);
	ctx__fail_malloc_after(0);
	errno = 0;
	ctx_t *c = make_kind(_i, p);
	ctx__fail_malloc_after(-1);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(errno, ENOMEM);
	assert_live(p);

	/* The failure was one-shot. */
	c = make_kind(_i, p);
	ck_assert_ptr_nonnull(c);
	ctx_release(c);

	ctx_cancel_cause(p, 13);
	assert_state(p, CTX_CANCELED, 13);
	ck_assert_int_eq(poll_in(fd, 0), 1);
	ctx_release(p);
	ck_assert(!fd_open(fd));
	ck_assert_int_eq(tu_count_fds(), base - 1);
}
END_TEST

/* With n = 1 the second allocation fails: the first child is whole. */
START_TEST(test_out_of_memory_later)
{
	ctx_t *p = ctx_with_cancel(ctx_background());

	ctx__fail_malloc_after(1);
	ctx_t *a = ctx_with_cancel(p);
	errno = 0;
	ctx_t *b = ctx_with_value(a, key_a, NULL);
	int e = errno;
	ctx__fail_malloc_after(-1);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(e, ENOMEM);
	ctx_cancel_cause(p, 14);
	assert_state(a, CTX_CANCELED, 14);
	ctx_release(a);
	ctx_release(p);
}
END_TEST

/* Nothing to cancel: the call does nothing, and reaches no ancestor. */
START_TEST(test_cancel_noop)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *w = ctx_without_cancel(p);
	ctx_t *n[] = {
		ctx_background(),
		ctx_todo(),
		ctx_with_value(ctx_background(), key_a, NULL),
		ctx_with_value(ctx_todo(), key_a, NULL),
		ctx_without_cancel(ctx_background()),
		w,
		ctx_with_value(w, key_b, NULL),
	};
	size_t len = sizeof(n) / sizeof(n[0]);

	for (size_t i = 0; i < len; i++) {
		ck_assert_ptr_nonnull(n[i]);
		ctx_cancel(n[i]);
		ctx_cancel_cause(n[i], 15);
		assert_state_at(n[i], 0, 0, i);
	}
	assert_live(p);
	for (size_t i = 2; i < len; i++)
		ctx_release(n[i]);
	assert_live(p);
	ctx_release(p);
}
END_TEST

START_TEST(test_null_context)
{
	char buf[16] = "untouched";
	int64_t d = 1234;

	ctx_release(NULL);
	ctx_unref(NULL);
	ck_assert_ptr_null(ctx_ref(NULL));
	ck_assert_int_eq(ctx_err(NULL), EINVAL);
	ck_assert_int_eq(ctx_cause(NULL), EINVAL);
	ck_assert_ptr_null(ctx_value(NULL, key_a));
	ck_assert(!ctx_deadline(NULL, &d));
	ck_assert_int_eq(d, 1234);
	errno = 0;
	ck_assert_int_eq(ctx_done_fd(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(ctx_format(NULL, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(ctx_format(NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- format ----------------------------------------------------------- */

/* ctx_format into buf, checking the return is the length written. */
static void format(ctx_t *c, char *buf, size_t len)
{
	int n = ctx_format(c, buf, len);

	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(n, (int)strlen(buf));
}

START_TEST(test_format_kinds)
{
	char buf[512];
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *d = ctx_with_timeout(ctx_background(), HOUR);
	ctx_t *v = ctx_with_value(ctx_todo(), key_a, NULL);
	ctx_t *w = ctx_without_cancel(ctx_background());

	format(ctx_background(), buf, sizeof(buf));
	ck_assert_str_eq(buf, "context.Background");
	format(ctx_todo(), buf, sizeof(buf));
	ck_assert_str_eq(buf, "context.TODO");
	format(c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "context.Background.WithCancel");
	format(d, buf, sizeof(buf));
	assert_prefix(buf, "context.Background.WithDeadline(");
	assert_suffix(buf, ")");
	format(v, buf, sizeof(buf));
	assert_prefix(buf, "context.TODO.WithValue(");
	assert_suffix(buf, ")");
	format(w, buf, sizeof(buf));
	ck_assert_str_eq(buf, "context.Background.WithoutCancel");

	ctx_release(w);
	ctx_release(v);
	ctx_release(d);
	ctx_release(c);
}
END_TEST

/* The chain, root first, every link in order. */
START_TEST(test_format_chain)
{
	char buf[512];
	ctx_t *a = ctx_with_cancel(ctx_todo());
	ctx_t *b = ctx_with_value(a, key_a, NULL);
	ctx_t *c = ctx_with_timeout(b, HOUR);
	ctx_t *d = ctx_without_cancel(c);
	ctx_t *e = ctx_with_cancel(d);

	format(e, buf, sizeof(buf));
	assert_prefix(buf, "context.TODO.WithCancel.WithValue(");
	char *dl = strstr(buf, ").WithDeadline(");
	ck_assert_ptr_nonnull(dl);
	assert_suffix(dl, ").WithoutCancel.WithCancel");

	ctx_release(e);
	ctx_release(d);
	ctx_release(c);
	ctx_release(b);
	ctx_release(a);
}
END_TEST

/* snprintf-like: the full length, whatever fits, always terminated. */
START_TEST(test_format_truncates)
{
	const char *full = "context.Background.WithCancel";
	int want = (int)strlen(full);
	char buf[64];
	ctx_t *c = ctx_with_cancel(ctx_background());

	ck_assert_int_eq(ctx_format(c, NULL, 0), want);
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(ctx_format(c, buf, 0), want);
	ck_assert_int_eq(buf[0], 'x'); /* len 0: nothing written */

	for (size_t len = 1; len <= (size_t)want + 1; len++) {
		memset(buf, 'x', sizeof(buf));
		ck_assert_int_eq(ctx_format(c, buf, len), want);
		ck_assert_int_eq(strlen(buf), len - 1);
		ck_assert_int_eq(strncmp(buf, full, len - 1), 0);
		ck_assert_int_eq(buf[len], 'x'); /* nothing past len */
	}
	ctx_release(c);
}
END_TEST

/* A deep chain's text is longer than any small buffer: the needed
 * length is still right. */
START_TEST(test_format_long)
{
	enum { N = 200 };
	static const char link[] = ".WithCancel";
	ctx_t *c[N];
	char small[8];

	c[0] = ctx_with_cancel(ctx_background());
	for (int i = 1; i < N; i++)
		c[i] = ctx_with_cancel(c[i - 1]);
	int want = (int)(strlen("context.Background") + N * strlen(link));
	ck_assert_int_eq(ctx_format(c[N - 1], NULL, 0), want);
	ck_assert_int_eq(ctx_format(c[N - 1], small, sizeof(small)), want);
	ck_assert_str_eq(small, "context");

	char *buf = malloc((size_t)want + 1);
	ck_assert_ptr_nonnull(buf);
	format(c[N - 1], buf, (size_t)want + 1);
	assert_suffix(buf, ".WithCancel.WithCancel");
	free(buf);
	for (int i = 0; i < N; i++)
		ctx_release(c[i]);
}
END_TEST

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
		ctx_release(v);
		ctx_release(g);
		ctx_release(c);
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
		ctx_release(v);
		ctx_release(g);
		ctx_release(c);
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
	warm_up();
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

/* ---- the suite -------------------------------------------------------- */


Suite *suite_context(void)
{
	Suite *s = suite_create("context");
	TCase *tc;

	tc = tu_tcase(s, "api", 30);
	tcase_add_test(tc, test_now_monotonic);
	tcase_add_test(tc, test_roots);
	tcase_add_test(tc, test_roots_noop);
	tcase_add_test(tc, test_with_cancel);
	tcase_add_test(tc, test_with_deadline);
	tcase_add_test(tc, test_with_timeout);
	tcase_add_test(tc, test_cause_constructors);
	tcase_add_test(tc, test_with_value);
	tcase_add_test(tc, test_without_cancel);
	tcase_add_test(tc, test_cancel_cause);
	tcase_add_test(tc, test_ref_unref);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_auto);
	tcase_add_test(tc, test_strerror);

	tc = tu_tcase(s, "semantics", 30);
	tcase_add_test(tc, test_deep_chain);
	tcase_add_test(tc, test_very_deep_chain);
	tcase_add_test(tc, test_wide_tree);
	tcase_add_test(tc, test_first_cancel_wins);
	tcase_add_test(tc, test_parent_after_child);
	tcase_add_test(tc, test_child_of_cancelled_parent);
	tcase_add_test(tc, test_child_of_expired_parent);
	tcase_add_test(tc, test_child_of_cancelled_parent_past_deadline);
	tcase_add_test(tc, test_later_deadline_ignored);
	tcase_add_test(tc, test_earlier_deadline_used);
	tcase_add_test(tc, test_past_deadline);
	tcase_add_test(tc, test_value_between_cancels);
	tcase_add_test(tc, test_expiry_without_waiter);
	tcase_add_test(tc, test_cancel_child_only);
	tcase_add_test(tc, test_cause_defaults_to_err);
	tcase_add_test(tc, test_deadline_cause_expiry);
	tcase_add_test(tc, test_timeout_saturates);

	tc = tu_tcase(s, "done_fd", 30);
	tcase_add_test(tc, test_done_fd_level);
	tcase_add_test(tc, test_done_fd_cancel);
	tcase_add_test(tc, test_done_fd_deadline);
	tcase_add_test(tc, test_done_fd_deadline_inherited);
	tcase_add_test(tc, test_done_fd_same);
	tcase_add_test(tc, test_done_fd_never);
	tcase_add_test(tc, test_can_end);
	tcase_add_test(tc, test_done_fd_cloexec);
	tcase_add_test(tc, test_done_fd_closed_on_free);
	tcase_add_test(tc, test_done_fd_emfile);

	tc = tu_tcase(s, "values", 30);
	tcase_add_test(tc, test_value_nearest_wins);
	tcase_add_test(tc, test_value_key_by_address);
	tcase_add_test(tc, test_value_survives_cancel);
	tcase_add_test(tc, test_without_cancel_of_cancelled);
	tcase_add_test(tc, test_child_keeps_parent);

	tc = tu_tcase(s, "resources", 30);
	tcase_add_test(tc, test_no_fd_no_thread);

	tc = tu_tcase(s, "million", 120);
	tcase_add_test(tc, test_million_contexts);

	tc = tu_tcase(s, "bad_input", 30);
	tcase_add_loop_test(tc, test_null_parent, 0, N_KINDS);
	tcase_add_loop_test(tc, test_out_of_memory, 0, N_KINDS);
	tcase_add_test(tc, test_out_of_memory_later);
	tcase_add_test(tc, test_cancel_noop);
	tcase_add_test(tc, test_null_context);

	tc = tu_tcase(s, "format", 30);
	tcase_add_test(tc, test_format_kinds);
	tcase_add_test(tc, test_format_chain);
	tcase_add_test(tc, test_format_truncates);
	tcase_add_test(tc, test_format_long);

	tc = tu_tcase(s, "concurrency", 60);
	tcase_add_test(tc, test_race_cancel_create);
	tcase_add_test(tc, test_race_tree);
	tcase_add_test(tc, test_race_cause_visible);
	tcase_add_test(tc, test_race_shared_parent);
	tcase_add_test(tc, test_race_deadline);
	tcase_add_test(tc, test_race_done_fd);

	return s;
}
