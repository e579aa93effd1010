/*
 * The base layer: what every other layer of runtime/ stands on, knowing
 * nothing of contexts.  Assertions (assert.h), the 4-byte futex lock and
 * the node-lock discipline (lock.h), the clock's saturating sums
 * (clock.c), the one allocation entry point with its fault hook
 * (alloc.c), and the one spawner of the library's service threads
 * (spawn.c).  See runtime/README.md for the layers.
 */
#ifndef CTX_BASE_H
#define CTX_BASE_H

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
