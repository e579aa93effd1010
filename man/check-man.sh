#!/bin/bash
# Test (make check): every function the built library exports has a manual
# page that `make install` installs, and every page formats cleanly.
#
# Run by automake's test driver with no arguments, from the build directory
# (where .libs/libctx.so is), with $srcdir set to the source directory
# (where man/ is).  Exit status: 0 pass, 1 fail, 99 hard error (no library,
# or no tool to read its symbols).
#
# Checks:
#  1. each dynamic symbol of .libs/libctx.so that starts with ctx_ (the
#     internal ctx__ names excepted) has man/<name>.3, listed in
#     dist_man3_MANS in man/local.mk;
#  2. each page in man/ is listed there, and each ctx_<name>.3 page names a
#     function the library exports (no page outlives its function);
#  3. with groff installed, each page formats with no warning
#     (groff -man -Tutf8 -ww -z), and each alias page is one line
#     ".so man3/FAMILY.3" naming a full page in man/;
#  4. each of those functions is named in the index of the overview (the
#     section "The pages" of man/ctx.3) and in the README's "Manual"
#     table, so that a reader of either finds every function.
#
# The optional libraries of glue/ (glue/NAME: libctx-NAME: ssl, curl,
# pq, ...) keep their pages in glue/NAME/man/, listed in
# glue/NAME/local.mk; they are checked as man/'s are, against their
# library's symbols when it is built.

set -u
LC_ALL=C
export LC_ALL

srcdir=${srcdir:-.}
mandir=$srcdir/man
mk=$mandir/local.mk
lib=.libs/libctx.so
failed=0

say() { printf 'check-man: %s\n' "$*"; }
fail() { say "FAIL: $*"; failed=1; }
hard() { say "ERROR: $*" >&2; exit 99; }

[ -f "$mk" ] || hard "$mk not found (srcdir=$srcdir)"

# ---- the exported functions --------------------------------------------
if [ -f "$lib" ]; then
	if command -v nm >/dev/null 2>&1; then
		raw=$(nm -D --defined-only "$lib") || hard "nm -D failed on $lib"
		raw=$(printf '%s\n' "$raw" | awk 'NF >= 3 { print $3 }')
	elif command -v readelf >/dev/null 2>&1; then
		raw=$(readelf --dyn-syms -W "$lib") || hard "readelf failed on $lib"
		raw=$(printf '%s\n' "$raw" | awk '$7 != "UND" &&
			($5 == "GLOBAL" || $5 == "WEAK") { print $8 }')
	else
		hard "neither nm nor readelf is installed: cannot list the symbols of $lib"
	fi
elif [ -f .libs/libctx.a ]; then
	# A static-only build (--disable-shared): the archive's global functions.
	command -v nm >/dev/null 2>&1 ||
		hard "nm is not installed: cannot list the symbols of .libs/libctx.a"
	raw=$(nm -g --defined-only .libs/libctx.a) || hard "nm failed on .libs/libctx.a"
	raw=$(printf '%s\n' "$raw" | awk '$2 ~ /^[TW]$/ { print $3 }')
else
	hard "$lib not found in $(pwd): build the library first (make)"
fi
# The glue libraries (glue/NAME/.libs/libctx-NAME.so) when they are
# built; otherwise their pages are only checked for form.
optional_pages=
for dir in "$srcdir"/glue/*/; do
	[ -d "$dir/man" ] || continue
	name=$(basename "$dir")
	so=glue/$name/.libs/libctx-$name.so
	if [ -f "$so" ] && command -v nm >/dev/null 2>&1; then
		raw="$raw
$(nm -D --defined-only "$so" | awk 'NF >= 3 { print $3 }')"
	else
		optional_pages="$optional_pages $(cd "$dir/man" && ls -1 -- *.3 2>/dev/null | sed 's|\.3$||')"
	fi
done
# Drop symbol versions (name@@LIBCTX_0); keep ctx_ names, not ctx__ ones.
syms=$(printf '%s\n' "$raw" | sed 's/@.*//' | grep -E '^ctx_[A-Za-z0-9]' | sort -u)
[ -n "$syms" ] || hard "no ctx_ symbols found in $lib"
nsyms=$(printf '%s\n' "$syms" | wc -l)

# ---- the pages ----------------------------------------------------------
mks="$mk $(ls -1 "$srcdir"/glue/*/local.mk 2>/dev/null | tr '\n' ' ')"
listed=$(grep -ohE '(^|[[:space:]])(glue/[A-Za-z0-9_-]+/)?man/[A-Za-z0-9_.-]+\.3' $mks |
	sed 's|.*/||; s|\.3$||' | sort -u)
present=$(for d in "$mandir" "$srcdir"/glue/*/man; do
	[ -d "$d" ] && (cd "$d" && ls -1 -- *.3 2>/dev/null); done | sed 's|\.3$||' | sort -u)
# page NAME: the file of page NAME (in man/ or a glue/*/man/), or fail.
page() {
	local d
	for d in "$mandir" "$srcdir"/glue/*/man; do
		[ -f "$d/$1.3" ] && { printf '%s\n' "$d/$1.3"; return 0; }
	done
	return 1
}
in_list() { printf '%s\n' "$2" | grep -qxF -- "$1"; }

missing= unlisted_fn=
for s in $syms; do
	if ! page "$s" >/dev/null; then
		missing="$missing $s"
	elif ! in_list "$s" "$listed"; then
		unlisted_fn="$unlisted_fn $s"
	fi
done
if [ -n "$missing" ]; then
	fail "no manual page for these exported functions:"
	for s in $missing; do say "    man/$s.3"; done
	say "  write them (or a one-line '.so man3/FAMILY.3' alias) and list them in dist_man3_MANS in man/local.mk (glue/NAME/local.mk for glue/NAME/man)"
fi
if [ -n "$unlisted_fn" ]; then
	fail "these pages exist but are not in dist_man3_MANS (man/local.mk), so make install skips them:"
	for s in $unlisted_fn; do say "    man/$s.3"; done
fi

stray= gone= stale=
for p in $present; do
	in_list "$p" "$listed" || stray="$stray $p"
done
for p in $listed; do
	page "$p" >/dev/null || gone="$gone $p"
	case $p in
	ctx_*)
		skip=
		in_list "$p" "$(printf '%s\n' $optional_pages)" && skip=1
		[ -n "$skip" ] || in_list "$p" "$syms" || stale="$stale $p" ;;
	esac
done
if [ -n "$stray" ]; then
	fail "pages in man/ (or glue/*/man/) not listed in dist_man3_MANS (man/local.mk, glue/*/local.mk):"
	for p in $stray; do say "    man/$p.3"; done
fi
if [ -n "$gone" ]; then
	fail "pages listed in man/local.mk (or glue/*/local.mk) that do not exist:"
	for p in $gone; do say "    man/$p.3"; done
fi
if [ -n "$stale" ]; then
	fail "pages for functions the library does not export (renamed or removed?):"
	for p in $stale; do say "    man/$p.3"; done
fi

# ---- the indexes: ctx(3)'s "The pages" and the README's "Manual" -------
readme=$srcdir/README.md
[ -f "$readme" ] || hard "$readme not found (srcdir=$srcdir)"
index_of_ctx3=$(awk '/^\.SS The pages/ { on = 1; next } /^\.S[HS] / { on = 0 } on' "$mandir/ctx.3")
manual_of_readme=$(awk '/^## Manual/ { on = 1; next } /^## / { on = 0 } on' "$readme")
[ -n "$index_of_ctx3" ] || fail "man/ctx.3 has no section 'The pages' (.SS The pages)"
[ -n "$manual_of_readme" ] || fail "README.md has no section '## Manual'"
not_in_ctx3= not_in_readme=
for s in $syms; do
	printf '%s\n' "$index_of_ctx3" | grep -qwF -- "$s" || not_in_ctx3="$not_in_ctx3 $s"
	printf '%s\n' "$manual_of_readme" | grep -qwF -- "$s" || not_in_readme="$not_in_readme $s"
done
if [ -n "$not_in_ctx3" ]; then
	fail "exported functions not named in the index of man/ctx.3 (.SS The pages):"
	for s in $not_in_ctx3; do say "    $s"; done
fi
if [ -n "$not_in_readme" ]; then
	fail "exported functions not named in README.md's '## Manual' table:"
	for s in $not_in_readme; do say "    $s"; done
fi

# ---- formatting ----------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
	formatter="groff -man -Tutf8 -ww -z"
elif command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- --warnings; then
	formatter="man --warnings -l"
else
	formatter=
	say "SKIP: neither groff nor man is installed: formatting not checked"
fi
npages=0
if [ -n "$formatter" ]; then
	for p in $listed; do
		f=$(page "$p") || continue
		npages=$((npages + 1))
		first=$(head -n 1 "$f")
		case $first in
		.so\ *)
			# An alias: exactly one line, naming a full page of man/.
			target=${first#.so man3/}
			if [ "$(wc -l < "$f")" -ne 1 ] || [ "$target" = "$first" ]; then
				fail "man/$p.3: an alias page must be the single line '.so man3/FAMILY.3'"
			elif ! page "${target%.3}" >/dev/null; then
				fail "man/$p.3: sources man3/$target, which is not in man/"
			elif head -n 1 "$(page "${target%.3}")" | grep -q '^\.so '; then
				fail "man/$p.3: sources man3/$target, itself an alias"
			fi
			continue ;;
		esac
		th=$(grep -m 1 '^\.TH ' "$f" | awk '{ print $2 " " $3 }')
		want="$(printf '%s' "$p" | tr '[:lower:]' '[:upper:]') 3"
		[ "$th" = "$want" ] || fail "man/$p.3: .TH says '$th', expected '$want'"
		if [ "$formatter" = "man --warnings -l" ]; then
			out=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
		else
			out=$($formatter "$f" 2>&1)
		fi
		rc=$?
		if [ $rc -ne 0 ] || [ -n "$out" ]; then
			fail "man/$p.3 does not format cleanly ($formatter, status $rc):"
			printf '%s\n' "$out" | sed 's/^/    /'
		fi
	done
fi

if [ $failed -ne 0 ]; then
	say "FAILED (see above)"
	exit 1
fi
say "ok: $nsyms exported functions, each with a page and named in the indexes of ctx(3) and README.md; $npages pages checked${formatter:+ with $formatter}"
exit 0
