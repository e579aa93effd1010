/*
 * Text that grows: the reports of ctx_dump and CTX_DEBUG=stuck are put
 * together in memory first, and written in one go once every lock is
 * dropped, so that a slow reader of the report (a pipe, a terminal)
 * never holds up a thread of the program.  Out of memory, the text
 * stops growing and says so at its end.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static bool grow(struct ctx__text *t, size_t need)
{
	if (t->oom)
		return false;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap - t->len < need)
		cap *= 2;
	char *b = cap == t->cap ? t->buf : realloc(t->buf, cap);
	if (!b) {
		t->oom = true;
		return false;
	}
	t->buf = b;
	t->cap = cap;
	return true;
}

void ctx__text_add(struct ctx__text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !grow(t, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

void ctx__text_free(struct ctx__text *t)
{
	free(t->buf);
	*t = (struct ctx__text){ 0 };
}
