package rabbitmq_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

func TestForConfigErrors(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := rabbitmq.ForConfig(&core.Config{Modules: []*core.ModuleSettings{{Type: "A", ID: "a1"}}}, quiet)
	if err == nil || !strings.Contains(err.Error(), "module a1: no Rabbitmq section") {
		t.Errorf("no broker: %v", err)
	}
	cfg := &core.Config{Rabbitmq: &core.RabbitmqConfig{URI: "amqp://u:secret@h1:5672/"}, Modules: []*core.ModuleSettings{
		{Type: "A", ID: "a1"},
		{Type: "A", ID: "a2", Rabbitmq: &core.RabbitmqConfig{URI: "amqp://u:secret@h2:5672/"}},
	}}
	_, err = rabbitmq.ForConfig(cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "module type A: its instances use different brokers") || strings.Contains(err.Error(), "secret") {
		t.Errorf("split type: %v", err)
	}
}

// TestPerInstanceBroker: an instance whose config names its own broker is
// served and called through that broker's connection. (Here both URIs
// point at the test broker, spelled differently, which makes two
// connections.)
func TestPerInstanceBroker(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	other := strings.Replace(broker.URI, "127.0.0.1", "localhost", 1)
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second}, Rabbitmq: &core.RabbitmqConfig{URI: broker.URI},
		Modules: []*core.ModuleSettings{
			{Type: "Idle", ID: "caller", Host: "127.0.0.1", ProcessID: "caller"},
			{Type: rpctest.Probe_Type, ID: "own", Host: "127.0.0.1", ProcessID: "own", Rabbitmq: &core.RabbitmqConfig{URI: other}},
		}}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var apps []*core.App
	for _, pid := range []string{"own", "caller"} {
		r, err := rabbitmq.ForConfig(cfg, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.BrokerOf(core.Target{Type: rpctest.Probe_Type, ID: "own"}); !strings.Contains(got, "@localhost:") {
			t.Errorf("instance own goes through %q, want its own broker", got)
		}
		if got := r.BrokerOf(core.Target{Type: rpctest.Probe_Type}); !strings.Contains(got, "@localhost:") {
			t.Errorf("type Probe goes through %q, want its instances' broker", got)
		}
		if got := r.BrokerOf(core.Target{Type: "Idle", ID: "caller"}); !strings.Contains(got, "@127.0.0.1:") {
			t.Errorf("caller goes through %q, want the global broker", got)
		}
		if got := r.BrokerOf(core.Target{Type: "Ghost"}); got != "" {
			t.Errorf("unknown type routed to %q", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := r.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		app := core.NewApp(cfg, core.Options{ProcessID: pid, Logger: quiet})
		app.Register("Idle", func() core.Module { return &idle{} })
		app.Register(rpctest.Probe_Type, rpctest.New)
		app.SetRemote(r)
		if err := app.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Stop("test end") })
		apps = append(apps, app)
	}
	r, err := rpctest.NewProbeClient(apps[1]).Echo(context.Background(), nil, &rpctest.EchoRequest{Text: "via own broker"})
	if err != nil || r.Instance != "own" {
		t.Fatalf("%+v %v", r, err)
	}
}
