/*
 * libctx: Go's context discipline for C programs on Linux.
 *
 * A context carries a cancellation signal, an optional deadline and
 * request-scoped values down a tree.  Cancelling a context cancels every
 * context derived from it, and every thread blocked in a libctx call on
 * behalf of any of them returns at once with CTX_CANCELED or
 * CTX_DEADLINE_EXCEEDED.
 *
 * Conventions (see also ctx(3)):
 *  - Time is int64_t nanoseconds on CLOCK_MONOTONIC, read by ctx_now().
 *    Sums saturate at INT64_MAX; a timeout <= 0 means "already expired".
 *  - Calls that mirror a system call return -1 and set errno.  Everything
 *    else returns 0 or an error number, as pthreads does.
 *  - Constructors return NULL and set errno (EINVAL, ENOMEM, ...).
 *  - Creating or cancelling a context makes no descriptor and no thread.
 */
#ifndef CTX_H
#define CTX_H

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CTX_BUILDING_LIBRARY)
#define CTX_API __attribute__((visibility("default")))
#else
#define CTX_API
#endif

/* The two ways a context ends, as errno values. */
#define CTX_CANCELED ECANCELED
#define CTX_DEADLINE_EXCEEDED ETIMEDOUT

/* Multipliers for nanosecond durations. */
#define CTX_NSEC ((int64_t)1)
#define CTX_USEC ((int64_t)1000)
#define CTX_MSEC ((int64_t)1000000)
#define CTX_SEC ((int64_t)1000000000)

typedef struct ctx ctx_t;

/* ---------------------------------------------------------------------
 * Contexts
 * ------------------------------------------------------------------- */

/* The current time on CLOCK_MONOTONIC, in nanoseconds. */
CTX_API int64_t ctx_now(void);

/* The roots: never done, no deadline, no values.  They live forever;
 * ref, unref, cancel and release do nothing on them. */
CTX_API ctx_t *ctx_background(void);
CTX_API ctx_t *ctx_todo(void);

/* Derived contexts.  Each returns a new context that the caller owns (one
 * reference), or NULL with errno set: EINVAL for a NULL parent, ENOMEM.
 * A derived context keeps its parent alive.  A child of a context that is
 * already done is done at creation with the parent's error and cause. */
CTX_API ctx_t *ctx_with_cancel(ctx_t *parent);

/* deadline_ns is absolute on the ctx_now() clock.  A deadline later than
 * the parent's is ignored (the result behaves as ctx_with_cancel); one in
 * the past gives a context done at creation with CTX_DEADLINE_EXCEEDED. */
CTX_API ctx_t *ctx_with_deadline(ctx_t *parent, int64_t deadline_ns);
CTX_API ctx_t *ctx_with_timeout(ctx_t *parent, int64_t timeout_ns);

/* As above; when the deadline ends the context, ctx_cause() is `cause`. */
CTX_API ctx_t *ctx_with_deadline_cause(ctx_t *parent, int64_t deadline_ns,
                                       int cause);
CTX_API ctx_t *ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns,
                                      int cause);

/* A context that carries value under key (compared by address) and
 * otherwise behaves as its parent.  The nearest value wins. */
CTX_API ctx_t *ctx_with_value(ctx_t *parent, const void *key, void *value);

/* Keeps the parent's values but is never done and has no deadline. */
CTX_API ctx_t *ctx_without_cancel(ctx_t *parent);

/* Cancel ctx and all its descendants with CTX_CANCELED.  Idempotent; the
 * first cancellation wins with its cause.  A no-op on contexts that
 * cannot be cancelled (roots, values over roots, without-cancel). */
CTX_API void ctx_cancel(ctx_t *ctx);
CTX_API void ctx_cancel_cause(ctx_t *ctx, int cause);

/* Reference counting.  ctx_ref returns ctx.  ctx_unref(NULL) is fine. */
CTX_API ctx_t *ctx_ref(ctx_t *ctx);
CTX_API void ctx_unref(ctx_t *ctx);

/* Cancel then unref: Go's `defer cancel()`.  NULL-safe. */
CTX_API void ctx_release(ctx_t *ctx);

/* Internal helper for CTX_AUTO; not part of the API. */
static inline void ctx__auto_release(ctx_t **ctx) { ctx_release(*ctx); }

/* Declare a context released at scope exit:
 *     CTX_AUTO ctx_t *c = ctx_with_timeout(parent, 2 * CTX_SEC);  */
#define CTX_AUTO __attribute__((cleanup(ctx__auto_release)))

/* 0 while live, else CTX_CANCELED or CTX_DEADLINE_EXCEEDED.  Reports an
 * expired deadline as soon as it passes, whether or not anyone waits.
 * EINVAL for a NULL context. */
CTX_API int ctx_err(ctx_t *ctx);

/* 0 while live; then the cause of the first cancellation (ctx_err's value
 * unless a cause was given).  EINVAL for a NULL context. */
CTX_API int ctx_cause(ctx_t *ctx);

/* The effective deadline (the earliest along the chain) in *deadline_ns;
 * false when there is none. */
CTX_API bool ctx_deadline(ctx_t *ctx, int64_t *deadline_ns);

/* The value of the nearest context carrying key; NULL if absent. */
CTX_API void *ctx_value(ctx_t *ctx, const void *key);

/* A descriptor owned by the context (never read or close it) that turns
 * readable (POLLIN), and stays so, once the context is done -- also when
 * its deadline passes with no thread inside the library.  -1 with errno 0
 * for a context that can never be done; -1 with errno set (EMFILE, ...)
 * when no descriptor can be made.  Closed when the context is freed. */
CTX_API int ctx_done_fd(ctx_t *ctx);

/* "context canceled", "context deadline exceeded", else strerror(err). */
CTX_API const char *ctx_strerror(int err);

/* The chain as Go's String() prints it, e.g.
 * "context.Background.WithCancel.WithValue(key=0x..., val=0x...)".
 * snprintf-like: returns the length the full text needs. */
CTX_API int ctx_format(ctx_t *ctx, char *buf, size_t len);

/* ---------------------------------------------------------------------
 * Cancellable waits
 *
 * Each refuses at once (-1, errno = the context's error) when the context
 * is already done, even if the awaited thing is also ready; tries the
 * operation without blocking; and only then waits for the descriptor, the
 * context and its deadline together.  EINTR is retried inside, never
 * returned.  A transfer that moved bytes before the context ended returns
 * that count.
 * ------------------------------------------------------------------- */

/* Block until ctx is done; returns ctx_err(ctx) (EINVAL for NULL). */
CTX_API int ctx_wait(ctx_t *ctx);

/* 0 after the full duration, else the context's error. */
CTX_API int ctx_sleep(ctx_t *ctx, int64_t duration_ns);

/* poll(2) with a context: the number of ready entries, 0 when timeout_ns
 * (< 0: none) passes first, -1 with errno on error or when ctx ends. */
CTX_API int ctx_poll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds,
                     int64_t timeout_ns);

CTX_API ssize_t ctx_read(ctx_t *ctx, int fd, void *buf, size_t len);
/* Writes all len bytes unless an error or the context stops it first. */
CTX_API ssize_t ctx_write(ctx_t *ctx, int fd, const void *buf, size_t len);
CTX_API ssize_t ctx_recv(ctx_t *ctx, int fd, void *buf, size_t len,
                         int flags);
CTX_API ssize_t ctx_send(ctx_t *ctx, int fd, const void *buf, size_t len,
                         int flags);
/* accept4(2); flags are SOCK_NONBLOCK and SOCK_CLOEXEC. */
CTX_API int ctx_accept(ctx_t *ctx, int fd, struct sockaddr *addr,
                       socklen_t *addrlen, int flags);
/* 0 once connected; -1 with the socket's own error (ECONNREFUSED, ...). */
CTX_API int ctx_connect(ctx_t *ctx, int fd, const struct sockaddr *addr,
                        socklen_t addrlen);
/* waitpid(2).  WNOHANG in options makes it a plain non-blocking check. */
CTX_API pid_t ctx_waitpid(ctx_t *ctx, pid_t pid, int *status, int options);

/* ---------------------------------------------------------------------
 * Runtime
 * ------------------------------------------------------------------- */

/* "epoll" or "io_uring": the backend this thread's waits use. */
CTX_API const char *ctx_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* CTX_H */
