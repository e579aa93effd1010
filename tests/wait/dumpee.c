/*
 * A program for tests/wait/dump.c's environment cases, whose variables
 * are read before main (CTX_DEBUG, CTX_DUMP_SIGNAL, CTX_DUMP_FILE):
 *
 *   dumpee tree    contexts in a tree, one of them ended, and a report
 *                  on stdout, after the lines of the four constructors
 *   dumpee stuck   a thread in a plain read(2) under a context that
 *                  ends; it is let go 3 stuck delays later
 *   dumpee release a thread in a plain read(2) under a context that is
 *                  released; the thread is let go and the program exits
 *                  at once, before any stuck delay has passed
 *   dumpee signal  a thread waits in ctx_read; the program sends itself
 *                  SIGUSR1, waits for the report in CTX_DUMP_FILE, lets
 *                  the thread go and says "went on"
 *   dumpee cancels GO N MS
 *                  once the file GO exists (tests/wait/bpftrace.sh makes
 *                  it when its tracer is ready), N times: a thread waits
 *                  in ctx_read, MS milliseconds, and its context is
 *                  cancelled
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ctx.h>

static int key;

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int tree(void)
{
	ctx_t *a, *b, *v, *d;
	int line[4];
	/* a, b under a, v under b, and d under a, ended (a context still
	 * referenced lives on, ended, and is listed).  Their lines first,
	 * for the test. */
	a = ctx_with_cancel(ctx_background()), line[0] = __LINE__;
	b = ctx_with_timeout(a, 60 * CTX_SEC), line[1] = __LINE__;
	v = ctx_with_value(b, &key, NULL), line[2] = __LINE__;
	d = ctx_with_cancel(a), line[3] = __LINE__;
	ctx_cancel(d);
	printf("lines %d %d %d %d\n", line[0], line[1], line[2], line[3]);
	fflush(stdout);
	int e = ctx_dump(1);
	ctx_release(d);
	ctx_release(v);
	ctx_release(b);
	ctx_release(a);
	return e;
}

static void *read_plain(ctx_t *ctx, void *arg)
{
	char b;
	(void)ctx;
	return (void *)(intptr_t)read(*(int *)arg, &b, 1);
}

static void *read_ctx(ctx_t *ctx, void *arg)
{
	char b;
	return (void *)(intptr_t)ctx_read(ctx, *(int *)arg, &b, 1);
}

/* Whether the report says s (asked again for up to 10 s). */
static int report_says(const char *s)
{
	for (int i = 0; i < 1000; i++) {
		char buf[8192] = "";
		int fd = memfd_create("dumpee", MFD_CLOEXEC);
		if (fd < 0 || ctx_dump(fd) != 0)
			return 0;
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		if (n > 0 && strstr(buf, s))
			return 1;
		pause_ms(10);
	}
	return 0;
}

static int with_thread(ctx_t *c, void *(*fn)(ctx_t *, void *), int p[2],
		       const char *ready, int (*meanwhile)(void))
{
	ctx_thread_t *t;
	if (pipe2(p, O_CLOEXEC) < 0 || ctx_thread_create(&t, c, fn, p))
		return 1;
	int e = !report_says(ready) || meanwhile();
	if (write(p[1], "x", 1) != 1)
		e = 1;
	return ctx_thread_join(ctx_background(), t, NULL) || e;
}

static ctx_t *stuck_ctx;

static int release_now(void)
{
	ctx_release(stuck_ctx);
	stuck_ctx = NULL;
	return 0;
}

static int cancel_then_wait(void)
{
	const char *d = getenv("CTX_DEBUG"), *eq = d ? strstr(d, "stuck=") : 0;
	ctx_cancel(stuck_ctx);
	pause_ms(3 * (eq ? atol(eq + 6) : 1000));
	return 0;
}

/* The dump file has something in it (up to 10 s). */
static int signal_and_wait(void)
{
	const char *path = getenv("CTX_DUMP_FILE");
	struct stat st;
	if (!path || kill(getpid(), SIGUSR1) < 0)
		return 1;
	for (int i = 0; i < 1000; i++) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return 0;
		pause_ms(10);
	}
	return 1;
}

/* N waits in ctx_read, each ended by a cancel after ms, once GO
 * exists. */
static int cancels(const char *go, int n, int ms)
{
	struct stat st;
	int p[2], i = 0;
	while (stat(go, &st) < 0 && i++ < 3000)
		pause_ms(10);
	if (i > 3000 || pipe2(p, O_CLOEXEC) < 0)
		return 1;
	for (i = 0; i < n; i++) {
		ctx_thread_t *t;
		ctx_t *c = ctx_with_cancel(ctx_background());
		if (ctx_thread_create(&t, c, read_ctx, p) ||
		    !report_says("in ctx_read"))
			return 1;
		pause_ms(ms);
		ctx_cancel(c);
		if (ctx_thread_join(ctx_background(), t, NULL))
			return 1;
		ctx_release(c);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int p[2], e = 2;
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "tree") == 0)
		return tree();
	if (strcmp(mode, "cancels") == 0 && argc == 5)
		return cancels(argv[2], atoi(argv[3]), atoi(argv[4]));
	stuck_ctx = ctx_with_cancel(ctx_background());
	if (strcmp(mode, "stuck") == 0)
		e = with_thread(stuck_ctx, read_plain, p,
				"outside libctx: read(2)", cancel_then_wait);
	else if (strcmp(mode, "release") == 0)
		e = with_thread(stuck_ctx, read_plain, p,
				"outside libctx: read(2)", release_now);
	else if (strcmp(mode, "signal") == 0)
		e = with_thread(stuck_ctx, read_ctx, p, "in ctx_read",
				signal_and_wait);
	if (!e && strcmp(mode, "signal") == 0)
		printf("went on\n");
	if (stuck_ctx)
		ctx_release(stuck_ctx);
	return e;
}
