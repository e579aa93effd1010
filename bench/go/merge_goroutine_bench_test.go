//go:build !go1.21

package benchgo

import (
	"context"
	"testing"
)

// The Go side of bench_context's go/Merge row, before Go 1.21 had
// context.AfterFunc (merge_bench_test.go): the merge a Go program wrote
// then, a child of the first context and a goroutine that cancels it
// when the second is done, and ends when the child is.
func BenchmarkMerge(b *testing.B) {
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	second, cancelSecond := context.WithCancel(context.Background())
	defer cancelSecond()
	mergeWorks(b)
	var m context.Context
	for i := 0; i < b.N; i++ {
		var cancel context.CancelFunc
		m, cancel = merge(first, second)
		cancel()
	}
	if m.Err() != context.Canceled || first.Err() != nil ||
		second.Err() != nil {
		b.Fatal("Merge: a released merge is not canceled, or a parent ended")
	}
}

func merge(first, second context.Context) (context.Context, context.CancelFunc) {
	m, cancel := context.WithCancel(first)
	go func() {
		select {
		case <-second.Done():
			cancel()
		case <-m.Done():
		}
	}()
	return m, cancel
}

// mergeWorks: before the timing, the merge ends when the second does.
func mergeWorks(b *testing.B) {
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	second, cancelSecond := context.WithCancel(context.Background())
	m, cancel := merge(first, second)
	defer cancel()
	cancelSecond()
	<-m.Done()
	if first.Err() != nil {
		b.Fatal("Merge: the first context ended")
	}
}
