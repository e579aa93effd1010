/*
 * shutdown.c: the server's life under signals.  The contexts that every
 * connection hangs under, and what ends them:
 *
 *	stop   ctx_with_signals(SIGINT, SIGTERM): ends accept() and every
 *	       wait for a next request or its headers
 *	base   ctx_with_grace(stop, --grace): ends the grace after stop,
 *	       or at once at a second SIGINT or SIGTERM; every request
 *	       runs under it
 *
 * and a channel that receives SIGHUP, SIGINT and SIGTERM
 * (ctx_signal_notify), read by a thread of its own: each SIGHUP is a
 * reload, which here reopens the log; the second SIGINT or SIGTERM cuts
 * the grace short.
 *
 * The stop has two phases, like Go's Shutdown(ctx): at the first signal
 * stop ends, the listener closes (its queue answered 503) and idle
 * connections close; busy ones have until base ends to finish, then
 * their threads get a bounded time to end (they end promptly: every wait
 * is a libctx wait).  The process exits after that either way.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

#define FINAL_WAIT (500 * CTX_MSEC) /* for cancelled requests to end */

static ctx_chan_t *sigs;      /* SIGHUP, SIGINT, SIGTERM, as numbers */
static ctx_thread_t *watcher; /* reads sigs */

/* ---- signals ------------------------------------------------------------ */

/* The first SIGINT or SIGTERM has ended stop (a signal context on the
 * same signals); the second ends the grace at once.  SIGHUP asks for a
 * reload, as for most daemons: here that is reopening the log. */
static void *watch_signals(ctx_t *ctx, void *arg)
{
	int signo, stops = 0, e;

	(void)arg;
	while (ctx_chan_recv(ctx, sigs, &signo) == 0) {
		if (signo != SIGHUP && ++stops == 2) {
			hlog(NULL, "second signal %s received: cancelling "
			     "requests now", sigabbrev_np(signo));
			ctx_cancel_msg(srv.base, ESHUTDOWN, "server stopped "
				       "by a second signal");
		} else if (signo == SIGHUP) {
			e = open_log();
			hlog(NULL, "signal HUP received: reload requested: %s",
			     e ? strerror(e) : opt.log ? "log reopened" :
			     "nothing to reload (logging to stderr)");
		}
	}
	return NULL; /* the channel is closed: the server is going away */
}

/* The contexts of the server's life, the signals' channel and its
 * thread, and what they share. */
int setup(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	srv.stop = ctx_with_signals(ctx_background(), &set);
	srv.base = srv.stop ? ctx_with_grace(srv.stop, opt.grace) : NULL;
	srv.conns = ctx_wg_new();
	srv.slots = ctx_chan_new(1, (size_t)opt.max_conns);
	sigs = ctx_chan_new(sizeof(int), 8);
	if (!srv.base || !srv.stop || !srv.conns || !srv.slots || !sigs)
		return -1;
	sigaddset(&set, SIGHUP);
	int e = open_log();
	if (!e)
		e = ctx_signal_notify(sigs, &set);
	if (!e)
		e = ctx_thread_create(&watcher, ctx_background(),
				      watch_signals, NULL);
	errno = e;
	return e ? -1 : 0;
}

/* ---- the stop ----------------------------------------------------------- */

/* Wait for the busy connections until base ends (the grace ran out or a
 * second signal came: it cancels them), then give their threads a
 * bounded time to end. */
static void drain(void)
{
	int e = ctx_wg_wait(srv.base, srv.conns);

	if (!e)
		return;
	if (ctx_cause(srv.base) != ESHUTDOWN)
		hlog(NULL, "grace period of %lld ms over: cancelling "
			   "requests still running", ms(opt.grace));
	CTX_AUTO ctx_t *last = ctx_with_timeout(ctx_background(),
						 FINAL_WAIT);
	e = last ? ctx_wg_wait(last, srv.conns) : errno;
	if (e)
		hlog(NULL, "connections still open after %lld ms: %s; "
			   "exiting anyway", ms(FINAL_WAIT), ctx_strerror(e));
}

/* Everything setup made, and the TLS context; safe after a failed setup.
 * The signals' thread ends once it has read what is left on the closed
 * channel. */
void teardown(void)
{
	if (sigs) {
		ctx_signal_stop(sigs); /* SIGHUP's default action is back */
		ctx_chan_close(sigs);
		if (watcher)
			ctx_thread_join(ctx_background(), watcher, NULL);
		ctx_chan_free(sigs);
	}
	ctx_release(srv.base);
	ctx_release(srv.stop); /* gives SIGINT and SIGTERM back */
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
	if (e != CTX_CANCELED) /* the grace starts now */
		ctx_cancel_msg(srv.stop, e, "accept: %s", strerror(e));
	drain_queue();
	close(srv.lfd);
	if (e == CTX_CANCELED)
		hlog(NULL, "signal: no longer accepting; waiting up to %lld ms "
			   "for requests in flight", ms(opt.grace));
	else
		hlog(NULL, "accept: %s: shutting down", strerror(e));
	drain();
	teardown();
	hlog(NULL, "bye");
}
