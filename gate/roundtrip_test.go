package gate_test

import (
	"bufio"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/bench/benchmod"
	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// roundTrips sends n requests on topic over one connection, window at a
// time, and reads every reply. The client side allocates nothing per
// request (one encoded packet, a Reader that reuses its Publish), so the
// allocations counted around it are the server's.
func roundTrips(tb testing.TB, c *mqtttest.Client, topic, body string, n, window int) {
	req := (&packets.Publish{Topic: topic, Payload: []byte(body)}).AppendTo(nil)
	w := bufio.NewWriter(c.Conn)
	br := bufio.NewReader(c.Conn)
	rd := packets.NewReader(br)
	_ = c.Conn.SetDeadline(time.Now().Add(time.Minute))
	sent := 0
	for ; sent < window && sent < n; sent++ {
		_, _ = w.Write(req)
	}
	_ = w.Flush()
	for got := 0; got < n; {
		if br.Buffered() == 0 {
			_ = w.Flush() // about to wait: send what is written
		}
		p, err := rd.ReadPacket()
		if err != nil {
			tb.Fatalf("after %d replies: %v", got, err)
		}
		if _, ok := p.(*packets.Publish); !ok {
			continue
		}
		got++
		if sent < n {
			_, _ = w.Write(req)
			sent++
		}
	}
}

func echoGate(tb testing.TB, noMetrics bool) *mqtttest.Client {
	d := demotest.StartWith(tb, demotest.Options{NoMetrics: noMetrics, Extras: []demotest.Extra{
		{Type: benchmod.Echo_Type, New: func() core.Module { return &benchmod.Echo{} }},
	}})
	c := mqtttest.Connect(tb, d.TCPAddr, "bench", 0)
	if got := c.Request("Echo/Handler_Echo/1", `{"n":1,"text":"x"}`); got != `{"Error":"","Result":{"n":1,"text":"pong"}}` {
		tb.Fatalf("echo: %s", got)
	}
	return c
}

// BenchmarkGateRoundTrip is one request through the gate and back: codec,
// routing, dispatch, an in-process handler, the reply. Eight in flight.
// Metrics on, as a server runs: the handler timed and counted, the call
// counted by the caller.
func BenchmarkGateRoundTrip(b *testing.B) {
	c := echoGate(b, false)
	b.ReportAllocs()
	b.ResetTimer()
	roundTrips(b, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, b.N, 8)
}

// BenchmarkGateRoundTripNoMetrics is BenchmarkGateRoundTrip with the
// per-call metrics off (core.Options.NoMetrics): the pair is what
// metrics cost on the hot path (bench/results.md gives the ratio).
func BenchmarkGateRoundTripNoMetrics(b *testing.B) {
	c := echoGate(b, true)
	b.ReportAllocs()
	b.ResetTimer()
	roundTrips(b, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, b.N, 8)
}

// maxAllocsPerRequest guards the gate's request path (issue 11's goal):
// the call's one object (request, context, body) and the Echo handler's
// argument. The reply is encoded into pooled buffers.
const maxAllocsPerRequest = 2

func TestGateRoundTripAllocs(t *testing.T) {
	c := echoGate(t, false)
	roundTrips(t, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, 1000, 8) // warm pools and workers
	const n = 5000
	allocs := testing.AllocsPerRun(1, func() { roundTrips(t, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, n, 8) }) / n
	// A few allocations per run are not per request (a writer goroutine
	// started again, a timer): 0.01 per request is 50 of them.
	limit := float64(maxAllocsPerRequest) + 0.01
	if raceEnabled {
		limit += 4 // pooled buffers and request objects are dropped at random
	}
	t.Logf("%.3f allocations per request (race detector %v)", allocs, raceEnabled)
	if allocs > limit {
		t.Errorf("%.3f allocations per request through the gate, want at most %d", allocs, maxAllocsPerRequest)
	}
}
