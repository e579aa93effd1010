/*
 * libctx-pq: libpq's non-blocking interface driven by libctx's waits.
 *
 * Connecting.  libpq resolves host names with getaddrinfo, blocking,
 * where no context reaches.  So the conninfo string is parsed here
 * (PQconninfoParse), each host name of the host list is resolved with
 * ctx_getaddrinfo, and libpq is given one host entry per address, the
 * name in host (for TLS verification, .pgpass and messages) and the
 * number in hostaddr, which libpq connects to without a lookup.  Ports
 * follow their hosts.  UNIX socket directories, an explicit hostaddr and
 * every other keyword pass through untouched.  A name that does not
 * resolve keeps its entry with the name as hostaddr: libpq then fails
 * that entry at once ("could not parse network address") and goes on to
 * the next, as it goes on after a failed lookup of its own.  The
 * connection is then made with PQconnectStartParams and PQconnectPoll,
 * each wait a ctx_poll on PQsocket (which changes from host to host).
 *
 * Queries.  For the duration of a call the connection is in libpq's
 * non-blocking mode (put back afterwards): the query is flushed and the
 * results read with PQflush, PQconsumeInput and PQisBusy, and PQgetResult
 * is called only when it will not wait.  A connection whose socket fails
 * is broken off (shutdown, then PQconsumeInput sees the end and libpq
 * drops it), so that PQgetResult reports the failure without waiting.
 *
 * When the context ends during a query (abandon): the results already
 * here are dropped, and if the query is still running the server is sent
 * a cancel request and the rest of the query's results are read and
 * dropped, both under a grace of GRACE; if the grace runs out the
 * connection is broken off.  The cancel request must have finished too
 * before the connection counts as idle: a request still on its way could
 * cancel the next query instead (the server signals the backend twice
 * for one request, to the process and to its group, and a query sent
 * between the two is cancelled by the second).  A request that reaches
 * the backend before it has read the query is ignored, and the query
 * then runs to its end, so another request follows every RETRY while the
 * query runs on, each once the one before is over.  With libpq 17 a
 * request goes through PQcancelCreate/PQcancelStart/PQcancelPoll on the
 * caller's thread, its waits under the grace.  Before that libpq has
 * only PQcancel, which blocks for a connection to the server and its
 * close (3.6-4.9 ms on a local server); it runs on a thread of its own
 * per request (with every
 * signal blocked), so that it delays neither the caller, who reads the
 * results meanwhile, nor the library's single after-func thread.  A
 * request that outlives the grace is left to finish on its thread.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ctx/pq.h"

/* How long a cancelled query may take to end before its connection is
 * closed instead, and how often a cancel request that the query outlives
 * is sent again (see cancel_and_drain). */
#define GRACE (500 * CTX_MSEC)
#define RETRY (50 * CTX_MSEC)

/* ---- connecting: the host list ---------------------------------------- */

/* The host, hostaddr and port lists handed to libpq, built entry by
 * entry; port is NULL when one port (or none) serves every host. */
struct lists {
	FILE *host, *addr, *port;
	char *host_s, *addr_s, *port_s;
	size_t host_n, addr_n, port_n;
	int n;
};

static int lists_open(struct lists *l, bool ports)
{
	*l = (struct lists){ 0 };
	l->host = open_memstream(&l->host_s, &l->host_n);
	l->addr = open_memstream(&l->addr_s, &l->addr_n);
	if (ports)
		l->port = open_memstream(&l->port_s, &l->port_n);
	return l->host && l->addr && (!ports || l->port) ? 0 : -1;
}

/* Close the streams; -1 if any failed (out of memory). */
static int lists_close(struct lists *l)
{
	int bad = 0;
	FILE *all[] = { l->host, l->addr, l->port };
	for (int i = 0; i < 3; i++)
		if (all[i] && (ferror(all[i]) | fclose(all[i])))
			bad = -1;
	l->host = l->addr = l->port = NULL;
	return bad;
}

static void lists_free(struct lists *l)
{
	lists_close(l);
	free(l->host_s);
	free(l->addr_s);
	free(l->port_s);
}

static void add_entry(struct lists *l, const char *host, const char *addr,
		      const char *port)
{
	const char *sep = l->n++ ? "," : "";
	fprintf(l->host, "%s%s", sep, host);
	fprintf(l->addr, "%s%s", sep, addr);
	if (l->port)
		fprintf(l->port, "%s%s", sep, port);
}

/* One entry per address of name.  -1 with errno when the context ended
 * the lookup or memory ran out. */
static int add_name(ctx_t *ctx, struct lists *l, const char *name,
		    const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc = ctx_getaddrinfo(ctx, name, NULL, &hints, &res);
	if ((rc == EAI_SYSTEM && ctx_err(ctx)) || rc == EAI_MEMORY) {
		errno = rc == EAI_MEMORY ? ENOMEM : ctx_err(ctx);
		return -1;
	}
	if (rc) { /* libpq fails this entry (see the top) */
		add_entry(l, name, name, port);
		return 0;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char num[NI_MAXHOST];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof num,
				NULL, 0, NI_NUMERICHOST) == 0)
			add_entry(l, name, num, port);
	}
	ctx_freeaddrinfo(res);
	return 0;
}

/* The next element of a comma-separated list, copied into buf (cut at
 * its size); *list moves past it.  false at the end. */
static bool next_elem(const char **list, char *buf, size_t len)
{
	if (!*list)
		return false;
	const char *comma = strchr(*list, ',');
	size_t n = comma ? (size_t)(comma - *list) : strlen(*list);
	snprintf(buf, len, "%.*s", (int)n, *list);
	*list = comma ? comma + 1 : NULL;
	return true;
}

static int count_elems(const char *list)
{
	int n = list ? 1 : 0;
	for (; list && *list; list++)
		n += *list == ',';
	return n;
}

/* Build l from the host and port lists (see the top).  0, or -1 with
 * errno. */
static int resolve_hosts(ctx_t *ctx, struct lists *l, const char *hosts,
			 const char *ports)
{
	bool each = count_elems(ports) > 1;
	char host[1025], port[64] = "";
	if (lists_open(l, each))
		return errno = ENOMEM, -1;
	while (next_elem(&hosts, host, sizeof host)) {
		if (each)
			next_elem(&ports, port, sizeof port);
		if (!host[0] || host[0] == '/' || host[0] == '@')
			add_entry(l, host, "", port); /* a UNIX socket */
		else if (add_name(ctx, l, host, port))
			return -1;
	}
	return lists_close(l) ? (errno = ENOMEM, -1) : 0;
}

/* ---- connecting: the keywords ----------------------------------------- */

static const char *value_of(const PQconninfoOption *o, const char *key,
			    const char *env)
{
	for (; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && o->val)
			return o->val;
	return getenv(env);
}

static bool replaced(const char *key)
{
	return !strcmp(key, "host") || !strcmp(key, "hostaddr") ||
	       !strcmp(key, "port");
}

/* PQconnectStartParams with opts; host, hostaddr and port from l
 * unless l is NULL. */
static PGconn *start_params(const PQconninfoOption *opts,
			    const struct lists *l, const char *port)
{
	size_t n = 0, k = 0;
	while (opts[n].keyword)
		n++;
	const char **keys = calloc(n + 4, sizeof *keys);
	const char **vals = calloc(n + 4, sizeof *vals);
	PGconn *conn = NULL;
	if (keys && vals) {
		for (const PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && !(l && replaced(o->keyword)))
				keys[k] = o->keyword, vals[k++] = o->val;
		if (l) {
			keys[k] = "host", vals[k++] = l->host_s;
			keys[k] = "hostaddr", vals[k++] = l->addr_s;
		}
		if (l && (l->port_s || port)) {
			keys[k] = "port";
			vals[k++] = l->port_s ? l->port_s : port;
		}
		conn = PQconnectStartParams(keys, vals, 0);
	}
	free(keys);
	free(vals);
	return conn;
}

/* Start connecting as opts say, names resolved under ctx.  NULL with
 * errno when the context ended the lookup or memory ran out. */
static PGconn *start(ctx_t *ctx, const PQconninfoOption *opts)
{
	const char *host = value_of(opts, "host", "PGHOST");
	const char *addr = value_of(opts, "hostaddr", "PGHOSTADDR");
	const char *port = value_of(opts, "port", "PGPORT");
	int nports = count_elems(port);
	struct lists l = { 0 };
	PGconn *conn = NULL;
	/* Nothing to resolve; or a mismatch that libpq reports itself. */
	if (!host || !*host || (addr && *addr) ||
	    (nports > 1 && nports != count_elems(host)))
		conn = start_params(opts, NULL, NULL);
	else if (resolve_hosts(ctx, &l, host, port) == 0)
		conn = start_params(opts, &l, port);
	else
		goto out; /* errno set */
	if (!conn)
		errno = ENOMEM;
out:
	lists_free(&l);
	return conn;
}

/* ---- connecting: the polling ------------------------------------------ */

/* Drive PQconnectPoll to its end.  0 (PQstatus says how it went), or -1
 * with errno when ctx ended a wait. */
static int connect_poll(ctx_t *ctx, PGconn *conn)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
		short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		struct pollfd p = { .fd = PQsocket(conn), .events = ev };
		if (p.fd < 0)
			return 0;
		if (ctx_poll(ctx, &p, 1, -1) < 0)
			return -1;
		st = PQconnectPoll(conn);
	}
	return 0;
}

CTX_API PGconn *ctx_pq_connect(ctx_t *ctx, const char *conninfo)
{
	if (!ctx || !conninfo)
		return errno = EINVAL, NULL;
	int e = ctx_err(ctx);
	if (e)
		return errno = e, NULL;
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
	PGconn *conn = NULL;
	bool parsed = opts != NULL;
	if (parsed) {
		conn = start(ctx, opts); /* NULL: errno set */
		PQconninfoFree(opts);
	} else if (why) {
		/* libpq says what is wrong with it, before any lookup. */
		PQfreemem(why);
		conn = PQconnectStart(conninfo);
	}
	if (!conn && !parsed)
		errno = ENOMEM;
	if (!conn)
		return NULL;
	if (PQstatus(conn) != CONNECTION_BAD && connect_poll(ctx, conn)) {
		e = errno;
		PQfinish(conn);
		return errno = e, NULL;
	}
	return conn;
}

/* ---- queries: waiting for results ------------------------------------- */

/* Make PQgetResult report a failed connection without waiting (see the
 * top): after shutdown, PQconsumeInput reads the end of the stream and
 * libpq drops the connection. */
static void break_off(PGconn *conn)
{
	int fd = PQsocket(conn);
	if (fd < 0)
		return;
	shutdown(fd, SHUT_RDWR);
	for (int i = 0; i < 64 && PQsocket(conn) >= 0; i++)
		if (!PQconsumeInput(conn))
			break;
}

/* Flush what is queued and read until PQgetResult will not wait: 0, or
 * -1 with errno when ctx ended a wait. */
static int pump(ctx_t *ctx, PGconn *conn)
{
	for (;;) {
		int f = PQflush(conn);
		if (f == 0 && !PQisBusy(conn))
			return 0;
		struct pollfd p = {
			.fd = PQsocket(conn),
			.events = POLLIN | (f > 0 ? POLLOUT : 0),
		};
		if (f < 0 || p.fd < 0)
			return break_off(conn), 0;
		if (ctx_poll(ctx, &p, 1, -1) < 0)
			return -1;
		if ((p.revents & (POLLIN | POLLERR | POLLHUP)) &&
		    !PQconsumeInput(conn))
			return break_off(conn), 0;
	}
}

/* Skip the rest of a COPY TO STDOUT.  0, or -1 on failure. */
static int skip_copy_out(ctx_t *grace, PGconn *conn)
{
	for (;;) {
		char *buf;
		int n = PQgetCopyData(conn, &buf, 1);
		if (n > 0) {
			PQfreemem(buf);
			continue;
		}
		if (n == -1)
			return 0; /* the end; a final result follows */
		struct pollfd p = { .fd = PQsocket(conn), .events = POLLIN };
		if (n < -1 || p.fd < 0 || ctx_poll(grace, &p, 1, -1) < 0 ||
		    !PQconsumeInput(conn))
			return -1;
	}
}

/* Drop the results that are here.  1: the query is over and the
 * connection idle; 0: more to come; -1: it cannot be brought back
 * (broken, or in COPY BOTH). */
static int drop_ready(ctx_t *grace, PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK || !PQconsumeInput(conn))
		return -1;
	while (!PQisBusy(conn)) {
		PGresult *r = PQgetResult(conn);
		if (!r)
			return PQstatus(conn) == CONNECTION_OK ? 1 : -1;
		ExecStatusType s = PQresultStatus(r);
		PQclear(r);
		if (s == PGRES_COPY_BOTH ||
		    (s == PGRES_COPY_IN &&
		     PQputCopyEnd(conn, "canceled") != 1) ||
		    (s == PGRES_COPY_OUT && skip_copy_out(grace, conn)))
			return -1;
	}
	return 0;
}

/* Drop results until the query is over, or until ctx ends: drop_ready's
 * result, 0 for the end of ctx. */
static int drain(ctx_t *ctx, PGconn *conn)
{
	int r;
	while ((r = drop_ready(ctx, conn)) == 0)
		if (pump(ctx, conn) < 0)
			return 0;
	return r;
}

/* ---- queries: the cancel request -------------------------------------- */

/* One cancel request in flight: started, then waited for (see the top). */
struct request {
#ifdef HAVE_PQCANCELCREATE
	int unused;
#else
	ctx_thread_t *sender;
#endif
};

#ifdef HAVE_PQCANCELCREATE
/* libpq 17: the request on this thread, its waits under the grace. */
static bool cancel_sent(ctx_t *grace, PGcancelConn *cc)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	if (!PQcancelStart(cc))
		return false;
	while (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
		short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		struct pollfd p = { .fd = PQcancelSocket(cc), .events = ev };
		if (p.fd < 0 || ctx_poll(grace, &p, 1, -1) < 0)
			return false;
		st = PQcancelPoll(cc);
	}
	return st == PGRES_POLLING_OK;
}

/* The whole request, here: it is over when this returns. */
static bool request_start(ctx_t *grace, PGconn *conn, struct request *rq)
{
	PGcancelConn *cc = PQcancelCreate(conn);
	(void)rq;
	if (!cc)
		return false;
	bool sent = cancel_sent(grace, cc);
	PQcancelFinish(cc);
	return sent;
}

static bool request_end(ctx_t *grace, struct request *rq)
{
	(void)grace, (void)rq;
	return true;
}
#else
/* Before libpq 17: PQcancel, which blocks, on a thread of its own. */
static void *send_cancel(ctx_t *ctx, void *arg)
{
	char why[256];
	(void)ctx;
	PQcancel(arg, why, sizeof why);
	PQfreeCancel(arg);
	return NULL;
}

/* The sending thread, every signal blocked in it (it inherits the mask
 * it is created with), so that it takes none meant for the program. */
static bool request_start(ctx_t *grace, PGconn *conn, struct request *rq)
{
	sigset_t all, old;
	PGcancel *pc = PQgetCancel(conn);
	(void)grace;
	if (!pc)
		return false;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = ctx_thread_create(&rq->sender, ctx_background(), send_cancel,
				  pc);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		PQfreeCancel(pc);
	return e == 0;
}

/* Wait for the request to be over, within the grace; a request that
 * outlives it is left to its thread, which frees it. */
static bool request_end(ctx_t *grace, struct request *rq)
{
	if (ctx_thread_join(grace, rq->sender, NULL) == 0)
		return true;
	ctx_thread_detach(rq->sender);
	return false;
}
#endif

/* Cancel the query and drop its results: true once the connection is
 * idle and no request is in flight, within the grace.  A request that
 * reaches the backend before it has read the query is ignored by
 * PostgreSQL, and the query then runs to its end; so while the query
 * runs on, another request follows every RETRY, each after the one
 * before it is over (never two at once, and none left behind). */
static bool cancel_and_drain(ctx_t *grace, PGconn *conn)
{
	for (;;) {
		struct request rq;
		if (!request_start(grace, conn, &rq))
			return false;
		ctx_t *slice = ctx_with_timeout(grace, RETRY);
		int r = slice ? drain(slice, conn) : -1;
		if (slice)
			ctx_release(slice);
		if (!request_end(grace, &rq))
			return false;
		if (r == 0)
			r = drop_ready(grace, conn);
		if (r != 0 || ctx_err(grace))
			return r > 0;
	}
}

static bool in_pipeline(PGconn *conn)
{
#ifdef LIBPQ_HAS_PIPELINING
	return PQpipelineStatus(conn) != PQ_PIPELINE_OFF;
#else
	(void)conn;
	return false;
#endif
}

/* The context ended the call: bring the connection back to idle, or
 * break it off (see the top).  A query half sent, or a pipeline (whose
 * end cannot be told from one query's), is broken off at once. */
static void abandon(PGconn *conn)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return;
	ctx_t *grace = ctx_with_timeout(ctx_background(), GRACE);
	bool idle = false;
	if (grace && !in_pipeline(conn) && PQflush(conn) == 0) {
		int r = drop_ready(grace, conn);
		idle = r > 0 || (r == 0 && cancel_and_drain(grace, conn));
	}
	if (!idle)
		break_off(conn);
	if (grace)
		ctx_release(grace);
}

/* ---- queries: the calls ----------------------------------------------- */

/* The next result, or NULL: errno 0 when the query is over, else the
 * context's error (the query cancelled, see abandon). */
static PGresult *next_result(ctx_t *ctx, PGconn *conn)
{
	int e = ctx_err(ctx);
	if (!e && pump(ctx, conn) < 0)
		e = errno ? errno : EIO;
	if (e) {
		abandon(conn);
		return errno = e, NULL;
	}
	PGresult *r = PQgetResult(conn);
	if (!r)
		errno = 0;
	return r;
}

/* As PQexec: the last result (stopping at COPY or a broken
 * connection), or NULL with the context's error. */
static PGresult *last_result(ctx_t *ctx, PGconn *conn)
{
	PGresult *last = NULL, *r;
	while ((r = next_result(ctx, conn))) {
		PQclear(last);
		last = r;
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT ||
		    s == PGRES_COPY_BOTH || PQstatus(conn) == CONNECTION_BAD)
			return last;
	}
	if (errno) {
		PQclear(last);
		return NULL;
	}
	return last;
}

/* An error result with the connection's message, as libpq makes one. */
static PGresult *failure(PGconn *conn)
{
	PGresult *r = PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	if (!r)
		errno = ENOMEM;
	return r;
}

struct query {
	const char *sql;
	bool params;
	int n;
	const Oid *types;
	const char *const *values;
	const int *lengths, *formats;
	int result_format;
};

static int send_query(PGconn *conn, const struct query *q)
{
	if (!q->params)
		return PQsendQuery(conn, q->sql);
	return PQsendQueryParams(conn, q->sql, q->n, q->types, q->values,
				 q->lengths, q->formats, q->result_format);
}

static PGresult *exec(ctx_t *ctx, PGconn *conn, const struct query *q)
{
	if (!ctx || !conn || !q->sql)
		return errno = EINVAL, NULL;
	int e = ctx_err(ctx);
	if (e)
		return errno = e, NULL;
	int was = PQisnonblocking(conn);
	PGresult *r;
	if (PQsetnonblocking(conn, 1) || !send_query(conn, q))
		r = failure(conn);
	else
		r = last_result(ctx, conn);
	e = errno;
	PQsetnonblocking(conn, was);
	errno = e;
	return r;
}

CTX_API PGresult *ctx_pq_exec(ctx_t *ctx, PGconn *conn, const char *sql)
{
	return exec(ctx, conn, &(struct query){ .sql = sql });
}

CTX_API PGresult *ctx_pq_exec_params(ctx_t *ctx, PGconn *conn,
				     const char *sql, int n,
				     const Oid *types,
				     const char *const *values,
				     const int *lengths, const int *formats,
				     int result_format)
{
	return exec(ctx, conn, &(struct query){
		.sql = sql, .params = true, .n = n, .types = types,
		.values = values, .lengths = lengths, .formats = formats,
		.result_format = result_format });
}

CTX_API PGresult *ctx_pq_get_result(ctx_t *ctx, PGconn *conn)
{
	if (!ctx || !conn)
		return errno = EINVAL, NULL;
	int was = PQisnonblocking(conn);
	PGresult *r = PQsetnonblocking(conn, 1) ? failure(conn)
						: next_result(ctx, conn);
	int e = errno;
	PQsetnonblocking(conn, was);
	errno = e;
	return r;
}
