/*
 * The vectored, positional, message and copy calls (issue 12), beyond
 * the contract every blocking call keeps (tests/contract.c): UDP over
 * both families, descriptors passed with SCM_RIGHTS, several datagrams
 * in one call, timerfd, signalfd and inotify read through ctx_read, end
 * of input, offsets, vectors, MSG_WAITALL and bad input.
 */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "testutil.h"
#include "suites.h"

/* A temporary file of `size` bytes of a known pattern, unlinked. */
static int tmpfile_of(size_t size)
{
	char path[] = "/tmp/ctx-xfer-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	char buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	return fd;
}

/* ---- datagrams -------------------------------------------------------- */

static void udp_roundtrip(int family)
{
	struct sockaddr_storage a = { 0 }, src;
	socklen_t alen;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		alen = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_loopback;
		alen = sizeof(*in6);
	}
	int r = socket(family, SOCK_DGRAM, 0);
	if (r < 0 || bind(r, (struct sockaddr *)&a, alen) < 0) {
		/* No IPv6 here: say so, and check that is the reason. */
		int e = errno;
		fprintf(stderr, "xfer: skipping family %d: %s\n", family,
			strerror(e));
		ck_assert_msg(e == EAFNOSUPPORT || e == EADDRNOTAVAIL,
			      "socket/bind: %s", strerror(e));
		if (r >= 0)
			close(r);
		return;
	}
	ck_assert_int_eq(getsockname(r, (struct sockaddr *)&a, &alen), 0);
	int s = socket(family, SOCK_DGRAM, 0);
	ck_assert_int_ge(s, 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_sendto(c, s, "ping", 4, 0, (struct sockaddr *)&a,
				    alen), 4);
	char buf[16];
	socklen_t slen = sizeof(src);
	ck_assert_int_eq(ctx_recvfrom(c, r, buf, sizeof(buf), 0,
				      (struct sockaddr *)&src, &slen), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(src.ss_family, family);
	ctx_release(c);
	close(r);
	close(s);
}

START_TEST(test_udp4)
{
	udp_roundtrip(AF_INET);
}
END_TEST

START_TEST(test_udp6)
{
	udp_roundtrip(AF_INET6);
}
END_TEST

START_TEST(test_scm_rights)
{
	int sp[2], p[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(pipe(p), 0);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec v = { "f", 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_eq(ctx_sendmsg(c, sp[0], &m, 0), 1);

	char got;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} r;
	memset(&r, 0, sizeof(r));
	struct iovec rv = { &got, 1 };
	struct msghdr rm = { .msg_iov = &rv, .msg_iovlen = 1,
			     .msg_control = r.buf,
			     .msg_controllen = sizeof(r.buf) };
	ck_assert_int_eq(ctx_recvmsg(c, sp[1], &rm, MSG_CMSG_CLOEXEC), 1);
	ck_assert_int_eq(got, 'f');
	cm = CMSG_FIRSTHDR(&rm);
	ck_assert_ptr_nonnull(cm);
	ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	ck_assert_int_ne(fd, p[1]);
	ck_assert_int_eq(write(fd, "z", 1), 1); /* the pipe's write end */
	char z;
	ck_assert_int_eq(ctx_read(c, p[0], &z, 1), 1);
	ck_assert_int_eq(z, 'z');
	close(fd);
	tu_assert_fail(ctx_sendmsg(c, sp[0], NULL, 0),
		       EINVAL);
	ctx_release(c);
	close(sp[0]);
	close(sp[1]);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Three datagrams sent in one call arrive in one call.  (One that
 * comes while the call waits: the contract test's.) */
START_TEST(test_recvmmsg)
{
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
	ctx_t *c = ctx_with_cancel(ctx_background());
	char bufs[8][8];
	struct iovec v[8];
	struct mmsghdr mm[8];
	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < 8; i++) {
		v[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		mm[i].msg_hdr.msg_iov = &v[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	/* Three sent in one sendmmsg arrive in one recvmmsg. */
	struct mmsghdr out[3];
	struct iovec ov = { "xyz", 3 };
	memset(out, 0, sizeof(out));
	for (int i = 0; i < 3; i++) {
		out[i].msg_hdr.msg_iov = &ov;
		out[i].msg_hdr.msg_iovlen = 1;
	}
	ck_assert_int_eq(ctx_sendmmsg(c, sp[1], out, 3, 0), 3);
	ck_assert_int_eq(ctx_recvmmsg(c, sp[0], mm, 8, 0), 3);
	ck_assert_mem_eq(bufs[2], "xyz", 3);
	ctx_release(c);
	close(sp[0]);
	close(sp[1]);
}
END_TEST

/* ---- special descriptors through ctx_read --------------------------- */

START_TEST(test_special_reads)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
	/* timerfd: the read waits for the expiry. */
	int tf = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	ck_assert_int_ge(tf, 0);
	struct itimerspec its = { .it_value.tv_nsec = 30 * 1000 * 1000 };
	int64_t t0 = ctx_now();
	ck_assert_int_eq(timerfd_settime(tf, 0, &its, NULL), 0);
	uint64_t ticks = 0;
	ck_assert_int_eq(ctx_read(c, tf, &ticks, sizeof(ticks)), 8);
	ck_assert_uint_eq(ticks, 1);
	tu_assert_ms(tu_ms_since(t0), 20, 3000);
	close(tf);
	/* signalfd: a pending blocked signal. */
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	int sf = signalfd(-1, &set, SFD_CLOEXEC);
	ck_assert_int_ge(sf, 0);
	pthread_kill(pthread_self(), SIGUSR2);
	struct signalfd_siginfo si;
	ck_assert_int_eq(ctx_read(c, sf, &si, sizeof(si)), sizeof(si));
	ck_assert_uint_eq(si.ssi_signo, SIGUSR2);
	close(sf);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	/* inotify: an event from another thread's change. */
	char dir[] = "/tmp/ctx-inotify-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	int in = inotify_init1(IN_CLOEXEC);
	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(inotify_add_watch(in, dir, IN_CREATE), 0);
	char path[64];
	snprintf(path, sizeof(path), "%s/f", dir);
	int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(f, 0);
	close(f);
	char ev[sizeof(struct inotify_event) + 64];
	ssize_t n = ctx_read(c, in, ev, sizeof(ev));
	ck_assert_int_ge(n, (ssize_t)sizeof(struct inotify_event));
	ck_assert_uint_ne(((struct inotify_event *)ev)->mask & IN_CREATE, 0);
	/* Then nothing more: the deadline-less wait is cancelled. */
	ctx_t *cc = ctx_with_cancel(c);
	struct tu_canceller k;
	tu_must_cancel_after(&k, cc, 30 * CTX_MSEC);
	tu_assert_fail(ctx_read(cc, in, ev, sizeof(ev)), CTX_CANCELED);
	tu_canceller_join(&k);
	ctx_release(cc);
	close(in);
	unlink(path);
	rmdir(dir);
	ctx_release(c);
}
END_TEST

/* ---- partial transfers under cancel ---------------------------------- */

/* With a reader: all of it, to the end of the input, which stops short
 * of the count.  (A full socket, a cancel part-way: the contract
 * test's.) */
START_TEST(test_sendfile_eof)
{
	size_t size = 16u << 10;
	int f = tmpfile_of(size);
	ctx_t *c = ctx_with_cancel(ctx_background());
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	off_t off = size - 1000;
	ck_assert_int_eq(ctx_sendfile(c, p[1], f, &off, 5000), 1000);
	ck_assert_int_eq(off, (off_t)size);
	char buf[1000];
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 1000);
	ck_assert_int_eq(buf[0], (char)('a' + (size - 1000) % 4096 % 26));
	ctx_release(c);
	close(p[0]);
	close(p[1]);
	close(f);
}
END_TEST

START_TEST(test_splice_copy)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int f = tmpfile_of(10000), g = tmpfile_of(0), p[2];
	ck_assert_int_eq(pipe(p), 0);
	off_t in = 0, out = 0;
	ck_assert_int_eq(ctx_copy_file_range(c, f, &in, g, &out, 20000, 0),
			 10000);
	ck_assert_int_eq(in, 10000);
	ck_assert_int_eq(lseek(f, 0, SEEK_CUR), 10000); /* tmpfile_of's */
	ck_assert_int_eq(lseek(g, 0, SEEK_CUR), 0);
	/* file -> pipe. */
	in = 0;
	ck_assert_int_eq(ctx_splice(c, g, &in, p[1], NULL, 100, 0), 100);
	char buf[100];
	ck_assert_int_eq(ctx_read(c, p[0], buf, 100), 100);
	ck_assert_mem_eq(buf, "abcdefghij", 10);
	ctx_release(c);
	close(f);
	close(g);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* ---- positional and vectored ---------------------------------------- */

START_TEST(test_positional)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int f = tmpfile_of(4096);
	ck_assert_int_eq(lseek(f, 3, SEEK_SET), 3);
	ck_assert_int_eq(ctx_pwrite(c, f, "hello", 5, 100), 5);
	char buf[16] = { 0 };
	ck_assert_int_eq(ctx_pread(c, f, buf, 5, 100), 5);
	ck_assert_str_eq(buf, "hello");
	struct iovec w[2] = { { "ab", 2 }, { "cde", 3 } };
	ck_assert_int_eq(ctx_pwritev(c, f, w, 2, 5000), 5);
	char x[2], y[3];
	struct iovec r[2] = { { x, 2 }, { y, 3 } };
	ck_assert_int_eq(ctx_preadv(c, f, r, 2, 5000), 5);
	ck_assert_mem_eq(x, "ab", 2);
	ck_assert_mem_eq(y, "cde", 3);
	ck_assert_int_eq(lseek(f, 0, SEEK_CUR), 3); /* never moved */
	/* Past the end: 0. */
	ck_assert_int_eq(ctx_pread(c, f, buf, 5, 1 << 20), 0);
	tu_assert_fail(ctx_pread(c, f, buf, 5, -1), EINVAL);
	tu_assert_fail(ctx_pwrite(c, -1, buf, 5, 0), EBADF);
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	tu_assert_fail(ctx_pwrite(c, p[1], buf, 5, 0), ESPIPE);
	ctx_release(c);
	close(f);
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_vectored_pipe)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	struct iovec w[3] = { { "one", 3 }, { "", 0 }, { "two", 3 } };
	ck_assert_int_eq(ctx_writev(c, p[1], w, 3), 6);
	char a[4], b[8];
	struct iovec r[2] = { { a, 4 }, { b, 8 } };
	ck_assert_int_eq(ctx_readv(c, p[0], r, 2), 6);
	ck_assert_mem_eq(a, "onet", 4);
	ck_assert_mem_eq(b, "wo", 2);
	ctx_t *c2 = ctx_with_cancel(ctx_background());
	tu_assert_fail(ctx_writev(c2, p[1], NULL, 1), EINVAL);
	tu_assert_fail(ctx_readv(c2, p[0], r, -1), EINVAL);
	ctx_release(c2);
	ctx_release(c);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* MSG_WAITALL on a stream waits for every byte; on a datagram socket it
 * returns the one message. */
START_TEST(test_recvmsg_waitall)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int sp[2], dg[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
	ck_assert_int_eq(send(sp[1], "ab", 2, 0), 2);
	struct tu_feeder f;
	tu_feed_after(&f, sp[1], "late", 4, 40 * CTX_MSEC);
	char buf[8] = { 0 };
	struct iovec v[2] = { { buf, 3 }, { buf + 3, 3 } };
	struct msghdr m = { .msg_iov = v, .msg_iovlen = 2 };
	ck_assert_int_eq(ctx_recvmsg(c, sp[0], &m, MSG_WAITALL), 6);
	ck_assert_str_eq(buf, "ablate");
	tu_feeder_join(&f);
	ck_assert_int_eq(send(dg[1], "ab", 2, 0), 2);
	ck_assert_int_eq(ctx_recvmsg(c, dg[0], &m, MSG_WAITALL), 2);
	ck_assert_int_eq(ctx_recvfrom(c, sp[0], buf, 4, MSG_DONTWAIT, NULL,
				      NULL), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ctx_release(c);
	close(sp[0]);
	close(sp[1]);
	close(dg[0]);
	close(dg[1]);
}
END_TEST

START_TEST(test_bad_input)
{
	int fds = tu_count_fds();
	ctx_t *c = ctx_with_cancel(ctx_background());
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct iovec v = { "x", 1 };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = IOV_MAX + 1 };
	tu_assert_fail(ctx_sendmsg(c, sp[0], &m, 0), EMSGSIZE);
	tu_assert_fail(ctx_recvmsg(c, sp[0], NULL, 0), EINVAL);
	off_t off = 0;
	tu_assert_fail(ctx_sendfile(c, sp[0], -1, &off, 10), EBADF);
	tu_assert_fail(ctx_sendfile(c, -1, sp[0], &off, 10), EBADF);
	tu_assert_fail(ctx_splice(c, -1, NULL, sp[0], NULL, 10, 0), EBADF);
	tu_assert_fail(ctx_copy_file_range(c, -1, NULL, -1, NULL, 10, 0),
		       EBADF);
	tu_assert_fail(ctx_recvfrom(c, -1, NULL, 0, 0, NULL, NULL), EBADF);
	tu_assert_fail(ctx_sendto(c, -1, "x", 1, 0, NULL, 0),
		       EBADF);
	tu_assert_fail(ctx_readv(c, -1, &v, 1), EBADF);
	tu_assert_fail(ctx_recvmmsg(c, -1, NULL, 0, 0), EBADF);
	ctx_release(c);
	close(sp[0]);
	close(sp[1]);
	ck_assert_int_eq(tu_count_fds(), fds);
}
END_TEST

Suite *suite_xfer(void)
{
	Suite *s = suite_create("xfer");
	TCase *tc = tu_tcase(s, "datagrams", 20);
	tu_add_tests(tc, test_udp4, test_udp6, test_scm_rights, test_recvmmsg);
	tc = tu_tcase(s, "special", 20);
	tcase_add_test(tc, test_special_reads);
	tc = tu_tcase(s, "copies", 30);
	tu_add_tests(tc, test_sendfile_eof, test_splice_copy);
	tc = tu_tcase(s, "positional", 20);
	tu_add_tests(tc, test_positional, test_vectored_pipe,
		     test_recvmsg_waitall, test_bad_input);
	return s;
}
