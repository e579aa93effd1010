/*
 * handlers.c: the endpoints, and the table that routes a request's path
 * to one.  A handler fills in the response; it is given the request's
 * context (the client's hangup and the request's deadline above it, see
 * request.c), so its waits end when the client goes or time runs out,
 * and it knows nothing of the socket.  A new endpoint is a function
 * here and a row in the table.
 *
 *	GET /       what there is
 *	GET /fast   200 at once
 *	GET /slow   --slow ms of work: 200 if the work wins, 504 if the
 *	            deadline does, nothing (logged 499) if the client goes
 *	GET /proxy  the --upstream service's answer, through libctx-curl
 *	            under the request's context (upstream.c)
 *
 * The request's deadline is the caller's when it sends one (request.c),
 * so every endpoint keeps to it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "httpd.h"

#define WORK_STEP (100 * CTX_MSEC)  /* the slow work goes in steps */

/* ctx: the request's context; c: its connection (the parsed request). */
typedef void handler_fn(ctx_t *ctx, struct conn *c, struct response *res);

void reply(struct response *res, int status, const char *reason,
		  const char *body)
{
	res->status = status;
	res->reason = reason;
	snprintf(res->body, sizeof(res->body), "%s", body);
}

/*
 * The slow "work": opt.slow of it in steps, each a wait the request's
 * context ends.  It knows nothing of the socket: the request's context
 * ends when the client goes (ctx_with_hangup), as Go's r.Context() does,
 * so this, and anything else under it, stops.  Returns 0 when done,
 * the context's error, or ECONNRESET (the client went away).
 */
static int work(ctx_t *ctx, int64_t total, int *steps)
{
	int64_t end = ctx_now() + total;

	*steps = 0;
	for (int64_t now; (now = ctx_now()) < end; (*steps)++) {
		int64_t step = end - now < WORK_STEP ? end - now : WORK_STEP;
		int e = ctx_sleep(ctx, step);

		if (e)
			return ctx_cause(ctx) == ECONNRESET ? ECONNRESET : e;
	}
	return 0;
}

static void handle_slow(ctx_t *ctx, struct conn *c, struct response *res)
{
	int64_t t0 = ctx_now();
	int steps, e = work(ctx, opt.slow, &steps);
	long long took = ms(ctx_now() - t0);

	(void)c;

	if (!e) {
		hlog(ctx, "work done in %lld ms", took);
		reply(res, 200, "OK", "slow work done\n");
		return;
	}
	hlog(ctx, "work stopped after %lld ms (%d steps): %s (%s)", took,
	     steps, e == ECONNRESET ? "client went away" : ctx_strerror(e),
	     ctx_cause_msg(ctx));
	if (e == CTX_DEADLINE_EXCEEDED) {
		reply(res, 504, "Gateway Timeout", "timeout\n");
	} else if (e == EMFILE || e == ENFILE) {
		/* No descriptor for the wait: come back in a moment. */
		res->extra = "Retry-After: 1\r\n";
		res->close = true;
		reply(res, 503, "Service Unavailable", "server busy\n");
	} else {
		/* Cancelled (the grace ran out) or the client is gone:
		 * nobody to answer. */
		res->none = true;
	}
}

static void handle_fast(ctx_t *ctx, struct conn *c, struct response *res)
{
	(void)ctx, (void)c;
	reply(res, 200, "OK", "fast\n");
}

static void handle_index(ctx_t *ctx, struct conn *c, struct response *res)
{
	(void)ctx, (void)c;
	reply(res, 200, "OK", "libctx httpd: GET /fast, GET /slow, "
	      "GET /proxy\n");
}

/* The endpoints by path (the URL's path alone, without the query). */
static const struct handler {
	const char *path;
	handler_fn *fn;
} handlers[] = {
	{ "/", handle_index },
	{ "/fast", handle_fast },
	{ "/slow", handle_slow },
	{ "/proxy", handle_proxy },
};

static bool path_is(const char *url, const struct http_parser_url *u,
		    const char *path)
{
	size_t len = strlen(path);

	return u->field_data[UF_PATH].len == len &&
	       !memcmp(url + u->field_data[UF_PATH].off, path, len);
}

static const struct handler *find_handler(const char *url,
					  const struct http_parser_url *u)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (path_is(url, u, handlers[i].path))
			return &handlers[i];
	return NULL;
}

/* Route one request: 400 for a URL without a path, 404 for a path with
 * no handler, 405 for a method other than GET or HEAD, else the
 * handler's answer. */
void route(ctx_t *ctx, struct conn *c, struct response *res)
{
	const struct request *r = &c->req;
	unsigned method = c->parser.method;
	const struct handler *h;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(r->url, r->url_len, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH))) {
		reply(res, 400, "Bad Request", "bad request: invalid URL\n");
		return;
	}
	if (!(h = find_handler(r->url, &u))) {
		reply(res, 404, "Not Found", "not found\n");
	} else if (method != HTTP_GET && method != HTTP_HEAD) {
		res->extra = "Allow: GET, HEAD\r\n";
		reply(res, 405, "Method Not Allowed", "method not allowed\n");
	} else {
		h->fn(ctx, c, res);
	}
}
