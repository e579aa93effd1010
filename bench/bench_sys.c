/*
 * bench_sys: the hot path (the thing is ready, nothing waits) of the
 * issue-12 calls beside the plain system call, in the same run:
 *
 *   ppoll/ready        ctx_ppoll on a pipe with data, with a mask, vs ppoll
 *   epoll_wait/ready   ctx_epoll_wait on a set with a ready pipe vs epoll_wait
 *   sigwait/ready      a pending signal: ctx_sigwait vs sigwaitinfo (each
 *                      iteration also sends it, with pthread_kill)
 *   flock/free         an uncontended LOCK_EX + LOCK_UN: ctx_flock vs flock
 *   lock_range/free    an uncontended F_WRLCK + F_UNLCK: ctx_lock_range vs
 *                      fcntl(F_OFD_SETLKW)
 *   open/file          open + close of a regular file, O_RDONLY: ctx_open vs
 *                      open (ctx_open adds O_NONBLOCK, an fstat to tell a
 *                      FIFO and an F_SETFL to clear the flag: its floor)
 *   open/file-wronly   the same, O_WRONLY (no fstat)
 *   fsync/clean        fsync of an unchanged file: ctx_fsync vs fsync
 *   writev+readv/pipe  two 32-byte pieces into a pipe and back, per pair
 *   pread/file, pwrite/file, preadv/file, pwritev/file
 *                      4 bytes at offset 0 of a cached file
 *   sendto+recvfrom/dgram, sendmsg+recvmsg/stream, sendmmsg+recvmmsg/dgram
 *                      a 32-byte message (4 for the mmsg pair) over a
 *                      UNIX socket pair and back
 *   sendfile/pipe      4 bytes of the file into a pipe, read back plainly
 *   sendfile/socket    the same into a blocking stream socket (the poll,
 *                      SO_SNDBUF and SIOCOUTQ of each step: its floor)
 *   splice/pipe        4 bytes of the file into a pipe, read back plainly
 *   copy_file_range/file  4 bytes from the file into a second one
 *
 * Not here: ctx_sleep_until (nothing to compare: its cost is the wait),
 * ctx_waitid (a child's exit dominates), FIFO opens and contended locks
 * (their cost is the other end's).
 *
 * Output: "# " lines, then "row,libctx_ns,plain_ns,ratio" lines, each
 * ns the median of b.reps runs, the two variants alternating.
 */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ctx.h"
#include "benchutil.h"

static ctx_t *cx;
static int pipefd[2], epfd, filefd, filefd2, xp[2], dg[2], st[2];
static char path[64];
static sigset_t usr1, unblocked; /* unblocked: ppoll's mask */

static void must(bool ok, const char *what)
{
	if (!ok)
		bench_fail("%s: %s", what, strerror(errno));
}

/* ---- the pairs ------------------------------------------------------ */

static void ppoll_ctx(uint64_t n)
{
	struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
	for (uint64_t i = 0; i < n; i++)
		must(ctx_ppoll(cx, &p, 1, -1, &unblocked) == 1, "ctx_ppoll");
}

static void ppoll_plain(uint64_t n)
{
	struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
	for (uint64_t i = 0; i < n; i++)
		must(ppoll(&p, 1, NULL, &unblocked) == 1, "ppoll");
}

static void epoll_ctx(uint64_t n)
{
	struct epoll_event ev[4];
	for (uint64_t i = 0; i < n; i++)
		must(ctx_epoll_wait(cx, epfd, ev, 4, -1) == 1,
		     "ctx_epoll_wait");
}

static void epoll_plain(uint64_t n)
{
	struct epoll_event ev[4];
	for (uint64_t i = 0; i < n; i++)
		must(epoll_wait(epfd, ev, 4, -1) == 1, "epoll_wait");
}

static void sigwait_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		pthread_kill(pthread_self(), SIGUSR1);
		must(ctx_sigwait(cx, &usr1, NULL) == SIGUSR1, "ctx_sigwait");
	}
}

static void sigwait_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		pthread_kill(pthread_self(), SIGUSR1);
		must(sigwaitinfo(&usr1, NULL) == SIGUSR1, "sigwaitinfo");
	}
}

static void flock_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_flock(cx, filefd, LOCK_EX) == 0, "ctx_flock");
		flock(filefd, LOCK_UN);
	}
}

static void flock_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(flock(filefd, LOCK_EX) == 0, "flock");
		flock(filefd, LOCK_UN);
	}
}

static struct flock wr = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
static struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

static void range_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_lock_range(cx, filefd, &wr) == 0, "ctx_lock_range");
		fcntl(filefd, F_OFD_SETLK, &un);
	}
}

static void range_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(fcntl(filefd, F_OFD_SETLKW, &wr) == 0, "F_OFD_SETLKW");
		fcntl(filefd, F_OFD_SETLK, &un);
	}
}

static void open_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int fd = ctx_open(cx, path, O_RDONLY | O_CLOEXEC);
		must(fd >= 0, "ctx_open");
		close(fd);
	}
}

static void open_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		must(fd >= 0, "open");
		close(fd);
	}
}

static void openw_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int fd = ctx_open(cx, path, O_WRONLY | O_CLOEXEC);
		must(fd >= 0, "ctx_open");
		close(fd);
	}
}

static void openw_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		must(fd >= 0, "open");
		close(fd);
	}
}

static void fsync_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(ctx_fsync(cx, filefd) == 0, "ctx_fsync");
}

static void fsync_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(fsync(filefd) == 0, "fsync");
}

/* ---- the read/write family ------------------------------------------- */

static char small[64];
static struct iovec two[2] = { { small, 32 }, { small + 32, 32 } };

static void rwv_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_writev(cx, xp[1], two, 2) == 64, "ctx_writev");
		must(ctx_readv(cx, xp[0], two, 2) == 64, "ctx_readv");
	}
}

static void rwv_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(writev(xp[1], two, 2) == 64, "writev");
		must(readv(xp[0], two, 2) == 64, "readv");
	}
}

static void pread_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(ctx_pread(cx, filefd, small, 4, 0) == 4, "ctx_pread");
}

static void pread_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(pread(filefd, small, 4, 0) == 4, "pread");
}

static void pwrite_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(ctx_pwrite(cx, filefd, "data", 4, 0) == 4, "ctx_pwrite");
}

static void pwrite_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(pwrite(filefd, "data", 4, 0) == 4, "pwrite");
}

static struct iovec four = { small, 4 };

static void preadv_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(ctx_preadv(cx, filefd, &four, 1, 0) == 4, "ctx_preadv");
}

static void preadv_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(preadv(filefd, &four, 1, 0) == 4, "preadv");
}

static void pwritev_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(ctx_pwritev(cx, filefd, &four, 1, 0) == 4, "ctx_pwritev");
}

static void pwritev_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		must(pwritev(filefd, &four, 1, 0) == 4, "pwritev");
}

static void dgram_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_sendto(cx, dg[0], small, 32, 0, NULL, 0) == 32,
		     "ctx_sendto");
		must(ctx_recvfrom(cx, dg[1], small, 64, 0, NULL, NULL) == 32,
		     "ctx_recvfrom");
	}
}

static void dgram_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(sendto(dg[0], small, 32, 0, NULL, 0) == 32, "sendto");
		must(recvfrom(dg[1], small, 64, 0, NULL, NULL) == 32,
		     "recvfrom");
	}
}

static struct msghdr mh = { .msg_iov = two, .msg_iovlen = 1 };

static void msg_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_sendmsg(cx, st[0], &mh, 0) == 32, "ctx_sendmsg");
		must(ctx_recvmsg(cx, st[1], &mh, 0) == 32, "ctx_recvmsg");
	}
}

static void msg_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(sendmsg(st[0], &mh, 0) == 32, "sendmsg");
		must(recvmsg(st[1], &mh, 0) == 32, "recvmsg");
	}
}

static struct mmsghdr mm[4];

static void mmsg_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(ctx_sendmmsg(cx, dg[0], mm, 4, 0) == 4, "ctx_sendmmsg");
		must(ctx_recvmmsg(cx, dg[1], mm, 4, 0) == 4, "ctx_recvmmsg");
	}
}

static void mmsg_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		must(sendmmsg(dg[0], mm, 4, 0) == 4, "sendmmsg");
		must(recvmmsg(dg[1], mm, 4, 0, NULL) == 4, "recvmmsg");
	}
}

static void sendfile_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(ctx_sendfile(cx, xp[1], filefd, &off, 4) == 4,
		     "ctx_sendfile");
		must(read(xp[0], small, 64) == 4, "read");
	}
}

static void sendfile_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(sendfile(xp[1], filefd, &off, 4) == 4, "sendfile");
		must(read(xp[0], small, 64) == 4, "read");
	}
}

static void sendfile_sock_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(ctx_sendfile(cx, st[0], filefd, &off, 4) == 4,
		     "ctx_sendfile");
		must(read(st[1], small, 64) == 4, "read");
	}
}

static void sendfile_sock_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(sendfile(st[0], filefd, &off, 4) == 4, "sendfile");
		must(read(st[1], small, 64) == 4, "read");
	}
}

static void splice_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(ctx_splice(cx, filefd, &off, xp[1], NULL, 4, 0) == 4,
		     "ctx_splice");
		must(read(xp[0], small, 64) == 4, "read");
	}
}

static void splice_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t off = 0;
		must(splice(filefd, &off, xp[1], NULL, 4, 0) == 4, "splice");
		must(read(xp[0], small, 64) == 4, "read");
	}
}

static void cfr_ctx(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t in = 0, out = 0;
		must(ctx_copy_file_range(cx, filefd, &in, filefd2, &out, 4,
					 0) == 4, "ctx_copy_file_range");
	}
}

static void cfr_plain(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		off_t in = 0, out = 0;
		must(copy_file_range(filefd, &in, filefd2, &out, 4, 0) == 4,
		     "copy_file_range");
	}
}

/* ---- measuring ------------------------------------------------------ */

struct pair {
	const char *name;
	void (*lib)(uint64_t n);
	void (*plain)(uint64_t n);
};

static double ns_per_op(void (*fn)(uint64_t), uint64_t n)
{
	int64_t t0 = bench_now();
	fn(n);
	return (double)(bench_now() - t0) / (double)n;
}

/* Enough iterations for one run to last about b->target_ns. */
static uint64_t calibrate(const struct bench *b, void (*fn)(uint64_t))
{
	uint64_t n = 16;
	for (;;) {
		int64_t t0 = bench_now();
		fn(n);
		int64_t t = bench_now() - t0;
		if (t >= b->target_ns / 4 || n > (1u << 26)) {
			/* at least one: a slow call (fsync) is not 0/0 */
			uint64_t k = t > 0 ? n * (uint64_t)b->target_ns /
						     (uint64_t)t : n;
			return k ? k : 1;
		}
		n *= 4;
	}
}

static void measure(const struct bench *b, const struct pair *p)
{
	double lib[BENCH_MAX_REPS], plain[BENCH_MAX_REPS];
	uint64_t n = calibrate(b, p->plain);
	p->lib(n / 4 + 1); /* warm up */
	for (int r = 0; r < b->reps; r++) {
		lib[r] = ns_per_op(p->lib, n);
		plain[r] = ns_per_op(p->plain, n);
	}
	qsort(lib, (size_t)b->reps, sizeof(double), bench_cmp_dbl);
	qsort(plain, (size_t)b->reps, sizeof(double), bench_cmp_dbl);
	double l = lib[b->reps / 2], q = plain[b->reps / 2];
	printf("%s,%.1f,%.1f,%.3f\n", p->name, l, q, l / q);
	fflush(stdout);
}

static void setup(void)
{
	cx = ctx_with_cancel(ctx_background());
	must(cx != NULL, "ctx_with_cancel");
	must(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
	must(write(pipefd[1], "x", 1) == 1, "write"); /* stays readable */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	must(epfd >= 0, "epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN };
	must(epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev) == 0,
	     "epoll_ctl");
	const char *dir = getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/bench_sys.XXXXXX", dir ? dir : "/tmp");
	filefd = mkstemp(path);
	must(filefd >= 0, "mkstemp");
	must(write(filefd, "data", 4) == 4 && fsync(filefd) == 0, "fsync");
	char path2[64];
	snprintf(path2, sizeof(path2), "%s/bench_sys.XXXXXX",
		 dir ? dir : "/tmp");
	filefd2 = mkstemp(path2);
	must(filefd2 >= 0, "mkstemp");
	unlink(path2);
	must(pipe2(xp, O_CLOEXEC) == 0, "pipe2");
	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) == 0, "socketpair");
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, st) == 0, "socketpair");
	for (int i = 0; i < 4; i++) {
		mm[i].msg_hdr.msg_iov = &four;
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	must(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0, "sigmask");
	/* ppoll's mask: the current one, so that no signal ends a call. */
	pthread_sigmask(SIG_BLOCK, NULL, &unblocked);
}

int main(int argc, char **argv)
{
	struct bench b;
	bench_init(&b, argc, argv);
	setup();
	bench_print_machine("bench_sys");
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# hot path: each row's call finds its thing ready; ns per "
	       "call, median of %d runs of about %.0f ms, the variants "
	       "alternating\n", b.reps, (double)b.target_ns / 1e6);
	printf("# columns: row,libctx_ns,plain_ns,ratio\n");
	static const struct pair pairs[] = {
		{ "ppoll/ready", ppoll_ctx, ppoll_plain },
		{ "epoll_wait/ready", epoll_ctx, epoll_plain },
		{ "sigwait/ready", sigwait_ctx, sigwait_plain },
		{ "flock/free", flock_ctx, flock_plain },
		{ "lock_range/free", range_ctx, range_plain },
		{ "open/file", open_ctx, open_plain },
		{ "open/file-wronly", openw_ctx, openw_plain },
		{ "fsync/clean", fsync_ctx, fsync_plain },
		{ "writev+readv/pipe", rwv_ctx, rwv_plain },
		{ "pread/file", pread_ctx, pread_plain },
		{ "pwrite/file", pwrite_ctx, pwrite_plain },
		{ "preadv/file", preadv_ctx, preadv_plain },
		{ "pwritev/file", pwritev_ctx, pwritev_plain },
		{ "sendto+recvfrom/dgram", dgram_ctx, dgram_plain },
		{ "sendmsg+recvmsg/stream", msg_ctx, msg_plain },
		{ "sendmmsg+recvmmsg/dgram", mmsg_ctx, mmsg_plain },
		{ "sendfile/pipe", sendfile_ctx, sendfile_plain },
		{ "sendfile/socket", sendfile_sock_ctx, sendfile_sock_plain },
		{ "splice/pipe", splice_ctx, splice_plain },
		{ "copy_file_range/file", cfr_ctx, cfr_plain },
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		measure(&b, &pairs[i]);
	close(filefd);
	unlink(path);
	ctx_release(cx);
	return 0;
}
