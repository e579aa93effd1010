#!/bin/sh
# inherit.sh: a program without libctx that keeps to the context its
# parent passed it with pass_ctx (ctx_proc_spawn(3), ctx_inherited(3)).
#
#	inherit.sh [SECONDS]     SECONDS of work (default 10)
#
# CTX_TIMEOUT_NS  the nanoseconds the parent's context had left when it
#                 started this script (absent: no deadline)
# CTX_DONE_FD     a descriptor (a pipe) that reaches end of file when the
#                 parent's context ends or the parent dies; a "D" comes
#                 first when the deadline ended it
#
# The work stops at the first of the three: done, the budget spent, the
# descriptor at its end.  Exit 0 when the work was done, 1 when it was
# stopped, saying why on stderr.  Any POSIX shell: /dev/fd/N opens the
# pipe again, where a redirection of dash stops at descriptor 9.
set -u
sleep "${1:-10}" </dev/null >/dev/null 2>&1 &
work=$!
watchers=
if [ -n "${CTX_DONE_FD:-}" ]; then
	(
		why=
		read -r why <"/dev/fd/$CTX_DONE_FD" || true
		[ "$why" = D ] && why="deadline exceeded" || why="canceled"
		echo "inherit.sh: the parent's context ended: $why" >&2
		kill "$work" 2>/dev/null
	) &
	watchers=$!
fi
if [ -n "${CTX_TIMEOUT_NS:-}" ]; then
	secs=$(awk -v ns="$CTX_TIMEOUT_NS" 'BEGIN { printf "%.3f", ns / 1e9 }')
	(
		sleep "$secs" </dev/null >/dev/null 2>&1
		echo "inherit.sh: the budget of $secs s is spent" >&2
		kill "$work" 2>/dev/null
	) &
	watchers="$watchers $!"
fi
status=0
wait "$work" 2>/dev/null || status=1
# shellcheck disable=SC2086 # a list of process IDs
[ -n "$watchers" ] && kill $watchers 2>/dev/null
[ "$status" = 0 ] && echo "inherit.sh: work done"
exit "$status"
