/*
 * The sync layer's internal header: what select.c needs of chan.c, the
 * channel itself, its waiters, and the non-blocking halves of send and
 * receive.
 *
 * A waiter parked by ctx_select sits on several channels at once; all
 * its nodes point at one struct ctx__sel.  A peer that pops such a node
 * completes it only if it wins the compare-and-swap of `chosen` from -1
 * to the node's case index; a node whose select has already been decided
 * is dropped and the peer looks at the next one.  A plain send or
 * receive parks a node with sel NULL, which is always taken.
 */
#ifndef CTX_CHAN_H
#define CTX_CHAN_H

#include "wait/wait.h"

struct ctx__sel {
	_Atomic int chosen;  /* -1 until a case is decided */
};

struct ctx__chan_waiter {
	struct ctx__waitq_node q; /* first: popped nodes cast back */
	struct ctx__sel *sel;     /* NULL: a plain send or receive */
	int idx;                  /* the case this node stands for */
};

struct ctx_chan {
	ctx__lock_t lock;
	bool closed;
	size_t esz, cap, head, len;
	struct ctx__waitq sendq, recvq;
	unsigned char *buf;
};

/* Under ch->lock: 0, EPIPE, or EAGAIN (nothing moved). */
int ctx__chan_try_send(ctx_chan_t *ch, const void *elem,
		       struct ctx__wakeups *w);
int ctx__chan_try_recv(ctx_chan_t *ch, void *elem, struct ctx__wakeups *w);

#endif
