/*
 * The stress suite's soak (see stress.c): random workers build context
 * chains and trees and wait on them in every way the library offers,
 * while helper threads act on the other side and the test's thread
 * cancels and replaces a shared root at random; every result and the
 * length of every wait is checked as it happens.  This file is the
 * machinery (chains, helpers' actions, the checks, the workers, the
 * watchdog) and the test; the operations are in soak_ops.c.
 */
#include "soak.h"
#include "suites.h"

static pthread_mutex_t epoch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct epoch *epoch_cur;

static struct epoch *epoch_new(struct rng *r)
{
	struct epoch *e = calloc(1, sizeof(*e));
	int64_t d;

	ck_assert_ptr_nonnull(e);
	e->c = chance(r, 30) ?
		       ctx_with_timeout(ctx_background(), rus(r, 100000)) :
		       ctx_with_cancel(ctx_background());
	ck_assert_ptr_nonnull(e->c);
	e->dl = ctx_deadline(e->c, &d) ? d : INT64_MAX;
	atomic_init(&e->refs, 1);
	return e;
}

static struct epoch *epoch_get(void)
{
	pthread_mutex_lock(&epoch_mu);
	struct epoch *e = epoch_cur;
	if (e)
		atomic_fetch_add(&e->refs, 1);
	pthread_mutex_unlock(&epoch_mu);
	return e;
}

static void epoch_put(struct epoch *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
		ctx_release(e->c);
		free(e);
	}
}

/* Replace the current epoch; cancel and drop the old one. */
static void epoch_rotate(struct rng *r, bool last)
{
	struct epoch *n = last ? NULL : epoch_new(r);

	pthread_mutex_lock(&epoch_mu);
	struct epoch *old = epoch_cur;
	epoch_cur = n;
	pthread_mutex_unlock(&epoch_mu);
	if (!old)
		return;
	atomic_store(&old->issued, true);
	ctx_cancel_cause(old->c, CAUSE_EPOCH);
	atomic_store(&old->cancelled_at, ctx_now());
	epoch_put(old);
}

static _Atomic bool soak_stop;
static _Atomic long soak_ops[OP_COUNT];
static _Atomic int64_t soak_ns[OP_COUNT]; /* time spent, per kind */

pthread_mutex_t soak_grave_mu = PTHREAD_MUTEX_INITIALIZER;
struct aft *soak_graveyard;

__attribute__((format(printf, 2, 3)))
void soak_say(struct op *o, const char *fmt, ...)
{
	size_t len = strlen(o->what);
	va_list ap;

	if (len + 1 >= sizeof(o->what))
		return;
	va_start(ap, fmt);
	vsnprintf(o->what + len, sizeof(o->what) - len, fmt, ap);
	va_end(ap);
}

/* Milliseconds from the op's start, for messages. */
double soak_rel(struct op *o, int64_t t)
{
	return t == INT64_MAX ? 1e9 : (double)(t - o->t0) / CTX_MSEC;
}

static void min_store(_Atomic int64_t *v, int64_t t)
{
	int64_t cur = atomic_load(v);
	while ((cur == 0 || t < cur) &&
	       !atomic_compare_exchange_weak(v, &cur, t))
		;
}

static void mark_event(struct op *o)
{
	min_store(&o->event_at, ctx_now());
}

/* The earliest moment from which the leaf's waits must end within tol. */
int64_t soak_bound(struct op *o)
{
	int64_t by = o->dl, ev = atomic_load(&o->event_at);

	if (ev && ev < by)
		by = ev;
	if (o->ep_affects) {
		ev = atomic_load(&o->ep->cancelled_at);
		if (ev && ev < by)
			by = ev;
	}
	return by;
}

/* The moment the leaf was certainly cancelled by someone (or INT64_MAX). */
int64_t soak_cancelled_by(struct op *o)
{
	int64_t by = INT64_MAX, ev;

	if (atomic_load(&o->cancelled) && (ev = atomic_load(&o->event_at)))
		by = ev;
	if (o->ep_affects && (ev = atomic_load(&o->ep->cancelled_at)) &&
	    ev < by)
		by = ev;
	return by;
}

/* ctx_err reports an expired deadline as soon as it has passed, whether
 * or not anyone waits: read the clock, then the error. */
static void check_expired(struct op *o, const char *call)
{
	int64_t now = ctx_now();
	int e = ctx_err(o->leaf);

	if (o->dl != INT64_MAX && now >= o->dl && !e)
		failf("after %s: ctx_err(leaf) is 0 at %+.3f ms, %.3f ms past "
		      "its deadline [%s]", call, soak_rel(o, now),
		      (double)(now - o->dl) / CTX_MSEC, o->what);
}

void soak_check_late(struct op *o, const char *call, int64_t start,
		     int64_t end, int64_t own_by)
{
	int64_t by = soak_bound(o);

	check_expired(o, call);

	if (own_by < by)
		by = own_by;
	if (by != INT64_MAX && end > by + tol())
		failf("%s returned at %+.1f ms, %.1f ms after it had to "
		      "(began %+.1f ms, deadline %+.1f ms, own limit %+.1f "
		      "ms, events %+.1f ms): lost wake-up [%s]", call,
		      soak_rel(o, end), (double)(end - by) / CTX_MSEC,
		      soak_rel(o, start), soak_rel(o, o->dl), soak_rel(o, own_by),
		      soak_rel(o, atomic_load(&o->event_at) ?
				     atomic_load(&o->event_at) : INT64_MAX),
		      o->what);
}

/*
 * A wait on the leaf returned error err: it must be the leaf's own, with
 * a cause that someone really gave, and a deadline error must not come
 * before the deadline.
 */
void soak_check_err(struct op *o, const char *call, int err)
{
	int le = ctx_err(o->leaf), cause = ctx_cause(o->leaf);
	int64_t now = ctx_now();

	if (err != CTX_CANCELED && err != CTX_DEADLINE_EXCEEDED) {
		failf("%s: error %d (%s), not a context error [%s]", call, err,
		      strerror(err), o->what);
		return;
	}
	if (le != err) {
		failf("%s returned %s but ctx_err(leaf) is %d [%s]", call,
		      ctx_strerror(err), le, o->what);
		return;
	}
	if (err == CTX_DEADLINE_EXCEEDED) {
		if (now < o->dl)
			failf("%s: deadline exceeded %.3f ms before the "
			      "deadline [%s]", call,
			      (double)(o->dl - now) / CTX_MSEC, o->what);
		if (cause != CTX_DEADLINE_EXCEEDED && cause != CAUSE_DL)
			failf("%s: deadline exceeded with cause %d [%s]", call,
			      cause, o->what);
		return;
	}
	bool ok = (cause == CAUSE_HELPER && atomic_load(&o->cancelled)) ||
		  (cause == CAUSE_EPOCH && o->ep_affects &&
		   atomic_load(&o->ep->issued)) ||
		  (cause == CAUSE_SELF && o->self_cancelled);
	if (!ok)
		failf("%s: canceled with cause %d, which nobody gave to a "
		      "context above the leaf [%s]", call, cause, o->what);
}

static bool make_node(struct op *o, ctx_t *p, struct node *nd)
{
	nd->made_before = ctx_now();
	switch (nd->kind) {
	case K_CANCEL:
		nd->c = ctx_with_cancel(p);
		break;
	case K_TIMEOUT:
		nd->c = ctx_with_timeout(p, nd->us);
		break;
	case K_DLCAUSE:
		nd->c = ctx_with_timeout_cause(p, nd->us, CAUSE_DL);
		break;
	case K_VALUE:
		nd->c = ctx_with_value(p, value_key, nd);
		break;
	default:
		nd->c = ctx_without_cancel(p);
		break;
	}
	nd->made_after = ctx_now();
	if (!nd->c)
		failf("%s constructor returned NULL, errno %d [%s]",
		      kind_names[nd->kind], errno, o->what);
	return nd->c != NULL;
}

/* Work out the leaf, which nodes end it, its deadline; check the
 * deadline and value the chain must give it. */
static void finish_chain(struct op *o)
{
	int last_without = -1;
	bool a = true;
	void *want_value = NULL;
	int64_t lo = INT64_MAX, hi = INT64_MAX, d;

	o->leaf = o->n ? o->chain[o->n - 1].c :
			 (o->ep ? o->ep->c : ctx_background());
	for (int i = o->n - 1; i >= 0; i--) {
		o->chain[i].affects = a && is_cancel_kind(o->chain[i].kind);
		if (o->chain[i].kind == K_WITHOUT)
			a = false;
	}
	o->ep_affects = o->ep && a;
	for (int i = 0; i < o->n; i++) {
		if (o->chain[i].kind == K_WITHOUT)
			last_without = i;
		if (o->chain[i].kind == K_VALUE)
			want_value = &o->chain[i];
	}
	if (last_without < 0 && o->ep && o->ep->dl != INT64_MAX)
		lo = hi = o->ep->dl;
	for (int i = last_without + 1; i < o->n; i++) {
		struct node *nd = &o->chain[i];
		if (nd->kind != K_TIMEOUT && nd->kind != K_DLCAUSE)
			continue;
		int64_t l = nd->made_before + nd->us, h = nd->made_after + nd->us;
		lo = l < lo ? l : lo;
		hi = h < hi ? h : hi;
	}
	o->dl = ctx_deadline(o->leaf, &d) ? d : INT64_MAX;
	if (hi == INT64_MAX && o->dl != INT64_MAX)
		failf("ctx_deadline gives the leaf a deadline (%+.1f ms) "
		      "that no context above it has [%s]", soak_rel(o, o->dl),
		      o->what);
	else if (hi != INT64_MAX && (o->dl < lo || o->dl > hi))
		failf("ctx_deadline gives the leaf %+.3f ms; the chain says "
		      "between %+.3f and %+.3f ms [%s]", soak_rel(o, o->dl),
		      soak_rel(o, lo), soak_rel(o, hi), o->what);
	if (ctx_value(o->leaf, value_key) != want_value)
		failf("ctx_value(leaf) is not the nearest value [%s]",
		      o->what);
}

bool soak_build(struct op *o)
{
	struct rng *r = &o->w->r;
	ctx_t *p = o->ep ? o->ep->c : ctx_background();
	int n = 1 + (int)rn(r, MAX_CHAIN - 2);

	soak_say(o, " chain=%s", o->ep ? "epoch" : "background");
	for (int i = 0; i < n; i++) {
		struct node *nd = &o->chain[i];
		unsigned x = rn(r, 100);
		nd->kind = x < 30 ? K_CANCEL : x < 58 ? K_TIMEOUT :
			   x < 66 ? K_DLCAUSE : x < 92 ? K_VALUE : K_WITHOUT;
		nd->us = rus(r, MAX_DL_US);
		if (nd->kind == K_TIMEOUT || nd->kind == K_DLCAUSE)
			soak_say(o, ">%s(%.1fms)", kind_names[nd->kind],
			    (double)nd->us / CTX_MSEC);
		else
			soak_say(o, ">%s", kind_names[nd->kind]);
		if (!make_node(o, p, nd))
			return false;
		o->n = i + 1;
		p = nd->c;
	}
	finish_chain(o);
	return true;
}

/* One more node under the leaf, which becomes the new leaf. */
static bool extend(struct op *o, int kind, int64_t us)
{
	struct node *nd = &o->chain[o->n];

	nd->kind = kind;
	nd->us = us;
	soak_say(o, "+%s(%.1fms)", kind_names[kind], (double)us / CTX_MSEC);
	if (!make_node(o, o->leaf, nd))
		return false;
	o->n++;
	finish_chain(o);
	return true;
}

void soak_add_act(struct op *o, int kind, int64_t at, int arg, bool ends)
{
	struct action a = { .kind = kind, .at = at, .arg = arg };
	int i;

	if (o->nacts == MAX_ACTS)
		return;
	for (i = o->nacts; i > 0 && o->acts[i - 1].at > at; i--)
		o->acts[i] = o->acts[i - 1];
	o->acts[i] = a;
	o->nacts++;
	if (ends && o->t0 + at < o->sure_end)
		o->sure_end = o->t0 + at;
	soak_say(o, " %s(%d)@%.1fms", act_names[kind], arg,
	    (double)at / CTX_MSEC);
}

/*
 * Maybe have the helper cancel a node: one that ends the leaf, or (now
 * and then) one that must not.  With `must`, the wait has no other end:
 * cancel a node that ends it, or give the leaf a deadline when none can.
 */
bool soak_add_cancel(struct op *o, bool must)
{
	struct rng *r = &o->w->r;
	int cand[MAX_CHAIN], nc = 0, any[MAX_CHAIN], na = 0;

	for (int i = 0; i < o->n; i++) {
		if (o->chain[i].affects)
			cand[nc++] = i;
		if (is_cancel_kind(o->chain[i].kind))
			any[na++] = i;
	}
	if (must && !nc) {
		if (!extend(o, K_TIMEOUT, rus(r, MAX_DL_US)))
			return false;
		if (o->dl < o->sure_end)
			o->sure_end = o->dl;
		return true;
	}
	if (!must && !chance(r, 45))
		return true;
	int idx = must || !na || chance(r, 80) ? (nc ? cand[rn(r, nc)] : -1) :
						  any[rn(r, na)];
	if (idx < 0 || o->nacts == MAX_ACTS)
		return true;
	struct node *nd = &o->chain[idx];
	soak_add_act(o, A_CANCEL, rus(r, MAX_DL_US), idx, nd->affects);
	for (int i = 0; i < o->nacts; i++)
		if (o->acts[i].kind == A_CANCEL && !o->acts[i].ref) {
			o->acts[i].ref = ctx_ref(nd->c);
			o->acts[i].affects = nd->affects;
		}
	return true;
}

/* Now and then cancel a node above the leaf before waiting. */
void soak_maybe_self_cancel(struct op *o)
{
	struct rng *r = &o->w->r;

	if (!chance(r, 5))
		return;
	for (int i = o->n - 1; i >= 0; i--)
		if (o->chain[i].affects) {
			o->self_cancelled = true;
			soak_say(o, " self-cancel#%d", i);
			ctx_cancel_cause(o->chain[i].c, CAUSE_SELF);
			return;
		}
}

void soak_fill(char *buf, int n)
{
	for (int i = 0; i < n; i++)
		buf[i] = (char)('a' + i % 26);
}

/* The helper waits in two ways: the library's (checked) or nanosleep. */
static void helper_sleep_until(struct op *o, int64_t t)
{
	int64_t now = ctx_now();

	if (t <= now)
		return;
	if (!chance(&o->hr, 50)) {
		tu_sleep_ns(t - now);
		return;
	}
	int e = ctx_sleep(ctx_background(), t - now);
	int64_t end = ctx_now();
	if (e != 0)
		failf("helper: ctx_sleep(background) returned %d [%s]", e,
		      o->what);
	else if (end < t)
		failf("helper: ctx_sleep(background) ended %.3f ms early [%s]",
		      (double)(t - end) / CTX_MSEC, o->what);
	else if (end > t + tol())
		failf("helper: ctx_sleep(background) ended %.1f ms late [%s]",
		      (double)(end - t) / CTX_MSEC, o->what);
}

/* A helper's own channel operation, with its own short deadline. */
static int helper_chan(struct op *o, bool send, long *v)
{
	ctx_t *c = ctx_with_timeout(ctx_background(),
				    CHAN_PEER_MS * CTX_MSEC);
	int64_t d = 0, start = ctx_now();
	int e;

	if (!c) {
		failf("helper: ctx_with_timeout: errno %d", errno);
		return ENOMEM;
	}
	ctx_deadline(c, &d);
	e = send ? ctx_chan_send(c, o->ch, v) : ctx_chan_recv(c, o->ch, v);
	int64_t end = ctx_now();
	if (e != 0 && e != CTX_DEADLINE_EXCEEDED && e != EPIPE)
		failf("helper: ctx_chan_%s returned %d [%s]",
		      send ? "send" : "recv", e, o->what);
	if (e == CTX_DEADLINE_EXCEEDED && end < d)
		failf("helper: ctx_chan_%s deadline exceeded early [%s]",
		      send ? "send" : "recv", o->what);
	if (end > (start > d ? start : d) + tol())
		failf("helper: ctx_chan_%s returned %.1f ms after its "
		      "deadline [%s]", send ? "send" : "recv",
		      (double)(end - d) / CTX_MSEC, o->what);
	ctx_release(c);
	return e;
}

static void act(struct op *o, struct action *a)
{
	char buf[64];
	long v;

	switch (a->kind) {
	case A_CANCEL:
		if (a->affects)
			atomic_store(&o->cancelled, true);
		ctx_cancel_cause(a->ref, CAUSE_HELPER);
		if (a->affects)
			mark_event(o);
		ctx_unref(a->ref);
		a->ref = NULL;
		break;
	case A_WRITE:
		soak_fill(buf, a->arg);
		atomic_fetch_add(&o->wrote[a->which], a->arg);
		if (write(o->wfd[a->which], buf, (size_t)a->arg) != a->arg)
			failf("helper: write: %s [%s]", strerror(errno),
			      o->what);
		mark_event(o);
		break;
	case A_CLOSE:
		atomic_store(&o->closed, true);
		close(o->wfd[0]);
		o->wfd[0] = -1;
		mark_event(o);
		break;
	case A_CHAN_SEND:
		for (int i = 0; i < a->arg; i++) {
			v = atomic_load(&o->moved);
			if (helper_chan(o, true, &v))
				break;
			if (atomic_fetch_add(&o->moved, 1) + 1 == o->k)
				mark_event(o);
		}
		break;
	case A_CHAN_RECV:
		for (int i = 0; i < a->arg; i++) {
			if (helper_chan(o, false, &v))
				break;
			if (v != atomic_load(&o->moved))
				atomic_store(&o->seq_bad, true);
			atomic_fetch_add(&o->moved, 1);
		}
		break;
	case A_CHAN_CLOSE:
		atomic_store(&o->closed, true);
		ctx_chan_close(o->ch);
		mark_event(o);
		break;
	case A_WG_DONE:
		for (int i = 0; i < a->arg; i++) {
			if (chance(&o->hr, 30))
				tu_sleep_ns(rus(&o->hr, 2000));
			int d = atomic_fetch_add(&o->dones, 1) + 1;
			ctx_wg_done(o->wg);
			if (d == o->k)
				mark_event(o);
		}
		break;
	}
}

static void *helper_main(ctx_t *ctx, void *arg)
{
	struct op *o = arg;

	(void)ctx;
	for (int i = 0; i < o->nacts; i++) {
		helper_sleep_until(o, o->t0 + o->acts[i].at);
		act(o, &o->acts[i]);
	}
	atomic_store(&o->helper_end, ctx_now());
	return o;
}

/* Publish the op to the watchdog and start its helper. */
void soak_start(struct op *o)
{
	struct worker *w = o->w;
	int64_t lim = o->sure_end < o->dl ? o->sure_end : o->dl;

	if (lim == INT64_MAX) /* nothing ends it: it must not block */
		lim = o->t0 + 10 * CTX_SEC;
	else if (lim < o->t0 + 2 * CTX_SEC)
		lim = o->t0 + 2 * CTX_SEC;
	pthread_mutex_lock(&w->what_mu);
	snprintf(w->what, sizeof(w->what), "%s", o->what);
	pthread_mutex_unlock(&w->what_mu);
	atomic_store(&w->must_end, lim + tol() + CTX_SEC);
	atomic_store(&w->busy_since, o->t0);
	o->hr.s = rnd(&w->r);
	if (o->nacts == 0)
		return;
	int e = ctx_thread_create(&o->helper, ctx_background(), helper_main, o);
	if (e) {
		failf("ctx_thread_create(helper): %d [%s]", e, o->what);
		o->helper = NULL;
	}
}

/* Join the helper in short, checked, cancellable rounds. */
void soak_join_helper(struct op *o)
{
	struct rng *r = &o->w->r;

	while (o->helper) {
		ctx_t *jc = ctx_with_timeout(ctx_background(),
					     rus(r, MAX_DL_US));
		int64_t jdl = 0, start = ctx_now(), he;
		void *res = NULL;

		ck_assert_ptr_nonnull(jc);
		ctx_deadline(jc, &jdl);
		int e = ctx_thread_join(jc, o->helper, &res);
		int64_t end = ctx_now();
		he = atomic_load(&o->helper_end);
		if (e == 0) {
			o->helper = NULL;
			if (res != o)
				failf("ctx_thread_join(helper): result %p, "
				      "not %p [%s]", res, (void *)o, o->what);
			if (end > (start > he ? start : he) + tol())
				failf("ctx_thread_join(helper) returned %.1f "
				      "ms after the helper finished [%s]",
				      (double)(end - he) / CTX_MSEC, o->what);
		} else if (e == CTX_DEADLINE_EXCEEDED) {
			if (end < jdl)
				failf("ctx_thread_join: deadline exceeded "
				      "early [%s]", o->what);
			if (end > jdl + tol())
				failf("ctx_thread_join: returned %.1f ms after "
				      "its deadline [%s]",
				      (double)(end - jdl) / CTX_MSEC, o->what);
			if (he && he + tol() < start)
				failf("ctx_thread_join: deadline exceeded "
				      "joining a thread that finished %.1f ms "
				      "before [%s]",
				      (double)(start - he) / CTX_MSEC, o->what);
		} else {
			failf("ctx_thread_join(helper): %d [%s]", e, o->what);
			ctx_release(jc);
			expect_eq(ctx_thread_join(ctx_background(), o->helper,
						  NULL), 0);
			o->helper = NULL;
			return;
		}
		ctx_release(jc);
	}
}

/* Every wait on a done context fails at once with its error. */
void soak_check_pre(struct op *o, const char *call, int pre, long rc,
		    int err)
{
	if (pre && !(rc == -1 && err == pre))
		failf("%s on a context already done (%s) returned %ld, error "
		      "%d [%s]", call, ctx_strerror(pre), rc, err, o->what);
}

/* ---- the workers and the test ------------------------------------------ */

static void cleanup(struct op *o)
{
	struct rng *r = &o->w->r;

	for (int i = 0; i < o->nacts; i++)
		if (o->acts[i].ref) { /* the helper never ran */
			ctx_unref(o->acts[i].ref);
			o->acts[i].ref = NULL;
		}
	/* Drop the chain in a random order: each holds its parent. */
	for (int left = o->n; left > 0; left--) {
		int i = (int)rn(r, (unsigned)o->n);
		while (!o->chain[i].c)
			i = (i + 1) % o->n;
		if (chance(r, 50))
			ctx_release(o->chain[i].c);
		else
			ctx_unref(o->chain[i].c);
		o->chain[i].c = NULL;
	}
	for (int i = 0; i < 2; i++) {
		if (o->rfd[i] >= 0)
			close(o->rfd[i]);
		if (o->wfd[i] >= 0)
			close(o->wfd[i]);
	}
	if (o->ch)
		ctx_chan_free(o->ch);
	if (o->wg)
		ctx_wg_free(o->wg);
	epoch_put(o->ep);
}

static void run_op(struct worker *w, struct op *o)
{
	memset(o, 0, sizeof(*o));
	o->w = w;
	o->rfd[0] = o->rfd[1] = o->wfd[0] = o->wfd[1] = -1;
	o->sure_end = INT64_MAX;
	o->kind = (int)rn(&w->r, OP_COUNT);
	o->ep = chance(&w->r, 60) ? epoch_get() : NULL;
	o->t0 = ctx_now();
	snprintf(o->what, sizeof(o->what), "worker %d.%u op=%s", w->idx,
		 w->gen, op_names[o->kind]);
	switch (o->kind) {
	case OP_READ:
		op_io(o, false);
		break;
	case OP_RECV:
		op_io(o, true);
		break;
	case OP_POLL:
		op_poll(o);
		break;
	case OP_CHAN_RECV:
		op_chan_recv(o);
		break;
	case OP_CHAN_SEND:
		op_chan_send(o);
		break;
	case OP_WG:
		op_wg(o);
		break;
	case OP_GROUP:
		op_group(o);
		break;
	case OP_JOIN:
		op_join(o);
		break;
	case OP_SLEEP:
		op_sleep(o);
		break;
	case OP_WAIT:
		op_wait(o);
		break;
	case OP_AFTER:
		op_after(o);
		break;
	case OP_DONE_FD:
		op_done_fd(o);
		break;
	default:
		op_tree(o);
		break;
	}
	soak_join_helper(o); /* an op that gave up early */
	atomic_store(&w->busy_since, 0);
	cleanup(o);
	atomic_fetch_add(&soak_ops[o->kind], 1);
	atomic_fetch_add(&soak_ns[o->kind], ctx_now() - o->t0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct op *o = malloc(sizeof(*o));

	ck_assert_ptr_nonnull(o);
	while (w->ops_left-- > 0 && !atomic_load(&soak_stop) &&
	       !stress_failing())
		run_op(w, o);
	free(o);
	atomic_store(&w->exited, true);
	return NULL;
}

static void worker_start(struct worker *w)
{
	w->gen++;
	w->r.s = stress_seed ^ ((uint64_t)w->idx << 48) ^ ((uint64_t)w->gen << 32);
	rnd(&w->r);
	w->ops_left = 10 + rn(&w->r, 200);
	atomic_store(&w->exited, false);
	atomic_store(&w->busy_since, 0);
	ck_assert_int_eq(pthread_create(&w->th, NULL, worker_main, w), 0);
}

int soak_seconds(void)
{
	const char *s = getenv("STRESS_SECONDS");
	if (s && *s && atoi(s) > 0)
		return atoi(s);
	return tu_quick() || tu_valgrind() ? 2 : SOAK_S;
}

/* Workers of the soak: make check keeps it light beside the suites
 * that run in parallel; make soak asks for more. */
static int nworkers = WORKERS;

static int soak_workers(void)
{
	const char *s = getenv("STRESS_WORKERS");
	int n = s && *s ? atoi(s) : 0;
	return n > 0 && n <= MAX_WORKERS ? n : WORKERS;
}

static unsigned soak_scale(void)
{
	const char *s = getenv("STRESS_SCALE");
	if (s && *s && atoi(s) > 0)
		return (unsigned)atoi(s);
	return tu_valgrind() ? 1 : SOAK_SCALE;
}

/* The test's thread as watchdog: a worker past its limit is stuck. */
static bool watchdog(struct worker *ws)
{
	int64_t now = ctx_now();

	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &ws[i];
		int64_t bs = atomic_load(&w->busy_since);
		if (!bs || now <= atomic_load(&w->must_end))
			continue;
		char what[480];
		pthread_mutex_lock(&w->what_mu);
		snprintf(what, sizeof(what), "%s", w->what);
		pthread_mutex_unlock(&w->what_mu);
		/* Look again: it may have finished meanwhile. */
		if (atomic_load(&w->busy_since) != bs)
			continue;
		failf("worker %d stuck: operation running for %.0f ms, past "
		      "every deadline and event plus %lld ms: lost wake-up "
		      "[%s]", i, (double)(now - bs) / CTX_MSEC,
		      (long long)(tol() / CTX_MSEC), what);
		return true;
	}
	return false;
}

START_TEST(test_soak)
{
	static struct worker ws[MAX_WORKERS]; /* outlives a stuck worker */
	struct rng r;
	int secs = soak_seconds();
	bool stuck = false;

	reset_failures();
	pick_seed();
	r.s = stress_seed;
	stress_time_div = soak_scale();
	nworkers = soak_workers();
	atomic_store(&soak_stop, false);
	for (int i = 0; i < OP_COUNT; i++) {
		atomic_store(&soak_ops[i], 0);
		atomic_store(&soak_ns[i], 0);
	}
	tu_start_services();
	int fds = tu_count_fds(), threads = tu_count_threads();

	epoch_rotate(&r, false);
	memset(ws, 0, sizeof(ws));
	for (int i = 0; i < nworkers; i++) {
		ws[i].idx = i;
		pthread_mutex_init(&ws[i].what_mu, NULL);
		worker_start(&ws[i]);
	}
	int64_t end = ctx_now() + secs * CTX_SEC, next = 0;
	while (ctx_now() < end && !stress_failing()) {
		tu_sleep_ns(CTX_MSEC);
		if (ctx_now() >= next) {
			epoch_rotate(&r, false);
			next = ctx_now() + rus(&r, 100000);
		}
		for (int i = 0; i < nworkers; i++)
			if (atomic_load(&ws[i].exited)) {
				pthread_join(ws[i].th, NULL);
				worker_start(&ws[i]);
			}
		if ((stuck = watchdog(ws)))
			break;
	}
	atomic_store(&soak_stop, true);
	for (bool all = false; !all && !stuck;) {
		all = true;
		for (int i = 0; i < nworkers; i++)
			all &= atomic_load(&ws[i].exited);
		if (!all) {
			tu_sleep_ns(CTX_MSEC);
			stuck = watchdog(ws);
		}
	}
	stress_time_div = 1; /* the other tests keep their own scale */
	if (stuck)
		assert_no_failure(); /* a stuck worker cannot be joined */
	for (int i = 0; i < nworkers; i++) {
		pthread_join(ws[i].th, NULL);
		pthread_mutex_destroy(&ws[i].what_mu);
	}
	epoch_rotate(&r, true);

	/* Stopped after-funcs never ran, even now. */
	tu_sleep_ns(20 * CTX_MSEC);
	pthread_mutex_lock(&soak_grave_mu);
	struct aft *g = soak_graveyard;
	soak_graveyard = NULL;
	pthread_mutex_unlock(&soak_grave_mu);
	int ran = 0;
	for (struct aft *next_a; g; g = next_a) {
		next_a = g->next;
		ran += atomic_load(&g->ran) != 0;
		free(g);
	}
	ck_assert_msg(ran == 0, "%d after-funcs ran after ctx_after_stop "
		      "returned true (seed %llu)", ran, stress_seed);
	assert_no_failure();

	long total = 0;
	for (int i = 0; i < OP_COUNT; i++)
		total += atomic_load(&soak_ops[i]);
	if (getenv("STRESS_VERBOSE")) {
		fprintf(stderr, "stress: soak %d s, seed %llu, %ld operations:",
			secs, stress_seed, total);
		for (int i = 0; i < OP_COUNT; i++) {
			long n = atomic_load(&soak_ops[i]);
			fprintf(stderr, " %s %ld (%.2f ms)", op_names[i], n,
				n ? (double)atomic_load(&soak_ns[i]) / n /
				    CTX_MSEC : 0.0);
		}
		fprintf(stderr, "; %.0f operations/s, time scale 1/%u\n",
			(double)total / secs, soak_scale());
	}
	ck_assert_int_gt(total, 0);
	int tn = tu_settle_threads(threads, 5 * CTX_SEC);
	ck_assert_msg(tn == threads, "%d threads after the soak, %d before "
		      "(seed %llu)", tn, threads, stress_seed);
	int fn = tu_settle_fds(fds, 2 * CTX_SEC);
	ck_assert_msg(fn == fds, "%d descriptors after the soak, %d before "
		      "(seed %llu)", fn, fds, stress_seed);
}
END_TEST

void add_stress_soak(Suite *s)
{
	TCase *tc = tu_tcase(s, "soak", soak_seconds() + 60);

	tcase_add_test(tc, test_soak);
}
