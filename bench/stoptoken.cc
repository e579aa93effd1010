/*
 * The C++20 way to the same operations, for the benchmarks' stop_token
 * column: std::stop_source / std::stop_token for cancellation, and
 * std::condition_variable_any's wait(lock, stop_token, pred) for waits
 * that a stop request interrupts.
 *
 * The standard gives no tree and no deadline, so, as a C++ programmer
 * would:
 *  - a child context owns a stop_source and a std::stop_callback on its
 *    parent's token that requests a stop on the child (recursively, a
 *    cancelled parent stops its whole subtree, with the parent's error);
 *  - a deadline is a number: waits use wait_until up to it, and err()
 *    compares it with the clock;
 *  - each wait has its own mutex and condition_variable_any on its
 *    stack, which is how the standard's stop-token waits are meant to be
 *    used (the wait registers its own stop_callback to notify them);
 *  - a read, like condctx's, tries preadv2 RWF_NOWAIT and then polls in
 *    slices, checking the token in between: nothing in the standard can
 *    interrupt a thread blocked in read(2).
 *
 * Built by bench/run.sh, when `${CXX:-g++} -std=c++20` works, into a
 * shared object that bench_impls loads (--stoptoken PATH) and asks for
 * bench_stoptoken_impl(), its table of the operations (impl.h).
 */
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <new>
#include <optional>
#include <stop_token>
#include <system_error>
#include <thread>

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "impl.h"

namespace {

constexpr int64_t no_deadline = INT64_MAX;

int64_t now_ns()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t add_sat(int64_t a, int64_t b)
{
	return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* libstdc++'s steady_clock is CLOCK_MONOTONIC, the clock of every time
 * the benchmark passes in. */
std::chrono::steady_clock::time_point at(int64_t ns)
{
	return std::chrono::steady_clock::time_point(
		std::chrono::nanoseconds(ns));
}

struct Ctx;
void cancel_with(Ctx *c, int err);

/* Run by the parent's request_stop: stop the child with the parent's
 * error (stored before the parent's request_stop). */
struct Propagate {
	Ctx *child;
	void operator()() const noexcept;
};

struct Ctx {
	std::stop_source src;
	std::optional<std::stop_callback<Propagate>> link;
	std::atomic<int> err{0};
	std::atomic<int> refs{1};
	int64_t deadline = no_deadline;
	Ctx *parent = nullptr;
	bool root = false;

	Ctx() = default;
	explicit Ctx(std::nostopstate_t n) : src(n), root(true) {}
};

Ctx background_ctx{std::nostopstate};

void Propagate::operator()() const noexcept
{
	cancel_with(child, child->parent->err.load(std::memory_order_acquire));
}

int err_of(Ctx *c)
{
	int e = c->err.load(std::memory_order_acquire);

	if (e)
		return e;
	if (c->deadline != no_deadline && now_ns() >= c->deadline)
		return ETIMEDOUT;
	return 0;
}

void cancel_with(Ctx *c, int err)
{
	int zero = 0;

	if (c->deadline != no_deadline && now_ns() >= c->deadline)
		err = ETIMEDOUT;
	/* The error first, then the stop: whoever a stop wakes finds it. */
	if (c->err.compare_exchange_strong(zero, err,
					   std::memory_order_acq_rel))
		c->src.request_stop();
}

void unref(Ctx *c)
{
	while (c && !c->root &&
	       c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
		Ctx *p = c->parent;

		/* Deregisters from the parent's token, waiting for the
		 * callback if another thread is running it right now. */
		c->link.reset();
		delete c;
		c = p;
	}
}

void *st_background()
{
	return &background_ctx;
}

void *st_with_deadline(void *pp, int64_t deadline)
{
	Ctx *p = static_cast<Ctx *>(pp);
	Ctx *c = new (std::nothrow) Ctx;
	int e;

	if (!c) {
		errno = ENOMEM;
		return nullptr;
	}
	c->deadline = deadline < p->deadline ? deadline : p->deadline;
	if (!p->root) {
		p->refs.fetch_add(1, std::memory_order_relaxed);
		c->parent = p;
		/* Runs at once if the parent has already stopped. */
		c->link.emplace(p->src.get_token(), Propagate{c});
	}
	e = c->err.load(std::memory_order_relaxed);
	if (!e && c->deadline != no_deadline && now_ns() >= c->deadline)
		cancel_with(c, ETIMEDOUT);
	return c;
}

void *st_with_cancel(void *p)
{
	return st_with_deadline(p, no_deadline);
}

void st_cancel(void *c)
{
	if (!static_cast<Ctx *>(c)->root)
		cancel_with(static_cast<Ctx *>(c), ECANCELED);
}

void st_release(void *c)
{
	st_cancel(c);
	unref(static_cast<Ctx *>(c));
}

int st_err(void *c)
{
	return err_of(static_cast<Ctx *>(c));
}

constexpr auto never = [] { return false; };

/* Until the context ends (or `end`, if sooner); its error or 0. */
int wait_until(Ctx *c, int64_t end)
{
	std::mutex m;
	std::condition_variable_any cv;
	std::unique_lock<std::mutex> lk(m);
	std::stop_token tok = c->src.get_token();
	int e;

	while (!(e = err_of(c)) && now_ns() < end) {
		int64_t until = end < c->deadline ? end : c->deadline;

		if (until == no_deadline)
			cv.wait(lk, tok, never);
		else
			cv.wait_until(lk, tok, at(until), never);
	}
	return e;
}

int st_wait(void *c)
{
	return wait_until(static_cast<Ctx *>(c), no_deadline);
}

int st_sleep(void *c, int64_t d)
{
	return wait_until(static_cast<Ctx *>(c), add_sat(now_ns(), d));
}

ssize_t st_read(void *cp, int fd, void *buf, size_t len, int64_t slice)
{
	Ctx *c = static_cast<Ctx *>(cp);
	struct iovec v = { buf, len };
	bool nowait = true;
	ssize_t n;
	int e;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t t = slice;

		if ((e = err_of(c))) {
			errno = e;
			return -1;
		}
		if (nowait) {
			n = preadv2(fd, &v, 1, -1, RWF_NOWAIT);
			if (n >= 0)
				return n;
			if (errno == EOPNOTSUPP || errno == EINVAL)
				nowait = false;
			else if (errno != EAGAIN && errno != EINTR)
				return -1;
		}
		if (c->deadline != no_deadline) {
			int64_t left = c->deadline - now_ns();

			if (left < t)
				t = left > 0 ? left : 0;
		}
		struct timespec ts = { (time_t)(t / 1000000000),
				       (long)(t % 1000000000) };
		n = ppoll(&p, 1, &ts, nullptr);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0) {
			n = read(fd, buf, len);
			if (n >= 0 || (errno != EAGAIN && errno != EINTR))
				return n;
		}
	}
}

struct Thread {
	std::thread th;
	std::mutex m;
	std::condition_variable_any cv;
	bool done = false;
	void *result = nullptr;
};

int st_thread_create(void **tp, void *cp, void *(*fn)(void *), void *arg)
{
	Ctx *c = static_cast<Ctx *>(cp);
	Thread *t = new (std::nothrow) Thread;

	if (!t)
		return ENOMEM;
	if (!c->root)
		c->refs.fetch_add(1, std::memory_order_relaxed);
	try {
		t->th = std::thread([t, c, fn, arg] {
			void *r = fn(arg);

			unref(c);
			std::lock_guard<std::mutex> g(t->m);
			t->result = r;
			t->done = true;
			t->cv.notify_all();
		});
	} catch (const std::system_error &ex) {
		unref(c);
		delete t;
		return ex.code().value();
	}
	*tp = t;
	return 0;
}

int st_thread_join(void *cp, void *tp, void **result)
{
	Ctx *c = static_cast<Ctx *>(cp);
	Thread *t = static_cast<Thread *>(tp);
	std::stop_token tok = c->src.get_token();
	int e;

	{
		std::unique_lock<std::mutex> lk(t->m);
		auto finished = [t] { return t->done; };

		while (!(e = err_of(c)) && !t->done) {
			if (c->deadline == no_deadline)
				t->cv.wait(lk, tok, finished);
			else
				t->cv.wait_until(lk, tok, at(c->deadline),
						 finished);
		}
	}
	if (e)
		return e;
	t->th.join();
	if (result)
		*result = t->result;
	delete t;
	return 0;
}

const struct bench_impl impl = {
	.name = "stop_token",
	.background = st_background,
	.with_cancel = st_with_cancel,
	.with_deadline = st_with_deadline,
	.cancel = st_cancel,
	.release = st_release,
	.err = st_err,
	.wait = st_wait,
	.sleep = st_sleep,
	.read = st_read,
	.thread_create = st_thread_create,
	.thread_join = st_thread_join,
	.slice_ns = 0, /* set by the loader */
};

} // namespace

extern "C" __attribute__((visibility("default")))
const struct bench_impl *bench_stoptoken_impl(void)
{
	return &impl;
}
