# Sourced by the shell tests (examples.sh, httpd.sh, fetch.sh,
# tcpproxy.sh): TAP checks and the time and log helpers they share.  Each script sets `fail=0`
# itself and exits with it.
#
# check WHAT CMD...: run CMD; print "ok - WHAT" or "not ok - WHAT".
check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok - $what"
	else
		echo "not ok - $what"
		fail=1
	fi
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
between() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
# A sanitizer build runs several times slower, and its exit is slow too:
# there the upper time bounds get 3x slack (a plain build keeps the
# bounds the issues set).  within MS LIMIT: 0 <= MS <= LIMIT, slackened.
slack=1
if grep -q '^CFLAGS = .*-fsanitize' Makefile 2>/dev/null; then slack=3; fi
within() { between "$1" 0 $(( ($2 + 1) * slack - 1 )); }
# wait_count FILE PATTERN N [SECONDS]: poll until PATTERN is on N lines
# of FILE (a log written by a process in the background), for SECONDS
# at most (5); whether it got there.
wait_count() {
	local i
	for i in $(seq $((${4:-5} * 20))); do
		[ "$(grep -cE -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ] &&
			return 0
		sleep 0.05
	done
	return 1
}
