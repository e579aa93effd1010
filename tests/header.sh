#!/bin/sh
# Test (make check): the public header stands alone, and the manual's
# examples compile against it.
#
#  1. A program that includes only <ctx.h> compiles with
#     `cc -std=c11 -Wpedantic -Werror` (strict ISO C: ctx.h must include
#     what it uses and forward-declare what it must); so does one that
#     includes a system header first, and one with _GNU_SOURCE.
#  2. The EXAMPLES program of each full page in man/ (its last .EX/.EE
#     block) compiles with -std=gnu11 -Wall -Werror (syntax and types;
#     nothing is linked or run), ctx.hpp(3)'s with ${CXX:-c++} -std=c++20;
#     so does that of each page of the glue libraries (glue/*/man), with
#     their dependencies' include flags.
#
# Run from the build directory with $srcdir set (automake's driver).
# Exit status: 0 pass, 1 fail, 77 skip (no C compiler).

set -u
srcdir=${srcdir:-.}
cc=${CC:-cc}
inc=$srcdir/include
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: no C compiler ($cc)"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0

try() { # name, flags, program text
	printf '%s\n' "$3" > "$tmp/$1.c"
	if "$cc" $2 -I"$inc" -c "$tmp/$1.c" -o "$tmp/$1.o" 2> "$tmp/$1.err"; then
		echo "ok - $1"
	else
		echo "not ok - $1 ($cc $2):"
		sed 's/^/    /' "$tmp/$1.err"
		failed=1
	fi
}

strict="-std=c11 -Wpedantic -Werror -Wall -Wextra"
try only-ctx "$strict" '#include <ctx.h>
int main(void) { return ctx_err(ctx_background()); }'
try after-stdio "$strict" '#include <stdio.h>
#include <ctx.h>
int main(void) { return ctx_err(ctx_background()); }'
try gnu-source "$strict" '#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/socket.h>
#include <ctx.h>
int main(void) { struct mmsghdr m[1]; struct flock l = { 0 };
	(void)m; return ctx_lock_range(ctx_background(), -1, &l); }'
try c99-posix "-std=c99 -Wpedantic -Werror -D_POSIX_C_SOURCE=200809L" '#include <ctx.h>
int main(void) { siginfo_t si; return ctx_waitid(ctx_background(), P_ALL, 0, &si, WEXITED); }'

# example PAGE FLAGS...: compile the example of a full page.
example() {
	local page=$1 name
	shift
	head -n 1 "$page" | grep -q '^\.so ' && return 0
	name=$(basename "$page" .3)
	# The last .EX ... .EE block, with groff's escapes (\e, \-, \(aq) undone.
	awk '/^\.EX/ { buf = ""; inex = 1; next }
	     /^\.EE/ { inex = 0; last = buf; next }
	     inex { buf = buf $0 "\n" }
	     END { printf "%s", last }' "$page" | sed 's/\\-/-/g; s/\\(aq/'"'"'/g; s/\\e/\\/g' > "$tmp/ex.c"
	grep -q 'main(' "$tmp/ex.c" || return 0
	if [ "${name%.hpp}" != "$name" ]; then
		# ctx.hpp(3)'s example is C++20.
		cxx=${CXX:-c++}
		if ! echo 'int main() {}' |
		     $cxx -std=c++20 -x c++ -fsyntax-only - 2>/dev/null; then
			echo "ok - example of ${page#"$srcdir"/} # SKIP no C++20 compiler ($cxx)"
			return 0
		fi
		set -- $cxx -std=c++20 -Wall -Werror -x c++ -I"$inc" "$@"
	else
		set -- "$cc" -std=gnu11 -Wall -Werror -I"$inc" "$@"
	fi
	if "$@" -c "$tmp/ex.c" -o "$tmp/ex.o" 2> "$tmp/ex.err"; then
		echo "ok - example of ${page#"$srcdir"/}"
	else
		echo "not ok - example of ${page#"$srcdir"/}:"
		sed 's/^/    /' "$tmp/ex.err"
		failed=1
	fi
}

for page in "$srcdir"/man/*.3; do
	example "$page"
done

# The pages of the glue libraries (glue/NAME/man), with their own header
# and the include flags of what their .pc requires (libpq, ...), when
# pkg-config finds it.
for dir in "$srcdir"/glue/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	[ -d "$dir/man" ] && [ -f "$dir/libctx-$name.pc.in" ] || continue
	deps=$(sed -n 's/^Requires:[[:space:]]*libctx[[:space:]]*//p' "$dir/libctx-$name.pc.in")
	if ! flags=$(pkg-config --cflags $deps 2>/dev/null); then
		echo "ok - examples of glue/$name/man # SKIP pkg-config does not find: $deps"
		continue
	fi
	for page in "$dir"/man/*.3; do
		example "$page" -I"$dir" $flags
	done
done
exit $failed
