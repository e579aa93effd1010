/*
 * ctx_curl_set_deadline_header against a one-request server thread that
 * keeps the request it got: the grpc-timeout line carries the time left
 * (no more than the context had, not much less), a stale line in the
 * caller's list is replaced and the other lines kept, a context without
 * a deadline sends none, and NULL arguments are refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx/curl.h"
#include "testutil.h"

Suite *suite_curl_deadline(void);

struct one {
	pthread_t t;
	int l, port;
	char req[4096];
};

/* Take one request, keep it, answer 200 and close. */
static void *one_main(void *arg)
{
	struct one *o = arg;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				 "Connection: close\r\n\r\n";
	int fd = accept4(o->l, NULL, NULL, SOCK_CLOEXEC);
	size_t n = 0;
	while (fd >= 0 && n < sizeof o->req - 1 &&
	       !strstr(o->req, "\r\n\r\n")) {
		ssize_t r = read(fd, o->req + n, sizeof o->req - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		o->req[n] = '\0';
	}
	if (fd >= 0 && write(fd, ok, sizeof ok - 1) < 0)
		n = 0;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void one_start(struct one *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	memset(o->req, 0, sizeof o->req);
	o->l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(o->l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(o->l, 4), 0);
	ck_assert_int_eq(getsockname(o->l, (struct sockaddr *)&sa, &len), 0);
	o->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(&o->t, NULL, one_main, o), 0);
}

/* One GET under ctx with the header set from hctx; the request the
 * server got is in o->req afterwards. */
static void get_with(struct one *o, ctx_t *hctx, struct curl_slist **h)
{
	char url[64];
	one_start(o);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", o->port);
	CURL *e = curl_easy_init();
	ck_assert_ptr_nonnull(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	ck_assert_int_eq(ctx_curl_set_deadline_header(hctx, e, h), CURLE_OK);
	ck_assert_int_eq(ctx_curl_perform(ctx_background(), e), CURLE_OK);
	curl_easy_cleanup(e);
	pthread_join(o->t, NULL);
	close(o->l);
}

/* How many lines of the request start with name (case-insensitive). */
static int lines_named(const char *req, const char *name)
{
	int n = 0;
	for (const char *p = req; (p = strstr(p, "\r\n")); p += 2)
		n += !strncasecmp(p + 2, name, strlen(name));
	return n;
}

/* The nanoseconds of the request's grpc-timeout value. */
static int64_t sent_ns(const char *req)
{
	const char *p = strcasestr(req, "\r\ngrpc-timeout: ");
	ck_assert_ptr_nonnull(p);
	char *end;
	long long v = strtoll(p + 16, &end, 10);
	static const char units[] = "numSMH";
	static const int64_t ns[] = { 1, CTX_USEC, CTX_MSEC, CTX_SEC,
				      60 * CTX_SEC, 3600 * CTX_SEC };
	const char *u = strchr(units, *end);
	ck_assert_msg(u && *end && end[1] == '\r', "value: %.20s", p + 16);
	return v * ns[u - units];
}

START_TEST(deadline_header_sent)
{
	struct one o;
	struct curl_slist *h = NULL;
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 2 * CTX_SEC);
	int64_t t0 = ctx_now();
	get_with(&o, c, &h);
	ck_assert_int_eq(lines_named(o.req, "grpc-timeout:"), 1);
	int64_t v = sent_ns(o.req);
	ck_assert_int_le(v, 2 * CTX_SEC);
	ck_assert_int_gt(v, 2 * CTX_SEC - (ctx_now() - t0) - CTX_MSEC);
	curl_slist_free_all(h);
}
END_TEST

/* The caller's list: its other lines kept, a stale value replaced, and
 * the line dropped for a context without a deadline. */
START_TEST(deadline_header_list)
{
	struct one o;
	struct curl_slist *h = curl_slist_append(NULL, "X-One: 1");
	h = curl_slist_append(h, "GRPC-Timeout: 99H");
	h = curl_slist_append(h, "X-Two: 2");
	ck_assert_ptr_nonnull(h);
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), CTX_SEC);
	get_with(&o, c, &h);
	ck_assert_int_eq(lines_named(o.req, "grpc-timeout:"), 1);
	ck_assert_int_le(sent_ns(o.req), CTX_SEC);
	ck_assert_int_eq(lines_named(o.req, "X-One: 1\r"), 1);
	ck_assert_int_eq(lines_named(o.req, "X-Two: 2\r"), 1);
	/* Again with the same list: still one line. */
	get_with(&o, c, &h);
	ck_assert_int_eq(lines_named(o.req, "grpc-timeout:"), 1);
	/* No deadline: none at all, the others still there. */
	get_with(&o, ctx_background(), &h);
	ck_assert_int_eq(lines_named(o.req, "grpc-timeout:"), 0);
	ck_assert_int_eq(lines_named(o.req, "X-One: 1\r"), 1);
	ck_assert_int_eq(lines_named(o.req, "X-Two: 2\r"), 1);
	curl_slist_free_all(h);
}
END_TEST

START_TEST(deadline_header_bad_arguments)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	ck_assert_int_eq(ctx_curl_set_deadline_header(NULL, e, &h),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	ck_assert_int_eq(ctx_curl_set_deadline_header(ctx_background(), NULL,
						      &h),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	ck_assert_int_eq(ctx_curl_set_deadline_header(ctx_background(), e,
						      NULL),
			 CURLE_BAD_FUNCTION_ARGUMENT);
	ck_assert_ptr_null(h);
	curl_easy_cleanup(e);
}
END_TEST

Suite *suite_curl_deadline(void)
{
	Suite *s = suite_create("curl_deadline");
	TCase *tc = tu_tcase(s, "header", 30);
	tcase_add_test(tc, deadline_header_sent);
	tcase_add_test(tc, deadline_header_list);
	tcase_add_test(tc, deadline_header_bad_arguments);
	return s;
}
