// grpc_server: the real gRPC service that check_grpc (grpc_tests.c)
// calls with libctx-curl, to see that a libctx context's deadline and
// cancel reach a Go server as gRPC's own clients' do.  Built by the test
// from Debian's golang-google-grpc-dev, offline (GOPATH mode).
//
// It knows no service: every call goes to one unknown-service handler,
// which is what a gRPC proxy uses, so no generated code is needed.
//
//	/libctx.Probe/Wait    waits until the call's context ends, then
//	                      answers that context's error as a status
//	                      (DEADLINE_EXCEEDED, CANCELLED) with the
//	                      report in the x-report trailer
//	/libctx.Probe/Report  the report of the Wait call with the same
//	                      x-call-id, once that call has ended (a
//	                      cancelled Wait cannot answer)
//
// A report: "deadline=NS left=NS ended=NS err=TEXT", times on
// CLOCK_MONOTONIC, which the test shares: the call's deadline as the
// server's context has it (from grpc-timeout; "none" without), the time
// it had left when the handler started, when its context ended, and the
// context's error.  The port goes to standard output: "listening on N".
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The reports by call id; a slot holds one until Report takes it.
var (
	mu      sync.Mutex
	reports = map[string]chan string{}
)

func slot(id string) chan string {
	mu.Lock()
	defer mu.Unlock()
	c, ok := reports[id]
	if !ok {
		c = make(chan string, 1)
		reports[id] = c
	}
	return c
}

// monotonic: CLOCK_MONOTONIC in nanoseconds, the clock libctx reads.
func monotonic() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// deadline: the context's deadline on CLOCK_MONOTONIC, and the time
// left.  The time left is read first, so the deadline given is never
// earlier than the context's own.
func deadline(ctx context.Context) (string, string) {
	dl, ok := ctx.Deadline()
	if !ok {
		return "none", "none"
	}
	left := time.Until(dl)
	return fmt.Sprint(monotonic() + int64(left)), fmt.Sprint(int64(left))
}

func callID(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if ids := md.Get("x-call-id"); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// empty: a request message of any content, taken whole and unread, so
// no generated code is needed (the proto codec lets a message that
// unmarshals itself do so).
type empty struct{}

func (*empty) Reset()                   {}
func (*empty) String() string           { return "empty" }
func (*empty) ProtoMessage()            {}
func (*empty) Unmarshal(b []byte) error { return nil }

// request reads the call's messages up to the client's end of the
// stream, as a unary call does before it answers.  An answer sent before
// that end is followed by RST_STREAM (NO_ERROR), which libcurl 7.88 at
// times took for a failed stream (CURLE_HTTP2_STREAM) here.
func request(st grpc.ServerStream) {
	var m empty
	for st.RecvMsg(&m) == nil {
	}
}

func wait(st grpc.ServerStream) error {
	ctx := st.Context()
	dl, left := deadline(ctx)
	request(st)
	<-ctx.Done()
	r := fmt.Sprintf("deadline=%s left=%s ended=%d err=%v", dl, left,
		monotonic(), ctx.Err())
	fmt.Printf("call %s: %s\n", callID(ctx), r)
	slot(callID(ctx)) <- r
	st.SetTrailer(metadata.Pairs("x-report", r))
	return status.FromContextError(ctx.Err()).Err()
}

func report(st grpc.ServerStream) error {
	ctx := st.Context()
	request(st)
	select {
	case r := <-slot(callID(ctx)):
		st.SetTrailer(metadata.Pairs("x-report", r))
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func handle(srv interface{}, st grpc.ServerStream) error {
	m, _ := grpc.MethodFromServerStream(st)
	switch {
	case strings.HasSuffix(m, "/Wait"):
		return wait(st)
	case strings.HasSuffix(m, "/Report"):
		return report(st)
	}
	return status.Errorf(codes.Unimplemented, "no method %s", m)
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc_server:", err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr().(*net.TCPAddr).Port)
	s := grpc.NewServer(grpc.UnknownServiceHandler(handle))
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, "grpc_server:", err)
		os.Exit(1)
	}
}
