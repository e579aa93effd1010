/*
 * One direction of a copy between two descriptors, moved without ever
 * blocking (runtime/net/flow.c): ctx_copy drives one flow, ctx_proxy two
 * on one thread.  A step moves what the kernel will take and give now,
 * touches the context at every transfer, and says what it ran out on
 * (wait_src: src must turn readable; wait_dst: dst writable); the caller
 * does the waiting, so that one thread can wait for two flows at once.
 */
#ifndef CTX_NET_FLOW_H
#define CTX_NET_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include <ctx.h>

/* How a descriptor is tried without blocking (never changing its
 * flags): see flow.c. */
enum ctx__end_how {
	CTX__END_SOCKET,   /* recv/send with MSG_DONTWAIT */
	CTX__END_NONBLOCK, /* O_NONBLOCK already: the plain call */
	CTX__END_FILE,     /* a regular file or block device: plain */
	CTX__END_NOWAIT,   /* preadv2/pwritev2 with RWF_NOWAIT (pipes) */
	CTX__END_POLLED,   /* none of these: poll(2) first, then plain */
};

struct ctx__end {
	int fd;
	enum ctx__end_how how;
	bool pipe; /* a pipe or FIFO: splice(2) can take or give */
};

struct ctx__flow {
	ctx_t *ctx;
	struct ctx__end src, dst;
	bool splice;      /* one end is a pipe: no buffer, splice(2) */
	char *buf;        /* bytes [head, tail) read and not yet written */
	size_t cap, head, tail;
	uint64_t left;    /* bytes src may still give (the caller's max) */
	uint64_t moved;   /* bytes dst took */
	bool eof;         /* src has ended, or left is 0 */
	bool wait_src;    /* the last step stopped: src had nothing */
	bool wait_dst;    /* ... dst took nothing more */
};

/* 0, or -1 with errno (EBADF, ENOMEM).  cap: the buffer's size, made
 * here unless the flow splices. */
int ctx__flow_init(struct ctx__flow *f, ctx_t *ctx, int dst, int src,
		   uint64_t max, size_t cap);
void ctx__flow_free(struct ctx__flow *f);
/* Moves bytes until one side would block, the end of src, or a round's
 * worth (then neither wait flag is set: step again).  0, or -1 with
 * errno: the descriptor's error, or the context's from a splice. */
int ctx__flow_step(struct ctx__flow *f);

/* Every byte src will give has reached dst. */
static inline bool ctx__flow_done(const struct ctx__flow *f)
{
	return f->eof && f->head == f->tail;
}

#endif
