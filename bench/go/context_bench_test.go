package benchgo

// The Go column of make bench: the operations of Go's own context
// benchmarks, named as bench/bench_context names its rows, plus the
// bytes and descriptors a live context costs (TestLive, whose "LIVE name
// value unit" lines bench/report.py reads beside the benchmark lines).
//
// Like Go's benchmarks, these leave abandoned trees to the collector;
// the C side frees them inside the timed loop.  Each benchmark checks
// once, after its loop, that what it timed happened, so that the check
// adds nothing to Go's per-operation cost.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// sink keeps results alive so that no call is optimized away.
var sink interface{}

// chainOfCancels returns the leaf of depth WithCancel contexts, each a
// child of the one before.  Their cancel functions are dropped, as in
// Go's benchmark: the collector reclaims the tree.
func chainOfCancels(root context.Context, depth int) context.Context {
	for i := 0; i < depth; i++ {
		var cancel context.CancelFunc
		root, cancel = context.WithCancel(root)
		_ = cancel // dropped on purpose (vet's lostcancel)
	}
	return root
}

func wantErr(b *testing.B, ctx context.Context, want error) {
	if err := ctx.Err(); err != want {
		b.Fatalf("leaf Err() = %v, want %v", err, want)
	}
}

func BenchmarkCancelTree(b *testing.B) {
	for _, depth := range []int{1, 10, 100, 1000} {
		depth := depth
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			b.Run("Root=Background", func(b *testing.B) {
				var leaf context.Context
				for i := 0; i < b.N; i++ {
					leaf = chainOfCancels(context.Background(), depth)
				}
				wantErr(b, leaf, nil)
			})
			b.Run("Root=OpenCanceler", func(b *testing.B) {
				var leaf context.Context
				for i := 0; i < b.N; i++ {
					root, cancel := context.WithCancel(context.Background())
					leaf = chainOfCancels(root, depth)
					cancel()
				}
				wantErr(b, leaf, context.Canceled)
			})
			b.Run("Root=ClosedCanceler", func(b *testing.B) {
				var leaf context.Context
				for i := 0; i < b.N; i++ {
					root, cancel := context.WithCancel(context.Background())
					cancel()
					leaf = chainOfCancels(root, depth)
				}
				wantErr(b, leaf, context.Canceled)
			})
		})
	}
}

// BenchmarkWithCancel: one WithCancel under Background and its cancel.
func BenchmarkWithCancel(b *testing.B) {
	var ctx context.Context
	for i := 0; i < b.N; i++ {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(context.Background())
		cancel()
	}
	wantErr(b, ctx, context.Canceled)
}

const timeoutBatch = 10

// makeLive makes n one-hour contexts on each P, as Go's benchmark does,
// and returns their cancel functions.
func makeLive(n int) [][]context.CancelFunc {
	procs := runtime.GOMAXPROCS(0)
	live := make([][]context.CancelFunc, procs)
	var wg sync.WaitGroup
	for p := range live {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			cf := make([]context.CancelFunc, n/procs)
			for j := range cf {
				_, cf[j] = context.WithTimeout(context.Background(), time.Hour)
			}
			live[p] = cf
		}(p)
	}
	wg.Wait()
	return live
}

// benchWithTimeout: each goroutine makes ten one-hour timeouts, then
// cancels them, while `concurrency` others live.  ns/op is per batch of
// ten, as in Go's benchmark; ns/pair is per WithTimeout+cancel, which is
// what bench_context reports.
func benchWithTimeout(b *testing.B, concurrency int) {
	live := makeLive(concurrency)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var cancels [timeoutBatch]context.CancelFunc
		var ctx context.Context
		for pb.Next() {
			for i := range cancels {
				ctx, cancels[i] = context.WithTimeout(context.Background(), time.Hour)
			}
			for _, cancel := range cancels {
				cancel()
			}
		}
		if ctx != nil && ctx.Err() != context.Canceled {
			panic("a cancelled timeout context is not canceled")
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*timeoutBatch), "ns/pair")
	for _, cf := range live {
		for _, cancel := range cf {
			cancel()
		}
	}
}

func BenchmarkWithTimeout(b *testing.B) {
	for _, n := range []int{40, 400000} {
		n := n
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			benchWithTimeout(b, n)
		})
	}
}

type commonKey struct{}

// divideChain is the filler of Go's benchmark: dependent divisions.
func divideChain(x int) int {
	for i := 0; i < 100; i++ {
		x /= x + 1
	}
	return x
}

func BenchmarkCommonParentCancel(b *testing.B) {
	root := context.WithValue(context.Background(), commonKey{}, "value")
	shared, cancelShared := context.WithCancel(root)
	defer cancelShared()

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := 0
		for pb.Next() {
			ctx, cancel := context.WithCancel(shared)
			if v, _ := ctx.Value(commonKey{}).(string); v != "value" {
				panic("CommonParentCancel: value not found")
			}
			x = divideChain(x)
			cancel()
			x = divideChain(x)
		}
		sink = x
	})
	if shared.Err() != nil {
		b.Fatal("the shared parent was cancelled")
	}
}

func BenchmarkCheckCanceled(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run("Err", func(b *testing.B) {
		var err error
		for i := 0; i < b.N; i++ {
			err = ctx.Err()
		}
		if err != context.Canceled {
			b.Fatal("Err() of a cancelled context is not Canceled")
		}
	})
	b.Run("Done", func(b *testing.B) {
		done := 0
		for i := 0; i < b.N; i++ {
			select {
			case <-ctx.Done():
				done++
			default:
			}
		}
		if done != b.N {
			b.Fatal("Done() of a cancelled context is not closed")
		}
	})
}

func BenchmarkDeepValue(b *testing.B) {
	for _, depth := range []int{10, 20, 30, 50, 100} {
		ctx := context.Background()
		for i := 0; i < depth; i++ {
			ctx = context.WithValue(ctx, i, i)
		}
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			var v interface{}
			for i := 0; i < b.N; i++ {
				v = ctx.Value(-1)
			}
			if v != nil || ctx.Value(0) != 0 {
				b.Fatal("DeepValue: wrong lookup result")
			}
		})
	}
}

// ---- bytes and descriptors per live context ----------------------------

func heapBytes() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC() // the second sweep settles what the first one freed
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func countFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

type liveKey struct{}

type liveKind struct {
	name string
	make func() (context.Context, context.CancelFunc)
}

var liveKinds = []liveKind{
	{"WithCancel", func() (context.Context, context.CancelFunc) {
		return context.WithCancel(context.Background())
	}},
	{"WithTimeout", func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), time.Hour)
	}},
	{"WithValue", func() (context.Context, context.CancelFunc) {
		return context.WithValue(context.Background(), liveKey{}, "value"), nil
	}},
}

// liveRow holds n contexts and prints the heap growth and new
// descriptors per context.  The slices exist before the first reading,
// so only the contexts, their cancel functions and whatever the runtime
// keeps for them (timers) are counted.
func liveRow(t *testing.T, k liveKind, n int) {
	ctxs := make([]context.Context, n)
	cancels := make([]context.CancelFunc, n)
	h0, f0 := heapBytes(), countFds(t)
	for i := range ctxs {
		ctxs[i], cancels[i] = k.make()
	}
	h1, f1 := heapBytes(), countFds(t)
	for i, ctx := range ctxs {
		if ctx.Err() != nil {
			t.Fatalf("%s: live context %d is done", k.name, i)
		}
		if cancels[i] != nil {
			cancels[i]()
		}
	}
	fmt.Printf("LIVE BytesPerCtx/%s/live=%d %.2f B/ctx\n", k.name, n,
		(float64(h1)-float64(h0))/float64(n))
	fmt.Printf("LIVE FdsPerCtx/%s/live=%d %.2f fds/ctx\n", k.name, n,
		float64(f1-f0)/float64(n))
	runtime.KeepAlive(ctxs)
	runtime.KeepAlive(cancels)
}

func TestLive(t *testing.T) {
	for _, k := range liveKinds {
		for _, n := range []int{100000, 1000000} {
			liveRow(t, k, n)
		}
	}
}
