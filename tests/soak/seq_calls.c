/*
 * The sequence suite's families of calls (see sequence.c): transfers on
 * streams, a regular file, a FIFO opened from either end, select and
 * poll, channels, a condition variable, a semaphore, sleep, join and
 * child processes, each drawn, made and checked against the model.
 */
#include "sequence.h"

/* ---- transfers on streams ------------------------------------------------ */

static const char *const read_names[] = { "ctx_read", "ctx_readv",
					  "ctx_recv" };
static const char *const write_names[] = { "ctx_write", "ctx_writev",
					   "ctx_send" };

static ssize_t w_read(struct worker *w, int fd, size_t len, int how)
{
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 2 },
		{ .iov_base = w->buf + len / 2, .iov_len = len - len / 2 },
	};

	if (how == 0)
		return ctx_read(w->s.ctx, fd, w->buf, len);
	if (how == 1)
		return ctx_readv(w->s.ctx, fd, iov, 2);
	return ctx_recv(w->s.ctx, fd, w->buf, len, 0);
}

static ssize_t w_write(struct worker *w, int fd, size_t len, int how)
{
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 2 },
		{ .iov_base = w->buf + len / 2, .iov_len = len - len / 2 },
	};

	if (how == 0)
		return ctx_write(w->s.ctx, fd, w->buf, len);
	if (how == 1)
		return ctx_writev(w->s.ctx, fd, iov, 2);
	return ctx_send(w->s.ctx, fd, w->buf, len, MSG_NOSIGNAL);
}

/* A read from the peer: what is buffered, or what the peer writes. */
void step_read(struct worker *w)
{
	int k = (int)pick(w, ST_KINDS), si = 2 * k + 1;
	struct stream *st = &w->st[si];
	size_t len = pick_len(w, MAX_XFER), n = pick_len(w, PIPE_CAP);
	int how = (int)pick(w, st->sock ? 3 : 2);
	uint64_t avail = st->w - st->r;
	bool ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);

	if (!avail && (!ends || chance(w, 70)))
		seq_add(&w->peer, A_WRITE, si, (long)n, at);
	seq_describe(w, "%s(%s, %zu) with %llu buffered", read_names[how],
		 st->name, len, (unsigned long long)avail);
	seq_make_ctx(w);
	seq_go(w, read_names[how]);
	ssize_t got = w_read(w, st->rd, len, how);
	int err = errno;
	seq_returned(w);
	seq_end_helpers(w, true);
	w->s.ready = avail ? w->s.t0 : seq_done_at(seq_find(&w->peer, A_WRITE));
	seq_take(w, st, w->buf, got, "the worker");
	seq_check_stream(w, st);
	expect(w, got != 0, "%s returned 0 (end of file) on a stream "
	       "nobody closed", w->s.call);
	expect(w, got <= (ssize_t)len, "%s returned %zd for %zu", w->s.call,
	       got, len);
	seq_check_end(w, got < 0 ? err : 0);
	seq_release_ctx(w);
}

/* A short write: only once the context could have ended it. */
static void check_count(struct worker *w, ssize_t n, size_t len, int err)
{
	if (n == (ssize_t)len || n < 0) {
		seq_check_end(w, n < 0 ? err : 0);
		return;
	}
	seq_check_late(w);
	expect(w, n > 0 && n < (ssize_t)len, "%s returned %zd for %zu",
	       w->s.call, n, len);
	expect(w, seq_could_end(w), "%s moved %zd of %zu bytes although its "
	       "context had not ended", w->s.call, n, len);
}

/* A write to the peer: room in the buffer, or the peer drains it. */
void step_write(struct worker *w)
{
	int k = (int)pick(w, ST_KINDS), si = 2 * k;
	struct stream *st = &w->st[si];
	size_t len = pick_len(w, MAX_XFER);
	int how = (int)pick(w, st->sock ? 3 : 2);
	uint64_t backlog = st->w - st->r;
	bool fits = !st->sock && backlog + len <= PIPE_CAP;
	bool ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);

	if ((!fits && (!ends || chance(w, 70))) || chance(w, 20))
		seq_add(&w->peer, A_DRAIN, si, (long)(st->w + len), at);
	seq_describe(w, "%s(%s, %zu) with %llu buffered", write_names[how],
		 st->name, len, (unsigned long long)backlog);
	seq_make_ctx(w);
	seq_fill(st, w->buf, len);
	seq_go(w, write_names[how]);
	ssize_t n = w_write(w, st->wr, len, how);
	int err = errno;
	seq_returned(w);
	/* After a whole write a drain reads it all: when it had, the write
	 * could complete, at the latest. */
	seq_end_helpers(w, n != (ssize_t)len);
	st->w += n > 0 ? (uint64_t)n : 0;
	seq_check_stream(w, st);
	w->s.ready = fits ? w->s.t0 : seq_done_at(seq_find(&w->peer, A_DRAIN));
	check_count(w, n, len, err);
	seq_release_ctx(w);
}

/* ---- a regular file ------------------------------------------------------ */

enum { FO_PWRITE, FO_PREAD, FO_WRITE, FO_READ, FO_PWRITEV, FO_PREADV,
       FO_FSYNC, FO_FDATASYNC, FO_COUNT };
static const char *const fo_names[FO_COUNT] = {
	"ctx_pwrite", "ctx_pread", "ctx_write", "ctx_read", "ctx_pwritev",
	"ctx_preadv", "ctx_fsync", "ctx_fdatasync",
};

static bool fo_writes(int op)
{
	return op == FO_PWRITE || op == FO_WRITE || op == FO_PWRITEV;
}

static bool fo_reads(int op)
{
	return op == FO_PREAD || op == FO_READ || op == FO_PREADV;
}

static ssize_t file_call(struct worker *w, int op, size_t len, off_t off)
{
	ctx_t *c = w->s.ctx;
	struct iovec iov[2] = {
		{ .iov_base = w->buf, .iov_len = len / 3 },
		{ .iov_base = w->buf + len / 3, .iov_len = len - len / 3 },
	};

	switch (op) {
	case FO_PWRITE: return ctx_pwrite(c, w->file, w->buf, len, off);
	case FO_PREAD: return ctx_pread(c, w->file, w->buf, len, off);
	case FO_WRITE: return ctx_write(c, w->file, w->buf, len);
	case FO_READ: return ctx_read(c, w->file, w->buf, len);
	case FO_PWRITEV: return ctx_pwritev(c, w->file, iov, 2, off);
	case FO_PREADV: return ctx_preadv(c, w->file, iov, 2, off);
	case FO_FSYNC: return ctx_fsync(c, w->file);
	default: return ctx_fdatasync(c, w->file);
	}
}

/* What a transfer on the file moved, against the shadow copy. */
static void file_result(struct worker *w, int op, ssize_t n, size_t len,
			off_t pos, int err)
{
	size_t want = len;

	if (fo_reads(op))
		want = pos >= w->fsize ? 0 :
		       (size_t)(w->fsize - pos) < len ? (size_t)(w->fsize - pos)
						      : len;
	if (n >= 0 && fo_reads(op))
		expect(w, memcmp(w->buf, w->shadow + pos, (size_t)n) == 0,
		       "%s at %lld read %zd bytes that are not what was "
		       "written there", w->s.call, (long long)pos, n);
	if (n > 0 && fo_writes(op)) {
		memcpy(w->shadow + pos, w->buf, (size_t)n);
		if (pos + n > w->fsize)
			w->fsize = pos + n;
	}
	if (n > 0 && (op == FO_READ || op == FO_WRITE))
		w->foff += n;
	check_count(w, n, want, err);
}

void step_file(struct worker *w)
{
	int op = (int)pick(w, FO_COUNT);
	size_t len = pick_len(w, MAX_XFER);
	off_t off = (off_t)pick(w, FILE_SIZE - MAX_XFER);

	if (w->foff > FILE_SIZE - MAX_XFER)
		w->foff = lseek(w->file, 0, SEEK_SET);
	off_t pos = op == FO_READ || op == FO_WRITE ? w->foff : off;
	seq_plan_ctx(w);
	if (op == FO_FSYNC || op == FO_FDATASYNC)
		seq_describe(w, "%s(file) of %lld bytes", fo_names[op],
			 (long long)w->fsize);
	else
		seq_describe(w, "%s(file, %zu, at %lld) of %lld bytes",
			 fo_names[op], len, (long long)pos,
			 (long long)w->fsize);
	seq_make_ctx(w);
	for (size_t i = 0; fo_writes(op) && i < len; i++)
		w->buf[i] = (char)(w->step * 7 + (long)i);
	seq_go(w, fo_names[op]);
	ssize_t n = file_call(w, op, len, off);
	int err = errno;
	seq_returned(w);
	seq_end_helpers(w, true);
	/* A file in memory never waits; one on a disk waits as long as the
	 * disk takes, which only io_uring lets a context end (ctx_read(3)). */
	if (w->mem_file)
		w->s.ready = w->s.t0;
	else
		w->s.untimed = strcmp(ctx_backend(), "io_uring") != 0;
	if (op == FO_FSYNC || op == FO_FDATASYNC)
		seq_check_end(w, n ? err : 0);
	else
		file_result(w, op, n, len, pos, err);
	off_t at = lseek(w->file, 0, SEEK_CUR);
	expect(w, at == w->foff, "after %s the file's offset is %lld, "
	       "expected %lld", w->s.call, (long long)at, (long long)w->foff);
	seq_release_ctx(w);
}

/* ---- a FIFO, opened from either end -------------------------------------- */

static void fifo_fresh(struct worker *w)
{
	w->fifo = (struct stream){ .salt = (uint8_t)w->step, .name = "fifo" };
}

static int64_t later(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* When the call's context ended, as far as the test knows. */
static int64_t ctx_end(struct worker *w)
{
	return w->s.pre ? w->s.t0 : min64(w->s.dl, seq_cancel_t(w, true));
}

/*
 * What the FIFO's writer wrote, the worker read.  A reader's open that
 * fails loses what a writer wrote after its own open succeeded; that
 * is no fault when the writer came in as the reader's context ended
 * (open(2) interrupted by a signal has the same window, and a writer
 * that opened an instant before the end may not be seen), but bytes
 * that were in the FIFO before the end were there for the reader.
 */
static void check_fifo_read(struct worker *w, int fd, struct action *a)
{
	if (fd >= 0) {
		expect(w, a && a->t1, "ctx_open(O_RDONLY) succeeded with no "
		       "writer");
		expect(w, w->fifo.r == w->fifo.w, "the FIFO's writer wrote "
		       "%llu bytes, the reader read %llu to the end",
		       (unsigned long long)w->fifo.w,
		       (unsigned long long)w->fifo.r);
		return;
	}
	if (!a || !a->t1 || a->rc <= 0)
		return;
	expect(w, a->t2 >= ctx_end(w), "a writer opened the FIFO at %.2f ms "
	       "and had written %ld bytes by %.2f ms, before the context "
	       "ended at %.2f ms; the reader's ctx_open failed and the bytes "
	       "are lost", rel_ms(w, a->t1), a->rc, rel_ms(w, a->t2),
	       rel_ms(w, ctx_end(w)));
}

/* Everything until end of file, in the pattern, within a bound. */
static void fifo_drain(struct worker *w, int fd)
{
	ctx_t *c = ctx_with_timeout(ctx_background(), 2 * seq_tol);
	ssize_t n;

	need(w, c);
	while ((n = ctx_read(c, fd, w->back, MAX_XFER)) > 0)
		seq_take(w, &w->fifo, w->back, n, "the worker");
	expect(w, n == 0, "reading the FIFO to its end failed: %s",
	       strerror(errno));
	ctx_release(c);
}

/*
 * The worker opens the FIFO to read and reads to the end; the writer
 * opens with ctx_open, or (when nothing else could end the worker's
 * open) is already blocked in open(2) when the worker's call begins:
 * issue 21's first case, whose line was lost.
 */
static void step_fifo_read(struct worker *w)
{
	bool ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);
	long n = 1 + (long)pick(w, PIPE_CAP);

	if (!ends || chance(w, 80))
		w->peer.a[seq_add(&w->peer, A_FIFO_W, 0, n, ends ? at : 0)].n2 =
			!ends;
	if (!ends)
		w->s.delay += CTX_MSEC; /* the writer is in open(2) first */
	fifo_fresh(w);
	seq_describe(w, "ctx_open(fifo, O_RDONLY), then read to the end");
	seq_make_ctx(w);
	seq_go(w, "ctx_open(fifo, O_RDONLY)");
	int fd = ctx_open(w->s.ctx, w->fifo_path, O_RDONLY | O_CLOEXEC);
	int err = errno;
	seq_returned(w);
	struct action *a = seq_find(&w->peer, A_FIFO_W);
	if (fd >= 0) {
		fifo_drain(w, fd);
		close(fd);
		seq_end_helpers(w, false);
	} else {
		/* A writer in open(2) waits for a reader: give it one. */
		int r = a && a->n2 ? open(w->fifo_path, O_RDONLY |
					  O_NONBLOCK | O_CLOEXEC) : -1;
		seq_end_helpers(w, true);
		if (r >= 0)
			close(r);
	}
	w->s.ready = later(w->s.t0, seq_began_at(a));
	seq_check_end(w, fd < 0 ? err : 0);
	check_fifo_read(w, fd, a);
	seq_release_ctx(w);
}

/* The worker opens the FIFO to write, writes and closes; the peer opens
 * it to read (with ctx_open) and reads to the end. */
static void step_fifo_write(struct worker *w)
{
	bool ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);
	size_t n = pick_len(w, PIPE_CAP);

	if (!ends || chance(w, 80))
		seq_add(&w->peer, A_FIFO_R, 0, 0, at);
	fifo_fresh(w);
	seq_describe(w, "ctx_open(fifo, O_WRONLY), then write %zu", n);
	seq_make_ctx(w);
	seq_go(w, "ctx_open(fifo, O_WRONLY)");
	int fd = ctx_open(w->s.ctx, w->fifo_path, O_WRONLY | O_CLOEXEC);
	int err = errno;
	seq_returned(w);
	if (fd >= 0) {
		ctx_t *c = ctx_with_timeout(ctx_background(), 2 * seq_tol);
		need(w, c);
		seq_fill(&w->fifo, w->buf, n);
		ssize_t m = ctx_write(c, fd, w->buf, n);
		expect(w, m == (ssize_t)n, "writing %zu bytes to the FIFO "
		       "returned %zd (%s)", n, m, strerror(errno));
		w->fifo.w += m > 0 ? (uint64_t)m : 0;
		ctx_release(c);
		close(fd);
	}
	seq_end_helpers(w, fd < 0);
	struct action *a = seq_find(&w->peer, A_FIFO_R);
	w->s.ready = later(w->s.t0, seq_began_at(a));
	seq_check_end(w, fd < 0 ? err : 0);
	expect(w, w->fifo.r == w->fifo.w, "the FIFO's reader read %llu "
	       "bytes to the end, %llu were written",
	       (unsigned long long)w->fifo.r, (unsigned long long)w->fifo.w);
	expect(w, fd < 0 || (a && a->t1 && a->rc == 0), "the worker opened "
	       "the FIFO to write, but its reader never reached the end");
	seq_release_ctx(w);
}

/* The FIFO steps share it; a process step takes it alone, so that no
 * child is made while a FIFO is open (see sequence.c's top).  Writers
 * first: the FIFO steps of two workers could otherwise keep a spawn out
 * for ever. */
static pthread_rwlock_t spawn_lock =
	PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void step_fifo(struct worker *w)
{
	pthread_rwlock_rdlock(&spawn_lock);
	if (chance(w, 50))
		step_fifo_read(w);
	else
		step_fifo_write(w);
	pthread_rwlock_unlock(&spawn_lock);
}

/* ---- select and poll ----------------------------------------------------- */

enum { C_RECV, C_SEND, C_FD, C_DONE, C_KINDS };

struct sel {
	struct ctx_case cs[C_KINDS];
	int kind[C_KINDS], n;
	int r;                  /* ch[r] is received from, ch[!r] sent to */
	uint64_t rv, sv;
	ctx_t *done;
	bool ready0;            /* some case was ready before the call */
	int64_t timeout;
};

static int64_t pick_timeout(struct worker *w)
{
	uint32_t k = pick(w, 4);

	return k == 0 ? -1 : k == 1 ? 0 : pick_time(w);
}

/* A call's own timeout in words: "none" below zero. */
static const char *timeout_str(char *buf, size_t len, int64_t t)
{
	if (t < 0)
		snprintf(buf, len, "none");
	else
		snprintf(buf, len, "%.2f ms", (double)t / CTX_MSEC);
	return buf;
}

/* The cases, in a random order, and whether one is ready already. */
static void sel_cases(struct worker *w, struct sel *x, const bool *want)
{
	struct chanm *rm = &w->ch[x->r], *sm = &w->ch[!x->r];
	struct stream *st = &w->st[2 * ST_PIPE + 1];
	int start = (int)pick(w, C_KINDS);

	for (int j = 0; j < C_KINDS; j++) {
		int k = (start + j) % C_KINDS;
		struct ctx_case c = { .kind = 0, .fd = -1 };
		if (!want[k])
			continue;
		if (k == C_RECV)
			c = (struct ctx_case){ .kind = CTX_CASE_RECV,
					       .ch = rm->ch, .elem = &x->rv,
					       .fd = -1 };
		else if (k == C_SEND)
			c = (struct ctx_case){ .kind = CTX_CASE_SEND,
					       .ch = sm->ch, .elem = &x->sv,
					       .fd = -1 };
		else if (k == C_FD)
			c = (struct ctx_case){ .kind = CTX_CASE_FD,
					       .fd = st->rd, .events = POLLIN };
		else
			c = (struct ctx_case){ .kind = CTX_CASE_DONE,
					       .done = x->done, .fd = -1 };
		x->kind[x->n] = k;
		x->cs[x->n++] = c;
	}
	x->ready0 = (want[C_RECV] && (rm->sent > rm->got || rm->closed)) ||
		    (want[C_SEND] && (sm->closed ||
				      sm->sent - sm->got < sm->cap)) ||
		    (want[C_FD] && st->w > st->r) ||
		    (want[C_DONE] && ctx_err(x->done));
}

/* What makes each case ready, if planned (at most two of them). */
static void sel_plan(struct worker *w, struct sel *x, bool ends)
{
	int planned = 0;

	for (int j = 0; j < x->n && planned < 2; j++) {
		int k = x->kind[j];
		int64_t at = pick_time(w);
		bool force = !ends && !x->ready0 && planned == 0;
		if (!force && !chance(w, 40))
			continue;
		planned++;
		if (k == C_RECV)
			seq_add(&w->peer, A_SEND, x->r, 0, at);
		else if (k == C_SEND)
			seq_add(&w->peer, A_RECV, !x->r,
			    (long)(w->ch[!x->r].sent + 1), at);
		else if (k == C_FD)
			seq_add(&w->peer, A_WRITE, 2 * ST_PIPE + 1,
			    (long)pick_len(w, PIPE_CAP), at);
		else
			w->peer.a[seq_add(&w->peer, A_CANCEL, 0, 0, at)].victim =
				x->done;
	}
}

/* When the first case became ready, from what the peer did. */
static int64_t sel_ready(struct worker *w, struct sel *x)
{
	int64_t t = x->ready0 ? w->s.t0 : NEVER;

	for (int i = 0; i < w->peer.n; i++) {
		struct action *a = &w->peer.a[i];
		/* A peer waiting to send or receive makes the case ready. */
		bool waits = a->kind == A_SEND || a->kind == A_RECV;
		t = min64(t, waits ? seq_began_at(a) : seq_done_at(a));
	}
	return t;
}

/* The chosen case did what it says, and the model moves on. */
static void sel_chosen(struct worker *w, struct sel *x, int i)
{
	struct ctx_case *c = &x->cs[i];
	struct chanm *rm = &w->ch[x->r], *sm = &w->ch[!x->r];
	struct stream *st = &w->st[2 * ST_PIPE + 1];

	switch (x->kind[i]) {
	case C_RECV:
		if (c->result == EPIPE) {
			expect(w, rm->closed && rm->sent == rm->got, "a "
			       "receive case was chosen with EPIPE on an "
			       "open channel or one holding values");
			break;
		}
		expect(w, c->result == 0 && x->rv == rm->got && rm->got <
		       rm->sent, "a receive case was chosen with result %d "
		       "and value %llu; expected %llu (%llu sent)", c->result,
		       (unsigned long long)x->rv,
		       (unsigned long long)rm->got,
		       (unsigned long long)rm->sent);
		rm->got++;
		break;
	case C_SEND:
		expect(w, c->result == 0 || (c->result == EPIPE && sm->closed),
		       "a send case was chosen with result %d", c->result);
		sm->sent += c->result == 0;
		break;
	case C_FD:
		expect(w, (c->revents & POLLIN) && st->w > st->r, "the "
		       "descriptor case was chosen with revents %#x and %llu "
		       "bytes to read", c->revents,
		       (unsigned long long)(st->w - st->r));
		break;
	default:
		expect(w, c->result == CTX_CANCELED &&
		       ctx_err(x->done) == CTX_CANCELED, "the context case "
		       "was chosen with result %d, its context's error %d",
		       c->result, ctx_err(x->done));
	}
}

static void sel_check(struct worker *w, struct sel *x, int i, int err)
{
	struct step *s = &w->s;

	s->ready = sel_ready(w, x);
	s->own = x->timeout >= 0 ? s->t0 + x->timeout : NEVER;
	if (i >= 0) {
		expect(w, i < x->n, "returned %d of %d cases", i, x->n);
		if (i < x->n)
			sel_chosen(w, x, i);
		seq_check_end(w, 0);
		return;
	}
	seq_check_late(w);
	if (err == EAGAIN)
		expect(w, x->timeout >= 0 && s->t1 >= s->own && !x->ready0,
		       "ctx_select found nothing ready (EAGAIN) %s",
		       x->timeout < 0 ? "with no timeout" :
		       x->ready0 ? "although a case was ready before the call"
				 : "before its timeout");
	else
		seq_check_err(w, err);
}

void step_select(struct worker *w)
{
	struct sel x = { .rv = UINT64_MAX, .n = 0 };
	bool want[C_KINDS];
	char tbuf[24];

	x.r = (int)pick(w, 2);
	for (int k = 0; k < C_KINDS; k++)
		want[k] = chance(w, 55);
	want[C_RECV] |= !want[C_SEND] && !want[C_FD] && !want[C_DONE];
	x.done = ctx_with_cancel(ctx_background());
	need(w, x.done);
	if (want[C_DONE] && chance(w, 20))
		ctx_cancel(x.done);
	x.sv = w->ch[!x.r].sent;
	x.timeout = pick_timeout(w);
	bool ends = seq_plan_ctx(w) || x.timeout >= 0;
	sel_cases(w, &x, want);
	sel_plan(w, &x, ends);
	seq_describe(w, "ctx_select(%d cases:%s%s%s%s; timeout %s)%s", x.n,
		 want[C_RECV] ? " recv" : "", want[C_SEND] ? " send" : "",
		 want[C_FD] ? " fd" : "", want[C_DONE] ? " done" : "",
		 timeout_str(tbuf, sizeof(tbuf), x.timeout),
		 x.ready0 ? ", one ready" : "");
	seq_make_ctx(w);
	seq_go(w, "ctx_select");
	int i = ctx_select(w->s.ctx, x.cs, (size_t)x.n, x.timeout);
	int err = errno;
	seq_returned(w);
	seq_end_helpers(w, true);
	sel_check(w, &x, i, err);
	ctx_release(x.done);
	seq_release_ctx(w);
}

/* ctx_poll on the pipe or the socket from the peer. */
void step_poll(struct worker *w)
{
	int si = chance(w, 50) ? 2 * ST_PIPE + 1 : 2 * ST_UNIX + 1;
	struct stream *st = &w->st[si];
	struct pollfd p = { .fd = st->rd, .events = POLLIN };
	int64_t timeout = pick_timeout(w), at = pick_time(w);
	char tbuf[24];
	bool ready0 = st->w > st->r;
	bool ends = seq_plan_ctx(w) || timeout >= 0;

	if ((!ends && !ready0) || chance(w, 40))
		seq_add(&w->peer, A_WRITE, si, (long)pick_len(w, PIPE_CAP), at);
	seq_describe(w, "ctx_poll(%s, POLLIN, timeout %s)%s", st->name,
		 timeout_str(tbuf, sizeof(tbuf), timeout),
		 ready0 ? ", ready" : "");
	seq_make_ctx(w);
	seq_go(w, "ctx_poll");
	int n = ctx_poll(w->s.ctx, &p, 1, timeout);
	int err = errno;
	seq_returned(w);
	seq_end_helpers(w, true);
	w->s.ready = ready0 ? w->s.t0 : seq_done_at(seq_find(&w->peer, A_WRITE));
	w->s.own = timeout >= 0 ? w->s.t0 + timeout : NEVER;
	if (n == 1)
		expect(w, (p.revents & POLLIN) && st->w > st->r, "ctx_poll "
		       "said POLLIN (revents %#x) with %llu bytes to read",
		       p.revents, (unsigned long long)(st->w - st->r));
	else if (n == 0)
		expect(w, timeout >= 0 && w->s.t1 >= w->s.own && !ready0,
		       "ctx_poll returned 0 %s", timeout < 0 ? "with no "
		       "timeout" : ready0 ? "with data there before the call"
		       : "before its timeout");
	else
		expect(w, n < 0, "ctx_poll returned %d for one descriptor",
		       n);
	seq_check_end(w, n < 0 ? err : 0);
	seq_release_ctx(w);
}

/* ---- channels ------------------------------------------------------------ */

/* A closed channel gives what it holds, then EPIPE. */
void seq_chan_drain(struct worker *w, struct chanm *m)
{
	uint64_t v;
	int e;

	while ((e = ctx_chan_try_recv(m->ch, &v)) == 0) {
		expect(w, v == m->got, "a closed channel gave %llu, expected "
		       "%llu", (unsigned long long)v,
		       (unsigned long long)m->got);
		m->got++;
	}
	expect(w, e == EPIPE && m->got == m->sent, "a closed channel "
	       "ended with %d after %llu of %llu values", e,
	       (unsigned long long)m->got, (unsigned long long)m->sent);
}

/* A closed channel, once its values are checked, is replaced. */
static void chan_renew(struct worker *w, struct chanm *m)
{
	seq_chan_drain(w, m);
	ctx_chan_free(m->ch);
	*m = (struct chanm){ .ch = ctx_chan_new(sizeof(uint64_t), m->cap),
			     .cap = m->cap };
	need(w, m->ch);
}

/* closed: the channel was closed before the call returned. */
static void chan_send_check(struct worker *w, struct chanm *m, int rc,
			    bool closed)
{
	if (rc == EPIPE) {
		expect(w, closed, "ctx_chan_send: EPIPE on an open channel");
		seq_check_late(w);
		return;
	}
	m->sent += rc == 0;
	seq_check_end(w, rc);
}

static void chan_recv_check(struct worker *w, struct chanm *m, int rc,
			    uint64_t v, bool closed)
{
	if (rc == EPIPE) {
		expect(w, closed && m->got == m->sent, "ctx_chan_recv: "
		       "EPIPE on an open channel or one holding values");
		seq_check_late(w);
		return;
	}
	if (rc == 0) {
		expect(w, v == m->got && m->got < m->sent, "ctx_chan_recv "
		       "gave %llu, expected %llu (%llu sent)",
		       (unsigned long long)v, (unsigned long long)m->got,
		       (unsigned long long)m->sent);
		m->got++;
	}
	seq_check_end(w, rc);
}

/*
 * A send or a receive: ready before the call, or the peer receives or
 * sends (often already waiting), or closes the channel under it.
 */
void step_chan(struct worker *w)
{
	struct chanm *m = &w->ch[pick(w, 2)];
	bool send = chance(w, 50), was = m->closed;
	bool close = !was && chance(w, 8);
	bool ready0 = m->closed || (send ? m->sent - m->got < m->cap
					 : m->sent > m->got);
	bool ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);
	uint64_t v = send ? m->sent : UINT64_MAX;

	if (close)
		seq_add(&w->peer, A_CLOSE, (int)(m - w->ch), 0, at);
	else if ((!ready0 && !ends) || chance(w, 60))
		seq_add(&w->peer, send ? A_RECV : A_SEND, (int)(m - w->ch),
		    (long)(m->sent + 1), at);
	seq_describe(w, "ctx_chan_%s(ch%d of %zu, %zu held)%s",
		 send ? "send" : "recv", (int)(m - w->ch), m->cap,
		 (size_t)(m->sent - m->got), m->closed ? ", closed" : "");
	seq_make_ctx(w);
	seq_go(w, send ? "ctx_chan_send" : "ctx_chan_recv");
	int rc = send ? ctx_chan_send(w->s.ctx, m->ch, &v)
		      : ctx_chan_recv(w->s.ctx, m->ch, &v);
	seq_returned(w);
	seq_end_helpers(w, true);
	w->s.ready = ready0 ? w->s.t0 : min64(seq_began_at(seq_find(&w->peer,
					       send ? A_RECV : A_SEND)),
					      seq_done_at(seq_find(&w->peer, A_CLOSE)));
	bool closed = was || seq_began_at(seq_find(&w->peer, A_CLOSE)) <= w->s.t1;
	if (send)
		chan_send_check(w, m, rc, closed);
	else
		chan_recv_check(w, m, rc, v, closed);
	if (m->closed && chance(w, 50))
		chan_renew(w, m);
	seq_release_ctx(w);
}

/* ---- a condition variable, a semaphore ----------------------------------- */

/* Waits for the peer's signal, in a loop on the predicate as every
 * caller must; with _until, its own deadline too. */
void step_cond(struct worker *w)
{
	bool until = chance(w, 40);
	int64_t own = until ? pick_time(w) : 0, at = pick_time(w);
	bool ends = seq_plan_ctx(w) || until, all = chance(w, 50);
	int rc = 0;

	if (!ends || chance(w, 70))
		seq_add(&w->peer, A_SIGNAL, 0, all, at);
	seq_describe(w, "ctx_cond_wait%s(%.2f ms)", until ? "_until" : "",
		 (double)own / CTX_MSEC);
	seq_make_ctx(w);
	pthread_mutex_lock(&w->mu);
	unsigned seen = w->pred;
	seq_go(w, until ? "ctx_cond_wait_until" : "ctx_cond_wait");
	int64_t dl = w->s.t0 + own;
	while (w->pred == seen && rc == 0)
		rc = until ? ctx_cond_wait_until(w->s.ctx, &w->cond, &w->mu, dl)
			   : ctx_cond_wait(w->s.ctx, &w->cond, &w->mu);
	seq_returned(w);
	bool changed = w->pred != seen;
	int ue = pthread_mutex_unlock(&w->mu);
	seq_end_helpers(w, true);
	expect(w, ue == 0, "the mutex was not held when %s returned %d",
	       w->s.call, rc);
	w->s.ready = seq_done_at(seq_find(&w->peer, A_SIGNAL));
	w->s.own = until ? dl : NEVER;
	expect(w, rc || changed, "%s returned 0 with no change", w->s.call);
	if (rc == CTX_DEADLINE_EXCEEDED && until && w->s.t1 >= dl)
		seq_check_late(w);
	else
		seq_check_end(w, rc);
	seq_release_ctx(w);
}

/* The peer holds part of the semaphore and may give it back. */
void step_sem(struct worker *w)
{
	int64_t n = 1 + pick(w, SEM_SIZE), k = pick(w, SEM_SIZE + 1);
	bool ready0 = SEM_SIZE - k >= n, ends = seq_plan_ctx(w);
	int64_t at = pick_time(w);

	expect(w, k == 0 || ctx_sem_try_acquire(w->sem, k), "the semaphore "
	       "of %d was not whole: %lld could not be taken", SEM_SIZE,
	       (long long)k);
	if (k && ((!ready0 && !ends) || chance(w, 60)))
		seq_add(&w->peer, A_RELEASE, 0, (long)k, at);
	seq_describe(w, "ctx_sem_acquire(%lld) with %lld of %d held",
		 (long long)n, (long long)k, SEM_SIZE);
	seq_make_ctx(w);
	seq_go(w, "ctx_sem_acquire");
	int rc = ctx_sem_acquire(w->s.ctx, w->sem, n);
	seq_returned(w);
	seq_end_helpers(w, true);
	struct action *rel = seq_find(&w->peer, A_RELEASE);
	w->s.ready = ready0 ? w->s.t0 : seq_done_at(rel);
	seq_check_end(w, rc);
	if (rc == 0)
		ctx_sem_release(w->sem, n);
	if (k && seq_done_at(rel) == NEVER)
		ctx_sem_release(w->sem, k);
	/* An acquire that failed took nothing. */
	bool whole = ctx_sem_try_acquire(w->sem, SEM_SIZE);
	expect(w, whole, "the semaphore is not whole after the step");
	if (whole)
		ctx_sem_release(w->sem, SEM_SIZE);
	seq_release_ctx(w);
}

/* ---- sleep, join --------------------------------------------------------- */

void step_sleep(struct worker *w)
{
	int64_t d = pick_time(w);
	bool until = chance(w, 50);

	seq_plan_ctx(w);
	seq_describe(w, "ctx_sleep%s(%.2f ms)", until ? "_until" : "",
		 (double)d / CTX_MSEC);
	seq_make_ctx(w);
	seq_go(w, until ? "ctx_sleep_until" : "ctx_sleep");
	int rc = until ? ctx_sleep_until(w->s.ctx, w->s.t0 + d)
		       : ctx_sleep(w->s.ctx, d);
	seq_returned(w);
	seq_end_helpers(w, true);
	w->s.own = w->s.t0 + d;
	expect(w, rc || w->s.t1 >= w->s.own, "%s returned 0 %.3f ms early",
	       w->s.call, (double)(w->s.own - w->s.t1) / CTX_MSEC);
	seq_check_end(w, rc);
	seq_release_ctx(w);
}

struct joinee {
	int64_t d, end;
	int rc;
};

static void *joinee_main(ctx_t *ctx, void *arg)
{
	struct joinee *j = arg;

	j->rc = ctx_sleep(ctx, j->d);
	j->end = ctx_now();
	return j;
}

/* A thread that sleeps, or is cancelled by the peer, is joined under the
 * call's context; one not joined in time is joined afterwards. */
void step_join(struct worker *w)
{
	struct joinee j = { .d = pick_time(w) };
	ctx_t *tc = ctx_with_cancel(ctx_background());
	ctx_thread_t *t = NULL;
	void *res = NULL;
	int64_t at = pick_time(w);

	need(w, tc);
	if (chance(w, 40))
		w->peer.a[seq_add(&w->peer, A_CANCEL, 0, 0, at)].victim = tc;
	seq_plan_ctx(w);
	seq_describe(w, "ctx_thread_join of a thread sleeping %.2f ms",
		 (double)j.d / CTX_MSEC);
	seq_make_ctx(w);
	int64_t made = ctx_now();
	int e = ctx_thread_create(&t, tc, joinee_main, &j);
	need(w, e == 0);
	seq_go(w, "ctx_thread_join");
	int rc = ctx_thread_join(w->s.ctx, t, &res);
	seq_returned(w);
	if (rc) {
		int again = ctx_thread_join(ctx_background(), t, &res);
		expect(w, again == 0, "joining after a failed join: %d",
		       again);
	}
	seq_end_helpers(w, true);
	expect(w, res == &j, "the join gave %p, expected %p", res,
	       (void *)&j);
	expect(w, (j.rc == 0 && j.end - made >= j.d) ||
	       (j.rc == CTX_CANCELED && seq_began_at(seq_find(&w->peer, A_CANCEL))
		<= j.end), "the joined thread's ctx_sleep returned %d after "
	       "%.2f ms of %.2f", j.rc, (double)(j.end - made) / CTX_MSEC,
	       (double)j.d / CTX_MSEC);
	w->s.ready = j.end;
	seq_check_end(w, rc);
	ctx_release(tc);
	seq_release_ctx(w);
}

/* ---- child processes ----------------------------------------------------- */

/* A sleep that the context may kill: ctx_proc_wait says which. */
static void step_proc_sleep(struct worker *w)
{
	int64_t d = pick_time(w);
	char secs[32];
	char *argv[] = { "sleep", secs, NULL };
	struct ctx_proc_attr attr = {
		.stdio = { CTX_STDIO_NULL, CTX_STDIO_NULL, CTX_STDIO_NULL },
	};
	ctx_proc_t *p = NULL;
	int status = 0;

	snprintf(secs, sizeof(secs), "%.6f", (double)d / CTX_SEC);
	seq_plan_ctx(w);
	seq_describe(w, "ctx_proc_spawn and ctx_proc_wait of sleep %s", secs);
	seq_make_ctx(w);
	seq_go(w, "ctx_proc_spawn");
	int rc = ctx_proc_spawn(&p, w->s.ctx, "sleep", argv, &attr);
	if (rc == 0) {
		w->s.call = "ctx_proc_wait";
		rc = ctx_proc_wait(p, &status);
		ctx_proc_free(p);
	}
	seq_returned(w);
	seq_end_helpers(w, true);
	if (rc == 0) {
		expect(w, WIFEXITED(status) && WEXITSTATUS(status) == 0,
		       "%s returned 0 with status %#x", w->s.call, status);
		expect(w, !seq_done_before(w), "ctx_proc_spawn started a process "
		       "under a context that was done");
		seq_release_ctx(w);
		return;
	}
	expect(w, !strcmp(w->s.call, "ctx_proc_spawn") ||
	       (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
	       (WIFEXITED(status) && WEXITSTATUS(status) == 0),
	       "%s returned %d with status %#x", w->s.call, rc, status);
	seq_check_late(w);
	seq_check_err(w, rc);
	seq_release_ctx(w);
}

/* cat, fed and drained through its pipes under the call's context. */
struct cat {
	struct stream st;
	size_t len;
	int status;
	ssize_t wn, n;          /* the write's result, the last read's */
};

static int cat_run(struct worker *w, struct cat *c)
{
	char *argv[] = { "cat", NULL };
	struct ctx_proc_attr attr = {
		.stdio = { CTX_STDIO_PIPE, CTX_STDIO_PIPE, CTX_STDIO_NULL },
	};
	ctx_proc_t *p = NULL;
	int rc = ctx_proc_spawn(&p, w->s.ctx, "cat", argv, &attr);

	if (rc)
		return rc;
	c->wn = ctx_write(w->s.ctx, ctx_proc_stdio(p, 0), w->buf, c->len);
	c->st.w = c->wn > 0 ? (uint64_t)c->wn : 0;
	ctx_proc_close(p, 0);
	while ((c->n = ctx_read(w->s.ctx, ctx_proc_stdio(p, 1), w->back,
				MAX_XFER)) > 0)
		seq_take(w, &c->st, w->back, c->n, "the worker");
	w->s.call = "ctx_proc_wait";
	rc = ctx_proc_wait(p, &c->status);
	ctx_proc_free(p);
	return rc;
}

/* What comes back is what went in: all of it unless the context ended,
 * and then every call ends promptly. */
static void step_proc_cat(struct worker *w)
{
	struct cat c = { .st = { .salt = (uint8_t)w->step, .name = "cat" },
			 .wn = -1, .n = -1 };

	c.len = pick_len(w, MAX_XFER);
	seq_plan_ctx(w);
	seq_describe(w, "cat of %zu bytes through ctx_proc's pipes", c.len);
	seq_make_ctx(w);
	seq_fill(&c.st, w->buf, c.len);
	seq_go(w, "ctx_proc_spawn");
	int rc = cat_run(w, &c);
	seq_returned(w);
	seq_end_helpers(w, true);
	seq_check_stream(w, &c.st);
	if (rc == 0 && c.wn == (ssize_t)c.len && c.n == 0) {
		expect(w, c.st.r == c.len && WIFEXITED(c.status) &&
		       WEXITSTATUS(c.status) == 0, "cat gave back %llu of %zu "
		       "bytes, status %#x", (unsigned long long)c.st.r, c.len,
		       c.status);
		expect(w, !seq_done_before(w), "ctx_proc_spawn started a process "
		       "under a context that was done");
	} else {
		seq_check_late(w);
		expect(w, seq_could_end(w), "cat through pipes failed (%d, wrote "
		       "%zd, last read %zd) although the context had not "
		       "ended", rc, c.wn, c.n);
	}
	seq_release_ctx(w);
}

void step_proc(struct worker *w)
{
	pthread_rwlock_wrlock(&spawn_lock);
	if (chance(w, 50))
		step_proc_sleep(w);
	else
		step_proc_cat(w);
	pthread_rwlock_unlock(&spawn_lock);
}
