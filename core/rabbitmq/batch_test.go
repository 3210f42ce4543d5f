package rabbitmq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// Adaptive batching against the real broker: what queues behind a message
// in flight to the same queue travels in one AMQP message.

// echoConcurrently makes callers x each calls Echo calls at once, each with
// its own text, and returns the errors; every reply must carry its own
// call's text (a batch's replies go to their own callers).
func echoConcurrently(t *testing.T, cl *rpctest.ProbeClient, callers, each int, timeout time.Duration) []error {
	t.Helper()
	errs := make([]error, callers*each)
	var wg sync.WaitGroup
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := g*each + i
				text := "call-" + strconv.Itoa(n)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				r, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: text})
				cancel()
				if err == nil && r.Text != text {
					err = fmt.Errorf("call %s got the reply of %s", text, r.Text)
				}
				errs[n] = err
			}
		}()
	}
	wg.Wait()
	return errs
}

// settled waits until p1 has counted a reply for every call the caller
// counted: a reply is counted once published, maybe after its caller read
// it.
func settled(t *testing.T, c *cluster) {
	t.Helper()
	pollFor(t, "reply counters settle", func() bool {
		return c.trs["p1"].Traffic().Carried == c.trs["caller"].Traffic().Carried
	})
}

// TestBatchingUnderConcurrency: concurrent calls share broker messages, and
// every call is answered, with its own reply, and run exactly once.
func TestBatchingUnderConcurrency(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call before the test")
	}
	p1 := c.probes["p1"]
	served0 := p1.Served.Load()
	settled(t, c)
	caller0, server0 := c.trs["caller"].Traffic(), c.trs["p1"].Traffic()
	const callers, each = 64, 20
	for i, err := range echoConcurrently(t, cl, callers, each, 10*time.Second) {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	const n = callers * each
	settled(t, c)
	if got := p1.Served.Load() - served0; got != n {
		t.Errorf("handler ran %d times for %d calls, want exactly once each", got, n)
	}
	caller, server := c.trs["caller"].Traffic(), c.trs["p1"].Traffic()
	calls, replies := caller.Messages-caller0.Messages, server.Messages-server0.Messages
	if carried := caller.Carried - caller0.Carried; carried != n {
		t.Errorf("the caller's messages carried %d calls, want %d", carried, n)
	}
	if carried := server.Carried - server0.Carried; carried != n {
		t.Errorf("the server's messages carried %d replies, want %d", carried, n)
	}
	t.Logf("%d calls: %d call messages, %d reply messages (%.3f broker messages per call); batched: %d calls, %d replies; without a confirm: %d call messages, %d reply messages",
		n, calls, replies, float64(calls+replies)/n, caller.Batched-caller0.Batched, server.Batched-server0.Batched,
		caller.Unconfirmed-caller0.Unconfirmed, server.Unconfirmed-server0.Unconfirmed)
	if calls >= n || replies >= n {
		t.Errorf("no batching: %d call messages and %d reply messages for %d calls", calls, replies, n)
	}
	for _, name := range []string{"mqant_rpc_broker_messages_total", "mqant_rpc_carried_total", "mqant_rpc_batched_total", "mqant_rpc_unconfirmed_messages_total"} {
		if got := brokerMetric(t, c.apps["caller"], name); got <= 0 {
			t.Errorf("%s = %v on the caller, want > 0", name, got)
		}
	}
}

// TestLoneCallsGoOutAlone: calls one after the other travel one message
// each, call and reply, never waiting for company: the first message to
// an idle queue is published on the caller's goroutine, with no timer, and
// without a confirm (nothing was ever in flight, so no confirm time was
// measured to wait out).
func TestLoneCallsGoOutAlone(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call before the test")
	}
	settled(t, c)
	caller0, server0 := c.trs["caller"].Traffic(), c.trs["p1"].Traffic()
	const n = 50
	var slowest time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if !echoOK(cl) {
			t.Fatalf("call %d failed", i)
		}
		slowest = max(slowest, time.Since(t0))
	}
	settled(t, c)
	caller, server := c.trs["caller"].Traffic(), c.trs["p1"].Traffic()
	if got := caller.Messages - caller0.Messages; got != n {
		t.Errorf("%d sequential calls took %d call messages, want one each", n, got)
	}
	if got := server.Messages - server0.Messages; got != n {
		t.Errorf("%d sequential calls took %d reply messages, want one each", n, got)
	}
	if b := caller.Batched - caller0.Batched + server.Batched - server0.Batched; b != 0 {
		t.Errorf("%d calls or replies batched with nothing concurrent", b)
	}
	// Not all: on a loaded machine the next call's handler may run before
	// the goroutine that sent the last reply has left the outbox; that
	// reply queues and goes with a confirm, and then the next ones wait
	// out the confirm's time (which load stretches) before going plain
	// again (TestOutboxPlainWhenQuiet holds the rule itself). The first
	// call and reply, with no confirm time measured yet, always go plain.
	plainCalls, plainReplies := caller.Unconfirmed-caller0.Unconfirmed, server.Unconfirmed-server0.Unconfirmed
	if plainCalls == 0 || plainReplies == 0 {
		t.Errorf("%d of %d lone calls and %d replies went without a confirm, want the first of each at least", plainCalls, n, plainReplies)
	}
	t.Logf("%d sequential calls, the slowest %v; without a confirm: %d calls, %d replies", n, slowest, plainCalls, plainReplies)
}

// TestBatchToUnservedTypeFails: batches never mix queues, so a batch
// bound for a type nobody serves comes back whole (mandatory publish) and
// fails every call in it at once with ErrNotFound, while the calls to a
// served type, sent at the same time, all succeed.
func TestBatchToUnservedTypeFails(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second, "p1")
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call before the test")
	}
	tr := c.trs["caller"]
	caller0 := tr.Traffic()
	const n = 200
	var wg sync.WaitGroup
	unserved := make([]error, n)
	took := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			_, unserved[i] = tr.Invoke(ctx, core.Target{Type: "Nobody"}, &core.Request{Fn: "X", Raw: []byte("null")})
			took[i] = time.Since(t0)
		}()
	}
	served := echoConcurrently(t, cl, 20, 10, 10*time.Second)
	wg.Wait()
	for i, err := range unserved {
		if !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("call %d to an unserved type: %v, want ErrNotFound", i, err)
		}
		if took[i] > 5*time.Second {
			t.Errorf("call %d to an unserved type failed after %v, not at once", i, took[i])
		}
	}
	for i, err := range served {
		if err != nil {
			t.Fatalf("call %d to the served type: %v", i, err)
		}
	}
	caller := tr.Traffic()
	t.Logf("%d unserved and %d served calls in %d messages (%d calls batched)", n, len(served),
		caller.Messages-caller0.Messages, caller.Batched-caller0.Batched)
	if caller.Batched == caller0.Batched {
		t.Error("nothing was batched: the test did not test a returned batch")
	}
}

// rawQueue declares an auto-delete queue on a connection of its own and
// consumes it, with no framework: what the broker delivers to it.
func rawQueue(t *testing.T, name string) (amqp.Queue, <-chan amqp.Delivery) {
	t.Helper()
	conn, err := amqp.Dial(broker.URI)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare(name, false, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	dels, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q, dels
}

// TestOrderPerSenderAndQueue: no-reply calls one process sends to one
// queue arrive in the order it sent them, across batches.
func TestOrderPerSenderAndQueue(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second)
	tr := c.trs["caller"]
	q, dels := rawQueue(t, "batch.order")
	const n = 2000
	args := make([]string, n)
	for i := range args {
		args[i] = strconv.Itoa(i)
	}
	before := tr.Traffic()
	for i, err := range rabbitmq.SendNoReplyQueued(tr, q.Name, "Note", args)() {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	var got []string
	messages := 0
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case d := <-dels:
			messages++
			a, err := rabbitmq.CallArgs(d.ContentType, d.CorrelationId, d.Body)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, a...)
		case <-deadline:
			t.Fatalf("%d of %d calls arrived", len(got), n)
		}
	}
	for i := range got {
		if got[i] != args[i] {
			t.Fatalf("call %d arrived as the %dth: the order changed", i, i)
		}
	}
	// A message is counted once its publish returned: the consumer may
	// have it a moment before.
	sent := func() int { return int(tr.Traffic().Messages - before.Messages) }
	for deadline := time.Now().Add(5 * time.Second); sent() < messages && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if sent() != messages {
		t.Errorf("the transport counted %d messages, %d arrived", sent(), messages)
	}
	t.Logf("%d calls in %d messages", n, messages)
	if messages >= n {
		t.Errorf("%d calls queued at once went out in %d messages: no batching", n, messages)
	}
}

// TestBatchesAcrossBrokerRestart: calls in flight, batched, while the
// broker stops and starts again: every call ends, with its own reply or
// an error, none later than its deadline; none runs twice; calls work
// again afterwards.
func TestBatchesAcrossBrokerRestart(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 5*time.Second, "p1")
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call before the test")
	}
	p1 := c.probes["p1"]
	served0 := p1.Served.Load()
	const callers = 32
	timeout := 3 * time.Second
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok, failed int
	var problems []string
	var wg sync.WaitGroup
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				t0 := time.Now()
				r, err := cl.Echo(ctx, nil, &rpctest.EchoRequest{Text: text})
				took := time.Since(t0)
				cancel()
				mu.Lock()
				switch {
				case took > timeout+time.Second:
					problems = append(problems, fmt.Sprintf("%s ended after %v, past its deadline", text, took))
				case err == nil && r.Text != text:
					problems = append(problems, fmt.Sprintf("%s got the reply of %s", text, r.Text))
				case err == nil:
					ok++
				case errors.Is(err, core.ErrTransport) || errors.Is(err, core.ErrTimeout) || errors.Is(err, core.ErrNotFound):
					failed++
				default:
					problems = append(problems, fmt.Sprintf("%s: unexpected error %v", text, err))
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // pace retries while the broker is down
				}
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return ok
	}
	pollFor(t, "calls under way", func() bool { return count() > 200 })
	if err := broker.StopBroker(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "the caller notices", func() bool { return !c.trs["caller"].Connected() })
	if err := broker.StartAgain(); err != nil {
		t.Fatal(err)
	}
	after := count()
	pollFor(t, "calls succeed again after the restart", func() bool { return count() > after+200 })
	close(stop)
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	// A call that failed may have run (its reply was lost with the
	// broker), one that succeeded ran once: never more runs than calls.
	runs := p1.Served.Load() - served0
	t.Logf("%d calls answered, %d failed with an error, %d handler runs", ok, failed, runs)
	if runs < int64(ok) || runs > int64(ok+failed) {
		t.Errorf("%d handler runs for %d answered and %d failed calls", runs, ok, failed)
	}
	if failed == 0 {
		t.Error("no call failed: the restart happened between calls, the test tested nothing")
	}
}

// TestReplyAndAckInOneWrite: a call served while its consumer is
// otherwise idle sends its reply and its delivery's acknowledgement to
// the broker in one write (wire.go): a system call and a broker read
// less per call at low load than the two writes they took before.
func TestReplyAndAckInOneWrite(t *testing.T) {
	c := startCluster(t, 10*time.Second, "w1")
	cl := c.client()
	ctx := context.Background()
	req := &rpctest.EchoRequest{Text: "one write"}
	if _, err := cl.Echo(ctx, nil, req); err != nil {
		t.Fatal(err)
	}
	const calls = 40
	before := rabbitmq.WireWrites(c.trs["w1"])
	for range calls {
		if _, err := cl.Echo(ctx, nil, req); err != nil {
			t.Fatal(err)
		}
	}
	// One write per call, and a few for heartbeats; two per call when
	// the acknowledgement goes on its own.
	if w := rabbitmq.WireWrites(c.trs["w1"]) - before; w > calls*5/4 {
		t.Errorf("the serving process made %d writes for %d calls, want about one per call", w, calls)
	}
}

// TestAbandonedNoReplyNotSent: a no-reply call whose sender gave up while
// it queued (its deadline, or no confirm) is not sent; the calls around it
// are, in order.
func TestAbandonedNoReplyNotSent(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	c := startCluster(t, 10*time.Second)
	tr := c.trs["caller"]
	q, dels := rawQueue(t, "batch.abandoned")
	args := []string{"0", "1", "2", "3", "4"}
	errs := rabbitmq.SendNoReplyAbandoning(tr, q.Name, "Note", args, map[int]bool{1: true, 3: true})()
	for i, err := range errs {
		if abandoned := i == 1 || i == 3; abandoned != (err != nil) {
			t.Errorf("call %d: %v (abandoned: %v)", i, err, abandoned)
		}
	}
	// No-reply calls keep their order: once the last is here, an abandoned
	// one that was sent would be too.
	var got []string
	deadline := time.After(30 * time.Second)
	for len(got) == 0 || got[len(got)-1] != "4" {
		select {
		case d := <-dels:
			a, err := rabbitmq.CallArgs(d.ContentType, d.CorrelationId, d.Body)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, a...)
		case <-deadline:
			t.Fatalf("the last call did not arrive; got %v", got)
		}
	}
	if strings.Join(got, ",") != "0,2,4" {
		t.Errorf("the broker got calls %v, want 0,2,4: the abandoned ones are not sent", got)
	}
}
