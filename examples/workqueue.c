/*
 * workqueue: a bounded work queue on ctx_cond_t, producers and consumers
 * all stopped by one cancel, and a dispatcher whose select loop takes
 * results, a ticker and shutdown in one place.
 *
 *   examples/workqueue [RUN_MS]      (default 600)
 *
 * Two producers put jobs into a queue of 8 (waiting on `not_full` when
 * it is full); three consumers take them (waiting on `not_empty`), do
 * 5 ms of work and send the result to a channel.  The dispatcher selects
 * over that channel, a ticker (a deadline it moves forward every
 * 100 ms) and the root context's end.  After RUN_MS one ctx_cancel
 * stops everyone: the threads blocked in ctx_cond_wait or in
 * ctx_chan_send return CTX_CANCELED, the dispatcher sees the DONE case.
 */
#include <ctx.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define QCAP 8

struct queue {
	pthread_mutex_t mu;
	ctx_cond_t not_empty, not_full;
	int jobs[QCAP];
	int head, len;
};

static struct queue q = { .mu = PTHREAD_MUTEX_INITIALIZER,
			  .not_empty = CTX_COND_INIT,
			  .not_full = CTX_COND_INIT };
static ctx_chan_t *results;
static int next_job;

/* 0 and the job, or the context's error. */
static int take(ctx_t *ctx, int *job)
{
	int e = 0;
	pthread_mutex_lock(&q.mu);
	while (q.len == 0 && e == 0)
		e = ctx_cond_wait(ctx, &q.not_empty, &q.mu);
	if (q.len > 0) { /* an item counts even if ctx ended meanwhile */
		*job = q.jobs[q.head];
		q.head = (q.head + 1) % QCAP;
		q.len--;
		e = 0;
	}
	pthread_mutex_unlock(&q.mu);
	if (e == 0)
		ctx_cond_signal(&q.not_full);
	return e;
}

static int put(ctx_t *ctx)
{
	int e = 0;
	pthread_mutex_lock(&q.mu);
	while (q.len == QCAP && e == 0)
		e = ctx_cond_wait(ctx, &q.not_full, &q.mu);
	if (e == 0)
		q.jobs[(q.head + q.len++) % QCAP] = next_job++;
	pthread_mutex_unlock(&q.mu);
	if (e == 0)
		ctx_cond_signal(&q.not_empty);
	return e;
}

static void producer(ctx_t *ctx, void *arg)
{
	int e, n = 0;
	while ((e = put(ctx)) == 0)
		if (++n % 4 == 0)
			ctx_sleep(ctx, 2 * CTX_MSEC);
	printf("producer %ld: stopped after %d jobs: %s\n", (long)arg, n,
	       ctx_strerror(e));
}

static void consumer(ctx_t *ctx, void *arg)
{
	int job, e, n = 0;
	while ((e = take(ctx, &job)) == 0) {
		if ((e = ctx_sleep(ctx, 5 * CTX_MSEC)) != 0 ||
		    (e = ctx_chan_send(ctx, results, &job)) != 0)
			break;
		n++;
	}
	printf("consumer %ld: stopped after %d jobs: %s\n", (long)arg, n,
	       ctx_strerror(e));
}

int main(int argc, char **argv)
{
	long run_ms = argc > 1 ? atol(argv[1]) : 600;
	ctx_t *root = ctx_with_cancel(ctx_background());
	ctx_wg_t *wg = ctx_wg_new();
	results = ctx_chan_new(sizeof(int), 4);
	if (!root || !wg || !results)
		return 1;
	for (long i = 0; i < 2; i++)
		if (ctx_wg_go(wg, root, producer, (void *)i))
			return 1;
	for (long i = 0; i < 3; i++)
		if (ctx_wg_go(wg, root, consumer, (void *)i))
			return 1;

	int job, done_jobs = 0, ticks = 0;
	int64_t start = ctx_now(), stop_at = start + run_ms * CTX_MSEC;
	int64_t next_tick = start + 100 * CTX_MSEC;
	struct ctx_case cs[] = {
		{ .kind = CTX_CASE_RECV, .ch = results, .elem = &job, .fd = -1 },
		{ .kind = CTX_CASE_DONE, .done = root, .fd = -1 },
	};
	for (;;) {
		int64_t now = ctx_now();
		if (now >= stop_at) /* the one cancel that stops everyone */
			ctx_cancel(root);
		int64_t until = next_tick < stop_at ? next_tick : stop_at;
		int i = ctx_select(ctx_background(), cs, 2,
				   until > now ? until - now : 0);
		if (i == 0) {
			done_jobs++;
		} else if (i == 1) {
			break;
		} else if (ctx_now() >= next_tick) {
			ticks++;
			printf("tick %d: %d jobs done\n", ticks, done_jobs);
			next_tick += 100 * CTX_MSEC;
		}
	}
	printf("dispatcher: shutdown after %lld ms: %s\n",
	       (long long)((ctx_now() - start) / CTX_MSEC),
	       ctx_strerror(cs[1].result));
	ctx_wg_wait(ctx_background(), wg);
	printf("main: all workers stopped; %d jobs done, %d ticks\n",
	       done_jobs, ticks);
	ctx_wg_free(wg);
	ctx_chan_free(results);
	ctx_release(root);
	return 0;
}
