/*
 * bench_context: the operations of Go's context benchmarks
 * (context/benchmark_test.go) on libctx, plus the bytes and descriptors
 * a live context costs.  bench/go/ times the same operations in Go, and
 * bench/run.sh prints the two side by side.
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

static struct bench B;

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

static void run_tree(void *p, int tid, uint64_t n)
{
	struct tree_arg *a = p;
	uint64_t bad = 0;

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
				 "CancelTree/depth=%d/Root=%s", a.depth,
				 root_names[r]);
			bench_measure(&B, &(struct bench_spec){
				.name = a.name, .fn = run_tree, .arg = &a });
		}
	}
}

/* ---- WithCancel + cancel ------------------------------------------- */

static void run_with_cancel(void *p, int tid, uint64_t n)
{
	uint64_t bad = 0;

	(void)p;
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
	bench_measure(&B, &(struct bench_spec){
		.name = "WithCancel", .fn = run_with_cancel });
}

/* ---- WithTimeout under live timers --------------------------------- */

struct timeout_arg {
	char name[64];
	ctx_t **live;
	uint64_t per_thread; /* live contexts made by each thread */
};

/* Setup, on THREADS threads as Go does it on each P: thread tid makes
 * its share of the long-lived one-hour contexts. */
static void make_live(void *p, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t **slot = a->live + (uint64_t)tid * n;

	for (uint64_t i = 0; i < n; i++)
		slot[i] = must(ctx_with_timeout(ctx_background(), HOUR),
			       "ctx_with_timeout");
}

static void release_live(void *p, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t **slot = a->live + (uint64_t)tid * n;

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

static void run_with_timeout(void *p, int tid, uint64_t n)
{
	struct timeout_arg *a = p;
	ctx_t *c[TIMEOUT_BATCH];

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
	struct bench_spec setup = { .name = "setup", .arg = &a,
				    .threads = THREADS };
	uint64_t total = a.per_thread * THREADS;

	snprintf(a.name, sizeof(a.name), "WithTimeout/concurrency=%llu",
		 (unsigned long long)concurrency);
	setup.fn = make_live;
	bench_time_parallel(&setup, a.per_thread);
	bench_measure(&B, &(struct bench_spec){
		.name = a.name, .fn = run_with_timeout, .arg = &a,
		.threads = THREADS, .per_iter = TIMEOUT_BATCH });
	for (uint64_t i = 0; i < total; i++)
		if (!timeout_ok(live[i]))
			bench_fail("%s: live context %llu was ended", a.name,
				   (unsigned long long)i);
	setup.fn = release_live;
	bench_time_parallel(&setup, a.per_thread);
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

static void run_common(void *p, int tid, uint64_t n)
{
	struct common_arg *a = p;
	int64_t x = 0;

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
	bench_measure(&B, &(struct bench_spec){
		.name = "CommonParentCancel", .fn = run_common, .arg = &a,
		.threads = THREADS });
	if (atomic_load(&a.failed) || ctx_err(a.shared))
		bench_fail("CommonParentCancel: value lookup or parent wrong");
	bench_keep(a.sink[0] + a.sink[1]);
	ctx_release(a.shared);
	ctx_release(root);
}

/* ---- CheckCanceled ------------------------------------------------- */

static void run_err(void *p, int tid, uint64_t n)
{
	ctx_t *c = p;
	uint64_t bad = 0;

	(void)tid;
	for (uint64_t i = 0; i < n; i++)
		bad += ctx_err(c) != CTX_CANCELED;
	check_bad("CheckCanceled/Err", bad);
}

static void run_done_poll(void *p, int tid, uint64_t n)
{
	struct pollfd pfd = { .fd = ctx_done_fd(p), .events = POLLIN };
	uint64_t bad = 0;

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
	bench_measure(&B, &(struct bench_spec){
		.name = "CheckCanceled/Err", .fn = run_err, .arg = c });
	bench_measure(&B, &(struct bench_spec){
		.name = "CheckCanceled/Done", .fn = run_err, .arg = c });
	bench_measure(&B, &(struct bench_spec){
		.name = "CheckCanceled/Done-poll", .fn = run_done_poll,
		.arg = c });
	ctx_release(c);
}

/* ---- DeepValue ----------------------------------------------------- */

static void run_deep_value(void *p, int tid, uint64_t n)
{
	uint64_t bad = 0;

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
	snprintf(name, sizeof(name), "DeepValue/depth=%d", depth);
	bench_measure(&B, &(struct bench_spec){
		.name = name, .fn = run_deep_value, .arg = c });
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
	snprintf(name, sizeof(name), "BytesPerCtx/%s/live=%d", k->name, n);
	bench_value(name, ((double)h1 - (double)h0) / n);
	snprintf(name, sizeof(name), "FdsPerCtx/%s/live=%d", k->name, n);
	bench_value(name, (double)(f1 - f0) / n);
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

int main(int argc, char **argv)
{
	/* One array for the 400,000 live timeouts and the memory rows,
	 * allocated up front so that no row measures it. */
	ctx_t **slot = calloc(MAX_LIVE, sizeof(*slot));

	bench_init(&B, argc, argv);
	if (!slot)
		bench_fail("no memory for %d slots", MAX_LIVE);
	bench_print_machine("libctx bench_context");
	printf("# rows: name,ns_per_op,min,max (median, min and max of %d"
	       " runs of ~%lld ms) or name,value\n", B.reps,
	       (long long)(B.target_ns / 1000000));
	bench_cancel_tree();
	bench_with_cancel();
	bench_with_timeout(slot);
	bench_common_parent();
	bench_check_canceled();
	bench_deep_value();
	bench_live(slot);
	free(slot);
	return 0;
}
