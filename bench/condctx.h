/*
 * condctx: the context a C programmer writes without libctx, for the
 * benchmarks to compare libctx with.  It is meant to be the best version
 * of that approach, not a straw man:
 *
 *  - each context is a mutex, a condition variable (CLOCK_MONOTONIC) and
 *    an error flag, in a tree: cancelling a context cancels its children
 *    with the same error, as Go's context package does;
 *  - the flag is also an atomic, so checking it takes no lock;
 *  - a deadline is a number compared with the clock; waiters sleep on
 *    the condvar up to it (pthread_cond_clockwait, CLOCK_MONOTONIC), so
 *    no timer thread is needed;
 *  - other condition variables (a thread's "finished" signal, say) can be
 *    hung on a context, which broadcasts them when it is cancelled: that
 *    is how a join becomes cancellable (std::condition_variable_any does
 *    the same with a stop_callback);
 *  - a read tries the call without blocking first (preadv2 RWF_NOWAIT),
 *    so data that is already there costs one system call; only then does
 *    it wait, in poll(2) slices of a length the caller chooses, checking
 *    the flag between slices.  A condition variable cannot interrupt a
 *    thread in read(2): the slice is the price of this design.  Shorter
 *    slices stop a read sooner and burn more CPU while idle.
 *
 * Conventions follow libctx's: ECANCELED and ETIMEDOUT are the two
 * context errors; calls mirroring a system call return -1 with errno;
 * the others return 0 or an error number.
 */
#ifndef CONDCTX_H
#define CONDCTX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct condctx;
struct condctx_thread;

int64_t condctx_now(void); /* CLOCK_MONOTONIC, ns */

/* The root: never done, lives forever. */
struct condctx *condctx_background(void);

/* A child the caller owns (one reference); NULL + errno on failure. */
struct condctx *condctx_with_cancel(struct condctx *parent);
struct condctx *condctx_with_deadline(struct condctx *parent,
				      int64_t deadline_ns);
struct condctx *condctx_with_timeout(struct condctx *parent,
				     int64_t timeout_ns);

void condctx_cancel(struct condctx *c);
struct condctx *condctx_ref(struct condctx *c);
void condctx_unref(struct condctx *c);
void condctx_release(struct condctx *c); /* cancel + unref */

int condctx_err(struct condctx *c);      /* 0, ECANCELED or ETIMEDOUT */

/* Block until c is done; returns its error. */
int condctx_wait(struct condctx *c);
/* 0 after the full duration, else the context's error. */
int condctx_sleep(struct condctx *c, int64_t duration_ns);
/*
 * Wait until done(arg) is true, evaluated under mu, or c ends: 0 or the
 * context's error.  The caller does not hold mu; whoever makes done(arg)
 * true broadcasts cv under mu.
 */
int condctx_cond_wait(struct condctx *c, pthread_mutex_t *mu,
		      pthread_cond_t *cv, bool (*done)(void *arg), void *arg);
/* read(2) that c can stop within slice_ns of its end. */
ssize_t condctx_read(struct condctx *c, int fd, void *buf, size_t len,
		     int64_t slice_ns);

/* A thread running fn(ctx, arg) that holds its own reference to ctx. */
int condctx_thread_create(struct condctx_thread **t, struct condctx *ctx,
			  void *(*fn)(struct condctx *ctx, void *arg),
			  void *arg);
/* 0: joined and freed.  The context's error: not joined, t still valid. */
int condctx_thread_join(struct condctx *ctx, struct condctx_thread *t,
			void **result);

#endif
