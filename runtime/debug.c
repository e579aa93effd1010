/*
 * CTX_DEBUG=leaks: at exit, report every context that was created and
 * never freed, with the file and line that created it -- Go's vet
 * "lostcancel" check, at run time.
 *
 * The site comes from the header: each constructor is also a macro that
 * records __FILE__ and __LINE__ in a thread-local slot (ctx__site) before
 * calling the function, which takes and clears the slot.  Only when the
 * variable is set at start-up do nodes get a header that links them into
 * a registry; otherwise the cost is that one thread-local store.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctx-internal.h"

struct site_hdr {
	struct site_hdr *next, **pprev;
	const char *file;
	long line; /* keeps the header a multiple of 16 bytes */
};

bool ctx__debug_leaks;
static __thread const char *site_file;
static __thread int site_line;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct site_hdr *live;

CTX_API void ctx__site(const char *file, int line)
{
	site_file = file;
	site_line = line;
}

static void report(void)
{
	char text[256];
	unsigned n = 0;
	pthread_mutex_lock(&mu);
	for (struct site_hdr *h = live; h; h = h->next, n++) {
		ctx_format((ctx_t *)(h + 1), text, sizeof(text));
		fprintf(stderr, "libctx: leak: %s created at %s:%ld was never "
			"released\n", text, h->file ? h->file : "(unknown)",
			h->line);
	}
	pthread_mutex_unlock(&mu);
	if (n)
		fprintf(stderr, "libctx: %u context%s never released\n", n,
			n == 1 ? "" : "s");
}

__attribute__((constructor)) static void debug_init(void)
{
	const char *d = getenv("CTX_DEBUG");
	if (d && strstr(d, "leaks") && atexit(report) == 0)
		ctx__debug_leaks = true;
}

/* Allocate a node; with leak tracking, behind a header in the registry. */
void *ctx__node_alloc(size_t size)
{
	const char *file = site_file;
	int line = site_line;
	site_file = NULL;
	if (!ctx__debug_leaks)
		return ctx__malloc(size);
	struct site_hdr *h = ctx__malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	*h = (struct site_hdr){ .file = file, .line = line };
	pthread_mutex_lock(&mu);
	h->next = live;
	if (live)
		live->pprev = &h->next;
	h->pprev = &live;
	live = h;
	pthread_mutex_unlock(&mu);
	return h + 1;
}

void ctx__node_free(void *node)
{
	if (!ctx__debug_leaks) {
		free(node);
		return;
	}
	struct site_hdr *h = (struct site_hdr *)node - 1;
	pthread_mutex_lock(&mu);
	*h->pprev = h->next;
	if (h->next)
		h->next->pprev = h->pprev;
	pthread_mutex_unlock(&mu);
	free(h);
}
