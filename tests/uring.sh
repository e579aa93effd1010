#!/bin/sh
# The whole Check suite again, on the io_uring backend.  Skipped (77) when
# the library was built without liburing or the kernel refuses a ring.
# ThreadSanitizer cannot see the ring's memory (liburing maps it with raw
# system calls), so a new thread's ring at a dead thread's old address
# looks like a race to it: .ci/run sets CTX_SKIP_URING there.
if [ -n "${CTX_SKIP_URING:-}" ]; then
	echo "uring: skipped: CTX_SKIP_URING is set"
	exit 77
fi
backend=$(CTX_BACKEND=io_uring ./tests/backend)
if [ "$backend" != io_uring ]; then
	echo "uring: skipped: the io_uring backend is not available ($backend)"
	exit 77
fi
CTX_BACKEND=io_uring exec ./tests/check_ctx
