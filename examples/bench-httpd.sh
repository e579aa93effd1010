#!/usr/bin/env bash
# Load on examples/httpd: wrk -t2 -c100 -d10s against /fast, on 127.0.0.1.
# Prints requests/s, the p99 latency and the error count; fails if any
# request failed.  Run by `make bench-httpd`.
#
#	bench-httpd.sh HTTPD WRK_SCRIPT WRK
set -euo pipefail

httpd=$1
script=$2
wrk=${3:-}
if [ -z "$wrk" ]; then
	echo "bench-httpd: skipped: wrk was not found at configure time"
	exit 0
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# --quiet: no access log line per request, which would measure stderr.
"$httpd" --port 0 --quiet >"$tmp/out" 2>"$tmp/log" &
pid=$!
for i in $(seq 100); do
	grep -q '^listening on' "$tmp/out" && break
	sleep 0.05
done
port=$(sed -n '1s/^listening on \([0-9]*\)$/\1/p' "$tmp/out")
if [ -z "$port" ]; then
	echo "bench-httpd: httpd did not start" >&2
	cat "$tmp/log" >&2
	exit 1
fi

"$wrk" -t2 -c100 -d10s --latency -s "$script" \
	"http://127.0.0.1:$port/fast" | tee "$tmp/wrk"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
if [ "$rc" -ne 0 ]; then
	echo "bench-httpd: httpd exited $rc" >&2
	tail -n 20 "$tmp/log" >&2
	exit 1
fi
errors=$(sed -n 's/^bench-httpd: errors: \([0-9]*\).*/\1/p' "$tmp/wrk")
if [ "${errors:-1}" != 0 ]; then
	echo "bench-httpd: FAIL: ${errors:-unknown} errors" >&2
	exit 1
fi
