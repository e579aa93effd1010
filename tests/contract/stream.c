/*
 * Contract rows: the transfers on every kind of descriptor of
 * tests/io/pair.h, blocking and not -- ctx_read, ctx_write, ctx_poll on
 * each kind; ctx_recv, ctx_send (with MSG_DONTWAIT too, and a receive
 * with MSG_WAITALL), ctx_recvmsg,
 * ctx_sendmsg, ctx_recvfrom and ctx_sendto on the stream sockets; and
 * ctx_readv, ctx_writev.
 *
 * A reader waits on an empty descriptor until the test feeds it a
 * message; a writer waits on a full one (filled by the test) until the
 * test drains what it put there.  Kept means: the message is all there
 * for the next reader, and nothing of a refused write reached the far
 * end.
 */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../contract.h"
#include "../io/pair.h"

#define BIG (1 << 20) /* more than any descriptor here buffers */

/* What the partial writes write, and what comes back. */
static char big[BIG], back[BIG];

struct st {
	struct pair p;
	size_t filled; /* what the test put in wr; ready drains it */
	bool big;      /* CT_PARTIAL: the write is of all of big */
	bool iov_changed; /* a ctx_writev wrote to the caller's vector */
	char buf[16];
};

static void fill_pattern(void)
{
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)(i * 7 % 251);
}

/* ---- readers ---------------------------------------------------------- */

static void rd_setup(void *v, int kind)
{
	struct st *s = v;

	open_pair(&s->p, kind);
}

static int rd_ready(void *v)
{
	struct st *s = v;

	return put_quiet(s->p.feed, msg, MSG_LEN);
}

/* A terminal passes data on a moment later. */
static void rd_settle(void *v)
{
	struct st *s = v;

	ck_assert(readable(s->p.rd, PAIR_LATE_MS));
}

static long read_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_read(c, s->p.rd, s->buf, sizeof(s->buf));
}

static long recv_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_recv(c, s->p.rd, s->buf, sizeof(s->buf), 0);
}

static long recv_dontwait_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_recv(c, s->p.rd, s->buf, sizeof(s->buf), MSG_DONTWAIT);
}

/* In two pieces, so that the vector is really used. */
static long readv_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov[2] = { { s->buf, 3 }, { s->buf + 3, 13 } };

	return ctx_readv(c, s->p.rd, iov, 2);
}

/* All of the message, which the call waits for. */
static long recv_waitall_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_recv(c, s->p.rd, s->buf, MSG_LEN, MSG_WAITALL);
}

static long recvmsg_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov[2] = { { s->buf, 3 }, { s->buf + 3, 13 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	return ctx_recvmsg(c, s->p.rd, &m, 0);
}

static long recvfrom_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_recvfrom(c, s->p.rd, s->buf, sizeof(s->buf), 0, NULL, NULL);
}

static void rd_check(void *v, long rc)
{
	struct st *s = v;

	assert_moved(rc, MSG_LEN, s->p.kind);
	ck_assert_str_eq(s->buf, msg);
}

static void rd_kept(void *v)
{
	struct st *s = v;
	char buf[16] = { 0 };

	ck_assert_int_eq(get_msg(s->p.rd, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
}

static void teardown(void *v)
{
	struct st *s = v;

	close_pair(&s->p);
}

/* ctx_poll for POLLIN on rd. */
static long poll_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct pollfd pfd = { .fd = s->p.rd, .events = POLLIN };
	int n = ctx_poll(c, &pfd, 1, -1);

	s->buf[0] = (char)pfd.revents;
	return n;
}

static void poll_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 1);
	ck_assert_int_eq(s->buf[0], POLLIN);
	rd_kept(v); /* a poll takes nothing */
}

/* Half the message is there: MSG_WAITALL takes it, waits for the rest
 * until the end, and returns the half. */
static void waitall_partial(void *v)
{
	struct st *s = v;

	put(s->p.feed, msg, MSG_LEN / 2);
}

static void waitall_unstick(void *v)
{
	struct st *s = v;

	put_quiet(s->p.feed, msg + MSG_LEN / 2, MSG_LEN / 2);
}

static void waitall_moved(void *v, long n)
{
	struct st *s = v;

	if (n == 0) {
		ck_assert(readable(s->p.rd, 0));
		return;
	}
	ck_assert_int_eq(n, MSG_LEN / 2);
	ck_assert_mem_eq(s->buf, msg, MSG_LEN / 2);
	ck_assert(!readable(s->p.rd, PAIR_QUIET_MS));
}

/* ---- writers ---------------------------------------------------------- */

static void wr_setup(void *v, int kind)
{
	struct st *s = v;

	open_pair(&s->p, kind);
	s->filled = fill(&s->p);
}

/* Room: what fill put there drained, to the byte (what a blocked write
 * adds comes after it). */
static int wr_ready(void *v)
{
	struct st *s = v;
	size_t n = drain_quiet(s->p.drain, NULL, s->filled, PAIR_LATE_MS);

	return n == s->filled ? 0 : EAGAIN;
}

static long write_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_write(c, s->p.wr, s->big ? big : msg,
			 s->big ? BIG : MSG_LEN);
}

static long send_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_send(c, s->p.wr, s->big ? big : msg,
			s->big ? BIG : MSG_LEN, MSG_NOSIGNAL);
}

static long send_dontwait_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_send(c, s->p.wr, msg, MSG_LEN,
			MSG_NOSIGNAL | MSG_DONTWAIT);
}

static long sendto_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sendto(c, s->p.wr, s->big ? big : msg,
			  s->big ? BIG : MSG_LEN, MSG_NOSIGNAL, NULL, 0);
}

static long sendmsg_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov = { s->big ? big : (char *)msg,
			     s->big ? BIG : MSG_LEN };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	return ctx_sendmsg(c, s->p.wr, &m, MSG_NOSIGNAL);
}

/* In two pieces; the caller's vector is left as it was. */
static long writev_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct iovec iov[2] = { { (char *)msg, 5 },
				{ (char *)msg + 5, MSG_LEN - 5 } }, keep[2];

	if (s->big) {
		iov[0] = (struct iovec){ big, BIG / 2 };
		iov[1] = (struct iovec){ big + BIG / 2, BIG / 2 };
	}
	memcpy(keep, iov, sizeof(iov));
	long n = ctx_writev(c, s->p.wr, iov, 2);
	s->iov_changed |= memcmp(keep, iov, sizeof(iov)) != 0;
	return n;
}

static void wr_check(void *v, long rc)
{
	struct st *s = v;
	char buf[16] = { 0 };

	assert_moved(rc, MSG_LEN, s->p.kind);
	ck_assert_msg(get_msg(s->p.drain, buf) == MSG_LEN, "what was written "
		      "to %s never came out", kind_name[s->p.kind]);
	ck_assert_str_eq(buf, msg);
}

static void wr_kept(void *v)
{
	struct st *s = v;

	ck_assert_msg(!readable(s->p.drain, PAIR_QUIET_MS), "a refused write "
		      "to %s reached the far end", kind_name[s->p.kind]);
}

/* ---- partial writes --------------------------------------------------- */

/* An empty descriptor and a write of a megabyte: some goes in, then the
 * write waits for room nobody makes. */
static void wr_partial(void *v)
{
	struct st *s = v;

	ck_assert_uint_eq(drain_upto(s->p.drain, NULL, s->filled,
				     PAIR_LATE_MS), s->filled);
	fill_pattern();
	s->big = true;
}

static void wr_unstick(void *v)
{
	struct st *s = v;

	drain_quiet(s->p.drain, NULL, SIZE_MAX, PAIR_QUIET_MS);
}

/* The far end holds exactly the first n bytes of big, in order. */
static void wr_moved(void *v, long n)
{
	struct st *s = v;

	ck_assert_msg(n < BIG, "all %d bytes went into %s", BIG,
		      kind_name[s->p.kind]);
	ck_assert_uint_eq(drain_upto(s->p.drain, back, (size_t)n,
				     PAIR_LATE_MS), (size_t)n);
	ck_assert_mem_eq(back, big, (size_t)n);
	ck_assert(!readable(s->p.drain, PAIR_QUIET_MS));
	ck_assert_msg(!s->iov_changed, "ctx_writev changed the caller's "
		      "vector");
}

/* ---- the rows ----------------------------------------------------------- */

#define READER .style = CT_ERRNO, .size = sizeof(struct st),                \
	.setup = rd_setup, .ready = rd_ready, .settle = rd_settle,          \
	.kept = rd_kept,                                                    \
	.teardown = teardown
#define READ(k, what) { .name = "ctx_read on " what, .arg = k, READER,     \
	.call = read_call, .check = rd_check, .flags = CT_NOT_PARTIAL }
#define POLL(k, what) { .name = "ctx_poll on " what, .arg = k, READER,     \
	.call = poll_call, .check = poll_check, .flags = CT_NOT_PARTIAL }
#define WRITER .style = CT_ERRNO, .size = sizeof(struct st),                \
	.setup = wr_setup, .ready = wr_ready, .kept = wr_kept,              \
	.teardown = teardown, .check = wr_check
#define PARTIAL .partial = wr_partial, .unstick = wr_unstick,               \
	.moved = wr_moved
#define WRITE(k, what) { .name = "ctx_write on " what, .arg = k, WRITER,   \
	.call = write_call, PARTIAL }
#define EACH(ROW)                                                           \
	ROW(K_UNIX, "an AF_UNIX socketpair"),                               \
	ROW(K_UNIX_NB, "a non-blocking AF_UNIX socketpair"),                \
	ROW(K_TCP, "a TCP loopback socket"),                                \
	ROW(K_TCP_NB, "a non-blocking TCP loopback socket"),                \
	ROW(K_PIPE, "a pipe"), ROW(K_PIPE_NB, "a non-blocking pipe"),       \
	ROW(K_FIFO, "a FIFO"), ROW(K_FIFO_NB, "a non-blocking FIFO"),       \
	ROW(K_PTY, "a terminal"),                                           \
	ROW(K_PTY_NB, "a non-blocking terminal"),                           \
	ROW(K_PTM, "a terminal's master"),                                  \
	ROW(K_PTM_NB, "a non-blocking terminal's master")
#define EACH_SOCKET(ROW)                                                    \
	ROW(K_UNIX, "an AF_UNIX socketpair"),                               \
	ROW(K_UNIX_NB, "a non-blocking AF_UNIX socketpair"),                \
	ROW(K_TCP, "a TCP loopback socket"),                                \
	ROW(K_TCP_NB, "a non-blocking TCP loopback socket")
/* The message calls share the transfers' path: a blocking AF_UNIX and a
 * non-blocking TCP socket are enough of them. */
#define TWO_SOCKETS(ROW)                                                    \
	ROW(K_UNIX, "an AF_UNIX socketpair"),                               \
	ROW(K_TCP_NB, "a non-blocking TCP loopback socket")
#define RECV(k, what) { .name = "ctx_recv on " what, .arg = k, READER,     \
	.call = recv_call, .check = rd_check, .flags = CT_NOT_PARTIAL }
#define RECV_DONTWAIT(k, what) { .name = "ctx_recv MSG_DONTWAIT on " what, \
	.arg = k, READER, .call = recv_dontwait_call, .check = rd_check,    \
	.flags = CT_NEVER_WAITS }
#define SEND(k, what) { .name = "ctx_send on " what, .arg = k, WRITER,     \
	.call = send_call, PARTIAL }
#define SEND_DONTWAIT(k, what) { .name = "ctx_send MSG_DONTWAIT on " what, \
	.arg = k, WRITER, .call = send_dontwait_call,                       \
	.flags = CT_NEVER_WAITS }
#define WAITALL(k, what) { .name = "ctx_recv MSG_WAITALL on " what,     \
	.arg = k, READER, .call = recv_waitall_call, .check = rd_check,     \
	.partial = waitall_partial, .unstick = waitall_unstick,             \
	.moved = waitall_moved }
#define RECVMSG(k, what) { .name = "ctx_recvmsg on " what, .arg = k,     \
	READER, .call = recvmsg_call, .check = rd_check,                    \
	.flags = CT_NOT_PARTIAL }
#define RECVFROM(k, what) { .name = "ctx_recvfrom on " what, .arg = k,   \
	READER, .call = recvfrom_call, .check = rd_check,                   \
	.flags = CT_NOT_PARTIAL }
#define SENDMSG(k, what) { .name = "ctx_sendmsg on " what, .arg = k,     \
	WRITER, .call = sendmsg_call, PARTIAL }
#define SENDTO(k, what) { .name = "ctx_sendto on " what, .arg = k,       \
	WRITER, .call = sendto_call, PARTIAL }
/* An eventfd is a counter, not a stream: no partial write. */
#define EVENTFD(ROW)                                                        \
	ROW(K_EVENTFD, "an eventfd"), ROW(K_EVENTFD_NB, "a non-blocking eventfd")

#define WRITE_COUNTER(k, what) { .name = "ctx_write on " what, .arg = k,   \
	WRITER, .call = write_call, .flags = CT_NOT_PARTIAL }

const struct ct_row ct_rows_stream[] = {
	EACH(READ), EVENTFD(READ),
	EACH(WRITE), EVENTFD(WRITE_COUNTER),
	EACH(POLL), EVENTFD(POLL),
	EACH_SOCKET(RECV), EACH_SOCKET(RECV_DONTWAIT), EACH_SOCKET(WAITALL),
	EACH_SOCKET(SEND), EACH_SOCKET(SEND_DONTWAIT),
	TWO_SOCKETS(RECVMSG), TWO_SOCKETS(RECVFROM),
	TWO_SOCKETS(SENDMSG), TWO_SOCKETS(SENDTO),
	{ .name = "ctx_readv on a pipe", .arg = K_PIPE, READER,
	  .call = readv_call, .check = rd_check, .flags = CT_NOT_PARTIAL },
	{ .name = "ctx_readv on an AF_UNIX socketpair", .arg = K_UNIX, READER,
	  .call = readv_call, .check = rd_check, .flags = CT_NOT_PARTIAL },
	{ .name = "ctx_writev on a pipe", .arg = K_PIPE, WRITER,
	  .call = writev_call, PARTIAL },
	{ .name = "ctx_writev on an AF_UNIX socketpair", .arg = K_UNIX,
	  WRITER, .call = writev_call, PARTIAL },
	{ .name = NULL },
};
