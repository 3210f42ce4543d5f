package core_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

func started(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, config(), core.Options{ProcessID: "p"})
	f.start(t)
	return f
}

// stillServes proves the app keeps running after a bad call.
func stillServes(t *testing.T, f *fixture) {
	t.Helper()
	in := "again"
	rep, err := call(f.app, context.Background(), "Alpha", "Echo", &in)
	if err != nil || rep.Result != "echo again" {
		t.Fatalf("app stopped serving: %v %v", rep.Result, err)
	}
}

func TestCallTyped(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	in := "hi"
	got, err := core.CallResult[string](call(f.app, context.Background(), "Alpha", "Echo", &in))
	if err != nil || got != "echo hi" {
		t.Fatalf("got %q, %v", got, err)
	}
	// The same handler decodes JSON when the argument arrives encoded.
	rep, err := f.app.Invoke(context.Background(), core.Target{Type: "Alpha"}, &core.Request{Fn: "Echo", Raw: []byte(`"raw"`)})
	if err != nil || rep.Result != "echo raw" {
		t.Fatalf("raw call: %v %v", rep.Result, err)
	}
	// Addressed to one instance.
	rep, err = f.app.Invoke(context.Background(), core.Target{Type: "Beta", ID: "b1"}, &core.Request{Fn: "Echo", Arg: &in})
	if err != nil || rep.Result != "echo hi" {
		t.Fatalf("addressed call: %v %v", rep.Result, err)
	}
}

func TestCallErrors(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		to       core.Target
		fn       string
		kind     error
		text     string
		fastOnly bool
	}{
		{"unknown module", core.Target{Type: "Nope"}, "Echo", core.ErrNotFound, "Service(type:Nope) not found", true},
		{"unknown instance", core.Target{Type: "Beta", ID: "b9"}, "Echo", core.ErrNotFound, "Service(type:Beta id:b9) not found", true},
		{"instance in another process", core.Target{Type: "Beta", ID: "b2"}, "Echo", core.ErrNotFound, "not found", true},
		{"unknown handler", core.Target{Type: "Alpha"}, "Handler_Nope", core.ErrNotFound, "Remote function(Handler_Nope) not found", true},
		{"handler error", core.Target{Type: "Alpha"}, "Fail", core.ErrRemote, "the handler's own error", false},
		{"handler panic", core.Target{Type: "Alpha"}, "Panic", core.ErrRemotePanic, "internal error (id ", false},
		{"bad argument", core.Target{Type: "Alpha"}, "Echo", core.ErrBadRequest, "argument is int, want *string", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var arg any
			if tc.name == "bad argument" {
				arg = 42
			}
			t0 := time.Now()
			_, err := f.app.Invoke(ctx, tc.to, &core.Request{Fn: tc.fn, Arg: arg})
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err text %q lacks %q", err, tc.text)
			}
			if tc.fastOnly && time.Since(t0) > time.Second {
				t.Errorf("took %v: a missing target must fail at once, not after the timeout", time.Since(t0))
			}
			stillServes(t, f)
		})
	}
}

func TestHandlerErrorKeepsCauseInProcess(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	_, err := call(f.app, context.Background(), "Alpha", "Fail", nil)
	if !errors.Is(err, errSentinel) || !errors.Is(err, core.ErrRemote) {
		t.Fatalf("err = %v: in-process callers can match both the kind and the handler's error", err)
	}
	if err.Error() != "the handler's own error" {
		t.Errorf("text = %q: a remote error's text is exactly the handler's", err)
	}
}

func TestPanicIsLoggedWithID(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	_, err := call(f.app, context.Background(), "Alpha", "Panic", nil)
	if !errors.Is(err, core.ErrRemotePanic) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret detail") {
		t.Errorf("panic details leaked to the caller: %v", err)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "internal error (id "), ")")
	logs := f.logs.String()
	if !strings.Contains(logs, "errorId="+id) || !strings.Contains(logs, "boom: secret detail") || !strings.Contains(logs, "goroutine") {
		t.Errorf("log must carry the id %s, the panic and the stack:\n%s", id, logs)
	}
	stillServes(t, f)
}

func TestTimeoutAndDrop(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	w := f.worker(t, "Alpha")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := call(f.app, ctx, "Alpha", "Slow", nil)
	if !errors.Is(err, core.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("timeout took %v", d)
	}
	// The handler saw the caller's deadline pass and could drop its work.
	select {
	case <-w.sawCancel:
	case <-time.After(5 * time.Second):
		t.Fatal("handler never saw the caller's deadline")
	}
	// A call whose deadline already passed never runs.
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	_, err = call(f.app, expired, "Alpha", "Echo", new(string))
	if !errors.Is(err, core.ErrTimeout) {
		t.Fatalf("expired call: err = %v", err)
	}
	waitUntil(t, func() bool { return strings.Contains(f.logs.String(), "rpc call dropped, deadline passed") })
	stillServes(t, f)
}

func TestDefaultTimeoutFromConfig(t *testing.T) {
	leakcheck.Check(t)
	cfg := config()
	cfg.RPC.Timeout = 150 * time.Millisecond
	f := newFixture(t, cfg, core.Options{ProcessID: "p"})
	f.start(t)
	t0 := time.Now()
	_, err := call(f.app, context.Background(), "Alpha", "Slow", nil)
	if !errors.Is(err, core.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(t0); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("default timeout took %v, want about 150ms", d)
	}
}

// replyChan is a Responder that hands the reply over.
type replyChan chan core.Reply

func (c replyChan) Respond(r core.Reply) { c <- r }

// TestHandlerGivingUpIsTimeout: a handler that returns its context's
// deadline error is reported as a timeout (ErrTimeout, DeadlineExceeded,
// code "timeout"), the error the caller's transport gives when its own
// clock is first, not as a handler error.
func TestHandlerGivingUpIsTimeout(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	srv := f.worker(t, "Alpha").RPCServer()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got := make(replyChan, 1)
	srv.Serve(ctx, &core.Request{Fn: "GiveUp"}, got)
	var rep core.Reply
	select {
	case rep = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	err := rep.Err
	if !errors.Is(err, core.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, core.ErrRemote) || core.ClientCode(err) != core.CodeTimeout {
		t.Fatalf("reply error %v (code %s): want a timeout", err, core.ClientCode(err))
	}
	if !strings.Contains(err.Error(), "giving up") {
		t.Errorf("reply error %q lost the handler's text", err)
	}
}

func TestRegisterGOConcurrentAndSyncSerial(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	w := f.worker(t, "Alpha")
	for _, tc := range []struct {
		fn   string
		want int32
	}{{"Overlap", 3}, {"OverlapSync", 1}} {
		w.maxRunning.Store(0)
		w.release = make(chan struct{})
		done := make(chan error, 3)
		for i := 0; i < 3; i++ {
			go func() {
				_, err := call(f.app, context.Background(), "Alpha", tc.fn, nil)
				done <- err
			}()
		}
		if tc.want == 3 {
			// Concurrent handlers: all three run at once while blocked.
			waitUntil(t, func() bool { return w.running.Load() == 3 })
		} else {
			waitUntil(t, func() bool { return w.running.Load() == 1 })
			// A concurrent handler is not held up by the busy single goroutine.
			stillServes(t, f)
		}
		close(w.release)
		for i := 0; i < 3; i++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if got := w.maxRunning.Load(); got != tc.want {
			t.Errorf("%s: at most %d ran at once, want %d", tc.fn, got, tc.want)
		}
	}
}

func TestCallNR(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	w := f.worker(t, "Alpha")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := f.app.Invoke(ctx, core.Target{Type: "Alpha"}, &core.Request{Fn: "Note", Raw: []byte(`"x"`), NoReply: true}); err != nil {
		t.Fatal(err)
	}
	cancel() // the caller going away does not cancel a no-reply call
	select {
	case got := <-w.nrDone:
		if got != `"x"` {
			t.Errorf("got %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no-reply call never ran")
	}
	if err := f.app.CallNR(context.Background(), core.Target{Type: "Nope"}, "Note", nil); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("CallNR to a missing module: err = %v, want not found", err)
	}
}

func TestShutdownDrainsAndRefuses(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, config(), core.Options{ProcessID: "p"})
	f.start(t)
	w := f.worker(t, "Alpha")
	w.started = make(chan struct{})
	res := make(chan error, 1)
	go func() {
		_, err := call(f.app, context.Background(), "Alpha", "Slow", nil)
		res <- err
	}()
	<-w.started
	stopped := make(chan struct{})
	go func() { f.app.Stop("test"); close(stopped) }()
	// The running call finishes during the drain and its caller gets the reply.
	close(w.release)
	if err := <-res; err != nil {
		t.Fatalf("in-flight call: %v", err)
	}
	<-stopped
	_, err := call(f.app, context.Background(), "Alpha", "Echo", new(string))
	if !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrTransport) {
		t.Errorf("call after stop: %v", err)
	}
}

func TestInvokeInline(t *testing.T) {
	leakcheck.Check(t)
	f := started(t)
	ctx := context.Background()
	in := "inline"
	rep, err := f.app.InvokeInline(ctx, core.Target{Type: "Alpha"}, &core.Request{Fn: "Echo", Arg: &in})
	if err != nil || rep.Result != "echo inline" {
		t.Fatalf("%v %v", rep.Result, err)
	}
	if _, err := f.app.InvokeInline(ctx, core.Target{Type: "Alpha"}, &core.Request{Fn: "Panic"}); !errors.Is(err, core.ErrRemotePanic) {
		t.Errorf("panic inline: %v", err)
	}
	if _, err := f.app.InvokeInline(ctx, core.Target{Type: "Alpha"}, &core.Request{Fn: "Nope"}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("unknown inline: %v", err)
	}
	// A Sync method still runs on the module's goroutine.
	w := f.worker(t, "Alpha")
	close(w.release)
	if _, err := f.app.InvokeInline(ctx, core.Target{Type: "Alpha"}, &core.Request{Fn: "OverlapSync"}); err != nil {
		t.Errorf("sync method: %v", err)
	}
	// An expired call is dropped, not run.
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := f.app.InvokeInline(expired, core.Target{Type: "Alpha"}, &core.Request{Fn: "Echo", Arg: &in}); !errors.Is(err, core.ErrTimeout) {
		t.Errorf("expired inline: %v", err)
	}
	if _, err := f.app.InvokeInline(ctx, core.Target{Type: "Nope"}, &core.Request{Fn: "Echo"}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("missing module inline: %v", err)
	}
}

// TestInstancesTakeTurns: calls to a module type with two instances in
// this process alternate between them, whichever way they are made (a
// call's endpoint is looked up once: a second lookup advanced the turn
// again, and with two instances one of them got every call).
func TestInstancesTakeTurns(t *testing.T) {
	leakcheck.Check(t)
	cfg := config()
	cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: "Beta", ID: "b3", Host: "127.0.0.1", ProcessID: "p"})
	f := newFixture(t, cfg, core.Options{ProcessID: "p"})
	f.start(t)
	ways := map[string]func() (core.Reply, error){
		"Invoke": func() (core.Reply, error) {
			return f.app.Invoke(context.Background(), core.Target{Type: "Beta"}, &core.Request{Fn: "Who"})
		},
		"InvokeInline": func() (core.Reply, error) {
			return f.app.InvokeInline(context.Background(), core.Target{Type: "Beta"}, &core.Request{Fn: "Who"})
		},
		"InvokeCall": func() (core.Reply, error) {
			return f.app.InvokeCall(context.Background(), core.Target{Type: "Beta"}, &core.InlineCall{Req: core.Request{Fn: "Who"}})
		},
	}
	for name, invoke := range ways {
		seen := map[any]int{}
		var last any
		for i := range 10 {
			rep, err := invoke()
			if err != nil {
				t.Fatalf("%s: call %d: %v", name, i, err)
			}
			if rep.Result == last {
				t.Errorf("%s: call %d went to %v again", name, i, last)
			}
			last = rep.Result
			seen[rep.Result]++
		}
		if seen["b1"] != 5 || seen["b3"] != 5 {
			t.Errorf("%s: calls per instance %v, want 5 each of b1 and b3", name, seen)
		}
	}
}
