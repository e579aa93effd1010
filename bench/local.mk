# ---- benchmarks (built by make, run by make bench) ---------------------
#
# `make bench` runs every benchmark program (and Go's context benchmarks
# when configure found `go`), bench/report.py makes the tables, the
# verdicts and the picture from their output and from bench/rows.txt, and
# then wrk loads httpd on each backend; `make bench-quick` does the same
# (without wrk) briefly, for CI.  bench/run.sh does the work; see its
# header.  The std::stop_token column needs a C++20 compiler, which
# configure does not look for: run.sh tries `$(CXX) -std=c++20` (make's
# default CXX is g++) on bench/stoptoken.cc and leaves the column out
# when that fails.
BENCH_CFLAGS = $(AM_CFLAGS) -O2
noinst_PROGRAMS = bench/bench_impls bench/bench_context bench/bench_sync \
	bench/bench_backend bench/bench_calls bench/bench_outgoing
bench_bench_impls_SOURCES = bench/bench_impls.c bench/impls.c \
	bench/condctx.c bench/impl.h bench/benchutil.h
bench_bench_impls_LDADD = libctx-core.la -ldl
bench_bench_impls_CFLAGS = $(BENCH_CFLAGS)
if HAVE_NSYNC
bench_bench_impls_LDADD += $(NSYNC_LIBS)
bench_bench_impls_CFLAGS += -DHAVE_NSYNC
endif
bench_bench_context_SOURCES = bench/bench_context.c bench/benchutil.h
bench_bench_context_LDADD = libctx-core.la
bench_bench_context_CFLAGS = $(BENCH_CFLAGS)
bench_bench_sync_SOURCES = bench/bench_sync.c bench/benchutil.h
bench_bench_sync_LDADD = libctx-core.la
bench_bench_sync_CFLAGS = $(BENCH_CFLAGS)
bench_bench_backend_SOURCES = bench/bench_backend.c bench/benchutil.h
bench_bench_backend_LDADD = libctx-core.la
bench_bench_backend_CFLAGS = $(BENCH_CFLAGS)
bench_bench_calls_SOURCES = bench/bench_calls.c bench/benchutil.h
bench_bench_calls_LDADD = libctx-core.la
bench_bench_calls_CFLAGS = $(BENCH_CFLAGS)
# The TLS and curl rows are compiled in when libctx-ssl / libctx-curl are
# built (their sources are compiled into the program, which links the
# core statically).
bench_bench_outgoing_SOURCES = bench/bench_outgoing.c bench/benchutil.h
bench_bench_outgoing_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue/ssl \
	-I$(srcdir)/glue/curl
bench_bench_outgoing_LDADD = libctx-core.la
bench_bench_outgoing_CFLAGS = $(BENCH_CFLAGS)
if HAVE_OPENSSL
bench_bench_outgoing_SOURCES += glue/ssl/ssl.c
bench_bench_outgoing_CFLAGS += $(OPENSSL_CFLAGS)
bench_bench_outgoing_LDADD += $(OPENSSL_LIBS)
endif
if HAVE_LIBCURL
bench_bench_outgoing_SOURCES += glue/curl/curl.c
bench_bench_outgoing_CFLAGS += $(LIBCURL_CFLAGS)
bench_bench_outgoing_LDADD += $(LIBCURL_LIBS)
endif

# bench_db (issue 25): libctx-pq and libctx-redis beside plain libpq and
# hiredis, against throwaway servers (glue/testing.c); their sources are
# compiled into the program, as above, when the libraries are built.
noinst_PROGRAMS += bench/bench_db
bench_bench_db_SOURCES = bench/bench_db.c bench/benchutil.h glue/testing.c
bench_bench_db_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/glue
bench_bench_db_LDADD = libctx-core.la
bench_bench_db_CFLAGS = $(BENCH_CFLAGS)
if HAVE_LIBPQ
bench_bench_db_SOURCES += glue/pq/pq.c glue/pq/testserver.c
bench_bench_db_CPPFLAGS += -I$(srcdir)/glue/pq
bench_bench_db_CFLAGS += $(LIBPQ_CFLAGS)
bench_bench_db_LDADD += $(LIBPQ_LIBS)
endif
if HAVE_HIREDIS
bench_bench_db_SOURCES += glue/redis/redis.c glue/redis/testserver.c
bench_bench_db_CPPFLAGS += -I$(srcdir)/glue/redis
bench_bench_db_CFLAGS += $(HIREDIS_CFLAGS)
bench_bench_db_LDADD += $(HIREDIS_LIBS)
endif

# bench_conn (issue 24): examples/tcpproxy beside relays written there,
# ctx_conn_read_line beside read(2) and memchr.
noinst_PROGRAMS += bench/bench_conn
bench_bench_conn_SOURCES = bench/bench_conn.c bench/benchutil.h
bench_bench_conn_LDADD = libctx-core.la
bench_bench_conn_CFLAGS = $(BENCH_CFLAGS)
EXTRA_bench_bench_conn_DEPENDENCIES = examples/tcpproxy$(EXEEXT)

# bench_cpp (issue 26): <ctx.hpp> beside the C calls and the standard
# library's std::stop_token; C++20, built where configure found it.
if HAVE_CXX20
noinst_PROGRAMS += bench/bench_cpp
bench_bench_cpp_SOURCES = bench/bench_cpp.c bench/cpp_ops.cc \
	bench/cpp_ops.h bench/benchutil.h
bench_bench_cpp_LDADD = libctx-core.la
bench_bench_cpp_CFLAGS = $(BENCH_CFLAGS)
bench_bench_cpp_CXXFLAGS = -std=c++20 -O2 -Wall -Wextra -pthread
endif

BENCH_RUN = CXX="$(CXX)" GNUPLOT="$(GNUPLOT)" PYTHON3="$(PYTHON3)" \
	$(SHELL) $(srcdir)/bench/run.sh "$(abs_builddir)" "$(abs_srcdir)" "$(GO)"
PYTHON3 = python3

.PHONY: bench bench-quick
bench: all
	@$(BENCH_RUN)
	@echo; echo "## httpd under wrk (examples/httpd, GET /fast), on epoll"
	@CTX_BACKEND=epoll $(MAKE) --no-print-directory bench-httpd
	@echo; echo "## httpd under wrk (examples/httpd, GET /fast), on io_uring"
	@if [ -s bench/results/bench_backend-io_uring.csv ]; then \
		CTX_BACKEND=io_uring $(MAKE) --no-print-directory bench-httpd; \
	else \
		echo "(io_uring is not available here)"; \
	fi
bench-quick: all
	@$(BENCH_RUN) --quick
EXTRA_DIST += bench/run.sh bench/report.py bench/rows.txt bench/go/go.mod \
	bench/go/doc.go bench/go/context_bench_test.go bench/stoptoken.cc \
	bench/PERFORMANCE.md bench/go/select_bench_test.go \
	bench/go/merge_bench_test.go bench/go/merge_goroutine_bench_test.go
clean-local:
	rm -rf bench/results bench/go-cache bench/go-path bench/stoptoken.so
