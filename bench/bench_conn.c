/*
 * bench_conn: connections (issue 24), on the loopback interface.
 *
 *   conn/relay      MB/s of 1 GiB (64 MiB with --quick) from a client
 *                   through a relay to a sink that reads it all, then
 *                   closes (the half-close passed back ends the client's
 *                   read): the time from the connect to that end.  The
 *                   relays, in turn, each turn a rep:
 *                     libctx  examples/tcpproxy (ctx_proxy: one thread,
 *                             a 32 KiB buffer each way), a process of
 *                             its own
 *                     plain   a blocking read/write relay written here:
 *                             a thread per direction, 32 KiB buffers
 *                     splice  a splice relay written here: a thread and
 *                             a pipe per direction
 *   conn/cost       descriptors and threads per proxied connection: 16
 *                   idle connections held through each relay, each
 *                   checked end to end with a byte; the relay's count
 *                   with them less its count before, over 16 (for the
 *                   relays of this process, less the client's and the
 *                   holder's sockets); a round of each relay per rep.
 *   conn/read_line  ns per 64-byte line: ctx_conn_read_line (libctx)
 *                   beside read(2) into a 4 KiB buffer, memchr and a
 *                   copy out (plain), each from its own socket pair that
 *                   a thread of its own keeps full.
 *
 * Each checks what it timed: every byte at the sink, in order (one byte
 * in 4096 compared), every connection carrying its byte, every line 64
 * bytes ending in '\n'.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <ctx.h>
#include "benchutil.h"

#define RELAY_BUF (32 << 10)
#define NCOST 16
#define LINE 64

static const char *const relays[] = { "libctx", "plain", "splice" };

static void die(const char *what)
{
	bench_fail("bench_conn: %s: %s", what, strerror(errno));
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 4099);
}

static int tcp_listener(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, len) ||
	    listen(l, 1024) || getsockname(l, (struct sockaddr *)&sa, &len))
		die("listener");
	*port = ntohs(sa.sin_port);
	return l;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa))
		die("connect");
	return fd;
}

static int count_dir(pid_t pid, const char *what)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		die(path);
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2 - (pid == getpid() && !strcmp(what, "fd"));
}

/* ---- the sink: reads each connection to its end, then closes --------- */

struct sink {
	int l, port;
	pthread_t t;
	_Atomic uint64_t got;  /* bytes of the last connection */
	_Atomic bool bad;      /* a byte out of pattern */
};

static void sink_one(struct sink *s, int fd, char *buf, size_t len)
{
	uint64_t off = 0;
	ssize_t n;
	while ((n = read(fd, buf, len)) > 0) {
		for (uint64_t k = (4096 - off % 4096) % 4096; k < (uint64_t)n;
		     k += 4096)
			if ((uint8_t)buf[k] !=
			    pattern((off + k) & ((1 << 20) - 1)))
				s->bad = true;
		off += (uint64_t)n;
	}
	s->got = off;
	close(fd);
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	size_t len = 256 << 10;
	char *buf = bench_alloc(len);
	int fd;
	while ((fd = accept4(s->l, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		sink_one(s, fd, buf, len);
	free(buf);
	return NULL;
}

/* ---- the relays written here ------------------------------------------ */

struct relay {
	int l, port, upstream;
	bool splice;
	pthread_t t;
};

struct dir {
	int src, dst;
	bool splice;
	_Atomic int *left; /* directions still going; the last closes */
	int other;
};

static void dir_end(struct dir *d)
{
	shutdown(d->dst, SHUT_WR);
	if (atomic_fetch_sub(d->left, 1) == 1) {
		close(d->src);
		close(d->dst);
		free(d->left);
	}
	free(d);
}

static void copy_rw(int src, int dst)
{
	char *buf = bench_alloc(RELAY_BUF);
	ssize_t n;
	while ((n = read(src, buf, RELAY_BUF)) > 0)
		for (ssize_t w, off = 0; off < n; off += w)
			if ((w = send(dst, buf + off, (size_t)(n - off),
				      MSG_NOSIGNAL)) <= 0)
				goto out;
out:
	free(buf);
}

static void copy_splice(int src, int dst)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		die("pipe2");
	ssize_t n;
	while ((n = splice(src, NULL, p[1], NULL, 1 << 20,
			   SPLICE_F_MOVE)) > 0)
		for (ssize_t w; n > 0; n -= w)
			if ((w = splice(p[0], NULL, dst, NULL, (size_t)n,
					SPLICE_F_MOVE)) <= 0)
				goto out;
out:
	close(p[0]);
	close(p[1]);
}

static void *dir_main(void *arg)
{
	struct dir *d = arg;
	if (d->splice)
		copy_splice(d->src, d->dst);
	else
		copy_rw(d->src, d->dst);
	dir_end(d);
	return NULL;
}

static void start_dir(int src, int dst, bool splice, _Atomic int *left)
{
	struct dir *d = bench_alloc(sizeof *d);
	*d = (struct dir){ .src = src, .dst = dst, .splice = splice,
			   .left = left };
	pthread_t t;
	if (pthread_create(&t, NULL, dir_main, d))
		die("pthread_create");
	pthread_detach(t);
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	int c;
	while ((c = accept4(r->l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		int u = tcp_connect(r->upstream);
		_Atomic int *left = bench_alloc(sizeof *left);
		*left = 2;
		start_dir(c, u, r->splice, left);
		start_dir(u, c, r->splice, left);
	}
	return NULL;
}

static void relay_start(struct relay *r, int upstream, bool splice)
{
	*r = (struct relay){ .upstream = upstream, .splice = splice };
	r->l = tcp_listener(&r->port);
	if (pthread_create(&r->t, NULL, relay_main, r))
		die("pthread_create");
}

static void relay_stop(struct relay *r)
{
	shutdown(r->l, SHUT_RDWR);
	pthread_join(r->t, NULL);
	close(r->l);
}

/* ---- examples/tcpproxy, a process of its own ------------------------- */

struct proxy {
	pid_t pid;
	int port;
};

static void proxy_exec(int out, const char *path, int upstream)
{
	char up[32];
	snprintf(up, sizeof up, "127.0.0.1:%d", upstream);
	int null = open("/dev/null", O_WRONLY);
	/* It goes with this program, however this one ends. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	dup2(out, 1);
	dup2(null, 2);
	execl(path, path, "-i", "300", "127.0.0.1:0", up, (char *)NULL);
	_exit(127);
}

/* examples/tcpproxy beside this program's directory, to upstream. */
static void proxy_start(struct proxy *p, int upstream)
{
	char exe[PATH_MAX], path[PATH_MAX + 32], line[64] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	int fds[2];
	if (n < 0 || pipe2(fds, O_CLOEXEC))
		die("readlink or pipe");
	exe[n] = '\0';
	snprintf(path, sizeof path, "%s/../examples/tcpproxy",
		 dirname(exe));
	if ((p->pid = fork()) == 0)
		proxy_exec(fds[1], path, upstream);
	close(fds[1]);
	FILE *f = fdopen(fds[0], "r");
	if (p->pid < 0 || !f || !fgets(line, sizeof line, f) ||
	    sscanf(line, "listening on %d", &p->port) != 1)
		bench_fail("bench_conn: %s did not start", path);
	fclose(f);
}

static void proxy_stop(struct proxy *p)
{
	kill(p->pid, SIGTERM);
	bench_nap_ns(50 * 1000000);
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
}

/* ---- conn/relay ---------------------------------------------------- */

/* One transfer of len bytes through port: ns. */
static int64_t transfer(int port, struct sink *s, const char *block,
			uint64_t len)
{
	int64_t t0 = bench_now();
	int fd = tcp_connect(port);
	for (uint64_t off = 0; off < len;) {
		size_t n = len - off < (1 << 20) ? len - off : (1 << 20);
		ssize_t w = send(fd, block + off % (1 << 20), n, MSG_NOSIGNAL);
		if (w <= 0)
			die("send");
		off += (uint64_t)w;
	}
	shutdown(fd, SHUT_WR);
	char c;
	if (read(fd, &c, 1) != 0) /* the sink's close, passed back */
		die("the relay's end");
	int64_t ns = bench_now() - t0;
	close(fd);
	if (s->got != len || s->bad)
		bench_fail("bench_conn: the sink got %llu of %llu bytes%s",
			   (unsigned long long)s->got, (unsigned long long)len,
			   s->bad ? ", some out of order" : "");
	return ns;
}

static void relay_rows(const int port[3], struct sink *s)
{
	uint64_t len = B.quick ? (64 << 20) : (1ull << 30);
	char *block = bench_alloc((2 << 20));
	for (uint64_t i = 0; i < (2 << 20); i++) /* the pattern from 0 */
		block[i] = (char)pattern(i % (1 << 20));
	printf("# conn/relay: %llu MiB per transfer\n",
	       (unsigned long long)(len >> 20));
	for (int r = 1; r <= B.reps; r++)
		for (int i = 0; i < 3; i++) {
			s->got = 0;
			int64_t ns = transfer(port[i], s, block, len);
			bench_row("conn/relay", "rate", relays[i], r,
				  (double)len / 1e6 / ((double)ns / 1e9),
				  "MB/s");
		}
	free(block);
}

/* ---- conn/cost ------------------------------------------------------ */

/* A holder: accepts NCOST connections and reads each one's byte. */
struct holder {
	int l, port, fds[NCOST];
};

static void hold(struct holder *h, int port, int clients[NCOST])
{
	for (int i = 0; i < NCOST; i++) {
		char c = 'x';
		clients[i] = tcp_connect(port);
		if (write(clients[i], &c, 1) != 1 ||
		    (h->fds[i] = accept4(h->l, NULL, NULL, SOCK_CLOEXEC)) < 0 ||
		    read(h->fds[i], &c, 1) != 1 || c != 'x')
			die("a held connection");
	}
}

static void unhold(struct holder *h, int clients[NCOST])
{
	for (int i = 0; i < NCOST; i++) {
		close(clients[i]);
		close(h->fds[i]);
	}
}

/* Threads of pid once the count holds still for 50 ms (tcpproxy's
 * dialling threads end just after they hand over); within 2 s. */
static int settled_threads(pid_t pid)
{
	int n = count_dir(pid, "task"), same = 0;
	for (int i = 0; i < 200 && same < 5; i++) {
		bench_nap_ns(10 * 1000000);
		int m = count_dir(pid, "task");
		same = m == n ? same + 1 : 0;
		n = m;
	}
	return n;
}

/* The cost of one relay: its process (pid), and the descriptors of
 * this process's own per connection to subtract (2: the client's and
 * the holder's, when the relay is in this process). */
static void cost_row(const char *impl, pid_t pid, int port,
		     struct holder *h, int own, int rep)
{
	int clients[NCOST];
	int fds0 = count_dir(pid, "fd"), th0 = count_dir(pid, "task");
	hold(h, port, clients);
	int th = settled_threads(pid);
	int fds = count_dir(pid, "fd");
	unhold(h, clients);
	bench_row("conn/cost", "fds", impl, rep,
		  (double)(fds - fds0) / NCOST - own, "fds");
	bench_row("conn/cost", "threads", impl, rep,
		  (double)(th - th0) / NCOST, "threads");
	bench_nap_ns(200 * 1000000); /* the relay's connections end */
}

static void cost_rows(struct proxy *p, struct relay *rw, struct relay *sp,
		      struct holder *h)
{
	/* One connection first, so that what tcpproxy makes once (its
	 * timer thread, its wait descriptors) is in the count before. */
	int clients[NCOST];
	struct holder one = *h;
	hold(&one, p->port, clients);
	unhold(&one, clients);
	bench_nap_ns(200 * 1000000);
	for (int r = 1; r <= B.reps; r++) {
		cost_row("libctx", p->pid, p->port, h, 0, r);
		cost_row("plain", getpid(), rw->port, h, 2, r);
		cost_row("splice", getpid(), sp->port, h, 2, r);
	}
}

/* ---- conn/read_line --------------------------------------------------- */

/* A socket pair kept full of 64-byte lines by a thread of its own. */
struct lines {
	int sv[2];
	pthread_t t;
	ctx_conn_t *conn;       /* libctx's reader */
	char buf[4096];         /* plain's reader: bytes [off, off + len) */
	size_t off, len;
};

/* 1024 lines of 64 bytes, the stream the feeders repeat. */
static char block[LINE * 1024];

static void *feed_main(void *arg)
{
	struct lines *l = arg;
	for (size_t off = 0;;) {
		ssize_t n = send(l->sv[1], block + off, sizeof block - off,
				 MSG_NOSIGNAL);
		if (n <= 0)
			return NULL;
		off = (off + (size_t)n) % sizeof block;
	}
}

/* plain: read(2), memchr, copy out. */
static ssize_t plain_line(struct lines *l, char *out, size_t cap)
{
	for (;;) {
		char *nl = memchr(l->buf + l->off, '\n', l->len);
		if (nl) {
			size_t n = (size_t)(nl - (l->buf + l->off)) + 1;
			n = n < cap ? n : cap - 1;
			memcpy(out, l->buf + l->off, n);
			out[n] = '\0';
			l->off += n;
			l->len -= n;
			return (ssize_t)n;
		}
		memmove(l->buf, l->buf + l->off, l->len);
		l->off = 0;
		ssize_t r = read(l->sv[0], l->buf + l->len,
				 sizeof l->buf - l->len);
		if (r <= 0)
			return r;
		l->len += (size_t)r;
	}
}

static void line_fn(void *arg, int impl, int tid, uint64_t n)
{
	struct lines *l = (struct lines *)arg + impl;
	char line[256];
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		ssize_t r = impl == 0 ?
			ctx_conn_read_line(ctx_background(), l->conn, line,
					   sizeof line) :
			plain_line(l, line, sizeof line);
		if (r != LINE || line[LINE - 1] != '\n')
			bench_fail("bench_conn: a line of %zd bytes", r);
	}
}

static void line_rows(void)
{
	static struct lines l[2];
	for (int i = 0; i < 1024; i++)
		snprintf(block + i * LINE, LINE + 1, "%-*d\n", LINE - 1, i);
	for (int i = 0; i < 2; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
			       l[i].sv) ||
		    pthread_create(&l[i].t, NULL, feed_main, &l[i]))
			die("socketpair");
	}
	if (!(l[0].conn = ctx_conn_new(l[0].sv[0])))
		die("ctx_conn_new");
	bench_measure(&(struct bench_spec){ .scenario = "conn/read_line",
		.names = (const char *const[]){ "libctx", "plain" },
		.nimpls = 2, .fn = line_fn, .arg = l, .unit = "ns/line" });
	for (int i = 0; i < 2; i++) {
		shutdown(l[i].sv[1], SHUT_RDWR);
		pthread_join(l[i].t, NULL);
		close(l[i].sv[1]);
	}
	ctx_conn_close(l[0].conn);
	close(l[1].sv[0]);
}

/* ---- the run ------------------------------------------------------------ */

static void relays_and_costs(void)
{
	struct sink s = { 0 };
	struct holder h;
	struct proxy p, hp;
	struct relay rw, sp, hrw, hsp;
	s.l = tcp_listener(&s.port);
	h.l = tcp_listener(&h.port);
	if (pthread_create(&s.t, NULL, sink_main, &s))
		die("pthread_create");
	proxy_start(&p, s.port);
	relay_start(&rw, s.port, false);
	relay_start(&sp, s.port, true);
	if (bench_wanted("conn/relay"))
		relay_rows((const int[3]){ p.port, rw.port, sp.port }, &s);
	proxy_start(&hp, h.port);
	relay_start(&hrw, h.port, false);
	relay_start(&hsp, h.port, true);
	if (bench_wanted("conn/cost"))
		cost_rows(&hp, &hrw, &hsp, &h);
	proxy_stop(&p);
	proxy_stop(&hp);
	relay_stop(&rw), relay_stop(&sp), relay_stop(&hrw), relay_stop(&hsp);
	shutdown(s.l, SHUT_RDWR);
	pthread_join(s.t, NULL);
	close(s.l), close(h.l);
}

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_print_machine("bench_conn: connections: tcpproxy beside plain "
			    "relays; ctx_conn_read_line beside read(2)");
	printf("# libctx backend: %s\n", ctx_backend());
	signal(SIGPIPE, SIG_IGN);
	relays_and_costs();
	if (bench_wanted("conn/read_line"))
		line_rows();
	return 0;
}
