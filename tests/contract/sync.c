/*
 * Contract rows: runtime/sync/ -- ctx_thread_join, ctx_wg_wait,
 * ctx_group_go at the group's limit, ctx_chan_send and ctx_chan_recv
 * (rendezvous and buffered), ctx_select (a channel case, a descriptor
 * case), ctx_cond_wait, ctx_cond_wait_until and ctx_sem_acquire.
 *
 * Kept means: the thread is still joinable, the counter is as it was,
 * the function never ran, no element moved (a parked peer still waits,
 * a buffer holds what it held, the receiver's element is untouched), the
 * mutex is held on every return, the semaphore is whole.
 */
#include <poll.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../contract.h"

#define HOUR (3600 * CTX_SEC)
#define UNTOUCHED (-1)   /* a receiver's element before any receive */
#define PARK_MS 20       /* a new peer is parked by now, most likely */

struct st {
	/* a thread to join */
	ctx_thread_t *t;
	sem_t go;
	atomic_int finished;
	void *res;
	bool joined;
	/* a wait group, a group */
	ctx_wg_t *wg;
	pthread_mutex_t lock;
	ctx_chan_t *gate;       /* the group's first function waits on it */
	bool open;              /* ready: the gate is to be open */
	atomic_int ran;         /* the second function ran */
	/* channels and select */
	ctx_chan_t *ch;
	int got;                /* what the call received */
	int taken;              /* what ready took from a full channel */
	pthread_t peer;
	bool peer_started;
	atomic_int peer_done;
	int peer_val, peer_err;
	int pipe[2];
	struct ctx_case cs[2];
	/* a condition variable */
	ctx_cond_t cond;
	pthread_mutex_t m;
	bool predicate;
	int not_held;           /* returns without the mutex held */
	/* a semaphore */
	ctx_sem_t *sem;
};

/* ---- ctx_thread_join ------------------------------------------------------ */

static void *joinee(ctx_t *ctx, void *arg)
{
	struct st *s = arg;

	(void)ctx;
	while (sem_wait(&s->go) != 0)
		;
	atomic_store(&s->finished, 1);
	return s;
}

static void join_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	ck_assert_int_eq(sem_init(&s->go, 0, 0), 0);
	atomic_init(&s->finished, 0);
	ck_assert_int_eq(ctx_thread_create(&s->t, ctx_background(), joinee, s),
			 0);
}

static int join_ready(void *v)
{
	struct st *s = v;

	return sem_post(&s->go) ? errno : 0;
}

/* Past fn's return, into the thread's exit. */
static void join_settle(void *v)
{
	struct st *s = v;

	while (!atomic_load(&s->finished))
		tu_sleep_ns(CTX_MSEC);
	tu_sleep_ns(10 * CTX_MSEC);
}

static long join_call(ctx_t *c, void *v)
{
	struct st *s = v;
	int e = ctx_thread_join(c, s->t, &s->res);

	s->joined |= e == 0;
	return e;
}

static void join_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_eq(s->res, s);
}

/* The result untouched; the thread still there to join. */
static void join_kept(void *v)
{
	struct st *s = v;

	ck_assert_ptr_null(s->res);
	ck_assert_int_eq(join_call(ctx_background(), v), 0);
	ck_assert_ptr_eq(s->res, s);
}

static void join_teardown(void *v)
{
	struct st *s = v;

	if (!s->joined) {
		sem_post(&s->go);
		ctx_thread_join(ctx_background(), s->t, NULL);
	}
	sem_destroy(&s->go);
}

/* ---- ctx_wg_wait ------------------------------------------------------------ */

static void wg_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	s->wg = ctx_wg_new();
	ck_assert_ptr_nonnull(s->wg);
	ctx_wg_add(s->wg, 1);
}

static int wg_ready(void *v)
{
	struct st *s = v;

	ctx_wg_done(s->wg);
	return 0;
}

static long wg_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_wg_wait(c, s->wg);
}

static void returned_0(void *v, long rc)
{
	(void)v;
	ck_assert_int_eq(rc, 0);
}

/* The counter as it was: at zero now, not below. */
static void wg_kept(void *v)
{
	ck_assert_int_eq(wg_call(ctx_background(), v), 0);
}

static void wg_teardown(void *v)
{
	struct st *s = v;

	ctx_wg_free(s->wg);
}

/* ---- ctx_group_go at the limit ---------------------------------------------- */

/* Holds the group's one slot until its gate opens. */
static int hold_slot(ctx_t *ctx, void *arg)
{
	int x;

	(void)ctx;
	return ctx_chan_recv(ctx_background(), arg, &x) == EPIPE ? 0 : EIO;
}

static int count_run(ctx_t *ctx, void *arg)
{
	struct st *s = arg;

	(void)ctx;
	atomic_fetch_add(&s->ran, 1);
	return 0;
}

static void group_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->ran, 0);
}

/* Open the gate of the call's group, or of the next one. */
static int group_ready(void *v)
{
	struct st *s = v;

	pthread_mutex_lock(&s->lock);
	s->open = true;
	if (s->gate)
		ctx_chan_close(s->gate);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void set_gate(struct st *s, ctx_chan_t *gate)
{
	pthread_mutex_lock(&s->lock);
	s->gate = gate;
	if (gate && s->open)
		ctx_chan_close(gate);
	pthread_mutex_unlock(&s->lock);
}

/*
 * A group of c, limited to one function, whose slot hold_slot takes:
 * the second ctx_group_go waits for the slot, or for the group's context
 * (c's child) to end.  A group of a done context still runs a function
 * that has a slot (test_group_done_parent), so the first go succeeds
 * even then.
 */
static long group_call(ctx_t *c, void *v)
{
	struct st *s = v;
	ctx_group_t *g = ctx_group_new(c);
	ctx_chan_t *gate = ctx_chan_new(sizeof(int), 0);

	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(gate);
	set_gate(s, gate);
	ck_assert_int_eq(ctx_group_set_limit(g, 1), 0);
	ck_assert_int_eq(ctx_group_go(g, hold_slot, gate), 0);
	int e = ctx_group_go(g, count_run, s);
	ctx_chan_close(gate);
	ck_assert_int_eq(ctx_group_wait(g), 0);
	ctx_group_free(g);
	set_gate(s, NULL);
	ctx_chan_free(gate);
	return e;
}

static void group_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(atomic_load(&s->ran), 1);
}

static void group_kept(void *v)
{
	struct st *s = v;

	ck_assert_msg(atomic_load(&s->ran) == 0, "a refused function ran");
}

static void group_teardown(void *v)
{
	struct st *s = v;

	pthread_mutex_destroy(&s->lock);
}

/* ---- channels ------------------------------------------------------------- */

static void *peer_send(void *arg)
{
	struct st *s = arg;

	s->peer_err = ctx_chan_send(ctx_background(), s->ch, &s->peer_val);
	atomic_store(&s->peer_done, 1);
	return NULL;
}

static void *peer_recv(void *arg)
{
	struct st *s = arg;

	s->peer_err = ctx_chan_recv(ctx_background(), s->ch, &s->peer_val);
	atomic_store(&s->peer_done, 1);
	return NULL;
}

static int peer_start(struct st *s, void *(*fn)(void *))
{
	int e = pthread_create(&s->peer, NULL, fn, s);

	s->peer_started = e == 0;
	return e;
}

static void peer_join(struct st *s)
{
	ck_assert_int_eq(pthread_join(s->peer, NULL), 0);
	s->peer_started = false;
	ck_assert_int_eq(s->peer_err, 0);
}

static void chan_setup(void *v, int cap)
{
	struct st *s = v;

	s->ch = ctx_chan_new(sizeof(int), (size_t)cap);
	ck_assert_ptr_nonnull(s->ch);
	atomic_init(&s->peer_done, 0);
	s->got = s->taken = UNTOUCHED;
	s->pipe[0] = s->pipe[1] = -1;
	if (cap) /* full */
		for (int i = 0; i < cap; i++)
			ck_assert_int_eq(ctx_chan_try_send(s->ch, &i), 0);
}

static void park_settle(void *v)
{
	(void)v;
	tu_sleep_ns(PARK_MS * CTX_MSEC);
}

/* The element a sender moves. */
static long send_call(ctx_t *c, void *v)
{
	struct st *s = v;
	int x = 42;

	return ctx_chan_send(c, s->ch, &x);
}

/* Rendezvous: a receiver comes. */
static int recv_peer_ready(void *v)
{
	struct st *s = v;

	s->peer_val = UNTOUCHED;
	return peer_start(s, peer_recv);
}

static void send_peer_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	peer_join(s);
	ck_assert_int_eq(s->peer_val, 42);
}

/* The receiver got nothing of the refused sends: it still waits, and
 * the next send is the one it gets. */
static void send_peer_kept(void *v)
{
	struct st *s = v;
	int x = 7;

	tu_sleep_ns(10 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&s->peer_done), 0);
	ck_assert_int_eq(ctx_chan_send(ctx_background(), s->ch, &x), 0);
	peer_join(s);
	ck_assert_int_eq(s->peer_val, 7);
}

/* Buffered and full: room is made. */
static int take_ready(void *v)
{
	struct st *s = v;

	return ctx_chan_try_recv(s->ch, &s->taken);
}

static void send_room_check(void *v, long rc)
{
	struct st *s = v;
	int x;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(s->taken, 0);
	ck_assert_int_eq(ctx_chan_try_recv(s->ch, &x), 0);
	ck_assert_int_eq(x, 42);
}

static void send_room_kept(void *v)
{
	struct st *s = v;
	int x;

	ck_assert_int_eq(s->taken, 0);
	ck_assert_uint_eq(ctx_chan_len(s->ch), 0);
	ck_assert_int_eq(ctx_chan_try_recv(s->ch, &x), EAGAIN);
}

static long recv_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_chan_recv(c, s->ch, &s->got);
}

/* Rendezvous: a sender comes. */
static int send_peer_ready(void *v)
{
	struct st *s = v;

	s->peer_val = 9;
	return peer_start(s, peer_send);
}

static void recv_peer_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(s->got, 9);
	peer_join(s);
}

/* The refused receives wrote nothing and took nothing: the sender still
 * waits, and the next receive gets its element. */
static void recv_peer_kept(void *v)
{
	struct st *s = v;
	int x;

	ck_assert_int_eq(s->got, UNTOUCHED);
	tu_sleep_ns(10 * CTX_MSEC);
	ck_assert_int_eq(atomic_load(&s->peer_done), 0);
	ck_assert_int_eq(ctx_chan_recv(ctx_background(), s->ch, &x), 0);
	ck_assert_int_eq(x, 9);
	peer_join(s);
}

/* Buffered and empty: an element is put in. */
static int put_ready(void *v)
{
	struct st *s = v;
	int x = 9;

	return ctx_chan_try_send(s->ch, &x);
}

static void recv_put_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(s->got, 9);
	ck_assert_uint_eq(ctx_chan_len(s->ch), 0);
}

static void recv_put_kept(void *v)
{
	struct st *s = v;
	int x;

	ck_assert_int_eq(s->got, UNTOUCHED);
	ck_assert_int_eq(ctx_chan_try_recv(s->ch, &x), 0);
	ck_assert_int_eq(x, 9);
	ck_assert_int_eq(ctx_chan_try_recv(s->ch, &x), EAGAIN);
}

static void chan_teardown(void *v)
{
	struct st *s = v;

	ctx_chan_close(s->ch); /* a peer still waiting returns */
	if (s->peer_started)
		pthread_join(s->peer, NULL);
	ctx_chan_free(s->ch);
	if (s->pipe[0] >= 0) {
		close(s->pipe[0]);
		close(s->pipe[1]);
	}
}

/* ---- ctx_select ------------------------------------------------------------- */

/* A receive on a buffered channel, and a channel that is never ready. */
static void select_chan_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	s->ch = ctx_chan_new(sizeof(int), 1);
	ck_assert_ptr_nonnull(s->ch);
	s->got = s->taken = UNTOUCHED;
	s->pipe[0] = s->pipe[1] = -1;
	s->cs[0] = (struct ctx_case){ .kind = CTX_CASE_RECV, .ch = s->ch,
				      .elem = &s->got, .fd = -1 };
	s->cs[1] = (struct ctx_case){ .kind = CTX_CASE_RECV, .ch = NULL,
				      .elem = &s->taken, .fd = -1 };
}

/* A receive on a rendezvous channel, and a pipe's read end. */
static void select_fd_setup(void *v, int arg)
{
	struct st *s = v;

	chan_setup(v, 0);
	ck_assert_int_eq(pipe(s->pipe), 0);
	s->cs[0] = (struct ctx_case){ .kind = CTX_CASE_RECV, .ch = s->ch,
				      .elem = &s->got, .fd = -1 };
	s->cs[1] = (struct ctx_case){ .kind = CTX_CASE_FD, .fd = s->pipe[0],
				      .events = POLLIN };
	(void)arg;
}

/* arg: the select's own timeout, none or an hour (the context ends
 * first). */
static long select_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_select(c, s->cs, 2, s->pipe[0] >= 0 ? HOUR : -1);
}

static void select_chan_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(s->cs[0].result, 0);
	ck_assert_int_eq(s->got, 9);
	ck_assert_int_eq(s->taken, UNTOUCHED);
	ck_assert_uint_eq(ctx_chan_len(s->ch), 0);
}

static int byte_ready(void *v)
{
	struct st *s = v;

	return write(s->pipe[1], "x", 1) == 1 ? 0 : errno;
}

static void select_fd_check(void *v, long rc)
{
	struct st *s = v;
	int x = 1;

	ck_assert_int_eq(rc, 1);
	ck_assert(s->cs[1].revents & POLLIN);
	ck_assert_int_eq(s->got, UNTOUCHED);
	/* The receive it did not choose is not left queued. */
	ck_assert_int_eq(ctx_chan_try_send(s->ch, &x), EAGAIN);
}

static void select_fd_kept(void *v)
{
	struct st *s = v;
	char b;
	int x = 1;

	ck_assert_int_eq(s->got, UNTOUCHED);
	ck_assert_int_eq(ctx_chan_try_send(s->ch, &x), EAGAIN);
	ck_assert_int_eq(read(s->pipe[0], &b, 1), 1);
	ck_assert_int_eq(b, 'x');
}

/* ---- ctx_cond_wait, ctx_cond_wait_until --------------------------------------- */

static void cond_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	s->cond = (ctx_cond_t)CTX_COND_INIT;
	pthread_mutex_init(&s->m, NULL);
}

/* The predicate comes true, under the mutex, with a signal. */
static int cond_ready(void *v)
{
	struct st *s = v;

	pthread_mutex_lock(&s->m);
	s->predicate = true;
	ctx_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->m);
	return 0;
}

/* The wait as a program writes it, in a loop on the predicate (a wait
 * may return 0 spuriously); the mutex must be held on every return. */
static long cond_wait(ctx_t *c, struct st *s, int64_t deadline)
{
	int e = 0;

	pthread_mutex_lock(&s->m);
	while (!s->predicate && e == 0) {
		e = deadline ? ctx_cond_wait_until(c, &s->cond, &s->m, deadline)
			     : ctx_cond_wait(c, &s->cond, &s->m);
		s->not_held += pthread_mutex_trylock(&s->m) != EBUSY;
	}
	pthread_mutex_unlock(&s->m);
	return e;
}

static long cond_call(ctx_t *c, void *v)
{
	return cond_wait(c, v, 0);
}

static long cond_until_call(ctx_t *c, void *v)
{
	return cond_wait(c, v, ctx_now() + HOUR);
}

static void cond_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(s->not_held, 0);
}

static void cond_check(void *v, long rc)
{
	ck_assert_int_eq(rc, 0);
	cond_kept(v);
}

static void cond_teardown(void *v)
{
	struct st *s = v;

	pthread_mutex_destroy(&s->m);
}

/* ---- ctx_sem_acquire ----------------------------------------------------------- */

/* Size 3, all held by the test; the call asks for 2. */
static void sem_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	s->sem = ctx_sem_new(3);
	ck_assert_ptr_nonnull(s->sem);
	ck_assert(ctx_sem_try_acquire(s->sem, 3));
}

static int sem_ready(void *v)
{
	struct st *s = v;

	ctx_sem_release(s->sem, 3);
	return 0;
}

static long sem_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sem_acquire(c, s->sem, 2);
}

static void sem_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert(ctx_sem_try_acquire(s->sem, 1));
	ck_assert(!ctx_sem_try_acquire(s->sem, 1));
	ctx_sem_release(s->sem, 3);
}

/* A refused acquire took nothing: the whole size is free. */
static void sem_kept(void *v)
{
	struct st *s = v;

	ck_assert(ctx_sem_try_acquire(s->sem, 3));
	ctx_sem_release(s->sem, 3);
}

static void sem_teardown(void *v)
{
	struct st *s = v;

	ctx_sem_free(s->sem);
}

/* ---- the rows ------------------------------------------------------------------ */

#define ROW .style = CT_RETURN, .size = sizeof(struct st),                  \
	.flags = CT_NOT_PARTIAL
#define SELECT .style = CT_ERRNO, .size = sizeof(struct st),              \
	.flags = CT_NOT_PARTIAL, .teardown = chan_teardown, .call = select_call
#define CHAN .setup = chan_setup, .teardown = chan_teardown

const struct ct_row ct_rows_sync[] = {
	{ .name = "ctx_thread_join", ROW, .setup = join_setup,
	  .ready = join_ready, .settle = join_settle, .call = join_call,
	  .check = join_check, .kept = join_kept, .teardown = join_teardown },
	{ .name = "ctx_wg_wait", ROW, .setup = wg_setup, .ready = wg_ready,
	  .call = wg_call, .check = returned_0, .kept = wg_kept,
	  .teardown = wg_teardown },
	{ .name = "ctx_group_go at the group's limit", .style = CT_RETURN,
	  .size = sizeof(struct st), .setup = group_setup,
	  .ready = group_ready, .call = group_call, .check = group_check,
	  .kept = group_kept, .teardown = group_teardown,
	  .flags = CT_NOT_PARTIAL | CT_DONE_WAITING },
	{ .name = "ctx_chan_send on a rendezvous channel", ROW, CHAN,
	  .ready = recv_peer_ready, .settle = park_settle, .call = send_call,
	  .check = send_peer_check, .kept = send_peer_kept },
	{ .name = "ctx_chan_send on a full channel", .arg = 1, ROW, CHAN,
	  .ready = take_ready, .call = send_call, .check = send_room_check,
	  .kept = send_room_kept },
	{ .name = "ctx_chan_recv on a rendezvous channel", ROW, CHAN,
	  .ready = send_peer_ready, .settle = park_settle, .call = recv_call,
	  .check = recv_peer_check, .kept = recv_peer_kept },
	{ .name = "ctx_chan_recv on an empty buffered channel", .arg = 0, ROW,
	  .setup = select_chan_setup, .teardown = chan_teardown,
	  .ready = put_ready, .call = recv_call, .check = recv_put_check,
	  .kept = recv_put_kept },
	{ .name = "ctx_select on a channel", SELECT, .setup = select_chan_setup,
	  .ready = put_ready, .check = select_chan_check,
	  .kept = recv_put_kept },
	{ .name = "ctx_select on a channel and a descriptor, with a timeout "
		  "of an hour", SELECT, .setup = select_fd_setup,
	  .ready = byte_ready, .check = select_fd_check,
	  .kept = select_fd_kept },
	{ .name = "ctx_cond_wait", .style = CT_RETURN,
	  .size = sizeof(struct st), .setup = cond_setup,
	  .ready = cond_ready, .call = cond_call, .check = cond_check,
	  .kept = cond_kept, .teardown = cond_teardown,
	  .flags = CT_NOT(CT_READY) | CT_NOT_PARTIAL | CT_DONE_WAITING },
	{ .name = "ctx_cond_wait_until an hour from now", .style = CT_RETURN,
	  .size = sizeof(struct st), .setup = cond_setup,
	  .ready = cond_ready, .call = cond_until_call, .check = cond_check,
	  .kept = cond_kept, .teardown = cond_teardown,
	  .flags = CT_NOT(CT_READY) | CT_NOT_PARTIAL | CT_DONE_WAITING },
	{ .name = "ctx_sem_acquire", ROW, .setup = sem_setup,
	  .ready = sem_ready, .call = sem_call, .check = sem_check,
	  .kept = sem_kept, .teardown = sem_teardown },
	{ .name = NULL },
};
