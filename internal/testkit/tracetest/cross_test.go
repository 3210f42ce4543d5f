package tracetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/demo/chat"
	"github.com/mqantgen/mqantgen/demo/login"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

var broker *rabbittest.Broker

// The second process is this test binary run again with these set: the
// broker's URI and the file it writes its spans to when it stops.
const (
	childURIEnv   = "TRACETEST_CHILD_URI"
	childSpansEnv = "TRACETEST_CHILD_SPANS"
)

func TestMain(m *testing.M) {
	if uri := os.Getenv(childURIEnv); uri != "" {
		if err := runChild(uri, os.Getenv(childSpansEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(rabbittest.Main(m, &broker))
}

// config puts the gate in process "front" and Login, Chat and Probe in
// process "back".
func config() *core.Config {
	return &core.Config{
		RPC: core.RPCConfig{Timeout: 10 * time.Second},
		Modules: []*core.ModuleSettings{
			{Type: gate.Gate_Type, ID: "Gate1", Host: "127.0.0.1", ProcessID: "front",
				Settings: map[string]any{"TCPAddr": "127.0.0.1:0", "SessionCloseListeners": []any{"Chat"}}},
			{Type: "Login", ID: "Login1", Host: "127.0.0.1", ProcessID: "back"},
			{Type: "Chat", ID: "Chat1", Host: "127.0.0.1", ProcessID: "back"},
			{Type: rpctest.Probe_Type, ID: "Probe1", Host: "127.0.0.1", ProcessID: "back"},
		},
	}
}

// newApp makes the App of one process, tracing into its own in-memory
// exporter, with RPC to the other process through the broker.
func newApp(pid, uri string, log *slog.Logger) (*core.App, *sdktrace.TracerProvider, *tracetest.InMemoryExporter, **gate.Gate, error) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	app := core.NewApp(config(), core.Options{ProcessID: pid, Logger: log, TracerProvider: tp, DrainTimeout: 3 * time.Second})
	var g *gate.Gate
	newGate := gate.New()
	app.Register(gate.Gate_Type, func() core.Module { m := newGate(); g = m.(*gate.Gate); return m })
	app.Register("Login", login.New)
	app.Register("Chat", chat.New)
	app.Register(rpctest.Probe_Type, rpctest.New)
	t := rabbitmq.New(uri, log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := t.WaitReady(ctx); err != nil {
		_ = t.Close()
		return nil, nil, nil, nil, err
	}
	app.SetRemote(t)
	return app, tp, exp, &g, nil
}

// runChild serves Login, Chat and Probe until SIGINT, then writes its spans.
func runChild(uri, spansFile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, tp, exp, _, err := newApp("back", uri, log)
	if err != nil {
		return err
	}
	if err := app.Run(context.Background()); err != nil {
		return err
	}
	// Read before Shutdown: the in-memory exporter forgets on shutdown.
	if err := tp.ForceFlush(context.Background()); err != nil {
		return err
	}
	b, err := json.Marshal(records("back", exp.GetSpans()))
	_ = tp.Shutdown(context.Background())
	if err != nil {
		return err
	}
	return os.WriteFile(spansFile, b, 0o600)
}

// record is an exported span as the test compares it, written as JSON by
// the second process.
type record struct {
	Proc, Name, Kind, Trace, ID, Parent, Status string
	Attrs                                       map[string]string
}

func records(proc string, spans tracetest.SpanStubs) []record {
	var out []record
	for _, s := range spans {
		r := record{Proc: proc, Name: s.Name, Kind: s.SpanKind.String(), Trace: s.SpanContext.TraceID().String(),
			ID: s.SpanContext.SpanID().String(), Status: s.Status.Code.String(), Attrs: map[string]string{}}
		if s.Parent.IsValid() {
			r.Parent = s.Parent.SpanID().String()
		}
		for _, kv := range s.Attributes {
			r.Attrs[string(kv.Key)] = kv.Value.Emit()
		}
		out = append(out, r)
	}
	return out
}

// TestTraceAcrossProcesses follows requests from an MQTT client through the
// gate in this process to handlers in a second one and back (Login binds
// the session on the gate, Chat pushes to the room's members): one trace
// per request, from the gate's receive span to the handler in the other
// process and the calls it makes back, parents linked, a client's
// traceparent continued; and a failing request's log lines in both
// processes carry its trace id.
func TestTraceAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	spansFile := filepath.Join(dir, "child-spans.json")
	childLog := &syncbuf.Buffer{}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childURIEnv+"="+broker.URI, childSpansEnv+"="+spansFile)
	child.Stdout, child.Stderr = childLog, childLog
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	childDone := make(chan error, 1)
	go func() { childDone <- child.Wait() }()
	stopChild := func() {
		_ = child.Process.Signal(syscall.SIGINT)
		select {
		case err := <-childDone:
			if err != nil {
				t.Errorf("second process: %v\n%s", err, childLog)
			}
		case <-time.After(30 * time.Second):
			_ = child.Process.Kill()
			t.Fatalf("second process did not stop on SIGINT\n%s", childLog)
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopChild()
		}
	})

	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, tp, exp, g, err := newApp("front", broker.URI, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	appStopped := false
	t.Cleanup(func() {
		if !appStopped {
			app.Stop("test finished")
		}
	})
	c := mqtttest.NewPaho(t, "tcp://"+(*g).TCPAddr().String(), "alice")

	// The second process may still be starting: wait until each module
	// answers (their consumers start one by one).
	deadline := time.Now().Add(60 * time.Second)
	for _, ready := range [][2]string{{"Login/Handler_Login", `{"userName":"warm","passWord":"x"}`},
		{"Chat/Handler_Say", `{}`}, {"Probe/Handler_Echo", `{}`}} {
		for r := c.Request(ready[0], 1, ready[1]); strings.Contains(r.Error, "not found"); r = c.Request(ready[0], 1, ready[1]) {
			if time.Now().After(deadline) {
				t.Fatalf("%s in the second process never answered: %s\n%s", ready[0], r.Error, childLog)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	tp1 := "00-" + clientTrace + "-" + clientSpan + "-01"
	if got := c.Must("Login/Handler_Login", `{"userName":"alice","passWord":"x","traceparent":"`+tp1+`"}`); got != `"login success alice"` {
		t.Fatalf("login: %s", got)
	}
	if got := c.Must("Chat/Handler_JoinChat", `{"roomName":"lobby"}`); got != `"join success"` {
		t.Fatalf("join: %s", got)
	}
	c.WaitOne(func(m mqtttest.Msg) bool { return m.Topic == "Chat/OnJoin" }, "the join pushed to the room")
	const panicTrace = "0af7651916cd43dd8448eb211c80319c"
	r := c.Request("Probe/Handler_Panic", 1, `{"traceparent":"00-`+panicTrace+`-b7ad6b7169203331-01"}`)
	errorID := regexp.MustCompile(`internal error \(id ([0-9a-f]+)\)`).FindStringSubmatch(r.Error)
	if errorID == nil {
		t.Fatalf("panic reply: %+v", r)
	}

	stopChild()
	stopped = true
	app.Stop("test finished")
	appStopped = true
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(spansFile)
	if err != nil {
		t.Fatalf("spans of the second process: %v\n%s", err, childLog)
	}
	var spans []record
	if err := json.Unmarshal(b, &spans); err != nil {
		t.Fatal(err)
	}
	spans = append(spans, records("front", exp.GetSpans())...)
	if t.Failed() {
		return
	}

	checkLogin(t, spans, clientTrace, clientSpan)
	checkJoin(t, spans)
	for _, s := range spans {
		for k, v := range s.Attrs {
			if strings.Contains(v, "alice") || strings.Contains(v, "lobby") {
				t.Errorf("%s %s: attribute %s=%q carries user data", s.Proc, s.Name, k, v)
			}
		}
	}

	// The failing request: the gate's warning here, the panic's error line
	// (with the id the client got) there, both with the client's trace id.
	if !hasLine(logs.String(), "request failed", "trace_id="+panicTrace) {
		t.Errorf("no gate log line about the failed request with trace_id=%s:\n%s", panicTrace, logs)
	}
	if !hasLine(childLog.String(), "rpc handler panic", "errorId="+errorID[1], "trace_id="+panicTrace) {
		t.Errorf("no panic log line with errorId=%s and trace_id=%s in the second process:\n%s", errorID[1], panicTrace, childLog)
	}
}

// checkLogin: the login with the client's traceparent is one trace,
// gate receive (child of the client's span) -> call -> Login's handler
// in the other process -> its call to the gate's Bind -> Bind back here.
func checkLogin(t *testing.T, spans []record, traceID, clientSpan string) {
	t.Helper()
	in := byTrace(spans, traceID)
	recv := one(t, in, "front", "gate.receive", "server", clientSpan)
	call := one(t, in, "front", "rpc.call", "client", recv.ID)
	handle := one(t, in, "back", "rpc.handle", "server", call.ID)
	bindCall := one(t, in, "back", "rpc.call", "client", handle.ID)
	bind := one(t, in, "front", "rpc.handle", "server", bindCall.ID)
	if t.Failed() {
		t.Logf("spans of trace %s: %+v", traceID, in)
		return
	}
	for _, c := range []struct {
		s              record
		module, method string
	}{{recv, "Login", "Handler_Login"}, {call, "Login", "Handler_Login"}, {handle, "Login", "Handler_Login"},
		{bindCall, "Gate", "Bind"}, {bind, "Gate", "Bind"}} {
		if c.s.Attrs["mqant.module"] != c.module || c.s.Attrs["mqant.handler"] != c.method || c.s.Status != "Unset" {
			t.Errorf("%s %s: attributes %v status %s, want module %s handler %s", c.s.Proc, c.s.Name, c.s.Attrs, c.s.Status, c.module, c.method)
		}
	}
	if handle.Attrs["mqant.instance"] != "Login1" {
		t.Errorf("handler span instance %q", handle.Attrs["mqant.instance"])
	}
}

// checkJoin: a request without a traceparent gets a new trace at the gate
// (a root span), continued by Chat's handler in the other process and by
// the push it sends back to the room's members through the gate.
func checkJoin(t *testing.T, spans []record) {
	t.Helper()
	var handle record
	for _, s := range spans {
		if s.Proc == "back" && s.Name == "rpc.handle" && s.Attrs["mqant.handler"] == "Handler_JoinChat" {
			handle = s
		}
	}
	if handle.ID == "" {
		t.Fatalf("no handler span of Handler_JoinChat in the second process: %+v", spans)
	}
	in := byTrace(spans, handle.Trace)
	recv := one(t, in, "front", "gate.receive", "server", "")
	call := one(t, in, "front", "rpc.call", "client", recv.ID)
	if handle.Parent != call.ID {
		t.Errorf("JoinChat's handler span has parent %s, want the gate's call %s", handle.Parent, call.ID)
	}
	var push record
	for _, s := range in {
		if s.Proc == "back" && s.Name == "rpc.call" && s.Parent == handle.ID && s.Attrs["mqant.handler"] == "Broadcast" {
			push = s
		}
	}
	if push.ID == "" {
		t.Errorf("no call from JoinChat's handler to the gate's Broadcast")
	}
	one(t, in, "front", "rpc.handle", "server", push.ID)
	if t.Failed() {
		t.Logf("spans of trace %s: %+v", handle.Trace, in)
	}
}

func byTrace(spans []record, traceID string) []record {
	var out []record
	for _, s := range spans {
		if s.Trace == traceID {
			out = append(out, s)
		}
	}
	return out
}

// one returns the single span of proc named name of kind whose parent is
// parent ("" for a root).
func one(t *testing.T, spans []record, proc, name, kind, parent string) record {
	t.Helper()
	var got []record
	for _, s := range spans {
		if s.Proc == proc && s.Name == name && s.Kind == kind && s.Parent == parent {
			got = append(got, s)
		}
	}
	if len(got) != 1 {
		t.Errorf("%d %s spans %s (%s) with parent %q, want 1", len(got), proc, name, kind, parent)
		return record{}
	}
	return got[0]
}

// hasLine reports whether one line of log contains every part.
func hasLine(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
