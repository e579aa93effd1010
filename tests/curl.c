/*
 * libctx-curl against a tiny HTTP server thread on loopback: a transfer
 * that succeeds, one the context's deadline ends (CURLOPT_TIMEOUT set
 * longer), one a cancel ends, and the easy handle reused after each.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/curl.h"
#include "suites.h"
#include "testutil.h"

/* Paths: "/ok" answers "hello"; anything else never answers. */
struct server {
	pthread_t t;
	int l, port;
	_Atomic bool stop;
};

static void serve_one(int c)
{
	char req[2048] = "";
	size_t n = 0;
	while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
		ssize_t r = read(c, req + n, sizeof req - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = '\0';
	}
	if (strncmp(req, "GET /ok ", 8) == 0) {
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				   "Connection: close\r\n\r\nhello";
		if (write(c, resp, strlen(resp)) < 0)
			return;
		return;
	}
	struct pollfd pf = { c, POLLIN, 0 }; /* silent until the client goes */
	poll(&pf, 1, 5000);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	while (!s->stop) {
		struct pollfd pf = { s->l, POLLIN, 0 };
		if (poll(&pf, 1, 50) != 1)
			continue;
		int c = accept4(s->l, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(c);
		close(c);
	}
	return NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	s->stop = false;
	s->l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(s->l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(s->l, 16), 0);
	ck_assert_int_eq(getsockname(s->l, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&s->t, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
	s->stop = true;
	pthread_join(s->t, NULL);
	close(s->l);
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

static CURL *easy_for(struct server *s, const char *path, struct body *b)
{
	static CURL *e;
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, path);
	if (!e)
		e = curl_easy_init();
	ck_assert_ptr_nonnull(e);
	memset(b, 0, sizeof *b);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L); /* longer than any ctx */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
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
	server_stop(&s);
}
END_TEST

START_TEST(curl_deadline)
{
	struct server s;
	server_start(&s);
	struct body b;
	CURL *e = easy_for(&s, "/hang", &b);
	ctx_t *c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	int64_t t0 = ctx_now();
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

Suite *suite_curl(void)
{
	Suite *s = suite_create("curl");
	TCase *tc = tu_tcase(s, "curl", 30);
	tcase_add_test(tc, curl_ok);
	tcase_add_test(tc, curl_deadline);
	tcase_add_test(tc, curl_cancel);
	return s;
}
