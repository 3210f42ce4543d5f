package core

import (
	"context"
	"testing"
	"time"
)

func TestParseTraceparent(t *testing.T) {
	const tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		in    string
		ok    bool
		flags byte
	}{
		{"00-" + tid + "-" + sid + "-01", true, 1},
		{"00-" + tid + "-" + sid + "-00", true, 0},
		{"01-" + tid + "-" + sid + "-09-future", true, 9}, // a later version's extra fields are ignored
		{"01-" + tid + "-" + sid + "-01", true, 1},
		{"00-" + tid + "-" + sid + "-01-x", false, 0}, // version 00 has exactly four fields
		{"01-" + tid + "-" + sid + "-01x", false, 0},
		{"ff-" + tid + "-" + sid + "-01", false, 0},
		{"00-" + "4BF92F3577B34DA6A3CE929D0E0E4736" + "-" + sid + "-01", false, 0}, // uppercase
		{"00-00000000000000000000000000000000-" + sid + "-01", false, 0},
		{"00-" + tid + "-0000000000000000-01", false, 0},
		{"00-" + tid + "-" + sid + "-0g", false, 0},
		{"00-" + tid + "_" + sid + "-01", false, 0},
		{"00-" + tid[:31] + "-" + sid + "-01", false, 0},
		{"", false, 0},
	} {
		got, ok := ParseTraceparent(tc.in)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			if got != (TraceContext{}) {
				t.Errorf("%q: refused but returned %+v", tc.in, got)
			}
			continue
		}
		if got.TraceIDString() != tid || got.Flags != tc.flags || got.String() != "00-"+tid+"-"+sid+"-"+tc.in[53:55] {
			t.Errorf("%q: got %s (%+v)", tc.in, got, got)
		}
	}
}

func TestTraceContextPropagation(t *testing.T) {
	a, b := NewTraceContext(), NewTraceContext()
	if !a.Valid() || a == b {
		t.Fatalf("new traces %v %v", a, b)
	}
	if got := TraceFromContext(context.Background()); got.Valid() {
		t.Errorf("background carries %v", got)
	}
	ctx := ContextWithTrace(context.Background(), a)
	if got := TraceFromContext(ctx); got != a {
		t.Errorf("got %v, want %v", got, a)
	}
	// The gate's lazy deadline carries the request's trace without a
	// context of its own.
	lc := withLazyDeadline(ctx, time.Now().Add(time.Hour))
	lc.trace = b
	if got := TraceFromContext(lc); got != b {
		t.Errorf("lazy context: got %v, want %v", got, b)
	}
	// The OpenTelemetry span in a context wins: it is the newer one.
	sc := withParent(lc, a)
	if got := TraceFromContext(sc); got != a {
		t.Errorf("with a span context: got %v, want %v", got, a)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = TraceFromContext(lc) }); allocs != 0 {
		t.Errorf("TraceFromContext allocates %.0f times", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = NewTraceContext() }); allocs != 0 {
		t.Errorf("NewTraceContext allocates %.0f times", allocs)
	}
}

// BenchmarkNewTraceContext is the trace every client request gets at the
// gate.
func BenchmarkNewTraceContext(b *testing.B) {
	b.ReportAllocs()
	var t TraceContext
	for b.Loop() {
		t = NewTraceContext()
	}
	_ = t
}
