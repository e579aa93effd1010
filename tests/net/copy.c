/*
 * ctx_copy and ctx_proxy: every byte arrives in order, through a buffer
 * (socket to socket) and through splice (a pipe at either end); max;
 * half-close; the context ending a wait and a copy whose bytes never
 * stop; the idle touch (a slow steady reader keeps an idle context
 * alive, a silent one lets it end); errors; and what a proxied
 * connection costs: one thread, its two sockets and one descriptor.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

/* The byte at offset i of every test stream: a gap or a repeat shows. */
static char pattern(uint64_t i)
{
	return (char)(i * 7 + i / 251);
}

static void fill(char *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(off + i);
}

/* ---- helper threads: a writer and a reader of the pattern ------------ */

struct pump {
	pthread_t t;
	int fd;
	uint64_t len;     /* bytes to write; reader: stop after (0: EOF) */
	size_t chunk;     /* bytes per call */
	int64_t pause;    /* ns between calls */
	int64_t stop_at;  /* reader: go silent at this time (0: never) */
	bool close_after; /* writer: close fd when done */
	uint64_t done;    /* bytes moved */
	bool bad;         /* reader: a byte out of pattern */
};

static void *writer_main(void *arg)
{
	struct pump *p = arg;
	char buf[16384];
	while (p->done < p->len) {
		size_t n = p->len - p->done < p->chunk ? p->len - p->done
						       : p->chunk;
		fill(buf, p->done, n);
		ssize_t w = send(p->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = write(p->fd, buf, n);
		if (w <= 0)
			break;
		p->done += (uint64_t)w;
		if (p->pause)
			tu_sleep_ns(p->pause);
	}
	if (p->close_after)
		close(p->fd);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct pump *p = arg;
	char buf[16384];
	for (;;) {
		if (p->stop_at && ctx_now() >= p->stop_at)
			break;
		ssize_t n = read(p->fd, buf, p->chunk);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			p->bad |= buf[i] != pattern(p->done + (uint64_t)i);
		p->done += (uint64_t)n;
		if (p->len && p->done >= p->len)
			break;
		if (p->pause)
			tu_sleep_ns(p->pause);
	}
	return NULL;
}

static void pump_start(struct pump *p, void *(*fn)(void *))
{
	ck_assert_int_eq(pthread_create(&p->t, NULL, fn, p), 0);
}

static void pump_join(struct pump *p)
{
	pthread_join(p->t, NULL);
}

static void sockpair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
}

/*
 * A stream pair whose sv[1] takes few bytes before a write would wait,
 * so that a writer there waits on a slow reader at sv[0].  A UNIX
 * socket: its writer gets room back as soon as the reader has taken a
 * whole message.  (On the loopback TCP's segments may be 64 KiB, and a
 * receiver opens its window only once a segment's worth is free: a slow
 * reader of a small buffer lets the writer go in bursts far apart, which
 * is TCP's doing, not the copy's.)
 */
static void slow_pair(int sv[2])
{
	int sz = 4096;
	sockpair(sv);
	ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz,
				    sizeof sz), 0);
}

/* ---- ctx_copy ---------------------------------------------------------- */

/* Loop index: 0 socket to socket (buffer), 1 pipe to socket, 2 socket
 * to pipe (splice), 3 pipe to pipe (splice). */
START_TEST(copy_all_bytes)
{
	int in[2], out[2];
	if (_i == 1 || _i == 3)
		ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	else
		sockpair(in);
	if (_i >= 2)
		ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	else
		sockpair(out);
	/* pipe2 gives [read, write]; a socketpair either way round. */
	int src = in[0], feed = in[1], dst = out[1], drain = out[0];
	struct pump w = { .fd = feed, .len = 3 << 20, .chunk = 10000,
			  .close_after = true };
	struct pump r = { .fd = drain, .chunk = 7000 };
	pump_start(&w, writer_main);
	pump_start(&r, reader_main);
	errno = -1;
	ssize_t n = ctx_copy(ctx_background(), dst, src, SIZE_MAX);
	int e = errno;
	close(dst);
	pump_join(&w);
	pump_join(&r);
	ck_assert_int_eq(n, 3 << 20);
	ck_assert_int_eq(e, 0);
	ck_assert_int_eq(r.done, 3 << 20);
	ck_assert(!r.bad);
	close(src), close(drain);
}
END_TEST

/* max stops the copy there, the rest left in src; max 0 moves nothing. */
START_TEST(copy_max)
{
	int in[2], out[2];
	sockpair(in);
	sockpair(out);
	char buf[100];
	fill(buf, 0, sizeof buf);
	ck_assert_int_eq(write(in[1], buf, sizeof buf), (ssize_t)sizeof buf);
	errno = -1;
	ck_assert_int_eq(ctx_copy(ctx_background(), out[1], in[0], 0), 0);
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(ctx_copy(ctx_background(), out[1], in[0], 60), 60);
	ck_assert_int_eq(errno, 0);
	char got[100];
	ck_assert_int_eq(read(out[0], got, sizeof got), 60);
	ck_assert_int_eq(memcmp(got, buf, 60), 0);
	ck_assert_int_eq(recv(in[0], got, sizeof got, MSG_DONTWAIT), 40);
	ck_assert_int_eq(memcmp(got, buf + 60, 40), 0);
	close(in[0]), close(in[1]), close(out[0]), close(out[1]);
}
END_TEST

/* A regular file into a pipe (splice) and into a socket (buffer). */
START_TEST(copy_file)
{
	char path[] = "/tmp/ctx-copy-XXXXXX";
	int f = mkostemp(path, O_CLOEXEC);
	ck_assert_int_ge(f, 0);
	unlink(path);
	static char buf[200000];
	fill(buf, 0, sizeof buf);
	ck_assert_int_eq(write(f, buf, sizeof buf), (ssize_t)sizeof buf);
	int out[2];
	if (_i)
		ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	else
		sockpair(out);
	struct pump r = { .fd = out[0], .chunk = 4096 };
	pump_start(&r, reader_main);
	ck_assert_int_eq(lseek(f, 0, SEEK_SET), 0);
	ssize_t n = ctx_copy(ctx_background(), out[1], f, SIZE_MAX);
	close(out[1]);
	pump_join(&r);
	ck_assert_int_eq(n, (ssize_t)sizeof buf);
	ck_assert_int_eq(r.done, sizeof buf);
	ck_assert(!r.bad);
	close(f), close(out[0]);
}
END_TEST

/* Nothing to copy: the context ends the wait, -1 with its error. */
START_TEST(copy_cancel_wait)
{
	int in[2], out[2];
	sockpair(in);
	sockpair(out);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, 50 * CTX_MSEC);
	ssize_t n = ctx_copy(c, out[1], in[0], SIZE_MAX);
	tu_assert_fail(n, CTX_CANCELED);
	tu_assert_ms(tu_ms_since(t0), 40, 1000);
	tu_canceller_join(&k);
	/* A done context refuses at once, even with bytes there. */
	ck_assert_int_eq(write(in[1], "x", 1), 1);
	tu_assert_fail(ctx_copy(c, out[1], in[0], SIZE_MAX), CTX_CANCELED);
	ctx_release(c);
	close(in[0]), close(in[1]), close(out[0]), close(out[1]);
}
END_TEST

/* Bytes that never stop flowing: the context still ends the copy, which
 * returns what it moved with errno its error. */
START_TEST(copy_cancel_flowing)
{
	int in[2], out[2];
	sockpair(in);
	sockpair(out);
	struct pump w = { .fd = in[1], .len = UINT64_MAX / 2, .chunk = 4096 };
	struct pump r = { .fd = out[0], .chunk = 16384 };
	pump_start(&w, writer_main);
	pump_start(&r, reader_main);
	ctx_t *c = ctx_with_timeout(ctx_background(), 100 * CTX_MSEC);
	int64_t t0 = ctx_now();
	errno = 0;
	ssize_t n = ctx_copy(c, out[1], in[0], SIZE_MAX);
	int e = errno;
	double ms = tu_ms_since(t0);
	ctx_release(c);
	shutdown(in[0], SHUT_RDWR);
	shutdown(out[1], SHUT_RDWR);
	pump_join(&w);
	pump_join(&r);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
	tu_assert_ms(ms, 90, 1500);
	ck_assert(!r.bad);
	close(in[0]), close(in[1]), close(out[0]), close(out[1]);
}
END_TEST

/*
 * The idle touch during a slow write: 256 KiB to a reader that takes
 * 1 KiB every 5 ms through a small socket buffer, so ctx_copy waits on a
 * full send buffer most of the time, under a 300 ms idle context.  Loop
 * 0: the reader keeps reading (2 s or more in all): the copy must
 * finish.  Loop 1: it goes silent after 200 ms: the copy must end about
 * 300 ms later with CTX_DEADLINE_EXCEEDED.
 */
START_TEST(copy_idle_slow_reader)
{
	int in[2], out[2];
	sockpair(in);
	slow_pair(out);
	int64_t t0 = ctx_now();
	struct pump w = { .fd = in[1], .len = 256 << 10, .chunk = 16384,
			  .close_after = true };
	struct pump r = { .fd = out[0], .chunk = 1024,
			  .pause = 5 * CTX_MSEC,
			  .stop_at = _i ? t0 + 200 * CTX_MSEC : 0 };
	pump_start(&w, writer_main);
	pump_start(&r, reader_main);
	ctx_t *c = ctx_with_idle(ctx_background(), 300 * CTX_MSEC);
	errno = 0;
	ssize_t n = ctx_copy(c, out[1], in[0], SIZE_MAX);
	int e = errno;
	double ms = tu_ms_since(t0);
	ctx_release(c);
	close(out[1]);
	pump_join(&r);
	close(in[0]);
	pump_join(&w);
	if (_i == 0) {
		ck_assert_int_eq(n, 256 << 10);
		ck_assert_int_eq(e, 0);
		ck_assert_int_eq(r.done, 256 << 10);
		ck_assert_msg(ms > 600, "the reader was not slow: %.0f ms", ms);
	} else {
		ck_assert_int_lt(n, 256 << 10);
		ck_assert_int_eq(e, CTX_DEADLINE_EXCEEDED);
		tu_assert_ms(ms, 450, 2000);
	}
	ck_assert(!r.bad);
	close(in[1]), close(out[0]);
}
END_TEST

START_TEST(copy_errors)
{
	int sv[2], p[2];
	sockpair(sv);
	tu_assert_fail(ctx_copy(NULL, sv[0], sv[1], SIZE_MAX), EINVAL);
	tu_assert_fail(ctx_copy(ctx_background(), sv[0], -1, SIZE_MAX), EBADF);
	tu_assert_fail(ctx_copy(ctx_background(), 999, sv[1], SIZE_MAX), EBADF);
	/* A pipe whose reader is gone: EPIPE (SIGPIPE ignored here). */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	ck_assert_int_eq(write(sv[0], "abc", 3), 3);
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGPIPE, &ign, &old);
	tu_assert_fail(ctx_copy(ctx_background(), p[1], sv[1], SIZE_MAX),
		       EPIPE);
	sigaction(SIGPIPE, &old, NULL);
	close(p[1]), close(sv[0]), close(sv[1]);
}
END_TEST

/* ---- ctx_proxy -------------------------------------------------------- */

/*
 * A proxied connection: client <-> (a) proxy (b) <-> server, each a
 * socketpair.  The proxy runs on its own thread under ctx.
 */
struct proxied {
	int client, a, b, server;
	ctx_t *ctx;
	pthread_t t;
	int rc;
	uint64_t moved[2];
	bool started;
};

static void *proxy_main(void *arg)
{
	struct proxied *p = arg;
	p->rc = ctx_proxy(p->ctx, p->a, p->b, p->moved);
	return NULL;
}

static void proxied_start(struct proxied *p, ctx_t *ctx)
{
	int c[2], s[2];
	sockpair(c);
	sockpair(s);
	*p = (struct proxied){ .client = c[0], .a = c[1], .b = s[0],
			       .server = s[1], .ctx = ctx, .rc = -1 };
	ck_assert_int_eq(pthread_create(&p->t, NULL, proxy_main, p), 0);
	p->started = true;
}

static void proxied_join(struct proxied *p)
{
	if (p->started)
		pthread_join(p->t, NULL);
	p->started = false;
}

static void proxied_close(struct proxied *p)
{
	close(p->client), close(p->a), close(p->b), close(p->server);
}

/* Both ways at once, with half-close: the client sends 1 MiB and shuts
 * down its write side; the server sees the end of its input only
 * through the proxy's shutdown, while it sends 2 MiB back and closes. */
START_TEST(proxy_both_ways)
{
	struct proxied p;
	proxied_start(&p, ctx_background());
	struct pump cw = { .fd = p.client, .len = 1 << 20, .chunk = 9000 };
	struct pump sr = { .fd = p.server, .chunk = 5000 };
	struct pump sw = { .fd = p.server, .len = 2 << 20, .chunk = 12000 };
	struct pump cr = { .fd = p.client, .chunk = 3000 };
	pump_start(&cw, writer_main);
	pump_start(&sr, reader_main);
	pump_start(&sw, writer_main);
	pump_start(&cr, reader_main);
	pump_join(&cw);
	shutdown(p.client, SHUT_WR);
	pump_join(&sr); /* returns at the end of input: the half-close */
	pump_join(&sw);
	shutdown(p.server, SHUT_WR);
	pump_join(&cr);
	proxied_join(&p);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_int_eq(sr.done, 1 << 20);
	ck_assert_int_eq(cr.done, 2 << 20);
	ck_assert(!sr.bad && !cr.bad);
	ck_assert_int_eq(p.moved[0], 1 << 20);
	ck_assert_int_eq(p.moved[1], 2 << 20);
	/* Neither end was closed by the proxy. */
	ck_assert_int_ge(fcntl(p.a, F_GETFD), 0);
	ck_assert_int_ge(fcntl(p.b, F_GETFD), 0);
	proxied_close(&p);
}
END_TEST

/* A silent connection: a cancel ends the proxy at once, and an idle
 * context ends it after its idle time; moved says nothing moved. */
START_TEST(proxy_cancel_and_idle)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct proxied p;
	proxied_start(&p, c);
	tu_sleep_ns(50 * CTX_MSEC);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	proxied_join(&p);
	tu_assert_ms(tu_ms_since(t0), 0, 500);
	ck_assert_int_eq(p.rc, CTX_CANCELED);
	ck_assert(p.moved[0] == 0 && p.moved[1] == 0);
	proxied_close(&p);
	ctx_release(c);

	t0 = ctx_now();
	c = ctx_with_idle(ctx_background(), 100 * CTX_MSEC);
	proxied_start(&p, c);
	ck_assert_int_eq(write(p.client, "hello", 5), 5);
	char buf[8];
	ck_assert_int_eq(read(p.server, buf, sizeof buf), 5);
	proxied_join(&p);
	tu_assert_ms(tu_ms_since(t0), 90, 1500);
	ck_assert_int_eq(p.rc, CTX_DEADLINE_EXCEEDED);
	ck_assert(p.moved[0] == 5 && p.moved[1] == 0);
	proxied_close(&p);
	ctx_release(c);
}
END_TEST

/* A done context refuses at once, even with bytes ready either way. */
START_TEST(proxy_done_refuses)
{
	int c[2], s[2];
	sockpair(c);
	sockpair(s);
	ck_assert_int_eq(write(c[0], "x", 1), 1);
	ctx_t *k = ctx_with_cancel(ctx_background());
	ctx_cancel(k);
	uint64_t moved[2] = { 7, 7 };
	ck_assert_int_eq(ctx_proxy(k, c[1], s[0], moved), CTX_CANCELED);
	ck_assert(moved[0] == 0 && moved[1] == 0);
	ck_assert_int_eq(recv(c[1], moved, 1, MSG_DONTWAIT), 1);
	ctx_release(k);
	close(c[0]), close(c[1]), close(s[0]), close(s[1]);
}
END_TEST

/* The server streams 128 KiB to a client that reads 512 bytes every
 * 5 ms through a small socket buffer, under a 300 ms idle context: each
 * 32 KiB the proxy reads takes it longer than that to write out, so
 * only the touches of its partial writes keep the context alive.  A
 * slow, steady reader (loop 0) keeps it alive to the end; one that goes
 * silent after 200 ms (loop 1) lets it end about 300 ms later. */
START_TEST(proxy_idle_slow_reader)
{
	int cl[2], sv[2];
	slow_pair(cl); /* cl[1]: the proxy's a, cl[0]: the client */
	sockpair(sv);
	ctx_t *c = ctx_with_idle(ctx_background(), 300 * CTX_MSEC);
	struct proxied p = { .client = cl[0], .a = cl[1], .b = sv[0],
			     .server = sv[1], .ctx = c, .rc = -1 };
	int64_t t0 = ctx_now();
	struct pump sw = { .fd = p.server, .len = 128 << 10, .chunk = 16384,
			   .close_after = true };
	struct pump cr = { .fd = p.client, .chunk = 512,
			   .pause = 5 * CTX_MSEC,
			   .stop_at = _i ? t0 + 200 * CTX_MSEC : 0 };
	/* The client sends nothing: that direction ends at once. */
	ck_assert_int_eq(shutdown(p.client, SHUT_WR), 0);
	ck_assert_int_eq(pthread_create(&p.t, NULL, proxy_main, &p), 0);
	p.started = true;
	pump_start(&sw, writer_main);
	pump_start(&cr, reader_main);
	proxied_join(&p);
	double ms = tu_ms_since(t0);
	/* Whatever still waits on the proxy gives up. */
	shutdown(p.b, SHUT_RDWR);
	pump_join(&sw);
	if (p.rc)
		shutdown(p.client, SHUT_RDWR);
	pump_join(&cr);
	if (_i == 0) {
		ck_assert_int_eq(p.rc, 0);
		ck_assert_int_eq(cr.done, 128 << 10);
		ck_assert_msg(ms > 600, "the reader was not slow: %.0f ms", ms);
	} else {
		ck_assert_int_eq(p.rc, CTX_DEADLINE_EXCEEDED);
		tu_assert_ms(ms, 400, 2500);
	}
	ck_assert(!cr.bad);
	proxied_close(&p);
	ctx_release(c);
}
END_TEST

/* The first I/O error ends both directions: the client goes away while
 * the server has bytes for it. */
START_TEST(proxy_peer_gone)
{
	struct proxied p;
	proxied_start(&p, ctx_background());
	close(p.client);
	p.client = -1;
	static char buf[65536];
	ck_assert_int_eq(write(p.server, buf, sizeof buf), (ssize_t)sizeof buf);
	proxied_join(&p);
	ck_assert_msg(p.rc == EPIPE || p.rc == ECONNRESET, "rc %d (%s)", p.rc,
		      strerror(p.rc));
	proxied_close(&p);
}
END_TEST

START_TEST(proxy_bad_arguments)
{
	int sv[2];
	sockpair(sv);
	uint64_t m[2] = { 1, 1 };
	ck_assert_int_eq(ctx_proxy(NULL, sv[0], sv[1], m), EINVAL);
	ck_assert(m[0] == 0 && m[1] == 0);
	ck_assert_int_eq(ctx_proxy(ctx_background(), sv[0], sv[0], NULL),
			 EINVAL);
	ck_assert_int_eq(ctx_proxy(ctx_background(), -1, sv[0], NULL), EINVAL);
	ck_assert_int_eq(ctx_proxy(ctx_background(), sv[0], 999, m), EBADF);
	close(sv[0]), close(sv[1]);
}
END_TEST

/* The thread's wait descriptors and the library's timer thread, made
 * before counting so that the counts see only the proxies'. */
static void warm_up(void)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), CTX_MSEC);
	ck_assert_int_ge(ctx_done_fd(c), 0);
	ck_assert_int_eq(ctx_wait(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}

/*
 * What a proxied connection costs: 8 connections, each proxied by a
 * thread of its own under an idle context of its own, hold one thread
 * and three descriptors each, their two sockets included; nothing is
 * left once they end.
 */
#define NPROXY 8
START_TEST(proxy_cost)
{
	warm_up();
	int fds0 = tu_count_fds(), threads0 = tu_count_threads();
	struct proxied p[NPROXY];
	ctx_t *root = ctx_with_cancel(ctx_background());
	for (int i = 0; i < NPROXY; i++)
		proxied_start(&p[i], ctx_with_idle(root, 60 * CTX_SEC));
	/* Each proxy moves a byte both ways: it is in its loop. */
	for (int i = 0; i < NPROXY; i++) {
		char x;
		ck_assert_int_eq(write(p[i].client, "c", 1), 1);
		ck_assert_int_eq(read(p[i].server, &x, 1), 1);
		ck_assert_int_eq(write(p[i].server, "s", 1), 1);
		ck_assert_int_eq(read(p[i].client, &x, 1), 1);
	}
	int fds = tu_count_fds() - fds0;
	int threads = tu_count_threads() - threads0;
	ctx_cancel(root);
	for (int i = 0; i < NPROXY; i++) {
		proxied_join(&p[i]);
		ck_assert_int_eq(p[i].rc, CTX_CANCELED);
		proxied_close(&p[i]);
		ctx_release(p[i].ctx);
	}
	ctx_release(root);
	/* Two socketpairs per connection: the client's and the server's
	 * ends are the test's, a and b the proxy's. */
	ck_assert_int_eq(fds - 2 * NPROXY, 3 * NPROXY);
#ifndef TU_TSAN
	ck_assert_int_eq(threads, NPROXY);
#else
	(void)threads; /* no thread counts under TSan: see testutil.h */
#endif
	ck_assert_int_eq(tu_settle_fds(fds0, CTX_SEC), fds0);
}
END_TEST

/* Out of descriptors, the context's descriptor cannot be made: the
 * proxy waits on the thread's own, which it already has, and still
 * moves every byte. */
START_TEST(proxy_out_of_fds)
{
	warm_up();
	int c[2], s[2];
	sockpair(c);
	sockpair(s);
	ctx_t *k = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	ck_assert_int_eq(write(c[0], "ping", 4), 4);
	ck_assert_int_eq(shutdown(c[0], SHUT_WR), 0);
	ck_assert_int_eq(write(s[1], "pong!", 5), 5);
	ck_assert_int_eq(shutdown(s[1], SHUT_WR), 0);
	struct rlimit old, low;
	int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(lowest);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	uint64_t m[2];
	int rc = ctx_proxy(k, c[1], s[0], m);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(ctx_done_fd(k) >= 0, 1); /* it could not before */
	ck_assert_int_eq(rc, 0);
	ck_assert(m[0] == 4 && m[1] == 5);
	char buf[8];
	ck_assert_int_eq(read(s[1], buf, sizeof buf), 4);
	ck_assert_int_eq(read(c[0], buf, sizeof buf), 5);
	ctx_release(k);
	close(c[0]), close(c[1]), close(s[0]), close(s[1]);
}
END_TEST

Suite *suite_copy(void)
{
	Suite *s = suite_create("copy");
	TCase *tc = tu_tcase(s, "copy", 20);
	tcase_add_loop_test(tc, copy_all_bytes, 0, 4);
	tcase_add_test(tc, copy_max);
	tcase_add_loop_test(tc, copy_file, 0, 2);
	tcase_add_test(tc, copy_cancel_wait);
	tcase_add_test(tc, copy_cancel_flowing);
	tcase_add_loop_test(tc, copy_idle_slow_reader, 0, 2);
	tcase_add_test(tc, copy_errors);
	return s;
}

Suite *suite_proxy(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tu_tcase(s, "proxy", 20);
	tcase_add_test(tc, proxy_both_ways);
	tcase_add_test(tc, proxy_cancel_and_idle);
	tcase_add_test(tc, proxy_done_refuses);
	tcase_add_loop_test(tc, proxy_idle_slow_reader, 0, 2);
	tcase_add_test(tc, proxy_peer_gone);
	tcase_add_test(tc, proxy_bad_arguments);
	tcase_add_test(tc, proxy_cost);
	tcase_add_test(tc, proxy_out_of_fds);
	return s;
}
