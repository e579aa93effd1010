/*
 * USDT probes: static points in the library that a tracer (bpftrace,
 * perf, SystemTap) can attach to while the program runs, provider
 * "libctx".  Where <sys/sdt.h> exists (configure: --with-sdt) each is one
 * nop instruction and a note in the ELF file (readelf -n shows them);
 * without it, nothing: the macros below compile away, arguments and all.
 *
 * A probe costs its nop and the moving of its arguments into registers,
 * which the compiler does whether or not a tracer listens: so every
 * argument is something the code at the probe has at hand (a pointer, a
 * number, a string that already exists), never anything worked out for
 * the probe.  The probes and their arguments (ctx_dump(3) documents
 * them for users; share/libctx/ has scripts that use them):
 *
 *   create      ctx, parent, kind (a string: "WithCancel", ...)
 *   cancel      ctx, err, cause, words (or NULL), top: once for every
 *               node an end reaches; top is the node it began at
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
#include <sys/sdt.h>
#define CTX__PROBE1(n, a) DTRACE_PROBE1(libctx, n, a)
#define CTX__PROBE3(n, a, b, c) DTRACE_PROBE3(libctx, n, a, b, c)
#define CTX__PROBE4(n, a, b, c, d) DTRACE_PROBE4(libctx, n, a, b, c, d)
#define CTX__PROBE5(n, a, b, c, d, e) DTRACE_PROBE5(libctx, n, a, b, c, d, e)
#else
#define CTX__PROBE1(n, a) ((void)0)
#define CTX__PROBE3(n, a, b, c) ((void)0)
#define CTX__PROBE4(n, a, b, c, d) ((void)0)
#define CTX__PROBE5(n, a, b, c, d, e) ((void)0)
#endif

#endif
