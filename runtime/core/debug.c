/*
 * CTX_DEBUG: the library's own checks, chosen once at start-up from the
 * environment (a comma- or space-separated list).
 *
 *  leaks   At exit, report every context that its creator never released,
 *          with the file and line that created it -- Go's vet "lostcancel"
 *          check, at run time -- listing under it the released ancestors
 *          it alone keeps alive, and every thread handle never joined or
 *          detached.
 *  checks  Handles carry a magic number and freed ones are poisoned and
 *          held back from malloc for a while, so a double release, a use
 *          after the last unref, a second join, detach or ctx_after_stop
 *          and the release of a borrowed context are reported on stderr
 *          with the function and the creating site, then abort().
 *  stuck   (or stuck=MS, 1000 by default) When a context ends, report on
 *          stderr each thread still under it MS later, and what it is
 *          doing (wait/stuck.c); deadline contexts are then enforced by
 *          the timer thread, so that their ends are seen when due.
 *
 * The site comes from the header: in C each constructor is also a macro
 * that records __FILE__ and __LINE__ in a thread-local slot (ctx__site,
 * the same as the public ctx_set_site, which C++ and wrappers call
 * themselves) before calling the function, which takes and clears the
 * slot.  Every node keeps it (packed, origin.c), for ctx_origin's
 * deadlines; only when one of the modes is on do nodes get a header
 * (magic, registry links);
 * otherwise the cost is that one thread-local store, and for every check
 * one branch on a flag that never changes.  A leak report says where a
 * leaked context that has ended got its end (ctx_origin).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* In front of every node while a mode is on; a multiple of 16 bytes so
 * the node keeps malloc's alignment. */
struct site_hdr {
	struct site_hdr *next, **pprev; /* registry; only with leaks */
	const char *file;
	int line;
	/* Atomic (relaxed): a group marks its context borrowed after it is
	 * in its parent's list, where a canceller's checks read it. */
	_Atomic uint32_t magic;
	size_t size; /* of the node, for the poisoning */
	size_t pad;
};

bool ctx__debug_leaks, ctx__debug_checks;
_Atomic int ctx__debug_stuck_ms;
_Atomic(ctx__end_fn *) ctx__end_hook;
static bool debug_any; /* either: nodes get a header */
static __thread const char *site_file;
static __thread int site_line;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct site_hdr *live;
static struct ctx__track *live_threads;

CTX_API void ctx_set_site(const char *file, int line)
{
	site_file = file;
	site_line = line;
}

/* What the macros of programs built before ctx_set_site call. */
CTX_API void ctx__site(const char *file, int line)
{
	ctx_set_site(file, line);
}

void ctx__site_take(const char **file, int *line)
{
	*file = site_file;
	*line = site_line;
	site_file = NULL;
}

void ctx__site_drop(void) { site_file = NULL; }

/* ---- checks ---------------------------------------------------------- */

void ctx__misuse(const char *fn, const char *what, const char *file,
		 int line)
{
	if (file)
		fprintf(stderr, "libctx: %s: %s (created at %s:%d)\n", fn, what,
			file, line);
	else
		fprintf(stderr, "libctx: %s: %s\n", fn, what);
	fflush(stderr);
	abort();
}

/*
 * Freed handles wait here, poisoned, before going back to malloc, so a
 * late use finds the poison rather than someone else's object.  Bounded:
 * the oldest goes back when the ring is full.
 */
#define QUARANTINE 4096
static void *quarantine[QUARANTINE];
static unsigned q_next;

static void hold_back(void *p)
{
	pthread_mutex_lock(&mu);
	void *old = quarantine[q_next];
	quarantine[q_next] = p;
	q_next = (q_next + 1) % QUARANTINE;
	pthread_mutex_unlock(&mu);
	free(old);
}

void ctx__retire(void *p, size_t size)
{
	if (!ctx__debug_checks || !p) {
		free(p);
		return;
	}
	memset(p, CTX__POISON_BYTE, size);
	hold_back(p);
}

/* The header of a node; roots have none. */
static struct site_hdr *hdr(ctx_t *c)
{
	return (struct site_hdr *)c - 1;
}

void ctx__check_ctx(ctx_t *c, const char *fn, bool releasing)
{
	if (c == ctx_background() || c == ctx_todo())
		return;
	struct site_hdr *h = hdr(c);
	uint32_t magic = atomic_load_explicit(&h->magic, memory_order_relaxed);
	if (magic == CTX__MAGIC_NODE)
		return;
	if (magic == CTX__MAGIC_BORROWED && !releasing)
		return;
	if (magic == CTX__MAGIC_BORROWED)
		ctx__misuse(fn, "releasing a borrowed context (ctx_group_ctx "
			    "or ctx_inherited: the group or the library owns "
			    "it; cancel it with ctx_cancel, or pair ctx_ref "
			    "with ctx_unref)", h->file, h->line);
	if (magic == CTX__DEAD)
		ctx__misuse(fn, "context used after its last reference was "
			    "dropped (released twice, or used after "
			    "ctx_unref)", h->file, h->line);
	ctx__misuse(fn, "not a context (a stray or corrupt pointer)", NULL,
		    0);
}

void ctx__check_parent(ctx_t *c, ctx_t *parent)
{
	if (parent == ctx_background() || parent == ctx_todo() ||
	    atomic_load_explicit(&hdr(parent)->magic, memory_order_relaxed) !=
		    CTX__DEAD)
		return;
	ctx__misuse("ctx_unref", "the parent of a context was freed while "
		    "the context still held it: the parent was released or "
		    "unreferenced once too often", hdr(parent)->file,
		    hdr(parent)->line);
	(void)c;
}

void ctx__set_borrowed(ctx_t *c)
{
	if (ctx__debug_checks)
		atomic_store_explicit(&hdr(c)->magic, CTX__MAGIC_BORROWED,
				      memory_order_relaxed);
}

/* Unlink h from the leak registry; under mu. */
static void untrack(struct site_hdr *h)
{
	if (!h->pprev)
		return;
	*h->pprev = h->next;
	if (h->next)
		h->next->pprev = h->pprev;
	h->pprev = NULL;
}

void ctx__set_lifelong(ctx_t *c)
{
	ctx__set_borrowed(c);
	if (!ctx__debug_leaks)
		return;
	pthread_mutex_lock(&mu);
	untrack(hdr(c));
	pthread_mutex_unlock(&mu);
}

/* ---- leak report ----------------------------------------------------- */

/* The references that c's live children (a merge's second parent's
 * too) and the timer heap hold. */
static int held_by_library(struct site_hdr *me)
{
	ctx_t *c = (ctx_t *)(me + 1);
	int n = ctx__is_cancel(c) && (c->flags & CTX__F_IN_HEAP) ? 1 : 0;
	for (struct site_hdr *h = live; h; h = h->next)
		if (((ctx_t *)(h + 1))->parent == c ||
		    ctx__second_parent((ctx_t *)(h + 1)) == c)
			n++;
	return n;
}

/* Still held by someone besides its children: its creator never let go
 * (or gave its reference to something that leaked). */
static bool leaked(struct site_hdr *h)
{
	ctx_t *c = (ctx_t *)(h + 1);
	return atomic_load(&c->refs) > held_by_library(h);
}

static bool tracked(ctx_t *c)
{
	if (c == ctx_background() || c == ctx_todo())
		return false;
	for (struct site_hdr *h = live; h; h = h->next)
		if (h + 1 == (void *)c)
			return true;
	return false;
}

/* "<file>:<line>", or "(unknown)" for a node or thread made without a
 * site (called through a pointer): its line is whatever was left. */
static const char *site_text(char *buf, size_t len, const char *file,
			     int line)
{
	if (!file)
		return "(unknown)";
	snprintf(buf, len, "%s:%d", file, line);
	return buf;
}

/* "<chain> created at <site>", after prefix, before suffix, and the
 * origin of its end if it has ended. */
static void print_node(const char *prefix, struct site_hdr *h,
		       const char *suffix)
{
	char text[256], at[512];
	ctx_t *c = (ctx_t *)(h + 1);
	const char *end = ctx_origin(c);
	ctx__format(c, text, sizeof(text), false);
	fprintf(stderr, "%s%s created at %s%s%s%s%s\n", prefix, text,
		site_text(at, sizeof(at), h->file, h->line), suffix,
		end ? " (it ended: " : "", end ? end : "", end ? ")" : "");
}

static unsigned report_contexts(void)
{
	unsigned n = 0;
	for (struct site_hdr *h = live; h; h = h->next) {
		if (!leaked(h))
			continue;
		n++;
		print_node("libctx: leak: ", h, " was never released");
		for (ctx_t *p = ((ctx_t *)(h + 1))->parent; tracked(p) &&
		     !leaked(hdr(p)); p = p->parent)
			print_node("libctx:   it keeps alive ", hdr(p),
				   " (released)");
	}
	return n;
}

static unsigned report_threads(void)
{
	unsigned n = 0;
	char at[512];
	for (struct ctx__track *t = live_threads; t; t = t->next, n++)
		fprintf(stderr, "libctx: leak: thread handle created at %s "
			"was never joined or detached\n",
			site_text(at, sizeof(at), t->file, t->line));
	return n;
}

static void report(void)
{
	pthread_mutex_lock(&mu);
	unsigned n = report_contexts(), t = report_threads();
	pthread_mutex_unlock(&mu);
	if (n)
		fprintf(stderr, "libctx: %u context%s never released\n", n,
			n == 1 ? "" : "s");
	if (t)
		fprintf(stderr, "libctx: %u thread handle%s never joined or "
			"detached\n", t, t == 1 ? "" : "s");
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += len)
		if ((p == list || strchr(", ", p[-1])) &&
		    (p[len] == '\0' || strchr(", ", p[len])))
			return true;
	return false;
}

/* "stuck" or "stuck=MS" in the list: MS (1000 for the bare word), or 0. */
static int stuck_ms(const char *list)
{
	for (const char *p = list; (p = strstr(p, "stuck")); p += 5) {
		if (p != list && !strchr(", ", p[-1]))
			continue;
		if (p[5] == '\0' || strchr(", ", p[5]))
			return 1000;
		char *end;
		long ms = p[5] == '=' ? strtol(p + 6, &end, 10) : -1;
		if (ms > 0 && ms <= INT_MAX && (*end == '\0' || strchr(", ", *end)))
			return (int)ms;
	}
	return 0;
}

__attribute__((constructor)) static void debug_init(void)
{
	const char *d = getenv("CTX_DEBUG");
	ctx__dumpsig_init();
#ifdef CTX_CHECKS_DEFAULT
	/* Sanitizer builds: checks unless CTX_DEBUG names the modes
	 * (CTX_DEBUG=off: none). */
	if (!d || !*d)
		d = "checks";
#endif
	if (!d)
		return;
	if (has_word(d, "leaks") && atexit(report) == 0)
		ctx__debug_leaks = true;
	ctx__debug_checks = has_word(d, "checks");
	ctx__debug_stuck_ms = stuck_ms(d);
	debug_any = ctx__debug_leaks || ctx__debug_checks;
}

/* ---- what ctx_dump asks ----------------------------------------------- */

ctx_t **ctx__live_nodes(size_t *n)
{
	*n = 0;
	if (!ctx__debug_leaks)
		return NULL;
	pthread_mutex_lock(&mu);
	size_t cap = 0;
	for (struct site_hdr *h = live; h; h = h->next)
		cap++;
	ctx_t **all = malloc((cap ? cap : 1) * sizeof(*all));
	for (struct site_hdr *h = live; all && h; h = h->next)
		if (ctx__try_ref((ctx_t *)(h + 1)))
			all[(*n)++] = (ctx_t *)(h + 1);
	pthread_mutex_unlock(&mu);
	return all;
}

/* ---- registries ------------------------------------------------------ */

void ctx__track_add(struct ctx__track *t)
{
	if (!ctx__debug_leaks)
		return;
	pthread_mutex_lock(&mu);
	t->next = live_threads;
	if (live_threads)
		live_threads->pprev = &t->next;
	t->pprev = &live_threads;
	live_threads = t;
	pthread_mutex_unlock(&mu);
}

void ctx__track_del(struct ctx__track *t)
{
	if (!ctx__debug_leaks || !t->pprev)
		return;
	pthread_mutex_lock(&mu);
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->pprev = NULL;
	pthread_mutex_unlock(&mu);
}

/* Allocate a node; in a debug mode, behind a header.  Takes the site,
 * and gives it packed in *site. */
void *ctx__node_alloc(size_t size, ctx__site_t *site, bool plain)
{
	const char *file = site_file;
	int line = site_line;
	site_file = NULL;
	*site = ctx__site_make(file, line);
	if (!debug_any)
		return plain ? ctx__cache_alloc(size) : ctx__malloc(size);
	struct site_hdr *h = ctx__malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	*h = (struct site_hdr){ .file = file, .line = line, .size = size };
	atomic_init(&h->magic, CTX__MAGIC_NODE);
	if (!ctx__debug_leaks)
		return h + 1;
	pthread_mutex_lock(&mu);
	h->next = live;
	if (live)
		live->pprev = &h->next;
	h->pprev = &live;
	live = h;
	pthread_mutex_unlock(&mu);
	return h + 1;
}

void ctx__node_free(void *node, size_t size, bool plain)
{
	if (!debug_any) {
		if (plain)
			ctx__cache_free(node, size);
		else
			free(node);
		return;
	}
	struct site_hdr *h = (struct site_hdr *)node - 1;
	if (ctx__debug_leaks) {
		pthread_mutex_lock(&mu);
		untrack(h);
		pthread_mutex_unlock(&mu);
	}
	if (!ctx__debug_checks) {
		free(h);
		return;
	}
	/* Poison the node and the magic; keep the site for the message. */
	memset(node, CTX__POISON_BYTE, h->size);
	atomic_store_explicit(&h->magic, CTX__DEAD, memory_order_relaxed);
	hold_back(h);
}
