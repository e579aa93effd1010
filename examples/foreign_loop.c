/*
 * foreign_loop: a context inside an event loop libctx does not own.
 *
 * Many programs already have an epoll loop.  ctx_done_fd() gives the
 * descriptor a Go program would get as ctx.Done(): it turns readable when
 * the context ends -- cancelled, or at its deadline with no thread of the
 * program inside the library -- so the loop simply watches it beside its
 * own descriptors.  Meanwhile a worker thread does libctx-style blocking
 * calls under the same context and reports into the loop through a pipe;
 * both stop together.
 *
 *	usage: foreign_loop [RUN_MS]   (default 1000; SIGINT or SIGTERM
 *	                                end it early with "context canceled")
 */
#include <ctx.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum { TAG_TICK, TAG_WORKER, TAG_DONE };

struct loop {
	int epfd, tickfd, pipefd[2], donefd;
	int64_t started;
};

/* The worker: libctx calls, ended by the context the loop watches. */
static void *worker(ctx_t *ctx, void *arg)
{
	int fd = *(int *)arg;
	char msg[32];
	int e;

	for (int step = 1; !(e = ctx_sleep(ctx, 300 * CTX_MSEC)); step++) {
		int n = snprintf(msg, sizeof(msg), "step %d\n", step);
		if (ctx_write(ctx, fd, msg, (size_t)n) < 0) {
			e = errno;
			break;
		}
	}
	printf("worker: stopped: %s\n", ctx_strerror(e));
	return NULL;
}

static int watch(struct loop *l, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* The application's own descriptors: a 200 ms ticker and the pipe. */
static int setup(struct loop *l)
{
	struct itimerspec its = {
		.it_value = { 0, 200 * 1000 * 1000 },
		.it_interval = { 0, 200 * 1000 * 1000 },
	};

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tickfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (l->epfd < 0 || l->tickfd < 0 || pipe2(l->pipefd, O_CLOEXEC) < 0)
		return -1;
	if (timerfd_settime(l->tickfd, 0, &its, NULL) < 0)
		return -1;
	if (watch(l, l->tickfd, TAG_TICK) < 0 ||
	    watch(l, l->pipefd[0], TAG_WORKER) < 0 ||
	    watch(l, l->donefd, TAG_DONE) < 0)
		return -1;
	return 0;
}

static void teardown(struct loop *l)
{
	int fds[] = { l->epfd, l->tickfd, l->pipefd[0], l->pipefd[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void on_tick(struct loop *l)
{
	uint64_t n;

	if (read(l->tickfd, &n, sizeof(n)) == sizeof(n))
		printf("loop: tick at %" PRId64 " ms\n",
		       (ctx_now() - l->started) / CTX_MSEC);
}

static void on_worker(struct loop *l)
{
	char buf[64];
	ssize_t n = read(l->pipefd[0], buf, sizeof(buf) - 1);

	if (n > 0) {
		buf[n] = '\0';
		printf("loop: worker says %s", buf);
	}
}

/* Plain epoll_wait: the loop calls into libctx for nothing but the done
 * descriptor.  Returns once the context's descriptor fires. */
static int run(struct loop *l)
{
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(l->epfd, evs, 4, -1);

		if (n < 0 && errno == EINTR)
			continue; /* a signal, taken by ctx_with_signals */
		if (n < 0)
			return -1;
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case TAG_TICK:
				on_tick(l);
				break;
			case TAG_WORKER:
				on_worker(l);
				break;
			case TAG_DONE:
				return 0;
			}
		}
	}
}

static int64_t parse_ms(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		fprintf(stderr, "foreign_loop: bad duration '%s' (ms)\n", s);
		exit(2);
	}
	return (int64_t)v * CTX_MSEC;
}

int main(int argc, char **argv)
{
	int64_t run_for = argc > 1 ? parse_ms(argv[1]) : CTX_SEC;
	struct loop l = { -1, -1, { -1, -1 }, -1, ctx_now() };
	ctx_thread_t *t = NULL;
	sigset_t stop;
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	CTX_AUTO ctx_t *sig = ctx_with_signals(ctx_background(), &stop);
	CTX_AUTO ctx_t *ctx = sig ? ctx_with_timeout(sig, run_for) : NULL;
	if (!ctx) {
		perror("foreign_loop: context");
		return 1;
	}
	/* Owned by the context: never read or close it. */
	l.donefd = ctx_done_fd(ctx);
	if (l.donefd < 0 || setup(&l) < 0) {
		perror("foreign_loop: setup");
		goto out;
	}
	int e = ctx_thread_create(&t, ctx, worker, &l.pipefd[1]);
	if (e) {
		fprintf(stderr, "foreign_loop: thread: %s\n", strerror(e));
		goto out;
	}
	if (run(&l) < 0) {
		perror("foreign_loop: epoll_wait");
		ctx_cancel(ctx);
	} else {
		printf("loop: context done after %" PRId64 " ms: %s\n",
		       (ctx_now() - l.started) / CTX_MSEC,
		       ctx_strerror(ctx_err(ctx)));
		rc = 0;
	}
	/* The worker watched the same context: it is stopping already. */
	e = ctx_thread_join(ctx_background(), t, NULL);
	if (e) {
		fprintf(stderr, "foreign_loop: join: %s\n", strerror(e));
		rc = 1;
	}
out:
	/* Out of the epoll set before the context closes the descriptor. */
	if (l.epfd >= 0 && l.donefd >= 0)
		epoll_ctl(l.epfd, EPOLL_CTL_DEL, l.donefd, NULL);
	teardown(&l);
	return rc;
}
