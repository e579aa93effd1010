/*
 * libctx-pq: PostgreSQL connections and queries that a context ends,
 * over libpq's non-blocking interface.
 * Link with `pkg-config --cflags --libs libctx-pq`.
 *
 * ctx_pq_connect is PQconnectdb under a context: host names are resolved
 * with ctx_getaddrinfo (never by libpq, whose lookups block) and given to
 * libpq as hostaddr beside the name, and the connection is made with
 * PQconnectStartParams and PQconnectPoll, each wait under ctx.  Every
 * other conninfo keyword and the PG* environment variables work as with
 * PQconnectdb, except connect_timeout (libpq applies it only in its
 * blocking connect: the context's deadline is the bound).  It returns NULL
 * only when ctx ended it (errno = the context's error) or memory ran out
 * (ENOMEM), and otherwise the PGconn: PQstatus says whether it connected
 * and PQerrorMessage why not.  Free it with PQfinish.
 *
 * ctx_pq_exec, ctx_pq_exec_params and ctx_pq_get_result are PQexec,
 * PQexecParams and PQgetResult under a context: each wait for the socket
 * is a ctx_poll.  ctx_pq_get_result follows PQsendQuery and the other
 * PQsend calls: the next result, or NULL with errno 0 once the query is
 * done.  When ctx ends during a query, the server is sent a cancel
 * request (again every 50 ms while the query runs on: PostgreSQL ignores
 * one that arrives before the query has been read), the query's results
 * are read and dropped, for at most half a second in all, and if that
 * grace runs out the connection is closed; the call
 * returns NULL with errno = the context's error.  Afterwards the
 * connection is idle and usable for the next query, or PQstatus is
 * CONNECTION_BAD.  A context already done refuses at once (ctx_pq_exec
 * sends nothing; ctx_pq_get_result cancels the query in flight, as
 * above).  NULL arguments: NULL with errno EINVAL; no memory: ENOMEM.
 * Other failures are error results (PGRES_FATAL_ERROR), also when the
 * query could not be sent (the connection's message is copied in).
 *
 * No thread of the library waits inside libpq for the server, except
 * where libpq has no non-blocking cancel request (before libpq 17): there
 * PQcancel's own connection to the server runs on a short-lived thread of
 * the library, never on the caller's, and the caller waits for it at
 * most the grace.  Use a connection from one thread at a time.
 */
#ifndef CTX_PQ_H
#define CTX_PQ_H

#include <libpq-fe.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API PGconn *ctx_pq_connect(ctx_t *ctx, const char *conninfo) CTX_NOEXCEPT;
CTX_API PGresult *ctx_pq_exec(ctx_t *ctx, PGconn *conn,
			      const char *sql) CTX_NOEXCEPT;
CTX_API PGresult *ctx_pq_exec_params(ctx_t *ctx, PGconn *conn,
				     const char *sql, int n,
				     const Oid *types,
				     const char *const *values,
				     const int *lengths, const int *formats,
				     int result_format) CTX_NOEXCEPT;
CTX_API PGresult *ctx_pq_get_result(ctx_t *ctx, PGconn *conn) CTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
