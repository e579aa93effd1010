/*
 * libctx-curl: the caller's deadline on the wire.  A transfer made on
 * behalf of a request carries what is left of that request's time in a
 * grpc-timeout header, as a gRPC client does, so that the next service
 * stops when nobody waits for its answer any more (ctx_format_timeout
 * writes the value).
 *
 * libcurl cannot give back the header list set on a handle, so the
 * caller hands its list over: the line goes in it (a grpc-timeout line
 * already there is replaced, so that a list used for transfer after
 * transfer carries one value, the latest) and the list is set on the
 * handle.  Lines are only ever added through curl_slist_append, since
 * libcurl may have been given its own allocator: replacing one means
 * copying the others into a new list and freeing the old one.
 */
#include <stdio.h>
#include <strings.h>

#include "ctx/curl.h"

#define NAME "grpc-timeout"

/* A line of the header: "grpc-timeout: ...", or libcurl's "name;" for
 * an empty value (and "name:" that removes a header of libcurl's). */
static bool is_ours(const char *line)
{
	size_t n = sizeof(NAME) - 1;
	return !strncasecmp(line, NAME, n) &&
	       (line[n] == ':' || line[n] == ';');
}

/* list without its grpc-timeout lines: list itself if it has none, else
 * a new list (the old one freed).  *ok false when memory ran out (list
 * is then left as it was). */
static struct curl_slist *without_ours(struct curl_slist *list, bool *ok)
{
	struct curl_slist *l = list, *fresh = NULL;
	while (l && !is_ours(l->data))
		l = l->next;
	*ok = true;
	if (!l)
		return list;
	for (l = list; l; l = l->next) {
		struct curl_slist *t = is_ours(l->data) ? fresh :
			curl_slist_append(fresh, l->data);
		if (!t) {
			curl_slist_free_all(fresh);
			*ok = false;
			return list;
		}
		fresh = t;
	}
	curl_slist_free_all(list);
	return fresh;
}

CTX_API CURLcode ctx_curl_set_deadline_header(ctx_t *ctx, CURL *easy,
					      struct curl_slist **headers)
{
	char value[16], line[sizeof(NAME) + 2 + sizeof(value)];
	if (!ctx || !easy || !headers ||
	    ctx_format_timeout(ctx, value, sizeof value) < 0)
		return CURLE_BAD_FUNCTION_ARGUMENT;
	bool ok;
	struct curl_slist *list = without_ours(*headers, &ok);
	if (!ok)
		return CURLE_OUT_OF_MEMORY;
	*headers = list;
	CURLcode rc = CURLE_OK;
	if (value[0]) {
		snprintf(line, sizeof line, NAME ": %s", value);
		if ((list = curl_slist_append(list, line)))
			*headers = list;
		else
			rc = CURLE_OUT_OF_MEMORY;
	}
	/* Set even after a failure: the handle may still point at the
	 * list that without_ours freed. */
	CURLcode set = curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
	return rc ? rc : set;
}
