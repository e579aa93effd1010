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

/* Strict ISO C (cc -std=c11) hides the POSIX types this header uses
 * (idtype_t, siginfo_t, id_t).  When the program asked for no feature
 * set at all, ask for POSIX.1-2008; this takes effect when ctx.h comes
 * before any system header.  Included later under strict ISO C, the few
 * declarations that need those types are left out (see the end). */
#if defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) &&                 \
	!defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) &&                  \
	!defined(_DEFAULT_SOURCE) && !defined(_BSD_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h> /* also sigset_t, even under strict ISO C */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CTX_BUILDING_LIBRARY)
#define CTX_API __attribute__((visibility("default")))
#else
#define CTX_API
#endif

/* In C++ every function of libctx is noexcept: none throws, and none
 * can let an exception through (a callback's exception crossing a C
 * frame would be undefined; with noexcept it ends in std::terminate). */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define CTX_NOEXCEPT noexcept
#elif defined(__cplusplus)
#define CTX_NOEXCEPT throw()
#else
#define CTX_NOEXCEPT
#endif

/* The two ways a context ends, as errno values. */
#define CTX_CANCELED ECANCELED
#define CTX_DEADLINE_EXCEEDED ETIMEDOUT

/* Multipliers for nanosecond durations. */
#define CTX_NSEC INT64_C(1)
#define CTX_USEC INT64_C(1000)
#define CTX_MSEC INT64_C(1000000)
#define CTX_SEC INT64_C(1000000000)

/* In C++ the name ctx is the namespace of <ctx.hpp>, and a struct tag
 * of that name would clash with it, so there the opaque struct has
 * another tag.  No call sees the difference: the functions are extern
 * "C", and a ctx_t * is the same pointer in both languages. */
#ifdef __cplusplus
typedef struct ctx_context ctx_t;
#else
typedef struct ctx ctx_t;
#endif

/* ---------------------------------------------------------------------
 * Contexts: the tree, cancelling, references
 * ------------------------------------------------------------------- */

/* The roots: never done, no deadline, no values.  They live forever;
 * ref, unref, cancel and release do nothing on them. */
CTX_API ctx_t *ctx_background(void) CTX_NOEXCEPT;
CTX_API ctx_t *ctx_todo(void) CTX_NOEXCEPT;

/* Derived contexts.  Each returns a new context that the caller owns (one
 * reference), or NULL with errno set: EINVAL for a NULL parent, ENOMEM.
 * A derived context keeps its parent alive.  A child of a context that is
 * already done is done at creation with the parent's error and cause. */
CTX_API ctx_t *ctx_with_cancel(ctx_t *parent) CTX_NOEXCEPT;

/* deadline_ns is absolute on the ctx_now() clock.  A deadline later than
 * the parent's is ignored (the result behaves as ctx_with_cancel); one in
 * the past gives a context done at creation with CTX_DEADLINE_EXCEEDED. */
CTX_API ctx_t *ctx_with_deadline(ctx_t *parent,
				 int64_t deadline_ns) CTX_NOEXCEPT;
CTX_API ctx_t *ctx_with_timeout(ctx_t *parent, int64_t timeout_ns) CTX_NOEXCEPT;

/* As above; when the deadline ends the context, ctx_cause() is `cause`. */
CTX_API ctx_t *ctx_with_deadline_cause(ctx_t *parent, int64_t deadline_ns,
                                       int cause) CTX_NOEXCEPT;
CTX_API ctx_t *ctx_with_timeout_cause(ctx_t *parent, int64_t timeout_ns,
                                      int cause) CTX_NOEXCEPT;

/* Move ctx's own deadline, earlier or later (INT64_MAX: none); the
 * effective deadline stays the earliest along the chain (ctx_deadline).
 * For ctx_with_cancel, _deadline, _timeout (and _cause), ctx_with_merge
 * and ctx_with_grace contexts.  Threads waiting under ctx or below it
 * see the change at once: moved earlier they end at the new time, moved
 * later they do not end at the old one.  A deadline already past ends
 * ctx at once (CTX_DEADLINE_EXCEEDED, the constructor's cause).  0;
 * EINVAL for NULL, a root or another kind; ctx's error, changing
 * nothing, if it is done; EAGAIN if the library's timer thread, which
 * enforces a deadline moved earlier, cannot start (nothing changed). */
CTX_API int ctx_set_deadline(ctx_t *ctx, int64_t deadline_ns) CTX_NOEXCEPT;

/* Done as soon as parent or other is done, with the error, cause, words
 * and origin of whichever ended first (parent's if both had at
 * creation).  Its deadline is the earlier of the two; values come from
 * parent's chain only.  It holds a reference to both, and releasing it
 * leaves nothing on either.  Cancellable as ctx_with_cancel.  NULL +
 * EINVAL if either is NULL. */
CTX_API ctx_t *ctx_with_merge(ctx_t *parent, ctx_t *other) CTX_NOEXCEPT;

/* The second phase of a graceful stop: done grace_ns after parent is
 * done (counted from its creation if parent is done already), with the
 * parent's error, cause, words and origin; at once, with its own cause,
 * when cancelled itself.  Values come from parent; its deadline is the
 * parent's plus grace_ns.  grace_ns <= 0: as ctx_with_cancel. */
CTX_API ctx_t *ctx_with_grace(ctx_t *parent, int64_t grace_ns) CTX_NOEXCEPT;

/* A context that carries value under key (compared by address) and
 * otherwise behaves as its parent.  The nearest value wins. */
CTX_API ctx_t *ctx_with_value(ctx_t *parent, const void *key,
			      void *value) CTX_NOEXCEPT;

/* Keeps the parent's values but is never done and has no deadline. */
CTX_API ctx_t *ctx_without_cancel(ctx_t *parent) CTX_NOEXCEPT;

/* Cancel ctx and all its descendants with CTX_CANCELED.  Idempotent; the
 * first cancellation wins with its cause.  A no-op on contexts that
 * cannot be cancelled: roots, without-cancel, and value contexts (as in
 * Go, a value context has no cancel of its own; cancel its parent). */
CTX_API void ctx_cancel(ctx_t *ctx) CTX_NOEXCEPT;
CTX_API void ctx_cancel_cause(ctx_t *ctx, int cause) CTX_NOEXCEPT;

/* ctx_cancel_cause with words (printf format; copied).  The first
 * cancellation wins with its cause and its words; descendants it ends
 * report the same words.  fmt NULL: no words. */
CTX_API void ctx_cancel_msg(ctx_t *ctx, int cause, const char *fmt,
			    ...) CTX_NOEXCEPT __attribute__((format(printf, 3, 4)));

/* Reference counting.  ctx_ref returns ctx.  ctx_unref(NULL) is fine. */
CTX_API ctx_t *ctx_ref(ctx_t *ctx) CTX_NOEXCEPT;
CTX_API void ctx_unref(ctx_t *ctx) CTX_NOEXCEPT;

/* Cancel then unref: Go's `defer cancel()`.  NULL-safe. */
CTX_API void ctx_release(ctx_t *ctx) CTX_NOEXCEPT;

/* Declare a context released at scope exit:
 *     CTX_AUTO ctx_t *c = ctx_with_timeout(parent, 2 * CTX_SEC);
 * clang++ checks the cleanup function's parameter against the declared
 * type before it deduces `auto`, so there the helper takes a void *
 * (and `CTX_AUTO auto c = ...` works; the type is not checked). */
#if defined(__cplusplus) && defined(__clang__)
static inline void ctx__auto_release(void *ctx) CTX_NOEXCEPT
{
	ctx_release(*static_cast<ctx_t **>(ctx));
}
#else
static inline void ctx__auto_release(ctx_t **ctx) CTX_NOEXCEPT
{
	ctx_release(*ctx);
}
#endif
#define CTX_AUTO __attribute__((cleanup(ctx__auto_release)))

/* ---------------------------------------------------------------------
 * The state of a context
 * ------------------------------------------------------------------- */

/* 0 while live, else CTX_CANCELED or CTX_DEADLINE_EXCEEDED.  Reports an
 * expired deadline as soon as it passes, whether or not anyone waits.
 * EINVAL for a NULL context. */
CTX_API int ctx_err(ctx_t *ctx) CTX_NOEXCEPT;

/* 0 while live; then the cause of the first cancellation (ctx_err's value
 * unless a cause was given).  EINVAL for a NULL context. */
CTX_API int ctx_cause(ctx_t *ctx) CTX_NOEXCEPT;

/* The words of ctx_cancel_msg, else ctx_strerror(ctx_cause(ctx)) for an errno value or
 * the cause's number otherwise; valid while ctx lives.  NULL while ctx
 * is live (or NULL). */
CTX_API const char *ctx_cause_msg(ctx_t *ctx) CTX_NOEXCEPT;

/* Where the end came from, in words, the same for every context the end
 * reached: the call and the file:line it was made at ("ctx_cancel at
 * main.c:42"; also ctx_cancel_cause, ctx_cancel_msg, ctx_release), the
 * deadline of the context made at file:line, a signal, a hang-up, an
 * idle time.  NULL while ctx is live (or NULL); valid while ctx lives. */
CTX_API const char *ctx_origin(ctx_t *ctx) CTX_NOEXCEPT;

/* The effective deadline (the earliest along the chain) in *deadline_ns;
 * false when there is none. */
CTX_API bool ctx_deadline(ctx_t *ctx, int64_t *deadline_ns) CTX_NOEXCEPT;

/* Whether ctx can ever be done: false for the roots, ctx_without_cancel
 * and values over those (Go's Done() == nil), and for NULL.  What a
 * bridge asks before it registers something that waits for the end. */
CTX_API bool ctx_can_end(ctx_t *ctx) CTX_NOEXCEPT;

/* The value of the nearest context carrying key; NULL if absent. */
CTX_API void *ctx_value(ctx_t *ctx, const void *key) CTX_NOEXCEPT;

/* "context canceled", "context deadline exceeded", else strerror(err). */
CTX_API const char *ctx_strerror(int err) CTX_NOEXCEPT;

/* The chain as Go's String() prints it, e.g.
 * "context.Background.WithCancel.WithValue(key=0x..., val=0x...)".
 * snprintf-like: returns the length the full text needs; -1 with errno
 * EINVAL (NULL context, or NULL buf with len > 0) or ENOMEM. */
CTX_API int ctx_format(ctx_t *ctx, char *buf, size_t len) CTX_NOEXCEPT;

/* The current time on CLOCK_MONOTONIC, in nanoseconds; once
 * ctx_clock_manual has run, the manual clock's. */
CTX_API int64_t ctx_now(void) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Contexts that end on an event: a signal, a client that hangs up, a
 * process that exits, an idle deadline
 * ------------------------------------------------------------------- */

/* Done with CTX_CANCELED when any signal of the set arrives (Go's
 * signal.NotifyContext).  Until it is released those signals are consumed
 * by it and the previous handler is not called; ctx_release restores the
 * previous handling exactly before it returns, as Go's stop() does (so
 * does the free, for a context only cancelled and unreferenced).  Several
 * live signal contexts for one signal all end.  EINVAL for SIGKILL, SIGSTOP or
 * signals the C library reserves.  The first one starts a dispatcher
 * thread, since a signal handler itself may not take locks. */
CTX_API ctx_t *ctx_with_signals(ctx_t *parent,
				const sigset_t *signals) CTX_NOEXCEPT;

/* The signal that ended ctx or an ancestor of it (ctx_with_signals);
 * 0 if ctx is live, was ended otherwise, or on NULL. */
CTX_API int ctx_signo(ctx_t *ctx) CTX_NOEXCEPT;

/* Go's signal.Notify: each signal of set that arrives is sent to ch (a
 * channel of int, see below) as its number, without blocking: dropped
 * when ch is full.  While any registration holds a signal it is consumed
 * by the library; ctx_signal_stop(ch) ends all of ch's registrations,
 * and the previous handling of a signal is back when its last one goes.
 * Several channels may take a signal: each gets it, one signal to all
 * before the next, in arrival order; live ctx_with_signals contexts on
 * it end as well.  0; EINVAL for a NULL channel or set, a channel whose
 * elements are not ints, or a signal that cannot be caught; ENOMEM. */
struct ctx_chan;
CTX_API int ctx_signal_notify(struct ctx_chan *ch,
			      const sigset_t *set) CTX_NOEXCEPT;
/* 0, EINVAL for NULL.  Once it returns, ch gets no more signals. */
CTX_API int ctx_signal_stop(struct ctx_chan *ch) CTX_NOEXCEPT;

/* Go's r.Context(): a child of parent that ends with CTX_CANCELED, cause
 * ECONNRESET, when the peer of socket fd goes away (EPOLLRDHUP, EPOLLHUP
 * or an error), with no thread reading fd; its data stays for its
 * reader.  One library thread watches every such context; none costs a
 * descriptor.  fd must stay open while the context lives; release the
 * context, then close fd.  NULL + errno (EINVAL, EBADF, EPERM for a file
 * that cannot be watched, ENOMEM). */
CTX_API ctx_t *ctx_with_hangup(ctx_t *parent, int fd) CTX_NOEXCEPT;

/* A child of parent that ends with CTX_CANCELED, cause ESRCH, when the
 * process behind pidfd exits (pidfd_open(2), SO_PEERPIDFD, a pidfd of
 * clone3), whether or not it is the caller's child.  It borrows pidfd,
 * which must stay open while the context lives, and waits for and reaps
 * nothing.  Watched by the hang-up thread; no descriptor of its own.
 * NULL + errno (EINVAL, EBADF for a descriptor that is not a pidfd,
 * ENOSYS, ENOMEM). */
CTX_API ctx_t *ctx_with_pidfd(ctx_t *parent, int pidfd) CTX_NOEXCEPT;

/* A child of parent that ends with CTX_DEADLINE_EXCEEDED once idle_ns
 * pass without a ctx_touch (idle_ns <= 0: ended at once).  NULL + errno. */
CTX_API ctx_t *ctx_with_idle(ctx_t *parent, int64_t idle_ns) CTX_NOEXCEPT;
/* The nearest idle context at or above ctx: its deadline becomes now +
 * idle_ns.  An atomic store, from any thread; waiters under it never end
 * before the current deadline, and ctx_deadline reports it.  A touch of
 * a done context, or of one with no idle context above, does nothing. */
CTX_API void ctx_touch(ctx_t *ctx) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Learning of a context's end without blocking: a descriptor, a function
 * ------------------------------------------------------------------- */

/* A descriptor owned by the context (never read or close it) that turns
 * readable (POLLIN), and stays so, once the context is done -- also when
 * its deadline passes with no thread inside the library.  -1 with errno 0
 * for a context that can never be done; -1 with errno set (EMFILE, ...)
 * when no descriptor can be made.  Closed when the context is freed. */
CTX_API int ctx_done_fd(ctx_t *ctx) CTX_NOEXCEPT;

/* Run fn(arg) once, on a thread of the library's, after ctx is done --
 * soon after creation if it already is, and at its deadline even if no
 * thread waits.  NULL + errno (EINVAL, ENOMEM, EAGAIN) on failure. */
typedef struct ctx_after ctx_after_t;
CTX_API ctx_after_t *ctx_after_func(ctx_t *ctx, void (*fn)(void *arg),
				    void *arg) CTX_NOEXCEPT;
/* Call exactly once per handle, which it frees.  True if it kept fn from
 * ever running; false if fn ran, runs or is about to run. */
CTX_API bool ctx_after_stop(ctx_after_t *a) CTX_NOEXCEPT;

/* As ctx_after_func, but fn runs in the thread that ends ctx: inside the
 * ctx_cancel* or ctx_release that ends it or an ancestor, in the thread
 * (a waiter's, or a library thread) that sees its deadline pass, or in
 * the caller before this returns when ctx is done already.  fn must not
 * block; it may cancel contexts and stop other handles. */
CTX_API ctx_after_t *ctx_after_func_inline(ctx_t *ctx,
					   void (*fn)(void *arg), void *arg) CTX_NOEXCEPT;
/* ctx_after_stop, and when fn is running on another thread, return only
 * once it has returned, so that arg may be freed.  Called from inside fn
 * itself it does not wait. */
CTX_API bool ctx_after_stop_wait(ctx_after_t *a) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Waiting
 *
 * Every call that blocks refuses at once (-1, errno = the context's error,
 * or that error as the result) when the context is already done, even if
 * the awaited thing is also ready; tries the operation without blocking
 * (never touching a descriptor's flags); and only then waits for the
 * descriptor, the context and its deadline together, then tries again.
 * EINTR is retried inside, never returned (ctx_ppoll excepted).
 * ------------------------------------------------------------------- */

/* Block until ctx is done; returns ctx_err(ctx) (EINVAL for NULL). */
CTX_API int ctx_wait(ctx_t *ctx) CTX_NOEXCEPT;

/* 0 after the full duration, else the context's error. */
CTX_API int ctx_sleep(ctx_t *ctx, int64_t duration_ns) CTX_NOEXCEPT;

/* 0 once ctx_now() >= deadline_ns (at once if it already is), else the
 * context's error.  An absolute sleep: a ticker that adds its period to
 * the previous deadline does not drift. */
CTX_API int ctx_sleep_until(ctx_t *ctx, int64_t deadline_ns) CTX_NOEXCEPT;

/* poll(2) with a context: the number of ready entries, 0 when timeout_ns
 * (< 0: none) passes first, -1 with errno on error or when ctx ends. */
CTX_API int ctx_poll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds,
                     int64_t timeout_ns) CTX_NOEXCEPT;

/* ppoll(2): while it waits the thread's signal mask is *sigmask (NULL:
 * unchanged), and a signal caught then ends it with -1/EINTR -- the one
 * wait that returns EINTR.  Ready descriptors are reported without
 * touching the mask, as ppoll does.  Waiting uses ctx_done_fd(ctx). */
CTX_API int ctx_ppoll(ctx_t *ctx, struct pollfd *fds, nfds_t nfds,
		      int64_t timeout_ns, const sigset_t *sigmask) CTX_NOEXCEPT;

/* epoll_wait(2) on the program's own epoll set: the number of events,
 * 0 when timeout_ns (< 0: none) passes first. */
CTX_API int ctx_epoll_wait(ctx_t *ctx, int epfd, struct epoll_event *events,
			   int maxevents, int64_t timeout_ns) CTX_NOEXCEPT;

/* Under strict ISO C with a system header included before ctx.h, the C
 * library hides idtype_t and siginfo_t, and the declarations that use
 * them (ctx_sigwait here, ctx_waitid below) are left out. */
#if !defined(__GLIBC__) || defined(__USE_XOPEN2K8)
/* sigwaitinfo(2) for signals blocked in the calling thread: the signal
 * number, its details in *info (may be NULL). */
CTX_API int ctx_sigwait(ctx_t *ctx, const sigset_t *set,
			siginfo_t *info) CTX_NOEXCEPT;
#endif

/* ---------------------------------------------------------------------
 * Reading and writing
 *
 * A transfer that moved bytes before the context ended returns that
 * count.  Writes move every byte (short writes continue where they
 * stopped, on a copy of the iovec, never the caller's array).
 * ------------------------------------------------------------------- */

struct mmsghdr; /* <sys/socket.h> with _GNU_SOURCE */
struct flock;   /* <fcntl.h> */
struct msghdr;

CTX_API ssize_t ctx_read(ctx_t *ctx, int fd, void *buf,
			 size_t len) CTX_NOEXCEPT;
/* Writes all len bytes unless an error or the context stops it first.
 * Like write(2), it raises SIGPIPE on a socket whose peer is gone; use
 * ctx_send(..., MSG_NOSIGNAL) to get EPIPE alone. */
CTX_API ssize_t ctx_write(ctx_t *ctx, int fd, const void *buf,
			  size_t len) CTX_NOEXCEPT;
/* recv(2); MSG_DONTWAIT never waits, MSG_WAITALL waits for all len bytes
 * (or end of stream).  ctx_send, like ctx_write, sends all len bytes. */
CTX_API ssize_t ctx_recv(ctx_t *ctx, int fd, void *buf, size_t len,
                         int flags) CTX_NOEXCEPT;
CTX_API ssize_t ctx_send(ctx_t *ctx, int fd, const void *buf, size_t len,
                         int flags) CTX_NOEXCEPT;

/* Vectored and positional reads and writes.  Positional calls never
 * move the offset. */
CTX_API ssize_t ctx_readv(ctx_t *ctx, int fd, const struct iovec *iov,
			  int iovcnt) CTX_NOEXCEPT;
CTX_API ssize_t ctx_writev(ctx_t *ctx, int fd, const struct iovec *iov,
			   int iovcnt) CTX_NOEXCEPT;
CTX_API ssize_t ctx_pread(ctx_t *ctx, int fd, void *buf, size_t len,
			  off_t offset) CTX_NOEXCEPT;
CTX_API ssize_t ctx_pwrite(ctx_t *ctx, int fd, const void *buf, size_t len,
			   off_t offset) CTX_NOEXCEPT;
CTX_API ssize_t ctx_preadv(ctx_t *ctx, int fd, const struct iovec *iov,
			   int iovcnt, off_t offset) CTX_NOEXCEPT;
CTX_API ssize_t ctx_pwritev(ctx_t *ctx, int fd, const struct iovec *iov,
			    int iovcnt, off_t offset) CTX_NOEXCEPT;

/* Datagrams and messages. */
CTX_API ssize_t ctx_recvfrom(ctx_t *ctx, int fd, void *buf, size_t len,
			     int flags, struct sockaddr *src,
			     socklen_t *srclen) CTX_NOEXCEPT;
CTX_API ssize_t ctx_sendto(ctx_t *ctx, int fd, const void *buf, size_t len,
			   int flags, const struct sockaddr *dst,
			   socklen_t dstlen) CTX_NOEXCEPT;
CTX_API ssize_t ctx_recvmsg(ctx_t *ctx, int fd, struct msghdr *msg,
			    int flags) CTX_NOEXCEPT;
/* All bytes on a stream socket. */
CTX_API ssize_t ctx_sendmsg(ctx_t *ctx, int fd, const struct msghdr *msg,
			    int flags) CTX_NOEXCEPT;
/* Waits for the first message; returns how many were received. */
CTX_API int ctx_recvmmsg(ctx_t *ctx, int fd, struct mmsghdr *msgs,
			 unsigned int n, int flags) CTX_NOEXCEPT;
CTX_API int ctx_sendmmsg(ctx_t *ctx, int fd, struct mmsghdr *msgs,
			 unsigned int n, int flags) CTX_NOEXCEPT;

/* Until count (len) or end of input; the bytes moved. */
CTX_API ssize_t ctx_sendfile(ctx_t *ctx, int out_fd, int in_fd,
			     off_t *offset, size_t count) CTX_NOEXCEPT;
CTX_API ssize_t ctx_splice(ctx_t *ctx, int fd_in, off_t *off_in, int fd_out,
			   off_t *off_out, size_t len, unsigned int flags) CTX_NOEXCEPT;
CTX_API ssize_t ctx_copy_file_range(ctx_t *ctx, int fd_in, off_t *off_in,
				    int fd_out, off_t *off_out, size_t len,
				    unsigned int flags) CTX_NOEXCEPT;

/* accept4(2); flags are SOCK_NONBLOCK and SOCK_CLOEXEC.  accept4 has no
 * per-call non-blocking form: on a blocking listener it waits for
 * readiness, then accepts, and if another thread takes the connection in
 * between that accept blocks where no context reaches it.  Give a
 * listener that several threads accept on SOCK_NONBLOCK. */
CTX_API int ctx_accept(ctx_t *ctx, int fd, struct sockaddr *addr,
                       socklen_t *addrlen, int flags) CTX_NOEXCEPT;
/* 0 once connected; -1 with the socket's own error (ECONNREFUSED, ...). */
CTX_API int ctx_connect(ctx_t *ctx, int fd, const struct sockaddr *addr,
                        socklen_t addrlen) CTX_NOEXCEPT;

/* open(2).  A FIFO opened for reading or writing alone waits, as open(2)
 * does, for the other end -- until the context ends -- and the descriptor
 * has exactly the flags asked for.  Anything else is a plain open. */
CTX_API int ctx_open(ctx_t *ctx, const char *path, int flags,
		     ... /* mode_t mode */) CTX_NOEXCEPT;

/* flock(2) with LOCK_SH or LOCK_EX (| LOCK_NB; LOCK_UN is a plain call),
 * and fcntl(F_OFD_SETLKW) on *lock.  Both return within milliseconds of
 * the context ending and never hold the lock when they fail. */
CTX_API int ctx_flock(ctx_t *ctx, int fd, int operation) CTX_NOEXCEPT;
CTX_API int ctx_lock_range(ctx_t *ctx, int fd, struct flock *lock) CTX_NOEXCEPT;

/* fsync(2), fdatasync(2).  On the epoll backend the plain call, which no
 * context can end once it has started. */
CTX_API int ctx_fsync(ctx_t *ctx, int fd) CTX_NOEXCEPT;
CTX_API int ctx_fdatasync(ctx_t *ctx, int fd) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Names and dialing
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
			    struct addrinfo **res) CTX_NOEXCEPT;
CTX_API void ctx_freeaddrinfo(struct addrinfo *res) CTX_NOEXCEPT;
CTX_API int ctx_dial(ctx_t *ctx, const char *address, int type) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Connections: listening, copying, proxying, buffered connections
 *
 * Addresses are Go's: "host:port", "[v6]:port", ":port" (no host: every
 * address of this machine for ctx_listen, this host for ctx_dial).
 * ctx_copy and ctx_proxy touch the nearest idle context (ctx_with_idle)
 * whenever the kernel takes or gives bytes either way, so a slow but
 * steady peer is never idle; a silent one is.  A ctx_conn_t is a
 * connection with a read buffer, over a plain descriptor (ctx_conn_new)
 * or TLS (ctx_ssl_dial, ctx_ssl_conn_new in <ctx/ssl.h>); one thread at
 * a time uses it.
 * ------------------------------------------------------------------- */

/* Go's net.SplitHostPort: host and port of address into the two buffers
 * (NUL-terminated; either may be NULL when not wanted).  0, EINVAL for a
 * malformed address (no port, an IPv6 address without brackets, a stray
 * bracket), ERANGE when a part does not fit.  Either part may be empty. */
CTX_API int ctx_split_host_port(const char *address, char *host,
				size_t hostlen, char *port, size_t portlen) CTX_NOEXCEPT;
/* Resolves address under ctx, sets SO_REUSEADDR, binds and, for
 * SOCK_STREAM, listens (backlog < 0: SOMAXCONN).  An empty port is port
 * 0 (any).  A blocking, close-on-exec socket, or -1 with errno: the
 * context's error, the last bind error (EADDRINUSE, ...), EADDRNOTAVAIL,
 * EINVAL for a malformed address or type. */
CTX_API int ctx_listen(ctx_t *ctx, const char *address, int type,
		       int backlog) CTX_NOEXCEPT;
/* Moves bytes from src to dst until the end of src, max bytes (SIZE_MAX:
 * no limit), an error or the end of ctx; splice(2) where one end is a
 * pipe.  The bytes written to dst; errno is then 0 if it stopped at the
 * end of src or at max, else why it stopped.  -1 with errno when it
 * moved nothing before an error or the context's end. */
CTX_API ssize_t ctx_copy(ctx_t *ctx, int dst, int src, size_t max) CTX_NOEXCEPT;
/* Both directions between a and b on the calling thread: what a sends
 * goes to b and back, and when one end reaches the end of its input the
 * other's write side is shut down (half-close).  0 once both directions
 * have ended, else the context's error or the first I/O error (EINVAL
 * for bad arguments, ENOMEM).  moved (may be NULL) is filled on every
 * return: moved[0] bytes a to b, moved[1] b to a.  Closes neither. */
CTX_API int ctx_proxy(ctx_t *ctx, int a, int b, uint64_t moved[2]) CTX_NOEXCEPT;

typedef struct ctx_conn ctx_conn_t;
/* A connection over fd, which it takes (also on failure: NULL + errno,
 * fd closed; EBADF for a negative fd). */
CTX_API ctx_conn_t *ctx_conn_new(int fd) CTX_NOEXCEPT;
/* One read: buffered bytes first, else one read from the connection;
 * 0 at the end of input, -1 with errno.  A done ctx refuses at once,
 * even with bytes buffered. */
CTX_API ssize_t ctx_conn_read(ctx_t *ctx, ctx_conn_t *c, void *buf,
			      size_t len) CTX_NOEXCEPT;
/* Go's io.ReadFull: len bytes, or fewer at the end of input (0 if none
 * came).  An error or the context's end after some bytes returns their
 * count; errno is 0 for a full count or the end of input, else why. */
CTX_API ssize_t ctx_conn_read_full(ctx_t *ctx, ctx_conn_t *c, void *buf,
				   size_t len) CTX_NOEXCEPT;
/* The next line through its '\n', NUL-terminated in buf: its length
 * including the '\n'; a line longer than len - 1 gives its first len - 1
 * bytes (no '\n'; the rest comes next); a last line without '\n' comes
 * without one; 0 at the end of input.  -1 with errno (EINVAL when len <
 * 2): then nothing of the line is lost, the next call starts it again. */
CTX_API ssize_t ctx_conn_read_line(ctx_t *ctx, ctx_conn_t *c, char *buf,
				   size_t len) CTX_NOEXCEPT;
/* All len bytes (a short count if an error or ctx ended it part-way),
 * or -1 with errno; never raises SIGPIPE. */
CTX_API ssize_t ctx_conn_write(ctx_t *ctx, ctx_conn_t *c, const void *buf,
			       size_t len) CTX_NOEXCEPT;
/* The descriptor (the connection still owns it), -1 for NULL. */
CTX_API int ctx_conn_fd(const ctx_conn_t *c) CTX_NOEXCEPT;
/* Closes the descriptor and frees c (a TLS connection sends close_notify
 * first if the socket takes it within 50 ms).  NULL is fine. */
CTX_API void ctx_conn_close(ctx_conn_t *c) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Deadlines on the wire: gRPC's grpc-timeout, Envoy's
 * x-envoy-expected-rq-timeout-ms
 * ------------------------------------------------------------------- */

/* ctx's remaining time as a grpc-timeout value: at most 8 digits and a
 * unit (H, M, S, m, u, n), the finest that holds it, rounded up; "0n"
 * once the deadline has passed.  Returns its length (10 bytes of buf
 * always suffice), 0 (and "") when ctx has no deadline, or -1 with
 * errno: EINVAL (NULL ctx, NULL buf with len > 0), ERANGE (buf too
 * small; "" written when len > 0). */
CTX_API int ctx_format_timeout(ctx_t *ctx, char *buf, size_t len) CTX_NOEXCEPT;
/* A child of parent with a deadline the header value gives from now:
 * grpc-timeout's form, or plain milliseconds without a unit (Envoy's);
 * whitespace around it is allowed.  A value too large for the clock
 * means no deadline; 0 an expired one.  NULL + errno EINVAL for a
 * malformed value (empty, a sign, a unit unknown or after more than 8
 * digits, anything after it), a NULL value or parent; ENOMEM. */
CTX_API ctx_t *ctx_with_timeout_header(ctx_t *parent,
				       const char *value) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Child processes (Go's exec.CommandContext with Cancel and WaitDelay)
 *
 * A process the context kills: when ctx ends before the process exits,
 * the library sends cancel_signal (to the whole group with new_group,
 * whether or not its leader is alive) at once, whether or not anyone
 * waits, and SIGKILL wait_delay later if it is still there.  Signals
 * never reach a recycled pid (a pidfd where the kernel has them; else
 * only before the reap).  The library installs no SIGCHLD handler and
 * reaps only the processes it started.  See ctx_proc_spawn(3).
 * ------------------------------------------------------------------- */

/* waitpid(2).  WNOHANG in options makes it a plain non-blocking check. */
CTX_API pid_t ctx_waitpid(ctx_t *ctx, pid_t pid, int *status,
			  int options) CTX_NOEXCEPT;

#if !defined(__GLIBC__) || defined(__USE_XOPEN2K8)
/* waitid(2) for P_PID, P_PIDFD, P_PGID and P_ALL: 0, info filled.  With
 * WNOHANG a plain check (info->si_pid 0: nothing to report); a done
 * context refuses it, as it refuses ctx_waitpid(..., WNOHANG). */
CTX_API int ctx_waitid(ctx_t *ctx, idtype_t idtype, id_t id,
		       siginfo_t *info, int options) CTX_NOEXCEPT;
#endif

typedef struct ctx_proc ctx_proc_t;
enum ctx_stdio { CTX_STDIO_INHERIT = 0, CTX_STDIO_NULL, CTX_STDIO_PIPE,
		 CTX_STDIO_FD };
struct ctx_proc_attr {
	const char *const *envp;   /* NULL: the caller's environment */
	const char *dir;           /* NULL: the caller's working directory */
	enum ctx_stdio stdio[3];   /* stdin, stdout, stderr; zero: inherit */
	int fd[3];                 /* the descriptor for CTX_STDIO_FD */
	int cancel_signal;         /* sent when ctx ends; 0: SIGKILL */
	int64_t wait_delay;        /* after cancel_signal, SIGKILL once this
				      passes; 0: at once */
	bool new_group;            /* own process group; signals go to the
				      whole group */
	bool pass_ctx;             /* the child gets ctx's remaining time
				      and a descriptor that ends with it
				      (CTX_TIMEOUT_NS, CTX_DONE_FD) */
};

/* 0 or an error number; a program that cannot be executed (ENOENT,
 * EACCES, a bad dir) is reported here, not as exit 127.  attr NULL:
 * defaults; file is searched in PATH when it has no '/'.  The process
 * holds its own reference to ctx until it is reaped. */
CTX_API int ctx_proc_spawn(ctx_proc_t **p, ctx_t *ctx, const char *file,
			   char *const argv[],
			   const struct ctx_proc_attr *attr) CTX_NOEXCEPT;
CTX_API pid_t ctx_proc_pid(const ctx_proc_t *p) CTX_NOEXCEPT;
/* The parent's end of pipe n (0, 1, 2), else -1.  Owned by p: use the
 * ctx_ calls on it, close it early with ctx_proc_close, never close(2). */
CTX_API int ctx_proc_stdio(const ctx_proc_t *p, int n) CTX_NOEXCEPT;
CTX_API int ctx_proc_close(ctx_proc_t *p, int n) CTX_NOEXCEPT;
/* 0, ESRCH once reaped, or EINVAL; never reaches a recycled pid. */
CTX_API int ctx_proc_signal(ctx_proc_t *p, int sig) CTX_NOEXCEPT;
/* Block until the process exits (ctx does not end the wait: it kills the
 * process), reap it, fill *status as waitpid does.  0 if it ended on its
 * own, ctx's error if the library signalled it because ctx ended.  With
 * new_group, once ctx ended it returns only when no member of the group
 * runs; before, a leader whose group still runs stays unreaped. */
CTX_API int ctx_proc_wait(ctx_proc_t *p, int *status) CTX_NOEXCEPT;
/* Kills (SIGKILL) and reaps a process never waited for (with new_group,
 * what still runs of its group, and waits for it to go), closes the
 * pipes, frees p.  NULL is fine. */
CTX_API void ctx_proc_free(ctx_proc_t *p) CTX_NOEXCEPT;
/* Run argv (PATH search) with its stdout collected into *out (malloc'd,
 * NUL-terminated, the caller frees it; NULL if nothing was started);
 * returns as ctx_proc_wait. */
CTX_API int ctx_proc_output(ctx_t *ctx, char *const argv[], char **out,
			    size_t *outlen, int *status) CTX_NOEXCEPT;

/* In a program started with pass_ctx: the context its parent passed
 * (the parent's remaining time, counted from this program's start, and
 * an end when the parent's context ends or the parent dies); else
 * ctx_background().  Made by the first call, which takes both variables
 * out of the environment (as setenv(3) does: before threads that read
 * it), and kept by the library until exit: every call returns the same
 * context, which the caller does not release (ctx_ref and ctx_unref
 * pair as usual).  Pass it on with pass_ctx.  NULL + errno (ENOMEM,
 * EMFILE, EPERM for a descriptor that cannot be watched) if it cannot
 * be made; a later call tries again. */
CTX_API ctx_t *ctx_inherited(void) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------- */

typedef struct ctx_thread ctx_thread_t;

/* Start fn(ctx, arg) on a new thread that holds its own reference to ctx
 * until fn returns: the caller may release its own at once.  fn must
 * return (not call pthread_exit), or joiners wait forever.  Returns 0 or
 * an error number (EINVAL, ENOMEM, EAGAIN). */
CTX_API int ctx_thread_create(ctx_thread_t **t, ctx_t *ctx,
			      void *(*fn)(ctx_t *ctx, void *arg), void *arg) CTX_NOEXCEPT;

/* The same with pthread attributes (stack size, guard, scheduling, CPU
 * affinity); NULL: the defaults.  The attributes must leave the thread
 * joinable: detached ones are refused with EINVAL (see
 * ctx_thread_detach).  Errors as pthread_create's besides. */
CTX_API int ctx_thread_create_attr(ctx_thread_t **t,
				   const pthread_attr_t *attr, ctx_t *ctx,
				   void *(*fn)(ctx_t *ctx, void *arg),
				   void *arg) CTX_NOEXCEPT;

/* Wait for t's fn to return, or for ctx to end.  0: joined, *result is
 * fn's value and t is freed.  The context's error: not joined, t is still
 * valid and may be joined or detached later. */
CTX_API int ctx_thread_join(ctx_t *ctx, ctx_thread_t *t,
			    void **result) CTX_NOEXCEPT;

/* Let t free itself when fn returns.  t must not be used afterwards. */
CTX_API int ctx_thread_detach(ctx_thread_t *t) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Wait groups
 * ------------------------------------------------------------------- */

/* As Go's sync.WaitGroup.  A counter driven below zero is
 * reported on stderr and makes every wait return EINVAL. */
typedef struct ctx_wg ctx_wg_t;
CTX_API ctx_wg_t *ctx_wg_new(void) CTX_NOEXCEPT; /* NULL + errno ENOMEM */
CTX_API void ctx_wg_add(ctx_wg_t *wg, int delta) CTX_NOEXCEPT;
CTX_API void ctx_wg_done(ctx_wg_t *wg) CTX_NOEXCEPT;
/* 0 once the counter is zero, else the context's error. */
CTX_API int ctx_wg_wait(ctx_t *ctx, ctx_wg_t *wg) CTX_NOEXCEPT;
/* Go 1.25's WaitGroup.Go: add one, run fn(ctx, arg) on a new detached
 * thread holding its own reference to ctx, and mark done only once that
 * reference is dropped.  0 or an error number (nothing added then). */
CTX_API int ctx_wg_go(ctx_wg_t *wg, ctx_t *ctx,
		      void (*fn)(ctx_t *ctx, void *arg), void *arg) CTX_NOEXCEPT;
CTX_API void ctx_wg_free(ctx_wg_t *wg) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Error groups
 * ------------------------------------------------------------------- */

/* As Go's errgroup.WithContext.  Each ctx_group_go runs fn
 * on a new thread with the group's context; the first non-zero result
 * cancels that context with the result as its cause. */
typedef struct ctx_group ctx_group_t;
/* NULL + errno. */
CTX_API ctx_group_t *ctx_group_new(ctx_t *parent) CTX_NOEXCEPT;
/* Borrowed: valid until ctx_group_free.  Cancelled with the first error
 * as its cause, and by ctx_group_wait when all have returned. */
CTX_API ctx_t *ctx_group_ctx(ctx_group_t *g) CTX_NOEXCEPT;
/* At most n functions at once (n < 0: no limit): ctx_group_go blocks
 * until a slot is free or the group's context ends (then it returns
 * that context's error and fn never runs). */
CTX_API int ctx_group_set_limit(ctx_group_t *g, int n) CTX_NOEXCEPT;
/* Attributes (stack size, guard, scheduling, affinity) for the group's
 * threads started from now on; NULL: the defaults.  EINVAL for detached
 * attributes or a fixed stack address. */
CTX_API int ctx_group_set_attr(ctx_group_t *g,
			       const pthread_attr_t *attr) CTX_NOEXCEPT;
/* 0, or an error number if no thread could start (fn then never runs). */
CTX_API int ctx_group_go(ctx_group_t *g, int (*fn)(ctx_t *ctx, void *arg),
			 void *arg) CTX_NOEXCEPT;
/* errgroup.TryGo: 0, or EAGAIN at the limit (fn does not run). */
CTX_API int ctx_group_try_go(ctx_group_t *g,
			     int (*fn)(ctx_t *ctx, void *arg), void *arg) CTX_NOEXCEPT;
/* Wait for every function (not cancellable: they watch the group's
 * context); returns the first non-zero result, 0 if none.  No thread of
 * the group runs after it returns. */
CTX_API int ctx_group_wait(ctx_group_t *g) CTX_NOEXCEPT;
/* Cancel the group's context, wait for its functions, free it. */
CTX_API void ctx_group_free(ctx_group_t *g) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Channels and select
 * ------------------------------------------------------------------- */

/* Channels of fixed-size elements, as Go's; capacity 0 is a rendezvous
 * (a send returns once a receiver took the element).  A send or receive
 * the context ends moved nothing. */
typedef struct ctx_chan ctx_chan_t;
CTX_API ctx_chan_t *ctx_chan_new(size_t elem_size,
				 size_t capacity) CTX_NOEXCEPT;
/* 0, the context's error, or EPIPE if the channel is closed. */
CTX_API int ctx_chan_send(ctx_t *ctx, ctx_chan_t *ch,
			  const void *elem) CTX_NOEXCEPT;
/* 0, the context's error, or EPIPE once closed and drained. */
CTX_API int ctx_chan_recv(ctx_t *ctx, ctx_chan_t *ch, void *elem) CTX_NOEXCEPT;
/* Without waiting: 0, EAGAIN (would wait), EPIPE (closed; for
 * a receive: closed and drained); EINVAL for NULL arguments. */
CTX_API int ctx_chan_try_send(ctx_chan_t *ch, const void *elem) CTX_NOEXCEPT;
CTX_API int ctx_chan_try_recv(ctx_chan_t *ch, void *elem) CTX_NOEXCEPT;
/* The elements buffered now; the capacity. */
CTX_API size_t ctx_chan_len(ctx_chan_t *ch) CTX_NOEXCEPT;
CTX_API size_t ctx_chan_cap(ctx_chan_t *ch) CTX_NOEXCEPT;
/* Wakes everyone: later sends fail, receives drain then fail. */
CTX_API void ctx_chan_close(ctx_chan_t *ch) CTX_NOEXCEPT;
/* No thread may be inside a send or receive on ch. */
CTX_API void ctx_chan_free(ctx_chan_t *ch) CTX_NOEXCEPT;

/* Go's select. */
enum ctx_case_kind { CTX_CASE_RECV = 1, CTX_CASE_SEND, CTX_CASE_FD, CTX_CASE_DONE };
struct ctx_case {
	int kind;          /* enum ctx_case_kind */
	ctx_chan_t *ch;    /* RECV, SEND: NULL makes the case never ready */
	void *elem;        /* RECV: where the element goes; SEND: the element */
	int fd;            /* FD: fd < 0 is never ready */
	short events;      /* FD: POLLIN, POLLOUT, ... */
	short revents;     /* FD: set when chosen */
	ctx_t *done;       /* DONE: ready once it is done (NULL: never) */
	int result;        /* the chosen case's: 0, EPIPE, or done's error */
};
/* Completes exactly one case and returns its index, choosing uniformly
 * among the ready ones.  timeout_ns == 0 only looks (Go's default:),
 * < 0 waits without limit.  -1 with errno: ctx's error when ctx ends
 * first, EAGAIN when nothing was ready in time, EINVAL, ENOMEM. */
CTX_API int ctx_select(ctx_t *ctx, struct ctx_case *cases, size_t n,
		       int64_t timeout_ns) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Condition variables and semaphores
 * ------------------------------------------------------------------- */

/* A condition variable used with an ordinary pthread_mutex_t, whose
 * waits a context can end.  Zero-initialised (or CTX_COND_INIT) is
 * valid; it allocates nothing and needs no destroy.  The fields are
 * private. */
typedef struct ctx_cond {
	unsigned int ctx__lock;    /* a ctx__lock_t */
	unsigned int ctx__waiters; /* threads queued */
	void *ctx__head, *ctx__tail;
} ctx_cond_t;
#ifdef __cplusplus
#define CTX_COND_INIT {} /* the same, without -Wextra's missing-field warning */
#else
#define CTX_COND_INIT { 0 }
#endif

/* The caller holds mutex; it is released while waiting and held again on
 * every return.  0 after a signal or broadcast (or spuriously: loop on
 * the predicate), else the context's error; _until also returns
 * CTX_DEADLINE_EXCEEDED once deadline_ns (ctx_now() clock) passes.
 * EINVAL for NULL arguments.  A signal issued after a waiter's predicate
 * check under the mutex is never lost. */
CTX_API int ctx_cond_wait(ctx_t *ctx, ctx_cond_t *cond,
			  pthread_mutex_t *mutex) CTX_NOEXCEPT;
CTX_API int ctx_cond_wait_until(ctx_t *ctx, ctx_cond_t *cond,
				pthread_mutex_t *mutex, int64_t deadline_ns) CTX_NOEXCEPT;
/* Wake one waiter / every waiter.  No waiter: a load, no system call. */
CTX_API void ctx_cond_signal(ctx_cond_t *cond) CTX_NOEXCEPT;
CTX_API void ctx_cond_broadcast(ctx_cond_t *cond) CTX_NOEXCEPT;

/* A weighted semaphore, as Go's x/sync/semaphore.Weighted: FIFO, so a
 * large acquire at the head is not passed by small ones behind it. */
typedef struct ctx_sem ctx_sem_t;
/* NULL + errno EINVAL, ENOMEM. */
CTX_API ctx_sem_t *ctx_sem_new(int64_t size) CTX_NOEXCEPT;
/* 0, or the context's error (then nothing was taken); EINVAL for NULL,
 * n < 0 or n > size. */
CTX_API int ctx_sem_acquire(ctx_t *ctx, ctx_sem_t *s, int64_t n) CTX_NOEXCEPT;
CTX_API bool ctx_sem_try_acquire(ctx_sem_t *s, int64_t n) CTX_NOEXCEPT;
/* Releasing more than is held is reported on stderr. */
CTX_API void ctx_sem_release(ctx_sem_t *s, int64_t n) CTX_NOEXCEPT;
CTX_API void ctx_sem_free(ctx_sem_t *s) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Time that tests control
 *
 * With the manual clock everything libctx times reads it: ctx_now,
 * deadlines, sleeps, timed condition waits, select, poll and epoll
 * timeouts, idle contexts, the kill delay of child processes,
 * after-funcs and done descriptors.  Known threads: the one that called
 * ctx_clock_manual and every thread libctx starts from then on.  A known
 * thread is durably blocked while it waits in a libctx call that only
 * time or another known thread can end (a sleep, ctx_wait, a condition
 * variable, a semaphore, a channel, a select without descriptor cases,
 * a join, a wait group, a group), and once it has finished; a thread
 * waiting on a descriptor is not.
 * ------------------------------------------------------------------- */

/* From now on libctx's clock moves only when the program moves it; it
 * starts at the real time.  0, or EBUSY if it is manual already. */
CTX_API int ctx_clock_manual(void) CTX_NOEXCEPT;
/* Move the manual clock forward by ns: everything due by then fires
 * (contexts end, done descriptors turn readable, after-funcs are queued)
 * and every wait whose time has come wakes, before this returns.  Does
 * nothing with the real clock or for ns < 0. */
CTX_API void ctx_clock_advance(int64_t ns) CTX_NOEXCEPT;
/* Block until every known thread but the caller is durably blocked
 * (and every after-func queued has returned): 0, or ctx's error when it
 * ends first.  With the real clock: 0 at once. */
CTX_API int ctx_clock_wait_idle(ctx_t *ctx) CTX_NOEXCEPT;
/* While on (and the clock manual), whenever every known thread is
 * durably blocked the clock jumps to the next time something is due. */
CTX_API void ctx_clock_auto(bool on) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * The backend
 * ------------------------------------------------------------------- */

/* "epoll" or "io_uring": the backend this process's waits use, chosen
 * once by CTX_BACKEND=epoll|io_uring (epoll when io_uring is refused). */
CTX_API const char *ctx_backend(void) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Seeing what is stuck
 *
 * CTX_DUMP_SIGNAL=USR1 (or another signal's name, with or without SIG)
 * in the environment makes that signal write ctx_dump's report to
 * stderr, or to the file CTX_DUMP_FILE names (appended to), from a
 * thread of the library; the program goes on.
 *
 * CTX_DEBUG=stuck (or stuck=MS; 1000 by default): when a context ends,
 * every thread still under it MS later -- one started by libctx under
 * it, or one waiting in libctx under it -- is reported once on stderr,
 * with how the context ended and what the thread is doing: the libctx
 * call, or outside libctx the system call it sits in, with its
 * descriptor described, or "running".
 *
 * Where <sys/sdt.h> was found at build time the library has USDT probes
 * (provider libctx: create, cancel, wait_begin, wait_end, wake), and
 * scripts for bpftrace are installed in share/libctx/ (ctx_dump(3)).
 * ------------------------------------------------------------------- */

/* Write to fd what every thread known to libctx is doing: each one
 * waiting in libctx with its call, the descriptor it waits for
 * described (socket addresses, path, pipe), the context chain with the
 * file:line that created each, how long it has waited, the time left to
 * its deadline, how its context ended if it has; each library thread
 * and what it serves; with CTX_DEBUG=leaks every live context, as a
 * tree.  0, EBADF, ENOMEM (what fit was written), or write(2)'s error
 * (EPIPE without a SIGPIPE). */
CTX_API int ctx_dump(int fd) CTX_NOEXCEPT;

/* ---------------------------------------------------------------------
 * Debugging
 *
 * CTX_DEBUG=leaks in a program's environment makes it report on stderr at
 * exit every context created and never released, with the file and line
 * that created it (and, for one that ended, its ctx_origin), and every
 * thread handle never joined or detached.  In C the constructors (and
 * ctx_thread_create) are also macros that record that site, and
 * ctx_cancel, ctx_cancel_cause, ctx_cancel_msg and ctx_release macros
 * that record theirs for ctx_origin; calling any of them through a
 * pointer works too, without a site.  Define CTX_NO_SITE_MACROS for
 * none.  C++ has no such macros, since a function-like macro would
 * shadow the function's name (`::ctx_with_cancel(p)`, a member of that
 * name, a template argument with a comma); there <ctx.hpp>, or any
 * caller, gives the site with ctx_set_site.
 *
 * CTX_DEBUG=checks makes handles carry a magic number and keeps freed
 * ones poisoned for a while, so that a double release, a use after the
 * last unref, a second join or detach, a second ctx_after_stop and the
 * release of a borrowed context (ctx_group_ctx) are reported on stderr,
 * naming the function and the creating file and line, before abort().
 * A thread joining itself gets EDEADLK in every mode.  Both can be given
 * ("leaks,checks").
 * ------------------------------------------------------------------- */

/* The site that the next of these calls made by this thread records:
 * a constructor (ctx_with_*, ctx_without_cancel) or ctx_thread_create
 * (_attr) as where it was made (CTX_DEBUG=leaks, ctx_dump), ctx_cancel,
 * ctx_cancel_cause, ctx_cancel_msg or ctx_release as where the end came
 * from (ctx_origin).  That call takes the site and clears it, also when
 * it fails.  file is kept, not copied: a string literal such as
 * __FILE__.  What the C macros below do for each call; for C++ and for
 * wrappers that pass their own caller's site. */
CTX_API void ctx_set_site(const char *file, int line) CTX_NOEXCEPT;

/* Not for direct use: what the macros below call (ctx__site is
 * ctx_set_site under the name older programs' macros call). */
CTX_API void ctx__site(const char *file, int line) CTX_NOEXCEPT;
CTX_API void ctx__cancel_at(ctx_t *ctx, const char *file,
			    int line) CTX_NOEXCEPT;
CTX_API void ctx__cancel_cause_at(ctx_t *ctx, int cause, const char *file,
				  int line) CTX_NOEXCEPT;
CTX_API void ctx__cancel_msg_at(const char *file, int line, ctx_t *ctx,
				int cause, const char *fmt,
				...) CTX_NOEXCEPT
	__attribute__((format(printf, 5, 6)));
CTX_API void ctx__release_at(ctx_t *ctx, const char *file,
			     int line) CTX_NOEXCEPT;

#if !defined(CTX_BUILDING_LIBRARY) && !defined(CTX_NO_SITE_MACROS) && \
	!defined(__cplusplus)
#define ctx_cancel(c) ctx__cancel_at(c, __FILE__, __LINE__)
#define ctx_cancel_cause(c, cause) \
	ctx__cancel_cause_at(c, cause, __FILE__, __LINE__)
#define ctx_cancel_msg(c, cause, ...) \
	ctx__cancel_msg_at(__FILE__, __LINE__, c, cause, __VA_ARGS__)
#define ctx_release(c) ctx__release_at(c, __FILE__, __LINE__)
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
#define ctx_with_hangup(p, fd) CTX__AT(ctx_with_hangup(p, fd))
#define ctx_with_pidfd(p, fd) CTX__AT(ctx_with_pidfd(p, fd))
#define ctx_with_timeout_header(p, v) CTX__AT(ctx_with_timeout_header(p, v))
#define ctx_with_idle(p, i) CTX__AT(ctx_with_idle(p, i))
#define ctx_with_merge(p, o) CTX__AT(ctx_with_merge(p, o))
#define ctx_with_grace(p, g) CTX__AT(ctx_with_grace(p, g))
#define ctx_thread_create(t, c, f, a) CTX__AT(ctx_thread_create(t, c, f, a))
#define ctx_thread_create_attr(t, at, c, f, a) \
	CTX__AT(ctx_thread_create_attr(t, at, c, f, a))
#endif

#ifdef __cplusplus
}
#endif

#endif /* CTX_H */
