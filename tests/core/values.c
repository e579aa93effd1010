/*
 * Values (nearest wins, keys by address, kept through cancels), what a
 * context costs (no descriptor, no thread; a million of them), bad input
 * (NULL, out of memory at every constructor) and ctx_format.
 *
 * CTX_TEST_QUICK=1 shrinks the million-context test to QUICK_MANY
 * contexts (a million allocations take minutes under valgrind).
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
#include "hooks.h"
#include "suites.h"

#define MANY 1000000L
#define QUICK_MANY 20000L

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

	tu_release(e, d, c, b, a);
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

	tu_release(c, w, p, v);
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

	tu_release(w, v, d, c);
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

	tu_release(e, d, c, b, a);
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

void add_context_values(Suite *s)
{
	TCase *tc;

	tc = tu_tcase(s, "values", 30);
	tu_add_tests(tc, test_value_nearest_wins, test_value_key_by_address,
		     test_value_survives_cancel,
		     test_without_cancel_of_cancelled,
		     test_child_keeps_parent);

	tc = tu_tcase(s, "resources", 30);
	tcase_add_test(tc, test_no_fd_no_thread);

	tc = tu_tcase(s, "million", 120);
	tcase_add_test(tc, test_million_contexts);

	tc = tu_tcase(s, "bad_input", 30);
	tcase_add_loop_test(tc, test_null_parent, 0, N_KINDS);
	tcase_add_loop_test(tc, test_out_of_memory, 0, N_KINDS);
	tu_add_tests(tc, test_out_of_memory_later, test_cancel_noop,
		     test_null_context);

	tc = tu_tcase(s, "format", 30);
	tu_add_tests(tc, test_format_kinds, test_format_chain,
		     test_format_truncates, test_format_long);
}
