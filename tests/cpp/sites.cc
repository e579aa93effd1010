/*
 * Creation sites in C++: ctx::site is the caller's file and line (from
 * std::source_location, or __builtin_FILE/__builtin_LINE), the factories
 * hand it to ctx_set_site, and CTX_DEBUG=leaks names it.  The child
 * (PROGRAM --leak-child) leaks on purpose; the test reads its report.
 */
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

#include "cpptest.h"

using namespace ct;

/* A wrapper that passes its own caller's site on. */
static ctx::context make_for_caller(ctx::ref parent, ctx::site s = {})
{
	return ctx::with_cancel(parent, s);
}

static void *nothing(ctx_t *, void *arg) { return arg; }

/* The lines the report must name, printed first, one a line:
 * ctx::with_timeout, the wrapper, ctx_set_site before a C constructor,
 * and before ctx_thread_create. */
int sites_child()
{
	int l1 = __LINE__ + 1;
	ctx_t *a = ctx::with_timeout(ctx::background(), 1h).disown();
	int l2 = __LINE__ + 1;
	ctx_t *b = make_for_caller(ctx::background()).disown();
	int l3 = __LINE__ + 1;
	ctx_set_site(__FILE__, __LINE__);
	ctx_t *c = ::ctx_with_cancel(ctx_background());
	ctx_thread_t *t;
	int l4 = __LINE__ + 1;
	ctx_set_site(__FILE__, __LINE__);
	if (::ctx_thread_create(&t, ctx_background(), nothing, nullptr))
		return 1;
	std::printf("%d\n%d\n%d\n%d\n", l1, l2, l3, l4);
	std::fflush(stdout); /* before the report, which comes at exit */
	(void)a;
	(void)b;
	(void)c;
	return 0;
}

START_TEST(site_is_caller)
{
	ctx::site s = {}; int line = __LINE__;
#if defined(__cpp_lib_source_location) || defined(__GNUC__)
	ck_assert_int_eq(s.line(), line);
	ck_assert_ptr_nonnull(std::strstr(s.file(), "sites.cc"));
#else
	ck_assert_int_eq(s.line(), 0); /* no way to know it here */
	(void)line;
#endif
	ctx::site given("elsewhere.cc", 7);
	ck_assert_str_eq(given.file(), "elsewhere.cc");
	ck_assert_int_eq(given.line(), 7);
}
END_TEST

/* Runs the child with CTX_DEBUG=leaks; its stdout then its stderr. */
static std::string run_child()
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	/* It leaks on purpose: LeakSanitizer and ThreadSanitizer, when
	 * built in, keep quiet. */
	std::string cmd = "ASAN_OPTIONS=detect_leaks=0 "
			  "TSAN_OPTIONS=report_thread_leaks=0 CTX_DEBUG=leaks '";
	cmd += exe;
	cmd += "' --leak-child 2>&1";
	FILE *p = popen(cmd.c_str(), "r");
	ck_assert_ptr_nonnull(p);
	std::string out;
	char buf[4096];
	size_t got;
	while ((got = fread(buf, 1, sizeof(buf), p)) > 0)
		out.append(buf, got);
	ck_assert_int_eq(pclose(p), 0);
	return out;
}

START_TEST(leaks_name_the_caller)
{
	std::string out = run_child();
	int line[4];
	ck_assert_int_eq(std::sscanf(out.c_str(), "%d %d %d %d", &line[0],
				     &line[1], &line[2], &line[3]),
			 4);
	for (int i = 0; i < 3; i++) {
		std::string want = "sites.cc:" + std::to_string(line[i]) +
				   " was never released";
		ck_assert_msg(out.find(want) != std::string::npos,
			      "no \"%s\" in:\n%s", want.c_str(), out.c_str());
	}
	std::string thr = "sites.cc:" + std::to_string(line[3]) +
			  " was never joined or detached";
	ck_assert_msg(out.find(thr) != std::string::npos, "no \"%s\" in:\n%s",
		      thr.c_str(), out.c_str());
	ck_assert_msg(out.find("(unknown)") == std::string::npos,
		      "a context without its site in:\n%s", out.c_str());
}
END_TEST

TCase *tcase_sites()
{
	TCase *tc = tcase_create("sites");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, site_is_caller);
	tcase_add_test(tc, leaks_name_the_caller);
	return tc;
}
