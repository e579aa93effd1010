/*
 * One implementation of contexts as the benchmarks drive it.  Every
 * scenario of bench_impls is written once over this table, so that what
 * differs between the columns of a row is the implementation and nothing
 * else.  The implementations:
 *
 *   libctx      the library (impls.c)
 *   condvar     a mutex, a condition variable and a flag per context
 *               (condctx.c); condvar-1ms is the same with 1 ms slices
 *   stop_token  std::stop_source and std::condition_variable_any
 *               (stoptoken.cc, a shared object built and loaded at run
 *               time when a C++20 compiler is there)
 *   nsync       Google's nsync notes (impls.c, where configure found nsync)
 *   floor       the kernel mechanism with nothing on top: an eventfd per
 *               context, a timerfd for a deadline, epoll_wait to wait
 *               (impls.c); floor-each, only for the fan-out rows: an
 *               eventfd per waiting thread, each written by the cancel
 *
 * Contexts and threads are void pointers; every function keeps the
 * meaning of its libctx counterpart (include/ctx.h), errors being
 * ECANCELED and ETIMEDOUT.  Time is CLOCK_MONOTONIC ns.  An operation an
 * implementation cannot do is NULL (nsync cannot read or join), and a
 * scenario that needs it leaves that implementation out.
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
	/* slice_ns: how often a polling implementation looks at the
	 * context while the descriptor stays silent (others ignore it). */
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len,
			int64_t slice_ns);
	/* A thread running fn(arg) that holds a reference to ctx. */
	int (*thread_create)(void **thread, void *ctx, void *(*fn)(void *arg),
			     void *arg);
	/* 0: joined; the context's error: not joined, thread still valid. */
	int (*thread_join)(void *ctx, void *thread, void **result);
	int64_t slice_ns; /* what read is given; 0: it does not poll */
};

extern const struct bench_impl bench_libctx, bench_condvar,
	bench_condvar_1ms, bench_floor, bench_floor_each, bench_nsync;

/* The implementations this build has, in the tables' column order, the
 * stop_token one loaded from plugin (NULL: left out); NULL-terminated. */
const struct bench_impl *const *bench_impls_load(const char *plugin);

/* What the shared object built from stoptoken.cc exports. */
#define BENCH_STOPTOKEN_SYMBOL "bench_stoptoken_impl"
typedef const struct bench_impl *(*bench_impl_getter)(void);

#ifdef __cplusplus
}
#endif

#endif
