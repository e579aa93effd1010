/*
 * ctx_origin: where an end came from, in words -- the call and its
 * file:line, the deadline of the context made at file:line, a signal, a
 * hang-up, an idle time -- the same text for every context the end
 * reached, NULL while live; and ctx_format's " [ended: ...]".
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

static char key;

/* The origin of c names `call` at this file's line `line`. */
static void assert_origin(ctx_t *c, const char *call, int line)
{
	char want[512];
	const char *o = ctx_origin(c);
	ck_assert_ptr_nonnull(o);
	snprintf(want, sizeof(want), "%s at %s:%d", call, __FILE__, line);
	ck_assert_msg(strstr(o, want), "origin \"%s\", expected \"%s\"", o,
		      want);
}

START_TEST(test_origin_live)
{
	ck_assert_ptr_null(ctx_origin(NULL));
	ck_assert_ptr_null(ctx_origin(ctx_background()));
	ctx_t *c = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	ck_assert_ptr_null(ctx_origin(c));
	ctx_t *w = ctx_without_cancel(c);
	ctx_cancel(c);
	ck_assert_ptr_null(ctx_origin(w)); /* never ends */
	ctx_release(w);
	ctx_release(c);
}
END_TEST

/* Each cancelling call at its line; the same text below, through value
 * nodes too, and for a child made after the end. */
START_TEST(test_origin_calls)
{
	ctx_t *c[4], *below[4];
	for (int i = 0; i < 4; i++) {
		c[i] = ctx_with_cancel(ctx_background());
		ctx_t *v = ctx_with_value(c[i], &key, "v");
		below[i] = ctx_with_cancel(v);
		ctx_unref(v); /* below[i] holds it */
	}
	int line = __LINE__ + 1;
	ctx_cancel(c[0]);
	ctx_cancel_cause(c[1], EPIPE);
	ctx_cancel_msg(c[2], EPIPE, "words %d", 1);
	ctx_ref(c[3]);
	ctx_release(c[3]);
	assert_origin(below[0], "ctx_cancel", line);
	assert_origin(below[1], "ctx_cancel_cause", line + 1);
	assert_origin(below[2], "ctx_cancel_msg", line + 2);
	assert_origin(below[3], "ctx_release", line + 4);
	ck_assert_str_eq(ctx_cause_msg(below[2]), "words 1");
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_eq(ctx_origin(below[i]), ctx_origin(c[i]));
		ctx_t *late = ctx_with_cancel(c[i]);
		ck_assert_ptr_eq(ctx_origin(late), ctx_origin(c[i]));
		ctx_release(late);
		ctx_release(below[i]);
	}
	for (int i = 0; i < 3; i++)
		ctx_release(c[i]);
	ctx_unref(c[3]);
}
END_TEST

/* A later cancel changes nothing: the first end's origin stays. */
START_TEST(test_origin_first_wins)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int line = __LINE__ + 1;
	ctx_cancel(c);
	ctx_cancel_cause(c, 5);
	assert_origin(c, "ctx_cancel", line);
	ctx_release(c);
}
END_TEST

/* The number words of a cause that is no errno keep the origin. */
START_TEST(test_origin_with_number_words)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	int line = __LINE__ + 1;
	ctx_cancel_cause(c, 100000);
	ck_assert_str_eq(ctx_cause_msg(c), "100000");
	assert_origin(c, "ctx_cancel_cause", line);
	ctx_release(c);
}
END_TEST

/* Called through a pointer there is no site, and the words say so. */
START_TEST(test_origin_no_site)
{
	void (*cancel)(ctx_t *) = ctx_cancel;
	ctx_t *c = ctx_with_cancel(ctx_background());
	cancel(c);
	ck_assert_ptr_nonnull(strstr(ctx_origin(c),
				     "ctx_cancel at an unknown site"));
	ctx_release(c);
}
END_TEST

/* Through a pointer (as from C++, where no macro is), each ending call
 * records the site ctx_set_site gave just before, and takes it: the
 * next call without one records none. */
START_TEST(test_origin_set_site)
{
	void (*cancel)(ctx_t *) = ctx_cancel;
	void (*cause)(ctx_t *, int) = ctx_cancel_cause;
	void (*msg)(ctx_t *, int, const char *, ...) = ctx_cancel_msg;
	void (*release)(ctx_t *) = ctx_release;
	ctx_t *c[5];
	for (int i = 0; i < 5; i++)
		c[i] = ctx_with_cancel(ctx_background());
	ctx_set_site(__FILE__, 1001);
	cancel(c[0]);
	ctx_set_site(__FILE__, 1002);
	cause(c[1], EPIPE);
	ctx_set_site(__FILE__, 1003);
	msg(c[2], EPIPE, "words");
	ctx_ref(c[3]);
	ctx_set_site(__FILE__, 1004);
	release(c[3]);
	cancel(c[4]); /* the site went with the call before */
	assert_origin(c[0], "ctx_cancel", 1001);
	assert_origin(c[1], "ctx_cancel_cause", 1002);
	assert_origin(c[2], "ctx_cancel_msg", 1003);
	assert_origin(c[3], "ctx_release", 1004);
	ck_assert_ptr_nonnull(strstr(ctx_origin(c[4]),
				     "ctx_cancel at an unknown site"));
	ctx_unref(c[3]);
	for (int i = 0; i < 5; i++)
		if (i != 3)
			ctx_release(c[i]);
}
END_TEST

/* A deadline names the context whose own deadline passed, by the line
 * that made it, for every context under it. */
START_TEST(test_origin_deadline)
{
	char want[512];
	ctx_t *p = ctx_with_cancel(ctx_background());
	int line = __LINE__ + 1;
	ctx_t *d = ctx_with_timeout(p, 10 * CTX_MSEC);
	ctx_t *c = ctx_with_timeout(d, 60 * CTX_SEC);
	ck_assert_int_eq(ctx_wait(c), CTX_DEADLINE_EXCEEDED);
	snprintf(want, sizeof(want), "the deadline of the context made at "
		 "%s:%d", __FILE__, line);
	ck_assert_str_eq(ctx_origin(c), want);
	ck_assert_ptr_eq(ctx_origin(d), ctx_origin(c));
	ck_assert_ptr_null(ctx_origin(p));
	ctx_release(c);
	ctx_release(d);
	ctx_release(p);
}
END_TEST

/* The feature kinds: a signal, an idle time, a hang-up. */
START_TEST(test_origin_features)
{
	sigset_t set;
	int sv[2];
	char want[512];
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ctx_t *s = ctx_with_signals(ctx_background(), &set);
	raise(SIGUSR1);
	ck_assert_int_eq(ctx_wait(s), CTX_CANCELED);
	ck_assert_ptr_nonnull(strstr(ctx_origin(s), "SIGUSR1"));
	ctx_release(s);
	int line = __LINE__ + 1;
	ctx_t *i = ctx_with_idle(ctx_background(), 10 * CTX_MSEC);
	ck_assert_int_eq(ctx_wait(i), CTX_DEADLINE_EXCEEDED);
	snprintf(want, sizeof(want), "%s:%d", __FILE__, line);
	ck_assert_ptr_nonnull(strstr(ctx_origin(i), "idle"));
	ck_assert_ptr_nonnull(strstr(ctx_origin(i), want));
	ctx_release(i);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	line = __LINE__ + 1;
	ctx_t *h = ctx_with_hangup(ctx_background(), sv[0]);
	close(sv[1]);
	ck_assert_int_eq(ctx_wait(h), CTX_CANCELED);
	snprintf(want, sizeof(want), "%s:%d", __FILE__, line);
	ck_assert_ptr_nonnull(strstr(ctx_origin(h), "hung up"));
	ck_assert_ptr_nonnull(strstr(ctx_origin(h), want));
	ctx_release(h);
	close(sv[0]);
}
END_TEST

static int fail_fn(ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return EIO;
}

/* An error group's own end says so. */
START_TEST(test_origin_group)
{
	ctx_group_t *g = ctx_group_new(ctx_background());
	ck_assert_ptr_nonnull(g);
	ctx_t *gc = ctx_ref(ctx_group_ctx(g));
	ck_assert_int_eq(ctx_group_go(g, fail_fn, NULL), 0);
	ck_assert_int_eq(ctx_group_wait(g), EIO);
	ck_assert_ptr_nonnull(strstr(ctx_origin(gc), "ctx_group"));
	ctx_group_free(g);
	ctx_unref(gc);
}
END_TEST

/* ctx_format adds the origin of an ended context. */
START_TEST(test_origin_format)
{
	char buf[512], want[512];
	ctx_t *c = ctx_with_cancel(ctx_background());
	ck_assert_int_gt(ctx_format(c, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "context.Background.WithCancel");
	int line = __LINE__ + 1;
	ctx_cancel(c);
	ck_assert_int_gt(ctx_format(c, buf, sizeof(buf)), 0);
	snprintf(want, sizeof(want), "context.Background.WithCancel [ended: "
		 "ctx_cancel at %s:%d]", __FILE__, line);
	ck_assert_str_eq(buf, want);
	ctx_release(c);
}
END_TEST

struct site_thread {
	pthread_t thread;
	int rounds;
	int bad;
};

/* Two sites, ended from several threads at once: the records are made
 * once and read without a lock. */
static void *sites_main(void *arg)
{
	struct site_thread *t = arg;
	char want[2][64];
	for (int i = 0; i < t->rounds; i++) {
		ctx_t *a = ctx_with_cancel(ctx_background());
		ctx_t *b = ctx_with_cancel(ctx_background());
		int line = __LINE__ + 1;
		ctx_cancel_cause(a, 1000 + i);
		ctx_cancel_cause(b, 1000 + i);
		snprintf(want[0], sizeof(want[0]), ":%d", line);
		snprintf(want[1], sizeof(want[1]), ":%d", line + 1);
		t->bad += !strstr(ctx_origin(a), want[0]) ||
			  !strstr(ctx_origin(b), want[1]);
		ctx_release(a);
		ctx_release(b);
	}
	return NULL;
}

START_TEST(test_origin_threads)
{
	struct site_thread t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct site_thread){ .rounds = tu_quick() ? 200 : 2000 };
		ck_assert_int_eq(pthread_create(&t[i].thread, NULL, sites_main,
						&t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i].thread, NULL);
		ck_assert_int_eq(t[i].bad, 0);
	}
}
END_TEST

/* A line past what fits the packed site (16 bits) goes to the table and
 * still reads back.  Last in the file: #line renumbers what follows. */
START_TEST(test_origin_big_line)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
#line 70000
	ctx_cancel(c);
	assert_origin(c, "ctx_cancel", 70000);
	ctx_t *d = ctx_with_timeout(ctx_background(), 1);
	ck_assert_int_eq(ctx_err(d), CTX_DEADLINE_EXCEEDED);
	ck_assert_ptr_nonnull(strstr(ctx_origin(d), ":70002"));
	ctx_release(d);
	ctx_release(c);
}
END_TEST

Suite *suite_origin(void)
{
	Suite *s = suite_create("origin");
	TCase *tc = tu_tcase(s, "origin", 20);
	tcase_add_test(tc, test_origin_live);
	tcase_add_test(tc, test_origin_calls);
	tcase_add_test(tc, test_origin_first_wins);
	tcase_add_test(tc, test_origin_with_number_words);
	tcase_add_test(tc, test_origin_no_site);
	tcase_add_test(tc, test_origin_set_site);
	tcase_add_test(tc, test_origin_deadline);
	tcase_add_test(tc, test_origin_features);
	tcase_add_test(tc, test_origin_group);
	tcase_add_test(tc, test_origin_format);
	tcase_add_test(tc, test_origin_threads);
	tcase_add_test(tc, test_origin_big_line);
	return s;
}
