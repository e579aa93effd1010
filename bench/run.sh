#!/bin/sh
# Run libctx's benchmarks and, where Go is installed, the same operations
# in Go, then print both columns side by side as a Markdown table.
#
#   bench/run.sh BUILDDIR SRCDIR [GO] [--quick]
#
# `make bench` calls this with absolute directories and the configured
# `go` (empty when none was found).  --quick runs every measurement
# briefly, for CI.  Each benchmark program is one section (a function
# below); each section writes BUILDDIR/bench/results/<section>.csv and
# keeps the raw output of both sides next to it.
#
# Verdicts: a time row is "ok" when libctx <= Go, else "SLOWER"; a row
# with a limit (bytes, descriptors) is "ok" within it, else "OVER".  Rows
# marked info are shown but not judged.  The exit status reports whether
# the benchmarks ran and checked out, not whether they won.

set -u

usage() {
	echo "usage: $0 BUILDDIR SRCDIR [GO] [--quick]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
builddir=$1
srcdir=$2
go=${3-}
quick=
case ${4-} in
--quick) quick=--quick ;;
'') ;;
*) usage ;;
esac

results=$builddir/bench/results
status=0

if [ -n "$go" ] && ! "$go" version >/dev/null 2>&1; then
	echo "bench: '$go' does not run; Go column left out" >&2
	go=
fi

# cpu_busy: percent of all CPUs busy over the next 200 ms, as
# benchutil.h measures it before the C benchmarks.
cpu_busy() {
	s0=$(head -n 1 /proc/stat 2>/dev/null) || return 0
	sleep 0.2
	s1=$(head -n 1 /proc/stat 2>/dev/null) || return 0
	echo "$s0 $s1" | awk '{
		for (i = 2; i <= 9; i++) { t0 += $i; t1 += $(i + 11) }
		b0 = t0 - $5 - $6; b1 = t1 - $16 - $17
		if (t1 > t0) printf "%.0f\n", 100 * (b1 - b0) / (t1 - t0)
	}'
}

# ---- Go ----------------------------------------------------------------

# go_env: run Go offline (there may be no network) with its caches in the
# build tree, so that `make bench` writes nothing in $HOME or $srcdir.
go_env() {
	GOFLAGS=-mod=mod
	GOPROXY=off
	GOSUMDB=off
	GO111MODULE=on
	GOTOOLCHAIN=local
	GOTELEMETRY=off
	GOCACHE=$builddir/bench/go-cache
	GOPATH=$builddir/bench/go-path
	GOMODCACHE=$GOPATH/pkg/mod
	export GOFLAGS GOPROXY GOSUMDB GO111MODULE GOTOOLCHAIN GOTELEMETRY
	export GOCACHE GOPATH GOMODCACHE
}

# run_go OUT BENCH TEST: run the tests matching TEST (verbose, for the
# lines they print) and the benchmarks matching BENCH of the module in
# bench/go, on 2 threads as the Go reference numbers were taken.  Three
# runs of 200 ms each; bench_context takes the median of its own runs
# and so does compare().
run_go() {
	if [ -n "$quick" ]; then
		benchtime=20ms count=1
	else
		benchtime=200ms count=3
	fi
	(
		go_env
		cd "$srcdir/bench/go" || exit 1
		"$go" version || exit 1
		echo "busy: $(cpu_busy)"
		"$go" test -count=1 -run "$3" -v . || exit 1
		"$go" test -run '^$' -bench "$2" -benchmem -cpu 2 \
			-benchtime "$benchtime" -count "$count" .
	) >"$1" 2>&1
}

# ---- the table ---------------------------------------------------------

# compare SECTION C_OUT GO_OUT CSV LIMITS ALIASES INFO UNITS
#
# C_OUT holds bench_context-style lines ("name,ns_per_op,min,max" or
# "name,value", "# " comments); GO_OUT holds `go test -bench` output and
# "LIVE name value" lines (empty or absent: no Go column).  LIMITS is a
# list of "prefix=max" for rows judged against a fixed bound instead of
# Go; ALIASES a list of "cname=goname" where the Go row has another name;
# INFO a list of row names shown but not judged; UNITS a list of
# "prefix=unit" naming the unit of time rows that are not ns/op (the Go
# side then reports that unit as a metric of its own, e.g. ns/pair).
# Rows whose name starts with BytesPerCtx/ or FdsPerCtx/ are bytes and
# descriptors per context.  Prints the table and writes it as CSV.  For
# time rows libctx's min..max over its runs is shown next to the median.
compare() {
	awk -v section="$1" -v csv="$4" -v limits="$5" -v aliases="$6" \
	    -v info="$7" -v units="$8" '
	function unit_of(name,    i, n, u, kv) {
		if (name ~ /^BytesPerCtx\//) return "B/ctx"
		if (name ~ /^FdsPerCtx\//) return "fds/ctx"
		n = split(units, u, " ")
		for (i = 1; i <= n; i++) {
			split(u[i], kv, "=")
			if (index(name, kv[1]) == 1)
				return kv[2]
		}
		return "ns/op"
	}
	function is_time(unit) { return unit ~ /^ns\// }
	function median(list,    v, n, i, j, t) {
		n = split(list, v, " ")
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) {
				t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
			}
		return n ? v[int((n + 1) / 2)] : ""
	}
	function add(key, val) {
		gov[key] = (key in gov) ? gov[key] " " val : val
	}
	function limit_of(name,    i, n, l, kv) {
		n = split(limits, l, " ")
		for (i = 1; i <= n; i++) {
			split(l[i], kv, "=")
			if (index(name, kv[1]) == 1)
				return kv[2]
		}
		return ""
	}
	function fmt(v, unit) {
		if (v == "") return "-"
		return sprintf(unit == "fds/ctx" ? "%.2f" : "%.1f", v)
	}
	BEGIN {
		n = split(aliases, a, " ")
		for (i = 1; i <= n; i++) {
			split(a[i], kv, "=")
			alias[kv[1]] = kv[2]
		}
		n = split(info, a, " ")
		for (i = 1; i <= n; i++)
			isinfo[a[i]] = 1
	}
	# Go side: benchmark lines, then the LIVE lines of TestLive.
	FILENAME == gofile && /^Benchmark/ {
		name = $1
		sub(/^Benchmark/, "", name)
		sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i += 2)
			add(name SUBSEP $(i + 1), $i)
		next
	}
	FILENAME == gofile && /^LIVE / {
		add($2 SUBSEP unit_of($2), $3)
		next
	}
	FILENAME == gofile && /^go version / { gover = $3 }
	FILENAME == gofile { next }
	# libctx side.
	/^#/ || !/,/ { next }
	{
		split($0, f, ",")
		name = f[1]; c = f[2]; unit = unit_of(name)
		gk = (name in alias) ? alias[name] : name
		g = ((gk SUBSEP unit) in gov) ? median(gov[gk SUBSEP unit]) : ""
		range = is_time(unit) && f[4] != "" ? \
			sprintf("%.1f..%.1f", f[3], f[4]) : "-"
		ratio = (g != "" && g + 0 > 0) ? sprintf("%.2f", c / g) : "-"
		lim = limit_of(name)
		if (lim != "") {
			target = "<= " lim
			verdict = c + 0 <= lim + 0 ? "ok" : "OVER"
		} else if (is_time(unit)) {
			target = "<= Go"
			verdict = g == "" ? "-" : (c + 0 <= g + 0 ? "ok" : "SLOWER")
		} else {
			target = "-"
			verdict = "-"
		}
		if (name in isinfo) {
			target = "info"
			verdict = verdict == "ok" || verdict == "-" ? \
				verdict : verdict " (info)"
		} else if (verdict == "SLOWER" || verdict == "OVER") {
			bad = bad "\n  " name ": " verdict
		}
		rows++
		cell[rows, 1] = name; cell[rows, 2] = unit
		cell[rows, 3] = fmt(c, unit); cell[rows, 4] = range
		cell[rows, 5] = fmt(g, unit); cell[rows, 6] = ratio
		cell[rows, 7] = target; cell[rows, 8] = verdict
	}
	END {
		split("benchmark unit libctx libctx_min..max Go libctx/Go target verdict", h, " ")
		if (gover == "")
			h[5] = "Go (not run)"
		for (j = 1; j <= 8; j++) {
			cell[0, j] = h[j]
			w[j] = length(h[j])
			for (i = 1; i <= rows; i++)
				if (length(cell[i, j]) > w[j])
					w[j] = length(cell[i, j])
		}
		for (i = 0; i <= rows; i++) {
			line = "|"
			for (j = 1; j <= 8; j++)
				line = line sprintf(j >= 3 && j <= 6 ? \
					" %" w[j] "s |" : " %-" w[j] "s |", cell[i, j])
			print line
			if (i == 0) {
				line = "|"
				for (j = 1; j <= 8; j++) {
					d = sprintf("%" w[j] "s", "")
					gsub(/ /, "-", d)
					line = line (j >= 3 && j <= 6 ? \
						"-" d ":|" : " " d " |")
				}
				print line
			}
		}
		print "section,benchmark,unit,libctx,libctx_range,go,libctx_over_go,target,verdict" > csv
		for (i = 1; i <= rows; i++)
			printf "%s,%s,%s,%s,%s,%s,%s,%s,%s\n", section,
				cell[i, 1], cell[i, 2], cell[i, 3], cell[i, 4],
				cell[i, 5], cell[i, 6], cell[i, 7],
				cell[i, 8] > csv
		print ""
		if (bad != "")
			print "Rows that miss their target:" bad
		else
			print "Every judged row meets its target."
		if (gover == "")
			print "Time rows are not judged: Go was not run."
	}' gofile="$3" "$3" "$2"
}

# header C_OUT GO_OUT: the machine, the Go version and the notes of the
# benchmark program, as comment lines.
header() {
	sed -n 's/^# \{0,1\}/    /p' "$1"
	if [ -s "$2" ]; then
		sed -n 's/^go version /    go: /p' "$2"
		sed -n 's/^busy: \(.*\)/    cpu busy before the Go run: \1%/p' "$2"
		sed -n 's/^cpu: /    go sees cpu: /p' "$2" | sed 1q
	fi
}

# ---- sections ------------------------------------------------------------

# section_context: bench_context (context tree operations, memory per
# context) against Go's context package.
section_context() {
	c_out=$results/context-libctx.txt
	go_out=$results/context-go.txt
	: >"$go_out"

	echo "## context tree (bench_context)"
	echo
	if ! "$builddir/bench/bench_context" $quick >"$c_out"; then
		echo "bench_context FAILED; its output is in $c_out" >&2
		return 1
	fi
	if [ -n "$go" ] &&
	   ! run_go "$go_out" \
		'^Benchmark(CancelTree|WithCancel|WithTimeout|CommonParentCancel|CheckCanceled|DeepValue)$' \
		'^TestLive$'; then
		echo "Go benchmarks FAILED; their output is in $go_out" >&2
		cat "$go_out" >&2
		return 1
	fi
	header "$c_out" "$go_out"
	echo
	[ -n "$go" ] ||
		echo "(go not found at configure time: libctx column only)"
	compare context "$c_out" "$go_out" "$results/context.csv" \
		"BytesPerCtx/WithCancel/=128 BytesPerCtx/WithTimeout/=192 FdsPerCtx/=0" \
		"CheckCanceled/Done-poll=CheckCanceled/Done" \
		"CheckCanceled/Done-poll" \
		"WithTimeout/=ns/pair"
	echo
	echo "CSV: $results/context.csv"
}

mkdir -p "$results" || exit 1
section_context || status=1
exit $status
