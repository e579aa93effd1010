#!/usr/bin/env bash
# A request's deadline and its client's hang-up down a chain of three
# examples/httpd processes, A -> B -> C, each --upstream the next (A's and
# B's /proxy call the next through libctx-curl with the time left in
# grpc-timeout; C's /slow works for 5 s):
#
#  1. a request with a 300 ms budget (grpc-timeout: 300m) reaches C with
#     less than 300 ms left, and all three answer 504 near 300 ms;
#  2. a client that goes away from A ends C's work within 100 ms (the
#     hang-up ends A's transfer, whose close is B's hang-up, ...);
#  3. Envoy's x-envoy-expected-rq-timeout-ms caps a request too, and a
#     malformed deadline header gets 400.
#
# Times across the processes are on CLOCK_MONOTONIC, which they share:
# each httpd logs its start on it, python3 reads it at the client's
# close.  Run by `make check` from the build directory; about 1 s.  Skips
# (77) without httpd (or one built without libcurl) or curl.
set -euo pipefail

ex=${EXAMPLES:-examples}
httpd=$ex/httpd
if [ ! -x "$httpd" ]; then
	echo "SKIP: $httpd is not built (no http-parser at configure time)"
	exit 77
fi
if ! "$httpd" --upstream http://127.0.0.1:1/ --help >/dev/null 2>&1; then
	echo "SKIP: $httpd has no --upstream (built without libcurl)"
	exit 77
fi
CURL=${CURL:-$(command -v curl || true)}
if [ -z "$CURL" ]; then
	echo "SKIP: curl not found"
	exit 77
fi
PY=${PYTHON:-$(command -v python3 || true)}
# check, now_ms, between, and within (3x slack in sanitizer builds).
. "$(dirname "$0")/tap.sh"

tmp=$(mktemp -d)
pids=()
cleanup() {
	local status=$? p f
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$status" != 0 ]; then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] || continue
			echo "# ---- $f (tail)"
			tail -n 30 "$f" | sed 's/^/#   /'
		done
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail=0

# wait_for FILE PATTERN [TRIES]: poll (every 20 ms) until grep finds it.
wait_for() {
	local i
	for i in $(seq "${3:-250}"); do
		grep -qE -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# start NAME ARGS...: run httpd on a free port; sets port_NAME.
start() {
	local name=$1 p
	shift
	"$httpd" --port 0 --quiet "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
	pids+=("$!")
	if ! wait_for "$tmp/$name.out" '^listening on [0-9]+$'; then
		echo "Bail out! httpd $name did not start"
		exit 1
	fi
	p=$(sed -n '1s/^listening on \([0-9]*\)$/\1/p' "$tmp/$name.out")
	printf -v "port_$name" '%s' "$p"
	echo "# httpd $name: port $p, $*"
}

# clock NAME: the server's start on the monotonic clock, in ms.
clock() {
	sed -n 's/.*started at \([0-9.]*\) s on the monotonic clock.*/\1/p' \
		"$tmp/$1.log" | awk '{ printf "%d", $1 * 1000 }'
}

# at NAME PATTERN: when the server logged its last line matching
# PATTERN, in ms on the monotonic clock.
at() {
	local t
	t=$(grep -E -- "$2" "$tmp/$1.log" | tail -1 | awk '{ print $2 }')
	awk -v s="$(clock "$1")" -v t="$t" 'BEGIN { printf "%d", s + t * 1000 }'
}

# took NAME PATTERN: the "(N ms)" of the server's last line matching it.
took() {
	grep -E -- "$2" "$tmp/$1.log" | tail -1 |
		sed -n 's/.*(\([0-9]*\) ms).*/\1/p'
}

start C --timeout 10000 --slow 5000
start B --timeout 10000 --upstream "http://127.0.0.1:$port_C/slow"
start A --timeout 10000 --upstream "http://127.0.0.1:$port_B/proxy"

# ===== 1. a 300 ms budget down the chain ================================
r=$("$CURL" -s -o "$tmp/body" -w '%{http_code} %{time_total}' --max-time 10 \
	-H 'grpc-timeout: 300m' "http://127.0.0.1:$port_A/proxy") || true
code=${r%% *}
ms=$(awk -v s="${r##* }" 'BEGIN { printf "%d", s * 1000 }')
wait_for "$tmp/C.log" 'GET /slow -> 504' || true
wait_for "$tmp/B.log" 'GET /proxy -> 504' || true
budget_c=$(sed -n 's/.*budget \([0-9]*\) us (grpc-timeout.*/\1/p' \
	"$tmp/C.log" | tail -1)
budget_b=$(sed -n 's/.*budget \([0-9]*\) us (grpc-timeout.*/\1/p' \
	"$tmp/B.log" | tail -1)
echo "# budget left: ${budget_b:-?} us at B, ${budget_c:-?} us at C (of 300000 at A)"
check "the budget reaches C, less than 300 ms (${budget_c:-none} us)" \
	eval 'between "${budget_c:-0}" 150000 299999'
check "... less than at B (${budget_b:-none} us)" \
	eval '[ -n "$budget_b" ] && [ "${budget_c:-0}" -lt "$budget_b" ]'
check "A answers 504 near 300 ms (got $code after $ms ms)" \
	eval '[ "$code" = 504 ] && between "$ms" 250 $((600 * slack))'
tb=$(took B 'GET /proxy -> 504' || true)
tc=$(took C 'GET /slow -> 504' || true)
echo "# 504 after: A $ms ms, B ${tb:-?} ms, C ${tc:-?} ms"
check "B answers 504 near 300 ms (${tb:-none} ms)" \
	eval '[ -n "$tb" ] && between "$tb" 200 $((600 * slack))'
check "C answers 504 near 300 ms, its work stopped by the deadline (${tc:-none} ms)" \
	eval '[ -n "$tc" ] && between "$tc" 150 $((600 * slack)) &&
	      grep -qE "work stopped .*deadline exceeded" "$tmp/C.log"'

# ===== 2. the client goes away from A ====================================
if [ -n "$PY" ]; then
	# Send /proxy (A's own 10 s deadline goes down the chain), wait
	# until C works on it, close; print the close on the monotonic clock.
	closed=$("$PY" - "$port_A" "$tmp/C.log" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /proxy HTTP/1.1\r\nHost: x\r\n\r\n")
end = time.monotonic() + 10
while time.monotonic() < end:
    with open(sys.argv[2]) as f:
        if f.read().count("budget ") >= 2:
            break
    time.sleep(0.01)
time.sleep(0.1)
s.close()
print(time.monotonic_ns() // 1000000)
PYEOF
)
	wait_for "$tmp/C.log" 'work stopped .*client went away' || true
	check "disconnect at A: C's work stopped because its client went away" \
		grep -qE 'work stopped .*client went away' "$tmp/C.log"
	wait_for "$tmp/A.log" 'GET /proxy -> 499' || true
	stop_c=$(at C 'work stopped .*client went away')
	stop_a=$(at A 'the client went away')
	delay=$((stop_c - closed))
	echo "# disconnect at A to C's stop: $delay ms (A saw it after" \
		"$((stop_a - closed)) ms; the logs count whole ms)"
	# The issue's 100 ms; the log's times are whole milliseconds.
	check "... within 100 ms of the close ($delay ms)" \
		eval 'between "$delay" -1 $((100 * slack))'
	check "... and A and B logged 499" \
		eval 'grep -q "GET /proxy -> 499" "$tmp/A.log" &&
		      grep -q "GET /proxy -> 499" "$tmp/B.log"'
else
	echo "ok - # SKIP disconnect test: python3 not found"
fi

# ===== 3. Envoy's header, and a malformed one ============================
r=$("$CURL" -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 \
	-H 'x-envoy-expected-rq-timeout-ms: 200' "http://127.0.0.1:$port_C/slow") || true
ms=$(awk -v s="${r##* }" 'BEGIN { printf "%d", s * 1000 }')
check "x-envoy-expected-rq-timeout-ms: 200: 504 near 200 ms (got ${r%% *} after $ms ms)" \
	eval '[ "${r%% *}" = 504 ] && between "$ms" 150 $((500 * slack))'
code=$("$CURL" -s -o /dev/null -w '%{http_code}' --max-time 10 \
	-H 'grpc-timeout: 123456789m' "http://127.0.0.1:$port_A/proxy") || true
check "a malformed grpc-timeout (9 digits): 400 (got $code)" [ "$code" = 400 ]
code=$("$CURL" -s -o /dev/null -w '%{http_code}' --max-time 10 \
	-H 'grpc-timeout: 5 s' "http://127.0.0.1:$port_A/proxy") || true
check "a malformed grpc-timeout (a space, a lower-case unit): 400 (got $code)" \
	[ "$code" = 400 ]

# ===== the three stop cleanly ============================================
for p in "${pids[@]}"; do
	kill -TERM "$p" 2>/dev/null || true
done
rcs=
for p in "${pids[@]}"; do
	rc=0
	wait "$p" || rc=$?
	rcs="$rcs $rc"
done
pids=()
check "SIGTERM: all three exit 0 (got$rcs)" [ "$rcs" = " 0 0 0" ]

exit $fail # cleanup shows the logs if it is not 0
