/*
 * httpd.h: what httpd's files share.  One header for a small program:
 * the options, the server's state, a connection and its request, the
 * transport table, and the calls that cross from one file to another
 * (everything else is static in its file).  Nothing here is libctx's
 * API; the program uses only <ctx.h> and, with OpenSSL, <ctx/ssl.h>.
 *
 * The files, by concern (main.c has the design, the contexts' tree):
 *
 *	main.c       options, start, the order of the server's life
 *	shutdown.c   the server's contexts, signals: SIGHUP's reload, the
 *	             two-phase stop (stop accepting, grace, cancel)
 *	accept.c     the listener, the accept loop, max-conns and 503s
 *	conn.c       a connection's thread: keep-alive, idle list, reading
 *	             one request under its header and idle deadlines
 *	request.c    one request: its contexts and deadline, the answer
 *	handlers.c   the endpoints and the table that routes to them
 *	upstream.c   /proxy: the next service through libctx-curl, with
 *	             the time left in grpc-timeout (--upstream)
 *	parse.c      http-parser's callbacks and the request's checks
 *	transport.c  plain TCP, the transport table's first row, and 503
 *	tls.c        TLS through libctx-ssl, the same table's second row
 *	log.c        the log: one line per event, tagged from the context
 */
#ifndef HTTPD_H
#define HTTPD_H

#include <arpa/inet.h>
#include <ctx.h>
#include <http_parser.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef HAVE_OPENSSL
#include <openssl/ssl.h>
#endif

/* ---- transports: how a connection's bytes move (transport.c, tls.c) -- */

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

extern const struct transport tcp_transport;
/* The 503 through l's transport, under ctx: 0, or -1 with errno. */
int send_busy(ctx_t *ctx, struct link *l);
/* Read what the client has sent so far, without waiting. */
void drain_now(int fd);
/* --tls CERT KEY: sets srv.io to TLS, or exits 2 saying what is wrong. */
void tls_setup(void);
void tls_teardown(void);

/* ---- options and server state (main.c) -------------------------------- */

struct options {
	struct in_addr addr;
	int port;
	int64_t timeout, slow, grace;
	int64_t header_timeout, idle_timeout, write_timeout;
	int max_conns;
	const char *log;      /* the log file (SIGHUP reopens it), or stderr */
	bool quiet;           /* no access log line per request */
	const char *cert, *key; /* --tls */
	const char *upstream; /* --upstream: /proxy's URL, or NULL */
	int64_t deadline_margin; /* taken off the deadline sent upstream */
};

struct server {
	int lfd;
	const struct transport *io; /* each connection's, at the accept */
#ifdef HAVE_OPENSSL
	SSL_CTX *tls;         /* --tls: the certificate and key */
#endif
	ctx_t *base;          /* hard stop: ctx_with_grace(stop, grace) */
	ctx_t *stop;          /* soft stop: SIGINT or SIGTERM */
	ctx_wg_t *conns;      /* one count per connection thread */
	ctx_chan_t *slots;    /* holds a token per open connection */
	atomic_ulong next_conn, next_req;
	atomic_int rejecters; /* threads answering 503 now */
	int spare;            /* a descriptor to give up at EMFILE */
	int64_t started;
};

extern struct options opt;
extern struct server srv;

/* ---- connections and requests (conn.c, request.c, parse.c) ----------- */

/* A header's value, kept whole (parse.c); too_long when it did not fit. */
struct header_value {
	char text[32];
	size_t len;
	bool seen, too_long;
};

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
	char field[40], expect[32];
	size_t field_len, expect_len;
	/* How long the caller will wait, if it says (request.c caps the
	 * request's deadline by it): gRPC's and Envoy's headers. */
	struct header_value grpc_timeout, envoy_timeout;
	struct header_value *capture; /* the one a value goes to, or NULL */
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

struct response {
	int status;
	const char *reason;
	const char *extra;    /* more header lines, each ending in \r\n */
	char body[256];
	bool close;           /* Connection: close */
	bool none;            /* send nothing: the connection is gone */
};

/* parse.c */
enum { PARSE_MORE, PARSE_DONE, PARSE_BAD };
/* Feed the buffered bytes c->buf[start, end) to the parser. */
int parse(struct conn *c);
/* A fresh request: a new ID, its parse state reset. */
void new_request(struct conn *c);

/* conn.c: a connection's thread, and room for a new one at max-conns. */
void *serve_conn(ctx_t *cctx, void *arg);
bool evict_idle(void);

/* request.c */
bool handle(ctx_t *req, struct conn *c);
void bad_request(ctx_t *req, struct conn *c);
void linger(ctx_t *ctx, int fd);

/* handlers.c: route one request to its endpoint; ctx has its deadline. */
void route(ctx_t *ctx, struct conn *c, struct response *res);
void reply(struct response *res, int status, const char *reason,
	   const char *body);

/* upstream.c: GET /proxy; the libcurl set-up (main.c calls them). */
void handle_proxy(ctx_t *ctx, struct conn *c, struct response *res);
int upstream_setup(void);
void upstream_teardown(void);

/* accept.c */
int listen_on(void);
int accept_loop(void);
void drain_queue(void);
void release_slot(void);

/* shutdown.c */
int setup(void);
void shut_down(int e);
void teardown(void);

/* ---- logging (log.c) -------------------------------------------------- */

/* Context keys, compared by address: the connection and the request ID,
 * which every log line under them is tagged with. */
extern const char conn_key, req_key;

__attribute__((format(printf, 2, 3)))
void hlog(ctx_t *ctx, const char *fmt, ...);
int open_log(void);

static inline long long ms(int64_t ns)
{
	return (long long)(ns / CTX_MSEC);
}

#endif
