/*
 * What the glue libraries' test runners and benchmarks share (not
 * installed): throwaway servers run from a temporary directory, as an
 * unprivileged user when the tests run as root, and a runner that runs
 * its suites on both backends.  glue/pq/testserver.c,
 * glue/redis/testserver.c and glue/curl/grpcserver.c start PostgreSQL,
 * Redis and a gRPC server with these.
 */
#ifndef CTX_GLUE_TESTING_H
#define CTX_GLUE_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The first of PATH's directories, then of the glob patterns in dirs
 * (NULL-terminated; the last match of a pattern wins, so the newest
 * /usr/lib/postgresql/N/bin), that holds an executable name: its path in
 * out, or false. */
bool tg_find_program(const char *name, const char *const *dirs, char *out,
		     size_t len);

/* A new empty directory under $TMPDIR (else /tmp), owned by the user
 * that the servers run as; its path in dir.  0 or -1 with a message on
 * stderr.  A child process removes it once this process is gone, if
 * tg_dir_remove has not. */
int tg_dir_make(char *dir, size_t len);

/* Remove dir and everything in it. */
void tg_dir_remove(const char *dir);

/* Start argv[0] (a full path) in dir as the servers' user, standard
 * output and error appended to log, as a child that dies with the
 * calling thread.  Its pid, or -1 with a message on stderr. */
pid_t tg_spawn(const char *dir, const char *log, char *const argv[]);

/* tg_spawn, then wait: the program's exit status (-1 if it did not
 * exit normally or could not start). */
int tg_run(const char *dir, const char *log, char *const argv[]);

/* Send sig to pid, wait up to 10 s for it to exit, then SIGKILL it. */
void tg_stop(pid_t pid, int sig);

/* Print the last lines of a server's log to stderr (after a failure). */
void tg_show_log(const char *log);

/*
 * The runner's main after its server is up: run(arg) runs every suite
 * and returns the number of failures (runner.h: tg_run_suites, with a
 * list of suites as arg).  When the environment chose no
 * backend (CTX_BACKEND unset), the suites run here, then again in a
 * child process of this program with CTX_BACKEND=io_uring, as
 * tests/uring.sh reruns the core suite (skipped where the ring is not
 * available or CTX_SKIP_URING is set).  The exit status: 0, 1 (a
 * failure on either backend) or 77 (io_uring asked for and refused).
 */
int tg_run_backends(int (*run)(const void *arg), const void *arg,
		    char **argv);

/* A throwaway server: its directory, log and process, and where to
 * reach it (a conninfo string, a socket path).  owned is false when the
 * environment named a server already running (see each start function),
 * which stop then leaves alone. */
struct tg_server {
	char dir[256];
	char log[300];
	char address[400];
	pid_t pid;
	bool owned;
};

/* PostgreSQL (glue/pq/testserver.c): initdb in a temporary directory,
 * then postgres on a UNIX socket there (listen_addresses=''), trust
 * authentication, superuser postgres.  address is a conninfo string; it
 * is put in CTX_TEST_PQ for child processes, and a CTX_TEST_PQ already
 * set names the server to use instead.  0, 77 when the server programs
 * are not installed, -1 on failure (said on stderr). */
int tg_pq_start(struct tg_server *s);
void tg_pq_stop(struct tg_server *s);

/* Redis (glue/redis/testserver.c): redis-server on a UNIX socket in a
 * temporary directory (port 0: no TCP), no persistence.  address is the
 * socket's path, passed on in CTX_TEST_REDIS as above. */
int tg_redis_start(struct tg_server *s);
void tg_redis_stop(struct tg_server *s);

/* gRPC (glue/curl/grpcserver.c): the Go program source built offline
 * from Debian's golang-google-grpc-dev (GOPATH mode) into a temporary
 * directory and run there on 127.0.0.1.  address is HOST:PORT, passed
 * on in CTX_TEST_GRPC as above.  77 without go, the grpc package or
 * HTTP/2 in libcurl. */
int tg_grpc_start(struct tg_server *s, const char *source);
void tg_grpc_stop(struct tg_server *s);

#endif
