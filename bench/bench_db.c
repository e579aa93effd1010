/*
 * bench_db: libctx-pq and libctx-redis beside plain libpq and hiredis
 * (issue 25), against throwaway servers on UNIX sockets, started as
 * their suites start them (glue/testing.h):
 *
 *   db/pq/select1            SELECT 1: ctx_pq_exec vs PQexec, one
 *                            connection, the two in turn
 *   db/redis/get             GET of a 16-byte value: ctx_redis_command vs
 *                            redisCommand, one connection, in turn
 *   db/pq/deadline/return    SELECT pg_sleep(10) under a 2 ms deadline:
 *                            from the deadline to ctx_pq_exec's return
 *                            (cancel request, results drained)
 *   db/pq/deadline/server    ... to the query's end on the server: its
 *                            backend's pg_stat_activity.state_change
 *   db/redis/deadline/return BLPOP on an empty list under a 2 ms deadline:
 *                            from the deadline to the call's return
 *   db/redis/deadline/server ... to the server's count of blocked clients
 *                            seen back at 0 (INFO, polled: the figure
 *                            includes up to one INFO round trip)
 *
 * The libctx side of a round trip runs under a context with a deadline
 * an hour away, as a request's would.  Each row checks what it timed: the
 * value that came back, ETIMEDOUT from each deadline call, the backend
 * idle afterwards.  A library not built, or a server whose programs are
 * not installed, leaves its rows out ("# skipped:").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctx.h>
#include "benchutil.h"
#include "testing.h"
#ifdef HAVE_LIBPQ
#include "ctx/pq.h"
#endif
#ifdef HAVE_HIREDIS
#include "ctx/redis.h"
#endif

/* The helpers below serve either library's rows: a build with neither
 * leaves them unused. */
static const char *const lp[] BENCH_UNUSED = { "libctx", "plain" };

#define DEADLINE (2 * CTX_MSEC)

BENCH_UNUSED
static void row(const char *name, void (*fn)(void *, int, int, uint64_t),
		void *arg)
{
	bench_measure(&(struct bench_spec){ .scenario = name, .names = lp,
		.nimpls = 2, .fn = fn, .arg = arg });
}

/* The CLOCK_REALTIME time (ns) of a CLOCK_MONOTONIC one, for comparing
 * with a server's wall-clock timestamps. */
BENCH_UNUSED
static double realtime_of(int64_t mono)
{
	struct timespec rt;
	int64_t now = ctx_now();
	clock_gettime(CLOCK_REALTIME, &rt);
	return (double)rt.tv_sec * 1e9 + (double)rt.tv_nsec +
	       (double)(mono - now);
}

/* Samples of the deadline rows: fewer on a quick run. */
BENCH_UNUSED
static int deadline_samples(int full)
{
	return B.quick ? 10 : full;
}

/* ---- PostgreSQL -------------------------------------------------------- */
#ifdef HAVE_LIBPQ
static void pq_check(PGresult *r, const char *want)
{
	if (PQresultStatus(r) != PGRES_TUPLES_OK ||
	    strcmp(PQgetvalue(r, 0, 0), want) != 0)
		bench_fail("bench_db: SELECT %s: %s", want,
			   r ? PQresultErrorMessage(r) : "no result");
	PQclear(r);
}

static void pq_select1(void *arg, int impl, int tid, uint64_t n)
{
	PGconn *conn = arg;
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 3600 * CTX_SEC);
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		pq_check(impl == 0 ? ctx_pq_exec(ctx, conn, "SELECT 1")
				   : PQexec(conn, "SELECT 1"), "1");
	ctx_release(ctx);
}

/* When conn's backend last changed state (ns since the epoch), read on m;
 * it must be idle. */
static double pq_state_change(PGconn *m, PGconn *conn)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%d", PQbackendPID(conn));
	const char *v[] = { pid };
	PGresult *r = PQexecParams(m, "SELECT state, (extract(epoch FROM "
				   "state_change) * 1e6)::bigint FROM "
				   "pg_stat_activity WHERE pid = $1::int",
				   1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
	    strcmp(PQgetvalue(r, 0, 0), "idle") != 0)
		bench_fail("bench_db: the cancelled query's backend is not "
			   "idle");
	double us = atof(PQgetvalue(r, 0, 1));
	PQclear(r);
	return us * 1e3;
}

static void pq_deadlines(PGconn *conn, PGconn *m)
{
	if (!bench_wanted("db/pq/deadline"))
		return;
	int n = deadline_samples(200);
	double *ret = bench_alloc((size_t)n * sizeof *ret);
	double *srv = bench_alloc((size_t)n * sizeof *srv);
	for (int i = 0; i < n; i++) {
		int64_t d = ctx_now() + DEADLINE;
		double d_real = realtime_of(d);
		ctx_t *ctx = ctx_with_deadline(ctx_background(), d);
		PGresult *r = ctx_pq_exec(ctx, conn, "SELECT pg_sleep(10)");
		int64_t back = ctx_now();
		if (r || errno != CTX_DEADLINE_EXCEEDED)
			bench_fail("bench_db: pg_sleep did not end at the "
				   "deadline");
		ret[i] = (double)(back - d);
		srv[i] = pq_state_change(m, conn) - d_real;
		ctx_release(ctx);
	}
	bench_dist("db/pq/deadline/return", "libctx", ret, n, B.reps, "ns");
	bench_dist("db/pq/deadline/server", "libctx", srv, n, B.reps, "ns");
	free(ret);
	free(srv);
}

static void bench_pq(void)
{
	struct tg_server s;
	int st = tg_pq_start(&s);
	if (st == 77) {
		printf("# skipped: db/pq: no PostgreSQL server programs\n");
		return;
	}
	if (st)
		bench_fail("bench_db: PostgreSQL did not start");
	PGconn *conn = ctx_pq_connect(ctx_background(), s.address);
	PGconn *m = PQconnectdb(s.address);
	if (!conn || PQstatus(conn) != CONNECTION_OK ||
	    PQstatus(m) != CONNECTION_OK)
		bench_fail("bench_db: cannot connect to %s", s.address);
	printf("# PostgreSQL: server %d, libpq %d\n", PQserverVersion(conn),
	       PQlibVersion());
	row("db/pq/select1", pq_select1, conn);
	pq_deadlines(conn, m);
	PQfinish(conn);
	PQfinish(m);
	tg_pq_stop(&s);
}
#endif

/* ---- Redis ------------------------------------------------------------- */
#ifdef HAVE_HIREDIS
#define VALUE "0123456789abcdef"

static void redis_get(void *arg, int impl, int tid, uint64_t n)
{
	redisContext *c = arg;
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 3600 * CTX_SEC);
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		redisReply *r = impl == 0 ? ctx_redis_command(ctx, c, "GET k")
					  : redisCommand(c, "GET k");
		if (!r || r->type != REDIS_REPLY_STRING ||
		    strcmp(r->str, VALUE) != 0)
			bench_fail("bench_db: GET k: %s",
				   r ? r->str : c->errstr);
		freeReplyObject(r);
	}
	ctx_release(ctx);
}

/* The first time the server is seen with no blocked client. */
static int64_t redis_unblocked(redisContext *m)
{
	for (int i = 0; i < 100000; i++) {
		redisReply *r = redisCommand(m, "INFO clients");
		int64_t t = ctx_now();
		if (!r || r->type != REDIS_REPLY_STRING)
			bench_fail("bench_db: INFO clients: %s", m->errstr);
		bool none = strstr(r->str, "blocked_clients:0\r") != NULL;
		freeReplyObject(r);
		if (none)
			return t;
	}
	bench_fail("bench_db: the cancelled BLPOP stays blocked");
}

static void redis_deadlines(const char *addr, redisContext *m)
{
	if (!bench_wanted("db/redis/deadline"))
		return;
	int n = deadline_samples(400);
	double *ret = bench_alloc((size_t)n * sizeof *ret);
	double *srv = bench_alloc((size_t)n * sizeof *srv);
	for (int i = 0; i < n; i++) {
		redisContext *c = ctx_redis_connect(ctx_background(), addr);
		int64_t d = ctx_now() + DEADLINE;
		ctx_t *ctx = ctx_with_deadline(ctx_background(), d);
		if (!c)
			bench_fail("bench_db: connect %s", addr);
		redisReply *r = ctx_redis_command(ctx, c, "BLPOP empty 0");
		int64_t back = ctx_now();
		if (r || errno != CTX_DEADLINE_EXCEEDED)
			bench_fail("bench_db: BLPOP did not end at the "
				   "deadline");
		ret[i] = (double)(back - d);
		srv[i] = (double)(redis_unblocked(m) - d);
		ctx_release(ctx);
		redisFree(c);
	}
	bench_dist("db/redis/deadline/return", "libctx", ret, n, B.reps, "ns");
	bench_dist("db/redis/deadline/server", "libctx", srv, n, B.reps, "ns");
	free(ret);
	free(srv);
}

static void bench_redis(void)
{
	struct tg_server s;
	int st = tg_redis_start(&s);
	if (st == 77) {
		printf("# skipped: db/redis: no redis-server\n");
		return;
	}
	if (st)
		bench_fail("bench_db: redis-server did not start");
	redisContext *c = ctx_redis_connect(ctx_background(), s.address);
	redisContext *m = redisConnectUnix(s.address);
	if (!c || !m || m->err)
		bench_fail("bench_db: cannot connect to %s", s.address);
	freeReplyObject(redisCommand(m, "SET k %s", VALUE));
	row("db/redis/get", redis_get, c);
	redis_deadlines(s.address, m);
	redisFree(c);
	redisFree(m);
	tg_redis_stop(&s);
}
#endif

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_print_machine("bench_db: libctx-pq and libctx-redis beside "
			    "plain libpq and hiredis");
	printf("# libctx backend: %s\n", ctx_backend());
#ifdef HAVE_LIBPQ
	bench_section("pq", bench_pq);
#else
	printf("# skipped: db/pq: built without libctx-pq\n");
#endif
#ifdef HAVE_HIREDIS
	bench_section("redis", bench_redis);
#else
	printf("# skipped: db/redis: built without libctx-redis\n");
#endif
	return 0;
}
