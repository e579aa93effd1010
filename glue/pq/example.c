/*
 * example: run one SQL statement on PostgreSQL with a time limit, as a
 * request handler runs its query under the request's deadline.
 *
 *   glue/pq/example CONNINFO SQL [MILLISECONDS]     (default 1000)
 *
 *   $ glue/pq/example "host=/var/run/postgresql dbname=postgres" \
 *       "SELECT pg_sleep(10)" 200
 *   example: SELECT pg_sleep(10): context deadline exceeded after 203 ms
 *
 * The server is asked to cancel a query that runs past the deadline, so
 * it stops working on it; the connection could take the next query.
 */
#include <stdio.h>
#include <stdlib.h>

#include <ctx/pq.h>

static void print_rows(const PGresult *r)
{
	for (int i = 0; i < PQntuples(r); i++)
		for (int j = 0; j < PQnfields(r); j++)
			printf("%s%s", PQgetvalue(r, i, j),
			       j + 1 < PQnfields(r) ? "|" : "\n");
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s CONNINFO SQL [MILLISECONDS]\n",
			argv[0]);
		return 2;
	}
	long ms = argc == 4 ? atol(argv[3]) : 1000;
	int64_t t0 = ctx_now();
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), ms * CTX_MSEC);
	PGconn *conn = ctx_pq_connect(ctx, argv[1]);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "example: connect: %s",
			conn ? PQerrorMessage(conn) : ctx_strerror(errno));
		fprintf(stderr, conn ? "" : "\n");
		PQfinish(conn);
		return 1;
	}
	PGresult *r = ctx_pq_exec(ctx, conn, argv[2]);
	int status = 1;
	if (!r)
		fprintf(stderr, "example: %s: %s after %lld ms\n", argv[2],
			ctx_strerror(errno),
			(long long)((ctx_now() - t0) / CTX_MSEC));
	else if (PQresultStatus(r) == PGRES_TUPLES_OK ||
		 PQresultStatus(r) == PGRES_COMMAND_OK)
		print_rows(r), status = 0;
	else
		fprintf(stderr, "example: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(conn);
	return status;
}
