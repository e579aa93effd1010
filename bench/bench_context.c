/*
 * bench_context: the operations of Go's context benchmarks
 * (context/benchmark_test.go) on libctx, plus the bytes and descriptors
 * a live context costs, ctx_select over two ready channels, and a merge
 * of two live contexts (ctx_with_merge, beside an after-func bridge
 * written by hand; Go's: context.AfterFunc, or a goroutine before Go
 * 1.21).  bench/go/ times the same operations in Go; bench/run.sh runs
 * the two programs in turn (--run K: this program's medians are rep K)
 * and bench/report.py sets each run beside the Go run after it.  Rows
 * are named go/<the Go benchmark's name>.
 *
 * Go collects an abandoned context tree; C must release it.  Every timed
 * C operation therefore includes freeing what it made (leaf first, as a
 * chain of `defer cancel()` would), which Go leaves to its collector.
 *
 * Each row checks that what it timed happened (a cancelled leaf reports
 * CTX_CANCELED, a missing key is missing, ...) and the program exits 1
 * if not: a fast wrong answer must not look like a result.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "ctx.h"

#define THREADS 2          /* Go's numbers were taken with GOMAXPROCS=2 */
#define MAX_DEPTH 1000
#define TIMEOUT_BATCH 10   /* Go creates ten timeouts, then cancels them */
#define HOUR (3600 * CTX_SEC)
#define MAX_LIVE 1000000

/* Distinct addresses to use as value keys; the last is never stored. */
static char keys[MAX_DEPTH + 1];
#define MISSING_KEY (&keys[MAX_DEPTH])

static ctx_t *must(ctx_t *c, const char *what)
{
	if (!c)
		bench_fail("%s: %s", what, strerror(errno));
	return c;
}

static void check_bad(const char *name, uint64_t bad)
{
	if (bad)
		bench_fail("%s: %llu operations had the wrong result", name,
			   (unsigned long long)bad);
}

/* ---- CancelTree ---------------------------------------------------- */

enum root_kind { ROOT_BACKGROUND, ROOT_OPEN, ROOT_CLOSED };

static const char *const root_names[] = {
	"Background", "OpenCanceler", "ClosedCanceler",
};

struct tree_arg {
	char name[64];
	int depth;
	enum root_kind root;
	ctx_t *chain[MAX_DEPTH];
};

/* depth WithCancel contexts, each the child of the one before. */
static ctx_t *build_chain(ctx_t *root, ctx_t **chain, int depth)
{
	for (int i = 0; i < depth; i++)
		root = chain[i] = must(ctx_with_cancel(root), "ctx_with_cancel");
	return root;
}

static void release_chain(ctx_t **chain, int depth)
{
	while (depth-- > 0)
		ctx_release(chain[depth]);
}

/* One tree: build, (cancel), check the leaf's state, release.  Returns
 * whether the leaf said what it had to. */
static bool one_tree(struct tree_arg *a)
{
	ctx_t *root = ctx_background(), *leaf;
	int err;

	if (a->root != ROOT_BACKGROUND)
		root = must(ctx_with_cancel(root), "ctx_with_cancel");
	if (a->root == ROOT_CLOSED)
		ctx_cancel(root);
	leaf = build_chain(root, a->chain, a->depth);
	/* Closed: the leaf must be done at creation, before any cancel. */
	if (a->root == ROOT_OPEN)
		ctx_cancel(root);
	err = ctx_err(leaf);
	release_chain(a->chain, a->depth);
	ctx_release(root); /* a no-op on Background */
	return err == (a->root == ROOT_BACKGROUND ? 0 : CTX_CANCELED);
}

static void run_tree(void *p, int impl, int tid, uint64_t n)
{
	struct tree_arg *a = p;
	uint64_t bad = 0;

	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		bad += !one_tree(a);
	check_bad(a->name, bad);
}

static void bench_cancel_tree(void)
{
	static const int depths[] = { 1, 10, 100, 1000 };
	static struct tree_arg a;

	for (size_t d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
		for (int r = ROOT_BACKGROUND; r <= ROOT_CLOSED; r++) {
			a.depth = depths[d];
			a.root = (enum root_kind)r;
			snprintf(a.name, sizeof(a.name),
				 "go/CancelTree/depth=%d/Root=%s", a.depth,
				 root_names[r]);
			bench_measure(&(struct bench_spec){
				.scenario = a.name, .fn = run_tree, .arg = &a });
		}
	}
}

/* ---- WithCancel + cancel ------------------------------------------- */

static void run_with_cancel(void *p, int impl, int tid, uint64_t n)
{
	uint64_t bad = 0;

	(void)p;
	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		ctx_t *c = must(ctx_with_cancel(ctx_background()),
				"ctx_with_cancel");
		bad += ctx_err(c) != 0;
		ctx_release(c);
	}
	check_bad("WithCancel", bad);
}

static void bench_with_cancel(void)
{
	printf("# WithCancel: ctx_with_cancel(background) + ctx_release\n");
	bench_measure(&(struct bench_spec){
		.scenario = "go/WithCancel", .fn = run_with_cancel });
}

/* ---- WithTimeout under live timers --------------------------------- */

struct timeout_arg {
	char name[64];
	ctx_t **live;
	uint64_t per_thread; /* live contexts made by each thread */
};

/* Setup, on THREADS threads as Go does it on each P: thread tid makes
 * its share of the long-lived one-hour contexts. */
static void make_live(void *p, int impl, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t **slot = a->live + (uint64_t)tid * n;

	(void)impl;
	for (uint64_t i = 0; i < n; i++)
		slot[i] = must(ctx_with_timeout(ctx_background(), HOUR),
			       "ctx_with_timeout");
}

static void release_live(void *p, int impl, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t **slot = a->live + (uint64_t)tid * n;

	(void)impl;
	for (uint64_t i = 0; i < n; i++)
		ctx_release(slot[i]);
}

/* A context made the way the timed loop makes them has its deadline an
 * hour ahead and is live. */
static bool timeout_ok(ctx_t *c)
{
	int64_t d;

	return ctx_deadline(c, &d) && d > ctx_now() + HOUR / 2 &&
	       ctx_err(c) == 0;
}

static void run_with_timeout(void *p, int impl, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t *c[TIMEOUT_BATCH];

	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		for (int j = 0; j < TIMEOUT_BATCH; j++)
			c[j] = must(ctx_with_timeout(ctx_background(), HOUR),
				    "ctx_with_timeout");
		for (int j = 0; j < TIMEOUT_BATCH; j++)
			ctx_release(c[j]);
	}
	/* Once per run, outside the loop: reading the clock per context
	 * would be a cost Go's loop does not pay. */
	c[0] = must(ctx_with_timeout(ctx_background(), HOUR), "timeout");
	if (!timeout_ok(c[0]))
		bench_fail("%s: a fresh timeout context is wrong", a->name);
	ctx_release(c[0]);
}

static void bench_with_timeout_live(ctx_t **live, uint64_t concurrency)
{
	struct timeout_arg a = { .live = live,
				 .per_thread = concurrency / THREADS };
	struct bench_spec setup = { .scenario = "setup", .arg = &a };
	uint64_t total = a.per_thread * THREADS;

	snprintf(a.name, sizeof(a.name), "go/WithTimeout/concurrency=%llu",
		 (unsigned long long)concurrency);
	setup.fn = make_live;
	bench_time(&setup, 0, THREADS, a.per_thread);
	bench_measure(&(struct bench_spec){
		.scenario = a.name, .fn = run_with_timeout, .arg = &a,
		.threads = THREADS, .per_iter = TIMEOUT_BATCH,
		.unit = "ns/pair" });
	for (uint64_t i = 0; i < total; i++)
		if (!timeout_ok(live[i]))
			bench_fail("%s: live context %llu was ended", a.name,
				   (unsigned long long)i);
	setup.fn = release_live;
	bench_time(&setup, 0, THREADS, a.per_thread);
}

static void bench_with_timeout(ctx_t **live)
{
	printf("# WithTimeout: %d threads each make %d ctx_with_timeout"
	       "(background, 1h) then release them, while `concurrency`"
	       " other 1h contexts live; ns per make+release pair,"
	       " wall time / pairs of all threads (as b.RunParallel)\n",
	       THREADS, TIMEOUT_BATCH);
	bench_with_timeout_live(live, 40);
	bench_with_timeout_live(live, 400000);
}

/* ---- CommonParentCancel -------------------------------------------- */

static char common_key;
static char common_value[] = "value";

struct common_arg {
	ctx_t *shared;
	_Atomic int failed;
	int64_t sink[THREADS];
};

/* Go's filler, x /= x + 1: a chain of dependent 64-bit divisions.  The
 * empty asm hides x's value so that the compiler cannot fold the loop
 * away (x stays 0, which it would otherwise prove). */
static int64_t divide_chain(int64_t x, int n)
{
	for (int i = 0; i < n; i++) {
		bench_opaque(x);
		x /= x + 1;
	}
	return x;
}

static void run_common(void *p, int impl, int tid, uint64_t n)
{
	struct common_arg *a = p;
	int64_t x = 0;

	(void)impl;
	for (uint64_t i = 0; i < n; i++) {
		ctx_t *c = must(ctx_with_cancel(a->shared), "ctx_with_cancel");
		if (ctx_value(c, &common_key) != common_value) {
			atomic_store(&a->failed, 1);
			ctx_release(c);
			break;
		}
		x = divide_chain(x, 100);
		ctx_release(c);
		x = divide_chain(x, 100);
	}
	a->sink[tid] = x;
}

static void bench_common_parent(void)
{
	ctx_t *root = must(ctx_with_value(ctx_background(), &common_key,
					  common_value), "ctx_with_value");
	struct common_arg a = {
		.shared = must(ctx_with_cancel(root), "ctx_with_cancel"),
	};

	printf("# CommonParentCancel: %d threads: ctx_with_cancel(shared),"
	       " ctx_value, 100 divisions, ctx_release, 100 divisions\n",
	       THREADS);
	bench_measure(&(struct bench_spec){
		.scenario = "go/CommonParentCancel", .fn = run_common,
		.arg = &a, .threads = THREADS });
	if (atomic_load(&a.failed) || ctx_err(a.shared))
		bench_fail("CommonParentCancel: value lookup or parent wrong");
	bench_keep(a.sink[0] + a.sink[1]);
	ctx_release(a.shared);
	ctx_release(root);
}

/* ---- CheckCanceled ------------------------------------------------- */

static void run_err(void *p, int impl, int tid, uint64_t n)
{
	ctx_t *c = p;
	uint64_t bad = 0;

	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		bad += ctx_err(c) != CTX_CANCELED;
	check_bad("CheckCanceled/Err", bad);
}

static void run_done_poll(void *p, int impl, int tid, uint64_t n)
{
	struct pollfd pfd = { .fd = ctx_done_fd(p), .events = POLLIN };
	uint64_t bad = 0;

	(void)impl;
	(void)tid;
	if (pfd.fd < 0)
		bench_fail("ctx_done_fd: %s", strerror(errno));
	for (uint64_t i = 0; i < n; i++)
		bad += poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN);
	check_bad("CheckCanceled/Done-poll", bad);
}

static void bench_check_canceled(void)
{
	ctx_t *c = must(ctx_with_cancel(ctx_background()), "ctx_with_cancel");

	ctx_cancel(c);
	printf("# CheckCanceled/Done: Go's Done is a select on a closed"
	       " channel; libctx's non-blocking equivalent is ctx_err, so"
	       " this row times ctx_err (the same call as the Err row)\n");
	printf("# CheckCanceled/Done-poll: poll(ctx_done_fd, 0), a system"
	       " call, for information: the descriptor is for waiting\n");
	bench_measure(&(struct bench_spec){
		.scenario = "go/CheckCanceled/Err", .fn = run_err, .arg = c });
	bench_measure(&(struct bench_spec){
		.scenario = "go/CheckCanceled/Done", .fn = run_err, .arg = c });
	bench_measure(&(struct bench_spec){
		.scenario = "go/CheckCanceled/Done-poll", .fn = run_done_poll,
		.arg = c });
	ctx_release(c);
}

/* ---- DeepValue ----------------------------------------------------- */

static void run_deep_value(void *p, int impl, int tid, uint64_t n)
{
	uint64_t bad = 0;

	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		bad += ctx_value(p, MISSING_KEY) != NULL;
	check_bad("DeepValue", bad);
}

static void *value_of(int i)
{
	return (void *)(intptr_t)(i + 1);
}

static void bench_deep_value_at(int depth)
{
	ctx_t *chain[MAX_DEPTH], *c = ctx_background();
	char name[64];

	for (int i = 0; i < depth; i++)
		c = chain[i] = must(ctx_with_value(c, &keys[i], value_of(i)),
				    "ctx_with_value");
	/* The chain holds what was put in: nearest and farthest key. */
	if (ctx_value(c, &keys[0]) != value_of(0) ||
	    ctx_value(c, &keys[depth - 1]) != value_of(depth - 1))
		bench_fail("DeepValue: a stored value was not found");
	snprintf(name, sizeof(name), "go/DeepValue/depth=%d", depth);
	bench_measure(&(struct bench_spec){
		.scenario = name, .fn = run_deep_value, .arg = c });
	release_chain(chain, depth);
}

static void bench_deep_value(void)
{
	static const int depths[] = { 10, 20, 30, 50, 100 };

	printf("# DeepValue: ctx_value of a missing key through a chain of"
	       " ctx_with_value\n");
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++)
		bench_deep_value_at(depths[i]);
}

/* ---- bytes and descriptors per live context ------------------------ */

static ctx_t *make_cancel(int i)
{
	(void)i;
	return ctx_with_cancel(ctx_background());
}

static ctx_t *make_timeout(int i)
{
	(void)i;
	return ctx_with_timeout(ctx_background(), HOUR);
}

static ctx_t *make_value(int i)
{
	return ctx_with_value(ctx_background(), &keys[0], value_of(i));
}

struct live_kind {
	const char *name;
	ctx_t *(*make)(int i);
};

static bool live_ok(const struct live_kind *k, ctx_t *c, int i)
{
	if (k->make == make_value)
		return ctx_value(c, &keys[0]) == value_of(i);
	return ctx_err(c) == 0;
}

/* n contexts made and held on this thread; the heap growth and the new
 * descriptors, per context.  The slot array exists before the first
 * reading, so only the contexts are counted, malloc's headers included. */
static void live_row(const struct live_kind *k, ctx_t **slot, int n)
{
	size_t h0, h1, h2;
	int f0, f1;
	char name[96];

	h0 = bench_heap_bytes();
	f0 = bench_count_fds();
	for (int i = 0; i < n; i++)
		slot[i] = must(k->make(i), k->name);
	h1 = bench_heap_bytes();
	f1 = bench_count_fds();
	for (int i = 0; i < n; i++)
		if (!live_ok(k, slot[i], i))
			bench_fail("live %s %d is wrong", k->name, i);
	for (int i = 0; i < n; i++)
		ctx_release(slot[i]);
	h2 = bench_heap_bytes();
	/* Less than a byte a context may stay behind in malloc's caches;
	 * a leaked context would leave dozens. */
	if (h2 > h0 + (size_t)n)
		bench_fail("%s: %zu bytes still held after release", k->name,
			   h2 - h0);
	snprintf(name, sizeof(name), "go/BytesPerCtx/%s/live=%d", k->name, n);
	bench_row(name, "op", "libctx", B.run ? B.run : 1,
		  ((double)h1 - (double)h0) / n, "B/ctx");
	snprintf(name, sizeof(name), "go/FdsPerCtx/%s/live=%d", k->name, n);
	bench_row(name, "op", "libctx", B.run ? B.run : 1,
		  (double)(f1 - f0) / n, "fds/ctx");
}

static void bench_live(ctx_t **slot)
{
	static const struct live_kind kinds[] = {
		{ "WithCancel", make_cancel },
		{ "WithTimeout", make_timeout },
		{ "WithValue", make_value },
	};
	static const int counts[] = { 100000, 1000000 };

	printf("# BytesPerCtx: mallinfo2 heap growth / live contexts"
	       " (malloc headers included); FdsPerCtx: /proc/self/fd growth"
	       " / live contexts\n");
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++)
			live_row(&kinds[k], slot, counts[c]);
}

/* ---- Merge --------------------------------------------------------- */

/* A context done when either of two live ones is, made and released:
 * ctx_with_merge, beside the bridge one writes without it -- a child of
 * the first, and an after-func on the second that cancels the child,
 * holding a reference for the function until the handle is stopped.
 * bench/go's BenchmarkMerge is Go's way (context.AfterFunc; a goroutine
 * before Go 1.21). */
struct merge_arg {
	ctx_t *a, *b;
};

static const char *const merge_names[] = { "libctx", "bridge" };

static void bridge_fire(void *arg)
{
	ctx_cancel(arg);
	ctx_unref(arg);
}

static ctx_t *bridge_merge(ctx_t *a, ctx_t *b, ctx_after_t **h)
{
	ctx_t *m = must(ctx_with_cancel(a), "ctx_with_cancel");

	*h = ctx_after_func(b, bridge_fire, ctx_ref(m));
	if (!*h)
		bench_fail("ctx_after_func: %s", strerror(errno));
	return m;
}

static void run_merge(void *p, int impl, int tid, uint64_t n)
{
	struct merge_arg *a = p;
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		ctx_after_t *h = NULL;
		ctx_t *m = impl ? bridge_merge(a->a, a->b, &h) :
				  must(ctx_with_merge(a->a, a->b),
				       "ctx_with_merge");
		bad += ctx_err(m) != 0;
		if (h && ctx_after_stop(h))
			ctx_unref(m); /* the function's reference */
		ctx_release(m);
	}
	check_bad("Merge", bad);
}

/* Before the timing: each way ends when the second context does. */
static void merge_works(void)
{
	for (int impl = 0; impl < 2; impl++) {
		ctx_t *a = must(ctx_with_cancel(ctx_background()), "a");
		ctx_t *b = must(ctx_with_cancel(ctx_background()), "b");
		ctx_after_t *h = NULL;
		ctx_t *m = impl ? bridge_merge(a, b, &h) :
				  must(ctx_with_merge(a, b), "merge");
		ctx_cancel(b);
		if (ctx_wait(m) != CTX_CANCELED || ctx_err(a))
			bench_fail("Merge (%s): not ended by the second",
				   merge_names[impl]);
		if (h && ctx_after_stop(h))
			bench_fail("Merge (bridge): the function never ran");
		ctx_release(m);
		ctx_release(b);
		ctx_release(a);
	}
}

static void bench_merge(void)
{
	struct merge_arg a = {
		must(ctx_with_cancel(ctx_background()), "ctx_with_cancel"),
		must(ctx_with_cancel(ctx_background()), "ctx_with_cancel"),
	};

	printf("# Merge: ctx_with_merge of two live contexts + ctx_release;"
	       " bridge: ctx_with_cancel + ctx_after_func on the other +"
	       " ctx_after_stop + ctx_release\n");
	merge_works();
	bench_measure(&(struct bench_spec){
		.scenario = "go/Merge", .names = merge_names, .nimpls = 2,
		.fn = run_merge, .arg = &a });
	if (ctx_err(a.a) || ctx_err(a.b))
		bench_fail("Merge: a parent ended");
	ctx_release(a.b);
	ctx_release(a.a);
}

/* ---- SelectTwoReady ------------------------------------------------ */

struct sel2 {
	ctx_chan_t *ch[2];
	int v[2];
	struct ctx_case cs[2];
	uint64_t hits[2];
};

/* ctx_select over two ready buffered channels (timeout 0), then a
 * try_send refilling the one chosen, as bench/go's select does. */
static void run_select(void *p, int impl, int tid, uint64_t n)
{
	struct sel2 *s = p;

	(void)impl;
	(void)tid;
	for (uint64_t i = 0; i < n; i++) {
		int got = ctx_select(ctx_background(), s->cs, 2, 0);

		if (got < 0 || s->cs[got].result)
			bench_fail("SelectTwoReady: nothing was ready");
		s->hits[got]++;
		if (ctx_chan_try_send(s->ch[got], &s->v[got]))
			bench_fail("SelectTwoReady: refill");
	}
}

static void bench_select(void)
{
	static struct sel2 s;
	double share;

	for (int i = 0; i < 2; i++) {
		s.ch[i] = ctx_chan_new(sizeof(int), 1);
		s.v[i] = i;
		if (!s.ch[i] || ctx_chan_try_send(s.ch[i], &s.v[i]))
			bench_fail("SelectTwoReady: set-up");
		s.cs[i] = (struct ctx_case){ .kind = CTX_CASE_RECV,
					     .ch = s.ch[i], .elem = &s.v[i],
					     .fd = -1 };
	}
	bench_measure(&(struct bench_spec){ .scenario = "go/SelectTwoReady",
					    .fn = run_select, .arg = &s });
	share = (double)s.hits[0] / (double)(s.hits[0] + s.hits[1]);
	printf("# SelectTwoReady: case 0 chosen %.3f of the time\n", share);
	if (share < 0.45 || share > 0.55)
		bench_fail("SelectTwoReady: choice not uniform (%.3f)", share);
	for (int i = 0; i < 2; i++)
		ctx_chan_free(s.ch[i]);
}

int main(int argc, char **argv)
{
	/* One array for the 400,000 live timeouts and the memory rows,
	 * allocated up front so that no row measures it. */
	ctx_t **slot = bench_alloc(MAX_LIVE * sizeof(*slot));

	bench_init(argc, argv);
	bench_print_machine("bench_context: Go's context benchmarks on libctx");
	printf("# each row: the median of %d runs of ~%lld ms\n", B.reps,
	       (long long)(B.target_ns / 1000000));
	bench_cancel_tree();
	bench_with_cancel();
	bench_with_timeout(slot);
	bench_common_parent();
	bench_check_canceled();
	bench_deep_value();
	bench_live(slot);
	bench_select();
	bench_merge();
	free(slot);
	return 0;
}
