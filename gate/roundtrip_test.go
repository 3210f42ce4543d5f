package gate_test

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
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
	sendRoundTrips(tb, c, topic, body, n, window, bufio.NewWriter(c.Conn))
}

// sendRoundTrips is roundTrips writing through w: a bufio.Writer sends
// the requests written since the client last waited together, unbuffered
// (trickle) every request is its own write, as a client that sends each
// next request when a reply arrives.
func sendRoundTrips(tb testing.TB, c *mqtttest.Client, topic, body string, n, window int, w interface {
	Write([]byte) (int, error)
	Flush() error
}) {
	// Every request gets its own msgid, as a client's do (the topic, and
	// with it a string the gate might make, differs every time): six
	// digits written over the topic's last level, no allocation.
	topic = topic[:strings.LastIndexByte(topic, '/')+1] + "000000"
	req := (&packets.Publish{Topic: topic, Payload: []byte(body)}).AppendTo(nil)
	digits := req[bytes.Index(req, []byte(topic))+len(topic)-6:][:6]
	write := func(i int) {
		for k := 5; k >= 0; k-- {
			digits[k] = byte('0' + i%10)
			i /= 10
		}
		_, _ = w.Write(req)
	}
	br := bufio.NewReader(c.Conn)
	rd := packets.NewReader(br)
	rd.RawTopics(true) // the replies' topics differ too: no string for them
	_ = c.Conn.SetDeadline(time.Now().Add(time.Minute))
	sent := 0
	for ; sent < window && sent < n; sent++ {
		write(sent)
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
			write(sent)
			sent++
		}
	}
}

// echoModule is the demo with the bench's Echo module beside it.
func echoModule() demotest.Options {
	return demotest.Options{Extras: []demotest.Extra{
		{Type: benchmod.Echo_Type, New: func() core.Module { return &benchmod.Echo{} }},
	}}
}

func echoGate(tb testing.TB, noMetrics bool) *mqtttest.Client {
	opts := echoModule()
	opts.NoMetrics = noMetrics
	d := demotest.StartWith(tb, opts)
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

// BenchmarkGateRoundTripMetricsPaired is what the per-call metrics cost,
// measured as BenchmarkRabbitPaired measures the RabbitMQ p50s: two gates in
// one process, metrics on and off, take turns in chunks of pairChunk
// requests, so both see the same machine. Run one after the other, the two
// benchmarks above read 0.95-1.11 of each other on this VM, whose speed
// moves between periods of seconds; chunks of a few milliseconds share
// them. One op is one request through each gate.
func BenchmarkGateRoundTripMetricsPaired(b *testing.B) {
	const pairChunk = 1000
	on, off := echoGate(b, false), echoGate(b, true)
	roundTrips(b, on, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, pairChunk, 8) // warm both
	roundTrips(b, off, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, pairChunk, 8)
	var tOn, tOff time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	run := func(c *mqtttest.Client, n int, t *time.Duration) {
		t0 := time.Now()
		roundTrips(b, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, n, 8)
		*t += time.Since(t0)
	}
	for done, k := 0, 0; done < b.N; k++ {
		n := min(pairChunk, b.N-done)
		if k%2 == 0 { // each goes first in half the turns
			run(on, n, &tOn)
			run(off, n, &tOff)
		} else {
			run(off, n, &tOff)
			run(on, n, &tOn)
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(tOn.Nanoseconds())/float64(b.N), "on-ns/req")
	b.ReportMetric(float64(tOff.Nanoseconds())/float64(b.N), "off-ns/req")
	b.ReportMetric(float64(tOn)/float64(tOff), "metrics-ratio")
}

// maxAllocsPerRequest guards the gate's request path (issue 11's goal):
// the call's one object (request, context, body) and the Echo handler's
// argument. The reply is encoded into pooled buffers.
const maxAllocsPerRequest = 2

func TestGateRoundTripAllocs(t *testing.T) {
	checkRequestAllocs(t, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, maxAllocsPerRequest)
}

// checkRequestAllocs fails when a request on topic costs more than max
// allocations, counted over 5000 requests on one connection, 8 in flight.
func checkRequestAllocs(t *testing.T, topic, body string, max int) {
	c := echoGate(t, false)
	roundTrips(t, c, topic, body, 1000, 8) // warm pools and workers
	const n = 5000
	allocs := testing.AllocsPerRun(1, func() { roundTrips(t, c, topic, body, n, 8) }) / n
	// A few allocations per run are not per request (a writer goroutine
	// started again, a timer): 0.01 per request is 50 of them.
	limit := float64(max) + 0.01
	if raceEnabled {
		limit += 4 // pooled buffers and request objects are dropped at random
	}
	t.Logf("%s: %.3f allocations per request (race detector %v)", topic, allocs, raceEnabled)
	if allocs > limit {
		t.Errorf("%s: %.3f allocations per request through the gate, want at most %d", topic, allocs, max)
	}
}

// loginBody is the demo's Login request: its handler binds the session
// (a direct call into the gate of its process).
const loginBody = `{"userName":"bench","passWord":"x"}`

// BenchmarkGateLoginBind is one demo Login request through the gate: the
// round trip of BenchmarkGateRoundTrip plus the handler's s.Bind.
func BenchmarkGateLoginBind(b *testing.B) {
	c := echoGate(b, false)
	b.ReportAllocs()
	b.ResetTimer()
	roundTrips(b, c, "Login/Handler_Login/1", loginBody, b.N, 8)
}

// maxAllocsPerLogin guards a Login with its Bind: the two of the gate's
// request path (the call's object, the argument), the Bind's new session
// snapshot, and what the handler and its generated glue make (the user
// name's string, the Session, the result string and its boxing; a
// one-byte password needs no string of its own). The Bind itself is a
// direct call: no request, no reply, no timer.
const maxAllocsPerLogin = 7

func TestGateLoginBindAllocs(t *testing.T) {
	checkRequestAllocs(t, "Login/Handler_Login/1", loginBody, maxAllocsPerLogin)
}

// BenchmarkGateWrites is Echo requests on 32 connections at once, 8 in
// flight on each: it reports the write system calls per reply and the
// requests per read, the gate's batching (the replies of a connection
// that are ready together should share a write). burst: the client sends
// what it has together (a read brings several requests); trickle: every
// request is its own write, sent as a reply arrives.
func BenchmarkGateWrites(b *testing.B) {
	for _, conns := range []int{1, 32} {
		for _, mode := range []string{"burst", "trickle"} {
			b.Run(mode+"-"+strconv.Itoa(conns), func(b *testing.B) { benchWrites(b, conns, mode == "trickle") })
		}
	}
}

type unbuffered struct{ net.Conn }

func (unbuffered) Flush() error { return nil }

func benchWrites(b *testing.B, conns int, trickle bool) {
	const window = 8
	d := demotest.StartWith(b, echoModule())
	cs := make([]*mqtttest.Client, conns)
	for i := range cs {
		cs[i] = mqtttest.Connect(b, d.TCPAddr, "w"+strconv.Itoa(i), 0)
	}
	per := b.N/conns + 1
	before := d.Gate.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w interface {
				Write([]byte) (int, error)
				Flush() error
			} = bufio.NewWriter(c.Conn)
			if trickle {
				w = unbuffered{c.Conn}
			}
			sendRoundTrips(b, c, "Echo/Handler_Echo/1", `{"n":1,"text":"x"}`, per, window, w)
		}()
	}
	wg.Wait()
	b.StopTimer()
	after := d.Gate.Stats()
	replies := float64(after.Replies - before.Replies)
	b.ReportMetric(float64(after.SocketWrites-before.SocketWrites)/replies, "writes/reply")
	b.ReportMetric(float64(after.Requests-before.Requests)/float64(after.SocketReads-before.SocketReads), "requests/read")
}
