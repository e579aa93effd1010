/*
 * The descriptor budget of blocked threads (issues 11 and 30): 500
 * threads in ctx_read on 500 socket pairs, each after a timed wait that
 * ended at its deadline, and 500 in ctx_sleep, all under one root, must
 * fit in a descriptor limit of the sockets plus FDS_PER_THREAD per thread
 * plus a few, and all must end with one ctx_cancel.  The suite runs on
 * both backends (tests/uring.sh).
 *
 * The limit is only ever lowered, and only in a forked child, so that the
 * rest of the run keeps its own.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "suites.h"
#include "testutil.h"

/* The ceiling per blocked thread: the one descriptor that wakes it and
 * times its deadlines (runtime/wait/readiness.c). */
enum { FDS_PER_THREAD = 1 };
enum { SLACK_FDS = 16 };

static atomic_int started, early; /* early: a wait that ended by itself */
static atomic_int early_err;

static void *reader(ctx_t *ctx, void *arg)
{
	char b;
	/* A timed wait first: whatever it needed must not stay behind. */
	int t = ctx_sleep(ctx, CTX_MSEC);
	if (t != 0) {
		atomic_fetch_add(&early, 1);
		atomic_store(&early_err, t);
	}
	atomic_fetch_add(&started, 1);
	ssize_t n = ctx_read(ctx, *(int *)arg, &b, 1);
	int e = n < 0 ? errno : EIO; /* a byte or EOF: nobody wrote or closed */
	if (e != CTX_CANCELED) {
		atomic_fetch_add(&early, 1);
		atomic_store(&early_err, e);
	}
	return (void *)(intptr_t)e;
}

static void *sleeper(ctx_t *ctx, void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	int e = ctx_sleep(ctx, 60 * CTX_SEC);
	if (e != CTX_CANCELED) {
		atomic_fetch_add(&early, 1);
		atomic_store(&early_err, e);
	}
	return (void *)(intptr_t)e;
}

/* Threads of this process asleep in the kernel (state S in their stat). */
static int sleeping_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *de;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], buf[512];
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		char *p = strrchr(buf, ')'); /* the name may hold spaces */
		if (p && p[1] == ' ' && p[2] == 'S')
			n++;
	}
	closedir(d);
	return n;
}

#define FAIL(...)                                                          \
	do {                                                               \
		fprintf(stderr, "fdcount: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                       \
		_exit(1);                                                  \
	} while (0)

static void run_child(int nread, int nsleep)
{
	int nthreads = nread + nsleep;
	int baseline = tu_count_fds();
	struct rlimit rl;
	if (baseline < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
		FAIL("cannot count descriptors or read RLIMIT_NOFILE");
	rlim_t want = (rlim_t)(baseline + 2 * nread +
			       FDS_PER_THREAD * nthreads + SLACK_FDS);
	if (rl.rlim_cur > want) /* lower only */
		rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		FAIL("setrlimit: %s", strerror(errno));

	int (*sv)[2] = calloc((size_t)nread, sizeof(*sv));
	ctx_thread_t **t = calloc((size_t)nthreads, sizeof(*t));
	if (!sv || !t)
		FAIL("out of memory");
	for (int i = 0; i < nread; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]) != 0)
			FAIL("socketpair %d: %s", i, strerror(errno));

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* 64 KiB; the sanitizers' (quick) runs need more of every stack. */
	pthread_attr_setstacksize(&attr, tu_quick() ? 256 * 1024 : 64 * 1024);
	ctx_t *root = ctx_with_cancel(ctx_background());
	if (!root)
		FAIL("ctx_with_cancel: %s", strerror(errno));
	for (int i = 0; i < nthreads; i++) {
		int e = i < nread ? ctx_thread_create_attr(&t[i], &attr, root,
							   reader, &sv[i][0])
				  : ctx_thread_create_attr(&t[i], &attr, root,
							   sleeper, NULL);
		if (e)
			FAIL("thread %d: %s", i, strerror(e));
	}
	pthread_attr_destroy(&attr);

	/* All started, none ended, and that many asleep in the kernel. */
	int64_t t0 = ctx_now();
	while (atomic_load(&started) < nthreads || sleeping_tasks() < nthreads) {
		if (atomic_load(&early))
			FAIL("%d of %d waits ended before the cancel, the last "
			     "with %s", atomic_load(&early), nthreads,
			     ctx_strerror(atomic_load(&early_err)));
		if (ctx_now() - t0 > 120 * CTX_SEC)
			FAIL("after 120 s only %d of %d threads started, %d "
			     "tasks asleep", atomic_load(&started), nthreads,
			     sleeping_tasks());
		tu_sleep_ns(10 * CTX_MSEC);
	}
	tu_sleep_ns(100 * CTX_MSEC); /* a last wait may still be arming */
	if (atomic_load(&early))
		FAIL("%d of %d waits ended before the cancel, the last with %s",
		     atomic_load(&early), nthreads,
		     ctx_strerror(atomic_load(&early_err)));
	int used = tu_count_fds() - baseline - 2 * nread;
	fprintf(stderr, "fdcount: %d descriptors for %d blocked threads "
			"(%.2f per thread; ceiling %d)\n", used, nthreads,
		(double)used / nthreads, FDS_PER_THREAD);
	if (used > FDS_PER_THREAD * nthreads)
		FAIL("%d descriptors is over %d per thread", used,
		     FDS_PER_THREAD);

	ctx_cancel(root);
	ctx_t *bound = ctx_with_timeout(ctx_background(), 30 * CTX_SEC);
	if (!bound)
		FAIL("ctx_with_timeout: %s", strerror(errno));
	for (int i = 0; i < nthreads; i++) {
		void *res;
		int e = ctx_thread_join(bound, t[i], &res);
		if (e)
			FAIL("join %d within 30 s: %s", i, ctx_strerror(e));
		if ((intptr_t)res != CTX_CANCELED)
			FAIL("thread %d returned %s, not CTX_CANCELED", i,
			     ctx_strerror((int)(intptr_t)res));
	}
	ctx_release(bound);
	ctx_release(root);
	_exit(0);
}

START_TEST(test_fdcount_blocked_threads)
{
	int n = tu_quick() ? 100 : 500;
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		run_child(n, n);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the child failed (status %#x): see its message above",
		      status);
}
END_TEST

Suite *suite_fdcount(void)
{
	Suite *s = suite_create("fdcount");
	TCase *tc = tcase_create("budget");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_fdcount_blocked_threads);
	suite_add_tcase(s, tc);
	return s;
}
