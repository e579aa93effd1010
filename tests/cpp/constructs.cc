/*
 * The constructs that failed when <ctx.h> was first tried from C++ (issue
 * 26), each written as that trial wrote it.  That this file compiles,
 * with g++ and clang++ at -std=c++17 and -std=c++20 and -Wall -Wextra
 * -pedantic -Werror, is most of the test; each case also checks that
 * the construct does what it says.
 *
 *  1. ::ctx_with_cancel(p)                 (was: expected id-expression)
 *  2. a lambda with a comma to ctx_thread_create (macro passed 5 args)
 *  3. static_cast<std::map<int, int> *> in ctx_with_value (the comma)
 *  4. a member function named ctx_with_timeout
 *  5. CTX_AUTO auto c = ... under clang++
 *  6. ctx_select(3)'s designated initialisers (C++20)
 *  7. std::chrono durations for timeouts
 *  8. an owning RAII type
 *  9. callables with captures for threads (and after-funcs: after.cc)
 * 10. a std::stop_token bridge (stop.cc has the rest)
 * 11. std::error_code
 * 12. noexcept on the C declarations
 * 13. a wrapper passing its caller's line to CTX_DEBUG without an
 *     internal function: ctx_set_site, in sites.cc, which reads the
 *     report
 * Besides: taking a function's address, and a using-declaration.  The
 * C++20 constructs (6, 10) are left out of the C++17 builds.
 */
#include <atomic>
#include <map>
#include <system_error>
#include <type_traits>
#include <utility>

#include "cpptest.h"

using namespace ct;

START_TEST(qualified_call) /* 1 */
{
	ctx_t *c = ::ctx_with_cancel(::ctx_background());
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(::ctx_err(c), 0);
	::ctx_release(c);
	ctx_t *(*fp)(ctx_t *) = &ctx_with_cancel;
	ctx_t *d = fp(ctx_background());
	ck_assert_ptr_nonnull(d);
	ctx_release(d);
}
END_TEST

START_TEST(lambda_with_comma) /* 2 */
{
	ctx_thread_t *t;
	int in = 20, out = 0;
	ck_assert_int_eq(ctx_thread_create(&t, ctx_background(),
					   [](ctx_t *, void *arg) -> void * {
						   int a = 1, b = 1;
						   *static_cast<int *>(arg) +=
							   a + b;
						   return arg;
					   },
					   &in),
			 0);
	void *res = nullptr;
	ck_assert_int_eq(ctx_thread_join(ctx_background(), t, &res), 0);
	out = *static_cast<int *>(res);
	ck_assert_int_eq(out, 22);
}
END_TEST

static int map_key;

START_TEST(template_cast_in_value) /* 3 */
{
	std::map<int, int> m{ { 1, 2 } };
	void *vp = &m;
	ctx_t *c = ctx_with_value(ctx_background(), &map_key,
				  static_cast<std::map<int, int> *>(vp));
	ck_assert_ptr_nonnull(c);
	auto *back = static_cast<std::map<int, int> *>(ctx_value(c, &map_key));
	ck_assert_int_eq(back->at(1), 2);
	ctx_release(c);
}
END_TEST

/* 4: a class with members named as the C functions. */
struct deadlines {
	int64_t budget;
	ctx_t *ctx_with_timeout(ctx_t *parent, int64_t ns)
	{
		return ::ctx_with_timeout(parent, ns < budget ? ns : budget);
	}
	int ctx_err(ctx_t *c) { return ::ctx_err(c); }
};

START_TEST(member_named_like_c) /* 4 */
{
	deadlines d{ 10 * CTX_MSEC };
	ctx_t *c = d.ctx_with_timeout(ctx_background(), CTX_SEC);
	int64_t dl;
	ck_assert(ctx_deadline(c, &dl));
	ck_assert_int_le(dl, ctx_now() + 10 * CTX_MSEC);
	ck_assert_int_eq(d.ctx_err(c), 0);
	ctx_release(c);
}
END_TEST

START_TEST(auto_with_ctx_auto) /* 5 */
{
	ctx_t *held;
	{
		CTX_AUTO auto c = ctx_with_cancel(ctx_background());
		static_assert(std::is_same<decltype(c), ctx_t *>::value,
			      "auto deduces ctx_t *");
		held = ctx_ref(c);
	}
	ck_assert_int_eq(ctx_err(held), CTX_CANCELED); /* released */
	ctx_unref(held);
}
END_TEST

#if __cplusplus >= 202002L
START_TEST(select_designated) /* 6; designated initialisers are C++20 */
{
	ctx_chan_t *jobs = ctx_chan_new(sizeof(int), 8);
	CTX_AUTO ctx_t *stop = ctx_with_cancel(ctx_background());
	int job = 1;
	ck_assert_int_eq(ctx_chan_try_send(jobs, &job), 0);
	job = 0;
	/* g++ 12 warns (-Wmissing-field-initializers, in -Wextra) about the
	 * members a designated initialiser leaves out, though C++20 says
	 * they are value-initialised; clang++ does not. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
	struct ctx_case cs[2] = {
		{ .kind = CTX_CASE_RECV, .ch = jobs, .elem = &job, .fd = -1 },
		{ .kind = CTX_CASE_DONE, .fd = -1, .done = stop },
	};
#pragma GCC diagnostic pop
	ck_assert_int_eq(ctx_select(ctx_background(), cs, 2, -1), 0);
	ck_assert_int_eq(job, 1);
	ctx_cancel(stop);
	ck_assert_int_eq(ctx_select(ctx_background(), cs, 2, -1), 1);
	ck_assert_int_eq(cs[1].result, CTX_CANCELED);
	ctx_chan_free(jobs);
}
END_TEST
#endif

START_TEST(chrono_raii_errc) /* 7, 8, 11 */
{
	ctx_t *held;
	{
		ctx::context c = ctx::with_timeout(ctx::background(), 5ms);
		held = ctx_ref(c.get());
		ck_assert_int_eq(ctx_wait(c.get()), CTX_DEADLINE_EXCEEDED);
		ck_assert(c.err() == std::errc::timed_out);
	}
	ck_assert_int_eq(ctx_err(held), CTX_DEADLINE_EXCEEDED);
	ctx_unref(held);
}
END_TEST

START_TEST(captures) /* 9 */
{
	std::atomic<int> sum{0};
	int add = 5;
	{
		ctx::thread t(ctx::background(),
			      [&sum, add](ctx::ref) { sum += add; });
	}
	ck_assert_int_eq(sum.load(), 5);
}
END_TEST

#if defined(__cpp_lib_jthread)
START_TEST(stop_token_bridge) /* 10 */
{
	std::stop_source src;
	ctx::context c = ctx::with_stop_token(ctx::background(),
					      src.get_token());
	src.request_stop();
	ck_assert(c.done());
}
END_TEST
#endif

/* 12: every C call is noexcept, the C++ ones that cannot fail too. */
static_assert(noexcept(ctx_err(nullptr)), "ctx_err is noexcept");
static_assert(noexcept(ctx_read(nullptr, -1, nullptr, 0)),
	      "ctx_read is noexcept");
static_assert(noexcept(ctx_with_cancel(nullptr)), "constructors too");
static_assert(noexcept(ctx_set_site(nullptr, 0)), "ctx_set_site too");
static_assert(noexcept(std::declval<ctx::context &>().cancel()),
	      "ctx::context::cancel is noexcept");
static_assert(!noexcept(ctx::with_cancel(ctx::ref())),
	      "the factories throw");

namespace user {
using ::ctx_with_timeout;
inline ctx_t *soon(ctx_t *p) { return ctx_with_timeout(p, CTX_MSEC); }
} // namespace user

START_TEST(using_declaration)
{
	ctx_t *c = user::soon(ctx_background());
	ck_assert_int_eq(ctx_wait(c), CTX_DEADLINE_EXCEEDED);
	ctx_release(c);
}
END_TEST

TCase *tcase_constructs()
{
	TCase *tc = tcase_create("constructs");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, qualified_call);
	tcase_add_test(tc, lambda_with_comma);
	tcase_add_test(tc, template_cast_in_value);
	tcase_add_test(tc, member_named_like_c);
	tcase_add_test(tc, auto_with_ctx_auto);
#if __cplusplus >= 202002L
	tcase_add_test(tc, select_designated);
#endif
	tcase_add_test(tc, chrono_raii_errc);
	tcase_add_test(tc, captures);
#if defined(__cpp_lib_jthread)
	tcase_add_test(tc, stop_token_bridge);
#endif
	tcase_add_test(tc, using_declaration);
	return tc;
}
