/*
 * The sequence suite's helpers and steps (see sequence.c): the peer and
 * the canceller that act on the other side of each call, the plan of a
 * step's context and its description, and the model's checks of a call
 * that returned.
 */
#include "sequence.h"

/* ---- the helpers --------------------------------------------------------- */

static struct chanm *chan_of(struct worker *w, struct action *a)
{
	return &w->ch[a->s];
}

static void h_write(struct helper *h, struct action *a)
{
	struct stream *st = &h->w->st[a->s];

	seq_fill(st, h->buf, (size_t)a->n);
	a->rc = ctx_write(h->pctx, st->wr, h->buf, (size_t)a->n);
	if (a->rc > 0) {
		st->w += (uint64_t)a->rc;
		a->t1 = ctx_now();
	}
}

static void h_drain(struct helper *h, struct action *a)
{
	struct stream *st = &h->w->st[a->s];

	while (st->r < (uint64_t)a->n) {
		size_t want = (size_t)((uint64_t)a->n - st->r);
		ssize_t n = ctx_read(h->pctx, st->rd, h->buf,
				     want < MAX_XFER ? want : MAX_XFER);
		atomic_fetch_add(&h->w->helper_calls, 1);
		if (n <= 0) {
			a->rc = n;
			return;
		}
		seq_take(h->w, st, h->buf, n, "the peer");
	}
	a->t1 = ctx_now();
}

static void h_send(struct helper *h, struct action *a)
{
	struct chanm *m = chan_of(h->w, a);
	uint64_t v = m->sent;

	a->rc = ctx_chan_send(h->pctx, m->ch, &v);
	if (a->rc == 0) {
		m->sent++;
		a->t1 = ctx_now();
	}
}

static void h_recv(struct helper *h, struct action *a)
{
	struct chanm *m = chan_of(h->w, a);

	while (m->got < (uint64_t)a->n) {
		uint64_t v = UINT64_MAX;

		a->rc = ctx_chan_recv(h->pctx, m->ch, &v);
		atomic_fetch_add(&h->w->helper_calls, 1);
		if (a->rc)
			return;
		expect(h->w, v == m->got, "the peer received %llu from a "
		       "channel, expected %llu", (unsigned long long)v,
		       (unsigned long long)m->got);
		m->got++;
	}
	a->t1 = ctx_now();
}

static void h_signal(struct helper *h, struct action *a)
{
	struct worker *w = h->w;

	pthread_mutex_lock(&w->mu);
	w->pred++;
	if (a->n)
		ctx_cond_broadcast(&w->cond);
	else
		ctx_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
	a->t1 = ctx_now();
}

static void h_fifo_writer(struct helper *h, struct action *a)
{
	struct worker *w = h->w;
	int fd = a->n2 ? open(w->fifo_path, O_WRONLY | O_CLOEXEC)
		       : ctx_open(h->pctx, w->fifo_path, O_WRONLY | O_CLOEXEC);

	a->rc = -1;
	if (fd < 0)
		return;
	a->t1 = ctx_now();
	seq_fill(&w->fifo, h->buf, (size_t)a->n);
	a->rc = ctx_write(h->pctx, fd, h->buf, (size_t)a->n);
	a->t2 = ctx_now();
	w->fifo.w += a->rc > 0 ? (uint64_t)a->rc : 0;
	close(fd);
}

static void h_fifo_reader(struct helper *h, struct action *a)
{
	struct worker *w = h->w;
	int fd = ctx_open(h->pctx, w->fifo_path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	a->rc = -1;
	if (fd < 0)
		return;
	a->t1 = ctx_now();
	while ((n = ctx_read(h->pctx, fd, h->buf, MAX_XFER)) > 0)
		seq_take(w, &w->fifo, h->buf, n, "the FIFO's reader");
	a->rc = n;
	close(fd);
}

static void act(struct helper *h, struct action *a)
{
	switch (a->kind) {
	case A_WRITE: h_write(h, a); break;
	case A_DRAIN: h_drain(h, a); break;
	case A_CANCEL:
		ctx_cancel(a->victim);
		a->t1 = ctx_now();
		break;
	case A_SEND: h_send(h, a); break;
	case A_RECV: h_recv(h, a); break;
	case A_CLOSE:
		chan_of(h->w, a)->closed = true;
		ctx_chan_close(chan_of(h->w, a)->ch);
		a->t1 = ctx_now();
		break;
	case A_SIGNAL: h_signal(h, a); break;
	case A_RELEASE:
		ctx_sem_release(h->w->sem, a->n);
		a->t1 = ctx_now();
		break;
	case A_FIFO_W: h_fifo_writer(h, a); break;
	case A_FIFO_R: h_fifo_reader(h, a); break;
	}
	atomic_fetch_add(&h->w->helper_calls, 1);
}

/* The actions in time order, each at its time, until the step ends the
 * helper's context. */
static void run_job(struct helper *h)
{
	for (int i = 0; i < h->n; i++) {
		struct action *a = &h->a[i];

		if (ctx_sleep_until(h->pctx, a->at) != 0)
			return;
		a->t0 = ctx_now();
		act(h, a);
	}
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->posted && !h->quit)
			pthread_cond_wait(&h->cv, &h->mu);
		if (!h->posted)
			break;
		pthread_mutex_unlock(&h->mu);
		run_job(h);
		pthread_mutex_lock(&h->mu);
		h->posted = false;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

void seq_helper_start(struct worker *w, struct helper *h)
{
	h->w = w;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	ck_assert_int_eq(pthread_create(&h->th, NULL, helper_main, h), 0);
}

void seq_helper_stop(struct helper *h)
{
	pthread_mutex_lock(&h->mu);
	h->quit = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->th, NULL);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
}

/* An action `at` after the step's start, kept in time order; its index. */
int seq_add(struct helper *h, int kind, int s, long n, int64_t at)
{
	int i = h->n++;

	need(h->w, h->n <= MAX_ACTS);
	while (i > 0 && h->a[i - 1].at > at) {
		h->a[i] = h->a[i - 1];
		i--;
	}
	h->a[i] = (struct action){ .kind = kind, .s = s, .n = n, .at = at };
	return i;
}

struct action *seq_find(struct helper *h, int kind)
{
	for (int i = 0; i < h->n; i++)
		if (h->a[i].kind == kind)
			return &h->a[i];
	return NULL;
}

static void post(struct helper *h, int64_t base)
{
	for (int i = 0; i < h->n; i++)
		h->a[i].at += base;
	h->pctx = ctx_with_cancel(ctx_background());
	need(h->w, h->pctx);
	pthread_mutex_lock(&h->mu);
	h->posted = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* Until the helper has done its job; with cancel, its waits end now. */
static void finish(struct helper *h, bool cancel)
{
	if (cancel)
		ctx_cancel(h->pctx);
	pthread_mutex_lock(&h->mu);
	while (h->posted)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
	ctx_release(h->pctx);
	h->pctx = NULL;
}

/* ---- a step: its context, its description, its checks -------------------- */

/* One action in words, at the end of buf. */
static void describe_act(struct worker *w, struct action *a, char *buf,
			 size_t len)
{
	size_t l = strlen(buf);

	switch (a->kind) {
	case A_WRITE:
	case A_DRAIN:
		snprintf(buf + l, len - l, " %ld (%s)", a->n, w->st[a->s].name);
		break;
	case A_FIFO_W:
		snprintf(buf + l, len - l, " %ld%s", a->n,
			 a->n2 ? " with open(2)" : "");
		break;
	case A_RECV:
		snprintf(buf + l, len - l, " %ld (ch%d)", a->n, a->s);
		break;
	case A_SEND:
	case A_CLOSE:
		snprintf(buf + l, len - l, " (ch%d)", a->s);
		break;
	case A_RELEASE:
		snprintf(buf + l, len - l, " %ld", a->n);
		break;
	}
	l = strlen(buf);
	snprintf(buf + l, len - l, " at %.2f ms", (double)a->at / CTX_MSEC);
}

static void describe_acts(struct worker *w, struct helper *h, char *buf,
			  size_t len)
{
	for (int i = 0; i < h->n; i++) {
		size_t l = strlen(buf);

		snprintf(buf + l, len - l, "%s %s", l ? ";" : "",
			 act_names[h->a[i].kind]);
		describe_act(w, &h->a[i], buf, len);
	}
}

static const char *const how_names[E_COUNT] = {
	"background", "cancel", "timeout", "timeout+cancel", "done before",
	"timeout under a parent that is cancelled",
};

/* The step's call in words, with its context and the helpers' plan. */
__attribute__((format(printf, 2, 3)))
void seq_describe(struct worker *w, const char *fmt, ...)
{
	char d[160], acts[240] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, sizeof(d), fmt, ap);
	va_end(ap);
	describe_acts(w, &w->peer, acts, sizeof(acts));
	describe_acts(w, &w->canceller, acts, sizeof(acts));
	char how[64];
	if (w->s.how == E_PRE)
		snprintf(how, sizeof(how), "done before (%s)",
			 w->step % 2 ? "deadline 0" : "cancelled");
	else if (w->s.timeout || w->s.how == E_TIMEOUT ||
		 w->s.how == E_BOTH || w->s.how == E_CHAIN)
		snprintf(how, sizeof(how), "%s %.2f ms", how_names[w->s.how],
			 (double)w->s.timeout / CTX_MSEC);
	else
		snprintf(how, sizeof(how), "%s", how_names[w->s.how]);
	pthread_mutex_lock(&w->what_mu);
	snprintf(w->hist[w->step % HIST], DESC, "%s; context %s; call after "
		 "%.2f ms;%s", d, how, (double)w->s.delay / CTX_MSEC,
		 acts[0] ? acts : " no helper");
	pthread_mutex_unlock(&w->what_mu);
}

/*
 * Choose how the call's context ends.  Returns whether it can end the
 * call: if not, and the call has no timeout of its own, the caller must
 * plan something that completes it.
 */
bool seq_plan_ctx(struct worker *w)
{
	static const int weight[E_COUNT] = { 3, 2, 4, 2, 1, 1 };
	struct step *s = &w->s;
	int k = (int)pick(w, 13);

	s->how = 0;
	while (k >= weight[s->how])
		k -= weight[s->how++];
	s->timeout = pick_time(w);
	s->delay = chance(w, 30) ? pick_time(w) / 8 : 0;
	int64_t at = pick_time(w);
	if (s->how == E_CANCEL || s->how == E_BOTH || s->how == E_CHAIN)
		seq_add(&w->canceller, A_CANCEL, 0, 0, at);
	if (s->how != E_TIMEOUT && s->how != E_BOTH && s->how != E_CHAIN)
		s->timeout = 0;
	return s->how != E_NONE;
}

void seq_make_ctx(struct worker *w)
{
	struct step *s = &w->s;
	ctx_t *bg = ctx_background();
	int64_t dl;

	s->parent = NULL;
	s->pre = false;
	switch (s->how) {
	case E_NONE: s->ctx = bg; break;
	case E_CANCEL: s->ctx = ctx_with_cancel(bg); break;
	case E_TIMEOUT:
	case E_BOTH: s->ctx = ctx_with_timeout(bg, s->timeout); break;
	case E_PRE:
		s->pre = w->step % 2 == 0;
		s->ctx = ctx_with_timeout(bg, s->pre ? CTX_SEC : 0);
		if (s->pre)
			ctx_cancel(s->ctx);
		break;
	case E_CHAIN:
		s->parent = ctx_with_cancel(bg);
		need(w, s->parent);
		s->ctx = ctx_with_timeout(s->parent, s->timeout);
		break;
	}
	need(w, s->ctx);
	s->dl = ctx_deadline(s->ctx, &dl) ? dl : NEVER;
	struct action *c = seq_find(&w->canceller, A_CANCEL);
	if (c)
		c->victim = s->parent ? s->parent : s->ctx;
}

/* Start the helpers, wait the planned delay: the call comes next. */
void seq_go(struct worker *w, const char *call)
{
	struct step *s = &w->s;

	s->call = call;
	s->base = ctx_now();
	post(&w->peer, s->base);
	post(&w->canceller, s->base);
	if (s->delay)
		tu_sleep_ns(s->delay);
	atomic_store(&w->must_end, ctx_now() + seq_tol +
			STUCK_MS * CTX_MSEC * scale());
	atomic_store(&w->in_call, true);
	s->t0 = ctx_now();
}

void seq_returned(struct worker *w)
{
	w->s.t1 = ctx_now();
	atomic_store(&w->in_call, false);
}

/* Both helpers done: the peer's waits end now (with_peer_cancel) or
 * once it has done all it was to do. */
void seq_end_helpers(struct worker *w, bool peer_cancel)
{
	finish(&w->canceller, true);
	finish(&w->peer, peer_cancel);
	atomic_store(&w->must_end, 0);
}

int64_t seq_cancel_t(struct worker *w, bool began)
{
	struct action *c = seq_find(&w->canceller, A_CANCEL);
	int64_t t = c ? (began ? c->t0 : c->t1) : 0;

	return t ? t : NEVER;
}

/* Whether the context was done before the call began: a success then is
 * wrong (a done context refuses every wait). */
bool seq_done_before(struct worker *w)
{
	struct step *s = &w->s;

	return s->pre || s->dl <= s->t0 || seq_cancel_t(w, false) <= s->t0;
}

/* Whether the context could have ended the call by the time it returned. */
bool seq_could_end(struct worker *w)
{
	struct step *s = &w->s;

	return s->pre || s->dl <= s->t1 || seq_cancel_t(w, true) <= s->t1;
}

/* The call returned no later than TOL after the first thing that let it
 * (a call that nothing could end would be found by the watchdog). */
void seq_check_late(struct worker *w)
{
	struct step *s = &w->s;
	int64_t by = min64(min64(s->ready, s->own),
			   min64(s->dl, seq_cancel_t(w, false)));

	if (s->untimed)
		return;
	if (s->pre)
		by = s->t0;
	if (by == NEVER)
		return; /* it completed on its own: the kernel had room */
	expect(w, s->t1 - by <= seq_tol, "%s returned %.1f ms after it could "
	       "(ready at %.2f ms, its own timeout %.2f, deadline %.2f, "
	       "cancel %.2f; returned at %.2f)", s->call,
	       (double)(s->t1 - by) / CTX_MSEC, rel_ms(w, s->ready),
	       rel_ms(w, s->own), rel_ms(w, s->dl),
	       rel_ms(w, seq_cancel_t(w, false)), rel_ms(w, s->t1));
}

/* A call's error: the context's, and only once it could have ended. */
void seq_check_err(struct worker *w, int err)
{
	struct step *s = &w->s;

	if (err == CTX_DEADLINE_EXCEEDED && s->dl == NEVER)
		seq_failf(w, "%s failed with ETIMEDOUT under a context with no "
		      "deadline", s->call);
	else if (err == CTX_DEADLINE_EXCEEDED)
		expect(w, s->dl <= s->t1, "%s failed with ETIMEDOUT %.2f ms "
		       "before its deadline", s->call,
		       (double)(s->dl - s->t1) / CTX_MSEC);
	else if (err == CTX_CANCELED)
		expect(w, s->pre || seq_cancel_t(w, true) <= s->t1, "%s failed "
		       "with ECANCELED but nothing cancelled its context",
		       s->call);
	else
		seq_failf(w, "%s failed with %d (%s)", s->call, err,
		      strerror(err));
}

/* A call that returns 0 or an error: its result and its timing. */
void seq_check_end(struct worker *w, int err)
{
	seq_check_late(w);
	if (err)
		seq_check_err(w, err);
	else
		expect(w, !seq_done_before(w), "%s succeeded although its "
		       "context was done before the call", w->s.call);
}

void seq_release_ctx(struct worker *w)
{
	ctx_release(w->s.ctx);
	ctx_release(w->s.parent);
	w->s.ctx = w->s.parent = NULL;
}

/* When an action (NULL: none planned) had done what it is for, and when
 * it began; NEVER if it did not. */
int64_t seq_done_at(struct action *a)
{
	return a && a->t1 ? a->t1 : NEVER;
}

int64_t seq_began_at(struct action *a)
{
	return a && a->t0 ? a->t0 : NEVER;
}
