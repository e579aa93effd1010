/*
 * The base layer: what every other layer of runtime/ stands on, knowing
 * nothing of contexts.  Assertions (assert.h), the 4-byte futex lock and
 * the node-lock discipline (lock.h), the clock's saturating sums and the
 * manual clock (clock.c), the one allocation entry point with its fault
 * hook (alloc.c), and the one spawner of the library's service threads
 * (spawn.c).  See runtime/README.md for the layers.
 */
#ifndef CTX_BASE_H
#define CTX_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ctx.h>

#include "base/assert.h"
#include "base/lock.h"

/* "No deadline": a time that never comes. */
#define CTX__NEVER INT64_MAX

/* clock.c: a + b, saturating at INT64_MIN and INT64_MAX. */
int64_t ctx__add_sat(int64_t a, int64_t b);
/* Whether deadline is certainly still ahead: cheap, may say false. */
bool ctx__surely_before(int64_t deadline);
/* ctx_now to a tick or so, cheaper (the manual clock: exactly). */
int64_t ctx__now_coarse(void);
/* CLOCK_MONOTONIC, whichever clock ctx_now reads. */
int64_t ctx__clock_real(void);

/* The manual clock (clock.c; the public calls are wait/clock.c's).  The
 * flag is read on every ctx_now: a direct load, not one through the GOT. */
extern _Atomic bool ctx__manual __attribute__((visibility("hidden")));
static inline bool ctx__clock_is_manual(void)
{
	return __builtin_expect(
		atomic_load_explicit(&ctx__manual, memory_order_relaxed), 0);
}
bool ctx__clock_start(void);      /* on, at the real time; false if it was */
void ctx__clock_stop(void);       /* back to the real clock (test hook) */
void ctx__clock_forked(bool known); /* in a child: the forking thread alone */
int64_t ctx__clock_move(int64_t t); /* forward to t: the time now */
/* The count of work in progress under the manual clock: known threads
 * not durably blocked, after-funcs queued.  Changed under the clock's
 * lock, a leaf; read without it.  When it falls to zero, whoever made it
 * fall calls ctx__clock_idle, after dropping the lock. */
void ctx__clock_lock(void);
void ctx__clock_unlock(void);
int ctx__clock_count(int delta);  /* under the lock: add; the new count */
int ctx__clock_at_work(void);
bool ctx__clock_work_begin(void); /* manual: one more, and true */
void ctx__clock_work_end(void);   /* one fewer (after a true begin) */
void ctx__clock_idle(void);       /* the hook, if the wait layer set one */
extern void (*ctx__clock_idle_hook)(void);

/* alloc.c: allocation, with a hook for fault injection in tests. */
void *ctx__malloc(size_t size);
void ctx__fail_malloc_after(long n); /* test hook; -1 turns it off */

/* spawn.c: start a detached library thread, all signals blocked, with
 * `stack` bytes of stack for its own use (0: as much as a thread of the
 * program gets by default) on top of the program's static TLS.  0 or an
 * error number. */
#define CTX__STACK_SMALL (64 * 1024) /* the service threads' need */
int ctx__spawn(void *(*fn)(void *), void *arg, size_t stack);

#endif
