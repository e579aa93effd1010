/*
 * fetch: download N URLs in parallel, as a Go program would with an
 * errgroup: at most -j at a time, one overall deadline (-t seconds), and
 * Ctrl-C (or SIGTERM) cancels every transfer at once.
 *
 *   fetch [-j N] [-t SECONDS] URL...
 *
 * Prints one line per URL (status, bytes, time or the error); exits 0 if
 * every fetch succeeded, 1 otherwise.  Uses libctx-curl.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ctx.h>
#include <ctx/curl.h>

struct job {
	const char *url;
	size_t bytes;
	long status;
	CURLcode rc;
	int64_t ns;
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
	int64_t t0 = ctx_now();
	j->rc = ctx_curl_perform(ctx, e);
	j->ns = ctx_now() - t0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &j->status);
	curl_easy_cleanup(e);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fetch [-j N] [-t SECONDS] URL...\n");
	return 2;
}

int main(int argc, char **argv)
{
	int limit = 4, opt;
	double secs = 10;
	while ((opt = getopt(argc, argv, "j:t:")) != -1) {
		if (opt == 'j')
			limit = atoi(optarg);
		else if (opt == 't')
			secs = atof(optarg);
		else
			return usage();
	}
	if (optind >= argc || limit < 1 || secs <= 0)
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
	ctx_group_set_limit(g, limit);
	int started = 0;
	for (int i = 0; i < n; i++) {
		jobs[i].url = argv[optind + i];
		if (ctx_group_go(g, fetch_one, &jobs[i]) != 0)
			break; /* the context ended while waiting for a slot */
		started++;
	}
	ctx_group_wait(g);
	ctx_group_free(g);

	int failed = 0;
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		if (i >= started) {
			printf("%s: not started: %s\n", j->url,
			       ctx_strerror(ctx_err(ctx)));
			failed = 1;
		} else if (j->rc != CURLE_OK) {
			printf("%s: %s\n", j->url, curl_easy_strerror(j->rc));
			failed = 1;
		} else {
			printf("%s: %ld, %zu bytes, %.1f ms\n", j->url,
			       j->status, j->bytes, (double)j->ns / CTX_MSEC);
		}
	}
	free(jobs);
	curl_global_cleanup();
	return failed;
}
