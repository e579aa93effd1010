/*
 * A throwaway PostgreSQL for libctx-pq's tests and benchmark (see
 * glue/testing.h): initdb, then postgres, from the newest
 * /usr/lib/postgresql/N/bin (or PATH), as an unprivileged user when run
 * as root.  Only a UNIX socket in the temporary directory, no TCP;
 * fsync off; trust authentication for the superuser postgres.
 */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <libpq-fe.h>

#include "testing.h"

static const char *const pg_dirs[] = {
	"/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", NULL
};

/* initdb's and postgres's paths, from one installation. */
static bool find_server(char *initdb, char *postgres, size_t len)
{
	if (!tg_find_program("initdb", pg_dirs, initdb, len))
		return false;
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", initdb);
	int n = snprintf(postgres, len, "%s/postgres", dirname(copy));
	return n > 0 && (size_t)n < len;
}

static int init_cluster(struct tg_server *s, char *initdb, char *data)
{
	char *argv[] = { initdb, "-D", data, "-U", "postgres", "-A", "trust",
			 "-E", "UTF8", "--locale=C", "-N", NULL };
	if (tg_run(s->dir, s->log, argv) == 0)
		return 0;
	fprintf(stderr, "testing: initdb failed:\n");
	tg_show_log(s->log);
	return -1;
}

/* Wait for the server to take connections (60 s on a loaded machine). */
static int await_ready(struct tg_server *s)
{
	for (int i = 0; i < 6000; i++) {
		if (PQping(s->address) == PQPING_OK)
			return 0;
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	fprintf(stderr, "testing: postgres did not start:\n");
	tg_show_log(s->log);
	return -1;
}

static int start_server(struct tg_server *s, char *postgres, char *data)
{
	char *argv[] = { postgres, "-D", data, "-k", s->dir, "-p", "5432",
			 "-F", "-c", "listen_addresses=", "-c",
			 "autovacuum=off", "-c", "shared_buffers=16MB", NULL };
	snprintf(s->address, sizeof s->address,
		 "host=%s port=5432 user=postgres dbname=postgres", s->dir);
	if ((s->pid = tg_spawn(s->dir, s->log, argv)) < 0)
		return -1;
	return await_ready(s);
}

int tg_pq_start(struct tg_server *s)
{
	char initdb[4096], postgres[4096], data[300];
	const char *given = getenv("CTX_TEST_PQ");
	*s = (struct tg_server){ .owned = !given };
	if (given) {
		snprintf(s->address, sizeof s->address, "%s", given);
		return 0;
	}
	if (!find_server(initdb, postgres, sizeof initdb)) {
		fprintf(stderr, "pq: skipped: no PostgreSQL server programs "
			"(initdb, postgres) in PATH or "
			"/usr/lib/postgresql/*/bin\n");
		return 77;
	}
	if (tg_dir_make(s->dir, sizeof s->dir))
		return -1;
	snprintf(s->log, sizeof s->log, "%s/log", s->dir);
	snprintf(data, sizeof data, "%s/data", s->dir);
	if (init_cluster(s, initdb, data) || start_server(s, postgres, data)) {
		tg_pq_stop(s);
		return -1;
	}
	setenv("CTX_TEST_PQ", s->address, 1);
	return 0;
}

void tg_pq_stop(struct tg_server *s)
{
	if (!s->owned)
		return;
	tg_stop(s->pid, SIGINT); /* fast shutdown: ends every session */
	s->pid = 0;
	tg_dir_remove(s->dir);
	s->owned = false;
}
