package rabbitmq

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// acker acknowledges the calls of one consuming channel after they ran.
// Completions below every call still running are acknowledged together,
// with one multiple-ack frame, instead of one frame each: under load most
// calls then cost the broker and this process one frame less. A completion
// stuck behind a slower call is acknowledged on its own after staleAfter,
// so a slow handler never holds the others' acknowledgements (and the
// prefetch window) for long.
//
// Its state is bounded by the calls not yet acknowledged, which the broker
// caps at the prefetch count: a handler that never returns keeps one entry,
// not one for every call after it.
type acker struct {
	ch   *amqp.Channel
	ack  func(tag uint64, multiple bool) error // ch.Ack
	s    *session
	stop chan struct{}

	// flushMu makes a flush (choosing the tags, then sending their acks)
	// one step: two flushes interleaved could send a multiple-ack before
	// an older flush's ack of a tag it covers, and the broker closes the
	// channel on the ack of a tag already acknowledged.
	flushMu sync.Mutex

	mu sync.Mutex
	// Delivery tags are consecutive per channel, but the instance and type
	// consumers hand theirs over on two goroutines, so a tag may be
	// registered after a higher one. Every tag below regNext is registered;
	// early holds registered tags above it.
	regNext  uint64
	early    map[uint64]struct{}
	inflight map[uint64]struct{}  // registered, not complete
	kept     map[uint64]struct{}  // forgotten: never acknowledged, left for the channel's close to requeue
	low      uint64               // every tag below low is registered and complete
	done     map[uint64]time.Time // complete, not yet acknowledged
	idle     chan struct{}        // signalled when inflight empties
	wake     chan struct{}
}

const staleAfter = 50 * time.Millisecond

func newAcker(s *session, ch *amqp.Channel) *acker {
	a := &acker{ch: ch, ack: ch.Ack, s: s, stop: make(chan struct{}), regNext: 1, low: 1, early: map[uint64]struct{}{},
		inflight: map[uint64]struct{}{}, kept: map[uint64]struct{}{}, done: map[uint64]time.Time{}, idle: make(chan struct{}, 1),
		wake: make(chan struct{}, 1)}
	s.wg.Add(1)
	go a.loop()
	return a
}

// register records a delivery before it is served.
func (a *acker) register(tag uint64) {
	a.mu.Lock()
	a.inflight[tag] = struct{}{}
	if tag == a.regNext {
		a.regNext++
		for {
			if _, ok := a.early[a.regNext]; !ok {
				break
			}
			delete(a.early, a.regNext)
			a.regNext++
		}
	} else if tag > a.regNext {
		a.early[tag] = struct{}{}
	}
	a.mu.Unlock()
}

// complete records that the call with this delivery tag has run.
func (a *acker) complete(tag uint64) {
	a.mu.Lock()
	delete(a.inflight, tag)
	a.done[tag] = time.Now()
	a.advance()
	empty := len(a.inflight) == 0
	a.mu.Unlock()
	if empty {
		a.signalIdle()
		// Nothing else runs, so nothing would join this ack: send it
		// here, sparing the loop a wake-up per call at low load.
		select {
		case <-a.stop:
		default:
			a.flush(false)
			return
		}
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// advance moves low past the tags now complete; a kept one stops it, so
// no multiple-ack ever covers it. a.mu is held.
func (a *acker) advance() {
	for a.low < a.regNext {
		if _, running := a.inflight[a.low]; running {
			break
		}
		if _, kept := a.kept[a.low]; kept {
			break
		}
		a.low++
	}
}

// forget ends a registered call that is not to be acknowledged (a call
// that could not be handed back at a stop: the channel's close requeues
// it). It no longer counts as running, so a stop does not wait for it,
// and no acknowledgement covers it; completions above it are acknowledged
// one by one once stale.
func (a *acker) forget(tag uint64) {
	a.mu.Lock()
	delete(a.inflight, tag)
	a.kept[tag] = struct{}{}
	empty := len(a.inflight) == 0
	a.mu.Unlock()
	if empty {
		a.signalIdle()
	}
}

// signalIdle tells a stop waiting in waitIdle that no call runs.
func (a *acker) signalIdle() {
	select {
	case a.idle <- struct{}{}:
	default:
	}
}

// running returns how many registered calls have not completed.
func (a *acker) running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.inflight)
}

// size is the number of entries the acker holds, for tests of its bound.
func (a *acker) size() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.early) + len(a.inflight) + len(a.kept) + len(a.done)
}

// waitIdle waits until no registered call is running, or the deadline.
func (a *acker) waitIdle(deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for a.running() > 0 {
		select {
		case <-a.idle:
		case <-timer.C:
			return a.running() == 0
		}
	}
	return true
}

// flush sends the acknowledgements due now.
func (a *acker) flush(all bool) {
	a.flushMu.Lock()
	defer a.flushMu.Unlock()
	a.mu.Lock()
	// The highest completed tag below low: everything up to it is
	// complete, so one multiple-ack covers it. It must itself be
	// unacknowledged, or the broker closes the channel.
	var upto uint64
	var stale []uint64
	cutoff := time.Now().Add(-staleAfter)
	for tag, at := range a.done {
		switch {
		case tag < a.low:
			upto = max(upto, tag)
		case all || at.Before(cutoff):
			stale = append(stale, tag)
		}
	}
	for tag := range a.done {
		if tag <= upto {
			delete(a.done, tag)
		}
	}
	for _, tag := range stale {
		delete(a.done, tag)
	}
	a.mu.Unlock()
	if upto > 0 {
		if err := a.ack(upto, true); err != nil {
			a.s.t.log.Debug("ack failed", "tag", upto, "err", err)
		}
	}
	for _, tag := range stale {
		if err := a.ack(tag, false); err != nil {
			a.s.t.log.Debug("ack failed", "tag", tag, "err", err)
		}
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
		a.flush(false)
	}
}
