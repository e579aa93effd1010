/*
 * What the sequence suite's files share (tests/soak/: sequence.c,
 * seq_step.c, seq_calls.c): its settings, the model's state, the draws,
 * the byte streams, the helpers and the steps.
 */
#ifndef CTX_TEST_SEQUENCE_H
#define CTX_TEST_SEQUENCE_H

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

/* How late a call may return (TOL_MS, more under valgrind). */
extern int64_t seq_tol;

static inline int64_t scale(void)
{
	return tu_valgrind() ? 10 : 1;
}

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

/* Recorded for the test's thread to assert (a Check assertion must not
 * fail in another thread), with the step and the steps before it. */
__attribute__((format(printf, 2, 3)))
void seq_failf(struct worker *w, const char *fmt, ...);

/* For what cannot go on (a planning error, no memory for a context). */
#define need(w, cond)                                                       \
	do {                                                                \
		if (!(cond)) {                                              \
			seq_failf(w, "%s:%d: %s is false", __FILE__, __LINE__,  \
			      #cond);                                       \
			abort();                                            \
		}                                                           \
	} while (0)

#define expect(w, cond, ...)                                                \
	do {                                                                \
		if (!(cond))                                                \
			seq_failf(w, __VA_ARGS__);                              \
	} while (0)

/* ---- draws --------------------------------------------------------------- */

static inline uint32_t pick(struct worker *w, uint32_t n)
{
	return w->rv[w->rvi++ % NRAND] % n;
}

static inline bool chance(struct worker *w, unsigned pct)
{
	return pick(w, 100) < pct;
}

/* A time: a quarter none, a quarter under half a millisecond, the rest
 * up to MAX_US. */
static inline int64_t pick_time(struct worker *w)
{
	uint32_t k = pick(w, 4), v = pick(w, MAX_US + 1);

	if (k == 0)
		return 0;
	return (k == 1 ? v % 500 : v) * CTX_USEC * scale();
}

static inline size_t pick_len(struct worker *w, size_t max)
{
	return chance(w, 70) ? 1 + pick(w, 512) : 1 + pick(w, (uint32_t)max);
}

static inline double rel_ms(struct worker *w, int64_t t)
{
	return t == NEVER ? -1 : (double)(t - w->s.base) / CTX_MSEC;
}

static inline int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* ---- byte streams (sequence.c) --------------------------------------------- */

static inline uint8_t pat(const struct stream *st, uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + (i >> 16) + st->salt);
}

void seq_fill(const struct stream *st, char *buf, size_t n);
void seq_take(struct worker *w, struct stream *st, const char *buf,
	      ssize_t n, const char *who);
void seq_check_stream(struct worker *w, struct stream *st);

/* ---- the helpers and the steps (seq_step.c) --------------------------------- */

void seq_helper_start(struct worker *w, struct helper *h);
void seq_helper_stop(struct helper *h);
int seq_add(struct helper *h, int kind, int s, long n, int64_t at);
struct action *seq_find(struct helper *h, int kind);
__attribute__((format(printf, 2, 3)))
void seq_describe(struct worker *w, const char *fmt, ...);
bool seq_plan_ctx(struct worker *w);
void seq_make_ctx(struct worker *w);
void seq_go(struct worker *w, const char *call);
void seq_returned(struct worker *w);
void seq_end_helpers(struct worker *w, bool peer_cancel);
int64_t seq_cancel_t(struct worker *w, bool began);
bool seq_done_before(struct worker *w);
bool seq_could_end(struct worker *w);
void seq_check_late(struct worker *w);
void seq_check_err(struct worker *w, int err);
void seq_check_end(struct worker *w, int err);
void seq_release_ctx(struct worker *w);
int64_t seq_done_at(struct action *a);
int64_t seq_began_at(struct action *a);

/* ---- the families (seq_calls.c) -------------------------------------------- */

void step_read(struct worker *w);
void step_write(struct worker *w);
void step_file(struct worker *w);
void step_fifo(struct worker *w);
void step_select(struct worker *w);
void step_poll(struct worker *w);
void seq_chan_drain(struct worker *w, struct chanm *m);
void step_chan(struct worker *w);
void step_cond(struct worker *w);
void step_sem(struct worker *w);
void step_sleep(struct worker *w);
void step_join(struct worker *w);
void step_proc(struct worker *w);

#endif
