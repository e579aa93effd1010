#!/bin/sh
# The C++ suites again, on the io_uring backend (as tests/uring.sh runs
# the C suite): each program tests/cpp/suites.list names.  Skipped (77)
# when the library was built without liburing, the kernel refuses a
# ring, or CTX_SKIP_URING is set (ThreadSanitizer: see tests/uring.sh).
if [ -n "${CTX_SKIP_URING:-}" ]; then
	echo "cpp/uring: skipped: CTX_SKIP_URING is set"
	exit 77
fi
backend=$(CTX_BACKEND=io_uring ./tests/backend)
if [ "$backend" != io_uring ]; then
	echo "cpp/uring: skipped: the io_uring backend is not available ($backend)"
	exit 77
fi
suites=$(cat tests/cpp/suites.list) || exit 99
if [ -z "$suites" ]; then
	echo "cpp/uring: skipped: no C++ suite was built (see configure's C++ line)"
	exit 77
fi
status=0
for s in $suites; do
	echo "== $s (CTX_BACKEND=io_uring)"
	CTX_BACKEND=io_uring "./$s" || status=1
done
exit $status
