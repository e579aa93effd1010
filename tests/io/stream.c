/*
 * Cancellable I/O beyond the contract every blocking call keeps (that is
 * tests/contract.c's, on every kind of descriptor): what the flags of
 * ctx_recv and ctx_send do, end of stream, regular files, and bad input.
 * The suite's other cases are in accept.c (ctx_accept and ctx_connect)
 * and shared.c (descriptors that several threads or numbers share).
 *
 * Most tests are loop tests over the descriptor kinds of pair.h; Check
 * prints the iteration after the test's name ("test_recv_eof:2" is a
 * TCP socket).  Assertions are made on the test's own thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pair.h"
#include "suites.h"

#define HOUR (3600 * CTX_SEC)
#define BOUND (5 * CTX_SEC)     /* a deadline no correct call reaches: one
				 * that waits for what never comes fails
				 * instead of hanging the test */
#define SHORT_MS 30             /* when a helper acts, or a deadline falls */
#define SHORT (SHORT_MS * CTX_MSEC)

/* ---- recv and send ---------------------------------------------------- */

/* Flags pass through: a peek leaves the data for the next call. */
START_TEST(test_recv_peek)
{
	struct pair p;
	char buf[16] = { 0 }, again[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, PAIR_LATE_MS));
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
	tu_assert_ms(tu_ms_since(t0), 0, PAIR_LATE_MS / 4);
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
	struct tu_feeder f;
	struct tu_canceller k;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	ctx_t *d = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	int64_t t0 = ctx_now();
	put(p.feed, msg, 4);
	tu_feed_after(&f, p.feed, msg + 4, MSG_LEN - 4, SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, MSG_LEN, MSG_WAITALL);
	double ms = tu_ms_since(t0);
	tu_feeder_join(&f);
	assert_moved(n, MSG_LEN, _i);
	ck_assert_str_eq(buf, msg);
	tu_assert_ms(ms, SHORT_MS * 0.8, PAIR_LATE_MS);

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
	struct tu_feeder f;
	struct tu_canceller k;
	char buf[16] = { 0 };
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);
	ctx_t *d = ctx_with_cancel(ctx_background());

	open_pair(&p, _i);
	put(p.feed, msg, 4);
	tu_feed_after(&f, p.feed, msg + 4, MSG_LEN - 4, SHORT);
	ssize_t n = ctx_recv(c, p.rd, buf, MSG_LEN, MSG_PEEK | MSG_WAITALL);
	tu_feeder_join(&f);
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

START_TEST(test_send_dontwait)
{
	struct pair p;
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	open_pair(&p, _i);
	size_t filled = fill(&p);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_send(c, p.wr, msg, MSG_LEN, MSG_DONTWAIT), EAGAIN);
	tu_assert_ms(tu_ms_since(t0), 0, PAIR_LATE_MS / 4);
	assert_drained(&p, filled);
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/* ---- regular files ---------------------------------------------------- */

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
	int l = tcp_listener(8, &a), s = tcp_client(&a), t = tcp_socket(false);

	open_pair(&p, K_UNIX);
	put(p.feed, msg, MSG_LEN);
	ck_assert(readable(p.rd, PAIR_LATE_MS));
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
	ck_assert(!readable(p.drain, PAIR_QUIET_MS));
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

/* ---- the suite -------------------------------------------------------- */

Suite *suite_io(void)
{
	Suite *s = suite_create("io");
	TCase *tc;

	tc = tu_tcase(s, "socket", 30);
	tcase_add_loop_test(tc, test_recv_peek, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_dontwait, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_eof, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_waitall, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_recv_peek_waitall, 0, N_SOCK_KINDS);
	tcase_add_loop_test(tc, test_send_dontwait, 0, N_SOCK_KINDS);

	/* Loop index: 0 a blocking file, 1 one opened O_NONBLOCK. */
	tc = tu_tcase(s, "file", 30);
	tcase_add_loop_test(tc, test_file_read, 0, 2);
	tcase_add_loop_test(tc, test_file_write, 0, 2);
	tcase_add_loop_test(tc, test_file_not_socket, 0, 2);

	tc = tu_tcase(s, "bad_input", 30);
	tu_add_tests(tc, test_ebadf, test_null_ctx);

	add_io_accept(s);
	add_io_shared(s);
	return s;
}
