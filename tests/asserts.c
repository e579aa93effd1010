/*
 * CTX_ASSERT: a broken invariant stops the process with a message naming
 * it.  Only in builds with asserts (--enable-debug, sanitizers); without
 * them the suite has no test and says so.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx-internal.h"
#include "suites.h"

#ifdef CTX_ASSERTS
/* An unref without its ref: a value node (no lock, no list) whose count
 * is already zero, on this stack so that nothing is freed twice. */
static void underflow(void)
{
	ctx_t fake;
	memset(&fake, 0, sizeof(fake));
	fake.kind = CTX__VALUE;
	fake.done_fd = -1;
	atomic_init(&fake.refs, 0);
	ctx_unref(&fake);
}

START_TEST(test_refcount_underflow_aborts)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		underflow();
		_exit(0); /* reached only if nothing was asserted */
	}
	close(pfd[1]);
	char out[1024];
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(out) - 1 &&
	       (n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(pfd[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "the child did not abort (status %#x): %s", status, out);
	ck_assert_msg(strstr(out, "libctx: assertion failed: old > 0 ("),
		      "no assertion message in: %s", out);
	ck_assert_msg(strstr(out, "context.c:") && strstr(out, ", drop_ref)"),
		      "the message lacks the place: %s", out);
}
END_TEST
#endif

Suite *suite_asserts(void)
{
	Suite *s = suite_create("asserts");
#ifdef CTX_ASSERTS
	TCase *tc = tcase_create("asserts");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_refcount_underflow_aborts);
	suite_add_tcase(s, tc);
#else
	fprintf(stderr, "asserts: skipped: built without CTX_ASSERTS "
			"(configure --enable-debug or --enable-sanitizers)\n");
#endif
	return s;
}
