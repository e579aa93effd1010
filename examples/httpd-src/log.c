/*
 * log.c: httpd's log.  One line per event, on stderr (or the --log file
 * that stderr is pointed at), each tagged with what the context carries:
 * the connection and the request ID, so that a request's lines can be
 * picked out of a busy log however many threads write.  Diagnostics,
 * like Go's log package: plain stdio, not a libctx wait, so a log line
 * never waits on a context and is written even after one ended.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "httpd.h"

/* The values' keys: only their addresses matter. */
const char conn_key, req_key;

void hlog(ctx_t *ctx, const char *fmt, ...)
{
	const struct conn *c = ctx ? ctx_value(ctx, &conn_key) : NULL;
	const char *req = ctx ? ctx_value(ctx, &req_key) : NULL;
	char tag[64] = "", msg[512];
	va_list ap;

	if (c && req)
		snprintf(tag, sizeof(tag), "[conn-%lu %s] ", c->id, req);
	else if (c)
		snprintf(tag, sizeof(tag), "[conn-%lu] ", c->id);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "httpd: %8.3f %s%s\n",
		(double)(ctx_now() - srv.started) / CTX_SEC, tag, msg);
}

/* Point stderr at the log file, opened again: after a rotation the old
 * name is a new file.  0 or an errno value. */
int open_log(void)
{
	if (!opt.log)
		return 0;
	FILE *f = fopen(opt.log, "ae");
	if (!f)
		return errno;
	int e = dup2(fileno(f), STDERR_FILENO) < 0 ? errno : 0;
	fclose(f);
	return e;
}
