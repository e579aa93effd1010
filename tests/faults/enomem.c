/*
 * Memory exhausted (see faults.c): ctx__fail_malloc_after at every
 * allocation index of a scenario: constructors return NULL with ENOMEM,
 * calls that report an error number report ENOMEM, exactly one call
 * fails when one allocation does, nothing is half built, and the parent
 * works afterwards.
 */
#include "hooks.h"
#include "faults.h"

/* Whether an armed injection is still waiting for its allocation; it is
 * consumed (and disarmed) here either way. */
static bool injection_pending(void)
{
	enum { PROBES = 4096 };
	ctx_wg_t **w = malloc(PROBES * sizeof(*w));
	bool pending = false;
	int n;

	ck_assert_ptr_nonnull(w);
	for (n = 0; n < PROBES; n++)
		if (!(w[n] = ctx_wg_new())) {
			pending = true;
			break;
		}
	ctx__fail_malloc_after(-1);
	for (int i = 0; i < n; i++)
		ctx_wg_free(w[i]);
	free(w);
	return pending;
}

struct run {
	long n;         /* the injection index of this run */
	int failed;     /* calls that reported ENOMEM */
};

/* A constructor's result: NULL must come with ENOMEM. */
static bool got(struct run *r, const char *what, const void *p)
{
	if (p)
		return true;
	if (errno != ENOMEM)
		note("n=%ld: %s returned NULL with errno %d (%s), not ENOMEM",
		     r->n, what, errno, strerror(errno));
	r->failed++;
	return false;
}

/* A call's error number: 0, or ENOMEM counted. */
static bool ok(struct run *r, const char *what, int e)
{
	if (!e)
		return true;
	if (e != ENOMEM)
		note("n=%ld: %s returned %d (%s), not ENOMEM", r->n, what, e,
		     strerror(e));
	r->failed++;
	return false;
}

static void state(struct run *r, const char *what, ctx_t *c, int err,
		  int cause)
{
	if (ctx_err(c) != err || ctx_cause(c) != cause)
		note("n=%ld: %s: err %d cause %d, expected %d and %d", r->n,
		     what, ctx_err(c), ctx_cause(c), err, cause);
}

/* A chain of every kind; the parent of a failed one is used instead. */
static void sc_tree(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *n[7] = { NULL };
	static int val;

	if (!got(r, "ctx_with_cancel(background)", p))
		return;
	if (ctx_done_fd(p) < 0) /* closed only when p is freed */
		note("ctx_done_fd: errno %d", errno);
	ctx_t *at = p;
	n[0] = ctx_with_timeout(at, HOUR);
	at = got(r, "ctx_with_timeout", n[0]) ? n[0] : at;
	n[1] = ctx_with_value(at, key, &val);
	at = got(r, "ctx_with_value", n[1]) ? n[1] : at;
	ctx_t *above_without = at;
	n[2] = ctx_without_cancel(at);
	at = got(r, "ctx_without_cancel", n[2]) ? n[2] : at;
	n[3] = ctx_with_deadline_cause(at, ctx_now() + HOUR, 77);
	at = got(r, "ctx_with_deadline_cause", n[3]) ? n[3] : at;
	n[4] = ctx_with_cancel(at);
	at = got(r, "ctx_with_cancel", n[4]) ? n[4] : at;
	n[5] = ctx_with_timeout_cause(p, HOUR, 5);
	got(r, "ctx_with_timeout_cause", n[5]);
	n[6] = ctx_with_deadline(above_without, ctx_now() - 1);
	if (got(r, "ctx_with_deadline(past)", n[6]))
		state(r, "past deadline", n[6], CTX_DEADLINE_EXCEEDED,
		      CTX_DEADLINE_EXCEEDED);

	if (n[1] && ctx_value(at, key) != &val)
		note("n=%ld: ctx_value lost along the chain", r->n);
	/* The parent works: a new child, and a cancel that reaches every
	 * node above the without-cancel, and none below. */
	ctx_t *extra = ctx_with_cancel(p);
	got(r, "ctx_with_cancel(p) after", extra);
	ctx_cancel_cause(p, 9);
	state(r, "p", p, CTX_CANCELED, 9);
	if (extra)
		state(r, "new child", extra, CTX_CANCELED, 9);
	for (int i = 0; i < 2; i++)
		if (n[i])
			state(r, "node above without_cancel", n[i],
			      CTX_CANCELED, 9);
	if (n[5])
		state(r, "sibling", n[5], CTX_CANCELED, 9);
	for (int i = 2; i < 5; i++) {
		if (!n[i])
			continue;
		if (n[2] && ctx_err(n[i]))
			note("n=%ld: node %d below without_cancel ended", r->n,
			     i);
		else if (!n[2]) /* without_cancel failed: under p directly */
			state(r, "node under the failed without_cancel", n[i],
			      CTX_CANCELED, 9);
	}
	ctx_release(extra);
	for (int i = 6; i >= 0; i--)
		ctx_release(n[i]);
	ctx_release(p);
}

static void sc_chan(struct run *r)
{
	ctx_chan_t *b = ctx_chan_new(sizeof(long), 4);
	ctx_chan_t *u = ctx_chan_new(sizeof(long), 0);
	long v = 5, w = 0;

	if (got(r, "ctx_chan_new(8, 4)", b)) {
		if (ctx_chan_send(ctx_background(), b, &v) ||
		    ctx_chan_recv(ctx_background(), b, &w) || w != 5)
			note("n=%ld: buffered channel unusable", r->n);
		ctx_chan_close(b);
		if (ctx_chan_recv(ctx_background(), b, &w) != EPIPE)
			note("n=%ld: closed channel: no EPIPE", r->n);
		ctx_chan_free(b);
	}
	if (got(r, "ctx_chan_new(8, 0)", u)) {
		ctx_chan_close(u);
		ctx_chan_free(u);
	}
}

static void sc_wg(struct run *r)
{
	ctx_wg_t *wg = ctx_wg_new();

	if (!got(r, "ctx_wg_new", wg))
		return;
	ctx_wg_add(wg, 2);
	ctx_wg_done(wg);
	ctx_wg_done(wg);
	if (ctx_wg_wait(ctx_background(), wg))
		note("n=%ld: ctx_wg_wait on zero", r->n);
	ctx_wg_free(wg);
}

void *thread_fn(ctx_t *ctx, void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
	ctx_wait(ctx);
	return arg;
}

static void sc_thread(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	_Atomic int ran = 0;
	ctx_thread_t *t = NULL;
	void *res = NULL;

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	bool started = ok(r, "ctx_thread_create",
			  ctx_thread_create(&t, p, thread_fn, &ran));
	ctx_cancel(p);
	if (started && (ctx_thread_join(ctx_background(), t, &res) ||
			res != &ran))
		note("n=%ld: join", r->n);
	if (atomic_load(&ran) != (started ? 1 : 0))
		note("n=%ld: fn ran %d times, thread %s", r->n,
		     atomic_load(&ran), started ? "started" : "not started");
	ctx_release(p);
}

struct gj {
	_Atomic int runs;
	int ret;
};

static int group_fn(ctx_t *ctx, void *arg)
{
	struct gj *j = arg;

	(void)ctx;
	atomic_fetch_add(&j->runs, 1);
	return j->ret;
}

static void sc_group(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	struct gj jobs[3] = { { .ret = 0 }, { .ret = 7 }, { .ret = 0 } };
	bool started[3];

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	ctx_group_t *g = ctx_group_new(p);
	if (got(r, "ctx_group_new", g)) {
		ctx_group_set_limit(g, 2);
		for (int i = 0; i < 3; i++) {
			int e = ctx_group_go(g, group_fn, &jobs[i]);
			/* At the limit, go ends with the group's context,
			 * which job 1's error cancels (issue 13). */
			if (e && e == ctx_err(ctx_group_ctx(g)))
				started[i] = false;
			else
				started[i] = ok(r, "ctx_group_go", e);
		}
		int e = ctx_group_wait(g);
		if (e != (started[1] ? 7 : 0))
			note("n=%ld: ctx_group_wait: %d", r->n, e);
		for (int i = 0; i < 3; i++)
			if (atomic_load(&jobs[i].runs) != (started[i] ? 1 : 0))
				note("n=%ld: job %d ran %d times", r->n, i,
				     atomic_load(&jobs[i].runs));
		ctx_group_free(g);
	}
	ctx_t *c = ctx_with_cancel(p);
	got(r, "ctx_with_cancel(p) after", c);
	ctx_release(c);
	ctx_release(p);
}

static void sc_after(struct run *r)
{
	ctx_t *p = ctx_with_cancel(ctx_background());
	_Atomic int ran[2] = { 0, 0 };

	if (!got(r, "ctx_with_cancel", p))
		return;
	ctx_done_fd(p);
	ctx_after_t *a = ctx_after_func(p, set_flag, &ran[0]);
	got(r, "ctx_after_func", a);
	ctx_after_t *b = ctx_after_func(p, set_flag, &ran[1]);
	bool bok = got(r, "ctx_after_func", b);
	if (bok && !ctx_after_stop(b))
		note("n=%ld: ctx_after_stop of a live context's after-func",
		     r->n);
	ctx_cancel(p);
	if (a) {
		if (!wait_flag(&ran[0]))
			note("n=%ld: after-func did not run", r->n);
		if (ctx_after_stop(a))
			note("n=%ld: ctx_after_stop true after fn ran", r->n);
	}
	tu_sleep_ns(CTX_MSEC);
	if (atomic_load(&ran[1]))
		note("n=%ld: a stopped after-func ran", r->n);
	ctx_release(p);
}

static _Atomic int usr2_hits;

static void on_usr2(int sig)
{
	(void)sig;
	atomic_fetch_add(&usr2_hits, 1);
}

static void sc_signals(struct run *r)
{
	sigset_t set;
	ctx_t *p = ctx_with_cancel(ctx_background());

	if (!got(r, "ctx_with_cancel", p))
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	int before = atomic_load(&usr2_hits);
	ctx_t *s = ctx_with_signals(p, &set);
	if (got(r, "ctx_with_signals", s)) {
		struct pollfd pf = { .fd = ctx_done_fd(s), .events = POLLIN };
		raise(SIGUSR2);
		/* Waiting must not allocate: a poll on the done fd. */
		if (pf.fd < 0 || poll(&pf, 1, (int)(tol() / CTX_MSEC)) != 1 ||
		    ctx_err(s) != CTX_CANCELED)
			note("n=%ld: the signal did not end its context",
			     r->n);
		if (atomic_load(&usr2_hits) != before)
			note("n=%ld: the signal reached the old handler",
			     r->n);
		ctx_release(s);
	}
	raise(SIGUSR2); /* the previous handling, whole */
	if (atomic_load(&usr2_hits) != before + 1)
		note("n=%ld: the old SIGUSR2 handler is gone", r->n);
	ctx_release(p);
}

static void sc_all(struct run *r)
{
	sc_tree(r);
	sc_chan(r);
	sc_wg(r);
	sc_thread(r);
	sc_group(r);
	sc_after(r);
	sc_signals(r);
}

static void (*const scenarios[])(struct run *) = {
	sc_tree, sc_chan, sc_wg, sc_thread, sc_group, sc_after, sc_signals,
	sc_all,
};

static const char *const scenario_names[] = {
	"tree", "chan", "wg", "thread", "group", "after", "signals", "all",
};

/*
 * Each allocation of the scenario fails in turn.  When the probe finds
 * the injection consumed, exactly one call must have reported ENOMEM;
 * when it finds it still pending, the scenario made fewer than n + 1
 * allocations and every call must have succeeded: the last run.
 */
START_TEST(test_enomem)
{
	struct sigaction sa = { .sa_handler = on_usr2 }, old;
	long n;

	notes_reset();
	tu_start_services();
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
	{ /* the signal dispatcher too is started once and stays */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		ctx_t *s = ctx_with_signals(ctx_background(), &set);
		ck_assert_ptr_nonnull(s);
		ctx_release(s);
	}
	int fds = tu_count_fds(), threads = tu_count_threads();

	for (n = 0; n < 1000; n++) {
		struct run r = { .n = n };
		ctx__fail_malloc_after(n);
		scenarios[_i](&r);
		bool consumed = !injection_pending(); /* also disarms */
		if (consumed && r.failed != 1)
			note("%s, n=%ld: the failing allocation made %d calls "
			     "report ENOMEM (expected 1)", scenario_names[_i],
			     n, r.failed);
		if (!consumed && r.failed)
			note("%s, n=%ld: %d calls reported ENOMEM with no "
			     "allocation failing", scenario_names[_i], n,
			     r.failed);
		int tn = tu_settle_threads(threads, 2 * CTX_SEC);
		int fn = tu_settle_fds(fds, 2 * CTX_SEC);
		if (tn != threads || fn != fds)
			note("%s, n=%ld: %d threads and %d descriptors after, "
			     "%d and %d before: something half built or never "
			     "freed (a context that is never freed keeps its "
			     "done fd)", scenario_names[_i], n, tn, fn,
			     threads, fds);
		if (!consumed)
			break;
	}
	ck_assert_int_eq(sigaction(SIGUSR2, &old, NULL), 0);
	if (getenv("STRESS_VERBOSE"))
		fprintf(stderr, "faults: enomem %s: %ld allocations, each "
			"failed in turn\n", scenario_names[_i], n);
	assert_no_notes();
	ck_assert_msg(n > 0 && n < 1000, "%s: %ld runs", scenario_names[_i], n);
}
END_TEST

void add_faults_enomem(Suite *s)
{
	TCase *tc = tu_tcase(s, "enomem", 120);

	tcase_add_loop_test(tc, test_enomem, 0,
			    (int)(sizeof(scenarios) / sizeof(scenarios[0])));
}
