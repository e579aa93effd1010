/*
 * Seeing what is stuck (issue 28): ctx_dump's report -- a thread in a
 * libctx call with its descriptor described (a pipe, a listening and a
 * connected TCP socket with their addresses), how long it has waited
 * and the time left, its context's chain and state; a thread libctx
 * started, outside libctx, with the system call it sits in; the library
 * threads; the errors -- and CTX_DEBUG=stuck: a thread still under an
 * ended context is reported once, after the delay and not before, with
 * what it does (a plain read(2) and its descriptor, a libctx call, or
 * running), and a thread that left in time is not.  The environment
 * variables themselves (CTX_DUMP_SIGNAL, CTX_DUMP_FILE, CTX_DEBUG=leaks
 * and stuck=MS, read before main) are tested by running tests/dumpee.
 *
 * Every report is read back from a memfd and searched for what it must
 * say; a thread is looked for by its id.  Threads are waited for by
 * asking the report again until it shows them, never by a sleep that
 * guesses how long they take to get there.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

void ctx__stuck_set(int ms, int fd); /* runtime/wait/wait.h's test hook */

/* ---- helpers ---------------------------------------------------------- */

/* The report, NUL-terminated (malloc'd). */
static char *dump_text(void)
{
	int fd = memfd_create("dump", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ctx_dump(fd), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	char *s = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pread(fd, s, (size_t)len, 0), len);
	s[len] = '\0';
	close(fd);
	return s;
}

/* The report once it contains want (up to 10 s), else a failure that
 * shows the last one. */
static char *dump_until(const char *want)
{
	char *s = NULL;
	for (int i = 0; i < 1000; i++) {
		free(s);
		s = dump_text();
		if (strstr(s, want))
			return s;
		tu_sleep_ns(10 * CTX_MSEC);
	}
	ck_abort_msg("the report never said \"%s\":\n%s", want, s);
	return NULL;
}

/* The line of s about thread tid ("  thread TID ..."), or a failure. */
static const char *thread_line(const char *s, int tid)
{
	char head[64];
	snprintf(head, sizeof(head), "  thread %d \"", tid);
	const char *l = strstr(s, head);
	ck_assert_msg(l != NULL, "no line for thread %d in:\n%s", tid, s);
	return l;
}

static void assert_has(const char *s, const char *want)
{
	ck_assert_msg(strstr(s, want) != NULL, "no \"%s\" in:\n%s", want, s);
}

/* What to look for, formatted into buf: "dump.c:%d..." with a line of
 * this file (__FILE__ may carry a directory: the match starts after). */
static const char *at_line(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static const char *at_line(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return buf;
}

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

/* A thread's id, published once it runs. */
static _Atomic int tid_of_thread;

static void *read_in_libctx(ctx_t *ctx, void *arg)
{
	char b;
	atomic_store(&tid_of_thread, gettid_());
	ctx_read(ctx, *(int *)arg, &b, 1);
	return NULL;
}

static void *read_plain(ctx_t *ctx, void *arg)
{
	char b;
	(void)ctx;
	atomic_store(&tid_of_thread, gettid_());
	ssize_t n = read(*(int *)arg, &b, 1);
	return (void *)(intptr_t)n;
}

static int wait_tid(void)
{
	while (!atomic_load(&tid_of_thread))
		tu_sleep_ns(CTX_MSEC);
	return atomic_load(&tid_of_thread);
}

/* ---- ctx_dump --------------------------------------------------------- */

START_TEST(test_dump_pipe_reader)
{
	int p[2];
	ctx_thread_t *t;
	char want[64];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_t *top = ctx_with_cancel(ctx_background());
	int top_line = __LINE__ - 1;
	ctx_t *c = ctx_with_timeout(top, 60 * CTX_SEC);
	int c_line = __LINE__ - 1;
	char w[96];
	ck_assert_int_eq(ctx_thread_create(&t, c, read_in_libctx, &p[0]), 0);
	int tid = wait_tid();
	char *s = dump_until("in ctx_read");
	const char *l = thread_line(s, tid);
	snprintf(want, sizeof(want), "in ctx_read, waiting for fd %d (pipe:[",
		 p[0]);
	assert_has(l, want);
	double waited = -1, left = -1;
	const char *f = strstr(l, ", for ");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(sscanf(f, ", for %lf s, %lf s left", &waited, &left),
			 2);
	ck_assert(waited >= 0 && waited < 60);
	ck_assert(left > 0 && left <= 60.1); /* since: a coarse reading */
	assert_has(l, "    its context: live\n      WithDeadline made at ");
	assert_has(l, at_line(w, sizeof(w), "dump.c:%d, deadline in ", c_line));
	assert_has(l, "\n      WithCancel made at ");
	assert_has(l, at_line(w, sizeof(w), "dump.c:%d\n      Background\n",
			      top_line));
	free(s);
	ctx_cancel(top);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_release(c);
	ctx_release(top);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A TCP listener on 127.0.0.1, its port in *port. */
static int tcp_listener(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void *accept_one(ctx_t *ctx, void *arg)
{
	atomic_store(&tid_of_thread, gettid_());
	int fd = ctx_accept(ctx, *(int *)arg, NULL, NULL, SOCK_CLOEXEC);
	return (void *)(intptr_t)fd;
}

START_TEST(test_dump_sockets)
{
	int port, cport, lfd = tcp_listener(&port);
	ctx_thread_t *t;
	char want[128];
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, accept_one, &lfd), 0);
	int tid = wait_tid();
	char *s = dump_until("in ctx_accept");
	snprintf(want, sizeof(want), "in ctx_accept, waiting for fd %d (TCP "
		 "socket listening on 127.0.0.1:%d)", lfd, port);
	assert_has(thread_line(s, tid), want);
	free(s);
	/* A client: the accepted socket goes, a read on ours waits. */
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(
		(uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	ck_assert_int_eq(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	void *sfd;
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &sfd), 0);
	ck_assert_int_ge((intptr_t)sfd, 0); /* open while the read waits */
	ck_assert_int_eq(getsockname(cfd, (struct sockaddr *)&a, &al), 0);
	cport = ntohs(a.sin_port);
	atomic_store(&tid_of_thread, 0);
	ck_assert_int_eq(ctx_thread_create(&t, c, read_in_libctx, &cfd), 0);
	tid = wait_tid();
	s = dump_until("in ctx_read");
	snprintf(want, sizeof(want), "in ctx_read, waiting for fd %d (TCP "
		 "socket 127.0.0.1:%d, peer 127.0.0.1:%d)", cfd, cport, port);
	assert_has(thread_line(s, tid), want);
	free(s);
	ctx_cancel(c);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_release(c);
	close((int)(intptr_t)sfd);
	close(cfd);
	close(lfd);
}
END_TEST

/* A thread libctx started, in a plain read(2) after its context ended:
 * outside libctx, the system call named with its descriptor. */
START_TEST(test_dump_started_outside)
{
	int p[2];
	ctx_thread_t *t;
	char want[96];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, read_plain, &p[0]), 0);
	int tid = wait_tid();
	ctx_cancel(c);
	int cancel_line = __LINE__ - 1;
	snprintf(want, sizeof(want), "outside libctx: read(2) on fd %d "
		 "(pipe:[", p[0]);
	char *s = dump_until(want);
	const char *l = thread_line(s, tid);
	assert_has(l, want);
	assert_has(l, "    started by libctx under: context canceled; "
		      "ctx_cancel at ");
	assert_has(l, at_line(want, sizeof(want), "dump.c:%d\n      WithCancel "
			      "made at ", cancel_line));
	assert_has(s, "Threads libctx started, now outside it: 1\n");
	free(s);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	/* Gone with its thread (it never waited: no thread-exit hook). */
	s = dump_text();
	snprintf(want, sizeof(want), "  thread %d \"", tid);
	ck_assert_msg(!strstr(s, want), "thread %d still listed:\n%s", tid, s);
	free(s);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

static void *recv_forever(ctx_t *ctx, void *arg)
{
	int v;
	(void)ctx;
	atomic_store(&tid_of_thread, gettid_());
	ctx_chan_recv(ctx_background(), arg, &v);
	return NULL;
}

/* Parked in a channel under another context than the one it was
 * started under, which ended. */
START_TEST(test_dump_parked)
{
	ctx_thread_t *t;
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, recv_forever, ch), 0);
	int tid = wait_tid();
	ctx_cancel(c);
	char *s = dump_until("in ctx_chan_recv");
	const char *l = thread_line(s, tid);
	assert_has(l, "in ctx_chan_recv, parked until another thread wakes "
		      "it, for ");
	assert_has(l, ", no deadline\n    its context: live\n"
		      "      Background\n"
		      "    started by libctx under: context canceled; "
		      "ctx_cancel at ");
	free(s);
	ctx_chan_close(ch);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_chan_free(ch);
	ctx_release(c);
}
END_TEST

START_TEST(test_dump_library_threads)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	ck_assert_int_ge(ctx_done_fd(c), 0); /* the timer watches it now */
	char *s = dump_until("\"ctx-timer\"");
	assert_has(s, "\"ctx-timer\": ends contexts at their deadlines");
	assert_has(s, "; now 1 in its heap, the next due in ");
	free(s);
	ctx_release(c);
}
END_TEST

START_TEST(test_dump_errors)
{
	int p[2];
	sigset_t pending;
	ck_assert_int_eq(ctx_dump(-1), EBADF);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	ck_assert_int_eq(ctx_dump(p[0]), EBADF);
	/* No reader: EPIPE, and no SIGPIPE to end the program. */
	ck_assert_int_eq(ctx_dump(p[1]), EPIPE);
	ck_assert_int_eq(sigpending(&pending), 0);
	ck_assert_int_eq(sigismember(&pending, SIGPIPE), 0);
	close(p[1]);
}
END_TEST

/* A non-blocking pipe far smaller than the report (48 threads waiting),
 * read slowly: all of it comes through, in order. */
struct sink {
	int fd;
	char buf[1 << 16];
	size_t len;
};

static void *drain(void *arg)
{
	struct sink *k = arg;
	ssize_t n;
	struct pollfd pf = { .fd = k->fd, .events = POLLIN };
	while (poll(&pf, 1, -1) >= 0 && k->len < sizeof(k->buf) - 1 &&
	       (n = read(k->fd, k->buf + k->len, 256)) != 0) {
		if (n > 0)
			k->len += (size_t)n;
		tu_sleep_ns(50 * 1000);
	}
	k->buf[k->len] = '\0';
	return NULL;
}

START_TEST(test_dump_nonblocking)
{
	int p[2], q[2];
	pthread_t r;
	ctx_thread_t *t[48];
	static struct sink k;
	ck_assert_int_eq(pipe2(q, O_CLOEXEC), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	for (int i = 0; i < 48; i++)
		ck_assert_int_eq(ctx_thread_create(&t[i], c, read_in_libctx,
						   &q[0]), 0);
	char *s = dump_until("Threads waiting in libctx: 48\n");
	ck_assert_int_gt(strlen(s), 2 * 4096);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 4096), 4096);
	k.fd = p[0];
	ck_assert_int_eq(pthread_create(&r, NULL, drain, &k), 0);
	ck_assert_int_eq(ctx_dump(p[1]), 0);
	close(p[1]);
	pthread_join(r, NULL);
	assert_has(k.buf, "Threads waiting in libctx: 48\n");
	assert_has(k.buf, "\nLive contexts (CTX_DEBUG=leaks):\n  (listed "
			  "only when CTX_DEBUG names leaks)\n");
	ck_assert_int_gt(k.len, 2 * 4096);
	free(s);
	close(p[0]);
	ctx_cancel(c);
	for (int i = 0; i < 48; i++)
		ck_assert_int_eq(ctx_thread_join(ctx_background(), t[i], NULL),
				 0);
	ctx_release(c);
	close(q[0]);
	close(q[1]);
}
END_TEST

/* ---- CTX_DEBUG=stuck ---------------------------------------------------- */

#define STUCK_MS 300

/* The reports go to a pipe of the test's: out[0] reads them. */
static int out[2];

static void stuck_on(void)
{
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ctx__stuck_set(STUCK_MS, out[1]);
}

static void stuck_off(void)
{
	ctx__stuck_set(0, -1);
	close(out[0]);
	close(out[1]);
}

/* What came on the pipe within ms milliseconds: malloc'd, "" if none.
 * Reads until a report's last line is in (each is one write). */
static char *reports_within(int ms)
{
	static char buf[8192];
	size_t len = 0;
	struct pollfd pf = { .fd = out[0], .events = POLLIN };
	int64_t end = ctx_now() + (int64_t)ms * CTX_MSEC;
	for (int64_t left; (left = end - ctx_now()) > 0 &&
	     poll(&pf, 1, (int)(left / CTX_MSEC) + 1) > 0;) {
		ssize_t n = read(out[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		break; /* one write: one report */
	}
	buf[len] = '\0';
	return strdup(buf);
}

START_TEST(test_stuck_plain_read)
{
	int p[2];
	ctx_thread_t *t;
	if (tu_valgrind()) {
		/* Valgrind gives threads ids of its own making. */
		fprintf(stderr, "dump/stuck_plain_read: skipped under "
			"valgrind\n");
		return;
	}
	char want[128];
	stuck_on();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, read_plain, &p[0]), 0);
	int tid = wait_tid();
	free(dump_until("outside libctx: read(2)")); /* it sits in read */
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	int cancel_line = __LINE__ - 1;
	char *r = reports_within(20000);
	double ms = tu_ms_since(t0);
	ck_assert_msg(ms >= STUCK_MS - 1, "reported after %.1f ms", ms);
	assert_has(r, "libctx: stuck: 300 ms after a context ended (context "
		      "canceled; ctx_cancel at ");
	assert_has(r, at_line(want, sizeof(want), "dump.c:%d), 1 thread is "
			      "still under it:\nlibctx: stuck:   the context: "
			      "WithCancel made at ", cancel_line));
	snprintf(want, sizeof(want), "libctx: stuck:   thread %d \"", tid);
	assert_has(r, want);
	snprintf(want, sizeof(want), "\", started by libctx under it: outside "
		 "libctx: read(2) on fd %d (pipe:[", p[0]);
	assert_has(r, want);
	free(r);
	/* Once: nothing more, however long it stays. */
	r = reports_within(3 * STUCK_MS);
	ck_assert_msg(!*r, "a second report:\n%s", r);
	free(r);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A thread that returns as its context ends is not reported. */
START_TEST(test_stuck_quiet_when_left)
{
	int p[2];
	ctx_thread_t *t;
	stuck_on();
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, read_in_libctx, &p[0]), 0);
	free(dump_until("in ctx_read"));
	ctx_cancel(c);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	char *r = reports_within(3 * STUCK_MS);
	ck_assert_msg(!*r, "a report of a thread that left:\n%s", r);
	free(r);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Started under a context that ended, now in a libctx call under
 * another: the call is named. */
START_TEST(test_stuck_libctx_call)
{
	ctx_thread_t *t;
	char want[128];
	stuck_on();
	ctx_chan_t *ch = ctx_chan_new(sizeof(int), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_thread_create(&t, c, recv_forever, ch), 0);
	int tid = wait_tid();
	free(dump_until("in ctx_chan_recv"));
	ctx_cancel(c);
	char *r = reports_within(20000);
	snprintf(want, sizeof(want), "libctx: stuck:   thread %d \"", tid);
	assert_has(r, want);
	assert_has(r, "\", started by libctx under it: in ctx_chan_recv "
		      "(under another context), for ");
	free(r);
	ctx_chan_close(ch);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_chan_free(ch);
	ctx_release(c);
}
END_TEST

/* A deadline's end counts, seen when due though nobody looks; and a
 * thread that computes is "running". */
static _Atomic bool stop_spinning;

static void *spin(ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	atomic_store(&tid_of_thread, gettid_());
	while (!atomic_load_explicit(&stop_spinning, memory_order_relaxed))
		;
	return NULL;
}

START_TEST(test_stuck_deadline_running)
{
	ctx_thread_t *t;
	stuck_on();
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	int c_line = __LINE__ - 1;
	char want[128];
	ck_assert_int_eq(ctx_thread_create(&t, c, spin, NULL), 0);
	wait_tid();
	char *r = reports_within(20000);
	ck_assert_msg(tu_ms_since(t0) >= 100 + STUCK_MS - 1,
		      "reported after %.1f ms", tu_ms_since(t0));
	assert_has(r, "ms after a context ended (context deadline exceeded; "
		      "the deadline of the context made at ");
	assert_has(r, at_line(want, sizeof(want), "dump.c:%d), 1 thread is ",
			      c_line));
	assert_has(r, "the context: WithDeadline made at ");
	assert_has(r, "\", started by libctx under it: outside libctx: "
		      "running\n");
	free(r);
	atomic_store(&stop_spinning, true);
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, NULL), 0);
	ctx_release(c);
}
END_TEST

/* ---- the environment: tests/dumpee ------------------------------------ */

/* Run tests/dumpee MODE with env (one "NAME=VALUE" string, or NULL);
 * its stdout and stderr together, and its exit status in *status. */
static char *run_dumpee(const char *env, const char *mode, int *status)
{
	static char outbuf[1 << 16];
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ASAN_OPTIONS=detect_leaks=0 "
		 "TSAN_OPTIONS=report_thread_leaks=0 env -u CTX_DEBUG "
		 "-u CTX_DUMP_SIGNAL -u CTX_DUMP_FILE %s ./tests/dumpee %s 2>&1",
		 env ? env : "", mode);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(outbuf, 1, sizeof(outbuf) - 1, p);
	outbuf[n] = '\0';
	*status = pclose(p);
	return outbuf;
}

/* The whole line of o that contains s (a static copy), or a failure. */
static const char *line_with(const char *o, const char *s)
{
	static char line[512];
	const char *at = strstr(o, s);
	ck_assert_msg(at != NULL, "no \"%s\" in:\n%s", s, o);
	while (at > o && at[-1] != '\n')
		at--;
	size_t len = strcspn(at, "\n");
	snprintf(line, sizeof(line), "%.*s", (int)len, at);
	return line;
}

static void assert_line(const char *o, const char *s, const char *head,
			const char *tail)
{
	const char *l = line_with(o, s);
	ck_assert_msg(strncmp(l, head, strlen(head)) == 0 &&
			      strstr(l, tail) != NULL,
		      "the line \"%s\" is not \"%s...%s...\"", l, head, tail);
}

START_TEST(test_env_leaks_tree)
{
	int st, l[4];
	char at[4][32];
	char *o = run_dumpee("CTX_DEBUG=leaks", "tree", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	ck_assert_int_eq(sscanf(o, "lines %d %d %d %d", &l[0], &l[1], &l[2],
				&l[3]), 4);
	for (int i = 0; i < 4; i++)
		snprintf(at[i], sizeof(at[i]), "dumpee.c:%d", l[i]);
	const char *tree = strstr(o, "Live contexts (CTX_DEBUG=leaks):\n");
	ck_assert_ptr_nonnull(tree);
	/* Two spaces deeper per level, each under the one above. */
	assert_line(tree, at[0], "  WithCancel made at ", ", under Background");
	assert_line(tree, at[1], "    WithDeadline made at ", ", deadline in ");
	assert_line(tree, at[2], "      WithValue made at ", " (key 0x");
	assert_line(tree, at[3], "    WithCancel made at ",
		    ", ended: context canceled");
	ck_assert(strstr(tree, at[1]) > strstr(tree, at[0]));
	ck_assert(strstr(tree, at[2]) > strstr(tree, at[1]));
}
END_TEST

START_TEST(test_env_no_tree_without_leaks)
{
	int st;
	char *o = run_dumpee(NULL, "tree", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	assert_has(o, "Live contexts (CTX_DEBUG=leaks):\n  (listed only "
		      "when CTX_DEBUG names leaks)\n");
}
END_TEST

START_TEST(test_env_stuck)
{
	int st;
	char *o = run_dumpee("CTX_DEBUG=stuck=200", "stuck", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	assert_has(o, "libctx: stuck: 200 ms after a context ended (context "
		      "canceled; ctx_cancel at ");
	assert_has(o, "dumpee.c:");
	assert_has(o, "), 1 thread is still under it:\n");
	assert_has(o, "\", started by libctx under it: outside libctx: "
		      "read(2) on fd ");
	ck_assert_ptr_null(strstr(strstr(o, "libctx: stuck: 200") + 1,
				  "libctx: stuck: 200"));
	o = run_dumpee("CTX_DEBUG=leaks", "stuck", &st);
	ck_assert_msg(st == 0 && !strstr(o, "libctx: stuck:"),
		      "a report without the mode:\n%s", o);
}
END_TEST

/* A program that exits while an end waits for its look leaves no
 * reference of the mode's behind: CTX_DEBUG=leaks reports no leak. */
START_TEST(test_env_stuck_exit_no_leak)
{
	int st;
	char *o = run_dumpee("CTX_DEBUG=leaks,stuck=5000", "release", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	ck_assert_msg(!strstr(o, "never released") && !strstr(o, "stuck:"),
		      "a report at exit:\n%s", o);
}
END_TEST

START_TEST(test_env_dump_signal)
{
	int st;
	char path[] = "/tmp/ctx-dump-XXXXXX", env[128];
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	snprintf(env, sizeof(env), "CTX_DUMP_SIGNAL=USR1 CTX_DUMP_FILE=%s",
		 path);
	char *o = run_dumpee(env, "signal", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	assert_has(o, "went on\n"); /* the program went on */
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	assert_has(buf, "libctx dump of process ");
	assert_has(buf, "in ctx_read, waiting for fd ");
	assert_has(buf, " (pipe:[");
	assert_has(buf, "\"ctx-dump\": writes ctx_dump's report when "
			"CTX_DUMP_SIGNAL comes; now on SIGUSR1, to ");
	close(fd);
	unlink(path);
	o = run_dumpee("CTX_DUMP_SIGNAL=NOSUCH", "tree", &st);
	ck_assert_msg(st == 0, "status %d:\n%s", st, o);
	assert_has(o, "libctx: CTX_DUMP_SIGNAL=NOSUCH: not a signal that can "
		      "be caught; no dumps\n");
}
END_TEST

Suite *suite_dump(void)
{
	Suite *s = suite_create("dump");
	if (tu_valgrind()) {
		/* The reports name threads by the kernel's ids and names,
		 * which valgrind makes its own. */
		fprintf(stderr, "dump: skipped under valgrind\n");
		return s;
	}
	TCase *tc = tu_tcase(s, "report", 60);
	tcase_add_test(tc, test_dump_pipe_reader);
	tcase_add_test(tc, test_dump_sockets);
	tcase_add_test(tc, test_dump_started_outside);
	tcase_add_test(tc, test_dump_parked);
	tcase_add_test(tc, test_dump_library_threads);
	tcase_add_test(tc, test_dump_errors);
	tcase_add_test(tc, test_dump_nonblocking);
	tc = tu_tcase(s, "stuck", 60);
	tcase_add_checked_fixture(tc, NULL, stuck_off);
	tcase_add_test(tc, test_stuck_plain_read);
	tcase_add_test(tc, test_stuck_quiet_when_left);
	tcase_add_test(tc, test_stuck_libctx_call);
	tcase_add_test(tc, test_stuck_deadline_running);
	tc = tu_tcase(s, "environment", 60);
	tcase_add_test(tc, test_env_leaks_tree);
	tcase_add_test(tc, test_env_no_tree_without_leaks);
	tcase_add_test(tc, test_env_stuck);
	tcase_add_test(tc, test_env_stuck_exit_no_leak);
	tcase_add_test(tc, test_env_dump_signal);
	return s;
}
