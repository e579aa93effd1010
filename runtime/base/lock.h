/*
 * A 4-byte mutex on a futex, so that every context can afford its own.
 *
 * pthread_mutex_t is 40 bytes; a context must stay under 128.  The states
 * are the classic three: 0 unlocked, 1 locked, 2 locked with waiters.
 */
#ifndef CTX_LOCK_H
#define CTX_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/assert.h"

typedef struct {
	_Atomic uint32_t v;
} ctx__lock_t;

#define CTX__LOCK_INIT { 0 }

static inline void ctx__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static inline void ctx__futex_wait(_Atomic uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static inline void ctx__futex_wake(_Atomic uint32_t *w, int n)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* A short spin, and none once someone sleeps on the lock: critical
 * sections here are ~100 ns, and a longer spin only pulls the cache line
 * away from the holder (measured: channel throughput across CPUs). */
static inline void ctx__lock_slow(ctx__lock_t *l)
{
	for (int i = 0; i < 16; i++) {
		uint32_t v = atomic_load_explicit(&l->v, memory_order_relaxed);
		uint32_t z = 0;
		if (v == 2)
			break;
		if (v == 0 && atomic_compare_exchange_weak_explicit(
				      &l->v, &z, 1, memory_order_acquire,
				      memory_order_relaxed))
			return;
		ctx__cpu_relax();
	}
	while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0)
		ctx__futex_wait(&l->v, 2);
}

static inline void ctx__lock(ctx__lock_t *l)
{
	uint32_t z = 0;
	if (!atomic_compare_exchange_strong_explicit(&l->v, &z, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		ctx__lock_slow(l);
}

/* Once the exchange is done another thread may take the lock, finish,
 * and free the memory before the wake below: the wake then lands on a
 * dead word.  That is harmless, as with glibc's own mutexes: a futex wake
 * touches no memory (an unmapped page makes it fail with EFAULT), and a
 * stray wake of whoever waits there now is a spurious wake-up, which
 * every futex waiter here re-checks for. */
static inline void ctx__unlock(ctx__lock_t *l)
{
	if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
		ctx__futex_wake(&l->v, 1);
}

/* Context node locks, which the lock order says are never nested (see
 * core/core.h).  Debug builds count them per thread to check it. */
#ifdef CTX_ASSERTS
extern _Thread_local int ctx__node_locks_held; /* lock.c */
#endif

/* How many node locks this thread holds (0 without asserts): for checks
 * that another lock is not taken under one. */
static inline int ctx__node_locks(void)
{
#ifdef CTX_ASSERTS
	return ctx__node_locks_held;
#else
	return 0;
#endif
}

static inline void ctx__node_lock(ctx__lock_t *l)
{
#ifdef CTX_ASSERTS
	CTX_ASSERT(ctx__node_locks_held == 0);
	ctx__node_locks_held++;
#endif
	ctx__lock(l);
}

static inline void ctx__node_unlock(ctx__lock_t *l)
{
#ifdef CTX_ASSERTS
	CTX_ASSERT(ctx__node_locks_held == 1);
	ctx__node_locks_held--;
#endif
	ctx__unlock(l);
}

#endif
