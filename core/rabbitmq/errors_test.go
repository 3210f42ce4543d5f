package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// transportErrors are the failures every transport must report alike.
type transportErrors struct {
	noSuchType, noSuchInstance, deadline, closed error
}

// kindsOf is which sentinels (and context errors) err matches with errors.Is.
func kindsOf(err error) string {
	named := []struct {
		name string
		err  error
	}{
		{"NotFound", core.ErrNotFound}, {"Timeout", core.ErrTimeout}, {"Transport", core.ErrTransport},
		{"Remote", core.ErrRemote}, {"RemotePanic", core.ErrRemotePanic}, {"BadRequest", core.ErrBadRequest},
		{"DeadlineExceeded", context.DeadlineExceeded}, {"Canceled", context.Canceled},
	}
	s := ""
	for _, n := range named {
		if errors.Is(err, n.err) {
			s += n.name + " "
		}
	}
	return fmt.Sprintf("[%s] code %s", s, core.ClientCode(err))
}

// nopEndpoint takes calls and never answers: only the transport can fail them.
type nopEndpoint struct{}

func (nopEndpoint) Serve(context.Context, *core.Request, core.Responder) {}

// failures makes each failure through app (a caller whose Probe instance
// p1 is reachable) and through tr, a transport of the same kind that is
// closed after an endpoint listened on it.
func failures(t *testing.T, app *core.App, tr core.Transport) transportErrors {
	t.Helper()
	var e transportErrors
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, e.noSuchType = app.Call(ctx, core.Target{Type: "Nope"}, "Fn", nil)
	_, e.noSuchInstance = app.Call(ctx, core.Target{Type: rpctest.Probe_Type, ID: "nope"}, "Slow", 1)

	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, e.deadline = rpctest.NewProbeClient(app).To("p1").Slow(short, 10_000)
	cancelShort()

	if _, err := tr.Listen(rpctest.Probe_Type, "closing", nopEndpoint{}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	_, e.closed = tr.Invoke(ctx, core.Target{Type: rpctest.Probe_Type, ID: "closing"}, &core.Request{Fn: "Slow"})
	return e
}

// TestTransportErrorsAlike: no such module, a passed deadline and a closed
// transport give errors that errors.Is tells apart the same way, with the
// same client code, whether the call stays in the process or crosses
// RabbitMQ (issue 12: the transports used to define their own).
func TestTransportErrorsAlike(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	log := slog.New(slog.DiscardHandler)

	// In-process: one App runs the caller and p1.
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second}}
	cfg.Modules = append(cfg.Modules,
		&core.ModuleSettings{Type: "Idle", ID: "caller"},
		&core.ModuleSettings{Type: rpctest.Probe_Type, ID: "p1"})
	local := core.NewApp(cfg, core.Options{Logger: log, DrainTimeout: 2 * time.Second})
	local.Register("Idle", func() core.Module { return &idle{} })
	local.Register(rpctest.Probe_Type, func() core.Module { return &rpctest.Probe{} })
	if err := local.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Stop("test end") })
	inproc := failures(t, local, core.NewInProc())

	// RabbitMQ: the caller and p1 are two processes.
	c := startCluster(t, 10*time.Second, "p1")
	tr := rabbitmq.New(broker.URI, log)
	ready, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err := tr.WaitReady(ready)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	remote := failures(t, c.apps["caller"], tr)

	for _, tc := range []struct {
		name        string
		in, rmq     error
		want        error
		sameText    bool
		wantContext error
	}{
		{"no such module type", inproc.noSuchType, remote.noSuchType, core.ErrNotFound, true, nil},
		{"no such instance", inproc.noSuchInstance, remote.noSuchInstance, core.ErrNotFound, true, nil},
		{"deadline exceeded", inproc.deadline, remote.deadline, core.ErrTimeout, false, context.DeadlineExceeded},
		{"closed transport", inproc.closed, remote.closed, core.ErrTransport, false, nil},
	} {
		if tc.in == nil || tc.rmq == nil {
			t.Errorf("%s: in-process %v, RabbitMQ %v: want an error from both", tc.name, tc.in, tc.rmq)
			continue
		}
		if !errors.Is(tc.in, tc.want) || !errors.Is(tc.rmq, tc.want) {
			t.Errorf("%s: want errors.Is %v on both; in-process %q %s, RabbitMQ %q %s", tc.name, tc.want, tc.in, kindsOf(tc.in), tc.rmq, kindsOf(tc.rmq))
		}
		if tc.wantContext != nil && !errors.Is(tc.in, tc.wantContext) {
			t.Errorf("%s: in-process %q is not %v", tc.name, tc.in, tc.wantContext)
		}
		if a, b := kindsOf(tc.in), kindsOf(tc.rmq); a != b {
			t.Errorf("%s: in-process %q matches %s, RabbitMQ %q matches %s", tc.name, tc.in, a, tc.rmq, b)
		}
		var ein, ermq *core.Error
		if !errors.As(tc.in, &ein) || !errors.As(tc.rmq, &ermq) {
			t.Errorf("%s: want a *core.Error from both, got %T and %T", tc.name, tc.in, tc.rmq)
		}
		if tc.sameText && tc.in.Error() != tc.rmq.Error() {
			t.Errorf("%s: texts differ: in-process %q, RabbitMQ %q", tc.name, tc.in, tc.rmq)
		}
	}
}

// TestRemoteTimeoutIsDeadlineExceeded: a timeout reported by the serving
// process is context.DeadlineExceeded for the caller, as in-process.
func TestRemoteTimeoutIsDeadlineExceeded(t *testing.T) {
	sent := &core.Error{Kind: core.ErrTimeout, Msg: "call Probe.Slow expired before it ran", Cause: context.DeadlineExceeded}
	got := core.ErrorFromCode(core.ErrorCode(sent), sent.Error())
	if kindsOf(got) != kindsOf(sent) {
		t.Fatalf("after the wire %q matches %s, before %s", got, kindsOf(got), kindsOf(sent))
	}
}

// TestUnencodableArgument: an argument the codec cannot encode fails its
// call at once with ErrBadRequest, with a reply wanted or not, and leaves
// nothing behind: the next call works.
func TestUnencodableArgument(t *testing.T) {
	c := startCluster(t, 5*time.Second, "u1")
	ctx := context.Background()
	for _, noReply := range []bool{false, true} {
		start := time.Now()
		_, err := c.apps["caller"].Invoke(ctx, core.Target{Type: rpctest.Probe_Type},
			&core.Request{Fn: "Echo", Arg: make(chan int), NoReply: noReply})
		if !errors.Is(err, core.ErrBadRequest) || time.Since(start) > time.Second {
			t.Errorf("noReply %v: %v after %v, want ErrBadRequest at once", noReply, err, time.Since(start))
		}
	}
	if r, err := c.client().Echo(ctx, nil, &rpctest.EchoRequest{Text: "after"}); err != nil || r.Text != "after" {
		t.Fatalf("the call after: %+v, %v", r, err)
	}
	if n := rabbitmq.Pending(c.trs["caller"]); n != 0 {
		t.Errorf("%d calls still pending", n)
	}
}
