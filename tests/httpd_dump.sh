#!/usr/bin/env bash
# examples/httpd under CTX_DUMP_SIGNAL=USR1 (issue 28): with requests in
# flight -- two in /slow's work, one whose header is still coming -- a
# SIGUSR1 writes ctx_dump's report to CTX_DUMP_FILE, and the server goes
# on serving.  The report shows the accept loop on the listening socket,
# the two handlers in ctx_sleep under their request's deadline, hang-up
# and values with the file:line that made each, the header read on the
# client's socket with both addresses, and the library threads.  Skips (77) without httpd or curl.
set -euo pipefail

ex=${EXAMPLES:-examples}
httpd=$ex/httpd
if [ ! -x "$httpd" ]; then
	echo "SKIP: $httpd is not built (no http-parser at configure time)"
	exit 77
fi
CURL=${CURL:-$(command -v curl || true)}
[ -n "$CURL" ] || { echo "SKIP: curl not found"; exit 77; }

tmp=$(mktemp -d)
pid=
clients=()
cleanup() {
	local status=$?
	exec 3>&- 2>/dev/null || true
	for p in "${clients[@]}" $pid; do
		kill -KILL "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [ "$status" != 0 ]; then
		echo "# httpd's log:"; sed 's/^/#   /' "$tmp/log" || true
		echo "# the reports:"; sed 's/^/#   /' "$tmp/dump" || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

CTX_DUMP_SIGNAL=USR1 CTX_DUMP_FILE=$tmp/dump \
	"$httpd" --port 0 --slow 60000 --timeout 90000 >"$tmp/out" 2>"$tmp/log" &
pid=$!
for i in $(seq 200); do
	grep -q '^listening on [0-9]*$' "$tmp/out" 2>/dev/null && break
	sleep 0.05
done
port=$(sed -n '1s/^listening on \([0-9]*\)$/\1/p' "$tmp/out")
[ -n "$port" ] || fail "httpd did not start"
echo "# httpd: pid $pid, port $port"

# In flight: two requests in /slow's work, one header half sent.
for i in 1 2; do
	"$CURL" -s -o /dev/null --max-time 120 "http://127.0.0.1:$port/slow" &
	clients+=($!)
done
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /fast HTTP/1.1\r\nHost: x\r\n' >&3

# last: the last report in the file.
last() { awk '/^libctx dump of process/ { r = "" } { r = r $0 "\n" }
	END { printf "%s", r }' "$tmp/dump"; }
for i in $(seq 100); do
	kill -USR1 "$pid"
	sleep 0.2
	r=$(last 2>/dev/null || true)
	[ "$(grep -c '^  thread [0-9]* "[^"]*": in ctx_sleep' <<<"$r")" -ge 2 ] &&
		grep -q '": in ctx_read, waiting for fd' <<<"$r" && break
done
echo "# the last report:"
sed 's/^/#   /' <<<"$r"

check() { grep -qE -- "$1" <<<"$r" || fail "the report has no /$1/"; }
check "^libctx dump of process $pid "
check "\": in ctx_accept, waiting for fd [0-9]+ \(TCP socket listening on 127\.0\.0\.1:$port\)"
[ "$(grep -cE '": in ctx_sleep, waiting for its context or the time, for [0-9.]+ s, [0-9.]+ s left$' <<<"$r")" = 2 ] ||
	fail "not two handlers in ctx_sleep with time left"
check "\": in ctx_read, waiting for fd [0-9]+ \(TCP socket 127\.0\.0\.1:$port, peer 127\.0\.0\.1:[0-9]+\)"
# A handler's chain, each with the file:line that made it: the
# request's deadline, the hang-up, the values.
check '^      WithDeadline made at (.*/)?request\.c:[0-9]+, deadline in [0-9.]+ s$'
check '^      WithHangup made at (.*/)?request\.c:[0-9]+$'
check '^      WithValue made at (.*/)?accept\.c:[0-9]+ \(key 0x[0-9a-f]+\)$'
for t in ctx-dump ctx-signals ctx-watch; do
	check "^  thread [0-9]+ \"$t\": "
done

# The server went on: it still answers, and the requests are still on.
code=$("$CURL" -s -o /dev/null --max-time 10 -w '%{http_code}' \
	"http://127.0.0.1:$port/fast")
[ "$code" = 200 ] || fail "GET /fast after the dumps: $code"
kill -0 "$pid" || fail "httpd is gone"
for c in "${clients[@]}"; do
	kill -0 "$c" 2>/dev/null || fail "a /slow request ended early"
done
echo "ok: the report of httpd with 3 requests in flight; httpd went on"
