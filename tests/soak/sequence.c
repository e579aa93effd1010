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
 * This file holds the run's settings, the failures, the draws, the byte
 * streams, the workers and the tests; the helpers and the model's checks
 * of a step are in seq_step.c, the families of calls in seq_calls.c.
 *
 * One thing of the process is not the library's to order: a child
 * made by one worker's ctx_proc_spawn holds a copy of every descriptor
 * of the process, O_CLOEXEC ones too, from its clone until its exec.
 * A copy of a FIFO's end held there would let another worker's FIFO
 * writer in (its open(2) sees a reader), keep a FIFO and the bytes in
 * it from one step into the next, or take them with it when it execs:
 * what a plain open(2) and read(2) would do as well, and nothing the
 * model can predict.  So the FIFO steps and the process steps exclude
 * each other (spawn_lock in seq_calls.c), outside the timed calls.
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
#include "sequence.h"
#include "suites.h"

/* ---- the run's settings and its first failure ---------------------------- */

static uint32_t seed;
static const char *case_name;
int64_t seq_tol;
static bool have_proc;
static _Atomic bool stop;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char fail_msg[2048];
static _Atomic bool failed;

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

/* ---- failures ------------------------------------------------------------ */

static const char *what_now(struct worker *w)
{
	return w->hist[w->step % HIST];
}

/* Recorded for the test's thread to assert (a Check assertion must not
 * fail in another thread), with the step and the steps before it. */
void seq_failf(struct worker *w, const char *fmt, ...)
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

/* ---- byte streams -------------------------------------------------------- */

/* The next n bytes the writer of st owes. */
void seq_fill(const struct stream *st, char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)pat(st, st->w + i);
}

/* n bytes read from st: they must be the next ones written.  (Whether
 * more was read than written is asked once the writer has stopped: its
 * count grows only after its call returns.) */
void seq_take(struct worker *w, struct stream *st, const char *buf,
	      ssize_t n, const char *who)
{
	for (ssize_t i = 0; i < n; i++)
		if ((uint8_t)buf[i] != pat(st, st->r + (uint64_t)i)) {
			seq_failf(w, "%s read byte %llu of the %s stream as %u, "
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
void seq_check_stream(struct worker *w, struct stream *st)
{
	expect(w, st->r <= st->w, "%llu bytes of the %s stream were read, "
	       "only %llu written", (unsigned long long)st->r, st->name,
	       (unsigned long long)st->w);
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
	seq_helper_start(w, &w->peer);
	seq_helper_start(w, &w->canceller);
}

/* What is left in a stream, read to the last byte: exactly what its
 * writers said they wrote. */
static void stream_drain(struct worker *w, struct stream *st)
{
	int64_t end = ctx_now() + seq_tol;
	struct pollfd p = { .fd = st->rd, .events = POLLIN };

	while (st->r < st->w && ctx_now() < end) {
		if (poll(&p, 1, 10) != 1)
			continue;
		ssize_t n = st->sock ? recv(st->rd, w->back, MAX_XFER,
					    MSG_DONTWAIT)
				     : read(st->rd, w->back, MAX_XFER);
		if (n > 0)
			seq_take(w, st, w->back, n, "the final drain");
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
	seq_helper_stop(&w->peer);
	seq_helper_stop(&w->canceller);
	w->step++; /* failures here are the teardown's own */
	snprintf(w->hist[w->step % HIST], DESC, "the checks at the end");
	for (int i = 0; i < NSTREAMS; i++)
		stream_drain(w, &w->st[i]);
	for (int i = 0; i < 2; i++) {
		if (!w->ch[i].closed)
			ctx_chan_close(w->ch[i].ch);
		seq_chan_drain(w, &w->ch[i]);
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

/* Start what the library starts once and keeps (tu_start_services, and
 * the hang-up watcher that ctx_open may use), so that the counts taken
 * next are the baseline. */
static void warm_up(void)
{
	int sv[2];
	ctx_t *c;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
	c = ctx_with_hangup(ctx_background(), sv[0]);
	ck_assert_ptr_nonnull(c);
	ctx_release(c);
	close(sv[0]);
	close(sv[1]);
	tu_start_services();
}

/* The test's thread as watchdog: a worker in one step this long is
 * stuck, and cannot be joined. */
static bool watchdog(struct worker *ws, int n)
{
	int64_t now = ctx_now();

	for (int i = 0; i < n; i++) {
		int64_t me = atomic_load(&ws[i].must_end);
		if (me && now > me && atomic_load(&ws[i].must_end) == me) {
			seq_failf(&ws[i], "stuck: %s did not return in %lld ms",
			      atomic_load(&ws[i].in_call) ? "the call"
			      : "the work after the call (helpers, checks)",
			      (long long)((seq_tol + STUCK_MS * CTX_MSEC *
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
	seq_tol = TOL_MS * CTX_MSEC * scale();
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

