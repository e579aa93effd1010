/*
 * Where a context was made, and where its end came from (ctx_origin).
 *
 * Sites.  Every node keeps the file and line that created it, always,
 * in 8 bytes: the address of the file's name in the low 48 bits (where a
 * user-space address lies on Linux's x86-64 and arm64 unless a program
 * asks the kernel for more) and the line in the top 16.  Making one is a
 * shift and an or, so creating a context pays nothing measurable for it.
 * The rare site that does not fit (a line past 65534, an address above)
 * goes to a table, and its index stands in its place, its line bits all
 * ones.  The constructors' site comes from the header's macros
 * (ctx__site, debug.c), as CTX_DEBUG=leaks has it; the cancels' from
 * their own (ctx__cancel_at and the rest, context.c, cause.c).
 *
 * Origins.  The end of a context is described by a record that is never
 * freed: one per (how, arg, site), so that every node an end reached
 * points to the same one without a count, and its text lives as long as
 * any context.  They are interned in chains whose heads are read with no
 * lock (a record is complete before it is published, with release), so
 * the lookup a cancel makes costs a hash and a few loads; only the first
 * end at a site takes the mutex and writes the text.  Records with a
 * fixed text (the library's own ends) are static where they are used.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define LINE_SHIFT 48
#define ADDR_MASK ((UINT64_C(1) << LINE_SHIFT) - 1)
#define IN_TABLE UINT64_C(0xffff) /* line bits of a site kept in the table */
#define CHAINS 256

struct big_site {
	const char *file;
	int line;
};

/* Two locks: the origin table's is held while a record's text is
 * written, which reads sites from the other's table. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;
static struct big_site *big;   /* under big_mu */
static size_t nbig, capbig;
static _Atomic(struct ctx__origin *) chains[CHAINS];

/* Under big_mu: the index of (file, line) in the table, added if new;
 * SIZE_MAX without memory. */
static size_t big_index(const char *file, int line)
{
	for (size_t i = 0; i < nbig; i++)
		if (big[i].file == file && big[i].line == line)
			return i;
	if (nbig == capbig) {
		size_t cap = capbig ? 2 * capbig : 16;
		struct big_site *b = realloc(big, cap * sizeof(*b));
		if (!b)
			return SIZE_MAX;
		big = b;
		capbig = cap;
	}
	big[nbig] = (struct big_site){ file, line };
	return nbig++;
}

ctx__site_t ctx__site_make_slow(const char *file, int line)
{
	if (!file)
		return 0;
	pthread_mutex_lock(&big_mu);
	size_t i = big_index(file, line);
	pthread_mutex_unlock(&big_mu);
	return i == SIZE_MAX ? 0 : IN_TABLE << LINE_SHIFT | (uint64_t)i;
}

static struct big_site big_at(ctx__site_t s)
{
	pthread_mutex_lock(&big_mu);
	struct big_site b = big[s & ADDR_MASK];
	pthread_mutex_unlock(&big_mu);
	return b;
}

const char *ctx__site_file(ctx__site_t s)
{
	if (s >> LINE_SHIFT == IN_TABLE)
		return big_at(s).file;
	return (const char *)(uintptr_t)(s & ADDR_MASK);
}

int ctx__site_line(ctx__site_t s)
{
	if (s >> LINE_SHIFT == IN_TABLE)
		return big_at(s).line;
	return (int)(s >> LINE_SHIFT);
}

/* ---- origins --------------------------------------------------------- */

/* "<file>:<line>" of s into buf, or what says it is unknown. */
static const char *where(char *buf, size_t len, ctx__site_t s)
{
	const char *file = s ? ctx__site_file(s) : NULL;
	if (!file)
		return "an unknown site";
	snprintf(buf, len, "%s:%d", file, ctx__site_line(s));
	return buf;
}

static const char *const calls[] = {
	[CTX__BY_CANCEL] = "ctx_cancel",
	[CTX__BY_CANCEL_CAUSE] = "ctx_cancel_cause",
	[CTX__BY_CANCEL_MSG] = "ctx_cancel_msg",
	[CTX__BY_RELEASE] = "ctx_release",
};

/* The words of an origin, malloc'd; NULL without memory. */
static char *describe(enum ctx__how how, int arg, ctx__site_t site)
{
	char at[512], *text = NULL;
	const char *w = where(at, sizeof(at), site);
	int n = -1;
	if (how <= CTX__BY_RELEASE)
		n = asprintf(&text, "%s at %s%s", calls[how], w, site ? "" :
			     " (through a pointer, CTX_AUTO, or no macro)");
	else if (how == CTX__BY_DEADLINE)
		n = asprintf(&text, "the deadline of the context made at %s",
			     w);
	else if (how == CTX__BY_SIGNAL)
		n = asprintf(&text, "signal SIG%s", sigabbrev_np(arg) ?
			     sigabbrev_np(arg) : "?");
	else if (how == CTX__BY_HANGUP)
		n = asprintf(&text, "the peer of the socket of the "
			     "ctx_with_hangup context made at %s hung up", w);
	else if (how == CTX__BY_IDLE)
		n = asprintf(&text, "the idle time of the ctx_with_idle "
			     "context made at %s passed", w);
	else if (how == CTX__BY_EXIT)
		n = asprintf(&text, "the process of the ctx_with_pidfd "
			     "context made at %s exited", w);
	else if (how == CTX__BY_PARENT)
		n = asprintf(&text, arg ? "the deadline of the parent "
			     "process's context passed (ctx_inherited)" :
			     "the parent process's context ended, or the "
			     "parent exited (ctx_inherited)");
	return n < 0 ? NULL : text;
}

static unsigned chain_of(enum ctx__how how, int arg, ctx__site_t site)
{
	uint64_t h = site * UINT64_C(0x9e3779b97f4a7c15);
	h ^= (uint64_t)how * 31 + (uint64_t)(unsigned)arg;
	return (unsigned)(h >> 56) % CHAINS;
}

static const struct ctx__origin *find(unsigned c, enum ctx__how how,
				      int arg, ctx__site_t site)
{
	for (const struct ctx__origin *o = atomic_load_explicit(
		     &chains[c], memory_order_acquire); o; o = o->next)
		if (o->how == how && o->arg == arg && o->site == site)
			return o;
	return NULL;
}

/* Under mu, after another look: make the record and publish it. */
static const struct ctx__origin *add(unsigned c, enum ctx__how how,
				     int arg, ctx__site_t site)
{
	const struct ctx__origin *old = find(c, how, arg, site);
	if (old)
		return old;
	struct ctx__origin *o = malloc(sizeof(*o));
	char *text = o ? describe(how, arg, site) : NULL;
	if (!text) {
		free(o);
		return NULL;
	}
	*o = (struct ctx__origin){ .how = how, .arg = arg, .site = site,
				   .text = text };
	o->next = atomic_load_explicit(&chains[c], memory_order_relaxed);
	atomic_store_explicit(&chains[c], o, memory_order_release);
	return o;
}

const struct ctx__origin *ctx__origin(enum ctx__how how, int arg,
				      ctx__site_t site)
{
	unsigned c = chain_of(how, arg, site);
	const struct ctx__origin *o = find(c, how, arg, site);
	if (o)
		return o;
	pthread_mutex_lock(&mu);
	o = add(c, how, arg, site);
	pthread_mutex_unlock(&mu);
	return o;
}

uintptr_t ctx__end_take(ctx_t *n, int *err, int *cause)
{
	ctx__lock(&n->lock);
	*err = atomic_load_explicit(&n->err, memory_order_relaxed);
	*cause = n->cause;
	uintptr_t end = ctx__end_get(n->c.end);
	ctx__unlock(&n->lock);
	return end;
}

const char *ctx_origin(ctx_t *ctx)
{
	ctx_t *n = ctx ? ctx__node(ctx) : NULL;
	if (!n || !ctx__check(n))
		return NULL;
	ctx__lock(&n->lock); /* ctx_cause_msg may be turning it into words */
	const struct ctx__origin *o = ctx__end_origin(n->c.end);
	ctx__unlock(&n->lock);
	return o ? o->text : "unknown (no memory to record it)";
}
