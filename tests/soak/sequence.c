/*
 * Sequence: random sequences of the library's waits, each call checked
 * against a simple model of what it must do.
 *
 * The suites beside this one test each call alone; the bugs users met
 * were in what one call left behind for the next (a select with a
 * timeout, then a write to a file that never returned).  Here a worker
 * thread runs one wait after another, drawn at random from every family
 * the library has: transfers on a pipe, a UNIX socket and a TCP
 * connection (read, readv, recv, write, writev, send), positional and
 * plain transfers and syncs on a regular file (on tmpfs where there is
 * one, so that only the library can make them wait), ctx_open of a FIFO
 * from either end, ctx_select (channel, descriptor and context cases,
 * with no timeout, a look only, or a timeout), ctx_poll, channel sends and
 * receives (buffered and not, and closed under a waiter), ctx_cond
 * waits, ctx_sem acquires, ctx_sleep, ctx_thread_join and child
 * processes (ctx_proc_wait, and a cat fed and drained through its
 * pipes).  Two helper threads per worker act on the other side: the peer
 * writes, drains, sends, receives, closes, signals, releases and opens
 * the FIFO's other end, often already waiting in a call of its own
 * before the worker's call begins; the canceller cancels the call's
 * context (or its parent) at a random moment.  Contexts are the
 * background, cancellable, with a deadline from 0 to 20 ms, both,
 * already done, or a deadline under a parent that is cancelled.
 *
 * The model: a call returns no later than the first thing that lets it
 * (what it waits for being there, its own timeout, its context's end)
 * plus TOL_MS (the machines that run this are shared and loaded); it
 * fails with ETIMEDOUT only once its deadline has passed, with ECANCELED
 * only once a cancel has begun, and refuses when its context was done
 * before it began; and every result is the right one: counts, values
 * and bytes.  Every byte stream carries a known pattern, so a reader
 * finds any byte lost, repeated or reordered at once, and at the end
 * each stream is drained and must hold exactly what its writers said
 * they wrote and nothing more; channels carry counters, checked the
 * same way; the semaphore must be whole after every step; the file
 * must read back as a shadow copy says, its offset where the counts
 * put it; what a FIFO's writer wrote once it was in, its reader reads.
 * Nothing is reset between the steps: what one leaves (bytes in a
 * buffer, a cancelled operation, a reactor's or a ring's state) is what
 * the next one meets.
 *
 * "one_thread" runs one worker; "threads" runs WORKERS at once.  The
 * seed and the failing step with the steps before it are printed on
 * failure; CTX_SEQ_SEED=n replays the seed (the same draws, step by
 * step, though timing may make a draw mean another thing).
 * CTX_SEQ_SECONDS sets the time of the two tests together (3 s, 1.5 s
 * with CTX_TEST_QUICK or under valgrind); CTX_SEQ_VERBOSE=1 prints the
 * number of calls per family and per second; CTX_SEQ_ONLY=select,file
 * runs those families alone.  A worker stuck past every bound is
 * reported by the test's thread (which then cannot join it).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <linux/magic.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define TOL_MS 2000        /* how late a call may return on a busy machine */
#define STUCK_MS 6000      /* past this, in one call: stuck (watchdog) */
#define MAX_US 20000       /* deadlines, timeouts and actions: 0-20 ms */
#define RUN_MS 3000        /* both tests together; CTX_SEQ_SECONDS */
#define QUICK_RUN_MS 1500
#define WORKERS 3
#define HIST 4             /* steps shown before a failing one */
#define DESC 512
#define NRAND 24           /* draws per step, used or not */
#define MAX_ACTS 3
#define PIPE_CAP 4096      /* the pipes are shrunk to this */
#define SOCK_BUF 4096
#define MAX_XFER (3 * PIPE_CAP)
#define FILE_SIZE 65536
#define SEM_SIZE 4
#define CHAN_CAP 3
#define NEVER INT64_MAX

/* ---- the run's settings and its first failure ---------------------------- */

static uint32_t seed;
static const char *case_name;
static int64_t tol;
static bool have_proc;
static _Atomic bool stop;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[2048];
static _Atomic bool failed;

static int64_t scale(void)
{
	return tu_valgrind() ? 10 : 1;
}

static void pick_seed(void)
{
	const char *s = getenv("CTX_SEQ_SEED");

	if (s && *s)
		seed = (uint32_t)strtoul(s, NULL, 0);
	else
		seed = (uint32_t)(ctx_now() ^ ((int64_t)getpid() << 16));
	if (!seed)
		seed = 1; /* xorshift stays at 0 */
}

static int64_t run_time(void)
{
	const char *s = getenv("CTX_SEQ_SECONDS");

	if (s && *s && atof(s) > 0)
		return (int64_t)(atof(s) * CTX_SEC);
	return (tu_quick() || tu_valgrind() ? QUICK_RUN_MS : RUN_MS) *
	       CTX_MSEC;
}

static bool verbose(void)
{
	const char *v = getenv("CTX_SEQ_VERBOSE");

	return v && *v && strcmp(v, "0") != 0;
}

/* ---- the model's state --------------------------------------------------- */

/* Bytes one way: written at wr, read at rd, byte i being pat(i). */
struct stream {
	int rd, wr;
	uint64_t w, r;          /* written and read so far */
	uint8_t salt;
	bool sock;
	const char *name;
};

enum { ST_PIPE, ST_UNIX, ST_TCP, ST_KINDS };
static const char *const st_names[ST_KINDS] = { "pipe", "unix", "tcp" };
/* w->st[2k]: the worker writes and the peer reads; w->st[2k + 1]: the
 * other way. */
#define NSTREAMS (2 * ST_KINDS)

/* A channel of uint64_t carrying 0, 1, 2, ... */
struct chanm {
	ctx_chan_t *ch;
	size_t cap;
	uint64_t sent, got;
	bool closed;
};

enum {
	A_WRITE,   /* write n bytes to st[s] */
	A_DRAIN,   /* read st[s] until n bytes have been read in all */
	A_CANCEL,  /* cancel victim */
	A_SEND,    /* send on ch[s] */
	A_RECV,    /* receive from ch[s] until n have been received in all */
	A_CLOSE,   /* close ch[s] */
	A_SIGNAL,  /* change the predicate and signal (n: broadcast) */
	A_RELEASE, /* release n to the semaphore */
	A_FIFO_W,  /* open the FIFO to write (n2: with open(2)), n bytes */
	A_FIFO_R,  /* open the FIFO to read, until end of file */
};
static const char *const act_names[] = {
	"write", "drain to", "cancel", "send", "receive to", "close",
	"signal", "release", "fifo writer", "fifo reader",
};

struct action {
	int kind, s;
	long n, n2;
	int64_t at;             /* absolute */
	ctx_t *victim;
	/* what happened: t0 when it began (0: never), t1 when it had done
	 * what it is for (0: never) */
	int64_t t0, t1;
	int64_t t2;             /* A_FIFO_W: its write returned */
	long rc;                /* the call's result, where it matters */
};

/* A helper thread and what it is to do in this step. */
struct helper {
	struct worker *w;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool posted, quit;
	ctx_t *pctx;            /* its own waits end with the step */
	struct action a[MAX_ACTS];
	int n;
	char buf[MAX_XFER];
};

/* How the call's context ends. */
enum { E_NONE, E_CANCEL, E_TIMEOUT, E_BOTH, E_PRE, E_CHAIN, E_COUNT };

struct step {
	int how;
	ctx_t *ctx, *parent;
	int64_t timeout;        /* of the context */
	int64_t dl;             /* its deadline, or NEVER */
	bool pre;               /* cancelled before the call */
	int64_t delay;          /* the worker waits this long before the call */
	int64_t base;           /* the helpers' time zero */
	int64_t t0, t1;         /* the call began, returned */
	int64_t ready;          /* what it waits for was there */
	int64_t own;            /* its own timeout ran out */
	bool untimed;           /* nothing bounds it but the watchdog */
	const char *call;
};

enum {
	F_READ, F_WRITE, F_FILE, F_FIFO, F_SELECT, F_POLL, F_CHAN, F_COND,
	F_SEM, F_SLEEP, F_JOIN, F_PROC, F_COUNT
};
static const char *const f_names[F_COUNT] = {
	"read", "write", "file", "fifo", "select", "poll", "chan", "cond",
	"sem", "sleep", "join", "proc",
};
static const int f_weight[F_COUNT] = { 12, 10, 10, 4, 12, 4, 12, 6, 6, 4,
				       4, 2 };

struct worker {
	int idx;
	pthread_t th;
	uint32_t rng, rv[NRAND];
	int rvi;
	long step;
	struct step s;
	struct helper peer, canceller;
	/* what the steps use */
	struct stream st[NSTREAMS];
	struct stream fifo;     /* per open, fresh */
	char dir[64], fifo_path[96];
	int file;
	bool mem_file;          /* on tmpfs: never waits for a disk */
	off_t foff, fsize;
	uint8_t *shadow;
	struct chanm ch[2];
	pthread_mutex_t mu;     /* error-checking: held on return is checked */
	ctx_cond_t cond;
	unsigned pred;
	ctx_sem_t *sem;
	char buf[MAX_XFER], back[MAX_XFER];
	/* what the watchdog sees */
	_Atomic int64_t must_end;
	_Atomic bool in_call;   /* else after it, with the helpers */
	pthread_mutex_t what_mu;
	char hist[HIST][DESC];
	/* counts */
	long calls[F_COUNT];
	_Atomic long helper_calls;
	_Atomic bool exited;
};

/* ---- failures ------------------------------------------------------------ */

static const char *what_now(struct worker *w)
{
	return w->hist[w->step % HIST];
}

/* Recorded for the test's thread to assert (a Check assertion must not
 * fail in another thread), with the step and the steps before it. */
__attribute__((format(printf, 2, 3)))
static void failf(struct worker *w, const char *fmt, ...)
{
	char msg[640], before[HIST * (DESC + 8)] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&w->what_mu);
	for (long i = w->step - HIST + 1; i < w->step; i++)
		if (i >= 0) {
			size_t l = strlen(before);
			snprintf(before + l, sizeof(before) - l, "\n  %ld: %s",
				 i, w->hist[i % HIST]);
		}
	pthread_mutex_lock(&fail_mu);
	if (!atomic_load(&failed))
		snprintf(fail_msg, sizeof(fail_msg), "worker %d, step %ld "
			 "[%s]: %s", w->idx, w->step, what_now(w), msg);
	atomic_store(&failed, true);
	pthread_mutex_unlock(&fail_mu);
	fprintf(stderr, "sequence %s (seed %u; CTX_SEQ_SEED=%u replays it): "
		"worker %d, step %ld [%s]: %s; the steps before:%s\n",
		case_name, seed, seed, w->idx, w->step, what_now(w), msg,
		before);
	pthread_mutex_unlock(&w->what_mu);
}

static void assert_no_failure(void)
{
	char msg[sizeof(fail_msg)];

	pthread_mutex_lock(&fail_mu);
	snprintf(msg, sizeof(msg), "%s", fail_msg);
	pthread_mutex_unlock(&fail_mu);
	ck_assert_msg(!atomic_load(&failed), "%s [seed %u: CTX_SEQ_SEED=%u "
		      "CK_RUN_SUITE=sequence CK_RUN_CASE=%s replays it]", msg,
		      seed, seed, case_name);
}

/* For what cannot go on (a planning error, no memory for a context). */
#define need(w, cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			failf(w, "%s:%d: %s is false", __FILE__, __LINE__,  \
			      #cond);                                       \
			abort();                                            \
		}                                                           \
	} while (0)

#define expect(w, cond, ...)                                                \
	do {                                                                \
		if (!(cond))                                                \
			failf(w, __VA_ARGS__);                              \
	} while (0)

/* ---- draws --------------------------------------------------------------- */

/* Every step takes NRAND draws, used or not, so that a replay makes the
 * same choices although what the model holds (bytes left over, values
 * buffered) may differ with timing. */
static void draw(struct worker *w)
{
	for (int i = 0; i < NRAND; i++)
		w->rv[i] = tu_rand(&w->rng);
	w->rvi = 0;
}

static uint32_t pick(struct worker *w, uint32_t n)
{
	return w->rv[w->rvi++ % NRAND] % n;
}

static bool chance(struct worker *w, unsigned pct)
{
	return pick(w, 100) < pct;
}

/* A time: a quarter none, a quarter under half a millisecond, the rest
 * up to MAX_US. */
static int64_t pick_time(struct worker *w)
{
	uint32_t k = pick(w, 4), v = pick(w, MAX_US + 1);

	if (k == 0)
		return 0;
	return (k == 1 ? v % 500 : v) * CTX_USEC * scale();
}

static size_t pick_len(struct worker *w, size_t max)
{
	return chance(w, 70) ? 1 + pick(w, 512) : 1 + pick(w, (uint32_t)max);
}

static double rel_ms(struct worker *w, int64_t t)
{
	return t == NEVER ? -1 : (double)(t - w->s.base) / CTX_MSEC;
}

/* ---- byte streams -------------------------------------------------------- */

static uint8_t pat(const struct stream *st, uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + (i >> 16) + st->salt);
}

/* The next n bytes the writer of st owes. */
static void fill(const struct stream *st, char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)pat(st, st->w + i);
}

/* n bytes read from st: they must be the next ones written.  (Whether
 * more was read than written is asked once the writer has stopped: its
 * count grows only after its call returns.) */
static void take(struct worker *w, struct stream *st, const char *buf,
		 ssize_t n, const char *who)
{
	for (ssize_t i = 0; i < n; i++)
		if ((uint8_t)buf[i] != pat(st, st->r + (uint64_t)i)) {
			failf(w, "%s read byte %llu of the %s stream as %u, "
			      "expected %u: bytes lost, repeated or out of "
			      "order", who,
			      (unsigned long long)(st->r + (uint64_t)i),
			      st->name, (uint8_t)buf[i],
			      pat(st, st->r + (uint64_t)i));
			break;
		}
	st->r += n > 0 ? (uint64_t)n : 0;
}

/* Nobody has read more of st than was written to it. */
static void check_stream(struct worker *w, struct stream *st)
{
	expect(w, st->r <= st->w, "%llu bytes of the %s stream were read, "
	       "only %llu written", (unsigned long long)st->r, st->name,
	       (unsigned long long)st->w);
}

/* ---- the helpers --------------------------------------------------------- */

static struct chanm *chan_of(struct worker *w, struct action *a)
{
	return &w->ch[a->s];
}

static void h_write(struct helper *h, struct action *a)
{
	struct stream *st = &h->w->st[a->s];

	fill(st, h->buf, (size_t)a->n);
	a->rc = ctx_write(h->pctx, st->wr, h->buf, (size_t)a->n);
	if (a->rc > 0) {
		st->w += (uint64_t)a->rc;
		a->t1 = ctx_now();
	}
}

static void h_drain(struct helper *h, struct action *a)
{
	struct stream *st = &h->w->st[a->s];

	while (st->r < (uint64_t)a->n) {
		size_t want = (size_t)((uint64_t)a->n - st->r);
		ssize_t n = ctx_read(h->pctx, st->rd, h->buf,
				     want < MAX_XFER ? want : MAX_XFER);
		atomic_fetch_add(&h->w->helper_calls, 1);
		if (n <= 0) {
			a->rc = n;
			return;
		}
		take(h->w, st, h->buf, n, "the peer");
	}
	a->t1 = ctx_now();
}

static void h_send(struct helper *h, struct action *a)
{
	struct chanm *m = chan_of(h->w, a);
	uint64_t v = m->sent;

	a->rc = ctx_chan_send(h->pctx, m->ch, &v);
	if (a->rc == 0) {
		m->sent++;
		a->t1 = ctx_now();
	}
}

static void h_recv(struct helper *h, struct action *a)
{
	struct chanm *m = chan_of(h->w, a);

	while (m->got < (uint64_t)a->n) {
		uint64_t v = UINT64_MAX;

		a->rc = ctx_chan_recv(h->pctx, m->ch, &v);
		atomic_fetch_add(&h->w->helper_calls, 1);
		if (a->rc)
			return;
		expect(h->w, v == m->got, "the peer received %llu from a "
		       "channel, expected %llu", (unsigned long long)v,
		       (unsigned long long)m->got);
		m->got++;
	}
	a->t1 = ctx_now();
}

static void h_signal(struct helper *h, struct action *a)
{
	struct worker *w = h->w;

	pthread_mutex_lock(&w->mu);
	w->pred++;
	if (a->n)
		ctx_cond_broadcast(&w->cond);
	else
		ctx_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
	a->t1 = ctx_now();
}

static void h_fifo_writer(struct helper *h, struct action *a)
{
	struct worker *w = h->w;
	int fd = a->n2 ? open(w->fifo_path, O_WRONLY | O_CLOEXEC)
		       : ctx_open(h->pctx, w->fifo_path, O_WRONLY | O_CLOEXEC);

	a->rc = -1;
	if (fd < 0)
		return;
	a->t1 = ctx_now();
	fill(&w->fifo, h->buf, (size_t)a->n);
	a->rc = ctx_write(h->pctx, fd, h->buf, (size_t)a->n);
	a->t2 = ctx_now();
	w->fifo.w += a->rc > 0 ? (uint64_t)a->rc : 0;
	close(fd);
}

static void h_fifo_reader(struct helper *h, struct action *a)
{
	struct worker *w = h->w;
	int fd = ctx_open(h->pctx, w->fifo_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	a->rc = -1;
	if (fd < 0)
		return;
	a->t1 = ctx_now();
	while ((n = ctx_read(h->pctx, fd, h->buf, MAX_XFER)) > 0)
		take(w, &w->fifo, h->buf, n, "the FIFO's reader");
	a->rc = n;
	close(fd);
}

static void act(struct helper *h, struct action *a)
{
	switch (a->kind) {
	case A_WRITE: h_write(h, a); break;
	case A_DRAIN: h_drain(h, a); break;
	case A_CANCEL:
		ctx_cancel(a->victim);
		a->t1 = ctx_now();
		break;
	case A_SEND: h_send(h, a); break;
	case A_RECV: h_recv(h, a); break;
	case A_CLOSE:
		chan_of(h->w, a)->closed = true;
		ctx_chan_close(chan_of(h->w, a)->ch);
		a->t1 = ctx_now();
		break;
	case A_SIGNAL: h_signal(h, a); break;
	case A_RELEASE:
		ctx_sem_release(h->w->sem, a->n);
		a->t1 = ctx_now();
		break;
	case A_FIFO_W: h_fifo_writer(h, a); break;
	case A_FIFO_R: h_fifo_reader(h, a); break;
	}
	atomic_fetch_add(&h->w->helper_calls, 1);
}

/* The actions in time order, each at its time, until the step ends the
 * helper's context. */
static void run_job(struct helper *h)
{
	for (int i = 0; i < h->n; i++) {
		struct action *a = &h->a[i];

		if (ctx_sleep_until(h->pctx, a->at) != 0)
			return;
		a->t0 = ctx_now();
		act(h, a);
	}
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->posted && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (!h->posted)
			break;
		pthread_mutex_unlock(&h->mu);
		run_job(h);
		pthread_mutex_lock(&h->mu);
		h->posted = false;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

static void helper_start(struct worker *w, struct helper *h)
{
	h->w = w;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	ck_assert_int_eq(pthread_create(&h->th, NULL, helper_main, h), 0);
}

static void helper_stop(struct helper *h)
{
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
}

/* An action `at` after the step's start, kept in time order; its index. */
static int add(struct helper *h, int kind, int s, long n, int64_t at)
{
	int i = h->n++;

	need(h->w, h->n <= MAX_ACTS);
	while (i > 0 && h->a[i - 1].at > at) {
		h->a[i] = h->a[i - 1];
		i--;
	}
	h->a[i] = (struct action){ .kind = kind, .s = s, .n = n, .at = at };
	return i;
}

static struct action *find(struct helper *h, int kind)
{
	for (int i = 0; i < h->n; i++)
		if (h->a[i].kind == kind)
			return &h->a[i];
	return NULL;
}

static void post(struct helper *h, int64_t base)
{
	for (int i = 0; i < h->n; i++)
		h->a[i].at += base;
	h->pctx = ctx_with_cancel(ctx_background());
	need(h->w, h->pctx);
	pthread_mutex_lock(&h->mu);
	h->posted = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Until the helper has done its job; with cancel, its waits end now. */
static void finish(struct helper *h, bool cancel)
{
	if (cancel)
		ctx_cancel(h->pctx);
	pthread_mutex_lock(&h->mu);
	while (h->posted)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	ctx_release(h->pctx);
	h->pctx = NULL;
}

/* ---- a step: its context, its description, its checks -------------------- */

/* One action in words, at the end of buf. */
static void describe_act(struct worker *w, struct action *a, char *buf,
			 size_t len)
{
	size_t l = strlen(buf);

	switch (a->kind) {
	case A_WRITE:
	case A_DRAIN:
		snprintf(buf + l, len - l, " %ld (%s)", a->n, w->st[a->s].name);
		break;
	case A_FIFO_W:
		snprintf(buf + l, len - l, " %ld%s", a->n,
			 a->n2 ? " with open(2)" : "");
		break;
	case A_RECV:
		snprintf(buf + l, len - l, " %ld (ch%d)", a->n, a->s);
		break;
	case A_SEND:
	case A_CLOSE:
		snprintf(buf + l, len - l, " (ch%d)", a->s);
		break;
	case A_RELEASE:
		snprintf(buf + l, len - l, " %ld", a->n);
		break;
	}
	l = strlen(buf);
	snprintf(buf + l, len - l, " at %.2f ms", (double)a->at / CTX_MSEC);
}

static void describe_acts(struct worker *w, struct helper *h, char *buf,
			  size_t len)
{
	for (int i = 0; i < h->n; i++) {
		size_t l = strlen(buf);

		snprintf(buf + l, len - l, "%s %s", l ? ";" : "",
			 act_names[h->a[i].kind]);
		describe_act(w, &h->a[i], buf, len);
	}
}

static const char *const how_names[E_COUNT] = {
	"background", "cancel", "timeout", "timeout+cancel", "done before",
	"timeout under a parent that is cancelled",
};

/* The step's call in words, with its context and the helpers' plan. */
__attribute__((format(printf, 2, 3)))
static void describe(struct worker *w, const char *fmt, ...)
{
	char d[160], acts[240] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	describe_acts(w, &w->peer, acts, sizeof(acts));
	describe_acts(w, &w->canceller, acts, sizeof(acts));
	char how[64];
	if (w->s.how == E_PRE)
		snprintf(how, sizeof(how), "done before (%s)",
			 w->step % 2 ? "deadline 0" : "cancelled");
	else if (w->s.timeout || w->s.how == E_TIMEOUT ||
		 w->s.how == E_BOTH || w->s.how == E_CHAIN)
		snprintf(how, sizeof(how), "%s %.2f ms", how_names[w->s.how],
			 (double)w->s.timeout / CTX_MSEC);
	else
		snprintf(how, sizeof(how), "%s", how_names[w->s.how]);
	pthread_mutex_lock(&w->what_mu);
	snprintf(w->hist[w->step % HIST], DESC, "%s; context %s; call after "
		 "%.2f ms;%s", d, how, (double)w->s.delay / CTX_MSEC,
		 acts[0] ? acts : " no helper");
	pthread_mutex_unlock(&w->what_mu);
}

/*
 * Choose how the call's context ends.  Returns whether it can end the
 * call: if not, and the call has no timeout of its own, the caller must
 * plan something that completes it.
 */
static bool plan_ctx(struct worker *w)
{
	static const int weight[E_COUNT] = { 3, 2, 4, 2, 1, 1 };
	struct step *s = &w->s;
	int k = (int)pick(w, 13);

	s->how = 0;
	while (k >= weight[s->how])
		k -= weight[s->how++];
	s->timeout = pick_time(w);
	s->delay = chance(w, 30) ? pick_time(w) / 8 : 0;
	int64_t at = pick_time(w);
	if (s->how == E_CANCEL || s->how == E_BOTH || s->how == E_CHAIN)
		add(&w->canceller, A_CANCEL, 0, 0, at);
	if (s->how != E_TIMEOUT && s->how != E_BOTH && s->how != E_CHAIN)
		s->timeout = 0;
	return s->how != E_NONE;
}

static void make_ctx(struct worker *w)
{
	struct step *s = &w->s;
	ctx_t *bg = ctx_background();
	int64_t dl;

	s->parent = NULL;
	s->pre = false;
	switch (s->how) {
	case E_NONE: s->ctx = bg; break;
	case E_CANCEL: s->ctx = ctx_with_cancel(bg); break;
	case E_TIMEOUT:
	case E_BOTH: s->ctx = ctx_with_timeout(bg, s->timeout); break;
	case E_PRE:
		s->pre = w->step % 2 == 0;
		s->ctx = ctx_with_timeout(bg, s->pre ? CTX_SEC : 0);
		if (s->pre)
			ctx_cancel(s->ctx);
		break;
	case E_CHAIN:
		s->parent = ctx_with_cancel(bg);
		need(w, s->parent);
		s->ctx = ctx_with_timeout(s->parent, s->timeout);
		break;
	}
	need(w, s->ctx);
	s->dl = ctx_deadline(s->ctx, &dl) ? dl : NEVER;
	struct action *c = find(&w->canceller, A_CANCEL);
	if (c)
		c->victim = s->parent ? s->parent : s->ctx;
}

/* Start the helpers, wait the planned delay: the call comes next. */
static void go(struct worker *w, const char *call)
{
	struct step *s = &w->s;

	s->call = call;
	s->base = ctx_now();
	post(&w->peer, s->base);
	post(&w->canceller, s->base);
	if (s->delay)
		tu_sleep_ns(s->delay);
	atomic_store(&w->must_end, ctx_now() + tol +
			STUCK_MS * CTX_MSEC * scale());
	atomic_store(&w->in_call, true);
	s->t0 = ctx_now();
}

static void returned(struct worker *w)
{
	w->s.t1 = ctx_now();
	atomic_store(&w->in_call, false);
}

/* Both helpers done: the peer's waits end now (with_peer_cancel) or
 * once it has done all it was to do. */
static void end_helpers(struct worker *w, bool peer_cancel)
{
	finish(&w->canceller, true);
	finish(&w->peer, peer_cancel);
	atomic_store(&w->must_end, 0);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t cancel_t(struct worker *w, bool began)
{
	struct action *c = find(&w->canceller, A_CANCEL);
	int64_t t = c ? (began ? c->t0 : c->t1) : 0;

	return t ? t : NEVER;
}

/* Whether the context was done before the call began: a success then is
 * wrong (a done context refuses every wait). */
static bool done_before(struct worker *w)
{
	struct step *s = &w->s;

	return s->pre || s->dl <= s->t0 || cancel_t(w, false) <= s->t0;
}

/* Whether the context could have ended the call by the time it returned. */
static bool could_end(struct worker *w)
{
	struct step *s = &w->s;

	return s->pre || s->dl <= s->t1 || cancel_t(w, true) <= s->t1;
}

/* The call returned no later than TOL after the first thing that let it
 * (a call that nothing could end would be found by the watchdog). */
static void check_late(struct worker *w)
{
	struct step *s = &w->s;
	int64_t by = min64(min64(s->ready, s->own),
			   min64(s->dl, cancel_t(w, false)));

	if (s->untimed)
		return;
	if (s->pre)
		by = s->t0;
	if (by == NEVER)
		return; /* it completed on its own: the kernel had room */
	expect(w, s->t1 - by <= tol, "%s returned %.1f ms after it could "
	       "(ready at %.2f ms, its own timeout %.2f, deadline %.2f, "
	       "cancel %.2f; returned at %.2f)", s->call,
	       (double)(s->t1 - by) / CTX_MSEC, rel_ms(w, s->ready),
	       rel_ms(w, s->own), rel_ms(w, s->dl),
	       rel_ms(w, cancel_t(w, false)), rel_ms(w, s->t1));
}

/* A call's error: the context's, and only once it could have ended. */
static void check_err(struct worker *w, int err)
{
	struct step *s = &w->s;

	if (err == CTX_DEADLINE_EXCEEDED && s->dl == NEVER)
		failf(w, "%s failed with ETIMEDOUT under a context with no "
		      "deadline", s->call);
	else if (err == CTX_DEADLINE_EXCEEDED)
		expect(w, s->dl <= s->t1, "%s failed with ETIMEDOUT %.2f ms "
		       "before its deadline", s->call,
		       (double)(s->dl - s->t1) / CTX_MSEC);
	else if (err == CTX_CANCELED)
		expect(w, s->pre || cancel_t(w, true) <= s->t1, "%s failed "
		       "with ECANCELED but nothing cancelled its context",
		       s->call);
	else
		failf(w, "%s failed with %d (%s)", s->call, err,
		      strerror(err));
}

/* A call that returns 0 or an error: its result and its timing. */
static void check_end(struct worker *w, int err)
{
	check_late(w);
	if (err)
		check_err(w, err);
	else
		expect(w, !done_before(w), "%s succeeded although its "
		       "context was done before the call", w->s.call);
}

static void release_ctx(struct worker *w)
{
	ctx_release(w->s.ctx);
	ctx_release(w->s.parent);
	w->s.ctx = w->s.parent = NULL;
}

/* When an action (NULL: none planned) had done what it is for, and when
 * it began; NEVER if it did not. */
static int64_t done_at(struct action *a)
{
	return a && a->t1 ? a->t1 : NEVER;
}

static int64_t began_at(struct action *a)
{
	return a && a->t0 ? a->t0 : NEVER;
}

/* ---- transfers on streams ------------------------------------------------ */

static const char *const read_names[] = { "ctx_read", "ctx_readv",
					  "ctx_recv" };
static const char *const write_names[] = { "ctx_write", "ctx_writev",
					   "ctx_send" };

static ssize_t w_read(struct worker *w, int fd, size_t len, int how)
{
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 2 },
		{ .iov_base = w->buf + len / 2, .iov_len = len - len / 2 },
	};

	if (how == 0)
		return ctx_read(w->s.ctx, fd, w->buf, len);
	if (how == 1)
		return ctx_readv(w->s.ctx, fd, iov, 2);
	return ctx_recv(w->s.ctx, fd, w->buf, len, 0);
}

static ssize_t w_write(struct worker *w, int fd, size_t len, int how)
{
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 2 },
		{ .iov_base = w->buf + len / 2, .iov_len = len - len / 2 },
	};

	if (how == 0)
		return ctx_write(w->s.ctx, fd, w->buf, len);
	if (how == 1)
		return ctx_writev(w->s.ctx, fd, iov, 2);
	return ctx_send(w->s.ctx, fd, w->buf, len, MSG_NOSIGNAL);
}

/* A read from the peer: what is buffered, or what the peer writes. */
static void step_read(struct worker *w)
{
	int k = (int)pick(w, ST_KINDS), si = 2 * k + 1;
	struct stream *st = &w->st[si];
	size_t len = pick_len(w, MAX_XFER), n = pick_len(w, PIPE_CAP);
	int how = (int)pick(w, st->sock ? 3 : 2);
	uint64_t avail = st->w - st->r;
	bool ends = plan_ctx(w);
	int64_t at = pick_time(w);

	if (!avail && (!ends || chance(w, 70)))
		add(&w->peer, A_WRITE, si, (long)n, at);
	describe(w, "%s(%s, %zu) with %llu buffered", read_names[how],
		 st->name, len, (unsigned long long)avail);
	make_ctx(w);
	go(w, read_names[how]);
	ssize_t got = w_read(w, st->rd, len, how);
	int err = errno;
	returned(w);
	end_helpers(w, true);
	w->s.ready = avail ? w->s.t0 : done_at(find(&w->peer, A_WRITE));
	take(w, st, w->buf, got, "the worker");
	check_stream(w, st);
	expect(w, got != 0, "%s returned 0 (end of file) on a stream "
	       "nobody closed", w->s.call);
	expect(w, got <= (ssize_t)len, "%s returned %zd for %zu", w->s.call,
	       got, len);
	check_end(w, got < 0 ? err : 0);
	release_ctx(w);
}

/* A short write: only once the context could have ended it. */
static void check_count(struct worker *w, ssize_t n, size_t len, int err)
{
	if (n == (ssize_t)len || n < 0) {
		check_end(w, n < 0 ? err : 0);
		return;
	}
	check_late(w);
	expect(w, n > 0 && n < (ssize_t)len, "%s returned %zd for %zu",
	       w->s.call, n, len);
	expect(w, could_end(w), "%s moved %zd of %zu bytes although its "
	       "context had not ended", w->s.call, n, len);
}

/* A write to the peer: room in the buffer, or the peer drains it. */
static void step_write(struct worker *w)
{
	int k = (int)pick(w, ST_KINDS), si = 2 * k;
	struct stream *st = &w->st[si];
	size_t len = pick_len(w, MAX_XFER);
	int how = (int)pick(w, st->sock ? 3 : 2);
	uint64_t backlog = st->w - st->r;
	bool fits = !st->sock && backlog + len <= PIPE_CAP;
	bool ends = plan_ctx(w);
	int64_t at = pick_time(w);

	if ((!fits && (!ends || chance(w, 70))) || chance(w, 20))
		add(&w->peer, A_DRAIN, si, (long)(st->w + len), at);
	describe(w, "%s(%s, %zu) with %llu buffered", write_names[how],
		 st->name, len, (unsigned long long)backlog);
	make_ctx(w);
	fill(st, w->buf, len);
	go(w, write_names[how]);
	ssize_t n = w_write(w, st->wr, len, how);
	int err = errno;
	returned(w);
	/* After a whole write a drain reads it all: when it had, the write
	 * could complete, at the latest. */
	end_helpers(w, n != (ssize_t)len);
	st->w += n > 0 ? (uint64_t)n : 0;
	check_stream(w, st);
	w->s.ready = fits ? w->s.t0 : done_at(find(&w->peer, A_DRAIN));
	check_count(w, n, len, err);
	release_ctx(w);
}

/* ---- a regular file ------------------------------------------------------ */

enum { FO_PWRITE, FO_PREAD, FO_WRITE, FO_READ, FO_PWRITEV, FO_PREADV,
       FO_FSYNC, FO_FDATASYNC, FO_COUNT };
static const char *const fo_names[FO_COUNT] = {
	"ctx_pwrite", "ctx_pread", "ctx_write", "ctx_read", "ctx_pwritev",
	"ctx_preadv", "ctx_fsync", "ctx_fdatasync",
};

static bool fo_writes(int op)
{
	return op == FO_PWRITE || op == FO_WRITE || op == FO_PWRITEV;
}

static bool fo_reads(int op)
{
	return op == FO_PREAD || op == FO_READ || op == FO_PREADV;
}

static ssize_t file_call(struct worker *w, int op, size_t len, off_t off)
{
	ctx_t *c = w->s.ctx;
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 3 },
		{ .iov_base = w->buf + len / 3, .iov_len = len - len / 3 },
	};

	switch (op) {
	case FO_PWRITE: return ctx_pwrite(c, w->file, w->buf, len, off);
	case FO_PREAD: return ctx_pread(c, w->file, w->buf, len, off);
	case FO_WRITE: return ctx_write(c, w->file, w->buf, len);
	case FO_READ: return ctx_read(c, w->file, w->buf, len);
	case FO_PWRITEV: return ctx_pwritev(c, w->file, iov, 2, off);
	case FO_PREADV: return ctx_preadv(c, w->file, iov, 2, off);
	case FO_FSYNC: return ctx_fsync(c, w->file);
	default: return ctx_fdatasync(c, w->file);
	}
}

/* What a transfer on the file moved, against the shadow copy. */
static void file_result(struct worker *w, int op, ssize_t n, size_t len,
			off_t pos, int err)
{
	size_t want = len;

	if (fo_reads(op))
		want = pos >= w->fsize ? 0 :
		       (size_t)(w->fsize - pos) < len ? (size_t)(w->fsize - pos)
						      : len;
	if (n >= 0 && fo_reads(op))
		expect(w, memcmp(w->buf, w->shadow + pos, (size_t)n) == 0,
		       "%s at %lld read %zd bytes that are not what was "
		       "written there", w->s.call, (long long)pos, n);
	if (n > 0 && fo_writes(op)) {
		memcpy(w->shadow + pos, w->buf, (size_t)n);
		if (pos + n > w->fsize)
			w->fsize = pos + n;
	}
	if (n > 0 && (op == FO_READ || op == FO_WRITE))
		w->foff += n;
	check_count(w, n, want, err);
}

static void step_file(struct worker *w)
{
	int op = (int)pick(w, FO_COUNT);
	size_t len = pick_len(w, MAX_XFER);
	off_t off = (off_t)pick(w, FILE_SIZE - MAX_XFER);

	if (w->foff > FILE_SIZE - MAX_XFER)
		w->foff = lseek(w->file, 0, SEEK_SET);
	off_t pos = op == FO_READ || op == FO_WRITE ? w->foff : off;
	plan_ctx(w);
	if (op == FO_FSYNC || op == FO_FDATASYNC)
		describe(w, "%s(file) of %lld bytes", fo_names[op],
			 (long long)w->fsize);
	else
		describe(w, "%s(file, %zu, at %lld) of %lld bytes",
			 fo_names[op], len, (long long)pos,
			 (long long)w->fsize);
	make_ctx(w);
	for (size_t i = 0; fo_writes(op) && i < len; i++)
		w->buf[i] = (char)(w->step * 7 + (long)i);
	go(w, fo_names[op]);
	ssize_t n = file_call(w, op, len, off);
	int err = errno;
	returned(w);
	end_helpers(w, true);
	/* A file in memory never waits; one on a disk waits as long as the
	 * disk takes, which only io_uring lets a context end (ctx_read(3)). */
	if (w->mem_file)
		w->s.ready = w->s.t0;
	else
		w->s.untimed = strcmp(ctx_backend(), "io_uring") != 0;
	if (op == FO_FSYNC || op == FO_FDATASYNC)
		check_end(w, n ? err : 0);
	else
		file_result(w, op, n, len, pos, err);
	off_t at = lseek(w->file, 0, SEEK_CUR);
	expect(w, at == w->foff, "after %s the file's offset is %lld, "
	       "expected %lld", w->s.call, (long long)at, (long long)w->foff);
	release_ctx(w);
}

/* ---- a FIFO, opened from either end -------------------------------------- */

static void fifo_fresh(struct worker *w)
{
	w->fifo = (struct stream){ .salt = (uint8_t)w->step, .name = "fifo" };
}

static int64_t later(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* When the call's context ended, as far as the test knows. */
static int64_t ctx_end(struct worker *w)
{
	return w->s.pre ? w->s.t0 : min64(w->s.dl, cancel_t(w, true));
}

/*
 * What the FIFO's writer wrote, the worker read.  A reader's open that
 * fails loses what a writer wrote after its own open succeeded; that
 * is no fault when the writer came in as the reader's context ended
 * (open(2) interrupted by a signal has the same window, and a writer
 * that opened an instant before the end may not be seen), but bytes
 * that were in the FIFO before the end were there for the reader.
 */
static void check_fifo_read(struct worker *w, int fd, struct action *a)
{
	if (fd >= 0) {
		expect(w, a && a->t1, "ctx_open(O_RDONLY) succeeded with no "
		       "writer");
		expect(w, w->fifo.r == w->fifo.w, "the FIFO's writer wrote "
		       "%llu bytes, the reader read %llu to the end",
		       (unsigned long long)w->fifo.w,
		       (unsigned long long)w->fifo.r);
		return;
	}
	if (!a || !a->t1 || a->rc <= 0)
		return;
	expect(w, a->t2 >= ctx_end(w), "a writer opened the FIFO at %.2f ms "
	       "and had written %ld bytes by %.2f ms, before the context "
	       "ended at %.2f ms; the reader's ctx_open failed and the bytes "
	       "are lost", rel_ms(w, a->t1), a->rc, rel_ms(w, a->t2),
	       rel_ms(w, ctx_end(w)));
}

/* Everything until end of file, in the pattern, within a bound. */
static void fifo_drain(struct worker *w, int fd)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 2 * tol);
	ssize_t n;

	need(w, c);
	while ((n = ctx_read(c, fd, w->back, MAX_XFER)) > 0)
		take(w, &w->fifo, w->back, n, "the worker");
	expect(w, n == 0, "reading the FIFO to its end failed: %s",
	       strerror(errno));
	ctx_release(c);
}

/*
 * The worker opens the FIFO to read and reads to the end; the writer
 * opens with ctx_open, or (when nothing else could end the worker's
 * open) is already blocked in open(2) when the worker's call begins:
 * issue 21's first case, whose line was lost.
 */
static void step_fifo_read(struct worker *w)
{
	bool ends = plan_ctx(w);
	int64_t at = pick_time(w);
	long n = 1 + (long)pick(w, PIPE_CAP);

	if (!ends || chance(w, 80))
		w->peer.a[add(&w->peer, A_FIFO_W, 0, n, ends ? at : 0)].n2 =
			!ends;
	if (!ends)
		w->s.delay += CTX_MSEC; /* the writer is in open(2) first */
	fifo_fresh(w);
	describe(w, "ctx_open(fifo, O_RDONLY), then read to the end");
	make_ctx(w);
	go(w, "ctx_open(fifo, O_RDONLY)");
	int fd = ctx_open(w->s.ctx, w->fifo_path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	returned(w);
	struct action *a = find(&w->peer, A_FIFO_W);
	if (fd >= 0) {
		fifo_drain(w, fd);
		close(fd);
		end_helpers(w, false);
	} else {
		/* A writer in open(2) waits for a reader: give it one. */
		int r = a && a->n2 ? open(w->fifo_path, O_RDONLY |
					  O_NONBLOCK | O_CLOEXEC) : -1;
		end_helpers(w, true);
		if (r >= 0)
			close(r);
	}
	w->s.ready = later(w->s.t0, began_at(a));
	check_end(w, fd < 0 ? err : 0);
	check_fifo_read(w, fd, a);
	release_ctx(w);
}

/* The worker opens the FIFO to write, writes and closes; the peer opens
 * it to read (with ctx_open) and reads to the end. */
static void step_fifo_write(struct worker *w)
{
	bool ends = plan_ctx(w);
	int64_t at = pick_time(w);
	size_t n = pick_len(w, PIPE_CAP);

	if (!ends || chance(w, 80))
		add(&w->peer, A_FIFO_R, 0, 0, at);
	fifo_fresh(w);
	describe(w, "ctx_open(fifo, O_WRONLY), then write %zu", n);
	make_ctx(w);
	go(w, "ctx_open(fifo, O_WRONLY)");
	int fd = ctx_open(w->s.ctx, w->fifo_path, O_WRONLY | O_CLOEXEC);
	int err = errno;
	returned(w);
	if (fd >= 0) {
		ctx_t *c = ctx_with_timeout(ctx_background(), 2 * tol);
		need(w, c);
		fill(&w->fifo, w->buf, n);
		ssize_t m = ctx_write(c, fd, w->buf, n);
		expect(w, m == (ssize_t)n, "writing %zu bytes to the FIFO "
		       "returned %zd (%s)", n, m, strerror(errno));
		w->fifo.w += m > 0 ? (uint64_t)m : 0;
		ctx_release(c);
		close(fd);
	}
	end_helpers(w, fd < 0);
	struct action *a = find(&w->peer, A_FIFO_R);
	w->s.ready = later(w->s.t0, began_at(a));
	check_end(w, fd < 0 ? err : 0);
	expect(w, w->fifo.r == w->fifo.w, "the FIFO's reader read %llu "
	       "bytes to the end, %llu were written",
	       (unsigned long long)w->fifo.r, (unsigned long long)w->fifo.w);
	expect(w, fd < 0 || (a && a->t1 && a->rc == 0), "the worker opened "
	       "the FIFO to write, but its reader never reached the end");
	release_ctx(w);
}

static void step_fifo(struct worker *w)
{
	if (chance(w, 50))
		step_fifo_read(w);
	else
		step_fifo_write(w);
}

/* ---- select and poll ----------------------------------------------------- */

enum { C_RECV, C_SEND, C_FD, C_DONE, C_KINDS };

struct sel {
	struct ctx_case cs[C_KINDS];
	int kind[C_KINDS], n;
	int r;                  /* ch[r] is received from, ch[!r] sent to */
	uint64_t rv, sv;
	ctx_t *done;
	bool ready0;            /* some case was ready before the call */
	int64_t timeout;
};

static int64_t pick_timeout(struct worker *w)
{
	uint32_t k = pick(w, 4);

	return k == 0 ? -1 : k == 1 ? 0 : pick_time(w);
}

/* A call's own timeout in words: "none" below zero. */
static const char *timeout_str(char *buf, size_t len, int64_t t)
{
	if (t < 0)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%.2f ms", (double)t / CTX_MSEC);
	return buf;
}

/* The cases, in a random order, and whether one is ready already. */
static void sel_cases(struct worker *w, struct sel *x, const bool *want)
{
	struct chanm *rm = &w->ch[x->r], *sm = &w->ch[!x->r];
	struct stream *st = &w->st[2 * ST_PIPE + 1];
	int start = (int)pick(w, C_KINDS);

	for (int j = 0; j < C_KINDS; j++) {
		int k = (start + j) % C_KINDS;
		struct ctx_case c = { .kind = 0, .fd = -1 };
		if (!want[k])
			continue;
		if (k == C_RECV)
			c = (struct ctx_case){ .kind = CTX_CASE_RECV,
					       .ch = rm->ch, .elem = &x->rv,
					       .fd = -1 };
		else if (k == C_SEND)
			c = (struct ctx_case){ .kind = CTX_CASE_SEND,
					       .ch = sm->ch, .elem = &x->sv,
					       .fd = -1 };
		else if (k == C_FD)
			c = (struct ctx_case){ .kind = CTX_CASE_FD,
					       .fd = st->rd, .events = POLLIN };
		else
			c = (struct ctx_case){ .kind = CTX_CASE_DONE,
					       .done = x->done, .fd = -1 };
		x->kind[x->n] = k;
		x->cs[x->n++] = c;
	}
	x->ready0 = (want[C_RECV] && (rm->sent > rm->got || rm->closed)) ||
		    (want[C_SEND] && (sm->closed ||
				      sm->sent - sm->got < sm->cap)) ||
		    (want[C_FD] && st->w > st->r) ||
		    (want[C_DONE] && ctx_err(x->done));
}

/* What makes each case ready, if planned (at most two of them). */
static void sel_plan(struct worker *w, struct sel *x, bool ends)
{
	int planned = 0;

	for (int j = 0; j < x->n && planned < 2; j++) {
		int k = x->kind[j];
		int64_t at = pick_time(w);
		bool force = !ends && !x->ready0 && planned == 0;
		if (!force && !chance(w, 40))
			continue;
		planned++;
		if (k == C_RECV)
			add(&w->peer, A_SEND, x->r, 0, at);
		else if (k == C_SEND)
			add(&w->peer, A_RECV, !x->r,
			    (long)(w->ch[!x->r].sent + 1), at);
		else if (k == C_FD)
			add(&w->peer, A_WRITE, 2 * ST_PIPE + 1,
			    (long)pick_len(w, PIPE_CAP), at);
		else
			w->peer.a[add(&w->peer, A_CANCEL, 0, 0, at)].victim =
				x->done;
	}
}

/* When the first case became ready, from what the peer did. */
static int64_t sel_ready(struct worker *w, struct sel *x)
{
	int64_t t = x->ready0 ? w->s.t0 : NEVER;

	for (int i = 0; i < w->peer.n; i++) {
		struct action *a = &w->peer.a[i];
		/* A peer waiting to send or receive makes the case ready. */
		bool waits = a->kind == A_SEND || a->kind == A_RECV;
		t = min64(t, waits ? began_at(a) : done_at(a));
	}
	return t;
}

/* The chosen case did what it says, and the model moves on. */
static void sel_chosen(struct worker *w, struct sel *x, int i)
{
	struct ctx_case *c = &x->cs[i];
	struct chanm *rm = &w->ch[x->r], *sm = &w->ch[!x->r];
	struct stream *st = &w->st[2 * ST_PIPE + 1];

	switch (x->kind[i]) {
	case C_RECV:
		if (c->result == EPIPE) {
			expect(w, rm->closed && rm->sent == rm->got, "a "
			       "receive case was chosen with EPIPE on an "
			       "open channel or one holding values");
			break;
		}
		expect(w, c->result == 0 && x->rv == rm->got && rm->got <
		       rm->sent, "a receive case was chosen with result %d "
		       "and value %llu; expected %llu (%llu sent)", c->result,
		       (unsigned long long)x->rv,
		       (unsigned long long)rm->got,
		       (unsigned long long)rm->sent);
		rm->got++;
		break;
	case C_SEND:
		expect(w, c->result == 0 || (c->result == EPIPE && sm->closed),
		       "a send case was chosen with result %d", c->result);
		sm->sent += c->result == 0;
		break;
	case C_FD:
		expect(w, (c->revents & POLLIN) && st->w > st->r, "the "
		       "descriptor case was chosen with revents %#x and %llu "
		       "bytes to read", c->revents,
		       (unsigned long long)(st->w - st->r));
		break;
	default:
		expect(w, c->result == CTX_CANCELED &&
		       ctx_err(x->done) == CTX_CANCELED, "the context case "
		       "was chosen with result %d, its context's error %d",
		       c->result, ctx_err(x->done));
	}
}

static void sel_check(struct worker *w, struct sel *x, int i, int err)
{
	struct step *s = &w->s;

	s->ready = sel_ready(w, x);
	s->own = x->timeout >= 0 ? s->t0 + x->timeout : NEVER;
	if (i >= 0) {
		expect(w, i < x->n, "returned %d of %d cases", i, x->n);
		if (i < x->n)
			sel_chosen(w, x, i);
		check_end(w, 0);
		return;
	}
	check_late(w);
	if (err == EAGAIN)
		expect(w, x->timeout >= 0 && s->t1 >= s->own && !x->ready0,
		       "ctx_select found nothing ready (EAGAIN) %s",
		       x->timeout < 0 ? "with no timeout" :
		       x->ready0 ? "although a case was ready before the call"
				 : "before its timeout");
	else
		check_err(w, err);
}

static void step_select(struct worker *w)
{
	struct sel x = { .rv = UINT64_MAX, .n = 0 };
	bool want[C_KINDS];
	char tbuf[24];

	x.r = (int)pick(w, 2);
	for (int k = 0; k < C_KINDS; k++)
		want[k] = chance(w, 55);
	want[C_RECV] |= !want[C_SEND] && !want[C_FD] && !want[C_DONE];
	x.done = ctx_with_cancel(ctx_background());
	need(w, x.done);
	if (want[C_DONE] && chance(w, 20))
		ctx_cancel(x.done);
	x.sv = w->ch[!x.r].sent;
	x.timeout = pick_timeout(w);
	bool ends = plan_ctx(w) || x.timeout >= 0;
	sel_cases(w, &x, want);
	sel_plan(w, &x, ends);
	describe(w, "ctx_select(%d cases:%s%s%s%s; timeout %s)%s", x.n,
		 want[C_RECV] ? " recv" : "", want[C_SEND] ? " send" : "",
		 want[C_FD] ? " fd" : "", want[C_DONE] ? " done" : "",
		 timeout_str(tbuf, sizeof(tbuf), x.timeout),
		 x.ready0 ? ", one ready" : "");
	make_ctx(w);
	go(w, "ctx_select");
	int i = ctx_select(w->s.ctx, x.cs, (size_t)x.n, x.timeout);
	int err = errno;
	returned(w);
	end_helpers(w, true);
	sel_check(w, &x, i, err);
	ctx_release(x.done);
	release_ctx(w);
}

/* ctx_poll on the pipe or the socket from the peer. */
static void step_poll(struct worker *w)
{
	int si = chance(w, 50) ? 2 * ST_PIPE + 1 : 2 * ST_UNIX + 1;
	struct stream *st = &w->st[si];
	struct pollfd p = { .fd = st->rd, .events = POLLIN };
	int64_t timeout = pick_timeout(w), at = pick_time(w);
	char tbuf[24];
	bool ready0 = st->w > st->r;
	bool ends = plan_ctx(w) || timeout >= 0;

	if ((!ends && !ready0) || chance(w, 40))
		add(&w->peer, A_WRITE, si, (long)pick_len(w, PIPE_CAP), at);
	describe(w, "ctx_poll(%s, POLLIN, timeout %s)%s", st->name,
		 timeout_str(tbuf, sizeof(tbuf), timeout),
		 ready0 ? ", ready" : "");
	make_ctx(w);
	go(w, "ctx_poll");
	int n = ctx_poll(w->s.ctx, &p, 1, timeout);
	int err = errno;
	returned(w);
	end_helpers(w, true);
	w->s.ready = ready0 ? w->s.t0 : done_at(find(&w->peer, A_WRITE));
	w->s.own = timeout >= 0 ? w->s.t0 + timeout : NEVER;
	if (n == 1)
		expect(w, (p.revents & POLLIN) && st->w > st->r, "ctx_poll "
		       "said POLLIN (revents %#x) with %llu bytes to read",
		       p.revents, (unsigned long long)(st->w - st->r));
	else if (n == 0)
		expect(w, timeout >= 0 && w->s.t1 >= w->s.own && !ready0,
		       "ctx_poll returned 0 %s", timeout < 0 ? "with no "
		       "timeout" : ready0 ? "with data there before the call"
		       : "before its timeout");
	else
		expect(w, n < 0, "ctx_poll returned %d for one descriptor",
		       n);
	check_end(w, n < 0 ? err : 0);
	release_ctx(w);
}

/* ---- channels ------------------------------------------------------------ */

/* A closed channel gives what it holds, then EPIPE. */
static void chan_drain(struct worker *w, struct chanm *m)
{
	uint64_t v;
	int e;

	while ((e = ctx_chan_try_recv(m->ch, &v)) == 0) {
		expect(w, v == m->got, "a closed channel gave %llu, expected "
		       "%llu", (unsigned long long)v,
		       (unsigned long long)m->got);
		m->got++;
	}
	expect(w, e == EPIPE && m->got == m->sent, "a closed channel "
	       "ended with %d after %llu of %llu values", e,
	       (unsigned long long)m->got, (unsigned long long)m->sent);
}

/* A closed channel, once its values are checked, is replaced. */
static void chan_renew(struct worker *w, struct chanm *m)
{
	chan_drain(w, m);
	ctx_chan_free(m->ch);
	*m = (struct chanm){ .ch = ctx_chan_new(sizeof(uint64_t), m->cap),
			     .cap = m->cap };
	need(w, m->ch);
}

/* closed: the channel was closed before the call returned. */
static void chan_send_check(struct worker *w, struct chanm *m, int rc,
			    bool closed)
{
	if (rc == EPIPE) {
		expect(w, closed, "ctx_chan_send: EPIPE on an open channel");
		check_late(w);
		return;
	}
	m->sent += rc == 0;
	check_end(w, rc);
}

static void chan_recv_check(struct worker *w, struct chanm *m, int rc,
			    uint64_t v, bool closed)
{
	if (rc == EPIPE) {
		expect(w, closed && m->got == m->sent, "ctx_chan_recv: "
		       "EPIPE on an open channel or one holding values");
		check_late(w);
		return;
	}
	if (rc == 0) {
		expect(w, v == m->got && m->got < m->sent, "ctx_chan_recv "
		       "gave %llu, expected %llu (%llu sent)",
		       (unsigned long long)v, (unsigned long long)m->got,
		       (unsigned long long)m->sent);
		m->got++;
	}
	check_end(w, rc);
}

/*
 * A send or a receive: ready before the call, or the peer receives or
 * sends (often already waiting), or closes the channel under it.
 */
static void step_chan(struct worker *w)
{
	struct chanm *m = &w->ch[pick(w, 2)];
	bool send = chance(w, 50), was = m->closed;
	bool close = !was && chance(w, 8);
	bool ready0 = m->closed || (send ? m->sent - m->got < m->cap
					 : m->sent > m->got);
	bool ends = plan_ctx(w);
	int64_t at = pick_time(w);
	uint64_t v = send ? m->sent : UINT64_MAX;

	if (close)
		add(&w->peer, A_CLOSE, (int)(m - w->ch), 0, at);
	else if ((!ready0 && !ends) || chance(w, 60))
		add(&w->peer, send ? A_RECV : A_SEND, (int)(m - w->ch),
		    (long)(m->sent + 1), at);
	describe(w, "ctx_chan_%s(ch%d of %zu, %zu held)%s",
		 send ? "send" : "recv", (int)(m - w->ch), m->cap,
		 (size_t)(m->sent - m->got), m->closed ? ", closed" : "");
	make_ctx(w);
	go(w, send ? "ctx_chan_send" : "ctx_chan_recv");
	int rc = send ? ctx_chan_send(w->s.ctx, m->ch, &v)
		      : ctx_chan_recv(w->s.ctx, m->ch, &v);
	returned(w);
	end_helpers(w, true);
	w->s.ready = ready0 ? w->s.t0 : min64(began_at(find(&w->peer,
					       send ? A_RECV : A_SEND)),
					      done_at(find(&w->peer, A_CLOSE)));
	bool closed = was || began_at(find(&w->peer, A_CLOSE)) <= w->s.t1;
	if (send)
		chan_send_check(w, m, rc, closed);
	else
		chan_recv_check(w, m, rc, v, closed);
	if (m->closed && chance(w, 50))
		chan_renew(w, m);
	release_ctx(w);
}

/* ---- a condition variable, a semaphore ----------------------------------- */

/* Waits for the peer's signal, in a loop on the predicate as every
 * caller must; with _until, its own deadline too. */
static void step_cond(struct worker *w)
{
	bool until = chance(w, 40);
	int64_t own = until ? pick_time(w) : 0, at = pick_time(w);
	bool ends = plan_ctx(w) || until, all = chance(w, 50);
	int rc = 0;

	if (!ends || chance(w, 70))
		add(&w->peer, A_SIGNAL, 0, all, at);
	describe(w, "ctx_cond_wait%s(%.2f ms)", until ? "_until" : "",
		 (double)own / CTX_MSEC);
	make_ctx(w);
	pthread_mutex_lock(&w->mu);
	unsigned seen = w->pred;
	go(w, until ? "ctx_cond_wait_until" : "ctx_cond_wait");
	int64_t dl = w->s.t0 + own;
	while (w->pred == seen && rc == 0)
		rc = until ? ctx_cond_wait_until(w->s.ctx, &w->cond, &w->mu, dl)
			   : ctx_cond_wait(w->s.ctx, &w->cond, &w->mu);
	returned(w);
	bool changed = w->pred != seen;
	int ue = pthread_mutex_unlock(&w->mu);
	end_helpers(w, true);
	expect(w, ue == 0, "the mutex was not held when %s returned %d",
	       w->s.call, rc);
	w->s.ready = done_at(find(&w->peer, A_SIGNAL));
	w->s.own = until ? dl : NEVER;
	expect(w, rc || changed, "%s returned 0 with no change", w->s.call);
	if (rc == CTX_DEADLINE_EXCEEDED && until && w->s.t1 >= dl)
		check_late(w);
	else
		check_end(w, rc);
	release_ctx(w);
}

/* The peer holds part of the semaphore and may give it back. */
static void step_sem(struct worker *w)
{
	int64_t n = 1 + pick(w, SEM_SIZE), k = pick(w, SEM_SIZE + 1);
	bool ready0 = SEM_SIZE - k >= n, ends = plan_ctx(w);
	int64_t at = pick_time(w);

	expect(w, k == 0 || ctx_sem_try_acquire(w->sem, k), "the semaphore "
	       "of %d was not whole: %lld could not be taken", SEM_SIZE,
	       (long long)k);
	if (k && ((!ready0 && !ends) || chance(w, 60)))
		add(&w->peer, A_RELEASE, 0, (long)k, at);
	describe(w, "ctx_sem_acquire(%lld) with %lld of %d held",
		 (long long)n, (long long)k, SEM_SIZE);
	make_ctx(w);
	go(w, "ctx_sem_acquire");
	int rc = ctx_sem_acquire(w->s.ctx, w->sem, n);
	returned(w);
	end_helpers(w, true);
	struct action *rel = find(&w->peer, A_RELEASE);
	w->s.ready = ready0 ? w->s.t0 : done_at(rel);
	check_end(w, rc);
	if (rc == 0)
		ctx_sem_release(w->sem, n);
	if (k && done_at(rel) == NEVER)
		ctx_sem_release(w->sem, k);
	/* An acquire that failed took nothing. */
	bool whole = ctx_sem_try_acquire(w->sem, SEM_SIZE);
	expect(w, whole, "the semaphore is not whole after the step");
	if (whole)
		ctx_sem_release(w->sem, SEM_SIZE);
	release_ctx(w);
}

/* ---- sleep, join --------------------------------------------------------- */

static void step_sleep(struct worker *w)
{
	int64_t d = pick_time(w);
	bool until = chance(w, 50);

	plan_ctx(w);
	describe(w, "ctx_sleep%s(%.2f ms)", until ? "_until" : "",
		 (double)d / CTX_MSEC);
	make_ctx(w);
	go(w, until ? "ctx_sleep_until" : "ctx_sleep");
	int rc = until ? ctx_sleep_until(w->s.ctx, w->s.t0 + d)
		       : ctx_sleep(w->s.ctx, d);
	returned(w);
	end_helpers(w, true);
	w->s.own = w->s.t0 + d;
	expect(w, rc || w->s.t1 >= w->s.own, "%s returned 0 %.3f ms early",
	       w->s.call, (double)(w->s.own - w->s.t1) / CTX_MSEC);
	check_end(w, rc);
	release_ctx(w);
}

struct joinee {
	int64_t d, end;
	int rc;
};

static void *joinee_main(ctx_t *ctx, void *arg)
{
	struct joinee *j = arg;

	j->rc = ctx_sleep(ctx, j->d);
	j->end = ctx_now();
	return j;
}

/* A thread that sleeps, or is cancelled by the peer, is joined under the
 * call's context; one not joined in time is joined afterwards. */
static void step_join(struct worker *w)
{
	struct joinee j = { .d = pick_time(w) };
	ctx_t *tc = ctx_with_cancel(ctx_background());
	ctx_thread_t *t = NULL;
	void *res = NULL;
	int64_t at = pick_time(w);

	need(w, tc);
	if (chance(w, 40))
		w->peer.a[add(&w->peer, A_CANCEL, 0, 0, at)].victim = tc;
	plan_ctx(w);
	describe(w, "ctx_thread_join of a thread sleeping %.2f ms",
		 (double)j.d / CTX_MSEC);
	make_ctx(w);
	int64_t made = ctx_now();
	int e = ctx_thread_create(&t, tc, joinee_main, &j);
	need(w, e == 0);
	go(w, "ctx_thread_join");
	int rc = ctx_thread_join(w->s.ctx, t, &res);
	returned(w);
	if (rc) {
		int again = ctx_thread_join(ctx_background(), t, &res);
		expect(w, again == 0, "joining after a failed join: %d",
		       again);
	}
	end_helpers(w, true);
	expect(w, res == &j, "the join gave %p, expected %p", res,
	       (void *)&j);
	expect(w, (j.rc == 0 && j.end - made >= j.d) ||
	       (j.rc == CTX_CANCELED && began_at(find(&w->peer, A_CANCEL))
		<= j.end), "the joined thread's ctx_sleep returned %d after "
	       "%.2f ms of %.2f", j.rc, (double)(j.end - made) / CTX_MSEC,
	       (double)j.d / CTX_MSEC);
	w->s.ready = j.end;
	check_end(w, rc);
	ctx_release(tc);
	release_ctx(w);
}

/* ---- child processes ----------------------------------------------------- */

/* A sleep that the context may kill: ctx_proc_wait says which. */
static void step_proc_sleep(struct worker *w)
{
	int64_t d = pick_time(w);
	char secs[32];
	char *argv[] = { "sleep", secs, NULL };
	struct ctx_proc_attr attr = {
		.stdio = { CTX_STDIO_NULL, CTX_STDIO_NULL, CTX_STDIO_NULL },
	};
	ctx_proc_t *p = NULL;
	int status = 0;

	snprintf(secs, sizeof(secs), "%.6f", (double)d / CTX_SEC);
	plan_ctx(w);
	describe(w, "ctx_proc_spawn and ctx_proc_wait of sleep %s", secs);
	make_ctx(w);
	go(w, "ctx_proc_spawn");
	int rc = ctx_proc_spawn(&p, w->s.ctx, "sleep", argv, &attr);
	if (rc == 0) {
		w->s.call = "ctx_proc_wait";
		rc = ctx_proc_wait(p, &status);
		ctx_proc_free(p);
	}
	returned(w);
	end_helpers(w, true);
	if (rc == 0) {
		expect(w, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "%s returned 0 with status %#x", w->s.call, status);
		expect(w, !done_before(w), "ctx_proc_spawn started a process "
		       "under a context that was done");
		release_ctx(w);
		return;
	}
	expect(w, !strcmp(w->s.call, "ctx_proc_spawn") ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
	       (WIFEXITED(status) && WEXITSTATUS(status) == 0),
	       "%s returned %d with status %#x", w->s.call, rc, status);
	check_late(w);
	check_err(w, rc);
	release_ctx(w);
}

/* cat, fed and drained through its pipes under the call's context. */
struct cat {
	struct stream st;
	size_t len;
	int status;
	ssize_t wn, n;          /* the write's result, the last read's */
};

static int cat_run(struct worker *w, struct cat *c)
{
	char *argv[] = { "cat", NULL };
	struct ctx_proc_attr attr = {
		.stdio = { CTX_STDIO_PIPE, CTX_STDIO_PIPE, CTX_STDIO_NULL },
	};
	ctx_proc_t *p = NULL;
	int rc = ctx_proc_spawn(&p, w->s.ctx, "cat", argv, &attr);

	if (rc)
		return rc;
	c->wn = ctx_write(w->s.ctx, ctx_proc_stdio(p, 0), w->buf, c->len);
	c->st.w = c->wn > 0 ? (uint64_t)c->wn : 0;
	ctx_proc_close(p, 0);
	while ((c->n = ctx_read(w->s.ctx, ctx_proc_stdio(p, 1), w->back,
				MAX_XFER)) > 0)
		take(w, &c->st, w->back, c->n, "the worker");
	w->s.call = "ctx_proc_wait";
	rc = ctx_proc_wait(p, &c->status);
	ctx_proc_free(p);
	return rc;
}

/* What comes back is what went in: all of it unless the context ended,
 * and then every call ends promptly. */
static void step_proc_cat(struct worker *w)
{
	struct cat c = { .st = { .salt = (uint8_t)w->step, .name = "cat" },
			 .wn = -1, .n = -1 };

	c.len = pick_len(w, MAX_XFER);
	plan_ctx(w);
	describe(w, "cat of %zu bytes through ctx_proc's pipes", c.len);
	make_ctx(w);
	fill(&c.st, w->buf, c.len);
	go(w, "ctx_proc_spawn");
	int rc = cat_run(w, &c);
	returned(w);
	end_helpers(w, true);
	check_stream(w, &c.st);
	if (rc == 0 && c.wn == (ssize_t)c.len && c.n == 0) {
		expect(w, c.st.r == c.len && WIFEXITED(c.status) &&
		       WEXITSTATUS(c.status) == 0, "cat gave back %llu of %zu "
		       "bytes, status %#x", (unsigned long long)c.st.r, c.len,
		       c.status);
		expect(w, !done_before(w), "ctx_proc_spawn started a process "
		       "under a context that was done");
	} else {
		check_late(w);
		expect(w, could_end(w), "cat through pipes failed (%d, wrote "
		       "%zd, last read %zd) although the context had not "
		       "ended", rc, c.wn, c.n);
	}
	release_ctx(w);
}

static void step_proc(struct worker *w)
{
	if (chance(w, 50))
		step_proc_sleep(w);
	else
		step_proc_cat(w);
}

/* ---- the workers --------------------------------------------------------- */

static void (*const steps[F_COUNT])(struct worker *w) = {
	step_read, step_write, step_file, step_fifo, step_select, step_poll,
	step_chan, step_cond, step_sem, step_sleep, step_join, step_proc,
};

/* The families' weights in this run: CTX_SEQ_ONLY=select,file keeps
 * those named (to look closer at a failure), and without pidfd_open
 * there are no processes. */
static int weight[F_COUNT];

static void pick_families(void)
{
	const char *only = getenv("CTX_SEQ_ONLY");
	int total = 0;

	for (int f = 0; f < F_COUNT; f++) {
		size_t l = strlen(f_names[f]);
		const char *p = only;
		bool named = !only || !*only;
		while (p && *p && !named) {
			named = !strncmp(p, f_names[f], l) &&
				(p[l] == ',' || !p[l]);
			p = strchr(p, ',');
			p += p != NULL;
		}
		weight[f] = named && (f != F_PROC || have_proc) ? f_weight[f]
								 : 0;
		total += weight[f];
	}
	ck_assert_msg(total > 0, "CTX_SEQ_ONLY=%s names no family", only);
}

static int pick_family(struct worker *w)
{
	int total = 0, f = 0;

	for (int i = 0; i < F_COUNT; i++)
		total += weight[i];
	int k = (int)pick(w, (uint32_t)total);
	while (k >= weight[f])
		k -= weight[f++];
	return f;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!atomic_load(&stop) && !atomic_load(&failed)) {
		pthread_mutex_lock(&w->what_mu); /* the watchdog reads it */
		w->step++;
		pthread_mutex_unlock(&w->what_mu);
		draw(w);
		w->peer.n = w->canceller.n = 0;
		w->s = (struct step){ .ready = NEVER, .own = NEVER };
		int f = pick_family(w);
		steps[f](w);
		w->calls[f]++;
	}
	atomic_store(&w->exited, true);
	return NULL;
}

/* ---- setting up, tearing down -------------------------------------------- */

static void set_nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
			 0);
}

static void small_bufs(int fd)
{
	int v = SOCK_BUF;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)),
			 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)),
			 0);
}

/* A connected TCP pair on the loopback. */
static void tcp_pair(int fd[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd[0], 0);
	ck_assert_int_eq(connect(fd[0], (struct sockaddr *)&a, len), 0);
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd[1], 0);
	close(l);
	for (int i = 0; i < 2; i++) {
		small_bufs(fd[i]);
		setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
}

/* Stream pair k: the worker writes st[2k] at fd[0] and reads st[2k+1]
 * there; the peer has fd[1] (a pipe has a descriptor per way). */
static void streams_open(struct worker *w, int k)
{
	struct stream *to = &w->st[2 * k], *from = &w->st[2 * k + 1];
	int a[2], b[2];

	if (k == ST_PIPE) {
		ck_assert_int_eq(pipe2(a, O_CLOEXEC), 0);
		ck_assert_int_eq(pipe2(b, O_CLOEXEC), 0);
		ck_assert_int_eq(fcntl(a[1], F_SETPIPE_SZ, PIPE_CAP), PIPE_CAP);
		ck_assert_int_eq(fcntl(b[1], F_SETPIPE_SZ, PIPE_CAP), PIPE_CAP);
		*to = (struct stream){ .rd = a[0], .wr = a[1] };
		*from = (struct stream){ .rd = b[0], .wr = b[1] };
	} else {
		if (k == ST_UNIX) {
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM |
						    SOCK_CLOEXEC, 0, a), 0);
			small_bufs(a[0]);
			small_bufs(a[1]);
		} else {
			tcp_pair(a);
		}
		*to = (struct stream){ .rd = a[1], .wr = a[0], .sock = true };
		*from = (struct stream){ .rd = a[0], .wr = a[1], .sock = true };
	}
	to->name = from->name = st_names[k];
	to->salt = (uint8_t)(w->idx * 16 + 2 * k);
	from->salt = (uint8_t)(to->salt + 1);
	/* Half the workers' own ends are non-blocking. */
	if ((seed >> w->idx) & 1) {
		set_nonblock(to->wr);
		if (from->rd != to->wr)
			set_nonblock(from->rd);
	}
}

static void worker_setup(struct worker *w, int idx)
{
	pthread_mutexattr_t ma;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->rng = seed ^ (uint32_t)(idx + 1) * 0x9E3779B9u;
	w->rng += !w->rng;
	w->step = -1;
	pthread_mutex_init(&w->what_mu, NULL);
	for (int k = 0; k < ST_KINDS; k++)
		streams_open(w, k);
	/* In memory where there is a tmpfs: a disk shared with other work
	 * can take seconds over an fsync (3.7 s was seen here). */
	snprintf(w->dir, sizeof(w->dir), "/dev/shm/ctx-seq-XXXXXX");
	if (!mkdtemp(w->dir)) {
		snprintf(w->dir, sizeof(w->dir), "/tmp/ctx-seq-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(w->dir));
	}
	snprintf(w->fifo_path, sizeof(w->fifo_path), "%s/fifo", w->dir);
	ck_assert_int_eq(mkfifo(w->fifo_path, 0600), 0);
	char path[128];
	snprintf(path, sizeof(path), "%s/file", w->dir);
	w->file = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(w->file, 0);
	struct statfs sfs;
	w->mem_file = fstatfs(w->file, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	unlink(path);
	w->shadow = calloc(1, FILE_SIZE);
	ck_assert_ptr_nonnull(w->shadow);
	for (int i = 0; i < 2; i++) {
		w->ch[i].cap = i ? CHAN_CAP : 0;
		w->ch[i].ch = ctx_chan_new(sizeof(uint64_t), w->ch[i].cap);
		ck_assert_ptr_nonnull(w->ch[i].ch);
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&w->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	w->sem = ctx_sem_new(SEM_SIZE);
	ck_assert_ptr_nonnull(w->sem);
	helper_start(w, &w->peer);
	helper_start(w, &w->canceller);
}

/* What is left in a stream, read to the last byte: exactly what its
 * writers said they wrote. */
static void stream_drain(struct worker *w, struct stream *st)
{
	int64_t end = ctx_now() + tol;
	struct pollfd p = { .fd = st->rd, .events = POLLIN };

	while (st->r < st->w && ctx_now() < end) {
		if (poll(&p, 1, 10) != 1)
			continue;
		ssize_t n = st->sock ? recv(st->rd, w->back, MAX_XFER,
					    MSG_DONTWAIT)
				     : read(st->rd, w->back, MAX_XFER);
		if (n > 0)
			take(w, st, w->back, n, "the final drain");
	}
	expect(w, st->r == st->w, "%llu bytes of the %s stream were "
	       "written, %llu read", (unsigned long long)st->w, st->name,
	       (unsigned long long)st->r);
	set_nonblock(st->rd);
	expect(w, read(st->rd, w->back, 1) < 0 && errno == EAGAIN, "the "
	       "%s stream holds more than was written", st->name);
}

static void worker_teardown(struct worker *w)
{
	helper_stop(&w->peer);
	helper_stop(&w->canceller);
	w->step++; /* failures here are the teardown's own */
	snprintf(w->hist[w->step % HIST], DESC, "the checks at the end");
	for (int i = 0; i < NSTREAMS; i++)
		stream_drain(w, &w->st[i]);
	for (int i = 0; i < 2; i++) {
		if (!w->ch[i].closed)
			ctx_chan_close(w->ch[i].ch);
		chan_drain(w, &w->ch[i]);
		ctx_chan_free(w->ch[i].ch);
	}
	for (int k = 0; k < ST_KINDS; k++) {
		close(w->st[2 * k].rd);
		close(w->st[2 * k].wr);
		if (k == ST_PIPE) {
			close(w->st[2 * k + 1].rd);
			close(w->st[2 * k + 1].wr);
		}
	}
	close(w->file);
	free(w->shadow);
	unlink(w->fifo_path);
	rmdir(w->dir);
	ctx_sem_free(w->sem);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->what_mu);
}

/* ---- the tests ----------------------------------------------------------- */

/* Whether ctx_proc_spawn works here: a library that needs pidfd_open
 * says ENOSYS without it (old kernels, valgrind before 3.20), and then
 * the processes are left out and the run says so. */
static bool proc_works(void)
{
	char *argv[] = { "true", NULL };
	ctx_proc_t *p = NULL;
	int status = -1, e = ctx_proc_spawn(&p, ctx_background(), "true",
					    argv, NULL);

	if (e == ENOSYS)
		return false;
	ck_assert_msg(e == 0, "ctx_proc_spawn(true): %s", strerror(e));
	ck_assert_int_eq(ctx_proc_wait(p, &status), 0);
	ctx_proc_free(p);
	ck_assert_int_eq(status, 0);
	return true;
}

static void set_flag(void *arg)
{
	atomic_store((_Atomic int *)arg, 1);
}

/* Start what the library starts once and keeps (the timer thread, the
 * after-func runner, the hang-up watcher that ctx_open may use), so that
 * the counts taken next are the baseline. */
static void warm_up(void)
{
	_Atomic int ran = 0;
	int sv[2];
	ctx_t *c;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	c = ctx_with_hangup(ctx_background(), sv[0]);
	ck_assert_ptr_nonnull(c);
	ctx_release(c);
	close(sv[0]);
	close(sv[1]);
	c = ctx_with_timeout(ctx_background(), 3600 * CTX_SEC);

	ck_assert_int_ge(ctx_done_fd(c), 0);
	ctx_cancel(c);
	ctx_after_t *a = ctx_after_func(c, set_flag, &ran);
	ck_assert_ptr_nonnull(a);
	for (int i = 0; !atomic_load(&ran) && i < 5000; i++)
		tu_sleep_ns(CTX_MSEC);
	ck_assert(!ctx_after_stop(a));
	ctx_release(c);
}

/* The test's thread as watchdog: a worker in one step this long is
 * stuck, and cannot be joined. */
static bool watchdog(struct worker *ws, int n)
{
	int64_t now = ctx_now();

	for (int i = 0; i < n; i++) {
		int64_t me = atomic_load(&ws[i].must_end);
		if (me && now > me && atomic_load(&ws[i].must_end) == me) {
			failf(&ws[i], "stuck: %s did not return in %lld ms",
			      atomic_load(&ws[i].in_call) ? "the call"
			      : "the work after the call (helpers, checks)",
			      (long long)((tol + STUCK_MS * CTX_MSEC *
					   scale()) / CTX_MSEC));
			return true;
		}
	}
	return false;
}

/* Run the workers for dur, watching them; true unless one is stuck. */
static bool run_for(struct worker *ws, int n, int64_t dur)
{
	int64_t end = ctx_now() + dur;
	bool all = false;

	while (ctx_now() < end && !atomic_load(&failed))
		if (tu_sleep_ns(5 * CTX_MSEC), watchdog(ws, n))
			return false;
	atomic_store(&stop, true);
	while (!all) {
		all = true;
		for (int i = 0; i < n; i++)
			all &= atomic_load(&ws[i].exited);
		if (!all && (tu_sleep_ns(CTX_MSEC), watchdog(ws, n)))
			return false;
	}
	return true;
}

static void report(struct worker *ws, int n, int64_t took)
{
	long calls[F_COUNT] = { 0 }, total = 0, helpers = 0;

	for (int i = 0; i < n; i++) {
		for (int f = 0; f < F_COUNT; f++)
			calls[f] += ws[i].calls[f];
		helpers += atomic_load(&ws[i].helper_calls);
	}
	for (int f = 0; f < F_COUNT; f++)
		total += calls[f];
	if (verbose()) {
		fprintf(stderr, "sequence: %s, %d worker%s, seed %u: %ld steps "
			"(%.0f/s), %ld helpers' calls;", ctx_backend(), n,
			n > 1 ? "s" : "", seed, total,
			(double)total * CTX_SEC / took, helpers);
		for (int f = 0; f < F_COUNT; f++)
			fprintf(stderr, " %s %ld", f_names[f], calls[f]);
		fprintf(stderr, "%s\n", have_proc ? "" :
			" (no processes: ctx_proc_spawn says ENOSYS)");
	}
	ck_assert_int_gt(total, 0);
}

static void run(int n, const char *name)
{
	static struct worker ws[WORKERS]; /* outlives a stuck worker */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int64_t dur = run_time() / 2, t0;

	pick_seed();
	case_name = name;
	tol = TOL_MS * CTX_MSEC * scale();
	have_proc = proc_works();
	pick_families();
	atomic_store(&stop, false);
	atomic_store(&failed, false);
	fail_msg[0] = '\0';
	ck_assert_int_eq(sigaction(SIGPIPE, &ign, &old), 0);
	warm_up();
	int fds = tu_count_fds(), threads = tu_count_threads();
	for (int i = 0; i < n; i++)
		worker_setup(&ws[i], i);
	t0 = ctx_now();
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(pthread_create(&ws[i].th, NULL, worker_main,
						&ws[i]), 0);
	if (!run_for(ws, n, dur))
		assert_no_failure(); /* fails: a stuck worker */
	int64_t took = ctx_now() - t0;
	for (int i = 0; i < n; i++) {
		pthread_join(ws[i].th, NULL);
		worker_teardown(&ws[i]);
	}
	sigaction(SIGPIPE, &old, NULL);
	assert_no_failure();
	report(ws, n, took);
	ck_assert_int_eq(tu_settle_threads(threads, 5 * CTX_SEC), threads);
	ck_assert_int_eq(tu_settle_fds(fds, 2 * CTX_SEC), fds);
}

START_TEST(test_one_thread)
{
	run(1, "one_thread");
}
END_TEST

START_TEST(test_threads)
{
	run(WORKERS, "threads");
}
END_TEST

Suite *suite_sequence(void)
{
	Suite *s = suite_create("sequence");
	double limit = (double)run_time() / CTX_SEC + 60 + STUCK_MS / 1000;
	TCase *tc = tu_tcase(s, "one_thread", limit);

	tcase_add_test(tc, test_one_thread);
	tc = tu_tcase(s, "threads", limit);
	tcase_add_test(tc, test_threads);
	return s;
}
