/*
 * accept.c: the listener and what happens to a client before its thread
 * serves it.  The accept loop waits under stop (SIGINT, SIGTERM), so a
 * signal ends it at once; each client takes a slot (a token in a channel
 * of --max-conns) and gets a thread of its own under base, not stop, so
 * that a request being handled survives the signal.  When the slots are
 * all taken, the longest-idle keep-alive connection is closed to make
 * room, else the client gets 503 with Retry-After, from a thread of its
 * own (bounded) so that the loop does not wait.  Out of descriptors, a
 * spare one is given up to accept a waiting client and tell it 503.
 * Errors a moment may cure are backed off as Go's net/http does.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"

#define SLOT_WAIT (1000 * CTX_MSEC) /* for an evicted connection to go */
#define MAX_REJECTERS 64            /* threads answering 503 at a time */

/* ---- 503: no room ------------------------------------------------------- */

/* 503 on a socket just accepted, with no waits (over TLS, which needs a
 * handshake first, just the close). */
static void busy_now(int fd)
{
	struct link l = { .fd = fd, .t = srv.io };

	l.t->busy(&l);
	l.t->close(NULL, &l);
	close(fd);
}

/* A thread that answers 503 and lingers until the client has read it. */
static void *reject_conn(ctx_t *ctx, void *arg)
{
	struct link l = { .fd = (int)(intptr_t)arg, .t = srv.io };
	CTX_AUTO ctx_t *w = ctx_with_timeout(ctx, SLOT_WAIT);
	bool ok = w && !send_busy(w, &l);

	l.t->close(w, &l);
	if (ok)
		linger(w, l.fd);
	close(l.fd);
	atomic_fetch_sub(&srv.rejecters, 1);
	ctx_wg_done(srv.conns);
	return NULL;
}

/* No room for fd: answer 503 with Retry-After, on a thread of its own
 * (bounded) so the accept loop does not wait, else at once. */
static void reject(int fd)
{
	ctx_thread_t *t;

	if (atomic_fetch_add(&srv.rejecters, 1) < MAX_REJECTERS) {
		ctx_wg_add(srv.conns, 1);
		if (!ctx_thread_create(&t, srv.base, reject_conn,
				       (void *)(intptr_t)fd)) {
			(void)ctx_thread_detach(t);
			return;
		}
		ctx_wg_done(srv.conns);
	}
	atomic_fetch_sub(&srv.rejecters, 1);
	busy_now(fd);
}

/* ---- slots -------------------------------------------------------------- */

/* A slot for a new connection: a free one, or one an evicted idle
 * keep-alive connection gives back.  0 or an error. */
static int take_slot(void)
{
	char token = 0;

	if (!ctx_chan_try_send(srv.slots, &token))
		return 0;
	if (!evict_idle())
		return EAGAIN;
	CTX_AUTO ctx_t *t = ctx_with_timeout(srv.stop, SLOT_WAIT);
	return t ? ctx_chan_send(t, srv.slots, &token) : errno;
}

/* Give back the connection's slot; the channel holds one token per
 * open connection, so this never waits. */
void release_slot(void)
{
	char token;

	ctx_chan_recv(ctx_background(), srv.slots, &token);
}

/* ---- accepting ---------------------------------------------------------- */

static struct conn *new_conn(int fd, const struct sockaddr_in *sa)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c)
		return NULL;
	c->id = atomic_fetch_add(&srv.next_conn, 1) + 1;
	c->io.fd = fd;
	c->io.t = srv.io;
	inet_ntop(AF_INET, &sa->sin_addr, c->peer, INET_ADDRSTRLEN);
	snprintf(c->peer + strlen(c->peer), 8, ":%u", ntohs(sa->sin_port));
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	/* Each answer is one send: do not hold it back for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

/* Start the thread that serves fd.  Its context is base's child, not
 * stop's: a request being handled survives the signal. */
static int start_conn(int fd, const struct sockaddr_in *sa)
{
	struct conn *c = new_conn(fd, sa);
	ctx_thread_t *t;
	int e;

	if (!c)
		return ENOMEM;
	ctx_t *cctx = ctx_with_value(srv.base, &conn_key, c);
	if (!cctx) {
		e = errno;
		free(c);
		return e;
	}
	ctx_wg_add(srv.conns, 1);
	e = ctx_thread_create(&t, cctx, serve_conn, c);
	ctx_release(cctx); /* the thread holds its own reference */
	if (e) {
		ctx_wg_done(srv.conns);
		free(c);
		return e;
	}
	(void)ctx_thread_detach(t); /* fails only for a NULL handle */
	return 0;
}

/* Errors of accept4 that a moment's pause may cure (Go's net/http backs
 * off on these too): out of descriptors or memory, an aborted client. */
static bool temporary(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM ||
	       e == ECONNABORTED || e == EPROTO || e == EPERM || e == EAGAIN;
}


/* Serve fd, or answer 503 if there is no room for it. */
static void admit(int fd, const struct sockaddr_in *sa)
{
	int e = take_slot();

	if (e) {
		reject(fd);
		return;
	}
	if ((e = start_conn(fd, sa))) {
		release_slot();
		hlog(NULL, "connection thread: %s: 503", strerror(e));
		busy_now(fd);
	}
}

/* Out of descriptors: give up the spare for a moment to accept one
 * waiting client and tell it 503, rather than leave it queued.  Logged
 * once a second at most, with the count. */
static void out_of_files(int e)
{
	static int64_t last;
	static unsigned long times;

	if (srv.spare >= 0) {
		close(srv.spare);
		int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			busy_now(fd);
		srv.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	times++;
	if (ctx_now() - last >= CTX_SEC) {
		hlog(NULL, "accept: %s (%lu times)",
		     e == EMFILE ? "too many open files" :
		     "too many open files in system", times);
		last = ctx_now();
		times = 0;
	}
}

/* Back off, 10 ms doubling to 100 ms, as Go's Serve does.  0, or stop's
 * error when it ends the wait. */
static int back_off(int64_t *backoff)
{
	int e;

	*backoff = *backoff ? *backoff * 2 : 10 * CTX_MSEC;
	if (*backoff > 100 * CTX_MSEC)
		*backoff = 100 * CTX_MSEC;
	if ((e = ctx_sleep(srv.stop, *backoff)) == EMFILE || e == ENFILE) {
		/* No descriptor for a timed wait either. */
		nanosleep(&(struct timespec){ .tv_nsec = (long)*backoff },
			  NULL);
		e = ctx_err(srv.stop);
	}
	return e;
}

/* Accept until stop ends.  Returns stop's error, or a fatal one. */
int accept_loop(void)
{
	int64_t backoff = 0;

	for (;;) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		int fd = ctx_accept(srv.stop, srv.lfd, (struct sockaddr *)&sa,
				    &sl, SOCK_CLOEXEC);
		if (fd >= 0) {
			backoff = 0;
			admit(fd, &sa);
			continue;
		}
		int e = errno;
		if (!temporary(e))
			return e;
		if (e == EMFILE || e == ENFILE)
			out_of_files(e);
		else
			hlog(NULL, "accept: %s; retrying", strerror(e));
		if ((e = back_off(&backoff)))
			return e;
	}
}

/* After stop: the clients the kernel accepted but httpd has not taken
 * get 503 and Connection: close, not a reset when the listener closes. */
void drain_queue(void)
{
	int n = 0, fd;

	while ((fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		reject(fd);
		n++;
	}
	if (n)
		hlog(NULL, "shutting down: answered %d queued connections "
			   "503", n);
}

/* ---- the listener ------------------------------------------------------- */

/* Listen on --addr and --port; port 0 lets the kernel pick one, read back
 * into opt.port for the first line.  0, or -1 with errno. */
int listen_on(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)opt.port),
				  .sin_addr = opt.addr };
	socklen_t sl = sizeof(sa);
	int one = 1;

	srv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0);
	if (srv.lfd < 0 ||
	    setsockopt(srv.lfd, SOL_SOCKET, SO_REUSEADDR, &one,
		       sizeof(one)) < 0 ||
	    bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(srv.lfd, 1024) < 0 ||
	    getsockname(srv.lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	opt.port = ntohs(sa.sin_port);
	return 0;
}
