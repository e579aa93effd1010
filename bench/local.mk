# ---- benchmarks (built by make, run by make bench) ---------------------
#
# `make bench` runs every benchmark program (and Go's context benchmarks
# when configure found `go`) and prints one table against the condvar
# approach, plus the Go table and a table of the epoll backend beside
# the io_uring one, then wrk against httpd on each backend; `make
# bench-quick` does the same (without wrk) briefly,
# for CI.  bench/run.sh does the work; see its header.
#
# The std::stop_token column needs a C++20 compiler, which configure does
# not look for: run.sh tries `$(CXX) -std=c++20` (make's default CXX is
# g++) on bench/stoptoken.cc at run time and leaves the column out when
# that fails.
noinst_PROGRAMS = bench/bench_context bench/bench_wait bench/bench_sync \
	bench/bench_condvar bench/bench_backend bench/bench_sys \
	bench/bench_select bench/bench_proc
noinst_PROGRAMS += bench/bench_server
bench_bench_server_SOURCES = bench/bench_server.c bench/benchutil.h
bench_bench_server_LDADD = libctx-core.la
bench_bench_server_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_context_SOURCES = bench/bench_context.c bench/benchutil.h
bench_bench_context_LDADD = libctx-core.la
bench_bench_context_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_wait_SOURCES = bench/bench_wait.c bench/benchutil.h
bench_bench_wait_LDADD = libctx-core.la
bench_bench_wait_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_sync_SOURCES = bench/bench_sync.c bench/benchutil.h
bench_bench_sync_LDADD = libctx-core.la
bench_bench_sync_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_backend_SOURCES = bench/bench_backend.c bench/benchutil.h
bench_bench_backend_LDADD = libctx-core.la
bench_bench_backend_CFLAGS = $(AM_CFLAGS) -O2
# The hot path of the issue-12 calls beside the plain system calls.
bench_bench_sys_SOURCES = bench/bench_sys.c bench/benchutil.h
bench_bench_sys_LDADD = libctx-core.la
bench_bench_sys_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_proc_SOURCES = bench/bench_proc.c bench/benchutil.h
bench_bench_proc_LDADD = libctx-core.la
bench_bench_proc_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_condvar_SOURCES = bench/bench_condvar.c bench/condctx.c \
	bench/condctx.h bench/impl.h bench/benchutil.h
bench_bench_condvar_LDADD = libctx-core.la -ldl
bench_bench_condvar_CFLAGS = $(AM_CFLAGS) -O2

# Issue 13: condition variables, semaphores, select (run.sh, its own
# section).
bench_bench_select_SOURCES = bench/bench_select.c bench/benchutil.h
bench_bench_select_LDADD = libctx-core.la
bench_bench_select_CFLAGS = $(AM_CFLAGS) -O2

# Issue 17: nsync beside libctx and the condvar approach (built only
# where configure found nsync), and libctx at scale: 10,000 threads
# blocked in ctx_read, and the context operations on 1..CPUs threads.
if HAVE_NSYNC
noinst_PROGRAMS += bench/bench_nsync
bench_bench_nsync_SOURCES = bench/bench_nsync.c bench/benchutil.h
bench_bench_nsync_LDADD = libctx-core.la $(NSYNC_LIBS)
bench_bench_nsync_CFLAGS = $(AM_CFLAGS) -O2
endif
noinst_PROGRAMS += bench/bench_scale
bench_bench_scale_SOURCES = bench/bench_scale.c bench/condctx.c \
	bench/condctx.h bench/benchutil.h
bench_bench_scale_LDADD = libctx-core.la
bench_bench_scale_CFLAGS = $(AM_CFLAGS) -O2

BENCH_ENV = CXX="$(CXX)" GNUPLOT="$(GNUPLOT)"

.PHONY: bench bench-quick
bench: all
	@$(BENCH_ENV) $(srcdir)/bench/run.sh "$(abs_builddir)" "$(abs_srcdir)" "$(GO)"
	@echo; echo "## httpd under wrk (examples/httpd, GET /fast), on epoll"
	@CTX_BACKEND=epoll $(MAKE) --no-print-directory bench-httpd
	@echo; echo "## httpd under wrk (examples/httpd, GET /fast), on io_uring"
	@if grep -q '^# libctx backend: io_uring' \
	    bench/results/bench_backend-io_uring.txt 2>/dev/null; then \
		CTX_BACKEND=io_uring $(MAKE) --no-print-directory bench-httpd; \
	else \
		echo "(io_uring is not available here)"; \
	fi
bench-quick: all
	@$(BENCH_ENV) $(srcdir)/bench/run.sh "$(abs_builddir)" "$(abs_srcdir)" "$(GO)" --quick
EXTRA_DIST += bench/run.sh bench/go/go.mod bench/go/doc.go \
	bench/go/context_bench_test.go bench/stoptoken.cc bench/PERFORMANCE.md \
	bench/go/select_bench_test.go
clean-local:
	rm -rf bench/results bench/go-cache bench/go-path bench/stoptoken.so

# ---- outgoing calls (issue 15): dial, TLS, curl beside the plain calls --
# The TLS and curl rows are compiled in when libctx-ssl / libctx-curl are
# built (their sources are compiled into the program, which links the core
# statically).
noinst_PROGRAMS += bench/bench_outgoing
bench_bench_outgoing_SOURCES = bench/bench_outgoing.c
bench_bench_outgoing_LDADD = libctx-core.la
bench_bench_outgoing_CFLAGS = $(AM_CFLAGS) -O2
if HAVE_OPENSSL
bench_bench_outgoing_SOURCES += runtime/ssl.c
bench_bench_outgoing_CFLAGS += $(OPENSSL_CFLAGS)
bench_bench_outgoing_LDADD += $(OPENSSL_LIBS)
endif
if HAVE_LIBCURL
bench_bench_outgoing_SOURCES += runtime/curl.c
bench_bench_outgoing_CFLAGS += $(LIBCURL_CFLAGS)
bench_bench_outgoing_LDADD += $(LIBCURL_LIBS)
endif
