/*
 * The child that tests/proc/passctx.c starts with pass_ctx: it takes its
 * context with ctx_inherited and says what it got, one line at a time on
 * stdout (each line one write, so lines of several processes sharing the
 * pipe do not mix).
 *
 *	passctx_child env       what ctx_inherited made of the environment,
 *	                        then exit
 *	passctx_child report    "budget NS", then wait for the context's
 *	                        end: "ended ERR CAUSE NOW" (NOW: ctx_now())
 *	passctx_child relay N   "relay PID", then run "relay N-1" (or
 *	                        "report" at 1) with pass_ctx under the
 *	                        inherited context, and wait for it
 *
 * SIGTERM is ignored: a parent's cancel_signal must not be what stops
 * the tree, the contexts must (a test that wants a death sends SIGKILL).
 * No wait here lasts more than 30 s, so a broken test cannot hang.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx.h"

#define LIMIT (30 * CTX_SEC)

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, line, (size_t)n) < 0)
		exit(4);
}

/* The time left, or -1 without a deadline. */
static long long budget(ctx_t *c)
{
	int64_t d;
	return ctx_deadline(c, &d) ? (long long)(d - ctx_now()) : -1;
}

static int env(void)
{
	const char *v = getenv("CTX_DONE_FD");
	int fd = v ? atoi(v) : -1;
	ctx_t *c = ctx_inherited();
	if (!c) {
		say("error %d\n", errno);
		return 1;
	}
	int flags = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
	say("kind %s same %d err %d budget %lld\n",
	    c == ctx_background() ? "background" : "inherited",
	    ctx_inherited() == c, ctx_err(c), budget(c));
	say("vars %s %s cloexec %d\n", getenv("CTX_TIMEOUT_NS") ? "set" : "-",
	    getenv("CTX_DONE_FD") ? "set" : "-",
	    flags < 0 ? -1 : (flags & FD_CLOEXEC) != 0);
	return 0;
}

/* Wait for c's end, for LIMIT at most. */
static void wait_end(ctx_t *c)
{
	ctx_t *t = ctx_with_timeout(c, LIMIT);
	if (t)
		ctx_wait(t);
	ctx_release(t);
}

static int report(void)
{
	ctx_t *c = ctx_inherited();
	if (!c)
		return 1;
	say("budget %lld\n", budget(c));
	wait_end(c);
	say("ended %d %d %" PRId64 "\n", ctx_err(c), ctx_cause(c), ctx_now());
	return ctx_err(c) ? 0 : 3;
}

static int relay(const char *self, int n)
{
	ctx_t *c = ctx_inherited();
	if (!c)
		return 1;
	char level[16];
	snprintf(level, sizeof level, "%d", n - 1);
	char *argv[] = { (char *)self, n > 1 ? "relay" : "report",
			 n > 1 ? level : NULL, NULL };
	struct ctx_proc_attr a = { .pass_ctx = true,
				   .cancel_signal = SIGTERM,
				   .wait_delay = LIMIT };
	ctx_proc_t *p;
	int e = ctx_proc_spawn(&p, c, self, argv, &a);
	if (e) {
		say("error %d\n", e);
		return 1;
	}
	say("relay %d\n", (int)getpid());
	int status = 0;
	ctx_proc_wait(p, &status);
	ctx_proc_free(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
}

int main(int argc, char **argv)
{
	signal(SIGTERM, SIG_IGN);
	if (argc == 2 && !strcmp(argv[1], "env"))
		return env();
	if (argc == 2 && !strcmp(argv[1], "report"))
		return report();
	if (argc == 3 && !strcmp(argv[1], "relay") && atoi(argv[2]) > 0)
		return relay(argv[0], atoi(argv[2]));
	fprintf(stderr, "usage: passctx_child env | report | relay N\n");
	return 2;
}
