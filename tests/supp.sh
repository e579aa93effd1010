#!/bin/sh
# The installed valgrind suppressions (share/libctx/libctx.supp) make
# memcheck pass on a program that starts every service thread of the
# library; without them it reports their thread-local storage as
# "possibly lost".  Skips (77) without valgrind.
set -u
srcdir=${srcdir:-.}
command -v valgrind >/dev/null 2>&1 || { echo "no valgrind: skipped"; exit 77; }
prog=./tests/service_threads
if grep -aqE "__asan_init|__tsan_init" "$prog"; then
	echo "a sanitizer build: valgrind cannot run it: skipped"
	exit 77
fi
run() {
	valgrind -q --leak-check=full --error-exitcode=1 "$@" "$prog" 2>&1
}
if out=$(run); then
	echo "note: memcheck passed even without the suppressions"
else
	echo "without the suppressions (expected):"
	echo "$out" | grep -E "possibly lost|ctx__spawn" | head -4
fi
if ! out=$(run --suppressions="$srcdir/share/libctx/libctx.supp"); then
	echo "FAIL: memcheck with share/libctx/libctx.supp:"
	echo "$out"
	exit 1
fi
echo "ok: memcheck passes with share/libctx/libctx.supp"
