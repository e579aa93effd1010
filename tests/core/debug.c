/*
 * CTX_DEBUG=leaks: a program that never releases a context, or never
 * joins a thread, hears about it at exit, with the file and line that
 * created it; released contexts a leaked one keeps alive are listed
 * under it, not as leaks of their own; a constructor that refuses its
 * arguments leaves no site for the next one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "testutil.h"

/* Run tests/leaky with the given CTX_DEBUG (NULL: unset); its stderr. */
static char *run_leaky(const char *debug)
{
	static char out[4096];
	char cmd[256];
	/* It leaks on purpose: LeakSanitizer and ThreadSanitizer, when
	 * built in, keep quiet. */
	snprintf(cmd, sizeof(cmd), "ASAN_OPTIONS=detect_leaks=0 "
		 "TSAN_OPTIONS=report_thread_leaks=0 %s%s "
		 "./tests/leaky 2>&1", debug ? "CTX_DEBUG=" : "env -u CTX_DEBUG ",
		 debug ? debug : "");
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0); /* the report changes no exit code */
	return out;
}

START_TEST(test_leaks_reported_with_site)
{
	const char *out = run_leaky("leaks");
	ck_assert_msg(strstr(out, "leaky.c:11 was never released"),
		      "no report for the lost context in:\n%s", out);
	/* __FILE__ may carry a directory (a VPATH build): match around it. */
	ck_assert_msg(strstr(out, "it keeps alive context.Background."
			     "WithCancel created at ") &&
		      strstr(out, "leaky.c:10 (released)"),
		      "its released parent is not listed under it in:\n%s",
		      out);
	ck_assert_msg(!strstr(out, "leaky.c:10 was never released"),
		      "a released parent was reported as a leak:\n%s", out);
	ck_assert_msg(strstr(out, ".WithDeadline("), "no chain in:\n%s", out);
	ck_assert_msg(!strstr(out, "leaky.c:12"),
		      "a released context was reported:\n%s", out);
	ck_assert_msg(strstr(out, "3 contexts never released"),
		      "no count in:\n%s", out);
}
END_TEST

/* A leaked context that has ended says where its end came from. */
START_TEST(test_leak_report_origin)
{
	const char *out = run_leaky("leaks");
	ck_assert_msg(strstr(out, "leaky.c:28 was never released (it ended: "
			     "ctx_cancel at ") &&
		      strstr(out, "leaky.c:29)"),
		      "no origin for the ended context in:\n%s", out);
}
END_TEST

/* A refused constructor drops the site its macro recorded, so the next
 * context made without a site does not inherit it. */
START_TEST(test_refused_constructor_drops_site)
{
	const char *out = run_leaky("leaks");
	ck_assert_msg(!strstr(out, "leaky.c:26"),
		      "a refused ctx_with_signals left its site:\n%s", out);
	ck_assert_msg(strstr(out, "context.Background.WithCancel created at "
			     "(unknown) was never released"),
		      "no report for the context made through a pointer:\n%s",
		      out);
}
END_TEST

START_TEST(test_thread_leaks_reported_with_site)
{
	const char *out = run_leaky("leaks");
	ck_assert_msg(strstr(out, "leaky.c:18 was never joined or detached"),
		      "no report for the forgotten thread handle in:\n%s", out);
	ck_assert_msg(!strstr(out, "leaky.c:17") && !strstr(out, "leaky.c:19"),
		      "a joined or detached handle was reported:\n%s", out);
	ck_assert_msg(strstr(out, "1 thread handle never joined or detached"),
		      "no count in:\n%s", out);
}
END_TEST

START_TEST(test_silent_without_debug)
{
	ck_assert_str_eq(run_leaky(NULL), "");
	ck_assert_str_eq(run_leaky("other"), "");
}
END_TEST

Suite *suite_debug(void)
{
	Suite *s = suite_create("debug");
	TCase *tc = tcase_create("leaks");
	tcase_set_timeout(tc, 30);
	tu_add_tests(tc, test_leaks_reported_with_site,
		     test_thread_leaks_reported_with_site,
		     test_refused_constructor_drops_site,
		     test_leak_report_origin, test_silent_without_debug);
	suite_add_tcase(s, tc);
	return s;
}
