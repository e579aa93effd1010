/*
 * A throwaway Redis for libctx-redis's tests and benchmark (see
 * glue/testing.h): redis-server on a UNIX socket in a temporary
 * directory, port 0 (no TCP), no snapshots and no append-only file, as
 * an unprivileged user when run as root.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "testing.h"

/* Whether the server answers PING on its socket. */
static bool answers(const char *path)
{
	redisContext *c = redisConnectUnix(path);
	bool ok = false;
	if (c && !c->err) {
		redisReply *r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return ok;
}

static int await_ready(struct tg_server *s)
{
	for (int i = 0; i < 6000; i++) {
		if (answers(s->address))
			return 0;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	fprintf(stderr, "testing: redis-server did not start:\n");
	tg_show_log(s->log);
	return -1;
}

int tg_redis_start(struct tg_server *s)
{
	char server[4096];
	const char *given = getenv("CTX_TEST_REDIS");
	*s = (struct tg_server){ .owned = !given };
	if (given) {
		snprintf(s->address, sizeof s->address, "%s", given);
		return 0;
	}
	if (!tg_find_program("redis-server", NULL, server, sizeof server)) {
		fprintf(stderr, "redis: skipped: no redis-server in PATH\n");
		return 77;
	}
	if (tg_dir_make(s->dir, sizeof s->dir))
		return -1;
	snprintf(s->log, sizeof s->log, "%s/log", s->dir);
	snprintf(s->address, sizeof s->address, "%s/redis.sock", s->dir);
	char *argv[] = { server, "--port", "0", "--unixsocket", s->address,
			 "--unixsocketperm", "777", "--save", "",
			 "--appendonly", "no", "--dir", s->dir, NULL };
	if ((s->pid = tg_spawn(s->dir, s->log, argv)) < 0 || await_ready(s)) {
		tg_redis_stop(s);
		return -1;
	}
	setenv("CTX_TEST_REDIS", s->address, 1);
	return 0;
}

void tg_redis_stop(struct tg_server *s)
{
	if (!s->owned)
		return;
	tg_stop(s->pid, SIGTERM);
	s->pid = 0;
	tg_dir_remove(s->dir);
	s->owned = false;
}
