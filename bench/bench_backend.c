/*
 * bench_backend: what the backend costs where data moves -- echo over a
 * socket pair and over TCP loopback, and reads of a cached regular file --
 * beside the same work done with plain blocking calls.  It measures the
 * backend this process runs (ctx_backend(): CTX_BACKEND=epoll or
 * io_uring); bench/run.sh runs it once per backend and bench/report.py
 * puts the runs side by side, each run holding its own floor.
 *
 *  echo-rtt/<transport>     one round trip of a 64-byte message: the
 *                           client sends it and waits for it back, a
 *                           server thread echoes it.  Both threads on
 *                           one CPU, so every receive blocks and every
 *                           send wakes the other side: the backend's
 *                           wait and wake-up, per message.  p50 and p99
 *                           of each of 10 blocks of round trips, the
 *                           variants' blocks in turn.
 *  echo-stream/<transport>  MB/s of 16 KiB sends echoed back: a writer
 *                           thread sends, the server echoes, a reader
 *                           thread receives and checks every byte.
 *                           Nothing pinned.  Each run is a rep, the
 *                           variants' runs in turn.
 *  hotpath/file             ns per 4 KiB read of a cached regular file,
 *                           read sequentially; passes over the file in
 *                           turn, in 10 blocks.
 *
 * Variants: "libctx" uses ctx_send/ctx_recv/ctx_read on a live
 * cancellable context; "floor" send/recv/read on the same blocking
 * descriptors.  Transports: "socketpair" (AF_UNIX stream) and "tcp"
 * (127.0.0.1, TCP_NODELAY).  Exit status 1, with a message on stderr,
 * when a byte went missing or came back wrong, or a call failed.
 *
 *	bench_backend [--quick]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx.h"
#include "benchutil.h"

#define MSG 64               /* bytes per round trip */
#define CHUNK (16 * 1024)    /* bytes per streaming send */
#define FILE_SIZE (1 << 20)  /* the cached file */
#define FILE_BLOCK 4096      /* bytes per file read */

static ctx_t *live; /* never cancelled: the calls pay for being cancellable */

/* ---- the two ways to move bytes --------------------------------------- */

enum way { LIBCTX, FLOOR };
static const char *const way_name[] = { "libctx", "floor" };

static ssize_t do_send(enum way w, int fd, const void *b, size_t n)
{
	return w == LIBCTX ? ctx_send(live, fd, b, n, MSG_NOSIGNAL) :
			     send(fd, b, n, MSG_NOSIGNAL);
}

static ssize_t do_recv(enum way w, int fd, void *b, size_t n)
{
	return w == LIBCTX ? ctx_recv(live, fd, b, n, 0) : recv(fd, b, n, 0);
}

static void send_all(enum way w, int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t k = do_send(w, fd, b, n);
		if (k <= 0)
			bench_fail("send: %s", k ? strerror(errno) : "0 bytes");
		b += k;
		n -= (size_t)k;
	}
}

/* n bytes, or false at end of stream before the first byte. */
static bool recv_all(enum way w, int fd, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = do_recv(w, fd, b + got, n - got);
		if (k < 0)
			bench_fail("recv: %s", strerror(errno));
		if (k == 0) {
			if (got == 0)
				return false;
			bench_fail("recv: end of stream after %zu of %zu "
				   "bytes", got, n);
		}
		got += (size_t)k;
	}
	return true;
}

/* ---- transports --------------------------------------------------------- */

enum transport { SOCKETPAIR, TCP };
static const char *const transport_name[] = { "socketpair", "tcp" };

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		bench_fail("TCP_NODELAY: %s", strerror(errno));
}

/* A connected pair of blocking stream sockets. */
static void connect_pair(enum transport t, int fd[2])
{
	if (t == TCP && bench_tcp_pair(fd)) {
		nodelay(fd[0]);
		nodelay(fd[1]);
	} else if (t == SOCKETPAIR &&
		   socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd)) {
		bench_fail("socketpair: %s", strerror(errno));
	}
}

/* ---- the server: echo until the client closes ---------------------------- */

struct server {
	enum way way;
	int fd;
	int cpu;   /* -1: not pinned */
	size_t block;
	pthread_t th;
};

static void *server_main(void *p)
{
	struct server *s = p;
	char *buf = malloc(s->block);
	if (!buf)
		bench_fail("out of memory");
	if (s->cpu >= 0)
		bench_pin(s->cpu);
	for (;;) {
		ssize_t k = do_recv(s->way, s->fd, buf, s->block);
		if (k < 0)
			bench_fail("server recv: %s", strerror(errno));
		if (k == 0)
			break;
		send_all(s->way, s->fd, buf, (size_t)k);
	}
	shutdown(s->fd, SHUT_WR); /* the client reads to the end */
	free(buf);
	return NULL;
}

static void server_start(struct server *s)
{
	int e = pthread_create(&s->th, NULL, server_main, s);
	if (e)
		bench_fail("pthread_create: %s", strerror(e));
}

/* ---- echo round trips ------------------------------------------------------ */

/* rounds round trips of 64 bytes into v (a tenth more to warm up). */
static void echo_rtt(enum way w, enum transport t, int rounds, double *v)
{
	char out[MSG], in[MSG];
	int fd[2];
	struct server s = { .way = w, .cpu = cpu_a, .block = MSG };

	connect_pair(t, fd);
	s.fd = fd[1];
	server_start(&s);
	bench_pin(cpu_a);
	for (int i = -rounds / 10; i < rounds; i++) {
		int64_t t0, t1;

		memset(out, 'a' + (i & 15), MSG);
		t0 = bench_now();
		send_all(w, fd[0], out, MSG);
		if (!recv_all(w, fd[0], in, MSG))
			bench_fail("echo: the server closed");
		t1 = bench_now();
		if (memcmp(in, out, MSG))
			bench_fail("echo: a message came back changed");
		if (i >= 0)
			v[i] = (double)(t1 - t0);
	}
	shutdown(fd[0], SHUT_WR);
	pthread_join(s.th, NULL);
	bench_pin(-1);
	close(fd[0]);
	close(fd[1]);
}

/* The variants' blocks of round trips in turn. */
static void bench_echo_rtt(enum transport t, int rounds)
{
	double *v[2] = { bench_alloc((size_t)rounds * sizeof(double)),
			 bench_alloc((size_t)rounds * sizeof(double)) };
	char name[64];

	snprintf(name, sizeof(name), "echo-rtt/%s", transport_name[t]);
	for (int k = 0; k < 10; k++)
		for (int w = 0; w < 2; w++)
			echo_rtt((enum way)w, t, rounds / 10,
				 v[w] + k * (rounds / 10));
	for (int w = 0; w < 2; w++) {
		bench_dist(name, way_name[w], v[w], rounds / 10 * 10, 10, "ns");
		free(v[w]);
	}
}

/* ---- echo streaming -------------------------------------------------------- */

struct writer {
	enum way way;
	int fd;
	size_t total;
	pthread_t th;
};

static char pattern_at(size_t off) { return (char)(off * 31 + off / 4093); }

static void *writer_main(void *p)
{
	struct writer *wr = p;
	char *buf = malloc(CHUNK);
	if (!buf)
		bench_fail("out of memory");
	for (size_t off = 0; off < wr->total; off += CHUNK) {
		for (size_t i = 0; i < CHUNK; i++)
			buf[i] = pattern_at(off + i);
		send_all(wr->way, wr->fd, buf, CHUNK);
	}
	shutdown(wr->fd, SHUT_WR);
	free(buf);
	return NULL;
}

/* MB/s of one run: total bytes out and back, every byte checked. */
static double stream_once(enum way w, enum transport t, size_t total)
{
	int fd[2];
	char *buf = malloc(CHUNK);
	if (!buf)
		bench_fail("out of memory");
	connect_pair(t, fd);
	struct server s = { .way = w, .fd = fd[1], .cpu = -1, .block = CHUNK };
	struct writer wr = { .way = w, .fd = fd[0], .total = total };
	int64_t t0 = bench_now();
	server_start(&s);
	int e = pthread_create(&wr.th, NULL, writer_main, &wr);
	if (e)
		bench_fail("pthread_create: %s", strerror(e));
	size_t got = 0;
	for (;;) {
		ssize_t k = do_recv(w, fd[0], buf, CHUNK);
		if (k < 0)
			bench_fail("stream recv: %s", strerror(errno));
		if (k == 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			if (buf[i] != pattern_at(got + (size_t)i))
				bench_fail("stream: byte %zu came back wrong",
					   got + (size_t)i);
		got += (size_t)k;
	}
	int64_t t1 = bench_now();
	pthread_join(wr.th, NULL);
	pthread_join(s.th, NULL);
	if (got != total)
		bench_fail("stream: %zu of %zu bytes came back", got, total);
	close(fd[0]);
	close(fd[1]);
	free(buf);
	return (double)total / 1e6 / ((double)(t1 - t0) / 1e9);
}

static void bench_echo_stream(enum transport t, int runs, size_t total)
{
	char name[64];

	snprintf(name, sizeof(name), "echo-stream/%s", transport_name[t]);
	for (int w = 0; w < 2; w++)
		stream_once((enum way)w, t, total / 8); /* warm-up */
	for (int i = 0; i < runs; i++)
		for (int w = 0; w < 2; w++)
			bench_row(name, "rate", way_name[w], i + 1,
				  stream_once((enum way)w, t, total), "MB/s");
}

/* ---- a cached regular file ------------------------------------------------- */

static int make_file(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench_backend.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		bench_fail("mkostemp %s: %s", path, strerror(errno));
	unlink(path);
	char *buf = malloc(FILE_SIZE);
	if (!buf)
		bench_fail("out of memory");
	for (size_t i = 0; i < FILE_SIZE; i++)
		buf[i] = pattern_at(i);
	if (write(fd, buf, FILE_SIZE) != FILE_SIZE)
		bench_fail("writing the file: %s", strerror(errno));
	free(buf);
	return fd;
}

/* ns per read of one pass over the file from its start. */
static double file_pass(enum way w, int fd)
{
	char buf[FILE_BLOCK];
	if (lseek(fd, 0, SEEK_SET) != 0)
		bench_fail("lseek: %s", strerror(errno));
	int64_t t0 = bench_now();
	for (size_t off = 0; off < FILE_SIZE; off += FILE_BLOCK) {
		ssize_t k = w == LIBCTX ? ctx_read(live, fd, buf, FILE_BLOCK) :
					  read(fd, buf, FILE_BLOCK);
		if (k != FILE_BLOCK)
			bench_fail("file read at %zu: %zd (%s)", off, k,
				   k < 0 ? strerror(errno) : "short");
		if (buf[0] != pattern_at(off) ||
		    buf[FILE_BLOCK - 1] != pattern_at(off + FILE_BLOCK - 1))
			bench_fail("file read at %zu: wrong bytes", off);
	}
	int64_t t1 = bench_now();
	return (double)(t1 - t0) / (FILE_SIZE / FILE_BLOCK);
}

static void bench_file(int passes)
{
	int fd = make_file();
	double *v[2] = { bench_alloc((size_t)passes * sizeof(double)),
			 bench_alloc((size_t)passes * sizeof(double)) };

	bench_pin(cpu_a);
	for (int i = -2; i < passes; i++) /* two passes to warm up */
		for (int w = 0; w < 2; w++) {
			double ns = file_pass((enum way)w, fd);

			if (i >= 0)
				v[w][i] = ns;
		}
	bench_pin(-1);
	for (int w = 0; w < 2; w++) {
		bench_dist("hotpath/file", way_name[w], v[w], passes, 10, "ns");
		free(v[w]);
	}
	close(fd);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	int rounds, runs;
	size_t total;

	bench_init(argc, argv);
	bench_cpus_init();
	live = ctx_with_cancel(ctx_background());
	if (!live)
		bench_fail("ctx_with_cancel: %s", strerror(errno));
	rounds = B.quick ? 2000 : 40000;
	runs = B.quick ? 2 : 5;
	total = (size_t)(B.quick ? 8 : 128) << 20;
	bench_print_machine("bench_backend: echo and file reads on one "
			    "backend, beside plain blocking calls");
	printf("# libctx backend: %s\n", ctx_backend());
	printf("# echo-rtt: %d round trips of %d bytes, client and server "
	       "on one CPU; echo-stream: %zu MiB in %d KiB sends, echoed, "
	       "every byte checked, nothing pinned, %d runs; hotpath/file: "
	       "%d KiB reads of a cached %d MiB file\n", rounds, MSG,
	       total >> 20, CHUNK / 1024, runs, FILE_BLOCK / 1024,
	       FILE_SIZE >> 20);
	fflush(stdout);
	for (int t = 0; t < 2; t++) {
		bench_echo_rtt((enum transport)t, rounds);
		bench_echo_stream((enum transport)t, runs, total);
	}
	bench_file(B.quick ? 5 : 50);
	ctx_release(live);
	return 0;
}
