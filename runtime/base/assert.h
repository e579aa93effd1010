/*
 * CTX_ASSERT: invariants checked in debug and sanitizer builds.
 *
 * configure defines CTX_ASSERTS=1 with --enable-debug or any
 * --enable-sanitizers.  Elsewhere an assertion costs nothing: its
 * expression sits under sizeof, so it still has to compile but is never
 * evaluated (no side effects, no code).  On failure the message names the
 * expression and where it was, then the process aborts: a broken
 * invariant means memory is already wrong, and going on would hide it.
 */
#ifndef CTX_ASSERT_H
#define CTX_ASSERT_H

#ifdef CTX_ASSERTS
#include <stdio.h>
#include <stdlib.h>

__attribute__((noreturn, cold)) static inline void
ctx__assert_fail(const char *expr, const char *file, int line,
		 const char *func)
{
	fprintf(stderr, "libctx: assertion failed: %s (%s:%d, %s)\n", expr,
		file, line, func);
	abort();
}

#define CTX_ASSERT(e)                                                     \
	((e) ? (void)0 : ctx__assert_fail(#e, __FILE__, __LINE__, __func__))
#else
#define CTX_ASSERT(e) ((void)sizeof((e) ? 1 : 0))
#endif

#endif
