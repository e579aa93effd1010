/*
 * bench_calls: libctx's calls beside the plain calls they stand for, each
 * pair calibrated and then timed in turn (libctx, plain, libctx, ...),
 * every turn a rep.
 *
 *  sys/<call>/<case>   the hot path of the system-call surface: the thing
 *      is ready and nothing waits.  ppoll on a pipe with data and a mask;
 *      epoll_wait on a set with a ready pipe; a pending signal (sigwait;
 *      each iteration also sends it); an uncontended flock and OFD range
 *      lock; open + close of a file (O_RDONLY: ctx_open adds O_NONBLOCK,
 *      an fstat to tell a FIFO and an F_SETFL to clear the flag, its
 *      floor; O_WRONLY: no fstat); fsync of an unchanged file; writev +
 *      readv of two 32-byte pieces through a pipe; 4 bytes at offset 0 of
 *      a cached file (pread, pwrite, preadv, pwritev); a 32-byte message
 *      (4 for the mmsg pair) over a UNIX socket pair and back; 4 bytes of
 *      the file sent into a pipe or a blocking stream socket (sendfile),
 *      spliced into a pipe, or copied into a second file.
 *  waitany/<row>       issue 13's waits: a round trip between two threads
 *      on one mutex and condition variable (ctx_cond_t, pthread_cond_t),
 *      the threads free, both on one CPU (/onecpu) or each on its own
 *      (/twocpus);
 *      acquire + release of a semaphore (ctx_sem_t, sem_t), uncontended
 *      and by four threads on one of size 2; 8 senders to one receiver
 *      selecting over 8 channels against 8 receivers on one channel
 *      (ns per element).
 *  proc/spawn_wait_true  spawn + wait of /bin/true: ctx_proc_spawn +
 *      ctx_proc_wait beside posix_spawn + waitpid.
 *  server/touch/...    ns per ctx_touch of an idle context: on it, through
 *      a value context below it, from two threads at once.
 *  server/hangup/<sock>  from the client's close(2) to the request's
 *      context being done (ctx_with_hangup, a thread in ctx_wait on it),
 *      beside a thread in ctx_read on the socket seeing end of file;
 *      rounds in turn, p50 and p99 of 10 blocks.
 *  compose/callback    from ctx_cancel's call to a function the end runs
 *      having started: ctx_after_func_inline (in the cancelling thread)
 *      beside ctx_after_func (on the library's runner thread, woken);
 *      rounds in turn, p50 and p99 of 10 blocks.
 *
 * Not here: ctx_sleep_until (its cost is the wait), ctx_waitid (a child's
 * exit dominates), FIFO opens and contended locks (the other end's cost).
 * Every row checks what it did: each call returned what it had to, each
 * round trip completed, no element was lost, every process exited 0.
 */
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "ctx.h"
#include "benchutil.h"

static const char *const lp[] = { "libctx", "plain" };
static ctx_t *cx;
static int pipefd[2], epfd, filefd, filefd2, xp[2], dg[2], st[2];
static char path[64], small[64];
static sigset_t usr1, unblocked; /* unblocked: ppoll's mask */
static struct iovec two[2] = { { small, 32 }, { small + 32, 32 } };
static struct iovec four = { small, 4 };
static struct msghdr mh = { .msg_iov = two, .msg_iovlen = 1 };
static struct mmsghdr mm[4];
static struct flock wr = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
static struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

static void must(bool ok, const char *what)
{
	if (!ok)
		bench_fail("%s: %s", what, strerror(errno));
}

/* ---- the system-call surface: each pair, libctx first ---------------- */

#define PAIR(name, lib_call, plain_call, ok)                             \
	static void name(void *a, int plain, int tid, uint64_t n)        \
	{                                                                 \
		(void)a;                                                  \
		(void)tid;                                                \
		for (uint64_t i = 0; i < n; i++) {                        \
			ssize_t r = plain ? (ssize_t)(plain_call) :       \
					    (ssize_t)(lib_call);          \
			must(ok, #name);                                  \
		}                                                         \
	}

static struct pollfd pfd;
static struct epoll_event evs[4];

PAIR(ppoll_pair, ctx_ppoll(cx, &pfd, 1, -1, &unblocked),
     ppoll(&pfd, 1, NULL, &unblocked), r == 1)
PAIR(epoll_pair, ctx_epoll_wait(cx, epfd, evs, 4, -1),
     epoll_wait(epfd, evs, 4, -1), r == 1)
PAIR(sigwait_pair, (pthread_kill(pthread_self(), SIGUSR1),
		    ctx_sigwait(cx, &usr1, NULL)),
     (pthread_kill(pthread_self(), SIGUSR1), sigwaitinfo(&usr1, NULL)),
     r == SIGUSR1)
PAIR(flock_pair, ctx_flock(cx, filefd, LOCK_EX), flock(filefd, LOCK_EX),
     r == 0 && !flock(filefd, LOCK_UN))
PAIR(range_pair, ctx_lock_range(cx, filefd, &wr),
     fcntl(filefd, F_OFD_SETLKW, &wr),
     r == 0 && !fcntl(filefd, F_OFD_SETLK, &un))
PAIR(open_pair, ctx_open(cx, path, O_RDONLY | O_CLOEXEC),
     open(path, O_RDONLY | O_CLOEXEC), r >= 0 && !close((int)r))
PAIR(openw_pair, ctx_open(cx, path, O_WRONLY | O_CLOEXEC),
     open(path, O_WRONLY | O_CLOEXEC), r >= 0 && !close((int)r))
PAIR(fsync_pair, ctx_fsync(cx, filefd), fsync(filefd), r == 0)
PAIR(rwv_pair, ctx_writev(cx, xp[1], two, 2) + ctx_readv(cx, xp[0], two, 2),
     writev(xp[1], two, 2) + readv(xp[0], two, 2), r == 128)
PAIR(pread_pair, ctx_pread(cx, filefd, small, 4, 0),
     pread(filefd, small, 4, 0), r == 4)
PAIR(pwrite_pair, ctx_pwrite(cx, filefd, "data", 4, 0),
     pwrite(filefd, "data", 4, 0), r == 4)
PAIR(preadv_pair, ctx_preadv(cx, filefd, &four, 1, 0),
     preadv(filefd, &four, 1, 0), r == 4)
PAIR(pwritev_pair, ctx_pwritev(cx, filefd, &four, 1, 0),
     pwritev(filefd, &four, 1, 0), r == 4)
PAIR(dgram_pair, ctx_sendto(cx, dg[0], small, 32, 0, NULL, 0) +
		 ctx_recvfrom(cx, dg[1], small, 64, 0, NULL, NULL),
     sendto(dg[0], small, 32, 0, NULL, 0) +
	     recvfrom(dg[1], small, 64, 0, NULL, NULL), r == 64)
PAIR(msg_pair, ctx_sendmsg(cx, st[0], &mh, 0) + ctx_recvmsg(cx, st[1], &mh, 0),
     sendmsg(st[0], &mh, 0) + recvmsg(st[1], &mh, 0), r == 64)
PAIR(mmsg_pair, ctx_sendmmsg(cx, dg[0], mm, 4, 0) +
		ctx_recvmmsg(cx, dg[1], mm, 4, 0),
     sendmmsg(dg[0], mm, 4, 0) + recvmmsg(dg[1], mm, 4, 0, NULL), r == 8)
static off_t off_in, off_out;
PAIR(sendfile_pair, (off_in = 0, ctx_sendfile(cx, xp[1], filefd, &off_in, 4)),
     (off_in = 0, sendfile(xp[1], filefd, &off_in, 4)),
     r == 4 && read(xp[0], small, 64) == 4)
PAIR(sendfile_sock_pair,
     (off_in = 0, ctx_sendfile(cx, st[0], filefd, &off_in, 4)),
     (off_in = 0, sendfile(st[0], filefd, &off_in, 4)),
     r == 4 && read(st[1], small, 64) == 4)
PAIR(splice_pair,
     (off_in = 0, ctx_splice(cx, filefd, &off_in, xp[1], NULL, 4, 0)),
     (off_in = 0, splice(filefd, &off_in, xp[1], NULL, 4, 0)),
     r == 4 && read(xp[0], small, 64) == 4)
PAIR(cfr_pair, (off_in = off_out = 0,
		ctx_copy_file_range(cx, filefd, &off_in, filefd2, &off_out, 4,
				    0)),
     (off_in = off_out = 0,
      copy_file_range(filefd, &off_in, filefd2, &off_out, 4, 0)), r == 4)

static int temp_file(char *p, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(p, len, "%s/bench_calls.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkostemp(p, O_CLOEXEC);
	must(fd >= 0, "mkostemp");
	return fd;
}

static void sys_setup(void)
{
	char path2[64];
	struct epoll_event ev = { .events = EPOLLIN };

	cx = ctx_with_cancel(ctx_background());
	must(cx != NULL, "ctx_with_cancel");
	must(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
	must(write(pipefd[1], "x", 1) == 1, "write"); /* stays readable */
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	epfd = epoll_create1(EPOLL_CLOEXEC);
	must(epfd >= 0 && !epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev),
	     "epoll");
	filefd = temp_file(path, sizeof(path));
	must(write(filefd, "data", 4) == 4 && fsync(filefd) == 0, "fsync");
	filefd2 = temp_file(path2, sizeof(path2));
	unlink(path2);
	must(pipe2(xp, O_CLOEXEC) == 0, "pipe2");
	must(!socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg), "dgram");
	must(!socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st), "stream");
	for (int i = 0; i < 4; i++)
		mm[i].msg_hdr = (struct msghdr){ .msg_iov = &four,
						 .msg_iovlen = 1 };
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	must(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0, "sigmask");
	/* ppoll's mask: the current one, so that no signal ends a call. */
	pthread_sigmask(SIG_BLOCK, NULL, &unblocked);
}

static void bench_sys(void)
{
	static const struct {
		const char *name;
		void (*fn)(void *, int, int, uint64_t);
	} pairs[] = {
		{ "sys/ppoll/ready", ppoll_pair },
		{ "sys/epoll_wait/ready", epoll_pair },
		{ "sys/sigwait/ready", sigwait_pair },
		{ "sys/flock/free", flock_pair },
		{ "sys/lock_range/free", range_pair },
		{ "sys/open/file", open_pair },
		{ "sys/open/file-wronly", openw_pair },
		{ "sys/fsync/clean", fsync_pair },
		{ "sys/writev+readv/pipe", rwv_pair },
		{ "sys/pread/file", pread_pair },
		{ "sys/pwrite/file", pwrite_pair },
		{ "sys/preadv/file", preadv_pair },
		{ "sys/pwritev/file", pwritev_pair },
		{ "sys/sendto+recvfrom/dgram", dgram_pair },
		{ "sys/sendmsg+recvmsg/stream", msg_pair },
		{ "sys/sendmmsg+recvmmsg/dgram", mmsg_pair },
		{ "sys/sendfile/pipe", sendfile_pair },
		{ "sys/sendfile/socket", sendfile_sock_pair },
		{ "sys/splice/pipe", splice_pair },
		{ "sys/copy_file_range/file", cfr_pair },
	};

	sys_setup();
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		bench_measure(&(struct bench_spec){
			.scenario = pairs[i].name, .names = lp, .nimpls = 2,
			.fn = pairs[i].fn });
	close(filefd);
	unlink(path);
	ctx_release(cx);
}

/* ---- condition variable ping-pong ----------------------------------- */

struct pp {
	pthread_mutex_t m;
	pthread_cond_t pc;
	ctx_cond_t cc;
	int turn;
	bool plain;
	int peer_cpu;    /* -1: both free; else both pinned, the peer here */
	uint64_t n;
};

static void pp_wait(struct pp *p)
{
	if (p->plain)
		pthread_cond_wait(&p->pc, &p->m);
	else
		ctx_cond_wait(ctx_background(), &p->cc, &p->m);
}

static void pp_signal(struct pp *p)
{
	if (p->plain)
		pthread_cond_signal(&p->pc);
	else
		ctx_cond_signal(&p->cc);
}

/* Thread `who` waits for its turn and gives the other one its turn. */
static void pp_turns(struct pp *p, int who)
{
	for (uint64_t i = 0; i < p->n; i++) {
		pthread_mutex_lock(&p->m);
		if (who == 0) {
			p->turn = 1;
			pp_signal(p);
		}
		while (p->turn != (who == 0 ? 0 : 1))
			pp_wait(p);
		if (who == 1) {
			p->turn = 0;
			pp_signal(p);
		}
		pthread_mutex_unlock(&p->m);
	}
}

static void *pp_peer(void *arg)
{
	pp_turns(arg, 1);
	return NULL;
}

static void pp_run(void *arg, int plain, int tid, uint64_t n)
{
	struct pp *p = arg;
	pthread_attr_t attr;
	cpu_set_t one;
	pthread_t t;

	(void)tid;
	p->n = n;
	p->turn = 0;
	p->plain = plain;
	pthread_attr_init(&attr);
	bench_pin(p->peer_cpu < 0 ? -1 : cpu_a);
	CPU_ZERO(&one);
	CPU_SET(p->peer_cpu < 0 ? 0 : p->peer_cpu, &one);
	if (p->peer_cpu >= 0 &&
	    pthread_attr_setaffinity_np(&attr, sizeof(one), &one))
		bench_fail("pthread_attr_setaffinity_np");
	if (pthread_create(&t, &attr, pp_peer, p))
		bench_fail("pthread_create");
	pthread_attr_destroy(&attr);
	pp_turns(p, 0);
	pthread_join(t, NULL);
	if (p->turn != 0)
		bench_fail("ping-pong: a round trip did not complete");
}

/* ---- semaphores ------------------------------------------------------- */

struct semb {
	ctx_sem_t *s;
	sem_t ps;
	_Atomic int inside, over;
};

static void sem_run(void *arg, int plain, int tid, uint64_t n)
{
	struct semb *b = arg;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		if (!plain && ctx_sem_acquire(ctx_background(), b->s, 1))
			bench_fail("ctx_sem_acquire");
		while (plain && sem_wait(&b->ps))
			;
		if (atomic_fetch_add_explicit(&b->inside, 1,
					      memory_order_relaxed) >= 2)
			atomic_store(&b->over, 1);
		for (volatile int k = 0; k < 20; k++)
			;
		atomic_fetch_sub_explicit(&b->inside, 1, memory_order_relaxed);
		if (plain)
			sem_post(&b->ps);
		else
			ctx_sem_release(b->s, 1);
	}
}

/* ---- fan-in: 8 senders -------------------------------------------------- */

#define FAN 8
struct fan {
	ctx_chan_t *ch[FAN];
	uint64_t n;
	bool one; /* every sender on ch[0], 8 receivers on it */
	_Atomic uint64_t received, sum;
};

struct fan_arg { struct fan *f; int id; };

/* The select variant's senders close their own channel when done, so
 * that the receiver knows when all are. */
static void *fan_sender(void *p)
{
	struct fan_arg *a = p;
	ctx_chan_t *ch = a->f->ch[a->f->one ? 0 : a->id];

	for (uint64_t i = 1; i <= a->f->n; i++)
		if (ctx_chan_send(ctx_background(), ch, &i))
			bench_fail("fan-in: send");
	if (!a->f->one)
		ctx_chan_close(ch);
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
	uint64_t v[FAN];
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
		f->received++;
		f->sum += v[got];
	}
}

static void fan_run(void *arg, int eight, int tid, uint64_t n)
{
	struct fan *f = arg;
	pthread_t s[FAN], r[FAN];
	struct fan_arg a[FAN];

	(void)tid;
	f->n = n;
	f->one = eight;
	f->received = f->sum = 0;
	for (int i = 0; i < FAN; i++)
		if (!(f->ch[i] = ctx_chan_new(sizeof(uint64_t), 64)))
			bench_fail("ctx_chan_new");
	for (int i = 0; i < FAN; i++) {
		a[i] = (struct fan_arg){ f, i };
		if (pthread_create(&s[i], NULL, fan_sender, &a[i]) ||
		    (eight && pthread_create(&r[i], NULL, fan_receiver, f)))
			bench_fail("pthread_create");
	}
	if (!eight)
		fan_select(f);
	for (int i = 0; i < FAN; i++)
		pthread_join(s[i], NULL);
	if (eight)
		ctx_chan_close(f->ch[0]);
	for (int i = 0; i < FAN && eight; i++)
		pthread_join(r[i], NULL);
	if (f->received != FAN * n || f->sum != FAN * (n * (n + 1) / 2))
		bench_fail("fan-in: %llu of %llu elements",
			   (unsigned long long)f->received,
			   (unsigned long long)(FAN * n));
	for (int i = 0; i < FAN; i++)
		ctx_chan_free(f->ch[i]);
}

static void bench_waitany(void)
{
	static const char *const pt[] = { "libctx", "pthread" };
	static const char *const px[] = { "libctx", "posix" };
	static const char *const fn[] = { "select", "8receivers" };
	static struct pp pp = { .m = PTHREAD_MUTEX_INITIALIZER,
				.pc = PTHREAD_COND_INITIALIZER,
				.cc = CTX_COND_INIT };
	static struct semb sb[2];
	static struct fan f;

	/* Free, both on one CPU, each on its own. */
	static const char *const pp_scen[] = {
		"waitany/cond_pingpong", "waitany/cond_pingpong/onecpu",
		"waitany/cond_pingpong/twocpus",
	};
	for (int k = 0; k < 3; k++) {
		pp.peer_cpu = k == 0 ? -1 : k == 1 ? cpu_a : cpu_b;
		if (k == 2 && cpu_b < 0) {
			printf("# skipped: %s: one CPU allowed\n", pp_scen[k]);
			continue;
		}
		bench_measure(&(struct bench_spec){ .scenario = pp_scen[k],
			.names = pt, .nimpls = 2, .fn = pp_run, .arg = &pp });
	}
	bench_pin(-1);
	for (int i = 0; i < 2; i++) {
		sb[i].s = ctx_sem_new(i + 1);
		if (!sb[i].s || sem_init(&sb[i].ps, 0, i + 1))
			bench_fail("semaphores");
	}
	bench_measure(&(struct bench_spec){
		.scenario = "waitany/sem_uncontended", .names = px,
		.nimpls = 2, .fn = sem_run, .arg = &sb[0] });
	bench_measure(&(struct bench_spec){
		.scenario = "waitany/sem_contended4x2", .names = px,
		.nimpls = 2, .fn = sem_run, .arg = &sb[1], .threads = 4 });
	if (atomic_load(&sb[0].over) || atomic_load(&sb[1].over))
		bench_fail("semaphore: more than its size inside");
	if (!ctx_sem_try_acquire(sb[1].s, 2))
		bench_fail("semaphore: tokens not all back");
	bench_measure(&(struct bench_spec){ .scenario = "waitany/fanin8",
		.names = fn, .nimpls = 2, .fn = fan_run, .arg = &f,
		.per_iter = FAN });
}

/* ---- spawn + wait ------------------------------------------------------- */

extern char **environ;

static void spawn_run(void *arg, int plain, int tid, uint64_t n)
{
	static char *argv_true[] = { "/bin/true", NULL };
	ctx_t *c = arg;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		ctx_proc_t *p;
		pid_t pid;
		int s = -1, e = plain ? posix_spawn(&pid, "/bin/true", NULL,
						     NULL, argv_true, environ)
				      : ctx_proc_spawn(&p, c, "/bin/true",
						       argv_true, NULL);

		if (e)
			bench_fail("spawn: %s", strerror(e));
		if (plain ? waitpid(pid, &s, 0) != pid : !!ctx_proc_wait(p, &s))
			bench_fail("wait: %s", strerror(errno));
		if (!WIFEXITED(s) || WEXITSTATUS(s))
			bench_fail("/bin/true: status %#x", s);
		if (!plain)
			ctx_proc_free(p);
	}
}

static void bench_proc(void)
{
	static const char *const ps[] = { "libctx", "posix_spawn" };
	ctx_t *c = ctx_with_cancel(ctx_background());

	must(c != NULL, "ctx_with_cancel");
	bench_measure(&(struct bench_spec){ .scenario = "proc/spawn_wait_true",
		.names = ps, .nimpls = 2, .fn = spawn_run, .arg = c });
	ctx_release(c);
}

/* ---- server contexts: ctx_touch, hang-up detection ---------------------- */

static void touch_run(void *arg, int impl, int tid, uint64_t n)
{
	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		ctx_touch(arg);
}

struct waiter {
	ctx_t *ctx;         /* wait for it to be done, or NULL: read fd */
	int fd;
	_Atomic uint32_t ready;
	int64_t done;
	int result;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	char buf[64];

	atomic_store(&w->ready, 1);
	if (w->ctx)
		w->result = ctx_wait(w->ctx);
	else
		w->result = (int)ctx_read(ctx_background(), w->fd, buf,
					  sizeof(buf));
	w->done = bench_now();
	return NULL;
}

/* One round: the time from close to noticed, in ns. */
static double hangup_once(bool tcp, bool hangup)
{
	struct waiter w = { .fd = -1 };
	pthread_t t;
	int64_t t0;
	int fds[2];

	if (tcp)
		bench_tcp_pair(fds);
	else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds))
		bench_fail("socketpair: %s", strerror(errno));
	w.fd = fds[0];
	if (hangup && !(w.ctx = ctx_with_hangup(ctx_background(), fds[0])))
		bench_fail("ctx_with_hangup: %s", strerror(errno));
	if (pthread_create(&t, NULL, waiter_main, &w))
		bench_fail("pthread_create");
	while (!atomic_load(&w.ready))
		sched_yield();
	bench_nap_ns(2000000); /* let it block */
	t0 = bench_now();
	close(fds[1]);
	pthread_join(t, NULL);
	if (hangup && (w.result != CTX_CANCELED ||
		       ctx_cause(w.ctx) != ECONNRESET))
		bench_fail("hang-up context: %d, cause %d", w.result,
			   ctx_cause(w.ctx));
	if (!hangup && w.result != 0)
		bench_fail("read at EOF returned %d", w.result);
	ctx_release(w.ctx);
	close(fds[0]);
	return (double)(w.done - t0);
}

static void bench_server(void)
{
	ctx_t *idle = ctx_with_idle(ctx_background(), 3600 * CTX_SEC);
	ctx_t *val = idle ? ctx_with_value(idle, "k", NULL) : NULL;
	int n = B.quick ? 50 : 400;
	double *v[2] = { bench_alloc((size_t)n * sizeof(double)),
			 bench_alloc((size_t)n * sizeof(double)) };
	int64_t d0, d1;

	if (!val)
		bench_fail("ctx_with_idle: %s", strerror(errno));
	ctx_deadline(idle, &d0);
	bench_measure(&(struct bench_spec){ .scenario = "server/touch/idle",
					    .fn = touch_run, .arg = idle });
	ctx_deadline(idle, &d1);
	/* Only where the touches ran (--only may leave them out). */
	if (bench_wanted("server/touch/idle") && (d1 <= d0 || ctx_err(idle)))
		bench_fail("touches did not move the deadline");
	bench_measure(&(struct bench_spec){
		.scenario = "server/touch/through-value", .fn = touch_run,
		.arg = val });
	bench_measure(&(struct bench_spec){
		.scenario = "server/touch/2-threads", .fn = touch_run,
		.arg = idle, .threads = 2 });
	ctx_unref(val);
	ctx_release(idle);
	for (int tcp = 0; tcp < 2; tcp++) {
		const char *scen = tcp ? "server/hangup/tcp" :
					 "server/hangup/unix";

		if (!bench_wanted(scen))
			continue;
		for (int i = 0; i < n; i++)
			for (int h = 0; h < 2; h++)
				v[h][i] = hangup_once(tcp, !h);
		bench_dist(scen, "ctx_with_hangup", v[0], n, 10, "ns");
		bench_dist(scen, "ctx_read-eof", v[1], n, 10, "ns");
	}
	free(v[0]);
	free(v[1]);
}

/* ---- compose: the end of a context to its callback ------------------- */

struct stamp {
	_Atomic uint32_t ran;
	int64_t at;
};

static void stamp_fn(void *arg)
{
	struct stamp *s = arg;

	s->at = bench_now();
	atomic_store_explicit(&s->ran, 1, memory_order_release);
	bench_futex_wake(&s->ran, 1);
}

/* One round: ns from the cancel's call to fn's start. */
static double callback_once(bool in_place)
{
	struct stamp s = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = !c ? NULL : in_place ?
		ctx_after_func_inline(c, stamp_fn, &s) :
		ctx_after_func(c, stamp_fn, &s);
	int64_t t0;

	if (!a)
		bench_fail("after-func: %s", strerror(errno));
	bench_nap_ns(200000); /* the runner asleep, as it is at rest */
	t0 = bench_now();
	ctx_cancel(c);
	if (in_place && !atomic_load(&s.ran))
		bench_fail("ctx_after_func_inline: fn had not run when "
			   "ctx_cancel returned");
	bench_await_word(&s.ran, 1, 10 * (int64_t)1000000000, "callback");
	if (ctx_after_stop_wait(a))
		bench_fail("after-func: stopped, yet it ran");
	ctx_release(c);
	return (double)(s.at - t0);
}

static void bench_compose(void)
{
	int n = B.quick ? 50 : 400;
	double *v[2];

	if (!bench_wanted("compose/callback"))
		return;
	v[0] = bench_alloc((size_t)n * sizeof(double));
	v[1] = bench_alloc((size_t)n * sizeof(double));
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 2; k++)
			v[k][i] = callback_once(!k);
	bench_dist("compose/callback", "ctx_after_func_inline", v[0], n, 10,
		   "ns");
	bench_dist("compose/callback", "ctx_after_func", v[1], n, 10, "ns");
	free(v[0]);
	free(v[1]);
}

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_cpus_init();
	bench_print_machine("bench_calls: libctx's calls beside the plain "
			    "ones");
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# each pair: calibrated, then %d timed runs of ~%lld ms of "
	       "each, in turn\n", B.reps, (long long)(B.target_ns / 1000000));
	bench_section("sys", bench_sys);
	bench_section("waitany", bench_waitany);
	bench_section("proc", bench_proc);
	bench_section("server", bench_server);
	bench_section("compose", bench_compose);
	return 0;
}
