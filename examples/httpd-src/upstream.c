/*
 * upstream.c: GET /proxy, a call to the next service (--upstream URL)
 * made on behalf of the request, as a Go handler calls another service
 * with r.Context().  The call runs through libctx-curl under the
 * request's context, and carries the time left in grpc-timeout
 * (ctx_curl_set_deadline_header), so a chain of services keeps to the
 * first one's deadline:
 *
 *	client --(grpc-timeout: 300m)--> A --> B --> C
 *
 * Each hop sends on the time it has left less --deadline-margin (10 ms
 * by default), as Envoy's grpc_timeout_header_offset does: the next hop
 * then reaches its deadline first and answers 504, and that answer has
 * the margin to come back before this hop's own deadline, so every hop
 * answers 504, each a margin before its caller.  Without a margin the
 * hops' deadlines are the same moment, and the answers race the
 * hang-ups (a caller that gave up closes its connection).  A client that
 * goes away from A ends A's request context (its hang-up), which ends
 * A's transfer; libcurl closes that connection, which is B's hang-up,
 * and so on to C, whose work stops: nobody is left to answer.
 *
 *	the upstream's status and body   when it answers
 *	504                              when this request's deadline
 *	                                 passes first
 *	502                              when the upstream cannot be
 *	                                 reached
 *	nothing (logged 499)             when the client went away, or the
 *	                                 grace ran out
 */
#include <stdio.h>
#include <string.h>

#include "httpd.h"

#ifdef HAVE_LIBCURL
#include <ctx/curl.h>

struct body {
	char buf[160];
	size_t n;
};

/* Keep the first bytes of the upstream's body; take the rest. */
static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb, room = sizeof(b->buf) - 1 - b->n;

	if (len < room)
		room = len;
	memcpy(b->buf + b->n, p, room);
	b->n += room;
	b->buf[b->n] = '\0';
	return len;
}

static const char *reason(long code)
{
	switch (code) {
	case 200: return "OK";
	case 404: return "Not Found";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Upstream Status";
	}
}

/* grpc-timeout: the time ctx has left, less the margin (a context
 * whose deadline is that much sooner says it; with no deadline, none). */
static CURLcode set_deadline(ctx_t *ctx, CURL *e,
			     struct curl_slist **headers)
{
	int64_t d;

	if (!ctx_deadline(ctx, &d))
		return ctx_curl_set_deadline_header(ctx, e, headers);
	CTX_AUTO ctx_t *sent = ctx_with_deadline(ctx, d - opt.deadline_margin);
	if (!sent)
		return CURLE_OUT_OF_MEMORY;
	return ctx_curl_set_deadline_header(sent, e, headers);
}

/* The transfer: the upstream's status in *code, its body in b. */
static CURLcode call(ctx_t *ctx, struct body *b, long *code)
{
	struct curl_slist *headers = NULL;
	CURL *e = curl_easy_init();
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	*code = 0;
	if (e) {
		curl_easy_setopt(e, CURLOPT_URL, opt.upstream);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
		rc = set_deadline(ctx, e, &headers);
	}
	if (rc == CURLE_OK)
		rc = ctx_curl_perform(ctx, e);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, code);
	curl_easy_cleanup(e);
	curl_slist_free_all(headers);
	return rc;
}

void handle_proxy(ctx_t *ctx, struct conn *c, struct response *res)
{
	struct body b = { .n = 0 };
	long code;
	int64_t t0 = ctx_now();
	char text[sizeof(res->body)];

	(void)c;
	if (!opt.upstream) {
		reply(res, 404, "Not Found", "no --upstream\n");
		return;
	}
	CURLcode rc = call(ctx, &b, &code);
	hlog(ctx, "upstream: %s, %ld (%lld ms)%s", curl_easy_strerror(rc),
	     code, ms(ctx_now() - t0), ctx_cause(ctx) == ECONNRESET ?
	     ": the client went away" : "");
	if (rc == CURLE_OK) {
		snprintf(text, sizeof(text), "upstream: %s", b.buf);
		reply(res, (int)code, reason(code), text);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		reply(res, 504, "Gateway Timeout", "timeout\n");
	} else if (rc == CURLE_ABORTED_BY_CALLBACK) {
		res->none = true; /* cancelled: nobody to answer */
	} else {
		snprintf(text, sizeof(text), "upstream: %s\n",
			 curl_easy_strerror(rc));
		reply(res, 502, "Bad Gateway", text);
	}
}

int upstream_setup(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void upstream_teardown(void)
{
	ctx_curl_close_idle();
	curl_global_cleanup();
}

#else /* built without libcurl: main.c refuses --upstream */

void handle_proxy(ctx_t *ctx, struct conn *c, struct response *res)
{
	(void)ctx, (void)c;
	reply(res, 404, "Not Found", "no --upstream\n");
}

int upstream_setup(void)
{
	return -1;
}

void upstream_teardown(void)
{
}

#endif
