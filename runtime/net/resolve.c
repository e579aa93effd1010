/*
 * ctx_getaddrinfo: name resolution that a context ends.
 *
 * Two mechanisms, one result layout:
 *
 *  a. c-ares (when built with it, the default): the lookup runs on the
 *     caller's thread, its sockets driven through ctx_poll, so the context
 *     ends it within a poll wake-up and ares_destroy closes every socket:
 *     an abandoned lookup leaves nothing.  c-ares reads the hosts file
 *     (CARES_HOSTS may name another) and resolv.conf, not nsswitch.conf.
 *     It is asked for the name alone: the service's ports, socket types
 *     and protocols come from glibc (cares_forms), whose reading of a
 *     service differs from c-ares's and is the one callers expect.
 *  b. glibc getaddrinfo on a helper thread (no c-ares, or
 *     CTX_RESOLVER=getaddrinfo): honours every nsswitch source, but
 *     getaddrinfo cannot be interrupted, so a context that ends the wait
 *     abandons the job to its helper.  Helpers are capped at
 *     CTX__RESOLVE_MAX_HELPERS; further jobs queue, and a queued job whose
 *     caller left is dropped unrun.  So abandoned lookups cost at most
 *     that many threads, each with the descriptors of one getaddrinfo.
 *     The caller waits on a channel, which makes no descriptor.
 *
 * Numeric hosts (and a NULL node) need no lookup: they are answered on
 * the spot by getaddrinfo with AI_NUMERICHOST.  A failed lookup is
 * checked for a shortage of descriptors, which neither mechanism reports
 * (out_of_fds).
 *
 * Every result is converted to one layout: each node is one malloc block
 * (the addrinfo, its address, its canonical name), so ctx_freeaddrinfo
 * frees any of them with free() whichever mechanism made it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_CARES
#include <ares.h>
#include <fcntl.h>
#include <poll.h>
#endif

#include "core/core.h"
#include "net/resolve.h"

/* ---- the result layout --------------------------------------------- */

struct ai_block {
	struct addrinfo ai; /* first: free(&ai) frees the block */
	struct sockaddr_storage sa;
	char canon[];
};

struct addrinfo *ctx__ai_new(int family, int socktype, int protocol,
			     const struct sockaddr *sa, socklen_t salen,
			     const char *canon)
{
	size_t cl = canon ? strlen(canon) + 1 : 0;
	if (salen > sizeof(struct sockaddr_storage))
		return NULL;
	struct ai_block *b = calloc(1, sizeof *b + cl);
	if (!b)
		return NULL;
	memcpy(&b->sa, sa, salen);
	b->ai.ai_family = family;
	b->ai.ai_socktype = socktype;
	b->ai.ai_protocol = protocol;
	b->ai.ai_addrlen = salen;
	b->ai.ai_addr = (struct sockaddr *)&b->sa;
	if (canon) {
		memcpy(b->canon, canon, cl);
		b->ai.ai_canonname = b->canon;
	}
	return &b->ai;
}

CTX_API void ctx_freeaddrinfo(struct addrinfo *res)
{
	while (res) {
		struct addrinfo *next = res->ai_next;
		free(res);
		res = next;
	}
}

/* Copy a getaddrinfo(3) list into our layout and free it: 0 or EAI_MEMORY. */
static int adopt_glibc(struct addrinfo *in, struct addrinfo **out)
{
	struct addrinfo *head = NULL, **tail = &head;
	int rc = 0;
	for (struct addrinfo *p = in; p; p = p->ai_next) {
		struct addrinfo *n = ctx__ai_new(p->ai_family, p->ai_socktype,
						 p->ai_protocol, p->ai_addr,
						 p->ai_addrlen, p->ai_canonname);
		if (!n) {
			rc = EAI_MEMORY;
			break;
		}
		n->ai_flags = p->ai_flags;
		*tail = n;
		tail = &n->ai_next;
	}
	freeaddrinfo(in);
	if (rc)
		ctx_freeaddrinfo(head);
	else
		*out = head;
	return rc;
}

/* getaddrinfo, then the conversion; errno kept for EAI_SYSTEM. */
static int gai_adopt(int (*fn)(const char *, const char *,
			       const struct addrinfo *, struct addrinfo **),
		     const char *node, const char *service,
		     const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo *r = NULL;
	int rc = fn(node, service, hints, &r);
	if (rc == 0)
		rc = adopt_glibc(r, res);
	return rc;
}

/* ---- choosing the mechanism ----------------------------------------- */

static _Atomic int forced; /* enum ctx__resolver */
static int (*_Atomic gai_fn)(const char *, const char *,
			     const struct addrinfo *, struct addrinfo **);

bool ctx__resolve_force(enum ctx__resolver r)
{
#ifndef HAVE_CARES
	if (r == CTX__RESOLVE_CARES)
		return false;
#endif
	atomic_store(&forced, r);
	return true;
}

void ctx__resolve_set_gai(int (*fn)(const char *, const char *,
				    const struct addrinfo *,
				    struct addrinfo **))
{
	atomic_store(&gai_fn, fn);
}

static enum ctx__resolver mechanism(void)
{
	int f = atomic_load(&forced);
	if (f != CTX__RESOLVE_DEFAULT)
		return f;
#ifdef HAVE_CARES
	const char *e = getenv("CTX_RESOLVER");
	if (e && strcmp(e, "getaddrinfo") == 0)
		return CTX__RESOLVE_THREADS;
	return CTX__RESOLVE_CARES;
#else
	return CTX__RESOLVE_THREADS;
#endif
}

/* ---- b. helper threads ----------------------------------------------- */

struct job {
	struct job *next;
	_Atomic int refs;       /* the caller's and the queue's/helper's */
	_Atomic bool abandoned; /* the caller left: skip if not started */
	char *node, *service;
	struct addrinfo hints;
	bool has_hints;
	bool at_work;           /* queued under the manual clock, counted */
	int rc, err;
	struct addrinfo *res;
	ctx_chan_t *done;       /* one int when rc/res are set */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, **tail;
	int threads, idle;
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.tail = &pool.head,
};

/* fork(): the child has none of the parent's helpers, but its copy of
 * the pool still counts them (idle ones too, so a submitter would queue
 * for one that never comes).  The child starts from an empty pool with
 * a fresh lock and condition variable; the jobs queued in the parent
 * belong to threads the child does not have, so they are left behind
 * (not freed: a helper of the parent may have been reading one).  The
 * lock is not taken around the fork: everything it guards is reset
 * here, and taking it there would order it against ctx__spawn's lock,
 * which pool_submit takes under it. */
static void pool_after_fork_child(void)
{
	pthread_mutex_init(&pool.mu, NULL);
	pthread_cond_init(&pool.cv, NULL);
	pool.head = NULL;
	pool.tail = &pool.head;
	pool.threads = pool.idle = 0;
}

__attribute__((constructor)) static void pool_fork_hooks(void)
{
	pthread_atfork(NULL, NULL, pool_after_fork_child);
}

int ctx__resolve_helpers(void)
{
	pthread_mutex_lock(&pool.mu);
	int n = pool.threads;
	pthread_mutex_unlock(&pool.mu);
	return n;
}

static void job_unref(struct job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	ctx_freeaddrinfo(j->res);
	ctx_chan_free(j->done);
	free(j->node);
	free(j->service);
	free(j);
}

static void job_run(struct job *j)
{
	int (*fn)(const char *, const char *, const struct addrinfo *,
		  struct addrinfo **) = atomic_load(&gai_fn);
	errno = 0;
	j->rc = gai_adopt(fn ? fn : getaddrinfo, j->node, j->service,
			  j->has_hints ? &j->hints : NULL, &j->res);
	j->err = errno;
	int one = 1;
	ctx_chan_send(ctx_background(), j->done, &one); /* capacity 1: never waits */
}

/* Pop the next job, waiting a while for one; NULL: time for the helper to
 * go (its count already dropped, under the lock, so a submitter sees it). */
static struct job *pool_next(void)
{
	struct timespec ts;
	pthread_mutex_lock(&pool.mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	while (!pool.head) {
		pool.idle++;
		int e = pthread_cond_timedwait(&pool.cv, &pool.mu, &ts);
		pool.idle--;
		if (e == ETIMEDOUT && !pool.head) {
			pool.threads--;
			pthread_mutex_unlock(&pool.mu);
			return NULL;
		}
	}
	struct job *j = pool.head;
	pool.head = j->next;
	if (!pool.head)
		pool.tail = &pool.head;
	pthread_mutex_unlock(&pool.mu);
	return j;
}

/* For ctx_dump: the pool's queue and its threads. */
static void helper_state(char *buf, size_t len)
{
	int queued = 0;
	pthread_mutex_lock(&pool.mu);
	for (struct job *j = pool.head; j; j = j->next)
		queued++;
	snprintf(buf, len, "%d lookups queued; %d helpers, %d idle", queued,
		 pool.threads, pool.idle);
	pthread_mutex_unlock(&pool.mu);
}

static const struct ctx__service helper_service = {
	.name = "ctx-resolve",
	.serves = "looks names up with getaddrinfo(3) for ctx_getaddrinfo",
	.state = helper_state,
};

static void *helper_main(void *arg)
{
	(void)arg;
	struct job *j;
	while ((j = pool_next())) {
		bool at_work = j->at_work;
		if (!atomic_load(&j->abandoned))
			job_run(j);
		job_unref(j);
		if (at_work)
			ctx__clock_work_end();
	}
	return NULL;
}

/* A helper gets the stack a thread of the program gets by default:
 * getaddrinfo and NSS modules use plenty of it. */
static int helper_spawn(void)
{
	return ctx__spawn(&helper_service, helper_main, NULL, 0);
}

/* Queue j (taking a reference for the queue) and make sure a helper will
 * take it: an idle one, a new one under the cap, or the next to finish.
 * Under the manual clock a job is work in progress until its helper is
 * done with it (wait/clock.c): the lookup runs in real time, and its
 * caller's wait on the channel must not let the clock jump meanwhile. */
static int pool_submit(struct job *j)
{
	int e = 0;
	atomic_fetch_add(&j->refs, 1);
	j->at_work = ctx__clock_work_begin();
	pthread_mutex_lock(&pool.mu);
	j->next = NULL;
	*pool.tail = j;
	pool.tail = &j->next;
	if (pool.idle == 0 && pool.threads < CTX__RESOLVE_MAX_HELPERS) {
		e = helper_spawn();
		if (e == 0)
			pool.threads++;
		else if (pool.threads > 0)
			e = 0; /* a running helper will get to it */
	}
	if (e) { /* no helper at all: take the job back */
		pool.head = NULL;
		pool.tail = &pool.head;
		atomic_fetch_sub(&j->refs, 1);
	}
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	if (e && j->at_work)
		ctx__clock_work_end();
	return e;
}

static struct job *job_new(const char *node, const char *service,
			   const struct addrinfo *hints)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	atomic_init(&j->refs, 1);
	j->done = ctx_chan_new(sizeof(int), 1);
	j->node = node ? strdup(node) : NULL;
	j->service = service ? strdup(service) : NULL;
	if (!j->done || (node && !j->node) || (service && !j->service)) {
		job_unref(j);
		return NULL;
	}
	if (hints) {
		j->has_hints = true;
		j->hints.ai_flags = hints->ai_flags;
		j->hints.ai_family = hints->ai_family;
		j->hints.ai_socktype = hints->ai_socktype;
		j->hints.ai_protocol = hints->ai_protocol;
	}
	return j;
}

static int resolve_threads(ctx_t *ctx, const char *node, const char *service,
			   const struct addrinfo *hints, struct addrinfo **res)
{
	struct job *j = job_new(node, service, hints);
	if (!j)
		return EAI_MEMORY;
	int e = pool_submit(j);
	if (e) {
		job_unref(j);
		errno = e;
		return EAI_SYSTEM;
	}
	int one;
	e = ctx_chan_recv(ctx, j->done, &one);
	if (e) { /* the context ended: leave the job to its helper */
		atomic_store(&j->abandoned, true);
		job_unref(j);
		errno = e;
		return EAI_SYSTEM;
	}
	int rc = j->rc;
	*res = j->res;
	j->res = NULL;
	e = j->err;
	job_unref(j);
	errno = e;
	return rc;
}

/* ---- a. c-ares -------------------------------------------------------- */

#ifdef HAVE_CARES
static pthread_once_t cares_once = PTHREAD_ONCE_INIT;
static int cares_init_status;

static void cares_init(void)
{
	cares_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

struct cares_q {
	bool done;
	int status;
	struct ares_addrinfo *ai;
};

static void cares_cb(void *arg, int status, int timeouts,
		     struct ares_addrinfo *res)
{
	(void)timeouts;
	struct cares_q *q = arg;
	q->done = true;
	q->status = status;
	q->ai = res;
}

/* Every descriptor the library makes is close-on-exec. */
static int cares_sock_cb(ares_socket_t fd, int type, void *arg)
{
	(void)type;
	(void)arg;
	return fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ? -1 : 0;
}

static int cares_eai(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		return EAI_NONAME;
	case ARES_ENODATA:
		return EAI_NODATA;
	case ARES_ENOMEM:
		return EAI_MEMORY;
	case ARES_ESERVICE:
		return EAI_SERVICE;
	case ARES_EBADFAMILY:
		return EAI_FAMILY;
	case ARES_EBADFLAGS:
		return EAI_BADFLAGS;
	case ARES_ETIMEOUT:
	case ARES_ESERVFAIL:
	case ARES_ECONNREFUSED:
		return EAI_AGAIN;
	default:
		return EAI_FAIL;
	}
}

static int cares_flags(int ai_flags)
{
	static const int map[][2] = {
		{ AI_CANONNAME, ARES_AI_CANONNAME },
		{ AI_NUMERICHOST, ARES_AI_NUMERICHOST },
		{ AI_PASSIVE, ARES_AI_PASSIVE },
		{ AI_NUMERICSERV, ARES_AI_NUMERICSERV },
		{ AI_V4MAPPED, ARES_AI_V4MAPPED },
		{ AI_ALL, ARES_AI_ALL },
		{ AI_ADDRCONFIG, ARES_AI_ADDRCONFIG },
	};
	int f = ARES_AI_ENVHOSTS; /* CARES_HOSTS may name the hosts file */
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (ai_flags & map[i][0])
			f |= map[i][1];
	return f;
}

/* The socket types, protocols and ports getaddrinfo(3) gives a service
 * under these hints, read off a lookup of a numeric host: 0 or EAI_*.
 * c-ares is asked for the name alone, because its own reading of
 * services differs: it refuses port 0 ("0", "", "65536"), reads "010"
 * as octal, and pairs a named service with every socket type, where
 * glibc keeps to the protocols /etc/services lists for it. */
static int cares_forms(const char *service, const struct addrinfo *hints,
		       struct addrinfo **forms)
{
	struct addrinfo h = { .ai_flags = AI_NUMERICHOST,
			      .ai_family = AF_INET };
	if (hints) {
		h.ai_flags |= hints->ai_flags & AI_NUMERICSERV;
		h.ai_socktype = hints->ai_socktype;
		h.ai_protocol = hints->ai_protocol;
	}
	return getaddrinfo("127.0.0.1", service, &h, forms);
}

/* Append one node per form for address n, in the forms' order (as
 * getaddrinfo orders its nodes: by address, then by socket type), with
 * the hints' flags as glibc sets them. */
static int cares_node(struct addrinfo ***tail, const struct addrinfo *forms,
		      const struct ares_addrinfo_node *n, const char *canon,
		      int flags)
{
	for (const struct addrinfo *f = forms; f; f = f->ai_next) {
		struct addrinfo *a = ctx__ai_new(n->ai_family, f->ai_socktype,
						 f->ai_protocol, n->ai_addr,
						 n->ai_addrlen, canon);
		if (!a)
			return EAI_MEMORY;
		/* sin_port and sin6_port lie at the same offset */
		in_port_t port = ((struct sockaddr_in *)f->ai_addr)->sin_port;
		((struct sockaddr_in *)a->ai_addr)->sin_port = port;
		a->ai_flags = flags;
		**tail = a;
		*tail = &a->ai_next;
		canon = NULL;
	}
	return 0;
}

static int cares_adopt(struct ares_addrinfo *ai, const struct addrinfo *hints,
		       const struct addrinfo *forms, struct addrinfo **res)
{
	struct addrinfo *head = NULL, **tail = &head;
	const char *canon = NULL;
	/* glibc's flags for no hints: AI_V4MAPPED | AI_ADDRCONFIG */
	int flags = hints ? hints->ai_flags : AI_V4MAPPED | AI_ADDRCONFIG;
	int rc = 0;
	if (flags & AI_CANONNAME)
		canon = ai->cnames ? ai->cnames->name : ai->name;
	for (struct ares_addrinfo_node *n = ai->nodes; n && !rc;
	     n = n->ai_next) {
		rc = cares_node(&tail, forms, n, canon, flags);
		canon = NULL;
	}
	if (rc == 0 && !head)
		rc = EAI_NONAME;
	if (rc)
		ctx_freeaddrinfo(head);
	else
		*res = head;
	return rc;
}

/* Drive the channel's sockets until the query is done or ctx ends:
 * 0, or the context's error. */
static int cares_drive(ctx_t *ctx, ares_channel ch, struct cares_q *q)
{
	while (!q->done) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pf[ARES_GETSOCK_MAXNUM];
		int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		nfds_t n = 0;
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;
			/* c-ares's own macros shift a signed 1 into bit 31. */
			if ((unsigned)bits & (1u << i))
				ev |= POLLIN;
			if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (ev)
				pf[n++] = (struct pollfd){ socks[i], ev, 0 };
		}
		struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
		int64_t t = tvp ? tv.tv_sec * CTX_SEC + tv.tv_usec * CTX_USEC
				: -1;
		int r = ctx_poll(ctx, pf, n, t);
		if (r < 0)
			return errno;
		if (r == 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (nfds_t i = 0; i < n; i++) {
			short rv = pf[i].revents;
			if (!rv)
				continue;
			ares_process_fd(ch,
				rv & (POLLIN | POLLERR | POLLHUP) ? pf[i].fd
								  : ARES_SOCKET_BAD,
				rv & (POLLOUT | POLLERR) ? pf[i].fd
							 : ARES_SOCKET_BAD);
		}
	}
	return 0;
}

/* A channel for one lookup; CTX_DNS_SERVER ("host[:port],...") replaces
 * resolv.conf's servers. NULL with errno set. */
static ares_channel cares_channel(int *rc)
{
	ares_channel ch;
	struct ares_options o = { .flags = 0 };
	int s = ares_init_options(&ch, &o, 0);
	if (s != ARES_SUCCESS) {
		*rc = s == ARES_ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
		errno = s == ARES_ENOMEM ? ENOMEM : EIO;
		return NULL;
	}
	const char *srv = getenv("CTX_DNS_SERVER");
	if (srv && *srv && ares_set_servers_ports_csv(ch, srv) != ARES_SUCCESS) {
		ares_destroy(ch);
		*rc = EAI_SYSTEM;
		errno = EINVAL;
		return NULL;
	}
	ares_set_socket_configure_callback(ch, cares_sock_cb, NULL);
	return ch;
}

/* Look node up with c-ares, driven on this thread: 0 with the answer in
 * *ai, EAI_* from c-ares, or EAI_SYSTEM with errno (ctx's error). */
static int cares_lookup(ctx_t *ctx, const char *node,
			const struct addrinfo *hints, struct ares_addrinfo **ai)
{
	int rc = EAI_SYSTEM;
	ares_channel ch = cares_channel(&rc);
	if (!ch)
		return rc;
	struct ares_addrinfo_hints ah = {
		.ai_flags = cares_flags(hints ? hints->ai_flags : 0),
		.ai_family = hints ? hints->ai_family : AF_UNSPEC,
	};
	struct cares_q q = { .done = false };
	ares_getaddrinfo(ch, node, NULL, &ah, cares_cb, &q);
	int e = cares_drive(ctx, ch, &q);
	ares_destroy(ch); /* closes its sockets; a pending query ends now */
	if (!e && q.status == ARES_SUCCESS) {
		*ai = q.ai;
		return 0;
	}
	if (q.ai)
		ares_freeaddrinfo(q.ai);
	errno = e;
	return e ? EAI_SYSTEM : cares_eai(q.status);
}

static int resolve_cares(ctx_t *ctx, const char *node, const char *service,
			 const struct addrinfo *hints, struct addrinfo **res)
{
	pthread_once(&cares_once, cares_init);
	if (cares_init_status != ARES_SUCCESS) {
		errno = ENOMEM;
		return EAI_SYSTEM;
	}
	struct addrinfo *forms = NULL;
	struct ares_addrinfo *ai = NULL;
	int rc = cares_forms(service, hints, &forms);
	if (rc == 0)
		rc = cares_lookup(ctx, node, hints, &ai);
	if (rc == 0) {
		rc = cares_adopt(ai, hints, forms, res);
		ares_freeaddrinfo(ai);
	}
	if (forms)
		freeaddrinfo(forms);
	return rc;
}
#endif

/* ---- the entry point -------------------------------------------------- */

/* Numeric hosts and a NULL node: answered at once, or EAI_NONAME when a
 * real lookup is needed. */
static int resolve_numeric(const char *node, const char *service,
			   const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h = { .ai_flags = AI_NUMERICHOST };
	if (hints) {
		h.ai_flags |= hints->ai_flags;
		h.ai_family = hints->ai_family;
		h.ai_socktype = hints->ai_socktype;
		h.ai_protocol = hints->ai_protocol;
	}
	return gai_adopt(getaddrinfo, node, service, &h, res);
}

/* Neither mechanism says when a lookup failed for want of a descriptor:
 * glibc answers EAI_NONAME (it could open neither the hosts file nor a
 * socket to a name server), c-ares EAI_AGAIN (no server reached) or,
 * when even resolv.conf could not be read, an init failure.  So a lookup
 * that failed so asks the system: if no descriptor can be had now, that
 * is the cause, and the caller learns EAI_SYSTEM with EMFILE or ENFILE,
 * as a socket for an address literal would say.  Errors of the input or
 * of the context stay as they are. */
static int out_of_fds(int rc)
{
	int e = errno;
	if (rc != EAI_NONAME && rc != EAI_AGAIN && rc != EAI_FAIL &&
	    rc != EAI_NODATA && !(rc == EAI_SYSTEM && e == EIO))
		return rc;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE))
		return EAI_SYSTEM;
	if (fd >= 0)
		close(fd);
	errno = e;
	return rc;
}

CTX_API int ctx_getaddrinfo(ctx_t *ctx, const char *node, const char *service,
			    const struct addrinfo *hints, struct addrinfo **res)
{
	if (!ctx || !res) {
		errno = EINVAL;
		return EAI_SYSTEM;
	}
	*res = NULL;
	int e = ctx_err(ctx);
	if (e) {
		errno = e;
		return EAI_SYSTEM;
	}
	if (!node && !service)
		return EAI_NONAME;
	int rc = resolve_numeric(node, service, hints, res);
	if (rc != EAI_NONAME || !node ||
	    (hints && (hints->ai_flags & AI_NUMERICHOST)))
		return rc;
#ifdef HAVE_CARES
	if (mechanism() == CTX__RESOLVE_CARES)
		return out_of_fds(resolve_cares(ctx, node, service, hints, res));
#endif
	return out_of_fds(resolve_threads(ctx, node, service, hints, res));
}
