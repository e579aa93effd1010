/*
 * The library's one allocation entry point, so that a failing malloc can
 * be simulated in tests: ctx__fail_malloc_after(N) makes the allocation
 * after the next N fail with NULL, once.  Tests link the library's
 * objects statically to reach it; it is not exported.
 *
 * And a per-thread cache of freed blocks of one size, for the blocks
 * made and freed most (the plain cancel node: WithCancel + release).
 * malloc and free were 8 of a pair's 21 ns on an AMD EPYC host (perf);
 * the cache's push and pop are a few instructions.  At most CACHE_MAX
 * blocks wait per thread, and a pthread key's destructor frees them
 * when the thread exits; the key is set by the thread's first put, so a
 * thread that never freed a node pays nothing at its exit.  (Not
 * __cxa_thread_atexit_impl, the destructors of C++'s thread_local: it
 * costs less at exit, but glibc aborts the process when it cannot
 * allocate its record, where a failed pthread_setspecific only means no
 * cache.)  Destructors of other keys that free nodes after this one ran
 * free them to the heap.  The main thread's blocks are held until the
 * process exits (pthread keys have no destructor there).  Under
 * AddressSanitizer or ThreadSanitizer nothing is cached, so that they
 * see every use after free and every reuse.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* ---- the cache ------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CACHE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define CACHE_OFF 1
#endif
#endif

enum { CACHE_MAX = 16 };
enum { UNHOOKED, HOOKED, NEVER };

struct cache {
	int n, state;          /* blocks held; UNHOOKED, HOOKED or NEVER */
	size_t size;           /* of every block held (the first put's) */
	void *b[CACHE_MAX];
};

static __thread struct cache cache;

#ifdef CACHE_OFF
static bool hooked(struct cache *c)
{
	c->state = NEVER;
	return false;
}
#else
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_made;

/* The thread's exit: give every block back, and cache no more (later
 * destructors of the thread may still free blocks). */
static void cache_drop(void *p)
{
	struct cache *c = p;
	while (c->n)
		free(c->b[--c->n]);
	c->state = NEVER;
}

static void make_key(void)
{
	key_made = pthread_key_create(&key, cache_drop) == 0;
}

static bool hooked(struct cache *c)
{
	if (c->state == UNHOOKED) {
		pthread_once(&key_once, make_key);
		c->state = key_made && pthread_setspecific(key, c) == 0 ?
				   HOOKED : NEVER;
	}
	return c->state == HOOKED;
}
#endif

void *ctx__cache_alloc(size_t size)
{
	struct cache *c = &cache;
	/* A fault injected by a test goes through ctx__malloc. */
	if (c->n && c->size == size &&
	    atomic_load_explicit(&fail_after, memory_order_relaxed) < 0)
		return c->b[--c->n];
	return ctx__malloc(size);
}

void ctx__cache_free(void *p, size_t size)
{
	struct cache *c = &cache;
	if (c->n < CACHE_MAX && (c->state == HOOKED || hooked(c)) &&
	    (c->n == 0 || c->size == size)) {
		c->size = size;
		c->b[c->n++] = p;
		return;
	}
	free(p);
}
