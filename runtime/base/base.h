/*
 * The base layer: what every other layer of runtime/ stands on, knowing
 * nothing of contexts.  Assertions (assert.h), the 4-byte futex lock and
 * the node-lock discipline (lock.h), the clock's saturating sums and the
 * manual clock (clock.c), the one allocation entry point with its fault
 * hook and a per-thread cache of freed blocks (alloc.c), and the one
 * spawner of the library's service threads (spawn.c).  See
 * runtime/README.md for the layers.
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
/* A per-thread cache of freed blocks of one size, for the one kind of
 * block made and freed most: cache_alloc takes one of that size from it
 * (else ctx__malloc), cache_free gives one to it (else free). */
void *ctx__cache_alloc(size_t size);
void ctx__cache_free(void *p, size_t size);

/* spawn.c: start a detached library thread, all signals blocked, with
 * `stack` bytes of stack for its own use (0: as much as a thread of the
 * program gets by default) on top of the program's static TLS.  0 or an
 * error number.  While fn runs the thread is listed among the services
 * (ctx_dump) as what svc says, and bears svc's name. */
struct ctx__service {
	const char *name;   /* the thread's name (15 bytes at most) */
	const char *serves; /* what it is for, in words */
	/* What it is doing now, in words, into buf (NULL: nothing more to
	 * say); called from ctx_dump's thread, which holds no lock. */
	void (*state)(char *buf, size_t len);
};
#define CTX__STACK_SMALL (64 * 1024) /* the service threads' need */
int ctx__spawn(const struct ctx__service *svc, void *(*fn)(void *),
	       void *arg, size_t stack);
/* fn(tid, svc, arg) for every service thread running, under the list's
 * lock: fn must not start or end one. */
void ctx__services_each(void (*fn)(int tid, const struct ctx__service *svc,
				   void *arg), void *arg);

/* text.c: text that grows (zeroed: empty).  Out of memory, it stops
 * growing and oom says so. */
struct ctx__text {
	char *buf;
	size_t len, cap;
	bool oom;
};
void ctx__text_add(struct ctx__text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ctx__text_free(struct ctx__text *t);

/* describe.c: a descriptor in words, as ctx_dump gives it: "socket TCP
 * 127.0.0.1:8080 <- 127.0.0.1:51234", "pipe:[4242]", "/var/log/x.log".
 * And what a thread of this process is doing, from
 * /proc/self/task/TID/syscall: "read(2) on fd 3 (pipe:[4242])",
 * "running", or NULL-free words for the unknown.  Both write at most
 * len bytes (NUL included) and return buf. */
char *ctx__describe_fd(int fd, char *buf, size_t len);
char *ctx__describe_task(int tid, char *buf, size_t len);
/* The thread's name (/proc/self/task/TID/comm), or "?". */
char *ctx__task_name(int tid, char *buf, size_t len);

#endif
