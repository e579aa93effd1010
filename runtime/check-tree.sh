#!/bin/sh
# Test (make check): the tree keeps the shape runtime/README.md gives it.
#
#  1. Every source of the library is in a layer's folder: runtime/base,
#     core, wait, io, sync, proc, net or server.
#  2. An #include "..." in runtime/ names a header of runtime/ by its
#     folder ("core/core.h") in its own layer or one below, in the order
#        base < core < wait < io < sync < proc < net < server
#     (the features io ... server may use another feature's internal
#     header only in that order).  The public headers are included as
#     <ctx.h>, never with quotes.  Since every include goes down or stays
#     in its folder, the folder graph has no cycle.
#  3. In glue/, an #include "..." that names a layer of runtime/ names
#     base/ or wait/, or is net/conn.h (the internals a glue library may
#     use, README).
#  4. No function in runtime/ or glue/ is over 40 lines, counted from
#     the first line of its signature to its closing brace.  Comments,
#     strings and preprocessor lines are skipped and braces counted, so
#     the count holds for any layout, not only the K&R of this tree.
#
# Run by automake's test driver with $srcdir set; from the source
# directory, `sh runtime/check-tree.sh` does the same, and with
# CHECK_TREE_LIST=1 it also lists every function's length.  Exit
# status: 0 pass, 1 fail, 99 hard error.

set -u
LC_ALL=C
export LC_ALL
srcdir=${srcdir:-.}
top=$srcdir
[ -d "$top/runtime" ] || { echo "check-tree: ERROR: no $top/runtime" >&2; exit 99; }
max=40
layers="base core wait io sync proc net server"
failed=0
fail() { printf 'check-tree: FAIL: %s\n' "$*"; failed=1; }

# rank LAYER: its place in the order, or nothing for a name that is none.
rank() {
	r=0
	for l in $layers; do
		[ "$l" = "$1" ] && { echo $r; return; }
		r=$((r + 1))
	done
}

# includes FILE: "LINE HEADER" for each #include "HEADER" of FILE.
includes() {
	awk '{ line = $0; sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line) }
	     /^[ \t]*#[ \t]*include[ \t]*"/ && match(line, /^"[^"]*"/) {
		print FNR, substr(line, 2, RLENGTH - 2) }' "$1"
}

# ---- 1 and 2: runtime/ ----------------------------------------------------
# (Only folders and sources: a build in the source tree leaves logs and
# objects beside them.)
for f in "$top"/runtime/*; do
	name=${f##*/}
	if [ -d "$f" ]; then
		[ -n "$(rank "$name")" ] ||
			fail "runtime/$name/ is not a layer (README.md: $layers)"
	else
		case $name in
		*.c|*.h) fail "runtime/$name is in no layer's folder" ;;
		esac
	fi
done
nfiles=0
for f in "$top"/runtime/*/*.[ch]; do
	[ -f "$f" ] || continue
	nfiles=$((nfiles + 1))
	rel=${f#"$top"/}
	own=${rel#runtime/}
	own=${own%%/*}
	mine=$(rank "$own")
	[ -n "$mine" ] || continue # reported above
	includes "$f" > "${TMPDIR:-/tmp}/check-tree.$$"
	while read -r line hdr; do
		dir=${hdr%%/*}
		theirs=$(rank "$dir")
		if [ "$dir" = "$hdr" ] || [ -z "$theirs" ]; then
			fail "$rel:$line: #include \"$hdr\": name a header of runtime/ by its layer (\"core/core.h\"); public and system headers go in <>"
		elif [ ! -f "$top/runtime/$hdr" ]; then
			fail "$rel:$line: #include \"$hdr\": no such file in runtime/"
		elif [ "$theirs" -gt "$mine" ]; then
			fail "$rel:$line: #include \"$hdr\" goes up a layer: $own/ may include its own and lower layers' headers only ($layers, lowest first)"
		fi
	done < "${TMPDIR:-/tmp}/check-tree.$$"
done
rm -f "${TMPDIR:-/tmp}/check-tree.$$"
[ "$nfiles" -gt 0 ] || { echo "check-tree: ERROR: no sources under $top/runtime/*/" >&2; exit 99; }

# ---- 3: glue/ --------------------------------------------------------------
for f in "$top"/glue/*.[ch] "$top"/glue/*/*.[ch] "$top"/glue/*/*/*.[ch]; do
	[ -f "$f" ] || continue
	rel=${f#"$top"/}
	includes "$f" | while read -r line hdr; do
		dir=${hdr%%/*}
		case $hdr in
		base/*|wait/*|net/conn.h) ;;
		*)
			[ "$dir" != "$hdr" ] && [ -n "$(rank "$dir")" ] &&
				echo "$rel:$line: #include \"$hdr\": glue may use base/, wait/ and net/conn.h only (runtime/README.md)"
			;;
		esac
	done
done > "${TMPDIR:-/tmp}/check-tree-glue.$$"
while read -r msg; do fail "$msg"; done < "${TMPDIR:-/tmp}/check-tree-glue.$$"
rm -f "${TMPDIR:-/tmp}/check-tree-glue.$$"

# ---- 4: function lengths ---------------------------------------------------
# The awk program strips comments, strings and character constants,
# skips preprocessor lines (with their continuations), and counts braces.
# At depth 0 it collects the text since the last ';' or '}': a '{' that
# opens after text with a '(' and no '=' (not an initializer), and not
# after struct, union or enum, opens a function, which ends when the
# depth is 0 again.
lengths=$(find "$top/runtime" "$top/glue" -name '*.[ch]' -type f | sort |
	xargs awk -v max="$max" -v top="$top/" '
function flush_name(text,   t) {
	t = text
	gsub(/__attribute__[ \t]*\(\([^()]*(\([^()]*\)[^()]*)*\)\)/, "", t)
	if (match(t, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
		t = substr(t, RSTART, RLENGTH)
		sub(/[ \t]*\($/, "", t)
		return t
	}
	return "?"
}
FNR == 1 { depth = 0; incomment = 0; cont = 0; text = ""; start = 0 }
{
	line = $0
	if (cont) { cont = line ~ /\\$/; next }
	if (!incomment && line ~ /^[ \t]*#/) { cont = line ~ /\\$/; next }
	out = ""
	i = 1
	n = length(line)
	while (i <= n) {
		c = substr(line, i, 1)
		if (incomment) {
			if (substr(line, i, 2) == "*/") { incomment = 0; i += 2 }
			else i++
			continue
		}
		if (substr(line, i, 2) == "/*") { incomment = 1; i += 2; continue }
		if (substr(line, i, 2) == "//") break
		if (c == "\"" || c == "\047") {
			q = c; i++
			while (i <= n && substr(line, i, 1) != q)
				i += substr(line, i, 1) == "\\" ? 2 : 1
			i++
			out = out q q
			continue
		}
		out = out c
		i++
	}
	for (i = 1; i <= length(out); i++) {
		c = substr(out, i, 1)
		if (depth == 0 && c ~ /[^ \t]/ && text == "")
			start = FNR
		if (c == "{") {
			if (depth == 0) {
				isfn = text ~ /\(/ && text !~ /=/ &&
				       text !~ /(^|[^A-Za-z0-9_])(struct|union|enum)[ \t]+[A-Za-z0-9_]*[ \t]*$/
				fname = isfn ? flush_name(text) : ""
				fstart = start
				if (fname == "START_TEST" &&
				    match(text, /START_TEST[ \t]*\([ \t]*[A-Za-z0-9_]+/)) {
					fname = substr(text, RSTART, RLENGTH)
					sub(/.*\([ \t]*/, "", fname)
				}
			}
			depth++
		} else if (c == "}") {
			depth--
			if (depth == 0) {
				if (fname != "") {
					len = FNR - fstart + 1
					f = FILENAME
					if (index(f, top) == 1) f = substr(f, length(top) + 1)
					print len, f ":" fstart, fname
				}
				fname = ""
				text = ""
			}
		} else if (depth == 0) {
			if (c == ";") text = ""
			else if (text != "" || c ~ /[^ \t]/) text = text c
		}
	}
	# A macro alone on its line (END_TEST) ends what came before.
	if (depth == 0 && out ~ /^[ \t]*[A-Z_][A-Z0-9_]*[ \t]*$/) text = ""
	if (depth == 0 && text != "") text = text " "
}')
nfuncs=$(printf '%s\n' "$lengths" | grep -c .)
[ "$nfuncs" -gt 0 ] || { echo "check-tree: ERROR: no functions found" >&2; exit 99; }
[ -n "${CHECK_TREE_LIST:-}" ] && printf "%s\n" "$lengths"
long=$(printf '%s\n' "$lengths" | awk -v max="$max" '$1 > max' | sort -rn)
if [ -n "$long" ]; then
	fail "functions over $max lines (lines, where, name):"
	printf '%s\n' "$long" | sed 's/^/    /'
fi

if [ $failed -ne 0 ]; then
	echo "check-tree: FAILED (see above; runtime/README.md says why)"
	exit 1
fi
echo "check-tree: ok: $nfiles files of runtime/ in $(echo $layers | wc -w) layers, every include in its layer or below; $nfuncs functions in runtime/ and glue/, none over $max lines"
exit 0
