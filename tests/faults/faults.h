/*
 * What the fault suite's files share (tests/faults/: faults.c, emfile.c,
 * enomem.c, storm.c): settings, and the record of problems found where a
 * Check assertion must not be made, which the test's thread asserts.
 */
#ifndef CTX_TEST_FAULTS_H
#define CTX_TEST_FAULTS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define HOUR (3600 * CTX_SEC)
#define TOL_MS 2000
#define SHORT_MS 10           /* deadlines of the emfile calls */
#define STORM_ROUNDS 3
#define STORM_DL_MS 60        /* deadlines under the storm */
#define STORM_EVENT_MS 40     /* data, cancels, dones under the storm */
#define STORM_PERIOD_US 100

static const char key[] = "faults";

static inline int64_t tol(void)
{
	return (tu_valgrind() ? 10 : 1) * (int64_t)TOL_MS * CTX_MSEC;
}

static inline void set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

static inline bool wait_flag(_Atomic int *f)
{
	int64_t end = ctx_now() + tol();

	while (!atomic_load(f) && ctx_now() < end)
		tu_sleep_ns(200 * CTX_USEC);
	return atomic_load(f) != 0;
}

/* Problems found where a Check assertion must not be made (another
 * thread; an injected failure still armed): the first is kept
 * (faults.c). */
__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...);
void notes_reset(void);
void assert_no_notes(void);

/* A thread function that counts itself and waits for its context
 * (enomem.c). */
void *thread_fn(ctx_t *ctx, void *arg);

/* The suite's cases, each in its file. */
void add_faults_emfile(Suite *s);
void add_faults_enomem(Suite *s);
void add_faults_storm(Suite *s);

#endif
