package gate_test

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mqantgen/mqantgen/bench/benchmod"
	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// discard is an exporter that drops what it gets: the benchmark measures
// making, recording and ending spans, not an exporter's I/O.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkGateRoundTripTracing is BenchmarkGateRoundTrip with a tracer
// provider installed that samples every request: three spans per request
// (gate receive, call, handler). The pair is what tracing costs.
func BenchmarkGateRoundTripTracing(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(discard{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	d := demotest.StartWith(b, demotest.Options{TracerProvider: tp, Extras: []demotest.Extra{
		{Type: benchmod.Echo_Type, New: func() core.Module { return &benchmod.Echo{} }},
	}})
	c := mqtttest.Connect(b, d.TCPAddr, "bench", 0)
	b.ReportAllocs()
	b.ResetTimer()
	roundTrips(b, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, b.N, 8)
}

// TestGateTraceparent: a client's top-level traceparent is continued; one
// that is invalid, or not at the top level, is ignored and the request
// gets a trace of its own; refusals by the gate get a span too.
func TestGateTraceparent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	d := demotest.StartWith(t, demotest.Options{TracerProvider: tp})
	c := mqtttest.Connect(t, d.TCPAddr, "alice", 0)
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		name, body string
		continued  bool
	}{
		{"top level", `{"userName":"alice","passWord":"x","traceparent":"00-` + tid + `-00f067aa0ba902b7-01"}`, true},
		{"nested", `{"userName":"alice","passWord":"x","x":{"traceparent":"00-` + tid + `-00f067aa0ba902b7-01"}}`, false},
		{"invalid", `{"userName":"alice","passWord":"x","traceparent":"00-` + strings.ToUpper(tid) + `-00f067aa0ba902b7-01"}`, false},
		{"not a string", `{"userName":"alice","passWord":"x","traceparent":1}`, false},
	} {
		exp.Reset()
		if got := c.Request("Login/Handler_Login/1", tc.body); got != `{"Error":"","Result":"login success alice"}` {
			t.Fatalf("%s: %s", tc.name, got)
		}
		// The receive span ends once the reply is queued: wait for it.
		var spans tracetest.SpanStubs
		recv := receiveSpan(t, exp, &spans)
		if got := recv.SpanContext.TraceID().String() == tid; got != tc.continued {
			t.Errorf("%s: trace %s continued %v, want %v", tc.name, recv.SpanContext.TraceID(), got, tc.continued)
		}
		if recv.Parent.IsValid() != tc.continued || (tc.continued && !recv.Parent.IsRemote()) {
			t.Errorf("%s: parent %v", tc.name, recv.Parent)
		}
		// The call and Login's handler are in the same trace (its Bind on
		// a gate of its own process is a direct call, no RPC, no span).
		if n := len(spans); n != 3 {
			t.Errorf("%s: %d spans, want gate receive, call and handler", tc.name, n)
		}
		for _, s := range spans {
			if s.SpanContext.TraceID() != recv.SpanContext.TraceID() {
				t.Errorf("%s: span %s in trace %s, want %s", tc.name, s.Name, s.SpanContext.TraceID(), recv.SpanContext.TraceID())
			}
		}
	}
	exp.Reset()
	if got := c.Request("Login/Handler_Login/1", `not json`); !strings.Contains(got, "body must be JSON format") {
		t.Fatalf("bad body: %s", got)
	}
	var spans tracetest.SpanStubs
	if recv := receiveSpan(t, exp, &spans); len(spans) != 1 || recv.Status.Description != core.CodeBadJSON {
		t.Errorf("refused request: spans %+v", spans)
	}
}

// receiveSpan waits for the gate's receive span, and stores every span
// exported by then in spans.
func receiveSpan(t *testing.T, exp *tracetest.InMemoryExporter, spans *tracetest.SpanStubs) *tracetest.SpanStub {
	t.Helper()
	var recv *tracetest.SpanStub
	mqtttest.Poll(t, "the gate's receive span", func() bool {
		*spans = exp.GetSpans()
		for i := range *spans {
			if (*spans)[i].Name == "gate.receive" {
				recv = &(*spans)[i]
			}
		}
		return recv != nil
	})
	return recv
}
