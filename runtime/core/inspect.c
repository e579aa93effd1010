/*
 * Contexts described for people: what ctx_dump (wait/dump.c) and
 * CTX_DEBUG=stuck (wait/stuck.c) print of a context -- its kind, where
 * it was made, the deadline it brought, how it ended -- its chain up to
 * the root, and the tree of every live context that CTX_DEBUG=leaks
 * keeps (debug.c's registry).
 *
 * The caller holds a reference to each context given here, so the
 * nodes and their parents stay; their state may change while they are
 * read, and the words say what was seen.  Reading never ends a context:
 * a deadline that passed unnoticed is printed as passed, not enforced.
 */
#include <stdlib.h>

#include "core/core.h"

const char *const ctx__kind_names[CTX__KINDS] = {
	[CTX__ROOT_BACKGROUND] = "Background",
	[CTX__ROOT_TODO] = "TODO",
	[CTX__CANCEL] = "WithCancel",
	[CTX__VALUE] = "WithValue",
	[CTX__WITHOUT] = "WithoutCancel",
	[CTX__SIGNALS] = "WithSignals",
	[CTX__IDLE] = "WithIdle",
	[CTX__HANGUP] = "WithHangup",
	[CTX__PIDFD] = "WithPidfd",
	[CTX__INHERITED] = "Inherited",
	[CTX__MERGE] = "WithMerge",
	[CTX__GRACE] = "WithGrace",
};

static double secs(int64_t ns)
{
	return (double)ns / CTX_SEC;
}

/* The deadline c brought, if it brought one: its own, earlier than
 * what it inherited. */
static void deadline_text(ctx_t *c, struct ctx__text *t)
{
	int64_t d, above;
	if (ctx__is_root(c) || !ctx_deadline(c, &d) ||
	    (ctx_deadline(c->parent, &above) && above <= d))
		return;
	int64_t left = d - ctx_now();
	if (left >= 0)
		ctx__text_add(t, ", deadline in %.3f s", secs(left));
	else
		ctx__text_add(t, ", deadline passed %.3f s ago", secs(-left));
}

void ctx__node_text(ctx_t *c, struct ctx__text *t)
{
	ctx__text_add(t, "%s", ctx__kind_name(c));
	if (ctx__is_root(c))
		return;
	const char *file = ctx__site_file(c->site);
	if (file)
		ctx__text_add(t, " made at %s:%d", file,
			      ctx__site_line(c->site));
	else
		ctx__text_add(t, " made at an unknown place");
	if (c->kind == CTX__VALUE)
		ctx__text_add(t, " (key %p)", c->v.key);
	deadline_text(c, t);
}

int ctx__ended(ctx_t *c)
{
	ctx_t *n = ctx__node(c);
	return n ? atomic_load_explicit(&n->err, memory_order_acquire) : 0;
}

/* "context canceled (cause: ...): ctx_cancel at main.c:30" */
void ctx__end_text(ctx_t *c, struct ctx__text *t)
{
	int e = ctx__ended(c);
	if (!e) {
		ctx__text_add(t, "live");
		return;
	}
	const char *words = ctx_cause_msg(c), *origin = ctx_origin(c);
	ctx__text_add(t, "%s", ctx_strerror(e));
	if (words && ctx_cause(c) != e)
		ctx__text_add(t, " (cause: %s)", words);
	if (origin)
		ctx__text_add(t, "; %s", origin);
}

void ctx__chain_text(ctx_t *c, const char *indent, struct ctx__text *t)
{
	for (; c; c = c->parent) {
		ctx__text_add(t, "%s", indent);
		ctx__node_text(c, t);
		ctx__text_add(t, "\n");
	}
}

/* ---- the tree of live contexts (CTX_DEBUG=leaks) ----------------------- */

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(ctx_t *const *)a;
	uintptr_t y = (uintptr_t)*(ctx_t *const *)b;
	return x < y ? -1 : x > y;
}

/* The index of p among the n sorted nodes, or -1 (a root). */
static long index_of(ctx_t **all, size_t n, ctx_t *p)
{
	ctx_t **hit = bsearch(&p, all, n, sizeof(*all), by_address);
	return hit ? (long)(hit - all) : -1;
}

/* One node of the tree, depth levels in. */
static void tree_line(ctx_t *c, size_t depth, struct ctx__text *t)
{
	ctx__text_add(t, "%*s", (int)(2 * depth + 2), "");
	ctx__node_text(c, t);
	if (depth == 0 && c->parent && ctx__is_root(c->parent))
		ctx__text_add(t, ", under %s", ctx__kind_name(c->parent));
	if (ctx__ended(c)) {
		ctx__text_add(t, ", ended: ");
		ctx__end_text(c, t);
	}
	ctx__text_add(t, "\n");
}

/* The links of the tree: par[i] is i's parent (-1: none among them),
 * kid[i] its first child, next[i] its next sibling. */
struct tree {
	ctx_t **all;
	size_t n;
	long *par, *kid, *next;
};

static bool tree_build(struct tree *tr)
{
	long *m = malloc(3 * (tr->n ? tr->n : 1) * sizeof(*m));
	if (!m)
		return false;
	tr->par = m;
	tr->kid = m + tr->n;
	tr->next = m + 2 * tr->n;
	qsort(tr->all, tr->n, sizeof(*tr->all), by_address);
	for (size_t i = 0; i < tr->n; i++) {
		tr->par[i] = index_of(tr->all, tr->n, tr->all[i]->parent);
		tr->kid[i] = -1;
	}
	for (size_t i = tr->n; i-- > 0;) {
		long p = tr->par[i];
		tr->next[i] = p >= 0 ? tr->kid[p] : -1;
		if (p >= 0)
			tr->kid[p] = (long)i;
	}
	return true;
}

/* Depth first from top, without recursion: a chain may be very long. */
static void tree_walk(const struct tree *tr, long top, struct ctx__text *t)
{
	size_t depth = 0;
	for (long j = top;;) {
		tree_line(tr->all[j], depth, t);
		if (tr->kid[j] >= 0) {
			j = tr->kid[j];
			depth++;
			continue;
		}
		while (j != top && tr->next[j] < 0) {
			j = tr->par[j];
			depth--;
		}
		if (j == top)
			return;
		j = tr->next[j];
	}
}

bool ctx__tree_text(struct ctx__text *t)
{
	struct tree tr = { 0 };
	if (!ctx__debug_leaks)
		return false;
	tr.all = ctx__live_nodes(&tr.n);
	if (!tr.all || !tree_build(&tr))
		ctx__text_add(t, "  (no memory to list them)\n");
	for (size_t i = 0; tr.par && i < tr.n; i++)
		if (tr.par[i] < 0)
			tree_walk(&tr, (long)i, t);
	if (tr.all && !tr.n)
		ctx__text_add(t, "  none\n");
	for (size_t i = 0; i < tr.n; i++)
		ctx_unref(tr.all[i]);
	free(tr.par);
	free(tr.all);
	return true;
}
