/*
 * workers: three workers loop doing work until their context is
 * cancelled; main cancels after two seconds and waits for all of them.
 *
 * Go's version (context.WithCancel, a `select` on ctx.Done() with a
 * default branch, time.Sleep) becomes: ctx_with_cancel, and a ctx_sleep
 * that is the work's pause *and* the watch on the context, so a worker
 * stops at once instead of finishing its nap.
 *
 *	usage: workers [RUN_MS]     (default 2000)
 */
#include <ctx.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWORKERS 3

static void *worker(ctx_t *ctx, void *arg)
{
	int id = (int)(intptr_t)arg;
	int e;

	do {
		printf("Worker %d is working...\n", id);
		e = ctx_sleep(ctx, 500 * CTX_MSEC);
	} while (!e);
	printf("Worker %d stopped: %s\n", id, ctx_strerror(e));
	return NULL;
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "workers: bad duration '%s' (milliseconds)\n",
			s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

/* Join every started worker.  The wait is on the background context:
 * the workers were cancelled, so they end promptly. */
static int join_all(ctx_thread_t **t, int n)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		int e = ctx_thread_join(ctx_background(), t[i], NULL);

		if (e) {
			fprintf(stderr, "workers: join: %s\n", strerror(e));
			rc = 1;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	int64_t run = argc > 1 ? parse_ms(argv[1]) : 2 * CTX_SEC;
	ctx_thread_t *t[NWORKERS];
	int n, e = 0;

	/* Lines, not blocks, even into a pipe: the order is the point. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	ctx_t *ctx = ctx_with_cancel(ctx_background());
	if (!ctx) {
		perror("workers: ctx_with_cancel");
		return 1;
	}
	for (n = 0; n < NWORKERS; n++) {
		e = ctx_thread_create(&t[n], ctx, worker, (void *)(intptr_t)n);
		if (e) {
			fprintf(stderr, "workers: thread: %s\n", strerror(e));
			break;
		}
	}
	if (!e)
		ctx_sleep(ctx_background(), run);
	printf("main: cancelling the workers\n");
	ctx_cancel(ctx);
	int rc = join_all(t, n);
	ctx_release(ctx);
	if (!rc && !e)
		printf("main: all %d workers stopped\n", n);
	return rc || e;
}
