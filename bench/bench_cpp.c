/*
 * bench_cpp: <ctx.hpp> beside the C calls it wraps and the standard
 * library's own stop_token (issue 26).
 *
 *  cpp/with_timeout_release  ns per ctx::with_timeout(background, 1 h)
 *                            and its destructor (cpp), against
 *                            ctx_with_timeout + ctx_release (c): the
 *                            wrapper should cost nothing measurable.
 *  cpp/stop_read             the stop request to the return of a
 *                            blocked wait: a std::jthread in ctx_read
 *                            under ctx::with_stop_token, request_stop()
 *                            (cpp); a thread in ctx_read, ctx_cancel (c);
 *                            a std::jthread in
 *                            std::condition_variable_any::wait(lock,
 *                            token, pred), request_stop() (stop_token:
 *                            the standard's own wait; it cannot wait in
 *                            a read).  Each waiter is a new thread, seen
 *                            asleep in its system call before the stop.
 *
 * The C++ halves are in bench/cpp_ops.cc; this file keeps the runner and
 * the output format of bench/benchutil.h.
 */
#include <ctx.h>

#include "benchutil.h"
#include "cpp_ops.h"

static void create_run(void *arg, int impl, int tid, uint64_t n)
{
	ctx_t *bg = ctx_background();

	(void)arg;
	(void)tid;
	if (impl == 0) {
		bench_cpp_create(n);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		ctx_t *c = ctx_with_timeout(bg, 3600 * CTX_SEC);

		if (!c)
			bench_fail("ctx_with_timeout: %s", strerror(errno));
		ctx_release(c);
	}
}

static void bench_create(void)
{
	static const char *const names[] = { "cpp", "c" };

	bench_measure(&(struct bench_spec){
		.scenario = "cpp/with_timeout_release", .names = names,
		.nimpls = 2, .fn = create_run });
}

/* One stop: ns from the request to the waiter's return. */
static double stop_once(int impl)
{
	struct bench_cpp_waiter *w = bench_cpp_start(impl);
	const char *why;
	int64_t t0, t1;

	if (!w)
		bench_fail("cpp/stop_read: cannot start waiter %d", impl);
	bench_await_blocked(bench_cpp_tid(w), 5 * CTX_SEC,
			    "cpp/stop_read waiter");
	bench_settle();
	t0 = bench_now();
	bench_cpp_stop(w);
	if ((t1 = bench_cpp_finish(w, &why)) < 0)
		bench_fail("cpp/stop_read, waiter %d: %s", impl, why);
	return (double)(t1 - t0);
}

static void bench_stop(void)
{
	static const char *const names[] = { "cpp", "stop_token", "c" };
	static const int impls[] = { BENCH_CPP_JTHREAD_READ, BENCH_CPP_CV_ANY,
				     BENCH_CPP_C_CANCEL };
	int n = B.quick ? 60 : 600;
	double *v[3];

	if (!bench_wanted("cpp/stop_read"))
		return;
	for (int k = 0; k < 3; k++)
		v[k] = bench_alloc((size_t)n * sizeof(double));
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			v[k][i] = stop_once(impls[k]);
	for (int k = 0; k < 3; k++) {
		bench_dist("cpp/stop_read", names[k], v[k], n, B.reps, "ns");
		free(v[k]);
	}
}

int main(int argc, char **argv)
{
	bench_init(argc, argv);
	bench_print_machine("bench_cpp: <ctx.hpp> beside the C calls and "
			    "std::stop_token");
	printf("# libctx backend: %s\n", ctx_backend());
	bench_section("create", bench_create);
	bench_section("stop", bench_stop);
	return 0;
}
