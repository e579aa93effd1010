/*
 * bench_impls: the context implementations of impl.h -- libctx, the
 * condvar approach, std::stop_token, nsync and the kernel floor -- side by
 * side.  Each scenario is written once, over the table; a scenario that
 * needs an operation an implementation lacks (nsync cannot read) leaves
 * that one out, and so does one whose meaning does not fit it (the floor
 * has no tree: no create rows).  The implementations of a scenario take
 * turns round by round (A B A B ...), so that what the machine does
 * meanwhile falls on all of them alike; the rounds are reported in blocks
 * (rep 1, 2, ...), each block beside the same block of the others.
 *
 *  wake/<cpus>/<op>   cancel -> wake of one thread blocked in a sleep
 *                     (1 h), a wait, a read (empty pipe) or a join (of a
 *                     thread that does not finish): from just before the
 *                     cancel to just after the call returned.  samecpu:
 *                     both threads on the first allowed CPU; crosscpu: the
 *                     waiter on the second; unpinned: neither (wait only).
 *                     A polling read is cancelled at a random moment of
 *                     its slice, and takes part in one round of 20.
 *  stopread           a thread blocked in read on a silent TCP socket for
 *                     a random 1..21 ms is cancelled; until its read
 *                     returns.  Nothing pinned.
 *  fanout/<N>         N threads wait on one context, one cancel, until the
 *                     last is back; each round is a rep.  libctx-child:
 *                     each waiter in ctx_read on its own silent socket
 *                     under its own child of the cancelled context.
 *  fanout-idle/<N>    the same after the CPUs went idle: the canceller
 *                     sleeps 20 ms once all are asleep; libctx-child on
 *                     pipes against condvar's broadcast, the floor's
 *                     one eventfd write (floor-child), and an eventfd
 *                     per waiter written one by one (floor-each).
 *  lateness/<d>/<how> a sleep of d, and a wait on a context whose deadline
 *                     is d away: how late the call returned.
 *  hotpath/<fd>       ns per 1-byte read with the data already there; the
 *                     floor is read(2), and preadv2(RWF_NOWAIT), what
 *                     ctx_read tries first, is shown beside it.
 *  create/<what>      create + cancel + release of contexts, ns per op.
 *  idle               1,000 threads, each blocked in read on its own silent
 *                     socket under its own child of one root, for 1 s
 *                     (--quick: 0.1 s): CPU the process burned and its
 *                     context switches per second; then one cancel of the
 *                     root until the last thread is back (stop_all).
 *  bytes/, fds/       heap bytes and descriptors per live context.
 *  rest               up to 10,000 threads (64 KiB stacks) as in idle, in
 *                     a process of their own; the far ends of the sockets
 *                     in a keeper process: RSS and descriptors per thread,
 *                     CPU at rest, stop_all and per_thread (stop_all over
 *                     the threads; fanout prints it too), three rounds
 *                     with fresh contexts.  The condvar side runs at most
 *                     500 threads per CPU: each polls 100 times a second.
 *  sweep/<op>/T=<t>   WithCancel (child of a shared parent: create, cancel,
 *                     release) and Err (of a shared context) on t threads
 *                     at once, ns per operation per thread.
 *
 * Before any wake-up every waiter is seen asleep in a waiting system call
 * (/proc), then the waker spins 300 us (bench_settle).  Every scenario
 * checks that what it timed happened -- each wait ended with the error it
 * had to, nothing ended early, every waiter woke, every byte read was the
 * one written -- and exits 1 if not.
 *
 *	bench_impls [--quick] [--only PATTERNS] [--impls NAMES]
 *		    [--samples DIR] [--stoptoken LIB.so]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <limits.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "benchutil.h"
#include "ctx.h"
#include "impl.h"

#define HOUR (3600 * CTX_SEC)
#define STUCK_NS (30 * CTX_SEC)  /* a wait this long means a bug */
#define STACK (64 * 1024)
#define BLOCKS 10                /* reps of a distribution */

static const struct bench_impl *const *all;
static uint64_t rng = 0x9E3779B97F4A7C15ull; /* fixed: runs repeat */

/* xorshift64*: a reproducible spread of cancel moments. */
static int64_t rand_below(int64_t n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return n > 0 ? (int64_t)((rng * 0x2545F4914F6CDD1Dull) % (uint64_t)n)
		     : 0;
}

/* The implementations named in `names` (space-separated) that this build
 * has and --impls allows, in the tables' order. */
static int pick(const char *names, const struct bench_impl **out)
{
	int n = 0;

	for (int i = 0; all[i]; i++) {
		char word[40];

		snprintf(word, sizeof(word), " %s ", all[i]->name);
		if (strstr(names, word) &&
		    (!B.impls || bench_listed(B.impls, all[i]->name)))
			out[n++] = all[i];
	}
	return n;
}

static void *must(void *c, const char *what)
{
	if (!c)
		bench_fail("%s: %s", what, strerror(errno));
	return c;
}

static void *new_ctx(const struct bench_impl *im)
{
	return must(im->with_cancel(im->background()), im->name);
}

static pthread_t spawn(void *(*fn)(void *), void *arg, int cpu)
{
	pthread_attr_t attr;
	pthread_t t;
	cpu_set_t one;
	int e;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK);
	CPU_ZERO(&one);
	if (cpu >= 0)
		CPU_SET(cpu, &one);
	if (cpu >= 0 && (e = pthread_attr_setaffinity_np(&attr, sizeof(one),
							 &one)))
		bench_fail("pthread_attr_setaffinity_np: %s", strerror(e));
	if ((e = pthread_create(&t, &attr, fn, arg)))
		bench_fail("pthread_create: %s (threads-max, pids.max or "
			   "memory)", strerror(e));
	pthread_attr_destroy(&attr);
	return t;
}

/* ---- a crowd: n threads that block, one cancel, until the last is back -- */

enum op { OP_SLEEP, OP_WAIT, OP_READ, OP_JOIN, OP_CHILD_READ };
static const char *const op_name[] = { "sleep", "wait", "read", "join",
				       "read" };

struct crowd;
struct waiter {
	struct crowd *c;
	pthread_t th;
	_Atomic pid_t tid;
	int fds[2];          /* the read ones: fds[0] never gets data */
	void *ctx;           /* its own context, or NULL: the crowd's */
	void *joined;        /* OP_JOIN: a thread that does not finish */
	int64_t t1;          /* back from the call */
	int cpu_back;
	char why[96];        /* empty: the call ended as it had to */
};

struct crowd {
	const struct bench_impl *im;
	const char *name;    /* the implementation's, or a variant's */
	enum op op;
	int n, cpu;          /* cpu: where the waiters run; -1: anywhere */
	bool loose;          /* waiters poll: do not wait to see them asleep */
	_Atomic uint32_t go, ready, woke, done, joined_quit;
	bool quit;
	void *ctx;           /* what the round cancels */
	struct waiter *w;
	uint32_t round;      /* rounds run */
	double *lat;         /* the timed rounds' latencies */
	int nlat, same_cpu;
	char what[96];
};

static void *never_returns(void *p)
{
	_Atomic uint32_t *quit = p;

	while (!atomic_load_explicit(quit, memory_order_acquire))
		bench_futex_wait(quit, 0, NULL);
	return p;
}

/* The blocking call of a round; w->why says what was wrong, if anything. */
static void waiter_call(struct waiter *w)
{
	struct crowd *c = w->c;
	const struct bench_impl *im = c->im;
	void *ctx = w->ctx ? w->ctx : c->ctx, *child = NULL;
	ssize_t n = -1;
	int e = 0;
	char b;

	if (c->op == OP_CHILD_READ)
		ctx = child = must(im->with_cancel(c->ctx), "child");
	atomic_fetch_add(&c->ready, 1);
	switch (c->op) {
	case OP_SLEEP: e = im->sleep(ctx, HOUR); break;
	case OP_WAIT: e = im->wait(ctx); break;
	case OP_JOIN: e = im->thread_join(ctx, w->joined, NULL); break;
	default:
		n = im->read(ctx, w->fds[0], &b, 1, im->slice_ns);
		e = errno;
	}
	w->t1 = bench_now();
	w->cpu_back = sched_getcpu();
	if (n != -1)
		snprintf(w->why, sizeof(w->why), "read returned %zd", n);
	else if (e != ECANCELED)
		snprintf(w->why, sizeof(w->why), "%s ended with %d (%s)",
			 op_name[c->op], e, strerror(e));
	if (child)
		im->release(child);
}

static void *waiter_main(void *p)
{
	struct waiter *w = p;
	struct crowd *c = w->c;

	atomic_store(&w->tid, bench_tid());
	for (uint32_t r = 1;; r++) {
		bench_await_round(&c->go, r);
		if (c->quit)
			break;
		waiter_call(w);
		if (atomic_fetch_add(&c->woke, 1) + 1 == (uint32_t)c->n) {
			atomic_store_explicit(&c->done, r,
					      memory_order_release);
			bench_futex_wake(&c->done, 1);
		}
	}
	return NULL;
}

/*
 * Where the far ends of the rest scenario's sockets go, as a server's
 * clients hold them: a keeper process (SCM_RIGHTS), so that this process
 * holds one descriptor per connection.  -1: kept here.
 */
static int keeper_ctl = -1;

static void keeper_give(int *fd)
{
	char b = 0, cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &b, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), fd, sizeof(int));
	if (sendmsg(keeper_ctl, &m, MSG_NOSIGNAL) != 1)
		bench_fail("keeper: sendmsg: %s", strerror(errno));
	close(*fd);
	*fd = -1;
}

/* What a reading waiter reads: a UNIX socket pair (a pipe for a lone
 * OP_READ waiter), a TCP connection over the loopback, or a pipe. */
enum pair { PAIR_AUTO, PAIR_TCP, PAIR_PIPE };

/* n waiters of im doing op; each with a context of its own under
 * `root` when root is given (then every round cancels root). */
static struct crowd *crowd_new(const struct bench_impl *im, const char *name,
			       enum op op, int n, int cpu, void *root,
			       int rounds, enum pair how)
{
	struct crowd *c = bench_alloc(sizeof(*c));
	bool tcp = how == PAIR_TCP;
	int e;

	*c = (struct crowd){ .im = im, .name = name ? name : im->name,
			     .op = op, .n = n, .cpu = cpu, .ctx = root };
	c->w = bench_alloc((size_t)n * sizeof(*c->w));
	c->lat = bench_alloc((size_t)(rounds + 1) * sizeof(*c->lat));
	for (int i = 0; i < n; i++) {
		struct waiter *w = &c->w[i];

		w->c = c;
		w->fds[0] = w->fds[1] = -1;
		if (op == OP_READ || op == OP_CHILD_READ) {
			if (tcp)
				bench_tcp_pair(w->fds);
			else if (how == PAIR_PIPE ||
				 (op == OP_READ && n == 1))
				e = pipe2(w->fds, O_CLOEXEC);
			else
				e = socketpair(AF_UNIX, SOCK_STREAM |
					       SOCK_CLOEXEC, 0, w->fds);
			if (!tcp && e)
				bench_fail("pipe/socketpair: %s",
					   strerror(errno));
			if (keeper_ctl >= 0)
				keeper_give(&w->fds[1]);
		}
		if (root)
			w->ctx = must(im->with_cancel(root), "child");
		if (op == OP_JOIN &&
		    (e = im->thread_create(&w->joined, im->background(),
					   never_returns, &c->joined_quit)))
			bench_fail("%s thread_create: %s", im->name,
				   strerror(e));
		w->th = spawn(waiter_main, w, cpu);
	}
	return c;
}

/* The descriptor still carries data after the waits on it: a byte
 * written at the other end comes back through the implementation. */
static void still_reads(const struct bench_impl *im, int rfd, int wfd,
			const char *what)
{
	char out = 'z', in = 0;
	void *c = new_ctx(im);
	ssize_t n;

	if (write(wfd, &out, 1) != 1)
		bench_fail("%s: write: %s", what, strerror(errno));
	n = im->read(c, rfd, &in, 1, im->slice_ns);
	im->release(c);
	if (n != 1 || in != out)
		bench_fail("%s: the byte written after the waits did not "
			   "arrive (%zd)", what, n);
}

static void crowd_free(struct crowd *c)
{
	const struct bench_impl *im = c->im;

	c->quit = true;
	atomic_store_explicit(&c->go, UINT32_MAX, memory_order_release);
	bench_futex_wake(&c->go, INT_MAX);
	atomic_store(&c->joined_quit, 1);
	bench_futex_wake(&c->joined_quit, INT_MAX);
	for (int i = 0; i < c->n; i++) {
		struct waiter *w = &c->w[i];
		void *r = NULL;
		int e;

		pthread_join(w->th, NULL);
		/* Every cancelled join left the thread joinable. */
		if (w->joined && ((e = im->thread_join(im->background(),
						       w->joined, &r)) ||
				  r != &c->joined_quit))
			bench_fail("%s: final join: %d, result %p", c->what,
				   e, r);
		if (w->fds[1] >= 0) {
			still_reads(im, w->fds[0], w->fds[1], c->what);
			close(w->fds[1]);
		}
		if (w->fds[0] >= 0)
			close(w->fds[0]);
		if (w->ctx)
			im->release(w->ctx);
	}
	free(c->w);
	free(c->lat);
	free(c);
}

/*
 * Round r: let the waiters block, see each asleep, settle, pause a random
 * time below pause (if any), call at_rest (if any), cancel, and time how
 * long until the last call returned.  Timed rounds keep the latency.
 */
static void crowd_round(struct crowd *c, bool timed, int64_t pause_lo,
			int64_t pause_hi, void (*at_rest)(struct crowd *))
{
	const struct bench_impl *im = c->im;
	uint32_t r = ++c->round;
	int64_t limit = bench_now() + STUCK_NS, t0, t1 = INT64_MIN;
	bool own = c->w[0].ctx != NULL;
	int spins = 0, cpu;

	if (!own)
		c->ctx = new_ctx(im);
	atomic_store(&c->ready, 0);
	atomic_store(&c->woke, 0);
	for (int i = 0; i < c->n; i++)
		c->w[i].why[0] = '\0';
	atomic_store_explicit(&c->go, r, memory_order_release);
	bench_futex_wake(&c->go, INT_MAX);
	while (atomic_load(&c->ready) != (uint32_t)c->n)
		bench_give_way(&spins, limit, c->what);
	for (int i = 0; i < c->n && !c->loose; i++)
		bench_await_blocked(atomic_load(&c->w[i].tid), STUCK_NS,
				    c->what);
	bench_settle();
	if (pause_hi > pause_lo)
		bench_nap_ns(pause_lo + rand_below(pause_hi - pause_lo));
	if (at_rest)
		at_rest(c);
	if (atomic_load(&c->woke))
		bench_fail("%s: a call returned before the cancel", c->what);
	cpu = sched_getcpu();
	t0 = bench_now();
	im->cancel(c->ctx);
	bench_await_word(&c->done, r, STUCK_NS, c->what);
	for (int i = 0; i < c->n; i++) {
		if (c->w[i].why[0])
			bench_fail("%s round %u: %s", c->what, r, c->w[i].why);
		t1 = c->w[i].t1 > t1 ? c->w[i].t1 : t1;
	}
	if (t1 < t0)
		bench_fail("%s round %u: back before the cancel", c->what, r);
	if (timed) {
		c->lat[c->nlat++] = (double)(t1 - t0);
		c->same_cpu += c->n == 1 && c->w[0].cpu_back == cpu;
	}
	if (!own)
		im->release(c->ctx);
}

/*
 * A scenario of crowds, one per implementation, round by round in turn.
 * A polling read takes part in one round of `sparse` and is cancelled at
 * a random moment of its slice; pause_hi > 0 pauses every round instead.
 */
static void crowds_run(const char *scen, struct crowd **cs, int nc,
		       int warmup, int rounds, int reps, int sparse,
		       int64_t pause_lo, int64_t pause_hi)
{
	for (int i = 0; i < nc; i++)
		snprintf(cs[i]->what, sizeof(cs[i]->what), "%s/%s", scen,
			 cs[i]->name);
	for (int r = 1; r <= warmup + rounds; r++)
		for (int i = 0; i < nc; i++) {
			bool polls = cs[i]->op == OP_READ && cs[i]->im->slice_ns;

			if (polls && pause_hi == 0 && r % sparse)
				continue;
			crowd_round(cs[i], r > warmup,
				    polls ? 0 : pause_lo,
				    pause_hi ? pause_hi :
				    polls ? cs[i]->im->slice_ns : 0, NULL);
		}
	if (cs[0]->n == 1 && cs[0]->cpu < 0) {
		printf("# %s: waiter back on the canceller's CPU in", scen);
		for (int i = 0; i < nc; i++)
			printf("%s %.0f%% (%s)", i ? "," : "",
			       100.0 * cs[i]->same_cpu / cs[i]->nlat,
			       cs[i]->name);
		printf(" of rounds\n");
	}
	for (int i = 0; i < nc; i++) {
		/* A round a rep (fan-out): each round's time per waiter too,
		 * to set beside the rest scenario's thousands. */
		for (int r = 0; cs[i]->n > 1 && reps == cs[i]->nlat &&
				r < reps; r++)
			bench_row(scen, "per_thread", cs[i]->name, r + 1,
				  cs[i]->lat[r] / cs[i]->n, "ns");
		bench_dist(scen, cs[i]->name, cs[i]->lat, cs[i]->nlat, reps,
			   "ns");
		crowd_free(cs[i]);
	}
}

/* ---- wake, stopread, fanout ---------------------------------------------- */

static void wake_one(const char *where, int wcpu, enum op op)
{
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	struct crowd *cs[BENCH_MAX_IMPLS];
	int rounds = B.quick ? 100 : 2000, nc = 0;
	int n = pick(op == OP_WAIT && wcpu < 0 ? " libctx nsync " :
		     " libctx condvar stop_token nsync floor ", im);
	char scen[64];

	snprintf(scen, sizeof(scen), "wake/%s/%s", where, op_name[op]);
	if (!bench_wanted(scen))
		return;
	for (int i = 0; i < n; i++)
		if ((op != OP_READ || im[i]->read) &&
		    (op != OP_JOIN || im[i]->thread_join))
			cs[nc++] = crowd_new(im[i], NULL, op, 1, wcpu, NULL,
					     rounds, PAIR_AUTO);
	crowds_run(scen, cs, nc, B.quick ? 10 : 50, rounds, BLOCKS, 20, 0, 0);
}

static void scen_wake(void)
{
	for (int cross = 0; cross < 2; cross++) {
		if (cross && cpu_b < 0) {
			printf("# wake/crosscpu skipped: one CPU allowed\n");
			continue;
		}
		bench_pin(cpu_a);
		for (enum op op = OP_SLEEP; op <= OP_JOIN; op++)
			wake_one(cross ? "crosscpu" : "samecpu",
				 cross ? cpu_b : cpu_a, op);
		bench_pin(-1);
	}
	/* Unpinned, where the scheduler puts the threads decides the figure. */
	wake_one("unpinned", -1, OP_WAIT);
}

static void scen_stopread(void)
{
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	struct crowd *cs[BENCH_MAX_IMPLS];
	int rounds = B.quick ? 8 : 100, n;
	int fds[2];
	bool tcp;

	if (!bench_wanted("stopread"))
		return;
	n = pick(" libctx condvar condvar-1ms stop_token floor ", im);
	tcp = bench_tcp_pair(fds);
	close(fds[0]);
	close(fds[1]);
	printf("# stopread: %s, blocked 1..21 ms (uniform) before the cancel, "
	       "%d rounds, nothing pinned\n", tcp ? "TCP over loopback" :
	       "UNIX socketpair (no loopback)", rounds);
	for (int i = 0; i < n; i++)
		cs[i] = crowd_new(im[i], NULL, OP_READ, 1, -1, NULL, rounds,
				  PAIR_TCP);
	crowds_run("stopread", cs, n, 2, rounds, BLOCKS, 1, CTX_MSEC,
		   21 * CTX_MSEC);
}

static void scen_fanout(void)
{
	static const int sizes[] = { 1, 16, 128, 256, 1024 };
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	struct crowd *cs[BENCH_MAX_IMPLS];

	/* libctx-child: a socket pair and a reactor per waiter; the floor:
	 * an epoll set per waiter. */
	bench_raise_nofile(6 * 1024 + 256);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int n = sizes[k], nc = pick(" libctx condvar stop_token nsync "
					    "floor ", im);
		/* Unpinned, a lone waiter shares the waker's CPU in some
		 * rounds and not in others: more rounds. */
		int rounds = B.quick ? (n >= 256 ? 2 : 3) :
			     (n >= 1024 ? 5 : n >= 256 ? 9 : 31);
		char scen[32];

		snprintf(scen, sizeof(scen), "fanout/%d", n);
		if (!bench_wanted(scen))
			continue;
		for (int i = 0; i < nc; i++)
			cs[i] = crowd_new(im[i], NULL, OP_WAIT, n, -1, NULL,
					  rounds, PAIR_AUTO);
		if (pick(" libctx ", im))
			cs[nc++] = crowd_new(im[0], "libctx-child",
					     OP_CHILD_READ, n, -1, NULL,
					     rounds, PAIR_AUTO);
		crowds_run(scen, cs, nc, 1, rounds, rounds, 1, 0, 0);
	}
}

/*
 * Fan-out after the CPUs went idle, as in a server between events: all
 * waiters seen asleep, the canceller sleeps 20 ms, then one cancel.
 * libctx-child: each waiter in ctx_read on its own pipe under its own
 * child of the cancelled context; condvar: each in pthread_cond_wait on
 * the context's one condition, woken by one broadcast; floor-child: each
 * in epoll_wait on its pipe and the context's eventfd (a child shares
 * its parent's), all woken by the one write of the cancel; floor-each:
 * the same with an eventfd per child, which the cancel writes one by
 * one, the floor of any design with a wake-up descriptor per thread.
 */
static void scen_fanout_idle(void)
{
	static const int sizes[] = { 256, 1024 };
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	struct crowd *cs[4];

	bench_raise_nofile(5 * 1024 + 256);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		int n = sizes[k], nc = 0, rounds = B.quick ? 3 : 15;
		char scen[32];

		snprintf(scen, sizeof(scen), "fanout-idle/%d", n);
		if (!bench_wanted(scen))
			continue;
		if (pick(" condvar ", im))
			cs[nc++] = crowd_new(im[0], NULL, OP_WAIT, n, -1,
					     NULL, rounds, PAIR_AUTO);
		if (pick(" libctx ", im))
			cs[nc++] = crowd_new(im[0], "libctx-child",
					     OP_CHILD_READ, n, -1, NULL,
					     rounds, PAIR_PIPE);
		if (pick(" floor ", im))
			cs[nc++] = crowd_new(im[0], "floor-child",
					     OP_CHILD_READ, n, -1, NULL,
					     rounds, PAIR_PIPE);
		if (pick(" floor ", im))
			cs[nc++] = crowd_new(&bench_floor_each, NULL,
					     OP_CHILD_READ, n, -1, NULL,
					     rounds, PAIR_PIPE);
		if (nc)
			crowds_run(scen, cs, nc, 1, rounds, rounds, 1,
				   20 * CTX_MSEC, 20 * CTX_MSEC + 1);
	}
}

/* ---- lateness ---------------------------------------------------------- */

/* One sleep of d (deadline: one wait on a context d from its deadline);
 * how late it returned. */
static double late_once(const struct bench_impl *im, bool deadline,
			int64_t d)
{
	int64_t due, t1;
	void *c;
	int e;

	if (deadline) {
		due = bench_now() + d;
		c = must(im->with_deadline(im->background(), due), im->name);
		e = im->wait(c);
		t1 = bench_now();
		if (e != ETIMEDOUT)
			bench_fail("%s: wait on a deadline returned %d",
				   im->name, e);
	} else {
		c = new_ctx(im);
		due = bench_now() + d;
		e = im->sleep(c, d);
		t1 = bench_now();
		if (e)
			bench_fail("%s: sleep returned %d", im->name, e);
	}
	im->release(c);
	if (t1 < due)
		bench_fail("%s: %s ended %lld ns early", im->name,
			   deadline ? "deadline" : "sleep",
			   (long long)(due - t1));
	return (double)(t1 - due);
}

static void scen_lateness(void)
{
	static const int64_t durs[2] = { CTX_MSEC, 10 * CTX_MSEC };
	const int counts[2] = { B.quick ? 20 : 500, B.quick ? 5 : 100 };
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	int n = pick(" libctx condvar stop_token nsync floor ", im);

	bench_pin(cpu_a);
	for (int k = 0; k < 2; k++) {
		double *v[BENCH_MAX_IMPLS][2];
		char scen[2][64];

		for (int dl = 0; dl < 2; dl++)
			snprintf(scen[dl], sizeof(scen[dl]),
				 "lateness/%lldms/%s",
				 (long long)(durs[k] / CTX_MSEC),
				 dl ? "deadline" : "sleep");
		if (!bench_wanted(scen[0]) && !bench_wanted(scen[1]))
			continue;
		for (int i = 0; i < n; i++)
			for (int dl = 0; dl < 2; dl++) {
				v[i][dl] = bench_alloc((size_t)counts[k] *
						       sizeof(double));
				late_once(im[i], dl, 100 * CTX_USEC);
			}
		for (int r = 0; r < counts[k]; r++)
			for (int i = 0; i < n; i++)
				for (int dl = 0; dl < 2; dl++)
					v[i][dl][r] = late_once(im[i], dl,
								durs[k]);
		for (int i = 0; i < n; i++)
			for (int dl = 0; dl < 2; dl++) {
				bench_dist(scen[dl], im[i]->name, v[i][dl],
					   counts[k], BLOCKS, "ns");
				free(v[i][dl]);
			}
	}
	bench_pin(-1);
}

/* ---- hot path: reads with the data already there ------------------------- */

#define HOT_N 4096 /* bytes per batch: within a pipe's and a socket's buffer */

static char hot_pattern[HOT_N];

/* What reads in a batch: an implementation, or (im NULL) read(2) or
 * preadv2(RWF_NOWAIT) itself. */
struct reader {
	const char *name;
	const struct bench_impl *im;
	void *ctx;
};

static ssize_t hot_read(const struct reader *rd, int fd, char *b)
{
	struct iovec iov = { b, 1 };

	if (rd->im)
		return rd->im->read(rd->ctx, fd, b, 1, rd->im->slice_ns);
	if (rd->name[0] == 'p')
		return preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	return read(fd, b, 1);
}

/* Fill (untimed), then HOT_N timed 1-byte reads; ns per read.  Every
 * read must return the next byte of the pattern. */
static double hot_batch(const struct reader *rd, int rfd, int wfd)
{
	struct pollfd pfd = { rfd, POLLIN, 0 };
	unsigned bad = 0;
	int64_t t0;
	char b = 0;

	if (write(wfd, hot_pattern, HOT_N) != HOT_N)
		bench_fail("hotpath: fill: %s", strerror(errno));
	t0 = bench_now();
	for (int i = 0; i < HOT_N; i++)
		bad += (hot_read(rd, rfd, &b) != 1) | (b != hot_pattern[i]);
	t0 = bench_now() - t0;
	if (bad)
		bench_fail("hotpath/%s: %u of %d reads did not return their "
			   "byte", rd->name, bad, HOT_N);
	if (poll(&pfd, 1, 0) != 0)
		bench_fail("hotpath/%s: data left after the batch", rd->name);
	return (double)t0 / HOT_N;
}

static void hot_scenario(const char *scen, int rfd, int wfd, bool pipe)
{
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	struct reader rd[BENCH_MAX_IMPLS];
	int batches = B.quick ? 10 : 200, n = 0;
	double *v[BENCH_MAX_IMPLS];

	if (!bench_wanted(scen))
		return;
	n = pick(" libctx condvar stop_token ", im);
	for (int i = 0; i < n; i++)
		rd[i] = (struct reader){ im[i]->name, im[i], new_ctx(im[i]) };
	if (!B.impls || bench_listed(B.impls, "floor"))
		rd[n++] = (struct reader){ "floor", NULL, NULL };
	if (pipe && !B.impls)
		rd[n++] = (struct reader){ "preadv2", NULL, NULL };
	for (int i = 0; i < n; i++)
		v[i] = bench_alloc((size_t)batches * sizeof(double));
	for (int r = -3; r < batches; r++) /* three to warm up */
		for (int i = 0; i < n; i++) {
			double ns = hot_batch(&rd[i], rfd, wfd);

			if (r >= 0)
				v[i][r] = ns;
		}
	for (int i = 0; i < n; i++) {
		if (rd[i].im && rd[i].im->err(rd[i].ctx))
			bench_fail("hotpath: a context ended");
		if (rd[i].im)
			rd[i].im->release(rd[i].ctx);
		bench_dist(scen, rd[i].name, v[i], batches, BLOCKS, "ns");
		free(v[i]);
	}
}

/* Blocking descriptors, as most programs have them: the data is always
 * there, and a read that would block is caught by the watchdog. */
static void scen_hotpath(void)
{
	int p[2], s[2];

	for (int i = 0; i < HOT_N; i++)
		hot_pattern[i] = (char)(i * 7 + 1);
	if (pipe2(p, O_CLOEXEC) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s))
		bench_fail("pipe/socketpair: %s", strerror(errno));
	bench_pin(cpu_a);
	hot_scenario("hotpath/pipe", p[0], p[1], true);
	hot_scenario("hotpath/socketpair", s[0], s[1], false);
	bench_pin(-1);
	close(p[0]);
	close(p[1]);
	close(s[0]);
	close(s[1]);
}

/* ---- create + cancel ----------------------------------------------------- */

#define MAX_DEPTH 1000

struct create_arg {
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	int depth;              /* 0: one context of the background */
	bool timeout;           /* with a deadline an hour ahead */
	void *chain[MAX_DEPTH];
	const char *what;
};

/* WithCancel / WithTimeout: create, check, release.  CancelTree: a chain
 * under a cancellable root, cancel the root, check the leaf, release
 * everything leaf first. */
static void run_create(void *p, int impl, int tid, uint64_t n)
{
	struct create_arg *a = p;
	const struct bench_impl *im = a->im[impl];
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		void *root, *c;

		if (!a->depth) {
			c = must(a->timeout ?
				 im->with_deadline(im->background(),
						   bench_now() + HOUR) :
				 im->with_cancel(im->background()), a->what);
			bad += im->err(c) != 0;
			im->release(c);
			continue;
		}
		c = root = new_ctx(im);
		for (int d = 0; d < a->depth; d++)
			c = a->chain[d] = must(im->with_cancel(c), a->what);
		im->cancel(root);
		bad += im->err(c) != ECANCELED;
		for (int d = a->depth; d-- > 0;)
			im->release(a->chain[d]);
		im->release(root);
	}
	if (bad)
		bench_fail("%s/%s: %llu operations had the wrong result",
			   a->what, im->name, (unsigned long long)bad);
}

static void scen_create(void)
{
	static struct create_arg a;
	static const struct {
		const char *name;
		int depth;
		bool timeout;
	} rows[] = {
		{ "create/WithCancel", 0, false },
		{ "create/WithTimeout", 0, true },
		{ "create/CancelTree/depth=10", 10, false },
		{ "create/CancelTree/depth=1000", 1000, false },
	};
	const char *names[BENCH_MAX_IMPLS];
	int n = pick(" libctx condvar stop_token nsync ", a.im);

	for (int i = 0; i < n; i++)
		names[i] = a.im[i]->name;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		a.depth = rows[r].depth;
		a.timeout = rows[r].timeout;
		a.what = rows[r].name;
		bench_measure(&(struct bench_spec){
			.scenario = rows[r].name, .names = names, .nimpls = n,
			.fn = run_create, .arg = &a });
	}
}


/* ---- CPU burned while idle; many threads at rest ------------------------ */

static int64_t cpu_ns(struct rusage *r)
{
	if (getrusage(RUSAGE_SELF, r))
		bench_fail("getrusage: %s", strerror(errno));
	return ((int64_t)r->ru_utime.tv_sec + r->ru_stime.tv_sec) * CTX_SEC +
	       ((int64_t)r->ru_utime.tv_usec + r->ru_stime.tv_usec) * 1000;
}

static size_t rss_bytes(void)
{
	char buf[128];
	unsigned long size, res;

	if (bench_read_small("/proc/self/statm", buf, sizeof(buf)) <= 0 ||
	    sscanf(buf, "%lu %lu", &size, &res) != 2)
		bench_fail("cannot read /proc/self/statm");
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static struct {
	const char *scen;       /* idle or rest */
	int64_t ns;             /* how long at rest */
	int rep;
	double rss0, fds0;      /* before the first thread */
} rest;

/* At rest: only the blocked threads can burn CPU now. */
static void measure_rest(struct crowd *c)
{
	double secs, rss = (double)rss_bytes(), fds = bench_count_fds();
	struct rusage r0, r1;
	int64_t c0 = cpu_ns(&r0), w0 = bench_now(), c1;

	bench_nap_ns(rest.ns);
	c1 = cpu_ns(&r1);
	secs = (double)(bench_now() - w0) / CTX_SEC;
	bench_row(rest.scen, "cpu_ms_per_s", c->name, rest.rep,
		  (double)(c1 - c0) / 1e6 / secs, "ms/s");
	bench_row(rest.scen, "wakeups_per_s", c->name, rest.rep,
		  (double)(r1.ru_nvcsw + r1.ru_nivcsw - r0.ru_nvcsw -
			   r0.ru_nivcsw) / secs, "1/s");
	if (keeper_ctl < 0)
		return;
	bench_row(rest.scen, "rss_per_thread", c->name, rest.rep,
		  (rss - rest.rss0) / c->n, "B");
	/* Beyond the socket each thread reads. */
	bench_row(rest.scen, "fds_per_thread", c->name, rest.rep,
		  (fds - rest.fds0 - c->n) / c->n, "fds");
	bench_row(rest.scen, "threads", c->name, rest.rep, c->n, "threads");
}

/* Another round for a crowd whose root the last one cancelled: a fresh
 * root, and a fresh child of it for each waiter (all back, waiting for
 * the round to start). */
static void *renew_root(struct crowd *c, void *root)
{
	const struct bench_impl *im = c->im;

	for (int i = 0; i < c->n; i++)
		im->release(c->w[i].ctx);
	im->release(root);
	root = c->ctx = new_ctx(im);
	for (int i = 0; i < c->n; i++)
		c->w[i].ctx = must(im->with_cancel(root), "child");
	return root;
}

/* n threads of im at rest in reads under children of one root, then one
 * cancel of the root; `rounds` times, reps rest.rep onwards. */
static void at_rest(const struct bench_impl *im, int n, int rounds)
{
	void *root;
	struct crowd *c;
	int rep0 = rest.rep;

	rest.rss0 = (double)rss_bytes();
	rest.fds0 = bench_count_fds();
	root = new_ctx(im);
	c = crowd_new(im, NULL, OP_READ, n, -1, root, rounds, PAIR_AUTO);
	/* Thousands of polling threads are often found running. */
	c->loose = keeper_ctl >= 0 && im->slice_ns;
	snprintf(c->what, sizeof(c->what), "%s/%s", rest.scen, im->name);
	for (int r = 0; r < rounds; r++) {
		if (r)
			root = renew_root(c, root);
		rest.rep = rep0 + r;
		crowd_round(c, true, 0, 0, measure_rest);
		bench_row(rest.scen, "stop_all", im->name, rest.rep, c->lat[r],
			  "ns");
		bench_row(rest.scen, "per_thread", im->name, rest.rep,
			  c->lat[r] / n, "ns");
	}
	crowd_free(c);
	im->release(root);
}

static void scen_idle(void)
{
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	int n = pick(" floor libctx condvar stop_token ", im);

	if (!bench_wanted("idle"))
		return;
	rest.scen = "idle";
	rest.ns = B.quick ? 100 * CTX_MSEC : CTX_SEC;
	/* Per thread: a socket pair, and the reactor or the floor's epoll. */
	bench_raise_nofile(5 * 1000 + 256);
	printf("# idle: 1000 threads in read, each on its own silent UNIX "
	       "socket under its own child of one root, %.1f s; CPU = "
	       "getrusage user+sys per second; wake-ups = context switches "
	       "per second\n", (double)rest.ns / CTX_SEC);
	bench_row("idle", "seconds", "libctx", 1, (double)rest.ns / CTX_SEC,
		  "s");
	for (rest.rep = 1; rest.rep <= (B.quick ? 1 : 3); rest.rep++)
		for (int i = 0; i < n; i++)
			at_rest(im[i], 1000, 1);
}

/* Each in a process of its own, with a keeper process of its own: glibc
 * keeps the stacks of exited threads for reuse, and a second crowd in
 * the same process would find its stacks resident already. */
static void rest_in_child(const struct bench_impl *im, int n)
{
	pid_t pid, keeper;
	int st, sv[2];

	fflush(stdout);
	if ((pid = fork()) < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid > 0) {
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			bench_fail("rest/%s did not finish right", im->name);
		return;
	}
	alarm(B.quick ? 120 : 600); /* alarms are not inherited */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    (keeper = fork()) < 0)
		bench_fail("keeper: %s", strerror(errno));
	if (keeper == 0) {
		char b, cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t k;

		close(sv[0]);
		do {
			m.msg_control = cbuf;
			m.msg_controllen = sizeof(cbuf);
		} while ((k = recvmsg(sv[1], &m, 0)) > 0 ||
			 (k < 0 && errno == EINTR));
		_exit(0); /* closing what it holds ends nothing: all stopped */
	}
	close(sv[1]);
	keeper_ctl = sv[0];
	at_rest(im, n, B.quick ? 1 : 3);
	close(keeper_ctl);
	if (waitpid(keeper, &st, 0) != keeper || !WIFEXITED(st))
		bench_fail("keeper: did not exit cleanly");
	fflush(stdout);
	_exit(0);
}

/* How many threads the descriptor limit allows, at most want: each
 * holds its socket and libctx's wake-up descriptor (io_uring adds a ring
 * only for transfers on regular files).  As root the hard limit is
 * raised with the soft one. */
static int threads_that_fit(int want, rlim_t *limit)
{
	int per = 2;
	rlim_t need = (rlim_t)want * (rlim_t)per + 128;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		bench_fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_max < need) {
		struct rlimit up = { need, need };

		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	bench_raise_nofile(0);
	getrlimit(RLIMIT_NOFILE, &rl);
	*limit = rl.rlim_cur;
	if (rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur < 128 ? 0 : (int)((rl.rlim_cur - 128) / per);
}

static void scen_rest(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = B.quick ? 1000 : 10000, n, nc;
	rlim_t limit;

	if (!bench_wanted("rest"))
		return;
	n = threads_that_fit(want, &limit);
	if (n < want / 10) {
		printf("# skipped: rest: the descriptor limit %llu allows %d "
		       "threads: raise it (ulimit -Hn)\n",
		       (unsigned long long)limit, n);
		return;
	}
	/* Past about 500 per CPU the polling threads leave the machine no
	 * time for anything else (10,000 on 2 CPUs did not finish in 10
	 * minutes): their per-thread figures compare, their stop_all is for
	 * that count. */
	nc = n < 500 * cpus ? n : 500 * (int)(cpus < 1 ? 1 : cpus);
	printf("# rest: %d threads (condvar: %d), %d KiB stacks, each in a "
	       "read on its own silent UNIX socket (the far ends held by a "
	       "keeper process) under its own child of one root; descriptor "
	       "limit %llu\n", n, nc, STACK / 1024, (unsigned long long)limit);
	rest.scen = "rest";
	rest.ns = B.quick ? 200 * CTX_MSEC : CTX_SEC;
	rest.rep = 1;
	if (!B.impls || bench_listed(B.impls, "libctx"))
		rest_in_child(&bench_libctx, n);
	if (!B.impls || bench_listed(B.impls, "condvar"))
		rest_in_child(&bench_condvar, nc);
}

/* ---- bytes and descriptors per live context ------------------------------ */

static void live_row(const struct bench_impl *im, bool timeout, void **slot,
		     int n)
{
	const char *kind = timeout ? "WithTimeout" : "WithCancel";
	size_t h0, h1, h2, slack = n > 16384 ? (size_t)n : 16384;
	int f0, f1;
	char name[96];

	snprintf(name, sizeof(name), "memory/%s/%d", kind, n);
	if (!bench_wanted(name))
		return;
	/* One made and freed first, so that one-time allocations (a
	 * library's first use) are not counted. */
	im->release(new_ctx(im));
	h0 = bench_heap_bytes();
	f0 = bench_count_fds();
	for (int i = 0; i < n; i++)
		slot[i] = must(timeout ? im->with_deadline(im->background(),
							   bench_now() + HOUR) :
				       im->with_cancel(im->background()), kind);
	h1 = bench_heap_bytes();
	f1 = bench_count_fds();
	for (int i = 0; i < n; i++)
		if (im->err(slot[i]))
			bench_fail("live %s %d is done", kind, i);
	for (int i = 0; i < n; i++)
		im->release(slot[i]);
	h2 = bench_heap_bytes();
	/* Less than a byte a context (malloc's caches) may stay behind; a
	 * leaked context would leave dozens. */
	if (h2 > h0 + slack)
		bench_fail("%s/%s: %zu bytes still held after release",
			   im->name, kind, h2 - h0);
	bench_row(name, "bytes", im->name, 1, ((double)h1 - (double)h0) / n,
		  "B");
	bench_row(name, "fds", im->name, 1, (double)(f1 - f0) / n, "fds");
}

static void scen_memory(void)
{
	const struct bench_impl *im[BENCH_MAX_IMPLS];
	int n = pick(" libctx condvar stop_token nsync ", im);
	void **slot = bench_alloc(1000000 * sizeof(*slot));

	for (int k = 0; k < 2; k++)
		for (int count = 1000; count <= 1000000; count *= 1000)
			for (int i = 0; i < n; i++)
				live_row(im[i], k, slot, count);
	free(slot);
}

/* ---- the thread sweep -------------------------------------------------- */

struct sweep_arg {
	const struct bench_impl *im[2];
	void *shared[2];
	bool create;            /* WithCancel under shared; else Err */
	_Atomic uint64_t bad;
};

static void run_sweep(void *p, int impl, int tid, uint64_t n)
{
	struct sweep_arg *a = p;
	const struct bench_impl *im = a->im[impl];
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n && a->create; i++) {
		void *c = im->with_cancel(a->shared[impl]);

		if (!c) {
			bad++;
			continue;
		}
		im->cancel(c);
		bad += im->err(c) != ECANCELED;
		im->release(c);
	}
	for (uint64_t i = 0; i < n && !a->create; i++)
		bad += im->err(a->shared[impl]) != 0;
	if (bad)
		atomic_fetch_add(&a->bad, bad);
}

/* ns per operation per thread on t = 1, 2, 4, ... online CPUs threads. */
static void scen_sweep(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int max = online < 1 ? 1 : online > BENCH_MAX_THREADS ?
		  BENCH_MAX_THREADS : (int)online;
	struct sweep_arg a = { .bad = 0 };
	const char *names[2];
	int n = pick(" libctx condvar ", a.im);

	for (int i = 0; i < n; i++) {
		names[i] = a.im[i]->name;
		a.shared[i] = new_ctx(a.im[i]);
	}
	for (int op = 0; op < 2; op++)
		for (int t = 1; t <= max; t = t < max && t * 2 > max ? max :
							   t * 2) {
			char scen[64];

			snprintf(scen, sizeof(scen), "sweep/%s/T=%d",
				 op ? "Err" : "WithCancel", t);
			a.create = !op;
			bench_measure(&(struct bench_spec){
				.scenario = scen, .names = names, .nimpls = n,
				.fn = run_sweep, .arg = &a, .threads = t,
				.per_thread = true });
			if (t == max)
				break;
		}
	if (atomic_load(&a.bad))
		bench_fail("sweep: %llu operations had the wrong result",
			   (unsigned long long)atomic_load(&a.bad));
	for (int i = 0; i < n; i++) {
		if (a.im[i]->err(a.shared[i]))
			bench_fail("sweep: the shared context ended");
		a.im[i]->release(a.shared[i]);
	}
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int64_t start = bench_now();
	char clock[64];

	bench_init(argc, argv);
	bench_cpus_init();
	all = bench_impls_load(B.plugin);
	bench_print_machine("bench_impls: libctx beside a condvar context, "
			    "std::stop_token, nsync and the kernel floor");
	if (bench_read_small("/sys/devices/system/clocksource/clocksource0/"
			     "current_clocksource", clock, sizeof(clock)) > 0)
		printf("# clocksource: %s", clock);
	printf("# timer slack: %d ns (condvar timedwaits get it; timerfd "
	       "does not)\n", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# implementations:");
	for (int i = 0; all[i]; i++)
		printf(" %s", all[i]->name);
	printf(" (slices: condvar and stop_token 10 ms, condvar-1ms 1 ms)\n");
	printf("# cpus: waker on %d, waiter on %d (samecpu) and %d "
	       "(crosscpu); stopread, fanout, idle, rest not pinned\n",
	       cpu_a, cpu_a, cpu_b);
	printf("# blocked check: /proc/self/task/<tid>/stat state S%s\n",
	       bench_have_syscall_file() ? " in a waiting system call" :
					   " (no syscall file: state only)");
	printf("# distributions: nearest-rank p50/p99 of each of %d blocks "
	       "of rounds (reps)\n", BLOCKS);
	fflush(stdout);

	/* First: the rest scenario forks, and its figures want a process
	 * whose heap and thread-stack cache no other scenario has filled. */
	bench_section("rest", scen_rest);
	bench_section("wake", scen_wake);
	bench_section("stopread", scen_stopread);
	bench_section("fanout", scen_fanout);
	bench_section("fanout-idle", scen_fanout_idle);
	bench_section("lateness", scen_lateness);
	bench_section("hotpath", scen_hotpath);
	bench_section("create", scen_create);
	bench_section("idle", scen_idle);
	bench_section("memory", scen_memory);
	bench_section("sweep", scen_sweep);

	printf("# checks passed: every wait ended as it had to, every "
	       "waiter woke, every byte arrived\n");
	printf("# run took %.1f s%s\n", (double)(bench_now() - start) / 1e9,
	       B.quick ? " (--quick)" : "");
	return 0;
}
