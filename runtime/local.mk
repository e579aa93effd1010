# ---- the library: runtime/ -------------------------------------------
# The sources by layer, lowest first; runtime/README.md says what each
# layer holds and what it may include, and runtime/check-tree.sh (a test)
# holds the tree to it.
#
# All objects go into a convenience library that tests link statically
# (they reach the internal test hooks); libctx.la adds the version script.
noinst_LTLIBRARIES = libctx-core.la
libctx_core_la_SOURCES = \
	runtime/base/base.h \
	runtime/base/assert.h \
	runtime/base/lock.h \
	runtime/base/lock.c \
	runtime/base/alloc.c \
	runtime/base/clock.c \
	runtime/base/spawn.c \
	runtime/core/core.h \
	runtime/core/kind.h \
	runtime/core/after.c \
	runtime/core/cause.c \
	runtime/core/compose.c \
	runtime/core/context.c \
	runtime/core/deadline.c \
	runtime/core/debug.c \
	runtime/core/format.c \
	runtime/core/origin.c \
	runtime/core/timer.c \
	runtime/core/watch.c \
	runtime/wait/wait.h \
	runtime/wait/backend.h \
	runtime/wait/waitq.h \
	runtime/wait/reactor.c \
	runtime/wait/readiness.c \
	runtime/wait/poll.c \
	runtime/wait/uring.c \
	runtime/wait/call.h \
	runtime/wait/call.c \
	runtime/io/io-op.h \
	runtime/io/io.c \
	runtime/io/xfer.c \
	runtime/io/sys.c \
	runtime/io/fifo.c \
	runtime/io/flock.c \
	runtime/io/sleep.c \
	runtime/io/poll.c \
	runtime/sync/chan.h \
	runtime/sync/chan.c \
	runtime/sync/cond.c \
	runtime/sync/group.c \
	runtime/sync/select.c \
	runtime/sync/sem.c \
	runtime/sync/thread.c \
	runtime/sync/wg.c \
	runtime/proc/proc.c \
	runtime/proc/signals.c \
	runtime/proc/wait.c \
	runtime/proc/pidfd.c \
	runtime/proc/pass.h \
	runtime/proc/pass.c \
	runtime/proc/inherit.c \
	runtime/net/resolve.h \
	runtime/net/resolve.c \
	runtime/net/dial.c \
	runtime/net/addr.c \
	runtime/net/addr.h \
	runtime/net/flow.c \
	runtime/net/flow.h \
	runtime/net/copy.c \
	runtime/net/proxy.c \
	runtime/net/conn.c \
	runtime/net/conn.h \
	runtime/server/hangup.c \
	runtime/server/idle.c \
	runtime/server/timeout.h \
	runtime/server/timeout.c
libctx_core_la_CPPFLAGS = $(AM_CPPFLAGS) -DCTX_BUILDING_LIBRARY
libctx_core_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(LIBURING_CFLAGS) $(CARES_CFLAGS)
libctx_core_la_LIBADD = $(LIBURING_LIBS) $(CARES_LIBS)

lib_LTLIBRARIES = libctx.la
libctx_la_SOURCES =
nodist_EXTRA_libctx_la_SOURCES = dummy.c
libctx_la_LIBADD = libctx-core.la
libctx_la_LDFLAGS = -version-info 0:0:0 -pthread \
	-Wl,--version-script=$(srcdir)/runtime/libctx.sym
EXTRA_libctx_la_DEPENDENCIES = runtime/libctx.sym
EXTRA_DIST = runtime/libctx.sym runtime/README.md runtime/check-tree.sh

# The layers and the length of functions, in runtime/ and glue/.
TESTS += runtime/check-tree.sh
