/*
 * waitgroup: "WaitGroup waits; context cancels."  Workers with jobs of
 * different lengths run under one deadline; a wait group tells main when
 * every one of them has returned, whether it finished or was stopped.
 *
 * Go's version:
 *
 *	func worker(ctx context.Context, wg *sync.WaitGroup, d time.Duration) {
 *		defer wg.Done()
 *		select {
 *		case <-ctx.Done():
 *			return
 *		case <-time.After(d):
 *			fmt.Println("done")
 *		}
 *	}
 *
 *	usage: waitgroup [TIMEOUT_MS]   (default 500; jobs take 200..1000 ms)
 */
#include <ctx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWORKERS 5

struct worker {
	int id;
	int64_t job;   /* how long its job takes */
	ctx_wg_t *wg;
};

static void *worker(ctx_t *ctx, void *arg)
{
	struct worker *w = arg;
	int64_t t0 = ctx_now();
	int e = ctx_sleep(ctx, w->job);

	if (e)
		printf("worker %d: stopped after %lld of %lld ms: %s\n", w->id,
		       (long long)((ctx_now() - t0) / CTX_MSEC),
		       (long long)(w->job / CTX_MSEC), ctx_strerror(e));
	else
		printf("worker %d: done (%lld ms job)\n", w->id,
		       (long long)(w->job / CTX_MSEC));
	/* Last: once the count is zero main may free what w points to. */
	ctx_wg_done(w->wg);
	return NULL;
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "waitgroup: bad duration '%s' (ms)\n", s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

/* Start one detached worker: the wait group, not a join, tells when it
 * is finished.  The count goes up before the thread exists, as Go's
 * wg.Add goes before the `go` statement. */
static int start(ctx_t *ctx, struct worker *w)
{
	ctx_thread_t *t;

	ctx_wg_add(w->wg, 1);
	int e = ctx_thread_create(&t, ctx, worker, w);
	if (e) {
		ctx_wg_done(w->wg);
		return e;
	}
	return ctx_thread_detach(t);
}

int main(int argc, char **argv)
{
	int64_t timeout = argc > 1 ? parse_ms(argv[1]) : 500 * CTX_MSEC;
	struct worker w[NWORKERS];
	int e = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ctx_wg_t *wg = ctx_wg_new();
	if (!wg) {
		perror("waitgroup: ctx_wg_new");
		return 1;
	}
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), timeout);
	if (!ctx) {
		perror("waitgroup: ctx_with_timeout");
		ctx_wg_free(wg);
		return 1;
	}
	int64_t t0 = ctx_now();
	for (int i = 0; i < NWORKERS && !e; i++) {
		w[i] = (struct worker){ i, (i + 1) * 200 * CTX_MSEC, wg };
		e = start(ctx, &w[i]);
		if (e)
			fprintf(stderr, "waitgroup: thread: %s\n", strerror(e));
	}
	/* Not cancellable on purpose: the workers watch the deadline, so
	 * the count reaches zero by then at the latest. */
	int we = ctx_wg_wait(ctx_background(), wg);
	if (we)
		fprintf(stderr, "waitgroup: wait: %s\n", strerror(we));
	else
		printf("main: all workers returned after %lld ms (%s)\n",
		       (long long)((ctx_now() - t0) / CTX_MSEC),
		       ctx_err(ctx) ? ctx_strerror(ctx_err(ctx)) : "in time");
	ctx_wg_free(wg);
	return e || we;
}
