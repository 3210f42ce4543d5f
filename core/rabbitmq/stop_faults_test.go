package rabbitmq_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
)

// blockEP is an endpoint whose "Block" call holds its delivery loop until
// released; it records the other calls it runs and the time they had left.
type blockEP struct {
	mu      sync.Mutex
	runs    map[string]int
	left    map[string]time.Duration
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func newBlockEP() *blockEP {
	return &blockEP{runs: map[string]int{}, left: map[string]time.Duration{}, blocked: make(chan struct{}), release: make(chan struct{})}
}

func (b *blockEP) Serve(ctx context.Context, req *core.Request, r core.Responder) {
	if req.Fn == "Block" {
		b.once.Do(func() { close(b.blocked) })
		<-b.release
		r.Respond(core.Reply{})
		return
	}
	b.mu.Lock()
	b.runs[req.Fn]++
	if dl, ok := ctx.Deadline(); ok {
		b.left[req.Fn] = time.Until(dl)
	}
	b.mu.Unlock()
	r.Respond(core.Reply{})
}

func (b *blockEP) ran(fn string) (int, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[fn], b.left[fn]
}

// listenBlock serves instance id of typ on tr with a new blockEP.
func listenBlock(t *testing.T, tr *rabbitmq.Transport, typ, id string) (*blockEP, io.Closer) {
	t.Helper()
	ep := newBlockEP()
	cl, err := tr.Listen(typ, id, ep)
	if err != nil {
		t.Fatal(err)
	}
	return ep, cl
}

// waitBlocked waits until ep holds a Block call.
func waitBlocked(t *testing.T, ep *blockEP, who string) {
	t.Helper()
	select {
	case <-ep.blocked:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never got the blocking call", who)
	}
}

func newTransport(t *testing.T, logs *syncBuf, name string) *rabbitmq.Transport {
	t.Helper()
	tr := rabbitmq.New(broker.URI, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("process", name))
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

// asyncInvoker returns a function that calls fn of module type typ
// through caller with timeout, answering on the channel it returns.
func asyncInvoker(caller *rabbitmq.Transport, typ string) func(fn string, timeout time.Duration) chan error {
	return func(fn string, timeout time.Duration) chan error {
		errc := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := caller.Invoke(ctx, core.Target{Type: typ}, &core.Request{Fn: fn})
			errc <- err
		}()
		return errc
	}
}

// A graceful stop hands back the calls from the type queue that never
// started: not a redelivered one (its first instance died with it, it may
// have run: it is refused, not run again elsewhere), and each with what is
// left of its deadline after waiting at the stopping instance (none left:
// answered with a timeout, not run).
func TestGracefulStopHandsBackOnlyFreshCallsWithTheirTimeLeft(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	invoke := asyncInvoker(newTransport(t, logs, "caller"), "Blk")
	result := func(what string, errc chan error) error {
		select {
		case err := <-errc:
			return err
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no answer", what)
			return nil
		}
	}

	// A raw consumer stands for an instance that takes call X and dies.
	raw, err := amqp.Dial(broker.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rch, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	const q = "mqant.t.Blk"
	if err := rch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	dels, err := rch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	xErr := invoke("X", 10*time.Second)
	select {
	case <-dels:
	case <-time.After(10 * time.Second):
		t.Fatal("the raw consumer got no call")
	}

	b1 := newTransport(t, logs, "b1")
	ep1, cl1 := listenBlock(t, b1, "Blk", "b1")
	blockErr := invoke("Block", 20*time.Second)
	waitBlocked(t, ep1, "b1")
	blockedAt := time.Now()
	const yTimeout = 6 * time.Second
	yErr := invoke("Y", yTimeout)
	zErr := invoke("Z", 600*time.Millisecond)
	// The raw instance dies: X goes back, redelivered, to b1.
	_ = rch.Close()
	probe, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	pollFor(t, "X, Y and Z wait at b1", func() bool {
		dq, err := probe.QueueDeclarePassive(q, false, true, false, false, nil)
		return err == nil && dq.Messages == 0 && dq.Consumers == 1
	})

	b2 := newTransport(t, logs, "b2")
	ep2, cl2 := listenBlock(t, b2, "Blk", "b2")
	defer cl2.Close()

	stopping := rabbitmq.ConsumerStopping(b1, "b1")
	closed := make(chan struct{})
	go func() { _ = cl1.Close(); close(closed) }()
	pollFor(t, "b1 stopping", stopping)
	// Y and Z wait at b1 for over a second.
	pollFor(t, "a second at b1", func() bool { return time.Since(blockedAt) > 1200*time.Millisecond })
	held := time.Since(blockedAt)
	close(ep1.release)
	if err := result("Block", blockErr); err != nil {
		t.Errorf("the blocking call: %v", err)
	}

	err = result("X", xErr)
	xRuns, _ := ep2.ran("X")
	if xRuns != 0 || !errors.Is(err, core.ErrTransport) {
		t.Errorf("redelivered call X at a stopping instance: run %d times elsewhere, caller got %v; want refused", xRuns, err)
	}
	if err := result("Y", yErr); err != nil {
		t.Errorf("Y: %v", err)
	}
	yRuns, yLeft := ep2.ran("Y")
	if yRuns != 1 || yLeft > yTimeout-held+300*time.Millisecond {
		t.Errorf("Y handed back after waiting %v at b1: run %d times, with %v left of %v", held, yRuns, yLeft, yTimeout)
	}
	err = result("Z", zErr)
	if !errors.Is(err, core.ErrTimeout) {
		t.Errorf("Z: %v, want a timeout", err)
	}
	<-closed
	// Z's answer (a timeout) came from b1 at once; had it been handed back,
	// b2 would run it.
	pollFor(t, "b1's consumer gone", func() bool {
		dq, err := probe.QueueDeclarePassive(q, false, true, false, false, nil)
		return err == nil && dq.Consumers == 1 && dq.Messages == 0
	})
	if zRuns, _ := ep2.ran("Z"); zRuns != 0 {
		t.Errorf("Z ran %d times after its deadline", zRuns)
	}
	t.Logf("held %v at b1: X run %d times elsewhere, Y ran with %v of %v left", held, xRuns, yLeft, yTimeout)
}

// A graceful stop is bounded by the drain time even when a handler holds
// its delivery loop and never returns.
func TestGracefulStopBoundedByDrain(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	caller := newTransport(t, logs, "caller")
	b1 := newTransport(t, logs, "b1")
	b1.SetDrainTimeout(500 * time.Millisecond)
	ep := newBlockEP()
	defer close(ep.release)
	cl, err := b1.Listen("Blk2", "bd1", ep)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = caller.Invoke(ctx, core.Target{Type: "Blk2"}, &core.Request{Fn: "Block"})
	}()
	select {
	case <-ep.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("no blocking call")
	}
	t0 := time.Now()
	closed := make(chan struct{})
	go func() { _ = cl.Close(); close(closed) }()
	select {
	case <-closed:
		t.Logf("stop with a handler that never returns took %v (drain 500ms)", time.Since(t0))
	case <-time.After(3 * time.Second):
		t.Error("stop waits for a handler that never returns, beyond its drain time")
	}
}

// A call a stopping instance hands back to a queue that refuses it (a
// nack: here a reject-publish length limit) is answered at once with
// core.ErrTransport, not left to its caller's deadline: the stopping
// instance acknowledged its delivery when the hand-back was written.
func TestHandBackRefusedAnswered(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	logs := &syncBuf{}
	invoke := asyncInvoker(newTransport(t, logs, "caller"), "Hbk")
	b1 := newTransport(t, logs, "b1")
	ep1, cl1 := listenBlock(t, b1, "Hbk", "b1")
	blockErr := invoke("Block", 30*time.Second)
	waitBlocked(t, ep1, "b1")
	// b2 keeps the queue (auto-delete) when b1 stops.
	b2 := newTransport(t, logs, "b2")
	ep2, cl2 := listenBlock(t, b2, "Hbk", "b2")
	defer cl2.Close()
	// Y reaches b1 (its prefetch) or b2, in turn; until one waits at b1,
	// b2 runs them.
	const yTimeout = 20 * time.Second
	var yErr chan error
	raw, err := amqp.Dial(broker.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	probe, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	pollFor(t, "a call waiting at b1", func() bool {
		n, _ := ep2.ran("Y")
		yErr = invoke("Y", yTimeout)
		pollFor(t, "Y delivered", func() bool {
			dq, err := probe.QueueDeclarePassive("mqant.t.Hbk", false, true, false, false, nil)
			return err == nil && dq.Messages == 0
		})
		select {
		case <-yErr: // b2 ran it; again
			return false
		case <-time.After(300 * time.Millisecond):
			m, _ := ep2.ran("Y")
			return m == n
		}
	})

	ranBefore, _ := ep2.ran("Y")
	const policy = "refuse-hbk"
	if _, err := broker.Ctl("set_policy", policy, `^mqant\.t\.Hbk`, `{"max-length":0,"overflow":"reject-publish"}`, "--apply-to", "queues"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = broker.Ctl("clear_policy", policy) })
	// The policy is in force once a publish to the queue is refused (one
	// taken meanwhile is no call: b2 drops it as unreadable).
	conf, err := raw.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := conf.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := conf.NotifyPublish(make(chan amqp.Confirmation, 1))
	pollFor(t, "the policy in force", func() bool {
		if err := conf.Publish("", "mqant.t.Hbk", false, false, amqp.Publishing{Body: []byte("not a call")}); err != nil {
			t.Fatal(err)
		}
		return !(<-confirms).Ack
	})

	closed := make(chan struct{})
	go func() { _ = cl1.Close(); close(closed) }()
	pollFor(t, "b1 stopping", rabbitmq.ConsumerStopping(b1, "b1"))
	close(ep1.release)
	if err := <-blockErr; err != nil {
		t.Errorf("the blocking call: %v", err)
	}
	select {
	case err := <-yErr:
		if !errors.Is(err, core.ErrTransport) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("a handed-back call the broker refused: %v, want core.ErrTransport (refused)", err)
		}
	case <-time.After(yTimeout):
		t.Fatal("a handed-back call the broker refused got no answer before its deadline")
	}
	<-closed
	if n, _ := ep2.ran("Y"); n != ranBefore {
		t.Errorf("b2 ran the refused call %d times", n-ranBefore)
	}
	if !strings.Contains(logs.String(), "call not delivered: the broker refused it") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
}
