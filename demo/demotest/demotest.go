// Package demotest starts the chat demo inside a test process: Gate, Login
// and Chat with in-process RPC, listening on free loopback ports, plus the
// web client's HTTP server. Tests of the demo's clients use it.
package demotest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/chat"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/demo/web"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// Demo is a running chat demo.
type Demo struct {
	App     *core.App
	Gate    *gate.Gate
	TCPAddr string // host:port of the MQTT TCP listener
	WSAddr  string // host:port of the MQTT WebSocket listener
	WebURL  string // http://host:port/mqant/index.html
	Logs    *LogBuffer
}

// LogBuffer collects the server's log lines for assertions.
type LogBuffer = syncbuf.Buffer

// Config returns the demo's one-process config with the gate on free
// loopback ports. extra gate settings are merged in.
func Config(extra map[string]any) *core.Config {
	settings := map[string]any{"TCPAddr": "127.0.0.1:0", "WSAddr": "127.0.0.1:0"}
	for k, v := range extra {
		settings[k] = v
	}
	return &core.Config{
		RPC: core.RPCConfig{Timeout: 10 * time.Second},
		Modules: []*core.ModuleSettings{
			{Type: "Gate", ID: "127.0.0.1:Gate", Host: "127.0.0.1", ProcessID: "dev", Settings: settings},
			{Type: "Login", ID: "127.0.0.1:Login", Host: "127.0.0.1", ProcessID: "dev"},
			{Type: "Chat", ID: "127.0.0.1:Chat", Host: "127.0.0.1", ProcessID: "dev"},
		},
	}
}

// Extra is one more module to run beside the demo's.
type Extra struct {
	Type string
	New  func() core.Module
}

// Options are the less common knobs of StartWith.
type Options struct {
	Gate       map[string]any    // gate settings merged over the demo's
	Extras     []Extra           // more modules to run
	RPCTimeout time.Duration     // 0: the demo's 10s
	GateOpts   []gate.Option     // such as gate.WithAuth
	Admin      *core.AdminConfig // an admin listener (Addr "127.0.0.1:0" for a free port)
	NoMetrics  bool              // core.Options.NoMetrics: no per-call metrics
	// TracerProvider turns tracing on (core.Options.TracerProvider).
	TracerProvider trace.TracerProvider
}

// StartWith is Start with every option.
func StartWith(t testing.TB, o Options) *Demo {
	t.Helper()
	d, err := start(t, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Start runs the demo until the test ends. gateSettings override the gate's
// settings (limits, keep-alive, ...); extras are more modules to run.
func Start(t testing.TB, gateSettings map[string]any, extras ...Extra) *Demo {
	t.Helper()
	d, err := StartErr(t, gateSettings, extras...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// StartErr is Start for tests of start-up failures: it returns the error
// instead of failing the test.
func StartErr(t testing.TB, gateSettings map[string]any, extras ...Extra) (*Demo, error) {
	t.Helper()
	return start(t, Options{Gate: gateSettings, Extras: extras})
}

func start(t testing.TB, o Options) (*Demo, error) {
	logs := &LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config(o.Gate)
	if o.RPCTimeout > 0 {
		cfg.RPC.Timeout = o.RPCTimeout
	}
	if o.Admin != nil {
		cfg.Admin = *o.Admin
	}
	extras := o.Extras
	for _, e := range extras {
		cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: e.Type, ID: "127.0.0.1:" + e.Type, Host: "127.0.0.1", ProcessID: "dev"})
	}
	app := core.NewApp(cfg, core.Options{ProcessID: "dev", Logger: log, DrainTimeout: 3 * time.Second, NoMetrics: o.NoMetrics,
		TracerProvider: o.TracerProvider})
	var g *gate.Gate
	newGate := gate.New(o.GateOpts...)
	app.Register(gate.Gate_Type, func() core.Module {
		m := newGate()
		g = m.(*gate.Gate)
		return m
	})
	login.Register(app)
	chat.Register(app)
	for _, e := range extras {
		app.Register(e.Type, e.New)
	}
	if err := app.Start(); err != nil {
		return nil, fmt.Errorf("demo start: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		app.Stop("test setup failed")
		return nil, err
	}
	srv := &http.Server{Handler: web.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web server", "err", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		app.Stop("test finished")
	})
	d := &Demo{App: app, Gate: g, Logs: logs,
		WebURL: fmt.Sprintf("http://%s/mqant/index.html", ln.Addr())}
	if a := g.TCPAddr(); a != nil {
		d.TCPAddr = a.String()
	}
	if a := g.WSAddr(); a != nil {
		d.WSAddr = a.String()
	}
	return d, nil
}
