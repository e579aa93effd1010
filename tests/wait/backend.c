/* Prints the backend this process waits with (tests/uring.sh asks). */
#include <ctx.h>
#include <stdio.h>

int main(void)
{
	return puts(ctx_backend()) < 0;
}
