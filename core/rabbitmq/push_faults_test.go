package rabbitmq_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// Fault 6 of issue 15: pushes (no-reply calls addressed to a gate
// instance) while the gate's broker connection drops.

// pushSink is a gate-like endpoint: it records the numbered pushes it gets.
type pushSink struct {
	mu   sync.Mutex
	got  map[int]int // push number -> times handled
	dups int
}

func newPushSink() *pushSink { return &pushSink{got: map[int]int{}} }

func (p *pushSink) Serve(_ context.Context, req *core.Request, r core.Responder) {
	n, _ := strconv.Atoi(string(req.Raw))
	p.mu.Lock()
	p.got[n]++
	if p.got[n] > 1 {
		p.dups++
	}
	p.mu.Unlock()
	r.Respond(core.Reply{})
}

func (p *pushSink) has(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got[n] > 0
}

// pusher sends numbered pushes to target at a steady pace until stopped,
// remembering which the transport accepted and which it failed.
type pusher struct {
	next   atomic.Int64
	mu     sync.Mutex
	ok     []int
	failed map[int]error
	stop   chan struct{}
	done   chan struct{}
}

func startPusher(tr *rabbitmq.Transport, to core.Target, every time.Duration) *pusher {
	p := &pusher{failed: map[int]error{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			n := int(p.next.Add(1))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := tr.Invoke(ctx, to, &core.Request{Fn: "Push", NoReply: true, Raw: []byte(strconv.Itoa(n))})
			cancel()
			p.mu.Lock()
			if err != nil {
				p.failed[n] = err
			} else {
				p.ok = append(p.ok, n)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *pusher) end() { close(p.stop); <-p.done }

// lost returns the pushes the transport accepted that sink never handled.
func (p *pusher) lost(sink *pushSink) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lost []int
	for _, n := range p.ok {
		if !sink.has(n) {
			lost = append(lost, n)
		}
	}
	return lost
}

// logLines counts the log lines that contain every one of parts.
func logLines(logs *syncBuf, parts ...string) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// lossLines returns the log lines of pushes lost from queue q and the sum
// of their counts.
func lossLines(logs *syncBuf, q string) ([]string, int64) {
	var lines []string
	var sum int64
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "pushes lost") || !strings.Contains(line, q) {
			continue
		}
		lines = append(lines, line)
		for _, f := range strings.Fields(line) {
			if n, ok := strings.CutPrefix(f, "count="); ok {
				v, _ := strconv.ParseInt(n, 10, 64)
				sum += v
			}
		}
	}
	return lines, sum
}

// startGate runs a gate-like endpoint on a transport of its own.
func startGate(t *testing.T, logs *syncBuf, id string, expiry time.Duration) (*rabbitmq.Transport, *pushSink) {
	t.Helper()
	tr := rabbitmq.New(broker.URI, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("process", id))
	if expiry > 0 {
		tr.SetInstanceQueueExpiry(expiry)
	}
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	sink := newPushSink()
	cl, err := tr.Listen("Gate", id, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return tr, sink
}

// Fault 6: the gate's connection is closed by the broker while pushes flow
// to it; the gate process lives on and reconnects. Every push the sender's
// transport accepted reaches the gate, once.
func TestPushesSurviveGateReconnect(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second)
	gtr, sink := startGate(t, c.logs, "g1", 0)
	to := core.Target{Type: "Gate", ID: "g1"}
	p := startPusher(c.trs["caller"], to, 2*time.Millisecond)
	pollFor(t, "pushes flowing", func() bool { return sink.has(100) })
	dropped := int(p.next.Load())
	if n, err := broker.CloseConnections(gtr.Name(), "test: gate connection dropped"); err != nil || n != 1 {
		t.Fatalf("closing %s: %d, %v", gtr.Name(), n, err)
	}
	pollFor(t, "the gate reconnected", func() bool { return logLines(c.logs, `msg="broker connected"`, "process=g1") >= 2 })
	reconnected := int(p.next.Load())
	pollFor(t, "pushes flowing after the reconnect", func() bool { return sink.has(reconnected + 100) })
	p.end()
	// What was accepted arrives; give the last ones a bounded time.
	deadline := time.Now().Add(5 * time.Second)
	for len(p.lost(sink)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	lost := p.lost(sink)
	p.mu.Lock()
	sent, failed := int(p.next.Load()), len(p.failed)
	var someErr error
	for _, err := range p.failed {
		someErr = err
		break
	}
	p.mu.Unlock()
	sink.mu.Lock()
	dups := sink.dups
	sink.mu.Unlock()
	t.Logf("%d pushes sent (%d before the drop, %d during the reconnect): %d lost unreported, %d failed to the sender (%v), %d handled twice",
		sent, dropped, reconnected-dropped, len(lost), failed, someErr, dups)
	if len(lost) > 0 {
		t.Errorf("%d pushes accepted by the sender's transport never reached the gate: %v", len(lost), lost[:min(len(lost), 20)])
	}
	if dups > 0 {
		t.Errorf("%d pushes handled twice", dups)
	}
	for n, err := range p.failed {
		if !errors.Is(err, core.ErrTransport) && !errors.Is(err, core.ErrNotFound) {
			t.Errorf("push %d failed with %v", n, err)
		}
	}
}

// Fault 6, the gate process dies: calls with a reply to it fail within a
// probe period, pushes to it are confirmed into its queue (it could be
// reconnecting) and, when its queue expires with them, are counted and
// logged by the sender; pushes after that fail at once.
func TestPushesToDeadGateReported(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	const expiry = 1500 * time.Millisecond
	c := startCluster(t, 5*time.Second)
	sender := c.trs["caller"]
	sender.SetInstanceQueueExpiry(expiry)
	t.Cleanup(func() { sender.SetInstanceQueueExpiry(rabbitmq.DefaultInstanceQueueExpiry) })
	gtr, sink := startGate(t, c.logs, "gdead", expiry)
	to := core.Target{Type: "Gate", ID: "gdead"}
	push := func(n int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := sender.Invoke(ctx, to, &core.Request{Fn: "Push", NoReply: true, Raw: []byte(strconv.Itoa(n))})
		return err
	}
	if err := push(0); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "push 0 handled", func() bool { return sink.has(0) })
	_ = gtr.Close() // the process dies: no graceful stop, its queue stays

	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := sender.Invoke(ctx, to, &core.Request{Fn: "Push", Raw: []byte("-1")})
	cancel()
	took := time.Since(t0)
	if !errors.Is(err, core.ErrTransport) || took > 1500*time.Millisecond {
		t.Errorf("a call with a reply to the dead gate: %v after %v, want a transport error within a probe period", err, took)
	}
	t.Logf("a call with a reply to the dead gate failed after %v: %v", took, err)

	// Pushes one after another until well past the first check of the
	// queue (one second after push 0), so that checks meet pushes in flight.
	pushes := 0
	for time.Since(t0) < 1500*time.Millisecond || pushes < 20 {
		pushes++
		if err := push(pushes); err != nil {
			t.Fatalf("push %d while its queue waits: %v", pushes, err)
		}
	}
	pollWithin(t, 10*time.Second, "the sender logs pushes waiting without consumer", func() bool {
		return logLines(c.logs, "pushes wait in an instance queue without consumer", "mqant.i.gdead") > 0
	})
	pollWithin(t, 3*expiry+5*time.Second, "the sender counts the pushes lost with the expired queue", func() bool {
		return sender.Stats().NoReplyExpired >= int64(pushes)
	})
	// The call with a reply may leave the queue by its own expiration at
	// another check than the pushes, and a second loss inside the loss
	// log's window is said when the window ends: the lines' counts add up
	// to the total then.
	var lines []string
	var said int64
	pollWithin(t, 10*time.Second, "the log says every loss", func() bool {
		lines, said = lossLines(c.logs, "mqant.i.gdead")
		return said == sender.Stats().NoReplyExpired
	})
	st := sender.Stats()
	// The count is of the messages in the queue: the pushes, and the call
	// with a reply if it has not expired yet.
	if st.NoReplyExpired < int64(pushes) || st.NoReplyExpired > int64(pushes)+1 {
		t.Errorf("counted %d pushes lost, sent %d into the queue", st.NoReplyExpired, pushes)
	}
	if said != st.NoReplyExpired {
		t.Errorf("the loss is not logged with its count: %d counted, the log says %d:\n%s", st.NoReplyExpired, said, strings.Join(lines, "\n"))
	}
	// Now its queue is gone: pushes fail at once, and are logged.
	if err := push(pushes + 1); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("push after the queue expired: %v, want not found", err)
	}
	if sender.Stats().NoReplyReturned != 1 || logLines(c.logs, "no-reply call not delivered", "mqant.i.gdead") != 1 {
		t.Errorf("the returned push is not counted or logged: %+v", sender.Stats())
	}
	t.Logf("dead gate: %d pushes confirmed into its queue, %d counted lost when it expired, then returned: %+v", pushes, st.NoReplyExpired, sender.Stats())
}

// Fault 6, the gate process dies while pushes to it go on: the senders'
// checks renew its queue's lease, so the queue stays and its message TTL
// drops the pushes. Every push confirmed into it is counted lost, and once
// it has been without consumer for the expiry, new pushes fail at once.
func TestContinuousPushesToDeadGateCounted(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	const expiry = 1500 * time.Millisecond
	c := startCluster(t, 5*time.Second)
	sender := c.trs["caller"]
	sender.SetInstanceQueueExpiry(expiry)
	t.Cleanup(func() { sender.SetInstanceQueueExpiry(rabbitmq.DefaultInstanceQueueExpiry) })
	gtr, sink := startGate(t, c.logs, "gcont", expiry)
	to := core.Target{Type: "Gate", ID: "gcont"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := sender.Invoke(ctx, to, &core.Request{Fn: "Push", NoReply: true, Raw: []byte("0")})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	pollFor(t, "push 0 handled", func() bool { return sink.has(0) })
	_ = gtr.Close() // the process dies: no graceful stop, its queue stays
	before := sender.Stats()

	p := startPusher(sender, to, 20*time.Millisecond)
	t0 := time.Now()
	pollWithin(t, 30*time.Second, "pushes for 5 expiries", func() bool { return time.Since(t0) > 5*expiry })
	p.end()
	p.mu.Lock()
	confirmed := len(p.ok)
	notFound := 0
	for n, err := range p.failed {
		if errors.Is(err, core.ErrNotFound) {
			notFound++
		} else {
			t.Errorf("push %d failed with %v", n, err)
		}
	}
	p.mu.Unlock()
	// The last ones are counted when the queue, no longer checked, expires.
	pollWithin(t, 3*expiry+5*time.Second, "every confirmed push counted lost", func() bool {
		return sender.Stats().NoReplyExpired-before.NoReplyExpired >= int64(confirmed)-2
	})
	st := sender.Stats()
	expired := st.NoReplyExpired - before.NoReplyExpired
	t.Logf("dead gate, a push every 20ms for %v: %d confirmed, %d counted expired, %d failed at once (not found): %+v",
		5*expiry, confirmed, expired, notFound, st)
	if d := expired - int64(confirmed); d < -2 || d > 2 {
		t.Errorf("%d pushes confirmed into the dead gate's queue, %d counted lost", confirmed, expired)
	}
	if notFound == 0 || st.NoReplyUnserved+st.NoReplyReturned-before.NoReplyUnserved-before.NoReplyReturned != int64(notFound) {
		t.Errorf("%d pushes failed at once, counted %d refused + %d returned", notFound, st.NoReplyUnserved-before.NoReplyUnserved, st.NoReplyReturned-before.NoReplyReturned)
	}
	if logLines(c.logs, "no-reply call not sent", "mqant.i.gcont") == 0 {
		t.Error("the refused pushes are not logged")
	}
}
