/*
 * httpd: a small HTTP/1.1 server in which every blocking call is a libctx
 * call, so every wait has a context that can end it.
 *
 *	httpd [--addr A] [--port N] [--timeout MS] [--slow MS] [--grace MS]
 *	      [--header-timeout MS] [--idle-timeout MS] [--write-timeout MS]
 *	      [--max-conns N] [--log FILE] [--quiet] [--tls CERT KEY]
 *
 *	GET /fast   200 at once
 *	GET /slow   --slow ms of work under a --timeout per-request deadline:
 *	            200 if the work wins, 504 if the deadline does (and the
 *	            work stops then: it does not run on after the answer);
 *	            a client that goes away ends the work at once, logged 499
 *
 * The contexts, as a Go server would have them:
 *
 *	background
 *	 `- base            cancelled when the shutdown grace runs out
 *	     |- stop        ctx_with_signals(SIGINT, SIGTERM): ends accept(),
 *	     |   |          waits for the next request, and header reads
 *	     |   `- idle    ctx_with_idle, touched by every read: keep-alive
 *	     |       |      idle time between requests
 *	     |       `- header deadline: fixed from the request's start
 *	     |- hup         ctx_with_signals(SIGHUP): reload (reopen the log)
 *	     `- connection  (a value: the connection) -- one thread each
 *	         `- request (a value: the request ID, logged on every line)
 *	             `- hangup  ctx_with_hangup on the socket: ends when
 *	                 |      the client goes (logged 499)
 *	                 |- per-request timeout: the handler's work
 *	                 `- write deadline: the answer
 *
 * So a signal stops accepting and closes idle connections at once, while
 * requests being handled go on (they hang under base, not stop) until the
 * grace period ends and base is cancelled; a second SIGINT or SIGTERM
 * cancels base at once; clients still in the accept queue then, and
 * requests cut off by the grace with nothing sent, get 503.  At
 * --max-conns the longest-idle keep-alive connection is closed to make
 * room (an idle list; its idle context is cancelled), else the new client
 * gets 503 with Retry-After; out of descriptors, a spare one is given up
 * to answer 503.  One thread per connection
 * (detached; a wait group counts them, a channel of slots bounds them), HTTP
 * parsed by http-parser, the port printed as the first line of stdout,
 * the log on stderr.
 *
 * --tls CERT KEY serves HTTPS instead (PEM files; needs a build with
 * OpenSSL, libctx-ssl).  A connection's bytes go through a transport, a
 * small table of calls (read, write, busy, close): plain TCP is ctx_read
 * and ctx_send as before, TLS is ctx_ssl_read and ctx_ssl_write.  As in
 * Go's crypto/tls, the handshake is run by the first read (or write), so
 * it waits under the first request's contexts: the header deadline from
 * the accept, stop, idle; no context of its own, nothing else to bound.
 */
#include <arpa/inet.h>
#include <ctx.h>
#include <fcntl.h>
#include <getopt.h>
#include <http_parser.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_OPENSSL
#include <ctx/ssl.h>
#include <openssl/err.h>
#endif

#define MAX_BODY (1 << 20)          /* larger bodies get 413 */
#define WORK_STEP (100 * CTX_MSEC)  /* the slow work goes in steps */
#define LINGER (500 * CTX_MSEC)     /* drain before closing on an error */
#define FINAL_WAIT (500 * CTX_MSEC) /* for cancelled requests to end */
#define SLOT_WAIT (1000 * CTX_MSEC) /* for an evicted connection to go */
#define MAX_REJECTERS 64            /* threads answering 503 at a time */
#define BUSY_WAIT (100 * CTX_MSEC)  /* for a 503 over TLS to go out */
#define CLOSE_WAIT (100 * CTX_MSEC) /* for TLS's close_notify to go out */

/* ---- transports: how a connection's bytes move ------------------------ */

struct link;

/* Every call waits only in libctx calls, under the context it is given
 * (busy: a moment at most), so the contexts end TLS waits as they end
 * plain ones. */
struct transport {
	/* As read(2): 0 when the client has closed. */
	ssize_t (*read)(ctx_t *ctx, struct link *l, void *buf, size_t len);
	/* All of buf: 0, or -1 with errno; *sent says how much went. */
	int (*write)(ctx_t *ctx, struct link *l, const void *buf, size_t len,
		     size_t *sent);
	/* 503 and Connection: close, then stop sending. */
	void (*busy)(struct link *l);
	/* The end of the session (TLS: close_notify, under ctx if it is
	 * live); the descriptor stays the caller's to close.  Idempotent. */
	void (*close)(ctx_t *ctx, struct link *l);
};

struct link {
	int fd;
	const struct transport *t;
#ifdef HAVE_OPENSSL
	SSL *ssl;             /* made at the first read or write */
	bool up;              /* handshake done, no write failed since */
#endif
	char why[96];         /* more than errno says about a failure, or "" */
};

/* ---- options and server state ---------------------------------------- */

static struct {
	struct in_addr addr;
	int port;
	int64_t timeout, slow, grace;
	int64_t header_timeout, idle_timeout, write_timeout;
	int max_conns;
	const char *log;      /* the log file (SIGHUP reopens it), or stderr */
	bool quiet;           /* no access log line per request */
	const char *cert, *key; /* --tls */
} opt = {
	.port = 8080,
	.timeout = 2000 * CTX_MSEC,
	.slow = 3000 * CTX_MSEC,
	.grace = 5000 * CTX_MSEC,
	.header_timeout = 5000 * CTX_MSEC,
	.idle_timeout = 30000 * CTX_MSEC,
	.write_timeout = 10000 * CTX_MSEC,
	.max_conns = 1000,
};

static struct {
	int lfd;
	const struct transport *io; /* each connection's, at the accept */
#ifdef HAVE_OPENSSL
	SSL_CTX *tls;         /* --tls: the certificate and key */
#endif
	ctx_t *base;          /* hard stop: cancelled after the grace */
	ctx_t *stop;          /* soft stop: SIGINT or SIGTERM */
	ctx_wg_t *conns;      /* one count per connection thread */
	ctx_chan_t *slots;    /* holds a token per open connection */
	atomic_ulong next_conn, next_req;
	atomic_int rejecters; /* threads answering 503 now */
	int spare;            /* a descriptor to give up at EMFILE */
	int64_t started;
} srv = { .lfd = -1, .spare = -1 };

/* Context keys: compared by address, private to this file. */
static const char conn_key, req_key;

/* ---- connections and requests ---------------------------------------- */

struct request {
	char id[24];          /* X-Request-Id, and the log's tag */
	char url[2048];
	size_t url_len;
	size_t body_len;
	size_t bytes;         /* parsed so far */
	bool url_too_long, body_too_large;
	bool started, complete, keep_alive;
	/* Header checks (RFC 9112): Host on HTTP/1.1, no obs-fold,
	 * Expect: 100-continue answered before the body is read. */
	char field[16], expect[32];
	size_t field_len, expect_len;
	bool in_value, has_host, in_expect, no_host, folded;
	bool want_continue, sent_continue, headers_done;
	char prev;            /* the fold scanner's last header byte */
	bool scan_begun, scan_done;
};

struct conn {
	unsigned long id;
	struct link io;       /* the socket and its transport */
	unsigned long served;
	char peer[INET_ADDRSTRLEN + 8];
	http_parser parser;
	struct request req;
	char buf[8192];
	size_t start, end;    /* bytes read, not yet parsed: buf[start, end) */
	/* On the idle list while waiting for its next request: */
	struct conn *older, *newer;
	ctx_t *idle;          /* cancelled to make room at max-conns */
	bool listed, evicted;
};

/* Keep-alive connections waiting for their next request, longest idle
 * first: at max-conns the first gives its slot to a new client. */
static struct {
	pthread_mutex_t mu;
	struct conn *oldest, *newest;
} idlers = { .mu = PTHREAD_MUTEX_INITIALIZER };

struct response {
	int status;
	const char *reason;
	const char *extra;    /* more header lines, each ending in \r\n */
	char body[256];
	bool close;           /* Connection: close */
	bool none;            /* send nothing: the connection is gone */
};

/* ---- logging ----------------------------------------------------------- */

/* One line per call on stderr, tagged with what the context carries.
 * Diagnostics, like Go's log package: plain stdio, not a libctx wait. */
__attribute__((format(printf, 2, 3)))
static void hlog(ctx_t *ctx, const char *fmt, ...)
{
	const struct conn *c = ctx ? ctx_value(ctx, &conn_key) : NULL;
	const char *req = ctx ? ctx_value(ctx, &req_key) : NULL;
	char tag[64] = "", msg[512];
	va_list ap;

	if (c && req)
		snprintf(tag, sizeof(tag), "[conn-%lu %s] ", c->id, req);
	else if (c)
		snprintf(tag, sizeof(tag), "[conn-%lu] ", c->id);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "httpd: %8.3f %s%s\n",
		(double)(ctx_now() - srv.started) / CTX_SEC, tag, msg);
}

static long long ms(int64_t ns)
{
	return (long long)(ns / CTX_MSEC);
}

/* Point stderr at the log file, opened again: after a rotation the old
 * name is a new file.  0 or an errno value. */
static int open_log(void)
{
	if (!opt.log)
		return 0;
	FILE *f = fopen(opt.log, "ae");
	if (!f)
		return errno;
	int e = dup2(fileno(f), STDERR_FILENO) < 0 ? errno : 0;
	fclose(f);
	return e;
}

/* ---- parsing: http-parser callbacks ------------------------------------ */

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
 * tell Host and Expect from the rest. */
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

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct request *r = &((struct conn *)p->data)->req;

	if (!r->in_value) {
		r->in_value = true;
		r->in_expect = !strcasecmp(r->field, "expect");
		if (!strcasecmp(r->field, "host"))
			r->has_host = true;
	}
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

enum { PARSE_MORE, PARSE_DONE, PARSE_BAD };

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

/* Feed the buffered bytes to the parser. */
static int parse(struct conn *c)
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

/* ---- reading ------------------------------------------------------------ */

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
static bool evict_idle(void)
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

/* ---- handlers ----------------------------------------------------------- */

static void reply(struct response *res, int status, const char *reason,
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

static bool path_is(const char *url, const struct http_parser_url *u,
		    const char *path)
{
	size_t len = strlen(path);

	return u->field_data[UF_PATH].len == len &&
	       !memcmp(url + u->field_data[UF_PATH].off, path, len);
}

/* Route one request.  ctx is the request's context with its timeout. */
static void route(ctx_t *ctx, struct conn *c, struct response *res)
{
	const struct request *r = &c->req;
	unsigned method = c->parser.method;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(r->url, r->url_len, 0, &u) ||
	    !(u.field_set & (1 << UF_PATH))) {
		reply(res, 400, "Bad Request", "bad request: invalid URL\n");
		return;
	}
	bool fast = path_is(r->url, &u, "/fast");
	bool slow = path_is(r->url, &u, "/slow");
	if (!fast && !slow && !path_is(r->url, &u, "/")) {
		reply(res, 404, "Not Found", "not found\n");
	} else if (method != HTTP_GET && method != HTTP_HEAD) {
		res->extra = "Allow: GET, HEAD\r\n";
		reply(res, 405, "Method Not Allowed", "method not allowed\n");
	} else if (slow) {
		handle_slow(ctx, c, res);
	} else {
		reply(res, 200, "OK", fast ? "fast\n" :
		      "libctx httpd: GET /fast, GET /slow\n");
	}
}

/* ---- answering ---------------------------------------------------------- */

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
static void linger(ctx_t *ctx, int fd)
{
	char junk[1024];
	CTX_AUTO ctx_t *t = ctx_with_timeout(ctx, LINGER);

	if (!t || shutdown(fd, SHUT_WR) < 0)
		return;
	while (ctx_read(t, fd, junk, sizeof(junk)) > 0)
		;
}

static void bad_request(ctx_t *req, struct conn *c)
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

/* A fresh request: a new ID, its parse state reset. */
static void new_request(struct conn *c)
{
	unsigned long id = atomic_fetch_add(&srv.next_req, 1) + 1;

	memset(&c->req, 0, sizeof(c->req));
	snprintf(c->req.id, sizeof(c->req.id), "req-%lu", id);
}

/* Handle a parsed request and answer it.  False: close the connection.
 * The request's context ends when the client goes: its access-log line,
 * written when the work stops, then says 499 (nginx's "client closed
 * request"). */
static bool handle(ctx_t *req, struct conn *c)
{
	struct response res = { 0 };
	int64_t t0 = ctx_now();
	CTX_AUTO ctx_t *hup = ctx_with_hangup(req, c->io.fd);
	CTX_AUTO ctx_t *ctx = hup ? ctx_with_timeout(hup, opt.timeout) : NULL;

	if (!ctx) {
		int e = errno;
		hlog(req, "request context: %s: 503", strerror(e));
		c->io.t->busy(&c->io);
		return false;
	}
	route(ctx, c, &res);
	if (res.none) {
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

/* Give back the connection's slot; the channel holds one token per
 * open connection, so this never waits. */
static void release_slot(void)
{
	char token;

	ctx_chan_recv(ctx_background(), srv.slots, &token);
}

/* A connection's thread.  cctx carries the connection as a value. */
static void *serve_conn(ctx_t *cctx, void *arg)
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

/* ---- 503: no room ------------------------------------------------------- */

static const char busy[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Content-Length: 12\r\n"
	"Retry-After: 1\r\n"
	"Connection: close\r\n"
	"\r\n"
	"server busy\n";

/* Read what the client has sent so far without waiting: a close with
 * unread bytes would reset the connection and lose the answer. */
static void drain_now(int fd)
{
	char junk[4096];

	while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
		;
}

/* 503 with no waits and no new descriptors (so it works at EMFILE):
 * a fresh socket's send buffer takes it whole. */
static void busy_reply(int fd)
{
	drain_now(fd);
	(void)!send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	drain_now(fd);
}

/* ---- the transports ------------------------------------------------------ */

/* Plain TCP: the libctx calls on the socket. */
static ssize_t tcp_read(ctx_t *ctx, struct link *l, void *buf, size_t len)
{
	return ctx_read(ctx, l->fd, buf, len);
}

static int tcp_write(ctx_t *ctx, struct link *l, const void *buf,
		     size_t len, size_t *sent)
{
	ssize_t k = 0;

	*sent = 0;
	/* MSG_NOSIGNAL: a client gone is an error to see, not a SIGPIPE. */
	while (*sent < len &&
	       (k = ctx_send(ctx, l->fd, (const char *)buf + *sent,
			     len - *sent, MSG_NOSIGNAL)) > 0)
		*sent += (size_t)k;
	if (*sent == len)
		return 0;
	if (k >= 0) /* after a partial send the next call said why */
		errno = EPIPE;
	return -1;
}

static void tcp_busy(struct link *l)
{
	busy_reply(l->fd);
}

static void tcp_close(ctx_t *ctx, struct link *l)
{
	(void)ctx, (void)l;
}

static const struct transport tcp_transport = {
	.read = tcp_read, .write = tcp_write,
	.busy = tcp_busy, .close = tcp_close,
};

#ifdef HAVE_OPENSSL
/* TLS through libctx-ssl.  The handshake is the first read's or write's
 * (ctx's) business, as in Go's tls.Conn: nothing to call after accept. */
static int tls_start(ctx_t *ctx, struct link *l)
{
	if (l->up)
		return 0;
	if (l->ssl) { /* a handshake failed already: never a second */
		errno = ENOTCONN;
		return -1;
	}
	if (!(l->ssl = SSL_new(srv.tls)) || SSL_set_fd(l->ssl, l->fd) != 1) {
		errno = ENOMEM;
		return -1;
	}
	if (ctx_ssl_accept(ctx, l->ssl) < 0)
		return -1;
	l->up = true;
	return 0;
}

/* After a failed call: words for the log from OpenSSL's error queue;
 * the session is kept for sending only after a wait the context ended
 * (a shutting-down server still answers 503).  Returns errno's value. */
static int tls_failed(struct link *l, bool handshake)
{
	int e = errno;
	unsigned long oe = ERR_peek_last_error();

	if (e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		l->up = false;
	if (e == EPROTO && oe)
		snprintf(l->why, sizeof(l->why), ": TLS%s: %s",
			 handshake ? " handshake" : "",
			 ERR_reason_error_string(oe) ?
			 ERR_reason_error_string(oe) : "error");
	errno = e;
	return e;
}

static ssize_t tls_read(ctx_t *ctx, struct link *l, void *buf, size_t len)
{
	bool handshake = tls_start(ctx, l) < 0;
	ssize_t n = handshake ? -1 : ctx_ssl_read(ctx, l->ssl, buf, len);

	if (n >= 0)
		return n;
	/* A TCP close without close_notify is EPROTO with nothing in the
	 * error queue: to the server the client's close, as over TCP. */
	if (errno == EPROTO && !ERR_peek_error()) {
		l->up = false;
		return 0;
	}
	tls_failed(l, handshake);
	return -1;
}

static int tls_write(ctx_t *ctx, struct link *l, const void *buf,
		     size_t len, size_t *sent)
{
	bool handshake = tls_start(ctx, l) < 0;
	ssize_t n = handshake ? -1 : ctx_ssl_write(ctx, l->ssl, buf, len);

	*sent = n > 0 ? (size_t)n : 0;
	if (n == (ssize_t)len)
		return 0;
	/* Short or failed, a record may be half out: nothing can follow. */
	tls_failed(l, handshake);
	l->up = false;
	return -1;
}

static void tls_close(ctx_t *ctx, struct link *l)
{
	if (l->up && ctx) {
		CTX_AUTO ctx_t *t = ctx_with_timeout(ctx, CLOSE_WAIT);
		if (t)
			(void)ctx_ssl_shutdown(t, l->ssl);
	}
	l->up = false;
	SSL_free(l->ssl);
	l->ssl = NULL;
}

/* The 503 over a session that is up, the wait bounded by BUSY_WAIT
 * (from now: the connection's own context may be over already);
 * without one there is no way to say it but the close. */
static void tls_busy(struct link *l)
{
	drain_now(l->fd); /* ciphertext nobody will read: no reset */
	if (l->up) {
		CTX_AUTO ctx_t *w = ctx_with_timeout(ctx_background(),
						      BUSY_WAIT);
		size_t sent;
		if (w && !tls_write(w, l, busy, sizeof(busy) - 1, &sent))
			tls_close(w, l);
	}
	shutdown(l->fd, SHUT_WR);
	drain_now(l->fd);
}

static const struct transport tls_transport = {
	.read = tls_read, .write = tls_write,
	.busy = tls_busy, .close = tls_close,
};

/* --tls CERT KEY: the server's TLS context, or exit 2 (as for any bad
 * option) with what is wrong. */
static __attribute__((noreturn)) void tls_fail(const char *what,
					       const char *file)
{
	unsigned long oe = ERR_peek_error(); /* the first: the cause */
	const char *r = oe ? ERR_reason_error_string(oe) : NULL;

	fprintf(stderr, "httpd: --tls: %s: %s%s%s\n", file, what,
		r ? ": " : "", r ? r : "");
	exit(2);
}

static void tls_setup(void)
{
	const char *files[] = { opt.cert, opt.key };

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (!f) {
			fprintf(stderr, "httpd: --tls: %s: %s\n", files[i],
				strerror(errno));
			exit(2);
		}
		fclose(f);
	}
	srv.tls = SSL_CTX_new(TLS_server_method());
	if (!srv.tls) {
		fprintf(stderr, "httpd: --tls: no TLS context\n");
		exit(1);
	}
	SSL_CTX_set_min_proto_version(srv.tls, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(srv.tls, opt.cert) != 1)
		tls_fail("not a PEM certificate", opt.cert);
	if (SSL_CTX_use_PrivateKey_file(srv.tls, opt.key,
					SSL_FILETYPE_PEM) != 1)
		tls_fail(ERR_GET_REASON(ERR_peek_error()) ==
			 X509_R_KEY_VALUES_MISMATCH ?
			 "not the key of the certificate" :
			 "not a PEM private key", opt.key);
	if (SSL_CTX_check_private_key(srv.tls) != 1) {
		/* (OpenSSL's reason, "no certificate assigned" when the key
		 * is of another type, says less than this.) */
		ERR_clear_error();
		tls_fail("not the key of the certificate", opt.key);
	}
	srv.io = &tls_transport;
}
#else
static void tls_setup(void)
{
	fprintf(stderr, "httpd: --tls: built without TLS (configure found "
			"no OpenSSL 3: --with-openssl)\n");
	exit(2);
}
#endif

/* 503 on a socket just accepted, with no waits (over TLS, which needs a
 * handshake first, just the close). */
static void busy_now(int fd)
{
	struct link l = { .fd = fd, .t = srv.io };

	l.t->busy(&l);
	l.t->close(NULL, &l);
	close(fd);
}

static void linger(ctx_t *ctx, int fd);

/* A thread that answers 503 and lingers until the client has read it. */
static void *reject_conn(ctx_t *ctx, void *arg)
{
	struct link l = { .fd = (int)(intptr_t)arg, .t = srv.io };
	CTX_AUTO ctx_t *w = ctx_with_timeout(ctx, SLOT_WAIT);
	size_t sent;
	bool ok = w && !l.t->write(w, &l, busy, sizeof(busy) - 1, &sent);

	l.t->close(w, &l);
	if (ok)
		linger(w, l.fd);
	close(l.fd);
	atomic_fetch_sub(&srv.rejecters, 1);
	ctx_wg_done(srv.conns);
	return NULL;
}

/* No room for fd: answer 503 with Retry-After, on a thread of its own
 * (bounded) so the accept loop does not wait, else at once. */
static void reject(int fd)
{
	ctx_thread_t *t;

	if (atomic_fetch_add(&srv.rejecters, 1) < MAX_REJECTERS) {
		ctx_wg_add(srv.conns, 1);
		if (!ctx_thread_create(&t, srv.base, reject_conn,
				       (void *)(intptr_t)fd)) {
			(void)ctx_thread_detach(t);
			return;
		}
		ctx_wg_done(srv.conns);
	}
	atomic_fetch_sub(&srv.rejecters, 1);
	busy_now(fd);
}

/* ---- accepting ---------------------------------------------------------- */

static struct conn *new_conn(int fd, const struct sockaddr_in *sa)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return NULL;
	c->id = atomic_fetch_add(&srv.next_conn, 1) + 1;
	c->io.fd = fd;
	c->io.t = srv.io;
	inet_ntop(AF_INET, &sa->sin_addr, c->peer, INET_ADDRSTRLEN);
	snprintf(c->peer + strlen(c->peer), 8, ":%u", ntohs(sa->sin_port));
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	/* Each answer is one send: do not hold it back for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

/* Start the thread that serves fd.  Its context is base's child, not
 * stop's: a request being handled survives the signal. */
static int start_conn(int fd, const struct sockaddr_in *sa)
{
	struct conn *c = new_conn(fd, sa);
	ctx_thread_t *t;
	int e;

	if (!c)
		return ENOMEM;
	ctx_t *cctx = ctx_with_value(srv.base, &conn_key, c);
	if (!cctx) {
		e = errno;
		free(c);
		return e;
	}
	ctx_wg_add(srv.conns, 1);
	e = ctx_thread_create(&t, cctx, serve_conn, c);
	ctx_release(cctx); /* the thread holds its own reference */
	if (e) {
		ctx_wg_done(srv.conns);
		free(c);
		return e;
	}
	(void)ctx_thread_detach(t); /* fails only for a NULL handle */
	return 0;
}

/* Errors of accept4 that a moment's pause may cure (Go's net/http backs
 * off on these too): out of descriptors or memory, an aborted client. */
static bool temporary(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM ||
	       e == ECONNABORTED || e == EPROTO || e == EPERM || e == EAGAIN;
}

/* A slot for a new connection: a free one, or one an evicted idle
 * keep-alive connection gives back.  0 or an error. */
static int take_slot(void)
{
	char token = 0;

	if (!ctx_chan_try_send(srv.slots, &token))
		return 0;
	if (!evict_idle())
		return EAGAIN;
	CTX_AUTO ctx_t *t = ctx_with_timeout(srv.stop, SLOT_WAIT);
	return t ? ctx_chan_send(t, srv.slots, &token) : errno;
}

/* Serve fd, or answer 503 if there is no room for it. */
static void admit(int fd, const struct sockaddr_in *sa)
{
	int e = take_slot();

	if (e) {
		reject(fd);
		return;
	}
	if ((e = start_conn(fd, sa))) {
		release_slot();
		hlog(NULL, "connection thread: %s: 503", strerror(e));
		busy_now(fd);
	}
}

/* Out of descriptors: give up the spare for a moment to accept one
 * waiting client and tell it 503, rather than leave it queued.  Logged
 * once a second at most, with the count. */
static void out_of_files(int e)
{
	static int64_t last;
	static unsigned long times;

	if (srv.spare >= 0) {
		close(srv.spare);
		int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			busy_now(fd);
		srv.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	times++;
	if (ctx_now() - last >= CTX_SEC) {
		hlog(NULL, "accept: %s (%lu times)",
		     e == EMFILE ? "too many open files" :
		     "too many open files in system", times);
		last = ctx_now();
		times = 0;
	}
}

/* Accept until stop ends.  Returns stop's error, or a fatal one. */
static int accept_loop(void)
{
	int64_t backoff = 0;

	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = ctx_accept(srv.stop, srv.lfd, (struct sockaddr *)&sa,
				    &sl, SOCK_CLOEXEC);
		if (fd >= 0) {
			backoff = 0;
			admit(fd, &sa);
			continue;
		}
		int e = errno;
		if (!temporary(e))
			return e;
		if (e == EMFILE || e == ENFILE)
			out_of_files(e);
		else
			hlog(NULL, "accept: %s; retrying", strerror(e));
		/* Back off, 10 ms doubling to 100 ms, as Go's Serve does. */
		backoff = backoff ? backoff * 2 : 10 * CTX_MSEC;
		if (backoff > 100 * CTX_MSEC)
			backoff = 100 * CTX_MSEC;
		if ((e = ctx_sleep(srv.stop, backoff)) == EMFILE ||
		    e == ENFILE) {
			/* No descriptor for a timed wait either. */
			nanosleep(&(struct timespec){
					  .tv_nsec = (long)backoff }, NULL);
			e = ctx_err(srv.stop);
		}
		if (e)
			return e;
	}
}

/* After stop: the clients the kernel accepted but httpd has not taken
 * get 503 and Connection: close, not a reset when the listener closes. */
static void drain_queue(void)
{
	int n = 0, fd;

	while ((fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		reject(fd);
		n++;
	}
	if (n)
		hlog(NULL, "shutting down: answered %d queued connections "
			   "503", n);
}

/* ---- start and shutdown ------------------------------------------------- */

static int listen_on(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)opt.port),
				  .sin_addr = opt.addr };
	socklen_t sl = sizeof(sa);
	int one = 1;

	srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0);
	if (srv.lfd < 0 ||
	    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) < 0 ||
	    bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(srv.lfd, 1024) < 0 ||
	    getsockname(srv.lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	opt.port = ntohs(sa.sin_port);
	return 0;
}

/* ---- reload ------------------------------------------------------------- */

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
static int setup(void)
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

static void teardown(void)
{
	ctx_release(srv.stop); /* gives SIGINT and SIGTERM back */
	ctx_release(srv.base);
	if (srv.slots)
		ctx_chan_free(srv.slots);
	if (srv.conns)
		ctx_wg_free(srv.conns);
#ifdef HAVE_OPENSSL
	SSL_CTX_free(srv.tls); /* each SSL left holds a reference */
#endif
}

/* Go raises the soft descriptor limit to the hard one at start; a
 * thread per connection needs room for its socket and its waits. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: httpd [--addr A] [--port N] [--timeout MS] [--slow MS]"
		" [--grace MS]\n"
		"             [--header-timeout MS] [--idle-timeout MS]"
		" [--write-timeout MS]\n"
		"             [--max-conns N] [--log FILE] [--quiet]"
		" [--tls CERT KEY]\n");
}

static long long number(const char *name, long long max)
{
	char *end;
	long long v = strtoll(optarg, &end, 10);

	if (*optarg == '\0' || *end != '\0' || v < 0 || v > max) {
		fprintf(stderr, "httpd: --%s: bad value '%s' (want a whole "
				"number from 0 to %lld)\n", name, optarg, max);
		exit(2);
	}
	return v;
}

/* A duration option, in milliseconds.  --timeout and --slow may be 0
 * (an instant deadline, no work); a zero deadline for the header, the
 * idle time, the write or the grace would fail every request, so those
 * are refused. */
static int64_t msec(const char *name, bool positive)
{
	int64_t v = number(name, INT64_MAX / CTX_MSEC) * CTX_MSEC;

	if (positive && v <= 0) {
		fprintf(stderr, "httpd: --%s: must be at least 1 ms, not "
				"'%s'\n", name, optarg);
		exit(2);
	}
	return v;
}

static void parse_addr(void)
{
	if (inet_pton(AF_INET, optarg, &opt.addr) != 1) {
		fprintf(stderr, "httpd: --addr: not an IPv4 address: '%s'\n",
			optarg);
		exit(2);
	}
}

static void parse_options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "slow", required_argument, NULL, 's' },
		{ "grace", required_argument, NULL, 'g' },
		{ "header-timeout", required_argument, NULL, 'H' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "write-timeout", required_argument, NULL, 'w' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "log", required_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "tls", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	opt.addr.s_addr = htonl(INADDR_LOOPBACK);
	/* "+": no reordering, so that --tls can take the word after its
	 * argument as its second (no other words are taken anyway). */
	while ((o = getopt_long(argc, argv, "+qh", lo, NULL)) != -1) {
		switch (o) {
		case 'a': parse_addr(); break;
		case 'p': opt.port = (int)number("port", 65535); break;
		case 't': opt.timeout = msec("timeout", false); break;
		case 's': opt.slow = msec("slow", false); break;
		case 'g': opt.grace = msec("grace", true); break;
		case 'H': opt.header_timeout = msec("header-timeout", true); break;
		case 'i': opt.idle_timeout = msec("idle-timeout", true); break;
		case 'w': opt.write_timeout = msec("write-timeout", true); break;
		case 'm':
			opt.max_conns = (int)number("max-conns", 1 << 20);
			if (opt.max_conns < 1) {
				fprintf(stderr, "httpd: --max-conns: must be "
						"at least 1, not '%s'\n", optarg);
				exit(2);
			}
			break;
		case 'l': opt.log = optarg; break;
		case 'q': opt.quiet = true; break;
		case 'T':
			if (optind >= argc || argv[optind][0] == '-') {
				fprintf(stderr, "httpd: --tls: wants two "
						"files: --tls CERT KEY\n");
				exit(2);
			}
			opt.cert = optarg;
			opt.key = argv[optind++];
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc || opt.max_conns < 1) {
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	parse_options(argc, argv);
	srv.io = &tcp_transport;
	if (opt.cert)
		tls_setup(); /* exits 2 if the files will not do */
	srv.started = ctx_now();
	raise_nofile();
	/* Before the first line: the test sends SIGINT once it reads it. */
	srv.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (setup() < 0 || listen_on() < 0) {
		perror("httpd: start");
		teardown();
		return 1;
	}
	char addr[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &opt.addr, addr, sizeof(addr));
	printf("listening on %d\n", opt.port);
	fflush(stdout);
	hlog(NULL, "listening on %s:%d%s (timeout %lld ms, slow %lld ms, "
		   "header %lld ms, idle %lld ms, grace %lld ms)",
	     addr, opt.port, opt.cert ? " over TLS" : "", ms(opt.timeout),
	     ms(opt.slow),
	     ms(opt.header_timeout), ms(opt.idle_timeout), ms(opt.grace));

	int e = accept_loop();
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
	return e != CTX_CANCELED;
}
