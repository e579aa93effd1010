/*
 * The soak's operations (see stress.c and soak.c): one wait of each kind
 * the library offers, on a chain the machinery built, with the helper's
 * actions that must end it, each result and length checked.
 */
#include "soak.h"

void op_io(struct op *o, bool sock)
{
	struct rng *r = &o->w->r;
	const char *call = sock ? "ctx_recv" : "ctx_read";
	char buf[64];
	int p[2];
	bool ends = false;

	if (sock)
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, p), 0);
	else
		ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	if (chance(r, 30))
		ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	o->rfd[0] = p[0];
	o->wfd[0] = p[1];
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	if (chance(r, 55)) {
		soak_add_act(o, A_WRITE, rus(r, MAX_DL_US + 10000),
			1 + (int)rn(r, 32), true);
		ends = true;
	} else if (chance(r, 25)) {
		soak_add_act(o, A_CLOSE, rus(r, MAX_DL_US), 0, true);
		ends = true;
	}
	if (!soak_add_cancel(o, !ends && o->dl == INT64_MAX))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	ssize_t n = sock ? ctx_recv(o->leaf, p[0], buf, sizeof(buf), 0) :
			   ctx_read(o->leaf, p[0], buf, sizeof(buf));
	int e = errno;
	int64_t end = ctx_now();
	soak_check_pre(o, call, pre, (long)n, e);
	if (n > 0) {
		char want[64];
		soak_fill(want, (int)n);
		if (n > atomic_load(&o->wrote[0]) || memcmp(buf, want, (size_t)n))
			failf("%s returned %zd bytes, not what was written "
			      "(%d) [%s]", call, n, atomic_load(&o->wrote[0]),
			      o->what);
	} else if (n == 0) {
		if (!atomic_load(&o->closed))
			failf("%s returned 0 (end of file) with the writer "
			      "open [%s]", call, o->what);
	} else {
		soak_check_err(o, call, e);
	}
	soak_check_late(o, call, t, end, INT64_MAX);
	soak_join_helper(o);
}

void op_poll(struct op *o)
{
	struct rng *r = &o->w->r;
	struct pollfd fds[2];
	int p[2], q[2], nf = chance(r, 50) ? 2 : 1;
	bool ends = false;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(pipe2(q, O_CLOEXEC | O_NONBLOCK), 0);
	o->rfd[0] = p[0];
	o->wfd[0] = p[1];
	o->rfd[1] = q[0];
	o->wfd[1] = q[1];
	fds[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = q[0], .events = POLLIN };
	int64_t timeout = chance(r, 40) ? -1 : rus(r, MAX_DL_US + 10000);
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	soak_say(o, " timeout=%.1fms", (double)timeout / CTX_MSEC);
	if (timeout >= 0)
		o->sure_end = o->t0 + timeout;
	if (chance(r, 55)) {
		soak_add_act(o, A_WRITE, rus(r, MAX_DL_US), 1 + (int)rn(r, 8), true);
		o->acts[0].which = (int)rn(r, (unsigned)nf);
		ends = true;
	}
	if (!soak_add_cancel(o, !ends && o->dl == INT64_MAX && timeout < 0))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int n = ctx_poll(o->leaf, fds, (nfds_t)nf, timeout);
	int e = errno;
	int64_t end = ctx_now();
	soak_check_pre(o, "ctx_poll", pre, n, e);
	if (n > 0) {
		int ready = 0;
		for (int i = 0; i < nf; i++) {
			if (!fds[i].revents)
				continue;
			ready++;
			if (fds[i].revents != POLLIN ||
			    !atomic_load(&o->wrote[i]))
				failf("ctx_poll: entry %d has revents %#x, "
				      "%d bytes written to it [%s]", i,
				      fds[i].revents, atomic_load(&o->wrote[i]),
				      o->what);
		}
		if (ready != n)
			failf("ctx_poll returned %d, %d entries ready [%s]", n,
			      ready, o->what);
	} else if (n == 0) {
		if (timeout < 0)
			failf("ctx_poll with no timeout returned 0 [%s]",
			      o->what);
		else if (end - t < timeout)
			failf("ctx_poll timed out after %.3f ms of %.3f [%s]",
			      (double)(end - t) / CTX_MSEC,
			      (double)timeout / CTX_MSEC, o->what);
		else if (timeout > 0 && o->dl != INT64_MAX &&
			 o->dl + slack() < t + timeout)
			failf("ctx_poll timed out at %+.1f ms although its "
			      "context's deadline %+.1f ms came first [%s]",
			      soak_rel(o, t + timeout), soak_rel(o, o->dl), o->what);
		else if (timeout > 0 && soak_cancelled_by(o) != INT64_MAX &&
			 soak_cancelled_by(o) + slack() < t + timeout)
			failf("ctx_poll timed out at %+.1f ms although its "
			      "context was cancelled at %+.1f ms [%s]",
			      soak_rel(o, t + timeout), soak_rel(o, soak_cancelled_by(o)),
			      o->what);
	} else {
		soak_check_err(o, "ctx_poll", e);
	}
	soak_check_late(o, "ctx_poll", t, end,
		   timeout >= 0 ? t + timeout : INT64_MAX);
	soak_join_helper(o);
}

/* Take the `left` elements the channel must still hold, in order from
 * `next`, then check that it holds no more. */
static void drain(struct op *o, long next, int left)
{
	long v;

	if (left < 0) {
		failf("channel: %d more elements received than sent [%s]",
		      -left, o->what);
		return;
	}
	for (int i = 0; i <= left; i++) {
		/* The last try only looks: a context already done refuses
		 * at once, which is as good as an empty channel. */
		ctx_t *c = ctx_with_timeout(ctx_background(),
					    i < left ? tol() : CTX_MSEC);
		ck_assert_ptr_nonnull(c);
		int e = ctx_chan_recv(c, o->ch, &v);
		ctx_release(c);
		if (i == left) {
			if (e == 0)
				failf("channel: element %ld received beyond the "
				      "%d sent: a send the context ended moved "
				      "it [%s]", v, (int)(next + left), o->what);
			else if (e != CTX_DEADLINE_EXCEEDED && e != EPIPE)
				failf("drain: ctx_chan_recv: %d [%s]", e,
				      o->what);
		} else if (e) {
			failf("channel: %d elements sent, only %ld received "
			      "(then %d): a receive the context ended moved "
			      "one [%s]", (int)(next + left), next + i, e,
			      o->what);
			return;
		} else if (v != next + i) {
			failf("drain: element %ld, expected %ld [%s]", v,
			      next + i, o->what);
		}
	}
}

void op_chan_recv(struct op *o)
{
	struct rng *r = &o->w->r;
	size_t cap = chance(r, 35) ? 0 : 1 + rn(r, 4);
	int e = 0, got = 0;
	long v;

	o->k = 1 + (int)rn(r, 6);
	o->ch = ctx_chan_new(sizeof(long), cap);
	ck_assert_ptr_nonnull(o->ch);
	soak_say(o, " cap=%zu k=%d", cap, o->k);
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	int64_t at = rus(r, MAX_DL_US);
	soak_add_act(o, A_CHAN_SEND, at, o->k, true);
	if (chance(r, 25))
		soak_add_act(o, A_CHAN_CLOSE, at + rus(r, 20000), 0, true);
	if (!soak_add_cancel(o, false))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	while (got < o->k) {
		int pre = ctx_err(o->leaf);
		int64_t t = ctx_now();
		e = ctx_chan_recv(o->leaf, o->ch, &v);
		int64_t end = ctx_now();
		soak_check_pre(o, "ctx_chan_recv", pre, e ? -1 : 0, e);
		soak_check_late(o, "ctx_chan_recv", t, end, INT64_MAX);
		if (e)
			break;
		if (v != got)
			failf("ctx_chan_recv: element %ld, expected %d [%s]", v,
			      got, o->what);
		got++;
	}
	if (e == EPIPE) {
		if (!atomic_load(&o->closed))
			failf("ctx_chan_recv: EPIPE on an open channel [%s]",
			      o->what);
	} else if (e) {
		soak_check_err(o, "ctx_chan_recv", e);
	}
	/* Done: the helper's remaining sends fail now (EPIPE) rather than
	 * wait out their own deadline; what it moved stays countable. */
	ctx_chan_close(o->ch);
	soak_join_helper(o);
	drain(o, got, atomic_load(&o->moved) - got);
}

void op_chan_send(struct op *o)
{
	struct rng *r = &o->w->r;
	size_t cap = chance(r, 35) ? 0 : 1 + rn(r, 4);
	bool closing = chance(r, 20);
	int e = 0, sent = 0;

	o->k = 1 + (int)rn(r, 6);
	o->ch = ctx_chan_new(sizeof(long), cap);
	ck_assert_ptr_nonnull(o->ch);
	soak_say(o, " cap=%zu k=%d", cap, o->k);
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	int64_t at = rus(r, MAX_DL_US);
	soak_add_act(o, A_CHAN_RECV, at, o->k, (size_t)o->k <= cap);
	if (closing)
		soak_add_act(o, A_CHAN_CLOSE, at + rus(r, 20000), 0, true);
	if (!soak_add_cancel(o, o->dl == INT64_MAX && !closing &&
				   (size_t)o->k > cap))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	for (long i = 0; i < o->k; i++) {
		int pre = ctx_err(o->leaf);
		int64_t t = ctx_now();
		e = ctx_chan_send(o->leaf, o->ch, &i);
		int64_t end = ctx_now();
		soak_check_pre(o, "ctx_chan_send", pre, e ? -1 : 0, e);
		soak_check_late(o, "ctx_chan_send", t, end, INT64_MAX);
		if (e)
			break;
		sent++;
	}
	if (e == EPIPE) {
		if (!atomic_load(&o->closed))
			failf("ctx_chan_send: EPIPE on an open channel [%s]",
			      o->what);
	} else if (e) {
		soak_check_err(o, "ctx_chan_send", e);
	}
	ctx_chan_close(o->ch); /* as in op_chan_recv; buffered ones drain */
	soak_join_helper(o);
	int taken = atomic_load(&o->moved);
	if (atomic_load(&o->seq_bad))
		failf("channel: the receiver got elements out of order [%s]",
		      o->what);
	drain(o, taken, sent - taken);
}

void op_wg(struct op *o)
{
	struct rng *r = &o->w->r;
	bool all = chance(r, 70);

	o->k = 1 + (int)rn(r, 4);
	o->wg = ctx_wg_new();
	ck_assert_ptr_nonnull(o->wg);
	ctx_wg_add(o->wg, o->k);
	soak_say(o, " k=%d all=%d", o->k, all);
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	if (all || o->k > 1)
		soak_add_act(o, A_WG_DONE, rus(r, MAX_DL_US), all ? o->k : o->k - 1,
			all);
	if (!soak_add_cancel(o, !all && o->dl == INT64_MAX))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int e = ctx_wg_wait(o->leaf, o->wg);
	int64_t end = ctx_now();
	soak_check_pre(o, "ctx_wg_wait", pre, e ? -1 : 0, e);
	if (e == 0 && atomic_load(&o->dones) != o->k)
		failf("ctx_wg_wait returned 0 after %d of %d dones [%s]",
		      atomic_load(&o->dones), o->k, o->what);
	else if (e)
		soak_check_err(o, "ctx_wg_wait", e);
	soak_check_late(o, "ctx_wg_wait", t, end, INT64_MAX);
	soak_join_helper(o);
	int left = o->k - atomic_load(&o->dones);
	if (left)
		ctx_wg_add(o->wg, -left);
	expect_eq(ctx_wg_wait(ctx_background(), o->wg), 0);
}

struct gjob {
	struct op *o;
	int64_t sleep;
	int ret;
	_Atomic int result;
	_Atomic bool ran;
};

static int gjob_main(ctx_t *ctx, void *arg)
{
	struct gjob *j = arg;
	int64_t t = ctx_now(), d = INT64_MAX;
	int e = ctx_sleep(ctx, j->sleep);
	int64_t end = ctx_now();

	if (!ctx_deadline(ctx, &d))
		d = INT64_MAX;
	if (e == 0 && end - t < j->sleep)
		failf("group: ctx_sleep returned 0 after %.3f of %.3f ms [%s]",
		      (double)(end - t) / CTX_MSEC,
		      (double)j->sleep / CTX_MSEC, j->o->what);
	else if (e == CTX_DEADLINE_EXCEEDED && end < d)
		failf("group: ctx_sleep: deadline exceeded early [%s]",
		      j->o->what);
	else if (e && e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		failf("group: ctx_sleep: %d [%s]", e, j->o->what);
	else if (end > t + j->sleep + tol())
		failf("group: ctx_sleep of %.1f ms took %.1f ms [%s]",
		      (double)j->sleep / CTX_MSEC, (double)(end - t) / CTX_MSEC,
		      j->o->what);
	int r = e ? e : j->ret;
	atomic_store(&j->result, r);
	atomic_store(&j->ran, true);
	return r;
}

void op_group(struct op *o)
{
	struct rng *r = &o->w->r;
	struct gjob jobs[4];
	bool started[4] = { false };
	int m = 1 + (int)rn(r, 4), lim = (int)rn(r, 3) - 1;
	int64_t total = 0;

	if (lim == 0)
		lim = 2;
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	ctx_group_t *g = ctx_group_new(o->leaf);
	ck_assert_ptr_nonnull(g);
	expect_eq(ctx_group_set_limit(g, lim), 0);
	soak_say(o, " limit=%d jobs=%d", lim, m);
	for (int i = 0; i < m; i++) {
		jobs[i] = (struct gjob){ .o = o, .sleep = rus(r, 30000),
					 .ret = chance(r, 25) ? 3000 + i : 0 };
		total += jobs[i].sleep;
		soak_say(o, " [%.1fms->%d]", (double)jobs[i].sleep / CTX_MSEC,
		    jobs[i].ret);
	}
	o->sure_end = o->t0 + total;
	if (!soak_add_cancel(o, false))
		return;
	soak_start(o);
	for (int i = 0; i < m; i++) {
		int e = ctx_group_go(g, gjob_main, &jobs[i]);
		/* At the limit, go ends with the group's context (issue 13). */
		if (e && e != EAGAIN && e != ctx_err(ctx_group_ctx(g)))
			failf("ctx_group_go: %d [%s]", e, o->what);
		started[i] = e == 0;
	}
	int e = ctx_group_wait(g);
	int64_t end = ctx_now();
	bool any = false, match = false;
	for (int i = 0; i < m; i++) {
		if (!started[i])
			continue;
		if (!atomic_load(&jobs[i].ran)) {
			failf("ctx_group_wait returned with job %d not run "
			      "[%s]", i, o->what);
			continue;
		}
		int jr = atomic_load(&jobs[i].result);
		any |= jr != 0;
		match |= jr != 0 && jr == e;
	}
	if (e == 0 && any)
		failf("ctx_group_wait returned 0 though a job failed [%s]",
		      o->what);
	if (e != 0 && !match)
		failf("ctx_group_wait returned %d, which no job returned [%s]",
		      e, o->what);
	if (!ctx_err(ctx_group_ctx(g)))
		failf("group context still live after ctx_group_wait [%s]",
		      o->what);
	if (end > o->t0 + total + tol())
		failf("ctx_group_wait returned %.1f ms after its jobs' total "
		      "time [%s]", (double)(end - o->t0 - total) / CTX_MSEC,
		      o->what);
	ctx_group_free(g);
	soak_join_helper(o);
}

struct jarg {
	_Atomic int refs;
	int64_t d;
	_Atomic int64_t end;
	struct op *o;
};

static void jarg_put(struct jarg *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1)
		free(j);
}

static void *join_target(ctx_t *ctx, void *arg)
{
	struct jarg *j = arg;
	int e = ctx_sleep(ctx, j->d);

	if (e && e != CTX_CANCELED && e != CTX_DEADLINE_EXCEEDED)
		failf("join target: ctx_sleep: %d", e);
	atomic_store(&j->end, ctx_now());
	jarg_put(j);
	return (void *)(intptr_t)(0x100 + e);
}

static bool good_join_result(void *res)
{
	intptr_t v = (intptr_t)res - 0x100;
	return v == 0 || v == CTX_CANCELED || v == CTX_DEADLINE_EXCEEDED;
}

void op_join(struct op *o)
{
	struct rng *r = &o->w->r;
	struct jarg *j = malloc(sizeof(*j));
	ctx_thread_t *t;
	void *res = NULL;

	ck_assert_ptr_nonnull(j);
	if (!soak_build(o)) {
		free(j);
		return;
	}
	o->t0 = ctx_now();
	*j = (struct jarg){ .d = rus(r, MAX_DL_US), .o = o };
	atomic_init(&j->refs, 2);
	bool on_leaf = chance(r, 50);
	soak_say(o, " target sleeps %.1fms on %s", (double)j->d / CTX_MSEC,
	    on_leaf ? "leaf" : "background");
	o->sure_end = o->t0 + j->d;
	if (!soak_add_cancel(o, false)) {
		free(j);
		return;
	}
	soak_start(o);
	int ce = ctx_thread_create(&t, on_leaf ? o->leaf : ctx_background(),
				   join_target, j);
	if (ce) {
		failf("ctx_thread_create: %d [%s]", ce, o->what);
		free(j);
		soak_join_helper(o);
		return;
	}
	soak_maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t st = ctx_now();
	int e = ctx_thread_join(o->leaf, t, &res);
	int64_t end = ctx_now(), te = atomic_load(&j->end);
	soak_check_pre(o, "ctx_thread_join", pre, e ? -1 : 0, e);
	soak_check_late(o, "ctx_thread_join", st, end,
		   te ? te : o->t0 + j->d + tol());
	if (e == 0) {
		if (!good_join_result(res))
			failf("ctx_thread_join: result %p [%s]", res, o->what);
	} else {
		soak_check_err(o, "ctx_thread_join", e);
		if (!pre && te && te + tol() < st)
			failf("ctx_thread_join failed (%d) on a thread that "
			      "had finished %.1f ms before [%s]", e,
			      (double)(st - te) / CTX_MSEC, o->what);
		if (chance(r, 50)) {
			expect_eq(ctx_thread_detach(t), 0);
		} else {
			expect_eq(ctx_thread_join(ctx_background(), t, &res),
				  0);
			if (!good_join_result(res))
				failf("ctx_thread_join: result %p [%s]", res,
				      o->what);
		}
	}
	jarg_put(j);
	soak_join_helper(o);
}

void op_sleep(struct op *o)
{
	struct rng *r = &o->w->r;
	int64_t d = rus(r, MAX_DL_US + 10000);

	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	soak_say(o, " sleep=%.1fms", (double)d / CTX_MSEC);
	o->sure_end = o->t0 + d;
	if (!soak_add_cancel(o, false))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	int pre = ctx_err(o->leaf);
	int64_t t = ctx_now();
	int e = ctx_sleep(o->leaf, d);
	int64_t end = ctx_now();
	if (pre && e != pre)
		failf("ctx_sleep on a done context returned %d [%s]", e,
		      o->what);
	if (e == 0) {
		if (end - t < d)
			failf("ctx_sleep returned 0 after %.3f of %.3f ms [%s]",
			      (double)(end - t) / CTX_MSEC,
			      (double)d / CTX_MSEC, o->what);
		if (d > 0 && o->dl != INT64_MAX && o->dl + slack() < t + d)
			failf("ctx_sleep slept its %.1f ms past its context's "
			      "deadline %+.1f ms [%s]", (double)d / CTX_MSEC,
			      soak_rel(o, o->dl), o->what);
		if (d > 0 && soak_cancelled_by(o) != INT64_MAX &&
		    soak_cancelled_by(o) + slack() < t + d)
			failf("ctx_sleep slept on past its context's cancel "
			      "at %+.1f ms [%s]", soak_rel(o, soak_cancelled_by(o)),
			      o->what);
	} else {
		soak_check_err(o, "ctx_sleep", e);
	}
	soak_check_late(o, "ctx_sleep", t, end, t + d);
	soak_join_helper(o);
}

void op_wait(struct op *o)
{
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	if (!soak_add_cancel(o, o->dl == INT64_MAX))
		return;
	soak_start(o);
	soak_maybe_self_cancel(o);
	int64_t t = ctx_now();
	int e = ctx_wait(o->leaf);
	int64_t end = ctx_now();
	if (e == 0)
		failf("ctx_wait returned 0 [%s]", o->what);
	else
		soak_check_err(o, "ctx_wait", e);
	soak_check_late(o, "ctx_wait", t, end, INT64_MAX);
	soak_join_helper(o);
}

static void aft_main(void *arg)
{
	struct aft *a = arg;
	int e = a->target ? ctx_err(a->target) : -1;
	int64_t at = ctx_now();

	if (atomic_load(&a->ran) == 0) {
		atomic_store(&a->err_seen, e);
		atomic_store(&a->at, at);
	}
	/* Last: the test frees a as soon as it sees ran. */
	atomic_fetch_add(&a->ran, 1);
}

/* Wait up to tol for an after-func that must run to have run. */
static bool aft_wait(struct aft *a, int64_t from)
{
	while (!atomic_load(&a->ran) && ctx_now() < from + tol())
		tu_sleep_ns(200 * CTX_USEC);
	return atomic_load(&a->ran) != 0;
}

void op_after(struct op *o)
{
	struct rng *r = &o->w->r;
	struct aft *fa = calloc(1, sizeof(*fa));
	bool stop_mode = chance(r, 50);

	ck_assert_ptr_nonnull(fa);
	if (!soak_build(o)) {
		free(fa);
		return;
	}
	o->t0 = ctx_now();
	soak_say(o, stop_mode ? " stop" : " wait");
	if (!soak_add_cancel(o, !stop_mode && o->dl == INT64_MAX)) {
		free(fa);
		return;
	}
	fa->target = o->leaf;
	soak_start(o);
	ctx_after_t *a = ctx_after_func(o->leaf, aft_main, fa);
	if (!a) {
		failf("ctx_after_func: NULL, errno %d [%s]", errno, o->what);
		free(fa);
		soak_join_helper(o);
		return;
	}
	if (stop_mode) {
		tu_sleep_ns(rus(r, 30000));
		int64_t t = ctx_now();
		if (ctx_after_stop(a)) {
			if (atomic_load(&fa->ran))
				failf("ctx_after_stop returned true, but fn "
				      "ran [%s]", o->what);
			fa->target = NULL;
			pthread_mutex_lock(&soak_grave_mu);
			fa->next = soak_graveyard;
			soak_graveyard = fa;
			pthread_mutex_unlock(&soak_grave_mu);
			fa = NULL;
		} else if (!aft_wait(fa, t)) {
			failf("ctx_after_stop returned false, but fn did not "
			      "run within %lld ms [%s]",
			      (long long)(tol() / CTX_MSEC), o->what);
			fa = NULL; /* it may still run: leak rather than free */
		}
	} else {
		int64_t t = ctx_now();
		int e = ctx_wait(o->leaf);
		int64_t end = ctx_now();
		soak_check_err(o, "ctx_wait", e);
		soak_check_late(o, "ctx_wait", t, end, INT64_MAX);
		if (!aft_wait(fa, end))
			failf("after-func did not run within %lld ms of its "
			      "context's end [%s]",
			      (long long)(tol() / CTX_MSEC), o->what);
		if (ctx_after_stop(a))
			failf("ctx_after_stop returned true after fn ran "
			      "[%s]", o->what);
	}
	if (fa) {
		if (atomic_load(&fa->ran) != 1)
			failf("after-func ran %d times [%s]",
			      atomic_load(&fa->ran), o->what);
		else if (atomic_load(&fa->err_seen) != CTX_CANCELED &&
			 atomic_load(&fa->err_seen) != CTX_DEADLINE_EXCEEDED)
			failf("after-func ran with its context's error %d "
			      "[%s]", atomic_load(&fa->err_seen), o->what);
		free(fa);
	}
	soak_join_helper(o);
}

void op_done_fd(struct op *o)
{
	if (!soak_build(o))
		return;
	o->t0 = ctx_now();
	if (!soak_add_cancel(o, o->dl == INT64_MAX))
		return;
	soak_start(o);
	errno = 0;
	int fd = ctx_done_fd(o->leaf);
	if (fd < 0) {
		failf("ctx_done_fd: -1, errno %d [%s]", errno, o->what);
		soak_join_helper(o);
		return;
	}
	if (ctx_done_fd(o->leaf) != fd)
		failf("ctx_done_fd gave another descriptor [%s]", o->what);
	/* Wait without entering the library: the timer thread must make
	 * the descriptor readable at the deadline. */
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int64_t t = ctx_now(), end;
	int n;
	for (;;) {
		n = poll(&pf, 1, 5);
		end = ctx_now();
		if (n != 0)
			break;
		int64_t by = soak_bound(o);
		if (by != INT64_MAX && end > by + tol())
			break;
	}
	if (n != 1 || pf.revents != POLLIN) {
		failf("done fd not readable %.1f ms after the context had "
		      "to end (poll %d, revents %#x) [%s]",
		      (double)(end - soak_bound(o)) / CTX_MSEC, n, pf.revents,
		      o->what);
	} else {
		soak_check_err(o, "done fd", ctx_err(o->leaf));
		soak_check_late(o, "done fd", t, end, INT64_MAX);
		if (poll(&pf, 1, 0) != 1)
			failf("done fd readable once, then not [%s]", o->what);
	}
	soak_join_helper(o);
}

/* A random tree: cancels here and there, by the worker and a helper;
 * every cancel reaches every descendant it should, and values resolve
 * to the nearest. */
struct tnode {
	ctx_t *c;
	int parent; /* index, -1: the base */
	int kind;
	bool held;
};

static bool tree_reaches(struct tnode *t, int from, int to)
{
	for (int i = to; i >= 0; i = t[i].parent) {
		if (i == from)
			return true;
		if (t[i].kind == K_WITHOUT)
			return false;
	}
	return false;
}

static void *tree_value(struct tnode *t, int i)
{
	for (; i >= 0; i = t[i].parent)
		if (t[i].kind == K_VALUE)
			return &t[i];
	return NULL;
}

/* y descends from the done node x: y must be done, at once or (when
 * another thread's cancel is still walking the tree) within tol. */
static void tree_expect_done(struct op *o, struct tnode *t, int y, int x)
{
	int64_t until = ctx_now() + tol();

	while (!ctx_err(t[y].c) && ctx_now() < until)
		tu_sleep_ns(100 * CTX_USEC);
	if (!ctx_err(t[y].c))
		failf("tree: #%d (%s) still live %lld ms after its ancestor "
		      "#%d (%s) was done [%s]", y, kind_names[t[y].kind],
		      (long long)(tol() / CTX_MSEC), x, kind_names[t[x].kind],
		      o->what);
}

void op_tree(struct op *o)
{
	struct rng *r = &o->w->r;
	struct tnode t[TREE_MAX];
	int n = 8 + (int)rn(r, TREE_MAX - 7);
	ctx_t *base = o->ep ? o->ep->c : ctx_background();

	soak_say(o, " nodes=%d", n);
	for (int i = 0; i < n; i++) {
		unsigned x = rn(r, 100);
		t[i].parent = i == 0 || chance(r, 10) ? -1 : (int)rn(r, (unsigned)i);
		t[i].kind = x < 35 ? K_CANCEL : x < 55 ? K_TIMEOUT :
			    x < 60 ? K_DLCAUSE : x < 90 ? K_VALUE : K_WITHOUT;
		ctx_t *p = t[i].parent < 0 ? base : t[t[i].parent].c;
		int64_t us = rus(r, MAX_DL_US);
		switch (t[i].kind) {
		case K_CANCEL:
			t[i].c = ctx_with_cancel(p);
			break;
		case K_TIMEOUT:
			t[i].c = ctx_with_timeout(p, us);
			break;
		case K_DLCAUSE:
			t[i].c = ctx_with_timeout_cause(p, us, CAUSE_DL);
			break;
		case K_VALUE:
			t[i].c = ctx_with_value(p, value_key, &t[i]);
			break;
		default:
			t[i].c = ctx_without_cancel(p);
			break;
		}
		ck_assert_ptr_nonnull(t[i].c);
		t[i].held = true;
	}
	o->t0 = ctx_now();
	for (int i = 0, m = (int)rn(r, 4); i < m && o->nacts < MAX_ACTS; i++) {
		int x = (int)rn(r, (unsigned)n);
		soak_add_act(o, A_CANCEL, rus(r, 20000), x, false);
		for (int j = 0; j < o->nacts; j++)
			if (!o->acts[j].ref)
				o->acts[j].ref = ctx_ref(t[x].c);
	}
	o->sure_end = o->t0;
	soak_start(o);
	for (int step = 0; step < n; step++) {
		int x = (int)rn(r, (unsigned)n);
		if (!t[x].held)
			continue;
		if (tree_value(t, x) != ctx_value(t[x].c, value_key))
			failf("tree: ctx_value(#%d) is not the nearest value "
			      "[%s]", x, o->what);
		switch (rn(r, 4)) {
		case 0:
			ctx_unref(t[x].c);
			t[x].held = false;
			break;
		case 1:
			if (!is_cancel_kind(t[x].kind))
				break;
			ctx_cancel_cause(t[x].c, CAUSE_TREE);
			if (!ctx_err(t[x].c))
				failf("tree: #%d live after ctx_cancel [%s]", x,
				      o->what);
			for (int y = 0; y < n; y++)
				if (t[y].held && tree_reaches(t, x, y))
					tree_expect_done(o, t, y, x);
			break;
		case 2:
			if (chance(r, 30))
				tu_sleep_ns(rus(r, 2000));
			break;
		default:
			break;
		}
	}
	soak_join_helper(o);
	/* A done parent has done children: at once if this thread ended
	 * it, soon if another thread is still walking the tree. */
	for (int y = 0; y < n; y++) {
		int p = t[y].parent;
		if (!t[y].held || p < 0 || !t[p].held || t[y].kind == K_WITHOUT)
			continue;
		if (ctx_err(t[p].c))
			tree_expect_done(o, t, y, p);
	}
	for (int i = n - 1; i >= 0; i--) {
		int x = (int)rn(r, (unsigned)(i + 1));
		for (int j = 0; j < n; j++)
			if (t[(x + j) % n].held) {
				x = (x + j) % n;
				break;
			}
		if (!t[x].held)
			break;
		if (chance(r, 50))
			ctx_release(t[x].c);
		else
			ctx_unref(t[x].c);
		t[x].held = false;
	}
}
