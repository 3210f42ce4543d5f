package rabbitmq_test

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// The RabbitMQ benchmarks compare a framework call (generated client, App,
// this transport, envelope, RPC server, generated dispatch) with a bare
// amqp091-go request/reply loop doing the same AMQP work (direct reply-to,
// mandatory publish, manual ack after the reply, same prefetch) with no
// framework, against the same private broker in the same run.

// measure runs b.N calls spread over conc goroutines and reports calls/s
// and latency percentiles.
func measure(b *testing.B, conc int, call func() error) {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := call(); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
}

func BenchmarkRabbitFramework(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			c := startClusterQuiet(b, "bp1")
			cl := c.client()
			ctx := context.Background()
			req := &rpctest.EchoRequest{Text: "0123456789012345678901234567890123456789012345678901234567890123"}
			before := c.traffic()
			measure(b, conc, func() error {
				_, err := cl.Echo(ctx, nil, req)
				return err
			})
			// AMQP messages (calls and replies, both processes) per
			// framework call: 2 without batching.
			after := c.traffic()
			b.ReportMetric(float64(after.Messages-before.Messages)/float64(b.N), "broker-msgs/call")
		})
	}
}

func BenchmarkRabbitBare(b *testing.B) {
	for _, conc := range []int{1, 64} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			call := bareLoop(b)
			measure(b, conc, call)
		})
	}
}

// startClusterQuiet is startCluster without test logging, for benchmarks.
func startClusterQuiet(b *testing.B, probeID string) *cluster {
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 10 * time.Second}, Rabbitmq: &core.RabbitmqConfig{URI: broker.URI}}
	cfg.Modules = []*core.ModuleSettings{
		{Type: "Idle", ID: "caller", Host: "127.0.0.1", ProcessID: "caller"},
		{Type: rpctest.Probe_Type, ID: probeID, Host: "127.0.0.1", ProcessID: probeID},
	}
	c := &cluster{apps: map[string]*core.App{}, trs: map[string]*rabbitmq.Transport{}, probes: map[string]*rpctest.Probe{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, pid := range []string{"caller", probeID} {
		app := core.NewApp(cfg, core.Options{ProcessID: pid, Logger: log})
		app.Register("Idle", func() core.Module { return &idle{} })
		app.Register(rpctest.Probe_Type, rpctest.New)
		tr := rabbitmq.New(broker.URI, log)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := tr.WaitReady(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		app.SetRemote(tr)
		if err := app.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { app.Stop("bench end") })
		c.apps[pid] = app
		c.trs[pid] = tr
	}
	return c
}

// traffic sums the cluster's transports' message counters.
func (c *cluster) traffic() rabbitmq.Traffic {
	var sum rabbitmq.Traffic
	for _, tr := range c.trs {
		t := tr.Traffic()
		sum.Messages += t.Messages
		sum.Carried += t.Carried
		sum.Batches += t.Batches
		sum.Batched += t.Batched
	}
	return sum
}

// bareLoop sets up a server and a client on two connections and returns a
// function making one call.
func bareLoop(b *testing.B) func() error {
	b.Helper()
	dial := func() *amqp.Connection {
		c, err := amqp.Dial(broker.URI)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
	srvConn, cliConn := dial(), dial()
	sch, err := srvConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	_ = sch.Qos(512, 0, false)
	q, err := sch.QueueDeclare("bare.echo", false, true, true, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	dels, err := sch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := srvConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for d := range dels {
			_ = pub.Publish("", d.ReplyTo, false, false, amqp.Publishing{CorrelationId: d.CorrelationId, Body: d.Body})
			_ = d.Ack(false)
		}
	}()
	cch, err := cliConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	replies, err := cch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	go func() {
		for d := range replies {
			mu.Lock()
			w := waiting[d.CorrelationId]
			delete(waiting, d.CorrelationId)
			mu.Unlock()
			if w != nil {
				close(w)
			}
		}
	}()
	var seq atomic.Uint64
	body := []byte(`{"text":"0123456789012345678901234567890123456789012345678901234567890123"}`)
	return func() error {
		id := strconv.FormatUint(seq.Add(1), 36)
		w := make(chan struct{})
		mu.Lock()
		waiting[id] = w
		mu.Unlock()
		if err := cch.Publish("", q.Name, true, false, amqp.Publishing{CorrelationId: id, ReplyTo: "amq.rabbitmq.reply-to", Body: body}); err != nil {
			return err
		}
		select {
		case <-w:
			return nil
		case <-time.After(10 * time.Second):
			return context.DeadlineExceeded
		}
	}
}

// BenchmarkRabbitPaired makes framework and bare calls alternately, one
// caller, against the same broker: both see the same machine load, so the
// ratio of their p50s holds on a loaded machine where two runs' figures
// do not. One op is one framework call and one bare call.
func BenchmarkRabbitPaired(b *testing.B) {
	c := startClusterQuiet(b, "bpp")
	cl := c.client()
	bare := bareLoop(b)
	ctx := context.Background()
	req := &rpctest.EchoRequest{Text: "0123456789012345678901234567890123456789012345678901234567890123"}
	fw, bl := make([]time.Duration, b.N), make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := cl.Echo(ctx, nil, req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := bare(); err != nil {
			b.Fatal(err)
		}
		fw[i], bl[i] = t1.Sub(t0), time.Since(t1)
	}
	b.StopTimer()
	p50 := func(l []time.Duration) float64 {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return float64(l[(len(l)-1)/2].Microseconds())
	}
	f, r := p50(fw), p50(bl)
	b.ReportMetric(f, "fw-p50-us")
	b.ReportMetric(r, "bare-p50-us")
	b.ReportMetric(f/r, "p50-ratio")
}
