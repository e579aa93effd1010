/*
 * libctx-curl: libcurl transfers that a context ends.
 * Link with `pkg-config --libs libctx-curl`.
 *
 * ctx_curl_perform is curl_easy_perform with a context: the transfer
 * runs on a private multi handle whose wait also watches the context's
 * ctx_done_fd, so the context ends it within a millisecond.  It returns
 * the transfer's CURLcode, CURLE_OPERATION_TIMEDOUT when the context's
 * deadline passed first (whatever CURLOPT_TIMEOUT says), and
 * CURLE_ABORTED_BY_CALLBACK when the context was cancelled (a done
 * context refuses at once).  The easy handle stays the caller's and can
 * be used again; CURLE_BAD_FUNCTION_ARGUMENT for NULL arguments.
 */
#ifndef CTX_CURL_H
#define CTX_CURL_H

#include <curl/curl.h>

#include <ctx.h>

#ifdef __cplusplus
extern "C" {
#endif

CTX_API CURLcode ctx_curl_perform(ctx_t *ctx, CURL *easy);

#ifdef __cplusplus
}
#endif

#endif
