/*
 * ctx_dump: what every thread known to libctx is doing, what every
 * library thread serves, and with CTX_DEBUG=leaks every live context --
 * Go's goroutine dump on SIGQUIT, for a C program that uses libctx.
 *
 * The registry (wait.h) has a record per thread that has used the
 * library; each record says, while its thread waits, in which call, for
 * what, since when, until when and under which context, and for a
 * thread that libctx started, the context it runs under.  The report
 * takes a copy of every record under the registry's lock, with a
 * reference to each context named (ctx__record_snap), and of the list of
 * service threads under its own; everything else -- the words for the
 * contexts (core/inspect.c), the descriptors and the system calls
 * (base/describe.c), the services' state -- is worked out with no lock
 * of the library held, and the text is written in one go at the end, so
 * a slow reader of fd holds up nobody.
 *
 * The report is a snapshot taken thread by thread: a thread may have
 * moved on by the time its line is written, and one that was not
 * waiting when its record was copied is reported from /proc, a moment
 * later.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wait/wait.h"

struct snaps {
	struct ctx__snap *v;
	size_t n, cap;
	bool oom;
};

/* Under the registry's lock. */
static void collect(struct ctx__record *rec, void *arg)
{
	struct snaps *s = arg;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		struct ctx__snap *v = realloc(s->v, cap * sizeof(*v));
		if (!v) {
			s->oom = true;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	ctx__record_snap(rec, &s->v[s->n++]);
}

/* ---- the words -------------------------------------------------------- */

static double secs(int64_t ns)
{
	return (double)ns / CTX_SEC;
}

/* "waiting for fd 5 (TCP socket ...)", after the call's name. */
static void what_text(const struct ctx__snap *s, struct ctx__text *t)
{
	char d[256];
	if (s->what == CTX__WAIT_FD || s->what == CTX__WAIT_XFER ||
	    (s->what == CTX__WAIT_PAUSE && s->fd >= 0))
		ctx__describe_fd(s->fd, d, sizeof(d));
	switch (s->what) {
	case CTX__WAIT_FD:
		ctx__text_add(t, ", waiting for fd %d (%s)", s->fd, d);
		break;
	case CTX__WAIT_XFER:
		ctx__text_add(t, ", a transfer on fd %d (%s) in the kernel",
			      s->fd, d);
		break;
	case CTX__WAIT_PAUSE:
		ctx__text_add(t, ", pausing between tries");
		if (s->fd >= 0)
			ctx__text_add(t, " on fd %d (%s)", s->fd, d);
		break;
	case CTX__WAIT_WAKE:
		ctx__text_add(t, ", parked until another thread wakes it");
		break;
	default:
		ctx__text_add(t, ", waiting for its context%s",
			      s->limit == CTX__NEVER ? "" : " or the time");
	}
}

/* "for 2.001 s, 7.999 s left" */
static void time_text(const struct ctx__snap *s, struct ctx__text *t)
{
	int64_t now = ctx__now_coarse();
	ctx__text_add(t, ", for %.3f s", secs(now - s->since));
	if (s->limit == CTX__NEVER)
		ctx__text_add(t, ", no deadline");
	else if (s->limit >= now)
		ctx__text_add(t, ", %.3f s left", secs(s->limit - now));
	else
		ctx__text_add(t, ", its time passed %.3f s ago",
			      secs(now - s->limit));
}

/* How c stands, then its chain. */
static void context_text(const char *what, ctx_t *c, struct ctx__text *t)
{
	ctx__text_add(t, "    %s: ", what);
	ctx__end_text(c, t);
	ctx__text_add(t, "\n");
	ctx__chain_text(c, "      ", t);
}

static void thread_head(const struct ctx__snap *s, struct ctx__text *t)
{
	char name[64];
	ctx__text_add(t, "  thread %d \"%s\": ", s->tid,
		      ctx__task_name(s->tid, name, sizeof(name)));
}

static void waiting_text(const struct ctx__snap *s, struct ctx__text *t)
{
	thread_head(s, t);
	ctx__text_add(t, "in %s", s->call ? s->call : "a libctx call");
	what_text(s, t);
	time_text(s, t);
	ctx__text_add(t, "\n");
	if (s->ctx)
		context_text("its context", s->ctx, t);
	if (s->under && s->under != s->ctx)
		context_text("started by libctx under", s->under, t);
}

/* A thread outside libctx: what /proc says it is doing. */
static void outside_text(const struct ctx__snap *s, struct ctx__text *t)
{
	char now[512];
	thread_head(s, t);
	ctx__text_add(t, "outside libctx: %s\n",
		      ctx__describe_task(s->tid, now, sizeof(now)));
	if (s->under)
		context_text("started by libctx under", s->under, t);
}

/* The threads of one kind: waiting (0), started by libctx and outside
 * it (1), the rest (2). */
static int kind_of(const struct ctx__snap *s)
{
	return s->waiting ? 0 : s->under ? 1 : 2;
}

static void threads_text(struct snaps *s, struct ctx__text *t)
{
	static const char *const heads[] = {
		"Threads waiting in libctx",
		"Threads libctx started, now outside it",
		"Other threads that have used libctx, now outside it",
	};
	for (int k = 0; k < 3; k++) {
		size_t n = 0;
		for (size_t i = 0; i < s->n; i++)
			n += kind_of(&s->v[i]) == k;
		ctx__text_add(t, "%s: %zu\n", heads[k], n);
		for (size_t i = 0; i < s->n; i++)
			if (kind_of(&s->v[i]) == k && k == 0)
				waiting_text(&s->v[i], t);
			else if (kind_of(&s->v[i]) == k)
				outside_text(&s->v[i], t);
	}
	if (s->oom)
		ctx__text_add(t, "  (out of memory: some threads left out)\n");
}

/* ---- library threads -------------------------------------------------- */

struct services {
	struct {
		int tid;
		const struct ctx__service *svc;
	} v[64];
	size_t n, more;
};

static void collect_service(int tid, const struct ctx__service *svc,
			    void *arg)
{
	struct services *s = arg;
	if (s->n == sizeof(s->v) / sizeof(s->v[0])) {
		s->more++;
		return;
	}
	s->v[s->n].tid = tid;
	s->v[s->n++].svc = svc;
}

static void services_text(struct ctx__text *t)
{
	struct services *s = calloc(1, sizeof(*s));
	char state[256];
	if (!s) {
		ctx__text_add(t, "Library threads: (no memory to list them)\n");
		return;
	}
	ctx__services_each(collect_service, s);
	ctx__text_add(t, "Library threads: %zu\n", s->n + s->more);
	for (size_t i = 0; i < s->n; i++) {
		const struct ctx__service *v = s->v[i].svc;
		ctx__text_add(t, "  thread %d \"%s\": %s", s->v[i].tid,
			      v->name, v->serves);
		state[0] = '\0';
		if (v->state)
			v->state(state, sizeof(state));
		ctx__text_add(t, "%s%s\n", state[0] ? "; now " : "", state);
	}
	if (s->more)
		ctx__text_add(t, "  and %zu more\n", s->more);
	free(s);
}

/* ---- the report ------------------------------------------------------- */

static void report(struct ctx__text *t)
{
	struct snaps s = { 0 };
	ctx__registry_each(collect, &s);
	ctx__text_add(t, "libctx dump of process %d (backend %s)\n",
		      (int)getpid(), ctx_backend());
	threads_text(&s, t);
	for (size_t i = 0; i < s.n; i++)
		ctx__snap_put(&s.v[i]);
	free(s.v);
	services_text(t);
	ctx__text_add(t, "Live contexts (CTX_DEBUG=leaks):\n");
	if (!ctx__tree_text(t))
		ctx__text_add(t, "  (listed only when CTX_DEBUG names "
			      "leaks)\n");
	if (t->oom)
		ctx__text_add(t, "(out of memory: the report stops here)\n");
}

/* All of it, through EINTR and a descriptor that is non-blocking; 0 or
 * an error number. */
static int write_out(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			poll(&pf, 1, -1);
		} else if (n == 0 || errno != EINTR) {
			return n == 0 ? EIO : errno;
		}
	}
	return 0;
}

/* A reader that went away is EPIPE, not the end of the program: SIGPIPE
 * is blocked for the write, and one it raised is taken back. */
static int write_all(int fd, const char *p, size_t len)
{
	sigset_t pipe, old, pending;
	const struct timespec zero = { 0, 0 };
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	bool was = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, &old);
	int e = write_out(fd, p, len);
	if (e == EPIPE && !was)
		sigtimedwait(&pipe, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

int ctx_dump(int fd)
{
	struct ctx__text t = { 0 };
	if (fd < 0 || fcntl(fd, F_GETFL) < 0)
		return EBADF;
	report(&t);
	int e = t.buf ? write_all(fd, t.buf, t.len) : ENOMEM;
	if (!e && t.oom)
		e = ENOMEM;
	ctx__text_free(&t);
	return e;
}
