package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/coregen"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

type syncBuffer = syncbuf.Buffer

var errSentinel = errors.New("the handler's own error")

// worker is a hand-written module: runtime tests do not depend on the
// generator, so its descriptor table is written out here.
type worker struct {
	core.BaseModule
	typ        string
	events     *[]string
	mu         *sync.Mutex
	failInit   bool
	running    atomic.Int32
	maxRunning atomic.Int32
	started    chan struct{} // closed by a slow call when it begins
	release    chan struct{}
	sawCancel  chan struct{}
	nrDone     chan string
}

func (w *worker) note(s string) {
	w.mu.Lock()
	*w.events = append(*w.events, s)
	w.mu.Unlock()
}

func (w *worker) GetType() string { return w.typ }

func (w *worker) OnInit(app *core.App, s *core.ModuleSettings) error {
	w.note("init " + s.ID)
	if w.failInit {
		return errors.New("init refused")
	}
	w.Init(app, s)
	w.RPCServer().Register(&core.ModuleDesc{Type: w.typ, Methods: []core.MethodDesc{
		{Name: "Echo", Handler: func(srv any, ctx context.Context, inv core.Invoker, req *core.Request) (any, error) {
			in, err := coregen.Arg[*string](req)
			if err != nil {
				return nil, err
			}
			return "echo " + *in, nil
		}},
		{Name: "Fail", Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			return nil, errSentinel
		}},
		{Name: "Panic", Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			panic("boom: secret detail")
		}},
		{Name: "Slow", Handler: func(srv any, ctx context.Context, _ core.Invoker, req *core.Request) (any, error) {
			w.track(func() {
				if w.started != nil {
					close(w.started)
				}
				select {
				case <-w.release:
				case <-ctx.Done():
					close(w.sawCancel)
				}
			})
			return "slow done", nil
		}},
		{Name: "GiveUp", Handler: func(_ any, ctx context.Context, _ core.Invoker, _ *core.Request) (any, error) {
			<-ctx.Done() // a handler that stops on its deadline, as context-aware code does
			return nil, fmt.Errorf("giving up: %w", ctx.Err())
		}},
		{Name: "Overlap", Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			w.track(func() { <-w.release })
			return nil, nil
		}},
		{Name: "OverlapSync", Sync: true, Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			w.track(func() { <-w.release })
			return nil, nil
		}},
		{Name: "Who", Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) {
			return w.Settings.ID, nil
		}},
		{Name: "Note", Handler: func(_ any, _ context.Context, _ core.Invoker, req *core.Request) (any, error) {
			w.nrDone <- string(req.Raw)
			return nil, nil
		}},
	}}, w)
	return nil
}

func (w *worker) track(f func()) {
	n := w.running.Add(1)
	for {
		m := w.maxRunning.Load()
		if n <= m || w.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	defer w.running.Add(-1)
	f()
}

func (w *worker) Run(closeSig chan bool) {
	w.note("run " + w.Settings.ID)
	<-closeSig
	w.note("run returned " + w.Settings.ID)
}

func (w *worker) OnDestroy() { w.note("destroy " + w.Settings.ID) }

type fixture struct {
	app    *core.App
	logs   *syncBuffer
	events *[]string
	mu     *sync.Mutex
	mods   map[string]*worker
}

func config() *core.Config {
	return &core.Config{RPC: core.RPCConfig{Timeout: 2 * time.Second}, Modules: []*core.ModuleSettings{
		{Type: "Alpha", ID: "a1", Host: "127.0.0.1", ProcessID: "p"},
		{Type: "Beta", ID: "b1", Host: "127.0.0.1", ProcessID: "p"},
		{Type: "Beta", ID: "b2", Host: "10.9.9.9", ProcessID: "q"},
	}}
}

func newFixture(t *testing.T, cfg *core.Config, opts core.Options) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}, events: &[]string{}, mu: &sync.Mutex{}, mods: map[string]*worker{}}
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.DrainTimeout = 2 * time.Second
	f.app = core.NewApp(cfg, opts)
	for _, typ := range []string{"Alpha", "Beta"} {
		typ := typ
		f.app.Register(typ, func() core.Module {
			w := &worker{typ: typ, events: f.events, mu: f.mu, release: make(chan struct{}), sawCancel: make(chan struct{}), nrDone: make(chan string, 1)}
			f.mu.Lock()
			f.mods[typ+"#"+string(rune('0'+len(f.mods)))] = w
			f.mu.Unlock()
			return w
		})
	}
	return f
}

func (f *fixture) start(t *testing.T) {
	t.Helper()
	if err := f.app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.app.Stop("test end") })
}

func (f *fixture) worker(t *testing.T, typ string) *worker {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, w := range f.mods {
		if strings.HasPrefix(k, typ+"#") {
			return w
		}
	}
	t.Fatalf("no %s module", typ)
	return nil
}

func call(app *core.App, ctx context.Context, typ, fn string, arg any) (core.Reply, error) {
	return app.Invoke(ctx, core.Target{Type: typ}, &core.Request{Fn: fn, Arg: arg})
}

func TestLifecycleOrderAndLogs(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, config(), core.Options{ProcessID: "p"})
	if err := f.app.Start(); err != nil {
		t.Fatal(err)
	}
	// Run starts in a goroutine: wait until both report in.
	waitUntil(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(*f.events) == 4
	})
	f.app.Stop("signal: interrupt")
	f.mu.Lock()
	got := strings.Join(*f.events, "|")
	f.mu.Unlock()
	// Init in registration order; the b2 instance belongs to process q.
	if !strings.HasPrefix(got, "init a1|init b1|") {
		t.Errorf("start order: %s", got)
	}
	if !strings.HasSuffix(got, "run returned b1|destroy b1|run returned a1|destroy a1") {
		t.Errorf("stop must be in reverse order, Run returning before OnDestroy: %s", got)
	}
	logs := f.logs.String()
	for _, want := range []string{"mqantgen starting up", `module initialised" type=Alpha id=a1`, "RPCServer listening",
		"RPCServer closed", `module stopped" type=Beta id=b1`, `closing down" reason="signal: interrupt"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestHostSelectionWithoutPid(t *testing.T) {
	leakcheck.Check(t)
	f := newFixture(t, config(), core.Options{LocalAddrs: []string{"10.9.9.9"}})
	f.start(t)
	// 127.0.0.1 matches everywhere, 10.9.9.9 is "this machine" here: all three run.
	for _, id := range []string{"a1", "b1", "b2"} {
		if !strings.Contains(f.logs.String(), "module initialised\" type="+map[bool]string{true: "Alpha", false: "Beta"}[id == "a1"]+" id="+id) {
			t.Errorf("%s not started:\n%s", id, f.logs.String())
		}
	}
	if got := f.app.ServerIDs("Beta"); len(got) != 2 {
		t.Errorf("ServerIDs(Beta) = %v", got)
	}
}

func TestStartFailures(t *testing.T) {
	t.Run("unknown module type", func(t *testing.T) {
		leakcheck.Check(t)
		cfg := config()
		cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: "Gamma", ID: "g1", Host: "127.0.0.1"})
		f := newFixture(t, cfg, core.Options{})
		err := f.app.Start()
		if err == nil || !strings.Contains(err.Error(), `$.Module.Gamma: unknown module type "Gamma" (registered: Alpha, Beta)`) {
			t.Fatalf("err = %v", err)
		}
		if len(*f.events) != 0 {
			t.Errorf("modules initialised despite the error: %v", *f.events)
		}
	})
	t.Run("no instance for pid", func(t *testing.T) {
		leakcheck.Check(t)
		f := newFixture(t, config(), core.Options{ProcessID: "zz"})
		if err := f.app.Start(); err == nil || !strings.Contains(err.Error(), `no module instance has ProcessID "zz"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("OnInit error stops what started", func(t *testing.T) {
		leakcheck.Check(t)
		f := newFixture(t, config(), core.Options{ProcessID: "p"})
		f.app.Register("Beta", func() core.Module {
			return &worker{typ: "Beta", events: f.events, mu: f.mu, failInit: true}
		})
		err := f.app.Start()
		if err == nil || !strings.Contains(err.Error(), "module b1: OnInit: init refused") {
			t.Fatalf("err = %v", err)
		}
		got := strings.Join(*f.events, "|")
		if got != "init a1|init b1|destroy a1" {
			t.Errorf("events = %s; the started module must be destroyed and Run never started", got)
		}
	})
}

func waitUntil(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// careless is a module that forgets one step of OnInit.
type careless struct {
	core.BaseModule
	typ    string
	forget string // "init", "register", "init-then-register"
}

func (c *careless) GetType() string { return c.typ }

func (c *careless) OnInit(app *core.App, s *core.ModuleSettings) error {
	desc := &core.ModuleDesc{Type: c.typ, Methods: []core.MethodDesc{{Name: "Handler_X",
		Handler: func(any, context.Context, core.Invoker, *core.Request) (any, error) { return "x", nil }}}}
	switch c.forget {
	case "register":
		c.Init(app, s)
	case "init-then-register":
		c.RPCServer().Register(desc, c) // nil server: Init was forgotten
	}
	return nil
}

// Each step a module's author can forget fails the start with what to do,
// instead of starting and failing every call.
func TestStartFailsLoudly(t *testing.T) {
	// The generated package of a module type records its descriptor
	// table at init; Careful stands for one here.
	core.Describe(&core.ModuleDesc{Type: "Careful", Methods: []core.MethodDesc{{Name: "Handler_X"}}})
	for _, tc := range []struct {
		name, typ, forget, want string
	}{
		{"Init forgotten", "Beta", "init", `module b1: OnInit did not call Init(app, settings) of its embedded core.BaseModule`},
		{"registration on a nil server", "Beta", "init-then-register", `module b1: OnInit panicked: core: registering Beta's methods on a nil *Server: call Init(app, settings)`},
		{"generated registration forgotten", "Careful", "register", `module c1: OnInit registered no methods, so every call to Careful would fail; call the generated RegisterCarefulServer(m.RPCServer(), m) after Init`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			cfg := config()
			if tc.typ == "Careful" {
				cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: "Careful", ID: "c1", Host: "127.0.0.1", ProcessID: "p"})
			}
			f := newFixture(t, cfg, core.Options{ProcessID: "p"})
			f.app.Register(tc.typ, func() core.Module { return &careless{typ: tc.typ, forget: tc.forget} })
			err := f.app.Start()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
		})
	}
	t.Run("a module without methods and without generated code starts", func(t *testing.T) {
		leakcheck.Check(t)
		f := newFixture(t, config(), core.Options{ProcessID: "p"})
		f.app.Register("Beta", func() core.Module { return &careless{typ: "Beta", forget: "register"} })
		if err := f.app.Start(); err != nil {
			t.Fatalf("a caller-only module (no Handler_ methods, no generated package) must start: %v", err)
		}
		f.app.Stop("test over")
	})
	t.Run("registered type without instances", func(t *testing.T) {
		leakcheck.Check(t)
		f := newFixture(t, config(), core.Options{ProcessID: "p"})
		f.app.Register("Lobby", func() core.Module { return &careless{typ: "Lobby"} })
		err := f.app.Start()
		if err == nil || !strings.Contains(err.Error(), `$.Module: module type "Lobby" is registered but the config has no instance of it`) {
			t.Fatalf("err = %v", err)
		}
	})
}
