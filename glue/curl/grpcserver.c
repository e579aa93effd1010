/*
 * A throwaway gRPC server for libctx-curl's interoperation test (see
 * glue/testing.h): grpc_server.go, built by the go command into a
 * temporary directory and run there on 127.0.0.1, as an unprivileged
 * user when run as root.
 *
 * The build is offline: Debian packages Go libraries as source under
 * /usr/share/gocode, not as modules, so it runs in GOPATH mode
 * (GO111MODULE=off) with that tree as GOPATH, GOFLAGS emptied (a
 * -mod=... from the environment has no meaning there) and GOPROXY=off,
 * so that a missing package is an error, not a download.  Go's build
 * cache stays where Go keeps it, so only a machine's first run compiles
 * the grpc package (some 10 to 30 s on two CPUs); without a home to keep
 * it in, it goes in the temporary directory.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <ctx.h>

#include "testing.h"

/* A GOPATH that holds google.golang.org/grpc: the environment's first
 * entry, else Debian's. */
static bool find_gopath(char *out, size_t len)
{
	const char *env = getenv("GOPATH");
	char first[1024] = "", probe[1200];
	if (env)
		snprintf(first, sizeof first, "%.*s", (int)strcspn(env, ":"),
			 env);
	const char *const dirs[] = { first, "/usr/share/gocode" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(probe, sizeof probe,
			 "%s/src/google.golang.org/grpc/server.go", dirs[i]);
		if (*dirs[i] && access(probe, R_OK) == 0) {
			snprintf(out, len, "%s", dirs[i]);
			return true;
		}
	}
	return false;
}

static void go_environment(const char *gopath, const char *dir)
{
	char cache[512];
	setenv("GOPATH", gopath, 1);
	setenv("GO111MODULE", "off", 1);
	setenv("GOFLAGS", "", 1);
	setenv("GOPROXY", "off", 1);
	if (!getenv("GOCACHE") && !getenv("HOME") &&
	    !getenv("XDG_CACHE_HOME")) {
		snprintf(cache, sizeof cache, "%s/gocache", dir);
		setenv("GOCACHE", cache, 1);
	}
}

/* The exit status of pid, given timeout ns (then it is killed): -1 if
 * it did not exit normally in time. */
static int exit_status(pid_t pid, int64_t timeout)
{
	int status;
	int64_t end = ctx_now() + timeout;
	while (ctx_now() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

/* go build -o out src, given five minutes; 0 or -1 (said on stderr).
 * A plain fork and exec, not ctx_proc_spawn: no thread of the library's
 * may run in this process before Check forks the tests, since
 * ThreadSanitizer refuses threads started after a fork of a process
 * with threads. */
static int go_build(const char *go, const char *src, const char *out)
{
	char *argv[] = { (char *)go, "build", "-o", (char *)out, (char *)src,
			 NULL };
	int64_t t0 = ctx_now();
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execv(go, argv);
		_exit(127);
	}
	int status = pid < 0 ? -1 : exit_status(pid, 300 * CTX_SEC);
	if (status) {
		fprintf(stderr, "grpc: go build %s failed (status %d)\n", src,
			status);
		return -1;
	}
	printf("grpc: built the Go server in %.1f s\n",
	       (double)(ctx_now() - t0) / CTX_SEC);
	return 0;
}

/* The port the server printed first in its log. */
static int await_port(struct tg_server *s)
{
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(s->log, "re");
		int port = 0;
		if (f && fscanf(f, "listening on %d", &port) == 1 && port > 0) {
			fclose(f);
			snprintf(s->address, sizeof s->address,
				 "127.0.0.1:%d", port);
			return 0;
		}
		if (f)
			fclose(f);
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	fprintf(stderr, "grpc: the server did not start:\n");
	tg_show_log(s->log);
	return -1;
}

/* What the test needs here, or 77 with the reason. */
static int can_run(char *go, size_t golen, char *gopath, size_t pathlen)
{
	const char *const dirs[] = { "/usr/lib/go/bin", "/usr/lib/go-*/bin",
				     NULL };
	if (!tg_find_program("go", dirs, go, golen)) {
		printf("grpc: skipped: no go command (golang-go)\n");
		return 77;
	}
	if (!find_gopath(gopath, pathlen)) {
		printf("grpc: skipped: no google.golang.org/grpc in $GOPATH "
		       "or /usr/share/gocode (golang-google-grpc-dev)\n");
		return 77;
	}
	if (!(curl_version_info(CURLVERSION_NOW)->features &
	      CURL_VERSION_HTTP2)) {
		printf("grpc: skipped: libcurl has no HTTP/2\n");
		return 77;
	}
	return 0;
}

int tg_grpc_start(struct tg_server *s, const char *source)
{
	char go[1024], gopath[1024], bin[300];
	const char *given = getenv("CTX_TEST_GRPC");
	*s = (struct tg_server){ .owned = !given };
	if (given) {
		snprintf(s->address, sizeof s->address, "%s", given);
		return 0;
	}
	int st = can_run(go, sizeof go, gopath, sizeof gopath);
	if (st || tg_dir_make(s->dir, sizeof s->dir))
		return st ? st : -1;
	go_environment(gopath, s->dir);
	snprintf(s->log, sizeof s->log, "%s/log", s->dir);
	snprintf(bin, sizeof bin, "%s/grpc_server", s->dir);
	char *argv[] = { bin, NULL };
	if (go_build(go, source, bin) ||
	    (s->pid = tg_spawn(s->dir, s->log, argv)) < 0 || await_port(s)) {
		tg_grpc_stop(s);
		return -1;
	}
	setenv("CTX_TEST_GRPC", s->address, 1);
	return 0;
}

void tg_grpc_stop(struct tg_server *s)
{
	if (!s->owned)
		return;
	tg_stop(s->pid, SIGTERM);
	s->pid = 0;
	tg_dir_remove(s->dir);
	s->owned = false;
}
