/*
 * A thread killed in the middle of a wait.
 *
 * Guaranteed:
 *  - exit() from any thread ends the process with that status while
 *    other threads are blocked in libctx waits of every kind (and the
 *    library's own threads run); atexit handlers run, the leak report of
 *    CTX_DEBUG=leaks among them.
 *  - pthread_cancel() and libctx coexist when the target disables
 *    cancellation around its libctx calls and lets its context end the
 *    wait: the call returns normally, then the cancel acts at the next
 *    cancellation point.
 * Undefined (documented in ctx(3)): a thread cancelled or exited with
 * pthread_exit() while inside a libctx call.  Its wait is still
 * registered with its context, on a stack that no longer exists, so the
 * context's cancellation later writes there.  Such a case cannot be a
 * test; it is left out on purpose.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

static ctx_t *root;
static int pipefd[2];
static ctx_chan_t *ch;

static void *block_read(void *arg)
{
	char c;
	(void)arg;
	ctx_read(root, pipefd[0], &c, 1);
	return NULL;
}

static void *block_wait(void *arg)
{
	(void)arg;
	ctx_wait(root);
	return NULL;
}

static void *block_chan(void *arg)
{
	long v;
	(void)arg;
	ctx_chan_recv(root, ch, &v);
	return NULL;
}

static void *block_sleep(void *arg)
{
	(void)arg;
	ctx_sleep(root, 60 * CTX_SEC);
	return NULL;
}

static void *forever(ctx_t *ctx, void *arg)
{
	ctx_wait(ctx);
	return arg;
}

static void *block_join(void *arg)
{
	ctx_thread_t *t;
	(void)arg;
	if (ctx_thread_create(&t, root, forever, NULL) == 0)
		ctx_thread_join(root, t, NULL);
	return NULL;
}

static void after(void *arg) { (void)arg; }

static int report_fd = -1; /* the child's atexit handler writes here */

static void at_exit(void)
{
	if (write(report_fd, "x", 1) != 1)
		_exit(93);
}

static void *exit_now(void *arg)
{
	tu_sleep_ns(50 * CTX_MSEC); /* let the others block */
	exit((int)(long)arg);
}

/* In the child: block threads in every kind of wait, then exit(7) from
 * yet another thread.  Never returns. */
static void child_exits_mid_wait(void)
{
	void *(*fns[])(void *) = { block_read, block_wait, block_chan,
				   block_sleep, block_join };
	pthread_t t;
	root = ctx_with_timeout(ctx_background(), 60 * CTX_SEC);
	if (!root || pipe2(pipefd, O_CLOEXEC) || !(ch = ctx_chan_new(8, 0)) ||
	    atexit(at_exit))
		_exit(90);
	ctx_after_func(root, after, NULL); /* the runner and timer threads */
	ctx_done_fd(root);
	for (size_t i = 0; i < sizeof(fns) / sizeof(*fns); i++)
		if (pthread_create(&t, NULL, fns[i], NULL))
			_exit(91);
	pthread_create(&t, NULL, exit_now, (void *)7L);
	ctx_wait(root); /* the main thread waits too */
	_exit(92);
}

START_TEST(test_exit_mid_wait)
{
	int rep[2];
	ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
	int64_t t0 = ctx_now();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(rep[0]);
		report_fd = rep[1];
		child_exits_mid_wait();
	}
	close(rep[1]);
	char x;
	ck_assert_int_eq(read(rep[0], &x, 1), 1); /* its atexit handler ran */
	close(rep[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "status %#x", status);
	ck_assert_int_eq(WEXITSTATUS(status), 7);
	ck_assert_msg(tu_ms_since(t0) < 10000, "exit took %.0f ms",
		      tu_ms_since(t0));
}
END_TEST

static _Atomic int wait_result = -1;
static _Atomic bool cleaned_up;

static void mark_cleaned(void *arg)
{
	(void)arg;
	atomic_store(&cleaned_up, true);
}

/* Cancellation disabled around the libctx call: the wait is ended by
 * the context, then the pending cancel acts at pthread_testcancel. */
static void *cancel_safe_waiter(void *arg)
{
	ctx_t *c = arg;
	int old;
	pthread_cleanup_push(mark_cleaned, NULL);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	atomic_store(&wait_result, ctx_sleep(c, 60 * CTX_SEC));
	pthread_setcancelstate(old, NULL);
	pthread_testcancel();
	pthread_cleanup_pop(0);
	return NULL;
}

START_TEST(test_pthread_cancel_with_context)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	pthread_t t;
	void *res;
	atomic_store(&wait_result, -1);
	atomic_store(&cleaned_up, false);
	ck_assert_int_eq(pthread_create(&t, NULL, cancel_safe_waiter, c), 0);
	tu_sleep_ns(50 * CTX_MSEC); /* mid-wait */
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_cancel(t), 0);
	ctx_cancel(c); /* what ends the wait */
	ck_assert_int_eq(pthread_join(t, &res), 0);
	ck_assert_ptr_eq(res, PTHREAD_CANCELED);
	ck_assert_int_eq(atomic_load(&wait_result), CTX_CANCELED);
	ck_assert(atomic_load(&cleaned_up));
	ck_assert_msg(tu_ms_since(t0) < 5000, "%.0f ms", tu_ms_since(t0));
	/* The context is whole: it can still be waited on and released. */
	ck_assert_int_eq(ctx_wait(c), CTX_CANCELED);
	ctx_release(c);
}
END_TEST

Suite *suite_kill(void)
{
	Suite *s = suite_create("kill");
	TCase *tc = tu_tcase(s, "kill", 30);
	tu_add_tests(tc, test_exit_mid_wait, test_pthread_cancel_with_context);
	return s;
}
