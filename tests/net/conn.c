/*
 * ctx_conn_t over plain descriptors: lines (short, empty, long, longer
 * than the buffer, the last without '\n'), reads through and past the
 * buffer, io.ReadFull's ends, writes that never raise SIGPIPE, a line
 * the context interrupts and nothing of it lost, a done context refused
 * with bytes buffered, and the descriptor's ownership.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

static void sockpair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
}

/* A thread that writes a text in pieces of `piece` bytes, `gap` apart,
 * then closes its end when close_after is set. */
struct feeder {
	pthread_t t;
	int fd;
	const char *text;
	size_t len, piece;
	int64_t gap;
	bool close_after;
};

static void *feeder_main(void *arg)
{
	struct feeder *f = arg;
	for (size_t off = 0; off < f->len; off += f->piece) {
		size_t n = f->len - off < f->piece ? f->len - off : f->piece;
		if (write(f->fd, f->text + off, n) != (ssize_t)n)
			break;
		if (f->gap)
			tu_sleep_ns(f->gap);
	}
	if (f->close_after)
		close(f->fd);
	return NULL;
}

static void feed(struct feeder *f, int fd, const char *text, size_t len,
		 size_t piece, int64_t gap, bool close_after)
{
	*f = (struct feeder){ .fd = fd, .text = text, .len = len,
			      .piece = piece, .gap = gap,
			      .close_after = close_after };
	ck_assert_int_eq(pthread_create(&f->t, NULL, feeder_main, f), 0);
}

/* Lines as they come, one byte at a time for the second, and the last
 * one without its '\n'. */
START_TEST(lines)
{
	int sv[2];
	sockpair(sv);
	static const char text[] = "first\nsecond line\n\nlast";
	struct feeder f;
	feed(&f, sv[1], text, sizeof text - 1, _i ? 1 : 64,
	     _i ? 100 * CTX_USEC : 0, true);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	ck_assert_ptr_nonnull(c);
	char buf[64];
	const char *want[] = { "first\n", "second line\n", "\n", "last", "" };
	for (size_t i = 0; i < 5; i++) {
		ssize_t n = ctx_conn_read_line(ctx_background(), c, buf,
					       sizeof buf);
		ck_assert_int_eq(n, (ssize_t)strlen(want[i]));
		ck_assert_str_eq(buf, want[i]);
	}
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 64), 0);
	pthread_join(f.t, NULL);
	ctx_conn_close(c);
}
END_TEST

/* A 10,000-byte line read with len 100 comes in 99-byte pieces, the
 * last with the '\n'; with len 12,000 (more than the 4 KiB buffer) in
 * one piece. */
START_TEST(long_lines)
{
	int sv[2];
	sockpair(sv);
	static char text[20002];
	for (int i = 0; i < 20000; i++)
		text[i] = (char)('a' + i % 26);
	text[9999] = text[19999] = '\n';
	struct feeder f;
	feed(&f, sv[1], text, 20000, 3000, CTX_MSEC, true);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	static char buf[12000];
	size_t got = 0;
	while (got < 10000) {
		ssize_t n = ctx_conn_read_line(ctx_background(), c, buf, 100);
		ssize_t want = got + 99 < 10000 ? 99 : (ssize_t)(10000 - got);
		ck_assert_int_eq(n, want);
		ck_assert_int_eq(memcmp(buf, text + got, (size_t)n), 0);
		ck_assert_int_eq(buf[n], '\0');
		got += (size_t)n;
	}
	ck_assert_int_eq(buf[0], '\n'); /* the last piece: the '\n' alone */
	ssize_t n = ctx_conn_read_line(ctx_background(), c, buf, sizeof buf);
	ck_assert_int_eq(n, 10000);
	ck_assert_int_eq(memcmp(buf, text + 10000, 10000), 0);
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 2), 0);
	pthread_join(f.t, NULL);
	ctx_conn_close(c);
}
END_TEST

/* The deadline ends a line half-way: -1, and the half is still there
 * for the next call. */
START_TEST(line_interrupted)
{
	int sv[2];
	sockpair(sv);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	ck_assert_int_eq(write(sv[1], "partial", 7), 7);
	int64_t t0 = ctx_now();
	ctx_t *k = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	char buf[64];
	tu_assert_fail(ctx_conn_read_line(k, c, buf, sizeof buf),
		       CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(tu_ms_since(t0), 40, 1000);
	/* Done now: refused at once, even with a whole line buffered. */
	ck_assert_int_eq(write(sv[1], "-rest\nnext\n", 11), 11);
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 64), 13);
	ck_assert_str_eq(buf, "partial-rest\n");
	tu_assert_fail(ctx_conn_read_line(k, c, buf, sizeof buf),
		       CTX_DEADLINE_EXCEEDED);
	tu_assert_fail(ctx_conn_read(k, c, buf, sizeof buf),
		       CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, 64), 5);
	ck_assert_int_eq(memcmp(buf, "next\n", 5), 0);
	ctx_release(k);
	ctx_conn_close(c);
	close(sv[1]);
}
END_TEST

/* Reads come from the buffer first; a read of at least 4 KiB with
 * nothing buffered goes straight to the caller's memory. */
START_TEST(reads)
{
	int sv[2];
	sockpair(sv);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	char buf[8192];
	ck_assert_int_eq(write(sv[1], "hello world\nrest", 16), 16);
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), c, buf, 7), 6);
	ck_assert_str_eq(buf, "hello ");
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, 3), 3);
	ck_assert_int_eq(memcmp(buf, "wor", 3), 0);
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, sizeof buf),
			 7);
	ck_assert_int_eq(memcmp(buf, "ld\nrest", 7), 0);
	static char big[6000];
	memset(big, 'x', sizeof big);
	ck_assert_int_eq(write(sv[1], big, sizeof big), (ssize_t)sizeof big);
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, sizeof buf),
			 (ssize_t)sizeof big);
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, 0), 0);
	close(sv[1]);
	ck_assert_int_eq(ctx_conn_read(ctx_background(), c, buf, 10), 0);
	ctx_conn_close(c);
}
END_TEST

/* io.ReadFull: all of it across pieces; fewer at the end (errno 0);
 * what came before the deadline (errno its error); -1 for nothing. */
START_TEST(read_full)
{
	int sv[2];
	sockpair(sv);
	static char text[10000];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = (char)i;
	struct feeder f;
	feed(&f, sv[1], text, sizeof text, 700, 200 * CTX_USEC, false);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	static char buf[10000];
	errno = -1;
	ck_assert_int_eq(ctx_conn_read_full(ctx_background(), c, buf, 9990),
			 9990);
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(memcmp(buf, text, 9990), 0);
	pthread_join(f.t, NULL);
	ctx_t *k = ctx_with_timeout(ctx_background(), 50 * CTX_MSEC);
	errno = 0;
	ck_assert_int_eq(ctx_conn_read_full(k, c, buf, 20), 10);
	ck_assert_int_eq(errno, CTX_DEADLINE_EXCEEDED);
	tu_assert_fail(ctx_conn_read_full(k, c, buf, 20),
		       CTX_DEADLINE_EXCEEDED);
	ctx_release(k);
	ck_assert_int_eq(write(sv[1], "abc", 3), 3);
	close(sv[1]);
	errno = -1;
	ck_assert_int_eq(ctx_conn_read_full(ctx_background(), c, buf, 20), 3);
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(ctx_conn_read_full(ctx_background(), c, buf, 20), 0);
	ctx_conn_close(c);
}
END_TEST

/* Writes: every byte, to a socket and to a pipe; a socket whose peer is
 * gone is EPIPE, and the process gets no SIGPIPE (which would kill it:
 * the test leaves the default action in place). */
START_TEST(writes)
{
	int sv[2], p[2];
	sockpair(sv);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ctx_conn_t *c = ctx_conn_new(sv[0]), *w = ctx_conn_new(p[1]);
	ck_assert_int_eq(ctx_conn_write(ctx_background(), c, "line\n", 5), 5);
	ck_assert_int_eq(ctx_conn_write(ctx_background(), w, "pipe\n", 5), 5);
	ctx_conn_t *r = ctx_conn_new(sv[1]), *pr = ctx_conn_new(p[0]);
	char buf[16];
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), r, buf, 16), 5);
	ck_assert_str_eq(buf, "line\n");
	ck_assert_int_eq(ctx_conn_read_line(ctx_background(), pr, buf, 16), 5);
	ck_assert_str_eq(buf, "pipe\n");
	ck_assert_int_eq(ctx_conn_write(ctx_background(), c, "", 0), 0);
	ctx_conn_close(r);
	ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	tu_assert_fail(ctx_conn_write(ctx_background(), c, "x", 1), EPIPE);
	ctx_conn_close(c);
	ctx_conn_close(w);
	ctx_conn_close(pr);
}
END_TEST

/* The connection owns its descriptor: closed by ctx_conn_close, also
 * when the connection could not be made; nothing left behind. */
START_TEST(ownership_and_errors)
{
	int fds0 = tu_count_fds();
	int sv[2];
	sockpair(sv);
	ctx_conn_t *c = ctx_conn_new(sv[0]);
	ck_assert_int_eq(ctx_conn_fd(c), sv[0]);
	ck_assert_int_eq(ctx_conn_fd(NULL), -1);
	char buf[8];
	tu_assert_fail(ctx_conn_read(NULL, c, buf, 8), EINVAL);
	tu_assert_fail(ctx_conn_read(ctx_background(), NULL, buf, 8), EINVAL);
	tu_assert_fail(ctx_conn_read(ctx_background(), c, NULL, 8), EINVAL);
	tu_assert_fail(ctx_conn_read_full(ctx_background(), c, NULL, 8),
		       EINVAL);
	tu_assert_fail(ctx_conn_read_line(ctx_background(), c, buf, 1),
		       EINVAL);
	tu_assert_fail(ctx_conn_read_line(ctx_background(), c, NULL, 8),
		       EINVAL);
	tu_assert_fail(ctx_conn_write(ctx_background(), c, NULL, 1), EINVAL);
	tu_assert_fail(ctx_conn_write(NULL, c, "x", 1), EINVAL);
	ctx_conn_close(c);
	ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1);
	close(sv[1]);
	ctx_conn_close(NULL);
	errno = 0;
	ck_assert_ptr_null(ctx_conn_new(-1));
	ck_assert_int_eq(errno, EBADF);
	ck_assert_ptr_null(ctx_conn_new(999));
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(tu_count_fds(), fds0);
}
END_TEST

Suite *suite_conn(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tu_tcase(s, "conn", 10);
	tcase_add_loop_test(tc, lines, 0, 2);
	tcase_add_test(tc, long_lines);
	tcase_add_test(tc, line_interrupted);
	tcase_add_test(tc, reads);
	tcase_add_test(tc, read_full);
	tcase_add_test(tc, writes);
	tcase_add_test(tc, ownership_and_errors);
	return s;
}
