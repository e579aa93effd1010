/*
 * Channels of fixed-size elements, buffered or not, as Go's.
 *
 * Like Go's runtime, an element goes straight from one thread to another
 * whenever one of them is parked: a sender that finds a parked receiver
 * copies into that receiver's element and completes it; a receiver that
 * finds a parked sender takes that sender's element (through the buffer,
 * when there is one, to keep FIFO order) and completes it.  Completion
 * happens under the channel lock, so a parked thread whose context ends
 * at the same moment either finds its operation completed (and reports
 * success: the element was delivered or taken) or removes itself before
 * anyone touched it (and reports the context's error: nothing moved).
 * With capacity 0 a send therefore returns only once a receiver has the
 * element.  Waiters of ctx_select are claimed before they are completed
 * (sync/chan.h).
 */
#include <stdlib.h>
#include <string.h>

#include "sync/chan.h"


ctx_chan_t *ctx_chan_new(size_t elem_size, size_t capacity)
{
	if (elem_size == 0 || (capacity && elem_size > SIZE_MAX / capacity)) {
		errno = EINVAL;
		return NULL;
	}
	ctx_chan_t *ch = ctx__malloc(sizeof(*ch));
	unsigned char *buf = capacity ? ctx__malloc(elem_size * capacity) : NULL;
	if (!ch || (capacity && !buf)) {
		free(ch);
		free(buf);
		errno = ENOMEM;
		return NULL;
	}
	*ch = (ctx_chan_t){ .esz = elem_size, .cap = capacity, .buf = buf };
	ctx__waitq_init(&ch->sendq);
	ctx__waitq_init(&ch->recvq);
	return ch;
}

static void *slot(ctx_chan_t *ch, size_t i)
{
	return ch->buf + ((ch->head + i) % ch->cap) * ch->esz;
}

/* The next waiter of q that may be completed: a plain one, or a select's
 * that this call wins.  A select's node that lost is dropped. */
static struct ctx__waitq_node *pop_claim(struct ctx__waitq *q)
{
	struct ctx__waitq_node *n;
	while ((n = ctx__waitq_pop(q))) {
		struct ctx__chan_waiter *cw = (struct ctx__chan_waiter *)n;
		int free_ = -1;
		if (!cw->sel)
			return n;
		if (atomic_compare_exchange_strong(&cw->sel->chosen, &free_,
						   cw->idx))
			return n;
	}
	return NULL;
}

static void finish_all(struct ctx__waitq *q, int result,
		       struct ctx__wakeups *w)
{
	for (struct ctx__waitq_node *n; (n = pop_claim(q));)
		ctx__waitq_finish(n, result, w);
}

/* Try to send without waiting: 0, EPIPE, or EAGAIN. */
int ctx__chan_try_send(ctx_chan_t *ch, const void *elem,
		       struct ctx__wakeups *w)
{
	if (ch->closed)
		return EPIPE;
	struct ctx__waitq_node *r = pop_claim(&ch->recvq);
	if (r) { /* a parked receiver means the buffer is empty */
		memcpy(r->elem, elem, ch->esz);
		ctx__waitq_finish(r, 0, w);
		return 0;
	}
	if (ch->len < ch->cap) {
		memcpy(slot(ch, ch->len++), elem, ch->esz);
		return 0;
	}
	return EAGAIN;
}

/* Try to receive without waiting: 0, EPIPE (closed and drained), or
 * EAGAIN. */
int ctx__chan_try_recv(ctx_chan_t *ch, void *elem, struct ctx__wakeups *w)
{
	struct ctx__waitq_node *s;
	if (ch->len > 0) {
		memcpy(elem, slot(ch, 0), ch->esz);
		ch->head = (ch->head + 1) % ch->cap;
		ch->len--;
		if ((s = pop_claim(&ch->sendq))) { /* refill, FIFO */
			memcpy(slot(ch, ch->len++), s->elem, ch->esz);
			ctx__waitq_finish(s, 0, w);
		}
		return 0;
	}
	if ((s = pop_claim(&ch->sendq))) { /* unbuffered: direct */
		memcpy(elem, s->elem, ch->esz);
		ctx__waitq_finish(s, 0, w);
		return 0;
	}
	return ch->closed ? EPIPE : EAGAIN;
}

/*
 * A send or a receive, on the skeleton of every blocking call
 * (wait/call.h): refuse if the context is done; try under the channel's
 * lock; if nothing moved, queue a node and park, until a peer completes
 * it or the context ends.  A node completed as the context ended counts:
 * the element was delivered or taken.
 */
struct chan_call {
	struct ctx__call c;     /* first: the try casts it back */
	ctx_chan_t *ch;
	void *elem;
	bool send;
	bool locked;            /* the try took ch->lock */
	bool queued;
	struct ctx__chan_waiter me;
	struct ctx__wakeups w;
};

static int chan_try(struct ctx__call *c)
{
	struct chan_call *k = (struct chan_call *)c;
	if (k->queued) /* a wake-up: did a peer complete us? */
		return k->me.q.done ? k->me.q.result : CTX__AGAIN;
	ctx__lock(&k->ch->lock);
	k->locked = true;
	int e = k->send ? ctx__chan_try_send(k->ch, k->elem, &k->w) :
			  ctx__chan_try_recv(k->ch, k->elem, &k->w);
	if (e != EAGAIN)
		return e;
	k->me.q.elem = k->elem;
	ctx__waitq_push(k->send ? &k->ch->sendq : &k->ch->recvq, &k->me.q);
	k->queued = true;
	return CTX__AGAIN;
}

static int chan_op(ctx_t *ctx, ctx_chan_t *ch, void *elem, bool send)
{
	if (!ctx || !ch || !elem)
		return EINVAL;
	struct chan_call k = {
		.c = { .try = chan_try, .fd = -1, .lock = &ch->lock,
		       .deadline = CTX__NEVER },
		.ch = ch, .elem = elem, .send = send,
	};
	int e = ctx__call_run(ctx, &k.c);
	if (!k.locked)
		return e; /* refused: nothing tried */
	if (k.queued) {
		ctx__waitq_del(send ? &ch->sendq : &ch->recvq, &k.me.q);
		e = k.me.q.done ? k.me.q.result : e;
	}
	ctx__unlock(&ch->lock);
	ctx__wakeups_flush(&k.w);
	return e;
}

int ctx_chan_send(ctx_t *ctx, ctx_chan_t *ch, const void *elem)
{
	return chan_op(ctx, ch, (void *)elem, true);
}

int ctx_chan_recv(ctx_t *ctx, ctx_chan_t *ch, void *elem)
{
	return chan_op(ctx, ch, elem, false);
}

/* Parked receivers get EPIPE (a parked receiver means nothing is
 * buffered); parked senders get EPIPE and their element stays theirs. */
void ctx_chan_close(ctx_chan_t *ch)
{
	if (!ch)
		return;
	struct ctx__wakeups w = { 0 };
	ctx__lock(&ch->lock);
	ch->closed = true;
	finish_all(&ch->recvq, EPIPE, &w);
	finish_all(&ch->sendq, EPIPE, &w);
	ctx__unlock(&ch->lock);
	ctx__wakeups_flush(&w);
}

int ctx_chan_try_send(ctx_chan_t *ch, const void *elem)
{
	if (!ch || !elem)
		return EINVAL;
	struct ctx__wakeups w = { 0 };
	ctx__lock(&ch->lock);
	int e = ctx__chan_try_send(ch, elem, &w);
	ctx__unlock(&ch->lock);
	ctx__wakeups_flush(&w);
	return e;
}

int ctx_chan_try_recv(ctx_chan_t *ch, void *elem)
{
	if (!ch || !elem)
		return EINVAL;
	struct ctx__wakeups w = { 0 };
	ctx__lock(&ch->lock);
	int e = ctx__chan_try_recv(ch, elem, &w);
	ctx__unlock(&ch->lock);
	ctx__wakeups_flush(&w);
	return e;
}

/* A snapshot, as Go's len(ch): it may be stale by the time it returns. */
size_t ctx_chan_len(ctx_chan_t *ch)
{
	if (!ch)
		return 0;
	ctx__lock(&ch->lock);
	size_t n = ch->len;
	ctx__unlock(&ch->lock);
	return n;
}

size_t ctx_chan_cap(ctx_chan_t *ch) { return ch ? ch->cap : 0; }

void ctx_chan_free(ctx_chan_t *ch)
{
	if (!ch)
		return;
	CTX_ASSERT(ctx__waitq_empty(&ch->sendq) && ctx__waitq_empty(&ch->recvq));
	free(ch->buf);
	free(ch);
}
