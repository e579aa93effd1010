/* A program that starts each of the library's service threads (signal
 * dispatcher, timer thread, after-func runner) and exits cleanly:
 * tests/supp.sh runs it under valgrind with share/libctx/libctx.supp. */
#include <ctx.h>

static void nothing(void *arg) { (void)arg; }

int main(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	ctx_t *sig = ctx_with_signals(ctx_background(), &s);
	ctx_t *t = ctx_with_timeout(ctx_background(), CTX_MSEC);
	ctx_after_t *a = ctx_after_func(t, nothing, NULL);
	if (!sig || !t || !a || ctx_done_fd(t) < 0)
		return 1;
	ctx_sleep(ctx_background(), 5 * CTX_MSEC);
	ctx_after_stop(a);
	ctx_release(t);
	ctx_release(sig);
	return 0;
}
