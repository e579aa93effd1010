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
void ctx_cancel_msg(ctx_t *ctx, int cause, const char *fmt, ...)
{
	if (!ctx || !ctx__is_cancel(ctx))
		return;
	struct ctx__msg *m = NULL;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		m = ctx__msg_new(0, fmt, ap);
		va_end(ap);
	}
	ctx__cancel_msg(ctx, CTX_CANCELED, cause ? cause : CTX_CANCELED, m);
	ctx__msg_put(m);
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
	if (is_errno(cause) && !n->c.msg)
		return ctx_strerror(cause);
	/* A number gets words of its own, made once and kept with the
	 * node so that they live as long as it. */
	ctx__lock(&n->lock);
	if (!n->c.msg)
		n->c.msg = msg_of(0, "%d", cause);
	const char *s = n->c.msg ? n->c.msg->text : "(no memory)";
	ctx__unlock(&n->lock);
	return s;
}
