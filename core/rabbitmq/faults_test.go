package rabbitmq_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// The faults of issue 15, each against the real broker: what an operator,
// the broker or a dying process does, and what callers see.

// pollWithin is pollFor with a shorter deadline, returning how long it took.
func pollWithin(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > d {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}

func echoOK(cl *rpctest.ProbeClient) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "x"})
	return err == nil && r.Text == "x"
}

// Fault 1: an operator deletes the queues an instance consumes.
func TestQueueDeletedRecovers(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call before the fault")
	}
	for _, tc := range []struct {
		queue string
		cl    *rpctest.ProbeClient
	}{{"mqant.t." + rpctest.Probe_Type, cl}, {"mqant.i.p1", cl.To("p1")}} {
		if err := broker.DeleteQueue(tc.queue); err != nil {
			t.Fatal(err)
		}
		took := pollWithin(t, 10*time.Second, "calls work again after "+tc.queue+" was deleted", func() bool { return echoOK(tc.cl) })
		t.Logf("%s deleted: calls work again after %v", tc.queue, took)
	}
	logs := c.logs.String()
	if strings.Count(logs, "consumer cancelled by the broker") < 2 {
		t.Error("the consumer cancellations are not logged")
	}
	if strings.Contains(logs, "broker connection lost") {
		t.Error("a deleted queue cost the whole connection")
	}
}

// Fault 1: a channel error on the consuming channel reopens that channel
// only, not the connection.
func TestConsumerChannelErrorRecovers(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	cl := c.client().To("p1")
	if !echoOK(cl) {
		t.Fatal("no call before the fault")
	}
	rabbitmq.BreakConsumerChannel(c.trs["p1"], "p1")
	pollWithin(t, 10*time.Second, "the channel error logged", func() bool {
		return strings.Contains(c.logs.String(), "consumer channel closed by the broker")
	})
	took := pollWithin(t, 10*time.Second, "calls work again", func() bool { return echoOK(cl) })
	t.Logf("calls work again %v after the channel error was logged", took)
	if strings.Contains(c.logs.String(), "broker connection lost") {
		t.Error("a channel error cost the whole connection")
	}
}

// load calls Echo on the type from n goroutines until stop, counting
// successes and errors.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []error
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(cl *rpctest.ProbeClient, n int, call func(context.Context) error) *load {
	l := &load{stop: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := call(ctx)
				cancel()
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

// Fault 2: a second process with an instance id already served is refused
// at start and never takes calls from the shared type queue.
func TestDuplicateInstanceRefused(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	cl := c.client()
	l := startLoad(cl, 4, func(ctx context.Context) error {
		_, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "x"})
		return err
	})
	pollFor(t, "load running", func() bool { return l.ok.Load() > 50 })

	// The duplicate process also runs a healthy instance (p3), after p1.
	cfg := &core.Config{RPC: core.RPCConfig{Timeout: 5 * time.Second}, Rabbitmq: &core.RabbitmqConfig{URI: broker.URI}}
	for _, id := range []string{"p1", "p3"} {
		cfg.Modules = append(cfg.Modules, &core.ModuleSettings{Type: rpctest.Probe_Type, ID: id, Host: "127.0.0.1", ProcessID: "dup"})
	}
	logs := &syncbuf.Buffer{}
	app := core.NewApp(cfg, core.Options{ProcessID: "dup", Logger: slog.New(slog.NewTextHandler(logs, nil)), DrainTimeout: 2 * time.Second})
	var dups []*rpctest.Probe
	app.Register(rpctest.Probe_Type, func() core.Module { p := &rpctest.Probe{}; dups = append(dups, p); return p })
	tr := rabbitmq.New(broker.URI, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	app.SetRemote(tr)
	err := app.Start()
	if err == nil {
		app.Stop("test")
		t.Fatal("a second process with instance id p1 started")
	}
	t.Logf("start refused: %v", err)
	if !strings.Contains(err.Error(), "p1") || !strings.Contains(err.Error(), "another") {
		t.Errorf("the error does not say which id is taken and why: %v", err)
	}
	// Keep the load on a while after, then count.
	n := l.ok.Load()
	pollFor(t, "load still running", func() bool { return l.ok.Load() > n+50 })
	l.end()
	for _, p := range dups {
		if got := p.Served.Load(); got != 0 {
			t.Errorf("the refused process served %d calls", got)
		}
	}
	if f := l.failed.Load(); f != 0 {
		t.Errorf("%d of %d calls failed while the duplicate tried to start: %v", f, f+l.ok.Load(), l.errs)
	}
	if !echoOK(cl.To("p1")) {
		t.Error("p1 no longer serves")
	}
}

// Fault 3: calls held by (or queued for) an instance whose connection dies
// fail at once, not at their timeout.
func TestTargetGoneCallsFailFast(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	cl := c.client()
	p1 := c.probes["p1"]
	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, 20)
	for i := range 20 {
		go func() {
			// Short enough that p1's handlers are done when the test ends.
			ctx, cancel := context.WithTimeout(context.Background(), 2200*time.Millisecond)
			defer cancel()
			var err error
			if i%2 == 0 {
				_, err = cl.Slow(ctx, 1500) // running
			} else {
				_, err = cl.SlowSync(ctx, 1500) // one running, the rest queued behind it
			}
			results <- result{err, time.Now()}
		}()
	}
	pollFor(t, "the calls running or queued", func() bool { return p1.SlowRan.Load() == 11 })
	died := time.Now()
	_ = c.trs["p1"].Close() // its connection dies, and its queues with it
	var worst time.Duration
	for range 20 {
		r := <-results
		if !errors.Is(r.err, core.ErrTransport) {
			t.Errorf("call ended with %v, want a transport error", r.err)
		}
		worst = max(worst, r.at.Sub(died))
	}
	t.Logf("20 calls failed, the last %v after the target's connection died", worst)
	if worst > time.Second {
		t.Errorf("the last caller waited %v", worst)
	}
}

// Fault 4: while the broker blocks publishing, calls fail at once and are
// never published to run later, past their callers' deadlines.
func TestMemoryAlarmFailsFast(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	cl := c.client()
	p1 := c.probes["p1"]
	if !echoOK(cl) {
		t.Fatal("no call before the fault")
	}
	t.Cleanup(func() { _ = broker.SetMemoryAlarm(false) })
	if err := broker.SetMemoryAlarm(true); err != nil {
		t.Fatal(err)
	}
	// The broker blocks a connection when it next publishes: the call that
	// does so gets in, then connection.blocked arrives.
	var before int
	pollWithin(t, 10*time.Second, "a call refused as blocked", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "alarm"})
		before++
		return err != nil && strings.Contains(err.Error(), "blocks publishing")
	})
	t.Logf("%d calls published before the caller saw connection.blocked", before-1)
	// What got in ran while its caller waited; what comes after is counted.
	served := p1.Served.Load()
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t0 := time.Now()
		_, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "blocked"})
		cancel()
		if !errors.Is(err, core.ErrTransport) || time.Since(t0) > 100*time.Millisecond {
			t.Errorf("call while blocked: %v after %v, want a transport error at once", err, time.Since(t0))
		}
	}
	if err := broker.SetMemoryAlarm(false); err != nil {
		t.Fatal(err)
	}
	var after int64
	took := pollWithin(t, 10*time.Second, "calls work after the alarm", func() bool {
		if echoOK(cl) {
			after++
			return true
		}
		return false
	})
	t.Logf("calls work %v after the alarm cleared", took)
	// Known window: the publish that makes the broker block the connection
	// may sit unread until the alarm clears (before-1 calls, here 1), and
	// then runs late. Nothing published after connection.blocked may.
	if got := p1.Served.Load() - served; got > after+int64(before-1) {
		t.Errorf("the server ran %d calls, %d of them sent while blocked, after their callers gave up", got, got-after)
	}
	if !strings.Contains(c.logs.String(), "broker blocked publishing") || !strings.Contains(c.logs.String(), "broker unblocked") {
		t.Error("blocked/unblocked not logged")
	}
}

// Fault 5: a graceful stop of one of two instances under load loses no call.
func TestGracefulStopUnderLoad(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1", "p2")
	cl := c.client()
	slow := startLoad(cl, 16, func(ctx context.Context) error { _, err := cl.Slow(ctx, 40); return err })
	sync := startLoad(cl, 16, func(ctx context.Context) error { _, err := cl.SlowSync(ctx, 5); return err })
	pollFor(t, "both instances busy", func() bool { return c.probes["p2"].SlowRan.Load() > 100 && c.probes["p1"].SlowRan.Load() > 100 })
	t0 := time.Now()
	c.apps["p2"].Stop("graceful stop under load")
	t.Logf("p2 stopped in %v", time.Since(t0))
	n := c.probes["p1"].SlowRan.Load()
	pollFor(t, "p1 takes the load", func() bool { return c.probes["p1"].SlowRan.Load() > n+100 })
	slow.end()
	sync.end()
	total := slow.ok.Load() + sync.ok.Load()
	failed := slow.failed.Load() + sync.failed.Load()
	t.Logf("%d calls ok, %d failed", total, failed)
	if failed != 0 {
		t.Errorf("%d calls failed across a graceful stop: %v %v", failed, slow.errs, sync.errs)
	}
}

// Fault 7: one handler that never returns leaves the acknowledger's state
// bounded, and the other calls keep flowing.
func TestAckerBoundedWhenHandlerHangs(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 30*time.Second, "p1")
	cl := c.client().To("p1")
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = cl.Slow(ctx, 8000)
	}()
	pollFor(t, "the hanging call running", func() bool { return c.probes["p1"].SlowRan.Load() == 1 })
	l := startLoad(cl, 8, func(ctx context.Context) error {
		_, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: "x"})
		return err
	})
	pollFor(t, "2000 calls behind the hanging one", func() bool { return l.ok.Load() >= 2000 })
	l.end()
	var size int
	pollWithin(t, 5*time.Second, "acknowledger state back to the hanging call", func() bool {
		size = rabbitmq.AckerSize(c.trs["p1"], "p1")
		return size <= 2
	})
	select {
	case <-slowDone:
		t.Skip("the machine was too slow: the hanging call ended before the measure")
	default:
	}
	t.Logf("%d calls done behind a hanging one; acknowledger holds %d entries", l.ok.Load(), size)
	<-slowDone
}

// Fault 8: an endpoint that starts listening while the transport
// reconnects is consumed on that connection, not the next one.
func TestListenDuringReconnect(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	tr := rabbitmq.New(broker.URI, slog.New(slog.NewTextHandler(c.logs, nil)))
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	listened := make(chan error, 1)
	var closer interface{ Close() error }
	rabbitmq.SetAfterConnect(func() {
		once.Do(func() {
			var err error
			closer, err = tr.Listen("Late", "late1", pong{})
			listened <- err
		})
	})
	t.Cleanup(func() { rabbitmq.SetAfterConnect(nil) })
	// Every transport of the test process reconnects; only tr's counts.
	if n, err := broker.CloseConnections(tr.Name(), "test: reconnect"); err != nil || n != 1 {
		t.Fatalf("closing %s: %d, %v", tr.Name(), n, err)
	}
	if err := <-listened; err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	took := pollWithin(t, 10*time.Second, "the endpoint added mid-reconnect answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rep, err := c.trs["caller"].Invoke(ctx, core.Target{Type: "Late"}, &core.Request{Fn: "Ping", Raw: []byte(`{}`)})
		return err == nil && string(rep.Raw) == `"pong"`
	})
	t.Logf("endpoint consumed %v after the reconnect", took)
}

type pong struct{}

func (pong) Serve(_ context.Context, _ *core.Request, r core.Responder) {
	r.Respond(core.Reply{Raw: []byte(`"pong"`)})
}

// Fault 8: every connection names its host and process, so an operator can
// tell processes apart.
func TestConnectionNames(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	names, err := broker.Connections()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := map[string]bool{c.trs["caller"].Name(): false, c.trs["p1"].Name(): false}
	for _, n := range names {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("connection %q not on the broker (it has %q)", n, names)
		}
		if !strings.Contains(n, host) || !strings.Contains(n, "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("connection name %q lacks host %s or pid %d", n, host, os.Getpid())
		}
	}
}

// Issue 10: a URI that does not parse is never logged, or returned, with
// its password.
func TestURIPasswordNeverShown(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncbuf.Buffer{}
	for _, uri := range []string{
		"amqp://guest:s3cr3t-pw@127.0.0.1:notaport/",
		"amqp://guest:s3cr3t-pw@127.0.0.1:1/%zz",
		"amqp://guest:s3cr3t-pw@[::1/",
		`amqp://guest:s3cr3t"pw@127.0.0.1:1/%zz`,
		`amqp://guest:s3cr3t\pw@[::1/`,
		"amqp://guest:s3cr3t\x01pw@127.0.0.1:notaport/",
	} {
		tr := rabbitmq.New(uri, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := tr.WaitReady(ctx)
		cancel()
		_ = tr.Close()
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: WaitReady error %v", uri, err)
		}
	}
	if strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("the password is in the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "guest:***@") {
		t.Errorf("the log does not name the broker at all:\n%s", logs.String())
	}
}
