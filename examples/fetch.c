/*
 * fetch: download N URLs in parallel, as a Go program would with an
 * errgroup: at most -j at a time, one overall deadline (-t seconds), and
 * Ctrl-C (or SIGTERM) cancels every transfer at once.
 *
 *   fetch [-j N] [-t SECONDS] [-c CAFILE] URL...
 *
 * -c trusts the certificates in CAFILE (PEM) for https, instead of the
 * system's (curl's --cacert): a test server's self-signed one, say.
 *
 * Prints one line per URL, in the order given: "URL: STATUS, N bytes, T
 * ms" for a transfer that got an answer (of any HTTP status, as Go's
 * http.Get: the status is printed, not judged), else "URL: ERROR".  A
 * transfer the deadline or a signal ended says so in the context's words
 * ("context deadline exceeded", "context canceled (signal INT
 * received)"), and so do URLs never started for want of a slot.  Exits 0
 * if every transfer got an answer, 1 otherwise, 2 for bad arguments.
 *
 * Each URL runs on a thread of its own, and libctx-curl pools keep-alive
 * connections for every thread, as Go's http.Client does: 200 URLs on
 * one server at -j 16 open about 16 connections, not 200.  Uses
 * libctx-curl.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ctx.h>
#include <ctx/curl.h>

struct job {
	const char *url;
	const char *cafile; /* -c, or NULL */
	size_t bytes;
	long status;
	CURLcode rc;
	int64_t ns;
	int not_started; /* ctx_group_go's error, if it did not run */
};

static size_t count(char *p, size_t size, size_t nmemb, void *arg)
{
	(void)p;
	((struct job *)arg)->bytes += size * nmemb;
	return size * nmemb;
}

/* One URL; a failure is this URL's only (the group is not cancelled, so
 * the others go on): the group's error stays 0 and each job reports. */
static int fetch_one(ctx_t *ctx, void *arg)
{
	struct job *j = arg;
	CURL *e = curl_easy_init();
	if (!e) {
		j->rc = CURLE_OUT_OF_MEMORY;
		return 0;
	}
	curl_easy_setopt(e, CURLOPT_URL, j->url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	if (j->cafile)
		curl_easy_setopt(e, CURLOPT_CAINFO, j->cafile);
	int64_t t0 = ctx_now();
	j->rc = ctx_curl_perform(ctx, e);
	j->ns = ctx_now() - t0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &j->status);
	curl_easy_cleanup(e);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fetch [-j N] [-t SECONDS] [-c CAFILE] URL...\n");
	return 2;
}

/* A whole argument as a number, or -1 (never a valid value here). */
static double number(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	return *s && !*end && !errno && v == v ? v : -1;
}

/* Why ctx ended, in its words: its error, and what caused it when that
 * says more (the signal). */
static const char *why_done(ctx_t *ctx, char *buf, size_t len)
{
	const char *err = ctx_strerror(ctx_err(ctx));
	const char *cause = ctx_cause_msg(ctx);

	if (cause && strcmp(cause, err))
		snprintf(buf, len, "%s (%s)", err, cause);
	else
		snprintf(buf, len, "%s", err);
	return buf;
}

/* The transfer ended by ctx rather than failing on its own: libcurl's
 * words for that ("Operation was aborted by an application callback")
 * would not say it was Ctrl-C. */
static bool ended_by(ctx_t *ctx, CURLcode rc)
{
	return ctx_err(ctx) && (rc == CURLE_OPERATION_TIMEDOUT ||
				rc == CURLE_ABORTED_BY_CALLBACK);
}

static void report(ctx_t *ctx, const struct job *j)
{
	char why[128];

	if (j->not_started)
		printf("%s: not started: %s\n", j->url,
		       j->not_started == ctx_err(ctx) ?
		       why_done(ctx, why, sizeof(why)) :
		       ctx_strerror(j->not_started));
	else if (ended_by(ctx, j->rc))
		printf("%s: %s after %.1f ms\n", j->url,
		       why_done(ctx, why, sizeof(why)),
		       (double)j->ns / CTX_MSEC);
	else if (j->rc != CURLE_OK)
		printf("%s: %s\n", j->url, curl_easy_strerror(j->rc));
	else
		printf("%s: %ld, %zu bytes, %.1f ms\n", j->url, j->status,
		       j->bytes, (double)j->ns / CTX_MSEC);
}

int main(int argc, char **argv)
{
	double limit = 4, secs = 10;
	const char *cafile = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "j:t:c:")) != -1) {
		if (opt == 'j')
			limit = number(optarg);
		else if (opt == 'c')
			cafile = optarg;
		else if (opt == 't')
			secs = number(optarg);
		else
			return usage();
	}
	if (optind >= argc || limit < 1 || limit > 1024 ||
	    limit != (int)limit || secs <= 0 || secs > 1e6)
		return usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* Ctrl-C and SIGTERM cancel everything under this context. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	CTX_AUTO ctx_t *sig = ctx_with_signals(ctx_background(), &sigs);
	CTX_AUTO ctx_t *ctx = sig ? ctx_with_timeout(sig, (int64_t)(secs * CTX_SEC))
				  : NULL;
	ctx_group_t *g = ctx ? ctx_group_new(ctx) : NULL;
	int n = argc - optind;
	struct job *jobs = calloc((size_t)n, sizeof *jobs);
	if (!g || !jobs) {
		perror("fetch");
		return 1;
	}
	ctx_group_set_limit(g, (int)limit);
	int e = 0;
	for (int i = 0; i < n; i++) {
		jobs[i].url = argv[optind + i];
		jobs[i].cafile = cafile;
		/* Once one could not start (the context ended while it waited
		 * for a slot), none of the rest can. */
		if (e || (e = ctx_group_go(g, fetch_one, &jobs[i])))
			jobs[i].not_started = e;
	}
	ctx_group_wait(g);
	ctx_group_free(g);

	int failed = 0;
	for (int i = 0; i < n; i++) {
		report(ctx, &jobs[i]);
		if (jobs[i].not_started || jobs[i].rc != CURLE_OK)
			failed = 1;
	}
	free(jobs);
	/* The transfers' threads are gone but their keep-alive connections
	 * wait in libctx-curl's pool: closed before libcurl is. */
	ctx_curl_close_idle();
	curl_global_cleanup();
	return failed;
}
