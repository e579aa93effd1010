/*
 * C++20: the bridge to std::stop_token both ways.  with_stop_token: a
 * stop request cancels a context (a std::jthread's request_stop ends its
 * ctx_read); stop_token_of: a context's end requests a stop (a
 * std::condition_variable_any waiting on the token wakes).  Where the
 * library has no std::jthread (C++17) there is no such case.
 */
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "cpptest.h"

using namespace ct;

#if defined(__cpp_lib_jthread)

/* request_stop cancels, with words, in the requesting thread. */
START_TEST(with_stop_token_cancels)
{
	std::stop_source src;
	ctx::context c = ctx::with_stop_token(ctx::background(),
					      src.get_token());
	ck_assert(!c.done());
	src.request_stop();
	ck_assert(c.err() == std::errc::operation_canceled);
	ck_assert_int_eq(c.cause(), CTX_CANCELED);
	ck_assert_str_eq(c.cause_msg(), "stop requested");
}
END_TEST

/* A std::jthread blocked in ctx_read under with_stop_token returns as
 * soon as its owner requests a stop: the use case. */
START_TEST(jthread_read)
{
	quiet_pipe p;
	std::atomic<bool> reading{false};
	ssize_t n = 0;
	int e = 0;
	std::jthread t([&](std::stop_token st) {
		ctx::context c = ctx::with_stop_token(ctx::background(), st);
		char b;
		reading = true;
		n = ctx_read(c.get(), p.fd[0], &b, 1);
		e = errno;
	});
	ck_assert(eventually([&] { return reading.load(); }));
	usleep(20000);
	auto t0 = clock::now();
	t.request_stop();
	t.join();
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(e, CTX_CANCELED);
	ck_assert_msg(ms_since(t0) < 2000, "%.1f ms", ms_since(t0));
}
END_TEST

START_TEST(with_stop_token_edges)
{
	std::stop_source src;
	src.request_stop();
	ctx::context done = ctx::with_stop_token(ctx::background(),
						 src.get_token());
	ck_assert(done.err() == std::errc::operation_canceled);

	ctx::context never = ctx::with_stop_token(ctx::background(),
						  std::stop_token());
	ck_assert(!never.done());
	never.cancel(); /* still a cancellable child */
	ck_assert(never.done());

	/* The parent still ends it. */
	std::stop_source s2;
	ctx::context parent = ctx::with_timeout(ctx::background(), 1h);
	ctx::context child = ctx::with_stop_token(parent, s2.get_token());
	parent.cancel();
	ck_assert(child.err() == std::errc::operation_canceled);
	ck_assert(!s2.stop_requested());
}
END_TEST

/* Released before the stop, or raced against it from another thread:
 * nothing is left registered that could touch a freed context (ASan
 * and TSan builds run this). */
START_TEST(with_stop_token_release_race)
{
	for (int i = 0; i < 300; i++) {
		std::stop_source src;
		auto c = std::make_unique<ctx::context>(ctx::with_stop_token(
			ctx::background(), src.get_token()));
		std::thread stopper([&] { src.request_stop(); });
		c.reset();
		stopper.join();
	}
	std::stop_source late;
	{
		ctx::context c = ctx::with_stop_token(ctx::background(),
						      late.get_token());
	}
	late.request_stop();
}
END_TEST

/* The callback moves with its context, goes when the context is
 * assigned over, and stays with a disowned one until it ends. */
START_TEST(with_stop_token_moved_disowned)
{
	std::stop_source s1, s2;
	ctx::context a = ctx::with_stop_token(ctx::background(),
					      s1.get_token());
	ctx::context b = std::move(a);
	s1.request_stop();
	ck_assert(b.err() == std::errc::operation_canceled);
	ctx_t *held = ctx_ref(b.get());
	b = ctx::with_stop_token(ctx::background(), s2.get_token());
	ck_assert_int_eq(ctx_err(held), CTX_CANCELED); /* released */
	ctx_unref(held);
	ck_assert(!b.done());
	s2.request_stop();
	ck_assert(b.done());

	for (int i = 0; i < 200; i++) {
		std::stop_source src;
		ctx_t *raw = ctx::with_stop_token(ctx::background(),
						  src.get_token())
				     .disown();
		ck_assert_int_eq(ctx_err(raw), 0);
		if (i == 0) {
			src.request_stop();
			ck_assert_int_eq(ctx_err(raw), CTX_CANCELED);
		}
		std::thread stopper([&] { src.request_stop(); });
		ctx_release(raw); /* the kept callback goes when it ends */
		stopper.join();
	}
}
END_TEST

/* The context's end requests the stop (soon after, from a library
 * thread): by cancel, by deadline, already done. */
START_TEST(stop_token_of_ends)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	std::stop_token t = ctx::stop_token_of(c);
	ck_assert(t.stop_possible());
	ck_assert(!t.stop_requested());
	c.cancel();
	ck_assert(eventually([&] { return t.stop_requested(); }));

	ctx::context d = ctx::with_timeout(ctx::background(), 20ms);
	std::stop_token td = ctx::stop_token_of(d);
	ck_assert(eventually([&] { return td.stop_requested(); }));

	ctx::context done = ctx::with_cancel(ctx::background());
	done.cancel();
	std::stop_token tdone = ctx::stop_token_of(done);
	ck_assert(eventually([&] { return tdone.stop_requested(); }));

	std::stop_token released;
	{
		ctx::context r = ctx::with_cancel(ctx::background());
		released = ctx::stop_token_of(r);
	}
	ck_assert(eventually([&] { return released.stop_requested(); }));
}
END_TEST

/* A context that can never end gives a token that can never stop, and
 * registers nothing (LeakSanitizer would see it). */
START_TEST(stop_token_of_never)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	ctx::context w = ctx::without_cancel(c);

	ck_assert(!ctx::stop_token_of(ctx::background()).stop_possible());
	ck_assert(!ctx::stop_token_of(w).stop_possible());
	ck_assert(!ctx::stop_token_of(ctx::ref()).stop_possible());
}
END_TEST

/* A condition_variable_any waiting with the token wakes on cancel. */
START_TEST(stop_token_of_condvar)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	std::mutex m;
	std::condition_variable_any cv;
	std::atomic<bool> woke{false};
	std::thread w([&, st = ctx::stop_token_of(c)] {
		std::unique_lock<std::mutex> l(m);
		cv.wait(l, st, [] { return false; });
		woke = true;
	});
	usleep(20000);
	ck_assert(!woke.load());
	c.cancel();
	w.join();
	ck_assert(woke.load());
}
END_TEST

/* Many tokens of one context, all stopped by its one end. */
START_TEST(stop_token_of_many)
{
	ctx::context c = ctx::with_cancel(ctx::background());
	std::vector<std::stop_token> v;
	for (int i = 0; i < 100; i++)
		v.push_back(ctx::stop_token_of(c));
	c.cancel();
	for (auto &t : v)
		ck_assert(eventually([&] { return t.stop_requested(); }));
}
END_TEST

TCase *tcase_stop()
{
	TCase *tc = tcase_create("stop_token");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, with_stop_token_cancels);
	tcase_add_test(tc, jthread_read);
	tcase_add_test(tc, with_stop_token_edges);
	tcase_add_test(tc, with_stop_token_release_race);
	tcase_add_test(tc, with_stop_token_moved_disowned);
	tcase_add_test(tc, stop_token_of_ends);
	tcase_add_test(tc, stop_token_of_never);
	tcase_add_test(tc, stop_token_of_condvar);
	tcase_add_test(tc, stop_token_of_many);
	return tc;
}

#else

/* The bridge needs C++20's std::stop_token, which this build has not:
 * the runner says so and leaves the case out. */
TCase *tcase_stop() { return nullptr; }

#endif
