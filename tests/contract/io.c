/*
 * Contract rows: the waits of runtime/io/ that are not one descriptor's
 * transfer -- ctx_wait, ctx_sleep, ctx_sleep_until, ctx_poll (one entry,
 * and around and beyond the 16 the library keeps on its stack),
 * ctx_ppoll and ctx_epoll_wait.
 *
 * The polls wait on pipes until the test writes a byte to the last one;
 * kept means the byte is still there: a poll reads nothing.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../contract.h"

#define HOUR (3600 * CTX_SEC)

struct st {
	int n;                  /* pipes */
	int (*p)[2];
	struct pollfd *fds;
	int64_t timeout;        /* the poll's own */
	int64_t when;           /* a sleep's duration, or its end */
	bool mask;              /* ctx_ppoll with the thread's own mask */
	int ep;                 /* ctx_epoll_wait's set */
	struct epoll_event out[4];
};

static void noop_kept(void *v) { (void)v; }
static int noop_ready(void *v) { (void)v; return 0; }
static void noop_teardown(void *v) { (void)v; }

/* ---- ctx_wait, ctx_sleep, ctx_sleep_until ------------------------------- */

static void wait_setup(void *v, int arg) { (void)v, (void)arg; }

static long wait_call(ctx_t *c, void *v)
{
	(void)v;
	return ctx_wait(c);
}

static void sleep_setup(void *v, int forever)
{
	struct st *s = v;

	s->when = forever ? INT64_MAX : HOUR;
}

/* A sleep with nothing left to sleep. */
static int sleep_ready(void *v)
{
	struct st *s = v;

	s->when = 0;
	return 0;
}

static long sleep_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sleep(c, s->when);
}

static void slept(void *v, long rc)
{
	(void)v;
	ck_assert_int_eq(rc, 0);
}

static void until_setup(void *v, int arg)
{
	struct st *s = v;

	(void)arg;
	s->when = ctx_now() + HOUR;
}

static int until_ready(void *v)
{
	struct st *s = v;

	s->when = ctx_now() - CTX_SEC;
	return 0;
}

static long until_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_sleep_until(c, s->when);
}

/* ---- polls on pipes ------------------------------------------------------ */

/* arg entries, each the read end of a pipe, polled for POLLIN; a poll
 * timeout of an hour when arg is odd (the context's deadline comes
 * first), else none. */
static void pipes_setup(void *v, int arg)
{
	struct st *s = v;

	s->n = arg;
	s->timeout = arg & 1 ? HOUR : -1;
	s->p = calloc((size_t)s->n, sizeof(*s->p));
	s->fds = calloc((size_t)s->n, sizeof(*s->fds));
	ck_assert_ptr_nonnull(s->p);
	ck_assert_ptr_nonnull(s->fds);
	for (int i = 0; i < s->n; i++) {
		ck_assert_int_eq(pipe2(s->p[i], O_CLOEXEC), 0);
		s->fds[i] = (struct pollfd){ .fd = s->p[i][0],
					     .events = POLLIN };
	}
	s->ep = -1;
}

/* A byte on the last pipe only. */
static int pipes_ready(void *v)
{
	struct st *s = v;

	return write(s->p[s->n - 1][1], "x", 1) == 1 ? 0 : errno;
}

static void pipes_kept(void *v)
{
	struct st *s = v;
	char b;

	ck_assert_int_eq(read(s->p[s->n - 1][0], &b, 1), 1);
	ck_assert_int_eq(b, 'x');
}

static void pipes_teardown(void *v)
{
	struct st *s = v;

	for (int i = 0; i < s->n; i++) {
		close(s->p[i][0]);
		close(s->p[i][1]);
	}
	if (s->ep >= 0)
		close(s->ep);
	free(s->p);
	free(s->fds);
}

static long poll_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_poll(c, s->fds, (nfds_t)s->n, s->timeout);
}

/* With a timeout of 0: a look, which a done context refuses all the
 * same. */
static long look_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_poll(c, s->fds, (nfds_t)s->n, 0);
}

/* One ready entry, the last; every other revents cleared. */
static void poll_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 1);
	for (int i = 0; i < s->n - 1; i++)
		ck_assert_msg(s->fds[i].revents == 0, "fds[%d].revents %#x", i,
			      s->fds[i].revents);
	ck_assert_int_eq(s->fds[s->n - 1].revents, POLLIN);
	pipes_kept(v);
}

/* No descriptors: a sleep the context ends. */
static long nofds_call(ctx_t *c, void *v)
{
	(void)v;
	return ctx_poll(c, NULL, 0, -1);
}

/* With sigmask NULL (arg 0), or the thread's own mask (1). */
static long ppoll_call(ctx_t *c, void *v)
{
	struct st *s = v;
	sigset_t mask;

	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
	return ctx_ppoll(c, s->fds, (nfds_t)s->n, -1, s->mask ? &mask : NULL);
}

static void ppoll_setup(void *v, int with_mask)
{
	struct st *s = v;

	pipes_setup(v, 1);
	s->mask = with_mask;
}

/* The program's own epoll set, watching the one pipe. */
static void epoll_setup(void *v, int arg)
{
	struct st *s = v;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 77 };

	pipes_setup(v, arg);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	ck_assert_int_ge(s->ep, 0);
	ck_assert_int_eq(epoll_ctl(s->ep, EPOLL_CTL_ADD, s->p[0][0], &ev), 0);
}

static long epoll_call(ctx_t *c, void *v)
{
	struct st *s = v;

	return ctx_epoll_wait(c, s->ep, s->out, 4, -1);
}

static void epoll_check(void *v, long rc)
{
	struct st *s = v;

	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(s->out[0].data.u32, 77);
	ck_assert_uint_eq(s->out[0].events, EPOLLIN);
}

/* The byte is there, and the set still says so. */
static void epoll_kept(void *v)
{
	struct st *s = v;
	struct epoll_event ev;

	ck_assert_int_eq(epoll_wait(s->ep, &ev, 1, 0), 1);
	pipes_kept(v);
}

/* ---- the rows --------------------------------------------------------- */

#define NEVER_READY (CT_NOT(CT_READY) | CT_NOT(CT_LATER) | CT_NOT_PARTIAL)
#define NOTHING .ready = noop_ready, .kept = noop_kept,                     \
	.teardown = noop_teardown
#define SLEEP .style = CT_RETURN, .size = sizeof(struct st), .check = slept, \
	.kept = noop_kept, .teardown = noop_teardown
#define PIPES .style = CT_ERRNO, .size = sizeof(struct st),                 \
	.ready = pipes_ready, .teardown = pipes_teardown
#define POLL(n, what) { .name = "ctx_poll on " what, .arg = n, PIPES,      \
	.setup = pipes_setup, .call = poll_call, .check = poll_check,       \
	.kept = pipes_kept, .flags = CT_NOT_PARTIAL }

const struct ct_row ct_rows_io[] = {
	{ .name = "ctx_wait", .style = CT_RETURN, .setup = wait_setup,
	  .call = wait_call, NOTHING, .flags = NEVER_READY },
	{ .name = "ctx_sleep for an hour", SLEEP, .setup = sleep_setup,
	  .ready = sleep_ready, .call = sleep_call,
	  .flags = CT_NOT(CT_LATER) | CT_NOT_PARTIAL },
	{ .name = "ctx_sleep for INT64_MAX", .arg = 1, SLEEP,
	  .setup = sleep_setup, .ready = sleep_ready, .call = sleep_call,
	  .flags = CT_DONE_WAITING | CT_NOT(CT_LATER) | CT_NOT_PARTIAL },
	{ .name = "ctx_sleep_until an hour from now", SLEEP,
	  .setup = until_setup, .ready = until_ready, .call = until_call,
	  .flags = CT_NOT(CT_LATER) | CT_NOT_PARTIAL },
	POLL(1, "a pipe"),
	POLL(3, "3 pipes, with a timeout of an hour"),
	POLL(16, "16 pipes"),
	POLL(17, "17 pipes, with a timeout of an hour"),
	POLL(300, "300 pipes"),
	{ .name = "ctx_poll on 2 pipes with a timeout of 0", .arg = 2, PIPES,
	  .setup = pipes_setup, .call = look_call, .check = poll_check,
	  .kept = pipes_kept, .flags = CT_NEVER_WAITS },
	{ .name = "ctx_poll on no descriptors", .style = CT_ERRNO,
	  .setup = wait_setup, .call = nofds_call, NOTHING,
	  .flags = NEVER_READY },
	/* The one wait that returns EINTR: a signal caught while it waits
	 * ends it (reactor.c and io/syscalls.c test that). */
	{ .name = "ctx_ppoll on a pipe", .arg = 0, PIPES, .setup = ppoll_setup,
	  .call = ppoll_call, .check = poll_check, .kept = pipes_kept,
	  .flags = CT_NOT_PARTIAL | CT_NOT(CT_STORM) },
	{ .name = "ctx_ppoll on a pipe with a mask", .arg = 1, PIPES,
	  .setup = ppoll_setup, .call = ppoll_call, .check = poll_check,
	  .kept = pipes_kept, .flags = CT_NOT_PARTIAL | CT_NOT(CT_STORM) },
	{ .name = "ctx_epoll_wait on a pipe", .arg = 1, PIPES,
	  .setup = epoll_setup, .call = epoll_call, .check = epoll_check,
	  .kept = epoll_kept, .flags = CT_NOT_PARTIAL },
	{ .name = NULL },
};
