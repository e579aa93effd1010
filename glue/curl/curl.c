/*
 * libctx-curl: curl_easy_perform on a multi handle that watches the
 * context, with idle connections pooled for every thread, as Go's
 * http.Client (its DefaultTransport) keeps them.
 *
 * Waiting: curl_multi_poll takes extra descriptors; the context's
 * ctx_done_fd is one, so the wait wakes the moment the context ends
 * (including at its deadline, which makes the descriptor readable with no
 * thread of ours waiting).  A context that can never end has no
 * descriptor (-1, errno 0) and is simply not watched.
 *
 * Connections: libcurl caches idle connections in the multi handle that
 * ran their transfers.  A multi handle per thread (as this file had) keeps
 * them only while that thread lives, so a thread per transfer (an error
 * group's goroutine-style workers) reused nothing.  Sharing the cache
 * between threads through a share object (CURL_LOCK_DATA_CONNECT) is what
 * libcurl documents as unsupported for concurrent threads (up to 8.x, with
 * crash reports: a transfer hands its connection back after dropping the
 * share's lock, and another thread may take or free it in between).
 *
 * So the pool here holds whole multi handles, each with its connection
 * cache.  A call takes the most recently returned one (its connections
 * are the freshest), runs the transfer on it, and puts it back: a multi
 * handle is used by one thread at a time, as libcurl requires, but by any
 * thread.  A new one is made only when every pooled one is in use, so N
 * transfers at a time to one host open at most N connections, however
 * many threads run them.  The pool keeps at most idle_limit handles and
 * frees those idle longer than idle_timeout, looked at whenever a call
 * takes or returns one (no thread of its own); ctx_curl_close_idle frees
 * them all.  What this does not give: a transfer takes whichever idle
 * handle is newest, whatever hosts its connections lead to (each handle
 * keeps up to four, so hot hosts are usually there), and HTTP/2 streams
 * of different threads never share a connection.
 *
 * A transfer the context ends is removed from its multi handle mid-way.
 * libcurl closes its HTTP/1 connection then (a "premature" done) rather
 * than cache it half-read, but keeps an HTTP/2 one in its cache with the
 * stream neither finished nor reset (libcurl 7.88): the server's work
 * for it goes on, and the next transfer on that connection fails with
 * CURLE_HTTP2.  So that handle is freed, not pooled, which closes its
 * connections: the server sees the close, and its work stops (the curl
 * suite checks it for HTTP/1, check_grpc for HTTP/2).  A handle whose
 * own calls failed (out of memory) is freed too.
 *
 * Fork: the child starts with an empty pool.  The parent's handles are
 * left unfreed there, since freeing them would shut down TLS on sockets
 * the parent still uses.
 *
 * Lock: pool_lock guards the pool's list and settings only; no libcurl
 * call is made under it (freeing a handle closes connections).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "ctx/curl.h"

/* Go's DefaultTransport keeps at most 100 idle connections, each for 90
 * s.  The limit here counts multi handles, each with up to four idle
 * connections: 32 transfers at a time can all keep theirs. */
#define IDLE_LIMIT 32
#define IDLE_TIMEOUT (90 * CTX_SEC)

struct pooled {
	CURLM *m;
	int64_t since;       /* when it last went idle */
	struct pooled *next; /* the next older idle one */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pooled *idle; /* newest first */
static int idle_limit = IDLE_LIMIT;
static int64_t idle_timeout = IDLE_TIMEOUT; /* 0: none */

/* The code for a context that ended. */
static CURLcode ended(int err)
{
	return err == CTX_DEADLINE_EXCEEDED ? CURLE_OPERATION_TIMEDOUT
					    : CURLE_ABORTED_BY_CALLBACK;
}

/* The transfer's result, once curl_multi_perform says it is over: only
 * easy's own message counts. */
static CURLcode result_of(CURLM *m, CURL *easy)
{
	int left;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
			return msg->data.result;
	return CURLE_FAILED_INIT;
}

/* Drive the transfer until it ends or ctx does; *broken when ctx ended
 * it or a libcurl call on the multi handle failed, either of which
 * leaves the handle unfit for reuse (see the top). */
static CURLcode drive(ctx_t *ctx, CURLM *m, CURL *easy, int done_fd,
		      bool *broken)
{
	struct curl_waitfd w = { .fd = done_fd, .events = CURL_WAIT_POLLIN };
	int running = 1, e = 0;
	CURLMcode mc;
	while ((mc = curl_multi_perform(m, &running)) == CURLM_OK) {
		if ((e = ctx_err(ctx)))
			break;
		if (!running)
			return result_of(m, easy);
		/* The cap only bounds how long curl sleeps when it has no
		 * timer of its own; the done descriptor wakes it sooner. */
		mc = curl_multi_poll(m, done_fd >= 0 ? &w : NULL,
				     done_fd >= 0 ? 1 : 0, 1000, NULL);
		if (mc != CURLM_OK || (e = ctx_err(ctx)))
			break;
	}
	*broken = true;
	if (e)
		return ended(e);
	return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
					 : CURLE_FAILED_INIT;
}

/* A transfer that finished as its context ended left its message in the
 * queue: the next transfer on the handle must not read it as its own. */
static void forget_messages(CURLM *m)
{
	int left;
	while (curl_multi_info_read(m, &left))
		continue;
}

/* Free a list of handles (each alone in no multi handle's use). */
static void pooled_free(struct pooled *p)
{
	while (p) {
		struct pooled *next = p->next;
		curl_multi_cleanup(p->m);
		free(p);
		p = next;
	}
}

/* With pool_lock held: unlink the idle handles beyond the limit or older
 * than the timeout, for the caller to free once it has unlocked.  The
 * list is newest first, so they are its tail. */
static struct pooled *cut_surplus(int64_t now)
{
	struct pooled **pp = &idle;
	int n = 0;
	while (*pp && n < idle_limit &&
	       (!idle_timeout || now - (*pp)->since < idle_timeout)) {
		pp = &(*pp)->next;
		n++;
	}
	struct pooled *cut = *pp;
	*pp = NULL;
	return cut;
}

static void before_fork(void) { pthread_mutex_lock(&pool_lock); }
static void after_fork_parent(void) { pthread_mutex_unlock(&pool_lock); }
static void after_fork_child(void)
{
	/* The parent's handles, left alone (see the top); kept on a list
	 * of their own, so leak checkers see them as held, not lost. */
	static struct pooled *forsaken;
	if (idle) {
		struct pooled *last = idle;
		while (last->next)
			last = last->next;
		last->next = forsaken;
		forsaken = idle;
		idle = NULL;
	}
	pthread_mutex_init(&pool_lock, NULL);
}

static void pool_init(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* A multi handle for one transfer: the newest idle one, else a new one;
 * NULL when none can be made. */
static struct pooled *take(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, pool_init);
	pthread_mutex_lock(&pool_lock);
	struct pooled *stale = cut_surplus(ctx_now());
	struct pooled *p = idle;
	if (p)
		idle = p->next;
	pthread_mutex_unlock(&pool_lock);
	pooled_free(stale);
	if (!p && (p = malloc(sizeof *p)) && !(p->m = curl_multi_init())) {
		free(p);
		p = NULL;
	}
	if (p)
		p->next = NULL;
	return p;
}

/* Back to the pool, newest; the oldest goes if that makes one too many. */
static void give_back(struct pooled *p)
{
	pthread_mutex_lock(&pool_lock);
	p->since = ctx_now();
	p->next = idle;
	idle = p;
	struct pooled *cut = cut_surplus(p->since);
	pthread_mutex_unlock(&pool_lock);
	pooled_free(cut);
}

static CURLcode add_refused(CURLMcode mc)
{
	return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
					 : CURLE_BAD_FUNCTION_ARGUMENT;
}

CTX_API CURLcode ctx_curl_perform(ctx_t *ctx, CURL *easy)
{
	if (!ctx || !easy)
		return CURLE_BAD_FUNCTION_ARGUMENT;
	int e = ctx_err(ctx);
	if (e)
		return ended(e);
	errno = 0;
	int fd = ctx_done_fd(ctx);
	if (fd < 0 && errno)
		return CURLE_OUT_OF_MEMORY; /* no descriptor to wait on */
	struct pooled *p = take();
	if (!p)
		return CURLE_OUT_OF_MEMORY;
	bool broken = false;
	CURLcode rc;
	CURLMcode mc = curl_multi_add_handle(p->m, easy);
	if (mc != CURLM_OK) {
		rc = add_refused(mc); /* already in a multi handle, ... */
	} else {
		rc = drive(ctx, p->m, easy, fd, &broken);
		forget_messages(p->m);
		/* Mid-transfer, this leaves the connection to be closed
		 * with the handle (see the top). */
		if (curl_multi_remove_handle(p->m, easy) != CURLM_OK)
			broken = true;
	}
	if (broken)
		pooled_free(p);
	else
		give_back(p);
	return rc;
}

CTX_API void ctx_curl_close_idle(void)
{
	pthread_mutex_lock(&pool_lock);
	struct pooled *all = idle;
	idle = NULL;
	pthread_mutex_unlock(&pool_lock);
	pooled_free(all);
}

CTX_API int ctx_curl_set_idle_limit(int n)
{
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&pool_lock);
	int old = idle_limit;
	idle_limit = n;
	struct pooled *cut = cut_surplus(ctx_now());
	pthread_mutex_unlock(&pool_lock);
	pooled_free(cut);
	return old;
}

CTX_API int64_t ctx_curl_set_idle_timeout(int64_t ns)
{
	if (ns < 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&pool_lock);
	int64_t old = idle_timeout;
	idle_timeout = ns;
	struct pooled *cut = cut_surplus(ctx_now());
	pthread_mutex_unlock(&pool_lock);
	pooled_free(cut);
	return old;
}
