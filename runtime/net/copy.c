/*
 * ctx_copy: Go's io.Copy (io.CopyN with a max) with a context, on one
 * flow (flow.c): steps that never block, and ctx_poll on the one side
 * the last step ran out on.  The context is looked at before every step,
 * so a copy whose bytes never stop flowing still ends with it.
 *
 * It waits in ctx_poll, on the calling thread's own wait descriptors
 * (made at its first wait, kept for the thread's life), as every other
 * blocking call of the library does: a thread that copies usually reads
 * and writes with the ctx_ calls too.  ctx_proxy, made for a thread per
 * connection, waits otherwise (proxy.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "net/flow.h"

/* The buffer between two descriptors neither of which is a pipe. */
#define COPY_BUF ((size_t)64 << 10)

static int wait_one(struct ctx__flow *f)
{
	struct pollfd p = { .fd = f->wait_src ? f->src.fd : f->dst.fd,
			    .events = f->wait_src ? POLLIN : POLLOUT };
	return ctx_poll(f->ctx, &p, 1, -1) < 0 ? errno : 0;
}

/* Until the end of src (0), an error or the context's (its errno). */
static int run(struct ctx__flow *f)
{
	for (;;) {
		int e = ctx_err(f->ctx);
		if (e)
			return e;
		if (ctx__flow_step(f) < 0)
			return errno;
		if (ctx__flow_done(f))
			return 0;
		if ((f->wait_src || f->wait_dst) && (e = wait_one(f)))
			return e;
	}
}

CTX_API ssize_t ctx_copy(ctx_t *ctx, int dst, int src, size_t max)
{
	if (!ctx) {
		errno = EINVAL;
		return -1;
	}
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return -1;
	}
	struct ctx__flow f;
	uint64_t most = max > SSIZE_MAX ? SSIZE_MAX : max;
	if (ctx__flow_init(&f, ctx, dst, src, most, COPY_BUF) < 0) {
		e = errno;
		ctx__flow_free(&f);
		errno = e;
		return -1;
	}
	e = run(&f);
	ctx__flow_free(&f);
	if (e && f.moved == 0) {
		errno = e;
		return -1;
	}
	errno = e;
	return (ssize_t)f.moved;
}
