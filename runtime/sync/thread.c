/*
 * Threads that carry a context, and a join that a context can interrupt.
 *
 * The pthread is joinable.  When fn returns, the thread drops its
 * reference to the context, records the result and wakes a joiner parked
 * on it.  ctx_thread_join waits for that (cancellably), then reaps the
 * pthread with pthread_join, which by then only waits for the thread's
 * last instructions.  A join the context interrupts leaves the thread
 * joinable.  A detached thread frees its handle itself when fn returns.
 *
 * A thread joining itself gets EDEADLK, as from pthread_join.  With
 * CTX_DEBUG=checks a handle used after it was joined or detached (its
 * magic poisoned) aborts with a message; with CTX_DEBUG=leaks, handles
 * never joined or detached are listed at exit.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "wait/wait.h"

struct ctx_thread {
	uint32_t magic;         /* CTX__MAGIC_THREAD; poisoned once freed */
	pthread_t tid;
	ctx_t *ctx;
	void *(*fn)(ctx_t *ctx, void *arg);
	void *arg;
	void *result;
	ctx__lock_t lock;
	bool finished;          /* fn returned; under lock */
	bool detached;          /* under lock */
	bool known;             /* started under the manual clock */
	struct ctx__waitq joiners;
	struct ctx__track track; /* the creating site; leak registry */
};

/* The handle is done with: joined, or detached and finished. */
static void free_handle(ctx_thread_t *t)
{
	ctx__track_del(&t->track);
	ctx__retire(t, sizeof(*t));
}

/* Under checks: abort unless t is a live handle. */
static void check_handle(ctx_thread_t *t, const char *fn)
{
	if (t->magic == CTX__MAGIC_THREAD)
		return;
	if (t->magic == CTX__DEAD)
		ctx__misuse(fn, "thread handle used after it was joined or "
			    "detached (joined or detached twice?)", NULL, 0);
	ctx__misuse(fn, "not a thread handle (a stray or corrupt pointer)",
		    NULL, 0);
}

/* A thread started under the manual clock is known to it from before
 * its creation until it has woken its joiners (wait/clock.c). */
static void *thread_main(void *p)
{
	ctx_thread_t *t = p;
	bool known = t->known;
	if (known)
		ctx__clock_adopt();
	void *res = t->fn(t->ctx, t->arg);
	struct ctx__wakeups w = { 0 };
	ctx_unref(t->ctx);
	ctx__lock(&t->lock);
	t->result = res;
	t->finished = true;
	bool detached = t->detached;
	ctx__waitq_finish_all(&t->joiners, 0, &w);
	ctx__unlock(&t->lock);
	ctx__wakeups_flush(&w); /* t may be gone: the joiner frees it */
	if (detached)
		free_handle(t);
	if (known)
		ctx__clock_leave();
	return NULL;
}

/* A detached pthread could never be reaped by ctx_thread_join, and
 * ctx_thread_detach is how a handle lets go: refuse detached attributes. */
static bool joinable(const pthread_attr_t *attr)
{
	int state;
	return !attr || (!pthread_attr_getdetachstate(attr, &state) &&
			 state == PTHREAD_CREATE_JOINABLE);
}

int ctx_thread_create_attr(ctx_thread_t **out, const pthread_attr_t *attr,
			   ctx_t *ctx, void *(*fn)(ctx_t *ctx, void *arg),
			   void *arg)
{
	struct ctx__track track = { 0 };
	ctx__site_take(&track.file, &track.line); /* also when refused */
	if (!out || !ctx || !fn || !joinable(attr))
		return EINVAL;
	ctx_thread_t *t = ctx__malloc(sizeof(*t));
	if (!t)
		return ENOMEM;
	*t = (ctx_thread_t){ .magic = CTX__MAGIC_THREAD, .ctx = ctx_ref(ctx),
			     .fn = fn, .arg = arg, .track = track };
	ctx__waitq_init(&t->joiners);
	ctx__track_add(&t->track); /* before the thread may free t */
	t->known = ctx__clock_spawning();
	int e = pthread_create(&t->tid, attr, thread_main, t);
	if (e) {
		if (t->known)
			ctx__clock_unspawn();
		ctx_unref(t->ctx);
		free_handle(t);
		return e;
	}
	*out = t;
	return 0;
}

int ctx_thread_create(ctx_thread_t **out, ctx_t *ctx,
		      void *(*fn)(ctx_t *ctx, void *arg), void *arg)
{
	return ctx_thread_create_attr(out, NULL, ctx, fn, arg);
}

/* Wait, cancellably, until fn has returned: the skeleton of every
 * blocking call (wait/call.h), the try looking at the handle under its
 * lock and queueing the thread to park until thread_main finishes. */
struct join_call {
	struct ctx__call c;     /* first: the try casts it back */
	ctx_thread_t *t;
	bool locked;            /* the try took t->lock */
	struct ctx__waitq_node me;
};

static int join_try(struct ctx__call *c)
{
	struct join_call *k = (struct join_call *)c;
	if (!k->locked) {
		ctx__lock(&k->t->lock);
		k->locked = true;
	} else { /* after a wake-up: out of the queue, if still in it */
		ctx__waitq_del(&k->t->joiners, &k->me);
	}
	if (k->t->finished)
		return CTX__DONE;
	ctx__waitq_push(&k->t->joiners, &k->me);
	return CTX__AGAIN;
}

static int wait_finished(ctx_t *ctx, ctx_thread_t *t)
{
	struct join_call k = {
		.c = { .try = join_try, .fd = -1, .lock = &t->lock,
		       .deadline = CTX__NEVER },
		.t = t,
	};
	int e = ctx__call_run(ctx, &k.c);
	if (!k.locked)
		return e; /* refused: nothing tried */
	ctx__waitq_del(&t->joiners, &k.me);
	if (t->finished)
		e = 0; /* it finished as the context ended: the join wins */
	ctx__unlock(&t->lock);
	return e;
}

/* Refuse a join of a detached handle, or of the calling thread. */
static int joinable_by_me(ctx_thread_t *t)
{
	ctx__lock(&t->lock);
	bool detached = t->detached;
	ctx__unlock(&t->lock);
	if (detached) {
		if (CTX__CHECKING())
			ctx__misuse("ctx_thread_join", "thread handle joined "
				    "after ctx_thread_detach", t->track.file,
				    t->track.line);
		return EINVAL;
	}
	if (!pthread_equal(t->tid, pthread_self()))
		return 0;
	if (CTX__CHECKING()) /* reported, but as in every mode not fatal */
		fprintf(stderr, "libctx: ctx_thread_join: a thread joining "
			"itself would wait forever: EDEADLK (created at "
			"%s:%d)\n", t->track.file ? t->track.file :
			"(unknown)", t->track.line);
	return EDEADLK;
}

int ctx_thread_join(ctx_t *ctx, ctx_thread_t *t, void **result)
{
	if (!ctx || !t)
		return EINVAL;
	if (CTX__CHECKING())
		check_handle(t, __func__);
	int e = joinable_by_me(t);
	if (e)
		return e;
	/* A context that can never end needs no parking: join directly;
	 * but under the manual clock the join is a durable block, which
	 * only the parking wait reports (wait/clock.c). */
	if ((ctx__node(ctx) || ctx__clock_is_manual()) &&
	    (e = wait_finished(ctx, t)))
		return e;
	pthread_join(t->tid, NULL);
	if (result)
		*result = t->result;
	CTX_ASSERT(t->finished && ctx__waitq_empty(&t->joiners));
	free_handle(t);
	return 0;
}

int ctx_thread_detach(ctx_thread_t *t)
{
	if (!t)
		return EINVAL;
	if (CTX__CHECKING())
		check_handle(t, __func__);
	ctx__lock(&t->lock);
	bool finished = t->finished, again = t->detached;
	if (!again) {
		/* No longer the program's to join: not a leak.  Under the
		 * lock, since once detached the thread may free t. */
		ctx__track_del(&t->track);
		t->detached = true;
		pthread_detach(t->tid);
	}
	ctx__unlock(&t->lock);
	if (again && CTX__CHECKING())
		ctx__misuse(__func__, "thread handle detached twice",
			    t->track.file, t->track.line);
	if (again)
		return EINVAL;
	if (finished)
		free_handle(t);
	return 0;
}
