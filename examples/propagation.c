/*
 * propagation: a request's context goes down the call chain as the first
 * argument, handler -> service -> database, as in Go:
 *
 *	func handler(ctx context.Context) { service(ctx) }
 *	func service(ctx context.Context) { dbCall(ctx) }
 *
 * The request ID rides in the context as a value and every level logs
 * it; the deadline set once at the top ends the database call at the
 * bottom, which is a real blocking read on a socket.  The "database" is a
 * thread at the other end of a socket pair that takes QUERY_MS to answer.
 *
 *	usage: propagation                      two requests: one in time,
 *	                                        one past its deadline
 *	       propagation TIMEOUT_MS QUERY_MS  one request
 */
#include <ctx.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Context keys are compared by address: a private object per key, as Go
 * programs use an unexported key type, so no other package collides. */
static const char request_id_key;

static int64_t query_time; /* how slow the database is */

__attribute__((format(printf, 2, 3)))
static void say(ctx_t *ctx, const char *fmt, ...)
{
	const char *id = ctx_value(ctx, &request_id_key);
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("[%s] %s\n", id ? id : "-", msg);
}

/* Milliseconds left before the context's deadline, -1 if none. */
static long long left_ms(ctx_t *ctx)
{
	int64_t d;

	if (!ctx_deadline(ctx, &d))
		return -1;
	return (long long)((d - ctx_now()) / CTX_MSEC);
}

/* ---- the database server: answers each query after query_time ----- */

/* Answer one query, unless the client hangs up first (it gave up). */
static void *database(ctx_t *ctx, void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	char q[128];

	if (ctx_read(ctx, fd, q, sizeof(q)) <= 0)
		return NULL;
	int n = ctx_poll(ctx, &p, 1, query_time);
	if (n > 0)
		printf("(database: client went away, query abandoned)\n");
	else if (n == 0 && ctx_send(ctx, fd, "alice", 5, MSG_NOSIGNAL) < 0)
		perror("database: send");
	return NULL;
}

/* ---- the call chain --------------------------------------------------- */

/* Send the query, then wait for the row: the wait is the call the
 * request's deadline ends.  Returns 0 or an error number. */
static int db_query(ctx_t *ctx, const char *sql, char *row, size_t len)
{
	ctx_thread_t *t;
	int sv[2], e = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return errno;
	/* The server lives on its own, not on the request's context. */
	e = ctx_thread_create(&t, ctx_background(), database,
			      (void *)(intptr_t)sv[1]);
	if (e) {
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	say(ctx, "db: %s (deadline in %lld ms)", sql, left_ms(ctx));
	int64_t t0 = ctx_now();
	ssize_t n = ctx_send(ctx, sv[0], sql, strlen(sql), MSG_NOSIGNAL);
	if (n >= 0)
		n = ctx_read(ctx, sv[0], row, len - 1);
	if (n < 0)
		e = errno;
	else if (n == 0)
		e = ECONNRESET;
	else
		row[n] = '\0';
	say(ctx, "db: %s after %lld ms", e ? ctx_strerror(e) : "row received",
	    (long long)((ctx_now() - t0) / CTX_MSEC));
	/* Hang up: the server sees it and drops the query. */
	close(sv[0]);
	int je = ctx_thread_join(ctx_background(), t, NULL);
	close(sv[1]);
	return e ? e : je;
}

static int service(ctx_t *ctx, int user, char *name, size_t len)
{
	char sql[64];

	say(ctx, "service: loading user %d", user);
	snprintf(sql, sizeof(sql), "SELECT name FROM users WHERE id = %d",
		 user);
	int e = db_query(ctx, sql, name, len);
	if (e)
		say(ctx, "service: user %d: %s", user, ctx_strerror(e));
	return e;
}

/* The top: the request's context gets its ID and its deadline here. */
static int handler(const char *id, int64_t timeout)
{
	CTX_AUTO ctx_t *tctx = ctx_with_timeout(ctx_background(), timeout);
	CTX_AUTO ctx_t *ctx = tctx ? ctx_with_value(tctx, &request_id_key,
						    (void *)id) : NULL;
	char name[64], chain[160];

	if (!ctx)
		return errno;
	ctx_format(ctx, chain, sizeof(chain));
	say(ctx, "handler: start, context %s", chain);
	int e = service(ctx, 42, name, sizeof(name));
	if (e)
		say(ctx, "handler: 504 Gateway Timeout: %s", ctx_strerror(e));
	else
		say(ctx, "handler: 200 OK: hello, %s", name);
	return e;
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "propagation: bad duration '%s' (ms)\n", s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3) {
		query_time = parse_ms(argv[2]);
		return handler("req-1", parse_ms(argv[1])) != 0;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: propagation [TIMEOUT_MS QUERY_MS]\n");
		return 2;
	}
	query_time = 50 * CTX_MSEC;
	handler("req-1", 300 * CTX_MSEC);
	query_time = 1000 * CTX_MSEC;
	int e = handler("req-2", 300 * CTX_MSEC);
	/* The second one must have been ended by its deadline. */
	return e != CTX_DEADLINE_EXCEEDED;
}
