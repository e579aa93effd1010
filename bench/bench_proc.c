/*
 * bench_proc: spawn + wait of /bin/true with libctx (ctx_proc_spawn +
 * ctx_proc_wait + ctx_proc_free under a cancellable context) beside the
 * plain posix_spawn + waitpid.
 *
 *   bench/bench_proc [--quick]
 *
 * Output, on stdout: "# " comment lines (the machine, the ratio), then
 * CSV lines "scenario,variant,value,unit":
 *
 *	spawn_wait_true,libctx,NS,ns
 *	spawn_wait_true,posix_spawn,NS,ns
 *
 * Each value is the median over batches of the mean ns per spawn + wait;
 * within a batch the two variants take turns, one process each, so that
 * load on the machine falls on both alike.  Every process must exit 0,
 * or the program fails.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "benchutil.h"
#include "ctx.h"

extern char **environ;
static char *argv_true[] = { "/bin/true", NULL };

static int64_t one_libctx(ctx_t *c)
{
	int64_t t0 = bench_now();
	ctx_proc_t *p;
	int st = -1, e = ctx_proc_spawn(&p, c, "/bin/true", argv_true, NULL);
	if (e)
		bench_fail("ctx_proc_spawn: %s", strerror(e));
	if ((e = ctx_proc_wait(p, &st)) || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_fail("ctx_proc_wait: %d, status %#x", e, st);
	ctx_proc_free(p);
	return bench_now() - t0;
}

static int64_t one_plain(void)
{
	int64_t t0 = bench_now();
	pid_t pid;
	int st = -1, e = posix_spawn(&pid, "/bin/true", NULL, NULL, argv_true,
				     environ);
	if (e)
		bench_fail("posix_spawn: %s", strerror(e));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_fail("waitpid: status %#x", st);
	return bench_now() - t0;
}

int main(int argc, char **argv)
{
	struct bench b;
	bench_init(&b, argc, argv);
	bench_print_machine("bench_proc");
	int batches = b.quick ? 3 : 9, per = b.quick ? 20 : 200;
	int64_t lib[9], plain[9];
	ctx_t *c = ctx_with_cancel(ctx_background());
	if (!c)
		bench_fail("ctx_with_cancel");
	for (int i = 0; i < 10; i++) /* warm up: the after-func thread */
		one_libctx(c), one_plain();
	for (int k = 0; k < batches; k++) {
		int64_t l = 0, p = 0;
		for (int i = 0; i < per; i++) {
			l += one_libctx(c);
			p += one_plain();
		}
		lib[k] = l / per;
		plain[k] = p / per;
	}
	ctx_release(c);
	qsort(lib, (size_t)batches, sizeof(lib[0]), bench_cmp_i64);
	qsort(plain, (size_t)batches, sizeof(plain[0]), bench_cmp_i64);
	int64_t ml = lib[batches / 2], mp = plain[batches / 2];
	printf("# %d batches of %d processes each; ratio libctx/posix_spawn "
	       "%.2f\n", batches, per, (double)ml / (double)mp);
	printf("spawn_wait_true,libctx,%lld,ns\n", (long long)ml);
	printf("spawn_wait_true,posix_spawn,%lld,ns\n", (long long)mp);
	return 0;
}
