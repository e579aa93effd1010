/*
 * timeout: work raced against a deadline (Go's context.WithTimeout with a
 * goroutine that reports on a buffered channel, and a select on the
 * channel and ctx.Done()).
 *
 *	usage: timeout [WORK_MS [TIMEOUT_MS]]   (defaults 50 and 150)
 *
 * With the defaults the work wins: "work complete {123}".  Swapped
 * (timeout 150 50) the deadline wins: "work cancelled".  Unlike the Go
 * program the worker sleeps under the same context, so it stops at the
 * deadline too instead of running on unobserved, and main joins it.
 */
#include <ctx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct data {
	char user_id[8];
};

struct job {
	ctx_chan_t *ch;
	int64_t work;
};

/* Simulate work, then report it on the channel.  The channel holds one
 * element, so the send does not wait for main: like Go's make(chan, 1),
 * it lets the worker finish even if nobody listens any more. */
static void *work(ctx_t *ctx, void *arg)
{
	struct job *job = arg;
	struct data d = { "123" };
	int e = ctx_sleep(ctx, job->work);

	if (!e)
		e = ctx_chan_send(ctx, job->ch, &d);
	if (e)
		printf("worker: gave up: %s\n", ctx_strerror(e));
	return NULL;
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "timeout: bad duration '%s' (milliseconds)\n",
			s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

/* Wait for the result or the deadline, whichever comes first. */
static void await(ctx_t *ctx, ctx_chan_t *ch)
{
	struct data d;
	int e = ctx_chan_recv(ctx, ch, &d);

	if (!e)
		printf("work complete {%s}\n", d.user_id);
	else
		printf("work cancelled: %s\n", ctx_strerror(e));
}

int main(int argc, char **argv)
{
	struct job job = { .work = 50 * CTX_MSEC };
	int64_t timeout = 150 * CTX_MSEC;
	ctx_thread_t *t;

	if (argc > 1)
		job.work = parse_ms(argv[1]);
	if (argc > 2)
		timeout = parse_ms(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	job.ch = ctx_chan_new(sizeof(struct data), 1);
	if (!job.ch) {
		perror("timeout: ctx_chan_new");
		return 1;
	}
	CTX_AUTO ctx_t *ctx = ctx_with_timeout(ctx_background(), timeout);
	if (!ctx) {
		perror("timeout: ctx_with_timeout");
		ctx_chan_free(job.ch);
		return 1;
	}
	int e = ctx_thread_create(&t, ctx, work, &job);
	if (e) {
		fprintf(stderr, "timeout: thread: %s\n", strerror(e));
		ctx_chan_free(job.ch);
		return 1;
	}
	await(ctx, job.ch);
	/* Go's `defer cancel()`: the worker stops if it is still going. */
	ctx_cancel(ctx);
	e = ctx_thread_join(ctx_background(), t, NULL);
	if (e)
		fprintf(stderr, "timeout: join: %s\n", strerror(e));
	ctx_chan_free(job.ch);
	return e != 0;
}
