/*
 * libctx-redis against a throwaway redis-server on a UNIX socket
 * (testserver.c), on both backends (check_redis; see glue/testing.h):
 * commands and pipelines, a BLPOP ended by a deadline and by a cancel,
 * after which the server must have dropped the blocked client and must
 * not have handed it what was pushed later; a silent TCP peer reached
 * through ctx_dial; refusals; 100 cancelled BLPOPs leave descriptors and
 * threads as they were and took nothing from the list.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/redis.h"
#include "runner.h"
#include "testutil.h"

static char addr[400]; /* the server's socket */

static redisContext *must_connect(ctx_t *ctx)
{
	redisContext *c = ctx_redis_connect(ctx, addr);
	ck_assert_msg(c != NULL, "connect %s: %s", addr, strerror(errno));
	ck_assert_int_eq(c->err, 0);
	return c;
}

/* A plain hiredis connection, to look at the server from outside. */
static redisContext *monitor(void)
{
	redisContext *m = redisConnectUnix(addr);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->err, 0);
	return m;
}

static long long integer(redisContext *m, const char *cmd, const char *key)
{
	redisReply *r = redisCommand(m, cmd, key);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	long long v = r->integer;
	freeReplyObject(r);
	return v;
}

/* The server's count of clients blocked in a command. */
static long blocked_clients(redisContext *m)
{
	redisReply *r = redisCommand(m, "INFO clients");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	const char *f = strstr(r->str, "blocked_clients:");
	ck_assert_ptr_nonnull(f);
	long n = atol(f + strlen("blocked_clients:"));
	freeReplyObject(r);
	return n;
}

/* The server dropped every blocked client (within 5 s), and the list
 * still holds what is pushed now: nobody blocked on it took it. */
static void assert_nothing_taken(redisContext *m, const char *key)
{
	int64_t end = ctx_now() + 5 * CTX_SEC;
	while (blocked_clients(m) != 0 && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	ck_assert_int_eq(blocked_clients(m), 0);
	ck_assert_int_eq(integer(m, "RPUSH %s after", key), 1);
	ck_assert_int_eq(integer(m, "LLEN %s", key), 1);
	ck_assert_int_eq(integer(m, "DEL %s", key), 1);
}

static void key_for(char *key, size_t len, const char *what)
{
	snprintf(key, len, "%s:%s:%d", what, ctx_backend(), (int)getpid());
}

START_TEST(commands_and_pipeline)
{
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	redisContext *c = must_connect(ctx);
	char key[64];
	key_for(key, sizeof key, "kv");
	redisReply *r = ctx_redis_command(ctx, c, "SET %s %s", key, "v1");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "OK");
	freeReplyObject(r);
	r = ctx_redis_command(ctx, c, "GET %s", key);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "v1");
	freeReplyObject(r);
	/* Queued commands go first, and their replies come first. */
	redisAppendCommand(c, "INCR %s:n", key);
	redisAppendCommand(c, "INCR %s:n", key);
	r = ctx_redis_command(ctx, c, "DEL %s:n", key);
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	void *v;
	ck_assert_int_eq(ctx_redis_get_reply(ctx, c, &v), REDIS_OK);
	ck_assert_int_eq(((redisReply *)v)->integer, 2);
	freeReplyObject(v);
	ck_assert_int_eq(ctx_redis_get_reply(ctx, c, &v), REDIS_OK);
	ck_assert_int_eq(((redisReply *)v)->integer, 1); /* DEL's */
	freeReplyObject(v);
	/* Plain hiredis still works on it: the socket stayed blocking. */
	r = redisCommand(c, "DEL %s", key);
	ck_assert_int_eq(r->integer, 1);
	freeReplyObject(r);
	redisFree(c);
	ctx_release(ctx);
}
END_TEST

/* A BLPOP that a context ends (after timeout_ns, by a deadline or a
 * cancel): NULL, errno, the connection closed and bad, nothing taken. */
static void blpop_ended(int64_t timeout_ns, bool cancel)
{
	redisContext *c = must_connect(ctx_background());
	redisContext *m = monitor();
	struct tu_canceller k;
	char key[64];
	key_for(key, sizeof key, "blpop");
	int64_t t0 = ctx_now(), lo = timeout_ns / CTX_MSEC - 5;
	ctx_t *ctx = cancel ? ctx_with_cancel(ctx_background())
			    : ctx_with_timeout(ctx_background(), timeout_ns);
	if (cancel)
		tu_must_cancel_after(&k, ctx, timeout_ns);
	redisReply *r = ctx_redis_command(ctx, c, "BLPOP %s 0", key);
	int e = errno;
	ck_assert_ptr_null(r);
	ck_assert_int_eq(e, cancel ? CTX_CANCELED : CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), lo, lo + 3000);
	if (cancel)
		tu_canceller_join(&k);
	ck_assert_int_eq(c->err, REDIS_ERR_IO);
	ck_assert_int_eq(c->fd, -1);
	ck_assert_ptr_null(ctx_redis_command(ctx_background(), c, "PING"));
	ck_assert_int_eq(errno, ENOTCONN);
	assert_nothing_taken(m, key);
	ctx_release(ctx);
	redisFree(c);
	redisFree(m);
}

START_TEST(blpop_deadline)
{
	blpop_ended(100 * CTX_MSEC, false);
}
END_TEST

START_TEST(blpop_cancel)
{
	blpop_ended(50 * CTX_MSEC, true);
}
END_TEST

/* A TCP peer that takes the connection (the kernel does) and never
 * answers: the command ends at the deadline. */
START_TEST(silent_tcp_peer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	char where[64];
	snprintf(where, sizeof where, "localhost:%d", ntohs(sa.sin_port));
	int64_t t0 = ctx_now();
	ctx_t *ctx = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	redisContext *c = ctx_redis_connect(ctx, where);
	ck_assert_msg(c != NULL, "connect %s: %s", where, strerror(errno));
	ck_assert_ptr_null(ctx_redis_command(ctx, c, "PING"));
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 95, 3000);
	ck_assert_int_eq(c->err, REDIS_ERR_IO);
	redisFree(c);
	ctx_release(ctx);
	close(l);
}
END_TEST

START_TEST(refusals)
{
	redisContext *c = must_connect(ctx_background());
	ctx_t *done = ctx_with_cancel(ctx_background());
	ctx_cancel(done);
	/* A done context sends nothing and leaves the connection as is. */
	ck_assert_ptr_null(ctx_redis_command(done, c, "PING"));
	ck_assert_int_eq(errno, CTX_CANCELED);
	ck_assert_int_eq(c->err, 0);
	redisReply *r = ctx_redis_command(ctx_background(), c, "PING");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->str, "PONG");
	freeReplyObject(r);
	ck_assert_ptr_null(ctx_redis_connect(done, addr));
	ck_assert_int_eq(errno, CTX_CANCELED);
	ck_assert_ptr_null(ctx_redis_command(NULL, c, "PING"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_redis_command(ctx_background(), NULL, "PING"));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_redis_connect(ctx_background(), NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(ctx_redis_connect(ctx_background(),
					     "/nonexistent/redis.sock"));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(ctx_redis_get_reply(ctx_background(), c, NULL),
			 REDIS_ERR);
	ck_assert_int_eq(errno, EINVAL);
	redisFree(c);
	ctx_release(done);
}
END_TEST

START_TEST(server_closes)
{
	redisContext *c = must_connect(ctx_background());
	redisReply *r = ctx_redis_command(ctx_background(), c, "QUIT");
	ck_assert_ptr_nonnull(r);
	freeReplyObject(r);
	ck_assert_ptr_null(ctx_redis_command(ctx_background(), c, "PING"));
	ck_assert_msg(errno == ECONNRESET || errno == EPIPE,
		      "errno %d (%s)", errno, strerror(errno));
	ck_assert_int_ne(c->err, 0);
	redisFree(c);
}
END_TEST

START_TEST(hundred_cancelled)
{
	redisContext *m = monitor();
	char key[64];
	key_for(key, sizeof key, "hundred");
	int fds = -1, threads = -1;
	for (int i = 0; i <= 100; i++) {
		if (i == 1) { /* after one, to count what stays */
			fds = tu_count_fds();
			threads = tu_count_threads();
		}
		ctx_t *ctx = ctx_with_timeout(ctx_background(), 2 * CTX_MSEC);
		redisContext *c = must_connect(ctx_background());
		ck_assert_ptr_null(ctx_redis_command(ctx, c, "BLPOP %s 0",
						     key));
		ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
		redisFree(c);
		ctx_release(ctx);
	}
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	ck_assert_int_eq(tu_settle_threads(threads, CTX_SEC), threads);
	assert_nothing_taken(m, key);
	redisFree(m);
}
END_TEST

static Suite *suite_redis(void)
{
	Suite *s = suite_create("redis");
	TCase *tc = tu_tcase(s, "commands", 30);
	tcase_add_test(tc, commands_and_pipeline);
	tcase_add_test(tc, refusals);
	tcase_add_test(tc, server_closes);
	tc = tu_tcase(s, "ended", 60);
	tcase_add_test(tc, blpop_deadline);
	tcase_add_test(tc, blpop_cancel);
	tcase_add_test(tc, silent_tcp_peer);
	tcase_add_test(tc, hundred_cancelled);
	return s;
}

static tg_suite_fn *const suites[] = { suite_redis, NULL };

int main(int argc, char **argv)
{
	struct tg_server s;
	(void)argc;
	int st = tg_redis_start(&s);
	if (st)
		return st == 77 ? 77 : 99;
	snprintf(addr, sizeof addr, "%s", s.address);
	int rc = tg_run_backends(tg_run_suites, suites, argv);
	tg_redis_stop(&s);
	return rc;
}
