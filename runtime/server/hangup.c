/*
 * Hang-up contexts (Go's r.Context()): a cancel node that ends with
 * CTX_CANCELED, cause ECONNRESET, when the peer of a socket goes away,
 * with no thread of the program reading it.
 *
 * One watcher thread and one epoll set serve every such context; both
 * are made by the first ctx_with_hangup, so a program that never calls
 * it pays nothing.  A socket is registered for EPOLLRDHUP only (EPOLLHUP
 * and EPOLLERR come anyway), never EPOLLIN, so data that arrives wakes
 * nobody and stays for the socket's reader.
 *
 * Quirks of epoll this file works around:
 *  a. A set holds one registration per descriptor, so contexts on the
 *     same fd share one: a table indexed by fd lists them.
 *  b. The events are level-triggered and stay asserted once the peer is
 *     gone.  The watcher removes the fd from the set before ending the
 *     contexts, so it reports once; a context made on that fd afterwards
 *     registers it again and is ended at once by the event it finds.
 *  c. An event may be read by the watcher just as its registration is
 *     removed and the fd number reused for another socket.  Each
 *     registration carries a generation number in its epoll data, and
 *     an event whose generation is not the fd's current one is dropped.
 *  d. The set is shared with a fork()ed child; the child makes its own.
 *
 * A context leaves the table when it ends (a link on itself fires in
 * the canceller's thread, before ctx_cancel or ctx_release returns) or
 * is freed, and the fd leaves the set with its last context.  So the fd
 * must stay open while the context lives, and closing it after
 * releasing the context is always fine, even if the number is reused.
 *
 * Lock order: the table mutex is never held while a node lock is taken;
 * the watcher takes references under it and cancels after dropping it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/core.h"

struct hang_ctx {
	ctx_t base;             /* first: a hang_ctx is a ctx_t */
	struct ctx__link ended; /* on itself: leaves the table */
	int fd;
	bool listed;            /* in slots[fd]'s list; under mu */
	struct hang_ctx *next, *prev; /* not pprev: slots move (realloc) */
};

struct slot {
	struct hang_ctx *list;
	uint32_t gen;  /* of the registration in the set; 0: not in it */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static int nslots;
static uint32_t next_gen;
static int epfd = -1;
static bool running;

static uint64_t key(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Under mu: register fd in the set under a new generation. */
static int set_add(int fd)
{
	uint32_t gen = ++next_gen ? next_gen : ++next_gen;
	struct epoll_event ev = { .events = EPOLLRDHUP,
				  .data.u64 = key(fd, gen) };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 &&
	    (errno != EEXIST || epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
		return errno;
	slots[fd].gen = gen;
	return 0;
}

static void set_del(int fd)
{
	if (slots[fd].gen)
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	slots[fd].gen = 0;
}

/* Under mu: take h out of its fd's list; the fd leaves the set with the
 * last one. */
static void unlist(struct hang_ctx *h)
{
	if (!h->listed)
		return;
	if (h->prev)
		h->prev->next = h->next;
	else
		slots[h->fd].list = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->listed = false;
	if (!slots[h->fd].list)
		set_del(h->fd);
}

static int grow(int fd)
{
	if (fd < nslots)
		return 0;
	int n = nslots ? nslots : 64;
	while (n <= fd)
		n *= 2;
	struct slot *s = realloc(slots, (size_t)n * sizeof(*s));
	if (!s)
		return ENOMEM;
	for (int i = nslots; i < n; i++)
		s[i] = (struct slot){ 0 };
	slots = s;
	nslots = n;
	return 0;
}

/* Under mu: add h to its fd's list, registering the fd if needed. */
static int list(struct hang_ctx *h)
{
	int e = grow(h->fd);
	if (!e && !slots[h->fd].gen)
		e = set_add(h->fd);
	if (e)
		return e;
	struct slot *s = &slots[h->fd];
	h->next = s->list;
	h->prev = NULL;
	if (h->next)
		h->next->prev = h;
	s->list = h;
	h->listed = true;
	return 0;
}

/* The peer of fd went away: end every context on it.  References are
 * taken under mu (a context being freed is skipped: its free unlists
 * it); cancelling happens after mu is dropped, in batches.  Contexts
 * that are cancelled leave the list, so each batch finds new ones. */
static void hung_up(int fd, uint32_t gen)
{
	ctx_t *hit[64];
	int n = 64;
	for (bool first = true; n == 64; first = false) {
		n = 0;
		pthread_mutex_lock(&mu);
		if (fd < nslots && (!first || slots[fd].gen == gen)) {
			if (first)
				set_del(fd); /* quirk b */
			for (struct hang_ctx *h = slots[fd].list; h && n < 64;
			     h = h->next)
				if (!atomic_load(&h->base.err) &&
				    ctx__try_ref(&h->base))
					hit[n++] = &h->base;
		}
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < n; i++) {
			ctx__cancel_by(hit[i], CTX_CANCELED, ECONNRESET,
				       ctx__origin(CTX__BY_HANGUP, 0,
						   hit[i]->site));
			ctx_unref(hit[i]);
		}
	}
}

static void *watcher_main(void *arg)
{
	(void)arg;
	struct epoll_event evs[64];
	for (;;) {
		int fd = epfd; /* replaced in a fork()ed child only */
		int n = epoll_wait(fd, evs, 64, -1);
		for (int i = 0; i < n; i++)
			hung_up((int)(uint32_t)evs[i].data.u64,
				(uint32_t)(evs[i].data.u64 >> 32));
	}
	return NULL;
}

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }

/* Quirk d: the child's registrations must not change the parent's set,
 * so it makes a set of its own with the same fds and its own watcher. */
static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	running = false;
	if (epfd < 0)
		return;
	close(epfd);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	bool any = false;
	for (int fd = 0; fd < nslots; fd++) {
		slots[fd].gen = 0;
		if (slots[fd].list && epfd >= 0)
			any |= set_add(fd) == 0;
	}
	if (any && !ctx__spawn(watcher_main, NULL, CTX__STACK_SMALL))
		running = true;
}

static void init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Under mu: the set and the thread, made on first use. */
static int start(void)
{
	if (epfd < 0 && (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return errno;
	int e = running ? 0 :
			  ctx__spawn(watcher_main, NULL, CTX__STACK_SMALL);
	running = !e;
	return e;
}

/* The context ended: it no longer needs to hear of the fd, and the fd
 * may be closed and its number reused as soon as the cancel returns. */
static void ended_fire(struct ctx__link *l)
{
	struct hang_ctx *h = (struct hang_ctx *)((char *)l -
						 offsetof(struct hang_ctx, ended));
	pthread_mutex_lock(&mu);
	unlist(h);
	pthread_mutex_unlock(&mu);
	ctx__link_done(l);
}

/* The free hook (core/kind.h): a context freed before it ended. */
static void hangup_free(ctx_t *c)
{
	pthread_mutex_lock(&mu);
	unlist((struct hang_ctx *)c);
	pthread_mutex_unlock(&mu);
}

static const struct ctx__kind_hooks hangup_kind = {
	.name = ".WithHangup",
	.free = hangup_free,
};

__attribute__((constructor)) static void hangup_hooks(void)
{
	ctx__kinds[CTX__HANGUP] = &hangup_kind;
}

static int watch(struct hang_ctx *h)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	int e = start();
	if (!e)
		e = list(h);
	pthread_mutex_unlock(&mu);
	return e;
}

ctx_t *ctx_with_hangup(ctx_t *parent, int fd)
{
	if (fd < 0) {
		errno = EINVAL;
		return NULL;
	}
	ctx_t *c = ctx__new_cancel(parent, CTX__HANGUP, sizeof(struct hang_ctx),
				   CTX__NEVER, 0);
	if (!c)
		return NULL;
	struct hang_ctx *h = (struct hang_ctx *)c;
	h->fd = fd;
	h->ended.fire = ended_fire;
	/* Listed before the link goes on, so that the link's fire always
	 * finds something to take out. */
	int e = atomic_load(&c->err) ? 0 : watch(h);
	if (e) {
		ctx_release(c);
		errno = e;
		return NULL;
	}
	if (ctx__link_add(c, &h->ended))
		ended_fire(&h->ended); /* the parent was done already */
	return c;
}
