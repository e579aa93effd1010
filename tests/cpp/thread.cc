/*
 * ctx::thread: callables with captures under a child context, join and
 * its exceptions, the destructor that cancels and joins.
 */
#include <atomic>
#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cpptest.h"

using namespace ct;

static int key;

/* The callable runs under a child of the parent: it sees the parent's
 * values, and the child is its own (cancelling it leaves the parent). */
START_TEST(runs_under_child)
{
	std::string v = "value";
	ctx::context parent = ctx::with_value(ctx::background(), &key, &v);
	std::string seen;
	ctx_t *child = nullptr;
	ctx::thread t(parent, [&](ctx::ref c) {
		seen = *static_cast<std::string *>(c.value(&key));
		child = c.get();
	});
	t.join();
	ck_assert_str_eq(seen.c_str(), "value");
	ck_assert_ptr_nonnull(child);
	ck_assert_ptr_ne(child, parent.get());
	ck_assert(!t.joinable());
	ck_assert(!parent.err());
}
END_TEST

/* A callable that takes no context, and one that is moved in and owns
 * what it captured. */
START_TEST(callable_kinds)
{
	std::atomic<int> n{0};
	ctx::thread a(ctx::background(), [&] { n += 1; });
	auto owned = std::make_unique<int>(41);
	ctx::thread b(ctx::background(),
		      [p = std::move(owned), &n](ctx::ref) { n += *p + 1; });
	a.join();
	b.join();
	ck_assert_int_eq(n.load(), 43);
}
END_TEST

START_TEST(join_rethrows)
{
	ctx::thread t(ctx::background(),
		      [] { throw std::runtime_error("from the thread"); });
	bool caught = false;
	try {
		t.join();
	} catch (const std::runtime_error &e) {
		caught = true;
		ck_assert_str_eq(e.what(), "from the thread");
	}
	ck_assert(caught);
	ck_assert(!t.joinable());
}
END_TEST

/* Destroyed while the callable waits in a ctx_ call: the child is
 * cancelled, the call returns, the destructor joins; what the callable
 * threw then is dropped. */
START_TEST(destructor_cancels_and_joins)
{
	std::atomic<bool> started{false}, returned{false};
	int err = -1;
	auto t0 = clock::now();
	{
		ctx::thread t(ctx::background(), [&](ctx::ref c) {
			started = true;
			err = ctx_wait(c.get());
			returned = true;
			throw std::runtime_error("dropped");
		});
		ck_assert(eventually([&] { return started.load(); }));
	}
	ck_assert(returned.load());
	ck_assert_int_eq(err, CTX_CANCELED);
	ck_assert(clock::now() - t0 < 5s);
}
END_TEST

/* The parent's end reaches the callable's ctx_ calls. */
START_TEST(parent_cancel_reaches)
{
	quiet_pipe p;
	ctx::context parent = ctx::with_cancel(ctx::background());
	ssize_t n = 0;
	int e = 0;
	ctx::thread t(parent, [&](ctx::ref c) {
		char b;
		n = ctx_read(c.get(), p.fd[0], &b, 1);
		e = errno;
	});
	usleep(20000);
	parent.cancel();
	t.join();
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(e, CTX_CANCELED);
}
END_TEST

START_TEST(cancel_member)
{
	ctx::thread t(ctx::background(),
		      [](ctx::ref c) { (void)ctx_wait(c.get()); });
	ck_assert(!t.get_context().done());
	t.cancel();
	ck_assert(t.get_context().err() == std::errc::operation_canceled);
	t.join();
	ck_assert(!t.get_context());
}
END_TEST

/* Moves: into a vector and out; assigning over a running thread stops
 * and joins it first, as std::jthread does. */
START_TEST(move)
{
	std::atomic<int> ended{0};
	std::vector<ctx::thread> v;
	for (int i = 0; i < 4; i++)
		v.emplace_back(ctx::background(), [&](ctx::ref c) {
			(void)ctx_wait(c.get());
			ended++;
		});
	ctx::thread moved = std::move(v[0]);
	ck_assert(!v[0].joinable());
	ck_assert(moved.joinable());
	moved = std::move(v[1]); /* stops the first */
	ck_assert_int_eq(ended.load(), 1);
	v.clear();               /* the other two */
	ck_assert_int_eq(ended.load(), 3);
	moved.cancel();
	moved.join();
	ck_assert_int_eq(ended.load(), 4);
}
END_TEST

START_TEST(join_errors)
{
	ctx::thread none;
	bool thrown = false;
	try {
		none.join();
	} catch (const std::system_error &e) {
		thrown = e.code() == std::errc::invalid_argument;
	}
	ck_assert(thrown);

	/* A thread joining itself: EDEADLK, and the owner's join works. */
	std::atomic<ctx::thread *> self{nullptr};
	std::atomic<bool> deadlock{false};
	ctx::thread t(ctx::background(), [&] {
		ctx::thread *me;
		while (!(me = self.load()))
			usleep(100);
		try {
			me->join();
		} catch (const std::system_error &e) {
			deadlock = e.code() ==
				   std::errc::resource_deadlock_would_occur;
		}
	});
	self = &t;
	t.join();
	ck_assert(deadlock.load());
}
END_TEST

/* A parent already done: the thread still runs, under a done child. */
START_TEST(done_parent)
{
	ctx::context parent = ctx::with_cancel(ctx::background());
	parent.cancel();
	std::error_code seen;
	ctx::thread t(parent, [&](ctx::ref c) { seen = c.err(); });
	t.join();
	ck_assert(seen == std::errc::operation_canceled);
}
END_TEST

TCase *tcase_thread()
{
	TCase *tc = tcase_create("thread");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, runs_under_child);
	tcase_add_test(tc, callable_kinds);
	tcase_add_test(tc, join_rethrows);
	tcase_add_test(tc, destructor_cancels_and_joins);
	tcase_add_test(tc, parent_cancel_reaches);
	tcase_add_test(tc, cancel_member);
	tcase_add_test(tc, move);
	tcase_add_test(tc, join_errors);
	tcase_add_test(tc, done_parent);
	return tc;
}
