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

#include "core/core.h"
#include "suites.h"
#include "testutil.h"

#ifdef CTX_ASSERTS
/* An unref without its ref: a live value node whose count is forced to
 * zero, so that the unref finds the invariant broken while the memory is
 * still the node's (no use after free for a sanitizer or the checking
 * mode to report first). */
static void underflow(void)
{
	static int key;
	ctx_t *v = ctx_with_value(ctx_background(), &key, NULL);
	atomic_store(&v->refs, 0);
	ctx_unref(v);
}

/* Two node locks at once, against the lock order. */
static void nested_node_locks(void)
{
	ctx_t *a = ctx_with_cancel(ctx_background());
	ctx_t *b = ctx_with_cancel(ctx_background());
	ctx__node_lock(&a->lock);
	ctx__node_lock(&b->lock);
}

/* Run fn in a child with stderr piped back; expect SIGABRT and want[]
 * in the message. */
static void expect_abort(void (*fn)(void), const char *const want[])
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		fn();
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
	for (int i = 0; want[i]; i++)
		ck_assert_msg(strstr(out, want[i]), "no '%s' in: %s", want[i],
			      out);
}

START_TEST(test_refcount_underflow_aborts)
{
	expect_abort(underflow, (const char *const[]){
		"libctx: assertion failed: old > 0 (", "context.c:",
		", drop_ref)\n", NULL });
}
END_TEST

START_TEST(test_nested_node_locks_abort)
{
	expect_abort(nested_node_locks, (const char *const[]){
		"libctx: assertion failed: ctx__node_locks_held == 0 (",
		"lock.h:", ", ctx__node_lock)\n", NULL });
}
END_TEST
#endif

Suite *suite_asserts(void)
{
	Suite *s = suite_create("asserts");
#ifdef CTX_ASSERTS
	TCase *tc = tu_tcase(s, "asserts", 30);
	tu_add_tests(tc, test_refcount_underflow_aborts,
		     test_nested_node_locks_abort);
#else
	fprintf(stderr, "asserts: skipped: built without CTX_ASSERTS "
			"(configure --enable-debug or --enable-sanitizers)\n");
#endif
	return s;
}
