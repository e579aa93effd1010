/*
 * The watcher: contexts that end when a descriptor turns ready -- a
 * socket whose peer went away (ctx_with_hangup), a process that exited
 * (ctx_with_pidfd), a parent's context that ended (ctx_inherited).  What
 * the descriptor means, and how the node ends, is its kind's: the
 * watcher calls the kind's ready hook (kind.h).
 *
 * One watcher thread and one epoll set serve every such context; both
 * are made by the first one, so a program that never makes one pays
 * nothing, and none costs a descriptor of its own.  Each descriptor is
 * registered for the events its contexts ask for (EPOLLRDHUP for a
 * socket, never EPOLLIN, so that data that arrives wakes nobody and
 * stays for the socket's reader; EPOLLIN for a pidfd or a pipe);
 * EPOLLHUP and EPOLLERR come anyway.
 *
 * Quirks of epoll this file works around:
 *  a. A set holds one registration per descriptor, so contexts on the
 *     same fd share one: a table indexed by fd lists them, and the
 *     registration asks for the union of their events.
 *  b. The events are level-triggered and stay asserted once they come.
 *     The watcher removes the fd from the set before ending the
 *     contexts, so it reports once; a context made on that fd afterwards
 *     registers it again and is ended at once by the event it finds.
 *  c. An event may be read by the watcher just as its registration is
 *     removed and the fd number reused for another descriptor.  Each
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
 * the watcher takes references under it and calls the ready hooks after
 * dropping it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/core.h"

struct slot {
	struct ctx__watch *list;
	uint32_t gen;    /* of the registration in the set; 0: not in it */
	uint32_t events; /* that registration's */
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

/* Under mu: register fd for events, under a new generation (quirk c),
 * or widen its registration to them, keeping its generation. */
static int set_add(int fd, uint32_t events)
{
	struct slot *s = &slots[fd];
	uint32_t gen = s->gen;
	if (!gen)
		gen = ++next_gen ? next_gen : ++next_gen;
	struct epoll_event ev = { .events = s->events | events,
				  .data.u64 = key(fd, gen) };
	int op = s->gen ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(epfd, op, fd, &ev) < 0 &&
	    (errno != EEXIST || epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) < 0))
		return errno;
	s->gen = gen;
	s->events = ev.events;
	return 0;
}

static void set_del(int fd)
{
	if (slots[fd].gen)
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	slots[fd].gen = 0;
	slots[fd].events = 0;
}

/* Under mu: take w out of its fd's list; the fd leaves the set with the
 * last one. */
static void unlist(struct ctx__watch *w)
{
	if (!w->listed)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		slots[w->fd].list = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->listed = false;
	if (!slots[w->fd].list)
		set_del(w->fd);
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

/* Under mu: add w to its fd's list, registering the fd for w's events
 * if it is not already. */
static int list(struct ctx__watch *w)
{
	int e = grow(w->fd);
	if (!e && (slots[w->fd].events & w->events) != w->events)
		e = set_add(w->fd, w->events);
	if (e)
		return e;
	struct slot *s = &slots[w->fd];
	w->next = s->list;
	w->prev = NULL;
	if (w->next)
		w->next->prev = w;
	s->list = w;
	w->listed = true;
	return 0;
}

/* End node c as its kind says.  Every watched kind has a ready hook
 * that ends the node; the fallback keeps a missing one from leaving
 * the node listed, which would make fired() find it again forever. */
static void end(ctx_t *c)
{
	const struct ctx__kind_hooks *k = ctx__kind_of(c);
	if (k && k->ready)
		k->ready(c);
	else
		ctx__cancel_by(c, CTX_CANCELED, CTX_CANCELED, NULL);
}

/* fd turned ready: end every context on it.  References are taken under
 * mu (a context being freed is skipped: its free unlists it); the ready
 * hooks run after mu is dropped, in batches.  Contexts that end leave
 * the list, so each batch finds new ones. */
static void fired(int fd, uint32_t gen)
{
	ctx_t *hit[64];
	int n = 64;
	for (bool first = true; n == 64; first = false) {
		n = 0;
		pthread_mutex_lock(&mu);
		if (fd < nslots && (!first || slots[fd].gen == gen)) {
			if (first)
				set_del(fd); /* quirk b */
			for (struct ctx__watch *w = slots[fd].list;
			     w && n < 64; w = w->next)
				if (!atomic_load(&w->base.err) &&
				    ctx__try_ref(&w->base))
					hit[n++] = &w->base;
		}
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < n; i++) {
			end(hit[i]);
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
			fired((int)(uint32_t)evs[i].data.u64,
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
		uint32_t events = slots[fd].events;
		slots[fd].gen = 0;
		slots[fd].events = 0;
		if (slots[fd].list && epfd >= 0)
			any |= set_add(fd, events) == 0;
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
	struct ctx__watch *w =
		(struct ctx__watch *)((char *)l -
				      offsetof(struct ctx__watch, ended));
	pthread_mutex_lock(&mu);
	unlist(w);
	pthread_mutex_unlock(&mu);
	ctx__link_done(l);
}

void ctx__watch_free(ctx_t *c)
{
	pthread_mutex_lock(&mu);
	unlist((struct ctx__watch *)c);
	pthread_mutex_unlock(&mu);
}

static int watch(struct ctx__watch *w)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	int e = start();
	if (!e)
		e = list(w);
	pthread_mutex_unlock(&mu);
	return e;
}

ctx_t *ctx__watch_new(ctx_t *parent, enum ctx__kind kind, int fd,
		      uint32_t events, int64_t deadline)
{
	ctx_t *c = ctx__new_cancel(parent, kind, sizeof(struct ctx__watch),
				   deadline, 0);
	if (!c)
		return NULL;
	struct ctx__watch *w = (struct ctx__watch *)c;
	w->fd = fd;
	w->events = events;
	w->ended.fire = ended_fire;
	/* Listed before the link goes on, so that the link's fire always
	 * finds something to take out. */
	int e = atomic_load(&c->err) ? 0 : watch(w);
	if (e) {
		ctx_release(c);
		errno = e;
		return NULL;
	}
	if (ctx__link_add(c, &w->ended))
		ended_fire(&w->ended); /* the parent was done already */
	return c;
}
