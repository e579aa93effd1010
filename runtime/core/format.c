/*
 * ctx_format: the chain printed the way Go's String() prints it,
 * "context.Background.WithCancel.WithDeadline(...)", root first, and
 * for a context that has ended, where its end came from (ctx_origin):
 * "context.Background.WithCancel [ended: ctx_cancel at main.c:42]".
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

struct out {
	char *buf;
	size_t len, used; /* used may exceed len: the length needed */
};

static void emit(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	size_t room = o->used < o->len ? o->len - o->used : 0;
	va_start(ap, fmt);
	int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

/* A deadline of its own that is earlier than the one it inherits makes
 * it a WithDeadline; a later one is kept (a deadline above may move
 * later, ctx_set_deadline) but until then a WithCancel, as Go has it. */
static void emit_cancel(struct out *o, ctx_t *c)
{
	int64_t own = atomic_load_explicit(&c->c.own, memory_order_relaxed);
	if (own == CTX__NEVER || own >= ctx__fixed_deadline(ctx__anc(c)))
		emit(o, ".WithCancel");
	else
		emit(o, ".WithDeadline(%lld.%09lld [%+.6fs])",
		     (long long)(own / CTX_SEC), (long long)(own % CTX_SEC),
		     (double)(own - ctx_now()) / CTX_SEC);
}

static void emit_node(struct out *o, ctx_t *c)
{
	switch (c->kind) {
	case CTX__ROOT_BACKGROUND:
		emit(o, "context.Background");
		break;
	case CTX__ROOT_TODO:
		emit(o, "context.TODO");
		break;
	case CTX__VALUE:
		emit(o, ".WithValue(key=%p, val=%p)", c->v.key, c->v.value);
		break;
	case CTX__WITHOUT:
		emit(o, ".WithoutCancel");
		break;
	case CTX__CANCEL:
		emit_cancel(o, c);
		break;
	default: /* a feature's kind: the name its hooks give */
		emit(o, "%s", ctx__kind_of(c) && ctx__kind_of(c)->name ?
				      ctx__kind_of(c)->name : ".WithCancel");
		break;
	}
}

int ctx__format(ctx_t *c, char *buf, size_t len, bool origin)
{
	size_t depth = 0;
	for (ctx_t *p = c; p; p = p->parent)
		depth++;
	ctx_t **chain = malloc(depth * sizeof(*chain));
	if (!chain) {
		errno = ENOMEM;
		return -1;
	}
	size_t i = depth;
	for (ctx_t *p = c; p; p = p->parent)
		chain[--i] = p;
	struct out o = { .buf = buf, .len = len };
	if (len)
		buf[0] = '\0';
	for (i = 0; i < depth; i++)
		emit_node(&o, chain[i]);
	free(chain);
	const char *end = origin ? ctx_origin(c) : NULL;
	if (end)
		emit(&o, " [ended: %s]", end);
	return o.used > INT32_MAX ? INT32_MAX : (int)o.used;
}

int ctx_format(ctx_t *c, char *buf, size_t len)
{
	if (!c || (!buf && len)) {
		errno = EINVAL;
		return -1;
	}
	return ctx__format(c, buf, len, true);
}
