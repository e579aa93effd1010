/*
 * libctx-curl against a real gRPC server, on both backends (check_grpc;
 * see glue/testing.h): grpc_server.go, built with Go from Debian's
 * golang-google-grpc-dev, offline (GOPATH mode, nothing fetched), run as
 * a throwaway server on 127.0.0.1.  The calls are gRPC over HTTP/2 with
 * prior knowledge, made by ctx_curl_perform, their deadline sent by
 * ctx_curl_set_deadline_header as a gRPC client sends it:
 *
 *  - a 300 ms deadline: the Go server's context has a deadline no
 *    earlier than libctx's and near it, and ends with DeadlineExceeded
 *    near it; the answer (DEADLINE_EXCEEDED) comes back, because the
 *    transfer runs under the caller's longer context;
 *  - the transfer under the very context whose deadline it sends: the
 *    server's call ends near the deadline whichever side sees it first;
 *  - a context without a deadline sends none, and its cancel ends the
 *    server's call (CANCELLED, from libcurl's abort of the stream).
 *
 * Both sides read CLOCK_MONOTONIC, so the server's report (its deadline,
 * when its context ended) is compared with libctx's times directly.
 * Skips (77) without go, without the grpc package or without HTTP/2 in
 * libcurl; CTX_TEST_GRPC=127.0.0.1:PORT names a server already running.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ctx/curl.h"
#include "runner.h"
#include "testutil.h"

static char base[420]; /* http://127.0.0.1:PORT */

/* A call's answer: what the server said in its headers and trailers. */
struct answer {
	long http;
	int grpc_status; /* -1: none came */
	char report[300];
};

/* The server's report on one Wait call (grpc_server.go). */
struct report {
	bool has_deadline;
	int64_t deadline, left, ended; /* CLOCK_MONOTONIC, ns */
	char err[64];
};

/* Header lines and, with HTTP/2, trailer lines alike. */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;
	char line[300];

	if (len >= sizeof line)
		return len;
	memcpy(line, p, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncasecmp(line, "grpc-status: ", 13))
		a->grpc_status = atoi(line + 13);
	else if (!strncasecmp(line, "x-report: ", 10))
		snprintf(a->report, sizeof a->report, "%s", line + 10);
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p, (void)arg;
	return size * n;
}

/* The request's header lines; the grpc-timeout line is added later. */
static struct curl_slist *grpc_headers(const char *id)
{
	char line[64];
	struct curl_slist *h = curl_slist_append(NULL,
				"Content-Type: application/grpc");
	if (h)
		h = curl_slist_append(h, "TE: trailers");
	snprintf(line, sizeof line, "x-call-id: %s", id);
	if (h)
		h = curl_slist_append(h, line);
	ck_assert_ptr_nonnull(h);
	return h;
}

/* One unary call of method (an empty message), the transfer under ctx,
 * the grpc-timeout header from hctx's deadline. */
static CURLcode call(ctx_t *ctx, ctx_t *hctx, const char *method,
		     const char *id, struct answer *a)
{
	static const char empty[5]; /* not compressed, length 0 */
	struct curl_slist *h = grpc_headers(id);
	char url[480];
	CURL *e = curl_easy_init();

	*a = (struct answer){ .grpc_status = -1 };
	snprintf(url, sizeof url, "%s/libctx.Probe/%s", base, method);
	ck_assert_ptr_nonnull(e);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, empty);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)sizeof empty);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	ck_assert_int_eq(ctx_curl_set_deadline_header(hctx, e, &h), CURLE_OK);
	CURLcode rc = ctx_curl_perform(ctx, e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a->http);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return rc;
}

/* A call id of its own for each Wait (the tests run in forks). */
static void new_id(char *id, size_t len)
{
	static int n;
	snprintf(id, len, "%s-%d-%d", ctx_backend(), (int)getpid(), ++n);
}

static struct report parse(const struct answer *a)
{
	struct report r = { .has_deadline = false };
	char dl[32], left[32];
	long long ended;

	ck_assert_msg(sscanf(a->report, "deadline=%31s left=%31s ended=%lld "
			     "err=%63[^\n]", dl, left, &ended, r.err) == 4,
		      "no report: '%s'", a->report);
	r.ended = ended;
	if (strcmp(dl, "none")) {
		r.has_deadline = true;
		r.deadline = strtoll(dl, NULL, 10);
		r.left = strtoll(left, NULL, 10);
	}
	return r;
}

/* The report of Wait call id, from the server (a cancelled Wait cannot
 * answer itself). */
static struct report report_of(const char *id)
{
	struct answer a;
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);

	ck_assert_int_eq(call(c, ctx_background(), "Report", id, &a),
			 CURLE_OK);
	ck_assert_int_eq(a.http, 200);
	ck_assert_int_eq(a.grpc_status, 0);
	return parse(&a);
}

static double ms(int64_t ns)
{
	return (double)ns / CTX_MSEC;
}

/* The server keeps to the deadline libctx sent. */
START_TEST(grpc_deadline)
{
	struct answer a;
	char id[64];
	int64_t dl;
	CTX_AUTO ctx_t *caller = ctx_with_timeout(ctx_background(),
						  10 * CTX_SEC);
	CTX_AUTO ctx_t *sent = ctx_with_timeout(caller, 300 * CTX_MSEC);

	new_id(id, sizeof id);
	ck_assert(ctx_deadline(sent, &dl));
	ck_assert_int_eq(call(caller, sent, "Wait", id, &a), CURLE_OK);
	int64_t back = ctx_now();
	ck_assert_int_eq(a.http, 200);
	ck_assert_int_eq(a.grpc_status, 4); /* DEADLINE_EXCEEDED */
	struct report r = parse(&a);
	ck_assert(r.has_deadline);
	ck_assert_str_eq(r.err, "context deadline exceeded");
	printf("grpc (%s): the Go server's deadline %.3f ms after libctx's "
	       "(%.3f ms left at its handler); its context ended %.3f ms "
	       "after libctx's deadline, the answer back %.3f ms after\n",
	       ctx_backend(), ms(r.deadline - dl), ms(r.left),
	       ms(r.ended - dl), ms(back - dl));
	/* The value is rounded up and counted from its arrival: never
	 * sooner than libctx's deadline, and later only by the trip. */
	ck_assert_int_ge(r.deadline, dl);
	ck_assert_int_lt(r.deadline - dl, 50 * CTX_MSEC);
	ck_assert_int_le(r.left, 300 * CTX_MSEC);
	ck_assert_int_ge(r.ended, dl);
	ck_assert_int_lt(r.ended - dl, 100 * CTX_MSEC);
}
END_TEST

/* The usual client: the transfer under the context it sends.  The
 * client gives up at the deadline and the server's own deadline comes a
 * trip later, so the server's call ends by whichever it sees first:
 * either way near the deadline, never before it. */
START_TEST(grpc_deadline_both_sides)
{
	struct answer a;
	char id[64];
	int64_t dl;
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(),
					     300 * CTX_MSEC);

	new_id(id, sizeof id);
	ck_assert(ctx_deadline(c, &dl));
	ck_assert_int_eq(call(c, c, "Wait", id, &a), CURLE_OPERATION_TIMEDOUT);
	tu_assert_ms(ms(ctx_now() - dl), 0, 100);
	struct report r = report_of(id);
	printf("grpc (%s): the transfer under the sent context: the server's "
	       "call ended %.3f ms after libctx's deadline (%s)\n",
	       ctx_backend(), ms(r.ended - dl), r.err);
	ck_assert(r.has_deadline);
	ck_assert_int_ge(r.deadline, dl);
	ck_assert_msg(!strcmp(r.err, "context deadline exceeded") ||
		      !strcmp(r.err, "context canceled"), "err: %s", r.err);
	ck_assert_int_ge(r.ended, dl);
	ck_assert_int_lt(r.ended - dl, 100 * CTX_MSEC);
}
END_TEST

/* Cancels a context after a pause, saying when. */
struct stamped_cancel {
	pthread_t t;
	ctx_t *ctx;
	int64_t at;
};

static void *stamped_cancel_main(void *arg)
{
	struct stamped_cancel *k = arg;
	tu_sleep_ns(200 * CTX_MSEC);
	k->at = ctx_now();
	ctx_cancel(k->ctx);
	return NULL;
}

/* No deadline, no header; the cancel reaches the server. */
START_TEST(grpc_cancel)
{
	struct answer a;
	char id[64];
	CTX_AUTO ctx_t *c = ctx_with_cancel(ctx_background());
	struct stamped_cancel k = { .ctx = c };

	new_id(id, sizeof id);
	ck_assert_int_eq(pthread_create(&k.t, NULL, stamped_cancel_main, &k),
			 0);
	CURLcode rc = call(c, c, "Wait", id, &a);
	pthread_join(k.t, NULL);
	ck_assert_int_eq(rc, CURLE_ABORTED_BY_CALLBACK);
	struct report r = report_of(id);
	printf("grpc (%s): a cancel without a deadline: the server's call "
	       "ended %.3f ms after ctx_cancel (%s)\n", ctx_backend(),
	       ms(r.ended - k.at), r.err);
	ck_assert(!r.has_deadline);
	ck_assert_str_eq(r.err, "context canceled");
	ck_assert_int_ge(r.ended, k.at);
	ck_assert_int_lt(r.ended - k.at, 100 * CTX_MSEC);
}
END_TEST

static Suite *suite_grpc(void)
{
	Suite *s = suite_create("grpc");
	TCase *tc = tu_tcase(s, "interop", 30);
	tcase_add_test(tc, grpc_deadline);
	tcase_add_test(tc, grpc_deadline_both_sides);
	tcase_add_test(tc, grpc_cancel);
	return s;
}

static tg_suite_fn *const suites[] = { suite_grpc, NULL };

int main(int argc, char **argv)
{
	struct tg_server s;
	(void)argc;
	int st = tg_grpc_start(&s, GRPC_SERVER_GO);
	if (st)
		return st == 77 ? 77 : 99;
	snprintf(base, sizeof base, "http://%s", s.address);
	int rc = tg_run_backends(tg_run_suites, suites, argv);
	ctx_curl_close_idle();
	tg_grpc_stop(&s);
	return rc;
}
