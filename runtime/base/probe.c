/*
 * The semaphores of the USDT probes (probe.h): one counter per probe, in
 * the .probes section, whose addresses the probes' notes give to
 * tracers.  A tracer that attaches raises its probe's; the library tests
 * it before working out a probe's arguments.
 */
#include "base/probe.h"

#ifdef HAVE_SDT
#define SEMAPHORE(n)                                                      \
	volatile unsigned short libctx_##n##_semaphore                     \
		__attribute__((section(".probes")))
SEMAPHORE(create);
SEMAPHORE(cancel);
SEMAPHORE(wait_begin);
SEMAPHORE(wait_end);
SEMAPHORE(wake);
#else
typedef int ctx__no_probes; /* a translation unit is never empty */
#endif
