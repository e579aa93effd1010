/*
 * Signal contexts (ctx_with_signals, Go's signal.NotifyContext): done
 * when a signal of the set arrives; until released its signals are
 * consumed; ctx_release of the last one on a signal puts the previous
 * action back exactly, before it returns.
 *
 * Only SIGUSR1 and SIGUSR2 are sent; the checked fixture is
 * sigcount.h's.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"
#include "proc/sigcount.h"

#define LONG_WAIT (10 * CTX_SEC)
#define SLOW (2 * CTX_SEC)

/* ---- the program's own handlers -------------------------------------- */

/* (hits, the counting handler and the fixture: sigcount.h) */
static void count_action(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	hits[sig]++;
}

/* ---- helpers --------------------------------------------------------- */

static struct sigaction action(int sig)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(sig, NULL, &sa), 0);
	return sa;
}

/* Whether two actions are the same: handler, flags and mask. */
static bool same_action(const struct sigaction *a, const struct sigaction *b)
{
	if (a->sa_flags != b->sa_flags)
		return false;
	if (a->sa_flags & SA_SIGINFO ? a->sa_sigaction != b->sa_sigaction
				     : a->sa_handler != b->sa_handler)
		return false;
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&a->sa_mask, s) != sigismember(&b->sa_mask, s))
			return false;
	return true;
}

#define assert_action(sig, before)                                          \
	do {                                                                \
		struct sigaction now__ = action(sig);                       \
		ck_assert_msg(same_action(&now__, &(before)),               \
			      "signal %d: action not restored "             \
			      "(handler %p flags %#x)", (sig),              \
			      (void *)now__.sa_handler,                     \
			      (unsigned)now__.sa_flags);                    \
	} while (0)

/*
 * Wait, briefly, for sig's action to be `before` again.  Whether the
 * release itself put it back before returning is checked by
 * test_signals_release_after_fire alone, so that one fault fails one
 * test rather than every test that releases a context that fired.
 */
static bool restored(int sig, const struct sigaction *before)
{
	int64_t end = ctx_now() + SLOW;
	struct sigaction now = action(sig);

	while (!same_action(&now, before) && ctx_now() < end) {
		tu_sleep_ns(CTX_MSEC);
		now = action(sig);
	}
	return same_action(&now, before);
}

#define assert_restored(sig, before)                                        \
	ck_assert_msg(restored((sig), &(before)),                           \
		      "signal %d: the previous action was not restored",    \
		      (sig))

/* A signal context for one or two signals (0: none). */
static ctx_t *sigctx(ctx_t *parent, int s1, int s2)
{
	sigset_t set;
	ctx_t *c;

	sigemptyset(&set);
	if (s1)
		sigaddset(&set, s1);
	if (s2)
		sigaddset(&set, s2);
	c = ctx_with_signals(parent, &set);
	ck_assert_msg(c != NULL, "ctx_with_signals: errno %d", errno);
	return c;
}

/* Send sig to the whole process (any thread may take it) or to this
 * thread. */
static void send_sig(int sig, bool process)
{
	ck_assert_int_eq(process ? kill(getpid(), sig) : raise(sig), 0);
}

/* Whether c stays live for a while (a signal that should not reach it
 * has had its chance). */
static bool stays_live(ctx_t *c)
{
	tu_sleep_ns(30 * CTX_MSEC);
	return ctx_err(c) == 0;
}

/* ---- firing ---------------------------------------------------------- */

/* Loop index: bit 0 picks the signal, bit 1 raise or kill. */
START_TEST(test_signals_fire)
{
	int sig = _i & 1 ? SIGUSR2 : SIGUSR1;
	bool process = _i & 2;
	struct sigaction before = action(sig);
	ctx_t *c = sigctx(ctx_background(), sig, 0);
	int64_t t0;

	ck_assert_int_eq(ctx_err(c), 0);
	t0 = ctx_now();
	send_sig(sig, process);
	ck_assert_int_eq(tu_wait_done(c, SLOW), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(c), CTX_CANCELED);
	ck_assert_double_lt(tu_ms_since(t0), 1000.0);
	/* Consumed, and still consumed after the context is done. */
	send_sig(sig, process);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(hits[sig], 0);

	ctx_release(c);
	assert_restored(sig, before);
	send_sig(sig, process);
	ck_assert_int_eq(hits[sig], 1);
}
END_TEST

/* Releasing restores the previous action exactly: an SA_SIGINFO handler
 * with its flags and mask. */
START_TEST(test_signals_restore_exact)
{
	struct sigaction sa = { .sa_sigaction = count_action,
				.sa_flags = SA_SIGINFO | SA_RESTART |
					    SA_NODEFER };
	struct sigaction before;
	ctx_t *c;

	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	sigaddset(&sa.sa_mask, SIGHUP);
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	before = action(SIGUSR1);

	c = sigctx(ctx_background(), SIGUSR1, 0);
	ck_assert(action(SIGUSR1).sa_sigaction != count_action);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(tu_wait_done(c, SLOW), CTX_CANCELED);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ctx_release(c);

	assert_restored(SIGUSR1, before);
	ck_assert_ptr_eq((void *)action(SIGUSR1).sa_sigaction,
			 (void *)count_action);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
}
END_TEST

/* An ignored signal still ends the context while it lives, and is
 * ignored again after. */
START_TEST(test_signals_restore_ignored)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct sigaction before;
	ctx_t *c;

	sigemptyset(&ign.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &ign, NULL), 0);
	before = action(SIGUSR2);
	c = sigctx(ctx_background(), SIGUSR2, 0);
	send_sig(SIGUSR2, true);
	ck_assert_int_eq(tu_wait_done(c, SLOW), CTX_CANCELED);
	ctx_release(c);
	assert_restored(SIGUSR2, before);
	ck_assert_ptr_eq((void *)action(SIGUSR2).sa_handler, (void *)SIG_IGN);
	send_sig(SIGUSR2, true);
	ck_assert_int_eq(hits[SIGUSR2], 0);
}
END_TEST

/* Every live context listening for a signal ends; one that does not
 * listen for it does not. */
START_TEST(test_signals_several)
{
	struct sigaction b1 = action(SIGUSR1), b2 = action(SIGUSR2);
	ctx_t *c1 = sigctx(ctx_background(), SIGUSR1, 0);
	ctx_t *c2 = sigctx(ctx_background(), SIGUSR1, 0);
	ctx_t *c3 = sigctx(ctx_background(), SIGUSR1, SIGUSR2);
	ctx_t *c4 = sigctx(ctx_background(), SIGUSR2, 0);

	send_sig(SIGUSR1, true);
	ck_assert_int_eq(tu_wait_done(c1, SLOW), CTX_CANCELED);
	ck_assert_int_eq(tu_wait_done(c2, SLOW), CTX_CANCELED);
	ck_assert_int_eq(tu_wait_done(c3, SLOW), CTX_CANCELED);
	ck_assert(stays_live(c4));
	send_sig(SIGUSR2, true);
	ck_assert_int_eq(tu_wait_done(c4, SLOW), CTX_CANCELED);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ck_assert_int_eq(hits[SIGUSR2], 0);

	tu_release(c1, c2, c3, c4);
	assert_restored(SIGUSR1, b1);
	assert_restored(SIGUSR2, b2);
	send_sig(SIGUSR1, false);
	send_sig(SIGUSR2, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ck_assert_int_eq(hits[SIGUSR2], 1);
}
END_TEST

/* A signal outside the set goes to the program's handler as before. */
START_TEST(test_signals_not_in_set)
{
	ctx_t *c = sigctx(ctx_background(), SIGUSR2, 0);
	ctx_t *e = sigctx(ctx_background(), 0, 0); /* an empty set */

	ck_assert_ptr_eq((void *)action(SIGUSR1).sa_handler,
			 (void *)count_handler);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ck_assert(stays_live(c));
	ck_assert_int_eq(ctx_err(e), 0);
	ctx_cancel(e); /* still an ordinary cancellable context */
	ck_assert_int_eq(ctx_err(e), CTX_CANCELED);
	ctx_release(e);
	ctx_release(c);
}
END_TEST

/* Two contexts on one signal: releasing one leaves the signal consumed
 * by the other; releasing the other restores the action. */
START_TEST(test_signals_release_one)
{
	struct sigaction before = action(SIGUSR1);
	ctx_t *c1 = sigctx(ctx_background(), SIGUSR1, 0);
	ctx_t *c2 = sigctx(ctx_background(), SIGUSR1, 0);

	ctx_release(c1);
	ck_assert(action(SIGUSR1).sa_handler != count_handler);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(tu_wait_done(c2, SLOW), CTX_CANCELED);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ctx_release(c2);
	assert_restored(SIGUSR1, before);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
}
END_TEST

/* The action comes back when the context is released, even while a
 * descendant still holds it (as Go's stop() gives the signal back at
 * once); the descendant is cancelled with it. */
START_TEST(test_signals_release_with_child)
{
	struct sigaction before = action(SIGUSR1);
	ctx_t *c = sigctx(ctx_background(), SIGUSR1, 0);
	ctx_t *child = ctx_with_cancel(c);

	ctx_release(c);
	ck_assert_int_eq(ctx_err(child), CTX_CANCELED);
	assert_action(SIGUSR1, before); /* at once: nothing fired */
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ctx_release(child);
	assert_restored(SIGUSR1, before);
}
END_TEST

/* Cancelling is not releasing: the signal stays consumed until the
 * context is freed, here by a plain unref, which gives it back. */
START_TEST(test_signals_cancel_then_unref)
{
	struct sigaction before = action(SIGUSR1);
	ctx_t *c = sigctx(ctx_background(), SIGUSR1, 0);

	ctx_cancel(c);
	send_sig(SIGUSR1, false);
	tu_sleep_ns(20 * CTX_MSEC);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ctx_unref(c);
	assert_restored(SIGUSR1, before);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
}
END_TEST

/*
 * ctx_release restores the action before it returns -- also right after
 * the signal fired, while the library's own thread may still hold the
 * context for a moment.  The test spins on ctx_err (no sleep, no wake-up
 * latency) so that it releases the context as soon as the signal ended
 * it, then at once looks at the action and raises the signal again,
 * which must reach the program's handler.  A done descriptor gives the
 * cancel a little more to do.
 */
START_TEST(test_signals_release_after_fire)
{
	int rounds = tu_quick() ? 300 : 3000;
	struct sigaction before = action(SIGUSR1);
	int late = 0, lost = 0, first = -1;

	for (int i = 0; i < rounds; i++) {
		ctx_t *c = sigctx(ctx_background(), SIGUSR1, 0);
		sig_atomic_t h = hits[SIGUSR1];
		struct sigaction now;
		int64_t end, spun;

		ck_assert_int_ge(ctx_done_fd(c), 0);
		send_sig(SIGUSR1, false);
		/* Spin, but past 200 us yield too: valgrind's scheduler
		 * lock would let a spinning thread starve the dispatcher. */
		spun = ctx_now() + 200 * CTX_USEC;
		end = ctx_now() + SLOW;
		while (!ctx_err(c) && ctx_now() < end)
			if (ctx_now() > spun)
				sched_yield();
		ck_assert_int_eq(ctx_err(c), CTX_CANCELED);
		ctx_release(c);
		now = action(SIGUSR1);
		send_sig(SIGUSR1, false);
		if (same_action(&now, &before) && hits[SIGUSR1] == h + 1)
			continue;
		late += !same_action(&now, &before);
		lost += hits[SIGUSR1] != h + 1;
		if (first < 0)
			first = i;
		/* Let the late restore happen, so the next round starts
		 * clean. */
		end = ctx_now() + SLOW;
		do {
			tu_sleep_ns(CTX_MSEC);
			now = action(SIGUSR1);
		} while (!same_action(&now, &before) && ctx_now() < end);
	}
	ck_assert_msg(late == 0 && lost == 0,
		      "%d of %d releases returned before the previous action "
		      "was back, %d signals sent after the release missed "
		      "the program's handler (first: round %d)",
		      late, rounds, lost, first);
}
END_TEST

/* A signal context is a cancel context: its parent's end reaches it. */
START_TEST(test_signals_parent)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c = sigctx(p, SIGUSR1, 0);

	ctx_cancel_cause(p, EIO);
	ck_assert_int_eq(ctx_err(c), CTX_CANCELED);
	ck_assert_int_eq(ctx_cause(c), EIO);
	ctx_release(c);
	ctx_release(p);
}
END_TEST

/* ---- threads --------------------------------------------------------- */

#define BLOCKED 8

struct blocked {
	atomic_int *started;
};

static void *blocked_fn(ctx_t *ctx, void *arg)
{
	struct blocked *b = arg;

	atomic_fetch_add(b->started, 1);
	return (void *)(intptr_t)ctx_wait(ctx);
}

/* Eight threads blocked on descendants of a signal context; a signal to
 * the process (which any of them may take) wakes all of them. */
START_TEST(test_signals_threads)
{
	ctx_t *c = sigctx(ctx_background(), SIGUSR1, 0);
	ctx_t *v = ctx_with_value(c, &c, NULL);
	ctx_t *d[BLOCKED];
	ctx_thread_t *t[BLOCKED];
	atomic_int started = 0;
	struct blocked b = { .started = &started };
	ctx_t *j = ctx_with_timeout(ctx_background(), LONG_WAIT);
	int64_t t0;

	for (int i = 0; i < BLOCKED; i++) {
		switch (i % 4) {
		case 0:
			d[i] = ctx_with_cancel(c);
			break;
		case 1:
			d[i] = ctx_with_value(c, &d[i], NULL);
			break;
		case 2:
			d[i] = ctx_with_timeout(v, LONG_WAIT);
			break;
		default:
			d[i] = ctx_with_cancel(v);
			break;
		}
		ck_assert_ptr_nonnull(d[i]);
		ck_assert_int_eq(ctx_thread_create(&t[i], d[i], blocked_fn,
						   &b), 0);
	}
	while (atomic_load(&started) < BLOCKED)
		tu_sleep_ns(CTX_MSEC);
	tu_sleep_ns(30 * CTX_MSEC);
	t0 = ctx_now();
	send_sig(SIGUSR1, true);
	for (int i = 0; i < BLOCKED; i++) {
		void *res = NULL;

		ck_assert_int_eq(ctx_thread_join(j, t[i], &res), 0);
		ck_assert_int_eq((int)(intptr_t)res, CTX_CANCELED);
		ctx_release(d[i]);
	}
	ck_assert_double_lt(tu_ms_since(t0), 1000.0);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	tu_release(j, v, c);
}
END_TEST

/*
 * Threads create and release signal contexts while signals keep coming:
 * no crash, no lost bookkeeping -- once all are gone the action is the
 * program's again, exactly.
 */
#define CHURNERS 4

struct churn {
	atomic_bool stop;
	atomic_long made, fired;
};

static void *churn_main(void *p)
{
	struct churn *ch = p;

	while (!atomic_load(&ch->stop)) {
		sigset_t set;
		ctx_t *c;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		if (!(c = ctx_with_signals(ctx_background(), &set)))
			continue;
		atomic_fetch_add(&ch->made, 1);
		if (ctx_sleep(c, 200 * CTX_USEC) == CTX_CANCELED)
			atomic_fetch_add(&ch->fired, 1);
		ctx_release(c);
	}
	return NULL;
}

START_TEST(test_signals_churn)
{
	struct sigaction before = action(SIGUSR1);
	struct churn ch = { .stop = false };
	pthread_t tid[CHURNERS];
	int64_t end = ctx_now() + (tu_quick() ? 300 : 1000) * CTX_MSEC;

	for (int i = 0; i < CHURNERS; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, churn_main, &ch),
				 0);
	while (ctx_now() < end) {
		send_sig(SIGUSR1, true);
		tu_sleep_ns(100 * CTX_USEC);
	}
	atomic_store(&ch.stop, true);
	for (int i = 0; i < CHURNERS; i++)
		ck_assert_int_eq(pthread_join(tid[i], NULL), 0);
	ck_assert_int_gt(atomic_load(&ch.made), 0);
	ck_assert_int_gt(atomic_load(&ch.fired), 0);

	assert_restored(SIGUSR1, before);
	hits[SIGUSR1] = 0;
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
}
END_TEST

/* ---- bad input ------------------------------------------------------- */

/* A set the library cannot take fails whole: EINVAL, and the signals of
 * the set it could hook keep their previous action. */
START_TEST(test_signals_unhookable)
{
	struct sigaction b1 = action(SIGUSR1), b2 = action(SIGUSR2);
	int bad[] = { SIGKILL, SIGSTOP };

	for (int i = 0; i < 2; i++) {
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGUSR2);
		sigaddset(&set, bad[i]);
		errno = 0;
		ck_assert_ptr_null(ctx_with_signals(ctx_background(), &set));
		ck_assert_int_eq(errno, EINVAL);
		assert_action(SIGUSR1, b1);
		assert_action(SIGUSR2, b2);
	}
	send_sig(SIGUSR1, false);
	send_sig(SIGUSR2, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
	ck_assert_int_eq(hits[SIGUSR2], 1);
}
END_TEST

/* A failed set does not disturb a live context on the same signal: it
 * still consumes it, and its release still restores the action. */
START_TEST(test_signals_unhookable_shared)
{
	struct sigaction before = action(SIGUSR1);
	ctx_t *c = sigctx(ctx_background(), SIGUSR1, 0);
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGSTOP);
	errno = 0;
	ck_assert_ptr_null(ctx_with_signals(ctx_background(), &set));
	ck_assert_int_eq(errno, EINVAL);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(tu_wait_done(c, SLOW), CTX_CANCELED);
	ck_assert_int_eq(hits[SIGUSR1], 0);
	ctx_release(c);
	assert_restored(SIGUSR1, before);
	send_sig(SIGUSR1, false);
	ck_assert_int_eq(hits[SIGUSR1], 1);
}
END_TEST

START_TEST(test_signals_null)
{
	struct sigaction before = action(SIGUSR1);
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	errno = 0;
	ck_assert_ptr_null(ctx_with_signals(ctx_background(), NULL));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(ctx_with_signals(NULL, &set));
	ck_assert_int_eq(errno, EINVAL);
	assert_action(SIGUSR1, before);
}
END_TEST

/* ---- the suite ------------------------------------------------------- */

static TCase *tcase(Suite *s, const char *name, double timeout)
{
	TCase *tc = tu_tcase(s, name, timeout);

	tcase_add_checked_fixture(tc, setup, teardown);
	return tc;
}

Suite *suite_signals(void)
{
	Suite *s = suite_create("signals");
	TCase *tc;

	tc = tcase(s, "fire", 30);
	tcase_add_loop_test(tc, test_signals_fire, 0, 4);
	tu_add_tests(tc, test_signals_several, test_signals_not_in_set,
		     test_signals_parent);

	tc = tcase(s, "restore", 30);
	tu_add_tests(tc, test_signals_restore_exact,
		     test_signals_restore_ignored, test_signals_release_one,
		     test_signals_release_with_child,
		     test_signals_cancel_then_unref,
		     test_signals_release_after_fire);

	tc = tcase(s, "threads", 30);
	tu_add_tests(tc, test_signals_threads, test_signals_churn);

	tc = tcase(s, "bad_input", 30);
	tu_add_tests(tc, test_signals_unhookable,
		     test_signals_unhookable_shared, test_signals_null);

	return s;
}
