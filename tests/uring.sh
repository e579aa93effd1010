#!/bin/sh
# The whole Check suite again, on the io_uring backend.  Skipped (77) when
# the library was built without liburing or the kernel refuses a ring.
backend=$(CTX_BACKEND=io_uring ./tests/backend)
if [ "$backend" != io_uring ]; then
	echo "uring: skipped: the io_uring backend is not available ($backend)"
	exit 77
fi
CTX_BACKEND=io_uring exec ./tests/check_ctx
