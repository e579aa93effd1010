/*
 * The library's internal test hooks that the suites call, declared here
 * since no public header has them.  They live in the static core the
 * runner links (libctx-core.la), not in libctx.so.
 */
#ifndef CTX_TEST_HOOKS_H
#define CTX_TEST_HOOKS_H

/* The allocation after the next n fails, once; -1 turns it off (the
 * runtime's allocator). */
void ctx__fail_malloc_after(long n);

/* The calling thread's reactor, and a wake-up of it from any thread (the
 * runtime's reactor). */
struct ctx__reactor;
struct ctx__reactor *ctx__reactor_self(void);
void ctx__reactor_wake(struct ctx__reactor *r);

#endif
