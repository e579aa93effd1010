/*
 * Signal contexts (Go's signal.NotifyContext): a cancel node that ends
 * with CTX_CANCELED when a signal of its set arrives; and signals sent on
 * channels (Go's signal.Notify: ctx_signal_notify, ctx_signal_stop).
 *
 * The first live context or registration that wants a signal installs
 * the library's handler and keeps the previous action; the last one to
 * go puts that action back exactly.  While any lives, the signal is
 * consumed: the previous handler is not called.
 *
 * A handler may run on any thread at any moment, even one holding a
 * context lock, so it only does what is async-signal-safe: it puts the
 * signal's number in a ring, in arrival order, and posts a semaphore.  A
 * dispatcher thread, started with the first context or registration,
 * waits on the semaphore and takes the numbers out in order: each is
 * sent to every registered channel that wants it (a try-send: a full
 * channel drops it, as Go drops), then every live context whose set
 * holds it is cancelled, before the next number is looked at.  A ring
 * that is full (256 signals not yet dispatched) leaves the signal a
 * pending flag, dispatched after the ring in signal order.  No
 * descriptor is used.
 *
 * The sends happen under the registry mutex, so that once
 * ctx_signal_stop has taken a channel out the dispatcher never touches
 * it again; a send only takes the channel's lock, and no path takes the
 * registry mutex under it.  Cancels happen after the mutex is dropped.
 *
 * Lock order: the registry mutex, then (after dropping it) node locks.
 * The release hook runs with no node lock held.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/chan.h"

struct sig_ctx {
	ctx_t base; /* first: a sig_ctx is a ctx_t */
	sigset_t set;
	bool registered;
	struct sig_ctx *next;
};

/* A channel's registration: the signals it takes. */
struct reg {
	struct reg *next;
	ctx_chan_t *ch;
	sigset_t set;
};

#define RING 256

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sig_ctx *live;
static struct reg *regs;
static int users[NSIG];
static struct sigaction saved[NSIG];
static _Atomic int ring[RING];     /* 0: empty, or being written */
static _Atomic unsigned ring_head; /* the next slot a handler takes */
static _Atomic unsigned ring_tail; /* the next the dispatcher reads */
static _Atomic int pending[NSIG];  /* what found the ring full */
static sem_t sem;
static bool running;

/* Take a slot if there is room (the dispatcher frees it by moving the
 * tail), write the number into it, wake the dispatcher. */
static void on_signal(int signo)
{
	int e = errno;
	unsigned h = atomic_load(&ring_head);
	do {
		if (h - atomic_load(&ring_tail) >= RING) {
			atomic_store(&pending[signo], 1);
			goto wake;
		}
	} while (!atomic_compare_exchange_weak(&ring_head, &h, h + 1));
	atomic_store(&ring[h % RING], signo);
wake:
	sem_post(&sem);
	errno = e;
}

/* End c with CTX_CANCELED as before, with words that name the signal
 * and carry its number for ctx_signo.  The words of each signal are
 * made once, in static memory, when it is first hooked: a cancel by a
 * signal allocates nothing, so it cannot fail. */
static _Alignas(struct ctx__msg) char sig_msgs[NSIG][sizeof(struct ctx__msg) + 32];

static struct ctx__msg *sig_msg(int signo)
{
	return (struct ctx__msg *)sig_msgs[signo];
}

/* Under mu.  One reference that is never dropped: never freed. */
static void make_sig_msg(int signo)
{
	struct ctx__msg *m = sig_msg(signo);
	if (m->signo)
		return;
	atomic_init(&m->refs, 1);
	m->signo = signo;
	m->origin = ctx__origin(CTX__BY_SIGNAL, signo, 0);
	const char *name = sigabbrev_np(signo);
	if (name)
		snprintf(m->text, 32, "signal %s received", name);
	else
		snprintf(m->text, 32, "signal %d received", signo);
}

static void cancel_by(ctx_t *c, int signo)
{
	ctx__cancel_end(c, CTX_CANCELED, CTX_CANCELED,
			(uintptr_t)sig_msg(signo));
}

/* Cancel every live context listening for signo.  References are taken
 * under the mutex; cancelling happens after it is dropped. */
static void dispatch(int signo)
{
	ctx_t *hit[64];
	int n;
	do {
		n = 0;
		pthread_mutex_lock(&mu);
		for (struct sig_ctx *s = live; s && n < 64; s = s->next)
			if (sigismember(&s->set, signo) &&
			    !atomic_load(&s->base.err) &&
			    ctx__try_ref(&s->base))
				hit[n++] = &s->base;
		pthread_mutex_unlock(&mu);
		for (int i = 0; i < n; i++) {
			cancel_by(hit[i], signo);
			ctx_unref(hit[i]);
		}
	} while (n == 64); /* more than fit: the done ones are skipped */
}

/* signo to every channel that takes it, under the mutex. */
static void send_all(int signo)
{
	pthread_mutex_lock(&mu);
	for (struct reg *r = regs; r; r = r->next)
		if (sigismember(&r->set, signo) == 1)
			(void)ctx_chan_try_send(r->ch, &signo);
	pthread_mutex_unlock(&mu);
}

static void deliver(int signo)
{
	send_all(signo);
	dispatch(signo);
}

/* The ring in order, up to a slot a handler has taken but not yet
 * written (its post wakes us again); then what found it full. */
static void drain(void)
{
	unsigned t = atomic_load(&ring_tail);
	int signo;
	while (t != atomic_load(&ring_head) &&
	       (signo = atomic_exchange(&ring[t % RING], 0))) {
		atomic_store(&ring_tail, ++t);
		deliver(signo);
	}
	for (int sig = 1; sig < NSIG; sig++)
		if (atomic_exchange(&pending[sig], 0))
			deliver(sig);
}

static void *dispatcher_main(void *arg)
{
	(void)arg;
	for (;;) {
		while (sem_wait(&sem) < 0)
			; /* EINTR: signals are blocked here, but be safe */
		drain();
	}
	return NULL;
}

static void after_fork_child(void)
{
	pthread_mutex_init(&mu, NULL);
	sem_init(&sem, 0, 0);
	running = false;
	if ((live || regs) &&
	    !ctx__spawn(dispatcher_main, NULL, CTX__STACK_SMALL))
		running = true;
}

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }

static void init(void)
{
	sem_init(&sem, 0, 0);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Under mu: give back the signals of set below `below`. */
static void unhook_below(const sigset_t *set, int below)
{
	for (int sig = 1; sig < below; sig++)
		if (sigismember(set, sig) == 1 && --users[sig] == 0)
			sigaction(sig, &saved[sig], NULL);
}

static void unhook(const sigset_t *set)
{
	unhook_below(set, NSIG);
}

/* Under mu: hook every signal of set, or none. */
static int hook(const sigset_t *set)
{
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(set, sig) != 1 || users[sig]++ > 0)
			continue;
		make_sig_msg(sig);
		if (sigaction(sig, &sa, &saved[sig]) < 0) {
			int e = errno;
			users[sig]--;
			unhook_below(set, sig);
			return e;
		}
	}
	return 0;
}

/* Give the signals back: from ctx_release, so that the previous
 * handling is back when it returns even if the dispatcher still holds a
 * reference for a moment, and from the free, for those who cancel and
 * unref separately.  Whichever comes first does it. */
static void signals_free(ctx_t *c)
{
	struct sig_ctx *s = (struct sig_ctx *)c;
	pthread_mutex_lock(&mu);
	if (s->registered) {
		for (struct sig_ctx **p = &live; *p; p = &(*p)->next)
			if (*p == s) {
				*p = s->next;
				break;
			}
		unhook(&s->set);
		s->registered = false;
	}
	pthread_mutex_unlock(&mu);
}

/* The hooks of the kind (core/kind.h): the signals go back at the
 * release and at the free, whichever comes first. */
static const struct ctx__kind_hooks signals_kind = {
	.name = ".WithSignals",
	.release = signals_free,
	.free = signals_free,
};

__attribute__((constructor)) static void signals_hooks(void)
{
	ctx__kinds[CTX__SIGNALS] = &signals_kind;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Takes mu, and starts the dispatcher if it is not running. */
static int lock_started(void)
{
	pthread_once(&once, init);
	pthread_mutex_lock(&mu);
	int e = running ? 0 : ctx__spawn(dispatcher_main, NULL,
					       CTX__STACK_SMALL);
	running = !e;
	return e;
}

static int start(struct sig_ctx *s)
{
	int e = lock_started();
	if (!e)
		e = hook(&s->set);
	if (!e) {
		s->next = live;
		live = s;
		s->registered = true;
	}
	pthread_mutex_unlock(&mu);
	return e;
}

ctx_t *ctx_with_signals(ctx_t *parent, const sigset_t *signals)
{
	if (!signals) {
		ctx__site_drop(); /* so that no later call takes it */
		errno = EINVAL;
		return NULL;
	}
	ctx_t *c = ctx__new_cancel(parent, CTX__SIGNALS, sizeof(struct sig_ctx),
				   CTX__NEVER, 0);
	if (!c)
		return NULL;
	struct sig_ctx *s = (struct sig_ctx *)c;
	s->set = *signals;
	int e = start(s);
	if (e) {
		ctx_release(c);
		errno = e;
		return NULL;
	}
	return c;
}

/* The words of the cancellation that ended ctx say which signal it was;
 * a context ended otherwise, even if a signal came later, has none. */
int ctx_signo(ctx_t *ctx)
{
	ctx_t *n = ctx ? ctx__node(ctx) : NULL;
	if (!n || !atomic_load_explicit(&n->err, memory_order_acquire))
		return 0;
	ctx__lock(&n->lock); /* ctx_cause_msg may be filling it in */
	struct ctx__msg *m = ctx__end_msg(n->c.end);
	int signo = m ? m->signo : 0;
	ctx__unlock(&n->lock);
	return signo;
}

/* ---- signals on channels (ctx_signal_notify) --------------------------- */

/* Under mu: ch's registration, or NULL. */
static struct reg **reg_of(ctx_chan_t *ch)
{
	struct reg **p = &regs;
	while (*p && (*p)->ch != ch)
		p = &(*p)->next;
	return p;
}

/* Under mu: add the signals of set that r lacks (a new r lacks all). */
static int widen(struct reg *r, const sigset_t *set)
{
	sigset_t more;
	sigemptyset(&more);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(set, sig) == 1 && sigismember(&r->set, sig) != 1)
			sigaddset(&more, sig);
	int e = hook(&more);
	for (int sig = 1; !e && sig < NSIG; sig++)
		if (sigismember(&more, sig) == 1)
			sigaddset(&r->set, sig);
	return e;
}

/* A second call for the same channel widens what it takes, as Go's
 * Notify does: each signal still reaches it once. */
int ctx_signal_notify(ctx_chan_t *ch, const sigset_t *set)
{
	if (!ch || !set || ch->esz != sizeof(int))
		return EINVAL;
	struct reg *fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return ENOMEM;
	sigemptyset(&fresh->set);
	fresh->ch = ch;
	int e = lock_started();
	struct reg **p = reg_of(ch), *r = *p ? *p : fresh;
	if (!e && !(e = widen(r, set)) && r == fresh) {
		*p = fresh;
		fresh = NULL;
	}
	pthread_mutex_unlock(&mu);
	free(fresh);
	return e;
}

int ctx_signal_stop(ctx_chan_t *ch)
{
	if (!ch)
		return EINVAL;
	pthread_once(&once, init); /* the mutex's fork handlers */
	pthread_mutex_lock(&mu);
	struct reg **p = reg_of(ch), *r = *p;
	if (r) {
		*p = r->next;
		unhook(&r->set);
	}
	pthread_mutex_unlock(&mu);
	free(r);
	return 0;
}
