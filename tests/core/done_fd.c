/*
 * Done descriptors (ctx_done_fd): level-triggered, readable once the
 * context is done -- also at a deadline nobody waits for -- one per
 * context, never for one that cannot end, close-on-exec, closed when the
 * context is freed, and EMFILE; ctx_can_end, which tells the contexts
 * that cannot end apart without one.
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

	tu_release(late, c, p);
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
	tu_release(v, c, t);
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

	tu_release(vv, v, c);
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
	warm_done_fd();
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
	struct rlimit old;
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	warm_done_fd();
	tu_limit_fds(0, &old);
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

void add_context_done_fd(Suite *s)
{
	TCase *tc;

	tc = tu_tcase(s, "done_fd", 30);
	tu_add_tests(tc, test_done_fd_level, test_done_fd_cancel,
		     test_done_fd_deadline, test_done_fd_deadline_inherited,
		     test_done_fd_same, test_done_fd_never, test_can_end,
		     test_done_fd_cloexec, test_done_fd_closed_on_free,
		     test_done_fd_emfile);
}
