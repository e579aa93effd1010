/*
 * Connected descriptors of every kind, and the test's own side of them
 * (see pair.h): plain calls that never block, so that what the test
 * sees of a descriptor is never the library's doing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
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

#include "pair.h"

/* For messages: "... on %s". */
const char *const kind_name[N_KINDS] = {
	"an AF_UNIX socketpair", "a non-blocking AF_UNIX socketpair",
	"a TCP loopback socket", "a non-blocking TCP loopback socket",
	"a pipe", "a non-blocking pipe",
	"a FIFO", "a non-blocking FIFO",
	"a terminal", "a non-blocking terminal",
	"a terminal's master", "a non-blocking terminal's master",
	"an eventfd", "a non-blocking eventfd",
};

void set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl), 0);
}

bool nonblock_flag(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	return fl & O_NONBLOCK;
}

bool cloexec_flag(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	ck_assert_int_ne(fl, -1);
	return fl & FD_CLOEXEC;
}

/* Small buffers, so that filling a socket takes kilobytes, not megabytes. */
void small_buffers(int fd)
{
	int sz = SOCKBUF;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)),
			 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)),
			 0);
}

struct sockaddr_in loopback(in_port_t port)
{
	return (struct sockaddr_in){
		.sin_family = AF_INET,
		.sin_port = port,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
}

in_port_t local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return a.sin_port;
}

/* A socket listening on 127.0.0.1 at a port of the kernel's choosing. */
int tcp_listener(int backlog, struct sockaddr_in *addr)
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

int tcp_socket(bool nonblock)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC |
				   (nonblock ? SOCK_NONBLOCK : 0), 0);

	ck_assert_int_ge(s, 0);
	small_buffers(s);
	return s;
}

/* A client connected to a (the listener's queue completes it). */
int tcp_client(const struct sockaddr_in *a)
{
	int s = tcp_socket(false);

	ck_assert_int_eq(connect(s, (const struct sockaddr *)a, sizeof(*a)), 0);
	return s;
}

/* A port on 127.0.0.1 that nobody listens on: bound once, then freed. */
struct sockaddr_in closed_port(void)
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

void open_pair(struct pair *p, int kind)
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

void close_pair(struct pair *p)
{
	close(p->fd[0]);
	if (p->fd[1] != p->fd[0])
		close(p->fd[1]);
}

/* ---- the test's own side: plain calls that never block ---------------- */

bool ready_for(int fd, short events, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	return n == 1 && (pfd.revents & events);
}

bool readable(int fd, int ms) { return ready_for(fd, POLLIN, ms); }

void put(int fd, const void *buf, size_t len)
{
	int e = put_quiet(fd, buf, len);

	ck_assert_msg(e == 0, "write: %s", strerror(e));
}

/* What fd has within ms (poll first, so a blocking fd is safe): the
 * count read, 0 if nothing came. */
ssize_t get(int fd, void *buf, size_t len, int ms)
{
	if (!readable(fd, ms))
		return 0;
	ssize_t n = read(fd, buf, len);
	ck_assert_msg(n > 0, "read: %s", strerror(errno));
	return n;
}

/* put, for a helper thread: 0 or an error number. */
int put_quiet(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read from fd until want bytes came (into buf, unless NULL) or none came
 * for ms; return the count.  Waiting for a known count keeps the tests
 * fast without guessing how long the kernel may take to deliver.
 * drain_quiet asserts nothing, for helper threads; drain_upto asserts
 * that every read that poll allowed read something. */
static size_t drain(int fd, char *buf, size_t want, int ms, bool strict)
{
	char scratch[4096];
	size_t total = 0;
	ssize_t n = 1;

	while (total < want && n > 0) {
		size_t room = want - total;

		if (!buf && room > sizeof(scratch))
			room = sizeof(scratch);
		bool ready = ready_for(fd, POLLIN, ms);

		n = ready ? read(fd, buf ? buf + total : scratch, room) : 0;
		if (strict && ready && n <= 0)
			ck_abort_msg("read: %s", n ? strerror(errno) :
				     "end of file");
		total += n > 0 ? (size_t)n : 0;
	}
	return total;
}

size_t drain_quiet(int fd, char *buf, size_t want, int ms)
{
	return drain(fd, buf, want, ms, false);
}

size_t drain_upto(int fd, char *buf, size_t want, int ms)
{
	return drain(fd, buf, want, ms, true);
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
size_t fill(struct pair *p)
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
		ck_assert_msg(tu_ms_since(t0) < PAIR_LATE_MS, "%s does not fill",
			      kind_name[p->kind]);
		tu_sleep_ns(CTX_MSEC);
	}
	ck_assert_int_eq(fcntl(p->wr, F_SETFL, fl), 0);
	ck_assert_int_gt(total, 0);
	return total;
}

/* After fill(): everything that reached the far end is exactly what fill
 * put there; nothing of a refused write followed it. */
void assert_drained(struct pair *p, size_t filled)
{
	if (is_eventfd(p->kind)) {
		uint64_t v = 0;

		ck_assert_int_eq(get(p->drain, &v, sizeof(v), PAIR_LATE_MS), 8);
		ck_assert_uint_eq(v, 0xfffffffffffffffeULL);
		ck_assert(!readable(p->drain, PAIR_QUIET_MS));
		return;
	}
	ck_assert_uint_eq(drain_upto(p->drain, NULL, filled, PAIR_LATE_MS), filled);
	ck_assert(!readable(p->drain, PAIR_QUIET_MS));
}

/* ---- AF_UNIX: a listener whose backlog is full ------------------------- */

int unix_socket(bool nonblock)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
				    (nonblock ? SOCK_NONBLOCK : 0), 0);

	ck_assert_int_ge(s, 0);
	return s;
}

/* Listen with backlog 0 and queue connections until the next would
 * have to wait. */
void unix_full_open(struct unix_listener *u)
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

void unix_full_close(struct unix_listener *u)
{
	for (int i = 0; i < u->nqueued; i++)
		close(u->queued[i]);
	close(u->l);
	unlink(u->addr.sun_path);
	rmdir(u->dir);
}

/* A regular file holding content, its offset at 0; gone from the file
 * system already. */
int temp_file(const char *content, bool nonblock)
{
	char path[] = "/tmp/ctx-test-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

	ck_assert_int_ge(fd, 0);
	unlink(path);
	put(fd, content, strlen(content));
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}
