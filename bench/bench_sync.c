/*
 * bench_sync: libctx's channels and threads beside the plain pthread
 * equivalents, in one process; the implementations of each scenario take
 * turns, and each turn is a rep.
 *
 *   pingpong/capC[/PLACE]     two threads, two channels of capacity C (0
 *       or 1): the main thread sends on A, the peer receives and sends on
 *       B, the main thread receives on B.  Every round trip is timed
 *       (p50, p99 of each turn of 2,500, after 250 untimed).  Impls:
 *       libctx, condvar (the queue below), libctx-cancelctx (every libctx
 *       call under a ctx_with_cancel context, never cancelled, as a
 *       program that wants its channel operations cancellable has).
 *   throughput/capC[/PLACE]   one producer, one consumer, 1,000,000
 *       8-byte elements (50,000 with --quick), capacity 0/1/64/1024:
 *       elements per second from both threads' start to the last
 *       element.  Free placement: 3 runs in turn; pinned: one.  A run
 *       that outlasts its budget (1.5 s free, 1 s pinned; 0.2 s and 0.1 s
 *       with --quick) stops early and is rated over the elements that
 *       moved (a comment line gives each run's count).
 *   thread_create_join[/onecpu]  ns per create + join of a thread whose
 *       function returns its argument: pthread_create + pthread_join
 *       (pthread), ctx_thread_create + ctx_thread_join(background)
 *       (libctx), and the join under a ctx_with_cancel context
 *       (libctx-cancelctx: it parks on the thread's wait queue first).
 *       Each rep is a batch of creates, the variants in turn.
 *
 * Placement (PLACE): whether two threads share a CPU changes a hand-off's
 * cost several-fold (on a VM, waking an idle vCPU can take ~50 us), and
 * the scheduler decides it.  Rows without a PLACE leave it to the
 * scheduler, and a comment line says how often the threads ran on one
 * CPU; onecpu pins both threads to one CPU, twocpus each to its own.
 *
 * Every scenario checks that what it timed happened: every element
 * arrived once, in order, with its value; every channel is empty after;
 * every thread ran and its join returned its argument.
 */
#include "ctx.h"
#include "benchutil.h"

/* Element i of a stream: distinct, not a plain counter, so that a
 * stale or misplaced element cannot pass for the right one. */
static inline uint64_t elem(uint64_t i)
{
	return i * 0x9E3779B97F4A7C15ull + 1;
}

/* ---- the baseline: a bounded queue on a mutex and two condvars -------
 *
 * Capacity >= 1: a ring buffer.  A side waits on its condvar only while
 * the ring is full (sender) or empty (receiver); the other side signals
 * only when someone waits (counted under the mutex), and after unlocking,
 * so the woken thread does not run into a held mutex.
 *
 * Capacity 0: a rendezvous with handoff, with ctx_chan's semantics (a
 * send returns once a receiver took the element).  One slot; a receiver
 * that has to wait registers a "claim".  A sender that deposits while an
 * unused claim exists hands the element to that committed receiver and
 * returns at once, as ctx_chan does when it finds a parked receiver;
 * otherwise it waits until its element is taken.  (A waiting receiver
 * cannot back out here, so a claim is a promise to take the next
 * element; should a fresh receiver take it first, the element is still
 * taken, which is all the sender was promised.)  This is the minimum
 * number of sleeps: one per side per round trip in a ping-pong.
 */
struct cvq {
	pthread_mutex_t mu;
	pthread_cond_t can_recv, can_send;
	size_t cap, head, len;
	int recv_waiting, send_waiting;
	uint64_t *buf;
	/* capacity 0 */
	bool full;
	int claims;               /* waiting receivers not yet handed to */
	uint64_t slot, deposited, taken;
};

static struct cvq *cvq_new(size_t cap)
{
	struct cvq *q = calloc(1, sizeof(*q));

	if (!q)
		bench_fail("out of memory");
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->can_recv, NULL);
	pthread_cond_init(&q->can_send, NULL);
	q->cap = cap;
	if (cap && !(q->buf = malloc(cap * sizeof(uint64_t))))
		bench_fail("out of memory");
	return q;
}

static void cvq_free(struct cvq *q)
{
	pthread_cond_destroy(&q->can_recv);
	pthread_cond_destroy(&q->can_send);
	pthread_mutex_destroy(&q->mu);
	free(q->buf);
	free(q);
}

static void cvq_send0(struct cvq *q, uint64_t v)
{
	bool wake_recv;

	pthread_mutex_lock(&q->mu);
	while (q->full) { /* another sender's element is in the slot */
		q->send_waiting++;
		pthread_cond_wait(&q->can_send, &q->mu);
		q->send_waiting--;
	}
	q->slot = v;
	q->full = true;
	uint64_t mine = ++q->deposited;
	wake_recv = q->recv_waiting > 0;
	if (q->claims > 0) { /* a committed receiver takes it */
		q->claims--;
		pthread_mutex_unlock(&q->mu);
		if (wake_recv)
			pthread_cond_signal(&q->can_recv);
		return;
	}
	if (wake_recv) /* a receiver whose claim went elsewhere */
		pthread_cond_signal(&q->can_recv);
	while (q->taken < mine) {
		q->send_waiting++;
		pthread_cond_wait(&q->can_send, &q->mu);
		q->send_waiting--;
	}
	pthread_mutex_unlock(&q->mu);
}

static uint64_t cvq_recv0(struct cvq *q)
{
	bool wake_send;
	uint64_t v;

	pthread_mutex_lock(&q->mu);
	if (!q->full) {
		q->claims++;
		q->recv_waiting++;
		do
			pthread_cond_wait(&q->can_recv, &q->mu);
		while (!q->full);
		q->recv_waiting--;
	}
	v = q->slot;
	q->full = false;
	q->taken++;
	/* Wake both the sender waiting for this take and any waiting for
	 * the slot; with one sender this is one thread. */
	wake_send = q->send_waiting > 0;
	pthread_mutex_unlock(&q->mu);
	if (wake_send)
		pthread_cond_broadcast(&q->can_send);
	return v;
}

static void cvq_send(struct cvq *q, uint64_t v)
{
	bool wake;

	if (!q->cap) {
		cvq_send0(q, v);
		return;
	}
	pthread_mutex_lock(&q->mu);
	while (q->len == q->cap) {
		q->send_waiting++;
		pthread_cond_wait(&q->can_send, &q->mu);
		q->send_waiting--;
	}
	size_t i = q->head + q->len++;
	q->buf[i >= q->cap ? i - q->cap : i] = v;
	wake = q->recv_waiting > 0;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		pthread_cond_signal(&q->can_recv);
}

static uint64_t cvq_recv(struct cvq *q)
{
	bool wake;
	uint64_t v;

	if (!q->cap)
		return cvq_recv0(q);
	pthread_mutex_lock(&q->mu);
	while (q->len == 0) {
		q->recv_waiting++;
		pthread_cond_wait(&q->can_recv, &q->mu);
		q->recv_waiting--;
	}
	v = q->buf[q->head];
	q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
	q->len--;
	wake = q->send_waiting > 0;
	pthread_mutex_unlock(&q->mu);
	if (wake)
		pthread_cond_signal(&q->can_send);
	return v;
}

/* Nothing left behind and nobody waiting. */
static bool cvq_idle(struct cvq *q)
{
	bool idle;

	pthread_mutex_lock(&q->mu);
	idle = q->len == 0 && !q->full && q->recv_waiting == 0 &&
	       q->send_waiting == 0 && q->claims == 0 &&
	       q->deposited == q->taken;
	pthread_mutex_unlock(&q->mu);
	return idle;
}

/* ---- one channel, either kind ---------------------------------------- */

enum kind { LIBCTX, CONDVAR };

static const char *const kind_name[] = { "libctx", "condvar" };

struct q {
	enum kind kind;
	ctx_t *ctx; /* libctx: the context of every call */
	ctx_chan_t *ch;
	struct cvq *cv;
};

static void q_open(struct q *q, enum kind kind, ctx_t *ctx, size_t cap)
{
	*q = (struct q){ .kind = kind, .ctx = ctx };
	if (kind == CONDVAR) {
		q->cv = cvq_new(cap);
	} else if (!(q->ch = ctx_chan_new(sizeof(uint64_t), cap))) {
		bench_fail("ctx_chan_new: %s", strerror(errno));
	}
}

/* Check that nothing is left in the channel, then free it. */
static void q_close(struct q *q, const char *what)
{
	if (q->kind == CONDVAR) {
		if (!cvq_idle(q->cv))
			bench_fail("%s: condvar queue not empty after run",
				   what);
		cvq_free(q->cv);
		return;
	}
	uint64_t v;
	int e;

	ctx_chan_close(q->ch);
	if ((e = ctx_chan_recv(q->ctx, q->ch, &v)) != EPIPE)
		bench_fail("%s: receive after close gave %d (%s), not EPIPE",
			   what, e, e ? strerror(e) : "an element");
	ctx_chan_free(q->ch);
}

static inline void q_send(struct q *q, uint64_t v)
{
	if (q->kind == CONDVAR) {
		cvq_send(q->cv, v);
		return;
	}
	int e = ctx_chan_send(q->ctx, q->ch, &v);
	if (e)
		bench_fail("ctx_chan_send: %s", ctx_strerror(e));
}

static inline uint64_t q_recv(struct q *q)
{
	if (q->kind == CONDVAR)
		return cvq_recv(q->cv);
	uint64_t v;
	int e = ctx_chan_recv(q->ctx, q->ch, &v);
	if (e)
		bench_fail("ctx_chan_recv: %s", ctx_strerror(e));
	return v;
}

/* ---- placement ---------------------------------------------------------
 *
 * PL_FREE leaves the threads where the scheduler puts them.  PL_ONECPU
 * pins both to one CPU, PL_TWOCPUS each to its own: the two extremes
 * that a free run mixes.
 */
enum place { PL_FREE, PL_ONECPU, PL_TWOCPUS, PL_N };

static const char *const place_sfx[PL_N] = { "", "/onecpu", "/twocpus" };

static bool place_possible(enum place pl)
{
	return pl != PL_TWOCPUS || cpu_b >= 0;
}

/* Pin the main thread for placement pl; *peer is what a second thread
 * gets (NULL: no constraint). */
static void place_main(enum place pl, cpu_set_t *peer_set,
		       const cpu_set_t **peer)
{
	*peer = NULL;
	bench_pin(pl == PL_FREE ? -1 : cpu_a);
	if (pl == PL_FREE)
		return;
	CPU_ZERO(peer_set);
	CPU_SET(pl == PL_ONECPU ? cpu_a : cpu_b, peer_set);
	*peer = peer_set;
}

static pthread_t start_thread(void *(*fn)(void *), void *arg,
			      const cpu_set_t *cpus)
{
	pthread_attr_t attr;
	pthread_t t;
	int e;

	pthread_attr_init(&attr);
	if (cpus && (e = pthread_attr_setaffinity_np(&attr, sizeof(*cpus),
						     cpus)))
		bench_fail("pthread_attr_setaffinity_np: %s", strerror(e));
	if ((e = pthread_create(&t, &attr, fn, arg)))
		bench_fail("pthread_create: %s", strerror(e));
	pthread_attr_destroy(&attr);
	return t;
}

/* ---- 1. ping-pong ----------------------------------------------------- */

struct pingpong {
	struct q a, b;
	uint64_t rounds;   /* warm-up included */
	atomic_int peer_cpu; /* where the peer ran when it last received */
};

static void *pingpong_peer(void *p)
{
	struct pingpong *pp = p;

	for (uint64_t i = 0; i < pp->rounds; i++) {
		uint64_t v = q_recv(&pp->a);
		if (v != elem(i))
			bench_fail("ping-pong: peer got %llu in round %llu",
				   (unsigned long long)v,
				   (unsigned long long)i);
		atomic_store_explicit(&pp->peer_cpu, sched_getcpu(),
				      memory_order_relaxed);
		q_send(&pp->b, ~v);
	}
	return NULL;
}

/* Round-trip times of `measured` rounds after `warm` untimed ones, into
 * rtt.  Returns how many timed rounds had both threads on one CPU. */
static uint64_t pingpong_run(enum kind kind, ctx_t *ctx, size_t cap,
			     enum place pl, uint64_t warm, uint64_t measured,
			     double *rtt)
{
	struct pingpong pp = { .rounds = warm + measured };
	const cpu_set_t *peer_cpus;
	cpu_set_t peer_set;
	uint64_t same = 0;
	pthread_t peer;

	place_main(pl, &peer_set, &peer_cpus);
	q_open(&pp.a, kind, ctx, cap);
	q_open(&pp.b, kind, ctx, cap);
	peer = start_thread(pingpong_peer, &pp, peer_cpus);
	for (uint64_t i = 0; i < pp.rounds; i++) {
		int64_t t0 = bench_now();
		q_send(&pp.a, elem(i));
		uint64_t v = q_recv(&pp.b);
		int64_t t1 = bench_now();
		if (v != ~elem(i))
			bench_fail("ping-pong: got %llu back in round %llu",
				   (unsigned long long)v,
				   (unsigned long long)i);
		if (i >= warm) {
			rtt[i - warm] = (double)(t1 - t0);
			/* The peer's store came before its send on B. */
			same += atomic_load_explicit(&pp.peer_cpu,
						     memory_order_relaxed) ==
				sched_getcpu();
		}
	}
	pthread_join(peer, NULL);
	q_close(&pp.a, "ping-pong");
	q_close(&pp.b, "ping-pong");
	place_main(PL_FREE, &peer_set, &peer_cpus);
	return same;
}

enum { PP_LIBCTX, PP_CONDVAR, PP_CANCEL, PP_N, PP_CHUNKS = 8 };
static const char *const pp_name[PP_N] = { "libctx", "condvar",
					   "libctx-cancelctx" };

/* The three variants of one capacity and placement, chunk by chunk in
 * turn; each chunk is a rep. */
static void pingpong_rows(size_t cap, enum place pl, ctx_t *cctx,
			  uint64_t warm, uint64_t chunk, double *rtt[PP_N])
{
	uint64_t same[PP_N] = { 0 };
	char name[64];

	snprintf(name, sizeof(name), "pingpong/cap%zu%s", cap, place_sfx[pl]);
	if (!bench_wanted(name))
		return;
	for (int c = 0; c < PP_CHUNKS; c++)
		for (int k = 0; k < PP_N; k++)
			same[k] += pingpong_run(
				k == PP_CONDVAR ? CONDVAR : LIBCTX,
				k == PP_CANCEL ? cctx : ctx_background(), cap,
				pl, warm, chunk, rtt[k] + c * chunk);
	for (int k = 0; k < PP_N; k++)
		bench_dist(name, pp_name[k], rtt[k], (int)(chunk * PP_CHUNKS),
			   PP_CHUNKS, "ns");
	if (pl != PL_FREE)
		return;
	printf("# %s: both threads on one CPU in", name);
	for (int k = 0; k < PP_N; k++)
		printf("%s %.0f%% (%s)", k ? "," : "",
		       100.0 * (double)same[k] / (double)(chunk * PP_CHUNKS),
		       pp_name[k]);
	printf(" of round trips\n");
}

static void bench_pingpong(void)
{
	uint64_t warm = B.quick ? 50 : 250;
	uint64_t n = B.quick ? 1000 : 20000, chunk = n / PP_CHUNKS;
	double *rtt[PP_N];
	ctx_t *cctx = ctx_with_cancel(ctx_background());

	if (!cctx)
		bench_fail("out of memory");
	for (int k = 0; k < PP_N; k++)
		rtt[k] = bench_alloc(n * sizeof(double));
	if (!place_possible(PL_TWOCPUS))
		printf("# ping-pong: one CPU available: no twocpus rows\n");
	for (size_t cap = 0; cap <= 1; cap++)
		for (int pl = 0; pl < PL_N; pl++)
			if (place_possible((enum place)pl))
				pingpong_rows(cap, (enum place)pl, cctx, warm,
					      chunk, rtt);
	ctx_release(cctx);
	for (int k = 0; k < PP_N; k++)
		free(rtt[k]);
}

/* ---- 2. throughput ----------------------------------------------------
 *
 * A run moves n elements unless it outlasts its time budget: then the
 * consumer raises `stop`, the producer announces the count it will have
 * sent (`final`) and sends one last element, and the rate is taken over
 * the elements that moved (the output says how many).  Where a wake-up
 * crosses CPUs at ~50 us (seen on 2-vCPU VMs), a rendezvous moves ~20,000
 * elements a second and 1,000,000 would take most of a minute.
 */

struct stream {
	struct q q;
	uint64_t n;
	pthread_barrier_t start;
	atomic_bool stop;      /* consumer -> producer: wind down */
	atomic_ullong final;   /* producer -> consumer: 0, or the count */
	atomic_int prod_cpu;   /* where the producer last sent from */
};

static void *producer(void *p)
{
	struct stream *s = p;

	pthread_barrier_wait(&s->start);
	for (uint64_t i = 0; i < s->n; i++) {
		if (atomic_load_explicit(&s->stop, memory_order_relaxed)) {
			/* Published before the send that carries it. */
			atomic_store_explicit(&s->final, i + 1,
					      memory_order_relaxed);
			q_send(&s->q, elem(i));
			break;
		}
		if ((i & 255) == 0)
			atomic_store_explicit(&s->prod_cpu, sched_getcpu(),
					      memory_order_relaxed);
		q_send(&s->q, elem(i));
	}
	return NULL;
}

struct stream_result {
	double rate;     /* elements per second */
	uint64_t moved;  /* elements received */
	double same_cpu; /* share of samples with both threads on one CPU */
};

/* One run; the main thread consumes. */
static struct stream_result stream_run(enum kind kind, size_t cap,
				       enum place pl, uint64_t n,
				       int64_t budget_ns)
{
	struct stream s = { .n = n };
	uint64_t i = 0, end = n, samples = 0, same = 0;
	const cpu_set_t *prod_cpus;
	cpu_set_t prod_set;
	bool stopping = false;
	pthread_t prod;
	int64_t t0, t1;

	place_main(pl, &prod_set, &prod_cpus);
	q_open(&s.q, kind, ctx_background(), cap);
	pthread_barrier_init(&s.start, NULL, 2);
	prod = start_thread(producer, &s, prod_cpus);
	pthread_barrier_wait(&s.start);
	t0 = bench_now();
	while (i < end) {
		uint64_t v = q_recv(&s.q);
		if (v != elem(i))
			bench_fail("throughput: element %llu is %llu, not "
				   "%llu", (unsigned long long)i,
				   (unsigned long long)v,
				   (unsigned long long)elem(i));
		i++;
		if ((i & 1023) == 0) {
			samples++;
			same += atomic_load_explicit(&s.prod_cpu,
						     memory_order_relaxed) ==
				sched_getcpu();
			if (!stopping && bench_now() - t0 > budget_ns) {
				stopping = true;
				atomic_store_explicit(&s.stop, true,
						      memory_order_relaxed);
			}
		}
		if (stopping) {
			uint64_t f = atomic_load_explicit(
				&s.final, memory_order_relaxed);
			if (f)
				end = f;
		}
	}
	t1 = bench_now();
	pthread_join(prod, NULL);
	/* The producer is gone: what it announced is what it sent. */
	uint64_t f = atomic_load(&s.final);
	if (i != (f ? f : n))
		bench_fail("throughput: received %llu, producer sent %llu",
			   (unsigned long long)i,
			   (unsigned long long)(f ? f : n));
	pthread_barrier_destroy(&s.start);
	q_close(&s.q, "throughput");
	place_main(PL_FREE, &prod_set, &prod_cpus);
	return (struct stream_result){
		.rate = (double)i * 1e9 / (double)(t1 - t0),
		.moved = i,
		.same_cpu = samples ? (double)same / (double)samples : 0,
	};
}

/* The rows of one capacity and placement. */
static void throughput_rows(size_t cap, enum place pl, uint64_t n, int runs,
			    int64_t budget)
{
	struct stream_result res[2][8];
	char name[64];

	snprintf(name, sizeof(name), "throughput/cap%zu%s", cap,
		 place_sfx[pl]);
	if (!bench_wanted(name))
		return;
	for (int r = 0; r < runs; r++)
		for (int k = LIBCTX; k <= CONDVAR; k++)
			res[k][r] = stream_run((enum kind)k, cap, pl, n,
					       budget);
	for (int k = LIBCTX; k <= CONDVAR; k++) {
		printf("# %s %s: run%s moved", name, kind_name[k],
		       runs > 1 ? "s" : "");
		for (int r = 0; r < runs; r++) {
			printf(" %llu (%.0f/s", (unsigned long long)
			       res[k][r].moved, res[k][r].rate);
			if (pl == PL_FREE)
				printf(", one CPU %.0f%%",
				       100 * res[k][r].same_cpu);
			printf(")");
		}
		printf("\n");
	}
	for (int k = LIBCTX; k <= CONDVAR; k++)
		for (int r = 0; r < runs; r++)
			bench_row(name, "rate", kind_name[k], r + 1,
				  res[k][r].rate, "elem/s");
}

static void bench_throughput(void)
{
	static const size_t caps[] = { 0, 1, 64, 1024 };
	uint64_t n = B.quick ? 50000 : 1000000;
	int runs = B.quick ? 1 : 3;
	int64_t budget = B.quick ? 200 * CTX_MSEC : 1500 * CTX_MSEC;
	int64_t pinned_budget = B.quick ? 100 * CTX_MSEC : CTX_SEC;

	printf("# throughput: up to %llu elements of 8 bytes, 1 producer, "
	       "1 consumer; free placement: %d run%s of at most %.2f s, "
	       "variants in turn; pinned: 1 run of at most %.2f s\n",
	       (unsigned long long)n, runs, runs > 1 ? "s" : "",
	       (double)budget / 1e9, (double)pinned_budget / 1e9);
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
		for (int pl = 0; pl < PL_N; pl++)
			if (place_possible((enum place)pl))
				throughput_rows(caps[c], (enum place)pl, n,
						pl == PL_FREE ? runs : 1,
						pl == PL_FREE ? budget
							      : pinned_budget);
}

/* ---- 3. thread create + join ------------------------------------------ */

static atomic_ulong thread_runs;
static atomic_int thread_cpu; /* where the last thread's fn ran */

static void *ctx_fn(ctx_t *ctx, void *arg)
{
	(void)ctx;
	atomic_store_explicit(&thread_cpu, sched_getcpu(),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&thread_runs, 1, memory_order_relaxed);
	return arg;
}

static void *pthread_fn(void *arg)
{
	atomic_store_explicit(&thread_cpu, sched_getcpu(),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&thread_runs, 1, memory_order_relaxed);
	return arg;
}

enum tvariant { T_PTHREAD, T_LIBCTX, T_LIBCTX_CANCEL, T_N };

/* One create + join of variant v; returns the ns it took and counts in
 * *same whether fn ran on the CPU its joiner came back on. */
static int64_t create_join(enum tvariant v, ctx_t *cctx, int i, long *same)
{
	void *arg = (void *)(uintptr_t)(0x1000 + i), *res = NULL;
	int64_t t0 = bench_now(), t1;
	int e;

	if (v == T_PTHREAD) {
		pthread_t t;
		if ((e = pthread_create(&t, NULL, pthread_fn, arg)))
			bench_fail("pthread_create: %s", strerror(e));
		if ((e = pthread_join(t, &res)))
			bench_fail("pthread_join: %s", strerror(e));
	} else {
		ctx_t *jctx = v == T_LIBCTX ? ctx_background() : cctx;
		ctx_thread_t *t;
		/* Created under the background context in both libctx
		 * rows, so that they differ by the join alone. */
		if ((e = ctx_thread_create(&t, ctx_background(), ctx_fn,
					   arg)))
			bench_fail("ctx_thread_create: %s", strerror(e));
		if ((e = ctx_thread_join(jctx, t, &res)))
			bench_fail("ctx_thread_join: %s", ctx_strerror(e));
	}
	t1 = bench_now();
	if (res != arg)
		bench_fail("thread %d returned %p, not %p", i, res, arg);
	/* The join ordered the thread's store before this load. */
	*same += atomic_load_explicit(&thread_cpu, memory_order_relaxed) ==
		 sched_getcpu();
	return t1 - t0;
}

/* A batch: n create + join of every variant, taken in turn (A B C A B
 * C ...) so that all see the same machine.  ns[v]: mean ns of variant v. */
static void threads_batch(ctx_t *cctx, int n, double *ns, long *same)
{
	int64_t sum[T_N] = { 0 };
	unsigned long runs0 = atomic_load(&thread_runs);

	for (int i = 0; i < n; i++)
		for (int v = 0; v < T_N; v++)
			sum[v] += create_join((enum tvariant)v, cctx, i,
					      &same[v]);
	if (atomic_load(&thread_runs) - runs0 != (unsigned long)n * T_N)
		bench_fail("%lu threads ran, not %d",
			   atomic_load(&thread_runs) - runs0, n * T_N);
	for (int v = 0; v < T_N; v++)
		ns[v] = (double)sum[v] / n;
}

/* The rows of one placement, each batch a rep.  Threads inherit their
 * creator's CPUs, so PL_ONECPU puts every thread on the main thread's
 * CPU; PL_TWOCPUS cannot be had through ctx_thread_create, which takes
 * no attributes. */
static void threads_rows(enum place pl, ctx_t *cctx)
{
	static const char *const variant[T_N] = { "pthread", "libctx",
						  "libctx-cancelctx" };
	int batches = B.quick ? 3 : 9, n = B.quick ? 200 : 2000;
	long same[T_N] = { 0 }, warm[T_N] = { 0 };
	const cpu_set_t *unused;
	cpu_set_t peer_set;
	double batch[T_N];
	char name[64];

	snprintf(name, sizeof(name), "thread_create_join%s", place_sfx[pl]);
	if (!bench_wanted(name))
		return;
	place_main(pl, &peer_set, &unused);
	/* Warm glibc's stack cache, and make the joiner's reactor. */
	threads_batch(cctx, n / 10, batch, warm);
	for (int i = 0; i < batches; i++) {
		threads_batch(cctx, n, batch, same);
		for (int v = 0; v < T_N; v++)
			bench_row(name, "mean", variant[v], i + 1, batch[v],
				  "ns");
	}
	place_main(PL_FREE, &peer_set, &unused);
	if (pl == PL_FREE)
		printf("# thread_create_join: fn ran on its joiner's CPU in "
		       "%.0f%% (pthread), %.0f%% (libctx), %.0f%% (libctx "
		       "cancelctx) of joins\n",
		       100.0 * (double)same[T_PTHREAD] / (batches * n),
		       100.0 * (double)same[T_LIBCTX] / (batches * n),
		       100.0 * (double)same[T_LIBCTX_CANCEL] / (batches * n));
}

static void bench_threads(void)
{
	ctx_t *cctx = ctx_with_cancel(ctx_background());

	if (!cctx)
		bench_fail("out of memory");
	printf("# threads: a batch is %d create+join of each variant, in "
	       "turn\n", B.quick ? 200 : 2000);
	threads_rows(PL_FREE, cctx);
	threads_rows(PL_ONECPU, cctx);
	ctx_release(cctx);
}

int main(int argc, char **argv)
{
	int64_t t0 = bench_now();

	bench_init(argc, argv);
	bench_cpus_init();
	bench_print_machine("bench_sync: channels and threads");
	printf("# libctx backend: %s\n", ctx_backend());
	bench_pingpong();
	bench_throughput();
	bench_threads();
	printf("# run took %.1f s\n", (double)(bench_now() - t0) / 1e9);
	return 0;
}
