/*
 * One context implementation as bench_condvar drives it: libctx, the
 * condvar context of condctx.c, and -- when a C++20 compiler built
 * stoptoken.cc into a shared object -- std::stop_token.  The same
 * benchmark code runs each through this table, so that what differs
 * between the columns is the implementation and nothing else.
 *
 * Contexts are void pointers here; every function keeps the meaning of
 * its libctx counterpart (include/ctx.h).  Time is CLOCK_MONOTONIC ns.
 */
#ifndef BENCH_IMPL_H
#define BENCH_IMPL_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_impl {
	const char *name;
	void *(*background)(void);
	void *(*with_cancel)(void *parent);
	void *(*with_deadline)(void *parent, int64_t deadline_ns);
	void (*cancel)(void *ctx);
	void (*release)(void *ctx);               /* cancel + unref */
	int (*err)(void *ctx);
	int (*wait)(void *ctx);
	int (*sleep)(void *ctx, int64_t duration_ns);
	/* slice_ns: how often a polling implementation re-checks the
	 * context while the descriptor stays silent (libctx ignores it). */
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len,
			int64_t slice_ns);
	/* A thread running fn(arg) that holds a reference to ctx. */
	int (*thread_create)(void **thread, void *ctx, void *(*fn)(void *arg),
			     void *arg);
	/* 0: joined; the context's error: not joined, thread still valid. */
	int (*thread_join)(void *ctx, void *thread, void **result);
};

/* What the shared object built from stoptoken.cc exports. */
#define BENCH_STOPTOKEN_SYMBOL "bench_stoptoken_impl"
typedef const struct bench_impl *(*bench_impl_getter)(void);

#ifdef __cplusplus
}
#endif

#endif
