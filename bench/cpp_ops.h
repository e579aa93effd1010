/*
 * The C++ side of bench_cpp (bench/cpp_ops.cc, C++20): what bench_cpp.c
 * times through <ctx.hpp> and the standard library, behind C functions
 * so that the C side keeps the one runner and output format of
 * bench/benchutil.h.
 */
#ifndef CTX_BENCH_CPP_OPS_H
#define CTX_BENCH_CPP_OPS_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* n times: ctx::with_timeout(background, 1 h), then its destructor. */
void bench_cpp_create(uint64_t n);

/* A thread that blocks until it is stopped, one way per impl:
 *  BENCH_CPP_JTHREAD_READ  a std::jthread in ctx_read on a silent pipe
 *                          under ctx::with_stop_token; request_stop()
 *  BENCH_CPP_CV_ANY        a std::jthread in
 *                          std::condition_variable_any::wait(lock,
 *                          token, pred); request_stop()
 *  BENCH_CPP_C_CANCEL      a thread in ctx_read on a silent pipe under
 *                          a context; ctx_cancel */
enum { BENCH_CPP_JTHREAD_READ, BENCH_CPP_CV_ANY, BENCH_CPP_C_CANCEL };
struct bench_cpp_waiter;
struct bench_cpp_waiter *bench_cpp_start(int impl); /* NULL: failed */
pid_t bench_cpp_tid(struct bench_cpp_waiter *w);     /* once it runs */
void bench_cpp_stop(struct bench_cpp_waiter *w);
/* Joins and frees w: when (CLOCK_MONOTONIC ns) its wait returned, or
 * -1 if it returned otherwise than stopped (*why says how). */
int64_t bench_cpp_finish(struct bench_cpp_waiter *w, const char **why);

#ifdef __cplusplus
}
#endif

#endif
