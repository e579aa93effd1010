# ---- benchmarks (built by make, run by make bench) ---------------------
noinst_PROGRAMS = bench/bench_context bench/bench_wait bench/bench_sync
bench_bench_context_SOURCES = bench/bench_context.c bench/benchutil.h
bench_bench_context_LDADD = libctx-core.la
bench_bench_context_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_wait_SOURCES = bench/bench_wait.c bench/benchutil.h
bench_bench_wait_LDADD = libctx-core.la
bench_bench_wait_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_sync_SOURCES = bench/bench_sync.c bench/benchutil.h
bench_bench_sync_LDADD = libctx-core.la
bench_bench_sync_CFLAGS = $(AM_CFLAGS) -O2

.PHONY: bench bench-quick
bench: all
	@$(srcdir)/bench/run.sh "$(abs_builddir)" "$(abs_srcdir)" "$(GO)"
bench-quick: all
	@$(srcdir)/bench/run.sh "$(abs_builddir)" "$(abs_srcdir)" "$(GO)" --quick
EXTRA_DIST += bench/run.sh bench/go/go.mod bench/go/doc.go \
	bench/go/context_bench_test.go
clean-local:
	rm -rf bench/results bench/go-cache bench/go-path
