/*
 * The contract test: every blocking call of the API, through every
 * situation it can meet, checked against the one contract they share
 * (ctx.h, "Cancellable waits"):
 *
 *  done      a context already done (cancelled, cancelled with a cause,
 *            expired, or below a cancelled one) refuses at once with its
 *            error, even though what the call waits for is there, and
 *            takes none of it;
 *  cancel    a cancel from another thread while the call waits ends it
 *            with CTX_CANCELED soon after, not before;
 *  deadline  the context's deadline ends it with CTX_DEADLINE_EXCEEDED,
 *            never before the deadline;
 *  ready     with what it waits for there, the call returns what the
 *            plain call would;
 *  later     what it waits for comes while it waits: the same result,
 *            when it came;
 *  partial   a transfer that moved bytes before its context ended
 *            returns that count, and exactly those bytes moved;
 *  storm     with a handler installed without SA_RESTART and a thread
 *            signalling the caller every millisecond, so that every
 *            system call of the wait fails with EINTR over and over,
 *            the deadline still ends the wait, on time, never EINTR.
 *
 * After an end or a refusal the row checks that nothing was taken: the
 * data, the element, the child, the signal, the lock, the connection is
 * still there for the next plain call.  Each situation is a test case
 * whose loop index is a row of those it applies to (a call that never
 * waits has no cancel; every message names the row).  Rows are in tests/contract/.
 * CTX_CONTRACT_ROWS=1 lists each situation's rows by loop index.
 * The whole runner runs again on io_uring (tests/uring.sh), so every row
 * is tested on both backends.  Tolerances are generous: the machines
 * that run this are shared and loaded.
 */
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>

#include "contract.h"
#include "suites.h"
#include "wait/storm.h"

#define AT_ONCE_MS 500 /* the four refusals of CT_DONE, together */
#define STUCK_MS 3000  /* a partial transfer this late past its end */
#define PARTIAL_MAX_MS (CT_SHORT_MS * 256)
#define MAX_ROWS 256

static const char key[] = "contract";
/* The rows each situation applies to, in table order. */
static const struct ct_row *rows[CT_NSITUATIONS][MAX_ROWS];
static int nrows[CT_NSITUATIONS];

/* How late "promptly" may be: valgrind runs everything far slower. */
static double late_ms(void)
{
	return (tu_valgrind() ? 10 : 1) * CT_LATE_MS;
}

/* ---- one row's run ---------------------------------------------------- */

struct run {
	const struct ct_row *row;
	void *st;
	bool readied;
};

/* What a call returned, with errno, and how long it took. */
struct outcome {
	long rc;
	int err;
	double ms;
};

/* Whether row i of situation s cannot run here (CT_FORKS under
 * valgrind); it says so on stderr. */
static bool skipped(enum ct_situation s, int i)
{
	const struct ct_row *row = rows[s][i];
	if (!(row->flags & CT_FORKS) || !tu_valgrind())
		return false;
	fprintf(stderr, "contract: %s skipped under valgrind (a forked "
		"helper's exit status is valgrind's)\n", row->name);
	return true;
}

static void run_begin(struct run *r, enum ct_situation s, int i)
{
	r->row = rows[s][i];
	r->st = calloc(1, r->row->size ? r->row->size : 1);
	r->readied = false;
	ck_assert_ptr_nonnull(r->st);
	r->row->setup(r->st, r->row->arg);
}

static void run_ready(struct run *r)
{
	if (r->readied)
		return;
	int e = r->row->ready(r->st);
	ck_assert_msg(e == 0, "%s: making it ready: %s", r->row->name,
		      strerror(e));
	r->readied = true;
}

static void run_end(struct run *r)
{
	r->row->teardown(r->st);
	free(r->st);
}

static struct outcome run_call(struct run *r, ctx_t *c, int64_t t0)
{
	struct outcome o;

	errno = 0;
	o.rc = r->row->call(c, r->st);
	o.err = errno;
	o.ms = tu_ms_since(t0);
	return o;
}

/* The call failed with the context's error e, by its style. */
static bool failed_with(const struct ct_row *row, struct outcome o, int e)
{
	switch (row->style) {
	case CT_ERRNO:
		return o.rc == -1 && o.err == e;
	case CT_EAI:
		return o.rc == EAI_SYSTEM && o.err == e;
	default:
		return o.rc == e;
	}
}

/* The call took ms in [lo, hi). */
#define assert_took(r, ms, lo, hi)                                          \
	ck_assert_msg((ms) >= (lo) && (ms) < (hi), "%s: took %.1f ms, "     \
		      "expected at least %g and under %g", (r)->row->name,  \
		      (double)(ms), (double)(lo), (double)(hi))

#define assert_failed(r, o, e, when)                                        \
	ck_assert_msg(failed_with((r)->row, (o), (e)), "%s, %s: returned "  \
		      "%ld (errno %d, %s) after %.0f ms; expected %s",      \
		      (r)->row->name, (when), (o).rc, (o).err,              \
		      strerror((o).err), (o).ms, ctx_strerror(e))

/* ---- done: refused at once --------------------------------------------- */

START_TEST(test_done)
{
	struct run r;
	if (skipped(CT_DONE, _i))
		return;
	ctx_t *cancelled = ctx_with_cancel(ctx_background());
	ctx_t *caused = ctx_with_cancel(ctx_background());
	ctx_t *expired = ctx_with_timeout(ctx_background(), 0);
	ctx_t *below = ctx_with_value(cancelled, key, NULL);
	struct { ctx_t *c; int err; const char *what; } done[] = {
		{ cancelled, CTX_CANCELED, "cancelled" },
		{ caused, CTX_CANCELED, "cancelled with a cause" },
		{ expired, CTX_DEADLINE_EXCEEDED, "expired" },
		{ below, CTX_CANCELED, "below a cancelled context" },
	};
	if (skipped(CT_DONE, _i))
		return;

	ctx_cancel(cancelled);
	ctx_cancel_cause(caused, EPIPE); /* the error comes back, not this */
	run_begin(&r, CT_DONE, _i);
	if (!(r.row->flags & CT_DONE_WAITING)) {
		run_ready(&r);
		if (r.row->settle)
			r.row->settle(r.st);
	}
	int64_t t0 = ctx_now();
	for (size_t k = 0; k < sizeof(done) / sizeof(done[0]); k++) {
		struct outcome o = run_call(&r, done[k].c, t0);
		assert_failed(&r, o, done[k].err, done[k].what);
	}
	assert_took(&r, tu_ms_since(t0), 0, AT_ONCE_MS);
	run_ready(&r);
	r.row->kept(r.st);
	run_end(&r);
	for (size_t k = 0; k < sizeof(done) / sizeof(done[0]); k++)
		ctx_release(done[k].c);
}
END_TEST

/* ---- cancel, deadline: ended while waiting ----------------------------- */

START_TEST(test_cancel)
{
	struct run r;
	struct tu_canceller k;
	if (skipped(CT_CANCEL, _i))
		return;

	ctx_t *c = ctx_with_cancel(ctx_background());
	run_begin(&r, CT_CANCEL, _i);
	int64_t t0 = ctx_now();
	tu_must_cancel_after(&k, c, CT_SHORT);
	struct outcome o = run_call(&r, c, t0);
	tu_canceller_join(&k);
	assert_failed(&r, o, CTX_CANCELED, "cancelled while waiting");
	assert_took(&r, o.ms, CT_SHORT_MS * 0.8, late_ms());
	run_ready(&r);
	r.row->kept(r.st);
	run_end(&r);
	ctx_release(c);
}
END_TEST

/* Never before the deadline: it is measured from before the context. */
START_TEST(test_deadline)
{
	struct run r;
	if (skipped(CT_DEADLINE, _i))
		return;

	run_begin(&r, CT_DEADLINE, _i);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), CT_SHORT);
	struct outcome o = run_call(&r, c, t0);
	assert_failed(&r, o, CTX_DEADLINE_EXCEEDED, "at its deadline");
	assert_took(&r, o.ms, CT_SHORT_MS, late_ms());
	ck_assert_int_eq(ctx_err(c), CTX_DEADLINE_EXCEEDED);
	run_ready(&r);
	r.row->kept(r.st);
	run_end(&r);
	ctx_release(c);
}
END_TEST

/* ---- ready, later: completed -------------------------------------------- */

START_TEST(test_ready)
{
	struct run r;
	if (skipped(CT_READY, _i))
		return;

	ctx_t *c = ctx_with_timeout(ctx_background(), CT_BOUND);
	run_begin(&r, CT_READY, _i);
	run_ready(&r);
	int64_t t0 = ctx_now();
	struct outcome o = run_call(&r, c, t0);
	ck_assert_msg(!failed_with(r.row, o, CTX_DEADLINE_EXCEEDED),
		      "%s: waited for its deadline though ready", r.row->name);
	assert_took(&r, o.ms, 0, late_ms());
	errno = o.err;
	r.row->check(r.st, o.rc);
	run_end(&r);
	ctx_release(c);
}
END_TEST

/* Makes the row ready after a delay, on a thread of its own. */
struct helper {
	pthread_t thread;
	struct run *run;
	int err;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;

	tu_sleep_ns(CT_SHORT);
	h->err = h->run->row->ready(h->run->st);
	return NULL;
}

START_TEST(test_later)
{
	struct run r;
	struct helper h = { .run = &r };
	if (skipped(CT_LATER, _i))
		return;

	ctx_t *c = ctx_with_timeout(ctx_background(), CT_BOUND);
	run_begin(&r, CT_LATER, _i);
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_create(&h.thread, NULL, helper_main, &h), 0);
	struct outcome o = run_call(&r, c, t0);
	ck_assert_int_eq(pthread_join(h.thread, NULL), 0);
	r.readied = true;
	ck_assert_msg(h.err == 0, "%s: making it ready: %s", r.row->name,
		      strerror(h.err));
	ck_assert_msg(!failed_with(r.row, o, CTX_DEADLINE_EXCEEDED),
		      "%s: what came did not end the wait", r.row->name);
	assert_took(&r, o.ms, CT_SHORT_MS * 0.8, late_ms());
	errno = o.err;
	r.row->check(r.st, o.rc);
	run_end(&r);
	ctx_release(c);
}
END_TEST

/* ---- partial: a transfer's count ----------------------------------------- */

/* The call on a worker, under a deadline of ms from just before the
 * call: a transfer stuck in the kernel fails the test instead of
 * hanging it, also under CK_FORK=no. */
struct worker {
	pthread_t thread;
	struct run *run;
	int64_t timeout;
	atomic_bool done;
	struct outcome o;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), w->timeout);

	w->o = run_call(w->run, c, t0);
	ctx_release(c);
	atomic_store(&w->done, true);
	return NULL;
}

/* One try with a deadline of ms; the call must end within STUCK_MS of
 * it, or the row unsticks it and the test fails. */
static struct outcome partial_try(struct run *r, int ms)
{
	struct worker w = { .run = r, .timeout = ms * CTX_MSEC };
	int64_t t0 = ctx_now();

	atomic_init(&w.done, false);
	ck_assert_int_eq(pthread_create(&w.thread, NULL, worker_main, &w), 0);
	while (!atomic_load(&w.done) && tu_ms_since(t0) < ms + STUCK_MS)
		tu_sleep_ns(CTX_MSEC);
	bool in_time = atomic_load(&w.done);
	while (!atomic_load(&w.done))
		r->row->unstick(r->st);
	ck_assert_int_eq(pthread_join(w.thread, NULL), 0);
	ck_assert_msg(in_time, "%s: still waiting %d ms after its %d ms "
		      "deadline", r->row->name, STUCK_MS, ms);
	return w.o;
}

/*
 * On a loaded machine the worker may not reach the call before a short
 * deadline: a call that moved nothing must then have failed with the
 * deadline and moved nothing, and is tried again with a deadline four
 * times longer, up to PARTIAL_MAX_MS.
 */
START_TEST(test_partial)
{
	struct run r;
	struct outcome o;
	int ms = CT_SHORT_MS;
	if (skipped(CT_PARTIAL, _i))
		return;

	run_begin(&r, CT_PARTIAL, _i);
	r.row->partial(r.st);
	for (o = partial_try(&r, ms); o.rc <= 0 && ms < PARTIAL_MAX_MS;
	     o = partial_try(&r, ms)) {
		assert_failed(&r, o, CTX_DEADLINE_EXCEEDED, "moving nothing");
		r.row->moved(r.st, 0);
		ms *= 4;
	}
	ck_assert_msg(o.rc > 0, "%s: returned %ld (errno %d) with a %d ms "
		      "deadline", r.row->name, o.rc, o.err, ms);
	assert_took(&r, o.ms, ms, ms + late_ms());
	r.row->moved(r.st, o.rc);
	run_end(&r);
}
END_TEST

/* ---- storm: the deadline under a storm of signals --------------------------- */

#define STORM_MS 40
/* Rounds of the row until the storm's thread got to signal the caller
 * during its wait: on a loaded 2-CPU machine it ran 3 times, and once
 * not at all, in the 40 ms. */
#define STORM_ROUNDS 5

/* One round: the call under the storm, its deadline asserted; the
 * number of times the handler ran. */
static int storm_round(int i, const char **name)
{
	struct run r;
	struct storm storm;

	run_begin(&r, CT_STORM, i);
	*name = r.row->name;
	storm_start(&storm);
	int64_t t0 = ctx_now();
	ctx_t *c = ctx_with_timeout(ctx_background(), STORM_MS * CTX_MSEC);
	struct outcome o = run_call(&r, c, t0);
	int hits = storm_stop(&storm);
	assert_failed(&r, o, CTX_DEADLINE_EXCEEDED, "at its deadline, stormed");
	assert_took(&r, o.ms, STORM_MS, STORM_MS + late_ms());
	run_ready(&r);
	r.row->kept(r.st);
	run_end(&r);
	ctx_release(c);
	return hits;
}

START_TEST(test_storm)
{
	const char *name = "";
	int hits = 0;
	if (skipped(CT_STORM, _i))
		return;

	for (int round = 0; round < STORM_ROUNDS && hits == 0; round++)
		hits = storm_round(_i, &name);
	/* Valgrind runs one thread at a time: there the storm's thread may
	 * not get to run, and its count says nothing. */
	if (!tu_valgrind())
		ck_assert_msg(hits > 0, "%s: no signal reached the call in "
			      "%d rounds", name, STORM_ROUNDS);
}
END_TEST

/* ---- the suite ------------------------------------------------------------ */

static void add_rows(const struct ct_row *table)
{
	for (; table->name; table++)
		for (int s = 0; s < CT_NSITUATIONS; s++) {
			if (table->flags & CT_NOT(s))
				continue;
			if (nrows[s] == MAX_ROWS) {
				fprintf(stderr, "contract: more than %d rows\n",
					MAX_ROWS);
				abort();
			}
			rows[s][nrows[s]++] = table;
		}
}

Suite *suite_contract(void)
{
	const struct {
		const char *name;
		const TTest *test; /* for situation i */
	} cases[CT_NSITUATIONS] = {
		{ "done", test_done }, { "cancel", test_cancel },
		{ "deadline", test_deadline }, { "ready", test_ready },
		{ "later", test_later }, { "partial", test_partial },
		{ "storm", test_storm },
	};
	Suite *s = suite_create("contract");

	memset(nrows, 0, sizeof(nrows));
	add_rows(ct_rows_io);
	add_rows(ct_rows_stream);
	add_rows(ct_rows_socket);
	add_rows(ct_rows_files);
	add_rows(ct_rows_sync);
	add_rows(ct_rows_proc);
	add_rows(ct_rows_net);
	for (int i = 0; i < CT_NSITUATIONS; i++) {
		TCase *tc = tu_tcase(s, cases[i].name, 60);
		if (getenv("CTX_CONTRACT_ROWS"))
			for (int r = 0; r < nrows[i]; r++)
				printf("contract: %s:%d: %s\n", cases[i].name,
				       r, rows[i][r]->name);
		tcase_add_loop_test(tc, cases[i].test, 0, nrows[i]);
	}
	return s;
}
