/*
 * shutdown.c: the server's life under signals.  The contexts that every
 * connection hangs under, and what ends them:
 *
 *	base   cancelled when the shutdown grace runs out, or at a second
 *	       SIGINT or SIGTERM: every request still running ends
 *	stop   ctx_with_signals(SIGINT, SIGTERM) under base: ends accept()
 *	       and every wait for a next request or its headers
 *	hup    ctx_with_signals(SIGHUP) under base, on a thread of its own:
 *	       a reload, which here reopens the log
 *
 * The stop has two phases, like Go's Shutdown(ctx): at the first signal
 * stop ends, the listener closes (its queue answered 503) and idle
 * connections close; busy ones have --grace ms to finish, then base is
 * cancelled and their threads get a bounded time to end (they end
 * promptly: every wait is a libctx wait).  The process exits after that
 * either way.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

#define FINAL_WAIT (500 * CTX_MSEC) /* for cancelled requests to end */

/* ---- start and reload ------------------------------------------------- */

/* SIGHUP asks for a reload, as for most daemons: here that is reopening
 * the log.  A context of its own tells it from SIGTERM (ctx_signo).  Its
 * thread arms the next context before letting the old one go, so that
 * no SIGHUP ever finds the default action (exit) in place. */
static ctx_t *arm_reload(ctx_t *ctx)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	return ctx_with_signals(ctx, &set);
}

static void *reloader(ctx_t *ctx, void *arg)
{
	ctx_t *hup = arg;

	while (ctx_wait(hup) == CTX_CANCELED && ctx_signo(hup) == SIGHUP) {
		ctx_t *next = arm_reload(ctx);
		int e = open_log();
		hlog(NULL, "%s: reload requested: %s", ctx_cause_msg(hup),
		     e ? strerror(e) : opt.log ? "log reopened" :
		     "nothing to reload (logging to stderr)");
		ctx_release(hup);
		if (!(hup = next))
			return NULL;
	}
	ctx_release(hup); /* ended otherwise: the server is going away */
	return NULL;
}

/* Under base: cancelling it at shutdown ends the thread. */
static int start_reloader(void)
{
	ctx_thread_t *t;
	ctx_t *hup = arm_reload(srv.base);
	int e = hup ? ctx_thread_create(&t, srv.base, reloader, hup) : errno;

	if (e) {
		ctx_release(hup);
		return e;
	}
	(void)ctx_thread_detach(t);
	return 0;
}

/* The contexts of the server's life and what they share. */
int setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	srv.base = ctx_with_cancel(ctx_background());
	srv.stop = srv.base ? ctx_with_signals(srv.base, &set) : NULL;
	srv.conns = ctx_wg_new();
	srv.slots = ctx_chan_new(1, (size_t)opt.max_conns);
	if (!srv.base || !srv.stop || !srv.conns || !srv.slots)
		return -1;
	int e = open_log();
	if (!e)
		e = start_reloader();
	errno = e;
	return e ? -1 : 0;
}

/* ---- the stop ----------------------------------------------------------- */

/* A context that a second SIGINT or SIGTERM ends. */
static ctx_t *second_signal(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	return ctx_with_signals(ctx_background(), &set);
}

/* Like Go's Shutdown(ctx): the listener is closed and idle connections
 * end with stop; wait for the busy ones until the grace runs out or a
 * second signal comes, then cancel them, with words for their logs, and
 * give their threads a bounded time to end (they end promptly: every
 * wait is a libctx wait).  The process exits after that either way. */
static void drain(ctx_t *again)
{
	CTX_AUTO ctx_t *grace = again ? ctx_with_timeout(again, opt.grace) :
					NULL;
	int e = grace ? ctx_wg_wait(grace, srv.conns) : errno;

	if (!e)
		return;
	if (e == CTX_CANCELED && ctx_signo(grace)) {
		hlog(NULL, "second %s: cancelling requests now",
		     ctx_cause_msg(grace));
		ctx_cancel_msg(srv.base, CTX_CANCELED, "server stopped by "
			       "a second signal");
	} else {
		hlog(NULL, "grace period of %lld ms over: cancelling "
			   "requests still running", ms(opt.grace));
		ctx_cancel_msg(srv.base, CTX_CANCELED, "shutdown grace of "
			       "%lld ms over", ms(opt.grace));
	}
	CTX_AUTO ctx_t *last = ctx_with_timeout(ctx_background(),
						 FINAL_WAIT);
	e = last ? ctx_wg_wait(last, srv.conns) : errno;
	if (e)
		hlog(NULL, "connections still open after %lld ms: %s; "
			   "exiting anyway", ms(FINAL_WAIT), ctx_strerror(e));
}

/* Everything setup made, and the TLS context; safe after a failed setup. */
void teardown(void)
{
	ctx_release(srv.stop); /* gives SIGINT and SIGTERM back */
	ctx_release(srv.base);
	if (srv.slots)
		ctx_chan_free(srv.slots);
	if (srv.conns)
		ctx_wg_free(srv.conns);
	tls_teardown();
}

/* After the accept loop ended with e (stop's CTX_CANCELED, or an accept
 * error nothing cures): answer the queue, close the listener, give the
 * requests in flight their grace, and release everything. */
void shut_down(int e)
{
	/* At once, so that a quick second signal is not lost. */
	CTX_AUTO ctx_t *again = second_signal();

	drain_queue();
	close(srv.lfd);
	if (e == CTX_CANCELED)
		hlog(NULL, "signal: no longer accepting; waiting up to %lld ms "
			   "for requests in flight", ms(opt.grace));
	else
		hlog(NULL, "accept: %s: shutting down", strerror(e));
	drain(again);
	teardown();
	hlog(NULL, "bye");
}

