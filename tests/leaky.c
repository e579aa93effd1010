/* A program that forgets one context: tests/debug.c runs it with and
 * without CTX_DEBUG=leaks.  The line numbers below are checked there. */
#include <ctx.h>

int main(void)
{
	ctx_t *kept = ctx_with_cancel(ctx_background());
	ctx_t *lost = ctx_with_timeout(kept, CTX_SEC); /* line 8 */
	ctx_t *fine = ctx_with_value(kept, "key", "value");
	ctx_release(fine);
	ctx_unref(kept); /* lost still holds kept: both are reported */
	(void)lost;
	return 0;
}
