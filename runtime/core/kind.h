/*
 * The kinds' hooks: what the core must do per kind of node, filled in by
 * the feature that makes nodes of that kind, so that the core
 * (context.c, format.c), the timer thread (timer.c) and the watcher
 * thread (watch.c) call no feature
 * by name -- as libev and libuv give each backend a table of functions.
 *
 * Each feature sets its kind's entry before main, from a constructor in
 * its own file: a node of a kind can exist only if the file that makes
 * it is linked, and then its hooks are set.  Kinds without an entry
 * (the roots, plain cancel, value and without-cancel nodes) need none.
 * Every hook may be NULL.
 */
#ifndef CTX_KIND_H
#define CTX_KIND_H

struct ctx__kind_hooks {
	/* How ctx_format prints the node: ".WithSignals". */
	const char *name;
	/* ctx_release, before its cancel: what must be undone before the
	 * release returns, even while another holder keeps the node
	 * (a signal context gives the signals back). */
	void (*release)(ctx_t *c);
	/* The node is being freed, with no lock held: give back what the
	 * kind holds outside the node (its links too).  Runs after
	 * release, if that ran. */
	void (*free)(ctx_t *c);
	/* A deadline of the node's own that moves, and that its `deadline`
	 * field therefore does not hold (an idle context's): it may end the
	 * node sooner.  Asked by ctx_deadline (through ctx__deadline_of)
	 * and by the timer thread, which enforces it. */
	int64_t (*deadline)(ctx_t *n);
	/* The timer thread found the live node n due (its deadline hook's
	 * time passed): end it, or say true to be asked again at the
	 * deadline the hook gives then (it moved). */
	bool (*fire)(ctx_t *n);
	/* The watcher thread (watch.c) saw the descriptor of the watched
	 * node n report: end it (it must).  Called with a reference held
	 * and no lock. */
	void (*ready)(ctx_t *n);
	/* A deadline the node takes from outside its chain, as it takes
	 * its ancestor's: part of its effective deadline (c.deadline,
	 * core.h), which waiters sleep until (a merge's other parent's; a
	 * grace's parent's plus the grace).  CTX__NEVER: none. */
	int64_t (*inherit)(ctx_t *n);
	/* That deadline passed (ctx__check found it so): end the node the
	 * way its kind ends then, or see that it moved. */
	void (*expire)(ctx_t *n);
};

/* Indexed by enum ctx__kind; written before main only. */
extern const struct ctx__kind_hooks *ctx__kinds[CTX__KINDS];

/* The hooks of c's kind, or NULL. */
static inline const struct ctx__kind_hooks *ctx__kind_of(const ctx_t *c)
{
	return ctx__kinds[c->kind];
}

#endif
