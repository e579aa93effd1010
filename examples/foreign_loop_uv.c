/*
 * foreign_loop_uv: a context in a libuv loop.
 *
 * libuv owns the loop here; the context's done descriptor joins it as a
 * uv_poll_t, like any other descriptor libuv did not open.  When the
 * context ends (its deadline, or SIGINT/SIGTERM through ctx_with_signals)
 * the poll callback fires and the program closes its handles, so uv_run
 * returns.  The descriptor belongs to the context: libuv only polls it,
 * and the handle is closed before the context is released.
 *
 *	usage: foreign_loop_uv [RUN_MS]   (default 1000)
 */
#include <ctx.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct app {
	ctx_t *ctx;
	uv_timer_t tick;
	uv_poll_t done;
	int64_t started;
};

static int64_t elapsed_ms(struct app *a)
{
	return (ctx_now() - a->started) / CTX_MSEC;
}

static void on_tick(uv_timer_t *h)
{
	struct app *a = h->data;

	printf("loop: tick at %" PRId64 " ms\n", elapsed_ms(a));
}

/* The context ended: close every handle, which lets uv_run return. */
static void on_done(uv_poll_t *h, int status, int events)
{
	struct app *a = h->data;

	(void)events;
	if (status < 0)
		fprintf(stderr, "foreign_loop_uv: poll: %s\n",
			uv_strerror(status));
	printf("loop: context done after %" PRId64 " ms: %s\n", elapsed_ms(a),
	       ctx_strerror(ctx_err(a->ctx)));
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->done, NULL);
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "foreign_loop_uv: bad duration '%s' (ms)\n",
			s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

/* Register the ticker and the done descriptor with the loop. */
static int setup(uv_loop_t *loop, struct app *a, int donefd)
{
	int e;

	a->tick.data = a->done.data = a;
	if ((e = uv_timer_init(loop, &a->tick)) < 0)
		return e;
	if ((e = uv_timer_start(&a->tick, on_tick, 200, 200)) < 0 ||
	    (e = uv_poll_init(loop, &a->done, donefd)) < 0) {
		uv_close((uv_handle_t *)&a->tick, NULL);
		return e;
	}
	if ((e = uv_poll_start(&a->done, UV_READABLE, on_done)) < 0) {
		uv_close((uv_handle_t *)&a->tick, NULL);
		uv_close((uv_handle_t *)&a->done, NULL);
	}
	return e;
}

int main(int argc, char **argv)
{
	int64_t run_for = argc > 1 ? parse_ms(argv[1]) : CTX_SEC;
	struct app a = { .started = ctx_now() };
	uv_loop_t loop;
	sigset_t stop;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	CTX_AUTO ctx_t *sig = ctx_with_signals(ctx_background(), &stop);
	CTX_AUTO ctx_t *ctx = sig ? ctx_with_timeout(sig, run_for) : NULL;
	if (!ctx) {
		perror("foreign_loop_uv: context");
		return 1;
	}
	a.ctx = ctx;
	int donefd = ctx_done_fd(ctx);
	if (donefd < 0) {
		perror("foreign_loop_uv: ctx_done_fd");
		return 1;
	}
	int e = uv_loop_init(&loop);
	if (e < 0) {
		fprintf(stderr, "foreign_loop_uv: %s\n", uv_strerror(e));
		return 1;
	}
	e = setup(&loop, &a, donefd);
	if (e < 0)
		fprintf(stderr, "foreign_loop_uv: setup: %s\n", uv_strerror(e));
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) < 0) {
		fprintf(stderr, "foreign_loop_uv: handles left open\n");
		return 1;
	}
	return e < 0;
}
