/*
 * conn.c: a connection's thread.  It reads one request at a time and has
 * request.c answer it, until the client closes, a deadline passes or the
 * server stops.  Two contexts bound each read:
 *
 *	idle    ctx_with_idle under stop, touched by every read: the
 *	        keep-alive time between requests, and the silence allowed
 *	        within one; cancelled by an eviction at max-conns
 *	header  --header-timeout from the request's first byte (from the
 *	        accept for a new connection), not moved by bytes that
 *	        trickle in: a client that never finishes its headers goes
 *
 * While it waits for its next request a connection is on the idle list,
 * longest idle first, from which accept.c takes one to close when the
 * server is full.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"

/* Keep-alive connections waiting for their next request, longest idle
 * first: at max-conns the first gives its slot to a new client. */
static struct {
	pthread_mutex_t mu;
	struct conn *oldest, *newest;
} idlers = { .mu = PTHREAD_MUTEX_INITIALIZER };

enum { READ_OK, READ_BAD, READ_CLOSE };

/* A read under the idle context: every byte that comes in pushes its
 * deadline back, as Go's conn.SetReadDeadline after each read would. */
static ssize_t read_some(ctx_t *ctx, struct conn *c)
{
	ssize_t n = c->io.t->read(ctx, &c->io, c->buf, sizeof(c->buf));
	if (n > 0) {
		ctx_touch(ctx);
		c->start = 0;
		c->end = (size_t)n;
	}
	return n;
}

static void unlist(struct conn *c)
{
	if (c->older)
		c->older->newer = c->newer;
	else
		idlers.oldest = c->newer;
	if (c->newer)
		c->newer->older = c->older;
	else
		idlers.newest = c->older;
	c->older = c->newer = NULL;
	c->listed = false;
}

static void list_idle(struct conn *c, ctx_t *idle)
{
	pthread_mutex_lock(&idlers.mu);
	c->idle = idle;
	c->older = idlers.newest;
	c->newer = NULL;
	if (idlers.newest)
		idlers.newest->newer = c;
	else
		idlers.oldest = c;
	idlers.newest = c;
	c->listed = true;
	pthread_mutex_unlock(&idlers.mu);
}

/* Off the list before its idle context is released: an eviction
 * cancels that context under the same lock, so never a freed one. */
static void unlist_idle(struct conn *c)
{
	pthread_mutex_lock(&idlers.mu);
	if (c->listed)
		unlist(c);
	c->idle = NULL;
	pthread_mutex_unlock(&idlers.mu);
}

/* Close the longest-idle keep-alive connection, if there is one. */
bool evict_idle(void)
{
	pthread_mutex_lock(&idlers.mu);
	struct conn *c = idlers.oldest;
	if (c) {
		unlist(c);
		c->evicted = true;
		ctx_cancel_msg(c->idle, CTX_CANCELED, "closed to make room "
			       "(max-conns %d)", opt.max_conns);
	}
	pthread_mutex_unlock(&idlers.mu);
	return c != NULL;
}

/* Between requests: wait for the first byte of the next one, until the
 * idle deadline, the server's stop, or an eviction at max-conns.  The
 * bytes of a pipelined request may be buffered already. */
static bool wait_idle(ctx_t *cctx, ctx_t *idle, struct conn *c)
{
	if (c->start < c->end)
		return true;
	list_idle(c, idle);
	ssize_t n = read_some(idle, c);
	unlist_idle(c);
	if (n > 0)
		return true;
	if (n < 0 && c->evicted)
		hlog(cctx, "idle: %s", ctx_cause_msg(idle));
	else if (n < 0 && errno == CTX_DEADLINE_EXCEEDED)
		hlog(cctx, "idle for %lld ms: closing", ms(opt.idle_timeout));
	else if (n < 0 && errno == CTX_CANCELED)
		hlog(cctx, "shutting down: closing idle connection");
	else if (n < 0)
		hlog(cctx, "read: %s%s", strerror(errno), c->io.why);
	return false;
}

static void read_failed(ctx_t *req, struct conn *c, int e)
{
	if (e == CTX_DEADLINE_EXCEEDED)
		hlog(req, "no complete request within %lld ms (%zu bytes "
			  "in): closing", ms(opt.header_timeout),
		     c->req.bytes);
	else if (e == CTX_CANCELED) {
		/* Nothing was sent for it: tell the client to come back. */
		hlog(req, "shutting down: unfinished request: 503");
		c->io.t->busy(&c->io);
	}
	else if (e == EMFILE || e == ENFILE) {
		/* No descriptor for the wait: the client is told to retry. */
		hlog(req, "read: %s: 503", strerror(e));
		c->io.t->busy(&c->io);
	} else
		hlog(req, "read: %s%s", strerror(e), c->io.why);
}

/* The client waits for this before it sends the body (Expect:
 * 100-continue); sent only when the body is not all here yet. */
static bool send_continue(ctx_t *ctx, struct conn *c)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
	CTX_AUTO ctx_t *w = ctx_with_timeout(ctx, opt.write_timeout);
	size_t sent = 0;

	c->req.sent_continue = true;
	if (w && !c->io.t->write(w, &c->io, msg, sizeof(msg) - 1, &sent))
		return true;
	hlog(ctx, "write 100 Continue: %s", ctx_strerror(errno));
	return false;
}

/* Read until one whole request is parsed.  The deadline runs from the
 * request's first byte (from the accept for a new connection) and is not
 * moved by bytes trickling in: a client that never finishes its headers
 * is closed when it passes (slowloris).  Under the idle context, which
 * the reads touch, so a client silent for the idle time goes too. */
static int read_request(ctx_t *req, ctx_t *idle, struct conn *c)
{
	CTX_AUTO ctx_t *rd = ctx_with_timeout(idle, opt.header_timeout);
	if (!rd) {
		hlog(req, "read context: %s", strerror(errno));
		return READ_CLOSE;
	}
	for (;;) {
		if (c->start < c->end) {
			int r = parse(c);
			if (r == PARSE_DONE)
				return READ_OK;
			if (r == PARSE_BAD)
				return READ_BAD;
		}
		if (c->req.want_continue && !c->req.sent_continue &&
		    !send_continue(rd, c))
			return READ_CLOSE;
		ssize_t n = read_some(rd, c);
		if (n < 0 && errno == CTX_DEADLINE_EXCEEDED && ctx_err(idle)) {
			hlog(req, "idle for %lld ms: closing",
			     ms(opt.idle_timeout));
			return READ_CLOSE;
		}
		if (n < 0) {
			read_failed(req, c, errno);
			return READ_CLOSE;
		}
		if (n == 0) {
			if (c->req.started)
				hlog(req, "client closed mid-request");
			return READ_CLOSE;
		}
	}
}

/* Read one request and answer it.  False: close the connection. */
static bool serve_one(ctx_t *cctx, struct conn *c)
{
	ctx_t *idle = ctx_with_idle(srv.stop, opt.idle_timeout);
	if (!idle) {
		hlog(cctx, "idle context: %s", strerror(errno));
		return false;
	}
	if (c->served > 0 && !wait_idle(cctx, idle, c)) {
		ctx_release(idle);
		return false;
	}
	new_request(c);
	CTX_AUTO ctx_t *req = ctx_with_value(cctx, &req_key, c->req.id);
	int r = req ? read_request(req, idle, c) : READ_CLOSE;
	ctx_release(idle); /* the handler's work is not under it */
	if (!req)
		hlog(cctx, "request context: %s", strerror(errno));
	switch (r) {
	case READ_OK:
		return handle(req, c);
	case READ_BAD:
		bad_request(req, c);
		return false;
	default:
		return false;
	}
}

/* A connection's thread.  cctx carries the connection as a value. */
void *serve_conn(ctx_t *cctx, void *arg)
{
	struct conn *c = arg;

	if (!opt.quiet)
		hlog(cctx, "accepted from %s", c->peer);
	while (serve_one(cctx, c))
		;
	if (!opt.quiet)
		hlog(cctx, "closed after %lu requests", c->served);
	c->io.t->close(cctx, &c->io);
	close(c->io.fd);
	free(c);
	release_slot();
	ctx_wg_done(srv.conns); /* last: main may be waiting for this */
	return NULL;
}
