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
#include <pthread.h>
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

/* Done with CTX_CANCELED when any signal of the set arrives (Go's
 * signal.NotifyContext).  Until it is released those signals are consumed
 * by it and the previous handler is not called; ctx_release restores the
 * previous handling exactly before it returns, as Go's stop() does (so
 * does the free, for a context only cancelled and unreferenced).  Several
 * live signal contexts for one signal all end.  EINVAL for SIGKILL, SIGSTOP or
 * signals the C library reserves.  The first one starts a dispatcher
 * thread, since a signal handler itself may not take locks. */
CTX_API ctx_t *ctx_with_signals(ctx_t *parent, const sigset_t *signals);

/* Cancel ctx and all its descendants with CTX_CANCELED.  Idempotent; the
 * first cancellation wins with its cause.  A no-op on contexts that
 * cannot be cancelled: roots, without-cancel, and value contexts (as in
 * Go, a value context has no cancel of its own; cancel its parent). */
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
 * snprintf-like: returns the length the full text needs; -1 with errno
 * EINVAL (NULL context, or NULL buf with len > 0) or ENOMEM. */
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
/* Writes all len bytes unless an error or the context stops it first.
 * Like write(2), it raises SIGPIPE on a socket whose peer is gone; use
 * ctx_send(..., MSG_NOSIGNAL) to get EPIPE alone. */
CTX_API ssize_t ctx_write(ctx_t *ctx, int fd, const void *buf, size_t len);
/* recv(2); MSG_DONTWAIT never waits, MSG_WAITALL waits for all len bytes
 * (or end of stream).  ctx_send, like ctx_write, sends all len bytes. */
CTX_API ssize_t ctx_recv(ctx_t *ctx, int fd, void *buf, size_t len,
                         int flags);
CTX_API ssize_t ctx_send(ctx_t *ctx, int fd, const void *buf, size_t len,
                         int flags);
/* accept4(2); flags are SOCK_NONBLOCK and SOCK_CLOEXEC.  accept4 has no
 * per-call non-blocking form: on a blocking listener it waits for
 * readiness, then accepts, and if another thread takes the connection in
 * between that accept blocks where no context reaches it.  Give a
 * listener that several threads accept on SOCK_NONBLOCK. */
CTX_API int ctx_accept(ctx_t *ctx, int fd, struct sockaddr *addr,
                       socklen_t *addrlen, int flags);
/* 0 once connected; -1 with the socket's own error (ECONNREFUSED, ...). */
CTX_API int ctx_connect(ctx_t *ctx, int fd, const struct sockaddr *addr,
                        socklen_t addrlen);
/* waitpid(2).  WNOHANG in options makes it a plain non-blocking check. */
CTX_API pid_t ctx_waitpid(ctx_t *ctx, pid_t pid, int *status, int options);

/* ---------------------------------------------------------------------
 * Threads, wait groups, error groups, channels, after-funcs
 * ------------------------------------------------------------------- */

typedef struct ctx_thread ctx_thread_t;

/* Start fn(ctx, arg) on a new thread that holds its own reference to ctx
 * until fn returns: the caller may release its own at once.  fn must
 * return (not call pthread_exit), or joiners wait forever.  Returns 0 or
 * an error number (EINVAL, ENOMEM, EAGAIN). */
CTX_API int ctx_thread_create(ctx_thread_t **t, ctx_t *ctx,
			      void *(*fn)(ctx_t *ctx, void *arg), void *arg);

/* The same with pthread attributes (stack size, guard, scheduling, CPU
 * affinity); NULL: the defaults.  The attributes must leave the thread
 * joinable: detached ones are refused with EINVAL (see
 * ctx_thread_detach).  Errors as pthread_create's besides. */
CTX_API int ctx_thread_create_attr(ctx_thread_t **t,
				   const pthread_attr_t *attr, ctx_t *ctx,
				   void *(*fn)(ctx_t *ctx, void *arg),
				   void *arg);

/* Wait for t's fn to return, or for ctx to end.  0: joined, *result is
 * fn's value and t is freed.  The context's error: not joined, t is still
 * valid and may be joined or detached later. */
CTX_API int ctx_thread_join(ctx_t *ctx, ctx_thread_t *t, void **result);

/* Let t free itself when fn returns.  t must not be used afterwards. */
CTX_API int ctx_thread_detach(ctx_thread_t *t);

/* Wait groups, as Go's sync.WaitGroup.  A counter driven below zero is
 * reported on stderr and makes every wait return EINVAL. */
typedef struct ctx_wg ctx_wg_t;
CTX_API ctx_wg_t *ctx_wg_new(void); /* NULL + errno ENOMEM */
CTX_API void ctx_wg_add(ctx_wg_t *wg, int delta);
CTX_API void ctx_wg_done(ctx_wg_t *wg);
/* 0 once the counter is zero, else the context's error. */
CTX_API int ctx_wg_wait(ctx_t *ctx, ctx_wg_t *wg);
CTX_API void ctx_wg_free(ctx_wg_t *wg);

/* Error groups, as Go's errgroup.WithContext.  Each ctx_group_go runs fn
 * on a new thread with the group's context; the first non-zero result
 * cancels that context with the result as its cause. */
typedef struct ctx_group ctx_group_t;
CTX_API ctx_group_t *ctx_group_new(ctx_t *parent); /* NULL + errno */
/* Borrowed: valid until ctx_group_free.  Cancelled with the first error
 * as its cause, and by ctx_group_wait when all have returned. */
CTX_API ctx_t *ctx_group_ctx(ctx_group_t *g);
/* At most n functions at once (n < 0: no limit): ctx_group_go blocks
 * until a slot is free. */
CTX_API int ctx_group_set_limit(ctx_group_t *g, int n);
/* 0, or an error number if no thread could start (fn then never runs). */
CTX_API int ctx_group_go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg),
			 void *arg);
/* Wait for every function (not cancellable: they watch the group's
 * context); returns the first non-zero result, 0 if none.  No thread of
 * the group runs after it returns. */
CTX_API int ctx_group_wait(ctx_group_t *g);
/* Cancel the group's context, wait for its functions, free it. */
CTX_API void ctx_group_free(ctx_group_t *g);

/* Channels of fixed-size elements, as Go's; capacity 0 is a rendezvous
 * (a send returns once a receiver took the element).  A send or receive
 * the context ends moved nothing. */
typedef struct ctx_chan ctx_chan_t;
CTX_API ctx_chan_t *ctx_chan_new(size_t elem_size, size_t capacity);
/* 0, the context's error, or EPIPE if the channel is closed. */
CTX_API int ctx_chan_send(ctx_t *ctx, ctx_chan_t *ch, const void *elem);
/* 0, the context's error, or EPIPE once closed and drained. */
CTX_API int ctx_chan_recv(ctx_t *ctx, ctx_chan_t *ch, void *elem);
/* Wakes everyone: later sends fail, receives drain then fail. */
CTX_API void ctx_chan_close(ctx_chan_t *ch);
/* No thread may be inside a send or receive on ch. */
CTX_API void ctx_chan_free(ctx_chan_t *ch);

/* Run fn(arg) once, on a thread of the library's, after ctx is done --
 * soon after creation if it already is, and at its deadline even if no
 * thread waits.  NULL + errno (EINVAL, ENOMEM, EAGAIN) on failure. */
typedef struct ctx_after ctx_after_t;
CTX_API ctx_after_t *ctx_after_func(ctx_t *ctx, void (*fn)(void *arg),
				    void *arg);
/* Call exactly once per handle, which it frees.  True if it kept fn from
 * ever running; false if fn ran, runs or is about to run. */
CTX_API bool ctx_after_stop(ctx_after_t *a);

/* ---------------------------------------------------------------------
 * Runtime
 * ------------------------------------------------------------------- */

/* "epoll" or "io_uring": the backend this process's waits use, chosen
 * once by CTX_BACKEND=epoll|io_uring (epoll when io_uring is refused). */
CTX_API const char *ctx_backend(void);

/* ---------------------------------------------------------------------
 * Debugging
 *
 * Run a program with CTX_DEBUG=leaks in its environment and it reports on
 * stderr at exit every context created and never released, with the file
 * and line that created it.  The constructors are also macros that record
 * that site; calling them through a pointer works too, without a site.
 * ------------------------------------------------------------------- */

CTX_API void ctx__site(const char *file, int line); /* not for direct use */

#if !defined(CTX_BUILDING_LIBRARY) && !defined(CTX_NO_SITE_MACROS)
#define CTX__AT(call) (ctx__site(__FILE__, __LINE__), call)
#define ctx_with_cancel(p) CTX__AT(ctx_with_cancel(p))
#define ctx_with_deadline(p, d) CTX__AT(ctx_with_deadline(p, d))
#define ctx_with_timeout(p, t) CTX__AT(ctx_with_timeout(p, t))
#define ctx_with_deadline_cause(p, d, c) \
	CTX__AT(ctx_with_deadline_cause(p, d, c))
#define ctx_with_timeout_cause(p, t, c) \
	CTX__AT(ctx_with_timeout_cause(p, t, c))
#define ctx_with_value(p, k, v) CTX__AT(ctx_with_value(p, k, v))
#define ctx_without_cancel(p) CTX__AT(ctx_without_cancel(p))
#define ctx_with_signals(p, s) CTX__AT(ctx_with_signals(p, s))
#endif

/* ---------------------------------------------------------------------
 * Outgoing calls: names and dialing (issue 15)
 *
 * ctx_getaddrinfo is getaddrinfo(3) that a context ends: 0 or an EAI_
 * code; EAI_SYSTEM with errno = the context's error when it ended the
 * lookup (within a millisecond; a done context refuses at once).  Free
 * the results with ctx_freeaddrinfo, never freeaddrinfo.
 *
 * ctx_dial resolves "host:port" or "[v6]:port" (the port may be a service
 * name) and connects with Happy Eyeballs (RFC 8305): IPv6 first, families
 * interleaved, the next address after 250 ms or at once on a failure.  It
 * returns one connected, blocking, close-on-exec socket of `type`
 * (SOCK_STREAM, or SOCK_DGRAM for a connected UDP socket), or -1 with
 * errno: the context's error, the last connect error, EADDRNOTAVAIL for a
 * name without addresses, EINVAL for a malformed address.
 * ------------------------------------------------------------------- */

struct addrinfo;

CTX_API int ctx_getaddrinfo(ctx_t *ctx, const char *node, const char *service,
			    const struct addrinfo *hints,
			    struct addrinfo **res);
CTX_API void ctx_freeaddrinfo(struct addrinfo *res);
CTX_API int ctx_dial(ctx_t *ctx, const char *address, int type);

#ifdef __cplusplus
}
#endif

#endif /* CTX_H */
