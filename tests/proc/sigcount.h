/*
 * The signal suites' fixture (signals.c, notify.c): counting handlers
 * for SIGUSR1 and SIGUSR2, the program's own, which the library must
 * leave in place or put back; hits[sig] counts the signals that reached
 * them (a signal that escapes the library is counted, not fatal).
 * setup() installs both and teardown() puts the original actions back
 * after each test.  Each suite has its own copy of the state.
 */
#ifndef CTX_TESTS_SIGCOUNT_H
#define CTX_TESTS_SIGCOUNT_H

#include <signal.h>

#include <check.h>

static volatile sig_atomic_t hits[NSIG];
static struct sigaction orig_usr1, orig_usr2;

static inline void count_handler(int sig)
{
	hits[sig]++;
}

static inline void install_counter(int sig)
{
	struct sigaction sa = { .sa_handler = count_handler,
				.sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
	hits[sig] = 0;
}

static inline void setup(void)
{
	sigaction(SIGUSR1, NULL, &orig_usr1);
	sigaction(SIGUSR2, NULL, &orig_usr2);
	install_counter(SIGUSR1);
	install_counter(SIGUSR2);
}

static inline void teardown(void)
{
	sigaction(SIGUSR1, &orig_usr1, NULL);
	sigaction(SIGUSR2, &orig_usr2, NULL);
}

#endif
