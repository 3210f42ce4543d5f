package rabbitmq

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// acker acknowledges the calls of one consuming channel after they ran.
// Completions that extend the run of consecutive delivery tags are
// acknowledged together, with one multiple-ack frame, instead of one frame
// each: under load most calls then cost the broker and this process one
// frame less. A completion stuck behind a slower call is acknowledged on
// its own after staleAfter, so a slow handler never holds the others'
// acknowledgements (and the prefetch window) for long.
type acker struct {
	ch   *amqp.Channel
	s    *session
	stop chan struct{}

	mu    sync.Mutex
	next  uint64               // lowest tag not yet known complete
	done  map[uint64]time.Time // completed above next, waiting for the gap below
	indiv map[uint64]bool      // above next, acknowledged on their own
	upto  uint64               // highest completed tag to multiple-ack, 0 if none
	wake  chan struct{}
}

const staleAfter = 50 * time.Millisecond

func newAcker(s *session, ch *amqp.Channel) *acker {
	a := &acker{ch: ch, s: s, stop: make(chan struct{}), next: 1, done: map[uint64]time.Time{},
		indiv: map[uint64]bool{}, wake: make(chan struct{}, 1)}
	s.wg.Add(1)
	go a.loop()
	return a
}

// complete records that the call with this delivery tag has run.
func (a *acker) complete(tag uint64) {
	a.mu.Lock()
	if tag != a.next {
		a.done[tag] = time.Now()
		a.mu.Unlock()
		return
	}
	for {
		if !a.indiv[a.next] {
			a.upto = a.next
		}
		delete(a.indiv, a.next)
		a.next++
		if _, ok := a.done[a.next]; ok {
			delete(a.done, a.next)
			continue
		}
		if a.indiv[a.next] {
			continue
		}
		break
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) loop() {
	defer a.s.wg.Done()
	tick := time.NewTicker(staleAfter)
	defer tick.Stop()
	for {
		select {
		case <-a.wake:
		case <-tick.C:
		case <-a.stop:
			return
		case <-a.s.lost:
			return
		}
		a.mu.Lock()
		upto := a.upto
		a.upto = 0
		var stale []uint64
		if len(a.done) > 0 {
			cutoff := time.Now().Add(-staleAfter)
			for tag, at := range a.done {
				if at.Before(cutoff) {
					stale = append(stale, tag)
					delete(a.done, tag)
					a.indiv[tag] = true
				}
			}
		}
		a.mu.Unlock()
		if upto > 0 {
			if err := a.ch.Ack(upto, true); err != nil {
				a.s.t.log.Debug("ack failed", "tag", upto, "err", err)
			}
		}
		for _, tag := range stale {
			if err := a.ch.Ack(tag, false); err != nil {
				a.s.t.log.Debug("ack failed", "tag", tag, "err", err)
			}
		}
	}
}
