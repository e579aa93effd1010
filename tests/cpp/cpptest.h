/*
 * What the C++ suite's files share.  The suite holds <ctx.hpp> (and
 * <ctx.h> as C++) to what ctx.hpp(3) says, with Check as the C suites
 * do; make check builds it several times from the same sources: with
 * $CXX and with clang++, at -std=c++17 and -std=c++20, always with
 * -Wall -Wextra -pedantic -Werror (tests/cpp/local.mk).  The C++20 parts
 * (std::stop_token) are compiled only where the library has them.
 */
#ifndef CTX_CPPTEST_H
#define CTX_CPPTEST_H

#include <ctx.hpp>

#include <chrono>
#include <string>
#include <fcntl.h>
#include <unistd.h>

#include <check.h>
/* Check's deprecated fail() macro would rewrite std::basic_ios::fail in
 * any standard header included after it. */
#undef fail

TCase *tcase_context();
TCase *tcase_thread();
TCase *tcase_after();
TCase *tcase_stop();
TCase *tcase_constructs();
TCase *tcase_sites();

/* The child side of the sites test: leak a context made by ctx.hpp
 * with CTX_DEBUG=leaks on, after printing the line that made it. */
int sites_child();

/* ck_assert_str_eq keeps a pointer to its argument's text until it
 * compares, so a temporary std::string would be gone by then. */
#define ct_assert_string(s, want)                                          \
	do {                                                               \
		const std::string ct_s_ = (s), ct_w_ = (want);             \
		ck_assert_msg(ct_s_ == ct_w_, "\"%s\" is not \"%s\"",       \
			      ct_s_.c_str(), ct_w_.c_str());               \
	} while (0)

namespace ct {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline double ms_since(clock::time_point t0)
{
	return std::chrono::duration<double, std::milli>(clock::now() - t0)
		.count();
}

/* A pipe nobody writes to unless the test does: something for a thread
 * to block in ctx_read on. */
struct quiet_pipe {
	int fd[2] = { -1, -1 };
	quiet_pipe() { ck_assert_int_eq(pipe2(fd, O_CLOEXEC), 0); }
	~quiet_pipe()
	{
		close(fd[0]);
		close(fd[1]);
	}
	quiet_pipe(const quiet_pipe &) = delete;
	quiet_pipe &operator=(const quiet_pipe &) = delete;
};

/* Polls pred every millisecond for up to limit: whether it came true.
 * Generous limits: the machine running the suite may be loaded. */
template <class P> bool eventually(P pred, clock::duration limit = 5s)
{
	auto end = clock::now() + limit;
	while (!pred()) {
		if (clock::now() > end)
			return false;
		usleep(1000);
	}
	return true;
}

} // namespace ct

#endif
