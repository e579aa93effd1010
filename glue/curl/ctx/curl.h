/*
 * libctx-curl: libcurl transfers that a context ends.
 * Link with `pkg-config --libs libctx-curl`.
 *
 * ctx_curl_perform is curl_easy_perform with a context: the transfer
 * runs on a multi handle whose wait also watches the context's
 * ctx_done_fd, so the context ends it within a millisecond.  It returns
 * the transfer's CURLcode, CURLE_OPERATION_TIMEDOUT when the context's
 * deadline passed first (whatever CURLOPT_TIMEOUT says), and
 * CURLE_ABORTED_BY_CALLBACK when the context was cancelled (a done
 * context refuses at once).  The easy handle stays the caller's and can
 * be used again; CURLE_BAD_FUNCTION_ARGUMENT for NULL arguments.
 *
 * Idle connections are pooled for the whole process, as Go's http.Client
 * pools them: a transfer on any thread reuses a keep-alive connection
 * another thread's transfer left, so N transfers at a time open about N
 * connections to a host, not one per thread.  The pool holds multi
 * handles, each with its own connection cache (see ctx_curl_perform(3)).
 *
 * ctx_curl_set_idle_limit: keep at most n idle multi handles (default
 * 32; 0 keeps none, so no connection outlives its transfer); returns the
 * previous limit, or -1 with errno EINVAL for n < 0.
 * ctx_curl_set_idle_timeout: free those idle for longer than ns
 * (default 90 s, as Go; 0: no limit), checked whenever a transfer starts
 * or ends; returns the previous timeout, or -1 with EINVAL for ns < 0.
 * ctx_curl_close_idle: free every idle one now, closing its connections
 * (Go's CloseIdleConnections); call it before curl_global_cleanup.
 *
 * ctx_curl_set_deadline_header: the context's remaining time as a
 * grpc-timeout header (ctx_format_timeout's value), so that the server
 * stops when the caller would stop waiting.  The line goes into the
 * caller's list *headers (NULL: a new list), replacing a grpc-timeout
 * line already there (none is added, and an old one is dropped, when the
 * context has no deadline), and the list is set on easy as
 * CURLOPT_HTTPHEADER.  Call it just before ctx_curl_perform; the caller
 * frees *headers (curl_slist_free_all) once easy no longer uses it.
 * CURLE_OK, CURLE_OUT_OF_MEMORY, CURLE_BAD_FUNCTION_ARGUMENT for NULL
 * arguments.
 */
#ifndef CTX_CURL_H
#define CTX_CURL_H

#include <curl/curl.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API CURLcode ctx_curl_perform(ctx_t *ctx, CURL *easy) CTX_NOEXCEPT;
CTX_API int ctx_curl_set_idle_limit(int n) CTX_NOEXCEPT;
CTX_API int64_t ctx_curl_set_idle_timeout(int64_t ns) CTX_NOEXCEPT;
CTX_API void ctx_curl_close_idle(void) CTX_NOEXCEPT;
CTX_API CURLcode ctx_curl_set_deadline_header(ctx_t *ctx, CURL *easy,
					      struct curl_slist **headers)
	CTX_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
