/*
 * ctx_signal_notify and ctx_signal_stop (Go's signal.Notify and Stop):
 * each signal that arrives goes to every channel registered for it, as
 * its number, in arrival order, dropped where a channel is full; the
 * signal is consumed while any registration holds it, and the previous
 * action is back when ctx_signal_stop has taken the last one away.
 *
 * Only SIGUSR1 and SIGUSR2 are sent, with raise(): the handler runs
 * before raise returns, so the order of two raises is their arrival
 * order.  The checked fixture is sigcount.h's.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "../suites.h"
#include "../testutil.h"
#include "sigcount.h"

#define SLOW (2 * CTX_SEC)

static sigset_t set_of(int s1, int s2)
{
	sigset_t set;
	sigemptyset(&set);
	if (s1)
		sigaddset(&set, s1);
	if (s2)
		sigaddset(&set, s2);
	return set;
}

static ctx_chan_t *int_chan(size_t cap)
{
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), cap);
	ck_assert_ptr_nonnull(ch);
	return ch;
}

/* The next signal number on ch, waiting up to SLOW; 0 if none came. */
static int next_signal(ctx_chan_t *ch)
{
	int signo = 0;
	ctx_t *t = ctx_with_timeout(ctx_background(), SLOW);
	if (ctx_chan_recv(t, ch, &signo))
		signo = 0;
	ctx_release(t);
	return signo;
}

static bool counting(int sig)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_handler == count_handler;
}

/* Raise sig and wait until the library has dealt with it: a signal
 * context on it, made just before, ends after the channels got it. */
static void raise_dispatched(int sig)
{
	sigset_t set = set_of(sig, 0);
	ctx_t *seen = ctx_with_signals(ctx_background(), &set);
	ck_assert_ptr_nonnull(seen);
	raise(sig);
	ck_assert_int_eq(tu_wait_done(seen, SLOW), CTX_CANCELED);
	ctx_release(seen);
}

START_TEST(test_notify_each)
{
	ctx_chan_t *ch = int_chan(4);
	sigset_t set = set_of(SIGUSR1, 0);
	ck_assert_int_eq(ctx_signal_notify(ch, &set), 0);
	ck_assert(!counting(SIGUSR1));
	for (int i = 0; i < 3; i++) {
		raise(SIGUSR1);
		ck_assert_int_eq(next_signal(ch), SIGUSR1);
	}
	ck_assert_int_eq(hits[SIGUSR1], 0); /* consumed by the library */
	ck_assert_int_eq(ctx_signal_stop(ch), 0);
	ck_assert(counting(SIGUSR1)); /* back before stop returned */
	raise(SIGUSR1);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &(int){ 0 }), EAGAIN);
	ctx_chan_free(ch);
}
END_TEST

/* In arrival order, not in the order of the signals' numbers. */
START_TEST(test_notify_order)
{
	ctx_chan_t *ch = int_chan(8);
	sigset_t set = set_of(SIGUSR1, SIGUSR2);
	ck_assert_int_eq(ctx_signal_notify(ch, &set), 0);
	raise(SIGUSR2);
	raise(SIGUSR1);
	raise(SIGUSR2);
	ck_assert_int_eq(next_signal(ch), SIGUSR2);
	ck_assert_int_eq(next_signal(ch), SIGUSR1);
	ck_assert_int_eq(next_signal(ch), SIGUSR2);
	ck_assert_int_eq(ctx_signal_stop(ch), 0);
	ctx_chan_free(ch);
}
END_TEST

/* A full channel drops the signal, as Go drops it. */
START_TEST(test_notify_full_drops)
{
	ctx_chan_t *ch = int_chan(1);
	sigset_t set = set_of(SIGUSR1, 0);
	ck_assert_int_eq(ctx_signal_notify(ch, &set), 0);
	raise_dispatched(SIGUSR1);
	raise_dispatched(SIGUSR1);
	ck_assert_uint_eq(ctx_chan_len(ch), 1);
	ck_assert_int_eq(next_signal(ch), SIGUSR1);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &(int){ 0 }), EAGAIN);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ck_assert_int_eq(ctx_signal_stop(ch), 0);
	ctx_chan_free(ch);
}
END_TEST

/* Several channels each get it; a live signal context on it ends too;
 * the signal stays the library's until the last of them goes. */
START_TEST(test_notify_many)
{
	ctx_chan_t *a = int_chan(2), *b = int_chan(2);
	sigset_t set = set_of(SIGUSR1, 0);
	ck_assert_int_eq(ctx_signal_notify(a, &set), 0);
	ck_assert_int_eq(ctx_signal_notify(b, &set), 0);
	ctx_t *s = ctx_with_signals(ctx_background(), &set);
	raise(SIGUSR1);
	ck_assert_int_eq(next_signal(a), SIGUSR1);
	ck_assert_int_eq(next_signal(b), SIGUSR1);
	ck_assert_int_eq(tu_wait_done(s, SLOW), CTX_CANCELED);
	ck_assert_int_eq(ctx_signo(s), SIGUSR1);
	ctx_release(s);
	ck_assert_int_eq(ctx_signal_stop(a), 0);
	ck_assert(!counting(SIGUSR1));
	raise(SIGUSR1);
	ck_assert_int_eq(next_signal(b), SIGUSR1);
	ck_assert_int_eq(ctx_chan_try_recv(a, &(int){ 0 }), EAGAIN);
	ck_assert_int_eq(ctx_signal_stop(b), 0);
	ck_assert(counting(SIGUSR1));
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ctx_chan_free(a);
	ctx_chan_free(b);
}
END_TEST

/* A second notify on one channel widens it; one stop ends both. */
START_TEST(test_notify_widen)
{
	ctx_chan_t *ch = int_chan(4);
	sigset_t s1 = set_of(SIGUSR1, 0), s2 = set_of(SIGUSR2, SIGUSR1);
	ck_assert_int_eq(ctx_signal_notify(ch, &s1), 0);
	ck_assert_int_eq(ctx_signal_notify(ch, &s2), 0);
	raise(SIGUSR1);
	ck_assert_int_eq(next_signal(ch), SIGUSR1);
	ck_assert_int_eq(ctx_chan_try_recv(ch, &(int){ 0 }), EAGAIN);
	raise(SIGUSR2);
	ck_assert_int_eq(next_signal(ch), SIGUSR2);
	ck_assert_int_eq(ctx_signal_stop(ch), 0);
	ck_assert(counting(SIGUSR1));
	ck_assert(counting(SIGUSR2));
	ck_assert_int_eq(ctx_signal_stop(ch), 0); /* none left: fine */
	ctx_chan_free(ch);
}
END_TEST

/* notify, a signal, stop, over and over, beside a signal context that
 * outlives them all: each round gets its signal, and the handling is
 * the program's again at the end. */
START_TEST(test_notify_sequence)
{
	sigset_t set = set_of(SIGUSR2, 0), other = set_of(SIGUSR1, 0);
	ctx_t *s = ctx_with_signals(ctx_background(), &other);
	for (int i = 0; i < 50; i++) {
		ctx_chan_t *ch = int_chan(1);
		ck_assert_int_eq(ctx_signal_notify(ch, &set), 0);
		raise(SIGUSR2);
		ck_assert_int_eq(next_signal(ch), SIGUSR2);
		ck_assert_int_eq(ctx_signal_stop(ch), 0);
		ck_assert(counting(SIGUSR2));
		ctx_chan_free(ch);
	}
	ck_assert_int_eq(hits[SIGUSR2], 0);
	ck_assert_int_eq(ctx_err(s), 0);
	ctx_release(s);
	ck_assert(counting(SIGUSR1));
}
END_TEST

/* Bad arguments: EINVAL, and nothing is taken. */
START_TEST(test_notify_errors)
{
	ctx_chan_t *ch = int_chan(1), *wide = ctx_chan_new(sizeof(long), 1);
	sigset_t set = set_of(SIGUSR1, 0), bad = set_of(SIGUSR1, SIGKILL);
	ck_assert_int_eq(ctx_signal_notify(NULL, &set), EINVAL);
	ck_assert_int_eq(ctx_signal_notify(ch, NULL), EINVAL);
	ck_assert_int_eq(ctx_signal_notify(wide, &set), EINVAL);
	ck_assert_int_eq(ctx_signal_notify(ch, &bad), EINVAL);
	ck_assert(counting(SIGUSR1)); /* SIGUSR1 was not kept */
	raise(SIGUSR1);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ck_assert_int_eq(ctx_signal_stop(NULL), EINVAL);
	ck_assert_int_eq(ctx_signal_stop(ch), 0); /* never registered */
	ctx_chan_free(wide);
	ctx_chan_free(ch);
}
END_TEST

Suite *suite_notify(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tu_tcase(s, "notify", 20);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_notify_each);
	tcase_add_test(tc, test_notify_order);
	tcase_add_test(tc, test_notify_full_drops);
	tcase_add_test(tc, test_notify_many);
	tcase_add_test(tc, test_notify_widen);
	tcase_add_test(tc, test_notify_sequence);
	tcase_add_test(tc, test_notify_errors);
	return s;
}
