/*
 * Descriptors shared: several readers of one descriptor, a cancel racing
 * the data, the writer's close, one number reused as another file, and
 * a write after a select (issue 21).  Readers stuck in the kernel are fed
 * until they return, so that a failure cannot hang the test.
 * CTX_TEST_QUICK=1 (for valgrind) runs the races for fewer rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pair.h"
#include "suites.h"

#define HOUR (3600 * CTX_SEC)
#define BOUND (5 * CTX_SEC)     /* a deadline no correct call reaches: one
				 * that waits for what never comes fails
				 * instead of hanging the test */
#define SHORT_MS 30             /* when a helper acts, or a deadline falls */
#define SHORT (SHORT_MS * CTX_MSEC)
#define STUCK_MS 3000           /* a call this late past its end is stuck */

/* Closes fd after a delay. */
struct closer {
	pthread_t thread;
	int fd;
};

static void *closer_main(void *arg)
{
	struct closer *k = arg;

	tu_sleep_ns(SHORT);
	close(k->fd);
	return NULL;
}

/* The writer's close ends a waiting read with end of file (pipes; the
 * loop index makes the read end non-blocking). */
START_TEST(test_read_eof)
{
	struct closer k;
	char buf[16];
	int p[2];
	ctx_t *c = ctx_with_timeout(ctx_background(), BOUND);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	set_nonblock(p[0], _i);
	k.fd = p[1];
	int64_t t0 = ctx_now();
	ck_assert_int_eq(pthread_create(&k.thread, NULL, closer_main, &k), 0);
	ssize_t n = ctx_read(c, p[0], buf, sizeof(buf));
	double ms = tu_ms_since(t0);
	ck_assert_int_eq(pthread_join(k.thread, NULL), 0);
	ck_assert_int_eq(n, 0);
	tu_assert_ms(ms, SHORT_MS * 0.8, PAIR_LATE_MS);
	close(p[0]);
	ctx_release(c);
}
END_TEST

/*
 * The kinds several threads may read at once: all but a blocking pty
 * master.  That has no per-call non-blocking read and cannot be reopened
 * (opening /dev/ptmx makes a new terminal), so its readers wait for
 * readiness and then read, and one that loses the bytes to another
 * blocks in read(2): the documented limit (runtime/io.c, ctx_read(3)).
 */
static const int shared_kinds[] = {
	K_UNIX, K_UNIX_NB, K_TCP, K_TCP_NB, K_PIPE, K_PIPE_NB, K_FIFO,
	K_FIFO_NB, K_PTY, K_PTY_NB, K_PTM_NB, K_EVENTFD, K_EVENTFD_NB,
};
#define N_SHARED (int)(sizeof(shared_kinds) / sizeof(shared_kinds[0]))

#define READERS 4

struct reader {
	pthread_t thread;
	ctx_t *ctx;
	int fd;
	bool eventfd;
	ssize_t n;
	int err;
	char buf[MSG_LEN];
	atomic_int *finished;
	atomic_uint_fast64_t *got;  /* bytes, or an eventfd's values */
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t v = 0;

	r->n = ctx_read(r->ctx, r->fd, r->buf, sizeof(r->buf));
	r->err = errno;
	if (r->n > 0 && r->eventfd)
		memcpy(&v, r->buf, sizeof(v));
	else if (r->n > 0)
		v = (uint64_t)r->n;
	atomic_fetch_add(r->got, v);
	atomic_fetch_add(r->finished, 1);
	return NULL;
}

/* Until the readers have taken want in all, or STUCK_MS have passed. */
static void await_taken(atomic_uint_fast64_t *got, uint64_t want)
{
	int64_t t0 = ctx_now();

	while (atomic_load(got) < want && tu_ms_since(t0) < STUCK_MS)
		tu_sleep_ns(CTX_MSEC);
}

/*
 * READERS threads wait on one descriptor (a blocking one too: a reader
 * that loses the race for the data must go back to waiting, not block in
 * read(2)); two messages come, one after the other has been taken (on
 * a loaded machine a fixed pause may not be enough for a reader to
 * run, and a reader that wakes after the cancel rightly leaves the data
 * where it is); then the context is cancelled.  The messages reach the
 * readers whole, nothing is left over, and every other reader is
 * cancelled promptly.  Readers stuck in the kernel are fed until they
 * return, so that a failure cannot hang.
 */
START_TEST(test_shared_readers)
{
	struct pair p;
	struct reader r[READERS];
	uint64_t got = 0, want, one;
	int kind = shared_kinds[_i], stuck;
	atomic_int finished;
	atomic_uint_fast64_t taken;
	ctx_t *c = ctx_with_cancel(ctx_background());

	atomic_init(&finished, 0);
	atomic_init(&taken, 0);
	open_pair(&p, kind);
	for (int i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .ctx = c, .fd = p.rd,
					.eventfd = is_eventfd(kind),
					.finished = &finished, .got = &taken };
		ck_assert_int_eq(pthread_create(&r[i].thread, NULL, reader_main,
						&r[i]), 0);
	}
	/* An eventfd adds up what comes before a read: count its values. */
	memcpy(&one, msg, sizeof(one));
	one = is_eventfd(kind) ? one : MSG_LEN;
	tu_sleep_ns(SHORT); /* all waiting, most likely */
	put(p.feed, msg, MSG_LEN);
	await_taken(&taken, one);
	put(p.feed, msg, MSG_LEN);
	await_taken(&taken, 2 * one);
	ctx_cancel(c);
	int64_t t0 = ctx_now();
	while (atomic_load(&finished) < READERS && tu_ms_since(t0) < STUCK_MS)
		tu_sleep_ns(CTX_MSEC);
	stuck = READERS - atomic_load(&finished);
	for (int i = 0; i < stuck; i++)
		put(p.feed, msg, MSG_LEN);
	for (int i = 0; i < READERS; i++)
		ck_assert_int_eq(pthread_join(r[i].thread, NULL), 0);
	ck_assert_msg(stuck == 0, "%d readers of %s were still blocked %d ms "
		      "after the cancel", stuck, kind_name[kind], STUCK_MS);

	want = 2 * one;
	for (int i = 0; i < READERS; i++) {
		uint64_t v;

		if (r[i].n < 0) {
			ck_assert_msg(r[i].err == CTX_CANCELED, "reader %d: "
				      "errno %d", i, r[i].err);
			continue;
		}
		memcpy(&v, r[i].buf, sizeof(v));
		got += is_eventfd(kind) ? v : (uint64_t)r[i].n;
	}
	ck_assert_msg(got == want, "the readers of %s got %llu, expected "
		      "%llu", kind_name[kind], (unsigned long long)got,
		      (unsigned long long)want);
	ck_assert(!readable(p.rd, 0)); /* anything left came long ago */
	ctx_release(c);
	close_pair(&p);
}
END_TEST

/*
 * A cancellation and data that come at about the same time, many times
 * over, at varying offsets: whichever wins, nothing is lost.  Either the
 * read returns the message, or it fails and the message is still there.
 */
START_TEST(test_read_race)
{
	struct pair p;
	int kind = _i, rounds = tu_quick() ? 30 : 200;

	open_pair(&p, kind);
	for (int i = 0; i < rounds; i++) {
		struct tu_canceller k;
		struct tu_feeder f;
		char buf[16] = { 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());

		tu_must_cancel_after(&k, c, (i % 10) * 20 * CTX_USEC);
		tu_feed_after(&f, p.feed, msg, MSG_LEN,
			   (i * 7 % 10) * 20 * CTX_USEC);
		ssize_t n = ctx_read(c, p.rd, buf, sizeof(buf));
		int err = errno;
		tu_canceller_join(&k);
		tu_feeder_join(&f);
		if (n < 0) {
			ck_assert_msg(err == CTX_CANCELED, "round %d: errno %d",
				      i, err);
			ck_assert_int_eq(get_msg(p.rd, buf),
					 MSG_LEN);
		} else {
			ck_assert_msg(n == MSG_LEN, "round %d: %zd bytes", i,
				      n);
		}
		ck_assert_str_eq(buf, msg);
		ck_assert_msg(!readable(p.rd, 0), "round %d: data left", i);
		ctx_release(c);
	}
	close_pair(&p);
}
END_TEST

/* ---- descriptor numbers reused ---------------------------------------- */

/*
 * One descriptor number, in one thread, as a socket, then a pipe, then a
 * socket again, each first waited on and cancelled, then read when data
 * comes late: the library's per-thread memory of a number (socket or
 * not; registered with epoll or not) must never give a wrong answer.
 */
START_TEST(test_number_reuse)
{
	int num = -1;

	for (int round = 0; round < 4; round++) {
		struct pair p;
		struct tu_canceller k;
		struct tu_feeder f;
		char buf[16] = { 0 };
		ctx_t *c = ctx_with_cancel(ctx_background());
		ctx_t *d = ctx_with_timeout(ctx_background(), BOUND);

		open_pair(&p, round % 2 ? K_PIPE : K_UNIX);
		if (num < 0) {
			num = p.rd;
		} else if (p.rd != num) {
			ck_assert_int_ne(p.feed, num);
			ck_assert_int_eq(dup3(p.rd, num, O_CLOEXEC), num);
			close(p.rd);
			p.fd[0] = p.rd = num;
			if (round % 2 == 0)
				p.wr = num;
			else
				p.drain = num;
		}
		tu_must_cancel_after(&k, c, 10 * CTX_MSEC);
		tu_assert_fail(ctx_read(c, p.rd, buf, sizeof(buf)),
			       CTX_CANCELED);
		tu_canceller_join(&k);
		tu_feed_after(&f, p.feed, msg, MSG_LEN, 10 * CTX_MSEC);
		ck_assert_int_eq(ctx_read(d, p.rd, buf, sizeof(buf)), MSG_LEN);
		tu_feeder_join(&f);
		ck_assert_str_eq(buf, msg);
		ck_assert_int_eq(ctx_write(d, p.wr, msg, MSG_LEN), MSG_LEN);
		ck_assert_int_eq(get_msg(p.drain, buf),
				 MSG_LEN);
		ctx_release(d);
		ctx_release(c);
		close_pair(&p);
	}
}
END_TEST

/*
 * Issue 21: on io_uring, a ctx_write to a regular file never returned
 * once the thread had been woken out of a ctx_select with a timeout:
 * the ring's poll on the thread's wake-up eventfd, left armed by the
 * previous write, fired during the select's poll(2) too, and its
 * completion made the next write read the (already emptied) eventfd
 * through the ring and wait for that read.  Rounds of a select that a
 * sender wakes, then a write under a deadline: each write must move
 * its bytes, and end within its deadline plus STUCK_MS.
 */
#define SEAM_WRITE_MS 2000

struct seam {
	ctx_t *parent;          /* cancelled to unstick a failing worker */
	ctx_chan_t *ch;
	int fd;
	int rounds;
	_Atomic int64_t write_at; /* when the write in flight began, or 0 */
	atomic_bool done;
	int bad;                /* the first round that failed, or -1 */
	ssize_t n;
	int err;
	double ms;
};

static void *seam_sender(void *arg)
{
	struct seam *sm = arg;
	int v = 1;
	do
		tu_sleep_ns(CTX_MSEC);
	while (ctx_chan_send(sm->parent, sm->ch, &v) == 0);
	return NULL;
}

static void seam_round(struct seam *sm, int i)
{
	static const char block[4096];
	int v;
	struct ctx_case rc = { .kind = CTX_CASE_RECV, .ch = sm->ch,
			       .elem = &v };
	ctx_select(sm->parent, &rc, 1, 200 * CTX_MSEC);
	ctx_t *c = ctx_with_timeout(sm->parent, SEAM_WRITE_MS * CTX_MSEC);
	int64_t t0 = ctx_now();
	atomic_store(&sm->write_at, t0);
	ssize_t n = ctx_write(c, sm->fd, block, sizeof(block));
	int e = errno;
	atomic_store(&sm->write_at, 0);
	double ms = tu_ms_since(t0);
	ctx_release(c);
	if (sm->bad < 0 && (n != (ssize_t)sizeof(block) ||
			    ms > SEAM_WRITE_MS + STUCK_MS)) {
		sm->bad = i;
		sm->n = n;
		sm->err = e;
		sm->ms = ms;
	}
}

static void *seam_worker(void *arg)
{
	struct seam *sm = arg;
	for (int i = 0; i < sm->rounds && sm->bad < 0; i++)
		seam_round(sm, i);
	atomic_store(&sm->done, true);
	return NULL;
}

START_TEST(test_write_after_select)
{
	struct seam sm = { .ch = ctx_chan_new(sizeof(int), 0),
			   .parent = ctx_with_cancel(ctx_background()),
			   .fd = temp_file("", false),
			   .rounds = tu_quick() ? 50 : 300, .bad = -1 };
	pthread_t worker, sender;
	bool stuck = false;
	atomic_init(&sm.write_at, 0);
	atomic_init(&sm.done, false);
	ck_assert_ptr_nonnull(sm.ch);
	ck_assert_int_eq(pthread_create(&sender, NULL, seam_sender, &sm), 0);
	ck_assert_int_eq(pthread_create(&worker, NULL, seam_worker, &sm), 0);
	while (!atomic_load(&sm.done) && !stuck) {
		tu_sleep_ns(5 * CTX_MSEC);
		int64_t at = atomic_load(&sm.write_at);
		stuck = at && tu_ms_since(at) > SEAM_WRITE_MS + STUCK_MS;
	}
	ctx_cancel(sm.parent); /* ends the sender, and a stuck write */
	ck_assert_int_eq(pthread_join(worker, NULL), 0);
	ck_assert_int_eq(pthread_join(sender, NULL), 0);
	ck_assert_msg(!stuck, "a write was still in flight %d ms after its "
		      "%d ms deadline", STUCK_MS, SEAM_WRITE_MS);
	ck_assert_msg(sm.bad < 0, "round %d: ctx_write gave %zd (%s) in "
		      "%.0f ms", sm.bad, sm.n, sm.n < 0 ? strerror(sm.err) :
		      "-", sm.ms);
	ck_assert_int_eq(lseek(sm.fd, 0, SEEK_CUR), sm.rounds * 4096);
	close(sm.fd);
	ctx_chan_free(sm.ch);
	ctx_release(sm.parent);
}
END_TEST

void add_io_shared(Suite *s)
{
	TCase *tc = tu_tcase(s, "shared", 30);
	tcase_add_loop_test(tc, test_read_eof, 0, 2);
	tcase_add_loop_test(tc, test_shared_readers, 0, N_SHARED);
	tcase_add_loop_test(tc, test_read_race, 0, N_KINDS);

	tc = tu_tcase(s, "reuse", 30);
	tcase_add_test(tc, test_number_reuse);

	tc = tu_tcase(s, "seams", 60);
	tcase_add_test(tc, test_write_after_select);
}
