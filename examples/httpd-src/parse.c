/*
 * parse.c: a request's bytes into a struct request, through http-parser.
 * The callbacks keep what the server needs (the URL, whether Host and
 * Expect came, the caller's deadline from grpc-timeout or
 * x-envoy-expected-rq-timeout-ms, the body's size) and refuse what it
 * must not accept: an over-long URL (414), a body over MAX_BODY (413),
 * HTTP/1.1 without Host and folded header lines (400).  The parser
 * pauses after each message, so a pipelined next request waits in the
 * buffer until this one is answered.  Nothing here waits: reading is
 * conn.c's.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"

#define MAX_BODY (1 << 20)          /* larger bodies get 413 */

static int on_message_begin(http_parser *p)
{
	struct request *r = &((struct conn *)p->data)->req;

	r->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct request *r = &((struct conn *)p->data)->req;

	if (len >= sizeof(r->url) - r->url_len) {
		r->url_too_long = true;
		return 1; /* stops the parser: answered with 414 */
	}
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	r->url[r->url_len] = '\0';
	return 0;
}

/* Header names come in pieces: keep the first bytes of each, enough to
 * tell Host, Expect and the deadline headers from the rest. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct request *r = &((struct conn *)p->data)->req;

	if (r->in_value) {
		r->in_value = false;
		r->field_len = 0;
	}
	for (size_t i = 0; i < len && r->field_len < sizeof(r->field) - 1;
	     i++)
		r->field[r->field_len++] = at[i];
	r->field[r->field_len] = '\0';
	return 0;
}

/* The header whose value is kept whole, by name: the caller's deadline
 * (a repeated header: the last one counts). */
static struct header_value *captured(struct request *r)
{
	struct header_value *h = NULL;

	if (!strcasecmp(r->field, "grpc-timeout"))
		h = &r->grpc_timeout;
	else if (!strcasecmp(r->field, "x-envoy-expected-rq-timeout-ms"))
		h = &r->envoy_timeout;
	if (h)
		*h = (struct header_value){ .seen = true };
	return h;
}

/* Values come in pieces too. */
static void capture(struct header_value *h, const char *at, size_t len)
{
	if (len >= sizeof(h->text) - h->len) {
		h->too_long = true; /* refused whole: request.c says 400 */
		return;
	}
	memcpy(h->text + h->len, at, len);
	h->len += len;
	h->text[h->len] = '\0';
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct request *r = &((struct conn *)p->data)->req;

	if (!r->in_value) {
		r->in_value = true;
		r->in_expect = !strcasecmp(r->field, "expect");
		if (!strcasecmp(r->field, "host"))
			r->has_host = true;
		r->capture = captured(r);
	}
	if (r->capture && !r->capture->too_long)
		capture(r->capture, at, len);
	for (size_t i = 0; r->in_expect && i < len &&
			   r->expect_len < sizeof(r->expect) - 1; i++)
		r->expect[r->expect_len++] = at[i];
	r->expect[r->expect_len] = '\0';
	return 0;
}

/* A nonzero return other than 1 or 2 fails the parse: answered 400. */
static int on_headers_complete(http_parser *p)
{
	struct request *r = &((struct conn *)p->data)->req;
	bool v11 = p->http_major == 1 && p->http_minor >= 1;

	r->headers_done = true;
	r->keep_alive = http_should_keep_alive(p);
	if (v11 && !r->has_host) {
		r->no_host = true;
		return -1;
	}
	r->want_continue = v11 && !strcasecmp(r->expect, "100-continue");
	return 0;
}

/* Bodies are read (so the next request on the connection parses) and
 * dropped: no endpoint takes one. */
static int on_body(http_parser *p, const char *at, size_t len)
{
	struct request *r = &((struct conn *)p->data)->req;

	(void)at;
	r->body_len += len;
	if (r->body_len > MAX_BODY) {
		r->body_too_large = true;
		return 1;
	}
	return 0;
}

/* One request at a time: pause, so that bytes of a pipelined next
 * request stay in the buffer until this one is answered. */
static int on_message_complete(http_parser *p)
{
	struct request *r = &((struct conn *)p->data)->req;

	r->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};


/* http-parser joins a folded header line (one starting with a space or
 * a tab) to the one before, which RFC 9112 lets a server reject and which
 * proxies may read otherwise (a smuggling hole): look for one in the
 * header bytes before they are parsed.  True if found. */
static bool folded(struct request *r, const char *p, size_t len)
{
	for (size_t i = 0; i < len && !r->scan_done; i++) {
		char ch = p[i];

		if (!r->scan_begun) { /* CRLFs before the request line */
			if (ch == '\r' || ch == '\n')
				continue;
			r->scan_begun = true;
		}
		if (r->prev == '\n' && (ch == ' ' || ch == '\t'))
			return true;
		if (r->prev == '\n' && (ch == '\r' || ch == '\n'))
			r->scan_done = true; /* the empty line: headers end */
		if (ch != '\r')
			r->prev = ch;
	}
	return false;
}

/* Feed the buffered bytes to the parser: PARSE_DONE when a whole request
 * is in, PARSE_MORE to read more, PARSE_BAD to refuse it (the flags in
 * c->req and the parser's error say why). */
int parse(struct conn *c)
{
	if (folded(&c->req, c->buf + c->start, c->end - c->start)) {
		c->req.folded = true;
		return PARSE_BAD;
	}
	size_t n = http_parser_execute(&c->parser, &parser_settings,
				       c->buf + c->start, c->end - c->start);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

	c->start += n;
	c->req.bytes += n;
	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0); /* ready for the next */
		return PARSE_DONE;
	}
	if (e != HPE_OK)
		return PARSE_BAD;
	return c->req.complete ? PARSE_DONE : PARSE_MORE;
}

/* A fresh request: a new ID, its parse state reset. */
void new_request(struct conn *c)
{
	unsigned long id = atomic_fetch_add(&srv.next_req, 1) + 1;

	memset(&c->req, 0, sizeof(c->req));
	snprintf(c->req.id, sizeof(c->req.id), "req-%lu", id);
}
