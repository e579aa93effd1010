/*
 * bench_server: what the server contexts cost.
 *
 *   touch/...     ns per ctx_touch of an idle context: on the context
 *                  itself, through a value context below it (one hop of
 *                  the walk), and from two threads at once on one
 *                  context (the cache line bounces).
 *   hangup/...    the time from the client's close(2) to the request's
 *                  context being done (ctx_with_hangup: the watcher
 *                  thread sees EPOLLRDHUP and cancels; a thread in
 *                  ctx_wait wakes), beside a thread blocked in ctx_read
 *                  on the socket noticing EOF -- the way to learn of a
 *                  hang-up without the watcher, at the price of a thread
 *                  reading.  Percentiles (nearest rank) over rounds, on
 *                  a UNIX socket pair and on TCP loopback.
 *
 * Every round checks what it measured: the context ended with
 * ECONNRESET, the read returned 0.  One line per measurement:
 * "name,value" (ns), or "name,median,min,max" for the touch rows.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "ctx.h"
#include "benchutil.h"

/* ---- ctx_touch -------------------------------------------------------- */

static void touch_fn(void *arg, int tid, uint64_t n)
{
	ctx_t *c = arg;
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		ctx_touch(c);
}

static void bench_touch(const struct bench *b)
{
	ctx_t *idle = ctx_with_idle(ctx_background(), 3600 * CTX_SEC);
	ctx_t *val = idle ? ctx_with_value(idle, "k", NULL) : NULL;
	if (!val)
		bench_fail("ctx_with_idle: %s", strerror(errno));
	int64_t d0, d1;
	ctx_deadline(idle, &d0);
	struct bench_spec s = { .name = "touch/idle", .fn = touch_fn,
				.arg = idle };
	bench_measure(b, &s);
	ctx_deadline(idle, &d1);
	if (d1 <= d0 || ctx_err(idle))
		bench_fail("touches did not move the deadline");
	s = (struct bench_spec){ .name = "touch/through-value",
				 .fn = touch_fn, .arg = val };
	bench_measure(b, &s);
	s = (struct bench_spec){ .name = "touch/2-threads", .fn = touch_fn,
				 .arg = idle, .threads = 2 };
	bench_measure(b, &s);
	ctx_unref(val);
	ctx_release(idle);
}

/* ---- hang-up detection ------------------------------------------------ */

static void tcp_pair(int fds[2])
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &len))
		bench_fail("listen: %s", strerror(errno));
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&a, sizeof(a)))
		bench_fail("connect: %s", strerror(errno));
	fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fds[0] < 0)
		bench_fail("accept: %s", strerror(errno));
	close(l);
}

static void make_pair(bool tcp, int fds[2])
{
	if (tcp)
		tcp_pair(fds);
	else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
		bench_fail("socketpair: %s", strerror(errno));
}

struct waiter {
	ctx_t *ctx;         /* wait for it to be done, or NULL: read fd */
	int fd;
	_Atomic uint32_t ready;
	int64_t done;
	int result;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	char buf[64];
	atomic_store(&w->ready, 1);
	if (w->ctx)
		w->result = ctx_wait(w->ctx);
	else
		w->result = (int)ctx_read(ctx_background(), w->fd, buf,
					  sizeof(buf));
	w->done = bench_now();
	return NULL;
}

/* One round: the close-to-noticed time in ns. */
static int64_t round_once(bool tcp, bool hangup)
{
	int fds[2];
	make_pair(tcp, fds);
	struct waiter w = { .fd = fds[0] };
	if (hangup && !(w.ctx = ctx_with_hangup(ctx_background(), fds[0])))
		bench_fail("ctx_with_hangup: %s", strerror(errno));
	pthread_t t;
	if (pthread_create(&t, NULL, waiter_main, &w))
		bench_fail("pthread_create");
	while (!atomic_load(&w.ready))
		sched_yield();
	bench_nap_ns(2000000); /* let it block */
	int64_t t0 = bench_now();
	close(fds[1]);
	pthread_join(t, NULL);
	if (hangup && (w.result != CTX_CANCELED ||
		       ctx_cause(w.ctx) != ECONNRESET))
		bench_fail("hang-up context: %d, cause %d", w.result,
			   ctx_cause(w.ctx));
	if (!hangup && w.result != 0)
		bench_fail("read at EOF returned %d", w.result);
	ctx_release(w.ctx);
	close(fds[0]);
	return w.done - t0;
}

static void bench_hangup(const struct bench *b, bool tcp, bool hangup)
{
	enum { MAX = 1000 };
	int64_t ns[MAX];
	int n = b->quick ? 50 : 400;
	for (int i = 0; i < n; i++)
		ns[i] = round_once(tcp, hangup);
	qsort(ns, (size_t)n, sizeof(ns[0]), bench_cmp_i64);
	char name[96];
	const char *what = hangup ? "hangup/ctx_with_hangup" :
				    "hangup/ctx_read-eof";
	const char *sock = tcp ? "tcp" : "unix";
	snprintf(name, sizeof(name), "%s/%s/p50", what, sock);
	bench_value(name, (double)ns[(n - 1) / 2]);
	snprintf(name, sizeof(name), "%s/%s/p99", what, sock);
	bench_value(name, (double)ns[(99 * n + 99) / 100 - 1]);
}

int main(int argc, char **argv)
{
	struct bench b;
	bench_init(&b, argc, argv);
	bench_print_machine("bench_server");
	printf("# libctx backend: %s\n", ctx_backend());
	bench_touch(&b);
	for (int tcp = 0; tcp < 2; tcp++) {
		bench_hangup(&b, tcp, true);
		bench_hangup(&b, tcp, false);
	}
	return 0;
}
