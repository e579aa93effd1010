#!/bin/sh
# Test (make check): the C headers as C++, at every standard from C++11,
# with $CXX and with clang++ where it is installed.
#
#  1. <ctx.h> and the glue headers (<ctx/ssl.h>, <ctx/curl.h>, ... where
#     pkg-config finds what they include) compile with -std=c++11 to
#     -std=c++2b (each the compiler knows) and -Wall -Wextra -pedantic
#     -Werror, in a program that uses the constructs a function-like
#     macro would break (tests/cpp/plain.cc).
#  2. <ctx.hpp> compiles at C++17 and later, and below that stops with
#     its own message, not a cascade of errors.
#
# Only compiles (-fsyntax-only); tests/cpp/check_cpp* run things.
# Exit status: 0 pass, 1 fail, 77 skip (no C++ compiler at all).

set -u
srcdir=${srcdir:-.}
inc="-I$srcdir/include"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0
ran=0

# The glue headers whose dependencies are found, and their flags.
glue=
for dir in "$srcdir"/glue/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	[ -f "$dir/ctx/$name.h" ] && [ -f "$dir/libctx-$name.pc.in" ] || continue
	deps=$(sed -n 's/^Requires:[[:space:]]*libctx[[:space:]]*//p' "$dir/libctx-$name.pc.in")
	if flags=$(pkg-config --cflags $deps 2>/dev/null); then
		glue="$glue -DCTX_TEST_GLUE_$(echo "$name" | tr a-z A-Z)"
		inc="$inc -I$dir $flags"
	else
		echo "# ctx/$name.h left out: pkg-config does not find $deps"
	fi
done

# try CXX STD: plain.cc with the C headers; ctx.hpp where STD >= 17.
try() {
	cxx=$1 std=$2
	if ! echo 'int main() {}' | $cxx -std="$std" -x c++ -fsyntax-only - 2>/dev/null; then
		echo "# $cxx does not know -std=$std"
		return
	fi
	ran=$((ran + 1))
	if $cxx -std="$std" -Wall -Wextra -pedantic -Werror $inc $glue \
		-fsyntax-only "$srcdir/tests/cpp/plain.cc" 2> "$tmp/err"; then
		echo "ok - $cxx -std=$std: ctx.h$glue"
	else
		echo "not ok - $cxx -std=$std: ctx.h$glue:"
		sed 's/^/    /' "$tmp/err"
		failed=1
	fi
	case $std in
	c++11|c++14)
		printf '#include <ctx.hpp>\nint main() {}\n' > "$tmp/old.cc"
		if $cxx -std="$std" $inc -fsyntax-only "$tmp/old.cc" 2> "$tmp/err"; then
			echo "not ok - $cxx -std=$std: ctx.hpp compiled below C++17"
			failed=1
		elif grep -q 'ctx.hpp needs C++17' "$tmp/err" &&
		     [ "$(grep -c 'error:' "$tmp/err")" -eq 1 ]; then
			echo "ok - $cxx -std=$std: ctx.hpp refuses with one message"
		else
			echo "not ok - $cxx -std=$std: ctx.hpp's refusal is not one clear error:"
			sed 's/^/    /' "$tmp/err"
			failed=1
		fi ;;
	*)
		printf '#include <ctx.hpp>\nint main() { return ctx::background().done(); }\n' > "$tmp/hpp.cc"
		if $cxx -std="$std" -Wall -Wextra -pedantic -Werror $inc \
			-fsyntax-only "$tmp/hpp.cc" 2> "$tmp/err"; then
			echo "ok - $cxx -std=$std: ctx.hpp"
		else
			echo "not ok - $cxx -std=$std: ctx.hpp:"
			sed 's/^/    /' "$tmp/err"
			failed=1
		fi ;;
	esac
}

# Every declaration of the public headers is noexcept in C++: each
# CTX_API declaration, up to its ';', names CTX_NOEXCEPT.
for h in "$srcdir"/include/ctx.h "$srcdir"/glue/*/ctx/*.h; do
	missing=$(awk '/^CTX_API/ { decl = ""; on = 1 }
		on { decl = decl $0 " " }
		on && /;/ { if (decl !~ /CTX_NOEXCEPT/ && decl ~ /\(/)
				print FILENAME ": " decl; on = 0 }' "$h")
	if [ -n "$missing" ]; then
		echo "not ok - declarations without CTX_NOEXCEPT:"
		echo "$missing" | sed 's/^/    /'
		failed=1
	else
		echo "ok - $(basename "$h"): every declaration noexcept in C++"
	fi
done

compilers=
for c in "${CXX:-c++}" clang++; do
	set -- $c
	command -v "$1" >/dev/null 2>&1 || { echo "# $c: not installed"; continue; }
	case " $compilers " in *" $c "*) continue ;; esac
	compilers="$compilers $c"
	for std in c++11 c++14 c++17 c++20 c++2b; do
		try "$c" "$std"
	done
done
[ $ran -gt 0 ] || { echo "SKIP: no C++ compiler"; exit 77; }
exit $failed
