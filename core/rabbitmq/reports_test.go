package rabbitmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// inbox collects the reports a subscription receives.
type inbox struct {
	mu   sync.Mutex
	seen []string
}

func (in *inbox) add(b []byte) {
	in.mu.Lock()
	in.seen = append(in.seen, string(b))
	in.mu.Unlock()
}

func (in *inbox) has(s string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Contains(in.seen, s)
}

// TestReportsReachEverySubscriber: reports published by one transport
// reach every subscriber, its own included; a closed transport takes no
// subscription.
func TestReportsReachEverySubscriber(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	a, b := reportTransport(t, log), reportTransport(t, log)
	var inA, inB inbox
	subA, err := a.SubscribeReports(inA.add)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := b.SubscribeReports(inB.add)
	if err != nil {
		t.Fatal(err)
	}
	// A report published before a subscriber's queue is bound is not
	// kept for it: publish until both have one.
	publishUntil(t, b, "from b", func() bool { return inA.has("from b") && inB.has("from b") })

	if err := subA.Close(); err != nil {
		t.Fatal(err)
	}
	_ = subB.Close()
	_ = a.Close()
	if _, err := a.SubscribeReports(inA.add); !errors.Is(err, core.ErrTransport) {
		t.Errorf("subscribe after Close = %v, want a transport error", err)
	}
}

func reportTransport(t *testing.T, log *slog.Logger) *rabbitmq.Transport {
	t.Helper()
	tr := rabbitmq.New(broker.URI, log)
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

// publishUntil publishes body every 50 ms until done: reports are best
// effort, a lost one is replaced by the next.
func publishUntil(t *testing.T, tr *rabbitmq.Transport, body string, done func() bool) {
	t.Helper()
	pollFor(t, "subscribers receive "+body, func() bool {
		if done() {
			return true
		}
		_ = tr.PublishReport(context.Background(), []byte(body))
		time.Sleep(30 * time.Millisecond) // pace the publishes, not a synchronisation
		return done()
	})
}

// TestConsoleAcrossProcesses: two processes on the broker, each with an
// admin listener; the caller's console shows both. While the broker is
// down the other process goes stale and this one's broker connection
// shows lost, publishing fails at once; once the broker is back the
// reports resume without a restart.
func TestConsoleAcrossProcesses(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 5 * time.Second}, Rabbitmq: &core.RabbitmqConfig{URI: broker.URI},
		Admin: core.AdminConfig{Addr: "127.0.0.1:0"}, Modules: []*core.ModuleSettings{
			{Type: "Idle", ID: "caller", Host: "127.0.0.1", ProcessID: "caller"},
			{Type: rpctest.Probe_Type, ID: "p1", Host: "127.0.0.1", ProcessID: "p1"}}}
	logs := &syncBuf{}
	apps := map[string]*core.App{}
	for _, pid := range []string{"caller", "p1"} {
		log := slog.New(slog.NewTextHandler(logs, nil)).With("process", pid)
		app := core.NewApp(cfg, core.Options{ProcessID: pid, Logger: log, DrainTimeout: 2 * time.Second})
		app.Register("Idle", func() core.Module { return &idle{} })
		app.Register(rpctest.Probe_Type, func() core.Module { return &rpctest.Probe{} })
		app.SetRemote(reportTransport(t, log))
		if err := app.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Stop("test end") })
		apps[pid] = app
	}
	procs := func() map[string]core.ProcessState {
		st := consoleState(t, apps["caller"])
		out := map[string]core.ProcessState{}
		for _, p := range st.Processes {
			out[p.Process] = p
		}
		return out
	}
	pollFor(t, "caller's console shows both processes live", func() bool {
		ps := procs()
		p1, ok := ps["p1"]
		return ok && !p1.Stale && len(p1.Instances) == 1 && p1.Instances[0].ID == "p1" &&
			len(p1.Brokers) == 1 && p1.Brokers[0].Connected && len(ps) == 2
	})

	if err := broker.StopBroker(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "p1 stale and caller's broker lost while the broker is down", func() bool {
		ps := procs()
		self := ps["caller"]
		return ps["p1"].Stale && !self.Stale && len(self.Brokers) == 1 && !self.Brokers[0].Connected
	})
	if err := broker.StartAgain(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "reports resume after the broker is back", func() bool {
		ps := procs()
		p1, self := ps["p1"], ps["caller"]
		return !p1.Stale && len(self.Brokers) == 1 && self.Brokers[0].Connected && self.Brokers[0].Reconnects == 1
	})
	// Each process logs its own resumption after its first report gets
	// through, which may come after p1's report made it live again.
	pollFor(t, "both processes log that reports resumed", func() bool {
		return strings.Count(logs.String(), "console reports published again") >= 2
	})
	if l := logs.String(); !strings.Contains(l, "console reports not published") {
		t.Errorf("the log does not say reports stopped:\n%s", l)
	}
}

func consoleState(t *testing.T, app *core.App) core.ConsoleState {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + app.AdminAddr().String() + "/console/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st core.ConsoleState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
