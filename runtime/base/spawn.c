/*
 * The one spawner of the library's own threads (the timer, the
 * after-func runner, the signal dispatcher, the hang-up watcher, the
 * resolver's helpers): each starts detached, with every signal blocked
 * (signals are for the program's threads), and with a stack sized for
 * what it runs plus the program's static TLS.
 *
 * glibc does not add a thread's static TLS (the __thread data of the
 * program and of the libraries it loaded at start) to the stack size it
 * is given: it carves that TLS and its thread descriptor out of the top
 * of the stack, and pthread_create fails with EINVAL when they do not
 * fit (so a fixed 64 KiB stack failed beside a 64 KiB __thread array),
 * and leaves the thread a stack smaller than asked when they barely fit.
 * So the size asked is the thread's own need plus the static TLS: the
 * sum of the PT_TLS segments of the loaded objects (dl_iterate_phdr),
 * an upper bound of the TLS laid out at start (objects opened later get
 * dynamic TLS, except initial-exec TLS, which lives in glibc's small
 * surplus), plus TLS_SLACK for that surplus, the descriptor and the
 * alignment.  Measured on glibc 2.36 / x86-64: with a 64 KiB __thread
 * array the segments add up to 65,680 bytes, glibc's static TLS is
 * 69,760 (4,080 more), and a thread's first frame sits 70,017 bytes
 * below the stack's top: 16 KiB of slack keeps the thread's own 64 KiB
 * whole with some 12 KiB to spare (a GLIBC_TUNABLES surplus beyond that
 * comes out of it).  musl already adds its TLS to the size asked; there
 * the slack is only spent.  (glibc's own figure, _dl_get_tls_static_info,
 * is private to it.)  The cost: one walk of the loaded objects per thread
 * started, a handful per process.
 */
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "base/base.h"

#define TLS_SLACK (16 * 1024)

static int add_tls(struct dl_phdr_info *info, size_t size, void *sum)
{
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		size_t align = ph->p_align ? ph->p_align : 1;
		if (ph->p_type == PT_TLS)
			*(size_t *)sum += (ph->p_memsz + align - 1) / align *
					  align;
	}
	return 0;
}

/* What a thread of the program gets when it asks for nothing. */
static size_t default_stack(void)
{
	pthread_attr_t a;
	size_t sz = 0;
	if (pthread_getattr_default_np(&a) == 0) {
		pthread_attr_getstacksize(&a, &sz);
		pthread_attr_destroy(&a);
	}
	return sz ? sz : 8 * 1024 * 1024;
}

static size_t stack_size(size_t need)
{
	size_t tls = TLS_SLACK, page = (size_t)sysconf(_SC_PAGESIZE);
	dl_iterate_phdr(add_tls, &tls);
	size_t sz = (need ? need : default_stack()) + tls;
	return (sz + page - 1) / page * page;
}

int ctx__spawn(void *(*fn)(void *), void *arg, size_t stack)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int e = pthread_attr_setstacksize(&attr, stack_size(stack));
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!e)
		e = pthread_create(&t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return e;
}
