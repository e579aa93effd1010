/*
 * pass_ctx and ctx_inherited: what a child gets (its budget, a
 * descriptor that no other program inherits, the caller's own stale
 * variables replaced) and what it makes of an environment (nothing,
 * garbage, a zero budget); the protocol read by a shell script that
 * knows nothing of libctx (end of file on a cancel, a byte on the
 * deadline); and a tree three deep (tests/proc/passctx_child, which
 * passes its inherited context on): the grandchild knows its budget and
 * sees the root's cancel, the root's deadline, and its parent's death.
 *
 * The children print ctx_now() when they see an end; CLOCK_MONOTONIC is
 * the same clock in every process of the test, so the delay from the
 * root's cancel to the grandchild's end is measured in one clock.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../suites.h"
#include "../testutil.h"

#define CHILD "./tests/proc/passctx_child"

extern char **environ;

/* How soon a cancel must cross two processes: the 100 ms, with
 * room for sanitizers, which slow every step several times. */
#if defined(__SANITIZE_ADDRESS__) || defined(TU_TSAN)
#define CROSS_MS 300
#else
#define CROSS_MS 100
#endif

/* A child with its stdout on a pipe, and what it has printed. */
struct run {
	ctx_proc_t *p;
	char buf[4096];
	size_t len;
};

static void run_start(struct run *r, ctx_t *ctx, char *const argv[],
		      struct ctx_proc_attr *a)
{
	r->len = 0;
	a->stdio[1] = CTX_STDIO_PIPE;
	int e = ctx_proc_spawn(&r->p, ctx, argv[0], argv, a);
	ck_assert_msg(e == 0, "spawn %s: %s", argv[0], strerror(e));
}

/* The next line (without its newline) into line, waiting 10 s at most;
 * false at the end of the output. */
static bool next_line(struct run *r, char *line, size_t len)
{
	CTX_AUTO ctx_t *t = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	char *nl;
	while (!(nl = memchr(r->buf, '\n', r->len))) {
		ck_assert_msg(r->len < sizeof r->buf - 1, "a line too long");
		ssize_t n = ctx_read(t, ctx_proc_stdio(r->p, 1), r->buf + r->len,
				     sizeof r->buf - 1 - r->len);
		ck_assert_msg(n >= 0, "read: %s", strerror(errno));
		if (n == 0)
			return false;
		r->len += (size_t)n;
	}
	size_t k = (size_t)(nl - r->buf);
	ck_assert_uint_lt(k, len);
	memcpy(line, r->buf, k);
	line[k] = '\0';
	memmove(r->buf, nl + 1, r->len - k - 1);
	r->len -= k + 1;
	return true;
}

/* The next line that starts with prefix (others are skipped). */
static void expect(struct run *r, const char *prefix, char *line,
		   size_t len)
{
	while (next_line(r, line, len))
		if (!strncmp(line, prefix, strlen(prefix)))
			return;
	ck_abort_msg("the child ended without a line \"%s...\"", prefix);
}

/* Wait for the child, free it; its exit status (-1: killed). */
static int run_end(struct run *r)
{
	int status = 0;
	ctx_proc_wait(r->p, &status);
	ctx_proc_free(r->p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- what a child gets ----------------------------------------------- */

/* CHILD env under ctx (with pass_ctx, or with env as its environment):
 * its two lines into l1 and l2. */
static void child_env(ctx_t *ctx, bool pass, const char *const *env,
		      char *l1, char *l2, size_t len)
{
	struct run r;
	char *argv[] = { CHILD, "env", NULL };
	struct ctx_proc_attr a = { .pass_ctx = pass, .envp = env };
	run_start(&r, ctx, argv, &a);
	expect(&r, "kind", l1, len);
	expect(&r, "vars", l2, len);
	ck_assert_int_eq(run_end(&r), 0);
}

START_TEST(pass_budget_and_fd)
{
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
	char l1[256], l2[256];
	long long budget;
	child_env(c, true, NULL, l1, l2, sizeof l1);
	ck_assert_msg(sscanf(l1, "kind inherited same 1 err 0 budget %lld",
			     &budget) == 1, "child: %s", l1);
	ck_assert_int_le(budget, 5 * CTX_SEC);
	ck_assert_int_gt(budget, 3 * CTX_SEC);
	/* Both variables taken out, the descriptor close-on-exec now. */
	ck_assert_str_eq(l2, "vars - - cloexec 1");
	/* No deadline: no budget, but the descriptor all the same. */
	CTX_AUTO ctx_t *n = ctx_with_cancel(ctx_background());
	child_env(n, true, NULL, l1, l2, sizeof l1);
	ck_assert_str_eq(l1, "kind inherited same 1 err 0 budget -1");
	ck_assert_str_eq(l2, "vars - - cloexec 1");
}
END_TEST

/* An environment for CHILD: the backend the test runs on, and extra. */
static void env_with(const char **env, const char *a, const char *b)
{
	static char backend[64];
	const char *be = getenv("CTX_BACKEND");
	snprintf(backend, sizeof backend, "CTX_BACKEND=%s", be ? be : "");
	int n = 0;
	env[n++] = backend;
	if (a)
		env[n++] = a;
	if (b)
		env[n++] = b;
	env[n] = NULL;
}

START_TEST(inherited_from_environments)
{
	const char *env[4];
	char l1[256], l2[256];
	/* Nothing passed: background. */
	env_with(env, NULL, NULL);
	child_env(ctx_background(), false, env, l1, l2, sizeof l1);
	ck_assert_str_eq(l1, "kind background same 1 err 0 budget -1");
	/* Garbage, and a descriptor that is not open: neither counts. */
	env_with(env, "CTX_TIMEOUT_NS=soon", "CTX_DONE_FD=57");
	child_env(ctx_background(), false, env, l1, l2, sizeof l1);
	ck_assert_str_eq(l1, "kind inherited same 1 err 0 budget -1");
	ck_assert_str_eq(l2, "vars - - cloexec -1");
	/* No time left: ended at once, by its deadline. */
	env_with(env, "CTX_TIMEOUT_NS=0", NULL);
	child_env(ctx_background(), false, env, l1, l2, sizeof l1);
	ck_assert_msg(!strncmp(l1, "kind inherited same 1 err 110 ", 30),
		      "child: %s", l1);
}
END_TEST

/* The caller's own variables (it was passed a context itself) are
 * replaced, not doubled. */
START_TEST(pass_replaces_stale_variables)
{
	const char *env[] = { "CTX_TIMEOUT_NS=1", "PATH=/usr/bin:/bin",
			      "CTX_DONE_FD=99", NULL };
	char *argv[] = { "/bin/sh", "-c",
			 "env | grep -c '^CTX_'; echo \"$CTX_TIMEOUT_NS\"",
			 NULL };
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 5 * CTX_SEC);
	struct run r;
	struct ctx_proc_attr a = { .pass_ctx = true, .envp = env };
	char line[256];
	run_start(&r, c, argv, &a);
	ck_assert(next_line(&r, line, sizeof line));
	ck_assert_str_eq(line, "2");
	ck_assert(next_line(&r, line, sizeof line));
	ck_assert_int_gt(atoll(line), 3 * CTX_SEC);
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

/* The descriptors a program started without pass_ctx has open. */
static void fds_of_plain_child(char *line, size_t len)
{
	char *argv[] = { "/bin/sh", "-c", "cd /proc/self/fd && echo *",
			 NULL };
	struct ctx_proc_attr a = { 0 };
	struct run r;
	run_start(&r, ctx_background(), argv, &a);
	ck_assert(next_line(&r, line, len));
	ck_assert_int_eq(run_end(&r), 0);
}

/* While a child holds its descriptor, another program started without
 * pass_ctx gets no end of that pipe. */
START_TEST(pass_fd_not_leaked)
{
	char before[256], during[256], line[64];
	fds_of_plain_child(before, sizeof before);
	char *argv[] = { "/bin/sh", "-c", "echo up; exec sleep 30", NULL };
	CTX_AUTO ctx_t *c = ctx_with_cancel(ctx_background());
	struct ctx_proc_attr a = { .pass_ctx = true };
	struct run r;
	run_start(&r, c, argv, &a);
	ck_assert(next_line(&r, line, sizeof line));
	fds_of_plain_child(during, sizeof during);
	ck_assert_str_eq(during, before);
	ctx_cancel(c); /* SIGKILL */
	ck_assert_int_eq(run_end(&r), -1);
}
END_TEST

START_TEST(pass_bad_spawn_leaves_nothing)
{
	if (tu_valgrind()) {
		/* Under valgrind the spawn's child runs apart from the parent
		 * (no shared memory), so a failed exec shows as exit 127. */
		fprintf(stderr, "passctx/bad_spawn: skipped under valgrind\n");
		return;
	}
	int fds = tu_count_fds();
	char *argv[] = { "/nonexistent/program", NULL };
	struct ctx_proc_attr a = { .pass_ctx = true };
	ctx_proc_t *p = NULL;
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), CTX_SEC);
	ck_assert_int_eq(ctx_proc_spawn(&p, c, argv[0], argv, &a), ENOENT);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(tu_settle_fds(fds, CTX_SEC), fds);
}
END_TEST

/* ---- the protocol, read by a shell script ------------------------------ */

/* A script without libctx: it reads the descriptor (through /dev/fd,
 * which any shell can open on a pipe) until end of file.  cancel_signal
 * SIGURG, ignored by default, so that the script ends on its own. */
static void start_script(struct run *r, ctx_t *ctx)
{
	char *argv[] = { "/bin/sh", "-c", "echo start; "
			 "read x < /dev/fd/\"$CTX_DONE_FD\"; echo \"eof [$x]\"",
			 NULL };
	struct ctx_proc_attr a = { .pass_ctx = true, .cancel_signal = SIGURG,
				   .wait_delay = 10 * CTX_SEC };
	char line[64];
	run_start(r, ctx, argv, &a);
	ck_assert(next_line(r, line, sizeof line));
	ck_assert_str_eq(line, "start");
}

START_TEST(script_sees_cancel)
{
	CTX_AUTO ctx_t *c = ctx_with_cancel(ctx_background());
	struct run r;
	char line[64];
	start_script(&r, c);
	tu_sleep_ns(20 * CTX_MSEC);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	ck_assert(next_line(&r, line, sizeof line));
	double ms = tu_ms_since(t0);
	ck_assert_str_eq(line, "eof []");
	ck_assert_msg(ms < 1000, "the script read the end %.1f ms after the "
		      "cancel", ms);
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

START_TEST(script_sees_deadline)
{
	int64_t t0 = ctx_now();
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	struct run r;
	char line[64];
	start_script(&r, c);
	ck_assert(next_line(&r, line, sizeof line));
	double ms = tu_ms_since(t0);
	ck_assert_str_eq(line, "eof [D]"); /* the deadline's byte */
	ck_assert_msg(ms >= 300 && ms < 1300, "the end came after %.1f ms",
		      ms);
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

/* examples/inherit.sh, the protocol's example: its work stopped by the
 * parent's cancel, and by its deadline (the byte or its own budget,
 * whichever comes first). */
static void start_example(struct run *r, ctx_t *ctx, char *path,
			  size_t len)
{
	const char *src = getenv("srcdir");
	snprintf(path, len, "%s/examples/inherit.sh", src ? src : ".");
	char *argv[] = { "/bin/sh", "-c", "exec sh \"$0\" 10 2>&1", path,
			 NULL };
	struct ctx_proc_attr a = { .pass_ctx = true, .cancel_signal = SIGURG,
				   .wait_delay = 10 * CTX_SEC };
	run_start(r, ctx, argv, &a);
}

START_TEST(script_example)
{
	char path[512], line[256];
	struct run r;
	CTX_AUTO ctx_t *c = ctx_with_cancel(ctx_background());
	start_example(&r, c, path, sizeof path);
	tu_sleep_ns(100 * CTX_MSEC);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	expect(&r, "inherit.sh:", line, sizeof line);
	ck_assert_str_eq(line, "inherit.sh: the parent's context ended: "
			 "canceled");
	ck_assert_int_lt(ctx_now() - t0, CTX_SEC);
	ck_assert_int_eq(run_end(&r), 1);
	CTX_AUTO ctx_t *d = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	start_example(&r, d, path, sizeof path);
	expect(&r, "inherit.sh:", line, sizeof line);
	ck_assert_msg(strstr(line, "deadline exceeded") ||
		      strstr(line, "budget"), "%s", line);
	ck_assert_int_eq(run_end(&r), 1);
}
END_TEST

/* ---- a tree three deep -------------------------------------------------- */

/* Root -> CHILD relay 1 -> CHILD report: the grandchild's budget line
 * read; its budget in *budget. */
static void start_tree(struct run *r, ctx_t *ctx, long long *budget)
{
	char *argv[] = { CHILD, "relay", "1", NULL };
	struct ctx_proc_attr a = { .pass_ctx = true, .cancel_signal = SIGTERM,
				   .wait_delay = 20 * CTX_SEC };
	char line[128];
	run_start(r, ctx, argv, &a);
	expect(r, "budget", line, sizeof line);
	ck_assert_int_eq(sscanf(line, "budget %lld", budget), 1);
}

/* The grandchild's "ended" line: its error and when it saw the end. */
static int64_t tree_end(struct run *r, int *err, int *cause)
{
	char line[128];
	long long at;
	expect(r, "ended", line, sizeof line);
	ck_assert_int_eq(sscanf(line, "ended %d %d %lld", err, cause, &at), 3);
	return at;
}

START_TEST(tree_cancel)
{
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	struct run r;
	long long budget;
	int err, cause;
	start_tree(&r, c, &budget);
	ck_assert_int_le(budget, 10 * CTX_SEC);
	ck_assert_int_gt(budget, 7 * CTX_SEC);
	tu_sleep_ns(20 * CTX_MSEC);
	int64_t t0 = ctx_now();
	ctx_cancel(c);
	double ms = (double)(tree_end(&r, &err, &cause) - t0) / CTX_MSEC;
	fprintf(stderr, "# passctx: the grandchild saw the root's cancel "
		"after %.2f ms\n", ms);
	ck_assert_int_eq(err, CTX_CANCELED);
	ck_assert_msg(ms >= 0 && ms < CROSS_MS, "the grandchild saw the "
		      "cancel after %.1f ms (limit %d)", ms, CROSS_MS);
	/* It exits, then its parent does: the context ended the tree. */
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

START_TEST(tree_deadline)
{
	int64_t start = ctx_now();
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 400 * CTX_MSEC);
	int64_t d;
	ck_assert(ctx_deadline(c, &d));
	struct run r;
	long long budget;
	int err, cause;
	start_tree(&r, c, &budget);
	ck_assert_int_lt(budget, 400 * CTX_MSEC);
	ck_assert_int_gt(budget, 0);
	double ms = (double)(tree_end(&r, &err, &cause) - d) / CTX_MSEC;
	fprintf(stderr, "# passctx: the grandchild saw the root's deadline "
		"%.2f ms after it (budget %.1f ms of 400, %.1f ms in)\n", ms,
		(double)budget / CTX_MSEC, (double)(d - start) / CTX_MSEC);
	ck_assert_int_eq(err, CTX_DEADLINE_EXCEEDED);
	ck_assert_msg(ms >= 0 && ms < CROSS_MS, "%.1f ms after the deadline",
		      ms);
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

/* The parent dies: its end of the pipe closes with it. */
START_TEST(tree_parent_killed)
{
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 10 * CTX_SEC);
	struct run r;
	long long budget;
	int err, cause;
	start_tree(&r, c, &budget);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(ctx_proc_signal(r.p, SIGKILL), 0);
	double ms = (double)(tree_end(&r, &err, &cause) - t0) / CTX_MSEC;
	ck_assert_int_eq(err, CTX_CANCELED);
	ck_assert_msg(ms >= 0 && ms < CROSS_MS, "%.1f ms after the kill", ms);
	ck_assert_int_eq(ctx_err(c), 0); /* the root's own is untouched */
	ck_assert_int_eq(run_end(&r), -1);
}
END_TEST

/* Only the descriptor reaches the child (a script in between dropped
 * the budget): the deadline's byte alone makes it a deadline. */
START_TEST(tree_deadline_by_byte)
{
	char *argv[] = { "/bin/sh", "-c",
			 "unset CTX_TIMEOUT_NS; exec " CHILD " report", NULL };
	CTX_AUTO ctx_t *c = ctx_with_timeout(ctx_background(), 300 * CTX_MSEC);
	struct ctx_proc_attr a = { .pass_ctx = true, .cancel_signal = SIGTERM,
				   .wait_delay = 20 * CTX_SEC };
	struct run r;
	char line[128];
	int err, cause;
	run_start(&r, c, argv, &a);
	expect(&r, "budget", line, sizeof line);
	ck_assert_str_eq(line, "budget -1");
	tree_end(&r, &err, &cause);
	ck_assert_int_eq(err, CTX_DEADLINE_EXCEEDED);
	ck_assert_int_eq(run_end(&r), 0);
}
END_TEST

Suite *suite_passctx(void)
{
	Suite *s = suite_create("passctx");
	TCase *tc = tu_tcase(s, "child", 30);
	tcase_add_test(tc, pass_budget_and_fd);
	tcase_add_test(tc, inherited_from_environments);
	tcase_add_test(tc, pass_replaces_stale_variables);
	tcase_add_test(tc, pass_fd_not_leaked);
	tcase_add_test(tc, pass_bad_spawn_leaves_nothing);
	tc = tu_tcase(s, "script", 30);
	tcase_add_test(tc, script_sees_cancel);
	tcase_add_test(tc, script_sees_deadline);
	tcase_add_test(tc, script_example);
	tc = tu_tcase(s, "tree", 30);
	tcase_add_test(tc, tree_cancel);
	tcase_add_test(tc, tree_deadline);
	tcase_add_test(tc, tree_parent_killed);
	tcase_add_test(tc, tree_deadline_by_byte);
	return s;
}
