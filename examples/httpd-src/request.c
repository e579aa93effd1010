/*
 * request.c: one parsed request, from its contexts to its answer.
 *
 *	req           the connection's context, the request ID a value
 *	 |- hangup    ctx_with_hangup on the socket: ends when the client
 *	 |   |        goes, so the handler's work stops (logged 499)
 *	 |   `- caller's deadline  grpc-timeout, x-envoy-expected-rq-
 *	 |       |    timeout-ms (ctx_with_timeout_header), when sent
 *	 |       `- deadline  the handler's time (request_deadline)
 *	 `- write deadline  the answer's (respond)
 *
 * The handler works under the deadline: --timeout, or sooner when the
 * caller says it will not wait that long, as a gRPC server's call ends
 * at the client's deadline.  The answer is written under a deadline of
 * its own, so a client that does not read cannot hold the thread.  A
 * malformed request gets its 4xx here too, then the connection is
 * drained for a moment and closed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd.h"

#define LINGER (500 * CTX_MSEC)     /* drain before closing on an error */

/* Write the answer under its own deadline: a client that does not read
 * cannot hold the thread.  Returns false if it could not be sent. */
static bool respond(ctx_t *req, struct conn *c, const struct response *res)
{
	bool head = c->parser.method == HTTP_HEAD;
	size_t blen = strlen(res->body);
	char out[1024];

	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\n"
			 "Connection: %s\r\n"
			 "X-Request-Id: %s\r\n"
			 "%s\r\n%s",
			 res->status, res->reason, blen,
			 res->close ? "close" : "keep-alive", c->req.id,
			 res->extra ? res->extra : "", head ? "" : res->body);
	if (n < 0 || (size_t)n >= sizeof(out))
		return false;
	CTX_AUTO ctx_t *w = ctx_with_timeout(req, opt.write_timeout);
	if (!w)
		return false;
	size_t sent = 0;
	if (!c->io.t->write(w, &c->io, out, (size_t)n, &sent))
		return true;
	int e = errno;
	hlog(req, "write: %s: sent %zu of %d bytes",
	     e == CTX_DEADLINE_EXCEEDED ? "deadline" : ctx_strerror(e), sent,
	     n);
	return false;
}

/* After an error answer: stop writing, then drain for a moment so the
 * client reads the answer before the close (closing with unread bytes
 * would reset the connection and could destroy the answer in flight). */
void linger(ctx_t *ctx, int fd)
{
	char junk[1024];
	CTX_AUTO ctx_t *t = ctx_with_timeout(ctx, LINGER);

	if (!t || shutdown(fd, SHUT_WR) < 0)
		return;
	while (ctx_read(t, fd, junk, sizeof(junk)) > 0)
		;
}

void bad_request(ctx_t *req, struct conn *c)
{
	struct response res = { .close = true };
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	char body[160];

	if (c->req.url_too_long) {
		reply(&res, 414, "URI Too Long", "URI too long\n");
	} else if (c->req.no_host) {
		reply(&res, 400, "Bad Request", "bad request: HTTP/1.1 "
		      "without Host\n");
	} else if (c->req.folded) {
		reply(&res, 400, "Bad Request", "bad request: folded header "
		      "line (obs-fold)\n");
	} else if (c->req.body_too_large) {
		reply(&res, 413, "Payload Too Large", "body too large\n");
	} else {
		snprintf(body, sizeof(body), "bad request: %s\n",
			 http_errno_description(e));
		reply(&res, 400, "Bad Request", body);
	}
	hlog(req, "malformed request (%s): %d", c->req.no_host ? "no Host" :
	     c->req.folded ? "obs-fold" : http_errno_name(e), res.status);
	if (respond(req, c, &res)) {
		c->io.t->close(req, &c->io);
		linger(req, c->io.fd);
	}
}

/* The caller's deadline: a context under parent for each deadline
 * header that came (each can only shorten the time), or parent itself
 * (a new reference) when none did.  NULL + EINVAL for a malformed or
 * over-long value. */
static ctx_t *caller_deadline(ctx_t *parent, const struct request *r)
{
	const struct header_value *h[] = { &r->grpc_timeout,
					   &r->envoy_timeout };
	ctx_t *c = ctx_ref(parent);

	for (size_t i = 0; c && i < sizeof(h) / sizeof(h[0]); i++) {
		if (!h[i]->seen)
			continue;
		errno = EINVAL;
		ctx_t *next = h[i]->too_long ? NULL :
			      ctx_with_timeout_header(c, h[i]->text);
		int e = errno;
		/* The child holds its parent: this reference can go. */
		ctx_unref(c);
		c = next;
		errno = e;
	}
	return c;
}

/* The deadline of a request's work: --timeout from its start, or the
 * caller's, whichever comes first.  Every handler's waits are under it,
 * so this is the one place that decides how long a request may take.
 * NULL + errno (EINVAL: a malformed deadline header). */
static ctx_t *request_deadline(ctx_t *hup, const struct request *r)
{
	ctx_t *caller = caller_deadline(hup, r);

	if (!caller)
		return NULL;
	ctx_t *c = ctx_with_timeout(caller, opt.timeout);
	int e = errno;
	ctx_unref(caller);
	errno = e;
	return c;
}

/* When the caller sent its deadline, what it left this request: the
 * chain test reads it at the end of a chain of httpd's. */
static void log_budget(ctx_t *ctx, const struct request *r)
{
	int64_t d;

	if ((r->grpc_timeout.seen || r->envoy_timeout.seen) &&
	    ctx_deadline(ctx, &d))
		hlog(ctx, "budget %lld us (grpc-timeout %s, "
			  "x-envoy-expected-rq-timeout-ms %s)",
		     (long long)((d - ctx_now()) / CTX_USEC),
		     r->grpc_timeout.seen ? r->grpc_timeout.text : "-",
		     r->envoy_timeout.seen ? r->envoy_timeout.text : "-");
}

/* No context for the request: a malformed deadline header (400, as a
 * gRPC server refuses one), else out of memory or descriptors (503).
 * Always false: the connection closes. */
static bool no_context(ctx_t *req, struct conn *c, int e)
{
	struct response res = { .close = true };

	if (e != EINVAL) {
		hlog(req, "request context: %s: 503", strerror(e));
		c->io.t->busy(&c->io);
		return false;
	}
	reply(&res, 400, "Bad Request", "bad request: malformed "
	      "grpc-timeout or x-envoy-expected-rq-timeout-ms\n");
	hlog(req, "%s %s -> 400: malformed deadline header",
	     http_method_str(c->parser.method), c->req.url);
	if (respond(req, c, &res))
		c->io.t->close(req, &c->io);
	return false;
}

/* The handler gave no answer: the client went away (499), or the grace
 * ran out with nothing sent (503, if the session can still say it).
 * Always false: the connection closes. */
static bool no_answer(ctx_t *req, struct conn *c, ctx_t *hup, ctx_t *ctx,
		      int64_t t0)
{
	bool gone = ctx_cause(hup) == ECONNRESET;

	if (!gone && ctx_err(srv.base)) {
		/* The grace is over and nothing was sent yet. */
		hlog(req, "%s %s -> 503 (%lld ms): %s",
		     http_method_str(c->parser.method), c->req.url,
		     ms(ctx_now() - t0), ctx_cause_msg(ctx));
		c->io.t->busy(&c->io);
		return false;
	}
	hlog(req, "%s %s -> %s (%lld ms)",
	     http_method_str(c->parser.method), c->req.url,
	     gone ? "499" : "no answer", ms(ctx_now() - t0));
	return false;
}

/* Handle a parsed request and answer it.  False: close the connection.
 * The request's context ends when the client goes: its access-log line,
 * written when the work stops, then says 499 (nginx's "client closed
 * request"). */
bool handle(ctx_t *req, struct conn *c)
{
	struct response res = { 0 };
	int64_t t0 = ctx_now();
	CTX_AUTO ctx_t *hup = ctx_with_hangup(req, c->io.fd);
	CTX_AUTO ctx_t *ctx = hup ? request_deadline(hup, &c->req) : NULL;

	if (!ctx)
		return no_context(req, c, errno);
	log_budget(ctx, &c->req);
	route(ctx, c, &res);
	if (res.none)
		return no_answer(req, c, hup, ctx, t0);
	if (!opt.quiet || res.status >= 500)
		hlog(req, "%s %s -> %d (%lld ms)",
		     http_method_str(c->parser.method), c->req.url,
		     res.status, ms(ctx_now() - t0));
	/* Once the server is stopping, finish this one and close. */
	res.close = res.close || !c->req.keep_alive || c->parser.upgrade ||
		    ctx_err(srv.stop);
	c->served++;
	return respond(req, c, &res) && !res.close;
}
