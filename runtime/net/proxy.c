/*
 * ctx_proxy: both directions of a proxied connection on the calling
 * thread, as two flows (flow.c) stepped in turn, with one wait for
 * whatever either ran out on.
 *
 * The budget is one thread and three descriptors per connection, the
 * two sockets included (a Go proxy holds the two sockets and no thread
 * of its own; a C proxy with a thread per direction held four and two).
 * That decides two things:
 *
 *   a. Sockets to sockets go through a buffer per direction, not splice:
 *      splice(2) between two sockets needs a pipe in the middle, two
 *      descriptors per direction, seven in all.  Where one end is a pipe,
 *      the flow splices (no pipe of ours in between).  Nor does the
 *      buffer cost speed: 1 GiB over the loopback through tcpproxy went
 *      at 2030-2160 MB/s, through a splice relay (a thread and a pipe per
 *      direction) at 1810-1830, through a blocking read/write relay at
 *      2060-2180 (bench_conn, three runs on a quiet 2-CPU VM; table conn
 *      of bench/rows.txt).
 *   b. The wait is poll(2) on the two sockets and ctx_done_fd(ctx), not
 *      ctx_poll: ctx_poll sleeps on the calling thread's own eventfd and,
 *      under a deadline (an idle context has one), its own timerfd --
 *      two descriptors per thread for the thread's life, four in all.
 *      The context's descriptor is one, shared by every proxy under the
 *      same context; with an idle context per connection it is that
 *      connection's third.  A thread that waits nowhere else (a new
 *      thread per connection) holds nothing more.  A context that can
 *      never end has no descriptor: then the poll has the two sockets
 *      alone.  Where the context's descriptor cannot be made (EMFILE),
 *      the wait falls back to ctx_poll.
 *
 * The idle touches are the flows': every read and write the kernel
 * makes.  Half-close: when a direction has written the last byte its
 * source will give, the destination's write side is shut down
 * (shutdown(SHUT_WR); an end that is not a socket is left alone).  The
 * first I/O error ends both directions.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net/flow.h"

/* Each direction's buffer: what one read takes from the kernel. */
#define PROXY_BUF ((size_t)32 << 10)

struct proxy {
	ctx_t *ctx;
	struct ctx__flow f[2]; /* a to b, b to a */
	int done_fd;           /* ctx_done_fd, or -1 */
	bool use_ctx_poll;     /* no done_fd could be made */
};

static int proxy_init(struct proxy *p, ctx_t *ctx, int a, int b)
{
	*p = (struct proxy){ .ctx = ctx, .done_fd = -1 };
	if (ctx__flow_init(&p->f[0], ctx, b, a, UINT64_MAX, PROXY_BUF) < 0 ||
	    ctx__flow_init(&p->f[1], ctx, a, b, UINT64_MAX, PROXY_BUF) < 0)
		return errno;
	p->done_fd = ctx_done_fd(ctx);
	if (p->done_fd < 0 && errno != 0)
		p->use_ctx_poll = true;
	return 0;
}

/* What to wait for on fd: readable for the flow it feeds, writable for
 * the flow that writes to it. */
static short events(const struct ctx__flow *from, const struct ctx__flow *to)
{
	return (short)((from->wait_src ? POLLIN : 0) |
		       (to->wait_dst ? POLLOUT : 0));
}

static int proxy_wait(struct proxy *p)
{
	struct ctx__flow *ab = &p->f[0], *ba = &p->f[1];
	short ea = events(ab, ba), eb = events(ba, ab);
	/* An end with nothing to wait for is left out: its hang-up alone
	 * would end every poll at once. */
	struct pollfd pf[3] = {
		{ .fd = ea ? ab->src.fd : -1, .events = ea },
		{ .fd = eb ? ba->src.fd : -1, .events = eb },
		{ .fd = p->done_fd, .events = POLLIN },
	};
	if (p->use_ctx_poll)
		return ctx_poll(p->ctx, pf, 2, -1) < 0 ? errno : 0;
	while (poll(pf, p->done_fd >= 0 ? 3 : 2, -1) < 0)
		if (errno != EINTR)
			return errno;
	return 0;
}

/* One turn of each flow still going: 0, or the error that ends both.
 * *again: one ran out of budget, not of bytes (step again at once). */
static int turn(struct proxy *p, bool *again)
{
	*again = false;
	for (int i = 0; i < 2; i++) {
		struct ctx__flow *f = &p->f[i];
		if (ctx__flow_done(f))
			continue;
		if (ctx__flow_step(f) < 0)
			return errno;
		if (ctx__flow_done(f))
			shutdown(f->dst.fd, SHUT_WR); /* not a socket: no-op */
		else if (!f->wait_src && !f->wait_dst)
			*again = true;
	}
	return 0;
}

static int proxy_run(struct proxy *p)
{
	for (;;) {
		bool again;
		int e = ctx_err(p->ctx);
		if (!e)
			e = turn(p, &again);
		if (e)
			return e;
		if (ctx__flow_done(&p->f[0]) && ctx__flow_done(&p->f[1]))
			return 0;
		if (!again && (e = proxy_wait(p)))
			return e;
	}
}

CTX_API int ctx_proxy(ctx_t *ctx, int a, int b, uint64_t moved[2])
{
	if (moved)
		moved[0] = moved[1] = 0;
	if (!ctx || a < 0 || b < 0 || a == b)
		return EINVAL;
	int e = ctx_err(ctx);
	if (e)
		return e;
	struct proxy p;
	e = proxy_init(&p, ctx, a, b);
	if (!e)
		e = proxy_run(&p);
	if (moved) {
		moved[0] = p.f[0].moved;
		moved[1] = p.f[1].moved;
	}
	ctx__flow_free(&p.f[0]);
	ctx__flow_free(&p.f[1]);
	return e;
}
