/*
 * What the stress suite's files share (tests/soak/: stress.c, soak.c,
 * soak_ops.c): its settings, a seeded generator per thread, and the
 * record of failures found off the test's thread, which the test's
 * thread asserts (so the suite works with CK_FORK=no).
 */
#ifndef CTX_TEST_STRESS_H
#define CTX_TEST_STRESS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#define TOL_MS 2000           /* how late a wait may end on a busy machine */
#define MAX_DL_US 50000       /* deadlines and delays: 0 to 50 ms */
#define SOAK_S 5              /* default soak; STRESS_SECONDS overrides */
#define SOAK_SCALE 25         /* durations / 25: 0-2 ms; STRESS_SCALE */
#define WORKERS 6             /* STRESS_WORKERS overrides (make soak: 10) */
#define MAX_WORKERS 64
#define MAX_CHAIN 6
#define MAX_ACTS 4
#define TREE_MAX 40
#define CHAN_PEER_MS 200      /* a helper's own send/receive timeout */
#define RACE_MS 200           /* per kind of wait */
#define QUICK_RACE_MS 100
#define RACE_MAX 20000
#define RACE_MIN 10           /* iterations however slow the machine: a
			       * loaded one ran 8 in RACE_MS */
#define EXIT_MS 750           /* per variant */
#define EXIT_BATCH 32
#define QUICK_EXIT_BATCH 8
#define EXIT_STACK (128 * 1024)

/* Causes, so that an error can be traced to who caused it. */
enum {
	CAUSE_HELPER = 1001, /* a helper cancelled a node above the leaf */
	CAUSE_EPOCH,         /* the test thread cancelled the epoch root */
	CAUSE_SELF,          /* the worker cancelled before waiting */
	CAUSE_DL,            /* a deadline made with a _cause constructor */
	CAUSE_TREE,          /* the tree operation's own cancels */
};

static const char value_key[] = "stress";

/* splitmix64: one generator per thread. */
struct rng {
	uint64_t s;
};

static inline uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline unsigned rn(struct rng *r, unsigned n)
{
	return n ? (unsigned)(rnd(r) % n) : 0;
}

static inline bool chance(struct rng *r, unsigned pct)
{
	return rn(r, 100) < pct;
}

/* The soak's time scale: its random durations are divided by this
 * (STRESS_SCALE; 1 is the original 0-50 ms scale). */
extern unsigned stress_time_div;
/* The run's seed: STRESS_SEED, or one of the clock's. */
extern unsigned long long stress_seed;
void pick_seed(void);

/* How late a wait may end; how much earlier than a call's own time its
 * context may end with the call still completing (see stress.c). */
int64_t tol(void);
int64_t slack(void);
/* A random duration from 0 to max_us microseconds (divided by
 * stress_time_div). */
int64_t rus(struct rng *r, unsigned max_us);

/* The first failure, for the test's thread to assert; all go to stderr. */
__attribute__((format(printf, 1, 2))) void failf(const char *fmt, ...);
bool stress_failing(void);
void reset_failures(void);
void assert_no_failure(void);

/* For library results checked in threads other than the test's, where a
 * Check assertion must not fail (with CK_FORK=no it would jump into the
 * test's thread): recorded instead. */
#define expect_eq(a, b)                                                     \
	do {                                                                \
		long a__ = (long)(a), b__ = (long)(b);                      \
		if (a__ != b__)                                             \
			failf("%s:%d: %s is %ld, expected %ld", __FILE__,   \
			      __LINE__, #a, a__, b__);                      \
	} while (0)

/* The soak (soak.c), added to the suite by stress.c; and its length. */
void add_stress_soak(Suite *s);
int soak_seconds(void);

#endif
