#!/usr/bin/env bash
# examples/fetch against a local server: examples/httpd on a free port if
# it was built, else a small python3 server with the same /fast and /slow.
# Checks what fetch's header promises: one line per URL in order, exit 0
# only if every transfer got an answer, the overall deadline and SIGINT
# ending every transfer promptly in the context's words, the same by
# hand with -r (a ctx_conn_t; ctx_ssl_dial over https), and (with httpd
# and openssl) 200 https URLs at -j 16 over at most 32 connections.  Run by
# `make check` from the build directory; about 5 s.  Skips (77) without
# fetch (no libcurl) or without a server to run.
set -euo pipefail

ex=${EXAMPLES:-examples}
fetch=$ex/fetch
if [ ! -x "$fetch" ]; then
	echo "SKIP: $fetch is not built (no libcurl at configure time)"
	exit 77
fi
PY=${PYTHON:-$(command -v python3 || true)}
if [ ! -x "$ex/httpd" ] && [ -z "$PY" ]; then
	echo "SKIP: neither examples/httpd (no http-parser) nor python3 to serve"
	exit 77
fi
# check, now_ms, between, and within (3x slack in sanitizer builds).
. "$(dirname "$0")/tap.sh"

tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

fail=0

# ---- the server: /fast answers "fast\n" at once, /slow after 10 s ----
log=$tmp/server.log
if [ -x "$ex/httpd" ]; then
	what=httpd
	"$ex/httpd" --port 0 --slow 10000 --timeout 20000 --grace 100 \
		>"$tmp/server.out" 2>"$log" &
	started='accepted'
else
	what=python3
	"$PY" - >"$tmp/server.out" 2>"$log" <<'PYEOF' &
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/slow":
            sys.stderr.write("started /slow\n")
            sys.stderr.flush()
            time.sleep(10)
        elif path != "/fast":
            self.send_error(404)
            return
        body = b"fast\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print("listening on %d" % s.server_address[1], flush=True)
s.serve_forever()
PYEOF
	started='started /slow'
fi
server=$!
pids+=("$server")
for i in $(seq 100); do
	grep -qE '^listening on [0-9]+$' "$tmp/server.out" 2>/dev/null && break
	sleep 0.05
done
port=$(sed -n '1s/^listening on \([0-9]*\)$/\1/p' "$tmp/server.out")
if [ -z "$port" ]; then
	echo "Bail out! the $what server did not start"
	cat "$log"
	exit 1
fi
echo "# serving with $what on port $port"
url=http://127.0.0.1:$port

# run LIMIT_S ARGS...: fetch's output in $out, exit status in $rc, wall
# time in $ms.
run() {
	local limit=$1 t0
	shift
	out=$tmp/fetch.out
	t0=$(now_ms)
	rc=0
	timeout -k 1 "$limit" "$fetch" "$@" >"$out" 2>&1 || rc=$?
	ms=$(($(now_ms) - t0))
	echo "# fetch $* (exit $rc, $ms ms):"
	sed 's/^/#   /' "$out"
}
line() { sed -n "${1}p" "$out"; }
okline() { # N URL: line N reports URL answered 200 with "fast\n"
	line "$1" | grep -qE "^$(printf '%s' "$2" | sed 's/[.?]/\\&/g'): 200, 5 bytes, [0-9.]+ ms$"
}

# ---- every URL answered: exit 0, one line each, in order -------------
run 20 -j 2 "$url/fast" "$url/fast?x=1" "$url/fast?y=2"
check "three URLs: exit 0 (got $rc)" [ "$rc" = 0 ]
check "... three lines" [ "$(wc -l <"$out")" = 3 ]
check "... each 200 with its size, in the order given" \
	eval 'okline 1 "$url/fast" && okline 2 "$url/fast?x=1" && okline 3 "$url/fast?y=2"'

# ---- the overall deadline ends a /slow transfer ------------------------
run 20 -t 0.5 "$url/fast" "$url/slow"
check "-t 0.5 with a /slow URL: exit 1 (got $rc)" [ "$rc" = 1 ]
check "... the /fast one still 200" okline 1 "$url/fast"
check "... the /slow one ended by the deadline ($(line 2))" \
	eval 'line 2 | grep -qE "^$url/slow: context deadline exceeded after [0-9.]+ ms$"'
check "... promptly: at the 500 ms deadline ($ms ms)" \
	between "$ms" 450 $((2000 * slack))

# At the limit (-j 1) a URL waiting for a slot never starts.
run 20 -j 1 -t 0.5 "$url/slow" "$url/fast"
check "-j 1 -t 0.5: the URL behind /slow is not started ($(line 2))" \
	eval '[ "$rc" = 1 ] && line 2 | grep -qx "$url/fast: not started: context deadline exceeded"'

# ---- SIGINT cancels every transfer at once ------------------------------
n0=$(grep -cE -- "$started" "$log" || true)
out=$tmp/sig.out
"$fetch" -j 2 "$url/slow" "$url/slow" "$url/slow" >"$out" 2>&1 &
f=$!
pids+=("$f")
wait_count "$log" "$started" $((n0 + 2)) ||
	echo "# the two transfers were not seen to start"
sleep 0.2
t0=$(now_ms)
kill -INT "$f"
for i in $(seq $((100 * slack))); do
	kill -0 "$f" 2>/dev/null || break
	sleep 0.05
done
rc=0
if kill -0 "$f" 2>/dev/null; then
	kill -KILL "$f"
	rc=124
fi
wait "$f" || rc=$?
took=$(($(now_ms) - t0))
sed 's/^/#   /' "$out"
check "SIGINT: fetch exits 1, promptly (rc $rc, $took ms)" \
	eval '[ "$rc" = 1 ] && within "$took" 1000'
check "... both transfers in flight cancelled, in the context's words" \
	[ "$(grep -cE "^$url/slow: context canceled \(signal INT received\) after [0-9.]+ ms$" "$out")" = 2 ]
check "... the third, waiting for a slot, not started" \
	grep -qx "$url/slow: not started: context canceled (signal INT received)" "$out"

# ---- -r: the same by hand over a ctx_conn_t (issue 24) ---------------
run 20 -r -j 2 "$url/fast" "$url/fast?x=1"
check "-r, two URLs: exit 0 (got $rc), each 200 with its size" \
	eval '[ "$rc" = 0 ] && okline 1 "$url/fast" && okline 2 "$url/fast?x=1"'
run 20 -r -t 0.5 "$url/fast" "$url/slow"
check "-r -t 0.5 with a /slow URL: the deadline ends it, promptly ($ms ms)" \
	eval '[ "$rc" = 1 ] && okline 1 "$url/fast" && line 2 | grep -qE "^$url/slow: context deadline exceeded after [0-9.]+ ms$" && between "$ms" 450 $((2000 * slack))'

# ---- a refused port: that URL's error, the others unaffected -----------
# A port just freed: nothing listens there.
free=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 1)
run 20 "http://127.0.0.1:$free/" "$url/fast"
check "refused port: exit 1 (got $rc)" [ "$rc" = 1 ]
check "... reported as a connect error ($(line 1))" \
	eval 'line 1 | grep -qx "http://127.0.0.1:$free/: Could.*n.t connect to server"'
check "... the other URL still fetched" okline 2 "$url/fast"
check "... at once ($ms ms)" within "$ms" 1000

# ---- keep-alive connections shared by the transfers' threads ----------
# Issue 21: every URL runs on a thread of its own, and each thread made
# its own connection: 200 HTTPS fetches at -j 16 opened 200 (Go's
# http.Client: 21).  Counted from the log of an httpd over TLS, which
# logs "accepted" once per connection.
tls_skip() { echo "ok - # SKIP connection reuse over https: $*"; }
if [ "$what" != httpd ]; then
	tls_skip "examples/httpd is not built"
elif ! command -v openssl >/dev/null 2>&1; then
	tls_skip "no openssl command to make a certificate"
elif ! openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1" -days 1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl.txt" 2>&1; then
	sed 's/^/#   openssl: /' "$tmp/openssl.txt"
	tls_skip "openssl req could not make a certificate"
else
	tlog=$tmp/tls.log
	"$ex/httpd" --port 0 --tls "$tmp/cert.pem" "$tmp/key.pem" \
		>"$tmp/tls.out" 2>"$tlog" &
	tpid=$!
	pids+=("$tpid")
	for i in $(seq 100); do
		grep -qE '^listening on [0-9]+$' "$tmp/tls.out" 2>/dev/null && break
		grep -q 'built without TLS' "$tlog" && break
		sleep 0.05
	done
	tport=$(sed -n '1s/^listening on \([0-9]*\)$/\1/p' "$tmp/tls.out")
	if grep -q 'built without TLS' "$tlog"; then
		tls_skip "httpd was built without OpenSSL"
	elif [ -z "$tport" ]; then
		check "the httpd --tls server starts" false
		sed 's/^/#   /' "$tlog"
	else
		urls=()
		for i in $(seq 200); do
			urls+=("https://127.0.0.1:$tport/fast?i=$i")
		done
		out=$tmp/tls-fetch.out
		rc=0
		timeout -k 1 $((60 * slack)) "$fetch" -j 16 -t $((30 * slack)) \
			-c "$tmp/cert.pem" "${urls[@]}" >"$out" 2>&1 || rc=$?
		conns=$(grep -c 'accepted from' "$tlog" || true)
		answered=$(grep -cE '^https://[^ ]*: 200, 5 bytes, [0-9.]+ ms$' "$out" || true)
		echo "# fetch -j 16 of 200 https URLs: exit $rc, $answered answered, $conns connections"
		[ "$rc" = 0 ] || head -n 5 "$out" | sed 's/^/#   /'
		check "200 https URLs at -j 16: exit 0, all 200 (rc $rc, $answered)" \
			eval '[ "$rc" = 0 ] && [ "$answered" = 200 ]'
		check "... over at most 32 connections ($conns)" \
			eval '[ "$conns" -ge 1 ] && [ "$conns" -le 32 ]'
		# -r over TLS: ctx_ssl_dial, the name checked (an address
		# here: the certificate's IP entry).
		run 20 -r -c "$tmp/cert.pem" "https://127.0.0.1:$tport/fast" \
			"https://127.0.0.1:$tport/fast?y"
		check "-r over https: each 200 (rc $rc)" \
			eval '[ "$rc" = 0 ] && okline 1 "https://127.0.0.1:$tport/fast" && okline 2 "https://127.0.0.1:$tport/fast?y"'
		run 20 -r "https://127.0.0.1:$tport/fast"
		check "-r over https without -c: the system's store refuses it" \
			eval '[ "$rc" = 1 ] && line 1 | grep -qx "https://127.0.0.1:$tport/fast: Protocol error"'
	fi
	kill -TERM "$tpid" 2>/dev/null || true
	wait "$tpid" 2>/dev/null || true
fi

# ---- bad arguments: usage, exit 2 --------------------------------------
for args in "" "-j 0 $url/" "-t 0 $url/" "-t 1x $url/" "-j 2.5 $url/"; do
	run 5 $args
	check "fetch $args: exit 2 with the usage (got $rc)" \
		eval '[ "$rc" = 2 ] && grep -q "^usage: fetch" "$out"'
done

kill -TERM "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
if [ "$fail" != 0 ]; then
	echo "# ---- the server's log (tail)"
	tail -n 30 "$log" | sed 's/^/#   /'
fi
exit $fail
