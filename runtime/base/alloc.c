/*
 * The library's one allocation entry point, so that a failing malloc can
 * be simulated in tests: ctx__fail_malloc_after(N) makes the allocation
 * after the next N fail with NULL, once.  Tests link the library's
 * objects statically to reach it; it is not exported.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "base/base.h"

static _Atomic long fail_after = -1;

void ctx__fail_malloc_after(long n)
{
	atomic_store(&fail_after, n);
}

void *ctx__malloc(size_t size)
{
	if (__builtin_expect(atomic_load_explicit(&fail_after,
						  memory_order_relaxed) >= 0, 0)) {
		if (atomic_fetch_sub(&fail_after, 1) == 0) {
			atomic_store(&fail_after, -1);
			return NULL;
		}
	}
	return malloc(size);
}
