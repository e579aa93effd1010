// Package benchgo times, in Go, the context operations that
// bench/bench_context times in libctx, so that make bench can print the
// two side by side.  It has no code of its own: see context_bench_test.go.
package benchgo
