package rabbitmq_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/leakcheck"
	"github.com/mqantgen/mqantgen/runtime"
	"github.com/mqantgen/mqantgen/runtime/rabbitmq"
)

// inbox collects the reports a subscription receives.
type inbox struct {
	mu   sync.Mutex
	seen []string
}

func (in *inbox) add(b []byte) {
	in.mu.Lock()
	in.seen = append(in.seen, string(b))
	in.mu.Unlock()
}

func (in *inbox) has(s string) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Contains(in.seen, s)
}

// TestReportsAcrossProcessesAndBrokerRestart: reports published by one
// transport reach every subscriber (its own included); while the broker
// is down publishing fails at once with a transport error; after it is
// back the subscription resumes on its own.
func TestReportsAcrossProcessesAndBrokerRestart(t *testing.T) {
	leakcheck.Check(t, "internal/rabbittest.")
	a, b := reportTransport(t), reportTransport(t)
	var inA, inB inbox
	subA, err := a.SubscribeReports(inA.add)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := b.SubscribeReports(inB.add)
	if err != nil {
		t.Fatal(err)
	}
	// A report published before a subscriber's queue is bound is not
	// kept for it: publish until both have one.
	publishUntil(t, b, "from b", func() bool { return inA.has("from b") && inB.has("from b") })

	if err := broker.StopBroker(); err != nil {
		t.Fatal(err)
	}
	pollFor(t, "publishing fails while the broker is down", func() bool {
		err := b.PublishReport(context.Background(), []byte("down"))
		return errors.Is(err, runtime.ErrTransport)
	})
	if err := broker.StartAgain(); err != nil {
		t.Fatal(err)
	}
	publishUntil(t, b, "after restart", func() bool { return inA.has("after restart") })

	if err := subA.Close(); err != nil {
		t.Fatal(err)
	}
	_ = subB.Close()
	_ = a.Close()
	if _, err := a.SubscribeReports(inA.add); !errors.Is(err, runtime.ErrTransport) {
		t.Errorf("subscribe after Close = %v, want a transport error", err)
	}
}

func reportTransport(t *testing.T) *rabbitmq.Transport {
	t.Helper()
	tr := rabbitmq.New(broker.URI, nil)
	t.Cleanup(func() { _ = tr.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return tr
}

// publishUntil publishes body every 50 ms until done: reports are best
// effort, a lost one is replaced by the next.
func publishUntil(t *testing.T, tr *rabbitmq.Transport, body string, done func() bool) {
	t.Helper()
	pollFor(t, "subscribers receive "+body, func() bool {
		if done() {
			return true
		}
		_ = tr.PublishReport(context.Background(), []byte(body))
		time.Sleep(30 * time.Millisecond) // pace the publishes, not a synchronisation
		return done()
	})
}
