#!/bin/sh
# share/libctx's bpftrace scripts against a program (issue 28): with
# ctx-cancel-latency.bt attached to tests/dumpee while it ends 20 waits
# in ctx_read by cancels, the histogram of ctx_read holds 20 returns;
# with ctx-waits.bt attached while a thread waits in ctx_read, the list
# shows it.  Needs root, bpftrace, a kernel with uprobes and a library
# with the probes: skips (77) saying which is missing.
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root (bpftrace needs it)"
command -v bpftrace >/dev/null 2>&1 || skip "no bpftrace"
[ -d /sys/bus/event_source/devices/uprobe ] ||
	skip "the kernel has no uprobes (/sys/bus/event_source/devices/uprobe)"
grep -q '^#define HAVE_SDT 1' config.h 2>/dev/null ||
	skip "built without <sys/sdt.h>: no probes"
if ! err=$(timeout 60 bpftrace -e 'BEGIN { exit(); }' 2>&1 >/dev/null); then
	skip "bpftrace cannot run a program here: $(echo "$err" | tail -1)"
fi

tmp=$(mktemp -d)
prog=
cleanup() {
	[ -n "$prog" ] && kill "$prog" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# run SCRIPT N MS: dumpee cancels under bpftrace -p, once the script
# said it is tracing; bpftrace's output in $tmp/out.
run() {
	./tests/dumpee cancels "$tmp/go" "$2" "$3" &
	prog=$!
	# The wrapper libtool may put in front has to become the program,
	# with libctx mapped, before bpftrace looks for the probes.
	i=0
	until grep -q libctx "/proc/$prog/maps" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "FAIL: no libctx in $prog"; exit 1; }
		sleep 0.1
	done
	timeout 120 bpftrace -p "$prog" "$srcdir/share/libctx/$1" \
		>"$tmp/out" 2>"$tmp/err" &
	bt=$!
	i=0
	until grep -q '^Tracing' "$tmp/out" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 600 ] || ! kill -0 $bt 2>/dev/null; then
			echo "FAIL: bpftrace did not start tracing:"; cat "$tmp/err"; exit 1
		fi
		sleep 0.1
	done
	touch "$tmp/go"
}

# ---- the cancel-to-return latency ------------------------------------------
n=20
run ctx-cancel-latency.bt $n 0
wait $prog || { echo "FAIL: dumpee cancels exited $?"; exit 1; }
prog=
wait $bt # bpftrace ends with the process it traces, and prints
sum=$(awk '/^@us\[ctx_read\]:/ { on = 1; next }
	on && /^\[/ { s += $3 } on && /^$/ { on = 0 } END { print s + 0 }' "$tmp/out")
cat "$tmp/out"
if [ "$sum" != "$n" ]; then
	echo "FAIL: the histogram of ctx_read holds $sum returns, not $n"
	grep -v "uprobe_events\|detach probe\|RLIMIT" "$tmp/err"
	exit 1
fi
echo "ok: ctx-cancel-latency.bt: $n returns of ctx_read after their cancels"

# ---- who waits on what -------------------------------------------------------
rm -f "$tmp/go"
run ctx-waits.bt 1 3000
i=0
until grep -q '^@waiting\[[0-9]*, [^,]*, ctx_read, [0-9]*\]: [0-9]*$' "$tmp/out"; do
	i=$((i + 1))
	if [ $i -ge 300 ]; then
		echo "FAIL: ctx-waits.bt never showed the wait in ctx_read:"
		cat "$tmp/out"; exit 1
	fi
	sleep 0.1
done
wait $prog
prog=
wait $bt
grep '@waiting\[' "$tmp/out" | sort -u | head -3
echo "ok: ctx-waits.bt shows a thread waiting in ctx_read"
