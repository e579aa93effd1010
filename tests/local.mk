# ---- the tests (included by Makefile.am) ------------------------------
# tests/ mirrors runtime/: a folder of suites per layer of the library
# (core, wait, io, sync, proc, net, server), the soak and fault suites
# beside them, and at the top the runner (main.c), the contract test of
# every blocking call (contract.c with its rows in contract/), the shared
# helpers and the shell tests.  Every suite links into one runner,
# tests/check_ctx, which tests/uring.sh runs again on io_uring.
#
# tests/header.sh: ctx.h under strict ISO C, and the manual's examples.
# (Makefile.am defines TESTS and check_PROGRAMS, for every fragment.)
TESTS += tests/header.sh
EXTRA_DIST += tests/uring.sh tests/header.sh tests/supp.sh tests/tsan.supp
if HAVE_CHECK
# Small programs the suites run: one that forgets a context and a thread
# (core/debug.c runs it), one misuse per argument (core/checks.c), and
# the backend's name (tests/uring.sh asks it).
check_PROGRAMS += tests/leaky tests/misuse tests/backend
tests_leaky_SOURCES = tests/core/leaky.c
tests_leaky_LDADD = libctx.la
tests_misuse_SOURCES = tests/core/misuse.c
tests_misuse_LDADD = libctx.la
tests_backend_SOURCES = tests/wait/backend.c
tests_backend_LDADD = libctx.la
# Linked with the static core, so valgrind runs it without libtool.
check_PROGRAMS += tests/service_threads
tests_service_threads_SOURCES = tests/core/service_threads.c
tests_service_threads_LDADD = libctx-core.la
TESTS += tests/supp.sh
# A 64 KiB __thread array: every kind of library thread still starts.
check_PROGRAMS += tests/big_tls
tests_big_tls_SOURCES = tests/sync/big_tls.c
tests_big_tls_LDADD = libctx.la
TESTS += tests/big_tls
# What tests/wait/dump.c runs with CTX_DEBUG, CTX_DUMP_SIGNAL and
# CTX_DUMP_FILE set, which are read before main.
check_PROGRAMS += tests/dumpee
tests_dumpee_SOURCES = tests/wait/dumpee.c
tests_dumpee_LDADD = libctx.la
# The USDT probes in the library (readelf -n), and share/libctx's
# bpftrace scripts run against tests/dumpee (each skips without its
# tools).
TESTS += tests/wait/probes.sh tests/wait/bpftrace.sh
EXTRA_DIST += tests/wait/probes.sh tests/wait/bpftrace.sh

check_PROGRAMS += tests/check_ctx
TESTS += tests/check_ctx tests/uring.sh
tests_check_ctx_SOURCES = \
	tests/main.c \
	tests/suites.h \
	tests/testutil.h \
	tests/hooks.h \
	tests/contract.c \
	tests/contract.h \
	tests/contract/io.c \
	tests/contract/stream.c \
	tests/contract/socket.c \
	tests/contract/files.c \
	tests/contract/sync.c \
	tests/contract/proc.c \
	tests/contract/net.c \
	tests/core/tree.h \
	tests/core/context.c \
	tests/core/done_fd.c \
	tests/core/values.c \
	tests/core/races.c \
	tests/core/after.c \
	tests/core/debug.c \
	tests/core/checks.c \
	tests/core/asserts.c \
	tests/core/compose.c \
	tests/core/deadline.c \
	tests/core/origin.c \
	tests/core/inline.c \
	tests/wait/reactor.c \
	tests/wait/storm.h \
	tests/wait/storm.c \
	tests/wait/kill.c \
	tests/wait/clock.c \
	tests/wait/dump.c \
	tests/wait/fdcount.c \
	tests/io/pair.h \
	tests/io/pair.c \
	tests/io/stream.c \
	tests/io/accept.c \
	tests/io/shared.c \
	tests/io/wait.c \
	tests/io/xfer.c \
	tests/io/syscalls.c \
	tests/sync/thread.c \
	tests/sync/wg.c \
	tests/sync/chan.c \
	tests/sync/group.c \
	tests/sync/errgroup.c \
	tests/sync/select.c \
	tests/sync/cond.c \
	tests/sync/sem.c \
	tests/proc/proc.c \
	tests/proc/waitpid.c \
	tests/proc/signals.c \
	tests/proc/pidfd.c \
	tests/proc/passctx.c \
	tests/proc/notify.c \
	tests/proc/sigcount.h \
	tests/net/hang.h \
	tests/net/hang.c \
	tests/net/resolve.c \
	tests/net/dial.c \
	tests/net/listen.c \
	tests/net/copy.c \
	tests/net/conn.c \
	tests/server/server.c \
	tests/server/timeout_header.c \
	tests/soak/stress.h \
	tests/soak/stress.c \
	tests/soak/soak.h \
	tests/soak/soak.c \
	tests/soak/soak_ops.c \
	tests/soak/sequence.h \
	tests/soak/sequence.c \
	tests/soak/seq_step.c \
	tests/soak/seq_calls.c \
	tests/faults/faults.h \
	tests/faults/faults.c \
	tests/faults/emfile.c \
	tests/faults/enomem.c \
	tests/faults/storm.c
# The child that tests/proc/passctx.c starts with pass_ctx.
check_PROGRAMS += tests/proc/passctx_child
tests_proc_passctx_child_SOURCES = tests/proc/passctx_child.c
tests_proc_passctx_child_LDADD = libctx-core.la
# -I tests: the suites in the folders include the shared helpers by name.
tests_check_ctx_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_check_ctx_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_check_ctx_LDADD = libctx-core.la $(CHECK_LIBS)
else
check-local:
	@echo "Check was not found at configure time: install 'check' and re-run ./configure" >&2; exit 1
endif

# The long soak of the stress suite (10 minutes unless STRESS_SECONDS
# says otherwise); make check runs a short one.
soak: tests/check_ctx
	STRESS_VERBOSE=1 STRESS_SECONDS=$${STRESS_SECONDS:-600} \
		STRESS_WORKERS=$${STRESS_WORKERS:-10} \
		CK_RUN_SUITE=stress CK_RUN_CASE=soak ./tests/check_ctx
.PHONY: soak
