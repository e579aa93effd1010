/* A program that forgets one context and one thread handle: tests/debug.c
 * runs it with and without CTX_DEBUG=leaks.  The line numbers below are
 * checked there. */
#include <ctx.h>

static void *nothing(ctx_t *ctx, void *arg) { (void)ctx; return arg; }

int main(void)
{
	ctx_t *kept = ctx_with_cancel(ctx_background());
	ctx_t *lost = ctx_with_timeout(kept, CTX_SEC); /* line 11 */
	ctx_t *fine = ctx_with_value(kept, "key", "value");
	ctx_release(fine);
	ctx_unref(kept); /* released: lost alone keeps it, listed under it */
	(void)lost;
	ctx_thread_t *joined, *forgotten, *detached;
	ctx_thread_create(&joined, ctx_background(), nothing, NULL);
	ctx_thread_create(&forgotten, ctx_background(), nothing, NULL); /* 18 */
	ctx_thread_create(&detached, ctx_background(), nothing, NULL);
	ctx_thread_join(ctx_background(), joined, NULL);
	ctx_thread_detach(detached);
	/* A constructor that refuses its arguments leaves no site behind:
	 * the context made next through a pointer, which records none,
	 * leaks as "(unknown)", not as leaky.c:26. */
	ctx_t *(*with_cancel)(ctx_t *) = ctx_with_cancel;
	(void)ctx_with_signals(ctx_background(), NULL); /* line 26 */
	(void)with_cancel(ctx_background());
	ctx_t *ended = ctx_with_cancel(ctx_background()); /* line 28 */
	ctx_cancel(ended); /* its origin in the report: line 29 */
	return 0;
}
