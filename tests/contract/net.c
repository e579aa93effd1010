/*
 * Contract rows: runtime/net/ -- ctx_getaddrinfo on the helper-thread
 * resolver, whose getaddrinfo hangs until the test lets it go
 * (tests/net/hang.h), and ctx_dial to a listener whose accept queue is
 * full, so that its SYN goes unanswered.
 *
 * Kept means: no result was handed out, and no socket was left open.
 * A dropped SYN is sent again only a second later, so ctx_dial has no
 * CT_LATER.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <unistd.h>

#include "../contract.h"
#include "../io/pair.h"
#include "../net/hang.h"

struct st {
	struct addrinfo *res;
	/* ctx_dial */
	int l, filler, fd, fds;
	struct sockaddr_in addr;
	char address[32];
};

/* ---- ctx_getaddrinfo --------------------------------------------------- */

static void gai_setup(void *v, int arg)
{
	(void)v, (void)arg;
	hang_arm();
}

static int gai_ready(void *v)
{
	(void)v;
	hang_release();
	return 0;
}

static long gai_call(ctx_t *c, void *v)
{
	struct st *s = v;
	struct addrinfo h = { .ai_family = AF_INET,
			      .ai_socktype = SOCK_STREAM };

	s->res = (struct addrinfo *)&s->res; /* must become NULL on failure */
	return ctx_getaddrinfo(c, "localhost", "80", &h, &s->res);
}

/* What getaddrinfo says of localhost: 127.0.0.1, port 80. */
static void gai_check(void *v, long rc)
{
	struct st *s = v;
	bool found = false;

	ck_assert_msg(rc == 0, "localhost: %s", gai_strerror((int)rc));
	for (struct addrinfo *r = s->res; r; r = r->ai_next) {
		struct sockaddr_in *in = (struct sockaddr_in *)r->ai_addr;
		found |= r->ai_family == AF_INET &&
			 in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
			 in->sin_port == htons(80);
	}
	ck_assert(found);
	ctx_freeaddrinfo(s->res);
}

static void gai_kept(void *v)
{
	struct st *s = v;

	ck_assert_ptr_null(s->res);
}

static void gai_teardown(void *v)
{
	(void)v;
	hang_disarm();
}

/* ---- ctx_dial ------------------------------------------------------------ */

/* A listener with backlog 0 whose queue holds the filler's connection:
 * it drops every further SYN. */
static void dial_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	tu_warm_up();
	s->l = tcp_listener(0, &s->addr);
	s->filler = tcp_client(&s->addr);
	ck_assert(readable(s->l, PAIR_LATE_MS));
	snprintf(s->address, sizeof(s->address), "127.0.0.1:%d",
		 ntohs(s->addr.sin_port));
	s->fd = -1;
	s->fds = tu_count_fds();
}

/* Room in the queue. */
static int dial_ready(void *v)
{
	struct st *s = v;
	int a = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);

	if (a < 0)
		return errno;
	close(a);
	return 0;
}

static long dial_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return s->fd = ctx_dial(c, s->address, SOCK_STREAM);
}

/* A connected, blocking, close-on-exec socket. */
static void dial_check(void *v, long rc)
{
	struct st *s = v;
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);

	ck_assert_int_ge(rc, 0);
	ck_assert(!nonblock_flag(s->fd));
	ck_assert(cloexec_flag(s->fd));
	ck_assert_int_eq(getpeername(s->fd, (struct sockaddr *)&peer, &len),
			 0);
	ck_assert_uint_eq(peer.sin_port, s->addr.sin_port);
}

static void dial_kept(void *v)
{
	struct st *s = v;

	ck_assert_int_eq(s->fd, -1);
	/* None left open; fewer is fine: a resolver helper idle since an
	 * earlier test may leave meanwhile with its descriptor (seen under
	 * valgrind, where everything takes longer). */
	ck_assert_int_le(tu_settle_fds(s->fds, CTX_SEC), s->fds);
}

static void dial_teardown(void *v)
{
	struct st *s = v;

	if (s->fd >= 0)
		close(s->fd);
	close(s->filler);
	close(s->l);
}

const struct ct_row ct_rows_net[] = {
	{ .name = "ctx_getaddrinfo on helper threads", .style = CT_EAI,
	  .size = sizeof(struct st), .setup = gai_setup, .ready = gai_ready,
	  .call = gai_call, .check = gai_check, .kept = gai_kept,
	  .teardown = gai_teardown, .flags = CT_NOT_PARTIAL },
	{ .name = "ctx_dial to a listener that drops SYNs", .style = CT_ERRNO,
	  .size = sizeof(struct st), .setup = dial_setup, .ready = dial_ready,
	  .call = dial_call, .check = dial_check, .kept = dial_kept,
	  .teardown = dial_teardown,
	  .flags = CT_NOT(CT_LATER) | CT_NOT_PARTIAL },
	{ .name = NULL },
};
