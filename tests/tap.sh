# Sourced by the shell tests (examples.sh, httpd.sh, fetch.sh): TAP
# checks and the time helpers they share.  Each script sets `fail=0`
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
