/*
 * libctx-pq against a throwaway PostgreSQL on a UNIX socket
 * (testserver.c), on both backends (check_pq; see glue/testing.h).
 *
 * What the server is asked: after a query that a deadline or a cancel
 * ended, pg_stat_activity must show its backend idle at once (the query
 * is gone, not still running) and the connection must take the next
 * query; when the backend cannot answer (stopped with SIGSTOP) the grace
 * runs out, the connection is CONNECTION_BAD, and the backend goes away
 * once it runs again; after 100 cancelled queries no query of ours is
 * active.  Also: connecting through a name (a silent TCP listener, so
 * that the deadline ends the connect), a host list whose first name does
 * not resolve, results one by one after PQsendQuery, refusals, and
 * descriptors and threads back where they started after 100 cancels.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/pq.h"
#include "runner.h"
#include "testutil.h"

/* The grace of pq.c, and the slack a loaded machine needs beyond it. */
#define GRACE_MS 500
#define SLACK_MS 3000

static char conninfo[400]; /* the server's */
static char sockdir[300];  /* its socket directory */

static PGconn *must_connect(ctx_t *ctx)
{
	PGconn *conn = ctx_pq_connect(ctx, conninfo);
	ck_assert_msg(conn != NULL, "connect: %s", strerror(errno));
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s",
		      PQerrorMessage(conn));
	return conn;
}

/* A plain libpq connection, to look at the server from outside. */
static PGconn *monitor(void)
{
	PGconn *m = PQconnectdb(conninfo);
	ck_assert_msg(PQstatus(m) == CONNECTION_OK, "%s", PQerrorMessage(m));
	return m;
}

/* The first value of a one-row query with one text parameter. */
static void value_of(PGconn *m, const char *sql, const char *param,
		     char *out, size_t len)
{
	const char *values[] = { param };
	PGresult *r = PQexecParams(m, sql, param ? 1 : 0, NULL, values, NULL,
				   NULL, 0);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
		      PQresultErrorMessage(r));
	snprintf(out, len, "%s",
		 PQntuples(r) ? PQgetvalue(r, 0, 0) : "(no row)");
	PQclear(r);
}

/* pg_stat_activity's state of conn's backend, read from m. */
static void backend_state(PGconn *m, PGconn *conn, char *out, size_t len)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%d", PQbackendPID(conn));
	value_of(m, "SELECT state FROM pg_stat_activity WHERE pid = $1::int",
		 pid, out, len);
}

/* conn is idle on the server and in libpq, and takes the next query. */
static void assert_usable(PGconn *m, PGconn *conn)
{
	char state[64];
	backend_state(m, conn, state, sizeof state);
	ck_assert_str_eq(state, "idle");
	ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
	ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	PGresult *r = ctx_pq_exec(ctx_background(), conn, "SELECT 41 + 1");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	PQclear(r);
}

START_TEST(queries)
{
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 30 * CTX_SEC);
	PGconn *conn = must_connect(ctx);
	PGresult *r = ctx_pq_exec(ctx, conn, "SELECT 1, 'one'");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "one");
	PQclear(r);
	const char *values[] = { "41" };
	r = ctx_pq_exec_params(ctx, conn, "SELECT $1::int + 1", 1, NULL, values,
			       NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
	PQclear(r);
	/* A server error comes back as an error result. */
	r = ctx_pq_exec(ctx, conn, "SELECT nonsense FROM nowhere");
	ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
	PQclear(r);
	/* The blocking mode the caller had is put back. */
	ck_assert_int_eq(PQisnonblocking(conn), 0);
	PQfinish(conn);
	ctx_release(ctx);
}
END_TEST

START_TEST(results_one_by_one)
{
	PGconn *conn = must_connect(ctx_background());
	ck_assert_int_eq(PQsendQuery(conn, "SELECT 1; SELECT 2"), 1);
	for (int i = 1; i <= 2; i++) {
		PGresult *r = ctx_pq_get_result(ctx_background(), conn);
		ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
		ck_assert_int_eq(atoi(PQgetvalue(r, 0, 0)), i);
		PQclear(r);
	}
	errno = EBADF;
	ck_assert_ptr_null(ctx_pq_get_result(ctx_background(), conn));
	ck_assert_int_eq(errno, 0);
	PQfinish(conn);
}
END_TEST

/* A pg_sleep that a context ends (after timeout_ns, by a deadline or a
 * cancel): NULL with errno soon after, the query gone from the server at
 * once, the connection usable.  sent: PQsendQuery + ctx_pq_get_result. */
static void sleep_ended(int64_t timeout_ns, bool cancel, bool sent)
{
	PGconn *conn = must_connect(ctx_background()), *m = monitor();
	struct tu_canceller k;
	int64_t t0 = ctx_now(), lo = timeout_ns / CTX_MSEC - 5;
	ctx_t *ctx = cancel ? ctx_with_cancel(ctx_background())
			    : ctx_with_timeout(ctx_background(), timeout_ns);
	if (cancel)
		tu_must_cancel_after(&k, ctx, timeout_ns);
	PGresult *r;
	if (sent) {
		ck_assert_int_eq(PQsendQuery(conn, "SELECT pg_sleep(60)"), 1);
		r = ctx_pq_get_result(ctx, conn);
	} else {
		r = ctx_pq_exec(ctx, conn, "SELECT pg_sleep(60)");
	}
	int e = errno;
	ck_assert_ptr_null(r);
	ck_assert_int_eq(e, cancel ? CTX_CANCELED : CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), lo, lo + GRACE_MS + SLACK_MS);
	if (cancel)
		tu_canceller_join(&k);
	assert_usable(m, conn);
	errno = EBADF;
	ck_assert_ptr_null(ctx_pq_get_result(ctx_background(), conn));
	ck_assert_int_eq(errno, 0);
	ctx_release(ctx);
	PQfinish(conn);
	PQfinish(m);
}

START_TEST(exec_deadline)
{
	sleep_ended(100 * CTX_MSEC, false, false);
}
END_TEST

START_TEST(exec_cancel)
{
	sleep_ended(50 * CTX_MSEC, true, false);
}
END_TEST

START_TEST(get_result_deadline)
{
	sleep_ended(100 * CTX_MSEC, false, true);
}
END_TEST

/* A backend that cannot answer the cancel: the grace runs out and the
 * connection is closed; the backend goes once it runs again. */
START_TEST(grace_runs_out)
{
	PGconn *conn = must_connect(ctx_background()), *m = monitor();
	char pid[16], n[16];
	snprintf(pid, sizeof pid, "%d", PQbackendPID(conn));
	ck_assert_int_eq(kill(PQbackendPID(conn), SIGSTOP), 0);
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	int64_t t0 = ctx_now();
	PGresult *r = ctx_pq_exec(ctx, conn, "SELECT 1");
	int e = errno;
	double ms = tu_ms_since(t0);
	kill(atoi(pid), SIGCONT);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, 45 + GRACE_MS, 50 + GRACE_MS + SLACK_MS);
	ck_assert_int_eq(PQstatus(conn), CONNECTION_BAD);
	int64_t end = ctx_now() + 10 * CTX_SEC;
	do {
		value_of(m, "SELECT count(*) FROM pg_stat_activity "
			    "WHERE pid = $1::int", pid, n, sizeof n);
	} while (strcmp(n, "0") != 0 && ctx_now() < end &&
		 (tu_sleep_ns(10 * CTX_MSEC), true));
	ck_assert_str_eq(n, "0");
	PQfinish(conn);
	PQfinish(m);
	ctx_release(ctx);
}
END_TEST

START_TEST(refusals)
{
	PGconn *conn = must_connect(ctx_background()), *m = monitor();
	ctx_t *done = ctx_with_cancel(ctx_background());
	ctx_cancel(done);
	ck_assert_ptr_null(ctx_pq_exec(done, conn, "SELECT pg_sleep(60)"));
	ck_assert_int_eq(errno, CTX_CANCELED);
	assert_usable(m, conn); /* nothing was sent */
	ck_assert_ptr_null(ctx_pq_connect(done, conninfo));
	ck_assert_int_eq(errno, CTX_CANCELED);
	ck_assert_ptr_null(ctx_pq_exec(NULL, conn, "SELECT 1"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_pq_exec(ctx_background(), NULL, "SELECT 1"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_pq_get_result(ctx_background(), NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_pq_connect(ctx_background(), NULL));
	ck_assert_int_eq(errno, EINVAL);
	/* A conninfo libpq cannot parse: a PGconn that says why. */
	PGconn *bad = ctx_pq_connect(ctx_background(), "host");
	ck_assert_ptr_nonnull(bad);
	ck_assert_int_eq(PQstatus(bad), CONNECTION_BAD);
	ck_assert_str_ne(PQerrorMessage(bad), "");
	PQfinish(bad);
	ctx_release(done);
	PQfinish(conn);
	PQfinish(m);
}
END_TEST

/* A TCP listener that never accepts: the kernel completes the
 * handshake, libpq sends its first packet and waits for an answer. */
static int silent_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return l;
}

/* "localhost" is resolved here and libpq connects to the address (the
 * listener sees the connection); the deadline ends the wait for the
 * server's answer, leaving no descriptor behind. */
START_TEST(connect_deadline_by_name)
{
	int port, l = silent_listener(&port), fds = -1;
	char ci[200];
	snprintf(ci, sizeof ci, "host=localhost port=%d user=u dbname=d", port);
	/* Twice: the thread's first wait makes what it keeps (its reactor),
	 * so descriptors are counted before the second. */
	for (int i = 0; i < 2; i++) {
		if (i == 1)
			fds = tu_count_fds();
		int64_t t0 = ctx_now();
		ctx_t *ctx = ctx_with_timeout(ctx_background(), 200 * CTX_MSEC);
		ck_assert_ptr_null(ctx_pq_connect(ctx, ci));
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		tu_assert_ms(tu_ms_since(t0), 195, 200 + SLACK_MS);
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		ck_assert_int_ge(c, 0);
		close(c);
		ctx_release(ctx);
	}
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	close(l);
}
END_TEST

/* A host list whose first name does not resolve: libpq is told so and
 * goes on to the next host, the server's socket directory. */
START_TEST(host_list)
{
	char ci[600];
	snprintf(ci, sizeof ci, "host=nonexistent.invalid,%s port=5432 "
		 "user=postgres dbname=postgres", sockdir);
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 20 * CTX_SEC);
	PGconn *conn = ctx_pq_connect(ctx, ci);
	ck_assert_msg(conn != NULL, "connect: %s", strerror(errno));
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
		      PQerrorMessage(conn));
	PQfinish(conn);
	/* The name alone: a PGconn that names it. */
	conn = ctx_pq_connect(ctx, "host=nonexistent.invalid user=u dbname=d");
	ck_assert_ptr_nonnull(conn);
	ck_assert_int_eq(PQstatus(conn), CONNECTION_BAD);
	ck_assert_ptr_nonnull(strstr(PQerrorMessage(conn),
				     "nonexistent.invalid"));
	PQfinish(conn);
	ctx_release(ctx);
}
END_TEST

struct resume {
	pthread_t t;
	pid_t pid;
	int64_t after;
};

static void *resume_main(void *arg)
{
	struct resume *r = arg;
	tu_sleep_ns(r->after);
	kill(r->pid, SIGCONT);
	return NULL;
}

/* PostgreSQL ignores a cancel request that reaches the backend before it
 * has read the query, which then runs to its end: the request must be
 * sent again.  Forced here: the backend is stopped before the query is
 * sent, so the first request's signal waits for it, and it is let go
 * after the deadline with the query still unread.  Without a second
 * request the grace runs out and the connection is closed. */
START_TEST(cancel_sent_again)
{
	PGconn *conn = must_connect(ctx_background()), *m = monitor();
	struct resume res = { .pid = PQbackendPID(conn),
			      .after = 100 * CTX_MSEC };
	ck_assert_int_eq(kill(res.pid, SIGSTOP), 0);
	ck_assert_int_eq(pthread_create(&res.t, NULL, resume_main, &res), 0);
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 10 * CTX_MSEC);
	int64_t t0 = ctx_now();
	PGresult *r = ctx_pq_exec(ctx, conn, "SELECT pg_sleep(60)");
	int e = errno;
	double ms = tu_ms_since(t0);
	pthread_join(res.t, NULL);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, 95, 10 + GRACE_MS);
	assert_usable(m, conn);
	ctx_release(ctx);
	PQfinish(conn);
	PQfinish(m);
}
END_TEST

/* A cancel request must not outlive its call: the next query, sent at
 * once, runs to its end.  (PostgreSQL signals the backend twice for one
 * request, to the process and to its group, so a call that returned on
 * seeing the cancel's error, before the request was over, let the
 * second signal cancel the next query.) */
START_TEST(cancel_stays_with_its_query)
{
	PGconn *conn = must_connect(ctx_background());
	for (int i = 0; i < 30; i++) {
		ctx_t *ctx = ctx_with_timeout(ctx_background(), 2 * CTX_MSEC);
		ck_assert_ptr_null(ctx_pq_exec(ctx, conn,
					       "SELECT pg_sleep(60)"));
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		ctx_release(ctx);
		PGresult *r = ctx_pq_exec(ctx_background(), conn,
					  "SELECT pg_sleep(0.02)");
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK,
			      "the query after cancel %d: %s", i,
			      PQresultErrorMessage(r));
		PQclear(r);
	}
	PQfinish(conn);
}
END_TEST

START_TEST(hundred_cancelled)
{
	PGconn *conn = must_connect(ctx_background()), *m = monitor();
	int fds = -1, threads = -1;
	for (int i = 0; i <= 100; i++) {
		if (i == 1) { /* after one, to count what stays */
			fds = tu_count_fds();
			threads = tu_count_threads();
		}
		ctx_t *ctx = ctx_with_timeout(ctx_background(), 5 * CTX_MSEC);
		ck_assert_ptr_null(ctx_pq_exec(ctx, conn,
					       "SELECT pg_sleep(60)"));
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
		ctx_release(ctx);
	}
	ck_assert_int_eq(tu_settle_fds(fds, 5 * CTX_SEC), fds);
	ck_assert_int_eq(tu_settle_threads(threads, 5 * CTX_SEC), threads);
	char n[16];
	value_of(m, "SELECT count(*) FROM pg_stat_activity WHERE state <> "
		    "'idle' AND query LIKE '%pg_sleep%' AND pid <> "
		    "pg_backend_pid()", NULL, n, sizeof n);
	ck_assert_str_eq(n, "0");
	assert_usable(m, conn);
	PQfinish(conn);
	PQfinish(m);
}
END_TEST

static Suite *suite_pq(void)
{
	Suite *s = suite_create("pq");
	TCase *tc = tu_tcase(s, "queries", 60);
	tcase_add_test(tc, queries);
	tcase_add_test(tc, results_one_by_one);
	tcase_add_test(tc, refusals);
	tc = tu_tcase(s, "ended", 60);
	tcase_add_test(tc, exec_deadline);
	tcase_add_test(tc, exec_cancel);
	tcase_add_test(tc, get_result_deadline);
	tcase_add_test(tc, grace_runs_out);
	tcase_add_test(tc, cancel_stays_with_its_query);
	tcase_add_test(tc, cancel_sent_again);
	tcase_add_test(tc, hundred_cancelled);
	tc = tu_tcase(s, "connect", 60);
	tcase_add_test(tc, connect_deadline_by_name);
	tcase_add_test(tc, host_list);
	return s;
}

static tg_suite_fn *const suites[] = { suite_pq, NULL };

int main(int argc, char **argv)
{
	struct tg_server s;
	(void)argc;
	int st = tg_pq_start(&s);
	if (st)
		return st == 77 ? 77 : 99;
	snprintf(conninfo, sizeof conninfo, "%s", s.address);
	/* The socket directory, for the host list test. */
	const char *h = strstr(conninfo, "host=");
	h = h ? h + 5 : "";
	snprintf(sockdir, sizeof sockdir, "%.*s", (int)strcspn(h, " "), h);
	int rc = tg_run_backends(tg_run_suites, suites, argv);
	tg_pq_stop(&s);
	return rc;
}
