/*
 * The contract every blocking call of the API keeps (ctx.h, "Cancellable
 * waits"), as rows for the table-driven test in tests/contract.c.
 *
 * A row arranges that its call would wait (setup), can make what it
 * waits for come (ready), makes the call, and checks what a completed
 * call returned (check) and that a refused or ended one moved, took and
 * changed nothing (kept).  The engine runs every row through every
 * situation below that applies to it; the rows live in tests/contract/,
 * one file per folder of runtime/.
 */
#ifndef CTX_TEST_CONTRACT_H
#define CTX_TEST_CONTRACT_H

#include "testutil.h"

/* When something comes or a deadline falls: short, as every row runs
 * every situation; and how late "promptly" may be on a shared, loaded
 * machine. */
#define CT_SHORT_MS 20
#define CT_SHORT (CT_SHORT_MS * CTX_MSEC)
#define CT_LATE_MS 2000
#define CT_QUIET_MS 20          /* this long without data: nothing came */
#define CT_BOUND (5 * CTX_SEC)  /* the deadline of a call that must not end
				 * by it: a broken one fails, not hangs */

enum ct_situation {
	CT_DONE,     /* the context is done before the call, and what the
			call waits for is there: refused at once */
	CT_CANCEL,   /* cancelled while the call waits */
	CT_DEADLINE, /* the context's deadline passes while it waits */
	CT_READY,    /* what it waits for is there: the plain call's result */
	CT_LATER,    /* what it waits for comes while it waits */
	CT_PARTIAL,  /* a transfer that moved some bytes, then was ended,
			returns the count */
	CT_STORM,    /* the deadline while it waits, with a signal every
			millisecond interrupting every system call: EINTR
			is retried inside, never returned */
	CT_NSITUATIONS,
};

/* Row flags: the situations that do not apply to a call (one that never
 * waits has no CT_CANCEL), and ... */
#define CT_NOT(s) (1u << (s))
#define CT_NEVER_WAITS (CT_NOT(CT_CANCEL) | CT_NOT(CT_DEADLINE) |            \
			CT_NOT(CT_LATER) | CT_NOT(CT_PARTIAL) | CT_NOT(CT_STORM))
#define CT_NOT_PARTIAL CT_NOT(CT_PARTIAL)
/* ... a done context refuses only a call that would wait, so CT_DONE
 * runs it in the arrangement where it waits (ctx_group_go, whose
 * functions run under a done context as well). */
#define CT_DONE_WAITING (1u << 16)
/* The row forks a helper that exits without exec: skipped under
 * valgrind, which checks the child's copy of the heap at its exit (what
 * only the parent's other threads reach looks lost) and then replaces
 * the child's exit status with its error code. */
#define CT_FORKS (1u << 17)

/* How a call reports an error. */
enum ct_style {
	CT_ERRNO,  /* -1 with errno, as the system call it mirrors */
	CT_RETURN, /* the error number, 0 on success */
	CT_EAI,    /* EAI_SYSTEM with errno (ctx_getaddrinfo) */
};

struct ct_row {
	const char *name;
	enum ct_style style;
	int arg;                 /* for setup: a kind of descriptor, flags */
	unsigned flags;          /* CT_NOT(...), CT_DONE_WAITING */
	size_t size;             /* bytes of state the functions share,
				    zeroed before setup */
	/* The call would wait now; asserts. */
	void (*setup)(void *st, int arg);
	/* Make what the call waits for come: 0 or an error number.  It may
	 * run on a helper thread (CT_LATER), so it asserts nothing; it may
	 * wait for what it starts to be there. */
	int (*ready)(void *st);
	/* Optional, on the test's thread after ready, before the refusals
	 * of CT_DONE: wait until what ready made shows (data readable, a
	 * child exited), so that a refusal refuses what is really there. */
	void (*settle)(void *st);
	long (*call)(ctx_t *c, void *st);
	/* A call that completed returned rc: the plain call's result. */
	void (*check)(void *st, long rc);
	/* After ready, following calls that were refused or ended: what
	 * the call waits for is all there, and nothing else changed. */
	void (*kept)(void *st);
	void (*teardown)(void *st);
	/* Transfers (CT_PARTIAL): arrange that the call moves some bytes
	 * and then waits; unstick a call that waits too long (it asserts
	 * nothing); check that exactly n bytes moved, in order. */
	void (*partial)(void *st);
	void (*unstick)(void *st);
	void (*moved)(void *st, long n);
};

/* The rows, one table per folder of runtime/, each ending with a row
 * whose name is NULL. */
extern const struct ct_row ct_rows_io[];
extern const struct ct_row ct_rows_stream[];
extern const struct ct_row ct_rows_socket[];
extern const struct ct_row ct_rows_files[];
extern const struct ct_row ct_rows_sync[];
extern const struct ct_row ct_rows_proc[];
extern const struct ct_row ct_rows_net[];

#endif
