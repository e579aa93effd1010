package benchgo

import "testing"

// The Go side of bench_context's go/SelectTwoReady row: a select over two
// ready buffered channels, then a send refilling the one chosen.
func BenchmarkSelectTwoReady(b *testing.B) {
	a, c := make(chan int, 1), make(chan int, 1)
	a <- 0
	c <- 1
	hits := [2]int{}
	for i := 0; i < b.N; i++ {
		select {
		case v := <-a:
			hits[0]++
			a <- v
		case v := <-c:
			hits[1]++
			c <- v
		}
	}
	if b.N > 1000 && (hits[0] == 0 || hits[1] == 0) {
		b.Fatal("select did not choose both cases")
	}
}
