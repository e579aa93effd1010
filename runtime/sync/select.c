/*
 * ctx_select: Go's select over channel sends and receives, descriptors
 * and other contexts' ends, with a timeout.
 *
 * 1. Look: the cases are visited in a random permutation and the first
 *    ready one is completed, which makes the choice uniform among the
 *    ready ones.  Channel cases cost a lock each; the descriptor cases
 *    are polled together (timeout 0) the first time the walk reaches one,
 *    so a select whose chosen case is a channel or a context makes no
 *    system call.  timeout 0 stops here (Go's default:).
 * 2. Queue: every channel of the cases is locked at once, in address
 *    order (the only place two channel locks are held), the channel cases
 *    are tried again, and then a node per case joins its channel's queue,
 *    all pointing at one struct ctx__sel.  A peer completes a node only if
 *    it wins the compare-and-swap of `chosen` (sync/chan.h), so at
 *    most one channel case ever completes.  Context cases hang a link on
 *    their context that wakes this thread.
 * 3. Wait in the reactor's one loop for a wake-up, a ready descriptor
 *    of the cases, the select's context or its timeout.  Peers and
 *    context cases wake the thread; with no descriptor cases the sleep
 *    is the reactor's futex (or its timer), so a select over channels
 *    and contexts makes no descriptor.  The select decides a
 *    descriptor, a context case or its own end by the same
 *    compare-and-swap; when it loses, the peer's case is the result,
 *    since its element has moved.
 * 4. Leave: every node still queued is taken off, the links come off.
 *
 * The thread's wake-up token is taken before anything can wake it: by
 * the first channel node queued, or in block() before the context cases
 * are linked, so a case decided between a look and the sleep is never
 * slept through.
 */
#include <stdlib.h>
#include <string.h>

#include "sync/chan.h"

struct done_link {
	struct ctx__link link; /* first: fire() casts the link back */
	struct sel_state *st;
	ctx_t *n;              /* the cancel node linked to, or NULL */
};

/* Per case: its channel node, its context link, its pollfd. */
struct slot {
	struct ctx__chan_waiter node;
	struct done_link dl;
	int pfd;               /* index in st->pfds, or -1 */
	uint32_t perm;
};

struct sel_state {
	struct ctx__sel sel;
	struct ctx__reactor *r;
	struct ctx_case *cases;
	size_t n;
	struct slot *slots;
	struct pollfd *pfds;
	nfds_t npfd;
	ctx_chan_t **chans;    /* the distinct channels, by address */
	size_t nchans;
};

/* ---- the random permutation ------------------------------------------ */

static __thread uint64_t rng;

static uint32_t below(uint32_t k)
{
	if (!rng)
		rng = ((uint64_t)ctx_now() ^ (uint64_t)(uintptr_t)&rng) | 1;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(((rng >> 32) * (uint64_t)k) >> 32);
}

static void permute(struct slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t j = below((uint32_t)i + 1);
		s[i].perm = s[j].perm;
		s[j].perm = (uint32_t)i;
	}
}

/* ---- cases ------------------------------------------------------------ */

static bool is_chan(const struct ctx_case *c)
{
	return (c->kind == CTX_CASE_RECV || c->kind == CTX_CASE_SEND) && c->ch;
}

static int check_cases(const struct ctx_case *cases, size_t n)
{
	if (!cases && n)
		return EINVAL;
	for (size_t i = 0; i < n; i++) {
		const struct ctx_case *c = &cases[i];
		if (c->kind < CTX_CASE_RECV || c->kind > CTX_CASE_DONE ||
		    (is_chan(c) && !c->elem))
			return EINVAL;
	}
	return 0;
}

/* Under ch's lock: 0 or EPIPE when the case completed, else EAGAIN. */
static int try_chan(struct ctx_case *c, struct ctx__wakeups *w)
{
	return c->kind == CTX_CASE_SEND ?
		       ctx__chan_try_send(c->ch, c->elem, w) :
		       ctx__chan_try_recv(c->ch, c->elem, w);
}

static int try_chan_locked(struct ctx_case *c)
{
	struct ctx__wakeups w = { 0 };
	ctx__lock(&c->ch->lock);
	int r = try_chan(c, &w);
	ctx__unlock(&c->ch->lock);
	ctx__wakeups_flush(&w);
	return r;
}

/* Poll every descriptor case once, without waiting. */
static int poll_now(struct sel_state *st)
{
	int k;
	for (nfds_t i = 0; i < st->npfd; i++)
		st->pfds[i].revents = 0;
	while ((k = poll(st->pfds, st->npfd, 0)) < 0 && errno == EINTR)
		;
	return k < 0 ? errno : 0;
}

/* Context and descriptor cases are complete once chosen. */
static void finish_other(struct sel_state *st, int i)
{
	struct ctx_case *c = &st->cases[i];
	if (c->kind == CTX_CASE_FD) {
		c->revents = st->pfds[st->slots[i].pfd].revents;
		c->result = 0;
	} else if (c->kind == CTX_CASE_DONE) {
		c->result = ctx_err(c->done);
	}
}

/* Step 1: the first ready case in the permutation, completed; -1 if
 * none, -2 with *err set on a failure. */
static int look(struct sel_state *st, int *err)
{
	bool polled = false;
	for (size_t k = 0; k < st->n; k++) {
		int i = (int)st->slots[k].perm, r;
		struct ctx_case *c = &st->cases[i];
		if (is_chan(c) && (r = try_chan_locked(c)) != EAGAIN) {
			c->result = r;
			return i;
		}
		if (c->kind == CTX_CASE_FD && st->slots[i].pfd >= 0) {
			if (!polled && (*err = poll_now(st)))
				return -2;
			polled = true;
			if (st->pfds[st->slots[i].pfd].revents) {
				finish_other(st, i);
				return i;
			}
		}
		if (c->kind == CTX_CASE_DONE && c->done && ctx_err(c->done)) {
			finish_other(st, i);
			return i;
		}
	}
	return -1;
}

/* ---- step 2: the channel locks and queues ------------------------------ */

static void collect_chans(struct sel_state *st)
{
	st->nchans = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (!is_chan(&st->cases[i]))
			continue;
		ctx_chan_t *ch = st->cases[i].ch;
		size_t j = st->nchans;
		while (j > 0 && (uintptr_t)st->chans[j - 1] > (uintptr_t)ch)
			j--;
		if (j > 0 && st->chans[j - 1] == ch)
			continue;
		memmove(&st->chans[j + 1], &st->chans[j],
			(st->nchans - j) * sizeof(*st->chans));
		st->chans[j] = ch;
		st->nchans++;
	}
}

static void lock_all(struct sel_state *st)
{
	for (size_t i = 0; i < st->nchans; i++)
		ctx__lock(&st->chans[i]->lock);
}

static void unlock_all(struct sel_state *st)
{
	for (size_t i = st->nchans; i > 0; i--)
		ctx__unlock(&st->chans[i - 1]->lock);
}

static struct ctx__waitq *queue_of(struct ctx_case *c)
{
	return c->kind == CTX_CASE_SEND ? &c->ch->sendq : &c->ch->recvq;
}

/* With every channel locked: try the channel cases again, in the
 * permutation's order; if none is ready, queue a node for each.  The
 * index of the case completed, or -1 (queued). */
static int try_or_queue(struct sel_state *st)
{
	struct ctx__wakeups w = { 0 };
	int got = -1;
	lock_all(st);
	for (size_t k = 0; k < st->n && got < 0; k++) {
		int i = (int)st->slots[k].perm, r;
		struct ctx_case *c = &st->cases[i];
		if (is_chan(c) && (r = try_chan(c, &w)) != EAGAIN) {
			c->result = r;
			got = i;
		}
	}
	for (size_t i = 0; got < 0 && i < st->n; i++) {
		struct ctx_case *c = &st->cases[i];
		struct ctx__chan_waiter *cw = &st->slots[i].node;
		if (!is_chan(c))
			continue;
		*cw = (struct ctx__chan_waiter){ .sel = &st->sel,
						 .idx = (int)i };
		ctx__waitq_push(queue_of(c), &cw->q); /* takes the token */
		cw->q.elem = c->elem;
	}
	unlock_all(st);
	ctx__wakeups_flush(&w);
	return got;
}

/* Take every node still queued off its channel; the winner's result. */
static void dequeue_all(struct sel_state *st, int winner)
{
	lock_all(st);
	for (size_t i = 0; i < st->n; i++)
		if (is_chan(&st->cases[i]))
			ctx__waitq_del(queue_of(&st->cases[i]),
				       &st->slots[i].node.q);
	unlock_all(st);
	if (winner >= 0 && (size_t)winner < st->n &&
	    is_chan(&st->cases[winner]))
		st->cases[winner].result = st->slots[winner].node.q.result;
}

/* ---- context cases ----------------------------------------------------- */

static void done_fire(struct ctx__link *l)
{
	struct sel_state *st = ((struct done_link *)l)->st;
	struct ctx__reactor *r = st->r;
	ctx__reactor_hold(r);
	ctx__link_done(l);
	ctx__reactor_wake(r);
	ctx__reactor_release(r);
}

static void link_dones(struct sel_state *st)
{
	for (size_t i = 0; i < st->n; i++) {
		struct ctx_case *c = &st->cases[i];
		struct done_link *dl = &st->slots[i].dl;
		dl->n = NULL;
		if (c->kind != CTX_CASE_DONE || !c->done)
			continue;
		*dl = (struct done_link){ .link.fire = done_fire, .st = st,
					  .n = ctx__node(c->done) };
		if (dl->n && ctx__link_add(dl->n, &dl->link))
			dl->n = NULL; /* done already: seen by ready_other */
	}
}

static void unlink_dones(struct sel_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->slots[i].dl.n)
			ctx__link_del(st->slots[i].dl.n, &st->slots[i].dl.link);
}

/* ---- step 3: waiting ---------------------------------------------------- */

/* Decide case `want` (or, with want == n, "none": the select's own end)
 * unless a peer decided first; the winner. */
static int decide(struct sel_state *st, int want)
{
	int free_ = -1;
	if (atomic_compare_exchange_strong(&st->sel.chosen, &free_, want))
		return want;
	return free_;
}

/* A decision already made, or a ready context case (in the permutation's
 * order), or a ready descriptor after a poll; -1 if nothing. */
static int ready_other(struct sel_state *st, bool polled)
{
	int c = atomic_load(&st->sel.chosen);
	if (c >= 0)
		return c;
	for (size_t k = 0; k < st->n; k++) {
		int i = (int)st->slots[k].perm;
		struct ctx_case *cs = &st->cases[i];
		if (cs->kind == CTX_CASE_DONE && cs->done &&
		    ctx__check(ctx__node(cs->done)))
			return decide(st, i);
		if (polled && cs->kind == CTX_CASE_FD && st->slots[i].pfd >= 0 &&
		    st->pfds[st->slots[i].pfd].revents)
			return decide(st, i);
	}
	return -1;
}

/*
 * When to look again: the select's deadline, or the earliest deadline
 * still ahead among the context cases.  Nobody else may be waiting for
 * such a deadline, so nobody ends its case at it but a look (ctx__check
 * does).  Taken anew before every look: a deadline skipped here as past
 * was past when the look checked it, so the look ended that case --
 * unless it is an idle context's, which the timer thread ends, with a
 * wake-up; skipping it keeps a touched idle context from making this a
 * busy loop, and one case's moved deadline from hiding another's.
 */
static int64_t wake_at(struct sel_state *st, int64_t deadline, int64_t now)
{
	int64_t at = deadline, d;
	for (size_t i = 0; i < st->n; i++) {
		struct ctx_case *c = &st->cases[i];
		if (c->kind == CTX_CASE_DONE && c->done &&
		    ctx_deadline(c->done, &d) && d > now && d < at)
			at = d;
	}
	return at;
}

/* Until a case is decided or the select ends.  The winner, or the
 * select's own decision with *err its error. */
static int wait_cases(struct sel_state *st, ctx_t *ctx, int64_t deadline,
		      int *err)
{
	for (;;) {
		int64_t now = ctx_now();
		int64_t at = wake_at(st, deadline, now);
		int got = ready_other(st, false);
		if (got >= 0)
			return got;
		if (now >= deadline) {
			*err = EAGAIN;
			return decide(st, (int)st->n);
		}
		struct ctx__want want = { .fds = st->pfds, .nfds = st->npfd,
					  .wakes = true, .deadline = at };
		int e = ctx__wait_for(ctx, &want);
		if (e == CTX__READY && want.ready &&
		    (got = ready_other(st, true)) >= 0)
			return got;
		if (e != CTX__READY && e != CTX__EXPIRED) {
			*err = e;
			return decide(st, (int)st->n);
		}
		/* A fresh token before looking again (see waitq.h). */
		ctx__reactor_prepare(st->r);
	}
}

static int block(struct sel_state *st, ctx_t *ctx, int64_t deadline,
		 int *err)
{
	collect_chans(st);
	st->r = ctx__reactor_self();
	int got = try_or_queue(st);
	if (got < 0) {
		ctx__reactor_prepare(st->r); /* if no channel node took it */
		link_dones(st);
		got = wait_cases(st, ctx, deadline, err);
		unlink_dones(st);
		dequeue_all(st, got);
		if (got >= 0 && (size_t)got < st->n)
			finish_other(st, got);
	}
	/* the token ctx__waitq_push or the prepare took is spent */
	ctx__reactor_unprepare(st->r);
	return (size_t)got < st->n ? got : -1;
}

/* ---- the entry point ----------------------------------------------------- */

static void set_up(struct sel_state *st, struct ctx_case *cases, size_t n,
		   struct slot *slots, struct pollfd *pfds, ctx_chan_t **chans)
{
	*st = (struct sel_state){ .sel.chosen = -1, .cases = cases, .n = n,
				  .slots = slots, .pfds = pfds,
				  .chans = chans };
	for (size_t i = 0; i < n; i++) {
		struct ctx_case *c = &cases[i];
		slots[i].pfd = -1;
		if (c->kind == CTX_CASE_FD && c->fd >= 0) {
			slots[i].pfd = (int)st->npfd;
			pfds[st->npfd++] = (struct pollfd){ .fd = c->fd,
							    .events = c->events };
		}
	}
	permute(slots, n);
}

#define SMALL 16

static int run(ctx_t *ctx, struct ctx_case *cases, size_t n, int64_t timeout,
	       struct slot *slots, struct pollfd *pfds, ctx_chan_t **chans)
{
	struct sel_state st;
	int err = 0;
	set_up(&st, cases, n, slots, pfds, chans);
	int got = look(&st, &err);
	if (got == -1 && timeout == 0)
		err = EAGAIN;
	else if (got == -1)
		got = block(&st, ctx, timeout < 0 ? CTX__NEVER :
				ctx__add_sat(ctx_now(), timeout), &err);
	if (got < 0)
		errno = err ? err : EAGAIN;
	return got < 0 ? -1 : got;
}

int ctx_select(ctx_t *ctx, struct ctx_case *cases, size_t n, int64_t timeout)
{
	int e = ctx ? check_cases(cases, n) : EINVAL;
	if (!e)
		e = ctx_err(ctx);
	if (!e && n > (size_t)INT32_MAX)
		e = EINVAL;
	if (e) {
		errno = e;
		return -1;
	}
	/* pfds has room for the two entries the backend adds (backend.h). */
	if (n <= SMALL) {
		struct slot slots[SMALL];
		struct pollfd pfds[SMALL + 2];
		ctx_chan_t *chans[SMALL];
		return run(ctx, cases, n, timeout, slots, pfds, chans);
	}
	size_t each = sizeof(struct slot) + sizeof(ctx_chan_t *) +
		      sizeof(struct pollfd);
	size_t spare = 2 * sizeof(struct pollfd);
	char *mem = n > (SIZE_MAX - spare) / each ? NULL :
		    ctx__malloc(n * each + spare);
	if (!mem) {
		errno = ENOMEM;
		return -1;
	}
	struct slot *slots = (struct slot *)(void *)mem;
	ctx_chan_t **chans = (ctx_chan_t **)(void *)(slots + n);
	struct pollfd *pfds = (struct pollfd *)(void *)(chans + n);
	int got = run(ctx, cases, n, timeout, slots, pfds, chans);
	e = errno;
	free(mem);
	errno = e;
	return got;
}
