/*
 * ctx::context, ctx::ref, the factories and the error category: each
 * against the C call it wraps, read back through the C API where that
 * tells more.
 */
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cpptest.h"

using namespace ct;

static int key_a, key_b;

START_TEST(roots)
{
	ctx::context bg = ctx::background(), todo = ctx::todo();

	ck_assert_ptr_eq(bg.get(), ctx_background());
	ck_assert_ptr_eq(todo.get(), ctx_todo());
	ck_assert(!bg.err());
	ck_assert(!bg.done());
	ck_assert(!bg.can_end());
	ck_assert(!bg.deadline());
	ct_assert_string(bg.str(), "context.Background");
	ct_assert_string(todo.str(), "context.TODO");
	bg.cancel(); /* a no-op on a root, as in C */
	ck_assert(!bg.err());
}
END_TEST

/* Cancel and its cause, through the error category. */
START_TEST(cancel)
{
	ctx::context c = ctx::with_cancel(ctx::background());

	ck_assert(c.can_end());
	ck_assert(!c.err());
	ck_assert_int_eq(c.err().value(), 0);
	c.cancel();
	ck_assert(c.done());
	ck_assert_int_eq(c.err().value(), CTX_CANCELED);
	ck_assert(c.err() == std::errc::operation_canceled);
	ck_assert(c.err() != std::errc::timed_out);
	ck_assert_str_eq(c.err().category().name(), "ctx");
	ct_assert_string(c.err().message(), "context canceled");
	ck_assert_int_eq(c.cause(), CTX_CANCELED);

	ctx::context d = ctx::with_cancel(ctx::background());
	d.cancel(EPIPE);
	ck_assert_int_eq(d.cause(), EPIPE);
	ck_assert_str_eq(d.cause_msg(), strerror(EPIPE));
	ck_assert(d.err() == std::errc::operation_canceled);
}
END_TEST

/* cancel() passes its caller's site on: ctx_origin names this file and
 * line (ctx_set_site, then the C function, which takes it). */
START_TEST(cancel_origin)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx::context d = ctx::with_cancel(ctx::background());
	int line = __LINE__ + 1;
	c.cancel();
	d.cancel(EPIPE);
	std::string want = "context.cc:" + std::to_string(line);
	std::string oc = c.origin(), od = d.origin();
	ck_assert_msg(oc.find("ctx_cancel at ") != std::string::npos &&
			      oc.find(want) != std::string::npos,
		      "origin \"%s\"", oc.c_str());
	want = "context.cc:" + std::to_string(line + 1);
	ck_assert_msg(od.find("ctx_cancel_cause at ") != std::string::npos &&
			      od.find(want) != std::string::npos,
		      "origin \"%s\"", od.c_str());

	/* The destructor has no caller's line to give. */
	ctx_t *held;
	{
		ctx::context e = ctx::with_cancel(ctx::background());
		held = ctx_ref(e.get());
	}
	ck_assert_ptr_nonnull(std::strstr(ctx_origin(held),
					  "ctx_release at an unknown site"));
	ctx_unref(held);
}
END_TEST

START_TEST(category)
{
	const std::error_category &cat = ctx::category();
	std::error_code dl(CTX_DEADLINE_EXCEEDED, cat);
	std::error_code other(EPIPE, cat);

	ck_assert_ptr_eq(&cat, &ctx::category());
	ck_assert(dl == std::errc::timed_out);
	ck_assert(dl != std::errc::operation_canceled);
	ct_assert_string(dl.message(), "context deadline exceeded");
	ck_assert(other == std::errc::broken_pipe);
	ct_assert_string(other.message(), strerror(EPIPE));
	ck_assert(!std::error_code(0, cat));
}
END_TEST

/* The destructor is ctx_release: cancel, then drop the reference. */
START_TEST(destructor_releases)
{
	ctx_t *raw;
	{
		ctx::context c = ctx::with_timeout(ctx::background(), 1h);
		raw = ctx_ref(c.get());
	}
	ck_assert_int_eq(ctx_err(raw), CTX_CANCELED);
	ctx_unref(raw);
}
END_TEST

START_TEST(move)
{
	ctx::context a = ctx::with_cancel(ctx::background());
	ctx_t *ra = ctx_ref(a.get());
	ctx::context b = std::move(a);

	ck_assert(!a); /* a moved-from context is empty */
	ck_assert_ptr_null(a.get());
	ck_assert_ptr_eq(b.get(), ra);
	ck_assert_int_eq(ctx_err(ra), 0);

	/* Assigning over an owner releases what it held. */
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx_t *rc = ctx_ref(c.get());
	c = std::move(b);
	ck_assert_int_eq(ctx_err(rc), CTX_CANCELED);
	ck_assert_ptr_eq(c.get(), ra);
	ck_assert_int_eq(ctx_err(ra), 0);
	c = ctx::context();
	ck_assert_int_eq(ctx_err(ra), CTX_CANCELED);
	ctx_unref(ra);
	ctx_unref(rc);
}
END_TEST

START_TEST(disown_reset)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx_t *raw = c.disown();

	ck_assert_ptr_null(c.get());
	ck_assert_int_eq(ctx_err(raw), 0); /* not released */
	c.reset(raw);                      /* adopted again */
	ck_assert_ptr_eq(c.get(), raw);
	ctx_t *held = ctx_ref(raw);
	c.reset();
	ck_assert_int_eq(ctx_err(held), CTX_CANCELED);
	ctx_unref(held);

	ctx::context adopted(ctx_with_cancel(ctx_background()));
	ck_assert(adopted.can_end());
}
END_TEST

/* ref borrows: from a ctx_t *, from a context; copying it takes no
 * reference and dropping it releases nothing. */
START_TEST(ref_borrows)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx::ref r = c;
	ctx::ref r2 = r;
	ctx::ref raw = c.get();

	ck_assert_ptr_eq(r.get(), c.get());
	ck_assert_ptr_eq(r2.get(), c.get());
	ck_assert_ptr_eq(raw.get(), c.get());
	{
		ctx::ref gone = r;
		(void)gone;
	}
	ck_assert(!c.err());
	c.cancel();
	ck_assert(r.err() == std::errc::operation_canceled);

	ctx::ref null;
	ck_assert(!null);
	ck_assert_int_eq(null.err().value(), EINVAL); /* ctx_err(NULL) */
}
END_TEST

/* A NULL parent is EINVAL in C; in C++ it throws, leaving nothing. */
START_TEST(null_parent_throws)
{
	bool thrown = false;
	try {
		ctx::context c = ctx::with_cancel(ctx::ref());
		(void)c;
	} catch (const std::system_error &e) {
		thrown = true;
		ck_assert(e.code() == std::errc::invalid_argument);
	}
	ck_assert(thrown);
}
END_TEST

START_TEST(timeout_chrono)
{
	auto t0 = clock::now();
	ctx::context c = ctx::with_timeout(ctx::background(), 40ms);
	auto d = c.deadline();

	ck_assert(d.has_value());
	ck_assert(*d >= t0 + 40ms);
	ck_assert(*d <= clock::now() + 40ms);
	ck_assert_int_eq(ctx_wait(c.get()), CTX_DEADLINE_EXCEEDED);
	ck_assert(c.err() == std::errc::timed_out);
	ck_assert(clock::now() - t0 >= 40ms);
	ck_assert_int_eq(c.cause(), CTX_DEADLINE_EXCEEDED);
}
END_TEST

/* Any duration type: coarse, fine, floating; past and saturating. */
START_TEST(timeout_durations)
{
	using std::chrono::duration;
	auto bg = ctx::background();
	int64_t now = ctx_now(), dl;

	ctx::context a = ctx::with_timeout(bg, std::chrono::hours(2));
	ck_assert(ctx_deadline(a.get(), &dl));
	ck_assert_int_ge(dl, now + 2 * 3600 * CTX_SEC);
	ctx::context b = ctx::with_timeout(bg, duration<double>(0.5));
	ck_assert(ctx_deadline(b.get(), &dl));
	ck_assert_int_ge(dl, now + CTX_SEC / 2);
	ck_assert_int_le(dl, ctx_now() + CTX_SEC / 2);
	ctx::context c = ctx::with_timeout(bg, -1ms);
	ck_assert(c.err() == std::errc::timed_out);
	ctx::context d = ctx::with_timeout(bg, std::chrono::hours::max());
	ck_assert(!d.err());
	ck_assert(!ctx_deadline(d.get(), &dl) || dl > now + 3600 * CTX_SEC);
	ctx::context e = ctx::with_timeout(bg, std::chrono::hours::min());
	ck_assert(e.err() == std::errc::timed_out);
	duration<double> nan(std::numeric_limits<double>::quiet_NaN());
	ctx::context f = ctx::with_timeout(bg, nan);
	ck_assert(f.err() == std::errc::timed_out);
}
END_TEST

/* steady_clock and ctx_now read the same clock: a deadline given as a
 * time point comes back as that time point. */
START_TEST(deadline_time_point)
{
	int64_t n0 = ctx_now();
	auto s = clock::now();
	int64_t n1 = ctx_now();
	auto s_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
		s.time_since_epoch());
	ck_assert_int_ge(s_ns.count(), n0);
	ck_assert_int_le(s_ns.count(), n1);

	auto t = clock::now() + 1h;
	ctx::context c = ctx::with_deadline(ctx::background(), t);
	ck_assert(c.deadline() == t);
	ctx::context d = ctx::with_deadline(c, clock::now() - 1s);
	ck_assert(d.err() == std::errc::timed_out);
	ctx::context e = ctx::with_deadline(c, t + 1h); /* the parent's holds */
	ck_assert(e.deadline() == t);
}
END_TEST

START_TEST(cause_factories)
{
	auto bg = ctx::background();
	ctx::context a = ctx::with_timeout_cause(bg, 0ms, EHOSTDOWN);
	ctx::context b =
		ctx::with_deadline_cause(bg, clock::now() - 1ms, ENETDOWN);

	ck_assert(a.err() == std::errc::timed_out);
	ck_assert_int_eq(a.cause(), EHOSTDOWN);
	ck_assert(b.err() == std::errc::timed_out);
	ck_assert_int_eq(b.cause(), ENETDOWN);
}
END_TEST

START_TEST(values)
{
	std::string s = "request 42";
	ctx::context c = ctx::with_value(ctx::background(), &key_a, &s);
	ctx::context d = ctx::with_value(c, &key_b, nullptr);
	ctx::context w = ctx::without_cancel(d);

	ck_assert_ptr_eq(d.value(&key_a), &s);
	ck_assert_str_eq(static_cast<std::string *>(w.value(&key_a))->c_str(),
			 "request 42");
	ck_assert_ptr_null(w.value(&key_b));
	ck_assert(!w.can_end());
	ct_assert_string(w.str().substr(0, 29),
			 "context.Background.WithValue(");
}
END_TEST

START_TEST(without_cancel)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx::context w = ctx::without_cancel(c);

	c.cancel();
	ck_assert(c.done());
	ck_assert(!w.done());
	ck_assert(!w.deadline());
}
END_TEST

START_TEST(merge_and_grace)
{
	ctx::context a = ctx::with_cancel(ctx::background());
	ctx::context b = ctx::with_timeout(ctx::background(), 1h);
	ctx::context m = ctx::with_merge(a, b);
	ck_assert(!m.done());
	b.cancel(EPIPE);
	ck_assert(m.err() == std::errc::operation_canceled);
	ck_assert_int_eq(m.cause(), EPIPE);

	ctx::context p = ctx::with_cancel(ctx::background());
	ctx::context g = ctx::with_grace(p, 30ms);
	auto t0 = clock::now();
	p.cancel();
	ck_assert_int_eq(ctx_wait(g.get()), CTX_CANCELED);
	ck_assert(clock::now() - t0 >= 30ms);
}
END_TEST

/* str() past its stack buffer: the whole of ctx_format's text. */
START_TEST(str_long)
{
	std::vector<ctx::context> chain;
	chain.push_back(ctx::with_cancel(ctx::background()));
	for (int i = 0; i < 30; i++)
		chain.push_back(ctx::with_cancel(chain.back()));
	ctx::ref c = chain.back();
	std::string s = c.str();
	char small[8];
	int n = ctx_format(c.get(), small, sizeof(small));

	ck_assert_int_gt(n, 256);
	ck_assert_int_eq(static_cast<int>(s.size()), n);
	ct_assert_string(s.substr(s.size() - 11), ".WithCancel");
	ck_assert_ptr_eq(std::strchr(s.c_str(), '\0'), s.c_str() + n);
}
END_TEST

/* A child made from a temporary parent: the child keeps it alive (and
 * the temporary's release cancels it, hence the child, as in C). */
START_TEST(temporary_parent)
{
	ctx::context c = ctx::with_cancel(ctx::with_timeout(ctx::background(),
							    1h));
	ck_assert(c.err() == std::errc::operation_canceled);
	ctx::context v = ctx::with_value(ctx::background(), &key_a, nullptr);
	ctx::context k = ctx::with_cancel(v);
	ck_assert(!k.err());
}
END_TEST

TCase *tcase_context()
{
	TCase *tc = tcase_create("context");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, roots);
	tcase_add_test(tc, cancel);
	tcase_add_test(tc, cancel_origin);
	tcase_add_test(tc, category);
	tcase_add_test(tc, destructor_releases);
	tcase_add_test(tc, move);
	tcase_add_test(tc, disown_reset);
	tcase_add_test(tc, ref_borrows);
	tcase_add_test(tc, null_parent_throws);
	tcase_add_test(tc, timeout_chrono);
	tcase_add_test(tc, timeout_durations);
	tcase_add_test(tc, deadline_time_point);
	tcase_add_test(tc, cause_factories);
	tcase_add_test(tc, values);
	tcase_add_test(tc, without_cancel);
	tcase_add_test(tc, merge_and_grace);
	tcase_add_test(tc, str_long);
	tcase_add_test(tc, temporary_parent);
	return tc;
}
