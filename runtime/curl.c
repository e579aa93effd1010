/*
 * libctx-curl: curl_easy_perform on a multi handle that watches the
 * context.
 *
 * curl_multi_poll takes extra descriptors: the context's ctx_done_fd is
 * one, so the wait wakes the moment the context ends (including at its
 * deadline, which makes the descriptor readable with no thread of ours
 * waiting).  A context that can never end has no descriptor (-1, errno
 * 0) and is simply not watched.
 *
 * Each thread keeps one multi handle across calls (freed when the thread
 * exits), so that its connection cache survives: a second GET to the same
 * host reuses the connection, as curl_easy_perform's would.
 */
#include <errno.h>
#include <pthread.h>

#include "ctx/curl.h"

/* The code for a context that ended. */
static CURLcode ended(int err)
{
	return err == CTX_DEADLINE_EXCEEDED ? CURLE_OPERATION_TIMEDOUT
					    : CURLE_ABORTED_BY_CALLBACK;
}

/* Drive the transfer until it ends or ctx does. */
static CURLcode drive(ctx_t *ctx, CURLM *m, int done_fd)
{
	struct curl_waitfd w = { .fd = done_fd, .events = CURL_WAIT_POLLIN };
	int running = 1;
	while (running) {
		CURLMcode mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK)
			return mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
							 : CURLE_FAILED_INIT;
		int e = ctx_err(ctx);
		if (e)
			return ended(e);
		if (!running)
			break;
		/* The cap only bounds how long curl sleeps when it has no
		 * timer of its own; the done descriptor wakes it sooner. */
		mc = curl_multi_poll(m, done_fd >= 0 ? &w : NULL,
				     done_fd >= 0 ? 1 : 0, 1000, NULL);
		if (mc != CURLM_OK)
			return CURLE_FAILED_INIT;
		if ((e = ctx_err(ctx)))
			return ended(e);
	}
	int left;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(m, &left)))
		if (msg->msg == CURLMSG_DONE)
			return msg->data.result;
	return CURLE_FAILED_INIT;
}

static pthread_key_t multi_key;
static pthread_once_t multi_once = PTHREAD_ONCE_INIT;
static int multi_key_err;

static void multi_free(void *m)
{
	curl_multi_cleanup(m);
}

static void multi_key_init(void)
{
	multi_key_err = pthread_key_create(&multi_key, multi_free);
}

/* This thread's multi handle; NULL when none can be made. */
static CURLM *thread_multi(void)
{
	pthread_once(&multi_once, multi_key_init);
	if (multi_key_err)
		return NULL;
	CURLM *m = pthread_getspecific(multi_key);
	if (!m && (m = curl_multi_init()) &&
	    pthread_setspecific(multi_key, m)) {
		curl_multi_cleanup(m);
		m = NULL;
	}
	return m;
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
	CURLM *m = thread_multi();
	if (!m)
		return CURLE_OUT_OF_MEMORY;
	CURLcode rc;
	if (curl_multi_add_handle(m, easy) != CURLM_OK) {
		rc = CURLE_BAD_FUNCTION_ARGUMENT; /* already in a multi */
	} else {
		rc = drive(ctx, m, fd);
		curl_multi_remove_handle(m, easy); /* reusable from here */
		if (rc != CURLE_OK) {
			/* Cut short: curl may keep the half-used connection
			 * in the cache; drop the cache with the handle. */
			pthread_setspecific(multi_key, NULL);
			curl_multi_cleanup(m);
		}
	}
	return rc;
}
