/*
 * ctx::after: Go's context.AfterFunc with a callable, stopped (and
 * waited for) by its destructor.
 */
#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "cpptest.h"

using namespace ct;

START_TEST(runs_when_done)
{
	std::atomic<int> ran{ 0 };
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx::after a(c, [&] { ran++; });
	usleep(20000);
	ck_assert_int_eq(ran.load(), 0);
	c.cancel();
	ck_assert(eventually([&] { return ran.load() == 1; }));
	ck_assert(!a.stop()); /* it ran */
	ck_assert_int_eq(ran.load(), 1);
}
END_TEST

START_TEST(deadline_and_done_already)
{
	std::atomic<bool> at_deadline{ false }, at_once{ false };
	ctx::context d = ctx::with_timeout(ctx::background(), 20ms);
	ctx::after a(d, [&] { at_deadline = true; });
	ctx::context done = ctx::with_cancel(ctx::background());
	done.cancel();
	ctx::after b(done, [&] { at_once = true; });
	ck_assert(eventually([&] { return at_deadline.load(); }));
	ck_assert(eventually([&] { return at_once.load(); }));
}
END_TEST

/* Stopped first: f never runs, and stop says so, once. */
START_TEST(stop_first)
{
	std::atomic<bool> ran{ false };
	ctx::context c = ctx::with_cancel(ctx::background());
	{
		ctx::after a(c, [&] { ran = true; });
		ck_assert(a.stop());
		ck_assert(!a.stop());
	}
	c.cancel();
	usleep(20000);
	ck_assert(!ran.load());

	/* Destroyed before the end: the same, through the destructor. */
	ctx::context k = ctx::with_cancel(ctx::background());
	{
		ctx::after a(k, [&] { ran = true; });
	}
	k.cancel();
	usleep(20000);
	ck_assert(!ran.load());

	/* A context that never ends: stop frees the registration. */
	ctx::after never(ctx::background(), [&] { ran = true; });
	ck_assert(never.stop());
}
END_TEST

/* The destructor waits for a call under way, so what f uses by
 * reference may go right after it (ASan would see a late use). */
START_TEST(destructor_waits)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	std::atomic<bool> started{ false };
	auto data = std::make_unique<int>(0);
	{
		int *p = data.get();
		ctx::after a(c, [&started, p] {
			started = true;
			usleep(50000);
			*p = 42;
		});
		c.cancel();
		ck_assert(eventually([&] { return started.load(); }));
	}
	ck_assert_int_eq(*data, 42);
	data.reset();
}
END_TEST

/* Move-only callables; and stop from inside f itself does not wait
 * (it would wait for itself). */
START_TEST(move_only_and_self_stop)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	std::atomic<int> got{ 0 };
	auto v = std::make_unique<int>(7);
	ctx::after a(c, [&got, p = std::move(v)] { got = *p; });
	std::atomic<ctx::after<std::function<void()>> *> self{ nullptr };
	std::atomic<bool> stopped_inside{ true };
	ctx::after<std::function<void()>> b(c, [&] {
		while (!self.load())
			usleep(100);
		stopped_inside = self.load()->stop();
	});
	self = &b;
	c.cancel();
	ck_assert(eventually([&] { return got.load() == 7; }));
	ck_assert(eventually([&] { return !stopped_inside.load(); }));
}
END_TEST

TCase *tcase_after()
{
	TCase *tc = tcase_create("after");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, runs_when_done);
	tcase_add_test(tc, deadline_and_done_already);
	tcase_add_test(tc, stop_first);
	tcase_add_test(tc, destructor_waits);
	tcase_add_test(tc, move_only_and_self_stop);
	return tc;
}
