/*
 * example: wait for the next job on a Redis list for at most a while,
 * as a worker does: BLPOP under a context with a deadline.
 *
 *   glue/redis/example ADDRESS LIST [MILLISECONDS]    (default 1000)
 *
 * ADDRESS is "host:port" or a UNIX socket's path.  It prints the job, or
 * says that none came in time; the cancelled BLPOP's connection is
 * closed, so the server hands a job pushed later to someone else.
 */
#include <stdio.h>
#include <stdlib.h>

#include <ctx/redis.h>

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s ADDRESS LIST [MILLISECONDS]\n",
			argv[0]);
		return 2;
	}
	long ms = argc == 4 ? atol(argv[3]) : 1000;
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), ms * CTX_MSEC);
	redisContext *c = ctx_redis_connect(ctx, argv[1]);
	if (!c) {
		perror(argv[1]);
		return 1;
	}
	redisReply *r = ctx_redis_command(ctx, c, "BLPOP %s 0", argv[2]);
	int status = 0;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		printf("%s\n", r->element[1]->str);
	} else if (!r && ctx_err(ctx)) {
		printf("no job within %ld ms (%s)\n", ms, ctx_strerror(errno));
		status = 1;
	} else {
		fprintf(stderr, "example: %s\n", r ? r->str : c->errstr);
		status = 1;
	}
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return status;
}
