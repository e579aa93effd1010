#!/bin/sh
# Run libctx's benchmark programs, then bench/report.py, which makes the
# tables, the verdicts and the picture from their output and from the
# list of rows in bench/rows.txt.
#
#   bench/run.sh BUILDDIR SRCDIR [GO] [--quick]
#
# `make bench` calls this with absolute directories and the configured
# `go` (empty when none was found); `make bench-quick` adds --quick,
# which runs every measurement briefly, for CI.  From the environment:
# CXX (default g++) builds the std::stop_token implementation if it takes
# -std=c++20 (decided here, at run time: configure does not look for a
# C++ compiler); GNUPLOT (default: gnuplot on the PATH) draws the picture;
# PYTHON3 (default python3) runs the report.
#
# The programs (each prints the machine, checks that what it measured
# happened, and exits 1 if not), all printing the one format of
# bench/benchutil.h:
#   bench_impls    libctx, the condvar approach, std::stop_token, nsync
#                  and the kernel floor, scenario by scenario (impl.h)
#   bench_sync     channels and threads beside condvar queues and pthreads
#   bench_calls    libctx's calls beside the plain ones: the system-call
#                  surface, condition variables, semaphores, select,
#                  spawn, server contexts
#   bench_cpp      <ctx.hpp> beside the C calls and std::stop_token
#   bench_backend  echo and file reads; it and bench_impls's wake-ups and
#                  hot path run once per backend (CTX_BACKEND=epoll, then
#                  io_uring when it is there)
#   bench_outgoing dial, TLS and curl beside the plain libraries
#   bench_conn     examples/tcpproxy beside relays written by hand (1 GiB,
#                  descriptors and threads per connection), and
#                  ctx_conn_read_line beside read(2)
#   bench_db       libctx-pq and libctx-redis beside plain libpq and
#                  hiredis, against throwaway servers; deadlines
#   bench_context  Go's context benchmarks on libctx, in turn with Go's
#                  own (bench/go), each pair of runs one pair of figures
#
# Everything goes to BUILDDIR/bench/results: each program's output
# (<program>[-<backend or run>].csv), Go's (go-<run>.txt), each table as
# CSV (<table>.csv), raw latency samples (samples/) and the picture
# (bench.png).  Targets are reported, not enforced: the exit status is 1
# only when something did not run or did not check out (a wait ended
# wrongly, a byte went missing, a row the table expects is absent).

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
stoptoken=      # the shared object of the stop_token implementation

if [ -n "$go" ] && ! "$go" version >/dev/null 2>&1; then
	echo "bench: '$go' does not run; Go column left out" >&2
	go=
fi

fail() {
	echo "bench: FAILED: $*" >&2
	status=1
}

uptime_s() {
	awk '{ print $1 }' /proc/uptime
}

# run OUT PROGRAM ARGS...: BUILDDIR/bench/PROGRAM, its output in
# results/OUT.csv, its errors in results/OUT.err; says how long it took.
run() {
	out=$1
	prog=$2
	shift 2
	t0=$(uptime_s)
	printf 'bench: %s ... ' "$out" >&2
	if "$builddir/bench/$prog" $quick "$@" >"$results/$out.csv" \
	   2>"$results/$out.err"; then
		awk -v a="$t0" -v b="$(uptime_s)" \
			'BEGIN { printf "%.1f s\n", b - a }' >&2
	else
		echo "exit status $?" >&2
		fail "$out: $(cat "$results/$out.err")"
	fi
}

# build_stoptoken: the stop_token implementation, if ${CXX:-g++} does
# C++20.  First a small file, to tell "no C++20 compiler" (left out) from
# "stoptoken.cc does not build" (a failure).
build_stoptoken() {
	cxx=${CXX:-g++}
	so=$builddir/bench/stoptoken.so
	probe=$builddir/bench/cxx20-probe
	log=$results/stoptoken-build.txt
	printf '#include <stop_token>\nint main() { std::stop_source s; return s.stop_requested(); }\n' \
		>"$probe.cc"
	if ! $cxx -std=c++20 -pthread "$probe.cc" -o "$probe" >"$log" 2>&1; then
		echo "bench: '$cxx -std=c++20' cannot build std::stop_token: stop_token column left out (see $log)" >&2
		rm -f "$probe.cc" "$probe"
		return 0
	fi
	rm -f "$probe.cc" "$probe"
	echo "# C++: $($cxx --version | sed 1q) (-std=c++20) for stop_token" \
		>>"$results/env.csv"
	if [ -f "$so" ] && [ "$so" -nt "$srcdir/bench/stoptoken.cc" ] &&
	   [ "$so" -nt "$srcdir/bench/impl.h" ]; then
		stoptoken=$so
		return 0
	fi
	if $cxx -std=c++20 -O2 -Wall -Wextra -fPIC -shared -pthread \
	    -fvisibility=hidden -I"$srcdir/bench" \
	    "$srcdir/bench/stoptoken.cc" -o "$so.tmp" >>"$log" 2>&1 &&
	   mv "$so.tmp" "$so"; then
		stoptoken=$so
	else
		rm -f "$so.tmp"
		fail "bench/stoptoken.cc does not build with $cxx: $(cat "$log")"
	fi
}

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

# run_go K: one run of the benchmarks and TestLive of bench/go, on 2
# threads as the Go reference numbers were taken, into results/go-K.txt.
run_go() {
	benchtime=200ms
	[ -n "$quick" ] && benchtime=20ms
	printf 'bench: go-%s ... ' "$1" >&2
	t0=$(uptime_s)
	if (
		go_env
		cd "$srcdir/bench/go" || exit 1
		"$go" version || exit 1
		"$go" test -count=1 -run '^TestLive$' -v . || exit 1
		"$go" test -run '^$' -bench . -benchmem -cpu 2 \
			-benchtime "$benchtime" -count 1 .
	) >"$results/go-$1.txt" 2>&1; then
		awk -v a="$t0" -v b="$(uptime_s)" \
			'BEGIN { printf "%.1f s\n", b - a }' >&2
	else
		echo "failed" >&2
		fail "Go benchmarks: $(tail -n 20 "$results/go-$1.txt")"
	fi
}

# A fresh results directory: nothing left from an earlier run can pass
# for this one's.
rm -rf "$results" && mkdir -p "$results/samples" || exit 1
start=$(uptime_s)

build_stoptoken
run bench_impls bench_impls --samples "$results/samples" \
	${stoptoken:+--stoptoken "$stoptoken"}
if grep -q '^# implementations:.* nsync' "$results/bench_impls.csv"; then
	v=$(dpkg-query -W -f '${Version}' libnsync-dev 2>/dev/null) || v=
	echo "# nsync: ${v:+libnsync-dev }${v:-the one configure found}" \
		>>"$results/env.csv"
fi
run bench_sync bench_sync
run bench_calls bench_calls
# bench_cpp needs C++20 (configure builds it where $CXX has std::jthread).
if [ -x "$builddir/bench/bench_cpp" ]; then
	run bench_cpp bench_cpp
else
	echo "# skipped: cpp/: bench_cpp not built (no C++20 compiler)" \
		>"$results/bench_cpp.csv"
	echo "bench: bench_cpp not built (no C++20 compiler): cpp table left out" >&2
fi
# The backends side by side: bench_backend and bench_impls's wake-ups and
# hot path on each, one run after the other.  A build without liburing,
# or a kernel that refuses a ring, falls back to epoll: each program says
# which backend it got, and a run that fell back is not shown as io_uring.
for be in epoll io_uring; do
	CTX_BACKEND=$be
	export CTX_BACKEND
	run "bench_backend-$be" bench_backend
	if ! grep -q "^# libctx backend: $be" \
	     "$results/bench_backend-$be.csv"; then
		rm -f "$results/bench_backend-$be.csv"
		break
	fi
	run "bench_impls-$be" bench_impls --impls libctx,floor \
		--only 'wake/*/read,wake/*/wait,wake/*/sleep,hotpath/*'
done
unset CTX_BACKEND
run bench_outgoing bench_outgoing
run bench_conn bench_conn
run bench_db bench_db
# libctx beside Go: each run of bench_context, then one of Go's, is a pair.
pairs=5
[ -n "$quick" ] || [ -z "$go" ] && pairs=1
for k in $(seq "$pairs"); do
	run "bench_context-$k" bench_context --run "$k"
	[ -n "$go" ] && run_go "$k"
done

"${PYTHON3:-python3}" "$srcdir/bench/report.py" "$results" \
	"$srcdir/bench/rows.txt" ${GNUPLOT:+--gnuplot "$GNUPLOT"} || status=1
awk -v a="$start" -v b="$(uptime_s)" \
	'BEGIN { printf "\nBenchmarks took %.0f s.\n", b - a }'
[ $status -eq 0 ] || echo "bench: something did not run or check out: see above" >&2
exit $status
