/*
 * A storm of signals (storm.c): a handler installed without SA_RESTART
 * for SIGUSR1, and a thread that sends it to the caller's thread every
 * millisecond, so that every system call the caller blocks in fails with
 * EINTR over and over.  The contract test runs every blocking call under
 * it as well.
 */
#ifndef CTX_TEST_STORM_H
#define CTX_TEST_STORM_H

#include <signal.h>
#include <stdatomic.h>

#include "testutil.h"

struct storm {
	pthread_t thread, target;
	atomic_bool stop;
	struct sigaction old;
	int64_t t0;     /* when it began */
};

void storm_start(struct storm *s);
/* The storm over, the old disposition back; how often the handler ran
 * since storm_start. */
int storm_stop(struct storm *s);

#endif
