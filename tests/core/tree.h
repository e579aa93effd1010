/*
 * Helpers shared by the suites of the context tree (tests/core/: the
 * context suite's files context.c, done_fd.c, values.c and races.c).
 */
#ifndef CTX_TEST_TREE_H
#define CTX_TEST_TREE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

#define HOUR (3600 * CTX_SEC)

/* Two keys with equal contents: keys compare by address, so they differ. */
static const char key_a[] = "key";
static const char key_b[] = "key";

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
static inline int poll_in(int fd, int timeout_ms)
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

/* The number of threads of this process, under ThreadSanitizer too
 * (its own thread included). */
static inline int count_tasks(void)
{
	return tu_count_dir("/proc/self/task");
}

/* ctx_deadline without caring for the value. */
static inline bool has_deadline(ctx_t *c)
{
	int64_t d;

	return ctx_deadline(c, &d);
}

/* Whether fd is an open descriptor. */
static inline bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/*
 * Ask once for the done fd of a context with a deadline, so whatever the
 * library makes once per process on that path (a timer thread, and any
 * descriptor of its own) exists before a test counts descriptors.
 */
static inline void warm_done_fd(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_release(c);
}

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

static inline ctx_t *make_kind(int kind, ctx_t *parent)
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
static inline void start_threads(pthread_t *t, int n, void *(*fn)(void *),
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

static inline void join_threads(pthread_t *t, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}

#endif
