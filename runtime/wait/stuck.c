/*
 * CTX_DEBUG=stuck[=MS]: "why is my shutdown hanging?"  When a context
 * ends, every thread still under it MS later (1000 by default) -- one
 * that libctx started under it (ctx_thread_create, ctx_wg_go, groups),
 * or one waiting in libctx under it -- is reported once on stderr, with
 * how the context ended and what the thread is doing: the libctx call
 * it waits in, or outside libctx the system call it sits in with its
 * descriptor described, or "running".
 *
 * Every cancellation calls the core's end hook with the node it began
 * at (core.h), once its walk is done, in the thread that cancelled.  The
 * hook looks through the registry (wait.h) for a thread under the node,
 * and only if it finds one queues the node, with a reference, for a
 * check MS later: the queue holds no context that nobody was under, so
 * CTX_DEBUG=leaks,stuck reports no leak of its own making.  A library
 * thread ("ctx-stuck") sleeps until the first check is due; checks are
 * due in the order the ends came, so the queue is a FIFO.  A check
 * copies the records of the threads under the node (with references,
 * ctx__record_snap) under the registry's lock, and with no lock held
 * reports them and lets the copies go.  Each end is checked once, so a
 * thread is reported once for it.
 *
 * The hook is set when the first thread registers (reactor.c): until
 * then no thread is known, and none could be reported.  The deadlines
 * of contexts are enforced by the timer thread in this mode (context.c),
 * so that a deadline's end comes when it is due even if nobody looks.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "wait/wait.h"

struct end {
	struct end *next;
	ctx_t *n;            /* the node the end began at; a reference */
	int64_t due;         /* CLOCK_MONOTONIC, real time */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static struct end *head, **tail = &head;
static int pending;
static bool running;
static _Atomic int out_fd = 2; /* stderr; a test's pipe (ctx__stuck_set) */

static int stuck_ms(void)
{
	return atomic_load_explicit(&ctx__debug_stuck_ms, memory_order_relaxed);
}

static int64_t delay(void)
{
	return (int64_t)stuck_ms() * CTX_MSEC;
}

/* ---- the report --------------------------------------------------------- */

struct snaps {
	struct ctx__snap v[128];
	size_t n;
	ctx_t *node;
};

/* Under the registry's lock: a copy of each thread under the node. */
static void collect(struct ctx__record *rec, void *arg)
{
	struct snaps *s = arg;
	if (s->n < sizeof(s->v) / sizeof(s->v[0]) &&
	    ctx__record_within(rec, s->node))
		ctx__record_snap(rec, &s->v[s->n++]);
}

/* One thread: who, how it came under the node, what it does. */
static void thread_text(const struct ctx__snap *s, ctx_t *node,
			struct ctx__text *t)
{
	char name[64], now[512];
	bool started = s->under && ctx__descends(s->under, node);
	ctx__text_add(t, "libctx: stuck:   thread %d \"%s\"%s: ", s->tid,
		      ctx__task_name(s->tid, name, sizeof(name)),
		      started ? ", started by libctx under it" : "");
	if (s->waiting)
		ctx__text_add(t, "in %s%s, for %.3f s\n",
			      s->call ? s->call : "a libctx call",
			      s->ctx && ctx__descends(s->ctx, node) ?
				      " under it" : " (under another context)",
			      (double)(ctx__now_coarse() - s->since) / CTX_SEC);
	else
		ctx__text_add(t, "outside libctx: %s\n",
			      ctx__describe_task(s->tid, now, sizeof(now)));
}

static void report(struct snaps *s, struct ctx__text *t)
{
	ctx__text_add(t, "libctx: stuck: %d ms after a context ended (",
		      stuck_ms());
	ctx__end_text(s->node, t);
	ctx__text_add(t, "), %zu thread%s still under it:\n", s->n,
		      s->n == 1 ? " is" : "s are");
	ctx__text_add(t, "libctx: stuck:   the context: ");
	ctx__node_text(s->node, t);
	ctx__text_add(t, "\n");
	for (size_t i = 0; i < s->n; i++)
		thread_text(&s->v[i], s->node, t);
}

static void check(ctx_t *node)
{
	struct snaps *s = calloc(1, sizeof(*s));
	struct ctx__text t = { 0 };
	if (!s)
		return;
	s->node = node;
	ctx__registry_each(collect, s);
	if (s->n)
		report(s, &t);
	if (t.buf && write(atomic_load(&out_fd), t.buf, t.len) < 0)
		t.oom = true; /* nowhere to say it: nothing more to do */
	for (size_t i = 0; i < s->n; i++)
		ctx__snap_put(&s->v[i]);
	ctx__text_free(&t);
	free(s);
}

/* ---- the queue and its thread ------------------------------------------ */

static void stuck_state(char *buf, size_t len)
{
	pthread_mutex_lock(&mu);
	snprintf(buf, len, "%d ends to look at, %d ms after each", pending,
		 stuck_ms());
	pthread_mutex_unlock(&mu);
}

static const struct ctx__service stuck_service = {
	.name = "ctx-stuck",
	.serves = "reports threads still under ended contexts "
		  "(CTX_DEBUG=stuck)",
	.state = stuck_state,
};

/* Under mu: the first end once it is due. */
static struct end *next_due(void)
{
	for (;;) {
		int64_t now = ctx__clock_real();
		if (head && head->due <= now)
			break;
		struct timespec ts = { .tv_sec = head ? head->due / CTX_SEC : 0,
				       .tv_nsec = head ? head->due % CTX_SEC :
							 0 };
		if (head)
			pthread_cond_timedwait(&cv, &mu, &ts);
		else
			pthread_cond_wait(&cv, &mu);
	}
	struct end *e = head;
	if (!(head = e->next))
		tail = &head;
	pending--;
	return e;
}

static void *stuck_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct end *e = next_due();
		pthread_mutex_unlock(&mu);
		check(e->n);
		ctx_unref(e->n);
		free(e);
		pthread_mutex_lock(&mu);
	}
	return NULL;
}

struct look {
	ctx_t *n;
	bool found;
};

static void look(struct ctx__record *rec, void *arg)
{
	struct look *l = arg;
	l->found = l->found || ctx__record_within(rec, l->n);
}

/* The end hook (core.h): queue n if a thread is under it now. */
static void on_end(ctx_t *n)
{
	struct look l = { .n = n };
	ctx__registry_each(look, &l);
	struct end *e = l.found ? malloc(sizeof(*e)) : NULL;
	if (!e)
		return;
	*e = (struct end){ .n = ctx_ref(n),
			   .due = ctx__add_sat(ctx__clock_real(), delay()) };
	pthread_mutex_lock(&mu);
	*tail = e;
	tail = &e->next;
	pending++;
	if (!running)
		running = !ctx__spawn(&stuck_service, stuck_main, NULL,
				      CTX__STACK_SMALL);
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

/* At exit nothing hangs any more: the ends still queued are dropped,
 * before CTX_DEBUG=leaks's report (registered earlier, so run later)
 * could take the queue's references for the program's. */
static void drop_queue(void)
{
	pthread_mutex_lock(&mu);
	struct end *e = head;
	head = NULL;
	tail = &head;
	pending = 0;
	pthread_mutex_unlock(&mu);
	while (e) {
		struct end *next = e->next;
		ctx_unref(e->n);
		free(e);
		e = next;
	}
}

/* ---- turning it on -------------------------------------------------------- */

static void before_fork(void) { pthread_mutex_lock(&mu); }
static void after_fork_parent(void) { pthread_mutex_unlock(&mu); }

/* The thread stayed behind, and with it the ends it would look at.  The
 * child's one thread holds the lock the fork took, and gives it back. */
static void after_fork_child(void)
{
	head = NULL;
	tail = &head;
	pending = 0;
	running = false;
	pthread_mutex_unlock(&mu);
}

static void init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &a);
	pthread_condattr_destroy(&a);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	atexit(drop_queue);
}

void ctx__stuck_start(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (!stuck_ms())
		return;
	pthread_once(&once, init);
	atomic_store_explicit(&ctx__end_hook, on_end, memory_order_relaxed);
}

void ctx__stuck_set(int ms, int fd)
{
	atomic_store(&ctx__debug_stuck_ms, ms > 0 ? ms : 0);
	atomic_store(&out_fd, fd >= 0 ? fd : 2);
	if (ms > 0)
		ctx__stuck_start();
	else
		atomic_store_explicit(&ctx__end_hook, NULL,
				      memory_order_relaxed);
}
