//go:build go1.21

package benchgo

import (
	"context"
	"testing"
)

// The Go side of bench_context's go/Merge row: a context done when
// either of two live ones is, made and released.  Go has no merge of
// its own (proposal 36503); since Go 1.21 it is written with AfterFunc:
// a child of the first, cancelled by a function on the second, released
// by stopping that function and cancelling the child.
func BenchmarkMerge(b *testing.B) {
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	second, cancelSecond := context.WithCancel(context.Background())
	defer cancelSecond()
	mergeWorks(b)
	var m context.Context
	for i := 0; i < b.N; i++ {
		var cancel context.CancelFunc
		m, cancel = context.WithCancel(first)
		stop := context.AfterFunc(second, cancel)
		stop()
		cancel()
	}
	if m.Err() != context.Canceled || first.Err() != nil ||
		second.Err() != nil {
		b.Fatal("Merge: a released merge is not canceled, or a parent ended")
	}
}

// mergeWorks: before the timing, the merge ends when the second does.
func mergeWorks(b *testing.B) {
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	second, cancelSecond := context.WithCancel(context.Background())
	m, cancel := context.WithCancel(first)
	defer cancel()
	stop := context.AfterFunc(second, cancel)
	defer stop()
	cancelSecond()
	<-m.Done()
	if first.Err() != nil {
		b.Fatal("Merge: the first context ended")
	}
}
