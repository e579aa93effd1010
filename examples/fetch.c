/*
 * fetch: download N URLs in parallel, as a Go program would with an
 * errgroup: at most -j at a time, one overall deadline (-t seconds), and
 * Ctrl-C (or SIGTERM) cancels every transfer at once.
 *
 *   fetch [-r] [-j N] [-t SECONDS] [-c CAFILE] URL...
 *
 * -c trusts the certificates in CAFILE (PEM) for https, instead of the
 * system's (curl's --cacert): a test server's self-signed one, say.
 *
 * -r (raw) makes each request by hand instead of through libcurl, as a
 * Go program would with net.Dial and bufio: an HTTP/1.0 GET over a
 * ctx_conn_t (ctx_dial and ctx_conn_new for http, ctx_ssl_dial for https
 * when built with libctx-ssl), the status line and the headers read with
 * ctx_conn_read_line, the body with ctx_conn_read.  Same lines, same
 * contexts; redirects are not followed.
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
#ifdef HAVE_OPENSSL
#include <ctx/ssl.h>
#else
typedef struct ssl_ctx_st SSL_CTX; /* no https in raw mode */
#endif

struct job {
	const char *url;
	const char *cafile; /* -c, or NULL */
	SSL_CTX *tls;       /* raw mode's for https (NULL: the system's) */
	size_t bytes;
	long status;
	CURLcode rc;
	int err;            /* raw mode: the errno that ended it, or 0 */
	bool raw;
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

/* ---- -r: the request by hand over a ctx_conn_t --------------------- */

/* A URL's parts: "http[s]://HOST[:PORT][/PATH]" (HOST may be "[v6]"). */
struct url {
	bool tls;
	char addr[300]; /* HOST:PORT for ctx_dial */
	char host[280]; /* HOST[:PORT] for the Host header */
	const char *path;
};

static int parse_url(const char *u, struct url *out)
{
	out->tls = strncmp(u, "https://", 8) == 0;
	if (!out->tls && strncmp(u, "http://", 7) != 0)
		return EINVAL;
	const char *h = u + (out->tls ? 8 : 7);
	size_t n = strcspn(h, "/?#");
	out->path = h[n] == '/' ? h + n : "/";
	if (n == 0 || n >= sizeof out->host)
		return EINVAL;
	snprintf(out->host, sizeof out->host, "%.*s", (int)n, h);
	const char *close = memchr(h, ']', n);
	const char *colon = memrchr(h, ':', n);
	bool port = colon && (!close || colon > close);
	snprintf(out->addr, sizeof out->addr, "%s%s", out->host,
		 port ? "" : out->tls ? ":443" : ":80");
	return 0;
}

static ctx_conn_t *raw_dial(ctx_t *ctx, const struct url *u, SSL_CTX *tls)
{
	if (u->tls) {
#ifdef HAVE_OPENSSL
		return ctx_ssl_dial(ctx, u->addr, tls);
#else
		(void)tls;
		errno = EPROTONOSUPPORT; /* built without libctx-ssl */
		return NULL;
#endif
	}
	int fd = ctx_dial(ctx, u->addr, SOCK_STREAM);
	return fd < 0 ? NULL : ctx_conn_new(fd);
}

/* The status line and the headers: the status, *len the body's
 * Content-Length (-1: until the end); -1 with errno. */
static long raw_head(ctx_t *ctx, ctx_conn_t *c, long long *len)
{
	char line[8192];
	long status = 0;
	*len = -1;
	ssize_t n = ctx_conn_read_line(ctx, c, line, sizeof line);
	if (n > 0 && sscanf(line, "HTTP/%*d.%*d %ld", &status) != 1)
		n = 0;
	while (n > 0 && strcspn(line, "\r\n") > 0) {
		if (strncasecmp(line, "content-length:", 15) == 0)
			*len = atoll(line + 15);
		n = ctx_conn_read_line(ctx, c, line, sizeof line);
	}
	if (n <= 0) {
		errno = n < 0 ? errno : EPROTO; /* ended before the body */
		return -1;
	}
	return status;
}

/* The body: its length, or until the end; 0 or an errno. */
static int raw_body(ctx_t *ctx, ctx_conn_t *c, long long len, size_t *bytes)
{
	char buf[16384];
	while (len < 0 || *bytes < (size_t)len) {
		size_t want = len < 0 || (size_t)len - *bytes > sizeof buf ?
				      sizeof buf : (size_t)len - *bytes;
		ssize_t n = ctx_conn_read(ctx, c, buf, want);
		if (n < 0)
			return errno;
		if (n == 0)
			return len < 0 ? 0 : EPROTO; /* cut short */
		*bytes += (size_t)n;
	}
	return 0;
}

static int raw_get(ctx_t *ctx, struct job *j)
{
	struct url u;
	char req[1024];
	long long len;
	int e = parse_url(j->url, &u);
	if (e)
		return e;
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n"
			 "User-Agent: fetch\r\nConnection: close\r\n\r\n",
			 u.path, u.host);
	if (n < 0 || (size_t)n >= sizeof req)
		return EINVAL;
	ctx_conn_t *c = raw_dial(ctx, &u, j->tls);
	if (!c)
		return errno;
	if (ctx_conn_write(ctx, c, req, (size_t)n) != n ||
	    (j->status = raw_head(ctx, c, &len)) < 0)
		e = errno;
	else
		e = raw_body(ctx, c, len, &j->bytes);
	ctx_conn_close(c);
	return e;
}

static int fetch_raw(ctx_t *ctx, void *arg)
{
	struct job *j = arg;
	int64_t t0 = ctx_now();
	j->err = raw_get(ctx, j);
	j->ns = ctx_now() - t0;
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: fetch [-r] [-j N] [-t SECONDS] [-c CAFILE] "
		"URL...\n");
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
static bool ended_by(ctx_t *ctx, const struct job *j)
{
	int e = ctx_err(ctx);
	if (j->raw)
		return e && j->err == e;
	return e && (j->rc == CURLE_OPERATION_TIMEDOUT ||
		     j->rc == CURLE_ABORTED_BY_CALLBACK);
}

static bool failed(const struct job *j)
{
	return j->not_started || j->rc != CURLE_OK || j->err;
}

static void report(ctx_t *ctx, const struct job *j)
{
	char why[128];

	if (j->not_started)
		printf("%s: not started: %s\n", j->url,
		       j->not_started == ctx_err(ctx) ?
		       why_done(ctx, why, sizeof(why)) :
		       ctx_strerror(j->not_started));
	else if (ended_by(ctx, j))
		printf("%s: %s after %.1f ms\n", j->url,
		       why_done(ctx, why, sizeof(why)),
		       (double)j->ns / CTX_MSEC);
	else if (j->err)
		printf("%s: %s\n", j->url, ctx_strerror(j->err));
	else if (j->rc != CURLE_OK)
		printf("%s: %s\n", j->url, curl_easy_strerror(j->rc));
	else
		printf("%s: %ld, %zu bytes, %.1f ms\n", j->url, j->status,
		       j->bytes, (double)j->ns / CTX_MSEC);
}

struct options {
	double limit, secs;
	const char *cafile;
	bool raw;
};

/* 0, or -1 for bad arguments. */
static int parse(int argc, char **argv, struct options *o)
{
	int opt;
	*o = (struct options){ .limit = 4, .secs = 10 };
	while ((opt = getopt(argc, argv, "j:t:c:r")) != -1) {
		if (opt == 'j')
			o->limit = number(optarg);
		else if (opt == 'c')
			o->cafile = optarg;
		else if (opt == 't')
			o->secs = number(optarg);
		else if (opt == 'r')
			o->raw = true;
		else
			return -1;
	}
	if (optind >= argc || o->limit < 1 || o->limit > 1024 ||
	    o->limit != (int)o->limit || o->secs <= 0 || o->secs > 1e6)
		return -1;
	return 0;
}

/* Raw mode's https trusts -c's file alone; NULL: the system's store
 * (libctx-ssl's own SSL_CTX). */
static SSL_CTX *raw_tls(const struct options *o)
{
#ifdef HAVE_OPENSSL
	if (!o->raw || !o->cafile)
		return NULL;
	SSL_CTX *t = SSL_CTX_new(TLS_client_method());
	if (t && SSL_CTX_load_verify_locations(t, o->cafile, NULL) == 1) {
		SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
		return t;
	}
	fprintf(stderr, "fetch: -c %s: cannot load it\n", o->cafile);
	SSL_CTX_free(t);
#else
	(void)o;
#endif
	return NULL;
}

/* Every URL through the group, at most -j at once. */
static void run(ctx_group_t *g, struct job *jobs, int n, char **urls,
		const struct options *o, SSL_CTX *tls)
{
	ctx_group_set_limit(g, (int)o->limit);
	int e = 0;
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct job){ .url = urls[i], .cafile = o->cafile,
					.tls = tls, .raw = o->raw };
		/* Once one could not start (the context ended while it waited
		 * for a slot), none of the rest can. */
		if (e || (e = ctx_group_go(g, o->raw ? fetch_raw : fetch_one,
					   &jobs[i])))
			jobs[i].not_started = e;
	}
	ctx_group_wait(g);
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse(argc, argv, &o) < 0)
		return usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	SSL_CTX *tls = raw_tls(&o);

	/* Ctrl-C and SIGTERM cancel everything under this context. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	CTX_AUTO ctx_t *sig = ctx_with_signals(ctx_background(), &sigs);
	CTX_AUTO ctx_t *ctx = sig ? ctx_with_timeout(sig, (int64_t)(o.secs *
								CTX_SEC))
				  : NULL;
	ctx_group_t *g = ctx ? ctx_group_new(ctx) : NULL;
	int n = argc - optind, bad = 0;
	struct job *jobs = calloc((size_t)n, sizeof *jobs);
	if (!g || !jobs) {
		perror("fetch");
		return 1;
	}
	run(g, jobs, n, argv + optind, &o, tls);
	ctx_group_free(g);
	for (int i = 0; i < n; i++) {
		report(ctx, &jobs[i]);
		bad |= failed(&jobs[i]);
	}
	free(jobs);
#ifdef HAVE_OPENSSL
	SSL_CTX_free(tls);
#endif
	/* The transfers' threads are gone but their keep-alive connections
	 * wait in libctx-curl's pool: closed before libcurl is. */
	ctx_curl_close_idle();
	curl_global_cleanup();
	return bad;
}
