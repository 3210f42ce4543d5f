package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// One private broker for the package's tests.
var broker *rabbittest.Broker

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rabbitmq-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	broker, err = rabbittest.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "private RabbitMQ broker:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = broker.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// idle is a module with no handlers, for a process that only calls.
type idle struct{ core.BaseModule }

func (*idle) GetType() string { return "Idle" }
func (m *idle) OnInit(app *core.App, s *core.ModuleSettings) error {
	m.Init(app, s)
	return nil
}

// cluster is several Apps, each a "process" with its own broker connection.
type cluster struct {
	apps   map[string]*core.App
	trs    map[string]*rabbitmq.Transport
	probes map[string]*rpctest.Probe
	logs   *syncBuf
	mu     sync.Mutex
}

type syncBuf = syncbuf.Buffer

// startCluster runs process "caller" (module Idle) and one process per
// Probe instance id given.
func startCluster(t *testing.T, timeout time.Duration, probeIDs ...string) *cluster {
	t.Helper()
	return startClusterVia(t, timeout, nil, probeIDs...)
}

// startClusterVia is startCluster with the broker URIs of some processes
// (by process id) other than the broker's own.
func startClusterVia(t *testing.T, timeout time.Duration, uris map[string]string, probeIDs ...string) *cluster {
	t.Helper()
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: timeout}, Rabbitmq: &core.RabbitmqConfig{URI: broker.URI}}
	cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: "Idle", ID: "caller", Host: "127.0.0.1", ProcessID: "caller"})
	for _, id := range probeIDs {
		cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: rpctest.Probe_Type, ID: id, Host: "127.0.0.1", ProcessID: id})
	}
	c := &cluster{apps: map[string]*core.App{}, trs: map[string]*rabbitmq.Transport{}, probes: map[string]*rpctest.Probe{}, logs: &syncBuf{}}
	log := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, pid := range append([]string{"caller"}, probeIDs...) {
		app := core.NewApp(cfg, core.Options{ProcessID: pid, Logger: log.With("process", pid), DrainTimeout: 2 * time.Second})
		app.Register("Idle", func() core.Module { return &idle{} })
		if len(probeIDs) > 0 { // a registered type needs an instance in the config
			app.Register(rpctest.Probe_Type, func() core.Module {
				p := &rpctest.Probe{}
				c.mu.Lock()
				c.probes[pid] = p
				c.mu.Unlock()
				return p
			})
		}
		uri := broker.URI
		if u, ok := uris[pid]; ok {
			uri = u
		}
		tr := rabbitmq.New(uri, log.With("process", pid))
		tr.DrainTimeout = 2 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := tr.WaitReady(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		app.SetRemote(tr)
		if err := app.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Stop("test end") })
		c.apps[pid] = app
		c.trs[pid] = tr
	}
	return c
}

func (c *cluster) client() *rpctest.ProbeClient { return rpctest.NewProbeClient(c.apps["caller"]) }

func TestCallsAcrossProcesses(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1", "p2")
	ctx := context.Background()
	cl := c.client()

	// Typed call with a session; the reply decodes into the typed result.
	s := gate.NewSession(c.apps["caller"], &core.SessionData{SessionID: "s1", UserID: "u1", ServerID: "g"})
	r, err := cl.Echo(ctx, s, &rpctest.EchoRequest{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Text != "hi" || r.Session != "s1" || r.User != "u1" || (r.Instance != "p1" && r.Instance != "p2") {
		t.Errorf("reply %+v", r)
	}
	// Byte slices and several positional arguments keep their types.
	b, err := cl.Bytes(ctx, []byte{1, 2, 3, 0, 255}, "!")
	if err != nil || string(b) != string([]byte{255, 0, 3, 2, 1, '!'}) {
		t.Errorf("bytes: %v %v", b, err)
	}
	// Load is shared by the two instances of the type.
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		r, err := cl.Echo(ctx, s, &rpctest.EchoRequest{Text: "x"})
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Instance]++
	}
	if seen["p1"] == 0 || seen["p2"] == 0 {
		t.Errorf("load not shared: %v", seen)
	}
	// An addressed call reaches the instance named, every time.
	for i := 0; i < 10; i++ {
		r, err := cl.To("p2").Echo(ctx, s, &rpctest.EchoRequest{Text: "y"})
		if err != nil || r.Instance != "p2" {
			t.Fatalf("addressed call: %+v %v", r, err)
		}
	}
	// No-reply calls run.
	if err := cl.To("p1").NoteNR(ctx, "note-1"); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "note delivered", func() bool { return len(c.probes["p1"].Notes()) == 1 })
}

func TestErrorsAcrossProcesses(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	ctx := context.Background()
	cl := c.client()
	app := c.apps["caller"]

	_, err := cl.Fail(ctx, &rpctest.EchoRequest{Text: "why"})
	if !errors.Is(err, core.ErrRemote) || err.Error() != "failed: why" {
		t.Errorf("remote error: %v", err)
	}
	err = cl.Panic(ctx)
	if !errors.Is(err, core.ErrRemotePanic) || !strings.HasPrefix(err.Error(), "internal error (id ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("remote panic: %v", err)
	}
	_, err = app.Invoke(ctx, core.Target{Type: rpctest.Probe_Type}, &core.Request{Fn: "Handler_Nope", Raw: []byte(`{}`)})
	if !errors.Is(err, core.ErrNotFound) || err.Error() != "Remote function(Handler_Nope) not found" {
		t.Errorf("unknown handler: %v", err)
	}
	// Missing module type and instance: refused by the broker at once,
	// not after the 10 s timeout.
	for _, to := range []core.Target{{Type: "Ghost"}, {Type: rpctest.Probe_Type, ID: "p9"}} {
		t0 := time.Now()
		_, err := app.Invoke(ctx, to, &core.Request{Fn: "Handler_Echo", Raw: []byte(`{}`)})
		if !errors.Is(err, core.ErrNotFound) {
			t.Errorf("%v: err = %v", to, err)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("%v: took %v, want at once", to, d)
		}
		t0 = time.Now()
		err = app.CallNR(ctx, to, "Handler_Echo", nil)
		if !errors.Is(err, core.ErrNotFound) || time.Since(t0) > 2*time.Second {
			t.Errorf("%v: CallNR err = %v after %v, want not found at once", to, err, time.Since(t0))
		}
	}
	if err := cl.To("p1").NoteNR(ctx, "still fine"); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutsAcrossProcesses(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	cl := c.client()
	p1 := c.probes["p1"]

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := cl.Slow(ctx, 5000)
	if !errors.Is(err, core.ErrTimeout) {
		t.Fatalf("slow handler: err = %v, want timeout", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("timeout after %v", d)
	}

	// A call whose context has no deadline but a parent that can end (as
	// the gate's calls have the gate's context) gets the App's timeout
	// (10 s here) and ends when its parent does: cancelled once the
	// handler runs, it returns a timeout caused by Canceled, not the reply
	// 5 s later.
	before := p1.SlowRan.Load()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	res := make(chan error, 1)
	go func() {
		_, err := cl.Slow(parent, 5000)
		res <- err
	}()
	pollFor(t, "Slow running", func() bool { return p1.SlowRan.Load() == before+1 })
	cancelParent()
	select {
	case err := <-res:
		if !errors.Is(err, core.ErrTimeout) || !errors.Is(err, context.Canceled) {
			t.Fatalf("call whose parent was cancelled: err = %v, want a timeout caused by Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the call whose parent was cancelled did not return within 3 s")
	}

	// A call that waits in the queue behind a slow one, on the module's
	// single goroutine, is dropped by the server when it gets there late.
	before = p1.SlowRan.Load()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = cl.SlowSync(ctx, 800)
	}()
	pollFor(t, "first SlowSync running", func() bool { return p1.SlowRan.Load() == before+1 })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	if _, err := cl.SlowSync(ctx2, 1); !errors.Is(err, core.ErrTimeout) {
		t.Fatalf("queued call: err = %v", err)
	}
	pollFor(t, "server drops the expired call", func() bool {
		return strings.Contains(c.logs.String(), "rpc call dropped, deadline passed")
	})
	if got := p1.SlowRan.Load(); got != before+1 {
		t.Errorf("the expired call ran anyway (%d Slow runs, want %d)", got, before+1)
	}
}

func TestBrokerRestart(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	ctx := context.Background()
	cl := c.client()
	if _, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "before"}); err != nil {
		t.Fatal(err)
	}
	connects := brokerMetric(t, c.apps["p1"], "mqant_broker_connects_total")
	if got := brokerMetric(t, c.apps["p1"], "mqant_broker_connected"); got != 1 || connects < 1 {
		t.Fatalf("before the stop: mqant_broker_connected %v, connects %v; want 1 and >= 1", got, connects)
	}
	if err := broker.StopBroker(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "mqant_broker_connected 0", func() bool { return brokerMetric(t, c.apps["p1"], "mqant_broker_connected") == 0 })
	// While it is down: calls and no-reply calls fail at once with a transport error.
	pollFor(t, "transport notices the broker is gone", func() bool {
		_, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "down"})
		return errors.Is(err, core.ErrTransport)
	})
	t0 := time.Now()
	if _, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "down"}); !errors.Is(err, core.ErrTransport) {
		t.Errorf("call while down: %v", err)
	}
	if err := cl.NoteNR(ctx, "lost"); !errors.Is(err, core.ErrTransport) {
		t.Errorf("CallNR while down: %v (a no-reply call must not vanish silently)", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("failing took %v; want at once", d)
	}
	if err := broker.StartAgain(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "mqant_broker_connected 1 and one more connect", func() bool {
		return brokerMetric(t, c.apps["p1"], "mqant_broker_connected") == 1 &&
			brokerMetric(t, c.apps["p1"], "mqant_broker_connects_total") == connects+1
	})
	// Back: consumers, replies and no-reply calls work again, no restart.
	pollFor(t, "calls work after the broker is back", func() bool {
		r, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "after"})
		return err == nil && r.Text == "after"
	})
	if err := cl.To("p1").NoteNR(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "note after restart", func() bool {
		n := c.probes["p1"].Notes()
		return len(n) > 0 && n[len(n)-1] == "after"
	})
	if !strings.Contains(c.logs.String(), "broker connection lost") || !strings.Contains(c.logs.String(), "broker connected") {
		t.Error("the log does not say what happened to the broker connection")
	}
}

func pollFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSlowCallDoesNotHoldOthers: completions behind a call that is still
// running are acknowledged anyway, so more calls than the prefetch window
// (512) pass while it runs.
func TestSlowCallDoesNotHoldOthers(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 30*time.Second, "p1")
	cl := c.client().To("p1")
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = cl.Slow(ctx, 5000)
	}()
	pollFor(t, "slow call running", func() bool { return c.probes["p1"].SlowRan.Load() == 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 1200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				if _, err := cl.Echo(context.Background(), nil, &rpctest.EchoRequest{Text: "x"}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case <-slowDone:
		t.Fatal("the 1200 calls only passed once the slow call ended: its acknowledgement held theirs")
	default:
	}
	<-slowDone
}

// TestConsumerDiesMidCall: a call is acknowledged only after it ran, so when
// the instance running it loses its broker connection the broker hands the
// call to the other instance, which refuses to run it a second time (at
// most once) and tells the caller at once, instead of leaving it to time out.
func TestConsumerDiesMidCall(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 30*time.Second, "p1", "p2")
	cl := c.client()
	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := cl.Slow(ctx, 3000)
		done <- result{err, time.Since(t0)}
	}()
	var running, other string
	pollFor(t, "the slow call running on one instance", func() bool {
		for _, id := range []string{"p1", "p2"} {
			if c.probes[id].SlowRan.Load() == 1 {
				running = id
			}
		}
		return running != ""
	})
	other = map[string]string{"p1": "p2", "p2": "p1"}[running]
	_ = c.trs[running].Close() // the consumer dies: its connection goes, the call is unacknowledged
	r := <-done
	if !errors.Is(r.err, core.ErrTransport) || !strings.Contains(r.err.Error(), "not run twice") {
		t.Fatalf("caller got %v after %v; want a transport error saying the call is not run twice", r.err, r.took)
	}
	if r.took > 2900*time.Millisecond {
		t.Errorf("the caller waited %v: it should hear of the failure before the call would have ended", r.took)
	}
	if n := c.probes[other].SlowRan.Load(); n != 0 {
		t.Errorf("the call ran again on %s (%d times): at most once is broken", other, n)
	}
}

// brokerMetric gathers the App's registry (what its admin listener serves)
// and returns the value of the broker metric name.
func brokerMetric(t *testing.T, app *core.App, name string) float64 {
	t.Helper()
	families, err := app.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
