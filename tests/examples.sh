#!/usr/bin/env bash
# Run the simple examples and check what they print (and how fast).
# Run by `make check` from the build directory; about 6 s.
set -euo pipefail
. "$(dirname "$0")/tap.sh"

ex=${EXAMPLES:-examples}
for p in workers timeout propagation waitgroup foreign_loop workqueue runjobs; do
	if [ ! -x "$ex/$p" ]; then
		echo "SKIP: $ex/$p is not built"
		exit 77
	fi
done

tmp=$(mktemp -d)
bg=
cleanup() {
	[ -n "$bg" ] && kill -KILL "$bg" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

fail=0
has() { grep -qF -- "$1" "$out"; }
hasnt() { ! grep -qF -- "$1" "$out"; }

# run LIMIT_S PROGRAM ARGS...: its output in $out, exit status in $rc,
# wall time in $ms; never longer than LIMIT_S.
run() {
	local limit=$1 t0
	shift
	out=$tmp/$(basename "$1").out
	t0=$(now_ms)
	rc=0
	timeout -k 1 "$limit" "$@" >"$out" 2>&1 || rc=$?
	ms=$(($(now_ms) - t0))
	echo "# $* (exit $rc, $ms ms):"
	sed 's/^/#   /' "$out"
}

# ---- workers: cancelled after 2 s, each says so, main waits ----------
run 10 "$ex/workers"
check "workers exits 0" [ "$rc" -eq 0 ]
for n in 0 1 2; do
	check "worker $n stopped: context canceled" \
		has "Worker $n stopped: context canceled"
done
check "workers ran about 2 s ($ms ms)" between "$ms" 1900 4000
check "main waited for all workers" has "main: all 3 workers stopped"

# ---- timeout: 50 ms of work against 150 ms, then swapped ------------
run 5 "$ex/timeout" 50 150
check "timeout 50 150 exits 0" [ "$rc" -eq 0 ]
check "50 ms of work under 150 ms: work complete" has "work complete"
check "... and not cancelled" hasnt "work cancelled"
run 5 "$ex/timeout" 150 50
check "timeout 150 50 exits 0" [ "$rc" -eq 0 ]
check "150 ms of work under 50 ms: work cancelled" \
	has "work cancelled: context deadline exceeded"
check "... and not complete" hasnt "work complete"
check "... and it ended at the deadline ($ms ms)" between "$ms" 40 1000

# ---- propagation: the request ID at every level, the deadline ends
# the database wait --------------------------------------------------------
run 10 "$ex/propagation"
check "propagation exits 0" [ "$rc" -eq 0 ]
for level in handler service db; do
	check "req-2 seen by $level" grep -q "^\[req-2\] $level:" "$out"
done
check "req-1 answered in time" has "[req-1] handler: 200 OK"
check "req-2: the database wait ended by the deadline" \
	grep -qE '^\[req-2\] db: context deadline exceeded after [0-9]+ ms' "$out"
dbms=$(sed -n 's/^\[req-2\] db: context deadline exceeded after \([0-9]*\) ms.*/\1/p' "$out")
check "req-2: ... at the 300 ms deadline (${dbms:-?} ms)" \
	between "${dbms:-0}" 280 900
check "req-2: the error goes back up to the handler" \
	has "[req-2] handler: 504 Gateway Timeout: context deadline exceeded"

# ---- waitgroup: jobs of 200..1000 ms under a 500 ms deadline --------
run 10 "$ex/waitgroup"
check "waitgroup exits 0" [ "$rc" -eq 0 ]
for n in 0 1; do
	check "worker $n finished its job" has "worker $n: done"
done
for n in 2 3 4; do
	check "worker $n stopped at the deadline" \
		grep -qE "^worker $n: stopped .*context deadline exceeded" "$out"
done
check "main waited for every worker" has "main: all workers returned"
check "... and no longer than the deadline ($ms ms)" between "$ms" 450 2500

# ---- workqueue: a ctx_cond_t queue and a select loop, one cancel ----
run 10 "$ex/workqueue" 600
check "workqueue exits 0" [ "$rc" -eq 0 ]
check "workqueue: the ticker ticked" grep -qE '^tick [0-9]+: [0-9]+ jobs done' "$out"
check "workqueue: the select loop saw the shutdown" \
	grep -qE '^dispatcher: shutdown after [0-9]+ ms: context canceled' "$out"
for n in 0 1; do
	check "workqueue: producer $n stopped by the cancel" \
		grep -qE "^producer $n: stopped after [0-9]+ jobs: context canceled" "$out"
done
for n in 0 1 2; do
	check "workqueue: consumer $n stopped by the cancel" \
		grep -qE "^consumer $n: stopped after [0-9]+ jobs: context canceled" "$out"
done
check "workqueue: main waited for every worker" has "main: all workers stopped"
check "workqueue: ... about 600 ms ($ms ms)" between "$ms" 550 3000

# ---- foreign_loop: the done descriptor in the program's own loop ----
# loop_tests NAME: at the deadline, then on SIGINT.
loop_tests() {
	local prog=$ex/$1 i
	run 10 "$prog" 700
	check "$1 exits 0" [ "$rc" -eq 0 ]
	check "$1: the loop ran its own events" has "loop: tick"
	check "$1: the loop saw the context end at its deadline" \
		grep -qE "^loop: context done after [0-9]+ ms: context deadline exceeded" "$out"
	check "$1: ... at 700 ms ($ms ms)" between "$ms" 650 2500
	[ "$1" = foreign_loop ] &&
		check "$1: the worker stopped with the same context" \
			has "worker: stopped: context deadline exceeded"

	out=$tmp/$1.sig.out
	"$prog" 20000 >"$out" 2>&1 &
	bg=$!
	for i in $(seq 100); do
		grep -q "tick" "$out" && break
		sleep 0.05
	done
	kill -INT "$bg"
	for i in $(seq 60); do
		kill -0 "$bg" 2>/dev/null || break
		sleep 0.05
	done
	rc=0
	if kill -0 "$bg" 2>/dev/null; then
		kill -KILL "$bg"
		rc=124
	fi
	wait "$bg" || rc=$?
	bg=
	sed 's/^/#   /' "$out"
	check "$1: SIGINT ends the loop, exit 0 (got $rc)" [ "$rc" -eq 0 ]
	check "$1: ... with context canceled" \
		grep -qE "^loop: context done after [0-9]+ ms: context canceled" "$out"
}
loop_tests foreign_loop
if [ -x "$ex/foreign_loop_uv" ]; then
	loop_tests foreign_loop_uv
else
	echo "# foreign_loop_uv not built (no libuv): skipped"
fi

# ---- runjobs: own timeouts, SIGTERM then SIGKILL 500 ms later, output
# captured, SIGINT cancels all ------------------------------------------
run 10 "$ex/runjobs" 5000:'echo hi; exit 2' 300:'echo start; sleep 20' \
	300:"trap 'echo bye; exit 3' TERM; echo t; sleep 20 & wait" \
	300:"trap '' TERM; echo stubborn; sleep 20 & wait"
check "runjobs exits 1 (jobs failed)" [ "$rc" -eq 1 ]
check "job 1: output and exit code" has "$(printf 'hi\n[1] exit 2')"
check "job 2: SIGTERM at its timeout" \
	has "[2] killed by Terminated (context deadline exceeded)"
check "job 3: its own exit code on SIGTERM, output kept" \
	has "$(printf 'bye\n[3] exit 3 (context deadline exceeded)')"
check "job 4 ignores SIGTERM: SIGKILL" \
	has "[4] killed by Killed (context deadline exceeded)"
check "... 500 ms later, not at the sleep's end ($ms ms)" between "$ms" 750 5000

out=$tmp/runjobs.sig.out
"$ex/runjobs" 20000:'echo a; sleep 20' 20000:'sleep 20' >"$out" 2>&1 &
bg=$!
sleep 0.5
kill -INT "$bg"
rc=0
for i in $(seq 100); do
	kill -0 "$bg" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$bg" 2>/dev/null && { kill -KILL "$bg"; rc=124; }
wait "$bg" || rc=$?
bg=
sed 's/^/#   /' "$out"
check "runjobs: SIGINT ends it (exit $rc)" [ "$rc" -eq 1 ]
check "... and cancels every job" \
	[ "$(grep -c 'killed by Terminated (context canceled)' "$out")" -eq 2 ]

exit $fail
