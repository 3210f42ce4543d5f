package rabbitmq

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// brokerAcks checks acknowledgements as the broker does: the tag acked
// (alone, or as the top of a multiple-ack) must be delivered and not yet
// acknowledged, or the broker closes the channel.
type brokerAcks struct {
	mu      sync.Mutex
	unacked map[uint64]bool
	err     error
}

func (b *brokerAcks) ack(tag uint64, multiple bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.unacked[tag] {
		if b.err == nil {
			b.err = fmt.Errorf("PRECONDITION_FAILED - unknown delivery tag %d (multiple %v)", tag, multiple)
		}
		return b.err
	}
	delete(b.unacked, tag)
	if multiple {
		for t := range b.unacked {
			if t < tag {
				delete(b.unacked, t)
			}
		}
	}
	return nil
}

// newCheckedAcker returns an acker of a session without a connection whose
// acknowledgements brokerAcks checks; it stops when the test ends.
func newCheckedAcker(t *testing.T) (*acker, *brokerAcks) {
	s := &session{t: &Transport{log: slog.New(slog.NewTextHandler(io.Discard, nil))}, lost: make(chan struct{})}
	a := newAcker(s, nil)
	b := &brokerAcks{unacked: map[uint64]bool{}}
	a.ack = b.ack
	t.Cleanup(func() {
		close(a.stop)
		s.wg.Wait()
	})
	return a, b
}

// TestAckerConcurrentFlushes: calls completing on many goroutines, some
// slow enough for their acknowledgement to go alone (stale), never make the
// acker acknowledge a tag twice: two flushes interleaved used to send a
// multiple-ack before an older flush's single ack under it, and the broker
// closed the consumer channel (seen in BenchmarkRabbitFramework at 64
// callers once replies went out sooner).
func TestAckerConcurrentFlushes(t *testing.T) {
	a, b := newCheckedAcker(t)
	const n, workers = 20000, 16
	var next sync.Mutex
	tag := uint64(0)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if tag == n {
					next.Unlock()
					return
				}
				tag++
				my := tag
				b.mu.Lock()
				b.unacked[my] = true
				b.mu.Unlock()
				a.register(my)
				next.Unlock()
				if rand.IntN(200) == 0 {
					time.Sleep(staleAfter + time.Millisecond) // its neighbours go stale meanwhile
				}
				a.complete(my)
			}
		}()
	}
	wg.Wait()
	a.flush(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		t.Fatal(b.err)
	}
	if len(b.unacked) != 0 {
		t.Errorf("%d deliveries never acknowledged", len(b.unacked))
	}
}

// TestAckerForget: a call forgotten because it could not be handed back at
// a stop no longer counts as running (the stop does not wait out its drain
// time for it), and no acknowledgement covers it, so the channel's close
// requeues it; the calls around it are acknowledged.
func TestAckerForget(t *testing.T) {
	a, b := newCheckedAcker(t)
	for tag := uint64(1); tag <= 3; tag++ {
		b.mu.Lock()
		b.unacked[tag] = true
		b.mu.Unlock()
		a.register(tag)
	}
	a.forget(2)
	a.complete(1)
	a.complete(3)
	if !a.waitIdle(time.Now().Add(5 * time.Second)) {
		t.Fatal("a forgotten call still counts as running")
	}
	a.flush(true)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		t.Fatal(b.err)
	}
	if !b.unacked[2] {
		t.Error("the forgotten call was acknowledged: the channel's close would not requeue it")
	}
	if b.unacked[1] || b.unacked[3] {
		t.Errorf("completed calls left unacknowledged: %v", b.unacked)
	}
}
