/*
 * ctx_accept and ctx_connect beyond the contract (tests/contract.c):
 * accept4's flags, descriptors that cannot accept, AF_UNIX connects, a
 * full backlog met by a non-blocking socket, and a refused connection.
 * The loop index is mostly 0 for a blocking descriptor, 1 for a
 * non-blocking one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pair.h"
#include "suites.h"

#define BOUND (5 * CTX_SEC)

/* ---- accept ----------------------------------------------------------- */

/* A listener, blocking or not (the loop index), and its address. */
static int listener(int nonblock, struct sockaddr_in *a)
{
	int l = tcp_listener(8, a);

	set_nonblock(l, nonblock);
	return l;
}


/* s and t are the two ends of one connection. */
static void assert_connected(int s, int t)
{
	char buf[16] = { 0 };

	put(s, msg, MSG_LEN);
	ck_assert_int_eq(get_msg(t, buf), MSG_LEN);
	ck_assert_str_eq(buf, msg);
}

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
		int s = tcp_client(&a);
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

/* A full backlog: connect(2) on a non-blocking socket fails with EAGAIN
 * (there is no EINPROGRESS to poll for), and so must ctx_connect, at
 * once.  (A blocking one waits: the contract test's.) */
START_TEST(test_connect_unix_full)
{
	struct unix_listener u;
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	unix_full_open(&u);
	int s = unix_socket(true), before = fcntl(s, F_GETFL);
	int64_t t0 = ctx_now();
	tu_assert_fail(ctx_connect(c, s, (struct sockaddr *)&u.addr,
				   sizeof(u.addr)), EAGAIN);
	tu_assert_ms(tu_ms_since(t0), 0, PAIR_LATE_MS / 4);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	unix_full_close(&u);
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
	tu_assert_ms(tu_ms_since(t0), 0, PAIR_LATE_MS);
	ck_assert_int_eq(fcntl(s, F_GETFL), before);
	close(s);
	ctx_release(c);
}
END_TEST

void add_io_accept(Suite *s)
{
	/* Loop index: 0 a blocking listener, 1 a non-blocking one. */
	TCase *tc = tu_tcase(s, "accept", 30);
	tcase_add_loop_test(tc, test_accept_flags, 0, 2);
	tcase_add_loop_test(tc, test_accept_cannot, 0, 4);

	/* Loop index: 0 a blocking socket, 1 a non-blocking one. */
	tc = tu_tcase(s, "connect", 30);
	tcase_add_loop_test(tc, test_connect_unix, 0, 2);
	tcase_add_test(tc, test_connect_unix_full);
	tcase_add_loop_test(tc, test_connect_refused, 0, 2);
}
