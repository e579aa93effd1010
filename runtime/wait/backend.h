/*
 * The interface between the one wait loop (reactor.c) and the kernel
 * mechanism a thread sleeps in: one file per mechanism (poll.c, the
 * readiness backend; uring.c, io_uring), chosen once per process in
 * reactor.c, the only file that asks which one runs.  Private to the
 * wait layer: the layers above see wait.h.
 *
 * A backend sleeps until one of three things: a descriptor in the set is
 * ready, the thread's wake-up descriptor is written (ctx__reactor_wake;
 * readiness.c makes it and says what it is), or
 * `limit` (CLOCK_MONOTONIC ns, CTX__NEVER for none) passes.  It may return
 * early for any reason; the loop looks at the state again either way.
 */
#ifndef CTX_BACKEND_H
#define CTX_BACKEND_H

#include "wait/wait.h"

struct ctx__backend {
	const char *name;
	/* Can this process use it?  Called once, before any wait. */
	bool (*usable)(void);
	/* One sleep.  fds[0..n) are the caller's (n may be 0) and have
	 * room for two more entries after them, which the backend may use.
	 * Sets each revents and *ready to how many are non-zero. */
	int (*sleep)(int wakefd, struct pollfd *fds, nfds_t n, int64_t limit,
		     int *ready);
	/* Before a sleep, while the thread still counts as awake (so no
	 * new wake-up writes the descriptor): a backend that left it
	 * readable after its last sleep empties it here, and one that
	 * times the sleep on it arms it for limit (an arming clears a
	 * wake-up written before it, readiness.c).  0 or an errno value;
	 * NULL if there is nothing to do. */
	int (*settle)(int wakefd, int64_t limit);
	/* Transfers: NULL where the backend has none.  start submits (0, or
	 * an errno value with nothing submitted); finish cancels what is
	 * still in flight and waits until it is over. */
	int (*xfer_start)(int wakefd, struct ctx__xfer *x);
	void (*xfer_finish)(int wakefd, struct ctx__xfer *x);
	/* This thread is going, or is the child of a fork: drop the
	 * thread's kernel objects (after a fork they are the parent's). */
	void (*thread_exit)(void);
};

extern const struct ctx__backend ctx__backend_poll;  /* poll.c */
extern const struct ctx__backend ctx__backend_uring; /* uring.c */

/* readiness.c: the thread's wake-up descriptor (made by wakefd: the
 * descriptor, or -errno; written by wake), and the sleep in poll(2) that
 * both backends use for readiness, as the table's sleep, settle and
 * thread_exit.  woke: a sleep of the backend's own saw the wake-up
 * descriptor readable (its timer may have fired). */
int ctx__readiness_wakefd(void);
void ctx__readiness_wake(int wakefd);
void ctx__readiness_woke(void);
void ctx__readiness_force_split(void); /* test hook */
int ctx__readiness_sleep(int wakefd, struct pollfd *fds, nfds_t n,
			 int64_t limit, int *ready);
int ctx__readiness_settle(int wakefd, int64_t limit);
void ctx__readiness_exit(void);

#endif
