/*
 * bench_select: the waits of issue 13 beside what they replace.
 *
 *   bench/bench_select [--quick]
 *
 * Rows ("name,ns_per_op,min,max", the median of several timed runs):
 *   cond_pingpong/{libctx,pthread}  a round trip between two threads on
 *       one mutex and one condition variable (ctx_cond_t under the
 *       background context, pthread_cond_t)
 *   sem_uncontended/{libctx,posix}  acquire 1 + release 1, one thread
 *       (ctx_sem_t of size 1, sem_wait/sem_post)
 *   sem_contended4x2/{libctx,posix} four threads, size 2, each acquire,
 *       a few dozen instructions, release (ns per acquire+release over
 *       all threads)
 *   select_2ready/libctx  ctx_select over two ready buffered channels
 *       (timeout 0), then a try_send refilling the one chosen; Go's
 *       BenchmarkSelectTwoReady in bench/go does the same
 *   fanin8/{select,8receivers}  8 senders; one receiver selecting over
 *       8 channels (capacity 64), against 8 receivers on one channel of
 *       capacity 64 (ns per element)
 * Every row checks what it did: round trips completed, counts right,
 * no element lost.
 */
#include <semaphore.h>

#include "ctx.h"
#include "benchutil.h"

/* ---- condition variable ping-pong ------------------------------------ */

struct pp {
	pthread_mutex_t m;
	pthread_cond_t pc;
	ctx_cond_t cc;
	int turn;
	bool lib;
	uint64_t n;
};

static void pp_wait(struct pp *p)
{
	if (p->lib)
		ctx_cond_wait(ctx_background(), &p->cc, &p->m);
	else
		pthread_cond_wait(&p->pc, &p->m);
}

static void pp_signal(struct pp *p)
{
	if (p->lib)
		ctx_cond_signal(&p->cc);
	else
		pthread_cond_signal(&p->pc);
}

static void *pp_peer(void *arg)
{
	struct pp *p = arg;
	for (uint64_t i = 0; i < p->n; i++) {
		pthread_mutex_lock(&p->m);
		while (p->turn != 1)
			pp_wait(p);
		p->turn = 0;
		pp_signal(p);
		pthread_mutex_unlock(&p->m);
	}
	return NULL;
}

static void pp_run(void *arg, int tid, uint64_t n)
{
	struct pp *p = arg;
	pthread_t t;
	(void)tid;
	p->n = n;
	p->turn = 0;
	if (pthread_create(&t, NULL, pp_peer, p))
		bench_fail("pthread_create");
	for (uint64_t i = 0; i < n; i++) {
		pthread_mutex_lock(&p->m);
		p->turn = 1;
		pp_signal(p);
		while (p->turn != 0)
			pp_wait(p);
		pthread_mutex_unlock(&p->m);
	}
	pthread_join(t, NULL);
	if (p->turn != 0)
		bench_fail("ping-pong: a round trip did not complete");
}

/* ---- semaphores --------------------------------------------------------- */

struct semb {
	bool lib;
	ctx_sem_t *s;
	sem_t ps;
	_Atomic int inside, over;
};

static void sem_run(void *arg, int tid, uint64_t n)
{
	struct semb *b = arg;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		if (b->lib) {
			if (ctx_sem_acquire(ctx_background(), b->s, 1))
				bench_fail("ctx_sem_acquire");
		} else {
			while (sem_wait(&b->ps))
				;
		}
		if (atomic_fetch_add_explicit(&b->inside, 1,
					      memory_order_relaxed) >= 2)
			atomic_store(&b->over, 1);
		for (volatile int k = 0; k < 20; k++)
			;
		atomic_fetch_sub_explicit(&b->inside, 1, memory_order_relaxed);
		if (b->lib)
			ctx_sem_release(b->s, 1);
		else
			sem_post(&b->ps);
	}
}

/* ---- select over two ready channels ------------------------------------ */

struct sel2 {
	ctx_chan_t *ch[2];
	int v[2];
	struct ctx_case cs[2];
	uint64_t hits[2];
};

static void sel2_run(void *arg, int tid, uint64_t n)
{
	struct sel2 *s = arg;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		int got = ctx_select(ctx_background(), s->cs, 2, 0);
		if (got < 0 || s->cs[got].result)
			bench_fail("select_2ready: nothing was ready");
		s->hits[got]++;
		if (ctx_chan_try_send(s->ch[got], &s->v[got]))
			bench_fail("select_2ready: refill");
	}
}

/* ---- fan-in ------------------------------------------------------------- */

#define FAN 8
struct fan {
	ctx_chan_t *ch[FAN];
	uint64_t n;
	bool one; /* every sender on ch[0] */
	_Atomic uint64_t received, sum;
};

struct fan_arg { struct fan *f; int id; };

static void *fan_sender(void *p)
{
	struct fan_arg *a = p;
	ctx_chan_t *ch = a->f->ch[a->f->one ? 0 : a->id];
	for (uint64_t i = 1; i <= a->f->n; i++)
		if (ctx_chan_send(ctx_background(), ch, &i))
			bench_fail("fan-in: send");
	return NULL;
}

static void *fan_receiver(void *p)
{
	struct fan *f = p;
	uint64_t v, count = 0, sum = 0;
	while (ctx_chan_recv(ctx_background(), f->ch[0], &v) == 0) {
		count++;
		sum += v;
	}
	atomic_fetch_add(&f->received, count);
	atomic_fetch_add(&f->sum, sum);
	return NULL;
}

static void fan_select(struct fan *f)
{
	uint64_t v[FAN], count = 0, sum = 0;
	struct ctx_case cs[FAN];
	int open = FAN;
	for (int i = 0; i < FAN; i++)
		cs[i] = (struct ctx_case){ .kind = CTX_CASE_RECV,
					   .ch = f->ch[i], .elem = &v[i],
					   .fd = -1 };
	while (open > 0) {
		int got = ctx_select(ctx_background(), cs, FAN, -1);
		if (got < 0)
			bench_fail("fan-in: select");
		if (cs[got].result == EPIPE) {
			cs[got].ch = NULL; /* never ready again */
			open--;
			continue;
		}
		count++;
		sum += v[got];
	}
	f->received = count;
	f->sum = sum;
}

static void fan_run(void *arg, int tid, uint64_t n)
{
	struct fan *f = arg;
	pthread_t s[FAN], r[FAN];
	struct fan_arg a[FAN];
	(void)tid;
	f->n = n;
	f->received = f->sum = 0;
	for (int i = 0; i < FAN; i++)
		if (!(f->ch[i] = ctx_chan_new(sizeof(uint64_t), 64)))
			bench_fail("ctx_chan_new");
	for (int i = 0; i < FAN; i++) {
		a[i] = (struct fan_arg){ f, i };
		if (pthread_create(&s[i], NULL, fan_sender, &a[i]) ||
		    pthread_create(&r[i], NULL, fan_receiver, f))
			bench_fail("pthread_create");
	}
	for (int i = 0; i < FAN; i++)
		pthread_join(s[i], NULL);
	ctx_chan_close(f->ch[0]);
	for (int i = 0; i < FAN; i++)
		pthread_join(r[i], NULL);
	if (f->received != FAN * n || f->sum != FAN * (n * (n + 1) / 2))
		bench_fail("fan-in: %llu of %llu elements",
			   (unsigned long long)f->received,
			   (unsigned long long)(FAN * n));
	for (int i = 0; i < FAN; i++)
		ctx_chan_free(f->ch[i]);
}

/* The select variant's senders close their own channel when done, so
 * that the receiver knows when all are. */
static void *fan_sender_close(void *p)
{
	struct fan_arg *a = p;
	fan_sender(p);
	ctx_chan_close(a->f->ch[a->id]);
	return NULL;
}

static void fan_select_run(void *arg, int tid, uint64_t n)
{
	struct fan *f = arg;
	pthread_t s[FAN];
	struct fan_arg a[FAN];
	(void)tid;
	f->n = n;
	for (int i = 0; i < FAN; i++)
		if (!(f->ch[i] = ctx_chan_new(sizeof(uint64_t), 64)))
			bench_fail("ctx_chan_new");
	for (int i = 0; i < FAN; i++) {
		a[i] = (struct fan_arg){ f, i };
		if (pthread_create(&s[i], NULL, fan_sender_close, &a[i]))
			bench_fail("pthread_create");
	}
	fan_select(f);
	for (int i = 0; i < FAN; i++)
		pthread_join(s[i], NULL);
	if (f->received != FAN * n || f->sum != FAN * (n * (n + 1) / 2))
		bench_fail("fan-in: %llu of %llu elements",
			   (unsigned long long)f->received,
			   (unsigned long long)(FAN * n));
	for (int i = 0; i < FAN; i++)
		ctx_chan_free(f->ch[i]);
}

int main(int argc, char **argv)
{
	struct bench b;
	bench_init(&b, argc, argv);
	bench_print_machine("bench_select");
	printf("# libctx backend: %s\n", ctx_backend());

	static struct pp pp[2];
	for (int i = 0; i < 2; i++) {
		pp[i] = (struct pp){ .m = PTHREAD_MUTEX_INITIALIZER,
				     .pc = PTHREAD_COND_INITIALIZER,
				     .cc = CTX_COND_INIT, .lib = i == 0 };
	}
	bench_measure(&b, &(struct bench_spec){ "cond_pingpong/libctx", pp_run, &pp[0], 1, 1 });
	bench_measure(&b, &(struct bench_spec){ "cond_pingpong/pthread", pp_run, &pp[1], 1, 1 });

	static struct semb sb[4];
	sb[0] = (struct semb){ .lib = true, .s = ctx_sem_new(1) };
	sb[1] = (struct semb){ .lib = false };
	sem_init(&sb[1].ps, 0, 1);
	sb[2] = (struct semb){ .lib = true, .s = ctx_sem_new(2) };
	sb[3] = (struct semb){ .lib = false };
	sem_init(&sb[3].ps, 0, 2);
	if (!sb[0].s || !sb[2].s)
		bench_fail("ctx_sem_new");
	bench_measure(&b, &(struct bench_spec){ "sem_uncontended/libctx", sem_run, &sb[0], 1, 1 });
	bench_measure(&b, &(struct bench_spec){ "sem_uncontended/posix", sem_run, &sb[1], 1, 1 });
	bench_measure(&b, &(struct bench_spec){ "sem_contended4x2/libctx", sem_run, &sb[2], 4, 1 });
	bench_measure(&b, &(struct bench_spec){ "sem_contended4x2/posix", sem_run, &sb[3], 4, 1 });
	for (int i = 0; i < 4; i++)
		if (atomic_load(&sb[i].over))
			bench_fail("semaphore: more than its size inside");
	if (!ctx_sem_try_acquire(sb[2].s, 2))
		bench_fail("semaphore: tokens not all back");

	static struct sel2 s2;
	for (int i = 0; i < 2; i++) {
		s2.ch[i] = ctx_chan_new(sizeof(int), 1);
		s2.v[i] = i;
		if (!s2.ch[i] || ctx_chan_try_send(s2.ch[i], &s2.v[i]))
			bench_fail("select_2ready: set-up");
		s2.cs[i] = (struct ctx_case){ .kind = CTX_CASE_RECV,
					      .ch = s2.ch[i],
					      .elem = &s2.v[i], .fd = -1 };
	}
	bench_measure(&b, &(struct bench_spec){ "select_2ready/libctx", sel2_run, &s2, 1, 1 });
	double share = (double)s2.hits[0] / (double)(s2.hits[0] + s2.hits[1]);
	printf("# select_2ready: case 0 chosen %.3f of the time\n", share);
	if (share < 0.45 || share > 0.55)
		bench_fail("select_2ready: choice not uniform (%.3f)", share);

	static struct fan f1, f2;
	f2.one = true;
	bench_measure(&b, &(struct bench_spec){ "fanin8/select", fan_select_run, &f1, 1, FAN });
	bench_measure(&b, &(struct bench_spec){ "fanin8/8receivers", fan_run, &f2, 1, FAN });
	return 0;
}
