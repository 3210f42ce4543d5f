package benchmod

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// Reflection appears here only: it is the baseline the generated dispatch
// is measured against (mqant calls handlers with reflect.Value.Call).

func newEcho() *Echo {
	e := &Echo{reply: EchoReply{N: 1, Text: "pong"}}
	return e
}

func dispatch(b testing.TB) (func() (any, error), *core.Request) {
	e := newEcho()
	h := Echo_ModuleDesc.Methods[0].Handler
	ctx := context.Background()
	req := &core.Request{Fn: Echo_Echo_MethodName, Arg: &EchoRequest{N: 1, Text: "ping"}}
	return func() (any, error) { return h(e, ctx, nil, req) }, req
}

// BenchmarkDispatchGenerated: the generated handler takes the typed
// argument out of the request and calls the method.
func BenchmarkDispatchGenerated(b *testing.B) {
	call, _ := dispatch(b)
	b.ReportAllocs()
	for b.Loop() {
		res, err := call()
		if err != nil || res.(*EchoReply).N != 1 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkDispatchReflect: the same method called the way mqant does,
// through reflect.Value.Call with the arguments boxed per call.
func BenchmarkDispatchReflect(b *testing.B) {
	e := newEcho()
	m := reflect.ValueOf(e).MethodByName("Handler_Echo")
	ctx := context.Background()
	req := &EchoRequest{N: 1, Text: "ping"}
	b.ReportAllocs()
	for b.Loop() {
		out := m.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
		res := out[0].Interface()
		if errv := out[1].Interface(); errv != nil || res.(*EchoReply).N != 1 {
			b.Fatal(res, errv)
		}
	}
}

// BenchmarkDecodeRequest: decoding a client's JSON payload into the typed
// request, measured apart from dispatch.
func BenchmarkDecodeRequest(b *testing.B) {
	payload := []byte(`{"n":1,"text":"ping"}`)
	b.ReportAllocs()
	for b.Loop() {
		var r EchoRequest
		if err := core.JSON.Unmarshal(payload, &r); err != nil || r.N != 1 {
			b.Fatal(err)
		}
	}
}

func TestDispatchAllocatesNothing(t *testing.T) {
	call, _ := dispatch(t)
	if n := testing.AllocsPerRun(1000, func() { _, _ = call() }); n != 0 {
		t.Errorf("generated dispatch allocates %v times per call, want 0", n)
	}
}

func startApp(tb testing.TB) *core.App {
	tb.Helper()
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second},
		Modules: []*core.ModuleSettings{{Type: Echo_Type, ID: "echo1", Host: "127.0.0.1"}}}
	app := core.NewApp(cfg, core.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	Register(app)
	if err := app.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { app.Stop("benchmark done") })
	return app
}

// BenchmarkCallInProc: a typed Call through the generated client and the
// in-process transport to a RegisterGO handler, with a deadline.
func BenchmarkCallInProc(b *testing.B) {
	app := startApp(b)
	c := NewEchoClient(app)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &EchoRequest{N: 1, Text: "ping"}
		for pb.Next() {
			r, err := c.Echo(ctx, req)
			if err != nil || r.N != 1 {
				b.Error(r, err)
				return
			}
		}
	})
}

// BenchmarkChanRoundTrip: the floor for any request/reply between
// goroutines: a request on a channel to a pool of server goroutines, the
// reply on a per-caller channel.
func BenchmarkChanRoundTrip(b *testing.B) {
	type call struct {
		req   *EchoRequest
		reply chan *EchoReply
	}
	calls := make(chan call)
	shared := &EchoReply{N: 1, Text: "pong"}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				c.reply <- shared
			}
		}()
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		reply := make(chan *EchoReply, 1)
		req := &EchoRequest{N: 1, Text: "ping"}
		for pb.Next() {
			calls <- call{req, reply}
			if r := <-reply; r.N != 1 {
				b.Error(r)
				return
			}
		}
	})
	close(calls)
	wg.Wait()
}

// TestCallInProcPassesValues: in-process typed calls do not encode: the
// callee gets the caller's request value itself.
func TestCallInProcPassesValues(t *testing.T) {
	app := startApp(t)
	c := NewEchoClient(app)
	r1, err := c.Echo(context.Background(), &EchoRequest{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := c.Echo(context.Background(), &EchoRequest{N: 6})
	if r1 != r2 {
		t.Error("the handler's shared reply pointer did not reach the caller as is: something encoded it")
	}
}
