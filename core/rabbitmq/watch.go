package rabbitmq

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/core"
)

// writeTimeout bounds each write to the broker: a broker that stops
// reading (frozen, or a network that drops everything) fails the
// connection instead of holding publishes, replies and closes forever.
var writeTimeout = 10 * time.Second

const (
	// closeWait bounds the connection.close handshake.
	closeWait = 5 * time.Second
	// probeAfter is how long a call waits for its reply before its target's
	// queue is checked; probeEvery is how often.
	probeAfter = 250 * time.Millisecond
	probeEvery = 250 * time.Millisecond
)

// watchBlocked follows connection.blocked/unblocked: while the broker
// blocks publishing (a memory or disk alarm), calls fail at once instead
// of sitting in socket buffers past their callers' deadlines.
func (s *session) watchBlocked(c <-chan amqp.Blocking) {
	defer s.wg.Done()
	for b := range c {
		if b.Active {
			s.t.blocked.Store(&b.Reason)
			s.t.log.Warn("broker blocked publishing (resource alarm); calls fail until it clears", "reason", b.Reason)
		} else {
			s.t.blocked.Store(nil)
			s.t.log.Info("broker unblocked publishing")
		}
	}
	s.t.blocked.Store(nil) // a new connection starts unblocked
}

// watchTargets fails calls whose target is gone, and follows the
// instance queues this process pushes to.
//
// A type queue goes with its last consumer and takes the calls in it, and
// the calls its consumers held, along; an instance queue stays (it waits
// for its process to reconnect) but has no consumer. Either way no reply
// is coming soon, so callers are told now rather than at their timeout.
// Only queues with calls waiting longer than probeAfter are checked, one
// passive declare each.
//
// Pushes (no-reply calls) to an instance queue are confirmed once queued:
// a queue without consumer is logged (its pushes wait for the instance to
// reconnect), and when it then vanishes, its pushes are counted lost.
func (s *session) watchTargets() {
	defer s.wg.Done()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	for {
		select {
		case <-tick.C:
		case <-s.lost:
			return
		}
		now := time.Now()
		cutoff := now.Add(-probeAfter)
		queues := map[string]bool{}
		s.pmu.Lock()
		for _, p := range s.pending {
			if p.sent.Before(cutoff) {
				queues[p.queue] = true
			}
		}
		s.pmu.Unlock()
		pushed := s.t.pushes.due(now, s.t.instanceQueueExpiry())
		for _, q := range pushed {
			queues[q] = true
		}
		for q := range queues {
			if ch == nil || ch.IsClosed() {
				var err error
				// A passive declare of a missing queue closes its channel,
				// so probes have one of their own, not failing the session.
				if ch, err = s.conn.Channel(); err != nil {
					ch = nil
					break
				}
			}
			// Pushes confirmed before the declare are in its count, or
			// expired; those in flight may be too (pushTarget.unclean).
			snap, starts, idle := s.t.pushes.snapshot(q)
			dq, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			var ae *amqp.Error
			gone := errors.As(err, &ae) && ae.Code == amqp.NotFound
			if err != nil && !gone {
				continue
			}
			if gone || (strings.HasPrefix(q, instancePrefix) && dq.Consumers == 0) {
				s.failQueue(q, cutoff, gone)
			}
			if slices.Contains(pushed, q) {
				s.t.pushes.probed(s.t, q, gone, dq, snap, starts, idle)
			}
		}
	}
}

// failQueue fails the calls to queue q sent before cutoff.
func (s *session) failQueue(q string, cutoff time.Time, gone bool) {
	var lost []*pendingCall
	s.pmu.Lock()
	for id, p := range s.pending {
		if p.queue == q && p.sent.Before(cutoff) {
			lost = append(lost, p)
			delete(s.pending, id)
		}
	}
	s.pmu.Unlock()
	why := "the queue of its target vanished"
	if !gone {
		why = "its target instance has no consumer (its process reconnects or is gone)"
	}
	if len(lost) > 0 {
		s.t.log.Warn("calls failed: "+why+"; they may have run, or run later", "queue", q, "calls", len(lost))
	}
	for _, p := range lost {
		p.ch <- core.Reply{Err: core.Errorf(core.ErrTransport, "rabbitmq: call %s.%s lost: %s while it waited (it may have run)", p.to, p.fn, why)}
	}
}

// pushWatch follows the instance queues this transport pushes to, so that
// pushes whose publish the broker confirmed but that no instance consumes
// are logged, and counted when their queue goes with them.
type pushWatch struct {
	mu sync.Mutex
	qs map[string]*pushTarget
}

type pushTarget struct {
	last     time.Time // last push confirmed
	probed   time.Time
	total    int  // pushes confirmed
	inflight int  // pushes published (or about to be), not yet settled
	starts   int  // pushes started, ever
	base     int  // total just before the last probe's declare
	carry    int  // negative: the last count of expired pushes came out below zero
	unserved bool // the last probe found no consumer
	since    time.Time
	waiting  int // messages in the queue at the last probe
	unclean  int // probes in a row set aside: pushes were in flight
}

// A check's counts are exact when no push to its queue is in flight from
// just before its declare to its answer: then the queue's message count
// holds every push confirmed so far (or they expired), and none after.
// A check with pushes in flight is set aside and retried at the next tick;
// after maxUnclean in a row (pushes never pause), it is taken as it is, and
// a push in flight then may be counted twice or carried (pushTarget.carry).
const maxUnclean = 8

// pushProbeEvery is how often a queue pushed to is checked. Each check is
// a passive declare, which renews the queue's lease (x-expires): a dead
// instance's queue lives while pushes to it are checked, and its
// x-message-ttl drops what it holds one expiry after it arrived. So while
// a queue has no consumer, what left it between two checks left by the
// TTL: each check counts it lost. Once a queue has been without consumer
// for the expiry, new pushes to it fail at once (pushWatch.start) and it
// is no longer checked until it should have expired.
const pushProbeEvery = time.Second

// start notes a push to instance queue q about to be published, unless
// it is refused: the queue has been without consumer for at least expiry
// (its process did not come back in time; the queue's TTL would drop the
// push). unserved is how long it has been without one.
func (w *pushWatch) start(q string, expiry time.Duration) (refused bool, unserved time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.qs[q]
	if p != nil && p.unserved {
		if unserved = time.Since(p.since); unserved >= expiry {
			return true, unserved
		}
	}
	if p == nil {
		if w.qs == nil {
			w.qs = map[string]*pushTarget{}
		}
		// First probe one period after the first push.
		p = &pushTarget{probed: time.Now()}
		w.qs[q] = p
	}
	p.inflight++
	p.starts++
	return false, unserved
}

// settled notes the end of a push to instance queue q: confirmed by the
// broker (ok), or failed.
func (w *pushWatch) settled(q string, ok bool) {
	w.mu.Lock()
	if p := w.qs[q]; p != nil {
		p.inflight--
		if ok {
			p.last = time.Now()
			p.total++
		}
	}
	w.mu.Unlock()
}

// due returns the queues to check now, forgetting served, quiet ones.
// An unserved queue no longer pushed to (or refused: unserved past the
// expiry) is checked once more after it should have expired (a check
// earlier would renew its lease): gone, its pushes are counted lost.
func (w *pushWatch) due(now time.Time, expiry time.Duration) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var qs []string
	for q, p := range w.qs {
		quiet := now.Sub(p.last) > pushProbeEvery
		refusing := p.unserved && now.Sub(p.since) >= expiry
		switch {
		case !p.unserved && quiet && p.inflight == 0:
			delete(w.qs, q)
		case p.unserved && (quiet || refusing):
			if now.Sub(p.probed) >= expiry+pushProbeEvery {
				qs = append(qs, q)
			}
		case now.Sub(p.probed) >= pushProbeEvery:
			qs = append(qs, q)
		}
	}
	return qs
}

// snapshot returns how many pushes to q were confirmed so far, and how
// many were started, and whether none is in flight.
func (w *pushWatch) snapshot(q string) (snap, starts int, idle bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.qs[q]; p != nil {
		return p.total, p.starts, p.inflight == 0
	}
	return 0, 0, true
}

// probed takes in what a check of queue q found; snap, starts and idle are
// what snapshot said just before it.
func (w *pushWatch) probed(t *Transport, q string, gone bool, dq amqp.Queue, snap, starts int, idle bool) {
	w.mu.Lock()
	p := w.qs[q]
	if p == nil {
		w.mu.Unlock()
		return
	}
	if !gone && (!idle || p.starts != starts) && p.unclean < maxUnclean {
		p.unclean++ // due again at the next tick
		w.mu.Unlock()
		return
	}
	p.unclean = 0
	p.probed = time.Now()
	switch {
	case gone:
		delete(w.qs, q)
		lost := 0
		if p.unserved {
			lost = max(p.waiting+p.total-p.base+p.carry, 0)
		}
		w.mu.Unlock()
		if lost > 0 {
			t.stats.noReplyExpired.Add(int64(lost))
			t.losses.log(t.log, slog.LevelError, "pushes lost: the instance queue they waited in is gone (its process did not come back)", q, lost, "unservedFor", time.Since(p.since).Round(time.Millisecond))
		}
		return
	case dq.Consumers == 0:
		first := !p.unserved
		expired := 0
		if first {
			p.unserved, p.since = true, time.Now()
		} else {
			// Nobody consumes: what left the queue since the last check
			// was dropped by its message TTL.
			// A push in the queue at the declare but confirmed after
			// snap counts here next time: a shortfall is carried.
			expired = p.waiting + snap - p.base - dq.Messages + p.carry
			p.carry = min(expired, 0)
			expired = max(expired, 0)
		}
		p.waiting, p.base = dq.Messages, snap
		since := p.since
		w.mu.Unlock()
		if expired > 0 {
			t.stats.noReplyExpired.Add(int64(expired))
			t.losses.log(t.log, slog.LevelError, "pushes lost: they expired in an instance queue without consumer (its process did not come back in time)", q, expired,
				"unservedFor", time.Since(since).Round(time.Millisecond), "queueExpiry", t.instanceQueueExpiry())
		}
		t.losses.log(t.log, slog.LevelWarn, "pushes wait in an instance queue without consumer: delivered if its process comes back, lost otherwise", q, 0,
			"waiting", dq.Messages, "unservedFor", time.Since(since).Round(time.Millisecond), "queueExpiry", t.instanceQueueExpiry())
		return
	default:
		was := p.unserved
		p.unserved, p.base, p.waiting, p.carry = false, snap, 0, 0
		w.mu.Unlock()
		if was {
			t.log.Info("instance queue consumed again: the pushes that waited in it are delivered", "queue", q)
		}
	}
}

// start consumes for an endpoint on this session, once. A duplicate
// instance id is refused (the endpoint is dropped, and Listen or the
// OnInstanceTaken callback says so) while this process has never consumed
// the instance queue: then the consumer is another process's. After that
// (a reconnect), it is retried in the background: the broker may still
// hold the consumer of our connection that just died, until it notices.
// Other failures are retried in the background.
func (s *session) start(e *endpoint) error {
	s.smu.Lock()
	if _, ok := s.consumers[e.id]; ok {
		s.smu.Unlock()
		return nil
	}
	c := s.newConsumer(e)
	s.consumers[e.id] = c
	s.smu.Unlock()
	// The endpoint may have been closed since the caller saw it: its
	// closer, which marks it closed under t.mu before it looks for the
	// consumer, would not find this one.
	if s.t.endpointClosed(e) {
		s.forget(c)
		close(c.done)
		return nil
	}
	closed, cancels, err := c.attach()
	if errors.Is(err, errDuplicate) && !e.calls.consumed.Load() {
		s.forget(c)
		close(c.done)
		s.t.refuse(e, err)
		return err
	}
	if err != nil {
		s.t.log.Warn("RPC endpoint cannot consume yet; retrying", "id", e.id, "err", err)
		closed, cancels = nil, nil
	} else {
		s.t.log.Debug("RPC endpoint consuming", "id", e.id, "queues", c.iq()+","+c.tq())
	}
	e.settle(nil)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.run(closed, cancels)
	}()
	return nil
}

// forget removes consumer c from the session, if it is still there.
func (s *session) forget(c *consumer) {
	s.smu.Lock()
	if s.consumers[c.e.id] == c {
		delete(s.consumers, c.e.id)
	}
	s.smu.Unlock()
}

// takenOver ends a consumer whose instance queue another connection has
// consumed for longer than our dead connection could hold it: another
// process serves this instance id now.
func (s *session) takenOver(c *consumer, d time.Duration) {
	s.forget(c)
	s.t.mu.Lock()
	if s.t.endpoints[c.e.id] == c.e {
		delete(s.t.endpoints, c.e.id)
	}
	s.t.mu.Unlock()
	s.t.log.Error("instance id taken over by another process: its instance queue is consumed by another connection since this process reconnected; this process no longer serves it (two processes run the same module id; restart one)",
		"id", c.e.id, "queue", c.iq(), "refusedFor", d.Round(time.Millisecond))
	s.t.instanceTaken(c.e.id, errDuplicate)
}

// unlisten stops an endpoint's consumer gracefully.
func (s *session) unlisten(id string, drain time.Duration) {
	s.smu.Lock()
	c, ok := s.consumers[id]
	delete(s.consumers, id)
	s.smu.Unlock()
	if ok {
		c.stop(drain)
	}
}
