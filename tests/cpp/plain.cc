/*
 * <ctx.h> (and the glue headers that tests/cpp/headers.sh finds the
 * dependencies of) used from C++11 the ways that function-like macros
 * named as the functions used to break.  Compiled only (-fsyntax-only),
 * at every standard from C++11; the running checks of the same
 * constructs are tests/cpp/constructs.cc's.
 */
#include <ctx.h>
#ifdef CTX_TEST_GLUE_SSL
#include <ctx/ssl.h>
#endif
#ifdef CTX_TEST_GLUE_CURL
#include <ctx/curl.h>
#endif
#ifdef CTX_TEST_GLUE_PQ
#include <ctx/pq.h>
#endif
#ifdef CTX_TEST_GLUE_SQLITE
#include <ctx/sqlite.h>
#endif
#ifdef CTX_TEST_GLUE_REDIS
#include <ctx/redis.h>
#endif

#include <map>
#include <utility>

static_assert(noexcept(ctx_with_cancel(nullptr)), "noexcept");
static_assert(noexcept(ctx_read(nullptr, -1, nullptr, 0)), "noexcept");
#ifdef CTX_TEST_GLUE_SSL
static_assert(noexcept(ctx_ssl_read(nullptr, nullptr, nullptr, 0)),
	      "noexcept");
#endif
#ifdef CTX_TEST_GLUE_CURL
static_assert(noexcept(ctx_curl_perform(nullptr, nullptr)), "noexcept");
#endif

/* A class with members named as the C functions. */
struct pool {
	ctx_t *ctx_with_timeout(ctx_t *p, int64_t ns)
	{
		return ::ctx_with_timeout(p, ns);
	}
	int ctx_thread_create(int n) { return n; }
};

static int key;

int main()
{
	CTX_AUTO auto c = ::ctx_with_cancel(ctx_background());
	std::map<int, int> m;
	CTX_AUTO ctx_t *v = ctx_with_value(
		c, &key, static_cast<std::map<int, std::pair<int, int> > *>(
				 static_cast<void *>(&m)));
	ctx_thread_t *t;
	int r = ctx_thread_create(
		&t, v,
		[](ctx_t *, void *a) -> void * {
			int x = 0, y = 0;
			return x + y ? nullptr : a;
		},
		nullptr);
	pool p;
	CTX_AUTO ctx_t *d = p.ctx_with_timeout(c, CTX_SEC);
	ctx_t *(*fp)(ctx_t *) = &ctx_with_cancel;
	return r + p.ctx_thread_create(0) + (fp == nullptr) + ctx_err(d);
}
