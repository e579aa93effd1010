/*
 * bench_cpp's C++ operations (bench/cpp_ops.h): ctx.hpp's factories and
 * stop_token bridge, and the standard library's own stop_token wait,
 * each written as a C++ programmer would.
 */
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <new>
#include <stop_token>
#include <thread>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctx.hpp>

#include "cpp_ops.h"

using namespace std::chrono_literals;

extern "C" void bench_cpp_create(uint64_t n)
{
	ctx::ref bg = ctx_background();
	for (uint64_t i = 0; i < n; i++) {
		ctx::context c = ctx::with_timeout(bg, 1h);
		__asm__ volatile("" : : "r"(c.get()));
	}
}

static int64_t now_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct bench_cpp_waiter {
	int impl;
	int fd[2] = { -1, -1 };
	std::atomic<pid_t> tid{ 0 };
	int64_t returned = -1;
	const char *why = "did not return";
	std::mutex m;
	std::condition_variable_any cv;
	ctx::context c; /* BENCH_CPP_C_CANCEL's */
	std::jthread t;

	void read_under(ctx::ref c)
	{
		char b;
		tid = static_cast<pid_t>(syscall(SYS_gettid));
		ssize_t n = ctx_read(c.get(), fd[0], &b, 1);
		int e = errno;
		returned = now_ns();
		why = n == -1 && e == CTX_CANCELED ? nullptr
						     : "ctx_read did not end "
						       "with CTX_CANCELED";
	}
	void wait_cv(std::stop_token st)
	{
		std::unique_lock<std::mutex> l(m);
		tid = static_cast<pid_t>(syscall(SYS_gettid));
		bool pred = cv.wait(l, st, [] { return false; });
		returned = now_ns();
		why = !pred && st.stop_requested() ? nullptr
						   : "the wait ended unstopped";
	}
	void run(std::stop_token st)
	{
		if (impl == BENCH_CPP_JTHREAD_READ)
			read_under(ctx::with_stop_token(ctx::background(), st));
		else if (impl == BENCH_CPP_CV_ANY)
			wait_cv(st);
		else
			read_under(c);
	}
};

extern "C" struct bench_cpp_waiter *bench_cpp_start(int impl)
{
	auto *w = new (std::nothrow) bench_cpp_waiter;
	if (!w)
		return nullptr;
	w->impl = impl;
	try {
		if (pipe2(w->fd, O_CLOEXEC))
			throw std::system_error(errno, std::generic_category());
		if (impl == BENCH_CPP_C_CANCEL)
			w->c = ctx::with_cancel(ctx::background());
		w->t = std::jthread([w](std::stop_token st) { w->run(st); });
	} catch (...) {
		close(w->fd[0]);
		close(w->fd[1]);
		delete w;
		return nullptr;
	}
	return w;
}

extern "C" pid_t bench_cpp_tid(struct bench_cpp_waiter *w)
{
	pid_t t;
	while (!(t = w->tid.load()))
		std::this_thread::yield();
	return t;
}

extern "C" void bench_cpp_stop(struct bench_cpp_waiter *w)
{
	if (w->impl == BENCH_CPP_C_CANCEL)
		w->c.cancel();
	else
		w->t.request_stop();
}

extern "C" int64_t bench_cpp_finish(struct bench_cpp_waiter *w,
				    const char **why)
{
	w->t.join();
	int64_t r = w->why ? -1 : w->returned;
	*why = w->why;
	close(w->fd[0]);
	close(w->fd[1]);
	delete w;
	return r;
}
