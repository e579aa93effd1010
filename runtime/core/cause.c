/*
 * Causes with words: ctx_cancel_msg and ctx_cause_msg.
 *
 * A cause is an int, so that cancelling stays a store; words are an
 * option on top.  The text is copied once into a reference-counted
 * message that every node the cancellation ends points to (mark() in
 * context.c takes a reference for each), so descendants report the same
 * words and the text lives as long as the last node holding it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct ctx__msg *ctx__msg_new(int signo, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int len = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		return NULL;
	struct ctx__msg *m = ctx__malloc(sizeof(*m) + (size_t)len + 1);
	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	m->signo = signo;
	m->origin = NULL;
	vsnprintf(m->text, (size_t)len + 1, fmt, ap);
	return m;
}

void ctx__msg_put(struct ctx__msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1,
					   memory_order_acq_rel) == 1)
		free(m);
}

static struct ctx__msg *msg_of(int signo, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct ctx__msg *m = ctx__msg_new(signo, fmt, ap);
	va_end(ap);
	return m;
}

/* Without memory for the words the cancellation still happens, with its
 * cause: ending the context matters more than describing it. */
static void cancel_msg(const char *file, int line, ctx_t *ctx, int cause,
		       const char *fmt, va_list ap)
{
	if (!ctx || !ctx__is_cancel(ctx) ||
	    atomic_load_explicit(&ctx->err, memory_order_relaxed))
		return;
	const struct ctx__origin *o = ctx__origin(
		CTX__BY_CANCEL_MSG, 0, ctx__site_make(file, line));
	struct ctx__msg *m = fmt ? ctx__msg_new(0, fmt, ap) : NULL;
	uintptr_t end = ctx__end_of_origin(o);
	if (m) {
		m->origin = o;
		end = (uintptr_t)m;
	}
	ctx__cancel_end(ctx, CTX_CANCELED, cause ? cause : CTX_CANCELED, end);
	ctx__msg_put(m);
}

CTX_API void ctx__cancel_msg_at(const char *file, int line, ctx_t *ctx,
				int cause, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cancel_msg(file, line, ctx, cause, fmt, ap);
	va_end(ap);
}

/* Without the macro (a pointer, C++): the site ctx_set_site gave. */
void ctx_cancel_msg(ctx_t *ctx, int cause, const char *fmt, ...)
{
	const char *file;
	int line;
	ctx__site_take(&file, &line);
	va_list ap;
	va_start(ap, fmt);
	cancel_msg(file, line, ctx, cause, fmt, ap);
	va_end(ap);
}

/* An errno value has a name; anything else (an application's own code)
 * would print as "Unknown error N" or, worse, as an unrelated errno's
 * text if it happens to collide, so it prints as its number. */
static bool is_errno(int e)
{
	return e == CTX_CANCELED || e == CTX_DEADLINE_EXCEEDED ||
	       (e > 0 && strerrorname_np(e) != NULL);
}

const char *ctx_cause_msg(ctx_t *ctx)
{
	int cause = ctx ? ctx_cause(ctx) : 0;
	if (!cause)
		return NULL;
	ctx_t *n = ctx__node(ctx);
	ctx__lock(&n->lock);
	struct ctx__msg *m = ctx__end_msg(n->c.end);
	/* A number gets words of its own, made once and kept with the
	 * node so that they live as long as it; they keep the origin. */
	if (!m && !is_errno(cause) && (m = msg_of(0, "%d", cause))) {
		m->origin = ctx__end_origin(n->c.end);
		n->c.end = (uintptr_t)m;
	}
	const char *s = m ? m->text : is_errno(cause) ? ctx_strerror(cause) :
		"(no memory)";
	ctx__unlock(&n->lock);
	return s;
}
