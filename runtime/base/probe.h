/*
 * USDT probes: static points in the library that a tracer (bpftrace,
 * perf, SystemTap) can attach to while the program runs, provider
 * "libctx".  Where <sys/sdt.h> exists (configure: --with-sdt) each is one
 * nop instruction and a note in the ELF file (readelf -n shows them);
 * without it, nothing: the macros below compile away, arguments and all.
 *
 * A probe costs, while no tracer listens, the test of its semaphore: a
 * counter that a tracer attaching to the probe raises (bpftrace does,
 * directly or through the kernel's uprobe reference counter).  Only then
 * are its arguments worked out and the nop reached.  Every argument is
 * still something the code at the probe has at hand (a pointer, a
 * number, a string that exists anyway).  The probes and their arguments
 * (ctx_dump(3) documents them for users; share/libctx/ has scripts that
 * use them):
 *
 *   create      ctx, parent, kind (a string: "WithCancel", ...), file,
 *               line (where the program made it; NULL, 0: unknown)
 *   cancel      ctx, err, cause, origin (ctx_origin's words, or NULL),
 *               top: once for every node an end reaches, before its
 *               waiters wake; top is the node the end began at
 *   wait_begin  ctx, node, call (or NULL), fd (or -1), limit (ns)
 *   wait_end    ctx, node, call, result (0 ready, -1 the call's own
 *               deadline, or the context's error or an errno value)
 *   wake        tid: a thread woken through its reactor
 *
 * node is the cancel node a wait hangs on (ctx itself, the nearest one
 * above, or NULL), the key cancel's ctx matches.
 */
#ifndef CTX_PROBE_H
#define CTX_PROBE_H

#ifdef HAVE_SDT
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

/* The semaphores (probe.c), in the section where tracers look for them. */
#define CTX__SEMAPHORE(n)                                                 \
	extern volatile unsigned short libctx_##n##_semaphore              \
		__attribute__((visibility("hidden")))
CTX__SEMAPHORE(create);
CTX__SEMAPHORE(cancel);
CTX__SEMAPHORE(wait_begin);
CTX__SEMAPHORE(wait_end);
CTX__SEMAPHORE(wake);
#define CTX__TRACED(n) __builtin_expect(libctx_##n##_semaphore != 0, 0)

#define CTX__PROBE1(n, a)                                                 \
	do {                                                              \
		if (CTX__TRACED(n))                                       \
			DTRACE_PROBE1(libctx, n, a);                      \
	} while (0)
#define CTX__PROBE3(n, a, b, c)                                           \
	do {                                                              \
		if (CTX__TRACED(n))                                       \
			DTRACE_PROBE3(libctx, n, a, b, c);                \
	} while (0)
#define CTX__PROBE4(n, a, b, c, d)                                        \
	do {                                                              \
		if (CTX__TRACED(n))                                       \
			DTRACE_PROBE4(libctx, n, a, b, c, d);             \
	} while (0)
#define CTX__PROBE5(n, a, b, c, d, e)                                     \
	do {                                                              \
		if (CTX__TRACED(n))                                       \
			DTRACE_PROBE5(libctx, n, a, b, c, d, e);          \
	} while (0)
#else
#define CTX__PROBE1(n, a) ((void)0)
#define CTX__PROBE3(n, a, b, c) ((void)0)
#define CTX__PROBE4(n, a, b, c, d) ((void)0)
#define CTX__PROBE5(n, a, b, c, d, e) ((void)0)
#endif

#endif
