/*
 * ctx.hpp: libctx for C++17 and later, as a C++ programmer would write it
 * over <ctx.h>.  Header only; link with libctx as for C.
 *
 *  ctx::context   owns one reference to a context, move-only; its
 *                 destructor is ctx_release (cancel, then unref), which
 *                 is Go's `defer cancel()`.
 *  ctx::ref       borrows a ctx_t *: what functions take.  It never
 *                 releases; a context converts to it implicitly.
 *  factories      background(), with_cancel, with_timeout (any
 *                 std::chrono duration), with_deadline (a steady_clock
 *                 time point), with_value, without_cancel, with_merge,
 *                 with_grace.  They throw
 *                 std::bad_alloc or std::system_error where the C calls
 *                 return NULL.
 *  ctx::thread    runs a callable (captures allowed) under a child of a
 *                 context; join() rethrows what it threw; the destructor
 *                 cancels the child and joins, as std::jthread requests
 *                 a stop and joins.
 *  ctx::after     Go's context.AfterFunc with a callable; its destructor
 *                 stops it and waits for a call under way.
 *  category()     std::error_code for the contexts' errors:
 *                 CTX_CANCELED and CTX_DEADLINE_EXCEEDED compare equal to
 *                 std::errc::operation_canceled and std::errc::timed_out.
 *  C++20          stop_token_of(c) and with_stop_token(parent, st), the
 *                 bridge both ways to std::stop_token (std::jthread).
 *
 * Creation sites: every factory and ctx::thread takes a last argument
 * ctx::site that defaults to the caller's file and line, from
 * std::source_location where the library has it (C++20), else from
 * __builtin_FILE and __builtin_LINE (g++, clang++), and hands it to
 * ctx_set_site before the C call, so CTX_DEBUG=leaks names the line
 * that made a leaked context, as the C macros do for C; cancel() does
 * the same for ctx_origin.  In C++ <ctx.h>
 * defines no function-like macro, so ::ctx_with_cancel(p) and a member
 * named ctx_with_timeout work, and every C function is noexcept.
 *
 * The blocking calls stay the C ones: ctx_read(c.get(), fd, buf, n).
 * See ctx.hpp(3).
 */
#ifndef CTX_HPP
#define CTX_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "ctx.hpp needs C++17 or later; from C, include <ctx.h>"
#else /* the rest, only where it can compile: one clear error, above */

#include <ctx.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#if __cplusplus >= 202002L && __has_include(<source_location>)
#include <source_location>
#endif
#if __cplusplus >= 202002L && __has_include(<stop_token>)
#include <stop_token>
#endif
#if defined(__GLIBCXX__) && __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

namespace ctx {

/* ---- creation sites ------------------------------------------------ */

namespace detail {
struct here {}; /* selects site's defaulted constructor */
} // namespace detail

/* A file and line for CTX_DEBUG.  As a defaulted last parameter it is
 * the caller's: `context with_cancel(ref p, site s = {})`.  A wrapper
 * passes its own caller's site on by taking one the same way. */
class site {
public:
#if defined(__cpp_lib_source_location)
	constexpr site(std::source_location l =
			       std::source_location::current()) noexcept
		: file_(l.file_name()), line_(static_cast<int>(l.line()))
	{
	}
#elif defined(__has_builtin)
#if __has_builtin(__builtin_FILE) && __has_builtin(__builtin_LINE)
	constexpr site(detail::here = {}, const char *file = __builtin_FILE(),
		       int line = __builtin_LINE()) noexcept
		: file_(file), line_(line)
	{
	}
#define CTX__HPP_SITE 1
#endif
#endif
#if !defined(__cpp_lib_source_location) && !defined(CTX__HPP_SITE)
	constexpr site(detail::here = {}) noexcept : file_(nullptr), line_(0)
	{
	}
#endif
	constexpr site(const char *file, int line) noexcept
		: file_(file), line_(line)
	{
	}
	constexpr const char *file() const noexcept { return file_; }
	constexpr int line() const noexcept { return line_; }
	/* ctx_set_site: the next constructor, cancel or release this
	 * thread calls records it. */
	void set() const noexcept { ::ctx_set_site(file_, line_); }

private:
	const char *file_;
	int line_;
};
#undef CTX__HPP_SITE

/* ---- errors -------------------------------------------------------- */

namespace detail {
/* "ctx": messages from ctx_strerror; every value means what it means
 * as an errno value, so CTX_CANCELED (ECANCELED) is equivalent to
 * std::errc::operation_canceled and CTX_DEADLINE_EXCEEDED (ETIMEDOUT)
 * to std::errc::timed_out. */
class category_impl final : public std::error_category {
public:
	const char *name() const noexcept override { return "ctx"; }
	std::string message(int ev) const override
	{
		return ::ctx_strerror(ev);
	}
	std::error_condition
	default_error_condition(int ev) const noexcept override
	{
		return std::error_condition(ev, std::generic_category());
	}
};
} // namespace detail

inline const std::error_category &category() noexcept
{
	static const detail::category_impl c;
	return c;
}

namespace detail {
/* What a C call's errno becomes: std::bad_alloc for ENOMEM, as new
 * would throw, else std::system_error. */
[[noreturn]] inline void throw_errno(int err, const char *what)
{
	if (err == ENOMEM)
		throw std::bad_alloc();
	throw std::system_error(err ? err : EINVAL, std::generic_category(),
				what);
}

inline ctx_t *made(ctx_t *c, const char *what)
{
	if (!c)
		throw_errno(errno, what);
	return c;
}

/* A duration in int64_t nanoseconds, saturating as libctx's sums do
 * (a NaN is 0: already expired). */
template <class Rep, class Period>
constexpr int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept
{
	using wide = std::chrono::duration<long double, std::nano>;
	const long double x = std::chrono::duration_cast<wide>(d).count();
	if (x != x)
		return 0;
	if (x >= static_cast<long double>(INT64_MAX))
		return INT64_MAX;
	if (x <= static_cast<long double>(INT64_MIN))
		return INT64_MIN;
	return static_cast<int64_t>(
		std::chrono::duration_cast<std::chrono::nanoseconds>(d)
			.count());
}

/* The questions both context and ref answer, through D::get(). */
template <class D> class queries {
	ctx_t *p() const noexcept
	{
		return static_cast<const D *>(this)->get();
	}

public:
	using time_point = std::chrono::steady_clock::time_point;
	/* 0 while live, else CTX_CANCELED or CTX_DEADLINE_EXCEEDED. */
	std::error_code err() const noexcept
	{
		return std::error_code(::ctx_err(p()), category());
	}
	bool done() const noexcept { return ::ctx_err(p()) != 0; }
	int cause() const noexcept { return ::ctx_cause(p()); }
	/* The words of ctx_cancel_msg, else the cause's; NULL while live. */
	const char *cause_msg() const noexcept
	{
		return ::ctx_cause_msg(p());
	}
	/* ctx_origin: what ended it, and where; NULL while live. */
	const char *origin() const noexcept { return ::ctx_origin(p()); }
	/* The effective deadline.  libctx's clock is CLOCK_MONOTONIC,
	 * which is what steady_clock reads on Linux (libstdc++, libc++). */
	std::optional<time_point> deadline() const noexcept
	{
		int64_t ns;
		if (!::ctx_deadline(p(), &ns))
			return std::nullopt;
		return time_point(std::chrono::duration_cast<
				  std::chrono::steady_clock::duration>(
			std::chrono::nanoseconds(ns)));
	}
	void *value(const void *key) const noexcept
	{
		return ::ctx_value(p(), key);
	}
	bool can_end() const noexcept { return ::ctx_can_end(p()); }
	/* ctx_format: "context.Background.WithCancel" and so on. */
	std::string str() const
	{
		char buf[256];
		int n = ::ctx_format(p(), buf, sizeof(buf));
		if (n < 0)
			return std::string();
		if (static_cast<size_t>(n) < sizeof(buf))
			return std::string(buf, static_cast<size_t>(n));
		std::string s(static_cast<size_t>(n) + 1, '\0');
		::ctx_format(p(), &s[0], s.size());
		s.resize(static_cast<size_t>(n));
		return s;
	}
};
} // namespace detail

/* ---- ref and context ----------------------------------------------- */

/* A borrowed context: copyable, never releases, may be null.  What
 * functions that use a context take, as Go functions take a Context. */
class ref : public detail::queries<ref> {
public:
	constexpr ref() noexcept = default;
	constexpr ref(ctx_t *c) noexcept : c_(c) {}
	constexpr ctx_t *get() const noexcept { return c_; }
	constexpr explicit operator bool() const noexcept
	{
		return c_ != nullptr;
	}

private:
	ctx_t *c_ = nullptr;
};

class context;

namespace detail {
/* What an owner holds beside its reference and drops before releasing
 * it: with_stop_token's stop callback, which must be unregistered (and
 * a call of it under way on another thread finished) while the context
 * it cancels still exists.  Tied to the owner, it costs no thread. */
struct attachment {
	virtual ~attachment() = default;
};
void attach(context &c, attachment *a) noexcept;

/* Two parties share a bridge: the caller that set it up and the
 * after-func that fires when the context ends.  The last one done with
 * it stops the handle (each needs exactly one ctx_after_stop) and frees
 * it. */
struct bridge {
	std::atomic<int> parties{ 2 };
	ctx_after_t *handle = nullptr;
	virtual ~bridge() = default;
	void leave() noexcept
	{
		if (parties.fetch_sub(1, std::memory_order_acq_rel) == 1) {
			::ctx_after_stop(handle);
			delete this;
		}
	}
};

/* Registers b's fire on c; b's caller then calls b->leave().  Throws,
 * b freed, if the after-func cannot be made. */
template <class B> void arm(B *b, ctx_t *c)
{
	b->handle = ::ctx_after_func(c, &B::fire, b);
	if (!b->handle) {
		int e = errno;
		delete b;
		throw_errno(e, "ctx_after_func");
	}
}

/* A disowned context's attachment, kept until the context ends. */
struct kept final : bridge {
	attachment *a;
	explicit kept(attachment *x) noexcept : a(x) {}
	~kept() override { delete a; }
	static void fire(void *arg) noexcept
	{
		static_cast<kept *>(arg)->leave();
	}
};

/* Out of memory, it is dropped at once instead (a stop callback: the
 * stop no longer cancels the context). */
inline void keep_until_end(ctx_t *c, attachment *a) noexcept
{
	kept *k = new (std::nothrow) kept(a);
	if (!k) {
		delete a;
		return;
	}
	k->handle = ::ctx_after_func(c, &kept::fire, k);
	if (!k->handle) {
		delete k; /* and a with it */
		return;
	}
	k->leave();
}
} // namespace detail

/* Owns one reference: move-only; the destructor is ctx_release (NULL-
 * safe), so a context ends with the scope that made it. */
class context : public detail::queries<context> {
public:
	constexpr context() noexcept = default;
	/* Adopts a reference the caller owns (from a C constructor). */
	constexpr explicit context(ctx_t *owned) noexcept : c_(owned) {}
	context(context &&o) noexcept
		: c_(std::exchange(o.c_, nullptr)),
		  a_(std::exchange(o.a_, nullptr))
	{
	}
	context &operator=(context &&o) noexcept
	{
		if (this != &o) {
			reset(std::exchange(o.c_, nullptr));
			a_ = std::exchange(o.a_, nullptr);
		}
		return *this;
	}
	context(const context &) = delete;
	context &operator=(const context &) = delete;
	~context() { reset(); }

	constexpr ctx_t *get() const noexcept { return c_; }
	constexpr explicit operator bool() const noexcept
	{
		return c_ != nullptr;
	}
	operator ref() const noexcept { return ref(c_); }
	/* Gives the reference up to the caller, who must release it.  What
	 * the context held beside it (with_stop_token's callback) stays
	 * until the context ends. */
	ctx_t *disown() noexcept
	{
		if (a_)
			detail::keep_until_end(c_, std::exchange(a_, nullptr));
		return std::exchange(c_, nullptr);
	}
	/* Releases the context held (ctx_release) and adopts owned. */
	void reset(ctx_t *owned = nullptr) noexcept
	{
		delete std::exchange(a_, nullptr);
		::ctx_release(std::exchange(c_, owned));
	}
	/* ctx_cancel, ctx_cancel_cause; ctx_origin names the caller. */
	void cancel(site s = {}) noexcept
	{
		s.set();
		::ctx_cancel(c_);
	}
	void cancel(int cause, site s = {}) noexcept
	{
		s.set();
		::ctx_cancel_cause(c_, cause);
	}

private:
	friend void detail::attach(context &, detail::attachment *) noexcept;
	ctx_t *c_ = nullptr;
	detail::attachment *a_ = nullptr;
};

inline void detail::attach(context &c, attachment *a) noexcept
{
	delete std::exchange(c.a_, a);
}

/* ---- factories ----------------------------------------------------- */

/* The roots: never done; releasing them does nothing. */
inline context background() noexcept { return context(::ctx_background()); }
inline context todo() noexcept { return context(::ctx_todo()); }

inline context with_cancel(ref parent, site s = {})
{
	s.set();
	return context(detail::made(::ctx_with_cancel(parent.get()),
				    "ctx_with_cancel"));
}

template <class Rep, class Period>
context with_timeout(ref parent, std::chrono::duration<Rep, Period> d,
		     site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_timeout(parent.get(), detail::to_ns(d)),
		"ctx_with_timeout"));
}

/* When the deadline ends it, cause() is `cause`. */
template <class Rep, class Period>
context with_timeout_cause(ref parent,
			   std::chrono::duration<Rep, Period> d, int cause,
			   site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_timeout_cause(parent.get(), detail::to_ns(d),
					 cause),
		"ctx_with_timeout_cause"));
}

inline context with_deadline(ref parent,
			     std::chrono::steady_clock::time_point t,
			     site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_deadline(parent.get(),
				    detail::to_ns(t.time_since_epoch())),
		"ctx_with_deadline"));
}

inline context with_deadline_cause(ref parent,
				   std::chrono::steady_clock::time_point t,
				   int cause, site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_deadline_cause(parent.get(),
					  detail::to_ns(t.time_since_epoch()),
					  cause),
		"ctx_with_deadline_cause"));
}

/* key is compared by address; value is not owned. */
inline context with_value(ref parent, const void *key, void *value,
			  site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_value(parent.get(), key, value),
		"ctx_with_value"));
}

inline context without_cancel(ref parent, site s = {})
{
	s.set();
	return context(detail::made(::ctx_without_cancel(parent.get()),
				    "ctx_without_cancel"));
}

/* Done when parent or other is done (ctx_with_merge). */
inline context with_merge(ref parent, ref other, site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_merge(parent.get(), other.get()), "ctx_with_merge"));
}

/* Done grace after parent is done, or when cancelled (ctx_with_grace). */
template <class Rep, class Period>
context with_grace(ref parent, std::chrono::duration<Rep, Period> grace,
		   site s = {})
{
	s.set();
	return context(detail::made(
		::ctx_with_grace(parent.get(), detail::to_ns(grace)),
		"ctx_with_grace"));
}

/* ---- threads ------------------------------------------------------- */

namespace detail {
/* A thread's callable and what it threw, on the heap so that the
 * handle can move while the thread runs. */
struct thread_state {
	std::exception_ptr thrown;
	virtual void run(ref c) = 0;
	virtual ~thread_state() = default;
};

template <class F> struct thread_state_of final : thread_state {
	F fn;
	template <class G> explicit thread_state_of(G &&g)
		: fn(std::forward<G>(g))
	{
	}
	void run(ref c) override
	{
		if constexpr (std::is_invocable_v<F &, ref>)
			fn(c);
		else
			fn();
	}
};

/* The thread's start: no exception may reach the C frames below it.
 * A forced unwind (pthread_exit, cancellation) must go on unwinding. */
inline void *thread_start(ctx_t *c, void *arg)
{
	auto *st = static_cast<thread_state *>(arg);
	try {
		st->run(ref(c));
#if defined(__GLIBCXX__) && __has_include(<cxxabi.h>)
	} catch (abi::__forced_unwind &) {
		throw;
#endif
	} catch (...) {
		st->thrown = std::current_exception();
	}
	return nullptr;
}
} // namespace detail

/* A thread that runs f(ref) (or f()) under its own child of a context.
 * join() waits and rethrows what f threw; destroyed or moved onto while
 * it runs, it cancels the child and joins (the exception is dropped),
 * as std::jthread requests a stop and joins. */
class thread {
public:
	thread() noexcept = default;
	template <class F, class = std::enable_if_t<
				   !std::is_same_v<std::decay_t<F>, thread>>>
	thread(ref parent, F &&f, site s = {})
		: child_(with_cancel(parent, s)),
		  st_(std::make_unique<
			  detail::thread_state_of<std::decay_t<F>>>(
			  std::forward<F>(f)))
	{
		s.set();
		int e = ::ctx_thread_create(&t_, child_.get(),
					    detail::thread_start, st_.get());
		if (e)
			detail::throw_errno(e, "ctx_thread_create");
	}
	thread(thread &&o) noexcept
		: child_(std::move(o.child_)), st_(std::move(o.st_)),
		  t_(std::exchange(o.t_, nullptr))
	{
	}
	thread &operator=(thread &&o) noexcept
	{
		if (this != &o) {
			stop_and_join();
			child_ = std::move(o.child_);
			st_ = std::move(o.st_);
			t_ = std::exchange(o.t_, nullptr);
		}
		return *this;
	}
	thread(const thread &) = delete;
	thread &operator=(const thread &) = delete;
	~thread() { stop_and_join(); }

	bool joinable() const noexcept { return t_ != nullptr; }
	/* The child the callable runs under (null once joined). */
	ref get_context() const noexcept { return child_; }
	/* Cancels the child: the callable's ctx_ calls return. */
	void cancel(site s = {}) noexcept { child_.cancel(s); }
	/* Waits for the callable to return; rethrows what it threw.
	 * std::system_error: invalid_argument if not joinable,
	 * resource_deadlock_would_occur from the thread itself. */
	void join()
	{
		if (!t_)
			detail::throw_errno(EINVAL, "ctx::thread::join");
		int e = ::ctx_thread_join(::ctx_background(), t_, nullptr);
		if (e)
			detail::throw_errno(e, "ctx::thread::join");
		t_ = nullptr;
		child_.reset();
		std::exception_ptr ex = std::exchange(st_->thrown, nullptr);
		st_.reset(); /* the callable's captures go now */
		if (ex)
			std::rethrow_exception(ex);
	}

private:
	void stop_and_join() noexcept
	{
		if (!t_)
			return;
		child_.cancel(site(nullptr, 0));
		/* Only a thread joining itself fails; it must not be left
		 * running with its state freed, so that is fatal. */
		if (::ctx_thread_join(::ctx_background(), t_, nullptr))
			std::terminate();
		t_ = nullptr;
		child_.reset();
	}

	context child_;
	std::unique_ptr<detail::thread_state> st_;
	ctx_thread_t *t_ = nullptr;
};

/* ---- after-functions ----------------------------------------------- */

/* Go's context.AfterFunc with a callable: f() runs once, on a thread of
 * the library's, after c is done (soon, if it is already).  stop() and
 * the destructor are ctx_after_stop_wait: when f is running on another
 * thread they return once it has returned, so what f uses by reference
 * may go with the after.  It holds f, so it neither moves nor copies.
 * f must not throw: an exception leaving it calls std::terminate. */
template <class F> class after {
public:
	template <class G>
	after(ref c, G &&g) : fn_(std::forward<G>(g))
	{
		h_ = ::ctx_after_func(c.get(), &after::run, this);
		if (!h_)
			detail::throw_errno(errno, "ctx_after_func");
	}
	after(const after &) = delete;
	after &operator=(const after &) = delete;
	~after() { stop(); }

	/* True if it kept f from ever running; false if f ran, runs (then
	 * it returns once f has returned; from inside f, at once) or is
	 * about to run, and on every call after the first. */
	bool stop() noexcept
	{
		return h_ && ::ctx_after_stop_wait(std::exchange(h_, nullptr));
	}

private:
	static void run(void *arg) noexcept
	{
		static_cast<after *>(arg)->fn_();
	}

	F fn_;
	ctx_after_t *h_ = nullptr;
};

template <class G> after(ref, G &&) -> after<std::decay_t<G>>;

#if defined(__cpp_lib_jthread)
/* ---- std::stop_token, both ways (C++20) ------------------------------ */

namespace detail {
/* stop_token_of: the context's end requests the stop. */
struct stop_on_end final : bridge {
	std::stop_source src;
	static void fire(void *arg) noexcept
	{
		auto *b = static_cast<stop_on_end *>(arg);
		b->src.request_stop();
		b->leave();
	}
};

/* with_stop_token: a stop request cancels the child, with words.  The
 * owner drops the callback before it releases the child: the callback's
 * destructor waits for a call of it under way on another thread, so it
 * never touches a freed context. */
struct cancel_on_stop final : attachment {
	struct canceller {
		ctx_t *c;
		void operator()() const noexcept
		{
			::ctx_cancel_msg(c, CTX_CANCELED, "stop requested");
		}
	};
	std::stop_callback<canceller> cb;
	cancel_on_stop(std::stop_token st, ctx_t *c)
		: cb(std::move(st), canceller{ c })
	{
	}
};
} // namespace detail

/* A token whose stop is requested when c ends (on a thread of the
 * library's, soon after).  For a context that can never end, a token
 * that can never be stopped (stop_possible() is false). */
inline std::stop_token stop_token_of(ref c)
{
	if (!::ctx_can_end(c.get()))
		return std::stop_token();
	auto *b = new detail::stop_on_end;
	std::stop_token t = b->src.get_token();
	detail::arm(b, c.get());
	b->leave();
	return t;
}

/* A child of parent that st's stop request cancels (CTX_CANCELED, with
 * the words "stop requested"), at once if the stop is requested
 * already.  The stop callback runs in the thread that requests the
 * stop, so a thread blocked in a ctx_ call under the child returns at
 * once.  The returned context holds the callback: it is unregistered
 * when the context is released (or, disowned, when it ends). */
inline context with_stop_token(ref parent, std::stop_token st,
			       site s = {})
{
	context child = with_cancel(parent, s);
	if (st.stop_possible())
		detail::attach(child, new detail::cancel_on_stop(
					      std::move(st), child.get()));
	return child;
}
#endif /* __cpp_lib_jthread */

} // namespace ctx

#endif /* C++17 */
#endif /* CTX_HPP */
