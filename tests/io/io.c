/*
 * Cancellable I/O: ctx_read, ctx_write, ctx_recv, ctx_send, ctx_accept
 * and ctx_connect, on every kind of descriptor the contract names, each
 * both blocking and non-blocking.
 *
 * Most tests are loop tests over the descriptor kinds below; Check prints
 * the iteration after the test's name ("test_read_cancel:6" is a
 * blocking FIFO).  A blocked call is ended from another thread: a
 * canceller, a feeder that supplies data late, or the context's deadline.
 * Calls that might never return run where a failure can be detected and
 * undone (a deadline of BOUND, or a worker thread that is unstuck), so a
 * broken library fails these tests instead of hanging them, also under
 * CK_FORK=no.  Assertions are made on the test's own thread only.
 * CTX_TEST_QUICK=1 (for valgrind) runs test_read_race for fewer rounds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <check.h>

#include "ctx.h"
#include "suites.h"
#include "testutil.h"

#define HOUR (3600 * CTX_SEC)
#define BOUND (5 * CTX_SEC)     /* a deadline no correct call reaches: one
				 * that waits for what never comes fails
				 * instead of hanging the test */
#define SHORT_MS 30             /* when a helper acts, or a deadline falls;
				 * short, as the loop tests run it ~400 times */
#define SHORT (SHORT_MS * CTX_MSEC)
#define LATE_MS 2000            /* "promptly", on a shared and noisy machine */
#define QUIET_MS 20             /* this long without data: nothing came
				 * (too short can only miss a failure) */
#define STUCK_MS 3000           /* a call this late past its end is stuck */
#define BIG (1 << 20)           /* more than any descriptor here buffers */
#define SOCKBUF 16384           /* small socket buffers fill fast */

/* Eight bytes, so that it is also one eventfd value (the NUL included). */
static const char msg[] = "1234567";
#define MSG_LEN sizeof(msg)

/* ---- descriptor kinds ------------------------------------------------- */

/* Odd kinds are the non-blocking twins of the even ones.  Sockets come
 * first and eventfds (counters, not streams) last, so that loop tests
 * can take a prefix.  A terminal is tested from both sides: its master
 * (an open of /dev/ptmx) is a different file from the terminal itself. */
enum {
	K_UNIX, K_UNIX_NB,
	K_TCP, K_TCP_NB,
	N_SOCK_KINDS,
	K_PIPE = N_SOCK_KINDS, K_PIPE_NB,
	K_FIFO, K_FIFO_NB,
	K_PTY, K_PTY_NB,
	K_PTM, K_PTM_NB,
	N_STREAM_KINDS,
	K_EVENTFD = N_STREAM_KINDS, K_EVENTFD_NB,
	N_KINDS,
};

/* For messages: "... on %s". */
static const char *const kind_name[N_KINDS] = {
	"an AF_UNIX socketpair", "a non-blocking AF_UNIX socketpair",
	"a TCP loopback socket", "a non-blocking TCP loopback socket",
	"a pipe", "a non-blocking pipe",
	"a FIFO", "a non-blocking FIFO",
	"a terminal", "a non-blocking terminal",
	"a terminal's master", "a non-blocking terminal's master",
	"an eventfd", "a non-blocking eventfd",
};

static bool is_nonblocking(int kind) { return kind & 1; }
static bool is_eventfd(int kind) { return kind >= K_EVENTFD; }

/*
 * Two connected descriptors.  The library is tested on rd (ctx_read) and
 * wr (ctx_write); the test makes rd readable by writing feed, and reads
 * what wr wrote from drain.  For a pipe rd and wr are its two ends; for
 * the others rd == wr and feed == drain is the far end (an eventfd is
 * its own far end).
 */
struct pair {
	int kind;
	int rd, wr, feed, drain;
	int fd[2];
};

static void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl), 0);
}

static bool nonblock_flag(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	return fl & O_NONBLOCK;
}

static bool cloexec_flag(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	ck_assert_int_ne(fl, -1);
	return fl & FD_CLOEXEC;
}

/* Small buffers, so that filling a socket takes kilobytes, not megabytes. */
static void small_buffers(int fd)
{
	int sz = SOCKBUF;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)),
			 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)),
			 0);
}

static struct sockaddr_in loopback(in_port_t port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = port,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
}

static in_port_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return a.sin_port;
}

/* A socket listening on 127.0.0.1 at a port of the kernel's choosing. */
static int tcp_listener(int backlog, struct sockaddr_in *addr)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(l, 0);
	small_buffers(l); /* accepted sockets inherit them */
	*addr = loopback(0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)addr, sizeof(*addr)), 0);
	addr->sin_port = local_port(l);
	ck_assert_int_eq(listen(l, backlog), 0);
	return l;
}

static int tcp_socket(bool nonblock)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
				   (nonblock ? SOCK_NONBLOCK : 0), 0);

	ck_assert_int_ge(s, 0);
	small_buffers(s);
	return s;
}

/* A port on 127.0.0.1 that nobody listens on: bound once, then freed. */
static struct sockaddr_in closed_port(void)
{
	int s = tcp_socket(false);
	struct sockaddr_in a = loopback(0);

	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	a.sin_port = local_port(s);
	close(s);
	return a;
}

static void open_tcp(int fd[2])
{
	struct sockaddr_in a;
	int l = tcp_listener(1, &a);

	fd[0] = tcp_socket(false);
	ck_assert_int_eq(connect(fd[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fd[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd[1], 0);
	close(l);
}

/* A FIFO opened twice O_RDWR (so neither end waits for the other); the
 * name is gone at once, the descriptors stay. */
static void open_fifo(int fd[2])
{
	char dir[] = "/tmp/ctx-test-XXXXXX", path[64];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	fd[0] = open(path, O_RDWR | O_CLOEXEC);
	fd[1] = open(path, O_RDWR | O_CLOEXEC);
	unlink(path);
	rmdir(dir);
	ck_assert_int_ge(fd[0], 0);
	ck_assert_int_ge(fd[1], 0);
}

/* fd[0] a terminal in raw mode (bytes pass unchanged, no echo), fd[1]
 * its master.  posix_openpt needs no library beyond libc. */
static void open_pty(int fd[2])
{
	char name[128];
	struct termios t;
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(fcntl(m, F_SETFD, FD_CLOEXEC), 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	ck_assert_int_eq(ptsname_r(m, name, sizeof(name)), 0);
	fd[0] = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(fd[0], 0);
	fd[1] = m;
	ck_assert_int_eq(tcgetattr(fd[0], &t), 0);
	cfmakeraw(&t);
	ck_assert_int_eq(tcsetattr(fd[0], TCSANOW, &t), 0);
}

static void swap(int fd[2])
{
	int t = fd[0];

	fd[0] = fd[1];
	fd[1] = t;
}

static void open_pair(struct pair *p, int kind)
{
	int *fd = p->fd;

	p->kind = kind;
	switch (kind & ~1) {
	case K_UNIX:
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, fd), 0);
		small_buffers(fd[0]);
		small_buffers(fd[1]);
		break;
	case K_TCP:
		open_tcp(fd);
		break;
	case K_PIPE:
		ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0);
		break;
	case K_FIFO:
		open_fifo(fd);
		break;
	case K_PTY:
		open_pty(fd);
		break;
	case K_PTM:
		open_pty(fd);
		swap(fd);
		break;
	default:
		fd[0] = fd[1] = eventfd(0, EFD_CLOEXEC);
		ck_assert_int_ge(fd[0], 0);
		break;
	}
	if ((kind & ~1) == K_PIPE) {
		p->rd = p->drain = fd[0];
		p->wr = p->feed = fd[1];
	} else {
		p->rd = p->wr = fd[0];
		p->feed = p->drain = fd[1];
	}
	if (is_nonblocking(kind)) {
		set_nonblock(p->rd, true);
		set_nonblock(p->wr, true);
	}
}

static void close_pair(struct pair *p)
{
	close(p->fd[0]);
	if (p->fd[1] != p->fd[0])
		close(p->fd[1]);
}

/* ---- the test's own side: plain calls that never block ---------------- */

static bool ready_for(int fd, short events, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	return n == 1 && (pfd.revents & events);
}

static bool readable(int fd, int ms) { return ready_for(fd, POLLIN, ms); }

static void put(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* What fd has within ms (poll first, so a blocking fd is safe): the
 * count read, 0 if nothing came. */
static ssize_t get(int fd, void *buf, size_t len, int ms)
{
	if (!readable(fd, ms))
		return 0;
	ssize_t n = read(fd, buf, len);
	ck_assert_msg(n > 0, "read: %s", strerror(errno));
	return n;
}

/* One message from a stream, which may come in pieces (a terminal
 * written a byte at a time): the count of its bytes that came. */
#define get_msg(fd, buf) ((ssize_t)drain_upto((fd), (buf), MSG_LEN, LATE_MS))

/* Read from fd until want bytes came (into buf, unless NULL) or none came
 * for ms; return the count.  Waiting for a known count keeps the tests
 * fast without guessing how long the kernel may take to deliver. */
static size_t drain_upto(int fd, char *buf, size_t want, int ms)
{
	static char scratch[65536];
	size_t total = 0;
	ssize_t n = 1;

	while (total < want && n > 0) {
		size_t room = want - total;

		if (!buf && room > sizeof(scratch))
			room = sizeof(scratch);
		n = get(fd, buf ? buf + total : scratch, room, ms);
		total += (size_t)n;
	}
	return total;
}

/*
 * Whether the kernel has stopped moving what was written to wr toward the
 * far end, which frees room for more: TCP has nothing in flight (the ack
 * that frees the sender's buffer may be delayed by the receiver), and a
 * terminal's master holds all its line discipline takes (N_TTY_BUF_SIZE
 * less one; the rest waits in the tty's flip buffers, moved by a worker).
 */
static bool settled(struct pair *p)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int n = 0;

	switch (p->kind & ~1) {
	case K_TCP:
		ck_assert_int_eq(getsockopt(p->wr, IPPROTO_TCP, TCP_INFO, &ti,
					    &len), 0);
		return ti.tcpi_unacked == 0;
	case K_PTY:
	case K_PTM:
		ck_assert_int_eq(ioctl(p->drain, FIONREAD, &n), 0);
		return n >= 4095;
	default:
		return true;
	}
}

/* Fill wr until a write would block, and return how much went in.  An
 * eventfd is full one below its maximum.  Full means a round of writes
 * that started settled wrote nothing. */
static size_t fill(struct pair *p)
{
	static const char chunk[4096];
	size_t total = 0;
	int fl = fcntl(p->wr, F_GETFL);
	int64_t t0 = ctx_now();

	if (is_eventfd(p->kind)) {
		uint64_t v = 0xfffffffffffffffeULL;

		put(p->wr, &v, sizeof(v));
		return sizeof(v);
	}
	ck_assert_int_eq(fcntl(p->wr, F_SETFL, fl | O_NONBLOCK), 0);
	for (;;) {
		bool was_settled = settled(p);
		size_t round = 0;
		ssize_t n;

		while ((n = write(p->wr, chunk, sizeof(chunk))) > 0)
			round += (size_t)n;
		ck_assert_msg(errno == EAGAIN, "fill: %s", strerror(errno));
		total += round;
		if (round == 0 && was_settled)
			break;
		ck_assert_msg(tu_ms_since(t0) < LATE_MS, "%s does not fill",
			      kind_name[p->kind]);
		tu_sleep_ns(CTX_MSEC);
	}
	ck_assert_int_eq(fcntl(p->wr, F_SETFL, fl), 0);
	ck_assert_int_gt(total, 0);
	return total;
}

/* After fill(): everything that reached the far end is exactly what fill
 * put there; nothing of a refused write followed it. */
static void assert_drained(struct pair *p, size_t filled)
{
	if (is_eventfd(p->kind)) {
		uint64_t v = 0;

		ck_assert_int_eq(get(p->drain, &v, sizeof(v), LATE_MS), 8);
		ck_assert_uint_eq(v, 0xfffffffffffffffeULL);
		ck_assert(!readable(p->drain, QUIET_MS));
		return;
	}
	ck_assert_uint_eq(drain_upto(p->drain, NULL, filled, LATE_MS), filled);
	ck_assert(!readable(p->drain, QUIET_MS));
}

/* ---- threads that act on the test's behalf ---------------------------- */

/* Writes buf to fd after a delay: data that comes while a call waits. */
struct feeder {
	pthread_t thread;
	int fd;
	int64_t delay;
	const void *buf;
	size_t len;
};

static void *feeder_main(void *arg)
{
	struct feeder *f = arg;

	tu_sleep_ns(f->delay);
	if (write(f->fd, f->buf, f->len) != (ssize_t)f->len)
		abort(); /* no assertions off the test's thread */
	return NULL;
}

static void feed_after(struct feeder *f, int fd, const void *buf, size_t len,
		       int64_t delay)
{
	*f = (struct feeder){ .fd = fd, .delay = delay, .buf = buf, .len = len };
	ck_assert_int_eq(pthread_create(&f->thread, NULL, feeder_main, f), 0);
}

static void feeder_join(struct feeder *f)
{
	ck_assert_int_eq(pthread_join(f->thread, NULL), 0);
}

/*
 * A call run on a worker thread, for calls that might never return: the
 * test waits a bounded time, then unsticks the worker (by draining what
 * it writes) so that the process is clean even when it fails.
 */
struct bounded {
	pthread_t thread;
	void (*fn)(struct bounded *b);
	atomic_bool done;
	/* the call's arguments and results */
	int64_t timeout;
	ctx_t *ctx;     /* made by the worker with the timeout: the
			 * deadline runs from just before the call */
	int fd;
	const char *buf;
	size_t len;
	ssize_t n;
	int err;
	double ms;      /* from before ctx was made until the call returned */
};

static void *bounded_main(void *arg)
{
	struct bounded *b = arg;
	int64_t t0 = ctx_now();

	b->ctx = ctx_with_timeout(ctx_background(), b->timeout);
	b->fn(b);
	b->ms = tu_ms_since(t0);
	ctx_release(b->ctx);
	atomic_store(&b->done, true);
	return NULL;
}

static void bounded_start(struct bounded *b)
{
	atomic_init(&b->done, false);
	ck_assert_int_eq(pthread_create(&b->thread, NULL, bounded_main, b), 0);
}

/* Whether the call returned within ms; if not, drain_fd is read until it
 * does.  The worker is joined either way. */
static bool bounded_join(struct bounded *b, int ms, int drain_fd)
{
	int64_t t0 = ctx_now();
	bool in_time;

	while (!atomic_load(&b->done) && tu_ms_since(t0) < ms)
		tu_sleep_ns(CTX_MSEC);
	in_time = atomic_load(&b->done);
	while (!atomic_load(&b->done))
		drain_upto(drain_fd, NULL, SIZE_MAX, QUIET_MS);
	ck_assert_int_eq(pthread_join(b->thread, NULL), 0);
	return in_time;
}

/* ---- assertions ------------------------------------------------------- */

/* A transfer of want bytes on a kind of descriptor, with errno if not. */
#define assert_moved(n, want, kind)                                         \
	do {                                                                \
		ssize_t n__ = (n);                                          \
		int errno__ = errno;                                        \
		ck_assert_msg(n__ == (ssize_t)(want), "%zd bytes (errno %d, " \
			      "%s) on %s, expected %zd", n__, errno__,    \
			      n__ < 0 ? strerror(errno__) : "-",            \
			      kind_name[kind], (ssize_t)(want));            \
	} while (0)

/* ---- read ------------------------------------------------------------- */

START_TEST(test_read_ready)
{
	struct pair p;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, LATE_MS));
	assert_moved(ctx_read(c, p.rd, buf, sizeof(buf)), MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* Data that comes while the call waits ends the wait. */
START_TEST(test_read_later)
{
	struct pair p;
	struct feeder f;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	feed_after(&f, p.feed, msg, MSG_LEN, SHORT);
	ssize_t n = ctx_read(c, p.rd, buf, sizeof(buf));
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	assert_moved(n, MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* The calls the cancel and deadline tests run, one signature per
 * direction, so that each test runs for read and recv, write and send. */
typedef ssize_t (*read_fn)(ctx_t *c, int fd, void *buf, size_t len);
typedef ssize_t (*write_fn)(ctx_t *c, int fd, const void *buf, size_t len);

static ssize_t do_read(ctx_t *c, int fd, void *buf, size_t len)
{
	return ctx_read(c, fd, buf, len);
}

static ssize_t do_recv(ctx_t *c, int fd, void *buf, size_t len)
{
	return ctx_recv(c, fd, buf, len, 0);
}

static ssize_t do_write(ctx_t *c, int fd, const void *buf, size_t len)
{
	return ctx_write(c, fd, buf, len);
}

static ssize_t do_send(ctx_t *c, int fd, const void *buf, size_t len)
{
	return ctx_send(c, fd, buf, len, MSG_NOSIGNAL);
}

/* Cancelled while blocked; and the cancelled call took nothing: data
 * written afterwards is all there for the next reader. */
static void check_read_cancel(int kind, read_fn call)
{
	struct pair p;
	struct tu_canceller k;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());

	open_pair(&p, kind);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	ssize_t n = call(c, p.rd, buf, sizeof(buf));
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);

	put(p.feed, msg, MSG_LEN);
	ck_assert_int_eq(get_msg(p.rd, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ctx_release(c);
	close_pair(&p);
}

START_TEST(test_read_cancel)
{
	check_read_cancel(_i, do_read);
}
END_TEST

START_TEST(test_read_deadline)
{
	struct pair p;
	char buf[16];

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	ssize_t n = ctx_read(c, p.rd, buf, sizeof(buf));
	double ms = tu_ms_since(t0);
	tu_assert_fail(n, CTX_DEADLINE_EXCEEDED);
	/* Never before the deadline: it is measured from before creation. */
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* A context that is already done refuses at once though data is ready,
 * and consumes none of it: cancelled, expired, and done through an
 * ancestor. */
START_TEST(test_read_done_first)
{
	struct pair p;
	char buf[16] = { 0 };
	ctx_t *cancelled = ctx_with_cancel(ctx_background());
	ctx_t *expired = ctx_with_timeout(ctx_background(), 0);
	ctx_t *below = ctx_with_value(cancelled, msg, NULL);

	open_pair(&p, _i);
	ctx_cancel(cancelled);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, LATE_MS));
	tu_assert_fail(ctx_read(cancelled, p.rd, buf, sizeof(buf)),
		       CTX_CANCELED);
	tu_assert_fail(ctx_read(expired, p.rd, buf, sizeof(buf)),
		       CTX_DEADLINE_EXCEEDED);
	tu_assert_fail(ctx_read(below, p.rd, buf, sizeof(buf)), CTX_CANCELED);
	ck_assert_int_eq(get_msg(p.rd, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ctx_release(below);
	ctx_release(expired);
	ctx_release(cancelled);
	close_pair(&p);
}
END_TEST

/* ---- write ------------------------------------------------------------ */

START_TEST(test_write_ready)
{
	struct pair p;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	assert_moved(ctx_write(c, p.wr, msg, MSG_LEN), MSG_LEN, _i);
	ck_assert_msg(get_msg(p.drain, buf) == MSG_LEN,
		      "what ctx_write wrote to %s never came out",
		      kind_name[_i]);
	ck_assert_str_eq(buf, msg);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* Cancelled while blocked on a full descriptor; nothing of it went out. */
static void check_write_cancel(int kind, write_fn call)
{
	struct pair p;
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	open_pair(&p, kind);
	size_t filled = fill(&p);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	ssize_t n = call(c, p.wr, msg, MSG_LEN);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	assert_drained(&p, filled);
	ctx_release(c);
	close_pair(&p);
}

/* The same at a deadline: never before it. */
static void check_write_deadline(int kind, write_fn call)
{
	struct pair p;

	open_pair(&p, kind);
	size_t filled = fill(&p);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	ssize_t n = call(c, p.wr, msg, MSG_LEN);
	double ms = tu_ms_since(t0);
	tu_assert_fail(n, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	assert_drained(&p, filled);
	ctx_release(c);
	close_pair(&p);
}

START_TEST(test_write_cancel)
{
	check_write_cancel(_i, do_write);
}
END_TEST

START_TEST(test_write_deadline)
{
	check_write_deadline(_i, do_write);
}
END_TEST

/* Refused at once though there is room; nothing reaches the far end. */
START_TEST(test_write_done_first)
{
	struct pair p;
	ctx_t *cancelled = ctx_with_cancel(ctx_background());
	ctx_t *expired = ctx_with_timeout(ctx_background(), 0);

	open_pair(&p, _i);
	ctx_cancel(cancelled);
	tu_assert_fail(ctx_write(cancelled, p.wr, msg, MSG_LEN), CTX_CANCELED);
	tu_assert_fail(ctx_write(expired, p.wr, msg, MSG_LEN),
		       CTX_DEADLINE_EXCEEDED);
	ck_assert(!readable(p.drain, QUIET_MS));
	ctx_release(expired);
	ctx_release(cancelled);
	close_pair(&p);
}
END_TEST

/* What the big writes write, and what comes back. */
static char big[BIG], back[BIG];

static void fill_pattern(void)
{
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)(i * 7 % 251);
}

static void call_write(struct bounded *b)
{
	b->n = ctx_write(b->ctx, b->fd, b->buf, b->len);
	b->err = errno;
}

static void call_send(struct bounded *b)
{
	b->n = ctx_send(b->ctx, b->fd, b->buf, b->len, MSG_NOSIGNAL);
	b->err = errno;
}

/* The longest deadline check_partial gives a write: SHORT_MS * 4^4. */
#define PARTIAL_MAX_MS (SHORT_MS * 256)

/* The big write of check_partial with a deadline of ms; it must return
 * within STUCK_MS of it. */
static void partial_try(struct pair *p, struct bounded *b, int ms)
{
	b->timeout = ms * CTX_MSEC;
	bounded_start(b);
	bool in_time = bounded_join(b, ms + STUCK_MS, p->drain);
	if (!in_time)
		close_pair(p); /* nothing more to look at */
	ck_assert_msg(in_time, "a %d-byte write to %s was still blocked "
		      "%d ms after its %d ms deadline: not cancellable",
		      BIG, kind_name[p->kind], STUCK_MS, ms);
}

/*
 * A big write that nobody drains, with a deadline: it returns the count
 * that went out, which is more than none and less than all, and the far
 * end then holds exactly that many bytes, in order.  Run on a worker so
 * that a write stuck in the kernel fails the test instead of hanging it.
 * On a loaded machine the worker may not reach its first write before a
 * short deadline (or a terminal's buffers may not drain into the line
 * discipline in time): a write that moved nothing must then have failed
 * with the deadline and left nothing at the far end, and is tried again
 * with a deadline four times longer, up to PARTIAL_MAX_MS.
 */
static void check_partial(int kind, void (*call)(struct bounded *b))
{
	struct pair p;
	struct bounded b = { .fn = call, .len = BIG };
	int ms = SHORT_MS;

	fill_pattern();
	open_pair(&p, kind);
	b.fd = p.wr;
	b.buf = big;
	for (partial_try(&p, &b, ms); b.n <= 0 && ms < PARTIAL_MAX_MS;
	     partial_try(&p, &b, ms)) {
		ck_assert_msg(b.n == -1 && b.err == CTX_DEADLINE_EXCEEDED,
			      "returned %zd (errno %d) on %s", b.n, b.err,
			      kind_name[kind]);
		ck_assert(!readable(p.drain, QUIET_MS));
		ms *= 4;
	}
	ck_assert_msg(b.n > 0 && b.n < BIG, "returned %zd (errno %d) on %s "
		      "with a %d ms deadline", b.n, b.err, kind_name[kind], ms);
	tu_assert_ms(b.ms, ms, ms + LATE_MS);
	ck_assert_uint_eq(drain_upto(p.drain, back, (size_t)b.n, LATE_MS),
			  (size_t)b.n);
	ck_assert_mem_eq(back, big, (size_t)b.n);
	ck_assert(!readable(p.drain, QUIET_MS));
	close_pair(&p);
}

START_TEST(test_write_partial)
{
	check_partial(_i, call_write);
}
END_TEST

/* ---- recv and send ---------------------------------------------------- */

START_TEST(test_recv_ready)
{
	struct pair p;
	char buf[16] = { 0 }, again[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, LATE_MS));
	/* Flags pass through: a peek leaves the data for the next call. */
	ck_assert_int_eq(ctx_recv(c, p.rd, buf, sizeof(buf), MSG_PEEK),
			 MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ck_assert_int_eq(ctx_recv(c, p.rd, again, sizeof(again), 0), MSG_LEN);
	ck_assert_str_eq(again, msg);
	ck_assert(!readable(p.rd, 0));
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_recv_later)
{
	struct pair p;
	struct feeder f;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	feed_after(&f, p.feed, msg, MSG_LEN, SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, sizeof(buf), 0);
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	ck_assert_int_eq(n, MSG_LEN);
	ck_assert_str_eq(buf, msg);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_recv_cancel)
{
	check_read_cancel(_i, do_recv);
}
END_TEST

START_TEST(test_recv_deadline)
{
	struct pair p;
	char buf[16];

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, sizeof(buf), 0);
	double ms = tu_ms_since(t0);
	tu_assert_fail(n, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_recv_done_first)
{
	struct pair p;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	ctx_cancel(c);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, LATE_MS));
	tu_assert_fail(ctx_recv(c, p.rd, buf, sizeof(buf), 0), CTX_CANCELED);
	tu_assert_fail(ctx_recv(c, p.rd, buf, sizeof(buf), MSG_DONTWAIT),
		       CTX_CANCELED);
	ck_assert_int_eq(get_msg(p.rd, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* MSG_DONTWAIT asks not to wait, even on a blocking socket. */
START_TEST(test_recv_dontwait)
{
	struct pair p;
	char buf[16];
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_recv(c, p.rd, buf, sizeof(buf), MSG_DONTWAIT),
		       EAGAIN);
	tu_assert_ms(tu_ms_since(t0), 0, LATE_MS / 4);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* The peer's shutdown is end of file, not a wait. */
START_TEST(test_recv_eof)
{
	struct pair p;
	char buf[16];
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	ck_assert_int_eq(shutdown(p.feed, SHUT_WR), 0);
	ck_assert_int_eq(ctx_recv(c, p.rd, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(ctx_read(c, p.rd, buf, sizeof(buf)), 0);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* MSG_WAITALL: the wait for all of it is the library's, so it must be
 * cancellable, and what came before the end is returned.  The loop
 * index is the kind; the same message comes in two halves, the second
 * late (all of it), never (cancelled: the first half), or never with the
 * peer gone (end of stream: the first half). */
START_TEST(test_recv_waitall)
{
	struct pair p;
	struct feeder f;
	struct tu_canceller k;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	ctx_t *d = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	put(p.feed, msg, 4);
	feed_after(&f, p.feed, msg + 4, MSG_LEN - 4, SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, MSG_LEN, MSG_WAITALL);
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	assert_moved(n, MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);

	memset(buf, 0, sizeof(buf));
	put(p.feed, msg, 4);
	tu_must_cancel_after(&k, d, SHORT);
	n = ctx_recv(d, p.rd, buf, MSG_LEN, MSG_WAITALL);
	tu_canceller_join(&k);
	assert_moved(n, 4, _i);
	ck_assert_mem_eq(buf, msg, 4);

	put(p.feed, msg, 4);
	ck_assert_int_eq(shutdown(p.feed, SHUT_WR), 0);
	assert_moved(ctx_recv(c, p.rd, buf, MSG_LEN, MSG_WAITALL), 4, _i);
	ctx_release(d);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* MSG_PEEK with MSG_WAITALL: all of the message, late half included, is
 * copied without being taken, once (no byte twice), and a plain recv
 * then takes the same bytes; a cancel with half there returns the half
 * it saw. */
START_TEST(test_recv_peek_waitall)
{
	struct pair p;
	struct feeder f;
	struct tu_canceller k;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	ctx_t *d = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	put(p.feed, msg, 4);
	feed_after(&f, p.feed, msg + 4, MSG_LEN - 4, SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, MSG_LEN, MSG_PEEK | MSG_WAITALL);
	feeder_join(&f);
	assert_moved(n, MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);
	memset(buf, 0, sizeof(buf));
	assert_moved(ctx_recv(c, p.rd, buf, MSG_LEN, MSG_WAITALL), MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);

	memset(buf, 0, sizeof(buf));
	put(p.feed, msg, 4);
	tu_must_cancel_after(&k, d, SHORT);
	n = ctx_recv(d, p.rd, buf, MSG_LEN, MSG_PEEK | MSG_WAITALL);
	tu_canceller_join(&k);
	assert_moved(n, 4, _i);
	ck_assert_mem_eq(buf, msg, 4);
	assert_moved(ctx_recv(c, p.rd, buf, sizeof(buf), MSG_DONTWAIT), 4, _i);
	ctx_release(d);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_send_ready)
{
	struct pair p;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	ck_assert_int_eq(ctx_send(c, p.wr, msg, MSG_LEN, MSG_NOSIGNAL),
			 MSG_LEN);
	ck_assert_int_eq(get_msg(p.drain, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_send_cancel)
{
	check_write_cancel(_i, do_send);
}
END_TEST

START_TEST(test_send_deadline)
{
	check_write_deadline(_i, do_send);
}
END_TEST

START_TEST(test_send_done_first)
{
	struct pair p;
	ctx_t *c = ctx_with_timeout(ctx_background(), 0);

	open_pair(&p, _i);
	tu_assert_fail(ctx_send(c, p.wr, msg, MSG_LEN, 0),
		       CTX_DEADLINE_EXCEEDED);
	tu_assert_fail(ctx_send(c, p.wr, msg, MSG_LEN, MSG_DONTWAIT),
		       CTX_DEADLINE_EXCEEDED);
	ck_assert(!readable(p.drain, QUIET_MS));
	ctx_release(c);
	close_pair(&p);
}
END_TEST

START_TEST(test_send_partial)
{
	check_partial(_i, call_send);
}
END_TEST

START_TEST(test_send_dontwait)
{
	struct pair p;
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	size_t filled = fill(&p);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_send(c, p.wr, msg, MSG_LEN, MSG_DONTWAIT), EAGAIN);
	tu_assert_ms(tu_ms_since(t0), 0, LATE_MS / 4);
	assert_drained(&p, filled);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* ---- accept ----------------------------------------------------------- */

/* A listener, blocking or not (the loop index), and its address. */
static int listener(int nonblock, struct sockaddr_in *a)
{
	int l = tcp_listener(8, a);

	set_nonblock(l, nonblock);
	return l;
}

/* A client connected to a (the listener's queue completes it). */
static int client(const struct sockaddr_in *a)
{
	int s = tcp_socket(false);

	ck_assert_int_eq(connect(s, (const struct sockaddr *)a, sizeof(*a)), 0);
	return s;
}

/* s and t are the two ends of one connection. */
static void assert_connected(int s, int t)
{
	char buf[16] = { 0 };

	put(s, msg, MSG_LEN);
	ck_assert_int_eq(get_msg(t, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
}

START_TEST(test_accept_ready)
{
	struct sockaddr_in a, peer;
	socklen_t len = sizeof(peer);
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	int l = listener(_i, &a), s = client(&a);

	ck_assert(readable(l, LATE_MS));
	int t = ctx_accept(c, l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
	ck_assert_int_ge(t, 0);
	ck_assert_uint_eq(len, sizeof(peer));
	ck_assert_uint_eq(peer.sin_port, local_port(s));
	assert_connected(s, t);
	ck_assert_int_eq(nonblock_flag(l), _i);
	close(t);
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

/* accept4's flags reach the new socket, and only they. */
START_TEST(test_accept_flags)
{
	static const int flags[] = {
		0, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_CLOEXEC | SOCK_NONBLOCK,
	};
	struct sockaddr_in a;
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	int l = listener(_i, &a);

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		int s = client(&a);
		int t = ctx_accept(c, l, NULL, NULL, flags[i]);

		ck_assert_int_ge(t, 0);
		ck_assert_int_eq(cloexec_flag(t), !!(flags[i] & SOCK_CLOEXEC));
		ck_assert_int_eq(nonblock_flag(t),
				 !!(flags[i] & SOCK_NONBLOCK));
		assert_connected(s, t);
		close(t);
		close(s);
	}
	close(l);
	ctx_release(c);
}
END_TEST

/* Connects to addr after a delay. */
struct connector {
	pthread_t thread;
	struct sockaddr_in addr;
	int fd;
};

static void *connector_main(void *arg)
{
	struct connector *k = arg;

	tu_sleep_ns(SHORT);
	if (connect(k->fd, (struct sockaddr *)&k->addr, sizeof(k->addr)) < 0)
		abort();
	return NULL;
}

START_TEST(test_accept_later)
{
	struct sockaddr_in a;
	struct connector k;
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	int l = listener(_i, &a);

	k.addr = a;
	k.fd = tcp_socket(false);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_create(&k.thread, NULL, connector_main, &k),
			 0);
	int t = ctx_accept(c, l, NULL, NULL, SOCK_CLOEXEC);
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(pthread_join(k.thread, NULL), 0);
	ck_assert_int_ge(t, 0);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	assert_connected(k.fd, t);
	close(t);
	close(k.fd);
	close(l);
	ctx_release(c);
}
END_TEST

START_TEST(test_accept_cancel)
{
	struct sockaddr_in a;
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());
	int l = listener(_i, &a);

	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int t = ctx_accept(c, l, NULL, NULL, SOCK_CLOEXEC);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(t, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ck_assert_int_eq(nonblock_flag(l), _i);
	/* The listener still works. */
	int s = client(&a);
	ck_assert(readable(l, LATE_MS));
	t = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(t, 0);
	close(t);
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

START_TEST(test_accept_deadline)
{
	struct sockaddr_in a;
	int l = listener(_i, &a);

	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	int t = ctx_accept(c, l, NULL, NULL, SOCK_CLOEXEC);
	double ms = tu_ms_since(t0);
	tu_assert_fail(t, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ck_assert_int_eq(nonblock_flag(l), _i);
	close(l);
	ctx_release(c);
}
END_TEST

/* Refused at once with a connection waiting, which stays queued. */
START_TEST(test_accept_done_first)
{
	struct sockaddr_in a;
	ctx_t *c = ctx_with_cancel(ctx_background());
	int l = listener(_i, &a), s = client(&a);

	ctx_cancel(c);
	ck_assert(readable(l, LATE_MS));
	tu_assert_fail(ctx_accept(c, l, NULL, NULL, SOCK_CLOEXEC),
		       CTX_CANCELED);
	ck_assert(readable(l, 0));
	int t = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(t, 0);
	assert_connected(s, t);
	close(t);
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

/*
 * accept(2) on something that cannot accept fails at once; so must
 * ctx_accept, also on a blocking descriptor that never turns readable.
 * The loop index picks it: a TCP socket and an AF_UNIX socket that do
 * not listen (EINVAL), an empty pipe and a regular file (ENOTSOCK).
 */
START_TEST(test_accept_cannot)
{
	static const char *const what[] = {
		"TCP socket", "AF_UNIX socket", "pipe", "regular file",
	};
	char path[] = "/tmp/ctx-test-XXXXXX";
	int fd[2] = { -1, -1 }, want = _i < 2 ? EINVAL : ENOTSOCK;
	ctx_t *c = ctx_with_timeout(ctx_background(), 1 * CTX_SEC);

	switch (_i) {
	case 0:
		fd[0] = tcp_socket(false);
		break;
	case 1:
		fd[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	case 2:
		ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0);
		break;
	default:
		fd[0] = mkostemp(path, O_CLOEXEC);
		unlink(path);
		break;
	}
	ck_assert_int_ge(fd[0], 0);
	int64_t t0 = ctx_now();
	int t = ctx_accept(c, fd[0], NULL, NULL, 0);
	int err = errno;
	double ms = tu_ms_since(t0);
	close(fd[0]);
	if (fd[1] >= 0)
		close(fd[1]);
	if (t >= 0)
		close(t);
	ctx_release(c);
	ck_assert_msg(t == -1 && err == want && ms < 500,
		      "ctx_accept on a blocking %s: %d, errno %d (%s) after "
		      "%.0f ms; expected -1, errno %d (%s) at once", what[_i],
		      t, err, strerror(err), ms, want, strerror(want));
}
END_TEST

/* ---- connect ---------------------------------------------------------- */

/* A client socket, blocking or not (the loop index): ctx_connect must
 * leave its flags as it found them. */
START_TEST(test_connect_listening)
{
	struct sockaddr_in a, peer;
	socklen_t len = sizeof(peer);
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	int l = tcp_listener(8, &a), s = tcp_socket(_i);
	int before = fcntl(s, F_GETFL);

	ck_assert_int_eq(ctx_connect(c, s, (struct sockaddr *)&a, sizeof(a)),
			 0);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	ck_assert_int_eq(getpeername(s, (struct sockaddr *)&peer, &len), 0);
	ck_assert_uint_eq(peer.sin_port, a.sin_port);
	ck_assert(readable(l, LATE_MS));
	int t = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(t, 0);
	assert_connected(s, t);
	assert_connected(t, s);
	close(t);
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

START_TEST(test_connect_unix)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/ctx-test-XXXXXX";
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/sock", dir);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
				    (_i ? SOCK_NONBLOCK : 0), 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(l, 8), 0);
	int before = fcntl(s, F_GETFL);
	ck_assert_int_eq(ctx_connect(c, s, (struct sockaddr *)&a, sizeof(a)),
			 0);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	int t = ctx_accept(c, l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(t, 0);
	assert_connected(s, t);
	unlink(a.sun_path);
	rmdir(dir);
	close(t);
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

/*
 * An AF_UNIX listener whose backlog is full: connect(2) on a blocking
 * socket waits for room, on a non-blocking one fails with EAGAIN (there
 * is no EINPROGRESS to poll for).  ctx_connect must do the same, its
 * wait cancellable and ended by an accept that makes room.
 */
struct unix_listener {
	struct sockaddr_un addr;
	char dir[32];
	int l, queued[8], nqueued;
};

static int unix_socket(bool nonblock)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
				    (nonblock ? SOCK_NONBLOCK : 0), 0);

	ck_assert_int_ge(s, 0);
	return s;
}

/* Listen with backlog 0 and queue connections until the next would
 * have to wait. */
static void unix_full_open(struct unix_listener *u)
{
	strcpy(u->dir, "/tmp/ctx-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(u->dir));
	u->addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(u->addr.sun_path, sizeof(u->addr.sun_path), "%s/sock",
		 u->dir);
	u->l = unix_socket(false);
	ck_assert_int_eq(bind(u->l, (struct sockaddr *)&u->addr,
			      sizeof(u->addr)), 0);
	ck_assert_int_eq(listen(u->l, 0), 0);
	for (u->nqueued = 0;; u->nqueued++) {
		ck_assert_int_lt(u->nqueued, 8);
		int s = unix_socket(true);

		if (connect(s, (struct sockaddr *)&u->addr,
			    sizeof(u->addr)) < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			close(s);
			break;
		}
		u->queued[u->nqueued] = s;
	}
}

static void unix_full_close(struct unix_listener *u)
{
	for (int i = 0; i < u->nqueued; i++)
		close(u->queued[i]);
	close(u->l);
	unlink(u->addr.sun_path);
	rmdir(u->dir);
}

/* Accepts one connection after a delay, making room in the backlog. */
struct acceptor {
	pthread_t thread;
	int l, fd;
};

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;

	tu_sleep_ns(SHORT);
	a->fd = accept4(a->l, NULL, NULL, SOCK_CLOEXEC);
	return NULL;
}

START_TEST(test_connect_unix_full)
{
	struct unix_listener u;
	struct tu_canceller k;
	struct acceptor a;
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_t *d = ctx_with_timeout(ctx_background(), BOUND);

	unix_full_open(&u);
	int s = unix_socket(_i), before = fcntl(s, F_GETFL);
	if (_i) {
		/* Non-blocking: refused at once, as connect(2) would. */
		tu_assert_fail(ctx_connect(d, s, (struct sockaddr *)&u.addr,
					   sizeof(u.addr)), EAGAIN);
	} else {
		int64_t t0 = ctx_now();
		tu_must_cancel_after(&k, c, SHORT);
		int rc = ctx_connect(c, s, (struct sockaddr *)&u.addr,
				     sizeof(u.addr));
		double ms = tu_ms_since(t0);
		tu_canceller_join(&k);
		tu_assert_fail(rc, CTX_CANCELED);
		tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
		ck_assert_int_eq(fcntl(s, F_GETFL), before);

		/* Room made by an accept ends the wait. */
		a.l = u.l;
		t0 = ctx_now();
		ck_assert_int_eq(pthread_create(&a.thread, NULL, acceptor_main,
						&a), 0);
		rc = ctx_connect(d, s, (struct sockaddr *)&u.addr,
				 sizeof(u.addr));
		ms = tu_ms_since(t0);
		ck_assert_int_eq(pthread_join(a.thread, NULL), 0);
		ck_assert_int_eq(rc, 0);
		tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
		ck_assert_int_ge(a.fd, 0);
		close(a.fd);
	}
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	unix_full_close(&u);
	ctx_release(d);
	ctx_release(c);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct sockaddr_in a = closed_port();
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	int s = tcp_socket(_i), before = fcntl(s, F_GETFL);

	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_connect(c, s, (struct sockaddr *)&a, sizeof(a)),
		       ECONNREFUSED);
	tu_assert_ms(tu_ms_since(t0), 0, LATE_MS);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	ctx_release(c);
}
END_TEST

/*
 * A connect that cannot finish: the listener's backlog is 0 and one
 * connection nobody accepts already fills its queue, so Linux drops the
 * next SYN and the handshake hangs in retransmission.
 */
struct stuck_listener {
	struct sockaddr_in addr;
	int l, first;
};

static void stuck_listener_open(struct stuck_listener *sl)
{
	sl->l = tcp_listener(0, &sl->addr);
	sl->first = client(&sl->addr);
}

static void stuck_listener_close(struct stuck_listener *sl)
{
	close(sl->first);
	close(sl->l);
}

START_TEST(test_connect_cancel)
{
	struct stuck_listener sl;
	struct tu_canceller k;
	ctx_t *c = ctx_with_cancel(ctx_background());

	stuck_listener_open(&sl);
	int s = tcp_socket(_i), before = fcntl(s, F_GETFL);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	int rc = ctx_connect(c, s, (struct sockaddr *)&sl.addr,
			     sizeof(sl.addr));
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	tu_assert_fail(rc, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	stuck_listener_close(&sl);
	ctx_release(c);
}
END_TEST

START_TEST(test_connect_deadline)
{
	struct stuck_listener sl;

	stuck_listener_open(&sl);
	int s = tcp_socket(_i), before = fcntl(s, F_GETFL);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), SHORT);
	int rc = ctx_connect(c, s, (struct sockaddr *)&sl.addr,
			     sizeof(sl.addr));
	double ms = tu_ms_since(t0);
	tu_assert_fail(rc, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, SHORT_MS, LATE_MS);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	stuck_listener_close(&sl);
	ctx_release(c);
}
END_TEST

/* Refused at once: no SYN goes out, the socket stays unconnected. */
START_TEST(test_connect_done_first)
{
	struct sockaddr_in a, peer;
	socklen_t len = sizeof(peer);
	ctx_t *c = ctx_with_cancel(ctx_background());
	int l = tcp_listener(8, &a), s = tcp_socket(_i);
	int before = fcntl(s, F_GETFL);

	ctx_cancel(c);
	tu_assert_fail(ctx_connect(c, s, (struct sockaddr *)&a, sizeof(a)),
		       CTX_CANCELED);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	tu_assert_fail(getpeername(s, (struct sockaddr *)&peer, &len),
		       ENOTCONN);
	ck_assert(!readable(l, QUIET_MS));
	close(s);
	close(l);
	ctx_release(c);
}
END_TEST

/* ---- regular files ---------------------------------------------------- */

static int temp_file(const char *content, bool nonblock)
{
	char path[] = "/tmp/ctx-test-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

	ck_assert_int_ge(fd, 0);
	unlink(path);
	put(fd, content, strlen(content));
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Regular files never wait: read to the end, then 0. */
START_TEST(test_file_read)
{
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = temp_file("hello world", _i);

	ck_assert_int_eq(ctx_read(c, fd, buf, 5), 5);
	ck_assert_str_eq(buf, "hello");
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(ctx_read(c, fd, buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, " world");
	ck_assert_int_eq(ctx_read(c, fd, buf, sizeof(buf)), 0);
	close(fd);
	ctx_release(c);
}
END_TEST

START_TEST(test_file_write)
{
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = temp_file("", _i);

	ck_assert_int_eq(ctx_write(c, fd, "abc", 3), 3);
	ck_assert_int_eq(ctx_write(c, fd, "def", 3), 3);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 6);
	ck_assert_str_eq(buf, "abcdef");
	close(fd);
	ctx_release(c);
}
END_TEST

/* Refused without moving the offset or touching the contents. */
START_TEST(test_file_done_first)
{
	char buf[16] = { 0 };
	struct stat st;
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = temp_file("hello", _i);

	ctx_cancel(c);
	tu_assert_fail(ctx_read(c, fd, buf, sizeof(buf)), CTX_CANCELED);
	tu_assert_fail(ctx_write(c, fd, "x", 1), CTX_CANCELED);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "hello");
	close(fd);
	ctx_release(c);
}
END_TEST

START_TEST(test_file_not_socket)
{
	char buf[16];
	ctx_t *c = ctx_with_cancel(ctx_background());
	int fd = temp_file("hello", _i);

	tu_assert_fail(ctx_recv(c, fd, buf, sizeof(buf), 0), ENOTSOCK);
	tu_assert_fail(ctx_send(c, fd, "x", 1, 0), ENOTSOCK);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
	close(fd);
	ctx_release(c);
}
END_TEST

/*
 * Issue 21: on io_uring, a ctx_write to a regular file never returned
 * once the thread had been woken out of a ctx_select with a timeout:
 * the ring's poll on the thread's wake-up eventfd, left armed by the
 * previous write, fired during the select's poll(2) too, and its
 * completion made the next write read the (already emptied) eventfd
 * through the ring and wait for that read.  Rounds of a select that a
 * sender wakes, then a write under a deadline: each write must move
 * its bytes, and end within its deadline plus STUCK_MS.
 */
#define SEAM_WRITE_MS 2000

struct seam {
	ctx_t *parent;          /* cancelled to unstick a failing worker */
	ctx_chan_t *ch;
	int fd;
	int rounds;
	_Atomic int64_t write_at; /* when the write in flight began, or 0 */
	atomic_bool done;
	int bad;                /* the first round that failed, or -1 */
	ssize_t n;
	int err;
	double ms;
};

static void *seam_sender(void *arg)
{
	struct seam *sm = arg;
	int v = 1;
	do
		tu_sleep_ns(CTX_MSEC);
	while (ctx_chan_send(sm->parent, sm->ch, &v) == 0);
	return NULL;
}

static void seam_round(struct seam *sm, int i)
{
	static const char block[4096];
	int v;
	struct ctx_case rc = { .kind = CTX_CASE_RECV, .ch = sm->ch,
			       .elem = &v };
	ctx_select(sm->parent, &rc, 1, 200 * CTX_MSEC);
	ctx_t *c = ctx_with_timeout(sm->parent, SEAM_WRITE_MS * CTX_MSEC);
	int64_t t0 = ctx_now();
	atomic_store(&sm->write_at, t0);
	ssize_t n = ctx_write(c, sm->fd, block, sizeof(block));
	int e = errno;
	atomic_store(&sm->write_at, 0);
	double ms = tu_ms_since(t0);
	ctx_release(c);
	if (sm->bad < 0 && (n != (ssize_t)sizeof(block) ||
			    ms > SEAM_WRITE_MS + STUCK_MS)) {
		sm->bad = i;
		sm->n = n;
		sm->err = e;
		sm->ms = ms;
	}
}

static void *seam_worker(void *arg)
{
	struct seam *sm = arg;
	for (int i = 0; i < sm->rounds && sm->bad < 0; i++)
		seam_round(sm, i);
	atomic_store(&sm->done, true);
	return NULL;
}

START_TEST(test_write_after_select)
{
	struct seam sm = { .ch = ctx_chan_new(sizeof(int), 0),
			   .parent = ctx_with_cancel(ctx_background()),
			   .fd = temp_file("", false),
			   .rounds = tu_quick() ? 50 : 300, .bad = -1 };
	pthread_t worker, sender;
	bool stuck = false;
	atomic_init(&sm.write_at, 0);
	atomic_init(&sm.done, false);
	ck_assert_ptr_nonnull(sm.ch);
	ck_assert_int_eq(pthread_create(&sender, NULL, seam_sender, &sm), 0);
	ck_assert_int_eq(pthread_create(&worker, NULL, seam_worker, &sm), 0);
	while (!atomic_load(&sm.done) && !stuck) {
		tu_sleep_ns(5 * CTX_MSEC);
		int64_t at = atomic_load(&sm.write_at);
		stuck = at && tu_ms_since(at) > SEAM_WRITE_MS + STUCK_MS;
	}
	ctx_cancel(sm.parent); /* ends the sender, and a stuck write */
	ck_assert_int_eq(pthread_join(worker, NULL), 0);
	ck_assert_int_eq(pthread_join(sender, NULL), 0);
	ck_assert_msg(!stuck, "a write was still in flight %d ms after its "
		      "%d ms deadline", STUCK_MS, SEAM_WRITE_MS);
	ck_assert_msg(sm.bad < 0, "round %d: ctx_write gave %zd (%s) in "
		      "%.0f ms", sm.bad, sm.n, sm.n < 0 ? strerror(sm.err) :
		      "-", sm.ms);
	ck_assert_int_eq(lseek(sm.fd, 0, SEEK_CUR), sm.rounds * 4096);
	close(sm.fd);
	ctx_chan_free(sm.ch);
	ctx_release(sm.parent);
}
END_TEST

/* ---- bad input -------------------------------------------------------- */

/* A descriptor number that is not open: a closed one, and -1. */
START_TEST(test_ebadf)
{
	int p[2];
	char buf[16] = "unsent";
	struct sockaddr_in a = loopback(htons(9));
	ctx_t *c = ctx_with_timeout(ctx_background(), HOUR);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	close(p[1]);
	int bad[] = { p[0], -1 };
	for (int i = 0; i < 2; i++) {
		int fd = bad[i];

		tu_assert_fail(ctx_read(c, fd, buf, sizeof(buf)), EBADF);
		tu_assert_fail(ctx_write(c, fd, buf, sizeof(buf)), EBADF);
		tu_assert_fail(ctx_recv(c, fd, buf, sizeof(buf), 0), EBADF);
		tu_assert_fail(ctx_send(c, fd, buf, sizeof(buf), 0), EBADF);
		tu_assert_fail(ctx_accept(c, fd, NULL, NULL, 0), EBADF);
		tu_assert_fail(ctx_connect(c, fd, (struct sockaddr *)&a,
					   sizeof(a)), EBADF);
	}
	ctx_release(c);
}
END_TEST

/* A NULL context is EINVAL, and the call does nothing. */
START_TEST(test_null_ctx)
{
	struct pair p;
	struct sockaddr_in a;
	char buf[16] = { 0 };
	int l = tcp_listener(8, &a), s = client(&a), t = tcp_socket(false);

	open_pair(&p, K_UNIX);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, LATE_MS));
	tu_assert_fail(ctx_read(NULL, p.rd, buf, sizeof(buf)), EINVAL);
	tu_assert_fail(ctx_recv(NULL, p.rd, buf, sizeof(buf), 0), EINVAL);
	tu_assert_fail(ctx_write(NULL, p.wr, msg, MSG_LEN), EINVAL);
	tu_assert_fail(ctx_send(NULL, p.wr, msg, MSG_LEN, 0), EINVAL);
	tu_assert_fail(ctx_accept(NULL, l, NULL, NULL, 0), EINVAL);
	tu_assert_fail(ctx_connect(NULL, t, (struct sockaddr *)&a, sizeof(a)),
		       EINVAL);
	/* Nothing moved. */
	ck_assert_int_eq(get_msg(p.rd, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
	ck_assert(!readable(p.drain, QUIET_MS));
	int u = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ck_assert_int_ge(u, 0);
	ck_assert(!readable(l, 0)); /* only s's connection was queued */
	close(u);
	close(t);
	close(s);
	close(l);
	close_pair(&p);
}
END_TEST

/* ---- poll, end of file, and more than one reader ---------------------- */

/* ctx_poll on each kind: data that comes later, then a cancellation. */
START_TEST(test_poll_kinds)
{
	struct pair p;
	struct feeder f;
	struct tu_canceller k;
	char buf[16];
	ctx_t *c = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	struct pollfd pfd = { .fd = p.rd, .events = POLLIN };
	int64_t t0 = ctx_now();
	feed_after(&f, p.feed, msg, MSG_LEN, SHORT);
	int n = ctx_poll(c, &pfd, 1, BOUND);
	double ms = tu_ms_since(t0);
	feeder_join(&f);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(pfd.revents, POLLIN);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ck_assert_int_eq(get_msg(p.rd, buf), MSG_LEN);

	t0 = ctx_now();
	tu_must_cancel_after(&k, c, SHORT);
	n = ctx_poll(c, &pfd, 1, -1);
	int err = errno;
	ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	errno = err;
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* Closes fd after a delay. */
struct closer {
	pthread_t thread;
	int fd;
};

static void *closer_main(void *arg)
{
	struct closer *k = arg;

	tu_sleep_ns(SHORT);
	close(k->fd);
	return NULL;
}

/* The writer's close ends a waiting read with end of file (pipes; the
 * loop index makes the read end non-blocking). */
START_TEST(test_read_eof)
{
	struct closer k;
	char buf[16];
	int p[2];
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	set_nonblock(p[0], _i);
	k.fd = p[1];
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_create(&k.thread, NULL, closer_main, &k), 0);
	ssize_t n = ctx_read(c, p[0], buf, sizeof(buf));
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(pthread_join(k.thread, NULL), 0);
	ck_assert_int_eq(n, 0);
	tu_assert_ms(ms, SHORT_MS * 0.8, LATE_MS);
	close(p[0]);
	ctx_release(c);
}
END_TEST

/*
 * The kinds several threads may read at once: all but a blocking pty
 * master.  That has no per-call non-blocking read and cannot be reopened
 * (opening /dev/ptmx makes a new terminal), so its readers wait for
 * readiness and then read, and one that loses the bytes to another
 * blocks in read(2): the documented limit (runtime/io.c, ctx_read(3)).
 */
static const int shared_kinds[] = {
	K_UNIX, K_UNIX_NB, K_TCP, K_TCP_NB, K_PIPE, K_PIPE_NB, K_FIFO,
	K_FIFO_NB, K_PTY, K_PTY_NB, K_PTM_NB, K_EVENTFD, K_EVENTFD_NB,
};
#define N_SHARED (int)(sizeof(shared_kinds) / sizeof(shared_kinds[0]))

#define READERS 4

struct reader {
	pthread_t thread;
	ctx_t *ctx;
	int fd;
	bool eventfd;
	ssize_t n;
	int err;
	char buf[MSG_LEN];
	atomic_int *finished;
	atomic_uint_fast64_t *got;  /* bytes, or an eventfd's values */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t v = 0;

	r->n = ctx_read(r->ctx, r->fd, r->buf, sizeof(r->buf));
	r->err = errno;
	if (r->n > 0 && r->eventfd)
		memcpy(&v, r->buf, sizeof(v));
	else if (r->n > 0)
		v = (uint64_t)r->n;
	atomic_fetch_add(r->got, v);
	atomic_fetch_add(r->finished, 1);
	return NULL;
}

/* Until the readers have taken want in all, or STUCK_MS have passed. */
static void await_taken(atomic_uint_fast64_t *got, uint64_t want)
{
	int64_t t0 = ctx_now();

	while (atomic_load(got) < want && tu_ms_since(t0) < STUCK_MS)
		tu_sleep_ns(CTX_MSEC);
}

/*
 * READERS threads wait on one descriptor (a blocking one too: a reader
 * that loses the race for the data must go back to waiting, not block in
 * read(2)); two messages come, one after the other has been taken (on
 * a loaded machine a fixed pause may not be enough for a reader to
 * run, and a reader that wakes after the cancel rightly leaves the data
 * where it is); then the context is cancelled.  The messages reach the
 * readers whole, nothing is left over, and every other reader is
 * cancelled promptly.  Readers stuck in the kernel are fed until they
 * return, so that a failure cannot hang.
 */
START_TEST(test_shared_readers)
{
	struct pair p;
	struct reader r[READERS];
	uint64_t got = 0, want, one;
	int kind = shared_kinds[_i], stuck;
	atomic_int finished;
	atomic_uint_fast64_t taken;
	ctx_t *c = ctx_with_cancel(ctx_background());

	atomic_init(&finished, 0);
	atomic_init(&taken, 0);
	open_pair(&p, kind);
	for (int i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .ctx = c, .fd = p.rd,
					.eventfd = is_eventfd(kind),
					.finished = &finished, .got = &taken };
		ck_assert_int_eq(pthread_create(&r[i].thread, NULL, reader_main,
						&r[i]), 0);
	}
	/* An eventfd adds up what comes before a read: count its values. */
	memcpy(&one, msg, sizeof(one));
	one = is_eventfd(kind) ? one : MSG_LEN;
	tu_sleep_ns(SHORT); /* all waiting, most likely */
	put(p.feed, msg, MSG_LEN);
	await_taken(&taken, one);
	put(p.feed, msg, MSG_LEN);
	await_taken(&taken, 2 * one);
	ctx_cancel(c);
	int64_t t0 = ctx_now();
	while (atomic_load(&finished) < READERS && tu_ms_since(t0) < STUCK_MS)
		tu_sleep_ns(CTX_MSEC);
	stuck = READERS - atomic_load(&finished);
	for (int i = 0; i < stuck; i++)
		put(p.feed, msg, MSG_LEN);
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_join(r[i].thread, NULL), 0);
	ck_assert_msg(stuck == 0, "%d readers of %s were still blocked %d ms "
		      "after the cancel", stuck, kind_name[kind], STUCK_MS);

	want = 2 * one;
	for (int i = 0; i < READERS; i++) {
		uint64_t v;

		if (r[i].n < 0) {
			ck_assert_msg(r[i].err == CTX_CANCELED, "reader %d: "
				      "errno %d", i, r[i].err);
			continue;
		}
		memcpy(&v, r[i].buf, sizeof(v));
		got += is_eventfd(kind) ? v : (uint64_t)r[i].n;
	}
	ck_assert_msg(got == want, "the readers of %s got %llu, expected "
		      "%llu", kind_name[kind], (unsigned long long)got,
		      (unsigned long long)want);
	ck_assert(!readable(p.rd, 0)); /* anything left came long ago */
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/*
 * A cancellation and data that come at about the same time, many times
 * over, at varying offsets: whichever wins, nothing is lost.  Either the
 * read returns the message, or it fails and the message is still there.
 */
START_TEST(test_read_race)
{
	struct pair p;
	int kind = _i, rounds = tu_quick() ? 30 : 200;

	open_pair(&p, kind);
	for (int i = 0; i < rounds; i++) {
		struct tu_canceller k;
		struct feeder f;
		char buf[16] = { 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());

		tu_must_cancel_after(&k, c, (i % 10) * 20 * CTX_USEC);
		feed_after(&f, p.feed, msg, MSG_LEN,
			   (i * 7 % 10) * 20 * CTX_USEC);
		ssize_t n = ctx_read(c, p.rd, buf, sizeof(buf));
		int err = errno;
		tu_canceller_join(&k);
		feeder_join(&f);
		if (n < 0) {
			ck_assert_msg(err == CTX_CANCELED, "round %d: errno %d",
				      i, err);
			ck_assert_int_eq(get_msg(p.rd, buf),
					 MSG_LEN);
		} else {
			ck_assert_msg(n == MSG_LEN, "round %d: %zd bytes", i,
				      n);
		}
		ck_assert_str_eq(buf, msg);
		ck_assert_msg(!readable(p.rd, 0), "round %d: data left", i);
		ctx_release(c);
	}
	close_pair(&p);
}
END_TEST

/* ---- descriptor numbers reused ---------------------------------------- */

/*
 * One descriptor number, in one thread, as a socket, then a pipe, then a
 * socket again, each first waited on and cancelled, then read when data
 * comes late: the library's per-thread memory of a number (socket or
 * not; registered with epoll or not) must never give a wrong answer.
 */
START_TEST(test_number_reuse)
{
	int num = -1;

	for (int round = 0; round < 4; round++) {
		struct pair p;
		struct tu_canceller k;
		struct feeder f;
		char buf[16] = { 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_t *d = ctx_with_timeout(ctx_background(), BOUND);

		open_pair(&p, round % 2 ? K_PIPE : K_UNIX);
		if (num < 0) {
			num = p.rd;
		} else if (p.rd != num) {
			ck_assert_int_ne(p.feed, num);
			ck_assert_int_eq(dup3(p.rd, num, O_CLOEXEC), num);
			close(p.rd);
			p.fd[0] = p.rd = num;
			if (round % 2 == 0)
				p.wr = num;
			else
				p.drain = num;
		}
		tu_must_cancel_after(&k, c, 10 * CTX_MSEC);
		tu_assert_fail(ctx_read(c, p.rd, buf, sizeof(buf)),
			       CTX_CANCELED);
		tu_canceller_join(&k);
		feed_after(&f, p.feed, msg, MSG_LEN, 10 * CTX_MSEC);
		ck_assert_int_eq(ctx_read(d, p.rd, buf, sizeof(buf)), MSG_LEN);
		feeder_join(&f);
		ck_assert_str_eq(buf, msg);
		ck_assert_int_eq(ctx_write(d, p.wr, msg, MSG_LEN), MSG_LEN);
		ck_assert_int_eq(get_msg(p.drain, buf),
				 MSG_LEN);
		ctx_release(d);
		ctx_release(c);
		close_pair(&p);
	}
}
END_TEST

/* ---- the suite -------------------------------------------------------- */


Suite *suite_io(void)
{
	Suite *s = suite_create("io");
	TCase *tc;

	tc = tu_tcase(s, "read", 30);
	tcase_add_loop_test(tc, test_read_ready, 0, N_KINDS);
	tcase_add_loop_test(tc, test_read_later, 0, N_KINDS);
	tcase_add_loop_test(tc, test_read_cancel, 0, N_KINDS);
	tcase_add_loop_test(tc, test_read_deadline, 0, N_KINDS);
	tcase_add_loop_test(tc, test_read_done_first, 0, N_KINDS);

	tc = tu_tcase(s, "write", 30);
	tcase_add_loop_test(tc, test_write_ready, 0, N_KINDS);
	tcase_add_loop_test(tc, test_write_cancel, 0, N_KINDS);
	tcase_add_loop_test(tc, test_write_deadline, 0, N_KINDS);
	tcase_add_loop_test(tc, test_write_done_first, 0, N_KINDS);
	tcase_add_loop_test(tc, test_write_partial, 0, N_STREAM_KINDS);

	tc = tu_tcase(s, "socket", 30);
	tcase_add_loop_test(tc, test_recv_ready, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_later, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_cancel, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_deadline, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_done_first, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_dontwait, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_eof, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_waitall, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_peek_waitall, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_ready, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_cancel, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_deadline, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_done_first, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_partial, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_dontwait, 0, N_SOCK_KINDS);

	/* Loop index: 0 a blocking listener, 1 a non-blocking one. */
	tc = tu_tcase(s, "accept", 30);
	tcase_add_loop_test(tc, test_accept_ready, 0, 2);
	tcase_add_loop_test(tc, test_accept_flags, 0, 2);
	tcase_add_loop_test(tc, test_accept_later, 0, 2);
	tcase_add_loop_test(tc, test_accept_cancel, 0, 2);
	tcase_add_loop_test(tc, test_accept_deadline, 0, 2);
	tcase_add_loop_test(tc, test_accept_done_first, 0, 2);
	tcase_add_loop_test(tc, test_accept_cannot, 0, 4);

	/* Loop index: 0 a blocking socket, 1 a non-blocking one. */
	tc = tu_tcase(s, "connect", 30);
	tcase_add_loop_test(tc, test_connect_listening, 0, 2);
	tcase_add_loop_test(tc, test_connect_unix, 0, 2);
	tcase_add_loop_test(tc, test_connect_unix_full, 0, 2);
	tcase_add_loop_test(tc, test_connect_refused, 0, 2);
	tcase_add_loop_test(tc, test_connect_cancel, 0, 2);
	tcase_add_loop_test(tc, test_connect_deadline, 0, 2);
	tcase_add_loop_test(tc, test_connect_done_first, 0, 2);

	/* Loop index: 0 a blocking file, 1 one opened O_NONBLOCK. */
	tc = tu_tcase(s, "file", 30);
	tcase_add_loop_test(tc, test_file_read, 0, 2);
	tcase_add_loop_test(tc, test_file_write, 0, 2);
	tcase_add_loop_test(tc, test_file_done_first, 0, 2);
	tcase_add_loop_test(tc, test_file_not_socket, 0, 2);

	tc = tu_tcase(s, "seams", 60);
	tcase_add_test(tc, test_write_after_select);

	tc = tu_tcase(s, "bad_input", 30);
	tcase_add_test(tc, test_ebadf);
	tcase_add_test(tc, test_null_ctx);

	tc = tu_tcase(s, "shared", 30);
	tcase_add_loop_test(tc, test_poll_kinds, 0, N_KINDS);
	tcase_add_loop_test(tc, test_read_eof, 0, 2);
	tcase_add_loop_test(tc, test_shared_readers, 0, N_SHARED);
	tcase_add_loop_test(tc, test_read_race, 0, N_KINDS);

	tc = tu_tcase(s, "reuse", 30);
	tcase_add_test(tc, test_number_reuse);

	return s;
}
