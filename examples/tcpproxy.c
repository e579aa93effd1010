/*
 * tcpproxy: a TCP proxy in which every wait is a libctx wait.
 *
 *   tcpproxy [-c CONNECT_S] [-i IDLE_S] [-g GRACE_S] LISTEN UPSTREAM
 *
 * LISTEN and UPSTREAM are "host:port" (":port" listens on every address;
 * port 0 picks a free one).  The port it listens on is the first line of
 * stdout ("listening on PORT"); one line per connection goes to stderr.
 * Each client gets UPSTREAM dialled within -c seconds (default 10), then
 * its bytes go both ways until both sides are done (a side's end is
 * passed on as a half-close) or nothing has moved for -i seconds
 * (default 300; a slow reader that keeps taking bytes is not idle).
 * SIGINT or SIGTERM stops accepting and lets connections finish for -g
 * seconds (default 10); a second signal, or the end of the grace, cuts
 * them.  Exit status 0 after a stop, 1 when it could not start, 2 for
 * bad arguments.
 *
 * The contexts:
 *
 *	background
 *	 |- stop      ctx_with_signals(SIGINT, SIGTERM): ends the accepts
 *	 `- base      cancelled at the end of the grace, or a second signal
 *	     `- connect  -c: the dial
 *	     `- idle     ctx_with_idle(-i): the proxied connection
 *
 * What a connection costs: one thread, its two sockets and its idle
 * context's descriptor (ctx_proxy waits on that one, not on the thread's
 * own).  That is why each client is dialled on a short-lived thread and
 * proxied on another: a thread's first wait under a deadline (the dial's)
 * gives it two descriptors of its own for the rest of its life, five per
 * connection in all.  A new connection holds, until its proxy has its
 * context's descriptor, the one "dial slot": the client's socket, the
 * upstream's and the dialling thread's two are four descriptors at once,
 * and under a tight limit every dial more in flight is a connection
 * fewer (ulimit -n 128: 40 connections with one slot, 39 with two).  The
 * accept loop takes the slot before it accepts, so clients wait in the
 * listen queue rather than as accepted sockets nobody serves; the price
 * is that dials are made one at a time.  Out of descriptors, everything
 * backs off and tries again, as Go's net/http does in its accept loop
 * (5 ms doubling to 1 s): the accept, the dial (within -c) and the proxy's
 * first descriptor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ctx.h>

#define FINAL_WAIT (500 * CTX_MSEC) /* for cut connections to end */

static struct {
	int64_t connect, idle, grace;
	const char *listen, *upstream;
	ctx_t *base;        /* every connection hangs under it */
	ctx_wg_t *conns;    /* the connections' threads */
	ctx_sem_t *slot;    /* the dial slot (see above) */
	long next_id;       /* the accept loop's alone */
} P = { .connect = 10 * CTX_SEC, .idle = 300 * CTX_SEC,
	.grace = 10 * CTX_SEC };

/* One client: its socket, then the upstream's. */
struct conn {
	long id;
	int client, up;
};

/* Why a proxied connection ended, in words. */
static const char *why(int rc)
{
	if (rc == 0)
		return "both sides done";
	if (ctx_err(P.base))
		return ctx_cause_msg(P.base);
	return rc == CTX_DEADLINE_EXCEEDED ? "idle" : strerror(rc);
}

/* Out of descriptors or memory: a moment may cure it. */
static bool temporary(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM ||
	       e == ECONNABORTED || e == EPERM || e == EPROTO;
}

/* Go's net/http back-off: 5 ms, doubling, at most 1 s; 0, or ctx's
 * error once it ends.  A sleep that cannot get its timer (out of
 * descriptors itself) sleeps without the context. */
static int back_off(ctx_t *ctx, int64_t *delay)
{
	*delay = *delay ? *delay * 2 : 5 * CTX_MSEC;
	if (*delay > CTX_SEC)
		*delay = CTX_SEC;
	int r = ctx_sleep(ctx, *delay);
	if (r == EMFILE || r == ENFILE) {
		struct timespec ts = { (time_t)(*delay / CTX_SEC),
				       (long)(*delay % CTX_SEC) };
		nanosleep(&ts, NULL);
		r = ctx_err(ctx);
	}
	return r;
}

/* The descriptor ctx_proxy waits on, made now: out of descriptors (the
 * dialling thread may not have let its own go yet), wait for one, so
 * that the proxy need not fail part-way.  0 or an error. */
static int done_fd(ctx_t *idle)
{
	int64_t delay = 0;
	int e = 0;
	while (ctx_done_fd(idle) < 0 && (errno == EMFILE || errno == ENFILE))
		if ((e = back_off(idle, &delay)))
			break;
	return e;
}

static void *proxy_main(ctx_t *ctx, void *arg)
{
	struct conn *c = arg;
	uint64_t moved[2] = { 0, 0 };
	ctx_t *idle = ctx_with_idle(ctx, P.idle);
	int rc = !idle ? errno : done_fd(idle);
	ctx_sem_release(P.slot, 1);
	if (!rc)
		rc = ctx_proxy(idle, c->client, c->up, moved);
	fprintf(stderr, "conn %ld: closed: %llu bytes up, %llu down: %s\n",
		c->id, (unsigned long long)moved[0],
		(unsigned long long)moved[1], why(rc));
	ctx_release(idle);
	close(c->client);
	close(c->up);
	free(c);
	ctx_wg_done(P.conns);
	return NULL;
}

/* Starts fn(c) on a detached thread under base: 0 or an error. */
static int spawn(void *(*fn)(ctx_t *, void *), struct conn *c)
{
	ctx_thread_t *t;
	int e = ctx_thread_create(&t, P.base, fn, c);
	if (!e)
		ctx_thread_detach(t);
	return e;
}

/* UPSTREAM within -c, trying again while out of descriptors: the
 * socket, or -1 with errno. */
static int dial(ctx_t *ctx)
{
	int64_t delay = 0;
	ctx_t *dc = ctx_with_timeout(ctx, P.connect);
	int fd = -1, e = dc ? 0 : errno;
	while (dc && (fd = ctx_dial(dc, P.upstream, SOCK_STREAM)) < 0) {
		e = errno;
		if (!temporary(e) || back_off(dc, &delay))
			break;
	}
	ctx_release(dc);
	errno = e;
	return fd;
}

/* The dial, on a thread of its own (see the top of the file), which
 * hands the connection to a new thread and ends. */
static void *dial_main(ctx_t *ctx, void *arg)
{
	struct conn *c = arg;
	c->up = dial(ctx);
	int e = c->up < 0 ? errno : 0;
	if (!e && !(e = spawn(proxy_main, c)))
		return NULL; /* the proxy's thread lets the slot go */
	ctx_sem_release(P.slot, 1);
	fprintf(stderr, "conn %ld: %s: %s\n", c->id,
		c->up < 0 ? "upstream" : "thread", ctx_strerror(e));
	if (c->up >= 0)
		close(c->up);
	close(c->client);
	free(c);
	ctx_wg_done(P.conns);
	return NULL;
}

static void serve(int fd)
{
	struct conn *c = malloc(sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	*c = (struct conn){ .id = ++P.next_id, .client = fd, .up = -1 };
	ctx_wg_add(P.conns, 1);
	int e = spawn(dial_main, c);
	if (e) {
		fprintf(stderr, "conn %ld: thread: %s\n", c->id, strerror(e));
		ctx_sem_release(P.slot, 1);
		close(fd);
		free(c);
		ctx_wg_done(P.conns);
	}
}

/* Accept until stop ends (its error) or an error nothing cures; each
 * client first waits for the dial slot. */
static int accept_loop(ctx_t *stop, int l)
{
	int64_t delay = 0;
	int e;
	while (!(e = ctx_sem_acquire(stop, P.slot, 1))) {
		int fd = ctx_accept(stop, l, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			delay = 0;
			serve(fd);
			continue;
		}
		ctx_sem_release(P.slot, 1);
		if (!temporary(e = errno))
			return e;
		if (delay == 0 || delay == CTX_SEC)
			fprintf(stderr, "accept: %s; retrying\n", strerror(e));
		if ((e = back_off(stop, &delay)))
			return e;
	}
	return e;
}

static ctx_t *on_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	return ctx_with_signals(ctx_background(), &set);
}

/* Let the connections finish for the grace, unless `again` (a second
 * signal) ends it first; then cut them. */
static void drain(ctx_t *again)
{
	fprintf(stderr, "stopping: no longer accepting; %.1f s of grace for "
		"the connections\n", (double)P.grace / CTX_SEC);
	ctx_t *grace = again ? ctx_with_timeout(again, P.grace) : NULL;
	int e = grace ? ctx_wg_wait(grace, P.conns) : ENOMEM;
	if (e) {
		bool sig = grace && ctx_signo(grace);
		ctx_cancel_msg(P.base, CTX_CANCELED, sig ? "cut by a second "
			       "signal" : "cut at the end of the grace");
		ctx_t *last = ctx_with_timeout(ctx_background(), FINAL_WAIT);
		if (!last || ctx_wg_wait(last, P.conns))
			fprintf(stderr, "connections still open; exiting\n");
		ctx_release(last);
	}
	ctx_release(grace);
}

static int usage(void)
{
	fprintf(stderr, "usage: tcpproxy [-c CONNECT_S] [-i IDLE_S] "
		"[-g GRACE_S] LISTEN UPSTREAM\n");
	return 2;
}

/* A whole argument as seconds in (0, 1e6], in ns; -1 if it is not. */
static int64_t seconds(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !(v > 0 && v <= 1e6))
		return -1;
	return (int64_t)(v * CTX_SEC);
}

static int parse(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "c:i:g:")) != -1) {
		int64_t *to = opt == 'c' ? &P.connect : opt == 'i' ? &P.idle :
			      opt == 'g' ? &P.grace : NULL;
		if (!to || (*to = seconds(optarg)) < 0)
			return -1;
	}
	if (argc - optind != 2)
		return -1;
	P.listen = argv[optind];
	P.upstream = argv[optind + 1];
	return 0;
}

/* The listener and its port on stdout: the socket, or -1. */
static int start(ctx_t *stop)
{
	int l = ctx_listen(stop, P.listen, SOCK_STREAM, -1);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (l < 0 || getsockname(l, (struct sockaddr *)&ss, &len) < 0) {
		fprintf(stderr, "tcpproxy: listen %s: %s\n", P.listen,
			ctx_strerror(errno));
		return -1;
	}
	int port = ntohs(ss.ss_family == AF_INET6 ?
			 ((struct sockaddr_in6 *)&ss)->sin6_port :
			 ((struct sockaddr_in *)&ss)->sin_port);
	printf("listening on %d\n", port);
	fflush(stdout);
	return l;
}

int main(int argc, char **argv)
{
	if (parse(argc, argv) < 0)
		return usage();
	ctx_t *stop = on_signals();
	P.base = ctx_with_cancel(ctx_background());
	P.conns = ctx_wg_new();
	P.slot = ctx_sem_new(1);
	int l = stop && P.base && P.conns && P.slot ? start(stop) : -1;
	if (l < 0) {
		ctx_release(stop);
		ctx_release(P.base);
		ctx_wg_free(P.conns);
		ctx_sem_free(P.slot);
		return 1;
	}
	int e = accept_loop(stop, l);
	ctx_t *again = on_signals(); /* at once: a second signal cuts */
	close(l);
	if (e != CTX_CANCELED)
		fprintf(stderr, "accept: %s\n", strerror(e));
	drain(again);
	ctx_release(again);
	ctx_release(stop);
	ctx_release(P.base);
	ctx_wg_free(P.conns);
	ctx_sem_free(P.slot);
	return e == CTX_CANCELED ? 0 : 1;
}
