/*
 * Programs that misuse the library on purpose, one per argument, for
 * tests/checks.c to run with and without CTX_DEBUG=checks.  The line of
 * each handle's creation is printed first ("site <line>") so the test can
 * look for it in the report.
 */
#include <stdio.h>
#include <string.h>

#include <ctx.h>

#define SITE() printf("site %d\n", __LINE__ + 1), fflush(stdout)

static void *until_cancelled(ctx_t *ctx, void *arg)
{
	ctx_wait(ctx);
	return arg;
}

static void *returns(ctx_t *ctx, void *arg)
{
	(void)ctx;
	return arg;
}

static void nothing(void *arg) { (void)arg; }

static void double_release(void)
{
	SITE();
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_release(c);
	ctx_release(c);
}

static void use_after_unref(void)
{
	SITE();
	ctx_t *c = ctx_with_timeout(ctx_background(), CTX_SEC);
	ctx_unref(c);
	ctx_err(c);
}

/* The parent released twice: its child still held it. */
static void parent_released_twice(void)
{
	SITE();
	ctx_t *p = ctx_with_cancel(ctx_background());
	ctx_t *c = ctx_with_value(p, "k", "v");
	ctx_release(p);
	ctx_release(p);
	ctx_release(c);
}

static void join_twice(void)
{
	ctx_thread_t *t;
	ctx_thread_create(&t, ctx_background(), returns, NULL);
	ctx_thread_join(ctx_background(), t, NULL);
	ctx_thread_join(ctx_background(), t, NULL);
}

static void detach_twice(void)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_thread_t *t;
	SITE();
	ctx_thread_create(&t, c, until_cancelled, NULL);
	ctx_thread_detach(t);
	ctx_thread_detach(t);
}

static void join_after_detach(void)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_thread_t *t;
	SITE();
	ctx_thread_create(&t, c, until_cancelled, NULL);
	ctx_thread_detach(t);
	ctx_thread_join(ctx_background(), t, NULL);
}

static void after_stop_twice(void)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func(c, nothing, NULL);
	ctx_after_stop(a);
	ctx_after_stop(a);
	ctx_release(c);
}

static void slow(void *arg)
{
	(void)arg;
	ctx_sleep(ctx_background(), 500 * CTX_MSEC);
}

/* The same while the runner still holds the handle: fn runs (slowly). */
static void after_stop_twice_fired(void)
{
	ctx_t *c = ctx_with_cancel(ctx_background());
	ctx_after_t *a = ctx_after_func(c, slow, NULL);
	ctx_release(c);
	ctx_after_stop(a);
	ctx_after_stop(a);
}

static void release_borrowed(void)
{
	ctx_group_t *g = ctx_group_new(ctx_background());
	ctx_release(ctx_group_ctx(g));
	ctx_group_free(g);
}

static ctx_chan_t *handoff; /* a thread's own handle, once it is set */

static void *join_myself(ctx_t *ctx, void *arg)
{
	ctx_thread_t *me;
	(void)arg;
	if (ctx_chan_recv(ctx, handoff, &me))
		return NULL;
	int e = ctx_thread_join(ctx, me, NULL);
	printf("self-join: %s\n", e == EDEADLK ? "EDEADLK" : strerror(e));
	return NULL;
}

static void self_join(void)
{
	ctx_thread_t *t;
	handoff = ctx_chan_new(sizeof(t), 1);
	SITE();
	ctx_thread_create(&t, ctx_background(), join_myself, NULL);
	ctx_chan_send(ctx_background(), handoff, &t);
	ctx_thread_join(ctx_background(), t, NULL);
	ctx_chan_free(handoff);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "double_release", double_release },
	{ "use_after_unref", use_after_unref },
	{ "parent_released_twice", parent_released_twice },
	{ "join_twice", join_twice },
	{ "detach_twice", detach_twice },
	{ "join_after_detach", join_after_detach },
	{ "after_stop_twice", after_stop_twice },
	{ "after_stop_twice_fired", after_stop_twice_fired },
	{ "release_borrowed", release_borrowed },
	{ "self_join", self_join },
};

int main(int argc, char **argv)
{
	for (size_t i = 0; argc > 1 && i < sizeof(cases) / sizeof(*cases); i++)
		if (!strcmp(argv[1], cases[i].name)) {
			cases[i].fn();
			printf("returned\n");
			return 0;
		}
	fprintf(stderr, "usage: misuse CASE\n");
	return 2;
}
