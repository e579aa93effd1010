/*
 * Contract rows: sockets beyond a stream's transfers -- ctx_accept on a
 * blocking and a non-blocking listener, ctx_connect (TCP to a listener
 * that drops SYNs, AF_UNIX to a full backlog), and the datagram calls
 * ctx_recvfrom (AF_UNIX and UDP), ctx_recvmmsg and ctx_sendmmsg.
 *
 * Kept means: a connection that was waiting is still queued for the
 * next accept, a refused connect sent nothing and left its socket
 * unconnected with the flags it had, a datagram is still there to read
 * and no refused datagram reached the peer.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../contract.h"
#include "../io/pair.h"

#define DGRAMS 8

struct st {
	int l, s, t;                /* listener, socket, accepted/peer */
	int flags;                  /* the socket's flags before the call */
	struct sockaddr_in addr;
	struct sockaddr_in peer;    /* what ctx_accept said */
	struct unix_listener u;     /* AF_UNIX, its backlog full */
	char buf[DGRAMS][8];
	struct mmsghdr mm[DGRAMS];
	struct iovec iov[DGRAMS];
	int sent;                   /* datagrams the test put in the queue */
};

static void close_if(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* The first bytes s sends arrive at t. */
static void assert_connected(int s, int t)
{
	char buf[16] = { 0 };

	put(s, msg, MSG_LEN);
	ck_assert_int_eq(get_msg(t, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
}

/* ---- accept ------------------------------------------------------------ */

static void accept_setup(void *v, int nonblock)
{
	struct st *s = v;

	s->l = tcp_listener(8, &s->addr);
	set_nonblock(s->l, nonblock);
	s->flags = fcntl(s->l, F_GETFL);
	s->s = s->t = -1;
}

/* A client whose connection the listener's queue completes. */
static int accept_ready(void *v)
{
	struct st *s = v;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno;
	s->s = fd;
	return connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr)) ?
		       errno : 0;
}

static void accept_settle(void *v)
{
	struct st *s = v;

	ck_assert(readable(s->l, PAIR_LATE_MS));
}

static long accept_call(ctx_t *c, void *v)
{
	struct st *s = v;
	socklen_t len = sizeof(s->peer);
	int t = ctx_accept(c, s->l, (struct sockaddr *)&s->peer, &len,
			   SOCK_CLOEXEC);

	ck_assert(t < 0 || len == sizeof(s->peer));
	return t;
}

static void accept_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_ge(rc, 0);
	s->t = (int)rc;
	ck_assert_uint_eq(s->peer.sin_port, local_port(s->s));
	assert_connected(s->s, s->t);
	ck_assert(cloexec_flag(s->t));
	ck_assert_int_eq(fcntl(s->l, F_GETFL), s->flags);
}

/* The connection is still queued, and the listener as it was. */
static void accept_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(fcntl(s->l, F_GETFL), s->flags);
	ck_assert(readable(s->l, PAIR_LATE_MS));
	s->t = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(s->t, 0);
	assert_connected(s->s, s->t);
}

static void accept_teardown(void *v)
{
	struct st *s = v;

	close_if(s->t);
	close_if(s->s);
	close(s->l);
}

/* ---- connect over TCP ---------------------------------------------------- */

/*
 * A connect that cannot finish: the listener's backlog is 0 and one
 * connection nobody accepts (t) fills its queue, so Linux drops the next
 * SYN and the handshake hangs in retransmission.  Accepting t makes
 * room, but a dropped SYN is only sent again a second later: the rows
 * have no CT_LATER.
 */
static void tcp_connect_setup(void *v, int nonblock)
{
	struct st *s = v;

	s->l = tcp_listener(0, &s->addr);
	s->t = tcp_client(&s->addr);
	s->s = tcp_socket(nonblock);
	s->flags = fcntl(s->s, F_GETFL);
}

static int tcp_connect_ready(void *v)
{
	struct st *s = v;
	int a = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);

	if (a < 0)
		return errno;
	close(s->t);
	s->t = a;
	return 0;
}

static long tcp_connect_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_connect(c, s->s, (struct sockaddr *)&s->addr,
			   sizeof(s->addr));
}

static void tcp_connect_check(void *v, long rc)
{
	struct st *s = v;
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(fcntl(s->s, F_GETFL), s->flags);
	ck_assert_int_eq(getpeername(s->s, (struct sockaddr *)&peer, &len), 0);
	ck_assert_uint_eq(peer.sin_port, s->addr.sin_port);
	close(s->t);
	s->t = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(s->t, 0);
	assert_connected(s->s, s->t);
	assert_connected(s->t, s->s);
}

/* Unconnected, its flags as they were, and nothing reached the listener
 * (a dropped SYN is sent again only a second later). */
static void tcp_connect_kept(void *v)
{
	struct st *s = v;
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);

	ck_assert_int_eq(fcntl(s->s, F_GETFL), s->flags);
	tu_assert_fail(getpeername(s->s, (struct sockaddr *)&peer, &len),
		       ENOTCONN);
	ck_assert(!readable(s->l, PAIR_QUIET_MS));
}

static void connect_teardown(void *v)
{
	struct st *s = v;

	close_if(s->t);
	close(s->s);
	close(s->l);
}

/* ---- connect over AF_UNIX ------------------------------------------------- */

/* connect(2) on a blocking socket waits for room, which an accept
 * makes. */
static void unix_connect_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	unix_full_open(&s->u);
	s->l = s->u.l;
	s->s = unix_socket(false);
	s->flags = fcntl(s->s, F_GETFL);
	s->t = -1;
}

static int unix_connect_ready(void *v)
{
	struct st *s = v;

	s->t = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);
	return s->t < 0 ? errno : 0;
}

static long unix_connect_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_connect(c, s->s, (struct sockaddr *)&s->u.addr,
			   sizeof(s->u.addr));
}

static void unix_connect_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(fcntl(s->s, F_GETFL), s->flags);
}

static void unix_connect_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(fcntl(s->s, F_GETFL), s->flags);
}

static void unix_connect_teardown(void *v)
{
	struct st *s = v;

	if (s->t >= 0)
		close(s->t);
	close(s->s);
	unix_full_close(&s->u);
}

/* ---- datagrams ------------------------------------------------------------ */

/* An AF_UNIX datagram socketpair: s the caller's end, t the peer. */
static void dgram_setup(void *v, int arg)
{
	struct st *s = v;
	int sp[2];

	(void)arg;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sp),
			 0);
	s->s = sp[0];
	s->t = sp[1];
	s->l = -1;
	for (int i = 0; i < DGRAMS; i++) {
		s->iov[i] = (struct iovec){ s->buf[i], sizeof(s->buf[i]) };
		s->mm[i].msg_hdr = (struct msghdr){ .msg_iov = &s->iov[i],
						    .msg_iovlen = 1 };
	}
}

/* A UDP socket on 127.0.0.1, and a peer connected to it. */
static void udp_setup(void *v, int arg)
{
	struct st *s = v;
	socklen_t len = sizeof(s->addr);

	dgram_setup(v, arg);
	close(s->s);
	close(s->t);
	s->s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	s->t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->s, 0);
	ck_assert_int_ge(s->t, 0);
	s->addr = loopback(0);
	ck_assert_int_eq(bind(s->s, (struct sockaddr *)&s->addr, len), 0);
	ck_assert_int_eq(getsockname(s->s, (struct sockaddr *)&s->addr, &len),
			 0);
	ck_assert_int_eq(connect(s->t, (struct sockaddr *)&s->addr, len), 0);
}

static int dgram_ready(void *v)
{
	struct st *s = v;

	return send(s->t, "abc", 3, 0) == 3 ? 0 : errno;
}

static void dgram_settle(void *v)
{
	struct st *s = v;

	ck_assert(readable(s->s, PAIR_LATE_MS));
}

static long recvfrom_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);

	return ctx_recvfrom(c, s->s, s->buf[0], sizeof(s->buf[0]), 0,
			    (struct sockaddr *)&from, &len);
}

static long recvmmsg_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_recvmmsg(c, s->s, s->mm, DGRAMS, 0);
}

static void recvfrom_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 3);
	ck_assert_mem_eq(s->buf[0], "abc", 3);
}

/* Waits for the first, returns how many came. */
static void recvmmsg_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(s->mm[0].msg_len, 3);
	ck_assert_mem_eq(s->buf[0], "abc", 3);
}

static void dgram_kept(void *v)
{
	struct st *s = v;
	char buf[8];

	ck_assert_int_eq(recv(s->s, buf, sizeof(buf), MSG_DONTWAIT), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	tu_assert_fail(recv(s->s, buf, sizeof(buf), MSG_DONTWAIT), EAGAIN);
}

/* The peer's queue full of the test's datagrams: a send waits. */
static void sendmmsg_setup(void *v, int arg)
{
	struct st *s = v;

	dgram_setup(v, arg);
	while (send(s->s, "q", 1, MSG_DONTWAIT) == 1)
		s->sent++;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_gt(s->sent, 0);
	for (int i = 0; i < 3; i++)
		s->iov[i] = (struct iovec){ "xyz", 3 };
}

/* The test's datagrams taken, each of them. */
static int sendmmsg_ready(void *v)
{
	struct st *s = v;
	char b[8];

	for (; s->sent > 0; s->sent--)
		if (recv(s->t, b, sizeof(b), 0) != 1 || b[0] != 'q')
			return EIO;
	return 0;
}

static long sendmmsg_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sendmmsg(c, s->s, s->mm, 3, 0);
}

/* Three datagrams in one call. */
static void sendmmsg_check(void *v, long rc)
{
	struct st *s = v;
	char b[8];

	ck_assert_int_eq(rc, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(recv(s->t, b, sizeof(b), MSG_DONTWAIT), 3);
		ck_assert_mem_eq(b, "xyz", 3);
	}
}

static void sendmmsg_kept(void *v)
{
	struct st *s = v;
	char b[8];

	tu_assert_fail(recv(s->t, b, sizeof(b), MSG_DONTWAIT), EAGAIN);
}

static void dgram_teardown(void *v)
{
	struct st *s = v;

	close(s->s);
	close(s->t);
}

/* ---- the rows ------------------------------------------------------------- */

#define ROW .style = CT_ERRNO, .size = sizeof(struct st)
#define ACCEPT .setup = accept_setup, .ready = accept_ready,                \
	.settle = accept_settle, .call = accept_call, .check = accept_check, \
	.kept = accept_kept, .teardown = accept_teardown,                   \
	.flags = CT_NOT_PARTIAL
#define TCP_CONNECT .setup = tcp_connect_setup, .ready = tcp_connect_ready, \
	.call = tcp_connect_call, .check = tcp_connect_check,               \
	.kept = tcp_connect_kept, .teardown = connect_teardown,             \
	.flags = CT_NOT(CT_LATER) | CT_NOT_PARTIAL
#define DGRAM_RECV .ready = dgram_ready, .settle = dgram_settle,           \
	.kept = dgram_kept, .teardown = dgram_teardown, .flags = CT_NOT_PARTIAL

const struct ct_row ct_rows_socket[] = {
	{ .name = "ctx_accept on a blocking listener", ROW, ACCEPT },
	{ .name = "ctx_accept on a non-blocking listener", .arg = 1, ROW,
	  ACCEPT },
	{ .name = "ctx_connect, TCP, a blocking socket", ROW, TCP_CONNECT },
	{ .name = "ctx_connect, TCP, a non-blocking socket", .arg = 1, ROW,
	  TCP_CONNECT },
	{ .name = "ctx_connect, AF_UNIX, to a full backlog", ROW,
	  .setup = unix_connect_setup, .ready = unix_connect_ready,
	  .call = unix_connect_call, .check = unix_connect_check,
	  .kept = unix_connect_kept, .teardown = unix_connect_teardown,
	  .flags = CT_NOT_PARTIAL },
	{ .name = "ctx_recvfrom on an AF_UNIX datagram socket", ROW,
	  DGRAM_RECV, .setup = dgram_setup, .call = recvfrom_call,
	  .check = recvfrom_check },
	{ .name = "ctx_recvfrom on a UDP socket", ROW, DGRAM_RECV,
	  .setup = udp_setup, .call = recvfrom_call, .check = recvfrom_check },
	{ .name = "ctx_recvmmsg on an AF_UNIX datagram socket", ROW,
	  DGRAM_RECV, .setup = dgram_setup, .call = recvmmsg_call,
	  .check = recvmmsg_check },
	{ .name = "ctx_sendmmsg on an AF_UNIX datagram socket", ROW,
	  .setup = sendmmsg_setup, .ready = sendmmsg_ready,
	  .call = sendmmsg_call, .check = sendmmsg_check,
	  .kept = sendmmsg_kept, .teardown = dgram_teardown,
	  .flags = CT_NOT_PARTIAL },
	{ .name = NULL },
};
