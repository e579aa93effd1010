/*
 * Issue 31: the library's own threads must start whatever the program's
 * static thread-local storage.  glibc carves a thread's static TLS out
 * of its stack, so this program's 64 KiB __thread array is on every
 * thread's stack; with the fixed 64 KiB stack the library once gave its
 * threads, none of them could start (ctx_with_idle NULL/EINVAL,
 * ctx_done_fd -1/EINVAL).  It makes each kind of library thread work:
 * the timer thread (a deadline context's done fd, an idle context), the
 * after-func runner, the signal dispatcher, the hang-up watcher and a
 * resolver helper.  Exit 0 when all work, 1 naming those that did not.
 */
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctx.h>

#define BIG (64 * 1024)
#define LATE (5 * CTX_SEC) /* far beyond any of these waits, under load */

static __thread volatile char big[BIG];

static int failures;

static void check(bool ok, const char *what, int e)
{
	printf("%s: %s", ok ? "ok" : "FAIL", what);
	if (!ok)
		printf(" (%s)", strerror(e));
	printf("\n");
	failures += !ok;
}

/* The timer thread ends a deadline context that no thread waits on, and
 * its done fd says so. */
static void timer_thread(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 20 * CTX_MSEC);
	int fd = c ? ctx_done_fd(c) : -1;
	int e = errno;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	bool ok = fd >= 0 && poll(&p, 1, (int)(LATE / CTX_MSEC)) == 1 &&
		  ctx_err(c) == CTX_DEADLINE_EXCEEDED;
	check(ok, "timer thread (ctx_done_fd of a deadline context)", e);
	ctx_release(c);
}

static void idle_context(void)
{
	ctx_t *c = ctx_with_idle(ctx_background(), 20 * CTX_MSEC);
	int e = errno;
	bool ok = c && ctx_sleep(c, LATE) == CTX_DEADLINE_EXCEEDED;
	check(ok, "timer thread (ctx_with_idle)", e);
	ctx_release(c);
}

static void ran(void *arg)
{
	atomic_store((atomic_bool *)arg, true);
}

static void after_func_runner(void)
{
	atomic_bool done = false;
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func(c, ran, &done);
	int e = errno;
	ctx_cancel(c);
	for (int64_t t0 = ctx_now(); a && !atomic_load(&done) &&
	     ctx_now() - t0 < LATE;)
		ctx_sleep(ctx_background(), CTX_MSEC);
	check(a && atomic_load(&done), "after-func runner", e);
	ctx_after_stop(a);
	ctx_release(c);
}

static void signal_dispatcher(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	ctx_t *c = ctx_with_signals(ctx_background(), &s);
	int e = errno;
	bool ok = c && kill(getpid(), SIGUSR1) == 0 &&
		  ctx_sleep(c, LATE) == CTX_CANCELED;
	check(ok, "signal dispatcher (ctx_with_signals)", e);
	ctx_release(c);
}

static void hangup_watcher(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		check(false, "hang-up watcher: socketpair", errno);
		return;
	}
	ctx_t *c = ctx_with_hangup(ctx_background(), sv[0]);
	int e = errno;
	close(sv[1]);
	bool ok = c && ctx_sleep(c, LATE) == CTX_CANCELED;
	check(ok, "hang-up watcher (ctx_with_hangup)", e);
	ctx_release(c);
	close(sv[0]);
}

/* On a helper thread: the getaddrinfo(3) mechanism, not c-ares, which
 * runs on the caller's. */
static void resolver_helper(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo("localhost", "80", &hints, &res) != 0) {
		printf("skipped: resolver helper (this machine's "
		       "getaddrinfo(3) does not know localhost)\n");
		return;
	}
	freeaddrinfo(res);
	setenv("CTX_RESOLVER", "getaddrinfo", 1);
	ctx_t *c = ctx_with_timeout(ctx_background(), LATE);
	int rc = ctx_getaddrinfo(c, "localhost", "80", &hints, &res);
	int e = rc == EAI_SYSTEM ? errno : EINVAL;
	if (rc != 0)
		printf("ctx_getaddrinfo: %s\n", gai_strerror(rc));
	check(rc == 0 && res, "resolver helper (ctx_getaddrinfo)", e);
	if (rc == 0)
		ctx_freeaddrinfo(res);
	ctx_release(c);
}

int main(void)
{
	/* The array is really there, on this thread as on every other. */
	for (size_t i = 0; i < BIG; i += 4096)
		big[i] = (char)i;
	setvbuf(stdout, NULL, _IOLBF, 0);
	timer_thread();
	idle_context();
	after_func_runner();
	signal_dispatcher();
	hangup_watcher();
	resolver_helper();
	return failures ? 1 : 0;
}
