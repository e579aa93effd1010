/*
 * CTX_DEBUG=checks: each misuse in tests/misuse.c, run in a child
 * process, is reported on stderr with the function, the problem and
 * (where the library knows it) the creating file and line, and the child
 * aborts.  A self-join is not fatal: EDEADLK in every mode.  Without the
 * checks the same program is not run for the fatal cases, whose effect
 * is undefined there.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

struct run {
	char out[4096]; /* stdout then stderr */
	int status;
};

static void drain(int fd, char *buf, size_t len)
{
	size_t n = strlen(buf);
	ssize_t r;
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/* Run tests/misuse CASE with CTX_DEBUG set to debug (NULL: unset; "off"
 * turns the checks off also in sanitizer builds, where they are on by
 * default). */
static void run_misuse(struct run *r, const char *name, const char *debug)
{
	int out[2], err[2];
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		if (debug)
			setenv("CTX_DEBUG", debug, 1);
		else
			unsetenv("CTX_DEBUG");
		/* The aborts are the point: no core files, no LSan. */
		setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0", 1);
		execl("./tests/misuse", "misuse", name, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	r->out[0] = '\0';
	drain(out[0], r->out, sizeof(r->out));
	drain(err[0], r->out, sizeof(r->out));
	close(out[0]);
	close(err[0]);
	ck_assert_int_eq(waitpid(pid, &r->status, 0), pid);
}

/* "site N" printed by the case, as "misuse.c:N" for the report. */
static const char *site_of(const struct run *r)
{
	static char site[64];
	const char *s = strstr(r->out, "site ");
	ck_assert_msg(s, "the case printed no site:\n%s", r->out);
	snprintf(site, sizeof(site), "misuse.c:%d", atoi(s + 5));
	return site;
}

/* The case aborted with "libctx: fn: what" (and the site if asked). */
static void expect_abort(const char *name, const char *fn, const char *what,
			 bool with_site)
{
	struct run r;
	char head[256];
	run_misuse(&r, name, "checks");
	ck_assert_msg(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
		      "%s: not aborted (status %#x):\n%s", name, r.status,
		      r.out);
	snprintf(head, sizeof(head), "libctx: %s: %s", fn, what);
	ck_assert_msg(strstr(r.out, head), "%s: no \"%s\" in:\n%s", name, head,
		      r.out);
	ck_assert_msg(!strstr(r.out, "returned"), "%s went on:\n%s", name,
		      r.out);
	if (with_site)
		ck_assert_msg(strstr(r.out, site_of(&r)),
			      "%s: the report does not name %s:\n%s", name,
			      site_of(&r), r.out);
}

START_TEST(test_double_release)
{
	expect_abort("double_release", "ctx_release",
		     "context used after its last reference was dropped", true);
}
END_TEST

START_TEST(test_use_after_unref)
{
	expect_abort("use_after_unref", "ctx_err",
		     "context used after its last reference was dropped", true);
}
END_TEST

START_TEST(test_parent_released_twice)
{
	expect_abort("parent_released_twice", "ctx_unref",
		     "the parent of a context was freed while the context "
		     "still held it", true);
}
END_TEST

START_TEST(test_join_twice)
{
	expect_abort("join_twice", "ctx_thread_join",
		     "thread handle used after it was joined or detached",
		     false);
}
END_TEST

START_TEST(test_detach_twice)
{
	expect_abort("detach_twice", "ctx_thread_detach",
		     "thread handle detached twice", true);
}
END_TEST

START_TEST(test_join_after_detach)
{
	expect_abort("join_after_detach", "ctx_thread_join",
		     "thread handle joined after ctx_thread_detach", true);
}
END_TEST

START_TEST(test_after_stop_twice)
{
	expect_abort("after_stop_twice", "ctx_after_stop", "called twice",
		     false);
	expect_abort("after_stop_twice_fired", "ctx_after_stop",
		     "called twice", false);
}
END_TEST

START_TEST(test_release_borrowed)
{
	expect_abort("release_borrowed", "ctx_release",
		     "releasing a borrowed context (ctx_group_ctx", false);
}
END_TEST

/* EDEADLK in every mode; reported with the checks, silent without. */
START_TEST(test_self_join)
{
	struct run r;
	run_misuse(&r, "self_join", "checks");
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		      "status %#x:\n%s", r.status, r.out);
	ck_assert_msg(strstr(r.out, "self-join: EDEADLK"), "%s", r.out);
	ck_assert_msg(strstr(r.out, "libctx: ctx_thread_join: a thread "
			     "joining itself would wait forever"), "%s", r.out);
	ck_assert_msg(strstr(r.out, site_of(&r)), "no site in:\n%s", r.out);
	run_misuse(&r, "self_join", "off");
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		      "status %#x:\n%s", r.status, r.out);
	ck_assert_msg(strstr(r.out, "self-join: EDEADLK"), "%s", r.out);
	ck_assert_msg(!strstr(r.out, "libctx:"), "%s", r.out);
}
END_TEST

/* Without the checks, what the library can tell cheaply still returns
 * an error instead of corrupting memory: a second detach of a thread
 * that still runs is EINVAL.  (A second ctx_after_stop is not tried
 * here: whether the handle still exists then is a race by nature.) */
START_TEST(test_without_checks)
{
	struct run r;
	run_misuse(&r, "detach_twice", "off");
	ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 &&
		      strstr(r.out, "returned") && !strstr(r.out, "libctx:"),
		      "status %#x:\n%s", r.status, r.out);
}
END_TEST

Suite *suite_checks(void)
{
	Suite *s = suite_create("checks");
	TCase *tc = tcase_create("misuse");
	tcase_set_timeout(tc, 60);
	tu_add_tests(tc, test_double_release, test_use_after_unref,
		     test_parent_released_twice, test_join_twice,
		     test_detach_twice, test_join_after_detach,
		     test_after_stop_twice, test_release_borrowed,
		     test_self_join, test_without_checks);
	suite_add_tcase(s, tc);
	return s;
}
