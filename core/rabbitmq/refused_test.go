package rabbitmq_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/rpctest"
)

// A broker that refuses messages (a queue at its length limit with
// overflow reject-publish nacks every publish to it) is told to the
// callers at once with core.ErrTransport, counted and logged: not left
// to their deadline. The first lone call goes without a confirm (nothing
// was in flight), so the broker drops it and it times out; after the
// first refusal every call goes with a confirm and fails at once.
func TestRefusedCallsFailAtOnce(t *testing.T) {
	c := startCluster(t, 30*time.Second, "rf1")
	cl := c.client()
	req := &rpctest.EchoRequest{Text: "refused"}
	if _, err := cl.Echo(context.Background(), nil, req); err != nil {
		t.Fatal(err)
	}
	const policy = "refuse-probe"
	if _, err := broker.Ctl("set_policy", policy, `^mqant\.t\.Probe$`, `{"max-length":0,"overflow":"reject-publish"}`, "--apply-to", "queues"); err != nil {
		t.Fatal(err)
	}
	cleared := false
	clear := func() {
		if !cleared {
			cleared = true
			_, _ = broker.Ctl("clear_policy", policy)
		}
	}
	t.Cleanup(clear)

	refused := func(err error) bool {
		return errors.Is(err, core.ErrTransport) && strings.Contains(err.Error(), "refused")
	}
	// Rounds of concurrent calls until the broker has refused one: the
	// policy takes a moment to reach the queue, and concurrent calls go
	// with a confirm.
	pollFor(t, "a call refused by the broker", func() bool {
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, errs[i] = cl.Echo(ctx, nil, req)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if refused(err) {
				return true
			}
		}
		return false
	})
	// Now a lone call goes with a confirm too, and is refused well before
	// its deadline (a timeout would be core.ErrTimeout).
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := cl.Echo(ctx, nil, req)
		cancel()
		if !refused(err) {
			t.Fatalf("lone call %d after a refusal: %v, want core.ErrTransport (refused)", i, err)
		}
	}
	// A no-reply call is refused the same way.
	if err := cl.NoteNR(context.Background(), "refused"); !errors.Is(err, core.ErrTransport) {
		t.Errorf("no-reply call to a refusing queue: %v, want core.ErrTransport", err)
	}
	tr := c.trs["caller"]
	if st := tr.Stats(); st.CallsNacked < 4 || st.NoReplyNacked != 1 {
		t.Errorf("stats: %d calls nacked, %d no-reply nacked; want >= 4 and 1", st.CallsNacked, st.NoReplyNacked)
	}
	if v := brokerMetric(t, c.apps["caller"], "mqant_broker_calls_nacked_total"); v < 4 {
		t.Errorf("mqant_broker_calls_nacked_total = %v, want >= 4", v)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "call not delivered: the broker refused it") {
		t.Errorf("no log line of the refused calls:\n%s", logs)
	}
	for _, n := range c.probes["rf1"].Notes() {
		if n == "refused" {
			t.Errorf("the probe ran a refused no-reply call")
		}
	}

	// Once the queue takes messages again, calls go through.
	clear()
	pollFor(t, "calls served again", func() bool {
		_, err := cl.Echo(context.Background(), nil, req)
		return err == nil
	})
}

// A broker that stops confirming (here: the network to it goes silent)
// does not grow the sender's memory without end: past maxQueued calls
// waiting for one queue, new calls fail at once with core.ErrTransport and
// the log says why; the calls that waited fail when the connection is
// found dead, and calls work again over a new one.
func TestStalledBrokerBoundsQueuedCalls(t *testing.T) {
	leakcheck.Check(t, "internal/testkit/rabbittest.")
	const bound = 8
	// Restored after the cluster stopped (cleanups run last first).
	oldBound, oldHB := rabbitmq.SetMaxQueued(bound), rabbitmq.SetHeartbeat(2*time.Second)
	t.Cleanup(func() { rabbitmq.SetMaxQueued(oldBound); rabbitmq.SetHeartbeat(oldHB) })
	px := startSilencer(t, broker.Port)
	c := startClusterVia(t, 30*time.Second, map[string]string{"caller": px.URI}, "st1")
	t.Cleanup(px.close)
	cl := c.client()
	if !echoOK(cl) {
		t.Fatal("no call through the proxy before the fault")
	}
	req := &rpctest.EchoRequest{Text: "stalled"}
	px.silence()
	// The first no-reply call goes out and never gets its confirm; bound
	// calls wait behind it, and the rest fail at once. Calls with a reply
	// do the same on their own channel, all sent with a confirm here (a
	// call that found nothing in flight for a confirm's time would go
	// without one, and how many do is up to the scheduler).
	rabbitmq.ConfirmEverything(c.trs["caller"])
	const n = 30
	nrErrs, callErrs := make(chan error, n), make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { nrErrs <- cl.NoteNR(context.Background(), "stalled") }()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := cl.Echo(ctx, nil, req)
			callErrs <- err
		}()
	}
	count := func(what string, errs chan error) (shed, lost int) {
		for i := 0; i < n; i++ {
			select {
			case err := <-errs:
				switch {
				case errors.Is(err, core.ErrTransport) && strings.Contains(err.Error(), "wait for the broker to confirm"):
					shed++
				case errors.Is(err, core.ErrTransport):
					lost++ // waited, and failed with the connection
				default:
					t.Errorf("%s to a stalled broker: %v, want core.ErrTransport", what, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%d of %d %ss still wait, 30 s after the broker stalled", n-i, n, what)
			}
		}
		return shed, lost
	}
	for what, errs := range map[string]chan error{"no-reply call": nrErrs, "call": callErrs} {
		if shed, lost := count(what, errs); shed != n-1-bound || lost != 1+bound {
			t.Errorf("%ss: %d failed at once and %d with the connection; want %d and %d", what, shed, lost, n-1-bound, 1+bound)
		}
	}
	if !strings.Contains(c.logs.String(), "too many calls wait for the broker to confirm") {
		t.Errorf("the log does not say why calls were failed at once:\n%s", c.logs.String())
	}
	pollWithin(t, 15*time.Second, "calls work again over a new connection", func() bool { return echoOK(cl) })
}
