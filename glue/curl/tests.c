/*
 * libctx-curl against a tiny keep-alive HTTP server thread on loopback,
 * on both backends (check_curl; see glue/testing.h):
 * a transfer that succeeds, one the context's deadline ends (CURLOPT_TIMEOUT
 * set longer), one a cancel ends, and the easy handle reused after each;
 * then the connection pool: reuse across threads (one connection for
 * transfers on threads one after another, no more connections than
 * transfers at a time), a transfer cut short mid-answer closing its
 * connection, the idle limit, the idle timeout, ctx_curl_close_idle, and
 * a forked child that keeps off its parent's connections.  The server
 * counts the connections it accepted and those the client closed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx/curl.h"
#include "runner.h"
#include "testutil.h"

#define MAX_CONNS 64

Suite *suite_curl_deadline(void); /* deadline_tests.c */

/* Paths: "/ok" answers "hello" and keeps the connection; "/half" sends
 * its headers and 3 of its 10 bytes, then nothing; anything else never
 * answers. */
struct conn {
	int fd; /* -1: a free slot */
	bool stalled; /* answered all it will: only its close matters */
	size_t n;
	char req[2048];
};

struct server {
	pthread_t t;
	int l, port;
	_Atomic bool stop;
	_Atomic int accepted; /* connections the server took */
	_Atomic int closed;   /* of those, closed by the client */
	struct conn c[MAX_CONNS]; /* the server thread's */
};

static void answer(struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				 "\r\nhello";
	static const char half[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n"
				   "\r\nhel";
	const char *resp = NULL;
	if (strncmp(c->req, "GET /ok ", 8) == 0)
		resp = ok;
	else if (strncmp(c->req, "GET /half ", 10) == 0)
		resp = half;
	if (resp && write(c->fd, resp, strlen(resp)) < 0)
		return;
	c->n = 0;
	c->stalled = resp != ok;
}

/* Input on a connection: a request's bytes, or the client's close. */
static void on_input(struct server *s, struct conn *c)
{
	char sink[512];
	char *to = c->stalled ? sink : c->req + c->n;
	size_t room = c->stalled ? sizeof sink : sizeof c->req - 1 - c->n;
	ssize_t r = room ? read(c->fd, to, room) : 0;
	if (r <= 0) {
		close(c->fd);
		c->fd = -1;
		s->closed++;
		return;
	}
	if (c->stalled)
		return;
	c->n += (size_t)r;
	c->req[c->n] = '\0';
	if (strstr(c->req, "\r\n\r\n"))
		answer(c);
}

static void on_accept(struct server *s)
{
	int fd = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	s->accepted++;
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->c[i].fd < 0) {
			s->c[i] = (struct conn){ .fd = fd };
			return;
		}
	close(fd); /* more than the tests make */
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pf[MAX_CONNS + 1];
	while (!s->stop) {
		pf[0] = (struct pollfd){ s->l, POLLIN, 0 };
		for (int i = 0; i < MAX_CONNS; i++)
			pf[i + 1] = (struct pollfd){ s->c[i].fd, POLLIN, 0 };
		if (poll(pf, MAX_CONNS + 1, 50) <= 0)
			continue;
		for (int i = 0; i < MAX_CONNS; i++)
			if (pf[i + 1].revents)
				on_input(s, &s->c[i]);
		if (pf[0].revents)
			on_accept(s);
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
	return NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	s->stop = false;
	s->accepted = s->closed = 0;
	for (int i = 0; i < MAX_CONNS; i++)
		s->c[i].fd = -1;
	s->l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(s->l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(s->l, 64), 0);
	ck_assert_int_eq(getsockname(s->l, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&s->t, NULL, server_main, s), 0);
}

/* Also empties the pool, so that no test leaves connections open. */
static void server_stop(struct server *s)
{
	ctx_curl_close_idle();
	s->stop = true;
	pthread_join(s->t, NULL);
	close(s->l);
}

/* Poll until *v reaches want (2 s at most); its last value. */
static int settle(_Atomic int *v, int want)
{
	int64_t end = ctx_now() + 2 * CTX_SEC;
	while (*v < want && ctx_now() < end)
		tu_sleep_ns(CTX_MSEC);
	return *v;
}

struct body {
	char buf[64];
	size_t n;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb;
	size_t room = sizeof b->buf - 1 - b->n;
	memcpy(b->buf + b->n, p, len < room ? len : room);
	b->n += len < room ? len : room;
	b->buf[b->n] = '\0';
	return len;
}

/* Set e up to GET path from s into b. */
static void easy_setup(CURL *e, struct server *s, const char *path,
		       struct body *b)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	memset(b, 0, sizeof *b);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L); /* longer than any ctx */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
}

/* One easy handle for the whole suite's process, to show it is reusable
 * after whatever happened to it. */
static CURL *easy_for(struct server *s, const char *path, struct body *b)
{
	static CURL *e;
	if (!e)
		e = curl_easy_init();
	ck_assert_ptr_nonnull(e);
	easy_setup(e, s, path, b);
	return e;
}

/* The handle works again after whatever happened to it. */
static void assert_reusable(struct server *s)
{
	struct body b;
	CURL *e = easy_for(s, "/ok", &b);
	ck_assert_int_eq(ctx_curl_perform(ctx_background(), e), CURLE_OK);
	ck_assert_str_eq(b.buf, "hello");
}

START_TEST(curl_ok)
{
	struct server s;
	server_start(&s);
	struct body b;
	CURL *e = easy_for(&s, "/ok", &b);
	ctx_t *c = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
	ck_assert_int_eq(ctx_curl_perform(c, e), CURLE_OK);
	long code = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	ck_assert_int_eq(code, 200);
	ck_assert_str_eq(b.buf, "hello");
	ctx_release(c);
	assert_reusable(&s);
	ck_assert_int_eq(ctx_curl_perform(NULL, e),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	ck_assert_int_eq(ctx_curl_perform(ctx_background(), NULL),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	/* A handle already in the caller's own multi handle is refused. */
	CURLM *m = curl_multi_init();
	ck_assert_int_eq(curl_multi_add_handle(m, e), CURLM_OK);
	ck_assert_int_eq(ctx_curl_perform(ctx_background(), e),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	curl_multi_remove_handle(m, e);
	curl_multi_cleanup(m);
	assert_reusable(&s);
	server_stop(&s);
}
END_TEST

START_TEST(curl_deadline)
{
	struct server s;
	server_start(&s);
	struct body b;
	CURL *e = easy_for(&s, "/hang", &b);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	ck_assert_int_eq(ctx_curl_perform(c, e), CURLE_OPERATION_TIMEDOUT);
	tu_assert_ms(tu_ms_since(t0), 299, 300 + 1000);
	/* Done: refused at once. */
	t0 = ctx_now();
	ck_assert_int_eq(ctx_curl_perform(c, e), CURLE_OPERATION_TIMEDOUT);
	tu_assert_ms(tu_ms_since(t0), 0, 500);
	ctx_release(c);
	assert_reusable(&s);
	server_stop(&s);
}
END_TEST

START_TEST(curl_cancel)
{
	struct server s;
	server_start(&s);
	struct body b;
	CURL *e = easy_for(&s, "/hang", &b);
	ctx_t *c = ctx_with_cancel(ctx_background());
	struct tu_canceller k;
	tu_must_cancel_after(&k, c, 200 * CTX_MSEC);
	int64_t t0 = ctx_now();
	CURLcode rc = ctx_curl_perform(c, e);
	double ms = tu_ms_since(t0);
	tu_canceller_join(&k);
	ck_assert_int_eq(rc, CURLE_ABORTED_BY_CALLBACK);
	tu_assert_ms(ms, 180, 200 + 1000);
	ctx_release(c);
	assert_reusable(&s);
	server_stop(&s);
}
END_TEST

/* ---- the pool ---------------------------------------------------------- */

/* A GET of /ok on a thread of its own with an easy handle of its own,
 * as a thread per request would do it. */
struct getter {
	pthread_t t;
	struct server *s;
	CURLcode rc;
	char body[64];
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct body b;
	CURL *e = curl_easy_init();
	g->rc = CURLE_OUT_OF_MEMORY;
	if (e) {
		easy_setup(e, g->s, "/ok", &b);
		g->rc = ctx_curl_perform(ctx_background(), e);
		memcpy(g->body, b.buf, sizeof g->body);
		curl_easy_cleanup(e);
	}
	return NULL;
}

/* n getters at once, joined; each must have got "hello". */
static void get_on_threads(struct server *s, int n)
{
	struct getter g[16];
	ck_assert_int_le(n, 16);
	for (int i = 0; i < n; i++) {
		g[i] = (struct getter){ .s = s };
		ck_assert_int_eq(pthread_create(&g[i].t, NULL, getter_main,
						&g[i]), 0);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(g[i].t, NULL);
		ck_assert_int_eq(g[i].rc, CURLE_OK);
		ck_assert_str_eq(g[i].body, "hello");
	}
}

/* Issue 21: a thread per transfer made a new connection per transfer. */
START_TEST(curl_reuse_across_threads)
{
	struct server s;
	server_start(&s);
	for (int i = 0; i < 8; i++)
		get_on_threads(&s, 1);
	ck_assert_int_eq(s.accepted, 1);
	server_stop(&s);
}
END_TEST

/* Waves of 8 threads at once: at most 8 connections in all, since a
 * connection is only made when every idle one is in use. */
START_TEST(curl_reuse_bounded_by_concurrency)
{
	struct server s;
	server_start(&s);
	for (int wave = 0; wave < 4; wave++)
		get_on_threads(&s, 8);
	ck_assert_int_ge(s.accepted, 1);
	ck_assert_int_le(s.accepted, 8);
	server_stop(&s);
}
END_TEST

/* A transfer cut short after 3 of its 10 bytes: its connection must be
 * closed, not pooled (the next request on it would read the 7 bytes
 * still to come as its answer). */
static void cut_short(struct server *s, bool cancel)
{
	struct body b;
	CURL *e = easy_for(s, "/ok", &b);
	ck_assert_int_eq(ctx_curl_perform(ctx_background(), e), CURLE_OK);
	int accepted = s->accepted, closed = s->closed;
	e = easy_for(s, "/half", &b);
	ctx_t *c = cancel ? ctx_with_cancel(ctx_background())
			  : ctx_with_timeout(ctx_background(), 200 * CTX_MSEC);
	struct tu_canceller k;
	if (cancel)
		tu_must_cancel_after(&k, c, 200 * CTX_MSEC);
	ck_assert_int_eq(ctx_curl_perform(c, e),
			 cancel ? CURLE_ABORTED_BY_CALLBACK
				: CURLE_OPERATION_TIMEDOUT);
	if (cancel)
		tu_canceller_join(&k);
	ctx_release(c);
	ck_assert_str_eq(b.buf, "hel");
	ck_assert_int_eq(s->accepted, accepted); /* /half reused it */
	ck_assert_int_eq(settle(&s->closed, closed + 1), closed + 1);
	assert_reusable(s);
	ck_assert_int_eq(s->accepted, accepted + 1);
}

START_TEST(curl_cut_short_not_pooled)
{
	struct server s;
	server_start(&s);
	cut_short(&s, false);
	cut_short(&s, true);
	server_stop(&s);
}
END_TEST

START_TEST(curl_idle_limit)
{
	struct server s;
	server_start(&s);
	int old = ctx_curl_set_idle_limit(0);
	ck_assert_int_eq(old, 32);
	for (int i = 0; i < 3; i++)
		get_on_threads(&s, 1);
	ck_assert_int_eq(s.accepted, 3);
	ck_assert_int_eq(settle(&s.closed, 3), 3); /* none kept */
	ck_assert_int_eq(ctx_curl_set_idle_limit(old), 0);
	errno = 0;
	ck_assert_int_eq(ctx_curl_set_idle_limit(-1), -1);
	ck_assert_int_eq(errno, EINVAL);
	get_on_threads(&s, 1);
	get_on_threads(&s, 1);
	ck_assert_int_eq(s.accepted, 4);
	/* Lowering the limit frees the surplus at once. */
	ck_assert_int_eq(ctx_curl_set_idle_limit(0), old);
	ck_assert_int_eq(settle(&s.closed, 4), 4);
	ctx_curl_set_idle_limit(old);
	server_stop(&s);
}
END_TEST

START_TEST(curl_idle_timeout)
{
	struct server s;
	server_start(&s);
	int64_t old = ctx_curl_set_idle_timeout(300 * CTX_MSEC);
	ck_assert_int_eq(old, 90 * CTX_SEC);
	get_on_threads(&s, 1);
	get_on_threads(&s, 1); /* within the timeout: reused */
	ck_assert_int_eq(s.accepted, 1);
	tu_sleep_ns(600 * CTX_MSEC);
	get_on_threads(&s, 1); /* past it: freed, a new connection */
	ck_assert_int_eq(s.accepted, 2);
	ck_assert_int_eq(settle(&s.closed, 1), 1);
	errno = 0;
	ck_assert_int_eq(ctx_curl_set_idle_timeout(-1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ctx_curl_set_idle_timeout(old), 300 * CTX_MSEC);
	server_stop(&s);
}
END_TEST

START_TEST(curl_close_idle)
{
	struct server s;
	server_start(&s);
	ctx_curl_close_idle();
	int fds = tu_count_fds();
	get_on_threads(&s, 4);
	ck_assert_int_ge(s.accepted, 1);
	ck_assert_int_gt(tu_count_fds(), fds); /* kept: the pool's */
	int accepted = s.accepted;
	ctx_curl_close_idle();
	ck_assert_int_eq(settle(&s.closed, accepted), accepted);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
	get_on_threads(&s, 1);
	ck_assert_int_eq(s.accepted, accepted + 1);
	server_stop(&s);
}
END_TEST

/* A forked child makes its own connection: the parent's stay the
 * parent's (over TLS, a child writing on one would break it). */
START_TEST(curl_fork_own_pool)
{
	struct server s;
	server_start(&s);
	get_on_threads(&s, 1);
	ck_assert_int_eq(s.accepted, 1);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct body b;
		CURL *e = curl_easy_init();
		easy_setup(e, &s, "/ok", &b);
		CURLcode rc = ctx_curl_perform(ctx_background(), e);
		_exit(rc == CURLE_OK && strcmp(b.buf, "hello") == 0 ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(s.accepted, 2);
	get_on_threads(&s, 1); /* the parent's connection still serves it */
	ck_assert_int_eq(s.accepted, 2);
	server_stop(&s);
}
END_TEST

static Suite *suite_curl(void)
{
	Suite *s = suite_create("curl");
	TCase *tc = tu_tcase(s, "curl", 30);
	tcase_add_test(tc, curl_ok);
	tcase_add_test(tc, curl_deadline);
	tcase_add_test(tc, curl_cancel);
	tc = tu_tcase(s, "pool", 30);
	tcase_add_test(tc, curl_reuse_across_threads);
	tcase_add_test(tc, curl_reuse_bounded_by_concurrency);
	tcase_add_test(tc, curl_cut_short_not_pooled);
	tcase_add_test(tc, curl_idle_limit);
	tcase_add_test(tc, curl_idle_timeout);
	tcase_add_test(tc, curl_close_idle);
	tcase_add_test(tc, curl_fork_own_pool);
	return s;
}

static tg_suite_fn *const suites[] = { suite_curl, suite_curl_deadline,
					NULL };

int main(int argc, char **argv)
{
	(void)argc;
	return tg_run_backends(tg_run_suites, suites, argv);
}
