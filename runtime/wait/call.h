/*
 * The one skeleton of every blocking call, as libdill has it: refuse if
 * the context is done, try without blocking, wait, try again.  A call
 * fills a struct ctx__call with its try and with what the wait waits
 * for, and ctx__call_run does the rest:
 *
 *   refuse  the context is done: its error, before anything is tried,
 *           even when what the call waits for is also ready;
 *   try     c->try(c): CTX__DONE (finished: the result is in the call's
 *           own struct, around c), CTX__AGAIN (not yet), or an errno
 *           value (the call failed);
 *   wait    for what the last try named: c->fd's c->events; or, with
 *           no descriptor to wait on (fd < 0), a pause; c->deadline
 *           (the call's own, CTX__NEVER: none) bounds either, and
 *           c->backoff, when set, makes each wait a pause of its next
 *           step -- on a descriptor too, which is then looked at again
 *           after each step, for what no descriptor says; or, for an
 *           object threads park on (c->lock set: a channel, a wait
 *           group, a semaphore, a thread's end), a wake-up from whoever
 *           completes the parked thread, the try having queued it
 *           (wait/waitq.h) and returned with *c->lock held, which the
 *           wait drops while it sleeps and takes again (this wait has
 *           no deadline but the context's);
 *   retry   try again.  A try may change fd, events and backoff for the
 *           next wait.
 *
 * What ends the call besides its try: the context's error, an errno
 * value from the wait (EBADF: c->fd is not open), or CTX__EXPIRED once
 * c->deadline passes.  wait_first skips the first try: for a call whose
 * try would block without a wait before it (or that has no try at all:
 * a sleep).
 *
 * The back-off schedules are named and live in call.c, so that every
 * call that has nothing to wait on paces its tries in one of a few
 * known ways.  What a call waits for by a schedule is outside the
 * process, and moves in real time: under the manual clock a pause ends
 * when its step has passed on either clock, and does not count as
 * durably blocked (wait.h, want->pace).
 *
 * Included by wait/wait.h.
 */
#ifndef CTX_CALL_H
#define CTX_CALL_H

#include "wait/wait.h"

/* What a try says, besides an errno value. */
enum { CTX__DONE = 0, CTX__AGAIN = -3 };

/* A schedule of pauses: first, then each one grow_pct per cent longer
 * than the last, up to max. */
struct ctx__backoff {
	int64_t first, max;
	int grow_pct;
};

/* The schedules, each named for what waits by it. */
/* A child process or group (ctx_waitpid, ctx_waitid without a pidfd; a
 * process group emptying) and a connect refused for a full backlog:
 * 1 ms doubling up to 50 ms. */
extern const struct ctx__backoff ctx__backoff_child;
/* A FIFO's other end (ctx_open): 100 us growing by half up to 10 ms. */
extern const struct ctx__backoff ctx__backoff_fifo;
/* A file lock held by another (ctx_flock, ctx_lock_range): 50 us
 * growing by half up to 5 ms. */
extern const struct ctx__backoff ctx__backoff_lock;
/* The rest of a MSG_PEEK | MSG_WAITALL (the peeked bytes keep the socket
 * readable): 50 us doubling up to 5 ms. */
extern const struct ctx__backoff ctx__backoff_peek;

/* The pause to make now by schedule b, *step holding the last one (0
 * before the first); *step moves on. */
int64_t ctx__backoff_next(const struct ctx__backoff *b, int64_t *step);

struct ctx__call {
	int (*try)(struct ctx__call *c);
	int fd;                 /* the wait's descriptor; < 0: none */
	short events;           /* POLLIN, POLLOUT */
	const struct ctx__backoff *backoff; /* NULL: no pauses */
	int64_t deadline;       /* the call's own; CTX__NEVER: none */
	bool wait_first;        /* wait before the first try */
	ctx__lock_t *lock;      /* a parking wait: dropped while it sleeps */
	const char *call;       /* the libctx call, for the record; or NULL */
	int64_t step;           /* the skeleton's: the last pause */
};

/* The wait between two tries: 0 to try again, else what ends the call
 * (call.c). */
int ctx__call_wait(ctx_t *ctx, struct ctx__call *c);

/* Run the call: CTX__DONE, or what ended it (see the top).  Inline so
 * that the first try, the one that usually finishes, is a direct call. */
static inline int ctx__call_run(ctx_t *ctx, struct ctx__call *c)
{
	int e = ctx_err(ctx);
	if (e)
		return e;
	if (c->wait_first && (e = ctx__call_wait(ctx, c)))
		return e;
	while ((e = c->try(c)) == CTX__AGAIN)
		if ((e = ctx__call_wait(ctx, c)))
			return e;
	return e;
}

/* errno = e; -1: how the calls that mirror a system call fail. */
static inline int ctx__fail(int e)
{
	errno = e;
	return -1;
}

#endif
